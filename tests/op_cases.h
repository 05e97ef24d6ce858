/*
 * op_cases.h — the one table of op cases shared by the op-conformance suite (tests/test_ops.c,
 * every backend vs the CPU reference) and the kernel benchmarks (bench/).
 *
 * A case is an op, a main dtype (weights / table / KV / destination type) and up to six shape
 * numbers whose meaning depends on the op (documented per op in op_harness.c), integer and float
 * parameters, and the largest normalised mean squared error (sum (x - ref)^2 / sum ref^2)
 * allowed against the reference. Shapes include odd sizes on purpose.
 */
#ifndef LM_OP_CASES_H
#define LM_OP_CASES_H

#include "backend.h"

typedef struct lm_op_case {
    const char *name;
    lm_op op;
    lm_dtype type;
    int64_t s[6];
    int32_t ip[6];
    float fp[4];
    double tol;
} lm_op_case;

/* The tolerance classes. Reference accumulates in double; fast paths in f32, and quantized
 * matmuls also round activations to 16 bits (the q16 dot format), which costs ~1e-10 NMSE
 * (8-bit activations, as ggml's q8_0 / q8_K, measured ~3e-5 here). */
#define TOL_F32 1e-10
#define TOL_F16 1e-7   /* f16 storage of an output (set_rows/cpy) or f32 math over f16 data */
#define TOL_ACT16 1e-8 /* 16-bit activation quantization inside quantized matmul */
#define TOL_TC 5e-7    /* f16 tensor-core GEMM (CUDA, N > 8, K % 128 == 0): weights and
                          activations rounded to f16 (measured ~1e-7 NMSE) */
#define TOL_FA 5e-6    /* f16 tensor-core flash attention (CUDA prefill): Q and K rounded to f16
                          move a score by ~2^-12 |q| |k|, so the error grows with the scores: ~5e-8
                          at scale 1/sqrt(d), 0.8-2.7e-6 at hd 512 with scale 1 (Gemma 4's global
                          layers: peaked softmax) */
#define TOL_EXACT 0.0  /* integer outputs (top-k ids) must match exactly */
#define TOL_Q8 1e-6    /* 8-bit KV writes: rounding ties may land on the other neighbour */
#define TOL_ACT8 3e-4  /* 8-bit activations (the CPU's default decode dots: int8, a scale per
                          32): measured 1e-5 .. 1.1e-4 NMSE on these cases; the kernels themselves
                          are checked exactly against the quantized operands in test_quant */

/* clang-format off */
#define LM_QTYPES(X) X(LM_F32) X(LM_F16) X(LM_BF16) X(LM_Q4_0) X(LM_Q4_1) X(LM_Q5_0) X(LM_Q5_1) X(LM_Q8_0) \
                     X(LM_Q2_K) X(LM_Q3_K) X(LM_Q4_K) X(LM_Q5_K) X(LM_Q6_K) X(LM_I4_G128) X(LM_F8_E4M3)

