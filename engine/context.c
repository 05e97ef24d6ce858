/*
 * context.c — lm_context: KV cache, step buffer, activation arena and batched decode.
 *
 * At creation the worst-case step (n_batch tokens, n_outputs_max logits rows) is recorded once
 * in measure mode to size the arena, so decode never allocates. A decode call validates the
 * batch, computes each token's cache cells on the host, uploads the step buffer (tokens,
 * positions, sequence ids, cells, output rows) in one copy, records the forward pass on the
 * model's backend, submits it, and reads back only the logits rows that were asked for — or, in
 * LM_OUTPUT_ARGMAX contexts, only their greedy tokens, found on the device.
 */
#define _GNU_SOURCE
#include "models/models.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ST_TOKENS, ST_POS, ST_SEQ, ST_CELL_SWA, ST_CELL_FULL, ST_OUT, ST_COUNT };

struct lm_context {
    lm_model *model;
    lm_context_params p;
    lm_kv kv;
    int n_dev;            /* the model's devices (2 when split between a GPU and the CPU) */
    lm_buffer *step_buf[LM_GRAPH_MAX_DEVS];  /* i32 step inputs, a copy per device */
    lm_buffer *arena_buf[LM_GRAPH_MAX_DEVS]; /* activations, per device */
    int32_t *step_host;   /* staging copy of the step buffer */
    size_t step_off[ST_COUNT];
    size_t step_bytes;
    lm_graph *graph;
    float *logits;        /* [n_outputs_max][n_vocab] (LM_OUTPUT_LOGITS) */
    int32_t *argmax;      /* [n_outputs_max] */
    int32_t n_outputs;
    int64_t *sort_scratch; /* [n_batch] for the distinct-position check */
    double last_decode_s;
};

lm_context_params lm_context_default_params(void) {
    return (lm_context_params){.n_ctx = 0, .n_batch = 512, .n_seq_max = 1, .n_outputs_max = 1, .kv_type = LM_KV_F16,
                               .output = LM_OUTPUT_LOGITS};
}

lm_status lm_context_params_normalize(const lm_model *m, const lm_context_params *in, lm_context_params *p) {
    *p = in ? *in : lm_context_default_params();
    if (p->n_ctx == 0) p->n_ctx = (uint32_t)(m->hp.n_ctx_train < 4096 ? m->hp.n_ctx_train : 4096);
    if (p->n_ctx > (1u << 24)) return lm_fail(LM_STATUS_INVALID_ARGUMENT, "n_ctx %u is larger than 16M", p->n_ctx);
    if (p->n_batch == 0) p->n_batch = 512;
    if (p->n_batch > p->n_ctx) p->n_batch = p->n_ctx;
    if (p->n_batch > 65536) return lm_fail(LM_STATUS_INVALID_ARGUMENT, "n_batch %u is larger than 65536", p->n_batch);
    if (p->n_seq_max == 0) p->n_seq_max = 1;
    if (p->n_seq_max > 1024) return lm_fail(LM_STATUS_INVALID_ARGUMENT, "n_seq_max %u is larger than 1024", p->n_seq_max);
    if (p->n_outputs_max == 0 || p->n_outputs_max > p->n_batch) p->n_outputs_max = p->n_batch;
    if ((unsigned)p->kv_type > LM_KV_FP8) return lm_fail(LM_STATUS_INVALID_ARGUMENT, "unknown KV type %d", (int)p->kv_type);
    /* q8_0 blocks must not straddle heads; e4m3 rows are read and written in 4-byte words */
    const int kv_mult = p->kv_type == LM_KV_Q8_0 ? 32 : p->kv_type == LM_KV_FP8 ? 4 : 1;
    for (int il = 0; il < m->hp.n_layer && kv_mult > 1; il++)
        if (m->layers[il].head_dim % kv_mult || m->layers[il].head_dim_v % kv_mult)
            return lm_fail(LM_STATUS_INVALID_ARGUMENT, "KV type %s needs head dims that are multiples of %d (layer %d: %d / %d)",
                           lm_kv_type_name(p->kv_type), kv_mult, il, m->layers[il].head_dim, m->layers[il].head_dim_v);
    if (p->kv_page == 0) p->kv_page = LM_KV_PAGE_DEFAULT;
    if (p->kv_page > p->n_ctx) p->kv_page = p->n_ctx;
    if (p->kv_cells && p->kv_cells < p->kv_page)
        return lm_fail(LM_STATUS_INVALID_ARGUMENT, "kv_cells %u is smaller than one page of %u cells", p->kv_cells, p->kv_page);
    if (p->output != LM_OUTPUT_LOGITS && p->output != LM_OUTPUT_ARGMAX)
        return lm_fail(LM_STATUS_INVALID_ARGUMENT, "unknown output kind %d", (int)p->output);
    return LM_STATUS_OK;
}

