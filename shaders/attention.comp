#version 450
// attention.comp — flash attention over the KV cache for one (query head, token, split) per
// workgroup of 64 invocations: the query row lives in shared memory; each chunk of 64 cells is
// scored one cell per invocation (masked by the cell's position: causal, sliding window,
// sequence), the chunk's softmax is folded into a running max / sum, and every invocation
// accumulates its dv/64 output dimensions over the chunk's cells (V rows read coalesced).
// K=V layers (k_from_v) make each key from the stored V: V * k_norm rotated to the cell's
// position (common/rope.glsl). Splits (grid z > 1) write (max, sum, acc) partials that
// attention_merge.comp combines: flash-decoding for long caches and few queries.
// Paged caches: logical cell c of sequence s is physical cell pages[s][c / page] * page + c % page;
// each invocation maps its cell of the chunk and shares it for the V pass.
// TYPE_* = KV cache type. Arguments come through a small argument block (too many pointers for
// push constants).
#include "common/common.glsl"
#include "common/quant.glsl"
#include "common/rope.glsl"
layout(local_size_x = 64) in;
layout(buffer_reference, std430, buffer_reference_align = 8) readonly buffer Args {
    uint64_t q, k, v, cell_pos, pos, seq, knorm, table, d, part, pages;
    uint dk, dv, H, Hkv, cps, ring, window, k_from_v, n_split, n_pairs, rope_mode, page, pps;
    uint q_nb1, q_nb2, k_nb1, k_nb2, v_nb1, v_nb2;
    float scale, softcap;
};
layout(push_constant) uniform PC { uint64_t args; } pc;
shared float qs[512];
shared float kn[512];
shared float sc[64];
shared uint cell_s[64];

void main() {
    Args A = Args(pc.args);
    const uint tid = gl_LocalInvocationID.x;
    const uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y, s = gl_WorkGroupID.z;
    const uint g = h / (A.H / A.Hkv);
    const int p = I32(A.pos).v[t];
    const uint pt = uint(I32(A.seq).v[t]) * A.pps; // the sequence's page-table row
    const uint nc = A.ring != 0u ? A.cps : min(uint(p) + 1u, A.cps);
    const uint per = (nc + A.n_split - 1u) / A.n_split;
    const uint c0 = min(s * per, nc), c1 = min(c0 + per, nc);
    const uint64_t qr = A.q + uint64_t(h) * A.q_nb1 + uint64_t(t) * A.q_nb2;
    for (uint i = tid; i < A.dk; i += 64u) {
        qs[i] = F32(qr).v[i];
        if (A.k_from_v != 0u) kn[i] = F32(A.knorm).v[i];
    }
    barrier();
    const uint nd = (A.dv + 63u) / 64u;
    float acc[8];
    [[unroll]] for (uint j = 0u; j < 8u; j++) acc[j] = 0.0;
    float m = -1.0 / 0.0, l = 0.0;
    const uint half_k = A.dk / 2u;
    for (uint cs = c0; cs < c1; cs += 64u) {
        const uint c = cs + tid;
        float score = -1.0 / 0.0;
        uint cell = 0u;
        if (c < c1) {
            cell = uint(I32(A.pages).v[pt + c / A.page]) * A.page + c % A.page;
            const int pc_ = I32(A.cell_pos).v[cell];
            if (pc_ >= 0 && pc_ <= p && (A.window == 0u || uint(p - pc_) < A.window)) {
                float dot = 0.0;
                if (A.k_from_v != 0u) {
                    const uint64_t vr = A.v + uint64_t(g) * A.v_nb1 + uint64_t(cell) * A.v_nb2;
                    const uint cp = uint(pc_);
                    for (uint i = 0u; i < half_k; i++) {
                        const uint a = A.rope_mode == 0u ? i : 2u * i, b = A.rope_mode == 0u ? i + half_k : 2u * i + 1u;
                        const float x0 = dq(vr, a) * kn[a], x1 = dq(vr, b) * kn[b];
                        if (i < A.n_pairs) {
                            float co, si;
                            rope_cs(cp, A.table, i, co, si);
                            dot += qs[a] * (x0 * co - x1 * si) + qs[b] * (x1 * co + x0 * si);
                        } else {
                            dot += qs[a] * x0 + qs[b] * x1;
                        }
                    }
                } else {
                    const uint64_t kr = A.k + uint64_t(g) * A.k_nb1 + uint64_t(cell) * A.k_nb2;
                    for (uint i = 0u; i < A.dk; i++) dot += qs[i] * dq(kr, i);
                }
                score = dot * A.scale;
                if (A.softcap > 0.0) score = A.softcap * tanh(score / A.softcap);
            }
        }
        sc[tid] = score;
        cell_s[tid] = cell;
        barrier();
        float cm = -1.0 / 0.0;
        const uint cn = min(64u, c1 - cs);
        for (uint j = 0u; j < cn; j++) cm = max(cm, sc[j]);
        if (cm > -1.0 / 0.0) {
            const float mn = max(m, cm), r = exp(m - mn);
            l *= r;
            [[unroll]] for (uint j = 0u; j < 8u; j++) acc[j] *= r;
            m = mn;
            for (uint j = 0u; j < cn; j++) {
                const float w = exp(sc[j] - m);
                if (w == 0.0) continue;
                l += w;
                const uint64_t vr = A.v + uint64_t(g) * A.v_nb1 + uint64_t(cell_s[j]) * A.v_nb2;
                [[unroll]] for (uint jj = 0u; jj < 8u; jj++) {
                    const uint dd = tid + 64u * jj;
                    if (jj < nd && dd < A.dv) acc[jj] += w * dq(vr, dd);
                }
            }
        }
        barrier();
    }
    if (A.n_split == 1u) {
        const uint64_t o = A.d + (uint64_t(t) * A.H + h) * A.dv * 4u;
        const float inv = l > 0.0 ? 1.0 / l : 0.0;
        [[unroll]] for (uint jj = 0u; jj < 8u; jj++) {
            const uint dd = tid + 64u * jj;
            if (jj < nd && dd < A.dv) F32(o).v[dd] = acc[jj] * inv;
        }
    } else {
        const uint64_t o = A.part + ((uint64_t(t) * A.H + h) * A.n_split + s) * (A.dv + 2u) * 4u;
        if (tid == 0u) {
            F32(o).v[0] = m;
            F32(o).v[1] = l;
        }
        [[unroll]] for (uint jj = 0u; jj < 8u; jj++) {
            const uint dd = tid + 64u * jj;
            if (jj < nd && dd < A.dv) F32(o).v[2u + dd] = acc[jj];
        }
    }
}
