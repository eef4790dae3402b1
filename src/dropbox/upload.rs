//! `photoferry upload DIR --to /Photos`: mirror a folder tree into Dropbox.
//!
//! Stages: scan the tree → hash (Dropbox `content_hash`, cached by size+mtime) → refresh the
//! remote listing (cursor kept in the manifest) → plan (skip what is there with the same hash;
//! a different file at the same path gets a ` (2)` name, or is refused) → send → commit → verify.
//!
//! Sending: `--transfers` workers take files, largest first so one big video never holds up the
//! end of the run. A file up to one chunk goes in a single `upload_session/start` call with
//! `close=true`; a larger one goes in chunks (`append_v2`), its session id and offset saved in the
//! manifest after every chunk so a killed run resumes it. One committer thread gathers the closed
//! sessions and commits them with `finish_batch_v2` (one commit at a time, as Dropbox requires),
//! then compares each returned `content_hash` with the local one before recording the file.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rayon::prelude::*;
use serde::Serialize;
use serde_json::{json, Value};

use super::api::{ApiError, Client};
use super::content_hash::{self, ContentHasher};
use super::remote::{self, FileMetadata, ListError, Refresh};
use super::state::{remote_key, RemoteEntry, SessionRow, State};
use crate::error::{Error, FileError, FileErrorKind};
use crate::names::{nfc, with_suffix};
use crate::progress::{Progress, Stage};

/// Names Dropbox will not store (compared case-insensitively); never sent.
pub const IGNORED_NAMES: [&str; 6] = ["desktop.ini", "thumbs.db", ".ds_store", "icon\r", ".dropbox", ".dropbox.attr"];

/// Dropbox's limit for one request body.
pub const MAX_REQUEST: usize = 150 * 1024 * 1024;
/// Default chunk: rclone measured 48 MiB at 91 % of peak speed.
pub const DEFAULT_CHUNK: usize = 48 * 1024 * 1024;
/// Chunked sessions live 7 days; resume only those started less than 6 days ago.
const SESSION_RESUME_SECS: i64 = 6 * 24 * 3600;

/// What to do when Dropbox already holds a different file at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnConflict {
    /// Upload under the first free ` (2)`-style name and report it (default).
    Rename,
    /// Leave the path alone and report the file as an error.
    Refuse,
}

/// Options of `photoferry upload`.
#[derive(Debug, Clone)]
pub struct UploadOptions {
    /// The organized tree (any folder works). Its state lives in `DIR/.photoferry/`.
    pub dir: PathBuf,
    /// The Dropbox folder to mirror into, e.g. `/Photos` (`""` = the app folder's root).
    pub to: String,
    /// Plan only: print what would be sent, send nothing. Default: false.
    pub dry_run: bool,
    /// Default: [`OnConflict::Rename`].
    pub on_conflict: OnConflict,
    /// Files in flight at once. Default: 4.
    pub transfers: usize,
    /// Bytes per chunk of a large file, a multiple of 4 MiB up to 148 MiB. Files up to this size
    /// go in one request. Default: 48 MiB.
    pub chunk_size: usize,
    /// Sessions committed per `finish_batch_v2` (1..=1000). Default: 500.
    pub batch_size: usize,
    /// Commit what is waiting after this long even if the batch is not full. Default: 5 s.
    pub batch_timeout: Duration,
}

impl UploadOptions {
    pub fn new(dir: PathBuf, to: &str) -> UploadOptions {
        UploadOptions {
            dir,
            to: normalize_root(to),
            dry_run: false,
            on_conflict: OnConflict::Rename,
            transfers: 4,
            chunk_size: DEFAULT_CHUNK,
            batch_size: 500,
            batch_timeout: Duration::from_secs(5),
        }
    }
}

/// `Photos/`, `/Photos/`, `/Photos` → `/Photos`; `/` and `` → `` (Dropbox's root).
pub fn normalize_root(to: &str) -> String {
    let t = nfc(to.trim()).trim_matches('/').to_string();
    if t.is_empty() {
        String::new()
    } else {
        format!("/{t}")
    }
}

/// A file of the local tree.
#[derive(Debug, Clone)]
pub struct LocalFile {
    /// Relative to DIR, '/'-separated, NFC.
    pub rel: String,
    pub abs: PathBuf,
    pub size: u64,
    pub mtime_ns: i64,
    pub mtime_unix: i64,
}

