#version 450
// matmul_vec.comp — dst[m, n] = sum_k W[k, m] x[k, n] for the decode-sized side (up to NC columns
// per pass). USE_SUBGROUP: each subgroup of the 64-invocation workgroup takes whole rows; lane l
// takes the 8-element chunks l, l + S, l + 2S, ... of the row (dq8), so the S lanes of a subgroup
// read one contiguous stretch of weight bytes and of x per step (coalesced: 4 lanes share a
// 32-element block, 32 lanes a 256-element super-block); each dequantized chunk serves all NC
// columns; subgroupAdd reduces: no shared memory or barriers. Without subgroup arithmetic the
// workgroup takes one row (64 lanes) and reduces in shared memory. Bytes: every weight row once
// per group of NC columns. Bound by weight bandwidth.
// MATMUL_ID: the row comes from expert ids[j, t] of a 3-D weight, one (j, t) pair per grid z.
#include "common/common.glsl"
#include "common/quant.glsl"
#define NC 8
layout(local_size_x = 64) in;
layout(push_constant) uniform PC {
    uint64_t w, x, d, ids;
    uint K, M, N, row_bytes;
    uint x_nb1, x_nb2, d_nb1, d_nb2;
    uint J, x_ne1, expert_bytes, rows_per_group;
} pc;
#ifndef USE_SUBGROUP
shared float red[64 * NC];
#endif

void main() {
#ifdef MATMUL_ID
    const uint p = gl_WorkGroupID.z, j = p % pc.J, t = p / pc.J;
    const uint e = uint(I32(pc.ids + uint64_t(p) * 4u).v[0]);
    const uint64_t w0 = pc.w + uint64_t(e) * pc.expert_bytes;
    const uint64_t xbase = pc.x + uint64_t(pc.x_ne1 == 1u ? 0u : j) * pc.x_nb1 + uint64_t(t) * pc.x_nb2;
    const uint64_t dbase = pc.d + uint64_t(j) * pc.d_nb1 + uint64_t(t) * pc.d_nb2;
    const uint ncol = 1u, c0 = 0u;
#else
    const uint64_t w0 = pc.w, xbase = pc.x, dbase = pc.d;
    const uint c0 = gl_WorkGroupID.z * NC, ncol = min(NC, pc.N - c0);
#endif
    const uint nch = pc.K / 8u;
    const uint wg = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
#ifdef USE_SUBGROUP
    const uint lane = gl_SubgroupInvocationID, lanes = gl_SubgroupSize;
    const uint r0 = wg * pc.rows_per_group, r1 = min(r0 + pc.rows_per_group, pc.M);
    for (uint m = r0 + gl_SubgroupID; m < r1; m += gl_NumSubgroups) {
#else
    const uint lane = gl_LocalInvocationID.x, lanes = 64u;
    const uint m = wg;
    if (m >= pc.M) return;
    {
#endif
        const uint64_t wrow = w0 + uint64_t(m) * pc.row_bytes;
        float acc[NC];
        [[unroll]] for (uint c = 0u; c < NC; c++) acc[c] = 0.0;
        float wv[8];
        for (uint ch = lane; ch < nch; ch += lanes) {
            dq8(wrow, ch, wv);
            [[unroll]] for (uint c = 0u; c < NC; c++) {
                if (c >= ncol) break;
                const uint64_t xc = xbase + uint64_t(c0 + c) * pc.x_nb1;
                float a = 0.0;
                [[unroll]] for (uint i = 0u; i < 8u; i++) a += wv[i] * F32(xc).v[8u * ch + i];
                acc[c] += a;
            }
        }
        for (uint i = nch * 8u + lane; i < pc.K; i += lanes) {
            const float w1 = dq(wrow, i);
            [[unroll]] for (uint c = 0u; c < NC; c++)
                if (c < ncol) acc[c] += w1 * F32(xbase + uint64_t(c0 + c) * pc.x_nb1).v[i];
        }
#ifdef USE_SUBGROUP
        [[unroll]] for (uint c = 0u; c < NC; c++) {
            if (c >= ncol) break;
            const float s = subgroupAdd(acc[c]);
            if (lane == 0u) F32(dbase + uint64_t(c0 + c) * pc.d_nb1).v[m] = s;
        }
#else
        [[unroll]] for (uint c = 0u; c < NC; c++) red[lane * NC + c] = acc[c];
        barrier();
        for (uint s = 32u; s > 0u; s >>= 1) {
            if (lane < s) [[unroll]] for (uint c = 0u; c < NC; c++) red[lane * NC + c] += red[(lane + s) * NC + c];
            barrier();
        }
        if (lane < ncol) F32(dbase + uint64_t(c0 + lane) * pc.d_nb1).v[m] = red[lane];
#endif
    }
}
