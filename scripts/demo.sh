#!/usr/bin/env bash
# The README's first command: set up, generate the sample export under fixtures/, organize it into
# fixtures/out, and show the tree and the summary.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "building photoferry (the first build takes 5-15 minutes on 2 cores; nothing is printed meanwhile)..."
cargo build --release --quiet --bin photoferry --example make-fixtures
cargo build --release --quiet -p dropbox-emulator
./target/release/examples/make-fixtures fixtures/sample-export
rm -rf fixtures/out
echo
echo "\$ photoferry organize fixtures/sample-export/* --out fixtures/out"
./target/release/photoferry organize fixtures/sample-export/* --out fixtures/out
echo
echo "The organized tree (state in fixtures/out/.photoferry/ not shown):"
(cd fixtures/out && find . -path ./.photoferry -prune -o -type f -print | sed 's|^\./||' | sort)

echo
echo "Uploading it to a local Dropbox API emulator (no account needed; a real upload is"
echo "'photoferry login' once, then the same command):"
log="$(mktemp)"
./target/release/dropbox-emulator --port 0 > "$log" &
emu=$!
trap 'kill $emu 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 1 50); do grep -q listening "$log" && break; sleep 0.1; done
url="$(sed -n 's/^listening on //p' "$log")"
export PHOTOFERRY_DROPBOX_URL="$url" PHOTOFERRY_DROPBOX_TOKEN=emulator-token
echo "\$ photoferry upload fixtures/out --to /Photos"
./target/release/photoferry upload fixtures/out --to /Photos
echo "\$ photoferry upload fixtures/out --to /Photos   # again: nothing is sent twice"
./target/release/photoferry upload fixtures/out --to /Photos
echo "\$ photoferry verify fixtures/out --dropbox /Photos"
./target/release/photoferry verify fixtures/out --dropbox /Photos
