/*
 * ops.c — one function per op: choose the shader variant from the node's dtypes and shape, fill
 * the push constants (layouts mirror the shaders' push_constant blocks: 64-bit addresses first,
 * then 32-bit values), pick the grid, record the dispatch.
 */
#define _GNU_SOURCE
#include "vk_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define MAX_GRID_Y 65535u

static uint32_t ceil_div(int64_t a, int64_t b) { return (uint32_t)((a + b - 1) / b); }
static uint32_t grid_y(int64_t rows) { return (uint32_t)(rows < (int64_t)MAX_GRID_Y ? rows : MAX_GRID_Y); }

static const char *type_suffix(lm_dtype t) {
    switch (t) {
    case LM_F32: return "f32";
    case LM_F16: return "f16";
    case LM_BF16: return "bf16";
    case LM_I32: return "i32";
    case LM_Q4_0: return "q4_0";
    case LM_Q4_1: return "q4_1";
    case LM_Q5_0: return "q5_0";
    case LM_Q5_1: return "q5_1";
    case LM_Q8_0: return "q8_0";
    case LM_Q2_K: return "q2_k";
    case LM_Q3_K: return "q3_k";
    case LM_Q4_K: return "q4_k";
    case LM_Q5_K: return "q5_k";
    case LM_Q6_K: return "q6_k";
    case LM_I4_G128: return "i4_g128";
    case LM_F8_E4M3: return "f8_e4m3";
    case LM_E4M3: return "e4m3";
    default: return NULL;
    }
}

/* shader index of "<base>_<suffix>[_<suffix2>]", cached per name in a small table */
static int variant(const char *base, const char *s1, const char *s2) {
    char name[64];
    if (!s1) return -1;
    if (s2) snprintf(name, sizeof name, "%s_%s_%s", base, s1, s2);
    else snprintf(name, sizeof name, "%s_%s", base, s1);
    return lm_vk_shader_find(name);
}

/* ---------------------------------------------------------------------------------------- */

typedef struct {
    uint64_t a, b, d;
    uint32_t ne0, ne1, ne2, nrows;
    uint32_t a_nb1, a_nb2, a_nb3;
    uint32_t b_nb1, b_nb2, b_nb3;
    uint32_t op;
    float f;
} pc_elementwise;

static void elementwise(lm_backend *be, const lm_node *n) {
    const lm_tensor *a = n->src[0], *b = n->src[1], *d = n->dst;
    pc_elementwise pc = {.a = lm_vk_addr(a), .d = lm_vk_addr(d), .ne0 = (uint32_t)a->ne[0], .ne1 = (uint32_t)a->ne[1],
                         .ne2 = (uint32_t)a->ne[2], .nrows = (uint32_t)lm_tensor_nrows(a), .a_nb1 = (uint32_t)a->nb[1],
                         .a_nb2 = (uint32_t)a->nb[2], .a_nb3 = (uint32_t)a->nb[3], .f = n->fp[0]};
    switch (n->op) {
    case LM_OP_ADD: pc.op = 0; break;
    case LM_OP_MUL: pc.op = 1; break;
    case LM_OP_SCALE: pc.op = 2; break;
    case LM_OP_SOFTCAP: pc.op = 3; break;
    case LM_OP_SWIGLU: pc.op = 5; break;
    default: pc.op = 4; break;
    }
    if (b) {
        pc.b = lm_vk_addr(b);
        if (!(lm_tensor_nrows(b) == 1 && lm_tensor_nrows(a) > 1)) {
            pc.b_nb1 = (uint32_t)b->nb[1];
            pc.b_nb2 = (uint32_t)b->nb[2];
            pc.b_nb3 = (uint32_t)b->nb[3];
        }
    } else {
        pc.b = pc.a;
    }
    lm_vk_dispatch(be, n, lm_vk_shader_find("elementwise"), &pc, sizeof pc, ceil_div(a->ne[0], 256), grid_y(pc.nrows), 1);
}

