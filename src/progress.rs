//! Progress as data: the library reports stages and counts; the binary decides how to show them
//! (a bar on a terminal, plain lines otherwise, nothing in tests).

/// The stages of `organize`, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Scan,
    Read,
    Plan,
    Write,
    Record,
    /// upload/verify: computing Dropbox content hashes (or BLAKE3) of the local tree.
    Hash,
    /// upload/verify: reading the Dropbox listing.
    List,
    /// upload: sending and committing.
    Upload,
    /// report: making thumbnails.
    Thumbnail,
}

impl Stage {
    pub fn label(self) -> &'static str {
        match self {
            Stage::Scan => "scanning inputs",
            Stage::Read => "reading and hashing",
            Stage::Plan => "planning",
            Stage::Write => "writing",
            Stage::Record => "recording manifest",
            Stage::Hash => "hashing",
            Stage::List => "listing Dropbox",
            Stage::Upload => "uploading",
            Stage::Thumbnail => "making thumbnails",
        }
    }
}

pub trait Progress: Sync {
    /// A stage begins with this many items and bytes to go (0 when unknown).
    fn start(&self, stage: Stage, items: u64, bytes: u64);
    /// Some items and bytes of the current stage are done.
    fn advance(&self, items: u64, bytes: u64);
    /// The current stage is done.
    fn finish(&self);
}

/// Shows nothing.
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _: Stage, _: u64, _: u64) {}
    fn advance(&self, _: u64, _: u64) {}
    fn finish(&self) {}
}
