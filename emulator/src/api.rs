//! Handlers for the Dropbox API v2 routes (`/2/...`).
//!
//! Content-upload routes take raw bytes with their JSON argument in the
//! `Dropbox-API-Arg` header; RPC routes take a JSON body. Bad input is a `400
//! text/plain`, route errors a `409` JSON body with `error_summary` and a nested
//! `error` union, authentication failures a `401`.

use std::thread;
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::hash::{content_hash, ContentHasher};
use crate::http::{Request, Response};
use crate::namespace::{normalize, CommitInfo, WriteMode};
use crate::server::Shared;
use crate::state::{AuthError, FinishError, LookupError};
use crate::timefmt::is_valid_timestamp;

/// The largest body one request may carry: 150 MiB.
pub(crate) const MAX_PAYLOAD: u64 = 150 * 1024 * 1024;
/// How long a `finish_batch_v2` call stays "in flight" at least, so overlap is detectable.
const BATCH_HOLD: Duration = Duration::from_millis(20);
/// Most entries in one `finish_batch_v2` call.
const MAX_BATCH_ENTRIES: usize = 1000;
/// Largest `limit` accepted by `list_folder`.
const MAX_LIST_LIMIT: u64 = 2000;

/// Routes whose body is upload data.
pub(crate) const CONTENT_ROUTES: [&str; 4] = [
    "/2/files/upload_session/start",
    "/2/files/upload_session/append_v2",
    "/2/files/upload_session/finish",
    "/2/files/upload",
];
const RPC_ROUTES: [&str; 6] = [
    "/2/files/upload_session/finish_batch_v2",
    "/2/files/list_folder",
    "/2/files/list_folder/continue",
    "/2/files/get_metadata",
    "/2/files/create_folder_v2",
    "/2/auth/token/revoke",
];

/// A handler's result; both sides are sent, `Err` just allows early returns with `?`.
type Outcome = Result<Response, Response>;

/// Serves one `/2/` request. `batch_fault` is the index of a `finish_batch_v2` entry
/// that must fail with `too_many_write_operations`.
pub(crate) fn handle(shared: &Shared, req: &Request, batch_fault: Option<usize>) -> Response {
    match dispatch(shared, req, batch_fault) {
        Ok(response) | Err(response) => response,
    }
}

fn dispatch(shared: &Shared, req: &Request, batch_fault: Option<usize>) -> Outcome {
    let route = req.path.as_str();
    if !CONTENT_ROUTES.contains(&route) && !RPC_ROUTES.contains(&route) {
        return Err(Response::text(
            404,
            format!("Unknown API function: {route:?}"),
        ));
    }
    if req.method != "POST" {
        return Err(Response::text(405, "Only POST is supported"));
    }
    let token = authenticate(shared, req, route)?;
    match route {
        "/2/files/upload_session/start" => start(shared, req, route),
        "/2/files/upload_session/append_v2" => append(shared, req, route),
        "/2/files/upload_session/finish" => finish(shared, req, route),
        "/2/files/upload" => upload(shared, req, route),
        "/2/files/upload_session/finish_batch_v2" => finish_batch(shared, req, route, batch_fault),
        "/2/files/list_folder" => list_folder(shared, req, route),
        "/2/files/list_folder/continue" => list_folder_continue(shared, req, route),
        "/2/files/get_metadata" => get_metadata(shared, req, route),
        "/2/files/create_folder_v2" => create_folder(shared, req, route),
        _ => revoke(shared, req, route, &token),
    }
}

// ----- responses -----

/// A 400 in Dropbox's wording.
fn bad_input(route: &str, detail: impl std::fmt::Display) -> Response {
    let function = route.strip_prefix("/2/").unwrap_or(route);
    Response::text(
        400,
        format!("Error in call to API function \"{function}\": {detail}"),
    )
}

