/*
 * quant_blocks.h — block layouts of the quantized tensor types, shared by C and CUDA.
 * Byte-identical to ggml's (GGUF files store these blocks verbatim). GLSL mirrors them in
 * shaders/common/quant.glsl; the per-dtype conformance tests prove the copies agree.
 *
 * A block holds QK elements of one row; rows are a whole number of blocks.
 * ggml_half is an IEEE binary16 stored as uint16_t.
 */
#ifndef LM_QUANT_BLOCKS_H
#define LM_QUANT_BLOCKS_H

#include <stdint.h>

typedef uint16_t lm_half;

#define LM_QK4_0 32
#define LM_QK4_1 32
#define LM_QK5_0 32
#define LM_QK5_1 32
#define LM_QK8_0 32
#define LM_QK8_1 32
#define LM_QK_K 256
#define LM_K_SCALE_SIZE 12

typedef struct { lm_half d; uint8_t qs[LM_QK4_0 / 2]; } lm_block_q4_0;                 /* 18 B */
typedef struct { lm_half d; lm_half m; uint8_t qs[LM_QK4_1 / 2]; } lm_block_q4_1;      /* 20 B */
typedef struct { lm_half d; uint8_t qh[4]; uint8_t qs[LM_QK5_0 / 2]; } lm_block_q5_0; /* 22 B */
typedef struct { lm_half d; lm_half m; uint8_t qh[4]; uint8_t qs[LM_QK5_1 / 2]; } lm_block_q5_1;
typedef struct { lm_half d; int8_t qs[LM_QK8_0]; } lm_block_q8_0;                      /* 34 B */
/* q8_1: activation format for the *_1 types; s = d * sum(qs). */
typedef struct { lm_half d; lm_half s; int8_t qs[LM_QK8_1]; } lm_block_q8_1;           /* 36 B */

typedef struct {
    uint8_t scales[LM_QK_K / 16]; /* 4-bit scale (low) and 4-bit min (high) per 16 */
    uint8_t qs[LM_QK_K / 4];      /* 2-bit quants */
    lm_half d;
    lm_half dmin;
} lm_block_q2_K; /* 84 B */

typedef struct {
    uint8_t hmask[LM_QK_K / 8]; /* high bit */
    uint8_t qs[LM_QK_K / 4];    /* low 2 bits */
    uint8_t scales[12];         /* 16 x 6-bit scales */
    lm_half d;
} lm_block_q3_K; /* 110 B */

typedef struct {
    lm_half d;
    lm_half dmin;
    uint8_t scales[LM_K_SCALE_SIZE]; /* 8 x (6-bit scale, 6-bit min) */
    uint8_t qs[LM_QK_K / 2];
} lm_block_q4_K; /* 144 B */

typedef struct {
    lm_half d;
    lm_half dmin;
    uint8_t scales[LM_K_SCALE_SIZE];
    uint8_t qh[LM_QK_K / 8];
    uint8_t qs[LM_QK_K / 2];
} lm_block_q5_K; /* 176 B */

typedef struct {
    uint8_t ql[LM_QK_K / 2];     /* low 4 bits */
    uint8_t qh[LM_QK_K / 4];     /* high 2 bits */
    int8_t scales[LM_QK_K / 16]; /* 8-bit scales */
    lm_half d;
} lm_block_q6_K; /* 210 B */

/* lumen's own weight formats (not ggml types; ids 64+ so they cannot collide with ggml's):
 * i4_g128: asymmetric 4-bit, groups of 128: x = d * q + m, q in 0..15; element i of a block in
 *          byte i % 64, low nibble for i < 64 (so 32 consecutive elements are 16 bytes' nibbles).
 * f8_e4m3: FP8 E4M3 (OCP: bias 7, no infinities, 0x7f / 0xff NaN, max 448) with one f32 scale per
 *          128: x = d * e4m3(q). A per-channel scale is the same format with every block of a row
 *          given the row's scale (the converter's --per-channel). */
