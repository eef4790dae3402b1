//! The iCloud privacy-export catalog (privacy.apple.com "Get a copy of your data"): an export
//! part is recognized by its content — a folder holding `Photos/` with `Photo Details*.csv` —
//! never by its (localized) zip name. This module parses the CSVs; `organize` matches rows to
//! media of the same part first, because names repeat across parts.
//!
//! - `Photos/Photo Details.csv`, `Photo Details-1.csv`, …: `imgName,fileChecksum,favorite,
//!   hidden,deleted,originalCreationDate,viewCount,importDate`; any may be empty (0 bytes).
//! - `Albums/<album>.csv`, `Memories/<memory>.csv`: one column headed `Images`, `imgName` or
//!   `imageName`; may be empty; names may be NFD.

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::error::{FileError, FileErrorKind};
use crate::model::{CaptureTime, DateSource};
use crate::names::nfc;
use crate::source::Source;

/// A CSV larger than this is not a catalog file we trust; it is reported and ignored.
const MAX_CSV: u64 = 256 << 20;

/// One `Photo Details` row.
#[derive(Debug, Clone, PartialEq)]
pub struct Details {
    pub favorite: bool,
    pub hidden: bool,
    pub deleted: bool,
    /// `originalCreationDate` (GMT, minute precision), when it parsed.
    pub created: Option<CaptureTime>,
}

/// What one CSV file taught us, plus the rows it could not use.
#[derive(Debug)]
pub struct Parsed<T> {
    pub rows: Vec<T>,
    /// Row-level problems: (1-based line, what is wrong).
    pub problems: Vec<(usize, String)>,
}

impl<T> Default for Parsed<T> {
    fn default() -> Self {
        Parsed { rows: Vec::new(), problems: Vec::new() }
    }
}

/// The key a catalog name is matched under: NFC, lower case.
pub fn name_key(name: &str) -> String {
    crate::names::collision_key(name)
}

fn reader(bytes: &[u8]) -> csv::Reader<&[u8]> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(bytes)
}

/// Parse a `Photo Details*.csv`. An empty file is fine (no rows); a file without an `imgName`
/// column is an error.
pub fn parse_details(bytes: &[u8]) -> Result<Parsed<(String, Details)>, String> {
    let mut out = Parsed::default();
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(out);
    }
    let mut rdr = reader(bytes);
    let headers = rdr.headers().map_err(|e| format!("unreadable header: {e}"))?.clone();
    let col = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let name_col = col("imgName").ok_or("no imgName column in the header")?;
    let (fav, hid, del, date) = (col("favorite"), col("hidden"), col("deleted"), col("originalCreationDate"));
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                out.problems.push((line, format!("unreadable row: {e}")));
                continue;
            }
        };
        let Some(name) = rec.get(name_col).filter(|n| !n.is_empty()) else {
            out.problems.push((line, "row without imgName".into()));
            continue;
        };
        let flag = |c: Option<usize>| c.and_then(|c| rec.get(c)).is_some_and(|v| v.eq_ignore_ascii_case("yes"));
        let raw_date = date.and_then(|c| rec.get(c)).unwrap_or("");
        let created = parse_icloud_date(raw_date);
        if created.is_none() {
            let shown = if raw_date.is_empty() { "empty".to_string() } else { format!("'{raw_date}'") };
            out.problems.push((line, format!("{name}: originalCreationDate {shown} cannot be read")));
        }
        out.rows.push((nfc(name), Details { favorite: flag(fav), hidden: flag(hid), deleted: flag(del), created }));
    }
    Ok(out)
}

/// Parse an album or memory CSV: the image names it lists.
pub fn parse_list(bytes: &[u8]) -> Result<Parsed<String>, String> {
    let mut out = Parsed::default();
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(out);
    }
    let mut rdr = reader(bytes);
    let headers = rdr.headers().map_err(|e| format!("unreadable header: {e}"))?.clone();
    let col = headers
        .iter()
        .position(|h| ["Images", "imgName", "imageName"].iter().any(|k| h.eq_ignore_ascii_case(k)))
        .ok_or("no Images / imgName / imageName column in the header")?;
    for (i, rec) in rdr.records().enumerate() {
        match rec {
            Ok(r) => match r.get(col).filter(|n| !n.is_empty()) {
                Some(n) => out.rows.push(nfc(n)),
                None => out.problems.push((i + 2, "row without a name".into())),
            },
            Err(e) => out.problems.push((i + 2, format!("unreadable row: {e}"))),
        }
    }
    Ok(out)
}

