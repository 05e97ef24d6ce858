/*
 * test_api.c — the public API under bad input: every failure returns a status with a message
 * and never crashes. Model files that are missing, not GGUF, truncated, randomly corrupted or of
 * an unsupported architecture; contexts too large for memory; decode batches with out-of-range
 * tokens, sequences or positions, duplicates, too many logits rows; buffer-size contracts of the
 * tokenizer entry points. Also sequence bookkeeping (clear, pos max) and the memory estimate.
 */
#define _GNU_SOURCE
#include "lumen.h"
#include "test_util.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIXTURE "hf/gemma4_dense.gguf"

static lm_model *load(const char *path, lm_status *st) {
    lm_model_params mp = lm_model_default_params();
    mp.n_threads = 2;
    lm_model *m = NULL;
    *st = lm_model_load(path, &mp, &m);
    return m;
}

Test(api, status_strings) {
    for (int s = 0; s <= LM_STATUS_BUFFER_TOO_SMALL; s++) cr_assert_not_null(lm_status_string((lm_status)s));
    cr_assert_str_eq(lm_status_string(LM_STATUS_FORMAT), "format error");
    cr_assert_not_null(lm_version());
    cr_assert(lm_backend_count() >= 1);
    cr_assert_str_eq(lm_backend_name(0), "cpu");
}

Test(api, load_errors_are_clean) {
    lm_status st;
    lm_model *m = NULL;
    cr_assert_eq(lm_model_load(tu_fixture(FIXTURE), NULL, NULL), LM_STATUS_INVALID_ARGUMENT);
    m = load("/nonexistent/model.gguf", &st);
    cr_assert_null(m);
    cr_assert_eq(st, LM_STATUS_IO);
    cr_assert(strstr(lm_last_error(), "/nonexistent/model.gguf") != NULL, "message: %s", lm_last_error());
    m = load(tu_fixture("real/text.txt"), &st);
    cr_assert_eq(st, LM_STATUS_FORMAT);
    cr_assert(strstr(lm_last_error(), "magic") != NULL, "message: %s", lm_last_error());
    lm_model_params mp = lm_model_default_params();
    mp.backend = "no-such-backend";
    cr_assert_eq(lm_model_load(tu_fixture(FIXTURE), &mp, &m), LM_STATUS_NOT_FOUND);
    cr_assert(strstr(lm_last_error(), "no-such-backend") != NULL);
    /* an architecture we do not implement */
    tu_gguf *g = tu_gguf_new();
    tu_gguf_str(g, "general.architecture", "mamba");
    const char *p = tu_tmp_path("arch.gguf");
    cr_assert(tu_gguf_save(g, p));
    tu_gguf_free(g);
    m = load(p, &st);
    cr_assert_eq(st, LM_STATUS_UNSUPPORTED);
    cr_assert(strstr(lm_last_error(), "mamba") != NULL, "message: %s", lm_last_error());
    remove(p);
    /* a Qwen2 file asking for YaRN rope scaling, which lumen does not implement: refused, not run
       with the plain rotation */
    g = tu_gguf_new();
    tu_gguf_str(g, "general.architecture", "qwen2");
    static const char *const toks[] = {"<unk>", "<s>", "</s>", "\xe2\x96\x81" "a"};
    const float scores[] = {0, 0, 0, -1};
    const int32_t types[] = {2, 3, 3, 1};
    tu_gguf_str(g, "tokenizer.ggml.model", "llama");
    tu_gguf_arr_str(g, "tokenizer.ggml.tokens", toks, 4);
    tu_gguf_arr_f32(g, "tokenizer.ggml.scores", scores, 4);
    tu_gguf_arr_i32(g, "tokenizer.ggml.token_type", types, 4);
    tu_gguf_u32(g, "qwen2.block_count", 1);
    tu_gguf_u32(g, "qwen2.embedding_length", 64);
    tu_gguf_u32(g, "qwen2.attention.head_count", 4);
    tu_gguf_u32(g, "qwen2.attention.head_count_kv", 4);
    tu_gguf_u32(g, "qwen2.feed_forward_length", 128);
    tu_gguf_str(g, "qwen2.rope.scaling.type", "yarn");
    tu_gguf_f32(g, "qwen2.rope.scaling.factor", 4.0f);
    p = tu_tmp_path("yarn.gguf");
    cr_assert(tu_gguf_save(g, p));
    tu_gguf_free(g);
    m = load(p, &st);
    cr_assert_null(m);
    cr_assert_eq(st, LM_STATUS_UNSUPPORTED, "%s", lm_last_error());
    cr_assert(strstr(lm_last_error(), "yarn") != NULL, "message: %s", lm_last_error());
    remove(p);
}

