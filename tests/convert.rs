//! HEIC → JPEG on every HEIC/HEIF in ../shared/media: each output decodes; keeps
//! DateTimeOriginal, OffsetTimeOriginal, GPS, Make, Model and the Live Photo identifier; has
//! Orientation 1 and the displayed (rotated) size; carries the source's ICC profile; and its
//! pixels match libheif's own decode region by region (so it is right side up and whole).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{run, shared_media};
use exif::{In, Tag};
use libheif_rs::{ColorSpace, HeifContext, LibHeif, RgbChroma};

struct Reference {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
    icc: Option<Vec<u8>>,
    /// The source's EXIF block as libheif reads it (kamadak-exif's HEIC reader misses the GPS
    /// IFD of some iPhone files that exiftool reads).
    exif: Option<exif::Exif>,
}

/// libheif's own decode of the primary image (transformations applied), as 8-bit RGB.
fn reference(path: &Path) -> Reference {
    let lib = LibHeif::new();
    let ctx = HeifContext::read_from_file(path.to_str().unwrap()).unwrap();
    let h = ctx.primary_image_handle().unwrap();
    let hdr = h.luma_bits_per_pixel() > 8;
    let img = lib.decode(&h, ColorSpace::Rgb(if hdr { RgbChroma::HdrRgbLe } else { RgbChroma::Rgb }), None).unwrap();
    let (w, hgt) = (img.width(), img.height());
    let planes = img.planes();
    let p = planes.interleaved.unwrap();
    let mut rgb = Vec::with_capacity((w * hgt * 3) as usize);
    for y in 0..hgt as usize {
        let row = &p.data[y * p.stride..];
        if hdr {
            let max = (1u32 << p.bits_per_pixel) - 1;
            for x in 0..(w as usize * 3) {
                let v = u16::from_le_bytes([row[2 * x], row[2 * x + 1]]) as u32;
                rgb.push((v.min(max) * 255 / max) as u8);
            }
        } else {
            rgb.extend_from_slice(&row[..w as usize * 3]);
        }
    }
    let icc = h.color_profile_raw().map(|r| r.data).filter(|d| d.len() > 128);
    let mut ids = [0u32; 2];
    let n = h.metadata_block_ids(&mut ids, b"Exif");
    let exif = ids[..n].first().and_then(|&id| h.metadata(id).ok()).and_then(|raw| {
        let off = u32::from_be_bytes(raw[0..4].try_into().ok()?) as usize;
        exif::Reader::new().read_raw(raw.get(4 + off..)?.to_vec()).ok()
    });
    Reference { width: w, height: hgt, rgb, icc, exif }
}

/// Mean colour of each cell of a 4×4 grid.
fn region_means(rgb: &[u8], w: u32, h: u32) -> Vec<[f64; 3]> {
    let mut out = Vec::new();
    for gy in 0..4 {
        for gx in 0..4 {
            let (x0, x1) = (gx * w / 4, (gx + 1) * w / 4);
            let (y0, y1) = (gy * h / 4, (gy + 1) * h / 4);
            let mut sum = [0f64; 3];
            let mut n = 0f64;
            for y in (y0..y1).step_by(3) {
                for x in (x0..x1).step_by(3) {
                    let i = ((y * w + x) * 3) as usize;
                    for c in 0..3 {
                        sum[c] += rgb[i + c] as f64;
                    }
                    n += 1.0;
                }
            }
            out.push(sum.map(|s| s / n.max(1.0)));
        }
    }
    out
}

fn exif_of(bytes: &[u8]) -> Option<exif::Exif> {
    exif::Reader::new().read_from_container(&mut std::io::Cursor::new(bytes)).ok()
}

fn field(e: &exif::Exif, t: Tag) -> Option<String> {
    e.get_field(t, In::PRIMARY).map(|f| f.display_value().to_string())
}

/// Every HEIC/HEIF of the corpus (INDEX.tsv's FileType), and exiftool's GPS facts.
fn corpus_heics(media: &Path) -> (Vec<String>, BTreeMap<String, String>) {
    let index = std::fs::read_to_string(media.join("INDEX.tsv")).unwrap();
    let gps_col = index.lines().next().unwrap().split('\t').position(|h| h == "GPS").unwrap();
    let mut heics = Vec::new();
    let mut gps = BTreeMap::new();
    for l in index.lines().skip(1) {
        let cols: Vec<&str> = l.split('\t').collect();
        if matches!(cols.get(7), Some(&"HEIC") | Some(&"HEIF")) {
            heics.push(cols[0].to_string());
            gps.insert(cols[0].to_string(), cols.get(gps_col).unwrap_or(&"").to_string());
        }
    }
    assert!(heics.len() >= 30, "{}", heics.len());
    (heics, gps)
}

