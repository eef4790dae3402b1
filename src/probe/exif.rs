//! Capture time from EXIF, for HEIC/HEIF, JPEG, PNG (`eXIf`) and DNG, through kamadak-exif.

use std::io::{BufRead, Seek};

use chrono::{NaiveDate, NaiveDateTime};
use exif::{Exif, In, Tag, Value};

use super::ProbeError;
use crate::model::{CaptureTime, DateSource};

/// The EXIF block and, when parts of it could not be parsed, what was wrong.
/// `Ok((None, _))` means the file is fine but carries no EXIF.
pub fn read<R: BufRead + Seek>(reader: &mut R) -> Result<(Option<Exif>, Option<String>), ProbeError> {
    let mut r = exif::Reader::new();
    // Real files carry small EXIF defects (a bad tag count, an offset past the end); keep what
    // parsed rather than losing a good DateTimeOriginal. The caller decides whether the damage
    // matters (it does when no date survived).
    r.continue_on_error(true);
    match r.read_from_container(reader) {
        Ok(exif) => Ok((Some(exif), None)),
        Err(exif::Error::NotFound(_)) => Ok((None, None)),
        Err(e @ exif::Error::PartialResult(_)) => {
            let mut first: Option<String> = None;
            match e.distill_partial_result(|errs| first = errs.first().map(|e| e.to_string())) {
                Ok(exif) => Ok((Some(exif), first.map(|e| format!("damaged EXIF: {e}")))),
                Err(e) => Err(ProbeError::Corrupt(format!("damaged EXIF: {e}"))),
            }
        }
        Err(exif::Error::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Err(ProbeError::Corrupt("the file ends inside its header (truncated?)".into()))
        }
        Err(e) => Err(ProbeError::Corrupt(format!("unreadable header: {e}"))),
    }
}

/// Best capture time in an EXIF block: DateTimeOriginal, then DateTimeDigitized, then DateTime,
/// each with its sub-second and offset companions.
pub fn capture_time(exif: &Exif) -> Option<CaptureTime> {
    let candidates = [
        (Tag::DateTimeOriginal, Tag::SubSecTimeOriginal, Tag::OffsetTimeOriginal, DateSource::ExifDateTimeOriginal),
        (Tag::DateTimeDigitized, Tag::SubSecTimeDigitized, Tag::OffsetTimeDigitized, DateSource::ExifDateTimeDigitized),
        (Tag::DateTime, Tag::SubSecTime, Tag::OffsetTime, DateSource::ExifDateTime),
    ];
    for (date_tag, subsec_tag, offset_tag, source) in candidates {
        let Some(text) = ascii(exif, date_tag) else { continue };
        let Some(mut local) = parse_exif_datetime(text) else { continue };
        if let Some(ms) = ascii(exif, subsec_tag).and_then(parse_subsec_millis) {
            local += chrono::Duration::milliseconds(ms);
        }
        let offset = ascii(exif, offset_tag).and_then(parse_offset);
        return Some(CaptureTime::new(local, offset, source));
    }
    None
}

/// Apple's Live Photo identifier: MakerNote tag 0x0011 (ContentIdentifier). The MakerNote starts
/// `Apple iOS\0`, a version, `MM`, then a big-endian IFD at byte 14 whose offsets count from the
/// start of the MakerNote. Bounded and defensive: a damaged MakerNote yields `None`.
pub fn content_identifier(exif: &Exif) -> Option<String> {
    let field = exif.get_field(Tag::MakerNote, In::PRIMARY)?;
    let note: &[u8] = match &field.value {
        Value::Undefined(b, _) => b,
        Value::Byte(b) => b,
        _ => return None,
    };
    apple_makernote_string(note, 0x0011)
}

/// An ASCII tag from an Apple MakerNote.
pub fn apple_makernote_string(note: &[u8], wanted: u16) -> Option<String> {
    if !note.starts_with(b"Apple iOS\0") || note.get(12..14)? != b"MM" {
        return None;
    }
    let be16 = |at: usize| note.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let be32 = |at: usize| note.get(at..at + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize);
    let count = be16(14)? as usize;
    for i in 0..count.min(512) {
        let e = 16 + i * 12;
        let (tag, typ, n) = (be16(e)?, be16(e + 2)?, be32(e + 4)?);
        if tag != wanted {
            continue;
        }
        if typ != 2 || n == 0 || n > 4096 {
            return None;
        }
        let bytes = if n <= 4 { note.get(e + 8..e + 8 + n)? } else { note.get(be32(e + 8)?..be32(e + 8)?.checked_add(n)?)? };
        let s = std::str::from_utf8(bytes).ok()?.trim_end_matches('\0').trim();
        return (!s.is_empty()).then(|| s.to_string());
    }
    None
}

