//! The SQLite manifest in `DIR/.photoferry/manifest.sqlite`: what is in the tree, where every
//! file came from, and the cached hashes that make a re-run read nothing. The schema is
//! documented in the README ("The manifest"); `user_version` carries its version.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use crate::error::{Error, Result};
use crate::model::{CaptureTime, ContentHash, DateSource, MediaKind};

/// 2 added the `dropbox_*` tables (additive: a version-1 manifest is upgraded in place).
pub const SCHEMA_VERSION: i64 = 2;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS runs (
    id           INTEGER PRIMARY KEY,
    command      TEXT NOT NULL,            -- 'organize'
    started_at   TEXT NOT NULL,            -- UTC, RFC 3339
    finished_at  TEXT,
    summary_json TEXT                      -- the --json summary of that run
);
CREATE TABLE IF NOT EXISTS assets (
    blake3        TEXT PRIMARY KEY,        -- BLAKE3 of the original bytes, hex
    size          INTEGER NOT NULL,
    kind          TEXT NOT NULL,           -- heif, jpeg, png, gif, mov, mp4, dng, aae
    capture_time  TEXT,                    -- wall clock where taken, ISO 8601, offset when known
    capture_unix  INTEGER,                 -- seconds since 1970 (wall clock taken as UTC if no offset)
    date_source   TEXT NOT NULL,           -- exif:DateTimeOriginal, quicktime:creationdate, ..., file:mtime
    favorite      INTEGER NOT NULL DEFAULT 0, -- privacy-export CSV flag
    hidden        INTEGER NOT NULL DEFAULT 0, -- privacy-export CSV flag
    albums        TEXT,                    -- JSON array of album names
    memories      TEXT,                    -- JSON array of memory names
    first_run     INTEGER REFERENCES runs(id)
);
CREATE TABLE IF NOT EXISTS files (
    path          TEXT PRIMARY KEY,        -- relative to DIR, '/'-separated, NFC
    path_key      TEXT NOT NULL UNIQUE,    -- lower-cased NFC path: the Dropbox/macOS collision key
    blake3        TEXT NOT NULL REFERENCES assets(blake3),
    companion_of  TEXT,                    -- for an .AAE sidecar: blake3 of its photo
    run_id        INTEGER REFERENCES runs(id),
    adopted       INTEGER NOT NULL DEFAULT 0, -- 1: found already in DIR with identical bytes
    album         TEXT,                    -- the album folder this copy stands for (NULL: none)
    role          TEXT,                    -- live-video, edit, sidecar (NULL: a photo or video of its own)
    why           TEXT,                    -- how the date, pair, album and name were decided (photoferry explain)
    converted     INTEGER NOT NULL DEFAULT 0, -- 1: a JPEG converted from the HEIC whose BLAKE3 is `blake3`
    output_blake3 TEXT                     -- BLAKE3 of the bytes on disk when they differ from `blake3` (conversions)
);
CREATE INDEX IF NOT EXISTS files_by_hash ON files(blake3);
CREATE TABLE IF NOT EXISTS sources (
    input         TEXT NOT NULL,           -- the INPUT path (absolute)
    inner_path    TEXT NOT NULL,           -- path inside it ('' for a file input); nested zips joined by '/'
    fingerprint   TEXT NOT NULL,           -- size+mtime (files) or size+CRC32 (zip entries)
    blake3        TEXT NOT NULL,
    size          INTEGER NOT NULL,
    kind          TEXT NOT NULL,
    capture_time  TEXT,                    -- the date found inside the file (NULL: none)
    capture_offset INTEGER,                -- its UTC offset in seconds (NULL: unknown)
    date_source   TEXT,                    -- where that date came from
    content_id    TEXT,                    -- Apple Live Photo content identifier, when present
    duration_s    REAL,                    -- a video's duration in seconds
    problem       TEXT,                    -- why the header could not be read (file kept as is)
    last_run      INTEGER REFERENCES runs(id),
    PRIMARY KEY (input, inner_path)
);
CREATE INDEX IF NOT EXISTS sources_by_hash ON sources(blake3);
CREATE TABLE IF NOT EXISTS skipped (
    input         TEXT NOT NULL,
    inner_path    TEXT NOT NULL,
    reason        TEXT NOT NULL,
    run_id        INTEGER REFERENCES runs(id),
    PRIMARY KEY (input, inner_path)
);
-- Dropbox (photoferry upload / verify). `endpoint` is the API base URL, so an emulator's
-- namespace is never mistaken for the real one.
CREATE TABLE IF NOT EXISTS dropbox_remote (   -- the cached recursive listing
    endpoint      TEXT NOT NULL,
    path_lower    TEXT NOT NULL,           -- NFC, lower-cased full Dropbox path
    path_display  TEXT NOT NULL,
    is_folder     INTEGER NOT NULL,
    size          INTEGER,
    content_hash  TEXT,                    -- Dropbox content_hash (files)
    rev           TEXT,
    PRIMARY KEY (endpoint, path_lower)
);
CREATE TABLE IF NOT EXISTS dropbox_cursor (   -- list_folder cursor: the next run asks only for changes
    endpoint      TEXT NOT NULL,
    root          TEXT NOT NULL,           -- the --to folder, lower-cased
    cursor        TEXT NOT NULL,
    PRIMARY KEY (endpoint, root)
);
CREATE TABLE IF NOT EXISTS dropbox_hash (     -- local files' Dropbox content_hash, by size+mtime
    path          TEXT PRIMARY KEY,        -- relative to DIR, '/'-separated, NFC
    size          INTEGER NOT NULL,
    mtime_ns      INTEGER NOT NULL,
    content_hash  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS dropbox_sessions ( -- chunked uploads in progress (resumed for 6 days)
    endpoint      TEXT NOT NULL,
    path          TEXT NOT NULL,
    remote_path   TEXT NOT NULL,
    size          INTEGER NOT NULL,
    content_hash  TEXT NOT NULL,
    session_id    TEXT NOT NULL,
    offset        INTEGER NOT NULL,        -- bytes Dropbox has acknowledged
    started_unix  INTEGER NOT NULL,
    PRIMARY KEY (endpoint, path)
);
CREATE TABLE IF NOT EXISTS dropbox_uploads (  -- where each local file is in Dropbox, verified
    endpoint      TEXT NOT NULL,
    path          TEXT NOT NULL,
    remote_path   TEXT NOT NULL,           -- path_display; differs from the local path when renamed
    content_hash  TEXT NOT NULL,           -- equal locally and as returned by Dropbox
    rev           TEXT,
    size          INTEGER NOT NULL,
    run_id        INTEGER REFERENCES runs(id),
    uploaded_at   TEXT NOT NULL,
    PRIMARY KEY (endpoint, path)
);
"#;

/// What a previous run learnt about one source.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedSource {
    pub fingerprint: String,
    pub hash: ContentHash,
    pub size: u64,
    pub kind: MediaKind,
    pub capture: Option<CaptureTime>,
    pub content_id: Option<String>,
    pub duration_secs: Option<f64>,
    pub problem: Option<String>,
}

