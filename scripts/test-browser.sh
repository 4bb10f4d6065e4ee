#!/usr/bin/env bash
# The centre's dashboard and the residents' rating page in a real headless
# Chromium (Debian's, driven by playwright-core): a server with a fresh data
# folder, a department, staff and a grid leader made through admin commands,
# the grid leader's terminal played by the `gridcase` CLI. Screenshots go to
# test-output/browser/. Prints `browser: N passed` for the summary.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT_DIR=${TEST_OUTPUT:-$ROOT/test-output}/browser
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

bash scripts/install-test-tools.sh browser

echo "cargo: building the workspace's binaries (the server and the gridcase CLI among them)"
cargo build -q --workspace --bins
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
SERVER_BIN=$TARGET_DIR/debug/gridcase-server
CLI_BIN=$TARGET_DIR/debug/gridcase

WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

SERVER_DATA=$WORK/server
export GRIDCASE_LOG=warn
admin() { "$SERVER_BIN" --data-dir "$SERVER_DATA" admin "$@"; }
json_field() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s)[process.argv[1]]))' "$1"; }

admin import-grids tests/fixtures/grids/liaoyuan-sample.geojson >/dev/null
DEPARTMENT=$(admin create-department --name 龙山区市政局 --unit 220402 --json | json_field id)
admin create-department --name 龙山区住建局 --unit 220402 >/dev/null
# Serves another village: never offered for a case in 福民社区 (issue 10, item 13).
admin create-department --name 新兴村调解室 --unit 220402001002 >/dev/null
export GRIDCASE_STAFF_PASSWORD="centre-test-password"
admin create-staff --login diaodu --name 王调度 --role dispatcher --unit 220402 >/dev/null
admin create-staff --login shizheng --name 市政小李 --role department --department "$DEPARTMENT" >/dev/null
LEADER=$(admin create-leader --name 张网格 --grid 220402001001-G01 --json)
LEADER_CODE=$(echo "$LEADER" | json_field code)
LEADER_ACCOUNT=$(echo "$LEADER" | json_field account_id)

# An ephemeral port: the OS picks one free, the server binds it a moment later.
PORT=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
"$SERVER_BIN" --data-dir "$SERVER_DATA" serve --listen "127.0.0.1:$PORT" \
  --deadline-period-secs 0 >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
URL="http://127.0.0.1:$PORT"
for _ in $(seq 1 100); do
  if node -e 'fetch(process.argv[1]).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))' "$URL/healthz"; then break; fi
  sleep 0.1
done

rm -rf "$OUT_DIR"
mkdir -p "$OUT_DIR"
status=0
GRIDCASE_URL=$URL SERVER_BIN=$SERVER_BIN SERVER_DATA=$SERVER_DATA CLI_BIN=$CLI_BIN \
  TERMINAL_DATA=$WORK/terminal LEADER_CODE=$LEADER_CODE LEADER_ACCOUNT=$LEADER_ACCOUNT \
  STAFF_PASSWORD=$GRIDCASE_STAFF_PASSWORD OUT_DIR=$OUT_DIR CHROMIUM=$CHROMIUM \
  node sync-server/tests/browser/dashboard.test.mjs || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- server log ---"
  tail -n 40 "$WORK/server.log"
fi
exit "$status"
