#!/usr/bin/env bash
# Install what photoferry needs to build, if it is missing: a C/C++ compiler (SQLite and libheif
# are compiled in), cmake and pkg-config (libheif's build), the HEVC decoders libheif uses
# (FFmpeg's libavcodec, preferred for speed, and libde265), libjpeg-turbo (the JPEG encoder),
# and a Rust toolchain. Debian/Ubuntu via apt; on macOS, prints the commands to run.
# Idempotent and quiet when everything is present.
set -euo pipefail

missing=""
command -v cc >/dev/null 2>&1 || missing="$missing build-essential"
command -v c++ >/dev/null 2>&1 || missing="$missing build-essential"
command -v cmake >/dev/null 2>&1 || missing="$missing cmake"
command -v pkg-config >/dev/null 2>&1 || missing="$missing pkg-config"
pkg-config --exists libde265 2>/dev/null || missing="$missing libde265-dev"
pkg-config --exists libavcodec libavutil 2>/dev/null || missing="$missing libavcodec-dev"
pkg-config --exists libturbojpeg 2>/dev/null || missing="$missing libturbojpeg0-dev"
command -v cargo >/dev/null 2>&1 || missing="$missing cargo"
# `setup.sh --test`: the test suite also drives a headless browser (the report's check).
if [ "${1:-}" = "--test" ] && [ "$(uname -s)" != Darwin ]; then
  [ -x /usr/bin/chromium ] || missing="$missing chromium"
fi
[ -z "$missing" ] && exit 0

case "$(uname -s)" in
  Darwin)
    echo "Missing:$missing. Install with:"
    echo "  xcode-select --install"
    echo "  brew install cmake pkg-config libde265 ffmpeg jpeg-turbo rustup && rustup-init -y"
    exit 1 ;;
esac

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
if command -v apt-get >/dev/null 2>&1; then
  echo "setup: installing$missing with apt-get" >&2
  $SUDO apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
else
  echo "setup: please install$missing with your package manager (Rust: https://rustup.rs)" >&2
  exit 1
fi