/// The checks of issue #4 on one source and its JPEG; problems are pushed to `problems`.
fn check_jpeg(rel: &str, src: &Path, jpeg: &[u8], gps: &BTreeMap<String, String>, problems: &mut Vec<String>) {
    let decoded = match image::load_from_memory_with_format(jpeg, image::ImageFormat::Jpeg) {
        Ok(d) => d.to_rgb8(),
        Err(e) => return problems.push(format!("{rel}: output does not decode: {e}")),
    };
    let r = reference(src);
    if (decoded.width(), decoded.height()) != (r.width, r.height) {
        return problems.push(format!("{rel}: size {}x{} but displayed size is {}x{}", decoded.width(), decoded.height(), r.width, r.height));
    }
    // Pixels: region means within a JPEG-sized tolerance of libheif's decode.
    let (a, b) = (region_means(decoded.as_raw(), r.width, r.height), region_means(&r.rgb, r.width, r.height));
    let worst = a.iter().zip(&b).flat_map(|(x, y)| (0..3).map(move |c| (x[c] - y[c]).abs())).fold(0.0, f64::max);
    if worst > 6.0 {
        problems.push(format!("{rel}: region colours differ from libheif's decode by up to {worst:.1}"));
    }
    // Metadata: the values survive, and GPS is there wherever exiftool saw it.
    let je = exif_of(jpeg);
    if gps.get(rel).is_some_and(|g| g.starts_with("yes")) && je.as_ref().and_then(|e| field(e, Tag::GPSLatitude)).is_none() {
        problems.push(format!("{rel}: exiftool sees GPS in the source, the JPEG has none"));
    }
    match (r.exif.as_ref(), je) {
        (Some(se), Some(je)) => {
            for tag in [Tag::DateTimeOriginal, Tag::OffsetTimeOriginal, Tag::GPSLatitude, Tag::GPSLongitude, Tag::Make, Tag::Model] {
                if field(se, tag) != field(&je, tag) {
                    problems.push(format!("{rel}: {tag} {:?} became {:?}", field(se, tag), field(&je, tag)));
                }
            }
            if let Some(o) = je.get_field(Tag::Orientation, In::PRIMARY).and_then(|f| f.value.get_uint(0)) {
                if o != 1 {
                    problems.push(format!("{rel}: Orientation is {o}, not 1"));
                }
            }
            let (sid, jid) = (photoferry::probe::exif::content_identifier(se), photoferry::probe::exif::content_identifier(&je));
            if sid != jid {
                problems.push(format!("{rel}: ContentIdentifier {sid:?} became {jid:?}"));
            }
        }
        (Some(_), None) => problems.push(format!("{rel}: EXIF lost")),
        _ => {}
    }
    // Colour profile: the same description as the source's.
    if let Some(icc) = &r.icc {
        let want = photoferry::convert::icc_description(icc);
        let got = jpeg_icc(jpeg).as_deref().and_then(photoferry::convert::icc_description);
        if want != got {
            problems.push(format!("{rel}: ICC description {want:?} became {got:?}"));
        }
    }
}

#[test]
fn every_shared_heic_converts_with_metadata_colour_and_pixels_intact() {
    let Some(media) = shared_media() else { return };
    let (heics, gps) = corpus_heics(&media);
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("jpegs");
    let media_s = media.to_string_lossy().into_owned();
    let (code, stdout, stderr) = run(&["convert", &media_s, "--out", &out.to_string_lossy(), "--json"], None);
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let converted = report["converted"].as_array().unwrap();
    assert_eq!(converted.len(), heics.len());
    let by_source: BTreeMap<String, String> = converted
        .iter()
        .map(|c| (c["source"].as_str().unwrap().split(": ").nth(1).unwrap().to_string(), c["dest"].as_str().unwrap().to_string()))
        .collect();
    let mut problems = Vec::new();
    for rel in &heics {
        let jpeg = std::fs::read(out.join(&by_source[rel])).unwrap();
        check_jpeg(rel, &media.join(rel), &jpeg, &gps, &mut problems);
    }
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}

