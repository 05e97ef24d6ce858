/*
 * op_harness.c — see op_harness.h. Input generation per op follows the shape conventions written
 * next to each group of cases in op_cases.h.
 */
#define _GNU_SOURCE
#include "op_harness.h"

#include "ops.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SENTINEL 0xA5

typedef struct input {
    lm_tensor t;
    void *host;
    size_t bytes;
    int usage; /* LM_BUF_WEIGHTS for weight operands (a backend may repack them), else COMPUTE */
} input;

typedef struct harness {
    lm_backend *be;
    input in[LM_MAX_SRC + 2];
    int n_in;
    lm_buffer *bufs[LM_MAX_SRC + 2];
} harness;

/* random content for any dtype: floats N(0, scale); quantized blocks with random quants and
   sane random scales */
static void fill(tu_rng *r, lm_dtype t, void *dst, int64_t nel, float scale) {
    switch (t) {
    case LM_F32:
        for (int64_t i = 0; i < nel; i++) ((float *)dst)[i] = tu_normal(r) * scale;
        return;
    case LM_F16:
        for (int64_t i = 0; i < nel; i++) ((uint16_t *)dst)[i] = lm_f32_to_f16(tu_normal(r) * scale);
        return;
    case LM_BF16:
        for (int64_t i = 0; i < nel; i++) ((uint16_t *)dst)[i] = lm_f32_to_bf16(tu_normal(r) * scale);
        return;
    case LM_I32:
        for (int64_t i = 0; i < nel; i++) ((int32_t *)dst)[i] = (int32_t)tu_range(r, -1000, 1000);
        return;
    case LM_E4M3:
        for (int64_t i = 0; i < nel; i++) ((uint8_t *)dst)[i] = lm_f32_to_e4m3(tu_normal(r) * scale);
        return;
    case LM_F8_E4M3: {
        /* random codes (NaN codes replaced) with random f32 block scales */
        uint8_t *p = dst;
        for (int64_t b = 0; b < nel / 128; b++, p += 132) {
            const float d = scale / 64.0f * (0.5f + tu_uniform(r)) * (tu_uniform(r) < 0.5f ? -1.0f : 1.0f);
            memcpy(p, &d, 4);
            for (int j = 0; j < 128; j++) {
                uint8_t q = (uint8_t)tu_next(r);
                p[4 + j] = (q & 0x7f) == 0x7f ? (uint8_t)(q ^ 1) : q;
            }
        }
        return;
    }
    default: break;
    }
    const lm_dtype_traits *tr = lm_dtype_get(t);
    const int64_t nb = nel / tr->block;
    uint8_t *p = dst;
    for (int64_t i = 0; i < (int64_t)nb * tr->block_bytes; i++) p[i] = (uint8_t)tu_next(r);
    /* positions of the f16 scale fields inside each block */
    int d_off = -1, m_off = -1;
    switch (t) {
    case LM_Q4_0: case LM_Q5_0: case LM_Q8_0: d_off = 0; break;
    case LM_Q4_1: case LM_Q5_1: case LM_I4_G128: d_off = 0; m_off = 2; break;
    case LM_Q2_K: d_off = 80; m_off = 82; break;
    case LM_Q3_K: d_off = 108; break;
    case LM_Q4_K: case LM_Q5_K: d_off = 0; m_off = 2; break;
    case LM_Q6_K: d_off = 208; break;
    default: break;
    }
    /* scales sized so dequantized weights are O(scale) */
    float ds = scale / (tr->block == 256 ? 32.0f : 8.0f);
    if (t == LM_Q8_0) ds = scale / 64.0f;
    if (t == LM_Q6_K) ds = scale / 256.0f;
    for (int64_t b = 0; b < nb; b++) {
        uint8_t *blk = p + b * tr->block_bytes;
        uint16_t d = lm_f32_to_f16(ds * (0.5f + tu_uniform(r)) * (tu_uniform(r) < 0.5f ? -1.0f : 1.0f));
        memcpy(blk + d_off, &d, 2);
        if (m_off >= 0) {
            uint16_t m = lm_f32_to_f16(ds * tu_uniform(r) * (t == LM_Q4_1 || t == LM_Q5_1 ? -8.0f : 1.0f));
            memcpy(blk + m_off, &m, 2);
        }
    }
}

