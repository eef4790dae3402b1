//! Convert: HEIC/HEIF stills to JPEG that non-Apple devices open, with nothing lost that a JPEG
//! can hold. Decoding is libheif's (built in, so iOS 18 files decode); rotation, mirroring and
//! cropping are applied by libheif exactly once, so EXIF Orientation is reset to 1; grids come
//! out whole; 10-bit images are scaled to 8 bits with rounding. The whole EXIF block is carried
//! over (Apple's MakerNote included, so Live Photos still pair), with Orientation and the pixel
//! dimensions updated; the ICC profile is copied, or built from an nclx colour description;
//! XMP is copied. Depth maps, portrait mattes and HDR gain maps cannot live in a baseline JPEG;
//! the result says so.

use std::path::Path;

use crate::jpeg;
use libheif_rs::{
    color_profile_types, Chroma, ColorPrimaries, ColorProfile, ColorProfileNCLX, ColorSpace, CompressionFormat, DecodingOptions,
    HeifContext, ImageHandle, LibHeif, MatrixCoefficients, RgbChroma,
};

/// Default JPEG quality.
pub const DEFAULT_QUALITY: u8 = 90;

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("cannot decode: {0}")]
    Decode(String),
    #[error("cannot encode JPEG: {0}")]
    Encode(String),
}

/// A finished conversion.
pub struct Converted {
    pub jpeg: Vec<u8>,
    pub width: u32,
    pub height: u32,
    /// What the JPEG could not keep (gain map, depth, mattes), for the report.
    pub notes: Vec<String>,
}

/// Convert the HEIC/HEIF file at `path` to JPEG at `quality` (1–100).
pub fn heic_to_jpeg(path: &Path, quality: u8) -> Result<Converted, ConvertError> {
    let dec = |e: libheif_rs::HeifError| ConvertError::Decode(heif_message(&e));
    let lib = LibHeif::new();
    let path_str = path.to_str().ok_or_else(|| ConvertError::Decode("path is not UTF-8".into()))?;
    let mut ctx = HeifContext::read_from_file(path_str).map_err(dec)?;
    // One decoding thread per image: rayon already keeps every core busy across files.
    ctx.set_max_decoding_threads(1);
    let handle = ctx.primary_image_handle().map_err(dec)?;
    let mut notes = lost_items(&handle);
    // libjpeg-turbo's limit (JPEG_MAX_DIMENSION), checked before a long decode, not after.
    let (w, h) = (handle.width(), handle.height());
    if w > jpeg::MAX_SIDE || h > jpeg::MAX_SIDE {
        return Err(ConvertError::Encode(format!("{w}x{h} is larger than a JPEG can hold ({} pixels a side)", jpeg::MAX_SIDE)));
    }

    // Strict: a tile that fails to decode (a truncated download) is an error, not a grey patch.
    let (width, height, pixels) = decode_primary(&lib, path_str, &handle, true).map_err(ConvertError::Decode)?;

    // What a JPEG cannot hold is left out and said so, never a reason to fail the conversion.
    let mut tiff = exif_tiff(&handle);
    if let Some(t) = tiff.as_mut() {
        if patch_exif(t, width, height).is_none() {
            notes.push("EXIF not kept: its first directory is damaged".into());
            tiff = None;
        } else if t.len() > 65_000 {
            notes.push(format!("EXIF not kept: {} bytes is more than a JPEG segment holds (64 KB)", t.len()));
            tiff = None;
        }
    }
    let mut icc = icc_profile(&handle);
    if icc.as_ref().is_some_and(|p| p.len() > jpeg::MAX_ICC_LEN) {
        notes.push(format!("ICC colour profile not kept: {} bytes is more than a JPEG holds", icc.as_ref().map_or(0, Vec::len)));
        icc = None;
    }
    let mut xmp = xmp_packet(&handle);
    if xmp.as_ref().is_some_and(|x| x.len() > 65_000) {
        notes.push(format!("XMP not kept: {} bytes is more than a JPEG segment holds (64 KB)", xmp.as_ref().map_or(0, Vec::len)));
        xmp = None;
    }
    if let Some(n) = handle.color_profile_nclx() {
        use libheif_rs::TransferCharacteristics as T;
        if matches!(n.transfer_characteristics(), T::ITU_R_BT_2100_0_PQ | T::ITU_R_BT_2100_0_HLG) {
            notes.push("HDR (PQ/HLG) picture not tone-mapped: its colours and brightness will look wrong in the JPEG".into());
        }
    }
    let meta = jpeg::Metadata { exif_tiff: tiff.as_deref(), icc: icc.as_deref(), xmp: xmp.as_deref() };
    let jpeg = match &pixels {
        Pixels::Rgb(rgb) => jpeg::encode(jpeg::Source::Rgb(rgb), width, height, quality, &meta),
        Pixels::Ycbcr420(img) => {
            let planes = img.planes();
            let (Some(y), Some(cb), Some(cr)) = (planes.y, planes.cb, planes.cr) else {
                return Err(ConvertError::Decode("no Y/Cb/Cr planes".into()));
            };
            let src = jpeg::Source::Ycbcr420 { y: (y.data, y.stride), cb: (cb.data, cb.stride), cr: (cr.data, cr.stride) };
            jpeg::encode(src, width, height, quality, &meta)
        }
    }
    .map_err(ConvertError::Encode)?;
    Ok(Converted { jpeg, width, height, notes })
}

