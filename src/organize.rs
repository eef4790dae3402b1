//! `organize`: inputs → a deduplicated `{year}/{album}/{name}` tree.
//!
//! Stages, one way: **scan** ([`crate::source`]: folders and zips, nested zips included) →
//! **catalog** ([`crate::catalog`]: the privacy export's CSVs) → **read** ([`crate::read`], in
//! parallel: sniff, copy each new file once into a temp file while hashing it, probe the copy) →
//! **plan** ([`crate::plan`]: group by BLAKE3, pair companions, choose dates, render the layout,
//! pick collision-free names; pure data, printed by `--dry-run`) → **write** (move temp files
//! into place without ever replacing anything) → **record** (one manifest transaction).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;
use tempfile::TempPath;

use crate::catalog::Catalog;
use crate::error::{Error, FileError, FileErrorKind, Result};
use crate::fsutil::{self, Lock, Placed};
use crate::manifest::{AssetRow, CachedSource, FileRow, Manifest, PlacedRow, RunRecord};
use crate::model::{CaptureTime, ContentHash};
use crate::options::OrganizeOptions;
pub use crate::plan::{Action, PlanEntry};
use crate::plan::{self as planner, Asset, PlanOptions, Placer};
use crate::progress::{Progress, Stage};
use crate::read::{self, Media, Resolved};
use crate::source::{self, Skip, Source};

/// Per-year counts. `found` counts input files; `written` and `present` count files in the
/// tree (an asset in two albums is two files); `duplicates` counts input files whose bytes
/// were already seen.
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
    /// Catalog problems (unreadable CSV rows or dates): reported, not errors.
    pub warnings: Vec<FileError>,
    pub skipped: Vec<SkipEntry>,
    pub plan: Vec<PlanEntry>,
    /// Set when the run could not be recorded (the disk filled up, the manifest failed): what
    /// was written is complete and in place, and the next run adopts it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fatal: Option<String>,
}

impl Report {
    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }
}