/// `error_summary` for a route error: the chain of tags, e.g. `path/conflict/file/..`.
fn error_summary(error: &Value) -> String {
    let mut tags = Vec::new();
    let mut current = error;
    loop {
        match current.get(".tag").and_then(Value::as_str) {
            Some(tag) => {
                tags.push(tag);
                match current.get(tag) {
                    Some(next) if next.is_object() => current = next,
                    _ => break,
                }
            }
            // `UploadWriteFailed` is a struct: follow its `reason`.
            None => match current.get("reason") {
                Some(reason) if reason.is_object() => current = reason,
                _ => break,
            },
        }
    }
    format!("{}/..", tags.join("/"))
}

/// A 409 route error.
pub(crate) fn route_error(error: Value) -> Response {
    let summary = error_summary(&error);
    Response::json(409, &json!({"error_summary": summary, "error": error}))
}

fn tag(tag: &str) -> Value {
    json!({".tag": tag})
}

/// A union value whose member is another union: `{".tag": t, t: inner}`.
fn nested(tag: &str, inner: Value) -> Value {
    let mut map = Map::new();
    map.insert(".tag".into(), tag.into());
    map.insert(tag.into(), inner);
    Value::Object(map)
}

/// A 429 with a JSON `RateLimitError` body and a `Retry-After` header.
pub(crate) fn rate_limited(reason: &str, retry_after: u64) -> Response {
    let body = json!({
        "error_summary": format!("{reason}/.."),
        "error": {"reason": {".tag": reason}, "retry_after": retry_after},
    });
    Response::json(429, &body).with_header("Retry-After", retry_after.to_string())
}

fn auth_error(tag_name: &str) -> Response {
    Response::json(
        401,
        &json!({"error_summary": format!("{tag_name}/.."), "error": tag(tag_name)}),
    )
}

// ----- input -----

/// Checks the bearer token; returns it.
fn authenticate(shared: &Shared, req: &Request, route: &str) -> Result<String, Response> {
    let raw = req.header("authorization").ok_or_else(|| {
        bad_input(
            route,
            "Must provide HTTP header \"Authorization\" or URL parameter \"authorization\".",
        )
    })?;
    let invalid = || {
        bad_input(
            route,
            "Invalid authorization value in HTTP header \"Authorization\". Expecting \"Bearer <oauth2-access-token>\".",
        )
    };
    let value = std::str::from_utf8(raw).map_err(|_| invalid())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(invalid)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(invalid());
    }
    match shared.lock().authenticate(token) {
        Ok(()) => Ok(token.to_owned()),
        Err(AuthError::Invalid) => Err(auth_error("invalid_access_token")),
        Err(AuthError::Expired) => Err(auth_error("expired_access_token")),
    }
}

/// The JSON argument of a content route, from `Dropbox-API-Arg`.
fn api_arg(req: &Request, route: &str) -> Result<Value, Response> {
    let raw = req.header("dropbox-api-arg").ok_or_else(|| {
        bad_input(
            route,
            "Must provide HTTP header \"Dropbox-API-Arg\" or URL parameter \"arg\".",
        )
    })?;
    let undecodable = || {
        bad_input(
            route,
            "HTTP header \"Dropbox-API-Arg\": could not decode input as JSON",
        )
    };
    if raw.iter().any(|&b| b >= 0x7f) {
        return Err(undecodable());
    }
    serde_json::from_slice(raw).map_err(|_| undecodable())
}

/// The JSON body of an RPC route.
fn rpc_arg(req: &Request, route: &str) -> Result<Value, Response> {
    if req.body_too_large {
        return Err(bad_input(route, "request body is too large"));
    }
    serde_json::from_slice(&req.body)
        .map_err(|_| bad_input(route, "request body: could not decode input as JSON"))
}

/// A union value: its tag and, for the tagged-object form, the whole object.
type Union<'a> = (&'a str, Option<&'a Map<String, Value>>);

