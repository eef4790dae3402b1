//! Decide what a file is from its first bytes. The extension is only a tie-breaker (MOV vs MP4,
//! `.AAE` XML) and a hint for the error message when the content contradicts it.

use crate::model::MediaKind;

/// How many leading bytes `sniff` wants to see.
pub const SNIFF_LEN: usize = 64;

/// Result of looking at a file's head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sniffed {
    Media(MediaKind),
    /// A zip archive (a container to open, not a file to write).
    Zip,
    /// Not something we organize; the string says what it looked like.
    Other(&'static str),
    /// The extension promises media but the content is something else (corrupt or truncated).
    Mismatch { claimed: MediaKind },
}

/// File names that are operating-system litter: never media, never worth reading.
pub fn is_litter(name: &str) -> bool {
    let lower = name.to_lowercase();
    lower == ".ds_store" || lower == "thumbs.db" || lower == "desktop.ini" || lower.starts_with("._")
}

/// The media kind an extension promises, if any.
pub fn kind_from_extension(name: &str) -> Option<MediaKind> {
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "heic" | "heif" | "hif" | "avif" => MediaKind::Heif,
        "jpg" | "jpeg" | "jpe" => MediaKind::Jpeg,
        "png" => MediaKind::Png,
        "gif" => MediaKind::Gif,
        "mov" | "qt" => MediaKind::Mov,
        "mp4" | "m4v" => MediaKind::Mp4,
        "dng" => MediaKind::Dng,
        "aae" => MediaKind::Aae,
        _ => return None,
    })
}

pub fn is_zip_name(name: &str) -> bool {
    name.to_ascii_lowercase().ends_with(".zip")
}

/// Classify a file from its name and first bytes (up to `SNIFF_LEN`).
pub fn sniff(name: &str, head: &[u8]) -> Sniffed {
    let claimed = kind_from_extension(name);
    if let Some(kind) = sniff_content(name, head) {
        return Sniffed::Media(kind);
    }
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return Sniffed::Zip;
    }
    match claimed {
        // An .AAE that is not XML is simply not an AAE; it is not a photo that we would lose.
        Some(MediaKind::Aae) => Sniffed::Other("an .aae file that is not XML"),
        Some(kind) => Sniffed::Mismatch { claimed: kind },
        None => Sniffed::Other(describe_other(name, head)),
    }
}

fn sniff_content(name: &str, head: &[u8]) -> Option<MediaKind> {
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some(MediaKind::Jpeg);
    }
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some(MediaKind::Png);
    }
    if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        return Some(MediaKind::Gif);
    }
    if head.starts_with(b"II*\0") || head.starts_with(b"MM\0*") {
        // TIFF containers: we only organize DNG (raw photos); other TIFFs are skipped.
        return (kind_from_extension(name) == Some(MediaKind::Dng)).then_some(MediaKind::Dng);
    }
    if head.len() >= 12 && &head[4..8] == b"ftyp" {
        let brand = &head[8..12];
        return Some(match brand {
            b"heic" | b"heix" | b"heim" | b"heis" | b"hevc" | b"hevx" | b"mif1" | b"msf1" | b"avif"
            | b"avis" | b"mif2" => MediaKind::Heif,
            b"qt  " => MediaKind::Mov,
            _ => {
                if kind_from_extension(name) == Some(MediaKind::Mov) {
                    MediaKind::Mov
                } else {
                    MediaKind::Mp4
                }
            }
        });
    }
    // Old QuickTime files have no ftyp and start straight with a well-known atom.
    if head.len() >= 8 && matches!(&head[4..8], b"moov" | b"mdat" | b"wide" | b"free" | b"skip" | b"pnot")
        && kind_from_extension(name).is_some_and(|k| k.is_video())
    {
        return kind_from_extension(name);
    }
    if kind_from_extension(name) == Some(MediaKind::Aae) {
        let text = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
        let text = trim_ascii_start(text);
        if text.starts_with(b"<?xml") || text.starts_with(b"<plist") || text.starts_with(b"bplist") {
            return Some(MediaKind::Aae);
        }
    }
    None
}

