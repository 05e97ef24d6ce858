/*
 * fast.c — the CPU fast path: every op multi-threaded over the thread pool, inner loops from the
 * per-ISA kernel table (kernels.c). Checked against ref.c by the op-conformance suite.
 *
 * matmul      rows of W split across threads; activations quantized once per column to the
 *             q16 dot format (int16 + f32 scale per 32) or used as f32; weight rows tiled by 16
 *             so a tile stays in L1 while every column streams past it. Decode is bound by the
 *             bytes of W; prefill re-reads the quantized columns from L2 once per tile.
 * matmul_id   tokens bucketed by expert, then (expert, row-chunk) work items spread over threads:
 *             each selected expert's rows are read once per step.
 * attention   flash-decoding on the CPU: work items (token, kv-head, split) each run an online
 *             softmax over a range of cells for all query heads of the group (K/V rows loaded
 *             once per group); splits are merged by their (max, sum) when a single token would
 *             otherwise leave threads idle. K=V layers make K on the fly (V * k_norm, rope with
 *             an incremental cos/sin recurrence along consecutive positions).
 */
#define _GNU_SOURCE
#include "cpu.h"
#include "kernels.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* cos / sin of every (token, frequency) of a step, shared by every rope op of the step with the
 * same positions and frequencies (a model's layers use one or two frequency sets) */
#define ROPE_TABLES 4
typedef struct rope_table {
    bool valid;
    lm_rope_params rp;
    int32_t n;        /* tokens */
    int32_t *pos;     /* [n] */
    float *factors;   /* [rp.n_pairs] copy of the frequency factors, or NULL */
    double *cs, *sn;  /* [n][rp.n_pairs] */
    size_t cap_pos, cap_fac, cap_cs;
    uint64_t stamp;   /* last use, for replacement */
} rope_table;

enum { ACT_Q8, ACT_Q8X2, ACT_Q16 };

struct lm_cpu_fast {
    lm_threadpool *tp;
    int nth;
    const lm_cpu_kernels *k;
    uint8_t *wdata; /* shared scratch: quantized activations, attention partials */
    size_t wsize;
    float **tbuf; /* per-thread scratch */
    size_t tsize; /* floats per thread */
    float e4m3[256]; /* e4m3 code -> f32 (the fp8 KV cache) */
    rope_table rope[ROPE_TABLES];
    uint64_t rope_clock;
    int32_t *meta; /* matmul_id's expert buckets */
    size_t msize;
    /* read from the environment once: LUMEN_CPU_NO_SGEMM, LUMEN_CPU_NO_TILED_ATTN (the older
     * dot-product paths, for comparisons) */
    bool no_sgemm, no_tiled_attn, no_i8;
    /* activations of the matmuls that run as dot products (LUMEN_CPU_ACT): q8s where the table
     * has its dots, the first plane (ACT_Q8, the default: 8-bit, ~1e-5 NMSE; heavy-tailed inputs,
     * LM_MM_X_OUTLIERS, take both) or both planes everywhere (ACT_Q8X2, "q8x2": ~16-bit, as
     * exact as q16, one more integer dot per 64 products: ~30 % slower decode where the cores
     * are compute-bound); or q16 everywhere (ACT_Q16, "q16") */
    int act;
};

static const lm_cpu_kernels *pick_kernels(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (getenv("LUMEN_CPU_GENERIC") != NULL) return &lm_cpu_kernels_generic;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("fma") && getenv("LUMEN_CPU_NO_AVX512") == NULL)
        return &lm_cpu_kernels_avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        /* F16C has no __builtin_cpu_supports name on every compiler; every AVX2 CPU has it */
        return &lm_cpu_kernels_avx2;
    }
#endif
    return &lm_cpu_kernels_generic;
}

const char *lm_cpu_fast_isa(void) { return pick_kernels()->isa; }

lm_cpu_fast *lm_cpu_fast_create(int n_threads) {
    lm_cpu_fast *f = calloc(1, sizeof *f);
    if (f)
        for (int i = 0; i < 256; i++) f->e4m3[i] = lm_e4m3_to_f32((uint8_t)i);
    if (!f) return NULL;
    f->tp = lm_threadpool_create(n_threads);
    if (!f->tp) {
        free(f);
        return NULL;
    }
    f->nth = lm_threadpool_size(f->tp);
    f->k = pick_kernels();
    f->no_sgemm = getenv("LUMEN_CPU_NO_SGEMM") != NULL;
    f->no_i8 = getenv("LUMEN_CPU_NO_I8") != NULL;
    f->no_tiled_attn = getenv("LUMEN_CPU_NO_TILED_ATTN") != NULL;
    const char *act = getenv("LUMEN_CPU_ACT");
    f->act = !f->k->quant_q8s || (act && strcmp(act, "q16") == 0) ? ACT_Q16 : act && strcmp(act, "q8x2") == 0 ? ACT_Q8X2 : ACT_Q8;
    f->tbuf = calloc((size_t)f->nth, sizeof(float *));
    if (!f->tbuf) {
        lm_cpu_fast_free(f);
        return NULL;
    }
    return f;
}

void lm_cpu_fast_free(lm_cpu_fast *f) {
    if (!f) return;
    lm_threadpool_free(f->tp);
    if (f->tbuf)
        for (int i = 0; i < f->nth; i++) lm_afree(f->tbuf[i]);
    free(f->tbuf);
    lm_afree(f->wdata);
    free(f->meta);
    for (int i = 0; i < ROPE_TABLES; i++) {
        free(f->rope[i].pos);
        free(f->rope[i].factors);
        free(f->rope[i].cs);
    }
    free(f);
}

/* Scratch grows to the largest step seen and then stays: steady-state decode never allocates. */
static bool need_wdata(lm_cpu_fast *f, size_t size) {
    if (size <= f->wsize) return true;
    lm_afree(f->wdata);
    f->wdata = lm_aalloc(size);
    f->wsize = f->wdata ? size : 0;
    return f->wdata != NULL;
}

static bool need_tbuf(lm_cpu_fast *f, size_t floats) {
    if (floats <= f->tsize) return true;
    for (int i = 0; i < f->nth; i++) {
        lm_afree(f->tbuf[i]);
        f->tbuf[i] = lm_aalloc(floats * sizeof(float));
        if (!f->tbuf[i]) {
            f->tsize = 0;
            return false;
        }
    }
    f->tsize = floats;
    return true;
}

static inline int32_t ival(const lm_tensor *t, int64_t i0, int64_t i1) {
    return ((const int32_t *)lm_tensor_row(t, i1, 0, 0))[i0];
}
static inline float *frow(const lm_tensor *t, int64_t i1, int64_t i2, int64_t i3) {
    return (float *)lm_tensor_row(t, i1, i2, i3);
}

typedef struct task {
    lm_cpu_fast *f;
    const lm_node *n;
    /* op-specific */
    lm_dtype vt;
    size_t xrow;
    const uint8_t *xq;
    int64_t n_items;
    const int32_t *bucket_off, *bucket_pairs;
    const int32_t *active;
    int64_t n_active, chunks_per_expert;
    float *xsum; /* [cols][K / 16]: d * (sum of each half-block), for the prefill min terms */
    int n_split;
    float *part;
    const struct attn_tile *tiles;
    const int32_t *order;
    int64_t next; /* dynamic work distribution (atomic) */
    rope_table *rope;
    /* sgemm over a matmul_id expert: its index, and its (j, t) pairs as the columns */
    int64_t sg_e, sg_n;
    /* vt == LM_Q8S: dot both planes */
    bool two;
    /* small decode matmuls: every thread quantizes the columns itself (into its tbuf) instead of
       a separate quantization pass and its synchronisation */
    bool selfq;
    const int32_t *sg_cols;
} task;

/* ---------------------------------------------------------------------------------------- */
/* matmul                                                                                   */

#define TILE 16


/* quantize columns [a, b) of x (f32 [K, cols...]) into xq */
static void quant_cols(const task *tk, uint8_t *xq, int64_t a, int64_t b) {
    const lm_tensor *x = tk->n->src[1];
    LM_ASSERT(tk->vt == LM_Q16 || tk->vt == LM_Q8S);
    const lm_quant_fn q = tk->vt == LM_Q8S ? tk->f->k->quant_q8s : tk->f->k->quant_q16;
    for (int64_t c = a; c < b; c++) {
        const float *src = frow(x, c % x->ne[1], c / x->ne[1], 0);
        lm_block_q16 *dst = (lm_block_q16 *)(xq + (size_t)c * tk->xrow);
        q(src, dst, x->ne[0]);
        if (tk->xsum) {
            LM_ASSERT(tk->vt == LM_Q16);
            float *s = tk->xsum + (size_t)c * (size_t)(x->ne[0] / 16);
            for (int64_t j = 0; j < x->ne[0] / 32; j++) {
                s[2 * j] = dst[j].d * (float)dst[j].bsum[0];
                s[2 * j + 1] = dst[j].d * (float)dst[j].bsum[1];
            }
        }
    }
}

static void quant_cols_task(void *arg, int ith, int nth) {
    task *tk = arg;
    const lm_tensor *x = tk->n->src[1];
    int64_t a, b;
    lm_split(x->ne[1] * x->ne[2], ith, nth, &a, &b);
    quant_cols(tk, (uint8_t *)tk->xq, a, b);
}

/* dot of weight row wr (type wt) with column c; `deq` holds the dequantized row for fallbacks */
static inline float dot_row(const lm_cpu_kernels *k, lm_dtype wt, lm_dtype vt, int64_t K, const void *wr,
                            const float *deq, const void *xc) {
    if (vt != LM_F32) return k->vec_dot[wt](K, wr, xc);
    switch (wt) {
    case LM_F32: return k->dot_f32(wr, xc, K);
    case LM_F16: return k->dot_f16(wr, xc, K);
    case LM_BF16: return k->dot_bf16(wr, xc, K);
    default: return k->dot_f32(deq, xc, K);
    }
}

static bool needs_deq(lm_dtype wt, lm_dtype vt) { return vt == LM_F32 && wt != LM_F32 && wt != LM_F16 && wt != LM_BF16; }

/* Decode a quantized weight row for the prefill micro-kernel: value[i] = d[i/32] * w[i] + m[i/16],
 * with the integer sub-block scales of the K-quants folded into the int16 w (|sc * q| <= 4096).
 * Returns whether the type has min terms (m written). Exact: reproduces lm_dequant_row up to the
 * float rounding of d * w. */
