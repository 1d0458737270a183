#!/usr/bin/env bash
# The exchange as a measured cost: `threadsplit --exchange-only` (workers compute nothing and
# send a gradient of the model's size) for each model and P, several repeats; writes
# OUT.csv and OUT.md (table, the coordinator's bytes per step, a fitted cost model a + b x P x
# size and what it implies for 16 and 64 cores). A benchmark, run on purpose; not a test.
#   bench/exchange_bench.sh                                   # every model, P = 1..16
#   MODELS=seed_cnn PROCS="1 2 4" STEPS=40 REPEATS=2 bench/exchange_bench.sh --out /tmp/x
# Environment: MODELS (seed_cnn,tf_tutorial_cnn,airbench94), PROCS ("1 2 3 4 6 8 12 16"),
# STEPS (60), WARMUP (10), REPEATS (3), BUILD_DIR (./build), DATA (found as train.sh does).
# Flags: --out PATH (default docs/exchange-bench-$(nproc)core), --runs-dir DIR (every run's
# report; default OUT-runs under /tmp). P x 1 threads beyond the cores oversubscribe them: the
# coordinator allows it and warns; the wall times then include time-sharing.
set -euo pipefail
if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
  sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"
  exit 0
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
BIN="$BUILD_DIR/coordinator/threadsplit"
[[ -x "$BIN" ]] || { echo "exchange_bench.sh: $BIN is not built (cmake --build $BUILD_DIR)" >&2; exit 1; }
out="$ROOT/docs/exchange-bench-$(nproc)core"
runs=""
while (($#)); do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --runs-dir) runs="$2"; shift 2 ;;
    *) echo "exchange_bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
runs="${runs:-/tmp/$(basename "$out")-runs}"
data="$("$ROOT/scripts/find_cifar10.sh" "$BIN" "${DATA:-}")"
cmd="MODELS=${MODELS:-seed_cnn,tf_tutorial_cnn,airbench94} PROCS=\"${PROCS:-1 2 3 4 6 8 12 16}\" STEPS=${STEPS:-60} WARMUP=${WARMUP:-10} REPEATS=${REPEATS:-3} bench/exchange_bench.sh"
# Debian's interpreter: stdlib only.
exec /usr/bin/python3 "$ROOT/bench/exchange_bench.py" --bin "$BIN" --data "$data" \
  --models "${MODELS:-seed_cnn,tf_tutorial_cnn,airbench94}" --procs "${PROCS:-1 2 3 4 6 8 12 16}" \
  --steps "${STEPS:-60}" --warmup "${WARMUP:-10}" --repeats "${REPEATS:-3}" \
  --out "$out" --runs-dir "$runs" --runs-csv "$out-runs.csv" --command "$cmd"
