/*
 * dtype.h — tensor element types: GGUF/ggml ids, block geometry, conversions and the reference
 * (de)quantizers. Values of the GGUF types equal ggml's type ids so a file's type field maps 1:1.
 */
#ifndef LM_DTYPE_H
#define LM_DTYPE_H

#include "common.h"
#include "quant_blocks.h"

LM_EXTERN_C_BEGIN

typedef enum lm_dtype {
    LM_F32 = 0,
    LM_F16 = 1,
    LM_Q4_0 = 2,
    LM_Q4_1 = 3,
    LM_Q5_0 = 6,
    LM_Q5_1 = 7,
    LM_Q8_0 = 8,
    LM_Q8_1 = 9,
    LM_Q2_K = 10,
    LM_Q3_K = 11,
    LM_Q4_K = 12,
    LM_Q5_K = 13,
    LM_Q6_K = 14,
    LM_Q8_K = 15,
    LM_I8 = 24,
    LM_I16 = 25,
    LM_I32 = 26,
    LM_I64 = 27,
    LM_F64 = 28,
    LM_BF16 = 30,
    LM_Q16 = 36, /* lumen-internal activation formats (not file types) */
    LM_Q8S = 37,
    /* lumen's own weight formats (quant_blocks.h); GGUF files written by `lumen quantize` */
    LM_I4_G128 = 64,
    LM_F8_E4M3 = 65,
    LM_E4M3 = 66, /* plain FP8 E4M3 elements (no scale): the fp8 KV-cache type, not a file type */
    LM_DTYPE_COUNT = 72,
} lm_dtype;

typedef void (*lm_dequant_fn)(const void *src, float *dst, int64_t n);
typedef void (*lm_quant_fn)(const float *src, void *dst, int64_t n);

typedef struct lm_dtype_traits {
    const char *name;
    int32_t block;        /* elements per block (1 for plain types) */
    int32_t block_bytes;  /* bytes per block */
    bool quantized;
    bool supported;       /* a tensor of this type can be loaded */
    lm_dequant_fn dequant; /* reference: n elements (multiple of block) to f32 */
    lm_quant_fn quant;     /* reference quantizer, or NULL */
} lm_dtype_traits;

const lm_dtype_traits *lm_dtype_get(lm_dtype t); /* NULL for ids that are not types */
const char *lm_dtype_name(lm_dtype t);            /* "?" for unknown ids */
bool lm_dtype_valid(uint32_t id);                 /* id names a loadable tensor type */

/* Bytes of a row of n elements; n must be a multiple of the block size. */
static inline size_t lm_row_bytes(lm_dtype t, int64_t n) {
    const lm_dtype_traits *tr = lm_dtype_get(t);
    return (size_t)(n / tr->block) * (size_t)tr->block_bytes;
}

/* IEEE half and bfloat16 conversions (round to nearest even, NaN preserved). */
float lm_f16_to_f32(uint16_t h);
uint16_t lm_f32_to_f16(float f);
static inline float lm_bf16_to_f32(uint16_t h) {
    union { uint32_t u; float f; } v;
    v.u = (uint32_t)h << 16;
    return v.f;
}
uint16_t lm_f32_to_bf16(float f);

/* Dequantize n elements of any supported type (n a multiple of the block size). */
void lm_dequant_row(lm_dtype t, const void *src, float *dst, int64_t n);

/* Reference quantizers for the activation formats and for tests. */
void lm_quant_row_q8_0(const float *x, void *dst, int64_t n);
void lm_quant_row_q8_1(const float *x, void *dst, int64_t n);
void lm_quant_row_q8_K(const float *x, void *dst, int64_t n);
void lm_quant_row_q16(const float *x, void *dst, int64_t n);
void lm_quant_row_q8s(const float *x, void *dst, int64_t n);
/* A q8s row of n values (a multiple of 32) through a quantizer of whole super-blocks: the last,
   partial one from a zero-padded copy (zero past the row's end). */
void lm_quant_q8s_padded(const float *x, void *dst, int64_t n, void (*whole)(const float *, void *, int64_t));
/* The 16 scales of a q3_K block (6-bit, minus 32), and scale/min j of a q4_K / q5_K block. */
/* FP8 E4M3 <-> f32 (OCP E4M3: NaN for 0x7f / 0xff; encoding rounds to nearest even and
   saturates at +-448) */
float lm_e4m3_to_f32(uint8_t q);
uint8_t lm_f32_to_e4m3(float x);
void lm_q3_K_scales(const uint8_t *s12, int8_t out[16]);
void lm_k4_scale_min(int j, const uint8_t *q, uint8_t *d, uint8_t *m);

LM_EXTERN_C_END

#endif /* LM_DTYPE_H */
