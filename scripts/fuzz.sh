#!/usr/bin/env bash
# Runs every fuzz target for the given number of seconds each (default 60),
# starting from the seeds in fuzz/seeds/ plus whatever corpus earlier runs
# left in fuzz/corpus/. Installs cargo-fuzz and the nightly toolchain if
# missing. Targets run side by side, one per core (FUZZ_JOBS to change). A
# crash stops the script with libFuzzer's report and the input saved under
# fuzz/artifacts/<target>/; keep it as a regression test (see
# core/tests/fuzz-regressions/).
#
#   scripts/fuzz.sh            # CI: a minute per target
#   scripts/fuzz.sh 1800       # a long run: 30 minutes per target
#   FUZZ_TARGETS="photo_intake" scripts/fuzz.sh 600
#   FUZZ_SANITIZER=none scripts/fuzz.sh   # no AddressSanitizer: faster, and
#                              # enough for the safe Rust these targets reach
#   FUZZ_BUILD=dev scripts/fuzz.sh        # a quicker build (fuzz/Cargo.toml's
#                              # dev profile), slower runs: what CI uses
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-60}
TARGETS=${FUZZ_TARGETS:-"photo_intake sync_request upload_request geojson_import open311_post"}
JOBS=${FUZZ_JOBS:-$(nproc)}
SANITIZER=${FUZZ_SANITIZER:-address}
BUILD=${FUZZ_BUILD:-release}
export CARGO_TARGET_DIR=${FUZZ_TARGET_DIR:-$PWD/fuzz/target}
TRIPLE=$(rustc -vV | sed -n 's/^host: //p')

if ! rustup toolchain list | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  # --debug: it is a thin wrapper around cargo, and builds in half the time.
  cargo install cargo-fuzz --locked --version 0.13.2 --debug
fi

echo "=== fuzz: building the targets ($BUILD, sanitizer: $SANITIZER) ==="
case "$BUILD" in
  release) (cd fuzz && cargo +nightly fuzz build -s "$SANITIZER"); BIN_DIR=$CARGO_TARGET_DIR/$TRIPLE/release ;;
  dev) (cd fuzz && cargo +nightly fuzz build --dev -s "$SANITIZER"); BIN_DIR=$CARGO_TARGET_DIR/$TRIPLE/debug ;;
  *) echo "FUZZ_BUILD is release or dev"; exit 2 ;;
esac

run_target() {
  local target=$1 corpus=fuzz/corpus/$1
  mkdir -p "$corpus" "fuzz/artifacts/$target"
  # -rss_limit_mb: intake's pixel limit must hold memory well below this.
  # -timeout: one input taking seconds is a hang worth reporting.
  "$BIN_DIR/$target" "$corpus" "fuzz/seeds/$target" \
    -artifact_prefix="fuzz/artifacts/$target/" \
    -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=1536 -timeout=10 \
    -max_len=262144 -print_final_stats=1 >"fuzz/last-$target.log" 2>&1 || true
}

summary() {
  local target=$1 log=fuzz/last-$1.log
  if grep -qE 'ERROR: libFuzzer|panicked at|SUMMARY: .*Sanitizer' "$log"; then
    echo "fuzz target $target FAILED; the report:"
    grep -E -A30 'ERROR: libFuzzer|panicked at|SUMMARY' "$log" | head -60
    echo "input saved in fuzz/artifacts/$target/"
    return 1
  fi
  local runs cov
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -1)
  if [ -z "$runs" ]; then
    echo "fuzz target $target did not run:"; tail -20 "$log"; return 1
  fi
  echo "fuzz $target: $runs inputs in ${SECONDS_PER_TARGET}s, ${cov:-cov: ?}, no finding"
}

echo "=== fuzz: $TARGETS, ${SECONDS_PER_TARGET}s each, $JOBS at a time ==="
running=0
for target in $TARGETS; do
  run_target "$target" &
  running=$((running + 1))
  if [ "$running" -ge "$JOBS" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait

failed=0
for target in $TARGETS; do
  summary "$target" || failed=1
done
[ "$failed" -eq 0 ] || exit 1
echo "fuzz: all targets ran ${SECONDS_PER_TARGET}s without a finding"