Test(api, truncated_and_corrupted_models_fail_cleanly, .timeout = 300) {
    size_t size;
    uint8_t *data = tu_read_file(tu_fixture("hf/gemma3_tiny.gguf"), &size);
    cr_assert_not_null(data);
    const char *p = tu_tmp_path("mut.gguf");
    /* truncations at many points, header to data */
    const size_t cuts[] = {0, 3, 8, 23, 24, 100, 1000, 5000, 20000, size / 2, size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        cr_assert(tu_write_file(p, data, cuts[i]));
        lm_status st;
        lm_model *m = load(p, &st);
        cr_assert_null(m, "truncated at %zu loaded", cuts[i]);
        cr_assert_neq(st, LM_STATUS_OK);
        cr_assert_str_neq(lm_last_error(), "", "no message for truncation at %zu", cuts[i]);
    }
    /* random byte corruption anywhere: any status, never a crash; a file that still loads must
       also survive a decode */
    tu_rng r = tu_seed(99);
    uint8_t *mut = malloc(size);
    int loaded = 0;
    for (int it = 0; it < 150; it++) {
        memcpy(mut, data, size);
        const int flips = 1 + (int)tu_range(&r, 0, 7);
        for (int f = 0; f < flips; f++) {
            /* bias toward the header and metadata, where structure lives */
            size_t at = tu_uniform(&r) < 0.8f ? (size_t)tu_range(&r, 0, 60000) : (size_t)tu_range(&r, 0, (int64_t)size - 1);
            mut[at] = (uint8_t)tu_next(&r);
        }
        cr_assert(tu_write_file(p, mut, size));
        lm_status st;
        lm_model *m = load(p, &st);
        if (!m) {
            cr_assert_str_neq(lm_last_error(), "");
            continue;
        }
        loaded++;
        lm_context *c;
        if (lm_context_create(m, NULL, &c) == LM_STATUS_OK) {
            lm_batch_entry e[3] = {{2, 0, 0, false}, {5, 1, 0, false}, {7, 2, 0, true}};
            lm_context_decode(c, e, 3);
            lm_context_free(c);
        }
        lm_model_free(m);
    }
    cr_log_info("%d of 150 corrupted files still loaded", loaded);
    free(mut);
    free(data);
    remove(p);
}

Test(api, vocab_only_model) {
    lm_model_params mp = lm_model_default_params();
    mp.vocab_only = true;
    lm_model *m;
    cr_assert_eq(lm_model_load(tu_fixture(FIXTURE), &mp, &m), LM_STATUS_OK, "%s", lm_last_error());
    lm_context *c = NULL;
    cr_assert_eq(lm_context_create(m, NULL, &c), LM_STATUS_INVALID_ARGUMENT);
    cr_assert_null(c);
    int32_t n;
    lm_token t[16];
    cr_assert_eq(lm_tokenize(m, "ab", 2, true, false, t, 16, &n), LM_STATUS_OK);
    lm_model_free(m);
}

Test(api, oversized_context_is_out_of_memory) {
    lm_status st;
    lm_model *m = load(tu_fixture(FIXTURE), &st);
    cr_assert_not_null(m, "%s", lm_last_error());
    lm_context_params cp = lm_context_default_params();
    cp.n_ctx = 1u << 24;
    cp.n_seq_max = 1024;
    lm_context *c = NULL;
    cr_assert_eq(lm_context_create(m, &cp, &c), LM_STATUS_OUT_OF_MEMORY);
    cr_assert_null(c);
    cr_assert(strstr(lm_last_error(), "GiB") != NULL, "message: %s", lm_last_error());
    cp = lm_context_default_params();
    cp.n_batch = 1u << 20;
    cr_assert_eq(lm_context_create(m, &cp, &c), LM_STATUS_OK, "n_batch is clamped to n_ctx: %s", lm_last_error());
    lm_context_free(c);
    lm_model_free(m);
}

