//! The emulated Dropbox namespace: folders and files, without file contents.
//!
//! Nodes are keyed by their path NFC-normalized and lower-cased (Dropbox is
//! case-insensitive and Unicode-normalizing but case-preserving); each node keeps the
//! display path it was first written with. Files store only size, content hash and
//! metadata, so benchmarks may "upload" many gigabytes.
//!
//! Every creation or change takes the next value of a per-namespace sequence number,
//! which `list_folder/continue` uses to report changes after a cursor.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use unicode_normalization::UnicodeNormalization;

use crate::timefmt::format_timestamp;
use crate::FileEntry;

/// Names Dropbox refuses to store (compared after lower-casing).
const DISALLOWED_NAMES: [&str; 6] = [
    "desktop.ini",
    "thumbs.db",
    ".ds_store",
    "icon\r",
    ".dropbox",
    ".dropbox.attr",
];
/// Longest accepted path component, in characters.
const MAX_COMPONENT_CHARS: usize = 255;

/// The lookup key of a path: NFC-normalized and lower-cased.
pub(crate) fn normalize(path: &str) -> String {
    // Per-character lowercasing (no final-sigma rule), like Dropbox's Python 2 semantics.
    let lowered: String = path.nfc().flat_map(char::to_lowercase).collect();
    lowered.nfc().collect()
}

/// The kind of conflict in a [`WriteError::Conflict`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Conflict {
    File,
    Folder,
    FileAncestor,
}

/// Dropbox's `WriteError` (the subset the emulator produces).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WriteError {
    MalformedPath,
    Conflict(Conflict),
    InsufficientSpace,
    DisallowedName,
}

impl WriteError {
    /// The error as a Dropbox JSON union value.
    pub fn to_json(self) -> Value {
        match self {
            Self::MalformedPath => json!({".tag": "malformed_path"}),
            Self::InsufficientSpace => json!({".tag": "insufficient_space"}),
            Self::DisallowedName => json!({".tag": "disallowed_name"}),
            Self::Conflict(kind) => {
                let tag = match kind {
                    Conflict::File => "file",
                    Conflict::Folder => "folder",
                    Conflict::FileAncestor => "file_ancestor",
                };
                json!({".tag": "conflict", "conflict": {".tag": tag}})
            }
        }
    }
}

/// `WriteMode`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum WriteMode {
    Add,
    Overwrite,
    Update(String),
}

/// The parts of `CommitInfo` the emulator honours.
#[derive(Clone, Debug)]
pub(crate) struct CommitInfo {
    pub path: String,
    pub mode: WriteMode,
    pub autorename: bool,
    /// Already validated as a Dropbox timestamp.
    pub client_modified: Option<String>,
    pub strict_conflict: bool,
}

#[derive(Clone, Debug)]
struct FileData {
    size: u64,
    content_hash: String,
    client_modified: String,
    server_modified: String,
    rev: String,
}

#[derive(Clone, Debug)]
enum Kind {
    Folder,
    File(FileData),
}

#[derive(Clone, Debug)]
struct Node {
    display: String,
    id: String,
    /// Sequence number of the last change to this node.
    seq: u64,
    kind: Kind,
}

/// How conflicting names are renamed when `autorename` is set.
#[derive(Clone, Copy)]
enum Rename {
    /// "name (2).ext", "name (3).ext", …
    Numbered { split_ext: bool },
    /// "name (conflicted copy).ext", then "name (conflicted copy 2).ext", …
    ConflictedCopy,
}

fn renamed(name: &str, style: Rename, n: u32) -> String {
    let split_ext = !matches!(style, Rename::Numbered { split_ext: false });
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 && split_ext => name.split_at(i),
        _ => (name, ""),
    };
    match style {
        Rename::Numbered { .. } => format!("{stem} ({n}){ext}"),
        Rename::ConflictedCopy if n == 1 => format!("{stem} (conflicted copy){ext}"),
        Rename::ConflictedCopy => format!("{stem} (conflicted copy {n}){ext}"),
    }
}

