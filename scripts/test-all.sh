#!/usr/bin/env bash
# Every test Gridcase has: Rust (format, lints, unit and cross-component tests),
# the dashboard in headless Chromium, the Kotlin bindings on the JVM, and the
# generated Swift parsed. Works on a fresh machine: it installs what it needs
# (run as root for apt).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TERM_COLOR=never
LOG_DIR=${TEST_OUTPUT:-$ROOT/test-output}
mkdir -p "$LOG_DIR"

START=$(date +%s)
step() { printf '\n=== %s (at %ds) ===\n' "$*" $(($(date +%s) - START)); }

# Downloads for the browser, Kotlin and Swift tests go on while Rust compiles.
bash scripts/install-test-tools.sh >"$LOG_DIR/install-test-tools.log" 2>&1 &
TOOLS_PID=$!
# PostgreSQL, the object store and nginx for the Rust tests likewise (see
# scripts/install-services.sh); the tests' harnesses install what is still
# missing themselves.
bash scripts/install-services.sh >"$LOG_DIR/install-services.log" 2>&1 &
SERVICES_PID=$!
wait_for_services() {
  wait "$SERVICES_PID" || echo "the background install of services failed; the harnesses try again"
  cat "$LOG_DIR/install-services.log"
}
wait_for_tools() {
  if [ -n "$TOOLS_PID" ]; then
    # Only a head start: each step below installs what it lacks itself and
    # fails there, with its own message, if it cannot.
    wait "$TOOLS_PID" || { cat "$LOG_DIR/install-test-tools.log"; echo "the background install failed; the steps try again"; }
    TOOLS_PID=
  fi
}

step "toolchain"
command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)"; exit 1; }
if command -v rustup >/dev/null; then
  rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi
cargo --version

step "format"
cargo fmt --all --check

step "lints (clippy, -D warnings) fold into the builds below"
# clippy-driver compiles the workspace's own crates (rustc compiles the
# dependencies as usual), so every build below lints as it goes and fails on
# a warning: the same lints as `cargo clippy --workspace --all-targets -- -D
# warnings`, without a second pass over the whole tree on a cold machine.
# Exported, so Maven's cargo build shares these artifacts too.
RUSTC_WORKSPACE_WRAPPER=$(command -v clippy-driver) || { echo "clippy-driver not found (rustup component add clippy)"; exit 1; }
export RUSTC_WORKSPACE_WRAPPER
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"

step "core without device features (what the server builds)"
cargo check -p gridcase-core --no-default-features

step "no OpenSSL in the core (it must cross-compile for Android and iOS)"
if cargo tree -p gridcase-core -e normal --target all | grep -iE "openssl|native-tls|aws-lc"; then
  echo "the core's dependency tree must stay on rustls + ring"; exit 1
fi
echo "ok: rustls on ring, no OpenSSL"

step "rust tests"
# Builds (and so lints) every target clippy's --all-targets would: libs,
# bins, tests and examples (there are no benches; benchmarks are a binary).
# Built first, so the build overlaps the background installs; run once the
# services are there.
cargo test --workspace --no-run 2>&1 | tee "$LOG_DIR/cargo-build.log"
wait_for_services
cargo test --workspace 2>&1 | tee "$LOG_DIR/cargo-test.log"

step "dashboard in headless Chromium"
wait_for_tools
bash scripts/test-browser.sh 2>&1 | tee "$LOG_DIR/browser.log"

step "kotlin on the JVM"
bash scripts/test-android.sh 2>&1 | tee "$LOG_DIR/android.log"

step "swift bindings parse"
bash scripts/test-ios.sh 2>&1 | tee "$LOG_DIR/ios.log"

step "fuzz: every target for about a minute"
# A smoke run; the long runs are scripts/fuzz.sh 1800 (see the README). Built
# quickly (the fuzz workspace's dev profile, no AddressSanitizer: the targets
# reach only safe Rust, where a bug shows as a panic or an overflow, which
# this build's debug assertions catch), and all targets side by side.
(unset RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS; FUZZ_BUILD=${FUZZ_BUILD:-dev} \
  FUZZ_SANITIZER=${FUZZ_SANITIZER:-none} FUZZ_JOBS=${FUZZ_JOBS:-5} \
  bash scripts/fuzz.sh "${FUZZ_SECONDS:-60}") 2>&1 | tee "$LOG_DIR/fuzz.log"

step "summary"
passed=$(grep -Eo 'test result: ok\. [0-9]+ passed' "$LOG_DIR/cargo-test.log" | awk '{s+=$4} END {print s+0}')
kt=$(grep -Eo 'Tests run: [0-9]+, Failures: 0, Errors: 0' "$LOG_DIR/android.log" | tail -1 | awk '{print $3}' | tr -d ,)
sw=$(grep -Eo 'swift-parse: [0-9]+ passed' "$LOG_DIR/ios.log" | tail -1 | awk '{print $2}')
br=$(grep -Eo 'browser: [0-9]+ passed' "$LOG_DIR/browser.log" | tail -1 | awk '{print $2}')
fz=$(grep -c '^fuzz [a-z0-9_]*: [0-9]* inputs' "$LOG_DIR/fuzz.log" || true)
total=$((passed + ${kt:-0} + ${sw:-0} + ${br:-0} + ${fz:-0}))
echo "rust: $passed, browser: ${br:-0}, kotlin: ${kt:-0}, swift files: ${sw:-0}, fuzz targets: ${fz:-0}"
echo "all: $total passed, 0 failed"
