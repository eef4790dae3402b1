//! Helpers shared by the benches (each bench uses some of them).
#![allow(dead_code)]

/// "N cores, CPU model", for the BENCHMARKS.md headings.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    format!("{cores} cores, {cpu}")
}

/// Copy every media file `copies` times into `lib/copy-NN/<source path>`, making each copy's
/// bytes unique in a way every reader tolerates: a `free` box appended to ISO-BMFF files
/// (HEIC, MOV, MP4), bytes after the end marker of JPEG and PNG, an XML comment in AAE.
pub fn build_library(media: &std::path::Path, lib: &std::path::Path, copies: usize) -> (u64, u64) {
    build_library_of(media, lib, copies, |_| true)
}

/// [`build_library`] of the files (paths relative to `media`) that `keep` accepts.
pub fn build_library_of(media: &std::path::Path, lib: &std::path::Path, copies: usize, keep: impl Fn(&str) -> bool) -> (u64, u64) {
    let index = std::fs::read_to_string(media.join("INDEX.tsv")).unwrap();
    let paths: Vec<&str> =
        index.lines().skip(1).filter_map(|l| l.split('\t').next()).filter(|p| !p.ends_with(".csv") && keep(p)).collect();
    let (mut files, mut bytes) = (0u64, 0u64);
    for k in 0..copies {
        for p in &paths {
            let mut data = std::fs::read(media.join(p)).unwrap();
            let tag = format!("photoferry-bench copy {k} of {p}");
            let lower = p.to_lowercase();
            if data.len() >= 12 && &data[4..8] == b"ftyp" {
                data.extend_from_slice(&((tag.len() + 8) as u32).to_be_bytes());
                data.extend_from_slice(b"free");
                data.extend_from_slice(tag.as_bytes());
            } else if lower.ends_with(".aae") {
                data.extend_from_slice(format!("\n<!-- {tag} -->\n").as_bytes());
            } else {
                data.extend_from_slice(tag.as_bytes());
            }
            let dest = lib.join(format!("copy-{k:02}")).join(p);
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::write(&dest, &data).unwrap();
            files += 1;
            bytes += data.len() as u64;
        }
    }
    (files, bytes)
}

/// Run a shell command under GNU time; (label, wall seconds, peak RSS KiB).
pub fn timed(label: &str, cmd: &str) -> (String, f64, Option<u64>) {
    let rss_file = std::env::temp_dir().join(format!("pf-bench-rss-{}", std::process::id()));
    let have_time = std::path::Path::new("/usr/bin/time").exists();
    let full = if have_time {
        format!("/usr/bin/time -f %M -o {} sh -c {}", q(&rss_file), shell_quote(cmd))
    } else {
        cmd.to_string()
    };
    let start = std::time::Instant::now();
    let status = std::process::Command::new("sh").arg("-c").arg(&full).status().expect("spawn");
    let secs = start.elapsed().as_secs_f64();
    if !status.success() {
        eprintln!("bench: `{cmd}` exited with {status}");
    }
    let rss = std::fs::read_to_string(&rss_file).ok().and_then(|s| s.lines().last()?.trim().parse().ok());
    println!("{label:44} {secs:8.2} s   peak RSS {} KiB", rss.map(|r: u64| r.to_string()).unwrap_or("?".into()));
    (label.to_string(), secs, rss)
}

pub fn q(p: &std::path::Path) -> String {
    shell_quote(&p.to_string_lossy())
}

pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

pub fn which(cmd: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| std::path::Path::new(d).join(cmd)).find(|p| p.is_file())
}
