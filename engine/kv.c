/*
 * kv.c — KV cache allocation and sequence bookkeeping (see kv.h).
 */
#include "kv.h"

#include <stdlib.h>
#include <string.h>

void lm_kv_geometry(const lm_model *m, const lm_context_params *p, lm_kv_geom g[LM_KV_KINDS]) {
    const int32_t n_ctx = (int32_t)p->n_ctx, n_seq = (int32_t)p->n_seq_max;
    /* a chunk of n_batch tokens needs W - 1 + n_batch rows visible at once */
    const int64_t swa = lm_pad((size_t)(m->hp.window - 1 + (int32_t)p->n_batch), 32);
    for (int k = 0; k < LM_KV_KINDS; k++) {
        lm_kv_geom *G = &g[k];
        memset(G, 0, sizeof *G);
        if (k == LM_KV_KIND_SWA && m->hp.window >= 1 && swa < n_ctx) {
            G->cps = G->page = (int32_t)swa;
            G->ring = true;
            G->pps = 1;
            G->n_pages = n_seq;
            continue;
        }
        /* full attention (or no sliding layers: window 0, and the kind stays unused) */
        G->cps = n_ctx;
        G->paged = true;
        G->page = p->kv_page && (int32_t)p->kv_page < n_ctx ? (int32_t)p->kv_page : n_ctx;
        G->pps = (n_ctx + G->page - 1) / G->page;
        const int64_t all = (int64_t)G->pps * n_seq;
        int64_t pool = p->kv_cells ? ((int64_t)p->kv_cells + G->page - 1) / G->page : all;
        if (pool > all) pool = all;
        G->n_pages = (int32_t)pool + 1; /* + the null page */
    }
}

static lm_status zero_fill(lm_backend *be, lm_tensor *t) {
    static const uint8_t zeros[65536];
    const size_t n = lm_tensor_nbytes(t);
    for (size_t off = 0; off < n; off += sizeof zeros) {
        size_t len = n - off < sizeof zeros ? n - off : sizeof zeros;
        LM_TRY(be->ops->tensor_set(be, t, zeros, off, len));
    }
    return LM_STATUS_OK;
}

