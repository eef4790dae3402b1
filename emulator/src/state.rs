//! All mutable emulator state, kept behind one mutex by the server.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::hash::ContentHasher;
use crate::namespace::{CommitInfo, Namespace, WriteError};
use crate::{Config, FaultKind, Stats};

/// Upload sessions expire this long after they were started.
const SESSION_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// An upload session: the data received so far, hashed but not stored.
#[derive(Clone, Debug)]
pub(crate) struct Session {
    pub hasher: ContentHasher,
    pub closed: bool,
    /// Emulated clock time when the session was started.
    started: Duration,
}

impl Session {
    /// Bytes received so far.
    pub fn len(&self) -> u64 {
        self.hasher.len()
    }
}

/// `UploadSessionLookupError`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LookupError {
    NotFound,
    IncorrectOffset(u64),
    Closed,
    NotClosed,
}

impl LookupError {
    pub fn to_json(self) -> Value {
        match self {
            Self::NotFound => json!({".tag": "not_found"}),
            Self::IncorrectOffset(correct_offset) => {
                json!({".tag": "incorrect_offset", "correct_offset": correct_offset})
            }
            Self::Closed => json!({".tag": "closed"}),
            Self::NotClosed => json!({".tag": "not_closed"}),
        }
    }
}

/// `UploadSessionFinishError`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FinishError {
    Lookup(LookupError),
    Path(WriteError),
    TooManyWriteOperations,
}

impl From<LookupError> for FinishError {
    fn from(e: LookupError) -> Self {
        Self::Lookup(e)
    }
}

impl FinishError {
    pub fn to_json(self) -> Value {
        match self {
            Self::Lookup(e) => json!({".tag": "lookup_failed", "lookup_failed": e.to_json()}),
            Self::Path(e) => json!({".tag": "path", "path": e.to_json()}),
            Self::TooManyWriteOperations => json!({".tag": "too_many_write_operations"}),
        }
    }
}

/// Why a bearer token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AuthError {
    Invalid,
    Expired,
}

#[derive(Clone, Debug)]
struct AccessToken {
    /// Emulated clock time of expiry; `None` never expires by itself.
    expires_at: Option<Duration>,
    /// Set by `Emulator::expire_tokens`.
    force_expired: bool,
    /// The refresh token this access token was issued from.
    refresh_token: Option<String>,
}

/// A `list_folder` cursor. Cursors are immutable, so retrying a `continue` with the
/// same cursor returns the same page again.
#[derive(Clone, Debug)]
struct Cursor {
    dir_key: String,
    recursive: bool,
    page_size: usize,
    /// The snapshot being paged through.
    entries: Arc<Vec<Value>>,
    /// Index of the next entry to return; at the end, the cursor reports changes.
    pos: usize,
    /// The namespace sequence number the snapshot reflects.
    seq: u64,
}

#[derive(Clone, Debug)]
struct PendingFault {
    route: String,
    /// Matching requests still to come before the fault fires (0 = the next one).
    remaining: u64,
    kind: FaultKind,
}

impl PendingFault {
    fn matches(&self, route: &str) -> bool {
        self.route == "*" || self.route == route
    }
}

/// The whole emulator state.
#[derive(Debug)]
pub(crate) struct State {
    pub app_key: String,
    pub access_token_ttl: Duration,
    pub list_limit: usize,
    pub ns: Namespace,
    pub stats: Stats,
    /// `finish_batch_v2` calls currently being processed.
    pub batches_in_flight: u32,
    sessions: HashMap<String, Session>,
    tokens: HashMap<String, AccessToken>,
    refresh_tokens: HashSet<String>,
    /// Authorization code -> PKCE code challenge.
    auth_codes: HashMap<String, String>,
    cursors: HashMap<String, Cursor>,
    faults: Vec<PendingFault>,
    clock_offset: Duration,
    counter: u64,
}

impl State {
    pub fn new(config: &Config) -> Self {
        let tokens = config
            .static_tokens
            .iter()
            .map(|token| {
                let access = AccessToken {
                    expires_at: None,
                    force_expired: false,
                    refresh_token: None,
                };
                (token.clone(), access)
            })
            .collect();
        Self {
            app_key: config.app_key.clone(),
            access_token_ttl: config.access_token_ttl,
            list_limit: config.list_limit.max(1),
            ns: Namespace::new(config.quota_bytes),
            stats: Stats::default(),
            batches_in_flight: 0,
            sessions: HashMap::new(),
            tokens,
            refresh_tokens: config.refresh_tokens.iter().cloned().collect(),
            auth_codes: HashMap::new(),
            cursors: HashMap::new(),
            faults: Vec::new(),
            clock_offset: Duration::ZERO,
            counter: 0,
        }
    }

    // ----- clock -----

    /// The emulated time since the Unix epoch: wall clock plus `advance_clock` offsets.
    pub fn now(&self) -> Duration {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        wall + self.clock_offset
    }

    pub fn now_secs(&self) -> u64 {
        self.now().as_secs()
    }

    pub fn advance_clock(&mut self, by: Duration) {
        self.clock_offset += by;
    }

