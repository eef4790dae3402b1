//! iCloud semantics, one regression test per trap: Live Photo pairs (crossed names, shared
//! identifiers, `_HEVC`, stripped metadata), counter wraps, case and Unicode collisions, album
//! names, year boundaries, and broken catalog CSVs. Real files come from ../shared/media; the
//! rest is synthesized by `fixtures/gen.rs`.

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::{blake3_hex, gen, paths, run, shared_media};

fn organize(args: &[&str]) -> (i32, serde_json::Value, String) {
    let mut a = vec!["organize", "--json"];
    a.extend_from_slice(args);
    let (code, stdout, stderr) = run(&a, None);
    let v = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    (code, v, stderr)
}

/// BLAKE3 → destinations.
fn dests(report: &serde_json::Value) -> HashMap<String, Vec<String>> {
    let mut m: HashMap<String, Vec<String>> = HashMap::new();
    for p in report["plan"].as_array().unwrap() {
        m.entry(p["blake3"].as_str().unwrap().into()).or_default().push(p["dest"].as_str().unwrap().into());
    }
    m
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

#[test]
fn crossed_real_live_photo_pairs_pair_by_identifier_not_by_name() {
    let Some(media) = shared_media() else { return };
    let t = tempfile::tempdir().unwrap();
    let inp = t.path().join("in");
    std::fs::create_dir_all(&inp).unwrap();
    let read = |p: &str| std::fs::read(media.join(p)).unwrap();
    let (a_still, a_video) = (read("osxphotos/IMG_4394.HEIC"), read("osxphotos/IMG_4394.mov"));
    let (b_still, b_video) = (read("osxphotos/IMG_4580.HEIC"), read("osxphotos/IMG_4580.mov"));
    // Stems cross: IMG_0001.HEIC is pair A's still but IMG_0001.MOV is pair B's video.
    std::fs::write(inp.join("IMG_0001.HEIC"), &a_still).unwrap();
    std::fs::write(inp.join("IMG_0001.MOV"), &b_video).unwrap();
    std::fs::write(inp.join("IMG_0001 (1).HEIC"), &b_still).unwrap();
    std::fs::write(inp.join("IMG_0001 (1).MOV"), &a_video).unwrap();
    let out = t.path().join("out");
    let (code, report, stderr) = organize(&[&s(&inp), "--out", &s(&out)]);
    assert_eq!(code, 0, "{stderr}");
    let d = dests(&report);
    assert_eq!(d[&blake3_hex(&a_still)], vec!["2025/IMG_0001.HEIC"]);
    assert_eq!(d[&blake3_hex(&a_video)], vec!["2025/IMG_0001.MOV"]);
    assert_eq!(d[&blake3_hex(&b_still)], vec!["2025/IMG_0001 (1).HEIC"]);
    assert_eq!(d[&blake3_hex(&b_video)], vec!["2025/IMG_0001 (1).MOV"]);
    // The same pair in a second input still pairs (within each) and is written once.
    let inp2 = t.path().join("again");
    std::fs::create_dir_all(&inp2).unwrap();
    std::fs::write(inp2.join("IMG_4394.HEIC"), &a_still).unwrap();
    std::fs::write(inp2.join("IMG_4394.mov"), &a_video).unwrap();
    let (code, report, _) = organize(&[&s(&inp), &s(&inp2), "--out", &s(&out)]);
    assert_eq!(code, 0);
    assert_eq!(report["totals"]["written"], 0);
    assert_eq!(report["totals"]["duplicates"], 2);
}

#[test]
fn every_real_pair_lands_together_in_a_privacy_export_with_albums() {
    let Some(media) = shared_media() else { return };
    let t = tempfile::tempdir().unwrap();
    let index = std::fs::read_to_string(media.join("INDEX.tsv")).unwrap();
    let part = "iCloud-bilder Del 1 av 1"; // a localized part name: recognized by content
    let mut entries: Vec<(String, Vec<u8>, gen::Store)> = Vec::new();
    for line in index.lines().skip(1) {
        let p = line.split('\t').next().unwrap();
        if p.ends_with(".csv") {
            continue;
        }
        entries.push((format!("{part}/Photos/{p}"), std::fs::read(media.join(p)).unwrap(), gen::Store::Stored));
    }
    entries.push((format!("{part}/Photos/Photo Details.csv"), b"imgName,fileChecksum,favorite,hidden,deleted,originalCreationDate,viewCount,importDate\n".to_vec(), gen::Store::Deflated));
    entries.push((format!("{part}/Photos/Photo Details-1.csv"), Vec::new(), gen::Store::Stored));
    // An album whose file name is NFD in the zip and whose rows name stills of two pairs.
    entries.push((format!("{part}/Albums/Spe\u{301}cial.csv"), b"imgName\nIMG_4394.HEIC\nIMG_7943.HEIC\n".to_vec(), gen::Store::Deflated));
    entries.push((format!("{part}/Albums/Empty.csv"), Vec::new(), gen::Store::Stored));
    let refs: Vec<(&str, Vec<u8>, gen::Store)> = entries.iter().map(|(n, d, st)| (n.as_str(), d.clone(), *st)).collect();
    let zip = t.path().join(format!("{part}.zip"));
    std::fs::write(&zip, gen::zip(&refs, false, false)).unwrap();
    let out = t.path().join("out");
    let (code, report, stderr) = organize(&[&s(&zip), "--out", &s(&out)]);
    assert_eq!(code, 0, "{stderr}");
    let d = dests(&report);
    let pairs = std::fs::read_to_string(media.join("PAIRS.tsv")).unwrap();
    let mut checked = 0;
    let mut check = |still: &str, video: &str| {
        let sd = &d[&blake3_hex(&std::fs::read(media.join(still)).unwrap())];
        let vd = &d[&blake3_hex(&std::fs::read(media.join(video)).unwrap())];
        assert_eq!(sd.len(), vd.len(), "{still}: {sd:?} vs {video}: {vd:?}");
        for (s_dest, v_dest) in sd.iter().zip(vd) {
            let (s_stem, v_stem) = (s_dest.rsplit_once('.').unwrap().0, v_dest.rsplit_once('.').unwrap().0);
            assert_eq!(s_stem, v_stem, "{still} → {s_dest}, {video} → {v_dest}");
        }
        checked += 1;
    };
    for line in pairs.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        check(cols[1], cols[2]);
    }
    // The MOV whose metadata was stripped pairs by name and time.
    check("photokit/test_live.HEIC", "photokit/test_live.mov");
    assert_eq!(checked, 8);
    // The album folder is NFC, holds both stills and their videos (renamed to the still's stem).
    let tree = paths(&out);
    for p in ["2025/Sp\u{e9}cial/IMG_4394.HEIC", "2025/Sp\u{e9}cial/IMG_4394.mov", "2026/Sp\u{e9}cial/IMG_7943.HEIC", "2026/Sp\u{e9}cial/IMG_7943.MOV"] {
        assert!(tree.contains(&p.to_string()), "{p} missing: {tree:?}");
    }
    // Two stills share one identifier and there is no video: neither is paired with the other.
    for p in report["plan"].as_array().unwrap() {
        let src = p["sources"][0].as_str().unwrap();
        if src.ends_with("IMG_2927.HEIC") || src.ends_with("exif-at-eof.heic") {
            assert!(p["role"].is_null(), "{p}");
        }
    }
}