const MONTHS: &[(&str, u32)] = &[
    ("january", 1), ("february", 2), ("march", 3), ("april", 4), ("may", 5), ("june", 6),
    ("july", 7), ("august", 8), ("september", 9), ("october", 10), ("november", 11), ("december", 12),
    ("jan", 1), ("feb", 2), ("mar", 3), ("apr", 4), ("jun", 6), ("jul", 7),
    ("aug", 8), ("sep", 9), ("sept", 9), ("oct", 10), ("nov", 11), ("dec", 12),
    // Localized exports: French, German, Spanish, Italian, Portuguese, Dutch, Swedish, Danish and
    // Norwegian full month names (the same word never means two months across these).
    ("janvier", 1), ("février", 2), ("fevrier", 2), ("mars", 3), ("avril", 4), ("mai", 5), ("juin", 6),
    ("juillet", 7), ("août", 8), ("aout", 8), ("septembre", 9), ("octobre", 10), ("novembre", 11), ("décembre", 12),
    ("decembre", 12), ("januar", 1), ("februar", 2), ("märz", 3), ("maerz", 3), ("juni", 6), ("juli", 7),
    ("oktober", 10), ("dezember", 12), ("enero", 1), ("febrero", 2), ("marzo", 3), ("abril", 4), ("mayo", 5),
    ("junio", 6), ("julio", 7), ("agosto", 8), ("septiembre", 9), ("setiembre", 9), ("octubre", 10),
    ("noviembre", 11), ("diciembre", 12), ("gennaio", 1), ("febbraio", 2), ("aprile", 4), ("maggio", 5),
    ("giugno", 6), ("luglio", 7), ("settembre", 9), ("ottobre", 10), ("dicembre", 12), ("janeiro", 1),
    ("fevereiro", 2), ("março", 3), ("maio", 5), ("junho", 6), ("julho", 7), ("setembro", 9),
    ("outubro", 10), ("dezembro", 12), ("januari", 1), ("februari", 2), ("maart", 3), ("augustus", 8),
    ("mei", 5), ("augusti", 8), ("maj", 5), ("marts", 3),
];