typedef struct {
    uint64_t x, w, res, d;
    uint32_t ne0, ne1, ne2, nrows;
    uint32_t x_nb1, x_nb2, x_nb3;
    uint32_t r_nb1, r_nb2, r_nb3;
    uint32_t has_w, has_res;
    float eps;
} pc_rms_norm;

static void rms_norm(lm_backend *be, const lm_node *n) {
    const lm_tensor *x = n->src[0], *w = n->src[1], *r = n->src[2];
    pc_rms_norm pc = {.x = lm_vk_addr(x), .w = w ? lm_vk_addr(w) : lm_vk_addr(x), .res = r ? lm_vk_addr(r) : lm_vk_addr(x),
                      .d = lm_vk_addr(n->dst), .ne0 = (uint32_t)x->ne[0], .ne1 = (uint32_t)x->ne[1], .ne2 = (uint32_t)x->ne[2],
                      .nrows = (uint32_t)lm_tensor_nrows(x), .x_nb1 = (uint32_t)x->nb[1], .x_nb2 = (uint32_t)x->nb[2],
                      .x_nb3 = (uint32_t)x->nb[3], .has_w = w != NULL, .has_res = r != NULL, .eps = n->fp[0]};
    if (r) {
        pc.r_nb1 = (uint32_t)r->nb[1];
        pc.r_nb2 = (uint32_t)r->nb[2];
        pc.r_nb3 = (uint32_t)r->nb[3];
    }
    const uint32_t rows = pc.nrows, gx = rows < MAX_GRID_Y ? rows : MAX_GRID_Y;
    lm_vk_dispatch(be, n, lm_vk_shader_find("rms_norm"), &pc, sizeof pc, gx, 1, 1);
}

typedef struct {
    uint64_t tab, ids, d;
    uint32_t ne0, n, row_bytes;
    float scale;
} pc_get_rows;

static void get_rows(lm_backend *be, const lm_node *n) {
    const lm_tensor *tab = n->src[0], *ids = n->src[1];
    pc_get_rows pc = {.tab = lm_vk_addr(tab), .ids = lm_vk_addr(ids), .d = lm_vk_addr(n->dst), .ne0 = (uint32_t)tab->ne[0],
                      .n = (uint32_t)ids->ne[0], .row_bytes = (uint32_t)tab->nb[1], .scale = n->fp[0]};
    lm_vk_dispatch(be, n, variant("get_rows", type_suffix(tab->type), NULL), &pc, sizeof pc, ceil_div(tab->ne[0], 256),
                   grid_y(ids->ne[0]), 1);
}

typedef struct {
    uint64_t src, idx, d;
    uint32_t ne0, n, src_nb1, dst_nb1;
} pc_set_rows;

static void set_rows(lm_backend *be, const lm_node *n) {
    const lm_tensor *src = n->src[0], *idx = n->src[1], *d = n->dst;
    pc_set_rows pc = {.src = lm_vk_addr(src), .idx = lm_vk_addr(idx), .d = lm_vk_addr(d), .ne0 = (uint32_t)src->ne[0],
                      .n = (uint32_t)src->ne[1], .src_nb1 = (uint32_t)src->nb[1], .dst_nb1 = (uint32_t)d->nb[1]};
    /* units per invocation: q8_0 blocks of 32, e4m3 words of 4, else elements */
    const int64_t unit = d->type == LM_Q8_0 ? 32 : d->type == LM_E4M3 ? 4 : 1;
    lm_vk_dispatch(be, n, variant("set_rows", type_suffix(d->type), NULL), &pc, sizeof pc, ceil_div(src->ne[0] / unit, 256),
                   grid_y(src->ne[1]), 1);
}

typedef struct {
    uint64_t s, d;
    uint32_t ne0, ne1, ne2, nrows;
    uint32_t s_nb1, s_nb2, s_nb3;
    uint32_t d_nb1, d_nb2, d_nb3;
} pc_cpy;

