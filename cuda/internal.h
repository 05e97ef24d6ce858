/*
 * internal.h — the CUDA backend's context and the op entry points of the kernel files.
 *
 * A step is recorded, not launched, by run(): nodes are copied into the context. submit() then
 * makes two passes over them: a plan pass (scratch sizes, rope tables — work that may allocate
 * or copy synchronously) and a launch pass that only enqueues kernels. When graphs are on, the
 * launch pass is captured into a CUDA graph keyed by the nodes (ops, parameters, tensor
 * addresses and shapes); a later step with the same key (every decode step of a given batch
 * shape) replays the graph without recording anything. Positions, cells and lengths live in
 * device memory (the context's step buffer), so a replay reads the new step's values.
 */
#ifndef LM_CUDA_INTERNAL_H
#define LM_CUDA_INTERNAL_H

#include "common.cuh"
#include "repack.cuh"

#include <map>
#include <vector>

namespace LM_CUDA_NS {

struct cu_buf {
    void *ptr;
    size_t size;
};

static inline char *dptr(const lm_tensor *t) { return (char *)((cu_buf *)t->buf->impl)->ptr + t->offs; }
template <typename T> static inline T *dp(const lm_tensor *t) { return (T *)dptr(t); }

struct rope_table {
    lm_rope_params rp;
    const lm_buffer *fbuf; /* frequency factors (buffer, offset) or none */
    size_t foffs;
    uint64_t *dev;         /* [n_pairs] turns per position, 64-bit binary fractions */
};

/* a weight tensor stored in the repacked layout (repack.cuh) */
struct repacked {
    const lm_buffer *buf;
    size_t offs, size;
    lm_dtype type;
    int64_t rows, nblk;
    size_t row_bytes;
};

struct graph_entry {
    std::vector<uint64_t> key;
    rt::graph_exec_t exec;
    uint64_t last_use;
};

/* a recorded node with its own copies of the tensor views */
struct rec_node {
    lm_node n;
    lm_tensor t[1 + LM_MAX_SRC];
};

struct ctx {
    lm_backend *be;
    int dev;
    rt::device_props props;
    rt::stream_t stream;
    rt::blas_t blas;
    /* pinned staging ring for transfers */
    void *stage[2];
    rt::event_t stage_ev[2];
    bool stage_busy[2];
    /* the recorded step */
    bool recording;
    std::vector<rec_node> rec;
    /* scratch: planned (sizes only) then handed out in the same order while launching */
    bool planning;
    void *scratch;
    size_t scratch_size, scratch_used;
    std::vector<rope_table> ropes;
    /* weights: repacked at upload (LUMEN_CUDA_REPACK=0: GGUF layout and the chunk kernels only) */
    bool repack;
    std::vector<repacked> packed;
    /* graphs */
    bool use_graphs;
    std::vector<graph_entry> graphs;
    std::vector<uint64_t> key, last_key;
    uint64_t step_no;
    uint64_t n_captured, n_replayed; /* graphs captured / replayed (for tests and the profiler) */
    /* profiling: one event pair per node, and what each node moved */
    std::vector<rt::event_t> prof_ev;
    std::vector<lm_op> prof_op;
    std::vector<double> prof_bytes, prof_flops;
};

/* Launch a kernel on the step's stream and check the launch (an invalid configuration, or under
   the emulator any error the kernel hit). `kernel` is one token, as for LM_LAUNCH. */
#define LM_KERNEL(c, kernel, grid, block, smem, ...)                                               \
    do {                                                                                           \
        LM_LAUNCH(kernel, grid, block, smem, (c).stream, __VA_ARGS__);                             \
        ::LM_CUDA_NS::check_launch((c), ::LM_CUDA_NS::rt::last_error(), #kernel);                  \
    } while (0)

/* grid dimension y / z limit */
#define LM_MAX_GRID_YZ 65535u

/* scratch bytes for this node (planning: counted; launching: the same sequence of pointers) */
void *scratch(ctx &c, size_t bytes);
/* device table of a rope configuration (created during planning) */
const uint64_t *rope_freqs(ctx &c, const lm_rope_params &rp, const lm_tensor *factors);
/* the weight matrix view of t for the wide kernels: its repacked region (and row0), or the
   GGUF layout; false when the wide kernels cannot read it */
bool weight_src(const ctx &c, const lm_tensor *t, wsrc &s, bool &planar);
/* latch an error for the step */
void latch(ctx &c, lm_status st, const char *fmt, ...) LM_PRINTF(3, 4);
/* check the launch just made */
void check_launch(ctx &c, int err, const char *what);

/* What both attention kernels take from the node (attention.cu's split-K kernel and
   attention_tc.cu's tensor-core one extend it): operands, strides, masks, rope of K=V layers. */
struct attn_io {
    const float *q;
    int64_t q_s1, q_s2; /* floats */
    const uint8_t *k, *v;
    int64_t k_s1, k_s2, v_s1, v_s2; /* bytes */
    const int32_t *cell_pos, *pos, *seq;
    const int32_t *pages; /* [n_seq][pps]: the physical page of each logical page */
    const float *knorm;
    const uint64_t *table;
    float *d;
    int H, G, cps, ring, window, n_pairs, neox, n_seq, page, pps;
    float scale, softcap;
};
/* the physical cell of logical cell c of sequence sq (paged caches; a ring is one page per sequence) */
LM_DEV int64_t kv_cell(const attn_io &a, int sq, int c) {
    return (int64_t)a.pages[(int64_t)sq * a.pps + c / a.page] * a.page + c % a.page;
}
/* the shape and mask parameters and the rope table of a K=V layer (false when the table could
   not be made); the operands too unless planning */
static inline bool attn_io_fill(ctx &c, const lm_node *n, attn_io &a) {
    const lm_tensor *q = n->src[0], *k = n->src[1], *v = n->src[2];
    const lm_attn_params ap = lm_node_attn_unpack(n);
    a.H = (int)q->ne[1];
    a.G = a.H / (int)k->ne[1];
    a.cps = ap.cells_per_seq;
    a.ring = ap.ring;
    a.window = ap.window;
    a.n_seq = (int)n->src[8]->ne[1];
    a.pps = (int)n->src[8]->ne[0];
    a.page = ap.page;
    a.scale = ap.scale;
    a.softcap = ap.softcap;
    if (ap.k_from_v) {
        a.table = rope_freqs(c, ap.rope, n->src[7]);
        a.n_pairs = ap.rope.n_pairs;
        a.neox = ap.rope.mode == LM_ROPE_NEOX;
        if (!a.table) return false;
    }
    if (c.planning) return true;
    a.q = dp<const float>(q);
    a.q_s1 = (int64_t)q->nb[1] / 4;
    a.q_s2 = (int64_t)q->nb[2] / 4;
    a.k = (const uint8_t *)dptr(k);
    a.v = (const uint8_t *)dptr(v);
    a.k_s1 = (int64_t)k->nb[1];
    a.k_s2 = (int64_t)k->nb[2];
    a.v_s1 = (int64_t)v->nb[1];
    a.v_s2 = (int64_t)v->nb[2];
    a.cell_pos = dp<const int32_t>(n->src[3]);
    a.pos = dp<const int32_t>(n->src[4]);
    a.seq = dp<const int32_t>(n->src[5]);
    a.pages = dp<const int32_t>(n->src[8]);
    a.knorm = ap.k_from_v ? dp<const float>(n->src[6]) : nullptr;
    a.d = dp<float>(n->dst);
    return true;
}

/* op entry points (one per op family; each plans when c.planning, else launches) */
void op_elementwise(ctx &c, const lm_node *n);
void op_get_rows(ctx &c, const lm_node *n);
void op_set_rows(ctx &c, const lm_node *n);
void op_cpy(ctx &c, const lm_node *n);
void op_rms_norm(ctx &c, const lm_node *n);
void op_rope(ctx &c, const lm_node *n);
void op_topk(ctx &c, const lm_node *n);
void op_moe_weights(ctx &c, const lm_node *n);
void op_moe_sum(ctx &c, const lm_node *n);
void op_matmul(ctx &c, const lm_node *n);
void op_matmul_id(ctx &c, const lm_node *n);
void op_attention(ctx &c, const lm_node *n);
/* the tensor-core GEMM for quantized weights (gemm_tc.cu) and when it takes a matmul */
void op_gemm_tc(ctx &c, const lm_node *n);
bool gemm_tc_eligible(const ctx &c, const lm_node *n);
/* flash-attention prefill on the tensor cores (attention_tc.cu) and when it takes an attention */
void op_attention_tc(ctx &c, const lm_node *n);
bool attn_tc_eligible(const ctx &c, const lm_node *n);
bool supports_matmul(const lm_node *n);
bool supports_attention(const lm_node *n);

static inline unsigned ceil_div(int64_t a, int64_t b) { return (unsigned)((a + b - 1) / b); }

} // namespace LM_CUDA_NS

#endif /* LM_CUDA_INTERNAL_H */
