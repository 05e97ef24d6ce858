/*
 * lumen.h — the one public header of lumen, a GPU-first LLM inference engine.
 *
 * Conventions
 *   - Every symbol is prefixed lm_ / LM_.
 *   - Handles (lm_model, lm_context, lm_sampler) are opaque; each *_free accepts NULL.
 *   - Functions that can fail return lm_status. On failure lm_last_error() returns a
 *     readable message for the calling thread; it stays valid until the next failing call
 *     on that thread.
 *   - The library never exits the process and never prints unless asked to.
 *   - Threads: a loaded lm_model is read-only and its tokenizer / chat functions may be called
 *     from any thread. Decode calls on the contexts of one model share that model's device
 *     (queue, scratch memory) and must not run concurrently; one context serves many sequences.
 *
 * Typical use
 *   lm_model_params mp = lm_model_default_params();
 *   lm_model *m; if (lm_model_load("model.gguf", &mp, &m)) { puts(lm_last_error()); ... }
 *   lm_context_params cp = lm_context_default_params();
 *   lm_context *c; lm_context_create(m, &cp, &c);
 *   lm_token toks[256]; int32_t n; lm_tokenize(m, text, strlen(text), true, false, toks, 256, &n);
 *   build lm_batch_entry[] {token, pos, seq, logits} and call lm_context_decode(c, entries, n);
 *   const float *logits = lm_context_logits(c, 0);
 */
#ifndef LUMEN_H
#define LUMEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LM_VERSION_MAJOR 0
#define LM_VERSION_MINOR 1
#define LM_VERSION_PATCH 0

/* ---------------------------------------------------------------------------------------------
 * Status codes and errors
 * ------------------------------------------------------------------------------------------- */
typedef enum lm_status {
    LM_STATUS_OK = 0,
    LM_STATUS_INVALID_ARGUMENT = 1, /* a caller passed something out of range or NULL */
    LM_STATUS_IO = 2,               /* a file could not be opened, read or mapped */
    LM_STATUS_FORMAT = 3,           /* a model file is malformed, truncated or inconsistent */
    LM_STATUS_UNSUPPORTED = 4,      /* valid input that this build cannot handle (arch, dtype) */
    LM_STATUS_OUT_OF_MEMORY = 5,    /* host or device allocation failed or would be absurd */
    LM_STATUS_BACKEND = 6,          /* a device backend failed (driver error, lost device) */
    LM_STATUS_CONTEXT_FULL = 7,     /* a position does not fit the context */
    LM_STATUS_NOT_FOUND = 8,        /* a named thing (backend, key, tensor) does not exist */
    LM_STATUS_BUFFER_TOO_SMALL = 9, /* output buffer too small; the needed size is reported */
} lm_status;

/* Short name of a status code ("ok", "format", ...). Never NULL. */
const char *lm_status_string(lm_status status);
/* Message of the last failure on the calling thread ("" when none). Never NULL. */
const char *lm_last_error(void);
/* Version string "major.minor.patch". */
const char *lm_version(void);

/* ---------------------------------------------------------------------------------------------
 * Backends
 * ------------------------------------------------------------------------------------------- */
/* Number of backends compiled into this build and their names ("cpu", "vulkan", "cuda"). */
int lm_backend_count(void);
const char *lm_backend_name(int i);

/* ---------------------------------------------------------------------------------------------
 * Model
 * ------------------------------------------------------------------------------------------- */
typedef int32_t lm_token;
typedef struct lm_model lm_model;

/* Called during long operations with a fraction in [0, 1]. */
typedef void (*lm_progress_fn)(float fraction, void *user);

typedef struct lm_context_params lm_context_params;

