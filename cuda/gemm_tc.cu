/*
 * gemm_tc.cu — prefill / batched GEMM on the tensor cores for quantized weights:
 * y[m, n] = sum_k W[k, m] x[k, n], W in any quantized type (repacked planes, Q4_K / Q5_K in place,
 * or the GGUF layout), x and y f32.
 *
 * Thread mapping: one block of 128 threads (4 warps, 2 x 2) per 64 x 64 output tile (64 weight
 * rows x 64 columns); K is walked 128 at a time. Per K-step:
 *   1. the 64 x 128 weight tile is dequantized straight into shared memory as f16: each thread
 *      takes two 32-weight units (repack.cuh's unit32: 16-byte loads; four consecutive units
 *      cover 128 consecutive elements in every format) and stores them as 16-byte rows of halves;
 *   2. the 64 x 128 activation tile is converted f32 -> f16 into shared memory (float4 loads:
 *      each column is contiguous in k);
 *   3. each warp multiplies its 32 x 32 sub-tile with mma.m16n8k16 (f16 in, f32 accumulate):
 *      per 16-wide k slice, two ldmatrix.x4 for A, two ldmatrix.x4 for four n8 B fragments,
 *      eight mma. Shared rows are padded to 136 halves (272 bytes = 17 x 16) so the eight row
 *      addresses of an ldmatrix phase fall in different banks.
 * Bytes: every weight is read once per 64 columns (N / 64 times in all); x once per 64 rows (from
 * L2). Arithmetic intensity is 64 MACs per weight byte-ish, so for N >= 64 the kernel is bound by
 * dequantization and tensor-core issue rather than DRAM, and for 8 < N < 64 by the weight reads.
 * What limits it today: one stage (the next tile is not loaded while the tensor cores work;
 * occupancy hides latency instead: 34 KB of shared memory and ~100 registers per thread allow ~5
 * blocks per SM), and f16 activations (values beyond +-65504 saturate; cuBLAS SGEMM stays for
 * F32/F16/BF16 weights and as the fallback, LUMEN_CUDA_TC=0 forces it for comparisons).
 * Precision: weights dequantized in f32 then rounded to f16; activations rounded to f16 (relative
 * 2^-11); products and sums in f32 — conformance class TOL_TC.
 */
#include "internal.h"
#include "mma.cuh"

namespace LM_CUDA_NS {

#define TC_BM 64
#define TC_BN 64
#define TC_BK 128
#define TC_LD (TC_BK + 8) /* halves per shared row */

struct tc_args {
    wsrc s;         /* the weights as unit32 reads them (PLANE) */
    const uint8_t *w; /* GGUF layout (dq8 units) */
    int64_t row_bytes, M;
    int K, N;
    const float *x;
    int64_t x_s1; /* floats between columns */
    float *d;
    int64_t d_s1;
};

/* 32 weights of unit u of row m: from unit32 (repacked / in place) or four dq8 chunks */
template <int T, bool UNIT32> LM_DEV void tc_unit(const tc_args &a, int64_t m, unsigned u, float w[32], unsigned &x0, unsigned &x1) {
    if constexpr (UNIT32) {
        unit32<T>(a.s, m, u, w, x0, x1);
    } else {
        const uint8_t *row = a.w + m * a.row_bytes;
#pragma unroll
        for (int q = 0; q < 4; q++) dq8<T>(row, 4 * u + q, w + 8 * q);
        x0 = 32 * u;
        x1 = x0 + 16;
    }
}

/* f32 -> f16 bits, saturating at +-65504 (an overflowing activation must not become inf) */
LM_DEV unsigned tc_h(float v) { return f2h(fminf(fmaxf(v, -65504.0f), 65504.0f)); }
LM_DEV unsigned tc_pack(float lo, float hi) { return tc_h(lo) | (tc_h(hi) << 16); }

template <int T, bool UNIT32> __global__ void __launch_bounds__(128) k_gemm_tc(tc_args a) {
    LM_SHARED(uint16_t, As, TC_BM * TC_LD);
    LM_SHARED(uint16_t, Bs, TC_BN * TC_LD);
    const unsigned tid = threadIdx.x, lane = tid % 32, warp = tid / 32, wm = warp % 2, wn = warp / 2;
    const unsigned g = lane / 4, t = lane % 4;
    const int64_t m0 = (int64_t)blockIdx.x * TC_BM;
    const int n0 = (int)blockIdx.y * TC_BN;
    /* activation column of this thread's B rows: column tid / 2, k half tid % 2 */
    const int bc = (int)(tid / 2), bh = (int)(tid % 2);
    const bool bvalid = n0 + bc < a.N;
    const float *xc = a.x + (int64_t)(n0 + bc) * a.x_s1;
    const bool x16 = ((uintptr_t)a.x % 16 == 0) && (a.x_s1 % 4 == 0);
    float acc[2][4][4];
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 4; j++)
#pragma unroll
            for (int o = 0; o < 4; o++) acc[i][j][o] = 0.0f;

