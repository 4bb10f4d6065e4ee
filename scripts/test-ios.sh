#!/usr/bin/env bash
# The iOS check that runs without a Swift toolchain (Linux CI): build the host gridcase-ffi
# library, generate the Swift bindings from it into ios/Sources/Gridcase/Generated/, then
# parse every .swift file under ios/ (generated and hand-written) with tree-sitter-swift.
# Fails on any syntax error outside the baseline documented in scripts/check_swift.py.
# The real build (xcframework + swift test) is ios/build-xcframework.sh on macOS.
#
# Usage: scripts/test-ios.sh        (from any directory; honours CARGO_TARGET_DIR)
set -euo pipefail

die() { echo "test-ios: $*" >&2; exit 1; }

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
python="${PYTHON:-python3}"

for tool in cargo "$python"; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found on PATH"
done

# tree-sitter >= 0.22 is needed for Language(tree_sitter_swift.language()); these are the versions
# the baseline in check_swift.py was established with.
PYTHON="$python" bash "$here/install-test-tools.sh" swift || die "could not pip install tree-sitter and tree-sitter-swift"

if [[ -n "${CARGO_TARGET_DIR:-}" ]]; then
  case "$CARGO_TARGET_DIR" in /*) ;; *) CARGO_TARGET_DIR="$PWD/$CARGO_TARGET_DIR" ;; esac
  export CARGO_TARGET_DIR
fi

# The workspace's own build (what the Rust and Kotlin tests built, so nothing
# is compiled again for another feature set), then the generator on it.
(cd "$root" && cargo build --workspace --lib --bins)
target_dir="${CARGO_TARGET_DIR:-$root/target}"
lib_ext=so; [[ "$(uname -s)" == Darwin ]] && lib_ext=dylib
"$root/ios/generate-swift.sh" --library "$target_dir/debug/libgridcase_ffi.$lib_ext" \
  --bindgen "$target_dir/debug/uniffi-bindgen"
[[ -s "$root/ios/Sources/Gridcase/Generated/gridcase_ffi.swift" ]] || die "no generated Swift bindings"

"$python" "$here/check_swift.py" --self-test
"$python" "$here/check_swift.py" "$root/ios"
