//! `organize`: inputs → a deduplicated `{year}/{name}` tree.
//!
//! Stages, one way: **scan** (enumerate folders and zips) → **read** (in parallel: sniff, then
//! copy each new file once into a temp file while hashing it, then probe the temp copy for its
//! date) → **plan** (group by BLAKE3, attach sidecars, choose dates, render the layout, pick
//! collision-free names; pure data, printed by `--dry-run`) → **write** (move temp files into
//! place without ever replacing anything) → **record** (one manifest transaction).
//!
//! Each input byte is read once: the copy that hashes is the copy that is written. A re-run
//! reads nothing it has already seen (sources are fingerprinted in the manifest).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;
use tempfile::{NamedTempFile, TempPath};

use crate::error::{Error, FileError, FileErrorKind, Result};
use crate::fsutil::{self, Lock, Placed};
use crate::layout::LayoutVars;
use crate::manifest::{AssetRow, CachedSource, FileRow, Manifest, RunRecord};
use crate::model::{CaptureTime, ContentHash, DateSource, MediaKind};
use crate::names::{collision_key, split_ext, with_suffix};
use crate::options::OrganizeOptions;
use crate::probe;
use crate::progress::{Progress, Stage};
use crate::sniff::{sniff, Sniffed, SNIFF_LEN};
use crate::source::{self, Locator, Skip, Source};

const COPY_BUF: usize = 1 << 20;

/// What happens to one planned file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// New: written by this run (or, with `--dry-run`, would be).
    Write,
    /// Already in the tree from an earlier run (the manifest says so).
    Present,
    /// Already in the tree with identical bytes, but unknown to the manifest; recorded now.
    Adopt,
}

/// One line of the plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlanEntry {
    pub action: Action,
    /// Destination, relative to the output folder.
    pub dest: String,
    pub blake3: String,
    pub kind: MediaKind,
    /// Capture time (wall clock where taken) or null when no date at all is known.
    pub capture_time: Option<String>,
    pub date_source: Option<DateSource>,
    /// Every input file holding these bytes; the first is the one copied.
    pub sources: Vec<String>,
    /// For a sidecar: the destination of its photo.
    pub companion_of: Option<String>,
}

/// Per-year counts. `found` = `written` + `present` + `duplicates` + files that could not be read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub found: u64,
    pub written: u64,
    pub present: u64,
    pub duplicates: u64,
    pub skipped: u64,
    pub errors: u64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.found += o.found;
        self.written += o.written;
        self.present += o.present;
        self.duplicates += o.duplicates;
        self.skipped += o.skipped;
        self.errors += o.errors;
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SkipEntry {
    pub location: String,
    pub reason: String,
}

/// Everything a run did, for the summary, `--json` and tests.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub dry_run: bool,
    pub out: PathBuf,
    /// Per capture year ("undated" for files with no date; "-" for skipped and unreadable files).
    pub years: BTreeMap<String, Counts>,
    pub totals: Counts,
    pub errors: Vec<FileError>,
    pub skipped: Vec<SkipEntry>,
    pub plan: Vec<PlanEntry>,
}

impl Report {
    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }
}

/// What the read stage learnt about one source.
enum Resolved {
    Skipped(String),
    Failed(FileError),
    Media(Media),
}

struct Media {
    hash: ContentHash,
    size: u64,
    kind: MediaKind,
    probe: probe::Probe,
    /// Why the header could not be read; the file is still kept.
    problem: Option<String>,
    /// The copy in the temp folder (real runs, freshly read sources only).
    staged: Option<TempPath>,
}

/// One distinct thing to place: a photo/video (identity: its bytes) or a sidecar (identity: its
/// bytes and its photo).
struct Asset {
    hash: ContentHash,
    size: u64,
    kind: MediaKind,
    members: Vec<usize>,
    capture: Option<CaptureTime>,
    /// The problem of the first member when no member could be probed.
    problem: Option<String>,
    companion_of: Option<usize>,
}

