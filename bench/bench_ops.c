/*
 * bench_ops.c — per-op kernel benchmark on any backend: each case of the shared table
 * (tests/op_cases.h) plus model-shaped cases (Gemma 3 270M and Gemma 4 31B decode / prefill
 * matmuls, attention at long context), best-of-N time, achieved GB/s and GFLOP/s. Prints a
 * Markdown table.
 *   bench_ops [--backend cpu] [--threads N] [--reps N] [--filter SUBSTRING] [--all]
 * Without --all only the model-shaped cases run (the small conformance shapes are too small to
 * time meaningfully).
 */
#define _GNU_SOURCE
#include "op_harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const lm_op_case model_cases[] = {
    /* Gemma 3 270M decode (N = 1) and prefill (N = 512); Q4_K_M file types */
    {"g3-270m attn_q (q5_0) decode", LM_OP_MATMUL, LM_Q5_0, {640, 1024, 1, 0}, {0}, {0}, 0},
    {"g3-270m ffn_gate (q5_0) decode", LM_OP_MATMUL, LM_Q5_0, {640, 2048, 1, 0}, {0}, {0}, 0},
    {"g3-270m ffn_down (q6_K) decode", LM_OP_MATMUL, LM_Q6_K, {2048, 640, 1, 0}, {0}, {0}, 0},
    {"g3-270m attn_out (q4_K) decode", LM_OP_MATMUL, LM_Q4_K, {1024, 640, 1, 0}, {0}, {0}, 0},
    {"g3-270m output (q8_0) decode", LM_OP_MATMUL, LM_Q8_0, {640, 262144, 1, 0}, {0}, {0}, 0},
    {"g3-270m ffn_gate (q5_0) pp512", LM_OP_MATMUL, LM_Q5_0, {640, 2048, 512, 0}, {0}, {0}, 0},
    {"g3-270m ffn_down (q6_K) pp512", LM_OP_MATMUL, LM_Q6_K, {2048, 640, 512, 0}, {0}, {0}, 0},
    {"g3-270m attention decode @512", LM_OP_ATTENTION, LM_F16, {256, 256, 4, 1, 1, 767}, {1, 1, 512, 0, 600}, {0.0625f, 0}, 0},
    /* Gemma 4 31B-shaped decode matmuls (one layer's worth) */
    {"g4-31b attn_q (q4_K) decode", LM_OP_MATMUL, LM_Q4_K, {5376, 8192, 1, 0}, {0}, {0}, 0},
    {"g4-31b ffn_up (q4_K) decode", LM_OP_MATMUL, LM_Q4_K, {5376, 21504, 1, 0}, {0}, {0}, 0},
    {"g4-31b ffn_down (q6_K) decode", LM_OP_MATMUL, LM_Q6_K, {21504, 5376, 1, 0}, {0}, {0}, 0},
    {"g4-31b attn_q (q8_0) decode", LM_OP_MATMUL, LM_Q8_0, {5376, 8192, 1, 0}, {0}, {0}, 0},
    /* batched decode / prefill: N = 16 and 64 (tensor-core GEMM on CUDA), 512; f16 weights for
       reference (cuBLAS SGEMM after dequantization) */
    {"g4-31b ffn_up (q4_K) N=16", LM_OP_MATMUL, LM_Q4_K, {5376, 21504, 16, 0}, {0}, {0}, 0},
    {"g4-31b ffn_up (q4_K) N=64", LM_OP_MATMUL, LM_Q4_K, {5376, 21504, 64, 0}, {0}, {0}, 0},
    {"g4-31b ffn_up (q4_K) pp512", LM_OP_MATMUL, LM_Q4_K, {5376, 21504, 512, 0}, {0}, {0}, 0},
    {"g4-31b ffn_up (i4_g128) pp512", LM_OP_MATMUL, LM_I4_G128, {5376, 21504, 512, 0}, {0}, {0}, 0},
    {"g4-31b ffn_up (f8_e4m3) pp512", LM_OP_MATMUL, LM_F8_E4M3, {5376, 21504, 512, 0}, {0}, {0}, 0},
    {"g4-31b ffn_up (f16) pp512", LM_OP_MATMUL, LM_F16, {5376, 21504, 512, 0}, {0}, {0}, 0},
    {"g4-31b global attention K=V @4k", LM_OP_ATTENTION, LM_F16, {512, 512, 32, 4, 1, 4096}, {1, 0, 0, 1, 4000}, {1.0f, 0}, 0},
    {"g4-31b sliding attention @1k", LM_OP_ATTENTION, LM_F16, {256, 256, 32, 16, 1, 1535}, {1, 1, 1024, 0, 3000}, {1.0f, 0}, 0},
    {"g4-31b sliding attention @1k q8_0 KV", LM_OP_ATTENTION, LM_Q8_0, {256, 256, 32, 16, 1, 1535}, {1, 1, 1024, 0, 3000}, {1.0f, 0}, 0},
    /* flash-decoding at 32k context, KV in f16 and 8-bit */
    {"g4-31b global attention K=V @32k", LM_OP_ATTENTION, LM_F16, {512, 512, 32, 4, 1, 32768}, {1, 0, 0, 1, 32700}, {1.0f, 0}, 0},
    {"g4-31b global attention K=V @32k q8_0 KV", LM_OP_ATTENTION, LM_Q8_0, {512, 512, 32, 4, 1, 32768}, {1, 0, 0, 1, 32700}, {1.0f, 0}, 0},
    {"g4-31b global attention K=V @32k fp8 KV", LM_OP_ATTENTION, LM_E4M3, {512, 512, 32, 4, 1, 32768}, {1, 0, 0, 1, 32700}, {1.0f, 0}, 0},
};

