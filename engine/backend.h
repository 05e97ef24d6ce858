/*
 * backend.h — the device interface. Every device (CPU, CUDA, Vulkan) implements lm_backend_ops;
 * model code builds lm_node's through ops.h and never names a device.
 *
 *   lm_buffer  one device allocation (weights, KV, activations); host pointer when host-visible
 *   lm_tensor  a view that never owns memory: dtype, ne[4] (ne[0] innermost), byte strides nb[4]
 *   lm_node    {op, dst, src[], int params, float params}: one op to enqueue
 *
 * Execution: begin() opens a step, run(node) enqueues (asynchronously on GPUs), submit() closes
 * and launches the step, sync() waits. A backend latches its first error and reports it from
 * submit/sync, so run() itself cannot fail. Between begin and sync the host must not touch
 * buffers the step uses.
 */
#ifndef LM_BACKEND_H
#define LM_BACKEND_H

#include "common.h"
#include "dtype.h"

LM_EXTERN_C_BEGIN

#define LM_MAX_DIMS 4
#define LM_MAX_SRC 9
#define LM_MAX_IP 12
#define LM_MAX_FP 8

typedef struct lm_backend lm_backend;
typedef struct lm_buffer lm_buffer;

enum lm_buffer_usage {
    LM_BUF_WEIGHTS = 1, /* written once at load, read by every step */
    LM_BUF_COMPUTE = 2, /* activations / scratch, rewritten every step */
    LM_BUF_KV = 4,      /* KV cache, persistent across steps */
    LM_BUF_STEP = 8,    /* small per-step inputs written by the host (tokens, positions) */
};

struct lm_buffer {
    lm_backend *be;
    size_t size;
    void *host;  /* host-addressable base, or NULL for device-only memory */
    void *impl;  /* backend-private handle */
    int usage;
    bool owns_host; /* host memory was allocated by the backend (vs wrapped) */
};

typedef struct lm_tensor {
    lm_dtype type;
    int64_t ne[LM_MAX_DIMS]; /* elements per dimension, ne[0] contiguous; unused dims are 1 */
    size_t nb[LM_MAX_DIMS];  /* byte stride per dimension; nb[0] = element/block size */
    lm_buffer *buf;          /* allocation the view lives in */
    size_t offs;             /* byte offset of element 0 in buf */
    char name[48];
} lm_tensor;

typedef enum lm_op {
    LM_OP_NONE = 0,
    LM_OP_GET_ROWS,    /* dst[:, i] = dequant(src0[:, ids[i]]) * fp0 ; src1 = ids (i32) */
    LM_OP_SET_ROWS,    /* dst[:, idx[i]] = convert(src0[:, i]) ; src1 = idx (i32) */
    LM_OP_RMS_NORM,    /* dst = src2 + rmsnorm(src0) * src1 (src1/src2 optional), fp0 = eps */
    LM_OP_MATMUL,      /* dst[m, n] = sum_k src0[k, m] * src1[k, n] ; src0 = weights */
    LM_OP_MATMUL_ID,   /* dst[:, j, n] = W[ids[j, n]] x src1[:, j or 0, n] ; src2 = ids */
    LM_OP_ROPE,        /* rotate heads of src0 [d, nh, n] by positions src1 (i32), src2 = freq factors */
    LM_OP_ATTENTION,   /* flash attention over the KV cache, see ops.h */
    LM_OP_GEGLU,       /* dst = gelu_tanh(src0) * src1 */
    LM_OP_ADD,         /* dst = src0 + src1 (src1 may be one row, broadcast) */
    LM_OP_MUL,         /* dst = src0 * src1 (src1 may be one row, broadcast) */
    LM_OP_SCALE,       /* dst = src0 * fp0 */
    LM_OP_SOFTCAP,     /* dst = fp0 * tanh(src0 / fp0) */
    LM_OP_TOPK,        /* dst (i32) [k, n] = indices of the k largest of src0 [m, n], descending */
    LM_OP_MOE_WEIGHTS, /* dst [k, n] = softmax(src0)[ids] renormalised over ids, * src2[ids] */
    LM_OP_MOE_SUM,     /* dst [d, n] = sum_j src1[j, n] * src0[:, j, n] */
    LM_OP_CPY,         /* dst = convert(src0), any strides */
    LM_OP_SWIGLU,      /* dst = silu(src0) * src1 */
    LM_OP_COUNT
} lm_op;

typedef struct lm_node {
    lm_op op;
    lm_tensor *dst;
    const lm_tensor *src[LM_MAX_SRC];
    int32_t ip[LM_MAX_IP];
    float fp[LM_MAX_FP];
} lm_node;

const char *lm_op_name(lm_op op);

