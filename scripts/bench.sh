#!/usr/bin/env bash
# Every benchmark Gridcase has, in one Markdown table, each with its
# comparison measured in the same run: builds in release mode, then runs
# `gridcase-bench all`. Installs vipsthumbnail (the photo reference) with apt
# when run as root and it is missing. Details of each benchmark go to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v vipsthumbnail >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y -q libvips-tools >/dev/null
  else
    echo "bench: vipsthumbnail is needed (apt-get install libvips-tools)" >&2; exit 1
  fi
fi
cargo build --release -q -p gridcase -p gridcase-ffi -p gridcase-server -p gridcase-tests
target_dir=${CARGO_TARGET_DIR:-target}
exec "$target_dir/release/gridcase-bench" all
