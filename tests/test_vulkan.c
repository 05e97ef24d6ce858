/*
 * test_vulkan.c — the Vulkan backend, run for real (lavapipe in CI): the op-conformance table
 * against the CPU reference with the Khronos validation layer on (any validation message fails),
 * and the backend's device plumbing. Skipped when no Vulkan device exists.
 */
#define _GNU_SOURCE
#include "op_harness.h"
#include "test_util.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

int lm_vk_validation_messages(void);
int lm_vk_validation_instances(void);

static bool vulkan_required(void) {
    const char *req = getenv("LUMEN_REQUIRE_VULKAN");
    return req && req[0] == '1';
}

static bool have_vulkan(void) {
    const lm_backend_ops *ops = lm_backend_find("vulkan");
    const bool have = ops && ops->device_count() > 0;
    /* CI installs lavapipe and sets LUMEN_REQUIRE_VULKAN=1: a missing device is then a failure, not a skip */
    if (!have && vulkan_required()) cr_assert_fail("LUMEN_REQUIRE_VULKAN=1 but no Vulkan device was found: %s", lm_last_error());
    return have;
}

Test(vulkan, conformance, .timeout = 1800) {
    setenv("LUMEN_VK_VALIDATION", "1", 1);
    if (!have_vulkan()) cr_skip("no Vulkan device");
    const int failures = lm_conformance_run("vulkan", "vulkan", getenv("LUMEN_TEST_VERBOSE") != NULL);
    cr_expect_eq(failures, 0, "%d op cases failed on vulkan", failures);
    cr_expect_eq(lm_vk_validation_messages(), 0, "%d Vulkan validation messages", lm_vk_validation_messages());
    /* in CI the validation layer is installed: a run without it would pass vacuously */
    if (vulkan_required()) cr_expect_gt(lm_vk_validation_instances(), 0, "the Khronos validation layer was not enabled");
}

/* The plain kernels of devices without subgroup arithmetic (shared-memory reductions), forced on. */
Test(vulkan, conformance_without_subgroups, .timeout = 1800) {
    setenv("LUMEN_VK_VALIDATION", "1", 1);
    setenv("LUMEN_VK_NO_SUBGROUP", "1", 1);
    if (!have_vulkan()) cr_skip("no Vulkan device");
    const int failures = lm_conformance_run("vulkan", "vulkan", getenv("LUMEN_TEST_VERBOSE") != NULL);
    cr_expect_eq(failures, 0, "%d op cases failed on vulkan without subgroups", failures);
    cr_expect_eq(lm_vk_validation_messages(), 0, "%d Vulkan validation messages", lm_vk_validation_messages());
}

Test(vulkan, device_info) {
    setenv("LUMEN_VK_VALIDATION", "1", 1);
    if (!have_vulkan()) cr_skip("no Vulkan device");
    lm_backend *be;
    lm_backend_config cfg = {0, 0};
    cr_assert_eq(lm_backend_create("vulkan", &cfg, &be), LM_STATUS_OK, "%s", lm_last_error());
    lm_device_info di;
    cr_assert_eq(be->ops->device_info(be, &di), LM_STATUS_OK);
    fprintf(stderr, "vulkan device: %s, %.1f GiB, max allocation %.2f GiB\n", di.name, (double)di.memory_total / (1u << 30),
            (double)di.max_alloc / (1u << 30));
    cr_assert(di.max_alloc > 0);
    lm_backend_destroy(be);
}

/* A host -> device -> host round trip of a range larger than the staging ring (several chunks,
 * odd size, odd offset into a buffer). */
static void transfer_round_trip(void) {
    const char *e = tu_transfer_round_trip("vulkan", (70u << 20) / 4 + 3);
    cr_assert_null(e, "%s", e);
    cr_assert_eq(lm_vk_validation_messages(), 0);
}

Test(vulkan, transfers) {
    setenv("LUMEN_VK_VALIDATION", "1", 1);
    if (!have_vulkan()) cr_skip("no Vulkan device");
    transfer_round_trip();
}

/* The same through the staging ring (device buffers not mapped, as on a discrete GPU) */
Test(vulkan, staged_transfers) {
    setenv("LUMEN_VK_VALIDATION", "1", 1);
    setenv("LUMEN_VK_STAGED", "1", 1);
    if (!have_vulkan()) cr_skip("no Vulkan device");
    transfer_round_trip();
}