#define LM_QK_G128 128
typedef struct {
    lm_half d;
    lm_half m;
    uint8_t qs[LM_QK_G128 / 2];
} lm_block_i4_g128; /* 68 B */
typedef struct {
    float d;
    uint8_t qs[LM_QK_G128];
} lm_block_f8_e4m3; /* 132 B */

/* q8_K: activation format for the K-quant dot products. */
typedef struct {
    float d;
    int8_t qs[LM_QK_K];
    int16_t bsums[LM_QK_K / 16]; /* sum of qs in groups of 16 */
} lm_block_q8_K; /* 292 B */

/* q16: lumen's 16-bit activation format for the CPU quantized dot products: int16 values with one
 * f32 scale per 32 and the integer sums of each half (for the min / offset terms of the *_1 and
 * K-quant types). 16-bit activations keep the matmul within ~1e-9 NMSE of exact arithmetic. The
 * decode dots of the K-quants use q8s below where the CPU has integer-dot instructions
 * (LUMEN_CPU_ACT=q16 keeps q16 everywhere). */
#define LM_QK16 32
typedef struct {
    float d;            /* x ~= d * qs */
    int32_t bsum[2];    /* sum of qs[0..15], qs[16..31] */
    int16_t qs[LM_QK16];
} lm_block_q16; /* 76 B */

/* q8s: lumen's 8-bit activation format for the K-quant dots (vpdpbusd / maddubs): 256 values as
 * int8 with one f32 scale per 32 (not ggml's one per 256, so an outlier costs only its own 32),
 * plus a second int8 plane holding the rounding residual at 1/256 of the scale:
 *   x ~= d[j] * (qs + qr / 256)        (|error| <= d / 256, ~16-bit precision)
 * A dot that reads qs alone is an 8-bit dot (fastest); one that also reads qr costs one more
 * integer dot per 64 products and is as exact as q16. The scaled sums the min / offset terms need
 * are precomputed for both: s32[j] = d[j] * (sum over 32j..32j+31 of qs + qr / 256), s16[g] =
 * d[g/2] * (the same over 16g..16g+15); t32 / t16 the same of qs alone. (A dot must use the sums
 * of the values it multiplies: the rounding errors then cancel through the zero-centred weights;
 * mixing them leaves the error of the uncentred ones.) */
#define LM_QK8S 256
typedef struct {
    float d[8];
    float s32[8];
    float s16[16];
    float t32[8];
    float t16[16];
    float pad[8]; /* qs and qr start on cache lines (in a 64-aligned buffer) */
    int8_t qs[LM_QK8S];
    int8_t qr[LM_QK8S];
} lm_block_q8s; /* 768 B: twelve cache lines */

#ifndef __cplusplus
_Static_assert(sizeof(lm_block_q8s) == 768, "q8s size");
_Static_assert(sizeof(lm_block_q16) == 76, "q16 size");
_Static_assert(sizeof(lm_block_i4_g128) == 68, "i4_g128 size");
_Static_assert(sizeof(lm_block_f8_e4m3) == 132, "f8_e4m3 size");
_Static_assert(sizeof(lm_block_q4_0) == 18, "q4_0 size");
_Static_assert(sizeof(lm_block_q4_1) == 20, "q4_1 size");
_Static_assert(sizeof(lm_block_q5_0) == 22, "q5_0 size");
_Static_assert(sizeof(lm_block_q5_1) == 24, "q5_1 size");
_Static_assert(sizeof(lm_block_q8_0) == 34, "q8_0 size");
_Static_assert(sizeof(lm_block_q8_1) == 36, "q8_1 size");
_Static_assert(sizeof(lm_block_q2_K) == 84, "q2_K size");
_Static_assert(sizeof(lm_block_q3_K) == 110, "q3_K size");
_Static_assert(sizeof(lm_block_q4_K) == 144, "q4_K size");
_Static_assert(sizeof(lm_block_q5_K) == 176, "q5_K size");
_Static_assert(sizeof(lm_block_q6_K) == 210, "q6_K size");
_Static_assert(sizeof(lm_block_q8_K) == 292, "q8_K size");
#else
static_assert(sizeof(lm_block_q4_K) == 144, "q4_K size");
#endif

#endif /* LM_QUANT_BLOCKS_H */
