#!/usr/bin/env bash
# Installs what the non-Rust tests need, each only if it is missing:
#   browser  Debian's Chromium (as root) and playwright-core from npm
#   swift    tree-sitter and tree-sitter-swift from PyPI
#   maven    the Kotlin compiler, JNA and JUnit into ~/.m2
# scripts/test-all.sh runs it in the background while Rust compiles, since
# these are downloads and Rust is CPU; the test scripts call it again, which
# costs nothing once everything is there.
#
#   scripts/install-test-tools.sh [browser] [swift] [maven]   (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
PYTHON=${PYTHON:-python3}
SWIFT_PARSER_PKGS=("tree-sitter==0.26.1" "tree-sitter-swift==0.7.4")

install_browser() {
  if [ ! -x "$CHROMIUM" ]; then
    if [ "$(id -u)" -eq 0 ]; then
      echo "installing Debian's chromium"
      # scripts/install-services.sh may be using apt at the same moment.
      apt-get -o DPkg::Lock::Timeout=900 update -qq
      DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq chromium >/dev/null
    else
      echo "Chromium is missing at $CHROMIUM: run 'apt-get install -y chromium' as root (or run this script as root)"
      return 1
    fi
  fi
  command -v node >/dev/null || { echo "Node.js is required for the browser tests"; return 1; }
  if [ ! -f sync-server/tests/browser/node_modules/playwright-core/package.json ]; then
    echo "npm: installing playwright-core (no browser download: Debian's Chromium is used)"
    (cd sync-server/tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
  fi
}

install_swift_parser() {
  if ! "$PYTHON" -c 'import tree_sitter, tree_sitter_swift; from tree_sitter import Language, Parser; Parser(Language(tree_sitter_swift.language()))' 2>/dev/null; then
    echo "pip: installing ${SWIFT_PARSER_PKGS[*]}"
    "$PYTHON" -m pip install --quiet --disable-pip-version-check "${SWIFT_PARSER_PKGS[@]}" \
      || "$PYTHON" -m pip install --quiet --disable-pip-version-check --break-system-packages "${SWIFT_PARSER_PKGS[@]}"
  fi
}

install_maven_deps() {
  command -v mvn >/dev/null || { echo "Maven is required for the Kotlin tests"; return 1; }
  # Resolves the project's and the plugins' artifacts (the Kotlin compiler
  # among them) without running the build, which needs the Rust library.
  (cd android && mvn -B -q --no-transfer-progress dependency:resolve dependency:resolve-plugins >/dev/null)
}

what=("$@")
[ ${#what[@]} -gt 0 ] || what=(browser swift maven)
for w in "${what[@]}"; do
  case "$w" in
    browser) install_browser ;;
    swift) install_swift_parser ;;
    maven) install_maven_deps ;;
    *) echo "unknown tool set: $w (browser, swift, maven)"; exit 2 ;;
  esac
done
