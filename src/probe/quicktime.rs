//! A small QuickTime / ISO-BMFF box reader for MOV and MP4: the `mvhd` creation time and the
//! Apple `mdta` Keys metadata (`com.apple.quicktime.creationdate`, `…content.identifier`), read
//! from both `moov/meta` (Apple's layout) and `moov/udta/meta` (ffmpeg's layout).
//!
//! Only the `moov` box is loaded into memory; `mdat` is skipped by seeking, so a multi-gigabyte
//! video costs a few reads.

use std::io::{Read, Seek, SeekFrom};

use chrono::{DateTime, NaiveDate, NaiveDateTime};

use super::ProbeError;
use crate::model::{CaptureTime, DateSource};

/// Seconds between 1904-01-01 (QuickTime epoch) and 1970-01-01.
const QT_EPOCH_OFFSET: i64 = 2_082_844_800;
/// A `moov` larger than this is not metadata we want in memory; it is treated as corrupt.
const MAX_MOOV: u64 = 256 << 20;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct QtMeta {
    /// `mvhd` creation time, seconds since 1904-01-01 UTC (0 = unset).
    pub mvhd_creation: Option<u64>,
    /// `mvhd` (timescale, duration).
    pub mvhd_duration: Option<(u32, u64)>,
    /// Keys metadata as (key, UTF-8 value), in file order; `moov/meta` before `moov/udta/meta`.
    pub keys: Vec<(String, String)>,
}

impl QtMeta {
    pub fn key(&self, name: &str) -> Option<&str> {
        self.keys.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Keys creationdate (with its offset), else `mvhd` as UTC.
    pub fn capture_time(&self) -> Option<CaptureTime> {
        if let Some(ct) = self.key("com.apple.quicktime.creationdate").and_then(parse_iso8601) {
            return Some(CaptureTime { source: DateSource::QuickTimeCreationDate, ..ct });
        }
        let secs = self.mvhd_creation.filter(|s| *s > 0)? as i64 - QT_EPOCH_OFFSET;
        let utc = DateTime::from_timestamp(secs, 0)?.naive_utc();
        Some(CaptureTime::from_utc(utc, DateSource::QuickTimeMvhd))
    }

    pub fn duration_secs(&self) -> Option<f64> {
        let (scale, dur) = self.mvhd_duration.filter(|(s, _)| *s > 0)?;
        Some(dur as f64 / scale as f64)
    }

    pub fn content_identifier(&self) -> Option<&str> {
        self.key("com.apple.quicktime.content.identifier")
    }
}

/// Read the metadata of a QuickTime/MP4 file of `len` bytes.
pub fn read<R: Read + Seek>(r: &mut R, len: u64) -> Result<QtMeta, ProbeError> {
    let mut pos = 0u64;
    while pos + 8 <= len {
        r.seek(SeekFrom::Start(pos))?;
        let mut hdr = [0u8; 16];
        r.read_exact(&mut hdr[..8])?;
        let size32 = u32::from_be_bytes(hdr[0..4].try_into().unwrap()) as u64;
        let kind = [hdr[4], hdr[5], hdr[6], hdr[7]];
        let (size, header_len) = match size32 {
            0 => (len - pos, 8),
            1 => {
                r.read_exact(&mut hdr[8..16])?;
                (u64::from_be_bytes(hdr[8..16].try_into().unwrap()), 16)
            }
            n => (n, 8),
        };
        if size < header_len {
            return Err(ProbeError::Corrupt(format!(
                "box '{}' at byte {pos} has an impossible size {size}",
                fourcc(&kind)
            )));
        }
        let end = pos.saturating_add(size);
        if &kind == b"moov" {
            if end > len {
                return Err(ProbeError::Corrupt(format!(
                    "the movie header (moov) runs past the end of the file ({end} > {len} bytes): truncated?"
                )));
            }
            if size > MAX_MOOV {
                return Err(ProbeError::Corrupt(format!("the movie header (moov) is implausibly large ({size} bytes)")));
            }
            let mut body = vec![0u8; (size - header_len) as usize];
            r.read_exact(&mut body)?;
            return Ok(parse_moov(&body));
        }
        if end > len {
            break; // a truncated last box (usually mdat) before any moov
        }
        pos = end;
    }
    Err(ProbeError::Corrupt("no movie header (moov box) found: truncated or not a QuickTime/MP4 file".into()))
}

fn fourcc(k: &[u8; 4]) -> String {
    k.iter().map(|&c| if c.is_ascii_graphic() || c == b' ' { c as char } else { '?' }).collect()
}

/// Iterate the child boxes in `data`, stopping quietly at the first malformed one.
fn boxes(data: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let hdr = data.get(pos..pos + 8)?;
        let size32 = u32::from_be_bytes(hdr[0..4].try_into().unwrap()) as usize;
        let kind: [u8; 4] = hdr[4..8].try_into().unwrap();
        let (size, hl) = match size32 {
            0 => (data.len() - pos, 8),
            1 => (u64::from_be_bytes(data.get(pos + 8..pos + 16)?.try_into().unwrap()).try_into().ok()?, 16),
            n => (n, 8),
        };
        if size < hl {
            return None;
        }
        let body = data.get(pos + hl..pos.checked_add(size)?)?;
        pos += size;
        Some((kind, body))
    })
}

