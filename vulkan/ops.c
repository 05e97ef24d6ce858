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
    lm_vk_dispatch(be, n, variant("set_rows", type_suffix(d->type), NULL), &pc, sizeof pc, ceil_div(src->ne[0], 256),
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
    case LM_OP_ADD: case LM_OP_MUL: case LM_OP_SCALE: case LM_OP_SOFTCAP: case LM_OP_GEGLU: case LM_OP_RMS_NORM:
        return lm_vk_shader_find(n->op == LM_OP_RMS_NORM ? "rms_norm" : "elementwise") >= 0;
    case LM_OP_GET_ROWS: return variant("get_rows", type_suffix(n->src[0]->type), NULL) >= 0;
    case LM_OP_SET_ROWS: return variant("set_rows", type_suffix(n->dst->type), NULL) >= 0;
    case LM_OP_CPY: return variant("cpy", type_suffix(n->src[0]->type), type_suffix(n->dst->type)) >= 0;
    default: return false;
    }
}

void lm_vk_run(lm_backend *be, const lm_node *n) {
    switch (n->op) {
    case LM_OP_ADD: case LM_OP_MUL: case LM_OP_SCALE: case LM_OP_SOFTCAP: case LM_OP_GEGLU: elementwise(be, n); break;
    case LM_OP_RMS_NORM: rms_norm(be, n); break;
    case LM_OP_GET_ROWS: get_rows(be, n); break;
    case LM_OP_SET_ROWS: set_rows(be, n); break;
    case LM_OP_CPY: cpy(be, n); break;
    default: lm_backend_latch(be, LM_STATUS_UNSUPPORTED, "op %s is not implemented", lm_op_name(n->op)); break;
    }
}
