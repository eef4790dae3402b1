//! Typed errors. `Error` stops a run (bad options, the lock, the manifest); `FileError` is about
//! one input file or entry, is collected, and never stops the run.

use std::path::PathBuf;

use serde::Serialize;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("invalid --layout '{template}': {why}")]
    Layout { template: String, why: String },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("another photoferry (pid {pid}) is already working on {}; wait for it to finish", dir.display())]
    Locked { dir: PathBuf, pid: String },
    #[error("manifest {}: {source}", path.display())]
    Manifest { path: PathBuf, source: rusqlite::Error },
    #[error("manifest {}: written by a newer photoferry (schema {found}, this one knows {known})", path.display())]
    ManifestVersion { path: PathBuf, found: i64, known: i64 },
    #[error("no inputs given")]
    NoInputs,
    #[error("none of the inputs exists: {0}")]
    InputsMissing(String),
    #[error("--out {} is a file, not a folder", .0.display())]
    OutIsFile(PathBuf),
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io { path: path.into(), source }
    }

    /// The run stopped because the disk holding DIR is full.
    pub fn is_disk_full(&self) -> bool {
        match self {
            Error::Io { source, .. } => is_disk_full(source),
            Error::Manifest { source: rusqlite::Error::SqliteFailure(f, _), .. } => f.code == rusqlite::ErrorCode::DiskFull,
            _ => false,
        }
    }
}

/// What to tell a user whose run stopped on a full disk.
pub const DISK_FULL_HINT: &str =
    "the disk is full. Every file already in the tree is complete; free some space and run the same command again: it keeps what is there and writes the rest";

/// ENOSPC or a quota: the disk we write to is full.
pub fn is_disk_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull || e.kind() == std::io::ErrorKind::QuotaExceeded || e.raw_os_error() == Some(28)
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which stage a per-file problem happened in; lets the summary group errors by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileErrorKind {
    /// The input path itself could not be read (missing, permission denied).
    Input,
    /// A zip archive could not be opened (truncated, not a zip).
    Archive,
    /// An archive entry's name would escape the output folder; refused.
    UnsafeName,
    /// Reading the bytes failed (I/O error, bad CRC, truncated data).
    Read,
    /// The content does not match its extension or its header is corrupt.
    Corrupt,
    /// Writing to the output folder failed.
    Write,
    /// A catalog CSV (or a row or date in it) could not be used. A warning: the run goes on
    /// without it and the exit code is not affected.
    Catalog,
    /// Dropbox refused the file, or the upload could not be confirmed.
    Upload,
    /// The file in the tree, in the manifest and in Dropbox disagree (`photoferry verify`).
    Verify,
}

/// One problem with one file. `location` names the input and, for archives, the entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileError {
    pub location: String,
    pub kind: FileErrorKind,
    /// What is wrong.
    pub message: String,
    /// What photoferry did about it.
    pub action: String,
    /// The capture year when known (for the per-year summary).
    pub year: Option<i32>,
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}; {}", self.location, self.message, self.action)
    }
}
