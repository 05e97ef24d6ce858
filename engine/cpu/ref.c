/*
 * ref.c — the reference implementation of every op: plain scalar C, one thread, double
 * accumulators, no fast-math. This is the numerical specification that the CPU fast path, CUDA
 * and Vulkan are checked against in the op-conformance suite. Clarity over speed.
 */
#include "cpu.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

double lm_cpu_get(const lm_tensor *t, int64_t i0, int64_t i1, int64_t i2, int64_t i3) {
    const char *p = (const char *)lm_tensor_row(t, i1, i2, i3);
    switch (t->type) {
    case LM_F32: { float v; memcpy(&v, p + 4 * i0, 4); return v; }
    case LM_F16: { uint16_t v; memcpy(&v, p + 2 * i0, 2); return lm_f16_to_f32(v); }
    case LM_BF16: { uint16_t v; memcpy(&v, p + 2 * i0, 2); return lm_bf16_to_f32(v); }
    case LM_I32: { int32_t v; memcpy(&v, p + 4 * i0, 4); return v; }
    case LM_E4M3: return lm_e4m3_to_f32((uint8_t)p[i0]);
    case LM_Q8_0: { /* the quantized KV cache: x = d * q */
        const lm_block_q8_0 *b = (const lm_block_q8_0 *)p + i0 / LM_QK8_0;
        return (double)lm_f16_to_f32(b->d) * b->qs[i0 % LM_QK8_0];
    }
    default: LM_ASSERT(!"lm_cpu_get: unsupported type"); return 0;
    }
}

static int32_t geti(const lm_tensor *t, int64_t i0, int64_t i1) {
    int32_t v;
    memcpy(&v, (const char *)lm_tensor_row(t, i1, 0, 0) + 4 * i0, 4);
    return v;
}

static void setf(lm_tensor *t, int64_t i0, int64_t i1, int64_t i2, int64_t i3, double v) {
    char *p = (char *)lm_tensor_row(t, i1, i2, i3);
    switch (t->type) {
    case LM_F32: { float f = (float)v; memcpy(p + 4 * i0, &f, 4); break; }
    case LM_F16: { uint16_t h = lm_f32_to_f16((float)v); memcpy(p + 2 * i0, &h, 2); break; }
    case LM_BF16: { uint16_t h = lm_f32_to_bf16((float)v); memcpy(p + 2 * i0, &h, 2); break; }
    case LM_I32: { int32_t x = (int32_t)v; memcpy(p + 4 * i0, &x, 4); break; }
    case LM_E4M3: p[i0] = (char)lm_f32_to_e4m3((float)v); break;
    default: LM_ASSERT(!"setf: unsupported type");
    }
}

/* Dequantize row (i1, i2, i3) of any tensor into out[ne0]. */
static void row_f32(const lm_tensor *t, int64_t i1, int64_t i2, int64_t i3, float *out) {
    lm_dequant_row(t->type, lm_tensor_row(t, i1, i2, i3), out, t->ne[0]);
}

#define FOR_ROWS(t)                                                                                \
    for (int64_t i3 = 0; i3 < (t)->ne[3]; i3++)                                                    \
        for (int64_t i2 = 0; i2 < (t)->ne[2]; i2++)                                                \
            for (int64_t i1 = 0; i1 < (t)->ne[1]; i1++)

/* ---------------------------------------------------------------------------------------- */

static void get_rows(const lm_node *n) {
    const lm_tensor *tab = n->src[0], *ids = n->src[1];
    float *row = malloc((size_t)tab->ne[0] * sizeof(float));
    for (int64_t i = 0; i < ids->ne[0]; i++) {
        int32_t r = geti(ids, i, 0);
        LM_ASSERT(r >= 0 && r < tab->ne[1]);
        row_f32(tab, r, 0, 0, row);
        for (int64_t j = 0; j < tab->ne[0]; j++) setf(n->dst, j, i, 0, 0, (double)row[j] * (double)n->fp[0]);
    }
    free(row);
}

static void set_rows(const lm_node *n) {
    const lm_tensor *src = n->src[0], *idx = n->src[1];
    float *row = malloc((size_t)src->ne[0] * sizeof(float));
    for (int64_t i = 0; i < src->ne[1]; i++) {
        int32_t r = geti(idx, i, 0);
        LM_ASSERT(r >= 0 && r < n->dst->ne[1]);
        if (n->dst->type == LM_Q8_0) { /* blocks of 32 are quantized together */
            for (int64_t j = 0; j < src->ne[0]; j++) row[j] = (float)lm_cpu_get(src, j, i, 0, 0);
            lm_quant_row_q8_0(row, lm_tensor_row(n->dst, r, 0, 0), src->ne[0]);
            continue;
        }
        for (int64_t j = 0; j < src->ne[0]; j++) setf(n->dst, j, r, 0, 0, lm_cpu_get(src, j, i, 0, 0));
    }
    free(row);
}

