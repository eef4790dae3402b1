//! Crash safety of `organize`: kill -9 at many points of a run, then a plain re-run, must give
//! exactly the tree and manifest of an uninterrupted run, with no temp files left; a full disk
//! gives clear errors, no partial files, and the next run (with space) completes.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{bin, blake3_hex, gen, tree};

/// An input folder of `n` unique photos (~`kib` KiB each: a real JPEG with bytes after its end
/// marker, as some cameras write) and a zip of `n` more, over several years.
fn library(dir: &Path, n: u32, kib: usize) {
    std::fs::create_dir_all(dir.join("folder")).unwrap();
    let photo = |i: u32| {
        let mut b = gen::jpeg(i, Some(&format!("{}:03:04 05:06:07", 2015 + i % 6)), Some("+01:00"));
        b.extend(std::iter::repeat_n((i % 251) as u8, kib * 1024));
        b.extend_from_slice(&i.to_le_bytes());
        b
    };
    for i in 0..n {
        std::fs::write(dir.join(format!("folder/IMG_{i:04}.JPG")), photo(i)).unwrap();
    }
    let entries: Vec<(String, Vec<u8>)> = (n..2 * n).map(|i| (format!("zipped/IMG_{i:04}.JPG"), photo(i))).collect();
    let refs: Vec<(&str, Vec<u8>, gen::Store)> = entries.iter().map(|(a, b)| (a.as_str(), b.clone(), gen::Store::Deflated)).collect();
    std::fs::write(dir.join("export.zip"), gen::zip(&refs, false, false)).unwrap();
}

fn organize(inp: &Path, out: &Path) -> (i32, String) {
    let o = bin().arg("organize").arg(inp).arg("--out").arg(out).output().unwrap();
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// The manifest's idea of the tree: path → BLAKE3 (of the original) for every placed file.
fn manifest_files(out: &Path) -> BTreeMap<String, String> {
    let db = rusqlite::Connection::open(out.join(".photoferry/manifest.sqlite")).unwrap();
    let mut st = db.prepare("SELECT path, blake3 FROM files").unwrap();
    let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))).unwrap();
    rows.map(Result::unwrap).collect()
}

fn hashes(t: &BTreeMap<String, Vec<u8>>) -> BTreeMap<String, String> {
    t.iter().map(|(k, v)| (k.clone(), blake3_hex(v))).collect()
}

fn temp_files(out: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(out.join(".photoferry/tmp")).map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect()).unwrap_or_default()
}

#[test]
fn kill_9_at_many_points_then_rerun_gives_the_uninterrupted_result() {
    let t = tempfile::tempdir().unwrap();
    let inp = t.path().join("in");
    library(&inp, 150, 96);
    let reference = t.path().join("reference");
    let started = Instant::now();
    let (code, err) = organize(&inp, &reference);
    let full_run = started.elapsed();
    assert_eq!(code, 0, "{err}");
    let want = hashes(&tree(&reference));
    assert_eq!(want.len(), 300);
    assert!(manifest_files(&reference) == want, "the reference manifest must describe its tree");

    // Kill points: from "just started" to "nearly done", as fractions of how long the
    // uninterrupted run took on this machine (so a fast or a loaded machine kills at the same
    // stages: scanning, reading and hashing, writing, recording).
    let mut killed_mid_run = 0;
    for (i, fraction) in [0.02, 0.06, 0.12, 0.2, 0.3, 0.4, 0.5, 0.62, 0.75, 0.9].into_iter().enumerate() {
        let delay_ms = (full_run.as_secs_f64() * 1000.0 * fraction) as u64;
        let out = t.path().join(format!("out{i}"));
        let mut child = bin().arg("organize").arg(&inp).arg("--out").arg(&out).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(delay_ms) {
            std::thread::sleep(Duration::from_millis(1));
        }
        let finished = child.try_wait().unwrap().is_some();
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        if !finished {
            killed_mid_run += 1;
        }
        // Whatever the kill left: every visible file is complete and correct (no partial
        // photos under a real name), or absent.
        let left = if out.exists() { hashes(&tree(&out)) } else { BTreeMap::new() };
        for (path, h) in left {
            assert_eq!(want.get(&path), Some(&h), "kill at {delay_ms} ms: {path} is not what the full run writes there");
        }
        let (code, err) = organize(&inp, &out);
        assert_eq!(code, 0, "re-run after kill at {delay_ms} ms: {err}");
        assert!(hashes(&tree(&out)) == want, "kill at {delay_ms} ms: the tree differs from the uninterrupted run");
        assert!(manifest_files(&out) == want, "kill at {delay_ms} ms: the manifest does not describe the tree");
        assert!(temp_files(&out).is_empty(), "kill at {delay_ms} ms: temp files left: {:?}", temp_files(&out));
        // And a third run has nothing to do.
        let o = bin().arg("organize").arg(&inp).arg("--out").arg(&out).arg("--json").output().unwrap();
        let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(j["written"].as_u64().or_else(|| j["totals"]["written"].as_u64()), Some(0), "kill at {delay_ms} ms: third run wrote files");
    }
    assert!(killed_mid_run >= 5, "only {killed_mid_run} kills landed before the run finished: make the library bigger");
}

