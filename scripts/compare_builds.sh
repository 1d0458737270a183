#!/usr/bin/env bash
# Behaviour and speed of two builds side by side, for a refactor:
#   scripts/compare_builds.sh BEFORE_BUILD_DIR AFTER_BUILD_DIR [ROUNDS]
# 1. Bit-equality: 50 steps of $MODEL (default seed_cnn) (fixed seed, SGD with momentum, and Adam) at 1x2 and
#    2x1 with each build; the final checkpoints are compared by tests/tools/ckpt_compare
#    (parameters, step, optimizer iterations) and their optimizer moments byte for byte.
# 2. Throughput: ROUNDS (default 5) interleaved rounds; in each, both builds train $STEPS
#    (default 200) steps at 1x2 and at 2x1, and the timed figure after 20 warm-up steps is
#    collected. Prints each
#    build's median images/s per split and the after/before ratio of the medians. ROUNDS 0:
#    bit-equality only.
# Data: $CIFAR10_DIR, else ../shared/data/cifar-10-batches-bin, else a generated set.
set -euo pipefail
if [[ $# -lt 2 || "${1:-}" == -h || "${1:-}" == --help ]]; then
  sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"
  [[ $# -ge 2 ]] && exit 0 || exit 2
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BEFORE="$(cd "$1" && pwd)"
AFTER="$(cd "$2" && pwd)"
ROUNDS="${3:-5}"
STEPS="${STEPS:-200}"
MODEL="${MODEL:-seed_cnn}"
for b in "$BEFORE" "$AFTER"; do
  [[ -x "$b/coordinator/threadsplit" ]] || { echo "compare_builds: $b/coordinator/threadsplit is missing: build it first" >&2; exit 2; }
done
COMPARE="$AFTER/tests/ckpt_compare"
[[ -x "$COMPARE" ]] || { echo "compare_builds: $COMPARE is missing: build the tests target" >&2; exit 2; }
DATA="${CIFAR10_DIR:-$ROOT/../shared/data/cifar-10-batches-bin}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/compare_builds.XXXXXX")"
if [[ ! -f "$DATA/data_batch_1.bin" ]]; then
  DATA="$WORK/synthetic"
  "$AFTER/coordinator/threadsplit" make-synthetic-data "$DATA" >/dev/null
fi
echo "compare_builds: data $DATA, scratch $WORK"

status=0
echo "== bit-equality: 50 steps of $MODEL, seed 7"
for opt in "sgd --momentum 0.9 --lr 0.05" "adam"; do
  for split in "1 2" "2 1"; do
    read -r P T <<<"$split"
    for side in before after; do
      b="$BEFORE"; [[ $side == after ]] && b="$AFTER"
      # shellcheck disable=SC2086
      "$b/coordinator/threadsplit" --data "$DATA" --model "$MODEL" --steps 50 --seed 7 \
        --optimizer $opt --procs "$P" --threads "$T" --eval-every 0 --progress off \
        --save "$WORK/$side.ckpt" >"$WORK/$side.log" 2>&1 ||
        { echo "compare_builds: the $side build failed:"; tail -5 "$WORK/$side.log"; exit 1; }
    done
    if out=$("$COMPARE" "$MODEL" "$WORK/before.ckpt" "$WORK/after.ckpt"); then verdict="$out"; else verdict="$out"; status=1; fi
    echo "  ${opt%% *} ${P}x${T}: $verdict"
  done
done

if ((ROUNDS == 0)); then rm -rf "$WORK"; exit $status; fi
echo "== throughput: $ROUNDS interleaved rounds, $STEPS steps, timed after 20 warm-up steps"
declare -A figures
for ((r = 1; r <= ROUNDS; ++r)); do
  for split in "1 2" "2 1"; do
    read -r P T <<<"$split"
    for side in before after; do
      b="$BEFORE"; [[ $side == after ]] && b="$AFTER"
      line=$("$b/coordinator/threadsplit" --data "$DATA" --model "$MODEL" --steps "$STEPS" --warmup-steps 20 \
               --procs "$P" --threads "$T" --eval-every 0 --progress off 2>&1 | grep '^timed after')
      ips=$(sed -E 's/.*\(([0-9.]+) img\/s\).*/\1/' <<<"$line")
      figures["$side ${P}x${T}"]+="$ips "
    done
  done
done
median() { tr ' ' '\n' | sed '/^$/d' | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
for split in 1x2 2x1; do
  mb=$(median <<<"${figures[before $split]}")
  ma=$(median <<<"${figures[after $split]}")
  echo "  $split: before ${figures[before $split]}-> median $mb img/s; after ${figures[after $split]}-> median $ma img/s; after/before $(awk -v a="$ma" -v b="$mb" 'BEGIN{printf "%.3f", a/b}')"
done
rm -rf "$WORK"
exit $status
