#version 450
// elementwise.comp — add, mul (second operand may be one broadcast row), scale, softcap, GeGLU, SwiGLU.
// One invocation per element; rows of strided operands, contiguous destination.
#include "common/common.glsl"
layout(local_size_x = 256) in;
layout(push_constant) uniform PC {
    uint64_t a, b, d;
    uint ne0, ne1, ne2, nrows;
    uint a_nb1, a_nb2, a_nb3;
    uint b_nb1, b_nb2, b_nb3; // all 0 when b is one broadcast row
    uint op;                  // 0 add, 1 mul, 2 scale, 3 softcap, 4 geglu, 5 swiglu
    float f;
} pc;

void main() {
    const uint i0 = gl_GlobalInvocationID.x;
    if (i0 >= pc.ne0) return;
    for (uint r = gl_WorkGroupID.y; r < pc.nrows; r += gl_NumWorkGroups.y) {
        const uint i1 = r % pc.ne1, i2 = (r / pc.ne1) % pc.ne2, i3 = r / (pc.ne1 * pc.ne2);
        const float x = F32(pc.a + uint64_t(i1) * pc.a_nb1 + uint64_t(i2) * pc.a_nb2 + uint64_t(i3) * pc.a_nb3).v[i0];
        float y = 0.0;
        if (pc.op == 0u || pc.op == 1u || pc.op >= 4u)
            y = F32(pc.b + uint64_t(i1) * pc.b_nb1 + uint64_t(i2) * pc.b_nb2 + uint64_t(i3) * pc.b_nb3).v[i0];
        float o;
        if (pc.op == 0u) o = x + y;
        else if (pc.op == 1u) o = x * y;
        else if (pc.op == 2u) o = x * pc.f;
        else if (pc.op == 3u) o = pc.f * tanh(x / pc.f);
        else if (pc.op == 5u) o = x / (1.0 + exp(-x)) * y;
        else {
            // gelu_tanh(x) = x * sigmoid(2z), z = sqrt(2/pi) (x + 0.044715 x^3)
            const float z = 0.7978845608028654 * (x + 0.044715 * x * x * x);
            o = x / (1.0 + exp(-2.0 * z)) * y;
        }
        F32(pc.d + uint64_t(r) * pc.ne0 * 4u).v[i0] = o;
    }
}