static void rms_norm(const lm_node *n) {
    const lm_tensor *x = n->src[0], *w = n->src[1], *res = n->src[2];
    const int64_t d = x->ne[0];
    FOR_ROWS(x) {
        double ss = 0;
        for (int64_t j = 0; j < d; j++) {
            double v = lm_cpu_get(x, j, i1, i2, i3);
            ss += v * v;
        }
        double inv = 1.0 / sqrt(ss / (double)d + (double)n->fp[0]);
        for (int64_t j = 0; j < d; j++) {
            double v = lm_cpu_get(x, j, i1, i2, i3) * inv;
            if (w) v *= lm_cpu_get(w, j, 0, 0, 0);
            if (res) v += lm_cpu_get(res, j, i1, i2, i3);
            setf(n->dst, j, i1, i2, i3, v);
        }
    }
}

static void matmul(const lm_node *n) {
    const lm_tensor *w = n->src[0], *x = n->src[1];
    const int64_t k = w->ne[0];
    float *row = malloc((size_t)k * sizeof(float));
    for (int64_t m = 0; m < w->ne[1]; m++) {
        row_f32(w, m, 0, 0, row);
        for (int64_t c = 0; c < x->ne[1]; c++) {
            double acc = 0;
            for (int64_t j = 0; j < k; j++) acc += (double)row[j] * lm_cpu_get(x, j, c, 0, 0);
            setf(n->dst, m, c, 0, 0, acc);
        }
    }
    free(row);
}

static void matmul_id(const lm_node *n) {
    const lm_tensor *w = n->src[0], *x = n->src[1], *ids = n->src[2];
    const int64_t k = w->ne[0];
    float *row = malloc((size_t)k * sizeof(float));
    for (int64_t t = 0; t < ids->ne[1]; t++) {
        for (int64_t j = 0; j < ids->ne[0]; j++) {
            int32_t e = geti(ids, j, t);
            LM_ASSERT(e >= 0 && e < w->ne[2]);
            int64_t xj = x->ne[1] == 1 ? 0 : j;
            for (int64_t m = 0; m < w->ne[1]; m++) {
                row_f32(w, m, e, 0, row);
                double acc = 0;
                for (int64_t i = 0; i < k; i++) acc += (double)row[i] * lm_cpu_get(x, i, xj, t, 0);
                setf(n->dst, m, j, t, 0, acc);
            }
        }
    }
    free(row);
}

/* Inverse frequency of pair i (double), or 0 for pairs that do not rotate. */
static double rope_freq(const lm_rope_params *rp, const lm_tensor *factors, int64_t i) {
    if (i >= rp->n_pairs) return 0.0;
    double f = (double)rp->freq_scale * pow((double)rp->theta, -2.0 * (double)i / (double)rp->freq_dim);
    if (factors) f /= lm_cpu_get(factors, i, 0, 0, 0);
    return f;
}

/* Rotate one head vector v[d] (double) in place for position p. */
static void rope_vec(double *v, int64_t d, double p, const lm_rope_params *rp, const lm_tensor *factors) {
    for (int64_t i = 0; i < d / 2; i++) {
        double a = p * rope_freq(rp, factors, i);
        double c = cos(a), s = sin(a);
        int64_t i0 = rp->mode == LM_ROPE_NEOX ? i : 2 * i;
        int64_t i1 = rp->mode == LM_ROPE_NEOX ? i + d / 2 : 2 * i + 1;
        double x0 = v[i0], x1 = v[i1];
        v[i0] = x0 * c - x1 * s;
        v[i1] = x1 * c + x0 * s;
    }
}

static void rope(const lm_node *n) {
    const lm_tensor *x = n->src[0], *pos = n->src[1], *factors = n->src[2];
    lm_rope_params rp = lm_node_rope_unpack(n, 0, 0);
    const int64_t d = x->ne[0];
    double *v = malloc((size_t)d * sizeof(double));
    for (int64_t t = 0; t < x->ne[2]; t++)
        for (int64_t h = 0; h < x->ne[1]; h++) {
            for (int64_t j = 0; j < d; j++) v[j] = lm_cpu_get(x, j, h, t, 0);
            rope_vec(v, d, (double)geti(pos, t, 0), &rp, factors);
            for (int64_t j = 0; j < d; j++) setf(n->dst, j, h, t, 0, v[j]);
        }
    free(v);
}

