/*
 * ops.h — typed op builders. Model code calls these; each validates shapes and dtypes, takes its
 * output from the step's scratch arena, fills an lm_node and hands it to the backend.
 *
 * A graph (lm_graph) is one step on one backend, or on several (split execution: a model's layers
 * on a GPU and on the CPU; lm_graph_switch moves the activations at stage boundaries). In measure mode nothing runs and the arena only
 * counts bytes: a context runs its worst-case step once in measure mode to size the arena, so the
 * decode path never allocates. Temporaries are released at layer boundaries with mark/release
 * (execution is in order on every backend, so memory reuse needs no more than the barriers the
 * backend already places between dependent ops).
 *
 * Validation failures latch into g->err (the first wins) and the op is skipped; the step then
 * fails with that message. They indicate inconsistent model tensors or a bug, never a crash.
 *
 * Op definitions (all math in f32 unless stated; "row" = ne[0] contiguous elements):
 *   get_rows(table[d, R], ids[n]) -> [d, n]       dequantized rows times `scale`
 *   set_rows(dst[d, R], src[d, n], idx[n])         dst row idx[i] = src row i (converted)
 *   rms_norm(x, w?, res?)                          res + x / sqrt(mean(x^2) + eps) * w, per row
 *   matmul(W[k, m], x[k, n]) -> [m, n]             W any dtype (quantized), x f32
 *   matmul_id(W[k, m, E], x[k, J|1, n], ids[J, n]) -> [m, J, n]
 *   rope(x[d, h, n], pos[n], factors?)             rotate pairs by angle pos * f[i], where
 *        f[i] = freq_scale * theta^(-2i / freq_dim) / factor[i] for i < n_pairs (others pass);
 *        NEOX pairs (i, i + d/2) or NORM pairs (2i, 2i + 1)
 *   attention(q[dk, H, n], K[dk, Hkv, C], V[dv, Hkv, C], cell_pos[C], pages[P, S], pos[n], seq[n]) -> [dv, H, n]
 *        token t of sequence s reads its logical cells c in [0, cps), each the physical cell
 *        pages[c / page, s] * page + c % page (P * page >= cps; C a multiple of page; cell_pos
 *        may be longer than C: cells past K / V's end must hold no position), holding a position p' with
 *        0 <= p' <= pos[t] and (window == 0 or pos[t] - p' < window); head h uses KV head
 *        h / (H / Hkv); softmax(scale * q.k) (optionally soft-capped) over those cells.
 *        With k_from_v, the cache holds only V = rmsnorm0(k_raw) and K is made on the fly as
 *        rope(V * k_norm, p') (Gemma 4 K=V layers: one stored tensor instead of two).
 *   geglu(g, u) = gelu_tanh(g) * u ; add / mul (second operand may be one row, broadcast)
 *   scale, softcap(x, c) = c * tanh(x / c)
 *   topk(x[m, n], k) -> i32 [k, n]                 descending, ties to the lower index
 *   moe_weights(logits[E, n], ids[k, n], s?[E]) -> [k, n]   softmax over ids only, times s[id]
 *   moe_sum(y[d, k, n], w[k, n]) -> [d, n]
 */
#ifndef LM_OPS_H
#define LM_OPS_H

#include "backend.h"

LM_EXTERN_C_BEGIN

typedef struct lm_rope_params {
    int32_t n_pairs;  /* rotated frequency slots (d/2 for full rotation) */
    int32_t freq_dim; /* denominator dimension of the frequency exponent */
    int32_t mode;     /* LM_ROPE_NEOX or LM_ROPE_NORM */
    float theta;      /* frequency base */
    float freq_scale; /* linear position scaling (1 = none) */
} lm_rope_params;

enum { LM_ROPE_NEOX = 0, LM_ROPE_NORM = 1 };

