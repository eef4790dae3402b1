#!/usr/bin/env bash
# The README's second command: set up and run the whole test suite (unit, integration, real media).
# Tests that need ../shared/media skip loudly when it is absent, unless
# PHOTOFERRY_REQUIRE_SHARED_MEDIA=1 (set by .ci/run), which turns absence into a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
cargo test --locked --workspace "$@"
