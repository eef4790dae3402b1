//! `photoferry upload` and `verify --dropbox` against the loopback Dropbox API emulator
//! (`emulator/`, started by each test on 127.0.0.1:0). The binary under test is the real one,
//! speaking the real wire format over HTTP; the assertions read the emulator's namespace,
//! counters and request log.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{bin, shared_media};
use dropbox_emulator::{content_hash, Config, Emulator, Fault, FaultKind};
use serde_json::Value;

const TOKEN: &str = "emulator-token";

/// The command, pointed at the emulator, with a private config folder (no real login is read).
fn cmd(emu: &Emulator, config: &Path, args: &[&str]) -> Command {
    let mut c = bin();
    c.args(args)
        .env("PHOTOFERRY_DROPBOX_URL", emu.url())
        .env("PHOTOFERRY_DROPBOX_TOKEN", TOKEN)
        .env("PHOTOFERRY_CONFIG_DIR", config)
        .env_remove("PHOTOFERRY_DROPBOX_REFRESH_TOKEN")
        .env_remove("PHOTOFERRY_DROPBOX_APP_KEY");
    c
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\nstderr:\n{}", self.stdout, self.stderr))
    }
}

fn run_cmd(mut c: Command) -> Run {
    let o = c.output().expect("run photoferry");
    Run { code: o.status.code().unwrap_or(-1), stdout: String::from_utf8_lossy(&o.stdout).into(), stderr: String::from_utf8_lossy(&o.stderr).into() }
}

fn upload(emu: &Emulator, config: &Path, dir: &Path, extra: &[&str]) -> Run {
    let d = dir.to_string_lossy().into_owned();
    let mut args = vec!["upload", d.as_str(), "--to", "/Photos", "--json"];
    args.extend_from_slice(extra);
    run_cmd(cmd(emu, config, &args))
}

/// A temp folder with `tree/` (the tree to upload) and `config/`.
struct Rig {
    _t: tempfile::TempDir,
    dir: PathBuf,
    config: PathBuf,
}

fn rig(files: &[(&str, Vec<u8>)]) -> Rig {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("tree");
    let config = t.path().join("config");
    std::fs::create_dir_all(&config).unwrap();
    for (rel, bytes) in files {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
    }
    Rig { _t: t, dir, config }
}

/// Distinct, deterministic bytes.
fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A small tree with the names that trip uploaders: NFD, emoji, case twins, Dropbox-ignored.
fn small_tree() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("2019/IMG_0001.HEIC", bytes(1, 30_000)),
        ("2019/IMG_0001.MOV", bytes(2, 90_000)),
        ("2021/Cafe\u{301} Lisboa/IMG_0009.JPG", bytes(3, 12_345)), // NFD on disk
        ("2021/\u{1F389} Party/\u{1F382}.jpg", bytes(4, 777)),
        ("2021/PICT0008.JPG", bytes(5, 4_000)),
        ("2021/pict0008.jpg", bytes(6, 5_000)), // same name to Dropbox, different bytes
        ("2022/empty.png", Vec::new()),
        ("2022/.DS_Store", bytes(7, 10)),
        ("2022/Thumbs.db", bytes(8, 10)),
    ]
}

/// Remote path (NFC, as sent) → (size, content hash) of everything in the emulator.
fn remote(emu: &Emulator) -> BTreeMap<String, (u64, String)> {
    emu.files().into_iter().map(|f| (f.path_display, (f.size, f.content_hash))).collect()
}

fn calls(emu: &Emulator, route: &str) -> u64 {
    emu.stats().calls.get(route).copied().unwrap_or(0)
}

/// Every local file except the ignored names is in Dropbox exactly once, at the expected path
/// (case twins: one of them suffixed), with the local bytes' content hash.
fn assert_mirrored(emu: &Emulator, files: &[(&str, Vec<u8>)]) {
    let r = remote(emu);
    let mut expected = BTreeMap::new();
    for (rel, b) in files {
        if rel.ends_with(".DS_Store") || rel.ends_with("Thumbs.db") {
            continue;
        }
        let rel = unicode_nfc(rel);
        let path = if rel == "2021/pict0008.jpg" { "/Photos/2021/pict0008 (2).jpg".to_string() } else { format!("/Photos/{rel}") };
        expected.insert(path, (b.len() as u64, content_hash(b)));
    }
    assert_eq!(r, expected);
}

