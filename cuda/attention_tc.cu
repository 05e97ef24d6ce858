/*
 * attention_tc.cu — flash-attention prefill on the tensor cores (FA2-style): many query rows
 * against the KV cache, head dims 64 / 128 / 256 / 512 (dk == dv), GQA, causal and
 * sliding-window masks over ring-buffer caches, Gemma 4's K=V layers, several sequences of
 * different lengths in one launch, KV in f16 / bf16 / q8_0 / e4m3. Same semantics as k_attn
 * (attention.cu), which stays for decode (few rows, split-K) and f32 caches.
 *
 * Thread mapping: one block of 256 threads (8 warps) per (KV head, BM query rows). A row is a
 * (token, query head of the group) pair, row = token * G + head, so the G heads sharing a KV
 * head share every K/V tile. The head dimension is cut in slices of DS = min(D, 128); the warps
 * form a WR x WC grid (WC = D / DS slices, WR = 8 / WC row groups of 16 rows, BM = 16 WR):
 *   D = 512: 2 x 4, BM = 32;  D = 256: 4 x 2, BM = 64;  D <= 128: 8 x 1, BM = 128.
 * Warp (r, c) keeps rows 16r..16r+15 of Q, dims of slice c, as mma A fragments in registers
 * (loaded once, f32 -> f16), and the same rows' output accumulators for dims of slice c
 * (16 x DS f32: 64 registers per thread). Cells are taken BN = 32 at a time:
 *   1. the tile's cell positions go to shared memory; a tile no row can see is skipped;
 *   2. K and V tiles (BN x D) are converted to f16 in shared memory (K=V layers: K made from
 *      the stored V, times k_norm, rotated to the cell's position; unused cells are zeros);
 *   3. each warp computes the partial scores of its 16 rows x 32 cells over its dim slice
 *      (mma.m16n8k16, K rows read by ldmatrix) and stores them to shared memory;
 *   4. online softmax: a lane per cell, each warp a share of the rows: the WC partials summed,
 *      scaled, soft-capped, masked (sequence, causal, window, empty cells); running max / sum
 *      per row in shared memory, weights P stored as f16 (the sum adds the rounded weights, so
 *      normalisation matches what the tensor cores multiply);
 *   5. each warp rescales its accumulators and adds P V for its dims (P by ldmatrix, V by
 *      ldmatrix.trans: the cache's [cell][dim] rows are the k-major B operand).
 * Rows of several sequences in one block: the block walks each sequence present among its rows
 * (one, usually), masking the rows of the others.
 * Bytes: K and V of the visible cells once per block, i.e. T G / BM times per KV head (from L2
 * mostly); Q and the output once. Arithmetic intensity ~BM flops per K/V byte, so the kernel is
 * bound by the tensor cores and by the conversion of the tiles into shared memory (one stage:
 * the next tile is not loaded while the tensor cores work; other blocks on the SM hide that).
 * Shared memory: 2 BN (D + 8) halves for K and V, 8 x 16 x BN floats of partial scores, BM
 * (BN + 8) halves of weights, per-row state — 88 KB at D = 512 (fits the 99 KB of sm_86/89/120),
 * 58 KB at D = 256, 47 KB at D = 128.
 * Precision: Q, K, V and P rounded to f16 (values beyond +-65504 saturate), products and sums
 * in f32 — conformance class TOL_TC.
 */
#include "internal.h"
#include "mma.cuh"

