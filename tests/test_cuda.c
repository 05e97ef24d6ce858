/*
 * test_cuda.c — the CUDA backend. Everything runs twice where it can: on "cuda-emu" (the same
 * kernel sources compiled for the host against cuda/emu: every CUDA thread a fiber, barriers and
 * warp collectives checked, shared memory bounds-checked and poisoned), always; and on "cuda" (a
 * real GPU) when the build has nvcc and the machine has a device — skipped otherwise, never
 * passed vacuously. Checks: the op-conformance table against the CPU reference; the HF golden
 * models end to end (chunked, interleaved sequences, and token-by-token decode, which replays
 * captured CUDA graphs); transfers through the pinned staging ring; errors.
 */
#define _GNU_SOURCE
#include "golden.h"
#include "op_harness.h"
#include "test_util.h"
#include "ops.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool have(const char *name) {
    const lm_backend_ops *ops = lm_backend_find(name);
    return ops && ops->device_count() > 0;
}

static void conformance(const char *name) {
    if (!have(name)) cr_skip("backend %s not built or no device", name);
    const int failures = lm_conformance_run(name, name, getenv("LUMEN_TEST_VERBOSE") != NULL);
    cr_expect_eq(failures, 0, "%d op cases failed on %s", failures, name);
}

Test(cuda, conformance_emulated, .timeout = 1800) { conformance("cuda-emu"); }
Test(cuda, conformance_gpu, .timeout = 1800) { conformance("cuda"); }

static void device_info(const char *name) {
    if (!have(name)) cr_skip("backend %s not built or no device", name);
    lm_backend *be;
    lm_backend_config cfg = {0, 0};
    cr_assert_eq(lm_backend_create(name, &cfg, &be), LM_STATUS_OK, "%s", lm_last_error());
    lm_device_info di;
    cr_assert_eq(be->ops->device_info(be, &di), LM_STATUS_OK, "%s", lm_last_error());
    fprintf(stderr, "%s device: %s, compute %d.%d, %.1f GiB (%.1f free), %.0f GB/s nominal\n", name, di.name, di.compute_major,
            di.compute_minor, (double)di.memory_total / (1u << 30), (double)di.memory_free / (1u << 30), di.bandwidth_gbs);
    cr_assert(di.memory_total > 0 && di.memory_free <= di.memory_total);
    cr_assert(!di.unified_memory);
    lm_backend_destroy(be);
}

Test(cuda, device_info_emulated) { device_info("cuda-emu"); }
Test(cuda, device_info_gpu) { device_info("cuda"); }

/* host -> device -> host through the staging ring: several chunks, odd size and offset */
static void transfers(const char *name) {
    if (!have(name)) cr_skip("backend %s not built or no device", name);
    const char *e = tu_transfer_round_trip(name, (40u << 20) / 4 + 3);
    cr_assert_null(e, "%s", e);
}

Test(cuda, transfers_emulated) { transfers("cuda-emu"); }
Test(cuda, transfers_gpu) { transfers("cuda"); }

/* an allocation larger than the device: a clear out-of-memory error */
static void oom(const char *name) {
    if (!have(name)) cr_skip("backend %s not built or no device", name);
    lm_backend *be;
    lm_backend_config cfg = {0, 0};
    cr_assert_eq(lm_backend_create(name, &cfg, &be), LM_STATUS_OK, "%s", lm_last_error());
    lm_buffer *b = NULL;
    cr_assert_eq(be->ops->buffer_alloc(be, (size_t)1 << 46, LM_BUF_WEIGHTS, &b), LM_STATUS_OUT_OF_MEMORY);
    cr_assert_null(b);
    cr_assert(strstr(lm_last_error(), "cannot allocate") != NULL, "%s", lm_last_error());
    /* the backend still works afterwards */
    cr_assert_eq(be->ops->buffer_alloc(be, 1024, LM_BUF_COMPUTE, &b), LM_STATUS_OK, "%s", lm_last_error());
    be->ops->buffer_free(b);
    lm_backend_destroy(be);
}