/// `Saturday June 4,2022 12:11 PM GMT` → 2022-06-04 12:11 UTC. Defensive: the weekday is
/// ignored, the comma may carry spaces, the month may be abbreviated, a 24-hour clock without
/// AM/PM is accepted, the zone must be GMT/UTC (or absent). Anything else is `None`.
pub fn parse_icloud_date(s: &str) -> Option<CaptureTime> {
    let cleaned = s.replace(',', " ");
    let tokens: Vec<String> = cleaned.split_whitespace().map(|t| t.to_lowercase()).collect();
    let mi = tokens.iter().position(|t| MONTHS.iter().any(|(m, _)| m == t))?;
    let month = MONTHS.iter().find(|(m, _)| *m == tokens[mi])?.1;
    let day: u32 = tokens.get(mi + 1)?.parse().ok()?;
    let year: i32 = tokens.get(mi + 2)?.parse().ok()?;
    let (h, m) = tokens.get(mi + 3)?.split_once(':')?;
    let (mut h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    let mut rest = tokens[mi + 4..].iter().map(String::as_str);
    let mut next = rest.next();
    match next {
        Some("am") if h == 12 => h = 0,
        Some("am") if h <= 12 => {}
        Some("pm") if h < 12 => h += 12,
        Some("pm") if h == 12 => {}
        Some("am") | Some("pm") => return None,
        _ => {}
    }
    if matches!(next, Some("am") | Some("pm")) {
        next = rest.next();
    }
    if !matches!(next, None | Some("gmt") | Some("utc") | Some("z")) || rest.next().is_some() {
        return None;
    }
    let local = NaiveDate::from_ymd_opt(year, month, day)?.and_hms_opt(h, m, 0)?;
    Some(CaptureTime::new(local, Some(0), DateSource::CsvOriginalCreationDate))
}

/// The part of an export a path belongs to, and which of its folders holds it: the prefix before
/// `Photos/`, `Recently Deleted/`, `Albums/` or `Memories/` ("" when the input is the part
/// folder itself).
pub fn part_root(inner: &str) -> Option<(&str, &'static str)> {
    for marker in ["Photos", "Recently Deleted", "Albums", "Memories"] {
        if inner.strip_prefix(marker).is_some_and(|r| r.starts_with('/')) {
            return Some(("", marker));
        }
        if let Some(i) = inner.find(&format!("/{marker}/")) {
            return Some((&inner[..i], marker));
        }
    }
    None
}

/// What the catalog says about one media source.
#[derive(Debug, Clone, Default)]
pub struct SourceInfo {
    pub details: Option<Details>,
    /// Album folders it belongs in (album CSVs, shared albums, `--album`).
    pub albums: BTreeSet<String>,
    pub memories: BTreeSet<String>,
    /// In `Recently Deleted/` of an export part, or flagged deleted in its CSV row.
    pub deleted: bool,
    /// Where each album came from, for `explain`.
    pub album_reasons: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListKind {
    Album,
    Memory,
}

struct Listing {
    part: (PathBuf, String),
    kind: ListKind,
    name: String,
    names: Vec<String>,
    location: String,
}

/// Every export part found in the inputs, with its CSVs parsed.
#[derive(Default)]
pub struct Catalog {
    /// Indices of the sources that are catalog CSVs (already read; not media).
    pub csv_sources: std::collections::HashSet<usize>,
    /// (input, part root) → name key → details.
    details: HashMap<(PathBuf, String), HashMap<String, Details>>,
    listings: Vec<Listing>,
    /// CSV problems (unreadable files, rows, dates); the run goes on without them.
    pub notes: Vec<FileError>,
}

fn note(location: String, message: String) -> FileError {
    FileError { location, kind: FileErrorKind::Catalog, message, action: "ignored".into(), year: None }
}

impl Catalog {
    /// Read the catalog CSVs among `sources`: `<part>/Photos/Photo Details*.csv`,
    /// `<part>/Albums/*.csv`, `<part>/Memories/*.csv`.
    pub fn read(sources: &[Source]) -> Catalog {
        let mut cat = Catalog::default();
        for (i, s) in sources.iter().enumerate() {
            let lower = s.name.to_lowercase();
            if !lower.ends_with(".csv") {
                continue;
            }
            let Some((root, folder)) = part_root(&s.inner) else { continue };
            let is_details = folder == "Photos" && lower.starts_with("photo details");
            if !(is_details || folder == "Albums" || folder == "Memories") {
                continue;
            }
            cat.csv_sources.insert(i);
            let bytes = match s.read_with(|r| {
                let mut v = Vec::new();
                r.take(MAX_CSV).read_to_end(&mut v)?;
                Ok(v)
            }) {
                Ok(b) => b,
                Err(e) => {
                    cat.notes.push(note(s.display(), format!("cannot read: {e}")));
                    continue;
                }
            };
            let part = (s.input.clone(), root.to_string());
            let report = |cat: &mut Catalog, problems: Vec<(usize, String)>| {
                for (line, p) in problems {
                    cat.notes.push(note(format!("{} line {line}", s.display()), p));
                }
            };
            if is_details {
                match parse_details(&bytes) {
                    Ok(parsed) => {
                        let map = cat.details.entry(part).or_default();
                        for (name, d) in parsed.rows {
                            map.insert(name_key(&name), d);
                        }
                        report(&mut cat, parsed.problems);
                    }
                    Err(e) => cat.notes.push(note(s.display(), e)),
                }
            } else {
                match parse_list(&bytes) {
                    Ok(parsed) => {
                        let kind = if folder == "Albums" { ListKind::Album } else { ListKind::Memory };
                        let name = nfc(crate::names::split_ext(&s.name).0);
                        cat.listings.push(Listing { part, kind, name, names: parsed.rows, location: s.display() });
                        report(&mut cat, parsed.problems);
                    }
                    Err(e) => cat.notes.push(note(s.display(), e)),
                }
            }
        }
        cat
    }

    fn is_part(&self, input: &Path, root: &str) -> bool {
        self.details.contains_key(&(input.to_path_buf(), root.to_string()))
            || self.listings.iter().any(|l| l.part.0 == input && l.part.1 == root)
    }

    /// What the catalog (and the user's `--album NAME=INPUT` choices) say about each source.
    pub fn info(&mut self, sources: &[Source], user_albums: &[(PathBuf, String)]) -> Vec<SourceInfo> {
        let mut info = vec![SourceInfo::default(); sources.len()];
        let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, s) in sources.iter().enumerate() {
            let si = &mut info[i];
            if let Some((root, folder)) = part_root(&s.inner) {
                if self.is_part(&s.input, root) && (folder == "Photos" || folder == "Recently Deleted") {
                    let key = name_key(&s.name);
                    si.details = self.details.get(&(s.input.clone(), root.to_string())).and_then(|m| m.get(&key)).cloned();
                    si.deleted = folder == "Recently Deleted" || si.details.as_ref().is_some_and(|d| d.deleted);
                    by_name.entry(key).or_default().push(i);
                }
            }
            if let Some(album) = shared_album(&s.inner) {
                si.album_reasons.push(format!("album '{album}': shared album folder My Albums/{album}/"));
                si.albums.insert(album);
            }
            for (path, album) in user_albums {
                if s.input.starts_with(path) {
                    si.album_reasons.push(format!("album '{album}': --album for {}", path.display()));
                    si.albums.insert(album.clone());
                }
            }
        }
        for l in &self.listings {
            for n in &l.names {
                let candidates = by_name.get(&name_key(n)).map(Vec::as_slice).unwrap_or(&[]);
                let same_part: Vec<usize> =
                    candidates.iter().copied().filter(|&i| sources[i].input == l.part.0 && part_root(&sources[i].inner).map(|p| p.0) == Some(l.part.1.as_str())).collect();
                let chosen = if same_part.is_empty() { candidates.to_vec() } else { same_part };
                if chosen.is_empty() && l.kind == ListKind::Album {
                    self.notes.push(note(l.location.clone(), format!("lists {n}, which is not in the inputs")));
                }
                for i in chosen {
                    match l.kind {
                        ListKind::Album => {
                            info[i].album_reasons.push(format!("album '{}': listed in {}", l.name, l.location));
                            info[i].albums.insert(l.name.clone());
                        }
                        ListKind::Memory => {
                            info[i].memories.insert(l.name.clone());
                        }
                    }
                }
            }
        }
        info
    }
}

/// `…/iCloud Shared Albums.zip/My Albums/<album>/<file>` → the album.
fn shared_album(inner: &str) -> Option<String> {
    let parts: Vec<&str> = inner.split('/').collect();
    let i = parts.iter().position(|p| *p == "My Albums")?;
    let zip_ok = i > 0 && parts[i - 1].to_lowercase().starts_with("icloud shared albums") && parts[i - 1].to_lowercase().ends_with(".zip");
    (zip_ok && parts.len() > i + 2).then(|| nfc(parts[i + 1]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icloud_dates() {
        let p = |s| parse_icloud_date(s).map(|c| c.to_iso());
        assert_eq!(p("Saturday June 4,2022 12:11 PM GMT").as_deref(), Some("2022-06-04T12:11:00.000+00:00"));
        assert_eq!(p("Friday October 06,2023 12:11 AM GMT").as_deref(), Some("2023-10-06T00:11:00.000+00:00"));
        assert_eq!(p("Tuesday March 5, 2019 6:07 PM GMT").as_deref(), Some("2019-03-05T18:07:00.000+00:00"));
        assert_eq!(p("Mar 5,2019 18:07 UTC").as_deref(), Some("2019-03-05T18:07:00.000+00:00"));
        assert_eq!(p(""), None);
        // Localized month names (weekday ignored).
        assert_eq!(p("lørdag juni 4,2022 12:11 PM GMT").as_deref(), Some("2022-06-04T12:11:00.000+00:00"));
        assert_eq!(p("samedi février 4,2023 9:05 AM GMT").as_deref(), Some("2023-02-04T09:05:00.000+00:00"));
        assert_eq!(p("Samstag März 4,2023 21:05 GMT").as_deref(), Some("2023-03-04T21:05:00.000+00:00"));
        assert_eq!(p("lørdag smarch 4,2022 12:11 PM GMT"), None);
        assert_eq!(p("Saturday June 31,2022 12:11 PM GMT"), None);
        assert_eq!(p("Saturday June 4,2022 13:11 PM GMT"), None);
        assert_eq!(p("Saturday June 4,2022 12:11 PM PST"), None);
    }

    #[test]
    fn details_csv() {
        let csv = "\u{feff}imgName,fileChecksum,favorite,hidden,deleted,originalCreationDate,viewCount,importDate\n\
                   IMG_0001.HEIC,abc,yes,no,no,\"Saturday June 4,2022 12:11 PM GMT\",3,x\n\
                   Cafe\u{301}.jpg,def,no,yes,no,,0,x\n\
                   \"bad \"\"quote,x\n";
        let parsed = parse_details(csv.as_bytes()).unwrap();
        assert_eq!(parsed.rows.len(), 3);
        assert_eq!(parsed.rows[0].0, "IMG_0001.HEIC");
        assert!(parsed.rows[0].1.favorite && !parsed.rows[0].1.hidden);
        assert_eq!(parsed.rows[0].1.created.unwrap().year(), 2022);
        assert_eq!(parsed.rows[1].0, "Caf\u{e9}.jpg");
        assert!(parsed.rows[1].1.hidden);
        assert!(parsed.problems.iter().any(|(line, p)| *line == 3 && p.contains("empty")), "{:?}", parsed.problems);
        assert!(parse_details(b"").unwrap().rows.is_empty());
        assert!(parse_details(b"name,date\nx,y\n").is_err());
    }

    #[test]
    fn album_csvs() {
        assert_eq!(parse_list(b"Images\nIMG_1.JPG\nIMG_2.JPG\n").unwrap().rows, vec!["IMG_1.JPG", "IMG_2.JPG"]);
        assert_eq!(parse_list(b"imageName\nIMG_3.JPG\n").unwrap().rows, vec!["IMG_3.JPG"]);
        assert_eq!(parse_list(b"imgName\n").unwrap().rows.len(), 0);
        assert_eq!(parse_list(b"").unwrap().rows.len(), 0);
        assert!(parse_list(b"something\nx\n").is_err());
    }

    #[test]
    fn shared_albums() {
        assert_eq!(shared_album("P1/iCloud Shared Albums.zip/My Albums/Trip/IMG_1.JPG").as_deref(), Some("Trip"));
        assert_eq!(shared_album("iCloud Shared Albums-2.zip/My Albums/Ski/a/b.JPG").as_deref(), Some("Ski"));
        assert_eq!(shared_album("Pictures/My Albums/Trip/IMG_1.JPG"), None);
        assert_eq!(shared_album("iCloud Shared Albums.zip/My Albums/AlbumInfo.json"), None);
    }

    #[test]
    fn part_roots() {
        assert_eq!(part_root("iCloud Photos Part 1 of 2/Photos/IMG_1.HEIC"), Some(("iCloud Photos Part 1 of 2", "Photos")));
        assert_eq!(part_root("Photos/IMG_1.HEIC"), Some(("", "Photos")));
        assert_eq!(part_root("x/Recently Deleted/IMG_1.HEIC"), Some(("x", "Recently Deleted")));
        assert_eq!(part_root("x/Albums/Trip.csv"), Some(("x", "Albums")));
        assert_eq!(part_root("IMG_1.HEIC"), None);
    }
}
