// quant.glsl — the GGUF block formats, mirroring engine/quant_blocks.h and engine/quant.c:
// dq(row, i) returns element i of a row starting at address `row` (TYPE_* selects the type);
// dq8(row, c, w) the 8-element chunk c (the GEMV unit) and dq32 the 32-element sub-block sb.
// The formulas and their float operation order are quant.c's; the per-dtype conformance tests
// prove the copies agree.
#if defined(TYPE_F32)
#define QK 1
#define BLOCK_BYTES 4
float dq(uint64_t row, uint i) { return F32(row).v[i]; }
#elif defined(TYPE_F16)
#define QK 1
#define BLOCK_BYTES 2
float dq(uint64_t row, uint i) { return unpackHalf2x16(uint(U16(row).v[i])).x; }
#elif defined(TYPE_BF16)
#define QK 1
#define BLOCK_BYTES 2
float dq(uint64_t row, uint i) { return uintBitsToFloat(uint(U16(row).v[i]) << 16); }
#elif defined(TYPE_Q4_0)
#define QK 32
#define BLOCK_BYTES 18
float dq(uint64_t row, uint i) {
    const uint64_t b = row + uint64_t((i / 32u) * 18u);
    const uint j = i % 32u, byte = rd8(b, 2u + (j & 15u));
    const int q = int(j < 16u ? byte & 15u : byte >> 4) - 8;
    return rdh(b, 0u) * float(q);
}
#elif defined(TYPE_Q4_1)
#define QK 32
#define BLOCK_BYTES 20
float dq(uint64_t row, uint i) {
    const uint64_t b = row + uint64_t((i / 32u) * 20u);
    const uint j = i % 32u, byte = rd8(b, 4u + (j & 15u));
    const uint q = j < 16u ? byte & 15u : byte >> 4;
    return rdh(b, 0u) * float(q) + rdh(b, 2u);
}
#elif defined(TYPE_Q5_0)
#define QK 32
#define BLOCK_BYTES 22
float dq(uint64_t row, uint i) {
    const uint64_t b = row + uint64_t((i / 32u) * 22u);
    const uint j = i % 32u, byte = rd8(b, 6u + (j & 15u)), qh = rd32(b, 2u);
    const int q = int((j < 16u ? byte & 15u : byte >> 4) | (((qh >> j) & 1u) << 4)) - 16;
    return rdh(b, 0u) * float(q);
}
#elif defined(TYPE_Q5_1)
#define QK 32
#define BLOCK_BYTES 24
float dq(uint64_t row, uint i) {
    const uint64_t b = row + uint64_t((i / 32u) * 24u);
    const uint j = i % 32u, byte = rd8(b, 8u + (j & 15u)), qh = rd32(b, 4u);
    const uint q = (j < 16u ? byte & 15u : byte >> 4) | (((qh >> j) & 1u) << 4);
    return rdh(b, 0u) * float(q) + rdh(b, 2u);
}
#elif defined(TYPE_Q8_0)
#define QK 32
#define BLOCK_BYTES 34
float dq(uint64_t row, uint i) {
    const uint64_t b = row + uint64_t((i / 32u) * 34u);
    return float(rds8(b, 2u + i % 32u)) * rdh(b, 0u);
}
#elif defined(TYPE_Q2_K)
#define QK 256
#define BLOCK_BYTES 84
float dq(uint64_t row, uint i) {
    const uint64_t b = row + uint64_t((i / 256u) * 84u);
    const uint r = i % 256u, n = r / 128u, j = (r % 128u) / 32u, l = r % 32u;
    const uint sc = rd8(b, n * 8u + 2u * j + (l >= 16u ? 1u : 0u));
    const uint q = (rd8(b, 16u + n * 32u + l) >> (2u * j)) & 3u;
    const float dl = rdh(b, 80u) * float(sc & 15u), ml = rdh(b, 82u) * float(sc >> 4);
    return dl * float(q) - ml;
}
#elif defined(TYPE_Q3_K)
#define QK 256
#define BLOCK_BYTES 110
float dq(uint64_t row, uint i) {
    const uint64_t b = row + uint64_t((i / 256u) * 110u);
    const uint r = i % 256u, n = r / 128u, j = (r % 128u) / 32u, l = r % 32u;
    const uint is = n * 8u + 2u * j + (l >= 16u ? 1u : 0u);
    const uint lo = (rd8(b, 96u + is % 8u) >> (4u * (is / 8u))) & 15u, hi = (rd8(b, 96u + 8u + is % 4u) >> (2u * (is / 4u))) & 3u;
    const int sc = int(lo | (hi << 4)) - 32;
    const uint hm = (rd8(b, l) >> (n * 4u + j)) & 1u;
    const int q = int((rd8(b, 32u + n * 32u + l) >> (2u * j)) & 3u) - (hm != 0u ? 0 : 4);
    return (rdh(b, 108u) * float(sc)) * float(q);
}
#elif defined(TYPE_Q4_K) || defined(TYPE_Q5_K)
#define QK 256
#ifdef TYPE_Q4_K
#define BLOCK_BYTES 144
#define QS_OFF 16u
#else
#define BLOCK_BYTES 176
#define QS_OFF 48u
#endif
void scale_min_k4(uint64_t b, uint j, out uint sc, out uint m) {
    if (j < 4u) {
        sc = rd8(b, 4u + j) & 63u;
        m = rd8(b, 4u + j + 4u) & 63u;
    } else {
        sc = (rd8(b, 4u + j + 4u) & 15u) | ((rd8(b, 4u + j - 4u) >> 6) << 4);
        m = (rd8(b, 4u + j + 4u) >> 4) | ((rd8(b, 4u + j) >> 6) << 4);
    }
}
float dq(uint64_t row, uint i) {
    const uint64_t b = row + uint64_t((i / 256u) * uint(BLOCK_BYTES));
    const uint r = i % 256u, c = r / 64u, hi = (r % 64u) / 32u, l = r % 32u;
    uint sc, m;
    scale_min_k4(b, 2u * c + hi, sc, m);
    const uint byte = rd8(b, QS_OFF + 32u * c + l);
    uint q = hi == 0u ? byte & 15u : byte >> 4;
#ifdef TYPE_Q5_K
    q += ((rd8(b, 16u + l) >> (2u * c + hi)) & 1u) << 4;
#endif
    return (rdh(b, 0u) * float(sc)) * float(q) - rdh(b, 2u) * float(m);
}
#elif defined(TYPE_Q6_K)
#define QK 256
#define BLOCK_BYTES 210
float dq(uint64_t row, uint i) {
    const uint64_t b = row + uint64_t((i / 256u) * 210u);
    const uint r = i % 256u, n = r / 128u, qr = (r % 128u) / 32u, l = r % 32u, is = l / 16u;
    const uint L = rd8(b, 64u * n + l + (qr & 1u) * 32u), H = rd8(b, 128u + 32u * n + l);
    const uint q = ((qr < 2u ? L & 15u : L >> 4)) | (((H >> (2u * qr)) & 3u) << 4);
    const int sc = rds8(b, 192u + 8u * n + is + 2u * qr);
    return (rdh(b, 208u) * float(sc)) * float(int(q) - 32);
}
#elif defined(TYPE_I4_G128)
// lumen's formats (engine/quant_blocks.h)
#define QK 128
#define BLOCK_BYTES 68
float dq(uint64_t row, uint i) {
    const uint64_t b = row + uint64_t((i / 128u) * 68u);
    const uint j = i % 128u, byte = rd8(b, 4u + (j & 63u));
    return rdh(b, 0u) * float(j < 64u ? byte & 15u : byte >> 4) + rdh(b, 2u);
}
#elif defined(TYPE_F8_E4M3)
#define QK 128
#define BLOCK_BYTES 132
float dq(uint64_t row, uint i) {
    const uint64_t b = row + uint64_t((i / 128u) * 132u);
    return uintBitsToFloat(rd32(b, 0u)) * e4m3(rd8(b, 4u + i % 128u));
}
#elif defined(TYPE_E4M3)
// plain FP8 E4M3 (the fp8 KV cache): one byte per element, no scale
#define QK 1
#define BLOCK_BYTES 1
float dq(uint64_t row, uint i) { return e4m3(rd8(row, i)); }
#else
#error "quant.glsl: no TYPE_* defined"
#endif