lm_status lm_kv_init(lm_kv *kv, const lm_model *m, lm_dtype type, const lm_context_params *p) {
    memset(kv, 0, sizeof *kv);
    const int32_t n_seq = (int32_t)p->n_seq_max;
    kv->n_dev = m->n_dev > 0 ? m->n_dev : 1;
    for (int d = 0; d < kv->n_dev; d++) kv->devs[d] = m->devs[d];
    kv->type = type;
    kv->n_seq = n_seq;
    kv->n_ctx = (int32_t)p->n_ctx;
    kv->n_batch = (int32_t)p->n_batch;
    kv->n_layer = m->hp.n_layer;
    lm_kv_geom geom[LM_KV_KINDS];
    lm_kv_geometry(m, p, geom);
    for (int k = 0; k < LM_KV_KINDS; k++) {
        lm_kv_kind_shape(&kv->kind[k], &geom[k]);
        kv->kind[k].window = k == LM_KV_KIND_SWA ? m->hp.window : 0;
    }
    kv->layers = calloc((size_t)kv->n_layer, sizeof(lm_kv_layer));
    kv->seq_pos_max = malloc((size_t)n_seq * sizeof(int32_t));
    if (!kv->layers || !kv->seq_pos_max) return lm_fail(LM_STATUS_OUT_OF_MEMORY, "kv: out of memory");
    for (int32_t s = 0; s < n_seq; s++) kv->seq_pos_max[s] = -1;

    /* the tensors, and the device of each */
    lm_tensor *all[2 * 1024 + LM_KV_KINDS * LM_GRAPH_MAX_DEVS];
    int all_dev[2 * 1024 + LM_KV_KINDS * LM_GRAPH_MAX_DEVS];
    int n_all = 0;
    bool kind_on[LM_KV_KINDS][LM_GRAPH_MAX_DEVS] = {{false}};
    uint64_t total = 0;
    for (int il = 0; il < kv->n_layer; il++) {
        const lm_layer *L = &m->layers[il];
        lm_kv_layer *kl = &kv->layers[il];
        kl->kind = L->sliding ? LM_KV_KIND_SWA : LM_KV_KIND_FULL;
        kv->kind[kl->kind].used = true;
        const int d = L->dev < kv->n_dev ? L->dev : 0;
        kind_on[kl->kind][d] = true;
        if (L->kv_layer != il) continue;
        kl->has_cache = true;
        kl->has_k = !L->k_eq_v;
        const int64_t cells = lm_kv_geom_kv_cells(&geom[kl->kind]);
        const int64_t nek[2] = {(int64_t)L->head_dim * L->n_head_kv, cells};
        const int64_t nev[2] = {(int64_t)L->head_dim_v * L->n_head_kv, cells};
        uint64_t kb, vb;
        if (!lm_mul_ok(lm_row_bytes(type, nek[0]), (uint64_t)cells, &kb) || !lm_mul_ok(lm_row_bytes(type, nev[0]), (uint64_t)cells, &vb))
            return lm_fail(LM_STATUS_OUT_OF_MEMORY, "kv: cache size overflows");
        if (kl->has_k) {
            lm_tensor_init(&kl->k, type, 2, nek);
            all_dev[n_all] = d;
            all[n_all++] = &kl->k;
            total += lm_pad(kb, 256);
        }
        lm_tensor_init(&kl->v, type, 2, nev);
        all_dev[n_all] = d;
        all[n_all++] = &kl->v;
        total += lm_pad(vb, 256);
    }
    for (int k = 0; k < LM_KV_KINDS; k++) {
        lm_kv_kind *kk = &kv->kind[k];
        if (!kk->used) continue;
        const int64_t cells = lm_kv_geom_cells(&geom[k]), tne[2] = {kk->pps, n_seq};
        for (int d = 0; d < kv->n_dev; d++) {
            if (!kind_on[k][d]) continue;
            lm_tensor_init(&kk->cell_pos[d], LM_I32, 1, &cells);
            all_dev[n_all] = d;
            all[n_all++] = &kk->cell_pos[d];
            total += lm_pad((size_t)cells * 4, 256);
            lm_tensor_init(&kk->pages[d], LM_I32, 2, tne);
            all_dev[n_all] = d;
            all[n_all++] = &kk->pages[d];
            total += lm_pad((size_t)(tne[0] * tne[1]) * 4, 256);
        }
        kk->host_pos = malloc((size_t)cells * sizeof(int32_t));
        kk->host_tab = malloc((size_t)(tne[0] * tne[1]) * sizeof(int32_t));
        kk->ref = calloc((size_t)kk->n_pages, sizeof(int32_t));
        kk->free_pages = malloc((size_t)kk->n_pages * sizeof(int32_t));
        if (!kk->host_pos || !kk->host_tab || !kk->ref || !kk->free_pages) return lm_fail(LM_STATUS_OUT_OF_MEMORY, "kv: out of memory");
        for (int64_t c = 0; c < cells; c++) kk->host_pos[c] = -1;
        for (int32_t s = 0; s < n_seq; s++)
            for (int32_t j = 0; j < kk->pps; j++) kk->host_tab[(int64_t)s * kk->pps + j] = kk->paged ? kk->null_page : s;
        if (kk->paged) /* lowest page on top */
            for (int32_t pg = kk->null_page - 1; pg >= 0; pg--) kk->free_pages[kk->n_free++] = pg;
        kk->tab_dirty = true;
    }
    kv->bytes = total;

    /* pack each device's tensors, in layer order, into buffers of at most its max_alloc */
    kv->bufs = calloc((size_t)n_all + 1, sizeof(lm_buffer *));
    if (!kv->bufs) return lm_fail(LM_STATUS_OUT_OF_MEMORY, "kv: out of memory");
    for (int d = 0; d < kv->n_dev; d++) {
        lm_backend *be = kv->devs[d];
        lm_device_info di;
        LM_TRY(be->ops->device_info(be, &di));
        const uint64_t limit = di.max_alloc ? di.max_alloc : UINT64_MAX;
        for (int i = 0; i < n_all;) {
            if (all_dev[i] != d) {
                i++;
                continue;
            }
            uint64_t size = 0;
            int j = i;
            for (; j < n_all; j++) {
                if (all_dev[j] != d) continue;
                const uint64_t sz = lm_pad(lm_tensor_nbytes(all[j]), 256);
                if (sz > limit)
                    return lm_fail(LM_STATUS_OUT_OF_MEMORY, "kv: one cache tensor needs %llu bytes, more than the device's largest "
                                   "allocation (%llu); reduce the context", (unsigned long long)sz, (unsigned long long)limit);
                if (size > limit - sz) break;
                size += sz;
            }
            lm_buffer *buf;
            LM_TRY(be->ops->buffer_alloc(be, (size_t)size, LM_BUF_KV, &buf));
            kv->bufs[kv->n_bufs++] = buf;
            uint64_t at = 0;
            for (int t = i; t < j; t++) {
                if (all_dev[t] != d) continue;
                all[t]->buf = buf;
                all[t]->offs = (size_t)at;
                at += lm_pad(lm_tensor_nbytes(all[t]), 256);
            }
            i = j;
        }
    }
    for (int i = 0; i < n_all; i++) {
        lm_tensor *t = all[i];
        if (t->type == LM_I32) continue; /* cell positions and page tables: below */
        LM_TRY(zero_fill(t->buf->be, t));
    }
    for (int k = 0; k < LM_KV_KINDS; k++)
        for (int d = 0; d < kv->n_dev; d++) {
            lm_tensor *cp = &kv->kind[k].cell_pos[d];
            if (cp->buf) LM_TRY(cp->buf->be->ops->tensor_set(cp->buf->be, cp, kv->kind[k].host_pos, 0, lm_tensor_nbytes(cp)));
        }
    return lm_kv_sync(kv);
}

