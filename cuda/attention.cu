/*
 * attention.cu — flash attention over the KV cache: decode and prefill, head dims up to 512,
 * GQA, sliding windows (ring-buffer caches), several sequences, soft-capping, KV caches in
 * f32 / f16 / bf16 / q8_0 / e4m3 (dequantized element by element as read), and Gemma 4's K=V
 * layers (keys made on the fly from the stored V: V * k_norm rotated to the cell's position).
 *
 * Thread mapping: one block of 128 threads (4 warps) per (KV head, group of HB query heads
 * sharing it, token, split). The HB query rows sit in shared memory. Cells are taken 32 at a
 * time: each warp scores 8 cells, lanes striding the head dimension (coalesced K reads; each K
 * row is read once for all HB heads); the tile's scores go through an online softmax (running
 * max and sum per head in shared memory); then every thread updates its slice of the HB x dv
 * output accumulators (registers) with the tile's V rows, read coalesced once per block.
 * Bytes: K and V of the visible cells, once per block — for decode, once per KV head, which is
 * the minimum; the kernel is bound by DRAM bandwidth when there are enough blocks in flight.
 * Split-K (flash-decoding): with few tokens against a long cache the cells are cut into splits
 * (grid.z) that write (max, sum, acc) partials, and k_attn_merge combines them. The number of
 * splits depends only on the cache size and batch shape; which cells a split covers is computed
 * on the device from the token's position, so a captured CUDA graph stays valid every step.
 */
#include "internal.h"

