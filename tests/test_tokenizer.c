/*
 * test_tokenizer.c — the SPM, gemma4-BPE and GPT-2 byte-level BPE tokenizers against llama.cpp.
 *
 *   - token ids for every corpus string (tests/fixtures/tokenizer/corpus.txt), parse_special off
 *     and on, on: a synthetic Gemma-4-style BPE vocab, two synthetic Gemma-3-style SentencePiece
 *     vocabs (Gemma settings; llama.cpp defaults with space prefix and no BOS), the real Gemma 3
 *     270M vocab (skipped when the model is absent), and the GPT-2 style vocabs ("gpt2" model) on
 *     corpus.txt plus corpus_gpt2.txt: the real SmolLM2-135M (pre "smollm") and DeepSeek-R1-
 *     Distill-Qwen (pre "deepseek-r1-qwen") vocabs (vocab-only copies) and a synthetic byte-level
 *     vocab under the "gpt-2", "llama-bpe" and default pre-tokenizers. References come from
 *     llama.cpp via tools/gen_tokenizer_fixtures.py; a mismatch prints the string, the first
 *     differing position and both id lists;
 *   - token_to_piece for every synthetic token and a sample of the real vocabs' ids, the EOG set,
 *     and concatenated pieces of id sequences;
 *   - round trip decode(encode(s)) == s, special-token parsing on/off, BOS handling, accessors;
 *   - random bytes, invalid UTF-8 and 1 MB inputs: no crash, ids in range, bounded time;
 *     the BUFFER_TOO_SMALL contracts; concurrent tokenization from several threads;
 *   - malformed tokenizer metadata: each crafted file fails with the expected status and a
 *     message naming the problem, and each has a valid twin that loads.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "support/utf8_llama.h"
#include "tokenizer.h"

/* ---------------------------------------------------------------------------------------- */
/* fixture records: "S <len>\n<bytes>\n" or "<TAG> <int> ...\n"                              */

typedef struct rd {
    const char *p, *end;
} rd;

static char rd_tag(rd *r) {
    cr_assert(r->p < r->end, "fixture ended early");
    char t = *r->p++;
    return t;
}

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

static void rd_expect(rd *r, char tag) {
    char t = rd_tag(r);
    cr_assert_eq(t, tag, "fixture: expected record '%c', got '%c'", tag, t);
}

static size_t rd_str(rd *r, const char **s) {
    rd_expect(r, 'S');
    long long n = rd_int(r);
    rd_eol(r);
    cr_assert(n >= 0 && n <= r->end - r->p, "fixture: bad string length");
    *s = r->p;
    r->p += n;
    rd_eol(r);
    return (size_t)n;
}

/* "<tag> n id..." -> malloc'ed ids */
static int32_t *rd_ids(rd *r, char tag, int32_t *n) {
    rd_expect(r, tag);
    *n = (int32_t)rd_int(r);
    int32_t *ids = malloc(((size_t)*n + 1) * sizeof *ids);
    for (int32_t i = 0; i < *n; i++) ids[i] = (int32_t)rd_int(r);
    rd_eol(r);
    return ids;
}

typedef struct file {
    char *data;
    size_t size;
} file;

static file load_fixture(const char *name) {
    file f;
    f.data = tu_read_file(tu_fixture(name), &f.size);
    cr_assert(f.data, "cannot read fixture %s", tu_fixture(name));
    return f;
}

typedef struct corpus {
    file f[2];
    int n;
    const char **s;
    size_t *len;
} corpus;

/* corpus.txt, and with gpt2 corpus_gpt2.txt after it */
static corpus load_corpus_ex(bool gpt2) {
    corpus c = {0};
    const char *names[2] = {"tokenizer/corpus.txt", "tokenizer/corpus_gpt2.txt"};
    rd r[2];
    int counts[2] = {0, 0};
    for (int k = 0; k < 1 + gpt2; k++) {
        c.f[k] = load_fixture(names[k]);
        r[k] = (rd){c.f[k].data, c.f[k].data + c.f[k].size};
        rd_expect(&r[k], 'N');
        counts[k] = (int)rd_int(&r[k]);
        rd_eol(&r[k]);
        cr_assert(counts[k] >= 40, "%s has only %d strings", names[k], counts[k]);
    }
    c.n = counts[0] + counts[1];
    c.s = calloc((size_t)c.n, sizeof *c.s);
    c.len = calloc((size_t)c.n, sizeof *c.len);
    for (int i = 0; i < c.n; i++) c.len[i] = rd_str(&r[i >= counts[0]], &c.s[i]);
    return c;
}

static corpus load_corpus(void) { return load_corpus_ex(false); }

static void free_corpus(corpus *c) {
    free(c->f[0].data);
    free(c->f[1].data);
    free(c->s);
    free(c->len);
}

/* ---------------------------------------------------------------------------------------- */
/* vocab helpers                                                                            */

typedef struct loaded {
    lm_gguf *g;
    lm_vocab *v;
} loaded;

static loaded load_path(const char *path) {
    loaded l = {0};
    lm_status st = lm_gguf_open(path, true, &l.g);
    cr_assert_eq(st, LM_STATUS_OK, "open %s: %s", path, lm_last_error());
    st = lm_vocab_load(l.g, &l.v);
    cr_assert_eq(st, LM_STATUS_OK, "vocab %s: %s", path, lm_last_error());
    return l;
}

static loaded load_synthetic(const char *name) {
    char path[64];
    snprintf(path, sizeof path, "tokenizer/%s_vocab.gguf", name);
    return load_path(tu_fixture(path));
}

static void unload(loaded *l) {
    lm_vocab_free(l->v);
    lm_gguf_close(l->g);
}

static int32_t id_of(const lm_vocab *v, const char *text) {
    int32_t id = lm_vocab_find(v, text, strlen(text));
    cr_assert(id >= 0, "token '%s' not in the vocabulary", text);
    return id;
}

/* Tokenize into a malloc'ed array (exact size query first). */
static int32_t *tokenize(const lm_vocab *v, const char *s, size_t len, bool bos, bool special, int32_t *n) {
    lm_status st = lm_vocab_tokenize(v, s, len, bos, special, NULL, 0, n);
    cr_assert(st == LM_STATUS_OK || st == LM_STATUS_BUFFER_TOO_SMALL, "tokenize: %s", lm_last_error());
    int32_t *ids = malloc(((size_t)*n + 1) * sizeof *ids);
    int32_t n2;
    st = lm_vocab_tokenize(v, s, len, bos, special, ids, *n, &n2);
    cr_assert_eq(st, LM_STATUS_OK, "tokenize: %s", lm_last_error());
    cr_assert_eq(n2, *n);
    return ids;
}

static void print_ids(const char *what, const int32_t *ids, int32_t n) {
    fprintf(stderr, "  %s (%d):", what, n);
    for (int32_t i = 0; i < n && i < 200; i++) fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, n > 200 ? " ...\n" : "\n");
}

static void print_str(const char *s, size_t n) {
    fprintf(stderr, "  text (%zu bytes): \"", n);
    for (size_t i = 0; i < n && i < 160; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 32 && c < 127 && c != '"' && c != '\\') fputc(c, stderr);
        else fprintf(stderr, "\\x%02x", c);
    }
    fprintf(stderr, n > 160 ? "\"...\n" : "\"\n");
}