/// The HEVC decoder photoferry asks libheif for: FFmpeg's when it is built in (see
/// `build/ffmpeg/`), because it decodes iPhone HEICs with about a quarter less CPU time than
/// libde265, which libheif would otherwise prefer; else libheif's default (libde265).
/// `PHOTOFERRY_HEVC_DECODER=libde265` picks libde265 (for comparisons and as an escape hatch).
pub fn hevc_decoder_id(lib: &LibHeif) -> Option<&'static str> {
    extern "C" {
        fn av_log_set_level(level: std::ffi::c_int);
    }
    static ID: std::sync::OnceLock<Option<&'static str>> = std::sync::OnceLock::new();
    *ID.get_or_init(|| {
        // FFmpeg logs to stderr by default ("[hevc @ 0x…] …" for every damaged tile). libheif
        // turns what matters into an error that photoferry reports with the file's name.
        // SAFETY: sets one global integer; AV_LOG_QUIET is -8.
        unsafe { av_log_set_level(-8) };
        let want = match std::env::var("PHOTOFERRY_HEVC_DECODER").as_deref() {
            Ok("libde265") => return Some("libde265"),
            _ => "ffmpeg",
        };
        lib.decoder_descriptors(16, Some(CompressionFormat::Hevc)).iter().any(|d| d.id() == want).then_some(want)
    })
}

/// Which image of a HEIF file a [`decode`] is for, so that a retry can find it again.
#[derive(Clone, Copy)]
pub enum Item {
    Primary,
    /// The primary image's thumbnail with this item id.
    Thumbnail(libheif_rs::ItemId),
}

/// Decode `handle` (the `item` of the file at `path`) with the preferred HEVC decoder
/// ([`hevc_decoder_id`]) and the options that `configure` sets. A decoder id applies to whatever
/// the item is coded with, and FFmpeg also claims items it handles worse than libheif's own
/// choice (JPEG-coded previews padded to whole blocks, 10-bit 4:2:2 previews libheif cannot
/// convert from FFmpeg's output): so a failure is tried once more with libheif's own choice.
/// libheif keeps the decoder an item was first decoded with, so the retry opens the file afresh.
/// When both fail, the first error is returned.
pub fn decode(
    lib: &LibHeif,
    path: &str,
    handle: &ImageHandle,
    item: Item,
    color_space: ColorSpace,
    configure: impl Fn(&mut DecodingOptions),
) -> Result<libheif_rs::Image, libheif_rs::HeifError> {
    let options = |decoder: Option<&str>| {
        DecodingOptions::new().map(|mut o| {
            if decoder.is_some() {
                // Fails only on a NUL in the id, which a static id has not.
                let _ = o.set_decoder_id(decoder);
            }
            configure(&mut o);
            o
        })
    };
    let Some(id) = hevc_decoder_id(lib) else {
        return lib.decode(handle, color_space, options(None));
    };
    let first = match lib.decode(handle, color_space, options(Some(id))) {
        Ok(img) => return Ok(img),
        Err(e) => e,
    };
    let retry = || -> Result<libheif_rs::Image, libheif_rs::HeifError> {
        let mut ctx = HeifContext::read_from_file(path)?;
        ctx.set_max_decoding_threads(1);
        let primary = ctx.primary_image_handle()?;
        let fresh = match item {
            Item::Primary => primary,
            Item::Thumbnail(tid) => primary.thumbnail(tid)?,
        };
        lib.decode(&fresh, color_space, options(None))
    };
    retry().map_err(|_| first)
}

/// A primary image decoded for JPEG output.
pub(crate) enum Pixels {
    /// Tightly packed 8-bit RGB.
    Rgb(Vec<u8>),
    /// JFIF's YCbCr: 8-bit 4:2:0, full-range BT.601 ([`jfif_compatible`]).
    Ycbcr420(libheif_rs::Image),
}