/// Walk `dir` (not following links), skipping `.photoferry/` and the names Dropbox refuses.
/// Returns the files and the (path, reason) of what was left out.
pub fn scan_tree(dir: &Path) -> Result<(Vec<LocalFile>, Vec<(String, String)>), Error> {
    let mut files = Vec::new();
    let mut left_out = Vec::new();
    let walker = walkdir::WalkDir::new(dir).follow_links(false).sort_by_file_name().into_iter().filter_entry(|e| {
        // The state folder, and the contact sheet `photoferry report` writes, are not the library.
        !(e.depth() == 1
            && (e.file_name() == ".photoferry"
                || (e.file_name() == crate::report::REPORT_DIR && e.path().join(crate::report::MARKER).is_file())))
    });
    for entry in walker {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(dir).to_path_buf();
            Error::io(path, e.into_io_error().unwrap_or_else(|| std::io::Error::other("file system loop")))
        })?;
        if entry.depth() == 0 {
            continue;
        }
        let rel_path = entry.path().strip_prefix(dir).unwrap_or(entry.path());
        let rel = nfc(&rel_path.to_string_lossy().replace('\\', "/"));
        let ft = entry.file_type();
        if ft.is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().to_lowercase();
        if IGNORED_NAMES.contains(&name.as_str()) {
            left_out.push((rel, "Dropbox does not store this name".into()));
            continue;
        }
        if ft.is_symlink() {
            left_out.push((rel, "symbolic link, not followed".into()));
            continue;
        }
        if entry.path().to_str().is_none() {
            left_out.push((rel, "name is not valid UTF-8; rename it to upload".into()));
            continue;
        }
        let md = entry.metadata().map_err(|e| Error::io(entry.path(), e.into_io_error().unwrap_or_else(|| std::io::Error::other("metadata"))))?;
        let mtime = md.modified().ok().and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok()).unwrap_or_default();
        files.push(LocalFile {
            rel,
            abs: entry.path().to_path_buf(),
            size: md.len(),
            mtime_ns: mtime.as_nanos().min(i64::MAX as u128) as i64,
            mtime_unix: mtime.as_secs() as i64,
        });
    }
    Ok((files, left_out))
}

/// Dropbox content hashes of `files`, from the cache where size and mtime still match, else read
/// (in parallel). Unreadable files come back as errors.
pub fn content_hashes(state: &State, files: &[LocalFile], progress: &dyn Progress) -> Result<(HashMap<String, String>, Vec<FileError>), Error> {
    let cached = state.cached_hashes()?;
    let mut out = HashMap::new();
    let mut todo = Vec::new();
    for f in files {
        match cached.get(&f.rel) {
            Some((size, mtime, h)) if *size == f.size && *mtime == f.mtime_ns => {
                out.insert(f.rel.clone(), h.clone());
            }
            _ => todo.push(f),
        }
    }
    progress.start(Stage::Hash, todo.len() as u64, todo.iter().map(|f| f.size).sum());
    let results: Vec<_> = todo
        .par_iter()
        .map(|f| {
            let r = File::open(&f.abs).and_then(content_hash::of_reader);
            progress.advance(1, f.size);
            (f, r)
        })
        .collect();
    progress.finish();
    let mut fresh = Vec::new();
    let mut errors = Vec::new();
    for (f, r) in results {
        match r {
            Ok(h) => {
                fresh.push((f.rel.clone(), f.size, f.mtime_ns, h.clone()));
                out.insert(f.rel.clone(), h);
            }
            Err(e) => errors.push(file_error(&f.rel, FileErrorKind::Read, format!("cannot read: {e}"), "not uploaded")),
        }
    }
    state.store_hashes(&fresh)?;
    Ok((out, errors))
}

fn file_error(location: &str, kind: FileErrorKind, message: String, action: &str) -> FileError {
    FileError { location: location.to_string(), kind, message, action: action.to_string(), year: year_of(location) }
}

fn year_of(rel: &str) -> Option<i32> {
    rel.split('/').next().filter(|y| y.len() == 4).and_then(|y| y.parse().ok())
}

/// What the plan says about one local file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Decision {
    /// Send it to `remote`. `renamed` when a different file holds the natural path.
    Upload { remote: String, renamed: bool },
    /// Dropbox already has these exact bytes at `remote`.
    Present { remote: String },
    /// A different file holds the path and `--on-conflict refuse` is set.
    Refused { remote: String },
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanItem {
    pub local: String,
    pub size: u64,
    pub content_hash: String,
    #[serde(flatten)]
    pub decision: Decision,
}