lm_dtype lm_kv_dtype(lm_kv_type t) {
    switch (t) {
    case LM_KV_F32: return LM_F32;
    case LM_KV_BF16: return LM_BF16;
    case LM_KV_Q8_0: return LM_Q8_0;
    case LM_KV_FP8: return LM_E4M3;
    default: return LM_F16;
    }
}

static const char *const kv_names[] = {"f32", "f16", "bf16", "q8_0", "fp8"};

const char *lm_kv_type_name(lm_kv_type t) { return (unsigned)t <= LM_KV_FP8 ? kv_names[t] : "?"; }

lm_status lm_kv_type_parse(const char *name, lm_kv_type *out) {
    for (int i = 0; name && i <= LM_KV_FP8; i++)
        if (!strcmp(name, kv_names[i])) {
            if (out) *out = (lm_kv_type)i;
            return LM_STATUS_OK;
        }
    if (name && !strcmp(name, "f8_e4m3")) {
        if (out) *out = LM_KV_FP8;
        return LM_STATUS_OK;
    }
    return lm_fail(LM_STATUS_INVALID_ARGUMENT, "unknown KV type '%s' (f32, f16, bf16, q8_0, fp8)", name ? name : "(null)");
}

/* Views of the step buffers for a step of n tokens and n_out outputs. */
static void step_views(lm_context *c, int32_t n, int32_t n_out, lm_tensor t[][ST_COUNT]) {
    for (int d = 0; d < c->n_dev; d++)
        for (int i = 0; i < ST_COUNT; i++) {
            int64_t ne = i == ST_OUT ? (n_out > 0 ? n_out : 1) : n;
            lm_tensor_init(&t[d][i], LM_I32, 1, &ne);
            t[d][i].buf = c->step_buf[d];
            t[d][i].offs = c->step_off[i];
        }
}

static lm_tensor *record(lm_context *c, int32_t n, int32_t n_out, bool measure, lm_tensor views[][ST_COUNT]) {
    lm_graph_init(c->graph, c->model->be, c->arena_buf[0], measure);
    for (int d = 1; d < c->n_dev; d++) lm_graph_add_device(c->graph, c->model->devs[d], c->arena_buf[d]);
    step_views(c, n, n_out, views);
    lm_step s = {.n_tokens = n, .n_outputs = n_out};
    for (int d = 0; d < c->n_dev; d++)
        s.io[d] = (lm_step_io){
            .tokens = &views[d][ST_TOKENS],
            .pos = &views[d][ST_POS],
            .seq = &views[d][ST_SEQ],
            .cells = {&views[d][ST_CELL_SWA], &views[d][ST_CELL_FULL]},
            .out_ids = &views[d][ST_OUT],
        };
    lm_tensor *logits = LM_ARCH_IS_LLAMA(c->model->arch) ? lm_llama_forward(c->model, &c->kv, c->graph, &s)
                                                          : lm_gemma_forward(c->model, &c->kv, c->graph, &s);
    if (c->p.output == LM_OUTPUT_ARGMAX && logits) return lm_topk(c->graph, logits, 1);
    return logits;
}

