/*
 * kernels.c — CPU inner loops (see kernels.h). Compiled once per instruction set:
 *   LM_KERNELS_NAME = lm_cpu_kernels_generic : plain C (auto-vectorized for the baseline ISA)
 *   LM_KERNELS_NAME = lm_cpu_kernels_avx2    : with -mavx2 -mfma -mf16c, hand-written dots
 *
 * Quantized dots (AVX2): one 32-byte vector holds a 32-element block. Weight nibbles are
 * unpacked to bytes, _mm256_maddubs_epi16 multiplies unsigned x signed bytes into int16 pairs
 * and _mm256_madd_epi16 widens to int32; the block scale is applied in float with one FMA per
 * block. Per 32 weights: one 16..22-byte load of weights and one 32-byte load of activations,
 * so decode is bound by weight bandwidth, not arithmetic.
 */
#include "kernels.h"

#include <math.h>
#include <string.h>

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#define HAVE_AVX2 1
#endif

#ifndef LM_KERNELS_NAME
#define LM_KERNELS_NAME lm_cpu_kernels_generic
#define LM_KERNELS_ISA "generic"
#endif

/* ---------------------------------------------------------------------------------------- */
/* float dots and axpy                                                                      */

#ifdef HAVE_AVX2
static inline float hsum8(__m256 x) {
    __m128 r = _mm_add_ps(_mm256_extractf128_ps(x, 1), _mm256_castps256_ps128(x));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

static inline __m256 load_f16x8(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
static inline __m256 load_bf16x8(const uint16_t *p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}
#endif

static float dot_f32(const float *a, const float *b, int64_t n) {
    int64_t i = 0;
    float s = 0.0f;
#ifdef HAVE_AVX2
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s = hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
#else
    float acc[8] = {0};
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += a[i + j] * b[i + j];
    for (int j = 0; j < 8; j++) s += acc[j];
#endif
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

static float dot_f16(const uint16_t *a, const float *b, int64_t n) {
    int64_t i = 0;
    float s = 0.0f;
#ifdef HAVE_AVX2
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(load_f16x8(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(load_f16x8(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(load_f16x8(a + i), _mm256_loadu_ps(b + i), s0);
    s = hsum8(_mm256_add_ps(s0, s1));
#endif
    for (; i < n; i++) s += lm_f16_to_f32(a[i]) * b[i];
    return s;
}

static float dot_bf16(const uint16_t *a, const float *b, int64_t n) {
    int64_t i = 0;
    float s = 0.0f;
#ifdef HAVE_AVX2
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(load_bf16x8(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(load_bf16x8(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(load_bf16x8(a + i), _mm256_loadu_ps(b + i), s0);
    s = hsum8(_mm256_add_ps(s0, s1));
#endif
    for (; i < n; i++) s += lm_bf16_to_f32(a[i]) * b[i];
    return s;
}

static void axpy_f32(float *y, float a, const float *x, int64_t n) {
    int64_t i = 0;
#ifdef HAVE_AVX2
    const __m256 va = _mm256_set1_ps(a);
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
#endif
    for (; i < n; i++) y[i] += a * x[i];
}

static void axpy_f16(float *y, float a, const uint16_t *x, int64_t n) {
    int64_t i = 0;
#ifdef HAVE_AVX2
    const __m256 va = _mm256_set1_ps(a);
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, load_f16x8(x + i), _mm256_loadu_ps(y + i)));
#endif
    for (; i < n; i++) y[i] += a * lm_f16_to_f32(x[i]);
}

static void axpy_bf16(float *y, float a, const uint16_t *x, int64_t n) {
    int64_t i = 0;
#ifdef HAVE_AVX2
    const __m256 va = _mm256_set1_ps(a);
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, load_bf16x8(x + i), _mm256_loadu_ps(y + i)));
#endif
    for (; i < n; i++) y[i] += a * lm_bf16_to_f32(x[i]);
}

/* ---------------------------------------------------------------------------------------- */
/* quantized dots (AVX2)                                                                    */

#ifdef HAVE_AVX2
#define H2F(x) _cvtsh_ss(x)

/* 32 nibbles -> 32 bytes: low nibbles of bytes 0..15 then high nibbles */
static inline __m256i nibbles32(const uint8_t *p) {
    const __m128i t = _mm_loadu_si128((const __m128i *)p);
    const __m256i b = _mm256_insertf128_si256(_mm256_castsi128_si256(t), _mm_srli_epi16(t, 4), 1);
    return _mm256_and_si256(_mm256_set1_epi8(0x0F), b);
}

/* 32 bits -> 32 bytes of 0xFF (bit set) / 0x00 */
static inline __m256i bits32(const uint8_t *p) {
    uint32_t x;
    memcpy(&x, p, 4);
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0x0000000000000000);
    __m256i b = _mm256_shuffle_epi8(_mm256_set1_epi32((int)x), shuf);
    b = _mm256_or_si256(b, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
    return _mm256_cmpeq_epi8(b, _mm256_set1_epi64x(-1));
}

/* signed x signed bytes -> 8 float lanes of pair sums */
static inline __m256 mul_sum_i8(__m256i x, __m256i y) {
    const __m256i ax = _mm256_sign_epi8(x, x);
    const __m256i sy = _mm256_sign_epi8(y, x);
    const __m256i d = _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sy), _mm256_set1_epi16(1));
    return _mm256_cvtepi32_ps(d);
}

/* unsigned x signed bytes -> 8 float lanes */
static inline __m256 mul_sum_u8_i8(__m256i x, __m256i y) {
    const __m256i d = _mm256_madd_epi16(_mm256_maddubs_epi16(x, y), _mm256_set1_epi16(1));
    return _mm256_cvtepi32_ps(d);
}

static float dot_q4_0(int64_t n, const void *vw, const void *vx) {
    const lm_block_q4_0 *w = vw;
    const lm_block_q8_0 *x = vx;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / LM_QK8_0; i++) {
        const __m256 d = _mm256_set1_ps(H2F(w[i].d) * H2F(x[i].d));
        const __m256i qw = _mm256_sub_epi8(nibbles32(w[i].qs), _mm256_set1_epi8(8));
        acc = _mm256_fmadd_ps(d, mul_sum_i8(qw, _mm256_loadu_si256((const __m256i *)x[i].qs)), acc);
    }
    return hsum8(acc);
}

static float dot_q4_1(int64_t n, const void *vw, const void *vx) {
    const lm_block_q4_1 *w = vw;
    const lm_block_q8_1 *x = vx;
    __m256 acc = _mm256_setzero_ps();
    float summ = 0;
    for (int64_t i = 0; i < n / LM_QK8_1; i++) {
        const __m256 d = _mm256_set1_ps(H2F(w[i].d) * H2F(x[i].d));
        summ += H2F(w[i].m) * H2F(x[i].s);
        acc = _mm256_fmadd_ps(d, mul_sum_u8_i8(nibbles32(w[i].qs), _mm256_loadu_si256((const __m256i *)x[i].qs)), acc);
    }
    return hsum8(acc) + summ;
}

static float dot_q5_0(int64_t n, const void *vw, const void *vx) {
    const lm_block_q5_0 *w = vw;
    const lm_block_q8_0 *x = vx;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / LM_QK8_0; i++) {
        const __m256 d = _mm256_set1_ps(H2F(w[i].d) * H2F(x[i].d));
        __m256i qw = nibbles32(w[i].qs);
        /* bit clear -> value - 16: OR 0xF0 makes the byte (nib - 16) as int8 */
        const __m256i hi = _mm256_andnot_si256(bits32(w[i].qh), _mm256_set1_epi8((char)0xF0));
        qw = _mm256_or_si256(qw, hi);
        acc = _mm256_fmadd_ps(d, mul_sum_i8(qw, _mm256_loadu_si256((const __m256i *)x[i].qs)), acc);
    }
    return hsum8(acc);
}

static float dot_q5_1(int64_t n, const void *vw, const void *vx) {
    const lm_block_q5_1 *w = vw;
    const lm_block_q8_1 *x = vx;
    __m256 acc = _mm256_setzero_ps();
    float summ = 0;
    for (int64_t i = 0; i < n / LM_QK8_1; i++) {
        const __m256 d = _mm256_set1_ps(H2F(w[i].d) * H2F(x[i].d));
        summ += H2F(w[i].m) * H2F(x[i].s);
        __m256i qw = nibbles32(w[i].qs);
        qw = _mm256_or_si256(qw, _mm256_and_si256(bits32(w[i].qh), _mm256_set1_epi8(0x10)));
        acc = _mm256_fmadd_ps(d, mul_sum_u8_i8(qw, _mm256_loadu_si256((const __m256i *)x[i].qs)), acc);
    }
    return hsum8(acc) + summ;
}

static float dot_q8_0(int64_t n, const void *vw, const void *vx) {
    const lm_block_q8_0 *w = vw;
    const lm_block_q8_0 *x = vx;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / LM_QK8_0; i++) {
        const __m256 d = _mm256_set1_ps(H2F(w[i].d) * H2F(x[i].d));
        const __m256i qw = _mm256_loadu_si256((const __m256i *)w[i].qs);
        acc = _mm256_fmadd_ps(d, mul_sum_i8(qw, _mm256_loadu_si256((const __m256i *)x[i].qs)), acc);
    }
    return hsum8(acc);
}

/* q4_K / q5_K: unpack the 12 scale bytes into 8 scales (bytes 0..7) and 8 mins (bytes 8..15) */
static inline void k4_unpack(const uint8_t *s12, uint32_t u[4]) {
    const uint32_t kmask1 = 0x3f3f3f3f, kmask2 = 0x0f0f0f0f, kmask3 = 0x03030303;
    memcpy(u, s12, 12);
    u[3] = ((u[2] >> 4) & kmask2) | (((u[1] >> 6) & kmask3) << 4);
    const uint32_t uaux = u[1] & kmask1;
    u[1] = (u[2] & kmask2) | (((u[0] >> 6) & kmask3) << 4);
    u[2] = uaux;
    u[0] &= kmask1;
}

static float dot_q4_K(int64_t n, const void *vw, const void *vx) {
    const lm_block_q4_K *w = vw;
    const lm_block_q8_K *x = vx;
    __m256 acc = _mm256_setzero_ps();
    float accm = 0;
    const __m256i m4 = _mm256_set1_epi8(0xF);
    for (int64_t i = 0; i < n / LM_QK_K; i++) {
        const float d = x[i].d * H2F(w[i].d), dmin = x[i].d * H2F(w[i].dmin);
        uint32_t u[4];
        k4_unpack(w[i].scales, u);
        const uint8_t *sc = (const uint8_t *)u, *mn = sc + 8;
        int summ = 0;
        for (int j = 0; j < 8; j++) summ += mn[j] * (x[i].bsums[2 * j] + x[i].bsums[2 * j + 1]);
        accm -= dmin * (float)summ;
        const uint8_t *q4 = w[i].qs;
        const int8_t *q8 = x[i].qs;
        __m256i sumi = _mm256_setzero_si256();
        for (int j = 0; j < 4; j++) {
            const __m256i bits = _mm256_loadu_si256((const __m256i *)(q4 + 32 * j));
            const __m256i lo = _mm256_and_si256(bits, m4), hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
            __m256i pl = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(q8 + 64 * j)));
            __m256i ph = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(q8 + 64 * j + 32)));
            pl = _mm256_madd_epi16(_mm256_set1_epi16(sc[2 * j]), pl);
            ph = _mm256_madd_epi16(_mm256_set1_epi16(sc[2 * j + 1]), ph);
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(pl, ph));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum8(acc) + accm;
}

