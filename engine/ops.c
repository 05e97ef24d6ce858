/*
 * ops.c — typed op builders (see ops.h): validate, allocate the output from the step arena,
 * fill a node, enqueue it on the graph's backend.
 */
#include "ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lm_graph_init(lm_graph *g, lm_backend *be, lm_buffer *arena_buf, bool measure) {
    g->be = be;
    g->arena.buf = arena_buf;
    g->arena.used = 0;
    g->arena.peak = 0;
    g->cur = 0;
    g->n_dev = 1;
    g->dev[0] = (lm_graph_dev){.be = be, .arena = g->arena};
    g->measure = measure;
    g->err = LM_STATUS_OK;
    g->errmsg[0] = 0;
    g->n_tensors = 0;
    g->n_nodes = 0;
    g->n_switches = 0;
    g->moved_bytes = 0;
    g->staging = NULL;
    g->staging_size = 0;
}

int lm_graph_add_device(lm_graph *g, lm_backend *be, lm_buffer *arena_buf) {
    if (g->n_dev >= LM_GRAPH_MAX_DEVS) {
        lm_graph_fail(g, "more than %d devices in one step", LM_GRAPH_MAX_DEVS);
        return g->n_dev - 1;
    }
    g->dev[g->n_dev] = (lm_graph_dev){.be = be, .arena = {.buf = arena_buf}};
    return g->n_dev++;
}

int lm_graph_device_of(const lm_graph *g, const lm_tensor *t) {
    if (t && t->buf)
        for (int d = 0; d < g->n_dev; d++)
            if (g->dev[d].be == t->buf->be) return d;
    return g->cur;
}

size_t lm_graph_peak(const lm_graph *g, int dev) {
    if (dev < 0 || dev >= g->n_dev) return 0;
    return dev == g->cur ? g->arena.peak : g->dev[dev].arena.peak;
}

void lm_graph_free_staging(lm_graph *g) {
    free(g->staging);
    g->staging = NULL;
    g->staging_size = 0;
}

/* close the current device's part of the step: launch it and wait for it */
static void close_part(lm_graph *g) {
    lm_backend *be = g->be;
    lm_status st = be->ops->submit(be);
    lm_status st2 = be->ops->sync(be);
    if (!st) st = st2;
    if (st && g->err == LM_STATUS_OK) {
        g->err = st;
        snprintf(g->errmsg, sizeof g->errmsg, "%s part of a split step: %s", be->ops->name, lm_last_error());
    }
}

/* copy a contiguous tensor between devices (the source's results are complete) */
static void copy_across(lm_graph *g, lm_tensor *dst, const lm_tensor *src) {
    const size_t n = lm_tensor_nbytes(src);
    lm_backend *sb = src->buf->be, *db = dst->buf->be;
    lm_status st;
    if (src->buf->host) {
        st = db->ops->tensor_set(db, dst, lm_tensor_host(src), 0, n);
    } else if (dst->buf->host) {
        st = sb->ops->tensor_get(sb, src, lm_tensor_host(dst), 0, n);
    } else {
        if (g->staging_size < n) {
            void *p = realloc(g->staging, n);
            if (!p) {
                lm_graph_fail(g, "out of memory for a %zu-byte transfer between devices", n);
                g->err = LM_STATUS_OUT_OF_MEMORY;
                return;
            }
            g->staging = p;
            g->staging_size = n;
        }
        st = sb->ops->tensor_get(sb, src, g->staging, 0, n);
        if (!st) st = db->ops->tensor_set(db, dst, g->staging, 0, n);
    }
    if (st && g->err == LM_STATUS_OK) {
        g->err = st;
        snprintf(g->errmsg, sizeof g->errmsg, "copy of '%s' from %s to %s: %s", src->name, sb->ops->name, db->ops->name,
                 lm_last_error());
    }
    g->moved_bytes += n;
}

