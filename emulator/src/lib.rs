//! A loopback emulator of the subset of the Dropbox HTTP API v2 that photoferry uses,
//! for integration tests and benchmarks.
//!
//! [`Emulator::start`] binds `127.0.0.1` and serves, from one listener:
//!
//! * the content-upload routes `/2/files/upload`, `/2/files/upload_session/start`,
//!   `append_v2` and `finish` (raw bodies, JSON argument in `Dropbox-API-Arg`);
//! * the RPC routes `/2/files/upload_session/finish_batch_v2`, `/2/files/list_folder`,
//!   `list_folder/continue`, `/2/files/get_metadata`, `/2/files/create_folder_v2` and
//!   `/2/auth/token/revoke`;
//! * `GET /oauth2/authorize` (auto-approves and answers with the code as plain text)
//!   and `POST /oauth2/token` (PKCE S256 code exchange and refresh).
//!
//! The namespace is case-insensitive and NFC-normalizing like Dropbox, applies the
//! `WriteMode` rules (identical content is a no-op, autorename, `update` revs,
//! conflicts, disallowed names, quota) and stores only sizes and content hashes, so
//! multi-gigabyte uploads cost no memory. Faults ([`Fault`]) can be queued per route
//! to exercise retries: rate limits, server errors, connection resets, lost responses,
//! latency, listing resets and per-entry batch failures. [`Emulator::stats`] exposes
//! per-route call counts, uploaded bytes, batch-commit concurrency and a request log.
//!
//! ```no_run
//! use dropbox_emulator::{Config, Emulator, Fault, FaultKind};
//!
//! let emulator = Emulator::start(Config { list_limit: 3, ..Config::default() }).unwrap();
//! emulator.inject(Fault {
//!     route: "/2/files/upload_session/append_v2".into(),
//!     nth: 2,
//!     kind: FaultKind::LostResponse,
//! });
//! let base_url = emulator.url(); // point the client's api, content and token URLs here
//! # let _ = base_url;
//! ```
//!
//! The HTTP server is hand-rolled on `std::net` (one thread per connection, keep-alive,
//! `Content-Length` bodies only) so that faults can be injected exactly.

mod api;
mod hash;
mod http;
mod namespace;
mod oauth;
mod server;
mod state;
mod timefmt;

use std::collections::BTreeMap;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use hash::{content_hash, ContentHasher, BLOCK_SIZE};

use namespace::{normalize, CommitInfo, WriteMode};
use server::Shared;
use state::State;

/// Emulator settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Port to bind on 127.0.0.1; 0 picks an ephemeral port.
    pub port: u16,
    /// The only accepted OAuth `client_id`. Default `"test-app-key"`.
    pub app_key: String,
    /// Access tokens accepted without OAuth. They never expire unless
    /// [`Emulator::expire_tokens`] is called. Default: `["emulator-token"]`.
    pub static_tokens: Vec<String>,
    /// Pre-seeded valid refresh tokens (for `client_id` = `app_key`).
    pub refresh_tokens: Vec<String>,
    /// Lifetime (`expires_in`) of tokens issued by `/oauth2/token`; afterwards they get
    /// `401 expired_access_token`. Default 4 hours.
    pub access_token_ttl: Duration,
    /// Server-side cap on the `list_folder` page size. Default 2000.
    pub list_limit: usize,
    /// Total bytes of files allowed; commits beyond it fail with
    /// `path/insufficient_space`. Default unlimited.
    pub quota_bytes: Option<u64>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            port: 0,
            app_key: "test-app-key".into(),
            static_tokens: vec!["emulator-token".into()],
            refresh_tokens: Vec::new(),
            access_token_ttl: Duration::from_secs(4 * 3600),
            list_limit: 2000,
            quota_bytes: None,
        }
    }
}

/// A stored file, as the emulator sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    /// The path as first written (parents keep their first-written casing).
    pub path_display: String,
    /// The lookup key: NFC-normalized, lower-cased path.
    pub path_lower: String,
    pub size: u64,
    /// The Dropbox content hash (64 hex characters).
    pub content_hash: String,
    /// `%Y-%m-%dT%H:%M:%SZ`.
    pub client_modified: String,
    pub rev: String,
    /// `id:...`.
    pub id: String,
}

/// Counters and the request log.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Requests per route path, e.g. `"/2/files/upload_session/start"`, faulted ones included.
    pub calls: BTreeMap<String, u64>,
    /// Body bytes received on the content routes (start, append_v2, finish, upload),
    /// including faulted requests whose body was read.
    pub upload_bytes: u64,
    /// The most `finish_batch_v2` calls that were in flight at once, counting calls
    /// rejected with `too_many_write_operations` because another was in flight.
    pub max_concurrent_batch_commits: u32,
    /// Every request, in the order the responses were decided.
    pub log: Vec<LogEntry>,
}

/// One served request.
#[derive(Clone, Debug)]
pub struct LogEntry {
    pub route: String,
    /// The response status; 0 when no response was sent (reset or lost response).
    pub status: u16,
    /// When the request had been read.
    pub at: Instant,
    /// The [`FaultKind::name`] of the fault applied to this request, if any.
    pub fault: Option<String>,
}

/// A fault to inject into a future request.
#[derive(Clone, Debug)]
pub struct Fault {
    /// The exact route path (e.g. `"/2/files/upload_session/append_v2"`) or `"*"`.
    pub route: String,
    /// 1-based: the fault hits the nth matching request counted from injection.
    /// If two faults fall due on the same request, the later-queued one hits the next.
    pub nth: u64,
    pub kind: FaultKind,
}

