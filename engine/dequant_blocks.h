/*
 * dequant_blocks.h — the GGUF weight-block dequantizers (Q4_0 .. Q8_1, Q2_K .. Q6_K), n elements
 * (a multiple of the block size) to f32. Included by quant.c (the reference: lm_dequant_row)
 * and by cpu/kernels.c, which compiles them once per instruction set so the prefill GEMM's
 * dequantization is vectorized for the CPU it runs on. The includer defines H2F (f16 -> f32);
 * all arithmetic is exact-order float (no contraction: the project builds with
 * -ffp-contract=off), so every copy gives bit-identical values.
 */
#ifndef LM_DEQUANT_BLOCKS_H
#define LM_DEQUANT_BLOCKS_H

#include "dtype.h" /* lm_q3_K_scales, the block structs */

#include <stdint.h>
#include <string.h>

static inline void deq_q4_0(const void *src, float *y, int64_t n) {
    const lm_block_q4_0 *x = src;
    for (int64_t i = 0; i < n / LM_QK4_0; i++, y += LM_QK4_0) {
        const float d = H2F(x[i].d);
        for (int j = 0; j < LM_QK4_0 / 2; j++) {
            y[j] = d * (float)((x[i].qs[j] & 0x0F) - 8);
            y[j + LM_QK4_0 / 2] = d * (float)((x[i].qs[j] >> 4) - 8);
        }
    }
}

static inline void deq_q4_1(const void *src, float *y, int64_t n) {
    const lm_block_q4_1 *x = src;
    for (int64_t i = 0; i < n / LM_QK4_1; i++, y += LM_QK4_1) {
        const float d = H2F(x[i].d), m = H2F(x[i].m);
        for (int j = 0; j < LM_QK4_1 / 2; j++) {
            y[j] = d * (float)(x[i].qs[j] & 0x0F) + m;
            y[j + LM_QK4_1 / 2] = d * (float)(x[i].qs[j] >> 4) + m;
        }
    }
}

static inline void deq_q5_0(const void *src, float *y, int64_t n) {
    const lm_block_q5_0 *x = src;
    for (int64_t i = 0; i < n / LM_QK5_0; i++, y += LM_QK5_0) {
        const float d = H2F(x[i].d);
        uint32_t qh;
        memcpy(&qh, x[i].qh, 4);
        for (int j = 0; j < LM_QK5_0 / 2; j++) {
            const int x0 = (int)((x[i].qs[j] & 0x0F) | (((qh >> j) & 1u) << 4)) - 16;
            const int x1 = (int)((x[i].qs[j] >> 4) | (((qh >> (j + 16)) & 1u) << 4)) - 16;
            y[j] = d * (float)x0;
            y[j + LM_QK5_0 / 2] = d * (float)x1;
        }
    }
}

static inline void deq_q5_1(const void *src, float *y, int64_t n) {
    const lm_block_q5_1 *x = src;
    for (int64_t i = 0; i < n / LM_QK5_1; i++, y += LM_QK5_1) {
        const float d = H2F(x[i].d), m = H2F(x[i].m);
        uint32_t qh;
        memcpy(&qh, x[i].qh, 4);
        for (int j = 0; j < LM_QK5_1 / 2; j++) {
            const unsigned x0 = (x[i].qs[j] & 0x0Fu) | (((qh >> j) & 1u) << 4);
            const unsigned x1 = (x[i].qs[j] >> 4) | (((qh >> (j + 16)) & 1u) << 4);
            y[j] = d * (float)x0 + m;
            y[j + LM_QK5_1 / 2] = d * (float)x1 + m;
        }
    }
}

static inline void deq_q8_0(const void *src, float *y, int64_t n) {
    const lm_block_q8_0 *x = src;
    for (int64_t i = 0; i < n / LM_QK8_0; i++, y += LM_QK8_0) {
        const float d = H2F(x[i].d);
        for (int j = 0; j < LM_QK8_0; j++) y[j] = (float)x[i].qs[j] * d;
    }
}

static inline void deq_q8_1(const void *src, float *y, int64_t n) {
    const lm_block_q8_1 *x = src;
    for (int64_t i = 0; i < n / LM_QK8_1; i++, y += LM_QK8_1) {
        const float d = H2F(x[i].d);
        for (int j = 0; j < LM_QK8_1; j++) y[j] = (float)x[i].qs[j] * d;
    }
}

static inline void deq_q2_K(const void *src, float *y, int64_t n) {
    const lm_block_q2_K *x = src;
    for (int64_t i = 0; i < n / LM_QK_K; i++) {
        const float d = H2F(x[i].d), dmin = H2F(x[i].dmin);
        const uint8_t *q = x[i].qs;
        int is = 0;
        for (int n128 = 0; n128 < LM_QK_K; n128 += 128) {
            int shift = 0;
            for (int j = 0; j < 4; j++) {
                uint8_t sc = x[i].scales[is++];
                float dl = d * (float)(sc & 0xF), ml = dmin * (float)(sc >> 4);
                for (int l = 0; l < 16; l++) *y++ = dl * (float)((q[l] >> shift) & 3) - ml;
                sc = x[i].scales[is++];
                dl = d * (float)(sc & 0xF);
                ml = dmin * (float)(sc >> 4);
                for (int l = 0; l < 16; l++) *y++ = dl * (float)((q[l + 16] >> shift) & 3) - ml;
                shift += 2;
            }
            q += 32;
        }
    }
}