void lm_graph_switch(lm_graph *g, int dev, lm_tensor **carry, int n_carry) {
    if (dev == g->cur) return;
    if (dev < 0 || dev >= g->n_dev) {
        lm_graph_fail(g, "switch to device %d of %d", dev, g->n_dev);
        return;
    }
    for (int i = 0; i < n_carry; i++)
        if (carry[i] && !lm_tensor_is_contiguous(carry[i])) {
            lm_graph_fail(g, "tensor '%s' crosses devices but is not contiguous", carry[i]->name);
            return;
        }
    const bool run = !g->measure && g->err == LM_STATUS_OK;
    if (run) close_part(g);
    g->dev[g->cur].arena = g->arena;
    g->cur = dev;
    g->be = g->dev[dev].be;
    g->arena = g->dev[dev].arena;
    g->n_switches++;
    for (int i = 0; i < n_carry; i++) {
        if (!carry[i]) continue;
        const lm_tensor *src = carry[i];
        lm_tensor *dst = lm_new_tensor(g, src->type, 4, src->ne);
        snprintf(dst->name, sizeof dst->name, "%s", src->name);
        if (run && g->err == LM_STATUS_OK) copy_across(g, dst, src);
        carry[i] = dst;
    }
    if (run) {
        lm_status st = g->be->ops->begin(g->be);
        if (st && g->err == LM_STATUS_OK) {
            g->err = st;
            snprintf(g->errmsg, sizeof g->errmsg, "%s: %s", g->be->ops->name, lm_last_error());
        }
    }
}

lm_graph_mark lm_graph_get_mark(const lm_graph *g) {
    lm_graph_mark m = {.n_tensors = g->n_tensors};
    for (int d = 0; d < g->n_dev; d++) m.used[d] = d == g->cur ? g->arena.used : g->dev[d].arena.used;
    return m;
}

void lm_graph_release(lm_graph *g, lm_graph_mark m) {
    for (int d = 0; d < g->n_dev; d++) {
        if (d == g->cur) g->arena.used = m.used[d];
        else g->dev[d].arena.used = m.used[d];
    }
    g->n_tensors = m.n_tensors;
}

void lm_graph_fail(lm_graph *g, const char *fmt, ...) {
    if (g->err != LM_STATUS_OK) return;
    g->err = LM_STATUS_FORMAT;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->errmsg, sizeof g->errmsg, fmt, ap);
    va_end(ap);
}

lm_status lm_graph_status(const lm_graph *g) {
    if (g->err != LM_STATUS_OK) return lm_fail(g->err, "graph: %s", g->errmsg);
    return LM_STATUS_OK;
}

static lm_tensor *slot(lm_graph *g) {
    if (g->n_tensors >= LM_GRAPH_MAX_TENSORS) {
        lm_graph_fail(g, "more than %d live tensors in one step", LM_GRAPH_MAX_TENSORS);
        g->n_tensors = LM_GRAPH_MAX_TENSORS - 1; /* keep a scratch slot so callers stay valid */
    }
    return &g->tensors[g->n_tensors++];
}

lm_tensor *lm_new_tensor(lm_graph *g, lm_dtype type, int n_dims, const int64_t *ne) {
    lm_tensor *t = slot(g);
    lm_tensor_init(t, type, n_dims, ne);
    size_t bytes = lm_pad(lm_tensor_nbytes(t), 256);
    size_t at = g->arena.used;
    g->arena.used += bytes;
    if (g->arena.used > g->arena.peak) g->arena.peak = g->arena.used;
    if (!g->measure && (!g->arena.buf || g->arena.used > g->arena.buf->size)) {
        lm_graph_fail(g, "step arena overflow (%zu > %zu bytes)", g->arena.used, g->arena.buf ? g->arena.buf->size : 0);
        g->arena.used = at; /* point at the start; the step is already failed */
    }
    t->buf = g->arena.buf;
    t->offs = at;
    return t;
}

lm_tensor *lm_new_tensor_2d(lm_graph *g, lm_dtype type, int64_t ne0, int64_t ne1) {
    int64_t ne[2] = {ne0, ne1};
    return lm_new_tensor(g, type, 2, ne);
}

lm_tensor *lm_view(lm_graph *g, lm_tensor v) {
    lm_tensor *t = slot(g);
    *t = v;
    return t;
}

