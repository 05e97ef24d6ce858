/*
 * common.c — what every model family's forward pass shares: views of a reshaped tensor, and the
 * stage switch of split execution (the hidden state follows the weights to their device).
 */
#include "models.h"

lm_tensor *lm_view3(lm_graph *g, const lm_tensor *t, int64_t ne0, int64_t ne1, int64_t ne2) {
    const int64_t ne[3] = {ne0, ne1, ne2};
    return lm_view(g, lm_tensor_reshape(t, 3, ne));
}

lm_tensor *lm_view2(lm_graph *g, const lm_tensor *t, int64_t ne0, int64_t ne1) {
    const int64_t ne[2] = {ne0, ne1};
    return lm_view(g, lm_tensor_reshape(t, 2, ne));
}

const lm_step_io *lm_fwd_stage(lm_fwd *f, const lm_tensor *w) {
    lm_graph *g = f->g;
    const int d = lm_graph_device_of(g, w);
    if (d != g->cur) {
        lm_tensor *carry[2] = {f->h, f->ple};
        lm_graph_switch(g, d, carry, 2);
        f->h = carry[0];
        f->ple = carry[1];
    }
    const lm_step_io *io = &f->s->io[g->cur];
    if (!f->pos_done[g->cur]) {
        f->pos_done[g->cur] = true;
        for (int k = 0; k < LM_KV_KINDS; k++) {
            lm_tensor *cp = &f->kv->kind[k].cell_pos[g->cur];
            if (!f->kv->kind[k].used || cp->ne[0] < 1) continue;
            lm_set_rows(g, lm_view2(g, cp, 1, cp->ne[0]), lm_view2(g, io->pos, 1, f->s->n_tokens), io->cells[k]);
        }
    }
    return io;
}

lm_tensor *lm_fwd_logits(lm_fwd *f, const lm_model *m) {
    if (f->s->n_outputs == 0) return NULL;
    lm_graph *g = f->g;
    const lm_step_io *io = lm_fwd_stage(f, m->output);
    const lm_tensor *hx = f->h;
    if (f->s->n_outputs < f->s->n_tokens) hx = lm_get_rows(g, f->h, io->out_ids, 1.0f);
    return lm_matmul(g, m->output, lm_rms_norm(g, hx, m->output_norm, NULL, m->hp.eps));
}