/// A tmpfs of a few MB as DIR (needs root; skipped loudly otherwise, a failure when
/// PHOTOFERRY_REQUIRE_TMPFS=1, which .ci/run sets).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(at).status().is_ok_and(|s| s.success());
        if ok {
            return Some(Tmpfs(at.to_path_buf()));
        }
        if std::env::var("PHOTOFERRY_REQUIRE_TMPFS").is_ok_and(|v| v == "1") {
            panic!("PHOTOFERRY_REQUIRE_TMPFS=1 but a tmpfs could not be mounted at {}", at.display());
        }
        eprintln!("\n*** SKIPPED: disk-full test: cannot mount a tmpfs (run as root to include it) ***\n");
        None
    }

    fn resize(&self, size: &str) {
        let s = Command::new("mount").args(["-o", &format!("remount,size={size}")]).arg(&self.0).status().unwrap();
        assert!(s.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_gives_clear_errors_no_partial_files_and_the_next_run_completes() {
    let t = tempfile::tempdir().unwrap();
    let inp = t.path().join("in");
    library(&inp, 20, 200); // 40 photos, ~8 MB
    let reference = t.path().join("reference");
    assert_eq!(organize(&inp, &reference).0, 0);
    let want = hashes(&tree(&reference));

    let Some(fs) = Tmpfs::mount(&t.path().join("small-disk"), "3m") else { return };
    let out = fs.0.join("Photos");
    let (code, err) = organize(&inp, &out);
    assert_ne!(code, 0, "a run that cannot fit must not report success:\n{err}");
    assert!(err.contains("No space left on device") || err.contains("disk is full"), "{err}");
    // Every error names a file and says what was done.
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert!(!errors.is_empty(), "{err}");
    assert!(errors.iter().all(|l| l.contains("IMG_") || l.contains("manifest") || l.contains(".photoferry")), "{err}");
    // No partial files: whatever is in the tree is exactly what a full run writes there.
    for (path, h) in hashes(&tree(&out)) {
        assert_eq!(want.get(&path), Some(&h), "{path} is partial or wrong after the disk filled up");
    }
    assert!(temp_files(&out).is_empty(), "temp files left on the full disk: {:?}", temp_files(&out));

    // Space is freed: the next run completes the tree.
    fs.resize("64m");
    let (code, err) = organize(&inp, &out);
    assert_eq!(code, 0, "{err}");
    assert!(hashes(&tree(&out)) == want, "the tree differs from a run with enough space");
    assert!(manifest_files(&out) == want, "the manifest does not describe the tree");
}