/// One file placed in the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRow {
    pub path: String,
    /// The original's BLAKE3 (for a conversion, the HEIC it was made from).
    pub hash: ContentHash,
    pub companion_of: Option<ContentHash>,
    /// The conversion target of `hash` (a JPEG — or the original, when conversion failed).
    pub converted: bool,
    /// The bytes on disk are the original's (no output hash recorded).
    pub original_bytes: bool,
}

/// Everything a run wants recorded, written in one transaction at the end.
#[derive(Default)]
pub struct RunRecord {
    pub sources: Vec<(String, String, CachedSource)>,
    pub assets: Vec<AssetRow>,
    pub files: Vec<PlacedRow>,
    /// (input, inner path, reason)
    pub skipped: Vec<(String, String, String)>,
}

pub struct AssetRow {
    pub hash: ContentHash,
    pub size: u64,
    pub kind: MediaKind,
    pub capture: Option<CaptureTime>,
    /// None: no date at all (the file lands in `undated/`).
    pub date_source: Option<DateSource>,
    pub favorite: bool,
    pub hidden: bool,
    pub albums: Vec<String>,
    pub memories: Vec<String>,
}

/// A file written or adopted by this run.
pub struct PlacedRow {
    pub file: FileRow,
    pub adopted: bool,
    pub album: Option<String>,
    pub role: Option<&'static str>,
    pub why: String,
    /// BLAKE3 of the bytes written, when they differ from the original's (conversions).
    pub output_hash: Option<ContentHash>,
}

