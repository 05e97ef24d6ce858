#version 450
// attention_merge.comp — combine the split partials of attention.comp: out = sum_s acc_s
// e^(m_s - M) / sum_s l_s e^(m_s - M), M = max_s m_s. One workgroup per (head, token).
#include "common/common.glsl"
layout(local_size_x = 64) in;
layout(push_constant) uniform PC {
    uint64_t part, d;
    uint H, dv, n_split;
} pc;

void main() {
    const uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y, tid = gl_LocalInvocationID.x;
    const uint64_t p0 = pc.part + (uint64_t(t) * pc.H + h) * pc.n_split * (pc.dv + 2u) * 4u;
    float M = -1.0 / 0.0;
    for (uint s = 0u; s < pc.n_split; s++) M = max(M, F32(p0 + uint64_t(s) * (pc.dv + 2u) * 4u).v[0]);
    float L = 0.0;
    for (uint s = 0u; s < pc.n_split; s++) {
        const uint64_t ps = p0 + uint64_t(s) * (pc.dv + 2u) * 4u;
        const float l = F32(ps).v[1];
        if (l > 0.0) L += l * exp(F32(ps).v[0] - M);
    }
    const uint64_t o = pc.d + (uint64_t(t) * pc.H + h) * pc.dv * 4u;
    for (uint dd = tid; dd < pc.dv; dd += 64u) {
        float a = 0.0;
        for (uint s = 0u; s < pc.n_split; s++) {
            const uint64_t ps = p0 + uint64_t(s) * (pc.dv + 2u) * 4u;
            if (F32(ps).v[1] > 0.0) a += F32(ps).v[2u + dd] * exp(F32(ps).v[0] - M);
        }
        F32(o).v[dd] = L > 0.0 ? a / L : 0.0;
    }
}