#[test]
fn two_stills_sharing_an_identifier_get_one_video() {
    let Some(media) = shared_media() else { return };
    let t = tempfile::tempdir().unwrap();
    let inp = t.path().join("in");
    std::fs::create_dir_all(&inp).unwrap();
    std::fs::copy(media.join("metadata-extractor-images/IMG_2927.HEIC"), inp.join("IMG_2927.HEIC")).unwrap();
    std::fs::copy(media.join("metadata-extractor-images/exif-at-eof.heic"), inp.join("exif-at-eof.heic")).unwrap();
    let id = "1745E022-9712-43C7-B024-F308EC6413CB";
    let video = gen::mov(7, gen::qt_time(gen::unix(2020, 5, 4, 22, 39, 12)), &[("com.apple.quicktime.content.identifier", id)], false);
    std::fs::write(inp.join("IMG_2927.MOV"), &video).unwrap();
    let out = t.path().join("out");
    let (code, report, _) = organize(&[&s(&inp), "--out", &s(&out)]);
    assert_eq!(code, 0);
    let videos: Vec<&serde_json::Value> = report["plan"].as_array().unwrap().iter().filter(|p| p["role"] == "live-video").collect();
    assert_eq!(videos.len(), 1);
    assert_eq!(videos[0]["companion_of"], "2020/IMG_2927.HEIC");
    assert_eq!(videos[0]["dest"], "2020/IMG_2927.MOV");
}

