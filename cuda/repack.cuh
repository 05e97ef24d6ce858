/*
 * repack.cuh — weight layouts for 16-byte loads, and the 32-element "units" the wide GEMV reads.
 *
 * GGUF stores blocks as arrays of structs: Q4_0 is 18 bytes (f16 scale, 16 bytes of nibbles),
 * Q8_0 34, Q6_K 210 — sizes that are not multiples of 16, so quants cannot be fetched with
 * 16-byte vector loads. At load time (tensor_set of a whole weight tensor) the backend rewrites
 * such a tensor as a struct of arrays, one plane per block field in the order below, each plane
 * holding that field of every block of the tensor (row-major block order). The tensor keeps its
 * size and place in the buffer; only the bytes inside it move, so views of its rows (the tied
 * embedding, one expert of a MoE tensor) stay valid: a view's row r of a repacked tensor is
 * global row row0 + r. Every plane starts 16-byte aligned (plane sizes are multiples of 16).
 *   Q4_0: qs[16] | d[2]          Q8_0: qs[32] | d[2]
 *   Q6_K: ql[128] | qh[64] | scales[16] | d[2]
 *   I4_G128: qs[64] | d[2] | m[2]  F8_E4M3: qs[128] | d[4]   (lumen's formats, quant_blocks.h)
 * Q4_K and Q5_K blocks (144 / 176 bytes, quants at 16-byte offsets) are read in place.
 *
 * A unit is 32 weights one lane dequantizes from one or two 16-byte loads: two runs of 16
 * elements of the row, at x0 and x1 (for the activations: four float4 loads each).
 */
#ifndef LM_CUDA_REPACK_CUH
#define LM_CUDA_REPACK_CUH

#include "common.cuh"