/// Typed access to the members of a JSON object argument, turning type errors into 400s.
struct Fields<'a> {
    route: &'a str,
    map: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    fn new(route: &'a str, value: &'a Value, what: &str) -> Result<Self, Response> {
        match value {
            Value::Object(map) => Ok(Self { route, map }),
            _ => Err(bad_input(route, format!("{what}: expected an object"))),
        }
    }

    fn bad(&self, key: &str, expected: &str) -> Response {
        bad_input(
            self.route,
            format!("request body: {key}: expected {expected}"),
        )
    }

    /// A member, treating `null` as absent.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn str_opt(&self, key: &str) -> Result<Option<&'a str>, Response> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.bad(key, "a string")),
        }
    }

    fn str_req(&self, key: &str) -> Result<&'a str, Response> {
        self.str_opt(key)?.ok_or_else(|| {
            bad_input(
                self.route,
                format!("request body: missing required field '{key}'"),
            )
        })
    }

    fn bool_or(&self, key: &str, default: bool) -> Result<bool, Response> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(self.bad(key, "a boolean")),
        }
    }

    fn u64_opt(&self, key: &str) -> Result<Option<u64>, Response> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| self.bad(key, "an unsigned integer")),
        }
    }

    fn object(&self, key: &str) -> Result<Fields<'a>, Response> {
        let value = self.get(key).ok_or_else(|| {
            bad_input(
                self.route,
                format!("request body: missing required field '{key}'"),
            )
        })?;
        Fields::new(self.route, value, key)
    }

    /// A union member: `"tag"` or `{".tag": "tag", ...}`; returns the tag and the object.
    fn union(&self, key: &str) -> Result<Option<Union<'a>>, Response> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(tag)) => Ok(Some((tag, None))),
            Some(Value::Object(map)) => match map.get(".tag").and_then(Value::as_str) {
                Some(tag) => Ok(Some((tag, Some(map)))),
                None => Err(self.bad(key, "a union with a \".tag\"")),
            },
            Some(_) => Err(self.bad(key, "a union")),
        }
    }
}

/// An upload session cursor: `(session_id, offset)`.
fn parse_cursor(fields: &Fields<'_>) -> Result<(String, u64), Response> {
    let cursor = fields.object("cursor")?;
    let id = cursor.str_req("session_id")?.to_owned();
    let offset = cursor.u64_opt("offset")?.ok_or_else(|| {
        bad_input(
            fields.route,
            "request body: cursor: missing required field 'offset'",
        )
    })?;
    Ok((id, offset))
}

fn parse_commit(fields: &Fields<'_>) -> Result<CommitInfo, Response> {
    let mode = match fields.union("mode")? {
        None | Some(("add", _)) => WriteMode::Add,
        Some(("overwrite", _)) => WriteMode::Overwrite,
        Some(("update", Some(map))) => match map.get("update").and_then(Value::as_str) {
            Some(rev) => WriteMode::Update(rev.to_owned()),
            None => return Err(fields.bad("mode", "a rev in \"update\"")),
        },
        Some(_) => return Err(fields.bad("mode", "add, overwrite or update")),
    };
    let client_modified = fields.str_opt("client_modified")?;
    if client_modified.is_some_and(|t| !is_valid_timestamp(t)) {
        return Err(fields.bad(
            "client_modified",
            "a timestamp in the format %Y-%m-%dT%H:%M:%SZ",
        ));
    }
    Ok(CommitInfo {
        path: fields.str_req("path")?.to_owned(),
        mode,
        autorename: fields.bool_or("autorename", false)?,
        client_modified: client_modified.map(str::to_owned),
        strict_conflict: fields.bool_or("strict_conflict", false)?,
    })
}

/// Checks a per-call `content_hash` against this request's body.
fn check_content_hash(expected: Option<&str>, body: &[u8]) -> Result<(), Response> {
    match expected {
        Some(expected) if !content_hash(body).eq_ignore_ascii_case(expected) => {
            Err(route_error(tag("content_hash_mismatch")))
        }
        _ => Ok(()),
    }
}

