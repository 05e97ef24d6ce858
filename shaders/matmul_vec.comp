#version 450
// matmul_vec.comp — dst[m, n] = sum_k W[k, m] x[k, n] for the decode-sized side (up to NC columns
// per pass).
// Thread mapping. USE_SUBGROUP: each subgroup of the 64-invocation workgroup takes R rows at a
// time; lane l takes the 8-element chunks l, l + S, l + 2S, ... of those rows (dq8), so the S lanes
// of a subgroup read one contiguous stretch of each row's bytes and of x per step (coalesced: 4
// lanes share a 32-element block, 32 lanes a 256-element super-block). Each x chunk is loaded once
// for the R rows and each dequantized chunk serves all NC columns; subgroupAdd reduces: no shared
// memory or barriers. Without subgroup arithmetic the workgroup (64 lanes) takes R rows and
// reduces in shared memory.
// Bytes: every weight row once per group of NC columns, x once per R rows (cache-resident).
// Limit: weight bandwidth.
// MATMUL_ID: the rows come from expert ids[j, t] of a 3-D weight, one (j, t) pair per grid z.
#include "common/common.glsl"
#include "common/quant.glsl"
#define NC 8
#define R 4
layout(local_size_x = 64) in;
layout(push_constant) uniform PC {
    uint64_t w, x, d, ids;
    uint K, M, N, row_bytes;
    uint x_nb1, x_nb2, d_nb1, d_nb2;
    uint J, x_ne1, expert_bytes, rows_per_group;
} pc;
#ifndef USE_SUBGROUP
shared float red[64 * NC * R];
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
    const uint r0 = wg * pc.rows_per_group, r1 = min(r0 + pc.rows_per_group, pc.M);
#ifdef USE_SUBGROUP
    const uint lane = gl_SubgroupInvocationID, lanes = gl_SubgroupSize;
    for (uint m = r0 + gl_SubgroupID * R; m < r1; m += gl_NumSubgroups * R) {
#else
    const uint lane = gl_LocalInvocationID.x, lanes = 64u;
    {
        const uint m = r0;
        if (m >= r1) return;
#endif
        uint64_t wrow[R];
        [[unroll]] for (uint r = 0u; r < R; r++) wrow[r] = w0 + uint64_t(min(m + r, r1 - 1u)) * pc.row_bytes;
        float acc[R][NC];
        [[unroll]] for (uint r = 0u; r < R; r++)
            [[unroll]] for (uint c = 0u; c < NC; c++) acc[r][c] = 0.0;
        for (uint ch = lane; ch < nch; ch += lanes) {
            float wv[R][8];
            [[unroll]] for (uint r = 0u; r < R; r++) dq8(wrow[r], ch, wv[r]);
            [[unroll]] for (uint c = 0u; c < NC; c++) {
                if (c >= ncol) break;
                const uint64_t xc = xbase + uint64_t(c0 + c) * pc.x_nb1;
                float xv[8];
                [[unroll]] for (uint i = 0u; i < 8u; i++) xv[i] = F32(xc).v[8u * ch + i];
                [[unroll]] for (uint r = 0u; r < R; r++) {
                    float a = 0.0;
                    [[unroll]] for (uint i = 0u; i < 8u; i++) a += wv[r][i] * xv[i];
                    acc[r][c] += a;
                }
            }
        }
        for (uint i = nch * 8u + lane; i < pc.K; i += lanes) {
            [[unroll]] for (uint c = 0u; c < NC; c++) {
                if (c >= ncol) break;
                const float xi = F32(xbase + uint64_t(c0 + c) * pc.x_nb1).v[i];
                [[unroll]] for (uint r = 0u; r < R; r++) acc[r][c] += dq(wrow[r], i) * xi;
            }
        }
#ifdef USE_SUBGROUP
        [[unroll]] for (uint r = 0u; r < R; r++) {
            [[unroll]] for (uint c = 0u; c < NC; c++) {
                if (c >= ncol) break;
                const float s = subgroupAdd(acc[r][c]);
                if (lane == 0u && m + r < r1) F32(dbase + uint64_t(c0 + c) * pc.d_nb1).v[m + r] = s;
            }
        }
#else
        [[unroll]] for (uint r = 0u; r < R; r++)
            [[unroll]] for (uint c = 0u; c < NC; c++) red[(lane * R + r) * NC + c] = acc[r][c];
        barrier();
        for (uint s = 32u; s > 0u; s >>= 1) {
            if (lane < s)
                [[unroll]] for (uint q = 0u; q < R * NC; q++) red[lane * R * NC + q] += red[(lane + s) * R * NC + q];
            barrier();
        }
        if (lane < R * NC) {
            const uint r = lane / NC, c = lane % NC;
            if (c < ncol && m + r < r1) F32(dbase + uint64_t(c0 + c) * pc.d_nb1).v[m + r] = red[lane];
        }
#endif
    }
}
