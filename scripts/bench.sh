#!/usr/bin/env bash
# The one benchmark command: every side-by-side benchmark in one run, each appending its results
# (with the date and the machine) to BENCHMARKS.md. Needs ../shared/media; installs the tools it
# compares against (heif-convert, exiftool, b3sum, GNU time) with ../shared/scripts/install-anchor-tools.sh.
#   organize  photoferry vs cp -r (+ sync) vs an exiftool date sort, 2,072 real files
#   scale     1,000 vs 10,000 files (time per 1,000, peak RSS), folder vs cp -r, zip vs unzip,
#             copy+hash throughput, BLAKE3 vs b3sum, extrapolation to 100,000 files / 500 GB
#   convert   photoferry convert vs heif-convert -q 90 two at a time
#   upload    API calls per file and bytes sent, first run and re-run, against the emulator
#   report    the HTML contact sheet's thumbnails, first build and cached re-run
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -f ../shared/scripts/install-anchor-tools.sh ]; then
  command -v heif-convert >/dev/null && command -v exiftool >/dev/null && command -v b3sum >/dev/null && [ -x /usr/bin/time ] \
    || bash ../shared/scripts/install-anchor-tools.sh
fi
command -v unzip >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq unzip >/dev/null; }
for b in ${PHOTOFERRY_BENCHES:-organize scale convert upload report}; do
  echo "=== cargo bench --bench $b"
  cargo bench --locked --bench "$b"
done
