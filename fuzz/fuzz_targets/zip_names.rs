//! cargo-fuzz target `zip_names`: see `harness::zip_names` (shared with tests/fuzz_regressions.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "harness.rs"]
mod harness;

fuzz_target!(|data: &[u8]| harness::zip_names(data));