typedef struct lm_attn_params {
    int32_t cells_per_seq; /* cps: logical cells of one sequence (cell = pos, or pos % cps in a ring) */
    int32_t page;          /* cells per page: logical cell c of sequence s is the physical cell
                              pages[s][c / page] * page + c % page (a ring: page = cps, one page
                              per sequence) */
    bool ring;             /* cells hold pos % cps (sliding layers); else cell = pos */
    int32_t window;        /* 0 = no sliding window */
    float scale;
    float softcap;         /* 0 = none */
    bool k_from_v;         /* K = rope(V * k_norm, p') computed on the fly */
    lm_rope_params rope;   /* for k_from_v */
} lm_attn_params;

typedef struct lm_arena {
    lm_buffer *buf; /* NULL in measure mode */
    size_t used;
    size_t peak;
} lm_arena;

#define LM_GRAPH_MAX_TENSORS 4096
#define LM_GRAPH_MAX_DEVS 2

/* A device a step runs on (split execution: the GPU part and the CPU part of one model). */
typedef struct lm_graph_dev {
    lm_backend *be;
    lm_arena arena; /* saved here while another device is current */
} lm_graph_dev;

typedef struct lm_graph {
    lm_backend *be;  /* the current device: builders enqueue here and allocate from `arena` */
    lm_arena arena;
    int cur, n_dev;
    lm_graph_dev dev[LM_GRAPH_MAX_DEVS];
    bool measure;    /* count only; run nothing */
    lm_status err;
    char errmsg[256];
    int n_tensors;
    int n_nodes;
    int n_switches;      /* device changes in this step */
    uint64_t moved_bytes; /* activations copied between devices in this step */
    void *staging;       /* host bounce buffer for device-to-device copies */
    size_t staging_size;
    lm_tensor tensors[LM_GRAPH_MAX_TENSORS];
} lm_graph;

typedef struct lm_graph_mark {
    size_t used[LM_GRAPH_MAX_DEVS];
    int n_tensors;
} lm_graph_mark;

/* One device (index 0). Outside measure mode the caller brackets the step with the backend's
 * begin() and submit()/sync(). */
void lm_graph_init(lm_graph *g, lm_backend *be, lm_buffer *arena_buf, bool measure);
/* Another device for split execution; returns its index. Devices keep their own arenas. */
int lm_graph_add_device(lm_graph *g, lm_backend *be, lm_buffer *arena_buf);
/* Make device `dev` current and copy the activations carry[0..n) there (each replaced by its
 * copy in dev's arena; contiguous tensors of the current device). Outside measure mode this
 * closes the current device's part of the step (submit and sync: the copies need its results),
 * copies, and begins dev's part; the caller submits and syncs whichever device is current at
 * the end. A no-op when dev is already current. */
void lm_graph_switch(lm_graph *g, int dev, lm_tensor **carry, int n_carry);
/* The device whose backend holds tensor t (the current one for tensors without a buffer, or on
 * a backend the graph does not have: measure-mode estimates of a vocab-only model). */
int lm_graph_device_of(const lm_graph *g, const lm_tensor *t);
/* Peak arena bytes of a device so far (measure mode sizes each device's arena with it). */
size_t lm_graph_peak(const lm_graph *g, int dev);
void lm_graph_free_staging(lm_graph *g);
lm_graph_mark lm_graph_get_mark(const lm_graph *g);
void lm_graph_release(lm_graph *g, lm_graph_mark m);
/* Latch a validation error into the graph (first one wins). */
void lm_graph_fail(lm_graph *g, const char *fmt, ...) LM_PRINTF(2, 3);
lm_status lm_graph_status(const lm_graph *g);

/* A fresh contiguous temporary from the arena. */
lm_tensor *lm_new_tensor(lm_graph *g, lm_dtype type, int n_dims, const int64_t *ne);
lm_tensor *lm_new_tensor_2d(lm_graph *g, lm_dtype type, int64_t ne0, int64_t ne1);
/* A graph-owned copy of a view (so builders can take views by value). */
lm_tensor *lm_view(lm_graph *g, lm_tensor v);

