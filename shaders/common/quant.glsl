// quant.glsl — the GGUF block formats, mirroring engine/quant_blocks.h and engine/quant.c:
// dq(row, i) returns element i of a row starting at address `row` (TYPE_* selects the type).
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
#else
#error "quant.glsl: no TYPE_* defined"
#endif
