/*
 * test_chat.c — the built-in Gemma 3 / Gemma 4 chat templates.
 *
 *   - renderings byte-identical to the references in tests/fixtures/tokenizer/chat_*.txt
 *     (Gemma 3: "<bos>" + llama.cpp's built-in "gemma" template; Gemma 4: llama.cpp's Gemma 4 Jinja
 *     template rendered by jinja2; written by tools/gen_tokenizer_fixtures.py);
 *   - no messages, unknown roles, NULL fields, broken Gemma 3 alternation -> INVALID_ARGUMENT;
 *   - the buffer contract (NUL-terminated on success, BUFFER_TOO_SMALL with the length otherwise);
 *   - a rendered Gemma 4 prompt tokenized with parse_special: one BOS, turn markers as single ids.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "test_util.h"
#include "tokenizer.h"

/* ---------------------------------------------------------------------------------------- */
/* fixture: C <n> <add_gen> <thinking>, then S role / S content per message, then S expected  */

typedef struct rd {
    const char *p, *end;
} rd;

static long long rd_int(rd *r) {
    cr_assert(r->p < r->end && *r->p == ' ', "fixture: expected a number");
    char *e;
    long long v = strtoll(r->p + 1, &e, 10);
    r->p = e;
    return v;
}

static void rd_eol(rd *r) {
    cr_assert(r->p < r->end && *r->p == '\n', "fixture: expected end of line");
    r->p++;
}

/* a string record, copied and NUL-terminated */
static char *rd_str(rd *r, size_t *len) {
    cr_assert(r->p < r->end && *r->p == 'S', "fixture: expected a string");
    r->p++;
    long long n = rd_int(r);
    rd_eol(r);
    cr_assert(n >= 0 && n <= r->end - r->p);
    char *s = malloc((size_t)n + 1);
    memcpy(s, r->p, (size_t)n);
    s[n] = 0;
    r->p += n;
    rd_eol(r);
    if (len) *len = (size_t)n;
    return s;
}

static void print_text(const char *what, const char *s, size_t n) {
    fprintf(stderr, "  %s (%zu bytes): \"", what, n);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') fputs("\\n", stderr);
        else if (c >= 32 && c < 127 && c != '"' && c != '\\') fputc(c, stderr);
        else fprintf(stderr, "\\x%02x", c);
    }
    fputs("\"\n", stderr);
}

static int check_fixture(lm_chat_format fmt, const char *name) {
    size_t size;
    char *data = tu_read_file(tu_fixture(name), &size);
    cr_assert(data, "cannot read %s", tu_fixture(name));
    rd r = {data, data + size};
    int n_conv = 0, bad = 0;
    while (r.p < r.end) {
        cr_assert_eq(*r.p, 'C', "fixture: expected a conversation");
        r.p++;
        size_t n = (size_t)rd_int(&r);
        bool add_gen = rd_int(&r) != 0, thinking = rd_int(&r) != 0;
        rd_eol(&r);
        lm_chat_message *m = calloc(n ? n : 1, sizeof *m);
        for (size_t i = 0; i < n; i++) {
            m[i].role = rd_str(&r, NULL);
            m[i].content = rd_str(&r, NULL);
        }
        size_t elen;
        char *exp = rd_str(&r, &elen);
        char buf[8192];
        size_t len = 0;
        lm_status st = lm_chat_render(fmt, m, n, add_gen, thinking, buf, sizeof buf, &len);
        cr_assert_eq(st, LM_STATUS_OK, "%s conversation %d: %s", name, n_conv, lm_last_error());
        cr_assert_eq(buf[len], 0, "output is NUL-terminated");
        if (len != elen || memcmp(buf, exp, len) != 0) {
            bad++;
            fprintf(stderr, "%s: conversation %d (add_generation_prompt=%d, thinking=%d) differs\n", name, n_conv,
                    add_gen, thinking);
            print_text("expected", exp, elen);
            print_text("lumen   ", buf, len);
        }
        for (size_t i = 0; i < n; i++) {
            free((void *)m[i].role);
            free((void *)m[i].content);
        }
        free(m);
        free(exp);
        n_conv++;
    }
    free(data);
    cr_assert_eq(bad, 0, "%s: %d of %d renderings differ from the reference", name, bad, n_conv);
    return n_conv;
}

Test(chat, gemma3_matches_reference) { cr_assert_geq(check_fixture(LM_CHAT_GEMMA3, "tokenizer/chat_gemma3.txt"), 8); }
Test(chat, gemma4_matches_reference) { cr_assert_geq(check_fixture(LM_CHAT_GEMMA4, "tokenizer/chat_gemma4.txt"), 8); }

