#version 450
// rope.comp — rotate pairs of every head by pos * f[i] (NEOX: (i, i + d/2); NORM: (2i, 2i + 1));
// pairs at or beyond n_pairs pass through. One invocation per pair; angles per common/rope.glsl
// (frequency factors are folded into the table by the host).
#include "common/common.glsl"
#include "common/rope.glsl"
layout(local_size_x = 64) in;
layout(push_constant) uniform PC {
    uint64_t x, pos, d, table;
    uint dh, nh, n, n_pairs, mode;
    uint x_nb1, x_nb2;
} pc;

void main() {
    const uint i = gl_GlobalInvocationID.x;
    const uint half_d = pc.dh / 2u;
    if (i >= half_d) return;
    for (uint r = gl_WorkGroupID.y; r < pc.nh * pc.n; r += gl_NumWorkGroups.y) {
        const uint h = r % pc.nh, t = r / pc.nh;
        const uint64_t xr = pc.x + uint64_t(h) * pc.x_nb1 + uint64_t(t) * pc.x_nb2;
        const uint64_t dr = pc.d + uint64_t(r) * pc.dh * 4u;
        const uint a = pc.mode == 0u ? i : 2u * i, b = pc.mode == 0u ? i + half_d : 2u * i + 1u;
        const float x0 = F32(xr).v[a], x1 = F32(xr).v[b];
        if (i < pc.n_pairs) {
            float c, s;
            rope_cs(uint(I32(pc.pos).v[t]), pc.table, i, c, s);
            F32(dr).v[a] = x0 * c - x1 * s;
            F32(dr).v[b] = x1 * c + x0 * s;
        } else {
            F32(dr).v[a] = x0;
            F32(dr).v[b] = x1;
        }
    }
}
