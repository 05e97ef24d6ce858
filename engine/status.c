/*
 * status.c — lm_status names, the thread-local error message, assertions, small host utilities.
 */
#define _GNU_SOURCE
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Thread_local char err_msg[1024];

const char *lm_status_string(lm_status s) {
    switch (s) {
    case LM_STATUS_OK: return "ok";
    case LM_STATUS_INVALID_ARGUMENT: return "invalid argument";
    case LM_STATUS_IO: return "i/o error";
    case LM_STATUS_FORMAT: return "format error";
    case LM_STATUS_UNSUPPORTED: return "unsupported";
    case LM_STATUS_OUT_OF_MEMORY: return "out of memory";
    case LM_STATUS_BACKEND: return "backend error";
    case LM_STATUS_CONTEXT_FULL: return "context full";
    case LM_STATUS_NOT_FOUND: return "not found";
    case LM_STATUS_BUFFER_TOO_SMALL: return "buffer too small";
    }
    return "unknown status";
}

const char *lm_last_error(void) { return err_msg; }
const char *lm_version(void) { return "0.1.0"; }

void lm_clear_error(void) { err_msg[0] = 0; }

lm_status lm_fail(lm_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_msg, sizeof err_msg, fmt, ap);
    va_end(ap);
    return status;
}

lm_status lm_fail_prefix(lm_status status, const char *fmt, ...) {
    char prefix[512], old[sizeof err_msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err_msg, sizeof old);
    size_t pl = strnlen(prefix, sizeof prefix), ol = strnlen(old, sizeof old);
    if (pl > sizeof err_msg - 1) pl = sizeof err_msg - 1;
    if (ol > sizeof err_msg - 1 - pl) ol = sizeof err_msg - 1 - pl;
    memcpy(err_msg, prefix, pl);
    memcpy(err_msg + pl, old, ol);
    err_msg[pl + ol] = 0;
    return status;
}

void lm_assert_fail(const char *expr, const char *file, int line) {
    fprintf(stderr, "lumen: assertion failed: %s (%s:%d)\n", expr, file, line);
    abort();
}

void *lm_aalloc(size_t size) {
    void *p = NULL;
    if (size == 0) size = 64;
    if (posix_memalign(&p, 64, lm_pad(size, 64)) != 0) return NULL;
    return p;
}

void lm_afree(void *p) { free(p); }

double lm_time_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int lm_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}
