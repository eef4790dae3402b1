//! `cargo bench --bench upload`: `photoferry upload` against the loopback Dropbox emulator
//! (`emulator/`, in this process, on 127.0.0.1): API calls per file and throughput, on a first
//! run and on a re-run, for a tree of many small files and for a few large (chunked) files.
//! Prints the numbers and appends them to BENCHMARKS.md.
//!
//! Knobs: PHOTOFERRY_BENCH_SMALL (default 2000 files of 48 KiB), PHOTOFERRY_BENCH_LARGE (default
//! 6 files of 96 MiB), PHOTOFERRY_BENCH_DIR (default target/bench-upload).

mod common;
use common::machine;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use dropbox_emulator::{Config, Emulator, Stats};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let n_small: usize = env_or("PHOTOFERRY_BENCH_SMALL", 2000);
    let n_large: usize = env_or("PHOTOFERRY_BENCH_LARGE", 6);
    let work = std::env::var_os("PHOTOFERRY_BENCH_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target/bench-upload"));
    let _ = std::fs::remove_dir_all(&work);
    let (small, large) = (work.join("small"), work.join("large"));
    for i in 0..n_small {
        write_file(&small.join(format!("{}/IMG_{i:05}.JPG", 2000 + i % 20)), i as u64, 48 * 1024);
    }
    for i in 0..n_large {
        write_file(&large.join(format!("2024/VIDEO_{i:03}.MOV")), 1_000_000 + i as u64, 96 * 1024 * 1024);
    }
    let status = Command::new("cargo").args(["build", "--release", "--quiet", "--bin", "photoferry"]).current_dir(root).status().expect("cargo build");
    assert!(status.success());
    let pf = root.join("target/release/photoferry");

    let mut rows = Vec::new();
    for (label, dir, n, bytes) in [("small files", &small, n_small, n_small as u64 * 48 * 1024), ("large files", &large, n_large, n_large as u64 * 96 * 1024 * 1024)] {
        let emu = Emulator::start(Config::default()).expect("emulator");
        let first = run(&pf, &emu, dir);
        let after_first = emu.stats();
        let again = run(&pf, &emu, dir);
        let after_again = emu.stats();
        assert_eq!(emu.files().len(), n, "{label}: not every file arrived");
        rows.push(Row { label, files: n, bytes, first, again, s1: after_first.clone(), s2: delta(&after_first, &after_again) });
    }

    let mut md = String::new();
    let now = Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]).output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default();
    md.push_str(&format!("\n## upload, {now} — {}\n\n", machine()));
    md.push_str(&format!(
        "Command: `cargo bench --bench upload`. photoferry (release) uploading to the in-repo Dropbox emulator on loopback, `--transfers 4`, default 48 MiB chunks and 500-file batches; {n_small} files of 48 KiB, then {n_large} files of 96 MiB; each tree uploaded, then uploaded again.\n\n"
    ));
    md.push_str("| tree | run | wall s | MB/s | API calls | calls per file | bytes sent | peak RSS MB |\n|---|---|---:|---:|---:|---:|---:|---:|\n");
    for r in &rows {
        for (run, t, s) in [("first", &r.first, &r.s1), ("re-run", &r.again, &r.s2)] {
            let calls: u64 = s.calls.values().sum();
            let mbps = if run == "first" { format!("{:.0}", r.bytes as f64 / 1e6 / t.secs) } else { "-".into() };
            md.push_str(&format!(
                "| {} ({}) | {run} | {:.2} | {mbps} | {calls} | {:.3} | {} | {} |\n",
                r.label,
                r.files,
                t.secs,
                calls as f64 / r.files as f64,
                s.upload_bytes,
                t.rss_kib.map(|k| format!("{:.0}", k as f64 / 1024.0)).unwrap_or("?".into())
            ));
        }
    }
    md.push('\n');
    for r in &rows {
        let per_route: Vec<String> = r.s1.calls.iter().map(|(k, v)| format!("{} {v}", k.trim_start_matches("/2/files/"))).collect();
        md.push_str(&format!("- {} first run, calls by route: {}\n", r.label, per_route.join(", ")));
    }
    let small = &rows[0];
    let upload_calls = small.s1.calls.iter().filter(|(k, _)| k.contains("upload_session")).map(|(_, v)| v).sum::<u64>();
    md.push_str(&format!(
        "- small files: **{:.3} upload calls per file** (start carrying the bytes + a share of finish_batch_v2; target ≤ 1.1); re-runs sent **{} + {} bytes** (target 0)\n",
        upload_calls as f64 / small.files as f64,
        rows[0].s2.upload_bytes,
        rows[1].s2.upload_bytes
    ));
    print!("{md}");
    let mut f = std::fs::OpenOptions::new().append(true).open(root.join("BENCHMARKS.md")).unwrap();
    f.write_all(md.as_bytes()).unwrap();
    println!("\nappended to BENCHMARKS.md");
}

struct Timed {
    secs: f64,
    rss_kib: Option<u64>,
}

struct Row {
    label: &'static str,
    files: usize,
    bytes: u64,
    first: Timed,
    again: Timed,
    s1: Stats,
    s2: Stats,
}

/// What happened between two snapshots.
fn delta(a: &Stats, b: &Stats) -> Stats {
    let mut d = Stats { upload_bytes: b.upload_bytes - a.upload_bytes, ..Stats::default() };
    for (k, v) in &b.calls {
        let n = v - a.calls.get(k).copied().unwrap_or(0);
        if n > 0 {
            d.calls.insert(k.clone(), n);
        }
    }
    d
}

fn run(pf: &Path, emu: &Emulator, dir: &Path) -> Timed {
    let rss_file = std::env::temp_dir().join(format!("pf-bench-upload-rss-{}", std::process::id()));
    let mut c = if Path::new("/usr/bin/time").exists() {
        let mut c = Command::new("/usr/bin/time");
        c.arg("-f").arg("%M").arg("-o").arg(&rss_file).arg(pf);
        c
    } else {
        Command::new(pf)
    };
    c.arg("upload").arg(dir).args(["--to", "/Photos"]).env("PHOTOFERRY_DROPBOX_URL", emu.url()).env("PHOTOFERRY_DROPBOX_TOKEN", "emulator-token");
    let t = Instant::now();
    let out = c.output().expect("run photoferry");
    let secs = t.elapsed().as_secs_f64();
    assert!(out.status.success(), "upload failed: {}", String::from_utf8_lossy(&out.stderr));
    println!("{}", String::from_utf8_lossy(&out.stdout).trim());
    let rss_kib = std::fs::read_to_string(&rss_file).ok().and_then(|s| s.lines().last()?.trim().parse().ok());
    Timed { secs, rss_kib }
}

fn write_file(path: &Path, seed: u64, len: usize) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut buf = vec![0u8; len];
    for chunk in buf.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let b = x.to_le_bytes();
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
    std::fs::write(path, buf).unwrap();
}

fn env_or(k: &str, d: usize) -> usize {
    std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d)
}