static void cpy(lm_backend *be, const lm_node *n) {
    const lm_tensor *s = n->src[0], *d = n->dst;
    pc_cpy pc = {.s = lm_vk_addr(s), .d = lm_vk_addr(d), .ne0 = (uint32_t)s->ne[0], .ne1 = (uint32_t)s->ne[1],
                 .ne2 = (uint32_t)s->ne[2], .nrows = (uint32_t)lm_tensor_nrows(s), .s_nb1 = (uint32_t)s->nb[1],
                 .s_nb2 = (uint32_t)s->nb[2], .s_nb3 = (uint32_t)s->nb[3], .d_nb1 = (uint32_t)d->nb[1],
                 .d_nb2 = (uint32_t)d->nb[2], .d_nb3 = (uint32_t)d->nb[3]};
    lm_vk_dispatch(be, n, variant("cpy", type_suffix(s->type), type_suffix(d->type)), &pc, sizeof pc, ceil_div(s->ne[0], 256),
                   grid_y(pc.nrows), 1);
}

typedef struct {
    uint64_t x, pos, d, table;
    uint32_t dh, nh, n, n_pairs, mode;
    uint32_t x_nb1, x_nb2;
} pc_rope;

static void rope(lm_backend *be, const lm_node *n) {
    const lm_tensor *x = n->src[0], *pos = n->src[1], *fac = n->src[2];
    const lm_rope_params rp = lm_node_rope_unpack(n, 0, 0);
    pc_rope pc = {.x = lm_vk_addr(x), .pos = lm_vk_addr(pos), .d = lm_vk_addr(n->dst), .table = lm_vk_freqs(be, &rp, fac),
                  .dh = (uint32_t)x->ne[0], .nh = (uint32_t)x->ne[1], .n = (uint32_t)x->ne[2], .n_pairs = (uint32_t)rp.n_pairs,
                  .mode = (uint32_t)rp.mode, .x_nb1 = (uint32_t)x->nb[1], .x_nb2 = (uint32_t)x->nb[2]};
    if (!pc.table) return;
    lm_vk_dispatch(be, n, lm_vk_shader_find("rope"), &pc, sizeof pc, ceil_div(x->ne[0] / 2, 64), grid_y(x->ne[1] * x->ne[2]), 1);
}

typedef struct {
    uint64_t x, d;
    uint32_t m, n, k, x_nb1;
} pc_topk;

static void topk(lm_backend *be, const lm_node *n) {
    const lm_tensor *x = n->src[0];
    pc_topk pc = {.x = lm_vk_addr(x), .d = lm_vk_addr(n->dst), .m = (uint32_t)x->ne[0], .n = (uint32_t)x->ne[1],
                  .k = (uint32_t)n->ip[0], .x_nb1 = (uint32_t)x->nb[1]};
    lm_vk_dispatch(be, n, lm_vk_shader_find("topk"), &pc, sizeof pc, grid_y(x->ne[1]), 1, 1);
}

typedef struct {
    uint64_t logits, ids, scale, d;
    uint32_t E, k, n, has_scale;
} pc_moe_weights;

static void moe_weights(lm_backend *be, const lm_node *n) {
    const lm_tensor *lg = n->src[0], *ids = n->src[1], *sc = n->src[2];
    pc_moe_weights pc = {.logits = lm_vk_addr(lg), .ids = lm_vk_addr(ids), .scale = sc ? lm_vk_addr(sc) : lm_vk_addr(lg),
                         .d = lm_vk_addr(n->dst), .E = (uint32_t)lg->ne[0], .k = (uint32_t)ids->ne[0], .n = (uint32_t)lg->ne[1],
                         .has_scale = sc != NULL};
    lm_vk_dispatch(be, n, lm_vk_shader_find("moe_weights"), &pc, sizeof pc, ceil_div(lg->ne[1], 64), 1, 1);
}

typedef struct {
    uint64_t y, w, d;
    uint32_t dd, k, n, y_nb1, y_nb2;
} pc_moe_sum;

static void moe_sum(lm_backend *be, const lm_node *n) {
    const lm_tensor *y = n->src[0], *w = n->src[1];
    pc_moe_sum pc = {.y = lm_vk_addr(y), .w = lm_vk_addr(w), .d = lm_vk_addr(n->dst), .dd = (uint32_t)y->ne[0],
                     .k = (uint32_t)y->ne[1], .n = (uint32_t)y->ne[2], .y_nb1 = (uint32_t)y->nb[1], .y_nb2 = (uint32_t)y->nb[2]};
    lm_vk_dispatch(be, n, lm_vk_shader_find("moe_sum"), &pc, sizeof pc, ceil_div(y->ne[0], 64), grid_y(y->ne[2]), 1);
}