namespace LM_CUDA_NS {

#define FA_THREADS 256
#define FA_BN 32
#define FA_LDP (FA_BN + 8) /* halves per row of P */

struct fa_args : attn_io {
    int T, vec16;
};

template <int D> struct fa_geom {
    static constexpr int DS = D < 128 ? D : 128; /* dims per warp slice */
    static constexpr int WC = D / DS;            /* warps across the dims */
    static constexpr int WR = 8 / WC;            /* warps across the rows */
    static constexpr int BM = 16 * WR;           /* rows per block */
    static constexpr int LDK = D + 8;            /* halves per K / V row in shared memory */
    /* shared layout (bytes): K | V | partial scores | P | row max, sum, rescale, pos, seq | cell pos | knorm */
    static constexpr int OK = 0, OV = OK + FA_BN * LDK * 2, OS = OV + FA_BN * LDK * 2, OP = OS + 8 * 16 * FA_BN * 4;
    static constexpr int OR = OP + BM * FA_LDP * 2, OC = OR + 5 * BM * 4, OX = OC + FA_BN * 4, ON = OX + FA_BN * 4, BYTES = ON + D * 4;
};

LM_DEV int imin(int x, int y) { return x < y ? x : y; }
LM_DEV int imax(int x, int y) { return x > y ? x : y; }
LM_DEV unsigned fa_h(float v) { return f2h(fminf(fmaxf(v, -65504.0f), 65504.0f)); }
LM_DEV unsigned fa_pack(float lo, float hi) { return fa_h(lo) | (fa_h(hi) << 16); }

/* 8 elements of a cache row from element j0 (a multiple of 8) as f16 pairs */
template <int T> LM_DEV uint4 fa_load8(const uint8_t *row, int j0, bool vec16) {
    if constexpr (T == LM_F16) {
        if (vec16) return *(const uint4 *)(row + 2 * j0);
    }
    float x[8];
#pragma unroll
    for (int e = 0; e < 8; e++) x[e] = dq<T>(row, (unsigned)(j0 + e));
    return make_uint4(fa_pack(x[0], x[1]), fa_pack(x[2], x[3]), fa_pack(x[4], x[5]), fa_pack(x[6], x[7]));
}

template <int T, bool KV, int D> __global__ void __launch_bounds__(FA_THREADS, 1) k_attn_tc(fa_args a) {
    using G_ = fa_geom<D>;
    constexpr int DS = G_::DS, WC = G_::WC, BM = G_::BM, LDK = G_::LDK;
    LM_SHARED_DYN(unsigned char, smem);
    unsigned char *sb = smem;
    uint16_t *Ks = (uint16_t *)(sb + G_::OK), *Vs = (uint16_t *)(sb + G_::OV), *Ps = (uint16_t *)(sb + G_::OP);
    float *Sp = (float *)(sb + G_::OS), *rM = (float *)(sb + G_::OR), *rL = rM + BM, *rA = rL + BM;
    int *rPos = (int *)(rA + BM), *rSeq = rPos + BM, *cP = (int *)(sb + G_::OC), *cX = (int *)(sb + G_::OX);
    float *kn = (float *)(sb + G_::ON);
    const unsigned tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    const unsigned wr = warp / WC, wc = warp % WC, g = lane / 4, t4 = lane % 4;
    const int kvh = (int)blockIdx.y, row0 = (int)blockIdx.x * BM, nrows = a.T * a.G;

    /* rows: position and sequence (-1: no row, or a token outside every sequence) */
    for (int r = (int)tid; r < BM; r += FA_THREADS) {
        const int i = row0 + r;
        int p = -1, s = -1;
        if (i < nrows) {
            const int tok = i / a.G;
            p = a.pos[tok], s = a.seq[tok];
            if (s < 0 || s >= a.n_seq || p < 0) s = -1;
        }
        rPos[r] = p, rSeq[r] = s, rM[r] = -INFINITY, rL[r] = 0.0f;
    }
    if (KV)
        for (int i = (int)tid; i < D; i += FA_THREADS) kn[i] = a.knorm[i];

    /* Q fragments of rows 16 wr + g (+ 8), dims of slice wc */
    unsigned qf[DS / 16][4];
    {
        const float *qr[2] = {nullptr, nullptr};
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int i = row0 + (int)(16 * wr + g + 8 * h);
            if (i < nrows) qr[h] = a.q + (int64_t)(kvh * a.G + i % a.G) * a.q_s1 + (int64_t)(i / a.G) * a.q_s2;
        }
#pragma unroll
        for (int ks = 0; ks < DS / 16; ks++) {
            const int k0 = (int)wc * DS + ks * 16 + 2 * (int)t4;
#pragma unroll
            for (int j = 0; j < 4; j++) {
                const float *r = qr[j % 2];
                const int k = k0 + 8 * (j / 2);
                qf[ks][j] = r ? fa_pack(r[k], r[k + 1]) : 0u;
            }
        }
    }
    float o[DS / 8][4];
#pragma unroll
    for (int i = 0; i < DS / 8; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) o[i][j] = 0.0f;
    __syncthreads();

