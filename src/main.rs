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
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(n) = cli.threads {
        let _ = rayon::ThreadPoolBuilder::new().num_threads(n.max(1)).build_global();
    }
    match cli.command {
        Command::Organize { inputs, out, layout, dry_run, json, verbose, no_sync } => {
            let layout = match Layout::parse(&layout) {
                Ok(l) => l,
                Err(e) => return fatal(&e.to_string()),
            };
            let opts = OrganizeOptions { inputs, out, layout, dry_run, sync: !no_sync };
            let progress = Bar::new(!json && std::io::stderr().is_terminal(), !json);
            let report = match photoferry::organize(&opts, &progress) {
                Ok(r) => r,
                Err(e) => return fatal(&e.to_string()),
            };
            progress.clear();
            if json {
                let mut stdout = std::io::stdout().lock();
                let _ = serde_json::to_writer_pretty(&mut stdout, &report);
                let _ = writeln!(stdout);
            } else {
                print_human(&report, verbose);
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

fn print_human(r: &Report, verbose: bool) {
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
        }
        let _ = writeln!(o);
    }
    if verbose {
        for s in &r.skipped {
            let _ = writeln!(o, "skipped: {}: {}", s.location, s.reason);
        }
    }
    let _ = writeln!(o, "{:<8} {:>7} {:>8} {:>8} {:>11} {:>8} {:>7}", "year", "found", if r.dry_run { "to write" } else { "written" }, "present", "duplicates", "skipped", "errors");
    for (year, c) in r.years.iter().chain(std::iter::once((&"total".to_string(), &r.totals))) {
        let _ = writeln!(
            o,
            "{:<8} {:>7} {:>8} {:>8} {:>11} {:>8} {:>7}",
            year, c.found, c.written, c.present, c.duplicates, c.skipped, c.errors
        );
    }
    let t = &r.totals;
    if !r.dry_run {
        if t.written == 0 && t.found > 0 {
            let _ = writeln!(o, "Nothing new: all {} files are already in {}.", t.present, r.out.display());
        } else {
            let _ = writeln!(o, "Wrote {} new files to {}.", t.written, r.out.display());
        }
    }
    if t.skipped > 0 && !verbose {
        let _ = writeln!(o, "{} non-media files skipped (CSV, JSON, system files…); --verbose lists them.", t.skipped);
    }
    drop(o);
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
        Bar { bar, log: log && !enabled, started: std::sync::Mutex::new(None) }
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
        if let Some(b) = &self.bar {
            b.set_message(stage.label());
            b.set_length(items);
            b.set_position(0);
        }
    }
    fn advance(&self, items: u64, _bytes: u64) {
        if let Some(b) = &self.bar {
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
