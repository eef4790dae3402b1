//! `photoferry report`: the HTML contact sheet, checked in a real browser. Debian's Chromium
//! (headless) loads `DIR/report/index.html` from the file system, takes a screenshot, and the
//! DOM it leaves after loading says how many thumbnails loaded (naturalWidth > 0); the counts on
//! the page are compared with the manifest and with `photoferry verify`. Without Chromium the
//! browser checks skip loudly; PHOTOFERRY_REQUIRE_BROWSER=1 (set by .ci/run) makes that a failure.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{run, shared_media};

fn chromium() -> Option<PathBuf> {
    for c in ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"] {
        if Path::new(c).is_file() {
            return Some(PathBuf::from(c));
        }
    }
    if std::env::var("PHOTOFERRY_REQUIRE_BROWSER").is_ok_and(|v| v == "1") {
        panic!("PHOTOFERRY_REQUIRE_BROWSER=1 but no Chromium was found (apt-get install chromium)");
    }
    eprintln!("\n*** SKIPPED: browser check of the report: no Chromium (apt-get install chromium) ***\n");
    None
}

/// Load the page headless; returns the DOM after load and writes a screenshot.
fn browse(browser: &Path, page: &Path, shot: &Path) -> String {
    let profile = tempfile::tempdir().unwrap();
    let common = |c: &mut Command| {
        c.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--allow-file-access-from-files",
            "--virtual-time-budget=15000",
            "--window-size=1280,2400",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()));
    };
    let url = format!("file://{}", page.display());
    let mut c = Command::new(browser);
    common(&mut c);
    c.arg("--dump-dom").arg(&url);
    let o = c.output().expect("run chromium");
    assert!(o.status.success(), "chromium failed: {}", String::from_utf8_lossy(&o.stderr));
    let mut c = Command::new(browser);
    common(&mut c);
    c.arg(format!("--screenshot={}", shot.display())).arg(&url);
    let s = c.output().expect("run chromium");
    assert!(s.status.success(), "chromium screenshot failed: {}", String::from_utf8_lossy(&s.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The value of `attr="…"` on the body.
fn body_attr(dom: &str, attr: &str) -> Option<u64> {
    let body = &dom[dom.find("<body")?..];
    let body = &body[..body.find('>')?];
    let at = body.find(&format!("{attr}=\""))? + attr.len() + 2;
    body[at..].split('"').next()?.parse().ok()
}

/// `data-group="2021/Trip">12 files` → {"2021/Trip": 12}
fn page_groups(dom: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for part in dom.split("data-group=\"").skip(1) {
        let (name, rest) = part.split_once('"').unwrap();
        let n: u64 = rest.trim_start_matches('>').split(' ').next().unwrap().parse().unwrap();
        out.insert(name.replace("&amp;", "&").replace("&#39;", "'").replace("&quot;", "\""), n);
    }
    out
}

/// `verify --json`'s manifest count per group.
fn verify_groups(dir: &Path) -> BTreeMap<String, u64> {
    let (code, stdout, stderr) = run(&["verify", &dir.to_string_lossy(), "--json"], None);
    assert_eq!(code, 0, "verify: {stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    v["groups"].as_array().unwrap().iter().map(|g| (g["group"].as_str().unwrap().to_string(), g["manifest"].as_u64().unwrap())).collect()
}

fn report_json(dir: &Path) -> serde_json::Value {
    let (code, stdout, stderr) = run(&["report", &dir.to_string_lossy(), "--json"], None);
    assert_eq!(code, 0, "report: {stderr}");
    serde_json::from_str(&stdout).unwrap()
}

fn check_in_browser(dir: &Path, summary: &serde_json::Value, shot: &Path) {
    let Some(browser) = chromium() else { return };
    let page = dir.join("report/index.html");
    let dom = browse(&browser, &page, shot);
    let images = body_attr(&dom, "data-images").expect("the page's load script did not run");
    let loaded = body_attr(&dom, "data-images-loaded").unwrap();
    let thumbs = summary["thumbnails_made"].as_u64().unwrap() + summary["thumbnails_cached"].as_u64().unwrap();
    assert!(images > 0);
    assert_eq!(loaded, images, "{} of {images} thumbnails did not load", images - loaded);
    assert!(images >= thumbs, "{images} <img> for {thumbs} thumbnails");
    // The counts shown are the manifest's, as verify reports them.
    assert_eq!(page_groups(&dom), verify_groups(dir));
    assert_eq!(dom.matches("class=\"badge live\"").count() as u64, summary["live_photos"].as_u64().unwrap());
    let png = std::fs::read(shot).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 20_000, "screenshot of {} bytes", png.len());
}

/// The generated sample export organized into `<temp>/out`: (the temp dir, out).
fn organized_sample_export() -> (tempfile::TempDir, std::path::PathBuf) {
    let (t, _export, inputs) = common::sample();
    let out = t.path().join("out");
    let mut args = vec!["organize".to_string(), "--out".into(), out.to_string_lossy().into_owned()];
    args.extend(inputs);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, _, stderr) = run(&args, None);
    assert!(code == 0 || code == 1, "{stderr}");
    (t, out)
}

#[test]
fn report_of_the_sample_export_loads_in_a_browser_with_the_manifest_counts() {
    let (t, out) = organized_sample_export();
    let summary = report_json(&out);
    assert!(summary["photos"].as_u64().unwrap() > 5, "{summary}");
    assert!(summary["live_photos"].as_u64().unwrap() >= 1, "{summary}");
    assert!(summary["duplicates"].as_u64().unwrap() >= 1, "the sample repeats files across inputs: {summary}");
    assert!(summary["skipped"].as_u64().unwrap() >= 1, "{summary}");
    let html = std::fs::read_to_string(out.join("report/index.html")).unwrap();
    // No external assets: nothing is fetched from the network.
    assert!(!html.contains("http://") && !html.contains("https://"), "external reference in the page");
    assert!(html.contains("name=viewport"));
    // Thumbnails are cached by content: a second run makes none.
    let again = report_json(&out);
    assert_eq!(again["thumbnails_made"], 0);
    assert_eq!(again["thumbnails_cached"].as_u64(), Some(summary["thumbnails_made"].as_u64().unwrap() + summary["thumbnails_cached"].as_u64().unwrap()));
    // upload and verify leave the report folder alone.
    assert_eq!(verify_groups(&out).keys().filter(|g| g.starts_with("report")).count(), 0);
    check_in_browser(&out, &again, &t.path().join("sample.png"));
}

#[test]
fn report_of_the_shared_media_tree_has_every_thumbnail_upright_and_loaded() {
    let Some(media) = shared_media() else { return };
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("Photos");
    let (code, _, stderr) = run(&["organize", &media.to_string_lossy(), "--out", &out.to_string_lossy()], None);
    assert!(code == 0 || code == 1, "{stderr}");
    let summary = report_json(&out);
    assert_eq!(summary["thumbnail_errors"].as_array().unwrap().len(), 0, "{summary}");
    // Orientation applied exactly once: every thumbnail has the aspect ratio of the picture as
    // displayed (exiftool's ImageSize, swapped for Orientation 5–8), HEIC and JPEG alike.
    let db = rusqlite::Connection::open(out.join(".photoferry/manifest.sqlite")).unwrap();
    let by_inner: std::collections::HashMap<String, String> = {
        let mut st = db.prepare("SELECT inner_path, blake3 FROM sources").unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
    };
    let index = std::fs::read_to_string(media.join("INDEX.tsv")).unwrap();
    let mut lines = index.lines();
    let head: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = |name: &str| head.iter().position(|h| *h == name).unwrap();
    let (path_c, size_c, orient_c) = (col("local_path"), col("ImageSize"), col("Orientation_n"));
    let mut checked = 0;
    let mut rotated = 0;
    for line in lines {
        let f: Vec<&str> = line.split('\t').collect();
        let Some((w, h)) = f.get(size_c).and_then(|s| s.split_once('x')) else { continue };
        let (Ok(mut w), Ok(mut h)) = (w.parse::<f64>(), h.parse::<f64>()) else { continue };
        let orientation: u32 = f.get(orient_c).and_then(|o| o.parse().ok()).unwrap_or(1);
        let Some(hash) = by_inner.get(f[path_c]) else { continue };
        let Ok(thumb) = image::open(out.join(format!("report/thumbs/{hash}.jpg"))) else { continue };
        let lower = f[path_c].to_lowercase();
        if lower.ends_with(".heic") || lower.ends_with(".heif") || lower.ends_with(".hif") {
            // A HEIF's rotation is in its container (EXIF Orientation is informational there):
            // the displayed size is libheif's, as in the conversion tests.
            let ctx = libheif_rs::HeifContext::read_from_file(media.join(f[path_c]).to_str().unwrap()).unwrap();
            let p = ctx.primary_image_handle().unwrap();
            (w, h) = (f64::from(p.width()), f64::from(p.height()));
        } else if orientation >= 5 {
            std::mem::swap(&mut w, &mut h);
            rotated += 1;
        }
        let (want, got) = (w / h, f64::from(thumb.width()) / f64::from(thumb.height()));
        assert!((want - got).abs() / want < 0.05, "{}: thumbnail {}x{}, picture as displayed {w}x{h}", f[path_c], thumb.width(), thumb.height());
        checked += 1;
    }
    assert!(checked >= 30 && rotated >= 1, "checked {checked} thumbnails, {rotated} of them rotated");
    check_in_browser(&out, &summary, &t.path().join("shared.png"));
}

/// A picture in the tree that cannot be decoded (damaged after organizing, or kept with a broken
/// header) never stops the report: one warning names it, the page shows its name instead of a
/// preview, every other thumbnail is made, and the tree is not touched.
#[test]
fn a_damaged_picture_gets_a_warning_and_no_preview_and_the_report_goes_on() {
    let (_t, out) = organized_sample_export();
    let victim = common::paths(&out).into_iter().find(|p| p.ends_with(".JPG") || p.ends_with(".jpg")).unwrap();
    // Keep the JPEG's first bytes (it still sniffs as JPEG) and cut the rest off.
    let bytes = std::fs::read(out.join(&victim)).unwrap();
    std::fs::write(out.join(&victim), &bytes[..40]).unwrap();
    let before = common::tree(&out);
    let (code, stdout, stderr) = run(&["report", &out.to_string_lossy()], None);
    assert_eq!(code, 0, "{stderr}");
    let name = victim.rsplit('/').next().unwrap();
    assert!(stderr.lines().any(|l| l.starts_with("warning: ") && l.contains(&victim) && l.contains("no thumbnail")), "{stderr}");
    assert!(stdout.contains("thumbnails made"), "{stdout}");
    let html = std::fs::read_to_string(out.join("report/index.html")).unwrap();
    assert!(html.contains(&format!("{name}<br>(no preview)")), "the page does not show {name} without a preview");
    assert_eq!(common::tree(&out).into_iter().filter(|(p, _)| !p.starts_with("report/")).collect::<std::collections::BTreeMap<_, _>>(), before);
}
