/*
 * fuzz_tokenizer.c — libFuzzer harness for the tokenizers and chat renderer (run it with
 * tests/fuzz/run_fuzz.sh tokenizer SECONDS).
 *
 * Arbitrary bytes (any UTF-8 validity, any special-token text) go through lm_vocab_tokenize on
 * the committed test vocabularies: SentencePiece, Gemma 4 BPE, and GPT-2 byte-level BPE under
 * every pre-tokenizer family lumen implements (synthetic "gpt-2", "llama-bpe" and default; the
 * real SmolLM2 "smollm" and DeepSeek-R1-Distill-Qwen "deepseek-r1-qwen" vocabularies), with
 * special-token parsing on and off, into a roomy and a too-small buffer; every id must be in
 * range, and the two calls must agree on the count. The ids are then rendered back with
 * lm_vocab_piece; on the synthetic byte-level vocabularies (all 256 byte characters present) the
 * pieces must give back the input as llama.cpp decodes it (invalid UTF-8 as U+FFFD). The input
 * is also split into chat messages and rendered with both templates.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../support/utf8_llama.h"

#include "chat.h"
#include "tokenizer.h"

static void check(bool ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "fuzz_tokenizer: invariant violated: %s\n", what);
        abort();
    }
}

enum { N_VOCABS = 7, FIRST_GPT2 = 2, N_SYNTH_GPT2 = 3 };
static lm_gguf *files[N_VOCABS];
static lm_vocab *vocabs[N_VOCABS];

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
    load(2, "gpt2_vocab.gguf");
    load(3, "gpt2_llama3_vocab.gguf");
    load(4, "gpt2_default_vocab.gguf");
    load(5, "smollm2_vocab.gguf");
    load(6, "qwen2_vocab.gguf");
    return 0;
}


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = (const char *)data;
    static int32_t ids[4 * 4096 + 8];
    static char want[3 * 4096], got[3 * 4096 + 256];
    int32_t few[3];
    const int32_t cap = (int32_t)(sizeof ids / sizeof ids[0]);
    for (int v = 0; v < N_VOCABS; v++) {
        const int32_t nv = lm_vocab_n_tokens(vocabs[v]);
        const bool byte_level = v >= FIRST_GPT2 && v < FIRST_GPT2 + N_SYNTH_GPT2 && size <= 4096;
        for (int special = 0; special < 2; special++) {
            int32_t n = -1, n2 = -1;
            lm_status st = lm_vocab_tokenize(vocabs[v], text, size, true, special, ids, cap, &n);
            check(st == LM_STATUS_OK || st == LM_STATUS_BUFFER_TOO_SMALL, "tokenize status");
            lm_status st2 = lm_vocab_tokenize(vocabs[v], text, size, true, special, few, 3, &n2);
            check(n == n2, "token count independent of the buffer size");
            check(st2 == (n2 > 3 ? LM_STATUS_BUFFER_TOO_SMALL : LM_STATUS_OK), "BUFFER_TOO_SMALL contract");
            size_t at = 0;
            bool all = st == LM_STATUS_OK;
            for (int32_t i = 0; i < n && i < cap; i++) {
                check(ids[i] >= 0 && ids[i] < nv, "token id in range");
                char piece[256];
                size_t len;
                lm_status sp = lm_vocab_piece(vocabs[v], ids[i], special, piece, sizeof piece, &len);
                check(sp == LM_STATUS_OK || sp == LM_STATUS_BUFFER_TOO_SMALL, "piece status");
                if (sp != LM_STATUS_OK || (i == 0 && lm_vocab_add_bos(vocabs[v]))) continue;
                if (at + len <= sizeof got) memcpy(got + at, piece, len);
                at += len;
            }
            if (byte_level && !special && all) {
                size_t wl = utf8_as_llama((const char *)data, size, want);
                check(at == wl && memcmp(got, want, wl) == 0, "byte-level BPE pieces give the text back");
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