Test(cuda, out_of_memory_emulated) { oom("cuda-emu"); }
Test(cuda, out_of_memory_gpu) { oom("cuda"); }

/* HF golden fixtures end to end, within the foundation's tolerance */
static void golden_run(const char *backend, const char *name) {
    if (!have(backend)) cr_skip("backend %s not built or no device", backend);
    golden g;
    load_golden(name, &g);
    lm_model *m = load_model(name, backend);
    const double one = run_chunks(name, m, &g, 64);
    const double five = run_chunks(name, m, &g, 5);
    const double tok = run_chunks(name, m, &g, 1); /* decode steps: captured once, then graph replays */
    const double multi = run_interleaved(name, m, &g);
    fprintf(stderr, "%-13s on %s vs HF: one batch %.2e, 5-token chunks %.2e, token by token %.2e, interleaved %.2e\n", name,
            backend, one, five, tok, multi);
    lm_model_free(m);
    free(g.blob);
}

Test(cuda, gemma3_tiny_emulated, .timeout = 900) { golden_run("cuda-emu", "gemma3_tiny"); }
Test(cuda, gemma4_dense_emulated, .timeout = 900) { golden_run("cuda-emu", "gemma4_dense"); }
Test(cuda, gemma4_moe_emulated, .timeout = 900) { golden_run("cuda-emu", "gemma4_moe"); }
Test(cuda, gemma4_e_emulated, .timeout = 900) { golden_run("cuda-emu", "gemma4_e"); }
Test(cuda, llama_tiny_emulated, .timeout = 900) { golden_run("cuda-emu", "llama_tiny"); }
Test(cuda, qwen2_tiny_emulated, .timeout = 900) { golden_run("cuda-emu", "qwen2_tiny"); }
/* the same without CUDA graphs (every node launched eagerly) */
Test(cuda, gemma4_dense_emulated_no_graphs, .timeout = 900) {
    setenv("LUMEN_CUDA_GRAPHS", "0", 1);
    golden_run("cuda-emu", "gemma4_dense");
}
/* split execution: the CUDA device and the CPU backend in one forward pass (whole layers; and
   every layer on the device with the MoE experts on the CPU) */
static void split(const char *backend) {
    if (!have(backend)) cr_skip("backend %s not built or no device", backend);
    split_fixture(backend, "gemma3_tiny", 3, NULL);
    split_fixture(backend, "gemma4_dense", 2, NULL);
    split_fixture(backend, "gemma4_moe", -1, "_exps");
    split_fixture(backend, "qwen2_tiny", 2, NULL);
}
Test(cuda, split_execution_emulated, .timeout = 900) { split("cuda-emu"); }
Test(cuda, split_execution_gpu, .timeout = 900) { split("cuda"); }

/* the paged pool: the page tables change between decode steps while the captured step graph is
   replayed (they live in device buffers the graph reads). The other sequence operations are host
   code the CPU and Vulkan suites cover (seq_ops_check); on a real GPU they run too. */
Test(cuda, paged_kv_pool_emulated, .timeout = 900) {
    if (!have("cuda-emu")) cr_skip("backend cuda-emu not built");
    paged_pool_check("cuda-emu", -1);
}
Test(cuda, sequence_ops_gpu, .timeout = 900) {
    if (!have("cuda")) cr_skip("backend cuda not built or no device");
    seq_ops_check("cuda", -1);
    paged_pool_check("cuda", -1);
}

Test(cuda, gemma3_tiny_gpu, .timeout = 900) { golden_run("cuda", "gemma3_tiny"); }
Test(cuda, gemma4_dense_gpu, .timeout = 900) { golden_run("cuda", "gemma4_dense"); }
Test(cuda, gemma4_moe_gpu, .timeout = 900) { golden_run("cuda", "gemma4_moe"); }
Test(cuda, gemma4_e_gpu, .timeout = 900) { golden_run("cuda", "gemma4_e"); }
Test(cuda, llama_tiny_gpu, .timeout = 900) { golden_run("cuda", "llama_tiny"); }
Test(cuda, qwen2_tiny_gpu, .timeout = 900) { golden_run("cuda", "qwen2_tiny"); }

