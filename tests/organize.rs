//! End-to-end tests of `photoferry organize` on generated exports in temp dirs.

mod common;

use std::collections::BTreeSet;

use common::{blake3_hex, gen, paths, run, sample, stat_tree, tree};

#[test]
fn sample_export_becomes_the_expected_tree() {
    let (t, _dir, inputs) = sample();
    let out = t.path().join("out");
    let mut args = vec!["organize"];
    args.extend(inputs.iter().map(String::as_str));
    let out_s = out.to_string_lossy().into_owned();
    args.extend(["--out", &out_s]);
    let (code, stdout, stderr) = run(&args, None);
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(paths(&out), gen::SAMPLE_TREE.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    // The two IMG_0009.JPG are different photos; both survive, the older keeps the name.
    let files = tree(&out);
    assert_ne!(files["2019/IMG_0009.JPG"], files["2019/IMG_0009 (2).JPG"]);
    assert_eq!(files["2019/IMG_0009.JPG"], gen::jpeg(9, Some("2019:06:09 12:00:00"), Some("+02:00")));
    // Names come out NFC (the zip held an NFD "Café.jpg").
    assert!(files.contains_key("2020/Trip/Caf\u{e9}.jpg"));
    // Every written file is byte-identical to an input and carries its capture time as mtime.
    let stats = stat_tree(&out);
    assert_eq!(stats["2021/IMG_0001.JPG"].1, gen::unix(2022, 1, 1, 4, 59, 50)); // 23:59:50-05:00
    assert_eq!(stats["2022/IMG_0002.JPG"].1, gen::unix(2021, 12, 31, 16, 30, 0)); // 00:30+08:00
    assert_eq!(stats["2018/IMG_0500.MOV"].1, gen::unix(2018, 12, 31, 23, 30, 0)); // mvhd, UTC
    assert!(stdout.contains("total         18       16        0           2        8       0"), "{stdout}");
    // Nothing but the tree and the state folder in DIR; no temp files left behind.
    let tmp = out.join(".photoferry/tmp");
    assert_eq!(std::fs::read_dir(&tmp).map(|d| d.count()).unwrap_or(0), 0);
}

#[test]
fn rerun_writes_nothing_and_a_new_zip_adds_only_what_is_new() {
    let (t, dir, inputs) = sample();
    let out = t.path().join("out");
    let out_s = out.to_string_lossy().into_owned();
    let with = |extra: &[&str]| {
        let mut a = vec!["organize", "--json", "--out", &out_s];
        a.extend(extra.iter());
        a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let run_json = |args: Vec<String>| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, stdout, stderr) = run(&refs, None);
        assert_eq!(code, 0, "{stderr}");
        serde_json::from_str::<serde_json::Value>(&stdout).unwrap()
    };
    let input_refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let first = run_json(with(&input_refs));
    assert_eq!(first["totals"]["written"], 16);
    let before = stat_tree(&out);

    let again = run_json(with(&input_refs));
    assert_eq!(again["totals"]["written"], 0);
    assert_eq!(again["totals"]["present"], 16);
    assert_eq!(again["totals"]["duplicates"], 2);
    assert_eq!(stat_tree(&out), before);

    // One more zip: one new photo and one already organized (same bytes as IMG_0002.JPG).
    let extra = dir.join("iCloud Photos (1).zip");
    std::fs::write(
        &extra,
        gen::zip(
            &[
                ("IMG_0777.JPG", gen::jpeg(777, Some("2024:02:02 02:02:02"), None), gen::Store::Deflated),
                ("IMG_0002.JPG", std::fs::read(dir.join("Downloads/IMG_0002.JPG")).unwrap(), gen::Store::Stored),
            ],
            false,
            false,
        ),
    )
    .unwrap();
    let mut all = input_refs.clone();
    let extra_s = extra.to_string_lossy().into_owned();
    all.push(&extra_s);
    let third = run_json(with(&all));
    assert_eq!(third["totals"]["written"], 1);
    assert_eq!(third["totals"]["present"], 16);
    assert_eq!(third["totals"]["duplicates"], 3);
    assert_eq!(paths(&out).len(), 17);
    assert!(out.join("2024/IMG_0777.JPG").is_file());
}

