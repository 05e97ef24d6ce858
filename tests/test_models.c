/*
 * test_models.c — HF golden tests: tiny random Gemma 3, Gemma 4 dense (31B-style: K=V global
 * layers with their own head dim and KV-head count, proportional RoPE, layer_scalar, softcap),
 * Gemma 4 MoE (26B-A4B-style) and Gemma 4 E-style (per-layer inputs, KV-shared layers,
 * double-wide MLP), Llama (SwiGLU, adjacent-pair RoPE, untied head) and Qwen2 (q/k/v biases) models
 * built with HF transformers and converted with llama.cpp's converter
 * (tools/gen_hf_fixtures.py). lumen's logits must match HF's float32 logits within
 * max|d| / max|ref| <= 1e-4 on every sequence (KV cache in f32), whichever way the tokens are fed:
 * one batch, chunks smaller than the window (the sliding layers then run as a ring buffer that
 * wraps), one token at a time, or all sequences interleaved in one batch.
 */
#define _GNU_SOURCE
#include "lumen.h"
#include "golden.h"
#include "test_util.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check_model(const char *name) {
    golden g;
    load_golden(name, &g);
    lm_model *m = load_model(name, "cpu");
    cr_assert_eq((uint32_t)lm_vocab_size(m), g.n_vocab);
    double one = run_chunks(name, m, &g, 64);
    double ring = run_chunks(name, m, &g, 5); /* 5-token chunks: sliding cache is a wrapping ring */
    double step = run_chunks(name, m, &g, 1);
    double multi = run_interleaved(name, m, &g);
    lm_model_free(m);
    /* the scalar double-precision reference backend end to end */
    lm_model *r = load_model(name, "ref");
    double ref = run_chunks(name, r, &g, 64);
    lm_model_free(r);
    fprintf(stderr, "%-13s vs HF: one batch %.2e, 5-token chunks %.2e, token by token %.2e, interleaved %.2e, ref backend %.2e\n",
            name, one, ring, step, multi, ref);
    free(g.blob);
}

/* Weights copied into device buffers no larger than 600 kB (the path GPUs with an allocation limit
 * take), instead of the mapped file: same logits. */
Test(models, chunked_weight_upload) {
    setenv("LUMEN_CPU_MAX_ALLOC", "600000", 1);
    golden g;
    load_golden("gemma4_moe", &g);
    lm_model *m = load_model("gemma4_moe", "cpu");
    unsetenv("LUMEN_CPU_MAX_ALLOC");
    double err = run_chunks("gemma4_moe (chunked weights)", m, &g, 64);
    cr_assert_leq(err, TOL);
    lm_model_free(m);
    free(g.blob);
    setenv("LUMEN_CPU_MAX_ALLOC", "1000", 1); /* smaller than a tensor: a clean error */
    lm_model_params mp = lm_model_default_params();
    lm_model *bad = NULL;
    lm_status st = lm_model_load(tu_fixture("hf/gemma4_moe.gguf"), &mp, &bad);
    unsetenv("LUMEN_CPU_MAX_ALLOC");
    cr_assert_eq(st, LM_STATUS_UNSUPPORTED);
    cr_assert(strstr(lm_last_error(), "exceeds") != NULL, "message: %s", lm_last_error());
    cr_assert_null(bad);
}

Test(models, gemma3_tiny) { check_model("gemma3_tiny"); }
Test(models, gemma4_dense) { check_model("gemma4_dense"); }
Test(models, gemma4_moe) { check_model("gemma4_moe"); }
Test(models, gemma4_e) { check_model("gemma4_e"); }
Test(models, llama_tiny) { check_model("llama_tiny"); }
Test(models, qwen2_tiny) { check_model("qwen2_tiny"); }

/* Gemma 4 K=V layers keep one tensor: the cache holds exactly K+V for every sliding layer and
 * V alone for the K=V global layers; sliding layers hold a ring, independent of n_ctx. */
Test(models, kv_cache_layout) {
    lm_model *m = load_model("gemma4_dense", "cpu");
    /* layers S,S,F,S,S,F; sliding: 2 KV heads x 32, full: 1 KV head x 64 (K=V) */
    uint64_t bytes[2];
    const uint32_t ctxs[2] = {1024, 8192};
    for (int i = 0; i < 2; i++) {
        lm_context_params cp = lm_context_default_params();
        cp.n_ctx = ctxs[i];
        cp.n_batch = 64;
        cp.kv_type = LM_KV_F16;
        lm_context *c;
        cr_assert_eq(lm_context_create(m, &cp, &c), LM_STATUS_OK, "%s", lm_last_error());
        bytes[i] = lm_context_kv_bytes(c);
        lm_context_free(c);
        const uint64_t ring = 96; /* pad32(window 8 - 1 + n_batch 64) */
        const uint64_t swa = 4 * ring * (2 * 2 * 32 * 2); /* 4 layers x cells x (K + V) x f16 */
        const uint64_t full = 2 * (uint64_t)ctxs[i] * (1 * 64 * 2); /* 2 layers x cells x V only */
        /* positions: the full layers' pool has a null page of 256 (the default kv_page) cells */
        const uint64_t meta = (ring + ctxs[i] + 256) * 4;
        const uint64_t expect = swa + full + meta;
        cr_assert(bytes[i] >= expect && bytes[i] < expect + 16 * 256, "kv bytes %llu, expected %llu (+ padding)",
                  (unsigned long long)bytes[i], (unsigned long long)expect);
    }
    lm_model_free(m);
}

/* 8-bit KV caches. Against HF's float32 logits the error is the quantization's own (measured and
 * bounded loosely below); against the double-precision reference backend with the same KV type,
 * the CPU fast path must agree closely, token by token and in chunks. */