fn parse_moov(moov: &[u8]) -> QtMeta {
    let mut meta = QtMeta::default();
    let mut udta_metas = Vec::new();
    for (kind, body) in boxes(moov) {
        match &kind {
            b"mvhd" => {
                meta.mvhd_creation = parse_mvhd(body);
                meta.mvhd_duration = parse_mvhd_duration(body);
            }
            b"meta" => parse_meta(body, &mut meta.keys),
            b"udta" => udta_metas.extend(boxes(body).filter(|(k, _)| k == b"meta").map(|(_, b)| b)),
            _ => {}
        }
    }
    for body in udta_metas {
        parse_meta(body, &mut meta.keys);
    }
    meta
}

fn parse_mvhd(b: &[u8]) -> Option<u64> {
    match b.first()? {
        0 => Some(u32::from_be_bytes(b.get(4..8)?.try_into().ok()?) as u64),
        1 => Some(u64::from_be_bytes(b.get(4..12)?.try_into().ok()?)),
        _ => None,
    }
}

fn parse_mvhd_duration(b: &[u8]) -> Option<(u32, u64)> {
    let be32 = |at: usize| b.get(at..at + 4).map(|x| u32::from_be_bytes([x[0], x[1], x[2], x[3]]));
    match b.first()? {
        0 => Some((be32(12)?, be32(16)? as u64)),
        1 => Some((be32(20)?, u64::from_be_bytes(b.get(24..32)?.try_into().ok()?))),
        _ => None,
    }
}

/// Apple's `moov/meta` is a plain box; ISO's (and ffmpeg's `udta/meta`) is a FullBox with four
/// bytes of version and flags. Tell them apart by whether a child box header follows directly.
fn parse_meta(body: &[u8], out: &mut Vec<(String, String)>) {
    let looks_plain = body.get(4..8).is_some_and(|k| k == b"hdlr" || k == b"keys" || k == b"ilst");
    let children = if looks_plain { body } else { body.get(4..).unwrap_or(&[]) };
    let mut keys: Vec<String> = Vec::new();
    let mut ilst: Option<&[u8]> = None;
    for (kind, b) in boxes(children) {
        match &kind {
            b"keys" => keys = parse_keys(b),
            b"ilst" => ilst = Some(b),
            _ => {}
        }
    }
    let Some(ilst) = ilst else { return };
    // Bounded like every reader here: what is kept never exceeds the bytes of the keys and ilst
    // boxes it comes from (a hostile ilst of many tiny data boxes would otherwise copy its key
    // once per box, quadratic in the file size).
    let mut budget = ilst.len() + keys.iter().map(String::len).sum::<usize>();
    for (kind, item) in boxes(ilst) {
        let index = u32::from_be_bytes(kind) as usize;
        let Some(key) = index.checked_sub(1).and_then(|i| keys.get(i)) else { continue };
        for (dk, data) in boxes(item) {
            // data box: type indicator (4), locale (4), value. Type 1 = UTF-8.
            if &dk == b"data" && data.len() >= 8 && data[0..4] == [0, 0, 0, 1] {
                if let Ok(s) = std::str::from_utf8(&data[8..]) {
                    let value = s.trim_end_matches('\0');
                    let Some(left) = budget.checked_sub(key.len() + value.len()) else { return };
                    budget = left;
                    out.push((key.clone(), value.to_string()));
                }
            }
        }
    }
}

