/*
 * kernels.h — the CPU inner loops, one table per instruction set. kernels.c is compiled three
 * times (plain C as "generic"; -mavx2 -mfma -mf16c as "avx2"; plus AVX-512 F/BW/VL/DQ/VNNI as
 * "avx512"); fast.c picks a table at run time from cpuid, so one binary runs on any x86-64 and
 * uses the widest instructions it has.
 *
 * Quantized matmul (decode and small batches): activations are quantized once per column, then
 * each weight row is dotted with integer SIMD and one float scale per 16 or 32 weights. K-quant
 * weights take q8s activations where the table has its dots (vpdpbusd with AVX-512 VNNI, maddubs
 * with AVX2): two int8 planes (~16-bit) by default, the first only with LUMEN_CPU_ACT=q8;
 * everything else, and everything with LUMEN_CPU_ACT=q16, takes 16-bit q16 (weights widened to
 * int16, madd). Types without a kernel fall back to dequantize-row + f32
 * dot (vec_dot[t] == NULL). Prefill (16+ columns) is the f32 GEMM below.
 */
#ifndef LM_CPU_KERNELS_H
#define LM_CPU_KERNELS_H

#include "../dtype.h"

/* columns one q8s multi-column dot takes */
#define LM_Q8S_MAXC 4

/* the prefill GEMM's K step: weight rows are dequantized LM_SG_KC values at a time */
#define LM_SG_KC 256

typedef float (*lm_vec_dot_fn)(int64_t n, const void *w, const void *x);

/* 16 weight rows x one 256-value super-block, unpacked for the int8 GEMM: q[i][r] holds values
 * 4i..4i+3 of row r as unsigned integers (so one vpdpbusd multiplies 16 rows by 4 activations);
 * row r's value v is s[b][r] * q - m[b][r] for its block b of `block` values (32: Q4_K / Q5_K; 16:
 * Q6_K, whose -32 offset is m = 32 s). */
#define LM_I8_ROWS 16
#define LM_I8_MAXC 8
typedef struct lm_i8_slice {
    uint8_t q[64][LM_I8_ROWS][4];
    float s[16][LM_I8_ROWS], m[16][LM_I8_ROWS];
    int32_t block;
    int32_t pad[15];
} lm_i8_slice;

typedef struct lm_cpu_kernels {
    const char *isa;
    float (*dot_f32)(const float *a, const float *b, int64_t n);
    float (*dot_f16)(const uint16_t *a, const float *b, int64_t n);
    float (*dot_bf16)(const uint16_t *a, const float *b, int64_t n);
    /* y[i] += a * x[i] */
    void (*axpy_f32)(float *y, float a, const float *x, int64_t n);
    void (*axpy_f16)(float *y, float a, const uint16_t *x, int64_t n);
    void (*axpy_bf16)(float *y, float a, const uint16_t *x, int64_t n);
    /* out[h] = dot(x, y[h]) for h < nh (<= 8): x loaded once for all rows (GQA scores) */
    void (*dot_f32_multi)(const float *x, const float *const *y, int nh, int64_t n, float *out);
    /* y[h] += a[h] * x for h < nh (<= 8): x loaded once (GQA value accumulation) */
    void (*axpy_f32_multi)(float *const *y, const float *a, int nh, const float *x, int64_t n);
    /* rows of f16 / bf16 to f32 */
    void (*cvt_f16)(const uint16_t *x, float *y, int64_t n);
    void (*cvt_bf16)(const uint16_t *x, float *y, int64_t n);
    /* x[i] = exp(x[i] - m); returns the sum (softmax numerators) */
    float (*exp_sub)(float *x, float m, int64_t n);
    /* y[i] = gelu_tanh(g[i]) * u[i] (GeGLU), as x * sigmoid(2z), z = sqrt(2/pi) (x + 0.044715 x^3) */
    void (*geglu)(float *y, const float *g, const float *u, int64_t n);
    void (*swiglu)(float *y, const float *g, const float *u, int64_t n); /* y = silu(g) * u */
    /* y[i] = cap * tanh(x[i] / cap) (logit soft-capping; y may alias x) */
    void (*softcap)(float *y, const float *x, float cap, int64_t n);
    void (*quant_q16)(const float *x, void *dst, int64_t n);
    /* Prefill micro-kernel: one weight row decoded to int16 (sub-scales folded in, one f32 scale
     * per 32 in d) times 4 q16 activation columns over nblk blocks of 32 (min terms excluded).
     * NULL when the instruction set has none. */
    void (*gemm_q16_1x4)(int64_t nblk, const int16_t *w, const float *d, const lm_block_q16 *const x[4], float out[4]);
    /* Prefill f32 micro-kernel: the sg_mr x sg_nr tile C[r][j] (+)= sum_k A[k][r] * B[k][j] over
     * kc steps, A packed [kc][sg_mr], B packed [kc][sg_nr]; C is column-major (column j at
     * c + j * ldc) and only its first mr rows and nr columns are written. 16 x 6 with AVX2 (and
     * in plain C), 32 x 12 with AVX-512. The matmul puts activation columns in A's lanes (packed
     * once per matmul) and weight rows in B (sgemm_rows); attention uses both packed. */
    int sg_mr, sg_nr;
    void (*sgemm)(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int mr, int nr, int acc);
    /* the same tile with B as sg_nr rows of LM_SG_KC floats each: B[k][j] = b[j * LM_SG_KC + k] */
    void (*sgemm_rows)(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int mr, int nr, int acc);
    /* GGUF weight blocks to f32 (the prefill GEMM's dequantization), bit-identical to
     * lm_dequant_row; NULL where the reference is used */
    lm_dequant_fn dequant[LM_DTYPE_COUNT];
    /* activation format expected by vec_dot[t] (LM_F32 = plain floats) */
    lm_dtype vec_type[LM_DTYPE_COUNT];
    lm_vec_dot_fn vec_dot[LM_DTYPE_COUNT];
    /* the integer-dot path (AVX-512 VNNI / AVX2): activations quantized to q8s (int8 with a scale
     * per 32, plus an int8 residual plane), then out[c] = dot(w, x[c]) for c < nc <= LM_Q8S_MAXC
     * columns, the weights unpacked once for all of them; two: both planes (~16-bit), else the
     * first (8-bit). NULL where the table has none. */
    void (*quant_q8s)(const float *x, void *dst, int64_t n);
    void (*mdot8[LM_DTYPE_COUNT])(int64_t n, const void *w, const void *const *x, int nc, int two, float *out);
    /* int8 GEMM against q8s activations (AVX-512 VNNI; NULL elsewhere). i8_repack[t] writes super-
     * block sb of rows[0..nrows) (nrows <= 16; the rest zero) as an lm_i8_slice; i8_gemm then
     * multiplies ns consecutive slices of 16 rows by nc <= LM_I8_MAXC columns (two: both planes,
     * nc <= LM_I8_MAXC / 2): out[c * 16 + r] = dot(row r, x[c]). */
    void (*i8_repack[LM_DTYPE_COUNT])(const void *const *rows, int nrows, int64_t sb, lm_i8_slice *out);
    void (*i8_gemm)(const lm_i8_slice *w, int64_t ns, const void *const *x, int nc, int two, float *out);
} lm_cpu_kernels;

extern const lm_cpu_kernels lm_cpu_kernels_generic;
#if defined(__x86_64__)
extern const lm_cpu_kernels lm_cpu_kernels_avx2;
extern const lm_cpu_kernels lm_cpu_kernels_avx512;
#endif

#endif /* LM_CPU_KERNELS_H */
