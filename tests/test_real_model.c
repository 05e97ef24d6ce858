/*
 * test_real_model.c — the real Gemma 3 270M Q4_K_M GGUF against llama.cpp and against the exact
 * model (HF transformers, float64, same weights), reference outputs committed by
 * tools/gen_real_fixtures.py: tokenization of a real text, teacher-forced top-1 agreement and KL
 * divergence over ~1000 positions (crossing the 512-token sliding window, in several prefill
 * chunks), perplexity, and greedy continuations.
 *
 * KL is computed over the partition {each of llama.cpp's 256 most likely tokens, everything else}
 * with exact probabilities (both sides' full log-sum-exp are known). By the data-processing
 * inequality this is a lower bound of the full-vocabulary KL; the tail bucket holds the rest of
 * the mass on both sides, so a disagreement there still counts. Skipped when the model file is
 * not installed (tools/fetch_model.sh installs it; CI does).
 *
 * The real_smollm2 suite runs the same checks on SmolLM2-135M-Instruct Q4_1 (llama architecture,
 * GPT-2 byte-level BPE tokenizer, Q8_0 tied embeddings; tools/fetch_model.sh smollm2), with its
 * own fixtures in real_smollm2/ from the same generator.
 */
#define _GNU_SOURCE
#include "lumen.h"
#include "test_util.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static lm_model *model;

/* The model under test: Gemma 3 270M Q4_K_M (fixtures in real/) or, in the real_smollm2 suite,
 * SmolLM2-135M-Instruct Q4_1 (llama architecture, GPT-2 byte-level BPE; fixtures in
 * real_smollm2/, made by the same tools/gen_real_fixtures.py). */
static const char *rdir = "real", *rname = "Gemma 3 270M";
static const char *(*rpath)(void) = tu_real_model_path;

/* "<fixture dir of the model under test>/file" (a few rotating buffers) */
static const char *fx(const char *file) {
    static char buf[4][256];
    static int k;
    char *b = buf[k++ & 3];
    snprintf(b, sizeof buf[0], "%s/%s", rdir, file);
    return b;
}

#define NEED_MODEL() \
    if (!model) cr_skip("%s not installed (run tools/fetch_model.sh)", rname)

static void setup(void) {
    const char *path = rpath();
    if (!path) return;
    lm_model_params mp = lm_model_default_params();
    mp.n_threads = 2;
    cr_assert_eq(lm_model_load(path, &mp, &model), LM_STATUS_OK, "%s", lm_last_error());
}

static void setup_smollm2(void) {
    rdir = "real_smollm2";
    rname = "SmolLM2-135M";
    rpath = tu_smollm2_path;
    setup();
}

static void teardown(void) {
    lm_model_free(model);
    model = NULL;
}

static int32_t *read_ids(const char *path, int32_t *n) {
    size_t size;
    char *txt = tu_read_file(path, &size);
    cr_assert_not_null(txt, "missing %s", path);
    txt = realloc(txt, size + 1);
    txt[size] = 0;
    int32_t cap = 4096, k = 0;
    int32_t *ids = malloc((size_t)cap * sizeof *ids);
    char *p = txt, *end;
    for (;;) {
        long v = strtol(p, &end, 10);
        if (end == p) break;
        if (k == cap) ids = realloc(ids, (size_t)(cap *= 2) * sizeof *ids);
        ids[k++] = (int32_t)v;
        p = end;
    }
    free(txt);
    *n = k;
    return ids;
}

static char *read_text(const char *name, size_t *len) {
    char *t = tu_read_file(tu_fixture(name), len);
    cr_assert_not_null(t, "missing fixture %s", name);
    t = realloc(t, *len + 1);
    t[*len] = 0;
    return t;
}

static double lse(const float *l, int32_t n) {
    double mx = -INFINITY, s = 0;
    for (int32_t i = 0; i < n; i++) mx = fmax(mx, l[i]);
    for (int32_t i = 0; i < n; i++) s += exp((double)l[i] - mx);
    return mx + log(s);
}