static void attention(const lm_node *n) {
    const lm_tensor *q = n->src[0], *k = n->src[1], *v = n->src[2], *cell_pos = n->src[3];
    const lm_tensor *pos = n->src[4], *seq = n->src[5], *k_norm = n->src[6], *factors = n->src[7], *pages = n->src[8];
    lm_attn_params ap = lm_node_attn_unpack(n);
    const int64_t dk = q->ne[0], dv = v->ne[0], H = q->ne[1], Hkv = k->ne[1], cps = ap.cells_per_seq;
    const int64_t n_seq = pages->ne[1], n_pages = k->ne[2] / ap.page;
    int64_t *cell = malloc((size_t)cps * sizeof(int64_t)); /* physical cell of each logical cell */
    double *kv = malloc((size_t)dk * sizeof(double));
    double *s = malloc((size_t)cps * sizeof(double));
    double *acc = malloc((size_t)dv * sizeof(double));
    for (int64_t t = 0; t < q->ne[2]; t++) {
        const int32_t p = geti(pos, t, 0), sq = geti(seq, t, 0);
        LM_ASSERT(sq >= 0 && sq < n_seq);
        const int64_t n_cells = ap.ring ? cps : lm_min64((int64_t)p + 1, cps);
        for (int64_t c = 0; c < n_cells; c++) {
            const int32_t pg = geti(pages, c / ap.page, sq);
            LM_ASSERT(pg >= 0 && pg < n_pages);
            cell[c] = (int64_t)pg * ap.page + c % ap.page;
        }
        for (int64_t h = 0; h < H; h++) {
            const int64_t g = h / (H / Hkv);
            double mx = -INFINITY;
            for (int64_t c = 0; c < n_cells; c++) {
                const int32_t pc = geti(cell_pos, cell[c], 0);
                s[c] = -INFINITY;
                if (pc < 0 || pc > p || (ap.window > 0 && p - pc >= ap.window)) continue;
                if (ap.k_from_v) {
                    for (int64_t j = 0; j < dk; j++)
                        kv[j] = lm_cpu_get(v, j, g, cell[c], 0) * lm_cpu_get(k_norm, j, 0, 0, 0);
                    rope_vec(kv, dk, (double)pc, &ap.rope, factors);
                } else {
                    for (int64_t j = 0; j < dk; j++) kv[j] = lm_cpu_get(k, j, g, cell[c], 0);
                }
                double dot = 0;
                for (int64_t j = 0; j < dk; j++) dot += lm_cpu_get(q, j, h, t, 0) * kv[j];
                dot *= (double)ap.scale;
                if (ap.softcap > 0) dot = (double)ap.softcap * tanh(dot / (double)ap.softcap);
                s[c] = dot;
                if (dot > mx) mx = dot;
            }
            for (int64_t j = 0; j < dv; j++) acc[j] = 0;
            double sum = 0;
            if (mx > -INFINITY) {
                for (int64_t c = 0; c < n_cells; c++) {
                    if (s[c] == -INFINITY) continue;
                    double w = exp(s[c] - mx);
                    sum += w;
                    for (int64_t j = 0; j < dv; j++) acc[j] += w * lm_cpu_get(v, j, g, cell[c], 0);
                }
            }
            /* a query that sees no cell (cannot happen for a causal step) yields zeros */
            for (int64_t j = 0; j < dv; j++) setf(n->dst, j, h, t, 0, sum > 0 ? acc[j] / sum : 0.0);
        }
    }
    free(kv);
    free(s);
    free(acc);
    free(cell);
}

static void elementwise(const lm_node *n) {
    const lm_tensor *a = n->src[0], *b = n->src[1];
    const bool bcast = b && lm_tensor_nrows(b) == 1 && lm_tensor_nrows(a) > 1;
    FOR_ROWS(a) {
        for (int64_t j = 0; j < a->ne[0]; j++) {
            double x = lm_cpu_get(a, j, i1, i2, i3), y = 0, r = 0;
            if (b) y = bcast ? lm_cpu_get(b, j, 0, 0, 0) : lm_cpu_get(b, j, i1, i2, i3);
            switch (n->op) {
            case LM_OP_GEGLU: r = lm_gelu_tanh_d(x) * y; break;
            case LM_OP_SWIGLU: r = x / (1.0 + exp(-x)) * y; break;
            case LM_OP_ADD: r = x + y; break;
            case LM_OP_MUL: r = x * y; break;
            case LM_OP_SCALE: r = x * (double)n->fp[0]; break;
            case LM_OP_SOFTCAP: r = (double)n->fp[0] * tanh(x / (double)n->fp[0]); break;
            default: LM_ASSERT(!"elementwise op");
            }
            setf(n->dst, j, i1, i2, i3, r);
        }
    }
}