static void enqueue(lm_graph *g, lm_node *n) {
    if (g->err != LM_STATUS_OK || g->measure) return;
    if (!g->be->ops->supports(g->be, n)) {
        lm_graph_fail(g, "%s backend does not support %s (dst %s, src0 %s)", g->be->ops->name, lm_op_name(n->op),
                      lm_dtype_name(n->dst->type), n->src[0] ? lm_dtype_name(n->src[0]->type) : "-");
        g->err = LM_STATUS_UNSUPPORTED;
        return;
    }
    g->be->ops->run(g->be, n);
    g->n_nodes++;
}

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            lm_graph_fail(g, __VA_ARGS__);                                                         \
            return false;                                                                          \
        }                                                                                          \
    } while (0)

static bool is_f32_rows(const lm_tensor *t) { return t && t->type == LM_F32 && t->nb[0] == 4; }
static bool is_vec_i32(const lm_tensor *t, int64_t n) {
    return t && t->type == LM_I32 && t->ne[0] == n && lm_tensor_nrows(t) == 1 && t->nb[0] == 4;
}

/* ---------------------------------------------------------------------------------------- */

static bool v_get_rows(lm_graph *g, const lm_tensor *table, const lm_tensor *ids) {
    CHECK(table && ids, "get_rows: missing operand");
    CHECK(table->ne[2] == 1 && table->ne[3] == 1, "get_rows: table '%s' must be 2-D", table->name);
    CHECK(lm_dtype_get(table->type)->dequant != NULL, "get_rows: table type %s", lm_dtype_name(table->type));
    CHECK(is_vec_i32(ids, ids->ne[0]), "get_rows: ids must be an i32 vector");
    return true;
}

lm_tensor *lm_get_rows(lm_graph *g, const lm_tensor *table, const lm_tensor *ids, float scale) {
    if (!v_get_rows(g, table, ids)) return lm_new_tensor_2d(g, LM_F32, 1, 1);
    lm_tensor *dst = lm_new_tensor_2d(g, LM_F32, table->ne[0], ids->ne[0]);
    lm_node n = {.op = LM_OP_GET_ROWS, .dst = dst, .src = {table, ids}, .fp = {scale}};
    enqueue(g, &n);
    return dst;
}

void lm_set_rows(lm_graph *g, lm_tensor *dst, const lm_tensor *src, const lm_tensor *idx) {
    if (!dst || !src || !idx) { lm_graph_fail(g, "set_rows: missing operand"); return; }
    bool ok_types = (dst->type == LM_I32 && src->type == LM_I32) ||
                    ((dst->type == LM_F32 || dst->type == LM_F16 || dst->type == LM_BF16 ||
                      (dst->type == LM_E4M3 && src->ne[0] % 4 == 0) || (dst->type == LM_Q8_0 && src->ne[0] % 32 == 0)) &&
                     src->type == LM_F32);
    if (!ok_types) { lm_graph_fail(g, "set_rows: %s <- %s not supported", lm_dtype_name(dst->type), lm_dtype_name(src->type)); return; }
    if (dst->ne[0] != src->ne[0] || dst->ne[2] != 1 || dst->ne[3] != 1 || src->ne[2] != 1 || src->ne[3] != 1 ||
        !is_vec_i32(idx, src->ne[1]) || src->nb[0] != (size_t)lm_dtype_get(src->type)->block_bytes) {
        lm_graph_fail(g, "set_rows: shapes dst [%lld, %lld] src [%lld, %lld] idx %lld", (long long)dst->ne[0],
                      (long long)dst->ne[1], (long long)src->ne[0], (long long)src->ne[1], (long long)idx->ne[0]);
        return;
    }
    lm_node n = {.op = LM_OP_SET_ROWS, .dst = dst, .src = {src, idx}};
    enqueue(g, &n);
}

static bool v_rms_norm(lm_graph *g, const lm_tensor *x, const lm_tensor *w, const lm_tensor *res) {
    bool ok = is_f32_rows(x) && (!w || (is_f32_rows(w) && w->ne[0] == x->ne[0] && lm_tensor_nrows(w) == 1)) &&
              (!res || (is_f32_rows(res) && lm_tensor_same_shape(res, x)));
    if (!ok)
        lm_graph_fail(g, "rms_norm: x '%s' [%lld x %lld], weight '%s' [%lld]", x ? x->name : "-", x ? (long long)x->ne[0] : 0,
                      x ? (long long)lm_tensor_nrows(x) : 0, w ? w->name : "-", w ? (long long)w->ne[0] : 0);
    return ok;
}