fn parse_keys(b: &[u8]) -> Vec<String> {
    let mut keys = Vec::new();
    let Some(count) = b.get(4..8).map(|c| u32::from_be_bytes(c.try_into().unwrap())) else { return keys };
    let mut pos = 8usize;
    for _ in 0..count.min(4096) {
        let Some(sz) = b.get(pos..pos + 4).map(|c| u32::from_be_bytes(c.try_into().unwrap()) as usize) else { break };
        if sz < 8 {
            break;
        }
        let Some(name) = b.get(pos + 8..pos + sz) else { break };
        keys.push(String::from_utf8_lossy(name).into_owned());
        pos += sz;
    }
    keys
}

/// ISO 8601 as Apple writes it: `2021-04-10T11:43:59+0100`, also `+01:00`, `Z`, fractions.
pub fn parse_iso8601(s: &str) -> Option<CaptureTime> {
    let s = s.trim();
    let date = NaiveDate::parse_from_str(s.get(0..10)?, "%Y-%m-%d").ok()?;
    let rest = s.get(10..).unwrap_or("");
    if rest.is_empty() {
        return Some(CaptureTime::new(date.and_hms_opt(0, 0, 0)?, None, DateSource::XmpDateCreated));
    }
    let rest = rest.strip_prefix('T').or_else(|| rest.strip_prefix(' '))?;
    // Split the clock from the offset: the offset starts at the first '+', '-' or 'Z'.
    let split = rest.find(['+', '-', 'Z']).unwrap_or(rest.len());
    let (clock, offset) = rest.split_at(split);
    let mut parts = clock.splitn(3, ':');
    let h: u32 = parts.next()?.parse().ok()?;
    let mi: u32 = parts.next()?.parse().ok()?;
    let (sec, frac_ms) = match parts.next() {
        Some(sec) => {
            let (whole, frac) = sec.split_once('.').unwrap_or((sec, ""));
            let ms = if frac.is_empty() {
                0
            } else if frac.bytes().all(|b| b.is_ascii_digit()) {
                // ASCII digits only, so cutting at a byte index is cutting at a character.
                format!("{:0<3}", &frac[..frac.len().min(3)]).parse::<i64>().ok()?
            } else {
                return None;
            };
            (whole.parse::<u32>().ok()?, ms)
        }
        None => (0, 0),
    };
    let local: NaiveDateTime =
        date.and_hms_opt(h, mi, sec.min(59))? + chrono::Duration::milliseconds(frac_ms);
    let offset = if offset.is_empty() { None } else { Some(super::exif::parse_offset(offset.as_bytes())?) };
    Some(CaptureTime::new(local, offset, DateSource::XmpDateCreated))
}

#[cfg(test)]
mod tests {

    #[test]
    fn fractions_that_are_not_digits_are_refused_not_a_panic() {
        assert!(parse_iso8601("2021-04-10T11:43:59.00\u{e9}").is_none());
        assert!(parse_iso8601("2021-04-10T11:43:59.123+0100").is_some());
    }

    use super::*;
    use std::io::Cursor;

    fn make_mov(mvhd: u32, keys: &[(&str, &str)], ffmpeg_layout: bool) -> Vec<u8> {
        crate::test_fixtures::mov(1, mvhd, keys, ffmpeg_layout)
    }

    fn qbox(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        crate::test_fixtures::qbox(kind, body)
    }

    fn read_bytes(b: &[u8]) -> Result<QtMeta, ProbeError> {
        read(&mut Cursor::new(b), b.len() as u64)
    }

    #[test]
    fn apple_layout_keys_win_over_mvhd() {
        // mvhd says 2022-08-20 14:36:17 UTC, Keys say 2020-01-05 14:13:13-08:00 (Jellyfish.mov).
        let mvhd = (1_661_006_177 + QT_EPOCH_OFFSET) as u32;
        let keys = [
            ("com.apple.quicktime.creationdate", "2020-01-05T14:13:13-0800"),
            ("com.apple.quicktime.content.identifier", "ABC-123"),
        ];
        let m = read_bytes(&make_mov(mvhd, &keys, false)).unwrap();
        let ct = m.capture_time().unwrap();
        assert_eq!(ct.source, DateSource::QuickTimeCreationDate);
        assert_eq!(ct.to_iso(), "2020-01-05T14:13:13.000-08:00");
        assert_eq!(m.content_identifier(), Some("ABC-123"));
    }

