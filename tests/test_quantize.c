/*
 * test_quantize.c — `lumen quantize` (lm_model_quantize): the HF golden models rewritten in
 * lumen's formats (i4_g128, f8_e4m3 with block or per-channel scales) still follow HF's logits
 * within the formats' quantization error, the fast CPU path matches the scalar reference on the
 * converted files, what is not a weight matrix is copied unchanged, and bad requests fail cleanly.
 */
#define _GNU_SOURCE
#include "lumen.h"
#include "golden.h"
#include "test_util.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static double rel(const float *a, const float *ref, size_t n) { return tu_max_rel(a, ref, (int64_t)n); }

/* fixture `name` rewritten as `type` into a temporary file (returned, static buffer) */
static void converted(const char *name, const char *type, bool per_channel, double bound) {
    golden g;
    load_golden(name, &g);
    char in[512], out[512];
    snprintf(in, sizeof in, "%s/hf/%s.gguf", LUMEN_FIXTURES, name);
    snprintf(out, sizeof out, "%s", golden_quantized(name, type, per_channel));
    struct stat si, so;
    cr_assert(stat(in, &si) == 0 && stat(out, &so) == 0);
    cr_assert_lt(so.st_size, si.st_size, "nothing was converted");
    lm_model *m = load_model_path(out, "cpu"), *r = load_model_path(out, "ref");
    const size_t n = (size_t)(g.n_tok[0] < 64 ? g.n_tok[0] : 64) * g.n_vocab;
    float *lc = golden_logits_seq0(m, &g), *lr = golden_logits_seq0(r, &g);
    const double vs_hf = rel(lc, g.logits[0], n), vs_ref = rel(lc, lr, n);
    fprintf(stderr, "%-13s as %s%s: %.1f -> %.1f KiB, vs HF %.2e (bound %.0e), cpu vs ref backend %.2e\n", name, type,
            per_channel ? " (per-channel)" : "", si.st_size / 1024.0, so.st_size / 1024.0, vs_hf, bound, vs_ref);
    cr_expect_leq(vs_hf, bound, "%s as %s: %g from HF", name, type, vs_hf);
    cr_expect_gt(vs_hf, 1e-6, "the weights did not change at all?");
    cr_expect_leq(vs_ref, 1e-4, "fast CPU path vs reference on the converted file: %g", vs_ref);
    free(lc);
    free(lr);
    lm_model_free(m);
    lm_model_free(r);
    free(g.blob);
    remove(out);
}

Test(quantize_model, gemma3_f8_e4m3) { converted("gemma3_tiny", "f8_e4m3", false, 0.02); }
Test(quantize_model, gemma4_dense_f8_e4m3_per_channel) { converted("gemma4_dense", "f8_e4m3", true, 0.02); }
Test(quantize_model, gemma3_i4_g128) { converted("gemma3_tiny", "i4_g128", false, 0.1); }
Test(quantize_model, gemma4_dense_f8_e4m3) { converted("gemma4_dense", "f8_e4m3", false, 0.02); }
Test(quantize_model, gemma4_dense_i4_g128) { converted("gemma4_dense", "i4_g128", false, 0.1); }

Test(quantize_model, bad_requests) {
    char in[512];
    snprintf(in, sizeof in, "%s/hf/gemma3_tiny.gguf", LUMEN_FIXTURES);
    const char *out = tu_tmp_path("bad.gguf");
    lm_quantize_params qp = lm_quantize_default_params();
    qp.type = "q3_xs";
    cr_assert_eq(lm_model_quantize(in, out, &qp), LM_STATUS_INVALID_ARGUMENT);
    cr_assert(strstr(lm_last_error(), "unknown type") != NULL, "%s", lm_last_error());
    qp.type = "i4_g128";
    qp.per_channel = true;
    cr_assert_eq(lm_model_quantize(in, out, &qp), LM_STATUS_INVALID_ARGUMENT);
    qp.per_channel = false;
    cr_assert_eq(lm_model_quantize("/nonexistent/model.gguf", out, &qp), LM_STATUS_IO);
    cr_assert_eq(lm_model_quantize(in, "/nonexistent/dir/out.gguf", &qp), LM_STATUS_IO);
    /* a file whose matrices are all quantized already: nothing to do without requantize */
    const char *real = tu_real_model_path();
    if (real) {
        cr_assert_eq(lm_model_quantize(real, out, &qp), LM_STATUS_UNSUPPORTED);
        cr_assert(strstr(lm_last_error(), "requantize") != NULL, "%s", lm_last_error());
        struct stat so;
        cr_assert_neq(stat(out, &so), 0, "a failed conversion must not leave a file behind");
    }
}