/* A decode-like step run several times with new inputs: the second run is captured as a CUDA
 * graph, later runs replay it — and must still compute with each step's new positions and data
 * (read from device memory), which the results prove against a host computation. */
typedef void (*graph_stats_fn)(lm_backend *, uint64_t *, uint64_t *);
#ifdef LUMEN_TEST_CUDA_EMU
void lm_cuda_emu_graph_stats(lm_backend *be, uint64_t *captured, uint64_t *replayed);
#endif
#ifdef LUMEN_TEST_CUDA
void lm_cuda_graph_stats(lm_backend *be, uint64_t *captured, uint64_t *replayed);
#endif

static void graph_replay(const char *name, graph_stats_fn stats) {
    if (!have(name)) cr_skip("backend %s not built or no device", name);
    lm_backend *be;
    lm_backend_config cfg = {0, 0};
    cr_assert_eq(lm_backend_create(name, &cfg, &be), LM_STATUS_OK, "%s", lm_last_error());
    enum { D = 64, NH = 3 };
    lm_buffer *in, *arena;
    cr_assert_eq(be->ops->buffer_alloc(be, 4096, LM_BUF_STEP, &in), LM_STATUS_OK);
    cr_assert_eq(be->ops->buffer_alloc(be, 1 << 16, LM_BUF_COMPUTE, &arena), LM_STATUS_OK);
    lm_tensor x, pos;
    const int64_t xne[3] = {D, NH, 1}, pne = 1;
    lm_tensor_init(&x, LM_F32, 3, xne);
    x.buf = in;
    lm_tensor_init(&pos, LM_I32, 1, &pne);
    pos.buf = in;
    pos.offs = 2048;
    lm_graph *g = calloc(1, sizeof *g);
    const lm_rope_params rp = {D / 2, D, LM_ROPE_NEOX, 10000.0f, 1.0f};
    for (int step = 0; step < 5; step++) {
        float hx[D * NH], out[D * NH];
        for (int i = 0; i < D * NH; i++) hx[i] = sinf(0.37f * (float)(i + 1) + (float)step);
        const int32_t p = 7 + 100 * step;
        cr_assert_eq(be->ops->tensor_set(be, &x, hx, 0, sizeof hx), LM_STATUS_OK);
        cr_assert_eq(be->ops->tensor_set(be, &pos, &p, 0, 4), LM_STATUS_OK);
        cr_assert_eq(be->ops->begin(be), LM_STATUS_OK, "%s", lm_last_error());
        lm_graph_init(g, be, arena, false);
        lm_tensor *y = lm_rms_norm(g, &x, NULL, NULL, 1e-6f);
        lm_tensor *r = lm_rope(g, y, &pos, NULL, &rp);
        cr_assert_eq(lm_graph_status(g), LM_STATUS_OK, "%s", g->errmsg);
        cr_assert_eq(be->ops->submit(be), LM_STATUS_OK, "%s", lm_last_error());
        cr_assert_eq(be->ops->sync(be), LM_STATUS_OK, "%s", lm_last_error());
        cr_assert_eq(be->ops->tensor_get(be, r, out, 0, sizeof out), LM_STATUS_OK);
        for (int h = 0; h < NH; h++) {
            double ss = 0;
            for (int i = 0; i < D; i++) ss += (double)hx[h * D + i] * hx[h * D + i];
            const double inv = 1.0 / sqrt(ss / D + 1e-6);
            for (int i = 0; i < D / 2; i++) {
                const double a = p * pow(10000.0, -2.0 * i / D), x0 = hx[h * D + i] * inv, x1 = hx[h * D + i + D / 2] * inv;
                const double e0 = x0 * cos(a) - x1 * sin(a), e1 = x1 * cos(a) + x0 * sin(a);
                cr_assert(fabs(out[h * D + i] - e0) < 1e-4 && fabs(out[h * D + i + D / 2] - e1) < 1e-4,
                          "step %d head %d pair %d: got (%g, %g), expected (%g, %g)", step, h, i, out[h * D + i],
                          out[h * D + i + D / 2], e0, e1);
            }
        }
    }
    uint64_t cap = 0, rep = 0;
    stats(be, &cap, &rep);
    fprintf(stderr, "%s: 5 identical steps -> %llu graph captured, %llu replays\n", name, (unsigned long long)cap,
            (unsigned long long)rep);
    cr_expect_eq(cap, 1, "the repeated step should be captured once");
    cr_expect_eq(rep, 3, "and replayed on the remaining steps");
    free(g);
    be->ops->buffer_free(in);
    be->ops->buffer_free(arena);
    lm_backend_destroy(be);
}

