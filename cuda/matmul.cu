/*
 * matmul.cu — y[m, n] = sum_k W[k, m] x[k, n] for W in any GGUF type (F32/F16/BF16, Q4_0..Q8_0,
 * Q2_K..Q6_K) and f32 activations; matmul_id for MoE experts.
 *
 * Decode (n <= 8 columns): dequant-GEMV. One warp per weight row, four rows per 128-thread block.
 * Lanes take adjacent 8-element chunks of the row (dq8 in common.cuh: a chunk lies in one block
 * and shares its scale), so a warp's 32 lanes read one contiguous 128-byte run of 4-bit quants
 * (or 256 bytes of 8-bit ones) per step: coalesced; block scales are read by every lane of the
 * warp at once (a broadcast). Each weight byte is read exactly once for up to 8 columns (the
 * columns' accumulators live in registers), x comes from L1/L2. Bytes moved ≈ the weight matrix:
 * the kernel is DRAM-bandwidth bound, and its efficiency is set by how many bytes each lane
 * has in flight — 4 here, against the 16 of a repacked layout (planned: see the issue notes).
 * Float rows whose length or alignment rules out 16-byte chunk loads use a per-element path.
 *
 * Prefill (n > 8): quantized weights with K a multiple of 128 go to the tensor-core GEMM
 * (gemm_tc.cu). Otherwise the weight rows are dequantized to f32 in slices of at most 64 MiB of
 * scratch and multiplied by cuBLAS SGEMM (fp32, no TF32); F32 weights go to SGEMM directly.
 *
 * matmul_id: the GEMV for every (slot j, token t) pair on grid.y, its expert read from ids.
 */
#include "internal.h"