/// Run `organize`. Per-file problems are in the report; `Err` means the run could not happen.
pub fn organize(opts: &OrganizeOptions, progress: &dyn Progress) -> Result<Report> {
    if opts.inputs.is_empty() {
        return Err(Error::NoInputs);
    }
    if opts.inputs.iter().all(|p| !p.exists()) {
        let names: Vec<String> = opts.inputs.iter().map(|p| p.display().to_string()).collect();
        return Err(Error::InputsMissing(names.join(", ")));
    }
    if opts.out.exists() && !opts.out.is_dir() {
        return Err(Error::OutIsFile(opts.out.clone()));
    }
    let out = canonical_out(&opts.out).map_err(|e| Error::io(&opts.out, e))?;
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
    let sources = scanned.sources;
    let mut errors = scanned.errors;
    let mut skipped: Vec<(Option<usize>, SkipEntry)> = scanned
        .skipped
        .into_iter()
        .map(|Skip { location, reason }| (None, SkipEntry { location, reason }))
        .collect();
    // Catalog: the privacy export's CSVs, and the user's album choices.
    let mut catalog = Catalog::read(&sources);
    let user_albums: Vec<(PathBuf, String)> = opts
        .albums
        .iter()
        .map(|(p, a)| (std::path::absolute(p).unwrap_or_else(|_| p.clone()), crate::names::nfc(a)))
        .collect();
    let info = catalog.info(&sources, &user_albums);
    let warnings = std::mem::take(&mut catalog.notes);
    progress.finish();

    // Read: sniff, copy-and-hash, probe. Deleted items are not read unless asked for; sources a
    // previous run fingerprinted are not read at all.
    let cache_key = |s: &Source| (s.input.to_string_lossy().into_owned(), s.inner.clone());
    let fresh = |s: &Source| cache.get(&cache_key(s)).is_none_or(|c| c.fingerprint != s.fingerprint);
    let to_read: Vec<&Source> = sources.iter().filter(|s| fresh(s)).collect();
    progress.start(Stage::Read, to_read.len() as u64, to_read.iter().map(|s| s.size).sum());
    let staging = (!opts.dry_run).then_some(tmp_dir.as_path());
    let resolved: Vec<Resolved> = sources
        .par_iter()
        .zip(info.par_iter())
        .enumerate()
        .map(|(i, (src, inf))| {
            let r = if catalog.csv_sources.contains(&i) {
                Resolved::Skipped("export catalog (read for dates, albums and flags)".into())
            } else if inf.deleted && !opts.include_deleted {
                Resolved::Skipped("in Recently Deleted (use --include-deleted to keep it)".into())
            } else {
                let cached = cache.get(&cache_key(src));
                read::resolve(src, cached, staging, opts.sync)
            };
            if fresh(src) {
                progress.advance(1, src.size);
            }
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
                skipped.push((Some(i), SkipEntry { location: sources[i].display(), reason }));
                media.push(None);
            }
            Resolved::Failed(e) => {
                years.entry(year_key(sources[i].mtime.as_ref())).or_default().found += 1;
                errors.push(e);
                media.push(None);
            }
        }
    }
    let assets = planner::group(&sources, &media, &info);
    let mut placer = Placer::new(&out, &known_files);
    let plan_opts = PlanOptions {
        layout: &opts.layout,
        once: opts.once,
        keep_edits: opts.keep_edits,
        convert: opts.convert,
        keep_original: opts.keep_original,
    };
    let planned = planner::plan(&assets, &sources, &plan_opts, &mut placer);
    errors.extend(planned.errors);
    let plan = planned.entries;
    for &ai in &planned.dropped {
        for &m in &assets[ai].members {
            skipped.push((Some(m), SkipEntry { location: sources[m].display(), reason: "edit or sidecar (--no-edits)".into() }));
        }
    }
    progress.finish();

    // Write: each asset's first file from its temp copy; further copies (album folders, the JPEG
    // beside a kept HEIC) from a file this run already placed.
    let mut plan = plan;
    let mut failed: HashMap<String, FileError> = HashMap::new();
    // Where a planned file really went (a failed conversion writes the original instead).
    let mut moved: HashMap<String, (String, Option<ContentHash>)> = HashMap::new();
    if !opts.dry_run {
        let writes: Vec<usize> = (0..plan.len()).filter(|&i| plan[i].action == Action::Write).collect();
        let bytes: u64 = writes.iter().map(|&i| assets[plan[i].asset].size).sum();
        progress.start(Stage::Write, writes.len() as u64, bytes);
        let mut seen = HashSet::new();
        let (firsts, extras): (Vec<usize>, Vec<usize>) = writes.into_iter().partition(|&i| seen.insert(plan[i].asset));
        let jobs: Vec<(usize, Option<TempPath>)> = firsts
            .into_iter()
            .map(|i| {
                let temp = assets[plan[i].asset].members.iter().find_map(|&m| media[m].as_mut().and_then(|x| x.staged.take()));
                (i, temp)
            })
            .collect();
        let ctx = WriteCtx { assets: &assets, sources: &sources, tmp_dir: &tmp_dir, out: &out, quality: opts.quality };
        let no_done = HashMap::new();
        let first_results: Vec<(usize, WriteResult)> = jobs
            .into_par_iter()
            .map(|(i, temp)| {
                let r = ctx.write(&plan[i], temp, &no_done);
                progress.advance(1, assets[plan[i].asset].size);
                (i, r)
            })
            .collect();
        let mut done: HashMap<(usize, bool), (PathBuf, ContentHash)> = HashMap::new();
        let mut results = first_results;
        for (i, r) in &results {
            if let Ok(w) = r {
                let key = (plan[*i].asset, plan[*i].convert && w.fallback.is_none());
                done.entry(key).or_insert_with(|| (out.join(&w.dest), w.hash));
            }
        }
        let extra_results: Vec<(usize, WriteResult)> = extras
            .into_par_iter()
            .map(|i| {
                let r = ctx.write(&plan[i], None, &done);
                progress.advance(1, assets[plan[i].asset].size);
                (i, r)
            })
            .collect();
        results.extend(extra_results);
        for (i, r) in results {
            let p = &mut plan[i];
            match r {
                Ok(w) => {
                    p.notes = w.notes;
                    if let Some(msg) = w.fallback {
                        let a = &assets[p.asset];
                        errors.push(FileError {
                            location: sources[a.members[0]].display(),
                            kind: FileErrorKind::Corrupt,
                            message: format!("cannot convert to JPEG: {msg}"),
                            action: format!("the original is written unconverted as {}", w.dest),
                            year: a.capture.map(|c| c.year()),
                        });
                    }
                    let out_hash = (w.hash != assets[p.asset].hash).then_some(w.hash);
                    if w.dest != p.dest || out_hash.is_some() {
                        moved.insert(p.dest.clone(), (w.dest.clone(), out_hash));
                    }
                    if w.dest != p.dest {
                        // Recorded as this asset's conversion target, so a re-run does not try
                        // (and fail) again, nor write the original a second time.
                        p.notes.push(format!("not converted; the original is kept as {}", w.dest));
                        p.dest = w.dest;
                    }
                }
                Err(msg) => {
                    let a = &assets[p.asset];
                    failed.insert(
                        p.dest.clone(),
                        FileError {
                            location: sources[a.members[0]].display(),
                            kind: FileErrorKind::Write,
                            message: msg,
                            action: format!("not written to {}", p.dest),
                            year: a.capture.map(|c| c.year()),
                        },
                    );
                }
            }
        }
        progress.finish();
    } else if opts.convert {
        for p in plan.iter_mut().filter(|p| p.convert) {
            p.notes.push("would be converted to JPEG".into());
        }
    }
    // Temp copies of duplicates are no longer needed.
    for m in media.iter_mut().flatten() {
        drop(m.staged.take());
    }

    // Count, and report the files kept despite an unreadable header.
    let dropped: HashSet<usize> = planned.dropped.iter().copied().collect();
    for (ai, a) in assets.iter().enumerate() {
        if dropped.contains(&ai) {
            continue;
        }
        let c = years.entry(year_key(a.capture.as_ref())).or_default();
        c.found += a.members.len() as u64;
        c.duplicates += a.members.len() as u64 - 1;
    }
    let mut reported = HashSet::new();
    let mut failed_dests: HashSet<String> = HashSet::new();
    for p in &plan {
        let a = &assets[p.asset];
        let c = years.entry(year_key(a.capture.as_ref())).or_default();
        if let Some(e) = failed.remove(&p.dest) {
            errors.push(e);
            failed_dests.insert(p.dest.clone());
            continue;
        }
        match p.action {
            Action::Write => c.written += 1,
            Action::Present | Action::Adopt => c.present += 1,
        }
        if let (Some(problem), true) = (&a.problem, reported.insert(p.asset)) {
            let how = a.capture.map(|c| c.source.as_str()).unwrap_or("no date");
            errors.push(FileError {
                location: sources[a.members[0]].display(),
                kind: FileErrorKind::Corrupt,
                message: problem.clone(),
                action: format!("{} unchanged as {} (dated by {how})", if opts.dry_run { "would be kept" } else { "kept" }, p.dest),
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
    let skipped_rows: Vec<(String, String, String)> = skipped
        .iter()
        .filter_map(|(i, s)| i.map(|i| (sources[i].input.to_string_lossy().into_owned(), sources[i].inner.clone(), s.reason.clone())))
        .collect();
    let mut report = Report {
        dry_run: opts.dry_run,
        out: out.clone(),
        years,
        totals,
        errors,
        warnings,
        skipped: skipped.into_iter().map(|(_, s)| s).collect(),
        plan,
        fatal: None,
    };

    // Record.
    if let (Some(m), Some(run_id)) = (manifest.as_mut(), run_id) {
        progress.start(Stage::Record, 0, 0);
        let recorded = (|| {
            if opts.sync {
                fsutil::sync_tree(&out).map_err(|e| Error::io(&out, e))?;
            }
            let written: HashSet<&str> =
                report.plan.iter().filter(|p| !failed_dests.contains(&p.dest)).map(|p| p.dest.as_str()).collect();
            let rec = run_record(&sources, &media, &assets, &report.plan, &written, skipped_rows, &moved);
            let summary = serde_json::to_string(&SummaryOnly { years: &report.years, totals: &report.totals, errors: &report.errors }).unwrap_or_default();
            m.record(run_id, &rec, &summary)
        })();
        progress.finish();
        // The per-file results stay reportable even when recording fails.
        if let Err(e) = recorded {
            let hint = if e.is_disk_full() {
                crate::error::DISK_FULL_HINT
            } else {
                "the files written are complete and in place; run the same command again to record them"
            };
            report.fatal = Some(format!("{e}; {hint}"));
        }
    }
    Ok(report)
}

#[derive(Serialize)]
struct SummaryOnly<'a> {
    years: &'a BTreeMap<String, Counts>,
    totals: &'a Counts,
    /// The run's per-file errors, for `photoferry report`.
    errors: &'a [FileError],
}

fn year_key(c: Option<&CaptureTime>) -> String {
    match c {
        Some(c) => format!("{:04}", c.year()),
        None => "undated".into(),
    }
}

/// The output folder without symlinks or `..` (it may not exist yet), so that walking an input
/// that contains it reliably skips it.
fn canonical_out(out: &Path) -> std::io::Result<PathBuf> {
    if let Ok(c) = std::fs::canonicalize(out) {
        return Ok(c);
    }
    let abs = std::path::absolute(out)?;
    match (abs.parent(), abs.file_name()) {
        (Some(parent), Some(name)) => match std::fs::canonicalize(parent) {
            Ok(p) => Ok(p.join(name)),
            Err(_) => Ok(abs.clone()),
        },
        _ => Ok(abs),
    }
}

/// The same path given twice is one input.
fn dedupe_inputs(inputs: &[PathBuf]) -> Vec<PathBuf> {
    let mut seen = HashSet::new();
    inputs
        .iter()
        .filter(|p| seen.insert(std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())))
        .cloned()
        .collect()
}

/// What writing one planned file produced.
struct Written {
    /// Where it went (differs from the plan when a failed conversion wrote the original).
    dest: String,
    /// BLAKE3 of the bytes written.
    hash: ContentHash,
    /// What a conversion could not keep.
    notes: Vec<String>,
    /// Why the conversion failed, when it did (the original was written instead).
    fallback: Option<String>,
}

type WriteResult = std::result::Result<Written, String>;

struct WriteCtx<'a> {
    assets: &'a [Asset],
    sources: &'a [Source],
    tmp_dir: &'a Path,
    out: &'a Path,
    quality: u8,
}

