/*
 * gemma.c — Gemma 3 and Gemma 4 forward pass over ops.h (see ../shared/docs/gemma4.md).
 * No device names here: the same code records CPU, CUDA or Vulkan work.
 *
 * Per layer:   a = Norm(h); Q,K,V projections; per-head q/k norms; RoPE; (Gemma 4: V = Norm0(V),
 *              K=V layers store V only); attention over the cache; h += Norm(Wo o);
 *              h += Norm(MLP(Norm(h)))  or the MoE block; (E models) h += Norm(proj(gelu(gate h) * ple));
 *              h *= layer_scalar.
 * The residual h lives in one persistent tensor updated in place; everything else a layer
 * makes is released at the end of the layer.
 */
#include "models.h"

#include <math.h>

/* gated MLP: down(gelu(gate x) * up x) */
static lm_tensor *mlp(lm_graph *g, const lm_tensor *x, const lm_tensor *gate, const lm_tensor *up, const lm_tensor *down) {
    lm_tensor *a = lm_geglu(g, lm_matmul(g, gate, x), lm_matmul(g, up, x));
    return lm_matmul_hinted(g, down, a, LM_MM_X_OUTLIERS);
}

static lm_tensor *moe(lm_graph *g, const lm_model *m, const lm_layer *L, const lm_tensor *x) {
    const lm_hparams *hp = &m->hp;
    const float eps = hp->eps;
    const int64_t H = hp->n_embd, n = x->ne[1], F = hp->n_ff_exp;
    /* dense branch (a shared expert) */
    lm_tensor *A = mlp(g, lm_rms_norm(g, x, L->ffn_norm, NULL, eps), L->ffn_gate, L->ffn_up, L->ffn_down);
    A = lm_rms_norm(g, A, L->post_ffw_norm_1, NULL, eps);
    /* router on the raw residual: Norm0(x) * H^-0.5 * scale */
    lm_tensor *r = lm_scale(g, lm_rms_norm(g, x, L->gate_inp_scale, NULL, eps), 1.0f / sqrtf((float)H));
    lm_tensor *logits = lm_matmul(g, L->gate_inp, r);
    lm_tensor *ids = lm_topk(g, logits, hp->n_expert_used);
    /* routed experts, on their own device when the plan left them on the CPU: the normed input,
       the router's logits and the routes go there (the experts' scales are theirs), the weighted
       sum comes back */
    lm_tensor *y = lm_view3(g, lm_rms_norm(g, x, L->pre_ffw_norm_2, NULL, eps), H, 1, n);
    const int home = g->cur, there = lm_graph_device_of(g, L->down_exps);
    if (there != home) {
        lm_tensor *carry[3] = {y, ids, logits};
        lm_graph_switch(g, there, carry, 3);
        y = carry[0], ids = carry[1], logits = carry[2];
    }
    lm_tensor *w = lm_moe_weights(g, logits, ids, L->exp_scale);
    lm_tensor *act;
    if (L->gate_up_exps) {
        lm_tensor *gu = lm_matmul_id(g, L->gate_up_exps, y, ids); /* [2F, k, n]: gate rows first */
        if (lm_graph_status(g) != LM_STATUS_OK) return A;
        act = lm_geglu(g, lm_view(g, lm_tensor_cols(gu, 0, F)), lm_view(g, lm_tensor_cols(gu, F, F)));
    } else {
        act = lm_geglu(g, lm_matmul_id(g, L->gate_exps, y, ids), lm_matmul_id(g, L->up_exps, y, ids));
    }
    lm_tensor *d = lm_matmul_id_hinted(g, L->down_exps, act, ids, LM_MM_X_OUTLIERS); /* [H, k, n] */
    lm_tensor *B = lm_moe_sum(g, d, w);
    if (there != home) lm_graph_switch(g, home, &B, 1);
    B = lm_rms_norm(g, B, L->post_ffw_norm_2, NULL, eps);
    return lm_add(g, A, B);
}