static input *add_input(harness *h, lm_dtype type, int n_dims, const int64_t *ne) {
    input *in = &h->in[h->n_in++];
    in->usage = LM_BUF_COMPUTE;
    lm_tensor_init(&in->t, type, n_dims, ne);
    in->bytes = lm_tensor_nbytes(&in->t);
    in->host = calloc(1, in->bytes + 64);
    return in;
}

static lm_status upload(harness *h) {
    for (int i = 0; i < h->n_in; i++) {
        LM_TRY(h->be->ops->buffer_alloc(h->be, h->in[i].bytes + 256, h->in[i].usage, &h->bufs[i]));
        h->in[i].t.buf = h->bufs[i];
        h->in[i].t.offs = 0;
        LM_TRY(h->be->ops->tensor_set(h->be, &h->in[i].t, h->in[i].host, 0, h->in[i].bytes));
    }
    return LM_STATUS_OK;
}

static void harness_free(harness *h) {
    for (int i = 0; i < h->n_in; i++) {
        free(h->in[i].host);
        if (h->bufs[i]) h->be->ops->buffer_free(h->bufs[i]);
    }
}

static void distinct(tu_rng *r, int32_t *out, int n, int32_t range) {
    for (int i = 0; i < n; i++) {
        int32_t v;
        bool again;
        do {
            v = (int32_t)tu_range(r, 0, range - 1);
            again = false;
            for (int j = 0; j < i; j++) again |= out[j] == v;
        } while (again);
        out[i] = v;
    }
}

/* attention's paging: cells per page (a ring, or ip[5] = 0: one page per sequence, cps cells) */
static int64_t attn_page(const lm_op_case *c) { return c->ip[5] > 0 && !c->ip[1] ? c->ip[5] : c->s[5]; }
static int64_t attn_pps(const lm_op_case *c) { return (c->s[5] + attn_page(c) - 1) / attn_page(c); }
/* physical pages: one per logical page of each sequence, plus (paged) 3 spare pages whose cells
   hold positions that must never be read and a null page (positions -1, no K / V rows) */
static int64_t attn_phys_pages(const lm_op_case *c) {
    return attn_pps(c) * c->ip[0] + (c->ip[5] > 0 && !c->ip[1] ? 4 : 0);
}

/* attention inputs: cache contents and cell positions as a real cache would hold them. Paged
   cases scatter each sequence's logical pages over the physical pages at random; logical pages
   beyond a sequence's last position map to the null page. */