static float dot_q5_K(int64_t n, const void *vw, const void *vx) {
    const lm_block_q5_K *w = vw;
    const lm_block_q8_K *x = vx;
    __m256 acc = _mm256_setzero_ps();
    float accm = 0;
    const __m256i m4 = _mm256_set1_epi8(0xF), s16 = _mm256_set1_epi8(16);
    for (int64_t i = 0; i < n / LM_QK_K; i++) {
        const float d = x[i].d * H2F(w[i].d), dmin = x[i].d * H2F(w[i].dmin);
        uint32_t u[4];
        k4_unpack(w[i].scales, u);
        const uint8_t *sc = (const uint8_t *)u, *mn = sc + 8;
        int summ = 0;
        for (int j = 0; j < 8; j++) summ += mn[j] * (x[i].bsums[2 * j] + x[i].bsums[2 * j + 1]);
        accm -= dmin * (float)summ;
        const uint8_t *q5 = w[i].qs;
        const int8_t *q8 = x[i].qs;
        const __m256i hbits = _mm256_loadu_si256((const __m256i *)w[i].qh);
        __m256i sumi = _mm256_setzero_si256();
        for (int j = 0; j < 4; j++) {
            const __m256i bits = _mm256_loadu_si256((const __m256i *)(q5 + 32 * j));
            const __m256i ml = _mm256_set1_epi8((char)(1 << (2 * j))), mh = _mm256_set1_epi8((char)(1 << (2 * j + 1)));
            __m256i lo = _mm256_and_si256(bits, m4), hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
            lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hbits, ml), ml), s16));
            hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hbits, mh), mh), s16));
            __m256i pl = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(q8 + 64 * j)));
            __m256i ph = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(q8 + 64 * j + 32)));
            pl = _mm256_madd_epi16(_mm256_set1_epi16(sc[2 * j]), pl);
            ph = _mm256_madd_epi16(_mm256_set1_epi16(sc[2 * j + 1]), ph);
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(pl, ph));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum8(acc) + accm;
}

