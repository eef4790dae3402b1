//! A blocking client for the Dropbox API v2 routes photoferry uses, speaking the real wire format:
//! RPC routes take a JSON body, content routes take raw bytes with the JSON argument in the
//! `Dropbox-API-Arg` header (non-ASCII escaped, see [`super::wire`]).
//!
//! Every call goes through one retry loop ([`Client::call`]) that owns the failure policy of
//! ../shared/notes/dropbox-api.md: Retry-After on 429 (JSON or text bodies), backoff with jitter on
//! 5xx and connection errors, one token refresh on `expired_access_token`, and a retry of
//! `too_many_write_operations` wherever it appears. Everything else comes back as a typed
//! [`ApiError`] for the caller to decide (per-file error, resync, fatal).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::blocking::{Client as Http, RequestBuilder, Response};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::auth::{Credentials, TokenGrant};
use super::wire;

/// Where requests go. Real Dropbox uses three hosts; `PHOTOFERRY_DROPBOX_URL` points all of them
/// at one base URL (the emulator), keeping Dropbox's own paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub api: String,
    pub content: String,
    /// Base for `/oauth2/token`.
    pub token: String,
    /// Base for the `/oauth2/authorize` page the user opens.
    pub authorize: String,
}

/// The environment variable that sends every call to one base URL.
pub const URL_ENV: &str = "PHOTOFERRY_DROPBOX_URL";

impl Endpoints {
    pub fn dropbox() -> Endpoints {
        Endpoints {
            api: "https://api.dropboxapi.com".into(),
            content: "https://content.dropboxapi.com".into(),
            token: "https://api.dropboxapi.com".into(),
            authorize: "https://www.dropbox.com".into(),
        }
    }

    pub fn single(base: &str) -> Endpoints {
        let base = base.trim_end_matches('/').to_string();
        Endpoints { api: base.clone(), content: base.clone(), token: base.clone(), authorize: base }
    }

    /// `PHOTOFERRY_DROPBOX_URL` when set, else the real hosts.
    pub fn from_env() -> Endpoints {
        match std::env::var(URL_ENV) {
            Ok(base) if !base.trim().is_empty() => Endpoints::single(base.trim()),
            _ => Endpoints::dropbox(),
        }
    }

    /// A short stable name for the manifest's caches, so a listing of the emulator is never taken
    /// for a listing of real Dropbox.
    pub fn key(&self) -> &str {
        &self.api
    }
}

/// A failed call, after the retry policy has done what it can.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A route-specific error (HTTP 409): branch on [`ApiError::tags`].
    #[error("{route}: {summary}")]
    Route { route: String, summary: String, error: Value },
    /// The token was refused (401) and refreshing did not help, or there is nothing to refresh.
    #[error("Dropbox refused the access token ({tag}); run `photoferry login` again")]
    Auth { tag: String },
    /// Dropbox said the request itself is wrong (400 and other 4xx): a bug or an unsupported name.
    #[error("{route}: Dropbox rejected the request (HTTP {status}): {message}")]
    Rejected { route: String, status: u16, message: String },
    /// Retries ran out on throttling, server errors or a broken connection.
    #[error("{route}: gave up after {attempts} attempts: {last}")]
    Exhausted { route: String, attempts: u32, last: String },
    /// A response that does not parse as the route's result.
    #[error("{route}: unexpected response: {message}")]
    Protocol { route: String, message: String },
    /// The OAuth token endpoint refused (bad code, revoked refresh token, wrong app key).
    #[error("Dropbox login failed: {0}")]
    OAuth(String),
}

impl ApiError {
    /// The chain of union tags of a route error, outermost first:
    /// `lookup_failed/incorrect_offset` → `["lookup_failed", "incorrect_offset"]`.
    pub fn tags(&self) -> Vec<String> {
        match self {
            ApiError::Route { error, .. } => tag_chain(error),
            _ => Vec::new(),
        }
    }

    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags().iter().any(|t| t == tag)
    }

    /// `correct_offset` of an `incorrect_offset` error, wherever it is nested.
    pub fn correct_offset(&self) -> Option<u64> {
        match self {
            ApiError::Route { error, .. } => find_u64(error, "correct_offset"),
            _ => None,
        }
    }
}

/// `{".tag": "a", "a": {".tag": "b", ...}}` → `["a", "b"]`.
pub fn tag_chain(error: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = error;
    while let Some(tag) = cur.get(".tag").and_then(Value::as_str) {
        out.push(tag.to_string());
        match cur.get(tag) {
            Some(next) if next.is_object() => cur = next,
            // Some unions nest one level deeper under a named member (`reason`).
            _ => match cur.get("reason") {
                Some(next) if next.is_object() => cur = next,
                _ => break,
            },
        }
    }
    out
}