static const lm_op_case lm_op_cases[] = {
    /* get_rows: s = {ne0 (multiple of 256), table rows, n ids}; fp0 = scale */
#define GR(T) {"get_rows", LM_OP_GET_ROWS, T, {512, 9, 7}, {0}, {1.7f}, TOL_F32},
    LM_QTYPES(GR)
#undef GR
    {"get_rows_f32_odd", LM_OP_GET_ROWS, LM_F32, {37, 5, 3}, {0}, {1.0f}, TOL_F32},

    /* set_rows: s = {ne0, dst rows, n}; type = dst type; fp0 = source scale (0 = 1) */
    {"set_rows", LM_OP_SET_ROWS, LM_F32, {37, 11, 5}, {0}, {0}, TOL_F32},
    {"set_rows", LM_OP_SET_ROWS, LM_F16, {37, 11, 5}, {0}, {0}, TOL_F16},
    {"set_rows", LM_OP_SET_ROWS, LM_BF16, {64, 11, 5}, {0}, {0}, 1e-5},
    {"set_rows", LM_OP_SET_ROWS, LM_I32, {1, 23, 7}, {0}, {0}, TOL_EXACT},
    /* the 8-bit KV caches: a backend's rounding may differ from the reference's at exact ties
       (one quant step on rare elements), hence not TOL_EXACT */
    {"set_rows", LM_OP_SET_ROWS, LM_Q8_0, {96, 13, 6}, {0}, {0}, TOL_Q8},
    {"set_rows", LM_OP_SET_ROWS, LM_E4M3, {68, 9, 4}, {0}, {0}, TOL_Q8},
    {"set_rows_saturate", LM_OP_SET_ROWS, LM_E4M3, {128, 5, 3}, {0}, {300.0f}, TOL_Q8},
    {"set_rows_subnormal", LM_OP_SET_ROWS, LM_E4M3, {64, 5, 3}, {0}, {0.005f}, TOL_Q8},
    {"set_rows_wide", LM_OP_SET_ROWS, LM_Q8_0, {256, 7, 3}, {0}, {1000.0f}, TOL_Q8},

    /* rms_norm: s = {ne0, ne1, ne2}; ip0 = with weight, ip1 = with residual; fp0 = eps */
    {"rms_norm", LM_OP_RMS_NORM, LM_F32, {1, 3, 1}, {1, 0}, {1e-6f}, TOL_F32},
    {"rms_norm", LM_OP_RMS_NORM, LM_F32, {37, 5, 1}, {0, 0}, {1e-6f}, TOL_F32},
    {"rms_norm", LM_OP_RMS_NORM, LM_F32, {1000, 3, 2}, {1, 1}, {1e-6f}, TOL_F32},
    {"rms_norm", LM_OP_RMS_NORM, LM_F32, {4097, 2, 1}, {1, 0}, {1e-5f}, TOL_F32},
    {"rms_norm", LM_OP_RMS_NORM, LM_F32, {256, 4, 3}, {0, 1}, {1e-6f}, TOL_F32},

    /* matmul: s = {K, M, N, x column offset (0 = contiguous x)} */
#define MM(T, K, M, N, tol) {"matmul", LM_OP_MATMUL, T, {K, M, N, 0}, {0}, {0}, tol},
    MM(LM_F32, 37, 5, 3, TOL_F32)
    MM(LM_F32, 1000, 33, 1, TOL_F32)
    MM(LM_F16, 96, 17, 5, TOL_F32)
    MM(LM_BF16, 96, 17, 2, TOL_F32)
    MM(LM_Q4_0, 96, 17, 1, TOL_ACT16)
    MM(LM_Q4_0, 288, 33, 5, TOL_ACT16)
    MM(LM_Q4_1, 288, 17, 3, TOL_ACT16)
    MM(LM_Q5_0, 640, 35, 1, TOL_ACT16)
    MM(LM_Q5_0, 96, 19, 17, TOL_ACT16)
    MM(LM_Q5_1, 160, 9, 4, TOL_ACT16)
    MM(LM_Q8_0, 640, 41, 1, TOL_ACT16)
    MM(LM_Q8_0, 224, 7, 9, TOL_ACT16)
    MM(LM_Q2_K, 512, 13, 3, TOL_ACT16)
    MM(LM_Q3_K, 512, 13, 3, TOL_ACT16)
    MM(LM_Q4_K, 256, 17, 1, TOL_ACT16)
    MM(LM_Q4_K, 768, 35, 6, TOL_ACT16)
    MM(LM_Q5_K, 512, 17, 3, TOL_ACT16)
    MM(LM_Q6_K, 256, 19, 1, TOL_ACT16)
    MM(LM_Q6_K, 1024, 33, 5, TOL_ACT16)
    {"matmul_strided_x", LM_OP_MATMUL, LM_F32, {64, 9, 4, 32}, {0}, {0}, TOL_F32},
    /* prefill-sized: GPU backends take their tiled GEMM here (edges of the 64 x 64 tiles too) */
    MM(LM_Q5_0, 320, 70, 67, TOL_ACT16)
    /* CUDA tensor-core GEMM: partial tiles in M and N, several K steps, every weight reader
       (repacked planes, Q4_K / Q5_K in place, GGUF-layout chunks for the rest) */
    MM(LM_Q5_0, 640, 67, 33, TOL_TC)
    MM(LM_Q4_0, 384, 130, 70, TOL_TC)
    MM(LM_Q8_0, 256, 64, 64, TOL_TC)
    MM(LM_Q6_K, 512, 71, 129, TOL_TC)
    MM(LM_Q5_K, 768, 40, 20, TOL_TC)
    MM(LM_I4_G128, 640, 66, 17, TOL_TC)
    MM(LM_F8_E4M3, 384, 65, 65, TOL_TC)
    MM(LM_Q4_K, 512, 65, 40, TOL_TC)
    MM(LM_Q6_K, 256, 130, 9, TOL_TC)
    /* q4_0 rows of whole 256-value blocks take the q8s dots and the int8 GEMM (AVX-512 VNNI) */
    MM(LM_Q4_0, 512, 19, 1, TOL_ACT16)
    MM(LM_Q4_0, 768, 21, 3, TOL_ACT16)
    MM(LM_Q4_0, 256, 33, 40, TOL_TC)
    /* q4_0 / q8_0 rows of small models (K = 576: 16-bit dots) and q8_0's whole 256-value blocks
       (q8s dots, AVX-512 VNNI) */
    MM(LM_Q4_0, 576, 23, 1, TOL_ACT16)
    MM(LM_Q8_0, 576, 29, 2, TOL_ACT16)
    MM(LM_Q8_0, 512, 17, 1, TOL_ACT16)
    MM(LM_Q8_0, 1536, 9, 3, TOL_ACT16)
    /* the CPU's f32 GEMM for the types with q8s dots starts at 128 columns */
    MM(LM_Q4_K, 256, 19, 130, TOL_TC)
    MM(LM_Q5_K, 512, 11, 128, TOL_TC)
    MM(LM_F16, 96, 33, 100, TOL_F32)
    MM(LM_F32, 64, 21, 11, TOL_F32)
    MM(LM_BF16, 96, 13, 10, TOL_F32)
    MM(LM_Q4_0, 96, 19, 12, TOL_ACT16)
    MM(LM_Q4_1, 128, 11, 13, TOL_TC)
    MM(LM_Q5_1, 96, 9, 14, TOL_ACT16)
    MM(LM_Q8_0, 160, 23, 10, TOL_ACT16)
    MM(LM_Q2_K, 256, 15, 11, TOL_TC)
    MM(LM_Q3_K, 256, 10, 12, TOL_TC)
    MM(LM_Q5_K, 256, 9, 17, TOL_TC)
    /* lumen's own formats: decode, a few columns, prefill */
    MM(LM_I4_G128, 256, 17, 1, TOL_ACT16)
    MM(LM_I4_G128, 384, 33, 5, TOL_ACT16)
    MM(LM_I4_G128, 256, 19, 12, TOL_TC)
    MM(LM_F8_E4M3, 256, 17, 1, TOL_ACT16)
    MM(LM_F8_E4M3, 640, 35, 3, TOL_ACT16)
    MM(LM_F8_E4M3, 128, 21, 10, TOL_TC)
#undef MM
    {"matmul_strided_x", LM_OP_MATMUL, LM_Q8_0, {64, 9, 4, 32}, {0}, {0}, TOL_ACT16},

    /* matmul_id: s = {K, M, E, J, N, x ne1 (1 = shared input)} */
    {"matmul_id", LM_OP_MATMUL_ID, LM_F32, {64, 9, 6, 2, 3, 1}, {0}, {0}, TOL_F32},
    {"matmul_id", LM_OP_MATMUL_ID, LM_F16, {96, 7, 5, 3, 4, 3}, {0}, {0}, TOL_F32},
    {"matmul_id", LM_OP_MATMUL_ID, LM_Q4_0, {96, 33, 8, 2, 5, 1}, {0}, {0}, TOL_ACT16},
    {"matmul_id", LM_OP_MATMUL_ID, LM_Q5_0, {160, 11, 4, 2, 3, 2}, {0}, {0}, TOL_ACT16},
    {"matmul_id", LM_OP_MATMUL_ID, LM_Q8_0, {64, 40, 7, 3, 2, 3}, {0}, {0}, TOL_ACT16},
    {"matmul_id", LM_OP_MATMUL_ID, LM_Q4_K, {256, 17, 6, 2, 3, 1}, {0}, {0}, TOL_ACT16},
    {"matmul_id", LM_OP_MATMUL_ID, LM_Q6_K, {256, 9, 5, 3, 2, 3}, {0}, {0}, TOL_ACT16},
    {"matmul_id", LM_OP_MATMUL_ID, LM_Q3_K, {256, 9, 5, 2, 2, 1}, {0}, {0}, TOL_ACT16},
    {"matmul_id", LM_OP_MATMUL_ID, LM_BF16, {64, 5, 4, 2, 2, 1}, {0}, {0}, TOL_F32},
    {"matmul_id", LM_OP_MATMUL_ID, LM_Q4_1, {96, 7, 5, 2, 3, 2}, {0}, {0}, TOL_ACT16},
    {"matmul_id", LM_OP_MATMUL_ID, LM_Q5_1, {64, 9, 4, 3, 2, 1}, {0}, {0}, TOL_ACT16},
    {"matmul_id", LM_OP_MATMUL_ID, LM_Q2_K, {256, 7, 5, 2, 2, 2}, {0}, {0}, TOL_ACT16},
    {"matmul_id", LM_OP_MATMUL_ID, LM_Q5_K, {256, 9, 4, 2, 3, 1}, {0}, {0}, TOL_ACT16},
    {"matmul_id", LM_OP_MATMUL_ID, LM_I4_G128, {256, 9, 5, 2, 3, 2}, {0}, {0}, TOL_ACT16},
    {"matmul_id", LM_OP_MATMUL_ID, LM_F8_E4M3, {128, 11, 4, 3, 2, 1}, {0}, {0}, TOL_ACT16},
    /* prefill-sized: experts with >= 16 tokens take the CPU's f32 GEMM, the others the dot path */
    {"matmul_id_prefill", LM_OP_MATMUL_ID, LM_Q4_K, {256, 40, 4, 2, 40, 2}, {0}, {0}, TOL_TC},
    {"matmul_id_prefill", LM_OP_MATMUL_ID, LM_Q8_0, {96, 33, 3, 2, 30, 1}, {0}, {0}, TOL_TC},
    {"matmul_id_prefill", LM_OP_MATMUL_ID, LM_Q4_K, {256, 24, 3, 2, 200, 2}, {0}, {0}, TOL_TC},
    {"matmul_id_prefill", LM_OP_MATMUL_ID, LM_Q4_0, {512, 20, 3, 2, 30, 2}, {0}, {0}, TOL_TC},

    /* rope: s = {d, heads, tokens}; ip = {n_pairs, freq_dim, mode, with factors}; fp = {theta, freq_scale} */
    {"rope_neox", LM_OP_ROPE, LM_F32, {8, 3, 5}, {4, 8, 0, 0}, {10000.0f, 1.0f}, TOL_F32},
    {"rope_neox", LM_OP_ROPE, LM_F32, {256, 2, 3}, {128, 256, 0, 0}, {10000.0f, 1.0f}, TOL_F32},
    {"rope_norm", LM_OP_ROPE, LM_F32, {64, 3, 4}, {32, 64, 1, 0}, {500000.0f, 0.25f}, TOL_F32},
    {"rope_proportional", LM_OP_ROPE, LM_F32, {512, 2, 3}, {64, 512, 0, 0}, {1e6f, 1.0f}, TOL_F32},
    {"rope_factors", LM_OP_ROPE, LM_F32, {512, 2, 3}, {256, 512, 0, 1}, {1e6f, 1.0f}, TOL_F32},

    /* attention: s = {dk, dv, H, Hkv, n tokens, cells per seq}; type = KV type;
       ip = {n_seq, ring, window, k_from_v, positions offset, cells per page (0: one page per
       sequence; paged caches scatter pages at random, see op_harness.c)}; fp = {scale, softcap} */
    {"attn_decode", LM_OP_ATTENTION, LM_F32, {64, 64, 4, 1, 1, 16}, {1, 0, 0, 0, 0}, {0.125f, 0}, TOL_F32},
    {"attn_prefill_gqa", LM_OP_ATTENTION, LM_F16, {64, 64, 4, 2, 9, 16}, {1, 0, 0, 0, 0}, {0.125f, 0}, TOL_F16},
    {"attn_two_seqs", LM_OP_ATTENTION, LM_F16, {32, 32, 8, 8, 6, 24}, {2, 0, 0, 0, 0}, {0.2f, 0}, TOL_F16},
    {"attn_window_ring", LM_OP_ATTENTION, LM_F16, {64, 64, 4, 2, 5, 40}, {2, 1, 8, 0, 100}, {0.125f, 0}, TOL_F16},
    {"attn_bf16_softcap", LM_OP_ATTENTION, LM_BF16, {64, 32, 2, 1, 3, 20}, {1, 0, 0, 0, 0}, {0.5f, 20.0f}, TOL_F16},
    {"attn_hd256", LM_OP_ATTENTION, LM_F16, {256, 256, 4, 1, 3, 33}, {1, 0, 0, 0, 0}, {0.0625f, 0}, TOL_F16},
    {"attn_hd512_kv", LM_OP_ATTENTION, LM_F16, {512, 512, 4, 2, 2, 37}, {1, 0, 0, 1, 0}, {1.0f, 0}, TOL_F16},
    {"attn_hd512_kv_f32", LM_OP_ATTENTION, LM_F32, {512, 512, 8, 2, 3, 21}, {2, 0, 0, 1, 0}, {1.0f, 0}, TOL_F32},
    {"attn_split_decode", LM_OP_ATTENTION, LM_F16, {128, 128, 2, 1, 1, 1500}, {1, 0, 0, 0, 1100}, {0.09f, 0}, TOL_F16},
    {"attn_split_ring", LM_OP_ATTENTION, LM_F16, {64, 64, 4, 1, 2, 1024}, {1, 1, 700, 0, 5000}, {0.125f, 0}, TOL_F16},
    {"attn_split_kv", LM_OP_ATTENTION, LM_F16, {512, 512, 8, 1, 1, 900}, {1, 0, 0, 1, 600}, {1.0f, 0}, TOL_F16},
    /* 8-bit caches (q8_0 blocks, plain e4m3) */
    {"attn_q8_gqa", LM_OP_ATTENTION, LM_Q8_0, {64, 64, 4, 2, 5, 24}, {1, 0, 0, 0, 0}, {0.125f, 0}, TOL_F16},
    {"attn_q8_ring", LM_OP_ATTENTION, LM_Q8_0, {96, 32, 6, 3, 4, 40}, {2, 1, 9, 0, 100}, {0.1f, 0}, TOL_F16},
    {"attn_q8_kv_hd512", LM_OP_ATTENTION, LM_Q8_0, {512, 512, 4, 1, 2, 29}, {1, 0, 0, 1, 0}, {1.0f, 0}, TOL_F16},
    {"attn_q8_split", LM_OP_ATTENTION, LM_Q8_0, {256, 256, 8, 2, 1, 1100}, {1, 0, 0, 0, 900}, {0.0625f, 0}, TOL_F16},
    {"attn_e4m3_gqa", LM_OP_ATTENTION, LM_E4M3, {64, 48, 4, 1, 3, 21}, {1, 0, 0, 0, 0}, {0.125f, 30.0f}, TOL_F16},
    {"attn_e4m3_kv_two_seqs", LM_OP_ATTENTION, LM_E4M3, {256, 256, 4, 2, 4, 19}, {2, 0, 0, 1, 0}, {1.0f, 0}, TOL_F16},
    {"attn_e4m3_split", LM_OP_ATTENTION, LM_E4M3, {128, 128, 2, 1, 1, 1300}, {1, 0, 0, 0, 1000}, {0.09f, 0}, TOL_F16},
    /* prefill-sized batches (>= 16 tokens, > 2 per sequence): CUDA's tensor-core flash attention
       (f16 Q / K / V / P, class TOL_FA): partial row blocks and cell tiles, GQA, K=V, rings with
       windows, interleaved sequences, every 16-bit and 8-bit cache type */
    {"attn_tc_hd256_gqa", LM_OP_ATTENTION, LM_F16, {256, 256, 8, 2, 40, 90}, {1, 0, 0, 0, 0}, {0.0625f, 0}, TOL_FA},
    {"attn_tc_hd512_kv", LM_OP_ATTENTION, LM_F16, {512, 512, 8, 2, 20, 70}, {1, 0, 0, 1, 0}, {1.0f, 0}, TOL_FA},
    {"attn_tc_ring_two_seqs", LM_OP_ATTENTION, LM_F16, {256, 256, 4, 2, 36, 64}, {2, 1, 20, 0, 100}, {0.0625f, 0}, TOL_FA},
    {"attn_tc_window", LM_OP_ATTENTION, LM_F16, {256, 256, 2, 1, 24, 80}, {1, 0, 16, 0, 0}, {0.0625f, 0}, TOL_FA},
    {"attn_tc_q8_kv_hd512", LM_OP_ATTENTION, LM_Q8_0, {512, 512, 4, 1, 17, 45}, {1, 0, 0, 1, 0}, {1.0f, 0}, TOL_FA},
    {"attn_tc_e4m3_softcap", LM_OP_ATTENTION, LM_E4M3, {128, 128, 6, 2, 33, 50}, {2, 0, 0, 0, 0}, {0.09f, 30.0f}, TOL_FA},
    {"attn_tc_bf16_hd64", LM_OP_ATTENTION, LM_BF16, {64, 64, 4, 4, 19, 40}, {1, 0, 0, 0, 0}, {0.125f, 0}, TOL_FA},
    {"attn_tc_e4m3_kv_ring", LM_OP_ATTENTION, LM_E4M3, {512, 512, 2, 1, 18, 48}, {1, 1, 30, 1, 200}, {1.0f, 0}, TOL_FA},
    /* prefill over several blocks of cells (the CPU's tiled attention walks 128 at a time):
       interleaved sequences, a ring with a window across block edges, K=V keys over 300 cells */
    {"attn_prefill_blocks", LM_OP_ATTENTION, LM_F16, {128, 128, 4, 2, 12, 400}, {2, 0, 0, 0, 0}, {0.088f, 0}, TOL_FA},
    {"attn_prefill_ring_blocks", LM_OP_ATTENTION, LM_Q8_0, {64, 64, 6, 2, 30, 300}, {1, 1, 200, 0, 900}, {0.125f, 0}, TOL_FA},
    /* paged caches (the KV pool of full-attention layers): odd page sizes, logical pages past a
       sequence's end on the null page, decode / split-K / tensor-core prefill / tiled CPU prefill */
    {"attn_paged_decode", LM_OP_ATTENTION, LM_F16, {64, 64, 4, 2, 2, 100}, {2, 0, 0, 0, 0, 16}, {0.125f, 0}, TOL_F16},
    {"attn_paged_gqa_odd", LM_OP_ATTENTION, LM_E4M3, {96, 32, 6, 3, 5, 77}, {2, 0, 0, 0, 0, 24}, {0.1f, 0}, TOL_F16},
    {"attn_paged_split", LM_OP_ATTENTION, LM_Q8_0, {128, 128, 2, 1, 1, 1500}, {1, 0, 0, 0, 1100, 64}, {0.09f, 0}, TOL_F16},
    {"attn_paged_split_kv", LM_OP_ATTENTION, LM_F16, {512, 512, 8, 1, 2, 900}, {2, 0, 0, 1, 600, 128}, {1.0f, 0}, TOL_F16},
    {"attn_paged_tc_kv", LM_OP_ATTENTION, LM_F16, {256, 256, 4, 1, 20, 90}, {1, 0, 0, 1, 0, 32}, {0.0625f, 0}, TOL_FA},
    {"attn_paged_tc_window", LM_OP_ATTENTION, LM_BF16, {128, 128, 4, 2, 36, 130}, {2, 0, 40, 0, 0, 16}, {0.09f, 0}, TOL_FA},
    {"attn_paged_blocks", LM_OP_ATTENTION, LM_F16, {128, 128, 4, 2, 12, 400}, {2, 0, 0, 0, 0, 48}, {0.088f, 0}, TOL_FA},
    {"attn_prefill_kv_blocks", LM_OP_ATTENTION, LM_BF16, {256, 256, 2, 1, 9, 300}, {1, 0, 0, 1, 0}, {1.0f, 0}, TOL_FA},

    /* elementwise: s = {ne0, ne1, ne2}; ip0 = broadcast second operand; fp0 = scalar; fp1 = input scale */
    {"geglu", LM_OP_GEGLU, LM_F32, {37, 5, 2}, {0}, {0}, 1e-9},
    {"geglu_wide", LM_OP_GEGLU, LM_F32, {203, 9, 1}, {0}, {0, 30.0f}, 1e-9},
    {"swiglu", LM_OP_SWIGLU, LM_F32, {37, 5, 2}, {0}, {0}, 1e-9},
    {"swiglu_wide", LM_OP_SWIGLU, LM_F32, {203, 9, 1}, {0}, {0, 30.0f}, 1e-9},
    {"add", LM_OP_ADD, LM_F32, {37, 5, 2}, {0}, {0}, TOL_F32},
    {"add_bcast", LM_OP_ADD, LM_F32, {33, 7, 1}, {1}, {0}, TOL_F32},
    {"mul", LM_OP_MUL, LM_F32, {1001, 3, 1}, {0}, {0}, TOL_F32},
    {"mul_bcast", LM_OP_MUL, LM_F32, {64, 9, 2}, {1}, {0}, TOL_F32},
    {"scale", LM_OP_SCALE, LM_F32, {31, 4, 3}, {0}, {-0.37f}, TOL_F32},
    {"softcap", LM_OP_SOFTCAP, LM_F32, {1000, 3, 1}, {0}, {30.0f}, 1e-9},

    /* topk: s = {m, n}; ip0 = k; ip1 = with ties */
    {"topk", LM_OP_TOPK, LM_F32, {8, 5}, {2, 0}, {0}, TOL_EXACT},
    {"topk", LM_OP_TOPK, LM_F32, {128, 7}, {8, 0}, {0}, TOL_EXACT},
    {"topk_ties", LM_OP_TOPK, LM_F32, {100, 3}, {5, 1}, {0}, TOL_EXACT},
    {"argmax", LM_OP_TOPK, LM_F32, {262144, 2}, {1, 0}, {0}, TOL_EXACT},

    /* moe_weights: s = {E, k, n}; ip0 = with expert scale */
    {"moe_weights", LM_OP_MOE_WEIGHTS, LM_F32, {8, 2, 5}, {0}, {0}, 1e-9},
    {"moe_weights", LM_OP_MOE_WEIGHTS, LM_F32, {128, 8, 3}, {1}, {0}, 1e-9},
    /* moe_sum: s = {d, k, n} */
    {"moe_sum", LM_OP_MOE_SUM, LM_F32, {33, 3, 4}, {0}, {0}, TOL_F32},
    /* cpy: s = {ne0, ne1}; type = dst type; ip0 = source type */
    {"cpy", LM_OP_CPY, LM_F16, {37, 5}, {LM_F32}, {0}, TOL_F16},
    {"cpy", LM_OP_CPY, LM_F32, {37, 5}, {LM_F16}, {0}, TOL_F32},
    {"cpy", LM_OP_CPY, LM_F32, {64, 3}, {LM_BF16}, {0}, TOL_F32},
    {"cpy", LM_OP_CPY, LM_BF16, {29, 3}, {LM_F32}, {0}, TOL_F16},
    {"cpy", LM_OP_CPY, LM_F16, {19, 4}, {LM_BF16}, {0}, TOL_F16},
};
/* clang-format on */

#define LM_N_OP_CASES ((int)(sizeof lm_op_cases / sizeof lm_op_cases[0]))

#endif /* LM_OP_CASES_H */