#[test]
fn tree_does_not_depend_on_the_machine_time_zone() {
    let (t, _dir, inputs) = sample();
    let mut trees = Vec::new();
    for (i, tz) in ["Pacific/Kiritimati", "Etc/GMT+12", "UTC"].into_iter().enumerate() {
        let out = t.path().join(format!("out{i}"));
        let out_s = out.to_string_lossy().into_owned();
        let mut args = vec!["organize", "--out", &out_s];
        args.extend(inputs.iter().map(String::as_str));
        let (code, _, stderr) = run(&args, Some(tz));
        assert_eq!(code, 0, "{stderr}");
        trees.push(stat_tree(&out));
    }
    assert_eq!(trees[0], trees[1]);
    assert_eq!(trees[0], trees[2]);
    assert!(trees[0].contains_key("2021/IMG_0001.JPG"));
}

#[test]
fn inputs_are_never_modified() {
    let (t, dir, inputs) = sample();
    let snapshot = || {
        walkdir::WalkDir::new(&dir)
            .into_iter()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().is_file())
            .map(|e| {
                let m = e.metadata().unwrap();
                (e.path().to_path_buf(), blake3_hex(&std::fs::read(e.path()).unwrap()), m.modified().unwrap())
            })
            .collect::<Vec<_>>()
    };
    let before = snapshot();
    let out = t.path().join("out");
    let out_s = out.to_string_lossy().into_owned();
    let mut args = vec!["organize", "--out", &out_s];
    args.extend(inputs.iter().map(String::as_str));
    assert_eq!(run(&args, None).0, 0);
    assert_eq!(snapshot(), before);
}

#[test]
fn dry_run_prints_the_plan_and_writes_nothing() {
    let (t, _dir, inputs) = sample();
    let out = t.path().join("out");
    let out_s = out.to_string_lossy().into_owned();
    let mut args = vec!["organize", "--dry-run", "--out", &out_s];
    args.extend(inputs.iter().map(String::as_str));
    let (code, stdout, stderr) = run(&args, None);
    assert_eq!(code, 0, "{stderr}");
    assert!(!out.exists(), "dry run created {}", out.display());
    assert!(stdout.contains("write   2019/IMG_0009 (2).JPG  <- "), "{stdout}");
    assert!(stdout.contains("[2021-12-31T23:59:50.000-05:00 from exif:DateTimeOriginal]"), "{stdout}");
    assert!(stdout.contains("[2018-12-31T23:30:00.000+00:00 from quicktime:mvhd]"), "{stdout}");
    assert!(stdout.contains("(same bytes: "), "{stdout}");
}

