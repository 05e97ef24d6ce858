/*
 * backend_cuda.cu — the CUDA device behind lumen's backend interface (engine/backend.h).
 *
 * Built twice from the same source: by nvcc as backend "cuda" (a real GPU through the CUDA runtime
 * and cuBLAS), and by the host C++ compiler as backend "cuda-emu" (the kernels run on the CPU
 * through cuda/emu, so CI checks them without a GPU). Everything device-specific goes through
 * cuda/rt.h.
 *
 *   buffers    cudaMalloc'ed device memory (never managed memory); lm_buffer.host is NULL
 *   transfers  through a two-slot ring of pinned staging buffers: the host fills one slot while
 *              the device copies the other; reads are pipelined the same way
 *   a step     run() records the nodes (deep copies: the graph reuses its tensor slots);
 *              submit() plans (scratch sizes, rope tables: anything that allocates or copies
 *              synchronously), then launches every node on one stream — or replays a CUDA
 *              graph captured for the same node list (same ops, parameters, shapes and
 *              addresses: every decode step of one batch shape). Positions, cells and lengths
 *              are read by the kernels from device memory, so a replay computes the new step.
 *              A node list is captured the second time it is seen in a row (prefill shapes that
 *              occur once are never captured); LUMEN_CUDA_GRAPHS=0 turns graphs off.
 *   profiling  graphs off; an event pair around every node; per-op device time at sync()
 */
#include "internal.h"

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#ifdef __CUDACC__
#define LM_CUDA_OPS lm_cuda_backend_ops
#else
#define LM_CUDA_OPS lm_cuda_emu_backend_ops
#endif
extern "C" const lm_backend_ops LM_CUDA_OPS;

