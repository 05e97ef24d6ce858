#version 450
// set_rows.comp — dst row idx[i] = src row i, converted to DST_F32 / DST_F16 / DST_BF16 / DST_I32,
// or quantized for the 8-bit KV caches:
//   DST_Q8_0  one invocation per block of 32 (amax, f16 scale, 16 words of quants: no two
//             invocations share a word); quant.c's lm_quant_row_q8_0 arithmetic
//   DST_E4M3  one invocation per 4 elements, written as one 32-bit word (ne0 % 4 == 0)
// x covers the row in units (elements, blocks or words), workgroup y strides the rows.
#include "common/common.glsl"
layout(local_size_x = 256) in;
layout(push_constant) uniform PC {
    uint64_t src, idx, d;
    uint ne0, n, src_nb1, dst_nb1;
} pc;

#if defined(DST_Q8_0)
const uint UNIT = 32u;
#elif defined(DST_E4M3)
const uint UNIT = 4u;
#else
const uint UNIT = 1u;
#endif

#if defined(DST_Q8_0)
// quant.c's q8_round: roundf (halves away from zero; |v| - floor|v| is exact), clamped to
// +-127, NaN -> 0; returned as the int8's byte
uint q8_round(float v) {
    if (isnan(v)) return 0u;
    const float a = abs(v);
    float r = floor(a);
    if (a - r >= 0.5) r += 1.0;
    const int q = int(min(r, 127.0)) * (v < 0.0 ? -1 : 1);
    return uint(q) & 0xFFu;
}
#endif

void main() {
    const uint u = gl_GlobalInvocationID.x, i0 = u * UNIT;
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
#elif defined(DST_Q8_0)
        float amax = 0.0;
        for (uint j = 0u; j < 32u; j++) amax = max(amax, abs(F32(s).v[i0 + j]));
        const float d = amax / 127.0, id = d != 0.0 ? 1.0 / d : 0.0;
        const uint64_t b = o + uint64_t(u * 34u);
        U16(b).v[0] = uint16_t(packHalf2x16(vec2(d, 0.0)) & 0xFFFFu);
        for (uint j = 0u; j < 32u; j += 2u) {
            const uint q0 = q8_round(F32(s).v[i0 + j] * id), q1 = q8_round(F32(s).v[i0 + j + 1u] * id);
            U16(b).v[1u + j / 2u] = uint16_t(q0 | (q1 << 8));
        }
#elif defined(DST_E4M3)
        uint w = 0u;
        [[unroll]] for (uint j = 0u; j < 4u; j++) w |= f32_to_e4m3(F32(s).v[i0 + j]) << (8u * j);
        U32(o).v[u] = w;
#endif
    }
}
