#!/usr/bin/env bash
# The README's main command: installs what is missing, builds (Release, every core) into
# ./build, finds CIFAR-10, and trains with the remaining arguments passed to `threadsplit`:
#   scripts/train.sh --procs 2 --threads 1 --epochs 3 --report run.json
# The data set: --data DIR, else $CIFAR10_DIR, else ./data/cifar-10-batches-bin, else
# ../shared/data/cifar-10-batches-bin; when none has it, scripts/get_cifar10.sh downloads it,
# and where that fails a synthetic stand-in is generated (timings valid, accuracies not).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export BUILD_DIR="${BUILD_DIR:-$ROOT/build}"

"$ROOT/scripts/setup.sh"
BIN="$BUILD_DIR/coordinator/threadsplit"
[[ -x "$BIN" ]] || { echo "train.sh: $BIN was not built (see $BUILD_DIR/build.log)" >&2; exit 1; }

# --data / --data=DIR among the arguments wins; everything else goes through untouched.
data=""
args=()
while (($#)); do
  case "$1" in
    --data) [[ $# -ge 2 ]] || { echo "train.sh: --data needs a directory" >&2; exit 2; }
            data="$2"; shift 2 ;;
    --data=*) data="${1#--data=}"; shift ;;
    *) args+=("$1"); shift ;;
  esac
done

data="$("$ROOT/scripts/find_cifar10.sh" "$BIN" --download "$data")"

exec "$BIN" --data "$data" ${args[@]+"${args[@]}"}