static void make_attention(harness *h, const lm_op_case *c, tu_rng *r) {
    const int64_t dk = c->s[0], dv = c->s[1], H = c->s[2], Hkv = c->s[3], n = c->s[4], cps = c->s[5];
    const int n_seq = c->ip[0], ring = c->ip[1], window = c->ip[2], kfv = c->ip[3], off = c->ip[4];
    const int64_t page = attn_page(c), pps = attn_pps(c), n_phys = attn_phys_pages(c);
    const bool paged = n_phys > pps * n_seq;
    const int64_t C = (n_phys - paged) * page; /* K / V rows: the null page has positions only */
    int64_t ne[3] = {dk, H, n};
    input *q = add_input(h, LM_F32, 3, ne);
    fill(r, LM_F32, q->host, dk * H * n, 1.0f);
    ne[0] = dk; ne[1] = Hkv; ne[2] = C;
    input *k = kfv ? NULL : add_input(h, c->type, 3, ne);
    if (k) fill(r, c->type, k->host, dk * Hkv * C, 1.0f);
    ne[0] = dv;
    input *v = add_input(h, c->type, 3, ne);
    fill(r, c->type, v->host, dv * Hkv * C, 1.0f);
    int64_t nc = n_phys * page, nn = n;
    input *cp = add_input(h, LM_I32, 1, &nc);
    input *pos = add_input(h, LM_I32, 1, &nn);
    input *seq = add_input(h, LM_I32, 1, &nn);
    int32_t *cpv = cp->host, *pv = pos->host, *sv = seq->host;
    /* the page table: identity, or a random permutation of the physical pages (the last one is
       the null page) */
    int32_t *tab = malloc((size_t)(pps * n_seq) * sizeof(int32_t));
    int32_t *perm = malloc((size_t)n_phys * sizeof(int32_t));
    for (int64_t i = 0; i < n_phys; i++) perm[i] = (int32_t)i;
    if (paged) {
        for (int64_t i = n_phys - 2; i > 0; i--) { /* shuffle all but the null page */
            const int64_t j = (int64_t)tu_range(r, 0, (int)i);
            const int32_t t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        for (int64_t cell = 0; cell < C; cell++) cpv[cell] = (int32_t)tu_range(r, 0, 2 * (int)cps); /* must not be read */
        for (int64_t cell = C; cell < nc; cell++) cpv[cell] = -1;
    }
    for (int64_t i = 0; i < pps * n_seq; i++) tab[i] = perm[i];
#define PHYS(s, cell) ((int64_t)tab[(s) * pps + (cell) / page] * page + (cell) % page)
    /* each sequence has cached positions up to top[s]; the step's tokens are the last ones */
    for (int s = 0; s < n_seq; s++) {
        int32_t top = ring ? off + (int32_t)tu_range(r, 0, 50) + s * 7 : (int32_t)(cps - 1 - tu_range(r, 0, cps / 4));
        if (!ring && off > 0) top = (int32_t)lm_min64(off + (int32_t)tu_range(r, 0, 20), cps - 1);
        if (paged)
            for (int64_t j = top / page + 1; j < pps; j++) tab[s * pps + j] = (int32_t)(n_phys - 1);
        for (int64_t cell = 0; cell < cps; cell++) {
            int32_t p;
            if (ring) {
                /* the latest position <= top with p % cps == cell */
                p = top - (int32_t)((top - cell) % cps + cps) % (int32_t)cps;
            } else {
                p = (int32_t)cell <= top ? (int32_t)cell : -1;
            }
            if (tu_uniform(r) < 0.05f) p = -1; /* holes: cleared cells */
            if (!paged || cell / page <= top / page) cpv[PHYS(s, cell)] = p;
        }
        int t_i = 0;
        for (int64_t t = s; t < n; t += n_seq, t_i++) {
            sv[t] = s;
            pv[t] = top - t_i;
            /* the token's own cell must hold it */
            int64_t cell = ring ? pv[t] % cps : pv[t];
            cpv[PHYS(s, cell)] = pv[t];
        }
    }
#undef PHYS
    (void)window;
    if (kfv) {
        int64_t d = dk;
        input *kn = add_input(h, LM_F32, 1, &d);
        for (int64_t i = 0; i < dk; i++) ((float *)kn->host)[i] = 0.5f + tu_uniform(r);
    }
    int64_t tne[2] = {pps, n_seq};
    input *pg = add_input(h, LM_I32, 2, tne);
    memcpy(pg->host, tab, (size_t)(pps * n_seq) * sizeof(int32_t));
    free(tab);
    free(perm);
}

/* the attention's real work: 2 (dk + dv) flops per head for every (token, cell) pair the masks
   let through (the engine's cost model counts whole caches: it cannot read the positions) */
static double attention_flops(const harness *h, const lm_op_case *c) {
    const int64_t dk = c->s[0], dv = c->s[1], H = c->s[2], n = c->s[4], cps = c->s[5], page = attn_page(c), pps = attn_pps(c);
    const int n_seq = c->ip[0], window = c->ip[2], b = c->ip[3] ? 2 : 3;
    const int32_t *cp = h->in[b].host, *pos = h->in[b + 1].host, *seq = h->in[b + 2].host, *tab = h->in[h->n_in - 1].host;
    double pairs = 0;
    for (int64_t t = 0; t < n; t++) {
        if (seq[t] < 0 || seq[t] >= n_seq) continue;
        for (int64_t cell = 0; cell < cps; cell++) {
            const int32_t pc = cp[(int64_t)tab[seq[t] * pps + cell / page] * page + cell % page];
            pairs += pc >= 0 && pc <= pos[t] && (window == 0 || pos[t] - pc < window);
        }
    }
    return 2.0 * (double)(dk + dv) * (double)H * pairs;
}

static void describe_shape(const lm_op_case *c, char *buf, size_t cap) {
    int at = snprintf(buf, cap, "[");
    for (int i = 0; i < 6 && c->s[i]; i++) at += snprintf(buf + at, cap - (size_t)at, "%s%lld", i ? ", " : "", (long long)c->s[i]);
    snprintf(buf + at, cap - (size_t)at, "]");
}

void lm_case_describe(const lm_op_case *c, char *buf, size_t cap) {
    char sh[96];
    describe_shape(c, sh, sizeof sh);
    snprintf(buf, cap, "%s %s %s", c->name, lm_dtype_name(c->type), sh);
}

/* Build and run the op in graph g; returns the destination tensor. */
static lm_tensor *build(harness *h, lm_graph *g, const lm_op_case *c) {
    input *in = h->in;
    switch (c->op) {
    case LM_OP_GET_ROWS: return lm_get_rows(g, &in[0].t, &in[1].t, c->fp[0]);
    case LM_OP_SET_ROWS: lm_set_rows(g, &in[0].t, &in[1].t, &in[2].t); return &in[0].t;
    case LM_OP_RMS_NORM:
        return lm_rms_norm(g, &in[0].t, c->ip[0] ? &in[1].t : NULL, c->ip[1] ? &in[c->ip[0] ? 2 : 1].t : NULL, c->fp[0]);
    case LM_OP_MATMUL: {
        if (c->s[3] > 0) {
            lm_tensor *xv = lm_view(g, lm_tensor_cols(&in[1].t, c->s[3], c->s[0]));
            return lm_matmul(g, &in[0].t, xv);
        }
        return lm_matmul(g, &in[0].t, &in[1].t);
    }
    case LM_OP_MATMUL_ID: return lm_matmul_id(g, &in[0].t, &in[1].t, &in[2].t);
    case LM_OP_ROPE: {
        lm_rope_params rp = {c->ip[0], c->ip[1], c->ip[2], c->fp[0], c->fp[1]};
        return lm_rope(g, &in[0].t, &in[1].t, c->ip[3] ? &in[2].t : NULL, &rp);
    }
    case LM_OP_ATTENTION: {
        const int kfv = c->ip[3];
        lm_attn_params ap = {.cells_per_seq = (int32_t)c->s[5], .page = (int32_t)attn_page(c), .ring = c->ip[1] != 0, .window = c->ip[2], .scale = c->fp[0],
                             .softcap = c->fp[1], .k_from_v = kfv != 0,
                             .rope = {(int32_t)c->s[0] / 8, (int32_t)c->s[0], LM_ROPE_NEOX, 1e6f, 1.0f}};
        const lm_tensor *q = &in[0].t, *k = kfv ? &in[1].t : &in[1].t, *v = kfv ? &in[1].t : &in[2].t;
        const int b = kfv ? 2 : 3;
        return lm_attention(g, q, k, v, &in[b].t, &in[kfv ? b + 4 : b + 3].t, &in[b + 1].t, &in[b + 2].t,
                            kfv ? &in[b + 3].t : NULL, NULL, &ap);
    }
    case LM_OP_GEGLU: return lm_geglu(g, &in[0].t, &in[1].t);
    case LM_OP_SWIGLU: return lm_swiglu(g, &in[0].t, &in[1].t);
    case LM_OP_ADD: return lm_add(g, &in[0].t, &in[1].t);
    case LM_OP_MUL: return lm_mul(g, &in[0].t, &in[1].t);
    case LM_OP_SCALE: return lm_scale(g, &in[0].t, c->fp[0]);
    case LM_OP_SOFTCAP: return lm_softcap(g, &in[0].t, c->fp[0]);
    case LM_OP_TOPK: return lm_topk(g, &in[0].t, c->ip[0]);
    case LM_OP_MOE_WEIGHTS: return lm_moe_weights(g, &in[0].t, &in[1].t, c->ip[0] ? &in[2].t : NULL);
    case LM_OP_MOE_SUM: return lm_moe_sum(g, &in[0].t, &in[1].t);
    case LM_OP_CPY: lm_cpy(g, &in[1].t, &in[0].t); return &in[1].t;
    default: return NULL;
    }
}

static void make_inputs(harness *h, const lm_op_case *c, tu_rng *r) {
    const int64_t *s = c->s;
    int64_t ne[4];
    switch (c->op) {
    case LM_OP_GET_ROWS: {
        ne[0] = s[0]; ne[1] = s[1];
        input *tab = add_input(h, c->type, 2, ne);
        tab->usage = LM_BUF_WEIGHTS;
        fill(r, c->type, tab->host, s[0] * s[1], 1.0f);
        input *ids = add_input(h, LM_I32, 1, &s[2]);
        for (int64_t i = 0; i < s[2]; i++) ((int32_t *)ids->host)[i] = (int32_t)tu_range(r, 0, s[1] - 1);
        break;
    }
    case LM_OP_SET_ROWS: {
        ne[0] = s[0]; ne[1] = s[1];
        input *dst = add_input(h, c->type, 2, ne);
        fill(r, c->type, dst->host, s[0] * s[1], 1.0f);
        ne[1] = s[2];
        input *src = add_input(h, c->type == LM_I32 ? LM_I32 : LM_F32, 2, ne);
        fill(r, src->t.type, src->host, s[0] * s[2], c->fp[0] > 0 ? c->fp[0] : 1.0f);
        input *idx = add_input(h, LM_I32, 1, &s[2]);
        distinct(r, idx->host, (int)s[2], (int32_t)s[1]);
        break;
    }
    case LM_OP_RMS_NORM: {
        ne[0] = s[0]; ne[1] = s[1]; ne[2] = s[2];
        input *x = add_input(h, LM_F32, 3, ne);
        fill(r, LM_F32, x->host, s[0] * s[1] * s[2], 3.0f);
        if (c->ip[0]) {
            input *w = add_input(h, LM_F32, 1, ne);
            fill(r, LM_F32, w->host, s[0], 1.0f);
        }
        if (c->ip[1]) {
            input *res = add_input(h, LM_F32, 3, ne);
            fill(r, LM_F32, res->host, s[0] * s[1] * s[2], 1.0f);
        }
        break;
    }
    case LM_OP_MATMUL: {
        ne[0] = s[0]; ne[1] = s[1];
        input *w = add_input(h, c->type, 2, ne);
        w->usage = LM_BUF_WEIGHTS;
        fill(r, c->type, w->host, s[0] * s[1], 1.0f);
        ne[0] = s[0] + s[3]; ne[1] = s[2];
        input *x = add_input(h, LM_F32, 2, ne);
        fill(r, LM_F32, x->host, ne[0] * s[2], 1.0f);
        break;
    }
    case LM_OP_MATMUL_ID: {
        ne[0] = s[0]; ne[1] = s[1]; ne[2] = s[2];
        input *w = add_input(h, c->type, 3, ne);
        w->usage = LM_BUF_WEIGHTS;
        fill(r, c->type, w->host, s[0] * s[1] * s[2], 1.0f);
        ne[0] = s[0]; ne[1] = s[5]; ne[2] = s[4];
        input *x = add_input(h, LM_F32, 3, ne);
        fill(r, LM_F32, x->host, s[0] * s[5] * s[4], 1.0f);
        ne[0] = s[3]; ne[1] = s[4];
        input *ids = add_input(h, LM_I32, 2, ne);
        for (int64_t t = 0; t < s[4]; t++) distinct(r, (int32_t *)ids->host + t * s[3], (int)s[3], (int32_t)s[2]);
        break;
    }
    case LM_OP_ROPE: {
        ne[0] = s[0]; ne[1] = s[1]; ne[2] = s[2];
        input *x = add_input(h, LM_F32, 3, ne);
        fill(r, LM_F32, x->host, s[0] * s[1] * s[2], 1.0f);
        input *pos = add_input(h, LM_I32, 1, &s[2]);
        for (int64_t i = 0; i < s[2]; i++) ((int32_t *)pos->host)[i] = (int32_t)tu_range(r, 0, 100000);
        if (c->ip[3]) {
            int64_t nf = s[0] / 2;
            input *f = add_input(h, LM_F32, 1, &nf);
            for (int64_t i = 0; i < nf; i++) ((float *)f->host)[i] = i < nf / 4 ? 0.5f + tu_uniform(r) : 1e30f;
        }
        break;
    }
    case LM_OP_ATTENTION: make_attention(h, c, r); break;
    case LM_OP_GEGLU: case LM_OP_SWIGLU: case LM_OP_ADD: case LM_OP_MUL: case LM_OP_SCALE: case LM_OP_SOFTCAP: {
        ne[0] = s[0]; ne[1] = s[1]; ne[2] = s[2];
        input *a = add_input(h, LM_F32, 3, ne);
        fill(r, LM_F32, a->host, s[0] * s[1] * s[2], c->fp[1] > 0 ? c->fp[1] : c->op == LM_OP_SOFTCAP ? 50.0f : 2.0f);
        if (c->op == LM_OP_GEGLU || c->op == LM_OP_SWIGLU || c->op == LM_OP_ADD || c->op == LM_OP_MUL) {
            input *b = c->ip[0] ? add_input(h, LM_F32, 1, ne) : add_input(h, LM_F32, 3, ne);
            fill(r, LM_F32, b->host, c->ip[0] ? s[0] : s[0] * s[1] * s[2], 1.0f);
        }
        break;
    }
    case LM_OP_TOPK: {
        ne[0] = s[0]; ne[1] = s[1];
        input *x = add_input(h, LM_F32, 2, ne);
        fill(r, LM_F32, x->host, s[0] * s[1], 1.0f);
        if (c->ip[1])
            for (int64_t i = 0; i < s[0] * s[1]; i++) ((float *)x->host)[i] = roundf(((float *)x->host)[i] * 2.0f) / 2.0f;
        break;
    }
    case LM_OP_MOE_WEIGHTS: {
        ne[0] = s[0]; ne[1] = s[2];
        input *l = add_input(h, LM_F32, 2, ne);
        fill(r, LM_F32, l->host, s[0] * s[2], 2.0f);
        ne[0] = s[1];
        input *ids = add_input(h, LM_I32, 2, ne);
        for (int64_t t = 0; t < s[2]; t++) distinct(r, (int32_t *)ids->host + t * s[1], (int)s[1], (int32_t)s[0]);
        if (c->ip[0]) {
            input *sc = add_input(h, LM_F32, 1, &s[0]);
            for (int64_t i = 0; i < s[0]; i++) ((float *)sc->host)[i] = 0.5f + tu_uniform(r);
        }
        break;
    }
    case LM_OP_MOE_SUM: {
        ne[0] = s[0]; ne[1] = s[1]; ne[2] = s[2];
        input *y = add_input(h, LM_F32, 3, ne);
        fill(r, LM_F32, y->host, s[0] * s[1] * s[2], 1.0f);
        ne[0] = s[1]; ne[1] = s[2];
        input *w = add_input(h, LM_F32, 2, ne);
        fill(r, LM_F32, w->host, s[1] * s[2], 1.0f);
        break;
    }
    case LM_OP_CPY: {
        ne[0] = s[0]; ne[1] = s[1];
        input *src = add_input(h, (lm_dtype)c->ip[0], 2, ne);
        fill(r, src->t.type, src->host, s[0] * s[1], 1.0f);
        add_input(h, c->type, 2, ne);
        break;
    }
    default: break;
    }
}

lm_status lm_case_run(const lm_op_case *c, uint64_t seed, lm_backend *be, int reps, lm_case_result *res) {
    memset(res, 0, sizeof *res);
    harness h = {.be = be};
    tu_rng r = tu_seed(seed);
    lm_graph *g = malloc(sizeof *g);
    lm_buffer *arena = NULL;
    uint8_t *arena_host = NULL;
    lm_status st = LM_STATUS_OK;
    if (!g) return lm_fail(LM_STATUS_OUT_OF_MEMORY, "harness: out of memory");
    make_inputs(&h, c, &r);
    if ((st = upload(&h))) goto done;
    /* size the arena in measure mode, then fill it with the sentinel */
    lm_graph_init(g, be, NULL, true);
    build(&h, g, c);
    if ((st = lm_graph_status(g))) goto done;
    const size_t arena_size = g->arena.peak + 4096;
    if ((st = be->ops->buffer_alloc(be, arena_size, LM_BUF_COMPUTE, &arena))) goto done;
    arena_host = malloc(arena_size);
    if (!arena_host) {
        st = lm_fail(LM_STATUS_OUT_OF_MEMORY, "harness: out of memory");
        goto done;
    }
    memset(arena_host, SENTINEL, arena_size);
    lm_tensor whole;
    const int64_t ne = (int64_t)arena_size;
    const int64_t n4 = ne / 4;
    lm_tensor_init(&whole, LM_F32, 1, &n4);
    whole.buf = arena;
    if ((st = be->ops->tensor_set(be, &whole, arena_host, 0, (size_t)(ne / 4) * 4))) goto done;
    lm_tensor *dst = NULL;
    for (int rep = 0; rep < (reps < 1 ? 1 : reps); rep++) {
        if (c->op == LM_OP_SET_ROWS || c->op == LM_OP_CPY) {
            /* in-place ops: restore the destination before every run */
            int di = c->op == LM_OP_SET_ROWS ? 0 : 1;
            if ((st = be->ops->tensor_set(be, &h.in[di].t, h.in[di].host, 0, h.in[di].bytes))) goto done;
        }
        if ((st = be->ops->begin(be))) goto done;
        double t0 = lm_time_s();
        lm_graph_init(g, be, arena, false);
        dst = build(&h, g, c);
        st = lm_graph_status(g);
        lm_status s2 = be->ops->submit(be);
        if (!st) st = s2;
        s2 = be->ops->sync(be);
        if (!st) st = s2;
        const double dt = lm_time_s() - t0;
        if (rep == 0 || dt < res->seconds) res->seconds = dt;
        if (st) goto done;
    }
    {
        lm_node probe = {.op = c->op, .dst = dst};
        for (int i = 0; i < h.n_in && i < LM_MAX_SRC; i++) probe.src[i] = &h.in[i].t;
        lm_node_cost(&probe, &res->bytes, &res->flops);
        if (c->op == LM_OP_ATTENTION) res->flops = attention_flops(&h, c);
    }
    /* read the destination */
    {
        const int64_t nel = lm_tensor_nelements(dst);
        const size_t nbytes = lm_tensor_nbytes(dst);
        void *raw = malloc(nbytes + 16);
        res->out = malloc((size_t)nel * sizeof(float) + 16);
        res->n = nel;
        if (!raw || !res->out) {
            free(raw);
            st = lm_fail(LM_STATUS_OUT_OF_MEMORY, "harness: out of memory");
            goto done;
        }
        if ((st = be->ops->tensor_get(be, dst, raw, 0, nbytes))) {
            free(raw);
            goto done;
        }
        if (dst->type == LM_I32)
            for (int64_t i = 0; i < nel; i++) res->out[i] = (float)((int32_t *)raw)[i];
        else
            lm_dequant_row(dst->type, raw, res->out, nel);
        free(raw);
    }
    /* sentinel: arena bytes outside every arena tensor must be untouched */
    {
        uint8_t *back = malloc(arena_size);
        bool *covered = calloc(arena_size, 1);
        res->sentinel_ok = back && covered;
        if (back && covered && !be->ops->tensor_get(be, &whole, back, 0, (size_t)(ne / 4) * 4)) {
            for (int i = 0; i < g->n_tensors; i++) {
                const lm_tensor *t = &g->tensors[i];
                if (t->buf != arena) continue;
                size_t e = t->offs + lm_tensor_nbytes(t);
                for (size_t b = t->offs; b < e && b < arena_size; b++) covered[b] = true;
            }
            for (size_t b = 0; b < (size_t)(ne / 4) * 4; b++)
                if (!covered[b] && back[b] != SENTINEL) {
                    res->sentinel_ok = false;
                    break;
                }
        }
        free(back);
        free(covered);
    }
done:
    if (arena) be->ops->buffer_free(arena);
    free(arena_host);
    free(g);
    harness_free(&h);
    if (st) lm_case_result_free(res);
    return st;
}

void lm_case_result_free(lm_case_result *r) {
    free(r->out);
    r->out = NULL;
    r->n = 0;
}

int lm_conformance_run(const char *name, const char *label, bool verbose) { return lm_conformance_run_qmm(name, label, verbose, 0.0); }

int lm_conformance_run_qmm(const char *name, const char *label, bool verbose, double qmm_tol) {
    lm_backend *ref = NULL, *be = NULL;
    lm_backend_config cfg = {.device = 0, .n_threads = 2};
    if (lm_backend_create("ref", &cfg, &ref) || lm_backend_create(name, &cfg, &be)) {
        fprintf(stderr, "conformance: cannot create backends: %s\n", lm_last_error());
        lm_backend_destroy(ref);
        return 1;
    }
    int failures = 0;
    for (int i = 0; i < LM_N_OP_CASES; i++) {
        const lm_op_case *c = &lm_op_cases[i];
        char desc[160];
        lm_case_describe(c, desc, sizeof desc);
        for (uint64_t seed = 1; seed <= 2; seed++) {
            lm_case_result a, b;
            lm_status sa = lm_case_run(c, seed * 1000 + (uint64_t)i, ref, 1, &a);
            lm_status sb = lm_case_run(c, seed * 1000 + (uint64_t)i, be, 1, &b);
            if (sa || sb) {
                fprintf(stderr, "FAIL %-44s [%s] run failed: %s\n", desc, label, lm_last_error());
                if (!sa) lm_case_result_free(&a);
                failures++;
                break;
            }
            bool ok = a.n == b.n && b.sentinel_ok && a.sentinel_ok && tu_all_finite(a.out, a.n) && tu_all_finite(b.out, b.n);
            double err = ok ? tu_nmse(b.out, a.out, a.n) : INFINITY;
            const bool qmm = (c->op == LM_OP_MATMUL || c->op == LM_OP_MATMUL_ID) && lm_dtype_get(c->type)->quantized;
            const double tol = qmm && qmm_tol > c->tol ? qmm_tol : c->tol;
            if (tol == 0.0) ok = ok && err == 0.0;
            else ok = ok && err <= tol;
            if (verbose) fprintf(stderr, "%-48s %-12s seed %llu nmse %.3g (tol %.3g)\n", desc, label, (unsigned long long)seed, err, tol);
            if (!ok) {
                fprintf(stderr, "FAIL %-44s [%s] seed %llu: nmse %.3g (tol %.3g), sentinel %d\n", desc, label,
                        (unsigned long long)seed, err, tol, b.sentinel_ok);
                failures++;
            }
            lm_case_result_free(&a);
            lm_case_result_free(&b);
        }
    }
    lm_backend_destroy(ref);
    lm_backend_destroy(be);
    return failures;
}

const char *tu_transfer_round_trip(const char *name, size_t n) {
    static char err[512];
    lm_backend *be = NULL;
    lm_buffer *b = NULL;
    const lm_backend_config cfg = {0, 0};
    const size_t pad = 68, part0 = n / 3 + 1, partn = n / 2;
    float *x = malloc(n * 4), *y = calloc(n, 4);
    err[0] = 0;
    if (!x || !y) snprintf(err, sizeof err, "out of host memory");
    else if (lm_backend_create(name, &cfg, &be)) snprintf(err, sizeof err, "create: %s", lm_last_error());
    else if (be->ops->buffer_alloc(be, n * 4 + pad, LM_BUF_COMPUTE, &b)) snprintf(err, sizeof err, "alloc: %s", lm_last_error());
    if (!err[0]) {
        for (size_t i = 0; i < n; i++) x[i] = (float)i * 0.5f + 0.25f;
        lm_tensor t;
        const int64_t ne = (int64_t)n;
        lm_tensor_init(&t, LM_F32, 1, &ne);
        t.buf = b;
        t.offs = pad;
        if (be->ops->tensor_set(be, &t, x, 0, n * 4)) snprintf(err, sizeof err, "set: %s", lm_last_error());
        else if (be->ops->tensor_get(be, &t, y, 0, n * 4)) snprintf(err, sizeof err, "get: %s", lm_last_error());
        else if (memcmp(x, y, n * 4)) snprintf(err, sizeof err, "the data read back differs");
        else if (memset(y, 0, n * 4), be->ops->tensor_get(be, &t, y, 4 * part0, 4 * partn))
            snprintf(err, sizeof err, "partial get: %s", lm_last_error());
        else if (memcmp(x + part0, y, 4 * partn)) snprintf(err, sizeof err, "a partial read differs");
        else if (be->ops->tensor_get(be, &t, y, 4 * n - 4, 8) == LM_STATUS_OK)
            snprintf(err, sizeof err, "a read past the end of the tensor was not refused");
    }
    if (b) be->ops->buffer_free(b);
    lm_backend_destroy(be);
    free(x);
    free(y);
    return err[0] ? err : NULL;
}
