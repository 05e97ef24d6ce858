#version 450
// cpy.comp — dst = convert(src) between f32 / f16 / bf16 (TYPE_* = source, DST_* = destination),
// any strides on both sides.
#include "common/common.glsl"
#include "common/quant.glsl"
layout(local_size_x = 256) in;
layout(push_constant) uniform PC {
    uint64_t s, d;
    uint ne0, ne1, ne2, nrows;
    uint s_nb1, s_nb2, s_nb3;
    uint d_nb1, d_nb2, d_nb3;
} pc;

void main() {
    const uint i0 = gl_GlobalInvocationID.x;
    if (i0 >= pc.ne0) return;
    for (uint r = gl_WorkGroupID.y; r < pc.nrows; r += gl_NumWorkGroups.y) {
        const uint i1 = r % pc.ne1, i2 = (r / pc.ne1) % pc.ne2, i3 = r / (pc.ne1 * pc.ne2);
        const float v = dq(pc.s + uint64_t(i1) * pc.s_nb1 + uint64_t(i2) * pc.s_nb2 + uint64_t(i3) * pc.s_nb3, i0);
        const uint64_t o = pc.d + uint64_t(i1) * pc.d_nb1 + uint64_t(i2) * pc.d_nb2 + uint64_t(i3) * pc.d_nb3;
#if defined(DST_F32)
        F32(o).v[i0] = v;
#elif defined(DST_F16)
        U16(o).v[i0] = uint16_t(packHalf2x16(vec2(v, 0.0)) & 0xFFFFu);
#elif defined(DST_BF16)
        U16(o).v[i0] = uint16_t(f32_to_bf16(v));
#endif
    }
}
