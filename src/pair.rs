//! Pair: which files travel with which. A Live Photo's video goes with its still, an edited render
//! (`IMG_E1234.*`) and an adjustment sidecar (`IMG_1234.AAE`, `IMG_O1234.AAE`) go with the
//! original `IMG_1234.*`. Works on distinct contents (the same pair found in two inputs is one
//! pair), and is pure: it returns links and the reason for each.
//!
//! Live Photos pair on Apple's content identifier: the still's MakerNote tag 0x0011 equals the
//! video's QuickTime `com.apple.quicktime.content.identifier`. Only a video that carries no
//! identifier falls back to: same folder, same stem once ` (1)`, `-1` and `_HEVC` suffixes are
//! stripped, capture times within 3 s, and a video of at most 5 s. Two stills are never paired,
//! different identifiers never pair, and no video goes to two stills.

use std::collections::{BTreeMap, HashMap};

use crate::model::{CaptureTime, MediaKind};
use crate::names::split_ext;

/// Longest gap between a still and its video for the name-based fallback.
pub const FALLBACK_MAX_GAP_SECS: i64 = 3;
/// Longest video the name-based fallback accepts as a Live Photo's.
pub const FALLBACK_MAX_VIDEO_SECS: f64 = 5.0;

/// One distinct content, as pairing sees it.
#[derive(Debug, Clone)]
pub struct Item {
    pub kind: MediaKind,
    /// Where copies of it were found: (folder key, file name).
    pub places: Vec<(String, String)>,
    pub capture: Option<CaptureTime>,
    pub content_id: Option<String>,
    pub duration_secs: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    LiveVideo,
    Edit,
    Sidecar,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub child: usize,
    pub parent: usize,
    pub role: Role,
    pub why: String,
}

fn is_still(k: MediaKind) -> bool {
    matches!(k, MediaKind::Heif | MediaKind::Jpeg | MediaKind::Png | MediaKind::Dng | MediaKind::Gif)
}

/// Lower-cased stem with copy suffixes removed: `IMG_0001 (1)`, `IMG_0001-1`, `IMG_0001_HEVC`
/// → `img_0001`.
pub fn base_stem(name: &str) -> String {
    let mut s = split_ext(name).0.to_lowercase();
    loop {
        let before = s.len();
        if let Some(x) = s.strip_suffix("_hevc") {
            s = x.to_string();
        }
        if s.ends_with(')') {
            if let Some(open) = s.rfind('(') {
                if s[open + 1..s.len() - 1].bytes().all(|b| b.is_ascii_digit()) && open + 2 < s.len() {
                    s = s[..open].trim_end().to_string();
                }
            }
        }
        if let Some(dash) = s.rfind('-') {
            let tail = &s[dash + 1..];
            if !tail.is_empty() && tail.len() <= 2 && tail.bytes().all(|b| b.is_ascii_digit()) {
                s = s[..dash].to_string();
            }
        }
        if s.len() == before {
            return s;
        }
    }
}

/// Apple marks derived files with a letter after the underscore: `IMG_E1234` (edited render)
/// and `IMG_O1234` (original-adjustment sidecar) both → `img_1234`.
fn original_stem(stem: &str, letter: char) -> Option<String> {
    let lower = stem.to_lowercase();
    let pos = lower.rfind(&format!("_{letter}"))?;
    let digits = &lower[pos + 2..];
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then(|| format!("{}_{}", &lower[..pos], digits))
}

fn gap_secs(a: Option<CaptureTime>, b: Option<CaptureTime>) -> Option<i64> {
    Some((a?.unix_seconds() - b?.unix_seconds()).abs())
}

fn shares_folder(a: &Item, b: &Item) -> bool {
    a.places.iter().any(|(f, _)| b.places.iter().any(|(g, _)| f == g))
}

fn shares_folder_and_stem(a: &Item, b: &Item) -> bool {
    a.places.iter().any(|(f, n)| b.places.iter().any(|(g, m)| f == g && base_stem(n) == base_stem(m)))
}

