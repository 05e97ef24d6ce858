/*
 * quant.c — dtype table, f16/bf16 conversions and the reference (de)quantizers.
 *
 * The dequantizers are the numerical definition of every block format: plain scalar C in fp32
 * with the operation order of ggml's reference and of the gguf Python package, so the results
 * are bit-exact with both (tests/test_quant.c checks that on random blocks). Build with
 * -ffp-contract=off (set in CMake) so no multiply-add is fused.
 */
#include "dtype.h"

#include <math.h>
#include <string.h>

static inline uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

float lm_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            uint32_t e = 127 - 15 + 1;
            while (!(mant & 0x400u)) { mant <<= 1; e--; }
            mant &= 0x3ffu;
            bits = sign | (e << 23) | (mant << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    }
    return u2f(bits);
}

/* Round to nearest even; overflow to inf; NaN stays NaN (quiet). */
uint16_t lm_f32_to_f16(float f) {
    const uint32_t f32infty = 255u << 23;
    const uint32_t f16max = (127u + 16u) << 23;
    const uint32_t denorm_magic = ((127u - 15u) + (23u - 10u) + 1u) << 23;
    uint32_t fu = f2u(f);
    uint32_t sign = fu & 0x80000000u;
    uint16_t o;
    fu ^= sign;
    if (fu >= f16max) {
        o = fu > f32infty ? 0x7e00 : 0x7c00;
    } else if (fu < (113u << 23)) { /* subnormal or zero: let the FPU round */
        float ff = u2f(fu) + u2f(denorm_magic);
        o = (uint16_t)(f2u(ff) - denorm_magic);
    } else {
        uint32_t mant_odd = (fu >> 13) & 1u;
        fu += ((uint32_t)(15 - 127) << 23) + 0xfffu;
        fu += mant_odd;
        o = (uint16_t)(fu >> 13);
    }
    return (uint16_t)(o | (sign >> 16));
}

