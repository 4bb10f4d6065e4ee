#!/usr/bin/env bash
# Generate the uniffi Swift bindings of gridcase-ffi into the Swift package (works on Linux and macOS).
#
#   ios/generate-swift.sh [--library PATH] [--bindgen PATH] [--headers DIR] [--release]
#
#   --library PATH  read the interface from this already-built gridcase_ffi library (.a, .so or
#                   .dylib, any target). Default: build the host cdylib with
#                   `cargo build -p gridcase-ffi` and use it.
#   --bindgen PATH  an already-built in-repo uniffi-bindgen binary. Default: build and run it
#                   with `cargo run -p gridcase-ffi --bin uniffi-bindgen`.
#   --headers DIR   also write the C header gridcase_ffiFFI.h and its module.modulemap
#                   (module gridcase_ffiFFI) into DIR, as an XCFramework's Headers want them.
#   --release       build/use the release host library instead of the debug one.
#
# Writes ios/Sources/Gridcase/Generated/gridcase_ffi.swift (not committed: regenerate, never edit).
# Honours CARGO_TARGET_DIR, CARGO, and GRIDCASE_CARGO_ROOT (the Cargo workspace holding
# gridcase-ffi; default: this repository).
set -euo pipefail

die() { echo "generate-swift: $*" >&2; exit 1; }

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "${GRIDCASE_CARGO_ROOT:-$here/..}" && pwd)"
cargo="${CARGO:-cargo}"
command -v "$cargo" >/dev/null 2>&1 || die "'$cargo' not found on PATH"

library="" bindgen="" headers="" profile="debug" cargo_profile=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --library) [[ $# -ge 2 ]] || die "--library needs a path"; library="$2"; shift 2 ;;
    --bindgen) [[ $# -ge 2 ]] || die "--bindgen needs a path"; bindgen="$2"; shift 2 ;;
    --headers) [[ $# -ge 2 ]] || die "--headers needs a directory"; headers="$2"; shift 2 ;;
    --release) profile="release"; cargo_profile=(--release); shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done

abspath() { case "$1" in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$PWD/$1" ;; esac; }
if [[ -n "${CARGO_TARGET_DIR:-}" ]]; then export CARGO_TARGET_DIR="$(abspath "$CARGO_TARGET_DIR")"; fi
target_dir="${CARGO_TARGET_DIR:-$root/target}"
[[ -n "$library" ]] && library="$(abspath "$library")"
[[ -n "$headers" ]] && headers="$(abspath "$headers")"
[[ -n "$bindgen" ]] && bindgen="$(abspath "$bindgen")"

cd "$root"
if [[ -z "$library" ]]; then
  "$cargo" build "${cargo_profile[@]}" -p gridcase-ffi --lib
  case "$(uname -s)" in
    Darwin) library="$target_dir/$profile/libgridcase_ffi.dylib" ;;
    MINGW*|MSYS*|CYGWIN*) library="$target_dir/$profile/gridcase_ffi.dll" ;;
    *) library="$target_dir/$profile/libgridcase_ffi.so" ;;
  esac
fi
[[ -f "$library" ]] || die "library not found: $library"

out="$(mktemp -d "${TMPDIR:-/tmp}/gridcase-swift.XXXXXX")"
trap 'rm -rf "$out"' EXIT
# The in-repo uniffi-bindgen always runs on the host, whatever target the library was built for.
if [[ -n "$bindgen" ]]; then
  bindgen_cmd=("$bindgen")
else
  bindgen_cmd=("$cargo" run --quiet -p gridcase-ffi --bin uniffi-bindgen --)
fi
"${bindgen_cmd[@]}" generate --library "$library" --language swift --no-format --out-dir "$out"

for f in gridcase_ffi.swift gridcase_ffiFFI.h gridcase_ffiFFI.modulemap; do
  [[ -f "$out/$f" ]] || die "uniffi-bindgen did not write $f (wrote: $(ls "$out"))"
done

gen="$here/Sources/Gridcase/Generated"
rm -rf "$gen"
mkdir -p "$gen"
cp "$out/gridcase_ffi.swift" "$gen/gridcase_ffi.swift"
echo "generate-swift: wrote $gen/gridcase_ffi.swift (from $library)"

if [[ -n "$headers" ]]; then
  mkdir -p "$headers"
  cp "$out/gridcase_ffiFFI.h" "$headers/gridcase_ffiFFI.h"
  # XCFrameworks (and Clang's module lookup in a headers dir) want the name module.modulemap.
  cp "$out/gridcase_ffiFFI.modulemap" "$headers/module.modulemap"
  echo "generate-swift: wrote gridcase_ffiFFI.h and module.modulemap into $headers"
fi
