#!/usr/bin/env bash
# Runs every fuzz target for the given number of seconds each (default 60),
# starting from the seeds in fuzz/seeds/ plus whatever corpus earlier runs
# left in fuzz/corpus/. Installs cargo-fuzz and the nightly toolchain if
# missing. A crash stops the script with libFuzzer's report and the input
# saved under fuzz/artifacts/<target>/.
#
#   scripts/fuzz.sh            # CI: a minute per target
#   scripts/fuzz.sh 1800       # a long run: 30 minutes per target
#   FUZZ_TARGETS="photo_intake" scripts/fuzz.sh 600
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-60}
TARGETS=${FUZZ_TARGETS:-"photo_intake sync_request upload_request geojson_import open311_post"}
export CARGO_TARGET_DIR=${FUZZ_TARGET_DIR:-$PWD/fuzz/target}

if ! rustup toolchain list | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

for target in $TARGETS; do
  corpus=fuzz/corpus/$target
  mkdir -p "$corpus"
  echo "=== fuzz $target for ${SECONDS_PER_TARGET}s ==="
  # -rss_limit_mb: intake's pixel limit must hold memory well below this.
  # -timeout: one input taking seconds is a hang worth reporting.
  cargo +nightly fuzz run "$target" "$corpus" "fuzz/seeds/$target" -- \
    -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=1536 -timeout=10 \
    -max_len=262144 -print_final_stats=1 2>&1 | tee "fuzz/last-$target.log" | grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units|==|SUMMARY|Done)' || true
  if grep -qE 'ERROR: libFuzzer|panicked at|SUMMARY: .*Sanitizer' "fuzz/last-$target.log"; then
    echo "fuzz target $target failed; see fuzz/last-$target.log and fuzz/artifacts/$target/"
    exit 1
  fi
done
echo "fuzz: all targets ran ${SECONDS_PER_TARGET}s without a finding"
