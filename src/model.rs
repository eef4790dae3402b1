//! Plain data shared by every stage: what kind of file something is, when it was taken, and where
//! that date came from. Nothing here does I/O.

use chrono::{Datelike, FixedOffset, NaiveDateTime, TimeZone, Utc};
use serde::Serialize;

/// What a file is, decided from its content (the extension only breaks ties such as MOV vs MP4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    Heif,
    Jpeg,
    Png,
    Gif,
    Mov,
    Mp4,
    Dng,
    /// An Apple `.AAE` adjustment sidecar: not media itself, kept next to its photo.
    Aae,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Heif => "heif",
            MediaKind::Jpeg => "jpeg",
            MediaKind::Png => "png",
            MediaKind::Gif => "gif",
            MediaKind::Mov => "mov",
            MediaKind::Mp4 => "mp4",
            MediaKind::Dng => "dng",
            MediaKind::Aae => "aae",
        }
    }

    pub fn parse(s: &str) -> Option<MediaKind> {
        Some(match s {
            "heif" => MediaKind::Heif,
            "jpeg" => MediaKind::Jpeg,
            "png" => MediaKind::Png,
            "gif" => MediaKind::Gif,
            "mov" => MediaKind::Mov,
            "mp4" => MediaKind::Mp4,
            "dng" => MediaKind::Dng,
            "aae" => MediaKind::Aae,
            _ => return None,
        })
    }

    pub fn is_video(self) -> bool {
        matches!(self, MediaKind::Mov | MediaKind::Mp4)
    }
}

/// Where a capture time was read from, best first. The order of the variants is the order of trust.
/// Serialized as its [`DateSource::as_str`] name (`exif:DateTimeOriginal`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DateSource {
    /// EXIF DateTimeOriginal (+ SubSecTimeOriginal, + OffsetTimeOriginal).
    ExifDateTimeOriginal,
    /// EXIF DateTimeDigitized (CreateDate), used only when DateTimeOriginal is absent.
    ExifDateTimeDigitized,
    /// XMP photoshop:DateCreated / xmp:CreateDate (PNG screenshots).
    XmpDateCreated,
    /// QuickTime Keys `com.apple.quicktime.creationdate` (carries the UTC offset).
    QuickTimeCreationDate,
    /// QuickTime `mvhd` creation time (UTC).
    QuickTimeMvhd,
    /// EXIF DateTime (0x0132, "ModifyDate"): the last resort inside the file.
    ExifDateTime,
    /// The privacy export's `Photo Details.csv` `originalCreationDate` (GMT, minute precision,
    /// sometimes the upload date): better than a file time, worse than anything embedded.
    CsvOriginalCreationDate,
    /// Its photo's date (an `.AAE` sidecar has no date of its own).
    Companion,
    /// The zip entry's modification time (extended timestamp = UTC; else DOS time, zone unknown).
    ZipEntryMtime,
    /// The file's modification time on disk (UTC).
    FileMtime,
}

impl DateSource {
    pub fn as_str(self) -> &'static str {
        match self {
            DateSource::ExifDateTimeOriginal => "exif:DateTimeOriginal",
            DateSource::ExifDateTimeDigitized => "exif:DateTimeDigitized",
            DateSource::XmpDateCreated => "xmp:DateCreated",
            DateSource::QuickTimeCreationDate => "quicktime:creationdate",
            DateSource::QuickTimeMvhd => "quicktime:mvhd",
            DateSource::ExifDateTime => "exif:DateTime",
            DateSource::CsvOriginalCreationDate => "csv:originalCreationDate",
            DateSource::Companion => "companion",
            DateSource::ZipEntryMtime => "zip:mtime",
            DateSource::FileMtime => "file:mtime",
        }
    }

    pub fn parse(s: &str) -> Option<DateSource> {
        use DateSource::*;
        [
            ExifDateTimeOriginal,
            ExifDateTimeDigitized,
            XmpDateCreated,
            QuickTimeCreationDate,
            QuickTimeMvhd,
            ExifDateTime,
            CsvOriginalCreationDate,
            Companion,
            ZipEntryMtime,
            FileMtime,
        ]
        .into_iter()
        .find(|d| d.as_str() == s)
    }

    /// True for dates read from inside the file (as opposed to catalogs, file-system or
    /// archive times).
    pub fn is_embedded(self) -> bool {
        self < DateSource::CsvOriginalCreationDate
    }
}