lm_status lm_kv_sync(lm_kv *kv) {
    for (int k = 0; k < LM_KV_KINDS; k++) {
        lm_kv_kind *kk = &kv->kind[k];
        if (!kk->used || !kk->tab_dirty) continue;
        for (int d = 0; d < kv->n_dev; d++) {
            lm_tensor *t = &kk->pages[d];
            if (t->buf) LM_TRY(t->buf->be->ops->tensor_set(t->buf->be, t, kk->host_tab, 0, lm_tensor_nbytes(t)));
        }
        kk->tab_dirty = false;
    }
    return LM_STATUS_OK;
}

void lm_kv_pool_usage(const lm_kv *kv, int32_t *used, int32_t *total) {
    *used = *total = 0;
    for (int k = 0; k < LM_KV_KINDS; k++) {
        const lm_kv_kind *kk = &kv->kind[k];
        if (!kk->used || !kk->paged) continue;
        const int32_t pool = kk->n_pages - 1, u = pool - kk->n_free;
        if (u > *used || !*total) *used = u, *total = pool;
    }
}

/* upload cells [c0, c0 + n) of a kind's cell positions to every device's copy */
static lm_status upload_pos(lm_kv *kv, lm_kv_kind *kk, int64_t c0, int64_t n) {
    for (int d = 0; d < kv->n_dev; d++) {
        lm_tensor *cp = &kk->cell_pos[d];
        if (cp->buf) LM_TRY(cp->buf->be->ops->tensor_set(cp->buf->be, cp, kk->host_pos + c0, (size_t)c0 * 4, (size_t)n * 4));
    }
    return LM_STATUS_OK;
}

/* ---- pages of a paged kind */

static int32_t *tab_of(lm_kv_kind *kk, int32_t seq) { return kk->host_tab + (int64_t)seq * kk->pps; }

/* a free page (its cells still hold what they held) */
static lm_status page_alloc(const lm_kv *kv, lm_kv_kind *kk, int32_t *out) {
    if (kk->n_free == 0)
        return lm_fail(LM_STATUS_CONTEXT_FULL,
                       "KV cache full: all %d pages of %d cells of the pool are in use (%d sequences); free sequences "
                       "or create the context with more kv_cells",
                       kk->n_pages - 1, kk->page, kv->n_seq);
    *out = kk->free_pages[--kk->n_free];
    kk->ref[*out] = 1;
    return LM_STATUS_OK;
}

/* drop a sequence's mapping of its logical page j */
static void page_unmap(lm_kv_kind *kk, int32_t seq, int32_t j) {
    int32_t *tab = tab_of(kk, seq);
    const int32_t pg = tab[j];
    if (pg == kk->null_page) return;
    if (--kk->ref[pg] == 0) kk->free_pages[kk->n_free++] = pg;
    tab[j] = kk->null_page;
    kk->tab_dirty = true;
}

