/*
 * common.cuh — shared by every CUDA source: the runtime seam (rt.h, which pulls in the
 * emulator for host builds), the engine's types, device-side f16/bf16 conversions, warp and
 * block reductions, and the GGUF block formats as device functions:
 *   dq(row, i)        element i of a row (any type; for gathers and odd shapes)
 *   dq8(row, c, w)    the 8 elements 8c .. 8c+7 (the GEMV unit: a chunk lies in one block and
 *                     shares one scale, so adjacent lanes on adjacent chunks read adjacent bytes)
 * The formulas follow engine/quant.c (the reference) term by term; the per-dtype conformance
 * tests prove the copies agree. Rows start 256-byte aligned and every block size is even, so
 * 16-bit loads are always aligned; 32-bit loads are used where the block size allows.
 */
#ifndef LM_CUDA_COMMON_CUH
#define LM_CUDA_COMMON_CUH

#include "rt.h"

extern "C" {
#include "backend.h"
#include "dtype.h"
#include "ops.h"
}

#include <cstdint>

#ifdef __CUDACC__
/* shared memory declarations: plain __shared__ arrays on the GPU; bounds-checked and poisoned
   arrays under the emulator (emu.h) */
#define LM_SHARED(T, name, n) __shared__ __align__(16) T name[n]
#define LM_SHARED2(T, name, r, c) __shared__ __align__(16) T name[r][c]
#define LM_SHARED_DYN(T, name)                                                                     \
    extern __shared__ __align__(16) unsigned char lm_dyn_smem_[];                                  \
    T *name = reinterpret_cast<T *>(lm_dyn_smem_)
#endif