/// The key of a folder path for `list_folder`: "" (root) or a `/`-prefixed path.
fn list_path_key(route: &str, path: &str) -> Result<String, Response> {
    if path.is_empty() {
        return Ok(String::new());
    }
    if !path.starts_with('/') || path.ends_with('/') {
        return Err(bad_input(
            route,
            format!("request body: path: '{path}' did not match pattern"),
        ));
    }
    Ok(normalize(path))
}

// ----- upload routes -----

fn start(shared: &Shared, req: &Request, route: &str) -> Outcome {
    let arg = api_arg(req, route)?;
    let fields = Fields::new(route, &arg, "Dropbox-API-Arg")?;
    let close = fields.bool_or("close", false)?;
    match fields.union("session_type")? {
        None | Some(("sequential", _)) => {}
        Some(("concurrent", _)) => {
            return Err(bad_input(
                route,
                "concurrent upload sessions are not supported by the emulator",
            ))
        }
        Some(_) => return Err(fields.bad("session_type", "sequential or concurrent")),
    }
    let expected = fields.str_opt("content_hash")?;
    if req.body_too_large {
        return Err(route_error(tag("payload_too_large")));
    }
    check_content_hash(expected, &req.body)?;
    let mut hasher = ContentHasher::new();
    hasher.update(&req.body);
    let session_id = shared.lock().new_session(hasher, close);
    Ok(Response::json(200, &json!({"session_id": session_id})))
}

fn append(shared: &Shared, req: &Request, route: &str) -> Outcome {
    let arg = api_arg(req, route)?;
    let fields = Fields::new(route, &arg, "Dropbox-API-Arg")?;
    let (id, offset) = parse_cursor(&fields)?;
    let close = fields.bool_or("close", false)?;
    let expected = fields.str_opt("content_hash")?;
    if req.body_too_large {
        return Err(route_error(tag("payload_too_large")));
    }
    // Append errors are the lookup errors, flattened at the top level.
    let lookup = |shared: &Shared| -> Result<ContentHasher, Response> {
        let mut state = shared.lock();
        let session = state
            .session_at(&id, offset)
            .map_err(|e| route_error(e.to_json()))?;
        if session.closed {
            return Err(route_error(LookupError::Closed.to_json()));
        }
        Ok(session.hasher.clone())
    };
    // Hash outside the lock, then re-check: a concurrent append may have moved the session.
    let mut hasher = lookup(shared)?;
    check_content_hash(expected, &req.body)?;
    hasher.update(&req.body);
    let mut state = shared.lock();
    let session = state
        .session_at(&id, offset)
        .map_err(|e| route_error(e.to_json()))?;
    if session.closed {
        return Err(route_error(LookupError::Closed.to_json()));
    }
    session.hasher = hasher;
    session.closed = close;
    Ok(Response::json(200, &Value::Null))
}

fn finish(shared: &Shared, req: &Request, route: &str) -> Outcome {
    let arg = api_arg(req, route)?;
    let fields = Fields::new(route, &arg, "Dropbox-API-Arg")?;
    let (id, offset) = parse_cursor(&fields)?;
    let commit = parse_commit(&fields.object("commit")?)?;
    let expected = fields.str_opt("content_hash")?;
    let fail = |e: FinishError| route_error(e.to_json());
    if req.body_too_large {
        return Err(route_error(tag("payload_too_large")));
    }
    let has_data = !req.body.is_empty();
    let lookup = |shared: &Shared| -> Result<ContentHasher, Response> {
        let mut state = shared.lock();
        let session = state.session_at(&id, offset).map_err(|e| fail(e.into()))?;
        if session.closed && has_data {
            return Err(fail(LookupError::Closed.into()));
        }
        Ok(session.hasher.clone())
    };
    let mut hasher = lookup(shared)?;
    check_content_hash(expected, &req.body)?;
    hasher.update(&req.body);
    let mut state = shared.lock();
    let session = state.session_at(&id, offset).map_err(|e| fail(e.into()))?;
    if session.closed && has_data {
        return Err(fail(LookupError::Closed.into()));
    }
    // The data counts as appended even if the commit fails, so a retry sends no data.
    session.hasher = hasher;
    let key = state.commit_session(&id, &commit).map_err(fail)?;
    Ok(Response::json(
        200,
        &state.ns.metadata(&key).unwrap_or(Value::Null),
    ))
}

