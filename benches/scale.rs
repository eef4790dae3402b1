//! `cargo bench --bench scale`: how photoferry grows with the library, and BLAKE3 against b3sum.
//!
//! - organize (`--no-sync`) of 1,000 and of 10,000 small unique photos, from a folder and from a
//!   stored zip, against `cp -r` and `unzip` of the same files: wall time per 1,000 files and peak
//!   RSS at both sizes (memory must stay flat);
//! - organize of one 2 GiB file (copy + hash throughput, MB/s);
//! - `photoferry hash` against `b3sum` on that 2 GiB file;
//! - the extrapolation to a 100,000-file, 500 GB library, with the bottleneck named.
//!
//! Appends the results to BENCHMARKS.md. Needs GNU time for RSS and b3sum for its row
//! (../shared/scripts/install-anchor-tools.sh installs both; the rows are skipped without them).

#[path = "../fixtures/gen.rs"]
mod gen;
mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{machine, q, timed, which};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let work = std::env::var_os("PHOTOFERRY_BENCH_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target/bench-scale"));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let anchor = root.join("../shared/scripts/install-anchor-tools.sh");
    if anchor.is_file() && (which("b3sum").is_none() || !Path::new("/usr/bin/time").exists()) {
        let _ = Command::new("bash").arg(&anchor).status();
    }
    let status = Command::new("cargo").args(["build", "--release", "--quiet", "--bin", "photoferry"]).current_dir(root).status().expect("cargo build");
    assert!(status.success());
    let pf = root.join("target/release/photoferry");

    let mut rows: Vec<(String, f64, Option<u64>)> = Vec::new();
    let mut per_1k = Vec::new();
    for n in [1000u32, 10_000] {
        let lib = work.join(format!("lib-{n}"));
        let mut entries = Vec::new();
        for i in 0..n {
            let b = gen::jpeg(i + 1, Some(&format!("{}:06:07 08:09:10", 2010 + i % 12)), Some("+01:00"));
            let rel = format!("part-{:02}/IMG_{i:05}.JPG", i % 20);
            let p = lib.join(&rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, &b).unwrap();
            entries.push((rel, b));
        }
        let zip_path = work.join(format!("lib-{n}.zip"));
        let refs: Vec<(&str, Vec<u8>, gen::Store)> = entries.iter().map(|(a, b)| (a.as_str(), b.clone(), gen::Store::Stored)).collect();
        std::fs::write(&zip_path, gen::zip(&refs, false, n > 65_000)).unwrap();
        drop(entries);
        sh(&format!("cat {}/*/* {} > /dev/null", q(&lib), q(&zip_path)));
        let out = work.join(format!("out-{n}"));
        let cp = timed(&format!("cp -r, {n} files"), &format!("cp -r {} {}", q(&lib), q(&work.join(format!("cp-{n}")))));
        let pfo = timed(&format!("photoferry organize, {n} files (folder)"), &format!("{} organize --no-sync {} --out {} > /dev/null 2>&1", q(&pf), q(&lib), q(&out)));
        let unz = timed(&format!("unzip, {n} files"), &format!("unzip -q {} -d {}", q(&zip_path), q(&work.join(format!("unzip-{n}")))));
        let pfz = timed(
            &format!("photoferry organize, {n} files (zip)"),
            &format!("{} organize --no-sync {} --out {} > /dev/null 2>&1", q(&pf), q(&zip_path), q(&work.join(format!("outz-{n}")))),
        );
        let rerun = timed(&format!("photoferry re-run, {n} files"), &format!("{} organize --no-sync {} --out {} > /dev/null 2>&1", q(&pf), q(&lib), q(&out)));
        per_1k.push((n, pfo.1 / f64::from(n) * 1000.0, pfo.2));
        rows.extend([cp, pfo, unz, pfz, rerun]);
    }

    // Throughput on one large file, and BLAKE3 against b3sum.
    let big_dir = work.join("big");
    std::fs::create_dir_all(&big_dir).unwrap();
    let big = big_dir.join("VIDEO_0001.JPG");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
        f.write_all(&gen::jpeg(424242, Some("2020:01:01 00:00:00"), None)).unwrap();
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut block = vec![0u8; 1 << 20];
        for _ in 0..2048 {
            for c in block.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                c.copy_from_slice(&x.to_le_bytes());
            }
            f.write_all(&block).unwrap();
        }
    }
    let big_bytes = std::fs::metadata(&big).unwrap().len();
    sh(&format!("cat {} > /dev/null", q(&big)));
    let big_org = timed("photoferry organize, one 2 GiB file", &format!("{} organize --no-sync {} --out {} > /dev/null 2>&1", q(&pf), q(&big_dir), q(&work.join("out-big"))));
    let mut hash_rows = Vec::new();
    for _ in 0..3 {
        hash_rows.push(timed("photoferry hash, 2 GiB", &format!("{} hash {} > /dev/null", q(&pf), q(&big))));
        if which("b3sum").is_some() {
            hash_rows.push(timed("b3sum, 2 GiB", &format!("b3sum {} > /dev/null", q(&big))));
        }
    }
    let median = |label: &str| {
        let mut v: Vec<f64> = hash_rows.iter().filter(|r| r.0 == label).map(|r| r.1).collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    };
    let (pf_hash, b3) = (median("photoferry hash, 2 GiB"), median("b3sum, 2 GiB"));

    let now = Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]).output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default();
    let mut md = format!("\n## scale, {now} — {}\n\nCommand: `cargo bench --bench scale`. Generated libraries of small unique JPEGs (about 4 KB each) in 20 folders and as a stored zip; page cache warm; one run each.\n\n| contender | wall s | peak RSS MB |\n|---|---:|---:|\n", machine());
    for (label, secs, rss) in rows.iter().chain(std::iter::once(&big_org)) {
        md += &format!("| {label} | {secs:.2} | {} |\n", rss.map(|k| format!("{:.0}", k as f64 / 1024.0)).unwrap_or("?".into()));
    }
    md += "\n";
    let t = |l: &str| rows.iter().find(|r| r.0 == l).map(|r| r.1);
    for n in [1000, 10_000] {
        if let (Some(a), Some(b)) = (t(&format!("photoferry organize, {n} files (folder)")), t(&format!("cp -r, {n} files"))) {
            md += &format!("- {n} files: photoferry / `cp -r` **{:.2}×**", a / b);
        }
        if let (Some(a), Some(b)) = (t(&format!("photoferry organize, {n} files (zip)")), t(&format!("unzip, {n} files"))) {
            md += &format!("; from the zip, photoferry / `unzip` **{:.2}×**\n", a / b);
        }
    }
    if let [(_, t1, r1), (_, t10, r10)] = per_1k[..] {
        md += &format!(
            "- per 1,000 files: {t1:.2} s at 1,000, {t10:.2} s at 10,000; peak RSS {} MB at 1,000 and {} MB at 10,000\n",
            r1.map(|k| (k / 1024).to_string()).unwrap_or("?".into()),
            r10.map(|k| (k / 1024).to_string()).unwrap_or("?".into())
        );
        let mbps = big_bytes as f64 / 1e6 / big_org.1;
        let est = 100.0 * t10 + 500e3 / mbps;
        md += &format!(
            "- one 2 GiB file: {mbps:.0} MB/s copied and hashed. **Extrapolated to 100,000 files / 500 GB: {:.0} s of per-file work + {:.0} s of bytes ≈ {:.1} h**; the bytes dominate, so the bottleneck is the disk (read + write), not photoferry's per-file work\n",
            100.0 * t10,
            500e3 / mbps,
            est / 3600.0
        );
    }
    if let (Some(p), Some(b)) = (pf_hash, b3) {
        md += &format!("- BLAKE3 of 2 GiB: photoferry {p:.2} s, b3sum {b:.2} s: photoferry at **{:.2}×** b3sum's speed (target ≥ 0.9×; median of 3)\n", b / p);
    }
    print!("{md}");
    let mut f = std::fs::OpenOptions::new().append(true).open(root.join("BENCHMARKS.md")).unwrap();
    f.write_all(md.as_bytes()).unwrap();
    println!("\nappended to BENCHMARKS.md");
}


fn sh(cmd: &str) {
    let _ = Command::new("sh").arg("-c").arg(cmd).status();
}



