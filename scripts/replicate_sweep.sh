#!/usr/bin/env bash
# Does the sweep's answer replicate? Runs the same sweep twice, one after the other, into
# OUT/first and OUT/second (scripts/sweep.sh: builds, finds CIFAR-10, plots), then compares
# their verdicts (scripts/compare_sweeps.py): every split the first calls faster for real must
# be the second's best and real again. Writes OUT/replication.txt and OUT/replication.json.
#   scripts/replicate_sweep.sh [--out DIR] [sweep flags, e.g. --models seed_cnn --batch-modes global]
# Exit status: compare_sweeps.py's (0 when every real verdict held, 1 when one did not).
set -euo pipefail
if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
  sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"
  exit 0
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="replication-results"
args=()
while (($#)); do
  case "$1" in
    --out) [[ $# -ge 2 ]] || { echo "replicate_sweep.sh: --out needs a directory" >&2; exit 2; }
           out="$2"; shift 2 ;;
    --out=*) out="${1#--out=}"; shift ;;
    *) args+=("$1"); shift ;;
  esac
done
mkdir -p "$out"
for which in first second; do
  echo "replicate_sweep: the $which sweep into $out/$which" >&2
  "$ROOT/scripts/sweep.sh" --out "$out/$which" ${args[@]+"${args[@]}"} | tee "$out/$which.log"
done
set +e
python3 "$ROOT/scripts/compare_sweeps.py" "$out/first/sweep.json" "$out/second/sweep.json" \
  --json "$out/replication.json" | tee "$out/replication.txt"
exit "${PIPESTATUS[0]}"
