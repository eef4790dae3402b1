//! A generated corpus of hostile inputs (broken archives, escaping names, damaged media
//! headers, malformed CSVs, impossible names). Each case is organized on its own, next to one
//! good photo, and must: end with the expected exit status, say which file and what is wrong,
//! never panic or hang, write nothing outside DIR, leave the inputs untouched, and still
//! organize the good photo.

mod common;

use std::collections::BTreeMap;
use std::io::{Cursor, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{bin, blake3_hex, gen};
use gen::{RawEntry, Store};

type Files = Vec<(String, Vec<u8>)>;

struct Case {
    name: &'static str,
    files: Files,
    /// The exit status: 0 (handled quietly, e.g. skipped or kept) or 1 (a file error).
    code: i32,
    /// Strings that must all appear on one stderr line (empty: no requirement).
    says: &'static [&'static str],
    /// Files (relative to DIR) that must exist afterwards, besides the good photo.
    writes: &'static [&'static str],
}

fn case(name: &'static str, files: Files, code: i32, says: &'static [&'static str], writes: &'static [&'static str]) -> Case {
    Case { name, files, code, says, writes }
}

fn one(path: &str, bytes: Vec<u8>) -> Files {
    vec![(path.to_string(), bytes)]
}

fn jpg(seed: u32) -> Vec<u8> {
    gen::jpeg(seed, Some("2019:05:06 07:08:09"), Some("+02:00"))
}

fn zip_of(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let e: Vec<(&str, Vec<u8>, Store)> = entries.iter().map(|(n, b)| (*n, b.clone(), Store::Deflated)).collect();
    gen::zip(&e, false, false)
}

fn raw(entries: Vec<RawEntry>) -> Vec<u8> {
    gen::raw_zip(&entries)
}

/// A zip with one symlink entry (unix mode 120777) and one ordinary photo.
fn symlink_zip() -> Vec<u8> {
    use zip::write::SimpleFileOptions;
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    w.add_symlink("link.jpg", "/etc/passwd", SimpleFileOptions::default()).unwrap();
    w.add_symlink("up.jpg", "../../../../outside.jpg", SimpleFileOptions::default()).unwrap();
    w.start_file("IMG_0100.JPG", SimpleFileOptions::default()).unwrap();
    w.write_all(&jpg(100)).unwrap();
    w.finish().unwrap().into_inner()
}

/// A zip64 archive of 70,000 entries (more than a 16-bit count holds): tiny text files and one
/// photo at the very end.
fn zip64_70k() -> Vec<u8> {
    use zip::write::SimpleFileOptions;
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let o = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..70_000 {
        w.start_file(format!("notes/{i}.txt"), o).unwrap();
        w.write_all(b"x").unwrap();
    }
    w.start_file("IMG_7000.JPG", o).unwrap();
    w.write_all(&jpg(7000)).unwrap();
    w.finish().unwrap().into_inner()
}

/// Big-endian TIFF with IFD0 = the given raw entries (tag, type, count, value/offset) and a next
/// IFD pointer.
fn raw_tiff(entries: &[(u16, u16, u32, u32)], next: u32) -> Vec<u8> {
    let mut v = b"MM\0\x2a\0\0\0\x08".to_vec();
    v.extend_from_slice(&(entries.len() as u16).to_be_bytes());
    for (tag, ty, count, val) in entries {
        v.extend_from_slice(&tag.to_be_bytes());
        v.extend_from_slice(&ty.to_be_bytes());
        v.extend_from_slice(&count.to_be_bytes());
        v.extend_from_slice(&val.to_be_bytes());
    }
    v.extend_from_slice(&next.to_be_bytes());
    v
}

fn with_exif(seed: u32, tiff: &[u8]) -> Vec<u8> {
    gen::splice_app1(&gen::jpeg(seed, None, None), tiff)
}

/// A movie with a hostile box appended inside `moov` or at the top level.
fn mov_ok(seed: u32) -> Vec<u8> {
    gen::mov(seed, gen::qt_time(gen::unix(2019, 5, 6, 5, 8, 9)), &[("com.apple.quicktime.creationdate", "2019-05-06T07:08:09+0200")], false)
}

fn header(size: u32, kind: &[u8; 4]) -> Vec<u8> {
    let mut v = size.to_be_bytes().to_vec();
    v.extend_from_slice(kind);
    v
}

/// A privacy-export part folder with the given `Photo Details.csv` and one photo it describes.
fn export_with_csv(csv: &[u8]) -> Files {
    vec![
        ("part/Photos/Photo Details.csv".into(), csv.to_vec()),
        ("part/Photos/IMG_0500.JPG".into(), gen::jpeg(500, None, None)),
    ]
}

fn export_with_album(album_file: &str, list: &[u8]) -> Files {
    vec![
        ("part/Photos/Photo Details.csv".into(), b"imgName,fileChecksum,favorite,hidden,deleted,originalCreationDate,viewCount,importDate\n".to_vec()),
        ("part/Photos/IMG_0600.JPG".into(), jpg(600)),
        (format!("part/Albums/{album_file}"), list.to_vec()),
    ]
}

const DETAILS_HEADER: &str = "imgName,fileChecksum,favorite,hidden,deleted,originalCreationDate,viewCount,importDate\n";

fn cases() -> Vec<Case> {
    let good_zip = zip_of(&[("IMG_0001.JPG", jpg(1)), ("IMG_0002.JPG", jpg(2))]);
    let mut bad_crc = RawEntry::new(b"IMG_0003.JPG", jpg(3));
    bad_crc.bad_crc = true;
    let long = format!("{}.JPG", "L".repeat(296));
    let long_zip = raw(vec![RawEntry::new(long.as_bytes(), jpg(40))]);
    let heif_head = {
        let mut ftyp = b"heic".to_vec();
        ftyp.extend_from_slice(&[0, 0, 0, 0]);
        ftyp.extend_from_slice(b"mif1heic");
        gen::qbox(b"ftyp", &ftyp)
    };
    let mut truncated_heic = heif_head.clone();
    truncated_heic.extend_from_slice(&header(4000, b"meta"));
    truncated_heic.extend_from_slice(&[0; 40]);
    let mov = mov_ok(70);
    let mut box0 = mov_ok(71);
    box0.extend_from_slice(&header(0, b"free")); // size 0: "to the end of the file"
    box0.extend_from_slice(&[0; 32]);
    let mut box1 = mov_ok(72);
    box1.extend_from_slice(&header(1, b"free")); // size 1: a 64-bit size follows
    box1.extend_from_slice(&u64::MAX.to_be_bytes());
    let mut box_big = header(0x7fff_fff0, b"moov"); // larger than the file, at the start
    box_big.extend_from_slice(&mov_ok(73));
    let mut box_tiny = mov_ok(74);
    box_tiny.extend_from_slice(&header(3, b"junk")); // smaller than its own header
    let inner3 = zip_of(&[("deep/IMG_0300.JPG", jpg(300))]);
    let inner2 = zip_of(&[("level3.zip", inner3)]);
    let nested3 = zip_of(&[("level2.zip", inner2)]);
    let evil_inner = raw(vec![RawEntry::new(b"../../evil-inner.jpg", jpg(310))]);
    let nested_evil = zip_of(&[("inner.zip", evil_inner)]);
    let mut dup_a = RawEntry::new(b"IMG_0200.JPG", jpg(200));
    dup_a.utf8_flag = true;
    let mut dup_b = RawEntry::new(b"IMG_0200.JPG", jpg(201));
    dup_b.utf8_flag = true;
    let makernote = gen::apple_makernote("9A0E1F34-5B1C-4C2D-8E3F-00000000AAAA");
    let cut_note = gen::tiff(&[], &[(0x9003, 2, b"2019:05:06 07:08:09\0".to_vec()), (0x927C, 7, makernote[..18].to_vec())]);
    let csv_bom = format!("\u{feff}{DETAILS_HEADER}IMG_0500.JPG,abc,no,no,no,\"Saturday June 4,2022 12:11 PM GMT\",0,x\n");

    vec![
        // --- archives ---
        case("truncated zip", one("cut.zip", good_zip[..good_zip.len() / 2].to_vec()), 1, &["cut.zip", "cannot read the zip"], &[]),
        case("zip cut to its first bytes", one("stub.zip", good_zip[..10].to_vec()), 1, &["stub.zip", "cannot read the zip"], &[]),
        case("empty file named .zip", one("empty.zip", Vec::new()), 1, &["empty.zip"], &[]),
        case("not a zip, named .zip", one("fake.zip", b"<html>Service Unavailable</html>".to_vec()), 1, &["fake.zip"], &[]),
        case("bad CRC", one("crc.zip", raw(vec![bad_crc, RawEntry::new(b"IMG_0004.JPG", jpg(4))])), 1, &["crc.zip: IMG_0003.JPG", "not written"], &["2019/IMG_0004.JPG"]),
        case("../ entry", one("dots.zip", raw(vec![RawEntry::new(b"../../escape.jpg", jpg(5))])), 1, &["dots.zip: ../../escape.jpg", "refused"], &[]),
        case("absolute entry", one("abs.zip", raw(vec![RawEntry::new(b"/tmp/abs.jpg", jpg(6))])), 1, &["abs.zip: /tmp/abs.jpg", "absolute"], &[]),
        case("drive letter", one("drive.zip", raw(vec![RawEntry::new(b"C:\\Users\\x.jpg", jpg(7))])), 1, &["drive.zip", "drive letter"], &[]),
        case("backslash traversal", one("bs.zip", raw(vec![RawEntry::new(b"..\\..\\bs.jpg", jpg(8))])), 1, &["bs.zip", "refused"], &[]),
        case("NUL in name", one("nul.zip", raw(vec![RawEntry::new(b"IMG\0_0009.JPG", jpg(9))])), 1, &["nul.zip", "refused"], &[]),
        case("symlink entries", one("links.zip", symlink_zip()), 0, &[], &["2019/IMG_0100.JPG"]),
        case("duplicate entry names, different bytes", one("dup.zip", raw(vec![dup_a, dup_b])), 1, &["dup.zip", "repeat a name", "only the last"], &["2019/IMG_0200.JPG"]),
        case("0-byte entry", one("zero.zip", raw(vec![RawEntry::new(b"IMG_0010.JPG", Vec::new())])), 1, &["zero.zip: IMG_0010.JPG", "empty"], &[]),
        case("0-byte file", one("IMG_0011.JPG", Vec::new()), 1, &["IMG_0011.JPG", "empty"], &[]),
        case("70,000-entry zip64", one("big.zip", zip64_70k()), 0, &[], &["2019/IMG_7000.JPG"]),
        case("CP437 name without the UTF-8 flag", one("cp437.zip", raw(vec![RawEntry::new(b"Fr\x81hst\x81ck.JPG", jpg(12))])), 0, &[], &["2019/Frühstück.JPG"]),
        case("invalid UTF-8 flagged as UTF-8", one("badutf8.zip", raw(vec![{
            let mut e = RawEntry::new(b"IMG_\xff\xfe.JPG", jpg(13));
            e.utf8_flag = true;
            e
        }])), 0, &[], &[]),
        case("zip in a zip in a zip", one("nest.zip", nested3), 0, &[], &["2019/IMG_0300.JPG"]),
        case("../ inside a nested zip", one("nest-evil.zip", nested_evil), 1, &["evil-inner.jpg", "refused"], &[]),
        case("300-character entry name", one("long.zip", long_zip), 0, &[], &[]),
        // --- damaged media with honest extensions ---
        case("garbage .HEIC", one("IMG_0020.HEIC", b"\x00\x01garbage that is no HEIF at all".to_vec()), 1, &["IMG_0020.HEIC", "not written"], &[]),
        case("truncated HEIC", one("IMG_0021.HEIC", truncated_heic), 1, &["IMG_0021.HEIC", "unreadable header", "kept unchanged"], &[]),
        case("HEIF header only", one("IMG_0022.HEIC", heif_head), 0, &[], &[]),
        case("truncated JPEG", one("IMG_0023.JPG", jpg(23)[..300].to_vec()), 0, &[], &["2019/IMG_0023.JPG"]),
        case("garbage .JPG", one("IMG_0024.JPG", vec![0x42; 500]), 1, &["IMG_0024.JPG", "not written"], &[]),
        case("JPEG SOI only", one("IMG_0025.JPG", vec![0xFF, 0xD8]), 1, &["IMG_0025.JPG", "too short", "not written"], &[]),
        case("garbage .MOV", one("IMG_0026.MOV", vec![0x13; 700]), 1, &["IMG_0026.MOV", "not written"], &[]),
        case("truncated MOV", one("IMG_0027.MOV", mov[..mov.len() - 60].to_vec()), 1, &["IMG_0027.MOV", "truncated", "kept unchanged"], &[]),
        case("QuickTime box of size 0", one("IMG_0028.MOV", box0), 0, &[], &["2019/IMG_0028.MOV"]),
        case("QuickTime box of size 1 with a huge 64-bit size", one("IMG_0029.MOV", box1), 0, &[], &["2019/IMG_0029.MOV"]),
        case("QuickTime box larger than the file", one("IMG_0030.MOV", box_big), 1, &["IMG_0030.MOV", "past the end", "kept unchanged"], &[]),
        case("QuickTime box smaller than its header", one("IMG_0031.MOV", box_tiny), 0, &[], &["2019/IMG_0031.MOV"]),
        // Found by fuzzing: a multi-byte character in the fraction of seconds once panicked.
        case("MOV creation date with a non-digit fraction", one("IMG_0038.MOV", gen::mov(38, gen::qt_time(gen::unix(2019, 5, 6, 5, 8, 9)), &[("com.apple.quicktime.creationdate", "2021-04-10T11:43:59.00\u{e9}")], false)), 0, &[], &["2019/IMG_0038.MOV"]),
        case("EXIF IFD that points to itself", one("IMG_0032.JPG", with_exif(32, &raw_tiff(&[(0x8769, 4, 1, 8)], 8))), 1, &["IMG_0032.JPG", "damaged EXIF", "kept unchanged"], &[]),
        case("EXIF offsets out of range", one("IMG_0033.JPG", with_exif(33, &raw_tiff(&[(0x9003, 2, 20, 0xFFFF_FF00), (0x8769, 4, 1, 0x7FFF_FFFF)], 0xFFFF_0000))), 1, &["IMG_0033.JPG", "damaged EXIF", "kept unchanged"], &[]),
        case("EXIF entry count beyond the block", one("IMG_0034.JPG", with_exif(34, &{
            let mut t = raw_tiff(&[], 0);
            t[8..10].copy_from_slice(&0xFFFFu16.to_be_bytes());
            t
        })), 1, &["IMG_0034.JPG", "damaged EXIF", "kept unchanged"], &[]),
        case("truncated MakerNote", one("IMG_0035.JPG", with_exif(35, &cut_note)), 0, &[], &["2019/IMG_0035.JPG"]),
        case("PNG cut after its signature", one("IMG_0036.PNG", b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec()), 1, &["IMG_0036.PNG", "truncated", "kept unchanged"], &[]),
        case("DNG that is a bare TIFF header", one("IMG_0037.DNG", b"II*\0\x08\0\0\0\0\0".to_vec()), 1, &["IMG_0037.DNG", "damaged EXIF", "kept unchanged"], &[]),
        // --- export CSVs ---
        case("CSV missing columns", export_with_csv(b"imgName,favorite\nIMG_0500.JPG,yes\n"), 0, &["Photo Details.csv"], &[]),
        case("CSV with bad quoting", export_with_csv(format!("{DETAILS_HEADER}\"IMG_0500.JPG,abc,\"no\"\"\",no\n\"unterminated").as_bytes()), 0, &["Photo Details.csv"], &[]),
        case("CSV with a BOM", export_with_csv(csv_bom.as_bytes()), 0, &[], &["2022/IMG_0500.JPG"]),
        case("CSV with localized month names", export_with_csv(format!("{DETAILS_HEADER}IMG_0500.JPG,abc,no,no,no,\"samedi juin 4,2022 12:11 PM GMT\",0,x\n").as_bytes()), 0, &[], &["2022/IMG_0500.JPG"]),
        case("CSV with an unreadable date", export_with_csv(format!("{DETAILS_HEADER}IMG_0500.JPG,abc,no,no,no,\"the 4th of Smarch\",0,x\n").as_bytes()), 0, &["IMG_0500.JPG", "originalCreationDate", "cannot be read"], &[]),
        case("CSV that is binary noise", export_with_csv(&[0xFF, 0xFE, 0x00, 0x01, 0x80, 0x81, b'\n', 0x00]), 0, &["Photo Details.csv"], &[]),
        case("album CSV with a bad header", export_with_album("Trip.csv", b"whatever\nIMG_0600.JPG\n"), 0, &["Trip.csv"], &[]),
        // --- album names ---
        case("album name with a colon", export_with_album("Paris: day 1.csv", b"Images\nIMG_0600.JPG\n"), 0, &[], &["2019/Paris_ day 1/IMG_0600.JPG"]),
        case("album name with emoji", export_with_album("\u{1F389} Party.csv", b"Images\nIMG_0600.JPG\n"), 0, &[], &["2019/\u{1F389} Party/IMG_0600.JPG"]),
        case("album name with trailing dots", export_with_album("Trip....csv", b"Images\nIMG_0600.JPG\n"), 0, &[], &["2019/Trip/IMG_0600.JPG"]),
        case("album name with trailing spaces", export_with_album("Trip  .csv", b"Images\nIMG_0600.JPG\n"), 0, &[], &["2019/Trip/IMG_0600.JPG"]),
        case("album name of only dots", export_with_album("...csv", b"Images\nIMG_0600.JPG\n"), 0, &[], &[]),
        case("album name with reserved characters", export_with_album("a<b>c|d?e*f\".csv", b"Images\nIMG_0600.JPG\n"), 0, &[], &["2019/a_b_c_d_e_f_/IMG_0600.JPG"]),
    ]
}

/// Relative path → BLAKE3 of every file under `root`.
fn snapshot(root: &Path) -> BTreeMap<String, String> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| !e.file_type().is_dir())
        .map(|e| (e.path().strip_prefix(root).unwrap().to_string_lossy().into_owned(), blake3_hex(&std::fs::read(e.path()).unwrap_or_default())))
        .collect()
}