fn trim_ascii_start(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|c| c.is_ascii_whitespace()).count();
    &b[n..]
}

fn describe_other(name: &str, head: &[u8]) -> &'static str {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".csv") {
        "a CSV file"
    } else if lower.ends_with(".json") {
        "a JSON file"
    } else if head.is_empty() {
        "an empty file"
    } else if head.starts_with(b"II*\0") || head.starts_with(b"MM\0*") {
        "a TIFF file that is not a DNG"
    } else {
        "not a photo or video"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_beats_extension() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        assert_eq!(sniff("screenshot-really-a-png.jpeg", png), Sniffed::Media(MediaKind::Png));
        assert_eq!(sniff("x.JPG", &[0xFF, 0xD8, 0xFF, 0xE1]), Sniffed::Media(MediaKind::Jpeg));
        assert_eq!(sniff("a.GIF", b"GIF89a...."), Sniffed::Media(MediaKind::Gif));
    }

    #[test]
    fn isobmff_brands() {
        let mk = |brand: &[u8; 4]| {
            let mut v = vec![0, 0, 0, 24];
            v.extend_from_slice(b"ftyp");
            v.extend_from_slice(brand);
            v.extend_from_slice(&[0; 12]);
            v
        };
        assert_eq!(sniff("IMG_1.HEIC", &mk(b"heic")), Sniffed::Media(MediaKind::Heif));
        assert_eq!(sniff("cat.hif", &mk(b"mif1")), Sniffed::Media(MediaKind::Heif));
        assert_eq!(sniff("IMG_1.MOV", &mk(b"qt  ")), Sniffed::Media(MediaKind::Mov));
        assert_eq!(sniff("clip.mp4", &mk(b"isom")), Sniffed::Media(MediaKind::Mp4));
        assert_eq!(sniff("clip.m4v", &mk(b"M4V ")), Sniffed::Media(MediaKind::Mp4));
        assert_eq!(sniff("IMG_1.mov", &mk(b"mp42")), Sniffed::Media(MediaKind::Mov));
    }

    #[test]
    fn garbage_with_media_extension_is_a_mismatch() {
        assert_eq!(sniff("IMG_1.HEIC", b"<html>oops"), Sniffed::Mismatch { claimed: MediaKind::Heif });
        assert_eq!(sniff("IMG_1.JPG", b""), Sniffed::Mismatch { claimed: MediaKind::Jpeg });
    }

    #[test]
    fn non_media_is_other() {
        assert!(matches!(sniff("Photo Details.csv", b"imgName,fileChecksum"), Sniffed::Other(_)));
        assert!(matches!(sniff("x.tif", b"II*\0abcd"), Sniffed::Other(_)));
        assert_eq!(sniff("raw.DNG", b"II*\0abcd"), Sniffed::Media(MediaKind::Dng));
        assert_eq!(sniff("inner.zip", b"PK\x03\x04...."), Sniffed::Zip);
    }

    #[test]
    fn aae_sidecars() {
        assert_eq!(sniff("IMG_1234.AAE", b"<?xml version=\"1.0\"?>"), Sniffed::Media(MediaKind::Aae));
        assert_eq!(sniff("IMG_O1234.aae", b"\xEF\xBB\xBF  <plist>"), Sniffed::Media(MediaKind::Aae));
        assert!(matches!(sniff("IMG_1234.AAE", b"garbage"), Sniffed::Other(_)));
    }

    #[test]
    fn litter() {
        assert!(is_litter(".DS_Store"));
        assert!(is_litter("Thumbs.db"));
        assert!(is_litter("._IMG_0001.HEIC"));
        assert!(!is_litter("IMG_0001.HEIC"));
    }
}