#[test]
fn organize_convert_on_the_shared_media_yields_jpegs_that_pass_the_same_checks() {
    let Some(media) = shared_media() else { return };
    let (heics, gps) = corpus_heics(&media);
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("out");
    let (code, stdout, stderr) =
        run(&["organize", &media.to_string_lossy(), "--out", &out.to_string_lossy(), "--convert", "jpeg", "--json"], None);
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let by_hash: BTreeMap<String, String> = report["plan"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["blake3"].as_str().unwrap().to_string(), p["dest"].as_str().unwrap().to_string()))
        .collect();
    let mut problems = Vec::new();
    for rel in &heics {
        let dest = &by_hash[&common::blake3_hex(&std::fs::read(media.join(rel)).unwrap())];
        assert!(dest.to_lowercase().ends_with(".jpg"), "{rel} → {dest}");
        let jpeg = std::fs::read(out.join(dest)).unwrap();
        check_jpeg(rel, &media.join(rel), &jpeg, &gps, &mut problems);
    }
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
    // No HEIC is left in the tree (the JPEG replaces it) and every Live Photo video still sits
    // beside a JPEG of its stem.
    let tree = common::paths(&out);
    assert!(!tree.iter().any(|p| p.to_lowercase().ends_with(".heic") || p.to_lowercase().ends_with(".hif")), "{tree:?}");
    for p in report["plan"].as_array().unwrap().iter().filter(|p| p["role"] == "live-video") {
        let companion = p["companion_of"].as_str().unwrap();
        let dest = p["dest"].as_str().unwrap();
        assert_eq!(companion.rsplit_once('.').unwrap().0, dest.rsplit_once('.').unwrap().0, "{p}");
    }
}

/// The ICC profile in a JPEG's APP2 `ICC_PROFILE` segments, reassembled.
fn jpeg_icc(jpeg: &[u8]) -> Option<Vec<u8>> {
    let mut chunks: Vec<(u8, Vec<u8>)> = Vec::new();
    let mut i = 2;
    while i + 4 <= jpeg.len() && jpeg[i] == 0xFF {
        let marker = jpeg[i + 1];
        if marker == 0xDA {
            break;
        }
        let len = u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]) as usize;
        let seg = &jpeg[i + 4..i + 2 + len];
        if marker == 0xE2 && seg.starts_with(b"ICC_PROFILE\0") {
            chunks.push((seg[12], seg[14..].to_vec()));
        }
        i += 2 + len;
    }
    chunks.sort_by_key(|c| c.0);
    (!chunks.is_empty()).then(|| chunks.into_iter().flat_map(|c| c.1).collect())
}

#[test]
fn organize_convert_keeps_live_photos_paired_and_records_both_hashes() {
    let Some(media) = shared_media() else { return };
    let t = tempfile::tempdir().unwrap();
    let inp = t.path().join("in");
    std::fs::create_dir_all(&inp).unwrap();
    for f in ["osxphotos/IMG_4394.HEIC", "osxphotos/IMG_4394.mov", "pigallery2/IMG_7943.HEIC", "pigallery2/IMG_7943_HEVC.MOV"] {
        std::fs::copy(media.join(f), inp.join(Path::new(f).file_name().unwrap())).unwrap();
    }
    // A HEIC that cannot decode: a real header with the image data cut off.
    let whole = std::fs::read(media.join("osxphotos/IMG_1853.HEIC")).unwrap();
    std::fs::write(inp.join("IMG_1853.HEIC"), &whole[..whole.len() / 3]).unwrap();
    let out = t.path().join("out");
    let (code, stdout, stderr) = run(&["organize", &inp.to_string_lossy(), "--out", &out.to_string_lossy(), "--convert", "jpeg"], None);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stderr.contains("IMG_1853.HEIC: cannot convert to JPEG") && stderr.contains("the original is written unconverted as 2023/IMG_1853.HEIC"), "{stderr}");
    let tree = common::paths(&out);
    assert_eq!(tree, vec!["2023/IMG_1853.HEIC", "2025/IMG_4394.JPG", "2025/IMG_4394.mov", "2026/IMG_7943.JPG", "2026/IMG_7943.MOV"]);
    assert!(stdout.contains("HDR look not kept"), "{stdout}");
    // The converted JPEG still carries the identifier its video carries: the pair survives.
    let jpeg = std::fs::read(out.join("2025/IMG_4394.JPG")).unwrap();
    let id = photoferry::probe::exif::content_identifier(&exif_of(&jpeg).unwrap());
    assert_eq!(id.as_deref(), Some("ED2A2552-C906-486E-9DA5-17DABDF672A7"));
    // The manifest records the original's and the output's BLAKE3.
    let db = rusqlite::Connection::open(out.join(".photoferry/manifest.sqlite")).unwrap();
    let (orig, output, conv): (String, String, i64) = db
        .query_row("SELECT blake3, output_blake3, converted FROM files WHERE path = '2025/IMG_4394.JPG'", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap();
    assert_eq!(orig, common::blake3_hex(&std::fs::read(media.join("osxphotos/IMG_4394.HEIC")).unwrap()));
    assert_eq!(output, common::blake3_hex(&jpeg));
    assert_eq!(conv, 1);
    // Re-run: nothing converted again, and the unconvertible original is not written twice.
    // --keep-original then adds the HEICs beside the JPEGs.
    let (code, stdout, _) = run(&["organize", &inp.to_string_lossy(), "--out", &out.to_string_lossy(), "--convert", "jpeg", "--json"], None);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["totals"]["written"], 0, "{}", v["totals"]);
    let (_, _, _) = run(&["organize", &inp.to_string_lossy(), "--out", &out.to_string_lossy(), "--convert", "jpeg", "--keep-original"], None);
    let tree = common::paths(&out);
    assert!(tree.contains(&"2025/IMG_4394.HEIC".to_string()) && tree.contains(&"2025/IMG_4394.JPG".to_string()), "{tree:?}");
    assert_eq!(tree.iter().filter(|p| p.contains("IMG_1853")).count(), 1, "{tree:?}");
}