fn find_u64(v: &Value, key: &str) -> Option<u64> {
    match v {
        Value::Object(map) => map.get(key).and_then(Value::as_u64).or_else(|| map.values().find_map(|x| find_u64(x, key))),
        _ => None,
    }
}

/// How hard to try before giving up on one call.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per call for 5xx, broken connections and write contention.
    pub max_attempts: u32,
    /// First backoff; doubles each attempt, with full jitter between half and all of it.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// Attempts that may be spent waiting out 429s (they don't count against `max_attempts`).
    pub max_rate_limited: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            base_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(60),
            max_rate_limited: 50,
        }
    }
}

impl RetryPolicy {
    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.base_backoff.saturating_mul(1u32 << attempt.min(16)).min(self.max_backoff);
        // Full jitter in [exp/2, exp]: spreads the retries of parallel workers apart.
        let jitter = (random_u64() % 1000) as f64 / 1000.0;
        exp.mul_f64(0.5 + 0.5 * jitter)
    }
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        return std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos() as u64);
    }
    u64::from_le_bytes(b)
}

/// Counters for the benchmark and the summary: how many calls and bytes a run cost.
#[derive(Debug, Default)]
pub struct Counters {
    pub calls: AtomicU64,
    pub retries: AtomicU64,
    pub bytes_sent: AtomicU64,
}

struct TokenState {
    access: Option<String>,
    expires_at: Option<Instant>,
}

/// A connection to one Dropbox account.
pub struct Client {
    http: Http,
    pub endpoints: Endpoints,
    credentials: Credentials,
    token: Mutex<TokenState>,
    pub retry: RetryPolicy,
    pub counters: Counters,
    /// Dropbox rate-limits the account, not the request: after a 429 every worker holds back
    /// until this instant.
    paused_until: Mutex<Option<Instant>>,
}

enum Host {
    Api,
    Content,
}

/// Refresh this long before the token's stated expiry.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

