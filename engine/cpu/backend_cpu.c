/*
 * backend_cpu.c — the CPU device: host memory buffers (or zero-copy views of the mapped model
 * file), synchronous execution. Two registered backends share this file:
 *   "cpu"  the fast path (SIMD kernels + thread pool), the offload target
 *   "ref"  the scalar double-precision reference, for tests and for producing reference logits
 */
#define _GNU_SOURCE
#include "cpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>

typedef struct cpu_impl {
    bool ref;
    lm_cpu_fast *fast;
} cpu_impl;

static int cpu_device_count(void) { return 1; }

static lm_status create_common(const lm_backend_ops *ops, bool ref, const lm_backend_config *cfg, lm_backend **out) {
    lm_backend *be = calloc(1, sizeof *be);
    cpu_impl *im = calloc(1, sizeof *im);
    if (!be || !im) {
        free(be);
        free(im);
        return lm_fail(LM_STATUS_OUT_OF_MEMORY, "cpu backend: out of memory");
    }
    be->ops = ops;
    be->impl = im;
    im->ref = ref;
    if (!ref) {
        int nt = cfg->n_threads > 0 ? cfg->n_threads : lm_cpu_count();
        im->fast = lm_cpu_fast_create(nt);
        if (!im->fast) {
            free(im);
            free(be);
            return lm_fail(LM_STATUS_OUT_OF_MEMORY, "cpu backend: cannot create %d threads", nt);
        }
    }
    *out = be;
    return LM_STATUS_OK;
}

extern const lm_backend_ops lm_cpu_backend_ops, lm_ref_backend_ops;

static lm_status cpu_create(const lm_backend_config *cfg, lm_backend **out) {
    return create_common(&lm_cpu_backend_ops, false, cfg, out);
}
static lm_status ref_create(const lm_backend_config *cfg, lm_backend **out) {
    return create_common(&lm_ref_backend_ops, true, cfg, out);
}

static void cpu_destroy(lm_backend *be) {
    if (!be) return;
    cpu_impl *im = be->impl;
    if (im) lm_cpu_fast_free(im->fast);
    free(im);
    free(be);
}

static lm_status cpu_device_info(lm_backend *be, lm_device_info *out) {
    cpu_impl *im = be->impl;
    memset(out, 0, sizeof *out);
    out->is_cpu = true;
    struct sysinfo si;
    if (sysinfo(&si) == 0) {
        out->memory_total = (uint64_t)si.totalram * si.mem_unit;
        out->memory_free = (uint64_t)(si.freeram + si.bufferram) * si.mem_unit;
    }
    snprintf(out->name, sizeof out->name, "CPU (%d cores, %s)", lm_cpu_count(), im->ref ? "reference" : lm_cpu_fast_isa());
    out->unified_memory = true;
    /* Test hook: LUMEN_CPU_MAX_ALLOC=N makes the CPU behave like a discrete device with an
       allocation limit of N bytes (weights copied into chunked buffers instead of mapped), so the
       GPU loading path is exercised where no GPU exists. */
    const char *lim = getenv("LUMEN_CPU_MAX_ALLOC");
    if (lim && *lim) {
        out->unified_memory = false;
        out->max_alloc = strtoull(lim, NULL, 10);
    }
    return LM_STATUS_OK;
}

static lm_status cpu_buffer_alloc(lm_backend *be, size_t size, int usage, lm_buffer **out) {
    lm_buffer *b = calloc(1, sizeof *b);
    void *mem = lm_aalloc(size);
    if (!b || !mem) {
        free(b);
        lm_afree(mem);
        return lm_fail(LM_STATUS_OUT_OF_MEMORY, "cpu backend: cannot allocate %zu bytes", size);
    }
    b->be = be;
    b->size = size;
    b->host = mem;
    b->usage = usage;
    b->owns_host = true;
    *out = b;
    return LM_STATUS_OK;
}

