/*
 * kv.h — the KV cache. Two kinds of layers:
 *   sliding  a ring of cps = pad(W - 1 + n_batch) cells per sequence (position p lives in cell
 *            p % cps): memory is constant in the context length, and a prefill chunk of up to
 *            n_batch tokens never overwrites a key still inside the window of an earlier query
 *   full     cps = n_ctx cells per sequence, cell = position
 * Each kind has a cell_pos array (position held by each cell, -1 = empty) shared by its layers;
 * attention masks with it. A K=V layer (Gemma 4 global layers) stores only V = rmsnorm0(K proj)
 * and attention derives K from it, so it costs one tensor instead of two. KV-shared layers
 * (Gemma 4 E models) have no cache of their own.
 * Split execution: each layer's cache lives on the device that runs the layer; each device with
 * layers of a kind keeps its own copy of the kind's cell_pos (the forward pass writes both).
 * Storage types: f32, f16, bf16, q8_0 (blocks of 32 along a head's row; head dims multiple of 32)
 * and e4m3 (the fp8 cache); the 8-bit ones are quantized by set_rows as the step writes them.
 */
#ifndef LM_KV_H
#define LM_KV_H

#include "model.h"

typedef struct lm_kv_kind {
    bool used;
    int32_t cps;        /* cells per sequence */
    bool ring;
    int32_t window;     /* 0 for full attention */
    lm_tensor cell_pos[LM_GRAPH_MAX_DEVS]; /* i32 [cps * n_seq] on each device holding layers of the
                                              kind (split execution: a copy per device; buf NULL
                                              where none) */
    int32_t *host_pos;  /* host mirror of cell_pos */
} lm_kv_kind;

typedef struct lm_kv_layer {
    bool has_cache;     /* false for KV-shared layers */
    bool has_k;         /* false for K=V layers */
    int kind;
    lm_tensor k, v;     /* [head_dim * n_head_kv, cells] */
} lm_kv_layer;

/* A copy, in host memory, of one sequence's sliding-window caches at a position: with it the
 * sequence can be rolled back to that position after the rings overwrote what came before. */
typedef struct lm_kv_ckpt {
    int32_t seq;
    int32_t pos;                        /* the sequence held exactly positions [0, pos) */
    int32_t *host_pos[LM_KV_KINDS];     /* ring kinds: the sequence's cell positions */
    uint8_t *data;                      /* ring layers in order: K rows, V rows of the sequence */
    size_t bytes;
} lm_kv_ckpt;

#define LM_KV_CKPT_PER_SEQ 3

typedef struct lm_kv {
    lm_backend *devs[LM_GRAPH_MAX_DEVS]; /* the model's devices: a layer's cache is on its layer's */
    int n_dev;
    lm_buffer **bufs; /* tensors packed into buffers no larger than their device allows */
    int n_bufs;
    lm_dtype type;
    int32_t n_seq, n_ctx, n_batch;
    lm_kv_kind kind[LM_KV_KINDS];
    lm_kv_layer *layers;
    int32_t n_layer;
    uint64_t bytes;
    int32_t *seq_pos_max; /* [n_seq], -1 = empty */
    lm_kv_ckpt *ckpt;     /* [n_seq * LM_KV_CKPT_PER_SEQ]; data NULL = free slot */
} lm_kv;

/* Cells per sequence for each kind, for a model and context shape (also used for estimates). */
void lm_kv_shape(const lm_model *m, int32_t n_ctx, int32_t n_batch, int32_t cps[LM_KV_KINDS], bool ring[LM_KV_KINDS]);
lm_status lm_kv_init(lm_kv *kv, const lm_model *m, lm_dtype type, int32_t n_ctx, int32_t n_seq, int32_t n_batch);
void lm_kv_free(lm_kv *kv);
lm_status lm_kv_seq_clear(lm_kv *kv, int32_t seq);
/* see lm_context_seq_rm / lm_context_seq_cp */
lm_status lm_kv_seq_rm(lm_kv *kv, int32_t seq, int32_t p0, int32_t p1);
lm_status lm_kv_seq_cp(lm_kv *kv, int32_t src, int32_t dst, int32_t p0, int32_t p1);
/* see lm_context_seq_checkpoint / lm_context_seq_rollback */
lm_status lm_kv_seq_checkpoint(lm_kv *kv, int32_t seq);
lm_status lm_kv_seq_rollback(lm_kv *kv, int32_t seq, int32_t p, int32_t *pos_out);
uint64_t lm_kv_checkpoint_bytes(const lm_kv *kv);
/* Cell index of (seq, pos) in a kind. */
static inline int32_t lm_kv_cell(const lm_kv_kind *k, int32_t seq, int32_t pos) {
    return seq * k->cps + (k->ring ? pos % k->cps : pos);
}

#endif /* LM_KV_H */