namespace LM_CUDA_NS {

#define LM_DEV static __device__ __forceinline__

LM_DEV float h2f(uint16_t h) {
    __half_raw r;
    r.x = h;
    return __half2float(__half(r));
}
LM_DEV uint16_t f2h(float f) {
    __half_raw r = __half_raw(__float2half_rn(f));
    return r.x;
}
LM_DEV float bf2f(uint16_t h) { return __uint_as_float((unsigned)h << 16); }
LM_DEV uint16_t f2bf(float f) {
    unsigned u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

LM_DEV float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
LM_DEV float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* a strided tensor view for kernels: rows r = i1 + ne1 (i2 + ne2 i3), byte strides */
struct view {
    char *p;
    int64_t ne0, ne1, ne2, nrows;
    int64_t nb1, nb2, nb3;
};
static inline view make_view(const lm_tensor *t, char *base) {
    view v;
    v.p = base;
    v.ne0 = t->ne[0];
    v.ne1 = t->ne[1];
    v.ne2 = t->ne[2];
    v.nrows = t->ne[1] * t->ne[2] * t->ne[3];
    v.nb1 = (int64_t)t->nb[1];
    v.nb2 = (int64_t)t->nb[2];
    v.nb3 = (int64_t)t->nb[3];
    return v;
}
LM_DEV char *view_row(const view &v, int64_t r) {
    const int64_t i1 = r % v.ne1, i2 = (r / v.ne1) % v.ne2, i3 = r / (v.ne1 * v.ne2);
    return v.p + i1 * v.nb1 + i2 * v.nb2 + i3 * v.nb3;
}

/* float loads and stores of the plain types */
template <int T> LM_DEV float ldf(const void *p, int64_t i) {
    if constexpr (T == LM_F32) return ((const float *)p)[i];
    else if constexpr (T == LM_F16) return h2f(((const uint16_t *)p)[i]);
    else return bf2f(((const uint16_t *)p)[i]);
}
template <int T> LM_DEV void stf(void *p, int64_t i, float v) {
    if constexpr (T == LM_F32) ((float *)p)[i] = v;
    else if constexpr (T == LM_F16) ((uint16_t *)p)[i] = f2h(v);
    else ((uint16_t *)p)[i] = f2bf(v);
}

/* RoPE angle of pair i at position pos: the table holds turns per position as 64-bit binary
   fractions (the host folds in frequency factors); pos * g wraps modulo whole turns exactly in
   integer arithmetic, the residue to the nearest quarter turn (|x| <= pi/4) becomes a float and
   sin / cos come from minimax polynomials there — accurate at any position, and the same
   arithmetic as the Vulkan shaders (shaders/common/rope.glsl). */
LM_DEV void rope_cs(uint32_t pos, const uint64_t *table, unsigned i, float &c, float &s) {
    const uint64_t ph = (uint64_t)pos * table[i];
    const uint64_t qr = (ph + (1ull << 61)) >> 62;
    const int64_t rem = (int64_t)(ph - (qr << 62));
    const float x = (float)rem * 3.4061215800865545e-19f; /* 2 pi / 2^64 */
    const float z = x * x;
    const float sn = x + x * z * (-1.6666654611e-1f + z * (8.3321608736e-3f + z * -1.9515295891e-4f));
    const float cs = 1.0f - 0.5f * z + z * z * (4.166664568298827e-2f + z * (-1.388731625493765e-3f + z * 2.443315711809948e-5f));
    switch ((unsigned)(qr & 3u)) {
    case 0: s = sn, c = cs; break;
    case 1: s = cs, c = -sn; break;
    case 2: s = -sn, c = -cs; break;
    default: s = -cs, c = sn; break;
    }
}

/* ---- block formats ------------------------------------------------------------------------ */
LM_DEV unsigned rd8(const uint8_t *b, unsigned off) { return b[off]; }
LM_DEV unsigned rd16(const uint8_t *b, unsigned off) { return *(const uint16_t *)(b + off); }
LM_DEV unsigned rd32a(const uint8_t *b, unsigned off) { return *(const uint32_t *)(b + off); } /* 4-aligned */
LM_DEV float rdh(const uint8_t *b, unsigned off) { return h2f((uint16_t)rd16(b, off)); }

template <int T> struct qtraits;
#define LM_QT(T, QK, BYTES)                                                                        \
    template <> struct qtraits<T> {                                                                \
        static constexpr int qk = QK, bytes = BYTES;                                               \
    }
LM_QT(LM_F32, 1, 4);
LM_QT(LM_F16, 1, 2);
LM_QT(LM_BF16, 1, 2);
LM_QT(LM_Q4_0, 32, 18);
LM_QT(LM_Q4_1, 32, 20);
LM_QT(LM_Q5_0, 32, 22);
LM_QT(LM_Q5_1, 32, 24);
LM_QT(LM_Q8_0, 32, 34);
LM_QT(LM_Q2_K, 256, 84);
LM_QT(LM_Q3_K, 256, 110);
LM_QT(LM_Q4_K, 256, 144);
LM_QT(LM_Q5_K, 256, 176);
LM_QT(LM_Q6_K, 256, 210);
LM_QT(LM_I4_G128, 128, 68);
LM_QT(LM_F8_E4M3, 128, 132);
LM_QT(LM_E4M3, 1, 1);
#undef LM_QT

/* FP8 E4M3 code -> float (OCP: bias 7, no infinities, S.1111.111 NaN), exact */
LM_DEV float e4m3(unsigned q) {
    const unsigned e = (q >> 3) & 15u, m = q & 7u, s = (q & 0x80u) << 24;
    if (e == 15u && m == 7u) return __uint_as_float(0x7fc00000u);
    if (e == 0u) return __uint_as_float(__float_as_uint((float)m * 0.001953125f) | s); /* m * 2^-9 */
    return __uint_as_float(s | ((e + 120u) << 23) | (m << 20));
}

/* float -> E4M3 code: round to nearest even, saturating at +-448, NaN -> 0x7f; the bit
   arithmetic of shaders/common/common.glsl and the rounding of lm_f32_to_e4m3 (quant.c) */
LM_DEV unsigned f2e4m3(float x) {
    const unsigned u = __float_as_uint(x), s = (u >> 24) & 0x80u, a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return 0x7fu;
    const float af = __uint_as_float(a);
    if (af >= 464.0f) return s | 0x7eu;
    if (af < 0.015625f) return s | (unsigned)rintf(af * 512.0f); /* subnormal (8 = the smallest normal) */
    unsigned e = (a >> 23) - 120u, r = (a >> 20) & 7u;
    const unsigned rem = a & 0xfffffu;
    if (rem > 0x80000u || (rem == 0x80000u && (r & 1u))) r++;
    if (r == 8u) r = 0u, e++;
    if (e > 15u || (e == 15u && r == 7u)) return s | 0x7eu;
    return s | (e << 3) | r;
}

/* scale j (0..7) and min of a q4_K / q5_K block (6-bit each, packed in 12 bytes at offset 4) */
LM_DEV void scale_min_k4(const uint8_t *b, unsigned j, unsigned &sc, unsigned &m) {
    const uint8_t *q = b + 4;
    if (j < 4) {
        sc = q[j] & 63u;
        m = q[j + 4] & 63u;
    } else {
        sc = (q[j + 4] & 15u) | ((q[j - 4] >> 6) << 4);
        m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

template <int T> LM_DEV float dq(const uint8_t *row, unsigned i) {
    if constexpr (T == LM_F32) {
        return ((const float *)row)[i];
    } else if constexpr (T == LM_F16) {
        return h2f(((const uint16_t *)row)[i]);
    } else if constexpr (T == LM_BF16) {
        return bf2f(((const uint16_t *)row)[i]);
    } else if constexpr (T == LM_E4M3) {
        return e4m3(row[i]);
    } else if constexpr (T == LM_Q4_0 || T == LM_Q4_1) {
        const uint8_t *b = row + (i / 32) * qtraits<T>::bytes;
        const unsigned j = i % 32, byte = b[(T == LM_Q4_0 ? 2 : 4) + (j & 15)];
        const unsigned q = j < 16 ? byte & 15 : byte >> 4;
        if constexpr (T == LM_Q4_0) return rdh(b, 0) * (float)((int)q - 8);
        else return rdh(b, 0) * (float)q + rdh(b, 2);
    } else if constexpr (T == LM_Q5_0 || T == LM_Q5_1) {
        const uint8_t *b = row + (i / 32) * qtraits<T>::bytes;
        const unsigned o = T == LM_Q5_0 ? 2 : 4;
        const unsigned j = i % 32, byte = b[o + 4 + (j & 15)];
        const unsigned qh = rd16(b, o) | (rd16(b, o + 2) << 16);
        const unsigned q = (j < 16 ? byte & 15 : byte >> 4) | (((qh >> j) & 1u) << 4);
        if constexpr (T == LM_Q5_0) return rdh(b, 0) * (float)((int)q - 16);
        else return rdh(b, 0) * (float)q + rdh(b, 2);
    } else if constexpr (T == LM_Q8_0) {
        const uint8_t *b = row + (i / 32) * 34;
        return (float)(int8_t)b[2 + i % 32] * rdh(b, 0);
    } else if constexpr (T == LM_Q2_K) {
        const uint8_t *b = row + (i / 256) * 84;
        const unsigned r = i % 256, n = r / 128, j = (r % 128) / 32, l = r % 32;
        const unsigned sc = b[n * 8 + 2 * j + (l >= 16 ? 1 : 0)];
        const unsigned q = (b[16 + n * 32 + l] >> (2 * j)) & 3u;
        const float dl = rdh(b, 80) * (float)(sc & 15u), ml = rdh(b, 82) * (float)(sc >> 4);
        return dl * (float)q - ml;
    } else if constexpr (T == LM_Q3_K) {
        const uint8_t *b = row + (i / 256) * 110;
        const unsigned r = i % 256, n = r / 128, j = (r % 128) / 32, l = r % 32;
        const unsigned is = n * 8 + 2 * j + (l >= 16 ? 1 : 0);
        const unsigned lo = (b[96 + is % 8] >> (4 * (is / 8))) & 15u, hi = (b[104 + is % 4] >> (2 * (is / 4))) & 3u;
        const int sc = (int)(lo | (hi << 4)) - 32;
        const unsigned hm = (b[l] >> (n * 4 + j)) & 1u;
        const int q = (int)((b[32 + n * 32 + l] >> (2 * j)) & 3u) - (hm ? 0 : 4);
        return (rdh(b, 108) * (float)sc) * (float)q;
    } else if constexpr (T == LM_Q4_K || T == LM_Q5_K) {
        const uint8_t *b = row + (i / 256) * qtraits<T>::bytes;
        const unsigned r = i % 256, c = r / 64, hi = (r % 64) / 32, l = r % 32;
        unsigned sc, m;
        scale_min_k4(b, 2 * c + hi, sc, m);
        const unsigned byte = b[(T == LM_Q4_K ? 16 : 48) + 32 * c + l];
        unsigned q = hi == 0 ? byte & 15u : byte >> 4;
        if constexpr (T == LM_Q5_K) q += ((b[16 + l] >> (2 * c + hi)) & 1u) << 4;
        return (rdh(b, 0) * (float)sc) * (float)q - rdh(b, 2) * (float)m;
    } else if constexpr (T == LM_I4_G128) {
        const uint8_t *b = row + (i / 128) * 68;
        const unsigned j = i % 128, byte = b[4 + (j & 63)];
        return rdh(b, 0) * (float)(j < 64 ? byte & 15u : byte >> 4) + rdh(b, 2);
    } else if constexpr (T == LM_F8_E4M3) {
        const uint8_t *b = row + (i / 128) * 132;
        return __uint_as_float(rd32a(b, 0)) * e4m3(b[4 + i % 128]);
    } else {
        static_assert(T == LM_Q6_K, "dq: type");
        const uint8_t *b = row + (i / 256) * 210;
        const unsigned r = i % 256, n = r / 128, qr = (r % 128) / 32, l = r % 32, is = l / 16;
        const unsigned L = b[64 * n + l + (qr & 1u) * 32], H = b[128 + 32 * n + l];
        const unsigned q = (qr < 2 ? L & 15u : L >> 4) | (((H >> (2 * qr)) & 3u) << 4);
        const int sc = (int8_t)b[192 + 8 * n + is + 2 * qr];
        return (rdh(b, 208) * (float)sc) * (float)((int)q - 32);
    }
}

/* the 8-element chunk c of a row (every chunk lies in one block and shares its scale) */
template <int T> LM_DEV void dq8(const uint8_t *row, unsigned c, float w[8]) {
    if constexpr (T == LM_F32) {
        const float4 *p = (const float4 *)(row + 32 * c); /* rows are 16-byte aligned for f32 when K % 4 == 0 */
        const float4 a = p[0], b = p[1];
        w[0] = a.x, w[1] = a.y, w[2] = a.z, w[3] = a.w, w[4] = b.x, w[5] = b.y, w[6] = b.z, w[7] = b.w;
    } else if constexpr (T == LM_F16 || T == LM_BF16) {
        const uint4 u = *(const uint4 *)(row + 16 * c);
        const unsigned x[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
        for (int k = 0; k < 4; k++) {
            if constexpr (T == LM_F16) {
                w[2 * k] = h2f((uint16_t)(x[k] & 0xffff));
                w[2 * k + 1] = h2f((uint16_t)(x[k] >> 16));
            } else {
                w[2 * k] = bf2f((uint16_t)(x[k] & 0xffff));
                w[2 * k + 1] = bf2f((uint16_t)(x[k] >> 16));
            }
        }
    } else if constexpr (T == LM_Q4_0 || T == LM_Q4_1) {
        const uint8_t *b = row + (c / 4) * qtraits<T>::bytes;
        const unsigned j = c % 4, sh = j < 2 ? 0 : 4, q0 = (T == LM_Q4_0 ? 2 : 4) + 8 * (j & 1);
        const float d = rdh(b, 0);
#pragma unroll
        for (int k = 0; k < 4; k++) {
            const unsigned x = rd16(b, q0 + 2 * k);
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const unsigned q = ((x >> (8 * e)) >> sh) & 15u;
                if constexpr (T == LM_Q4_0) w[2 * k + e] = d * (float)((int)q - 8);
                else w[2 * k + e] = d * (float)q + rdh(b, 2);
            }
        }
    } else if constexpr (T == LM_Q5_0 || T == LM_Q5_1) {
        const uint8_t *b = row + (c / 4) * qtraits<T>::bytes;
        const unsigned o = T == LM_Q5_0 ? 2 : 4;
        const unsigned j = c % 4, sh = j < 2 ? 0 : 4, q0 = o + 4 + 8 * (j & 1);
        const unsigned qh = rd16(b, o) | (rd16(b, o + 2) << 16);
        const float d = rdh(b, 0);
#pragma unroll
        for (int k = 0; k < 4; k++) {
            const unsigned x = rd16(b, q0 + 2 * k);
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const unsigned el = 8 * j + 2 * k + e;
                const unsigned q = (((x >> (8 * e)) >> sh) & 15u) | (((qh >> el) & 1u) << 4);
                if constexpr (T == LM_Q5_0) w[2 * k + e] = d * (float)((int)q - 16);
                else w[2 * k + e] = d * (float)q + rdh(b, 2);
            }
        }
    } else if constexpr (T == LM_Q8_0) {
        const uint8_t *b = row + (c / 4) * 34;
        const float d = rdh(b, 0);
        const unsigned q0 = 2 + 8 * (c % 4);
#pragma unroll
        for (int k = 0; k < 4; k++) {
            const unsigned x = rd16(b, q0 + 2 * k);
            w[2 * k] = (float)(int8_t)(x & 0xff) * d;
            w[2 * k + 1] = (float)(int8_t)(x >> 8) * d;
        }
    } else if constexpr (T == LM_Q2_K) {
        const uint8_t *b = row + (c / 32) * 84;
        const unsigned r0 = 8 * (c % 32), n = r0 / 128, j = (r0 % 128) / 32, l0 = r0 % 32;
        const unsigned sc = b[n * 8 + 2 * j + (l0 >= 16 ? 1 : 0)];
        const float dl = rdh(b, 80) * (float)(sc & 15u), ml = rdh(b, 82) * (float)(sc >> 4);
        const unsigned x0 = rd32a(b, 16 + 32 * n + l0), x1 = rd32a(b, 16 + 32 * n + l0 + 4);
#pragma unroll
        for (int e = 0; e < 8; e++) w[e] = dl * (float)((((e < 4 ? x0 : x1) >> (8 * (e % 4))) >> (2 * j)) & 3u) - ml;
    } else if constexpr (T == LM_Q3_K) {
        const uint8_t *b = row + (c / 32) * 110;
        const unsigned r0 = 8 * (c % 32), n = r0 / 128, j = (r0 % 128) / 32, l0 = r0 % 32;
        const unsigned is = n * 8 + 2 * j + (l0 >= 16 ? 1 : 0);
        const unsigned lo = (b[96 + is % 8] >> (4 * (is / 8))) & 15u, hi = (b[104 + is % 4] >> (2 * (is / 4))) & 3u;
        const float dl = rdh(b, 108) * (float)((int)(lo | (hi << 4)) - 32);
        const unsigned m = n * 4 + j;
#pragma unroll
        for (int k = 0; k < 4; k++) {
            const unsigned x = rd16(b, 32 + 32 * n + l0 + 2 * k), hm = rd16(b, l0 + 2 * k);
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const int q = (int)((((x >> (8 * e)) & 0xffu) >> (2 * j)) & 3u) - ((((hm >> (8 * e)) >> m) & 1u) ? 0 : 4);
                w[2 * k + e] = dl * (float)q;
            }
        }
    } else if constexpr (T == LM_Q4_K || T == LM_Q5_K) {
        const uint8_t *b = row + (c / 32) * qtraits<T>::bytes;
        const unsigned r0 = 8 * (c % 32), cc = r0 / 64, hi = (r0 % 64) / 32, l0 = r0 % 32, sub = 2 * cc + hi;
        unsigned sc, mn;
        scale_min_k4(b, sub, sc, mn);
        const float d1 = rdh(b, 0) * (float)sc, m1 = rdh(b, 2) * (float)mn;
        const unsigned qo = (T == LM_Q4_K ? 16 : 48) + 32 * cc + l0;
#pragma unroll
        for (int k = 0; k < 2; k++) {
            const unsigned x = rd32a(b, qo + 4 * k);
#if 1
            unsigned h = 0;
            if constexpr (T == LM_Q5_K) h = rd32a(b, 16 + l0 + 4 * k);
#endif
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const unsigned by = (x >> (8 * e)) & 0xffu;
                unsigned q = hi == 0 ? by & 15u : by >> 4;
                if constexpr (T == LM_Q5_K) q += (((h >> (8 * e)) >> sub) & 1u) << 4;
                w[4 * k + e] = d1 * (float)q - m1;
            }
        }
    } else if constexpr (T == LM_I4_G128) {
        const uint8_t *b = row + (c / 16) * 68;
        const unsigned j0 = 8 * (c % 16), sh = j0 < 64 ? 0 : 4;
        const float d = rdh(b, 0), m = rdh(b, 2);
        const unsigned x0 = rd32a(b, 4 + (j0 & 63)), x1 = rd32a(b, 8 + (j0 & 63));
#pragma unroll
        for (int e = 0; e < 8; e++) w[e] = d * (float)((((e < 4 ? x0 : x1) >> (8 * (e % 4))) >> sh) & 15u) + m;
    } else if constexpr (T == LM_F8_E4M3) {
        const uint8_t *b = row + (c / 16) * 132;
        const float d = __uint_as_float(rd32a(b, 0));
        const unsigned x0 = rd32a(b, 4 + 8 * (c % 16)), x1 = rd32a(b, 8 + 8 * (c % 16));
#pragma unroll
        for (int e = 0; e < 8; e++) w[e] = d * e4m3(((e < 4 ? x0 : x1) >> (8 * (e % 4))) & 0xffu);
    } else {
        static_assert(T == LM_Q6_K, "dq8: type");
        const uint8_t *b = row + (c / 32) * 210;
        const unsigned r0 = 8 * (c % 32), n = r0 / 128, qr = (r0 % 128) / 32, l0 = r0 % 32;
        const float ds = rdh(b, 208) * (float)(int8_t)b[192 + 8 * n + l0 / 16 + 2 * qr];
#pragma unroll
        for (int k = 0; k < 4; k++) {
            const unsigned L = rd16(b, 64 * n + 32 * (qr & 1u) + l0 + 2 * k), H = rd16(b, 128 + 32 * n + l0 + 2 * k);
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const unsigned lb = (L >> (8 * e)) & 0xffu, hb = (H >> (8 * e)) & 0xffu;
                const unsigned q = (qr < 2 ? lb & 15u : lb >> 4) | (((hb >> (2 * qr)) & 3u) << 4);
                w[2 * k + e] = ds * (float)((int)q - 32);
            }
        }
    }
}

