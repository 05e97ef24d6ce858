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
#if defined(HAVE_AVX2) && defined(__AVX512F__)
#define HAVE_AVX512 1
#endif

#ifdef HAVE_AVX2
#define H2F(x) _cvtsh_ss(x)
#else
#define H2F(x) lm_f16_to_f32(x)
#endif
#include "../dequant_blocks.h" /* the weight-block dequantizers, vectorized for this table's ISA */

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
/* GeGLU                                                                                    */

#ifdef HAVE_AVX2
/* e^x for x in [-87, 87]: 2^n * p(r), r = x - n ln2 in [-ln2/2, ln2/2], degree-6 polynomial
 * (relative error < 2e-7 over the range, checked against the reference in the conformance suite) */
static inline __m256 exp8(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(87.0f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}
#endif

static void dot_f32_multi(const float *x, const float *const *y, int nh, int64_t n, float *out) {
    int h0 = 0;
#ifdef HAVE_AVX2
    for (; h0 + 4 <= nh; h0 += 4) {
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
        const float *y0 = y[h0], *y1 = y[h0 + 1], *y2 = y[h0 + 2], *y3 = y[h0 + 3];
        int64_t i = 0;
        for (; i + 8 <= n; i += 8) {
            const __m256 v = _mm256_loadu_ps(x + i);
            a0 = _mm256_fmadd_ps(v, _mm256_loadu_ps(y0 + i), a0);
            a1 = _mm256_fmadd_ps(v, _mm256_loadu_ps(y1 + i), a1);
            a2 = _mm256_fmadd_ps(v, _mm256_loadu_ps(y2 + i), a2);
            a3 = _mm256_fmadd_ps(v, _mm256_loadu_ps(y3 + i), a3);
        }
        float r[4] = {hsum8(a0), hsum8(a1), hsum8(a2), hsum8(a3)};
        for (; i < n; i++)
            for (int h = 0; h < 4; h++) r[h] += x[i] * y[h0 + h][i];
        for (int h = 0; h < 4; h++) out[h0 + h] = r[h];
    }
#endif
    for (; h0 < nh; h0++) out[h0] = dot_f32(x, y[h0], n);
}

static void axpy_f32_multi(float *const *y, const float *a, int nh, const float *x, int64_t n) {
    int h0 = 0;
#ifdef HAVE_AVX2
    for (; h0 + 4 <= nh; h0 += 4) {
        const __m256 c0 = _mm256_set1_ps(a[h0]), c1 = _mm256_set1_ps(a[h0 + 1]), c2 = _mm256_set1_ps(a[h0 + 2]),
                     c3 = _mm256_set1_ps(a[h0 + 3]);
        float *y0 = y[h0], *y1 = y[h0 + 1], *y2 = y[h0 + 2], *y3 = y[h0 + 3];
        int64_t i = 0;
        for (; i + 8 <= n; i += 8) {
            const __m256 v = _mm256_loadu_ps(x + i);
            _mm256_storeu_ps(y0 + i, _mm256_fmadd_ps(c0, v, _mm256_loadu_ps(y0 + i)));
            _mm256_storeu_ps(y1 + i, _mm256_fmadd_ps(c1, v, _mm256_loadu_ps(y1 + i)));
            _mm256_storeu_ps(y2 + i, _mm256_fmadd_ps(c2, v, _mm256_loadu_ps(y2 + i)));
            _mm256_storeu_ps(y3 + i, _mm256_fmadd_ps(c3, v, _mm256_loadu_ps(y3 + i)));
        }
        for (; i < n; i++)
            for (int h = 0; h < 4; h++) y[h0 + h][i] += a[h0 + h] * x[i];
    }
#endif
    for (; h0 < nh; h0++) axpy_f32(y[h0], a[h0], x, n);
}

static void cvt_f16(const uint16_t *x, float *y, int64_t n) {
    int64_t i = 0;
#ifdef HAVE_AVX2
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, load_f16x8(x + i));
#endif
    for (; i < n; i++) y[i] = lm_f16_to_f32(x[i]);
}

static void cvt_bf16(const uint16_t *x, float *y, int64_t n) {
    int64_t i = 0;
#ifdef HAVE_AVX2
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, load_bf16x8(x + i));
#endif
    for (; i < n; i++) y[i] = lm_bf16_to_f32(x[i]);
}

static float exp_sub(float *x, float m, int64_t n) {
    int64_t i = 0;
    float sum = 0;
#ifdef HAVE_AVX2
    __m256 acc = _mm256_setzero_ps();
    const __m256 vm = _mm256_set1_ps(m);
    for (; i + 8 <= n; i += 8) {
        const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        _mm256_storeu_ps(x + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    sum = hsum8(acc);
#endif
    for (; i < n; i++) sum += (x[i] = expf(x[i] - m));
    return sum;
}

/* silu(g) u = g u / (1 + e^-g) */
static void swiglu(float *y, const float *g, const float *u, int64_t n) {
    int64_t i = 0;
#ifdef HAVE_AVX2
    const __m256 one = _mm256_set1_ps(1.0f), neg = _mm256_set1_ps(-0.0f);
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(g + i);
        const __m256 s = _mm256_div_ps(x, _mm256_add_ps(one, exp8(_mm256_xor_ps(x, neg))));
        _mm256_storeu_ps(y + i, _mm256_mul_ps(s, _mm256_loadu_ps(u + i)));
    }
#endif
    for (; i < n; i++) y[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static void geglu(float *y, const float *g, const float *u, int64_t n) {
    int64_t i = 0;
#ifdef HAVE_AVX2
    const __m256 c = _mm256_set1_ps(-2.0f * 0.7978845608028654f), k = _mm256_set1_ps(0.044715f), one = _mm256_set1_ps(1.0f);
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(g + i);
        const __m256 z = _mm256_mul_ps(c, _mm256_fmadd_ps(_mm256_mul_ps(k, x), _mm256_mul_ps(x, x), x));
        const __m256 gl = _mm256_div_ps(x, _mm256_add_ps(one, exp8(z)));
        _mm256_storeu_ps(y + i, _mm256_mul_ps(gl, _mm256_loadu_ps(u + i)));
    }
#endif
    for (; i < n; i++) {
        const float x = g[i];
        y[i] = 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x))) * u[i];
    }
}

/* y[i] = cap * tanh(x[i] / cap), tanh(t) = 1 - 2 / (1 + exp(2t)) (exact limits at +-inf; the
 * absolute error stays at float rounding level, which is all a logit cap needs) */
static void softcap(float *y, const float *x, float cap, int64_t n) {
    int64_t i = 0;
    const float inv = 1.0f / cap;
#ifdef HAVE_AVX2
    const __m256 two_inv = _mm256_set1_ps(2.0f * inv), vc = _mm256_set1_ps(cap), one = _mm256_set1_ps(1.0f), two = _mm256_set1_ps(2.0f);
    for (; i + 8 <= n; i += 8) {
        const __m256 e = exp8(_mm256_mul_ps(_mm256_loadu_ps(x + i), two_inv));
        _mm256_storeu_ps(y + i, _mm256_mul_ps(vc, _mm256_sub_ps(one, _mm256_div_ps(two, _mm256_add_ps(one, e)))));
    }
#endif
    for (; i < n; i++) y[i] = cap * tanhf(x[i] * inv);
}

/* ---------------------------------------------------------------------------------------- */
/* quantized dots (AVX2) against q16 activations                                            */

#ifdef HAVE_AVX2

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

/* 32 signed weight bytes x 32 int16 activations -> 8 int32 lanes (low 16 and high 16 separately
 * when the two halves carry different scales) */
static inline __m256i dot_lo16(__m256i w, const int16_t *a) {
    return _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm256_castsi256_si128(w)), _mm256_loadu_si256((const __m256i *)a));
}
static inline __m256i dot_hi16(__m256i w, const int16_t *a) {
    return _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm256_extracti128_si256(w, 1)), _mm256_loadu_si256((const __m256i *)(a + 16)));
}
static inline __m256 dot32(__m256i w, const int16_t *a) {
    return _mm256_cvtepi32_ps(_mm256_add_epi32(dot_lo16(w, a), dot_hi16(w, a)));
}
static inline float asum(const lm_block_q16 *x) { return x->d * (float)(x->bsum[0] + x->bsum[1]); }

static float dot_q4_0(int64_t n, const void *vw, const void *vx) {
    const lm_block_q4_0 *w = vw;
    const lm_block_q16 *x = vx;
    __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t i = 0; i < n / 32; i++) {
        const __m256i q = _mm256_sub_epi8(nibbles32(w[i].qs), _mm256_set1_epi8(8));
        acc[i & 1] = _mm256_fmadd_ps(_mm256_set1_ps(H2F(w[i].d) * x[i].d), dot32(q, x[i].qs), acc[i & 1]);
    }
    return hsum8(_mm256_add_ps(acc[0], acc[1]));
}

static float dot_q4_1(int64_t n, const void *vw, const void *vx) {
    const lm_block_q4_1 *w = vw;
    const lm_block_q16 *x = vx;
    __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    float summ[2] = {0, 0};
    for (int64_t i = 0; i < n / 32; i++) {
        summ[i & 1] += H2F(w[i].m) * asum(&x[i]);
        acc[i & 1] = _mm256_fmadd_ps(_mm256_set1_ps(H2F(w[i].d) * x[i].d), dot32(nibbles32(w[i].qs), x[i].qs), acc[i & 1]);
    }
    return hsum8(_mm256_add_ps(acc[0], acc[1])) + (summ[0] + summ[1]);
}

/* a q5_0 block's 32 values as signed bytes: a clear high bit means value - 16, and OR 0xF0 makes
 * the byte (nibble - 16) as int8 */
static inline __m256i q5_0_bytes(const lm_block_q5_0 *b) {
    return _mm256_or_si256(nibbles32(b->qs), _mm256_andnot_si256(bits32(b->qh), _mm256_set1_epi8((char)0xF0)));
}

static __attribute__((unused)) float dot_q5_0(int64_t n, const void *vw, const void *vx) {
    const lm_block_q5_0 *w = vw;
    const lm_block_q16 *x = vx;
    __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t i = 0; i < n / 32; i++) {
        const __m256i q = q5_0_bytes(&w[i]);
        acc[i & 1] = _mm256_fmadd_ps(_mm256_set1_ps(H2F(w[i].d) * x[i].d), dot32(q, x[i].qs), acc[i & 1]);
    }
    return hsum8(_mm256_add_ps(acc[0], acc[1]));
}

