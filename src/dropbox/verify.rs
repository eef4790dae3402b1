//! `photoferry verify DIR [--dropbox /Photos]`: three views of the library side by side — what the
//! manifest says was written, what is on disk (re-read and re-hashed, nothing cached), and what
//! Dropbox lists now (fresh `list_folder`, compared by `content_hash`) — counted and hashed per
//! year and album, with every missing or different file listed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::Read;
use std::path::PathBuf;

use rayon::prelude::*;
use serde::Serialize;

use super::api::{ApiError, Client};
use super::content_hash::ContentHasher;
use super::remote;
use super::state::{remote_key, State};
use super::upload::{scan_tree, LocalFile};
use crate::error::Error;
use crate::progress::{Progress, Stage};

/// One year or year/album folder.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Group {
    /// `2021` or `2021/Trip`.
    pub group: String,
    pub manifest: usize,
    pub disk: usize,
    /// `None` when Dropbox was not asked.
    pub dropbox: Option<usize>,
    /// BLAKE3 over the sorted (path, BLAKE3) lines of the manifest's files, first 16 hex.
    pub manifest_digest: String,
    /// The same over the files on disk: equal to `manifest_digest` when the two agree.
    pub disk_digest: String,
    /// BLAKE3 over the sorted (path, content_hash) of Dropbox's files, and of the local files.
    pub dropbox_digest: Option<String>,
    pub local_dropbox_digest: Option<String>,
    pub ok: bool,
}

/// One file the views disagree about.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Difference {
    pub path: String,
    /// The year or year/album it belongs to.
    pub group: String,
    /// missing-on-disk, different-on-disk, not-in-manifest, unreadable, missing-in-dropbox,
    /// different-in-dropbox, only-in-dropbox.
    pub kind: &'static str,
    pub detail: String,
}