/// Splits a write path into components, enforcing Dropbox's path rules.
fn split_write_path(path: &str) -> Result<Vec<&str>, WriteError> {
    let rest = path.strip_prefix('/').ok_or(WriteError::MalformedPath)?;
    if rest.is_empty() {
        return Err(WriteError::MalformedPath);
    }
    let components: Vec<&str> = rest.split('/').collect();
    for component in &components {
        if component.is_empty()
            || *component == "."
            || *component == ".."
            || component.contains(['\\', '\0'])
            || component.chars().count() > MAX_COMPONENT_CHARS
        {
            return Err(WriteError::MalformedPath);
        }
    }
    if components
        .iter()
        .any(|c| DISALLOWED_NAMES.contains(&normalize(c).as_str()))
    {
        return Err(WriteError::DisallowedName);
    }
    Ok(components)
}

fn child_key(parent_key: &str, name: &str) -> String {
    format!("{parent_key}/{}", normalize(name))
}

/// The emulated namespace.
#[derive(Debug)]
pub(crate) struct Namespace {
    nodes: BTreeMap<String, Node>,
    /// The last change sequence number handed out.
    seq: u64,
    next_id: u64,
    next_rev: u64,
    used_bytes: u64,
    quota: Option<u64>,
}

impl Namespace {
    /// An empty namespace holding at most `quota` bytes of files.
    pub fn new(quota: Option<u64>) -> Self {
        Self {
            nodes: BTreeMap::new(),
            seq: 0,
            next_id: 0,
            next_rev: 0,
            used_bytes: 0,
            quota,
        }
    }

