/*
 * plan.c — the memory planner: places every tensor of a model and every layer's KV cache on the
 * GPU or the CPU for a context shape and a GPU memory budget, and predicts batch-1 decode speed
 * from the bandwidth of each side (see lumen.h for the policy).
 *
 * Units placed:
 *   head     the output projection (output.weight, or token_embd.weight when tied) + output_norm
 *   layer i  blk.i.* except the experts, with the layer's KV cache (attention runs where its
 *            cache is)
 *   experts  blk.i.*_exps* (MoE), read n_used / n_expert per token
 *   lookup   input-only tables (token_embd when the head is separate, per_layer_token_embd):
 *            a gather reads one row per token, so they stay on the CPU
 *   small    the rest (rope factors, per-layer projections): with the GPU part when there is one
 * The GPU budget is gpu_bytes - reserve - compute buffers (an estimate from the widest
 * activations of an n_batch step and the logits rows) - cell-position arrays.
 * Prediction: time per token = sum over units of bytes read per token / bandwidth of its side,
 * plus the KV read (one sequence: min(ctx, cells) cells per layer), plus 20 us per crossing
 * between the two sides (a PCIe transfer of the hidden state and a synchronisation).
 */
#define _GNU_SOURCE
#include "common.h"
#include "kv.h"
#include "model.h"

#include <pthread.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { U_HEAD, U_LAYER, U_EXPERTS, U_LOOKUP, U_SMALL };

typedef struct plan_tensor {
    const char *name;
    int unit, layer;
    uint64_t bytes;
    double read_frac; /* fraction of the bytes read per decoded token */
    lm_place place;
    bool forced_cpu;  /* matched cpu_tensors */
} plan_tensor;

struct lm_plan {
    const lm_model *m;
    lm_plan_params p;
    lm_context_params cp;
    plan_tensor *t;
    int64_t n_t;
    lm_place *layer_place, *expert_place; /* per layer: the decisions */
    lm_place *eff_layer, *eff_exp;        /* per layer: where its tensors ended up (patterns included) */
    bool has_lookup;
    uint64_t *layer_kv;                   /* KV bytes of each layer (all sequences) */
    uint64_t *layer_kv_cell;              /* KV bytes per cell of each layer */
    uint64_t pos_bytes[LM_KV_KINDS];
    uint64_t compute;
    lm_plan_summary s;
    char gpu_name[128];
};

lm_plan_params lm_plan_default_params(void) {
    lm_plan_params p = {.context = lm_context_default_params(), .reserve_bytes = 512ull << 20, .gpu_layers = -1};
    return p;
}

/* ---------------------------------------------------------------------------------------- */

/* host read bandwidth: threads summing disjoint slices of a 256 MiB buffer (best of 3), GB/s */
typedef struct bw_job {
    const uint64_t *p;
    size_t n;
    uint64_t sum;
} bw_job;
static void *bw_read(void *arg) {
    bw_job *j = arg;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 0; i + 4 <= j->n; i += 4) s0 += j->p[i], s1 += j->p[i + 1], s2 += j->p[i + 2], s3 += j->p[i + 3];
    j->sum = s0 + s1 + s2 + s3;
    return NULL;
}
static double measure_cpu_bandwidth(void) {
    const size_t bytes = 256u << 20, n = bytes / 8;
    uint64_t *buf = malloc(bytes);
    if (!buf) return 0;
    for (size_t i = 0; i < n; i++) buf[i] = i;
    long nc = sysconf(_SC_NPROCESSORS_ONLN);
    int nt = nc < 1 ? 1 : nc > 32 ? 32 : (int)nc;
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        pthread_t th[32];
        bw_job jobs[32];
        const double t0 = lm_time_s();
        int started = 0;
        for (int i = 0; i < nt; i++) {
            jobs[i] = (bw_job){buf + n / nt * i, n / nt, 0};
            if (i == 0 || pthread_create(&th[i], NULL, bw_read, &jobs[i])) continue;
            started |= 1 << i;
        }
        bw_read(&jobs[0]);
        for (int i = 1; i < nt; i++) {
            if (started & (1 << i)) pthread_join(th[i], NULL);
            else bw_read(&jobs[i]);
        }
        const double dt = lm_time_s() - t0;
        if (dt > 0 && bytes / dt / 1e9 > best) best = bytes / dt / 1e9;
    }
    free(buf);
    return best;
}

