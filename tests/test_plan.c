/*
 * test_plan.c — the memory planner on the tensor tables of the real Gemma 4 31B and 26B-A4B
 * (synthetic files from tools/gen_synthetic.sh: real metadata, shapes and Q4_K_M types, sparse
 * zero data), checked against the arithmetic of ../shared/docs/gemma4.md (sections 6.1, 6.2):
 * weight splits, KV bytes per layer kind, a sliding cache that does not grow with the context;
 * the automatic plans for 16 and 24 GiB cards at 8k and 32k (printed: the README's table comes
 * from here) are within budget and maximal; MoE experts leave the GPU before layers do and that
 * predicts faster; overrides; bad input. The compute estimate is checked against the arena the
 * engine measures for the fixtures and the real Gemma 3 270M.
 */
#include "kv.h"
#include "model.h"
#include "test_util.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GIB (1024.0 * 1024.0 * 1024.0)

static const char *synth(const char *name) {
    static char buf[4096];
    const char *dir = getenv("LUMEN_SYNTH_DIR");
    if (dir) snprintf(buf, sizeof buf, "%s/%s.gguf", dir, name);
    else snprintf(buf, sizeof buf, "%s/../synthetic/%s.gguf", LUMEN_MODEL_CACHE, name);
    return access(buf, R_OK) == 0 ? buf : NULL;
}

static lm_model *load_synth(const char *name) {
    const char *path = synth(name);
    if (!path) cr_skip("%s.gguf not generated (run tools/gen_synthetic.sh)", name);
    lm_model_params mp = lm_model_default_params();
    mp.vocab_only = true;
    lm_model *m = NULL;
    cr_assert_eq(lm_model_load(path, &mp, &m), LM_STATUS_OK, "%s", lm_last_error());
    return m;
}

static lm_plan_params params(uint64_t gib, uint32_t ctx, lm_kv_type kv) {
    lm_plan_params p = lm_plan_default_params();
    p.gpu_bytes = gib << 30;
    p.gpu_bandwidth_gbs = 1000;
    p.cpu_bandwidth_gbs = 60;
    p.context.n_ctx = ctx;
    p.context.kv_type = kv;
    return p;
}

static lm_plan_summary plan(lm_model *m, const lm_plan_params *p, lm_plan **keep) {
    lm_plan *pl = NULL;
    cr_assert_eq(lm_plan_create(m, p, &pl), LM_STATUS_OK, "%s", lm_last_error());
    lm_plan_summary s;
    cr_assert_eq(lm_plan_get_summary(pl, &s), LM_STATUS_OK);
    if (keep) *keep = pl;
    else lm_plan_free(pl);
    return s;
}

static void print_plan(const lm_plan *pl, const char *title) {
    size_t len = 0;
    lm_plan_format(pl, NULL, 0, &len);
    char *b = malloc(len + 1);
    cr_assert(b);
    lm_plan_format(pl, b, len + 1, &len);
    cr_assert_eq(strlen(b), len);
    printf("### %s\n\n%s\n", title, b);
    free(b);
}

/* gemma4.md 6.1: 31B tied embedding 1.077 GiB + layers 16.31 GiB; 26B: embedding 0.564 GiB,
   experts 14.09 GiB, non-expert layer weights 0.97 GiB (the doc rounds: 1 % tolerance) */
Test(plan, weight_splits_match_the_model_arithmetic) {
    lm_model *m = load_synth("gemma4-31b");
    lm_plan_params p = params(80, 8192, LM_KV_F16);
    p.cpu_tensors = "^token_embd";
    lm_plan_summary s = plan(m, &p, NULL);
    cr_expect_float_eq(s.weights[LM_PLACE_CPU] / GIB, 1.077, 0.01, "31B embedding %.4f GiB", s.weights[1] / GIB);
    cr_expect_float_eq(s.weights[LM_PLACE_GPU] / GIB, 16.31, 0.16, "31B layers %.4f GiB", s.weights[0] / GIB);
    cr_expect_eq(s.n_gpu_layers, 60);
    lm_model_free(m);

    m = load_synth("gemma4-26b-a4b");
    p.cpu_tensors = "_exps";
    s = plan(m, &p, NULL);
    cr_expect_float_eq(s.weights[LM_PLACE_CPU] / GIB, 14.09, 0.14, "26B experts %.4f GiB", s.weights[1] / GIB);
    cr_expect_float_eq(s.weights[LM_PLACE_GPU] / GIB, 0.564 + 0.97, 0.02, "26B non-expert %.4f GiB", s.weights[0] / GIB);
    cr_expect_eq(s.n_gpu_expert_layers, 0);
    cr_expect_eq(s.n_gpu_layers, 30);
    lm_model_free(m);
}

