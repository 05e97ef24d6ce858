/*
 * models.h — forward passes of the supported model families, written against ops.h only.
 */
#ifndef LM_MODELS_H
#define LM_MODELS_H

#include "../kv.h"

/* Inputs of one step on one device (views into that device's copy of the step buffer). */
typedef struct lm_step_io {
    const lm_tensor *tokens;            /* i32 [n_tokens] */
    const lm_tensor *pos;               /* i32 [n_tokens] */
    const lm_tensor *seq;               /* i32 [n_tokens] */
    const lm_tensor *cells[LM_KV_KINDS]; /* i32 [n_tokens]: cell of each token per kind */
    const lm_tensor *out_ids;           /* i32 [n_outputs]: rows that need logits */
} lm_step_io;

/* Inputs of one step: the same values on every device of the graph (io[d] for device d). The
 * forward pass runs each stage on the device of its weights (lm_graph_switch moves the hidden
 * state when that changes). */
typedef struct lm_step {
    int32_t n_tokens;
    int32_t n_outputs;
    lm_step_io io[LM_GRAPH_MAX_DEVS];
} lm_step;

/* Gemma 3 / Gemma 4 (dense, MoE, E models). Returns the logits [n_vocab, n_outputs] (an arena
 * tensor, valid until the next step) or NULL when n_outputs == 0. Errors latch into g. */
lm_tensor *lm_gemma_forward(const lm_model *m, lm_kv *kv, lm_graph *g, const lm_step *s);

#endif /* LM_MODELS_H */