/// Run `organize`. Per-file problems are in the report; `Err` means the run could not happen.
pub fn organize(opts: &OrganizeOptions, progress: &dyn Progress) -> Result<Report> {
    if opts.inputs.is_empty() {
        return Err(Error::NoInputs);
    }
    let out = std::path::absolute(&opts.out).map_err(|e| Error::io(&opts.out, e))?;
    let state = fsutil::state_dir(&out);
    let tmp_dir = state.join("tmp");

    // Set up: lock, clean the temp folder, open the manifest (read-only for a dry run).
    let (_lock, mut manifest) = if opts.dry_run {
        (None, Manifest::open_read_only(&state)?)
    } else {
        std::fs::create_dir_all(&state).map_err(|e| Error::io(&state, e))?;
        let lock = Lock::acquire(&state, &out)?;
        fsutil::clear_dir(&tmp_dir).map_err(|e| Error::io(&tmp_dir, e))?;
        (Some(lock), Some(Manifest::open(&state)?))
    };
    let run_id = match (&manifest, opts.dry_run) {
        (Some(m), false) => Some(m.begin_run("organize")?),
        _ => None,
    };
    let cache = match &manifest {
        Some(m) => m.load_sources()?,
        None => HashMap::new(),
    };
    let known_files = match &manifest {
        Some(m) => m.load_files()?,
        None => Vec::new(),
    };

    // Scan.
    progress.start(Stage::Scan, 0, 0);
    let spill_dir = if opts.dry_run { std::env::temp_dir() } else { tmp_dir.clone() };
    let scanned = source::enumerate(&dedupe_inputs(&opts.inputs), &out, &spill_dir);
    progress.finish();
    let sources = scanned.sources;
    let mut errors = scanned.errors;
    let mut skipped: Vec<SkipEntry> =
        scanned.skipped.into_iter().map(|Skip { location, reason }| SkipEntry { location, reason }).collect();

    // Read: sniff, copy-and-hash, probe.
    let total_bytes: u64 = sources.iter().map(|s| s.size).sum();
    progress.start(Stage::Read, sources.len() as u64, total_bytes);
    let staging = (!opts.dry_run).then_some(tmp_dir.as_path());
    let writeback = opts.sync;
    let resolved: Vec<Resolved> = sources
        .par_iter()
        .map(|src| {
            let cached = cache.get(&(src.input.to_string_lossy().into_owned(), src.inner.clone()));
            let r = resolve(src, cached, staging, writeback);
            progress.advance(1, src.size);
            r
        })
        .collect();
    progress.finish();

    // Plan.
    progress.start(Stage::Plan, 0, 0);
    let mut media: Vec<Option<Media>> = Vec::with_capacity(resolved.len());
    let mut years: BTreeMap<String, Counts> = BTreeMap::new();
    for (i, r) in resolved.into_iter().enumerate() {
        match r {
            Resolved::Media(m) => media.push(Some(m)),
            Resolved::Skipped(reason) => {
                skipped.push(SkipEntry { location: sources[i].display(), reason });
                media.push(None);
            }
            Resolved::Failed(e) => {
                let y = year_key(sources[i].mtime.as_ref());
                let c = years.entry(y).or_default();
                c.found += 1;
                errors.push(e);
                media.push(None);
            }
        }
    }
    let assets = group_assets(&sources, &media);
    let mut placer = Placer::new(&out, &known_files);
    let mut plan: Vec<PlanEntry> = Vec::with_capacity(assets.len());
    let mut chosen_suffix: Vec<u32> = vec![1; assets.len()];
    let mut dest_of: Vec<String> = vec![String::new(); assets.len()];
    for (ai, a) in assets.iter().enumerate() {
        let first = &sources[a.members[0]];
        let photo = a.companion_of;
        let (folder, name) = opts.layout.render(&LayoutVars {
            capture: a.capture.as_ref().map(|c| &c.local),
            album: None,
            name: &first.name,
            kind: a.kind.as_str(),
        });
        let companion_hash = photo.map(|p| assets[p].hash);
        let min_suffix = photo.map(|p| chosen_suffix[p]).unwrap_or(1);
        let (action, dest, n) = match placer.assign(&folder, &name, a.hash, a.size, companion_hash, min_suffix) {
            Ok(v) => v,
            Err(msg) => {
                errors.push(FileError {
                    location: first.display(),
                    kind: FileErrorKind::Write,
                    message: msg,
                    action: "not written".into(),
                    year: a.capture.map(|c| c.year()),
                });
                continue;
            }
        };
        chosen_suffix[ai] = n;
        dest_of[ai] = dest.clone();
        plan.push(PlanEntry {
            action,
            dest,
            blake3: a.hash.to_hex(),
            kind: a.kind,
            capture_time: a.capture.map(|c| c.to_iso()),
            date_source: a.capture.map(|c| c.source),
            sources: a.members.iter().map(|&m| sources[m].display()).collect(),
            companion_of: photo.map(|p| dest_of[p].clone()),
        });
    }
    progress.finish();

    // Write.
    let asset_by_dest: HashMap<&str, usize> = assets
        .iter()
        .enumerate()
        .filter(|(i, _)| !dest_of[*i].is_empty())
        .map(|(i, _)| (dest_of[i].as_str(), i))
        .collect();
    let mut write_failed: HashMap<String, FileError> = HashMap::new();
    let mut failed_dests = std::collections::HashSet::new();
    if !opts.dry_run {
        let jobs: Vec<(usize, &PlanEntry, Option<TempPath>)> = plan
            .iter()
            .filter(|p| p.action == Action::Write)
            .map(|p| {
                let ai = asset_by_dest[p.dest.as_str()];
                let temp = assets[ai].members.iter().find_map(|&m| media[m].as_mut().and_then(|x| x.staged.take()));
                (ai, p, temp)
            })
            .collect();
        let bytes: u64 = jobs.iter().map(|(ai, _, _)| assets[*ai].size).sum();
        progress.start(Stage::Write, jobs.len() as u64, bytes);
        let failures: Vec<(String, FileError)> = jobs
            .into_par_iter()
            .filter_map(|(ai, entry, temp)| {
                let a = &assets[ai];
                let r = write_one(a, &sources, temp, &tmp_dir, &out.join(&entry.dest));
                progress.advance(1, a.size);
                r.err().map(|msg| {
                    (
                        entry.dest.clone(),
                        FileError {
                            location: sources[a.members[0]].display(),
                            kind: FileErrorKind::Write,
                            message: msg,
                            action: format!("not written to {}", entry.dest),
                            year: a.capture.map(|c| c.year()),
                        },
                    )
                })
            })
            .collect();
        progress.finish();
        failed_dests.extend(failures.iter().map(|(d, _)| d.clone()));
        write_failed.extend(failures);
    }
    // Temp copies of duplicates are no longer needed.
    drop(media_temps(&mut media));

    // Count, and report the files kept despite an unreadable header.
    for a in &assets {
        let y = year_key(a.capture.as_ref());
        let c = years.entry(y).or_default();
        c.found += a.members.len() as u64;
        c.duplicates += a.members.len() as u64 - 1;
    }
    for p in &plan {
        let a = &assets[asset_by_dest[p.dest.as_str()]];
        let c = years.entry(year_key(a.capture.as_ref())).or_default();
        if let Some(e) = write_failed.remove(&p.dest) {
            c.errors += 1;
            errors.push(e);
            continue;
        }
        match p.action {
            Action::Write => c.written += 1,
            Action::Present | Action::Adopt => c.present += 1,
        }
        if let Some(problem) = &a.problem {
            let how = a.capture.map(|c| c.source.as_str()).unwrap_or("no date");
            errors.push(FileError {
                location: sources[a.members[0]].display(),
                kind: FileErrorKind::Corrupt,
                message: problem.clone(),
                action: format!(
                    "{} unchanged as {} (dated by {how})",
                    if opts.dry_run { "would be kept" } else { "kept" },
                    p.dest
                ),
                year: a.capture.map(|c| c.year()),
            });
        }
    }
    for e in &errors {
        let key = e.year.map(|y| format!("{y:04}")).unwrap_or_else(|| "-".into());
        years.entry(key).or_default().errors += 1;
    }
    years.entry("-".into()).or_default().skipped += skipped.len() as u64;
    years.retain(|_, c| *c != Counts::default());
    let mut totals = Counts::default();
    for c in years.values() {
        totals.add(c);
    }
    let report = Report { dry_run: opts.dry_run, out: out.clone(), years, totals, errors, skipped, plan };

    // Record.
    if let (Some(m), Some(run_id)) = (manifest.as_mut(), run_id) {
        progress.start(Stage::Record, 0, 0);
        if opts.sync {
            fsutil::sync_tree(&out).map_err(|e| Error::io(&out, e))?;
        }
        let rec = run_record(&sources, &media, &assets, &report.plan, &asset_by_dest, &failed_dests);
        let summary = serde_json::to_string(&SummaryOnly { years: &report.years, totals: &report.totals })
            .unwrap_or_default();
        m.record(run_id, &rec, &summary)?;
        progress.finish();
    }
    Ok(report)
}