/* copy cells [c_src, c_src + n) of a cache tensor to [c_dst, c_dst + n) through the host */
static lm_status copy_cells(lm_tensor *t, int64_t c_src, int64_t c_dst, int64_t n, void **tmp, size_t *tmp_size) {
    const size_t row = t->nb[1], bytes = row * (size_t)n;
    if (*tmp_size < bytes) {
        void *p = realloc(*tmp, bytes);
        if (!p) return lm_fail(LM_STATUS_OUT_OF_MEMORY, "out of memory copying %zu bytes of KV cache", bytes);
        *tmp = p;
        *tmp_size = bytes;
    }
    lm_backend *be = t->buf->be;
    LM_TRY(be->ops->tensor_get(be, t, *tmp, row * (size_t)c_src, bytes));
    return be->ops->tensor_set(be, t, *tmp, row * (size_t)c_dst, bytes);
}

/* physical cells [a, a + n) of a kind to [b, b + n): every layer's rows and the host positions
   (the caller uploads the positions) */
static lm_status copy_kind_cells(lm_kv *kv, int kind, int64_t a, int64_t b, int64_t n, void **tmp, size_t *tmp_size) {
    for (int il = 0; il < kv->n_layer; il++) {
        lm_kv_layer *kl = &kv->layers[il];
        if (!kl->has_cache || kl->kind != kind) continue;
        if (kl->has_k) LM_TRY(copy_cells(&kl->k, a, b, n, tmp, tmp_size));
        LM_TRY(copy_cells(&kl->v, a, b, n, tmp, tmp_size));
    }
    memcpy(kv->kind[kind].host_pos + b, kv->kind[kind].host_pos + a, (size_t)n * sizeof(int32_t));
    return LM_STATUS_OK;
}

/* cells [i0, i0 + n) of page `from` to the same cells of page `to`, positions uploaded */
static lm_status copy_page_cells(lm_kv *kv, int kind, int32_t from, int32_t to, int32_t i0, int32_t n, void **tmp,
                                 size_t *tmp_size) {
    lm_kv_kind *kk = &kv->kind[kind];
    const int64_t a = (int64_t)from * kk->page + i0, b = (int64_t)to * kk->page + i0;
    LM_TRY(copy_kind_cells(kv, kind, a, b, n, tmp, tmp_size));
    return upload_pos(kv, kk, b, n);
}

/* make a sequence's logical page j its own: mapped from the pool (cells emptied) or, when shared,
   copied */
static lm_status page_own(lm_kv *kv, int kind, int32_t seq, int32_t j) {
    lm_kv_kind *kk = &kv->kind[kind];
    int32_t *tab = tab_of(kk, seq);
    const int32_t old = tab[j];
    if (old != kk->null_page && kk->ref[old] == 1) return LM_STATUS_OK;
    int32_t pg = -1;
    LM_TRY(page_alloc(kv, kk, &pg));
    lm_status st;
    if (old == kk->null_page) {
        for (int32_t i = 0; i < kk->page; i++) kk->host_pos[(int64_t)pg * kk->page + i] = -1;
        st = upload_pos(kv, kk, (int64_t)pg * kk->page, kk->page);
    } else {
        void *tmp = NULL;
        size_t tmp_size = 0;
        st = copy_page_cells(kv, kind, old, pg, 0, kk->page, &tmp, &tmp_size);
        free(tmp);
    }
    if (st) {
        kk->ref[pg] = 0;
        kk->free_pages[kk->n_free++] = pg;
        return st;
    }
    if (old != kk->null_page) kk->ref[old]--; /* still >= 1: another sequence maps it */
    tab[j] = pg;
    kk->tab_dirty = true;
    return LM_STATUS_OK;
}

lm_status lm_kv_reserve(lm_kv *kv, int32_t seq, int32_t pos) {
    for (int k = 0; k < LM_KV_KINDS; k++) {
        lm_kv_kind *kk = &kv->kind[k];
        if (!kk->used || !kk->paged) continue;
        LM_TRY(page_own(kv, k, seq, pos / kk->page));
    }
    return LM_STATUS_OK;
}

static void ckpt_drop(lm_kv_ckpt *ck) {
    for (int k = 0; k < LM_KV_KINDS; k++) free(ck->host_pos[k]);
    free(ck->data);
    memset(ck, 0, sizeof *ck);
}

