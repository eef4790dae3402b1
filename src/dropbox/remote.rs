//! The Dropbox side of the tree: a recursive `list_folder` whose cursor is kept in the manifest,
//! so the next run asks only for what changed (`list_folder/continue`), and falls back to a full
//! listing when Dropbox says the cursor is no longer valid (`reset`).

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::json;

use super::api::{ApiError, Client};
use super::state::{Change, RemoteEntry, State};

/// `Metadata` as list_folder and get_metadata return it.
#[derive(Debug, Deserialize)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum Metadata {
    File(FileMetadata),
    Folder(FolderMetadata),
    Deleted(DeletedMetadata),
}

#[derive(Debug, Deserialize, Clone)]
pub struct FileMetadata {
    pub name: String,
    #[serde(default)]
    pub path_display: Option<String>,
    #[serde(default)]
    pub path_lower: Option<String>,
    pub size: u64,
    #[serde(default)]
    pub content_hash: Option<String>,
    #[serde(default)]
    pub rev: Option<String>,
    #[serde(default)]
    pub client_modified: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct FolderMetadata {
    #[serde(default)]
    pub path_display: Option<String>,
    #[serde(default)]
    pub path_lower: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct DeletedMetadata {
    #[serde(default)]
    pub path_display: Option<String>,
    #[serde(default)]
    pub path_lower: Option<String>,
}

impl FileMetadata {
    pub fn entry(&self) -> RemoteEntry {
        RemoteEntry {
            path_display: self.path_display.clone().or_else(|| self.path_lower.clone()).unwrap_or_else(|| self.name.clone()),
            is_folder: false,
            size: self.size,
            content_hash: self.content_hash.clone(),
            rev: self.rev.clone(),
        }
    }
}

impl Metadata {
    fn change(self) -> Option<Change> {
        match self {
            Metadata::File(f) => Some(Change::Upsert(f.entry())),
            Metadata::Folder(f) => f.path_display.or(f.path_lower).map(|p| {
                Change::Upsert(RemoteEntry { path_display: p, is_folder: true, size: 0, content_hash: None, rev: None })
            }),
            Metadata::Deleted(d) => d.path_display.or(d.path_lower).map(Change::Delete),
        }
    }
}

#[derive(Debug, Deserialize)]
struct ListResult {
    entries: Vec<Metadata>,
    cursor: String,
    has_more: bool,
}

/// How the listing was brought up to date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresh {
    /// Listed from scratch.
    Full,
    /// Only the changes since the last run were asked for.
    Changes,
    /// The folder does not exist in Dropbox yet.
    Missing,
}

/// Bring the cached listing of `root` up to date and return it (keyed by NFC lower-case path).
pub fn refresh(client: &Client, state: &State, root: &str) -> Result<(HashMap<String, RemoteEntry>, Refresh), ListError> {
    let how = match state.cursor(root)? {
        Some(cursor) => match follow(client, state, root, cursor) {
            Ok(()) => Refresh::Changes,
            Err(ListError::Api(e)) if e.has_tag("reset") => full_with_retry(client, state, root)?,
            Err(e) => return Err(e),
        },
        None => full_with_retry(client, state, root)?,
    };
    Ok((state.remote_index(root)?, how))
}

/// A full listing, started over (up to three times) when Dropbox resets its cursor midway.
fn full_with_retry(client: &Client, state: &State, root: &str) -> Result<Refresh, ListError> {
    let mut tries = 0;
    loop {
        match full(client, state, root) {
            Err(ListError::Api(e)) if e.has_tag("reset") && tries < 3 => tries += 1,
            other => return other,
        }
    }
}

fn full(client: &Client, state: &State, root: &str) -> Result<Refresh, ListError> {
    let first: Result<ListResult, ApiError> =
        client.rpc("/2/files/list_folder", &json!({"path": root, "recursive": true, "limit": 2000, "include_deleted": false}));
    match first {
        Ok(page) => {
            let more = page.has_more;
            let cursor = page.cursor.clone();
            let changes: Vec<Change> = page.entries.into_iter().filter_map(Metadata::change).collect();
            state.apply_listing(root, true, &changes, if more { None } else { Some(&cursor) })?;
            if more {
                follow(client, state, root, cursor)?;
            }
            Ok(Refresh::Full)
        }
        Err(e) if e.has_tag("not_found") => {
            state.apply_listing(root, true, &[], None)?;
            Ok(Refresh::Missing)
        }
        Err(e) => Err(e.into()),
    }
}

fn follow(client: &Client, state: &State, root: &str, mut cursor: String) -> Result<(), ListError> {
    loop {
        let page: ListResult = client.rpc("/2/files/list_folder/continue", &json!({"cursor": cursor}))?;
        let changes: Vec<Change> = page.entries.into_iter().filter_map(Metadata::change).collect();
        state.apply_listing(root, false, &changes, Some(&page.cursor))?;
        cursor = page.cursor;
        if !page.has_more {
            return Ok(());
        }
    }
}

/// A fresh, uncached listing (for `verify`, which must ask Dropbox, not remember it).
pub fn list_all(client: &Client, root: &str) -> Result<Option<Vec<RemoteEntry>>, ApiError> {
    let mut out = Vec::new();
    let mut page: ListResult =
        match client.rpc("/2/files/list_folder", &json!({"path": root, "recursive": true, "limit": 2000, "include_deleted": false})) {
            Ok(p) => p,
            Err(e) if e.has_tag("not_found") => return Ok(None),
            Err(e) => return Err(e),
        };
    loop {
        for m in page.entries {
            if let Metadata::File(f) = m {
                out.push(f.entry());
            }
        }
        if !page.has_more {
            return Ok(Some(out));
        }
        page = client.rpc("/2/files/list_folder/continue", &json!({"cursor": page.cursor}))?;
    }
}

/// `get_metadata` of a file; `None` when nothing (or a folder) is there.
pub fn file_metadata(client: &Client, path: &str) -> Result<Option<FileMetadata>, ApiError> {
    match client.rpc::<_, Metadata>("/2/files/get_metadata", &json!({"path": path})) {
        Ok(Metadata::File(f)) => Ok(Some(f)),
        Ok(_) => Ok(None),
        Err(e) if e.has_tag("not_found") => Ok(None),
        Err(e) => Err(e),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("listing Dropbox: {0}")]
    Api(#[from] ApiError),
    #[error(transparent)]
    State(#[from] crate::error::Error),
}