static void tokenizes_like_llama_cpp(void) {
    NEED_MODEL();
    size_t len;
    char *text = read_text(fx("text.txt"), &len);
    int32_t n_ref, n;
    int32_t *ref = read_ids(tu_fixture(fx("tokens.txt")), &n_ref);
    int32_t *ids = malloc((size_t)(n_ref + 64) * sizeof *ids);
    cr_assert_eq(lm_tokenize(model, text, len, true, false, ids, n_ref + 64, &n), LM_STATUS_OK, "%s", lm_last_error());
    cr_assert_eq(n, n_ref, "token count %d vs llama.cpp %d", n, n_ref);
    for (int32_t i = 0; i < n; i++) cr_assert_eq(ids[i], ref[i], "token %d: %d vs llama.cpp %d", i, ids[i], ref[i]);
    free(ids);
    free(ref);
    free(text);
}
Test(real_model, tokenizes_like_llama_cpp, .init = setup, .fini = teardown) { tokenizes_like_llama_cpp(); }
Test(real_smollm2, tokenizes_like_llama_cpp, .init = setup_smollm2, .fini = teardown) { tokenizes_like_llama_cpp(); }

typedef struct refrec {
    uint8_t *bin;
    uint32_t n_pos, V, K;
    size_t rec;
} refrec;

static void load_ref(const char *name, refrec *r) {
    size_t size;
    r->bin = tu_read_file(tu_fixture(name), &size);
    cr_assert_not_null(r->bin, "missing fixture %s", name);
    uint32_t hdr[4];
    cr_assert(size >= 20 && memcmp(r->bin, "LMRL", 4) == 0);
    memcpy(hdr, r->bin + 4, 16);
    cr_assert_eq(hdr[0], 1u);
    r->n_pos = hdr[1];
    r->V = hdr[2];
    r->K = hdr[3];
    r->rec = 8 + (size_t)r->K * 8;
    cr_assert_eq(size, 20 + r->rec * r->n_pos);
}

/* one position of a reference: lse, logit of the true next token, top-K ids and logits */
static void ref_at(const refrec *r, uint32_t p, float *lse_, float *next, const int32_t **ids, const float **l) {
    const uint8_t *b = r->bin + 20 + r->rec * p;
    memcpy(lse_, b, 4);
    memcpy(next, b + 4, 4);
    *ids = (const int32_t *)(b + 8);
    *l = (const float *)(b + 8 + 4 * r->K);
}

typedef struct agreement {
    double top1, kl_mean, kl_max, ppl, ppl_ref;
} agreement;

/* KL(ref || lumen) over {the reference's top-K tokens, the rest}; top-1; perplexities */
static void accumulate(const refrec *r, uint32_t p, const float *l, double my_lse, int32_t next_tok, agreement *a) {
    float ref_lse, ref_next;
    const int32_t *ids;
    const float *rl;
    ref_at(r, p, &ref_lse, &ref_next, &ids, &rl);
    int32_t best = 0;
    for (int32_t v = 1; v < (int32_t)r->V; v++)
        if (l[v] > l[best]) best = v;
    a->top1 += best == ids[0];
    double kl = 0, pr_top = 0, pl_top = 0;
    for (uint32_t k = 0; k < r->K; k++) {
        const double pr = exp((double)rl[k] - ref_lse), pl = exp((double)l[ids[k]] - my_lse);
        pr_top += pr;
        pl_top += pl;
        if (pr > 0) kl += pr * (log(pr) - log(pl));
    }
    const double tr = fmax(1.0 - pr_top, 0), tl = fmax(1.0 - pl_top, 1e-300);
    if (tr > 0) kl += tr * (log(tr) - log(tl));
    a->kl_mean += kl;
    a->kl_max = fmax(a->kl_max, kl);
    a->ppl -= (double)l[next_tok] - my_lse;
    a->ppl_ref -= (double)ref_next - ref_lse;
}

static void finish(agreement *a, uint32_t n) {
    a->top1 /= n;
    a->kl_mean /= n;
    a->ppl = exp(a->ppl / n);
    a->ppl_ref = exp(a->ppl_ref / n);
}

