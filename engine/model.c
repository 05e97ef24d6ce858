/*
 * model.c — load a GGUF model: architecture and hyper-parameters from metadata (validated),
 * per-layer configuration, weight tensors bound to the device with their shapes checked, and the
 * vocabulary. Also the public model / tokenizer / chat entry points of lumen.h.
 *
 * Weights: on a device that can read host memory (the CPU) the mapped file is wrapped without
 * copying; otherwise one device buffer is allocated and every used tensor is uploaded once.
 * Small vectors (norm weights, scales) that are not f32 in the file are converted to f32 into
 * an auxiliary buffer so every op sees f32 parameters.
 */
#define _GNU_SOURCE
#include "model.h"

#include "chat.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

lm_model_params lm_model_default_params(void) {
    return (lm_model_params){.backend = "cpu", .device = 0, .n_threads = 0, .use_mmap = true, .gpu_layers = -1};
}

/* ---------------------------------------------------------------------------------------- */
/* metadata helpers                                                                         */

static const char *akey(const lm_model *m, const char *suffix) {
    static _Thread_local char buf[192];
    snprintf(buf, sizeof buf, "%s.%s", m->arch_name, suffix);
    return buf;
}

/* integer key with arch prefix; *present = false and *out untouched when absent */
static lm_status get_int(const lm_model *m, const char *suffix, int64_t lo, int64_t hi, int64_t *out, bool required) {
    const char *key = akey(m, suffix);
    const lm_gguf_kv *kv = lm_gguf_find(m->gguf, key);
    if (!kv) return required ? lm_fail(LM_STATUS_FORMAT, "missing metadata key '%s'", key) : LM_STATUS_OK;
    int64_t v;
    LM_TRY(lm_gguf_get_i64(m->gguf, key, &v));
    if (v < lo || v > hi)
        return lm_fail(LM_STATUS_FORMAT, "metadata '%s' = %lld is outside [%lld, %lld]", key, (long long)v, (long long)lo,
                       (long long)hi);
    *out = v;
    return LM_STATUS_OK;
}

static lm_status get_i32(const lm_model *m, const char *suffix, int64_t lo, int64_t hi, int32_t *out, bool required) {
    int64_t v = *out;
    LM_TRY(get_int(m, suffix, lo, hi, &v, required));
    *out = (int32_t)v;
    return LM_STATUS_OK;
}

static lm_status get_f32(const lm_model *m, const char *suffix, float lo, float hi, float *out, bool required) {
    const char *key = akey(m, suffix);
    if (!lm_gguf_find(m->gguf, key)) return required ? lm_fail(LM_STATUS_FORMAT, "missing metadata key '%s'", key) : LM_STATUS_OK;
    float v;
    LM_TRY(lm_gguf_get_f32(m->gguf, key, &v));
    if (!(v >= lo && v <= hi)) return lm_fail(LM_STATUS_FORMAT, "metadata '%s' = %g is outside [%g, %g]", key, (double)v, (double)lo, (double)hi);
    *out = v;
    return LM_STATUS_OK;
}

/* per-layer integer: scalar or array of n_layer values */
static lm_status get_layer_int(const lm_model *m, const char *suffix, int il, int64_t lo, int64_t hi, int32_t *out,
                               bool required) {
    const char *key = akey(m, suffix);
    const lm_gguf_kv *kv = lm_gguf_find(m->gguf, key);
    if (!kv) return required ? lm_fail(LM_STATUS_FORMAT, "missing metadata key '%s'", key) : LM_STATUS_OK;
    int64_t v;
    if (kv->value.type == LM_GGUF_ARRAY) {
        if (kv->value.arr.n != (uint64_t)m->hp.n_layer)
            return lm_fail(LM_STATUS_FORMAT, "metadata '%s' has %llu entries for %d layers", key,
                           (unsigned long long)kv->value.arr.n, m->hp.n_layer);
        if (!lm_gguf_arr_int(&kv->value, (uint64_t)il, &v))
            return lm_fail(LM_STATUS_FORMAT, "metadata '%s' is not an integer array", key);
    } else {
        LM_TRY(lm_gguf_get_i64(m->gguf, key, &v));
    }
    if (v < lo || v > hi)
        return lm_fail(LM_STATUS_FORMAT, "metadata '%s'[%d] = %lld is outside [%lld, %lld]", key, il, (long long)v,
                       (long long)lo, (long long)hi);
    *out = (int32_t)v;
    return LM_STATUS_OK;
}

static float bf16_round(float x) { return lm_bf16_to_f32(lm_f32_to_bf16(x)); }

/* ---------------------------------------------------------------------------------------- */
/* hyper-parameters                                                                         */