static float dot_q5_1(int64_t n, const void *vw, const void *vx) {
    const lm_block_q5_1 *w = vw;
    const lm_block_q16 *x = vx;
    __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    float summ[2] = {0, 0};
    for (int64_t i = 0; i < n / 32; i++) {
        summ[i & 1] += H2F(w[i].m) * asum(&x[i]);
        const __m256i q = _mm256_or_si256(nibbles32(w[i].qs), _mm256_and_si256(bits32(w[i].qh), _mm256_set1_epi8(0x10)));
        acc[i & 1] = _mm256_fmadd_ps(_mm256_set1_ps(H2F(w[i].d) * x[i].d), dot32(q, x[i].qs), acc[i & 1]);
    }
    return hsum8(_mm256_add_ps(acc[0], acc[1])) + (summ[0] + summ[1]);
}

static __attribute__((unused)) float dot_q8_0(int64_t n, const void *vw, const void *vx) {
    const lm_block_q8_0 *w = vw;
    const lm_block_q16 *x = vx;
    __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t i = 0; i < n / 32; i++) {
        const __m256i q = _mm256_loadu_si256((const __m256i *)w[i].qs);
        acc[i & 1] = _mm256_fmadd_ps(_mm256_set1_ps(H2F(w[i].d) * x[i].d), dot32(q, x[i].qs), acc[i & 1]);
    }
    return hsum8(_mm256_add_ps(acc[0], acc[1]));
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

/* q6_K: 128 values (64 bytes of low nibbles, 32 of 2-bit highs) -> 4 x 32 unsigned 6-bit bytes */
static inline void q6_unpack(const uint8_t *ql, const uint8_t *qh, __m256i q[4]) {
    const __m256i m4 = _mm256_set1_epi8(0xF), m2 = _mm256_set1_epi8(3);
    const __m256i b1 = _mm256_loadu_si256((const __m256i *)ql);
    const __m256i b2 = _mm256_loadu_si256((const __m256i *)(ql + 32));
    const __m256i bh = _mm256_loadu_si256((const __m256i *)qh);
    q[0] = _mm256_or_si256(_mm256_and_si256(b1, m4), _mm256_slli_epi16(_mm256_and_si256(bh, m2), 4));
    q[1] = _mm256_or_si256(_mm256_and_si256(b2, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(bh, 2), m2), 4));
    q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b1, 4), m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(bh, 4), m2), 4));
    q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b2, 4), m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(bh, 6), m2), 4));
}

/* lane j = sum of the 8 int32 lanes of p[j]: 6 in-lane hadds, 2 cross-lane permutes, 1 add */
static inline __m256i hsum_8x8(const __m256i p[8]) {
    const __m256i h01 = _mm256_hadd_epi32(p[0], p[1]), h23 = _mm256_hadd_epi32(p[2], p[3]);
    const __m256i h45 = _mm256_hadd_epi32(p[4], p[5]), h67 = _mm256_hadd_epi32(p[6], p[7]);
    const __m256i a = _mm256_hadd_epi32(h01, h23), b = _mm256_hadd_epi32(h45, h67);
    return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31));
}

/* the scales of 8 consecutive q16 blocks, and their integer sums (bsum[0] + bsum[1]) */
static inline __m256 q16_d8(const lm_block_q16 *x) {
    const __m256i idx = _mm256_setr_epi32(0, 19, 38, 57, 76, 95, 114, 133); /* 76-byte blocks, in floats */
    return _mm256_i32gather_ps(&x->d, idx, 4);
}
static inline __m256i q16_bsum8(const lm_block_q16 *x) {
    const __m256i idx = _mm256_setr_epi32(0, 19, 38, 57, 76, 95, 114, 133);
    return _mm256_add_epi32(_mm256_i32gather_epi32(&x->bsum[0], idx, 4), _mm256_i32gather_epi32(&x->bsum[1], idx, 4));
}

/* 32 weight bytes (signed, or unsigned < 128) x 32 q16 values -> 8 int32 lanes */
static inline __m256i idot32(__m256i w, const int16_t *a) { return _mm256_add_epi32(dot_lo16(w, a), dot_hi16(w, a)); }

/* q4_K / q5_K: 8 sub-blocks of 32, each with a 6-bit scale and min; sub-block j = activation
 * block j. The 8 sub-blocks' integer dots are reduced into the 8 lanes of one vector, so the
 * scales (d * sc[j] * x[j].d) and the min terms (dmin * mn[j] * x[j].d * sum x[j]) are applied
 * with one vector FMA each per 256 weights instead of per-block scalar arithmetic. */
static inline void k4_scales(const uint8_t *s12, __m256 *sc, __m256 *mn) {
    uint32_t u[4];
    k4_unpack(s12, u);
    sc[0] = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)u)));
    mn[0] = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(u + 2))));
}

static __attribute__((unused)) float dot_q4_K(int64_t n, const void *vw, const void *vx) {
    const lm_block_q4_K *w = vw;
    const lm_block_q16 *x = vx;
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0xF);
    for (int64_t i = 0; i < n / LM_QK_K; i++, x += 8) {
        __m256 sc, mn;
        k4_scales(w[i].scales, &sc, &mn);
        __m256i p[8];
        for (int j = 0; j < 4; j++) {
            const __m256i bits = _mm256_loadu_si256((const __m256i *)(w[i].qs + 32 * j));
            p[2 * j] = idot32(_mm256_and_si256(bits, m4), x[2 * j].qs);
            p[2 * j + 1] = idot32(_mm256_and_si256(_mm256_srli_epi16(bits, 4), m4), x[2 * j + 1].qs);
        }
        const __m256 xd = q16_d8(x);
        acc = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(H2F(w[i].d)), sc), xd), _mm256_cvtepi32_ps(hsum_8x8(p)), acc);
        accm = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(H2F(w[i].dmin)), mn), _mm256_mul_ps(xd, _mm256_cvtepi32_ps(q16_bsum8(x))), accm);
    }
    return hsum8(_mm256_sub_ps(acc, accm));
}

static float dot_q5_K(int64_t n, const void *vw, const void *vx) {
    const lm_block_q5_K *w = vw;
    const lm_block_q16 *x = vx;
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0xF), s16 = _mm256_set1_epi8(16);
    for (int64_t i = 0; i < n / LM_QK_K; i++, x += 8) {
        __m256 sc, mn;
        k4_scales(w[i].scales, &sc, &mn);
        const __m256i hbits = _mm256_loadu_si256((const __m256i *)w[i].qh);
        __m256i p[8];
        for (int j = 0; j < 4; j++) {
            const __m256i bits = _mm256_loadu_si256((const __m256i *)(w[i].qs + 32 * j));
            const __m256i ml = _mm256_set1_epi8((char)(1 << (2 * j))), mh = _mm256_set1_epi8((char)(1 << (2 * j + 1)));
            __m256i lo = _mm256_and_si256(bits, m4), hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
            lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hbits, ml), ml), s16));
            hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hbits, mh), mh), s16));
            p[2 * j] = idot32(lo, x[2 * j].qs);
            p[2 * j + 1] = idot32(hi, x[2 * j + 1].qs);
        }
        const __m256 xd = q16_d8(x);
        acc = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(H2F(w[i].d)), sc), xd), _mm256_cvtepi32_ps(hsum_8x8(p)), acc);
        accm = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(H2F(w[i].dmin)), mn), _mm256_mul_ps(xd, _mm256_cvtepi32_ps(q16_bsum8(x))), accm);
    }
    return hsum8(_mm256_sub_ps(acc, accm));
}

#ifdef HAVE_AVX512
/* AVX-512 variants: a whole 32-value block is one zmm of int16 (one widening, one madd), and each
 * block's int32 lanes are scaled in float by its own factor (broadcast from a small array the
 * super-block's scale vector was stored to): 4 zmm operations per 32 weights, no reduction
 * shuffles. */
static inline __m512i idot32_512(__m256i w8u, const int16_t *a) {
    return _mm512_madd_epi16(_mm512_cvtepu8_epi16(w8u), _mm512_loadu_si512((const void *)a));
}
static inline __m512i idot32_512s(__m256i w8s, const int16_t *a) {
    return _mm512_madd_epi16(_mm512_cvtepi8_epi16(w8s), _mm512_loadu_si512((const void *)a));
}

/* q8_0 / q5_0 with AVX-512: a block of 32 is one widening and one zmm madd, scaled in float;
 * two accumulators keep the FMA chains independent. */

static float dot_q8_0_512(int64_t n, const void *vw, const void *vx) {
    const lm_block_q8_0 *w = vw;
    const lm_block_q16 *x = vx;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 2 <= n / 32; i += 2) {
        const __m512i p0 = idot32_512s(_mm256_loadu_si256((const __m256i *)w[i].qs), x[i].qs);
        const __m512i p1 = idot32_512s(_mm256_loadu_si256((const __m256i *)w[i + 1].qs), x[i + 1].qs);
        acc0 = _mm512_fmadd_ps(_mm512_set1_ps(H2F(w[i].d) * x[i].d), _mm512_cvtepi32_ps(p0), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_set1_ps(H2F(w[i + 1].d) * x[i + 1].d), _mm512_cvtepi32_ps(p1), acc1);
    }
    for (; i < n / 32; i++) {
        const __m512i p0 = idot32_512s(_mm256_loadu_si256((const __m256i *)w[i].qs), x[i].qs);
        acc0 = _mm512_fmadd_ps(_mm512_set1_ps(H2F(w[i].d) * x[i].d), _mm512_cvtepi32_ps(p0), acc0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

static float dot_q5_0_512(int64_t n, const void *vw, const void *vx) {
    const lm_block_q5_0 *w = vw;
    const lm_block_q16 *x = vx;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    for (int64_t i = 0; i < n / 32; i++) {
        const __m512i p = idot32_512s(q5_0_bytes(&w[i]), x[i].qs);
        if (i & 1) acc1 = _mm512_fmadd_ps(_mm512_set1_ps(H2F(w[i].d) * x[i].d), _mm512_cvtepi32_ps(p), acc1);
        else acc0 = _mm512_fmadd_ps(_mm512_set1_ps(H2F(w[i].d) * x[i].d), _mm512_cvtepi32_ps(p), acc0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

static float dot_q4_K_512(int64_t n, const void *vw, const void *vx) {
    const lm_block_q4_K *w = vw;
    const lm_block_q16 *x = vx;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    __m256 accm = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0xF);
    float sv[8] __attribute__((aligned(32)));
    for (int64_t i = 0; i < n / LM_QK_K; i++, x += 8) {
        __m256 sc, mn;
        k4_scales(w[i].scales, &sc, &mn);
        const __m256 xd = q16_d8(x);
        _mm256_store_ps(sv, _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(H2F(w[i].d)), sc), xd));
        for (int j = 0; j < 4; j++) {
            const __m256i bits = _mm256_loadu_si256((const __m256i *)(w[i].qs + 32 * j));
            const __m512i lo = idot32_512(_mm256_and_si256(bits, m4), x[2 * j].qs);
            const __m512i hi = idot32_512(_mm256_and_si256(_mm256_srli_epi16(bits, 4), m4), x[2 * j + 1].qs);
            acc0 = _mm512_fmadd_ps(_mm512_set1_ps(sv[2 * j]), _mm512_cvtepi32_ps(lo), acc0);
            acc1 = _mm512_fmadd_ps(_mm512_set1_ps(sv[2 * j + 1]), _mm512_cvtepi32_ps(hi), acc1);
        }
        accm = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(H2F(w[i].dmin)), mn), _mm256_mul_ps(xd, _mm256_cvtepi32_ps(q16_bsum8(x))), accm);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)) - hsum8(accm);
}