/* gemma4.md 6.2 per token and layer: 31B sliding 2 x 16 x 256 values, full (K=V stored once)
   4 x 512; 26B half the heads. Sliding layers hold pad(W - 1 + n_batch, 32) = 1536 cells
   (kv.h), full layers a pool of n_ctx cells in pages of 256; + 4 bytes of position per cell
   of each kind (the pool's null page too) and 4 per page-table entry (one per sequence for the
   ring, n_ctx / 256 for the pool). */
static double kv_expected(int n_sw, int kv_sw, int n_full, int kv_full, double ctx, lm_kv_type t) {
    const double per_val = t == LM_KV_Q8_0 ? 34.0 / 32.0 : t == LM_KV_FP8 ? 1.0 : t == LM_KV_F32 ? 4.0 : 2.0;
    const double sw_cell = 2.0 * kv_sw * 256 * per_val, full_cell = 1.0 * kv_full * 512 * per_val;
    /* at n_ctx <= 1536 the sliding layers hold the whole context: a pool like the full layers' */
    const double sw_pos = ctx > 1536 ? 1536.0 + 4.0 / 4 : 1536.0 + 256 + 1536.0 / 256;
    return n_sw * 1536.0 * sw_cell + n_full * ctx * full_cell + 4.0 * sw_pos + 4.0 * (ctx + 256 + ctx / 256);
}

Test(plan, kv_bytes_match_the_arithmetic_and_sliding_layers_stay_constant) {
    lm_model *m = load_synth("gemma4-31b");
    const lm_kv_type types[] = {LM_KV_F16, LM_KV_Q8_0, LM_KV_FP8};
    const uint32_t ctxs[] = {1024 + 512, 8192, 32768, 131072};
    for (size_t i = 0; i < 3; i++)
        for (size_t j = 0; j < 4; j++) {
            lm_plan_params p = params(1024, ctxs[j], types[i]);
            lm_plan_summary s = plan(m, &p, NULL);
            const double want = kv_expected(50, 16, 10, 4, ctxs[j], types[i]);
            cr_expect_eq((double)(s.kv[0] + s.kv[1]), want, "31B KV %s ctx %u: %.0f, arithmetic %.0f", lm_kv_type_name(types[i]),
                         ctxs[j], (double)(s.kv[0] + s.kv[1]), want);
        }
    /* the sliding part (the total less the full layers' n_ctx cells) does not depend on n_ctx */
    uint64_t sw[4];
    for (size_t j = 0; j < 4; j++) {
        lm_plan_params p = params(1024, ctxs[j], LM_KV_F16);
        lm_plan_summary s = plan(m, &p, NULL);
        sw[j] = (s.kv[0] + s.kv[1]) - 10ull * ctxs[j] * 4 * 512 * 2 - 4ull * ctxs[j] - 4ull * ctxs[j] / 256;
        if (ctxs[j] <= 1536) sw[j] -= 4 * (256 + 1536 / 256 - 1); /* the sliding pool's null page and table */
    }
    for (size_t j = 1; j < 4; j++) cr_expect_eq(sw[j], sw[0], "sliding KV at ctx %u: %llu vs %llu", ctxs[j], (unsigned long long)sw[j], (unsigned long long)sw[0]);
    printf("31B sliding-layer KV (f16): %.3f GiB at every context from 1.5k to 128k\n", sw[0] / GIB);
    lm_model_free(m);

    m = load_synth("gemma4-26b-a4b");
    lm_plan_params p = params(1024, 32768, LM_KV_F16);
    lm_plan_summary s = plan(m, &p, NULL);
    cr_expect_eq((double)(s.kv[0] + s.kv[1]), kv_expected(25, 8, 5, 2, 32768, LM_KV_F16));
    lm_model_free(m);
}

/* the automatic plans: within the budget, and maximal (one more layer would not fit) */
static void check_auto(lm_model *m, const char *name, uint64_t gib, uint32_t ctx, lm_kv_type kv) {
    lm_plan_params p = params(gib, ctx, kv);
    lm_plan *pl;
    lm_plan_summary s = plan(m, &p, &pl);
    char title[160];
    snprintf(title, sizeof title, "%s, %llu GiB card, ctx %u, KV %s", name, (unsigned long long)gib, ctx, lm_kv_type_name(kv));
    print_plan(pl, title);
    cr_expect(s.fits_gpu, "%s: does not fit", title);
    const uint64_t gpu = s.weights[0] + s.kv[0] + s.compute[0];
    cr_expect_leq(gpu + s.reserve, s.gpu_budget, "%s: %llu + reserve > budget", title, (unsigned long long)gpu);
    cr_expect(s.head_on_gpu, "%s: head on the CPU", title);
    if (s.n_gpu_layers < s.n_layer) {
        lm_plan_params q = p;
        q.gpu_layers = s.n_gpu_layers + 1;
        lm_plan_summary t = plan(m, &q, NULL);
        cr_expect(!t.fits_gpu, "%s: %d layers would fit too", title, q.gpu_layers);
        cr_expect_gt(s.tok_s_full, 0);
    }
    /* dense: a token reads every GPU weight at 1000 GB/s, so the speed is at most 1e12 / bytes */
    if (m->hp.n_expert == 0) cr_expect_leq(s.tok_s_empty, 1e12 / (double)s.weights[0], "%s", title);
    lm_plan_free(pl);
}

