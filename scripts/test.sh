#!/usr/bin/env bash
# The whole test suite from a fresh Debian machine: installs what is missing, builds, runs
# ctest (unit tests, then the integration tests that start real processes).
# Real CIFAR-10 is used from ../shared/data/cifar-10-batches-bin when present, generated
# data otherwise. Extra arguments go to ctest (e.g. -R engine).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
"$ROOT/scripts/setup.sh"
cd "$BUILD_DIR"
ctest --output-on-failure --timeout 900 -j1 "$@"