#[derive(Serialize)]
struct SummaryOnly<'a> {
    years: &'a BTreeMap<String, Counts>,
    totals: &'a Counts,
}

fn year_key(c: Option<&CaptureTime>) -> String {
    match c {
        Some(c) => format!("{:04}", c.year()),
        None => "undated".into(),
    }
}

/// The same path given twice is one input.
fn dedupe_inputs(inputs: &[PathBuf]) -> Vec<PathBuf> {
    let mut seen = std::collections::HashSet::new();
    inputs
        .iter()
        .filter(|p| seen.insert(std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())))
        .cloned()
        .collect()
}

fn media_temps(media: &mut [Option<Media>]) -> Vec<TempPath> {
    media.iter_mut().filter_map(|m| m.as_mut().and_then(|m| m.staged.take())).collect()
}

/// Read stage for one source.
fn resolve(src: &Source, cached: Option<&CachedSource>, staging: Option<&Path>, writeback: bool) -> Resolved {
    if let Some(c) = cached.filter(|c| c.fingerprint == src.fingerprint) {
        return Resolved::Media(Media {
            hash: c.hash,
            size: c.size,
            kind: c.kind,
            probe: probe::Probe { capture: c.capture, content_id: c.content_id.clone() },
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
        Err(e) => return fail(FileErrorKind::Read, format!("read failed: {e}")),
    };
    let CopiedMedia { sniffed, hash, size, mut sink } = copied;
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
        Sniffed::Mismatch { claimed } => {
            let head = sink_head(&mut sink, src);
            (claimed, Err(format!("the content is not {} as its name says (it starts with {head})", claimed.as_str().to_uppercase())))
        }
        Sniffed::Zip | Sniffed::Other(_) => unreachable!("handled in copy_and_hash"),
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

/// BLAKE3 of a file through a memory map (large files are hashed on several cores).
fn hash_file(path: &Path, size: u64) -> io::Result<ContentHash> {
    let mut h = blake3::Hasher::new();
    if size >= 16 << 20 {
        h.update_mmap_rayon(path)?;
    } else {
        h.update_mmap(path)?;
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

/// Group sources by content; attach `.AAE` sidecars to their photo; choose each asset's date.
fn group_assets(sources: &[Source], media: &[Option<Media>]) -> Vec<Asset> {
    let effective = |i: usize| -> Option<CaptureTime> {
        media[i].as_ref().and_then(|m| m.probe.capture).or(sources[i].mtime)
    };
    let mut assets: Vec<Asset> = Vec::new();
    let mut by_hash: HashMap<ContentHash, usize> = HashMap::new();
    // Photos and videos first.
    for (i, m) in media.iter().enumerate() {
        let Some(m) = m else { continue };
        if m.kind == MediaKind::Aae {
            continue;
        }
        let ai = *by_hash.entry(m.hash).or_insert_with(|| {
            assets.push(Asset {
                hash: m.hash,
                size: m.size,
                kind: m.kind,
                members: Vec::new(),
                capture: None,
                problem: None,
                companion_of: None,
            });
            assets.len() - 1
        });
        assets[ai].members.push(i);
    }
    for a in &mut assets {
        // The best date among the copies; ties go to the first copy.
        a.capture = a.members.iter().filter_map(|&i| effective(i)).min_by_key(|c| c.source);
        let probed_ok = a.members.iter().any(|&i| media[i].as_ref().is_some_and(|m| m.problem.is_none()));
        if !probed_ok {
            a.problem = media[a.members[0]].as_ref().and_then(|m| m.problem.clone());
        }
    }
    // Stable order: by capture time, then content.
    assets.sort_by(|x, y| {
        let k = |a: &Asset| (a.capture.map(|c| c.local), a.hash);
        k(x).cmp(&k(y))
    });
    // Sidecars: same folder of the same input, stem equal to the photo's (IMG_O1234 → IMG_1234).
    let mut stems: HashMap<(String, String), usize> = HashMap::new();
    for (ai, a) in assets.iter().enumerate() {
        for &i in &a.members {
            let key = (sources[i].folder(), split_ext(&sources[i].name).0.to_lowercase());
            let e = stems.entry(key).or_insert(ai);
            // Prefer a still over a video of the same stem (a Live Photo's MOV).
            if assets[*e].kind.is_video() && !a.kind.is_video() {
                *e = ai;
            }
        }
    }
    let mut sidecars: HashMap<(ContentHash, Option<usize>), usize> = HashMap::new();
    for (i, m) in media.iter().enumerate() {
        let Some(m) = m.as_ref().filter(|m| m.kind == MediaKind::Aae) else { continue };
        let folder = sources[i].folder();
        let photo = sidecar_stems(split_ext(&sources[i].name).0)
            .into_iter()
            .find_map(|stem| stems.get(&(folder.clone(), stem)).copied());
        let ai = *sidecars.entry((m.hash, photo)).or_insert_with(|| {
            let capture = match photo {
                Some(p) => assets[p].capture.map(|c| CaptureTime { source: DateSource::Companion, ..c }),
                None => effective(i),
            };
            assets.push(Asset {
                hash: m.hash,
                size: m.size,
                kind: MediaKind::Aae,
                members: Vec::new(),
                capture,
                problem: None,
                companion_of: photo,
            });
            assets.len() - 1
        });
        assets[ai].members.push(i);
    }
    assets
}

/// The photo stems an `.AAE` sidecar may belong to: its own, and `IMG_O1234` → `IMG_1234`.
fn sidecar_stems(stem: &str) -> Vec<String> {
    let lower = stem.to_lowercase();
    let mut out = vec![lower.clone()];
    if let Some(pos) = lower.rfind("_o") {
        let digits = &lower[pos + 2..];
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            out.push(format!("{}_{}", &lower[..pos], digits));
        }
    }
    out
}

/// Who holds a name in a destination folder.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Holder {
    /// A file the manifest (or this run) put there, with these bytes.
    Ours(ContentHash, Option<ContentHash>),
    /// A file on disk photoferry knows nothing about.
    Foreign,
}

/// Picks collision-free names, folder by folder, against the manifest and the disk.
struct Placer<'a> {
    out: &'a Path,
    /// folder → collision key → (actual name, holder)
    folders: HashMap<String, HashMap<String, (String, Holder)>>,
    /// (hash, companion) → paths the manifest already has for it.
    known: HashMap<(ContentHash, Option<ContentHash>), Vec<String>>,
}

fn split_path(p: &str) -> (&str, &str) {
    match p.rfind('/') {
        Some(i) => (&p[..i], &p[i + 1..]),
        None => ("", p),
    }
}

impl<'a> Placer<'a> {
    fn new(out: &'a Path, files: &[FileRow]) -> Self {
        let mut p = Placer { out, folders: HashMap::new(), known: HashMap::new() };
        for f in files {
            let (folder, name) = split_path(&f.path);
            p.folders
                .entry(folder.to_string())
                .or_default()
                .insert(collision_key(name), (name.to_string(), Holder::Ours(f.hash, f.companion_of)));
            p.known.entry((f.hash, f.companion_of)).or_default().push(f.path.clone());
        }
        p
    }

    /// Names on disk in `folder` that the manifest does not know.
    fn load_disk(&mut self, folder: &str) {
        if self.folders.get(folder).is_some_and(|m| m.contains_key("\u{0}listed")) {
            return;
        }
        let map = self.folders.entry(folder.to_string()).or_default();
        map.insert("\u{0}listed".into(), (String::new(), Holder::Foreign));
        if let Ok(rd) = std::fs::read_dir(self.out.join(folder)) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                map.entry(collision_key(&name)).or_insert((name, Holder::Foreign));
            }
        }
    }

    /// Decide where an asset goes: its existing place, or the first free `name (n)`.
    fn assign(
        &mut self,
        folder: &str,
        name: &str,
        hash: ContentHash,
        size: u64,
        companion: Option<ContentHash>,
        min_suffix: u32,
    ) -> std::result::Result<(Action, String, u32), String> {
        let join = |n: &str| if folder.is_empty() { n.to_string() } else { format!("{folder}/{n}") };
        if let Some(paths) = self.known.get(&(hash, companion)) {
            if let Some(p) = paths.iter().find(|p| split_path(p).0 == folder) {
                let action = if self.out.join(p).exists() { Action::Present } else { Action::Write };
                let n = suffix_of(split_path(p).1);
                return Ok((action, p.clone(), n));
            }
        }
        self.load_disk(folder);
        for n in min_suffix.max(1)..10_000 {
            let candidate = with_suffix(name, n);
            let key = collision_key(&candidate);
            let held = self.folders.get(folder).and_then(|m| m.get(&key)).cloned();
            match held {
                None => {
                    self.claim(folder, &key, &candidate, hash, companion);
                    return Ok((Action::Write, join(&candidate), n));
                }
                Some((_, Holder::Ours(h, c))) if h == hash && c == companion => {
                    return Ok((Action::Present, join(&candidate), n));
                }
                Some((actual, Holder::Foreign)) => {
                    let path = self.out.join(folder).join(&actual);
                    if same_content(&path, size, hash) {
                        self.claim(folder, &key, &actual, hash, companion);
                        return Ok((Action::Adopt, join(&actual), n));
                    }
                }
                Some(_) => {}
            }
        }
        Err(format!("no free name for {name} in {folder}/ after 10000 tries"))
    }

    fn claim(&mut self, folder: &str, key: &str, name: &str, hash: ContentHash, companion: Option<ContentHash>) {
        self.folders
            .entry(folder.to_string())
            .or_default()
            .insert(key.to_string(), (name.to_string(), Holder::Ours(hash, companion)));
    }
}

