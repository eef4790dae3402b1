//! Plan: group what was read into assets (one per distinct content), pair companions (Live
//! Photo videos, edits, sidecars), choose each asset's date, and decide where every file goes:
//! one copy per album folder, collision-free names. The result is plain data that `--dry-run`
//! prints and `--json` serializes; nothing here writes.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io;
use std::path::Path;

use serde::Serialize;

use crate::catalog::SourceInfo;
use crate::error::{FileError, FileErrorKind};
use crate::layout::{Layout, LayoutVars};
use crate::manifest::FileRow;
use crate::model::{CaptureTime, ContentHash, DateSource, MediaKind};
use crate::names::{collision_key, split_ext, with_suffix};
use crate::pair::{self, Role};
use crate::read::Media;
use crate::source::Source;

/// What happens to one planned file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// New: written by this run (or, with `--dry-run`, would be).
    Write,
    /// Already in the tree from an earlier run (the manifest says so).
    Present,
    /// Already in the tree with identical bytes, but unknown to the manifest; recorded now.
    Adopt,
}

/// One line of the plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlanEntry {
    pub action: Action,
    /// Destination, relative to the output folder.
    pub dest: String,
    pub blake3: String,
    pub kind: MediaKind,
    /// Capture time (wall clock where taken) or null when no date at all is known.
    pub capture_time: Option<String>,
    pub date_source: Option<DateSource>,
    /// Every input file holding these bytes; the first is the one copied.
    pub sources: Vec<String>,
    /// The album folder this copy stands for.
    pub album: Option<String>,
    /// `live-video`, `edit` or `sidecar` for a file that travels with a photo.
    pub role: Option<&'static str>,
    /// For a companion: the destination of its photo in the same folder.
    pub companion_of: Option<String>,
    /// How the date, pair, albums and name were decided (`--explain`, `photoferry explain`).
    pub why: Vec<String>,
    /// This file is a JPEG converted from the HEIC/HEIF original.
    pub convert: bool,
    /// What a conversion could not keep (filled in by the write stage).
    pub notes: Vec<String>,
    /// Index of the asset (internal).
    #[serde(skip)]
    pub asset: usize,
}

/// One distinct content to place.
#[derive(Debug)]
pub struct Asset {
    pub hash: ContentHash,
    pub size: u64,
    pub kind: MediaKind,
    /// Indices of the sources holding these bytes, in input order.
    pub members: Vec<usize>,
    pub capture: Option<CaptureTime>,
    /// The header problem when no copy could be probed (the file is still kept).
    pub problem: Option<String>,
    pub content_id: Option<String>,
    pub duration_secs: Option<f64>,
    pub albums: BTreeSet<String>,
    pub memories: BTreeSet<String>,
    pub favorite: bool,
    pub hidden: bool,
    pub parent: Option<(usize, Role)>,
    pub why: Vec<String>,
}

pub fn role_name(r: Role) -> &'static str {
    match r {
        Role::LiveVideo => "live-video",
        Role::Edit => "edit",
        Role::Sidecar => "sidecar",
    }
}

