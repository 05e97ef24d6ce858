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
Test(vulkan, llama_tiny, .timeout = 600) { vk_golden("llama_tiny"); }
Test(vulkan, qwen2_tiny, .timeout = 600) { vk_golden("qwen2_tiny"); }

/* lumen's formats through a whole model (the Gemma 4 fixture converted by lm_model_quantize) */
Test(vulkan, lumen_formats, .timeout = 900) {
    setenv("LUMEN_VK_VALIDATION", "1", 1);
    if (!have_vulkan()) cr_skip("no Vulkan device");
    cr_expect_leq(golden_quantized_vs_cpu("gemma4_dense", "i4_g128", "vulkan"), 1e-4);
    cr_expect_leq(golden_quantized_vs_cpu("gemma4_dense", "f8_e4m3", "vulkan"), 1e-4);
    cr_expect_eq(lm_vk_validation_messages(), 0);
}

/* 8-bit KV caches through a whole model (K=V layers, a wrapping sliding ring, prefill and token by
 * token): the same logits as the CPU backend with the same KV type */
Test(vulkan, quantized_kv_cache, .timeout = 900) {
    setenv("LUMEN_VK_VALIDATION", "1", 1);
    if (!have_vulkan()) cr_skip("no Vulkan device");
    for (lm_kv_type kv = LM_KV_Q8_0; kv <= LM_KV_FP8; kv++) {
        cr_expect_leq(golden_kv_vs_cpu("gemma4_dense", kv, "vulkan", 64), 1e-4, "%s", lm_kv_type_name(kv));
        cr_expect_leq(golden_kv_vs_cpu("gemma4_dense", kv, "vulkan", 5), 1e-4, "%s", lm_kv_type_name(kv));
    }
    cr_expect_eq(lm_vk_validation_messages(), 0);
}

/* Gemma 3 270M Q4_K_M: the Vulkan backend against the CPU backend on the same file (64 positions of
 * real text, mean KL <= 0.001, then 8 greedy tokens with the Vulkan side in argmax mode). Sizes are
 * small because lavapipe runs shaders on the CPU. */
Test(vulkan, real_model_matches_cpu, .timeout = 1800) {
    setenv("LUMEN_VK_VALIDATION", "1", 1);
    if (!have_vulkan()) cr_skip("no Vulkan device");
    if (!tu_real_model_path()) cr_skip("Gemma 3 270M not installed (run tools/fetch_model.sh)");
    real_model_vs_cpu("vulkan", 64, 8);
    cr_expect_eq(lm_vk_validation_messages(), 0, "%d Vulkan validation messages", lm_vk_validation_messages());
}

/* ---- split execution: Vulkan + the CPU backend in one forward pass ------------------------- */

Test(vulkan, split_execution, .timeout = 1200) {
    if (!have_vulkan()) cr_skip("no Vulkan device");
    const int32_t g3[] = {0, 1, 3, 6};
    for (int i = 0; i < 4; i++) split_fixture("vulkan", "gemma3_tiny", g3[i], NULL);
    const int32_t g4[] = {1, 2, 5};
    for (int i = 0; i < 3; i++) split_fixture("vulkan", "gemma4_dense", g4[i], NULL);
    split_fixture("vulkan", "gemma4_moe", 3, NULL);
    split_fixture("vulkan", "gemma4_moe", -1, "_exps"); /* every layer on Vulkan, the experts on the CPU */
    split_fixture("vulkan", "gemma4_moe", 4, "blk\\.5\\.ffn_(gate_up|down)_exps"); /* one layer's experts back */
    split_fixture("vulkan", "gemma4_e", 7, NULL);
    split_fixture("vulkan", "llama_tiny", 2, NULL);
    split_fixture("vulkan", "qwen2_tiny", 1, NULL);
}

/* a KV-shared layer and the layer whose cache it reads must share a device */
Test(vulkan, split_kv_shared_error) {
    if (!have_vulkan()) cr_skip("no Vulkan device");
    lm_model_params mp = lm_model_default_params();
    mp.backend = "vulkan";
    mp.gpu_layers = 6; /* layers 4..9: the shared sliding layers read layer 3, left on the CPU */
    lm_model *m = NULL;
    cr_assert_eq(lm_model_load(golden_fixture_path("gemma4_e"), &mp, &m), LM_STATUS_UNSUPPORTED);
    cr_expect_null(m);
    cr_expect(strstr(lm_last_error(), "reads the KV cache of layer 3") != NULL, "%s", lm_last_error());
}

Test(vulkan, split_real_model, .timeout = 1800) {
    if (!have_vulkan()) cr_skip("no Vulkan device");
    if (!tu_real_model_path()) cr_skip("Gemma 3 270M not installed (run tools/fetch_model.sh)");
    int32_t n;
    int32_t *toks = real_text_tokens(&n);
    /* ~16-bit CPU decode activations: this checks the split, not the CPU's default 8-bit rounding
     * (whose effect, ~1e-2 of the logits' range, differs between the layers each side runs) */
    setenv("LUMEN_CPU_ACT", "q8x2", 1);
    const double err = split_vs_cpu(tu_real_model_path(), "vulkan", 9, NULL, toks, 24, 8, 8);
    unsetenv("LUMEN_CPU_ACT");
    cr_expect_leq(err, 1e-3, "%.3g", err);
    free(toks);
}

Test(vulkan, sequence_ops, .timeout = 600) {
    if (!have_vulkan()) cr_skip("no Vulkan device");
    seq_ops_check("vulkan", -1);
    seq_ops_check("vulkan", 3); /* split: the caches on both devices */
}

Test(vulkan, paged_kv_pool, .timeout = 600) {
    if (!have_vulkan()) cr_skip("no Vulkan device");
    paged_pool_check("vulkan", 3); /* split: page tables on both devices */
}
