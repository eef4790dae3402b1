//! The body of every fuzz target, shared word for word by the cargo-fuzz binaries in this folder
//! (`fuzz_target!(|data: &[u8]| harness::exif(data))`, …) and by the stable integration test
//! `tests/fuzz_regressions.rs`, which replays `fuzz/regressions/<target>/*` through the same
//! functions. Not a fuzz target itself (it has no `[[bin]]` entry in `fuzz/Cargo.toml`).
//!
//! Each function calls the library exactly as the pipeline does on a hostile file and asserts
//! only what the called functions promise (their doc comments); a panic here is a finding.
//! Depends on `photoferry` and `unicode-normalization` only, which both crates have.
#![allow(dead_code)]

use std::io::Cursor;

use photoferry::catalog;
use photoferry::model::{CaptureTime, DateSource};
use photoferry::names;
use photoferry::probe::{exif, quicktime};
use photoferry::source;
use unicode_normalization::{is_nfc, UnicodeNormalization};

/// The names of the targets, as in `fuzz/Cargo.toml` and `fuzz/regressions/<target>/`.
pub const TARGETS: [&str; 4] = ["exif", "quicktime", "csv_dates", "zip_names"];

/// Run `target` on `data` (for the regression test, which loops over the folder names).
pub fn run(target: &str, data: &[u8]) {
    match target {
        "exif" => exif(data),
        "quicktime" => quicktime(data),
        "csv_dates" => csv_dates(data),
        "zip_names" => zip_names(data),
        other => panic!("unknown fuzz target {other:?}"),
    }
}

/// A capture time that went through `to_iso`/`unix_seconds` without panicking and whose offset,
/// when known, is a real UTC offset.
fn sane_capture(ct: &CaptureTime, what: &str) {
    let iso = ct.to_iso();
    assert!(iso.len() >= 23, "{what}: short ISO text {iso:?}");
    let _ = ct.unix_seconds();
    let _ = ct.year();
    if let Some(off) = ct.offset_secs {
        assert!(off.abs() <= 14 * 3600, "{what}: offset {off} s is not a UTC offset");
    }
}

/// Probe target 1: EXIF from an arbitrary container (JPEG, HEIF, TIFF/DNG, PNG, WebP), as
/// `probe::probe` reads HEIC/JPEG/DNG, plus the Apple MakerNote reader on the raw bytes.
pub fn exif(data: &[u8]) {
    match exif::read(&mut Cursor::new(data)) {
        Ok((Some(e), _damage)) => {
            if let Some(ct) = exif::capture_time(&e) {
                sane_capture(&ct, "exif::capture_time");
                assert!(
                    matches!(
                        ct.source,
                        DateSource::ExifDateTimeOriginal | DateSource::ExifDateTimeDigitized | DateSource::ExifDateTime
                    ),
                    "exif::capture_time: source {:?}",
                    ct.source
                );
                // The date parser reads four digits of year and clamps seconds to 59.
                assert!((0..=9999).contains(&ct.year()), "exif::capture_time: year {}", ct.year());
            }
            if let Some(id) = exif::content_identifier(&e) {
                sane_identifier(&id, "exif::content_identifier");
            }
        }
        // `Ok((None, _))` means "no EXIF": there is nothing to be damaged.
        Ok((None, damage)) => assert!(damage.is_none(), "exif::read: no EXIF but damage {damage:?}"),
        Err(err) => {
            let _ = err.to_string();
        }
    }
    if let Some(id) = exif::apple_makernote_string(data, 0x0011) {
        sane_identifier(&id, "exif::apple_makernote_string");
    }
}

/// An Apple MakerNote ASCII value: non-empty, trimmed, at most 4096 bytes (the reader refuses
/// longer counts). NUL padding is trimmed only before the whitespace is, so `"x\0 "` keeps its NUL:
/// nothing promises otherwise, and such an identifier simply pairs with nothing.
fn sane_identifier(id: &str, what: &str) {
    assert!(!id.is_empty(), "{what}: empty identifier");
    assert!(id.len() <= 4096, "{what}: {} bytes", id.len());
    assert_eq!(id, id.trim(), "{what}: untrimmed identifier");
}

/// Probe target 2: the QuickTime/MP4 box reader on a "file" of `data.len()` bytes, what
/// `probe::probe` then asks of its result, and the ISO 8601 parser on the bytes as text.
pub fn quicktime(data: &[u8]) {
    if let Ok(meta) = quicktime::read(&mut Cursor::new(data), data.len() as u64) {
        // "Every reader here is bounded" (src/probe/mod.rs): what it keeps came out of the moov
        // box, so it is at most 3 times the input (a lossily decoded key triples an invalid byte).
        let kept: usize = meta.keys.iter().map(|(k, v)| k.len() + v.len()).sum();
        assert!(kept <= 3 * data.len(), "quicktime::read kept {kept} bytes of Keys metadata from a {}-byte file", data.len());
        if let Some(ct) = meta.capture_time() {
            sane_capture(&ct, "QtMeta::capture_time");
            assert!(
                matches!(ct.source, DateSource::QuickTimeCreationDate | DateSource::QuickTimeMvhd),
                "QtMeta::capture_time: source {:?}",
                ct.source
            );
        }
        if let Some(d) = meta.duration_secs() {
            assert!(d.is_finite() && d >= 0.0, "QtMeta::duration_secs: {d}");
        }
        let _ = meta.content_identifier();
    }
    let text = String::from_utf8_lossy(data);
    if let Some(ct) = quicktime::parse_iso8601(&text) {
        sane_capture(&ct, "quicktime::parse_iso8601");
    }
}