/// What `explain` shows for one placed file.
#[derive(Debug, Clone)]
pub struct Explained {
    pub path: String,
    pub blake3: String,
    pub kind: String,
    pub capture_time: Option<String>,
    pub date_source: String,
    pub album: Option<String>,
    pub role: Option<String>,
    pub why: String,
    pub sources: Vec<String>,
    /// Files that travel with this one in its folder (a still's Live Photo video, edits,
    /// sidecars), or the photo this one travels with.
    pub pair: Vec<String>,
}

pub struct Manifest {
    conn: Connection,
    path: PathBuf,
}

impl Manifest {
    /// Open (creating if needed) the manifest in `state_dir`.
    pub fn open(state_dir: &Path) -> Result<Manifest> {
        let path = state_dir.join("manifest.sqlite");
        let conn = Connection::open(&path).map_err(|e| db(&path, e))?;
        let m = Manifest { conn, path };
        m.conn.pragma_update(None, "journal_mode", "WAL").map_err(|e| db(&m.path, e))?;
        m.conn.pragma_update(None, "synchronous", "NORMAL").map_err(|e| db(&m.path, e))?;
        m.conn.pragma_update(None, "foreign_keys", "ON").map_err(|e| db(&m.path, e))?;
        m.check_version()?;
        m.conn.execute_batch(SCHEMA).map_err(|e| db(&m.path, e))?;
        m.conn.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(|e| db(&m.path, e))?;
        Ok(m)
    }