/* drop a sequence's checkpoints at or after position p (their past changed) */
static void ckpt_invalidate(lm_kv *kv, int32_t seq, int32_t p) {
    if (!kv->ckpt) return;
    for (int i = 0; i < LM_KV_CKPT_PER_SEQ; i++) {
        lm_kv_ckpt *ck = &kv->ckpt[seq * LM_KV_CKPT_PER_SEQ + i];
        if (ck->data && ck->pos > p) ckpt_drop(ck);
    }
}

void lm_kv_free(lm_kv *kv) {
    if (!kv) return;
    if (kv->ckpt)
        for (int i = 0; i < kv->n_seq * LM_KV_CKPT_PER_SEQ; i++) ckpt_drop(&kv->ckpt[i]);
    free(kv->ckpt);
    for (int i = 0; i < kv->n_bufs; i++) kv->bufs[i]->be->ops->buffer_free(kv->bufs[i]);
    free(kv->bufs);
    for (int k = 0; k < LM_KV_KINDS; k++) {
        free(kv->kind[k].host_pos);
        free(kv->kind[k].host_tab);
        free(kv->kind[k].ref);
        free(kv->kind[k].free_pages);
    }
    free(kv->layers);
    free(kv->seq_pos_max);
    memset(kv, 0, sizeof *kv);
}

/* upload a sequence's cell positions of an unpaged kind to every device's copy */
static lm_status upload_seq_pos(lm_kv *kv, lm_kv_kind *kk, int32_t seq) {
    return upload_pos(kv, kk, (int64_t)seq * kk->cps, kk->cps);
}

/* forget positions [p0, p1) of a sequence in one kind */
static lm_status kind_rm(lm_kv *kv, int kind, int32_t seq, int32_t p0, int32_t p1) {
    lm_kv_kind *kk = &kv->kind[kind];
    if (!kk->used) return LM_STATUS_OK;
    if (!kk->paged) {
        int32_t *hp = kk->host_pos + (size_t)seq * kk->cps;
        for (int32_t c = 0; c < kk->cps; c++)
            if (hp[c] >= p0 && hp[c] < p1) hp[c] = -1;
        return upload_seq_pos(kv, kk, seq);
    }
    /* logical cell = position: pages wholly inside the range are dropped, the others edited
       (copied first when shared) and dropped when nothing remains */
    const int32_t *tab = tab_of(kk, seq);
    for (int32_t j = 0; j < kk->pps; j++) {
        const int64_t c0 = (int64_t)j * kk->page, c1 = c0 + kk->page;
        if (tab[j] == kk->null_page || c1 <= p0 || c0 >= p1) continue;
        if (c0 >= p0 && c1 <= p1) {
            page_unmap(kk, seq, j);
            continue;
        }
        LM_TRY(page_own(kv, kind, seq, j));
        int32_t *hp = kk->host_pos + (int64_t)tab[j] * kk->page;
        bool any = false;
        for (int32_t i = 0; i < kk->page; i++) {
            if (hp[i] >= p0 && hp[i] < p1) hp[i] = -1;
            any |= hp[i] >= 0;
        }
        if (any) LM_TRY(upload_pos(kv, kk, (int64_t)tab[j] * kk->page, kk->page));
        else page_unmap(kk, seq, j);
    }
    return LM_STATUS_OK;
}

lm_status lm_kv_seq_clear(lm_kv *kv, int32_t seq) {
    if (seq < 0 || seq >= kv->n_seq) return lm_fail(LM_STATUS_INVALID_ARGUMENT, "sequence %d out of range [0, %d)", seq, kv->n_seq);
    for (int k = 0; k < LM_KV_KINDS; k++) LM_TRY(kind_rm(kv, k, seq, INT32_MIN, INT32_MAX));
    kv->seq_pos_max[seq] = -1;
    ckpt_invalidate(kv, seq, -1);
    return lm_kv_sync(kv);
}

