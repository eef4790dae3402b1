//! Source: turn the user's INPUTs (folders, single files, zips — zips nested in zips included)
//! into a flat list of candidate files, without extracting anything. Zip entries are read in
//! place through a shared, position-independent file handle, so rayon workers read entries of
//! one archive concurrently. A nested zip stored uncompressed is read as a byte range of its
//! parent; a compressed one is spilled once to a temp file in the state folder.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate};
use zip::ZipArchive;

use crate::error::{FileError, FileErrorKind};
use crate::model::{CaptureTime, DateSource};
use crate::names::nfc;
use crate::sniff::{is_litter, is_zip_name};

/// Zips nested deeper than this are not opened (a guard against zip quines).
const MAX_ZIP_DEPTH: usize = 8;

/// A read-only view of `len` bytes of a file starting at `start`, with its own position. Clones
/// share the file descriptor and never disturb each other (positional reads).
#[derive(Clone, Debug)]
pub struct RangeReader {
    file: Arc<File>,
    start: u64,
    len: u64,
    pos: u64,
}

impl RangeReader {
    pub fn new(file: Arc<File>, start: u64, len: u64) -> Self {
        RangeReader { file, start, len, pos: 0 }
    }

    pub fn whole(file: File) -> io::Result<Self> {
        let len = file.metadata()?.len();
        Ok(RangeReader::new(Arc::new(file), 0, len))
    }
}

impl Read for RangeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        let n = (buf.len() as u64).min(left) as usize;
        if n == 0 {
            return Ok(0);
        }
        let got = read_at(&self.file, &mut buf[..n], self.start + self.pos)?;
        self.pos += got as u64;
        Ok(got)
    }
}

impl Seek for RangeReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let new = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = new.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before start"))?;
        Ok(self.pos)
    }
}

#[cfg(unix)]
fn read_at(f: &File, buf: &mut [u8], off: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(f, buf, off)
}

#[cfg(windows)]
fn read_at(f: &File, buf: &mut [u8], off: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(f, buf, off)
}

/// An opened archive that rayon workers share (each clones it; clones are cheap).
pub struct Archive {
    pub zip: ZipArchive<RangeReader>,
}

/// Where a source's bytes live.
#[derive(Clone)]
pub enum Locator {
    File(PathBuf),
    Zip { archive: Arc<Archive>, index: usize },
}

/// One candidate file from the inputs.
#[derive(Clone)]
pub struct Source {
    /// The top-level input as given on the command line, made absolute.
    pub input: PathBuf,
    /// Path inside the input ('/'-separated; nested archives joined by '/'), "" for a file input.
    pub inner: String,
    /// File name, NFC.
    pub name: String,
    /// Size in bytes (uncompressed).
    pub size: u64,
    /// The file's or zip entry's modification time, the date of last resort.
    pub mtime: Option<CaptureTime>,
    /// Cheap identity used to reuse cached hashes on a re-run (size, mtime, CRC).
    pub fingerprint: String,
    pub locator: Locator,
}

impl Source {
    /// `input` or `input: inner/path` — how every message names a file.
    pub fn display(&self) -> String {
        if self.inner.is_empty() {
            self.input.display().to_string()
        } else {
            format!("{}: {}", self.input.display(), self.inner)
        }
    }

    /// The folder holding this file inside its input ("" at the top); sidecars pair within it.
    pub fn folder(&self) -> String {
        let key = if self.inner.is_empty() { self.input.to_string_lossy().to_string() } else { self.inner.clone() };
        let folder = match key.rfind('/') {
            Some(i) => &key[..i],
            None => "",
        };
        format!("{}\u{1}{}", self.input.display(), folder)
    }

    /// Run `f` over a reader of the file's bytes (zip entries are decompressed and their CRC is
    /// checked at the end of the stream).
    pub fn read_with<T>(&self, f: impl FnOnce(&mut dyn Read) -> io::Result<T>) -> io::Result<T> {
        match &self.locator {
            Locator::File(p) => f(&mut File::open(p)?),
            Locator::Zip { archive, index } => {
                let mut zip = archive.zip.clone();
                let mut entry = zip.by_index(*index).map_err(zip_to_io)?;
                f(&mut entry)
            }
        }
    }
}

pub fn zip_to_io(e: zip::result::ZipError) -> io::Error {
    match e {
        zip::result::ZipError::Io(e) => e,
        other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
    }
}

