#!/usr/bin/env bash
# Build the host gridcase-ffi library, regenerate the Kotlin bindings from it and run the
# Kotlin (JUnit 5) tests on the desktop JVM through JNA: android/pom.xml does the work.
#
# Usage: scripts/test-android.sh [extra mvn args, e.g. -Dtest=ClientTest]
# Works from any directory. Needs cargo, a JDK >= 17 and Maven >= 3.6.3; Maven downloads
# Kotlin, kotlinx-coroutines, JNA and JUnit from Maven Central by itself on first run.
# Honours CARGO_TARGET_DIR (a relative one is taken relative to the current directory, as cargo does).
set -euo pipefail

die() { echo "test-android: $*" >&2; exit 1; }

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

for tool in cargo java mvn; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found on PATH (need cargo, a JDK >= 17 and Maven)"
done

java_major="$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = //p' | head -n1)"
java_major="${java_major#1.}"
[[ "$java_major" =~ ^[0-9]+$ ]] || die "could not tell the Java version (java -version says: $(java -version 2>&1 | head -n1))"
(( java_major >= 17 )) || die "Java $java_major found; Java 17 or newer is needed"

if [[ -n "${CARGO_TARGET_DIR:-}" ]]; then
  case "$CARGO_TARGET_DIR" in
    /*) ;;
    *) CARGO_TARGET_DIR="$PWD/$CARGO_TARGET_DIR" ;;
  esac
  export CARGO_TARGET_DIR
fi

cd "$root/android"
echo "test-android: mvn test in $PWD (cargo target dir: ${CARGO_TARGET_DIR:-$root/target})"
# Not -q: Surefire's "Tests run: N, Failures: 0, ..." summary is printed at INFO level.
# clean: stale classes of deleted sources must not run (cargo's target dir is not touched).
exec mvn -B --no-transfer-progress clean test "$@"
