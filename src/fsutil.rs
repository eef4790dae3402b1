//! File-system primitives with the guarantees the brief asks for: one writer per output folder
//! (an OS file lock, released by the kernel if the process dies), and atomic, no-clobber
//! placement of a finished temp file.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Holds `DIR/.photoferry/lock` for as long as it lives.
pub struct Lock {
    _file: File,
}

impl Lock {
    /// Take the lock or say who holds it. A lock left by a killed run is free: the kernel
    /// releases `flock`s when their process ends, so a stale lock file never blocks.
    pub fn acquire(state_dir: &Path, out: &Path) -> Result<Lock> {
        let path = state_dir.join("lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim().to_string();
                return Err(Error::Locked { dir: out.to_path_buf(), pid: if pid.is_empty() { "?".into() } else { pid } });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        }
        file.set_len(0).map_err(|e| Error::io(&path, e))?;
        write!(file, "{}", std::process::id()).map_err(|e| Error::io(&path, e))?;
        Ok(Lock { _file: file })
    }
}

/// Outcome of [`place`].
#[derive(Debug, PartialEq, Eq)]
pub enum Placed {
    Done,
    /// Something already exists at the destination; nothing was changed.
    Exists,
}

/// Move the finished temp file `tmp` to `dest` without ever replacing an existing file.
/// `tmp` must be on the same file system (it lives in `DIR/.photoferry/tmp`).
pub fn place(tmp: &Path, dest: &Path) -> io::Result<Placed> {
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)?;
    }
    // A hard link is atomic and fails if the name exists: the no-clobber rename we want.
    match std::fs::hard_link(tmp, dest) {
        Ok(()) => {
            std::fs::remove_file(tmp)?;
            Ok(Placed::Done)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(Placed::Exists),
        Err(_) => {
            // File systems without hard links (FAT, exFAT, some network shares): we hold the
            // folder's lock, so check-then-rename only races with programs outside photoferry.
            if dest.symlink_metadata().is_ok() {
                return Ok(Placed::Exists);
            }
            std::fs::rename(tmp, dest)?;
            Ok(Placed::Done)
        }
    }
}

/// Give a finished temp file ordinary permissions and the capture time as its mtime.
pub fn finish_temp(file: &File, mtime_unix: Option<i64>) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    if let Some(t) = mtime_unix {
        let ft = filetime::FileTime::from_unix_time(t, 0);
        filetime::set_file_handle_times(file, Some(ft), Some(ft))?;
    }
    Ok(())
}

/// Flush everything written under `dir` to stable storage before the manifest says it exists.
pub fn sync_tree(dir: &Path) -> io::Result<()> {
    let f = File::open(dir)?;
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: syncfs only reads the descriptor, which `f` keeps open for the call.
        if unsafe { libc::syncfs(f.as_raw_fd()) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        f.sync_all()?;
    }
    Ok(())
}

/// Ask the kernel to start writing a finished file to disk now, without waiting for it. The
/// final [`sync_tree`] then finds little left to do: disk writes overlap with reading and
/// hashing the next files instead of piling up at the end. A no-op off Linux.
pub fn start_writeback(file: &File) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: plain syscall on a descriptor `file` keeps open; failure is harmless.
        unsafe {
            libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = file;
}

/// Remove what a killed run left in the temp folder.
pub fn clear_dir(dir: &Path) -> io::Result<usize> {
    let mut n = 0;
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if std::fs::remove_file(e.path()).is_ok() {
                n += 1;
            }
        }
    }
    std::fs::create_dir_all(dir)?;
    Ok(n)
}

pub fn state_dir(out: &Path) -> PathBuf {
    out.join(".photoferry")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn place_never_overwrites() {
        let d = tempfile::tempdir().unwrap();
        let tmp = d.path().join("t1");
        std::fs::write(&tmp, b"new").unwrap();
        let dest = d.path().join("a/b/photo.jpg");
        assert_eq!(place(&tmp, &dest).unwrap(), Placed::Done);
        assert!(!tmp.exists());
        let tmp2 = d.path().join("t2");
        std::fs::write(&tmp2, b"other").unwrap();
        assert_eq!(place(&tmp2, &dest).unwrap(), Placed::Exists);
        assert_eq!(std::fs::read(&dest).unwrap(), b"new");
        assert!(tmp2.exists());
    }

    #[test]
    fn second_lock_is_refused_and_released_on_drop() {
        let d = tempfile::tempdir().unwrap();
        let first = Lock::acquire(d.path(), d.path()).unwrap();
        match Lock::acquire(d.path(), d.path()) {
            Err(Error::Locked { pid, .. }) => assert_eq!(pid, std::process::id().to_string()),
            other => panic!("expected Locked, got {:?}", other.map(|_| ())),
        }
        drop(first);
        assert!(Lock::acquire(d.path(), d.path()).is_ok());
    }
}
