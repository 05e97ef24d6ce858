/*
 * golden.h — HF golden-logit fixtures (tests/fixtures/hf, written by tools/gen_hf_fixtures.py)
 * and the runners that feed them to a model on any backend and compare the logits.
 */
#ifndef LM_TEST_GOLDEN_H
#define LM_TEST_GOLDEN_H

#include "lumen.h"

#include <stdint.h>

#define TOL 1e-4

typedef struct golden {
    uint32_t n_vocab, n_seq;
    uint32_t n_tok[8];
    int32_t *tok[8];
    float *logits[8];
    void *blob;
} golden;

void load_golden(const char *name, golden *g);
lm_model *load_model(const char *name, const char *backend);
/* feed every sequence in chunks of `chunk` tokens; compare all logits; returns the worst
 * max|d|/max|ref| (and expects each sequence <= TOL) */
double run_chunks(const char *name, lm_model *m, const golden *g, uint32_t chunk);
/* all sequences interleaved in one batch, each with its own sequence id */
double run_interleaved(const char *name, lm_model *m, const golden *g);

/* a model file on a backend */
lm_model *load_model_path(const char *path, const char *backend);
/* teacher-forced logits of (the first 64 tokens of) sequence 0, KV in f32; malloc'ed */
float *golden_logits_seq0(lm_model *m, const golden *g);
/* the same with the KV cache in `kv`, fed in chunks of `chunk` tokens (1 = token by token) */
float *golden_logits_seq0_kv(lm_model *m, const golden *g, lm_kv_type kv, uint32_t chunk);
/* fixture `name` with KV type `kv` on `backend` against the CPU backend with the same KV type:
   max|d|/max|ref| of the teacher-forced logits of sequence 0 */
double golden_kv_vs_cpu(const char *name, lm_kv_type kv, const char *backend, uint32_t chunk);
/* fixture `name` rewritten by lm_model_quantize as `type` into a temporary file (static buffer) */
const char *golden_quantized(const char *name, const char *type, bool per_channel);

/* fixture `name` as `type` on `backend` against the same file on the CPU backend: max|d|/max|ref|
   of the teacher-forced logits of sequence 0 */
double golden_quantized_vs_cpu(const char *name, const char *type, const char *backend);

/* Gemma 3 270M Q4_K_M (tests/fixtures/real) on `backend` against the CPU backend on the same file:
   teacher-forced logits over the first n_positions tokens of the real-text fixture (mean KL <=
   0.001, top-1 agreement), then greedy_steps greedy tokens with the backend in LM_OUTPUT_ARGMAX
   mode, identical to the CPU's. The caller skips when the model is not installed. */
void real_model_vs_cpu(const char *backend, int32_t n_positions, int32_t greedy_steps);

/* Split execution: the model file at `path` with the last `gpu_layers` layers and the head on
   `backend` (-1: the automatic plan) and the rest on the CPU backend, tensors matching
   `cpu_tensors` (NULL: none) kept on the CPU, against the CPU backend alone. Feeds toks[0..n)
   in chunks of `chunk` with logits for every token (max|d|/max|ref| over all rows returned),
   then `greedy` greedy steps whose tokens must be identical. The split is checked to be real
   (layers on both sides as asked). */
double split_vs_cpu(const char *path, const char *backend, int32_t gpu_layers, const char *cpu_tensors,
                    const int32_t *toks, int32_t n, int32_t chunk, int32_t greedy);
/* a split point of a tiny fixture on `backend` (split_vs_cpu on the fixture's first sequence, at
   most 40 tokens in chunks of 5, then 6 greedy tokens), expected within TOL of the CPU alone */
void split_fixture(const char *backend, const char *name, int32_t gpu_layers, const char *cpu_tensors);
/* Sequence operations on the gemma4_dense fixture (sliding window 8, ring of 32 cells with
   n_batch 4) on `backend` (gpu_layers as in lm_model_params; -1: the whole model there):
   a removed tail then a different continuation, a prefix copied to another sequence (also after
   the ring wrapped), each against a fresh context fed the same tokens; a removal the ring can no
   longer serve fails and changes nothing. */
void seq_ops_check(const char *backend, int32_t gpu_layers);
/* The full layers' page pool on the same fixture: 4 sequences in 6 pages of 16 cells; prefix
   copies share pages, writes and removals copy a shared page first, a full pool refuses a new
   page with LM_STATUS_CONTEXT_FULL, cleared sequences return their pages; every continuation
   against a fresh (unpaged) context fed the same tokens. */
void paged_pool_check(const char *backend, int32_t gpu_layers);
/* tests/fixtures/hf/NAME.gguf (static buffer) */
const char *golden_fixture_path(const char *name);
/* the tokens of the real-text fixture (malloc'ed) */
int32_t *real_text_tokens(int32_t *n);

#endif