static float dot_q6_K(int64_t n, const void *vw, const void *vx) {
    const lm_block_q6_K *w = vw;
    const lm_block_q8_K *x = vx;
    __m256 acc = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0xF), m2 = _mm256_set1_epi8(3), k32 = _mm256_set1_epi8(32);
    for (int64_t i = 0; i < n / LM_QK_K; i++) {
        const float d = x[i].d * H2F(w[i].d);
        const uint8_t *ql = w[i].ql, *qh = w[i].qh;
        const int8_t *q8 = x[i].qs, *sc = w[i].scales;
        __m256i sumi = _mm256_setzero_si256();
        for (int half = 0; half < 2; half++) {
            const __m256i b1 = _mm256_loadu_si256((const __m256i *)ql);
            const __m256i b2 = _mm256_loadu_si256((const __m256i *)(ql + 32));
            const __m256i bh = _mm256_loadu_si256((const __m256i *)qh);
            const __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(bh, m2), 4);
            const __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(bh, 2), m2), 4);
            const __m256i h2 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(bh, 4), m2), 4);
            const __m256i h3 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(bh, 6), m2), 4);
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(b1, m4), h0);
            q[1] = _mm256_or_si256(_mm256_and_si256(b2, m4), h1);
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b1, 4), m4), h2);
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b2, 4), m4), h3);
            for (int k = 0; k < 4; k++) {
                const __m256i y = _mm256_loadu_si256((const __m256i *)(q8 + 32 * k));
                __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(q[k], y), _mm256_maddubs_epi16(k32, y));
                const __m256i s = _mm256_set_m128i(_mm_set1_epi16(sc[2 * k + 1]), _mm_set1_epi16(sc[2 * k]));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(s, p));
            }
            ql += 64;
            qh += 32;
            q8 += 128;
            sc += 8;
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum8(acc);
}
#endif /* HAVE_AVX2 */

const lm_cpu_kernels LM_KERNELS_NAME = {
    .isa = LM_KERNELS_ISA,
    .dot_f32 = dot_f32,
    .dot_f16 = dot_f16,
    .dot_bf16 = dot_bf16,
    .axpy_f32 = axpy_f32,
    .axpy_f16 = axpy_f16,
    .axpy_bf16 = axpy_bf16,
#ifdef HAVE_AVX2
    .vec_type = {[LM_Q4_0] = LM_Q8_0, [LM_Q4_1] = LM_Q8_1, [LM_Q5_0] = LM_Q8_0, [LM_Q5_1] = LM_Q8_1,
                 [LM_Q8_0] = LM_Q8_0, [LM_Q4_K] = LM_Q8_K, [LM_Q5_K] = LM_Q8_K, [LM_Q6_K] = LM_Q8_K},
    .vec_dot = {[LM_Q4_0] = dot_q4_0, [LM_Q4_1] = dot_q4_1, [LM_Q5_0] = dot_q5_0, [LM_Q5_1] = dot_q5_1,
                [LM_Q8_0] = dot_q8_0, [LM_Q4_K] = dot_q4_K, [LM_Q5_K] = dot_q5_K, [LM_Q6_K] = dot_q6_K},
#endif
};
