/*
 * kernels.h — the CPU inner loops, one table per instruction set. kernels.c is compiled twice
 * (plain C as "generic", and with -mavx2 -mfma -mf16c as "avx2"); fast.c picks a table at run
 * time from cpuid, so one binary runs on any x86-64 and uses AVX2 where it exists.
 *
 * Quantized matmul follows the int8-activation scheme: activations are quantized once per
 * column to the weight type's dot format (q8_0, q8_1 or q8_K), then each weight row is dotted
 * with integer SIMD and one float scale per block. Types without a kernel fall back to
 * dequantize-row + f32 dot (vec_dot[t] == NULL).
 */
#ifndef LM_CPU_KERNELS_H
#define LM_CPU_KERNELS_H

#include "../dtype.h"

typedef float (*lm_vec_dot_fn)(int64_t n, const void *w, const void *x);

typedef struct lm_cpu_kernels {
    const char *isa;
    float (*dot_f32)(const float *a, const float *b, int64_t n);
    float (*dot_f16)(const uint16_t *a, const float *b, int64_t n);
    float (*dot_bf16)(const uint16_t *a, const float *b, int64_t n);
    /* y[i] += a * x[i] */
    void (*axpy_f32)(float *y, float a, const float *x, int64_t n);
    void (*axpy_f16)(float *y, float a, const uint16_t *x, int64_t n);
    void (*axpy_bf16)(float *y, float a, const uint16_t *x, int64_t n);
    /* activation format expected by vec_dot[t] (LM_F32 = plain floats) */
    lm_dtype vec_type[LM_DTYPE_COUNT];
    lm_vec_dot_fn vec_dot[LM_DTYPE_COUNT];
} lm_cpu_kernels;

extern const lm_cpu_kernels lm_cpu_kernels_generic;
#if defined(__x86_64__)
extern const lm_cpu_kernels lm_cpu_kernels_avx2;
#endif

#endif /* LM_CPU_KERNELS_H */