static double vs_hf_kv(const char *name, lm_kv_type kv, uint32_t chunk) {
    golden g;
    load_golden(name, &g);
    lm_model *m = load_model(name, "cpu");
    float *l = golden_logits_seq0_kv(m, &g, kv, chunk);
    const uint32_t n = g.n_tok[0] < 64 ? g.n_tok[0] : 64;
    const double err = tu_max_rel(l, g.logits[0], (int64_t)n * g.n_vocab);
    free(l);
    lm_model_free(m);
    free(g.blob);
    return err;
}

Test(models, quantized_kv_cache, .timeout = 600) {
    static const char *names[] = {"gemma3_tiny", "gemma4_dense", "gemma4_moe"};
    for (int i = 0; i < 3; i++) {
        const double bf = vs_hf_kv(names[i], LM_KV_BF16, 64), q8 = vs_hf_kv(names[i], LM_KV_Q8_0, 64),
                     f8 = vs_hf_kv(names[i], LM_KV_FP8, 64), q8s = vs_hf_kv(names[i], LM_KV_Q8_0, 1);
        fprintf(stderr, "%-13s KV vs HF (max|d|/max|ref|): bf16 %.2e, q8_0 %.2e (token by token %.2e), fp8 %.2e\n", names[i],
                bf, q8, q8s, f8);
        cr_expect_leq(bf, 2e-2, "%s bf16", names[i]);
        cr_expect_leq(q8, 5e-2, "%s q8_0", names[i]);
        cr_expect_leq(q8s, 5e-2, "%s q8_0 token by token", names[i]);
        cr_expect_leq(f8, 1.5e-1, "%s fp8", names[i]);
        /* the quantization is really applied: an 8-bit cache is not bit-identical to f32 */
        cr_expect_gt(q8, 1e-6, "%s q8_0 made no difference", names[i]);
        cr_expect_gt(f8, 1e-6, "%s fp8 made no difference", names[i]);
    }
    for (lm_kv_type kv = LM_KV_BF16; kv <= LM_KV_FP8; kv++) {
        cr_expect_leq(golden_kv_vs_cpu("gemma4_dense", kv, "ref", 64), 1e-5, "%s", lm_kv_type_name(kv));
        cr_expect_leq(golden_kv_vs_cpu("gemma4_dense", kv, "ref", 1), 1e-5, "%s", lm_kv_type_name(kv));
    }
}

/* bytes of the 8-bit caches: q8_0 34 bytes per 32 values, fp8 one byte per value */
Test(models, quantized_kv_cache_bytes) {
    lm_model *m = load_model("gemma4_dense", "cpu");
    const lm_kv_type kinds[3] = {LM_KV_F16, LM_KV_Q8_0, LM_KV_FP8};
    uint64_t data[3];
    for (int i = 0; i < 3; i++) {
        lm_context_params cp = lm_context_default_params();
        cp.n_ctx = 4096;
        cp.n_batch = 64;
        cp.kv_type = kinds[i];
        lm_context *c;
        cr_assert_eq(lm_context_create(m, &cp, &c), LM_STATUS_OK, "%s", lm_last_error());
        uint64_t est;
        cr_assert_eq(lm_model_estimate_memory(m, &cp, &est, NULL), LM_STATUS_OK);
        cr_assert(est <= lm_context_kv_bytes(c) && lm_context_kv_bytes(c) < est + 16 * 256, "estimate %llu, allocated %llu",
                  (unsigned long long)est, (unsigned long long)lm_context_kv_bytes(c));
        /* values: 4 sliding layers x 96 cells x (K + V) x 2 x 32, 2 full layers x 4096 x 64;
           positions: + the pool's null page (256 cells, the default kv_page) */
        const uint64_t values = 4 * 96 * 2 * 2 * 32 + 2 * 4096 * 64, meta = (96 + 4096 + 256) * 4;
        const uint64_t expect = kinds[i] == LM_KV_F16 ? values * 2 : kinds[i] == LM_KV_Q8_0 ? values / 32 * 34 : values;
        data[i] = lm_context_kv_bytes(c) - meta;
        cr_assert(data[i] >= expect && data[i] < expect + 16 * 256, "%s: %llu bytes, expected %llu (+ padding)",
                  lm_kv_type_name(kinds[i]), (unsigned long long)data[i], (unsigned long long)expect);
        lm_context_free(c);
    }
    lm_model_free(m);
}

Test(models, kv_type_names_and_bad_values) {
    for (lm_kv_type t = LM_KV_F32; t <= LM_KV_FP8; t++) {
        lm_kv_type back;
        cr_assert_eq(lm_kv_type_parse(lm_kv_type_name(t), &back), LM_STATUS_OK);
        cr_assert_eq(back, t);
    }
    lm_kv_type x;
    cr_assert_eq(lm_kv_type_parse("q4_0", &x), LM_STATUS_INVALID_ARGUMENT);
    cr_assert(strstr(lm_last_error(), "q4_0") != NULL, "%s", lm_last_error());
    cr_assert_eq(lm_kv_type_parse(NULL, &x), LM_STATUS_INVALID_ARGUMENT);
    lm_model *m = load_model("gemma4_dense", "cpu");
    lm_context_params cp = lm_context_default_params();
    cp.kv_type = (lm_kv_type)99;
    lm_context *c = NULL;
    cr_assert_eq(lm_context_create(m, &cp, &c), LM_STATUS_INVALID_ARGUMENT);
    cr_assert_null(c);
    cr_assert(strstr(lm_last_error(), "KV type") != NULL, "%s", lm_last_error());
    lm_model_free(m);
}

/* sequence operations (remove a range, copy a prefix) against fresh contexts */
Test(models, sequence_ops) { seq_ops_check("cpu", -1); }
Test(models, paged_kv_pool) { paged_pool_check("cpu", -1); }