/// `IMG_0009 (3).JPG` → 3; names without a suffix → 1.
fn suffix_of(name: &str) -> u32 {
    let stem = split_ext(name).0;
    stem.strip_suffix(')')
        .and_then(|s| s.rsplit_once(" ("))
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(1)
}

fn same_content(path: &Path, size: u64, hash: ContentHash) -> bool {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() && m.len() == size => {}
        _ => return false,
    }
    let Ok(mut f) = File::open(path) else { return false };
    let mut h = blake3::Hasher::new();
    io::copy(&mut f, &mut h).is_ok() && h.finalize().as_bytes() == &hash.0
}

/// Place one asset: use its staged temp copy, or read a source again (verifying its hash).
fn write_one(a: &Asset, sources: &[Source], temp: Option<TempPath>, tmp_dir: &Path, dest: &Path) -> std::result::Result<(), String> {
    let temp = match temp {
        Some(t) => t,
        None => restage(a, sources, tmp_dir)?,
    };
    let file = File::options().write(true).open(&temp).map_err(|e| format!("cannot reopen temp copy: {e}"))?;
    fsutil::finish_temp(&file, a.capture.map(|c| c.unix_seconds())).map_err(|e| format!("cannot set file time: {e}"))?;
    drop(file);
    match fsutil::place(&temp, dest) {
        Ok(Placed::Done) => {
            // The temp path is gone (moved into place); keep TempPath from deleting the new name.
            let _ = temp.keep();
            Ok(())
        }
        Ok(Placed::Exists) => Err(format!("{} appeared while photoferry was running; not overwritten", dest.display())),
        Err(e) => Err(format!("cannot write {}: {e}", dest.display())),
    }
}