static int32_t seq_max(lm_kv *kv, int32_t seq) {
    int32_t mx = -1;
    for (int k = 0; k < LM_KV_KINDS; k++) {
        lm_kv_kind *kk = &kv->kind[k];
        if (!kk->used) continue;
        if (!kk->paged) {
            const int32_t *hp = kk->host_pos + (size_t)seq * kk->cps;
            for (int32_t c = 0; c < kk->cps; c++) mx = hp[c] > mx ? hp[c] : mx;
            continue;
        }
        const int32_t *tab = tab_of(kk, seq);
        for (int32_t j = 0; j < kk->pps; j++) {
            if (tab[j] == kk->null_page) continue;
            const int32_t *hp = kk->host_pos + (int64_t)tab[j] * kk->page;
            for (int32_t i = 0; i < kk->page; i++) mx = hp[i] > mx ? hp[i] : mx;
        }
    }
    return mx;
}

static lm_status check_seq(const lm_kv *kv, int32_t seq) {
    if (seq < 0 || seq >= kv->n_seq) return lm_fail(LM_STATUS_INVALID_ARGUMENT, "sequence %d out of range [0, %d)", seq, kv->n_seq);
    return LM_STATUS_OK;
}

lm_status lm_kv_seq_rm(lm_kv *kv, int32_t seq, int32_t p0, int32_t p1) {
    LM_TRY(check_seq(kv, seq));
    if (p0 < 0) p0 = 0;
    if (p1 < 0) p1 = INT32_MAX;
    const int32_t have = kv->seq_pos_max[seq];
    if (p0 >= p1 || have < p0) return LM_STATUS_OK;
    if (p0 == 0 && p1 > have) return lm_kv_seq_clear(kv, seq);
    /* a tail removed from a ring: continuing at p0 needs positions p0 - W + 1 .. p0 - 1, which
       survive while nothing at or after them + cps was written */
    for (int k = 0; k < LM_KV_KINDS && p1 > have; k++) {
        const lm_kv_kind *kk = &kv->kind[k];
        if (kk->used && kk->ring && have - p0 > kk->cps - kk->window)
            return lm_fail(LM_STATUS_UNSUPPORTED,
                           "sequence %d: cannot continue from position %d: the sliding-window cache (%d cells, window %d) "
                           "already overwrote the positions before it (cached up to %d); clear the sequence",
                           seq, p0, kk->cps, kk->window, have);
    }
    lm_status st = LM_STATUS_OK;
    for (int k = 0; k < LM_KV_KINDS && !st; k++) st = kind_rm(kv, k, seq, p0, p1);
    kv->seq_pos_max[seq] = seq_max(kv, seq);
    ckpt_invalidate(kv, seq, p0);
    lm_status st2 = lm_kv_sync(kv);
    return st ? st : st2;
}

/* copy the positions [p0, p1) that src holds in one kind to dst */
static lm_status kind_cp(lm_kv *kv, int kind, int32_t src, int32_t dst, int32_t p0, int32_t p1, int32_t p1_all,
                         void **tmp, size_t *tmp_size) {
    lm_kv_kind *kk = &kv->kind[kind];
    if (!kk->used) return LM_STATUS_OK;
    if (kk->paged) {
        const int32_t *ts = tab_of(kk, src), *td = tab_of(kk, dst);
        for (int32_t j = 0; j < kk->pps; j++) {
            const int64_t c0 = (int64_t)j * kk->page, c1 = c0 + kk->page;
            const int32_t pg = ts[j];
            if (pg == kk->null_page || c1 <= p0 || c0 >= p1) continue;
            if (c0 >= p0 && c1 <= p1_all && td[j] == kk->null_page) {
                /* the whole page: share it */
                kk->ref[pg]++;
                tab_of(kk, dst)[j] = pg;
                kk->tab_dirty = true;
                continue;
            }
            /* part of it: into dst's own page, cell by cell runs */
            const int32_t *hs = kk->host_pos + (int64_t)pg * kk->page;
            bool owned = false;
            for (int32_t i = 0; i < kk->page;) {
                const int32_t p = (int32_t)c0 + i;
                if (hs[i] != p || p < p0 || p >= p1) {
                    i++;
                    continue;
                }
                int32_t n = 1;
                while (i + n < kk->page && hs[i + n] == p + n && p + n < p1) n++;
                if (!owned) LM_TRY(page_own(kv, kind, dst, j));
                owned = true;
                LM_TRY(copy_page_cells(kv, kind, pg, td[j], i, n, tmp, tmp_size));
                i += n;
            }
        }
        return LM_STATUS_OK;
    }
    const int32_t *hs = kk->host_pos + (size_t)src * kk->cps;
    /* positions of [p0, p1) that src still holds, as runs of consecutive cells */
    int32_t p = p0;
    while (p < p1) {
        const int32_t c = kk->ring ? p % kk->cps : p;
        if (hs[c] != p) {
            p++;
            continue;
        }
        int32_t n = 1;
        while (p + n < p1 && c + n < kk->cps && hs[c + n] == p + n) n++;
        /* the run's positions are p.. in both sequences' cells */
        LM_TRY(copy_kind_cells(kv, kind, (int64_t)src * kk->cps + c, (int64_t)dst * kk->cps + c, n, tmp, tmp_size));
        p += n;
    }
    return upload_seq_pos(kv, kk, dst);
}

