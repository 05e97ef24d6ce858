/*
 * kv.c — KV cache allocation and sequence bookkeeping (see kv.h).
 */
#include "kv.h"

#include <stdlib.h>
#include <string.h>

void lm_kv_shape(const lm_model *m, int32_t n_ctx, int32_t n_batch, int32_t cps[LM_KV_KINDS], bool ring[LM_KV_KINDS]) {
    cps[LM_KV_KIND_FULL] = n_ctx;
    ring[LM_KV_KIND_FULL] = false;
    /* a chunk of n_batch tokens needs W - 1 + n_batch rows visible at once */
    int64_t swa = lm_pad((size_t)(m->hp.window - 1 + n_batch), 32);
    if (m->hp.window < 1 || swa >= n_ctx) { /* no sliding layers (window 0): the kind stays unused */
        cps[LM_KV_KIND_SWA] = n_ctx;
        ring[LM_KV_KIND_SWA] = false;
    } else {
        cps[LM_KV_KIND_SWA] = (int32_t)swa;
        ring[LM_KV_KIND_SWA] = true;
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

lm_status lm_kv_init(lm_kv *kv, const lm_model *m, lm_dtype type, int32_t n_ctx, int32_t n_seq, int32_t n_batch) {
    memset(kv, 0, sizeof *kv);
    kv->n_dev = m->n_dev > 0 ? m->n_dev : 1;
    for (int d = 0; d < kv->n_dev; d++) kv->devs[d] = m->devs[d];
    kv->type = type;
    kv->n_seq = n_seq;
    kv->n_ctx = n_ctx;
    kv->n_batch = n_batch;
    kv->n_layer = m->hp.n_layer;
    int32_t cps[LM_KV_KINDS];
    bool ring[LM_KV_KINDS];
    lm_kv_shape(m, n_ctx, n_batch, cps, ring);
    for (int k = 0; k < LM_KV_KINDS; k++) {
        kv->kind[k].cps = cps[k];
        kv->kind[k].ring = ring[k];
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
        const int64_t cells = (int64_t)cps[kl->kind] * n_seq;
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
        if (!kv->kind[k].used) continue;
        const int64_t cells = (int64_t)cps[k] * n_seq;
        for (int d = 0; d < kv->n_dev; d++) {
            if (!kind_on[k][d]) continue;
            lm_tensor_init(&kv->kind[k].cell_pos[d], LM_I32, 1, &cells);
            all_dev[n_all] = d;
            all[n_all++] = &kv->kind[k].cell_pos[d];
            total += lm_pad((size_t)cells * 4, 256);
        }
        kv->kind[k].host_pos = malloc((size_t)cells * sizeof(int32_t));
        if (!kv->kind[k].host_pos) return lm_fail(LM_STATUS_OUT_OF_MEMORY, "kv: out of memory");
        for (int64_t c = 0; c < cells; c++) kv->kind[k].host_pos[c] = -1;
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
        if (t->type == LM_I32) continue; /* cell positions: below */
        LM_TRY(zero_fill(t->buf->be, t));
    }
    for (int k = 0; k < LM_KV_KINDS; k++)
        for (int d = 0; d < kv->n_dev; d++) {
            lm_tensor *cp = &kv->kind[k].cell_pos[d];
            if (cp->buf) LM_TRY(cp->buf->be->ops->tensor_set(cp->buf->be, cp, kv->kind[k].host_pos, 0, lm_tensor_nbytes(cp)));
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
    for (int k = 0; k < LM_KV_KINDS; k++) free(kv->kind[k].host_pos);
    free(kv->layers);
    free(kv->seq_pos_max);
    memset(kv, 0, sizeof *kv);
}

lm_status lm_kv_seq_clear(lm_kv *kv, int32_t seq) {
    if (seq < 0 || seq >= kv->n_seq) return lm_fail(LM_STATUS_INVALID_ARGUMENT, "sequence %d out of range [0, %d)", seq, kv->n_seq);
    for (int k = 0; k < LM_KV_KINDS; k++) {
        lm_kv_kind *kk = &kv->kind[k];
        if (!kk->used) continue;
        int32_t *hp = kk->host_pos + (size_t)seq * kk->cps;
        for (int32_t c = 0; c < kk->cps; c++) hp[c] = -1;
        for (int d = 0; d < kv->n_dev; d++) {
            lm_tensor *cp = &kk->cell_pos[d];
            if (cp->buf) LM_TRY(cp->buf->be->ops->tensor_set(cp->buf->be, cp, hp, (size_t)seq * kk->cps * 4, (size_t)kk->cps * 4));
        }
    }
    kv->seq_pos_max[seq] = -1;
    ckpt_invalidate(kv, seq, -1);
    return LM_STATUS_OK;
}

/* upload a sequence's cell positions of one kind to every device's copy */
static lm_status upload_seq_pos(lm_kv *kv, lm_kv_kind *kk, int32_t seq) {
    const int32_t *hp = kk->host_pos + (size_t)seq * kk->cps;
    for (int d = 0; d < kv->n_dev; d++) {
        lm_tensor *cp = &kk->cell_pos[d];
        if (cp->buf) LM_TRY(cp->buf->be->ops->tensor_set(cp->buf->be, cp, hp, (size_t)seq * kk->cps * 4, (size_t)kk->cps * 4));
    }
    return LM_STATUS_OK;
}

static int32_t seq_max(const lm_kv *kv, int32_t seq) {
    int32_t mx = -1;
    for (int k = 0; k < LM_KV_KINDS; k++) {
        const lm_kv_kind *kk = &kv->kind[k];
        if (!kk->used) continue;
        const int32_t *hp = kk->host_pos + (size_t)seq * kk->cps;
        for (int32_t c = 0; c < kk->cps; c++) mx = hp[c] > mx ? hp[c] : mx;
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
    for (int k = 0; k < LM_KV_KINDS; k++) {
        lm_kv_kind *kk = &kv->kind[k];
        if (!kk->used) continue;
        int32_t *hp = kk->host_pos + (size_t)seq * kk->cps;
        for (int32_t c = 0; c < kk->cps; c++)
            if (hp[c] >= p0 && hp[c] < p1) hp[c] = -1;
        LM_TRY(upload_seq_pos(kv, kk, seq));
    }
    kv->seq_pos_max[seq] = seq_max(kv, seq);
    ckpt_invalidate(kv, seq, p0);
    return LM_STATUS_OK;
}

/* copy cells [c_src, c_src + n) of a cache tensor to [c_dst, c_dst + n) through the host */
static lm_status copy_cells(lm_tensor *t, int32_t c_src, int32_t c_dst, int32_t n, void **tmp, size_t *tmp_size) {
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

lm_status lm_kv_seq_cp(lm_kv *kv, int32_t src, int32_t dst, int32_t p0, int32_t p1) {
    LM_TRY(check_seq(kv, src));
    LM_TRY(check_seq(kv, dst));
    if (p0 < 0) p0 = 0;
    if (p1 < 0) p1 = INT32_MAX;
    const int32_t have = kv->seq_pos_max[src];
    if (src == dst || p0 >= p1 || have < p0) return LM_STATUS_OK;
    if (p1 > have + 1) p1 = have + 1;
    void *tmp = NULL;
    size_t tmp_size = 0;
    lm_status st = LM_STATUS_OK;
    for (int k = 0; k < LM_KV_KINDS && !st; k++) {
        lm_kv_kind *kk = &kv->kind[k];
        if (!kk->used) continue;
        int32_t *hs = kk->host_pos + (size_t)src * kk->cps, *hd = kk->host_pos + (size_t)dst * kk->cps;
        /* positions of [p0, p1) that src still holds, as runs of consecutive cells */
        int32_t p = p0;
        while (p < p1 && !st) {
            const int32_t c = kk->ring ? p % kk->cps : p; /* full kinds: p < n_ctx = cps */
            if (hs[c] != p) {
                p++;
                continue;
            }
            int32_t n = 1;
            while (p + n < p1 && c + n < kk->cps && hs[c + n] == p + n) n++;
            for (int il = 0; il < kv->n_layer && !st; il++) {
                lm_kv_layer *kl = &kv->layers[il];
                if (!kl->has_cache || kl->kind != k) continue;
                if (kl->has_k) st = copy_cells(&kl->k, src * kk->cps + c, dst * kk->cps + c, n, &tmp, &tmp_size);
                if (!st) st = copy_cells(&kl->v, src * kk->cps + c, dst * kk->cps + c, n, &tmp, &tmp_size);
            }
            for (int32_t i = 0; i < n; i++) hd[c + i] = p + i;
            p += n;
        }
        if (!st) st = upload_seq_pos(kv, kk, dst);
    }
    free(tmp);
    if (!st) kv->seq_pos_max[dst] = seq_max(kv, dst);
    ckpt_invalidate(kv, dst, p0);
    return st;
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
        int32_t *hp = kk->host_pos + (size_t)seq * kk->cps;
        if (kk->ring) memcpy(hp, best->host_pos[k], (size_t)kk->cps * sizeof(int32_t));
        else
            for (int32_t i = 0; i < kk->cps; i++)
                if (hp[i] >= c) hp[i] = -1;
        LM_TRY(upload_seq_pos(kv, kk, seq));
    }
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