static void topk(const lm_node *n) {
    const lm_tensor *x = n->src[0];
    const int k = n->ip[0];
    const int64_t m = x->ne[0];
    bool *taken = malloc((size_t)m);
    for (int64_t c = 0; c < x->ne[1]; c++) {
        memset(taken, 0, (size_t)m);
        for (int j = 0; j < k; j++) {
            int64_t best = -1;
            double bv = 0;
            for (int64_t i = 0; i < m; i++) {
                if (taken[i]) continue;
                double v = lm_cpu_get(x, i, c, 0, 0);
                if (best < 0 || v > bv || (isnan(bv) && !isnan(v))) {
                    best = i;
                    bv = v;
                }
            }
            taken[best] = true;
            setf(n->dst, j, c, 0, 0, (double)best);
        }
    }
    free(taken);
}

static void moe_weights(const lm_node *n) {
    const lm_tensor *lg = n->src[0], *ids = n->src[1], *sc = n->src[2];
    const int64_t E = lg->ne[0], k = ids->ne[0];
    for (int64_t t = 0; t < lg->ne[1]; t++) {
        double mx = -INFINITY, sum = 0, sel = 0;
        for (int64_t e = 0; e < E; e++) mx = fmax(mx, lm_cpu_get(lg, e, t, 0, 0));
        for (int64_t e = 0; e < E; e++) sum += exp(lm_cpu_get(lg, e, t, 0, 0) - mx);
        for (int64_t j = 0; j < k; j++) {
            int32_t e = geti(ids, j, t);
            LM_ASSERT(e >= 0 && e < E);
            sel += exp(lm_cpu_get(lg, e, t, 0, 0) - mx) / sum;
        }
        for (int64_t j = 0; j < k; j++) {
            int32_t e = geti(ids, j, t);
            double p = exp(lm_cpu_get(lg, e, t, 0, 0) - mx) / sum / sel;
            if (sc) p *= lm_cpu_get(sc, e, 0, 0, 0);
            setf(n->dst, j, t, 0, 0, p);
        }
    }
}

static void moe_sum(const lm_node *n) {
    const lm_tensor *y = n->src[0], *w = n->src[1];
    for (int64_t t = 0; t < y->ne[2]; t++)
        for (int64_t i = 0; i < y->ne[0]; i++) {
            double acc = 0;
            for (int64_t j = 0; j < y->ne[1]; j++) acc += lm_cpu_get(w, j, t, 0, 0) * lm_cpu_get(y, i, j, t, 0);
            setf(n->dst, i, t, 0, 0, acc);
        }
}

static void cpy(const lm_node *n) {
    const lm_tensor *s = n->src[0];
    FOR_ROWS(s) for (int64_t j = 0; j < s->ne[0]; j++) setf(n->dst, j, i1, i2, i3, lm_cpu_get(s, j, i1, i2, i3));
}

void lm_cpu_ref_run(const lm_node *n) {
    switch (n->op) {
    case LM_OP_GET_ROWS: get_rows(n); break;
    case LM_OP_SET_ROWS: set_rows(n); break;
    case LM_OP_RMS_NORM: rms_norm(n); break;
    case LM_OP_MATMUL: matmul(n); break;
    case LM_OP_MATMUL_ID: matmul_id(n); break;
    case LM_OP_ROPE: rope(n); break;
    case LM_OP_ATTENTION: attention(n); break;
    case LM_OP_GEGLU:
    case LM_OP_SWIGLU:
    case LM_OP_ADD:
    case LM_OP_MUL:
    case LM_OP_SCALE:
    case LM_OP_SOFTCAP: elementwise(n); break;
    case LM_OP_TOPK: topk(n); break;
    case LM_OP_MOE_WEIGHTS: moe_weights(n); break;
    case LM_OP_MOE_SUM: moe_sum(n); break;
    case LM_OP_CPY: cpy(n); break;
    default: LM_ASSERT(!"ref: unknown op");
    }
}
