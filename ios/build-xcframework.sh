#!/usr/bin/env bash
# Build ios/GridcaseFFI.xcframework (the Rust core as a static library, with its C header and
# module map) and generate the Swift bindings into the package, so that ios/Package.swift builds
# and `swift test` / Xcode can use it. macOS only (needs Xcode's xcodebuild and lipo).
#
#   ios/build-xcframework.sh [--debug] [--no-macos]
#
# Slices:
#   ios-arm64                      aarch64-apple-ios               (devices)
#   ios-arm64_x86_64-simulator     aarch64-apple-ios-sim + x86_64-apple-ios, merged with lipo
#   macos-arm64_x86_64             aarch64-apple-darwin + x86_64-apple-darwin, merged with lipo
#                                  (so `swift test` runs the package tests on the Mac; --no-macos skips it)
#
# Each slice carries Headers/gridcase_ffiFFI/{gridcase_ffiFFI.h,module.modulemap}: the module
# map declares the Clang module `gridcase_ffiFFI` that the generated Swift imports; keeping it in
# a subfolder named after the module stops it clashing with other XCFrameworks' module maps
# when Xcode copies every framework's headers into one include directory.
#
# Honours CARGO_TARGET_DIR and CARGO. Deployment targets: IPHONEOS_DEPLOYMENT_TARGET (default
# 15.0) and MACOSX_DEPLOYMENT_TARGET (default 12.0), which must match Package.swift's platforms.
set -euo pipefail

die() { echo "build-xcframework: $*" >&2; exit 1; }

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cargo="${CARGO:-cargo}"

profile="release" cargo_profile=(--release) macos=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --debug) profile="debug"; cargo_profile=(); shift ;;
    --no-macos) macos=0; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done

[[ "$(uname -s)" == "Darwin" ]] || die "this needs macOS with Xcode (use ios/generate-swift.sh on other systems)"
for tool in "$cargo" xcodebuild lipo; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found on PATH"
done

if [[ -n "${CARGO_TARGET_DIR:-}" ]]; then
  case "$CARGO_TARGET_DIR" in /*) ;; *) CARGO_TARGET_DIR="$PWD/$CARGO_TARGET_DIR" ;; esac
  export CARGO_TARGET_DIR
fi
target_dir="${CARGO_TARGET_DIR:-$root/target}"
export IPHONEOS_DEPLOYMENT_TARGET="${IPHONEOS_DEPLOYMENT_TARGET:-15.0}"
export MACOSX_DEPLOYMENT_TARGET="${MACOSX_DEPLOYMENT_TARGET:-12.0}"

ios_targets=(aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios)
mac_targets=(aarch64-apple-darwin x86_64-apple-darwin)
targets=("${ios_targets[@]}")
(( macos )) && targets+=("${mac_targets[@]}")

if command -v rustup >/dev/null 2>&1; then
  installed="$(rustup target list --installed)"
  for t in "${targets[@]}"; do
    grep -qx "$t" <<<"$installed" || rustup target add "$t"
  done
fi

cd "$root"
for t in "${targets[@]}"; do
  echo "build-xcframework: cargo build --target $t ($profile)"
  "$cargo" build "${cargo_profile[@]}" -p gridcase-ffi --lib --target "$t"
done
lib() { printf '%s\n' "$target_dir/$1/$profile/libgridcase_ffi.a"; }
for t in "${targets[@]}"; do [[ -f "$(lib "$t")" ]] || die "missing $(lib "$t")"; done

work="$here/build"
rm -rf "$work"
mkdir -p "$work/ios-sim" "$work/macos"
headers="$work/Headers/gridcase_ffiFFI"

# Swift sources into the package, header + module map for the XCFramework. The interface is
# read from the device static library; uniffi-bindgen itself runs on the host.
"$here/generate-swift.sh" --library "$(lib aarch64-apple-ios)" --headers "$headers"

lipo -create "$(lib aarch64-apple-ios-sim)" "$(lib x86_64-apple-ios)" -output "$work/ios-sim/libgridcase_ffi.a"
args=(
  -library "$(lib aarch64-apple-ios)" -headers "$work/Headers"
  -library "$work/ios-sim/libgridcase_ffi.a" -headers "$work/Headers"
)
if (( macos )); then
  lipo -create "$(lib aarch64-apple-darwin)" "$(lib x86_64-apple-darwin)" -output "$work/macos/libgridcase_ffi.a"
  args+=(-library "$work/macos/libgridcase_ffi.a" -headers "$work/Headers")
fi

xcf="$here/GridcaseFFI.xcframework"
rm -rf "$xcf"
xcodebuild -create-xcframework "${args[@]}" -output "$xcf"
echo "build-xcframework: wrote $xcf"
echo "build-xcframework: next: (cd ios && swift build && swift test), or add ios/ as a local package in Xcode"