/// Decide, for every hashed local file, where it goes. Pure: the remote index is data.
pub fn plan(files: &[LocalFile], hashes: &HashMap<String, String>, remote: &HashMap<String, RemoteEntry>, opts: &UploadOptions) -> Vec<PlanItem> {
    // Names taken in this run, so two local names that differ only by case don't collide.
    let mut claimed: HashSet<String> = HashSet::new();
    let mut out = Vec::new();
    for f in files {
        let Some(hash) = hashes.get(&f.rel) else { continue };
        let natural = format!("{}/{}", opts.to, f.rel);
        let (parent, name) = match natural.rfind('/') {
            Some(i) => (&natural[..i], &natural[i + 1..]),
            None => ("", natural.as_str()),
        };
        let mut decision = None;
        for n in 1u32.. {
            let candidate = if n == 1 { natural.clone() } else { format!("{parent}/{}", with_suffix(name, n)) };
            let key = remote_key(&candidate);
            if claimed.contains(&key) {
                continue;
            }
            match remote.get(&key) {
                Some(e) if !e.is_folder && e.content_hash.as_deref() == Some(hash.as_str()) => {
                    decision = Some(Decision::Present { remote: e.path_display.clone() });
                }
                None => decision = Some(Decision::Upload { remote: candidate.clone(), renamed: n > 1 }),
                Some(_) if opts.on_conflict == OnConflict::Refuse => decision = Some(Decision::Refused { remote: candidate.clone() }),
                Some(_) => continue,
            }
            claimed.insert(key);
            break;
        }
        if let Some(decision) = decision {
            out.push(PlanItem { local: f.rel.clone(), size: f.size, content_hash: hash.clone(), decision });
        }
    }
    out
}

/// The outcome of `photoferry upload`.
#[derive(Debug, Default, Serialize)]
pub struct UploadReport {
    pub to: String,
    pub dry_run: bool,
    pub files: usize,
    pub plan: Vec<PlanItem>,
    /// Local files not sent at all (names Dropbox refuses, links): (path, reason).
    pub left_out: Vec<(String, String)>,
    pub uploaded: u64,
    pub uploaded_bytes: u64,
    pub already_there: u64,
    /// (local, remote) for files stored under a suffixed name.
    pub renamed: Vec<(String, String)>,
    pub errors: Vec<FileError>,
    /// A problem that stopped the run (full Dropbox, refused token); the files not yet sent are
    /// counted as errors too.
    pub fatal: Option<String>,
    /// How the listing was obtained: "full", "changes" or "missing".
    pub listing: String,
    pub api_calls: u64,
    pub bytes_sent: u64,
    pub retries: u64,
}

