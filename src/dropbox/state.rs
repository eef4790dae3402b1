//! What upload remembers between runs, in the `dropbox_*` tables of `DIR/.photoferry/manifest.sqlite`
//! (schema in [`crate::manifest`]): local content hashes by size+mtime (a re-run reads nothing),
//! the remote listing and its cursor (a re-run asks Dropbox only for changes), chunked sessions in
//! progress (a killed upload resumes where Dropbox says it stopped), and where every file went.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::{Error, Result};
use crate::manifest::{db, now, Manifest};
use crate::names::collision_key;

/// One entry of the remote listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteEntry {
    pub path_display: String,
    pub is_folder: bool,
    pub size: u64,
    pub content_hash: Option<String>,
    pub rev: Option<String>,
}

/// A chunked upload that was started and not committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub remote_path: String,
    pub size: u64,
    pub content_hash: String,
    pub session_id: String,
    pub offset: u64,
    pub started_unix: i64,
}

/// A file Dropbox confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedRow {
    pub remote_path: String,
    pub content_hash: String,
    pub size: u64,
}

pub struct State {
    conn: Mutex<Connection>,
    path: PathBuf,
    endpoint: String,
    run_id: Option<i64>,
}

/// The key Dropbox identifies a path by: NFC, lower case.
pub fn remote_key(path: &str) -> String {
    collision_key(path)
}

impl State {
    /// Open the manifest in `state_dir` for the API at `endpoint`, recording a run of `command`
    /// (`None`: record no run, e.g. for `--dry-run`).
    pub fn open(state_dir: &Path, endpoint: &str, command: Option<&str>) -> Result<State> {
        let m = Manifest::open(state_dir)?;
        let run_id = command.map(|c| m.begin_run(c)).transpose()?;
        let path = m.path().to_path_buf();
        Ok(State { conn: Mutex::new(m.into_connection()), path, endpoint: endpoint.to_string(), run_id })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn err(&self, e: rusqlite::Error) -> Error {
        db(&self.path, e)
    }

    /// Cached content hashes: path → (size, mtime_ns, hash).
    pub fn cached_hashes(&self) -> Result<HashMap<String, (u64, i64, String)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT path, size, mtime_ns, content_hash FROM dropbox_hash").map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, (r.get::<_, i64>(1)? as u64, r.get::<_, i64>(2)?, r.get::<_, String>(3)?))))
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }

    pub fn store_hashes(&self, rows: &[(String, u64, i64, String)]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        {
            let mut stmt = tx
                .prepare("INSERT OR REPLACE INTO dropbox_hash(path, size, mtime_ns, content_hash) VALUES (?1, ?2, ?3, ?4)")
                .map_err(|e| self.err(e))?;
            for (p, size, mtime, h) in rows {
                stmt.execute(params![p, *size as i64, mtime, h]).map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    pub fn cursor(&self, root: &str) -> Result<Option<String>> {
        self.conn()
            .query_row(
                "SELECT cursor FROM dropbox_cursor WHERE endpoint = ?1 AND root = ?2",
                params![self.endpoint, remote_key(root)],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Apply listing entries (and, when `full`, forget everything cached under `root` first);
    /// store `cursor` for the next run.
    pub fn apply_listing(&self, root: &str, full: bool, changes: &[Change], cursor: Option<&str>) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let root_key = remote_key(root);
        if full {
            tx.execute(
                "DELETE FROM dropbox_remote WHERE endpoint = ?1 AND (path_lower = ?2 OR substr(path_lower, 1, length(?2) + 1) = ?2 || '/')",
                params![self.endpoint, root_key],
            )
            .map_err(|e| self.err(e))?;
        }
        for c in changes {
            match c {
                Change::Upsert(e) => {
                    tx.execute(
                        "INSERT OR REPLACE INTO dropbox_remote(endpoint, path_lower, path_display, is_folder, size, content_hash, rev)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        params![self.endpoint, remote_key(&e.path_display), e.path_display, e.is_folder, e.size as i64, e.content_hash, e.rev],
                    )
                    .map_err(|e| self.err(e))?;
                }
                Change::Delete(path) => {
                    let k = remote_key(path);
                    tx.execute(
                        "DELETE FROM dropbox_remote WHERE endpoint = ?1 AND (path_lower = ?2 OR substr(path_lower, 1, length(?2) + 1) = ?2 || '/')",
                        params![self.endpoint, k],
                    )
                    .map_err(|e| self.err(e))?;
                }
            }
        }
        match cursor {
            Some(c) => tx.execute(
                "INSERT OR REPLACE INTO dropbox_cursor(endpoint, root, cursor) VALUES (?1, ?2, ?3)",
                params![self.endpoint, root_key, c],
            ),
            None => tx.execute("DELETE FROM dropbox_cursor WHERE endpoint = ?1 AND root = ?2", params![self.endpoint, root_key]),
        }
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    /// The cached listing under `root`, keyed by [`remote_key`].
    pub fn remote_index(&self, root: &str) -> Result<HashMap<String, RemoteEntry>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT path_lower, path_display, is_folder, size, content_hash, rev FROM dropbox_remote
                 WHERE endpoint = ?1 AND (?2 = '' OR path_lower = ?2 OR substr(path_lower, 1, length(?2) + 1) = ?2 || '/')",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![self.endpoint, remote_key(root)], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    RemoteEntry {
                        path_display: r.get(1)?,
                        is_folder: r.get(2)?,
                        size: r.get::<_, Option<i64>>(3)?.unwrap_or(0) as u64,
                        content_hash: r.get(4)?,
                        rev: r.get(5)?,
                    },
                ))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }

    pub fn session(&self, path: &str) -> Result<Option<SessionRow>> {
        self.conn()
            .query_row(
                "SELECT remote_path, size, content_hash, session_id, offset, started_unix FROM dropbox_sessions WHERE endpoint = ?1 AND path = ?2",
                params![self.endpoint, path],
                |r| {
                    Ok(SessionRow {
                        remote_path: r.get(0)?,
                        size: r.get::<_, i64>(1)? as u64,
                        content_hash: r.get(2)?,
                        session_id: r.get(3)?,
                        offset: r.get::<_, i64>(4)? as u64,
                        started_unix: r.get(5)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    pub fn save_session(&self, path: &str, s: &SessionRow) -> Result<()> {
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO dropbox_sessions(endpoint, path, remote_path, size, content_hash, session_id, offset, started_unix)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![self.endpoint, path, s.remote_path, s.size as i64, s.content_hash, s.session_id, s.offset as i64, s.started_unix],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    pub fn drop_session(&self, path: &str) -> Result<()> {
        self.conn()
            .execute("DELETE FROM dropbox_sessions WHERE endpoint = ?1 AND path = ?2", params![self.endpoint, path])
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Dropbox confirmed `local` as `entry`: remember both where it went and the listing entry.
    pub fn record_upload(&self, local: &str, entry: &RemoteEntry) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        tx.execute(
            "INSERT OR REPLACE INTO dropbox_uploads(endpoint, path, remote_path, content_hash, rev, size, run_id, uploaded_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![self.endpoint, local, entry.path_display, entry.content_hash, entry.rev, entry.size as i64, self.run_id, now()],
        )
        .map_err(|e| self.err(e))?;
        tx.execute(
            "INSERT OR REPLACE INTO dropbox_remote(endpoint, path_lower, path_display, is_folder, size, content_hash, rev)
             VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6)",
            params![self.endpoint, remote_key(&entry.path_display), entry.path_display, entry.size as i64, entry.content_hash, entry.rev],
        )
        .map_err(|e| self.err(e))?;
        tx.execute("DELETE FROM dropbox_sessions WHERE endpoint = ?1 AND path = ?2", params![self.endpoint, local]).map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    /// Where each local file went: local path → its upload record.
    pub fn uploads(&self) -> Result<HashMap<String, UploadedRow>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT path, remote_path, content_hash, size FROM dropbox_uploads WHERE endpoint = ?1")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![self.endpoint], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    UploadedRow { remote_path: r.get(1)?, content_hash: r.get(2)?, size: r.get::<_, i64>(3)? as u64 },
                ))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }

    /// Files organize recorded: path → BLAKE3 of the bytes on disk.
    pub fn manifest_files(&self) -> Result<HashMap<String, String>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT path, COALESCE(output_blake3, blake3) FROM files").map_err(|e| self.err(e))?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }

    /// Close the run row with its JSON summary.
    pub fn finish_run(&self, summary_json: &str) -> Result<()> {
        let Some(id) = self.run_id else { return Ok(()) };
        self.conn()
            .execute("UPDATE runs SET finished_at = ?1, summary_json = ?2 WHERE id = ?3", params![now(), summary_json, id])
            .map(|_| ())
            .map_err(|e| self.err(e))
    }
}

/// One change from a listing.
#[derive(Debug, Clone)]
pub enum Change {
    Upsert(RemoteEntry),
    Delete(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(p: &str, hash: &str) -> RemoteEntry {
        RemoteEntry { path_display: p.into(), is_folder: false, size: 3, content_hash: Some(hash.into()), rev: Some("1".into()) }
    }

    #[test]
    fn listing_cache_is_per_root_and_case_insensitive() {
        let dir = tempfile::tempdir().unwrap();
        let st = State::open(dir.path(), "http://emu", Some("upload")).unwrap();
        st.apply_listing("/Photos", true, &[Change::Upsert(entry("/Photos/2021/A.jpg", "h1")), Change::Upsert(entry("/Other/b.jpg", "h2"))], Some("c1"))
            .unwrap();
        let idx = st.remote_index("/photos").unwrap();
        assert_eq!(idx.len(), 1);
        assert_eq!(idx["/photos/2021/a.jpg"].content_hash.as_deref(), Some("h1"));
        assert_eq!(st.cursor("/PHOTOS").unwrap().as_deref(), Some("c1"));
        // A delete of the folder drops what is under it; a full relist forgets only its root.
        st.apply_listing("/Photos", false, &[Change::Delete("/Photos/2021".into())], Some("c2")).unwrap();
        assert!(st.remote_index("/Photos").unwrap().is_empty());
        assert_eq!(st.remote_index("/Other").unwrap().len(), 1);
        // Another endpoint sees nothing of this one.
        drop(st);
        let other = State::open(dir.path(), "https://api.dropboxapi.com", None).unwrap();
        assert!(other.remote_index("").unwrap().is_empty());
        assert_eq!(other.cursor("/Photos").unwrap(), None);
    }
}