/// libheif's message on one line.
fn heif_message(e: &libheif_rs::HeifError) -> String {
    e.to_string().split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Decode the primary image of the file at `path` for JPEG output: (width, height, pixels).
/// An 8-bit 4:2:0 picture in full-range BT.601 YCbCr is exactly what a JFIF JPEG stores, so its
/// planes come back as they are: no YCbCr → RGB → YCbCr round trip. Anything else (another
/// matrix, limited range, more than 8 bits: scaled with rounding) comes back as RGB. `strict`:
/// a tile that fails to decode is an error, not a grey patch.
pub(crate) fn decode_primary(lib: &LibHeif, path: &str, handle: &ImageHandle, strict: bool) -> Result<(u32, u32, Pixels), String> {
    let base = |o: &mut DecodingOptions| o.set_strict_decoding(strict);
    let hdr = handle.luma_bits_per_pixel() > 8;
    if !hdr {
        // Keep the file's own colour description: without this, libheif "converts" every image
        // whose primaries are not BT.709 (iPhones: Display P3) to sRGB through RGB and back —
        // a fifth of the CPU time, and rounding, for the same samples (the ICC profile carries
        // the primaries).
        let options = |o: &mut DecodingOptions| {
            base(o);
            o.set_output_image_nclx_profile_passthrough(true);
        };
        let img = decode(lib, path, handle, Item::Primary, ColorSpace::YCbCr(Chroma::C420), options).map_err(|e| heif_message(&e))?;
        if jfif_compatible(&img) {
            return Ok((img.width(), img.height(), Pixels::Ycbcr420(img)));
        }
    }
    let chroma = if hdr { RgbChroma::HdrRgbLe } else { RgbChroma::Rgb };
    let image = decode(lib, path, handle, Item::Primary, ColorSpace::Rgb(chroma), base).map_err(|e| heif_message(&e))?;
    let rgb = interleaved_rgb8(&image).ok_or("no interleaved RGB plane")?;
    Ok((image.width(), image.height(), Pixels::Rgb(rgb)))
}

/// An RGB image from libheif (8-bit, or 16-bit little-endian for more than 8 bits) as tightly
/// packed 8-bit RGB.
pub(crate) fn interleaved_rgb8(image: &libheif_rs::Image) -> Option<Vec<u8>> {
    let planes = image.planes();
    let plane = planes.interleaved?;
    let bits = (plane.bits_per_pixel > 8).then_some(plane.bits_per_pixel);
    Some(pack_rgb8(plane.data, plane.width as usize, plane.height as usize, plane.stride, bits))
}

/// Whether a decoded image's samples are JFIF's YCbCr: 8-bit 4:2:0, BT.601 matrix (or none
/// given, which libheif also reads as BT.601), full range.
pub(crate) fn jfif_compatible(img: &libheif_rs::Image) -> bool {
    if img.color_space() != Some(ColorSpace::YCbCr(Chroma::C420)) {
        return false;
    }
    let planes = img.planes();
    let eight_bit = [planes.y.as_ref(), planes.cb.as_ref(), planes.cr.as_ref()]
        .iter()
        .all(|p| p.is_some_and(|p| p.bits_per_pixel == 8 && p.storage_bits_per_pixel == 8));
    if !eight_bit {
        return false;
    }
    match img.color_profile_nclx() {
        None => true,
        Some(n) => {
            n.full_range_flag() == 1
                && matches!(
                    n.matrix_coefficients(),
                    MatrixCoefficients::ITU_R_BT_601_6 | MatrixCoefficients::ITU_R_BT_470_6_System_B_G | MatrixCoefficients::Unspecified
                )
        }
    }
}

/// Interleaved RGB rows (8-bit, or 16-bit little-endian holding `bits`-bit values) to tightly
/// packed 8-bit RGB. High bit depths are scaled with rounding: v·255/max.
fn pack_rgb8(data: &[u8], w: usize, h: usize, stride: usize, bits: Option<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(w * h * 3);
    match bits {
        None => {
            for y in 0..h {
                out.extend_from_slice(&data[y * stride..y * stride + w * 3]);
            }
        }
        Some(bits) => {
            let max = (1u32 << bits) - 1;
            for y in 0..h {
                let row = &data[y * stride..y * stride + w * 6];
                for px in row.chunks_exact(2) {
                    let v = u16::from_le_bytes([px[0], px[1]]) as u32;
                    out.push(((v.min(max) * 255 + max / 2) / max) as u8);
                }
            }
        }
    }
    out
}

/// What the primary image carries that a JPEG cannot.
fn lost_items(handle: &ImageHandle) -> Vec<String> {
    let mut notes = Vec::new();
    for aux in handle.auxiliary_images(None) {
        let t = aux.auxiliary_type().unwrap_or_default();
        let note = if t.contains("hdrgainmap") || t.contains("gainmap") {
            "HDR gain map not kept: the JPEG shows the standard-range picture (the HDR look is not kept)".to_string()
        } else if t.contains("matte") {
            format!("portrait matte not kept ({t})")
        } else if t.contains("depth") || t.contains("disparity") || t.ends_with("auxid:2") {
            "depth map not kept".to_string()
        } else if t.contains("alpha") || t.ends_with("auxid:1") {
            "transparency not kept: a JPEG has no alpha channel, so transparent areas show the colour stored under them".to_string()
        } else {
            format!("auxiliary image not kept ({t})")
        };
        if !notes.contains(&note) {
            notes.push(note);
        }
    }
    if handle.has_depth_image() && !notes.iter().any(|n| n.starts_with("depth")) {
        notes.push("depth map not kept".into());
    }
    if handle.has_alpha_channel() && !notes.iter().any(|n| n.starts_with("transparency")) {
        notes.push("transparency not kept: a JPEG has no alpha channel, so transparent areas show the colour stored under them".into());
    }
    notes
}

/// The TIFF part of the `Exif` item (after its 4-byte offset prefix).
fn exif_tiff(handle: &ImageHandle) -> Option<Vec<u8>> {
    let mut ids = [0u32; 4];
    let n = handle.metadata_block_ids(&mut ids, b"Exif");
    let raw = handle.metadata(*ids[..n].first()?).ok()?;
    let off = u32::from_be_bytes(raw.get(0..4)?.try_into().ok()?) as usize;
    let tiff = raw.get(4 + off..)?;
    (tiff.starts_with(b"MM\0*") || tiff.starts_with(b"II*\0")).then(|| tiff.to_vec())
}

fn xmp_packet(handle: &ImageHandle) -> Option<Vec<u8>> {
    let mut ids = [0u32; 8];
    let n = handle.metadata_block_ids(&mut ids, b"mime");
    ids[..n].iter().find_map(|&id| {
        (handle.metadata_content_type(id) == Some("application/rdf+xml")).then(|| handle.metadata(id).ok()).flatten()
    })
}

/// Set Orientation (0x0112) to 1 and PixelXDimension/PixelYDimension (0xA002/0xA003) to the
/// output size, in place. Offsets do not move, so the MakerNote and everything else survive
/// byte for byte. `None` if the first directory (IFD0) is malformed; a damaged Exif
/// sub-directory only leaves the dimensions as they were.
pub fn patch_exif(tiff: &mut [u8], width: u32, height: u32) -> Option<()> {
    let le = match tiff.get(0..2)? {
        b"II" => true,
        b"MM" => false,
        _ => return None,
    };
    let r16 = |b: &[u8], at: usize| -> Option<u16> {
        let x: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
        Some(if le { u16::from_le_bytes(x) } else { u16::from_be_bytes(x) })
    };
    let r32 = |b: &[u8], at: usize| -> Option<u32> {
        let x: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        Some(if le { u32::from_le_bytes(x) } else { u32::from_be_bytes(x) })
    };
    let w16 = |b: &mut [u8], at: usize, v: u16| -> Option<()> {
        b.get_mut(at..at + 2)?.copy_from_slice(&if le { v.to_le_bytes() } else { v.to_be_bytes() });
        Some(())
    };
    let w32 = |b: &mut [u8], at: usize, v: u32| -> Option<()> {
        b.get_mut(at..at + 4)?.copy_from_slice(&if le { v.to_le_bytes() } else { v.to_be_bytes() });
        Some(())
    };
    let ifd0 = r32(tiff, 4)? as usize;
    let mut exif_ifd = None;
    let n0 = r16(tiff, ifd0)? as usize;
    // A value of type SHORT (3) sits in the first two bytes of the entry's value field, a LONG
    // (4) in all four.
    let set = |b: &mut [u8], e: usize, value: u32| -> Option<()> {
        match r16(b, e + 2)? {
            3 => w16(b, e + 8, value.min(u16::MAX as u32) as u16),
            4 => w32(b, e + 8, value),
            _ => Some(()),
        }
    };
    for i in 0..n0.min(1024) {
        let e = ifd0 + 2 + i * 12;
        match r16(tiff, e)? {
            0x0112 => set(tiff, e, 1)?,
            0x8769 => exif_ifd = Some(r32(tiff, e + 8)? as usize),
            _ => {}
        }
    }
    // The Exif sub-directory only holds the dimensions to update: if it is damaged, the block
    // is kept as it is (the date, camera and GPS still read) with the old dimensions.
    let _ = exif_ifd.and_then(|ifd| {
        let n = r16(tiff, ifd)? as usize;
        for i in 0..n.min(1024) {
            let e = ifd + 2 + i * 12;
            match r16(tiff, e)? {
                0xA002 => set(tiff, e, width)?,
                0xA003 => set(tiff, e, height)?,
                _ => {}
            }
        }
        Some(())
    });
    Some(())
}

/// The ICC profile to embed: the file's own, or one equivalent to its nclx description.
fn icc_profile(handle: &ImageHandle) -> Option<Vec<u8>> {
    match handle.color_profile_raw() {
        Some(raw) if raw.profile_type() == color_profile_types::PROF || raw.profile_type() == color_profile_types::R_ICC => {
            return Some(raw.data);
        }
        _ => {}
    }
    let nclx = handle.color_profile_nclx()?;
    icc_from_nclx(&nclx)
}

fn icc_from_nclx(nclx: &ColorProfileNCLX) -> Option<Vec<u8>> {
    let name = match nclx.color_primaries() {
        ColorPrimaries::ITU_R_BT_709_5 => "sRGB (from HEIF nclx: BT.709 primaries)",
        ColorPrimaries::SMPTE_EG_432_1 => "Display P3 (from HEIF nclx)",
        ColorPrimaries::ITU_R_BT_2020_2_and_2100_0 => "BT.2020 (from HEIF nclx)",
        ColorPrimaries::Unspecified | ColorPrimaries::Unknown => return None,
        _ => "RGB (from HEIF nclx)",
    };
    let prim = [
        (nclx.color_primary_red_x() as f64, nclx.color_primary_red_y() as f64),
        (nclx.color_primary_green_x() as f64, nclx.color_primary_green_y() as f64),
        (nclx.color_primary_blue_x() as f64, nclx.color_primary_blue_y() as f64),
    ];
    let white = (nclx.color_primary_white_x() as f64, nclx.color_primary_white_y() as f64);
    if prim.iter().chain(std::iter::once(&white)).any(|(x, y)| !(*x > 0.0 && *y > 0.0)) {
        return None;
    }
    Some(matrix_trc_icc(name, prim, white))
}

/// An ICC v2 display profile: the given primaries and white point (adapted to D50 with
/// Bradford), and the sRGB tone curve.
pub fn matrix_trc_icc(description: &str, prim: [(f64, f64); 3], white: (f64, f64)) -> Vec<u8> {
    let xyz = |(x, y): (f64, f64)| [x / y, 1.0, (1.0 - x - y) / y];
    let w = xyz(white);
    let p: Vec<[f64; 3]> = prim.iter().map(|&c| xyz(c)).collect();
    // Scale the primaries so that R+G+B = white.
    let m = [[p[0][0], p[1][0], p[2][0]], [p[0][1], p[1][1], p[2][1]], [p[0][2], p[1][2], p[2][2]]];
    let s = mul_vec(&inv3(&m), &w);
    let cols: Vec<[f64; 3]> = (0..3).map(|i| [p[i][0] * s[i], p[i][1] * s[i], p[i][2] * s[i]]).collect();
    // Bradford adaptation from the white point to D50.
    const BRADFORD: [[f64; 3]; 3] = [[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]];
    const D50: [f64; 3] = [0.9642, 1.0, 0.8249];
    let (cs, cd) = (mul_vec(&BRADFORD, &w), mul_vec(&BRADFORD, &D50));
    let scale = [[cd[0] / cs[0], 0.0, 0.0], [0.0, cd[1] / cs[1], 0.0], [0.0, 0.0, cd[2] / cs[2]]];
    let adapt = mul3(&inv3(&BRADFORD), &mul3(&scale, &BRADFORD));
    let adapted: Vec<[f64; 3]> = cols.iter().map(|c| mul_vec(&adapt, c)).collect();

    let s15 = |v: f64| ((v * 65536.0).round() as i32).to_be_bytes();
    let xyz_tag = |v: [f64; 3]| {
        let mut t = b"XYZ \0\0\0\0".to_vec();
        for c in v {
            t.extend_from_slice(&s15(c));
        }
        t
    };
    let mut desc = b"desc\0\0\0\0".to_vec();
    desc.extend_from_slice(&((description.len() + 1) as u32).to_be_bytes());
    desc.extend_from_slice(description.as_bytes());
    desc.push(0);
    desc.extend_from_slice(&[0; 4 + 4 + 2 + 1 + 67]);
    let mut cprt = b"text\0\0\0\0".to_vec();
    cprt.extend_from_slice(b"No copyright, use freely\0");
    let mut curv = b"curv\0\0\0\0".to_vec();
    let n = 1024u32;
    curv.extend_from_slice(&n.to_be_bytes());
    for i in 0..n {
        let v = i as f64 / (n - 1) as f64;
        let lin = if v <= 0.04045 { v / 12.92 } else { ((v + 0.055) / 1.055).powf(2.4) };
        curv.extend_from_slice(&((lin * 65535.0).round() as u16).to_be_bytes());
    }
    let tags: Vec<(&[u8; 4], Vec<u8>)> = vec![
        (b"desc", desc),
        (b"cprt", cprt),
        (b"wtpt", xyz_tag(D50)),
        (b"rXYZ", xyz_tag(adapted[0])),
        (b"gXYZ", xyz_tag(adapted[1])),
        (b"bXYZ", xyz_tag(adapted[2])),
        (b"rTRC", curv),
    ];
    let count = tags.len() + 2; // gTRC and bTRC share rTRC's data
    let mut offset = 128 + 4 + 12 * count;
    let mut table = (count as u32).to_be_bytes().to_vec();
    let mut data = Vec::new();
    let mut trc_at = (0, 0);
    for (sig, body) in &tags {
        while !offset.is_multiple_of(4) {
            offset += 1;
            data.push(0);
        }
        table.extend_from_slice(*sig);
        table.extend_from_slice(&(offset as u32).to_be_bytes());
        table.extend_from_slice(&(body.len() as u32).to_be_bytes());
        if *sig == b"rTRC" {
            trc_at = (offset, body.len());
        }
        offset += body.len();
        data.extend_from_slice(body);
    }
    for sig in [b"gTRC", b"bTRC"] {
        table.extend_from_slice(sig);
        table.extend_from_slice(&(trc_at.0 as u32).to_be_bytes());
        table.extend_from_slice(&(trc_at.1 as u32).to_be_bytes());
    }
    let size = 128 + table.len() + data.len();
    let mut h = vec![0u8; 128];
    h[0..4].copy_from_slice(&(size as u32).to_be_bytes());
    h[8..12].copy_from_slice(&[0x02, 0x10, 0, 0]);
    h[12..16].copy_from_slice(b"mntr");
    h[16..20].copy_from_slice(b"RGB ");
    h[20..24].copy_from_slice(b"XYZ ");
    h[36..40].copy_from_slice(b"acsp");
    for (i, c) in D50.iter().enumerate() {
        h[68 + i * 4..72 + i * 4].copy_from_slice(&s15(*c));
    }
    h.extend_from_slice(&table);
    h.extend_from_slice(&data);
    h
}

fn mul3(a: &[[f64; 3]; 3], b: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let mut r = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            r[i][j] = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    r
}

fn mul_vec(a: &[[f64; 3]; 3], v: &[f64; 3]) -> [f64; 3] {
    [0, 1, 2].map(|i| (0..3).map(|k| a[i][k] * v[k]).sum())
}

fn inv3(m: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    let c = |a: usize, b: usize, c: usize, d: usize| m[a][b] * m[c][d];
    [
        [(c(1, 1, 2, 2) - c(1, 2, 2, 1)) / det, (c(0, 2, 2, 1) - c(0, 1, 2, 2)) / det, (c(0, 1, 1, 2) - c(0, 2, 1, 1)) / det],
        [(c(1, 2, 2, 0) - c(1, 0, 2, 2)) / det, (c(0, 0, 2, 2) - c(0, 2, 2, 0)) / det, (c(0, 2, 1, 0) - c(0, 0, 1, 2)) / det],
        [(c(1, 0, 2, 1) - c(1, 1, 2, 0)) / det, (c(0, 1, 2, 0) - c(0, 0, 2, 1)) / det, (c(0, 0, 1, 1) - c(0, 1, 1, 0)) / det],
    ]
}

/// The description of an ICC profile (v2 `desc` or v4 `mluc`), for reports and tests.
pub fn icc_description(icc: &[u8]) -> Option<String> {
    let be32 = |at: usize| icc.get(at..at + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize);
    let count = be32(128)?;
    for i in 0..count.min(256) {
        let e = 132 + i * 12;
        if icc.get(e..e + 4)? != b"desc" {
            continue;
        }
        let (off, len) = (be32(e + 4)?, be32(e + 8)?);
        let tag = icc.get(off..off.checked_add(len)?)?;
        return match tag.get(0..4)? {
            b"desc" => {
                let n = u32::from_be_bytes(tag.get(8..12)?.try_into().ok()?) as usize;
                let s = tag.get(12..12 + n)?;
                Some(String::from_utf8_lossy(s).trim_end_matches('\0').to_string())
            }
            b"mluc" => {
                let (len, off) = (
                    u32::from_be_bytes(tag.get(20..24)?.try_into().ok()?) as usize,
                    u32::from_be_bytes(tag.get(24..28)?.try_into().ok()?) as usize,
                );
                let units: Vec<u16> = tag.get(off..off + len)?.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
                Some(String::from_utf16_lossy(&units).trim_end_matches('\0').to_string())
            }
            _ => None,
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ffmpeg_hevc_decoder_is_built_in_and_preferred() {
        // build/ffmpeg/ turns libheif's FFmpeg decoder on; if a libheif-sys update silently
        // drops it, conversion falls back to libde265 and gets slower: fail here instead.
        let lib = LibHeif::new();
        let ids: Vec<String> =
            lib.decoder_descriptors(16, Some(CompressionFormat::Hevc)).iter().map(|d| d.id().to_string()).collect();
        assert!(ids.iter().any(|i| i == "ffmpeg"), "HEVC decoders built in: {ids:?}");
        assert!(ids.iter().any(|i| i == "libde265"), "HEVC decoders built in: {ids:?}");
        if std::env::var_os("PHOTOFERRY_HEVC_DECODER").is_none() {
            assert_eq!(hevc_decoder_id(&lib), Some("ffmpeg"));
        }
    }

    #[test]
    fn bt709_profile_matches_srgb_colorants() {
        let icc = matrix_trc_icc("test sRGB", [(0.64, 0.33), (0.30, 0.60), (0.15, 0.06)], (0.3127, 0.3290));
        assert_eq!(icc_description(&icc).as_deref(), Some("test sRGB"));
        let tag = |sig: &[u8; 4]| {
            let n = u32::from_be_bytes(icc[128..132].try_into().unwrap()) as usize;
            (0..n).find_map(|i| {
                let e = 132 + i * 12;
                (&icc[e..e + 4] == sig).then(|| u32::from_be_bytes(icc[e + 4..e + 8].try_into().unwrap()) as usize)
            })
        };
        let read = |sig: &[u8; 4]| {
            let off = tag(sig).unwrap();
            [0, 1, 2].map(|k| i32::from_be_bytes(icc[off + 8 + 4 * k..off + 12 + 4 * k].try_into().unwrap()) as f64 / 65536.0)
        };
        // The published D50-adapted sRGB colorants.
        let r = read(b"rXYZ");
        assert!((r[0] - 0.4361).abs() < 0.002 && (r[1] - 0.2225).abs() < 0.002 && (r[2] - 0.0139).abs() < 0.002, "{r:?}");
        let g = read(b"gXYZ");
        assert!((g[0] - 0.3851).abs() < 0.002 && (g[1] - 0.7169).abs() < 0.002, "{g:?}");
        assert_eq!(u32::from_be_bytes(icc[0..4].try_into().unwrap()) as usize, icc.len());
    }

    #[test]
    fn exif_patch_sets_orientation_and_size_only() {
        let mut tiff = crate::test_fixtures::tiff(
            &[(0x010F, 2, b"Apple\0".to_vec()), (0x0112, 3, vec![0, 6])],
            &[(0xA002, 4, vec![0, 0, 0x0F, 0xC0]), (0xA003, 3, vec![0x0B, 0xD0]), (0x927C, 7, crate::test_fixtures::apple_makernote("ID-1"))],
        );
        let before = tiff.clone();
        patch_exif(&mut tiff, 3024, 4032).unwrap();
        let exif = exif::Reader::new().read_raw(tiff.clone()).unwrap();
        let get = |t| exif.get_field(t, exif::In::PRIMARY).unwrap().value.get_uint(0).unwrap();
        assert_eq!(get(exif::Tag::Orientation), 1);
        assert_eq!(get(exif::Tag::PixelXDimension), 3024);
        assert_eq!(get(exif::Tag::PixelYDimension), 4032);
        assert_eq!(crate::probe::exif::content_identifier(&exif).as_deref(), Some("ID-1"));
        assert_eq!(tiff.len(), before.len());
        // A block whose first directory is unreadable is refused.
        assert!(patch_exif(&mut b"MM\0*\xff\xff\xff\x00".to_vec(), 1, 1).is_none());
        assert!(patch_exif(&mut b"XX".to_vec(), 1, 1).is_none());
    }

    #[test]
    fn exif_patch_writes_a_long_orientation_whole_and_survives_a_damaged_exif_directory() {
        // Orientation stored as a LONG in a big-endian block: 1 must fill all four bytes
        // (writing two gave 65542 = 0x0001_0006).
        let mut tiff = crate::test_fixtures::tiff(&[(0x0112, 4, vec![0, 0, 0, 6])], &[(0xA002, 4, vec![0, 0, 0x0F, 0xC0])]);
        patch_exif(&mut tiff, 10, 20).unwrap();
        let exif = exif::Reader::new().read_raw(tiff).unwrap();
        assert_eq!(exif.get_field(exif::Tag::Orientation, exif::In::PRIMARY).unwrap().value.get_uint(0), Some(1));
        assert_eq!(exif.get_field(exif::Tag::PixelXDimension, exif::In::PRIMARY).unwrap().value.get_uint(0), Some(10));
        // An Exif-directory pointer far past the end: the block is still patched where it can
        // be (Orientation) and kept, not thrown away with the camera, date and GPS in it.
        let mut tiff = crate::test_fixtures::tiff(&[(0x010F, 2, b"Apple\0".to_vec()), (0x0112, 3, vec![0, 6]), (0x8769, 4, vec![0, 1, 0x86, 0xA0])], &[]);
        let before = tiff.clone();
        patch_exif(&mut tiff, 10, 20).unwrap();
        assert_ne!(tiff, before);
        let orientation_at = tiff.windows(2).position(|w| w == [0x01, 0x12]).unwrap();
        assert_eq!(&tiff[orientation_at + 8..orientation_at + 10], &[0, 1]);
    }

    #[test]
    fn ten_bit_samples_scale_with_rounding() {
        let px = |v: u16| v.to_le_bytes();
        let data: Vec<u8> = [0u16, 1023, 512, 2, 1021, 4].iter().flat_map(|&v| px(v)).collect();
        assert_eq!(pack_rgb8(&data, 1, 1, 6, Some(10)), vec![0, 255, 128]);
        // 2 → 0.50 → 0 (2·255 = 510 < 511.5), 1019 → 253.998 → 254, 4 → 0.997 → 1.
        let data2: Vec<u8> = [2u16, 1019, 4].iter().flat_map(|&v| px(v)).collect();
        assert_eq!(pack_rgb8(&data2, 1, 1, 6, Some(10)), vec![0, 254, 1]);
    }
}

/// `photoferry convert`: every HEIC/HEIF among the inputs (files, folders, zips) to
/// `OUT/<stem>.jpg`, never replacing anything (a taken name gets ` (2)`), mtime = capture time.
pub mod files {
    use std::collections::HashSet;
    use std::path::{Path, PathBuf};

    use rayon::prelude::*;
    use serde::Serialize;

    use crate::error::{Error, FileError, FileErrorKind, Result};
    use crate::fsutil::{self, Lock, Placed};
    use crate::model::MediaKind;
    use crate::names::{collision_key, safe_component, split_ext, with_suffix};
    use crate::progress::{Progress, Stage};
    use crate::sniff::{sniff, Sniffed, SNIFF_LEN};
    use crate::source::{self, Locator, Source};

    #[derive(Debug, Clone, Serialize)]
    pub struct Done {
        pub source: String,
        pub dest: String,
        pub notes: Vec<String>,
        /// The same JPEG was already at `dest` (a re-run): nothing was written.
        pub already: bool,
    }

    #[derive(Debug, Default, Serialize)]
    pub struct ConvertReport {
        pub converted: Vec<Done>,
        pub skipped: Vec<(String, String)>,
        pub errors: Vec<FileError>,
    }

    pub fn convert_files(inputs: &[PathBuf], out: &Path, quality: u8, progress: &dyn Progress) -> Result<ConvertReport> {
        if inputs.is_empty() {
            return Err(Error::NoInputs);
        }
        let state = fsutil::state_dir(out);
        let tmp_dir = state.join("tmp");
        std::fs::create_dir_all(&state).map_err(|e| Error::io(&state, e))?;
        let _lock = Lock::acquire(&state, out)?;
        fsutil::clear_dir(&tmp_dir).map_err(|e| Error::io(&tmp_dir, e))?;
        let out = std::fs::canonicalize(out).map_err(|e| Error::io(out, e))?;
        progress.start(Stage::Scan, 0, 0);
        let scanned = source::enumerate(inputs, &out, &tmp_dir);
        progress.finish();
        let mut report = ConvertReport { errors: scanned.errors, ..Default::default() };
        // Each file's name is decided up front, in input order, among this run's files only, so
        // a re-run plans the same names and finds its earlier outputs there (identical bytes:
        // "already there", nothing written). A name held by different bytes is never replaced:
        // the output takes the next free ` (n)` name that no other file of this run planned.
        let mut planned: HashSet<String> = HashSet::new();
        let mut jobs: Vec<(&Source, String)> = Vec::new();
        for s in &scanned.sources {
            match head_kind(s) {
                Ok(Head::Heif) => {
                    let base = format!("{}.jpg", split_ext(&safe_component(&s.name)).0);
                    let name = (1..).map(|n| with_suffix(&base, n)).find(|c| !planned.contains(&collision_key(c))).expect("a free name");
                    planned.insert(collision_key(&name));
                    jobs.push((s, name));
                }
                Ok(Head::Other) => report.skipped.push((s.display(), "not a HEIC/HEIF still".into())),
                // Named HEIC but not one (an empty or cut-off download, an error page): an
                // error, as `organize` reports it, not a quiet skip.
                Ok(Head::Mismatch(why)) => report.errors.push(err(s, why, "skipped")),
                Err(e) => report.errors.push(err(s, format!("read failed: {e}"), "skipped")),
            }
        }
        let claimed = std::sync::Mutex::new(planned);
        progress.start(Stage::Write, jobs.len() as u64, 0);
        let results: Vec<std::result::Result<Done, FileError>> = jobs
            .par_iter()
            .map(|(s, name)| {
                let r = convert_one(s, &out, &tmp_dir, name, quality, &claimed);
                progress.advance(1, 0);
                r
            })
            .collect();
        progress.finish();
        for r in results {
            match r {
                Ok(d) => report.converted.push(d),
                Err(e) => report.errors.push(e),
            }
        }
        Ok(report)
    }

    /// What a source's first bytes say it is.
    enum Head {
        Heif,
        Other,
        /// Its name says HEIF and its content does not: why.
        Mismatch(String),
    }

    fn head_kind(s: &Source) -> std::io::Result<Head> {
        s.read_with(|r| {
            let mut head = [0u8; SNIFF_LEN];
            let mut n = 0;
            while n < head.len() {
                match r.read(&mut head[n..])? {
                    0 => break,
                    k => n += k,
                }
            }
            Ok(match sniff(&s.name, &head[..n]) {
                Sniffed::Media(MediaKind::Heif) => Head::Heif,
                Sniffed::Mismatch { claimed: MediaKind::Heif } => Head::Mismatch(match n {
                    0 => "the file is empty (0 bytes)".into(),
                    1..=15 => format!("only {n} bytes: too short to be a HEIC (a cut-off download?)"),
                    _ => "the content is not HEIC/HEIF as its name says".into(),
                }),
                _ => Head::Other,
            })
        })
    }

    fn err(s: &Source, message: String, action: &str) -> FileError {
        FileError { location: s.display(), kind: FileErrorKind::Corrupt, message, action: action.into(), year: None }
    }

    fn convert_one(
        s: &Source,
        out: &Path,
        tmp_dir: &Path,
        name: &str,
        quality: u8,
        claimed: &std::sync::Mutex<HashSet<String>>,
    ) -> std::result::Result<Done, FileError> {
        // libheif reads a file by its (UTF-8) path: a plain file is read where it is; a zip entry,
        // or a file whose name is not UTF-8, is spilled to a temp file first.
        let spilled;
        let path: &Path = match &s.locator {
            Locator::File(p) if p.to_str().is_some() => p,
            _ => {
                let mut tmp = tempfile::Builder::new().prefix(".pf-").tempfile_in(tmp_dir).map_err(|e| err(s, e.to_string(), "skipped"))?;
                s.read_with(|r| std::io::copy(r, tmp.as_file_mut())).map_err(|e| err(s, format!("read failed: {e}"), "skipped"))?;
                spilled = tmp.into_temp_path();
                &spilled
            }
        };
        let c = super::heic_to_jpeg(path, quality).map_err(|e| err(s, e.to_string(), "not converted"))?;
        let capture = std::fs::File::open(path)
            .ok()
            .and_then(|mut f| crate::probe::probe(MediaKind::Heif, &mut f, 0).ok())
            .and_then(|p| p.capture);
        let mut tmp = tempfile::Builder::new().prefix(".pf-").tempfile_in(tmp_dir).map_err(|e| err(s, e.to_string(), "not written"))?;
        std::io::Write::write_all(tmp.as_file_mut(), &c.jpeg).map_err(|e| err(s, e.to_string(), "not written"))?;
        fsutil::finish_temp(tmp.as_file(), capture.map(|c| c.unix_seconds())).map_err(|e| err(s, e.to_string(), "not written"))?;
        let tmp = tmp.into_temp_path();
        let done = |dest: &str, already: bool| Done { source: s.display(), dest: dest.to_string(), notes: c.notes.clone(), already };
        // The planned name, then ` (n)` names no other file of this run planned or took.
        let base = format!("{}.jpg", split_ext(&safe_component(&s.name)).0);
        let fallbacks = (2u32..).map(|n| with_suffix(&base, n)).filter(|c| c != name);
        for (i, candidate) in std::iter::once(name.to_string()).chain(fallbacks).enumerate() {
            let key = collision_key(&candidate);
            if i > 0 {
                let mut claimed = claimed.lock().unwrap_or_else(|e| e.into_inner());
                if claimed.contains(&key) && !out.join(&candidate).exists() {
                    continue; // planned for another file of this run
                }
                claimed.insert(key);
            }
            match fsutil::place(&tmp, &out.join(&candidate)) {
                Ok(Placed::Done) => {
                    let _ = tmp.keep();
                    return Ok(done(&candidate, false));
                }
                Ok(Placed::Exists) => {
                    if std::fs::read(out.join(&candidate)).is_ok_and(|b| b == c.jpeg) {
                        return Ok(done(&candidate, true));
                    }
                }
                Err(e) => return Err(err(s, format!("cannot write {candidate}: {e}"), "not written")),
            }
        }
        unreachable!("names run out")
    }
}