static void expect_text(lm_chat_format fmt, const lm_chat_message *m, size_t n, bool gen, bool think, const char *want) {
    char buf[1024];
    size_t len;
    lm_status st = lm_chat_render(fmt, m, n, gen, think, buf, sizeof buf, &len);
    cr_assert_eq(st, LM_STATUS_OK, "%s", lm_last_error());
    if (len != strlen(want) || memcmp(buf, want, len) != 0) {
        print_text("expected", want, strlen(want));
        print_text("lumen   ", buf, len);
        cr_assert_fail("rendering differs");
    }
}

Test(chat, no_messages) {
    expect_text(LM_CHAT_GEMMA3, NULL, 0, true, false, "<bos><start_of_turn>model\n");
    expect_text(LM_CHAT_GEMMA3, NULL, 0, false, true, "<bos>");
    expect_text(LM_CHAT_GEMMA4, NULL, 0, true, false, "<bos><|turn>model\n<|channel>thought\n<channel|>");
    expect_text(LM_CHAT_GEMMA4, NULL, 0, true, true, "<bos><|turn>system\n<|think|>\n<turn|>\n<|turn>model\n");
}

Test(chat, gemma4_later_system_and_consecutive_roles) {
    /* Gemma 4's template does not require alternation; a later system message is its own turn */
    lm_chat_message m[3] = {{"user", "a"}, {"system", " s "}, {"user", "b"}};
    expect_text(LM_CHAT_GEMMA4, m, 3, false, false,
                "<bos><|turn>user\na<turn|>\n<|turn>system\ns<turn|>\n<|turn>user\nb<turn|>\n");
}

static void expect_invalid(lm_chat_format fmt, const lm_chat_message *m, size_t n, const char *msg_part) {
    char buf[256];
    size_t len = 99;
    lm_status st = lm_chat_render(fmt, m, n, true, false, buf, sizeof buf, &len);
    cr_assert_eq(st, LM_STATUS_INVALID_ARGUMENT, "format %d: expected INVALID_ARGUMENT, got %d", fmt, st);
    cr_assert(strstr(lm_last_error(), msg_part), "message '%s' does not mention '%s'", lm_last_error(), msg_part);
}

Test(chat, bad_roles) {
    for (int f = 0; f < 4; f++) {
        const lm_chat_format fmt = (lm_chat_format)f; /* Gemma 3, Gemma 4, ChatML, DeepSeek-R1 */
        lm_chat_message tool[2] = {{"user", "x"}, {"tool", "y"}};
        expect_invalid(fmt, tool, 2, "'tool'");
        lm_chat_message dev[1] = {{"developer", "x"}};
        expect_invalid(fmt, dev, 1, "'developer'");
        lm_chat_message empty[1] = {{"", "x"}};
        expect_invalid(fmt, empty, 1, "role ''");
        lm_chat_message upper[1] = {{"User", "x"}};
        expect_invalid(fmt, upper, 1, "'User'");
        lm_chat_message null_role[1] = {{NULL, "x"}};
        expect_invalid(fmt, null_role, 1, "NULL role");
        lm_chat_message null_content[2] = {{"user", "x"}, {"assistant", NULL}};
        expect_invalid(fmt, null_content, 2, "NULL content");
        size_t len;
        char buf[8];
        cr_assert_eq(lm_chat_render(fmt, NULL, 1, true, false, buf, 8, &len), LM_STATUS_INVALID_ARGUMENT);
        cr_assert_eq(lm_chat_render(fmt, tool, 1, true, false, NULL, 8, &len), LM_STATUS_INVALID_ARGUMENT);
        cr_assert_eq(lm_chat_render(fmt, tool, 1, true, false, buf, 8, NULL), LM_STATUS_INVALID_ARGUMENT);
    }
    size_t len;
    char buf[8];
    cr_assert_eq(lm_chat_render((lm_chat_format)9, NULL, 0, true, false, buf, 8, &len), LM_STATUS_INVALID_ARGUMENT);
    /* Gemma 3: user/model alternation after an optional leading system message */
    lm_chat_message uu[2] = {{"user", "a"}, {"user", "b"}};
    expect_invalid(LM_CHAT_GEMMA3, uu, 2, "alternate");
    lm_chat_message af[1] = {{"assistant", "a"}};
    expect_invalid(LM_CHAT_GEMMA3, af, 1, "alternate");
    lm_chat_message sl[3] = {{"user", "a"}, {"model", "b"}, {"system", "c"}};
    expect_invalid(LM_CHAT_GEMMA3, sl, 3, "alternate");
    lm_chat_message ss[3] = {{"system", "a"}, {"system", "b"}, {"user", "c"}};
    expect_invalid(LM_CHAT_GEMMA3, ss, 3, "alternate");
    /* the same conversations are fine for Gemma 4 */
    expect_text(LM_CHAT_GEMMA4, uu, 2, false, false, "<bos><|turn>user\na<turn|>\n<|turn>user\nb<turn|>\n");
}

