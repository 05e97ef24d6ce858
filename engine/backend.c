/*
 * backend.c — backend registry, error latching and tensor view helpers.
 */
#include "backend.h"

#include <stdio.h>
#include <string.h>

extern const lm_backend_ops lm_cpu_backend_ops, lm_ref_backend_ops;
#ifdef LUMEN_HAVE_VULKAN
extern const lm_backend_ops lm_vk_backend_ops;
#endif
#ifdef LUMEN_HAVE_CUDA
extern const lm_backend_ops lm_cuda_backend_ops;
#endif
#ifdef LUMEN_HAVE_CUDA_EMU
extern const lm_backend_ops lm_cuda_emu_backend_ops;
#endif

static const lm_backend_ops *const registry[] = {
    &lm_cpu_backend_ops,
    &lm_ref_backend_ops,
#ifdef LUMEN_HAVE_VULKAN
    &lm_vk_backend_ops,
#endif
#ifdef LUMEN_HAVE_CUDA
    &lm_cuda_backend_ops,
#endif
#ifdef LUMEN_HAVE_CUDA_EMU
    &lm_cuda_emu_backend_ops,
#endif
};

int lm_backend_count(void) { return (int)(sizeof registry / sizeof registry[0]); }

const char *lm_backend_name(int i) {
    return i >= 0 && i < lm_backend_count() ? registry[i]->name : NULL;
}

const lm_backend_ops *lm_backend_find(const char *name) {
    for (int i = 0; i < lm_backend_count(); i++)
        if (strcmp(registry[i]->name, name) == 0) return registry[i];
    return NULL;
}

lm_status lm_backend_create(const char *name, const lm_backend_config *cfg, lm_backend **out) {
    *out = NULL;
    const lm_backend_ops *ops = lm_backend_find(name ? name : "cpu");
    if (!ops) {
        char avail[128] = "";
        for (int i = 0; i < lm_backend_count(); i++) {
            strncat(avail, i ? ", " : "", sizeof avail - strlen(avail) - 1);
            strncat(avail, registry[i]->name, sizeof avail - strlen(avail) - 1);
        }
        return lm_fail(LM_STATUS_NOT_FOUND, "backend '%s' is not compiled into this build (available: %s)", name, avail);
    }
    if (ops->version != LM_BACKEND_OPS_VERSION)
        return lm_fail(LM_STATUS_BACKEND, "backend '%s' has interface version %d, expected %d", name, ops->version,
                       LM_BACKEND_OPS_VERSION);
    if (ops->device_count() <= (cfg ? cfg->device : 0))
        return lm_fail(LM_STATUS_NOT_FOUND, "backend '%s' has no device %d (%d found)", ops->name, cfg ? cfg->device : 0,
                       ops->device_count());
    lm_backend_config def = {0, 0};
    return ops->create(cfg ? cfg : &def, out);
}

void lm_backend_destroy(lm_backend *be) {
    if (be) be->ops->destroy(be);
}

void lm_backend_latch(lm_backend *be, lm_status st, const char *fmt, ...) {
    if (be->err != LM_STATUS_OK) return;
    be->err = st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(be->errmsg, sizeof be->errmsg, fmt, ap);
    va_end(ap);
}

lm_status lm_backend_take_error(lm_backend *be) {
    lm_status st = be->err;
    if (st != LM_STATUS_OK) {
        lm_fail(st, "%s backend: %s", be->ops->name, be->errmsg);
        be->err = LM_STATUS_OK;
        be->errmsg[0] = 0;
    }
    return st;
}

const char *lm_op_name(lm_op op) {
    static const char *names[LM_OP_COUNT] = {
        [LM_OP_NONE] = "none", [LM_OP_GET_ROWS] = "get_rows", [LM_OP_SET_ROWS] = "set_rows",
        [LM_OP_RMS_NORM] = "rms_norm", [LM_OP_MATMUL] = "matmul", [LM_OP_MATMUL_ID] = "matmul_id",
        [LM_OP_ROPE] = "rope", [LM_OP_ATTENTION] = "attention", [LM_OP_GEGLU] = "geglu", [LM_OP_SWIGLU] = "swiglu",
        [LM_OP_ADD] = "add", [LM_OP_MUL] = "mul", [LM_OP_SCALE] = "scale", [LM_OP_SOFTCAP] = "softcap",
        [LM_OP_TOPK] = "topk", [LM_OP_MOE_WEIGHTS] = "moe_weights", [LM_OP_MOE_SUM] = "moe_sum",
        [LM_OP_CPY] = "cpy",
    };
    return (unsigned)op < LM_OP_COUNT && names[op] ? names[op] : "?";
}

/* ---------------------------------------------------------------------------------------- */

void lm_tensor_init(lm_tensor *t, lm_dtype type, int n_dims, const int64_t *ne) {
    memset(t, 0, sizeof *t);
    const lm_dtype_traits *tr = lm_dtype_get(type);
    LM_ASSERT(tr && n_dims >= 1 && n_dims <= LM_MAX_DIMS);
    t->type = type;
    for (int d = 0; d < LM_MAX_DIMS; d++) t->ne[d] = d < n_dims ? ne[d] : 1;
    LM_ASSERT(t->ne[0] % tr->block == 0);
    t->nb[0] = (size_t)tr->block_bytes;
    t->nb[1] = lm_row_bytes(type, t->ne[0]);
    for (int d = 2; d < LM_MAX_DIMS; d++) t->nb[d] = t->nb[d - 1] * (size_t)t->ne[d - 1];
}

int64_t lm_tensor_nelements(const lm_tensor *t) { return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]; }
int64_t lm_tensor_nrows(const lm_tensor *t) { return t->ne[1] * t->ne[2] * t->ne[3]; }

size_t lm_tensor_nbytes(const lm_tensor *t) {
    size_t n = lm_row_bytes(t->type, t->ne[0]);
    for (int d = 1; d < LM_MAX_DIMS; d++) n += (size_t)(t->ne[d] - 1) * t->nb[d];
    return n;
}

bool lm_tensor_is_contiguous(const lm_tensor *t) {
    const lm_dtype_traits *tr = lm_dtype_get(t->type);
    if (t->nb[0] != (size_t)tr->block_bytes) return false;
    size_t expect = lm_row_bytes(t->type, t->ne[0]);
    for (int d = 1; d < LM_MAX_DIMS; d++) {
        if (t->ne[d] > 1 && t->nb[d] != expect) return false;
        expect *= (size_t)t->ne[d];
    }
    return true;
}

bool lm_tensor_same_shape(const lm_tensor *a, const lm_tensor *b) {
    for (int d = 0; d < LM_MAX_DIMS; d++)
        if (a->ne[d] != b->ne[d]) return false;
    return true;
}

lm_tensor lm_tensor_slice(const lm_tensor *t, int dim, int64_t i0, int64_t n) {
    LM_ASSERT(dim >= 1 && dim < LM_MAX_DIMS && i0 >= 0 && n >= 1 && i0 + n <= t->ne[dim]);
    lm_tensor v = *t;
    v.offs += (size_t)i0 * t->nb[dim];
    v.ne[dim] = n;
    return v;
}

lm_tensor lm_tensor_reshape(const lm_tensor *t, int n_dims, const int64_t *ne) {
    LM_ASSERT(lm_tensor_is_contiguous(t));
    lm_tensor v;
    lm_tensor_init(&v, t->type, n_dims, ne);
    LM_ASSERT(lm_tensor_nelements(&v) == lm_tensor_nelements(t));
    v.buf = t->buf;
    v.offs = t->offs;
    memcpy(v.name, t->name, sizeof v.name);
    return v;
}