/// What an injected fault does.
#[derive(Clone, Debug)]
pub enum FaultKind {
    /// 429 with a JSON `too_many_requests` body and `Retry-After: N`; not processed.
    RateLimitJson { retry_after: u64 },
    /// 429 with the `text/plain` body `too_many_requests` and `Retry-After: N`; not processed.
    RateLimitText { retry_after: u64 },
    /// 429 JSON `too_many_write_operations`, `retry_after` 1, `Retry-After: 1`; not processed.
    TooManyWriteOperations,
    /// This status with a text body; the request is not processed.
    ServerError(u16),
    /// The request is read, then the connection closed without a response; not processed.
    Reset,
    /// The request is processed fully (state changes), then the connection is closed
    /// without a response.
    LostResponse,
    /// Sleep, then process normally.
    Latency(Duration),
    /// 409 `reset` (meant for `/2/files/list_folder/continue`); not processed.
    ListReset,
    /// `finish_batch_v2`: entry `index` fails with `too_many_write_operations` and its
    /// session stays usable; the other entries are processed normally.
    BatchEntryTooManyWriteOperations { index: usize },
}

impl FaultKind {
    /// The variant name, as recorded in [`LogEntry::fault`].
    pub fn name(&self) -> &'static str {
        match self {
            Self::RateLimitJson { .. } => "RateLimitJson",
            Self::RateLimitText { .. } => "RateLimitText",
            Self::TooManyWriteOperations => "TooManyWriteOperations",
            Self::ServerError(_) => "ServerError",
            Self::Reset => "Reset",
            Self::LostResponse => "LostResponse",
            Self::Latency(_) => "Latency",
            Self::ListReset => "ListReset",
            Self::BatchEntryTooManyWriteOperations { .. } => "BatchEntryTooManyWriteOperations",
        }
    }
}

/// A running emulator. Dropping it stops the listener and closes open connections
/// (best effort).
#[derive(Debug)]
pub struct Emulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    acceptor: Option<JoinHandle<()>>,
}

impl Emulator {
    /// Binds `127.0.0.1:config.port` and starts serving on background threads.
    ///
    /// # Errors
    ///
    /// If the port cannot be bound or the accept thread cannot be spawned.
    pub fn start(config: Config) -> io::Result<Emulator> {
        let listener = TcpListener::bind(("127.0.0.1", config.port))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(State::new(&config)));
        let acceptor = server::spawn_acceptor(listener, Arc::clone(&shared))?;
        Ok(Emulator {
            shared,
            addr,
            acceptor: Some(acceptor),
        })
    }

    /// The base URL, `http://127.0.0.1:PORT`, for the API, content and token hosts alike.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues a fault; each queued fault fires once.
    pub fn inject(&self, fault: Fault) {
        self.shared
            .lock()
            .add_fault(fault.route, fault.nth, fault.kind);
    }

    /// Every stored file, sorted by `path_lower`.
    pub fn files(&self) -> Vec<FileEntry> {
        self.shared.lock().ns.files()
    }

    /// The file at `path`, looked up NFC-normalized and case-insensitively.
    pub fn file(&self, path: &str) -> Option<FileEntry> {
        self.shared.lock().ns.file_entry(&normalize(path))
    }

    /// Stores a file as if it had been uploaded earlier (overwriting, creating parents).
    ///
    /// # Panics
    ///
    /// If `path` is not a valid Dropbox file path (or a folder, or under a file),
    /// `client_modified` is not `%Y-%m-%dT%H:%M:%SZ`, or the quota is exceeded: this
    /// seeds test fixtures, so a bad argument is a bug in the test.
    pub fn put_file(&self, path: &str, bytes: &[u8], client_modified: &str) -> FileEntry {
        assert!(
            timefmt::is_valid_timestamp(client_modified),
            "put_file: bad client_modified {client_modified:?}"
        );
        let commit = CommitInfo {
            path: path.to_owned(),
            mode: WriteMode::Overwrite,
            autorename: false,
            client_modified: Some(client_modified.to_owned()),
            strict_conflict: true,
        };
        let mut state = self.shared.lock();
        let now = state.now_secs();
        let key = match state
            .ns
            .commit(&commit, bytes.len() as u64, &content_hash(bytes), now)
        {
            Ok(key) => key,
            Err(e) => panic!("put_file({path:?}) failed: {e:?}"),
        };
        state
            .ns
            .file_entry(&key)
            .unwrap_or_else(|| panic!("put_file({path:?}): no file after commit"))
    }

    /// A snapshot of the counters and the request log.
    pub fn stats(&self) -> Stats {
        self.shared.lock().stats.clone()
    }

    /// Makes every access token issued so far and every static token answer
    /// `401 expired_access_token`. Refresh tokens keep working and tokens issued
    /// afterwards are valid.
    pub fn expire_tokens(&self) {
        self.shared.lock().expire_tokens();
    }

    /// Moves the emulated clock forward: upload sessions expire after 7 days
    /// (`not_found`), issued tokens after `access_token_ttl`, and `server_modified`
    /// follows the emulated clock.
    pub fn advance_clock(&self, by: Duration) {
        self.shared.lock().advance_clock(by);
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.shared.shut_down();
        // Wake the blocking accept so the thread sees the flag; join only if that worked.
        if TcpStream::connect(self.addr).is_ok() {
            if let Some(acceptor) = self.acceptor.take() {
                let _ = acceptor.join();
            }
        }
        self.shared.shut_down();
    }
}