impl Client {
    pub fn new(endpoints: Endpoints, credentials: Credentials) -> Result<Client, ApiError> {
        let http = Http::builder()
            .user_agent(concat!("photoferry/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30))
            // A 48 MiB chunk on a slow uplink takes minutes; a stalled connection is still
            // caught, and retried, by this ceiling.
            .timeout(Duration::from_secs(30 * 60))
            .pool_max_idle_per_host(16)
            .build()
            .map_err(|e| ApiError::Protocol { route: "client".into(), message: e.to_string() })?;
        let access = match &credentials {
            Credentials::AccessToken(t) | Credentials::Refresh { access: Some(t), .. } => Some(t.expose().to_string()),
            Credentials::Refresh { access: None, .. } => None,
        };
        let expires_at = None;
        Ok(Client {
            http,
            endpoints,
            credentials,
            token: Mutex::new(TokenState { access, expires_at }),
            retry: RetryPolicy::default(),
            counters: Counters::default(),
            paused_until: Mutex::new(None),
        })
    }

    pub fn http(&self) -> &Http {
        &self.http
    }

    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// Wait out a rate limit another call met.
    fn wait_for_pause(&self) {
        let until = *self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(wait) = until.and_then(|u| u.checked_duration_since(Instant::now())) {
            std::thread::sleep(wait);
        }
    }

    /// Hold every worker back for `wait` from now (never shortening a longer pause).
    fn pause(&self, wait: Duration) {
        let mut until = self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
        let at = Instant::now() + wait;
        if until.is_none_or(|u| u < at) {
            *until = Some(at);
        }
    }

    /// A valid access token, refreshing it first when it is missing or about to expire.
    /// `refused`: the token Dropbox just called expired; it is refreshed unless another worker
    /// already replaced it.
    fn access_token(&self, refused: Option<&str>) -> Result<String, ApiError> {
        let mut st = self.token.lock().unwrap_or_else(|p| p.into_inner());
        let stale = st.expires_at.is_some_and(|at| Instant::now() + REFRESH_MARGIN >= at);
        if let Some(t) = &st.access {
            if !stale && refused.is_none_or(|r| r != t) {
                return Ok(t.clone());
            }
        }
        let force_refresh = refused.is_some();
        match &self.credentials {
            Credentials::AccessToken(t) if !force_refresh => Ok(t.expose().to_string()),
            Credentials::AccessToken(_) => Err(ApiError::Auth { tag: "expired_access_token".into() }),
            Credentials::Refresh { app_key, refresh_token, .. } => {
                let grant = super::auth::refresh(self, app_key, refresh_token.expose())?;
                st.expires_at = grant.expires_in.map(|s| Instant::now() + Duration::from_secs(s));
                st.access = Some(grant.access_token.expose().to_string());
                Ok(grant.access_token.expose().to_string())
            }
        }
    }

    /// An RPC route on the API host: JSON in, JSON out.
    pub fn rpc<A: Serialize, R: DeserializeOwned>(&self, route: &str, arg: &A) -> Result<R, ApiError> {
        let body = Bytes::from(serde_json::to_vec(arg).map_err(|e| ApiError::Protocol { route: route.into(), message: e.to_string() })?);
        self.call(route, Host::Api, None, body)
    }

    /// A content-upload route: the argument in `Dropbox-API-Arg`, `data` as the body.
    pub fn upload<A: Serialize, R: DeserializeOwned>(&self, route: &str, arg: &A, data: Bytes) -> Result<R, ApiError> {
        let header = wire::header_arg(arg).map_err(|e| ApiError::Protocol { route: route.into(), message: e.to_string() })?;
        self.call(route, Host::Content, Some(header), data)
    }

    fn call<R: DeserializeOwned>(&self, route: &str, host: Host, header: Option<String>, body: Bytes) -> Result<R, ApiError> {
        let base = match host {
            Host::Api => &self.endpoints.api,
            Host::Content => &self.endpoints.content,
        };
        let url = format!("{base}{route}");
        let mut attempts = 0u32;
        let mut rate_limited = 0u32;
        let mut refreshed = false;
        loop {
            let token = self.access_token(None)?;
            self.wait_for_pause();
            let mut req: RequestBuilder = self.http.post(&url).bearer_auth(&token);
            req = match &header {
                Some(h) => req.header("Dropbox-API-Arg", h).header("Content-Type", "application/octet-stream"),
                None => req.header("Content-Type", "application/json"),
            };
            self.counters.calls.fetch_add(1, Ordering::Relaxed);
            if header.is_some() {
                self.counters.bytes_sent.fetch_add(body.len() as u64, Ordering::Relaxed);
            }
            let outcome = req.body(body.clone()).send().and_then(|r| {
                let status = r.status();
                let retry_after = r.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
                let json = r.headers().get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("json"));
                let text = read_body(r)?;
                Ok((status, retry_after, json, text))
            });
            let wait = match outcome {
                Err(e) => {
                    attempts += 1;
                    if attempts >= self.retry.max_attempts {
                        return Err(ApiError::Exhausted { route: route.into(), attempts, last: describe(&e) });
                    }
                    self.retry.backoff(attempts - 1)
                }
                Ok((status, retry_after, json, text)) => {
                    if status.is_success() {
                        return parse(route, &text);
                    }
                    let value: Option<Value> = if json { serde_json::from_str(&text).ok() } else { None };
                    match status {
                        StatusCode::TOO_MANY_REQUESTS => {
                            rate_limited += 1;
                            if rate_limited > self.retry.max_rate_limited {
                                return Err(ApiError::Exhausted { route: route.into(), attempts: rate_limited, last: "HTTP 429".into() });
                            }
                            let body_after = value.as_ref().and_then(|v| v.get("error")).and_then(|e| e.get("retry_after")).and_then(Value::as_u64);
                            // Dropbox always sends Retry-After on 429; without one, 5 s as the SDK does.
                            let wait = Duration::from_secs(retry_after.or(body_after).unwrap_or(5));
                            self.pause(wait);
                            wait
                        }
                        StatusCode::UNAUTHORIZED => {
                            let tag = value.as_ref().and_then(|v| v.get("error")).map(tag_chain).and_then(|t| t.first().cloned()).unwrap_or_else(|| "unauthorized".into());
                            if tag == "expired_access_token" && !refreshed && self.credentials.can_refresh() {
                                refreshed = true;
                                self.access_token(Some(&token))?;
                                continue;
                            }
                            return Err(ApiError::Auth { tag });
                        }
                        StatusCode::CONFLICT => {
                            let error = value.as_ref().and_then(|v| v.get("error")).cloned().unwrap_or(Value::Null);
                            let summary = value.as_ref().and_then(|v| v.get("error_summary")).and_then(Value::as_str).unwrap_or(&text).to_string();
                            let err = ApiError::Route { route: route.into(), summary, error };
                            // Namespace lock contention: wait and try again.
                            if err.has_tag("too_many_write_operations") && attempts + 1 < self.retry.max_attempts {
                                attempts += 1;
                                self.counters.retries.fetch_add(1, Ordering::Relaxed);
                                std::thread::sleep(self.retry.backoff(attempts - 1));
                                continue;
                            }
                            return Err(err);
                        }
                        s if s.is_server_error() => {
                            attempts += 1;
                            if attempts >= self.retry.max_attempts {
                                return Err(ApiError::Exhausted { route: route.into(), attempts, last: format!("HTTP {}", s.as_u16()) });
                            }
                            self.retry.backoff(attempts - 1)
                        }
                        s => {
                            return Err(ApiError::Rejected { route: route.into(), status: s.as_u16(), message: text.chars().take(500).collect() })
                        }
                    }
                }
            };
            self.counters.retries.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(wait);
        }
    }

    /// POST a form to `/oauth2/token` (no bearer token; the grant authenticates).
    pub(crate) fn token_request(&self, form: &[(&str, &str)]) -> Result<TokenGrant, ApiError> {
        let url = format!("{}/oauth2/token", self.endpoints.token);
        let mut attempts = 0;
        loop {
            self.counters.calls.fetch_add(1, Ordering::Relaxed);
            let outcome = self.http.post(&url).form(form).send().and_then(|r| {
                let status = r.status();
                Ok((status, read_body(r)?))
            });
            match outcome {
                Ok((s, text)) if s.is_success() => {
                    return serde_json::from_str(&text).map_err(|e| ApiError::Protocol { route: "/oauth2/token".into(), message: e.to_string() })
                }
                Ok((s, text)) if !s.is_server_error() && s != StatusCode::TOO_MANY_REQUESTS => {
                    #[derive(Deserialize)]
                    struct OAuthError {
                        error: String,
                        #[serde(default)]
                        error_description: String,
                    }
                    return Err(ApiError::OAuth(match serde_json::from_str::<OAuthError>(&text) {
                        Ok(e) if e.error_description.is_empty() => e.error,
                        Ok(e) => format!("{}: {}", e.error, e.error_description),
                        Err(_) => format!("HTTP {}", s.as_u16()),
                    }));
                }
                Ok((s, _)) if attempts + 1 >= self.retry.max_attempts => {
                    return Err(ApiError::Exhausted { route: "/oauth2/token".into(), attempts: attempts + 1, last: format!("HTTP {}", s.as_u16()) })
                }
                Err(e) if attempts + 1 >= self.retry.max_attempts => {
                    return Err(ApiError::Exhausted { route: "/oauth2/token".into(), attempts: attempts + 1, last: describe(&e) })
                }
                _ => {}
            }
            std::thread::sleep(self.retry.backoff(attempts));
            attempts += 1;
        }
    }
}

fn read_body(r: Response) -> reqwest::Result<String> {
    r.text()
}

/// A transport error in words, without the URL's query (never a token: those travel in headers).
fn describe(e: &reqwest::Error) -> String {
    let mut s = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "could not connect".to_string()
    } else {
        "connection failed".to_string()
    };
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

fn parse<R: DeserializeOwned>(route: &str, text: &str) -> Result<R, ApiError> {
    // Routes with a void result answer `null`; an empty body means the same.
    let text = if text.trim().is_empty() { "null" } else { text };
    serde_json::from_str(text).map_err(|e| ApiError::Protocol { route: route.into(), message: format!("{e}: {}", text.chars().take(200).collect::<String>()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_chain_follows_nested_unions() {
        let e: Value = serde_json::from_str(
            r#"{".tag": "lookup_failed", "lookup_failed": {".tag": "incorrect_offset", "correct_offset": 12556930}}"#,
        )
        .unwrap();
        assert_eq!(tag_chain(&e), ["lookup_failed", "incorrect_offset"]);
        let err = ApiError::Route { route: "/2/files/upload_session/finish".into(), summary: String::new(), error: e };
        assert_eq!(err.correct_offset(), Some(12556930));
        assert!(err.has_tag("incorrect_offset"));
        let conflict: Value =
            serde_json::from_str(r#"{".tag": "path", "path": {".tag": "conflict", "conflict": {".tag": "file"}}}"#).unwrap();
        assert_eq!(tag_chain(&conflict), ["path", "conflict", "file"]);
        let rate: Value = serde_json::from_str(r#"{"reason": {".tag": "too_many_write_operations"}, "retry_after": 1}"#).unwrap();
        assert_eq!(tag_chain(&rate), Vec::<String>::new());
    }

    #[test]
    fn backoff_grows_and_stays_bounded() {
        let p = RetryPolicy { base_backoff: Duration::from_millis(100), max_backoff: Duration::from_secs(2), ..RetryPolicy::default() };
        for attempt in 0..10 {
            let d = p.backoff(attempt);
            let cap = Duration::from_millis(100 * (1u64 << attempt)).min(Duration::from_secs(2));
            assert!(d >= cap / 2 && d <= cap, "attempt {attempt}: {d:?} not within [{:?}, {cap:?}]", cap / 2);
        }
    }

    #[test]
    fn one_base_url_serves_every_host() {
        let e = Endpoints::single("http://127.0.0.1:8080/");
        assert_eq!(e.api, "http://127.0.0.1:8080");
        assert_eq!(e.content, e.api);
        assert_eq!(e.token, e.api);
        assert_eq!(Endpoints::dropbox().content, "https://content.dropboxapi.com");
    }
}