fn upload(shared: &Shared, req: &Request, route: &str) -> Outcome {
    let arg = api_arg(req, route)?;
    let fields = Fields::new(route, &arg, "Dropbox-API-Arg")?;
    let commit = parse_commit(&fields)?;
    let expected = fields.str_opt("content_hash")?;
    if req.body_too_large {
        return Err(route_error(tag("payload_too_large")));
    }
    let mut hasher = ContentHasher::new();
    hasher.update(&req.body);
    let hash = hasher.clone().finish();
    if expected.is_some_and(|e| !e.eq_ignore_ascii_case(&hash)) {
        return Err(route_error(tag("content_hash_mismatch")));
    }
    let mut state = shared.lock();
    let now = state.now_secs();
    match state.ns.commit(&commit, req.body_len, &hash, now) {
        Ok(key) => Ok(Response::json(
            200,
            &state.ns.metadata(&key).unwrap_or(Value::Null),
        )),
        Err(e) => {
            // Keep the data in a closed session so it can be committed later.
            let session_id = state.new_session(hasher, true);
            let failed = json!({"reason": e.to_json(), "upload_session_id": session_id});
            Err(route_error(nested("path", failed)))
        }
    }
}

/// Decrements the in-flight batch counter when dropped.
struct InFlight<'a>(&'a Shared);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.batches_in_flight = state.batches_in_flight.saturating_sub(1);
    }
}

fn finish_batch(
    shared: &Shared,
    req: &Request,
    route: &str,
    batch_fault: Option<usize>,
) -> Outcome {
    let body = rpc_arg(req, route)?;
    let fields = Fields::new(route, &body, "request body")?;
    let Some(Value::Array(raw_entries)) = fields.get("entries") else {
        return Err(fields.bad("entries", "a list"));
    };
    if raw_entries.is_empty() || raw_entries.len() > MAX_BATCH_ENTRIES {
        return Err(fields.bad("entries", "1 to 1000 entries"));
    }
    let mut entries = Vec::with_capacity(raw_entries.len());
    for raw in raw_entries {
        let entry = Fields::new(route, raw, "entries")?;
        let (id, offset) = parse_cursor(&entry)?;
        entries.push((id, offset, parse_commit(&entry.object("commit")?)?));
    }

    {
        let mut state = shared.lock();
        state.batches_in_flight += 1;
        let in_flight = state.batches_in_flight;
        let max = &mut state.stats.max_concurrent_batch_commits;
        *max = (*max).max(in_flight);
        if in_flight > 1 {
            state.batches_in_flight -= 1;
            return Err(rate_limited("too_many_write_operations", 1));
        }
    }
    let in_flight = InFlight(shared);
    thread::sleep(BATCH_HOLD);

    let results: Vec<Value> = {
        let mut state = shared.lock();
        entries
            .iter()
            .enumerate()
            .map(|(index, (id, offset, commit))| {
                let result = if batch_fault == Some(index) {
                    Err(FinishError::TooManyWriteOperations)
                } else {
                    state
                        .session_at(id, *offset)
                        .map_err(FinishError::from)
                        .and_then(|s| {
                            if s.closed {
                                Ok(())
                            } else {
                                Err(LookupError::NotClosed.into())
                            }
                        })
                        .and_then(|()| state.commit_session(id, commit))
                };
                match result {
                    Ok(key) => {
                        let mut metadata = state.ns.metadata(&key).unwrap_or_else(|| json!({}));
                        metadata[".tag"] = "success".into();
                        metadata
                    }
                    Err(e) => json!({".tag": "failure", "failure": e.to_json()}),
                }
            })
            .collect()
    };
    drop(in_flight);
    Ok(Response::json(200, &json!({"entries": results})))
}