/// A run-stopping failure of upload.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error(transparent)]
    Local(#[from] Error),
    #[error(transparent)]
    List(#[from] ListError),
}

/// Run an upload. `client` is `None` only for a dry run without credentials, which plans against
/// the cached listing.
pub fn upload(client: Option<&Client>, opts: &UploadOptions, progress: &dyn Progress) -> Result<UploadReport, UploadError> {
    let state_dir = opts.dir.join(".photoferry");
    std::fs::create_dir_all(&state_dir).map_err(|e| Error::io(&state_dir, e))?;
    let _lock = crate::fsutil::Lock::acquire(&state_dir, &opts.dir)?;
    let endpoint = client.map(|c| c.endpoints.key().to_string()).unwrap_or_else(|| super::api::Endpoints::from_env().key().to_string());
    let state = State::open(&state_dir, &endpoint, if opts.dry_run { None } else { Some("upload") })?;

    progress.start(Stage::Scan, 0, 0);
    let (files, left_out) = scan_tree(&opts.dir)?;
    progress.finish();
    let (hashes, mut errors) = content_hashes(&state, &files, progress)?;

    progress.start(Stage::List, 0, 0);
    let (index, how) = match client {
        Some(c) => remote::refresh(c, &state, &opts.to)?,
        None => (state.remote_index(&opts.to)?, Refresh::Missing),
    };
    progress.finish();

    let items = plan(&files, &hashes, &index, opts);
    let mut report = UploadReport {
        to: if opts.to.is_empty() { "/".into() } else { opts.to.clone() },
        dry_run: opts.dry_run,
        files: files.len(),
        left_out,
        listing: match how {
            Refresh::Full => "full",
            Refresh::Changes => "changes",
            Refresh::Missing => "missing",
        }
        .into(),
        ..Default::default()
    };
    for item in &items {
        match &item.decision {
            Decision::Present { .. } => report.already_there += 1,
            Decision::Refused { remote } => errors.push(file_error(
                &item.local,
                FileErrorKind::Upload,
                format!("Dropbox already has a different file at {remote}"),
                "not uploaded (--on-conflict refuse)",
            )),
            Decision::Upload { remote, renamed: true } => report.renamed.push((item.local.clone(), remote.clone())),
            Decision::Upload { .. } => {}
        }
    }
    if opts.dry_run || client.is_none() {
        report.plan = items;
        report.errors = errors;
        return Ok(report);
    }
    let client = client.expect("checked above");
    let by_rel: HashMap<&str, &LocalFile> = files.iter().map(|f| (f.rel.as_str(), f)).collect();
    let mut jobs: Vec<Job> = items
        .iter()
        .filter_map(|i| match &i.decision {
            Decision::Upload { remote, .. } => {
                Some(Job { file: by_rel[i.local.as_str()].clone(), remote: remote.clone(), content_hash: i.content_hash.clone() })
            }
            _ => None,
        })
        .collect();
    // Largest first: no convoy behind one big video at the end.
    jobs.sort_by(|a, b| b.file.size.cmp(&a.file.size).then_with(|| a.file.rel.cmp(&b.file.rel)));
    let outcome = send(client, &state, opts, jobs, progress);
    report.uploaded = outcome.uploaded;
    report.uploaded_bytes = outcome.uploaded_bytes;
    report.fatal = outcome.fatal;
    errors.extend(outcome.errors);
    report.errors = errors;
    report.plan = items;
    report.api_calls = client.counters.calls.load(Ordering::Relaxed);
    report.bytes_sent = client.counters.bytes_sent.load(Ordering::Relaxed);
    report.retries = client.counters.retries.load(Ordering::Relaxed);
    let summary = json!({"uploaded": report.uploaded, "uploaded_bytes": report.uploaded_bytes, "already_there": report.already_there,
        "renamed": report.renamed.len(), "errors": report.errors.len(), "api_calls": report.api_calls, "bytes_sent": report.bytes_sent, "to": report.to});
    state.finish_run(&summary.to_string())?;
    Ok(report)
}

#[derive(Debug, Clone)]
struct Job {
    file: LocalFile,
    remote: String,
    content_hash: String,
}

/// A closed session waiting to be committed.
struct Pending {
    job: Job,
    session_id: String,
    tries: u32,
}

#[derive(Default)]
struct SendOutcome {
    uploaded: u64,
    uploaded_bytes: u64,
    errors: Vec<FileError>,
    fatal: Option<String>,
}

/// Shared between the workers and the committer.
struct Shared<'a> {
    client: &'a Client,
    state: &'a State,
    opts: &'a UploadOptions,
    progress: &'a dyn Progress,
    stop: AtomicBool,
    out: Mutex<SendOutcome>,
}

impl Shared<'_> {
    fn error(&self, job: &Job, message: String, action: &str) {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        out.errors.push(file_error(&job.file.rel, FileErrorKind::Upload, message, action));
    }

    fn fatal(&self, message: String) {
        self.stop.store(true, Ordering::SeqCst);
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        out.fatal.get_or_insert(message);
    }

    /// An API error that ends the whole run rather than one file.
    fn is_fatal(&self, e: &ApiError) -> bool {
        if e.has_tag("insufficient_space") {
            self.fatal("your Dropbox is full (insufficient_space): free space or upgrade, then run upload again; nothing more was sent".into());
            return true;
        }
        if let ApiError::Auth { .. } = e {
            self.fatal(e.to_string());
            return true;
        }
        false
    }
}

