//! Read: one pass over each new source. Sniff its head; for media, copy it once into a temp file
//! in the state folder while hashing it (BLAKE3), then probe the copy for its date and Live Photo
//! identifier. Sources a previous run already saw (same fingerprint) are not read at all.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use tempfile::{NamedTempFile, TempPath};

use crate::error::{FileError, FileErrorKind};
use crate::fsutil;
use crate::manifest::CachedSource;
use crate::model::{ContentHash, MediaKind};
use crate::probe;
use crate::sniff::{sniff, Sniffed, SNIFF_LEN};
use crate::source::{Locator, Source};

const COPY_BUF: usize = 1 << 20;

/// What the read stage learnt about one source.
pub enum Resolved {
    Skipped(String),
    Failed(FileError),
    Media(Media),
}

pub struct Media {
    pub hash: ContentHash,
    pub size: u64,
    pub kind: MediaKind,
    pub probe: probe::Probe,
    /// Why the header could not be read; the file is still kept.
    pub problem: Option<String>,
    /// The copy in the temp folder (real runs, freshly read sources only).
    pub staged: Option<TempPath>,
}

/// Read stage for one source.
pub fn resolve(src: &Source, cached: Option<&CachedSource>, staging: Option<&Path>, writeback: bool) -> Resolved {
    if let Some(c) = cached.filter(|c| c.fingerprint == src.fingerprint) {
        return Resolved::Media(Media {
            hash: c.hash,
            size: c.size,
            kind: c.kind,
            probe: probe::Probe { capture: c.capture, content_id: c.content_id.clone(), duration_secs: c.duration_secs },
            problem: c.problem.clone(),
            staged: None,
        });
    }
    let fail = |kind: FileErrorKind, message: String| {
        Resolved::Failed(FileError {
            location: src.display(),
            kind,
            message,
            action: "not written; the rest of the run goes on".into(),
            year: src.mtime.map(|m| m.year()),
        })
    };
    let copied = match copy_and_hash(src, staging, writeback) {
        Ok(Copied::NotMedia(why)) => return Resolved::Skipped(why),
        Ok(Copied::Empty) => return fail(FileErrorKind::Corrupt, "the file is empty (0 bytes)".into()),
        Ok(Copied::Media(c)) => c,
        Err(e) if crate::error::is_disk_full(&e) => {
            return fail(FileErrorKind::Write, format!("cannot write into the output folder: the disk is full ({e})"))
        }
        Err(e) => return fail(FileErrorKind::Read, format!("read failed: {e}")),
    };
    let CopiedMedia { sniffed, hash, size, mut sink } = copied;
    if let Sniffed::Mismatch { claimed } = sniffed {
        // Not a damaged photo but something else under a photo's name (an error page saved as
        // .HEIC, a truncated download): not written; the input stays where it is.
        let kind = claimed.as_str().to_uppercase();
        if size < 16 {
            return fail(FileErrorKind::Corrupt, format!("only {size} bytes: too short to be a {kind} (a cut-off download?)"));
        }
        let head = sink_head(&mut sink, src);
        return fail(FileErrorKind::Corrupt, format!("the content is not {kind} as its name says (it starts with {head})"));
    }
    let (kind, probed) = match sniffed {
        Sniffed::Media(kind) => {
            let r = match &mut sink {
                Sink::Named(t) => probe::probe(kind, t.as_file_mut(), size),
                Sink::Anon(f) => probe::probe(kind, f, size),
                Sink::None => match &src.locator {
                    Locator::File(p) => File::open(p).map_err(probe::ProbeError::from).and_then(|mut f| probe::probe(kind, &mut f, size)),
                    Locator::Zip { .. } => unreachable!("zip entries always go through a sink"),
                },
            };
            (kind, r.map_err(|e| e.to_string()))
        }
        Sniffed::Mismatch { .. } | Sniffed::Zip | Sniffed::Other(_) => unreachable!("handled above and in copy_and_hash"),
    };
    let (probe, problem) = match probed {
        Ok(p) => (p, None),
        Err(e) => (probe::Probe::default(), Some(e)),
    };
    let staged = match sink {
        Sink::Named(t) => Some(t.into_temp_path()),
        _ => None,
    };
    Resolved::Media(Media { hash, size, kind, probe, problem, staged })
}