namespace LM_CUDA_NS {

/* which types are repacked, and their fields: offset in the GGUF block and size, in plane order */
struct repack_field {
    int off, size;
};
static inline int repack_fields(lm_dtype t, repack_field f[4]) {
    switch (t) {
    case LM_Q4_0: f[0] = {2, 16}, f[1] = {0, 2}; return 2;
    case LM_Q8_0: f[0] = {2, 32}, f[1] = {0, 2}; return 2;
    case LM_Q6_K: f[0] = {0, 128}, f[1] = {128, 64}, f[2] = {192, 16}, f[3] = {208, 2}; return 4;
    case LM_I4_G128: f[0] = {4, 64}, f[1] = {0, 2}, f[2] = {2, 2}; return 3;
    case LM_F8_E4M3: f[0] = {4, 128}, f[1] = {0, 4}; return 2;
    default: return 0;
    }
}

/* a weight matrix as the wide kernels see it */
struct wsrc {
    const uint8_t *w;  /* GGUF layout: row 0; repacked: the tensor's first byte (plane 0) */
    int64_t row_bytes; /* GGUF layout */
    int64_t nblk;      /* repacked: blocks in the whole tensor (plane sizes) */
    int64_t row0;      /* repacked: global row of this view's row 0 */
    int64_t bpr;       /* blocks per row */
};

template <int T> struct wide_traits {
    static constexpr bool planar = T == LM_Q4_0 || T == LM_Q8_0 || T == LM_Q6_K || T == LM_I4_G128 || T == LM_F8_E4M3;
    static constexpr bool inplace = T == LM_Q4_K || T == LM_Q5_K;
};

/* unit u (32 weights) of row `row`: w[0..15] belong to elements x0.., w[16..31] to x1.. */
template <int T> LM_DEV void unit32(const wsrc &s, int64_t row, unsigned u, float w[32], unsigned &x0, unsigned &x1) {
    if constexpr (T == LM_Q4_K || T == LM_Q5_K) {
        const unsigned b = u / 8, v = u % 8, cc = v / 2, h = v % 2;
        const uint8_t *blk = s.w + row * s.row_bytes + (int64_t)b * qtraits<T>::bytes;
        unsigned sc0, m0, sc1, m1;
        scale_min_k4(blk, 2 * cc, sc0, m0);
        scale_min_k4(blk, 2 * cc + 1, sc1, m1);
        const float d = rdh(blk, 0), dm = rdh(blk, 2);
        const float d0 = d * (float)sc0, o0 = dm * (float)m0, d1 = d * (float)sc1, o1 = dm * (float)m1;
        const uint4 q = *(const uint4 *)(blk + (T == LM_Q4_K ? 16 : 48) + 32 * cc + 16 * h);
        const unsigned qw[4] = {q.x, q.y, q.z, q.w};
        unsigned hw[4] = {0, 0, 0, 0};
        if constexpr (T == LM_Q5_K) {
            const uint4 hh = *(const uint4 *)(blk + 16 + 16 * h);
            hw[0] = hh.x, hw[1] = hh.y, hw[2] = hh.z, hw[3] = hh.w;
        }
#pragma unroll
        for (int i = 0; i < 16; i++) {
            const unsigned by = (qw[i / 4] >> (8 * (i % 4))) & 0xffu;
            unsigned lo = by & 15u, hi = by >> 4;
            if constexpr (T == LM_Q5_K) {
                const unsigned hb = (hw[i / 4] >> (8 * (i % 4))) & 0xffu;
                lo += ((hb >> (2 * cc)) & 1u) << 4;
                hi += ((hb >> (2 * cc + 1)) & 1u) << 4;
            }
            w[i] = d0 * (float)lo - o0;
            w[16 + i] = d1 * (float)hi - o1;
        }
        x0 = 256 * b + 64 * cc + 16 * h;
        x1 = x0 + 32;
    } else if constexpr (T == LM_Q4_0) {
        const int64_t g = (s.row0 + row) * s.bpr + u;
        const uint4 q = *(const uint4 *)(s.w + g * 16);
        const float d = h2f(*(const uint16_t *)(s.w + s.nblk * 16 + g * 2));
        const unsigned qw[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
        for (int i = 0; i < 16; i++) {
            const unsigned by = (qw[i / 4] >> (8 * (i % 4))) & 0xffu;
            w[i] = d * (float)((int)(by & 15u) - 8);
            w[16 + i] = d * (float)((int)(by >> 4) - 8);
        }
        x0 = 32 * u;
        x1 = x0 + 16;
    } else if constexpr (T == LM_Q8_0) {
        const int64_t g = (s.row0 + row) * s.bpr + u;
        const uint4 q0 = *(const uint4 *)(s.w + g * 32), q1 = *(const uint4 *)(s.w + g * 32 + 16);
        const float d = h2f(*(const uint16_t *)(s.w + s.nblk * 32 + g * 2));
        const unsigned qw[8] = {q0.x, q0.y, q0.z, q0.w, q1.x, q1.y, q1.z, q1.w};
#pragma unroll
        for (int i = 0; i < 32; i++) w[i] = d * (float)(int8_t)((qw[i / 4] >> (8 * (i % 4))) & 0xffu);
        x0 = 32 * u;
        x1 = x0 + 16;
    } else if constexpr (T == LM_I4_G128) {
        const unsigned b = u / 4, k = u % 4;
        const int64_t g = (s.row0 + row) * s.bpr + b;
        const uint4 q = *(const uint4 *)(s.w + g * 64 + 16 * k);
        const float d = h2f(*(const uint16_t *)(s.w + s.nblk * 64 + g * 2));
        const float m = h2f(*(const uint16_t *)(s.w + s.nblk * 66 + g * 2));
        const unsigned qw[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
        for (int i = 0; i < 16; i++) {
            const unsigned by = (qw[i / 4] >> (8 * (i % 4))) & 0xffu;
            w[i] = d * (float)(by & 15u) + m;
            w[16 + i] = d * (float)(by >> 4) + m;
        }
        x0 = 128 * b + 16 * k;
        x1 = x0 + 64;
    } else if constexpr (T == LM_F8_E4M3) {
        const unsigned b = u / 4, k = u % 4;
        const int64_t g = (s.row0 + row) * s.bpr + b;
        const uint4 q0 = *(const uint4 *)(s.w + g * 128 + 32 * k), q1 = *(const uint4 *)(s.w + g * 128 + 32 * k + 16);
        const float d = *(const float *)(s.w + s.nblk * 128 + g * 4);
        const unsigned qw[8] = {q0.x, q0.y, q0.z, q0.w, q1.x, q1.y, q1.z, q1.w};
#pragma unroll
        for (int i = 0; i < 32; i++) w[i] = d * e4m3((qw[i / 4] >> (8 * (i % 4))) & 0xffu);
        x0 = 128 * b + 32 * k;
        x1 = x0 + 16;
    } else {
        static_assert(T == LM_Q6_K, "unit32: type");
        const unsigned b = u / 8, v = u % 8, n = v / 4, j = v % 4;
        const int64_t g = (s.row0 + row) * s.bpr + b;
        const uint8_t *ql = s.w, *qh = ql + s.nblk * 128, *sc = qh + s.nblk * 64, *dd = sc + s.nblk * 16;
        const uint4 L = *(const uint4 *)(ql + g * 128 + 64 * n + 16 * j);
        const uint4 H = *(const uint4 *)(qh + g * 64 + 32 * n + 16 * (j % 2));
        const float d = h2f(*(const uint16_t *)(dd + g * 2));
        const unsigned qr0 = j / 2, qr1 = 2 + j / 2;
        const float s0 = d * (float)(int8_t)sc[g * 16 + 8 * n + (j % 2) + 2 * qr0];
        const float s1 = d * (float)(int8_t)sc[g * 16 + 8 * n + (j % 2) + 2 * qr1];
        const unsigned lw[4] = {L.x, L.y, L.z, L.w}, hw[4] = {H.x, H.y, H.z, H.w};
#pragma unroll
        for (int i = 0; i < 16; i++) {
            const unsigned lb = (lw[i / 4] >> (8 * (i % 4))) & 0xffu, hb = (hw[i / 4] >> (8 * (i % 4))) & 0xffu;
            const unsigned q0 = (lb & 15u) | (((hb >> (2 * qr0)) & 3u) << 4);
            const unsigned q1 = (lb >> 4) | (((hb >> (2 * qr1)) & 3u) << 4);
            w[i] = s0 * (float)((int)q0 - 32);
            w[16 + i] = s1 * (float)((int)q1 - 32);
        }
        x0 = 256 * b + 128 * n + 16 * j;
        x1 = x0 + 64;
    }
}

/* element i of row `row` of a repacked tensor (gathers and the prefill dequantization) */
template <int T> LM_DEV float dq_planar(const wsrc &s, int64_t row, unsigned i) {
    if constexpr (T == LM_Q4_0) {
        const int64_t g = (s.row0 + row) * s.bpr + i / 32;
        const unsigned j = i % 32, by = s.w[g * 16 + (j & 15)];
        const float d = h2f(*(const uint16_t *)(s.w + s.nblk * 16 + g * 2));
        return d * (float)((int)(j < 16 ? by & 15u : by >> 4) - 8);
    } else if constexpr (T == LM_Q8_0) {
        const int64_t g = (s.row0 + row) * s.bpr + i / 32;
        const float d = h2f(*(const uint16_t *)(s.w + s.nblk * 32 + g * 2));
        return d * (float)(int8_t)s.w[g * 32 + i % 32];
    } else if constexpr (T == LM_I4_G128) {
        const int64_t g = (s.row0 + row) * s.bpr + i / 128;
        const unsigned j = i % 128, by = s.w[g * 64 + (j & 63)];
        const float d = h2f(*(const uint16_t *)(s.w + s.nblk * 64 + g * 2)), m = h2f(*(const uint16_t *)(s.w + s.nblk * 66 + g * 2));
        return d * (float)(j < 64 ? by & 15u : by >> 4) + m;
    } else if constexpr (T == LM_F8_E4M3) {
        const int64_t g = (s.row0 + row) * s.bpr + i / 128;
        return *(const float *)(s.w + s.nblk * 128 + g * 4) * e4m3(s.w[g * 128 + i % 128]);
    } else {
        static_assert(T == LM_Q6_K, "dq_planar: type");
        const int64_t g = (s.row0 + row) * s.bpr + i / 256;
        const uint8_t *ql = s.w, *qh = ql + s.nblk * 128, *sc = qh + s.nblk * 64, *dd = sc + s.nblk * 16;
        const unsigned r = i % 256, n = r / 128, qr = (r % 128) / 32, l = r % 32, is = l / 16;
        const unsigned Lb = ql[g * 128 + 64 * n + l + (qr & 1u) * 32], Hb = qh[g * 64 + 32 * n + l];
        const unsigned q = (qr < 2 ? Lb & 15u : Lb >> 4) | (((Hb >> (2 * qr)) & 3u) << 4);
        const int scv = (int8_t)sc[g * 16 + 8 * n + is + 2 * qr];
        return (h2f(*(const uint16_t *)(dd + g * 2)) * (float)scv) * (float)((int)q - 32);
    }
}

} // namespace LM_CUDA_NS

#endif /* LM_CUDA_REPACK_CUH */