namespace LM_CUDA_NS {

static const size_t STAGE_BYTES = 16u << 20;
static const size_t MAX_GRAPHS = 16;

#ifdef __CUDACC__
static const char *const BACKEND_NAME = "cuda";
#else
static const char *const BACKEND_NAME = "cuda-emu";
#endif

void latch(ctx &c, lm_status st, const char *fmt, ...) {
    if (c.be->err != LM_STATUS_OK) return;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    lm_backend_latch(c.be, st, "%s", msg);
}

void check_launch(ctx &c, int err, const char *what) {
    if (err) latch(c, LM_STATUS_BACKEND, "kernel %s: %s", what, rt::error_string(err));
}

void *scratch(ctx &c, size_t bytes) {
    const size_t at = c.scratch_used;
    c.scratch_used += (bytes + 255) / 256 * 256;
    if (c.planning) return nullptr;
    if (c.scratch_used > c.scratch_size) {
        latch(c, LM_STATUS_BACKEND, "scratch use differs between planning and launching (a bug)");
        return nullptr;
    }
    return (char *)c.scratch + at;
}

static lm_status rt_fail(int e, const char *what) {
    return lm_fail(e == 2 ? LM_STATUS_OUT_OF_MEMORY : LM_STATUS_BACKEND, "%s: %s: %s", BACKEND_NAME, what, rt::error_string(e));
}

/* ---- rope tables --------------------------------------------------------------------------- */

static lm_status tensor_get_impl(ctx &c, const lm_tensor *t, void *dst, size_t offs, size_t size);

const uint64_t *rope_freqs(ctx &c, const lm_rope_params &rp, const lm_tensor *factors) {
    for (const rope_table &r : c.ropes)
        if (!memcmp(&r.rp, &rp, sizeof rp) && r.fbuf == (factors ? factors->buf : nullptr) &&
            r.foffs == (factors ? factors->offs : 0))
            return r.dev;
    if (!c.planning) {
        latch(c, LM_STATUS_BACKEND, "rope table was not made while planning (a bug)");
        return nullptr;
    }
    const size_t n = rp.n_pairs > 0 ? (size_t)rp.n_pairs : 1;
    std::vector<float> fac;
    if (factors) {
        /* weights do not change: read the factors once */
        fac.resize(n);
        if (tensor_get_impl(c, factors, fac.data(), 0, n * sizeof(float)) != LM_STATUS_OK) {
            latch(c, LM_STATUS_BACKEND, "cannot read rope frequency factors: %s", lm_last_error());
            return nullptr;
        }
    }
    std::vector<uint64_t> g(n, 0);
    for (int32_t i = 0; i < rp.n_pairs; i++) {
        /* turns per position, f / (2 pi), as a 64-bit binary fraction (whole turns wrap away) */
        long double f = (long double)rp.freq_scale * powl((long double)rp.theta, -2.0L * (long double)i / (long double)rp.freq_dim);
        if (factors) f /= (long double)fac[i];
        long double turns = f / (2.0L * 3.14159265358979323846264338327950288L);
        turns -= floorl(turns);
        g[i] = std::isfinite((double)turns) ? (uint64_t)(turns * 18446744073709551616.0L) : 0;
    }
    rope_table r;
    r.rp = rp;
    r.fbuf = factors ? factors->buf : nullptr;
    r.foffs = factors ? factors->offs : 0;
    void *d = nullptr;
    int e = rt::malloc_device(&d, n * 8);
    if (!e) e = rt::memcpy_h2d(d, g.data(), n * 8, c.stream);
    if (!e) e = rt::stream_sync(c.stream);
    if (e) {
        if (d) rt::free_device(d);
        latch(c, LM_STATUS_BACKEND, "cannot make a rope table: %s", rt::error_string(e));
        return nullptr;
    }
    r.dev = (uint64_t *)d;
    c.ropes.push_back(r);
    return r.dev;
}

/* ---- device and buffers -------------------------------------------------------------------- */

static int cu_device_count(void) {
    int n = 0;
    rt::device_count(&n);
    return n;
}

static void clear_graphs(ctx &c) {
    for (graph_entry &g : c.graphs) rt::graph_destroy(g.exec);
    c.graphs.clear();
}

static void cu_destroy(lm_backend *be) {
    if (!be) return;
    ctx *c = (ctx *)be->impl;
    if (c) {
        rt::stream_sync(c->stream);
        clear_graphs(*c);
        for (rope_table &r : c->ropes) rt::free_device(r.dev);
        if (c->scratch) rt::free_device(c->scratch);
        for (int i = 0; i < 2; i++) {
            if (c->stage[i]) rt::free_host(c->stage[i]);
            if (c->stage_ev[i]) rt::event_destroy(c->stage_ev[i]);
        }
        for (rt::event_t e : c->prof_ev) rt::event_destroy(e);
        if (c->blas) rt::blas_destroy(c->blas);
        if (c->stream) rt::stream_destroy(c->stream);
        delete c;
    }
    free(be);
}

static lm_status cu_create(const lm_backend_config *cfg, lm_backend **out) {
    *out = nullptr;
    lm_backend *be = (lm_backend *)calloc(1, sizeof *be);
    if (!be) return lm_fail(LM_STATUS_OUT_OF_MEMORY, "%s: out of host memory", BACKEND_NAME);
    ctx *c = new ctx();
    be->ops = &LM_CUDA_OPS;
    be->impl = c;
    c->be = be;
    c->dev = cfg->device;
    int e;
    if ((e = rt::set_device(c->dev)) || (e = rt::get_props(c->dev, &c->props))) {
        lm_status st = rt_fail(e, "cannot open the device");
        cu_destroy(be);
        return st;
    }
    if ((e = rt::stream_create(&c->stream)) || (e = rt::blas_create(&c->blas))) {
        lm_status st = rt_fail(e, "cannot create a stream / cuBLAS handle");
        cu_destroy(be);
        return st;
    }
    for (int i = 0; i < 2; i++)
        if ((e = rt::malloc_host(&c->stage[i], STAGE_BYTES)) || (e = rt::event_create(&c->stage_ev[i]))) {
            lm_status st = rt_fail(e, "cannot allocate pinned staging memory");
            cu_destroy(be);
            return st;
        }
    const char *g = getenv("LUMEN_CUDA_GRAPHS");
    c->use_graphs = !(g && g[0] == '0');
    const char *rp = getenv("LUMEN_CUDA_REPACK");
    c->repack = !(rp && rp[0] == '0');
    *out = be;
    return LM_STATUS_OK;
}

static lm_status cu_device_info(lm_backend *be, lm_device_info *out) {
    ctx &c = *(ctx *)be->impl;
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%.127s", c.props.name);
    size_t fr = 0, tot = 0;
    if (int e = rt::mem_info(&fr, &tot)) return rt_fail(e, "cudaMemGetInfo");
    out->memory_total = tot;
    out->memory_free = fr;
    out->bandwidth_gbs = c.props.bandwidth_gbs;
    out->compute_major = c.props.cc_major;
    out->compute_minor = c.props.cc_minor;
    out->unified_memory = false;
    out->max_alloc = 0;
    return LM_STATUS_OK;
}

static lm_status cu_buffer_alloc(lm_backend *be, size_t size, int usage, lm_buffer **out) {
    *out = nullptr;
    void *p = nullptr;
    const size_t n = size ? size : 256;
    if (int e = rt::malloc_device(&p, n)) {
        rt::last_error();
        size_t fr = 0, tot = 0;
        rt::mem_info(&fr, &tot);
        return lm_fail(LM_STATUS_OUT_OF_MEMORY, "%s: cannot allocate %.1f MiB of device memory (%.1f MiB free of %.1f MiB): %s",
                       BACKEND_NAME, (double)n / (1 << 20), (double)fr / (1 << 20), (double)tot / (1 << 20),
                       rt::error_string(e));
    }
    lm_buffer *b = (lm_buffer *)calloc(1, sizeof *b);
    cu_buf *cb = (cu_buf *)calloc(1, sizeof *cb);
    if (!b || !cb) {
        free(b);
        free(cb);
        rt::free_device(p);
        return lm_fail(LM_STATUS_OUT_OF_MEMORY, "%s: out of host memory", BACKEND_NAME);
    }
    cb->ptr = p;
    cb->size = n;
    b->be = be;
    b->size = size;
    b->impl = cb;
    b->usage = usage;
    *out = b;
    return LM_STATUS_OK;
}

static void cu_buffer_free(lm_buffer *b) {
    if (!b) return;
    ctx &c = *(ctx *)b->be->impl;
    /* graphs may hold its address: drop them; the device may still be using it: wait */
    rt::stream_sync(c.stream);
    clear_graphs(c);
    for (size_t i = c.packed.size(); i-- > 0;)
        if (c.packed[i].buf == b) c.packed.erase(c.packed.begin() + (long)i);
    /* rope tables made from frequency factors in this buffer are stale once it goes */
    for (size_t i = c.ropes.size(); i-- > 0;)
        if (c.ropes[i].fbuf == b) {
            rt::free_device(c.ropes[i].dev);
            c.ropes.erase(c.ropes.begin() + (long)i);
        }
    cu_buf *cb = (cu_buf *)b->impl;
    rt::free_device(cb->ptr);
    free(cb);
    free(b);
}

static bool check_range(const lm_tensor *t, size_t offs, size_t size, const char *what) {
    if (!t->buf || !t->buf->impl) return lm_fail(LM_STATUS_INVALID_ARGUMENT, "%s: %s: tensor has no buffer", BACKEND_NAME, what), false;
    const size_t span = lm_tensor_nbytes(t);
    if (offs > span || size > span - offs || t->offs + span > ((cu_buf *)t->buf->impl)->size)
        return lm_fail(LM_STATUS_INVALID_ARGUMENT, "%s: %s of %zu bytes at %zu outside tensor '%s' (%zu bytes)", BACKEND_NAME, what,
                       size, offs, t->name, span),
               false;
    return true;
}

/* the repacked region overlapping bytes [a, a + n) of buffer b, or -1 */
static long packed_overlap(const ctx &c, const lm_buffer *b, size_t a, size_t n) {
    for (size_t i = 0; i < c.packed.size(); i++) {
        const repacked &r = c.packed[i];
        if (r.buf == b && a < r.offs + r.size && r.offs < a + n) return (long)i;
    }
    return -1;
}

/* GGUF blocks <-> planes of block fields (repack.cuh); `to_planes` or back */
static void repack_bytes(lm_dtype t, const uint8_t *src, uint8_t *dst, int64_t nblk, bool to_planes) {
    repack_field f[4];
    const int nf = repack_fields(t, f);
    const int64_t bs = (int64_t)lm_dtype_get(t)->block_bytes;
    int64_t plane = 0;
    for (int k = 0; k < nf; k++) {
        for (int64_t g = 0; g < nblk; g++) {
            if (to_planes) memcpy(dst + plane + g * f[k].size, src + g * bs + f[k].off, (size_t)f[k].size);
            else memcpy(dst + g * bs + f[k].off, src + plane + g * f[k].size, (size_t)f[k].size);
        }
        plane += nblk * f[k].size;
    }
}

static lm_status upload(ctx &c, char *dst, const void *src, size_t size) {
    int e = 0;
    for (size_t o = 0, k = 0; o < size && !e; o += STAGE_BYTES, k++) {
        const int s = (int)(k & 1);
        const size_t n = size - o < STAGE_BYTES ? size - o : STAGE_BYTES;
        if (c.stage_busy[s] && (e = rt::event_sync(c.stage_ev[s]))) break;
        memcpy(c.stage[s], (const char *)src + o, n);
        if ((e = rt::memcpy_h2d(dst + o, c.stage[s], n, c.stream))) break;
        e = rt::event_record(c.stage_ev[s], c.stream);
        c.stage_busy[s] = true;
    }
    /* no wait here: the data is in the staging slot, the copy is ordered before every later use
       on the stream, and a slot is reused only after its event (the per-step input upload
       stays off the host's critical path) */
    return e ? rt_fail(e, "host to device copy") : LM_STATUS_OK;
}

static lm_status cu_tensor_set(lm_backend *be, lm_tensor *t, const void *src, size_t offs, size_t size) {
    ctx &c = *(ctx *)be->impl;
    if (!check_range(t, offs, size, "tensor_set")) return LM_STATUS_INVALID_ARGUMENT;
    const size_t whole = lm_tensor_nbytes(t);
    repack_field f[4];
    const bool pack = c.repack && (t->buf->usage & LM_BUF_WEIGHTS) && offs == 0 && size == whole && lm_tensor_is_contiguous(t) &&
                      repack_fields(t->type, f) > 0 && (uintptr_t)dptr(t) % 16 == 0;
    /* the bytes of a repacked tensor may only be replaced as a whole */
    const long k = packed_overlap(c, t->buf, t->offs + offs, size);
    if (k >= 0) {
        const repacked &r = c.packed[(size_t)k];
        if (r.offs != t->offs + offs || r.size != size)
            return lm_fail(LM_STATUS_UNSUPPORTED, "%s: partial write into repacked weight tensor '%s'", BACKEND_NAME, t->name);
        c.packed.erase(c.packed.begin() + k);
    }
    if (!pack) return upload(c, dptr(t) + offs, src, size);
    const int64_t nblk = (int64_t)(size / (size_t)lm_dtype_get(t->type)->block_bytes);
    uint8_t *tmp = (uint8_t *)malloc(size);
    if (!tmp) return lm_fail(LM_STATUS_OUT_OF_MEMORY, "%s: out of host memory repacking '%s'", BACKEND_NAME, t->name);
    repack_bytes(t->type, (const uint8_t *)src, tmp, nblk, true);
    lm_status st = upload(c, dptr(t), tmp, size);
    free(tmp);
    if (st) return st;
    repacked r;
    r.buf = t->buf;
    r.offs = t->offs;
    r.size = size;
    r.type = t->type;
    r.rows = lm_tensor_nrows(t);
    r.nblk = nblk;
    r.row_bytes = t->nb[1];
    c.packed.push_back(r);
    return LM_STATUS_OK;
}

static lm_status tensor_get_impl(ctx &c, const lm_tensor *t, void *dst, size_t offs, size_t size) {
    if (!check_range(t, offs, size, "tensor_get")) return LM_STATUS_INVALID_ARGUMENT;
    const char *src = dptr(t) + offs;
    int e = 0;
    /* chunk k copies into slot k & 1 while the host drains chunk k - 1 */
    const size_t nchunks = (size + STAGE_BYTES - 1) / STAGE_BYTES;
    for (size_t k = 0; k <= nchunks && !e; k++) {
        if (k < nchunks) {
            const int s = (int)(k & 1);
            const size_t o = k * STAGE_BYTES, n = size - o < STAGE_BYTES ? size - o : STAGE_BYTES;
            if ((e = rt::memcpy_d2h(c.stage[s], src + o, n, c.stream))) break;
            if ((e = rt::event_record(c.stage_ev[s], c.stream))) break;
        }
        if (k > 0) {
            const size_t j = k - 1, o = j * STAGE_BYTES, n = size - o < STAGE_BYTES ? size - o : STAGE_BYTES;
            const int s = (int)(j & 1);
            if ((e = rt::event_sync(c.stage_ev[s]))) break;
            memcpy((char *)dst + o, c.stage[s], n);
        }
    }
    if (e) {
        rt::stream_sync(c.stream);
        return rt_fail(e, "device to host copy");
    }
    return LM_STATUS_OK;
}

static lm_status cu_tensor_get(lm_backend *be, const lm_tensor *t, void *dst, size_t offs, size_t size) {
    ctx &c = *(ctx *)be->impl;
    if (!check_range(t, offs, size, "tensor_get")) return LM_STATUS_INVALID_ARGUMENT;
    const long k = packed_overlap(c, t->buf, t->offs + offs, size);
    if (k < 0) return tensor_get_impl(c, t, dst, offs, size);
    /* a repacked tensor reads back in its file layout, as a whole */
    const repacked r = c.packed[(size_t)k];
    if (r.offs != t->offs + offs || r.size != size)
        return lm_fail(LM_STATUS_UNSUPPORTED, "%s: partial read of repacked weight tensor '%s'", BACKEND_NAME, t->name);
    uint8_t *tmp = (uint8_t *)malloc(size);
    if (!tmp) return lm_fail(LM_STATUS_OUT_OF_MEMORY, "%s: out of host memory", BACKEND_NAME);
    lm_status st = tensor_get_impl(c, t, tmp, offs, size);
    if (!st) repack_bytes(r.type, tmp, (uint8_t *)dst, r.nblk, false);
    free(tmp);
    return st;
}

bool weight_src(const ctx &c, const lm_tensor *t, wsrc &s, bool &planar) {
    memset(&s, 0, sizeof s);
    planar = false;
    if (!c.repack || !t->buf) return false;
    for (const repacked &r : c.packed) {
        if (r.buf != t->buf || t->offs < r.offs || t->offs >= r.offs + r.size) continue;
        const size_t rel = t->offs - r.offs;
        if (t->type != r.type || (size_t)t->nb[1] != r.row_bytes || rel % r.row_bytes) return false;
        s.w = (const uint8_t *)((cu_buf *)t->buf->impl)->ptr + r.offs;
        s.nblk = r.nblk;
        s.row0 = (int64_t)(rel / r.row_bytes);
        s.bpr = t->ne[0] / lm_dtype_get(t->type)->block;
        s.row_bytes = (int64_t)t->nb[1];
        planar = true;
        return true;
    }
    if ((t->type == LM_Q4_K || t->type == LM_Q5_K) && (uintptr_t)dptr(t) % 16 == 0 && t->nb[1] % 16 == 0 &&
        (t->ne[2] == 1 || t->nb[2] % 16 == 0)) {
        s.w = (const uint8_t *)dptr(t);
        s.row_bytes = (int64_t)t->nb[1];
        s.bpr = t->ne[0] / 256;
        return true;
    }
    return false;
}

/* ---- ops ------------------------------------------------------------------------------------ */

static bool on_device(lm_backend *be, const lm_tensor *t) { return !t || (t->buf && t->buf->be == be && !t->buf->host); }

static bool is_float(lm_dtype t) { return t == LM_F32 || t == LM_F16 || t == LM_BF16; }
/* the types the weight kernels take (those dispatch_type knows) */
static bool is_weight_type(lm_dtype t) { return dispatch_type(t, [](auto) {}); }

static bool cu_supports(lm_backend *be, const lm_node *n) {
    if (!on_device(be, n->dst)) return false;
    for (int i = 0; i < LM_MAX_SRC; i++)
        if (!on_device(be, n->src[i])) return false;
    const lm_tensor *a = n->src[0], *d = n->dst;
    switch (n->op) {
    case LM_OP_ADD: case LM_OP_MUL: case LM_OP_SCALE: case LM_OP_SOFTCAP: case LM_OP_GEGLU: case LM_OP_SWIGLU:
        return a->type == LM_F32 && d->type == LM_F32 && (!n->src[1] || n->src[1]->type == LM_F32);
    case LM_OP_RMS_NORM:
        return a->type == LM_F32 && d->type == LM_F32 && (!n->src[1] || n->src[1]->type == LM_F32) &&
               (!n->src[2] || n->src[2]->type == LM_F32);
    case LM_OP_GET_ROWS: return is_weight_type(a->type) && d->type == LM_F32 && n->src[1]->type == LM_I32;
    case LM_OP_SET_ROWS:
        return ((is_float(d->type) || d->type == LM_E4M3 || (d->type == LM_Q8_0 && a->ne[0] % 32 == 0)) && a->type == LM_F32) ||
               (d->type == LM_I32 && a->type == LM_I32);
    case LM_OP_CPY: return is_float(a->type) && is_float(d->type);
    case LM_OP_ROPE: return a->type == LM_F32 && d->type == LM_F32 && a->ne[0] % 2 == 0;
    case LM_OP_TOPK: return a->type == LM_F32 && n->ip[0] >= 1 && n->ip[0] <= 1024;
    case LM_OP_MOE_WEIGHTS: return lm_tensor_is_contiguous(n->src[0]) && lm_tensor_is_contiguous(n->src[1]);
    case LM_OP_MOE_SUM: return lm_tensor_is_contiguous(n->src[1]);
    case LM_OP_MATMUL: case LM_OP_MATMUL_ID: return supports_matmul(n);
    case LM_OP_ATTENTION: return supports_attention(n);
    default: return false;
    }
}

static void run_node(ctx &c, const lm_node *n) {
    switch (n->op) {
    case LM_OP_ADD: case LM_OP_MUL: case LM_OP_SCALE: case LM_OP_SOFTCAP: case LM_OP_GEGLU: case LM_OP_SWIGLU: op_elementwise(c, n); break;
    case LM_OP_RMS_NORM: op_rms_norm(c, n); break;
    case LM_OP_GET_ROWS: op_get_rows(c, n); break;
    case LM_OP_SET_ROWS: op_set_rows(c, n); break;
    case LM_OP_CPY: op_cpy(c, n); break;
    case LM_OP_ROPE: op_rope(c, n); break;
    case LM_OP_TOPK: op_topk(c, n); break;
    case LM_OP_MOE_WEIGHTS: op_moe_weights(c, n); break;
    case LM_OP_MOE_SUM: op_moe_sum(c, n); break;
    case LM_OP_MATMUL: op_matmul(c, n); break;
    case LM_OP_MATMUL_ID: op_matmul_id(c, n); break;
    case LM_OP_ATTENTION: op_attention(c, n); break;
    default: latch(c, LM_STATUS_UNSUPPORTED, "op %s is not implemented", lm_op_name(n->op)); break;
    }
}

static void cu_run(lm_backend *be, const lm_node *n) {
    ctx &c = *(ctx *)be->impl;
    if (!c.recording) {
        latch(c, LM_STATUS_INVALID_ARGUMENT, "run() outside begin()/submit()");
        return;
    }
    if (!cu_supports(be, n)) {
        latch(c, LM_STATUS_UNSUPPORTED, "op %s with these types/shapes is not supported by the CUDA backend", lm_op_name(n->op));
        return;
    }
    rec_node r;
    memset(&r, 0, sizeof r);
    r.n = *n;
    r.t[0] = *n->dst;
    for (int i = 0; i < LM_MAX_SRC; i++)
        if (n->src[i]) r.t[1 + i] = *n->src[i];
    c.rec.push_back(r);
}

static lm_status cu_begin(lm_backend *be) {
    ctx &c = *(ctx *)be->impl;
    lm_status st = lm_backend_take_error(be);
    if (st) return st;
    c.rec.clear();
    c.recording = true;
    return LM_STATUS_OK;
}

/* the node list as a graph key: ops, parameters, types, shapes, strides and device addresses */
static void make_key(ctx &c, std::vector<uint64_t> &key) {
    key.clear();
    for (const rec_node &r : c.rec) {
        key.push_back((uint64_t)r.n.op);
        for (int i = 0; i < LM_MAX_IP; i++) key.push_back((uint64_t)(uint32_t)r.n.ip[i]);
        for (int i = 0; i < LM_MAX_FP; i++) {
            uint32_t u;
            memcpy(&u, &r.n.fp[i], 4);
            key.push_back(u);
        }
        for (int i = 0; i < 1 + LM_MAX_SRC; i++) {
            const lm_tensor *t = i == 0 ? r.n.dst : r.n.src[i - 1];
            if (!t) {
                key.push_back(~0ull);
                continue;
            }
            key.push_back((uint64_t)t->type);
            for (int d = 0; d < LM_MAX_DIMS; d++) key.push_back((uint64_t)t->ne[d]), key.push_back((uint64_t)t->nb[d]);
            key.push_back((uint64_t)(uintptr_t)dptr(t));
        }
    }
}

static lm_status cu_submit(lm_backend *be) {
    ctx &c = *(ctx *)be->impl;
    ctx &x = c;
    if (!c.recording) return lm_fail(LM_STATUS_INVALID_ARGUMENT, "%s: submit without begin", BACKEND_NAME);
    c.recording = false;
    lm_status st = lm_backend_take_error(be);
    if (st) return st; /* a failed recording is not launched */
    /* point the recorded nodes at their own tensor copies */
    for (rec_node &r : x.rec) {
        r.n.dst = &r.t[0];
        for (int i = 0; i < LM_MAX_SRC; i++)
            if (r.n.src[i]) r.n.src[i] = &r.t[1 + i];
    }
    /* plan: scratch sizes and tables */
    c.planning = true;
    c.scratch_used = 0;
    for (const rec_node &r : x.rec) run_node(c, &r.n);
    c.planning = false;
    if ((st = lm_backend_take_error(be))) return st;
    if (c.scratch_used > c.scratch_size) {
        rt::stream_sync(c.stream);
        clear_graphs(c); /* they hold the old scratch address */
        if (c.scratch) rt::free_device(c.scratch);
        c.scratch = nullptr;
        c.scratch_size = 0;
        const size_t want = c.scratch_used + c.scratch_used / 4;
        if (int e = rt::malloc_device(&c.scratch, want)) {
            rt::last_error();
            return lm_fail(LM_STATUS_OUT_OF_MEMORY, "%s: cannot allocate %.1f MiB of scratch: %s", BACKEND_NAME,
                           (double)want / (1 << 20), rt::error_string(e));
        }
        c.scratch_size = want;
    }
    c.step_no++;
    const bool graphs = c.use_graphs && !be->profiling && !x.rec.empty();
    if (graphs) {
        make_key(c, x.key);
        for (graph_entry &g : c.graphs)
            if (g.key == x.key) {
                g.last_use = c.step_no;
                if (int e = rt::graph_launch(g.exec, c.stream)) return rt_fail(e, "graph launch");
                c.n_replayed++;
                x.last_key.swap(x.key);
                return LM_STATUS_OK;
            }
    }
    const bool capture = graphs && x.key == x.last_key;
    if (capture) {
        if (int e = rt::capture_begin(c.stream)) return rt_fail(e, "stream capture");
    }
    if (be->profiling) {
        while (c.prof_ev.size() < 2 * x.rec.size()) {
            rt::event_t e;
            if (rt::event_create(&e)) break;
            c.prof_ev.push_back(e);
        }
        x.prof_op.clear();
        x.prof_bytes.clear();
        x.prof_flops.clear();
    }
    c.scratch_used = 0;
    for (size_t i = 0; i < x.rec.size(); i++) {
        const bool prof = be->profiling && 2 * i + 1 < c.prof_ev.size();
        if (prof) rt::event_record(c.prof_ev[2 * i], c.stream);
        run_node(c, &x.rec[i].n);
        if (prof) {
            rt::event_record(c.prof_ev[2 * i + 1], c.stream);
            double b, f;
            lm_node_cost(&x.rec[i].n, &b, &f);
            x.prof_op.push_back(x.rec[i].n.op);
            x.prof_bytes.push_back(b);
            x.prof_flops.push_back(f);
        }
    }
    if (capture) {
        graph_entry g;
        int e = rt::capture_end(c.stream, &g.exec);
        if (e) {
            rt::last_error();
            lm_backend_take_error(be);
            return rt_fail(e, "stream capture");
        }
        if ((st = lm_backend_take_error(be))) {
            rt::graph_destroy(g.exec);
            return st;
        }
        if (c.graphs.size() >= MAX_GRAPHS) {
            size_t lru = 0;
            for (size_t i = 1; i < c.graphs.size(); i++)
                if (c.graphs[i].last_use < c.graphs[lru].last_use) lru = i;
            rt::graph_destroy(c.graphs[lru].exec);
            c.graphs.erase(c.graphs.begin() + (long)lru);
        }
        g.key = x.key;
        g.last_use = c.step_no;
        c.graphs.push_back(g);
        c.n_captured++;
        if ((e = rt::graph_launch(g.exec, c.stream))) return rt_fail(e, "graph launch");
    }
    if (graphs) x.last_key.swap(x.key);
    return lm_backend_take_error(be);
}

static lm_status cu_sync(lm_backend *be) {
    ctx &c = *(ctx *)be->impl;
    ctx &x = c;
    if (int e = rt::stream_sync(c.stream)) {
        rt::last_error();
        return rt_fail(e, "step failed");
    }
    if (be->profiling) {
        for (size_t i = 0; i < x.prof_op.size(); i++) {
            float ms = 0;
            if (rt::event_elapsed_ms(&ms, c.prof_ev[2 * i], c.prof_ev[2 * i + 1])) continue;
            const lm_op op = x.prof_op[i];
            be->prof.seconds[op] += ms * 1e-3;
            be->prof.calls[op]++;
            be->prof.bytes[op] += x.prof_bytes[i];
            be->prof.flops[op] += x.prof_flops[i];
        }
        x.prof_op.clear();
        x.prof_bytes.clear();
        x.prof_flops.clear();
    }
    return lm_backend_take_error(be);
}

static void cu_profile_enable(lm_backend *be, bool on) {
    be->profiling = on;
    if (on) memset(&be->prof, 0, sizeof be->prof);
}

static lm_backend_ops make_ops() {
    lm_backend_ops o;
    memset(&o, 0, sizeof o);
    o.version = LM_BACKEND_OPS_VERSION;
    o.name = BACKEND_NAME;
    o.device_count = cu_device_count;
    o.create = cu_create;
    o.destroy = cu_destroy;
    o.device_info = cu_device_info;
    o.buffer_alloc = cu_buffer_alloc;
    o.buffer_from_host = nullptr;
    o.buffer_free = cu_buffer_free;
    o.tensor_set = cu_tensor_set;
    o.tensor_get = cu_tensor_get;
    o.supports = cu_supports;
    o.run = cu_run;
    o.begin = cu_begin;
    o.submit = cu_submit;
    o.sync = cu_sync;
    o.profile_enable = cu_profile_enable;
    return o;
}

} // namespace LM_CUDA_NS