#ifdef LUMEN_TEST_CUDA_EMU
Test(cuda, graph_replay_emulated) { graph_replay("cuda-emu", lm_cuda_emu_graph_stats); }
#endif
#ifdef LUMEN_TEST_CUDA
Test(cuda, graph_replay_gpu) { graph_replay("cuda", lm_cuda_graph_stats); }
#endif

/* Weights of types with unaligned blocks are repacked at upload (cuda/repack.cuh): reading them
 * back gives the file's bytes again, and a partial overwrite is refused rather than mixing
 * layouts. */
static void repacked_round_trip(const char *name) {
    if (!have(name)) cr_skip("backend %s not built or no device", name);
    lm_backend *be;
    lm_backend_config cfg = {0, 0};
    cr_assert_eq(lm_backend_create(name, &cfg, &be), LM_STATUS_OK, "%s", lm_last_error());
    const lm_dtype types[] = {LM_Q4_0, LM_Q8_0, LM_Q6_K};
    for (int k = 0; k < 3; k++) {
        lm_tensor t;
        const int64_t ne[2] = {512, 7};
        lm_tensor_init(&t, types[k], 2, ne);
        const size_t n = lm_tensor_nbytes(&t);
        lm_buffer *b;
        cr_assert_eq(be->ops->buffer_alloc(be, n + 256, LM_BUF_WEIGHTS, &b), LM_STATUS_OK);
        t.buf = b;
        t.offs = 256;
        uint8_t *x = malloc(n), *y = malloc(n);
        for (size_t i = 0; i < n; i++) x[i] = (uint8_t)(i * 131u + 7u + (i >> 9));
        cr_assert_eq(be->ops->tensor_set(be, &t, x, 0, n), LM_STATUS_OK, "%s", lm_last_error());
        cr_assert_eq(be->ops->tensor_get(be, &t, y, 0, n), LM_STATUS_OK, "%s", lm_last_error());
        cr_assert_arr_eq(x, y, n, "%s: repacked bytes do not read back", lm_dtype_name(types[k]));
        cr_assert_eq(be->ops->tensor_set(be, &t, x, 34, 100), LM_STATUS_UNSUPPORTED);
        cr_assert_eq(be->ops->tensor_get(be, &t, y, 0, 100), LM_STATUS_UNSUPPORTED);
        free(x);
        free(y);
        be->ops->buffer_free(b);
    }
    lm_backend_destroy(be);
}

Test(cuda, repacked_weights_emulated) { repacked_round_trip("cuda-emu"); }
Test(cuda, repacked_weights_gpu) { repacked_round_trip("cuda"); }

/* the same conformance table with repacking and the wide kernels off (the chunk kernels only) */
Test(cuda, conformance_emulated_no_repack, .timeout = 1800) {
    setenv("LUMEN_CUDA_REPACK", "0", 1);
    conformance("cuda-emu");
}

/* Gemma 3 270M Q4_K_M (Q4_K / Q6_K / Q8_0 weights as users have them, repacked on upload) against
 * the CPU backend: teacher-forced logits and greedy tokens in argmax mode (decode steps replay a
 * graph). The emulated run is short: every CUDA thread is a host fiber. */
