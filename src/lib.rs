//! photoferry: get iCloud Photos exports out of Apple's walled garden into a clean, deduplicated
//! folder tree and into Dropbox, with an HTML contact sheet of the result.
//!
//! The pipeline flows one way — source → probe → plan → write — and the plan is plain data
//! ([`organize::Report::plan`]). Library functions return typed errors ([`error::Error`]) and
//! collect per-file problems ([`error::FileError`]); only the binary turns them into messages
//! and exit codes.

pub mod catalog;
pub mod convert;
pub mod dropbox;
pub mod error;
pub mod fsutil;
pub mod jpeg;
pub mod layout;
pub mod manifest;
pub mod model;
pub mod names;
pub mod options;
pub mod organize;
pub mod pair;
pub mod plan;
pub mod probe;
pub mod progress;
pub mod read;
pub mod report;
pub mod sniff;
pub mod source;

pub use error::{Error, FileError, Result};
pub use options::OrganizeOptions;
pub use organize::{organize, Report};

/// The fixture builders (`fixtures/gen.rs`), shared with the unit tests.
#[cfg(test)]
#[path = "../fixtures/gen.rs"]
pub(crate) mod test_fixtures;
