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
    /* the batch sweep (decode = 1 and pp512 = 512 are the ends) */
    {"g4-31b ffn_up (q4_K) N=2", LM_OP_MATMUL, LM_Q4_K, {5376, 21504, 2, 0}, {0}, {0}, 0},
    {"g4-31b ffn_up (q4_K) N=4", LM_OP_MATMUL, LM_Q4_K, {5376, 21504, 4, 0}, {0}, {0}, 0},
    {"g4-31b ffn_up (q4_K) N=8", LM_OP_MATMUL, LM_Q4_K, {5376, 21504, 8, 0}, {0}, {0}, 0},
    {"g4-31b ffn_up (q4_K) N=16", LM_OP_MATMUL, LM_Q4_K, {5376, 21504, 16, 0}, {0}, {0}, 0},
    {"g4-31b ffn_up (q4_K) N=32", LM_OP_MATMUL, LM_Q4_K, {5376, 21504, 32, 0}, {0}, {0}, 0},
    {"g4-31b ffn_up (q4_K) N=64", LM_OP_MATMUL, LM_Q4_K, {5376, 21504, 64, 0}, {0}, {0}, 0},
    {"g4-31b ffn_up (q4_K) N=128", LM_OP_MATMUL, LM_Q4_K, {5376, 21504, 128, 0}, {0}, {0}, 0},
    {"g4-31b ffn_up (q4_K) N=256", LM_OP_MATMUL, LM_Q4_K, {5376, 21504, 256, 0}, {0}, {0}, 0},
    {"g4-31b ffn_up (i4_g128) N=16", LM_OP_MATMUL, LM_I4_G128, {5376, 21504, 16, 0}, {0}, {0}, 0},
    {"g4-31b ffn_up (i4_g128) N=128", LM_OP_MATMUL, LM_I4_G128, {5376, 21504, 128, 0}, {0}, {0}, 0},
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
    /* prefill attention (CUDA: the tensor-core flash attention): causal over the whole prompt
       for global layers; a 512-token chunk against the sliding layers' ring (window 1024) */
    {"g4-31b global attention K=V prefill 512", LM_OP_ATTENTION, LM_F16, {512, 512, 32, 4, 512, 512}, {1, 0, 0, 1, 511}, {1.0f, 0}, 0},
    {"g4-31b global attention K=V prefill 4k", LM_OP_ATTENTION, LM_F16, {512, 512, 32, 4, 4096, 4096}, {1, 0, 0, 1, 4095}, {1.0f, 0}, 0},
    {"g4-31b global attention K=V prefill 4k q8_0 KV", LM_OP_ATTENTION, LM_Q8_0, {512, 512, 32, 4, 4096, 4096}, {1, 0, 0, 1, 4095}, {1.0f, 0}, 0},
    {"g4-31b sliding attention prefill 512 @3k", LM_OP_ATTENTION, LM_F16, {256, 256, 32, 16, 512, 1536}, {1, 1, 1024, 0, 3000}, {1.0f, 0}, 0},
    {"g4-31b sliding attention prefill 4k", LM_OP_ATTENTION, LM_F16, {256, 256, 32, 16, 4096, 4096}, {1, 0, 1024, 0, 4095}, {1.0f, 0}, 0},
};

/* the CUDA backends' measured copy bandwidth, and cuBLAS FP16 GEMM TFLOP/s (weak: absent from
   builds without CUDA) */
double lm_cuda_copy_gbs(lm_backend *be) __attribute__((weak));
double lm_cuda_emu_copy_gbs(lm_backend *be) __attribute__((weak));
double lm_cuda_hgemm_tflops(lm_backend *be, int m, int n, int k, int reps) __attribute__((weak));

/* flops of a case from its shape (attention: every cell, an upper bound), to leave out of a run
   on a slow backend the cases that would take minutes */
static double shape_flops(const lm_op_case *c) {
    if (c->op == LM_OP_MATMUL) return 2.0 * (double)c->s[0] * (double)c->s[1] * (double)c->s[2];
    if (c->op == LM_OP_ATTENTION) return 2.0 * (double)(c->s[0] + c->s[1]) * (double)c->s[2] * (double)c->s[4] * (double)c->s[5];
    return 0;
}

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
    /* on CUDA, matmuls are also compared with cuBLAS FP16 (f16 operands, f32 accumulation) at
       the same M x N x K, measured in this run */
    const bool ref16 = !strcmp(backend, "cuda") && lm_cuda_hgemm_tflops;
    const bool slow = strcmp(backend, "cuda") != 0;
    if (ref16) {
        const double peak = lm_cuda_hgemm_tflops(be, 8192, 8192, 8192, 5);
        printf("cuBLAS FP16 GEMM 8192^3 (f32 accumulate): %.1f TFLOP/s (the tensor-core reference for attention rows)\n", peak);
        printf("speed-up = cuBLAS FP16 GEMM time at the same M x N x K (measured here) / this op's time\n\n");
    }
    printf("| case | shape | time (us) | GB/s | %% of copy | GFLOP/s |%s\n|---|---|---:|---:|---:|---:|%s\n",
           ref16 ? " cuBLAS FP16 (us) | speed-up |" : "", ref16 ? "---:|---:|" : "");
    const int n_model = (int)(sizeof model_cases / sizeof model_cases[0]);
    const int total = n_model + (all ? LM_N_OP_CASES : 0);
    for (int i = 0; i < total; i++) {
        const lm_op_case *c = i < n_model ? &model_cases[i] : &lm_op_cases[i - n_model];
        char desc[160];
        lm_case_describe(c, desc, sizeof desc);
        if (filter && !strstr(desc, filter)) continue;
        if (slow && !filter && !all && shape_flops(c) > 2e11) {
            printf("| %s | (left out on %s: %.0f GFLOP; --filter runs it) | | | | |\n", c->name, backend, shape_flops(c) / 1e9);
            continue;
        }
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
        printf("| %s | %s | %.1f | %.2f | %s | %.2f |", c->name, sp ? sp : "", t * 1e6, r.bytes / t / 1e9, pct, r.flops / t / 1e9);
        if (ref16 && c->op == LM_OP_MATMUL) {
            const double tf = lm_cuda_hgemm_tflops(be, (int)c->s[1], (int)c->s[2], (int)c->s[0], 10);
            const double tr = tf > 0 ? 2.0 * c->s[0] * c->s[1] * c->s[2] / (tf * 1e12) : 0;
            if (tr > 0) printf(" %.1f | %.2fx |", tr * 1e6, tr / t);
            else printf(" - | - |");
        } else if (ref16) {
            printf(" | |");
        }
        printf("\n");
        fflush(stdout);
        lm_case_result_free(&r);
    }
    lm_backend_destroy(be);
    return 0;
}