fn send(client: &Client, state: &State, opts: &UploadOptions, jobs: Vec<Job>, progress: &dyn Progress) -> SendOutcome {
    let total_bytes: u64 = jobs.iter().map(|j| j.file.size).sum();
    progress.start(Stage::Upload, jobs.len() as u64, total_bytes);
    let shared = Shared { client, state, opts, progress, stop: AtomicBool::new(false), out: Mutex::new(SendOutcome::default()) };
    let queue = Mutex::new(jobs.into_iter());
    let (tx, rx) = mpsc::channel::<Pending>();
    std::thread::scope(|s| {
        s.spawn(|| commit_loop(&shared, rx));
        for _ in 0..opts.transfers.max(1) {
            let tx = tx.clone();
            let (shared, queue) = (&shared, &queue);
            s.spawn(move || loop {
                if shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Some(job) = queue.lock().unwrap_or_else(|p| p.into_inner()).next() else { break };
                match send_one(shared, &job) {
                    Ok(session_id) => {
                        if tx.send(Pending { job, session_id, tries: 0 }).is_err() {
                            break;
                        }
                    }
                    Err(SendError::Api(e)) => {
                        if !shared.is_fatal(&e) {
                            shared.error(&job, e.to_string(), "not uploaded; run upload again to retry");
                        }
                    }
                    Err(SendError::Local(msg)) => shared.error(&job, msg, "not uploaded"),
                }
            });
        }
        drop(tx);
    });
    progress.finish();
    let mut out = shared.out.into_inner().unwrap_or_else(|p| p.into_inner());
    // After a fatal error, what was never started is accounted for too.
    for job in queue.into_inner().unwrap_or_else(|p| p.into_inner()) {
        out.errors.push(file_error(&job.file.rel, FileErrorKind::Upload, "not sent: the run stopped".into(), "run upload again"));
    }
    out.errors.sort_by(|a, b| a.location.cmp(&b.location));
    out
}

enum SendError {
    Api(ApiError),
    Local(String),
}

impl From<ApiError> for SendError {
    fn from(e: ApiError) -> Self {
        SendError::Api(e)
    }
}

fn read_at(file: &File, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, offset)?;
    Ok(buf)
}

fn hash_of(data: &[u8]) -> String {
    let mut h = ContentHasher::new();
    h.update(data);
    h.finish()
}

fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Send one file's bytes into a closed upload session; returns the session id.
fn send_one(sh: &Shared, job: &Job) -> Result<String, SendError> {
    let local = |what: &str, e: std::io::Error| SendError::Local(format!("{what}: {e}"));
    let file = File::open(&job.file.abs).map_err(|e| local("cannot open", e))?;
    let size = file.metadata().map_err(|e| local("cannot read", e))?.len();
    if size != job.file.size {
        return Err(SendError::Local("the file changed while photoferry was running (size differs)".into()));
    }
    let chunk = sh.opts.chunk_size.clamp(content_hash::BLOCK, MAX_REQUEST);
    // A session an earlier run left open is resumed, whatever the chunk size is now.
    let resumable = resumable_session(sh, job, size)?;
    if size <= chunk as u64 && resumable.is_none() {
        let data = read_at(&file, 0, size as usize).map_err(|e| local("cannot read", e))?;
        let hash = hash_of(&data);
        if hash != job.content_hash {
            return Err(SendError::Local("the file changed since it was hashed; run upload again".into()));
        }
        #[derive(serde::Deserialize)]
        struct Started {
            session_id: String,
        }
        let r: Started = sh.client.upload(
            "/2/files/upload_session/start",
            &json!({"close": true, "session_type": "sequential", "content_hash": hash}),
            Bytes::from(data),
        )?;
        sh.progress.advance(0, size);
        return Ok(r.session_id);
    }
    send_chunked(sh, job, &file, size, chunk, resumable)
}

/// The session a previous run started for these same bytes and this same destination, if it is
/// young enough to still exist.
fn resumable_session(sh: &Shared, job: &Job, size: u64) -> Result<Option<SessionRow>, SendError> {
    let s = sh.state.session(&job.file.rel).map_err(|e| SendError::Local(e.to_string()))?;
    Ok(s.filter(|s| {
        s.size == size && s.content_hash == job.content_hash && s.remote_path == job.remote && now_unix() - s.started_unix < SESSION_RESUME_SECS
    }))
}

