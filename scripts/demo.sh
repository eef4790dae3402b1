#!/usr/bin/env bash
# The README's first command: set up, generate the sample export under fixtures/, organize it into
# fixtures/out, and show the tree and the summary.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "building photoferry (the first build takes a few minutes)..."
cargo build --release --quiet --bin photoferry --example make-fixtures
./target/release/examples/make-fixtures fixtures/sample-export
rm -rf fixtures/out
echo
echo "\$ photoferry organize fixtures/sample-export/* --out fixtures/out"
./target/release/photoferry organize fixtures/sample-export/* --out fixtures/out
echo
echo "The organized tree (state in fixtures/out/.photoferry/ not shown):"
(cd fixtures/out && find . -path ./.photoferry -prune -o -type f -print | sed 's|^\./||' | sort)