lm_tensor *lm_rms_norm(lm_graph *g, const lm_tensor *x, const lm_tensor *w, const lm_tensor *res, float eps) {
    if (!v_rms_norm(g, x, w, res)) return lm_new_tensor_2d(g, LM_F32, 1, 1);
    lm_tensor *dst = lm_new_tensor(g, LM_F32, 4, x->ne);
    lm_node n = {.op = LM_OP_RMS_NORM, .dst = dst, .src = {x, w, res}, .fp = {eps}};
    enqueue(g, &n);
    return dst;
}

void lm_rms_norm_into(lm_graph *g, lm_tensor *dst, const lm_tensor *x, const lm_tensor *w, const lm_tensor *res, float eps) {
    if (!v_rms_norm(g, x, w, res)) return;
    if (!is_f32_rows(dst) || !lm_tensor_same_shape(dst, x)) {
        lm_graph_fail(g, "rms_norm: destination shape differs from the input");
        return;
    }
    lm_node n = {.op = LM_OP_RMS_NORM, .dst = dst, .src = {x, w, res}, .fp = {eps}};
    enqueue(g, &n);
}

lm_tensor *lm_matmul(lm_graph *g, const lm_tensor *w, const lm_tensor *x) { return lm_matmul_hinted(g, w, x, 0); }

lm_tensor *lm_matmul_hinted(lm_graph *g, const lm_tensor *w, const lm_tensor *x, int32_t hints) {
    bool ok = w && x && is_f32_rows(x) && w->ne[0] == x->ne[0] && w->ne[2] == 1 && w->ne[3] == 1 &&
              x->ne[2] == 1 && x->ne[3] == 1 && lm_tensor_is_contiguous(w) && lm_dtype_get(w->type)->dequant;
    if (!ok) {
        lm_graph_fail(g, "matmul: weight '%s' %s [%lld, %lld, %lld] with x [%lld, %lld, %lld]", w ? w->name : "-",
                      w ? lm_dtype_name(w->type) : "-", w ? (long long)w->ne[0] : 0, w ? (long long)w->ne[1] : 0,
                      w ? (long long)w->ne[2] : 0, x ? (long long)x->ne[0] : 0, x ? (long long)x->ne[1] : 0,
                      x ? (long long)x->ne[2] : 0);
        return lm_new_tensor_2d(g, LM_F32, 1, 1);
    }
    lm_tensor *dst = lm_new_tensor_2d(g, LM_F32, w->ne[1], x->ne[1]);
    lm_node n = {.op = LM_OP_MATMUL, .dst = dst, .src = {w, x}, .ip = {hints}};
    enqueue(g, &n);
    return dst;
}

lm_tensor *lm_matmul_id(lm_graph *g, const lm_tensor *w, const lm_tensor *x, const lm_tensor *ids) {
    return lm_matmul_id_hinted(g, w, x, ids, 0);
}

lm_tensor *lm_matmul_id_hinted(lm_graph *g, const lm_tensor *w, const lm_tensor *x, const lm_tensor *ids, int32_t hints) {
    bool ok = w && x && ids && is_f32_rows(x) && w->ne[0] == x->ne[0] && w->ne[3] == 1 && x->ne[3] == 1 &&
              lm_tensor_is_contiguous(w) && ids->type == LM_I32 && ids->ne[2] == 1 && ids->ne[3] == 1 &&
              ids->nb[0] == 4 && (x->ne[1] == 1 || x->ne[1] == ids->ne[0]) && x->ne[2] == ids->ne[1] &&
              lm_dtype_get(w->type)->dequant;
    if (!ok) {
        lm_graph_fail(g, "matmul_id: weight '%s' [%lld, %lld, %lld] x [%lld, %lld, %lld] ids [%lld, %lld]",
                      w ? w->name : "-", w ? (long long)w->ne[0] : 0, w ? (long long)w->ne[1] : 0,
                      w ? (long long)w->ne[2] : 0, x ? (long long)x->ne[0] : 0, x ? (long long)x->ne[1] : 0,
                      x ? (long long)x->ne[2] : 0, ids ? (long long)ids->ne[0] : 0, ids ? (long long)ids->ne[1] : 0);
        return lm_new_tensor_2d(g, LM_F32, 1, 1);
    }
    int64_t ne[3] = {w->ne[1], ids->ne[0], ids->ne[1]};
    lm_tensor *dst = lm_new_tensor(g, LM_F32, 3, ne);
    lm_node n = {.op = LM_OP_MATMUL_ID, .dst = dst, .src = {w, x, ids}, .ip = {hints}};
    enqueue(g, &n);
    return dst;
}