static float dot_q6_K_512(int64_t n, const void *vw, const void *vx) {
    const lm_block_q6_K *w = vw;
    const lm_block_q16 *x = vx;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    const __m256i k32 = _mm256_set1_epi8(32);
    /* lanes 0..7 of a madd of one block: its first 16 values; lanes 8..15: its last 16 */
    float sv[16] __attribute__((aligned(64)));
    for (int64_t i = 0; i < n / LM_QK_K; i++, x += 8) {
        const uint8_t *ql = w[i].ql, *qh = w[i].qh;
        const __m512 d = _mm512_set1_ps(H2F(w[i].d));
        _mm512_store_ps(sv, _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)w[i].scales)))));
        const __m256 xd = q16_d8(x);
        float xs[8] __attribute__((aligned(32)));
        _mm256_store_ps(xs, xd);
        for (int half = 0; half < 2; half++) {
            __m256i q[4];
            q6_unpack(ql, qh, q);
            for (int k = 0; k < 4; k++) {
                const int b = half * 4 + k; /* activation block; groups 2b (lanes 0..7) and 2b + 1 (8..15) */
                const __m512i p = idot32_512s(_mm256_sub_epi8(q[k], k32), x[b].qs);
                const __m512 s = _mm512_mul_ps(_mm512_set1_ps(xs[b]),
                                               _mm512_insertf32x8(_mm512_set1_ps(sv[2 * b]), _mm256_set1_ps(sv[2 * b + 1]), 1));
                if (k & 1) acc1 = _mm512_fmadd_ps(s, _mm512_cvtepi32_ps(p), acc1);
                else acc0 = _mm512_fmadd_ps(s, _mm512_cvtepi32_ps(p), acc0);
            }
            ql += 64;
            qh += 32;
        }
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}
#endif

#ifdef HAVE_AVX2
/* the fields of q4_K / q5_K super-block i (q5: the type is q5_K; qh NULL for q4_K) */
typedef struct {
    uint16_t d, dmin;
    const uint8_t *scales, *qh, *qs;
} k45_block;
static inline k45_block k45_at(const void *w, int64_t i, int q5) {
    if (q5) {
        const lm_block_q5_K *b = (const lm_block_q5_K *)w + i;
        return (k45_block){b->d, b->dmin, b->scales, b->qh, b->qs};
    }
    const lm_block_q4_K *b = (const lm_block_q4_K *)w + i;
    return (k45_block){b->d, b->dmin, b->scales, NULL, b->qs};
}

/* the q8s dot bodies are instantiated per column count and plane count: force inlining so both
 * fold to constants (GCC otherwise outlines the big bodies and keeps them as run-time values) */
#define Q8S_INLINE static inline __attribute__((always_inline))

/* Software prefetch of the weight stream, Q8S_PF bytes ahead of the super-block being dotted
 * (every cache line of a block of `bytes`). Without it, rows whose activations do not fit L1
 * beside the weight stream (FFN down projections: K = 18944 is 57 KB of q8s) stream at half the
 * speed: the activations' L1 misses starve the hardware prefetcher. Measured on one Zen 4 core,
 * weights from DRAM, GB/s of weights, 8-bit / two-plane: K = 18944 Q4_K 14 / 7.7 -> 30 / 16,
 * Q6_K 12.6 / 9.3 -> 21 / 17; K = 3584 unchanged (~27, ~33). Inline asm on an integer address: GCC 12
 * drops __builtin_prefetch here (the address lies past the object it derives from). */
#define Q8S_PF 8192
static inline void q8s_prefetch(const void *block, size_t bytes) {
    for (uintptr_t a = (uintptr_t)block + Q8S_PF, e = a + bytes; a < e; a += 64) __asm__ volatile("prefetcht0 (%0)" : : "r"(a));
}

/* A q4_K / q5_K super-block's start: prefetch the weight stream ahead, and the 8 sub-block
 * scales d x sc x unit and mins dmin x m as floats */
static inline void k45_head(const k45_block *kb, int q5, float unit, __m256 *dsc, __m256 *dmn) {
    q8s_prefetch(kb->scales - 4, q5 ? sizeof(lm_block_q5_K) : sizeof(lm_block_q4_K));
    __m256 sc, mn;
    k4_scales(kb->scales, &sc, &mn);
    *dsc = _mm256_mul_ps(_mm256_set1_ps(H2F(kb->d) * unit), sc);
    *dmn = _mm256_mul_ps(_mm256_set1_ps(H2F(kb->dmin)), mn);
}

/* q8s quantizers: whether all 8 maxima of a super-block give finite scales (else the scalar
 * quantizer defines the block: NaN, inf, zero and tiny values), and the scale and scaled sums of
 * its 32-block b from the integer sums (256 qs + qr: s0, s1; qs: t0, t1) of the two halves */
static inline bool q8s_plain(const float amax[8]) {
    bool plain = true;
    for (int b = 0; b < 8; b++) plain = plain && amax[b] > 0.0f && isfinite(amax[b]) && isfinite(127.0f / amax[b]);
    return plain;
}
static inline void q8s_sums(lm_block_q8s *y, int b, float d, int32_t s0, int32_t s1, int32_t t0, int32_t t1) {
    y->d[b] = d;
    y->t16[2 * b] = d * (float)t0;
    y->t16[2 * b + 1] = d * (float)t1;
    y->t32[b] = d * (float)(t0 + t1);
    y->s16[2 * b] = d * ((float)s0 * (1.0f / 256.0f));
    y->s16[2 * b + 1] = d * ((float)s1 * (1.0f / 256.0f));
    y->s32[b] = d * ((float)(s0 + s1) * (1.0f / 256.0f));
}
#endif

#if defined(HAVE_AVX512) && defined(__AVX512VNNI__)
#define HAVE_VNNI 1
/* ---- K-quant dots against q8s activations (int8, a scale per 32; AVX-512 VNNI) -------------
 * vpdpbusd multiplies 64 unsigned weight bytes by 64 signed activation bytes and sums each 4
 * into an int32 lane: one instruction per 64 products, no widening. A 64-value vector covers two
 * 32-value sub-blocks (lanes 0..7 and 8..15) or four 16-value groups (q6_K), each scaled in float
 * by weight scale x sub-scale x activation scale; the min / offset terms come from the
 * activation's precomputed scaled sums. */

/* lanes [a x 8, b x 8] of an 8-float vector stretched to 16 lanes */
static inline __m512 pick2x8(__m512 v, int a, int b) {
    return _mm512_permutexvar_ps(_mm512_inserti64x4(_mm512_set1_epi32(a), _mm256_set1_epi32(b), 1), v);
}

/* 64 weight bytes x 64 activation bytes (and with two, x 256 + the residual plane) -> 16 int32 */
static inline __m512i dp8(__m512i q, const int8_t *xq, int two) {
    const __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q, _mm512_loadu_si512((const void *)xq));
    return two ? _mm512_dpbusd_epi32(_mm512_slli_epi32(p, 8), q, _mm512_loadu_si512((const void *)(xq + LM_QK8S))) : p;
}

/* the weight-side scale factor that undoes dp8's x 256 with two planes (exact: a power of 2) */
#define Q8S_UNIT(two) ((two) ? 1.0f / 256.0f : 1.0f)

/* Multi-column: out[c] = dot(w, x[c]) for c < nc (<= LM_Q8S_MAXC); each super-block's weights are
 * unpacked once and dotted with every column (decode of several sequences reads the weights once) */
/* q4_K / q5_K (q5: the fifth bits from qh) */
Q8S_INLINE void k45_q8m(const void *vw, int64_t nb, int q5, const void *const *vx, const int nc, const int two, float *out) {
    __m512 acc[LM_Q8S_MAXC][2];
    __m256 accm[LM_Q8S_MAXC];
    for (int c = 0; c < nc; c++) acc[c][0] = acc[c][1] = _mm512_setzero_ps(), accm[c] = _mm256_setzero_ps();
    const __m512i m4 = _mm512_set1_epi8(0x0F), s16 = _mm512_set1_epi8(16);
    /* low 32 bytes keep the low nibbles, the high 32 shift the high nibbles down */
    const __m512i sh = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(4), 1);
    for (int64_t i = 0; i < nb; i++) {
        const k45_block kb = k45_at(vw, i, q5);
        const uint8_t *qh = kb.qh, *qs = kb.qs;
        __m256 dsc, dmn;
        k45_head(&kb, q5, Q8S_UNIT(two), &dsc, &dmn);
        __m512i q[4]; /* values 64j..64j+63: sub-blocks 2j (lanes 0..7) and 2j + 1 (8..15) */
        for (int j = 0; j < 4; j++) {
            q[j] = _mm512_and_si512(_mm512_srlv_epi16(_mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(qs + 32 * j))), sh), m4);
            if (q5) {
                /* the fifth bit of sub-block 2j (low half) is bit 2j of qh, of 2j + 1 bit 2j + 1 */
                const __m512i hb = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)qh));
                const __m512i bit = _mm512_inserti64x4(_mm512_set1_epi8((char)(1 << (2 * j))), _mm256_set1_epi8((char)(2 << (2 * j))), 1);
                q[j] = _mm512_mask_add_epi8(q[j], _mm512_test_epi8_mask(hb, bit), q[j], s16);
            }
        }
        for (int c = 0; c < nc; c++) {
            const lm_block_q8s *x = (const lm_block_q8s *)vx[c] + i;
            const __m512 sv = _mm512_castps256_ps512(_mm256_mul_ps(dsc, _mm256_loadu_ps(x->d)));
            accm[c] = _mm256_fmadd_ps(dmn, _mm256_loadu_ps(two ? x->s32 : x->t32), accm[c]);
            for (int j = 0; j < 4; j++)
                acc[c][j & 1] = _mm512_fmadd_ps(pick2x8(sv, 2 * j, 2 * j + 1), _mm512_cvtepi32_ps(dp8(q[j], x->qs + 64 * j, two)), acc[c][j & 1]);
        }
    }
    for (int c = 0; c < nc; c++) out[c] = _mm512_reduce_add_ps(_mm512_add_ps(acc[c][0], acc[c][1])) - hsum8(accm[c]);
}

