/*
 * models.h — forward passes of the supported model families, written against ops.h only.
 */
#ifndef LM_MODELS_H
#define LM_MODELS_H

#include "../kv.h"

/* Inputs of one step, as device tensors (views into the context's step buffer). */
typedef struct lm_step {
    int32_t n_tokens;
    int32_t n_outputs;
    const lm_tensor *tokens;            /* i32 [n_tokens] */
    const lm_tensor *pos;               /* i32 [n_tokens] */
    const lm_tensor *seq;               /* i32 [n_tokens] */
    const lm_tensor *cells[LM_KV_KINDS]; /* i32 [n_tokens]: cell of each token per kind */
    const lm_tensor *out_ids;           /* i32 [n_outputs]: rows that need logits */
} lm_step;

/* Gemma 3 / Gemma 4 (dense, MoE, E models). Returns the logits [n_vocab, n_outputs] (an arena
 * tensor, valid until the next step) or NULL when n_outputs == 0. Errors latch into g. */
lm_tensor *lm_gemma_forward(const lm_model *m, lm_kv *kv, lm_graph *g, const lm_step *s);

#endif /* LM_MODELS_H */