lm_tensor *lm_gemma_forward(const lm_model *m, lm_kv *kv, lm_graph *g, const lm_step *s) {
    const lm_hparams *hp = &m->hp;
    const int64_t H = hp->n_embd, n = s->n_tokens, nh = hp->n_head;
    const float eps = hp->eps;
    const bool g4 = m->arch == LM_ARCH_GEMMA4;
    lm_fwd f = {.g = g, .kv = kv, .s = s};

    const lm_step_io *io = lm_fwd_stage(&f, m->tok_embd);
    f.h = lm_get_rows(g, m->tok_embd, io->tokens, hp->emb_scale); /* [H, n] residual */

    if (hp->n_embd_per_layer > 0) { /* [P * L, n] per-layer inputs (E models) */
        const int64_t P = hp->n_embd_per_layer, NL = hp->n_layer;
        io = lm_fwd_stage(&f, m->ple_tok_embd);
        f.ple = lm_get_rows(g, m->ple_tok_embd, io->tokens, sqrtf((float)P));
        io = lm_fwd_stage(&f, m->ple_proj);
        lm_tensor *c = lm_scale(g, lm_matmul(g, m->ple_proj, f.h), 1.0f / sqrtf((float)H));
        /* ple = (Norm(c; proj_norm) + t) * 2^-0.5, with rows of P */
        lm_tensor *sum = lm_rms_norm(g, lm_view2(g, c, P, NL * n), m->ple_proj_norm, lm_view2(g, f.ple, P, NL * n), eps);
        f.ple = lm_view2(g, lm_scale(g, sum, 1.0f / sqrtf(2.0f)), P * NL, n);
    }

    for (int il = 0; il < hp->n_layer; il++) {
        const lm_layer *L = &m->layers[il];
        const lm_layer *D = &m->layers[L->kv_layer]; /* owner of the cache this layer reads */
        lm_kv_layer *kl = &kv->layers[L->kv_layer];
        const int kind = L->sliding ? LM_KV_KIND_SWA : LM_KV_KIND_FULL;
        const lm_tensor *factors = L->rope_factors ? L->rope_freqs : NULL;
        const int64_t hd = L->head_dim, hdv = L->head_dim_v, nkv = L->n_head_kv;
        io = lm_fwd_stage(&f, L->wq);
        lm_tensor *h = f.h;
        lm_graph_mark mark = lm_graph_get_mark(g);

        /* ---- attention */
        lm_tensor *a = lm_rms_norm(g, h, L->attn_norm, NULL, eps);
        lm_tensor *q = lm_rms_norm(g, lm_view3(g, lm_matmul(g, L->wq, a), hd, nh, n), L->q_norm, NULL, eps);
        q = lm_rope(g, q, io->pos, factors, &L->rope);
        if (L->kv_layer == il) {
            lm_tensor *kp = lm_view3(g, lm_matmul(g, L->wk, a), hd, nkv, n);
            lm_tensor *v;
            if (L->k_eq_v) {
                v = lm_rms_norm(g, kp, NULL, NULL, eps); /* V = Norm0(K projection); K made in attention */
            } else {
                lm_tensor *k = lm_rope(g, lm_rms_norm(g, kp, L->k_norm, NULL, eps), io->pos, factors, &L->rope);
                lm_set_rows(g, &kl->k, lm_view2(g, k, hd * nkv, n), io->cells[kind]);
                v = lm_view3(g, lm_matmul(g, L->wv, a), hdv, nkv, n);
                if (g4) v = lm_rms_norm(g, v, NULL, NULL, eps);
            }
            lm_set_rows(g, &kl->v, lm_view2(g, v, hdv * nkv, n), io->cells[kind]);
        }
        const lm_kv_kind *kk = &kv->kind[kind];
        lm_attn_params ap = {
            .cells_per_seq = kk->cps,
            .page = kk->page,
            .ring = kk->ring,
            .window = kk->window,
            .scale = hp->attn_scale,
            .softcap = 0,
            .k_from_v = D->k_eq_v,
            .rope = D->rope,
        };
        const lm_tensor *K = kl->has_k ? &kl->k : &kl->v;
        lm_tensor *kc = lm_view3(g, K, hd, nkv, K->ne[1]);
        lm_tensor *vc = lm_view3(g, &kl->v, hdv, nkv, kl->v.ne[1]);
        lm_tensor *o = lm_attention(g, q, kc, vc, &kk->cell_pos[g->cur], &kk->pages[g->cur], io->pos, io->seq, D->k_eq_v ? D->k_norm : NULL,
                                    D->rope_factors ? D->rope_freqs : NULL, &ap);
        o = lm_matmul(g, L->wo, lm_view2(g, o, hdv * nh, n));
        lm_rms_norm_into(g, h, o, L->post_attn_norm, h, eps);

        /* ---- feed-forward */
        lm_tensor *ff;
        if (L->gate_inp) {
            ff = moe(g, m, L, h);
        } else {
            ff = mlp(g, lm_rms_norm(g, h, L->ffn_norm, NULL, eps), L->ffn_gate, L->ffn_up, L->ffn_down);
        }
        lm_rms_norm_into(g, h, ff, L->post_ffw_norm, h, eps);

        /* ---- per-layer input (E models) */
        if (f.ple) {
            const int64_t P = hp->n_embd_per_layer;
            lm_tensor *pl = lm_view(g, lm_tensor_cols(f.ple, (int64_t)il * P, P));
            lm_tensor *gte = lm_geglu(g, lm_matmul(g, L->inp_gate, h), pl);
            lm_rms_norm_into(g, h, lm_matmul_hinted(g, L->proj, gte, LM_MM_X_OUTLIERS), L->post_norm, h, eps);
        }
        if (L->out_scale != 1.0f) lm_scale_into(g, h, h, L->out_scale);
        lm_graph_release(g, mark);
    }

    f.ple = NULL;
    lm_tensor *logits = lm_fwd_logits(&f, m);
    if (logits && hp->final_softcap > 0) logits = lm_softcap(g, logits, hp->final_softcap);
    return logits;
}