/* q6_K: for each half (128 values), 64 bytes of low nibbles give values 0..63 (low nibbles) and
 * 64..127 (high nibbles) in order; the 2-bit highs of value i and 32 + i share qh byte i. Groups
 * of 16 carry int8 scales; the -32 offset is 32 x scale x the activation group sums. */
Q8S_INLINE void dot_q6_K_q8m(int64_t n, const void *vw, const void *const *vx, const int nc, const int two, float *out) {
    const lm_block_q6_K *w = vw;
    __m512 acc[LM_Q8S_MAXC][2], acco[LM_Q8S_MAXC];
    for (int c = 0; c < nc; c++) acc[c][0] = acc[c][1] = acco[c] = _mm512_setzero_ps();
    const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
    const __m512i shl = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i shr = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    /* dx of group g is d[g / 2]; scale lanes of values 64v..64v+63: group 4v + l / 4 */
    const __m512i dxi = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    __m512i gi[4];
    for (int v = 0; v < 4; v++)
        gi[v] = _mm512_add_epi32(_mm512_set1_epi32(4 * v), _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3));
    for (int64_t i = 0; i < n / LM_QK_K; i++) {
        q8s_prefetch(&w[i], sizeof *w);
        const __m512 sw = _mm512_mul_ps(_mm512_set1_ps(H2F(w[i].d)), _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)w[i].scales))));
        const __m512 swu = _mm512_mul_ps(sw, _mm512_set1_ps(Q8S_UNIT(two)));
        __m512i q[4]; /* values 64v..64v+63 */
        for (int h = 0; h < 2; h++) {
            const __m512i l = _mm512_loadu_si512((const void *)(w[i].ql + 64 * h));
            const __m512i hb = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(w[i].qh + 32 * h)));
            /* q = nibble | (shifted highs & 0x30) */
            q[2 * h] = _mm512_ternarylogic_epi32(_mm512_and_si512(l, m4), _mm512_sllv_epi16(hb, shl), m30, 0xF8);
            q[2 * h + 1] = _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4), _mm512_srlv_epi16(hb, shr), m30, 0xF8);
        }
        for (int c = 0; c < nc; c++) {
            const lm_block_q8s *x = (const lm_block_q8s *)vx[c] + i;
            acco[c] = _mm512_fmadd_ps(sw, _mm512_loadu_ps(two ? x->s16 : x->t16), acco[c]);
            const __m512 s = _mm512_mul_ps(swu, _mm512_permutexvar_ps(dxi, _mm512_castps256_ps512(_mm256_loadu_ps(x->d))));
            for (int v = 0; v < 4; v++)
                acc[c][v & 1] = _mm512_fmadd_ps(_mm512_permutexvar_ps(gi[v], s), _mm512_cvtepi32_ps(dp8(q[v], x->qs + 64 * v, two)), acc[c][v & 1]);
        }
    }
    for (int c = 0; c < nc; c++) out[c] = _mm512_reduce_add_ps(_mm512_add_ps(acc[c][0], acc[c][1])) - 32.0f * _mm512_reduce_add_ps(acco[c]);
}

/* q8s activation quantizer; bit-identical to lm_quant_row_q8s */
static void quant_q8s_full(const float *x, void *dst, int64_t n) {
    lm_block_q8s *y = dst;
    const __m512 sign = _mm512_set1_ps(-0.0f);
    for (int64_t i = 0; i < n / LM_QK8S; i++, x += LM_QK8S) {
        float amax[8];
        for (int b = 0; b < 8; b++) {
            const __m512 v0 = _mm512_loadu_ps(x + 32 * b), v1 = _mm512_loadu_ps(x + 32 * b + 16);
            amax[b] = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_andnot_ps(sign, v0), _mm512_andnot_ps(sign, v1)));
            if (_mm512_cmp_ps_mask(v0, v0, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(v1, v1, _CMP_UNORD_Q)) amax[b] = NAN;
        }
        if (!q8s_plain(amax)) {
            lm_quant_row_q8s(x, &y[i], LM_QK8S);
            continue;
        }
        for (int b = 0; b < 8; b++) {
            const __m512 id = _mm512_set1_ps(127.0f / amax[b]);
            const float d = amax[b] / 127.0f;
            const __m512i lim = _mm512_set1_epi32(127);
            const __m512i nlim = _mm512_sub_epi32(_mm512_setzero_si512(), lim), k256 = _mm512_set1_epi32(256);
            int32_t s[2], t[2];
            for (int h = 0; h < 2; h++) {
                const __m512 xs = _mm512_mul_ps(_mm512_loadu_ps(x + 32 * b + 16 * h), id);
                const __m512i q = _mm512_max_epi32(_mm512_min_epi32(_mm512_cvtps_epi32(xs), lim), nlim);
                const __m512i r = _mm512_max_epi32(
                    _mm512_min_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_sub_ps(xs, _mm512_cvtepi32_ps(q)), _mm512_set1_ps(256.0f))), lim), nlim);
                _mm_storeu_si128((__m128i *)(y[i].qs + 32 * b + 16 * h), _mm512_cvtepi32_epi8(q));
                _mm_storeu_si128((__m128i *)(y[i].qr + 32 * b + 16 * h), _mm512_cvtepi32_epi8(r));
                s[h] = _mm512_reduce_add_epi32(_mm512_add_epi32(_mm512_mullo_epi32(q, k256), r));
                t[h] = _mm512_reduce_add_epi32(q);
            }
            q8s_sums(&y[i], b, d, s[0], s[1], t[0], t[1]);
        }
    }
}
#endif

#ifdef HAVE_VNNI
/* q4_0 blocks of 32: d and 16 bytes, value l the low nibble of byte l, 16 + l the high one;
 * w = d (q - 8). q8_0: d and 32 int8. */
/* q4_0 / q8_0 values of blocks b0 (lanes 0..7 of a vpdpbusd) and b1 (8..15; NULL: zeros) as
   unsigned bytes (q8_0: w + 128) */
static inline __m512i q4_0_pair(const lm_block_q4_0 *b0, const lm_block_q4_0 *b1) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m128i z = _mm_setzero_si128();
    const __m256i ab = _mm256_set_m128i(b1 ? _mm_loadu_si128((const __m128i *)b1->qs) : z, _mm_loadu_si128((const __m128i *)b0->qs));
    const __m256i lo = _mm256_and_si256(ab, m4), hi = _mm256_and_si256(_mm256_srli_epi16(ab, 4), m4);
    /* chunks [A lo, B lo, A hi, B hi] -> [A lo, A hi, B lo, B hi]; a missing B: zeros (not 0 - 8:
       its scale is 0, and its activations are 0 too) */
    const __m512i zz = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    return _mm512_shuffle_i64x2(zz, zz, _MM_SHUFFLE(3, 1, 2, 0));
}
static inline __m512i q8_0_pair(const lm_block_q8_0 *b0, const lm_block_q8_0 *b1) {
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    const __m256i lo = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)b0->qs), flip);
    const __m256i hi = b1 ? _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)b1->qs), flip) : _mm256_setzero_si256();
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

/* The 32-blocked types' q8s dot: blocks of 32 line up with the q8s scale blocks, two per
 * vpdpbusd (lanes 0..7 and 8..15, as the K-quants' sub-blocks); the offset (q4_0: -8, q8_0 with
 * its sign bit flipped: +128) comes out as OFF x d x the activations' scaled block sums. A row that ends in
 * a partial super-block (K = 576: small models) takes its last blocks in pairs, without padding. */
#define Q32_DOT(T, OFF)                                                                                                     \
    Q8S_INLINE void dot_##T##_q8m(int64_t n, const void *vw, const void *const *vx, const int nc, const int two, float *out) { \
        const lm_block_##T *w = vw;                                                                                        \
        __m512 acc[LM_Q8S_MAXC][2];                                                                                        \
        __m256 acco[LM_Q8S_MAXC];                                                                                          \
        for (int c = 0; c < nc; c++) acc[c][0] = acc[c][1] = _mm512_setzero_ps(), acco[c] = _mm256_setzero_ps();          \
        for (int64_t i = 0; i < (n + LM_QK8S - 1) / LM_QK8S; i++) {                                                       \
            const lm_block_##T *b = w + 8 * i;                                                                             \
            const int nb = (i + 1) * LM_QK8S <= n ? 8 : (int)(n % LM_QK8S) / 32, np = (nb + 1) / 2;                        \
            q8s_prefetch(b, 8 * sizeof *b);                                                                                \
            float dw[8];                                                                                                   \
            for (int k = 0; k < 8; k++) dw[k] = k < nb ? H2F(b[k].d) : 0.0f;                                               \
            const __m256 dv = _mm256_loadu_ps(dw);                                                                         \
            __m512i q[4];                                                                                                  \
            for (int j = 0; j < np; j++) q[j] = T##_pair(&b[2 * j], 2 * j + 1 < nb ? &b[2 * j + 1] : NULL);                \
            for (int c = 0; c < nc; c++) {                                                                                 \
                const lm_block_q8s *x = (const lm_block_q8s *)vx[c] + i;                                                   \
                const __m512 sv = _mm512_castps256_ps512(                                                                  \
                    _mm256_mul_ps(_mm256_mul_ps(dv, _mm256_set1_ps(Q8S_UNIT(two))), _mm256_loadu_ps(x->d)));               \
                acco[c] = _mm256_fmadd_ps(dv, _mm256_loadu_ps(two ? x->s32 : x->t32), acco[c]);                            \
                for (int j = 0; j < np; j++)                                                                               \
                    acc[c][j & 1] = _mm512_fmadd_ps(pick2x8(sv, 2 * j, 2 * j + 1), _mm512_cvtepi32_ps(dp8(q[j], x->qs + 64 * j, two)), \
                                                    acc[c][j & 1]);                                                        \
            }                                                                                                              \
        }                                                                                                                  \
        for (int c = 0; c < nc; c++) out[c] = _mm512_reduce_add_ps(_mm512_add_ps(acc[c][0], acc[c][1])) + (OFF) * hsum8(acco[c]); \
    }