lm_status lm_model_estimate_memory(const lm_model *m, const lm_context_params *params, uint64_t *kv_bytes,
                                   uint64_t *compute_bytes) {
    if (!m) return lm_fail(LM_STATUS_INVALID_ARGUMENT, "lm_model_estimate_memory: NULL model");
    lm_context_params p;
    LM_TRY(lm_context_params_normalize(m, params, &p));
    lm_kv_geom geom[LM_KV_KINDS];
    lm_kv_geometry(m, &p, geom);
    uint64_t kv = 0;
    for (int k = 0; k < LM_KV_KINDS; k++) {
        const uint64_t per_cell = lm_model_kv_bytes_per_cell(m, k, lm_kv_dtype(p.kv_type));
        /* + the cell's position, + the page tables */
        if (per_cell)
            kv += per_cell * (uint64_t)lm_kv_geom_kv_cells(&geom[k]) + 4ull * (uint64_t)lm_kv_geom_cells(&geom[k]) +
                  4ull * (uint64_t)geom[k].pps * p.n_seq_max;
    }
    if (kv_bytes) *kv_bytes = kv;
    if (compute_bytes) {
        /* measure the worst-case step without allocating anything */
        if (m->vocab_only) {
            *compute_bytes = 0;
        } else {
            lm_context tmp = {.model = (lm_model *)m, .p = p, .n_dev = m->vocab_only || m->n_dev < 1 ? 1 : m->n_dev};
            tmp.graph = malloc(sizeof(lm_graph));
            if (!tmp.graph) return lm_fail(LM_STATUS_OUT_OF_MEMORY, "out of memory");
            tmp.kv.n_layer = m->hp.n_layer;
            tmp.kv.layers = calloc((size_t)m->hp.n_layer, sizeof(lm_kv_layer));
            for (int k = 0; k < LM_KV_KINDS; k++) {
                lm_kv_kind *kk = &tmp.kv.kind[k];
                kk->used = true;
                lm_kv_kind_shape(kk, &geom[k]);
                int64_t cells = lm_kv_geom_cells(&geom[k]), tne[2] = {geom[k].pps, p.n_seq_max};
                for (int d = 0; d < tmp.n_dev; d++) {
                    lm_tensor_init(&kk->cell_pos[d], LM_I32, 1, &cells);
                    lm_tensor_init(&kk->pages[d], LM_I32, 2, tne);
                }
            }
            for (int il = 0; il < m->hp.n_layer && tmp.kv.layers; il++) {
                const lm_layer *L = &m->layers[il];
                lm_kv_layer *kl = &tmp.kv.layers[il];
                int kind = L->sliding ? LM_KV_KIND_SWA : LM_KV_KIND_FULL;
                int64_t cells = lm_kv_geom_kv_cells(&geom[kind]);
                int64_t nek[2] = {(int64_t)L->head_dim * L->n_head_kv, cells}, nev[2] = {(int64_t)L->head_dim_v * L->n_head_kv, cells};
                kl->kind = kind;
                kl->has_cache = L->kv_layer == il;
                kl->has_k = !L->k_eq_v;
                lm_tensor_init(&kl->k, lm_kv_dtype(p.kv_type), 2, nek);
                lm_tensor_init(&kl->v, lm_kv_dtype(p.kv_type), 2, nev);
            }
            lm_tensor views[LM_GRAPH_MAX_DEVS][ST_COUNT];
            record(&tmp, (int32_t)p.n_batch, (int32_t)p.n_outputs_max, true, views);
            *compute_bytes = 0;
            for (int d = 0; d < tmp.n_dev; d++) *compute_bytes += lm_graph_peak(tmp.graph, d);
            free(tmp.kv.layers);
            free(tmp.graph);
        }
    }
    return LM_STATUS_OK;
}