// Words of a block: every GGUF block size is even and every row starts 2-byte aligned.
uint wd(uint64_t a, uint word) { return uint(U16(a).v[word]); }

// dq8(row, c, w): elements 8c .. 8c + 7 of a row (c < K / 8; K a multiple of the block size for
// the block types). Every 8-element chunk lies in one block and shares one scale, so adjacent
// lanes taking adjacent chunks read adjacent bytes: the coalesced mapping of the decode GEMV.
// Same arithmetic as dq().
#if defined(TYPE_F32) || defined(TYPE_F16) || defined(TYPE_BF16) || defined(TYPE_E4M3)
void dq8(uint64_t row, uint c, out float w[8]) {
    [[unroll]] for (uint i = 0u; i < 8u; i++) w[i] = dq(row, 8u * c + i);
}
#elif defined(TYPE_Q4_0) || defined(TYPE_Q4_1)
void dq8(uint64_t row, uint c, out float w[8]) {
    const uint64_t b = row + uint64_t((c / 4u) * uint(BLOCK_BYTES));
    const uint j = c % 4u, sh = j < 2u ? 0u : 4u;
#ifdef TYPE_Q4_0
    const float d = unpackHalf2x16(wd(b, 0u)).x;
    const uint q0 = 1u + 4u * (j & 1u);
#else
    const float d = unpackHalf2x16(wd(b, 0u)).x, m = unpackHalf2x16(wd(b, 1u)).x;
    const uint q0 = 2u + 4u * (j & 1u);
#endif
    [[unroll]] for (uint k = 0u; k < 4u; k++) {
        const uint x = wd(b, q0 + k);
        [[unroll]] for (uint e = 0u; e < 2u; e++) {
            const uint q = ((x >> (8u * e)) >> sh) & 15u;
#ifdef TYPE_Q4_0
            w[2u * k + e] = d * float(int(q) - 8);
#else
            w[2u * k + e] = d * float(q) + m;
#endif
        }
    }
}
#elif defined(TYPE_Q5_0) || defined(TYPE_Q5_1)
void dq8(uint64_t row, uint c, out float w[8]) {
    const uint64_t b = row + uint64_t((c / 4u) * uint(BLOCK_BYTES));
    const uint j = c % 4u, sh = j < 2u ? 0u : 4u;
#ifdef TYPE_Q5_0
    const float d = unpackHalf2x16(wd(b, 0u)).x;
    const uint qh = wd(b, 1u) | (wd(b, 2u) << 16), q0 = 3u + 4u * (j & 1u);
#else
    const float d = unpackHalf2x16(wd(b, 0u)).x, m = unpackHalf2x16(wd(b, 1u)).x;
    const uint qh = wd(b, 2u) | (wd(b, 3u) << 16), q0 = 4u + 4u * (j & 1u);
#endif
    [[unroll]] for (uint k = 0u; k < 4u; k++) {
        const uint x = wd(b, q0 + k);
        [[unroll]] for (uint e = 0u; e < 2u; e++) {
            const uint el = 8u * j + 2u * k + e; // element index in the block
            const uint q = (((x >> (8u * e)) >> sh) & 15u) | (((qh >> el) & 1u) << 4);
#ifdef TYPE_Q5_0
            w[2u * k + e] = d * float(int(q) - 16);
#else
            w[2u * k + e] = d * float(q) + m;
#endif
        }
    }
}
#elif defined(TYPE_Q8_0)
void dq8(uint64_t row, uint c, out float w[8]) {
    const uint64_t b = row + uint64_t((c / 4u) * 34u);
    const float d = unpackHalf2x16(wd(b, 0u)).x;
    const uint q0 = 1u + 4u * (c % 4u);
    [[unroll]] for (uint k = 0u; k < 4u; k++) {
        const uint x = wd(b, q0 + k);
        const int b0 = int(x & 0xFFu), b1 = int(x >> 8);
        w[2u * k] = float(b0 >= 128 ? b0 - 256 : b0) * d;
        w[2u * k + 1u] = float(b1 >= 128 ? b1 - 256 : b1) * d;
    }
}
#elif defined(TYPE_Q2_K)
void dq8(uint64_t row, uint c, out float w[8]) {
    const uint64_t b = row + uint64_t((c / 32u) * 84u);
    const uint r0 = 8u * (c % 32u), n = r0 / 128u, j = (r0 % 128u) / 32u, l0 = r0 % 32u;
    const uint sc = rd8(b, n * 8u + 2u * j + (l0 >= 16u ? 1u : 0u));
    const float dl = unpackHalf2x16(wd(b, 40u)).x * float(sc & 15u), ml = unpackHalf2x16(wd(b, 41u)).x * float(sc >> 4);
    [[unroll]] for (uint k = 0u; k < 4u; k++) {
        const uint x = wd(b, 8u + 16u * n + l0 / 2u + k);
        [[unroll]] for (uint e = 0u; e < 2u; e++) w[2u * k + e] = dl * float((((x >> (8u * e)) & 0xFFu) >> (2u * j)) & 3u) - ml;
    }
}
#elif defined(TYPE_Q3_K)
void dq8(uint64_t row, uint c, out float w[8]) {
    const uint64_t b = row + uint64_t((c / 32u) * 110u);
    const uint r0 = 8u * (c % 32u), n = r0 / 128u, j = (r0 % 128u) / 32u, l0 = r0 % 32u;
    const uint is = n * 8u + 2u * j + (l0 >= 16u ? 1u : 0u);
    const uint lo = (rd8(b, 96u + is % 8u) >> (4u * (is / 8u))) & 15u, hi = (rd8(b, 104u + is % 4u) >> (2u * (is / 4u))) & 3u;
    const float dl = unpackHalf2x16(wd(b, 54u)).x * float(int(lo | (hi << 4)) - 32);
    const uint m = n * 4u + j;
    [[unroll]] for (uint k = 0u; k < 4u; k++) {
        const uint x = wd(b, 16u + 16u * n + l0 / 2u + k), hm = wd(b, l0 / 2u + k);
        [[unroll]] for (uint e = 0u; e < 2u; e++) {
            const int q = int((((x >> (8u * e)) & 0xFFu) >> (2u * j)) & 3u) - ((((hm >> (8u * e)) >> m) & 1u) != 0u ? 0 : 4);
            w[2u * k + e] = dl * float(q);
        }
    }
}
#elif defined(TYPE_Q4_K) || defined(TYPE_Q5_K)
// 144- and 176-byte blocks keep 4-byte alignment: 32-bit loads (6 for Q4_K instead of 10).
uint w32(uint64_t a, uint word) { return U32(a).v[word]; }
void dq8(uint64_t row, uint c, out float w[8]) {
    const uint64_t b = row + uint64_t((c / 32u) * uint(BLOCK_BYTES));
    const uint r0 = 8u * (c % 32u), cc = r0 / 64u, hi = (r0 % 64u) / 32u, l0 = r0 % 32u, sub = 2u * cc + hi;
    const vec2 dm = unpackHalf2x16(w32(b, 0u));
    // scale_min_k4 on the 12 scale bytes (bytes 4..15 = words 1..3)
    const uint s0 = w32(b, 1u), s1 = w32(b, 2u), s2 = w32(b, 3u);
    uint sc, mn;
    if (sub < 4u) {
        sc = (s0 >> (8u * sub)) & 63u;
        mn = (s1 >> (8u * sub)) & 63u;
    } else {
        const uint q = sub - 4u, b8 = (s2 >> (8u * q)) & 0xFFu;
        sc = (b8 & 15u) | (((s0 >> (8u * q)) >> 6) & 3u) << 4;
        mn = (b8 >> 4) | (((s1 >> (8u * q)) >> 6) & 3u) << 4;
    }
    const float d1 = dm.x * float(sc), m1 = dm.y * float(mn);
    [[unroll]] for (uint k = 0u; k < 2u; k++) {
        const uint x = w32(b, QS_OFF / 4u + 8u * cc + l0 / 4u + k);
#ifdef TYPE_Q5_K
        const uint h = w32(b, 4u + l0 / 4u + k);
#endif
        [[unroll]] for (uint e = 0u; e < 4u; e++) {
            const uint by = (x >> (8u * e)) & 0xFFu;
            uint q = hi == 0u ? by & 15u : by >> 4;
#ifdef TYPE_Q5_K
            q += (((h >> (8u * e)) >> sub) & 1u) << 4;
#endif
            w[4u * k + e] = d1 * float(q) - m1;
        }
    }
}
#elif defined(TYPE_Q6_K)
void dq8(uint64_t row, uint c, out float w[8]) {
    const uint64_t b = row + uint64_t((c / 32u) * 210u);
    const uint r0 = 8u * (c % 32u), n = r0 / 128u, qr = (r0 % 128u) / 32u, l0 = r0 % 32u;
    const float ds = unpackHalf2x16(wd(b, 104u)).x * float(rds8(b, 192u + 8u * n + l0 / 16u + 2u * qr));
    [[unroll]] for (uint k = 0u; k < 4u; k++) {
        const uint L = wd(b, 32u * n + 16u * (qr & 1u) + l0 / 2u + k), H = wd(b, 64u + 16u * n + l0 / 2u + k);
        [[unroll]] for (uint e = 0u; e < 2u; e++) {
            const uint lb = (L >> (8u * e)) & 0xFFu, hb = (H >> (8u * e)) & 0xFFu;
            const uint q = (qr < 2u ? lb & 15u : lb >> 4) | (((hb >> (2u * qr)) & 3u) << 4);
            w[2u * k + e] = ds * float(int(q) - 32);
        }
    }
}
#elif defined(TYPE_I4_G128)
void dq8(uint64_t row, uint c, out float w[8]) {
    const uint64_t b = row + uint64_t((c / 16u) * 68u);
    const uint j0 = 8u * (c % 16u), sh = j0 < 64u ? 0u : 4u;
    const float d = unpackHalf2x16(wd(b, 0u)).x, m = unpackHalf2x16(wd(b, 1u)).x;
    [[unroll]] for (uint k = 0u; k < 4u; k++) {
        const uint x = wd(b, 2u + (j0 & 63u) / 2u + k);
        [[unroll]] for (uint e = 0u; e < 2u; e++) w[2u * k + e] = d * float(((x >> (8u * e)) >> sh) & 15u) + m;
    }
}
#elif defined(TYPE_F8_E4M3)
void dq8(uint64_t row, uint c, out float w[8]) {
    const uint64_t b = row + uint64_t((c / 16u) * 132u);
    const float d = uintBitsToFloat(wd(b, 0u) | (wd(b, 1u) << 16));
    [[unroll]] for (uint k = 0u; k < 4u; k++) {
        const uint x = wd(b, 2u + 4u * (c % 16u) + k);
        w[2u * k] = d * e4m3(x & 0xFFu);
        w[2u * k + 1u] = d * e4m3(x >> 8);
    }
}
#endif

// dq32(row, sb, w): the 32 elements of sub-block sb (elements 32 sb .. 32 sb + 31), for kernels
// that dequantize a whole sub-block per invocation (the tiled GEMM).
void dq32(uint64_t row, uint sb, out float w[32]) {
    [[unroll]] for (uint q = 0u; q < 4u; q++) {
        float t[8];
        dq8(row, 4u * sb + q, t);
        [[unroll]] for (uint i = 0u; i < 8u; i++) w[8u * q + i] = t[i];
    }
}
