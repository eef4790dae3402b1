//! PNG chunks that carry dates (`eXIf`, and XMP in `iTXt`), and the XMP date fields themselves.

use std::io::Read;

use super::ProbeError;
use crate::model::{CaptureTime, DateSource};

/// XMP packets larger than this are ignored (a screenshot's is well under 4 KiB).
const MAX_META_CHUNK: u32 = 4 << 20;

#[derive(Debug, Default)]
pub struct PngMeta {
    pub exif: Option<Vec<u8>>,
    pub xmp: Option<String>,
}

/// Walk PNG chunks up to the first IDAT, collecting `eXIf` and the XMP `iTXt`.
pub fn png_metadata<R: Read>(r: &mut R) -> Result<PngMeta, ProbeError> {
    let mut sig = [0u8; 8];
    r.read_exact(&mut sig).map_err(|_| ProbeError::Corrupt("PNG signature is truncated".into()))?;
    let mut out = PngMeta::default();
    loop {
        let mut hdr = [0u8; 8];
        if r.read_exact(&mut hdr).is_err() {
            return Err(ProbeError::Corrupt("PNG ends before its image data (truncated?)".into()));
        }
        let len = u32::from_be_bytes(hdr[0..4].try_into().unwrap());
        let kind = &hdr[4..8];
        if len > 0x7FFF_FFFF {
            return Err(ProbeError::Corrupt(format!("PNG chunk length {len} is out of range")));
        }
        if kind == b"IDAT" || kind == b"IEND" {
            return Ok(out);
        }
        let wanted = (kind == b"eXIf" || kind == b"iTXt") && len <= MAX_META_CHUNK;
        if wanted {
            let mut body = vec![0u8; len as usize];
            r.read_exact(&mut body).map_err(|_| ProbeError::Corrupt("PNG chunk is truncated".into()))?;
            if kind == b"eXIf" {
                out.exif = Some(body);
            } else if let Some(text) = xmp_from_itxt(&body) {
                out.xmp = Some(text);
            }
            std::io::copy(&mut r.by_ref().take(4), &mut std::io::sink())?; // CRC
        } else {
            let skipped = std::io::copy(&mut r.by_ref().take(len as u64 + 4), &mut std::io::sink())?;
            if skipped < len as u64 + 4 {
                return Err(ProbeError::Corrupt("PNG chunk is truncated".into()));
            }
        }
    }
}

fn xmp_from_itxt(body: &[u8]) -> Option<String> {
    // keyword\0 compression_flag compression_method language\0 translated\0 text
    let nul = body.iter().position(|&b| b == 0)?;
    if &body[..nul] != b"XML:com.adobe.xmp" {
        return None;
    }
    let rest = body.get(nul + 1..)?;
    let (flag, rest) = (rest.first()?, rest.get(2..)?);
    let lang_end = rest.iter().position(|&b| b == 0)?;
    let rest = rest.get(lang_end + 1..)?;
    let tr_end = rest.iter().position(|&b| b == 0)?;
    let text = rest.get(tr_end + 1..)?;
    if *flag != 0 {
        let mut out = String::new();
        flate2::read::ZlibDecoder::new(text).take(MAX_META_CHUNK as u64).read_to_string(&mut out).ok()?;
        return Some(out);
    }
    String::from_utf8(text.to_vec()).ok()
}

/// The capture date in an XMP packet: photoshop:DateCreated, then exif:DateTimeOriginal, then
/// xmp:CreateDate; as an element or as an attribute.
pub fn date_created(xmp: &str) -> Option<CaptureTime> {
    for name in ["photoshop:DateCreated", "exif:DateTimeOriginal", "xmp:CreateDate"] {
        if let Some(value) = element_text(xmp, name).or_else(|| attribute(xmp, name)) {
            if let Some(ct) = super::quicktime::parse_iso8601(value) {
                return Some(CaptureTime { source: DateSource::XmpDateCreated, ..ct });
            }
        }
    }
    None
}

fn element_text<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find('<')? + start;
    Some(xml[start..end].trim())
}

fn attribute<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("{name}=");
    let start = xml.find(&key)? + key.len();
    let quote = xml[start..].chars().next()?;
    if quote != '"' && quote != '\'' {
        return None;
    }
    let end = xml[start + 1..].find(quote)? + start + 1;
    Some(&xml[start + 1..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xmp_element_and_attribute() {
        let el = "<x:xmpmeta><rdf:Description>\n <photoshop:DateCreated>2015-09-27T16:29:28</photoshop:DateCreated>";
        let ct = date_created(el).unwrap();
        assert_eq!(ct.to_iso(), "2015-09-27T16:29:28.000");
        assert_eq!(ct.source, DateSource::XmpDateCreated);
        let at = r#"<rdf:Description xmp:CreateDate="2019-05-21T10:45:52+02:00"/>"#;
        assert_eq!(date_created(at).unwrap().to_iso(), "2019-05-21T10:45:52.000+02:00");
        assert!(date_created("<x:xmpmeta/>").is_none());
        assert!(date_created("<photoshop:DateCreated>garbage</photoshop:DateCreated>").is_none());
    }

    fn chunk(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = (body.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(body);
        v.extend_from_slice(&[0; 4]);
        v
    }

    #[test]
    fn png_chunk_walk() {
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend(chunk(b"IHDR", &[0; 13]));
        let mut itxt = b"XML:com.adobe.xmp\0\0\0\0\0".to_vec();
        itxt.extend_from_slice(b"<photoshop:DateCreated>2015-09-27T16:29:28</photoshop:DateCreated>");
        png.extend(chunk(b"iTXt", &itxt));
        png.extend(chunk(b"IDAT", &[1, 2, 3]));
        let meta = png_metadata(&mut &png[..]).unwrap();
        assert!(meta.exif.is_none());
        assert_eq!(date_created(meta.xmp.as_deref().unwrap()).unwrap().year(), 2015);
        // Truncated inside a chunk, and a chunk length out of range.
        assert!(png_metadata(&mut &png[..40]).is_err());
        let mut bad = b"\x89PNG\r\n\x1a\n".to_vec();
        bad.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
        bad.extend_from_slice(b"tEXt");
        assert!(png_metadata(&mut &bad[..]).is_err());
    }
}