Q32_DOT(q4_0, -8.0f)
Q32_DOT(q8_0, -128.0f)
#undef Q32_DOT

#endif

#ifdef HAVE_VNNI
/* ---- int8 GEMM (prefill) against q8s activations -------------------------------------------
 * Weights are unpacked 16 rows at a time into lm_i8_slice (values as unsigned bytes, 4 of a row
 * side by side, rows interleaved), so that one vpdpbusd multiplies 16 rows by 4 activations of
 * one column (broadcast): 64 products per instruction, accumulated in int32 over a whole block of
 * the weights' scale (32 or 16 values); per block and column one float FMA applies weight scale x
 * activation scale and one removes the min / offset (weight min x the activations' scaled sum). */

/* row r's super-block sb into the slice: values, scales, mins */
static void i8_put_row(lm_i8_slice *t, int r, const uint8_t v[LM_QK_K], const float *sc, const float *mn, int nb) {
    for (int i = 0; i < LM_QK_K / 4; i++) memcpy(t->q[i][r], v + 4 * i, 4);
    for (int b = 0; b < nb; b++) t->s[b][r] = sc[b], t->m[b][r] = mn[b];
}

static void i8_repack_k45(const void *const *rows, int nrows, int64_t sb, lm_i8_slice *t, int q5) {
    memset(t, 0, sizeof *t);
    t->block = 32;
    for (int r = 0; r < nrows; r++) {
        const k45_block kb = k45_at(rows[r], sb, q5);
        const float d = H2F(kb.d), dmin = H2F(kb.dmin);
        uint8_t v[LM_QK_K];
        float sc[8], mn[8];
        for (int j = 0; j < 4; j++) { /* values 64j..64j+31: low nibbles, +32..63: high nibbles */
            for (int l = 0; l < 32; l++) {
                const int h = q5 ? ((kb.qh[l] >> (2 * j)) & 1) << 4 : 0, h2 = q5 ? ((kb.qh[l] >> (2 * j + 1)) & 1) << 4 : 0;
                v[64 * j + l] = (uint8_t)((kb.qs[32 * j + l] & 0xF) | h);
                v[64 * j + 32 + l] = (uint8_t)((kb.qs[32 * j + l] >> 4) | h2);
            }
        }
        for (int b = 0; b < 8; b++) {
            uint8_t a, m;
            scale_min_k4(b, kb.scales, &a, &m);
            sc[b] = d * (float)a;
            mn[b] = dmin * (float)m;
        }
        i8_put_row(t, r, v, sc, mn, 8);
    }
}
static void i8_repack_q4_K(const void *const *rows, int nrows, int64_t sb, lm_i8_slice *t) { i8_repack_k45(rows, nrows, sb, t, 0); }
static void i8_repack_q5_K(const void *const *rows, int nrows, int64_t sb, lm_i8_slice *t) { i8_repack_k45(rows, nrows, sb, t, 1); }

static void i8_repack_q6_K(const void *const *rows, int nrows, int64_t sb, lm_i8_slice *t) {
    memset(t, 0, sizeof *t);
    t->block = 16;
    for (int r = 0; r < nrows; r++) {
        const lm_block_q6_K *w = (const lm_block_q6_K *)rows[r] + sb;
        const float d = H2F(w->d);
        uint8_t v[LM_QK_K];
        float sc[16], mn[16];
        for (int half = 0; half < 2; half++) {
            const uint8_t *ql = w->ql + 64 * half, *qh = w->qh + 32 * half;
            uint8_t *y = v + 128 * half;
            for (int l = 0; l < 32; l++) {
                y[l] = (uint8_t)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4));
                y[l + 32] = (uint8_t)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4));
                y[l + 64] = (uint8_t)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4));
                y[l + 96] = (uint8_t)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4));
            }
        }
        for (int b = 0; b < 16; b++) {
            sc[b] = d * (float)w->scales[b];
            mn[b] = 32.0f * sc[b];
        }
        i8_put_row(t, r, v, sc, mn, 16);
    }
}

static void i8_repack_q4_0(const void *const *rows, int nrows, int64_t sb, lm_i8_slice *t) {
    memset(t, 0, sizeof *t);
    t->block = 32;
    for (int r = 0; r < nrows; r++) {
        const lm_block_q4_0 *b = (const lm_block_q4_0 *)rows[r] + 8 * sb;
        uint8_t v[LM_QK_K];
        float sc[8], mn[8];
        for (int k = 0; k < 8; k++) {
            for (int l = 0; l < 16; l++) {
                v[32 * k + l] = b[k].qs[l] & 0xF;
                v[32 * k + 16 + l] = b[k].qs[l] >> 4;
            }
            sc[k] = H2F(b[k].d);
            mn[k] = 8.0f * sc[k];
        }
        i8_put_row(t, r, v, sc, mn, 8);
    }
}

/* ns slices x nc columns; BL (32 or 16) values per scale block, constant per instantiation */
Q8S_INLINE void i8_gemm_body(const lm_i8_slice *w, int64_t ns, const void *const *vx, const int nc, const int two, const int BL,
                             float *out) {
    __m512 acc[LM_I8_MAXC];
    for (int c = 0; c < nc; c++) acc[c] = _mm512_setzero_ps();
    const float unit = two ? 1.0f / 256.0f : 1.0f;
    for (int64_t si = 0; si < ns; si++) {
        const lm_i8_slice *t = w + si;
        const lm_block_q8s *x[LM_I8_MAXC];
        for (int c = 0; c < nc; c++) x[c] = (const lm_block_q8s *)vx[c] + si;
        for (int b = 0; b < LM_QK_K / BL; b++) {
            __m512i ia[LM_I8_MAXC], ib[LM_I8_MAXC];
            for (int c = 0; c < nc; c++) ia[c] = ib[c] = _mm512_setzero_si512();
            for (int st = 0; st < BL / 4; st++) {
                const int v = b * BL + 4 * st;
                const __m512i wv = _mm512_loadu_si512((const void *)t->q[v / 4]);
                for (int c = 0; c < nc; c++) {
                    int32_t a;
                    memcpy(&a, x[c]->qs + v, 4);
                    ia[c] = _mm512_dpbusd_epi32(ia[c], wv, _mm512_set1_epi32(a));
                    if (two) {
                        memcpy(&a, x[c]->qr + v, 4);
                        ib[c] = _mm512_dpbusd_epi32(ib[c], wv, _mm512_set1_epi32(a));
                    }
                }
            }
            const __m512 sv = _mm512_mul_ps(_mm512_loadu_ps(t->s[b]), _mm512_set1_ps(unit)), mv = _mm512_loadu_ps(t->m[b]);
            for (int c = 0; c < nc; c++) {
                const __m512i iv = two ? _mm512_add_epi32(_mm512_slli_epi32(ia[c], 8), ib[c]) : ia[c];
                const float xs = BL == 32 ? (two ? x[c]->s32[b] : x[c]->t32[b]) : (two ? x[c]->s16[b] : x[c]->t16[b]);
                acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(iv), _mm512_mul_ps(sv, _mm512_set1_ps(x[c]->d[b * BL / 32])), acc[c]);
                acc[c] = _mm512_fnmadd_ps(mv, _mm512_set1_ps(xs), acc[c]);
            }
        }
    }
    for (int c = 0; c < nc; c++) _mm512_storeu_ps(out + LM_I8_ROWS * c, acc[c]);
}

static void i8_gemm(const lm_i8_slice *w, int64_t ns, const void *const *x, int nc, int two, float *out) {
    const int bl = ns > 0 ? w->block : 32;
#define I8G(C) \
    case C: \
        if (bl == 32) two ? i8_gemm_body(w, ns, x, C, 1, 32, out) : i8_gemm_body(w, ns, x, C, 0, 32, out); \
        else two ? i8_gemm_body(w, ns, x, C, 1, 16, out) : i8_gemm_body(w, ns, x, C, 0, 16, out); \
        break;
    switch (nc) {
        I8G(1) I8G(2) I8G(3) I8G(4) I8G(5) I8G(6) I8G(7)
    default: I8G(8)
    }
#undef I8G
}
#endif

#if defined(HAVE_AVX2) && !defined(HAVE_VNNI)
#define HAVE_Q8S_AVX2 1
/* ---- K-quant dots against q8s activations with AVX2 (no VNNI) ------------------------------
 * _mm256_maddubs_epi16 multiplies 32 unsigned weight bytes by 32 signed activation bytes into 16
 * int16 pair sums (at most 2 x 63 x 127: no saturation for 6-bit weights), _mm256_madd_epi16 by
 * ones widens them to 8 int32 lanes of 4 products each. */
static inline __m256i dot8x32_1(__m256i w, const int8_t *x) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(w, _mm256_loadu_si256((const __m256i *)x)), _mm256_set1_epi16(1));
}
/* with two: 256 x the first plane + the residual plane */
static inline __m256i dot8x32(__m256i w, const int8_t *x, int two) {
    const __m256i p = dot8x32_1(w, x);
    return two ? _mm256_add_epi32(_mm256_slli_epi32(p, 8), dot8x32_1(w, x + LM_QK8S)) : p;
}
#define Q8S_UNIT(two) ((two) ? 1.0f / 256.0f : 1.0f)

/* Multi-column: out[c] = dot(w, x[c]) for c < nc (<= LM_Q8S_MAXC); each super-block's weights are
 * unpacked once (qh: the q5_K fifth bits, NULL for q4_K) and dotted with every column */
