/*
 * elementwise.cu — add / mul (second operand one row: broadcast), scale, softcap, GeGLU, SwiGLU; the
 * embedding gather (get_rows, any weight type), set_rows (the KV-cache write) and cpy (type
 * conversion between strided views).
 *
 * Thread mapping: one thread per element of a row (blockIdx.x covers the row in 256-element
 * pieces), blockIdx.y walks rows (grid-stride above 65535). Bytes: each element read once per
 * operand and written once; these ops are bound by DRAM bandwidth and launch overhead (the
 * decode step's activations are a few KB, so launch count matters more than the kernel — which
 * is why the step is replayed as a CUDA graph).
 */
#include "internal.h"

namespace LM_CUDA_NS {

enum { EW_ADD, EW_MUL, EW_SCALE, EW_SOFTCAP, EW_GEGLU, EW_SWIGLU };

template <int OP> __global__ void __launch_bounds__(256) k_elementwise(view a, view b, view d, bool bcast, float f) {
    const int64_t j = (int64_t)blockIdx.x * 256 + threadIdx.x;
    if (j >= a.ne0) return;
    for (int64_t r = blockIdx.y; r < a.nrows; r += gridDim.y) {
        const float x = ((const float *)view_row(a, r))[j];
        float y = 0.0f, o;
        if constexpr (OP == EW_ADD || OP == EW_MUL || OP == EW_GEGLU || OP == EW_SWIGLU) y = ((const float *)(bcast ? b.p : view_row(b, r)))[j];
        if constexpr (OP == EW_ADD) o = x + y;
        else if constexpr (OP == EW_MUL) o = x * y;
        else if constexpr (OP == EW_SCALE) o = x * f;
        else if constexpr (OP == EW_SOFTCAP) o = f * tanhf(x / f);
        else if constexpr (OP == EW_SWIGLU) o = x / (1.0f + expf(-x)) * y;
        else o = 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x))) * y;
        ((float *)view_row(d, r))[j] = o;
    }
}

static unsigned grid_rows(int64_t rows) { return (unsigned)(rows < (int64_t)LM_MAX_GRID_YZ ? (rows > 0 ? rows : 1) : LM_MAX_GRID_YZ); }

void op_elementwise(ctx &c, const lm_node *n) {
    if (c.planning) return;
    const lm_tensor *a = n->src[0], *b = n->src[1];
    const view va = make_view(a, dptr(a)), vd = make_view(n->dst, dptr(n->dst));
    const view vb = b ? make_view(b, dptr(b)) : va;
    const bool bcast = b && lm_tensor_nrows(b) == 1 && lm_tensor_nrows(a) > 1;
    const dim3 grid(ceil_div(a->ne[0], 256), grid_rows(va.nrows));
    const float f = n->fp[0];
    switch (n->op) {
    case LM_OP_ADD: { auto k = k_elementwise<EW_ADD>; LM_KERNEL(c, k, grid, 256, 0, va, vb, vd, bcast, f); break; }
    case LM_OP_MUL: { auto k = k_elementwise<EW_MUL>; LM_KERNEL(c, k, grid, 256, 0, va, vb, vd, bcast, f); break; }
    case LM_OP_SCALE: { auto k = k_elementwise<EW_SCALE>; LM_KERNEL(c, k, grid, 256, 0, va, vb, vd, bcast, f); break; }
    case LM_OP_SOFTCAP: { auto k = k_elementwise<EW_SOFTCAP>; LM_KERNEL(c, k, grid, 256, 0, va, vb, vd, bcast, f); break; }
    case LM_OP_SWIGLU: { auto k = k_elementwise<EW_SWIGLU>; LM_KERNEL(c, k, grid, 256, 0, va, vb, vd, bcast, f); break; }
    default: { auto k = k_elementwise<EW_GEGLU>; LM_KERNEL(c, k, grid, 256, 0, va, vb, vd, bcast, f); break; }
    }
}