void lm_node_rope_pack(lm_node *n, const lm_rope_params *rp, int ip0, int fp0) {
    n->ip[ip0 + 0] = rp->n_pairs;
    n->ip[ip0 + 1] = rp->freq_dim;
    n->ip[ip0 + 2] = rp->mode;
    n->fp[fp0 + 0] = rp->theta;
    n->fp[fp0 + 1] = rp->freq_scale;
}

lm_rope_params lm_node_rope_unpack(const lm_node *n, int ip0, int fp0) {
    return (lm_rope_params){n->ip[ip0], n->ip[ip0 + 1], n->ip[ip0 + 2], n->fp[fp0], n->fp[fp0 + 1]};
}

static bool v_rope(lm_graph *g, int64_t d, const lm_tensor *factors, const lm_rope_params *rp) {
    CHECK(d % 2 == 0, "rope: odd head dim %lld", (long long)d);
    CHECK(rp->n_pairs >= 0 && rp->n_pairs <= d / 2 && rp->freq_dim > 0, "rope: %d rotated pairs for head dim %lld",
          rp->n_pairs, (long long)d);
    CHECK(rp->mode == LM_ROPE_NEOX || rp->mode == LM_ROPE_NORM, "rope: unknown mode %d", rp->mode);
    CHECK(!factors || (is_f32_rows(factors) && factors->ne[0] >= rp->n_pairs && lm_tensor_nrows(factors) == 1),
          "rope: frequency factors must be f32 with >= %d entries", rp->n_pairs);
    return true;
}

lm_tensor *lm_rope(lm_graph *g, const lm_tensor *x, const lm_tensor *pos, const lm_tensor *factors,
                   const lm_rope_params *rp) {
    if (!is_f32_rows(x) || x->ne[3] != 1 || !is_vec_i32(pos, x->ne[2]) || !v_rope(g, x->ne[0], factors, rp)) {
        lm_graph_fail(g, "rope: x '%s' [%lld, %lld, %lld]", x ? x->name : "-", x ? (long long)x->ne[0] : 0,
                      x ? (long long)x->ne[1] : 0, x ? (long long)x->ne[2] : 0);
        return lm_new_tensor_2d(g, LM_F32, 1, 1);
    }
    lm_tensor *dst = lm_new_tensor(g, LM_F32, 3, x->ne);
    lm_node n = {.op = LM_OP_ROPE, .dst = dst, .src = {x, pos, factors}};
    lm_node_rope_pack(&n, rp, 0, 0);
    enqueue(g, &n);
    return dst;
}

lm_attn_params lm_node_attn_unpack(const lm_node *n) {
    lm_attn_params ap;
    ap.cells_per_seq = n->ip[0];
    ap.ring = n->ip[1] != 0;
    ap.window = n->ip[2];
    ap.k_from_v = n->ip[3] != 0;
    ap.page = n->ip[7];
    ap.scale = n->fp[0];
    ap.softcap = n->fp[1];
    ap.rope = lm_node_rope_unpack(n, 4, 2);
    return ap;
}

static bool float_kv_type(lm_dtype t) { return t == LM_F32 || t == LM_F16 || t == LM_BF16; }
/* KV-cache types attention reads: the float types plus the 8-bit q8_0 and e4m3 (rows of e4m3
   a multiple of 4 bytes, so GPU backends read and write whole words) */
static bool kv_type_ok(const lm_tensor *t) {
    return float_kv_type(t->type) || t->type == LM_Q8_0 || (t->type == LM_E4M3 && t->ne[0] % 4 == 0);
}