Test(api, decode_rejects_bad_batches) {
    lm_status st;
    lm_model *m = load(tu_fixture(FIXTURE), &st);
    cr_assert_not_null(m, "%s", lm_last_error());
    lm_context_params cp = lm_context_default_params();
    cp.n_ctx = 64;
    cp.n_batch = 16;
    cp.n_seq_max = 2;
    cp.n_outputs_max = 2;
    lm_context *c;
    cr_assert_eq(lm_context_create(m, &cp, &c), LM_STATUS_OK, "%s", lm_last_error());
    const int32_t V = lm_vocab_size(m);
    lm_batch_entry e[20];
    for (int i = 0; i < 20; i++) e[i] = (lm_batch_entry){3, i, 0, false};
    cr_assert_eq(lm_context_decode(NULL, e, 1), LM_STATUS_INVALID_ARGUMENT);
    cr_assert_eq(lm_context_decode(c, e, 0), LM_STATUS_INVALID_ARGUMENT);
    cr_assert_eq(lm_context_decode(c, e, 17), LM_STATUS_INVALID_ARGUMENT);
    cr_assert(strstr(lm_last_error(), "n_batch") != NULL);
    e[3].token = V;
    cr_assert_eq(lm_context_decode(c, e, 5), LM_STATUS_INVALID_ARGUMENT);
    cr_assert(strstr(lm_last_error(), "vocabulary") != NULL, "message: %s", lm_last_error());
    e[3].token = -1;
    cr_assert_eq(lm_context_decode(c, e, 5), LM_STATUS_INVALID_ARGUMENT);
    e[3].token = 3;
    e[2].seq = 2;
    cr_assert_eq(lm_context_decode(c, e, 5), LM_STATUS_INVALID_ARGUMENT);
    e[2].seq = 0;
    e[1].pos = -5;
    cr_assert_eq(lm_context_decode(c, e, 5), LM_STATUS_INVALID_ARGUMENT);
    e[1].pos = 64;
    cr_assert_eq(lm_context_decode(c, e, 5), LM_STATUS_CONTEXT_FULL);
    e[1].pos = 2; /* duplicate of entry 2 */
    cr_assert_eq(lm_context_decode(c, e, 5), LM_STATUS_INVALID_ARGUMENT);
    cr_assert(strstr(lm_last_error(), "twice") != NULL, "message: %s", lm_last_error());
    e[1].pos = 1;
    for (int i = 0; i < 3; i++) e[i].logits = true;
    cr_assert_eq(lm_context_decode(c, e, 5), LM_STATUS_INVALID_ARGUMENT);
    cr_assert(strstr(lm_last_error(), "n_outputs_max") != NULL);
    /* nothing above touched the cache */
    cr_assert_eq(lm_context_seq_pos_max(c, 0), -1);
    /* a valid batch: two sequences, one logits row each */
    for (int i = 0; i < 5; i++) e[i] = (lm_batch_entry){(lm_token)(10 + i), i, 0, i == 4};
    for (int i = 0; i < 3; i++) e[5 + i] = (lm_batch_entry){(lm_token)(20 + i), i, 1, i == 2};
    cr_assert_eq(lm_context_decode(c, e, 8), LM_STATUS_OK, "%s", lm_last_error());
    cr_assert_eq(lm_context_n_outputs(c), 2);
    cr_assert_not_null(lm_context_logits(c, 1));
    cr_assert_null(lm_context_logits(c, 2));
    cr_assert_null(lm_context_logits(c, -1));
    cr_assert_eq(lm_context_seq_pos_max(c, 0), 4);
    cr_assert_eq(lm_context_seq_pos_max(c, 1), 2);
    cr_assert_eq(lm_context_seq_pos_max(c, 5), -1);
    cr_assert_eq(lm_context_seq_clear(c, 7), LM_STATUS_INVALID_ARGUMENT);
    lm_context_free(c);
    lm_model_free(m);
}

