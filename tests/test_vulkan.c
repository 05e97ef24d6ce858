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

static bool have_vulkan(void) {
    const lm_backend_ops *ops = lm_backend_find("vulkan");
    return ops && ops->device_count() > 0;
}

Test(vulkan, conformance, .timeout = 1800) {
    setenv("LUMEN_VK_VALIDATION", "1", 1);
    if (!have_vulkan()) cr_skip("no Vulkan device");
    const int failures = lm_conformance_run("vulkan", "vulkan", getenv("LUMEN_TEST_VERBOSE") != NULL);
    cr_expect_eq(failures, 0, "%d op cases failed on vulkan", failures);
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
    /* a transfer round trip through a buffer larger than one staging chunk */
    lm_buffer *b;
    const size_t n = (70u << 20) / 4;
    cr_assert_eq(be->ops->buffer_alloc(be, n * 4, LM_BUF_COMPUTE, &b), LM_STATUS_OK, "%s", lm_last_error());
    float *x = malloc(n * 4), *y = malloc(n * 4);
    for (size_t i = 0; i < n; i++) x[i] = (float)i * 0.5f;
    lm_tensor t;
    int64_t ne = (int64_t)n;
    lm_tensor_init(&t, LM_F32, 1, &ne);
    t.buf = b;
    cr_assert_eq(be->ops->tensor_set(be, &t, x, 0, n * 4), LM_STATUS_OK);
    cr_assert_eq(be->ops->tensor_get(be, &t, y, 0, n * 4), LM_STATUS_OK);
    cr_assert_arr_eq(x, y, n * 4);
    free(x);
    free(y);
    be->ops->buffer_free(b);
    lm_backend_destroy(be);
    cr_assert_eq(lm_vk_validation_messages(), 0);
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
Test(vulkan, gemma4_dense, .timeout = 600) { vk_golden("gemma4_dense"); }
Test(vulkan, gemma4_moe, .timeout = 600) { vk_golden("gemma4_moe"); }
Test(vulkan, gemma4_e, .timeout = 600) { vk_golden("gemma4_e"); }