uint16_t lm_f32_to_bf16(float f) {
    uint32_t u = f2u(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

#define H2F(x) lm_f16_to_f32(x)

/* ----------------------------------------------------------------------------------------- */
/* dequantizers (n = number of elements, a multiple of the block size)                        */

static void deq_f32(const void *src, float *y, int64_t n) { memcpy(y, src, (size_t)n * 4); }

static void deq_f16(const void *src, float *y, int64_t n) {
    const uint16_t *x = src;
    for (int64_t i = 0; i < n; i++) y[i] = H2F(x[i]);
}

static void deq_bf16(const void *src, float *y, int64_t n) {
    const uint16_t *x = src;
    for (int64_t i = 0; i < n; i++) y[i] = lm_bf16_to_f32(x[i]);
}

#include "dequant_blocks.h"

void lm_q3_K_scales(const uint8_t *s12, int8_t out[16]) {
    uint32_t aux[4];
    const uint32_t kmask1 = 0x03030303u, kmask2 = 0x0f0f0f0fu;
    memcpy(aux, s12, 12);
    uint32_t tmp = aux[2];
    aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
    aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
    aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4);
    aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
    const int8_t *s = (const int8_t *)aux;
    for (int i = 0; i < 16; i++) out[i] = (int8_t)(s[i] - 32);
}

void lm_k4_scale_min(int j, const uint8_t *q, uint8_t *d, uint8_t *m) { scale_min_k4(j, q, d, m); }

static void deq_q8_K(const void *src, float *y, int64_t n) {
    const lm_block_q8_K *x = src;
    for (int64_t i = 0; i < n / LM_QK_K; i++, y += LM_QK_K)
        for (int j = 0; j < LM_QK_K; j++) y[j] = x[i].d * (float)x[i].qs[j];
}

static void deq_q16(const void *src, float *y, int64_t n) {
    const lm_block_q16 *x = src;
    for (int64_t i = 0; i < n / LM_QK16; i++, y += LM_QK16)
        for (int j = 0; j < LM_QK16; j++) y[j] = x[i].d * (float)x[i].qs[j];
}

static void deq_i32(const void *src, float *y, int64_t n) {
    const int32_t *x = src;
    for (int64_t i = 0; i < n; i++) y[i] = (float)x[i];
}

/* ----------------------------------------------------------------------------------------- */
/* quantizers                                                                                 */

static void q_f32(const float *x, void *dst, int64_t n) { memcpy(dst, x, (size_t)n * 4); }
static void q_f16(const float *x, void *dst, int64_t n) {
    uint16_t *y = dst;
    for (int64_t i = 0; i < n; i++) y[i] = lm_f32_to_f16(x[i]);
}
static void q_bf16(const float *x, void *dst, int64_t n) {
    uint16_t *y = dst;
    for (int64_t i = 0; i < n; i++) y[i] = lm_f32_to_bf16(x[i]);
}

/* roundf(v) as an int8 in [-127, 127]. For finite inputs this is exactly (int8_t)roundf(v), as in
 * ggml; it only differs where that conversion is undefined: when the block's amax is so small
 * (< 127 / FLT_MAX) that 1/d overflows to inf (x * id is then +-inf, or NaN for x = 0; the f16 scale
 * is 0 there, so the quants do not matter), or for NaN / inf activations. */
static inline int8_t q8_round(float v) {
    v = roundf(v);
    if (v != v) return 0;
    return (int8_t)(v >= 127.0f ? 127 : v <= -127.0f ? -127 : (int)v);
}

void lm_quant_row_q8_0(const float *x, void *dst, int64_t n) {
    lm_block_q8_0 *y = dst;
    for (int64_t i = 0; i < n / LM_QK8_0; i++, x += LM_QK8_0) {
        float amax = 0.0f;
        for (int j = 0; j < LM_QK8_0; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = lm_f32_to_f16(d);
        for (int j = 0; j < LM_QK8_0; j++) y[i].qs[j] = q8_round(x[j] * id);
    }
}

void lm_quant_row_q8_1(const float *x, void *dst, int64_t n) {
    lm_block_q8_1 *y = dst;
    for (int64_t i = 0; i < n / LM_QK8_1; i++, x += LM_QK8_1) {
        float amax = 0.0f;
        for (int j = 0; j < LM_QK8_1; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        int sum = 0;
        for (int j = 0; j < LM_QK8_1; j++) {
            y[i].qs[j] = q8_round(x[j] * id);
            sum += y[i].qs[j];
        }
        y[i].d = lm_f32_to_f16(d);
        y[i].s = lm_f32_to_f16((float)sum * d);
    }
}

void lm_quant_row_q8_K(const float *x, void *dst, int64_t n) {
    lm_block_q8_K *y = dst;
    for (int64_t i = 0; i < n / LM_QK_K; i++, x += LM_QK_K) {
        float amax = 0.0f;
        for (int j = 0; j < LM_QK_K; j++) amax = fmaxf(amax, fabsf(x[j]));
        if (amax == 0.0f || !isfinite(127.0f / amax)) { /* all zero, or too small for a finite scale */
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        const float iscale = 127.0f / amax;
        for (int j = 0; j < LM_QK_K; j++) {
            int v = (int)lrintf(iscale * x[j]);
            y[i].qs[j] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
        }
        for (int j = 0; j < LM_QK_K / 16; j++) {
            int s = 0;
            for (int l = 0; l < 16; l++) s += y[i].qs[j * 16 + l];
            y[i].bsums[j] = (int16_t)s;
        }
        y[i].d = 1.0f / iscale;
    }
}

/* largest |x| of a block, NaN if any element is NaN (fmaxf alone would skip it) */
static float block_amax(const float *x, int n) {
    float amax = 0.0f;
    for (int j = 0; j < n; j++) {
        if (isnan(x[j])) return NAN;
        amax = fmaxf(amax, fabsf(x[j]));
    }
    return amax;
}

void lm_quant_row_q16(const float *x, void *dst, int64_t n) {
    lm_block_q16 *y = dst;
    for (int64_t i = 0; i < n / LM_QK16; i++, x += LM_QK16) {
        const float amax = block_amax(x, LM_QK16);
        memset(&y[i], 0, sizeof y[i]);
        if (amax == 0.0f) continue;
        if (!isfinite(amax) || !isfinite(32767.0f / amax)) {
            /* inf / NaN input propagates as NaN; a block too small for a finite inverse is 0 */
            if (!isfinite(amax)) y[i].d = NAN;
            continue;
        }
        const float id = 32767.0f / amax;
        y[i].d = amax / 32767.0f;
        for (int j = 0; j < LM_QK16; j++) {
            float v = nearbyintf(x[j] * id);
            y[i].qs[j] = (int16_t)(v > 32767.0f ? 32767 : v < -32767.0f ? -32767 : (int)v);
            y[i].bsum[j / 16] += y[i].qs[j];
        }
    }
}

static void quant_row_q8s_full(const float *x, void *dst, int64_t n) {
    lm_block_q8s *y = dst;
    for (int64_t i = 0; i < n / LM_QK8S; i++) {
        memset(&y[i], 0, sizeof y[i]);
        for (int b = 0; b < 8; b++, x += 32) {
            const float amax = block_amax(x, 32);
            if (amax == 0.0f) continue;
            if (!isfinite(amax) || !isfinite(127.0f / amax)) {
                if (!isfinite(amax)) y[i].d[b] = NAN;
                continue;
            }
            const float id = 127.0f / amax;
            y[i].d[b] = amax / 127.0f;
            int32_t sum[2] = {0, 0}, sq[2] = {0, 0}; /* 256 * qs + qr, and qs */
            for (int j = 0; j < 32; j++) {
                const float xs = x[j] * id, v = nearbyintf(xs);
                const int q = v > 127.0f ? 127 : v < -127.0f ? -127 : (int)v;
                const float rv = nearbyintf((xs - (float)q) * 256.0f); /* xs - q is exact */
                const int r = rv > 127.0f ? 127 : rv < -127.0f ? -127 : (int)rv;
                y[i].qs[32 * b + j] = (int8_t)q;
                y[i].qr[32 * b + j] = (int8_t)r;
                sum[j / 16] += 256 * q + r;
                sq[j / 16] += q;
            }
            y[i].t16[2 * b] = y[i].d[b] * (float)sq[0];
            y[i].t16[2 * b + 1] = y[i].d[b] * (float)sq[1];
            y[i].t32[b] = y[i].d[b] * (float)(sq[0] + sq[1]);
            y[i].s16[2 * b] = y[i].d[b] * ((float)sum[0] * (1.0f / 256.0f));
            y[i].s16[2 * b + 1] = y[i].d[b] * ((float)sum[1] * (1.0f / 256.0f));
            y[i].s32[b] = y[i].d[b] * ((float)(sum[0] + sum[1]) * (1.0f / 256.0f));
        }
    }
}

void lm_quant_q8s_padded(const float *x, void *dst, int64_t n, void (*whole)(const float *, void *, int64_t)) {
    whole(x, dst, n - n % LM_QK8S);
    if (n % LM_QK8S) {
        float t[LM_QK8S] = {0};
        memcpy(t, x + n - n % LM_QK8S, (size_t)(n % LM_QK8S) * sizeof(float));
        whole(t, (lm_block_q8s *)dst + n / LM_QK8S, LM_QK8S);
    }
}

/* a row of 32k values that is not whole super-blocks ends in a partial one, zero past the end */
void lm_quant_row_q8s(const float *x, void *dst, int64_t n) { lm_quant_q8s_padded(x, dst, n, quant_row_q8s_full); }

static void deq_q8s(const void *src, float *y, int64_t n) {
    const lm_block_q8s *x = src;
    for (int64_t k = 0; k < n; k++) { /* a partial last block too */
        const lm_block_q8s *b = &x[k / LM_QK8S];
        const int j = (int)(k % LM_QK8S);
        y[k] = b->d[j / 32] * ((float)(256 * b->qs[j] + b->qr[j]) * (1.0f / 256.0f));
    }
}

/* ---- lumen's formats ---------------------------------------------------------------------- */

static void deq_i4_g128(const void *src, float *y, int64_t n) {
    const lm_block_i4_g128 *x = src;
    for (int64_t i = 0; i < n / LM_QK_G128; i++, y += LM_QK_G128) {
        const float d = H2F(x[i].d), m = H2F(x[i].m);
        for (int j = 0; j < LM_QK_G128 / 2; j++) {
            y[j] = d * (float)(x[i].qs[j] & 0x0F) + m;
            y[j + LM_QK_G128 / 2] = d * (float)(x[i].qs[j] >> 4) + m;
        }
    }
}

/* Per group: candidate grids from the group's range (the step (max - min) / 15 and scaled
   variants), each refined once by least squares (d, m minimising sum (x - d q - m)^2 for the
   rounded q); the one with the smallest squared error wins. Rounding uses the stored f16 d, m. */
static float i4_err(const float *x, float d, float m, uint8_t *q) {
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    float e = 0.0f;
    for (int j = 0; j < LM_QK_G128; j++) {
        int v = (int)nearbyintf((x[j] - m) * id);
        v = v < 0 ? 0 : v > 15 ? 15 : v;
        if (q) q[j] = (uint8_t)v;
        const float r = x[j] - (d * (float)v + m);
        e += r * r;
    }
    return e;
}

static void q_i4_g128(const float *x, void *dst, int64_t n) {
    lm_block_i4_g128 *y = dst;
    uint8_t q[LM_QK_G128];
    for (int64_t i = 0; i < n / LM_QK_G128; i++, x += LM_QK_G128) {
        float mn = x[0], mx = x[0];
        for (int j = 1; j < LM_QK_G128; j++) mn = fminf(mn, x[j]), mx = fmaxf(mx, x[j]);
        float best_d = (mx - mn) / 15.0f, best_m = mn;
        float best = i4_err(x, lm_f16_to_f32(lm_f32_to_f16(best_d)), lm_f16_to_f32(lm_f32_to_f16(best_m)), NULL);
        for (int k = -8; k <= 8 && mx > mn; k++) {
            const float d0 = (mx - mn) / (15.0f + 0.25f * (float)k);
            i4_err(x, d0, mn, q);
            /* least squares for d, m given q */
            double sq = 0, sqq = 0, sx = 0, sqx = 0;
            for (int j = 0; j < LM_QK_G128; j++) sq += q[j], sqq += (double)q[j] * q[j], sx += x[j], sqx += (double)q[j] * x[j];
            const double det = LM_QK_G128 * sqq - sq * sq;
            if (det <= 0) continue;
            const float d = (float)((LM_QK_G128 * sqx - sq * sx) / det), m = (float)((sx - d * sq) / LM_QK_G128);
            const float dh = lm_f16_to_f32(lm_f32_to_f16(d)), mh = lm_f16_to_f32(lm_f32_to_f16(m));
            if (!(dh > 0.0f) || !isfinite(mh)) continue;
            const float e = i4_err(x, dh, mh, NULL);
            if (e < best) best = e, best_d = d, best_m = m;
        }
        y[i].d = lm_f32_to_f16(best_d);
        y[i].m = lm_f32_to_f16(best_m);
        i4_err(x, lm_f16_to_f32(y[i].d), lm_f16_to_f32(y[i].m), q);
        for (int j = 0; j < LM_QK_G128 / 2; j++) y[i].qs[j] = (uint8_t)(q[j] | (q[j + LM_QK_G128 / 2] << 4));
    }
}

float lm_e4m3_to_f32(uint8_t q) {
    const int e = (q >> 3) & 15, m = q & 7;
    float v;
    if (e == 15 && m == 7) v = NAN;
    else if (e == 0) v = ldexpf((float)m, -9); /* subnormal: m / 8 * 2^-6 */
    else v = ldexpf((float)(8 + m), e - 10); /* (1 + m / 8) * 2^(e - 7) */
    return q & 0x80 ? -v : v;
}

uint8_t lm_f32_to_e4m3(float x) {
    const uint8_t s = signbit(x) ? 0x80 : 0;
    const float a = fabsf(x);
    if (isnan(x)) return 0x7f;
    if (a >= 464.0f) return s | 0x7e; /* saturate (464 would round up past 448) */
    if (a < ldexpf(1.0f, -6)) return s | (uint8_t)nearbyintf(ldexpf(a, 9)); /* subnormal; 8 = the smallest normal */
    int e;
    const float fr = frexpf(a, &e);                   /* a = fr 2^e, fr in [0.5, 1) */
    int m = (int)nearbyintf((fr * 2.0f - 1.0f) * 8.0f); /* a = (1 + m/8) 2^(e-1) */
    e = e - 1 + 7;
    if (m == 8) m = 0, e++;
    if (e > 15 || (e == 15 && m == 7)) return s | 0x7e;
    return s | (uint8_t)(e << 3 | m);
}

static void deq_f8_e4m3(const void *src, float *y, int64_t n) {
    const lm_block_f8_e4m3 *x = src;
    for (int64_t i = 0; i < n / LM_QK_G128; i++, y += LM_QK_G128)
        for (int j = 0; j < LM_QK_G128; j++) y[j] = x[i].d * lm_e4m3_to_f32(x[i].qs[j]);
}

static void q_f8_e4m3(const float *x, void *dst, int64_t n) {
    lm_block_f8_e4m3 *y = dst;
    for (int64_t i = 0; i < n / LM_QK_G128; i++, x += LM_QK_G128) {
        float amax = 0.0f;
        for (int j = 0; j < LM_QK_G128; j++) amax = fmaxf(amax, fabsf(x[j]));
        y[i].d = amax / 448.0f;
        const float id = amax > 0.0f ? 448.0f / amax : 0.0f;
        for (int j = 0; j < LM_QK_G128; j++) y[i].qs[j] = lm_f32_to_e4m3(x[j] * id);
    }
}

/* plain e4m3 (the fp8 KV cache): saturating conversion, as the GPU backends do */
static void deq_e4m3(const void *src, float *y, int64_t n) {
    const uint8_t *x = src;
    for (int64_t i = 0; i < n; i++) y[i] = lm_e4m3_to_f32(x[i]);
}

static void q_e4m3(const float *x, void *dst, int64_t n) {
    uint8_t *y = dst;
    for (int64_t i = 0; i < n; i++) y[i] = lm_f32_to_e4m3(x[i]);
}

/* ----------------------------------------------------------------------------------------- */

static const lm_dtype_traits traits[LM_DTYPE_COUNT] = {
    [LM_F32] = {"f32", 1, 4, false, true, deq_f32, q_f32},
    [LM_F16] = {"f16", 1, 2, false, true, deq_f16, q_f16},
    [LM_BF16] = {"bf16", 1, 2, false, true, deq_bf16, q_bf16},
    [LM_Q4_0] = {"q4_0", LM_QK4_0, sizeof(lm_block_q4_0), true, true, deq_q4_0, NULL},
    [LM_Q4_1] = {"q4_1", LM_QK4_1, sizeof(lm_block_q4_1), true, true, deq_q4_1, NULL},
    [LM_Q5_0] = {"q5_0", LM_QK5_0, sizeof(lm_block_q5_0), true, true, deq_q5_0, NULL},
    [LM_Q5_1] = {"q5_1", LM_QK5_1, sizeof(lm_block_q5_1), true, true, deq_q5_1, NULL},
    [LM_Q8_0] = {"q8_0", LM_QK8_0, sizeof(lm_block_q8_0), true, true, deq_q8_0, lm_quant_row_q8_0},
    [LM_Q8_1] = {"q8_1", LM_QK8_1, sizeof(lm_block_q8_1), true, false, deq_q8_1, lm_quant_row_q8_1},
    [LM_Q2_K] = {"q2_K", LM_QK_K, sizeof(lm_block_q2_K), true, true, deq_q2_K, NULL},
    [LM_Q3_K] = {"q3_K", LM_QK_K, sizeof(lm_block_q3_K), true, true, deq_q3_K, NULL},
    [LM_Q4_K] = {"q4_K", LM_QK_K, sizeof(lm_block_q4_K), true, true, deq_q4_K, NULL},
    [LM_Q5_K] = {"q5_K", LM_QK_K, sizeof(lm_block_q5_K), true, true, deq_q5_K, NULL},
    [LM_Q6_K] = {"q6_K", LM_QK_K, sizeof(lm_block_q6_K), true, true, deq_q6_K, NULL},
    [LM_Q8_K] = {"q8_K", LM_QK_K, sizeof(lm_block_q8_K), true, false, deq_q8_K, lm_quant_row_q8_K},
    [LM_Q16] = {"q16", LM_QK16, sizeof(lm_block_q16), true, false, deq_q16, lm_quant_row_q16},
    [LM_Q8S] = {"q8s", LM_QK8S, sizeof(lm_block_q8s), true, false, deq_q8s, lm_quant_row_q8s},
    [LM_I4_G128] = {"i4_g128", LM_QK_G128, sizeof(lm_block_i4_g128), true, true, deq_i4_g128, q_i4_g128},
    [LM_F8_E4M3] = {"f8_e4m3", LM_QK_G128, sizeof(lm_block_f8_e4m3), true, true, deq_f8_e4m3, q_f8_e4m3},
    [LM_E4M3] = {"e4m3", 1, 1, false, false, deq_e4m3, q_e4m3},
    [LM_I8] = {"i8", 1, 1, false, false, NULL, NULL},
    [LM_I16] = {"i16", 1, 2, false, false, NULL, NULL},
    [LM_I32] = {"i32", 1, 4, false, true, deq_i32, NULL},
    [LM_I64] = {"i64", 1, 8, false, false, NULL, NULL},
    [LM_F64] = {"f64", 1, 8, false, false, NULL, NULL},
};

const lm_dtype_traits *lm_dtype_get(lm_dtype t) {
    if ((unsigned)t >= LM_DTYPE_COUNT || traits[t].name == NULL) return NULL;
    return &traits[t];
}

const char *lm_dtype_name(lm_dtype t) {
    const lm_dtype_traits *tr = lm_dtype_get(t);
    return tr ? tr->name : "?";
}

bool lm_dtype_valid(uint32_t id) {
    const lm_dtype_traits *tr = id < LM_DTYPE_COUNT ? lm_dtype_get((lm_dtype)id) : NULL;
    return tr && tr->supported;
}

void lm_dequant_row(lm_dtype t, const void *src, float *dst, int64_t n) {
    const lm_dtype_traits *tr = lm_dtype_get(t);
    /* q8s rows may end in a partial block (rows of 32k values) */
    LM_ASSERT(tr && tr->dequant && n % (t == LM_Q8S ? 32 : tr->block) == 0);
    tr->dequant(src, dst, n);
}