/// Link every companion to its parent.
pub fn link(items: &[Item]) -> Vec<Link> {
    let mut links = Vec::new();
    let mut video_of: HashMap<usize, usize> = HashMap::new(); // still → video
    let mut linked: Vec<bool> = vec![false; items.len()];

    // 1. Live Photos by content identifier.
    let mut by_id: BTreeMap<&str, (Vec<usize>, Vec<usize>)> = BTreeMap::new();
    for (i, it) in items.iter().enumerate() {
        let Some(id) = it.content_id.as_deref() else { continue };
        let e = by_id.entry(id).or_default();
        if it.kind.is_video() {
            e.1.push(i);
        } else if is_still(it.kind) {
            e.0.push(i);
        }
    }
    for (id, (stills, videos)) in &by_id {
        for &v in videos {
            let best = stills
                .iter()
                .copied()
                .filter(|s| !video_of.contains_key(s))
                .min_by_key(|&s| {
                    let rank = if shares_folder_and_stem(&items[s], &items[v]) {
                        0
                    } else if shares_folder(&items[s], &items[v]) {
                        1
                    } else {
                        2
                    };
                    (rank, gap_secs(items[s].capture, items[v].capture).unwrap_or(i64::MAX), s)
                });
            if let Some(s) = best {
                video_of.insert(s, v);
                linked[v] = true;
                let mut why = format!("Live Photo video: same content identifier {id}");
                if stills.len() > 1 {
                    why += &format!(" ({} stills share it; this one is the closest by folder, name and time)", stills.len());
                }
                links.push(Link { child: v, parent: s, role: Role::LiveVideo, why });
            }
        }
    }

    // 2. Videos without an identifier: same folder, same base stem, close in time, short.
    for (v, vid) in items.iter().enumerate() {
        if linked[v] || !vid.kind.is_video() || vid.content_id.is_some() {
            continue;
        }
        if !vid.duration_secs.is_some_and(|d| d <= FALLBACK_MAX_VIDEO_SECS) {
            continue;
        }
        let best = items
            .iter()
            .enumerate()
            .filter(|(s, st)| is_still(st.kind) && !video_of.contains_key(s) && shares_folder_and_stem(st, vid))
            .filter_map(|(s, st)| gap_secs(st.capture, vid.capture).filter(|g| *g <= FALLBACK_MAX_GAP_SECS).map(|g| (g, s)))
            .min();
        if let Some((gap, s)) = best {
            video_of.insert(s, v);
            linked[v] = true;
            links.push(Link {
                child: v,
                parent: s,
                role: Role::LiveVideo,
                why: format!(
                    "Live Photo video by name: the video has no content identifier; same folder and stem, {gap} s apart, {:.1} s long",
                    vid.duration_secs.unwrap_or(0.0)
                ),
            });
        }
    }

    // 3. Edited renders and sidecars go with the original of the same stem in the same folder.
    let mut originals: HashMap<(String, String), usize> = HashMap::new();
    for (i, it) in items.iter().enumerate() {
        if linked[i] || !is_still(it.kind) {
            continue;
        }
        for (folder, name) in &it.places {
            let stem = split_ext(name).0.to_lowercase();
            if original_stem(&stem, 'e').is_none() {
                originals.entry((folder.clone(), stem)).or_insert(i);
            }
        }
    }
    for (i, it) in items.iter().enumerate() {
        if linked[i] {
            continue;
        }
        for (folder, name) in &it.places {
            let stem = split_ext(name).0;
            let (role, wanted) = if it.kind == MediaKind::Aae {
                let own = stem.to_lowercase();
                match originals.contains_key(&(folder.clone(), own.clone())) {
                    true => (Role::Sidecar, Some(own)),
                    false => (Role::Sidecar, original_stem(stem, 'o')),
                }
            } else {
                (Role::Edit, original_stem(stem, 'e'))
            };
            let Some(parent) = wanted.and_then(|w| originals.get(&(folder.clone(), w)).copied()) else { continue };
            if parent == i {
                continue;
            }
            linked[i] = true;
            let what = if role == Role::Sidecar { "adjustment sidecar" } else { "edited version" };
            links.push(Link { child: i, parent, role, why: format!("{what} of {} in the same folder", items[parent].places[0].1) });
            break;
        }
    }
    links
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DateSource;
    use chrono::NaiveDate;

    fn at(secs: u32) -> Option<CaptureTime> {
        let t = NaiveDate::from_ymd_opt(2023, 7, 12).unwrap().and_hms_opt(12, 0, 0).unwrap() + chrono::Duration::seconds(secs as i64);
        Some(CaptureTime::new(t, Some(3600), DateSource::ExifDateTimeOriginal))
    }

    fn item(kind: MediaKind, name: &str, t: u32, id: Option<&str>, dur: Option<f64>) -> Item {
        Item { kind, places: vec![("f".into(), name.into())], capture: at(t), content_id: id.map(str::to_string), duration_secs: dur }
    }

    fn pairs(items: &[Item]) -> Vec<(usize, usize, Role)> {
        let mut v: Vec<_> = link(items).into_iter().map(|l| (l.child, l.parent, l.role)).collect();
        v.sort();
        v
    }

    #[test]
    fn crossed_names_pair_by_identifier() {
        let items = vec![
            item(MediaKind::Heif, "IMG_0001.HEIC", 0, Some("A"), None),
            item(MediaKind::Mov, "IMG_0001.MOV", 0, Some("B"), Some(3.0)),
            item(MediaKind::Heif, "IMG_0001 (1).HEIC", 0, Some("B"), None),
            item(MediaKind::Mov, "IMG_0001 (1).MOV", 0, Some("A"), Some(3.0)),
        ];
        assert_eq!(pairs(&items), vec![(1, 2, Role::LiveVideo), (3, 0, Role::LiveVideo)]);
    }

    #[test]
    fn one_video_never_goes_to_two_stills() {
        let items = vec![
            item(MediaKind::Heif, "IMG_2927.HEIC", 0, Some("X"), None),
            item(MediaKind::Heif, "exif-at-eof.heic", 0, Some("X"), None),
            item(MediaKind::Mov, "IMG_2927.MOV", 1, Some("X"), Some(2.0)),
        ];
        assert_eq!(pairs(&items), vec![(2, 0, Role::LiveVideo)]);
        // Two stills alone never pair with each other.
        assert!(pairs(&items[..2]).is_empty());
    }

    #[test]
    fn different_identifiers_never_pair_even_with_equal_names() {
        let items = vec![
            item(MediaKind::Heif, "IMG_1.HEIC", 0, Some("A"), None),
            item(MediaKind::Mov, "IMG_1.MOV", 0, Some("B"), Some(2.0)),
        ];
        assert!(pairs(&items).is_empty());
    }

    #[test]
    fn fallback_needs_name_time_and_a_short_video() {
        let still = item(MediaKind::Heif, "test_live.HEIC", 0, Some("A"), None);
        let ok = item(MediaKind::Mov, "test_live.mov", 2, None, Some(2.9));
        assert_eq!(pairs(&[still.clone(), ok.clone()]), vec![(1, 0, Role::LiveVideo)]);
        let late = item(MediaKind::Mov, "test_live.mov", 10, None, Some(2.9));
        assert!(pairs(&[still.clone(), late]).is_empty());
        let long = item(MediaKind::Mov, "test_live.mov", 1, None, Some(45.0));
        assert!(pairs(&[still.clone(), long]).is_empty());
        let other = item(MediaKind::Mov, "IMG_9.mov", 1, None, Some(2.0));
        assert!(pairs(&[still.clone(), other]).is_empty());
        let mut elsewhere = ok.clone();
        elsewhere.places[0].0 = "g".into();
        assert!(pairs(&[still, elsewhere]).is_empty());
    }

    #[test]
    fn suffixes_are_stripped_for_the_fallback() {
        assert_eq!(base_stem("IMG_7943_HEVC.MOV"), "img_7943");
        assert_eq!(base_stem("IMG_0011-1.JPEG"), "img_0011");
        assert_eq!(base_stem("IMG_0001 (1).HEIC"), "img_0001");
        assert_eq!(base_stem("IMG_0001(2).HEIC"), "img_0001");
        assert_eq!(base_stem("2021-02-13-1929.heic"), "2021-02-13-1929");
        let items = vec![
            item(MediaKind::Heif, "IMG_7943.HEIC", 0, None, None),
            item(MediaKind::Mov, "IMG_7943_HEVC.MOV", 1, None, Some(1.5)),
        ];
        assert_eq!(pairs(&items), vec![(1, 0, Role::LiveVideo)]);
    }

    #[test]
    fn edits_and_sidecars_follow_the_original() {
        let items = vec![
            item(MediaKind::Jpeg, "IMG_4120.JPG", 0, None, None),
            item(MediaKind::Jpeg, "IMG_E4120.JPG", 0, None, None),
            item(MediaKind::Aae, "IMG_4120.AAE", 0, None, None),
            item(MediaKind::Aae, "IMG_O4120.aae", 0, None, None),
            item(MediaKind::Mov, "IMG_E4120.MOV", 0, None, Some(30.0)),
        ];
        assert_eq!(
            pairs(&items),
            vec![(1, 0, Role::Edit), (2, 0, Role::Sidecar), (3, 0, Role::Sidecar), (4, 0, Role::Edit)]
        );
    }
}