lm_status lm_kv_seq_cp(lm_kv *kv, int32_t src, int32_t dst, int32_t p0, int32_t p1) {
    LM_TRY(check_seq(kv, src));
    LM_TRY(check_seq(kv, dst));
    if (p0 < 0) p0 = 0;
    if (p1 < 0) p1 = INT32_MAX;
    const int32_t have = kv->seq_pos_max[src], p1_all = p1;
    if (src == dst || p0 >= p1 || have < p0) return LM_STATUS_OK;
    if (p1 > have + 1) p1 = have + 1;
    void *tmp = NULL;
    size_t tmp_size = 0;
    lm_status st = LM_STATUS_OK;
    for (int k = 0; k < LM_KV_KINDS && !st; k++) st = kind_cp(kv, k, src, dst, p0, p1, p1_all, &tmp, &tmp_size);
    free(tmp);
    kv->seq_pos_max[dst] = seq_max(kv, dst);
    ckpt_invalidate(kv, dst, p0);
    lm_status st2 = lm_kv_sync(kv);
    return st ? st : st2;
}

/* bytes of one sequence's ring-layer rows (K and V) */
static size_t ring_seq_bytes(const lm_kv *kv) {
    size_t b = 0;
    for (int il = 0; il < kv->n_layer; il++) {
        const lm_kv_layer *kl = &kv->layers[il];
        if (!kl->has_cache || !kv->kind[kl->kind].ring) continue;
        const size_t cells = (size_t)kv->kind[kl->kind].cps;
        if (kl->has_k) b += kl->k.nb[1] * cells;
        b += kl->v.nb[1] * cells;
    }
    return b;
}

/* move a sequence's ring-layer rows between the cache and a checkpoint */
static lm_status ring_rows(lm_kv *kv, int32_t seq, uint8_t *data, bool save) {
    size_t at = 0;
    for (int il = 0; il < kv->n_layer; il++) {
        lm_kv_layer *kl = &kv->layers[il];
        const lm_kv_kind *kk = &kv->kind[kl->kind];
        if (!kl->has_cache || !kk->ring) continue;
        lm_tensor *ts[2] = {kl->has_k ? &kl->k : NULL, &kl->v};
        for (int i = 0; i < 2; i++) {
            if (!ts[i]) continue;
            lm_backend *be = ts[i]->buf->be;
            const size_t bytes = ts[i]->nb[1] * (size_t)kk->cps, off = ts[i]->nb[1] * (size_t)seq * (size_t)kk->cps;
            LM_TRY(save ? be->ops->tensor_get(be, ts[i], data + at, off, bytes) : be->ops->tensor_set(be, ts[i], data + at, off, bytes));
            at += bytes;
        }
    }
    return LM_STATUS_OK;
}