impl WriteCtx<'_> {
    /// Produce the bytes of one planned file in a temp file and move it into place.
    fn write(&self, p: &PlanEntry, staged: Option<TempPath>, done: &HashMap<(usize, bool), (PathBuf, ContentHash)>) -> WriteResult {
        let a = &self.assets[p.asset];
        // A copy of the output this run already made (another album folder): copy it.
        if let Some((from, hash)) = done.get(&(p.asset, p.convert)) {
            let t = read::copy_verified(from, *hash, self.tmp_dir)?;
            return self.place(a, t, &p.dest, *hash, Vec::new(), None);
        }
        let original = match staged {
            Some(t) => t,
            None => match done.get(&(p.asset, false)) {
                Some((from, hash)) => read::copy_verified(from, *hash, self.tmp_dir)?,
                None => read::restage(&a.members, self.sources, a.hash, self.tmp_dir)?,
            },
        };
        if !p.convert {
            return self.place(a, original, &p.dest, a.hash, Vec::new(), None);
        }
        match self.convert(&original) {
            Ok((jpeg, hash, notes)) => self.place(a, jpeg, &p.dest, hash, notes, None),
            Err(msg) => {
                // Never lose the photo: write the original, unconverted, under its own name.
                let name = &self.sources[a.members[0]].name;
                let folder = p.dest.rsplit_once('/').map(|(f, _)| f).unwrap_or("");
                self.place(a, original, &join(folder, &crate::names::safe_component(name)), a.hash, Vec::new(), Some(msg))
            }
        }
    }

    fn convert(&self, original: &Path) -> std::result::Result<(TempPath, ContentHash, Vec<String>), String> {
        let c = crate::convert::heic_to_jpeg(original, self.quality).map_err(|e| e.to_string())?;
        let mut tmp = tempfile::Builder::new().prefix(".pf-").tempfile_in(self.tmp_dir).map_err(|e| e.to_string())?;
        std::io::Write::write_all(tmp.as_file_mut(), &c.jpeg).map_err(|e| e.to_string())?;
        Ok((tmp.into_temp_path(), ContentHash(*blake3::hash(&c.jpeg).as_bytes()), c.notes))
    }

    /// Give a finished temp file its permissions and mtime and move it into place, never
    /// replacing anything; a fallback (unconverted original) takes the next free ` (n)` name.
    fn place(&self, a: &Asset, temp: TempPath, dest: &str, hash: ContentHash, notes: Vec<String>, fallback: Option<String>) -> WriteResult {
        let file = File::options().write(true).open(&temp).map_err(|e| format!("cannot reopen temp copy: {e}"))?;
        fsutil::finish_temp(&file, a.capture.map(|c| c.unix_seconds())).map_err(|e| format!("cannot set file time: {e}"))?;
        drop(file);
        let tries = if fallback.is_some() { 1000 } else { 1 };
        for n in 1..=tries {
            let candidate = if n == 1 { dest.to_string() } else { crate::names::with_suffix(dest, n) };
            match fsutil::place(&temp, &self.out.join(&candidate)) {
                Ok(Placed::Done) => {
                    // The temp name is gone (moved into place); keep TempPath from deleting anything.
                    let _ = temp.keep();
                    return Ok(Written { dest: candidate, hash, notes, fallback });
                }
                Ok(Placed::Exists) => continue,
                Err(e) => return Err(format!("cannot write {}: {e}", self.out.join(&candidate).display())),
            }
        }
        Err(format!("{} appeared while photoferry was running; not overwritten", self.out.join(dest).display()))
    }
}

