/*
 * threadpool.c — persistent worker threads for the CPU backend. A run publishes a task by bumping
 * a generation counter; workers spin briefly (ops arrive back to back during a step, and a futex
 * wake costs ~5-10 us, more than many decode ops take) and then sleep on a condition variable.
 */
#define _GNU_SOURCE
#include "cpu.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

/* Spin ~tens of microseconds with pause, then yield the core (another runnable thread, maybe our
   own straggler, gets it: a 2-core machine shared with other work otherwise stalls every op), and
   sleep after ~2 ms without work. */
#define SPIN_PAUSE 2000
#define SPIN_YIELD 2000

struct lm_threadpool {
    int n;
    pthread_t *threads;
    _Atomic uint64_t gen;
    _Atomic int pending;
    _Atomic int sleepers;
    _Atomic bool stop;
    lm_task_fn fn;
    void *arg;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

typedef struct worker_arg {
    lm_threadpool *tp;
    int ith;
} worker_arg;

static void *worker(void *p) {
    worker_arg *wa = p;
    lm_threadpool *tp = wa->tp;
    int ith = wa->ith;
    free(wa);
    uint64_t seen = 0;
    for (;;) {
        uint64_t g;
        int spins = 0;
        while ((g = atomic_load_explicit(&tp->gen, memory_order_acquire)) == seen) {
            if (atomic_load_explicit(&tp->stop, memory_order_relaxed)) return NULL;
            if (++spins < SPIN_PAUSE) {
                cpu_relax();
                continue;
            }
            if (spins < SPIN_PAUSE + SPIN_YIELD) {
                sched_yield();
                continue;
            }
            pthread_mutex_lock(&tp->mu);
            atomic_fetch_add(&tp->sleepers, 1);
            while (atomic_load(&tp->gen) == seen && !atomic_load(&tp->stop)) pthread_cond_wait(&tp->cv, &tp->mu);
            atomic_fetch_sub(&tp->sleepers, 1);
            pthread_mutex_unlock(&tp->mu);
            spins = 0;
        }
        if (atomic_load(&tp->stop)) return NULL;
        seen = g;
        tp->fn(tp->arg, ith, tp->n);
        atomic_fetch_sub_explicit(&tp->pending, 1, memory_order_acq_rel);
    }
}

lm_threadpool *lm_threadpool_create(int n) {
    if (n < 1) n = 1;
    lm_threadpool *tp = calloc(1, sizeof *tp);
    if (!tp) return NULL;
    tp->n = n;
    pthread_mutex_init(&tp->mu, NULL);
    pthread_cond_init(&tp->cv, NULL);
    tp->threads = calloc((size_t)n, sizeof(pthread_t));
    if (!tp->threads) {
        free(tp);
        return NULL;
    }
    for (int i = 1; i < n; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa) { tp->n = i; break; }
        wa->tp = tp;
        wa->ith = i;
        if (pthread_create(&tp->threads[i], NULL, worker, wa) != 0) {
            free(wa);
            tp->n = i; /* run with the threads we got */
            break;
        }
    }
    return tp;
}

int lm_threadpool_size(const lm_threadpool *tp) { return tp->n; }

void lm_threadpool_run(lm_threadpool *tp, lm_task_fn fn, void *arg) {
    if (tp->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    tp->fn = fn;
    tp->arg = arg;
    atomic_store_explicit(&tp->pending, tp->n - 1, memory_order_relaxed);
    atomic_fetch_add(&tp->gen, 1); /* seq_cst: pairs with the sleepers check below */
    if (atomic_load(&tp->sleepers) > 0) {
        pthread_mutex_lock(&tp->mu);
        pthread_cond_broadcast(&tp->cv);
        pthread_mutex_unlock(&tp->mu);
    }
    fn(arg, 0, tp->n);
    for (int spins = 0; atomic_load_explicit(&tp->pending, memory_order_acquire) > 0; spins++) {
        if (spins < SPIN_PAUSE) cpu_relax();
        else sched_yield();
    }
}

void lm_threadpool_free(lm_threadpool *tp) {
    if (!tp) return;
    atomic_store(&tp->stop, true);
    pthread_mutex_lock(&tp->mu);
    pthread_cond_broadcast(&tp->cv);
    pthread_mutex_unlock(&tp->mu);
    for (int i = 1; i < tp->n; i++) pthread_join(tp->threads[i], NULL);
    pthread_mutex_destroy(&tp->mu);
    pthread_cond_destroy(&tp->cv);
    free(tp->threads);
    free(tp);
}