/// A zip cut in half, a zip with a `../` entry, an absolute path, a bad CRC, a garbage `.HEIC`
/// and a JPEG whose EXIF header is broken: each is reported by name, every good file still
/// lands, nothing lands outside DIR, and the exit code is 1.
#[test]
fn bad_inputs_are_reported_and_the_run_goes_on() {
    let t = tempfile::tempdir().unwrap();
    let inp = t.path().join("in");
    std::fs::create_dir_all(&inp).unwrap();
    let good = gen::zip(
        &[
            ("IMG_0001.JPG", gen::jpeg(1, Some("2020:01:01 10:00:00"), None), gen::Store::Deflated),
            ("IMG_0002.JPG", gen::jpeg(2, Some("2020:01:02 10:00:00"), None), gen::Store::Deflated),
        ],
        false,
        false,
    );
    std::fs::write(inp.join("truncated.zip"), &good[..good.len() / 2]).unwrap();
    let mut bad_crc = gen::RawEntry::new(b"crc/IMG_0003.JPG", gen::jpeg(3, Some("2020:01:03 10:00:00"), None));
    bad_crc.bad_crc = true;
    let hostile = gen::raw_zip(&[
        gen::RawEntry::new(b"../escape.jpg", gen::jpeg(4, Some("2020:01:04 10:00:00"), None)),
        gen::RawEntry::new(b"/etc/abs.jpg", gen::jpeg(5, Some("2020:01:05 10:00:00"), None)),
        gen::RawEntry::new(b"C:\\drive.jpg", gen::jpeg(6, Some("2020:01:06 10:00:00"), None)),
        bad_crc,
        gen::RawEntry::new(b"ok/IMG_0007.JPG", gen::jpeg(7, Some("2020:01:07 10:00:00"), None)),
    ]);
    std::fs::write(inp.join("hostile.zip"), hostile).unwrap();
    std::fs::write(inp.join("IMG_0666.HEIC"), b"<html>404 Not Found</html>").unwrap();
    // A JPEG whose APP1 claims EXIF but holds a TIFF header with a wild IFD offset.
    let broken = gen::splice_app1(&gen::jpeg(8, None, None)[..], b"MM\0\x2a\xff\xff\xff\xf0");
    std::fs::write(inp.join("IMG_0008.JPG"), broken).unwrap();
    std::fs::write(inp.join("IMG_0009.JPG"), gen::jpeg(9, Some("2021:01:01 10:00:00"), None)).unwrap();
    std::fs::write(inp.join("empty.JPG"), b"").unwrap();

    let out = t.path().join("out");
    let out_s = out.to_string_lossy().into_owned();
    let inp_s = inp.to_string_lossy().into_owned();
    let (code, stdout, stderr) = run(&["organize", &inp_s, "--out", &out_s], None);
    assert_eq!(code, 1, "stdout:\n{stdout}\nstderr:\n{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error: ")).collect();
    let has = |needles: &[&str]| lines.iter().any(|l| needles.iter().all(|n| l.contains(n)));
    assert!(has(&["truncated.zip", "cannot read the zip"]), "{stderr}");
    assert!(has(&["hostile.zip: ../escape.jpg", "unsafe entry name", "refused"]), "{stderr}");
    assert!(has(&["hostile.zip: /etc/abs.jpg", "absolute path"]), "{stderr}");
    assert!(has(&["hostile.zip: C:\\drive.jpg", "drive letter"]), "{stderr}");
    assert!(has(&["hostile.zip: crc/IMG_0003.JPG", "read failed", "not written"]), "{stderr}");
    assert!(has(&["IMG_0666.HEIC", "content is not HEIF", "not written"]), "{stderr}");
    assert!(has(&["IMG_0008.JPG", "kept unchanged"]), "{stderr}");
    assert!(has(&["empty.JPG", "empty"]), "{stderr}");
    assert_eq!(lines.len(), 8, "{stderr}");

    let got: BTreeSet<String> = paths(&out).into_iter().collect();
    for p in ["2020/IMG_0007.JPG", "2021/IMG_0009.JPG"] {
        assert!(got.contains(p), "{p} missing from {got:?}");
    }
    // The JPEG with a broken EXIF header is kept (dated by file time); the text file named
    // .HEIC, the empty file, the bad-CRC and the refused entries are not written.
    assert!(got.iter().any(|p| p.ends_with("/IMG_0008.JPG")), "{got:?}");
    assert!(!got.iter().any(|p| p.ends_with("IMG_0666.HEIC")), "{got:?}");
    assert_eq!(got.len(), 3, "{got:?}");
    // Nothing escaped: the only things beside `in` and `out` in the temp dir are what we made.
    let top: BTreeSet<String> = std::fs::read_dir(t.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(top, BTreeSet::from(["in".to_string(), "out".to_string()]));
    assert!(!t.path().join("escape.jpg").exists());
}