    #[test]
    fn ffmpeg_udta_layout_is_read_too() {
        let m = read_bytes(&make_mov(0, &[("com.apple.quicktime.creationdate", "2023-07-14T10:20:30+02:00")], true))
            .unwrap();
        assert_eq!(m.capture_time().unwrap().to_iso(), "2023-07-14T10:20:30.000+02:00");
    }

    #[test]
    fn mvhd_only_is_utc() {
        let mvhd = (1_689_160_632 + QT_EPOCH_OFFSET) as u32; // 2023-07-12 11:17:12 UTC
        let ct = read_bytes(&make_mov(mvhd, &[], false)).unwrap().capture_time().unwrap();
        assert_eq!(ct.source, DateSource::QuickTimeMvhd);
        assert_eq!(ct.to_iso(), "2023-07-12T11:17:12.000+00:00");
        assert_eq!(read_bytes(&make_mov(mvhd, &[], false)).unwrap().duration_secs(), Some(3.0));
        assert!(read_bytes(&make_mov(0, &[], false)).unwrap().capture_time().is_none());
    }

    #[test]
    fn hostile_sizes_do_not_panic() {
        // size 0 (to end of file), size 1 with a huge 64-bit size, size larger than the file, garbage.
        let mut zero = qbox(b"ftyp", b"qt  ");
        zero.extend_from_slice(&[0, 0, 0, 0]);
        zero.extend_from_slice(b"mdat");
        assert!(read_bytes(&zero).is_err());
        let mut huge = vec![0, 0, 0, 1];
        huge.extend_from_slice(b"moov");
        huge.extend_from_slice(&u64::MAX.to_be_bytes());
        assert!(read_bytes(&huge).is_err());
        let mut past = vec![0, 0, 0x10, 0];
        past.extend_from_slice(b"moov");
        past.extend_from_slice(&[0; 20]);
        let err = read_bytes(&past).unwrap_err();
        assert!(err.to_string().contains("past the end"), "{err}");
        assert!(read_bytes(&[0, 0, 0, 3, b'a', b'b', b'c', b'd']).is_err());
        // A truncated copy of a good file: moov cut off.
        let good = make_mov(5, &[("k", "v")], false);
        for cut in [10, 40, good.len() - 1] {
            let _ = read_bytes(&good[..cut]);
        }
        assert!(read_bytes(&good[..good.len() - 1]).is_err());
    }

    #[test]
    fn malformed_inner_boxes_are_ignored() {
        // moov with an mvhd whose declared size overruns moov: the parse yields nothing, no panic.
        let mut moov_body = vec![0, 0, 0xFF, 0xFF];
        moov_body.extend_from_slice(b"mvhd");
        moov_body.extend_from_slice(&[1; 12]);
        let mut f = qbox(b"ftyp", b"qt  ");
        f.extend(qbox(b"moov", &moov_body));
        assert_eq!(read_bytes(&f).unwrap(), QtMeta::default());
    }

    #[test]
    fn iso8601_forms() {
        let p = |s| parse_iso8601(s).map(|c| c.to_iso());
        assert_eq!(p("2021-04-10T11:43:59+0100").as_deref(), Some("2021-04-10T11:43:59.000+01:00"));
        assert_eq!(p("2021-04-10T11:43:59.5Z").as_deref(), Some("2021-04-10T11:43:59.500+00:00"));
        assert_eq!(p("2015-09-27T16:29:28").as_deref(), Some("2015-09-27T16:29:28.000"));
        assert_eq!(p("2015-09-27T16:29").as_deref(), Some("2015-09-27T16:29:00.000"));
        assert_eq!(p("2015-09-27").as_deref(), Some("2015-09-27T00:00:00.000"));
        assert_eq!(p("yesterday"), None);
        assert_eq!(p("2015-13-27T16:29:28"), None);
    }
}