Q8S_INLINE void k45_q8m(const void *vw, int64_t nb, int q5, const void *const *vx, const int nc, const int two, float *out) {
    __m256 acc[LM_Q8S_MAXC], accm[LM_Q8S_MAXC];
    for (int c = 0; c < nc; c++) acc[c] = accm[c] = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0xF), s16 = _mm256_set1_epi8(16);
    for (int64_t i = 0; i < nb; i++) {
        const k45_block kb = k45_at(vw, i, q5);
        const uint8_t *qh = kb.qh, *qs = kb.qs;
        __m256 dsc, dmn;
        k45_head(&kb, q5, Q8S_UNIT(two), &dsc, &dmn);
        __m256i q[8], p1[8]; /* sub-block j; with one column its dots are taken at once (AVX2 has
                                  16 registers: holding all 8 unpacked would only add spills) */
        const lm_block_q8s *x0 = (const lm_block_q8s *)vx[0] + i;
        for (int j = 0; j < 4; j++) {
            const __m256i bits = _mm256_loadu_si256((const __m256i *)(qs + 32 * j));
            q[2 * j] = _mm256_and_si256(bits, m4);
            q[2 * j + 1] = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
            if (q5) {
                const __m256i hbits = _mm256_loadu_si256((const __m256i *)qh);
                const __m256i ml = _mm256_set1_epi8((char)(1 << (2 * j))), mh = _mm256_set1_epi8((char)(1 << (2 * j + 1)));
                q[2 * j] = _mm256_or_si256(q[2 * j], _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hbits, ml), ml), s16));
                q[2 * j + 1] = _mm256_or_si256(q[2 * j + 1], _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hbits, mh), mh), s16));
            }
            if (nc == 1) {
                p1[2 * j] = dot8x32(q[2 * j], x0->qs + 64 * j, two);
                p1[2 * j + 1] = dot8x32(q[2 * j + 1], x0->qs + 64 * j + 32, two);
            }
        }
        if (nc == 1) {
            acc[0] = _mm256_fmadd_ps(_mm256_mul_ps(dsc, _mm256_loadu_ps(x0->d)), _mm256_cvtepi32_ps(hsum_8x8(p1)), acc[0]);
            accm[0] = _mm256_fmadd_ps(dmn, _mm256_loadu_ps(two ? x0->s32 : x0->t32), accm[0]);
            continue;
        }
        for (int c = 0; c < nc; c++) {
            const lm_block_q8s *x = (const lm_block_q8s *)vx[c] + i;
            __m256i p[8];
            for (int j = 0; j < 8; j++) p[j] = dot8x32(q[j], x->qs + 32 * j, two);
            acc[c] = _mm256_fmadd_ps(_mm256_mul_ps(dsc, _mm256_loadu_ps(x->d)), _mm256_cvtepi32_ps(hsum_8x8(p)), acc[c]);
            accm[c] = _mm256_fmadd_ps(dmn, _mm256_loadu_ps(two ? x->s32 : x->t32), accm[c]);
        }
    }
    for (int c = 0; c < nc; c++) out[c] = hsum8(_mm256_sub_ps(acc[c], accm[c]));
}

/* q6_K: each 32 values hold groups 2c (lanes 0..3) and 2c + 1 (lanes 4..7) */
Q8S_INLINE void dot_q6_K_q8m(int64_t n, const void *vw, const void *const *vx, const int nc, const int two, float *out) {
    const lm_block_q6_K *w = vw;
    __m256 acc[LM_Q8S_MAXC][2], acco[LM_Q8S_MAXC];
    for (int c = 0; c < nc; c++) acc[c][0] = acc[c][1] = acco[c] = _mm256_setzero_ps();
    const __m256i lo_dx = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3), hi_dx = _mm256_setr_epi32(4, 4, 5, 5, 6, 6, 7, 7);
    for (int64_t i = 0; i < n / LM_QK_K; i++) {
        q8s_prefetch(&w[i], sizeof *w);
        const __m256 d = _mm256_set1_ps(H2F(w[i].d));
        const __m256 swl = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)w[i].scales))));
        const __m256 swh = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(w[i].scales + 8)))));
        __m256i q[8]; /* values 32k..32k+31 */
        q6_unpack(w[i].ql, w[i].qh, q);
        q6_unpack(w[i].ql + 64, w[i].qh + 32, q + 4);
        for (int c = 0; c < nc; c++) {
            const lm_block_q8s *x = (const lm_block_q8s *)vx[c] + i;
            const float *s16 = two ? x->s16 : x->t16;
            acco[c] = _mm256_fmadd_ps(swl, _mm256_loadu_ps(s16), acco[c]);
            acco[c] = _mm256_fmadd_ps(swh, _mm256_loadu_ps(s16 + 8), acco[c]);
            const __m256 dx = _mm256_mul_ps(_mm256_loadu_ps(x->d), _mm256_set1_ps(Q8S_UNIT(two)));
            const __m256 s[2] = {_mm256_mul_ps(swl, _mm256_permutevar8x32_ps(dx, lo_dx)), _mm256_mul_ps(swh, _mm256_permutevar8x32_ps(dx, hi_dx))};
            for (int k = 0; k < 8; k++) {
                const int kk = k & 3;
                const __m256i idx = _mm256_setr_epi32(2 * kk, 2 * kk, 2 * kk, 2 * kk, 2 * kk + 1, 2 * kk + 1, 2 * kk + 1, 2 * kk + 1);
                const __m256 p = _mm256_cvtepi32_ps(dot8x32(q[k], x->qs + 32 * k, two));
                acc[c][k & 1] = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(s[k >> 2], idx), p, acc[c][k & 1]);
            }
        }
    }
    for (int c = 0; c < nc; c++) out[c] = hsum8(_mm256_add_ps(acc[c][0], acc[c][1])) - 32.0f * hsum8(acco[c]);
}

/* q8s activation quantizer; bit-identical to lm_quant_row_q8s */
static inline int32_t hsum8i(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_hadd_epi32(s, s);
    s = _mm_hadd_epi32(s, s);
    return _mm_cvtsi128_si32(s);
}

static void quant_q8s_full(const float *x, void *dst, int64_t n) {
    lm_block_q8s *y = dst;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i lim = _mm256_set1_epi32(127), nlim = _mm256_set1_epi32(-127), order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int64_t i = 0; i < n / LM_QK8S; i++, x += LM_QK8S) {
        float amax[8];
        for (int b = 0; b < 8; b++) {
            __m256 mx = _mm256_setzero_ps();
            int nan = 0;
            for (int k = 0; k < 4; k++) {
                const __m256 v = _mm256_loadu_ps(x + 32 * b + 8 * k);
                mx = _mm256_max_ps(mx, _mm256_andnot_ps(sign, v));
                nan |= _mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
            }
            __m128 m4 = _mm_max_ps(_mm256_extractf128_ps(mx, 1), _mm256_castps256_ps128(mx));
            m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
            m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
            amax[b] = nan ? NAN : _mm_cvtss_f32(m4);
        }
        if (!q8s_plain(amax)) {
            lm_quant_row_q8s(x, &y[i], LM_QK8S);
            continue;
        }
        for (int b = 0; b < 8; b++) {
            const __m256 id = _mm256_set1_ps(127.0f / amax[b]);
            const float d = amax[b] / 127.0f;
            __m256i q[4], r[4], t[4]; /* t = 256 q + r */
            for (int k = 0; k < 4; k++) {
                const __m256 xs = _mm256_mul_ps(_mm256_loadu_ps(x + 32 * b + 8 * k), id);
                q[k] = _mm256_max_epi32(_mm256_min_epi32(_mm256_cvtps_epi32(xs), lim), nlim);
                r[k] = _mm256_max_epi32(
                    _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_sub_ps(xs, _mm256_cvtepi32_ps(q[k])), _mm256_set1_ps(256.0f))), lim), nlim);
                t[k] = _mm256_add_epi32(_mm256_slli_epi32(q[k], 8), r[k]);
            }
            const __m256i qb = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
            const __m256i rb = _mm256_packs_epi16(_mm256_packs_epi32(r[0], r[1]), _mm256_packs_epi32(r[2], r[3]));
            _mm256_storeu_si256((__m256i *)(y[i].qs + 32 * b), _mm256_permutevar8x32_epi32(qb, order));
            _mm256_storeu_si256((__m256i *)(y[i].qr + 32 * b), _mm256_permutevar8x32_epi32(rb, order));
            q8s_sums(&y[i], b, d, hsum8i(_mm256_add_epi32(t[0], t[1])), hsum8i(_mm256_add_epi32(t[2], t[3])),
                     hsum8i(_mm256_add_epi32(q[0], q[1])), hsum8i(_mm256_add_epi32(q[2], q[3])));
        }
    }
}
#endif

#if defined(HAVE_VNNI) || defined(HAVE_Q8S_AVX2)
/* rows of 32k values: a partial last super-block, zero past the row's end */
static void quant_q8s(const float *x, void *dst, int64_t n) { lm_quant_q8s_padded(x, dst, n, quant_q8s_full); }
#endif

/* 32 signed bytes with a scale per 16: sum of both halves, each times its scale, in float */
static inline __m256 acc_halves(__m256 acc, __m256i q, const lm_block_q16 *x, float s_lo, float s_hi) {
    acc = _mm256_fmadd_ps(_mm256_set1_ps(s_lo * x->d), _mm256_cvtepi32_ps(dot_lo16(q, x->qs)), acc);
    return _mm256_fmadd_ps(_mm256_set1_ps(s_hi * x->d), _mm256_cvtepi32_ps(dot_hi16(q, x->qs)), acc);
}

/* q6_K: 16 groups of 16 with 8-bit scales; values 6-bit minus 32. The 16 groups' integer dots
 * are reduced into two 8-lane vectors (group order 0, 2, 4, .. then 1, 3, 5, ..: the low and high
 * halves of each activation block) and scaled with one vector FMA each per 256 weights. */