#[test]
fn foreign_files_in_dir_are_never_overwritten_and_identical_ones_are_adopted() {
    let t = tempfile::tempdir().unwrap();
    let inp = t.path().join("in");
    std::fs::create_dir_all(&inp).unwrap();
    let mine = gen::jpeg(1, Some("2020:05:05 10:00:00"), None);
    let same = gen::jpeg(2, Some("2020:05:06 10:00:00"), None);
    std::fs::write(inp.join("IMG_0001.JPG"), &mine).unwrap();
    std::fs::write(inp.join("IMG_0002.JPG"), &same).unwrap();
    let out = t.path().join("out");
    std::fs::create_dir_all(out.join("2020")).unwrap();
    // Someone else's img_0001.jpg (other bytes, other case) and an identical IMG_0002.JPG.
    std::fs::write(out.join("2020/img_0001.jpg"), b"not yours").unwrap();
    std::fs::write(out.join("2020/IMG_0002.JPG"), &same).unwrap();
    let (out_s, inp_s) = (out.to_string_lossy().into_owned(), inp.to_string_lossy().into_owned());
    let (code, stdout, stderr) = run(&["organize", &inp_s, "--out", &out_s, "--json"], None);
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let files = tree(&out);
    assert_eq!(files["2020/img_0001.jpg"], b"not yours");
    assert_eq!(files["2020/IMG_0001 (2).JPG"], mine);
    assert_eq!(files.len(), 3);
    let actions: Vec<(String, String)> = report["plan"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["dest"].as_str().unwrap().to_string(), p["action"].as_str().unwrap().to_string()))
        .collect();
    assert!(actions.contains(&("2020/IMG_0002.JPG".into(), "adopt".into())), "{actions:?}");
    assert!(actions.contains(&("2020/IMG_0001 (2).JPG".into(), "write".into())), "{actions:?}");
}

#[test]
fn a_second_organize_on_the_same_dir_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("out");
    let state = out.join(".photoferry");
    std::fs::create_dir_all(&state).unwrap();
    let _held = photoferry::fsutil::Lock::acquire(&state, &out).unwrap();
    let inp = t.path().join("in");
    std::fs::create_dir_all(&inp).unwrap();
    std::fs::write(inp.join("a.jpg"), gen::jpeg(1, None, None)).unwrap();
    let (out_s, inp_s) = (out.to_string_lossy().into_owned(), inp.to_string_lossy().into_owned());
    let (code, _, stderr) = run(&["organize", &inp_s, "--out", &out_s], None);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("already working on"), "{stderr}");
    assert!(paths(&out).is_empty());
}

#[test]
fn a_lost_manifest_is_rebuilt_by_adopting_what_is_on_disk() {
    let (t, _dir, inputs) = sample();
    let out = t.path().join("out");
    let out_s = out.to_string_lossy().into_owned();
    let mut args = vec!["organize", "--json", "--out", &out_s];
    args.extend(inputs.iter().map(String::as_str));
    assert_eq!(run(&args, None).0, 0);
    let before = stat_tree(&out);
    // As if a run was killed after placing files but before recording them.
    for f in ["manifest.sqlite", "manifest.sqlite-wal", "manifest.sqlite-shm"] {
        let _ = std::fs::remove_file(out.join(".photoferry").join(f));
    }
    let (code, stdout, _) = run(&args, None);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["totals"]["written"], 0);
    assert_eq!(v["totals"]["present"], 16);
    assert_eq!(stat_tree(&out), before);
}

#[test]
fn layout_template_is_honoured_and_validated() {
    let (t, _dir, inputs) = sample();
    let out = t.path().join("out");
    let out_s = out.to_string_lossy().into_owned();
    let mut args = vec!["organize", "--layout", "{year}/{month}/{name}", "--out", &out_s];
    args.extend(inputs.iter().map(String::as_str));
    assert_eq!(run(&args, None).0, 0);
    let p = paths(&out);
    assert!(p.contains(&"2021/12/IMG_0001.JPG".to_string()), "{p:?}");
    assert!(p.contains(&"2016/05/pict0008 (2).jpg".to_string()), "{p:?}");
    let (code, _, stderr) = run(&["organize", "x", "--layout", "{year}", "--out", &out_s], None);
    assert_eq!(code, 2);
    assert!(stderr.contains("invalid --layout"), "{stderr}");
}

