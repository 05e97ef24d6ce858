#version 450
// moe.comp — MOE_WEIGHTS: per token, softmax over the selected experts' logits (equal to the
// full softmax renormalised over them) times the per-expert scale; MOE_SUM: dst[i, t] =
// sum_j w[j, t] * y[i, j, t].
#include "common/common.glsl"
layout(local_size_x = 64) in;
#ifdef MOE_WEIGHTS
layout(push_constant) uniform PC {
    uint64_t logits, ids, scale, d;
    uint E, k, n, has_scale;
} pc;
void main() {
    const uint t = gl_GlobalInvocationID.x;
    if (t >= pc.n) return;
    const uint64_t l = pc.logits + uint64_t(t) * pc.E * 4u, ids = pc.ids + uint64_t(t) * pc.k * 4u;
    float mx = -1.0 / 0.0;
    for (uint j = 0u; j < pc.k; j++) mx = max(mx, F32(l).v[I32(ids).v[j]]);
    float sum = 0.0;
    for (uint j = 0u; j < pc.k; j++) sum += exp(F32(l).v[I32(ids).v[j]] - mx);
    for (uint j = 0u; j < pc.k; j++) {
        const int e = I32(ids).v[j];
        float w = exp(F32(l).v[e] - mx) / sum;
        if (pc.has_scale != 0u) w *= F32(pc.scale).v[e];
        F32(pc.d + uint64_t(t) * pc.k * 4u).v[j] = w;
    }
}
#else
layout(push_constant) uniform PC {
    uint64_t y, w, d;
    uint dd, k, n, y_nb1, y_nb2;
} pc;
void main() {
    const uint i = gl_GlobalInvocationID.x;
    if (i >= pc.dd) return;
    for (uint t = gl_WorkGroupID.y; t < pc.n; t += gl_NumWorkGroups.y) {
        float acc = 0.0;
        for (uint j = 0u; j < pc.k; j++)
            acc += F32(pc.w + uint64_t(t) * pc.k * 4u).v[j] * F32(pc.y + uint64_t(j) * pc.y_nb1 + uint64_t(t) * pc.y_nb2).v[i];
        F32(pc.d + uint64_t(t) * pc.dd * 4u).v[i] = acc;
    }
}
#endif