fn unicode_nfc(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    s.nfc().collect()
}

#[test]
fn uploads_a_tree_verifies_it_and_a_rerun_sends_nothing() {
    let files = small_tree();
    let rig = rig(&files);
    // Capture times as organize sets them: client_modified must follow the file's mtime.
    let when = filetime::FileTime::from_unix_time(1_546_300_800, 0); // 2019-01-01T00:00:00Z
    filetime::set_file_mtime(rig.dir.join("2019/IMG_0001.HEIC"), when).unwrap();
    let emu = Emulator::start(Config::default()).unwrap();

    let r = upload(&emu, &rig.config, &rig.dir, &[]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_mirrored(&emu, &files);
    let j = r.json();
    assert_eq!(j["uploaded"], 7);
    assert_eq!(j["already_there"], 0);
    let left: Vec<&str> = j["left_out"].as_array().unwrap().iter().map(|l| l[0].as_str().unwrap()).collect();
    assert_eq!(left, ["2022/.DS_Store", "2022/Thumbs.db"]);
    let renamed = &j["renamed"][0];
    assert_eq!((renamed[0].as_str().unwrap(), renamed[1].as_str().unwrap()), ("2021/pict0008.jpg", "/Photos/2021/pict0008 (2).jpg"));
    assert_eq!(emu.file("/photos/2019/img_0001.heic").unwrap().client_modified, "2019-01-01T00:00:00Z");

    // Small files: one start (closed, carrying the bytes) each, one batch commit for all.
    assert_eq!(calls(&emu, "/2/files/upload_session/start"), 7);
    assert_eq!(calls(&emu, "/2/files/upload_session/finish_batch_v2"), 1);
    assert_eq!(calls(&emu, "/2/files/upload_session/append_v2"), 0);
    let sent: u64 = files.iter().filter(|(n, _)| !n.ends_with(".DS_Store") && !n.ends_with("Thumbs.db")).map(|(_, b)| b.len() as u64).sum();
    assert_eq!(emu.stats().upload_bytes, sent);
    assert_eq!(j["bytes_sent"], sent);

    // A re-run: the listing is a cheap `continue` from the saved cursor, nothing is sent.
    let before = emu.stats();
    let r = upload(&emu, &rig.config, &rig.dir, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let j = r.json();
    assert_eq!((j["uploaded"].as_u64(), j["already_there"].as_u64(), j["bytes_sent"].as_u64()), (Some(0), Some(7), Some(0)));
    assert_eq!(emu.stats().upload_bytes, before.upload_bytes);
    assert_eq!(calls(&emu, "/2/files/upload_session/start"), 7);
    assert_mirrored(&emu, &files);

    // verify: manifest vs disk vs Dropbox agree.
    let d = rig.dir.to_string_lossy().into_owned();
    let v = run_cmd(cmd(&emu, &rig.config, &["verify", &d, "--dropbox", "/Photos", "--json"]));
    assert_eq!(v.code, 0, "{}\n{}", v.stdout, v.stderr);
    assert_eq!(v.json()["differences"].as_array().unwrap().len(), 0);

    // Someone replaces a file in Dropbox: verify names it and fails.
    emu.put_file("/Photos/2019/IMG_0001.MOV", b"not the video", "2019-01-01T00:00:00Z");
    let v = run_cmd(cmd(&emu, &rig.config, &["verify", &d, "--dropbox", "/Photos"]));
    assert_eq!(v.code, 1, "{}\n{}", v.stdout, v.stderr);
    assert!(v.stdout.contains("2019/IMG_0001.MOV"), "{}", v.stdout);

    // Tokens never reach the output.
    for out in [&r.stdout, &r.stderr, &v.stdout, &v.stderr] {
        assert!(!out.contains(TOKEN), "token leaked: {out}");
    }
}

#[test]
fn dry_run_lists_what_would_be_sent_and_sends_nothing() {
    let files = small_tree();
    let rig = rig(&files);
    let emu = Emulator::start(Config::default()).unwrap();
    let d = rig.dir.to_string_lossy().into_owned();
    let r = run_cmd(cmd(&emu, &rig.config, &["upload", &d, "--to", "/Photos", "--dry-run"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("send    2019/IMG_0001.HEIC  -> /Photos/2019/IMG_0001.HEIC"), "{}", r.stdout);
    assert!(r.stdout.contains("Would send 7 file(s)"), "{}", r.stdout);
    assert_eq!(emu.stats().upload_bytes, 0);
    assert!(emu.files().is_empty());
}

#[test]
fn a_different_file_at_the_path_is_never_overwritten() {
    let files = vec![("2021/a.jpg", bytes(10, 1000)), ("2021/b.jpg", bytes(11, 1000))];
    let rig = rig(&files);
    let emu = Emulator::start(Config::default()).unwrap();
    let theirs = emu.put_file("/Photos/2021/A.JPG", b"someone else's photo", "2020-01-01T00:00:00Z");

    // --on-conflict refuse: an error naming the file, theirs untouched, the rest uploaded.
    let r = upload(&emu, &rig.config, &rig.dir, &["--on-conflict", "refuse"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("2021/a.jpg") && r.stderr.contains("different file"), "{}", r.stderr);
    assert_eq!(emu.file("/Photos/2021/a.jpg").unwrap(), theirs);
    assert!(emu.file("/Photos/2021/b.jpg").is_some());

    // Default: ours goes in under a suffixed name and is reported.
    let r = upload(&emu, &rig.config, &rig.dir, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(emu.file("/Photos/2021/a.jpg").unwrap(), theirs);
    assert_eq!(emu.file("/Photos/2021/a (2).jpg").unwrap().content_hash, content_hash(&files[0].1));
    assert_eq!(r.json()["renamed"][0][1], "/Photos/2021/a (2).jpg");
    // And the next run knows the suffixed copy is ours.
    let r = upload(&emu, &rig.config, &rig.dir, &[]);
    assert_eq!(r.json()["uploaded"], 0);
    assert_eq!(emu.files().len(), 3);
}

/// One fault of each kind on the route it matters for; every run must end with the whole tree
/// in Dropbox, exit 0, and the fault must have fired.
#[test]
fn each_fault_kind_is_survived() {
    let cases: Vec<(&str, FaultKind)> = vec![
        ("/2/files/upload_session/start", FaultKind::RateLimitJson { retry_after: 1 }),
        ("/2/files/upload_session/start", FaultKind::RateLimitText { retry_after: 1 }),
        ("/2/files/upload_session/finish_batch_v2", FaultKind::TooManyWriteOperations),
        ("/2/files/upload_session/start", FaultKind::ServerError(500)),
        ("/2/files/upload_session/start", FaultKind::ServerError(503)),
        ("/2/files/list_folder", FaultKind::ServerError(502)),
        ("/2/files/upload_session/start", FaultKind::Reset),
        ("/2/files/upload_session/start", FaultKind::LostResponse),
        ("/2/files/upload_session/finish_batch_v2", FaultKind::LostResponse),
        ("/2/files/upload_session/finish_batch_v2", FaultKind::Reset),
        ("/2/files/upload_session/finish_batch_v2", FaultKind::BatchEntryTooManyWriteOperations { index: 1 }),
        ("/2/files/upload_session/start", FaultKind::Latency(Duration::from_millis(300))),
    ];
    let files = small_tree();
    for (route, kind) in cases {
        let rig = rig(&files);
        let emu = Emulator::start(Config::default()).unwrap();
        emu.inject(Fault { route: route.into(), nth: if route.ends_with("finish_batch_v2") || route.ends_with("list_folder") { 1 } else { 2 }, kind: kind.clone() });
        let r = upload(&emu, &rig.config, &rig.dir, &[]);
        assert_eq!(r.code, 0, "{route} {kind:?}:\n{}\n{}", r.stdout, r.stderr);
        assert_mirrored(&emu, &files);
        let log = emu.stats().log;
        let hit = log.iter().position(|e| e.fault.as_deref() == Some(kind.name()));
        let hit = hit.unwrap_or_else(|| panic!("{kind:?} never fired"));
        // Retry-After honoured: the next call to that route came at least that long after.
        // Dropbox limits the account, not the request, so every worker holds back: apart from
        // requests already on the wire when the 429 arrived, nothing reaches the server until
        // Retry-After has passed, and then the work resumes.
        if let FaultKind::RateLimitJson { retry_after } | FaultKind::RateLimitText { retry_after } = kind {
            let t = log[hit].at;
            let pause = Duration::from_secs(retry_after);
            let during = log[hit + 1..].iter().filter(|e| e.at - t > Duration::from_millis(400) && e.at - t < pause).count();
            assert_eq!(during, 0, "{kind:?}: requests during the pause: {log:#?}");
            assert!(log[hit + 1..].iter().any(|e| e.at - t >= pause && e.route == log[hit].route), "{kind:?}: never retried");
        }
        // Exactly one copy of everything: no "(2)" twins from retried commits.
        assert_eq!(emu.files().len(), 7, "{kind:?}");
    }
}

#[test]
fn an_expired_access_token_is_refreshed_once() {
    let files = vec![("2021/a.jpg", bytes(20, 100))];
    let rig = rig(&files);
    let emu = Emulator::start(Config { refresh_tokens: vec!["refresh-me".into()], ..Config::default() }).unwrap();
    emu.expire_tokens();
    let d = rig.dir.to_string_lossy().into_owned();
    let mut c = cmd(&emu, &rig.config, &["upload", &d, "--to", "/Photos"]);
    c.env("PHOTOFERRY_DROPBOX_REFRESH_TOKEN", "refresh-me").env("PHOTOFERRY_DROPBOX_APP_KEY", "test-app-key").env("RUST_LOG", "trace");
    let r = run_cmd(c);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(calls(&emu, "/oauth2/token"), 1);
    assert!(emu.file("/Photos/2021/a.jpg").is_some());
    assert!(!format!("{}{}", r.stdout, r.stderr).contains("refresh-me"));

    // With only an access token there is nothing to refresh: a clear, fatal error.
    emu.expire_tokens();
    let mut c = cmd(&emu, &rig.config, &["upload", &d, "--to", "/Other"]);
    c.env("PHOTOFERRY_DROPBOX_TOKEN", TOKEN);
    let r = run_cmd(c);
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("expired_access_token") && r.stderr.contains("photoferry login"), "{}", r.stderr);
}

#[test]
fn a_full_dropbox_stops_the_run_with_a_clear_message() {
    let files = vec![("2021/a.jpg", bytes(30, 6000)), ("2021/b.jpg", bytes(31, 6000))];
    let rig = rig(&files);
    let emu = Emulator::start(Config { quota_bytes: Some(7000), ..Config::default() }).unwrap();
    let r = upload(&emu, &rig.config, &rig.dir, &["--batch", "1", "--transfers", "1"]);
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("Dropbox is full"), "{}", r.stderr);
    assert_eq!(emu.files().len(), 1);
    // Space freed (a bigger quota here): the next run sends only what is missing.
    drop(emu);
}

#[test]
fn a_name_dropbox_refuses_is_a_per_file_error() {
    let files = vec![("2021/a.jpg", bytes(40, 100)), ("2021/b.jpg", bytes(41, 100))];
    let rig = rig(&files);
    let emu = Emulator::start(Config::default()).unwrap();
    // A Dropbox folder component over 255 characters: malformed_path for every file under it.
    let long = format!("/{}", "x".repeat(300));
    let d = rig.dir.to_string_lossy().into_owned();
    let r = run_cmd(cmd(&emu, &rig.config, &["upload", &d, "--to", &long]));
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.stderr.matches("malformed_path").count(), 2, "{}", r.stderr);
    assert!(r.stderr.contains("2021/a.jpg") && r.stderr.contains("2021/b.jpg"), "{}", r.stderr);
    assert!(emu.files().is_empty());
}

#[test]
fn many_files_are_committed_in_batches_one_at_a_time() {
    let files: Vec<(String, Vec<u8>)> = (0..120).map(|i| (format!("2020/IMG_{i:04}.JPG"), bytes(100 + i, 2000))).collect();
    let refs: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    let rig = rig(&refs);
    let emu = Emulator::start(Config { list_limit: 7, ..Config::default() }).unwrap();
    let r = upload(&emu, &rig.config, &rig.dir, &["--batch", "50", "--transfers", "8"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(emu.files().len(), 120);
    let commits = calls(&emu, "/2/files/upload_session/finish_batch_v2");
    assert!((3..=6).contains(&commits), "{commits} batch commits for 120 files in batches of 50");
    assert_eq!(emu.stats().max_concurrent_batch_commits, 1);
    let per_file = (calls(&emu, "/2/files/upload_session/start") + commits) as f64 / 120.0;
    assert!(per_file <= 1.1, "{per_file} upload calls per file");
    // The full listing of a 120-file folder at 7 entries a page, then a reset cursor: still right.
    emu.inject(Fault { route: "/2/files/list_folder/continue".into(), nth: 1, kind: FaultKind::ListReset });
    let r = upload(&emu, &rig.config, &rig.dir, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let j = r.json();
    assert_eq!((j["uploaded"].as_u64(), j["already_there"].as_u64()), (Some(0), Some(120)));
}

/// 200 MiB in 48 MiB chunks, the answer to the second append lost after Dropbox stored it: the
/// retry meets `incorrect_offset`, resyncs, and the file arrives whole, sent about once.
#[test]
fn a_large_file_goes_in_chunks_and_survives_a_lost_response() {
    let big = bytes(50, 200 * 1024 * 1024);
    let files = vec![("2023/long video.MOV", big)];
    let rig = rig(&files);
    let emu = Emulator::start(Config::default()).unwrap();
    emu.inject(Fault { route: "/2/files/upload_session/append_v2".into(), nth: 2, kind: FaultKind::LostResponse });
    let r = upload(&emu, &rig.config, &rig.dir, &[]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_mirrored(&emu, &files);
    assert_eq!(calls(&emu, "/2/files/upload_session/start"), 1);
    // start carries 48 MiB, then appends of 48, 48 (lost, resent), 48, 8.
    assert_eq!(calls(&emu, "/2/files/upload_session/append_v2"), 5);
    let size = 200 * 1024 * 1024u64;
    let sent = emu.stats().upload_bytes;
    assert!(sent <= size + 48 * 1024 * 1024, "{sent} bytes received for a {size}-byte file");
}

fn wait_until(deadline: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// kill -9 at several points of an upload (mid-chunk, between small files, around the commit),
/// then a plain re-run: the same Dropbox namespace as an uninterrupted upload, every file once,
/// and a chunked file resumed from the session the manifest remembered.
#[test]
fn kill_9_during_upload_then_rerun_completes() {
    let mut files: Vec<(String, Vec<u8>)> = (0..30).map(|i| (format!("2020/IMG_{i:04}.JPG"), bytes(200 + i, 3000))).collect();
    files.push(("2020/clip.MOV".into(), bytes(299, 40 * 1024 * 1024)));
    let refs: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    // Kill once this many content-route requests have been answered.
    for kill_after in [2u64, 5, 9, 20] {
        let rig = rig(&refs);
        let emu = Emulator::start(Config::default()).unwrap();
        // Slow every request a little so the kill lands mid-run.
        for n in 1..=60 {
            emu.inject(Fault { route: "*".into(), nth: n, kind: FaultKind::Latency(Duration::from_millis(40)) });
        }
        let d = rig.dir.to_string_lossy().into_owned();
        let mut c = cmd(&emu, &rig.config, &["upload", &d, "--to", "/Photos", "--chunk-mib", "4", "--transfers", "2", "--batch", "8"]);
        let mut child = c.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let content_calls = |emu: &Emulator| {
            let s = emu.stats();
            ["/2/files/upload_session/start", "/2/files/upload_session/append_v2"].iter().map(|r| s.calls.get(*r).copied().unwrap_or(0)).sum::<u64>()
        };
        let reached = wait_until(Duration::from_secs(60), || content_calls(&emu) >= kill_after);
        assert!(reached, "the upload never reached {kill_after} calls");
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let first_bytes = emu.stats().upload_bytes;

        let r = upload(&emu, &rig.config, &rig.dir, &[]);
        assert_eq!(r.code, 0, "after kill at {kill_after}: {}\n{}", r.stdout, r.stderr);
        assert_mirrored(&emu, &refs);
        assert_eq!(emu.files().len(), 31);
        // Nothing was sent twice beyond the chunk in flight at the kill (4 MiB) and the small
        // files whose sessions were open but not committed.
        let total: u64 = refs.iter().map(|(_, b)| b.len() as u64).sum();
        let resent = emu.stats().upload_bytes.saturating_sub(total);
        let log: Vec<String> = emu.stats().log.iter().map(|e| format!("{} {} {:?}", e.route, e.status, e.fault)).collect();
        assert!(resent <= 2 * 4 * 1024 * 1024 + 30 * 3000, "kill at {kill_after}: {resent} bytes re-sent ({first_bytes} before the kill)\n{}\n{log:#?}", r.stderr);
        // The manifest is consistent: a third run sends nothing, and verify agrees with Dropbox.
        let r = upload(&emu, &rig.config, &rig.dir, &[]);
        assert_eq!(r.json()["bytes_sent"], 0);
        let v = run_cmd(cmd(&emu, &rig.config, &["verify", &d, "--dropbox", "/Photos"]));
        assert_eq!(v.code, 0, "{}\n{}", v.stdout, v.stderr);
    }
}

/// The organized ../shared/media tree goes up whole: every file, its content hash, and a re-run
/// that sends nothing; verify agrees three ways.
#[test]
fn uploads_the_organized_shared_media_tree() {
    let Some(media) = shared_media() else { return };
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("Photos");
    let config = t.path().join("config");
    std::fs::create_dir_all(&config).unwrap();
    let (code, _, stderr) = common::run(&["organize", &media.to_string_lossy(), "--out", &out.to_string_lossy()], None);
    assert!(code == 0 || code == 1, "organize: {stderr}");
    let local = common::tree(&out);
    assert!(local.len() > 50, "{} files organized", local.len());

    let emu = Emulator::start(Config::default()).unwrap();
    let r = upload(&emu, &config, &out, &[]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let expected: BTreeMap<String, (u64, String)> =
        local.iter().map(|(rel, b)| (format!("/Photos/{}", unicode_nfc(rel)), (b.len() as u64, content_hash(b)))).collect();
    assert_eq!(remote(&emu), expected);
    let mtime = |rel: &str| filetime::FileTime::from_last_modification_time(&std::fs::metadata(out.join(rel)).unwrap()).unix_seconds();
    for (rel, _) in local.iter().take(10) {
        let f = emu.file(&format!("/Photos/{rel}")).unwrap();
        let want = chrono::DateTime::from_timestamp(mtime(rel), 0).unwrap().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        assert_eq!(f.client_modified, want, "{rel}");
    }
    let before = emu.stats().upload_bytes;
    let r = upload(&emu, &config, &out, &[]);
    assert_eq!(r.json()["bytes_sent"], 0);
    assert_eq!(emu.stats().upload_bytes, before);
    let v = run_cmd(cmd(&emu, &config, &["verify", &out.to_string_lossy(), "--dropbox", "/Photos"]));
    assert_eq!(v.code, 0, "{}\n{}", v.stdout, v.stderr);
}

/// `photoferry login` end to end: PKCE authorization (the emulator checks the S256 challenge),
/// the code pasted on stdin, the refresh token stored 0600 and never shown, an upload with no
/// token in the environment, then `logout` revoking and deleting it.
#[test]
fn login_stores_a_private_refresh_token_and_logout_revokes_it() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::os::unix::fs::PermissionsExt;

    let files = vec![("2021/a.jpg", bytes(60, 100))];
    let rig = rig(&files);
    let emu = Emulator::start(Config::default()).unwrap();
    // The app key comes from the config file here.
    std::fs::write(rig.config.join("config.json"), r#"{"app_key": "test-app-key"}"#).unwrap();
    let env = |c: &mut Command| {
        c.env("PHOTOFERRY_DROPBOX_URL", emu.url()).env("PHOTOFERRY_CONFIG_DIR", &rig.config).env_remove("PHOTOFERRY_DROPBOX_TOKEN");
    };
    let mut c = bin();
    c.arg("login");
    env(&mut c);
    let mut child = c.stdin(Stdio::piped()).stderr(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut url = None;
    let mut shown = String::new();
    for _ in 0..10 {
        let mut line = String::new();
        err.read_line(&mut line).unwrap();
        shown.push_str(&line);
        if let Some(u) = line.trim().strip_prefix(&emu.url()) {
            url = Some(u.to_string());
            break;
        }
    }
    let url = url.unwrap_or_else(|| panic!("no authorize link in: {shown}"));
    assert!(url.starts_with("/oauth2/authorize?client_id=test-app-key&response_type=code&token_access_type=offline&code_challenge="), "{url}");
    assert!(url.contains("code_challenge_method=S256"), "{url}");
    // "Open the link": the emulator approves at once and shows the code.
    let mut s = std::net::TcpStream::connect(emu.url().trim_start_matches("http://")).unwrap();
    write!(s, "GET {url} HTTP/1.1\r\nHost: emulator\r\nConnection: close\r\n\r\n").unwrap();
    let mut page = String::new();
    s.read_to_string(&mut page).unwrap();
    let code = page.split("\r\n\r\n").nth(1).unwrap().trim().to_string();
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    writeln!(child.stdin.take().unwrap(), "{code}").unwrap();
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{shown}{rest}");

    let token_file = rig.config.join("dropbox-token.json");
    assert_eq!(std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777, 0o600);
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(&token_file).unwrap()).unwrap();
    let refresh = stored["refresh_token"].as_str().unwrap().to_string();
    assert!(refresh.len() > 8);
    assert!(!rest.contains(&refresh) && !shown.contains(&refresh));

    // Upload with the stored login only: an access token is minted from the refresh token.
    let d = rig.dir.to_string_lossy().into_owned();
    let mut c = bin();
    c.args(["upload", &d, "--to", "/Photos"]).env("RUST_LOG", "trace");
    env(&mut c);
    let r = run_cmd(c);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(emu.file("/Photos/2021/a.jpg").is_some());
    assert!(!r.stdout.contains(&refresh) && !r.stderr.contains(&refresh));

    // A token file others can read is refused.
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut c = bin();
    c.args(["upload", &d, "--to", "/Photos"]);
    env(&mut c);
    let r = run_cmd(c);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("readable by other users"), "{}", r.stderr);
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();

    // logout: revoked at Dropbox, file deleted, and the next upload says to log in.
    let mut c = bin();
    c.arg("logout");
    env(&mut c);
    let r = run_cmd(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!token_file.exists());
    assert_eq!(calls(&emu, "/2/auth/token/revoke"), 1);
    let mut c = bin();
    c.args(["upload", &d, "--to", "/Photos"]);
    env(&mut c);
    let r = run_cmd(c);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("photoferry login"), "{}", r.stderr);
}

/// One run per DIR: a second `upload` (or an `organize`) while an upload runs is refused with
/// the first one's pid; after the first is killed, the lock is gone (an OS lock, never stale).
#[test]
fn a_second_run_on_the_same_dir_is_refused_and_a_killed_run_leaves_no_lock() {
    let files: Vec<(String, Vec<u8>)> = (0..20).map(|i| (format!("2020/IMG_{i:04}.JPG"), bytes(400 + i, 2000))).collect();
    let refs: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    let rig = rig(&refs);
    let emu = Emulator::start(Config::default()).unwrap();
    for n in 1..=40 {
        emu.inject(Fault { route: "*".into(), nth: n, kind: FaultKind::Latency(Duration::from_millis(100)) });
    }
    let d = rig.dir.to_string_lossy().into_owned();
    let mut first = cmd(&emu, &rig.config, &["upload", &d, "--to", "/Photos", "--transfers", "1"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    assert!(wait_until(Duration::from_secs(30), || calls(&emu, "/2/files/upload_session/start") >= 1), "the first upload never started sending");

    let second = upload(&emu, &rig.config, &rig.dir, &[]);
    assert_eq!(second.code, 2, "{}", second.stderr);
    assert!(second.stderr.contains(&format!("pid {}", first.id())) && second.stderr.contains("already working on"), "{}", second.stderr);
    let inp = rig.dir.parent().unwrap().join("more");
    std::fs::create_dir_all(&inp).unwrap();
    let (code, _, stderr) = common::run(&["organize", &inp.to_string_lossy(), "--out", &d], None);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("already working on"), "{stderr}");

    first.kill().unwrap();
    first.wait().unwrap();
    let r = upload(&emu, &rig.config, &rig.dir, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(emu.files().len(), 20);
}

/// verify needs something to compare: a folder photoferry never organized is refused (exit 2)
/// and left as it was, unless Dropbox is the other side.
#[test]
fn verify_of_a_folder_never_organized_is_refused_and_writes_nothing() {
    let files = vec![("a.jpg", bytes(70, 100))];
    let rig = rig(&files);
    let emu = Emulator::start(Config::default()).unwrap();
    let d = rig.dir.to_string_lossy().into_owned();
    let v = run_cmd(cmd(&emu, &rig.config, &["verify", &d]));
    assert_eq!(v.code, 2, "{}\n{}", v.stdout, v.stderr);
    assert!(v.stderr.contains("not an organized folder"), "{}", v.stderr);
    assert!(!rig.dir.join(".photoferry").exists(), "verify created state in a folder it only reads");
    // With Dropbox on the other side it compares disk and Dropbox: missing there is a difference.
    let v = run_cmd(cmd(&emu, &rig.config, &["verify", &d, "--dropbox", "/Photos"]));
    assert_eq!(v.code, 1, "{}\n{}", v.stdout, v.stderr);
    assert!(v.stdout.contains("a.jpg"), "{}", v.stdout);
}

/// What upload cannot send is named and skipped; the rest goes up: a symbolic link (never
/// followed, even when it points outside DIR) and a dangling one.
#[test]
fn links_in_the_tree_are_named_and_not_sent_and_the_rest_goes_up() {
    let files = vec![("2021/a.jpg", bytes(80, 500))];
    let rig = rig(&files);
    let outside = rig.dir.parent().unwrap().join("secret.txt");
    std::fs::write(&outside, b"not a photo").unwrap();
    std::os::unix::fs::symlink(&outside, rig.dir.join("2021/link.jpg")).unwrap();
    std::os::unix::fs::symlink(rig.dir.join("nowhere.jpg"), rig.dir.join("2021/dangling.jpg")).unwrap();
    let emu = Emulator::start(Config::default()).unwrap();
    let r = upload(&emu, &rig.config, &rig.dir, &[]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let left: Vec<String> = r.json()["left_out"].as_array().unwrap().iter().map(|l| format!("{} {}", l[0].as_str().unwrap(), l[1].as_str().unwrap())).collect();
    assert_eq!(left, ["2021/dangling.jpg symbolic link, not followed", "2021/link.jpg symbolic link, not followed"]);
    assert_eq!(remote(&emu).keys().collect::<Vec<_>>(), ["/Photos/2021/a.jpg"]);
}