typedef struct lm_model_params {
    const char *backend;     /* "cpu" (default), "vulkan" or "cuda" */
    int device;              /* device index within the backend (default 0) */
    int n_threads;           /* CPU threads; 0 = one per core */
    bool use_mmap;           /* map the file instead of reading it (default true) */
    bool vocab_only;         /* load metadata and tokenizer only, no weights */
    lm_progress_fn progress; /* optional load progress */
    void *progress_user;
    /* Split execution (GPU backends): the stages the GPU cannot hold run on the CPU backend, in
     * the same forward pass; activations cross at stage boundaries. Placement is the memory
     * planner's (see lm_plan_create). Devices that share the host's memory never split. */
    int32_t gpu_layers;      /* -1 = automatic (default): the plan for `context` in the GPU's free
                                memory; N = the last N layers and the output head on the GPU */
    const char *cpu_tensors; /* extended regex: tensors kept on the CPU (e.g. "_exps") */
    uint64_t gpu_bytes;      /* GPU memory the automatic plan may use; 0 = the device's free memory */
    const lm_context_params *context; /* contexts the automatic plan makes room for (NULL: defaults) */
} lm_model_params;

lm_model_params lm_model_default_params(void);

/* Rewriting a GGUF file's weight matrices in one of lumen's own formats (`lumen quantize`):
 *   "i4_g128"  asymmetric 4-bit, groups of 128 (4.25 bits per weight)
 *   "f8_e4m3"  FP8 E4M3 with an f32 scale per 128 (8.25 bits); per_channel: one scale per row
 * Matrices stored as F32 / F16 / BF16 are converted (quantized ones too with requantize); norms,
 * the MoE router and everything else are copied unchanged, metadata included. */
typedef struct lm_quantize_params {
    const char *type;        /* "i4_g128" or "f8_e4m3" (default) */
    bool per_channel;        /* f8_e4m3: the row's scale in every block of the row */
    bool requantize;         /* also convert matrices already stored quantized */
    lm_progress_fn progress; /* optional */
    void *progress_user;
} lm_quantize_params;

lm_quantize_params lm_quantize_default_params(void);
lm_status lm_model_quantize(const char *in_path, const char *out_path, const lm_quantize_params *params);
lm_status lm_model_load(const char *path, const lm_model_params *params, lm_model **out);
void lm_model_free(lm_model *model);

typedef struct lm_model_info {
    const char *arch;      /* "gemma3", "gemma4" */
    const char *name;      /* general.name or "" */
    const char *backend;   /* backend the weights live on */
    int32_t n_vocab;
    int32_t n_embd;
    int32_t n_layer;
    int32_t n_head;
    int32_t n_ctx_train;
    int32_t n_expert;      /* 0 for dense models */
    int32_t n_expert_used;
    uint64_t n_params;     /* parameters in the file (elements of all tensors) */
    uint64_t weight_bytes; /* bytes of tensor data in the file */
    const char *host_backend; /* split execution: the backend of the offloaded stages, else NULL */
    int32_t n_gpu_layers;  /* layers on `backend` (n_layer unless split) */
    uint64_t host_weight_bytes; /* split: weight bytes the host backend runs */
} lm_model_info;

lm_status lm_model_get_info(const lm_model *model, lm_model_info *out);

/* GGUF metadata, for `lumen info`: number of keys, the i-th key, and its value rendered as text
 * (arrays are abbreviated to their first elements and length). */
int64_t lm_model_meta_count(const lm_model *model);
const char *lm_model_meta_key(const lm_model *model, int64_t i);
lm_status lm_model_meta_value_str(const lm_model *model, int64_t i, char *buf, size_t cap);

typedef struct lm_tensor_info {
    const char *name;
    const char *type; /* dtype name: "q4_K", "f32", ... */
    int32_t n_dims;
    int64_t ne[4];    /* GGUF order: ne[0] is contiguous */
    uint64_t offset;  /* offset of the data in the file */
    uint64_t bytes;
} lm_tensor_info;

int64_t lm_model_tensor_count(const lm_model *model);
lm_status lm_model_tensor_info(const lm_model *model, int64_t i, lm_tensor_info *out);

/* Memory a context would need (KV cache + activations + logits), in bytes. */
lm_status lm_model_estimate_memory(const lm_model *model, const lm_context_params *params,
                                   uint64_t *kv_bytes, uint64_t *compute_bytes);

