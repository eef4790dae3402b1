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
use common::{build_library, build_library_of, machine};

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
    let run = |label: &str, decoder: Option<&str>| -> (f64, Option<u64>, serde_json::Value) {
        let rss = work.join("rss");
        let mut c = if Path::new("/usr/bin/time").exists() {
            let mut c = Command::new("/usr/bin/time");
            c.arg("-f").arg("%M").arg("-o").arg(&rss).arg(&pf);
            c
        } else {
            Command::new(&pf)
        };
        c.arg("report").arg(&out).arg("--json");
        if let Some(d) = decoder {
            c.env("PHOTOFERRY_HEVC_DECODER", d);
        }
        let t = Instant::now();
        let o = c.output().unwrap();
        let secs = t.elapsed().as_secs_f64();
        assert!(o.status.success(), "report failed: {}", String::from_utf8_lossy(&o.stderr));
        let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let kib = std::fs::read_to_string(&rss).ok().and_then(|s| s.lines().last()?.trim().parse().ok());
        println!("{label}: {secs:.2} s, {} thumbnails made, {} cached", j["thumbnails_made"], j["thumbnails_cached"]);
        (secs, kib, j)
    };
    // The same first build with libheif's libde265 instead of FFmpeg's HEVC decoder, to show
    // what the decoder is worth; then the real first build and a cached re-run.
    let _ = std::fs::remove_dir_all(out.join("report"));
    let (de265, rss_de265, _) = run("first build, libde265", Some("libde265"));
    std::fs::remove_dir_all(out.join("report")).unwrap();
    let (first, rss1, j1) = run("first build", None);
    let (again, rss2, _) = run("re-run", None);
    let n = j1["files"].as_u64().unwrap_or(0);
    let thumbs = j1["thumbnails_made"].as_u64().unwrap_or(0);
    let per_1k = first / thumbs.max(1) as f64 * 1000.0;
    let now = Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]).output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default();
    let mb = |k: Option<u64>| k.map(|k| format!("{:.0}", k as f64 / 1024.0)).unwrap_or("?".into());
    let md = format!(
        "\n## report, {now} — {}\n\nCommand: `cargo bench --bench report` (PHOTOFERRY_BENCH_COPIES={copies}). Library: {files} input files ({:.2} GB) built from ../shared/media with unique bytes, organized into {n} files, {thumbs} of them pictures needing a thumbnail.\n\n| run | wall s | thumbnails made | peak RSS MB |\n|---|---:|---:|---:|\n| first build | {first:.2} | {thumbs} | {} |\n| first build, HEVC decoder libde265 | {de265:.2} | {thumbs} | {} |\n| re-run (cached) | {again:.2} | 0 | {} |\n\n- {:.1} s per 1,000 thumbnails on this mix → **{:.0} s for a 10,000-photo library** of the same mix (first build; a re-run only renders the page)\n",
        machine(),
        bytes as f64 / 1e9,
        mb(rss1),
        mb(rss_de265),
        mb(rss2),
        per_1k,
        per_1k * 10.0
    );
    let originals = camera_originals(&media, &pf, &work);
    let md = format!("{md}{originals}");
    print!("{md}");
    let mut f = std::fs::OpenOptions::new().append(true).open(root.join("BENCHMARKS.md")).unwrap();
    f.write_all(md.as_bytes()).unwrap();
    println!("\nappended to BENCHMARKS.md");
}

/// The library an iCloud export mostly is: camera originals, whose HEICs and JPEGs carry the
/// small preview the camera embedded (HEICs without a usable one — edits, converter output, a
/// Canon HIF whose previews are refused or letterboxed — are left out; the mixed library above
/// has them). Organized and reported once; a line for BENCHMARKS.md.
fn camera_originals(media: &Path, pf: &Path, work: &Path) -> String {
    let has_preview = |rel: &str| -> bool {
        let path = media.join(rel);
        let lower = rel.to_lowercase();
        if lower.ends_with(".heic") || lower.ends_with(".heif") || lower.ends_with(".hif") {
            let Some(p) = path.to_str() else { return false };
            // A preview of the picture's shape that decodes (libheif refuses two of a Canon HIF's
            // previews and the third is letterboxed, so photoferry decodes that picture in full).
            let lib = libheif_rs::LibHeif::new();
            let Some(primary) = libheif_rs::HeifContext::read_from_file(p).ok().and_then(|c| c.primary_image_handle().ok()) else {
                return false;
            };
            let mut ids = [0u32; 4];
            let n = primary.thumbnail_ids(&mut ids);
            let shape = |w: u32, h: u32| f64::from(w.max(1)) / f64::from(h.max(1));
            let want = shape(primary.width(), primary.height());
            ids[..n].iter().any(|id| {
                primary.thumbnail(*id).is_ok_and(|t| {
                    (shape(t.width(), t.height()) - want).abs() / want < 0.03
                        && lib.decode(&t, libheif_rs::ColorSpace::Rgb(libheif_rs::RgbChroma::Rgb), None).is_ok()
                })
            })
        } else if lower.ends_with(".jpg") || lower.ends_with(".jpeg") {
            let Ok(bytes) = std::fs::read(&path) else { return false };
            exif::Reader::new()
                .read_from_container(&mut std::io::Cursor::new(&bytes))
                .is_ok_and(|e| e.get_field(exif::Tag::JPEGInterchangeFormat, exif::In::THUMBNAIL).is_some())
        } else {
            lower.ends_with(".mov") || lower.ends_with(".aae")
        }
    };
    let copies: usize = std::env::var("PHOTOFERRY_BENCH_ORIGINALS_COPIES").ok().and_then(|v| v.parse().ok()).unwrap_or(24);
    let (lib, out) = (work.join("originals"), work.join("originals-organized"));
    let (files, _) = build_library_of(media, &lib, copies, has_preview);
    let s = Command::new(pf).arg("organize").arg(&lib).arg("--out").arg(&out).arg("--no-sync").output().unwrap();
    assert!(s.status.code().is_some_and(|c| c <= 1), "organize failed: {}", String::from_utf8_lossy(&s.stderr));
    let t = Instant::now();
    let o = Command::new(pf).arg("report").arg(&out).arg("--json").output().unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert!(o.status.success(), "report failed: {}", String::from_utf8_lossy(&o.stderr));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let thumbs = j["thumbnails_made"].as_u64().unwrap_or(0);
    let per_1k = secs / thumbs.max(1) as f64 * 1000.0;
    println!("camera originals: {secs:.2} s, {thumbs} thumbnails");
    format!(
        "- camera originals only ({files} input files, every picture with its embedded preview, {copies} copies; \
         PHOTOFERRY_BENCH_ORIGINALS_COPIES): first build {secs:.2} s for {thumbs} thumbnails = {per_1k:.1} s per 1,000 → \
         **{:.0} s for a 10,000-photo library** of camera originals\n",
        per_1k * 10.0
    )
}