static lm_status read_hparams(lm_model *m) {
    lm_hparams *hp = &m->hp;
    hp->n_ctx_train = 8192;
    hp->eps = 1e-6f;
    LM_TRY(get_i32(m, "embedding_length", 1, 1 << 17, &hp->n_embd, true));
    LM_TRY(get_i32(m, "block_count", 1, 1024, &hp->n_layer, true));
    LM_TRY(get_i32(m, "attention.head_count", 1, 4096, &hp->n_head, true));
    LM_TRY(get_i32(m, "context_length", 1, 1 << 24, &hp->n_ctx_train, false));
    LM_TRY(get_f32(m, "attention.layer_norm_rms_epsilon", 0.0f, 1.0f, &hp->eps, false));
    const bool llama = LM_ARCH_IS_LLAMA(m->arch);
    hp->window = 0;
    if (!llama) LM_TRY(get_i32(m, "attention.sliding_window", 1, 1 << 24, &hp->window, false));
    hp->final_softcap = 0;
    LM_TRY(get_f32(m, "final_logit_softcapping", 0.0f, 1e6f, &hp->final_softcap, false));
    LM_TRY(get_i32(m, "expert_count", 0, 4096, &hp->n_expert, false));
    LM_TRY(get_i32(m, "expert_used_count", 0, 4096, &hp->n_expert_used, false));
    if (hp->n_expert > 0) {
        LM_TRY(get_i32(m, "expert_feed_forward_length", 1, 1 << 20, &hp->n_ff_exp, true));
        if (hp->n_expert_used < 1 || hp->n_expert_used > hp->n_expert)
            return lm_fail(LM_STATUS_FORMAT, "expert_used_count %d with %d experts", hp->n_expert_used, hp->n_expert);
    }
    LM_TRY(get_i32(m, "embedding_length_per_layer_input", 0, 1 << 16, &hp->n_embd_per_layer, false));
    LM_TRY(get_i32(m, "attention.shared_kv_layers", 0, hp->n_layer - 1, &hp->n_kv_shared, false));

    const bool g4 = m->arch == LM_ARCH_GEMMA4;
    int32_t hd_full = hp->n_embd / hp->n_head, hd_swa = 0;
    LM_TRY(get_i32(m, "attention.key_length", 2, 8192, &hd_full, !g4 ? false : true));
    int32_t hdv_full = hd_full, hdv_swa;
    LM_TRY(get_i32(m, "attention.value_length", 2, 8192, &hdv_full, false));
    hd_swa = hd_full;
    LM_TRY(get_i32(m, "attention.key_length_swa", 2, 8192, &hd_swa, false));
    hdv_swa = hd_swa;
    LM_TRY(get_i32(m, "attention.value_length_swa", 2, 8192, &hdv_swa, false));

    float theta_full = llama ? 1e4f : 1e6f, theta_swa = 1e4f, scale_full = 1.0f;
    LM_TRY(get_f32(m, "rope.freq_base", 1.0f, 1e12f, &theta_full, false));
    LM_TRY(get_f32(m, "rope.freq_base_swa", 1.0f, 1e12f, &theta_swa, false));
    {
        lm_gguf_str st;
        if (lm_gguf_get_str(m->gguf, akey(m, "rope.scaling.type"), &st) == LM_STATUS_OK) {
            if (lm_gguf_str_eq(st, "linear")) {
                float f = 1.0f;
                LM_TRY(get_f32(m, "rope.scaling.factor", 1e-6f, 1e6f, &f, true));
                scale_full = 1.0f / f;
            } else if (llama && !lm_gguf_str_eq(st, "none")) {
                /* YaRN & co. change the rotation itself: refuse rather than drift at long contexts */
                return lm_fail(LM_STATUS_UNSUPPORTED, "rope scaling '%.*s' is not supported (none and linear are)",
                               (int)(st.len < 32 ? st.len : 32), st.ptr);
            }
        }
        lm_clear_error();
    }
    int32_t rot_full = hd_full, rot_swa = hd_swa;
    LM_TRY(get_i32(m, "rope.dimension_count", 2, 8192, &rot_full, false));
    LM_TRY(get_i32(m, "rope.dimension_count_swa", 2, 8192, &rot_swa, false));
    if (rot_full != hd_full || rot_swa != hd_swa)
        return lm_fail(LM_STATUS_UNSUPPORTED, "partial rotary embedding (rope dims %d/%d for head dims %d/%d) is not supported",
                       rot_full, rot_swa, hd_full, hd_swa);

    /* layer pattern: Gemma 4 stores it (true = sliding); Gemma 3 uses every 6th layer global */
    const lm_gguf_kv *pat = lm_gguf_find(m->gguf, akey(m, "attention.sliding_window_pattern"));
    if (g4 && !pat) return lm_fail(LM_STATUS_FORMAT, "missing metadata key '%s'", akey(m, "attention.sliding_window_pattern"));
    if (pat && (pat->value.type != LM_GGUF_ARRAY || pat->value.arr.n != (uint64_t)hp->n_layer || !pat->value.arr.data))
        return lm_fail(LM_STATUS_FORMAT, "'%s' must be an array of %d booleans", akey(m, "attention.sliding_window_pattern"),
                       hp->n_layer);

    m->layers = calloc((size_t)hp->n_layer, sizeof(lm_layer));
    if (!m->layers) return lm_fail(LM_STATUS_OUT_OF_MEMORY, "out of memory");
    bool any_sliding = false;
    for (int il = 0; il < hp->n_layer; il++) {
        lm_layer *L = &m->layers[il];
        if (pat) {
            int64_t b;
            lm_gguf_arr_int(&pat->value, (uint64_t)il, &b);
            L->sliding = b != 0;
        } else {
            L->sliding = (il % 6) < 5;
        }
        if (hp->window == 0) L->sliding = false;
        any_sliding |= L->sliding;
        L->n_head_kv = 0;
        LM_TRY(get_layer_int(m, "attention.head_count_kv", il, 1, hp->n_head, &L->n_head_kv, true));
        if (hp->n_head % L->n_head_kv != 0)
            return lm_fail(LM_STATUS_FORMAT, "layer %d: %d query heads are not a multiple of %d KV heads", il, hp->n_head,
                           L->n_head_kv);
        L->n_ff = 0;
        LM_TRY(get_layer_int(m, "feed_forward_length", il, 1, 1 << 20, &L->n_ff, true));
        L->head_dim = L->sliding ? hd_swa : hd_full;
        L->head_dim_v = L->sliding ? hdv_swa : hdv_full;
        if (L->head_dim % 2 != 0) return lm_fail(LM_STATUS_FORMAT, "layer %d: odd head dim %d", il, L->head_dim);
        L->kv_layer = il;
        L->out_scale = 1.0f;
        L->rope.mode = m->arch == LM_ARCH_LLAMA ? LM_ROPE_NORM : LM_ROPE_NEOX;
        L->rope.freq_dim = L->head_dim;
        L->rope.n_pairs = L->head_dim / 2;
        L->rope.theta = L->sliding ? theta_swa : theta_full;
        L->rope.freq_scale = L->sliding ? 1.0f : scale_full;
    }
    if (any_sliding && hp->window < 1) return lm_fail(LM_STATUS_FORMAT, "sliding layers without a sliding window size");

    /* KV sharing (Gemma 4 E models): layers from L - n_shared read the last earlier layer of
       the same type */
    const int first_shared = hp->n_layer - hp->n_kv_shared;
    for (int il = first_shared; il < hp->n_layer; il++) {
        int donor = -1;
        for (int j = first_shared - 1; j >= 0; j--)
            if (m->layers[j].sliding == m->layers[il].sliding) {
                donor = j;
                break;
            }
        if (donor < 0) return lm_fail(LM_STATUS_FORMAT, "KV-shared layer %d has no earlier layer of its type to share", il);
        if (m->layers[donor].head_dim != m->layers[il].head_dim || m->layers[donor].n_head_kv != m->layers[il].n_head_kv)
            return lm_fail(LM_STATUS_FORMAT, "KV-shared layer %d and its donor %d have different KV shapes", il, donor);
        m->layers[il].kv_layer = donor;
    }

    if (llama) {
        hp->attn_scale = 1.0f / sqrtf((float)hd_full);
        hp->emb_scale = 1.0f;
    } else if (g4) {
        hp->attn_scale = 1.0f;
        hp->emb_scale = bf16_round(sqrtf((float)hp->n_embd)); /* HF casts sqrt(H) to bf16 */
    } else {
        /* Gemma 3: query_pre_attn_scalar^-0.5; the GGUF has no key for it. It equals head_dim
           for every size but 27B (62 layers), where it is n_embd / n_head (as llama.cpp does). */
        float qpas = hp->n_layer == 62 ? (float)hp->n_embd / (float)hp->n_head : (float)hd_full;
        hp->attn_scale = 1.0f / sqrtf(qpas);
        hp->emb_scale = sqrtf((float)hp->n_embd); /* llama.cpp gemma3 uses the exact value */
    }
    return LM_STATUS_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* tensors                                                                                  */

typedef struct binder {
    lm_model *m;
    bool *used;        /* per GGUF tensor */
    const uint8_t *dev; /* per GGUF tensor: the device it is placed on */
    lm_buffer *aux[LM_GRAPH_MAX_DEVS]; /* converted f32 vectors, per device */
    size_t aux_used[LM_GRAPH_MAX_DEVS];
    lm_status st;
} binder;

/* an f32 copy of n floats in a device's aux buffer */
static lm_tensor *aux_copy(binder *b, lm_tensor *t, int d, const float *data, int n_dims, const int64_t *ne, const char *name) {
    lm_model *m = b->m;
    lm_tensor_init(t, LM_F32, n_dims, ne);
    snprintf(t->name, sizeof t->name, "%s", name);
    const size_t bytes = (size_t)lm_tensor_nelements(t) * 4;
    t->buf = b->aux[d];
    t->offs = b->aux_used[d];
    b->aux_used[d] += lm_pad(bytes, 256);
    if (b->aux_used[d] > b->aux[d]->size) {
        b->st = lm_fail(LM_STATUS_FORMAT, "too many non-f32 vectors");
        return NULL;
    }
    b->st = m->devs[d]->ops->tensor_set(m->devs[d], t, data, 0, bytes);
    return t;
}

static int64_t gguf_index(const lm_gguf *g, const lm_gguf_tensor *t) { return t - lm_gguf_tensor_at(g, 0); }

/* Bind tensor `name` expecting shape ne[0..n-1] (remaining dims 1). vector = convert to f32. */
static lm_tensor *bind(binder *b, const char *name, int n, int64_t ne0, int64_t ne1, int64_t ne2, bool required, bool vector) {
    if (b->st) return NULL;
    lm_model *m = b->m;
    const lm_gguf_tensor *gt = lm_gguf_find_tensor(m->gguf, name);
    if (!gt) {
        if (required) b->st = lm_fail(LM_STATUS_FORMAT, "tensor '%s' is missing", name);
        return NULL;
    }
    const int64_t want[4] = {ne0, n > 1 ? ne1 : 1, n > 2 ? ne2 : 1, 1};
    for (int d = 0; d < 4; d++)
        if (gt->ne[d] != want[d]) {
            b->st = lm_fail(LM_STATUS_FORMAT, "tensor '%s' has shape [%lld, %lld, %lld, %lld], expected [%lld, %lld, %lld]",
                            name, (long long)gt->ne[0], (long long)gt->ne[1], (long long)gt->ne[2], (long long)gt->ne[3],
                            (long long)want[0], (long long)want[1], (long long)want[2]);
            return NULL;
        }
    int64_t idx = gguf_index(m->gguf, gt);
    lm_tensor *t = &m->tensors[idx];
    if (b->used[idx]) return t; /* bound before (e.g. shared by name) */
    b->used[idx] = true;
    lm_tensor_init(t, gt->type, n, want);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->buf = NULL; /* placed in a weights buffer once every tensor is bound */
    t->offs = (size_t)(lm_gguf_data_offset(m->gguf) + gt->offset);
    if (vector && gt->type != LM_F32) {
        /* convert into the aux buffer of its device (host-visible on the CPU; uploaded otherwise) */
        const int64_t nel = lm_tensor_nelements(t);
        float *tmp = malloc((size_t)nel * sizeof(float));
        if (!tmp) {
            b->st = lm_fail(LM_STATUS_OUT_OF_MEMORY, "out of memory converting '%s'", name);
            return NULL;
        }
        lm_dequant_row(gt->type, gt->data, tmp, nel);
        aux_copy(b, t, b->dev[idx], tmp, n, want, name);
        free(tmp);
    }
    return t;
}

static float read_scalar(const lm_model *m, const char *name, float def) {
    const lm_gguf_tensor *gt = lm_gguf_find_tensor(m->gguf, name);
    if (!gt) return def;
    float v;
    lm_dequant_row(gt->type, gt->data, &v, 1);
    return v;
}

/* ---------------------------------------------------------------------------------------- */
/* placement (split execution)                                                              */

int lm_tensor_layer(const char *name) {
    if (strncmp(name, "blk.", 4)) return -1;
    char *end;
    long il = strtol(name + 4, &end, 10);
    return end != name + 4 && *end == '.' && il >= 0 && il < (1 << 20) ? (int)il : -1;
}

static int tensor_dev(const lm_plan *pl, const lm_model *m, const char *name) {
    return lm_plan_tensor_place(pl, name) == LM_PLACE_GPU || m->n_dev < 2 ? 0 : 1;
}

/* Decide the device of every tensor: everything on the main device, unless it is a GPU that
   the plan (automatic, or --gpu-layers / --cpu-tensors) fills only in part; then the CPU
   backend is created as device 1 for the rest. A stage (a layer's attention + dense FFN, a
   layer's experts, the head, the per-layer-input projection) is never split: its weights, its
   KV cache and its ops share a device. */
static lm_status place_devices(lm_model *m, const lm_model_params *p, uint8_t *dev) {
    const lm_hparams *hp = &m->hp;
    const int64_t nt = lm_gguf_n_tensors(m->gguf);
    m->devs[0] = m->be;
    m->n_dev = 1;
    m->n_gpu_layers = hp->n_layer;
    memset(dev, 0, (size_t)nt + 1);
    lm_device_info di;
    LM_TRY(m->be->ops->device_info(m->be, &di));
    const bool want_split = p->gpu_layers >= 0 || (p->cpu_tensors && p->cpu_tensors[0]);
    if (di.unified_memory || di.is_cpu) {
        /* the CPU backend (and lavapipe) run everything; an explicit split is still honoured on
           a device-only backend so that split execution is testable without a GPU */
        if (!want_split || di.unified_memory) return LM_STATUS_OK;
    }
    lm_plan_params pp = lm_plan_default_params();
    if (p->context) pp.context = *p->context;
    pp.gpu_bytes = p->gpu_bytes ? p->gpu_bytes : (di.memory_free ? di.memory_free : di.memory_total);
    if (!pp.gpu_bytes) pp.gpu_bytes = UINT64_MAX / 4;
    pp.gpu_bandwidth_gbs = pp.cpu_bandwidth_gbs = 1; /* no prediction needed: skip measuring */
    pp.gpu_layers = p->gpu_layers;
    pp.cpu_tensors = p->cpu_tensors;
    lm_plan *pl;
    LM_TRY(lm_plan_create(m, &pp, &pl));
    bool all_gpu = true;
    for (int64_t i = 0; i < nt; i++) all_gpu &= lm_plan_tensor_place(pl, lm_gguf_tensor_at(m->gguf, i)->name) == LM_PLACE_GPU;
    if (all_gpu) {
        lm_plan_free(pl);
        return LM_STATUS_OK;
    }
    lm_backend_config cfg = {.n_threads = p->n_threads};
    lm_status st = lm_backend_create("cpu", &cfg, &m->devs[1]);
    if (st) {
        lm_plan_free(pl);
        return st;
    }
    m->n_dev = 2;
    /* stage devices (the planner places layer units whole; the head and the per-layer-input
       projection follow their matrices) */
    const bool tied = !lm_gguf_find_tensor(m->gguf, "output.weight");
    const int head_dev = tensor_dev(pl, m, tied ? "token_embd.weight" : "output.weight");
    const int ple_dev = tensor_dev(pl, m, "per_layer_model_proj.weight");
    m->n_gpu_layers = 0;
    char nm[96];
    for (int il = 0; il < hp->n_layer; il++) {
        snprintf(nm, sizeof nm, "blk.%d.attn_q.weight", il);
        m->layers[il].dev = tensor_dev(pl, m, nm);
        m->n_gpu_layers += m->layers[il].dev == 0;
    }
    /* every tensor with its stage */
    for (int64_t i = 0; i < nt; i++) {
        const char *name = lm_gguf_tensor_at(m->gguf, i)->name;
        const int il = lm_tensor_layer(name);
        int d = 0;
        if (il >= 0) {
            if (il >= hp->n_layer) continue;
            d = strstr(name, "_exps") ? tensor_dev(pl, m, name) : m->layers[il].dev;
        } else if (!strcmp(name, "output.weight") || !strcmp(name, "output_norm.weight")) {
            d = head_dev;
        } else if (!strcmp(name, "per_layer_model_proj.weight") || !strcmp(name, "per_layer_proj_norm.weight")) {
            d = ple_dev;
        } else {
            d = tensor_dev(pl, m, name); /* the input embedding (with the head when tied), per-layer
                                            embeddings (a lookup: the CPU), rope factors (copied to
                                            the other device when its layers need them) */
        }
        dev[i] = (uint8_t)d;
    }
    lm_plan_free(pl);
    for (int il = 0; il < hp->n_layer; il++) {
        const lm_layer *L = &m->layers[il];
        if (m->layers[L->kv_layer].dev != L->dev)
            return lm_fail(LM_STATUS_UNSUPPORTED,
                           "layer %d reads the KV cache of layer %d, which the plan puts on the other device; place "
                           "them together (--gpu-layers)", il, L->kv_layer);
    }
    return LM_STATUS_OK;
}

static lm_status bind_weights(lm_model *m, const lm_model_params *p) {
    const lm_hparams *hp = &m->hp;
    const int64_t nt = lm_gguf_n_tensors(m->gguf);
    m->tensors = calloc((size_t)nt + 1, sizeof(lm_tensor));
    uint8_t *dev = calloc((size_t)nt + 1, 1);
    binder b = {.m = m, .used = calloc((size_t)nt + 1, 1), .dev = dev};
    if (!m->tensors || !b.used || !dev) {
        free(b.used);
        free(dev);
        return lm_fail(LM_STATUS_OUT_OF_MEMORY, "out of memory");
    }
    m->n_tensors = nt;
    lm_status st = place_devices(m, p, dev);
    if (st) {
        free(b.used);
        free(dev);
        return st;
    }

    /* weights: wrap the mapped file when the device reads host memory (the CPU, and the host
       side of a split), else upload (below) */
    lm_device_info di;
    LM_TRY(m->be->ops->device_info(m->be, &di));
    const bool wrap = di.unified_memory && m->be->ops->buffer_from_host;
    m->weights = calloc(2, sizeof(lm_buffer *));
    if (!m->weights) st = lm_fail(LM_STATUS_OUT_OF_MEMORY, "out of memory");
    for (int d = 0; d < m->n_dev && !st; d++) {
        if (d == 0 && !wrap) continue;
        st = m->devs[d]->ops->buffer_from_host(m->devs[d], (void *)lm_gguf_base(m->gguf), lm_gguf_file_size(m->gguf),
                                               LM_BUF_WEIGHTS, &m->weights[m->n_weights]);
        if (!st) m->n_weights++;
    }
    /* aux buffers for converted vectors: bounded by the f32 size of all 1-D/small tensors, and a
       copy of the rope factors */
    size_t aux = 4096;
    for (int64_t i = 0; i < nt; i++) {
        const lm_gguf_tensor *gt = lm_gguf_tensor_at(m->gguf, i);
        if (gt->type != LM_F32 && gt->ne[1] == 1) aux += lm_pad((size_t)gt->ne[0] * 4, 256);
        if (!strcmp(gt->name, "rope_freqs.weight")) aux += lm_pad((size_t)gt->ne[0] * 4, 256);
    }
    for (int d = 0; d < m->n_dev && !st; d++) st = m->devs[d]->ops->buffer_alloc(m->devs[d], aux, LM_BUF_WEIGHTS, &b.aux[d]);
    for (int d = 0; d < m->n_dev; d++) m->aux[d] = b.aux[d];
    if (st) {
        free(b.used);
        free(dev);
        return st;
    }

    const int64_t H = hp->n_embd;
    char nm[96];
#define NAME(...) (snprintf(nm, sizeof nm, __VA_ARGS__), nm)
    {
        const lm_gguf_tensor *te = lm_gguf_find_tensor(m->gguf, "token_embd.weight");
        if (!te) {
            b.st = lm_fail(LM_STATUS_FORMAT, "tensor 'token_embd.weight' is missing");
        } else {
            if (te->ne[1] != hp->n_vocab)
                b.st = b.st ? b.st : lm_fail(LM_STATUS_FORMAT, "token_embd has %lld rows but the vocabulary has %d tokens",
                                             (long long)te->ne[1], hp->n_vocab);
            m->tok_embd = bind(&b, "token_embd.weight", 2, H, hp->n_vocab, 1, true, false);
        }
    }
    m->output = bind(&b, "output.weight", 2, H, hp->n_vocab, 1, false, false);
    if (!m->output) m->output = m->tok_embd; /* tied embeddings */
    m->output_norm = bind(&b, "output_norm.weight", 1, H, 1, 1, true, true);
    if (m->arch == LM_ARCH_GEMMA4) {
        int64_t hd_full = 0;
        for (int il = 0; il < hp->n_layer; il++)
            if (!m->layers[il].sliding) hd_full = m->layers[il].head_dim;
        const lm_gguf_tensor *rf = lm_gguf_find_tensor(m->gguf, "rope_freqs.weight");
        if (rf && hd_full > 0) m->rope_freqs = bind(&b, "rope_freqs.weight", 1, hd_full / 2, 1, 1, true, true);
    }
    if (hp->n_embd_per_layer > 0) {
        const int64_t P = hp->n_embd_per_layer, LP = P * hp->n_layer;
        m->ple_tok_embd = bind(&b, "per_layer_token_embd.weight", 2, LP, hp->n_vocab, 1, true, false);
        m->ple_proj = bind(&b, "per_layer_model_proj.weight", 2, H, LP, 1, true, false);
        m->ple_proj_norm = bind(&b, "per_layer_proj_norm.weight", 1, P, 1, 1, true, true);
    }

    if (LM_ARCH_IS_LLAMA(m->arch)) {
        /* Llama 3.1-style frequency factors, when present, apply to every layer */
        const lm_gguf_tensor *rf = lm_gguf_find_tensor(m->gguf, "rope_freqs.weight");
        if (rf) m->rope_freqs = bind(&b, "rope_freqs.weight", 1, m->layers[0].head_dim / 2, 1, 1, true, true);
    }
    for (int il = 0; il < hp->n_layer && !b.st && LM_ARCH_IS_LLAMA(m->arch); il++) {
        lm_layer *L = &m->layers[il];
        const int64_t hd = L->head_dim, nq = (int64_t)hp->n_head * hd, nk = (int64_t)L->n_head_kv * hd;
        const int64_t nv = (int64_t)L->n_head_kv * L->head_dim_v, no = (int64_t)hp->n_head * L->head_dim_v;
        const bool qwen = m->arch == LM_ARCH_QWEN2;
        L->attn_norm = bind(&b, NAME("blk.%d.attn_norm.weight", il), 1, H, 1, 1, true, true);
        L->wq = bind(&b, NAME("blk.%d.attn_q.weight", il), 2, H, nq, 1, true, false);
        L->wk = bind(&b, NAME("blk.%d.attn_k.weight", il), 2, H, nk, 1, true, false);
        L->wv = bind(&b, NAME("blk.%d.attn_v.weight", il), 2, H, nv, 1, true, false);
        L->wo = bind(&b, NAME("blk.%d.attn_output.weight", il), 2, no, H, 1, true, false);
        L->bq = bind(&b, NAME("blk.%d.attn_q.bias", il), 1, nq, 1, 1, qwen, true);
        L->bk = bind(&b, NAME("blk.%d.attn_k.bias", il), 1, nk, 1, 1, qwen, true);
        L->bv = bind(&b, NAME("blk.%d.attn_v.bias", il), 1, nv, 1, 1, qwen, true);
        L->bo = bind(&b, NAME("blk.%d.attn_output.bias", il), 1, H, 1, 1, false, true);
        L->ffn_norm = bind(&b, NAME("blk.%d.ffn_norm.weight", il), 1, H, 1, 1, true, true);
        L->ffn_gate = bind(&b, NAME("blk.%d.ffn_gate.weight", il), 2, H, L->n_ff, 1, true, false);
        L->ffn_up = bind(&b, NAME("blk.%d.ffn_up.weight", il), 2, H, L->n_ff, 1, true, false);
        L->ffn_down = bind(&b, NAME("blk.%d.ffn_down.weight", il), 2, L->n_ff, H, 1, true, false);
        L->rope_factors = m->rope_freqs != NULL; /* L->rope_freqs: set below, on the layer's device */
    }
    for (int il = 0; il < hp->n_layer && !b.st && !LM_ARCH_IS_LLAMA(m->arch); il++) {
        lm_layer *L = &m->layers[il];
        const int64_t hd = L->head_dim, nq = (int64_t)hp->n_head * hd, nk = (int64_t)L->n_head_kv * hd;
        const int64_t nv = (int64_t)L->n_head_kv * L->head_dim_v;
        const bool shared = L->kv_layer != il;
        L->attn_norm = bind(&b, NAME("blk.%d.attn_norm.weight", il), 1, H, 1, 1, true, true);
        L->wq = bind(&b, NAME("blk.%d.attn_q.weight", il), 2, H, nq, 1, true, false);
        L->q_norm = bind(&b, NAME("blk.%d.attn_q_norm.weight", il), 1, hd, 1, 1, true, true);
        if (!shared) {
            L->wk = bind(&b, NAME("blk.%d.attn_k.weight", il), 2, H, nk, 1, true, false);
            L->wv = bind(&b, NAME("blk.%d.attn_v.weight", il), 2, H, nv, 1, m->arch != LM_ARCH_GEMMA4, false);
            L->k_norm = bind(&b, NAME("blk.%d.attn_k_norm.weight", il), 1, hd, 1, 1, true, true);
            L->k_eq_v = L->wv == NULL;
            if (L->k_eq_v && L->head_dim_v != L->head_dim)
                b.st = b.st ? b.st : lm_fail(LM_STATUS_FORMAT, "layer %d has no attn_v but key/value head dims differ", il);
        }
        L->wo = bind(&b, NAME("blk.%d.attn_output.weight", il), 2, (int64_t)hp->n_head * L->head_dim_v, H, 1, true, false);
        L->post_attn_norm = bind(&b, NAME("blk.%d.post_attention_norm.weight", il), 1, H, 1, 1, true, true);
        L->ffn_norm = bind(&b, NAME("blk.%d.ffn_norm.weight", il), 1, H, 1, 1, true, true);
        L->ffn_gate = bind(&b, NAME("blk.%d.ffn_gate.weight", il), 2, H, L->n_ff, 1, true, false);
        L->ffn_up = bind(&b, NAME("blk.%d.ffn_up.weight", il), 2, H, L->n_ff, 1, true, false);
        L->ffn_down = bind(&b, NAME("blk.%d.ffn_down.weight", il), 2, L->n_ff, H, 1, true, false);
        L->post_ffw_norm = bind(&b, NAME("blk.%d.post_ffw_norm.weight", il), 1, H, 1, 1, true, true);
        if (m->arch == LM_ARCH_GEMMA4) {
            L->out_scale = read_scalar(m, NAME("blk.%d.layer_output_scale.weight", il), 1.0f);
            if (!isfinite(L->out_scale))
                b.st = b.st ? b.st : lm_fail(LM_STATUS_FORMAT, "layer %d: layer_output_scale is not finite", il);
            if (!L->sliding && m->rope_freqs) L->rope_factors = true;
            else if (!L->sliding) L->rope.n_pairs = L->head_dim / 8; /* proportional rope, factor 0.25 */
        }
        if (hp->n_expert > 0) {
            const int64_t E = hp->n_expert, F = hp->n_ff_exp;
            L->gate_inp = bind(&b, NAME("blk.%d.ffn_gate_inp.weight", il), 2, H, E, 1, true, false);
            L->gate_inp_scale = bind(&b, NAME("blk.%d.ffn_gate_inp.scale", il), 1, H, 1, 1, true, true);
            L->exp_scale = bind(&b, NAME("blk.%d.ffn_down_exps.scale", il), 1, E, 1, 1, false, true);
            L->gate_up_exps = bind(&b, NAME("blk.%d.ffn_gate_up_exps.weight", il), 3, H, 2 * F, E, false, false);
            if (!L->gate_up_exps) {
                L->gate_exps = bind(&b, NAME("blk.%d.ffn_gate_exps.weight", il), 3, H, F, E, true, false);
                L->up_exps = bind(&b, NAME("blk.%d.ffn_up_exps.weight", il), 3, H, F, E, true, false);
            }
            L->down_exps = bind(&b, NAME("blk.%d.ffn_down_exps.weight", il), 3, F, H, E, true, false);
            L->pre_ffw_norm_2 = bind(&b, NAME("blk.%d.pre_ffw_norm_2.weight", il), 1, H, 1, 1, true, true);
            L->post_ffw_norm_1 = bind(&b, NAME("blk.%d.post_ffw_norm_1.weight", il), 1, H, 1, 1, true, true);
            L->post_ffw_norm_2 = bind(&b, NAME("blk.%d.post_ffw_norm_2.weight", il), 1, H, 1, 1, true, true);
        }
        if (hp->n_embd_per_layer > 0) {
            const int64_t P = hp->n_embd_per_layer;
            L->inp_gate = bind(&b, NAME("blk.%d.inp_gate.weight", il), 2, H, P, 1, true, false);
            L->proj = bind(&b, NAME("blk.%d.proj.weight", il), 2, P, H, 1, true, false);
            L->post_norm = bind(&b, NAME("blk.%d.post_norm.weight", il), 1, H, 1, 1, true, true);
        }
    }
#undef NAME
    /* the rope factors on every device that runs a layer using them */
    if (!b.st && m->rope_freqs) {
        const lm_gguf_tensor *rf = lm_gguf_find_tensor(m->gguf, "rope_freqs.weight");
        const int home = dev[gguf_index(m->gguf, rf)];
        lm_tensor *copy[LM_GRAPH_MAX_DEVS] = {NULL};
        copy[home] = m->rope_freqs;
        for (int il = 0; il < hp->n_layer && !b.st; il++) {
            lm_layer *L = &m->layers[il];
            if (!L->rope_factors) continue;
            if (!copy[L->dev]) {
                float *tmp = malloc((size_t)rf->ne[0] * sizeof(float));
                if (!tmp) {
                    b.st = lm_fail(LM_STATUS_OUT_OF_MEMORY, "out of memory");
                    break;
                }
                lm_dequant_row(rf->type, rf->data, tmp, rf->ne[0]);
                copy[L->dev] = aux_copy(&b, &m->tensors[nt], L->dev, tmp, 1, &rf->ne[0], "rope_freqs.weight");
                free(tmp);
            }
            L->rope_freqs = copy[L->dev];
        }
    }
    /* place the tensors: in the wrapped file (devices that read host memory), or packed in file
       order into buffers of the main device no larger than it allows, and uploaded */
    lm_buffer *wrapped[LM_GRAPH_MAX_DEVS] = {NULL};
    for (int i = 0; i < m->n_weights; i++)
        for (int d = 0; d < m->n_dev; d++)
            if (m->weights[i]->be == m->devs[d]) wrapped[d] = m->weights[i];
    for (int64_t i = 0; i < nt && !b.st; i++)
        if (b.used[i] && !m->tensors[i].buf && wrapped[dev[i]]) m->tensors[i].buf = wrapped[dev[i]];
    if (!b.st) {
        const uint64_t limit = di.max_alloc ? di.max_alloc : UINT64_MAX;
        uint64_t total = 0, done = 0;
        int n_chunks = 0;
        uint64_t fill = UINT64_MAX;
        for (int64_t i = 0; i < nt && !b.st; i++) {
            if (!b.used[i] || m->tensors[i].buf) continue;
            const uint64_t sz = lm_pad(lm_gguf_tensor_at(m->gguf, i)->size, 256);
            if (sz > limit)
                b.st = lm_fail(LM_STATUS_UNSUPPORTED, "tensor '%s' (%llu bytes) exceeds the device's largest allocation (%llu)",
                               m->tensors[i].name, (unsigned long long)sz, (unsigned long long)limit);
            if (fill > limit - sz) {
                n_chunks++;
                fill = 0;
            }
            fill += sz;
            total += sz;
        }
        lm_buffer **w = realloc(m->weights, ((size_t)m->n_weights + (size_t)n_chunks + 1) * sizeof(lm_buffer *));
        if (!b.st && !w) b.st = lm_fail(LM_STATUS_OUT_OF_MEMORY, "out of memory");
        if (w) m->weights = w;
        /* second pass: allocate each chunk once its size is known, then upload its tensors */
        int64_t first = 0;
        while (!b.st && first < nt) {
            uint64_t size = 0;
            int64_t last = first;
            for (; last < nt; last++) {
                if (!b.used[last] || m->tensors[last].buf) continue;
                const uint64_t sz = lm_pad(lm_gguf_tensor_at(m->gguf, last)->size, 256);
                if (size > limit - sz) break;
                size += sz;
            }
            if (size == 0) break;
            lm_buffer *buf;
            if ((b.st = m->be->ops->buffer_alloc(m->be, (size_t)size, LM_BUF_WEIGHTS, &buf))) break;
            m->weights[m->n_weights++] = buf;
            uint64_t at = 0;
            for (int64_t i = first; i < last && !b.st; i++) {
                if (!b.used[i] || m->tensors[i].buf) continue;
                const lm_gguf_tensor *gt = lm_gguf_tensor_at(m->gguf, i);
                m->tensors[i].buf = buf;
                m->tensors[i].offs = (size_t)at;
                at += lm_pad(gt->size, 256);
                b.st = m->be->ops->tensor_set(m->be, &m->tensors[i], gt->data, 0, gt->size);
                done += lm_pad(gt->size, 256);
                if (p->progress) p->progress(total ? (float)done / (float)total : 1.0f, p->progress_user);
            }
            first = last;
        }
        if (!b.st && total == 0 && p->progress) p->progress(1.0f, p->progress_user);
    }
    free(b.used);
    free(dev);
    return b.st;
}

/* ---------------------------------------------------------------------------------------- */

lm_status lm_model_load(const char *path, const lm_model_params *params, lm_model **out) {
    lm_clear_error();
    if (!out) return lm_fail(LM_STATUS_INVALID_ARGUMENT, "lm_model_load: out is NULL");
    *out = NULL;
    lm_model_params p = params ? *params : lm_model_default_params();
    lm_model *m = calloc(1, sizeof *m);
    if (!m) return lm_fail(LM_STATUS_OUT_OF_MEMORY, "out of memory");
    lm_status st = lm_gguf_open(path, p.use_mmap, &m->gguf);
    if (st) goto fail;
    {
        lm_gguf_str arch;
        if ((st = lm_gguf_get_str(m->gguf, "general.architecture", &arch))) goto fail;
        snprintf(m->arch_name, sizeof m->arch_name, "%.*s", (int)(arch.len < 31 ? arch.len : 31), arch.ptr);
        if (lm_gguf_str_eq(arch, "gemma3")) m->arch = LM_ARCH_GEMMA3;
        else if (lm_gguf_str_eq(arch, "gemma4")) m->arch = LM_ARCH_GEMMA4;
        else if (lm_gguf_str_eq(arch, "llama")) m->arch = LM_ARCH_LLAMA;
        else if (lm_gguf_str_eq(arch, "qwen2")) m->arch = LM_ARCH_QWEN2;
        else {
            st = lm_fail(LM_STATUS_UNSUPPORTED, "architecture '%s' is not supported (gemma3, gemma4, llama and qwen2 are)",
                         m->arch_name);
            goto fail;
        }
        lm_gguf_str nm;
        if (lm_gguf_get_str(m->gguf, "general.name", &nm) == LM_STATUS_OK)
            snprintf(m->name, sizeof m->name, "%.*s", (int)(nm.len < 127 ? nm.len : 127), nm.ptr);
        lm_clear_error();
    }
    if ((st = lm_vocab_load(m->gguf, &m->vocab))) goto fail;
    m->hp.n_vocab = lm_vocab_n_tokens(m->vocab);
    for (int64_t i = 0; i < lm_gguf_n_tensors(m->gguf); i++) {
        const lm_gguf_tensor *gt = lm_gguf_tensor_at(m->gguf, i);
        m->n_params += (uint64_t)(gt->ne[0] * gt->ne[1] * gt->ne[2] * gt->ne[3]);
        m->weight_bytes += gt->size;
    }
    if ((st = read_hparams(m))) goto fail;
    /* K=V layers (Gemma 4 global layers: no attn_v), known from the tensor table so that a
       vocab-only model (the planner's) sizes its cache right; bind_weights agrees */
    for (int il = 0; il < m->hp.n_layer; il++) {
        char nm[64];
        snprintf(nm, sizeof nm, "blk.%d.attn_v.weight", il);
        m->layers[il].k_eq_v = m->arch == LM_ARCH_GEMMA4 && m->layers[il].kv_layer == il && !lm_gguf_find_tensor(m->gguf, nm);
    }
    m->vocab_only = p.vocab_only;
    if (p.vocab_only) goto done;
    {
        lm_backend_config cfg = {.device = p.device, .n_threads = p.n_threads};
        if ((st = lm_backend_create(p.backend ? p.backend : "cpu", &cfg, &m->be))) goto fail;
    }
    if ((st = bind_weights(m, &p))) goto fail;
done:
    *out = m;
    return LM_STATUS_OK;
fail:
    lm_fail_prefix(st, "%s: ", path ? path : "(null)");
    lm_model_free(m);
    return st;
}

void lm_model_free(lm_model *m) {
    if (!m) return;
    if (m->be) {
        for (int i = 0; i < m->n_weights; i++) m->weights[i]->be->ops->buffer_free(m->weights[i]);
        free(m->weights);
        for (int d = 0; d < LM_GRAPH_MAX_DEVS; d++)
            if (m->aux[d]) m->aux[d]->be->ops->buffer_free(m->aux[d]);
        if (m->n_dev > 1) lm_backend_destroy(m->devs[1]);
        lm_backend_destroy(m->be);
    }
    free(m->layers);
    free(m->tensors);
    lm_vocab_free(m->vocab);
    lm_gguf_close(m->gguf);
    free(m);
}

lm_status lm_model_get_info(const lm_model *m, lm_model_info *out) {
    if (!m || !out) return lm_fail(LM_STATUS_INVALID_ARGUMENT, "lm_model_get_info: NULL argument");
    memset(out, 0, sizeof *out);
    out->arch = m->arch_name;
    out->name = m->name;
    out->backend = m->be ? m->be->ops->name : "none";
    out->n_vocab = m->hp.n_vocab;
    out->n_embd = m->hp.n_embd;
    out->n_layer = m->hp.n_layer;
    out->n_head = m->hp.n_head;
    out->n_ctx_train = m->hp.n_ctx_train;
    out->n_expert = m->hp.n_expert;
    out->n_expert_used = m->hp.n_expert_used;
    out->n_params = m->n_params;
    out->weight_bytes = m->weight_bytes;
    out->n_gpu_layers = m->vocab_only ? 0 : m->n_gpu_layers;
    if (m->n_dev > 1) {
        out->host_backend = m->devs[1]->ops->name;
        for (int64_t i = 0; i < m->n_tensors; i++)
            if (m->tensors[i].buf && m->tensors[i].buf->be == m->devs[1]) out->host_weight_bytes += lm_tensor_nbytes(&m->tensors[i]);
    }
    return LM_STATUS_OK;
}

int64_t lm_model_meta_count(const lm_model *m) { return m ? lm_gguf_n_kv(m->gguf) : 0; }

const char *lm_model_meta_key(const lm_model *m, int64_t i) {
    static _Thread_local char buf[256];
    const lm_gguf_kv *kv = m ? lm_gguf_kv_at(m->gguf, i) : NULL;
    if (!kv) return NULL;
    snprintf(buf, sizeof buf, "%.*s", (int)(kv->key.len < 255 ? kv->key.len : 255), kv->key.ptr);
    return buf;
}

lm_status lm_model_meta_value_str(const lm_model *m, int64_t i, char *buf, size_t cap) {
    const lm_gguf_kv *kv = m ? lm_gguf_kv_at(m->gguf, i) : NULL;
    if (!kv || !buf || cap == 0) return lm_fail(LM_STATUS_INVALID_ARGUMENT, "lm_model_meta_value_str: bad index or buffer");
    lm_gguf_value_str(&kv->value, buf, cap);
    return LM_STATUS_OK;
}

int64_t lm_model_tensor_count(const lm_model *m) { return m ? lm_gguf_n_tensors(m->gguf) : 0; }

lm_status lm_model_tensor_info(const lm_model *m, int64_t i, lm_tensor_info *out) {
    const lm_gguf_tensor *t = m ? lm_gguf_tensor_at(m->gguf, i) : NULL;
    if (!t || !out) return lm_fail(LM_STATUS_INVALID_ARGUMENT, "lm_model_tensor_info: bad index");
    out->name = t->name;
    out->type = lm_dtype_name(t->type);
    out->n_dims = t->n_dims;
    for (int d = 0; d < 4; d++) out->ne[d] = t->ne[d];
    out->offset = lm_gguf_data_offset(m->gguf) + t->offset;
    out->bytes = t->size;
    return LM_STATUS_OK;
}

uint64_t lm_model_kv_bytes_per_cell(const lm_model *m, int kind, lm_dtype kv_type) {
    uint64_t n = 0;
    for (int il = 0; il < m->hp.n_layer; il++) {
        const lm_layer *L = &m->layers[il];
        if (L->kv_layer != il || (L->sliding ? LM_KV_KIND_SWA : LM_KV_KIND_FULL) != kind) continue;
        n += (uint64_t)L->n_head_kv * lm_row_bytes(kv_type, L->head_dim_v); /* V */
        if (!L->k_eq_v) n += (uint64_t)L->n_head_kv * lm_row_bytes(kv_type, L->head_dim); /* K */
    }
    return n;
}

/* ---------------------------------------------------------------------------------------- */
/* tokenizer and chat entry points                                                          */

int32_t lm_vocab_size(const lm_model *m) { return m ? m->hp.n_vocab : 0; }
lm_token lm_token_bos(const lm_model *m) { return m ? lm_vocab_bos(m->vocab) : -1; }
lm_token lm_token_eos(const lm_model *m) { return m ? lm_vocab_eos(m->vocab) : -1; }
bool lm_token_is_eog(const lm_model *m, lm_token t) { return m && lm_vocab_is_eog(m->vocab, t); }

const char *lm_token_text(const lm_model *m, lm_token t) {
    size_t len;
    return m ? lm_vocab_text(m->vocab, t, &len) : NULL;
}

lm_status lm_tokenize(const lm_model *m, const char *text, size_t len, bool add_bos, bool parse_special, lm_token *out,
                      int32_t cap, int32_t *n_out) {
    lm_clear_error();
    if (!m || (!text && len) || !n_out || (cap > 0 && !out) || cap < 0)
        return lm_fail(LM_STATUS_INVALID_ARGUMENT, "lm_tokenize: NULL argument");
    return lm_vocab_tokenize(m->vocab, text ? text : "", len, add_bos, parse_special, out, cap, n_out);
}

lm_status lm_token_to_piece(const lm_model *m, lm_token t, bool render_special, char *buf, size_t cap, size_t *len) {
    lm_clear_error();
    if (!m || !len || (cap && !buf)) return lm_fail(LM_STATUS_INVALID_ARGUMENT, "lm_token_to_piece: NULL argument");
    return lm_vocab_piece(m->vocab, t, render_special, buf, cap, len);
}

lm_status lm_detokenize(const lm_model *m, const lm_token *toks, int32_t n, bool render_special, char *buf, size_t cap,
                        size_t *len) {
    lm_clear_error();
    if (!m || !len || (n > 0 && !toks) || (cap && !buf) || n < 0)
        return lm_fail(LM_STATUS_INVALID_ARGUMENT, "lm_detokenize: NULL argument");
    size_t at = 0;
    char piece[256];
    for (int32_t i = 0; i < n; i++) {
        size_t pl;
        lm_status st = lm_vocab_piece(m->vocab, toks[i], render_special, piece, sizeof piece, &pl);
        if (st == LM_STATUS_BUFFER_TOO_SMALL) {
            char *big = malloc(pl);
            if (!big) return lm_fail(LM_STATUS_OUT_OF_MEMORY, "out of memory");
            st = lm_vocab_piece(m->vocab, toks[i], render_special, big, pl, &pl);
            if (!st && at + pl <= cap) memcpy(buf + at, big, pl);
            free(big);
        } else if (!st && at + pl <= cap) {
            memcpy(buf + at, piece, pl);
        }
        if (st) return st;
        at += pl;
    }
    *len = at;
    if (at + 1 > cap) return lm_fail(LM_STATUS_BUFFER_TOO_SMALL, "lm_detokenize: %zu bytes needed", at + 1);
    buf[at] = 0;
    return LM_STATUS_OK;
}

static bool mem_has(lm_gguf_str h, const char *needle) {
    const size_t n = strlen(needle);
    for (size_t i = 0; h.ptr && i + n <= h.len; i++)
        if (!memcmp(h.ptr + i, needle, n)) return true;
    return false;
}

lm_status lm_chat_apply(const lm_model *m, const lm_chat_message *msgs, size_t n, bool add_generation_prompt,
                        bool enable_thinking, char *buf, size_t cap, size_t *len) {
    lm_clear_error();
    if (!m || !len || (n && !msgs) || (cap && !buf)) return lm_fail(LM_STATUS_INVALID_ARGUMENT, "lm_chat_apply: NULL argument");
    lm_chat_format fmt = m->arch == LM_ARCH_GEMMA4 ? LM_CHAT_GEMMA4 : LM_CHAT_GEMMA3;
    if (LM_ARCH_IS_LLAMA(m->arch)) {
        /* the built-in format the file's Jinja template asks for, as llama.cpp detects it */
        lm_gguf_str t = {0};
        lm_gguf_get_str(m->gguf, "tokenizer.chat_template", &t);
        lm_clear_error();
        if (mem_has(t, "<|im_start|>")) fmt = LM_CHAT_CHATML;
        else if (mem_has(t, "<\xef\xbd\x9cUser\xef\xbd\x9c>") && mem_has(t, "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>")) fmt = LM_CHAT_DEEPSEEK3;
        else
            return lm_fail(LM_STATUS_UNSUPPORTED, "lm_chat_apply: the model's chat template matches no built-in format "
                                                  "(ChatML, DeepSeek-R1); format the prompt yourself");
        /* these formats leave the BOS to the tokenizer: prepend its text where the model adds one */
        const int32_t bos = lm_vocab_bos(m->vocab);
        size_t bl = 0;
        const char *bt = lm_vocab_add_bos(m->vocab) && bos >= 0 ? lm_vocab_text(m->vocab, bos, &bl) : NULL;
        if (!bt) bl = 0;
        size_t body = 0;
        lm_status st = lm_chat_render(fmt, msgs, n, add_generation_prompt, enable_thinking, cap > bl ? buf + bl : NULL,
                                      cap > bl ? cap - bl : 0, &body);
        *len = bl + body;
        if (st == LM_STATUS_BUFFER_TOO_SMALL)
            return lm_fail(LM_STATUS_BUFFER_TOO_SMALL, "chat prompt needs %zu bytes plus a NUL", *len);
        if (st) return st;
        if (bl) memcpy(buf, bt, bl);
        return LM_STATUS_OK;
    }
    return lm_chat_render(fmt, msgs, n, add_generation_prompt, enable_thinking, buf, cap, len);
}