/// Group sources by content, pick dates, attach albums, and link companions. Assets come out in
/// a stable order: by capture time, then content.
pub fn group(sources: &[Source], media: &[Option<Media>], info: &[SourceInfo]) -> Vec<Asset> {
    let mut assets: Vec<Asset> = Vec::new();
    let mut by_hash: HashMap<ContentHash, usize> = HashMap::new();
    for (i, m) in media.iter().enumerate() {
        let Some(m) = m else { continue };
        let ai = *by_hash.entry(m.hash).or_insert_with(|| {
            assets.push(Asset {
                hash: m.hash,
                size: m.size,
                kind: m.kind,
                members: Vec::new(),
                capture: None,
                problem: None,
                content_id: None,
                duration_secs: None,
                albums: BTreeSet::new(),
                memories: BTreeSet::new(),
                favorite: false,
                hidden: false,
                parent: None,
                why: Vec::new(),
            });
            assets.len() - 1
        });
        assets[ai].members.push(i);
    }
    for a in &mut assets {
        let mut candidates: Vec<CaptureTime> = Vec::new();
        for &i in &a.members {
            let m = media[i].as_ref().expect("members are media");
            candidates.extend(m.probe.capture);
            candidates.extend(info[i].details.as_ref().and_then(|d| d.created));
            candidates.extend(sources[i].mtime);
            a.content_id = a.content_id.take().or_else(|| m.probe.content_id.clone());
            a.duration_secs = a.duration_secs.or(m.probe.duration_secs);
            a.albums.extend(info[i].albums.iter().cloned());
            a.memories.extend(info[i].memories.iter().cloned());
            a.favorite |= info[i].details.as_ref().is_some_and(|d| d.favorite);
            a.hidden |= info[i].details.as_ref().is_some_and(|d| d.hidden);
            for r in &info[i].album_reasons {
                if !a.why.contains(r) {
                    a.why.push(r.clone());
                }
            }
        }
        // The best source wins; among equals, the first copy.
        candidates.sort_by_key(|c| c.source);
        a.capture = candidates.first().copied();
        a.why.insert(0, date_reason(&candidates));
        if !a.members.iter().any(|&i| media[i].as_ref().is_some_and(|m| m.problem.is_none())) {
            a.problem = media[a.members[0]].as_ref().and_then(|m| m.problem.clone());
        }
        if a.members.len() > 1 {
            a.why.push(format!("{} copies with identical bytes; written once per folder", a.members.len()));
        }
    }
    assets.sort_by(|x, y| (x.capture.map(|c| c.local), x.hash).cmp(&(y.capture.map(|c| c.local), y.hash)));

    let items: Vec<pair::Item> = assets
        .iter()
        .map(|a| pair::Item {
            kind: a.kind,
            places: a.members.iter().map(|&i| (sources[i].folder(), sources[i].name.clone())).collect(),
            capture: a.capture,
            content_id: a.content_id.clone(),
            duration_secs: a.duration_secs,
        })
        .collect();
    for l in pair::link(&items) {
        let parent_capture = assets[l.parent].capture;
        let child = &mut assets[l.child];
        child.parent = Some((l.parent, l.role));
        child.why.push(l.why);
        // A companion without a date of its own (an .AAE) takes its photo's.
        if !child.capture.is_some_and(|c| c.source.is_embedded()) {
            if let Some(pc) = parent_capture {
                child.capture = Some(CaptureTime { source: DateSource::Companion, ..pc });
                child.why[0] = format!("date: {} from its photo", pc.to_iso());
            }
        }
    }
    assets
}

fn date_reason(candidates: &[CaptureTime]) -> String {
    match candidates.first() {
        None => "date: none found (no metadata, no file time); placed under 'undated'".into(),
        Some(best) => {
            let mut s = format!("date: {} from {}", best.to_iso(), best.source.as_str());
            if let Some(next) = candidates.iter().find(|c| c.source != best.source) {
                s += &format!(" (beats {} {})", next.source.as_str(), next.to_iso());
            }
            s
        }
    }
}

/// Options that shape the plan.
pub struct PlanOptions<'a> {
    pub layout: &'a Layout,
    /// Place each asset once (in its first album) instead of once per album.
    pub once: bool,
    /// Keep edited renders and `.AAE` sidecars (with their photo).
    pub keep_edits: bool,
    /// Convert HEIC/HEIF stills to JPEG.
    pub convert: bool,
    /// Keep the HEIC beside its JPEG.
    pub keep_original: bool,
}

/// `IMG_1.HEIC` → `IMG_1.JPG` (`img.heic` → `img.jpg`).
pub fn jpeg_name(name: &str) -> String {
    let (stem, ext) = split_ext(name);
    let lower = !ext.is_empty() && ext.chars().all(|c| !c.is_ascii_uppercase());
    format!("{stem}.{}", if lower { "jpg" } else { "JPG" })
}

/// The plan, plus per-asset problems (no free name) and the companions dropped by
/// `--no-edits`.
pub struct Plan {
    pub entries: Vec<PlanEntry>,
    pub errors: Vec<FileError>,
    pub dropped: Vec<usize>,
}