impl Serialize for DateSource {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// When a photo was taken, as the camera's own wall clock showed it.
///
/// `local` is the wall-clock time where the photo was taken. `offset_secs` is its UTC offset when
/// the file says so. Folder names (year, month) come from `local` alone, so the tree never depends
/// on the time zone of the machine running photoferry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct CaptureTime {
    pub local: NaiveDateTime,
    pub offset_secs: Option<i32>,
    pub source: DateSource,
}

impl CaptureTime {
    pub fn new(local: NaiveDateTime, offset_secs: Option<i32>, source: DateSource) -> Self {
        CaptureTime { local, offset_secs, source }
    }

    /// A UTC instant shown in UTC wall-clock time (mtimes, mvhd).
    pub fn from_utc(utc: NaiveDateTime, source: DateSource) -> Self {
        CaptureTime { local: utc, offset_secs: Some(0), source }
    }

    pub fn year(&self) -> i32 {
        self.local.year()
    }

    /// Seconds since the Unix epoch. Without a known offset the wall-clock time is taken as UTC,
    /// which keeps the result independent of the machine's time zone.
    pub fn unix_seconds(&self) -> i64 {
        let off = self.offset_secs.unwrap_or(0);
        match FixedOffset::east_opt(off).and_then(|tz| tz.from_local_datetime(&self.local).single()) {
            Some(dt) => dt.timestamp(),
            None => Utc.from_utc_datetime(&self.local).timestamp(),
        }
    }

    /// ISO 8601 text: `2021-04-10T11:44:00.123+01:00`, or without an offset when none is known.
    pub fn to_iso(&self) -> String {
        let base = self.local.format("%Y-%m-%dT%H:%M:%S%.3f").to_string();
        match self.offset_secs {
            Some(off) => format!("{base}{}", format_offset(off)),
            None => base,
        }
    }
}

pub fn format_offset(off: i32) -> String {
    let sign = if off < 0 { '-' } else { '+' };
    let a = off.unsigned_abs();
    format!("{sign}{:02}:{:02}", a / 3600, (a % 3600) / 60)
}

/// A BLAKE3 digest of a file's original bytes: the file's identity.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentHash(pub [u8; 32]);

impl ContentHash {
    pub fn to_hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }

    pub fn from_hex(s: &str) -> Option<ContentHash> {
        blake3::Hash::from_hex(s).ok().map(|h| ContentHash(*h.as_bytes()))
    }
}

impl std::fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", &self.to_hex()[..16])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn dt(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d).unwrap().and_hms_opt(h, mi, 0).unwrap()
    }

    #[test]
    fn year_is_local_wall_clock_not_utc() {
        // 2022-01-01 00:30 at +08:00 is 2021-12-31 16:30 UTC; the folder year must be 2022.
        let c = CaptureTime::new(dt(2022, 1, 1, 0, 30), Some(8 * 3600), DateSource::ExifDateTimeOriginal);
        assert_eq!(c.year(), 2022);
        assert_eq!(c.unix_seconds(), 1_640_968_200);
        assert_eq!(c.to_iso(), "2022-01-01T00:30:00.000+08:00");
    }

    #[test]
    fn unknown_offset_counts_as_utc_for_mtime() {
        let c = CaptureTime::new(dt(2020, 6, 30, 21, 0), None, DateSource::ExifDateTimeOriginal);
        assert_eq!(c.unix_seconds(), 1_593_550_800);
        assert_eq!(c.to_iso(), "2020-06-30T21:00:00.000");
    }

    #[test]
    fn date_sources_round_trip_and_rank() {
        for s in ["exif:DateTimeOriginal", "quicktime:mvhd", "file:mtime", "zip:mtime", "companion"] {
            assert_eq!(DateSource::parse(s).unwrap().as_str(), s);
        }
        assert!(DateSource::QuickTimeCreationDate < DateSource::QuickTimeMvhd);
        assert!(DateSource::QuickTimeMvhd.is_embedded());
        assert!(!DateSource::FileMtime.is_embedded());
        assert!(DateSource::parse("nonsense").is_none());
    }

    #[test]
    fn hash_hex_round_trip() {
        let h = ContentHash(*blake3::hash(b"abc").as_bytes());
        assert_eq!(h.to_hex(), "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85");
        assert_eq!(ContentHash::from_hex(&h.to_hex()), Some(h));
    }
}
