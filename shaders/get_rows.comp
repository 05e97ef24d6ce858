#version 450
// get_rows.comp — dst[:, i] = dequant(table[:, ids[i]]) * scale; one invocation per element.
// TYPE_* selects the table type (quant.glsl). Bytes: one table row + one f32 row per id.
#include "common/common.glsl"
#include "common/quant.glsl"
layout(local_size_x = 256) in;
layout(push_constant) uniform PC {
    uint64_t tab, ids, d;
    uint ne0, n, row_bytes;
    float scale;
} pc;

void main() {
    const uint i0 = gl_GlobalInvocationID.x;
    if (i0 >= pc.ne0) return;
    for (uint r = gl_WorkGroupID.y; r < pc.n; r += gl_NumWorkGroups.y) {
        const uint id = uint(I32(pc.ids).v[r]);
        const float v = dq(pc.tab + uint64_t(id) * pc.row_bytes, i0);
        F32(pc.d + uint64_t(r) * pc.ne0 * 4u).v[i0] = v * pc.scale;
    }
}
