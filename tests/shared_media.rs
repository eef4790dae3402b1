//! `organize` on the real files in ../shared/media (iPhone HEICs, JPEGs, MOVs, PNGs, AAEs): each
//! file's folder year against exiftool's facts in INDEX.tsv, no BLAKE3 lost, re-runs write
//! nothing, and the same files zipped into a privacy-export layout give the same result.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

use common::{blake3_hex, run, shared_media, tree};

struct Row {
    path: String,
    cols: HashMap<String, String>,
}

fn index(media: &Path) -> Vec<Row> {
    let text = std::fs::read_to_string(media.join("INDEX.tsv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    lines
        .map(|l| {
            let cols: HashMap<String, String> =
                header.iter().zip(l.split('\t')).map(|(h, v)| (h.to_string(), v.to_string())).collect();
            Row { path: cols["local_path"].clone(), cols }
        })
        .collect()
}

/// What exiftool's facts say the year and date source must be, when they say anything.
fn expected(row: &Row) -> Option<(String, &'static str)> {
    let c = |k: &str| row.cols.get(k).map(String::as_str).unwrap_or("");
    let year = |s: &str| s.get(0..4).map(str::to_string);
    if !c("DateTimeOriginal").is_empty() {
        return Some((year(c("DateTimeOriginal"))?, "exif:DateTimeOriginal"));
    }
    if !c("CreationDate").is_empty() {
        return Some((year(c("CreationDate"))?, "quicktime:creationdate"));
    }
    if !c("QT_CreateDate").is_empty() && !c("QT_CreateDate").starts_with("0000") {
        return Some((year(c("QT_CreateDate"))?, "quicktime:mvhd"));
    }
    None
}

fn organize_json(inputs: &[&str], out: &Path) -> serde_json::Value {
    let out_s = out.to_string_lossy().into_owned();
    let mut args = vec!["organize", "--json", "--out", &out_s];
    args.extend(inputs);
    let (code, stdout, stderr) = run(&args, None);
    assert_eq!(code, 0, "organize failed:\n{stderr}");
    serde_json::from_str(&stdout).unwrap()
}

/// BLAKE3 → (destination, date source) from a report's plan.
fn plan_by_hash(report: &serde_json::Value) -> HashMap<String, (String, String)> {
    report["plan"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let src = p["date_source"].as_str().unwrap_or("none").to_string();
            (p["blake3"].as_str().unwrap().to_string(), (p["dest"].as_str().unwrap().to_string(), src))
        })
        .collect()
}

fn check_against_index(media: &Path, report: &serde_json::Value, out: &Path) {
    let plan = plan_by_hash(report);
    let written: HashMap<String, String> =
        tree(out).into_iter().map(|(path, bytes)| (blake3_hex(&bytes), path)).collect();
    let mut checked = 0;
    let mut problems = Vec::new();
    for row in index(media) {
        let kind = row.cols["FileType"].as_str();
        if kind == "CSV" || row.path.ends_with(".csv") {
            continue;
        }
        let bytes = std::fs::read(media.join(&row.path)).unwrap();
        let hash = blake3_hex(&bytes);
        // No BLAKE3 lost: every media file of the input is in the tree, byte for byte.
        let Some(dest) = written.get(&hash) else {
            problems.push(format!("{}: not in the output tree", row.path));
            continue;
        };
        let (planned, source) = &plan[&hash];
        assert_eq!(dest, planned);
        if let Some((year, want_source)) = expected(&row) {
            let got_year = dest.split('/').next().unwrap();
            if got_year != year || source != want_source {
                problems.push(format!("{}: got {dest} from {source}, exiftool says {year} from {want_source}", row.path));
            }
            checked += 1;
        } else if row.cols["note"].contains("XMP DateCreated") && source != "xmp:DateCreated" {
            problems.push(format!("{}: expected the XMP date, got {source}", row.path));
        }
    }
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
    assert!(checked >= 60, "only {checked} files had exiftool dates to check");
}

#[test]
fn shared_media_folder_years_match_exiftool_and_rerun_writes_nothing() {
    let Some(media) = shared_media() else { return };
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("out");
    let media_s = media.to_string_lossy().into_owned();
    let report = organize_json(&[&media_s], &out);
    check_against_index(&media, &report, &out);
    // The AAE sidecar named IMG_O3582 follows IMG_3582.HEIC into its year.
    let files = tree(&out);
    assert!(files.contains_key("2025/IMG_O3582.aae") && files.contains_key("2025/IMG_3582.HEIC"));
    assert!(files.contains_key("2019/IMG_4120.AAE") && files.contains_key("2019/IMG_4120.JPG"));
    // Jellyfish.mov: Keys CreationDate (2020) beats the QuickTime CreateDate (2022).
    assert!(files.contains_key("2020/Jellyfish.mov"));
    let again = organize_json(&[&media_s], &out);
    assert_eq!(again["totals"]["written"], 0);
    assert_eq!(again["totals"]["present"], report["totals"]["written"]);
}

#[test]
fn shared_media_zipped_as_a_privacy_export_gives_the_same_years() {
    let Some(media) = shared_media() else { return };
    let t = tempfile::tempdir().unwrap();
    let rows = index(&media);
    // Part 1: the first half of the files, deflated, written as a stream (data descriptors),
    // plus a nested, compressed "iCloud Shared Albums.zip". Part 2: the rest, stored, zip64.
    let mut part1 = Vec::new();
    let mut part2 = Vec::new();
    let mut shared = Vec::new();
    // Files of one source folder stay together (a sidecar sits beside its photo, as in a real
    // export); folders are dealt round-robin to the three places.
    let mut folders: Vec<&str> = rows.iter().map(|r| r.path.split('/').next().unwrap()).collect();
    folders.dedup();
    for row in &rows {
        let data = std::fs::read(media.join(&row.path)).unwrap();
        let folder = row.path.split('/').next().unwrap();
        match folders.iter().position(|f| *f == folder).unwrap() % 3 {
            0 => part1.push((format!("iCloud Photos Part 1 of 2/Photos/{}", row.path), data, common::gen::Store::Deflated)),
            1 => part2.push((format!("iCloud Photos Part 2 of 2/Photos/{}", row.path), data, common::gen::Store::Stored)),
            _ => shared.push((format!("My Albums/Shared/{}", row.path), data, common::gen::Store::Deflated)),
        }
    }
    let shared_zip = common::gen::zip(&refs(&shared), false, false);
    part1.push(("iCloud Photos Part 1 of 2/iCloud Shared Albums.zip".into(), shared_zip, common::gen::Store::Deflated));
    let p1 = t.path().join("iCloud Photos Part 1 of 2.zip");
    let p2 = t.path().join("iCloud Photos Part 2 of 2.zip");
    std::fs::File::create(&p1).unwrap().write_all(&common::gen::zip(&refs(&part1), true, false)).unwrap();
    std::fs::File::create(&p2).unwrap().write_all(&common::gen::zip(&refs(&part2), false, true)).unwrap();

    let out = t.path().join("out");
    let (p1s, p2s) = (p1.to_string_lossy().into_owned(), p2.to_string_lossy().into_owned());
    let report = organize_json(&[&p1s, &p2s], &out);
    check_against_index(&media, &report, &out);
    // Adding the same files again as a folder: every one is a duplicate, nothing is written.
    let media_s = media.to_string_lossy().into_owned();
    let again = organize_json(&[&p1s, &p2s, &media_s], &out);
    assert_eq!(again["totals"]["written"], 0, "{}", again["totals"]);
    let t1: BTreeMap<String, u64> = serde_json::from_value(report["totals"].clone()).unwrap();
    let t2: BTreeMap<String, u64> = serde_json::from_value(again["totals"].clone()).unwrap();
    assert_eq!(t2["duplicates"], t1["written"]);
    assert_eq!(t2["present"], t1["written"]);
}

type Entries = Vec<(String, Vec<u8>, common::gen::Store)>;

fn refs(v: &Entries) -> Vec<(&str, Vec<u8>, common::gen::Store)> {
    v.iter().map(|(n, d, s)| (n.as_str(), d.clone(), *s)).collect()
}