/* Call f(std::integral_constant<int, T>()) for the runtime dtype t (the types matmul and
   get_rows take); returns false for other types. In f: `constexpr int T = decltype(tc)::value;` */
template <typename F> static inline bool dispatch_type(lm_dtype t, F &&f) {
    switch (t) {
    case LM_F32: f(std::integral_constant<int, LM_F32>()); return true;
    case LM_F16: f(std::integral_constant<int, LM_F16>()); return true;
    case LM_BF16: f(std::integral_constant<int, LM_BF16>()); return true;
    case LM_Q4_0: f(std::integral_constant<int, LM_Q4_0>()); return true;
    case LM_Q4_1: f(std::integral_constant<int, LM_Q4_1>()); return true;
    case LM_Q5_0: f(std::integral_constant<int, LM_Q5_0>()); return true;
    case LM_Q5_1: f(std::integral_constant<int, LM_Q5_1>()); return true;
    case LM_Q8_0: f(std::integral_constant<int, LM_Q8_0>()); return true;
    case LM_Q2_K: f(std::integral_constant<int, LM_Q2_K>()); return true;
    case LM_Q3_K: f(std::integral_constant<int, LM_Q3_K>()); return true;
    case LM_Q4_K: f(std::integral_constant<int, LM_Q4_K>()); return true;
    case LM_Q5_K: f(std::integral_constant<int, LM_Q5_K>()); return true;
    case LM_Q6_K: f(std::integral_constant<int, LM_Q6_K>()); return true;
    case LM_I4_G128: f(std::integral_constant<int, LM_I4_G128>()); return true;
    case LM_F8_E4M3: f(std::integral_constant<int, LM_F8_E4M3>()); return true;
    default: return false;
    }
}

} // namespace LM_CUDA_NS

#endif /* LM_CUDA_COMMON_CUH */
