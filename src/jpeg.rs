//! JPEG encoding for `convert`, through libjpeg-turbo's TurboJPEG API (the system library,
//! linked by `build.rs`; Debian: libturbojpeg0-dev, macOS: jpeg-turbo). Only the five calls of
//! the long-stable TurboJPEG 2 API are used, which TurboJPEG 3 still exports.
//!
//! Why not the pure-Rust `jpeg-encoder` used before: encoding took a quarter of a conversion's
//! CPU time with it and about a tenth with libjpeg-turbo's SIMD code (BENCHMARKS.md).
//!
//! The metadata segments (EXIF, ICC, XMP) are spliced in after the encoder's own JFIF header,
//! where libjpeg's `jpeg_write_marker` would put them.

use std::ffi::{c_char, c_int, c_uchar, c_ulong, c_void, CStr};

type TjHandle = *mut c_void;

extern "C" {
    fn tjInitCompress() -> TjHandle;
    fn tjDestroy(handle: TjHandle) -> c_int;
    fn tjFree(buffer: *mut c_uchar);
    fn tjGetErrorStr2(handle: TjHandle) -> *mut c_char;
    fn tjCompressFromYUVPlanes(
        handle: TjHandle,
        src_planes: *mut *const c_uchar,
        width: c_int,
        strides: *const c_int,
        height: c_int,
        subsamp: c_int,
        jpeg_buf: *mut *mut c_uchar,
        jpeg_size: *mut c_ulong,
        quality: c_int,
        flags: c_int,
    ) -> c_int;
    fn tjCompress2(
        handle: TjHandle,
        src_buf: *const c_uchar,
        width: c_int,
        pitch: c_int,
        height: c_int,
        pixel_format: c_int,
        jpeg_buf: *mut *mut c_uchar,
        jpeg_size: *mut c_ulong,
        subsamp: c_int,
        quality: c_int,
        flags: c_int,
    ) -> c_int;
}

const TJSAMP_420: c_int = 2;

/// The longest side libjpeg-turbo encodes (its JPEG_MAX_DIMENSION).
pub const MAX_SIDE: u32 = 65_500;

/// The largest ICC profile a JPEG holds: 255 APP2 chunks of 65,519 bytes (ICC.1 Annex B).
pub const MAX_ICC_LEN: usize = 255 * 65_519;
const TJPF_RGB: c_int = 0;