lm_status lm_context_create(lm_model *m, const lm_context_params *params, lm_context **out) {
    lm_clear_error();
    if (!m || !out) return lm_fail(LM_STATUS_INVALID_ARGUMENT, "lm_context_create: NULL argument");
    *out = NULL;
    if (m->vocab_only) return lm_fail(LM_STATUS_INVALID_ARGUMENT, "model was loaded vocab-only");
    lm_context *c = calloc(1, sizeof *c);
    if (!c) return lm_fail(LM_STATUS_OUT_OF_MEMORY, "out of memory");
    c->model = m;
    c->n_dev = m->n_dev > 0 ? m->n_dev : 1;
    lm_status st = lm_context_params_normalize(m, params, &c->p);
    if (st) goto fail;
    lm_backend *be = m->be;

    /* sanity-check the total against the device before allocating */
    uint64_t kv_bytes, logits_bytes;
    if ((st = lm_model_estimate_memory(m, &c->p, &kv_bytes, NULL))) goto fail;
    if (!lm_mul_ok((uint64_t)c->p.n_outputs_max * 4u, c->p.output == LM_OUTPUT_LOGITS ? (uint64_t)m->hp.n_vocab : 1u,
                   &logits_bytes)) {
        st = lm_fail(LM_STATUS_OUT_OF_MEMORY, "logits buffer size overflows");
        goto fail;
    }
    lm_device_info di;
    if ((st = be->ops->device_info(be, &di))) goto fail;
    if (c->n_dev == 1 && di.memory_total && kv_bytes + logits_bytes > di.memory_total) {
        st = lm_fail(LM_STATUS_OUT_OF_MEMORY, "context needs %.2f GiB of KV cache and logits; the device has %.2f GiB",
                     (double)(kv_bytes + logits_bytes) / (1u << 30), (double)di.memory_total / (1u << 30));
        goto fail;
    }

    if ((st = lm_kv_init(&c->kv, m, lm_kv_dtype(c->p.kv_type), &c->p))) goto fail;

    /* step buffer */
    size_t off = 0;
    for (int i = 0; i < ST_COUNT; i++) {
        c->step_off[i] = off;
        off += lm_pad((size_t)(i == ST_OUT ? c->p.n_outputs_max : c->p.n_batch) * 4, 256);
    }
    c->step_bytes = off;
    for (int d = 0; d < c->n_dev; d++)
        if ((st = m->devs[d]->ops->buffer_alloc(m->devs[d], off, LM_BUF_STEP, &c->step_buf[d]))) goto fail;
    c->step_host = calloc(1, off);
    c->graph = calloc(1, sizeof(lm_graph)); /* zeroed: lm_context_free may see it before its first step */
    c->logits = malloc((size_t)logits_bytes);
    c->argmax = malloc((size_t)c->p.n_outputs_max * sizeof(int32_t));
    c->sort_scratch = malloc((size_t)c->p.n_batch * sizeof(int64_t));
    if (!c->step_host || !c->graph || !c->logits || !c->argmax || !c->sort_scratch) {
        st = lm_fail(LM_STATUS_OUT_OF_MEMORY, "cannot allocate %.1f MiB of host logits",
                     (double)logits_bytes / (1 << 20));
        goto fail;
    }

    /* size the arena with a measured worst-case step */
    lm_tensor views[LM_GRAPH_MAX_DEVS][ST_COUNT];
    record(c, (int32_t)c->p.n_batch, (int32_t)c->p.n_outputs_max, true, views);
    if ((st = lm_graph_status(c->graph))) goto fail;
    for (int d = 0; d < c->n_dev; d++) {
        lm_backend *b = m->devs[d];
        if ((st = b->ops->buffer_alloc(b, lm_graph_peak(c->graph, d) + 256, LM_BUF_COMPUTE, &c->arena_buf[d]))) goto fail;
    }
    *out = c;
    return LM_STATUS_OK;
fail:
    lm_context_free(c);
    return st;
}

