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
    if (swa >= n_ctx) {
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
    for (int d = 0; d < kv->n_dev; d++) kv->devs[d] = d == 0 ? m->be : m->devs[d];
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

void lm_kv_free(lm_kv *kv) {
    if (!kv) return;
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
    return LM_STATUS_OK;
}