/* ---- get_rows: dst[:, i] = dequant(table[:, ids[i]]) * scale ------------------------------- */
template <int T>
__global__ void __launch_bounds__(256) k_get_rows(const uint8_t *tab, int64_t row_bytes, int64_t rows, int64_t ne0,
                                                  const int32_t *ids, int64_t n, float *d, int64_t d_nb1, float scale) {
    const int64_t j = (int64_t)blockIdx.x * 256 + threadIdx.x;
    if (j >= ne0) return;
    for (int64_t i = blockIdx.y; i < n; i += gridDim.y) {
        const int32_t r = ids[i];
        float *o = (float *)((char *)d + i * d_nb1);
        /* an id outside the table poisons the row instead of reading out of bounds */
        o[j] = r >= 0 && r < rows ? dq<T>(tab + r * row_bytes, (unsigned)j) * scale : __int_as_float(0x7fc00000);
    }
}

template <int T>
__global__ void __launch_bounds__(256) k_get_rows_planar(wsrc s, int64_t rows, int64_t ne0, const int32_t *ids, int64_t n, float *d,
                                                         int64_t d_nb1, float scale) {
    const int64_t j = (int64_t)blockIdx.x * 256 + threadIdx.x;
    if (j >= ne0) return;
    for (int64_t i = blockIdx.y; i < n; i += gridDim.y) {
        const int32_t r = ids[i];
        float *o = (float *)((char *)d + i * d_nb1);
        o[j] = r >= 0 && r < rows ? dq_planar<T>(s, r, (unsigned)j) * scale : __int_as_float(0x7fc00000);
    }
}

void op_get_rows(ctx &c, const lm_node *n) {
    if (c.planning) return;
    const lm_tensor *tab = n->src[0], *ids = n->src[1], *d = n->dst;
    const dim3 grid(ceil_div(tab->ne[0], 256), grid_rows(ids->ne[0]));
    wsrc ws;
    bool planar = false;
    weight_src(c, tab, ws, planar);
    dispatch_type(tab->type, [&](auto tc_) {
        constexpr int T = decltype(tc_)::value;
        if constexpr (wide_traits<T>::planar) {
            if (planar) {
                auto k = k_get_rows_planar<T>;
                LM_KERNEL(c, k, grid, 256, 0, ws, tab->ne[1], tab->ne[0], dp<const int32_t>(ids), ids->ne[0], dp<float>(d),
                          (int64_t)d->nb[1], n->fp[0]);
                return;
            }
        }
        auto k = k_get_rows<T>;
        LM_KERNEL(c, k, grid, 256, 0, (const uint8_t *)dptr(tab), (int64_t)tab->nb[1], tab->ne[1], tab->ne[0],
                  dp<const int32_t>(ids), ids->ne[0], dp<float>(d), (int64_t)d->nb[1], n->fp[0]);
    });
}