/* activations of the widest step, an upper bound that does not count on the arena reusing
   memory: per token every intermediate of one layer (the norms and residuals of the stream, q,
   k, v and the attention output, the FFN's gate, up and product; MoE: the routed experts' and the
   router's), the per-layer embeddings, the logits rows, and 256-byte alignment per tensor;
   tests/test_plan.c checks it covers the arena the engine measures */
static uint64_t estimate_compute(const lm_model *m, const lm_context_params *cp) {
    const lm_hparams *hp = &m->hp;
    int64_t qd = 0, kvd = 0, ff = 0;
    for (int il = 0; il < hp->n_layer; il++) {
        const lm_layer *L = &m->layers[il];
        const int64_t q = (int64_t)hp->n_head * (L->head_dim > L->head_dim_v ? L->head_dim : L->head_dim_v);
        const int64_t kv = (int64_t)L->n_head_kv * (L->head_dim + L->head_dim_v);
        qd = q > qd ? q : qd;
        kvd = kv > kvd ? kv : kvd;
        ff = L->n_ff > ff ? L->n_ff : ff;
    }
    int64_t per_tok = 10 * (int64_t)hp->n_embd + 3 * qd + 2 * kvd + 3 * ff;
    if (hp->n_expert > 0) per_tok += 4 * (int64_t)hp->n_expert_used * hp->n_ff_exp + 3 * (int64_t)hp->n_expert + 2 * (int64_t)hp->n_embd;
    per_tok += 3 * (int64_t)hp->n_embd_per_layer * hp->n_layer;
    const uint64_t act = (uint64_t)cp->n_batch * (uint64_t)per_tok * 4u;
    const uint64_t logits = (uint64_t)cp->n_outputs_max * (uint64_t)hp->n_vocab * 4u * 2u; /* + the head's norm input */
    return act + logits + 64u * 256u;
}

/* ---------------------------------------------------------------------------------------- */

static uint64_t unit_bytes(const lm_plan *pl, int unit, int layer) {
    uint64_t b = 0;
    for (int64_t i = 0; i < pl->n_t; i++)
        if (pl->t[i].unit == unit && pl->t[i].layer == layer && !pl->t[i].forced_cpu) b += pl->t[i].bytes;
    return b;
}

