/*
 * sampler.c — token sampling on host logits: repetition / presence / frequency penalties over a
 * window of recent tokens, temperature, top-k, top-p, min-p, and a seeded PRNG. temperature 0
 * is greedy argmax (first index on ties). Order: penalties -> top-k -> temperature -> softmax ->
 * top-p -> min-p -> draw, as llama.cpp's default chain applies them.
 *
 * Candidate selection avoids sorting the whole vocabulary: with top-k the k best are kept in a
 * heap; without it, candidates below max - 30 (in temperature-scaled logit units, e^-30 of the
 * top probability) are dropped before sorting, which cannot change top-p/min-p results beyond
 * 1e-13 of probability mass.
 */
#include "common.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct cand { float logit; int32_t id; } cand;

struct lm_sampler {
    lm_sampler_params p;
    int32_t n_vocab;
    uint64_t rng;
    int32_t *recent; /* ring of the last penalty_last_n tokens */
    int32_t n_recent, recent_at;
    int32_t *counts; /* occurrences in the window, per token */
    cand *cands;     /* [n_vocab] */
    double *probs;   /* [n_vocab] */
};

lm_sampler_params lm_sampler_default_params(void) {
    return (lm_sampler_params){.temperature = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f, .repeat_penalty = 1.0f,
                               .penalty_last_n = 64, .presence_penalty = 0.0f, .frequency_penalty = 0.0f, .seed = 0};
}

lm_status lm_sampler_create(const lm_sampler_params *params, int32_t n_vocab, lm_sampler **out) {
    lm_clear_error();
    if (!out || n_vocab < 1) return lm_fail(LM_STATUS_INVALID_ARGUMENT, "lm_sampler_create: bad arguments");
    *out = NULL;
    lm_sampler_params p = params ? *params : lm_sampler_default_params();
    if (!(p.temperature >= 0) || !(p.top_p > 0 && p.top_p <= 1) || !(p.min_p >= 0 && p.min_p <= 1) || p.top_k < 0 ||
        !(p.repeat_penalty > 0) || p.penalty_last_n < 0 || !isfinite(p.presence_penalty) || !isfinite(p.frequency_penalty))
        return lm_fail(LM_STATUS_INVALID_ARGUMENT,
                       "sampler: temperature >= 0, 0 < top_p <= 1, 0 <= min_p <= 1, top_k >= 0, repeat_penalty > 0 required");
    lm_sampler *s = calloc(1, sizeof *s);
    if (!s) return lm_fail(LM_STATUS_OUT_OF_MEMORY, "out of memory");
    s->p = p;
    s->n_vocab = n_vocab;
    s->recent = malloc((size_t)(p.penalty_last_n > 0 ? p.penalty_last_n : 1) * sizeof(int32_t));
    s->counts = calloc((size_t)n_vocab, sizeof(int32_t));
    s->cands = malloc((size_t)n_vocab * sizeof(cand));
    s->probs = malloc((size_t)n_vocab * sizeof(double));
    if (!s->recent || !s->counts || !s->cands || !s->probs) {
        lm_sampler_free(s);
        return lm_fail(LM_STATUS_OUT_OF_MEMORY, "out of memory");
    }
    lm_sampler_reset(s);
    *out = s;
    return LM_STATUS_OK;
}

void lm_sampler_free(lm_sampler *s) {
    if (!s) return;
    free(s->recent);
    free(s->counts);
    free(s->cands);
    free(s->probs);
    free(s);
}

void lm_sampler_reset(lm_sampler *s) {
    if (!s) return;
    s->rng = s->p.seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
    if (s->rng == 0) s->rng = 1;
    s->n_recent = s->recent_at = 0;
    memset(s->counts, 0, (size_t)s->n_vocab * sizeof(int32_t));
}

void lm_sampler_accept(lm_sampler *s, lm_token t) {
    if (!s || s->p.penalty_last_n == 0 || t < 0 || t >= s->n_vocab) return;
    if (s->n_recent == s->p.penalty_last_n) {
        s->counts[s->recent[s->recent_at]]--;
    } else {
        s->n_recent++;
    }
    s->recent[s->recent_at] = t;
    s->counts[t]++;
    s->recent_at = (s->recent_at + 1) % s->p.penalty_last_n;
}