/// Something in the inputs that is not a candidate: a symlink, a folder, OS litter.
#[derive(Debug, Clone)]
pub struct Skip {
    pub location: String,
    pub reason: String,
}

/// The result of walking every input.
#[derive(Default)]
pub struct Enumerated {
    pub sources: Vec<Source>,
    pub skipped: Vec<Skip>,
    pub errors: Vec<FileError>,
    /// Spilled inner zips; deleted when dropped.
    pub spills: Vec<tempfile::TempPath>,
}

/// Walk every input. `exclude` is the output folder (never read back as input); `spill_dir` is
/// where compressed nested zips are spilled.
pub fn enumerate(inputs: &[PathBuf], exclude: &Path, spill_dir: &Path) -> Enumerated {
    let mut out = Enumerated::default();
    for input in inputs {
        // Canonical where possible, so messages and the manifest name inputs plainly.
        let input = std::fs::canonicalize(input)
            .or_else(|_| std::path::absolute(input))
            .unwrap_or_else(|_| input.clone());
        let meta = match std::fs::metadata(&input) {
            Ok(m) => m,
            Err(e) => {
                out.errors.push(error(input.display().to_string(), FileErrorKind::Input, format!("cannot read input: {e}"), "input skipped"));
                continue;
            }
        };
        if meta.is_dir() {
            walk_folder(&input, exclude, spill_dir, &mut out);
        } else if !meta.is_file() {
            // A pipe, socket or device: reading it could block forever or never end.
            let what = "not a regular file (a pipe, socket or device)".to_string();
            out.errors.push(error(input.display().to_string(), FileErrorKind::Input, what, "input skipped"));
        } else {
            let name = file_name(&input);
            if is_zip_name(&name) {
                match File::open(&input).and_then(RangeReader::whole) {
                    Ok(r) => open_zip(r, &input, "", spill_dir, 0, &mut out),
                    Err(e) => out.errors.push(error(input.display().to_string(), FileErrorKind::Input, format!("cannot open: {e}"), "input skipped")),
                }
            } else {
                out.sources.push(file_source(&input, "", &meta, input.clone()));
            }
        }
    }
    out
}

fn walk_folder(root: &Path, exclude: &Path, spill_dir: &Path, out: &mut Enumerated) {
    let walker = walkdir::WalkDir::new(root).follow_links(false).sort_by_file_name().into_iter();
    for entry in walker.filter_entry(|e| e.path() != exclude) {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let at = e.path().unwrap_or(root).display().to_string();
                out.errors.push(error(at, FileErrorKind::Input, format!("cannot read: {e}"), "skipped"));
                continue;
            }
        };
        let path = entry.path();
        let rel = path.strip_prefix(root).unwrap_or(path).to_string_lossy().replace('\\', "/");
        let ft = entry.file_type();
        if ft.is_dir() {
            continue;
        }
        let location = format!("{}: {}", root.display(), rel);
        if ft.is_symlink() {
            out.skipped.push(Skip { location, reason: "symbolic link (not followed)".into() });
            continue;
        }
        if !ft.is_file() {
            out.skipped.push(Skip { location, reason: "not a regular file".into() });
            continue;
        }
        let name = file_name(path);
        if is_litter(&name) {
            out.skipped.push(Skip { location, reason: "system file".into() });
            continue;
        }
        if is_zip_name(&name) {
            // A zip found in a folder is an input of its own: messages name it directly.
            match File::open(path).and_then(RangeReader::whole) {
                Ok(r) => open_zip(r, path, "", spill_dir, 0, out),
                Err(e) => out.errors.push(error(location, FileErrorKind::Input, format!("cannot open: {e}"), "skipped")),
            }
            continue;
        }
        match entry.metadata() {
            Ok(meta) => out.sources.push(file_source(root, &rel, &meta, path.to_path_buf())),
            Err(e) => out.errors.push(error(location, FileErrorKind::Input, format!("cannot read: {e}"), "skipped")),
        }
    }
}

fn file_name(p: &Path) -> String {
    nfc(&p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default())
}