    for (int k0 = 0; k0 < a.K; k0 += TC_BK) {
        /* 1. weights: units (row r, unit k0 / 32 + uu) for idx = tid, tid + 128; one at a time
              (unrolled, both units' 32 weights would be live together: spills on sm_90) */
#pragma unroll 1
        for (int p = 0; p < 2; p++) {
            const unsigned idx = tid + 128u * p, r = idx / 4, uu = idx % 4;
            const int64_t m = m0 + r;
            float w[32];
            unsigned x0 = (unsigned)k0 + 32u * uu, x1 = x0 + 16u;
            if (m < a.M) {
                tc_unit<T, UNIT32>(a, m, (unsigned)k0 / 32u + uu, w, x0, x1);
            } else {
#pragma unroll
                for (int i = 0; i < 32; i++) w[i] = 0.0f;
            }
            uint4 *d0 = (uint4 *)&As[r * TC_LD + (x0 - (unsigned)k0)];
            uint4 *d1 = (uint4 *)&As[r * TC_LD + (x1 - (unsigned)k0)];
            d0[0] = make_uint4(tc_pack(w[0], w[1]), tc_pack(w[2], w[3]), tc_pack(w[4], w[5]), tc_pack(w[6], w[7]));
            d0[1] = make_uint4(tc_pack(w[8], w[9]), tc_pack(w[10], w[11]), tc_pack(w[12], w[13]), tc_pack(w[14], w[15]));
            d1[0] = make_uint4(tc_pack(w[16], w[17]), tc_pack(w[18], w[19]), tc_pack(w[20], w[21]), tc_pack(w[22], w[23]));
            d1[1] = make_uint4(tc_pack(w[24], w[25]), tc_pack(w[26], w[27]), tc_pack(w[28], w[29]), tc_pack(w[30], w[31]));
        }
        /* 2. activations: 64 values of column bc, k in [k0 + 64 bh, + 64) */
        {
            const float *src = xc + k0 + 64 * bh;
            uint4 *dst = (uint4 *)&Bs[bc * TC_LD + 64 * bh];
#pragma unroll
            for (int q = 0; q < 8; q++) {
                float v[8];
                if (!bvalid) {
#pragma unroll
                    for (int e = 0; e < 8; e++) v[e] = 0.0f;
                } else if (x16) {
                    const float4 p0 = ((const float4 *)src)[2 * q], p1 = ((const float4 *)src)[2 * q + 1];
                    v[0] = p0.x, v[1] = p0.y, v[2] = p0.z, v[3] = p0.w, v[4] = p1.x, v[5] = p1.y, v[6] = p1.z, v[7] = p1.w;
                } else {
#pragma unroll
                    for (int e = 0; e < 8; e++) v[e] = src[8 * q + e];
                }
                dst[q] = make_uint4(tc_pack(v[0], v[1]), tc_pack(v[2], v[3]), tc_pack(v[4], v[5]), tc_pack(v[6], v[7]));
            }
        }
        __syncthreads();
        /* 3. tensor cores: the warp's 32 x 32 sub-tile, 16 k at a time */
#pragma unroll
        for (int ks = 0; ks < TC_BK / 16; ks++) {
            unsigned af[2][4], bf[4][2];
#pragma unroll
            for (int mi = 0; mi < 2; mi++)
                ldmatrix_x4(af[mi], &As[(wm * 32 + mi * 16 + lane % 16) * TC_LD + ks * 16 + (lane / 16) * 8]);
#pragma unroll
            for (int np = 0; np < 2; np++) {
                unsigned bq[4];
                /* tiles: (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7), (n 8-15, k 8-15) */
                ldmatrix_x4(bq, &Bs[(wn * 32 + np * 16 + (lane / 16) * 8 + lane % 8) * TC_LD + ks * 16 + ((lane / 8) % 2) * 8]);
                bf[2 * np][0] = bq[0], bf[2 * np][1] = bq[1];
                bf[2 * np + 1][0] = bq[2], bf[2 * np + 1][1] = bq[3];
            }
#pragma unroll
            for (int mi = 0; mi < 2; mi++)
#pragma unroll
                for (int ni = 0; ni < 4; ni++) mma_m16n8k16_f16(acc[mi][ni], af[mi], bf[ni], acc[mi][ni]);
        }
        __syncthreads();
    }
    /* d[n, m]: c[o] is row g + 8 (o / 2), column 2t + o % 2 of the fragment */
#pragma unroll
    for (int mi = 0; mi < 2; mi++)
#pragma unroll
        for (int ni = 0; ni < 4; ni++)
#pragma unroll
            for (int o = 0; o < 4; o++) {
                const int64_t m = m0 + wm * 32 + mi * 16 + g + 8 * (o / 2);
                const int n = n0 + (int)wn * 32 + ni * 8 + 2 * (int)t + o % 2;
                if (m < a.M && n < a.N) a.d[(int64_t)n * a.d_s1 + m] = acc[mi][ni][o];
            }
}