    /// A fresh opaque identifier with the given prefix.
    fn unique(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}{:012}", self.counter)
    }

    // ----- faults -----

    pub fn add_fault(&mut self, route: String, nth: u64, kind: FaultKind) {
        let remaining = nth.saturating_sub(1);
        self.faults.push(PendingFault {
            route,
            remaining,
            kind,
        });
    }

    /// Counts a request to `route` against the queued faults and takes the one that
    /// fires now, if any (the earliest queued when several are due).
    pub fn take_fault(&mut self, route: &str) -> Option<FaultKind> {
        let due = self
            .faults
            .iter()
            .position(|f| f.matches(route) && f.remaining == 0);
        let fired = due.map(|i| self.faults.remove(i).kind);
        for fault in self.faults.iter_mut().filter(|f| f.matches(route)) {
            fault.remaining = fault.remaining.saturating_sub(1);
        }
        fired
    }

    // ----- tokens -----

    pub fn authenticate(&self, token: &str) -> Result<(), AuthError> {
        let access = self.tokens.get(token).ok_or(AuthError::Invalid)?;
        let expired = access.force_expired || access.expires_at.is_some_and(|at| self.now() >= at);
        if expired {
            Err(AuthError::Expired)
        } else {
            Ok(())
        }
    }

    /// Issues an access token valid for the configured TTL.
    pub fn issue_access_token(&mut self, refresh_token: Option<String>) -> String {
        let token = self.unique("sl.emu-access-");
        let expires_at = Some(self.now() + self.access_token_ttl);
        self.tokens.insert(
            token.clone(),
            AccessToken {
                expires_at,
                force_expired: false,
                refresh_token,
            },
        );
        token
    }

    pub fn issue_refresh_token(&mut self) -> String {
        let token = self.unique("emu-refresh-");
        self.refresh_tokens.insert(token.clone());
        token
    }

    pub fn refresh_token_valid(&self, token: &str) -> bool {
        self.refresh_tokens.contains(token)
    }

    /// Makes every existing access token answer `expired_access_token`.
    pub fn expire_tokens(&mut self) {
        for access in self.tokens.values_mut() {
            access.force_expired = true;
        }
    }

    /// Revokes `token`, the refresh token it came from and every other access token
    /// issued from that refresh token.
    pub fn revoke(&mut self, token: &str) {
        if let Some(refresh) = self.tokens.remove(token).and_then(|t| t.refresh_token) {
            self.refresh_tokens.remove(&refresh);
            self.tokens
                .retain(|_, t| t.refresh_token.as_deref() != Some(refresh.as_str()));
        }
    }

    pub fn issue_auth_code(&mut self, code_challenge: String) -> String {
        let code = self.unique("emu-code-");
        self.auth_codes.insert(code.clone(), code_challenge);
        code
    }

    /// The PKCE challenge of an outstanding authorization code.
    pub fn auth_code_challenge(&self, code: &str) -> Option<&str> {
        self.auth_codes.get(code).map(String::as_str)
    }

    pub fn consume_auth_code(&mut self, code: &str) {
        self.auth_codes.remove(code);
    }

    // ----- upload sessions -----

    pub fn new_session(&mut self, hasher: ContentHasher, closed: bool) -> String {
        let id = self.unique("pid_upload_session:EMU");
        let session = Session {
            hasher,
            closed,
            started: self.now(),
        };
        self.sessions.insert(id.clone(), session);
        id
    }

    /// The live session `id`, whose length must equal `offset`.
    pub fn session_at(&mut self, id: &str, offset: u64) -> Result<&mut Session, LookupError> {
        let now = self.now();
        let expired = self
            .sessions
            .get(id)
            .is_some_and(|s| now >= s.started + SESSION_LIFETIME);
        if expired {
            self.sessions.remove(id);
        }
        let session = self.sessions.get_mut(id).ok_or(LookupError::NotFound)?;
        if session.len() != offset {
            return Err(LookupError::IncorrectOffset(session.len()));
        }
        Ok(session)
    }

    /// Commits session `id`'s data; on success the session is gone.
    pub fn commit_session(&mut self, id: &str, commit: &CommitInfo) -> Result<String, FinishError> {
        let session = self.sessions.get(id).ok_or(LookupError::NotFound)?;
        let (size, hash) = (session.len(), session.hasher.clone().finish());
        let now = self.now_secs();
        let key = self
            .ns
            .commit(commit, size, &hash, now)
            .map_err(FinishError::Path)?;
        self.sessions.remove(id);
        Ok(key)
    }

    // ----- listing -----

    /// Starts a listing of `dir_key` and returns its first page.
    pub fn start_listing(&mut self, dir_key: String, recursive: bool, page_size: usize) -> Value {
        let entries = Arc::new(self.ns.list(&dir_key, recursive, None));
        let seq = self.ns.seq();
        self.page(Cursor {
            dir_key,
            recursive,
            page_size,
            entries,
            pos: 0,
            seq,
        })
    }

    /// The next page for `cursor`, or `None` if the cursor is unknown.
    ///
    /// A cursor past the end of its snapshot lists what changed since the snapshot.
    pub fn continue_listing(&mut self, cursor: &str) -> Option<Value> {
        let mut cursor = self.cursors.get(cursor)?.clone();
        if cursor.pos >= cursor.entries.len() {
            let changes = self
                .ns
                .list(&cursor.dir_key, cursor.recursive, Some(cursor.seq));
            cursor.entries = Arc::new(changes);
            cursor.pos = 0;
            cursor.seq = self.ns.seq();
        }
        Some(self.page(cursor))
    }

    fn page(&mut self, mut cursor: Cursor) -> Value {
        let end = (cursor.pos + cursor.page_size).min(cursor.entries.len());
        let entries = cursor.entries[cursor.pos..end].to_vec();
        cursor.pos = end;
        let has_more = end < cursor.entries.len();
        let id = self.unique("emu-cursor-");
        self.cursors.insert(id.clone(), cursor);
        json!({"entries": entries, "cursor": id, "has_more": has_more})
    }
}