namespace LM_CUDA_NS {

#define GEMV_ROWS 4 /* rows (warps) per block */
#define GEMV_MAX_NC 8

struct gemv_args {
    const uint8_t *w;
    int64_t row_bytes, M;
    int K;
    const float *x;
    int64_t x_s1; /* floats between columns */
    float *d;
    int64_t d_s1;
    int ncols; /* columns of this launch (matmul) */
    /* matmul_id */
    const int32_t *ids;
    int64_t x_s2, d_s2;
    int J, x_ne1, n_expert;
    int64_t expert_rows; /* expert_bytes / row_bytes */
};

/* What block (blockIdx.y) and warp (row m) compute: the activation columns x and outputs d (up to
   NC of them: nc), and the weight row r (for matmul_id, row m of the expert the (slot, token)
   pair blockIdx.y selected). False when there is nothing to compute (an out-of-range expert id
   poisons the output instead of reading out of bounds). */
template <int NC>
LM_DEV bool gemv_target(const gemv_args &a, int64_t m, unsigned lane, const float *&x, float *&d, int &nc, int64_t &r) {
    x = a.x;
    d = a.d;
    r = m;
    if (a.ids) {
        const int j = (int)(blockIdx.y % (unsigned)a.J), t = (int)(blockIdx.y / (unsigned)a.J);
        const int e = a.ids[blockIdx.y];
        if (e < 0 || e >= a.n_expert) {
            if (lane == 0) d[j * a.d_s1 + t * a.d_s2 + m] = __int_as_float(0x7fc00000);
            return false;
        }
        r = e * a.expert_rows + m;
        x += (a.x_ne1 == 1 ? 0 : j) * a.x_s1 + t * a.x_s2;
        d += j * a.d_s1 + t * a.d_s2;
        nc = 1;
    } else {
        const int c0 = (int)blockIdx.y * NC;
        x += c0 * a.x_s1;
        d += c0 * a.d_s1;
        nc = a.ncols - c0 < NC ? a.ncols - c0 : NC;
    }
    return true;
}

template <int T, int NC, bool VEC> __global__ void __launch_bounds__(128, 4) k_gemv(gemv_args a) {
    const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int64_t m = (int64_t)blockIdx.x * GEMV_ROWS + warp;
    if (m >= a.M) return; /* whole warps leave together */
    const float *x;
    float *d;
    int nc;
    int64_t r;
    if (!gemv_target<NC>(a, m, lane, x, d, nc, r)) return;
    const uint8_t *row = a.w + r * a.row_bytes;
    float acc[NC];
#pragma unroll
    for (int j = 0; j < NC; j++) acc[j] = 0.0f;
    if constexpr (VEC) {
        const unsigned nch = (unsigned)a.K / 8;
        const bool x16 = ((uintptr_t)x % 16 == 0) && (a.x_s1 % 4 == 0);
        for (unsigned ch = lane; ch < nch; ch += 32) {
            float wv[8];
            dq8<T>(row, ch, wv);
#pragma unroll
            for (int j = 0; j < NC; j++) {
                if (j < nc) {
                    const float *xc = x + j * a.x_s1 + 8 * ch;
                    float xv[8];
                    if (x16) {
                        const float4 p = ((const float4 *)xc)[0], q = ((const float4 *)xc)[1];
                        xv[0] = p.x, xv[1] = p.y, xv[2] = p.z, xv[3] = p.w, xv[4] = q.x, xv[5] = q.y, xv[6] = q.z, xv[7] = q.w;
                    } else {
#pragma unroll
                        for (int e = 0; e < 8; e++) xv[e] = xc[e];
                    }
#pragma unroll
                    for (int e = 0; e < 8; e++) acc[j] += wv[e] * xv[e];
                }
            }
        }
    } else {
        for (int i = (int)lane; i < a.K; i += 32) {
            const float wv = dq<T>(row, (unsigned)i);
#pragma unroll
            for (int j = 0; j < NC; j++)
                if (j < nc) acc[j] += wv * x[j * a.x_s1 + i];
        }
    }
#pragma unroll
    for (int j = 0; j < NC; j++) {
        const float s = warp_sum(acc[j]);
        if (lane == 0 && j < nc) d[j * a.d_s1 + m] = s;
    }
}

/* The wide GEMV: each lane dequantizes 32-weight units read with 16-byte loads (repack.cuh):
   Q4_K / Q5_K in place, Q4_0 / Q8_0 / Q6_K from their repacked planes. Same mapping otherwise. */
template <int T, int NC> __global__ void __launch_bounds__(128, 4) k_gemv_wide(gemv_args a, wsrc s) {
    const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int64_t m = (int64_t)blockIdx.x * GEMV_ROWS + warp;
    if (m >= a.M) return;
    const float *x;
    float *d;
    int nc;
    int64_t row;
    if (!gemv_target<NC>(a, m, lane, x, d, nc, row)) return;
    float acc[NC];
#pragma unroll
    for (int j = 0; j < NC; j++) acc[j] = 0.0f;
    const unsigned nu = (unsigned)a.K / 32;
    const bool x16 = ((uintptr_t)x % 16 == 0) && (a.x_s1 % 4 == 0);
    for (unsigned u = lane; u < nu; u += 32) {
        float w[32];
        unsigned x0, x1;
        unit32<T>(s, row, u, w, x0, x1);
#pragma unroll
        for (int j = 0; j < NC; j++) {
            if (j < nc) {
                const float *xc = x + j * a.x_s1;
                float sum = 0.0f;
                if (x16) {
#pragma unroll
                    for (int q = 0; q < 4; q++) {
                        const float4 p = ((const float4 *)(xc + x0))[q], r = ((const float4 *)(xc + x1))[q];
                        sum += w[4 * q] * p.x + w[4 * q + 1] * p.y + w[4 * q + 2] * p.z + w[4 * q + 3] * p.w;
                        sum += w[16 + 4 * q] * r.x + w[16 + 4 * q + 1] * r.y + w[16 + 4 * q + 2] * r.z + w[16 + 4 * q + 3] * r.w;
                    }
                } else {
#pragma unroll
                    for (int i = 0; i < 16; i++) sum += w[i] * xc[x0 + i] + w[16 + i] * xc[x1 + i];
                }
                acc[j] += sum;
            }
        }
    }
#pragma unroll
    for (int j = 0; j < NC; j++) {
        const float v = warp_sum(acc[j]);
        if (lane == 0 && j < nc) d[j * a.d_s1 + m] = v;
    }
}

/* the rows of a repacked tensor, dequantized (prefill) */
template <int T> __global__ void __launch_bounds__(256) k_dequant_rows_planar(wsrc s, int K, int64_t m0, float *out) {
    const unsigned i = blockIdx.x * 256 + threadIdx.x;
    if (i >= (unsigned)K) return;
    out[(int64_t)blockIdx.y * K + i] = dq_planar<T>(s, m0 + blockIdx.y, i);
}

/* dequantize rows [m0, m0 + mc) to f32 [K, mc] (one 8-element chunk per thread, or elements) */
template <int T, bool VEC>
__global__ void __launch_bounds__(256) k_dequant_rows(const uint8_t *w, int64_t row_bytes, int K, int64_t m0, float *out) {
    const int64_t r = blockIdx.y;
    const uint8_t *row = w + (m0 + r) * row_bytes;
    float *o = out + r * K;
    if constexpr (VEC) {
        const unsigned ch = blockIdx.x * 256 + threadIdx.x;
        if (ch >= (unsigned)K / 8) return;
        float v[8];
        dq8<T>(row, ch, v);
#pragma unroll
        for (int e = 0; e < 8; e++) o[8 * ch + e] = v[e];
    } else {
        const unsigned i = blockIdx.x * 256 + threadIdx.x;
        if (i >= (unsigned)K) return;
        o[i] = dq<T>(row, i);
    }
}

/* chunk loads are possible: K in whole chunks and, for plain types, 16-byte aligned rows */
static bool vec_ok(const lm_tensor *w) {
    if (w->ne[0] % 8) return false;
    if (w->type != LM_F32 && w->type != LM_F16 && w->type != LM_BF16) return true;
    return (uintptr_t)dptr(w) % 16 == 0 && w->nb[1] % 16 == 0 && (w->ne[2] == 1 || w->nb[2] % 16 == 0);
}

template <int T, int NC> static void launch_gemv(ctx &c, const gemv_args &a, dim3 grid, bool vec) {
    if constexpr (T == LM_F32 || T == LM_F16 || T == LM_BF16) {
        if (!vec) {
            auto k = k_gemv<T, NC, false>;
            LM_KERNEL(c, k, grid, 128, 0, a);
            return;
        }
    }
    auto k = k_gemv<T, NC, true>;
    LM_KERNEL(c, k, grid, 128, 0, a);
}

template <int T, int NC> static void launch_gemv_wide(ctx &c, const gemv_args &a, const wsrc &s, dim3 grid) {
    if constexpr (wide_traits<T>::planar || wide_traits<T>::inplace) {
        auto k = k_gemv_wide<T, NC>;
        LM_KERNEL(c, k, grid, 128, 0, a, s);
    } else {
        latch(c, LM_STATUS_BACKEND, "wide GEMV for a type without units (a bug)");
    }
}

static const int64_t SLICE_BYTES = 64ll << 20;

void op_matmul(ctx &c, const lm_node *n) {
    const lm_tensor *w = n->src[0], *x = n->src[1], *d = n->dst;
    const int K = (int)w->ne[0];
    const int64_t M = w->ne[1], N = x->ne[1];
    if (N > GEMV_MAX_NC && gemm_tc_eligible(c, n)) return op_gemm_tc(c, n); /* tensor cores (gemm_tc.cu) */
    if (N > GEMV_MAX_NC) {
        /* prefill: dequantize slices of rows, SGEMM */
        const bool direct = w->type == LM_F32 && w->nb[1] % 4 == 0;
        int64_t mc = direct ? M : SLICE_BYTES / ((int64_t)K * 4);
        if (mc < 1) mc = 1;
        if (mc > M) mc = M;
        float *tmp = direct ? nullptr : (float *)scratch(c, (size_t)mc * K * 4);
        if (c.planning || (!direct && !tmp)) return;
        const bool vec = vec_ok(w);
        wsrc ws;
        bool planar = false;
        weight_src(c, w, ws, planar);
        for (int64_t m0 = 0; m0 < M; m0 += mc) {
            const int64_t rows = M - m0 < mc ? M - m0 : mc;
            const float *A;
            int lda;
            if (direct) {
                A = (const float *)(dptr(w) + m0 * (int64_t)w->nb[1]);
                lda = (int)(w->nb[1] / 4);
            } else {
                for (int64_t r0 = 0; r0 < rows; r0 += LM_MAX_GRID_YZ) {
                    const int64_t rr = rows - r0 < (int64_t)LM_MAX_GRID_YZ ? rows - r0 : (int64_t)LM_MAX_GRID_YZ;
                    dispatch_type(w->type, [&](auto tc_) {
                        constexpr int T = decltype(tc_)::value;
                        if constexpr (wide_traits<T>::planar) {
                            if (planar) {
                                auto k = k_dequant_rows_planar<T>;
                                LM_KERNEL(c, k, dim3(ceil_div(K, 256), (unsigned)rr), 256, 0, ws, K, m0 + r0, tmp + r0 * K);
                                return;
                            }
                        }
                        if constexpr (T == LM_F32 || T == LM_F16 || T == LM_BF16) {
                            if (!vec) {
                                auto k = k_dequant_rows<T, false>;
                                LM_KERNEL(c, k, dim3(ceil_div(K, 256), (unsigned)rr), 256, 0, (const uint8_t *)dptr(w),
                                          (int64_t)w->nb[1], K, m0 + r0, tmp + r0 * K);
                                return;
                            }
                        }
                        auto k = k_dequant_rows<T, true>;
                        LM_KERNEL(c, k, dim3(ceil_div(K / 8, 256), (unsigned)rr), 256, 0, (const uint8_t *)dptr(w),
                                  (int64_t)w->nb[1], K, m0 + r0, tmp + r0 * K);
                    });
                }
                A = tmp;
                lda = K;
            }
            const int e = rt::sgemm_tn(c.blas, c.stream, (int)rows, (int)N, K, A, lda, dp<const float>(x), (int)(x->nb[1] / 4),
                                       dp<float>(d) + m0, (int)(d->nb[1] / 4));
            if (e) latch(c, LM_STATUS_BACKEND, "cuBLAS SGEMM (%d x %lld x %d): %s", (int)rows, (long long)N, K, rt::error_string(e));
        }
        return;
    }
    if (c.planning) return;
    gemv_args a = {};
    a.w = (const uint8_t *)dptr(w);
    a.row_bytes = (int64_t)w->nb[1];
    a.M = M;
    a.K = K;
    a.x = dp<const float>(x);
    a.x_s1 = (int64_t)x->nb[1] / 4;
    a.d = dp<float>(d);
    a.d_s1 = (int64_t)d->nb[1] / 4;
    a.ncols = (int)N;
    const bool vec = vec_ok(w);
    const int nc = N <= 1 ? 1 : N <= 2 ? 2 : N <= 4 ? 4 : 8;
    const dim3 grid(ceil_div(M, GEMV_ROWS), ceil_div(N, nc));
    wsrc ws;
    bool planar = false;
    if (weight_src(c, w, ws, planar) && K % 32 == 0) {
        dispatch_type(w->type, [&](auto tc_) {
            constexpr int T = decltype(tc_)::value;
            switch (nc) {
            case 1: launch_gemv_wide<T, 1>(c, a, ws, grid); break;
            case 2: launch_gemv_wide<T, 2>(c, a, ws, grid); break;
            case 4: launch_gemv_wide<T, 4>(c, a, ws, grid); break;
            default: launch_gemv_wide<T, 8>(c, a, ws, grid); break;
            }
        });
        return;
    }
    if (planar) return latch(c, LM_STATUS_BACKEND, "repacked weights '%s' with K = %d", w->name, K);
    dispatch_type(w->type, [&](auto tc_) {
        constexpr int T = decltype(tc_)::value;
        switch (nc) {
        case 1: launch_gemv<T, 1>(c, a, grid, vec); break;
        case 2: launch_gemv<T, 2>(c, a, grid, vec); break;
        case 4: launch_gemv<T, 4>(c, a, grid, vec); break;
        default: launch_gemv<T, 8>(c, a, grid, vec); break;
        }
    });
}

void op_matmul_id(ctx &c, const lm_node *n) {
    if (c.planning) return;
    const lm_tensor *w = n->src[0], *x = n->src[1], *ids = n->src[2], *d = n->dst;
    gemv_args a = {};
    a.w = (const uint8_t *)dptr(w);
    a.row_bytes = (int64_t)w->nb[1];
    a.M = w->ne[1];
    a.K = (int)w->ne[0];
    a.x = dp<const float>(x);
    a.x_s1 = (int64_t)x->nb[1] / 4;
    a.x_s2 = (int64_t)x->nb[2] / 4;
    a.d = dp<float>(d);
    a.d_s1 = (int64_t)d->nb[1] / 4;
    a.d_s2 = (int64_t)d->nb[2] / 4;
    a.ids = dp<const int32_t>(ids);
    a.J = (int)ids->ne[0];
    a.x_ne1 = (int)x->ne[1];
    a.n_expert = (int)w->ne[2];
    a.expert_rows = (int64_t)(w->nb[2] / w->nb[1]);
    const bool vec = vec_ok(w);
    const dim3 grid(ceil_div(a.M, GEMV_ROWS), (unsigned)(ids->ne[0] * ids->ne[1]));
    wsrc ws;
    bool planar = false;
    if (weight_src(c, w, ws, planar) && a.K % 32 == 0) {
        dispatch_type(w->type, [&](auto tc_) {
            constexpr int T = decltype(tc_)::value;
            launch_gemv_wide<T, 1>(c, a, ws, grid);
        });
        return;
    }
    if (planar) return latch(c, LM_STATUS_BACKEND, "repacked expert weights '%s' not readable", w->name);
    dispatch_type(w->type, [&](auto tc_) {
        constexpr int T = decltype(tc_)::value;
        launch_gemv<T, 1>(c, a, grid, vec);
    });
}

bool supports_matmul(const lm_node *n) {
    const lm_tensor *w = n->src[0], *x = n->src[1], *d = n->dst;
    bool ok = false;
    dispatch_type(w->type, [&](auto) { ok = true; });
    if (!ok || x->type != LM_F32 || d->type != LM_F32 || x->nb[0] != 4 || d->nb[0] != 4) return false;
    if (x->nb[1] % 4 || d->nb[1] % 4 || w->ne[0] > INT32_MAX) return false;
    if (n->op == LM_OP_MATMUL) {
        /* cuBLAS takes int dimensions and leading dimensions */
        return x->ne[2] == 1 && x->ne[3] == 1 && w->ne[2] == 1 && x->ne[1] <= INT32_MAX / 2 && x->nb[1] / 4 <= INT32_MAX &&
               d->nb[1] / 4 <= INT32_MAX && w->ne[1] <= INT32_MAX && (w->type != LM_F32 || w->nb[1] / 4 <= INT32_MAX);
    }
    const lm_tensor *ids = n->src[2];
    /* experts are addressed as rows (expert e's row m is row e * (nb2 / nb1) + m) */
    return lm_tensor_is_contiguous(ids) && ids->type == LM_I32 && ids->ne[0] * ids->ne[1] <= (int64_t)LM_MAX_GRID_YZ &&
           x->nb[2] % 4 == 0 && d->nb[2] % 4 == 0 && w->nb[2] % w->nb[1] == 0;
}

} // namespace LM_CUDA_NS
