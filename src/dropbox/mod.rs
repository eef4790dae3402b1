//! Dropbox: the API v2 client ([`api`]), OAuth login ([`auth`]), the remote listing ([`remote`]),
//! the upload engine ([`upload`]), `verify` ([`verify`]) and what they remember in the manifest
//! ([`state`]). [`content_hash`] and [`wire`] are the two pure pieces of the wire format.

pub mod api;
pub mod auth;
pub mod content_hash;
pub mod remote;
pub mod state;
pub mod upload;
pub mod verify;
pub mod wire;
