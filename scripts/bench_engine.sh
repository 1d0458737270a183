#!/usr/bin/env bash
# Step benchmark table for docs/engine.md: build/bench/step_bench for each network, thread
# count and convolution path, interleaved over R rounds so drift on a noisy machine hits every
# configuration alike. Prints a Markdown table of the median (min-max) of the rounds' medians.
#   scripts/bench_engine.sh [--rounds 3] [--data DIR] [--models "seed_cnn tf_tutorial_cnn"]
#                           [--threads "1 2"]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="${BUILD_DIR:-$ROOT/build}/bench/step_bench"
rounds=3
data="${CIFAR10_DIR:-$ROOT/../shared/data/cifar-10-batches-bin}"
models="seed_cnn tf_tutorial_cnn"
threads="1 2"
while (($#)); do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --data) data="$2"; shift 2 ;;
    --models) models="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    -h|--help) sed -n 2,6p "$0"; exit 0 ;;
    *) echo "bench_engine.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -x "$BENCH" ]] || { echo "bench_engine.sh: $BENCH is missing; run scripts/setup.sh" >&2; exit 1; }
data_arg=()
[[ -f "$data/data_batch_1.bin" ]] && data_arg=(--data "$data")

out="$(mktemp)"
trap 'rm -f "$out"' EXIT
for ((r = 1; r <= rounds; r++)); do
  for m in $models; do
    steps=30; runs=5
    [[ $m == tf_tutorial_cnn ]] && { steps=5; runs=3; }
    for t in $threads; do
      for conv in winograd direct; do
        flag=(); [[ $conv == direct ]] && flag=(--direct)
        line="$("$BENCH" --model "$m" --threads "$t" --runs $runs --steps $steps --warmup 3 \
                ${data_arg[@]+"${data_arg[@]}"} ${flag[@]+"${flag[@]}"} | grep '^median:')"
        echo "$m $t $conv $line" >>"$out"
        echo "round $r: $m, $t thread(s), $conv: $line" >&2
      done
    done
  done
done

echo
echo "| network | threads | convolutions | images/s, median of $rounds (min-max) | forward ms | backward ms | GFLOP/s |"
echo "|---|---|---|---|---|---|---|"
for m in $models; do for t in $threads; do for conv in winograd direct; do
  grep "^$m $t $conv " "$out" | python3 -c '
import re, statistics, sys
rows = [l for l in sys.stdin]
ips = [float(re.search(r"median: (\d+) images/s", l).group(1)) for l in rows]
fwd = [float(re.search(r"forward ([\d.]+) ms", l).group(1)) for l in rows]
bwd = [float(re.search(r"backward ([\d.]+) ms", l).group(1)) for l in rows]
gf = [float(re.search(r"([\d.]+) GFLOP/s", l).group(1)) for l in rows]
m, t, conv = sys.argv[1:4]
print(f"| {m} | {t} | {conv} | {statistics.median(ips):.0f} ({min(ips):.0f}-{max(ips):.0f}) | "
      f"{statistics.median(fwd):.2f} | {statistics.median(bwd):.2f} | {statistics.median(gf):.0f} |")
' "$m" "$t" "$conv"
done; done; done