/* Unpack the 16 6-bit scales of a q3_K block (each returned minus 32). */

static inline void deq_q3_K(const void *src, float *y, int64_t n) {
    const lm_block_q3_K *x = src;
    for (int64_t i = 0; i < n / LM_QK_K; i++) {
        const float d_all = H2F(x[i].d);
        const uint8_t *q = x[i].qs, *hm = x[i].hmask;
        int8_t scales[16];
        lm_q3_K_scales(x[i].scales, scales);
        uint8_t m = 1;
        int is = 0;
        for (int n128 = 0; n128 < LM_QK_K; n128 += 128) {
            int shift = 0;
            for (int j = 0; j < 4; j++) {
                float dl = d_all * (float)scales[is++];
                for (int l = 0; l < 16; l++)
                    *y++ = dl * (float)((int)((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
                dl = d_all * (float)scales[is++];
                for (int l = 0; l < 16; l++)
                    *y++ = dl * (float)((int)((q[l + 16] >> shift) & 3) - ((hm[l + 16] & m) ? 0 : 4));
                shift += 2;
                m = (uint8_t)(m << 1);
            }
            q += 32;
        }
    }
}

/* 6-bit scale and min of sub-block j (0..7) of a q4_K / q5_K block. */
static inline void scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
    }
}


/* q4_K and q5_K (q5: the fifth bits from qh; a constant in each caller, so each folds to its own
 * loop) */
static inline __attribute__((always_inline)) void deq_k45(const void *src, float *y, int64_t n, int q5) {
    for (int64_t i = 0; i < n / LM_QK_K; i++) {
        const lm_block_q4_K *x4 = (const lm_block_q4_K *)src + i;
        const lm_block_q5_K *x5 = (const lm_block_q5_K *)src + i;
        const uint8_t *q = q5 ? x5->qs : x4->qs, *qh = q5 ? x5->qh : NULL, *scales = q5 ? x5->scales : x4->scales;
        const float d = H2F(q5 ? x5->d : x4->d), dmin = H2F(q5 ? x5->dmin : x4->dmin);
        int is = 0;
        uint8_t u1 = 1, u2 = 2;
        for (int j = 0; j < LM_QK_K; j += 64) {
            uint8_t sc, m;
            scale_min_k4(is + 0, scales, &sc, &m);
            const float d1 = d * (float)sc, m1 = dmin * (float)m;
            scale_min_k4(is + 1, scales, &sc, &m);
            const float d2 = d * (float)sc, m2 = dmin * (float)m;
            for (int l = 0; l < 32; l++) *y++ = d1 * (float)((q[l] & 0xF) + (q5 && (qh[l] & u1) ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (float)((q[l] >> 4) + (q5 && (qh[l] & u2) ? 16 : 0)) - m2;
            q += 32;
            is += 2;
            u1 = (uint8_t)(u1 << 2);
            u2 = (uint8_t)(u2 << 2);
        }
    }
}

static inline void deq_q4_K(const void *src, float *y, int64_t n) { deq_k45(src, y, n, 0); }
static inline void deq_q5_K(const void *src, float *y, int64_t n) { deq_k45(src, y, n, 1); }

static inline void deq_q6_K(const void *src, float *y, int64_t n) {
    const lm_block_q6_K *x = src;
    for (int64_t i = 0; i < n / LM_QK_K; i++) {
        const float d = H2F(x[i].d);
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        const int8_t *sc = x[i].scales;
        for (int n128 = 0; n128 < LM_QK_K; n128 += 128) {
            /* a scale per 16 values: hoisted out of 16-long loops the compiler can vectorize */
            for (int is = 0; is < 2; is++) {
                const float s1 = d * (float)sc[is + 0], s2 = d * (float)sc[is + 2];
                const float s3 = d * (float)sc[is + 4], s4 = d * (float)sc[is + 6];
                for (int l = 16 * is; l < 16 * is + 16; l++) {
                    const int q1 = (int)((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                    const int q2 = (int)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                    const int q3 = (int)((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                    const int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                    y[l + 0] = s1 * (float)q1;
                    y[l + 32] = s2 * (float)q2;
                    y[l + 64] = s3 * (float)q3;
                    y[l + 96] = s4 * (float)q4;
                }
            }
            y += 128;
            ql += 64;
            qh += 32;
            sc += 8;
        }
    }
}

#endif /* LM_DEQUANT_BLOCKS_H */