fn send_chunked(sh: &Shared, job: &Job, file: &File, size: u64, chunk: usize, resume: Option<SessionRow>) -> Result<String, SendError> {
    let rel = &job.file.rel;
    let db = |e: Error| SendError::Local(e.to_string());
    let mut session = resume;
    let mut credited = 0u64;
    loop {
        let mut s = match session.take() {
            // A session from an earlier run: ask Dropbox where it stands with an empty append
            // before sending a chunk it may already have (an answer lost at a kill).
            Some(mut s) => match sh.client.upload::<_, Value>(
                "/2/files/upload_session/append_v2",
                &json!({"cursor": {"session_id": s.session_id, "offset": s.offset}, "close": false}),
                Bytes::new(),
            ) {
                Ok(_) => s,
                Err(e) if e.has_tag("incorrect_offset") && e.correct_offset().is_some_and(|o| o <= size) => {
                    s.offset = e.correct_offset().unwrap_or(s.offset);
                    sh.state.save_session(rel, &s).map_err(db)?;
                    s
                }
                Err(e) if e.has_tag("closed") && s.offset == size => s,
                Err(e) if e.has_tag("not_found") || e.has_tag("closed") || e.has_tag("incorrect_offset") => {
                    sh.state.drop_session(rel).map_err(db)?;
                    continue;
                }
                Err(e) => return Err(e.into()),
            },
            None => {
                let len = chunk.min(size as usize);
                let data = read_at(file, 0, len).map_err(|e| SendError::Local(format!("cannot read: {e}")))?;
                #[derive(serde::Deserialize)]
                struct Started {
                    session_id: String,
                }
                let r: Started = sh.client.upload(
                    "/2/files/upload_session/start",
                    &json!({"close": false, "session_type": "sequential", "content_hash": hash_of(&data)}),
                    Bytes::from(data),
                )?;
                let s = SessionRow {
                    remote_path: job.remote.clone(),
                    size,
                    content_hash: job.content_hash.clone(),
                    session_id: r.session_id,
                    offset: len as u64,
                    started_unix: now_unix(),
                };
                sh.state.save_session(rel, &s).map_err(db)?;
                s
            }
        };
        if s.offset > credited {
            sh.progress.advance(0, s.offset - credited);
            credited = s.offset;
        }
        let mut closed = false;
        let mut restart = false;
        while !closed {
            if sh.stop.load(Ordering::SeqCst) {
                return Err(SendError::Local("stopped before this file was complete; run upload again to resume it".into()));
            }
            let len = chunk.min((size - s.offset) as usize);
            let close = s.offset + len as u64 == size;
            let data = read_at(file, s.offset, len).map_err(|e| SendError::Local(format!("cannot read: {e}")))?;
            let arg = json!({"cursor": {"session_id": s.session_id, "offset": s.offset}, "close": close, "content_hash": hash_of(&data)});
            match sh.client.upload::<_, Value>("/2/files/upload_session/append_v2", &arg, Bytes::from(data)) {
                Ok(_) => {
                    s.offset += len as u64;
                    closed = close;
                }
                // Dropbox got a request whose answer we lost: carry on from where it is.
                Err(e) if e.has_tag("incorrect_offset") => match e.correct_offset() {
                    Some(o) if o <= size => s.offset = o,
                    _ => restart = true,
                },
                // The closing append went through but its answer was lost.
                Err(e) if e.has_tag("closed") && s.offset + len as u64 == size => {
                    s.offset = size;
                    closed = true;
                }
                Err(e) if e.has_tag("not_found") || e.has_tag("closed") => restart = true,
                Err(e) => return Err(e.into()),
            }
            if restart {
                sh.state.drop_session(rel).map_err(db)?;
                break;
            }
            sh.state.save_session(rel, &s).map_err(db)?;
            if s.offset > credited {
                sh.progress.advance(0, s.offset - credited);
                credited = s.offset;
            }
        }
        if closed {
            return Ok(s.session_id);
        }
    }
}

