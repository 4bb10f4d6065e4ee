#!/usr/bin/env bash
# Every test Gridcase has: Rust (format, lints, unit and cross-component tests),
# the dashboard in headless Chromium, the Kotlin bindings on the JVM, and the
# generated Swift parsed. Works on a fresh machine: it installs what it needs
# (run as root for apt).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TERM_COLOR=never
LOG_DIR=${TEST_OUTPUT:-$ROOT/test-output}
mkdir -p "$LOG_DIR"

START=$(date +%s)
# Every step runs, even after one failed: the summary names each failure, and
# the script exits non-zero if there was any.
FAILED_STEPS=()
step() { printf '\n=== %s (at %ds) ===\n' "$1" $(($(date +%s) - START)); }
# run NAME LOG COMMAND...: one step, its output also kept in LOG ("" for none).
run() {
  local name=$1 log=$2 status
  shift 2
  step "$name"
  if [ -n "$log" ]; then
    "$@" 2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
  else
    "$@"
    status=$?
  fi
  if [ "$status" -ne 0 ]; then
    echo "--- step failed (exit $status): $name"
    FAILED_STEPS+=("$name (exit $status)")
  fi
  return 0
}

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

run "format" "" cargo fmt --all --check

step "lints (clippy, -D warnings) fold into the builds below"
# clippy-driver compiles the workspace's own crates (rustc compiles the
# dependencies as usual), so every build below lints as it goes and fails on
# a warning: the same lints as `cargo clippy --workspace --all-targets -- -D
# warnings`, without a second pass over the whole tree on a cold machine.
# Exported, so Maven's cargo build shares these artifacts too.
RUSTC_WORKSPACE_WRAPPER=$(command -v clippy-driver) || { echo "clippy-driver not found (rustup component add clippy)"; exit 1; }
export RUSTC_WORKSPACE_WRAPPER
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"

run "core without device features (what the server builds)" "" \
  cargo check -p gridcase-core --no-default-features

no_openssl() {
  if cargo tree -p gridcase-core -e normal --target all | grep -iE "openssl|native-tls|aws-lc"; then
    echo "the core's dependency tree must stay on rustls + ring"; return 1
  fi
  echo "ok: rustls on ring, no OpenSSL"
}
run "no OpenSSL in the core (it must cross-compile for Android and iOS)" "" no_openssl

# Builds (and so lints) every target clippy's --all-targets would: libs,
# bins, tests and examples (there are no benches; benchmarks are a binary).
# Built first, so the build overlaps the background installs; run once the
# services are there.
run "rust build" "$LOG_DIR/cargo-build.log" cargo test --workspace --no-run
wait_for_services
run "rust tests" "$LOG_DIR/cargo-test.log" cargo test --workspace

wait_for_tools
run "dashboard in headless Chromium" "$LOG_DIR/browser.log" bash scripts/test-browser.sh
run "kotlin on the JVM" "$LOG_DIR/android.log" bash scripts/test-android.sh
run "swift bindings parse" "$LOG_DIR/ios.log" bash scripts/test-ios.sh

# A smoke run; the long runs are scripts/fuzz.sh 1800 (see the README). Built
# quickly (the fuzz workspace's dev profile, no AddressSanitizer: the targets
# reach only safe Rust, where a bug shows as a panic or an overflow, which
# this build's debug assertions catch), and all targets side by side.
fuzz_minute() {
  (unset RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS; FUZZ_BUILD=${FUZZ_BUILD:-dev} \
    FUZZ_SANITIZER=${FUZZ_SANITIZER:-none} FUZZ_JOBS=${FUZZ_JOBS:-5} \
    bash scripts/fuzz.sh "${FUZZ_SECONDS:-60}")
}
run "fuzz: every target for about a minute" "$LOG_DIR/fuzz.log" fuzz_minute

step "summary"
# Tests are counted from each runner's own closing lines; a step that failed
# before its runner said anything counts as one failure of its own.
sum_cargo() { # passed|failed
  grep -Eo "test result: [A-Za-z]+\. [0-9]+ passed; [0-9]+ failed" "$LOG_DIR/cargo-test.log" 2>/dev/null |
    awk -v f="$1" '{p+=$4; x+=$6} END {v = (f == "passed") ? p : x; print v + 0}'
}
rust_passed=$(sum_cargo passed)
rust_failed=$(sum_cargo failed)
kt_line=$(grep -Eo 'Tests run: [0-9]+, Failures: [0-9]+, Errors: [0-9]+' "$LOG_DIR/android.log" 2>/dev/null | tail -1)
kt_run=$(echo "$kt_line" | awk '{print $3+0}')
kt_failed=$(echo "$kt_line" | awk '{print $5 + $7}')
kt_passed=$(( ${kt_run:-0} - ${kt_failed:-0} ))
br_line=$(grep -Eo 'browser: [0-9]+ passed, [0-9]+ failed' "$LOG_DIR/browser.log" 2>/dev/null | tail -1)
br_passed=$(echo "$br_line" | awk '{print $2+0}')
br_failed=$(echo "$br_line" | awk '{print $4+0}')
# Not tests: files parsed and fuzz targets run are reported, not counted.
sw=$(grep -Eo 'swift-parse: [0-9]+ passed, [0-9]+ failed' "$LOG_DIR/ios.log" 2>/dev/null | tail -1)
fz=$(grep -c '^fuzz [a-z0-9_]*: [0-9]* inputs' "$LOG_DIR/fuzz.log" 2>/dev/null || true)
passed=$(( ${rust_passed:-0} + ${kt_passed:-0} + ${br_passed:-0} ))
failed=$(( ${rust_failed:-0} + ${kt_failed:-0} + ${br_failed:-0} ))
# A failed step whose runner reported no failing test (a build error, a
# formatting difference, a fuzz finding) is a failure too.
for s in "${FAILED_STEPS[@]}"; do
  case "$s" in
    "rust tests"*) [ "${rust_failed:-0}" -gt 0 ] || failed=$((failed + 1)) ;;
    "kotlin"*) [ "${kt_failed:-0}" -gt 0 ] || failed=$((failed + 1)) ;;
    "dashboard"*) [ "${br_failed:-0}" -gt 0 ] || failed=$((failed + 1)) ;;
    *) failed=$((failed + 1)) ;;
  esac
done
echo "rust tests: ${rust_passed:-0} passed, ${rust_failed:-0} failed"
echo "browser checks: ${br_passed:-0} passed, ${br_failed:-0} failed"
echo "kotlin tests: ${kt_passed:-0} passed, ${kt_failed:-0} failed"
echo "swift files parsed (not counted as tests): ${sw:-none}"
echo "fuzz targets run without a finding (not counted as tests): ${fz:-0}"
if [ "${#FAILED_STEPS[@]}" -gt 0 ]; then
  echo "failed steps:"
  printf '  - %s\n' "${FAILED_STEPS[@]}"
fi
echo "all: $passed passed, $failed failed"
[ "${#FAILED_STEPS[@]}" -eq 0 ] && [ "$failed" -eq 0 ]
