/*
 * op_harness.h — runs one op case (op_cases.h) on any backend: seeded random inputs made on the
 * host, uploaded to the backend, the op built through ops.h (so the builders' validation is
 * exercised too), the output read back as floats. The output arena is filled with a sentinel
 * pattern first; any byte written outside the op's destination is reported.
 */
#ifndef LM_OP_HARNESS_H
#define LM_OP_HARNESS_H

#include "op_cases.h"

typedef struct lm_case_result {
    float *out;        /* malloc'ed output values (i32 outputs converted) */
    int64_t n;         /* number of values */
    bool sentinel_ok;  /* no stray writes outside the destination */
    double seconds;    /* fastest of the runs (build + submit + sync), for benchmarks */
    double bytes, flops;
} lm_case_result;

/* Run case c with inputs from `seed` on backend be, `reps` times (>= 1). */
lm_status lm_case_run(const lm_op_case *c, uint64_t seed, lm_backend *be, int reps, lm_case_result *r);
void lm_case_result_free(lm_case_result *r);
/* Every case of the table on backend `name` against the reference (two seeds each); failures
 * are logged to stderr. Returns the number of failed (or unsupported) cases. With verbose, every
 * case's error is printed. `label` tags the log lines. */
int lm_conformance_run(const char *name, const char *label, bool verbose);
/* the same with the tolerance of matmul / matmul_id cases on quantized weights raised to at least
 * qmm_tol (a backend path that rounds activations to 8 bits) */
int lm_conformance_run_qmm(const char *name, const char *label, bool verbose, double qmm_tol);

/* Host -> device -> host copies on backend `name` (device 0): n floats at an odd offset into a
 * compute buffer, read back whole and in part; a read past the end of the tensor must be
 * refused. Returns NULL, or what went wrong (static buffer). */
const char *tu_transfer_round_trip(const char *name, size_t n);

/* "matmul q4_K [768, 35, 6]" */
void lm_case_describe(const lm_op_case *c, char *buf, size_t cap);

#endif /* LM_OP_HARNESS_H */