lm_tensor *lm_attention(lm_graph *g, const lm_tensor *q, const lm_tensor *k, const lm_tensor *v,
                        const lm_tensor *cell_pos, const lm_tensor *pages, const lm_tensor *pos, const lm_tensor *seq,
                        const lm_tensor *k_norm, const lm_tensor *factors, const lm_attn_params *ap) {
    bool ok = is_f32_rows(q) && k && v && kv_type_ok(k) && kv_type_ok(v) && q->ne[3] == 1 &&
              k->ne[0] == q->ne[0] && k->ne[1] >= 1 && q->ne[1] % k->ne[1] == 0 && v->ne[1] == k->ne[1] &&
              v->ne[2] == k->ne[2] && k->nb[0] == (size_t)lm_dtype_get(k->type)->block_bytes &&
              v->nb[0] == (size_t)lm_dtype_get(v->type)->block_bytes && cell_pos && is_vec_i32(cell_pos, cell_pos->ne[0]) &&
              cell_pos->ne[0] >= k->ne[2] && cell_pos->ne[0] % ap->page == 0 &&
              is_vec_i32(pos, q->ne[2]) && is_vec_i32(seq, q->ne[2]) && ap->cells_per_seq > 0 && ap->page > 0 &&
              k->ne[2] % ap->page == 0 && ap->window >= 0 && pages && pages->type == LM_I32 && lm_tensor_is_contiguous(pages) &&
              pages->ne[2] == 1 && pages->ne[3] == 1 && pages->ne[0] * ap->page >= ap->cells_per_seq &&
              (!ap->ring || ap->page == ap->cells_per_seq);
    if (ok && ap->k_from_v)
        ok = v->ne[0] == k->ne[0] && k_norm && is_f32_rows(k_norm) && k_norm->ne[0] == k->ne[0] &&
             v_rope(g, k->ne[0], factors, &ap->rope);
    if (!ok) {
        lm_graph_fail(g, "attention: q [%lld, %lld, %lld] k %s [%lld, %lld, %lld] v [%lld, %lld, %lld] cps %d page %d pages [%lld, %lld]",
                      q ? (long long)q->ne[0] : 0, q ? (long long)q->ne[1] : 0, q ? (long long)q->ne[2] : 0,
                      k ? lm_dtype_name(k->type) : "-", k ? (long long)k->ne[0] : 0, k ? (long long)k->ne[1] : 0,
                      k ? (long long)k->ne[2] : 0, v ? (long long)v->ne[0] : 0, v ? (long long)v->ne[1] : 0,
                      v ? (long long)v->ne[2] : 0, ap->cells_per_seq, ap->page, pages ? (long long)pages->ne[0] : 0,
                      pages ? (long long)pages->ne[1] : 0);
        return lm_new_tensor_2d(g, LM_F32, 1, 1);
    }
    int64_t ne[3] = {v->ne[0], q->ne[1], q->ne[2]};
    lm_tensor *dst = lm_new_tensor(g, LM_F32, 3, ne);
    lm_node n = {.op = LM_OP_ATTENTION, .dst = dst, .src = {q, k, v, cell_pos, pos, seq, k_norm, factors, pages}};
    n.ip[0] = ap->cells_per_seq;
    n.ip[7] = ap->page;
    n.ip[1] = ap->ring;
    n.ip[2] = ap->window;
    n.ip[3] = ap->k_from_v;
    n.fp[0] = ap->scale;
    n.fp[1] = ap->softcap;
    lm_node_rope_pack(&n, &ap->rope, 4, 2);
    enqueue(g, &n);
    return dst;
}

static lm_tensor *binary(lm_graph *g, lm_op op, const lm_tensor *a, const lm_tensor *b, bool allow_bcast) {
    bool ok = is_f32_rows(a) && is_f32_rows(b) &&
              (lm_tensor_same_shape(a, b) || (allow_bcast && b->ne[0] == a->ne[0] && lm_tensor_nrows(b) == 1));
    if (!ok) {
        lm_graph_fail(g, "%s: shapes [%lld, %lld, %lld] and [%lld, %lld, %lld]", lm_op_name(op),
                      a ? (long long)a->ne[0] : 0, a ? (long long)a->ne[1] : 0, a ? (long long)a->ne[2] : 0,
                      b ? (long long)b->ne[0] : 0, b ? (long long)b->ne[1] : 0, b ? (long long)b->ne[2] : 0);
        return lm_new_tensor_2d(g, LM_F32, 1, 1);
    }
    lm_tensor *dst = lm_new_tensor(g, LM_F32, 4, a->ne);
    lm_node n = {.op = op, .dst = dst, .src = {a, b}};
    enqueue(g, &n);
    return dst;
}