pub fn plan(assets: &[Asset], sources: &[Source], opts: &PlanOptions, placer: &mut Placer) -> Plan {
    let mut out = Plan { entries: Vec::new(), errors: Vec::new(), dropped: Vec::new() };
    // Where each asset went: (folder, final name, suffix n, album).
    type Placement = (String, String, u32, Option<String>);
    let mut placed: Vec<Vec<Placement>> = vec![Vec::new(); assets.len()];
    let order: Vec<usize> = (0..assets.len())
        .filter(|&i| assets[i].parent.is_none())
        .chain((0..assets.len()).filter(|&i| assets[i].parent.is_some()))
        .collect();
    for ai in order {
        let a = &assets[ai];
        let first = &sources[a.members[0]];
        let mut targets: Vec<(String, String, u32, Option<String>)> = Vec::new();
        match a.parent {
            Some((_, Role::Edit | Role::Sidecar)) if !opts.keep_edits => {
                out.dropped.push(ai);
                continue;
            }
            Some((p, role)) => {
                let parent_stem = split_ext(&sources[assets[p].members[0]].name).0.to_lowercase();
                for (folder, pname, n, album) in &placed[p] {
                    let own_ext = split_ext(&first.name).1;
                    let name = match role {
                        Role::LiveVideo => format!("{}.{}", split_ext(pname).0, own_ext),
                        Role::Sidecar if split_ext(&first.name).0.to_lowercase() == parent_stem => {
                            format!("{}.{}", split_ext(pname).0, own_ext)
                        }
                        _ => with_suffix(&crate::names::safe_component(&first.name), *n),
                    };
                    targets.push((folder.clone(), name, 1, album.clone()));
                }
            }
            None => {
                let albums: Vec<Option<String>> = if a.albums.is_empty() {
                    vec![None]
                } else if opts.once {
                    a.albums.iter().take(1).cloned().map(Some).collect()
                } else {
                    a.albums.iter().cloned().map(Some).collect()
                };
                for album in albums {
                    let (folder, name) = opts.layout.render(&LayoutVars {
                        capture: a.capture.as_ref().map(|c| &c.local),
                        album: album.as_deref(),
                        name: &first.name,
                        kind: a.kind.as_str(),
                    });
                    if !targets.iter().any(|t| t.0 == folder) {
                        targets.push((folder, name, 1, album));
                    }
                }
            }
        }
        let companion = a.parent.map(|(p, _)| assets[p].hash);
        // A HEIC still becomes a JPEG (and, with --keep-original, also stays a HEIC).
        let convert = opts.convert && a.kind == MediaKind::Heif && !matches!(a.parent, Some((_, Role::LiveVideo | Role::Sidecar)));
        let targets: Vec<(String, String, u32, Option<String>, bool)> = targets
            .into_iter()
            .flat_map(|(folder, name, n, album)| {
                let mut v = Vec::new();
                if !convert || opts.keep_original {
                    v.push((folder.clone(), name.clone(), n, album.clone(), false));
                }
                if convert {
                    v.push((folder, jpeg_name(&name), n, album, true));
                }
                v
            })
            .collect();
        for (folder, name, min_n, album, converted) in targets {
            let (action, dest, n) = match placer.assign(&folder, &name, a.hash, a.size, companion, min_n, converted) {
                Ok(v) => v,
                Err(msg) => {
                    out.errors.push(FileError {
                        location: first.display(),
                        kind: FileErrorKind::Write,
                        message: msg,
                        action: "not written".into(),
                        year: a.capture.map(|c| c.year()),
                    });
                    continue;
                }
            };
            let mut why = a.why.clone();
            if split_ext(&dest).0 != split_ext(&format!("{folder}/{name}")).0 || (folder.is_empty() && dest != name) {
                why.push(format!("name: {name} was taken in {folder}/ by other bytes; this one is {}", dest.rsplit('/').next().unwrap_or(&dest)));
            }
            let companion_of =
                a.parent.and_then(|(p, _)| placed[p].iter().find(|(f, _, _, _)| *f == folder).map(|(f, n, _, _)| join(f, n)));
            // Companions follow the photo's first file in each folder (the HEIC or its JPEG).
            if !placed[ai].iter().any(|(f, _, _, al)| *f == folder && *al == album) {
                placed[ai].push((folder.clone(), dest.rsplit('/').next().unwrap_or(&dest).to_string(), n, album.clone()));
            }
            out.entries.push(PlanEntry {
                action,
                dest,
                blake3: a.hash.to_hex(),
                kind: a.kind,
                capture_time: a.capture.map(|c| c.to_iso()),
                date_source: a.capture.map(|c| c.source),
                sources: a.members.iter().map(|&m| sources[m].display()).collect(),
                album,
                role: a.parent.map(|(_, r)| role_name(r)),
                companion_of,
                why,
                convert: converted,
                notes: Vec::new(),
                asset: ai,
            });
        }
    }
    out
}

fn join(folder: &str, name: &str) -> String {
    if folder.is_empty() {
        name.to_string()
    } else {
        format!("{folder}/{name}")
    }
}

/// Who holds a name in a destination folder.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Holder {
    /// A file the manifest (or this run) put there: (original's hash, companion of, conversion
    /// target, the bytes on disk are the original's).
    Ours(ContentHash, Option<ContentHash>, bool, bool),
    /// A file on disk photoferry knows nothing about.
    Foreign,
}

/// Picks collision-free names, folder by folder, against the manifest and the disk.
pub struct Placer<'a> {
    out: &'a Path,
    /// folder → collision key → (actual name, holder)
    folders: HashMap<String, HashMap<String, (String, Holder)>>,
    /// (hash, companion, converted) → paths the manifest already has for it.
    known: HashMap<(ContentHash, Option<ContentHash>, bool), Vec<String>>,
}