/* set the places of the tensors from the unit decisions, and add everything up */
static void settle(lm_plan *pl, bool head_gpu) {
    const lm_model *m = pl->m;
    const int L = m->hp.n_layer;
    lm_plan_summary *s = &pl->s;
    bool any_gpu = head_gpu;
    for (int il = 0; il < L; il++) any_gpu |= pl->layer_place[il] == LM_PLACE_GPU;
    memset(s->weights, 0, sizeof s->weights);
    memset(s->kv, 0, sizeof s->kv);
    for (int64_t i = 0; i < pl->n_t; i++) {
        plan_tensor *t = &pl->t[i];
        lm_place pc = LM_PLACE_CPU;
        switch (t->unit) {
        case U_HEAD: pc = head_gpu ? LM_PLACE_GPU : LM_PLACE_CPU; break;
        case U_LAYER: pc = pl->layer_place[t->layer]; break;
        case U_EXPERTS: pc = pl->expert_place[t->layer]; break;
        case U_SMALL: pc = any_gpu ? LM_PLACE_GPU : LM_PLACE_CPU; break;
        default: pc = LM_PLACE_CPU; break;
        }
        if (t->forced_cpu) pc = LM_PLACE_CPU;
        t->place = pc;
    }
    /* where each layer's units ended up: a unit with any tensor on the CPU runs there */
    for (int il = 0; il < L; il++) pl->eff_layer[il] = pl->layer_place[il], pl->eff_exp[il] = (lm_place)-1;
    for (int64_t i = 0; i < pl->n_t; i++) {
        const plan_tensor *t = &pl->t[i];
        if (t->layer < 0) continue;
        lm_place *e = t->unit == U_EXPERTS ? &pl->eff_exp[t->layer] : &pl->eff_layer[t->layer];
        if (t->unit == U_EXPERTS && *e == (lm_place)-1) *e = t->place;
        else if (t->place == LM_PLACE_CPU) *e = LM_PLACE_CPU;
    }
    for (int il = 0; il < L; il++)
        if (pl->eff_exp[il] == (lm_place)-1) pl->eff_exp[il] = pl->eff_layer[il];
    /* a unit's tensors live where it runs (an op reads its weights on its own device) */
    for (int64_t i = 0; i < pl->n_t; i++) {
        plan_tensor *t = &pl->t[i];
        if (t->layer >= 0) t->place = t->unit == U_EXPERTS ? pl->eff_exp[t->layer] : pl->eff_layer[t->layer];
        s->weights[t->place] += t->bytes;
    }
    bool kind_on[2][LM_KV_KINDS] = {{false}};
    s->n_gpu_layers = s->n_gpu_expert_layers = 0;
    for (int il = 0; il < L; il++) {
        const lm_place pc = pl->layer_place[il];
        s->kv[pc] += pl->layer_kv[il];
        kind_on[pc][m->layers[il].sliding ? LM_KV_KIND_SWA : LM_KV_KIND_FULL] = true;
        if (pl->eff_layer[il] == LM_PLACE_GPU) s->n_gpu_layers++;
        if (m->hp.n_expert > 0 && pl->eff_exp[il] == LM_PLACE_GPU) s->n_gpu_expert_layers++;
    }
    for (int d = 0; d < 2; d++)
        for (int k = 0; k < LM_KV_KINDS; k++)
            if (kind_on[d][k]) s->kv[d] += pl->pos_bytes[k];
    s->head_on_gpu = head_gpu;
    bool any_cpu = !head_gpu;
    for (int il = 0; il < L; il++) any_cpu |= pl->eff_layer[il] == LM_PLACE_CPU || pl->eff_exp[il] == LM_PLACE_CPU;
    s->compute[LM_PLACE_GPU] = any_gpu ? pl->compute : 0;
    s->compute[LM_PLACE_CPU] = any_cpu ? pl->compute : 0;
    const uint64_t gpu_total = s->weights[0] + s->kv[0] + s->compute[0];
    s->fits_gpu = gpu_total + s->reserve <= s->gpu_budget;
    s->fits_host = s->host_memory == 0 || s->weights[1] + s->kv[1] + s->compute[1] <= s->host_memory;
}

static uint64_t gpu_used(const lm_plan *pl) {
    return pl->s.weights[0] + pl->s.kv[0] + pl->s.compute[0] + pl->s.reserve;
}

/* the sequence of sides one forward pass visits: lookup (CPU), each layer (attention, then its
   experts), the head */
static int count_crossings(const lm_plan *pl) {
    const lm_model *m = pl->m;
    lm_place cur = LM_PLACE_CPU;
    int n = 0;
    for (int il = 0; il < m->hp.n_layer; il++) {
        if (pl->eff_layer[il] != cur) n++, cur = pl->eff_layer[il];
        if (m->hp.n_expert > 0 && pl->eff_exp[il] != cur) n++, cur = pl->eff_exp[il];
    }
    const lm_place head = pl->s.head_on_gpu ? LM_PLACE_GPU : LM_PLACE_CPU;
    if (head != cur) n++, cur = head;
    if (cur != LM_PLACE_CPU) n++; /* the logits come back to the host */
    return n;
}

static void predict(lm_plan *pl) {
    lm_plan_summary *s = &pl->s;
    const lm_model *m = pl->m;
    double bytes[2] = {0, 0}, kv_full[2] = {0, 0};
    for (int64_t i = 0; i < pl->n_t; i++) bytes[pl->t[i].place] += (double)pl->t[i].bytes * pl->t[i].read_frac;
    for (int il = 0; il < m->hp.n_layer; il++) {
        const int kind = m->layers[il].sliding ? LM_KV_KIND_SWA : LM_KV_KIND_FULL;
        const double cells = kind == LM_KV_KIND_SWA && m->hp.window > 0 && m->hp.window < (int32_t)pl->cp.n_ctx
                                 ? (double)m->hp.window
                                 : (double)pl->cp.n_ctx;
        kv_full[pl->layer_place[il]] += (double)pl->layer_kv_cell[il] * cells;
    }
    s->crossings = count_crossings(pl);
    const double xs = s->crossings * 20e-6;
    if (s->gpu_bandwidth_gbs <= 0 && bytes[0] + kv_full[0] > 0) return; /* unknown GPU speed */
    if (s->cpu_bandwidth_gbs <= 0 && bytes[1] + kv_full[1] > 0) return;
    const double bg = s->gpu_bandwidth_gbs * 1e9, bc = s->cpu_bandwidth_gbs * 1e9;
    const double t0g = bg > 0 ? bytes[0] / bg : 0, t0c = bc > 0 ? bytes[1] / bc : 0;
    const double tfg = bg > 0 ? (bytes[0] + kv_full[0]) / bg : 0, tfc = bc > 0 ? (bytes[1] + kv_full[1]) / bc : 0;
    s->tok_s_empty = 1.0 / (t0g + t0c + xs);
    s->tok_s_full = 1.0 / (tfg + tfc + xs);
    s->ms_gpu = tfg * 1e3;
    s->ms_cpu = tfc * 1e3;
}

