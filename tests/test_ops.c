/*
 * test_ops.c — the op-conformance suite: every case of op_cases.h on every CPU code path (the
 * AVX-512, AVX2 and generic C kernel tables) against the scalar double-precision reference ("ref"
 * backend), on seeded random data with odd shapes. Checks: finite output, normalised MSE under
 * the case's tolerance (exact equality for integer outputs), no bytes written outside the
 * destination. GPU backends run the same table in their own suites.
 */
#define _GNU_SOURCE
#include "op_harness.h"
#include "test_util.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* table_env: a variable that forces a narrower kernel table (NULL = the best this CPU has);
 * act: LUMEN_CPU_ACT (NULL: the default, 8-bit decode dots where the table has them, TOL_ACT8 on
 * quantized matmuls; "q8x2" and "q16": ~16-bit activations, exact-arithmetic tolerances) */
static void check_backend(const char *label, const char *table_env, const char *act) {
    if (table_env) setenv(table_env, "1", 1);
    if (act) setenv("LUMEN_CPU_ACT", act, 1);
    const int failures = lm_conformance_run_qmm("cpu", label, getenv("LUMEN_TEST_VERBOSE") != NULL, act ? 0.0 : TOL_ACT8);
    if (table_env) unsetenv(table_env);
    unsetenv("LUMEN_CPU_ACT");
    cr_assert_eq(failures, 0, "%d op cases failed on %s", failures, label);
}

/* the best table here (AVX-512 where the CPU has it) and AVX2 with AVX-512 turned off, each with
 * the default 8-bit, the two-plane and the q16 decode activations; plain C (q16 only) */
Test(conformance, cpu_simd) { check_backend("cpu", NULL, NULL); }
Test(conformance, cpu_simd_q8x2) { check_backend("cpu/q8x2", NULL, "q8x2"); }
Test(conformance, cpu_simd_q16) { check_backend("cpu/q16", NULL, "q16"); }
Test(conformance, cpu_avx2) { check_backend("cpu/avx2", "LUMEN_CPU_NO_AVX512", NULL); }
Test(conformance, cpu_avx2_q8x2) { check_backend("cpu/avx2/q8x2", "LUMEN_CPU_NO_AVX512", "q8x2"); }
Test(conformance, cpu_avx2_q16) { check_backend("cpu/avx2/q16", "LUMEN_CPU_NO_AVX512", "q16"); }
Test(conformance, cpu_generic) { check_backend("cpu/generic", "LUMEN_CPU_GENERIC", "q16"); }

Test(conformance, reference_closed_forms) {
    lm_backend *ref;
    lm_backend_config cfg = {0, 1};
    cr_assert_eq(lm_backend_create("ref", &cfg, &ref), LM_STATUS_OK);
    /* rms_norm of a constant row c: c / sqrt(c^2 + eps) */
    lm_op_case c = {"rms", LM_OP_RMS_NORM, LM_F32, {8, 1, 1}, {0, 0}, {0.0f}, 0};
    lm_case_result r;
    cr_assert_eq(lm_case_run(&c, 7, ref, 1, &r), LM_STATUS_OK);
    double ss = 0;
    for (int i = 0; i < 8; i++) ss += (double)r.out[i] * r.out[i];
    cr_assert(fabs(ss / 8 - 1.0) < 1e-6, "normalised rows have mean square 1, got %g", ss / 8);
    lm_case_result_free(&r);
    /* softcap saturates at +-cap and is odd */
    lm_op_case sc = {"softcap", LM_OP_SOFTCAP, LM_F32, {64, 2, 1}, {0}, {30.0f}, 0};
    cr_assert_eq(lm_case_run(&sc, 3, ref, 1, &r), LM_STATUS_OK);
    for (int64_t i = 0; i < r.n; i++) cr_assert(fabsf(r.out[i]) < 30.0f);
    lm_case_result_free(&r);
    /* moe weights sum to 1 without a scale */
    lm_op_case mw = {"moe", LM_OP_MOE_WEIGHTS, LM_F32, {16, 4, 3}, {0}, {0}, 0};
    cr_assert_eq(lm_case_run(&mw, 5, ref, 1, &r), LM_STATUS_OK);
    for (int t = 0; t < 3; t++) {
        double s = 0;
        for (int j = 0; j < 4; j++) s += r.out[t * 4 + j];
        cr_assert(fabs(s - 1.0) < 1e-6);
    }
    lm_case_result_free(&r);
    lm_backend_destroy(ref);
}