/* Compare ids with llama.cpp for every corpus string; reports every mismatching string. */
static void check_ids(const lm_vocab *v, const char *fixture, const char *name) {
    corpus c = load_corpus_ex(lm_vocab_get_type(v) == LM_VOCAB_GPT2);
    file f = load_fixture(fixture);
    rd r = {f.data, f.data + f.size};
    rd_expect(&r, 'H');
    int32_t n_tok = (int32_t)rd_int(&r), bos = (int32_t)rd_int(&r), eos = (int32_t)rd_int(&r);
    rd_eol(&r);
    cr_assert_eq(lm_vocab_n_tokens(v), n_tok);
    cr_assert_eq(lm_vocab_bos(v), bos);
    cr_assert_eq(lm_vocab_eos(v), eos);
    int bad = 0, checked = 0;
    for (int i = 0; i < c.n; i++) {
        for (int special = 0; special < 2; special++) {
            int32_t ne, ng;
            int32_t *exp = rd_ids(&r, 'I', &ne);
            int32_t *got = tokenize(v, c.s[i], c.len[i], true, special, &ng);
            int32_t k = 0;
            while (k < ne && k < ng && exp[k] == got[k]) k++;
            if (k < ne || k < ng) {
                bad++;
                fprintf(stderr, "%s: corpus string %d, parse_special=%d: first mismatch at token %d\n", name, i,
                        special, k);
                print_str(c.s[i], c.len[i]);
                print_ids("llama.cpp", exp, ne);
                print_ids("lumen    ", got, ng);
            }
            checked++;
            free(exp);
            free(got);
        }
    }
    cr_assert_eq(r.p, r.end, "%s: the fixture has more records than the corpus has strings", fixture);
    free(f.data);
    free_corpus(&c);
    cr_assert_eq(bad, 0, "%s: %d of %d tokenizations differ from llama.cpp", name, bad, checked);
}

/* Pieces of sampled ids, the EOG set and concatenated sequences against llama.cpp. */
static void check_pieces(const lm_vocab *v, const char *fixture, const char *name) {
    file f = load_fixture(fixture);
    rd r = {f.data, f.data + f.size};
    rd_expect(&r, 'H');
    int32_t n_tok = (int32_t)rd_int(&r);
    rd_int(&r);
    rd_int(&r);
    rd_eol(&r);
    cr_assert_eq(lm_vocab_n_tokens(v), n_tok);

    int32_t n_eog;
    int32_t *eog = rd_ids(&r, 'E', &n_eog);
    int32_t n_is = 0;
    for (int32_t id = 0; id < n_tok; id++) n_is += lm_vocab_is_eog(v, id);
    cr_assert_eq(n_is, n_eog, "%s: %d EOG tokens, llama.cpp has %d", name, n_is, n_eog);
    for (int32_t i = 0; i < n_eog; i++) cr_assert(lm_vocab_is_eog(v, eog[i]), "%s: token %d should be EOG", name, eog[i]);
    cr_assert(!lm_vocab_is_eog(v, -1) && !lm_vocab_is_eog(v, n_tok));
    free(eog);

    int bad = 0, n_pieces = 0, n_seq = 0;
    char buf[4096];
    while (r.p < r.end) {
        char tag = *r.p;
        if (tag == 'P') {
            rd_tag(&r);
            int32_t id = (int32_t)rd_int(&r);
            rd_eol(&r);
            for (int special = 0; special < 2; special++) {
                const char *exp;
                size_t ne = rd_str(&r, &exp), ng;
                lm_status st = lm_vocab_piece(v, id, special, buf, sizeof buf, &ng);
                cr_assert_eq(st, LM_STATUS_OK, "%s: piece %d: %s", name, id, lm_last_error());
                if (ng != ne || memcmp(buf, exp, ne) != 0) {
                    bad++;
                    fprintf(stderr, "%s: piece of token %d (special=%d) differs\n", name, id, special);
                    print_str(exp, ne);
                    print_str(buf, ng);
                }
            }
            n_pieces++;
        } else {
            int32_t n;
            int32_t *ids = rd_ids(&r, 'I', &n);
            for (int special = 0; special < 2; special++) {
                const char *exp;
                size_t ne = rd_str(&r, &exp), at = 0;
                char *out = malloc(ne + 4096);
                for (int32_t i = 0; i < n; i++) {
                    size_t pl;
                    cr_assert_eq(lm_vocab_piece(v, ids[i], special, out + at, ne + 4096 - at, &pl), LM_STATUS_OK);
                    at += pl;
                }
                if (at != ne || memcmp(out, exp, ne) != 0) {
                    bad++;
                    fprintf(stderr, "%s: detokenized sequence %d (special=%d) differs\n", name, n_seq, special);
                    print_str(exp, ne);
                    print_str(out, at);
                }
                free(out);
            }
            free(ids);
            n_seq++;
        }
    }
    free(f.data);
    cr_assert(n_pieces > 1000 && n_seq > 10);
    cr_assert_eq(bad, 0, "%s: %d pieces / sequences differ from llama.cpp", name, bad);
}

/* ---------------------------------------------------------------------------------------- */
/* llama.cpp parity                                                                         */

Test(tokenizer, ids_gemma4_bpe) {
    loaded l = load_synthetic("gemma4");
    cr_assert_eq(lm_vocab_get_type(l.v), LM_VOCAB_BPE);
    check_ids(l.v, "tokenizer/gemma4_ids.txt", "gemma4");
    unload(&l);
}

Test(tokenizer, ids_spm) {
    loaded l = load_synthetic("spm");
    cr_assert_eq(lm_vocab_get_type(l.v), LM_VOCAB_SPM);
    check_ids(l.v, "tokenizer/spm_ids.txt", "spm");
    unload(&l);
}

Test(tokenizer, ids_spm_space_prefix_no_bos) {
    loaded l = load_synthetic("spm_prefix");
    cr_assert(!lm_vocab_add_bos(l.v));
    check_ids(l.v, "tokenizer/spm_prefix_ids.txt", "spm_prefix");
    unload(&l);
}

Test(tokenizer, ids_gemma3_real) {
    const char *path = tu_real_model_path();
    if (!path) cr_skip("Gemma 3 270M model not found (tools/fetch_model.sh)");
    loaded l = load_path(path);
    check_ids(l.v, "tokenizer/gemma3_ids.txt", "gemma3");
    unload(&l);
}

/* GPT-2 style byte-level BPE ("gpt2" tokenizer model) */

Test(tokenizer, ids_gpt2_synthetic) {
    loaded l = load_synthetic("gpt2");
    cr_assert_eq(lm_vocab_get_type(l.v), LM_VOCAB_GPT2);
    cr_assert(!lm_vocab_add_bos(l.v), "pre \"gpt-2\": no BOS unless the file asks");
    check_ids(l.v, "tokenizer/gpt2_ids.txt", "gpt2");
    unload(&l);
}

Test(tokenizer, ids_gpt2_llama3_synthetic) {
    loaded l = load_synthetic("gpt2_llama3");
    cr_assert(lm_vocab_add_bos(l.v), "pre \"llama-bpe\": BOS by default");
    check_ids(l.v, "tokenizer/gpt2_llama3_ids.txt", "gpt2_llama3");
    unload(&l);
}

Test(tokenizer, ids_gpt2_default_synthetic) {
    loaded l = load_synthetic("gpt2_default");
    cr_assert(lm_vocab_bos(l.v) == 11 && lm_vocab_eos(l.v) == 11, "llama.cpp's gpt2 default ids");
    check_ids(l.v, "tokenizer/gpt2_default_ids.txt", "gpt2_default");
    unload(&l);
}

Test(tokenizer, ids_smollm2) {
    loaded l = load_synthetic("smollm2");
    cr_assert_eq(lm_vocab_get_type(l.v), LM_VOCAB_GPT2);
    cr_assert(!lm_vocab_add_bos(l.v));
    check_ids(l.v, "tokenizer/smollm2_ids.txt", "smollm2");
    unload(&l);
}

Test(tokenizer, ids_qwen2, .timeout = 120) {
    loaded l = load_synthetic("qwen2");
    cr_assert(lm_vocab_add_bos(l.v));
    cr_assert_eq(lm_vocab_bos(l.v), id_of(l.v, "<\xef\xbd\x9c" "begin\xe2\x96\x81" "of\xe2\x96\x81" "sentence\xef\xbd\x9c>"));
    check_ids(l.v, "tokenizer/qwen2_ids.txt", "qwen2");
    unload(&l);
}

