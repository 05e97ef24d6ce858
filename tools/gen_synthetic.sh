#!/usr/bin/env bash
# gen_synthetic.sh — the synthetic Gemma 4 31B and 26B-A4B GGUF files (real shapes, types and
# metadata; sparse zero weights: ~35 GB apparent, a few MB on disk) that the planner tests and the
# big-model benchmarks use, in $LUMEN_CACHE/synthetic (default ~/.cache/lumen/synthetic). Installs
# the gguf package into the venv of tools/setup.sh when missing. Prints the directory. Idempotent.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LUMEN_CACHE=${LUMEN_CACHE:-$HOME/.cache/lumen}
DIR="$LUMEN_CACHE/synthetic"
PY="$LUMEN_CACHE/venv/bin/python"
if [ ! -x "$PY" ]; then
  echo "gen_synthetic: no venv in $LUMEN_CACHE/venv; run tools/setup.sh first" >&2
  exit 1
fi
mkdir -p "$DIR"
for m in gemma4-31b gemma4-26b-a4b; do
  [ -s "$DIR/$m.gguf" ] && continue
  "$PY" -c "import gguf, numpy" 2>/dev/null || "$LUMEN_CACHE/venv/bin/pip" install -q gguf numpy >&2
  "$PY" "$ROOT/tools/gen_synthetic.py" --model "$m" "$DIR/$m.gguf.tmp" >/dev/null 2>&1
  mv "$DIR/$m.gguf.tmp" "$DIR/$m.gguf"
done
echo "$DIR"