/* ---- set_rows: dst[:, idx[i]] = convert(src[:, i]) ----------------------------------------- */
template <int TD>
__global__ void __launch_bounds__(256) k_set_rows(const char *src, int64_t s_nb1, int64_t ne0, int64_t n, const int32_t *idx,
                                                  char *d, int64_t d_nb1, int64_t d_rows) {
    const int64_t j = (int64_t)blockIdx.x * 256 + threadIdx.x;
    if (j >= ne0) return;
    for (int64_t i = blockIdx.y; i < n; i += gridDim.y) {
        const int32_t r = idx[i];
        if (r < 0 || r >= d_rows) continue; /* never write outside the destination */
        if constexpr (TD == LM_I32) {
            ((int32_t *)(d + r * d_nb1))[j] = ((const int32_t *)(src + i * s_nb1))[j];
        } else if constexpr (TD == LM_Q8_0) {
            /* a warp is one block of 32 (ne0 % 32 == 0, 256-thread blocks): the block's amax by
               shuffles, lane 0 writes the f16 scale; lm_quant_row_q8_0's arithmetic */
            const float x = ((const float *)(src + i * s_nb1))[j];
            const float amax = warp_max(fabsf(x)), dd = amax / 127.0f, id = dd != 0.0f ? 1.0f / dd : 0.0f;
            uint8_t *b = (uint8_t *)(d + r * d_nb1) + (j / 32) * 34;
            if (j % 32 == 0) *(uint16_t *)b = f2h(dd);
            float q = roundf(x * id);
            q = q != q ? 0.0f : fminf(fmaxf(q, -127.0f), 127.0f);
            b[2 + j % 32] = (uint8_t)(int8_t)q;
        } else if constexpr (TD == LM_E4M3) {
            ((uint8_t *)(d + r * d_nb1))[j] = (uint8_t)f2e4m3(((const float *)(src + i * s_nb1))[j]);
        } else {
            stf<TD>(d + r * d_nb1, j, ((const float *)(src + i * s_nb1))[j]);
        }
    }
}

void op_set_rows(ctx &c, const lm_node *n) {
    if (c.planning) return;
    const lm_tensor *s = n->src[0], *idx = n->src[1], *d = n->dst;
    const dim3 grid(ceil_div(s->ne[0], 256), grid_rows(s->ne[1]));
    auto go = [&](auto k) {
        LM_KERNEL(c, k, grid, 256, 0, (const char *)dptr(s), (int64_t)s->nb[1], s->ne[0], s->ne[1], dp<const int32_t>(idx), dptr(d),
                  (int64_t)d->nb[1], d->ne[1]);
    };
    switch (d->type) {
    case LM_F32: go(k_set_rows<LM_F32>); break;
    case LM_F16: go(k_set_rows<LM_F16>); break;
    case LM_BF16: go(k_set_rows<LM_BF16>); break;
    case LM_Q8_0: go(k_set_rows<LM_Q8_0>); break;
    case LM_E4M3: go(k_set_rows<LM_E4M3>); break;
    default: go(k_set_rows<LM_I32>); break;
    }
}

/* ---- cpy: dst = convert(src), any strides ------------------------------------------------- */
template <int TS, int TD> __global__ void __launch_bounds__(256) k_cpy(view s, view d) {
    const int64_t j = (int64_t)blockIdx.x * 256 + threadIdx.x;
    if (j >= s.ne0) return;
    for (int64_t r = blockIdx.y; r < s.nrows; r += gridDim.y) stf<TD>(view_row(d, r), j, ldf<TS>(view_row(s, r), j));
}

template <int TS> static void cpy_to(ctx &c, const view &vs, const view &vd, lm_dtype td, dim3 grid) {
    switch (td) {
    case LM_F32: { auto k = k_cpy<TS, LM_F32>; LM_KERNEL(c, k, grid, 256, 0, vs, vd); break; }
    case LM_F16: { auto k = k_cpy<TS, LM_F16>; LM_KERNEL(c, k, grid, 256, 0, vs, vd); break; }
    default: { auto k = k_cpy<TS, LM_BF16>; LM_KERNEL(c, k, grid, 256, 0, vs, vd); break; }
    }
}

void op_cpy(ctx &c, const lm_node *n) {
    if (c.planning) return;
    const lm_tensor *s = n->src[0], *d = n->dst;
    const view vs = make_view(s, dptr(s)), vd = make_view(d, dptr(d));
    const dim3 grid(ceil_div(s->ne[0], 256), grid_rows(vs.nrows));
    switch (s->type) {
    case LM_F32: cpy_to<LM_F32>(c, vs, vd, d->type, grid); break;
    case LM_F16: cpy_to<LM_F16>(c, vs, vd, d->type, grid); break;
    default: cpy_to<LM_BF16>(c, vs, vd, d->type, grid); break;
    }
}

} // namespace LM_CUDA_NS