Test(tokenizer, pieces_gpt2_synthetic) {
    loaded l = load_synthetic("gpt2");
    check_pieces(l.v, "tokenizer/gpt2_pieces.txt", "gpt2");
    unload(&l);
}

Test(tokenizer, pieces_smollm2) {
    loaded l = load_synthetic("smollm2");
    check_pieces(l.v, "tokenizer/smollm2_pieces.txt", "smollm2");
    unload(&l);
}

Test(tokenizer, pieces_qwen2, .timeout = 120) {
    loaded l = load_synthetic("qwen2");
    check_pieces(l.v, "tokenizer/qwen2_pieces.txt", "qwen2");
    unload(&l);
}

Test(tokenizer, pieces_gemma4_bpe) {
    loaded l = load_synthetic("gemma4");
    check_pieces(l.v, "tokenizer/gemma4_pieces.txt", "gemma4");
    unload(&l);
}

Test(tokenizer, pieces_spm) {
    loaded l = load_synthetic("spm");
    check_pieces(l.v, "tokenizer/spm_pieces.txt", "spm");
    unload(&l);
}

Test(tokenizer, pieces_gemma3_real) {
    const char *path = tu_real_model_path();
    if (!path) cr_skip("Gemma 3 270M model not found (tools/fetch_model.sh)");
    loaded l = load_path(path);
    check_pieces(l.v, "tokenizer/gemma3_pieces.txt", "gemma3");
    /* what llama.cpp decides for Gemma 3: <end_of_turn> ends a turn, so does "</s>" */
    cr_assert(lm_vocab_is_eog(l.v, 1) && lm_vocab_is_eog(l.v, 106) && lm_vocab_is_eog(l.v, 212));
    cr_assert(!lm_vocab_is_eog(l.v, 105) && !lm_vocab_is_eog(l.v, 2));
    unload(&l);
}

/* ---------------------------------------------------------------------------------------- */
/* behaviour                                                                                */

/* strict UTF-8 (no overlongs, surrogates or code points above U+10FFFF) */
static bool valid_utf8(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        size_t k = c < 0x80 ? 0 : c >= 0xC2 && c < 0xE0 ? 1 : c >= 0xE0 && c < 0xF0 ? 2 : c >= 0xF0 && c < 0xF5 ? 3 : 9;
        if (k == 9 || i + k >= n + (k ? 0 : 1)) return false;
        uint32_t cp = k ? c & (0x3Fu >> k) : c;
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xC0) != 0x80) return false;
            cp = cp << 6 | (p[i + j] & 0x3Fu);
        }
        if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp < 0xE000))
            return false;
        i += k + 1;
    }
    return true;
}

static char *detok(const lm_vocab *v, const int32_t *ids, int32_t n, bool special, size_t *len) {
    size_t cap = 64, at = 0;
    char *out = malloc(cap);
    for (int32_t i = 0; i < n; i++) {
        size_t pl;
        lm_status st = lm_vocab_piece(v, ids[i], special, out + at, cap - at, &pl);
        if (st == LM_STATUS_BUFFER_TOO_SMALL) {
            while (cap - at < pl) cap *= 2;
            out = realloc(out, cap);
            st = lm_vocab_piece(v, ids[i], special, out + at, cap - at, &pl);
        }
        cr_assert_eq(st, LM_STATUS_OK);
        at += pl;
    }
    *len = at;
    return out;
}

/* Whether every byte of s has its bytes_to_unicode character in a GPT2 vocabulary (SmolLM2 lacks
 * a few, e.g. 0x04 and 0x1D: llama.cpp then drops the byte, and so does lumen). */
static bool gpt2_bytes_known(const lm_vocab *v, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned b = (unsigned char)s[i];
        unsigned c = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE ? b
                     : b <= 0x20                                                   ? 0x100 + b
                     : b <= 0xA0                                                   ? 0x100 + 33 + (b - 0x7F)
                                                                                   : 0x100 + 67;
        char u[2] = {(char)c, 0};
        size_t ul = 1;
        if (c >= 0x80) {
            u[0] = (char)(0xC0 | c >> 6);
            u[1] = (char)(0x80 | (c & 0x3F));
            ul = 2;
        }
        if (lm_vocab_find(v, u, ul) < 0) return false;
    }
    return true;
}

static void roundtrip(const char *name) {
    loaded l = load_synthetic(name);
    const bool gpt2 = lm_vocab_get_type(l.v) == LM_VOCAB_GPT2;
    corpus c = load_corpus_ex(gpt2);
    int n_checked = 0;
    for (int i = 0; i < c.n; i++) {
        /* invalid UTF-8: BPE replaces it by U+FFFD; SPM keeps the bytes of the escaped text, so a
         * space swallowed by a bad lead byte comes back as U+2581 (both as in llama.cpp) */
        if (!valid_utf8(c.s[i], c.len[i])) continue;
        /* a literal U+2581 decodes to a space in SPM / gemma4, as in llama.cpp */
        if (!gpt2 && memmem(c.s[i], c.len[i], "\xe2\x96\x81", 3)) continue;
        if (gpt2 && !gpt2_bytes_known(l.v, c.s[i], c.len[i])) continue;
        int32_t n;
        int32_t *ids = tokenize(l.v, c.s[i], c.len[i], false, false, &n);
        size_t dl;
        char *d = detok(l.v, ids, n, false, &dl);
        if (dl != c.len[i] || memcmp(d, c.s[i], dl) != 0) {
            print_str(c.s[i], c.len[i]);
            print_str(d, dl);
            cr_assert_fail("%s: round trip of corpus string %d differs", name, i);
        }
        n_checked++;
        free(ids);
        free(d);
    }
    cr_assert(n_checked >= 50, "only %d strings checked", n_checked);
    free_corpus(&c);
    unload(&l);
}

Test(tokenizer, roundtrip_gemma4_bpe) { roundtrip("gemma4"); }
Test(tokenizer, roundtrip_spm) { roundtrip("spm"); }
Test(tokenizer, roundtrip_gpt2_synthetic) { roundtrip("gpt2"); }
Test(tokenizer, roundtrip_gpt2_default_synthetic) { roundtrip("gpt2_default"); }
Test(tokenizer, roundtrip_smollm2) { roundtrip("smollm2"); }
Test(tokenizer, roundtrip_qwen2, .timeout = 120) { roundtrip("qwen2"); }

static bool contains(const int32_t *ids, int32_t n, int32_t id) {
    for (int32_t i = 0; i < n; i++)
        if (ids[i] == id) return true;
    return false;
}