/* the CUDA backends' measured copy bandwidth (weak: absent from builds without CUDA) */
double lm_cuda_copy_gbs(lm_backend *be) __attribute__((weak));
double lm_cuda_emu_copy_gbs(lm_backend *be) __attribute__((weak));

int main(int argc, char **argv) {
    const char *backend = "cpu", *filter = NULL;
    int threads = 0, reps = 5;
    bool all = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--backend") && i + 1 < argc) backend = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--filter") && i + 1 < argc) filter = argv[++i];
        else if (!strcmp(argv[i], "--all")) all = true;
        else {
            fprintf(stderr, "usage: bench_ops [--backend NAME] [--threads N] [--reps N] [--filter S] [--all]\n");
            return 2;
        }
    }
    lm_backend *be;
    lm_backend_config cfg = {.device = 0, .n_threads = threads};
    if (lm_backend_create(backend, &cfg, &be)) {
        fprintf(stderr, "bench_ops: %s\n", lm_last_error());
        return 1;
    }
    lm_device_info di;
    be->ops->device_info(be, &di);
    /* the ceiling kernels are measured against: the device's own copy bandwidth */
    double ceiling = 0;
    if (!strcmp(backend, "cuda") && lm_cuda_copy_gbs) ceiling = lm_cuda_copy_gbs(be);
    if (!strcmp(backend, "cuda-emu") && lm_cuda_emu_copy_gbs) ceiling = lm_cuda_emu_copy_gbs(be);
    printf("device: %s\n", di.name);
    if (ceiling > 0) printf("measured device-to-device copy: %.1f GB/s (read + write)\n", ceiling);
    printf("\ntime = device time per op from the backend's profiler where it has one (else wall time per step)\n\n");
    printf("| case | shape | time (us) | GB/s | %% of copy | GFLOP/s |\n|---|---|---:|---:|---:|---:|\n");
    const int n_model = (int)(sizeof model_cases / sizeof model_cases[0]);
    const int total = n_model + (all ? LM_N_OP_CASES : 0);
    for (int i = 0; i < total; i++) {
        const lm_op_case *c = i < n_model ? &model_cases[i] : &lm_op_cases[i - n_model];
        char desc[160];
        lm_case_describe(c, desc, sizeof desc);
        if (filter && !strstr(desc, filter)) continue;
        lm_case_result r;
        if (be->ops->profile_enable) be->ops->profile_enable(be, true);
        if (lm_case_run(c, 1, be, reps, &r)) {
            fprintf(stderr, "%s: %s\n", desc, lm_last_error());
            continue;
        }
        double t = r.seconds;
        if (be->ops->profile_enable && be->prof.calls[c->op] > 0) {
            t = be->prof.seconds[c->op] / (double)be->prof.calls[c->op];
            be->ops->profile_enable(be, false);
        }
        const char *sp = strchr(desc, '[');
        char pct[32] = "-";
        if (ceiling > 0) snprintf(pct, sizeof pct, "%.0f %%", 100.0 * r.bytes / t / 1e9 / ceiling);
        printf("| %s | %s | %.1f | %.2f | %s | %.2f |\n", c->name, sp ? sp : "", t * 1e6, r.bytes / t / 1e9, pct, r.flops / t / 1e9);
        fflush(stdout);
        lm_case_result_free(&r);
    }
    lm_backend_destroy(be);
    return 0;
}
