//! Replays the fuzz inputs kept in `fuzz/regressions/<target>/` through the very functions the
//! cargo-fuzz targets call (`fuzz/fuzz_targets/harness.rs`, included below), on stable, under
//! `cargo test`. See TESTING.md.
//!
//! - `<target>_regressions`: every file in the folder except `bug-*`; the folder must exist and
//!   hold at least one such file, so this can never pass by testing nothing.
//! - `<target>_known_bugs`: the `bug-*` files, inputs on which fuzzing found a real bug in
//!   `src/` that is reported and not fixed yet. These tests FAIL until the bug is fixed; then
//!   rename the file (drop `bug-`) so it guards against the bug coming back.
//! - `<target>_seeds`: hand-made inputs built by `fixtures/gen.rs`, checked for real values
//!   (so the seeds do reach the deep code) and run through the harness.
//! - `write_seed_corpus` (ignored): writes the seeds to `fuzz/corpus/<target>/` to start fuzzing.

#[path = "../fuzz/fuzz_targets/harness.rs"]
mod harness;

#[path = "../fixtures/gen.rs"]
mod gen;

use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use photoferry::{catalog, names, probe, source};

fn folder(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join("regressions").join(target)
}

/// The input files of `target`'s regressions folder, sorted; `bugs` picks the `bug-*` ones.
fn inputs(target: &str, bugs: bool) -> Vec<(String, Vec<u8>)> {
    let dir = folder(target);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e} (the regressions folder must exist)", dir.display()));
    let mut out = Vec::new();
    for e in entries {
        let e = e.unwrap();
        if !e.file_type().unwrap().is_file() {
            continue;
        }
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("bug-") == bugs {
            out.push((name, std::fs::read(e.path()).unwrap()));
        }
    }
    out.sort();
    out
}

/// Run every input through the target; a list of (file, panic message) for those that panicked.
fn replay(target: &str, files: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut failed = Vec::new();
    for (name, data) in files {
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| harness::run(target, data))) {
            let msg = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()));
            failed.push(format!("{target}/{name}: {}", msg.unwrap_or_else(|| "(non-text panic)".into())));
        }
    }
    failed
}

fn regressions(target: &str) {
    let files = inputs(target, false);
    assert!(!files.is_empty(), "{}: no regression inputs (other than bug-*): the folder must not be empty", folder(target).display());
    let failed = replay(target, &files);
    assert!(failed.is_empty(), "{} of {} regression inputs failed:\n{}", failed.len(), files.len(), failed.join("\n"));
    eprintln!("{target}: {} regression inputs replayed", files.len());
}

fn known_bugs(target: &str) {
    let files = inputs(target, true);
    let failed = replay(target, &files);
    assert!(
        failed.is_empty(),
        "REAL BUG in src/ found by fuzzing, reported and not fixed yet (see TESTING.md, \"Findings\"). \
         {} of {} bug-* inputs still fail:\n{}",
        failed.len(),
        files.len(),
        failed.join("\n")
    );
    if !files.is_empty() {
        eprintln!("{target}: {} bug-* inputs pass now: the bug is fixed; rename them (drop 'bug-') to keep them as regressions", files.len());
    }
}

#[test]
fn exif_regressions() {
    regressions("exif");
}
#[test]
fn quicktime_regressions() {
    regressions("quicktime");
}
#[test]
fn csv_dates_regressions() {
    regressions("csv_dates");
}
#[test]
fn zip_names_regressions() {
    regressions("zip_names");
}

#[test]
fn exif_known_bugs() {
    known_bugs("exif");
}
#[test]
fn quicktime_known_bugs() {
    known_bugs("quicktime");
}
#[test]
fn csv_dates_known_bugs() {
    known_bugs("csv_dates");
}
#[test]
fn zip_names_known_bugs() {
    known_bugs("zip_names");
}

#[test]
fn every_target_has_a_folder_and_nothing_else_is_there() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join("regressions");
    let mut found: Vec<String> =
        std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    found.sort();
    let mut want: Vec<String> = harness::TARGETS.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(found, want, "fuzz/regressions/ must hold exactly one folder per fuzz target");
    let manifest = std::fs::read_to_string(root.parent().unwrap().join("Cargo.toml")).unwrap();
    for t in harness::TARGETS {
        assert!(manifest.contains(&format!("name = \"{t}\"")), "fuzz/Cargo.toml has no [[bin]] {t}");
        assert!(root.parent().unwrap().join("fuzz_targets").join(format!("{t}.rs")).is_file());
    }
}

// ---- hand-made seeds --------------------------------------------------------------------------

const LIVE_ID: &str = "E905E6C6-C747-4805-942F-9904A0281F02";