fn file_source(input: &Path, inner: &str, meta: &std::fs::Metadata, path: PathBuf) -> Source {
    let mtime = meta.modified().ok().and_then(|t| {
        let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
        let utc = DateTime::from_timestamp(d.as_secs() as i64, d.subsec_nanos())?.naive_utc();
        Some(CaptureTime::from_utc(utc, DateSource::FileMtime))
    });
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    Source {
        input: input.to_path_buf(),
        inner: inner.to_string(),
        name: file_name(&path),
        size: meta.len(),
        mtime,
        fingerprint: format!("file:{}:{}", meta.len(), mtime_ns),
        locator: Locator::File(path),
    }
}

/// Why an archive entry name is refused, if it is: it would climb out of any folder it is
/// extracted to, or it is absolute, or it names a drive, or it holds a NUL byte.
pub fn unsafe_entry_name(name: &str) -> Option<&'static str> {
    if name.contains('\0') {
        return Some("its name contains a NUL byte");
    }
    if name.starts_with('/') || name.starts_with('\\') {
        return Some("its name is an absolute path");
    }
    let b = name.as_bytes();
    if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
        return Some("its name starts with a drive letter");
    }
    if name.split(['/', '\\']).any(|c| c == "..") {
        return Some("its name climbs out of the archive with '..'");
    }
    None
}

fn open_zip(reader: RangeReader, input: &Path, prefix: &str, spill_dir: &Path, depth: usize, out: &mut Enumerated) {
    let label = if prefix.is_empty() { input.display().to_string() } else { format!("{}: {}", input.display(), prefix) };
    if depth >= MAX_ZIP_DEPTH {
        out.errors.push(error(label, FileErrorKind::Archive, format!("zips nested more than {MAX_ZIP_DEPTH} deep"), "not opened"));
        return;
    }
    let declared = declared_entries(&mut reader.clone());
    let zip = match ZipArchive::new(reader) {
        Ok(z) => z,
        Err(e) => {
            out.errors.push(error(label, FileErrorKind::Archive, format!("cannot read the zip ({}); truncated or not a zip?", e), "every file in it skipped"));
            return;
        }
    };
    // The zip reader keeps one entry per name; an archive that repeats a name (different files
    // under one name, which some writers produce) would otherwise lose the others silently.
    if let Some(n) = declared.filter(|&n| n > zip.len() as u64) {
        out.errors.push(error(
            label.clone(),
            FileErrorKind::Archive,
            format!("the zip lists {n} entries but only {} distinct names: {} entries repeat a name and cannot be told apart", zip.len(), n - zip.len() as u64),
            "only the last entry of each repeated name was organized; extract the zip with another tool to recover the others",
        ));
    }
    let archive = Arc::new(Archive { zip });
    let join = |name: &str| if prefix.is_empty() { name.to_string() } else { format!("{prefix}/{name}") };
    for index in 0..archive.zip.len() {
        let entry = match archive.zip.by_index_data(index) {
            Ok(e) => e,
            Err(e) => {
                out.errors.push(error(format!("{label}: entry #{index}"), FileErrorKind::Archive, format!("unreadable entry: {e}"), "skipped"));
                continue;
            }
        };
        let raw_name = match entry.name() {
            Ok(n) => n.into_owned(),
            Err(_) => String::from_utf8_lossy(entry.name_raw()).into_owned(),
        };
        let name = nfc(&raw_name);
        let location = format!("{}: {}", input.display(), join(&name));
        if let Some(why) = unsafe_entry_name(&name) {
            out.errors.push(error(location, FileErrorKind::UnsafeName, format!("unsafe entry name: {why}"), "entry refused, nothing written for it"));
            continue;
        }
        if entry.is_dir() {
            continue;
        }
        if entry.is_symlink() {
            out.skipped.push(Skip { location, reason: "symbolic link entry (not followed)".into() });
            continue;
        }
        let base = name.rsplit(['/', '\\']).next().unwrap_or(&name).to_string();
        if base.is_empty() {
            continue;
        }
        if is_litter(&base) || name.starts_with("__MACOSX/") {
            out.skipped.push(Skip { location, reason: "system file".into() });
            continue;
        }
        let inner = join(&name.replace('\\', "/"));
        if is_zip_name(&base) {
            let compressed = entry.compression() != zip::CompressionMethod::Stored;
            drop(entry);
            match inner_zip_reader(&archive, index, compressed, spill_dir, out) {
                Ok(r) => open_zip(r, input, &inner, spill_dir, depth + 1, out),
                Err(e) => out.errors.push(error(location, FileErrorKind::Archive, format!("cannot read nested zip: {e}"), "every file in it skipped")),
            }
            continue;
        }
        let mtime = entry.last_modified().and_then(|d| {
            let date = NaiveDate::from_ymd_opt(d.year() as i32, d.month() as u32, d.day() as u32)?;
            let t = date.and_hms_opt(d.hour() as u32, d.minute() as u32, d.second().min(59) as u32)?;
            Some(CaptureTime::new(t, None, DateSource::ZipEntryMtime))
        });
        out.sources.push(Source {
            input: input.to_path_buf(),
            inner,
            name: base,
            size: entry.size(),
            mtime,
            fingerprint: format!("zip:{}:{:08x}:{}", entry.size(), entry.crc32(), entry.compressed_size()),
            locator: Locator::Zip { archive: archive.clone(), index },
        });
    }
}

