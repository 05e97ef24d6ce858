/*
 * cpu.h — internals of the CPU backend: thread pool, the scalar reference (ref.c, the oracle for
 * every other implementation) and the fast path (fast.c + SIMD kernels).
 */
#ifndef LM_CPU_H
#define LM_CPU_H

#include "../ops.h"

#include <math.h>

/* ---- thread pool: fn runs on every thread (the caller is thread 0), returns when all finish */
typedef void (*lm_task_fn)(void *arg, int ith, int nth);
typedef struct lm_threadpool lm_threadpool;
lm_threadpool *lm_threadpool_create(int n_threads);
void lm_threadpool_free(lm_threadpool *tp);
int lm_threadpool_size(const lm_threadpool *tp);
void lm_threadpool_run(lm_threadpool *tp, lm_task_fn fn, void *arg);

/* ---- reference: scalar, double accumulation, single thread; supports every op and dtype */
void lm_cpu_ref_run(const lm_node *n);

/* ---- fast path */
typedef struct lm_cpu_fast lm_cpu_fast;
lm_cpu_fast *lm_cpu_fast_create(int n_threads);
void lm_cpu_fast_free(lm_cpu_fast *f);
void lm_cpu_fast_run(lm_cpu_fast *f, const lm_node *n);
const char *lm_cpu_fast_isa(void); /* "avx512", "avx2" or "generic" */

/* Split [0, n) into nth near-equal parts; part ith is [*a, *b). */
static inline void lm_split(int64_t n, int ith, int nth, int64_t *a, int64_t *b) {
    int64_t per = (n + nth - 1) / nth;
    *a = lm_min64((int64_t)ith * per, n);
    *b = lm_min64(*a + per, n);
}

/* Element of a f32/f16/bf16/i32 tensor (host memory) as double. */
double lm_cpu_get(const lm_tensor *t, int64_t i0, int64_t i1, int64_t i2, int64_t i3);

/* GELU, tanh approximation (gelu_pytorch_tanh). */
static inline double lm_gelu_tanh_d(double x) {
    return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}

#endif /* LM_CPU_H */