#include "golden.h"

/* HF golden fixtures on the Vulkan backend, within the foundation's tolerance */
static void vk_golden(const char *name) {
    setenv("LUMEN_VK_VALIDATION", "1", 1);
    if (!have_vulkan()) cr_skip("no Vulkan device");
    golden g;
    load_golden(name, &g);
    lm_model *m = load_model(name, "vulkan");
    const double one = run_chunks(name, m, &g, 64);
    const double ring = run_chunks(name, m, &g, 5);
    const double multi = run_interleaved(name, m, &g);
    fprintf(stderr, "%-13s on vulkan vs HF: one batch %.2e, 5-token chunks %.2e, interleaved %.2e\n", name, one, ring, multi);
    lm_model_free(m);
    free(g.blob);
    cr_expect_eq(lm_vk_validation_messages(), 0, "%d Vulkan validation messages", lm_vk_validation_messages());
}

Test(vulkan, gemma3_tiny, .timeout = 600) { vk_golden("gemma3_tiny"); }
/* weights, step inputs, KV and logits all through the staging ring */
Test(vulkan, gemma4_dense_staged, .timeout = 600) {
    setenv("LUMEN_VK_STAGED", "1", 1);
    vk_golden("gemma4_dense");
}
Test(vulkan, gemma4_dense, .timeout = 600) { vk_golden("gemma4_dense"); }
Test(vulkan, gemma4_moe, .timeout = 600) { vk_golden("gemma4_moe"); }
Test(vulkan, gemma4_e, .timeout = 600) { vk_golden("gemma4_e"); }

/* lumen's formats through a whole model (the Gemma 4 fixture converted by lm_model_quantize) */
Test(vulkan, lumen_formats, .timeout = 900) {
    setenv("LUMEN_VK_VALIDATION", "1", 1);
    if (!have_vulkan()) cr_skip("no Vulkan device");
    cr_expect_leq(golden_quantized_vs_cpu("gemma4_dense", "i4_g128", "vulkan"), 1e-4);
    cr_expect_leq(golden_quantized_vs_cpu("gemma4_dense", "f8_e4m3", "vulkan"), 1e-4);
    cr_expect_eq(lm_vk_validation_messages(), 0);
}

#include <math.h>
#include <string.h>

/* Gemma 3 270M Q4_K_M: the Vulkan backend against the CPU backend on the same file. Teacher-
 * forced logits over the first 64 tokens of the real-text fixture (mean KL <= 0.001), and the
 * same greedy continuation. Sizes are small because lavapipe runs shaders on the CPU. */
static int32_t *text_tokens(int32_t *n) {
    size_t size;
    char *txt = tu_read_file(tu_fixture("real/tokens.txt"), &size);
    cr_assert_not_null(txt);
    int32_t *ids = malloc(4096 * sizeof *ids), k = 0;
    char *p = txt, *end;
    for (long v; k < 4096 && (v = strtol(p, &end, 10), end != p); p = end) ids[k++] = (int32_t)v;
    free(txt);
    *n = k;
    return ids;
}

static lm_model *real_model(const char *backend) {
    lm_model_params mp = lm_model_default_params();
    mp.backend = backend;
    mp.n_threads = 2;
    lm_model *m;
    cr_assert_eq(lm_model_load(tu_real_model_path(), &mp, &m), LM_STATUS_OK, "%s", lm_last_error());
    return m;
}

static double log_softmax_kl(const float *p_logits, const float *q_logits, int32_t V) {
    double mp = -INFINITY, mq = -INFINITY, sp = 0, sq = 0;
    for (int32_t i = 0; i < V; i++) {
        mp = fmax(mp, p_logits[i]);
        mq = fmax(mq, q_logits[i]);
    }
    for (int32_t i = 0; i < V; i++) {
        sp += exp((double)p_logits[i] - mp);
        sq += exp((double)q_logits[i] - mq);
    }
    const double lp = mp + log(sp), lq = mq + log(sq);
    double kl = 0;
    for (int32_t i = 0; i < V; i++) {
        const double a = (double)p_logits[i] - lp, b = (double)q_logits[i] - lq;
        kl += exp(a) * (a - b);
    }
    return kl;
}