    /* the sequences present among the rows (a block straddles at most a few) */
    int smin = 0x7fffffff, smax = -1;
    for (int r = 0; r < BM; r++)
        if (rSeq[r] >= 0) smin = imin(smin, rSeq[r]), smax = imax(smax, rSeq[r]);
    for (int sq = smin; sq <= smax; sq++) {
        int pmin = 0x7fffffff, pmax = -1;
        for (int r = 0; r < BM; r++)
            if (rSeq[r] == sq) pmin = imin(pmin, rPos[r]), pmax = imax(pmax, rPos[r]);
        if (pmax < 0) continue;
        const int nc = a.ring ? a.cps : imin(pmax + 1, a.cps);
        for (int cs = 0; cs < nc; cs += FA_BN) {
            /* 1. cell positions; skip a tile no row of this sequence can see */
            if ((int)tid < FA_BN) {
                const int c = cs + (int)tid;
                const int64_t cell = c < nc ? kv_cell(a, sq, c) : 0;
                cX[tid] = (int)cell;
                cP[tid] = c < nc ? a.cell_pos[cell] : -1;
            }
            __syncthreads();
            bool any = false;
            for (int j = 0; j < FA_BN; j++) {
                const int pc = cP[j];
                any |= pc >= 0 && pc <= pmax && (a.window == 0 || pmin - pc < a.window);
            }
            if (!any) {
                __syncthreads(); /* cP is rewritten next */
                continue;
            }
            /* 2. K and V tiles as f16 (cells without a position: zeros, whatever the cache holds) */
            if constexpr (KV) {
                for (int it = (int)tid; it < FA_BN * (D / 2); it += FA_THREADS) {
                    const int c = it / (D / 2), i = it % (D / 2);
                    const int ia = a.neox ? i : 2 * i, ib = a.neox ? i + D / 2 : 2 * i + 1;
                    const int pc = cP[c];
                    float x0 = 0.0f, x1 = 0.0f, k0 = 0.0f, k1 = 0.0f;
                    if (pc >= 0) {
                        const uint8_t *vr = a.v + kvh * a.v_s1 + (int64_t)cX[c] * a.v_s2;
                        x0 = dq<T>(vr, (unsigned)ia), x1 = dq<T>(vr, (unsigned)ib);
                        k0 = x0 * kn[ia], k1 = x1 * kn[ib];
                        if (i < a.n_pairs) {
                            float co, si;
                            rope_cs((uint32_t)pc, a.table, (unsigned)i, co, si);
                            const float y0 = k0 * co - k1 * si, y1 = k1 * co + k0 * si;
                            k0 = y0, k1 = y1;
                        }
                    }
                    Vs[c * LDK + ia] = (uint16_t)fa_h(x0), Vs[c * LDK + ib] = (uint16_t)fa_h(x1);
                    Ks[c * LDK + ia] = (uint16_t)fa_h(k0), Ks[c * LDK + ib] = (uint16_t)fa_h(k1);
                }
            } else {
                for (int it = (int)tid; it < 2 * FA_BN * (D / 8); it += FA_THREADS) {
                    const int isv = it / (FA_BN * (D / 8)), u = it % (FA_BN * (D / 8)), c = u / (D / 8), j0 = 8 * (u % (D / 8));
                    uint4 x = make_uint4(0u, 0u, 0u, 0u);
                    if (cP[c] >= 0) {
                        const uint8_t *rw = isv ? a.v + kvh * a.v_s1 + (int64_t)cX[c] * a.v_s2
                                                : a.k + kvh * a.k_s1 + (int64_t)cX[c] * a.k_s2;
                        x = fa_load8<T>(rw, j0, a.vec16 != 0);
                    }
                    *(uint4 *)&(isv ? Vs : Ks)[c * LDK + j0] = x;
                }
            }
            __syncthreads();
            /* 3. partial scores: rows 16 wr.., the 32 cells, dims of slice wc */
            {
                float sacc[FA_BN / 8][4];
#pragma unroll
                for (int i = 0; i < FA_BN / 8; i++)
#pragma unroll
                    for (int j = 0; j < 4; j++) sacc[i][j] = 0.0f;
#pragma unroll
                for (int ks = 0; ks < DS / 16; ks++) {
#pragma unroll
                    for (int np = 0; np < FA_BN / 16; np++) {
                        unsigned bq[4];
                        /* tiles: (cells 0-7, k 0-7), (cells 0-7, k 8-15), (cells 8-15, k 0-7), (cells 8-15, k 8-15) */
                        ldmatrix_x4(bq, &Ks[(np * 16 + (lane / 16) * 8 + lane % 8) * LDK + (int)wc * DS + ks * 16 + ((lane / 8) % 2) * 8]);
                        const unsigned b0[2] = {bq[0], bq[1]}, b1[2] = {bq[2], bq[3]};
                        mma_m16n8k16_f16(sacc[2 * np], qf[ks], b0, sacc[2 * np]);
                        mma_m16n8k16_f16(sacc[2 * np + 1], qf[ks], b1, sacc[2 * np + 1]);
                    }
                }
                float *sp = Sp + warp * 16 * FA_BN;
#pragma unroll
                for (int ni = 0; ni < FA_BN / 8; ni++)
#pragma unroll
                    for (int e = 0; e < 4; e++) sp[(g + 8 * (e / 2)) * FA_BN + ni * 8 + 2 * t4 + e % 2] = sacc[ni][e];
            }
            __syncthreads();
            /* 4. online softmax: lane = cell; warp (wr, wc) takes rows 16 wr + wc * 16 / WC .. */
            {
                const int pc = cP[lane];
                for (int rr = 0; rr < 16 / WC; rr++) {
                    const int rl = (int)wc * (16 / WC) + rr, R = 16 * (int)wr + rl;
                    float s = 0.0f;
#pragma unroll
                    for (int c2 = 0; c2 < WC; c2++) s += Sp[((wr * WC + c2) * 16 + rl) * FA_BN + lane];
                    s *= a.scale;
                    if (a.softcap > 0.0f) s = a.softcap * tanhf(s / a.softcap);
                    const int p = rPos[R];
                    const bool vis = rSeq[R] == sq && pc >= 0 && pc <= p && (a.window == 0 || p - pc < a.window);
                    const float mx = warp_max(vis ? s : -INFINITY);
                    const float mo = rM[R], mn = fmaxf(mo, mx);
                    float alpha = 1.0f, w = 0.0f;
                    if (mn != -INFINITY) {
                        alpha = expf(mo - mn);
                        w = vis ? expf(s - mn) : 0.0f;
                    }
                    const uint16_t wh = f2h(w);
                    const float l = warp_sum(h2f(wh));
                    Ps[R * FA_LDP + lane] = wh;
                    if (lane == 0) rM[R] = mn, rL[R] = rL[R] * alpha + l, rA[R] = alpha;
                }
            }
            __syncthreads();
            /* 5. O = O alpha + P V for rows 16 wr.., dims of slice wc */
            {
                const float a0 = rA[16 * wr + g], a1 = rA[16 * wr + g + 8];
#pragma unroll
                for (int ni = 0; ni < DS / 8; ni++) o[ni][0] *= a0, o[ni][1] *= a0, o[ni][2] *= a1, o[ni][3] *= a1;
#pragma unroll
                for (int ks = 0; ks < FA_BN / 16; ks++) {
                    unsigned pa[4];
                    ldmatrix_x4(pa, &Ps[(16 * wr + lane % 16) * FA_LDP + ks * 16 + (lane / 16) * 8]);
#pragma unroll
                    for (int np = 0; np < DS / 16; np++) {
                        unsigned bq[4];
                        /* tiles (cells 0-7, dims 0-7), (cells 8-15, dims 0-7), (cells 0-7, dims 8-15), (cells 8-15, dims 8-15) */
                        ldmatrix_x4_trans(bq, &Vs[(ks * 16 + ((lane / 8) % 2) * 8 + lane % 8) * LDK + (int)wc * DS + np * 16 + (lane / 16) * 8]);
                        const unsigned b0[2] = {bq[0], bq[1]}, b1[2] = {bq[2], bq[3]};
                        mma_m16n8k16_f16(o[2 * np], pa, b0, o[2 * np]);
                        mma_m16n8k16_f16(o[2 * np + 1], pa, b1, o[2 * np + 1]);
                    }
                }
            }
            /* the next tile's first barrier orders these reads before K, V and P are rewritten */
        }
    }
    __syncthreads();
    /* out[token][head][dim] = O / L */
#pragma unroll
    for (int h = 0; h < 2; h++) {
        const int R = 16 * (int)wr + (int)g + 8 * h, i = row0 + R;
        if (i >= nrows) continue;
        const float L = rL[R], inv = L > 0.0f ? 1.0f / L : 0.0f;
        float *dst = a.d + ((int64_t)(i / a.G) * a.H + kvh * a.G + i % a.G) * D + (int)wc * DS + 2 * (int)t4;
#pragma unroll
        for (int ni = 0; ni < DS / 8; ni++) dst[ni * 8] = o[ni][2 * h] * inv, dst[ni * 8 + 1] = o[ni][2 * h + 1] * inv;
    }
}