typedef struct lm_device_info {
    char name[128];
    uint64_t memory_total;
    uint64_t memory_free;
    double bandwidth_gbs; /* measured or nominal device memory bandwidth, 0 if unknown */
    int compute_major, compute_minor;
    bool unified_memory;  /* buffers are host-visible */
    bool is_cpu;          /* the device is the host's processor (the CPU backend, Vulkan's lavapipe) */
    uint64_t max_alloc;   /* largest single buffer the device can allocate (0 = no limit) */
} lm_device_info;

typedef struct lm_backend_config {
    int device;
    int n_threads;
} lm_backend_config;

typedef struct lm_backend_ops {
    int version; /* LM_BACKEND_OPS_VERSION */
    const char *name;
    int (*device_count)(void);
    lm_status (*create)(const lm_backend_config *cfg, lm_backend **out);
    void (*destroy)(lm_backend *be);
    lm_status (*device_info)(lm_backend *be, lm_device_info *out);

    lm_status (*buffer_alloc)(lm_backend *be, size_t size, int usage, lm_buffer **out);
    /* Wrap host memory without copying (optional: NULL when the device cannot read host memory). */
    lm_status (*buffer_from_host)(lm_backend *be, void *ptr, size_t size, int usage, lm_buffer **out);
    void (*buffer_free)(lm_buffer *buf);
    /* Host <-> tensor copies of `size` bytes at byte `offs` within the tensor (contiguous tensors).
     * These synchronise with the device. */
    lm_status (*tensor_set)(lm_backend *be, lm_tensor *t, const void *src, size_t offs, size_t size);
    lm_status (*tensor_get)(lm_backend *be, const lm_tensor *t, void *dst, size_t offs, size_t size);

    bool (*supports)(lm_backend *be, const lm_node *node);
    void (*run)(lm_backend *be, const lm_node *node);
    lm_status (*begin)(lm_backend *be);
    lm_status (*submit)(lm_backend *be);
    lm_status (*sync)(lm_backend *be);

    /* Profiling: when enabled, per-node device time is accumulated per op. */
    void (*profile_enable)(lm_backend *be, bool on);
} lm_backend_ops;

#define LM_BACKEND_OPS_VERSION 1

/* Per-op profile accumulated by a backend (seconds of device time, call count, bytes, flops). */
typedef struct lm_op_profile {
    double seconds[LM_OP_COUNT];
    uint64_t calls[LM_OP_COUNT];
    double bytes[LM_OP_COUNT];
    double flops[LM_OP_COUNT];
} lm_op_profile;

struct lm_backend {
    const lm_backend_ops *ops;
    lm_status err;      /* first error latched during a step */
    char errmsg[512];
    bool profiling;
    lm_op_profile prof;
    void *impl;
};

/* Latch an error inside run() (first one wins); returned by the next submit/sync. */
void lm_backend_latch(lm_backend *be, lm_status st, const char *fmt, ...) LM_PRINTF(3, 4);
/* Return and clear the latched error, copying its message to the thread-local error. */
lm_status lm_backend_take_error(lm_backend *be);

/* Registry of compiled-in backends. */
const lm_backend_ops *lm_backend_find(const char *name);
lm_status lm_backend_create(const char *name, const lm_backend_config *cfg, lm_backend **out);
void lm_backend_destroy(lm_backend *be);

/* --------------------------------------------------------------------------------------------
 * Tensor helpers
 * ------------------------------------------------------------------------------------------ */
/* Fill a contiguous tensor description (no buffer). */
void lm_tensor_init(lm_tensor *t, lm_dtype type, int n_dims, const int64_t *ne);
int64_t lm_tensor_nelements(const lm_tensor *t);
int64_t lm_tensor_nrows(const lm_tensor *t); /* ne[1] * ne[2] * ne[3] */
size_t lm_tensor_nbytes(const lm_tensor *t);  /* bytes spanned by the view */
bool lm_tensor_is_contiguous(const lm_tensor *t);
bool lm_tensor_same_shape(const lm_tensor *a, const lm_tensor *b);
/* Host address of element (0,i1,i2,i3) when the buffer is host-visible, else NULL. */
static inline void *lm_tensor_host(const lm_tensor *t) {
    return t->buf && t->buf->host ? (char *)t->buf->host + t->offs : NULL;
}
static inline void *lm_tensor_row(const lm_tensor *t, int64_t i1, int64_t i2, int64_t i3) {
    return (char *)t->buf->host + t->offs + (size_t)i1 * t->nb[1] + (size_t)i2 * t->nb[2] + (size_t)i3 * t->nb[3];
}
/* A view of rows [i0, i0 + n) along dimension `dim` (1..3). */
lm_tensor lm_tensor_slice(const lm_tensor *t, int dim, int64_t i0, int64_t n);
/* Reinterpret a contiguous tensor with a new shape of the same element count. */
lm_tensor lm_tensor_reshape(const lm_tensor *t, int n_dims, const int64_t *ne);

LM_EXTERN_C_END

#endif /* LM_BACKEND_H */
