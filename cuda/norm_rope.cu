/*
 * norm_rope.cu — RMSNorm (optionally times a weight row, plus a residual: the fused
 * "x + norm(y) * w" of every Gemma block) and RoPE (NEOX or NORM pairs, partial rotation,
 * frequency factors folded into a per-configuration table of exact phases).
 *
 * rms_norm: one block of 256 threads per row; pass 1 sums squares (warp shuffles, then one
 * value per warp in shared memory), pass 2 writes. Each element is owned by one thread in both
 * passes, so the output may alias the input or the residual (the in-place residual update).
 * Bytes: the row read twice (the second time from L1/L2), written once: bandwidth / launch bound.
 * rope: one thread per rotated pair, rows (head, token) on blockIdx.y; angles from the 64-bit
 * turn table (common.cuh, rope_cs) — integer phase, polynomial sin/cos, exact at any position.
 */
#include "internal.h"

namespace LM_CUDA_NS {

template <bool W, bool R>
__global__ void __launch_bounds__(256) k_rms_norm(view x, const float *w, view res, view d, float eps) {
    LM_SHARED(float, part, 8);
    const int64_t r = blockIdx.x;
    const float *xr = (const float *)view_row(x, r);
    float ss = 0.0f;
    for (int64_t j = threadIdx.x; j < x.ne0; j += 256) ss += xr[j] * xr[j];
    ss = warp_sum(ss);
    if (threadIdx.x % 32 == 0) part[threadIdx.x / 32] = ss;
    __syncthreads();
    float tot = 0.0f;
#pragma unroll
    for (int i = 0; i < 8; i++) tot += part[i];
    const float inv = 1.0f / sqrtf(tot / (float)x.ne0 + eps);
    float *o = (float *)view_row(d, r);
    const float *rr = R ? (const float *)view_row(res, r) : nullptr;
    for (int64_t j = threadIdx.x; j < x.ne0; j += 256) {
        float v = xr[j] * inv;
        if constexpr (W) v *= w[j];
        if constexpr (R) v += rr[j];
        o[j] = v;
    }
}

void op_rms_norm(ctx &c, const lm_node *n) {
    if (c.planning) return;
    const lm_tensor *x = n->src[0], *w = n->src[1], *r = n->src[2];
    const view vx = make_view(x, dptr(x)), vd = make_view(n->dst, dptr(n->dst));
    const view vr = r ? make_view(r, dptr(r)) : vx;
    const float *pw = w ? dp<const float>(w) : nullptr;
    const unsigned rows = (unsigned)vx.nrows;
    if (w && r) { auto k = k_rms_norm<true, true>; LM_KERNEL(c, k, rows, 256, 0, vx, pw, vr, vd, n->fp[0]); }
    else if (w) { auto k = k_rms_norm<true, false>; LM_KERNEL(c, k, rows, 256, 0, vx, pw, vr, vd, n->fp[0]); }
    else if (r) { auto k = k_rms_norm<false, true>; LM_KERNEL(c, k, rows, 256, 0, vx, pw, vr, vd, n->fp[0]); }
    else { auto k = k_rms_norm<false, false>; LM_KERNEL(c, k, rows, 256, 0, vx, pw, vr, vd, n->fp[0]); }
}

__global__ void __launch_bounds__(64) k_rope(view x, const int32_t *pos, float *d, const uint64_t *table, int n_pairs, int neox) {
    const int64_t i = (int64_t)blockIdx.x * 64 + threadIdx.x, half = x.ne0 / 2;
    if (i >= half) return;
    for (int64_t r = blockIdx.y; r < x.nrows; r += gridDim.y) {
        const int64_t t = r / x.ne1;
        const float *xr = (const float *)view_row(x, r);
        float *o = d + r * x.ne0;
        const int64_t a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
        const float x0 = xr[a], x1 = xr[b];
        if (i < n_pairs) {
            float co, si;
            rope_cs((uint32_t)pos[t], table, (unsigned)i, co, si);
            o[a] = x0 * co - x1 * si;
            o[b] = x1 * co + x0 * si;
        } else {
            o[a] = x0;
            o[b] = x1;
        }
    }
}

void op_rope(ctx &c, const lm_node *n) {
    const lm_tensor *x = n->src[0], *pos = n->src[1], *fac = n->src[2];
    const lm_rope_params rp = lm_node_rope_unpack(n, 0, 0);
    const uint64_t *table = rope_freqs(c, rp, fac);
    if (c.planning || !table) return;
    const view vx = make_view(x, dptr(x));
    const int64_t rows = vx.nrows;
    const dim3 grid(ceil_div(x->ne[0] / 2, 64), (unsigned)(rows < (int64_t)LM_MAX_GRID_YZ ? rows : LM_MAX_GRID_YZ));
    LM_KERNEL(c, k_rope, grid, 64, 0, vx, dp<const int32_t>(pos), dp<float>(n->dst), table, rp.n_pairs, rp.mode == LM_ROPE_NEOX ? 1 : 0);
}

} // namespace LM_CUDA_NS
