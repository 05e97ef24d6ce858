#!/usr/bin/env bash
# test.sh — build and run the whole test suite: install what is missing, fetch the real model,
# build (Release, CPU + Vulkan + CUDA backends) and run every CTest suite — Vulkan runs for real on
# Mesa's lavapipe when there is no GPU, under the Khronos validation layer; the CUDA kernels run
# through the CUDA emulator ("cuda-emu"), and with nvcc the real CUDA build for sm_80/86/89/90/120
# is compiled too (failing on register spills) and tested when a GPU is present — then rebuild with AddressSanitizer +
# UndefinedBehaviorSanitizer and run the suites again, then fuzz the GGUF parser and tokenizers briefly.
#   LUMEN_TEST_QUICK=1 skips the sanitizer pass and fuzzing.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
JOBS=${JOBS:-$(nproc)}
bash "$ROOT/tools/setup.sh"
export LUMEN_MODEL=$(bash "$ROOT/tools/fetch_model.sh")
export LUMEN_MODEL_SMOLLM2=$(bash "$ROOT/tools/fetch_model.sh" smollm2)
# synthetic Gemma 4 31B / 26B-A4B files (tensor tables of the real models, sparse) for the planner tests
export LUMEN_SYNTH_DIR=$(bash "$ROOT/tools/gen_synthetic.sh")
# a missing Vulkan device fails the Vulkan tests instead of skipping them (LUMEN_TEST_VULKAN=0 builds without)
VULKAN=${LUMEN_TEST_VULKAN:-1}
if [ "$VULKAN" = 1 ]; then export LUMEN_REQUIRE_VULKAN=1; VKFLAG=ON; else VKFLAG=OFF; fi

# CUDA: LUMEN_TEST_CUDA=0 builds without. The emulator needs only CUDA's headers (cuda_fp16.h ...);
# nvcc, when installed, adds the real backend.
CUDAFLAGS=""
if [ "${LUMEN_TEST_CUDA:-1}" = 1 ]; then
  CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
  if [ ! -f "$CUDA_HOME/include/cuda_fp16.h" ]; then
    echo "test.sh: CUDA headers not found in $CUDA_HOME/include (set CUDA_HOME, or LUMEN_TEST_CUDA=0)" >&2
    exit 1
  fi
  CUDAFLAGS="-DLUMEN_CUDA_EMU=ON"
  NVCC=$(command -v nvcc || true)
  [ -z "$NVCC" ] && [ -x "$CUDA_HOME/bin/nvcc" ] && NVCC="$CUDA_HOME/bin/nvcc"
  if [ -n "$NVCC" ]; then CUDAFLAGS="$CUDAFLAGS -DLUMEN_CUDA=ON -DCMAKE_CUDA_COMPILER=$NVCC"; else echo "test.sh: no nvcc: CUDA kernels run emulated only"; fi
fi

echo "== build (Release)"
cmake -S "$ROOT" -B "$ROOT/build" -DCMAKE_BUILD_TYPE=Release -DLUMEN_VULKAN=$VKFLAG $CUDAFLAGS >/dev/null
cmake --build "$ROOT/build" -j"$JOBS"
echo "== tests (Release)"
(cd "$ROOT/build" && ctest --output-on-failure -j"$JOBS")

if [ "${LUMEN_TEST_QUICK:-0}" = 1 ]; then exit 0; fi

echo "== build (ASan + UBSan)"
cmake -S "$ROOT" -B "$ROOT/build-asan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLUMEN_SANITIZE=ON -DLUMEN_BENCH=OFF -DLUMEN_VULKAN=$VKFLAG \
  $([ -n "$CUDAFLAGS" ] && echo -DLUMEN_CUDA_EMU=ON) >/dev/null
cmake --build "$ROOT/build-asan" -j"$JOBS"
echo "== tests (ASan + UBSan)"
(cd "$ROOT/build-asan" && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j"$JOBS")

echo "== fuzz (GGUF parser, ${LUMEN_FUZZ_SECONDS:-45} s)"
bash "$ROOT/tests/fuzz/run_fuzz.sh" "${LUMEN_FUZZ_SECONDS:-45}"
echo "== fuzz (tokenizers and chat templates, ${LUMEN_FUZZ_SECONDS:-45} s)"
bash "$ROOT/tests/fuzz/run_fuzz.sh" tokenizer "${LUMEN_FUZZ_SECONDS:-45}"