/* The tensor-core GEMM takes the node: quantized weights, K in whole 128-element groups, a grid
   within limits, sm_80+ (mma.m16n8k16 f16, ldmatrix), and not turned off. */
bool gemm_tc_eligible(const ctx &c, const lm_node *n) {
    const lm_tensor *w = n->src[0], *x = n->src[1];
    static const bool off = [] {
        const char *e = getenv("LUMEN_CUDA_TC");
        return e && e[0] == '0';
    }();
    if (off || c.props.cc_major < 8) return false;
    if (!lm_dtype_get(w->type)->quantized) return false;
    if (w->ne[0] % TC_BK || w->ne[2] != 1 || x->ne[2] != 1) return false;
    if (ceil_div(x->ne[1], TC_BN) > LM_MAX_GRID_YZ || ceil_div(w->ne[1], TC_BM) > 0x7fffffffu) return false;
    return x->nb[1] % 4 == 0 && n->dst->nb[1] % 4 == 0;
}

void op_gemm_tc(ctx &c, const lm_node *n) {
    if (c.planning) return;
    const lm_tensor *w = n->src[0], *x = n->src[1], *d = n->dst;
    tc_args a = {};
    bool planar = false;
    const bool unit = weight_src(c, w, a.s, planar);
    a.w = (const uint8_t *)dptr(w);
    a.row_bytes = (int64_t)w->nb[1];
    a.M = w->ne[1];
    a.K = (int)w->ne[0];
    a.N = (int)x->ne[1];
    a.x = dp<const float>(x);
    a.x_s1 = (int64_t)x->nb[1] / 4;
    a.d = dp<float>(d);
    a.d_s1 = (int64_t)d->nb[1] / 4;
    const dim3 grid(ceil_div(a.M, TC_BM), ceil_div(a.N, TC_BN));
    dispatch_type(w->type, [&](auto tc_) {
        constexpr int T = decltype(tc_)::value;
        if constexpr (T != LM_F32 && T != LM_F16 && T != LM_BF16) {
            if constexpr (wide_traits<T>::planar || wide_traits<T>::inplace) {
                if (unit) {
                    auto k = k_gemm_tc<T, true>;
                    LM_KERNEL(c, k, grid, 128, 0, a);
                    return;
                }
            }
            if (planar) return latch(c, LM_STATUS_BACKEND, "repacked weights '%s' without a unit reader (a bug)", w->name);
            auto k = k_gemm_tc<T, false>;
            LM_KERNEL(c, k, grid, 128, 0, a);
        }
    });
}

} // namespace LM_CUDA_NS