fn join(folder: &str, name: &str) -> String {
    if folder.is_empty() {
        name.to_string()
    } else {
        format!("{folder}/{name}")
    }
}

/// What the manifest learns from this run: every media source (so a re-run reads nothing),
/// every asset and file placed or adopted, and what was skipped.
fn run_record(
    sources: &[Source],
    media: &[Option<Media>],
    assets: &[Asset],
    plan: &[PlanEntry],
    written: &HashSet<&str>,
    skipped: Vec<(String, String, String)>,
    moved: &HashMap<String, (String, Option<ContentHash>)>,
) -> RunRecord {
    let mut rec = RunRecord { skipped, ..RunRecord::default() };
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
                duration_secs: m.probe.duration_secs,
                problem: m.problem.clone(),
            },
        ));
    }
    let mut asset_done = HashSet::new();
    for p in plan.iter().filter(|p| written.contains(p.dest.as_str())) {
        let a = &assets[p.asset];
        if asset_done.insert(p.asset) {
            rec.assets.push(AssetRow {
                hash: a.hash,
                size: a.size,
                kind: a.kind,
                capture: a.capture,
                date_source: a.capture.map(|c| c.source),
                favorite: a.favorite,
                hidden: a.hidden,
                albums: a.albums.iter().cloned().collect(),
                memories: a.memories.iter().cloned().collect(),
            });
        }
        if p.action != Action::Present {
            let output_hash = moved.values().find(|(d, _)| *d == p.dest).and_then(|(_, h)| *h);
            let mut why = p.why.clone();
            why.extend(p.notes.iter().cloned());
            rec.files.push(PlacedRow {
                file: FileRow {
                    path: p.dest.clone(),
                    hash: a.hash,
                    companion_of: a.parent.map(|(q, _)| assets[q].hash),
                    converted: p.convert,
                    original_bytes: output_hash.is_none(),
                },
                adopted: p.action == Action::Adopt,
                album: p.album.clone(),
                role: p.role,
                why: why.join("\n"),
                output_hash,
            });
        }
    }
    rec
}