enum Sink {
    Named(NamedTempFile),
    Anon(File),
    None,
}

impl Sink {
    fn write_all(&mut self, b: &[u8]) -> io::Result<()> {
        match self {
            Sink::Named(t) => t.as_file_mut().write_all(b),
            Sink::Anon(f) => f.write_all(b),
            Sink::None => Ok(()),
        }
    }
}

enum Copied {
    NotMedia(String),
    Empty,
    Media(CopiedMedia),
}

struct CopiedMedia {
    sniffed: Sniffed,
    hash: ContentHash,
    size: u64,
    sink: Sink,
}

/// Read a source once: sniff its head, then copy it into the sink while hashing it (a temp file
/// in the state folder; for a dry run, an anonymous temp file when the source is not seekable,
/// else nothing).
///
/// A plain file copied to a temp file takes the fast path: the kernel copies it
/// (`copy_file_range`, no trip through user space) and BLAKE3 then hashes the *copy* through a
/// memory map, so the hash is of exactly the bytes that will be placed. Zip entries stream
/// through a buffer (their CRC is checked by the zip reader at the end).
fn copy_and_hash(src: &Source, staging: Option<&Path>, writeback: bool) -> io::Result<Copied> {
    src.read_with(|r| {
        let mut head = [0u8; SNIFF_LEN];
        let n = read_full(r, &mut head)?;
        let sniffed = sniff(&src.name, &head[..n]);
        match sniffed {
            Sniffed::Other(why) => return Ok(Copied::NotMedia(why.to_string())),
            Sniffed::Zip => return Ok(Copied::NotMedia("a zip archive without a .zip name (not opened)".into())),
            _ if n == 0 => return Ok(Copied::Empty),
            _ => {}
        }
        let (hash, size, sink) = match (staging, &src.locator) {
            (Some(dir), Locator::File(path)) => {
                let mut tmp = tempfile::Builder::new().prefix(".pf-").tempfile_in(dir)?;
                let mut file = File::open(path)?;
                let size = io::copy(&mut file, tmp.as_file_mut())?;
                let hash = hash_file(tmp.path(), size)?;
                (hash, size, Sink::Named(tmp))
            }
            (None, Locator::File(path)) => {
                let size = std::fs::metadata(path)?.len();
                (hash_file(path, size)?, size, Sink::None)
            }
            (staging, Locator::Zip { .. }) => {
                let mut sink = match staging {
                    Some(dir) => Sink::Named(tempfile::Builder::new().prefix(".pf-").tempfile_in(dir)?),
                    None => Sink::Anon(tempfile::tempfile()?),
                };
                let mut hasher = blake3::Hasher::new();
                hasher.update(&head[..n]);
                sink.write_all(&head[..n])?;
                let mut size = n as u64;
                let mut buf = vec![0u8; COPY_BUF];
                loop {
                    let got = match r.read(&mut buf) {
                        Ok(0) => break,
                        Ok(g) => g,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    };
                    hasher.update(&buf[..got]);
                    sink.write_all(&buf[..got])?;
                    size += got as u64;
                }
                (ContentHash(*hasher.finalize().as_bytes()), size, sink)
            }
        };
        if let (Sink::Named(t), true) = (&sink, writeback) {
            fsutil::start_writeback(t.as_file());
        }
        Ok(Copied::Media(CopiedMedia { sniffed, hash, size, sink }))
    })
}

/// Large files are hashed in windows of this size, each on every core.
const HASH_CHUNK: usize = 16 << 20;