#[test]
fn organizing_a_folder_into_a_subfolder_of_itself_never_reads_its_own_output() {
    let t = tempfile::tempdir().unwrap();
    let pics = t.path().join("Pictures");
    std::fs::create_dir_all(&pics).unwrap();
    std::fs::write(pics.join("IMG_0001.JPG"), gen::jpeg(1, Some("2020:01:01 10:00:00"), None)).unwrap();
    let out = pics.join("organized");
    let (pics_s, out_s) = (pics.to_string_lossy().into_owned(), out.to_string_lossy().into_owned());
    for round in 0..2 {
        let (code, stdout, stderr) = run(&["organize", &pics_s, "--out", &out_s, "--json"], None);
        assert_eq!(code, 0, "{stderr}");
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(v["totals"]["found"], 1, "round {round}: {}", v["totals"]);
        assert_eq!(v["totals"]["written"], if round == 0 { 1 } else { 0 });
    }
    assert_eq!(paths(&out), vec!["2020/IMG_0001.JPG".to_string()]);
}

#[test]
fn a_missing_input_or_an_out_that_is_a_file_stops_before_writing() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("out");
    let out_s = out.to_string_lossy().into_owned();
    let (code, _, stderr) = run(&["organize", "/no/such/dir", "--out", &out_s], None);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("none of the inputs exists: /no/such/dir"), "{stderr}");
    assert!(!out.exists());
    let file = t.path().join("afile");
    std::fs::write(&file, b"x").unwrap();
    let (code, _, stderr) = run(&["organize", &t.path().to_string_lossy(), "--out", &file.to_string_lossy()], None);
    assert_eq!(code, 2);
    assert!(stderr.contains("is a file, not a folder"), "{stderr}");
}

#[test]
fn the_same_input_twice_is_read_once() {
    let t = tempfile::tempdir().unwrap();
    let inp = t.path().join("in");
    std::fs::create_dir_all(&inp).unwrap();
    std::fs::write(inp.join("IMG_0001.JPG"), gen::jpeg(1, Some("2020:01:01 10:00:00"), None)).unwrap();
    let out = t.path().join("out");
    let (inp_s, out_s) = (inp.to_string_lossy().into_owned(), out.to_string_lossy().into_owned());
    let (code, stdout, _) = run(&["organize", &inp_s, &inp_s, "--out", &out_s, "--json"], None);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["totals"]["found"], 1);
    assert_eq!(v["totals"]["duplicates"], 0);
}

#[test]
fn hash_prints_the_blake3_the_manifest_records() {
    let t = tempfile::tempdir().unwrap();
    let inp = t.path().join("in");
    std::fs::create_dir_all(&inp).unwrap();
    let photo = gen::jpeg(77, Some("2020:01:01 10:00:00"), None);
    std::fs::write(inp.join("IMG_0077.JPG"), &photo).unwrap();
    let out = t.path().join("out");
    let (code, _, stderr) = run(&["organize", &inp.to_string_lossy(), "--out", &out.to_string_lossy()], None);
    assert_eq!(code, 0, "{stderr}");
    let placed = out.join("2020/IMG_0077.JPG");
    let (code, stdout, _) = run(&["hash", &placed.to_string_lossy()], None);
    assert_eq!(code, 0);
    assert_eq!(stdout, format!("{}  {}\n", blake3::hash(&photo).to_hex(), placed.display()));
    let db = rusqlite::Connection::open(out.join(".photoferry/manifest.sqlite")).unwrap();
    let recorded: String = db.query_row("SELECT blake3 FROM files WHERE path = '2020/IMG_0077.JPG'", [], |r| r.get(0)).unwrap();
    assert!(stdout.starts_with(&recorded));
    let (code, _, stderr) = run(&["hash", &t.path().join("missing.jpg").to_string_lossy()], None);
    assert_eq!(code, 1);
    assert!(stderr.contains("missing.jpg"), "{stderr}");
}