    /// Open an existing manifest read-only (for `--dry-run`); `None` when there is none yet.
    pub fn open_read_only(state_dir: &Path) -> Result<Option<Manifest>> {
        let path = state_dir.join("manifest.sqlite");
        if !path.exists() {
            return Ok(None);
        }
        let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|e| db(&path, e))?;
        let m = Manifest { conn, path };
        m.check_version()?;
        Ok(Some(m))
    }

    fn check_version(&self) -> Result<()> {
        let found: i64 = self.conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(|e| db(&self.path, e))?;
        if found > SCHEMA_VERSION {
            return Err(Error::ManifestVersion { path: self.path.clone(), found, known: SCHEMA_VERSION });
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The SQLite connection, for read-only queries (`photoferry report`).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The SQLite connection, for the Dropbox state ([`crate::dropbox::state`]) which keeps its
    /// own tables in the same file.
    pub fn into_connection(self) -> Connection {
        self.conn
    }

    pub fn begin_run(&self, command: &str) -> Result<i64> {
        self.conn
            .execute("INSERT INTO runs(command, started_at) VALUES (?1, ?2)", params![command, now()])
            .map_err(|e| db(&self.path, e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Cached sources keyed by (input, inner_path).
    pub fn load_sources(&self) -> Result<HashMap<(String, String), CachedSource>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT input, inner_path, fingerprint, blake3, size, kind, capture_time, capture_offset,
                        date_source, content_id, problem, duration_s FROM sources",
            )
            .map_err(|e| db(&self.path, e))?;
        let rows = stmt
            .query_map([], |r| {
                let capture = match (r.get::<_, Option<String>>(6)?, r.get::<_, Option<String>>(8)?) {
                    (Some(t), Some(src)) => parse_capture(&t, r.get(7)?, &src),
                    _ => None,
                };
                Ok((
                    (r.get::<_, String>(0)?, r.get::<_, String>(1)?),
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, String>(5)?,
                    capture,
                    r.get::<_, Option<String>>(9)?,
                    r.get::<_, Option<String>>(10)?,
                    r.get::<_, Option<f64>>(11)?,
                ))
            })
            .map_err(|e| db(&self.path, e))?;
        let mut out = HashMap::new();
        for row in rows {
            let (key, fingerprint, hash, size, kind, capture, content_id, problem, duration_secs) =
                row.map_err(|e| db(&self.path, e))?;
            let (Some(hash), Some(kind)) = (ContentHash::from_hex(&hash), MediaKind::parse(&kind)) else { continue };
            out.insert(key, CachedSource { fingerprint, hash, size: size as u64, kind, capture, content_id, duration_secs, problem });
        }
        Ok(out)
    }

    pub fn load_files(&self) -> Result<Vec<FileRow>> {
        let mut stmt =
            self.conn.prepare("SELECT path, blake3, companion_of, converted, output_blake3 IS NULL FROM files").map_err(|e| db(&self.path, e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, bool>(4)?,
                ))
            })
            .map_err(|e| db(&self.path, e))?;
        let mut out = Vec::new();
        for row in rows {
            let (path, hash, comp, converted, original_bytes) = row.map_err(|e| db(&self.path, e))?;
            let Some(hash) = ContentHash::from_hex(&hash) else { continue };
            out.push(FileRow {
                path,
                hash,
                companion_of: comp.as_deref().and_then(ContentHash::from_hex),
                converted: converted != 0,
                original_bytes,
            });
        }
        Ok(out)
    }

    /// Record a run's findings in one transaction.
    pub fn record(&mut self, run_id: i64, rec: &RunRecord, summary_json: &str) -> Result<()> {
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(|e| db(&path, e))?;
        {
            let mut asset = tx
                .prepare(
                    "INSERT INTO assets(blake3, size, kind, capture_time, capture_unix, date_source, first_run,
                        favorite, hidden, albums, memories)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                     ON CONFLICT(blake3) DO UPDATE SET capture_time = excluded.capture_time,
                        capture_unix = excluded.capture_unix, date_source = excluded.date_source,
                        favorite = excluded.favorite, hidden = excluded.hidden, albums = excluded.albums,
                        memories = excluded.memories",
                )
                .map_err(|e| db(&path, e))?;
            for a in &rec.assets {
                asset
                    .execute(params![
                        a.hash.to_hex(),
                        a.size as i64,
                        a.kind.as_str(),
                        a.capture.map(|c| c.to_iso()),
                        a.capture.map(|c| c.unix_seconds()),
                        a.date_source.map(|d| d.as_str()).unwrap_or("none"),
                        run_id,
                        a.favorite as i64,
                        a.hidden as i64,
                        serde_json::to_string(&a.albums).unwrap_or_default(),
                        serde_json::to_string(&a.memories).unwrap_or_default()
                    ])
                    .map_err(|e| db(&path, e))?;
            }
            let mut file = tx
                .prepare(
                    "INSERT INTO files(path, path_key, blake3, companion_of, run_id, adopted, album, role, why,
                        converted, output_blake3)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT(path) DO NOTHING",
                )
                .map_err(|e| db(&path, e))?;
            for p in &rec.files {
                let f = &p.file;
                file.execute(params![
                    f.path,
                    crate::names::collision_key(&f.path),
                    f.hash.to_hex(),
                    f.companion_of.map(|h| h.to_hex()),
                    run_id,
                    p.adopted as i64,
                    p.album,
                    p.role,
                    p.why,
                    f.converted as i64,
                    p.output_hash.map(|h| h.to_hex())
                ])
                .map_err(|e| db(&path, e))?;
            }
            let mut skip = tx
                .prepare(
                    "INSERT INTO skipped(input, inner_path, reason, run_id) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(input, inner_path) DO UPDATE SET reason = excluded.reason, run_id = excluded.run_id",
                )
                .map_err(|e| db(&path, e))?;
            for (input, inner, reason) in &rec.skipped {
                skip.execute(params![input, inner, reason, run_id]).map_err(|e| db(&path, e))?;
            }
            let mut src = tx
                .prepare(
                    "INSERT INTO sources(input, inner_path, fingerprint, blake3, size, kind, capture_time,
                        capture_offset, date_source, content_id, problem, last_run, duration_s)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
                     ON CONFLICT(input, inner_path) DO UPDATE SET fingerprint = excluded.fingerprint,
                        blake3 = excluded.blake3, size = excluded.size, kind = excluded.kind,
                        capture_time = excluded.capture_time, capture_offset = excluded.capture_offset,
                        date_source = excluded.date_source, content_id = excluded.content_id,
                        problem = excluded.problem, last_run = excluded.last_run, duration_s = excluded.duration_s",
                )
                .map_err(|e| db(&path, e))?;
            for (input, inner, s) in &rec.sources {
                src.execute(params![
                    input,
                    inner,
                    s.fingerprint,
                    s.hash.to_hex(),
                    s.size as i64,
                    s.kind.as_str(),
                    s.capture.map(|c| c.local.format("%Y-%m-%dT%H:%M:%S%.3f").to_string()),
                    s.capture.and_then(|c| c.offset_secs),
                    s.capture.map(|c| c.source.as_str()),
                    s.content_id,
                    s.problem,
                    run_id,
                    s.duration_secs
                ])
                .map_err(|e| db(&path, e))?;
            }
            tx.execute(
                "UPDATE runs SET finished_at = ?1, summary_json = ?2 WHERE id = ?3",
                params![now(), summary_json, run_id],
            )
            .map_err(|e| db(&path, e))?;
        }
        tx.commit().map_err(|e| db(&path, e))
    }

    /// Placed files whose path, file name or source path matches `needle` (case-insensitive;
    /// a file name matches any folder), and skipped sources matching it.
    pub fn explain(&self, needle: &str) -> Result<(Vec<Explained>, Vec<(String, String, String)>)> {
        // An input path given relative to the current folder is matched as an absolute one.
        let needle = std::fs::canonicalize(needle).map(|p| p.to_string_lossy().into_owned()).unwrap_or_else(|_| needle.to_string());
        let key = crate::names::collision_key(needle.trim_start_matches("./"));
        let mut stmt = self
            .conn
            .prepare(
                "SELECT f.path, f.blake3, a.kind, a.capture_time, a.date_source, f.album, f.role, f.why
                 FROM files f JOIN assets a USING (blake3)
                 WHERE f.path_key = ?1 OR f.path_key LIKE '%/' || ?1
                    OR f.blake3 IN (SELECT blake3 FROM sources WHERE lower(inner_path) = ?1
                                    OR lower(inner_path) LIKE '%/' || ?1 OR lower(input) = ?1
                                    OR lower(input) || '/' || lower(inner_path) = ?1)
                 ORDER BY f.path",
            )
            .map_err(|e| db(&self.path, e))?;
        let rows = stmt
            .query_map([&key], |r| {
                Ok(Explained {
                    path: r.get(0)?,
                    blake3: r.get(1)?,
                    kind: r.get(2)?,
                    capture_time: r.get(3)?,
                    date_source: r.get(4)?,
                    album: r.get(5)?,
                    role: r.get(6)?,
                    why: r.get::<_, Option<String>>(7)?.unwrap_or_default(),
                    sources: Vec::new(),
                    pair: Vec::new(),
                })
            })
            .map_err(|e| db(&self.path, e))?;
        let mut found: Vec<Explained> = rows.collect::<std::result::Result<_, _>>().map_err(|e| db(&self.path, e))?;
        let mut src = self
            .conn
            .prepare("SELECT input, inner_path FROM sources WHERE blake3 = ?1 ORDER BY input, inner_path")
            .map_err(|e| db(&self.path, e))?;
        let mut pair = self
            .conn
            .prepare(
                "SELECT o.path, coalesce(o.role, 'photo') FROM files f JOIN files o
                   ON (o.companion_of = f.blake3 OR f.companion_of = o.blake3)
                  AND rtrim(o.path, replace(o.path, '/', '')) = rtrim(f.path, replace(f.path, '/', ''))
                 WHERE f.path = ?1 ORDER BY o.path",
            )
            .map_err(|e| db(&self.path, e))?;
        for e in &mut found {
            let rows = pair
                .query_map([&e.path], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(|e| db(&self.path, e))?;
            for row in rows {
                let (path, role) = row.map_err(|e| db(&self.path, e))?;
                e.pair.push(format!("{path} ({role})"));
            }
            let rows = src
                .query_map([&e.blake3], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(|e| db(&self.path, e))?;
            for row in rows {
                let (input, inner) = row.map_err(|e| db(&self.path, e))?;
                e.sources.push(if inner.is_empty() { input } else { format!("{input}: {inner}") });
            }
        }
        let mut sk = self
            .conn
            .prepare(
                "SELECT input, inner_path, reason FROM skipped
                 WHERE lower(inner_path) = ?1 OR lower(inner_path) LIKE '%/' || ?1 ORDER BY 1, 2",
            )
            .map_err(|e| db(&self.path, e))?;
        let skipped = sk
            .query_map([&key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(|e| db(&self.path, e))?
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| db(&self.path, e))?;
        Ok((found, skipped))
    }

    /// For tests and `verify`: one scalar query.
    pub fn count(&self, sql: &str) -> Result<i64> {
        self.conn.query_row(sql, [], |r| r.get(0)).optional().map(|v| v.unwrap_or(0)).map_err(|e| db(&self.path, e))
    }
}

fn parse_capture(local: &str, offset: Option<i32>, source: &str) -> Option<CaptureTime> {
    let local = chrono::NaiveDateTime::parse_from_str(local, "%Y-%m-%dT%H:%M:%S%.f").ok()?;
    Some(CaptureTime::new(local, offset, DateSource::parse(source)?))
}

pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub(crate) fn db(path: &Path, source: rusqlite::Error) -> Error {
    Error::Manifest { path: path.to_path_buf(), source }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn sources_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Manifest::open(dir.path()).unwrap();
        let run = m.begin_run("organize").unwrap();
        let hash = ContentHash(*blake3::hash(b"photo").as_bytes());
        let local = NaiveDate::from_ymd_opt(2022, 1, 1).unwrap().and_hms_milli_opt(0, 30, 0, 250).unwrap();
        let cached = CachedSource {
            fingerprint: "file:5:1".into(),
            hash,
            size: 5,
            kind: MediaKind::Heif,
            capture: Some(CaptureTime::new(local, Some(28800), DateSource::ExifDateTimeOriginal)),
            content_id: Some("UUID".into()),
            duration_secs: Some(2.5),
            problem: None,
        };
        let rec = RunRecord {
            sources: vec![("/in".into(), "a.heic".into(), cached.clone())],
            assets: vec![AssetRow {
                hash,
                size: 5,
                kind: MediaKind::Heif,
                capture: cached.capture,
                date_source: Some(DateSource::ExifDateTimeOriginal),
                favorite: true,
                hidden: false,
                albums: vec!["Trip".into()],
                memories: vec![],
            }],
            files: vec![PlacedRow {
                file: FileRow { path: "2022/a.heic".into(), hash, companion_of: None, converted: false, original_bytes: true },
                adopted: false,
                album: None,
                role: None,
                why: "date: exif".into(),
                output_hash: None,
            }],
            skipped: vec![("/in".into(), "Photo Details.csv".into(), "a CSV file".into())],
        };
        m.record(run, &rec, "{}").unwrap();
        drop(m);
        let m = Manifest::open_read_only(dir.path()).unwrap().unwrap();
        let loaded = m.load_sources().unwrap();
        assert_eq!(loaded[&("/in".to_string(), "a.heic".to_string())], cached);
        assert_eq!(m.load_files().unwrap(), vec![FileRow { path: "2022/a.heic".into(), hash, companion_of: None, converted: false, original_bytes: true }]);
        assert_eq!(m.count("SELECT count(*) FROM runs WHERE finished_at IS NOT NULL").unwrap(), 1);
        let (found, skipped) = m.explain("A.HEIC").unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].why, "date: exif");
        assert_eq!(found[0].sources, vec!["/in: a.heic".to_string()]);
        assert_eq!(m.explain("photo details.csv").unwrap().1.len(), 1);
        assert!(skipped.is_empty());
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(Manifest::open(dir.path()).unwrap());
        let c = Connection::open(dir.path().join("manifest.sqlite")).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
        drop(c);
        assert!(matches!(Manifest::open(dir.path()), Err(Error::ManifestVersion { found: 99, .. })));
    }
}