    /// The last change sequence number; later changes have larger numbers.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!("id:emu{:016x}", self.next_id)
    }

    fn new_rev(&mut self) -> String {
        self.next_rev += 1;
        format!("{:012x}", 0x0150_0000_0000u64 + self.next_rev)
    }

    /// Whether `key` names a folder (`Some(true)`), a file (`Some(false)`) or nothing.
    pub fn is_folder(&self, key: &str) -> Option<bool> {
        self.nodes.get(key).map(|n| matches!(n.kind, Kind::Folder))
    }

    /// Fails with `conflict/file_ancestor` if any ancestor is a file; returns the parent's key.
    fn check_ancestors(&self, parents: &[&str]) -> Result<String, WriteError> {
        let mut key = String::new();
        for component in parents {
            key = child_key(&key, component);
            if let Some(Node {
                kind: Kind::File(_),
                ..
            }) = self.nodes.get(&key)
            {
                return Err(WriteError::Conflict(Conflict::FileAncestor));
            }
        }
        Ok(key)
    }

    /// Creates missing parent folders; returns the parent's display path.
    fn ensure_parents(&mut self, parents: &[&str]) -> String {
        let mut key = String::new();
        let mut display = String::new();
        for component in parents {
            key = child_key(&key, component);
            if let Some(node) = self.nodes.get(&key) {
                display.clone_from(&node.display);
            } else {
                display = format!("{display}/{component}");
                self.insert_folder(key.clone(), display.clone());
            }
        }
        display
    }

    fn insert_folder(&mut self, key: String, display: String) {
        self.seq += 1;
        let node = Node {
            display,
            id: self.new_id(),
            seq: self.seq,
            kind: Kind::Folder,
        };
        self.nodes.insert(key, node);
    }

    /// Resolves a name conflict: an error, or (with autorename) the first free name.
    fn resolve(
        &self,
        autorename: bool,
        conflict: Conflict,
        parent_key: &str,
        name: &str,
        style: Rename,
    ) -> Result<(String, String), WriteError> {
        if !autorename {
            return Err(WriteError::Conflict(conflict));
        }
        let first = if matches!(style, Rename::ConflictedCopy) {
            1
        } else {
            2
        };
        (first..)
            .map(|n| renamed(name, style, n))
            .map(|candidate| (child_key(parent_key, &candidate), candidate))
            .find(|(key, _)| !self.nodes.contains_key(key))
            .ok_or(WriteError::Conflict(conflict))
    }

    /// Commits a file of `size` bytes with `content_hash` under `info`'s rules.
    ///
    /// Returns the key of the resulting file: the target, an autorenamed path, or the
    /// existing file when its content is identical (nothing written).
    pub fn commit(
        &mut self,
        info: &CommitInfo,
        size: u64,
        content_hash: &str,
        now_secs: u64,
    ) -> Result<String, WriteError> {
        let components = split_write_path(&info.path)?;
        let (parents, name) = components.split_at(components.len() - 1);
        let name = name[0];
        let parent_key = self.check_ancestors(parents)?;
        let mut key = child_key(&parent_key, name);
        let mut display_name = name.to_owned();
        let numbered = Rename::Numbered { split_ext: true };
        let mut replaced_size = None;
        match self.nodes.get(&key).map(|n| &n.kind) {
            None => {}
            Some(Kind::Folder) => {
                (key, display_name) = self.resolve(
                    info.autorename,
                    Conflict::Folder,
                    &parent_key,
                    name,
                    numbered,
                )?;
            }
            Some(Kind::File(existing)) => {
                if existing.content_hash == content_hash && !info.strict_conflict {
                    return Ok(key);
                }
                let replace = match &info.mode {
                    WriteMode::Add => false,
                    WriteMode::Overwrite => true,
                    WriteMode::Update(rev) => *rev == existing.rev,
                };
                if replace {
                    replaced_size = Some(existing.size);
                } else {
                    let style = if matches!(info.mode, WriteMode::Update(_)) {
                        Rename::ConflictedCopy
                    } else {
                        numbered
                    };
                    (key, display_name) =
                        self.resolve(info.autorename, Conflict::File, &parent_key, name, style)?;
                }
            }
        }

        let used_after = self.used_bytes - replaced_size.unwrap_or(0) + size;
        if self.quota.is_some_and(|quota| used_after > quota) {
            return Err(WriteError::InsufficientSpace);
        }
        self.used_bytes = used_after;

        let parent_display = self.ensure_parents(parents);
        self.seq += 1;
        let server_modified = format_timestamp(now_secs);
        let data = FileData {
            size,
            content_hash: content_hash.to_owned(),
            client_modified: info
                .client_modified
                .clone()
                .unwrap_or_else(|| server_modified.clone()),
            server_modified,
            rev: self.new_rev(),
        };
        let seq = self.seq;
        if let Some(node) = self.nodes.get_mut(&key).filter(|_| replaced_size.is_some()) {
            node.kind = Kind::File(data);
            node.seq = seq;
        } else {
            let node = Node {
                display: format!("{parent_display}/{display_name}"),
                id: self.new_id(),
                seq,
                kind: Kind::File(data),
            };
            self.nodes.insert(key.clone(), node);
        }
        Ok(key)
    }

    /// Creates a folder (and its parents); returns its key.
    pub fn create_folder(&mut self, path: &str, autorename: bool) -> Result<String, WriteError> {
        let components = split_write_path(path)?;
        let (parents, name) = components.split_at(components.len() - 1);
        let name = name[0];
        let parent_key = self.check_ancestors(parents)?;
        let mut key = child_key(&parent_key, name);
        let mut display_name = name.to_owned();
        let style = Rename::Numbered { split_ext: false };
        if let Some(node) = self.nodes.get(&key) {
            let conflict = match node.kind {
                Kind::Folder => Conflict::Folder,
                Kind::File(_) => Conflict::File,
            };
            (key, display_name) = self.resolve(autorename, conflict, &parent_key, name, style)?;
        }
        let parent_display = self.ensure_parents(parents);
        self.insert_folder(key.clone(), format!("{parent_display}/{display_name}"));
        Ok(key)
    }

    /// The Dropbox metadata JSON of the node at `key`.
    pub fn metadata(&self, key: &str) -> Option<Value> {
        self.nodes.get(key).map(|node| metadata_json(key, node))
    }

    /// The public view of the file at `key`.
    pub fn file_entry(&self, key: &str) -> Option<FileEntry> {
        self.nodes.get(key).and_then(|node| file_entry(key, node))
    }

    /// Every file, sorted by `path_lower`.
    pub fn files(&self) -> Vec<FileEntry> {
        self.nodes
            .iter()
            .filter_map(|(key, node)| file_entry(key, node))
            .collect()
    }

    /// Metadata of the nodes under the folder `dir_key` ("" for the root): direct
    /// children or, if `recursive`, all descendants, in path order (parents first).
    /// With `since`, only nodes created or changed after that sequence number.
    pub fn list(&self, dir_key: &str, recursive: bool, since: Option<u64>) -> Vec<Value> {
        let prefix = format!("{dir_key}/");
        self.nodes
            .range(prefix.clone()..)
            .take_while(|(key, _)| key.starts_with(&prefix))
            .filter(|(key, _)| recursive || !key[prefix.len()..].contains('/'))
            .filter(|(_, node)| since.is_none_or(|seq| node.seq > seq))
            .map(|(key, node)| metadata_json(key, node))
            .collect()
    }
}