static double manifest_value(const char *key) {
    size_t len;
    char *m = read_text(fx("manifest.txt"), &len);
    const char *at = strstr(m, key);
    cr_assert_not_null(at, "manifest has no %s", key);
    const double v = strtod(at + strlen(key), NULL);
    free(m);
    return v;
}

/* Teacher-forced logits over ~1000 positions of real text in 128-token prefill chunks (crossing
 * the 512-token sliding window), against two references:
 *   - the exact model: HF transformers in float64 on the same GGUF weights. The bar
 *     (top-1 >= 99 %, mean KL <= 0.005, perplexity within 0.5 %) applies here.
 *   - llama.cpp: perplexity within 0.5 %. llama.cpp rounds activations to 8 bits and GELU to f16,
 *     which puts it itself at top-1 96.3 % / KL 0.0050 from the exact model on this text
 *     (manifest: llama_vs_hf_*), so lumen is required to agree with llama.cpp as well as the exact
 *     model does (KL within 20 % + 0.001 of llama.cpp's own, top-1 within 1 point). */
static void logits_match_exact_model_and_llama_cpp(void) {
    NEED_MODEL();
    int32_t n;
    int32_t *toks = read_ids(tu_fixture(fx("tokens.txt")), &n);
    refrec rl, rh;
    load_ref(fx("ref_logits.bin"), &rl);
    load_ref(fx("ref_hf.bin"), &rh);
    cr_assert_eq((int32_t)rl.n_pos, n - 1);
    cr_assert_eq(rh.n_pos, rl.n_pos);
    cr_assert_eq((int32_t)rl.V, lm_vocab_size(model));
    const uint32_t n_pos = rl.n_pos;
    lm_context_params cp = lm_context_default_params();
    cp.n_ctx = 1024;
    cp.n_batch = 128;
    cp.n_outputs_max = 128;
    lm_context *ctx;
    cr_assert_eq(lm_context_create(model, &cp, &ctx), LM_STATUS_OK, "%s", lm_last_error());
    lm_batch_entry e[128];
    agreement vs_hf = {0}, vs_lc = {0};
    for (uint32_t i = 0; i < n_pos; i += 128) {
        const int32_t b = (int32_t)(n_pos - i < 128 ? n_pos - i : 128);
        for (int32_t j = 0; j < b; j++) e[j] = (lm_batch_entry){toks[i + j], (int32_t)i + j, 0, true};
        cr_assert_eq(lm_context_decode(ctx, e, b), LM_STATUS_OK, "%s", lm_last_error());
        for (int32_t j = 0; j < b; j++) {
            const float *l = lm_context_logits(ctx, j);
            const double my_lse = lse(l, (int32_t)rl.V);
            accumulate(&rh, i + (uint32_t)j, l, my_lse, toks[i + j + 1], &vs_hf);
            accumulate(&rl, i + (uint32_t)j, l, my_lse, toks[i + j + 1], &vs_lc);
        }
    }
    finish(&vs_hf, n_pos);
    finish(&vs_lc, n_pos);
    const double lc_top1 = manifest_value("llama_vs_hf_top1 "), lc_kl = manifest_value("llama_vs_hf_kl ");
    fprintf(stderr,
            "real model, %u positions:\n"
            "  vs exact (HF float64): top-1 %.4f, mean KL %.6f (max %.4f), perplexity %.4f vs %.4f (%+.3f%%)\n"
            "  vs llama.cpp:          top-1 %.4f, mean KL %.6f (max %.4f), perplexity %.4f vs %.4f (%+.3f%%)\n"
            "  llama.cpp vs exact:    top-1 %.4f, mean KL %.6f\n",
            n_pos, vs_hf.top1, vs_hf.kl_mean, vs_hf.kl_max, vs_hf.ppl, vs_hf.ppl_ref, 100.0 * (vs_hf.ppl / vs_hf.ppl_ref - 1),
            vs_lc.top1, vs_lc.kl_mean, vs_lc.kl_max, vs_lc.ppl, vs_lc.ppl_ref, 100.0 * (vs_lc.ppl / vs_lc.ppl_ref - 1), lc_top1,
            lc_kl);
    cr_expect_geq(vs_hf.top1, 0.99, "top-1 agreement with the exact model %.4f < 0.99", vs_hf.top1);
    cr_expect_leq(vs_hf.kl_mean, 0.005, "mean KL to the exact model %.6f > 0.005", vs_hf.kl_mean);
    cr_expect_leq(fabs(vs_hf.ppl / vs_hf.ppl_ref - 1.0), 0.005, "perplexity %.4f vs exact %.4f", vs_hf.ppl, vs_hf.ppl_ref);
    cr_expect_leq(fabs(vs_lc.ppl / vs_lc.ppl_ref - 1.0), 0.005, "perplexity %.4f vs llama.cpp %.4f", vs_lc.ppl, vs_lc.ppl_ref);
    cr_expect_leq(vs_lc.kl_mean, 1.2 * lc_kl + 0.001, "KL to llama.cpp %.6f, llama.cpp to the exact model %.6f", vs_lc.kl_mean, lc_kl);
    cr_expect_geq(vs_lc.top1, lc_top1 - 0.01, "top-1 with llama.cpp %.4f, llama.cpp with the exact model %.4f", vs_lc.top1, lc_top1);
    lm_context_free(ctx);
    free(rl.bin);
    free(rh.bin);
    free(toks);
}
Test(real_model, logits_match_exact_model_and_llama_cpp, .init = setup, .fini = teardown, .timeout = 1200) { logits_match_exact_model_and_llama_cpp(); }
Test(real_smollm2, logits_match_exact_model_and_llama_cpp, .init = setup_smollm2, .fini = teardown, .timeout = 1200) { logits_match_exact_model_and_llama_cpp(); }