fn ascii(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// SOI, one EXIF APP1 segment, EOI: the smallest JPEG the EXIF reader accepts.
fn tiny_jpeg(tiff: &[u8]) -> Vec<u8> {
    gen::splice_app1(&[0xFF, 0xD8, 0xFF, 0xD9], tiff)
}

fn seeds(target: &str) -> Vec<(&'static str, Vec<u8>)> {
    match target {
        "exif" => vec![
            ("jpeg-live", gen::jpeg_live(1, Some("2021:04:10 11:44:00"), Some("+01:00"), Some(LIVE_ID))),
            (
                "tiny-jpeg-all-dates",
                tiny_jpeg(&gen::tiff(
                    &[(0x0132, 2, ascii("2019:01:02 03:04:05"))],
                    &[
                        (0x9003, 2, ascii("2021:04:10 11:44:00")),
                        (0x9004, 2, ascii("2021-04-10 11:44:01")),
                        (0x9291, 2, ascii("123")),
                        (0x9011, 2, ascii("-0530")),
                        (0x927C, 7, gen::apple_makernote(LIVE_ID)),
                    ],
                )),
            ),
            ("tiny-jpeg-digitized-only", tiny_jpeg(&gen::tiff(&[], &[(0x9004, 2, ascii("2020:02:29 23:59:60")), (0x9012, 2, ascii("Z"))]))),
            ("tiff-datetime", gen::tiff(&[(0x010F, 2, ascii("Apple")), (0x0132, 2, ascii("2015:09:27 16:29:28"))], &[])),
            ("makernote", gen::apple_makernote(LIVE_ID)),
            ("jpeg-no-exif-dates", tiny_jpeg(&gen::tiff(&[(0x010F, 2, ascii("Apple"))], &[]))),
        ],
        "quicktime" => vec![
            (
                "mov-apple-keys",
                gen::mov(
                    1,
                    gen::qt_time(1_661_006_177),
                    &[
                        ("com.apple.quicktime.creationdate", "2020-01-05T14:13:13-0800"),
                        ("com.apple.quicktime.content.identifier", LIVE_ID),
                    ],
                    false,
                ),
            ),
            ("mov-ffmpeg-udta", gen::mov(2, 0, &[("com.apple.quicktime.creationdate", "2023-07-14T10:20:30.5+02:00")], true)),
            ("mov-mvhd-only", gen::mov(3, gen::qt_time(1_689_160_632), &[], false)),
            ("moov-64bit-size", {
                let mut moov = vec![0, 0, 0, 1];
                moov.extend_from_slice(b"moov");
                let body = gen::qbox(b"mvhd", &[1u8; 32]);
                moov.extend_from_slice(&((body.len() + 16) as u64).to_be_bytes());
                moov.extend(body);
                let mut f = gen::qbox(b"ftyp", b"isom");
                f.extend(moov);
                f
            }),
            ("iso8601-text", b"2021-04-10T11:43:59.123+01:00".to_vec()),
        ],
        "csv_dates" => vec![
            (
                "photo-details",
                "\u{feff}imgName,fileChecksum,favorite,hidden,deleted,originalCreationDate,viewCount,importDate\n\
                 IMG_0001.HEIC,abc,yes,no,no,\"Saturday June 4,2022 12:11 PM GMT\",3,x\n\
                 Cafe\u{301}.jpg,def,no,yes,no,,0,x\n\
                 IMG_0003.MOV,ghi,no,no,yes,\"Mar 5, 2019 18:07 UTC\",1,\"Friday October 06,2023 12:11 AM GMT\"\n\
                 \"bad \"\"quote,x\n"
                    .as_bytes()
                    .to_vec(),
            ),
            ("album", b"Images\nIMG_1.JPG\n\nIMG_2.JPG\n".to_vec()),
            ("memory", "imageName\nCafe\u{301}.jpg\n,\n".as_bytes().to_vec()),
            ("date-only", b"Tuesday March 5, 2019 6:07 PM GMT".to_vec()),
        ],
        "zip_names" => vec![
            ("photos-path", b"iCloud Photos Part 1 of 2/Photos/IMG_0001.HEIC".to_vec()),
            ("climb", b"a/../../evil.jpg".to_vec()),
            ("windows", b"C:\\Users\\x\\..\\IMG.JPG".to_vec()),
            ("nfd", "Albums/Cafe\u{301} \u{c5}.jpg".as_bytes().to_vec()),
            ("refused-chars", b"a/b\\c:d*e?f\"g<h>i|j\x01. ".to_vec()),
            ("long", format!("{}.HEIC", "\u{e9}".repeat(200)).into_bytes()),
        ],
        other => panic!("no seeds for {other}"),
    }
}

fn run_seeds(target: &str) {
    for (name, data) in seeds(target) {
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| harness::run(target, &data))) {
            panic!("seed {target}/{name} failed: {:?}", p.downcast_ref::<String>());
        }
    }
}

