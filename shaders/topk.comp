#version 450
// topk.comp — indices of the k largest values of each row, descending, ties to the lower index,
// NaN as -inf. One workgroup per row; k passes of a (value, index) max reduction that skips the
// indices already taken. Work O(k * m): for router top-8 over 128 experts and argmax over a
// vocabulary row.
#include "common/common.glsl"
layout(local_size_x = 256) in;
layout(push_constant) uniform PC {
    uint64_t x, d;
    uint m, n, k, x_nb1;
} pc;
shared float sv[256];
shared int si[256];
shared int taken[64];

bool better(float a, int ia, float b, int ib) { return a > b || (a == b && ia < ib); }

void main() {
    const uint t = gl_LocalInvocationID.x;
    for (uint row = gl_WorkGroupID.x; row < pc.n; row += gl_NumWorkGroups.x) {
        const uint64_t xr = pc.x + uint64_t(row) * pc.x_nb1;
        for (uint j = 0u; j < pc.k; j++) {
            float bv = -1.0 / 0.0;
            int bi = 0x7fffffff;
            for (uint i = t; i < pc.m; i += 256u) {
                bool skip = false;
                for (uint q = 0u; q < j; q++) skip = skip || taken[q] == int(i);
                if (skip) continue;
                float v = F32(xr).v[i];
                if (isnan(v)) v = -1.0 / 0.0;
                if (bi == 0x7fffffff || better(v, int(i), bv, bi)) {
                    bv = v;
                    bi = int(i);
                }
            }
            sv[t] = bv;
            si[t] = bi;
            barrier();
            for (uint s = 128u; s > 0u; s >>= 1) {
                if (t < s && si[t + s] != 0x7fffffff && (si[t] == 0x7fffffff || better(sv[t + s], si[t + s], sv[t], si[t]))) {
                    sv[t] = sv[t + s];
                    si[t] = si[t + s];
                }
                barrier();
            }
            if (t == 0u) {
                taken[j] = si[0];
                I32(pc.d + uint64_t(row) * pc.k * 4u).v[j] = si[0];
            }
            barrier();
        }
    }
}