#[derive(Debug, Default, Serialize)]
pub struct VerifyReport {
    pub dir: PathBuf,
    pub dropbox: Option<String>,
    /// The manifest holds no files (the tree was not made by organize): its column is not compared.
    pub no_manifest: bool,
    pub groups: Vec<Group>,
    pub differences: Vec<Difference>,
    pub files_on_disk: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Local(#[from] Error),
    #[error("listing Dropbox: {0}")]
    Api(#[from] ApiError),
}

/// `2021/Trip/IMG.jpg` → `2021/Trip`; `2021/IMG.jpg` → `2021`; `IMG.jpg` → `.`.
pub fn group_of(rel: &str) -> String {
    let parts: Vec<&str> = rel.split('/').collect();
    match parts.len() {
        0 | 1 => ".".into(),
        2 => parts[0].into(),
        _ => format!("{}/{}", parts[0], parts[1]),
    }
}

struct Hashed {
    blake3: String,
    content_hash: String,
}

fn hash_both(f: &LocalFile) -> std::io::Result<Hashed> {
    let mut file = File::open(&f.abs)?;
    let mut b3 = blake3::Hasher::new();
    let mut ch = ContentHasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                b3.update(&buf[..n]);
                ch.update(&buf[..n]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Hashed { blake3: b3.finalize().to_hex().to_string(), content_hash: ch.finish() })
}

fn digest(mut lines: Vec<(String, String)>) -> String {
    lines.sort();
    let mut h = blake3::Hasher::new();
    for (p, x) in lines {
        h.update(p.as_bytes());
        h.update(b"\0");
        h.update(x.as_bytes());
        h.update(b"\n");
    }
    h.finalize().to_hex()[..16].to_string()
}

/// Compare manifest, disk and (with `client` and `dropbox_root`) Dropbox.
pub fn verify(dir: &std::path::Path, client: Option<&Client>, dropbox_root: Option<&str>, progress: &dyn Progress) -> Result<VerifyReport, VerifyError> {
    let state_dir = dir.join(".photoferry");
    if !dir.is_dir() {
        return Err(Error::io(dir, std::io::Error::new(std::io::ErrorKind::NotFound, "no such folder")).into());
    }
    // Without a manifest there is only the disk to look at: nothing to compare it with unless
    // Dropbox is asked too. (And verify never creates a manifest where there was none.)
    if !state_dir.join("manifest.sqlite").is_file() && dropbox_root.is_none() {
        return Err(Error::io(
            dir,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "not an organized folder (no .photoferry/manifest.sqlite): nothing to compare it with; run photoferry organize --out on it first, or pass --dropbox PATH to compare it with Dropbox",
            ),
        )
        .into());
    }
    std::fs::create_dir_all(&state_dir).map_err(|e| Error::io(&state_dir, e))?;
    let _lock = crate::fsutil::Lock::acquire(&state_dir, dir)?;
    let endpoint = client.map(|c| c.endpoints.key().to_string()).unwrap_or_default();
    let state = State::open(&state_dir, &endpoint, None)?;
    let manifest = state.manifest_files()?;

    progress.start(Stage::Scan, 0, 0);
    let (files, _left_out) = scan_tree(dir)?;
    progress.finish();
    progress.start(Stage::Hash, files.len() as u64, files.iter().map(|f| f.size).sum());
    let hashed: Vec<(&LocalFile, std::io::Result<Hashed>)> = files
        .par_iter()
        .map(|f| {
            let h = hash_both(f);
            progress.advance(1, f.size);
            (f, h)
        })
        .collect();
    progress.finish();

    let mut report = VerifyReport {
        dir: dir.to_path_buf(),
        dropbox: dropbox_root.map(|r| if r.is_empty() { "/".to_string() } else { r.to_string() }),
        no_manifest: manifest.is_empty(),
        files_on_disk: files.len(),
        ..Default::default()
    };
    let mut groups: BTreeMap<String, (Vec<(String, String)>, Vec<(String, String)>, Vec<(String, String)>, Vec<(String, String)>)> = BTreeMap::new();
    let mut disk: HashMap<&str, &Hashed> = HashMap::new();
    let mut fresh_hashes = Vec::new();
    for (f, h) in &hashed {
        match h {
            Ok(h) => {
                disk.insert(f.rel.as_str(), h);
                groups.entry(group_of(&f.rel)).or_default().1.push((f.rel.clone(), h.blake3.clone()));
                fresh_hashes.push((f.rel.clone(), f.size, f.mtime_ns, h.content_hash.clone()));
            }
            Err(e) => report.differences.push(Difference { path: f.rel.clone(), group: group_of(&f.rel), kind: "unreadable", detail: e.to_string() }),
        }
    }
    // The verified hashes refresh upload's cache.
    state.store_hashes(&fresh_hashes)?;
    for (path, b3) in &manifest {
        groups.entry(group_of(path)).or_default().0.push((path.clone(), b3.clone()));
        match disk.get(path.as_str()) {
            None if !hashed.iter().any(|(f, _)| &f.rel == path) => {
                report.differences.push(Difference { path: path.clone(), group: group_of(path), kind: "missing-on-disk", detail: "in the manifest, not in the folder".into() })
            }
            Some(h) if &h.blake3 != b3 => report.differences.push(Difference {
                path: path.clone(),
                group: group_of(path),
                kind: "different-on-disk",
                detail: format!("BLAKE3 {} on disk, {} in the manifest", &h.blake3[..16], &b3[..b3.len().min(16)]),
            }),
            _ => {}
        }
    }
    if !manifest.is_empty() {
        for (f, _) in &hashed {
            if !manifest.contains_key(&f.rel) {
                report.differences.push(Difference { path: f.rel.clone(), group: group_of(&f.rel), kind: "not-in-manifest", detail: "in the folder, not in the manifest".into() });
            }
        }
    }

    if let (Some(client), Some(root)) = (client, dropbox_root) {
        progress.start(Stage::List, 0, 0);
        let listing = remote::list_all(client, root)?.unwrap_or_default();
        progress.finish();
        let uploads = state.uploads()?;
        let mut by_key: HashMap<String, &super::state::RemoteEntry> = listing.iter().map(|e| (remote_key(&e.path_display), e)).collect();
        let mut matched: HashSet<String> = HashSet::new();
        for (f, _) in &hashed {
            let Some(h) = disk.get(f.rel.as_str()) else { continue };
            let expected = uploads.get(&f.rel).map(|u| u.remote_path.clone()).unwrap_or_else(|| format!("{root}/{}", f.rel));
            let key = remote_key(&expected);
            let g = groups.entry(group_of(&f.rel)).or_default();
            g.3.push((f.rel.clone(), h.content_hash.clone()));
            match by_key.remove(&key) {
                Some(e) => {
                    matched.insert(key);
                    let got = e.content_hash.clone().unwrap_or_default();
                    g.2.push((f.rel.clone(), got.clone()));
                    if got != h.content_hash {
                        report.differences.push(Difference {
                            path: f.rel.clone(),
                            group: group_of(&f.rel),
                            kind: "different-in-dropbox",
                            detail: format!("{} has content_hash {}, the local file {}", e.path_display, short(&got), short(&h.content_hash)),
                        });
                    }
                }
                None => report.differences.push(Difference { path: f.rel.clone(), group: group_of(&f.rel), kind: "missing-in-dropbox", detail: format!("{expected} not found") }),
            }
        }
        for e in by_key.into_values() {
            let rel = relative_to_root(&e.path_display, root);
            let g = groups.entry(group_of(&rel)).or_default();
            g.2.push((rel.clone(), e.content_hash.clone().unwrap_or_default()));
            report.differences.push(Difference {
                path: e.path_display.clone(),
                group: group_of(&rel),
                kind: "only-in-dropbox",
                detail: "in Dropbox, not in the folder".into(),
            });
        }
    }

    let bad: HashSet<String> = report.differences.iter().map(|d| d.group.clone()).collect();
    for (name, (m, d, r, l)) in groups {
        let ok = !bad.contains(&name);
        report.groups.push(Group {
            manifest: m.len(),
            disk: d.len(),
            dropbox: dropbox_root.map(|_| r.len()),
            manifest_digest: digest(m),
            disk_digest: digest(d),
            dropbox_digest: dropbox_root.map(|_| digest(r.clone())),
            local_dropbox_digest: dropbox_root.map(|_| digest(l.clone())),
            group: name,
            ok,
        });
    }
    report.differences.sort_by(|a, b| a.path.cmp(&b.path).then(a.kind.cmp(b.kind)));
    Ok(report)
}

fn short(h: &str) -> &str {
    &h[..h.len().min(16)]
}

/// A Dropbox path under `root`, relative to it, keeping the display spelling (Dropbox matched
/// the root's components case-insensitively, so skip as many components as the root has).
fn relative_to_root(path: &str, root: &str) -> String {
    let depth = root.split('/').filter(|c| !c.is_empty()).count();
    path.split('/').filter(|c| !c.is_empty()).skip(depth).collect::<Vec<_>>().join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_year_and_album() {
        assert_eq!(group_of("2021/Trip/IMG_1.JPG"), "2021/Trip");
        assert_eq!(group_of("2021/IMG_1.JPG"), "2021");
        assert_eq!(group_of("IMG_1.JPG"), ".");
        assert_eq!(relative_to_root("/Photos/2021/Trip/A.jpg", "/photos"), "2021/Trip/A.jpg");
        assert_eq!(relative_to_root("/2021/A.jpg", ""), "2021/A.jpg");
    }

    #[test]
    fn digest_is_order_independent_and_content_sensitive() {
        let a = vec![("a".to_string(), "1".to_string()), ("b".to_string(), "2".to_string())];
        let mut b = a.clone();
        b.reverse();
        assert_eq!(digest(a.clone()), digest(b));
        assert_ne!(digest(a), digest(vec![("a".into(), "1".into()), ("b".into(), "3".into())]));
    }
}