#[test]
fn counter_wrap_never_overwrites() {
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    for d in [&a, &b] {
        std::fs::create_dir_all(d).unwrap();
    }
    // Same year, different photos; and a third in another year.
    std::fs::write(a.join("IMG_9999.JPG"), gen::jpeg(1, Some("2019:03:01 10:00:00"), None)).unwrap();
    std::fs::write(b.join("IMG_9999.JPG"), gen::jpeg(2, Some("2019:11:01 10:00:00"), None)).unwrap();
    let c = t.path().join("c.zip");
    std::fs::write(&c, gen::zip(&[("IMG_9999.JPG", gen::jpeg(3, Some("2022:01:01 10:00:00"), None), gen::Store::Deflated)], false, false)).unwrap();
    let out = t.path().join("out");
    let (code, _, _) = organize(&[&s(&b), &s(&a), &s(&c), "--out", &s(&out)]);
    assert_eq!(code, 0);
    let files = common::tree(&out);
    assert_eq!(files.keys().cloned().collect::<Vec<_>>(), vec!["2019/IMG_9999 (2).JPG", "2019/IMG_9999.JPG", "2022/IMG_9999.JPG"]);
    // The older photo keeps the plain name, whatever the input order.
    assert_eq!(files["2019/IMG_9999.JPG"], gen::jpeg(1, Some("2019:03:01 10:00:00"), None));
}

#[test]
fn year_boundaries_follow_the_photo_not_utc() {
    let t = tempfile::tempdir().unwrap();
    let inp = t.path().join("in");
    std::fs::create_dir_all(&inp).unwrap();
    std::fs::write(inp.join("NYE.JPG"), gen::jpeg(1, Some("2021:12:31 23:30:00"), Some("-05:00"))).unwrap();
    // Keys say 22:00 on 31 Dec at -08:00; mvhd says 06:00 UTC on 1 Jan. The Keys date wins.
    let mov = gen::mov(2, gen::qt_time(gen::unix(2022, 1, 1, 6, 0, 0)), &[("com.apple.quicktime.creationdate", "2021-12-31T22:00:00-0800")], false);
    std::fs::write(inp.join("NYE.MOV"), mov).unwrap();
    let out = t.path().join("out");
    for tz in ["Pacific/Kiritimati", "Etc/GMT+12"] {
        let _ = std::fs::remove_dir_all(&out);
        let (code, _, stderr) = run(&["organize", &s(&inp), "--out", &s(&out)], Some(tz));
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(paths(&out), vec!["2021/NYE.JPG", "2021/NYE.MOV"], "TZ={tz}");
    }
}

