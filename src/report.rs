//! `photoferry report DIR`: a static HTML contact sheet of an organized library, written to
//! `DIR/report/index.html`, that opens from the file system with no server and no external
//! assets: years → albums → thumbnails, a badge on Live Photos (their video plays on a click where
//! the browser can play it), the duplicates found and which inputs held them, the files skipped
//! and the ones that failed with their reasons, the conversion notes, and per-folder counts that
//! are the ones `photoferry verify` reports.
//!
//! Stages: read the manifest → make the missing thumbnails (rayon; cached in
//! `DIR/report/thumbs/<BLAKE3>.jpg`, so a re-run only makes new ones) → render → write atomically.
//! Thumbnails: JPEG decoded at 1/2…1/8 scale in the DCT (jpeg-decoder), EXIF orientation applied;
//! HEIC from the thumbnail image the file carries (libheif), else a full decode; PNG and GIF
//! decoded and shrunk. Videos get no thumbnail: the page shows the video itself.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

use crate::dropbox::verify::group_of;
use crate::error::{Error, Result};
use crate::manifest::{db, Manifest};
use crate::progress::{Progress, Stage};

/// The report's folder inside DIR, and the file that marks it as photoferry's (upload and verify
/// leave a marked `report/` alone).
pub const REPORT_DIR: &str = "report";
pub const MARKER: &str = ".photoferry-report";
/// Longest side of a thumbnail, in pixels.
pub const THUMB_SIZE: u32 = 320;

/// What was built.
#[derive(Debug, Default, Serialize)]
pub struct ReportSummary {
    pub index: PathBuf,
    /// Files in the tree, per `year` or `year/album` folder (what `verify` counts).
    pub groups: BTreeMap<String, usize>,
    pub files: usize,
    pub photos: usize,
    pub videos: usize,
    pub live_photos: usize,
    pub thumbnails_made: usize,
    pub thumbnails_cached: usize,
    /// Photos whose thumbnail could not be made (the page shows their name instead): (path, why).
    pub thumbnail_errors: Vec<(String, String)>,
    pub duplicates: usize,
    pub skipped: usize,
    pub failed: usize,
}

/// One file of the tree, as the manifest knows it.
#[derive(Debug, Clone)]
struct Entry {
    path: String,
    /// BLAKE3 of the bytes on disk (the JPEG's for conversions).
    disk_hash: String,
    original_hash: String,
    kind: String,
    role: Option<String>,
    companion_of: Option<String>,
    capture: Option<String>,
    notes: Vec<String>,
}

fn is_video(kind: &str) -> bool {
    matches!(kind, "mov" | "mp4")
}

fn is_picture(kind: &str) -> bool {
    matches!(kind, "heif" | "jpeg" | "png" | "gif" | "dng")
}

/// What the report shows, read from the manifest.
struct Loaded {
    entries: Vec<Entry>,
    /// BLAKE3 → every input location that held those bytes (only content seen more than once).
    dups: Vec<(String, Vec<String>)>,
    /// (location, reason)
    skipped: Vec<(String, String)>,
    /// (location, what was wrong; what was done) of the latest organize run.
    failed: Vec<(String, String)>,
}