/// The entry count the end-of-central-directory record declares (16-bit records only; zip64
/// archives, whose count is elsewhere, give `None`).
fn declared_entries(r: &mut RangeReader) -> Option<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let len = r.seek(SeekFrom::End(0)).ok()?;
    let tail = len.min(22 + 65_535);
    r.seek(SeekFrom::Start(len - tail)).ok()?;
    let mut buf = vec![0u8; tail as usize];
    r.read_exact(&mut buf).ok()?;
    let at = buf.windows(4).rposition(|w| w == b"PK\x05\x06")?;
    let total = u16::from_le_bytes(buf.get(at + 10..at + 12)?.try_into().ok()?);
    (total != 0xFFFF).then_some(u64::from(total))
}

fn inner_zip_reader(archive: &Arc<Archive>, index: usize, compressed: bool, spill_dir: &Path, out: &mut Enumerated) -> io::Result<RangeReader> {
    let mut zip = archive.zip.clone();
    if !compressed {
        let entry = zip.by_index_raw(index).map_err(zip_to_io)?;
        if let Some(start) = entry.data_start() {
            let len = entry.compressed_size();
            let parent = zip_range(&archive.zip);
            return Ok(RangeReader::new(parent.file.clone(), parent.start + start, len));
        }
    }
    std::fs::create_dir_all(spill_dir)?;
    let mut tmp = tempfile::Builder::new().prefix(".spill-").suffix(".zip").tempfile_in(spill_dir)?;
    {
        let mut entry = zip.by_index(index).map_err(zip_to_io)?;
        io::copy(&mut entry, tmp.as_file_mut())?;
    }
    let file = tmp.reopen()?;
    out.spills.push(tmp.into_temp_path());
    RangeReader::whole(file)
}

fn zip_range(zip: &ZipArchive<RangeReader>) -> RangeReader {
    // `ZipArchive::into_inner` consumes; a clone gives us the reader's file and window.
    zip.clone().into_inner()
}

fn error(location: String, kind: FileErrorKind, message: String, action: &str) -> FileError {
    FileError { location, kind, message, action: action.to_string(), year: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_names() {
        assert!(unsafe_entry_name("../evil.jpg").is_some());
        assert!(unsafe_entry_name("a/../../evil.jpg").is_some());
        assert!(unsafe_entry_name("a\\..\\evil.jpg").is_some());
        assert!(unsafe_entry_name("/etc/passwd").is_some());
        assert!(unsafe_entry_name("\\server\\x.jpg").is_some());
        assert!(unsafe_entry_name("C:\\x.jpg").is_some());
        assert!(unsafe_entry_name("c:x.jpg").is_some());
        assert!(unsafe_entry_name("a\0b.jpg").is_some());
        assert!(unsafe_entry_name("Photos/IMG_0001.HEIC").is_none());
        assert!(unsafe_entry_name("Photos/..hidden/x..jpg").is_none());
    }

    #[test]
    fn range_reader_reads_its_window_only() {
        let mut tmp = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut tmp, b"0123456789").unwrap();
        let mut r = RangeReader::new(Arc::new(tmp), 2, 5);
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "23456");
        r.seek(SeekFrom::End(-2)).unwrap();
        let mut b = [0u8; 8];
        assert_eq!(r.read(&mut b).unwrap(), 2);
        assert_eq!(&b[..2], b"56");
        assert!(r.seek(SeekFrom::Current(-10)).is_err());
    }
}