static double uniform(lm_sampler *s) {
    uint64_t x = s->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    s->rng = x;
    return (double)((x * 0x2545F4914F6CDD1Dull) >> 11) * (1.0 / 9007199254740992.0);
}

static int cmp_cand(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->logit != y->logit) return x->logit > y->logit ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static inline bool worse(cand a, cand b) { return a.logit < b.logit || (a.logit == b.logit && a.id > b.id); }

static void heap_down(cand *h, int n, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && worse(h[l], h[w])) w = l;
        if (r < n && worse(h[r], h[w])) w = r;
        if (w == i) return;
        cand t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

static float penalized(const lm_sampler *s, const float *logits, int32_t i) {
    float l = logits[i];
    if (isnan(l)) return -INFINITY;
    const int32_t c = s->counts[i];
    if (c > 0) {
        if (s->p.repeat_penalty != 1.0f) l = l > 0 ? l / s->p.repeat_penalty : l * s->p.repeat_penalty;
        l -= s->p.presence_penalty + (float)c * s->p.frequency_penalty;
    }
    return l;
}

lm_token lm_sampler_sample(lm_sampler *s, const float *logits) {
    if (!s || !logits) return -1;
    const int32_t V = s->n_vocab;
    if (s->p.temperature == 0.0f) {
        int32_t best = 0;
        float bv = penalized(s, logits, 0);
        for (int32_t i = 1; i < V; i++) {
            float v = penalized(s, logits, i);
            if (v > bv) {
                bv = v;
                best = i;
            }
        }
        return best;
    }
    cand *c = s->cands;
    int32_t n = 0;
    if (s->p.top_k > 0 && s->p.top_k < V) {
        const int k = s->p.top_k;
        for (int32_t i = 0; i < V; i++) {
            cand x = {penalized(s, logits, i), i};
            if (n < k) {
                c[n++] = x;
                if (n == k)
                    for (int j = k / 2 - 1; j >= 0; j--) heap_down(c, k, j);
            } else if (worse(c[0], x)) {
                c[0] = x;
                heap_down(c, k, 0);
            }
        }
    } else {
        float mx = -INFINITY;
        for (int32_t i = 0; i < V; i++) {
            c[i] = (cand){penalized(s, logits, i), i};
            if (c[i].logit > mx) mx = c[i].logit;
        }
        const float cut = mx - 30.0f * s->p.temperature;
        for (int32_t i = 0; i < V; i++)
            if (c[i].logit >= cut) c[n++] = c[i];
    }
    qsort(c, (size_t)n, sizeof(cand), cmp_cand);
    if (n == 0 || c[0].logit == -INFINITY) return c[0].id;
    /* softmax at temperature */
    double sum = 0;
    double *pr = s->probs;
    for (int32_t i = 0; i < n; i++) {
        pr[i] = exp(((double)c[i].logit - (double)c[0].logit) / (double)s->p.temperature);
        sum += pr[i];
    }
    for (int32_t i = 0; i < n; i++) pr[i] /= sum;
    /* top-p: smallest prefix with mass >= top_p */
    int32_t keep = n;
    if (s->p.top_p < 1.0f) {
        double cum = 0;
        for (int32_t i = 0; i < n; i++) {
            cum += pr[i];
            if (cum >= s->p.top_p) {
                keep = i + 1;
                break;
            }
        }
    }
    /* min-p: drop tokens below min_p * p(top) */
    if (s->p.min_p > 0) {
        int32_t k2 = 0;
        while (k2 < keep && pr[k2] >= (double)s->p.min_p * pr[0]) k2++;
        keep = k2 > 0 ? k2 : 1;
    }
    double tot = 0;
    for (int32_t i = 0; i < keep; i++) tot += pr[i];
    double r = uniform(s) * tot;
    lm_token out = c[keep - 1].id;
    for (int32_t i = 0; i < keep; i++) {
        r -= pr[i];
        if (r < 0) {
            out = c[i].id;
            break;
        }
    }
    return out;
}