Test(plan, automatic_plans_for_16_and_24_gib_cards) {
    lm_model *m = load_synth("gemma4-31b");
    const uint32_t ctxs[] = {8192, 32768};
    for (int c = 0; c < 2; c++) {
        for (int k = 0; k < 2; k++) {
            const lm_kv_type kv = k ? LM_KV_Q8_0 : LM_KV_F16;
            check_auto(m, "Gemma 4 31B Q4_K_M", 16, ctxs[c], kv);
            check_auto(m, "Gemma 4 31B Q4_K_M", 24, ctxs[c], kv);
        }
        /* 24 GiB holds the whole 31B at 8k and 32k (gemma4.md 6.3), 16 GiB about 3/4 of it */
        lm_plan_params p = params(24, ctxs[c], LM_KV_F16);
        cr_expect_eq(plan(m, &p, NULL).n_gpu_layers, 60);
        p = params(16, ctxs[c], LM_KV_F16);
        const int n16 = plan(m, &p, NULL).n_gpu_layers;
        cr_expect(n16 >= 39 && n16 < 60, "31B on 16 GiB at %u: %d layers", ctxs[c], n16);
    }
    lm_model_free(m);

    m = load_synth("gemma4-26b-a4b");
    for (int c = 0; c < 2; c++) {
        check_auto(m, "Gemma 4 26B-A4B Q4_K_M", 16, ctxs[c], LM_KV_F16);
        check_auto(m, "Gemma 4 26B-A4B Q4_K_M", 24, ctxs[c], LM_KV_F16);
    }
    lm_model_free(m);
}

/* 26B-A4B on a small card: every layer's attention stays on the GPU and experts go to the CPU
   first (they are read 8 / 128 per token), which predicts faster than the best whole-layer split */
Test(plan, moe_experts_leave_the_gpu_before_layers) {
    lm_model *m = load_synth("gemma4-26b-a4b");
    lm_plan_params p = params(10, 8192, LM_KV_F16);
    lm_plan *pl;
    lm_plan_summary s = plan(m, &p, &pl);
    print_plan(pl, "Gemma 4 26B-A4B Q4_K_M, 10 GiB card, ctx 8192 (experts first)");
    cr_expect_eq(s.n_gpu_layers, 30);
    cr_expect(s.n_gpu_expert_layers > 0 && s.n_gpu_expert_layers < 30, "%d expert layers on the GPU", s.n_gpu_expert_layers);
    cr_expect_eq(lm_plan_tensor_place(pl, "blk.0.attn_q.weight"), LM_PLACE_GPU);
    cr_expect_eq(lm_plan_tensor_place(pl, "blk.0.ffn_down_exps.weight"), LM_PLACE_CPU);
    cr_expect_eq(lm_plan_tensor_place(pl, "blk.29.ffn_down_exps.weight"), LM_PLACE_GPU);
    lm_plan_free(pl);
    int best = 0;
    for (int n = 30; n >= 0 && !best; n--) {
        lm_plan_params q = p;
        q.gpu_layers = n;
        lm_plan_summary t = plan(m, &q, NULL);
        if (t.fits_gpu) {
            best = n;
            cr_expect_gt(s.tok_s_full, t.tok_s_full, "experts-first %.1f tok/s vs %d whole layers %.1f tok/s", s.tok_s_full, n,
                         t.tok_s_full);
            printf("26B-A4B on 10 GiB: experts first %.1f tok/s, best whole-layer split (%d layers) %.1f tok/s\n", s.tok_s_full,
                   n, t.tok_s_full);
        }
    }
    cr_expect_gt(best, 0);
    lm_model_free(m);
}