/// BLAKE3 of a file: the identity photoferry gives every file (`photoferry hash`, the manifest's
/// `blake3` columns). Through a memory map (no copy into our memory); a large file in 16 MiB
/// windows, each hashed on every core and then dropped from the mapping, so resident memory
/// stays at one window however big the video (the pages stay in the OS cache for the copy).
pub fn hash_file(path: &Path, size: u64) -> io::Result<ContentHash> {
    let mut h = blake3::Hasher::new();
    if size < HASH_CHUNK as u64 {
        h.update_mmap(path)?;
        return Ok(ContentHash(*h.finalize().as_bytes()));
    }
    let file = std::fs::File::open(path)?;
    // SAFETY: read-only map of a file we only read; like `update_mmap`, a file truncated by
    // another process while it is hashed would fault (our copies live in DIR/.photoferry/tmp).
    let map = unsafe { memmap2::Mmap::map(&file)? };
    for start in (0..map.len()).step_by(HASH_CHUNK) {
        let end = (start + HASH_CHUNK).min(map.len());
        h.update_rayon(&map[start..end]);
        // SAFETY: `start` is a multiple of 16 MiB from a page-aligned base; the range is inside
        // the map; DONTNEED on a private read-only file map only drops our page references.
        unsafe {
            libc::madvise(map.as_ptr().add(start) as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
        }
    }
    Ok(ContentHash(*h.finalize().as_bytes()))
}

fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The first bytes of a mismatched file, for the error message.
fn sink_head(sink: &mut Sink, src: &Source) -> String {
    let mut head = [0u8; 8];
    let n = match sink {
        Sink::Named(t) => read_head(t.as_file_mut(), &mut head),
        Sink::Anon(f) => read_head(f, &mut head),
        Sink::None => match &src.locator {
            Locator::File(p) => File::open(p).map(|mut f| read_head(&mut f, &mut head)).unwrap_or(0),
            Locator::Zip { .. } => 0,
        },
    };
    head[..n].iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

fn read_head(f: &mut File, buf: &mut [u8]) -> usize {
    use std::io::Seek;
    if f.seek(io::SeekFrom::Start(0)).is_err() {
        return 0;
    }
    read_full(f, buf).unwrap_or(0)
}

/// Copy a source again into a temp file (its first read was cached, or its temp copy is already
/// used), checking that its bytes still hash to `want`. Tries each copy in turn.
pub fn restage(members: &[usize], sources: &[Source], want: ContentHash, tmp_dir: &Path) -> Result<TempPath, String> {
    let mut last = String::from("no readable copy");
    for &i in members {
        let src = &sources[i];
        match copy_and_hash(src, Some(tmp_dir), true) {
            Ok(Copied::Media(CopiedMedia { hash, sink: Sink::Named(t), .. })) if hash == want => return Ok(t.into_temp_path()),
            Ok(Copied::Media(_)) => last = format!("{} changed since it was hashed", src.display()),
            Ok(_) => last = format!("{} is no longer the same file", src.display()),
            Err(e) => last = format!("{}: {e}", src.display()),
        }
    }
    Err(last)
}

/// A verified copy of a file this run already placed (for a second album folder): the kernel
/// copies it, BLAKE3 checks it.
pub fn copy_verified(from: &Path, want: ContentHash, tmp_dir: &Path) -> Result<TempPath, String> {
    let run = || -> io::Result<(TempPath, ContentHash)> {
        let mut tmp = tempfile::Builder::new().prefix(".pf-").tempfile_in(tmp_dir)?;
        let size = io::copy(&mut File::open(from)?, tmp.as_file_mut())?;
        let hash = hash_file(tmp.path(), size)?;
        Ok((tmp.into_temp_path(), hash))
    };
    match run() {
        Ok((t, h)) if h == want => Ok(t),
        Ok(_) => Err(format!("{} changed while photoferry was running", from.display())),
        Err(e) => Err(format!("cannot copy {}: {e}", from.display())),
    }
}