Test(chat, buffer_contract) {
    lm_chat_message m[2] = {{"system", "Be nice."}, {"user", "Hello there"}};
    for (int f = 0; f < 4; f++) {
        const lm_chat_format fmt = (lm_chat_format)f;
        char full[512];
        size_t n;
        cr_assert_eq(lm_chat_render(fmt, m, 2, true, false, full, sizeof full, &n), LM_STATUS_OK);
        cr_assert(n > 20 && strlen(full) == n);
        size_t len = 0;
        cr_assert_eq(lm_chat_render(fmt, m, 2, true, false, NULL, 0, &len), LM_STATUS_BUFFER_TOO_SMALL);
        cr_assert_eq(len, n, "the needed length is reported");
        char *buf = malloc(n + 1);
        memset(buf, 'X', n + 1);
        cr_assert_eq(lm_chat_render(fmt, m, 2, true, false, buf, n, &len), LM_STATUS_BUFFER_TOO_SMALL,
                     "no room for the NUL");
        cr_assert_eq(len, n);
        cr_assert_eq(buf[n], 'X', "nothing written past cap");
        cr_assert_eq(lm_chat_render(fmt, m, 2, true, false, buf, n + 1, &len), LM_STATUS_OK);
        cr_assert(len == n && memcmp(buf, full, n + 1) == 0);
        free(buf);
    }
}

Test(chat, gemma4_prompt_tokenizes_with_specials) {
    lm_gguf *g;
    lm_vocab *v;
    cr_assert_eq(lm_gguf_open(tu_fixture("tokenizer/gemma4_vocab.gguf"), true, &g), LM_STATUS_OK, "%s", lm_last_error());
    cr_assert_eq(lm_vocab_load(g, &v), LM_STATUS_OK, "%s", lm_last_error());
    lm_chat_message m[3] = {{"user", "Hi"}, {"assistant", "<|channel>thought\nhidden<channel|>Hello"}, {"user", "Bye"}};
    char buf[512];
    size_t len;
    cr_assert_eq(lm_chat_render(LM_CHAT_GEMMA4, m, 3, true, false, buf, sizeof buf, &len), LM_STATUS_OK);
    cr_assert_null(strstr(buf, "hidden"), "thoughts are not fed back");
    int32_t ids[256], n;
    cr_assert_eq(lm_vocab_tokenize(v, buf, len, false, true, ids, 256, &n), LM_STATUS_OK);
    int32_t bos = lm_vocab_bos(v), turn = lm_vocab_find(v, "<|turn>", 7), end = lm_vocab_find(v, "<turn|>", 7);
    int32_t ch = lm_vocab_find(v, "<|channel>", 10);
    int n_bos = 0, n_turn = 0, n_end = 0, n_ch = 0;
    for (int32_t i = 0; i < n; i++) {
        n_bos += ids[i] == bos;
        n_turn += ids[i] == turn;
        n_end += ids[i] == end;
        n_ch += ids[i] == ch;
    }
    cr_assert(ids[0] == bos && n_bos == 1, "exactly one BOS, from the template");
    cr_assert_eq(n_turn, 4);
    cr_assert_eq(n_end, 3);
    cr_assert_eq(n_ch, 1, "only the pre-filled empty thought channel");
    lm_vocab_free(v);
    lm_gguf_close(g);
}

/* ChatML and DeepSeek-R1: byte for byte what llama.cpp 0.3.36's llama_chat_apply_template gives with
 * its built-in "chatml" and "deepseek3" templates for the same messages (whitespace kept as is) */
Test(chat, chatml_and_deepseek3_match_llama_cpp) {
    lm_chat_message conv[4] = {{"system", "  Be brief. "}, {"user", "Hi there\n"}, {"assistant", " Hello! "}, {"user", "2+2?"}};
    expect_text(LM_CHAT_CHATML, conv, 4, true, false,
                "<|im_start|>system\n  Be brief. <|im_end|>\n<|im_start|>user\nHi there\n<|im_end|>\n<|im_start|>assistant\n"
                " Hello! <|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n");
    expect_text(LM_CHAT_CHATML, conv + 1, 2, false, false,
                "<|im_start|>user\nHi there\n<|im_end|>\n<|im_start|>assistant\n Hello! <|im_end|>\n");
    expect_text(LM_CHAT_DEEPSEEK3, conv, 4, true, false,
                "  Be brief. \n\n<\xef\xbd\x9cUser\xef\xbd\x9c>Hi there\n<\xef\xbd\x9c" "Assistant\xef\xbd\x9c> Hello! "
                "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c><\xef\xbd\x9cUser\xef\xbd\x9c>2+2?"
                "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>");
    expect_text(LM_CHAT_DEEPSEEK3, conv + 1, 2, false, false,
                "<\xef\xbd\x9cUser\xef\xbd\x9c>Hi there\n<\xef\xbd\x9c" "Assistant\xef\xbd\x9c> Hello! "
                "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>");
}