Test(tokenizer, special_tokens_gemma4) {
    loaded l = load_synthetic("gemma4");
    const lm_vocab *v = l.v;
    int32_t turn = id_of(v, "<|turn>"), end = id_of(v, "<turn|>"), ch = id_of(v, "<|channel>"), s = id_of(v, "</s>");
    int32_t tr = id_of(v, "<|tool_response>"), eos = id_of(v, "<eos>");
    const char *text = "<|turn>user\nhi<turn|><|channel>x</s>";
    int32_t n;
    int32_t *ids = tokenize(v, text, strlen(text), false, true, &n);
    cr_assert_eq(ids[0], turn);
    cr_assert(contains(ids, n, end) && contains(ids, n, ch));
    cr_assert(!contains(ids, n, s), "</s> is an ordinary token in a gemma4 vocabulary");
    free(ids);
    ids = tokenize(v, text, strlen(text), false, false, &n);
    cr_assert(!contains(ids, n, turn) && !contains(ids, n, end), "CONTROL tokens need parse_special");
    cr_assert(contains(ids, n, ch), "USER_DEFINED tokens are always matched");
    free(ids);
    /* EOG: <eos>, <turn|>, <|tool_response>; not </s>, not <|turn> */
    cr_assert(lm_vocab_is_eog(v, eos) && lm_vocab_is_eog(v, end) && lm_vocab_is_eog(v, tr));
    cr_assert(!lm_vocab_is_eog(v, s) && !lm_vocab_is_eog(v, turn));
    /* CONTROL renders only on request; USER_DEFINED always */
    char buf[32];
    size_t pl;
    cr_assert_eq(lm_vocab_piece(v, turn, false, buf, sizeof buf, &pl), LM_STATUS_OK);
    cr_assert_eq(pl, 0);
    cr_assert_eq(lm_vocab_piece(v, turn, true, buf, sizeof buf, &pl), LM_STATUS_OK);
    cr_assert(pl == 7 && memcmp(buf, "<|turn>", 7) == 0);
    cr_assert_eq(lm_vocab_piece(v, ch, false, buf, sizeof buf, &pl), LM_STATUS_OK);
    cr_assert(pl == 10 && memcmp(buf, "<|channel>", 10) == 0);
    cr_assert_eq(lm_vocab_token_type(v, turn), LM_TOKEN_CONTROL);
    cr_assert_eq(lm_vocab_token_type(v, ch), LM_TOKEN_USER_DEFINED);
    cr_assert_eq(lm_vocab_token_type(v, -1), -1);
    size_t tl;
    const char *tt = lm_vocab_text(v, ch, &tl);
    cr_assert(tt && tl == 10 && memcmp(tt, "<|channel>", 10) == 0);
    cr_assert_null(lm_vocab_text(v, lm_vocab_n_tokens(v), &tl));
    cr_assert_eq(lm_vocab_find(v, "no such token text", 18), -1);
    unload(&l);
}

Test(tokenizer, special_tokens_gemma3_real) {
    const char *path = tu_real_model_path();
    if (!path) cr_skip("Gemma 3 270M model not found (tools/fetch_model.sh)");
    loaded l = load_path(path);
    const char *text = "<start_of_turn>user\n<table>x</s>";
    int32_t n;
    int32_t *ids = tokenize(l.v, text, strlen(text), true, true, &n);
    cr_assert(n >= 6 && ids[0] == 2 && ids[1] == 105 && contains(ids, n, 168) && ids[n - 1] == 212);
    free(ids);
    ids = tokenize(l.v, text, strlen(text), true, false, &n);
    cr_assert(!contains(ids, n, 105) && !contains(ids, n, 212) && contains(ids, n, 168));
    free(ids);
    unload(&l);
}

#define DS_BOS "<\xef\xbd\x9c" "begin\xe2\x96\x81" "of\xe2\x96\x81" "sentence\xef\xbd\x9c>"
#define DS_EOS "<\xef\xbd\x9c" "end\xe2\x96\x81" "of\xe2\x96\x81" "sentence\xef\xbd\x9c>"

Test(tokenizer, special_tokens_gpt2_real, .timeout = 120) {
    /* SmolLM2: ChatML markers are CONTROL; <|im_end|> and <|endoftext|> end generation; no BOS */
    loaded sm = load_synthetic("smollm2");
    int32_t im_start = id_of(sm.v, "<|im_start|>"), im_end = id_of(sm.v, "<|im_end|>"), eot = id_of(sm.v, "<|endoftext|>");
    const char *chat = "<|im_start|>user\nHi<|im_end|>\n";
    int32_t n;
    int32_t *ids = tokenize(sm.v, chat, strlen(chat), true, true, &n);
    cr_assert(n >= 5 && ids[0] == im_start && contains(ids, n, im_end), "ChatML markers are parsed");
    free(ids);
    ids = tokenize(sm.v, chat, strlen(chat), true, false, &n);
    cr_assert(!contains(ids, n, im_start) && !contains(ids, n, im_end), "CONTROL tokens need parse_special");
    free(ids);
    cr_assert(lm_vocab_is_eog(sm.v, im_end) && lm_vocab_is_eog(sm.v, eot) && !lm_vocab_is_eog(sm.v, im_start));
    char buf[64];
    size_t pl;
    cr_assert_eq(lm_vocab_piece(sm.v, im_end, false, buf, sizeof buf, &pl), LM_STATUS_OK);
    cr_assert_eq(pl, 0);
    cr_assert_eq(lm_vocab_piece(sm.v, im_end, true, buf, sizeof buf, &pl), LM_STATUS_OK);
    cr_assert(pl == 10 && memcmp(buf, "<|im_end|>", 10) == 0);
    /* NORMAL tokens map back to bytes: U+0120 is a space, U+010A a newline */
    cr_assert_eq(lm_vocab_piece(sm.v, id_of(sm.v, "\xc4\xa0the"), false, buf, sizeof buf, &pl), LM_STATUS_OK);
    cr_assert(pl == 4 && memcmp(buf, " the", 4) == 0);
    cr_assert_eq(lm_vocab_piece(sm.v, id_of(sm.v, "\xc4\x8a"), false, buf, sizeof buf, &pl), LM_STATUS_OK);
    cr_assert(pl == 1 && buf[0] == '\n');
    unload(&sm);

    /* DeepSeek-R1-Distill-Qwen: BOS added; <think> is USER_DEFINED (always matched, always
     * rendered); the end-of-sentence token and Qwen's FIM pad / repo / file-sep tokens end generation */
    loaded q = load_synthetic("qwen2");
    int32_t bos = id_of(q.v, DS_BOS), eos = id_of(q.v, DS_EOS), think = id_of(q.v, "<think>");
    cr_assert(lm_vocab_add_bos(q.v) && lm_vocab_bos(q.v) == bos && lm_vocab_eos(q.v) == eos);
    const char *text = DS_BOS "<think>\nx</think>" DS_EOS;
    ids = tokenize(q.v, text, strlen(text), true, false, &n);
    cr_assert(ids[0] == bos && ids[1] != bos && contains(ids, n, think) && !contains(ids, n, eos));
    free(ids);
    ids = tokenize(q.v, text, strlen(text), true, true, &n);
    cr_assert(ids[0] == bos && ids[1] == bos && ids[2] == think && ids[n - 1] == eos);
    free(ids);
    cr_assert(lm_vocab_is_eog(q.v, eos) && lm_vocab_is_eog(q.v, id_of(q.v, "<|fim_pad|>")));
    cr_assert(!lm_vocab_is_eog(q.v, bos) && !lm_vocab_is_eog(q.v, think));
    cr_assert_eq(lm_vocab_piece(q.v, think, false, buf, sizeof buf, &pl), LM_STATUS_OK);
    cr_assert(pl == 7 && memcmp(buf, "<think>", 7) == 0);
    cr_assert_eq(lm_vocab_token_type(q.v, id_of(q.v, "[PAD151665]")), LM_TOKEN_UNUSED);
    cr_assert_eq(lm_vocab_piece(q.v, id_of(q.v, "[PAD151665]"), true, buf, sizeof buf, &pl), LM_STATUS_OK);
    cr_assert_eq(pl, 0, "UNUSED tokens render as nothing");
    unload(&q);
}