#[test]
fn broken_catalog_csvs_are_warnings_and_good_dates_are_used() {
    let t = tempfile::tempdir().unwrap();
    let p = "iCloud Photos Part 1 of 1";
    let details = "imgName,fileChecksum,favorite,hidden,deleted,originalCreationDate,viewCount,importDate\n\
                   A.JPG,x,yes,no,no,\"Monday March 4,2019 6:07 PM GMT\",1,x\n\
                   B.JPG,x,no,no,no,,1,x\n\
                   C.JPG,x,no,no,no,\"lørdag 4. juni 2022 kl. 12.11\",1,x\n\
                   D.JPG,x,no,no,yes,\"Monday March 4,2019 6:07 PM GMT\",1,x\n";
    let zip = t.path().join("export.zip");
    std::fs::write(
        &zip,
        gen::zip(
            &[
                (&format!("{p}/Photos/A.JPG"), gen::jpeg(1, None, None), gen::Store::Deflated),
                (&format!("{p}/Photos/B.JPG"), gen::jpeg(2, None, None), gen::Store::Deflated),
                (&format!("{p}/Photos/C.JPG"), gen::jpeg(3, None, None), gen::Store::Deflated),
                (&format!("{p}/Photos/D.JPG"), gen::jpeg(4, None, None), gen::Store::Deflated),
                (&format!("{p}/Photos/Photo Details.csv"), details.as_bytes().to_vec(), gen::Store::Deflated),
                (&format!("{p}/Photos/Photo Details-1.csv"), Vec::new(), gen::Store::Stored),
                (&format!("{p}/Photos/Photo Details-2.csv"), b"name,date\nx,y\n".to_vec(), gen::Store::Stored),
                (&format!("{p}/Albums/Empty.csv"), Vec::new(), gen::Store::Stored),
                (&format!("{p}/Albums/Ghosts.csv"), b"Images\nNOT_THERE.JPG\n".to_vec(), gen::Store::Stored),
                (&format!("{p}/Recently Deleted/E.JPG"), gen::jpeg(5, Some("2018:01:01 00:00:00"), None), gen::Store::Stored),
            ],
            false,
            false,
        ),
    )
    .unwrap();
    let out = t.path().join("out");
    let (code, report, stderr) = organize(&[&s(&zip), "--out", &s(&out)]);
    assert_eq!(code, 0, "{stderr}");
    let warnings: Vec<String> = report["warnings"].as_array().unwrap().iter().map(|w| format!("{} {}", w["location"], w["message"])).collect();
    let has = |needles: &[&str]| warnings.iter().any(|w| needles.iter().all(|n| w.contains(n)));
    assert!(has(&["Photo Details.csv line 3", "B.JPG", "empty"]), "{warnings:?}");
    assert!(has(&["Photo Details.csv line 4", "lørdag"]), "{warnings:?}");
    assert!(has(&["Photo Details-2.csv", "no imgName column"]), "{warnings:?}");
    assert!(has(&["Ghosts.csv", "NOT_THERE.JPG"]), "{warnings:?}");
    assert_eq!(warnings.len(), 4, "{warnings:?}");
    let tree = paths(&out);
    // A: the CSV date (no EXIF date); B, C: the zip entry time; D (deleted) and E: skipped.
    assert!(tree.contains(&"2019/A.JPG".to_string()), "{tree:?}");
    assert!(tree.contains(&"2024/B.JPG".to_string()) && tree.contains(&"2024/C.JPG".to_string()), "{tree:?}");
    assert_eq!(tree.len(), 3, "{tree:?}");
    let (_, with_deleted, _) = organize(&[&s(&zip), "--out", &s(&out), "--include-deleted"]);
    assert_eq!(with_deleted["totals"]["written"], 2);
    assert!(paths(&out).contains(&"2018/E.JPG".to_string()));
}

