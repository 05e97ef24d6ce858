#version 450
// matmul_vec.comp — dst[m, n] = sum_k W[k, m] x[k, n] for the decode-sized side (a few columns):
// one workgroup of 64 invocations per weight row and group of NC columns. Invocations stride
// over the row (consecutive elements, so loads coalesce within blocks), dequantize each weight
// once (quant.glsl) and use it for all NC columns; partial sums are reduced in shared memory.
// Bytes: the weight row once per column group, NC activation columns. Bound by weight bandwidth.
// MATMUL_ID: the row comes from expert ids[j, t] of a 3-D weight, one (j, t) pair per grid z.
#include "common/common.glsl"
#include "common/quant.glsl"
#define NC 8
layout(local_size_x = 64) in;
layout(push_constant) uniform PC {
    uint64_t w, x, d, ids;
    uint K, M, N, row_bytes;
    uint x_nb1, x_nb2, d_nb1, d_nb2;
    uint J, x_ne1, expert_bytes, rows_per_grid_x;
} pc;
shared float red[64 * NC];

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint m = gl_WorkGroupID.x + gl_WorkGroupID.y * pc.rows_per_grid_x;
    if (m >= pc.M) return;
#ifdef MATMUL_ID
    const uint p = gl_WorkGroupID.z, j = p % pc.J, t = p / pc.J;
    const uint e = uint(I32(pc.ids + uint64_t(p) * 4u).v[0]);
    const uint64_t wrow = pc.w + uint64_t(e) * pc.expert_bytes + uint64_t(m) * pc.row_bytes;
    const uint64_t xc = pc.x + uint64_t(pc.x_ne1 == 1u ? 0u : j) * pc.x_nb1 + uint64_t(t) * pc.x_nb2;
    float acc = 0.0;
    for (uint i = tid; i < pc.K; i += 64u) acc += dq(wrow, i) * F32(xc).v[i];
    red[tid] = acc;
    barrier();
    for (uint s = 32u; s > 0u; s >>= 1) {
        if (tid < s) red[tid] += red[tid + s];
        barrier();
    }
    if (tid == 0u) F32(pc.d + uint64_t(j) * pc.d_nb1 + uint64_t(t) * pc.d_nb2).v[m] = red[0];
#else
    const uint c0 = gl_WorkGroupID.z * NC;
    const uint64_t wrow = pc.w + uint64_t(m) * pc.row_bytes;
    float acc[NC];
    [[unroll]] for (uint c = 0u; c < NC; c++) acc[c] = 0.0;
    for (uint i = tid; i < pc.K; i += 64u) {
        const float wv = dq(wrow, i);
        [[unroll]] for (uint c = 0u; c < NC; c++)
            if (c0 + c < pc.N) acc[c] += wv * F32(pc.x + uint64_t(c0 + c) * pc.x_nb1).v[i];
    }
    [[unroll]] for (uint c = 0u; c < NC; c++) red[tid * NC + c] = acc[c];
    barrier();
    for (uint s = 32u; s > 0u; s >>= 1) {
        if (tid < s) [[unroll]] for (uint c = 0u; c < NC; c++) red[tid * NC + c] += red[(tid + s) * NC + c];
        barrier();
    }
    if (tid < NC && c0 + tid < pc.N) F32(pc.d + uint64_t(c0 + tid) * pc.d_nb1).v[m] = red[tid];
#endif
}