Test(tokenizer, bos_handling) {
    loaded g4 = load_synthetic("gemma4"), spm = load_synthetic("spm"), pre = load_synthetic("spm_prefix");
    const char *text = "Hello world";
    loaded *all[3] = {&g4, &spm, &pre};
    for (int k = 0; k < 3; k++) {
        const lm_vocab *v = all[k]->v;
        int32_t na, nb;
        int32_t *a = tokenize(v, text, strlen(text), true, false, &na);
        int32_t *b = tokenize(v, text, strlen(text), false, false, &nb);
        if (lm_vocab_add_bos(v)) {
            cr_assert(na == nb + 1 && a[0] == lm_vocab_bos(v));
            cr_assert_arr_eq(a + 1, b, (size_t)nb * sizeof *b);
        } else {
            cr_assert(na == nb);
            cr_assert_arr_eq(a, b, (size_t)nb * sizeof *b);
        }
        free(a);
        free(b);
        /* empty text: only BOS */
        int32_t out[4], n;
        cr_assert_eq(lm_vocab_tokenize(v, "", 0, true, true, out, 4, &n), LM_STATUS_OK);
        cr_assert_eq(n, lm_vocab_add_bos(v) ? 1 : 0);
        cr_assert_eq(lm_vocab_tokenize(v, NULL, 0, false, false, out, 4, &n), LM_STATUS_OK);
        cr_assert_eq(n, 0);
    }
    cr_assert(lm_vocab_add_bos(g4.v) && lm_vocab_add_bos(spm.v) && !lm_vocab_add_bos(pre.v));
    loaded gp[3] = {load_synthetic("gpt2"), load_synthetic("gpt2_llama3"), load_synthetic("gpt2_default")};
    for (int k = 0; k < 3; k++) {
        int32_t na, nb;
        int32_t *a = tokenize(gp[k].v, text, strlen(text), true, false, &na);
        int32_t *b = tokenize(gp[k].v, text, strlen(text), false, false, &nb);
        cr_assert_eq(na, nb + (k == 1), "only the llama-bpe pre-type adds BOS by default");
        if (k == 1) cr_assert_eq(a[0], lm_vocab_bos(gp[k].v));
        free(a);
        free(b);
        unload(&gp[k]);
    }
    unload(&g4);
    unload(&spm);
    unload(&pre);
}

Test(tokenizer, buffer_too_small) {
    loaded l = load_synthetic("gemma4");
    const char *text = "The quick brown fox jumps over the lazy dog";
    int32_t n;
    int32_t *all = tokenize(l.v, text, strlen(text), true, false, &n);
    cr_assert(n > 4);
    int32_t part[64], m = -1;
    for (int i = 0; i < 64; i++) part[i] = -7;
    cr_assert_eq(lm_vocab_tokenize(l.v, text, strlen(text), true, false, part, 3, &m), LM_STATUS_BUFFER_TOO_SMALL);
    cr_assert_eq(m, n, "the full count is reported");
    cr_assert_arr_eq(part, all, 3 * sizeof *all);
    cr_assert_eq(part[3], -7, "nothing written past cap");
    cr_assert_eq(lm_vocab_tokenize(l.v, text, strlen(text), true, false, NULL, 0, &m), LM_STATUS_BUFFER_TOO_SMALL);
    cr_assert_eq(m, n);
    cr_assert_eq(lm_vocab_tokenize(l.v, text, strlen(text), true, false, part, n, &m), LM_STATUS_OK);
    /* invalid arguments */
    cr_assert_eq(lm_vocab_tokenize(l.v, NULL, 3, true, false, part, 64, &m), LM_STATUS_INVALID_ARGUMENT);
    cr_assert_eq(lm_vocab_tokenize(l.v, text, 3, true, false, NULL, 5, &m), LM_STATUS_INVALID_ARGUMENT);
    cr_assert_eq(lm_vocab_tokenize(l.v, text, 3, true, false, part, -1, &m), LM_STATUS_INVALID_ARGUMENT);
    cr_assert_eq(lm_vocab_tokenize(l.v, text, 3, true, false, part, 64, NULL), LM_STATUS_INVALID_ARGUMENT);
    cr_assert_eq(lm_vocab_tokenize(NULL, text, 3, true, false, part, 64, &m), LM_STATUS_INVALID_ARGUMENT);
    /* pieces */
    int32_t id = id_of(l.v, "<|tool_response>");
    char buf[32];
    size_t pl = 0;
    cr_assert_eq(lm_vocab_piece(l.v, id, true, buf, 5, &pl), LM_STATUS_BUFFER_TOO_SMALL);
    cr_assert_eq(pl, 16, "the needed size is reported");
    cr_assert_eq(lm_vocab_piece(l.v, id, true, buf, 16, &pl), LM_STATUS_OK);
    cr_assert_eq(lm_vocab_piece(l.v, id, true, NULL, 0, &pl), LM_STATUS_BUFFER_TOO_SMALL);
    cr_assert_eq(lm_vocab_piece(l.v, id_of(l.v, "<|turn>"), false, NULL, 0, &pl), LM_STATUS_OK);
    cr_assert_eq(pl, 0);
    cr_assert_eq(lm_vocab_piece(l.v, -1, true, buf, 32, &pl), LM_STATUS_INVALID_ARGUMENT);
    cr_assert_eq(lm_vocab_piece(l.v, lm_vocab_n_tokens(l.v), true, buf, 32, &pl), LM_STATUS_INVALID_ARGUMENT);
    cr_assert_eq(lm_vocab_piece(l.v, id, true, NULL, 4, &pl), LM_STATUS_INVALID_ARGUMENT);
    cr_assert_eq(lm_vocab_piece(l.v, id, true, buf, 32, NULL), LM_STATUS_INVALID_ARGUMENT);
    free(all);
    unload(&l);
}


static void check_range(const lm_vocab *v, const int32_t *ids, int32_t n) {
    for (int32_t i = 0; i < n; i++) cr_assert(ids[i] >= 0 && ids[i] < lm_vocab_n_tokens(v), "id %d out of range", ids[i]);
}

Test(tokenizer, random_bytes_and_invalid_utf8) {
    enum { NV = 6 };
    loaded ls[NV] = {load_synthetic("gemma4"), load_synthetic("spm"), load_synthetic("spm_prefix"),
                     load_synthetic("gpt2"), load_synthetic("gpt2_default"), load_synthetic("gpt2_llama3")};
    tu_rng rng = tu_seed(11);
    for (int it = 0; it < 600; it++) {
        size_t len = (size_t)tu_range(&rng, 0, 200);
        char *s = malloc(len + 1); /* exact size: ASan catches reads past the end */
        int mode = it % 3;
        for (size_t i = 0; i < len; i++) {
            if (mode == 0) s[i] = (char)tu_range(&rng, 0, 255);                         /* anything */
            else if (mode == 1) s[i] = (char)(0x80 | tu_range(&rng, 0, 0x7F));          /* high bytes */
            else s[i] = "<|turn>\n \xe2\x96\x81\xf0\xc3"[tu_range(&rng, 0, 12)]; /* specials, runs, leads */
        }
        for (int k = 0; k < NV; k++) {
            for (int special = 0; special < 2; special++) {
                int32_t n;
                int32_t *ids = tokenize(ls[k].v, s, len, true, special, &n);
                check_range(ls[k].v, ids, n);
                cr_assert(len == 0 || n > (lm_vocab_add_bos(ls[k].v) ? 1 : 0), "non-empty text gave no tokens");
                if (k == 1 && mode == 1) {
                    /* SPM keeps every byte (no spaces here to be escaped): decoding gives the input back */
                    size_t dl;
                    char *d = detok(ls[k].v, ids + 1, n - 1, false, &dl);
                    cr_assert(dl == len && memcmp(d, s, len) == 0, "SPM byte round trip failed at iteration %d", it);
                    free(d);
                }
                if (k >= 3 && !special) {
                    /* byte-level BPE: decoding gives the text as llama.cpp's decoder sees it */
                    int o = lm_vocab_add_bos(ls[k].v);
                    size_t dl, cl;
                    char *d = detok(ls[k].v, ids + o, n - o, false, &dl);
                    char *clean = malloc(3 * len + 1);
                    cl = utf8_as_llama(s, len, clean);
                    cr_assert(dl == cl && memcmp(d, clean, cl) == 0, "byte-level round trip failed at iteration %d", it);
                    free(clean);
                    free(d);
                }
                free(ids);
            }
        }
        free(s);
    }
    for (int k = 0; k < NV; k++) unload(&ls[k]);
}