/// libheif keeps the decoder an item was first decoded with, and FFmpeg's output for the 10-bit
/// 4:2:2 160×120 preview of a Canon HIF is a pixel format libheif cannot convert: photoferry's
/// decode must then retry on a fresh context with libheif's own decoder, and succeed.
#[test]
fn a_preview_ffmpeg_cannot_give_is_decoded_by_libheifs_own_choice() {
    let Some(media) = shared_media() else { return };
    let path = media.join("pillow_heif/cat.hif");
    let path = path.to_str().unwrap();
    let lib = LibHeif::new();
    let ctx = HeifContext::read_from_file(path).unwrap();
    let primary = ctx.primary_image_handle().unwrap();
    let mut ids = [0u32; 4];
    let n = primary.thumbnail_ids(&mut ids);
    let (id, thumb) = ids[..n]
        .iter()
        .map(|id| (*id, primary.thumbnail(*id).unwrap()))
        .find(|(_, t)| (t.width(), t.height()) == (160, 120))
        .expect("cat.hif has a 160x120 preview");
    // The preferred decoder alone fails on it (else this test proves nothing)…
    let mut ffmpeg = libheif_rs::DecodingOptions::new().unwrap();
    ffmpeg.set_decoder_id(photoferry::convert::hevc_decoder_id(&lib)).unwrap();
    let fresh = HeifContext::read_from_file(path).unwrap().primary_image_handle().unwrap().thumbnail(id).unwrap();
    assert!(lib.decode(&fresh, ColorSpace::Rgb(RgbChroma::Rgb), Some(ffmpeg)).is_err());
    // …and photoferry's decode still gives the picture.
    let img = photoferry::convert::decode(&lib, path, &thumb, photoferry::convert::Item::Thumbnail(id), ColorSpace::Rgb(RgbChroma::Rgb), |_| {})
        .expect("decoded by the retry");
    assert_eq!((img.width(), img.height()), (160, 120));
}

/// A file named HEIC that is not one — empty, a few bytes, an error page — is an error of
/// `convert` (exit 1, the file named), as `organize` reports it, not a quiet "skipped"; other
/// files are skipped; nothing is written for either.
#[test]
fn convert_reports_files_named_heic_that_are_not() {
    let t = tempfile::tempdir().unwrap();
    let input = t.path().join("in");
    std::fs::create_dir(&input).unwrap();
    std::fs::write(input.join("empty.heic"), b"").unwrap();
    std::fs::write(input.join("short.HEIC"), b"\0\0\0").unwrap();
    std::fs::write(input.join("page.heic"), b"<html><body>Service unavailable</body></html>").unwrap();
    std::fs::write(input.join("notes.txt"), b"not a photo").unwrap();
    let out = t.path().join("out");
    let (code, stdout, stderr) = run(&["convert", input.to_str().unwrap(), "--out", out.to_str().unwrap()], None);
    assert_eq!(code, 1, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stderr.contains("empty.heic: the file is empty (0 bytes); skipped"), "{stderr}");
    assert!(stderr.contains("short.HEIC: only 3 bytes: too short to be a HEIC"), "{stderr}");
    assert!(stderr.contains("page.heic: the content is not HEIC/HEIF as its name says"), "{stderr}");
    assert!(stdout.contains("Converted 0 file(s)") && stdout.contains("1 skipped"), "{stdout}");
    assert!(common::tree(&out).is_empty(), "{:?}", common::tree(&out).keys().collect::<Vec<_>>());
}