fn restage(a: &Asset, sources: &[Source], tmp_dir: &Path) -> std::result::Result<TempPath, String> {
    let mut last = String::from("no readable copy");
    for &i in &a.members {
        let src = &sources[i];
        let r = src.read_with(|r| {
            let mut tmp = tempfile::Builder::new().prefix(".pf-").tempfile_in(tmp_dir)?;
            let mut h = blake3::Hasher::new();
            let mut buf = vec![0u8; COPY_BUF];
            loop {
                let n = r.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
                tmp.as_file_mut().write_all(&buf[..n])?;
            }
            Ok((tmp.into_temp_path(), ContentHash(*h.finalize().as_bytes())))
        });
        match r {
            Ok((t, h)) if h == a.hash => return Ok(t),
            Ok(_) => last = format!("{} changed since it was hashed", src.display()),
            Err(e) => last = format!("{}: {e}", src.display()),
        }
    }
    Err(last)
}

/// What the manifest learns from this run: every media source (so a re-run reads nothing), and
/// every asset and file placed or adopted.
fn run_record(
    sources: &[Source],
    media: &[Option<Media>],
    assets: &[Asset],
    plan: &[PlanEntry],
    asset_by_dest: &HashMap<&str, usize>,
    failed: &std::collections::HashSet<String>,
) -> RunRecord {
    let mut rec = RunRecord::default();
    for (src, m) in sources.iter().zip(media) {
        let Some(m) = m else { continue };
        rec.sources.push((
            src.input.to_string_lossy().into_owned(),
            src.inner.clone(),
            CachedSource {
                fingerprint: src.fingerprint.clone(),
                hash: m.hash,
                size: m.size,
                kind: m.kind,
                capture: m.probe.capture,
                content_id: m.probe.content_id.clone(),
                problem: m.problem.clone(),
            },
        ));
    }
    for p in plan.iter().filter(|p| !failed.contains(&p.dest)) {
        let a = &assets[asset_by_dest[p.dest.as_str()]];
        rec.assets.push(AssetRow {
            hash: a.hash,
            size: a.size,
            kind: a.kind,
            capture: a.capture,
            date_source: a.capture.map(|c| c.source),
        });
        if p.action != Action::Present {
            let companion_of = a.companion_of.map(|c| assets[c].hash);
            rec.files.push((FileRow { path: p.dest.clone(), hash: a.hash, companion_of }, p.action == Action::Adopt));
        }
    }
    rec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_parsing() {
        assert_eq!(suffix_of("IMG_0009.JPG"), 1);
        assert_eq!(suffix_of("IMG_0009 (2).JPG"), 2);
        assert_eq!(suffix_of("IMG_0009 (12)"), 12);
        assert_eq!(suffix_of("Trip (day two).JPG"), 1);
    }

    #[test]
    fn sidecar_stems_cover_the_original_adjustment_name() {
        assert_eq!(sidecar_stems("IMG_1234"), vec!["img_1234"]);
        assert_eq!(sidecar_stems("IMG_O1234"), vec!["img_o1234", "img_1234"]);
        assert_eq!(sidecar_stems("photo_old"), vec!["photo_old"]);
    }
}
