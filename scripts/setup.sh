#!/usr/bin/env bash
# Install what photoferry needs to build, if it is missing: a C compiler (SQLite is compiled in)
# and a Rust toolchain. Debian/Ubuntu via apt; on macOS, prints the two commands to run.
# Idempotent and quiet when everything is present.
set -euo pipefail

need_cc=0
command -v cc >/dev/null 2>&1 || need_cc=1
need_rust=0
command -v cargo >/dev/null 2>&1 || need_rust=1
[ "$need_cc$need_rust" = "00" ] && exit 0

case "$(uname -s)" in
  Darwin)
    [ "$need_cc" = 1 ] && echo "Install the compiler: xcode-select --install"
    [ "$need_rust" = 1 ] && echo "Install Rust: brew install rustup && rustup-init -y"
    exit 1 ;;
esac

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
if [ "$need_cc" = 1 ] || [ "$need_rust" = 1 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing build tools with apt-get" >&2
    $SUDO apt-get update -qq
    pkgs="build-essential"
    [ "$need_rust" = 1 ] && pkgs="$pkgs cargo"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $pkgs >/dev/null
  else
    echo "setup: please install a C compiler and Rust (https://rustup.rs) with your package manager" >&2
    exit 1
  fi
fi