static lm_status cpu_buffer_from_host(lm_backend *be, void *ptr, size_t size, int usage, lm_buffer **out) {
    lm_buffer *b = calloc(1, sizeof *b);
    if (!b) return lm_fail(LM_STATUS_OUT_OF_MEMORY, "cpu backend: out of memory");
    b->be = be;
    b->size = size;
    b->host = ptr;
    b->usage = usage;
    b->owns_host = false;
    *out = b;
    return LM_STATUS_OK;
}

static void cpu_buffer_free(lm_buffer *b) {
    if (!b) return;
    if (b->owns_host) lm_afree(b->host);
    free(b);
}

static lm_status cpu_tensor_set(lm_backend *be, lm_tensor *t, const void *src, size_t offs, size_t size) {
    (void)be;
    if (offs + size > lm_tensor_nbytes(t)) return lm_fail(LM_STATUS_INVALID_ARGUMENT, "tensor_set: out of range");
    memcpy((char *)lm_tensor_host(t) + offs, src, size);
    return LM_STATUS_OK;
}

static lm_status cpu_tensor_get(lm_backend *be, const lm_tensor *t, void *dst, size_t offs, size_t size) {
    (void)be;
    if (offs + size > lm_tensor_nbytes(t)) return lm_fail(LM_STATUS_INVALID_ARGUMENT, "tensor_get: out of range");
    memcpy(dst, (const char *)lm_tensor_host(t) + offs, size);
    return LM_STATUS_OK;
}

static bool cpu_supports(lm_backend *be, const lm_node *n) {
    (void)be;
    if (!n->dst->buf || !n->dst->buf->host) return false;
    for (int i = 0; i < LM_MAX_SRC; i++)
        if (n->src[i] && (!n->src[i]->buf || !n->src[i]->buf->host)) return false;
    return n->op > LM_OP_NONE && n->op < LM_OP_COUNT;
}

static void cpu_run(lm_backend *be, const lm_node *n) {
    cpu_impl *im = be->impl;
    double t0 = be->profiling ? lm_time_s() : 0;
    if (im->ref) lm_cpu_ref_run(n);
    else lm_cpu_fast_run(im->fast, n);
    if (be->profiling) {
        double bytes, flops;
        lm_node_cost(n, &bytes, &flops);
        be->prof.seconds[n->op] += lm_time_s() - t0;
        be->prof.calls[n->op]++;
        be->prof.bytes[n->op] += bytes;
        be->prof.flops[n->op] += flops;
    }
}

static lm_status cpu_begin(lm_backend *be) { return lm_backend_take_error(be); }
static lm_status cpu_submit(lm_backend *be) { return lm_backend_take_error(be); }
static lm_status cpu_sync(lm_backend *be) { return lm_backend_take_error(be); }
static void cpu_profile_enable(lm_backend *be, bool on) {
    be->profiling = on;
    if (on) memset(&be->prof, 0, sizeof be->prof);
}

#define CPU_OPS(NAME, CREATE)                                                                      \
    {                                                                                              \
        .version = LM_BACKEND_OPS_VERSION, .name = NAME, .device_count = cpu_device_count,         \
        .create = CREATE, .destroy = cpu_destroy, .device_info = cpu_device_info,                 \
        .buffer_alloc = cpu_buffer_alloc, .buffer_from_host = cpu_buffer_from_host,                \
        .buffer_free = cpu_buffer_free, .tensor_set = cpu_tensor_set, .tensor_get = cpu_tensor_get, \
        .supports = cpu_supports, .run = cpu_run, .begin = cpu_begin, .submit = cpu_submit,        \
        .sync = cpu_sync, .profile_enable = cpu_profile_enable,                                    \
    }

const lm_backend_ops lm_cpu_backend_ops = CPU_OPS("cpu", cpu_create);
const lm_backend_ops lm_ref_backend_ops = CPU_OPS("ref", ref_create);