fn load(m: &Manifest) -> Result<Loaded> {
    let p = m.path().to_path_buf();
    let conn = m.connection();
    let e = |e| db(&p, e);
    let mut st = conn
        .prepare(
            "SELECT f.path, coalesce(f.output_blake3, f.blake3), f.blake3, a.kind, f.role, f.companion_of, a.capture_time, coalesce(f.why, ''), f.converted
             FROM files f JOIN assets a USING (blake3) ORDER BY f.path",
        )
        .map_err(e)?;
    let entries = st
        .query_map([], |r| {
            let why: String = r.get(7)?;
            let converted: bool = r.get(8)?;
            let notes = why.lines().filter(|l| l.contains(" not kept") || l.starts_with("not converted")).map(str::to_string).collect();
            Ok(Entry {
                path: r.get(0)?,
                disk_hash: r.get(1)?,
                original_hash: r.get(2)?,
                kind: if converted { "jpeg".into() } else { r.get(3)? },
                role: r.get(4)?,
                companion_of: r.get(5)?,
                capture: r.get(6)?,
                notes,
            })
        })
        .map_err(e)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(e)?;
    // Duplicates: content that arrived from more than one input file or entry.
    let mut st = conn
        .prepare("SELECT blake3, input, inner_path FROM sources WHERE blake3 IN (SELECT blake3 FROM sources GROUP BY blake3 HAVING count(*) > 1) ORDER BY blake3, input, inner_path")
        .map_err(e)?;
    let mut dups: Vec<(String, Vec<String>)> = Vec::new();
    for row in st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))).map_err(e)? {
        let (h, input, inner) = row.map_err(e)?;
        let loc = if inner.is_empty() { input } else { format!("{input}: {inner}") };
        match dups.last_mut() {
            Some((last, v)) if *last == h => v.push(loc),
            _ => dups.push((h, vec![loc])),
        }
    }
    let mut st = conn.prepare("SELECT input, inner_path, reason FROM skipped ORDER BY input, inner_path").map_err(e)?;
    let skipped = st
        .query_map([], |r| {
            let (input, inner): (String, String) = (r.get(0)?, r.get(1)?);
            Ok((if inner.is_empty() { input } else { format!("{input}: {inner}") }, r.get::<_, String>(2)?))
        })
        .map_err(e)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(e)?;
    // Failures of the latest organize run, from its summary.
    let summary: Option<String> = conn
        .query_row("SELECT summary_json FROM runs WHERE command = 'organize' AND summary_json IS NOT NULL ORDER BY id DESC LIMIT 1", [], |r| r.get(0))
        .ok();
    let failed = summary
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .and_then(|v| v.get("errors").and_then(|e| e.as_array()).cloned())
        .unwrap_or_default()
        .iter()
        .map(|e| {
            let s = |k: &str| e.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
            (s("location"), format!("{}; {}", s("message"), s("action")))
        })
        .collect();
    Ok(Loaded { entries, dups, skipped, failed })
}

/// Build `DIR/report/index.html`.
pub fn build(dir: &Path, progress: &dyn Progress) -> Result<ReportSummary> {
    if !dir.is_dir() {
        return Err(Error::io(dir, std::io::Error::new(std::io::ErrorKind::NotFound, "no such folder")));
    }
    let state = crate::fsutil::state_dir(dir);
    let m = Manifest::open_read_only(&state)?
        .ok_or_else(|| Error::io(state.join("manifest.sqlite"), std::io::Error::new(std::io::ErrorKind::NotFound, "no manifest: run photoferry organize into this folder first")))?;
    let Loaded { entries, dups, skipped, failed } = load(&m)?;
    let out = dir.join(REPORT_DIR);
    if out.exists() && !out.join(MARKER).exists() && std::fs::read_dir(&out).map(|mut d| d.next().is_some()).unwrap_or(true) {
        return Err(Error::io(&out, std::io::Error::new(std::io::ErrorKind::AlreadyExists, "a folder of that name that photoferry did not make is in the way; nothing was written")));
    }
    let thumbs = out.join("thumbs");
    std::fs::create_dir_all(&thumbs).map_err(|e| Error::io(&thumbs, e))?;
    std::fs::write(out.join(MARKER), b"made by photoferry report; upload and verify skip this folder\n").map_err(|e| Error::io(&out, e))?;

    // Thumbnails for the pictures that don't have one yet.
    let mut wanted: Vec<&Entry> = entries.iter().filter(|e| is_picture(&e.kind)).collect();
    wanted.sort_by(|a, b| a.disk_hash.cmp(&b.disk_hash));
    wanted.dedup_by(|a, b| a.disk_hash == b.disk_hash);
    let (cached, todo): (Vec<&Entry>, Vec<&Entry>) = wanted.into_iter().partition(|e| thumbs.join(format!("{}.jpg", e.disk_hash)).is_file());
    progress.start(Stage::Thumbnail, todo.len() as u64, 0);
    let results: Vec<(&Entry, std::result::Result<(), String>)> = todo
        .par_iter()
        .map(|e| {
            let r = make_thumbnail(&dir.join(&e.path), &e.kind, &thumbs, &e.disk_hash);
            progress.advance(1, 0);
            (*e, r)
        })
        .collect();
    progress.finish();

    let index = std::fs::canonicalize(&out).unwrap_or(out.clone()).join("index.html");
    let mut summary = ReportSummary { index, thumbnails_cached: cached.len(), ..Default::default() };
    for (e, r) in &results {
        match r {
            Ok(()) => summary.thumbnails_made += 1,
            Err(why) => summary.thumbnail_errors.push((e.path.clone(), why.clone())),
        }
    }
    // The thumbnails the page can show: the cached ones and those just made.
    let available: HashSet<&str> = cached
        .iter()
        .map(|e| e.disk_hash.as_str())
        .chain(results.iter().filter(|(_, r)| r.is_ok()).map(|(e, _)| e.disk_hash.as_str()))
        .collect();
    let html = render(&entries, &dups, &skipped, &failed, &available, &mut summary);
    let mut tmp = tempfile::Builder::new().prefix(".index").tempfile_in(&out).map_err(|e| Error::io(&out, e))?;
    std::io::Write::write_all(tmp.as_file_mut(), html.as_bytes()).map_err(|e| Error::io(&out, e))?;
    tmp.persist(&summary.index).map_err(|e| Error::io(&summary.index, e.error))?;
    Ok(summary)
}

