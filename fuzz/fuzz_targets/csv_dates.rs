//! cargo-fuzz target `csv_dates`: see `harness::csv_dates` (shared with tests/fuzz_regressions.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "harness.rs"]
mod harness;

fuzz_target!(|data: &[u8]| harness::csv_dates(data));