/* Teacher-forced logits through the decode path: one token per step, so every matmul runs as dot
 * products (with AVX2 / AVX-512 VNNI: q8s activations, the 8-bit plane by default, both planes
 * with LUMEN_CPU_ACT=q8x2; act NULL = the default). */
static agreement decode_agreement(const char *act, const int32_t *toks, const refrec *rh, uint32_t n_pos) {
    if (act) setenv("LUMEN_CPU_ACT", act, 1);
    lm_model_params mp = lm_model_default_params();
    mp.n_threads = 2;
    lm_model *m;
    const lm_status st = lm_model_load(rpath(), &mp, &m);
    unsetenv("LUMEN_CPU_ACT");
    cr_assert_eq(st, LM_STATUS_OK, "%s", lm_last_error());
    lm_context_params cp = lm_context_default_params();
    cp.n_ctx = 1024;
    lm_context *ctx;
    cr_assert_eq(lm_context_create(m, &cp, &ctx), LM_STATUS_OK, "%s", lm_last_error());
    agreement a = {0};
    for (uint32_t i = 0; i < n_pos; i++) {
        lm_batch_entry e = {toks[i], (int32_t)i, 0, true};
        cr_assert_eq(lm_context_decode(ctx, &e, 1), LM_STATUS_OK, "%s", lm_last_error());
        const float *l = lm_context_logits(ctx, 0);
        accumulate(rh, i, l, lse(l, (int32_t)rh->V), toks[i + 1], &a);
    }
    finish(&a, n_pos);
    lm_context_free(ctx);
    lm_model_free(m);
    return a;
}

/* The decode path's accuracy on the same text. The default (8-bit activations where the CPU has
 * the dots; the FFN down projections' heavy-tailed inputs keep both planes, see LM_MM_X_OUTLIERS)
 * must be closer to the exact model than llama.cpp, whose activations are 8-bit everywhere (its
 * KL and top-1 over the whole text, from the manifest), with perplexity within 0.5 % of exact;
 * LUMEN_CPU_ACT=q8x2 (~16-bit) meets the prefill test's exact-model margins (KL <= 1e-4, top-1
 * >= 99 %) on the first 256 positions. */
