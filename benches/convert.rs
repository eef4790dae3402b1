//! `cargo bench --bench convert`: `photoferry convert` against `heif-convert -q 90` run two at a
//! time (`xargs -P2`), over every HEIC/HEIF in ../shared/media repeated to at least 100
//! conversions. Prints files per second, the ratio, peak RSS, and what metadata each kept;
//! appends the results to BENCHMARKS.md.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let media = std::env::var_os("PHOTOFERRY_SHARED_MEDIA").map(PathBuf::from).unwrap_or_else(|| root.join("../shared/media"));
    let index = std::fs::read_to_string(media.join("INDEX.tsv")).expect("../shared/media/INDEX.tsv");
    let anchor = root.join("../shared/scripts/install-anchor-tools.sh");
    if anchor.is_file() {
        let _ = Command::new("bash").arg(&anchor).status();
    }
    let heics: Vec<&str> = index
        .lines()
        .skip(1)
        .filter(|l| matches!(l.split('\t').nth(7), Some("HEIC") | Some("HEIF")))
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    let copies = 100usize.div_ceil(heics.len());
    let work = root.join("target/bench-convert");
    let _ = std::fs::remove_dir_all(&work);
    let input = work.join("heics");
    let mut files = 0;
    for k in 0..copies {
        for h in &heics {
            let dest = input.join(format!("copy-{k}")).join(h.replace('/', "_"));
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::copy(media.join(h), &dest).unwrap();
            files += 1;
        }
    }
    let breakdown = breakdown(&input.join("copy-0"));
    println!("{breakdown}");
    if std::env::var("PHOTOFERRY_BENCH_BREAKDOWN_ONLY").is_ok() {
        return;
    }
    assert!(Command::new("cargo").args(["build", "--release", "--quiet", "--bin", "photoferry"]).current_dir(root).status().unwrap().success());
    let pf = root.join("target/release/photoferry");
    let q = |p: &Path| format!("'{}'", p.to_string_lossy().replace('\'', "'\\''"));
    let sh = |c: &str| Command::new("sh").arg("-c").arg(c).status().unwrap();
    sh(&format!("find {} -type f -print0 | xargs -0 cat > /dev/null", q(&input)));
    let out_pf = work.join("out-photoferry");
    let out_hc = work.join("out-heif-convert");
    std::fs::create_dir_all(&out_hc).unwrap();
    let rss = work.join("rss");
    let timed = |label: &str, cmd: &str| {
        let t = Instant::now();
        let st = Command::new("/usr/bin/time").args(["-f", "%M", "-o"]).arg(&rss).args(["sh", "-c", cmd]).status().unwrap();
        let secs = t.elapsed().as_secs_f64();
        let kib: u64 = std::fs::read_to_string(&rss).ok().and_then(|s| s.lines().last()?.trim().parse().ok()).unwrap_or(0);
        println!("{label:28} {secs:7.2} s  {:.1} files/s  peak RSS {} MB  ({st})", files as f64 / secs, kib / 1024);
        (secs, kib / 1024)
    };
    let (t_pf, m_pf) = timed("photoferry convert", &format!("{} convert {} --out {} > /dev/null 2>&1", q(&pf), q(&input), q(&out_pf)));
    let hc = format!(
        "find {i} -type f -print0 | xargs -0 -P2 -I{{}} sh -c 'heif-convert -q 90 \"$1\" {o}/$(echo \"$1\" | tr / _).jpg > /dev/null 2>&1' _ {{}}",
        i = q(&input),
        o = q(&out_hc)
    );
    let (t_hc, m_hc) = timed("heif-convert -q 90 (xargs -P2)", &hc);
    let count = |d: &Path| std::fs::read_dir(d).map(|r| r.flatten().filter(|e| e.path().is_file()).count()).unwrap_or(0);
    let (n_pf, n_hc) = (count(&out_pf), count(&out_hc));
    // Metadata kept, per tool: how many outputs carry each tag (exiftool).
    let kept = |dir: &Path| -> String {
        let o = Command::new("exiftool")
            .args(["-q", "-q", "-T", "-DateTimeOriginal", "-GPSLatitude", "-ProfileDescription", "-Orientation#", "-Make"])
            .arg(dir)
            .output();
        let Ok(o) = o else { return "exiftool missing".into() };
        let text = String::from_utf8_lossy(&o.stdout);
        let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
        let has = |i: usize| rows.iter().filter(|r| r.get(i).is_some_and(|v| *v != "-")).count();
        let orient1 = rows.iter().filter(|r| r.get(3).is_some_and(|v| *v == "1" || *v == "-")).count();
        format!("DateTimeOriginal {}/{n}, GPS {}/{n}, ICC {}/{n}, Make {}/{n}, Orientation 1 or absent {}/{n}", has(0), has(1), has(2), has(4), orient1, n = rows.len())
    };
    let machine = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
        .unwrap_or_default();
    let report = format!(
        "\n## convert, {} — {} cores, {machine}\n\nCommand: `cargo bench --bench convert`. {files} HEIC/HEIF conversions ({} distinct files from \
         ../shared/media × {copies}); page cache warm; heif-convert {}.\n\n\
         | contender | wall s | files/s | peak RSS MB | outputs |\n|---|---:|---:|---:|---:|\n\
         | photoferry convert (q 90) | {t_pf:.2} | {:.2} | {m_pf} | {n_pf} |\n\
         | heif-convert -q 90, xargs -P2 | {t_hc:.2} | {:.2} | {m_hc} (one process) | {n_hc} |\n\n\
         - photoferry ÷ heif-convert files/s: **{:.2}×** (target ≥ 1.5×)\n\
         - where photoferry's time goes (one thread, {})\n\
         - metadata kept, photoferry: {}\n- metadata kept, heif-convert: {}\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        heics.len(),
        String::from_utf8_lossy(&Command::new("heif-convert").arg("--version").output().map(|o| o.stdout).unwrap_or_default())
            .lines()
            .next()
            .unwrap_or("?")
            .trim(),
        files as f64 / t_pf,
        files as f64 / t_hc,
        t_hc / t_pf,
        breakdown,
        kept(&out_pf),
        kept(&out_hc),
    );
    print!("{report}");
    std::fs::OpenOptions::new().create(true).append(true).open(root.join("BENCHMARKS.md")).unwrap().write_all(report.as_bytes()).unwrap();
}

