//! The `photoferry` command line: parse once into the library's options, run, and turn the
//! report into messages and an exit code (0 = all good, 1 = some files had problems,
//! 2 = the run could not happen).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use photoferry::layout::{Layout, DEFAULT_LAYOUT};
use photoferry::organize::{Action, Report};
use photoferry::progress::{Progress, Stage};
use photoferry::OrganizeOptions;

mod cloud;

#[derive(Parser)]
#[command(name = "photoferry", version, about = "Turn iCloud Photos exports into a clean, deduplicated folder tree")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Worker threads (default: one per CPU core).
    #[arg(long, global = true)]
    threads: Option<usize>,
}

#[derive(Subcommand)]
enum Command {
    /// Organize iCloud downloads and privacy exports (zips, folders, files) into OUT/<year>/<name>.
    ///
    /// Inputs are only read. Each distinct file (by BLAKE3 of its bytes) is written once per
    /// destination folder; a different file with a taken name gets a " (2)" suffix. Re-running
    /// writes only what is new. State lives in OUT/.photoferry/ (manifest.sqlite).
    Organize {
        /// Zip files, folders and single files, in any mix. Zips are read in place.
        #[arg(required = true, value_name = "INPUT")]
        inputs: Vec<PathBuf>,
        /// The output folder (created if missing).
        #[arg(long, short, value_name = "DIR")]
        out: PathBuf,
        /// Destination template. Tokens: {year} {month} {day} {album} {name} {stem} {ext} {kind}.
        #[arg(long, default_value = DEFAULT_LAYOUT)]
        layout: String,
        /// Print the plan (source → destination, date source) and write nothing.
        #[arg(long, short = 'n')]
        dry_run: bool,
        /// Print a machine-readable JSON report on stdout instead of the human summary.
        #[arg(long)]
        json: bool,
        /// Also list every skipped file with its reason.
        #[arg(long, short)]
        verbose: bool,
        /// Don't wait for the disk before reporting success (faster on slow disks; a power cut
        /// right after the run can then lose files reported as written).
        #[arg(long)]
        no_sync: bool,
        /// Name the album of an input that carries none (a browser zip, a plain folder):
        /// --album "Trip 2023=~/Downloads/iCloud Photos.zip". Repeatable. The name is what comes
        /// before the first '='.
        #[arg(long, value_name = "NAME=INPUT")]
        album: Vec<String>,
        /// Place each photo once, in its first album (alphabetically), instead of once per album.
        #[arg(long)]
        once: bool,
        /// Drop edited renders (IMG_E1234.*) and .AAE sidecars instead of keeping them beside
        /// their photo.
        #[arg(long)]
        no_edits: bool,
        /// Keep items from an export's "Recently Deleted" folder.
        #[arg(long)]
        include_deleted: bool,
        /// With --dry-run: also print, for every file, how its date, pair, album and name were
        /// decided.
        #[arg(long)]
        explain: bool,
        /// Convert HEIC/HEIF stills to JPEG (keeping date, GPS, camera, colour profile, the Live
        /// Photo link; orientation applied once). The JPEG replaces the HEIC in the tree.
        #[arg(long, value_name = "FORMAT", value_parser = ["jpeg"])]
        convert: Option<String>,
        /// JPEG quality for --convert, 1-100.
        #[arg(long, default_value_t = photoferry::convert::DEFAULT_QUALITY, value_parser = clap::value_parser!(u8).range(1..=100))]
        quality: u8,
        /// With --convert: keep the HEIC beside its JPEG.
        #[arg(long)]
        keep_original: bool,
    },
    /// Convert loose HEIC/HEIF files (or folders, or zips of them) to JPEG in OUT, keeping their
    /// metadata. Names: OUT/<stem>.jpg; a taken name gets " (2)"; nothing is overwritten.
    Convert {
        #[arg(required = true, value_name = "INPUT")]
        inputs: Vec<PathBuf>,
        /// The output folder (created if missing).
        #[arg(long, short, value_name = "DIR")]
        out: PathBuf,
        /// JPEG quality, 1-100.
        #[arg(long, default_value_t = photoferry::convert::DEFAULT_QUALITY, value_parser = clap::value_parser!(u8).range(1..=100))]
        quality: u8,
        /// Print a machine-readable JSON report on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Connect photoferry to your Dropbox: prints a link to open; paste the code Dropbox shows.
    ///
    /// The refresh token is stored in your config folder (~/.config/photoferry/dropbox-token.json,
    /// mode 600) and never printed. See the README for creating the app whose key you pass.
    Login {
        /// Your Dropbox app's key (default: $PHOTOFERRY_DROPBOX_APP_KEY, then the saved login's).
        #[arg(long)]
        app_key: Option<String>,
    },
    /// Revoke photoferry's Dropbox access and delete the stored token.
    Logout,
    /// Mirror an organized folder into Dropbox: only what is missing is sent, every file is
    /// verified by Dropbox's content hash, and an interrupted run resumes.
    ///
    /// Log in once with `photoferry login` (see the README: "Connect photoferry to Dropbox"), or
    /// set PHOTOFERRY_DROPBOX_TOKEN (an access token) or PHOTOFERRY_DROPBOX_REFRESH_TOKEN with
    /// PHOTOFERRY_DROPBOX_APP_KEY. PHOTOFERRY_DROPBOX_URL sends every call to another server
    /// (the test emulator).
    Upload {
        /// The folder to upload (usually photoferry organize's --out).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// The Dropbox folder to mirror into (inside the app folder for app-folder apps).
        #[arg(long, value_name = "DROPBOX-PATH", default_value = "/Photos")]
        to: String,
        /// Show what would be sent, send nothing.
        #[arg(long, short = 'n')]
        dry_run: bool,
        /// When Dropbox already holds a different file at a path: upload ours as "name (2).ext"
        /// (rename), or leave it and report an error (refuse).
        #[arg(long, value_name = "WHAT", default_value = "rename", value_parser = ["rename", "refuse"])]
        on_conflict: String,
        /// Files in flight at once.
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=32))]
        transfers: u16,
        /// Chunk size for large files, in MiB (a multiple of 4, at most 148). Smaller files go in
        /// one request.
        #[arg(long, value_name = "MIB", default_value_t = 48, value_parser = clap::value_parser!(u16).range(4..=148))]
        chunk_mib: u16,
        /// Files per batch commit (1-1000).
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u16).range(1..=1000))]
        batch: u16,
        /// Print a machine-readable JSON report on stdout.
        #[arg(long)]
        json: bool,
        /// List every file's decision, not just the summary.
        #[arg(long, short)]
        verbose: bool,
    },
    /// Check an organized folder: the manifest versus the files on disk (re-hashed) and, with
    /// --dropbox, versus Dropbox's listing. Counts and hashes per year and album; every missing or
    /// different file is listed; exit code 1 on any difference.
    Verify {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Also compare with this Dropbox folder (the upload's --to).
        #[arg(long, value_name = "DROPBOX-PATH")]
        dropbox: Option<String>,
        /// Print a machine-readable JSON report on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Write an HTML contact sheet of an organized folder to DIR/report/index.html: years,
    /// albums and thumbnails, Live Photos, duplicates, skipped and failed files. Opens from the
    /// file system; no server, no external assets.
    Report {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Print a machine-readable JSON summary on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Print the BLAKE3 of files, as `b3sum` does: the identity photoferry gives every photo (the
    /// manifest's blake3 columns), to check a file against the manifest.
    Hash {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Explain one file of an organized folder: where it came from, which date was chosen and
    /// why, its Live Photo pair, its albums, where it went — or why it was skipped.
    Explain {
        /// The organized folder (its .photoferry/manifest.sqlite is read).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// A file name (IMG_0001.HEIC), a path inside DIR (2021/IMG_0001.HEIC) or an input path.
        #[arg(value_name = "NAME-or-PATH")]
        what: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(n) = cli.threads {
        let _ = rayon::ThreadPoolBuilder::new().num_threads(n.max(1)).build_global();
    }
    match cli.command {
        Command::Explain { dir, what } => explain(&dir, &what),
        Command::Login { app_key } => cloud::login(app_key),
        Command::Logout => cloud::logout(),
        Command::Upload { dir, to, dry_run, on_conflict, transfers, chunk_mib, batch, json, verbose } => {
            let mut opts = photoferry::dropbox::upload::UploadOptions::new(dir, &to);
            opts.dry_run = dry_run;
            opts.on_conflict = if on_conflict == "refuse" {
                photoferry::dropbox::upload::OnConflict::Refuse
            } else {
                photoferry::dropbox::upload::OnConflict::Rename
            };
            opts.transfers = transfers as usize;
            if chunk_mib % 4 != 0 {
                return fatal("--chunk-mib must be a multiple of 4 (Dropbox hashes in 4 MiB blocks)");
            }
            opts.chunk_size = chunk_mib as usize * 1024 * 1024;
            opts.batch_size = batch as usize;
            let progress = Bar::new(!json && std::io::stderr().is_terminal(), !json);
            cloud::upload(&opts, json, verbose, &progress)
        }
        Command::Verify { dir, dropbox, json } => {
            let progress = Bar::new(!json && std::io::stderr().is_terminal(), !json);
            cloud::verify(&dir, dropbox.as_deref(), json, &progress)
        }
        Command::Hash { files } => {
            let mut failed = false;
            for f in &files {
                let size = std::fs::metadata(f).map(|m| m.len());
                match size.and_then(|size| photoferry::read::hash_file(f, size)) {
                    Ok(h) => println!("{}  {}", h.to_hex(), f.display()),
                    Err(e) => {
                        eprintln!("error: {}: {e}", f.display());
                        failed = true;
                    }
                }
            }
            if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Command::Report { dir, json } => {
            let progress = Bar::new(!json && std::io::stderr().is_terminal(), !json);
            let t = std::time::Instant::now();
            let r = match photoferry::report::build(&dir, &progress) {
                Ok(r) => r,
                Err(e) => return fatal(&e.to_string()),
            };
            progress.clear();
            if json {
                let _ = serde_json::to_writer_pretty(std::io::stdout().lock(), &r);
                println!();
            } else {
                for (path, why) in &r.thumbnail_errors {
                    eprintln!("warning: {path}: no thumbnail ({why}); the page shows its name instead");
                }
                println!(
                    "Wrote {} in {:.1} s: {} files ({} photos, {} videos, {} Live Photos); {} thumbnails made, {} reused.",
                    r.index.display(),
                    t.elapsed().as_secs_f64(),
                    r.files,
                    r.photos,
                    r.videos,
                    r.live_photos,
                    r.thumbnails_made,
                    r.thumbnails_cached
                );
                println!("Open it in a browser: file://{}", r.index.display());
            }
            ExitCode::SUCCESS
        }
        Command::Convert { inputs, out, quality, json } => {
            let progress = Bar::new(!json && std::io::stderr().is_terminal(), !json);
            let report = match photoferry::convert::files::convert_files(&inputs, &out, quality, &progress) {
                Ok(r) => r,
                Err(e) => return fatal(&e.to_string()),
            };
            progress.clear();
            if json {
                let _ = serde_json::to_writer_pretty(std::io::stdout().lock(), &report);
                println!();
            } else {
                for d in &report.converted {
                    println!("{} -> {}{}", d.source, d.dest, if d.already { " (already there)" } else { "" });
                    for n in &d.notes {
                        println!("    note: {n}");
                    }
                }
                let already = report.converted.iter().filter(|d| d.already).count();
                println!(
                    "Converted {} file(s) into {}; {already} already there; {} skipped.",
                    report.converted.len() - already,
                    out.display(),
                    report.skipped.len()
                );
            }
            for e in &report.errors {
                eprintln!("error: {e}");
            }
            if report.errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Command::Organize {
            inputs,
            out,
            layout,
            dry_run,
            json,
            verbose,
            no_sync,
            album,
            once,
            no_edits,
            include_deleted,
            explain,
            convert,
            quality,
            keep_original,
        } => {
            let layout = match Layout::parse(&layout) {
                Ok(l) => l,
                Err(e) => return fatal(&e.to_string()),
            };
            let mut albums = Vec::new();
            for a in album {
                match a.split_once('=') {
                    Some((name, input)) if !name.trim().is_empty() && !input.is_empty() => {
                        albums.push((PathBuf::from(input), name.trim().to_string()))
                    }
                    _ => return fatal(&format!("--album '{a}': expected NAME=INPUT")),
                }
            }
            let opts = OrganizeOptions {
                inputs,
                out,
                layout,
                dry_run,
                sync: !no_sync,
                include_deleted,
                once,
                keep_edits: !no_edits,
                albums,
                convert: convert.is_some(),
                quality,
                keep_original,
            };
            let progress = Bar::new(!json && std::io::stderr().is_terminal(), !json);
            let report = match photoferry::organize(&opts, &progress) {
                Ok(r) => r,
                Err(e) if e.is_disk_full() => return fatal(&format!("{e}; {}", photoferry::error::DISK_FULL_HINT)),
                Err(e) => return fatal(&e.to_string()),
            };
            progress.clear();
            if json {
                let mut stdout = std::io::stdout().lock();
                let _ = serde_json::to_writer_pretty(&mut stdout, &report);
                let _ = writeln!(stdout);
            } else {
                print_human(&report, verbose, explain);
            }
            if let Some(f) = &report.fatal {
                return fatal(f);
            }
            if report.has_errors() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
    }
}

fn fatal(msg: &str) -> ExitCode {
    eprintln!("photoferry: error: {msg}");
    ExitCode::from(2)
}

fn explain(dir: &std::path::Path, what: &str) -> ExitCode {
    let state = photoferry::fsutil::state_dir(dir);
    let m = match photoferry::manifest::Manifest::open_read_only(&state) {
        Ok(Some(m)) => m,
        Ok(None) => return fatal(&format!("{} has no manifest: run photoferry organize ... --out {} first", dir.display(), dir.display())),
        Err(e) => return fatal(&e.to_string()),
    };
    let (found, skipped) = match m.explain(what) {
        Ok(v) => v,
        Err(e) => return fatal(&e.to_string()),
    };
    let mut o = std::io::stdout().lock();
    for f in &found {
        let _ = writeln!(o, "{}", f.path);
        let _ = writeln!(o, "  content  {} {} (BLAKE3 {})", f.kind, f.role.as_deref().unwrap_or(""), &f.blake3[..16]);
        let _ = writeln!(o, "  taken    {} ({})", f.capture_time.as_deref().unwrap_or("unknown"), f.date_source);
        if let Some(a) = &f.album {
            let _ = writeln!(o, "  album    {a}");
        }
        for s in &f.sources {
            let _ = writeln!(o, "  from     {s}");
        }
        for p in &f.pair {
            let _ = writeln!(o, "  with     {p}");
        }
        for w in f.why.lines() {
            let _ = writeln!(o, "  why      {w}");
        }
    }
    for (input, inner, reason) in &skipped {
        let _ = writeln!(o, "{input}: {inner}\n  skipped  {reason}");
    }
    if found.is_empty() && skipped.is_empty() {
        let _ = writeln!(o, "nothing in {} matches '{what}'", dir.display());
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

fn print_human(r: &Report, verbose: bool, explain: bool) {
    let mut o = std::io::stdout().lock();
    if r.dry_run {
        let _ = writeln!(o, "Plan for {} (dry run: nothing is written)", r.out.display());
        for p in &r.plan {
            let verb = match p.action {
                Action::Write => "write  ",
                Action::Present => "present",
                Action::Adopt => "adopt  ",
            };
            let date = match (&p.capture_time, p.date_source) {
                (Some(t), Some(s)) => format!("{t} from {}", s.as_str()),
                _ => "no date".into(),
            };
            let _ = writeln!(o, "{verb} {}  <- {}  [{date}]", p.dest, p.sources[0]);
            for dup in &p.sources[1..] {
                let _ = writeln!(o, "        (same bytes: {dup})");
            }
            if explain {
                for w in &p.why {
                    let _ = writeln!(o, "        why: {w}");
                }
            }
            for n in &p.notes {
                let _ = writeln!(o, "        note: {n}");
            }
        }
        let _ = writeln!(o);
    }
    if verbose {
        for s in &r.skipped {
            let _ = writeln!(o, "skipped: {}: {}", s.location, s.reason);
        }
    }
    let _ = writeln!(o, "{:<8} {:>7} {:>8} {:>8} {:>11} {:>8} {:>7}", "year", "found", if r.dry_run { "to-write" } else { "written" }, "present", "duplicates", "skipped", "errors");
    for (year, c) in r.years.iter().chain(std::iter::once((&"total".to_string(), &r.totals))) {
        let _ = writeln!(
            o,
            "{:<8} {:>7} {:>8} {:>8} {:>11} {:>8} {:>7}",
            year, c.found, c.written, c.present, c.duplicates, c.skipped, c.errors
        );
    }
    let t = &r.totals;
    if !r.dry_run {
        if t.written == 0 && t.found > 0 && t.errors == 0 {
            let _ = writeln!(o, "Nothing new: all {} files are already in {}.", t.present, r.out.display());
        } else {
            let _ = writeln!(o, "Wrote {} new file{} to {}.", t.written, if t.written == 1 { "" } else { "s" }, r.out.display());
        }
    }
    let lost: usize = r.plan.iter().filter(|p| p.notes.iter().any(|n| n.starts_with("HDR gain map"))).count();
    if lost > 0 && !r.dry_run {
        let _ = writeln!(o, "{lost} converted photo(s) had an HDR gain map; their JPEGs show the standard-range picture (HDR look not kept).");
    }
    if t.skipped > 0 && !verbose {
        let _ = writeln!(o, "{} files skipped (not media: CSV, JSON, system files; or Recently Deleted); --verbose lists them.", t.skipped);
    }
    drop(o);
    for w in &r.warnings {
        eprintln!("warning: {w}");
    }
    for e in &r.errors {
        eprintln!("error: {e}");
    }
    if !r.errors.is_empty() {
        eprintln!("{} problem(s); see the lines above. Exit code 1.", r.errors.len());
    }
}

/// A progress bar on a terminal; one plain line per stage otherwise (logs stay readable when
/// piped); nothing with `--json`.
struct Bar {
    bar: Option<ProgressBar>,
    log: bool,
    started: std::sync::Mutex<Option<(Stage, std::time::Instant)>>,
    /// Upload and hashing show bytes on the bar and files in the message.
    by_bytes: std::sync::atomic::AtomicBool,
    items: std::sync::atomic::AtomicU64,
    items_total: std::sync::atomic::AtomicU64,
}

impl Bar {
    fn new(enabled: bool, log: bool) -> Self {
        let bar = enabled.then(|| {
            let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(10));
            b.set_style(
                ProgressStyle::with_template("{msg:22} [{bar:30}] {pos}/{len} files {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            b
        });
        Bar {
            bar,
            log: log && !enabled,
            started: std::sync::Mutex::new(None),
            by_bytes: Default::default(),
            items: Default::default(),
            items_total: Default::default(),
        }
    }

    fn clear(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl Progress for Bar {
    fn start(&self, stage: Stage, items: u64, bytes: u64) {
        if let Ok(mut s) = self.started.lock() {
            *s = Some((stage, std::time::Instant::now()));
        }
        if self.log {
            match (items, bytes) {
                (0, _) => eprintln!("photoferry: {}", stage.label()),
                (n, b) => eprintln!("photoferry: {}: {n} files, {:.1} MB", stage.label(), b as f64 / 1e6),
            }
        }
        use std::sync::atomic::Ordering::Relaxed;
        let by_bytes = bytes > 0 && matches!(stage, Stage::Upload | Stage::Hash);
        self.by_bytes.store(by_bytes, Relaxed);
        self.items.store(0, Relaxed);
        self.items_total.store(items, Relaxed);
        if let Some(b) = &self.bar {
            let template = if by_bytes {
                "{msg:28} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} {eta}"
            } else {
                "{msg:22} [{bar:30}] {pos}/{len} files {eta}"
            };
            b.set_style(ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()).progress_chars("=> "));
            b.set_message(if by_bytes { format!("{} 0/{items} files", stage.label()) } else { stage.label().to_string() });
            b.set_length(if by_bytes { bytes } else { items });
            b.set_position(0);
        }
    }
    fn advance(&self, items: u64, bytes: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        let Some(b) = &self.bar else { return };
        if self.by_bytes.load(Relaxed) {
            b.inc(bytes);
            if items > 0 {
                let done = self.items.fetch_add(items, Relaxed) + items;
                let stage = self.started.lock().ok().and_then(|s| s.map(|(st, _)| st.label())).unwrap_or("");
                b.set_message(format!("{stage} {done}/{} files", self.items_total.load(Relaxed)));
            }
        } else {
            b.inc(items);
        }
    }
    fn finish(&self) {
        let started = self.started.lock().ok().and_then(|mut s| s.take());
        if let (true, Some((stage, t))) = (self.log, started) {
            eprintln!("photoferry: {} done in {:.2} s", stage.label(), t.elapsed().as_secs_f64());
        }
    }
}
