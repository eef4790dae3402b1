//! Probe: read what a media file says about itself (capture time, Live Photo identifier) without
//! decoding pixels. Every reader here is bounded and treats the file as hostile.

pub mod exif;
pub mod quicktime;
pub mod xmp;

use std::io::{BufReader, Read, Seek, SeekFrom};

use crate::model::{CaptureTime, MediaKind};

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{0}")]
    Corrupt(String),
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
}

/// What a probe found. Every field is optional: a photo without EXIF is still a photo.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Probe {
    pub capture: Option<CaptureTime>,
    /// Apple's Live Photo content identifier (still: MakerNote 0x0011; video: QuickTime Keys).
    pub content_id: Option<String>,
    /// A video's duration (mvhd), for the Live Photo fallback ("short video").
    pub duration_secs: Option<f64>,
}

/// Probe a file of `len` bytes whose kind is already known from its content.
pub fn probe<R: Read + Seek>(kind: MediaKind, r: &mut R, len: u64) -> Result<Probe, ProbeError> {
    r.seek(SeekFrom::Start(0))?;
    match kind {
        MediaKind::Heif | MediaKind::Jpeg | MediaKind::Dng => {
            let mut br = BufReader::with_capacity(64 << 10, r);
            let (exif, damage) = exif::read(&mut br)?;
            let capture = exif.as_ref().and_then(exif::capture_time);
            let content_id = exif.as_ref().and_then(exif::content_identifier);
            match (capture, damage) {
                (None, Some(damage)) => Err(ProbeError::Corrupt(damage)),
                (capture, _) => Ok(Probe { capture, content_id, duration_secs: None }),
            }
        }
        MediaKind::Png => {
            let mut br = BufReader::with_capacity(64 << 10, r);
            let chunks = xmp::png_metadata(&mut br)?;
            let from_exif = match &chunks.exif {
                Some(raw) => ::exif::Reader::new().read_raw(raw.clone()).ok().as_ref().and_then(exif::capture_time),
                None => None,
            };
            let from_xmp = chunks.xmp.as_deref().and_then(xmp::date_created);
            Ok(Probe { capture: from_exif.or(from_xmp), ..Probe::default() })
        }
        MediaKind::Mov | MediaKind::Mp4 => {
            let meta = quicktime::read(r, len)?;
            Ok(Probe {
                capture: meta.capture_time(),
                content_id: meta.content_identifier().map(str::to_owned),
                duration_secs: meta.duration_secs(),
            })
        }
        MediaKind::Gif => {
            let mut head = [0u8; 13];
            r.read_exact(&mut head).map_err(|_| ProbeError::Corrupt("GIF header is truncated".into()))?;
            Ok(Probe::default())
        }
        MediaKind::Aae => Ok(Probe::default()),
    }
}
