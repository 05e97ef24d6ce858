#!/usr/bin/env bash
# demo.sh — the one-command demo: install what is missing, build, fetch the default model
# (Gemma 3 270M Q4_K_M) and stream a generation with prefill / decode tokens per second.
#   tools/demo.sh ["prompt"] [extra lumen run options...]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
bash "$ROOT/tools/setup.sh"
MODEL=$(bash "$ROOT/tools/fetch_model.sh")
cmake -S "$ROOT" -B "$ROOT/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$ROOT/build" -j"$(nproc)" --target lumen >/dev/null
# The default model is the pretrained (not instruction-tuned) Gemma 3 270M: it continues text.
PROMPT=${1:-"The sky is blue because"}
shift || true
exec "$ROOT/build/lumen" run -m "$MODEL" -p "$PROMPT" -n 200 "$@"