/// Make `thumbs/<hash>.jpg` for the picture at `path` (atomically: temp file, then rename).
fn make_thumbnail(path: &Path, kind: &str, thumbs: &Path, hash: &str) -> std::result::Result<(), String> {
    let img = match kind {
        "jpeg" => jpeg_thumbnail(path)?,
        "heif" => heif_thumbnail(path)?,
        _ => {
            let img = image::ImageReader::open(path).map_err(|e| e.to_string())?.with_guessed_format().map_err(|e| e.to_string())?.decode().map_err(|e| e.to_string())?;
            img.thumbnail(THUMB_SIZE, THUMB_SIZE).to_rgb8()
        }
    };
    let mut buf = Vec::new();
    jpeg_encoder::Encoder::new(&mut buf, 78)
        .encode(img.as_raw(), img.width() as u16, img.height() as u16, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| e.to_string())?;
    let mut tmp = tempfile::Builder::new().prefix(".thumb").tempfile_in(thumbs).map_err(|e| e.to_string())?;
    std::io::Write::write_all(tmp.as_file_mut(), &buf).map_err(|e| e.to_string())?;
    tmp.persist(thumbs.join(format!("{hash}.jpg"))).map_err(|e| e.error.to_string())?;
    Ok(())
}

/// A JPEG decoded at the smallest DCT scale that still gives ≥ THUMB_SIZE, then shrunk and
/// turned upright by its EXIF Orientation.
fn jpeg_thumbnail(path: &Path) -> std::result::Result<image::RgbImage, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let exif = exif::Reader::new().read_from_container(&mut std::io::Cursor::new(&bytes)).ok();
    let orientation = exif.as_ref().and_then(orientation_of).and_then(image::metadata::Orientation::from_exif);
    // The preview the camera embedded (iPhones: 160×120) is decoded in a millisecond; a full
    // decode, even at 1/8 scale, costs the whole entropy-coded stream.
    if let Some(small) = exif.as_ref().and_then(embedded_thumbnail).and_then(|t| image::load_from_memory_with_format(t, image::ImageFormat::Jpeg).ok()) {
        if small.width().max(small.height()) >= 160 {
            let mut img = small;
            if let Some(o) = orientation {
                img.apply_orientation(o);
            }
            return Ok(img.to_rgb8());
        }
    }
    let mut d = jpeg_decoder::Decoder::new(std::io::Cursor::new(&bytes));
    d.read_info().map_err(|e| e.to_string())?;
    d.scale(THUMB_SIZE as u16, THUMB_SIZE as u16).map_err(|e| e.to_string())?;
    let pixels = d.decode().map_err(|e| e.to_string())?;
    let info = d.info().ok_or("no image information")?;
    let (w, h) = (u32::from(info.width), u32::from(info.height));
    let rgb = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => image::RgbImage::from_raw(w, h, pixels),
        jpeg_decoder::PixelFormat::L8 => image::GrayImage::from_raw(w, h, pixels).map(|g| image::DynamicImage::ImageLuma8(g).to_rgb8()),
        jpeg_decoder::PixelFormat::CMYK32 => Some(image::RgbImage::from_fn(w, h, |x, y| {
            let i = ((y * w + x) * 4) as usize;
            let k = 255 - u32::from(pixels[i + 3]);
            let c = |v: u8| ((255 - u32::from(v)) * k / 255) as u8;
            image::Rgb([c(pixels[i]), c(pixels[i + 1]), c(pixels[i + 2])])
        })),
        jpeg_decoder::PixelFormat::L16 => None,
    }
    .ok_or("unsupported JPEG pixel format")?;
    let mut img = image::DynamicImage::ImageRgb8(rgb).thumbnail(THUMB_SIZE, THUMB_SIZE);
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    Ok(img.to_rgb8())
}