static void decode_path_accuracy(void) {
    NEED_MODEL();
    int32_t n;
    int32_t *toks = read_ids(tu_fixture(fx("tokens.txt")), &n);
    refrec rh;
    load_ref(fx("ref_hf.bin"), &rh);
    const uint32_t n_pos = rh.n_pos;
    /* the two-plane run checks exactness on the first 256 positions (CI time under ASan) */
    const uint32_t n_x2 = n_pos < 256 ? n_pos : 256;
    const agreement a8 = decode_agreement(NULL, toks, &rh, n_pos), ad = decode_agreement("q8x2", toks, &rh, n_x2);
    const double lc_kl = manifest_value("llama_vs_hf_kl "), lc_top1 = manifest_value("llama_vs_hf_top1 ");
    fprintf(stderr,
            "decode path vs exact (HF float64), %u positions (q8x2: the first %u):\n"
            "  LUMEN_CPU_ACT=q8x2:     top-1 %.4f, mean KL %.7f (max %.5f), perplexity %.4f vs %.4f\n"
            "  default activations:    top-1 %.4f, mean KL %.6f (max %.4f), perplexity %.4f vs %.4f\n"
            "  llama.cpp (prefill):    top-1 %.4f, mean KL %.6f\n",
            n_pos, n_x2, ad.top1, ad.kl_mean, ad.kl_max, ad.ppl, ad.ppl_ref, a8.top1, a8.kl_mean, a8.kl_max, a8.ppl, a8.ppl_ref,
            lc_top1, lc_kl);
    cr_expect_leq(ad.kl_mean, 1e-4, "two-plane decode KL to the exact model %.7f", ad.kl_mean);
    cr_expect_geq(ad.top1, 0.99, "two-plane decode top-1 agreement %.4f", ad.top1);
    cr_expect_leq(fabs(ad.ppl / ad.ppl_ref - 1.0), 0.005, "two-plane decode perplexity %.4f vs exact %.4f", ad.ppl, ad.ppl_ref);
    cr_expect_leq(a8.kl_mean, lc_kl, "8-bit decode KL to the exact model %.6f > llama.cpp's %.6f", a8.kl_mean, lc_kl);
    cr_expect_geq(a8.top1, lc_top1, "8-bit decode top-1 agreement %.4f < llama.cpp's %.4f", a8.top1, lc_top1);
    cr_expect_leq(fabs(a8.ppl / a8.ppl_ref - 1.0), 0.005, "8-bit decode perplexity %.4f vs exact %.4f", a8.ppl, a8.ppl_ref);
    free(rh.bin);
    free(toks);
}
Test(real_model, decode_path_accuracy, .init = setup, .fini = teardown, .timeout = 1200) { decode_path_accuracy(); }
Test(real_smollm2, decode_path_accuracy, .init = setup_smollm2, .fini = teardown, .timeout = 1200) { decode_path_accuracy(); }

/* Largest |llama.cpp logit - exact logit| on the exact model's two best tokens at any position:
 * an ordering flip between two candidates closer than this is within llama.cpp's own error. */
static double llama_error_on_top2(void) {
    refrec rl, rh;
    load_ref(fx("ref_logits.bin"), &rl);
    load_ref(fx("ref_hf.bin"), &rh);
    double worst = 0;
    for (uint32_t p = 0; p < rh.n_pos; p++) {
        float a, b, c, d;
        const int32_t *hid, *lid;
        const float *hl, *ll;
        ref_at(&rh, p, &a, &b, &hid, &hl);
        ref_at(&rl, p, &c, &d, &lid, &ll);
        for (int k = 0; k < 2; k++)
            for (uint32_t j = 0; j < rl.K; j++)
                if (lid[j] == hid[k]) {
                    worst = fmax(worst, fabs((double)ll[j] - (double)hl[k]));
                    break;
                }
    }
    free(rl.bin);
    free(rh.bin);
    return worst;
}

typedef struct greedy_ref {
    int32_t pt[256], np, ref[64], nr;
    double margin[64];
} greedy_ref;

