/*
 * kv.h — the KV cache. Two kinds of layers:
 *   sliding  a ring of cps = pad(W - 1 + n_batch) cells per sequence (position p lives in cell
 *            p % cps): memory is constant in the context length, and a prefill chunk of up to
 *            n_batch tokens never overwrites a key still inside the window of an earlier query
 *   full     paged: logical cell = position (cps = n_ctx), in pages of `page` cells taken on
 *            demand from one pool shared by all sequences (kv_cells; by default n_seq * n_ctx
 *            cells, so no sequence can run out). A page table per sequence maps its logical
 *            pages to physical ones; unmapped logical pages point at the null page, whose cells
 *            hold no position (the null page has positions only, no K / V rows: attention never
 *            reads the rows of a cell without a position). Pages are reference-counted: lm_kv_seq_cp shares whole pages of
 *            a prefix instead of copying them, and a write to a shared page copies it first.
 * Attention reads both kinds through the page table (a ring is one page per sequence, page s of
 * sequence s), so one kernel serves both.
 * Each kind has a cell_pos array (position held by each physical cell, -1 = empty) shared by
 * its layers; attention masks with it. A K=V layer (Gemma 4 global layers) stores only
 * V = rmsnorm0(K proj) and attention derives K from it, so it costs one tensor instead of two.
 * KV-shared layers (Gemma 4 E models) have no cache of their own.
 * Split execution: each layer's cache lives on the device that runs the layer; each device with
 * layers of a kind keeps its own copy of the kind's cell_pos and page table (the forward pass
 * writes both cell_pos copies; the host uploads page tables when they change).
 * Storage types: f32, f16, bf16, q8_0 (blocks of 32 along a head's row; head dims multiple of 32)
 * and e4m3 (the fp8 cache); the 8-bit ones are quantized by set_rows as the step writes them.
 */
#ifndef LM_KV_H
#define LM_KV_H

#include "model.h"

#define LM_KV_PAGE_DEFAULT 256 /* cells per page of the full-attention pool */

/* The cells of one kind (see lm_kv_geometry). */
typedef struct lm_kv_geom {
    int32_t cps;     /* logical cells per sequence */
    bool ring;       /* cells hold pos % cps; else logical cell = pos */
    bool paged;      /* pages come from a shared pool (the non-ring kinds); else page s is sequence s's */
    int32_t page;    /* cells per page (a ring: cps) */
    int32_t pps;     /* logical pages per sequence */
    int32_t n_pages; /* physical pages; a paged kind's last one is the null page */
} lm_kv_geom;

typedef struct lm_kv_kind {
    bool used;
    int32_t cps;        /* cells per sequence */
    bool ring;
    int32_t window;     /* 0 for full attention */
    bool paged;
    int32_t page, pps, n_pages, null_page; /* see lm_kv_geom; null_page = n_pages - 1 (paged) */
    lm_tensor cell_pos[LM_GRAPH_MAX_DEVS]; /* i32 [page * n_pages] on each device holding layers of the
                                              kind (split execution: a copy per device; buf NULL
                                              where none) */
    lm_tensor pages[LM_GRAPH_MAX_DEVS];    /* i32 [pps, n_seq] page tables, likewise */
    int32_t *host_pos;  /* host mirror of cell_pos */
    int32_t *host_tab;  /* host mirror of the page tables (null_page = unmapped) */
    int32_t *ref;       /* [n_pages] sequences mapping each page (paged; 0 = free) */
    int32_t *free_pages, n_free; /* stack of free pages (paged) */
    bool tab_dirty;     /* host_tab changed since the last upload */
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

/* The cell geometry of each kind for a model and normalized context parameters (also used for
   estimates and plans). */
void lm_kv_geometry(const lm_model *m, const lm_context_params *p, lm_kv_geom g[LM_KV_KINDS]);
/* Cells of a kind's cell positions (all pages, the null page included) and of its K / V tensors
   (without the null page: attention never reads K or V of a cell whose position is < 0, so the
   null page needs positions only). */
static inline int64_t lm_kv_geom_cells(const lm_kv_geom *g) { return (int64_t)g->page * g->n_pages; }
static inline int64_t lm_kv_geom_kv_cells(const lm_kv_geom *g) { return (int64_t)g->page * (g->n_pages - g->paged); }
/* A kind's cell geometry (and its null page) from lm_kv_geometry. */
static inline void lm_kv_kind_shape(lm_kv_kind *kk, const lm_kv_geom *g) {
    kk->cps = g->cps;
    kk->ring = g->ring;
    kk->paged = g->paged;
    kk->page = g->page;
    kk->pps = g->pps;
    kk->n_pages = g->n_pages;
    kk->null_page = g->paged ? g->n_pages - 1 : -1;
}
lm_status lm_kv_init(lm_kv *kv, const lm_model *m, lm_dtype type, const lm_context_params *p);
void lm_kv_free(lm_kv *kv);
lm_status lm_kv_seq_clear(lm_kv *kv, int32_t seq);
/* see lm_context_seq_rm / lm_context_seq_cp */
lm_status lm_kv_seq_rm(lm_kv *kv, int32_t seq, int32_t p0, int32_t p1);
lm_status lm_kv_seq_cp(lm_kv *kv, int32_t src, int32_t dst, int32_t p0, int32_t p1);
/* see lm_context_seq_checkpoint / lm_context_seq_rollback */
lm_status lm_kv_seq_checkpoint(lm_kv *kv, int32_t seq);
lm_status lm_kv_seq_rollback(lm_kv *kv, int32_t seq, int32_t p, int32_t *pos_out);
uint64_t lm_kv_checkpoint_bytes(const lm_kv *kv);
/* Make (seq, pos) writable in every paged kind: map its page from the pool, or copy a page
   shared with another sequence. LM_STATUS_CONTEXT_FULL when the pool has no free page. */
lm_status lm_kv_reserve(lm_kv *kv, int32_t seq, int32_t pos);
/* Upload page tables that changed to every device. */
lm_status lm_kv_sync(lm_kv *kv);
/* Pages of the pool in use / in all (the paged kinds' largest use; 0 / 0 without one). */
void lm_kv_pool_usage(const lm_kv *kv, int32_t *used, int32_t *total);
/* Physical cell of (seq, pos) in a kind (its page must be mapped: lm_kv_reserve). */
static inline int32_t lm_kv_cell(const lm_kv_kind *k, int32_t seq, int32_t pos) {
    const int32_t c = k->ring ? pos % k->cps : pos;
    return k->host_tab[(int64_t)seq * k->pps + c / k->page] * k->page + c % k->page;
}

#endif /* LM_KV_H */