void lm_context_free(lm_context *c) {
    if (!c) return;
    for (int d = 0; d < LM_GRAPH_MAX_DEVS; d++) {
        if (c->step_buf[d]) c->step_buf[d]->be->ops->buffer_free(c->step_buf[d]);
        if (c->arena_buf[d]) c->arena_buf[d]->be->ops->buffer_free(c->arena_buf[d]);
    }
    if (c->graph) lm_graph_free_staging(c->graph);
    lm_kv_free(&c->kv);
    free(c->step_host);
    free(c->graph);
    free(c->logits);
    free(c->argmax);
    free(c->sort_scratch);
    free(c);
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static lm_status validate(lm_context *c, const lm_batch_entry *e, int32_t n, int32_t *n_out) {
    const lm_context_params *p = &c->p;
    if (!e || n < 1) return lm_fail(LM_STATUS_INVALID_ARGUMENT, "decode: empty batch");
    if ((uint32_t)n > p->n_batch)
        return lm_fail(LM_STATUS_INVALID_ARGUMENT, "decode: batch of %d tokens exceeds n_batch %u", n, p->n_batch);
    int32_t outs = 0;
    for (int32_t i = 0; i < n; i++) {
        if (e[i].token < 0 || e[i].token >= c->model->hp.n_vocab)
            return lm_fail(LM_STATUS_INVALID_ARGUMENT, "decode: token %d at entry %d is outside the vocabulary [0, %d)",
                           e[i].token, i, c->model->hp.n_vocab);
        if (e[i].seq < 0 || (uint32_t)e[i].seq >= p->n_seq_max)
            return lm_fail(LM_STATUS_INVALID_ARGUMENT, "decode: sequence id %d at entry %d is outside [0, %u)", e[i].seq, i,
                           p->n_seq_max);
        if (e[i].pos < 0) return lm_fail(LM_STATUS_INVALID_ARGUMENT, "decode: negative position at entry %d", i);
        if ((uint32_t)e[i].pos >= p->n_ctx)
            return lm_fail(LM_STATUS_CONTEXT_FULL, "decode: position %d does not fit the context of %u", e[i].pos, p->n_ctx);
        outs += e[i].logits;
    }
    if ((uint32_t)outs > p->n_outputs_max)
        return lm_fail(LM_STATUS_INVALID_ARGUMENT, "decode: %d logits rows requested, n_outputs_max is %u", outs,
                       p->n_outputs_max);
    /* positions of one sequence must be distinct, span less than n_batch, and not fall behind
       what the sliding-window ring still holds */
    for (int32_t i = 0; i < n; i++) c->sort_scratch[i] = ((int64_t)e[i].seq << 32) | (uint32_t)e[i].pos;
    qsort(c->sort_scratch, (size_t)n, sizeof(int64_t), cmp_i64);
    const lm_kv_kind *swa = &c->kv.kind[LM_KV_KIND_SWA];
    for (int32_t i = 0; i < n; i++) {
        const int32_t s = (int32_t)(c->sort_scratch[i] >> 32), pos = (int32_t)(c->sort_scratch[i] & 0xffffffff);
        if (i > 0 && c->sort_scratch[i] == c->sort_scratch[i - 1])
            return lm_fail(LM_STATUS_INVALID_ARGUMENT, "decode: position %d of sequence %d appears twice", pos, s);
        const bool first = i == 0 || (int32_t)(c->sort_scratch[i - 1] >> 32) != s;
        if (first && swa->used && swa->ring) {
            int32_t last = i;
            while (last + 1 < n && (int32_t)(c->sort_scratch[last + 1] >> 32) == s) last++;
            const int32_t pmax = (int32_t)(c->sort_scratch[last] & 0xffffffff);
            if (pmax - pos >= (int32_t)p->n_batch)
                return lm_fail(LM_STATUS_INVALID_ARGUMENT, "decode: positions %d..%d of sequence %d span more than n_batch %u",
                               pos, pmax, s, p->n_batch);
            const int32_t have = c->kv.seq_pos_max[s];
            if (have >= 0 && pos <= have && have - pos > swa->cps - swa->window)
                return lm_fail(LM_STATUS_INVALID_ARGUMENT,
                               "decode: position %d of sequence %d is too far behind its cached position %d for the "
                               "sliding-window cache; clear the sequence first",
                               pos, s, have);
        }
    }
    *n_out = outs;
    return LM_STATUS_OK;
}

lm_status lm_context_decode(lm_context *c, const lm_batch_entry *e, int32_t n) {
    lm_clear_error();
    if (!c) return lm_fail(LM_STATUS_INVALID_ARGUMENT, "lm_context_decode: NULL context");
    const double t0 = lm_time_s();
    int32_t n_out = 0;
    c->n_outputs = 0;
    LM_TRY(validate(c, e, n, &n_out));
    lm_backend *be = c->model->be;
    /* the pages the step writes: mapped from the pool, and not shared */
    for (int32_t i = 0; i < n; i++) LM_TRY(lm_kv_reserve(&c->kv, e[i].seq, e[i].pos));
    LM_TRY(lm_kv_sync(&c->kv));

    /* step inputs */
    int32_t *h = c->step_host;
    int32_t *tok = h + c->step_off[ST_TOKENS] / 4, *pos = h + c->step_off[ST_POS] / 4, *seq = h + c->step_off[ST_SEQ] / 4;
    int32_t *cell[LM_KV_KINDS] = {h + c->step_off[ST_CELL_SWA] / 4, h + c->step_off[ST_CELL_FULL] / 4};
    int32_t *outs = h + c->step_off[ST_OUT] / 4;
    int32_t j = 0;
    for (int32_t i = 0; i < n; i++) {
        tok[i] = e[i].token;
        pos[i] = e[i].pos;
        seq[i] = e[i].seq;
        for (int k = 0; k < LM_KV_KINDS; k++) cell[k][i] = c->kv.kind[k].used ? lm_kv_cell(&c->kv.kind[k], e[i].seq, e[i].pos) : 0;
        if (e[i].logits) outs[j++] = i;
    }
    for (int d = 0; d < c->n_dev; d++) {
        lm_tensor whole;
        int64_t ne = (int64_t)(c->step_bytes / 4);
        lm_tensor_init(&whole, LM_I32, 1, &ne);
        whole.buf = c->step_buf[d];
        LM_TRY(whole.buf->be->ops->tensor_set(whole.buf->be, &whole, h, 0, c->step_bytes));
    }

    /* record and run: the graph begins on the main device; a split step closes each device's
       part as it moves to the next, and the part on the device current at the end is closed here */
    LM_TRY(be->ops->begin(be));
    lm_tensor views[LM_GRAPH_MAX_DEVS][ST_COUNT];
    lm_tensor *out = record(c, n, n_out, false, views);
    lm_status st = lm_graph_status(c->graph);
    lm_backend *last = c->graph->be;
    lm_status st2 = last->ops->submit(last);
    if (!st) st = st2;
    st2 = last->ops->sync(last);
    if (!st) st = st2;
    if (st) return st;
    if (out) be = out->buf->be; /* the device that made the output (the head's) */

    /* host mirrors of the cache state */
    for (int32_t i = 0; i < n; i++) {
        for (int k = 0; k < LM_KV_KINDS; k++)
            if (c->kv.kind[k].used) c->kv.kind[k].host_pos[cell[k][i]] = e[i].pos;
        if (e[i].pos > c->kv.seq_pos_max[e[i].seq]) c->kv.seq_pos_max[e[i].seq] = e[i].pos;
    }
    if (n_out > 0) {
        if (c->p.output == LM_OUTPUT_ARGMAX) {
            LM_TRY(be->ops->tensor_get(be, out, c->argmax, 0, (size_t)n_out * 4));
        } else {
            const size_t nv = (size_t)c->model->hp.n_vocab;
            LM_TRY(be->ops->tensor_get(be, out, c->logits, 0, (size_t)n_out * nv * 4));
            for (int32_t r = 0; r < n_out; r++) { /* lowest index of the largest; NaN as -inf */
                const float *l = c->logits + (size_t)r * nv;
                int32_t best = 0;
                float bv = isnan(l[0]) ? -INFINITY : l[0];
                for (size_t i = 1; i < nv; i++)
                    if (l[i] > bv) bv = l[i], best = (int32_t)i;
                c->argmax[r] = best;
            }
        }
        c->n_outputs = n_out;
    }
    c->last_decode_s = lm_time_s() - t0;
    return LM_STATUS_OK;
}

const float *lm_context_logits(const lm_context *c, int32_t i) {
    if (!c || i < 0 || i >= c->n_outputs || c->p.output != LM_OUTPUT_LOGITS) return NULL;
    return c->logits + (size_t)i * (size_t)c->model->hp.n_vocab;
}

lm_token lm_context_argmax(const lm_context *c, int32_t i) {
    if (!c || i < 0 || i >= c->n_outputs) return -1;
    return c->argmax[i];
}

int32_t lm_context_n_outputs(const lm_context *c) { return c ? c->n_outputs : 0; }

lm_status lm_context_seq_clear(lm_context *c, int32_t seq) {
    lm_clear_error();
    if (!c) return lm_fail(LM_STATUS_INVALID_ARGUMENT, "lm_context_seq_clear: NULL context");
    return lm_kv_seq_clear(&c->kv, seq);
}

lm_status lm_context_seq_rm(lm_context *c, int32_t seq, int32_t p0, int32_t p1) {
    lm_clear_error();
    if (!c) return lm_fail(LM_STATUS_INVALID_ARGUMENT, "lm_context_seq_rm: NULL context");
    return lm_kv_seq_rm(&c->kv, seq, p0, p1);
}

lm_status lm_context_seq_checkpoint(lm_context *c, int32_t seq) {
    lm_clear_error();
    if (!c) return lm_fail(LM_STATUS_INVALID_ARGUMENT, "lm_context_seq_checkpoint: NULL context");
    return lm_kv_seq_checkpoint(&c->kv, seq);
}

lm_status lm_context_seq_rollback(lm_context *c, int32_t seq, int32_t p, int32_t *pos_out) {
    lm_clear_error();
    if (!c || !pos_out) return lm_fail(LM_STATUS_INVALID_ARGUMENT, "lm_context_seq_rollback: NULL argument");
    return lm_kv_seq_rollback(&c->kv, seq, p, pos_out);
}

lm_status lm_context_seq_cp(lm_context *c, int32_t src, int32_t dst, int32_t p0, int32_t p1) {
    lm_clear_error();
    if (!c) return lm_fail(LM_STATUS_INVALID_ARGUMENT, "lm_context_seq_cp: NULL context");
    return lm_kv_seq_cp(&c->kv, src, dst, p0, p1);
}

int32_t lm_context_seq_pos_max(const lm_context *c, int32_t seq) {
    if (!c || seq < 0 || seq >= c->kv.n_seq) return -1;
    return c->kv.seq_pos_max[seq];
}

uint64_t lm_context_kv_bytes(const lm_context *c) { return c ? c->kv.bytes : 0; }

lm_status lm_context_get_memory(const lm_context *c, lm_context_memory *out) {
    if (!c || !out) return lm_fail(LM_STATUS_INVALID_ARGUMENT, "lm_context_get_memory: NULL argument");
    memset(out, 0, sizeof *out);
    const lm_backend *host = c->n_dev > 1 ? c->model->devs[1] : NULL;
    for (int il = 0; il < c->kv.n_layer; il++) {
        const lm_kv_layer *kl = &c->kv.layers[il];
        if (!kl->has_cache) continue;
        uint64_t b = lm_pad(lm_tensor_nbytes(&kl->v), 256) + (kl->has_k ? lm_pad(lm_tensor_nbytes(&kl->k), 256) : 0);
        if (kl->kind == LM_KV_KIND_SWA) out->kv_sliding += b;
        else out->kv_full += b;
        if (kl->v.buf && kl->v.buf->be == host) out->kv_host += b;
    }
    for (int k = 0; k < LM_KV_KINDS; k++)
        for (int d = 0; d < c->n_dev; d++) {
            const lm_tensor *ts[2] = {&c->kv.kind[k].cell_pos[d], &c->kv.kind[k].pages[d]};
            for (int i = 0; i < 2; i++) {
                if (!ts[i]->buf) continue;
                out->kv_positions += lm_pad(lm_tensor_nbytes(ts[i]), 256);
                if (ts[i]->buf->be == host) out->kv_host += lm_pad(lm_tensor_nbytes(ts[i]), 256);
            }
        }
    for (int d = 0; d < c->n_dev; d++) {
        const uint64_t b = (c->arena_buf[d] ? c->arena_buf[d]->size : 0) + (c->step_buf[d] ? c->step_buf[d]->size : 0);
        out->compute += b;
        if (c->model->devs[d] == host) out->compute_host += b;
    }
    out->checkpoints = lm_kv_checkpoint_bytes(&c->kv);
    int32_t used, total;
    lm_kv_pool_usage(&c->kv, &used, &total);
    out->kv_pages_used = (uint32_t)used;
    out->kv_pages_total = (uint32_t)total;
    return LM_STATUS_OK;
}
double lm_context_last_decode_seconds(const lm_context *c) { return c ? c->last_decode_s : 0; }

lm_status lm_context_set_profiling(lm_context *c, bool on) {
    lm_clear_error();
    if (!c) return lm_fail(LM_STATUS_INVALID_ARGUMENT, "lm_context_set_profiling: NULL context");
    for (int d = 0; d < c->n_dev; d++) {
        lm_backend *be = c->model->devs[d];
        if (!be->ops->profile_enable) return lm_fail(LM_STATUS_UNSUPPORTED, "%s backend has no profiler", be->ops->name);
    }
    for (int d = 0; d < c->n_dev; d++) c->model->devs[d]->ops->profile_enable(c->model->devs[d], on);
    return LM_STATUS_OK;
}

int32_t lm_context_profile(const lm_context *c, lm_op_stat *out, int32_t cap) {
    if (!c) return 0;
    lm_op_profile sum = c->model->be->prof; /* split: both devices' time, added */
    for (int d = 1; d < c->n_dev; d++) {
        const lm_op_profile *q = &c->model->devs[d]->prof;
        for (int op = 0; op < LM_OP_COUNT; op++) {
            sum.seconds[op] += q->seconds[op];
            sum.calls[op] += q->calls[op];
            sum.bytes[op] += q->bytes[op];
            sum.flops[op] += q->flops[op];
        }
    }
    const lm_op_profile *p = &sum;
    lm_op_stat tmp[LM_OP_COUNT];
    int32_t n = 0;
    for (int op = 0; op < LM_OP_COUNT; op++) {
        if (!p->calls[op]) continue;
        const double s = p->seconds[op] > 0 ? p->seconds[op] : 1e-12;
        tmp[n++] = (lm_op_stat){lm_op_name((lm_op)op), p->calls[op], p->seconds[op], p->bytes[op] / s / 1e9, p->flops[op] / s / 1e9};
    }
    for (int32_t i = 1; i < n; i++) /* slowest first */
        for (int32_t j = i; j > 0 && tmp[j].seconds > tmp[j - 1].seconds; j--) {
            lm_op_stat t = tmp[j];
            tmp[j] = tmp[j - 1];
            tmp[j - 1] = t;
        }
    for (int32_t i = 0; i < n && i < cap && out; i++) out[i] = tmp[i];
    return n;
}

/* Internal: the model a context runs (for tools that need both). */
lm_model *lm_context_model(const lm_context *c) { return c ? c->model : NULL; }
lm_backend *lm_context_backend(const lm_context *c) { return c ? c->model->be : NULL; }
