/*
 * golden.c — see golden.h.
 */
#define _GNU_SOURCE
#include "golden.h"

#include "test_util.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>



void load_golden(const char *name, golden *g) {
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

lm_model *load_model(const char *name, const char *backend) {
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
double run_chunks(const char *name, lm_model *m, const golden *g, uint32_t chunk) {
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
double run_interleaved(const char *name, lm_model *m, const golden *g) {
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


lm_model *load_model_path(const char *path, const char *backend) {
    lm_model_params mp = lm_model_default_params();
    mp.backend = backend;
    lm_model *m;
    cr_assert_eq(lm_model_load(path, &mp, &m), LM_STATUS_OK, "%s: %s", path, lm_last_error());
    return m;
}

float *golden_logits_seq0(lm_model *m, const golden *g) { return golden_logits_seq0_kv(m, g, LM_KV_F32, 64); }

float *golden_logits_seq0_kv(lm_model *m, const golden *g, lm_kv_type kv, uint32_t chunk) {
    lm_context_params cp = lm_context_default_params();
    cp.n_ctx = 256;
    cp.n_batch = 64;
    cp.n_outputs_max = 64;
    cp.kv_type = kv;
    lm_context *c;
    cr_assert_eq(lm_context_create(m, &cp, &c), LM_STATUS_OK, "%s", lm_last_error());
    const uint32_t n = g->n_tok[0] < 64 ? g->n_tok[0] : 64;
    lm_batch_entry e[64];
    float *out = malloc((size_t)n * g->n_vocab * sizeof(float));
    for (uint32_t i0 = 0; i0 < n; i0 += chunk) {
        const uint32_t m_ = n - i0 < chunk ? n - i0 : chunk;
        for (uint32_t i = 0; i < m_; i++) e[i] = (lm_batch_entry){g->tok[0][i0 + i], (int32_t)(i0 + i), 0, true};
        cr_assert_eq(lm_context_decode(c, e, (int32_t)m_), LM_STATUS_OK, "%s", lm_last_error());
        for (uint32_t i = 0; i < m_; i++)
            memcpy(out + (size_t)(i0 + i) * g->n_vocab, lm_context_logits(c, (int32_t)i), g->n_vocab * sizeof(float));
    }
    lm_context_free(c);
    return out;
}

const char *golden_quantized(const char *name, const char *type, bool per_channel) {
    static char out[512];
    char in[512];
    snprintf(in, sizeof in, "%s/hf/%s.gguf", LUMEN_FIXTURES, name);
    char tag[96];
    snprintf(tag, sizeof tag, "%s-%s%s.gguf", name, type, per_channel ? "-pc" : "");
    snprintf(out, sizeof out, "%s", tu_tmp_path(tag));
    lm_quantize_params qp = lm_quantize_default_params();
    qp.type = type;
    qp.per_channel = per_channel;
    cr_assert_eq(lm_model_quantize(in, out, &qp), LM_STATUS_OK, "%s", lm_last_error());
    return out;
}

double golden_quantized_vs_cpu(const char *name, const char *type, const char *backend) {
    golden g;
    load_golden(name, &g);
    const char *path = golden_quantized(name, type, false);
    lm_model *mc = load_model_path(path, "cpu"), *mb = load_model_path(path, backend);
    float *lc = golden_logits_seq0(mc, &g), *lb = golden_logits_seq0(mb, &g);
    const double err = tu_max_rel(lb, lc, (int64_t)(g.n_tok[0] < 64 ? g.n_tok[0] : 64) * g.n_vocab);
    fprintf(stderr, "%s as %s on %s vs cpu: %.2e\n", name, type, backend, err);
    free(lc);
    free(lb);
    lm_model_free(mc);
    lm_model_free(mb);
    free(g.blob);
    remove(path);
    return err;
}

double golden_kv_vs_cpu(const char *name, lm_kv_type kv, const char *backend, uint32_t chunk) {
    golden g;
    load_golden(name, &g);
    lm_model *mc = load_model(name, "cpu"), *mb = load_model(name, backend);
    float *lc = golden_logits_seq0_kv(mc, &g, kv, chunk), *lb = golden_logits_seq0_kv(mb, &g, kv, chunk);
    const double err = tu_max_rel(lb, lc, (int64_t)(g.n_tok[0] < 64 ? g.n_tok[0] : 64) * g.n_vocab);
    fprintf(stderr, "%s, KV %s, chunks of %u, %s vs cpu: %.2e\n", name, lm_kv_type_name(kv), chunk, backend, err);
    free(lc);
    free(lb);
    lm_model_free(mc);
    lm_model_free(mb);
    free(g.blob);
    return err;
}

/* ---- the real model on a backend against the CPU backend ------------------------------------ */

int32_t *real_text_tokens(int32_t *n) {
    size_t size;
    char *txt = tu_read_file(tu_fixture("real/tokens.txt"), &size);
    cr_assert_not_null(txt);
    int32_t *ids = malloc(4096 * sizeof *ids), k = 0;
    char *p = txt, *end;
    for (long v; k < 4096 && (v = strtol(p, &end, 10), end != p); p = end) ids[k++] = (int32_t)v;
    free(txt);
    *n = k;
    return ids;
}

static double log_softmax_kl(const float *p_logits, const float *q_logits, int32_t V) {
    double mp = -INFINITY, mq = -INFINITY, sp = 0, sq = 0;
    for (int32_t i = 0; i < V; i++) mp = fmax(mp, p_logits[i]), mq = fmax(mq, q_logits[i]);
    for (int32_t i = 0; i < V; i++) sp += exp((double)p_logits[i] - mp), sq += exp((double)q_logits[i] - mq);
    const double lp = mp + log(sp), lq = mq + log(sq);
    double kl = 0;
    for (int32_t i = 0; i < V; i++) {
        const double a = (double)p_logits[i] - lp, b = (double)q_logits[i] - lq;
        kl += exp(a) * (a - b);
    }
    return kl;
}

static lm_model *real_model(const char *backend) {
    lm_model_params mp = lm_model_default_params();
    mp.backend = backend;
    mp.n_threads = 2;
    lm_model *m;
    cr_assert_eq(lm_model_load(tu_real_model_path(), &mp, &m), LM_STATUS_OK, "%s", lm_last_error());
    return m;
}

void real_model_vs_cpu(const char *backend, int32_t n_positions, int32_t greedy_steps) {
    int32_t n_all;
    int32_t *toks = real_text_tokens(&n_all);
    const int32_t n = n_positions < n_all ? n_positions : n_all;
    lm_model *mc = real_model("cpu"), *mv = real_model(backend);
    const int32_t V = lm_vocab_size(mc);
    lm_context_params cp = lm_context_default_params();
    cp.n_ctx = 256;
    cp.n_batch = n;
    cp.n_outputs_max = n;
    lm_context *cc, *cv;
    cr_assert_eq(lm_context_create(mc, &cp, &cc), LM_STATUS_OK, "%s", lm_last_error());
    cr_assert_eq(lm_context_create(mv, &cp, &cv), LM_STATUS_OK, "%s", lm_last_error());
    lm_batch_entry *e = malloc((size_t)(n > 6 ? n : 6) * sizeof *e);
    for (int32_t i = 0; i < n; i++) e[i] = (lm_batch_entry){toks[i], i, 0, true};
    cr_assert_eq(lm_context_decode(cc, e, n), LM_STATUS_OK, "%s", lm_last_error());
    cr_assert_eq(lm_context_decode(cv, e, n), LM_STATUS_OK, "%s", lm_last_error());
    double kl = 0, kl_max = 0;
    int agree = 0;
    for (int32_t i = 0; i < n; i++) {
        const float *a = lm_context_logits(cc, i), *b = lm_context_logits(cv, i);
        const double k = log_softmax_kl(a, b, V);
        kl += k;
        kl_max = fmax(kl_max, k);
        int32_t ba = 0, bb = 0;
        for (int32_t v = 1; v < V; v++) {
            if (a[v] > a[ba]) ba = v;
            if (b[v] > b[bb]) bb = v;
        }
        agree += ba == bb;
    }
    kl /= n;
    fprintf(stderr, "Gemma 3 270M, %s vs cpu over %d positions: mean KL %.3g (max %.3g), top-1 agreement %d/%d\n", backend, n, kl,
            kl_max, agree, n);
    cr_expect_leq(kl, 0.001, "mean KL %.6f", kl);
    cr_expect_geq(agree, n - 1 - n / 32, "top-1 agreement %d/%d", agree, n);
    /* greedy continuation of a prompt: identical tokens, the backend in LM_OUTPUT_ARGMAX mode
       (the token found on the device, no logits read back) */
    lm_context_params gp = cp;
    gp.output = LM_OUTPUT_ARGMAX;
    lm_context *cg;
    cr_assert_eq(lm_context_create(mv, &gp, &cg), LM_STATUS_OK, "%s", lm_last_error());
    const int32_t prompt[] = {2, 818, 5279, 529, 7001, 563}; /* "The capital of France is" */
    lm_context_seq_clear(cc, 0);
    for (int32_t i = 0; i < 6; i++) e[i] = (lm_batch_entry){prompt[i], i, 0, i == 5};
    cr_assert_eq(lm_context_decode(cc, e, 6), LM_STATUS_OK);
    cr_assert_eq(lm_context_decode(cg, e, 6), LM_STATUS_OK, "%s", lm_last_error());
    for (int32_t s = 0; s < greedy_steps; s++) {
        const float *a = lm_context_logits(cc, 0);
        int32_t ba = 0;
        for (int32_t v = 1; v < V; v++)
            if (a[v] > a[ba]) ba = v;
        cr_assert_eq(lm_context_argmax(cc, 0), ba);
        cr_assert_null(lm_context_logits(cg, 0));
        const int32_t bb = lm_context_argmax(cg, 0);
        cr_expect_eq(ba, bb, "greedy step %d: cpu %d, %s %d", s, ba, backend, bb);
        lm_batch_entry d = {ba, 6 + s, 0, true};
        cr_assert_eq(lm_context_decode(cc, &d, 1), LM_STATUS_OK);
        cr_assert_eq(lm_context_decode(cg, &d, 1), LM_STATUS_OK, "%s", lm_last_error());
    }
    free(e);
    lm_context_free(cg);
    lm_context_free(cc);
    lm_context_free(cv);
    lm_model_free(mc);
    lm_model_free(mv);
    free(toks);
}

/* ---- split execution against the CPU backend alone ----------------------------------------- */

double split_vs_cpu(const char *path, const char *backend, int32_t gpu_layers, const char *cpu_tensors,
                    const int32_t *toks, int32_t n, int32_t chunk, int32_t greedy) {
    lm_model *mc = load_model_path(path, "cpu"), *ms;
    lm_model_params mp = lm_model_default_params();
    mp.backend = backend;
    mp.n_threads = 2;
    mp.gpu_layers = gpu_layers;
    mp.cpu_tensors = cpu_tensors;
    cr_assert_eq(lm_model_load(path, &mp, &ms), LM_STATUS_OK, "%s", lm_last_error());
    lm_model_info mi;
    lm_model_get_info(ms, &mi);
    cr_assert_str_eq(mi.backend, backend);
    if (gpu_layers >= 0) cr_expect_eq(mi.n_gpu_layers, gpu_layers);
    cr_assert_not_null(mi.host_backend, "the model was not split");
    cr_expect_str_eq(mi.host_backend, "cpu");
    cr_expect_gt(mi.host_weight_bytes, 0);
    lm_context_params cp = lm_context_default_params();
    cp.n_ctx = 256;
    cp.n_batch = (uint32_t)chunk;
    cp.n_outputs_max = (uint32_t)chunk;
    cp.kv_type = LM_KV_F32;
    lm_context *cc, *cs;
    cr_assert_eq(lm_context_create(mc, &cp, &cc), LM_STATUS_OK, "%s", lm_last_error());
    cr_assert_eq(lm_context_create(ms, &cp, &cs), LM_STATUS_OK, "%s", lm_last_error());
    lm_context_memory mem;
    cr_assert_eq(lm_context_get_memory(cs, &mem), LM_STATUS_OK);
    cr_expect_gt(mem.compute_host, 0);
    if (mi.n_gpu_layers < mi.n_layer) cr_expect_gt(mem.kv_host, 0, "the CPU layers' caches are on the CPU");
    if (mi.n_gpu_layers > 0) cr_expect_lt(mem.kv_host, mem.kv_sliding + mem.kv_full + mem.kv_positions);
    const int32_t V = lm_vocab_size(mc);
    lm_batch_entry e[64];
    cr_assert(chunk <= 64);
    double md = 0, mr = 0;
    for (int32_t i = 0; i < n; i += chunk) {
        const int32_t b = n - i < chunk ? n - i : chunk;
        for (int32_t j = 0; j < b; j++) e[j] = (lm_batch_entry){toks[i + j], i + j, 0, true};
        cr_assert_eq(lm_context_decode(cc, e, b), LM_STATUS_OK, "%s", lm_last_error());
        cr_assert_eq(lm_context_decode(cs, e, b), LM_STATUS_OK, "%s", lm_last_error());
        for (int32_t j = 0; j < b; j++) {
            const float *r = lm_context_logits(cc, j), *l = lm_context_logits(cs, j);
            for (int32_t v = 0; v < V; v++) {
                md = fmax(md, fabs((double)l[v] - r[v]));
                mr = fmax(mr, fabs((double)r[v]));
            }
        }
    }
    int32_t pos = n, same = 0, row = (n - 1) % chunk; /* the last token's row in the last chunk */
    for (int32_t s = 0; s < greedy; s++, row = 0) {
        const int32_t a = lm_context_argmax(cc, row), b = lm_context_argmax(cs, row);
        cr_expect_eq(a, b, "greedy step %d: cpu %d, split %d", s, a, b);
        same += a == b;
        lm_batch_entry d = {a, pos++, 0, true};
        cr_assert_eq(lm_context_decode(cc, &d, 1), LM_STATUS_OK, "%s", lm_last_error());
        cr_assert_eq(lm_context_decode(cs, &d, 1), LM_STATUS_OK, "%s", lm_last_error());
        const float *r = lm_context_logits(cc, 0), *l = lm_context_logits(cs, 0);
        for (int32_t v = 0; v < V; v++) {
            md = fmax(md, fabs((double)l[v] - r[v]));
            mr = fmax(mr, fabs((double)r[v]));
        }
    }
    const double rel = md / mr;
    fprintf(stderr, "split %s: %d of %d layers on %s%s%s, %.1f MiB of weights on the cpu: logits vs cpu alone %.2e, %d/%d greedy tokens equal\n",
            strrchr(path, '/') ? strrchr(path, '/') + 1 : path, mi.n_gpu_layers, mi.n_layer, backend,
            cpu_tensors ? ", cpu tensors " : "", cpu_tensors ? cpu_tensors : "", (double)mi.host_weight_bytes / (1 << 20), rel, same,
            greedy);
    lm_context_free(cc);
    lm_context_free(cs);
    lm_model_free(mc);
    lm_model_free(ms);
    return rel;
}

const char *golden_fixture_path(const char *name) {
    static char path[4096];
    char rel[128];
    snprintf(rel, sizeof rel, "hf/%s.gguf", name);
    snprintf(path, sizeof path, "%s", tu_fixture(rel));
    return path;
}

void split_fixture(const char *backend, const char *name, int32_t gpu_layers, const char *cpu_tensors) {
    golden g;
    load_golden(name, &g);
    const double err = split_vs_cpu(golden_fixture_path(name), backend, gpu_layers, cpu_tensors, g.tok[0],
                                    (int32_t)(g.n_tok[0] < 40 ? g.n_tok[0] : 40), 5, 6);
    cr_expect_leq(err, TOL, "%s split at %d on %s: %.3g", name, gpu_layers, backend, err);
    free(g.blob);
}

/* ---- sequence operations -------------------------------------------------------------------- */

typedef struct seqctx {
    lm_context *c;
    int32_t V;
} seqctx;

/* feed toks[0..n) at positions p0.. of sequence `seq` token by token; the last logits row */
static const float *feed(seqctx *x, int32_t seq, const int32_t *toks, int32_t p0, int32_t n) {
    for (int32_t i = 0; i < n; i++) {
        lm_batch_entry e = {toks[i], p0 + i, seq, true};
        cr_assert_eq(lm_context_decode(x->c, &e, 1), LM_STATUS_OK, "%s", lm_last_error());
    }
    return lm_context_logits(x->c, 0);
}

static double rel_diff(const float *a, const float *b, int32_t V) {
    double md = 0, mr = 0;
    for (int32_t v = 0; v < V; v++) md = fmax(md, fabs((double)a[v] - b[v])), mr = fmax(mr, fabs((double)b[v]));
    return md / mr;
}

/* logits at the end of a fresh sequence fed toks[0..n) */
static float *fresh(lm_model *m, const int32_t *toks, int32_t n) {
    lm_context_params cp = lm_context_default_params();
    cp.n_ctx = 128;
    cp.n_batch = 4;
    lm_context *c;
    cr_assert_eq(lm_context_create(m, &cp, &c), LM_STATUS_OK, "%s", lm_last_error());
    seqctx x = {c, lm_vocab_size(m)};
    const float *l = feed(&x, 0, toks, 0, n);
    float *out = malloc((size_t)x.V * sizeof(float));
    memcpy(out, l, (size_t)x.V * sizeof(float));
    lm_context_free(c);
    return out;
}

/* the gemma4_dense fixture on `backend` (gpu_layers as in lm_model_params) */
static lm_model *seq_model(const char *backend, int32_t gpu_layers) {
    lm_model_params mp = lm_model_default_params();
    mp.backend = backend;
    mp.n_threads = 2;
    mp.gpu_layers = gpu_layers;
    lm_model *m;
    cr_assert_eq(lm_model_load(golden_fixture_path("gemma4_dense"), &mp, &m), LM_STATUS_OK, "%s", lm_last_error());
    return m;
}

void seq_ops_check(const char *backend, int32_t gpu_layers) {
    lm_model *m = seq_model(backend, gpu_layers);
    const int32_t V = lm_vocab_size(m);
    int32_t T[64], U[64];
    uint32_t r = 12345;
    for (int i = 0; i < 64; i++) {
        r = r * 1664525u + 1013904223u;
        T[i] = (int32_t)(r >> 8) % V;
        r = r * 1664525u + 1013904223u;
        U[i] = (int32_t)(r >> 8) % V;
    }
    lm_context_params cp = lm_context_default_params();
    cp.n_ctx = 128;
    cp.n_batch = 4; /* sliding ring: pad(8 - 1 + 4, 32) = 32 cells */
    cp.n_seq_max = 2;
    cp.kv_page = 16; /* the full layers' pool in pages of 16 cells (fresh contexts: one page of 128) */
    lm_context *c;
    cr_assert_eq(lm_context_create(m, &cp, &c), LM_STATUS_OK, "%s", lm_last_error());
    seqctx x = {c, V};
    double worst = 0;

    /* a draft of 20 tokens rejected: the tail removed, the sequence continues from 30 */
    feed(&x, 0, T, 0, 30);
    feed(&x, 0, U + 30, 30, 20);
    cr_assert_eq(lm_context_seq_pos_max(c, 0), 49);
    cr_assert_eq(lm_context_seq_rm(c, 0, 30, -1), LM_STATUS_OK, "%s", lm_last_error());
    cr_expect_eq(lm_context_seq_pos_max(c, 0), 29);
    float *ref = fresh(m, T, 40);
    double d = rel_diff(feed(&x, 0, T + 30, 30, 10), ref, V);
    cr_expect_leq(d, 1e-5, "tail removed and continued: %.3g", d);
    worst = fmax(worst, d);
    free(ref);

    /* a draft of 30: the ring (32 cells, window 8) lost the window before 40: refused, unchanged;
       from 45 (24 behind the end) the window is intact */
    feed(&x, 0, U, 40, 30);
    cr_expect_eq(lm_context_seq_rm(c, 0, 40, -1), LM_STATUS_UNSUPPORTED);
    cr_expect(strstr(lm_last_error(), "sliding-window cache") != NULL, "%s", lm_last_error());
    cr_expect_eq(lm_context_seq_pos_max(c, 0), 69);
    cr_expect_eq(lm_context_seq_rm(c, 0, 45, -1), LM_STATUS_OK, "%s", lm_last_error()); /* 24 behind: still served */
    cr_expect_eq(lm_context_seq_pos_max(c, 0), 44);

    /* a prefix shared: sequence 0 = T[0..20), copied to 1; each continues its own way */
    cr_assert_eq(lm_context_seq_clear(c, 0), LM_STATUS_OK);
    feed(&x, 0, T, 0, 20);
    cr_assert_eq(lm_context_seq_cp(c, 0, 1, 0, -1), LM_STATUS_OK, "%s", lm_last_error());
    cr_expect_eq(lm_context_seq_pos_max(c, 1), 19);
    int32_t TU[32];
    memcpy(TU, T, 20 * sizeof(int32_t));
    memcpy(TU + 20, U + 20, 10 * sizeof(int32_t));
    const float *l1 = feed(&x, 1, T + 20, 20, 10);
    float *keep = malloc((size_t)V * sizeof(float));
    memcpy(keep, l1, (size_t)V * sizeof(float));
    const float *l0 = feed(&x, 0, U + 20, 20, 10);
    ref = fresh(m, TU, 30);
    d = rel_diff(l0, ref, V);
    free(ref);
    cr_expect_leq(d, 1e-5, "source sequence after the copy: %.3g", d);
    worst = fmax(worst, d);
    ref = fresh(m, T, 30);
    d = rel_diff(keep, ref, V);
    free(ref);
    cr_expect_leq(d, 1e-5, "copied prefix continued: %.3g", d);
    worst = fmax(worst, d);

    /* after the ring wrapped: sequence 0 at 45 positions, copied whole (the ring's part: 13..44) */
    cr_assert_eq(lm_context_seq_clear(c, 0), LM_STATUS_OK);
    cr_assert_eq(lm_context_seq_clear(c, 1), LM_STATUS_OK);
    feed(&x, 0, T, 0, 45);
    cr_assert_eq(lm_context_seq_cp(c, 0, 1, 0, -1), LM_STATUS_OK, "%s", lm_last_error());
    ref = fresh(m, T, 50);
    d = rel_diff(feed(&x, 1, T + 45, 45, 5), ref, V);
    free(ref);
    cr_expect_leq(d, 1e-5, "copy of a wrapped ring: %.3g", d);
    worst = fmax(worst, d);

    /* sliding-window checkpoints: T[0..20) checkpointed, then 40 tokens of U; going back to 25
       needs the window before 25, long overwritten in the 32-cell ring: the checkpoint at 20 is
       restored and the sequence continues from 20 as if U never came */
    cr_assert_eq(lm_context_seq_clear(c, 0), LM_STATUS_OK);
    cr_assert_eq(lm_context_seq_clear(c, 1), LM_STATUS_OK);
    feed(&x, 0, T, 0, 20);
    cr_assert_eq(lm_context_seq_checkpoint(c, 0), LM_STATUS_OK, "%s", lm_last_error());
    lm_context_memory mem;
    cr_assert_eq(lm_context_get_memory(c, &mem), LM_STATUS_OK);
    cr_expect_gt(mem.checkpoints, 0u, "a checkpoint holds the rings' rows");
    feed(&x, 0, U + 20, 20, 40);
    cr_expect_eq(lm_context_seq_rm(c, 0, 25, -1), LM_STATUS_UNSUPPORTED);
    int32_t from = -1;
    cr_assert_eq(lm_context_seq_rollback(c, 0, 25, &from), LM_STATUS_OK, "%s", lm_last_error());
    cr_expect_eq(from, 20);
    cr_expect_eq(lm_context_seq_pos_max(c, 0), 19);
    ref = fresh(m, T, 30);
    d = rel_diff(feed(&x, 0, T + 20, 20, 10), ref, V);
    free(ref);
    cr_expect_leq(d, 1e-5, "continued from a restored checkpoint: %.3g", d);
    worst = fmax(worst, d);
    /* a rollback the rings still serve is a plain tail removal */
    cr_expect_eq(lm_context_seq_rollback(c, 0, 27, &from), LM_STATUS_OK, "%s", lm_last_error());
    cr_expect_eq(from, 27);
    cr_expect_eq(lm_context_seq_pos_max(c, 0), 26);
    /* no checkpoint at or before 10: refused, unchanged */
    feed(&x, 0, U, 27, 40);
    cr_expect_eq(lm_context_seq_rollback(c, 0, 10, &from), LM_STATUS_UNSUPPORTED);
    cr_expect(strstr(lm_last_error(), "checkpoint") != NULL, "%s", lm_last_error());
    cr_expect_eq(lm_context_seq_pos_max(c, 0), 66);
    /* the checkpoint survives its own restore; removing positions before it drops it */
    cr_expect_eq(lm_context_seq_rollback(c, 0, 22, &from), LM_STATUS_OK, "%s", lm_last_error());
    cr_expect_eq(from, 20);
    cr_expect_eq(lm_context_seq_rm(c, 0, 5, -1), LM_STATUS_OK, "%s", lm_last_error());
    cr_assert_eq(lm_context_get_memory(c, &mem), LM_STATUS_OK);
    cr_expect_eq(mem.checkpoints, 0u, "a checkpoint after a removed position is dropped");

    cr_expect_eq(lm_context_seq_rm(c, 2, 0, -1), LM_STATUS_INVALID_ARGUMENT);
    cr_expect_eq(lm_context_seq_cp(c, 0, 5, 0, -1), LM_STATUS_INVALID_ARGUMENT);
    cr_expect_eq(lm_context_seq_checkpoint(c, 2), LM_STATUS_INVALID_ARGUMENT);
    cr_expect_eq(lm_context_seq_rollback(c, 0, 0, NULL), LM_STATUS_INVALID_ARGUMENT);
    fprintf(stderr, "sequence ops on %s%s: worst max|d|/max|ref| against fresh contexts %.2e\n", backend,
            gpu_layers >= 0 ? " (split)" : "", worst);
    free(keep);
    lm_context_free(c);
    lm_model_free(m);
}

static uint32_t pages_used(lm_context *c) {
    lm_context_memory mem;
    cr_assert_eq(lm_context_get_memory(c, &mem), LM_STATUS_OK);
    return mem.kv_pages_used;
}

/* checks the continuation of `seq` from p0 with toks[p0..p0+n) against a fresh context fed all
   of toks[0..p0+n) */
static double cont_vs_fresh(seqctx *x, lm_model *m, int32_t seq, const int32_t *toks, int32_t p0, int32_t n) {
    const float *l = feed(x, seq, toks + p0, p0, n);
    float *ref = fresh(m, toks, p0 + n);
    const double d = rel_diff(l, ref, x->V);
    free(ref);
    return d;
}

void paged_pool_check(const char *backend, int32_t gpu_layers) {
    lm_model *m = seq_model(backend, gpu_layers);
    const int32_t V = lm_vocab_size(m);
    int32_t T[64], A[64], B[64], C[64];
    uint32_t r = 777;
    for (int i = 0; i < 64; i++) {
        r = r * 1664525u + 1013904223u;
        T[i] = (int32_t)(r >> 8) % V;
        r = r * 1664525u + 1013904223u;
        C[i] = (int32_t)(r >> 8) % V;
    }
    memcpy(A, T, sizeof A);
    memcpy(B, T, sizeof B);
    for (int i = 32; i < 64; i++) A[i] = C[i]; /* A: T's first 32, then its own */
    for (int i = 40; i < 64; i++) B[i] = C[63 - i]; /* B: T's first 40, then its own */
    /* 4 sequences of up to 128 positions share a pool of 6 pages of 16 cells (not 4 x 128) */
    lm_context_params cp = lm_context_default_params();
    cp.n_ctx = 128;
    cp.n_batch = 4;
    cp.n_seq_max = 4;
    cp.kv_page = 16;
    cp.kv_cells = 96;
    lm_context *c;
    cr_assert_eq(lm_context_create(m, &cp, &c), LM_STATUS_OK, "%s", lm_last_error());
    lm_context_memory mem;
    cr_assert_eq(lm_context_get_memory(c, &mem), LM_STATUS_OK);
    cr_expect_eq(mem.kv_pages_total, 6u);
    cr_expect_eq(mem.kv_pages_used, 0u);
    seqctx x = {c, V};
    double worst = 0, d;

    feed(&x, 0, T, 0, 40); /* pages for 0-15, 16-31, 32-39 */
    cr_expect_eq(pages_used(c), 3u);
    /* copies share whole pages: [0, 32) to sequence 1, everything to sequence 2 */
    cr_assert_eq(lm_context_seq_cp(c, 0, 1, 0, 32), LM_STATUS_OK, "%s", lm_last_error());
    cr_assert_eq(lm_context_seq_cp(c, 0, 2, 0, -1), LM_STATUS_OK, "%s", lm_last_error());
    cr_expect_eq(pages_used(c), 3u, "prefix copies share pages");
    /* sequence 1 goes its own way at 32: a fresh page */
    d = cont_vs_fresh(&x, m, 1, A, 32, 8);
    cr_expect_leq(d, 1e-5, "shared prefix, own page: %.3g", d);
    worst = fmax(worst, d);
    cr_expect_eq(pages_used(c), 4u);
    /* sequence 2 writes into the page it shares with 0: copied first; 0 then writes its own */
    d = cont_vs_fresh(&x, m, 2, T, 40, 5);
    cr_expect_leq(d, 1e-5, "copy on write (writer): %.3g", d);
    worst = fmax(worst, d);
    cr_expect_eq(pages_used(c), 5u, "the shared page was copied");
    d = cont_vs_fresh(&x, m, 0, B, 40, 5);
    cr_expect_leq(d, 1e-5, "copy on write (the other sharer): %.3g", d);
    worst = fmax(worst, d);
    cr_expect_eq(pages_used(c), 5u);
    /* a range removed from a shared page copies it for the remover only */
    cr_assert_eq(lm_context_seq_rm(c, 2, 5, 10), LM_STATUS_OK, "%s", lm_last_error());
    cr_expect_eq(pages_used(c), 6u);
    d = cont_vs_fresh(&x, m, 0, B, 45, 2);
    cr_expect_leq(d, 1e-5, "sharer after the other's removal: %.3g", d);
    worst = fmax(worst, d);
    /* the pool is full: a new page is refused with a clear error and nothing breaks */
    lm_batch_entry e = {T[0], 0, 3, true};
    cr_expect_eq(lm_context_decode(c, &e, 1), LM_STATUS_CONTEXT_FULL);
    cr_expect(strstr(lm_last_error(), "KV cache full") != NULL, "%s", lm_last_error());
    /* clearing sequence 2 returns its pages (those it alone held) */
    cr_assert_eq(lm_context_seq_clear(c, 2), LM_STATUS_OK);
    cr_expect_eq(pages_used(c), 4u);
    d = cont_vs_fresh(&x, m, 3, C, 0, 20);
    cr_expect_leq(d, 1e-5, "a sequence in freed pages: %.3g", d);
    worst = fmax(worst, d);
    cr_expect_eq(pages_used(c), 6u);
    d = cont_vs_fresh(&x, m, 1, A, 40, 3);
    cr_expect_leq(d, 1e-5, "untouched sequence at the end: %.3g", d);
    worst = fmax(worst, d);
    /* everything cleared: the pool is empty again */
    for (int32_t s = 0; s < 4; s++) cr_assert_eq(lm_context_seq_clear(c, s), LM_STATUS_OK);
    cr_expect_eq(pages_used(c), 0u);
    fprintf(stderr, "paged KV pool on %s%s: worst max|d|/max|ref| against fresh contexts %.2e\n", backend,
            gpu_layers >= 0 ? " (split)" : "", worst);
    lm_context_free(c);
    /* a pool smaller than one page is refused */
    cp.kv_cells = 8;
    cr_expect_eq(lm_context_create(m, &cp, &c), LM_STATUS_INVALID_ARGUMENT);
    lm_model_free(m);
}
