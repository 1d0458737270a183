#!/usr/bin/env bash
# Installs what threadsplit needs from Debian (only what is missing) and builds it into
# $BUILD_DIR (default ./build), Release, with every core. Sourced or run by train.sh and
# test.sh; safe to run again (an up-to-date build does nothing).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
PACKAGES=(cmake g++ make libdnnl-dev libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev
          protobuf-compiler catch2 nlohmann-json3-dev libcli11-dev zlib1g-dev libeigen3-dev
          libhwloc-dev pkg-config libonnx-dev)

"$ROOT/scripts/apt_ensure.sh" setup "${PACKAGES[@]}"

jobs="$(nproc 2>/dev/null || echo 2)"
if [[ ! -f "$BUILD_DIR/CMakeCache.txt" ]]; then
  cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
log="$BUILD_DIR/build.log"
echo "setup: building into $BUILD_DIR with $jobs jobs (log: $log)" >&2
if ! cmake --build "$BUILD_DIR" -j"$jobs" >"$log" 2>&1; then
  grep -E "error|Error" "$log" | head -40 >&2 || tail -40 "$log" >&2
  echo "setup: the build failed; the full log is $log" >&2
  exit 1
fi