static bool decode_q16(lm_dtype t, const void *row, int64_t K, int16_t *w, float *d, float *m) {
    switch (t) {
    case LM_Q4_0: case LM_Q4_1: case LM_Q5_0: case LM_Q5_1: case LM_Q8_0: {
        for (int64_t b = 0; b < K / 32; b++) {
            float mm = 0;
            const int16_t *unused = NULL;
            (void)unused;
            if (t == LM_Q8_0) {
                const lm_block_q8_0 *x = (const lm_block_q8_0 *)row + b;
                d[b] = lm_f16_to_f32(x->d);
                for (int j = 0; j < 32; j++) w[32 * b + j] = x->qs[j];
            } else if (t == LM_Q4_0 || t == LM_Q4_1) {
                const uint8_t *qs = t == LM_Q4_0 ? ((const lm_block_q4_0 *)row + b)->qs : ((const lm_block_q4_1 *)row + b)->qs;
                const int off = t == LM_Q4_0 ? 8 : 0;
                d[b] = lm_f16_to_f32(t == LM_Q4_0 ? ((const lm_block_q4_0 *)row + b)->d : ((const lm_block_q4_1 *)row + b)->d);
                if (t == LM_Q4_1) mm = lm_f16_to_f32(((const lm_block_q4_1 *)row + b)->m);
                for (int j = 0; j < 16; j++) {
                    w[32 * b + j] = (int16_t)((qs[j] & 15) - off);
                    w[32 * b + 16 + j] = (int16_t)((qs[j] >> 4) - off);
                }
            } else {
                const uint8_t *qs, *qhp;
                if (t == LM_Q5_0) {
                    const lm_block_q5_0 *x = (const lm_block_q5_0 *)row + b;
                    qs = x->qs; qhp = x->qh; d[b] = lm_f16_to_f32(x->d);
                } else {
                    const lm_block_q5_1 *x = (const lm_block_q5_1 *)row + b;
                    qs = x->qs; qhp = x->qh; d[b] = lm_f16_to_f32(x->d); mm = lm_f16_to_f32(x->m);
                }
                uint32_t qh;
                memcpy(&qh, qhp, 4);
                const int off = t == LM_Q5_0 ? 16 : 0;
                for (int j = 0; j < 16; j++) {
                    w[32 * b + j] = (int16_t)(((qs[j] & 15) | (((qh >> j) & 1) << 4)) - off);
                    w[32 * b + 16 + j] = (int16_t)(((qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - off);
                }
            }
            m[2 * b] = m[2 * b + 1] = mm;
        }
        return t == LM_Q4_1 || t == LM_Q5_1;
    }
    case LM_Q4_K: case LM_Q5_K: {
        for (int64_t i = 0; i < K / LM_QK_K; i++) {
            const uint8_t *sc12, *qs, *qh = NULL;
            float dd, dmin;
            if (t == LM_Q4_K) {
                const lm_block_q4_K *x = (const lm_block_q4_K *)row + i;
                sc12 = x->scales; qs = x->qs; dd = lm_f16_to_f32(x->d); dmin = lm_f16_to_f32(x->dmin);
            } else {
                const lm_block_q5_K *x = (const lm_block_q5_K *)row + i;
                sc12 = x->scales; qs = x->qs; qh = x->qh; dd = lm_f16_to_f32(x->d); dmin = lm_f16_to_f32(x->dmin);
            }
            for (int j = 0; j < 8; j++) {
                uint8_t sc, mn;
                lm_k4_scale_min(j, sc12, &sc, &mn);
                const int64_t b = i * 8 + j;
                d[b] = dd;
                m[2 * b] = m[2 * b + 1] = -dmin * (float)mn;
                for (int l = 0; l < 32; l++) {
                    int q = j % 2 == 0 ? qs[32 * (j / 2) + l] & 15 : qs[32 * (j / 2) + l] >> 4;
                    if (qh && (qh[l] >> j) & 1) q += 16;
                    w[32 * b + l] = (int16_t)(q * sc);
                }
            }
        }
        return true;
    }
    case LM_Q6_K: {
        for (int64_t i = 0; i < K / LM_QK_K; i++) {
            const lm_block_q6_K *x = (const lm_block_q6_K *)row + i;
            const float dd = lm_f16_to_f32(x->d);
            int16_t *o = w + i * LM_QK_K;
            for (int half = 0; half < 2; half++) {
                const uint8_t *ql = x->ql + 64 * half, *qh = x->qh + 32 * half;
                const int8_t *sc = x->scales + 8 * half;
                for (int l = 0; l < 32; l++) {
                    const int is = l / 16;
                    o[128 * half + l] = (int16_t)(((int)((ql[l] & 15) | ((qh[l] & 3) << 4)) - 32) * sc[is]);
                    o[128 * half + l + 32] = (int16_t)(((int)((ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4)) - 32) * sc[is + 2]);
                    o[128 * half + l + 64] = (int16_t)(((int)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32) * sc[is + 4]);
                    o[128 * half + l + 96] = (int16_t)(((int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32) * sc[is + 6]);
                }
            }
            for (int b = 0; b < 8; b++) d[i * 8 + b] = dd;
        }
        return false;
    }
    case LM_Q2_K: {
        for (int64_t i = 0; i < K / LM_QK_K; i++) {
            const lm_block_q2_K *x = (const lm_block_q2_K *)row + i;
            const float dd = lm_f16_to_f32(x->d), dmin = lm_f16_to_f32(x->dmin);
            int16_t *o = w + i * LM_QK_K;
            for (int half = 0; half < 2; half++)
                for (int j = 0; j < 4; j++)
                    for (int l = 0; l < 32; l++) {
                        const uint8_t sc = x->scales[half * 8 + 2 * j + l / 16];
                        o[128 * half + 32 * j + l] = (int16_t)(((x->qs[32 * half + l] >> (2 * j)) & 3) * (sc & 15));
                        m[(i * LM_QK_K + 128 * half + 32 * j + l) / 16] = -dmin * (float)(sc >> 4);
                    }
            for (int b = 0; b < 8; b++) d[i * 8 + b] = dd;
        }
        return true;
    }
    case LM_Q3_K: {
        for (int64_t i = 0; i < K / LM_QK_K; i++) {
            const lm_block_q3_K *x = (const lm_block_q3_K *)row + i;
            int8_t sc[16];
            lm_q3_K_scales(x->scales, sc);
            int16_t *o = w + i * LM_QK_K;
            for (int half = 0; half < 2; half++)
                for (int j = 0; j < 4; j++)
                    for (int l = 0; l < 32; l++) {
                        const int q = ((x->qs[32 * half + l] >> (2 * j)) & 3) - ((x->hmask[l] >> (4 * half + j)) & 1 ? 0 : 4);
                        o[128 * half + 32 * j + l] = (int16_t)(q * sc[half * 8 + 2 * j + l / 16]);
                    }
            for (int b = 0; b < 8; b++) d[i * 8 + b] = lm_f16_to_f32(x->d);
        }
        return false;
    }
    default: return false;
    }
}

static bool gemm_ok(const lm_cpu_fast *f, lm_dtype wt, lm_dtype vt, int64_t N) {
    return f->k->gemm_q16_1x4 && vt == LM_Q16 && N >= 4 && wt != LM_F32 && wt != LM_F16 && wt != LM_BF16;
}

/* Prefill: decode one row at a time, then groups of 4 columns through the micro-kernel; the min
 * terms are a dot of the row's per-16 coefficients with each column's per-16 activation sums
 * (tk->xsum, made with the quantized columns). */
static void gemm_rows(task *tk, int ith, int64_t r0, int64_t r1) {
    const lm_node *n = tk->n;
    const lm_tensor *w = n->src[0], *x = n->src[1];
    lm_tensor *dst = n->dst;
    const int64_t K = w->ne[0], N = x->ne[1], nblk = K / 32;
    int16_t *w16 = (int16_t *)tk->f->tbuf[ith];
    float *dd = (float *)(w16 + K), *mm = dd + nblk;
    for (int64_t r = r0; r < r1; r++) {
        const bool has_min = decode_q16(w->type, lm_tensor_row(w, r, 0, 0), K, w16, dd, mm);
        for (int64_t c = 0; c < N; c += 4) {
            const lm_block_q16 *xs[4];
            for (int k = 0; k < 4; k++) xs[k] = (const lm_block_q16 *)(tk->xq + (size_t)(c + k < N ? c + k : N - 1) * tk->xrow);
            float out[4];
            tk->f->k->gemm_q16_1x4(nblk, w16, dd, xs, out);
            for (int k = 0; k < 4 && c + k < N; k++) {
                if (has_min) out[k] += tk->f->k->dot_f32(mm, tk->xsum + (size_t)(c + k) * (size_t)(2 * nblk), 2 * nblk);
                frow(dst, c + k, 0, 0)[r] = out[k];
            }
        }
    }
}

/* Prefill with many columns: weights dequantized to f32 (exact) and a register-tiled f32 GEMM
 * (the kernel table's tile: 16 tokens x 6 rows with AVX2, 32 x 12 with AVX-512). The columns of
 * x are packed once per matmul into panels [K][MR] (MR tokens in the vector lanes). A thread
 * takes SG_RG groups of NR weight rows at a time and, per LM_SG_KC-long slice of K, dequantizes
 * them row-major into its own buffer (the tile broadcasts each row's values from there, so they
 * need no transposed copy), then runs every token panel's slice (L1-sized) past all the groups.
 * The outputs collect as [rows][tokens] and are written to dst's columns once at the end.
 * Dequantization is one pass over W per matmul, 1/N of the arithmetic; the FMA ports are the
 * limit. More exact than the q16 path (no activation rounding), and from SG_MIN_N columns up
 * faster. Weight types with q8s integer dots keep those up to SG_Q8S_N columns: the dots read
 * the weights once per 4 columns and take 4 x 64 products per instruction (VNNI), which beats
 * dequantizing every weight to f32 until the GEMM's FMAs amortize it (one Zen 4 core, Gemma 4
 * 31B ffn_up Q4_K: N = 16 21 vs 87 ms, N = 64 88 vs 131, N = 128 187 vs 199, N = 256 387 vs
 * 350). */
#define SG_KC LM_SG_KC
#define SG_RG 4
#define SG_MIN_N 16
#define SG_Q8S_N 128

static lm_dtype vec_type_for(const lm_cpu_fast *f, lm_dtype wt, int64_t K);

/* The int8 GEMM (tables with AVX-512 VNNI; matmul, and matmul_id per expert) from I8_MIN_N columns for
 * the types it unpacks, in place of both the dots and the f32 GEMM: 16 weight rows are unpacked
 * once to bytes (lm_i8_slice), then vpdpbusd multiplies them by 4 activations of a column at a
 * time, int32 over each scale block, one float FMA per block and column. Activations are the
 * same q8s as decode's (8-bit; both planes for LM_MM_X_OUTLIERS inputs), so prefill rounds as
 * decode does. One core, Gemma 4 31B ffn_up Q4_K, 512 columns: 475 ms against the f32 GEMM's
 * 712-740 (measured with another job on the machine; see the README for end-to-end numbers).
 * LUMEN_CPU_NO_I8=1 turns it off. */
#define I8_MIN_N 16
static bool i8_ok(const lm_cpu_fast *f, const lm_tensor *w, int64_t N) {
    return N >= I8_MIN_N && f->k->i8_gemm && f->k->i8_repack[w->type] && !f->no_i8 && w->ne[0] % LM_QK_K == 0 &&
           vec_type_for(f, w->type, w->ne[0]) == LM_Q8S;
}

/* N: the columns (matmul) or one expert's tokens (matmul_id) */
static bool sgemm_ok(const lm_cpu_fast *f, const lm_tensor *w, const lm_tensor *x, int64_t N) {
    const lm_dtype_traits *tr = lm_dtype_get(w->type);
    return N >= (vec_type_for(f, w->type, w->ne[0]) == LM_Q8S ? SG_Q8S_N : SG_MIN_N) && f->k->sgemm && !f->no_sgemm && x->type == LM_F32 && tr && tr->dequant && SG_KC % tr->block == 0;
}

/* column c of the GEMM: x's column c, or for an expert its c-th (j, t) pair (x shared by the
 * J slots when x->ne[1] == 1); the output column likewise */
static const float *sg_xcol(const task *tk, int64_t c) {
    const lm_tensor *x = tk->n->src[1];
    if (!tk->sg_cols) return frow(x, c, 0, 0);
    const int64_t J = tk->n->src[2]->ne[0], pair = tk->sg_cols[c], j = pair % J, t = pair / J;
    return frow(x, x->ne[1] == 1 ? 0 : j, t, 0);
}
static float *sg_dcol(const task *tk, int64_t c) {
    if (!tk->sg_cols) return frow(tk->n->dst, c, 0, 0);
    const int64_t J = tk->n->src[2]->ne[0], pair = tk->sg_cols[c];
    return frow(tk->n->dst, pair % J, pair / J, 0);
}

static void pack_x_task(void *arg, int ith, int nth) {
    task *tk = arg;
    const lm_tensor *x = tk->n->src[1];
    const int MR = tk->f->k->sg_mr;
    const int64_t K = x->ne[0], N = tk->sg_n, npan = (N + MR - 1) / MR;
    int64_t a, b;
    lm_split(npan, ith, nth, &a, &b);
    for (int64_t p = a; p < b; p++) {
        float *o = (float *)tk->xq + (size_t)p * (size_t)K * (size_t)MR;
        for (int j = 0; j < MR; j++) {
            const int64_t c = p * MR + j;
            if (c < N) {
                const float *src = sg_xcol(tk, c);
                for (int64_t k = 0; k < K; k++) o[k * MR + j] = src[k];
            } else {
                for (int64_t k = 0; k < K; k++) o[k * MR + j] = 0.0f;
            }
        }
    }
}

/* a row slice to f32: the SIMD converters for the 16-bit types, the code table for FP8 blocks,
 * the kernel table's dequantizers for the GGUF blocks (all bit-identical to lm_dequant_row) */
static void sg_dequant(const lm_cpu_fast *f, lm_dtype t, const void *src, float *y, int64_t n) {
    switch (t) {
    case LM_F16: f->k->cvt_f16(src, y, n); break;
    case LM_BF16: f->k->cvt_bf16(src, y, n); break;
    case LM_F32: memcpy(y, src, (size_t)n * sizeof(float)); break;
    case LM_F8_E4M3: {
        const lm_block_f8_e4m3 *x = src;
        for (int64_t i = 0; i < n / LM_QK_G128; i++, y += LM_QK_G128)
            for (int j = 0; j < LM_QK_G128; j++) y[j] = x[i].d * f->e4m3[x[i].qs[j]];
        break;
    }
    default:
        if (f->k->dequant[t]) f->k->dequant[t](src, y, n);
        else lm_dequant_row(t, src, y, n);
    }
}

static void sgemm_task(void *arg, int ith, int nth) {
    task *tk = arg;
    const lm_tensor *w = tk->n->src[0];
    const lm_cpu_kernels *k = tk->f->k;
    const int MR = k->sg_mr, NR = k->sg_nr;
    const int64_t K = w->ne[0], M = w->ne[1], N = tk->sg_n, npan = (N + MR - 1) / MR, ldc = npan * MR;
    const lm_dtype_traits *tr = lm_dtype_get(w->type);
    /* per thread: SG_RG * NR dequantized row slices [row][SG_KC], their outputs [row][ldc] */
    float *rb = tk->f->tbuf[ith], *cb = rb + (size_t)SG_RG * NR * SG_KC;
    int64_t a, b;
    lm_split((M + NR - 1) / NR, ith, nth, &a, &b);
    for (int64_t g0 = a; g0 < b; g0 += SG_RG) {
        const int64_t ng = lm_min64(SG_RG, b - g0), r0 = g0 * NR, rows = lm_min64(ng * NR, M - r0);
        for (int64_t k0 = 0; k0 < K; k0 += SG_KC) {
            const int64_t kc = lm_min64(SG_KC, K - k0);
            const size_t off = (size_t)(k0 / tr->block) * (size_t)tr->block_bytes;
            for (int64_t r = 0; r < ng * NR; r++) {
                if (r < rows)
                    sg_dequant(tk->f, w->type, (const uint8_t *)lm_tensor_row(w, r0 + r, tk->sg_e, 0) + off, rb + r * SG_KC, kc);
                else
                    memset(rb + r * SG_KC, 0, (size_t)kc * sizeof(float));
            }
            /* each token panel's slice of x (L1-sized) serves all the row groups */
            for (int64_t p = 0; p < npan; p++) {
                const float *ap = (const float *)tk->xq + (size_t)p * (size_t)K * (size_t)MR + (size_t)k0 * (size_t)MR;
                for (int64_t gi = 0; gi < ng; gi++)
                    k->sgemm_rows(kc, ap, rb + gi * NR * SG_KC, cb + gi * NR * ldc + p * MR, ldc, (int)lm_min64(MR, N - p * MR),
                                  (int)lm_min64(NR, rows - gi * NR), k0 > 0);
            }
        }
        for (int64_t c = 0; c < N; c++) {
            float *d = sg_dcol(tk, c) + r0;
            for (int64_t r = 0; r < rows; r++) d[r] = cb[r * ldc + c];
        }
    }
}

/* the matmul (cols == NULL: N = x's columns) or expert e of a matmul_id (its N pairs in cols) */
static bool op_sgemm(lm_cpu_fast *f, const lm_node *n, int64_t e, const int32_t *cols, int64_t N) {
    const int64_t K = n->src[0]->ne[0];
    const size_t MR = (size_t)f->k->sg_mr, NR = (size_t)f->k->sg_nr, Np = lm_pad((size_t)N, MR);
    if (!need_tbuf(f, SG_RG * NR * SG_KC + SG_RG * NR * Np + 64)) return false;
    if (!need_wdata(f, Np * (size_t)K * sizeof(float) + 64)) return false;
    task tk = {.f = f, .n = n, .xq = f->wdata, .sg_e = e, .sg_n = N, .sg_cols = cols};
    lm_threadpool_run(f->tp, pack_x_task, &tk);
    lm_threadpool_run(f->tp, sgemm_task, &tk);
    return true;
}

/* out[c][r] = dot(row r of w (of expert e), xs[c]) for rows r0..r1 and nc <= LM_Q8S_MAXC columns:
 * each row's weights are unpacked once for all the columns. (Cutting K into chunks whose
 * activations stay in L1 was measured slower: the weight stream then jumps between rows and
 * loses the kernels' prefetch; see q8s_prefetch in kernels.c.) */
static void q8s_rows(const lm_cpu_kernels *k, const lm_tensor *w, int64_t e, int64_t r0, int64_t r1, const void *const *xs, int nc,
                     int two, float *const *outs) {
    float o[LM_Q8S_MAXC];
    for (int64_t r = r0; r < r1; r++) {
        k->mdot8[w->type](w->ne[0], lm_tensor_row(w, r, e, 0), xs, nc, two, o);
        for (int c = 0; c < nc; c++) outs[c][r] = o[c];
    }
}

/* The int8 GEMM's pieces, shared by matmul and matmul_id: columns per call; rows t0..t0+nr-1
   (nr <= 16) of expert e's matrix unpacked into buf (one slice per super-block); buf times nc
   columns, outs[c][i] = row t0 + i's dot with column c */
static int i8_cols(int two) { return two ? LM_I8_MAXC / 2 : LM_I8_MAXC; }

static void i8_unpack(const lm_cpu_kernels *k, const lm_tensor *w, int64_t e, int64_t t0, int nr, lm_i8_slice *buf) {
    const void *rows[LM_I8_ROWS];
    for (int i = 0; i < nr; i++) rows[i] = lm_tensor_row(w, t0 + i, e, 0);
    for (int64_t sb = 0; sb < w->ne[0] / LM_QK_K; sb++) k->i8_repack[w->type](rows, nr, sb, buf + sb);
}

static void i8_run(const lm_cpu_kernels *k, const lm_i8_slice *buf, int64_t ns, const void *const *xs, int nc, int two,
                   float *const *outs, int nr) {
    float o[LM_I8_MAXC * LM_I8_ROWS];
    k->i8_gemm(buf, ns, xs, nc, two, o);
    for (int c = 0; c < nc; c++)
        for (int i = 0; i < nr; i++) outs[c][i] = o[c * LM_I8_ROWS + i];
}

static void matmul_task(void *arg, int ith, int nth) {
    task *tk = arg;
    const lm_node *n = tk->n;
    const lm_tensor *w = n->src[0], *x = n->src[1];
    lm_tensor *dst = n->dst;
    const lm_cpu_kernels *k = tk->f->k;
    const int64_t K = w->ne[0], M = w->ne[1], N = x->ne[1];
    const lm_dtype wt = w->type, vt = tk->vt;
    const bool deq = needs_deq(wt, vt);
    float *tb = tk->f->tbuf[ith];
    int64_t a, b;
    /* chunks of TILE rows, so threads never split a tile */
    lm_split((M + TILE - 1) / TILE, ith, nth, &a, &b);
    const uint8_t *xq = tk->xq;
    if (tk->selfq) {
        if (a >= b) return;
        quant_cols(tk, (uint8_t *)tb, 0, N);
        xq = (const uint8_t *)tb;
    }
    if (gemm_ok(tk->f, wt, vt, N)) {
        gemm_rows(tk, ith, a * TILE, lm_min64(b * TILE, M));
        return;
    }
    if (vt == LM_Q8S && i8_ok(tk->f, w, N)) {
        /* int8 GEMM: 16 rows unpacked once (into this thread's buffer), then every group of columns */
        lm_i8_slice *buf = (lm_i8_slice *)tb;
        const int C = i8_cols(tk->two);
        for (int64_t t0 = a * TILE; t0 < lm_min64(b * TILE, M); t0 += LM_I8_ROWS) {
            const int nr = (int)lm_min64(LM_I8_ROWS, M - t0);
            i8_unpack(k, w, 0, t0, nr, buf);
            for (int64_t c0 = 0; c0 < N; c0 += C) {
                const int nc = (int)lm_min64(N - c0, C);
                const void *xs[LM_I8_MAXC];
                float *outs[LM_I8_MAXC];
                for (int c = 0; c < nc; c++) xs[c] = tk->xq + (size_t)(c0 + c) * tk->xrow, outs[c] = frow(dst, c0 + c, 0, 0) + t0;
                i8_run(k, buf, K / LM_QK_K, xs, nc, tk->two, outs, nr);
            }
        }
        return;
    }
    if (vt == LM_Q8S) {
        /* each row's weights unpacked once per LM_Q8S_MAXC columns */
        for (int64_t t0 = a * TILE; t0 < lm_min64(b * TILE, M); t0 += TILE)
            for (int64_t c0 = 0; c0 < N; c0 += LM_Q8S_MAXC) {
                const int nc = (int)lm_min64(N - c0, LM_Q8S_MAXC);
                const void *xs[LM_Q8S_MAXC];
                float *outs[LM_Q8S_MAXC];
                for (int c = 0; c < nc; c++) xs[c] = xq + (size_t)(c0 + c) * tk->xrow, outs[c] = frow(dst, c0 + c, 0, 0);
                q8s_rows(k, w, 0, t0, lm_min64(t0 + TILE, M), xs, nc, tk->two, outs);
            }
        return;
    }
    for (int64_t t0 = a * TILE; t0 < lm_min64(b * TILE, M); t0 += TILE) {
        const int64_t t1 = lm_min64(t0 + TILE, M);
        if (deq)
            for (int64_t r = t0; r < t1; r++)
                lm_dequant_row(wt, lm_tensor_row(w, r, 0, 0), tb + (r - t0) * K, K);
        for (int64_t c = 0; c < N; c++) {
            const void *xc = vt == LM_F32 ? (const void *)frow(x, c, 0, 0) : xq + (size_t)c * tk->xrow;
            float *out = frow(dst, c, 0, 0);
            for (int64_t r = t0; r < t1; r++)
                out[r] = dot_row(k, wt, vt, K, lm_tensor_row(w, r, 0, 0), tb + (r - t0) * K, xc);
        }
    }
}

/* the activation format of the matmuls that reach the dot-product paths (fewer columns than the
 * f32 GEMM takes; matmul_id's other experts): q8s where the table has its dots, else the table's
 * 16-bit format, else f32 */
static lm_dtype vec_type_for(const lm_cpu_fast *f, lm_dtype wt, int64_t K) {
    /* q8s comes in 256-value blocks. The 32-blocked types' dots (q4_0, q8_0) also take rows that
       end in a partial one, but on SmolLM2 (K = 576) that measured slower than the 16-bit dots
       (q8_0 117 against 175 tok/s, q4_0 122 against 130), so such rows keep the 16-bit dots */
    if (f->act != ACT_Q16 && f->k->mdot8[wt] && K % LM_QK8S == 0) return LM_Q8S;
    return f->k->vec_dot[wt] ? f->k->vec_type[wt] : LM_F32;
}

/* bytes of one quantized activation column (q8s: a partial last super-block counts whole) */
static size_t act_row_bytes(lm_dtype vt, int64_t K) {
    return vt == LM_Q8S ? (size_t)((K + LM_QK8S - 1) / LM_QK8S) * sizeof(lm_block_q8s) : lm_row_bytes(vt, K);
}

/* Decode matmuls this small (columns x K) quantize their input in every thread: cheaper than a
   separate pass and the threads' synchronisation after it (on a 135M model, ~7 of them per layer) */
#define SELFQ_MAX 4096

static bool prepare_x(lm_cpu_fast *f, task *tk, const lm_tensor *w, const lm_tensor *x, bool dots_only) {
    tk->vt = vec_type_for(f, w->type, w->ne[0]);
    tk->two = tk->vt == LM_Q8S && (f->act == ACT_Q8X2 || (tk->n->ip[0] & LM_MM_X_OUTLIERS));
    /* per thread: a tile of dequantized rows, or 2 rows decoded to int16 with their scales */
    if (!need_tbuf(f, (size_t)TILE * (size_t)w->ne[0] + 64)) return false;
    if (tk->vt == LM_F32) return true;
    tk->xrow = act_row_bytes(tk->vt, x->ne[0]);
    const size_t cols = (size_t)(x->ne[1] * x->ne[2]);
    const bool sums = !dots_only && gemm_ok(f, w->type, tk->vt, x->ne[1]);
    if (!dots_only && !sums && x->ne[2] == 1 && cols * (size_t)x->ne[0] <= SELFQ_MAX && f->nth > 1 &&
        !(tk->vt == LM_Q8S && i8_ok(f, w, x->ne[1])) && tk->xrow * cols <= (size_t)TILE * (size_t)w->ne[0] * sizeof(float)) {
        tk->selfq = true; /* the columns fit the thread's tbuf, unused by these paths */
        return true;
    }
    const size_t xbytes = lm_pad(tk->xrow * cols, 64), sbytes = sums ? cols * (size_t)(x->ne[0] / 16) * sizeof(float) : 0;
    if (!need_wdata(f, xbytes + sbytes + 64)) return false;
    tk->xq = f->wdata;
    tk->xsum = sums ? (float *)(f->wdata + xbytes) : NULL;
    lm_threadpool_run(f->tp, quant_cols_task, tk);
    return true;
}

static bool op_matmul(lm_cpu_fast *f, const lm_node *n) {
    const int64_t N = n->src[1]->ne[1];
    if (n->src[1]->ne[2] == 1 && !i8_ok(f, n->src[0], N) && sgemm_ok(f, n->src[0], n->src[1], N))
        return op_sgemm(f, n, 0, NULL, N);
    task tk = {.f = f, .n = n};
    if (!prepare_x(f, &tk, n->src[0], n->src[1], false)) return false;
    lm_threadpool_run(f->tp, matmul_task, &tk);
    return true;
}

#define ID_CHUNK 32

static void matmul_id_task(void *arg, int ith, int nth) {
    task *tk = arg;
    const lm_node *n = tk->n;
    const lm_tensor *w = n->src[0], *x = n->src[1], *ids = n->src[2];
    lm_tensor *dst = n->dst;
    const lm_cpu_kernels *k = tk->f->k;
    const int64_t K = w->ne[0], M = w->ne[1], J = ids->ne[0];
    const lm_dtype wt = w->type, vt = tk->vt;
    const bool deq = needs_deq(wt, vt);
    float *tb = tk->f->tbuf[ith];
    for (int64_t it = ith; it < tk->n_items; it += nth) {
        const int32_t e = tk->active[it / tk->chunks_per_expert];
        const int64_t r0 = (it % tk->chunks_per_expert) * ID_CHUNK, r1 = lm_min64(r0 + ID_CHUNK, M);
        for (int64_t r0t = r0; r0t < r1; r0t += TILE) {
            const int64_t r1t = lm_min64(r0t + TILE, r1);
            if (deq)
                for (int64_t r = r0t; r < r1t; r++) lm_dequant_row(wt, lm_tensor_row(w, r, e, 0), tb + (r - r0t) * K, K);
            const int32_t cnt = tk->bucket_off[e + 1] - tk->bucket_off[e];
            if (vt == LM_Q8S && i8_ok(tk->f, w, cnt)) {
                /* the int8 GEMM over this expert's tokens (as in matmul_task) */
                lm_i8_slice *buf = (lm_i8_slice *)tb;
                const int C = i8_cols(tk->two), nr = (int)(r1t - r0t);
                i8_unpack(k, w, e, r0t, nr, buf);
                for (int32_t p0 = tk->bucket_off[e]; p0 < tk->bucket_off[e + 1]; p0 += C) {
                    const int nc = (int)lm_min64(tk->bucket_off[e + 1] - p0, C);
                    const void *xs[LM_I8_MAXC];
                    float *outs[LM_I8_MAXC];
                    for (int c = 0; c < nc; c++) {
                        const int32_t pair = tk->bucket_pairs[p0 + c];
                        const int64_t j = pair % J, t = pair / J, xj = x->ne[1] == 1 ? 0 : j;
                        xs[c] = tk->xq + (size_t)(xj + t * x->ne[1]) * tk->xrow;
                        outs[c] = frow(dst, j, t, 0) + r0t;
                    }
                    i8_run(k, buf, K / LM_QK_K, xs, nc, tk->two, outs, nr);
                }
                continue;
            }
            if (vt == LM_Q8S) {
                for (int32_t p0 = tk->bucket_off[e]; p0 < tk->bucket_off[e + 1]; p0 += LM_Q8S_MAXC) {
                    const int nc = (int)lm_min64(tk->bucket_off[e + 1] - p0, LM_Q8S_MAXC);
                    const void *xs[LM_Q8S_MAXC];
                    float *outs[LM_Q8S_MAXC];
                    for (int c = 0; c < nc; c++) {
                        const int32_t pair = tk->bucket_pairs[p0 + c];
                        const int64_t j = pair % J, t = pair / J, xj = x->ne[1] == 1 ? 0 : j;
                        xs[c] = tk->xq + (size_t)(xj + t * x->ne[1]) * tk->xrow;
                        outs[c] = frow(dst, j, t, 0);
                    }
                    q8s_rows(k, w, e, r0t, r1t, xs, nc, tk->two, outs);
                }
                continue;
            }
            for (int32_t p = tk->bucket_off[e]; p < tk->bucket_off[e + 1]; p++) {
                const int32_t pair = tk->bucket_pairs[p];
                const int64_t j = pair % J, t = pair / J, xj = x->ne[1] == 1 ? 0 : j;
                const void *xc = vt == LM_F32 ? (const void *)frow(x, xj, t, 0)
                                              : tk->xq + (size_t)(xj + t * x->ne[1]) * tk->xrow;
                float *out = frow(dst, j, t, 0);
                for (int64_t r = r0t; r < r1t; r++)
                    out[r] = dot_row(k, wt, vt, K, lm_tensor_row(w, r, e, 0), tb + (r - r0t) * K, xc);
            }
        }
    }
}

/* Experts with at least SG_MIN_N tokens in the step run as their own f32 GEMM (their tokens'
 * columns gathered, outputs scattered), one after another with all threads; the rest share one
 * pass of the q16 dot path, (expert, row-chunk) items spread over the threads. */
static bool op_matmul_id(lm_cpu_fast *f, const lm_node *n) {
    const lm_tensor *w = n->src[0], *ids = n->src[2];
    const int64_t E = w->ne[2], J = ids->ne[0], T = ids->ne[1], pairs = J * T;
    /* bucket (j, t) pairs by expert (counting sort) */
    const size_t meta = (size_t)(E + 1 + pairs + 2 * E) * sizeof(int32_t);
    if (meta > f->msize) {
        int32_t *m = realloc(f->meta, meta);
        if (!m) return false;
        f->meta = m;
        f->msize = meta;
    }
    int32_t *off = f->meta, *lst = off + E + 1, *active = lst + pairs, *cursor = active + E;
    memset(off, 0, (size_t)(E + 1) * sizeof(int32_t));
    for (int64_t t = 0; t < T; t++)
        for (int64_t j = 0; j < J; j++) off[ival(ids, j, t) + 1]++;
    for (int64_t e = 0; e < E; e++) off[e + 1] += off[e];
    memcpy(cursor, off, (size_t)E * sizeof(int32_t));
    for (int64_t t = 0; t < T; t++)
        for (int64_t j = 0; j < J; j++) lst[cursor[ival(ids, j, t)]++] = (int32_t)(j + t * J);
    int64_t n_active = 0;
    for (int64_t e = 0; e < E; e++) {
        const int64_t cnt = off[e + 1] - off[e];
        if (cnt == 0) continue;
        if (!i8_ok(f, w, cnt) && sgemm_ok(f, w, n->src[1], cnt)) {
            if (!op_sgemm(f, n, e, lst + off[e], cnt)) return false;
        } else {
            active[n_active++] = (int32_t)e;
        }
    }
    if (n_active == 0) return true;
    task tk = {.f = f, .n = n};
    if (!prepare_x(f, &tk, w, n->src[1], true)) return false;
    tk.bucket_off = off;
    tk.bucket_pairs = lst;
    tk.active = active;
    tk.n_active = n_active;
    tk.chunks_per_expert = (w->ne[1] + ID_CHUNK - 1) / ID_CHUNK;
    tk.n_items = n_active * tk.chunks_per_expert;
    lm_threadpool_run(f->tp, matmul_id_task, &tk);
    return true;
}

/* ---------------------------------------------------------------------------------------- */
/* row-wise ops                                                                             */

static void get_rows_task(void *arg, int ith, int nth) {
    task *tk = arg;
    const lm_node *n = tk->n;
    const lm_tensor *tab = n->src[0], *ids = n->src[1];
    const float s = n->fp[0];
    int64_t a, b;
    lm_split(ids->ne[0], ith, nth, &a, &b);
    for (int64_t i = a; i < b; i++) {
        float *out = frow(n->dst, i, 0, 0);
        lm_dequant_row(tab->type, lm_tensor_row(tab, ival(ids, i, 0), 0, 0), out, tab->ne[0]);
        if (s != 1.0f)
            for (int64_t j = 0; j < tab->ne[0]; j++) out[j] *= s;
    }
}

static void set_rows_task(void *arg, int ith, int nth) {
    task *tk = arg;
    const lm_node *n = tk->n;
    const lm_tensor *src = n->src[0], *idx = n->src[1];
    lm_tensor *dst = n->dst;
    const int64_t d = src->ne[0];
    int64_t a, b;
    lm_split(src->ne[1], ith, nth, &a, &b);
    for (int64_t i = a; i < b; i++) {
        void *out = lm_tensor_row(dst, ival(idx, i, 0), 0, 0);
        const void *in = lm_tensor_row(src, i, 0, 0);
        switch (dst->type) {
        case LM_F32:
        case LM_I32: memcpy(out, in, (size_t)d * 4); break;
        case LM_F16:
            for (int64_t j = 0; j < d; j++) ((uint16_t *)out)[j] = lm_f32_to_f16(((const float *)in)[j]);
            break;
        case LM_BF16:
            for (int64_t j = 0; j < d; j++) ((uint16_t *)out)[j] = lm_f32_to_bf16(((const float *)in)[j]);
            break;
        case LM_Q8_0: lm_quant_row_q8_0(in, out, d); break;
        case LM_E4M3:
            for (int64_t j = 0; j < d; j++) ((uint8_t *)out)[j] = lm_f32_to_e4m3(((const float *)in)[j]);
            break;
        default: break;
        }
    }
}

#define FOR_MY_ROWS(t, ith, nth)                                                                   \
    const int64_t nr_ = lm_tensor_nrows(t);                                                        \
    int64_t ra_, rb_;                                                                              \
    lm_split(nr_, ith, nth, &ra_, &rb_);                                                           \
    for (int64_t r_ = ra_; r_ < rb_; r_++)

#define ROW_IDX(t) int64_t i1 = r_ % (t)->ne[1], i2 = (r_ / (t)->ne[1]) % (t)->ne[2], i3 = r_ / ((t)->ne[1] * (t)->ne[2])

static void rms_norm_task(void *arg, int ith, int nth) {
    task *tk = arg;
    const lm_node *n = tk->n;
    const lm_tensor *x = n->src[0], *w = n->src[1], *res = n->src[2];
    const int64_t d = x->ne[0];
    const float *wr = w ? frow(w, 0, 0, 0) : NULL;
    FOR_MY_ROWS(x, ith, nth) {
        ROW_IDX(x);
        const float *xr = frow(x, i1, i2, i3);
        float *out = frow(n->dst, i1, i2, i3);
        const float *rr = res ? frow(res, i1, i2, i3) : NULL;
        double ss = tk->f->k->dot_f32(xr, xr, d);
        const float inv = (float)(1.0 / sqrt(ss / (double)d + (double)n->fp[0]));
        if (wr && rr)
            for (int64_t j = 0; j < d; j++) out[j] = rr[j] + xr[j] * inv * wr[j];
        else if (wr)
            for (int64_t j = 0; j < d; j++) out[j] = xr[j] * inv * wr[j];
        else if (rr)
            for (int64_t j = 0; j < d; j++) out[j] = rr[j] + xr[j] * inv;
        else
            for (int64_t j = 0; j < d; j++) out[j] = xr[j] * inv;
    }
}

static void elementwise_task(void *arg, int ith, int nth) {
    task *tk = arg;
    const lm_node *n = tk->n;
    const lm_tensor *a = n->src[0], *b = n->src[1];
    const bool bcast = b && lm_tensor_nrows(b) == 1 && lm_tensor_nrows(a) > 1;
    const int64_t d = a->ne[0];
    const float fp = n->fp[0];
    FOR_MY_ROWS(a, ith, nth) {
        ROW_IDX(a);
        const float *x = frow(a, i1, i2, i3);
        const float *y = b ? (bcast ? frow(b, 0, 0, 0) : frow(b, i1, i2, i3)) : NULL;
        float *o = frow(n->dst, i1, i2, i3);
        switch (n->op) {
        case LM_OP_GEGLU: tk->f->k->geglu(o, x, y, d); break;
        case LM_OP_SWIGLU: tk->f->k->swiglu(o, x, y, d); break;
        case LM_OP_ADD: for (int64_t j = 0; j < d; j++) o[j] = x[j] + y[j]; break;
        case LM_OP_MUL: for (int64_t j = 0; j < d; j++) o[j] = x[j] * y[j]; break;
        case LM_OP_SCALE: for (int64_t j = 0; j < d; j++) o[j] = x[j] * fp; break;
        case LM_OP_SOFTCAP: tk->f->k->softcap(o, x, fp, d); break;
        default: break;
        }
    }
}

static void cpy_task(void *arg, int ith, int nth) {
    task *tk = arg;
    const lm_node *n = tk->n;
    const lm_tensor *s = n->src[0];
    lm_tensor *dst = n->dst;
    const int64_t d = s->ne[0];
    float *tmp = tk->f->tbuf[ith];
    FOR_MY_ROWS(s, ith, nth) {
        ROW_IDX(s);
        lm_dequant_row(s->type, lm_tensor_row(s, i1, i2, i3), tmp, d);
        void *o = lm_tensor_row(dst, i1, i2, i3);
        switch (dst->type) {
        case LM_F32: memcpy(o, tmp, (size_t)d * 4); break;
        case LM_F16: for (int64_t j = 0; j < d; j++) ((uint16_t *)o)[j] = lm_f32_to_f16(tmp[j]); break;
        case LM_BF16: for (int64_t j = 0; j < d; j++) ((uint16_t *)o)[j] = lm_f32_to_bf16(tmp[j]); break;
        default: break;
        }
    }
}

/* ---------------------------------------------------------------------------------------- */
/* rope                                                                                     */

static void rope_row(float *o, const float *x, int64_t d, const double *cs, const double *sn, int32_t n_pairs, int mode) {
    if (o != x) memcpy(o, x, (size_t)d * sizeof(float));
    for (int32_t i = 0; i < n_pairs; i++) {
        const int64_t a = mode == LM_ROPE_NEOX ? i : 2 * i, b = mode == LM_ROPE_NEOX ? i + d / 2 : 2 * i + 1;
        const double x0 = x[a], x1 = x[b];
        o[a] = (float)(x0 * cs[i] - x1 * sn[i]);
        o[b] = (float)(x1 * cs[i] + x0 * sn[i]);
    }
}

static void rope_freqs(const lm_rope_params *rp, const lm_tensor *factors, double *fr) {
    const float *fac = factors ? frow(factors, 0, 0, 0) : NULL;
    for (int32_t i = 0; i < rp->n_pairs; i++) {
        fr[i] = (double)rp->freq_scale * pow((double)rp->theta, -2.0 * (double)i / (double)rp->freq_dim);
        if (fac) fr[i] /= (double)fac[i];
    }
}

static void rope_table_task(void *arg, int ith, int nth) {
    task *tk = arg;
    const rope_table *rt = tk->rope;
    const int32_t np = rt->rp.n_pairs;
    double *fr = (double *)tk->f->tbuf[ith];
    rope_freqs(&rt->rp, tk->n->src[2], fr);
    int64_t a, b;
    lm_split(rt->n, ith, nth, &a, &b);
    for (int64_t t = a; t < b; t++) {
        const double p = (double)rt->pos[t];
        for (int32_t i = 0; i < np; i++) {
            rt->cs[t * np + i] = cos(p * fr[i]);
            rt->sn[t * np + i] = sin(p * fr[i]);
        }
    }
}

static bool grow(void **p, size_t *cap, size_t bytes) {
    if (bytes <= *cap) return true;
    void *q = realloc(*p, bytes);
    if (!q) return false;
    *p = q;
    *cap = bytes;
    return true;
}

/* the step's table for this op's positions and frequencies: found, or made in the least recently
 * used slot */
static rope_table *rope_table_for(lm_cpu_fast *f, const lm_node *n) {
    const lm_tensor *x = n->src[0], *pos = n->src[1], *fac = n->src[2];
    const lm_rope_params rp = lm_node_rope_unpack(n, 0, 0);
    const int32_t T = (int32_t)x->ne[2], np = rp.n_pairs;
    const float *fv = fac ? frow(fac, 0, 0, 0) : NULL;
    rope_table *lru = &f->rope[0];
    for (int i = 0; i < ROPE_TABLES; i++) {
        rope_table *rt = &f->rope[i];
        if (rt->stamp < lru->stamp) lru = rt;
        if (!rt->valid || rt->n != T || rt->rp.n_pairs != np || rt->rp.freq_dim != rp.freq_dim || rt->rp.theta != rp.theta ||
            rt->rp.freq_scale != rp.freq_scale || (rt->factors != NULL) != (fv != NULL))
            continue;
        if (fv && memcmp(rt->factors, fv, (size_t)np * sizeof(float)) != 0) continue;
        int32_t t = 0;
        while (t < T && rt->pos[t] == ival(pos, t, 0)) t++;
        if (t < T) continue;
        rt->stamp = ++f->rope_clock;
        return rt;
    }
    rope_table *rt = lru;
    rt->valid = false;
    if (!grow((void **)&rt->pos, &rt->cap_pos, (size_t)T * sizeof(int32_t)) ||
        (fv && !grow((void **)&rt->factors, &rt->cap_fac, (size_t)np * sizeof(float))) ||
        !grow((void **)&rt->cs, &rt->cap_cs, 2 * (size_t)T * (size_t)np * sizeof(double)) || !need_tbuf(f, 2 * (size_t)np + 16))
        return NULL;
    rt->rp = rp;
    rt->n = T;
    for (int32_t t = 0; t < T; t++) rt->pos[t] = ival(pos, t, 0);
    if (fv) memcpy(rt->factors, fv, (size_t)np * sizeof(float));
    else {
        free(rt->factors);
        rt->factors = NULL;
        rt->cap_fac = 0;
    }
    rt->sn = rt->cs + (size_t)T * (size_t)np;
    task tk = {.f = f, .n = n, .rope = rt};
    lm_threadpool_run(f->tp, rope_table_task, &tk);
    rt->valid = true;
    rt->stamp = ++f->rope_clock;
    return rt;
}

static void rope_task(void *arg, int ith, int nth) {
    task *tk = arg;
    const lm_node *n = tk->n;
    const lm_tensor *x = n->src[0];
    const rope_table *rt = tk->rope;
    const int32_t np = rt->rp.n_pairs;
    const int64_t d = x->ne[0], H = x->ne[1];
    int64_t a, b;
    lm_split(H * x->ne[2], ith, nth, &a, &b);
    for (int64_t r = a; r < b; r++) {
        const int64_t h = r % H, t = r / H;
        rope_row(frow(n->dst, h, t, 0), frow(x, h, t, 0), d, rt->cs + t * np, rt->sn + t * np, np, rt->rp.mode);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* attention                                                                                */

static inline float kv_dot(const lm_cpu_kernels *k, lm_dtype t, const void *row, const float *q, int64_t d) {
    switch (t) {
    case LM_F16: return k->dot_f16(row, q, d);
    case LM_BF16: return k->dot_bf16(row, q, d);
    default: return k->dot_f32(row, q, d);
    }
}

static inline void kv_axpy(const lm_cpu_kernels *k, lm_dtype t, float *y, float a, const void *row, int64_t d) {
    switch (t) {
    case LM_F16: k->axpy_f16(y, a, row, d); break;
    case LM_BF16: k->axpy_bf16(y, a, row, d); break;
    default: k->axpy_f32(y, a, row, d); break;
    }
}

/* a KV row to f32 with the fast converters */
static inline void kv_row_f32(const lm_cpu_fast *f, lm_dtype t, const void *row, float *out, int64_t n) {
    switch (t) {
    case LM_F16: f->k->cvt_f16(row, out, n); break;
    case LM_BF16: f->k->cvt_bf16(row, out, n); break;
    case LM_Q8_0: lm_dequant_row(LM_Q8_0, row, out, n); break;
    case LM_E4M3: {
        const uint8_t *q = row;
        for (int64_t j = 0; j < n; j++) out[j] = f->e4m3[q[j]];
        break;
    }
    default: memcpy(out, row, (size_t)n * sizeof(float)); break;
    }
}

/* 8-bit caches have no direct dot / axpy kernels: their rows are always converted to f32 */
static inline bool kv_quantized(lm_dtype t) { return t == LM_Q8_0 || t == LM_E4M3; }

static inline int64_t attn_cells(const lm_attn_params *ap, int32_t p) {
    return ap->ring ? ap->cells_per_seq : lm_min64((int64_t)p + 1, ap->cells_per_seq);
}

#define ATT_CHUNK 128

/* the physical cell of logical cell c of a sequence whose page-table row is pt */
static inline int64_t attn_cell(const int32_t *pt, int32_t page, int64_t c) { return (int64_t)pt[c / page] * page + c % page; }

/* K = V layers: a cell's key is its value times k_norm, rotated to the cell's position. The
 * rotation's cos / sin advance by a recurrence (in double) along consecutive positions and are
 * recomputed directly at any jump. */
typedef struct key_rope {
    double *fr, *stc, *sts, *cc, *ss; /* frequencies, per-step cos / sin, current cos / sin */
    int32_t np;
    int64_t last_p;
} key_rope;

static void key_rope_init(key_rope *kr, const lm_attn_params *ap, const lm_tensor *factors, double *mem) {
    kr->np = ap->rope.n_pairs;
    kr->fr = mem;
    kr->stc = kr->fr + kr->np;
    kr->sts = kr->stc + kr->np;
    kr->cc = kr->sts + kr->np;
    kr->ss = kr->cc + kr->np;
    rope_freqs(&ap->rope, factors, kr->fr);
    for (int32_t i = 0; i < kr->np; i++) {
        kr->stc[i] = cos(kr->fr[i]);
        kr->sts[i] = sin(kr->fr[i]);
    }
    kr->last_p = INT64_MIN;
}

static void key_from_v(const lm_cpu_fast *f, const lm_attn_params *ap, const lm_tensor *V, int64_t g, int64_t cell,
                       int32_t pc, const float *knw, key_rope *kr, float *kt) {
    const int64_t dk = V->ne[0];
    kv_row_f32(f, V->type, lm_tensor_row(V, g, cell, 0), kt, dk);
    for (int64_t j = 0; j < dk; j++) kt[j] *= knw[j];
    if (pc == kr->last_p + 1 && kr->last_p != INT64_MIN) {
        for (int32_t i = 0; i < kr->np; i++) {
            const double c2 = kr->cc[i] * kr->stc[i] - kr->ss[i] * kr->sts[i];
            kr->ss[i] = kr->ss[i] * kr->stc[i] + kr->cc[i] * kr->sts[i];
            kr->cc[i] = c2;
        }
    } else {
        for (int32_t i = 0; i < kr->np; i++) {
            kr->cc[i] = cos((double)pc * kr->fr[i]);
            kr->ss[i] = sin((double)pc * kr->fr[i]);
        }
    }
    kr->last_p = pc;
    rope_row(kt, kt, dk, kr->cc, kr->ss, kr->np, ap->rope.mode);
}

/* floats of per-thread scratch the attention task needs */
static size_t attn_tbuf(const lm_node *n) {
    const int64_t dk = n->src[0]->ne[0], dv = n->src[2]->ne[0], G = n->src[0]->ne[1] / n->src[1]->ne[1];
    return (size_t)(dk + dv + G * (dv + 2) + (G + 1) * ATT_CHUNK + 2 + 10 * (dk / 2) + 64);
}

/* One work item = (token, KV head, split): the query heads of the group against the item's cells,
 * in chunks of ATT_CHUNK cells. Per chunk: (1) the visible cells' keys are made once (converted
 * to f32, or for K=V layers V * k_norm rotated to the cell's position) and scored against every
 * query head of the group; (2) each head's running max and sum are rescaled once; (3) softmax
 * weights come from one vectorized exp per head and V rows (converted once) are accumulated. */
static void attn_task(void *arg, int ith, int nth) {
    task *tk = arg;
    const lm_node *n = tk->n;
    const lm_cpu_kernels *k = tk->f->k;
    const lm_tensor *q = n->src[0], *K = n->src[1], *V = n->src[2], *cell_pos = n->src[3];
    const lm_tensor *pos = n->src[4], *seq = n->src[5], *kn = n->src[6];
    const lm_attn_params ap = lm_node_attn_unpack(n);
    const int64_t dk = q->ne[0], dv = V->ne[0], H = q->ne[1], Hkv = K->ne[1], G = H / Hkv;
    const int S = tk->n_split;
    float *kt = tk->f->tbuf[ith];            /* [dk] key of the current cell, f32 */
    float *vt = kt + dk;                     /* [dv] value of the current cell, f32 */
    float *acc = vt + dv;                    /* [G][dv] */
    float *ml = acc + G * dv;                /* [G][2]: running max, running sum */
    float *sc = ml + 2 * G;                  /* [G][ATT_CHUNK] scores of the chunk */
    int32_t *vis = (int32_t *)(sc + G * ATT_CHUNK); /* [ATT_CHUNK] visible cells of the chunk */
    const int64_t rc_off = (dk + dv + G * dv + 2 * G + G * ATT_CHUNK + ATT_CHUNK + 1) & ~(int64_t)1;
    double *rc = (double *)(kt + rc_off);    /* rope recurrence: fr, step c/s, cur c/s */
    key_rope kr = {0};
    if (ap.k_from_v) key_rope_init(&kr, &ap, n->src[7], rc);
    const float *knw = kn ? frow(kn, 0, 0, 0) : NULL;
    const bool conv_k = ap.k_from_v || (K->type != LM_F32 && G > 1) || kv_quantized(K->type);
    const bool conv_v = (V->type != LM_F32 && G > 1) || kv_quantized(V->type);
    for (int64_t it = ith; it < tk->n_items; it += nth) {
        const int64_t s = it % S, g = (it / S) % Hkv, t = it / S / Hkv;
        const int32_t p = ival(pos, t, 0), sq = ival(seq, t, 0);
        const int32_t *pt = (const int32_t *)lm_tensor_row(n->src[8], sq, 0, 0);
        const int64_t nc = attn_cells(&ap, p);
        int64_t c0, c1;
        lm_split(nc, (int)s, S, &c0, &c1);
        for (int64_t h = 0; h < G; h++) {
            ml[2 * h] = -INFINITY;
            ml[2 * h + 1] = 0;
        }
        memset(acc, 0, (size_t)(G * dv) * sizeof(float));
        kr.last_p = INT64_MIN;
        for (int64_t cs = c0; cs < c1; cs += ATT_CHUNK) {
            const int64_t ce = lm_min64(cs + ATT_CHUNK, c1);
            int nv = 0;
            /* (1) scores */
            for (int64_t c = cs; c < ce; c++) {
                const int64_t cell = attn_cell(pt, ap.page, c);
                const int32_t pc = ival(cell_pos, cell, 0);
                if (pc < 0 || pc > p || (ap.window > 0 && p - pc >= ap.window)) continue;
                const void *krow;
                if (ap.k_from_v) {
                    key_from_v(tk->f, &ap, V, g, cell, pc, knw, &kr, kt);
                    krow = kt;
                } else if (conv_k) {
                    kv_row_f32(tk->f, K->type, lm_tensor_row(K, g, cell, 0), kt, dk);
                    krow = kt;
                } else {
                    krow = lm_tensor_row(K, g, cell, 0);
                }
                float dots[8];
                if (conv_k) {
                    for (int64_t h0 = 0; h0 < G; h0 += 8) {
                        const float *qs[8];
                        const int nh = (int)lm_min64(8, G - h0);
                        for (int h = 0; h < nh; h++) qs[h] = frow(q, g * G + h0 + h, t, 0);
                        k->dot_f32_multi(krow, qs, nh, dk, dots);
                        for (int h = 0; h < nh; h++) sc[(h0 + h) * ATT_CHUNK + nv] = dots[h];
                    }
                } else {
                    for (int64_t h = 0; h < G; h++) sc[h * ATT_CHUNK + nv] = kv_dot(k, K->type, krow, frow(q, g * G + h, t, 0), dk);
                }
                for (int64_t h = 0; h < G; h++) {
                    float v = sc[h * ATT_CHUNK + nv] * ap.scale;
                    if (ap.softcap > 0) v = ap.softcap * tanhf(v / ap.softcap);
                    sc[h * ATT_CHUNK + nv] = v;
                }
                vis[nv++] = (int32_t)cell;
            }
            if (nv == 0) continue;
            /* (2) rescale once per chunk, (3) weights */
            for (int64_t h = 0; h < G; h++) {
                float *m = &ml[2 * h], *l = &ml[2 * h + 1], cm = -INFINITY;
                for (int j = 0; j < nv; j++) cm = fmaxf(cm, sc[h * ATT_CHUNK + j]);
                if (cm > *m) {
                    const float r = expf(*m - cm);
                    if (*l > 0)
                        for (int64_t j = 0; j < dv; j++) acc[h * dv + j] *= r;
                    *l *= r;
                    *m = cm;
                }
                *l += k->exp_sub(sc + h * ATT_CHUNK, *m, nv);
            }
            /* accumulate V */
            for (int j = 0; j < nv; j++) {
                const void *vrow = lm_tensor_row(V, g, vis[j], 0);
                if (conv_v) {
                    kv_row_f32(tk->f, V->type, vrow, vt, dv);
                    for (int64_t h0 = 0; h0 < G; h0 += 8) {
                        float *ys[8], ws[8];
                        const int nh = (int)lm_min64(8, G - h0);
                        for (int h = 0; h < nh; h++) {
                            ys[h] = acc + (h0 + h) * dv;
                            ws[h] = sc[(h0 + h) * ATT_CHUNK + j];
                        }
                        k->axpy_f32_multi(ys, ws, nh, vt, dv);
                    }
                } else {
                    for (int64_t h = 0; h < G; h++) kv_axpy(k, V->type, acc + h * dv, sc[h * ATT_CHUNK + j], vrow, dv);
                }
            }
        }
        for (int64_t h = 0; h < G; h++) {
            const int64_t hh = g * G + h;
            if (S == 1) {
                float *o = frow(n->dst, hh, t, 0);
                const float l = ml[2 * h + 1], inv = l > 0 ? 1.0f / l : 0.0f;
                for (int64_t j = 0; j < dv; j++) o[j] = acc[h * dv + j] * inv;
            } else {
                float *pp = tk->part + ((t * H + hh) * S + s) * (dv + 2);
                pp[0] = ml[2 * h];
                pp[1] = ml[2 * h + 1];
                memcpy(pp + 2, acc + h * dv, (size_t)dv * sizeof(float));
            }
        }
    }
}

static void attn_merge_task(void *arg, int ith, int nth) {
    task *tk = arg;
    const lm_node *n = tk->n;
    const int64_t dv = n->src[2]->ne[0], H = n->src[0]->ne[1], T = n->src[0]->ne[2];
    const int S = tk->n_split;
    int64_t a, b;
    lm_split(H * T, ith, nth, &a, &b);
    for (int64_t r = a; r < b; r++) {
        const int64_t h = r % H, t = r / H;
        const float *pp = tk->part + (t * H + h) * S * (dv + 2);
        float M = -INFINITY;
        for (int s = 0; s < S; s++) M = fmaxf(M, pp[s * (dv + 2)]);
        float *o = frow(n->dst, h, t, 0);
        memset(o, 0, (size_t)dv * sizeof(float));
        float L = 0;
        if (M > -INFINITY) {
            for (int s = 0; s < S; s++) {
                const float *ps = pp + s * (dv + 2);
                if (ps[1] <= 0) continue;
                const float e = expf(ps[0] - M);
                L += ps[1] * e;
                for (int64_t j = 0; j < dv; j++) o[j] += ps[2 + j] * e;
            }
        }
        const float inv = L > 0 ? 1.0f / L : 0.0f;
        for (int64_t j = 0; j < dv; j++) o[j] *= inv;
    }
}

/* Prefill attention, tiled (flash attention with the f32 GEMM micro-kernel): a work item is a
 * tile of a sequence's tokens (ATT_QR query rows = tokens x the query heads of one KV head) and
 * walks the cells in blocks of ATT_CB. Per block, the cells some token of the tile can see are
 * gathered, their keys and values converted to f32 once for the whole tile (K = V layers make
 * the keys here), S = K Q^T runs as GEMM tiles of the kernel table's sgemm (MR cells x NR query
 * rows), each row's online softmax rescales its output, and O += P V runs as tiles of MR value
 * dims x NR rows. K and V are read once per tile
 * instead of once per token, and the arithmetic runs at the FMA units' rate. */
#define ATT_QR 192
#define ATT_CB 128
#define ATT_TILE_MIN_T 8

typedef struct attn_tile { int32_t first, count; } attn_tile; /* a range of tk->order */

static int64_t attn_tile_tokens(int64_t G) { return lm_max64(1, ATT_QR / G); }

static size_t attn_tiled_tbuf(const lm_cpu_fast *f, const lm_node *n) {
    const int64_t dk = n->src[0]->ne[0], dv = n->src[2]->ne[0], G = n->src[0]->ne[1] / n->src[1]->ne[1];
    const int64_t qr = (int64_t)lm_pad((size_t)(attn_tile_tokens(G) * G), (size_t)f->k->sg_nr);
    const int64_t dvp = (int64_t)lm_pad((size_t)dv, (size_t)f->k->sg_mr);
    return (size_t)(qr * dk + 16 + ATT_CB * dk + ATT_CB * dvp + qr * ATT_CB * 2 + qr * dvp + 2 * qr + dk + dv + ATT_CB +
                    10 * (dk / 2) + 64);
}

static void attn_tiled_task(void *arg, int ith, int nth) {
    (void)nth;
    task *tk = arg;
    const lm_node *n = tk->n;
    const lm_cpu_kernels *k = tk->f->k;
    const lm_tensor *q = n->src[0], *K = n->src[1], *V = n->src[2], *cell_pos = n->src[3];
    const lm_tensor *pos = n->src[4], *seq = n->src[5], *kn = n->src[6];
    const lm_attn_params ap = lm_node_attn_unpack(n);
    const int64_t dk = q->ne[0], dv = V->ne[0], H = q->ne[1], Hkv = K->ne[1], G = H / Hkv;
    const int MR = k->sg_mr, NR = k->sg_nr;
    const int64_t qrmax = (int64_t)lm_pad((size_t)(attn_tile_tokens(G) * G), (size_t)NR), dvp = (int64_t)lm_pad((size_t)dv, (size_t)MR);
    float *qp = tk->f->tbuf[ith];       /* [qr/NR][dk][NR] the tile's queries, packed */
    float *kp = qp + lm_pad((size_t)(qrmax * dk), 16); /* [CB/MR][dk][MR] the block's keys, packed (64-byte aligned) */
    float *vp = kp + ATT_CB * dk;       /* [dv/MR][CB][MR] the block's values, packed */
    float *sc = vp + ATT_CB * dvp;      /* [qr][CB]        scores, then probabilities */
    float *pp = sc + qrmax * ATT_CB;    /* [qr/NR][CB][NR] probabilities, packed */
    float *o = pp + qrmax * ATT_CB;     /* [qr][dvp]       output accumulators */
    float *ml = o + qrmax * dvp;        /* [qr][2]         running max, running sum */
    float *kt = ml + 2 * qrmax, *vt = kt + dk;
    int32_t *vis = (int32_t *)(vt + dv); /* [CB] the block's cells some token sees */
    key_rope kr = {0};
    if (ap.k_from_v) key_rope_init(&kr, &ap, n->src[7], (double *)(void *)(((uintptr_t)(vis + ATT_CB) + 7) & ~(uintptr_t)7));
    const float *knw = kn ? frow(kn, 0, 0, 0) : NULL;
    const attn_tile *tiles = tk->tiles;
    for (;;) {
        /* largest tiles (latest positions) first, handed out dynamically */
        const int64_t it = __atomic_fetch_add(&tk->next, 1, __ATOMIC_RELAXED);
        if (it >= tk->n_items) break;
        const int64_t item = tk->n_items - 1 - it;
        const attn_tile tl = tiles[item / Hkv];
        const int64_t g = item % Hkv, qr = tl.count * G, npan = (qr + NR - 1) / NR;
        const int32_t *tok = tk->order + tl.first;
        const int32_t sq = ival(seq, tok[0], 0);
        const int32_t *pt = (const int32_t *)lm_tensor_row(n->src[8], sq, 0, 0);
        int32_t pmin = INT32_MAX, pmax = INT32_MIN;
        int64_t nc = 0;
        for (int32_t i = 0; i < tl.count; i++) {
            const int32_t p = ival(pos, tok[i], 0);
            pmin = p < pmin ? p : pmin;
            pmax = p > pmax ? p : pmax;
            nc = lm_max64(nc, attn_cells(&ap, p));
        }
        /* pack Q: query row j = token j / G, head g * G + j % G */
        for (int64_t j = 0; j < npan * NR; j++) {
            float *dst = qp + (j / NR) * dk * NR + j % NR;
            if (j < qr) {
                const float *src = frow(q, g * G + j % G, tok[j / G], 0);
                for (int64_t c = 0; c < dk; c++) dst[c * NR] = src[c];
            } else {
                for (int64_t c = 0; c < dk; c++) dst[c * NR] = 0.0f;
            }
        }
        for (int64_t j = 0; j < qr; j++) {
            ml[2 * j] = -INFINITY;
            ml[2 * j + 1] = 0;
        }
        memset(o, 0, (size_t)(qrmax * dvp) * sizeof(float));
        kr.last_p = INT64_MIN;
        for (int64_t cb = 0; cb < nc; cb += ATT_CB) {
            /* cells some token of the tile may see (exact masking per row below) */
            int nv = 0;
            for (int64_t c = cb; c < lm_min64(cb + ATT_CB, nc); c++) {
                const int64_t cell = attn_cell(pt, ap.page, c);
                const int32_t pc = ival(cell_pos, cell, 0);
                if (pc < 0 || pc > pmax || (ap.window > 0 && pmin - pc >= ap.window)) continue;
                vis[nv++] = (int32_t)cell;
            }
            if (nv == 0) continue;
            const int64_t nkp = (nv + MR - 1) / MR;
            /* keys [dk][MR] per MR cells, values [cells][MR] per MR dims */
            for (int i = 0; i < nkp * MR; i++) {
                float *kd = kp + (i / MR) * dk * MR + i % MR;
                if (i >= nv) {
                    for (int64_t c = 0; c < dk; c++) kd[c * MR] = 0.0f;
                    continue;
                }
                const int64_t cell = vis[i];
                const float *krow;
                if (ap.k_from_v) {
                    key_from_v(tk->f, &ap, V, g, cell, ival(cell_pos, cell, 0), knw, &kr, kt);
                    krow = kt;
                } else if (K->type == LM_F32) {
                    krow = lm_tensor_row(K, g, cell, 0);
                } else {
                    kv_row_f32(tk->f, K->type, lm_tensor_row(K, g, cell, 0), kt, dk);
                    krow = kt;
                }
                for (int64_t c = 0; c < dk; c++) kd[c * MR] = krow[c];
                const float *vrow;
                if (V->type == LM_F32) {
                    vrow = lm_tensor_row(V, g, cell, 0);
                } else {
                    kv_row_f32(tk->f, V->type, lm_tensor_row(V, g, cell, 0), vt, dv);
                    vrow = vt;
                }
                for (int64_t c = 0; c < dvp; c++) vp[(c / MR) * ATT_CB * MR + i * MR + c % MR] = c < dv ? vrow[c] : 0.0f;
            }
            /* S = K Q^T, stored [row][cell] */
            for (int64_t cp = 0; cp < nkp; cp++)
                for (int64_t jp = 0; jp < npan; jp++)
                    k->sgemm(dk, kp + cp * dk * MR, qp + jp * dk * NR, sc + jp * NR * ATT_CB + cp * MR, ATT_CB,
                             (int)lm_min64(MR, nv - cp * MR), (int)lm_min64(NR, qr - jp * NR), 0);
            /* online softmax per row; probabilities packed [cell][NR] per NR rows */
            for (int64_t j = 0; j < npan * NR; j++) {
                float *pr = pp + (j / NR) * ATT_CB * NR + j % NR;
                if (j >= qr) {
                    for (int i = 0; i < nv; i++) pr[i * NR] = 0.0f;
                    continue;
                }
                const int32_t p = ival(pos, tok[j / G], 0);
                float *sr = sc + j * ATT_CB, cm = -INFINITY;
                for (int i = 0; i < nv; i++) {
                    const int32_t pc = ival(cell_pos, vis[i], 0);
                    float v = sr[i] * ap.scale;
                    if (ap.softcap > 0) v = ap.softcap * tanhf(v / ap.softcap);
                    if (pc > p || (ap.window > 0 && p - pc >= ap.window)) v = -INFINITY;
                    sr[i] = v;
                    cm = fmaxf(cm, v);
                }
                float *m = &ml[2 * j], *l = &ml[2 * j + 1];
                if (cm == -INFINITY) {
                    for (int i = 0; i < nv; i++) pr[i * NR] = 0.0f;
                    continue;
                }
                if (cm > *m) {
                    const float r = expf(*m - cm);
                    if (*l > 0)
                        for (int64_t c = 0; c < dv; c++) o[j * dvp + c] *= r;
                    *l *= r;
                    *m = cm;
                }
                *l += k->exp_sub(sr, *m, nv);
                for (int i = 0; i < nv; i++) pr[i * NR] = sr[i];
            }
            /* O += P V */
            for (int64_t dp = 0; dp < dvp / MR; dp++)
                for (int64_t jp = 0; jp < npan; jp++)
                    k->sgemm(nv, vp + dp * ATT_CB * MR, pp + jp * ATT_CB * NR, o + jp * NR * dvp + dp * MR, dvp,
                             (int)lm_min64(MR, dv - dp * MR), (int)lm_min64(NR, qr - jp * NR), 1);
        }
        for (int64_t j = 0; j < qr; j++) {
            float *dst = frow(n->dst, g * G + j % G, tok[j / G], 0);
            const float l = ml[2 * j + 1], inv = l > 0 ? 1.0f / l : 0.0f;
            for (int64_t c = 0; c < dv; c++) dst[c] = o[j * dvp + c] * inv;
        }
    }
}

/* tokens grouped by sequence (stable), cut into tiles of at most attn_tile_tokens */
static bool op_attention_tiled(lm_cpu_fast *f, const lm_node *n) {
    const lm_tensor *q = n->src[0], *K = n->src[1], *seq = n->src[5];
    const int64_t T = q->ne[2], G = q->ne[1] / K->ne[1], tt = attn_tile_tokens(G);
    if (!need_tbuf(f, attn_tiled_tbuf(f, n))) return false;
    if (!need_wdata(f, (size_t)(2 * T + 1) * sizeof(int32_t) + (size_t)T * sizeof(attn_tile) + 64)) return false;
    attn_tile *tiles = (attn_tile *)f->wdata;
    int32_t *order = (int32_t *)(tiles + T);
    int64_t n_order = 0, n_tiles = 0;
    /* a counting pass per distinct sequence id, in first-appearance order */
    int32_t *seen = order + T; /* [T] tokens already placed: 1 */
    memset(seen, 0, (size_t)T * sizeof(int32_t));
    for (int64_t t0 = 0; t0 < T; t0++) {
        if (seen[t0]) continue;
        const int32_t sq = ival(seq, t0, 0);
        int64_t run = 0;
        for (int64_t t = t0; t < T; t++) {
            if (seen[t] || ival(seq, t, 0) != sq) continue;
            seen[t] = 1;
            if (run == 0) tiles[n_tiles++] = (attn_tile){(int32_t)n_order, 0};
            order[n_order++] = (int32_t)t;
            tiles[n_tiles - 1].count++;
            if (++run == tt) run = 0;
        }
    }
    task tk = {.f = f, .n = n, .tiles = tiles, .order = order, .n_items = n_tiles * K->ne[1]};
    lm_threadpool_run(f->tp, attn_tiled_task, &tk);
    return true;
}

static bool op_attention(lm_cpu_fast *f, const lm_node *n) {
    const lm_tensor *q = n->src[0], *K = n->src[1], *pos = n->src[4];
    const lm_attn_params ap = lm_node_attn_unpack(n);
    const int64_t T = q->ne[2], Hkv = K->ne[1], H = q->ne[1], dv = n->src[2]->ne[0];
    if (T >= ATT_TILE_MIN_T && f->k->sgemm && !f->no_tiled_attn) return op_attention_tiled(f, n);
    int64_t max_cells = 0;
    for (int64_t t = 0; t < T; t++) max_cells = lm_max64(max_cells, attn_cells(&ap, ival(pos, t, 0)));
    /* split the cells when (tokens x kv heads) alone cannot keep every thread busy */
    int S = 1;
    const int64_t units = T * Hkv;
    if (units < 2 * f->nth && max_cells >= 512) {
        S = (int)((2 * f->nth + units - 1) / units);
        S = (int)lm_min64(S, max_cells / 256);
        if (S < 1) S = 1;
    }
    task tk = {.f = f, .n = n, .n_split = S, .n_items = units * S};
    if (!need_tbuf(f, attn_tbuf(n))) return false;
    if (S > 1) {
        if (!need_wdata(f, (size_t)(T * H * S * (dv + 2)) * sizeof(float))) return false;
        tk.part = (float *)f->wdata;
    }
    lm_threadpool_run(f->tp, attn_task, &tk);
    if (S > 1) lm_threadpool_run(f->tp, attn_merge_task, &tk);
    return true;
}

/* ---------------------------------------------------------------------------------------- */
/* top-k and MoE                                                                            */

typedef struct kv_item { float v; int32_t i; } kv_item;
static inline bool better(kv_item a, kv_item b) { return a.v > b.v || (a.v == b.v && a.i < b.i); }

/* min-heap on `better`: the root is the worst of the kept items */
static void heap_down(kv_item *h, int n, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && better(h[w], h[l])) w = l;
        if (r < n && better(h[w], h[r])) w = r;
        if (w == i) return;
        kv_item t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

static void topk_task(void *arg, int ith, int nth) {
    task *tk = arg;
    const lm_node *n = tk->n;
    const lm_tensor *x = n->src[0];
    const int k = n->ip[0];
    kv_item *h = (kv_item *)tk->f->tbuf[ith];
    int64_t a, b;
    lm_split(x->ne[1], ith, nth, &a, &b);
    for (int64_t c = a; c < b; c++) {
        const float *xr = frow(x, c, 0, 0);
        int nh = 0;
        for (int64_t i = 0; i < x->ne[0]; i++) {
            kv_item it = {isnan(xr[i]) ? -INFINITY : xr[i], (int32_t)i};
            if (nh < k) {
                h[nh++] = it;
                if (nh == k)
                    for (int j = k / 2 - 1; j >= 0; j--) heap_down(h, k, j);
            } else if (better(it, h[0])) {
                h[0] = it;
                heap_down(h, k, 0);
            }
        }
        /* heap sort: repeatedly move the worst to the end */
        for (int m = k; m > 1; m--) {
            kv_item t = h[0];
            h[0] = h[m - 1];
            h[m - 1] = t;
            heap_down(h, m - 1, 0);
        }
        int32_t *o = (int32_t *)lm_tensor_row(n->dst, c, 0, 0);
        for (int j = 0; j < k; j++) o[j] = h[j].i;
    }
}

static void moe_weights_task(void *arg, int ith, int nth) {
    task *tk = arg;
    const lm_node *n = tk->n;
    const lm_tensor *lg = n->src[0], *ids = n->src[1], *sc = n->src[2];
    const int64_t k = ids->ne[0];
    int64_t a, b;
    lm_split(lg->ne[1], ith, nth, &a, &b);
    for (int64_t t = a; t < b; t++) {
        const float *l = frow(lg, t, 0, 0);
        float *o = frow(n->dst, t, 0, 0);
        float mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < k; j++) mx = fmaxf(mx, l[ival(ids, j, t)]);
        for (int64_t j = 0; j < k; j++) sum += (o[j] = expf(l[ival(ids, j, t)] - mx));
        for (int64_t j = 0; j < k; j++) {
            o[j] /= sum;
            if (sc) o[j] *= frow(sc, 0, 0, 0)[ival(ids, j, t)];
        }
    }
}

static void moe_sum_task(void *arg, int ith, int nth) {
    task *tk = arg;
    const lm_node *n = tk->n;
    const lm_tensor *y = n->src[0], *w = n->src[1];
    int64_t a, b;
    lm_split(y->ne[2], ith, nth, &a, &b);
    for (int64_t t = a; t < b; t++) {
        float *o = frow(n->dst, t, 0, 0);
        memset(o, 0, (size_t)y->ne[0] * sizeof(float));
        for (int64_t j = 0; j < y->ne[1]; j++) tk->f->k->axpy_f32(o, frow(w, t, 0, 0)[j], frow(y, j, t, 0), y->ne[0]);
    }
}

/* ---------------------------------------------------------------------------------------- */

/* Row-wise ops this small (elements of the output, or of the rows set_rows writes) run on the
   calling thread alone: splitting them costs more in synchronisation than it saves (decode of a
   small model: a few hundred such ops per token) */
#define SMALL_OP 8192

static void run_rowwise(lm_cpu_fast *f, lm_task_fn fn, task *tk, int64_t elems) {
    if (elems <= SMALL_OP) fn(tk, 0, 1);
    else lm_threadpool_run(f->tp, fn, tk);
}

void lm_cpu_fast_run(lm_cpu_fast *f, const lm_node *n) {
    task tk = {.f = f, .n = n};
    bool ok = true;
    switch (n->op) {
    case LM_OP_MATMUL: ok = op_matmul(f, n); break;
    case LM_OP_MATMUL_ID: ok = op_matmul_id(f, n); break;
    case LM_OP_ATTENTION: ok = op_attention(f, n); break;
    case LM_OP_GET_ROWS: run_rowwise(f, get_rows_task, &tk, lm_tensor_nelements(n->dst)); break;
    case LM_OP_SET_ROWS: run_rowwise(f, set_rows_task, &tk, lm_tensor_nelements(n->src[0])); break;
    case LM_OP_RMS_NORM: run_rowwise(f, rms_norm_task, &tk, lm_tensor_nelements(n->dst)); break;
    case LM_OP_ROPE:
        tk.rope = rope_table_for(f, n);
        ok = tk.rope != NULL;
        if (ok) run_rowwise(f, rope_task, &tk, lm_tensor_nelements(n->dst));
        break;
    case LM_OP_GEGLU:
    case LM_OP_SWIGLU:
    case LM_OP_ADD:
    case LM_OP_MUL:
    case LM_OP_SCALE:
    case LM_OP_SOFTCAP: run_rowwise(f, elementwise_task, &tk, lm_tensor_nelements(n->dst)); break;
    case LM_OP_CPY:
        ok = need_tbuf(f, (size_t)n->src[0]->ne[0] + 16);
        if (ok) lm_threadpool_run(f->tp, cpy_task, &tk);
        break;
    case LM_OP_TOPK:
        ok = need_tbuf(f, (size_t)n->ip[0] * 2 + 16);
        if (ok) lm_threadpool_run(f->tp, topk_task, &tk);
        break;
    case LM_OP_MOE_WEIGHTS: lm_threadpool_run(f->tp, moe_weights_task, &tk); break;
    case LM_OP_MOE_SUM: lm_threadpool_run(f->tp, moe_sum_task, &tk); break;
    default: lm_cpu_ref_run(n); break;
    }
    if (!ok) lm_cpu_ref_run(n); /* scratch allocation failed: fall back to the allocation-light reference */
}