static int read_greedy(const char *name, greedy_ref *out, int max) {
    size_t len;
    char *g = read_text(name, &len);
    char *save = NULL;
    int k = 0;
    for (char *line = strtok_r(g, "\n", &save); line && k < max; line = strtok_r(NULL, "\n", &save), k++) {
        greedy_ref *r = &out[k];
        cr_assert(strncmp(line, "prompt ", 7) == 0);
        r->np = r->nr = 0;
        for (char *p = line + 7, *end; r->np < 256; p = end) {
            long v = strtol(p, &end, 10);
            if (end == p) break;
            r->pt[r->np++] = (int32_t)v;
        }
        line = strtok_r(NULL, "\n", &save);
        for (char *p = line + 7, *end; r->nr < 64; p = end) {
            long v = strtol(p, &end, 10);
            if (end == p) break;
            r->ref[r->nr++] = (int32_t)v;
        }
        line = strtok_r(NULL, "\n", &save);
        char *p = line + 7;
        for (int i = 0; i < r->nr; i++) r->margin[i] = strtod(p, &p);
    }
    free(g);
    return k;
}

/* Greedy continuations of 3 prompts. Against the exact model: identical, or the first divergence
 * is a tie within lumen's numerical noise (exact top-2 margin < 0.05). Against llama.cpp: the first
 * divergence (if any) is a near-tie, i.e. lumen's gap between its token and llama.cpp's token is
 * within llama.cpp's own logit error on this text. */
static void greedy_matches_or_diverges_at_near_ties(void) {
    NEED_MODEL();
    greedy_ref lc[3], hf[3];
    cr_assert_eq(read_greedy(fx("greedy.txt"), lc, 3), 3);
    cr_assert_eq(read_greedy(fx("greedy_hf.txt"), hf, 3), 3);
    const double tie = llama_error_on_top2();
    fprintf(stderr, "llama.cpp's largest logit error on the exact model's top-2 tokens: %.4f\n", tie);
    lm_context_params cp = lm_context_default_params();
    cp.n_ctx = 256;
    lm_context *ctx;
    cr_assert_eq(lm_context_create(model, &cp, &ctx), LM_STATUS_OK, "%s", lm_last_error());
    for (int k = 0; k < 3; k++) {
        cr_assert_eq(lc[k].np, hf[k].np);
        lm_context_seq_clear(ctx, 0);
        lm_batch_entry e[256];
        for (int32_t i = 0; i < lc[k].np; i++) e[i] = (lm_batch_entry){lc[k].pt[i], i, 0, i == lc[k].np - 1};
        cr_assert_eq(lm_context_decode(ctx, e, lc[k].np), LM_STATUS_OK, "%s", lm_last_error());
        int div_hf = -1, div_lc = -1;
        for (int s = 0; s < lc[k].nr; s++) {
            const float *l = lm_context_logits(ctx, 0);
            int32_t best = 0;
            for (int32_t v = 1; v < lm_vocab_size(model); v++)
                if (l[v] > l[best]) best = v;
            if (div_hf < 0 && best != hf[k].ref[s]) {
                div_hf = s;
                fprintf(stderr, "prompt %d: diverges from the exact model at step %d (exact top-2 margin %.4f)\n", k, s,
                        hf[k].margin[s]);
                cr_expect_lt(hf[k].margin[s], 0.05, "prompt %d step %d: not a tie in the exact model (%.4f)", k, s, hf[k].margin[s]);
            }
            if (div_lc < 0 && best != lc[k].ref[s]) {
                div_lc = s;
                const double gap = (double)l[best] - (double)l[lc[k].ref[s]];
                fprintf(stderr, "prompt %d: diverges from llama.cpp at step %d: lumen's gap %.4f, llama.cpp's margin %.4f\n", k,
                        s, gap, lc[k].margin[s]);
                cr_expect_lt(gap, tie, "prompt %d step %d: lumen prefers its token by %.4f, more than llama.cpp's error %.4f", k,
                             s, gap, tie);
            }
            if (div_hf >= 0 && div_lc >= 0) break;
            lm_batch_entry d = {best, lc[k].np + s, 0, true};
            cr_assert_eq(lm_context_decode(ctx, &d, 1), LM_STATUS_OK, "%s", lm_last_error());
        }
        if (div_hf < 0) fprintf(stderr, "prompt %d: all %d greedy tokens identical to the exact model\n", k, hf[k].nr);
        if (div_lc < 0) fprintf(stderr, "prompt %d: all %d greedy tokens identical to llama.cpp\n", k, lc[k].nr);
    }
    lm_context_free(ctx);
}
Test(real_model, greedy_matches_or_diverges_at_near_ties, .init = setup, .fini = teardown, .timeout = 600) { greedy_matches_or_diverges_at_near_ties(); }
Test(real_smollm2, greedy_matches_or_diverges_at_near_ties, .init = setup_smollm2, .fini = teardown, .timeout = 600) { greedy_matches_or_diverges_at_near_ties(); }

