//! Dropbox API v2 pieces that the upload (next) builds on: the `content_hash` Dropbox computes for
//! every file, and the `Dropbox-API-Arg` header encoding. Both are pure and tested against the
//! published vectors; the client, the loopback emulator and `upload`/`verify` come next.

pub mod content_hash;
pub mod wire;