static __attribute__((unused)) float dot_q6_K(int64_t n, const void *vw, const void *vx) {
    const lm_block_q6_K *w = vw;
    const lm_block_q16 *x = vx;
    __m256 acc = _mm256_setzero_ps();
    const __m256i k32 = _mm256_set1_epi8(32);
    for (int64_t i = 0; i < n / LM_QK_K; i++, x += 8) {
        const uint8_t *ql = w[i].ql, *qh = w[i].qh;
        __m256i plo[8], phi[8]; /* [activation block]: its first 16 values, its last 16 */
        for (int half = 0; half < 2; half++) {
            __m256i q[4];
            q6_unpack(ql, qh, q);
            for (int k = 0; k < 4; k++) {
                const __m256i qk = _mm256_sub_epi8(q[k], k32);
                plo[half * 4 + k] = dot_lo16(qk, x[half * 4 + k].qs);
                phi[half * 4 + k] = dot_hi16(qk, x[half * 4 + k].qs);
            }
            ql += 64;
            qh += 32;
        }
        /* scales: group 2b + h of the super-block holds activation block b's half h */
        const __m128i sc = _mm_loadu_si128((const __m128i *)w[i].scales);
        const __m128i even = _mm_shuffle_epi8(sc, _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, -1, -1, -1, -1, -1, -1, -1, -1));
        const __m128i odd = _mm_shuffle_epi8(sc, _mm_setr_epi8(1, 3, 5, 7, 9, 11, 13, 15, -1, -1, -1, -1, -1, -1, -1, -1));
        const __m256 dx = _mm256_mul_ps(_mm256_set1_ps(H2F(w[i].d)), q16_d8(x));
        acc = _mm256_fmadd_ps(_mm256_mul_ps(dx, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(even))), _mm256_cvtepi32_ps(hsum_8x8(plo)), acc);
        acc = _mm256_fmadd_ps(_mm256_mul_ps(dx, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(odd))), _mm256_cvtepi32_ps(hsum_8x8(phi)), acc);
    }
    return hsum8(acc);
}

/* q2_K: 16 groups of 16, 2-bit values, 4-bit scale and min per group */
static float dot_q2_K(int64_t n, const void *vw, const void *vx) {
    const lm_block_q2_K *w = vw;
    const lm_block_q16 *x = vx;
    __m256 acc = _mm256_setzero_ps();
    float accm = 0;
    const __m256i m3 = _mm256_set1_epi8(3);
    for (int64_t i = 0; i < n / LM_QK_K; i++, x += 8) {
        const float d = H2F(w[i].d), dmin = H2F(w[i].dmin);
        const uint8_t *sc = w[i].scales;
        for (int half = 0; half < 2; half++) {
            const __m256i bits = _mm256_loadu_si256((const __m256i *)(w[i].qs + 32 * half));
            for (int j = 0; j < 4; j++) {
                const lm_block_q16 *xb = &x[half * 4 + j];
                const uint8_t s_lo = sc[half * 8 + 2 * j], s_hi = sc[half * 8 + 2 * j + 1];
                const __m256i q = _mm256_and_si256(_mm256_srli_epi16(bits, 2 * j), m3);
                acc = acc_halves(acc, q, xb, d * (float)(s_lo & 0xF), d * (float)(s_hi & 0xF));
                accm -= dmin * xb->d * ((float)(s_lo >> 4) * (float)xb->bsum[0] + (float)(s_hi >> 4) * (float)xb->bsum[1]);
            }
        }
    }
    return hsum8(acc) + accm;
}

/* q3_K: 16 groups of 16, 3-bit values (2 low bits + inverted high bit), signed 6-bit scales */
static float dot_q3_K(int64_t n, const void *vw, const void *vx) {
    const lm_block_q3_K *w = vw;
    const lm_block_q16 *x = vx;
    __m256 acc = _mm256_setzero_ps();
    const __m256i m3 = _mm256_set1_epi8(3), k4 = _mm256_set1_epi8(4);
    for (int64_t i = 0; i < n / LM_QK_K; i++, x += 8) {
        const float d = H2F(w[i].d);
        int8_t sc[16];
        lm_q3_K_scales(w[i].scales, sc);
        const __m256i hm = _mm256_loadu_si256((const __m256i *)w[i].hmask);
        for (int half = 0; half < 2; half++) {
            const __m256i bits = _mm256_loadu_si256((const __m256i *)(w[i].qs + 32 * half));
            for (int j = 0; j < 4; j++) {
                const __m256i mb = _mm256_set1_epi8((char)(1 << (4 * half + j)));
                const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(hm, mb), mb);
                const __m256i q = _mm256_sub_epi8(_mm256_and_si256(_mm256_srli_epi16(bits, 2 * j), m3), _mm256_andnot_si256(set, k4));
                acc = acc_halves(acc, q, &x[half * 4 + j], d * (float)sc[half * 8 + 2 * j], d * (float)sc[half * 8 + 2 * j + 1]);
            }
        }
    }
    return hsum8(acc);
}
#endif /* HAVE_AVX2 */

#ifdef HAVE_AVX2
/* 1 decoded row x 4 q16 columns. Per block of 32 and column: two int16 madds, one add, the int32
 * -> f32 conversion and one FMA with the scale d_w * d_x (d_x broadcast straight from memory).
 * 4 accumulators + 2 weight registers stay in registers; the min terms are done separately by
 * the caller as a dot of per-16 coefficients with per-16 activation sums. */
static void gemm_q16_1x4(int64_t nblk, const int16_t *w, const float *d, const lm_block_q16 *const x[4], float out[4]) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    const lm_block_q16 *x0 = x[0], *x1 = x[1], *x2 = x[2], *x3 = x[3];
#define COL(A, X)                                                                                  \
    do {                                                                                           \
        const __m256i p = _mm256_add_epi32(_mm256_madd_epi16(wa, _mm256_loadu_si256((const __m256i *)(X)[b].qs)),     \
                                           _mm256_madd_epi16(wb, _mm256_loadu_si256((const __m256i *)((X)[b].qs + 16)))); \
        A = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_broadcast_ss(&(X)[b].d)), _mm256_cvtepi32_ps(p), A);          \
    } while (0)
    for (int64_t b = 0; b < nblk; b++) {
        const __m256i wa = _mm256_loadu_si256((const __m256i *)(w + 32 * b));
        const __m256i wb = _mm256_loadu_si256((const __m256i *)(w + 32 * b + 16));
        const __m256 dw = _mm256_broadcast_ss(&d[b]);
        COL(a0, x0);
        COL(a1, x1);
        COL(a2, x2);
        COL(a3, x3);
    }
#undef COL
    out[0] = hsum8(a0);
    out[1] = hsum8(a1);
    out[2] = hsum8(a2);
    out[3] = hsum8(a3);
}
#endif

/* The f32 GEMM tiles. B's element (k, j) is at b[k * bk + j * bj]: bk = NR, bj = 1 for a packed
 * panel ([k][NR]), bk = 1, bj = LM_SG_KC for NR rows of a row-major slice (each weight row
 * dequantized into its own LM_SG_KC floats, so the broadcasts need no transposed copy). The
 * bodies are inlined with constant strides, so every broadcast is one load at a fixed offset. */
#ifndef HAVE_AVX512
/* 16 x 6 f32 tile, outer products: per k step two 8-row loads of A, six broadcasts of B and 12
 * FMAs into 12 accumulators (15 of the 16 ymm registers). 96 multiply-adds per 2 + 6 loads, so
 * the FMA ports (2 per core) are the limit: 16 multiply-adds per cycle per core at best. */
static inline __attribute__((always_inline)) void sgemm_16x6_body(int64_t kc, const float *a, const float *b, int64_t bk,
                                                                  int64_t bj, float *c, int64_t ldc, int mr, int nr, int acc) {
#ifdef HAVE_AVX2
    __m256 c0[6], c1[6];
    for (int j = 0; j < 6; j++) c0[j] = c1[j] = _mm256_setzero_ps();
    for (int64_t k = 0; k < kc; k++, a += 16, b += bk) {
        const __m256 a0 = _mm256_load_ps(a), a1 = _mm256_load_ps(a + 8);
        for (int j = 0; j < 6; j++) {
            const __m256 bv = _mm256_broadcast_ss(b + j * bj);
            c0[j] = _mm256_fmadd_ps(a0, bv, c0[j]);
            c1[j] = _mm256_fmadd_ps(a1, bv, c1[j]);
        }
    }
    float t[6][16] __attribute__((aligned(32)));
    for (int j = 0; j < 6; j++) {
        _mm256_store_ps(t[j], c0[j]);
        _mm256_store_ps(t[j] + 8, c1[j]);
    }
#else
    float t[6][16] = {{0}};
    for (int64_t k = 0; k < kc; k++, a += 16, b += bk)
        for (int j = 0; j < 6; j++)
            for (int r = 0; r < 16; r++) t[j][r] += a[r] * b[j * bj];
#endif
    for (int j = 0; j < nr; j++) {
        float *cj = c + j * ldc;
        if (acc)
            for (int r = 0; r < mr; r++) cj[r] += t[j][r];
        else
            memcpy(cj, t[j], (size_t)mr * sizeof(float));
    }
}
static void sgemm_16x6(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int mr, int nr, int acc) {
    sgemm_16x6_body(kc, a, b, 6, 1, c, ldc, mr, nr, acc);
}
static void sgemm_16x6_rows(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int mr, int nr, int acc) {
    sgemm_16x6_body(kc, a, b, 1, LM_SG_KC, c, ldc, mr, nr, acc);
}
#endif

#ifdef HAVE_AVX512
/* 32 x 12 f32 tile with AVX-512: per k step two 16-row loads of A and 24 FMAs whose B operand is
 * an embedded broadcast from memory; 24 accumulators + 2 A registers of the 32 zmm. 384
 * multiply-adds per 2 + 12 loads: the FMA ports are the limit (2 x 16 lanes per cycle per core
 * where they are 512 bits wide, as on Zen 5 and Intel server cores; half that on Zen 4). */
