/*
 * test_models.c — HF golden tests: tiny random Gemma 3, Gemma 4 dense (31B-style: K=V global
 * layers with their own head dim and KV-head count, proportional RoPE, layer_scalar, softcap),
 * Gemma 4 MoE (26B-A4B-style) and Gemma 4 E-style (per-layer inputs, KV-shared layers,
 * double-wide MLP) models built with HF transformers and converted with llama.cpp's converter
 * (tools/gen_hf_fixtures.py). lumen's logits must match HF's float32 logits within
 * max|d| / max|ref| <= 1e-4 on every sequence (KV cache in f32), whichever way the tokens are fed:
 * one batch, chunks smaller than the window (the sliding layers then run as a ring buffer that
 * wraps), one token at a time, or all sequences interleaved in one batch.
 */
#define _GNU_SOURCE
#include "lumen.h"
#include "test_util.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-4

typedef struct golden {
    uint32_t n_vocab, n_seq;
    uint32_t n_tok[8];
    int32_t *tok[8];
    float *logits[8];
    void *blob;
} golden;

static void load_golden(const char *name, golden *g) {
    char path[256];
    snprintf(path, sizeof path, "hf/%s.logits", name);
    size_t size;
    uint8_t *b = tu_read_file(tu_fixture(path), &size);
    cr_assert_not_null(b, "missing fixture %s", path);
    cr_assert(size > 16 && memcmp(b, "LMLG", 4) == 0);
    uint32_t ver;
    memcpy(&ver, b + 4, 4);
    memcpy(&g->n_vocab, b + 8, 4);
    memcpy(&g->n_seq, b + 12, 4);
    cr_assert(ver == 1 && g->n_seq >= 1 && g->n_seq <= 8);
    size_t at = 16;
    for (uint32_t s = 0; s < g->n_seq; s++) {
        memcpy(&g->n_tok[s], b + at, 4);
        at += 4;
        g->tok[s] = (int32_t *)(b + at);
        at += 4u * g->n_tok[s];
        g->logits[s] = (float *)(b + at);
        at += 4u * (size_t)g->n_tok[s] * g->n_vocab;
        cr_assert(at <= size);
    }
    g->blob = b;
}

static lm_model *load_model(const char *name, const char *backend) {
    char path[256];
    snprintf(path, sizeof path, "hf/%s.gguf", name);
    lm_model_params mp = lm_model_default_params();
    mp.backend = backend;
    mp.n_threads = 2;
    lm_model *m;
    cr_assert_eq(lm_model_load(tu_fixture(path), &mp, &m), LM_STATUS_OK, "%s", lm_last_error());
    return m;
}

static lm_context *make_ctx(lm_model *m, uint32_t n_batch, uint32_t n_seq) {
    lm_context_params cp = lm_context_default_params();
    cp.n_ctx = 512;
    cp.n_batch = n_batch;
    cp.n_seq_max = n_seq;
    cp.n_outputs_max = 0; /* = n_batch */
    cp.kv_type = LM_KV_F32;
    lm_context *c;
    cr_assert_eq(lm_context_create(m, &cp, &c), LM_STATUS_OK, "%s", lm_last_error());
    return c;
}

/* Feed every sequence in chunks of `chunk` tokens; compare all logits. Returns the worst error. */
static double run_chunks(const char *name, lm_model *m, const golden *g, uint32_t chunk) {
    lm_context *c = make_ctx(m, chunk, 1);
    double worst = 0;
    lm_batch_entry e[64];
    for (uint32_t s = 0; s < g->n_seq; s++) {
        cr_assert_eq(lm_context_seq_clear(c, 0), LM_STATUS_OK);
        double md = 0, mr = 0;
        for (uint32_t i = 0; i < g->n_tok[s]; i += chunk) {
            uint32_t b = g->n_tok[s] - i < chunk ? g->n_tok[s] - i : chunk;
            for (uint32_t j = 0; j < b; j++) e[j] = (lm_batch_entry){g->tok[s][i + j], (int32_t)(i + j), 0, true};
            cr_assert_eq(lm_context_decode(c, e, (int32_t)b), LM_STATUS_OK, "%s", lm_last_error());
            for (uint32_t j = 0; j < b; j++) {
                const float *l = lm_context_logits(c, (int32_t)j), *r = g->logits[s] + (size_t)(i + j) * g->n_vocab;
                for (uint32_t v = 0; v < g->n_vocab; v++) {
                    md = fmax(md, fabs((double)l[v] - r[v]));
                    mr = fmax(mr, fabs((double)r[v]));
                }
            }
        }
        const double rel = md / mr;
        worst = fmax(worst, rel);
        cr_expect_leq(rel, TOL, "%s seq %u (%u tokens, chunk %u): max|d|/max|ref| = %.3g", name, s, g->n_tok[s], chunk, rel);
    }
    lm_context_free(c);
    return worst;
}

/* All sequences interleaved in one batch, each with its own sequence id. */
static double run_interleaved(const char *name, lm_model *m, const golden *g) {
    uint32_t total = 0, maxlen = 0;
    for (uint32_t s = 0; s < g->n_seq; s++) {
        total += g->n_tok[s];
        if (g->n_tok[s] > maxlen) maxlen = g->n_tok[s];
    }
    lm_context *c = make_ctx(m, total, g->n_seq);
    lm_batch_entry *e = malloc(total * sizeof *e);
    uint32_t *src_seq = malloc(total * sizeof *src_seq), *src_pos = malloc(total * sizeof *src_pos), n = 0;
    for (uint32_t p = 0; p < maxlen; p++)
        for (uint32_t s = 0; s < g->n_seq; s++)
            if (p < g->n_tok[s]) {
                e[n] = (lm_batch_entry){g->tok[s][p], (int32_t)p, (int32_t)s, true};
                src_seq[n] = s;
                src_pos[n++] = p;
            }
    cr_assert_eq(lm_context_decode(c, e, (int32_t)n), LM_STATUS_OK, "%s", lm_last_error());
    double md[8] = {0}, mr[8] = {0}, worst = 0;
    for (uint32_t i = 0; i < n; i++) {
        const float *l = lm_context_logits(c, (int32_t)i), *r = g->logits[src_seq[i]] + (size_t)src_pos[i] * g->n_vocab;
        for (uint32_t v = 0; v < g->n_vocab; v++) {
            md[src_seq[i]] = fmax(md[src_seq[i]], fabs((double)l[v] - r[v]));
            mr[src_seq[i]] = fmax(mr[src_seq[i]], fabs((double)r[v]));
        }
    }
    for (uint32_t s = 0; s < g->n_seq; s++) {
        const double rel = md[s] / mr[s];
        worst = fmax(worst, rel);
        cr_expect_leq(rel, TOL, "%s interleaved seq %u: %.3g", name, s, rel);
    }
    free(e);
    free(src_seq);
    free(src_pos);
    lm_context_free(c);
    return worst;
}

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
        const uint64_t meta = (ring + ctxs[i]) * 4;
        const uint64_t expect = swa + full + meta;
        cr_assert(bytes[i] >= expect && bytes[i] < expect + 16 * 256, "kv bytes %llu, expected %llu (+ padding)",
                  (unsigned long long)bytes[i], (unsigned long long)expect);
    }
    lm_model_free(m);
}