lm_tensor *lm_get_rows(lm_graph *g, const lm_tensor *table, const lm_tensor *ids, float scale);
void lm_set_rows(lm_graph *g, lm_tensor *dst, const lm_tensor *src, const lm_tensor *idx);
lm_tensor *lm_rms_norm(lm_graph *g, const lm_tensor *x, const lm_tensor *w, const lm_tensor *res, float eps);
/* Same, writing into an existing tensor of x's shape (may alias res: the residual update in place). */
void lm_rms_norm_into(lm_graph *g, lm_tensor *dst, const lm_tensor *x, const lm_tensor *w, const lm_tensor *res, float eps);
lm_tensor *lm_matmul(lm_graph *g, const lm_tensor *w, const lm_tensor *x);
lm_tensor *lm_matmul_id(lm_graph *g, const lm_tensor *w, const lm_tensor *x, const lm_tensor *ids);
/* Hints for a matmul's node (ip[0]); backends that do not need them ignore them.
 * LM_MM_X_OUTLIERS: x is heavy-tailed (a gated activation's output, e.g. the FFN down
 * projection's input), so a backend that rounds activations to 8 bits keeps ~16 instead: on
 * Gemma 3 270M these matmuls alone account for 5/6 of an all-8-bit decode path's KL and all of
 * its perplexity shift (+0.6 %). */
enum { LM_MM_X_OUTLIERS = 1 };
lm_tensor *lm_matmul_hinted(lm_graph *g, const lm_tensor *w, const lm_tensor *x, int32_t hints);
lm_tensor *lm_matmul_id_hinted(lm_graph *g, const lm_tensor *w, const lm_tensor *x, const lm_tensor *ids, int32_t hints);
lm_tensor *lm_rope(lm_graph *g, const lm_tensor *x, const lm_tensor *pos, const lm_tensor *factors,
                   const lm_rope_params *rp);
lm_tensor *lm_attention(lm_graph *g, const lm_tensor *q, const lm_tensor *k, const lm_tensor *v,
                        const lm_tensor *cell_pos, const lm_tensor *pages, const lm_tensor *pos, const lm_tensor *seq,
                        const lm_tensor *k_norm, const lm_tensor *factors, const lm_attn_params *ap);
lm_tensor *lm_geglu(lm_graph *g, const lm_tensor *gate, const lm_tensor *up);
lm_tensor *lm_swiglu(lm_graph *g, const lm_tensor *gate, const lm_tensor *up); /* silu(gate) * up */
lm_tensor *lm_add(lm_graph *g, const lm_tensor *a, const lm_tensor *b);
lm_tensor *lm_mul(lm_graph *g, const lm_tensor *a, const lm_tensor *b);
lm_tensor *lm_scale(lm_graph *g, const lm_tensor *x, float s);
void lm_add_into(lm_graph *g, lm_tensor *dst, const lm_tensor *a, const lm_tensor *b); /* dst may alias a or b */
void lm_scale_into(lm_graph *g, lm_tensor *dst, const lm_tensor *x, float s); /* dst may alias x */
/* A view of elements [i0, i0 + n) of every row (dimension 0), keeping the row strides. */
lm_tensor lm_tensor_cols(const lm_tensor *t, int64_t i0, int64_t n);
lm_tensor *lm_softcap(lm_graph *g, const lm_tensor *x, float cap);
lm_tensor *lm_topk(lm_graph *g, const lm_tensor *x, int k);
lm_tensor *lm_moe_weights(lm_graph *g, const lm_tensor *logits, const lm_tensor *ids, const lm_tensor *scale);
lm_tensor *lm_moe_sum(lm_graph *g, const lm_tensor *y, const lm_tensor *w);
void lm_cpy(lm_graph *g, lm_tensor *dst, const lm_tensor *src);

/* Node packing shared by builders, backends and the conformance tests. */
void lm_node_rope_pack(lm_node *n, const lm_rope_params *rp, int ip0, int fp0);
lm_rope_params lm_node_rope_unpack(const lm_node *n, int ip0, int fp0);
lm_attn_params lm_node_attn_unpack(const lm_node *n);

/* Bytes moved and flops of a node (for profiling and benchmarks). */
void lm_node_cost(const lm_node *n, double *bytes, double *flops);

LM_EXTERN_C_END

#endif /* LM_OPS_H */