Test(api, seq_clear_resets_the_sequence) {
    lm_status st;
    lm_model *m = load(tu_fixture(FIXTURE), &st);
    cr_assert_not_null(m, "%s", lm_last_error());
    lm_context_params cp = lm_context_default_params();
    cp.n_ctx = 64;
    cp.kv_type = LM_KV_F32;
    lm_context *c;
    cr_assert_eq(lm_context_create(m, &cp, &c), LM_STATUS_OK, "%s", lm_last_error());
    const int32_t V = lm_vocab_size(m);
    float *first = malloc((size_t)V * sizeof(float));
    lm_batch_entry e[12];
    for (int i = 0; i < 12; i++) e[i] = (lm_batch_entry){(lm_token)(30 + 7 * i), i, 0, i == 11};
    cr_assert_eq(lm_context_decode(c, e, 12), LM_STATUS_OK);
    memcpy(first, lm_context_logits(c, 0), (size_t)V * sizeof(float));
    /* different history, then clear and replay: identical logits */
    for (int i = 0; i < 12; i++) e[i].token = (lm_token)(100 + i);
    cr_assert_eq(lm_context_seq_clear(c, 0), LM_STATUS_OK);
    cr_assert_eq(lm_context_decode(c, e, 12), LM_STATUS_OK);
    cr_assert_eq(lm_context_seq_clear(c, 0), LM_STATUS_OK);
    cr_assert_eq(lm_context_seq_pos_max(c, 0), -1);
    for (int i = 0; i < 12; i++) e[i].token = (lm_token)(30 + 7 * i);
    cr_assert_eq(lm_context_decode(c, e, 12), LM_STATUS_OK);
    cr_assert_eq(memcmp(first, lm_context_logits(c, 0), (size_t)V * sizeof(float)), 0);
    free(first);
    lm_context_free(c);
    lm_model_free(m);
}

/* LM_OUTPUT_ARGMAX: the device's greedy tokens for several rows and sequences equal the argmax of
 * the logits a LM_OUTPUT_LOGITS context computes; no logits come back. */
Test(api, argmax_output_matches_logits) {
    lm_status st;
    lm_model *m = load(tu_fixture(FIXTURE), &st);
    cr_assert_not_null(m, "%s", lm_last_error());
    lm_context_params cp = lm_context_default_params();
    cp.n_ctx = 64;
    cp.n_batch = 16;
    cp.n_seq_max = 3;
    cp.n_outputs_max = 0; /* = n_batch */
    lm_context *cl, *ca;
    cr_assert_eq(lm_context_create(m, &cp, &cl), LM_STATUS_OK, "%s", lm_last_error());
    cp.output = (lm_output_kind)7;
    cr_assert_eq(lm_context_create(m, &cp, &ca), LM_STATUS_INVALID_ARGUMENT);
    cr_assert(strstr(lm_last_error(), "output") != NULL, "message: %s", lm_last_error());
    cp.output = LM_OUTPUT_ARGMAX;
    cr_assert_eq(lm_context_create(m, &cp, &ca), LM_STATUS_OK, "%s", lm_last_error());
    const int32_t V = lm_vocab_size(m);
    lm_batch_entry e[16];
    int32_t n = 0;
    for (int s = 0; s < 3; s++)
        for (int i = 0; i < 5; i++) e[n++] = (lm_batch_entry){(lm_token)(7 + 13 * n + s), i, s, i >= 3 || s == 1};
    for (int step = 0; step < 3; step++) {
        cr_assert_eq(lm_context_decode(cl, e, n), LM_STATUS_OK, "%s", lm_last_error());
        cr_assert_eq(lm_context_decode(ca, e, n), LM_STATUS_OK, "%s", lm_last_error());
        const int32_t rows = lm_context_n_outputs(cl);
        cr_assert_eq(lm_context_n_outputs(ca), rows);
        cr_assert_gt(rows, 0);
        for (int32_t r = 0; r < rows; r++) {
            const float *l = lm_context_logits(cl, r);
            int32_t best = 0;
            for (int32_t v = 1; v < V; v++)
                if (l[v] > l[best]) best = v;
            cr_assert_eq(lm_context_argmax(cl, r), best, "row %d", r);
            cr_assert_eq(lm_context_argmax(ca, r), best, "step %d row %d: device %d, host %d", step, r,
                         lm_context_argmax(ca, r), best);
            cr_assert_null(lm_context_logits(ca, r));
        }
        cr_assert_eq(lm_context_argmax(ca, rows), -1);
        cr_assert_eq(lm_context_argmax(ca, -1), -1);
        /* next step: each sequence feeds its greedy token */
        int32_t r = 0, k = 0;
        for (int32_t i = 0; i < n; i++) {
            if (!e[i].logits) continue;
            const bool last = i + 1 == n || e[i + 1].seq != e[i].seq;
            if (last) e[k++] = (lm_batch_entry){lm_context_argmax(cl, r), 5 + step, e[i].seq, true};
            r++;
        }
        n = k;
    }
    lm_context_free(cl);
    lm_context_free(ca);
    lm_model_free(m);
}