static void long_input(const lm_vocab *v, const char *what, const char *s, size_t len, bool special, double limit_s) {
    double t0 = lm_time_s();
    int32_t n;
    int32_t *ids = tokenize(v, s, len, true, special, &n);
    double dt = lm_time_s() - t0;
    check_range(v, ids, n);
    cr_assert(n > 1);
    cr_assert(dt < limit_s, "%s: %zu bytes took %.2f s", what, len, dt);
    free(ids);
}

/* 1 MB inputs on every vocabulary; the limits are generous (the suite also runs under ASan). */
static void long_inputs(const lm_vocab *v) {
    const size_t MB = 1u << 20;
    char *s = malloc(MB);
    tu_rng rng = tu_seed(5);
    static const char *words[] = {"the ", "model ", "token ", "caf\xc3\xa9 ", "\xe4\xbd\xa0\xe5\xa5\xbd", "x",
                                  "  ", "\xf0\x9f\x98\x80", "<table>", ", "};
    size_t at = 0;
    while (at < MB) {
        const char *w = words[tu_range(&rng, 0, 9)];
        size_t wl = strlen(w);
        if (at + wl > MB) wl = MB - at;
        memcpy(s + at, w, wl);
        at += wl;
    }
    long_input(v, "1 MB line of words", s, MB, false, 20.0);
    memset(s, 'a', MB);
    long_input(v, "1 MB of 'a'", s, MB, false, 20.0);
    memset(s, ' ', MB);
    long_input(v, "1 MB of spaces", s, MB, false, 20.0);
    memset(s, '\n', MB);
    long_input(v, "1 MB of newlines", s, MB, false, 20.0);
    for (size_t i = 0; i < MB; i++) s[i] = (char)(0x80 + (i % 64));
    long_input(v, "1 MB of continuation bytes", s, MB, false, 20.0);
    for (size_t i = 0; i < MB; i++) s[i] = "<eos>"[i % 5];
    long_input(v, "1 MB of <eos>", s, MB, true, 20.0);
    free(s);
}

Test(tokenizer, long_inputs_gemma4, .timeout = 300) {
    loaded l = load_synthetic("gemma4");
    long_inputs(l.v);
    unload(&l);
}

Test(tokenizer, long_inputs_spm, .timeout = 300) {
    loaded l = load_synthetic("spm");
    long_inputs(l.v);
    unload(&l);
}

Test(tokenizer, long_inputs_gpt2, .timeout = 300) {
    loaded l = load_synthetic("gpt2_default"); /* the most passes */
    long_inputs(l.v);
    unload(&l);
}

Test(tokenizer, long_inputs_qwen2, .timeout = 300) {
    loaded l = load_synthetic("qwen2");
    long_inputs(l.v);
    unload(&l);
}

/* Tokenizing ~100 KB of mixed text (every corpus string, repeated) with the 152k-token Qwen
 * vocabulary: the time is printed; the bound is generous for sanitizer builds. */
Test(tokenizer, speed_qwen2_100k, .timeout = 120) {
    loaded l = load_synthetic("qwen2");
    corpus c = load_corpus_ex(true);
    size_t total = 0, cap = 100 * 1024;
    char *text = malloc(cap);
    for (int i = 0; total < cap; i = (i + 1) % c.n) {
        size_t k = c.len[i] < cap - total ? c.len[i] : cap - total;
        memcpy(text + total, c.s[i], k);
        total += k;
    }
    double best = 1e9;
    int32_t n = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = lm_time_s();
        int32_t *ids = tokenize(l.v, text, total, true, false, &n);
        double dt = lm_time_s() - t0;
        if (dt < best) best = dt;
        free(ids);
    }
    fprintf(stderr, "qwen2: %zu bytes -> %d tokens in %.1f ms (%.1f MB/s)\n", total, n, best * 1e3, total / best / 1e6);
    cr_assert(best < 5.0, "100 KB took %.2f s", best);
    free(text);
    free_corpus(&c);
    unload(&l);
}

Test(tokenizer, long_inputs_gemma3_real, .timeout = 300) {
    const char *path = tu_real_model_path();
    if (!path) cr_skip("Gemma 3 270M model not found (tools/fetch_model.sh)");
    loaded l = load_path(path);
    long_inputs(l.v);
    unload(&l);
}

/* ---------------------------------------------------------------------------------------- */
/* thread safety                                                                            */

typedef struct job {
    const lm_vocab *v;
    const corpus *c;
    int32_t **ref;
    int32_t *ref_n;
    int bad;
} job;

static void *worker(void *arg) {
    job *j = arg;
    for (int rep = 0; rep < 3; rep++)
        for (int i = 0; i < j->c->n; i++) {
            int32_t n = 0, cap = j->ref_n[i] + 8;
            int32_t *ids = malloc((size_t)cap * sizeof *ids);
            lm_status st = lm_vocab_tokenize(j->v, j->c->s[i], j->c->len[i], true, true, ids, cap, &n);
            if (st || n != j->ref_n[i] || memcmp(ids, j->ref[i], (size_t)n * sizeof *ids) != 0) j->bad++;
            free(ids);
        }
    return NULL;
}

Test(tokenizer, concurrent_tokenize) {
    loaded l = load_synthetic("gemma4");
    corpus c = load_corpus();
    int32_t **ref = calloc((size_t)c.n, sizeof *ref);
    int32_t *ref_n = calloc((size_t)c.n, sizeof *ref_n);
    for (int i = 0; i < c.n; i++) ref[i] = tokenize(l.v, c.s[i], c.len[i], true, true, &ref_n[i]);
    pthread_t th[4];
    job jobs[4];
    for (int t = 0; t < 4; t++) {
        jobs[t] = (job){l.v, &c, ref, ref_n, 0};
        cr_assert_eq(pthread_create(&th[t], NULL, worker, &jobs[t]), 0);
    }
    for (int t = 0; t < 4; t++) {
        pthread_join(th[t], NULL);
        cr_assert_eq(jobs[t].bad, 0, "thread %d got different ids", t);
    }
    for (int i = 0; i < c.n; i++) free(ref[i]);
    free(ref);
    free(ref_n);
    free_corpus(&c);
    unload(&l);
}

/* ---------------------------------------------------------------------------------------- */
/* malformed metadata                                                                       */

/* A small vocabulary: 0..4 specials, 5 "a", 6 "b", 7 "ab", 8 <0x41> (BYTE), 9 "\xe2\x96\x81". */
enum {
    F_BAD_MODEL = 1 << 0,     /* tokenizer.ggml.model = "bert" */
    F_NO_MODEL = 1 << 1,      /* no tokenizer.ggml.model */
    F_NO_TOKENS = 1 << 2,     /* no tokenizer.ggml.tokens */
    F_INT_TOKENS = 1 << 3,    /* tokens is an array of i32 */
    F_SHORT_SCORES = 1 << 4,  /* scores has one entry less */
    F_SHORT_TYPES = 1 << 5,   /* token_type has one entry more */
    F_BAD_TYPE = 1 << 6,      /* a token_type value of 9 */
    F_F32_TYPES = 1 << 7,     /* token_type is an array of f32 */
    F_BOS_RANGE = 1 << 8,     /* bos_token_id = n_tokens */
    F_EOS_NEG = 1 << 9,       /* eos_token_id stored as i32 -1 */
    F_MERGE_UNKNOWN = 1 << 10, /* merge "a zz" */
    F_MERGE_NOSEP = 1 << 11,  /* merge "ab" */
    F_NO_MERGES = 1 << 12,    /* gemma4 without merges */
    F_BAD_BYTE = 1 << 13,     /* BYTE token with text "<0xZZ>" */
    F_DUP_TEXT = 1 << 14,     /* two tokens with text "a" */
    F_STR_SCORES = 1 << 15,   /* scores is an array of strings */
    F_NO_ADD_BOS = 1 << 16,   /* add_bos_token = false */
};