fn split_path(p: &str) -> (&str, &str) {
    match p.rfind('/') {
        Some(i) => (&p[..i], &p[i + 1..]),
        None => ("", p),
    }
}

impl<'a> Placer<'a> {
    pub fn new(out: &'a Path, files: &[FileRow]) -> Self {
        let mut p = Placer { out, folders: HashMap::new(), known: HashMap::new() };
        for f in files {
            let (folder, name) = split_path(&f.path);
            p.folders
                .entry(folder.to_string())
                .or_default()
                .insert(collision_key(name), (name.to_string(), Holder::Ours(f.hash, f.companion_of, f.converted, f.original_bytes)));
            p.known.entry((f.hash, f.companion_of, f.converted)).or_default().push(f.path.clone());
        }
        p
    }

    /// Names on disk in `folder` that the manifest does not know.
    fn load_disk(&mut self, folder: &str) {
        if self.folders.get(folder).is_some_and(|m| m.contains_key("\u{0}listed")) {
            return;
        }
        let map = self.folders.entry(folder.to_string()).or_default();
        map.insert("\u{0}listed".into(), (String::new(), Holder::Foreign));
        if let Ok(rd) = std::fs::read_dir(self.out.join(folder)) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                map.entry(collision_key(&name)).or_insert((name, Holder::Foreign));
            }
        }
    }

    /// Decide where an asset goes: its existing place, or the first free `name (n)`.
    pub fn assign(
        &mut self,
        folder: &str,
        name: &str,
        hash: ContentHash,
        size: u64,
        companion: Option<ContentHash>,
        min_suffix: u32,
        converted: bool,
    ) -> std::result::Result<(Action, String, u32), String> {
        let join = |n: &str| if folder.is_empty() { n.to_string() } else { format!("{folder}/{n}") };
        if let Some(paths) = self.known.get(&(hash, companion, converted)) {
            if let Some(p) = paths.iter().find(|p| split_path(p).0 == folder) {
                let action = if self.out.join(p).exists() { Action::Present } else { Action::Write };
                let n = suffix_of(split_path(p).1);
                return Ok((action, p.clone(), n));
            }
        }
        self.load_disk(folder);
        for n in min_suffix.max(1)..10_000 {
            let candidate = with_suffix(name, n);
            let key = collision_key(&candidate);
            let held = self.folders.get(folder).and_then(|m| m.get(&key)).cloned();
            match held {
                None => {
                    self.claim(folder, &key, &candidate, Holder::Ours(hash, companion, converted, !converted));
                    return Ok((Action::Write, join(&candidate), n));
                }
                // The same target; or, for an original, the original's bytes already there (left
                // by a conversion that failed).
                Some((_, Holder::Ours(h, c, conv, orig))) if h == hash && c == companion && (conv == converted || (orig && !converted)) => {
                    return Ok((Action::Present, join(&candidate), n));
                }
                // A JPEG made by an earlier run is not byte-identical to a new conversion, so
                // only originals are adopted by content.
                Some((actual, Holder::Foreign)) if !converted => {
                    let path = self.out.join(folder).join(&actual);
                    if same_content(&path, size, hash) {
                        self.claim(folder, &key, &actual, Holder::Ours(hash, companion, false, true));
                        return Ok((Action::Adopt, join(&actual), n));
                    }
                }
                Some(_) => {}
            }
        }
        Err(format!("no free name for {name} in {folder}/ after 10000 tries"))
    }

    fn claim(&mut self, folder: &str, key: &str, name: &str, holder: Holder) {
        self.folders.entry(folder.to_string()).or_default().insert(key.to_string(), (name.to_string(), holder));
    }
}

/// `IMG_0009 (3).JPG` → 3; names without a suffix → 1.
fn suffix_of(name: &str) -> u32 {
    let stem = split_ext(name).0;
    stem.strip_suffix(')')
        .and_then(|s| s.rsplit_once(" ("))
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(1)
}

fn same_content(path: &Path, size: u64, hash: ContentHash) -> bool {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() && m.len() == size => {}
        _ => return false,
    }
    let Ok(mut f) = File::open(path) else { return false };
    let mut h = blake3::Hasher::new();
    io::copy(&mut f, &mut h).is_ok() && h.finalize().as_bytes() == &hash.0
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_parsing() {
        assert_eq!(suffix_of("IMG_0009.JPG"), 1);
        assert_eq!(suffix_of("IMG_0009 (2).JPG"), 2);
        assert_eq!(suffix_of("IMG_0009 (12)"), 12);
        assert_eq!(suffix_of("Trip (day two).JPG"), 1);
    }
}
