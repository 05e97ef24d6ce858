#version 450
// set_rows.comp — dst row idx[i] = src row i, converted to DST_F32 / DST_F16 / DST_BF16 / DST_I32.
#include "common/common.glsl"
layout(local_size_x = 256) in;
layout(push_constant) uniform PC {
    uint64_t src, idx, d;
    uint ne0, n, src_nb1, dst_nb1;
} pc;

void main() {
    const uint i0 = gl_GlobalInvocationID.x;
    if (i0 >= pc.ne0) return;
    for (uint r = gl_WorkGroupID.y; r < pc.n; r += gl_NumWorkGroups.y) {
        const uint64_t s = pc.src + uint64_t(r) * pc.src_nb1;
        const uint64_t o = pc.d + uint64_t(uint(I32(pc.idx).v[r])) * pc.dst_nb1;
#if defined(DST_I32)
        I32(o).v[i0] = I32(s).v[i0];
#elif defined(DST_F32)
        F32(o).v[i0] = F32(s).v[i0];
#elif defined(DST_F16)
        U16(o).v[i0] = uint16_t(packHalf2x16(vec2(F32(s).v[i0], 0.0)) & 0xFFFFu);
#elif defined(DST_BF16)
        U16(o).v[i0] = uint16_t(f32_to_bf16(F32(s).v[i0]));
#endif
    }
}
