#version 450
// rms_norm.comp — dst = res + x / sqrt(mean(x^2) + eps) * w, one workgroup per row: a strided sum
// of squares reduced in shared memory (or subgroup adds), then the scaled row. Bytes moved: the
// row read twice (second time from cache) and written once.
#include "common/common.glsl"
layout(local_size_x = 256) in;
layout(push_constant) uniform PC {
    uint64_t x, w, res, d;
    uint ne0, ne1, ne2, nrows;
    uint x_nb1, x_nb2, x_nb3;
    uint r_nb1, r_nb2, r_nb3;
    uint has_w, has_res;
    float eps;
} pc;
shared float red[256];

void main() {
    const uint t = gl_LocalInvocationID.x;
    for (uint r = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x; r < pc.nrows; r += gl_NumWorkGroups.x * gl_NumWorkGroups.y) {
        const uint i1 = r % pc.ne1, i2 = (r / pc.ne1) % pc.ne2, i3 = r / (pc.ne1 * pc.ne2);
        const uint64_t xr = pc.x + uint64_t(i1) * pc.x_nb1 + uint64_t(i2) * pc.x_nb2 + uint64_t(i3) * pc.x_nb3;
        float ss = 0.0;
        for (uint i = t; i < pc.ne0; i += 256u) {
            const float v = F32(xr).v[i];
            ss += v * v;
        }
        red[t] = ss;
        barrier();
        for (uint s = 128u; s > 0u; s >>= 1) {
            if (t < s) red[t] += red[t + s];
            barrier();
        }
        const float inv = 1.0 / sqrt(red[0] / float(pc.ne0) + pc.eps);
        barrier();
        const uint64_t rr = pc.res + uint64_t(i1) * pc.r_nb1 + uint64_t(i2) * pc.r_nb2 + uint64_t(i3) * pc.r_nb3;
        const uint64_t dr = pc.d + uint64_t(r) * pc.ne0 * 4u;
        for (uint i = t; i < pc.ne0; i += 256u) {
            float v = F32(xr).v[i] * inv;
            if (pc.has_w != 0u) v *= F32(pc.w).v[i];
            if (pc.has_res != 0u) v += F32(rr).v[i];
            F32(dr).v[i] = v;
        }
        barrier();
    }
}