namespace LM_CUDA_NS {

#define ATT_THREADS 128
#define ATT_TILE 32
#define ATT_MAX_HB 16    /* query heads per block */
#define ATT_MAX_ACC 4096 /* HB * dv: 32 accumulators per thread */
#define ATT_NPT (ATT_MAX_ACC / ATT_THREADS)

struct attn_args : attn_io {
    float *part;
    int dk, dv, HB, n_sub, n_split;
};

template <int T, bool KV> __global__ void __launch_bounds__(ATT_THREADS, 4) k_attn(attn_args a) {
    LM_SHARED_DYN(float, sm);
    const unsigned tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    const int g = (int)blockIdx.x / a.n_sub, sub = (int)blockIdx.x % a.n_sub, t = (int)blockIdx.y, s = (int)blockIdx.z;
    const int h0 = g * a.G + sub * a.HB, HB = a.HB;
    /* shared layout: q [HB][dk] | knorm [dk] | p [HB][32] | max, sum, rescale [HB] each |
       the tile's physical cells [32] (int bits) */
    /* (indexed through sm[] so the emulator bounds-checks every access) */
    const int okn = HB * a.dk, ops = okn + a.dk, omx = ops + HB * ATT_TILE, osum = omx + HB, ores = osum + HB,
              ocell = ores + HB;
    const int p = a.pos[t], sq = a.seq[t];
    const int nc = sq < 0 || sq >= a.n_seq || p < 0 ? 0 : a.ring ? a.cps : (p + 1 < a.cps ? p + 1 : a.cps);
    const int per = (nc + a.n_split - 1) / a.n_split;
    const int c0 = s * per < nc ? s * per : nc, c1 = c0 + per < nc ? c0 + per : nc;
    for (int i = (int)tid; i < HB * a.dk; i += ATT_THREADS) {
        const int hb = i / a.dk, j = i % a.dk;
        sm[i] = a.q[(h0 + hb) * a.q_s1 + t * a.q_s2 + j];
    }
    if (KV)
        for (int i = (int)tid; i < a.dk; i += ATT_THREADS) sm[okn + i] = a.knorm[i];
    if ((int)tid < HB) sm[omx + tid] = -INFINITY, sm[osum + tid] = 0.0f;
    __syncthreads();
    float acc[ATT_NPT];
#pragma unroll
    for (int j = 0; j < ATT_NPT; j++) acc[j] = 0.0f;
    const int npairs = HB * a.dv;
    const uint8_t *kbase = (KV ? a.v : a.k) + g * (KV ? a.v_s1 : a.k_s1);
    const int64_t kstride = KV ? a.v_s2 : a.k_s2;
    const uint8_t *vbase = a.v + g * a.v_s1;
    for (int cs = c0; cs < c1; cs += ATT_TILE) {
        /* scores of the tile: warp w takes cells w, w + 4, ... */
        for (int cw = (int)warp; cw < ATT_TILE; cw += ATT_THREADS / 32) {
            const int c = cs + cw;
            float score = -INFINITY;
            const int64_t cell = c < c1 ? kv_cell(a, sq, c) : 0;
            if (lane == 0) sm[ocell + cw] = __int_as_float((int)cell);
            const int pc = c < c1 ? a.cell_pos[cell] : -1;
            if (pc >= 0 && pc <= p && (a.window == 0 || p - pc < a.window)) {
                float dots[ATT_MAX_HB];
#pragma unroll
                for (int hb = 0; hb < ATT_MAX_HB; hb++) dots[hb] = 0.0f;
                const uint8_t *kr = kbase + cell * kstride;
                if constexpr (KV) {
                    const int half = a.dk / 2;
                    for (int i = (int)lane; i < half; i += 32) {
                        const int ia = a.neox ? i : 2 * i, ib = a.neox ? i + half : 2 * i + 1;
                        float x0 = dq<T>(kr, (unsigned)ia) * sm[okn + ia], x1 = dq<T>(kr, (unsigned)ib) * sm[okn + ib];
                        if (i < a.n_pairs) {
                            float co, si;
                            rope_cs((uint32_t)pc, a.table, (unsigned)i, co, si);
                            const float y0 = x0 * co - x1 * si, y1 = x1 * co + x0 * si;
                            x0 = y0, x1 = y1;
                        }
#pragma unroll
                        for (int hb = 0; hb < ATT_MAX_HB; hb++)
                            if (hb < HB) dots[hb] += sm[hb * a.dk + ia] * x0 + sm[hb * a.dk + ib] * x1;
                    }
                } else {
                    for (int i = (int)lane; i < a.dk; i += 32) {
                        const float kv = dq<T>(kr, (unsigned)i);
#pragma unroll
                        for (int hb = 0; hb < ATT_MAX_HB; hb++)
                            if (hb < HB) dots[hb] += sm[hb * a.dk + i] * kv;
                    }
                }
#pragma unroll
                for (int hb = 0; hb < ATT_MAX_HB; hb++) {
                    if (hb < HB) {
                        float v = warp_sum(dots[hb]) * a.scale;
                        if (a.softcap > 0.0f) v = a.softcap * tanhf(v / a.softcap);
                        if (lane == 0) sm[ops + hb * ATT_TILE + cw] = v;
                    }
                }
            } else if (lane == 0) {
                for (int hb = 0; hb < HB; hb++) sm[ops + hb * ATT_TILE + cw] = score;
            }
        }
        __syncthreads();
        /* online softmax: one thread per head turns scores into weights */
        if ((int)tid < HB) {
            const int row = ops + (int)tid * ATT_TILE;
            float cm = -INFINITY;
            for (int j = 0; j < ATT_TILE; j++) cm = fmaxf(cm, sm[row + j]);
            const float mo = sm[omx + tid], mn = fmaxf(mo, cm);
            if (mn == -INFINITY) {
                sm[ores + tid] = 1.0f;
                for (int j = 0; j < ATT_TILE; j++) sm[row + j] = 0.0f;
            } else {
                const float r = expf(mo - mn);
                float l = sm[osum + tid] * r;
                for (int j = 0; j < ATT_TILE; j++) {
                    const float w = expf(sm[row + j] - mn);
                    sm[row + j] = w;
                    l += w;
                }
                sm[osum + tid] = l;
                sm[omx + tid] = mn;
                sm[ores + tid] = r;
            }
        }
        __syncthreads();
        const int cn = c1 - cs < ATT_TILE ? c1 - cs : ATT_TILE;
#pragma unroll
        for (int jj = 0; jj < ATT_NPT; jj++) {
            const int pi = (int)tid + ATT_THREADS * jj;
            if (pi < npairs) {
                const int hb = pi / a.dv, dd = pi % a.dv;
                float v = acc[jj] * sm[ores + hb];
                const int w = ops + hb * ATT_TILE;
                for (int j = 0; j < cn; j++) {
                    const float pw = sm[w + j];
                    if (pw != 0.0f) v += pw * dq<T>(vbase + (int64_t)__float_as_int(sm[ocell + j]) * a.v_s2, (unsigned)dd);
                }
                acc[jj] = v;
            }
        }
        __syncthreads(); /* ps is rewritten by the next tile */
    }
#pragma unroll
    for (int jj = 0; jj < ATT_NPT; jj++) {
        const int pi = (int)tid + ATT_THREADS * jj;
        if (pi < npairs) {
            const int hb = pi / a.dv, dd = pi % a.dv, h = h0 + hb;
            if (a.n_split == 1) {
                const float l = sm[osum + hb];
                a.d[((int64_t)t * a.H + h) * a.dv + dd] = l > 0.0f ? acc[jj] / l : 0.0f;
            } else {
                float *o = a.part + (((int64_t)t * a.H + h) * a.n_split + s) * (a.dv + 2);
                if (dd == 0) o[0] = sm[omx + hb], o[1] = sm[osum + hb];
                o[2 + dd] = acc[jj];
            }
        }
    }
}

/* out = sum_s acc_s e^(m_s - M) / sum_s l_s e^(m_s - M), M = max_s m_s; one block per (head, token) */
__global__ void __launch_bounds__(128) k_attn_merge(const float *part, float *d, int H, int dv, int S) {
    const int h = (int)blockIdx.x, t = (int)blockIdx.y;
    const float *p0 = part + ((int64_t)t * H + h) * S * (dv + 2);
    float M = -INFINITY, L = 0.0f;
    for (int s = 0; s < S; s++) M = fmaxf(M, p0[s * (dv + 2)]);
    for (int s = 0; s < S; s++) {
        const float *ps = p0 + s * (dv + 2);
        if (ps[1] > 0.0f) L += ps[1] * expf(ps[0] - M);
    }
    float *o = d + ((int64_t)t * H + h) * dv;
    for (int dd = (int)threadIdx.x; dd < dv; dd += 128) {
        float acc = 0.0f;
        for (int s = 0; s < S; s++) {
            const float *ps = p0 + s * (dv + 2);
            if (ps[1] > 0.0f) acc += ps[2 + dd] * expf(ps[0] - M);
        }
        o[dd] = L > 0.0f ? acc / L : 0.0f;
    }
}

/* heads per block: the largest divisor of the group size within the accumulator budget */
static int heads_per_block(int G, int dv) {
    int best = 1;
    for (int hb = 1; hb <= G && hb <= ATT_MAX_HB; hb++)
        if (G % hb == 0 && hb * dv <= ATT_MAX_ACC) best = hb;
    return best;
}

void op_attention(ctx &c, const lm_node *n) {
    if (attn_tc_eligible(c, n)) return op_attention_tc(c, n);
    const lm_tensor *q = n->src[0], *k = n->src[1], *v = n->src[2];
    const lm_attn_params ap = lm_node_attn_unpack(n);
    attn_args a = {};
    if (!attn_io_fill(c, n, a)) return;
    a.dk = (int)q->ne[0];
    a.dv = (int)v->ne[0];
    const int Hkv = (int)k->ne[1], T = (int)q->ne[2];
    a.HB = heads_per_block(a.G, a.dv);
    a.n_sub = a.G / a.HB;
    /* few blocks against a long cache: split the cells (flash-decoding) */
    const int64_t blocks = (int64_t)Hkv * a.n_sub * T;
    const int64_t target = 2 * (int64_t)c.props.sm_count > 64 ? 2 * (int64_t)c.props.sm_count : 64;
    int S = 1;
    if (a.cps >= 512 && blocks < target) {
        S = (int)((target + blocks - 1) / blocks);
        if (S > a.cps / 256) S = a.cps / 256;
        if (S > 64) S = 64;
        if (S < 1) S = 1;
    }
    a.n_split = S;
    if (S > 1) {
        a.part = (float *)scratch(c, (size_t)T * a.H * S * (a.dv + 2) * sizeof(float));
        if (!c.planning && !a.part) return;
    }
    if (c.planning) return;
    const size_t smem = ((size_t)a.HB * a.dk + a.dk + (size_t)a.HB * ATT_TILE + 3 * (size_t)a.HB + ATT_TILE) * sizeof(float);
    const dim3 grid((unsigned)(Hkv * a.n_sub), (unsigned)T, (unsigned)S);
    auto go = [&](auto kern) { LM_KERNEL(c, kern, grid, ATT_THREADS, smem, a); };
    switch (v->type) {
    case LM_F32: ap.k_from_v ? go(k_attn<LM_F32, true>) : go(k_attn<LM_F32, false>); break;
    case LM_F16: ap.k_from_v ? go(k_attn<LM_F16, true>) : go(k_attn<LM_F16, false>); break;
    case LM_BF16: ap.k_from_v ? go(k_attn<LM_BF16, true>) : go(k_attn<LM_BF16, false>); break;
    case LM_Q8_0: ap.k_from_v ? go(k_attn<LM_Q8_0, true>) : go(k_attn<LM_Q8_0, false>); break;
    default: ap.k_from_v ? go(k_attn<LM_E4M3, true>) : go(k_attn<LM_E4M3, false>); break;
    }
    if (S > 1) LM_KERNEL(c, k_attn_merge, dim3((unsigned)a.H, (unsigned)T), 128, 0, a.part, a.d, a.H, a.dv, S);
}

bool supports_attention(const lm_node *n) {
    const lm_tensor *q = n->src[0], *k = n->src[1], *v = n->src[2];
    const lm_attn_params ap = lm_node_attn_unpack(n);
    if (q->type != LM_F32 || n->dst->type != LM_F32 || !lm_tensor_is_contiguous(n->dst)) return false;
    if (k->type != v->type ||
        (v->type != LM_F32 && v->type != LM_F16 && v->type != LM_BF16 && v->type != LM_Q8_0 && v->type != LM_E4M3))
        return false;
    if (q->ne[0] > 512 || v->ne[0] > 512 || q->ne[0] % 2 || k->ne[1] < 1 || q->ne[1] % k->ne[1]) return false;
    if (v->ne[0] > ATT_MAX_ACC || q->ne[2] > (int64_t)LM_MAX_GRID_YZ || ap.cells_per_seq <= 0) return false;
    if (q->nb[1] % 4 || q->nb[2] % 4) return false;
    return true;
}

} // namespace LM_CUDA_NS