static inline __attribute__((always_inline)) void sgemm_32x12_body(int64_t kc, const float *a, const float *b, int64_t bk,
                                                                   int64_t bj, float *c, int64_t ldc, int mr, int nr, int acc) {
    __m512 c0[12], c1[12];
    for (int j = 0; j < 12; j++) c0[j] = c1[j] = _mm512_setzero_ps();
    for (int64_t k = 0; k < kc; k++, a += 32, b += bk) {
        const __m512 a0 = _mm512_load_ps(a), a1 = _mm512_load_ps(a + 16);
        for (int j = 0; j < 12; j++) {
            const __m512 bv = _mm512_set1_ps(b[j * bj]);
            c0[j] = _mm512_fmadd_ps(a0, bv, c0[j]);
            c1[j] = _mm512_fmadd_ps(a1, bv, c1[j]);
        }
    }
    if (mr == 32) {
        for (int j = 0; j < nr; j++) {
            float *cj = c + j * ldc;
            if (acc) {
                c0[j] = _mm512_add_ps(c0[j], _mm512_loadu_ps(cj));
                c1[j] = _mm512_add_ps(c1[j], _mm512_loadu_ps(cj + 16));
            }
            _mm512_storeu_ps(cj, c0[j]);
            _mm512_storeu_ps(cj + 16, c1[j]);
        }
        return;
    }
    const __mmask16 m0 = (__mmask16)(mr >= 16 ? 0xFFFF : (1u << mr) - 1);
    const __mmask16 m1 = (__mmask16)(mr >= 32 ? 0xFFFF : mr <= 16 ? 0 : (1u << (mr - 16)) - 1);
    for (int j = 0; j < nr; j++) {
        float *cj = c + j * ldc;
        if (acc) {
            c0[j] = _mm512_add_ps(c0[j], _mm512_maskz_loadu_ps(m0, cj));
            c1[j] = _mm512_add_ps(c1[j], _mm512_maskz_loadu_ps(m1, cj + 16));
        }
        _mm512_mask_storeu_ps(cj, m0, c0[j]);
        _mm512_mask_storeu_ps(cj + 16, m1, c1[j]);
    }
}
static void sgemm_32x12(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int mr, int nr, int acc) {
    sgemm_32x12_body(kc, a, b, 12, 1, c, ldc, mr, nr, acc);
}
static void sgemm_32x12_rows(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int mr, int nr, int acc) {
    sgemm_32x12_body(kc, a, b, 1, LM_SG_KC, c, ldc, mr, nr, acc);
}
#endif

/* q16 activation quantizer (see quant_blocks.h); bit-identical to lm_quant_row_q16 */
static void quant_q16(const float *x, void *dst, int64_t n) {
#ifdef HAVE_AVX2
    lm_block_q16 *y = dst;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t i = 0; i < n / LM_QK16; i++, x += LM_QK16) {
        __m256 v[4], mx = _mm256_setzero_ps();
        int nan = 0;
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(x + 8 * k);
            mx = _mm256_max_ps(mx, _mm256_andnot_ps(sign, v[k]));
            nan |= _mm256_movemask_ps(_mm256_cmp_ps(v[k], v[k], _CMP_UNORD_Q));
        }
        __m128 m4 = _mm_max_ps(_mm256_extractf128_ps(mx, 1), _mm256_castps256_ps128(mx));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        if (nan || !(amax > 0.0f) || !isfinite(amax) || !isfinite(32767.0f / amax)) {
            /* NaN, inf, zero and tiny blocks: the scalar quantizer defines them */
            lm_quant_row_q16(x, &y[i], LM_QK16);
            continue;
        }
        const __m256 id = _mm256_set1_ps(32767.0f / amax);
        __m256i q[4];
        for (int k = 0; k < 4; k++) q[k] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[k], id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        /* pack to int16 keeping element order (packs interleaves 128-bit lanes) */
        const __m256i p01 = _mm256_permute4x64_epi64(_mm256_packs_epi32(q[0], q[1]), 0xD8);
        const __m256i p23 = _mm256_permute4x64_epi64(_mm256_packs_epi32(q[2], q[3]), 0xD8);
        _mm256_storeu_si256((__m256i *)y[i].qs, p01);
        _mm256_storeu_si256((__m256i *)(y[i].qs + 16), p23);
        const __m256i s01 = _mm256_madd_epi16(p01, _mm256_set1_epi16(1)), s23 = _mm256_madd_epi16(p23, _mm256_set1_epi16(1));
        __m128i a = _mm_add_epi32(_mm256_castsi256_si128(s01), _mm256_extracti128_si256(s01, 1));
        __m128i b = _mm_add_epi32(_mm256_castsi256_si128(s23), _mm256_extracti128_si256(s23, 1));
        a = _mm_hadd_epi32(a, b);
        a = _mm_hadd_epi32(a, a);
        y[i].bsum[0] = _mm_cvtsi128_si32(a);
        y[i].bsum[1] = _mm_extract_epi32(a, 1);
        y[i].d = amax / 32767.0f;
    }
#else
    lm_quant_row_q16(x, dst, n);
#endif
}

#if defined(HAVE_VNNI) || defined(HAVE_Q8S_AVX2)
/* q4_K / q5_K through the ISA's k45_q8m */
Q8S_INLINE void dot_q4_K_q8m(int64_t n, const void *vw, const void *const *vx, const int nc, const int two, float *out) {
    k45_q8m(vw, n / LM_QK_K, 0, vx, nc, two, out);
}

Q8S_INLINE void dot_q5_K_q8m(int64_t n, const void *vw, const void *const *vx, const int nc, const int two, float *out) {
    k45_q8m(vw, n / LM_QK_K, 1, vx, nc, two, out);
}

/* the q8s dots for 1..LM_Q8S_MAXC columns, one or both planes: each case its own constant-folded
 * instance */
#define Q8S_WRAP(T)                                                                                \
    static void mdot_##T##_q8s(int64_t n, const void *w, const void *const *x, int nc, int two, float *out) { \
        switch (nc * 2 + (two != 0)) {                                                             \
        case 2: dot_##T##_q8m(n, w, x, 1, 0, out); break;                                          \
        case 3: dot_##T##_q8m(n, w, x, 1, 1, out); break;                                          \
        case 4: dot_##T##_q8m(n, w, x, 2, 0, out); break;                                          \
        case 5: dot_##T##_q8m(n, w, x, 2, 1, out); break;                                          \
        case 6: dot_##T##_q8m(n, w, x, 3, 0, out); break;                                          \
        case 7: dot_##T##_q8m(n, w, x, 3, 1, out); break;                                          \
        case 8: dot_##T##_q8m(n, w, x, 4, 0, out); break;                                          \
        default: dot_##T##_q8m(n, w, x, 4, 1, out); break;                                         \
        }                                                                                          \
    }
Q8S_WRAP(q4_K)
Q8S_WRAP(q5_K)
Q8S_WRAP(q6_K)
#ifdef HAVE_VNNI
Q8S_WRAP(q4_0)
Q8S_WRAP(q8_0)
#endif
#endif

const lm_cpu_kernels LM_KERNELS_NAME = {
    .isa = LM_KERNELS_ISA,
    .dot_f32 = dot_f32,
    .dot_f16 = dot_f16,
    .dot_bf16 = dot_bf16,
    .axpy_f32 = axpy_f32,
    .axpy_f16 = axpy_f16,
    .axpy_bf16 = axpy_bf16,
    .geglu = geglu,
    .swiglu = swiglu,
    .softcap = softcap,
    .exp_sub = exp_sub,
    .cvt_f16 = cvt_f16,
    .dot_f32_multi = dot_f32_multi,
    .axpy_f32_multi = axpy_f32_multi,
    .cvt_bf16 = cvt_bf16,
    .quant_q16 = quant_q16,
    .dequant = {[LM_Q4_0] = deq_q4_0, [LM_Q4_1] = deq_q4_1, [LM_Q5_0] = deq_q5_0, [LM_Q5_1] = deq_q5_1,
                [LM_Q8_0] = deq_q8_0, [LM_Q2_K] = deq_q2_K, [LM_Q3_K] = deq_q3_K, [LM_Q4_K] = deq_q4_K,
                [LM_Q5_K] = deq_q5_K, [LM_Q6_K] = deq_q6_K},
#ifdef HAVE_AVX512
    .sg_mr = 32, .sg_nr = 12, .sgemm = sgemm_32x12, .sgemm_rows = sgemm_32x12_rows,
#else
    .sg_mr = 16, .sg_nr = 6, .sgemm = sgemm_16x6, .sgemm_rows = sgemm_16x6_rows,
#endif
#ifdef HAVE_AVX2
    .gemm_q16_1x4 = gemm_q16_1x4,
    .vec_type = {[LM_Q4_0] = LM_Q16, [LM_Q4_1] = LM_Q16, [LM_Q5_0] = LM_Q16, [LM_Q5_1] = LM_Q16, [LM_Q8_0] = LM_Q16,
                 [LM_Q2_K] = LM_Q16, [LM_Q3_K] = LM_Q16, [LM_Q4_K] = LM_Q16, [LM_Q5_K] = LM_Q16, [LM_Q6_K] = LM_Q16},
#ifdef HAVE_AVX512
    .vec_dot = {[LM_Q4_0] = dot_q4_0, [LM_Q4_1] = dot_q4_1, [LM_Q5_0] = dot_q5_0_512, [LM_Q5_1] = dot_q5_1,
                [LM_Q8_0] = dot_q8_0_512, [LM_Q2_K] = dot_q2_K, [LM_Q3_K] = dot_q3_K, [LM_Q4_K] = dot_q4_K_512,
                [LM_Q5_K] = dot_q5_K, [LM_Q6_K] = dot_q6_K_512},
#else
    .vec_dot = {[LM_Q4_0] = dot_q4_0, [LM_Q4_1] = dot_q4_1, [LM_Q5_0] = dot_q5_0, [LM_Q5_1] = dot_q5_1,
                [LM_Q8_0] = dot_q8_0, [LM_Q2_K] = dot_q2_K, [LM_Q3_K] = dot_q3_K, [LM_Q4_K] = dot_q4_K,
                [LM_Q5_K] = dot_q5_K, [LM_Q6_K] = dot_q6_K},
#endif
#endif
#if defined(HAVE_VNNI)
    .quant_q8s = quant_q8s,
    .mdot8 = {[LM_Q4_K] = mdot_q4_K_q8s, [LM_Q5_K] = mdot_q5_K_q8s, [LM_Q6_K] = mdot_q6_K_q8s, [LM_Q4_0] = mdot_q4_0_q8s,
              [LM_Q8_0] = mdot_q8_0_q8s},
#elif defined(HAVE_Q8S_AVX2)
    .quant_q8s = quant_q8s,
    .mdot8 = {[LM_Q4_K] = mdot_q4_K_q8s, [LM_Q5_K] = mdot_q5_K_q8s, [LM_Q6_K] = mdot_q6_K_q8s},
#endif
#ifdef HAVE_VNNI
    .i8_repack = {[LM_Q4_K] = i8_repack_q4_K, [LM_Q5_K] = i8_repack_q5_K, [LM_Q6_K] = i8_repack_q6_K, [LM_Q4_0] = i8_repack_q4_0},
    .i8_gemm = i8_gemm,
#endif
};