/* Which attention nodes take the tensor-core kernel: sm_80+, dk == dv in {64, 128, 256, 512},
   16-bit or 8-bit caches (f32 caches keep the f32 kernel), and a prefill-like batch: at least 16
   tokens and more than two per sequence slot on average (a batch of one token per sequence is
   decode, which the split-K kernel serves better). LUMEN_CUDA_TC=0 turns it off. */
bool attn_tc_eligible(const ctx &c, const lm_node *n) {
    const lm_tensor *q = n->src[0], *k = n->src[1], *v = n->src[2];
    static const bool off = [] {
        const char *e = getenv("LUMEN_CUDA_TC");
        return e && e[0] == '0';
    }();
    if (off || c.props.cc_major < 8) return false;
    const int64_t D = q->ne[0], T = q->ne[2], n_seq = n->src[8]->ne[1];
    if (D != v->ne[0] || (D != 64 && D != 128 && D != 256 && D != 512)) return false;
    if (v->type != LM_F16 && v->type != LM_BF16 && v->type != LM_Q8_0 && v->type != LM_E4M3) return false;
    if (T < 16 || T <= 2 * n_seq || k->ne[1] > (int64_t)LM_MAX_GRID_YZ) return false;
    int bytes = 0;
    switch (D) {
    case 64: bytes = fa_geom<64>::BYTES; break;
    case 128: bytes = fa_geom<128>::BYTES; break;
    case 256: bytes = fa_geom<256>::BYTES; break;
    default: bytes = fa_geom<512>::BYTES; break;
    }
    return (size_t)bytes <= c.props.smem_optin;
}

