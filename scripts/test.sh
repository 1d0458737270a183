#!/usr/bin/env bash
# The whole test suite from a fresh Debian machine: installs what is missing, builds, runs
# ctest (unit tests, then the integration tests that start real processes).
# Real CIFAR-10 is used from ../shared/data/cifar-10-batches-bin when present, generated
# data otherwise. Extra arguments go to ctest (e.g. -R engine).
# Tests that could not run here show as Skipped in ctest's summary, each with its reason below it.
set -euo pipefail
if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
  sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"
  exit 0
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
"$ROOT/scripts/setup.sh"
# The fuzz (clang/libFuzzer), TLS (openssl), network-namespace (iproute2), mpirun
# (openmpi-bin), Slurm (slurm-wlm, munge, jq) and onnx.checker (python3-onnx) tests skip themselves, saying why, where these
# are missing; the test command installs them: about a minute of download and two of fuzzing
# on top of the suite. THREADSPLIT_TEST_EXTRAS=0: don't.
if [[ "${THREADSPLIT_TEST_EXTRAS:-1}" != 0 ]]; then
  "$ROOT/scripts/apt_ensure.sh" test clang openssl iproute2 openmpi-bin slurm-wlm munge jq python3-onnx ||
    echo "test: could not install clang, openssl, iproute2, openmpi-bin, slurm-wlm, munge, jq, python3-onnx; their tests will say they were skipped" >&2
fi
cd "$BUILD_DIR"
# ctest's summary names the tests that did not run ("(Skipped)"); the reason of each is in
# its output (tests/skip.h's marker, fuzz.sh's "SKIPPED:"), which only -V shows: listed below.
LOG=Testing/Temporary/LastTest.log
rm -f "$LOG"
status=0
ctest --output-on-failure --timeout 900 -j1 "$@" || status=$?
if [[ -f $LOG ]]; then
  why="$(awk '/^[0-9]+\/[0-9]+ Testing: / { sub(/^[0-9]+\/[0-9]+ Testing: /, ""); name = $0 }
              /SKIPPED: / && name != "" { print "\t" name ": " $0 }' "$LOG")" || why=""
  [[ -z $why ]] || printf 'Why the skipped tests did not run (%s):\n%s\n' "$BUILD_DIR/$LOG" "$why"
fi
exit "$status"