static void place_all(lm_plan *pl, lm_place layers, lm_place experts) {
    for (int il = 0; il < pl->m->hp.n_layer; il++) pl->layer_place[il] = layers, pl->expert_place[il] = experts;
}

lm_status lm_plan_create(const lm_model *m, const lm_plan_params *params, lm_plan **out) {
    lm_clear_error();
    if (!m || !out) return lm_fail(LM_STATUS_INVALID_ARGUMENT, "lm_plan_create: NULL argument");
    *out = NULL;
    lm_plan *pl = calloc(1, sizeof *pl);
    if (!pl) return lm_fail(LM_STATUS_OUT_OF_MEMORY, "out of memory");
    pl->m = m;
    pl->p = params ? *params : lm_plan_default_params();
    lm_status st = LM_STATUS_OK;
    regex_t re;
    bool have_re = false;
    const int L = m->hp.n_layer;
    if ((st = lm_context_params_normalize(m, &pl->p.context, &pl->cp))) goto fail;
    if (pl->p.gpu_layers > L) {
        st = lm_fail(LM_STATUS_INVALID_ARGUMENT, "--gpu-layers %d: the model has %d layers", pl->p.gpu_layers, L);
        goto fail;
    }
    if (pl->p.gpu_backend && strcmp(pl->p.gpu_backend, "cuda") && strcmp(pl->p.gpu_backend, "vulkan")) {
        st = lm_fail(LM_STATUS_INVALID_ARGUMENT, "GPU backend '%s': cuda or vulkan", pl->p.gpu_backend);
        goto fail;
    }
    if (pl->p.cpu_tensors && pl->p.cpu_tensors[0]) {
        int e = regcomp(&re, pl->p.cpu_tensors, REG_EXTENDED | REG_NOSUB);
        if (e) {
            char msg[128];
            regerror(e, &re, msg, sizeof msg);
            st = lm_fail(LM_STATUS_INVALID_ARGUMENT, "CPU tensor pattern '%s': %s", pl->p.cpu_tensors, msg);
            goto fail;
        }
        have_re = true;
    }

    /* the GPU: budget and bandwidth, queried unless given */
    lm_plan_summary *s = &pl->s;
    s->n_layer = L;
    s->gpu_budget = pl->p.gpu_bytes;
    s->gpu_bandwidth_gbs = pl->p.gpu_bandwidth_gbs;
    if (!pl->p.gpu_bytes || pl->p.gpu_bandwidth_gbs <= 0) {
        const char *names[] = {"cuda", "vulkan"};
        bool found = false;
        for (int i = 0; i < 2 && !found; i++) {
            if (pl->p.gpu_backend && strcmp(pl->p.gpu_backend, names[i])) continue;
            lm_backend *be = NULL;
            lm_backend_config cfg = {.device = pl->p.gpu_device};
            if (lm_backend_create(names[i], &cfg, &be)) continue;
            lm_device_info di;
            if (!be->ops->device_info(be, &di) && !di.unified_memory && !di.is_cpu) {
                found = true;
                snprintf(pl->gpu_name, sizeof pl->gpu_name, "%s", di.name);
                if (!s->gpu_budget) s->gpu_budget = di.memory_free ? di.memory_free : di.memory_total;
                if (s->gpu_bandwidth_gbs <= 0) s->gpu_bandwidth_gbs = di.bandwidth_gbs;
            }
            lm_backend_destroy(be);
        }
        lm_clear_error();
        if (!s->gpu_budget) {
            st = lm_fail(LM_STATUS_NOT_FOUND, "no GPU found to plan for: give its memory (--vram 16G, or --gpu NAME)");
            goto fail;
        }
    }
    s->reserve = pl->p.reserve_bytes;
    s->cpu_bandwidth_gbs = pl->p.cpu_bandwidth_gbs > 0 ? pl->p.cpu_bandwidth_gbs : measure_cpu_bandwidth();
    {
        const long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
        s->host_memory = pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz : 0;
    }

    /* the tensors and their units */
    pl->n_t = lm_gguf_n_tensors(m->gguf);
    pl->t = calloc((size_t)pl->n_t + 1, sizeof(plan_tensor));
    pl->layer_place = calloc((size_t)L + 1, sizeof(lm_place));
    pl->expert_place = calloc((size_t)L + 1, sizeof(lm_place));
    pl->layer_kv = calloc((size_t)L + 1, sizeof(uint64_t));
    pl->layer_kv_cell = calloc((size_t)L + 1, sizeof(uint64_t));
    pl->eff_layer = calloc((size_t)L + 1, sizeof(lm_place));
    pl->eff_exp = calloc((size_t)L + 1, sizeof(lm_place));
    if (!pl->t || !pl->layer_place || !pl->expert_place || !pl->layer_kv || !pl->layer_kv_cell || !pl->eff_layer || !pl->eff_exp) {
        st = lm_fail(LM_STATUS_OUT_OF_MEMORY, "out of memory");
        goto fail;
    }
    const bool separate_head = lm_gguf_find_tensor(m->gguf, "output.weight") != NULL;
    const double expert_frac = m->hp.n_expert > 0 ? (double)m->hp.n_expert_used / m->hp.n_expert : 1.0;
    for (int64_t i = 0; i < pl->n_t; i++) {
        const lm_gguf_tensor *gt = lm_gguf_tensor_at(m->gguf, i);
        plan_tensor *t = &pl->t[i];
        t->name = gt->name;
        t->bytes = gt->size;
        t->layer = lm_tensor_layer(gt->name);
        t->read_frac = 1.0;
        if (t->layer >= L) t->layer = -1;
        if (t->layer >= 0) {
            t->unit = strstr(gt->name, "_exps") ? U_EXPERTS : U_LAYER;
            if (t->unit == U_EXPERTS) t->read_frac = expert_frac;
        } else if (!strcmp(gt->name, "output.weight") || !strcmp(gt->name, "output_norm.weight") ||
                   (!separate_head && !strcmp(gt->name, "token_embd.weight"))) {
            t->unit = U_HEAD;
        } else if (!strcmp(gt->name, "token_embd.weight") || !strcmp(gt->name, "per_layer_token_embd.weight")) {
            t->unit = U_LOOKUP;
            pl->has_lookup = true;
            t->read_frac = gt->ne[1] > 0 ? 1.0 / (double)gt->ne[1] : 0.0; /* one row per token */
        } else {
            t->unit = U_SMALL;
        }
        t->forced_cpu = have_re && regexec(&re, gt->name, 0, NULL, 0) == 0;
    }

    /* KV per layer, as the context allocates it */
    {
        lm_kv_geom geom[LM_KV_KINDS];
        lm_kv_geometry(m, &pl->cp, geom);
        const lm_dtype kt = lm_kv_dtype(pl->cp.kv_type);
        for (int il = 0; il < L; il++) {
            const lm_layer *Ly = &m->layers[il];
            if (Ly->kv_layer != il) continue;
            uint64_t cell = (uint64_t)Ly->n_head_kv * lm_row_bytes(kt, Ly->head_dim_v);
            if (!Ly->k_eq_v) cell += (uint64_t)Ly->n_head_kv * lm_row_bytes(kt, Ly->head_dim);
            const int kind = Ly->sliding ? LM_KV_KIND_SWA : LM_KV_KIND_FULL;
            pl->layer_kv_cell[il] = cell;
            pl->layer_kv[il] = cell * (uint64_t)lm_kv_geom_kv_cells(&geom[kind]);
        }
        for (int k = 0; k < LM_KV_KINDS; k++)
            pl->pos_bytes[k] = 4ull * (uint64_t)lm_kv_geom_cells(&geom[k]) + 4ull * (uint64_t)geom[k].pps * pl->cp.n_seq_max;
    }
    pl->compute = estimate_compute(m, &pl->cp);

    /* decide */
    if (pl->p.gpu_layers >= 0) {
        const int first = L - pl->p.gpu_layers;
        for (int il = 0; il < L; il++) pl->layer_place[il] = pl->expert_place[il] = il >= first ? LM_PLACE_GPU : LM_PLACE_CPU;
        settle(pl, pl->p.gpu_layers > 0);
    } else {
        /* everything on the GPU? */
        place_all(pl, LM_PLACE_GPU, LM_PLACE_GPU);
        settle(pl, true);
        if (!s->fits_gpu) {
            /* head, then layers from the top while they fit, then the GPU layers' experts */
            place_all(pl, LM_PLACE_CPU, LM_PLACE_CPU);
            settle(pl, true);
            bool head = s->fits_gpu;
            if (!head) settle(pl, false);
            int first = L;
            for (int il = L - 1; il >= 0; il--) {
                pl->layer_place[il] = LM_PLACE_GPU;
                settle(pl, head);
                if (!s->fits_gpu) {
                    pl->layer_place[il] = LM_PLACE_CPU;
                    break;
                }
                first = il;
            }
            if (m->hp.n_expert > 0)
                for (int il = L - 1; il >= first; il--) {
                    if (!unit_bytes(pl, U_EXPERTS, il)) continue;
                    pl->expert_place[il] = LM_PLACE_GPU;
                    settle(pl, head);
                    if (!s->fits_gpu) {
                        pl->expert_place[il] = LM_PLACE_CPU;
                        break;
                    }
                }
            /* layers without experts keep their (empty) expert unit with the layer */
            for (int il = 0; il < L; il++)
                if (!unit_bytes(pl, U_EXPERTS, il)) pl->expert_place[il] = pl->layer_place[il];
            settle(pl, head);
        }
    }
    predict(pl);
    if (have_re) regfree(&re);
    *out = pl;
    return LM_STATUS_OK;
fail:
    if (have_re) regfree(&re);
    lm_plan_free(pl);
    return st;
}