fn orientation_of(exif: &exif::Exif) -> Option<u8> {
    let f = exif.get_field(exif::Tag::Orientation, exif::In::PRIMARY)?;
    f.value.get_uint(0).and_then(|v| u8::try_from(v).ok())
}

/// The JPEG thumbnail of IFD1 (JPEGInterchangeFormat), as bytes of the EXIF block.
fn embedded_thumbnail(exif: &exif::Exif) -> Option<&[u8]> {
    let at = exif.get_field(exif::Tag::JPEGInterchangeFormat, exif::In::THUMBNAIL)?.value.get_uint(0)? as usize;
    let len = exif.get_field(exif::Tag::JPEGInterchangeFormatLength, exif::In::THUMBNAIL)?.value.get_uint(0)? as usize;
    exif.buf().get(at..at.checked_add(len)?)
}

/// A HEIC's own thumbnail image when it has one (iPhones store a ~320 px one), else the primary
/// image; libheif applies the rotation and mirroring.
fn heif_thumbnail(path: &Path) -> std::result::Result<image::RgbImage, String> {
    use crate::convert::{Item, Pixels};
    use libheif_rs::{ColorSpace, HeifContext, ItemId, LibHeif, RgbChroma};
    let lib = LibHeif::new();
    let path_str = path.to_str().ok_or("path is not UTF-8")?;
    let mut ctx = HeifContext::read_from_file(path_str).map_err(|e| e.to_string())?;
    // rayon already keeps every core busy across files.
    ctx.set_max_decoding_threads(1);
    let primary = ctx.primary_image_handle().map_err(|e| e.to_string())?;
    let mut ids: [ItemId; 4] = [0; 4];
    let n = primary.thumbnail_ids(&mut ids);
    // Embedded thumbnails, cheapest first: those big enough for a tile from the smallest up,
    // then the smaller ones from the largest down. One that does not decode (libheif refuses
    // the previews of some Canon HIF files: "decoded image does not have the size signaled")
    // gives way to the next before the picture itself is decoded.
    // A preview of another shape (Canon letterboxes a 3:2 picture into a 160×120 preview)
    // would show the picture with bars or squeezed: only previews of the picture's own shape.
    let shape = |w: u32, h: u32| f64::from(w.max(1)) / f64::from(h.max(1));
    let want = shape(primary.width(), primary.height());
    let mut thumbs: Vec<_> = ids[..n]
        .iter()
        .filter_map(|id| primary.thumbnail(*id).ok().map(|t| (*id, t)))
        .filter(|(_, t)| (shape(t.width(), t.height()) - want).abs() / want < 0.03)
        .collect();
    thumbs.sort_by_key(|(_, t)| t.width().max(t.height()));
    let split = thumbs.iter().position(|(_, t)| t.width().max(t.height()) >= 240).unwrap_or(thumbs.len());
    let small = thumbs.split_off(split);
    let decoded = small.iter().chain(thumbs.iter().rev()).find_map(|(id, t)| {
        crate::convert::decode(&lib, path_str, t, Item::Thumbnail(*id), ColorSpace::Rgb(RgbChroma::Rgb), |_| {}).ok()
    });
    let img = match decoded {
        Some(img) => {
            let rgb = crate::convert::interleaved_rgb8(&img).ok_or("libheif gave no interleaved RGB plane")?;
            image::RgbImage::from_raw(img.width(), img.height(), rgb).ok_or("bad RGB buffer")?
        }
        // A broken or missing embedded thumbnail: decode the picture itself, as `convert` does.
        // JFIF-compatible YCbCr planes are shrunk before they become RGB, which skips a
        // full-size colour conversion and a full-size RGB buffer (a fifth of a report's time on
        // preview-less HEICs).
        None => match crate::convert::decode_primary(&lib, path_str, &primary, false)? {
            (_, _, Pixels::Ycbcr420(ycbcr)) => shrink_ycbcr420(&ycbcr, THUMB_SIZE).ok_or("libheif gave no Y/Cb/Cr planes")?,
            (w, h, Pixels::Rgb(rgb)) => image::RgbImage::from_raw(w, h, rgb).ok_or("bad RGB buffer")?,
        },
    };
    Ok(image::DynamicImage::ImageRgb8(img).thumbnail(THUMB_SIZE, THUMB_SIZE).to_rgb8())
}

