/*
 * common.h — internal helpers shared by every engine file: error propagation, assertions,
 * checked arithmetic and small utilities. Not part of the public API.
 */
#ifndef LM_COMMON_H
#define LM_COMMON_H

#include "lumen.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define LM_EXTERN_C_BEGIN extern "C" {
#define LM_EXTERN_C_END }
#else
#define LM_EXTERN_C_BEGIN
#define LM_EXTERN_C_END
#endif

LM_EXTERN_C_BEGIN

#if defined(__GNUC__)
#define LM_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define LM_UNUSED __attribute__((unused))
#define LM_LIKELY(x) __builtin_expect(!!(x), 1)
#define LM_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define LM_PRINTF(a, b)
#define LM_UNUSED
#define LM_LIKELY(x) (x)
#define LM_UNLIKELY(x) (x)
#endif

/* Record a failure message for the calling thread and return `status`. */
lm_status lm_fail(lm_status status, const char *fmt, ...) LM_PRINTF(2, 3);
/* Prefix the current thread-local message with more context ("loading x: " + old). */
lm_status lm_fail_prefix(lm_status status, const char *fmt, ...) LM_PRINTF(2, 3);
void lm_clear_error(void);

/* Propagate a non-OK status. */
#define LM_TRY(expr)                                                                               \
    do {                                                                                           \
        lm_status lm_try_s_ = (expr);                                                              \
        if (lm_try_s_ != LM_STATUS_OK) return lm_try_s_;                                           \
    } while (0)

/* Broken invariant = programmer error: abort with file:line. Never for bad input. */
void lm_assert_fail(const char *expr, const char *file, int line) __attribute__((noreturn));
#define LM_ASSERT(x)                                                                               \
    do {                                                                                           \
        if (LM_UNLIKELY(!(x))) lm_assert_fail(#x, __FILE__, __LINE__);                             \
    } while (0)

/* Checked size arithmetic: return false on overflow. */
static inline bool lm_mul_ok(uint64_t a, uint64_t b, uint64_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool lm_add_ok(uint64_t a, uint64_t b, uint64_t *out) {
    return !__builtin_add_overflow(a, b, out);
}

static inline size_t lm_pad(size_t x, size_t a) { return (x + a - 1) / a * a; }
static inline int64_t lm_min64(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t lm_max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* Aligned host allocation (64-byte by default); lm_afree accepts NULL. */
void *lm_aalloc(size_t size);
void lm_afree(void *p);

/* Monotonic clock in seconds. */
double lm_time_s(void);

/* Number of online CPU cores. */
int lm_cpu_count(void);

LM_EXTERN_C_END

#endif /* LM_COMMON_H */