/* `lumen perplexity` on the real-text fixture (one 1024-token chunk) with KV type `kv` */
static double cli_perplexity(const char *kv) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s/lumen perplexity -m '%s' -f '%s' -c 1024 -t 2 --kv %s --quiet 2>/dev/null", LUMEN_BINARY_DIR,
             rpath(), tu_fixture(fx("text.txt")), kv);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    char line[512];
    double ppl = -1;
    while (fgets(line, sizeof line, p))
        if (strncmp(line, "perplexity: ", 12) == 0) ppl = strtod(line + 12, NULL);
    cr_assert_eq(pclose(p), 0, "lumen perplexity --kv %s failed", kv);
    return ppl;
}

/* The CLI's perplexity line end to end, against llama.cpp's on the same text; and the 8-bit KV
 * caches cost at most 1 % perplexity against f16 (measured: q8_0 +0.6 %, fp8 -0.02 %). One test
 * so the f16 run serves both checks. */
static void perplexity_cli_and_quantized_kv(void) {
    NEED_MODEL();
    const double ppl = cli_perplexity("f16");
    size_t len;
    char *m = read_text(fx("manifest.txt"), &len);
    const char *at = strstr(m, "perplexity ");
    cr_assert_not_null(at);
    const double ref = strtod(at + 11, NULL);
    fprintf(stderr, "lumen perplexity CLI: %.4f, llama.cpp %.4f\n", ppl, ref);
    cr_assert(ppl > 0 && fabs(ppl / ref - 1.0) < 0.005, "CLI perplexity %.4f vs llama.cpp %.4f", ppl, ref);
    free(m);
    const double q8 = cli_perplexity("q8_0"), f8 = cli_perplexity("fp8");
    fprintf(stderr, "%s perplexity by KV type: f16 %.4f, q8_0 %.4f (%+.2f %%), fp8 %.4f (%+.2f %%)\n", rname, ppl, q8,
            100.0 * (q8 / ppl - 1.0), f8, 100.0 * (f8 / ppl - 1.0));
    cr_expect(q8 > 0 && fabs(q8 / ppl - 1.0) <= 0.01, "q8_0 KV perplexity %.4f vs f16 %.4f", q8, ppl);
    /* the 1 % bound is for Gemma 3 270M; SmolLM2's keys lose more in plain (unscaled)
       E4M3: measured +1.19 %, bounded at 2 % (a per-vector scale would be the fix) */
    const double f8_bound = strcmp(rdir, "real") ? 0.02 : 0.01;
    cr_expect(f8 > 0 && fabs(f8 / ppl - 1.0) <= f8_bound, "fp8 KV perplexity %.4f vs f16 %.4f", f8, ppl);
}
Test(real_model, perplexity_cli_and_quantized_kv, .init = setup, .fini = teardown, .timeout = 900) { perplexity_cli_and_quantized_kv(); }
Test(real_smollm2, perplexity_cli_and_quantized_kv, .init = setup_smollm2, .fini = teardown, .timeout = 900) { perplexity_cli_and_quantized_kv(); }

/* `lumen chat` over two turns: the second turn reuses the cache of the first (its prompt and the
 * reply, rolled back only where the template renders the reply differently) and processes only
 * the new tokens. */
