//! Helpers shared by the integration tests: the binary, temp trees, tree listings, and the
//! real-media folder `../shared/media` (skipped loudly when absent; a failure under CI, which
//! sets PHOTOFERRY_REQUIRE_SHARED_MEDIA=1).
#![allow(dead_code)]

#[path = "../../fixtures/gen.rs"]
pub mod gen;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_photoferry"))
}

/// Run `photoferry ARGS` with an optional TZ; returns (exit code, stdout, stderr).
pub fn run(args: &[&str], tz: Option<&str>) -> (i32, String, String) {
    let mut c = bin();
    c.args(args);
    if let Some(tz) = tz {
        c.env("TZ", tz);
    }
    let Output { status, stdout, stderr } = c.output().expect("run photoferry");
    (status.code().unwrap_or(-1), String::from_utf8_lossy(&stdout).into_owned(), String::from_utf8_lossy(&stderr).into_owned())
}

/// Every regular file under `root` except the state folder: relative path → bytes.
pub fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(root).into_iter().filter_entry(|e| e.file_name() != ".photoferry") {
        let e = e.unwrap();
        if e.file_type().is_file() {
            let rel = e.path().strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
            out.insert(rel, std::fs::read(e.path()).unwrap());
        }
    }
    out
}

pub fn paths(root: &Path) -> Vec<String> {
    tree(root).into_keys().collect()
}

/// Relative path → (size, mtime seconds) for every file under `root` (state folder excluded).
pub fn stat_tree(root: &Path) -> BTreeMap<String, (u64, i64)> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(root).into_iter().filter_entry(|e| e.file_name() != ".photoferry") {
        let e = e.unwrap();
        if e.file_type().is_file() {
            let m = e.metadata().unwrap();
            let t = filetime::FileTime::from_last_modification_time(&m).unix_seconds();
            out.insert(e.path().strip_prefix(root).unwrap().to_string_lossy().into_owned(), (m.len(), t));
        }
    }
    out
}

/// A fresh sample export in a temp dir; returns (tempdir guard, export dir, its inputs).
pub fn sample() -> (tempfile::TempDir, PathBuf, Vec<String>) {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("export");
    gen::sample_export(&dir).unwrap();
    let mut inputs: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path().to_string_lossy().into_owned())
        .collect();
    inputs.sort();
    (t, dir, inputs)
}

/// `../shared/media`, or None (with a loud message) when it is absent and not required.
pub fn shared_media() -> Option<PathBuf> {
    let dir = std::env::var_os("PHOTOFERRY_SHARED_MEDIA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/media"));
    if dir.join("INDEX.tsv").is_file() {
        return Some(dir);
    }
    if std::env::var("PHOTOFERRY_REQUIRE_SHARED_MEDIA").is_ok_and(|v| v == "1") {
        panic!("PHOTOFERRY_REQUIRE_SHARED_MEDIA=1 but {} has no INDEX.tsv", dir.display());
    }
    eprintln!("\n*** SKIPPED: real-media test: {} not found (set PHOTOFERRY_SHARED_MEDIA) ***\n", dir.display());
    None
}

pub fn blake3_hex(b: &[u8]) -> String {
    blake3::hash(b).to_hex().to_string()
}
