// rope.glsl — RoPE angles without float32's loss at long positions. The host gives each
// frequency as a 64-bit fixed-point number of turns per position (f / 2pi, 2^-64 units, with any
// frequency factor folded in). pos * g wraps modulo 2^64 = whole turns, exactly, in integer
// arithmetic; the residue to the nearest quarter turn (|x| <= pi/4) converts to float with
// ~1e-8 rad error, and sin / cos come from minimax polynomials there (Vulkan only promises
// 2^-11 for the builtins). Accurate at any position.
layout(buffer_reference, std430, buffer_reference_align = 8) buffer U64 { uint64_t v[]; };

void rope_cs(uint pos, uint64_t table, uint i, out float c, out float s) {
    const uint64_t ph = uint64_t(pos) * U64(table).v[i];
    const uint64_t qr = (ph + (uint64_t(1) << 61)) >> 62;
    const int64_t rem = int64_t(ph - (qr << 62));
    const float x = float(rem) * 3.4061215800865545e-19; // 2 pi / 2^64
    const float z = x * x;
    const float sn = x + x * z * (-1.6666654611e-1 + z * (8.3321608736e-3 + z * -1.9515295891e-4));
    const float cs = 1.0 - 0.5 * z + z * z * (4.166664568298827e-2 + z * (-1.388731625493765e-3 + z * 2.443315711809948e-5));
    const uint q = uint(qr & 3ul);
    if (q == 0u) { s = sn; c = cs; }
    else if (q == 1u) { s = cs; c = -sn; }
    else if (q == 2u) { s = -sn; c = -cs; }
    else { s = -cs; c = sn; }
}