/* ---------------------------------------------------------------------------------------------
 * Tokenizer
 * ------------------------------------------------------------------------------------------- */
int32_t lm_vocab_size(const lm_model *model);
lm_token lm_token_bos(const lm_model *model);
lm_token lm_token_eos(const lm_model *model);
/* True for tokens that end generation (eos, end of turn). */
bool lm_token_is_eog(const lm_model *model, lm_token token);
/* Raw vocabulary text of a token ("▁the", "<0x0A>", "<start_of_turn>"), or NULL. */
const char *lm_token_text(const lm_model *model, lm_token token);

/* Encode UTF-8 text. add_bos prepends BOS when the model asks for it; parse_special matches the
 * text of control tokens (for chat-template output; never for untrusted user text).
 * Writes at most cap tokens; *n_out always receives the full count. Returns
 * LM_STATUS_BUFFER_TOO_SMALL when cap < *n_out. */
lm_status lm_tokenize(const lm_model *model, const char *text, size_t len, bool add_bos,
                      bool parse_special, lm_token *out, int32_t cap, int32_t *n_out);

/* Bytes of one token's text (may be a partial UTF-8 sequence for byte tokens). Control tokens
 * render as "" unless render_special. *len receives the byte count; BUFFER_TOO_SMALL if cap is
 * too small. The output is not NUL-terminated. */
lm_status lm_token_to_piece(const lm_model *model, lm_token token, bool render_special, char *buf,
                            size_t cap, size_t *len);

/* Decode a token sequence to text, NUL-terminated. *len receives the length without the NUL;
 * BUFFER_TOO_SMALL when cap < *len + 1. */
lm_status lm_detokenize(const lm_model *model, const lm_token *tokens, int32_t n,
                        bool render_special, char *buf, size_t cap, size_t *len);

/* ---------------------------------------------------------------------------------------------
 * Chat templates (Gemma 3 and Gemma 4 built in)
 * ------------------------------------------------------------------------------------------- */
typedef struct lm_chat_message {
    const char *role;    /* "system", "user", "assistant" (or "model") */
    const char *content; /* UTF-8 */
} lm_chat_message;

/* Render messages into the model's prompt format (text with special-token markup, to be
 * tokenized with parse_special = true and add_bos = false: the output already holds <bos>).
 * NUL-terminated; *len is the length without the NUL; BUFFER_TOO_SMALL when cap < *len + 1. */
lm_status lm_chat_apply(const lm_model *model, const lm_chat_message *msgs, size_t n_msgs,
                        bool add_generation_prompt, bool enable_thinking, char *buf, size_t cap,
                        size_t *len);

/* ---------------------------------------------------------------------------------------------
 * Context: KV cache, activations, batched decode
 * ------------------------------------------------------------------------------------------- */
typedef struct lm_context lm_context;

/* KV-cache storage. The 8-bit types halve the cache (f16: 2 bytes per value):
 *   q8_0  blocks of 32 values, int8 with one f16 scale (34 bytes per 32); head dims multiple of 32
 *   fp8   FP8 E4M3 values, no scale (1 byte each); conversion saturates at +-448 */
typedef enum lm_kv_type {
    LM_KV_F32 = 0,
    LM_KV_F16 = 1,
    LM_KV_BF16 = 2,
    LM_KV_Q8_0 = 3,
    LM_KV_FP8 = 4,
} lm_kv_type;

/* "f32", "f16", "bf16", "q8_0", "fp8"; lm_kv_type_parse returns INVALID_ARGUMENT for others */
const char *lm_kv_type_name(lm_kv_type t);
lm_status lm_kv_type_parse(const char *name, lm_kv_type *out);

/* What a decode call brings back to the host for each output row. */
typedef enum lm_output_kind {
    LM_OUTPUT_LOGITS = 0, /* the n_vocab logits (for sampling, perplexity, comparisons) */
    LM_OUTPUT_ARGMAX = 1, /* only the greedy token, computed on the device: 4 bytes per row */
} lm_output_kind;

