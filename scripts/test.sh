#!/usr/bin/env bash
# The whole test suite from a fresh Debian machine: installs what is missing, builds, runs
# ctest (unit tests, then the integration tests that start real processes).
# Real CIFAR-10 is used from ../shared/data/cifar-10-batches-bin when present, generated
# data otherwise. Extra arguments go to ctest (e.g. -R engine).
set -euo pipefail
if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
  sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"
  exit 0
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
"$ROOT/scripts/setup.sh"
# The fuzz (clang/libFuzzer), TLS (openssl) and network-namespace (iproute2) tests skip
# themselves, saying why, where these are missing; the test command installs them: about a
# minute of download and two of fuzzing on top of the suite. THREADSPLIT_TEST_EXTRAS=0: don't.
if [[ "${THREADSPLIT_TEST_EXTRAS:-1}" != 0 ]]; then
  "$ROOT/scripts/apt_ensure.sh" test clang openssl iproute2 ||
    echo "test: could not install clang, openssl, iproute2; their tests will say they were skipped" >&2
fi
cd "$BUILD_DIR"
ctest --output-on-failure --timeout 900 -j1 "$@"