fn ascii(exif: &Exif, tag: Tag) -> Option<&[u8]> {
    let field = exif.get_field(tag, In::PRIMARY)?;
    match &field.value {
        Value::Ascii(v) => v.first().map(|s| s.as_slice()),
        _ => None,
    }
}

/// `YYYY:MM:DD HH:MM:SS` (some writers use `-` in the date). All-zero or blank dates are absent.
pub fn parse_exif_datetime(b: &[u8]) -> Option<NaiveDateTime> {
    let s = std::str::from_utf8(b).ok()?.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    if s.len() < 19 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<u32>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    NaiveDate::from_ymd_opt(y as i32, mo, d)?.and_hms_opt(h, mi, se.min(59))
}

/// SubSecTime digits are a decimal fraction: "5" is 500 ms, "123" is 123 ms, "0123" 12 ms.
fn parse_subsec_millis(b: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(b).ok()?.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut digits: String = s.chars().take(3).collect();
    while digits.len() < 3 {
        digits.push('0');
    }
    digits.parse().ok()
}

/// `+01:00`, `-0700`, `Z` → seconds east of UTC.
pub fn parse_offset(b: &[u8]) -> Option<i32> {
    let s = std::str::from_utf8(b).ok()?.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    if s == "Z" {
        return Some(0);
    }
    let sign = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let rest: String = s[1..].chars().filter(|c| *c != ':').collect();
    if rest.len() != 4 || !rest.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let h: i32 = rest[0..2].parse().ok()?;
    let m: i32 = rest[2..4].parse().ok()?;
    (h <= 14 && m < 60).then_some(sign * (h * 3600 + m * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetime_parsing() {
        let d = parse_exif_datetime(b"2021:04:10 11:44:00\0").unwrap();
        assert_eq!(d.to_string(), "2021-04-10 11:44:00");
        assert_eq!(parse_exif_datetime(b"2021-04-10 11:44:00").unwrap().to_string(), "2021-04-10 11:44:00");
        assert!(parse_exif_datetime(b"0000:00:00 00:00:00").is_none());
        assert!(parse_exif_datetime(b"    :  :     :  :  ").is_none());
        assert!(parse_exif_datetime(b"2021:13:10 11:44:00").is_none());
    }

    #[test]
    fn apple_makernote_content_identifier() {
        let note = crate::test_fixtures::apple_makernote("E905E6C6-C747-4805-942F-9904A0281F02");
        assert_eq!(apple_makernote_string(&note, 0x0011).as_deref(), Some("E905E6C6-C747-4805-942F-9904A0281F02"));
        assert_eq!(apple_makernote_string(&note, 0x000b), None);
        // Truncated anywhere, or not Apple's: no identifier, no panic.
        for cut in 0..note.len() {
            let _ = apple_makernote_string(&note[..cut], 0x0011);
        }
        assert_eq!(apple_makernote_string(&note[..note.len() - 10], 0x0011), None);
        assert_eq!(apple_makernote_string(b"Nikon\0\x02\x10\0\0MM*", 0x0011), None);
        // An offset pointing far past the end.
        let mut bad = note.clone();
        bad[24..28].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(apple_makernote_string(&bad, 0x0011), None);
    }

    #[test]
    fn offsets() {
        assert_eq!(parse_offset(b"+01:00"), Some(3600));
        assert_eq!(parse_offset(b"-07:00"), Some(-25200));
        assert_eq!(parse_offset(b"-0530"), Some(-19800));
        assert_eq!(parse_offset(b"Z"), Some(0));
        assert_eq!(parse_offset(b"   :  "), None);
        assert_eq!(parse_offset(b"+25:00"), None);
    }

    #[test]
    fn subseconds() {
        assert_eq!(parse_subsec_millis(b"5"), Some(500));
        assert_eq!(parse_subsec_millis(b"123"), Some(123));
        assert_eq!(parse_subsec_millis(b"0123"), Some(12));
        assert_eq!(parse_subsec_millis(b""), None);
        assert_eq!(parse_subsec_millis(b"ab"), None);
    }
}
