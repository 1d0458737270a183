#!/usr/bin/env bash
# ctest onnx_fixtures_match_their_script: the committed tests/data/onnx files are exactly what
# scripts/onnx_fixtures.py writes with Debian's PyTorch 1.13 (about 3 s). Skipped (77) where
# /usr/bin/python3 has no torch or onnx (python3-torch, python3-onnx).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if ! /usr/bin/python3 -c 'import torch, onnx, numpy' >/dev/null 2>&1; then
  echo "SKIPPED: /usr/bin/python3 cannot import torch, onnx and numpy (apt-get install python3-torch python3-onnx)"
  exit 77
fi
exec /usr/bin/python3 "$ROOT/scripts/onnx_fixtures.py" --verify "$ROOT/tests/data/onnx"
