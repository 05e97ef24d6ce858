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

/* The live activations of a forward pass (the residual h, Gemma 4 E models' per-layer inputs
   ple), and which devices have their cell positions written. */
typedef struct lm_fwd {
    lm_graph *g;
    lm_kv *kv;
    const lm_step *s;
    lm_tensor *h, *ple;
    bool pos_done[LM_GRAPH_MAX_DEVS];
} lm_fwd;

/* Run the next stage on the device of its weight w: move the hidden state (and the per-layer
   inputs) there, and write the step's cell positions into that device's copy the first time
   it runs attention. Returns the step inputs on that device. */
const lm_step_io *lm_fwd_stage(lm_fwd *f, const lm_tensor *w);

/* The head: output(Norm(h)) for the step's output rows, on the head's device; NULL when the step
   has no outputs. */
lm_tensor *lm_fwd_logits(lm_fwd *f, const lm_model *m);

/* views of t reshaped to 3 / 2 dims */
lm_tensor *lm_view3(lm_graph *g, const lm_tensor *t, int64_t ne0, int64_t ne1, int64_t ne2);
lm_tensor *lm_view2(lm_graph *g, const lm_tensor *t, int64_t ne0, int64_t ne1);

/* Gemma 3 / Gemma 4 (dense, MoE, E models). Returns the logits [n_vocab, n_outputs] (an arena
 * tensor, valid until the next step) or NULL when n_outputs == 0. Errors latch into g. */
lm_tensor *lm_gemma_forward(const lm_model *m, lm_kv *kv, lm_graph *g, const lm_step *s);

/* Llama-family decoders (llama: Llama 2/3, SmolLM2, Mistral without sliding windows; qwen2:
 * Qwen2 / Qwen2.5, DeepSeek-R1-Distill-Qwen): pre-norm residual blocks, GQA attention with
 * optional q/k/v biases, SwiGLU MLP. Same contract as lm_gemma_forward. */
lm_tensor *lm_llama_forward(const lm_model *m, lm_kv *kv, lm_graph *g, const lm_step *s);

#endif /* LM_MODELS_H */