/// Catalog target 3: the `Photo Details` and album/memory CSV parsers and the iCloud date parser.
pub fn csv_dates(data: &[u8]) {
    if let Ok(parsed) = catalog::parse_details(data) {
        for (name, d) in &parsed.rows {
            assert!(!name.is_empty(), "parse_details: empty imgName kept");
            assert!(is_nfc(name), "parse_details: name {name:?} is not NFC");
            if let Some(ct) = &d.created {
                sane_icloud_date(ct, "parse_details");
            }
        }
        for (line, _) in &parsed.problems {
            assert!(*line >= 2, "parse_details: problem on line {line} (the header is line 1)");
        }
    }
    if let Ok(parsed) = catalog::parse_list(data) {
        for name in &parsed.rows {
            assert!(!name.is_empty(), "parse_list: empty name kept");
            assert!(is_nfc(name), "parse_list: name {name:?} is not NFC");
        }
        for (line, _) in &parsed.problems {
            assert!(*line >= 2, "parse_list: problem on line {line}");
        }
    }
    let text = String::from_utf8_lossy(data);
    if let Some(ct) = catalog::parse_icloud_date(&text) {
        sane_icloud_date(&ct, "parse_icloud_date");
    }
}

/// `originalCreationDate`: GMT, minute precision.
fn sane_icloud_date(ct: &CaptureTime, what: &str) {
    sane_capture(ct, what);
    assert_eq!(ct.offset_secs, Some(0), "{what}: not GMT");
    assert_eq!(ct.source, DateSource::CsvOriginalCreationDate, "{what}: source");
    assert!(ct.to_iso().ends_with(":00.000+00:00"), "{what}: not minute precision: {}", ct.to_iso());
}

/// The longest name `safe_component` makes (`MAX_NAME_BYTES` in src/names.rs).
pub const MAX_NAME_BYTES: usize = 240;

/// Names target 4: the zip entry name check, as `source::open_zip` calls it (on the NFC name),
/// and the name helpers the planner builds output paths with.
pub fn zip_names(data: &[u8]) {
    let raw = String::from_utf8_lossy(data);
    let name = names::nfc(&raw);
    for n in [raw.as_ref(), name.as_str()] {
        if source::unsafe_entry_name(n).is_none() {
            // Promise: refused when it climbs out with '..', is absolute, names a drive, or has a NUL.
            assert!(!n.contains('\0'), "unsafe_entry_name accepted a NUL: {n:?}");
            assert!(!n.starts_with('/') && !n.starts_with('\\'), "unsafe_entry_name accepted an absolute name: {n:?}");
            let b = n.as_bytes();
            assert!(!(b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':'), "unsafe_entry_name accepted a drive: {n:?}");
            assert!(!n.split(['/', '\\']).any(|c| c == ".."), "unsafe_entry_name accepted '..': {n:?}");
            // What open_zip does next: the inner path it records never climbs out either.
            let inner = n.replace('\\', "/");
            assert!(!inner.starts_with('/') && !inner.split('/').any(|c| c == ".."), "inner path {inner:?} escapes");
        }
    }

    // nfc: NFC, and idempotent.
    assert!(is_nfc(&name), "nfc({raw:?}) = {name:?} is not NFC");
    assert_eq!(names::nfc(&name), name, "nfc is not idempotent on {raw:?}");

    // collision_key: "NFC, then lower case"; NFD and NFC spellings of a name share one key.
    let key = names::collision_key(&raw);
    assert!(is_nfc(&key), "collision_key({raw:?}) = {key:?} is not NFC");
    let nfd: String = raw.nfd().collect();
    assert_eq!(names::collision_key(&nfd), key, "NFD and NFC of {raw:?} have different collision keys");
    assert_eq!(names::collision_key(&name), key, "nfc({raw:?}) has a different collision key");

    // safe_component's doc: NFC; `/ \ : * ? " < > |` and control characters become `_`; no
    // trailing dot or space; not `.`/`..`; at most MAX_NAME_BYTES bytes (the extension is kept).
    let safe = names::safe_component(&raw);
    assert!(!safe.is_empty(), "safe_component({raw:?}) is empty");
    assert!(
        !safe.chars().any(|c| matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|') || c.is_control()),
        "safe_component({raw:?}) = {safe:?} keeps a refused character"
    );
    assert!(!safe.ends_with('.') && !safe.ends_with(' '), "safe_component({raw:?}) = {safe:?} ends with a dot or space");
    assert!(safe != "." && safe != "..", "safe_component({raw:?}) = {safe:?}");
    assert!(safe.len() <= MAX_NAME_BYTES, "safe_component({raw:?}) is {} bytes (> {MAX_NAME_BYTES}): {safe:?}", safe.len());
    assert!(is_nfc(&safe), "safe_component({raw:?}) = {safe:?} is not NFC");
}