struct lm_context_params {
    uint32_t n_ctx;         /* max positions per sequence (0 = min(model's, 4096)) */
    uint32_t n_batch;       /* max tokens per decode call (default 512) */
    uint32_t n_seq_max;     /* max parallel sequences (default 1) */
    uint32_t n_outputs_max; /* max logits rows per decode call (default 1; 0 = n_batch) */
    lm_kv_type kv_type;     /* KV cache storage (default f16) */
    lm_output_kind output;  /* default LM_OUTPUT_LOGITS */
    /* The KV cache of full-attention layers is a pool of pages shared by all sequences: a
     * sequence takes pages as it grows and gives them back when cleared, and copying a prefix
     * to another sequence (lm_context_seq_cp) shares its pages. */
    uint32_t kv_cells;      /* cells of that pool (0 = n_ctx * n_seq_max: every sequence can
                               reach n_ctx); smaller pools serve many sequences that rarely all
                               grow long, and a decode that finds no free page fails with
                               LM_STATUS_CONTEXT_FULL */
    uint32_t kv_page;       /* cells per page (0 = 256) */
};

lm_context_params lm_context_default_params(void);
lm_status lm_context_create(lm_model *model, const lm_context_params *params, lm_context **out);
void lm_context_free(lm_context *ctx);

/* One token of a batch: the token, its position in its sequence, the sequence id, and
 * whether to compute logits for it. Several sequences may be mixed in one batch. */
typedef struct lm_batch_entry {
    lm_token token;
    int32_t pos;
    int32_t seq;
    bool logits;
} lm_batch_entry;

/* Run the model on a batch (prefill chunk and/or decode steps of several sequences). Entries of
 * one sequence must have distinct positions. The logits of the entries marked `logits` are
 * available afterwards through lm_context_logits, in entry order. */
lm_status lm_context_decode(lm_context *ctx, const lm_batch_entry *entries, int32_t n);

/* Logits (n_vocab floats) of the i-th output row of the last decode, or NULL (also in
 * LM_OUTPUT_ARGMAX contexts, which do not bring logits back). */
const float *lm_context_logits(const lm_context *ctx, int32_t i);
/* The greedy token of the i-th output row of the last decode: the lowest index of the largest
 * logit (NaN counts as -inf), or -1 if there is no such row. Computed on the device in
 * LM_OUTPUT_ARGMAX contexts, from the host logits otherwise. */
lm_token lm_context_argmax(const lm_context *ctx, int32_t i);
int32_t lm_context_n_outputs(const lm_context *ctx);

/* Forget everything cached for a sequence. */
lm_status lm_context_seq_clear(lm_context *ctx, int32_t seq);
/* Largest position cached for a sequence, or -1. */
int32_t lm_context_seq_pos_max(const lm_context *ctx, int32_t seq);
/* Forget positions [p0, p1) of a sequence (p1 < 0: to the end). Removing a tail lets the sequence
 * continue from p0 (a chat turn that re-renders the end of the history, a rejected draft). On
 * models with sliding-window layers the cache keeps only the last n_batch + window - 1 positions
 * of those layers, so a tail removal that would need positions already overwritten (the window
 * before p0) returns LM_STATUS_UNSUPPORTED and changes nothing: clear the sequence instead. */
lm_status lm_context_seq_rm(lm_context *ctx, int32_t seq, int32_t p0, int32_t p1);
/* Copy positions [p0, p1) (p1 < 0: to the end) of sequence src into sequence dst, keys, values
 * and positions (what dst held at those positions is replaced): a shared prompt prefix computed
 * once and reused by several sequences. Sliding-window layers copy what src still holds. */
