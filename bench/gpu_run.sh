#!/usr/bin/env bash
# gpu_run.sh — everything to check and measure on a machine with an NVIDIA GPU, in one go:
# build with CUDA for this GPU's architecture, the CUDA test suite on the device (ctest -L cuda),
# compute-sanitizer memcheck and racecheck over the device conformance suite, and the kernel
# benchmark (bench_ops: device time per op, GB/s and % of the measured copy bandwidth) at
# Gemma 3 270M and Gemma 4 31B shapes, matmuls beside cuBLAS FP16 at the same shapes (and the
# batched matmuls and prefill attention again with LUMEN_CUDA_TC=0). Logs and tables go to $OUT (default build-gpu/results).
#   bench/gpu_run.sh [--no-sanitizer]
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$ROOT/build-gpu/results}
mkdir -p "$OUT"
export PATH=/usr/local/cuda/bin:$PATH
ARCH=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d .)
{
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv,noheader
  nvcc --version | tail -2
} | tee "$OUT/device.txt"
cmake -S "$ROOT" -B "$ROOT/build-gpu" -DCMAKE_BUILD_TYPE=Release -DLUMEN_CUDA=ON -DLUMEN_CUDA_EMU=ON \
  -DCMAKE_CUDA_ARCHITECTURES="$ARCH" >"$OUT/cmake.log" 2>&1 && cmake --build "$ROOT/build-gpu" -j"$(nproc)" >"$OUT/build.log" 2>&1 ||
  { tail -30 "$OUT/build.log"; exit 1; }
cat "$ROOT"/build-gpu/CMakeFiles/lumen_engine.dir/cuda/*.ptxas.txt > "$OUT/ptxas.txt" 2>/dev/null
(cd "$ROOT/build-gpu" && ctest -L cuda --output-on-failure) 2>&1 | tee "$OUT/ctest-cuda.log" | tail -15
if [ "${1:-}" != "--no-sanitizer" ] && command -v compute-sanitizer >/dev/null; then
  for tool in memcheck racecheck; do
    compute-sanitizer --tool $tool --error-exitcode 1 "$ROOT/build-gpu/tests/test_cuda" --jobs 1 --filter 'cuda/conformance_gpu' \
      >"$OUT/sanitizer-$tool.log" 2>&1
    echo "compute-sanitizer $tool: exit $? ($(grep -c 'ERROR SUMMARY: 0' "$OUT/sanitizer-$tool.log") clean summaries)"
  done
fi
"$ROOT/build-gpu/bench/bench_ops" --backend cuda --reps 20 | tee "$OUT/bench_ops-cuda.md"
# the same batched / prefill matmuls without the tensor-core GEMM (dequantize + cuBLAS SGEMM)
LUMEN_CUDA_TC=0 "$ROOT/build-gpu/bench/bench_ops" --backend cuda --reps 20 --filter 'N=' | tee "$OUT/bench_ops-cuda-no-tc.md"
LUMEN_CUDA_TC=0 "$ROOT/build-gpu/bench/bench_ops" --backend cuda --reps 20 --filter 'pp512' | tee -a "$OUT/bench_ops-cuda-no-tc.md"
# prefill attention without the tensor-core flash attention (the f32 kernel of attention.cu)
LUMEN_CUDA_TC=0 "$ROOT/build-gpu/bench/bench_ops" --backend cuda --reps 5 --filter 'prefill' | tee -a "$OUT/bench_ops-cuda-no-tc.md"