void lm_plan_free(lm_plan *pl) {
    if (!pl) return;
    free(pl->t);
    free(pl->layer_place);
    free(pl->expert_place);
    free(pl->layer_kv);
    free(pl->layer_kv_cell);
    free(pl->eff_layer);
    free(pl->eff_exp);
    free(pl);
}

lm_status lm_plan_get_summary(const lm_plan *pl, lm_plan_summary *out) {
    if (!pl || !out) return lm_fail(LM_STATUS_INVALID_ARGUMENT, "lm_plan_get_summary: NULL argument");
    *out = pl->s;
    return LM_STATUS_OK;
}

lm_place lm_plan_tensor_place(const lm_plan *pl, const char *name) {
    if (!pl || !name) return LM_PLACE_CPU;
    for (int64_t i = 0; i < pl->n_t; i++)
        if (!strcmp(pl->t[i].name, name)) return pl->t[i].place;
    return LM_PLACE_CPU;
}

/* ---------------------------------------------------------------------------------------- */

typedef struct sbuf {
    char *b;
    size_t cap, len;
} sbuf;
static void LM_PRINTF(2, 3) sb_printf(sbuf *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    const size_t room = s->len < s->cap ? s->cap - s->len : 0;
    const int n = vsnprintf(room ? s->b + s->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0) s->len += (size_t)n;
}
static double gib(uint64_t b) { return (double)b / (double)(1ull << 30); }

