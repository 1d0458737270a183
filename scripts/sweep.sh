#!/usr/bin/env bash
# The split experiment: builds (scripts/setup.sh), finds CIFAR-10 as train.sh does, runs
# `threadsplit sweep` (every process x thread split of this machine's cores, both models, both
# batch modes, 3 interleaved repeats), then draws OUT/sweep.png from OUT/sweep.json.
#   scripts/sweep.sh                               # the default sweep into ./sweep-results
#   scripts/sweep.sh --out /tmp/s --repeats 5 --over --loader-threads 1,2
# Every other argument goes to `threadsplit sweep` (see `build/coordinator/threadsplit sweep --help`).
set -euo pipefail
if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
  sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"
  exit 0
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export BUILD_DIR="${BUILD_DIR:-$ROOT/build}"

"$ROOT/scripts/setup.sh"
BIN="$BUILD_DIR/coordinator/threadsplit"
[[ -x "$BIN" ]] || { echo "sweep.sh: $BIN was not built (see $BUILD_DIR/build.log)" >&2; exit 1; }

data=""
out="sweep-results"
args=()
while (($#)); do
  case "$1" in
    --data|--out) [[ $# -ge 2 ]] || { echo "sweep.sh: $1 needs a directory" >&2; exit 2; } ;;&
    --data) data="$2"; shift 2 ;;
    --data=*) data="${1#--data=}"; shift ;;
    --out) out="$2"; shift 2 ;;
    --out=*) out="${1#--out=}"; shift ;;
    *) args+=("$1"); shift ;;
  esac
done
# Speed does not depend on the pixels: where CIFAR-10 is absent, generated data times the same.
data="$("$ROOT/scripts/find_cifar10.sh" "$BIN" "$data")"

# The plot needs matplotlib: Debian's python3-matplotlib, installed when missing. Debian's
# interpreter is asked too, since a python3 earlier on PATH (pyenv, venv) may not see it.
plot_python() {
  local py
  for py in python3 /usr/bin/python3; do
    if command -v "$py" >/dev/null && "$py" -c "import matplotlib" 2>/dev/null; then echo "$py"; return; fi
  done
}
if [[ -z "$(plot_python)" ]]; then
  "$ROOT/scripts/apt_ensure.sh" sweep.sh python3-matplotlib ||
    echo "sweep.sh: could not install python3-matplotlib; no plot" >&2
fi

"$BIN" sweep --data "$data" --out "$out" ${args[@]+"${args[@]}"}
py="$(plot_python)"
if [[ -n "$py" ]]; then
  "$py" "$ROOT/scripts/plot_sweep.py" "$out/sweep.json" "$out/sweep.png"
else
  echo "sweep.sh: no matplotlib, so no $out/sweep.png (the CSV and JSON are complete)" >&2
fi