/// `convert` run twice into the same folder writes nothing the second time (its outputs are
/// recognized by their bytes), never replaces a file of the user's that holds a planned name,
/// and gives two inputs with the same stem different names.
#[test]
fn convert_again_into_the_same_folder_writes_nothing_and_replaces_nothing() {
    let Some(media) = shared_media() else { return };
    let t = tempfile::tempdir().unwrap();
    let (a, b, out) = (t.path().join("in/a"), t.path().join("in/b"), t.path().join("out"));
    for d in [&a, &b, &out] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::copy(media.join("exif-samples/iphone_13_pro_max.HEIC"), a.join("x.HEIC")).unwrap();
    std::fs::copy(media.join("osxphotos/IMG_3582.HEIC"), b.join("x.HEIC")).unwrap();
    std::fs::write(out.join("x.jpg"), b"the user's own file").unwrap();
    let input = t.path().join("in");
    let args = ["convert", input.to_str().unwrap(), "--out", out.to_str().unwrap()];
    let (code, stdout, stderr) = run(&args, None);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("Converted 2 file(s)") && stdout.contains("0 already there"), "{stdout}");
    let first = common::tree(&out);
    assert_eq!(first.keys().cloned().collect::<Vec<_>>(), ["x (2).jpg", "x (3).jpg", "x.jpg"]);
    assert_eq!(first["x.jpg"], b"the user's own file");
    assert_ne!(first["x (2).jpg"], first["x (3).jpg"]);
    let (code, stdout, stderr) = run(&args, None);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("Converted 0 file(s)") && stdout.contains("2 already there"), "{stdout}");
    assert_eq!(common::tree(&out), first);
}

/// A HEIC whose file name is not UTF-8 (an old Latin-1 download) converts like any other.
#[test]
fn a_heic_with_a_name_that_is_not_utf8_converts() {
    use std::os::unix::ffi::OsStrExt;
    let Some(media) = shared_media() else { return };
    let t = tempfile::tempdir().unwrap();
    let input = t.path().join("in");
    std::fs::create_dir(&input).unwrap();
    std::fs::copy(media.join("exifr/heic-iphone7.heic"), input.join(std::ffi::OsStr::from_bytes(b"lat_\xe9.heic"))).unwrap();
    let out = t.path().join("out");
    let (code, stdout, stderr) = run(&["convert", input.to_str().unwrap(), "--out", out.to_str().unwrap()], None);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let files = common::tree(&out);
    assert_eq!(files.len(), 1, "{:?}", files.keys().collect::<Vec<_>>());
    let (name, bytes) = files.iter().next().unwrap();
    assert!(name.starts_with("lat_") && name.ends_with(".jpg"), "{name}");
    assert!(image::load_from_memory(bytes).is_ok());
}

/// A real HEIC cut off in its image data fails with one error naming it (FFmpeg's decoder, then
/// libheif's own on a fresh open, both refuse it); nothing is written for it and the good file
/// beside it still converts.
#[test]
fn convert_names_a_cut_off_heic_and_converts_the_rest() {
    let Some(media) = shared_media() else { return };
    let t = tempfile::tempdir().unwrap();
    let input = t.path().join("in");
    std::fs::create_dir(&input).unwrap();
    let whole = std::fs::read(media.join("osxphotos/IMG_1853.HEIC")).unwrap();
    std::fs::write(input.join("cut.HEIC"), &whole[..whole.len() / 3]).unwrap();
    std::fs::copy(media.join("exifr/heic-iphone7.heic"), input.join("good.heic")).unwrap();
    let out = t.path().join("out");
    let (code, stdout, stderr) = run(&["convert", input.to_str().unwrap(), "--out", out.to_str().unwrap()], None);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stderr.contains("cut.HEIC: cannot decode:") && stderr.contains("; not converted"), "{stderr}");
    assert_eq!(stderr.matches("error:").count(), 1, "{stderr}");
    assert_eq!(common::tree(&out).keys().cloned().collect::<Vec<_>>(), ["good.jpg"]);
}