typedef struct {
    uint64_t w, x, d, ids;
    uint32_t K, M, N, row_bytes;
    uint32_t x_nb1, x_nb2, d_nb1, d_nb2;
    uint32_t J, x_ne1, expert_bytes, rows_per_group;
} pc_matmul;

#define MM_NC 8
#define MM_ROWS 4 /* R of matmul_vec.comp */

typedef struct {
    uint64_t w, x, d;
    uint32_t K, M, N, row_bytes;
    uint32_t x_nb1, d_nb1;
} pc_tile;

/* more columns than one matmul_vec pass covers: the tiled kernel */
static bool use_tile(const lm_node *n) {
    return n->op == LM_OP_MATMUL && n->src[1]->ne[1] > MM_NC && n->src[0]->ne[0] % 32 == 0 &&
           n->src[0]->ne[1] <= 65535 * 64 && n->src[1]->ne[1] <= 65535 * 64;
}

static void matmul(lm_backend *be, const lm_node *n, bool id) {
    const vk_ctx *c = be->impl;
    if (!id && use_tile(n)) {
        const lm_tensor *w = n->src[0], *x = n->src[1], *d = n->dst;
        pc_tile pt = {.w = lm_vk_addr(w), .x = lm_vk_addr(x), .d = lm_vk_addr(d), .K = (uint32_t)w->ne[0],
                      .M = (uint32_t)w->ne[1], .N = (uint32_t)x->ne[1], .row_bytes = (uint32_t)w->nb[1],
                      .x_nb1 = (uint32_t)x->nb[1], .d_nb1 = (uint32_t)d->nb[1]};
        lm_vk_dispatch(be, n, variant("matmul_tile", type_suffix(w->type), NULL), &pt, sizeof pt, ceil_div(w->ne[1], 64),
                       ceil_div(x->ne[1], 64), 1);
        return;
    }
    const lm_tensor *w = n->src[0], *x = n->src[1], *d = n->dst;
    const uint32_t M = (uint32_t)w->ne[1];
    /* each subgroup (or, without subgroups, the workgroup) takes MM_ROWS rows at a time; with
       subgroups a workgroup covers 64 / subgroup_size of them */
    const bool sg = c->feat.subgroup_arith;
    const uint32_t rpg = MM_ROWS * (sg ? (64u / c->feat.subgroup_size > 0 ? 64u / c->feat.subgroup_size : 1u) : 1u);
    const uint32_t groups = ceil_div(M, rpg), gx = groups < MAX_GRID_Y ? groups : MAX_GRID_Y, gy = ceil_div(groups, gx);
    pc_matmul pc = {.w = lm_vk_addr(w), .x = lm_vk_addr(x), .d = lm_vk_addr(d), .K = (uint32_t)w->ne[0], .M = M,
                    .N = (uint32_t)x->ne[1], .row_bytes = (uint32_t)w->nb[1], .x_nb1 = (uint32_t)x->nb[1],
                    .x_nb2 = (uint32_t)x->nb[2], .d_nb1 = (uint32_t)d->nb[1], .d_nb2 = (uint32_t)d->nb[2],
                    .rows_per_group = rpg};
    if (id) {
        const lm_tensor *ids = n->src[2];
        pc.ids = lm_vk_addr(ids);
        pc.J = (uint32_t)ids->ne[0];
        pc.x_ne1 = (uint32_t)x->ne[1];
        pc.expert_bytes = (uint32_t)w->nb[2];
        lm_vk_dispatch(be, n, variant(sg ? "matmul_id_sg" : "matmul_id", type_suffix(w->type), NULL), &pc, sizeof pc, gx, gy,
                       (uint32_t)(ids->ne[0] * ids->ne[1]));
    } else {
        pc.ids = pc.w;
        lm_vk_dispatch(be, n, variant(sg ? "matmul_vec_sg" : "matmul_vec", type_suffix(w->type), NULL), &pc, sizeof pc, gx, gy,
                       ceil_div(x->ne[1], MM_NC));
    }
}