static void real_model(const char *name, int32_t n, int32_t steps) {
    if (!have(name)) cr_skip("backend %s not built or no device", name);
    if (!tu_real_model_path()) cr_skip("Gemma 3 270M not installed (run tools/fetch_model.sh)");
    real_model_vs_cpu(name, n, steps);
}
Test(cuda, real_model_matches_cpu_emulated, .timeout = 1500) { real_model("cuda-emu", 16, 4); }
Test(cuda, real_model_matches_cpu_gpu, .timeout = 900) { real_model("cuda", 64, 8); }

/* cp.async -> ldmatrix (plain and .trans) -> mma.m16n8k16 (f16, bf16) against a host product:
 * the fragment layouts under the emulator, the PTX on a GPU */
#ifdef LUMEN_TEST_CUDA_EMU
double lm_cuda_emu_mma_selftest(lm_backend *be, int bf16);
#endif
#ifdef LUMEN_TEST_CUDA
double lm_cuda_mma_selftest(lm_backend *be, int bf16);
#endif
static void mma_selftest(const char *name, double (*fn)(lm_backend *, int)) {
    if (!have(name)) cr_skip("backend %s not built or no device", name);
    lm_backend *be;
    lm_backend_config cfg = {0, 0};
    cr_assert_eq(lm_backend_create(name, &cfg, &be), LM_STATUS_OK, "%s", lm_last_error());
    for (int bf = 0; bf < 2; bf++) {
        const double err = fn(be, bf);
        fprintf(stderr, "%s: mma.m16n8k16 %s via cp.async + ldmatrix: max error %.2e of max |AB|\n", name, bf ? "bf16" : "f16", err);
        cr_expect(err >= 0 && err < 1e-5, "%s mma self-test: error %g (%s)", bf ? "bf16" : "f16", err, lm_last_error());
    }
    lm_backend_destroy(be);
}
#ifdef LUMEN_TEST_CUDA_EMU
Test(cuda, mma_fragments_emulated) { mma_selftest("cuda-emu", lm_cuda_emu_mma_selftest); }
#endif
#ifdef LUMEN_TEST_CUDA
Test(cuda, mma_fragments_gpu) { mma_selftest("cuda", lm_cuda_mma_selftest); }
#endif

/* lumen's formats through a whole model: the golden Gemma 4 fixture converted by lm_model_quantize
 * (repacked on upload) gives the CPU backend's logits */
static void formats(const char *name) {
    if (!have(name)) cr_skip("backend %s not built or no device", name);
    cr_expect_leq(golden_quantized_vs_cpu("gemma4_dense", "i4_g128", name), 1e-4);
    cr_expect_leq(golden_quantized_vs_cpu("gemma4_dense", "f8_e4m3", name), 1e-4);
}
Test(cuda, lumen_formats_emulated, .timeout = 900) { formats("cuda-emu"); }
Test(cuda, lumen_formats_gpu, .timeout = 900) { formats("cuda"); }

/* 8-bit KV caches through a whole model (K=V layers, a wrapping sliding ring, prefill, token by
 * token with graph replays): the same logits as the CPU backend with the same KV type */
static void quantized_kv(const char *name) {
    if (!have(name)) cr_skip("backend %s not built or no device", name);
    for (lm_kv_type kv = LM_KV_Q8_0; kv <= LM_KV_FP8; kv++) {
        cr_expect_leq(golden_kv_vs_cpu("gemma4_dense", kv, name, 64), 1e-4, "%s", lm_kv_type_name(kv));
        cr_expect_leq(golden_kv_vs_cpu("gemma4_dense", kv, name, 1), 1e-4, "%s", lm_kv_type_name(kv));
    }
}
Test(cuda, quantized_kv_cache_emulated, .timeout = 900) { quantized_kv("cuda-emu"); }
Test(cuda, quantized_kv_cache_gpu, .timeout = 900) { quantized_kv("cuda"); }