fn name_of(display: &str) -> &str {
    display.rsplit('/').next().unwrap_or(display)
}

fn metadata_json(key: &str, node: &Node) -> Value {
    match &node.kind {
        Kind::Folder => json!({
            ".tag": "folder",
            "name": name_of(&node.display),
            "id": node.id,
            "path_lower": key,
            "path_display": node.display,
        }),
        Kind::File(file) => json!({
            ".tag": "file",
            "name": name_of(&node.display),
            "id": node.id,
            "client_modified": file.client_modified,
            "server_modified": file.server_modified,
            "rev": file.rev,
            "size": file.size,
            "path_lower": key,
            "path_display": node.display,
            "content_hash": file.content_hash,
            "is_downloadable": true,
        }),
    }
}

fn file_entry(key: &str, node: &Node) -> Option<FileEntry> {
    match &node.kind {
        Kind::Folder => None,
        Kind::File(file) => Some(FileEntry {
            path_display: node.display.clone(),
            path_lower: key.to_owned(),
            size: file.size,
            content_hash: file.content_hash.clone(),
            client_modified: file.client_modified.clone(),
            rev: file.rev.clone(),
            id: node.id.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(path: &str, mode: WriteMode, autorename: bool) -> CommitInfo {
        CommitInfo {
            path: path.to_owned(),
            mode,
            autorename,
            client_modified: None,
            strict_conflict: false,
        }
    }

    #[test]
    fn normalization_folds_case_and_unicode_forms() {
        assert_eq!(normalize("/Cafe\u{301}"), normalize("/CAFÉ"));
        assert_eq!(normalize("/ΣΣΣ"), "/σσσ");
    }

    #[test]
    fn path_rules() {
        for bad in [
            "",
            "/",
            "a/b",
            "/a//b",
            "/a/",
            "/a\\b",
            "/./a",
            &format!("/{}", "x".repeat(256)),
        ] {
            assert_eq!(
                split_write_path(bad),
                Err(WriteError::MalformedPath),
                "{bad:?}"
            );
        }
        for bad in [
            "/x/Thumbs.db",
            "/.DS_Store",
            "/a/desktop.INI",
            "/Icon\r",
            "/.dropbox/x",
        ] {
            assert_eq!(
                split_write_path(bad),
                Err(WriteError::DisallowedName),
                "{bad:?}"
            );
        }
        assert!(split_write_path(&format!("/{}", "é".repeat(255))).is_ok());
    }

    #[test]
    fn renaming() {
        let numbered = Rename::Numbered { split_ext: true };
        assert_eq!(renamed("a.jpg", numbered, 2), "a (2).jpg");
        assert_eq!(renamed(".hidden", numbered, 3), ".hidden (3)");
        assert_eq!(
            renamed("a.b.c", Rename::Numbered { split_ext: false }, 2),
            "a.b.c (2)"
        );
        assert_eq!(
            renamed("a.jpg", Rename::ConflictedCopy, 1),
            "a (conflicted copy).jpg"
        );
        assert_eq!(
            renamed("a.jpg", Rename::ConflictedCopy, 2),
            "a (conflicted copy 2).jpg"
        );
    }

    #[test]
    fn write_modes() {
        let mut ns = Namespace::new(None);
        let key = ns
            .commit(&commit("/Dir/A.jpg", WriteMode::Add, false), 3, "h1", 0)
            .unwrap();
        assert_eq!(key, "/dir/a.jpg");
        assert_eq!(ns.is_folder("/dir"), Some(true));
        let rev = ns.file_entry(&key).unwrap().rev;

        // Identical content: no write, same rev.
        let same = ns
            .commit(&commit("/dir/a.JPG", WriteMode::Add, false), 3, "h1", 5)
            .unwrap();
        assert_eq!(ns.file_entry(&same).unwrap().rev, rev);

        let add = commit("/dir/a.jpg", WriteMode::Add, false);
        assert_eq!(
            ns.commit(&add, 4, "h2", 0),
            Err(WriteError::Conflict(Conflict::File))
        );
        let strict = CommitInfo {
            strict_conflict: true,
            ..add.clone()
        };
        assert_eq!(
            ns.commit(&strict, 3, "h1", 0),
            Err(WriteError::Conflict(Conflict::File))
        );

        let renamed = ns
            .commit(&commit("/dir/a.jpg", WriteMode::Add, true), 4, "h2", 0)
            .unwrap();
        assert_eq!(
            ns.file_entry(&renamed).unwrap().path_display,
            "/Dir/a (2).jpg"
        );
        let renamed = ns
            .commit(&commit("/dir/a.jpg", WriteMode::Add, true), 4, "h3", 0)
            .unwrap();
        assert_eq!(renamed, "/dir/a (3).jpg");

        let stale = commit("/dir/a.jpg", WriteMode::Update("0".into()), false);
        assert_eq!(
            ns.commit(&stale, 4, "h4", 0),
            Err(WriteError::Conflict(Conflict::File))
        );
        let stale = CommitInfo {
            autorename: true,
            ..stale
        };
        let copy = ns.commit(&stale, 4, "h4", 0).unwrap();
        assert_eq!(copy, "/dir/a (conflicted copy).jpg");
        let update = commit("/dir/a.jpg", WriteMode::Update(rev.clone()), false);
        ns.commit(&update, 9, "h5", 0).unwrap();
        let entry = ns.file_entry(&key).unwrap();
        assert_eq!((entry.size, entry.path_display.as_str()), (9, "/Dir/A.jpg"));
        assert_ne!(entry.rev, rev);

        ns.commit(
            &commit("/dir/a.jpg", WriteMode::Overwrite, false),
            1,
            "h6",
            0,
        )
        .unwrap();
        assert_eq!(ns.file_entry(&key).unwrap().content_hash, "h6");

        let under_file = commit("/dir/a.jpg/b", WriteMode::Add, false);
        assert_eq!(
            ns.commit(&under_file, 1, "h", 0),
            Err(WriteError::Conflict(Conflict::FileAncestor))
        );
        assert_eq!(
            ns.commit(&commit("/dir", WriteMode::Overwrite, false), 1, "h", 0),
            Err(WriteError::Conflict(Conflict::Folder))
        );
    }

    #[test]
    fn quota_counts_replacements() {
        let mut ns = Namespace::new(Some(10));
        ns.commit(&commit("/a", WriteMode::Add, false), 8, "h1", 0)
            .unwrap();
        assert_eq!(
            ns.commit(&commit("/b", WriteMode::Add, false), 3, "h2", 0),
            Err(WriteError::InsufficientSpace)
        );
        ns.commit(&commit("/a", WriteMode::Overwrite, false), 10, "h3", 0)
            .unwrap();
        assert_eq!(ns.files().len(), 1);
    }

    #[test]
    fn folders_and_listing() {
        let mut ns = Namespace::new(None);
        ns.create_folder("/Photos", false).unwrap();
        assert_eq!(
            ns.create_folder("/photos", false),
            Err(WriteError::Conflict(Conflict::Folder))
        );
        assert_eq!(ns.create_folder("/photos", true).unwrap(), "/photos (2)");
        let seq = ns.seq();
        ns.commit(
            &commit("/photos/2024/x.jpg", WriteMode::Add, false),
            1,
            "h",
            0,
        )
        .unwrap();
        let names = |values: Vec<Value>| -> Vec<String> {
            values
                .iter()
                .map(|v| v["path_display"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(names(ns.list("", false, None)), ["/Photos", "/photos (2)"]);
        assert_eq!(
            names(ns.list("/photos", true, None)),
            ["/Photos/2024", "/Photos/2024/x.jpg"]
        );
        assert_eq!(
            names(ns.list("", true, Some(seq))),
            ["/Photos/2024", "/Photos/2024/x.jpg"]
        );
        assert!(ns.list("/photos/2024", false, Some(ns.seq())).is_empty());
    }
}