Test(plan, overrides) {
    lm_model *m = load_synth("gemma4-31b");
    lm_plan_params p = params(80, 8192, LM_KV_F16);
    p.gpu_layers = 10;
    lm_plan *pl;
    lm_plan_summary s = plan(m, &p, &pl);
    cr_expect_eq(s.n_gpu_layers, 10);
    cr_expect_eq(lm_plan_tensor_place(pl, "blk.50.attn_q.weight"), LM_PLACE_GPU);
    cr_expect_eq(lm_plan_tensor_place(pl, "blk.59.ffn_down.weight"), LM_PLACE_GPU);
    cr_expect_eq(lm_plan_tensor_place(pl, "blk.49.attn_q.weight"), LM_PLACE_CPU);
    cr_expect_eq(lm_plan_tensor_place(pl, "token_embd.weight"), LM_PLACE_GPU); /* tied: the output head */
    cr_expect_eq(lm_plan_tensor_place(pl, "no.such.tensor"), LM_PLACE_CPU);
    cr_expect_eq(s.crossings, 2);
    lm_plan_free(pl);
    p.gpu_layers = 0;
    s = plan(m, &p, NULL);
    cr_expect_eq(s.n_gpu_layers, 0);
    cr_expect_eq(s.weights[LM_PLACE_GPU], 0);
    cr_expect_eq(s.kv[LM_PLACE_GPU], 0);
    lm_model_free(m);
}

Test(plan, bad_input) {
    lm_model *m = load_synth("gemma4-26b-a4b");
    lm_plan *pl = NULL;
    lm_plan_params p = params(16, 8192, LM_KV_F16);
    p.cpu_tensors = "(";
    cr_expect_eq(lm_plan_create(m, &p, &pl), LM_STATUS_INVALID_ARGUMENT);
    cr_expect(strstr(lm_last_error(), "pattern"), "%s", lm_last_error());
    p = params(16, 8192, LM_KV_F16);
    p.gpu_layers = 31;
    cr_expect_eq(lm_plan_create(m, &p, &pl), LM_STATUS_INVALID_ARGUMENT);
    p = params(16, 1u << 25, LM_KV_F16);
    cr_expect_eq(lm_plan_create(m, &p, &pl), LM_STATUS_INVALID_ARGUMENT);
    p = params(16, 8192, LM_KV_F16);
    p.gpu_backend = "metal";
    cr_expect_eq(lm_plan_create(m, &p, &pl), LM_STATUS_INVALID_ARGUMENT);
    /* no memory given and no GPU to ask: a clear error (on a machine with a CUDA GPU it plans) */
    p.gpu_backend = "cuda";
    p.gpu_bytes = 0;
    const lm_status st = lm_plan_create(m, &p, &pl);
    if (st) cr_expect(strstr(lm_last_error(), "--vram"), "%s", lm_last_error());
    else lm_plan_free(pl);
    cr_expect_eq(lm_plan_create(NULL, &p, &pl), LM_STATUS_INVALID_ARGUMENT);
    cr_expect_null(pl);
    lm_model_free(m);
}

/* the planner's compute estimate (before loading) covers the arena the engine measures */
static void compute_covers(const char *path) {
    lm_model_params mp = lm_model_default_params();
    lm_model *m;
    cr_assert_eq(lm_model_load(path, &mp, &m), LM_STATUS_OK, "%s", lm_last_error());
    const uint32_t batches[] = {1, 64, 512};
    for (int i = 0; i < 3; i++) {
        lm_plan_params p = params(1, 2048, LM_KV_F16);
        p.context.n_batch = batches[i];
        p.context.n_outputs_max = batches[i] / 2 + 1;
        uint64_t kv, measured;
        cr_assert_eq(lm_model_estimate_memory(m, &p.context, &kv, &measured), LM_STATUS_OK);
        p.gpu_layers = m->hp.n_layer;
        lm_plan_summary s = plan(m, &p, NULL);
        cr_expect_geq(s.compute[0], measured, "%s batch %u: estimate %llu < measured %llu", path, batches[i],
                      (unsigned long long)s.compute[0], (unsigned long long)measured);
        cr_expect_leq(s.compute[0], 4 * measured + (64u << 20), "%s batch %u: estimate %llu >> measured %llu", path, batches[i],
                      (unsigned long long)s.compute[0], (unsigned long long)measured);
        cr_expect_eq(s.kv[0], kv, "%s: planned KV %llu, context KV %llu", path, (unsigned long long)s.kv[0], (unsigned long long)kv);
    }
    lm_model_free(m);
}

Test(plan, compute_estimate_covers_the_measured_arena) {
    const char *fx[] = {"hf/gemma3_tiny.gguf", "hf/gemma4_dense.gguf", "hf/gemma4_moe.gguf", "hf/gemma4_e.gguf"};
    for (int i = 0; i < 4; i++) compute_covers(tu_fixture(fx[i]));
    if (tu_real_model_path()) compute_covers(tu_real_model_path());
}