Test(real_model, chat_second_turn_processes_only_new_tokens, .init = setup, .fini = teardown, .timeout = 300) {
    NEED_MODEL();
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "printf 'What is the capital of France?\\nAnd the capital of Italy?\\n' | %s/lumen chat -m '%s' -n 24 --temp 0 "
             "-t 2 -c 1024 2>&1 >/dev/null",
             LUMEN_BINARY_DIR, tu_real_model_path());
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    char line[1024];
    int turns = 0, fresh[2] = {0}, cached[2] = {0}, gen[2] = {0};
    while (fgets(line, sizeof line, p)) {
        const char *at = strstr(line, "new prompt tokens (");
        if (!at || turns >= 2) continue;
        const char *b = strrchr(line, '[');
        cr_assert_not_null(b);
        fresh[turns] = atoi(b + 1);
        cached[turns] = atoi(at + strlen("new prompt tokens ("));
        const char *g = strstr(line, " s, ");
        cr_assert_not_null(g);
        gen[turns] = atoi(g + 4);
        turns++;
    }
    cr_assert_eq(pclose(p), 0, "lumen chat failed");
    cr_assert_eq(turns, 2, "expected two turns");
    fprintf(stderr, "chat: turn 1 %d prompt tokens, %d generated; turn 2 %d new, %d cached (turn 1 held %d)\n", fresh[0], gen[0],
            fresh[1], cached[1], fresh[0] + gen[0]);
    cr_expect_eq(cached[0], 0);
    cr_expect_gt(gen[0], 0);
    /* all of turn 1's prompt is reused, and the reply up to where the template differs */
    cr_expect_geq(cached[1], fresh[0], "turn 2 reprocessed turn 1's prompt");
    cr_expect_leq(cached[1], fresh[0] + gen[0]);
    /* what turn 2 processes: at most the reply's re-rendered tail and the new user message with
       its template markup (fewer tokens than turn 1's whole prompt plus its reply) */
    cr_expect_gt(fresh[1], 0);
    cr_expect_lt(fresh[1], fresh[0] + gen[0], "turn 2 processed %d tokens", fresh[1]);
}

/* The sliding layers' KV cache, measured from the context's allocations, is the same at every
 * context length (rings of window - 1 + n_batch cells); the global layers' grows with n_ctx,
 * exactly n_ctx cells. Gemma 3 270M: 15 sliding + 3 global layers, 1 KV head of 256, f16. */
Test(real_model, sliding_kv_constant_in_context, .init = setup, .fini = teardown, .timeout = 300) {
    NEED_MODEL();
    const uint32_t ctxs[] = {1024, 8192, 32768, 131072};
    uint64_t swa0 = 0;
    fprintf(stderr, "| n_ctx | sliding KV | global KV |\n|---:|---:|---:|\n");
    for (int i = 0; i < 4; i++) {
        lm_context_params cp = lm_context_default_params();
        cp.n_ctx = ctxs[i];
        lm_context *c;
        cr_assert_eq(lm_context_create(model, &cp, &c), LM_STATUS_OK, "%s", lm_last_error());
        lm_context_memory mem;
        cr_assert_eq(lm_context_get_memory(c, &mem), LM_STATUS_OK);
        lm_context_free(c);
        fprintf(stderr, "| %u | %.2f MiB | %.2f MiB |\n", ctxs[i], mem.kv_sliding / 1048576.0, mem.kv_full / 1048576.0);
        const uint64_t ring = 1024; /* pad32(512 - 1 + 512) cells */
        cr_expect_eq(mem.kv_sliding, 15ull * ring * 2 * 256 * 2, "sliding KV at %u", ctxs[i]);
        cr_expect_eq(mem.kv_full, 3ull * ctxs[i] * 2 * 256 * 2, "global KV at %u", ctxs[i]);
        if (i == 0) swa0 = mem.kv_sliding;
        cr_expect_eq(mem.kv_sliding, swa0);
        cr_expect_gt(mem.compute, 0);
        cr_expect_eq(mem.kv_host, 0);
    }
}
