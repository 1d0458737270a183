#!/usr/bin/env bash
# Prints the CIFAR-10 directory to use: DIR when given, else $CIFAR10_DIR,
# ./data/cifar-10-batches-bin, ../shared/data/cifar-10-batches-bin. When none holds the data
# set, --download first tries scripts/get_cifar10.sh; failing that, a generated CIFAR-shaped
# set is written to ./data/synthetic-cifar10 (with BIN's make-synthetic-data) and a loud
# warning says so. Used by train.sh and sweep.sh.
#   scripts/find_cifar10.sh BIN [--download] [DIR]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$1"
shift
download=0
if [[ "${1:-}" == --download ]]; then download=1; shift; fi
given="${1:-}"

has_cifar() { [[ -f "$1/data_batch_1.bin" && -f "$1/test_batch.bin" ]]; }
if [[ -n "$given" ]]; then echo "$given"; exit 0; fi
for candidate in "${CIFAR10_DIR:-}" "$ROOT/data/cifar-10-batches-bin" \
                 "$ROOT/../shared/data/cifar-10-batches-bin"; do
  if [[ -n "$candidate" ]] && has_cifar "$candidate"; then echo "$candidate"; exit 0; fi
done
if ((download)); then
  echo "find_cifar10: CIFAR-10 not found; trying scripts/get_cifar10.sh" >&2
  if "$ROOT/scripts/get_cifar10.sh" "$ROOT/data" >&2 && has_cifar "$ROOT/data/cifar-10-batches-bin"; then
    echo "$ROOT/data/cifar-10-batches-bin"
    exit 0
  fi
fi
data="$ROOT/data/synthetic-cifar10"
has_cifar "$data" || "$bin" make-synthetic-data "$data" >&2
cat >&2 <<WARN
================================================================================
NO CIFAR-10 AVAILABLE: using SYNTHETIC data in $data.
Speeds and thread-split comparisons are real; ACCURACY MEANS NOTHING on this data.
================================================================================
WARN
echo "$data"