#[test]
fn edits_and_sidecars_travel_with_their_photo_and_no_edits_drops_them() {
    let t = tempfile::tempdir().unwrap();
    let inp = t.path().join("in");
    std::fs::create_dir_all(&inp).unwrap();
    std::fs::write(inp.join("IMG_1234.JPG"), gen::jpeg(1, Some("2019:05:05 10:00:00"), None)).unwrap();
    // The edit carries a later date of its own; it still goes with its original.
    std::fs::write(inp.join("IMG_E1234.JPG"), gen::jpeg(2, Some("2021:05:05 10:00:00"), None)).unwrap();
    std::fs::write(inp.join("IMG_1234.AAE"), b"<?xml version=\"1.0\"?><plist/>").unwrap();
    std::fs::write(inp.join("IMG_O1234.AAE"), b"<?xml version=\"1.0\"?><plist><dict/></plist>").unwrap();
    let out = t.path().join("out");
    let (code, _, _) = organize(&[&s(&inp), "--out", &s(&out), "--album", &format!("Spring={}", s(&inp))]);
    assert_eq!(code, 0);
    assert_eq!(
        paths(&out),
        vec!["2019/Spring/IMG_1234.AAE", "2019/Spring/IMG_1234.JPG", "2019/Spring/IMG_E1234.JPG", "2019/Spring/IMG_O1234.AAE"]
    );
    let out2 = t.path().join("out2");
    let (code, report, _) = organize(&[&s(&inp), "--out", &s(&out2), "--no-edits"]);
    assert_eq!(code, 0);
    assert_eq!(paths(&out2), vec!["2019/IMG_1234.JPG"]);
    assert_eq!(report["totals"]["skipped"], 3);
}

#[test]
fn album_copies_and_once() {
    let t = tempfile::tempdir().unwrap();
    let p = "P";
    let zip = t.path().join("export.zip");
    let id = "ABCDEF01-0000-0000-0000-000000000001";
    std::fs::write(
        &zip,
        gen::zip(
            &[
                (&format!("{p}/Photos/IMG_0001.JPG"), gen::jpeg_live(1, Some("2020:06:01 10:00:00"), None, Some(id)), gen::Store::Deflated),
                (&format!("{p}/Photos/IMG_0001.MOV"), gen::mov(1, 0, &[("com.apple.quicktime.content.identifier", id)], false), gen::Store::Stored),
                (&format!("{p}/Photos/Photo Details.csv"), b"imgName,fileChecksum,favorite,hidden,deleted,originalCreationDate,viewCount,importDate\n".to_vec(), gen::Store::Stored),
                (&format!("{p}/Albums/Beach.csv"), b"Images\nIMG_0001.JPG\n".to_vec(), gen::Store::Stored),
                (&format!("{p}/Albums/Best of: 2020?.csv"), b"imgName\nIMG_0001.JPG\n".to_vec(), gen::Store::Stored),
            ],
            false,
            false,
        ),
    )
    .unwrap();
    let out = t.path().join("out");
    let (code, report, _) = organize(&[&s(&zip), "--out", &s(&out)]);
    assert_eq!(code, 0);
    assert_eq!(
        paths(&out),
        vec!["2020/Beach/IMG_0001.JPG", "2020/Beach/IMG_0001.MOV", "2020/Best of_ 2020_/IMG_0001.JPG", "2020/Best of_ 2020_/IMG_0001.MOV"]
    );
    assert_eq!(report["totals"]["written"], 4);
    let once = t.path().join("once");
    organize(&[&s(&zip), "--out", &s(&once), "--once"]);
    assert_eq!(paths(&once), vec!["2020/Beach/IMG_0001.JPG", "2020/Beach/IMG_0001.MOV"]);
    // explain names the pair and the album.
    let (code, stdout, _) = run(&["explain", &s(&out), "IMG_0001.MOV"], None);
    assert_eq!(code, 0);
    assert!(stdout.contains("Live Photo video: same content identifier ABCDEF01"), "{stdout}");
    assert!(stdout.contains("album    Beach"), "{stdout}");
    assert!(stdout.contains("with     2020/Beach/IMG_0001.JPG (photo)"), "{stdout}");
    let (_, stdout, _) = run(&["explain", &s(&out), "2020/Beach/IMG_0001.JPG"], None);
    assert!(stdout.contains("with     2020/Beach/IMG_0001.MOV (live-video)"), "{stdout}");
    // By input path, too.
    let (code, stdout, _) = run(&["explain", &s(&out), &format!("{}/P/Photos/IMG_0001.JPG", s(&zip))], None);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("2020/Best of_ 2020_/IMG_0001.JPG"), "{stdout}");
    let (code, _, _) = run(&["explain", &s(&out), "nothing-like-this.jpg"], None);
    assert_eq!(code, 1);
}
