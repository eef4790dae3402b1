//! cargo-fuzz target `exif`: see `harness::exif` (shared with tests/fuzz_regressions.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "harness.rs"]
mod harness;

fuzz_target!(|data: &[u8]| harness::exif(data));
