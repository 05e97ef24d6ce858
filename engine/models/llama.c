/*
 * llama.c — the Llama-family decoder over ops.h (llama: Llama 2/3, SmolLM2; qwen2: Qwen2 /
 * Qwen2.5, DeepSeek-R1-Distill-Qwen). No device names here, as in gemma.c.
 *
 * Per layer:   a = Norm(h); q,k,v = W a (+ bias: Qwen2); RoPE on q and k (llama: adjacent
 *              pairs, since the GGUF converter permuted the weights; qwen2: halves); attention
 *              over the cache with scale head_dim^-0.5; h += Wo o;
 *              h += down(silu(gate Norm(h)) * up Norm(h)).
 * Logits = output(Norm(h)) (output tied to the embedding when the file has no output matrix).
 * The residual h lives in one tensor updated in place; everything else a layer makes is
 * released at the end of the layer.
 */
#include "models.h"

static lm_tensor *biased(lm_graph *g, const lm_tensor *w, const lm_tensor *b, const lm_tensor *x) {
    lm_tensor *y = lm_matmul(g, w, x);
    return b ? lm_add(g, y, b) : y;
}

lm_tensor *lm_llama_forward(const lm_model *m, lm_kv *kv, lm_graph *g, const lm_step *s) {
    const lm_hparams *hp = &m->hp;
    const int64_t n = s->n_tokens, nh = hp->n_head;
    const float eps = hp->eps;
    lm_fwd f = {.g = g, .kv = kv, .s = s};

    const lm_step_io *io = lm_fwd_stage(&f, m->tok_embd);
    f.h = lm_get_rows(g, m->tok_embd, io->tokens, 1.0f); /* [H, n] residual */

    for (int il = 0; il < hp->n_layer; il++) {
        const lm_layer *L = &m->layers[il];
        lm_kv_layer *kl = &kv->layers[il];
        const int kind = L->sliding ? LM_KV_KIND_SWA : LM_KV_KIND_FULL;
        const lm_tensor *factors = L->rope_factors ? L->rope_freqs : NULL;
        const int64_t hd = L->head_dim, hdv = L->head_dim_v, nkv = L->n_head_kv;
        io = lm_fwd_stage(&f, L->wq);
        lm_tensor *h = f.h;
        lm_graph_mark mark = lm_graph_get_mark(g);

        /* ---- attention */
        lm_tensor *a = lm_rms_norm(g, h, L->attn_norm, NULL, eps);
        lm_tensor *q = lm_rope(g, lm_view3(g, biased(g, L->wq, L->bq, a), hd, nh, n), io->pos, factors, &L->rope);
        lm_tensor *k = lm_rope(g, lm_view3(g, biased(g, L->wk, L->bk, a), hd, nkv, n), io->pos, factors, &L->rope);
        lm_tensor *v = biased(g, L->wv, L->bv, a);
        lm_set_rows(g, &kl->k, lm_view2(g, k, hd * nkv, n), io->cells[kind]);
        lm_set_rows(g, &kl->v, lm_view2(g, v, hdv * nkv, n), io->cells[kind]);
        const lm_kv_kind *kk = &kv->kind[kind];
        lm_attn_params ap = {
            .cells_per_seq = kk->cps,
            .page = kk->page,
            .ring = kk->ring,
            .window = kk->window,
            .scale = hp->attn_scale,
            .softcap = 0,
            .k_from_v = false,
            .rope = L->rope,
        };
        lm_tensor *kc = lm_view3(g, &kl->k, hd, nkv, kl->k.ne[1]);
        lm_tensor *vc = lm_view3(g, &kl->v, hdv, nkv, kl->v.ne[1]);
        lm_tensor *o = lm_attention(g, q, kc, vc, &kk->cell_pos[g->cur], &kk->pages[g->cur], io->pos, io->seq, NULL, NULL, &ap);
        o = biased(g, L->wo, L->bo, lm_view2(g, o, hdv * nh, n));
        lm_add_into(g, h, h, o);

        /* ---- feed-forward */
        lm_tensor *x = lm_rms_norm(g, h, L->ffn_norm, NULL, eps);
        lm_tensor *act = lm_swiglu(g, lm_matmul(g, L->ffn_gate, x), lm_matmul(g, L->ffn_up, x));
        lm_add_into(g, h, h, lm_matmul_hinted(g, L->ffn_down, act, LM_MM_X_OUTLIERS));
        lm_graph_release(g, mark);
    }

    return lm_fwd_logits(&f, m);
}
