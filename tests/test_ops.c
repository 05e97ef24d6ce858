/*
 * test_ops.c — the op-conformance suite: every case of op_cases.h on every CPU code path (the
 * AVX2 kernels and the generic C kernels) against the scalar double-precision reference ("ref"
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

static void check_backend(const char *name, bool generic) {
    if (generic) setenv("LUMEN_CPU_GENERIC", "1", 1);
    else unsetenv("LUMEN_CPU_GENERIC");
    lm_backend *ref = NULL, *be = NULL;
    lm_backend_config cfg = {.device = 0, .n_threads = 2};
    cr_assert_eq(lm_backend_create("ref", &cfg, &ref), LM_STATUS_OK, "%s", lm_last_error());
    cr_assert_eq(lm_backend_create(name, &cfg, &be), LM_STATUS_OK, "%s", lm_last_error());
    int failures = 0;
    for (int i = 0; i < LM_N_OP_CASES; i++) {
        const lm_op_case *c = &lm_op_cases[i];
        char desc[160];
        lm_case_describe(c, desc, sizeof desc);
        for (uint64_t seed = 1; seed <= 2; seed++) {
            lm_case_result a, b;
            lm_status sa = lm_case_run(c, seed * 1000 + (uint64_t)i, ref, 1, &a);
            lm_status sb = lm_case_run(c, seed * 1000 + (uint64_t)i, be, 1, &b);
            if (sa || sb) {
                cr_log_error("%s: run failed: %s", desc, lm_last_error());
                failures++;
                continue;
            }
            bool ok = a.n == b.n && b.sentinel_ok && a.sentinel_ok && tu_all_finite(a.out, a.n) && tu_all_finite(b.out, b.n);
            double err = ok ? tu_nmse(b.out, a.out, a.n) : INFINITY;
            if (c->tol == 0.0) ok = ok && err == 0.0;
            else ok = ok && err <= c->tol;
            if (getenv("LUMEN_TEST_VERBOSE"))
                fprintf(stderr, "%-44s %-12s seed %llu nmse %.3g (tol %.3g)\n", desc, generic ? "generic" : name,
                        (unsigned long long)seed, err, c->tol);
            if (!ok) {
                cr_log_error("%s [%s%s] seed %llu: nmse %.3g (tol %.3g), sentinel %d, finite %d/%d", desc, name,
                             generic ? "/generic" : "", (unsigned long long)seed, err, c->tol, b.sentinel_ok,
                             tu_all_finite(a.out, a.n), tu_all_finite(b.out, b.n));
                failures++;
            }
            lm_case_result_free(&a);
            lm_case_result_free(&b);
        }
    }
    lm_backend_destroy(ref);
    lm_backend_destroy(be);
    unsetenv("LUMEN_CPU_GENERIC");
    cr_assert_eq(failures, 0, "%d op cases failed on %s", failures, name);
}

Test(conformance, cpu_simd) { check_backend("cpu", false); }
Test(conformance, cpu_generic) { check_backend("cpu", true); }

/* The reference itself against closed forms, so the oracle is not only checked against itself. */
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