Test(api, estimate_matches_allocation) {
    lm_status st;
    lm_model *m = load(tu_fixture("hf/gemma4_e.gguf"), &st);
    cr_assert_not_null(m, "%s", lm_last_error());
    lm_context_params cp = lm_context_default_params();
    cp.n_ctx = 300;
    cp.n_batch = 20;
    cp.n_seq_max = 3;
    uint64_t kv, act;
    cr_assert_eq(lm_model_estimate_memory(m, &cp, &kv, &act), LM_STATUS_OK);
    lm_context *c;
    cr_assert_eq(lm_context_create(m, &cp, &c), LM_STATUS_OK, "%s", lm_last_error());
    /* the allocation adds only cell metadata and alignment padding to the estimate */
    cr_assert(lm_context_kv_bytes(c) >= kv && lm_context_kv_bytes(c) < kv + 64 * 1024, "estimate %llu, allocated %llu",
              (unsigned long long)kv, (unsigned long long)lm_context_kv_bytes(c));
    cr_assert(act > 0);
    lm_context_free(c);
    lm_model_free(m);
}

Test(api, tokenizer_buffer_contracts) {
    lm_status st;
    lm_model *m = load(tu_fixture(FIXTURE), &st);
    cr_assert_not_null(m, "%s", lm_last_error());
    int32_t n = -1;
    cr_assert_eq(lm_tokenize(m, "hello world", 11, true, false, NULL, 0, &n), LM_STATUS_BUFFER_TOO_SMALL);
    cr_assert(n > 1);
    lm_token *t = malloc((size_t)n * sizeof *t);
    int32_t n2;
    cr_assert_eq(lm_tokenize(m, "hello world", 11, true, false, t, n, &n2), LM_STATUS_OK);
    cr_assert_eq(n2, n);
    cr_assert_eq(t[0], lm_token_bos(m));
    char buf[64];
    size_t len;
    cr_assert_eq(lm_detokenize(m, t + 1, n - 1, false, buf, sizeof buf, &len), LM_STATUS_OK);
    cr_assert_str_eq(buf, "hello world");
    cr_assert_eq(lm_detokenize(m, t + 1, n - 1, false, buf, 3, &len), LM_STATUS_BUFFER_TOO_SMALL);
    cr_assert_eq(len, 11);
    cr_assert_neq(lm_token_to_piece(m, lm_vocab_size(m), false, buf, sizeof buf, &len), LM_STATUS_OK);
    cr_assert_neq(lm_token_to_piece(m, -3, false, buf, sizeof buf, &len), LM_STATUS_OK);
    cr_assert_null(lm_token_text(m, -1));
    cr_assert(lm_token_is_eog(m, lm_token_eos(m)));
    lm_chat_message msg = {"user", "hi"};
    char chat[256];
    cr_assert_eq(lm_chat_apply(m, &msg, 1, true, false, chat, 16, &len), LM_STATUS_BUFFER_TOO_SMALL);
    cr_assert_eq(lm_chat_apply(m, &msg, 1, true, false, chat, sizeof chat, &len), LM_STATUS_OK, "%s", lm_last_error());
    cr_assert_str_eq(chat, "<bos><|turn>user\nhi<turn|>\n<|turn>model\n<|channel>thought\n<channel|>");
    free(t);
    lm_model_free(m);
}