/// Gather closed sessions and commit them in batches, one commit at a time.
fn commit_loop(sh: &Shared, rx: mpsc::Receiver<Pending>) {
    let mut pending: Vec<Pending> = Vec::new();
    let mut since: Option<Instant> = None;
    let max = sh.opts.batch_size.clamp(1, 1000);
    loop {
        let wait = since.map_or(Duration::from_secs(3600), |t| sh.opts.batch_timeout.saturating_sub(t.elapsed()));
        let done = match rx.recv_timeout(wait) {
            Ok(p) => {
                pending.push(p);
                since.get_or_insert_with(Instant::now);
                false
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => true,
        };
        let due = since.is_some_and(|t| t.elapsed() >= sh.opts.batch_timeout);
        if pending.len() >= max || (due && !pending.is_empty()) || (done && !pending.is_empty()) {
            let batch: Vec<Pending> = pending.drain(..pending.len().min(max)).collect();
            let retry = commit(sh, batch);
            pending.extend(retry);
            since = if pending.is_empty() { None } else { Some(Instant::now()) };
        }
        if done && pending.is_empty() {
            return;
        }
        if done && sh.stop.load(Ordering::SeqCst) {
            for p in pending.drain(..) {
                sh.error(&p.job, "not committed: the run stopped".into(), "run upload again");
            }
            return;
        }
    }
}

/// Commit one batch; returns the entries to try again in the next batch.
fn commit(sh: &Shared, batch: Vec<Pending>) -> Vec<Pending> {
    let entries: Vec<Value> = batch
        .iter()
        .map(|p| {
            json!({
                "cursor": {"session_id": p.session_id, "offset": p.job.file.size},
                "commit": {
                    "path": p.job.remote,
                    "mode": "add",
                    "autorename": false,
                    "client_modified": client_modified(p.job.file.mtime_unix),
                    "mute": true,
                    "strict_conflict": false,
                },
            })
        })
        .collect();
    let result: Result<Value, ApiError> = sh.client.rpc("/2/files/upload_session/finish_batch_v2", &json!({"entries": entries}));
    let results = match result {
        Ok(v) => v.get("entries").and_then(Value::as_array).cloned().unwrap_or_default(),
        Err(e) => {
            if !sh.is_fatal(&e) {
                // A lost answer to a commit that went through is settled by asking Dropbox.
                for p in batch {
                    settle_by_lookup(sh, &p, &e.to_string());
                }
            }
            return Vec::new();
        }
    };
    if results.len() != batch.len() {
        for p in batch {
            settle_by_lookup(sh, &p, "finish_batch_v2 answered with a different number of entries");
        }
        return Vec::new();
    }
    let mut retry = Vec::new();
    for (mut p, r) in batch.into_iter().zip(results) {
        match r.get(".tag").and_then(Value::as_str) {
            Some("success") => match serde_json::from_value::<FileMetadata>(r.clone()) {
                Ok(meta) => confirm(sh, &p, meta),
                Err(e) => sh.error(&p.job, format!("unexpected commit answer: {e}"), "state unknown; run verify"),
            },
            _ => {
                let err = ApiError::Route {
                    route: "/2/files/upload_session/finish_batch_v2".into(),
                    summary: super::api::tag_chain(r.get("failure").unwrap_or(&Value::Null)).join("/"),
                    error: r.get("failure").cloned().unwrap_or(Value::Null),
                };
                if err.has_tag("too_many_write_operations") && p.tries < 5 {
                    p.tries += 1;
                    retry.push(p);
                } else if sh.is_fatal(&err) {
                } else if err.has_tag("lookup_failed") {
                    settle_by_lookup(sh, &p, &err.to_string());
                } else {
                    let what = if err.has_tag("malformed_path") {
                        format!("Dropbox refused the path {} (malformed_path: too long or invalid characters)", p.job.remote)
                    } else if err.has_tag("disallowed_name") {
                        format!("Dropbox does not allow the name of {} (disallowed_name)", p.job.remote)
                    } else if err.has_tag("conflict") {
                        format!("a different file appeared at {} during the upload", p.job.remote)
                    } else {
                        format!("Dropbox refused the commit: {err}")
                    };
                    sh.error(&p.job, what, "not uploaded");
                }
            }
        }
    }
    if !retry.is_empty() {
        std::thread::sleep(sh.client.retry.base_backoff);
    }
    retry
}

/// Dropbox's answer for a commit was lost or the session is gone: if the file is there with the
/// right hash the commit went through; otherwise report it for the next run.
fn settle_by_lookup(sh: &Shared, p: &Pending, why: &str) {
    match remote::file_metadata(sh.client, &p.job.remote) {
        Ok(Some(meta)) if meta.content_hash.as_deref() == Some(p.job.content_hash.as_str()) => confirm(sh, p, meta),
        Ok(_) => sh.error(&p.job, format!("commit failed ({why})"), "not uploaded; run upload again to send it"),
        Err(e) => {
            if !sh.is_fatal(&e) {
                sh.error(&p.job, format!("commit state unknown ({why}; then {e})"), "run upload again; it sends only what is missing")
            }
        }
    }
}

/// Dropbox says the file is committed: check its hash against ours, then record it.
fn confirm(sh: &Shared, p: &Pending, meta: FileMetadata) {
    let got = meta.content_hash.clone().unwrap_or_default();
    if got != p.job.content_hash {
        sh.error(
            &p.job,
            format!("Dropbox's content_hash {got} differs from the local {} for {}", p.job.content_hash, p.job.remote),
            "recorded as failed; run verify",
        );
        return;
    }
    if let Err(e) = sh.state.record_upload(&p.job.file.rel, &meta.entry()) {
        sh.error(&p.job, format!("uploaded, but the manifest could not record it: {e}"), "the next run will find it in Dropbox");
        return;
    }
    sh.progress.advance(1, 0);
    let mut out = sh.out.lock().unwrap_or_else(|p| p.into_inner());
    out.uploaded += 1;
    out.uploaded_bytes += p.job.file.size;
}

/// `client_modified`: the file's mtime (organize sets it to the capture time), UTC, whole seconds.
pub fn client_modified(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix.max(0), 0).unwrap_or_default().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lf(rel: &str, size: u64) -> LocalFile {
        LocalFile { rel: rel.into(), abs: PathBuf::from(rel), size, mtime_ns: 0, mtime_unix: 0 }
    }

    fn remote(path: &str, hash: &str) -> (String, RemoteEntry) {
        (
            remote_key(path),
            RemoteEntry { path_display: path.into(), is_folder: false, size: 1, content_hash: Some(hash.into()), rev: None },
        )
    }

    #[test]
    fn plan_skips_identical_renames_different_and_separates_case_twins() {
        let files = vec![lf("2021/A.jpg", 1), lf("2021/B.jpg", 1), lf("2021/C.jpg", 1), lf("2021/c.JPG", 1), lf("2021/D.jpg", 1)];
        let hashes: HashMap<String, String> =
            [("2021/A.jpg", "ha"), ("2021/B.jpg", "hb"), ("2021/C.jpg", "hc"), ("2021/c.JPG", "hc2"), ("2021/D.jpg", "hd")]
                .into_iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
        let index: HashMap<String, RemoteEntry> = [
            remote("/Photos/2021/a.JPG", "ha"),         // same bytes, other case: present
            remote("/Photos/2021/B.jpg", "other"),      // different bytes: rename
            remote("/Photos/2021/D.jpg", "other"),      // different, but the (2) name holds ours from an earlier run
            remote("/Photos/2021/D (2).jpg", "hd"),
        ]
        .into_iter()
        .collect();
        let opts = UploadOptions::new(PathBuf::from("x"), "Photos/");
        let p = plan(&files, &hashes, &index, &opts);
        let d: Vec<_> = p.iter().map(|i| (i.local.as_str(), i.decision.clone())).collect();
        assert_eq!(
            d,
            vec![
                ("2021/A.jpg", Decision::Present { remote: "/Photos/2021/a.JPG".into() }),
                ("2021/B.jpg", Decision::Upload { remote: "/Photos/2021/B (2).jpg".into(), renamed: true }),
                ("2021/C.jpg", Decision::Upload { remote: "/Photos/2021/C.jpg".into(), renamed: false }),
                ("2021/c.JPG", Decision::Upload { remote: "/Photos/2021/c (2).JPG".into(), renamed: true }),
                ("2021/D.jpg", Decision::Present { remote: "/Photos/2021/D (2).jpg".into() }),
            ]
        );
        let refuse = UploadOptions { on_conflict: OnConflict::Refuse, ..opts };
        let p = plan(&files[1..2], &hashes, &index, &refuse);
        assert_eq!(p[0].decision, Decision::Refused { remote: "/Photos/2021/B.jpg".into() });
    }

    #[test]
    fn roots_and_times_are_normalized() {
        assert_eq!(normalize_root("Photos/"), "/Photos");
        assert_eq!(normalize_root("/"), "");
        assert_eq!(normalize_root("/Cafe\u{301}"), "/Caf\u{e9}");
        assert_eq!(client_modified(1_600_000_000), "2020-09-13T12:26:40Z");
        assert_eq!(client_modified(-5), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn scan_leaves_out_dropbox_ignored_names_and_state() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("2021/Trip")).unwrap();
        std::fs::create_dir_all(dir.path().join(".photoferry/tmp")).unwrap();
        std::fs::write(dir.path().join("2021/Trip/IMG_1.JPG"), b"x").unwrap();
        std::fs::write(dir.path().join("2021/.DS_Store"), b"x").unwrap();
        std::fs::write(dir.path().join("2021/Thumbs.db"), b"x").unwrap();
        std::fs::write(dir.path().join(".photoferry/manifest.sqlite"), b"x").unwrap();
        let (files, left) = scan_tree(dir.path()).unwrap();
        assert_eq!(files.iter().map(|f| f.rel.as_str()).collect::<Vec<_>>(), ["2021/Trip/IMG_1.JPG"]);
        assert_eq!(left.iter().map(|l| l.0.as_str()).collect::<Vec<_>>(), ["2021/.DS_Store", "2021/Thumbs.db"]);
    }
}
