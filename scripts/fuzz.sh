#!/usr/bin/env bash
# libFuzzer runs of the four readers of untrusted bytes (fuzz/):
#   fuzz_wire        both sides' checks on each other's messages (common/wire_checks.h)
#   fuzz_checkpoint  the checkpoint reader (common/checkpoint.h)
#   fuzz_cifar10     the CIFAR-10 reader (common/cifar10.h)
#   fuzz_onnx        the ONNX importer (common/onnx_model.h), seeded with tests/data/onnx
# Compiled here with clang++ (-fsanitize=fuzzer,address,undefined) straight from the sources
# and the protobuf code a normal build generated, then each is run for SECONDS.
#   scripts/fuzz.sh [SECONDS] [TARGET...]     (default 60 s each, all four)
# BUILD_DIR: a configured and built tree (default build/); FUZZ_DIR: binaries, corpora,
# logs (default $BUILD_DIR/fuzz). Exit status 77 when clang with libFuzzer is not installed
# (apt-get install clang), 1 when a target crashed (the reproducer is in FUZZ_DIR).
set -euo pipefail
if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
  sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"
  exit 0
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
FUZZ_DIR="${FUZZ_DIR:-$BUILD_DIR/fuzz}"
SECONDS_EACH="${1:-60}"
[[ $SECONDS_EACH =~ ^[0-9]+$ ]] || { echo "fuzz.sh: SECONDS must be a whole number, got '$SECONDS_EACH' (see --help)" >&2; exit 2; }
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(fuzz_wire fuzz_checkpoint fuzz_cifar10 fuzz_onnx)

CXX="${FUZZ_CXX:-$(command -v clang++ || command -v clang++-14 || true)}"
if [ -z "$CXX" ] || ! echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long){return 0;}' |
    "$CXX" -x c++ -fsanitize=fuzzer - -o /dev/null 2>/dev/null; then
  echo "fuzz.sh: SKIPPED: no clang++ with -fsanitize=fuzzer (apt-get install clang)" >&2
  exit 77
fi
GEN="$BUILD_DIR/proto/gen"
[ -f "$GEN/trainer.pb.cc" ] || { echo "fuzz.sh: $GEN/trainer.pb.cc is missing: build first (cmake --build $BUILD_DIR)" >&2; exit 2; }
mkdir -p "$FUZZ_DIR"
FUZZ_DIR="$(cd "$FUZZ_DIR" && pwd)"

FLAGS=(-std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -I"$ROOT/common" -I"$GEN" -DTHREADSPLIT_VERSION=\"fuzz\" -DONNX_ML=1 -DONNX_NAMESPACE=onnx)
LIBS=(-lonnx_proto $(pkg-config --libs grpc++ protobuf) -lz -lpthread)
COMMON=("$ROOT/common/wire_checks.cpp" "$ROOT/common/augment.cpp" "$ROOT/common/float_packing.cpp" "$ROOT/common/grpc_settings.cpp" "$ROOT/common/build_info.cpp" "$ROOT/common/secrets.cpp" "$ROOT/common/network.cpp"
        "$ROOT/common/checkpoint.cpp" "$ROOT/common/optimizer.cpp"
        "$ROOT/common/cifar10.cpp" "$ROOT/common/synthetic_cifar10.cpp" "$ROOT/common/atomic_file.cpp"
        "$ROOT/common/model_source.cpp" "$ROOT/common/onnx_model.cpp"
        "$GEN/trainer.pb.cc" "$GEN/checkpoint.pb.cc")

# The shared sources are compiled once (side by side) into one archive that every target links,
# and again only when common/, the generated protobuf code or this list changed.
LIB="$FUZZ_DIR/libfuzzcommon.a"
if [ ! -f "$LIB" ] || [ -n "$(find "$ROOT/common" "$GEN" "$ROOT/scripts/fuzz.sh" -newer "$LIB" -name '*.*' -print -quit)" ]; then
  echo "fuzz.sh: compiling the shared sources"
  OBJ="$FUZZ_DIR/obj"
  rm -rf "$OBJ" && mkdir -p "$OBJ"
  LIBFLAGS=("${FLAGS[@]/-fsanitize=fuzzer,/-fsanitize=fuzzer-no-link,}")
  jobs=() failed=0
  for src in "${COMMON[@]}"; do
    name="$(basename "$src")"
    "$CXX" "${LIBFLAGS[@]}" -c "$src" -o "$OBJ/${name%.*}.o" &
    jobs+=($!)
  done
  for j in "${jobs[@]}"; do wait "$j" || failed=1; done
  [ $failed -eq 0 ] || { echo "fuzz.sh: compiling the shared sources failed" >&2; exit 1; }
  rm -f "$LIB" && ar rcs "$LIB" "$OBJ"/*.o
fi

status=0
for t in "${TARGETS[@]}"; do
  bin="$FUZZ_DIR/$t"
  if [ ! -x "$bin" ] || [ -n "$(find "$ROOT/fuzz/$t.cpp" "$LIB" -newer "$bin" -print -quit)" ]; then
    echo "fuzz.sh: compiling $t"
    "$CXX" "${FLAGS[@]}" "$ROOT/fuzz/$t.cpp" "$LIB" "${LIBS[@]}" -o "$bin"
  fi
  corpus="$FUZZ_DIR/$t.corpus"
  mkdir -p "$corpus"
  max_len=65536
  if [ "$t" = fuzz_wire ] && command -v protoc >/dev/null; then
    # Messages each side's checks accept (fuzz/seeds/fuzz_wire/, protobuf text format) seed
    # the corpus, so even a short run starts on the accepted paths instead of hunting for
    # the run id and step.
    for f in "$ROOT"/fuzz/seeds/fuzz_wire/*.txtpb; do
      type=threadsplit.CoordinatorMessage
      [[ $(basename "$f") == worker-* ]] && type=threadsplit.WorkerMessage
      protoc -I"$ROOT/proto" --encode="$type" trainer.proto <"$f" >"$corpus/seed-$(basename "${f%.txtpb}")"
    done
  fi
  if [ "$t" = fuzz_onnx ]; then
    # PyTorch's exports and the refusal files seed the corpus: real graphs to mutate.
    for f in "$ROOT"/tests/data/onnx/*.onnx "$ROOT"/tests/data/onnx/unsupported/*.onnx; do
      [ "$(stat -c %s "$f")" -lt 400000 ] && cp -n "$f" "$corpus/seed-$(basename "$f")"
    done
    max_len=400000
  fi
  if [ "$t" = fuzz_checkpoint ]; then
    # Real checkpoints from the integration tests, when there are any, seed the corpus.
    find "$BUILD_DIR/tests/itmp" -maxdepth 2 -name '*.ckpt' -size -400k 2>/dev/null | head -3 |
      while read -r f; do cp -n "$f" "$corpus/seed-$(basename "$f")"; done
    max_len=400000
  fi
  log="$FUZZ_DIR/$t.log"
  echo "fuzz.sh: $t for $SECONDS_EACH s (log $log)"
  if (cd "$FUZZ_DIR" && ASAN_OPTIONS=detect_leaks=0 "$bin" -max_total_time="$SECONDS_EACH" \
        -max_len="$max_len" -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 "$corpus" >"$log" 2>&1); then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    echo "fuzz.sh: $t: $runs inputs, no crash"
  else
    echo "fuzz.sh: $t: CRASH (see $log; reproducer crash-* in $FUZZ_DIR)" >&2
    tail -30 "$log" >&2
    status=1
  fi
done
exit $status