Test(vulkan, real_model_matches_cpu, .timeout = 1800) {
    setenv("LUMEN_VK_VALIDATION", "1", 1);
    if (!have_vulkan()) cr_skip("no Vulkan device");
    if (!tu_real_model_path()) cr_skip("Gemma 3 270M not installed (run tools/fetch_model.sh)");
    int32_t n_all;
    int32_t *toks = text_tokens(&n_all);
    const int32_t n = 64 < n_all ? 64 : n_all;
    lm_model *mc = real_model("cpu"), *mv = real_model("vulkan");
    const int32_t V = lm_vocab_size(mc);
    lm_context_params cp = lm_context_default_params();
    cp.n_ctx = 256;
    cp.n_batch = 64;
    cp.n_outputs_max = 64;
    lm_context *cc, *cv;
    cr_assert_eq(lm_context_create(mc, &cp, &cc), LM_STATUS_OK, "%s", lm_last_error());
    cr_assert_eq(lm_context_create(mv, &cp, &cv), LM_STATUS_OK, "%s", lm_last_error());
    lm_batch_entry e[64];
    for (int32_t i = 0; i < n; i++) e[i] = (lm_batch_entry){toks[i], i, 0, true};
    cr_assert_eq(lm_context_decode(cc, e, n), LM_STATUS_OK, "%s", lm_last_error());
    cr_assert_eq(lm_context_decode(cv, e, n), LM_STATUS_OK, "%s", lm_last_error());
    double kl = 0, kl_max = 0;
    int agree = 0;
    for (int32_t i = 0; i < n; i++) {
        const float *a = lm_context_logits(cc, i), *b = lm_context_logits(cv, i);
        const double k = log_softmax_kl(a, b, V);
        kl += k;
        kl_max = fmax(kl_max, k);
        int32_t ba = 0, bb = 0;
        for (int32_t v = 1; v < V; v++) {
            if (a[v] > a[ba]) ba = v;
            if (b[v] > b[bb]) bb = v;
        }
        agree += ba == bb;
    }
    kl /= n;
    fprintf(stderr, "Gemma 3 270M, vulkan vs cpu over %d positions: mean KL %.3g (max %.3g), top-1 agreement %d/%d\n", n, kl,
            kl_max, agree, n);
    cr_expect_leq(kl, 0.001, "mean KL %.6f", kl);
    /* greedy continuation of a prompt: identical tokens, the Vulkan side in LM_OUTPUT_ARGMAX mode
       (the token found on the device, no logits read back) */
    lm_context_params gp = cp;
    gp.output = LM_OUTPUT_ARGMAX;
    lm_context *cg;
    cr_assert_eq(lm_context_create(mv, &gp, &cg), LM_STATUS_OK, "%s", lm_last_error());
    const int32_t prompt[] = {2, 818, 5279, 529, 7001, 563}; /* "The capital of France is" */
    lm_context_seq_clear(cc, 0);
    for (int32_t i = 0; i < 6; i++) e[i] = (lm_batch_entry){prompt[i], i, 0, i == 5};
    cr_assert_eq(lm_context_decode(cc, e, 6), LM_STATUS_OK);
    cr_assert_eq(lm_context_decode(cg, e, 6), LM_STATUS_OK);
    for (int32_t s = 0; s < 8; s++) {
        const float *a = lm_context_logits(cc, 0);
        int32_t ba = 0;
        for (int32_t v = 1; v < V; v++)
            if (a[v] > a[ba]) ba = v;
        cr_assert_eq(lm_context_argmax(cc, 0), ba);
        cr_assert_null(lm_context_logits(cg, 0));
        const int32_t bb = lm_context_argmax(cg, 0);
        cr_expect_eq(ba, bb, "greedy step %d: cpu %d, vulkan %d", s, ba, bb);
        lm_batch_entry d = {ba, 6 + s, 0, true};
        cr_assert_eq(lm_context_decode(cc, &d, 1), LM_STATUS_OK);
        cr_assert_eq(lm_context_decode(cg, &d, 1), LM_STATUS_OK);
    }
    lm_context_free(cg);
    lm_context_free(cc);
    lm_context_free(cv);
    lm_model_free(mc);
    lm_model_free(mv);
    free(toks);
    cr_expect_eq(lm_vk_validation_messages(), 0, "%d Vulkan validation messages", lm_vk_validation_messages());
}
