#!/usr/bin/env bash
# Installs the services the tests run for real, each only if it is missing,
# and says what it did and how long it took:
#   postgres  PostgreSQL 15 or newer: Debian's `postgresql` (as root), without
#             its default cluster (the tests make throwaway ones)
#   s3        s3s-fs, an S3-compatible server, from crates.io into ~/.cargo/bin
#   nginx     Debian's `nginx` (as root), the load balancer
# and, as root, the unprivileged account the services run as (PostgreSQL
# refuses root): Debian's `postgres`, or `gridcase-test`.
#
# scripts/test-all.sh runs it in the background while Rust compiles (these are
# downloads and one small Rust build); the harnesses in tests/src/ run it again
# for what they lack, which waits for a run in progress (a lock) and costs
# nothing once everything is there. apt-installed services are kept from
# starting as system services (policy-rc.d for the install).
#
#   scripts/install-services.sh [postgres] [s3] [nginx]   (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."

# Keep in step with tests/src/object_store.rs (S3S_FS_VERSION).
S3S_FS_VERSION=0.14.1
PG_MIN_MAJOR=15
CARGO_BIN=${CARGO_HOME:-$HOME/.cargo}/bin

say() { echo "install-services: $*"; }
is_root() { [ "$(id -u)" -eq 0 ]; }

# One run at a time: the background run and a harness's run must not both
# install (apt's lock, two cargo builds of s3s-fs).
exec 9>"${TMPDIR:-/tmp}/gridcase-install-services.lock"
flock 9

APT_UPDATED=
apt_install() {
  if ! is_root; then
    say "$* missing: run 'apt-get install -y $*' as root (or run this script as root)"
    return 1
  fi
  # The test command's other background install may hold apt's locks
  # (Chromium): wait for them rather than fail.
  local wait_lock=(-o DPkg::Lock::Timeout=900)
  if [ -z "$APT_UPDATED" ]; then
    apt-get "${wait_lock[@]}" update -qq
    APT_UPDATED=1
  fi
  # Installed to be started by the tests, not as system services: a
  # policy-rc.d that says no for the length of the install (only if the
  # machine has none of its own), and no default PostgreSQL cluster.
  local policy=/usr/sbin/policy-rc.d made_policy=
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    made_policy=1
  fi
  mkdir -p /etc/postgresql-common
  [ -e /etc/postgresql-common/createcluster.conf ] ||
    echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.conf
  local rc=0
  DEBIAN_FRONTEND=noninteractive apt-get "${wait_lock[@]}" install -y -qq --no-install-recommends "$@" >/dev/null || rc=$?
  [ -z "$made_policy" ] || rm -f "$policy"
  return $rc
}

# The folder with initdb and postgres, as tests/src/postgres.rs finds it.
pg_bin_dir() {
  if [ -n "${GRIDCASE_PG_BIN:-}" ]; then echo "$GRIDCASE_PG_BIN"; return; fi
  local initdb dir
  if initdb=$(command -v initdb 2>/dev/null); then
    dir=$(dirname "$(readlink -f "$initdb")")
    if [ -x "$dir/postgres" ]; then echo "$dir"; return; fi
  fi
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -n -r); do
    if [ -x "$dir/initdb" ] && [ -x "$dir/postgres" ]; then echo "$dir"; return; fi
  done
}

pg_major() { "$1/postgres" --version | grep -oE '[0-9]+' | head -1; }

install_postgres() {
  local dir
  dir=$(pg_bin_dir)
  if [ -n "$dir" ] && [ "$(pg_major "$dir")" -ge "$PG_MIN_MAJOR" ]; then
    say "postgres: there ($("$dir/postgres" --version) in $dir)"
  else
    say "postgres: installing Debian's postgresql"
    apt_install postgresql
    dir=$(pg_bin_dir)
    [ -n "$dir" ] || { say "postgres: installed, but initdb and postgres are not in /usr/lib/postgresql/*/bin"; return 1; }
    [ "$(pg_major "$dir")" -ge "$PG_MIN_MAJOR" ] ||
      { say "postgres: $("$dir/postgres" --version) is older than $PG_MIN_MAJOR"; return 1; }
    say "postgres: installed $("$dir/postgres" --version) in $dir"
  fi
  if is_root && ! id -u postgres >/dev/null 2>&1 && ! id -u gridcase-test >/dev/null 2>&1; then
    useradd --system --no-create-home --user-group --shell /usr/sbin/nologin gridcase-test
    say "made the account gridcase-test (the services run as it when the tests run as root)"
  fi
}

s3s_fs_bin() {
  if [ -n "${GRIDCASE_S3S_FS:-}" ]; then echo "$GRIDCASE_S3S_FS"; return; fi
  command -v s3s-fs 2>/dev/null || { [ -x "$CARGO_BIN/s3s-fs" ] && echo "$CARGO_BIN/s3s-fs"; } || true
}

install_s3() {
  local bin
  bin=$(s3s_fs_bin)
  if [ -n "$bin" ] && "$bin" --version 2>/dev/null | grep -qF " $S3S_FS_VERSION"; then
    say "s3: there ($("$bin" --version) at $bin)"
    return
  fi
  command -v cargo >/dev/null || { say "s3: cargo is required to install s3s-fs"; return 1; }
  say "s3: cargo install s3s-fs $S3S_FS_VERSION (was: ${bin:-none})"
  local target
  target=$(mktemp -d)
  # Its own target folder (not the workspace's CARGO_TARGET_DIR, whose lock
  # the test build holds), a plain rustc (no workspace clippy wrapper), and
  # Cargo.lock as published (--locked).
  (unset CARGO_TARGET_DIR RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS RUSTC_WRAPPER
    cargo install s3s-fs --version "$S3S_FS_VERSION" --locked --features binary \
      --target-dir "$target" --root "${CARGO_HOME:-$HOME/.cargo}" --quiet) || { rm -rf "$target"; return 1; }
  rm -rf "$target"
  say "s3: installed $("$CARGO_BIN/s3s-fs" --version) at $CARGO_BIN/s3s-fs"
}

nginx_bin() {
  if [ -n "${GRIDCASE_NGINX:-}" ]; then echo "$GRIDCASE_NGINX"; return; fi
  command -v nginx 2>/dev/null || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true
}

install_nginx() {
  local bin
  bin=$(nginx_bin)
  if [ -n "$bin" ]; then
    say "nginx: there ($("$bin" -v 2>&1) at $bin)"
    return
  fi
  say "nginx: installing Debian's nginx"
  apt_install nginx
  say "nginx: installed $(/usr/sbin/nginx -v 2>&1)"
}

what=("$@")
[ ${#what[@]} -gt 0 ] || what=(postgres s3 nginx)
failed=0
for w in "${what[@]}"; do
  started=$(date +%s)
  case "$w" in
    postgres) install_postgres || failed=1 ;;
    s3) install_s3 || failed=1 ;;
    nginx) install_nginx || failed=1 ;;
    *) echo "unknown service: $w (postgres, s3, nginx)"; exit 2 ;;
  esac
  say "$w: $(($(date +%s) - started)) s"
done
exit $failed
