#!/usr/bin/env bash
# airbench94's accuracy and wall time over several seeds: each run is the README's main
# command with the model's recipe (scripts/train.sh --model airbench94, every default), timed
# whole (whitening, training, per-epoch test lines, the final test round with TTA), its report
# kept. Appends one CSV row per run and prints the mean accuracy:
#   scripts/airbench_runs.sh [--precision f32|bf16] [--seeds "1 2 3"] [--out FILE.csv]
#                            [--reports DIR] [-- more threadsplit flags]
# Long: one f32 run takes about 20 minutes on 2 cores. Run it in the background.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
precision=f32
seeds="1 2 3"
out="$ROOT/docs/airbench94-runs.csv"
reports="${TMPDIR:-/tmp}/airbench-reports"
extra=()
while (($#)); do
  case "$1" in
    --precision) precision="$2"; shift 2 ;;
    --seeds) seeds="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --reports) reports="$2"; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "airbench_runs.sh: unknown argument '$1' (see the comment at the top)" >&2; exit 2 ;;
  esac
done
mkdir -p "$reports"
[[ -f "$out" ]] || echo "date,commit,precision,seed,split,test_accuracy_tta,test_accuracy_last_epoch,wall_s,train_s,images_per_s,command" > "$out"
commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
accs=()
for seed in $seeds; do
  report="$reports/airbench94-$precision-seed$seed.json"
  cmd=(scripts/train.sh --model airbench94 --precision "$precision" --seed "$seed" --progress off
       --report "$report" ${extra[@]+"${extra[@]}"})
  echo "airbench_runs: ${cmd[*]}" >&2
  start=$(date +%s.%N)
  (cd "$ROOT" && "${cmd[@]}")
  end=$(date +%s.%N)
  row="$(python3 - "$report" "$start" "$end" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
wall = float(sys.argv[3]) - float(sys.argv[2])
cfg = r.get("config", {})
test = r.get("test", {})
epochs = r.get("epochs", [])
last = epochs[-1].get("validation", {}) if epochs else {}
tot = r.get("totals", {})
split = "%sx%s" % (cfg.get("procs"), cfg.get("threads"))
print("%s,%.4f,%.4f,%.1f,%.1f,%.0f" % (split, test.get("accuracy", float("nan")),
      last.get("accuracy", float("nan")), wall, tot.get("train_seconds", float("nan")),
      tot.get("images_per_s", float("nan"))))
PY
)"
  acc="$(echo "$row" | cut -d, -f2)"
  accs+=("$acc")
  echo "$(date -u +%FT%TZ),$commit,$precision,$seed,$row,\"${cmd[*]}\"" >> "$out"
  echo "airbench_runs: seed $seed: test accuracy (TTA) $acc, $(echo "$row" | cut -d, -f4) s" >&2
done
python3 -c "import sys; a=[float(x) for x in sys.argv[1:]]; print('airbench_runs: %s mean test accuracy over %d seeds: %.4f' % ('$precision', len(a), sum(a)/len(a)))" "${accs[@]}"