/// One thread, one copy of the corpus: libheif's default decode (libde265, to YCbCr 4:2:0, its
/// default conversion of the colours to sRGB), the decode photoferry makes (FFmpeg's decoder, the
/// file's own colour description kept), and photoferry's whole conversion, so the decoder's, the
/// colour handling's and the encoder's shares are known.
fn breakdown(dir: &Path) -> String {
    use libheif_rs::{Chroma, ColorSpace, HeifContext, LibHeif};
    let files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    let lib = LibHeif::new();
    let decode_all = |photoferry_options: bool| {
        let t = Instant::now();
        for f in &files {
            let mut ctx = HeifContext::read_from_file(f.to_str().unwrap()).unwrap();
            ctx.set_max_decoding_threads(1);
            let h = ctx.primary_image_handle().unwrap();
            let _ = if photoferry_options {
                let item = photoferry::convert::Item::Primary;
                let path = f.to_str().unwrap();
                photoferry::convert::decode(&lib, path, &h, item, ColorSpace::YCbCr(Chroma::C420), |o| o.set_output_image_nclx_profile_passthrough(true))
            } else {
                lib.decode(&h, ColorSpace::YCbCr(Chroma::C420), None)
            };
        }
        t.elapsed().as_secs_f64()
    };
    let default_decode = decode_all(false);
    let decode = decode_all(true);
    let t = Instant::now();
    for f in &files {
        let _ = photoferry::convert::heic_to_jpeg(f, 90);
    }
    let whole = t.elapsed().as_secs_f64();
    format!(
        "{} files: libheif's default decode (libde265, colours converted to sRGB) {default_decode:.2} s; photoferry's decode \
         ({} decoder, colours kept) {decode:.2} s; photoferry's whole conversion {whole:.2} s → JPEG encode and metadata {:.0}% of the time",
        files.len(),
        photoferry::convert::hevc_decoder_id(&lib).unwrap_or("default"),
        100.0 * (whole - decode) / whole
    )
}