lm_status lm_kv_seq_checkpoint(lm_kv *kv, int32_t seq) {
    LM_TRY(check_seq(kv, seq));
    const int32_t pos = kv->seq_pos_max[seq] + 1;
    const size_t bytes = ring_seq_bytes(kv);
    if (bytes == 0 || pos == 0) return LM_STATUS_OK; /* no sliding layers, or nothing cached */
    if (!kv->ckpt && !(kv->ckpt = calloc((size_t)kv->n_seq * LM_KV_CKPT_PER_SEQ, sizeof *kv->ckpt)))
        return lm_fail(LM_STATUS_OUT_OF_MEMORY, "out of memory for KV checkpoints");
    lm_kv_ckpt *slot = NULL;
    for (int i = 0; i < LM_KV_CKPT_PER_SEQ; i++) {
        lm_kv_ckpt *ck = &kv->ckpt[seq * LM_KV_CKPT_PER_SEQ + i];
        if (ck->data && ck->pos == pos) return LM_STATUS_OK; /* have it */
        /* a free slot, else the oldest position */
        if (!slot || (slot->data && (!ck->data || ck->pos < slot->pos))) slot = ck;
    }
    ckpt_drop(slot);
    lm_kv_ckpt ck = {.seq = seq, .pos = pos, .bytes = bytes, .data = malloc(bytes)};
    lm_status st = ck.data ? LM_STATUS_OK : lm_fail(LM_STATUS_OUT_OF_MEMORY, "out of memory for a %zu-byte KV checkpoint", bytes);
    for (int k = 0; k < LM_KV_KINDS && !st; k++) {
        const lm_kv_kind *kk = &kv->kind[k];
        if (!kk->used || !kk->ring) continue;
        if (!(ck.host_pos[k] = malloc((size_t)kk->cps * sizeof(int32_t))))
            st = lm_fail(LM_STATUS_OUT_OF_MEMORY, "out of memory for a KV checkpoint");
        else
            memcpy(ck.host_pos[k], kk->host_pos + (size_t)seq * kk->cps, (size_t)kk->cps * sizeof(int32_t));
    }
    if (!st) st = ring_rows(kv, seq, ck.data, true);
    if (st) {
        ckpt_drop(&ck);
        return st;
    }
    *slot = ck;
    return LM_STATUS_OK;
}

lm_status lm_kv_seq_rollback(lm_kv *kv, int32_t seq, int32_t p, int32_t *pos_out) {
    LM_TRY(check_seq(kv, seq));
    if (p < 0) p = 0;
    if (p > kv->seq_pos_max[seq]) { /* nothing to remove */
        *pos_out = kv->seq_pos_max[seq] + 1;
        return LM_STATUS_OK;
    }
    /* the rings still serve p: an ordinary tail removal */
    bool served = true;
    for (int k = 0; k < LM_KV_KINDS; k++) {
        const lm_kv_kind *kk = &kv->kind[k];
        if (kk->used && kk->ring && kv->seq_pos_max[seq] - p > kk->cps - kk->window) served = false;
    }
    if (served || p == 0) {
        LM_TRY(lm_kv_seq_rm(kv, seq, p, -1));
        *pos_out = p;
        return LM_STATUS_OK;
    }
    /* the newest checkpoint at or before p */
    lm_kv_ckpt *best = NULL;
    for (int i = 0; kv->ckpt && i < LM_KV_CKPT_PER_SEQ; i++) {
        lm_kv_ckpt *ck = &kv->ckpt[seq * LM_KV_CKPT_PER_SEQ + i];
        if (ck->data && ck->pos <= p && (!best || ck->pos > best->pos)) best = ck;
    }
    if (!best)
        return lm_fail(LM_STATUS_UNSUPPORTED,
                       "sequence %d: cannot roll back to position %d: the sliding-window cache overwrote the positions "
                       "before it and no checkpoint at or before it exists (lm_context_seq_checkpoint); clear the sequence",
                       seq, p);
    const int32_t c = best->pos;
    /* full kinds: forget [c, end); ring kinds: the saved cells and rows */
    for (int k = 0; k < LM_KV_KINDS; k++) {
        lm_kv_kind *kk = &kv->kind[k];
        if (!kk->used) continue;
        if (kk->ring) {
            memcpy(kk->host_pos + (size_t)seq * kk->cps, best->host_pos[k], (size_t)kk->cps * sizeof(int32_t));
            LM_TRY(upload_seq_pos(kv, kk, seq));
        } else {
            LM_TRY(kind_rm(kv, k, seq, c, INT32_MAX));
        }
    }
    LM_TRY(lm_kv_sync(kv));
    LM_TRY(ring_rows(kv, seq, best->data, false));
    kv->seq_pos_max[seq] = seq_max(kv, seq);
    ckpt_invalidate(kv, seq, c);
    *pos_out = c;
    return LM_STATUS_OK;
}

uint64_t lm_kv_checkpoint_bytes(const lm_kv *kv) {
    uint64_t b = 0;
    for (int i = 0; kv->ckpt && i < kv->n_seq * LM_KV_CKPT_PER_SEQ; i++)
        if (kv->ckpt[i].data) b += kv->ckpt[i].bytes;
    return b;
}