template <int T, bool KV, int D> static void fa_launch(ctx &c, const fa_args &a, int Hkv) {
    using G_ = fa_geom<D>;
    auto k = k_attn_tc<T, KV, D>;
    static const int set = rt::set_max_dyn_smem((const void *)k, G_::BYTES); /* once per kernel */
    if (set) return latch(c, LM_STATUS_BACKEND, "attention_tc: %d bytes of shared memory refused", G_::BYTES);
    const dim3 grid(ceil_div((int64_t)a.T * a.G, G_::BM), (unsigned)Hkv);
    LM_KERNEL(c, k, grid, FA_THREADS, G_::BYTES, a);
}

template <int T, bool KV> static void fa_dispatch(ctx &c, const fa_args &a, int D, int Hkv) {
    switch (D) {
    case 64: fa_launch<T, KV, 64>(c, a, Hkv); break;
    case 128: fa_launch<T, KV, 128>(c, a, Hkv); break;
    case 256: fa_launch<T, KV, 256>(c, a, Hkv); break;
    default: fa_launch<T, KV, 512>(c, a, Hkv); break;
    }
}

void op_attention_tc(ctx &c, const lm_node *n) {
    const lm_tensor *q = n->src[0], *k = n->src[1], *v = n->src[2];
    const lm_attn_params ap = lm_node_attn_unpack(n);
    fa_args a = {};
    const int D = (int)q->ne[0], Hkv = (int)k->ne[1];
    a.T = (int)q->ne[2];
    if (!attn_io_fill(c, n, a) || c.planning) return;
    a.vec16 = (uintptr_t)a.k % 16 == 0 && (uintptr_t)a.v % 16 == 0 && a.k_s1 % 16 == 0 && a.k_s2 % 16 == 0 &&
              a.v_s1 % 16 == 0 && a.v_s2 % 16 == 0;
    const bool kv = ap.k_from_v;
    switch (v->type) {
    case LM_F16: kv ? fa_dispatch<LM_F16, true>(c, a, D, Hkv) : fa_dispatch<LM_F16, false>(c, a, D, Hkv); break;
    case LM_BF16: kv ? fa_dispatch<LM_BF16, true>(c, a, D, Hkv) : fa_dispatch<LM_BF16, false>(c, a, D, Hkv); break;
    case LM_Q8_0: kv ? fa_dispatch<LM_Q8_0, true>(c, a, D, Hkv) : fa_dispatch<LM_Q8_0, false>(c, a, D, Hkv); break;
    default: kv ? fa_dispatch<LM_E4M3, true>(c, a, D, Hkv) : fa_dispatch<LM_E4M3, false>(c, a, D, Hkv); break;
    }
}

} // namespace LM_CUDA_NS