lm_tensor *lm_geglu(lm_graph *g, const lm_tensor *gate, const lm_tensor *up) { return binary(g, LM_OP_GEGLU, gate, up, false); }
lm_tensor *lm_swiglu(lm_graph *g, const lm_tensor *gate, const lm_tensor *up) { return binary(g, LM_OP_SWIGLU, gate, up, false); }
lm_tensor *lm_add(lm_graph *g, const lm_tensor *a, const lm_tensor *b) { return binary(g, LM_OP_ADD, a, b, true); }
lm_tensor *lm_mul(lm_graph *g, const lm_tensor *a, const lm_tensor *b) { return binary(g, LM_OP_MUL, a, b, true); }

static lm_tensor *unary(lm_graph *g, lm_op op, const lm_tensor *x, float f) {
    if (!is_f32_rows(x)) {
        lm_graph_fail(g, "%s: input must be f32", lm_op_name(op));
        return lm_new_tensor_2d(g, LM_F32, 1, 1);
    }
    lm_tensor *dst = lm_new_tensor(g, LM_F32, 4, x->ne);
    lm_node n = {.op = op, .dst = dst, .src = {x}, .fp = {f}};
    enqueue(g, &n);
    return dst;
}

lm_tensor *lm_scale(lm_graph *g, const lm_tensor *x, float s) { return unary(g, LM_OP_SCALE, x, s); }

void lm_add_into(lm_graph *g, lm_tensor *dst, const lm_tensor *a, const lm_tensor *b) {
    if (!is_f32_rows(a) || !is_f32_rows(b) || !is_f32_rows(dst) || !lm_tensor_same_shape(dst, a) ||
        !lm_tensor_same_shape(a, b)) {
        lm_graph_fail(g, "add: bad operands");
        return;
    }
    lm_node n = {.op = LM_OP_ADD, .dst = dst, .src = {a, b}};
    enqueue(g, &n);
}

void lm_scale_into(lm_graph *g, lm_tensor *dst, const lm_tensor *x, float s) {
    if (!is_f32_rows(x) || !is_f32_rows(dst) || !lm_tensor_same_shape(dst, x)) {
        lm_graph_fail(g, "scale: bad operands");
        return;
    }
    lm_node n = {.op = LM_OP_SCALE, .dst = dst, .src = {x}, .fp = {s}};
    enqueue(g, &n);
}

lm_tensor lm_tensor_cols(const lm_tensor *t, int64_t i0, int64_t n) {
    const lm_dtype_traits *tr = lm_dtype_get(t->type);
    LM_ASSERT(i0 >= 0 && n >= 1 && i0 + n <= t->ne[0] && i0 % tr->block == 0 && n % tr->block == 0);
    lm_tensor v = *t;
    v.offs += (size_t)(i0 / tr->block) * (size_t)tr->block_bytes;
    v.ne[0] = n;
    return v;
}

lm_tensor *lm_softcap(lm_graph *g, const lm_tensor *x, float cap) {
    if (!(cap > 0.0f)) {
        lm_graph_fail(g, "softcap: cap %g must be > 0", (double)cap);
        return lm_new_tensor_2d(g, LM_F32, 1, 1);
    }
    return unary(g, LM_OP_SOFTCAP, x, cap);
}

lm_tensor *lm_topk(lm_graph *g, const lm_tensor *x, int k) {
    if (!is_f32_rows(x) || x->ne[2] != 1 || x->ne[3] != 1 || k < 1 || k > x->ne[0]) {
        lm_graph_fail(g, "topk: k = %d of rows of %lld", k, x ? (long long)x->ne[0] : 0);
        return lm_new_tensor_2d(g, LM_I32, 1, 1);
    }
    lm_tensor *dst = lm_new_tensor_2d(g, LM_I32, k, x->ne[1]);
    lm_node n = {.op = LM_OP_TOPK, .dst = dst, .src = {x}, .ip = {k}};
    enqueue(g, &n);
    return dst;
}

