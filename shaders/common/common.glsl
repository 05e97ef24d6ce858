// common.glsl — included by every lumen compute shader.
// Tensors are reached through 64-bit device addresses in push constants (GL_EXT_buffer_reference):
// no descriptor sets. Block data is read through 16-bit words (every GGUF block size is even and
// every tensor starts 256-byte aligned), floats through 32-bit words.
#extension GL_EXT_buffer_reference : require
#extension GL_EXT_buffer_reference2 : require
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require
#extension GL_EXT_shader_explicit_arithmetic_types_int16 : require
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_control_flow_attributes : enable
#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_arithmetic : require
#extension GL_KHR_shader_subgroup_basic : require
#endif

layout(buffer_reference, std430, buffer_reference_align = 4) buffer F32 { float v[]; };
layout(buffer_reference, std430, buffer_reference_align = 4) buffer I32 { int v[]; };
layout(buffer_reference, std430, buffer_reference_align = 4) buffer U32 { uint v[]; };
layout(buffer_reference, std430, buffer_reference_align = 2) buffer U16 { uint16_t v[]; };

// byte / half / word at a byte offset from a 2-byte aligned address
uint rd8(uint64_t a, uint off) { return (uint(U16(a + uint64_t(off & ~1u)).v[0]) >> ((off & 1u) * 8u)) & 0xFFu; }
uint rd16(uint64_t a, uint off) { return uint(U16(a + uint64_t(off)).v[0]); }
uint rd32(uint64_t a, uint off) { return rd16(a, off) | (rd16(a, off + 2u) << 16); }
float rdh(uint64_t a, uint off) { return unpackHalf2x16(rd16(a, off)).x; }
int rds8(uint64_t a, uint off) { int b = int(rd8(a, off)); return b >= 128 ? b - 256 : b; }

float f16_round(float x) { return unpackHalf2x16(packHalf2x16(vec2(x, 0.0))).x; }
uint f32_to_bf16(float f) {
    uint u = floatBitsToUint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (u >> 16) | 0x40u;
    u += 0x7fffu + ((u >> 16) & 1u);
    return u >> 16;
}

// E4M3 (OCP): bias 7, no infinities, S.1111.111 = NaN
float e4m3(uint q) {
    const uint e = (q >> 3) & 15u, m = q & 7u;
    float v = e == 0u ? float(m) * 0.001953125 : uintBitsToFloat(((e + 120u) << 23) | (m << 20));
    if (e == 15u && m == 7u) v = uintBitsToFloat(0x7fc00000u);
    return (q & 0x80u) != 0u ? -v : v;
}

// f32 -> E4M3, round to nearest even, saturating at +-448, NaN -> 0x7f: lm_f32_to_e4m3 (quant.c)
// on the float's bits
uint f32_to_e4m3(float x) {
    const uint u = floatBitsToUint(x), s = (u >> 24) & 0x80u, a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return 0x7fu;
    const float af = uintBitsToFloat(a);
    if (af >= 464.0) return s | 0x7eu;
    if (af < 0.015625) return s | uint(roundEven(af * 512.0)); // subnormal (8 = the smallest normal)
    uint e = (a >> 23) - 120u, r = (a >> 20) & 7u;
    const uint rem = a & 0xfffffu;
    if (rem > 0x80000u || (rem == 0x80000u && (r & 1u) != 0u)) r++;
    if (r == 8u) r = 0u, e++;
    if (e > 15u || (e == 15u && r == 7u)) return s | 0x7eu;
    return s | (e << 3) | r;
}