extern "C" const lm_backend_ops LM_CUDA_OPS = LM_CUDA_NS::make_ops();

/* Measured device-to-device copy bandwidth in GB/s (bytes read + written per second), the
   ceiling bench_ops reports kernels against; 0 on failure. */
#ifdef __CUDACC__
extern "C" double lm_cuda_copy_gbs(lm_backend *be) {
    const size_t n = 512u << 20;
    const int reps = 20;
#else
extern "C" double lm_cuda_emu_copy_gbs(lm_backend *be) {
    const size_t n = 64u << 20;
    const int reps = 3;
#endif
    LM_CUDA_NS::ctx &c = *(LM_CUDA_NS::ctx *)be->impl;
    namespace rt = LM_CUDA_NS::rt;
    void *a = nullptr, *b = nullptr;
    rt::event_t e0 = nullptr, e1 = nullptr;
    double gbs = 0;
    if (!rt::malloc_device(&a, n) && !rt::malloc_device(&b, n) && !rt::event_create(&e0) && !rt::event_create(&e1) &&
        !rt::memset_d(a, 1, n, c.stream) && !rt::memcpy_d2d(b, a, n, c.stream)) {
        rt::event_record(e0, c.stream);
        for (int i = 0; i < reps; i++) rt::memcpy_d2d(i % 2 ? a : b, i % 2 ? b : a, n, c.stream);
        rt::event_record(e1, c.stream);
        float ms = 0;
        if (!rt::stream_sync(c.stream) && !rt::event_elapsed_ms(&ms, e0, e1) && ms > 0) gbs = 2.0 * n * reps / (ms * 1e-3) / 1e9;
    }
    rt::last_error();
    if (e0) rt::event_destroy(e0);
    if (e1) rt::event_destroy(e1);
    if (a) rt::free_device(a);
    if (b) rt::free_device(b);
    return gbs;
}

#ifdef __CUDACC__
/* cuBLAS FP16 GEMM (f16 inputs, f32 accumulation and output, tensor cores) at m x n x k, the
   reference for the tensor-core kernels' TFLOP/s: best of `reps` timed runs after a warm-up, in
   TFLOP/s (0 when it could not run). The inputs are 1.0 (the values do not change the time). */
extern "C" double lm_cuda_hgemm_tflops(lm_backend *be, int m, int n, int k, int reps) {
    LM_CUDA_NS::ctx &c = *(LM_CUDA_NS::ctx *)be->impl;
    namespace rt = LM_CUDA_NS::rt;
    void *A = nullptr, *B = nullptr, *C = nullptr;
    rt::event_t e0 = nullptr, e1 = nullptr;
    double best = 0;
    const size_t na = (size_t)m * k * 2, nb = (size_t)n * k * 2, nc = (size_t)m * n * 4;
    if (!rt::malloc_device(&A, na) && !rt::malloc_device(&B, nb) && !rt::malloc_device(&C, nc) && !rt::event_create(&e0) &&
        !rt::event_create(&e1) && !rt::memset_d(A, 0x3c, na, c.stream) && !rt::memset_d(B, 0x3c, nb, c.stream) &&
        !rt::hgemm_tn(c.blas, c.stream, m, n, k, A, k, B, k, (float *)C, m)) {
        for (int r = 0; r < reps; r++) {
            float ms = 0;
            rt::event_record(e0, c.stream);
            if (rt::hgemm_tn(c.blas, c.stream, m, n, k, A, k, B, k, (float *)C, m)) break;
            rt::event_record(e1, c.stream);
            if (rt::stream_sync(c.stream) || rt::event_elapsed_ms(&ms, e0, e1) || ms <= 0) break;
            const double tf = 2.0 * m * n * k / (ms * 1e-3) / 1e12;
            if (tf > best) best = tf;
        }
    }
    rt::last_error();
    if (e0) rt::event_destroy(e0);
    if (e1) rt::event_destroy(e1);
    if (A) rt::free_device(A);
    if (B) rt::free_device(B);
    if (C) rt::free_device(C);
    return best;
}
#endif

/* CUDA graphs captured and replayed by a backend of this flavour so far */
#ifdef __CUDACC__
extern "C" void lm_cuda_graph_stats(lm_backend *be, uint64_t *captured, uint64_t *replayed) {
#else
extern "C" void lm_cuda_emu_graph_stats(lm_backend *be, uint64_t *captured, uint64_t *replayed) {
#endif
    const LM_CUDA_NS::ctx &c = *(const LM_CUDA_NS::ctx *)be->impl;
    *captured = c.n_captured;
    *replayed = c.n_replayed;
}