/// The pixels to encode.
pub enum Source<'a> {
    /// 8-bit YCbCr 4:2:0 planes (JFIF's full-range BT.601), each with its row stride in bytes;
    /// the chroma planes are `ceil(width/2)` × `ceil(height/2)`. Encoded as they are.
    Ycbcr420 { y: (&'a [u8], usize), cb: (&'a [u8], usize), cr: (&'a [u8], usize) },
    /// Tightly packed 8-bit RGB; converted to YCbCr 4:2:0 by the encoder.
    Rgb(&'a [u8]),
}

/// Metadata to carry into the JPEG.
#[derive(Default)]
pub struct Metadata<'a> {
    /// The EXIF block's TIFF part (from `MM\0*` or `II*\0`).
    pub exif_tiff: Option<&'a [u8]>,
    pub icc: Option<&'a [u8]>,
    pub xmp: Option<&'a [u8]>,
}

/// Encode `width`×`height` pixels at `quality` (1–100) with 4:2:0 chroma, then add `meta`.
pub fn encode(src: Source<'_>, width: u32, height: u32, quality: u8, meta: &Metadata<'_>) -> Result<Vec<u8>, String> {
    if width == 0 || height == 0 {
        return Err(format!("cannot encode a {width}x{height} image"));
    }
    let (w, h) = (to_int(width)?, to_int(height)?);
    let (cw, ch) = (width.div_ceil(2) as usize, height.div_ceil(2) as usize);
    // Check every plane is as large as its geometry says before handing pointers to C.
    match &src {
        Source::Ycbcr420 { y, cb, cr } => {
            for ((data, stride), (pw, ph)) in [(y, (width as usize, height as usize)), (cb, (cw, ch)), (cr, (cw, ch))] {
                if *stride < pw || data.len() < stride * (ph - 1) + pw {
                    return Err(format!("a {pw}x{ph} plane does not fit its {} bytes", data.len()));
                }
            }
        }
        Source::Rgb(rgb) => {
            if rgb.len() < width as usize * height as usize * 3 {
                return Err("RGB buffer smaller than the image".into());
            }
        }
    }
    let quality = c_int::from(quality.clamp(1, 100));
    // SAFETY: the handle is checked, used by this thread only and destroyed below; every
    // buffer was checked above to hold the geometry passed with it; libjpeg-turbo allocates the
    // output (`out` starts null) and it is freed with tjFree after being copied.
    unsafe {
        let handle = tjInitCompress();
        if handle.is_null() {
            return Err("libjpeg-turbo: cannot start a compressor".into());
        }
        let mut out: *mut c_uchar = std::ptr::null_mut();
        let mut size: c_ulong = 0;
        let rc = match &src {
            Source::Ycbcr420 { y, cb, cr } => {
                let mut planes = [y.0.as_ptr(), cb.0.as_ptr(), cr.0.as_ptr()];
                let strides = [to_int(y.1 as u32)?, to_int(cb.1 as u32)?, to_int(cr.1 as u32)?];
                tjCompressFromYUVPlanes(handle, planes.as_mut_ptr(), w, strides.as_ptr(), h, TJSAMP_420, &mut out, &mut size, quality, 0)
            }
            Source::Rgb(rgb) => tjCompress2(handle, rgb.as_ptr(), w, 0, h, TJPF_RGB, &mut out, &mut size, TJSAMP_420, quality, 0),
        };
        let result = if rc != 0 || out.is_null() {
            let msg = tjGetErrorStr2(handle);
            Err(if msg.is_null() { "libjpeg-turbo failed".to_string() } else { CStr::from_ptr(msg).to_string_lossy().into_owned() })
        } else {
            Ok(std::slice::from_raw_parts(out, size as usize).to_vec())
        };
        if !out.is_null() {
            tjFree(out);
        }
        tjDestroy(handle);
        result.map(|jpeg| with_metadata(&jpeg, meta))?
    }
}

fn to_int(v: u32) -> Result<c_int, String> {
    c_int::try_from(v).map_err(|_| format!("{v} is too large"))
}

/// `jpeg` with the metadata segments inserted after SOI and the JFIF APP0 segment.
fn with_metadata(jpeg: &[u8], meta: &Metadata<'_>) -> Result<Vec<u8>, String> {
    if !jpeg.starts_with(&[0xFF, 0xD8]) {
        return Err("encoder output is not a JPEG".into());
    }
    let mut at = 2;
    if jpeg.get(2..4) == Some(&[0xFF, 0xE0]) {
        let len = jpeg.get(4..6).map(|b| u16::from_be_bytes([b[0], b[1]]) as usize).ok_or("short JFIF header")?;
        at = 4 + len;
    }
    let mut segments = Vec::new();
    if let Some(tiff) = meta.exif_tiff {
        segment(&mut segments, 0xE1, &[b"Exif\0\0", tiff])?;
    }
    if let Some(icc) = meta.icc {
        // ICC.1 Annex B: chunks of at most 65,519 bytes, numbered from 1.
        let chunks: Vec<&[u8]> = icc.chunks(65_519).collect();
        let count = u8::try_from(chunks.len()).map_err(|_| "ICC profile too large for a JPEG")?;
        for (i, chunk) in chunks.iter().enumerate() {
            segment(&mut segments, 0xE2, &[b"ICC_PROFILE\0", &[i as u8 + 1, count], chunk])?;
        }
    }
    if let Some(xmp) = meta.xmp {
        segment(&mut segments, 0xE1, &[b"http://ns.adobe.com/xap/1.0/\0", xmp])?;
    }
    let head = jpeg.get(..at).ok_or("short JFIF header")?;
    Ok([head, &segments, &jpeg[at..]].concat())
}

/// Append one APPn marker segment made of `parts`.
fn segment(out: &mut Vec<u8>, marker: u8, parts: &[&[u8]]) -> Result<(), String> {
    let len = 2 + parts.iter().map(|p| p.len()).sum::<usize>();
    let len = u16::try_from(len).map_err(|_| format!("APP{} segment of {len} bytes is too large for a JPEG", marker - 0xE0))?;
    out.extend_from_slice(&[0xFF, marker]);
    out.extend_from_slice(&len.to_be_bytes());
    for p in parts {
        out.extend_from_slice(p);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gray_rgb(w: u32, h: u32) -> Vec<u8> {
        (0..w * h).flat_map(|i| [(i % 251) as u8, 128, 200]).collect()
    }

    #[test]
    fn rgb_encodes_to_a_jpeg_that_decodes_at_its_size() {
        let rgb = gray_rgb(33, 17);
        let jpeg = encode(Source::Rgb(&rgb), 33, 17, 90, &Metadata::default()).unwrap();
        let img = image::load_from_memory(&jpeg).unwrap();
        assert_eq!((img.width(), img.height()), (33, 17));
    }

    #[test]
    fn ycbcr_planes_are_encoded_as_given() {
        // A flat colour: Y=76, Cb=85, Cr=255 is pure red in JFIF's YCbCr.
        let (w, h) = (31u32, 9u32);
        let (cw, chh) = (w.div_ceil(2) as usize, h.div_ceil(2) as usize);
        let y = vec![76u8; 40 * h as usize];
        let cb = vec![85u8; 20 * chh];
        let cr = vec![255u8; 20 * chh];
        assert!(cw <= 20);
        let src = Source::Ycbcr420 { y: (&y, 40), cb: (&cb, 20), cr: (&cr, 20) };
        let jpeg = encode(src, w, h, 95, &Metadata::default()).unwrap();
        let img = image::load_from_memory(&jpeg).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (w, h));
        let p = img.get_pixel(15, 4).0;
        assert!(p[0] > 240 && p[1] < 15 && p[2] < 15, "{p:?}");
    }

    #[test]
    fn a_plane_too_small_for_its_geometry_is_refused_before_c_sees_it() {
        let y = vec![0u8; 10];
        let src = Source::Ycbcr420 { y: (&y, 4), cb: (&y, 2), cr: (&y, 2) };
        assert!(encode(src, 4, 4, 90, &Metadata::default()).unwrap_err().contains("plane"));
    }

    #[test]
    fn metadata_segments_follow_the_jfif_header_and_a_large_icc_is_chunked() {
        let rgb = gray_rgb(8, 8);
        let tiff = b"MM\0*\0\0\0\x08\0\0".to_vec();
        let icc: Vec<u8> = (0..70_000u32).map(|i| i as u8).collect();
        let xmp = b"<x:xmpmeta/>".to_vec();
        let meta = Metadata { exif_tiff: Some(&tiff), icc: Some(&icc), xmp: Some(&xmp) };
        let jpeg = encode(Source::Rgb(&rgb), 8, 8, 90, &meta).unwrap();
        // Walk the segments: SOI, APP0 JFIF, APP1 Exif, APP2 ×2, APP1 XMP, then the encoder's.
        let mut at = 2;
        let mut seen = Vec::new();
        while jpeg[at] == 0xFF && (0xE0..=0xEF).contains(&jpeg[at + 1]) {
            let len = u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]) as usize;
            seen.push((jpeg[at + 1], jpeg[at + 4..at + 2 + len].to_vec()));
            at += 2 + len;
        }
        assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), [0xE0, 0xE1, 0xE2, 0xE2, 0xE1]);
        assert_eq!(seen[1].1, [b"Exif\0\0".as_slice(), &tiff].concat());
        assert_eq!(&seen[2].1[..14], b"ICC_PROFILE\0\x01\x02");
        assert_eq!(&seen[3].1[..14], b"ICC_PROFILE\0\x02\x02");
        let joined = [&seen[2].1[14..], &seen[3].1[14..]].concat();
        assert_eq!(joined, icc);
        assert!(seen[4].1.ends_with(b"<x:xmpmeta/>"));
        assert!(image::load_from_memory(&jpeg).is_ok());
    }
}