lm_tensor *lm_moe_weights(lm_graph *g, const lm_tensor *logits, const lm_tensor *ids, const lm_tensor *scale) {
    bool ok = is_f32_rows(logits) && logits->ne[2] == 1 && ids && ids->type == LM_I32 && ids->nb[0] == 4 &&
              ids->ne[1] == logits->ne[1] && ids->ne[2] == 1 &&
              (!scale || (is_f32_rows(scale) && scale->ne[0] == logits->ne[0] && lm_tensor_nrows(scale) == 1));
    if (!ok) {
        lm_graph_fail(g, "moe_weights: bad operands");
        return lm_new_tensor_2d(g, LM_F32, 1, 1);
    }
    lm_tensor *dst = lm_new_tensor_2d(g, LM_F32, ids->ne[0], ids->ne[1]);
    lm_node n = {.op = LM_OP_MOE_WEIGHTS, .dst = dst, .src = {logits, ids, scale}};
    enqueue(g, &n);
    return dst;
}

lm_tensor *lm_moe_sum(lm_graph *g, const lm_tensor *y, const lm_tensor *w) {
    bool ok = is_f32_rows(y) && is_f32_rows(w) && y->ne[1] == w->ne[0] && y->ne[2] == w->ne[1] && y->ne[3] == 1 &&
              w->ne[2] == 1;
    if (!ok) {
        lm_graph_fail(g, "moe_sum: bad operands");
        return lm_new_tensor_2d(g, LM_F32, 1, 1);
    }
    lm_tensor *dst = lm_new_tensor_2d(g, LM_F32, y->ne[0], y->ne[2]);
    lm_node n = {.op = LM_OP_MOE_SUM, .dst = dst, .src = {y, w}};
    enqueue(g, &n);
    return dst;
}

void lm_cpy(lm_graph *g, lm_tensor *dst, const lm_tensor *src) {
    bool ok = dst && src && float_kv_type(dst->type) && float_kv_type(src->type) && lm_tensor_same_shape(dst, src) &&
              dst->nb[0] == (size_t)lm_dtype_get(dst->type)->block_bytes && src->nb[0] == (size_t)lm_dtype_get(src->type)->block_bytes;
    if (!ok) {
        lm_graph_fail(g, "cpy: incompatible tensors");
        return;
    }
    lm_node n = {.op = LM_OP_CPY, .dst = dst, .src = {src}};
    enqueue(g, &n);
}

/* ---------------------------------------------------------------------------------------- */

void lm_node_cost(const lm_node *n, double *bytes, double *flops) {
    double b = (double)lm_tensor_nbytes(n->dst), f = 0;
    for (int i = 0; i < LM_MAX_SRC; i++)
        if (n->src[i]) b += (double)lm_tensor_nbytes(n->src[i]);
    const lm_tensor *d = n->dst;
    switch (n->op) {
    case LM_OP_MATMUL: f = 2.0 * (double)n->src[0]->ne[0] * (double)d->ne[0] * (double)d->ne[1]; break;
    case LM_OP_MATMUL_ID: {
        /* only the selected experts are read: weights bytes scale with the distinct ids (<= J*n) */
        const lm_tensor *w = n->src[0];
        double per_expert = (double)lm_row_bytes(w->type, w->ne[0]) * (double)w->ne[1];
        double used = (double)d->ne[1] * (double)d->ne[2];
        if (used > (double)w->ne[2]) used = (double)w->ne[2];
        b += per_expert * used - (double)lm_tensor_nbytes(w);
        f = 2.0 * (double)w->ne[0] * (double)d->ne[0] * (double)d->ne[1] * (double)d->ne[2];
        break;
    }
    case LM_OP_GET_ROWS: {
        const lm_tensor *t = n->src[0];
        b = (double)lm_tensor_nbytes(d) * 2.0 + (double)lm_row_bytes(t->type, t->ne[0]) * (double)d->ne[1] -
            (double)lm_tensor_nbytes(d);
        break;
    }
    case LM_OP_ATTENTION: {
        /* upper bound: every cell of each token's sequence (the host does not know how many hold
           visible positions without reading device memory); bytes likewise count whole caches */
        const lm_tensor *q = n->src[0];
        f = 4.0 * (double)q->ne[0] * (double)q->ne[1] * (double)q->ne[2] * (double)n->ip[0];
        break;
    }
    default: f = (double)lm_tensor_nelements(d); break;
    }
    *bytes = b;
    *flops = f;
}