/// An 8-bit full-range BT.601 YCbCr 4:2:0 image shrunk by the largest whole factor that keeps
/// its longer side at least `min_side`, each output pixel the mean of its block, then made RGB.
fn shrink_ycbcr420(img: &libheif_rs::Image, min_side: u32) -> Option<image::RgbImage> {
    let planes = img.planes();
    let (y, cb, cr) = (planes.y?, planes.cb?, planes.cr?);
    let (w, h) = (y.width as usize, y.height as usize);
    let f = (w.max(h) / min_side as usize).max(1);
    Some(shrink_planes((y.data, y.stride), (cb.data, cb.stride), (cr.data, cr.stride), w, h, f))
}

/// The worker of [`shrink_ycbcr420`], on plain slices: `f`×`f` luma blocks, with the chroma
/// samples (half resolution) that cover them.
fn shrink_planes(
    y: (&[u8], usize),
    cb: (&[u8], usize),
    cr: (&[u8], usize),
    w: usize,
    h: usize,
    f: usize,
) -> image::RgbImage {
    let (ow, oh) = ((w / f).max(1), (h / f).max(1));
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let mean = |(data, stride): (&[u8], usize), x0: usize, x1: usize, y0: usize, y1: usize| -> f32 {
        let mut sum = 0u32;
        for row in y0..y1 {
            sum += data[row * stride + x0..row * stride + x1].iter().map(|&v| u32::from(v)).sum::<u32>();
        }
        sum as f32 / ((x1 - x0) * (y1 - y0)) as f32
    };
    image::RgbImage::from_fn(ow as u32, oh as u32, |ox, oy| {
        let (x0, y0) = (ox as usize * f, oy as usize * f);
        let (x1, y1) = ((x0 + f).min(w), (y0 + f).min(h));
        let luma = mean(y, x0, x1, y0, y1);
        let (cx0, cy0) = ((x0 / 2).min(cw - 1), (y0 / 2).min(ch - 1));
        let (cx1, cy1) = (x1.div_ceil(2).clamp(cx0 + 1, cw), y1.div_ceil(2).clamp(cy0 + 1, ch));
        let (u, v) = (mean(cb, cx0, cx1, cy0, cy1) - 128.0, mean(cr, cx0, cx1, cy0, cy1) - 128.0);
        // JFIF (full-range BT.601) YCbCr → RGB.
        let px = |c: f32| c.round().clamp(0.0, 255.0) as u8;
        image::Rgb([px(luma + 1.402 * v), px(luma - 0.344_136 * u - 0.714_136 * v), px(luma + 1.772 * u)])
    })
}