lm_status lm_context_seq_cp(lm_context *ctx, int32_t src, int32_t dst, int32_t p0, int32_t p1);
/* Sliding-window checkpoints: the prompt cache across chat turns on models with sliding-window
 * layers. lm_context_seq_checkpoint copies a sequence's sliding-window caches (a few MiB to a
 * few hundred, the size of those layers' rings) to host memory at its current end; up to 3 per
 * sequence are kept (the oldest is replaced). lm_context_seq_rollback forgets positions >= p:
 * where the rings still hold the window before p it is lm_context_seq_rm(seq, p, -1) and
 * *pos_out = p; otherwise the newest checkpoint at or before p is restored and *pos_out is its
 * position: the tokens from *pos_out on must be decoded again (with a checkpoint taken after
 * each turn's prompt, only the new turn and the last reply). Without such a checkpoint it
 * returns LM_STATUS_UNSUPPORTED and changes nothing. Removing or copying over positions before
 * a checkpoint drops it; positions before a checkpoint must not be decoded again in place. */
lm_status lm_context_seq_checkpoint(lm_context *ctx, int32_t seq);
lm_status lm_context_seq_rollback(lm_context *ctx, int32_t seq, int32_t p, int32_t *pos_out);

/* KV-cache bytes allocated by this context, for reports and tests. */
uint64_t lm_context_kv_bytes(const lm_context *ctx);

/* Memory a context allocated, from its buffers (split models: both sides together, and the
 * host side's part). */
typedef struct lm_context_memory {
    uint64_t kv_sliding;  /* KV cache of the sliding-window layers (rings: constant in n_ctx) */
    uint64_t kv_full;     /* KV cache of the global layers (the page pool: kv_cells) */
    uint64_t kv_positions; /* the cells' position arrays and page tables */
    uint64_t compute;     /* activation arenas and step inputs */
    uint64_t kv_host, compute_host; /* split execution: the parts on the CPU backend */
    uint64_t checkpoints; /* sliding-window checkpoints held in host memory */
    uint32_t kv_pages_used, kv_pages_total; /* the global layers' page pool (pages of kv_page cells) */
} lm_context_memory;

lm_status lm_context_get_memory(const lm_context *ctx, lm_context_memory *out);

/* Timing of the last decode call (host wall clock), seconds. */
double lm_context_last_decode_seconds(const lm_context *ctx);

/* Per-op profile of the device work since profiling was switched on: time (from the backend's
 * timers: CLOCK_MONOTONIC on the CPU, timestamp queries / events on GPUs), calls, and the bytes
 * and flops the ops move, as achieved GB/s and GFLOP/s. */
typedef struct lm_op_stat {
    const char *op; /* "matmul", "attention", ... */
    uint64_t calls;
    double seconds;
    double gbytes_per_s;
    double gflops_per_s;
} lm_op_stat;

/* Turn profiling on (counters reset) or off. Profiling adds a timer read per op. */
lm_status lm_context_set_profiling(lm_context *ctx, bool on);
/* Writes up to cap entries (ops with at least one call, slowest first); returns how many exist. */
int32_t lm_context_profile(const lm_context *ctx, lm_op_stat *out, int32_t cap);

/* ---------------------------------------------------------------------------------------------
 * Memory planner (`lumen plan`): where each weight and each layer's KV cache lives on a machine
 * with one GPU and the CPU, from the file's tensor table (a model loaded vocab-only is enough),
 * the context shape and the GPU's memory. Automatic plans fill the GPU with the output head
 * first, then layers from the last one down (their attention, norms and dense FFN with their
 * KV cache), then the MoE experts of the GPU layers from the last one down: experts are read
 * n_used / n_expert per token, so they are the cheapest bytes to leave on the CPU. Lookup
 * tables (the input embedding when the output head is separate, per-layer embeddings) stay on
 * the CPU. The predicted decode speed is the bandwidth roofline of each side (batch 1).
 * ------------------------------------------------------------------------------------------- */
typedef struct lm_plan lm_plan;

typedef enum lm_place { LM_PLACE_GPU = 0, LM_PLACE_CPU = 1 } lm_place;

