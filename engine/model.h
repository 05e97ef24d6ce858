/*
 * model.h — lm_model: hyper-parameters and per-layer configuration read from GGUF metadata,
 * weight tensors bound to a device, the vocabulary. Layer types and per-layer shapes are read
 * from the file (never assumed from the model size).
 */
#ifndef LM_MODEL_H
#define LM_MODEL_H

#include "backend.h"
#include "gguf.h"
#include "ops.h"
#include "tokenizer.h"

typedef enum lm_arch {
    LM_ARCH_GEMMA3 = 0,
    LM_ARCH_GEMMA4 = 1,
    LM_ARCH_LLAMA = 2, /* Llama 2/3, SmolLM2 (rope on adjacent pairs) */
    LM_ARCH_QWEN2 = 3, /* Qwen2 / Qwen2.5 (q/k/v biases, rope on halves) */
} lm_arch;

/* The Llama-family decoders (models/llama.c). */
#define LM_ARCH_IS_LLAMA(a) ((a) == LM_ARCH_LLAMA || (a) == LM_ARCH_QWEN2)

enum { LM_KV_KIND_SWA = 0, LM_KV_KIND_FULL = 1, LM_KV_KINDS = 2 };

typedef struct lm_layer {
    /* configuration */
    bool sliding;          /* sliding-window layer (else global / full attention) */
    int32_t n_head_kv;
    int32_t head_dim;      /* q/k head dim (256 sliding / 512 full in Gemma 4) */
    int32_t head_dim_v;
    int32_t n_ff;          /* dense MLP width (may differ per layer: E2B double-wide) */
    bool k_eq_v;           /* no attn_v: V = rmsnorm0(K projection); the cache stores V only */
    int32_t kv_layer;      /* layer whose KV cache this layer reads (itself, or the donor) */
    float out_scale;       /* layer_scalar (1 if absent) */
    lm_rope_params rope;
    bool rope_factors;     /* use model rope_freqs as frequency factors */
    const lm_tensor *rope_freqs; /* the model's rope_freqs on this layer's device (rope_factors) */
    int dev;               /* device (index into lm_model.devs) of the layer's attention + dense FFN
                              and KV cache (its experts may be elsewhere) */
    /* weights (NULL when absent) */
    lm_tensor *attn_norm, *wq, *wk, *wv, *q_norm, *k_norm, *wo, *post_attn_norm;
    lm_tensor *ffn_norm, *ffn_gate, *ffn_up, *ffn_down, *post_ffw_norm;
    lm_tensor *bq, *bk, *bv, *bo; /* projection biases (Qwen2: q, k, v) */
    /* MoE (Gemma 4 26B-A4B) */
    lm_tensor *gate_inp, *gate_inp_scale, *exp_scale, *gate_up_exps, *gate_exps, *up_exps, *down_exps;
    lm_tensor *pre_ffw_norm_2, *post_ffw_norm_1, *post_ffw_norm_2;
    /* per-layer inputs (Gemma 4 E models) */
    lm_tensor *inp_gate, *proj, *post_norm;
} lm_layer;

typedef struct lm_hparams {
    int32_t n_vocab, n_embd, n_layer, n_head, n_ctx_train;
    float eps;
    int32_t window;        /* sliding window W */
    float attn_scale;
    float emb_scale;       /* token embedding multiplier */
    float final_softcap;   /* 0 = none */
    int32_t n_expert, n_expert_used, n_ff_exp;
    int32_t n_embd_per_layer; /* PLE width P (0 = none) */
    int32_t n_kv_shared;
} lm_hparams;

struct lm_model {
    lm_arch arch;
    char arch_name[32];
    char name[128];
    lm_hparams hp;
    lm_layer *layers;
    lm_tensor *tok_embd, *output, *output_norm, *rope_freqs;
    lm_tensor *ple_tok_embd, *ple_proj, *ple_proj_norm;

    lm_gguf *gguf;
    lm_vocab *vocab;
    lm_backend *be;      /* the main device (devs[0]) */
    /* split execution: devs[0] is the backend the model was loaded for, devs[1] (when present)
       the CPU backend running the stages the plan left on the host. A stage's weights, its KV
       cache and its ops live on one device; activations cross at stage boundaries. */
    lm_backend *devs[LM_GRAPH_MAX_DEVS];
    int n_dev;
    int32_t n_gpu_layers;            /* layers on devs[0] when split (n_layer otherwise) */
    lm_buffer **weights; /* buffers holding (or wrapping) the tensor data; one on the CPU (the mapped
                            file), several on devices with an allocation size limit */
    int n_weights;
    lm_buffer *aux[LM_GRAPH_MAX_DEVS]; /* per device: f32 copies of vectors stored in other types */
    lm_tensor *tensors; /* bound tensors, one per GGUF tensor used */
    int64_t n_tensors;
    uint64_t n_params, weight_bytes;
    bool vocab_only;
};

/* Context parameters with defaults filled in and checked against the model (context.c). */
lm_status lm_context_params_normalize(const lm_model *m, const lm_context_params *in, lm_context_params *out);
/* The cache's element type for a KV type. */
lm_dtype lm_kv_dtype(lm_kv_type t);

/* The layer of a tensor named "blk.N.…", or -1. */
int lm_tensor_layer(const char *name);

/* Bytes of KV cache per cell for each layer kind, as the context allocates it. */
uint64_t lm_model_kv_bytes_per_cell(const lm_model *m, int kind, lm_dtype kv_type);

#endif /* LM_MODEL_H */
