//! `cargo bench --bench report`: `photoferry report` on an organized library built from
//! ../shared/media (every file copied PHOTOFERRY_BENCH_COPIES times with unique bytes, default 14:
//! about 1,000 files), first build (every thumbnail made) and re-run (all cached), with wall time,
//! files per second, peak RSS and the extrapolation to a 10,000-photo library. Appends to
//! BENCHMARKS.md.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

mod common;
use common::{build_library, machine};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let media = std::env::var_os("PHOTOFERRY_SHARED_MEDIA").map(PathBuf::from).unwrap_or_else(|| root.join("../shared/media"));
    if !media.join("INDEX.tsv").is_file() {
        eprintln!("bench: {} not found; set PHOTOFERRY_SHARED_MEDIA", media.display());
        std::process::exit(2);
    }
    let copies: usize = std::env::var("PHOTOFERRY_BENCH_COPIES").ok().and_then(|v| v.parse().ok()).unwrap_or(14);
    let work = std::env::var_os("PHOTOFERRY_BENCH_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target/bench-report"));
    let _ = std::fs::remove_dir_all(&work);
    let (lib, out) = (work.join("library"), work.join("organized"));
    let (files, bytes) = build_library(&media, &lib, copies);
    let status = Command::new("cargo").args(["build", "--release", "--quiet", "--bin", "photoferry"]).current_dir(root).status().expect("cargo build");
    assert!(status.success());
    let pf = root.join("target/release/photoferry");
    let s = Command::new(&pf).arg("organize").arg(&lib).arg("--out").arg(&out).arg("--no-sync").output().unwrap();
    assert!(s.status.code().is_some_and(|c| c <= 1), "organize failed: {}", String::from_utf8_lossy(&s.stderr));
    let run = |label: &str| -> (f64, Option<u64>, serde_json::Value) {
        let rss = work.join("rss");
        let mut c = if Path::new("/usr/bin/time").exists() {
            let mut c = Command::new("/usr/bin/time");
            c.arg("-f").arg("%M").arg("-o").arg(&rss).arg(&pf);
            c
        } else {
            Command::new(&pf)
        };
        c.arg("report").arg(&out).arg("--json");
        let t = Instant::now();
        let o = c.output().unwrap();
        let secs = t.elapsed().as_secs_f64();
        assert!(o.status.success(), "report failed: {}", String::from_utf8_lossy(&o.stderr));
        let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let kib = std::fs::read_to_string(&rss).ok().and_then(|s| s.lines().last()?.trim().parse().ok());
        println!("{label}: {secs:.2} s, {} thumbnails made, {} cached", j["thumbnails_made"], j["thumbnails_cached"]);
        (secs, kib, j)
    };
    let (first, rss1, j1) = run("first build");
    let (again, rss2, _) = run("re-run");
    let n = j1["files"].as_u64().unwrap_or(0);
    let thumbs = j1["thumbnails_made"].as_u64().unwrap_or(0);
    let per_1k = first / thumbs.max(1) as f64 * 1000.0;
    let now = Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]).output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default();
    let mb = |k: Option<u64>| k.map(|k| format!("{:.0}", k as f64 / 1024.0)).unwrap_or("?".into());
    let md = format!(
        "\n## report, {now} — {}\n\nCommand: `cargo bench --bench report` (PHOTOFERRY_BENCH_COPIES={copies}). Library: {files} input files ({:.2} GB) built from ../shared/media with unique bytes, organized into {n} files, {thumbs} of them pictures needing a thumbnail.\n\n| run | wall s | thumbnails made | peak RSS MB |\n|---|---:|---:|---:|\n| first build | {first:.2} | {thumbs} | {} |\n| re-run (cached) | {again:.2} | 0 | {} |\n\n- {:.1} s per 1,000 thumbnails on this mix → **{:.0} s for a 10,000-photo library** of the same mix (first build; a re-run only renders the page)\n",
        machine(),
        bytes as f64 / 1e9,
        mb(rss1),
        mb(rss2),
        per_1k,
        per_1k * 10.0
    );
    print!("{md}");
    let mut f = std::fs::OpenOptions::new().append(true).open(root.join("BENCHMARKS.md")).unwrap();
    f.write_all(md.as_bytes()).unwrap();
    println!("\nappended to BENCHMARKS.md");
}
