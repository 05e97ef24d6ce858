/*
 * select.cu — top-k / argmax (sampling and the MoE router) and the MoE mixing ops.
 *
 * topk: one block of 256 threads per column. Selection k times, each a block-wide arg-max over
 * the elements ranked strictly below the previous winner in the total order (larger value first,
 * NaN last, ties to the lower index), so no per-element "taken" state is needed: argmax of a
 * 262144-entry vocabulary is one coalesced pass (1 MB read; bandwidth-bound), the router's
 * top-8 of 128 experts eight passes over 512 bytes (latency-bound, negligible).
 * moe_weights: one warp per token (softmax over the selected experts only, times a per-expert
 * scale). moe_sum: one thread per output element, the k expert outputs summed with weights.
 */
#include "internal.h"

namespace LM_CUDA_NS {

/* a ranks before b */
LM_DEV bool ranks_before(float av, int ai, float bv, int bi) {
    const bool an = av != av, bn = bv != bv;
    if (an != bn) return bn;
    if (!an && av != bv) return av > bv;
    return ai < bi;
}

__global__ void __launch_bounds__(256) k_topk(const float *x, int64_t x_nb1, int m, int k, int32_t *d) {
    LM_SHARED(float, wv, 8);
    LM_SHARED(int, wi, 8);
    LM_SHARED(float, prev_v, 1);
    LM_SHARED(int, prev_i, 1);
    const float *xr = (const float *)((const char *)x + (int64_t)blockIdx.x * x_nb1);
    float pv = 0.0f;
    int pi = -1;
    for (int j = 0; j < k; j++) {
        float bv = 0.0f;
        int bi = -1;
        for (int i = threadIdx.x; i < m; i += 256) {
            const float v = xr[i];
            if (pi >= 0 && !ranks_before(pv, pi, v, i)) continue;
            if (bi < 0 || ranks_before(v, i, bv, bi)) bv = v, bi = i;
        }
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
            const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
            const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
            if (oi >= 0 && (bi < 0 || ranks_before(ov, oi, bv, bi))) bv = ov, bi = oi;
        }
        if (threadIdx.x % 32 == 0) wv[threadIdx.x / 32] = bv, wi[threadIdx.x / 32] = bi;
        __syncthreads();
        if (threadIdx.x == 0) {
            for (int w = 1; w < 8; w++)
                if (wi[w] >= 0 && (bi < 0 || ranks_before(wv[w], wi[w], bv, bi))) bv = wv[w], bi = wi[w];
            d[(int64_t)blockIdx.x * k + j] = bi;
            prev_v[0] = bv;
            prev_i[0] = bi;
        }
        __syncthreads();
        pv = prev_v[0];
        pi = prev_i[0];
        __syncthreads(); /* wv / wi / prev are rewritten by the next round */
    }
}

void op_topk(ctx &c, const lm_node *n) {
    if (c.planning) return;
    const lm_tensor *x = n->src[0];
    LM_KERNEL(c, k_topk, (unsigned)x->ne[1], 256, 0, dp<const float>(x), (int64_t)x->nb[1], (int)x->ne[0], n->ip[0],
              dp<int32_t>(n->dst));
}

__global__ void __launch_bounds__(32) k_moe_weights(const float *lg, int E, const int32_t *ids, int k, const float *scale,
                                                    float *d) {
    const int64_t t = blockIdx.x;
    const float *l = lg + t * E;
    const int32_t *id = ids + t * k;
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < k; j += 32) mx = fmaxf(mx, l[id[j]]);
    mx = warp_max(mx);
    float s = 0.0f;
    for (int j = threadIdx.x; j < k; j += 32) s += expf(l[id[j]] - mx);
    s = warp_sum(s);
    for (int j = threadIdx.x; j < k; j += 32) {
        float p = expf(l[id[j]] - mx) / s;
        if (scale) p *= scale[id[j]];
        d[t * k + j] = p;
    }
}

void op_moe_weights(ctx &c, const lm_node *n) {
    if (c.planning) return;
    const lm_tensor *lg = n->src[0], *ids = n->src[1], *sc = n->src[2];
    LM_KERNEL(c, k_moe_weights, (unsigned)lg->ne[1], 32, 0, dp<const float>(lg), (int)lg->ne[0], dp<const int32_t>(ids),
              (int)ids->ne[0], sc ? dp<const float>(sc) : nullptr, dp<float>(n->dst));
}

__global__ void __launch_bounds__(256) k_moe_sum(const char *y, int64_t y_nb1, int64_t y_nb2, int64_t dd, int k, const float *w,
                                                 float *d) {
    const int64_t i = (int64_t)blockIdx.x * 256 + threadIdx.x;
    if (i >= dd) return;
    const int64_t t = blockIdx.y;
    float acc = 0.0f;
    for (int j = 0; j < k; j++) acc += w[t * k + j] * ((const float *)(y + j * y_nb1 + t * y_nb2))[i];
    d[t * dd + i] = acc;
}

void op_moe_sum(ctx &c, const lm_node *n) {
    if (c.planning) return;
    const lm_tensor *y = n->src[0], *w = n->src[1];
    const dim3 grid(ceil_div(y->ne[0], 256), (unsigned)y->ne[2]);
    LM_KERNEL(c, k_moe_sum, grid, 256, 0, (const char *)dptr(y), (int64_t)y->nb[1], (int64_t)y->nb[2], y->ne[0], (int)y->ne[1],
              dp<const float>(w), dp<float>(n->dst));
}

} // namespace LM_CUDA_NS