// ----- metadata routes -----

fn list_folder(shared: &Shared, req: &Request, route: &str) -> Outcome {
    let body = rpc_arg(req, route)?;
    let fields = Fields::new(route, &body, "request body")?;
    let dir_key = list_path_key(route, fields.str_req("path")?)?;
    let recursive = fields.bool_or("recursive", false)?;
    fields.bool_or("include_deleted", false)?;
    let limit = fields.u64_opt("limit")?.unwrap_or(MAX_LIST_LIMIT);
    if !(1..=MAX_LIST_LIMIT).contains(&limit) {
        return Err(fields.bad("limit", "a value between 1 and 2000"));
    }
    let mut state = shared.lock();
    if !dir_key.is_empty() {
        match state.ns.is_folder(&dir_key) {
            None => return Err(route_error(nested("path", tag("not_found")))),
            Some(false) => return Err(route_error(nested("path", tag("not_folder")))),
            Some(true) => {}
        }
    }
    let page_size = usize::try_from(limit)
        .unwrap_or(usize::MAX)
        .min(state.list_limit);
    Ok(Response::json(
        200,
        &state.start_listing(dir_key, recursive, page_size),
    ))
}

fn list_folder_continue(shared: &Shared, req: &Request, route: &str) -> Outcome {
    let body = rpc_arg(req, route)?;
    let fields = Fields::new(route, &body, "request body")?;
    let cursor = fields.str_req("cursor")?;
    let page = shared.lock().continue_listing(cursor);
    page.map(|page| Response::json(200, &page))
        .ok_or_else(|| route_error(tag("reset")))
}

fn get_metadata(shared: &Shared, req: &Request, route: &str) -> Outcome {
    let body = rpc_arg(req, route)?;
    let fields = Fields::new(route, &body, "request body")?;
    let path = fields.str_req("path")?;
    if path.is_empty() {
        return Err(bad_input(
            route,
            "request body: path: The root folder is unsupported.",
        ));
    }
    let key = list_path_key(route, path)?;
    let metadata = shared.lock().ns.metadata(&key);
    metadata
        .map(|m| Response::json(200, &m))
        .ok_or_else(|| route_error(nested("path", tag("not_found"))))
}

fn create_folder(shared: &Shared, req: &Request, route: &str) -> Outcome {
    let body = rpc_arg(req, route)?;
    let fields = Fields::new(route, &body, "request body")?;
    let path = fields.str_req("path")?;
    let autorename = fields.bool_or("autorename", false)?;
    let mut state = shared.lock();
    let key = state
        .ns
        .create_folder(path, autorename)
        .map_err(|e| route_error(nested("path", e.to_json())))?;
    let metadata = state.ns.metadata(&key).unwrap_or(Value::Null);
    Ok(Response::json(200, &json!({"metadata": metadata})))
}

fn revoke(shared: &Shared, req: &Request, route: &str, token: &str) -> Outcome {
    let body = String::from_utf8_lossy(&req.body);
    let body = body.trim();
    if !body.is_empty() && body != "null" {
        return Err(bad_input(route, "request body: expected null"));
    }
    shared.lock().revoke(token);
    Ok(Response::json(200, &Value::Null))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_follow_nested_tags() {
        let e = nested(
            "lookup_failed",
            json!({".tag": "incorrect_offset", "correct_offset": 12}),
        );
        assert_eq!(error_summary(&e), "lookup_failed/incorrect_offset/..");
        let e = nested(
            "path",
            json!({".tag": "conflict", "conflict": {".tag": "file"}}),
        );
        assert_eq!(error_summary(&e), "path/conflict/file/..");
        let e = nested(
            "path",
            json!({"reason": {".tag": "disallowed_name"}, "upload_session_id": "x"}),
        );
        assert_eq!(error_summary(&e), "path/disallowed_name/..");
        assert_eq!(error_summary(&tag("reset")), "reset/..");
    }
}
