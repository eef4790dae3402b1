//! `cargo bench --bench organize`: organize a generated library of ≥ 2,000 files with unique
//! bytes (built from ../shared/media), side by side in one run with `cp -r` of the same files
//! (with and without a final `sync`, since photoferry syncs before it reports success) and with
//! an exiftool date sort. Prints wall time, files per second, ratios and peak RSS, and appends
//! the results to BENCHMARKS.md.
//!
//! Needs: ../shared/media (or PHOTOFERRY_SHARED_MEDIA), exiftool and GNU time
//! (../shared/scripts/install-anchor-tools.sh installs both). Knobs: PHOTOFERRY_BENCH_COPIES
//! (default 28 copies of each media file), PHOTOFERRY_BENCH_DIR (default target/bench-work).

mod common;
use common::{build_library, machine, q, timed, which};

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let media = std::env::var_os("PHOTOFERRY_SHARED_MEDIA")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/media"));
    if !media.join("INDEX.tsv").is_file() {
        eprintln!("bench: {} not found; set PHOTOFERRY_SHARED_MEDIA", media.display());
        std::process::exit(2);
    }
    let anchor = root.join("../shared/scripts/install-anchor-tools.sh");
    if anchor.is_file() && (which("exiftool").is_none() || !Path::new("/usr/bin/time").exists()) {
        eprintln!("bench: installing exiftool and GNU time with {}", anchor.display());
        let _ = Command::new("bash").arg(&anchor).status();
    }
    let copies: usize = std::env::var("PHOTOFERRY_BENCH_COPIES").ok().and_then(|v| v.parse().ok()).unwrap_or(28);
    let work = std::env::var_os("PHOTOFERRY_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/bench-work"));
    let _ = std::fs::remove_dir_all(&work);
    let lib = work.join("library");
    let (files, bytes) = build_library(&media, &lib, copies);
    println!("library: {files} files, {:.2} GB, in {}", bytes as f64 / 1e9, lib.display());

    let status = Command::new("cargo")
        .args(["build", "--release", "--quiet", "--bin", "photoferry"])
        .current_dir(root)
        .status()
        .expect("cargo build");
    assert!(status.success());
    let pf = root.join("target/release/photoferry");

    // Warm the page cache so every contender reads from memory alike.
    sh(&format!("find {} -type f -print0 | xargs -0 cat > /dev/null", q(&lib)));
    sh("sync");

    // Several rounds (default 5), alternating contenders, so a slow moment of the disk hits all of them;
    // each row reports the median round.
    let rounds: usize = std::env::var("PHOTOFERRY_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let mut samples: Vec<(String, Vec<(f64, Option<u64>)>)> = Vec::new();
    let mut record = |r: (String, f64, Option<u64>)| match samples.iter_mut().find(|s| s.0 == r.0) {
        Some(s) => s.1.push((r.1, r.2)),
        None => samples.push((r.0, vec![(r.1, r.2)])),
    };
    let (out_cp, out_pf) = (work.join("out-cp"), work.join("out-photoferry"));
    for _ in 0..rounds {
        for dir in [&out_cp, &out_pf] {
            let _ = std::fs::remove_dir_all(dir);
        }
        sh("sync");
        record(timed("cp -r", &format!("cp -r {} {}", q(&lib), q(&out_cp))));
        sh("sync");
        let _ = std::fs::remove_dir_all(&out_cp);
        sh("sync");
        record(timed("cp -r && sync", &format!("cp -r {} {} && sync", q(&lib), q(&out_cp))));
        record(timed(
            "photoferry organize",
            &format!("{} organize {} --out {} > {}", q(&pf), q(&lib), q(&out_pf), q(&work.join("organize.log"))),
        ));
        sh("sync");
        let _ = std::fs::remove_dir_all(&out_pf);
        sh("sync");
        record(timed(
            "photoferry organize --no-sync",
            &format!("{} organize --no-sync {} --out {} > /dev/null", q(&pf), q(&lib), q(&out_pf)),
        ));
        sh("sync");
        record(timed(
            "photoferry organize (re-run)",
            &format!("{} organize {} --out {} > /dev/null", q(&pf), q(&lib), q(&out_pf)),
        ));
    }
    if which("exiftool").is_some() {
        let out_et = work.join("out-exiftool");
        // exiftool's "copy into year folders by date" idiom. The last assignment that exists
        // wins (DateTimeOriginal, then CreateDate, then the file date); %-c numbers name
        // collisions instead of failing. One round: it is slow.
        let cmd = format!(
            "exiftool -q -q -r -o {o}/ -d {o}/%Y/%%f%%-c.%%e '-FileName<FileModifyDate' '-FileName<CreateDate' '-FileName<DateTimeOriginal' {l}",
            o = q(&out_et),
            l = q(&lib)
        );
        record(timed("exiftool date sort", &cmd));
        let written = walk_count(&out_et);
        println!("exiftool wrote {written} files");
    } else {
        eprintln!("bench: exiftool not found; skipping that comparison");
    }
    let rows: Vec<(String, f64, Option<u64>)> = samples
        .into_iter()
        .map(|(name, mut v)| {
            v.sort_by(|a, b| a.0.total_cmp(&b.0));
            let (secs, rss) = v[v.len() / 2];
            (name, secs, rss)
        })
        .collect();

    let t = |name: &str| rows.iter().find(|r| r.0 == name).map(|r| r.1);
    let (cp, cp_sync, pf_t, et) = (t("cp -r"), t("cp -r && sync"), t("photoferry organize"), t("exiftool date sort"));
    let pf_nosync = t("photoferry organize --no-sync");
    let machine = machine();
    let mut report = String::new();
    report += &format!(
        "\n## organize, {} — {}\n\nCommand: `{}cargo bench --bench organize` (PHOTOFERRY_BENCH_COPIES={copies}). \
         Library: {files} files with unique bytes, {:.2} GB, built from ../shared/media, in {} on a {} file system; page cache warm; \
         median of {rounds} rounds (exiftool: 1 round).\n\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        machine,
        std::env::var("PHOTOFERRY_BENCH_DIR").map(|d| format!("PHOTOFERRY_BENCH_DIR={d} ")).unwrap_or_default(),
        bytes as f64 / 1e9,
        work.display(),
        fs_type(&work),
    );
    report += "| contender | wall s | files/s | peak RSS MB |\n|---|---:|---:|---:|\n";
    for (name, secs, rss) in &rows {
        report += &format!(
            "| {name} | {secs:.2} | {:.0} | {} |\n",
            files as f64 / secs,
            rss.map(|k| format!("{:.0}", k as f64 / 1024.0)).unwrap_or_else(|| "?".into())
        );
    }
    report += "\n";
    if let (Some(pf_t), Some(cp)) = (pf_t, cp) {
        report += &format!("- photoferry / `cp -r`: **{:.2}×** wall time (target ≤ 1.3×)\n", pf_t / cp);
    }
    if let (Some(pfn), Some(cp)) = (pf_nosync, cp) {
        report += &format!("- photoferry --no-sync / `cp -r`: **{:.2}×** wall time (neither waits for the disk)\n", pfn / cp);
    }
    if let (Some(pf_t), Some(cps)) = (pf_t, cp_sync) {
        report += &format!("- photoferry / `cp -r && sync`: **{:.2}×** wall time (both durable on return)\n", pf_t / cps);
    }
    if let (Some(pf_t), Some(et)) = (pf_t, et) {
        report += &format!("- photoferry files/s ÷ exiftool files/s: **{:.1}×** (target ≥ 20×)\n", et / pf_t);
    }
    print!("{report}");
    let mut md = std::fs::OpenOptions::new().create(true).append(true).open(root.join("BENCHMARKS.md")).unwrap();
    md.write_all(report.as_bytes()).unwrap();
    println!("\nappended to BENCHMARKS.md");
}



fn walk_count(dir: &Path) -> usize {
    walkdir::WalkDir::new(dir).into_iter().filter_map(Result::ok).filter(|e| e.file_type().is_file()).count()
}

fn sh(cmd: &str) {
    let _ = Command::new("sh").arg("-c").arg(cmd).status();
    if cmd == "sync" {
        // Let the disk settle after a big flush or delete before the next contender starts.
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
}

/// The file system type holding `dir` (`df --output=fstype`), to say whether a run measured a
/// disk or memory (tmpfs).
fn fs_type(dir: &Path) -> String {
    Command::new("df")
        .args(["--output=fstype"])
        .arg(dir)
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).lines().nth(1).map(|l| l.trim().to_string()))
        .unwrap_or_else(|| "unknown".into())
}