/// `2021/Trip/IMG 1.JPG` → `2021/Trip/IMG%201.JPG` (each segment percent-encoded).
fn url_path(rel: &str) -> String {
    rel.split('/')
        .map(|seg| {
            let mut out = String::new();
            for b in seg.bytes() {
                match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
                    _ => {
                        let _ = write!(out, "%{b:02X}");
                    }
                }
            }
            out
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn files(n: usize) -> String {
    format!("{n} file{}", if n == 1 { "" } else { "s" })
}

fn name_of(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// `2023-07-14T10:20:30.000+02:00` → `2023-07-14 10:20`.
fn short_time(t: &str) -> String {
    t.get(..16).map(|s| s.replace('T', " ")).unwrap_or_default()
}

const STYLE: &str = r#"
:root{color-scheme:light dark;--bg:#fafafa;--fg:#1d1d1f;--muted:#6e6e73;--card:#fff;--line:#e3e3e8;--accent:#0a66c2}
@media(prefers-color-scheme:dark){:root{--bg:#111;--fg:#f2f2f2;--muted:#a0a0a8;--card:#1c1c1e;--line:#333;--accent:#5aa9ff}}
*{box-sizing:border-box}body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--fg)}
header,main{max-width:1200px;margin:0 auto;padding:12px 16px}header h1{font-size:1.4em;margin:8px 0 4px}
.muted{color:var(--muted)}nav{display:flex;flex-wrap:wrap;gap:6px;margin:8px 0}nav a{padding:2px 10px;border:1px solid var(--line);border-radius:999px;color:var(--accent);text-decoration:none}
.stats{display:flex;flex-wrap:wrap;gap:8px;margin:10px 0}.stat{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:6px 12px}.stat b{font-size:1.2em;display:block}
h2{margin:28px 0 6px;border-bottom:1px solid var(--line);padding-bottom:4px}h3{margin:18px 0 6px;font-size:1.05em}
.count{font-weight:normal;color:var(--muted);font-size:.85em;margin-left:6px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:8px}
figure{margin:0;background:var(--card);border:1px solid var(--line);border-radius:8px;overflow:hidden;position:relative}
figure img,figure video{display:block;width:100%;height:150px;object-fit:cover;background:#8883}
figcaption{padding:4px 6px;font-size:12px}figcaption span{display:block;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}figcaption .when{color:var(--muted);font-size:11px}
.badge{position:absolute;top:6px;left:6px;background:#000a;color:#fff;font-size:11px;font-weight:600;padding:1px 6px;border-radius:4px;letter-spacing:.04em}
.badge.live{cursor:pointer}.badge.note{left:auto;right:6px;background:#b35a00d0}
.noimg{height:150px;display:flex;align-items:center;justify-content:center;color:var(--muted);font-size:12px;padding:6px;text-align:center}
table{border-collapse:collapse;width:100%;font-size:13px}td,th{border-bottom:1px solid var(--line);padding:4px 6px;text-align:left;vertical-align:top;word-break:break-word}
details{margin:10px 0}summary{cursor:pointer;font-weight:600}
"#;

const SCRIPT: &str = r#"
document.querySelectorAll('.badge.live').forEach(function(b){b.addEventListener('click',function(){
  var f=b.closest('figure'),v=f.querySelector('video.live');if(!v)return;
  if(v.hidden){v.hidden=false;f.querySelector('img')&&(f.querySelector('img').hidden=true);v.play().catch(function(){});}
  else{v.pause();v.hidden=true;f.querySelector('img')&&(f.querySelector('img').hidden=false);}
});});
window.addEventListener('load',function(){
  var imgs=[].slice.call(document.querySelectorAll('img.thumb'));
  var ok=imgs.filter(function(i){return i.complete&&i.naturalWidth>0;}).length;
  document.body.setAttribute('data-images',imgs.length);document.body.setAttribute('data-images-loaded',ok);
});
"#;

fn render(
    entries: &[Entry],
    dups: &[(String, Vec<String>)],
    skipped: &[(String, String)],
    failed: &[(String, String)],
    available: &HashSet<&str>,
    summary: &mut ReportSummary,
) -> String {
    // Companions (Live Photo videos, edits, sidecars) travel with their photo in the same folder.
    let mut companions: HashMap<(String, String), Vec<&Entry>> = HashMap::new();
    for e in entries.iter().filter(|e| e.companion_of.is_some()) {
        companions.entry((group_of(&e.path), e.companion_of.clone().unwrap_or_default())).or_default().push(e);
    }
    let mut groups: BTreeMap<String, Vec<&Entry>> = BTreeMap::new();
    for e in entries {
        *summary.groups.entry(group_of(&e.path)).or_default() += 1;
        // Photos and videos get a tile; so does an edited render (beside its original).
        if e.companion_of.is_none() || e.role.as_deref() == Some("edit") {
            groups.entry(group_of(&e.path)).or_default().push(e);
        }
    }
    summary.files = entries.len();
    summary.photos = entries.iter().filter(|e| is_picture(&e.kind) && e.role.as_deref() != Some("edit")).count();
    summary.videos = entries.iter().filter(|e| is_video(&e.kind) && e.role.as_deref() != Some("live-video")).count();
    summary.live_photos = entries.iter().filter(|e| e.role.as_deref() == Some("live-video")).count();
    summary.duplicates = dups.len();
    summary.skipped = skipped.len();
    summary.failed = failed.len();
    let lazy = entries.len() > 1500;
    let failed_thumbs: HashMap<&str, &str> = summary.thumbnail_errors.iter().map(|(p, w)| (p.as_str(), w.as_str())).collect();

    let mut years: BTreeMap<String, Vec<(&String, &Vec<&Entry>)>> = BTreeMap::new();
    for (g, v) in &groups {
        years.entry(g.split('/').next().unwrap_or(".").to_string()).or_default().push((g, v));
    }
    let year_count = |y: &str| summary.groups.iter().filter(|(g, _)| g.split('/').next() == Some(y)).map(|(_, n)| n).sum::<usize>();

    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport content=\"width=device-width,initial-scale=1\"><title>photoferry report</title><style>{STYLE}</style></head><body>"
    );
    let _ = write!(h, "<header><h1>Your photo library</h1><div class=muted>made by photoferry report from the organized folder's manifest</div>");
    let _ = write!(h, "<div class=stats>");
    for (one, many, n, id) in [
        ("file", "files", summary.files, "files"),
        ("photo", "photos", summary.photos, "photos"),
        ("video", "videos", summary.videos, "videos"),
        ("Live Photo", "Live Photos", summary.live_photos, "live"),
        ("duplicate merged", "duplicates merged", summary.duplicates, "duplicates"),
        ("skipped", "skipped", summary.skipped, "skipped"),
        ("failed", "failed", summary.failed, "failed"),
    ] {
        let _ = write!(h, "<div class=stat data-count=\"{id}\"><b>{n}</b>{}</div>", if n == 1 { one } else { many });
    }
    let _ = write!(h, "</div><nav>");
    for y in years.keys() {
        let _ = write!(h, "<a href=\"#y{}\">{}</a>", esc(y), esc(y));
    }
    let _ = write!(h, "<a href=\"#problems\">duplicates &amp; problems</a></nav></header><main>");

    for (year, folders) in &years {
        let _ = write!(h, "<section id=\"y{}\"><h2>{}<span class=count data-year=\"{}\">{}</span></h2>", esc(year), esc(year), esc(year), files(year_count(year)));
        for (g, items) in folders {
            let title = if g.contains('/') { g.split_once('/').map(|x| x.1).unwrap_or(g) } else { "Not in an album" };
            let _ = write!(h, "<h3>{}<span class=count data-group=\"{}\">{}</span></h3><div class=grid>", esc(title), esc(g), files(summary.groups.get(*g).copied().unwrap_or(0)));
            for e in items.iter() {
                let comps = companions.get(&(g.to_string(), e.original_hash.clone())).cloned().unwrap_or_default();
                let live = comps.iter().find(|c| c.role.as_deref() == Some("live-video"));
                let _ = write!(h, "<figure>");
                if is_picture(&e.kind) {
                    if available.contains(e.disk_hash.as_str()) {
                        let _ = write!(
                            h,
                            "<a href=\"../{}\"><img class=thumb{} src=\"thumbs/{}.jpg\" alt=\"{}\"></a>",
                            url_path(&e.path),
                            if lazy { " loading=lazy" } else { "" },
                            e.disk_hash,
                            esc(name_of(&e.path))
                        );
                    } else {
                        let why = failed_thumbs.get(e.path.as_str()).copied().unwrap_or("no thumbnail");
                        let _ = write!(h, "<div class=noimg title=\"{}\">{}<br>(no preview)</div>", esc(why), esc(name_of(&e.path)));
                    }
                    if let Some(v) = live {
                        let _ = write!(h, "<span class=\"badge live\" title=\"Live Photo: click to play {}\">LIVE</span>", esc(name_of(&v.path)));
                        let _ = write!(h, "<video class=live hidden muted playsinline loop preload=none src=\"../{}\"></video>", url_path(&v.path));
                    }
                } else if is_video(&e.kind) {
                    let _ = write!(h, "<video controls preload=metadata src=\"../{}\"></video><span class=badge>VIDEO</span>", url_path(&e.path));
                } else {
                    let _ = write!(h, "<div class=noimg>{}</div>", esc(name_of(&e.path)));
                }
                if e.role.as_deref() == Some("edit") {
                    let _ = write!(h, "<span class=badge>EDITED</span>");
                }
                if !e.notes.is_empty() {
                    let _ = write!(h, "<span class=\"badge note\" title=\"{}\">note</span>", esc(&e.notes.join("\n")));
                }
                let extra: Vec<String> = comps.iter().filter(|c| c.role.as_deref() == Some("sidecar")).map(|c| name_of(&c.path).to_string()).collect();
                let cap = e.capture.as_deref().map(short_time).unwrap_or_else(|| "no date".into());
                let _ = write!(
                    h,
                    "<figcaption title=\"{}\"><span>{}</span><span class=when>{}</span></figcaption></figure>",
                    esc(&format!("{}{}", e.path, if extra.is_empty() { String::new() } else { format!(" (with {})", extra.join(", ")) })),
                    esc(name_of(&e.path)),
                    esc(&cap)
                );
            }
            let _ = write!(h, "</div>");
        }
        let _ = write!(h, "</section>");
    }

    let _ = write!(h, "<section id=problems><h2>Duplicates and problems</h2>");
    let by_hash: HashMap<&str, Vec<&str>> = entries.iter().fold(HashMap::new(), |mut m, e| {
        m.entry(e.original_hash.as_str()).or_default().push(e.path.as_str());
        m
    });
    let table = |h: &mut String, title: &str, id: &str, rows: Vec<(String, String)>, head: (&str, &str)| {
        let _ = write!(h, "<details{} id=\"{id}\"><summary>{} ({})</summary>", if rows.is_empty() { "" } else { " open" }, esc(title), rows.len());
        if rows.is_empty() {
            let _ = write!(h, "<p class=muted>None.</p>");
        } else {
            let _ = write!(h, "<table><tr><th>{}</th><th>{}</th></tr>", head.0, head.1);
            for (a, b) in rows {
                let _ = write!(h, "<tr><td>{}</td><td>{}</td></tr>", esc(&a), esc(&b));
            }
            let _ = write!(h, "</table>");
        }
        let _ = write!(h, "</details>");
    };
    let dup_rows = dups
        .iter()
        .map(|(hash, locs)| {
            let dest = by_hash.get(hash.as_str()).map(|v| v.join(", ")).unwrap_or_else(|| "not in the tree".into());
            (dest, format!("{} copies: {}", locs.len(), locs.join(" · ")))
        })
        .collect();
    table(&mut h, "Duplicates: the same bytes found more than once, written once per folder", "duplicates", dup_rows, ("in the tree as", "found in"));
    table(&mut h, "Failed in the last organize run", "failed", failed.to_vec(), ("file", "what was wrong; what photoferry did"));
    table(&mut h, "Skipped (not media, system files, Recently Deleted…)", "skipped", skipped.to_vec(), ("file", "why"));
    let notes: Vec<(String, String)> = entries.iter().flat_map(|e| e.notes.iter().map(move |n| (e.path.clone(), n.clone()))).collect();
    table(&mut h, "Conversion notes", "notes", notes, ("file", "note"));
    let mut counts: Vec<(String, String)> = summary.groups.iter().map(|(g, n)| (g.clone(), n.to_string())).collect();
    counts.push(("total".into(), summary.files.to_string()));
    table(&mut h, "Files per folder (the counts photoferry verify checks)", "counts", counts, ("folder", "files"));
    let _ = writeln!(h, "</section></main><script>{SCRIPT}</script></body></html>");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrunk_ycbcr_planes_keep_colours_and_layout() {
        // 10×6 luma (odd chroma width 5, height 3): left half red, right half blue in JFIF
        // YCbCr (red: 76/85/255, blue: 29/255/107), strides wider than the rows.
        let (w, h) = (10usize, 6usize);
        let y: Vec<u8> = (0..h * 12).map(|i| if i % 12 < 5 { 76 } else { 29 }).collect();
        let cb: Vec<u8> = (0..3 * 8).map(|i| if i % 8 < 2 { 85 } else if i % 8 == 2 { 170 } else { 255 }).collect();
        let cr: Vec<u8> = (0..3 * 8).map(|i| if i % 8 < 2 { 255 } else if i % 8 == 2 { 181 } else { 107 }).collect();
        let img = shrink_planes((&y, 12), (&cb, 8), (&cr, 8), w, h, 2);
        assert_eq!(img.dimensions(), (5, 3));
        let close = |p: [u8; 3], want: [u8; 3]| p.iter().zip(want).all(|(a, b)| a.abs_diff(b) <= 2);
        for row in 0..3 {
            assert!(close(img.get_pixel(0, row).0, [254, 0, 0]), "{:?}", img.get_pixel(0, row));
            assert!(close(img.get_pixel(4, row).0, [0, 0, 255]), "{:?}", img.get_pixel(4, row));
        }
        // A factor larger than the image still gives one pixel, the mean.
        let one = shrink_planes((&y, 12), (&cb, 8), (&cr, 8), w, h, 64);
        assert_eq!(one.dimensions(), (1, 1));
    }

    #[test]
    fn paths_are_percent_encoded_and_text_escaped() {
        assert_eq!(url_path("2021/Café #1/IMG 1.JPG"), "2021/Caf%C3%A9%20%231/IMG%201.JPG");
        assert_eq!(esc("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        assert_eq!(short_time("2023-07-14T10:20:30.000+02:00"), "2023-07-14 10:20");
    }
}