static lm_status load_crafted(bool bpe, unsigned flags, int32_t *bos_tok) {
    const char *toks[10] = {"<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "a", "b", "ab", "<0x41>", "\xe2\x96\x81"};
    int32_t types[11] = {3, 3, 3, 2, 3, 1, 1, 1, 6, 1, 1};
    float scores[10] = {0, 0, 0, 0, 0, -1, -2, -0.5f, 0, -3};
    size_t n = 10;
    if (flags & F_BAD_TYPE) types[6] = 9;
    if (flags & F_BAD_BYTE) toks[8] = "<0xZZ>";
    if (flags & F_DUP_TEXT) toks[6] = "a";
    tu_gguf *g = tu_gguf_new();
    tu_gguf_str(g, "general.architecture", bpe ? "gemma4" : "gemma3");
    if (!(flags & F_NO_MODEL)) tu_gguf_str(g, "tokenizer.ggml.model", flags & F_BAD_MODEL ? "bert" : bpe ? "gemma4" : "llama");
    if (flags & F_INT_TOKENS) {
        int32_t ints[10] = {0};
        tu_gguf_arr_i32(g, "tokenizer.ggml.tokens", ints, n);
    } else if (!(flags & F_NO_TOKENS)) {
        tu_gguf_arr_str(g, "tokenizer.ggml.tokens", toks, n);
    }
    if (flags & F_STR_SCORES) tu_gguf_arr_str(g, "tokenizer.ggml.scores", toks, n);
    else tu_gguf_arr_f32(g, "tokenizer.ggml.scores", scores, flags & F_SHORT_SCORES ? n - 1 : n);
    if (flags & F_F32_TYPES) tu_gguf_arr_f32(g, "tokenizer.ggml.token_type", scores, n);
    else tu_gguf_arr_i32(g, "tokenizer.ggml.token_type", types, flags & F_SHORT_TYPES ? n + 1 : n);
    tu_gguf_u32(g, "tokenizer.ggml.bos_token_id", flags & F_BOS_RANGE ? (uint32_t)n : 2);
    if (flags & F_EOS_NEG) tu_gguf_i32(g, "tokenizer.ggml.eos_token_id", -1);
    else tu_gguf_u32(g, "tokenizer.ggml.eos_token_id", 1);
    tu_gguf_u32(g, "tokenizer.ggml.unknown_token_id", 3);
    tu_gguf_bool(g, "tokenizer.ggml.add_bos_token", !(flags & F_NO_ADD_BOS));
    tu_gguf_bool(g, "tokenizer.ggml.add_space_prefix", false);
    if (bpe && !(flags & F_NO_MERGES)) {
        const char *merges[2] = {"a b", flags & F_MERGE_UNKNOWN ? "a zz" : flags & F_MERGE_NOSEP ? "ab" : "\xe2\x96\x81 a"};
        tu_gguf_arr_str(g, "tokenizer.ggml.merges", merges, 2);
    }
    tu_buf b = {0};
    tu_gguf_serialize(g, &b);
    tu_gguf_free(g);
    lm_gguf *gg = NULL;
    lm_status st = lm_gguf_parse(b.p, b.n, &gg);
    cr_assert_eq(st, LM_STATUS_OK, "crafted file does not parse: %s", lm_last_error());
    lm_vocab *v = NULL;
    st = lm_vocab_load(gg, &v);
    if (st == LM_STATUS_OK && bos_tok) {
        /* "ab" must merge to one token in both tokenizers; "A" falls back to <0x41> */
        int32_t ids[8], n_ids;
        cr_assert_eq(lm_vocab_tokenize(v, "ab A", 4, true, false, ids, 8, &n_ids), LM_STATUS_OK);
        int o = n_ids > 0 && ids[0] == 2;
        cr_assert(n_ids == 3 + o && ids[o] == 7 && ids[o + 1] == 9 && ids[o + 2] == 8, "crafted vocab: %d ids", n_ids);
        int32_t m[4];
        cr_assert_eq(lm_vocab_tokenize(v, "a", 1, true, false, m, 4, &n_ids), LM_STATUS_OK);
        *bos_tok = n_ids == 2 ? m[0] : -1;
    }
    lm_vocab_free(v);
    lm_gguf_close(gg);
    tu_buf_free(&b);
    return st;
}

static void expect_fail(bool bpe, unsigned flags, lm_status want, const char *msg_part) {
    lm_status st = load_crafted(bpe, flags, NULL);
    cr_assert_eq(st, want, "flags 0x%x (%s): got status %d, want %d (%s)", flags, bpe ? "gemma4" : "llama", st, want,
                 lm_last_error());
    cr_assert(strstr(lm_last_error(), msg_part), "message '%s' does not mention '%s'", lm_last_error(), msg_part);
}

Test(tokenizer, crafted_valid_twins) {
    for (int bpe = 0; bpe < 2; bpe++) {
        int32_t bos = -2;
        cr_assert_eq(load_crafted(bpe, 0, &bos), LM_STATUS_OK, "%s", lm_last_error());
        cr_assert_eq(bos, 2);
        /* add_bos_token = false: honoured by SPM, overridden for gemma4 like llama.cpp */
        cr_assert_eq(load_crafted(bpe, F_NO_ADD_BOS, &bos), LM_STATUS_OK, "%s", lm_last_error());
        cr_assert_eq(bos, bpe ? 2 : -1);
    }
    /* merges are ignored by SPM */
    cr_assert_eq(load_crafted(false, F_MERGE_UNKNOWN, NULL), LM_STATUS_OK);
}

Test(tokenizer, crafted_bad_metadata) {
    for (int bpe = 0; bpe < 2; bpe++) {
        expect_fail(bpe, F_BAD_MODEL, LM_STATUS_UNSUPPORTED, "bert");
        expect_fail(bpe, F_NO_MODEL, LM_STATUS_FORMAT, "tokenizer.ggml.model");
        expect_fail(bpe, F_NO_TOKENS, LM_STATUS_FORMAT, "tokenizer.ggml.tokens");
        expect_fail(bpe, F_INT_TOKENS, LM_STATUS_FORMAT, "tokenizer.ggml.tokens");
        expect_fail(bpe, F_SHORT_SCORES, LM_STATUS_FORMAT, "scores");
        expect_fail(bpe, F_STR_SCORES, LM_STATUS_FORMAT, "scores");
        expect_fail(bpe, F_SHORT_TYPES, LM_STATUS_FORMAT, "token_type");
        expect_fail(bpe, F_F32_TYPES, LM_STATUS_FORMAT, "token_type");
        expect_fail(bpe, F_BAD_TYPE, LM_STATUS_FORMAT, "token_type[6]");
        expect_fail(bpe, F_BOS_RANGE, LM_STATUS_FORMAT, "bos_token_id");
        expect_fail(bpe, F_EOS_NEG, LM_STATUS_FORMAT, "eos_token_id");
        expect_fail(bpe, F_BAD_BYTE, LM_STATUS_FORMAT, "<0xZZ>");
        expect_fail(bpe, F_DUP_TEXT, LM_STATUS_FORMAT, "same text");
    }
    expect_fail(true, F_MERGE_UNKNOWN, LM_STATUS_FORMAT, "merges[1]");
    expect_fail(true, F_MERGE_NOSEP, LM_STATUS_FORMAT, "separator");
    expect_fail(true, F_NO_MERGES, LM_STATUS_FORMAT, "merges");
    cr_assert_eq(lm_vocab_load(NULL, NULL), LM_STATUS_INVALID_ARGUMENT);
    lm_vocab_free(NULL);
}

/* A small GPT2 vocabulary: 0 <|endoftext|> (CONTROL), 1 "a", 2 "b", 3 "ab", 4 "Ġ" (space),
 * 5 "Ġab", 6 "<think>" (USER_DEFINED), 7 "Ċ" (newline), 8 "\xc4" (a lone byte, as a fallback target);
 * merges "a b", "Ġ ab"; pre-tokenizer "gpt-2". */
enum {
    G_BAD_PRE = 1 << 0,       /* tokenizer.ggml.pre = "tekken" (a llama.cpp pre-type lumen lacks) */
    G_INT_PRE = 1 << 1,       /* tokenizer.ggml.pre is a number */
    G_NO_PRE = 1 << 2,        /* no tokenizer.ggml.pre: llama.cpp's "default" */
    G_LLAMA3 = 1 << 3,        /* tokenizer.ggml.pre = "llama-bpe" */
    G_MERGE_UNKNOWN = 1 << 4, /* merge "a zz" */
    G_NO_MERGES = 1 << 5,     /* no tokenizer.ggml.merges */
    G_NO_IDS = 1 << 6,        /* no bos / eos ids */
};

static lm_status load_gpt2(unsigned flags, lm_vocab **out, lm_gguf **gout, tu_buf *b) {
    const char *toks[9] = {"<|endoftext|>", "a", "b", "ab", "\xc4\xa0", "\xc4\xa0" "ab", "<think>", "\xc4\x8a", "\xc4"};
    int32_t types[9] = {3, 1, 1, 1, 1, 1, 4, 1, 1};
    tu_gguf *g = tu_gguf_new();
    tu_gguf_str(g, "general.architecture", "qwen2");
    tu_gguf_str(g, "tokenizer.ggml.model", "gpt2");
    if (flags & G_INT_PRE) tu_gguf_u32(g, "tokenizer.ggml.pre", 2);
    else if (!(flags & G_NO_PRE))
        tu_gguf_str(g, "tokenizer.ggml.pre", flags & G_BAD_PRE ? "tekken" : flags & G_LLAMA3 ? "llama-bpe" : "gpt-2");
    tu_gguf_arr_str(g, "tokenizer.ggml.tokens", toks, 9);
    tu_gguf_arr_i32(g, "tokenizer.ggml.token_type", types, 9);
    if (!(flags & G_NO_MERGES)) {
        const char *merges[2] = {"a b", flags & G_MERGE_UNKNOWN ? "a zz" : "\xc4\xa0 ab"};
        tu_gguf_arr_str(g, "tokenizer.ggml.merges", merges, 2);
    }
    if (!(flags & G_NO_IDS)) {
        tu_gguf_u32(g, "tokenizer.ggml.bos_token_id", 0);
        tu_gguf_u32(g, "tokenizer.ggml.eos_token_id", 0);
    }
    tu_gguf_serialize(g, b);
    tu_gguf_free(g);
    cr_assert_eq(lm_gguf_parse(b->p, b->n, gout), LM_STATUS_OK, "crafted file does not parse: %s", lm_last_error());
    *out = NULL;
    return lm_vocab_load(*gout, out);
}

static void expect_gpt2_fail(unsigned flags, lm_status want, const char *msg_part) {
    lm_vocab *v;
    lm_gguf *g;
    tu_buf b = {0};
    lm_status st = load_gpt2(flags, &v, &g, &b);
    cr_assert_eq(st, want, "gpt2 flags 0x%x: got status %d, want %d (%s)", flags, st, want, lm_last_error());
    cr_assert(strstr(lm_last_error(), msg_part), "message '%s' does not mention '%s'", lm_last_error(), msg_part);
    cr_assert_null(v);
    lm_gguf_close(g);
    tu_buf_free(&b);
}

Test(tokenizer, crafted_gpt2) {
    lm_vocab *v;
    lm_gguf *g;
    tu_buf b = {0};
    cr_assert_eq(load_gpt2(0, &v, &g, &b), LM_STATUS_OK, "%s", lm_last_error());
    cr_assert_eq(lm_vocab_get_type(v), LM_VOCAB_GPT2);
    cr_assert(!lm_vocab_add_bos(v) && lm_vocab_bos(v) == 0 && lm_vocab_is_eog(v, 0));
    /* words "ab", " ab", "\n", "<think>" (always special), "ab" + U+001D: that byte's character
     * (U+011D) is no token, so llama.cpp falls back to tokens whose text is one of its UTF-8 bytes
     * (C4 -> token 8, 9D -> none) */
    int32_t ids[16], n;
    const char *text = "ab ab\n<think>ab\x1d";
    cr_assert_eq(lm_vocab_tokenize(v, text, strlen(text), true, false, ids, 16, &n), LM_STATUS_OK);
    const int32_t want[] = {3, 5, 7, 6, 3, 8};
    cr_assert(n == 6 && memcmp(ids, want, sizeof want) == 0, "crafted gpt2 vocab: %d ids", n);
    char buf[64];
    size_t pl;
    cr_assert_eq(lm_vocab_piece(v, 5, false, buf, sizeof buf, &pl), LM_STATUS_OK);
    cr_assert(pl == 3 && memcmp(buf, " ab", 3) == 0);
    cr_assert_eq(lm_vocab_piece(v, 7, false, buf, sizeof buf, &pl), LM_STATUS_OK);
    cr_assert(pl == 1 && buf[0] == '\n');
    /* a character that stands for no byte renders the way llama.cpp's llama_decode_text does */
    const char unk[] = "[UNK_BYTE_0xefbfbd\xc4]";
    cr_assert_eq(lm_vocab_piece(v, 8, false, buf, 4, &pl), LM_STATUS_BUFFER_TOO_SMALL);
    cr_assert_eq(pl, sizeof unk - 1);
    cr_assert_eq(lm_vocab_piece(v, 8, false, buf, sizeof buf, &pl), LM_STATUS_OK);
    cr_assert(pl == sizeof unk - 1 && memcmp(buf, unk, pl) == 0);
    cr_assert_eq(lm_vocab_piece(v, 6, false, buf, sizeof buf, &pl), LM_STATUS_OK);
    cr_assert(pl == 7 && memcmp(buf, "<think>", 7) == 0, "USER_DEFINED renders as text");
    lm_vocab_free(v);
    lm_gguf_close(g);
    tu_buf_free(&b);

    /* llama-bpe: BOS by default; no pre: llama.cpp's default pre-tokenizer, bos = eos = 11 unless
     * the file says (here out of range, so none) */
    cr_assert_eq(load_gpt2(G_LLAMA3, &v, &g, &b), LM_STATUS_OK, "%s", lm_last_error());
    cr_assert(lm_vocab_add_bos(v));
    cr_assert_eq(lm_vocab_tokenize(v, "ab", 2, true, false, ids, 16, &n), LM_STATUS_OK);
    cr_assert(n == 2 && ids[0] == 0 && ids[1] == 3);
    lm_vocab_free(v);
    lm_gguf_close(g);
    tu_buf_free(&b);
    cr_assert_eq(load_gpt2(G_NO_PRE | G_NO_IDS, &v, &g, &b), LM_STATUS_OK, "%s", lm_last_error());
    cr_assert(!lm_vocab_add_bos(v) && lm_vocab_bos(v) == -1 && lm_vocab_eos(v) == -1);
    lm_vocab_free(v);
    lm_gguf_close(g);
    tu_buf_free(&b);

    expect_gpt2_fail(G_BAD_PRE, LM_STATUS_UNSUPPORTED, "pre-tokenizer 'tekken' (tokenizer.ggml.pre) is not supported");
    expect_gpt2_fail(G_INT_PRE, LM_STATUS_FORMAT, "tokenizer.ggml.pre must be a string");
    expect_gpt2_fail(G_MERGE_UNKNOWN, LM_STATUS_FORMAT, "tokenizer.ggml.merges[1] ('a zz') names a token not in the vocabulary");
    expect_gpt2_fail(G_NO_MERGES, LM_STATUS_FORMAT, "tokenizer.ggml.merges is missing (required by the gpt2 tokenizer)");
}