/* attention arguments: too many pointers for push constants, passed as a block */
typedef struct {
    uint64_t q, k, v, cell_pos, pos, seq, knorm, table, d, part, pages;
    uint32_t dk, dv, H, Hkv, cps, ring, window, k_from_v, n_split, n_pairs, rope_mode, page, pps;
    uint32_t q_nb1, q_nb2, k_nb1, k_nb2, v_nb1, v_nb2;
    float scale, softcap;
} attn_args;

typedef struct {
    uint64_t part, d;
    uint32_t H, dv, n_split;
} pc_merge;

static void attention(lm_backend *be, const lm_node *n) {
    const lm_tensor *q = n->src[0], *k = n->src[1], *v = n->src[2];
    const lm_attn_params ap = lm_node_attn_unpack(n);
    const uint32_t H = (uint32_t)q->ne[1], T = (uint32_t)q->ne[2];
    /* few queries against a long cache: split the cells (flash-decoding) */
    uint32_t S = 1;
    if ((uint64_t)H * T < 128 && ap.cells_per_seq >= 1024) {
        S = (uint32_t)(ap.cells_per_seq / 512);
        if (S > 32) S = 32;
    }
    attn_args a = {.q = lm_vk_addr(q), .k = lm_vk_addr(k), .v = lm_vk_addr(v), .cell_pos = lm_vk_addr(n->src[3]),
                   .pos = lm_vk_addr(n->src[4]), .seq = lm_vk_addr(n->src[5]), .d = lm_vk_addr(n->dst),
                   .pages = lm_vk_addr(n->src[8]), .page = (uint32_t)ap.page, .pps = (uint32_t)n->src[8]->ne[0],
                   .dk = (uint32_t)q->ne[0], .dv = (uint32_t)v->ne[0], .H = H, .Hkv = (uint32_t)k->ne[1],
                   .cps = (uint32_t)ap.cells_per_seq, .ring = ap.ring, .window = (uint32_t)ap.window, .k_from_v = ap.k_from_v,
                   .n_split = S, .q_nb1 = (uint32_t)q->nb[1], .q_nb2 = (uint32_t)q->nb[2], .k_nb1 = (uint32_t)k->nb[1],
                   .k_nb2 = (uint32_t)k->nb[2], .v_nb1 = (uint32_t)v->nb[1], .v_nb2 = (uint32_t)v->nb[2], .scale = ap.scale,
                   .softcap = ap.softcap};
    a.knorm = a.table = a.part = a.q;
    if (ap.k_from_v) {
        a.knorm = lm_vk_addr(n->src[6]);
        a.table = lm_vk_freqs(be, &ap.rope, n->src[7]);
        a.n_pairs = (uint32_t)ap.rope.n_pairs;
        a.rope_mode = (uint32_t)ap.rope.mode;
        if (!a.table) return;
    }
    if (S > 1) {
        a.part = lm_vk_scratch(be, (size_t)T * H * S * (a.dv + 2) * sizeof(float));
        if (!a.part) return;
    }
    const uint64_t args = lm_vk_args(be, &a, sizeof a);
    if (!args) return;
    lm_vk_dispatch(be, n, variant("attention", type_suffix(v->type), NULL), &args, sizeof args, H, T, S);
    if (S > 1) {
        pc_merge pm = {.part = a.part, .d = a.d, .H = H, .dv = a.dv, .n_split = S};
        lm_vk_dispatch(be, n, lm_vk_shader_find("attention_merge"), &pm, sizeof pm, H, T, 1);
    }
}

/* ---------------------------------------------------------------------------------------- */

static bool all_device(const lm_node *n) {
    if (!n->dst->buf || n->dst->buf->host) return false;
    for (int i = 0; i < LM_MAX_SRC; i++)
        if (n->src[i] && (!n->src[i]->buf || n->src[i]->buf->host)) return false;
    return true;
}