#[test]
fn exif_seeds() {
    run_seeds("exif");
    let s = seeds("exif");
    // The seeds reach the date and MakerNote code, not just the container parser.
    let (e, damage) = probe::exif::read(&mut Cursor::new(&s[0].1[..])).unwrap();
    let e = e.unwrap();
    assert!(damage.is_none());
    assert_eq!(probe::exif::capture_time(&e).unwrap().to_iso(), "2021-04-10T11:44:00.000+01:00");
    assert_eq!(probe::exif::content_identifier(&e).as_deref(), Some(LIVE_ID));
    let (e, _) = probe::exif::read(&mut Cursor::new(&s[1].1[..])).unwrap();
    let e = e.unwrap();
    assert_eq!(probe::exif::capture_time(&e).unwrap().to_iso(), "2021-04-10T11:44:00.123-05:30");
    assert_eq!(probe::exif::content_identifier(&e).as_deref(), Some(LIVE_ID));
    let (e, _) = probe::exif::read(&mut Cursor::new(&s[2].1[..])).unwrap();
    let ct = probe::exif::capture_time(&e.unwrap()).unwrap();
    assert_eq!((ct.to_iso().as_str(), ct.source), ("2020-02-29T23:59:59.000+00:00", photoferry::model::DateSource::ExifDateTimeDigitized));
    let (e, _) = probe::exif::read(&mut Cursor::new(&s[3].1[..])).unwrap();
    assert_eq!(probe::exif::capture_time(&e.unwrap()).unwrap().to_iso(), "2015-09-27T16:29:28.000");
    assert_eq!(probe::exif::apple_makernote_string(&s[4].1, 0x0011).as_deref(), Some(LIVE_ID));
    let (e, _) = probe::exif::read(&mut Cursor::new(&s[5].1[..])).unwrap();
    assert!(probe::exif::capture_time(&e.unwrap()).is_none());
    assert!(probe::exif::read(&mut Cursor::new(&b"not an image"[..])).is_err());
}

#[test]
fn quicktime_seeds() {
    run_seeds("quicktime");
    let s = seeds("quicktime");
    let read = |b: &[u8]| probe::quicktime::read(&mut Cursor::new(b), b.len() as u64);
    let m = read(&s[0].1).unwrap();
    assert_eq!(m.capture_time().unwrap().to_iso(), "2020-01-05T14:13:13.000-08:00");
    assert_eq!(m.content_identifier(), Some(LIVE_ID));
    assert_eq!(m.duration_secs(), Some(3.0));
    assert_eq!(read(&s[1].1).unwrap().capture_time().unwrap().to_iso(), "2023-07-14T10:20:30.500+02:00");
    assert_eq!(read(&s[2].1).unwrap().capture_time().unwrap().to_iso(), "2023-07-12T11:17:12.000+00:00");
    assert_eq!(read(&s[3].1).unwrap().mvhd_creation, Some(0x0101_0101_0101_0101));
    assert_eq!(probe::quicktime::parse_iso8601(std::str::from_utf8(&s[4].1).unwrap()).unwrap().to_iso(), "2021-04-10T11:43:59.123+01:00");
}

#[test]
fn csv_dates_seeds() {
    run_seeds("csv_dates");
    let s = seeds("csv_dates");
    let d = catalog::parse_details(&s[0].1).unwrap();
    assert_eq!(d.rows.len(), 4);
    assert_eq!(d.rows[1].0, "Caf\u{e9}.jpg");
    assert_eq!(d.rows[2].1.created.unwrap().to_iso(), "2019-03-05T18:07:00.000+00:00");
    assert!(d.rows[2].1.deleted);
    assert_eq!(catalog::parse_list(&s[1].1).unwrap().rows, vec!["IMG_1.JPG", "IMG_2.JPG"]);
    let m = catalog::parse_list(&s[2].1).unwrap();
    assert_eq!(m.rows, vec!["Caf\u{e9}.jpg"]);
    assert_eq!(m.problems.len(), 1);
    assert_eq!(catalog::parse_icloud_date(std::str::from_utf8(&s[3].1).unwrap()).unwrap().to_iso(), "2019-03-05T18:07:00.000+00:00");
}

#[test]
fn zip_names_seeds() {
    run_seeds("zip_names");
    let s = seeds("zip_names");
    let text = |i: usize| String::from_utf8(s[i].1.clone()).unwrap();
    assert!(source::unsafe_entry_name(&text(0)).is_none());
    assert!(source::unsafe_entry_name(&text(1)).is_some());
    assert!(source::unsafe_entry_name(&text(2)).is_some());
    assert_eq!(names::nfc(&text(3)), "Albums/Caf\u{e9} \u{c5}.jpg");
    assert_eq!(names::safe_component(&text(4)), "a_b_c_d_e_f_g_h_i_j_");
    let long = names::safe_component(&text(5));
    assert!(long.len() <= harness::MAX_NAME_BYTES && long.ends_with(".HEIC"));
}

/// `cargo test --test fuzz_regressions -- --ignored write_seed_corpus` writes the seeds to
/// `fuzz/corpus/<target>/seed-<name>` (or under $PHOTOFERRY_FUZZ_CORPUS), for `cargo fuzz run`.
#[test]
#[ignore = "writes files: run by hand before fuzzing (TESTING.md)"]
fn write_seed_corpus() {
    let root = std::env::var_os("PHOTOFERRY_FUZZ_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join("corpus"));
    for t in harness::TARGETS {
        let dir = root.join(t);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, data) in seeds(t) {
            std::fs::write(dir.join(format!("seed-{name}")), data).unwrap();
        }
        eprintln!("wrote {} seeds to {}", seeds(t).len(), dir.display());
    }
}