fn run_with_timeout(mut c: Command, limit: Duration) -> (i32, String, String) {
    let child = c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn photoferry");
    let id = child.id();
    let t = Instant::now();
    let waiter = std::thread::spawn(move || child.wait_with_output());
    while !waiter.is_finished() {
        if t.elapsed() > limit {
            let _ = Command::new("kill").arg("-9").arg(id.to_string()).status();
            panic!("photoferry hung for more than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let o = waiter.join().unwrap().unwrap();
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn every_hostile_input_is_reported_contained_and_survived() {
    let cases = cases();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let good = gen::jpeg(999, Some("2020:02:02 12:00:00"), Some("+00:00"));
    let mut failures = Vec::new();
    for c in &cases {
        let t = tempfile::tempdir().unwrap();
        let inp = t.path().join("in");
        std::fs::create_dir_all(inp.join("good")).unwrap();
        std::fs::write(inp.join("good/GOOD_0001.JPG"), &good).unwrap();
        for (rel, bytes) in &c.files {
            let p = inp.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, bytes).unwrap();
        }
        let before = snapshot(&inp);
        let out = t.path().join("out");
        let mut cmd = bin();
        cmd.arg("organize").arg(&inp).arg("--out").arg(&out);
        let (code, stdout, stderr) = run_with_timeout(cmd, Duration::from_secs(120));
        let mut why = Vec::new();
        if stderr.contains("panicked") || code == 101 {
            why.push("panicked".to_string());
        }
        if code != c.code {
            why.push(format!("exit {code}, expected {}", c.code));
        }
        if !c.says.is_empty() && !stderr.lines().any(|l| c.says.iter().all(|s| l.contains(s))) {
            why.push(format!("no stderr line with all of {:?}", c.says));
        }
        // Every error line names a file and what was done.
        for l in stderr.lines().filter(|l| l.starts_with("error: ")) {
            if !l.contains(';') {
                why.push(format!("error line without what photoferry did: {l}"));
            }
        }
        if std::fs::read(out.join("2020/GOOD_0001.JPG")).ok().as_deref() != Some(&good[..]) {
            why.push("the good photo was not organized".into());
        }
        for w in c.writes {
            if !out.join(w).is_file() {
                why.push(format!("{w} was not written"));
            }
        }
        if snapshot(&inp) != before {
            why.push("an input changed".into());
        }
        let top: Vec<String> = std::fs::read_dir(t.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        if top.len() != 2 {
            why.push(format!("something was written outside DIR: {top:?}"));
        }
        for e in walkdir::WalkDir::new(&out).into_iter().filter_map(Result::ok) {
            if e.path_is_symlink() {
                why.push(format!("a symlink in DIR: {}", e.path().display()));
            }
        }
        let leftovers: Vec<_> = std::fs::read_dir(out.join(".photoferry/tmp")).map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect()).unwrap_or_default();
        if !leftovers.is_empty() {
            why.push(format!("temp files left behind: {leftovers:?}"));
        }
        if !why.is_empty() {
            let tree: Vec<String> = common::paths(&out);
            failures.push(format!("== {}: {}\nstdout:\n{stdout}\nstderr:\n{stderr}\ntree: {tree:?}", c.name, why.join("; ")));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

/// Album names a user types or a shared album carries can hold anything: `/` (which would make
/// a nested folder or climb out), `:`, emoji, trailing dots and spaces. They become one safe,
/// NFC folder inside the year folder.
#[test]
fn album_names_from_the_command_line_become_one_safe_folder() {
    let t = tempfile::tempdir().unwrap();
    let inp = t.path().join("in");
    std::fs::create_dir_all(&inp).unwrap();
    std::fs::write(inp.join("IMG_0700.JPG"), jpg(700)).unwrap();
    let out = t.path().join("out");
    for (album, folder) in [
        ("../../Paris/Rome: 2019 \u{1F5FC}. ", "_.._Paris_Rome_ 2019 \u{1F5FC}"),
        (".hidden", "hidden"),
        ("Cafe\u{301}...", "Caf\u{e9}"),
    ] {
        let _ = std::fs::remove_dir_all(&out);
        let arg = format!("{album}={}", inp.display());
        let o = bin().arg("organize").arg(&inp).arg("--out").arg(&out).arg("--album").arg(&arg).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        let tree = common::paths(&out);
        assert!(tree.iter().all(|p| p.split('/').count() == 3), "{tree:?}");
        let got = tree.first().map(|p| p.split('/').nth(1).unwrap().to_string());
        // `..` segments collapse into the name: nothing climbs out or nests.
        assert_eq!(got.as_deref(), Some(folder), "{album:?} -> {tree:?}");
        let top: Vec<String> = std::fs::read_dir(t.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert_eq!(top.len(), 2, "{top:?}");
    }
}

/// A pipe given as an input (a FIFO named like a photo, or a shell's `<(…)`) is refused with a
/// clear error instead of blocking the run forever; the other inputs are organized and converted.
#[test]
fn a_pipe_given_as_input_is_refused_not_waited_on() {
    let t = tempfile::tempdir().unwrap();
    let fifo = t.path().join("IMG_0001.HEIC");
    assert!(Command::new("mkfifo").arg(&fifo).status().expect("mkfifo").success());
    let good = t.path().join("good");
    std::fs::create_dir(&good).unwrap();
    std::fs::write(good.join("IMG_0002.JPG"), gen::jpeg(2, Some("2020:01:02 03:04:05"), None)).unwrap();
    for command in ["organize", "convert"] {
        let out = t.path().join(format!("out-{command}"));
        let mut c = bin();
        c.args([command, fifo.to_str().unwrap(), good.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        let (code, stdout, stderr) = run_with_timeout(c, Duration::from_secs(60));
        assert_eq!(code, 1, "{command}: {stdout}\n{stderr}");
        assert!(stderr.contains("IMG_0001.HEIC: not a regular file (a pipe, socket or device); input skipped"), "{command}: {stderr}");
        let written = common::paths(&out).len();
        assert_eq!(written, usize::from(command == "organize"), "{command}: {stdout}");
    }
}