/* "12-59" style ranges of the layers with place == want (expert units when experts) */
static void layer_ranges(sbuf *s, const lm_plan *pl, lm_place want, bool experts) {
    const int L = pl->m->hp.n_layer;
    int n = 0, written = 0;
    for (int il = 0; il < L; il++) {
        const lm_place p = experts ? pl->eff_exp[il] : pl->eff_layer[il];
        if (p != want) continue;
        int j = il;
        while (j + 1 < L && (experts ? pl->eff_exp[j + 1] : pl->eff_layer[j + 1]) == want) j++;
        sb_printf(s, "%s%d", written++ ? "," : "", il);
        if (j > il) sb_printf(s, "-%d", j);
        n += j - il + 1;
        il = j;
    }
    if (!n) sb_printf(s, "none");
    else sb_printf(s, " (%d)", n);
}

lm_status lm_plan_format(const lm_plan *pl, char *buf, size_t cap, size_t *len) {
    if (!pl || (!buf && cap)) return lm_fail(LM_STATUS_INVALID_ARGUMENT, "lm_plan_format: NULL argument");
    sbuf s = {buf, cap, 0};
    if (cap) buf[0] = 0;
    const lm_model *m = pl->m;
    const lm_plan_summary *S = &pl->s;
    const bool moe = m->hp.n_expert > 0;
    sb_printf(&s, "model: %s (%s, %d layers%s), %.2f GiB of weights\n", m->name[0] ? m->name : "?", m->arch_name,
              m->hp.n_layer, moe ? ", MoE" : "", gib(m->weight_bytes));
    sb_printf(&s, "context: %u positions x %u sequences, batch %u, KV %s", pl->cp.n_ctx, pl->cp.n_seq_max, pl->cp.n_batch,
              lm_kv_type_name(pl->cp.kv_type));
    {
        lm_kv_geom geom[LM_KV_KINDS];
        lm_kv_geometry(m, &pl->cp, geom);
        const lm_kv_geom *G = &geom[LM_KV_KIND_FULL];
        const uint64_t cells = (uint64_t)G->page * (uint64_t)(G->n_pages - 1);
        if (cells < (uint64_t)pl->cp.n_ctx * pl->cp.n_seq_max)
            sb_printf(&s, ", full-attention KV pool of %llu cells (pages of %d) shared by the sequences", (unsigned long long)cells,
                      G->page);
        sb_printf(&s, "\n");
    }
    sb_printf(&s, "GPU: %s%s%.2f GiB (%.2f GiB kept free)", pl->gpu_name, pl->gpu_name[0] ? ", " : "", gib(S->gpu_budget),
              gib(S->reserve));
    if (S->gpu_bandwidth_gbs > 0) sb_printf(&s, ", %.0f GB/s", S->gpu_bandwidth_gbs);
    sb_printf(&s, "; CPU: %.2f GiB of memory, %.1f GB/s\n\n", gib(S->host_memory), S->cpu_bandwidth_gbs);
    sb_printf(&s, "| side | layers | weights GiB | KV GiB | compute GiB | total GiB |\n|---|---|---:|---:|---:|---:|\n");
    for (int d = 0; d < 2; d++) {
        sb_printf(&s, "| %s | ", d == 0 ? "GPU" : "CPU");
        layer_ranges(&s, pl, (lm_place)d, false);
        if (moe) {
            sb_printf(&s, "; experts of ");
            layer_ranges(&s, pl, (lm_place)d, true);
        }
        if ((d == 0) == S->head_on_gpu) sb_printf(&s, "; output head");
        if (d == 1 && pl->has_lookup) sb_printf(&s, "; lookup tables");
        sb_printf(&s, " | %.2f | %.2f | %.2f | %.2f |\n", gib(S->weights[d]), gib(S->kv[d]), gib(S->compute[d]),
                  gib(S->weights[d] + S->kv[d] + S->compute[d]));
    }
    sb_printf(&s, "\nGPU: %.2f of %.2f GiB used (%s)", gib(gpu_used(pl) - S->reserve), gib(S->gpu_budget - (S->gpu_budget > S->reserve ? S->reserve : S->gpu_budget)),
              S->fits_gpu ? "fits" : "DOES NOT FIT");
    sb_printf(&s, "; host: %s\n", S->fits_host ? "fits" : "DOES NOT FIT in physical memory");
    if (S->tok_s_full > 0)
        sb_printf(&s,
                  "predicted decode (bandwidth roofline, batch 1): %.1f tok/s at an empty context, %.1f tok/s at %u "
                  "(GPU %.1f ms + CPU %.1f ms + %d crossings x 20 us per token)\n",
                  S->tok_s_empty, S->tok_s_full, pl->cp.n_ctx, S->ms_gpu, S->ms_cpu, S->crossings);
    else
        sb_printf(&s, "predicted decode: unknown (no GPU bandwidth: give --gpu-bw GB/s or --gpu NAME)\n");
    if (len) *len = s.len;
    return LM_STATUS_OK;
}