typedef struct lm_plan_params {
    lm_context_params context; /* n_ctx, n_batch, n_seq_max (parallel sequences), kv_type */
    uint64_t gpu_bytes;        /* GPU memory to plan for; 0 = the free memory of the device below */
    const char *gpu_backend;   /* "cuda" or "vulkan" to query (NULL: the first one that has a device) */
    int gpu_device;
    uint64_t reserve_bytes;    /* left free on the GPU (driver, other programs); default 512 MiB */
    double gpu_bandwidth_gbs;  /* 0 = the device's nominal bandwidth (no prediction without one) */
    double cpu_bandwidth_gbs;  /* 0 = measured (a multi-threaded read of 256 MiB) */
    int32_t gpu_layers;        /* -1 = automatic; N = the last N layers on the GPU, whole */
    const char *cpu_tensors;   /* POSIX extended regex: matching tensors stay on the CPU, e.g. "_exps" */
} lm_plan_params;

typedef struct lm_plan_summary {
    int32_t n_layer;
    int32_t n_gpu_layers;        /* layers whose attention runs on the GPU (the last ones) */
    int32_t n_gpu_expert_layers; /* MoE layers whose experts are on the GPU too */
    bool head_on_gpu;            /* the output projection */
    uint64_t weights[2], kv[2], compute[2]; /* bytes per place (LM_PLACE_GPU, LM_PLACE_CPU) */
    uint64_t gpu_budget;         /* GPU memory planned for, before the reserve */
    uint64_t reserve;
    uint64_t host_memory;        /* physical memory of this machine */
    bool fits_gpu, fits_host;
    int32_t crossings;           /* device changes along one forward pass */
    double gpu_bandwidth_gbs, cpu_bandwidth_gbs;
    double tok_s_empty, tok_s_full; /* predicted batch-1 decode speed at an empty / full context (0: unknown) */
    double ms_gpu, ms_cpu;       /* the two sides' parts of a full-context token, milliseconds */
} lm_plan_summary;

lm_plan_params lm_plan_default_params(void);
lm_status lm_plan_create(const lm_model *model, const lm_plan_params *params, lm_plan **out);
void lm_plan_free(lm_plan *plan);
lm_status lm_plan_get_summary(const lm_plan *plan, lm_plan_summary *out);
/* Where a tensor of the model (GGUF name) is placed; LM_PLACE_CPU for names not in the model. */
lm_place lm_plan_tensor_place(const lm_plan *plan, const char *tensor_name);
/* The plan as text (a Markdown table and the prediction); len receives the full length. */
lm_status lm_plan_format(const lm_plan *plan, char *buf, size_t cap, size_t *len);

/* ---------------------------------------------------------------------------------------------
 * Sampling
 * ------------------------------------------------------------------------------------------- */
typedef struct lm_sampler lm_sampler;

typedef struct lm_sampler_params {
    float temperature;       /* 0 = greedy (argmax) */
    int32_t top_k;           /* 0 = off */
    float top_p;             /* 1 = off */
    float min_p;             /* 0 = off */
    float repeat_penalty;    /* 1 = off; divides positive / multiplies negative logits */
    int32_t penalty_last_n;  /* window of recent tokens the penalties look at */
    float presence_penalty;  /* 0 = off; subtracted once per token present in the window */
    float frequency_penalty; /* 0 = off; subtracted per occurrence in the window */
    uint64_t seed;
} lm_sampler_params;

lm_sampler_params lm_sampler_default_params(void);
lm_status lm_sampler_create(const lm_sampler_params *params, int32_t n_vocab, lm_sampler **out);
void lm_sampler_free(lm_sampler *s);
/* Sample one token from n_vocab logits (not modified). */
lm_token lm_sampler_sample(lm_sampler *s, const float *logits);
/* Record a token in the penalty window (prompt tokens and sampled tokens). */
void lm_sampler_accept(lm_sampler *s, lm_token token);
void lm_sampler_reset(lm_sampler *s);

#ifdef __cplusplus
}
#endif
#endif /* LUMEN_H */