/* 32-bit strides and sizes are enough for every supported op; larger views fall back to errors */
static bool fits32(const lm_tensor *t) {
    if (!t) return true;
    for (int d = 0; d < LM_MAX_DIMS; d++)
        if (t->ne[d] > UINT32_MAX || t->nb[d] > UINT32_MAX) return false;
    return true;
}

bool lm_vk_supports(lm_backend *be, const lm_node *n) {
    (void)be;
    if (!all_device(n)) return false;
    for (int i = 0; i < LM_MAX_SRC; i++)
        if (!fits32(n->src[i])) return false;
    if (!fits32(n->dst)) return false;
    switch (n->op) {
    case LM_OP_ADD: case LM_OP_MUL: case LM_OP_SCALE: case LM_OP_SOFTCAP: case LM_OP_GEGLU: case LM_OP_SWIGLU: case LM_OP_RMS_NORM:
        return lm_vk_shader_find(n->op == LM_OP_RMS_NORM ? "rms_norm" : "elementwise") >= 0;
    case LM_OP_GET_ROWS: return variant("get_rows", type_suffix(n->src[0]->type), NULL) >= 0;
    case LM_OP_SET_ROWS:
        return (n->dst->type != LM_E4M3 || (n->dst->ne[0] % 4 == 0 && n->dst->nb[1] % 4 == 0 && n->dst->offs % 4 == 0)) &&
               variant("set_rows", type_suffix(n->dst->type), NULL) >= 0;
    case LM_OP_CPY: return variant("cpy", type_suffix(n->src[0]->type), type_suffix(n->dst->type)) >= 0;
    case LM_OP_ROPE: return lm_vk_shader_find("rope") >= 0;
    case LM_OP_TOPK: return n->ip[0] <= 64 && lm_vk_shader_find("topk") >= 0;
    case LM_OP_MOE_WEIGHTS: return lm_tensor_is_contiguous(n->src[1]) && lm_tensor_is_contiguous(n->src[0]);
    case LM_OP_MOE_SUM: return lm_tensor_is_contiguous(n->src[1]);
    case LM_OP_MATMUL: return n->src[1]->ne[1] <= 65535 * MM_NC && variant("matmul_vec", type_suffix(n->src[0]->type), NULL) >= 0;
    case LM_OP_MATMUL_ID:
        return lm_tensor_is_contiguous(n->src[2]) && n->src[2]->ne[0] * n->src[2]->ne[1] <= 65535 &&
               variant("matmul_id", type_suffix(n->src[0]->type), NULL) >= 0;
    case LM_OP_ATTENTION:
        return n->src[0]->ne[0] <= 512 && n->src[2]->ne[0] <= 512 && n->src[0]->ne[1] <= 65535 && n->src[0]->ne[2] <= 65535 &&
               n->src[1]->type == n->src[2]->type && variant("attention", type_suffix(n->src[2]->type), NULL) >= 0;
    default: return false;
    }
}

void lm_vk_run(lm_backend *be, const lm_node *n) {
    switch (n->op) {
    case LM_OP_ADD: case LM_OP_MUL: case LM_OP_SCALE: case LM_OP_SOFTCAP: case LM_OP_GEGLU: case LM_OP_SWIGLU: elementwise(be, n); break;
    case LM_OP_RMS_NORM: rms_norm(be, n); break;
    case LM_OP_GET_ROWS: get_rows(be, n); break;
    case LM_OP_SET_ROWS: set_rows(be, n); break;
    case LM_OP_CPY: cpy(be, n); break;
    case LM_OP_ROPE: rope(be, n); break;
    case LM_OP_TOPK: topk(be, n); break;
    case LM_OP_MOE_WEIGHTS: moe_weights(be, n); break;
    case LM_OP_MOE_SUM: moe_sum(be, n); break;
    case LM_OP_MATMUL: matmul(be, n, false); break;
    case LM_OP_MATMUL_ID: matmul(be, n, true); break;
    case LM_OP_ATTENTION: attention(be, n); break;
    default: lm_backend_latch(be, LM_STATUS_UNSUPPORTED, "op %s is not implemented", lm_op_name(n->op)); break;
    }
}
