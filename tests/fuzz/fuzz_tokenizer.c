/*
 * fuzz_tokenizer.c — libFuzzer harness for the tokenizers and chat renderer (run it with
 * tests/fuzz/run_fuzz.sh tokenizer SECONDS).
 *
 * Arbitrary bytes (any UTF-8 validity, any special-token text) go through lm_vocab_tokenize on a
 * SentencePiece vocabulary and a Gemma 4 BPE vocabulary (the small committed test vocabularies),
 * with special-token parsing on and off, into a roomy and a too-small buffer; every id must be
 * in range, and the two calls must agree on the count. The ids are then rendered back with
 * lm_vocab_piece. The input is also split into chat messages and rendered with both templates.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "tokenizer.h"

static void check(bool ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "fuzz_tokenizer: invariant violated: %s\n", what);
        abort();
    }
}

static lm_gguf *files[2];
static lm_vocab *vocabs[2];

static void load(int i, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer/%s", LUMEN_FIXTURES, name);
    check(lm_gguf_open(path, true, &files[i]) == LM_STATUS_OK, "open test vocabulary");
    check(lm_vocab_load(files[i], &vocabs[i]) == LM_STATUS_OK, "load test vocabulary");
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    load(0, "spm_vocab.gguf");
    load(1, "gemma4_vocab.gguf");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = (const char *)data;
    int32_t ids[4096], few[3];
    for (int v = 0; v < 2; v++) {
        const int32_t nv = lm_vocab_n_tokens(vocabs[v]);
        for (int special = 0; special < 2; special++) {
            int32_t n = -1, n2 = -1;
            lm_status st = lm_vocab_tokenize(vocabs[v], text, size, true, special, ids, 4096, &n);
            check(st == LM_STATUS_OK || st == LM_STATUS_BUFFER_TOO_SMALL, "tokenize status");
            lm_status st2 = lm_vocab_tokenize(vocabs[v], text, size, true, special, few, 3, &n2);
            check(n == n2, "token count independent of the buffer size");
            check(st2 == (n2 > 3 ? LM_STATUS_BUFFER_TOO_SMALL : LM_STATUS_OK), "BUFFER_TOO_SMALL contract");
            for (int32_t i = 0; i < n && i < 4096; i++) {
                check(ids[i] >= 0 && ids[i] < nv, "token id in range");
                char piece[256];
                size_t len;
                lm_status sp = lm_vocab_piece(vocabs[v], ids[i], special, piece, sizeof piece, &len);
                check(sp == LM_STATUS_OK || sp == LM_STATUS_BUFFER_TOO_SMALL, "piece status");
            }
        }
    }
    /* chat: split the input at NUL bytes into up to 6 messages with alternating roles */
    char *copy = malloc(size + 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    copy[size] = 0;
    lm_chat_message msgs[6];
    static const char *roles[] = {"system", "user", "assistant", "user", "model", "user"};
    size_t nm = 0, at = 0;
    while (nm < 6 && at <= size) {
        msgs[nm].role = roles[(nm + (size ? data[0] & 1 : 0)) % 6];
        msgs[nm].content = copy + at;
        nm++;
        at += strlen(copy + at) + 1;
    }
    for (int f = 0; f < 2; f++) {
        char out[512];
        size_t len = 0;
        lm_status st = lm_chat_render((lm_chat_format)f, msgs, nm, true, data && size && (data[size - 1] & 1), out, sizeof out, &len);
        check(st == LM_STATUS_OK || st == LM_STATUS_BUFFER_TOO_SMALL || st == LM_STATUS_INVALID_ARGUMENT, "chat status");
        if (st == LM_STATUS_OK) check(strlen(out) == len, "chat output length");
    }
    free(copy);
    return 0;
}
