/*
 * tokenizer.c — vocabulary loading and the tokenizers: SentencePiece and gemma4 BPE (Gemma), GPT-2
 * style byte-level BPE (Llama 3, Qwen2, SmolLM2, ...); see tokenizer.h.
 *
 * The reference is llama.cpp's llama-vocab.cpp; tests/test_tokenizer.c compares token ids with it
 * on a corpus. What is reproduced, and why it matters for ids:
 *   - token attributes, including llama.cpp's text-based fix-ups (end-of-generation texts such as
 *     "<end_of_turn>" or "</s>" become CONTROL, and therefore special, unless "<|tool_response>"
 *     marks a Gemma 4 vocabulary where "</s>" is an ordinary token);
 *   - the special-token partition: special texts are taken longest first (ties: lower id; an
 *     unstable std::sort in llama.cpp, which matters only for equal-length overlapping texts), each
 *     one claiming its leftmost non-overlapping occurrences in the text not yet claimed;
 *   - SPM: spaces -> U+2581, characters split by UTF-8 lead-byte length (no validation), bigram
 *     merges ordered by token score (ties: leftmost), byte fallback through <0xXX>;
 *   - BPE ("gemma4"): spaces -> U+2581, the text decoded and re-encoded the way llama.cpp's regex
 *     splitter does (an invalid byte becomes U+FFFD), split into runs of '\n' / non-'\n', a
 *     newline run that is a token taken whole, merges ordered by rank (ties: leftmost), byte
 *     fallback.
 *   - GPT2 (byte-level BPE): the text decoded to code points as above, split into words by the
 *     pre-tokenizer tokenizer.ggml.pre names, each word re-encoded to UTF-8 and every byte mapped
 *     to its bytes_to_unicode character, merges ordered by rank; a final symbol that is no token
 *     falls back to the tokens whose text is one of its bytes (llama.cpp does the same; in practice
 *     nothing matches). The pre-tokenizers are hand-written matchers that reproduce llama.cpp's
 *     (unicode.cpp): its custom gpt2 / llama3 / qwen2 splitters, and for the patterns it runs
 *     through std::regex on "collapsed" text (\p{N}, \p{N}+, [0-9]{3} and the default pre-type's
 *     punctuation class) the equivalent run splitting. Character classes (\p{L}, \p{N}, \p{P},
 *     \s) are llama.cpp's, from the Unicode 15.1 tables in unicode_tables.h. Llama 3 style
 *     pre-types take a word that is a token whole (llama.cpp's ignore_merges).
 * Deviations, only on inputs llama.cpp mishandles or leaves to hash order: inconsistent metadata
 * is rejected (LM_STATUS_FORMAT) instead of patched; code points above U+10FFFF (4-byte sequences
 * led by F5..F7, on which llama.cpp throws) become U+FFFD and consume one byte; a missing byte
 * token is skipped (llama.cpp's SPM path throws); empty token texts (llama.cpp renames them
 * "[EMPTY_<id>]") never match and render as ""; where several tokens carry an EOT/FIM text, the
 * lowest id is taken (llama.cpp: unordered_map order). Not implemented (LM_STATUS_UNSUPPORTED at
 * load): the pre-types that need other matchers, and those whose vocabularies get llama.cpp's
 * name-based lstrip/rstrip attributes (jina, modern-bert); tokenizer.ggml.add_eos_token is not
 * applied (lm_tokenize adds BOS only).
 * Tokenizing only reads the vocab (thread-safe); scratch memory is per call and sized by the input.
 */
#define _GNU_SOURCE
#include "tokenizer.h"
#include "unicode_tables.h"

#include <stdlib.h>
#include <string.h>

/* token attributes as llama.cpp derives them from token_type and token text */
enum { A_UNKNOWN = 1, A_UNUSED = 2, A_NORMAL = 4, A_CONTROL = 8, A_USER = 16, A_BYTE = 32 };

#define MAX_TOKENS (1 << 28)
#define MAX_TOKEN_BYTES 65536u
#define MAX_INPUT ((size_t)1 << 28) /* keeps the token count (<= 6 per byte) below 2^31 */

typedef struct tok {
    const char *text; /* view into the GGUF */
    uint32_t len;
    float score;
    uint8_t type; /* GGUF token_type */
    uint8_t attr; /* A_* after the fix-ups */
    uint8_t byte; /* value of a BYTE token */
} tok;

typedef struct tnode {
    int32_t child, next, spec; /* first child, next sibling, index into spec[] or -1 */
    uint8_t c;
} tnode;

struct lm_vocab {
    lm_vocab_type type;
    int32_t n;
    tok *t;
    uint32_t *map; /* text -> id + 1 (0 = empty slot), linear probing */
    uint64_t map_mask;
    uint64_t *mkey; /* BPE merges: left << 32 | right -> rank; UINT64_MAX = empty slot */
    int32_t *mrank;
    uint64_t m_mask;
    int32_t byte_tok[256]; /* fallback token per byte: <0xXX> (SPM, gemma4), the byte's own text (GPT2) */
    int32_t bos, eos, eot, eom, unk, pad;
    bool add_bos, add_space_prefix;
    uint8_t pre;        /* GPT2: pre-tokenizer (PRE_*) */
    bool ignore_merges; /* GPT2: a word that is a token is taken whole */
    int32_t eog[64];
    int32_t n_eog;
    int32_t *spec; /* CONTROL / USER_DEFINED / UNKNOWN tokens, longest text first */
    int32_t n_spec;
    tnode *trie; /* over the special texts, to find which occur in an input */
    int32_t n_trie;
    int32_t root[256];
};

/* ---------------------------------------------------------------------------------------- */
/* hashing                                                                                  */

static uint64_t hash_str(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 0x100000001b3ull;
    }
    return h ^ (h >> 31);
}

static uint64_t hash_u64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t pow2_at_least(uint64_t x) {
    uint64_t p = 16;
    while (p < x) p <<= 1;
    return p;
}

static int32_t find(const lm_vocab *v, const char *s, size_t n) {
    uint64_t i = hash_str(s, n) & v->map_mask;
    for (;;) {
        uint32_t e = v->map[i];
        if (!e) return -1;
        const tok *t = &v->t[e - 1];
        if (t->len == n && memcmp(t->text, s, n) == 0) return (int32_t)(e - 1);
        i = (i + 1) & v->map_mask;
    }
}

static int32_t rank_of(const lm_vocab *v, int32_t l, int32_t r) {
    if (!v->mkey) return -1;
    uint64_t key = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
    for (uint64_t i = hash_u64(key) & v->m_mask;; i = (i + 1) & v->m_mask) {
        if (v->mkey[i] == key) return v->mrank[i];
        if (v->mkey[i] == UINT64_MAX) return -1;
    }
}

/* ---------------------------------------------------------------------------------------- */
/* loading                                                                                  */

/* Texts llama.cpp recognises (llama_vocab::impl::load). Only the lowest matching id is used
 * where llama.cpp takes "the first" from an unordered map. */
static const char *const EOT_TEXTS[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>", "_<EOT>",
    "[EOT]", "<\xef\xbd\x9c" "end\xe2\x96\x81" "of\xe2\x96\x81" "sentence\xef\xbd\x9c>", "<end_of_utterance>",
};
static const char *const EOM_TEXTS[] = {"<|eom_id|>"};
static const char *const FIM_PRE_TEXTS[] = {
    "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "begin\xef\xbd\x9c>",
    "<PRE>", "\xe2\x96\x81<PRE>", "<|code_prefix|>", "<|prefix|>",
};
static const char *const FIM_SUF_TEXTS[] = {
    "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "hole\xef\xbd\x9c>",
    "<SUF>", "\xe2\x96\x81<SUF>", "<|code_suffix|>", "<|suffix|>",
};
static const char *const FIM_MID_TEXTS[] = {
    "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "end\xef\xbd\x9c>",
    "<MID>", "\xe2\x96\x81<MID>", "<|code_middle|>", "<|middle|>",
};
static const char *const FIM_PAD_TEXTS[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"};
static const char *const FIM_REP_TEXTS[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"};
static const char *const FIM_SEP_TEXTS[] = {"<|file_sep|>"};
static const char *const EOG_TEXTS[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>",
    "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>",
    "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<\xef\xbd\x9c" "end\xe2\x96\x81" "of\xe2\x96\x81" "sentence\xef\xbd\x9c>", "[e~[",
};
static const char *const FORCE_USER_TEXTS[] = {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static bool is_text(const tok *t, const char *s) { return t->len == strlen(s) && memcmp(t->text, s, t->len) == 0; }

static bool in_list(const tok *t, const char *const *list, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (is_text(t, list[i])) return true;
    return false;
}

/* Optional special-token id; out of range is a format error. */
static lm_status get_id(const lm_gguf *g, const char *key, int32_t n, int32_t *id) {
    uint32_t x;
    lm_status st = lm_gguf_get_u32(g, key, &x);
    if (st == LM_STATUS_NOT_FOUND) return LM_STATUS_OK;
    if (st) return lm_fail(LM_STATUS_FORMAT, "%s must be a non-negative integer", key);
    if (x >= (uint32_t)n) return lm_fail(LM_STATUS_FORMAT, "%s = %u is out of range (vocabulary has %d tokens)", key, x, n);
    *id = (int32_t)x;
    return LM_STATUS_OK;
}

static lm_status get_flag(const lm_gguf *g, const char *key, bool *b) {
    lm_status st = lm_gguf_get_bool(g, key, b);
    if (st == LM_STATUS_NOT_FOUND) return LM_STATUS_OK;
    return st ? lm_fail(LM_STATUS_FORMAT, "%s must be a boolean", key) : LM_STATUS_OK;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* "<0xXX>" -> XX, or -1 */
static int byte_text(const tok *t) {
    if (t->len != 6 || memcmp(t->text, "<0x", 3) != 0 || t->text[5] != '>') return -1;
    int hi = hexval(t->text[3]), lo = hexval(t->text[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

static void eog_add(lm_vocab *v, int32_t id) {
    if (id < 0) return;
    for (int32_t i = 0; i < v->n_eog; i++)
        if (v->eog[i] == id) return;
    if (v->n_eog < (int32_t)NELEM(v->eog)) v->eog[v->n_eog++] = id;
}

static void eog_remove(lm_vocab *v, int32_t id) {
    for (int32_t i = 0; i < v->n_eog; i++)
        if (v->eog[i] == id) {
            v->eog[i] = v->eog[--v->n_eog];
            return;
        }
}

static int32_t eog_find_text(const lm_vocab *v, const char *s) {
    for (int32_t i = 0; i < v->n_eog; i++)
        if (is_text(&v->t[v->eog[i]], s)) return v->eog[i];
    return -1;
}

/* llama.cpp's text-based special-token detection: EOT/EOM/FIM tokens, the EOG set, and the
 * attribute changes that come with them. fim[]: pre, suf, mid, pad, rep, sep. */
static void derive_specials(lm_vocab *v, int32_t fim[6]) {
    static const char *const *const fim_lists[6] = {FIM_PRE_TEXTS, FIM_SUF_TEXTS, FIM_MID_TEXTS,
                                                    FIM_PAD_TEXTS, FIM_REP_TEXTS, FIM_SEP_TEXTS};
    static const size_t fim_n[6] = {NELEM(FIM_PRE_TEXTS), NELEM(FIM_SUF_TEXTS), NELEM(FIM_MID_TEXTS),
                                    NELEM(FIM_PAD_TEXTS), NELEM(FIM_REP_TEXTS), NELEM(FIM_SEP_TEXTS)};
    for (int32_t i = 0; i < v->n; i++) {
        tok *t = &v->t[i];
        if (t->len == 0) continue;
        if (v->eot < 0 && in_list(t, EOT_TEXTS, NELEM(EOT_TEXTS))) {
            v->eot = i;
            t->attr |= A_CONTROL;
        }
        if (v->eom < 0 && in_list(t, EOM_TEXTS, NELEM(EOM_TEXTS))) {
            v->eom = i;
            t->attr |= A_CONTROL;
        }
        for (int k = 0; k < 6; k++)
            if (fim[k] < 0 && in_list(t, fim_lists[k], fim_n[k])) {
                fim[k] = i;
                t->attr |= A_CONTROL;
            }
    }
    v->n_eog = 0;
    eog_add(v, fim[3]);
    eog_add(v, fim[4]);
    eog_add(v, fim[5]);
    for (int32_t i = 0; i < v->n; i++) {
        tok *t = &v->t[i];
        if (t->len == 0) continue;
        if (in_list(t, EOG_TEXTS, NELEM(EOG_TEXTS))) {
            eog_add(v, i);
            t->attr |= A_CONTROL;
        }
    }
    for (int32_t i = 0; i < v->n; i++)
        if (v->t[i].len && in_list(&v->t[i], FORCE_USER_TEXTS, NELEM(FORCE_USER_TEXTS))) v->t[i].attr = A_USER;
    eog_add(v, v->eos);
    eog_add(v, v->eot);
    eog_add(v, v->eom);

    /* harmony-style vocabularies: "<|end|>" is not an end of generation */
    bool has_return = eog_find_text(v, "<|return|>") >= 0;
    bool has_call = eog_find_text(v, "<|call|>") >= 0 || eog_find_text(v, "<|calls|>") >= 0;
    bool has_flush = eog_find_text(v, "<|flush|>") >= 0;
    int32_t end_id = eog_find_text(v, "<|end|>");
    if (end_id >= 0 && has_call && (has_return || has_flush)) {
        eog_remove(v, end_id);
        v->t[end_id].attr = A_USER;
    }
    /* Gemma 4: "</s>" is an ordinary token */
    int32_t s_id = eog_find_text(v, "</s>");
    if (s_id >= 0 && (eog_find_text(v, "<|tool_response>") >= 0 || eog_find_text(v, "<|plamo:eos|>") >= 0)) {
        eog_remove(v, s_id);
        v->t[s_id].attr = A_NORMAL;
    }
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Special-token list (longest first, then lower id) and the trie over its texts. */
static lm_status build_specials(lm_vocab *v) {
    int32_t n = 0;
    uint64_t bytes = 0;
    for (int32_t i = 0; i < v->n; i++)
        if ((v->t[i].attr & (A_CONTROL | A_USER | A_UNKNOWN)) && v->t[i].len) {
            n++;
            bytes += v->t[i].len;
        }
    for (int b = 0; b < 256; b++) v->root[b] = -1;
    if (!n) return LM_STATUS_OK;
    uint64_t *keys = malloc((size_t)n * sizeof *keys);
    v->spec = malloc((size_t)n * sizeof *v->spec);
    v->trie = malloc((size_t)bytes * sizeof *v->trie);
    if (!keys || !v->spec || !v->trie) {
        free(keys);
        return lm_fail(LM_STATUS_OUT_OF_MEMORY, "out of memory building the special-token table");
    }
    n = 0;
    for (int32_t i = 0; i < v->n; i++)
        if ((v->t[i].attr & (A_CONTROL | A_USER | A_UNKNOWN)) && v->t[i].len)
            keys[n++] = (uint64_t)(MAX_TOKEN_BYTES - v->t[i].len) << 32 | (uint32_t)i;
    qsort(keys, (size_t)n, sizeof *keys, cmp_u64);
    for (int32_t k = 0; k < n; k++) v->spec[k] = (int32_t)(uint32_t)keys[k];
    free(keys);
    v->n_spec = n;

    for (int32_t k = 0; k < n; k++) {
        const tok *t = &v->t[v->spec[k]];
        const uint8_t *s = (const uint8_t *)t->text;
        int32_t node = v->root[s[0]];
        if (node < 0) {
            node = v->n_trie++;
            v->trie[node] = (tnode){-1, -1, -1, s[0]};
            v->root[s[0]] = node;
        }
        for (uint32_t i = 1; i < t->len; i++) {
            int32_t c = v->trie[node].child;
            while (c >= 0 && v->trie[c].c != s[i]) c = v->trie[c].next;
            if (c < 0) {
                c = v->n_trie++;
                v->trie[c] = (tnode){-1, v->trie[node].child, -1, s[i]};
                v->trie[node].child = c;
            }
            node = c;
        }
        v->trie[node].spec = k;
    }
    return LM_STATUS_OK;
}

static lm_status load_merges(lm_vocab *v, const lm_gguf *g, const char *model) {
    const lm_gguf_value *arr;
    lm_status st = lm_gguf_get_arr(g, "tokenizer.ggml.merges", LM_GGUF_STRING, &arr);
    if (st == LM_STATUS_NOT_FOUND)
        return lm_fail(LM_STATUS_FORMAT, "tokenizer.ggml.merges is missing (required by the %s tokenizer)", model);
    if (st) return lm_fail(LM_STATUS_FORMAT, "tokenizer.ggml.merges must be an array of strings");
    uint64_t n = arr->arr.n;
    if (n > (uint64_t)MAX_TOKENS) return lm_fail(LM_STATUS_FORMAT, "tokenizer.ggml.merges has %llu entries", (unsigned long long)n);
    if (!n) return LM_STATUS_OK;
    v->m_mask = pow2_at_least(2 * n) - 1;
    v->mkey = malloc((v->m_mask + 1) * sizeof *v->mkey);
    v->mrank = malloc((v->m_mask + 1) * sizeof *v->mrank);
    if (!v->mkey || !v->mrank) return lm_fail(LM_STATUS_OUT_OF_MEMORY, "out of memory for %llu merges", (unsigned long long)n);
    memset(v->mkey, 0xff, (v->m_mask + 1) * sizeof *v->mkey);
    for (uint64_t i = 0; i < n; i++) {
        lm_gguf_str s = arr->arr.strs[i];
        /* llama.cpp splits at the first space after the first byte */
        const char *sp = s.len > 1 ? memchr(s.ptr + 1, ' ', s.len - 1) : NULL;
        if (!sp)
            return lm_fail(LM_STATUS_FORMAT, "tokenizer.ggml.merges[%llu] ('%.*s') has no 'left right' separator",
                           (unsigned long long)i, (int)(s.len > 64 ? 64 : s.len), s.ptr);
        size_t ll = (size_t)(sp - s.ptr), rl = s.len - ll - 1;
        int32_t l = find(v, s.ptr, ll), r = find(v, sp + 1, rl);
        if (l < 0 || r < 0) {
            /* with several spaces the split is ambiguous: llama.cpp keeps an entry that can never
             * match, so skip it; with one space the merge names a token that does not exist */
            if (memchr(sp + 1, ' ', rl)) continue;
            return lm_fail(LM_STATUS_FORMAT, "tokenizer.ggml.merges[%llu] ('%.*s') names a token not in the vocabulary",
                           (unsigned long long)i, (int)(s.len > 64 ? 64 : s.len), s.ptr);
        }
        uint64_t key = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
        uint64_t j = hash_u64(key) & v->m_mask;
        while (v->mkey[j] != UINT64_MAX && v->mkey[j] != key) j = (j + 1) & v->m_mask;
        if (v->mkey[j] == UINT64_MAX) { /* the first occurrence keeps its rank */
            v->mkey[j] = key;
            v->mrank[j] = (int32_t)i;
        }
    }
    return LM_STATUS_OK;
}

/* GPT2 pre-tokenizers: llama.cpp's regex lists (llm_tokenizer_bpe) and what each runs as here */
enum {
    PRE_DEFAULT, /* [\p{P}\$\+<=>\^~\|]+, then gpt2, then \p{N}+, then [0-9][0-9][0-9] */
    PRE_GPT2,    /* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
    PRE_SMOLLM,  /* \p{N}, then gpt2 */
    PRE_QWEN2,   /* (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
    PRE_LLAMA3,  /* as qwen2 with \p{N}{1,3} */
};
enum { PF_IGNORE_MERGES = 1, PF_ADD_BOS = 2, PF_NO_BOS = 4 };

/* tokenizer.ggml.pre values and what llama.cpp's llama_vocab::impl::load sets for each (only the
 * settings that change token ids: clean_spaces affects llama_detokenize alone). */
static const struct pre_name {
    const char *name;
    uint8_t kind, flags;
} PRE_NAMES[] = {
    {"default", PRE_DEFAULT, 0},
    {"gpt-2", PRE_GPT2, 0}, {"phi-2", PRE_GPT2, 0}, {"gigachat", PRE_GPT2, 0}, {"a.x-4.0", PRE_GPT2, 0},
    {"mellum", PRE_GPT2, 0}, {"exaone4", PRE_GPT2, 0}, {"mpt", PRE_GPT2, 0}, {"olmo", PRE_GPT2, 0},
    {"jais", PRE_GPT2, 0}, {"trillion", PRE_GPT2, 0}, {"granite-docling", PRE_GPT2, 0},
    {"smollm", PRE_SMOLLM, 0}, {"starcoder", PRE_SMOLLM, 0}, {"refact", PRE_SMOLLM, 0},
    {"command-r", PRE_SMOLLM, 0}, {"codeshell", PRE_SMOLLM, 0}, {"exaone", PRE_SMOLLM, 0},
    {"minerva-7b", PRE_SMOLLM, 0}, {"mellum2", PRE_SMOLLM, 0},
    {"qwen2", PRE_QWEN2, 0}, {"deepseek-r1-qwen", PRE_QWEN2, 0}, {"kormo", PRE_QWEN2, 0},
    {"f2llmv2", PRE_QWEN2, 0}, {"megrez", PRE_QWEN2, 0}, {"stablelm2", PRE_QWEN2, 0},
    {"hunyuan", PRE_QWEN2, 0}, {"solar-open", PRE_QWEN2, 0},
    {"llama3", PRE_LLAMA3, PF_IGNORE_MERGES | PF_ADD_BOS}, {"llama-v3", PRE_LLAMA3, PF_IGNORE_MERGES | PF_ADD_BOS},
    {"llama-bpe", PRE_LLAMA3, PF_IGNORE_MERGES | PF_ADD_BOS}, {"falcon3", PRE_LLAMA3, PF_IGNORE_MERGES | PF_ADD_BOS},
    {"falcon-h1", PRE_LLAMA3, PF_IGNORE_MERGES | PF_ADD_BOS}, {"pixtral", PRE_LLAMA3, PF_IGNORE_MERGES | PF_ADD_BOS},
    {"midm-2.0", PRE_LLAMA3, PF_IGNORE_MERGES | PF_ADD_BOS}, {"lfm2", PRE_LLAMA3, PF_IGNORE_MERGES | PF_ADD_BOS},
    {"dbrx", PRE_LLAMA3, 0}, {"smaug-bpe", PRE_LLAMA3, 0},
    {"chatglm-bpe", PRE_LLAMA3, PF_NO_BOS}, {"glm4", PRE_LLAMA3, PF_NO_BOS | PF_IGNORE_MERGES},
    {"glm5", PRE_LLAMA3, PF_NO_BOS | PF_IGNORE_MERGES},
};

/* tokenizer.ggml.pre -> *pre; absent means "default" (llama.cpp warns that quality degrades). */
static lm_status get_pre(const lm_gguf *g, const struct pre_name **pre) {
    lm_gguf_str s;
    lm_status st = lm_gguf_get_str(g, "tokenizer.ggml.pre", &s);
    *pre = &PRE_NAMES[0];
    if (st == LM_STATUS_NOT_FOUND) return LM_STATUS_OK;
    if (st) return lm_fail(LM_STATUS_FORMAT, "tokenizer.ggml.pre must be a string");
    for (size_t i = 0; i < NELEM(PRE_NAMES); i++)
        if (lm_gguf_str_eq(s, PRE_NAMES[i].name)) {
            *pre = &PRE_NAMES[i];
            return LM_STATUS_OK;
        }
    return lm_fail(LM_STATUS_UNSUPPORTED,
                   "pre-tokenizer '%.*s' (tokenizer.ggml.pre) is not supported: lumen implements the gpt2, "
                   "smollm, qwen2, llama3 and default pre-tokenizer families (e.g. \"gpt-2\", \"smollm\", "
                   "\"qwen2\", \"deepseek-r1-qwen\", \"llama-bpe\")",
                   (int)(s.len > 64 ? 64 : s.len), s.ptr);
}

lm_status lm_vocab_load(const lm_gguf *g, lm_vocab **out) {
    if (!g || !out) return lm_fail(LM_STATUS_INVALID_ARGUMENT, "lm_vocab_load: NULL argument");
    *out = NULL;
    lm_status st;
    lm_gguf_str model;
    st = lm_gguf_get_str(g, "tokenizer.ggml.model", &model);
    if (st == LM_STATUS_NOT_FOUND) return lm_fail(LM_STATUS_FORMAT, "tokenizer.ggml.model is missing");
    if (st) return lm_fail(LM_STATUS_FORMAT, "tokenizer.ggml.model must be a string");
    lm_vocab_type type;
    const struct pre_name *pre = NULL;
    if (lm_gguf_str_eq(model, "llama")) type = LM_VOCAB_SPM;
    else if (lm_gguf_str_eq(model, "gemma4")) type = LM_VOCAB_BPE;
    else if (lm_gguf_str_eq(model, "gpt2")) type = LM_VOCAB_GPT2;
    else
        return lm_fail(LM_STATUS_UNSUPPORTED,
                       "tokenizer model '%.*s' is not supported (lumen supports \"llama\", \"gemma4\" and \"gpt2\")",
                       (int)(model.len > 64 ? 64 : model.len), model.ptr);
    if (type == LM_VOCAB_GPT2 && (st = get_pre(g, &pre))) return st;

    const lm_gguf_value *toks, *scores = NULL, *types = NULL;
    st = lm_gguf_get_arr(g, "tokenizer.ggml.tokens", LM_GGUF_STRING, &toks);
    if (st == LM_STATUS_NOT_FOUND) return lm_fail(LM_STATUS_FORMAT, "tokenizer.ggml.tokens is missing");
    if (st) return lm_fail(LM_STATUS_FORMAT, "tokenizer.ggml.tokens must be an array of strings");
    uint64_t n = toks->arr.n;
    if (n == 0 || n > MAX_TOKENS)
        return lm_fail(LM_STATUS_FORMAT, "tokenizer.ggml.tokens has %llu entries", (unsigned long long)n);
    if (lm_gguf_find(g, "tokenizer.ggml.scores")) {
        st = lm_gguf_get_arr(g, "tokenizer.ggml.scores", LM_GGUF_TYPE_COUNT, &scores);
        if (st || (scores->arr.type != LM_GGUF_F32 && scores->arr.type != LM_GGUF_I32))
            return lm_fail(LM_STATUS_FORMAT, "tokenizer.ggml.scores must be an array of f32 or i32");
        if (scores->arr.n != n)
            return lm_fail(LM_STATUS_FORMAT, "tokenizer.ggml.scores has %llu entries but there are %llu tokens",
                           (unsigned long long)scores->arr.n, (unsigned long long)n);
    }
    if (lm_gguf_find(g, "tokenizer.ggml.token_type")) {
        st = lm_gguf_get_arr(g, "tokenizer.ggml.token_type", LM_GGUF_I32, &types);
        if (st) return lm_fail(LM_STATUS_FORMAT, "tokenizer.ggml.token_type must be an array of i32");
        if (types->arr.n != n)
            return lm_fail(LM_STATUS_FORMAT, "tokenizer.ggml.token_type has %llu entries but there are %llu tokens",
                           (unsigned long long)types->arr.n, (unsigned long long)n);
    }

    lm_vocab *v = calloc(1, sizeof *v);
    if (!v) return lm_fail(LM_STATUS_OUT_OF_MEMORY, "out of memory");
    v->type = type;
    v->pre = pre ? pre->kind : PRE_DEFAULT;
    v->ignore_merges = pre && (pre->flags & PF_IGNORE_MERGES);
    v->n = (int32_t)n;
    v->t = calloc(n, sizeof *v->t);
    v->map_mask = pow2_at_least(2 * n) - 1;
    v->map = calloc(v->map_mask + 1, sizeof *v->map);
    if (!v->t || !v->map) {
        st = lm_fail(LM_STATUS_OUT_OF_MEMORY, "out of memory for %llu tokens", (unsigned long long)n);
        goto fail;
    }

    static const uint8_t type_attr[7] = {0, A_NORMAL, A_UNKNOWN, A_CONTROL, A_USER, A_UNUSED, A_BYTE};
    for (uint64_t i = 0; i < n; i++) {
        tok *t = &v->t[i];
        lm_gguf_str s = toks->arr.strs[i];
        if (s.len > MAX_TOKEN_BYTES) {
            st = lm_fail(LM_STATUS_FORMAT, "token %llu is %llu bytes long", (unsigned long long)i, (unsigned long long)s.len);
            goto fail;
        }
        t->text = s.ptr;
        t->len = (uint32_t)s.len;
        if (scores) {
            double d;
            lm_gguf_arr_float(scores, i, &d);
            t->score = (float)d;
        }
        int64_t ty = LM_TOKEN_NORMAL;
        if (types) lm_gguf_arr_int(types, i, &ty);
        if (ty < 0 || ty > LM_TOKEN_BYTE) {
            st = lm_fail(LM_STATUS_FORMAT, "tokenizer.ggml.token_type[%llu] = %lld is not a valid token type",
                         (unsigned long long)i, (long long)ty);
            goto fail;
        }
        t->type = (uint8_t)ty;
        t->attr = type_attr[ty];
        if (t->attr == A_BYTE) {
            int b = byte_text(t);
            if (b < 0) {
                st = lm_fail(LM_STATUS_FORMAT, "byte token %llu has text '%.*s', expected <0xXX>", (unsigned long long)i,
                             (int)(t->len > 32 ? 32 : t->len), t->text);
                goto fail;
            }
            t->byte = (uint8_t)b;
        }
        if (!t->len) continue; /* llama.cpp renames empty tokens; they can never be matched */
        uint64_t j = hash_str(t->text, t->len) & v->map_mask;
        for (; v->map[j]; j = (j + 1) & v->map_mask) {
            const tok *o = &v->t[v->map[j] - 1];
            if (o->len == t->len && memcmp(o->text, t->text, t->len) == 0) {
                st = lm_fail(LM_STATUS_FORMAT, "tokens %u and %llu have the same text '%.*s'", v->map[j] - 1,
                             (unsigned long long)i, (int)(t->len > 32 ? 32 : t->len), t->text);
                goto fail;
            }
        }
        v->map[j] = (uint32_t)i + 1;
    }
    for (int b = 0; b < 256; b++) {
        static const char hex[] = "0123456789ABCDEF";
        const char s[6] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>'};
        const char one = (char)b;
        v->byte_tok[b] = type == LM_VOCAB_GPT2 ? find(v, &one, 1) : find(v, s, 6);
    }

    /* special ids: llama.cpp's defaults (SPM: 1, 2, unk 0; gpt2: bos = eos = 11 unless the
     * pre-type clears bos; gemma4: none, out-of-range defaults disabled); the file overrides */
    v->bos = v->eos = v->eot = v->eom = v->unk = v->pad = -1;
    if (type == LM_VOCAB_SPM) {
        v->bos = n > 1 ? 1 : -1;
        v->eos = n > 2 ? 2 : -1;
        v->unk = 0;
    } else if (type == LM_VOCAB_GPT2) {
        v->bos = n > 11 && !(pre->flags & PF_NO_BOS) ? 11 : -1;
        v->eos = n > 11 ? 11 : -1;
    }
    int32_t fim[6] = {-1, -1, -1, -1, -1, -1};
    if ((st = get_id(g, "tokenizer.ggml.bos_token_id", v->n, &v->bos)) ||
        (st = get_id(g, "tokenizer.ggml.eos_token_id", v->n, &v->eos)) ||
        (st = get_id(g, "tokenizer.ggml.eot_token_id", v->n, &v->eot)) ||
        (st = get_id(g, "tokenizer.ggml.eom_token_id", v->n, &v->eom)) ||
        (st = get_id(g, "tokenizer.ggml.unknown_token_id", v->n, &v->unk)) ||
        (st = get_id(g, "tokenizer.ggml.padding_token_id", v->n, &v->pad)) ||
        (st = get_id(g, "tokenizer.ggml.fim_pre_token_id", v->n, &fim[0])) ||
        (st = get_id(g, "tokenizer.ggml.fim_suf_token_id", v->n, &fim[1])) ||
        (st = get_id(g, "tokenizer.ggml.fim_mid_token_id", v->n, &fim[2])) ||
        (st = get_id(g, "tokenizer.ggml.fim_pad_token_id", v->n, &fim[3])) ||
        (st = get_id(g, "tokenizer.ggml.fim_rep_token_id", v->n, &fim[4])) ||
        (st = get_id(g, "tokenizer.ggml.fim_sep_token_id", v->n, &fim[5])) ||
        (st = get_id(g, "tokenizer.ggml.prefix_token_id", v->n, &fim[0])) ||
        (st = get_id(g, "tokenizer.ggml.suffix_token_id", v->n, &fim[1])) ||
        (st = get_id(g, "tokenizer.ggml.middle_token_id", v->n, &fim[2])))
        goto fail;

    v->add_bos = type == LM_VOCAB_SPM || (pre && (pre->flags & PF_ADD_BOS));
    v->add_space_prefix = type == LM_VOCAB_SPM;
    if ((st = get_flag(g, "tokenizer.ggml.add_bos_token", &v->add_bos)) ||
        (st = get_flag(g, "tokenizer.ggml.add_space_prefix", &v->add_space_prefix)))
        goto fail;
    if (type == LM_VOCAB_BPE) v->add_bos = true; /* llama.cpp forces BOS for gemma4 (PR #21500) */
    if (type != LM_VOCAB_SPM) {
        v->add_space_prefix = false; /* not used by the BPE paths */
        if ((st = load_merges(v, g, type == LM_VOCAB_BPE ? "gemma4" : "gpt2"))) goto fail;
    }

    derive_specials(v, fim);
    if ((st = build_specials(v))) goto fail;
    *out = v;
    return LM_STATUS_OK;
fail:
    lm_vocab_free(v);
    return st;
}

void lm_vocab_free(lm_vocab *v) {
    if (!v) return;
    free(v->t);
    free(v->map);
    free(v->mkey);
    free(v->mrank);
    free(v->spec);
    free(v->trie);
    free(v);
}

/* ---------------------------------------------------------------------------------------- */
/* accessors                                                                                */

lm_vocab_type lm_vocab_get_type(const lm_vocab *v) { return v ? v->type : LM_VOCAB_SPM; }
int32_t lm_vocab_n_tokens(const lm_vocab *v) { return v ? v->n : 0; }
int32_t lm_vocab_bos(const lm_vocab *v) { return v ? v->bos : -1; }
int32_t lm_vocab_eos(const lm_vocab *v) { return v ? v->eos : -1; }
bool lm_vocab_add_bos(const lm_vocab *v) { return v && v->add_bos; }

bool lm_vocab_is_eog(const lm_vocab *v, int32_t id) {
    if (!v || id < 0) return false;
    for (int32_t i = 0; i < v->n_eog; i++)
        if (v->eog[i] == id) return true;
    return false;
}

int32_t lm_vocab_token_type(const lm_vocab *v, int32_t id) {
    return v && id >= 0 && id < v->n ? v->t[id].type : -1;
}

const char *lm_vocab_text(const lm_vocab *v, int32_t id, size_t *len) {
    if (!v || id < 0 || id >= v->n) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = v->t[id].len;
    return v->t[id].text;
}

int32_t lm_vocab_find(const lm_vocab *v, const char *text, size_t len) {
    if (!v || (!text && len) || len > MAX_TOKEN_BYTES) return -1;
    return find(v, text ? text : "", len);
}

/* ---------------------------------------------------------------------------------------- */
/* encoding                                                                                 */

typedef struct frag {
    size_t off, len;
    int32_t id; /* -1: raw text */
} frag;

typedef struct fvec {
    frag *p;
    size_t n, cap;
} fvec;

typedef struct sym {
    size_t off;
    uint32_t n;
    int32_t prev, next, id;
} sym;

typedef struct bigram {
    double key; /* higher first: SPM score, BPE -rank */
    int32_t left, right;
    uint32_t size;
} bigram;

typedef struct work {
    char *buf;
    size_t buf_cap;
    uint32_t *cp; /* GPT2: code points of the fragment, */
    uint8_t *cf;  /* their classes, */
    uint32_t *wa, *wb; /* and word lengths (in code points) before / after a splitting pass */
    size_t cp_cap, cf_cap, wa_cap, wb_cap;
    sym *s;
    size_t s_cap;
    bigram *h;
    size_t h_n, h_cap;
    int32_t *out;
    int32_t cap;
    int64_t n_out;
} work;

static void emit(work *w, int32_t id) {
    if (w->n_out < w->cap) w->out[w->n_out] = id;
    w->n_out++;
}

static bool grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return false;
    *p = q;
    *cap = c;
    return true;
}

static bool fpush(fvec *f, size_t off, size_t len, int32_t id) {
    if (!grow((void **)&f->p, &f->cap, f->n + 1, sizeof *f->p)) return false;
    f->p[f->n++] = (frag){off, len, id};
    return true;
}

/* Split the text on special tokens (llama.cpp tokenizer_st_partition). */
static lm_status partition(const lm_vocab *v, const char *text, size_t len, bool parse_special, fvec *a) {
    a->n = 0;
    if (!len) return LM_STATUS_OK;
    if (!fpush(a, 0, len, -1)) return lm_fail(LM_STATUS_OUT_OF_MEMORY, "out of memory");
    if (!v->n_spec) return LM_STATUS_OK;

    /* which special texts occur at all */
    uint8_t *seen = calloc(((size_t)v->n_spec + 7) / 8, 1);
    if (!seen) return lm_fail(LM_STATUS_OUT_OF_MEMORY, "out of memory");
    bool any = false;
    for (size_t i = 0; i < len; i++) {
        int32_t node = v->root[(uint8_t)text[i]];
        for (size_t j = i; node >= 0;) {
            int32_t k = v->trie[node].spec;
            if (k >= 0 && (parse_special || !(v->t[v->spec[k]].attr & (A_CONTROL | A_UNKNOWN)))) {
                seen[k >> 3] |= (uint8_t)(1u << (k & 7));
                any = true;
            }
            if (++j >= len) break;
            uint8_t c = (uint8_t)text[j];
            int32_t ch = v->trie[node].child;
            while (ch >= 0 && v->trie[ch].c != c) ch = v->trie[ch].next;
            node = ch;
        }
    }
    lm_status st = LM_STATUS_OK;
    fvec b = {0};
    for (int32_t k = 0; any && k < v->n_spec; k++) {
        if (!(seen[k >> 3] & (1u << (k & 7)))) continue;
        const int32_t id = v->spec[k];
        const tok *t = &v->t[id];
        b.n = 0;
        for (size_t f = 0; f < a->n; f++) {
            frag fr = a->p[f];
            if (fr.id >= 0) {
                if (!fpush(&b, fr.off, fr.len, fr.id)) goto oom;
                continue;
            }
            size_t pos = fr.off, end = fr.off + fr.len;
            while (end - pos >= t->len) {
                const char *m = memmem(text + pos, end - pos, t->text, t->len);
                if (!m) break;
                size_t at = (size_t)(m - text);
                if (at > pos && !fpush(&b, pos, at - pos, -1)) goto oom;
                if (!fpush(&b, at, t->len, id)) goto oom;
                pos = at + t->len;
            }
            if (pos < end && !fpush(&b, pos, end - pos, -1)) goto oom;
        }
        fvec tmp = *a;
        *a = b;
        b = tmp;
    }
    goto done;
oom:
    st = lm_fail(LM_STATUS_OUT_OF_MEMORY, "out of memory");
done:
    free(b.p);
    free(seen);
    return st;
}

/* UTF-8 sequence length from the lead byte alone (llama.cpp unicode_len_utf8). */
static size_t lead_len(uint8_t c) {
    static const uint8_t lut[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lut[c >> 4];
}

static bool hbefore(const bigram *a, const bigram *b) {
    return a->key > b->key || (a->key == b->key && a->left < b->left);
}

static bool hpush(work *w, bigram b) {
    if (!grow((void **)&w->h, &w->h_cap, w->h_n + 1, sizeof *w->h)) return false;
    size_t i = w->h_n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!hbefore(&b, &w->h[p])) break;
        w->h[i] = w->h[p];
        i = p;
    }
    w->h[i] = b;
    return true;
}

static bigram hpop(work *w) {
    bigram top = w->h[0], last = w->h[--w->h_n];
    size_t i = 0, n = w->h_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && hbefore(&w->h[c + 1], &w->h[c])) c++;
        if (!hbefore(&w->h[c], &last)) break;
        w->h[i] = w->h[c];
        i = c;
    }
    if (n) w->h[i] = last;
    return top;
}

/* Emit a final symbol: its token, or one byte token per byte. */
static void emit_sym(const lm_vocab *v, work *w, const sym *s) {
    if (s->id >= 0) {
        emit(w, s->id);
        return;
    }
    const uint8_t *p = (const uint8_t *)w->buf + s->off;
    for (uint32_t i = 0; i < s->n; i++)
        if (v->byte_tok[p[i]] >= 0) emit(w, v->byte_tok[p[i]]);
}

/* Split w->buf[off, off + m) into characters (lead-byte lengths) as a linked list. */
static bool split_chars(const lm_vocab *v, work *w, size_t off, size_t m, size_t *count) {
    if (!grow((void **)&w->s, &w->s_cap, m, sizeof *w->s)) return false;
    size_t n = 0;
    for (size_t o = off; o < off + m; n++) {
        size_t l = lead_len((uint8_t)w->buf[o]);
        if (l > off + m - o) l = off + m - o;
        w->s[n] = (sym){o, (uint32_t)l, (int32_t)n - 1, (int32_t)n + 1, find(v, w->buf + o, l)};
        o += l;
    }
    if (n) w->s[n - 1].next = -1;
    *count = n;
    return true;
}

static bool spm_pair(const lm_vocab *v, work *w, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return true;
    uint32_t size = w->s[l].n + w->s[r].n;
    int32_t id = find(v, w->buf + w->s[l].off, size);
    if (id < 0) return true;
    return hpush(w, (bigram){v->t[id].score, l, r, size});
}

static bool bpe_pair(const lm_vocab *v, work *w, int32_t l, int32_t r) {
    if (l < 0 || r < 0 || w->s[l].id < 0 || w->s[r].id < 0) return true;
    int32_t rank = rank_of(v, w->s[l].id, w->s[r].id);
    if (rank < 0) return true;
    return hpush(w, (bigram){-(double)rank, l, r, w->s[l].n + w->s[r].n});
}

/* Merge symbols until the heap is empty; pair() pushes candidate bigrams. */
static bool merge_all(const lm_vocab *v, work *w, bool (*pair)(const lm_vocab *, work *, int32_t, int32_t)) {
    while (w->h_n) {
        bigram b = hpop(w);
        sym *L = &w->s[b.left], *R = &w->s[b.right];
        if (!L->n || !R->n || L->n + R->n != b.size) continue; /* stale */
        L->n += R->n;
        R->n = 0;
        L->next = R->next;
        if (R->next >= 0) w->s[R->next].prev = b.left;
        L->id = find(v, w->buf + L->off, L->n);
        if (!pair(v, w, L->prev, b.left) || !pair(v, w, b.left, L->next)) return false;
    }
    return true;
}

/* SentencePiece-style encode of one raw fragment. */
static lm_status spm_run(const lm_vocab *v, work *w, const char *text, size_t len, bool prefix) {
    if (!grow((void **)&w->buf, &w->buf_cap, 3 * len + 3, 1)) return lm_fail(LM_STATUS_OUT_OF_MEMORY, "out of memory");
    size_t m = 0;
    if (prefix) {
        memcpy(w->buf, "\xe2\x96\x81", 3);
        m = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(w->buf + m, "\xe2\x96\x81", 3);
            m += 3;
        } else {
            w->buf[m++] = text[i];
        }
    }
    size_t count;
    if (!split_chars(v, w, 0, m, &count)) return lm_fail(LM_STATUS_OUT_OF_MEMORY, "out of memory");
    w->h_n = 0;
    for (size_t i = 1; i < count; i++)
        if (!spm_pair(v, w, (int32_t)i - 1, (int32_t)i)) return lm_fail(LM_STATUS_OUT_OF_MEMORY, "out of memory");
    if (!merge_all(v, w, spm_pair)) return lm_fail(LM_STATUS_OUT_OF_MEMORY, "out of memory");
    for (int32_t i = count ? 0 : -1; i >= 0; i = w->s[i].next) emit_sym(v, w, &w->s[i]);
    return LM_STATUS_OK;
}

/* Encode one code point (<= U+10FFFF) as UTF-8; surrogates are encoded like any other. */
static size_t put_utf8(char *o, uint32_t c) {
    if (c < 0x80) {
        o[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        o[0] = (char)(0xC0 | (c >> 6));
        o[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        o[0] = (char)(0xE0 | (c >> 12));
        o[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        o[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (c >> 18));
    o[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((c >> 6) & 0x3F));
    o[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

/* Decode the code point at s[*i] as llama.cpp's unicode_cpts_from_utf8 does: continuation bytes
 * are checked, overlong forms and surrogates are accepted, an invalid sequence becomes U+FFFD and
 * consumes one byte. Code points above U+10FFFF (llama.cpp throws on them later) are invalid too.
 * Advances *i; never reads past s[n - 1]. */
static uint32_t next_cpt(const uint8_t *s, size_t n, size_t *i) {
    uint8_t b = s[*i];
    if (b < 0x80) {
        *i += 1;
        return b;
    }
    if (b < 0xC0 || b >= 0xF8) {
        *i += 1;
        return 0xFFFD;
    }
    size_t need = b < 0xE0 ? 1 : b < 0xF0 ? 2 : 3;
    uint32_t c = b & (0x3Fu >> need);
    if (*i + need >= n) {
        *i += 1;
        return 0xFFFD;
    }
    for (size_t j = 1; j <= need; j++) {
        uint8_t x = s[*i + j];
        if ((x & 0xC0) != 0x80) {
            *i += 1;
            return 0xFFFD;
        }
        c = c << 6 | (x & 0x3Fu);
    }
    if (c > 0x10FFFF) {
        *i += 1;
        return 0xFFFD;
    }
    *i += need + 1;
    return c;
}

/* Escape spaces to U+2581 and decode/re-encode UTF-8 as llama.cpp's regex splitter does
 * (unicode_cpts_from_utf8 + unicode_cpt_to_utf8, see next_cpt). Returns the output length (at
 * most 3 * n). */
static size_t normalize(const uint8_t *s, size_t n, char *out) {
    size_t m = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] == ' ') {
            m += put_utf8(out + m, 0x2581);
            i++;
        } else {
            m += put_utf8(out + m, next_cpt(s, n, &i));
        }
    }
    return m;
}

/* BPE on one pre-split word w->buf[off, off + m). whole: a word that is a token is taken whole
 * (gemma4 newline runs, llama.cpp PR #21343; GPT2 ignore_merges). */
static lm_status bpe_word(const lm_vocab *v, work *w, size_t off, size_t m, bool whole) {
    if (whole) {
        int32_t id = find(v, w->buf + off, m);
        if (id >= 0) {
            emit(w, id);
            return LM_STATUS_OK;
        }
    }
    size_t count;
    if (!split_chars(v, w, off, m, &count)) return lm_fail(LM_STATUS_OUT_OF_MEMORY, "out of memory");
    w->h_n = 0;
    for (size_t i = 1; i < count; i++)
        if (!bpe_pair(v, w, (int32_t)i - 1, (int32_t)i)) return lm_fail(LM_STATUS_OUT_OF_MEMORY, "out of memory");
    if (!merge_all(v, w, bpe_pair)) return lm_fail(LM_STATUS_OUT_OF_MEMORY, "out of memory");
    for (int32_t i = count ? 0 : -1; i >= 0; i = w->s[i].next) emit_sym(v, w, &w->s[i]);
    return LM_STATUS_OK;
}

/* gemma4 BPE encode of one raw fragment: normalize, split into runs of '\n' and of other
 * characters (pattern [^\n]+|[\n]+), BPE each run. */
static lm_status bpe_run(const lm_vocab *v, work *w, const char *text, size_t len) {
    if (!grow((void **)&w->buf, &w->buf_cap, 3 * len + 3, 1)) return lm_fail(LM_STATUS_OUT_OF_MEMORY, "out of memory");
    size_t m = normalize((const uint8_t *)text, len, w->buf);
    for (size_t a = 0; a < m;) {
        bool nl = w->buf[a] == '\n';
        size_t b = a;
        while (b < m && (w->buf[b] == '\n') == nl) b++;
        LM_TRY(bpe_word(v, w, a, b - a, nl));
        a = b;
    }
    return LM_STATUS_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* GPT-2 byte-level BPE                                                                     */

/* Class of a code point (LM_UCD_*): llama.cpp's unicode_cpt_flags_from_cpt. */
static uint8_t ucd_class(uint32_t c) {
    if (c < 128) return lm_ucd_ascii[c];
    if (c > 0x10FFFF) return LM_UCD_UNDEF;
    size_t lo = 0, hi = LM_UCD_N_RANGES; /* the last entry starting at or below c (entry 0: U+0080) */
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (lm_ucd_ranges[mid] >> 4 <= c) lo = mid;
        else hi = mid;
    }
    return (uint8_t)(lm_ucd_ranges[lo] & 15);
}

/* Classes as the splitters see them; positions outside the current segment read as U_OUT
 * (llama.cpp: flags 0, "no code point"), which is neither letter, number, space nor "other". */
enum { U_OUT = 16 };
#define U_IS(f, cat) (((f) & (U_OUT | LM_UCD_CATEGORY)) == (cat))
#define U_L(f) U_IS(f, LM_UCD_LETTER)
#define U_N(f) U_IS(f, LM_UCD_NUMBER)
#define U_S(f) (((f) & LM_UCD_SPACE) != 0)
#define U_OTHER(f) (!U_L(f) && !U_N(f) && !U_S(f) && (f) != U_OUT) /* [^\s\p{L}\p{N}] */

typedef struct seg {
    const uint32_t *cp;
    const uint8_t *cf;
    size_t end; /* one past the segment */
} seg;

static inline uint8_t seg_f(const seg *g, size_t p) { return p < g->end ? g->cf[p] : U_OUT; }

static inline uint32_t lower_ascii(uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* Length of a contraction 's 't 're 've 'm 'll 'd at p (case-insensitive when fold), or 0. */
static size_t contraction(const seg *g, size_t p, bool fold) {
    if (g->cp[p] != '\'' || p + 1 >= g->end) return 0;
    uint32_t a = fold ? lower_ascii(g->cp[p + 1]) : g->cp[p + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (p + 2 >= g->end) return 0;
    uint32_t b = fold ? lower_ascii(g->cp[p + 2]) : g->cp[p + 2];
    return (a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l') ? 3 : 0;
}

/* Whitespace at p: the run's length, and (rn) one past its last '\r' / '\n' or 0. */
static size_t space_run(const seg *g, size_t p, size_t *rn) {
    size_t k = 0;
    *rn = 0;
    while (U_S(seg_f(g, p + k))) {
        if (g->cp[p + k] == '\r' || g->cp[p + k] == '\n') *rn = p + k + 1;
        k++;
    }
    return k;
}

/* End of the word at p under the GPT-2 pattern (llama.cpp unicode_regex_split_custom_gpt2):
 * 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static size_t word_gpt2(const seg *g, size_t p) {
    size_t k = contraction(g, p, false);
    if (k) return p + k;
    const bool sp = g->cp[p] == ' ';
    const uint8_t f2 = sp ? seg_f(g, p + 1) : g->cf[p];
    if (U_L(f2)) {
        for (p += sp; U_L(seg_f(g, p));) p++;
        return p;
    }
    if (U_N(f2)) {
        for (p += sp; U_N(seg_f(g, p));) p++;
        return p;
    }
    if (U_OTHER(f2)) {
        for (p += sp; U_OTHER(seg_f(g, p));) p++;
        return p;
    }
    size_t rn, n = space_run(g, p, &rn);
    if (n > 1 && p + n < g->end) return p + n - 1; /* \s+(?!\S): the last space goes with what follows */
    return p + (n ? n : 1);                        /* \s+ (or, never reached, one code point) */
}

/* End of the word at p under the Llama 3 (ndig 3) / Qwen2 (ndig 1) pattern (llama.cpp
 * unicode_regex_split_custom_llama3 / _qwen2):
 * (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,ndig}| ?[^\s\p{L}\p{N}]+[\r\n]*|
 * \s*[\r\n]+|\s+(?!\S)|\s+ */
static size_t word_llama3(const seg *g, size_t p, size_t ndig) {
    size_t k = contraction(g, p, true);
    if (k) return p + k;
    const uint32_t c = g->cp[p];
    const uint8_t f = g->cf[p];
    if (c != '\r' && c != '\n' && !U_N(f) && (U_L(f) || U_L(seg_f(g, p + 1)))) {
        for (p++; U_L(seg_f(g, p));) p++;
        return p;
    }
    if (U_N(f)) {
        for (k = 0; k < ndig && U_N(seg_f(g, p)); k++) p++;
        return p;
    }
    const bool sp = c == ' ';
    const uint8_t f2 = sp ? seg_f(g, p + 1) : f;
    /* llama.cpp tests for "a code point" on f, not f2: a space at the end of the segment
     * passes and becomes a word of its own, as \s+ would make it */
    if (!U_L(f2) && !U_N(f2) && !U_S(f2)) {
        for (p += sp; U_OTHER(seg_f(g, p));) p++;
        while (p < g->end && (g->cp[p] == '\r' || g->cp[p] == '\n')) p++;
        return p;
    }
    size_t rn, n = space_run(g, p, &rn);
    if (rn) return rn; /* \s*[\r\n]+ */
    if (n > 1 && p + n < g->end) return p + n - 1;
    return p + (n ? n : 1);
}

/* The patterns llama.cpp runs through std::regex on its "collapsed" text (one byte per code
 * point: ASCII as is, other code points by class) are runs of one character class; a match and
 * the text between matches each become a word. */
static bool is_digit(const seg *g, size_t p) { return g->cp[p] >= '0' && g->cp[p] <= '9'; }

static bool is_number(const seg *g, size_t p) { /* \p{N}: ASCII digits and class N */
    return g->cp[p] < 128 ? is_digit(g, p) : U_N(g->cf[p]);
}

static bool is_punct(const seg *g, size_t p) { /* [\p{P}\$\+<=>\^~\|]: all ASCII punctuation but '`' */
    uint32_t c = g->cp[p];
    if (c < 128) return c > ' ' && c < 127 && c != '`' && !(c >= '0' && c <= '9') && lm_ucd_ascii[c] != LM_UCD_LETTER;
    return (g->cf[p] & (LM_UCD_SPACE | LM_UCD_CATEGORY)) == LM_UCD_PUNCT; /* spaces collapse to '\v' first */
}

enum { SPLIT_NUMBER1, SPLIT_NUMBERS, SPLIT_PUNCTS, SPLIT_DIGIT3, SPLIT_GPT2, SPLIT_QWEN2, SPLIT_LLAMA3 };

/* One splitting pass over the segment [p, g->end): word lengths to out, returns their count. */
static size_t split_pass(const seg *g, size_t p, int how, uint32_t *out) {
    size_t n = 0;
    if (how == SPLIT_DIGIT3) { /* [0-9][0-9][0-9]: leftmost non-overlapping triples */
        size_t gap = p;
        while (p + 3 <= g->end) {
            if (is_digit(g, p) && is_digit(g, p + 1) && is_digit(g, p + 2)) {
                if (p > gap) out[n++] = (uint32_t)(p - gap);
                out[n++] = 3;
                p += 3;
                gap = p;
            } else {
                p++;
            }
        }
        if (g->end > gap) out[n++] = (uint32_t)(g->end - gap);
        return n;
    }
    while (p < g->end) {
        size_t q;
        switch (how) {
        case SPLIT_NUMBER1: /* \p{N}: each number its own word */
            q = p + 1;
            if (!is_number(g, p))
                while (q < g->end && !is_number(g, q)) q++;
            break;
        case SPLIT_NUMBERS: /* \p{N}+ */
            for (q = p + 1; q < g->end && is_number(g, q) == is_number(g, p);) q++;
            break;
        case SPLIT_PUNCTS: /* [\p{P}\$\+<=>\^~\|]+ */
            for (q = p + 1; q < g->end && is_punct(g, q) == is_punct(g, p);) q++;
            break;
        case SPLIT_GPT2: q = word_gpt2(g, p); break;
        case SPLIT_QWEN2: q = word_llama3(g, p, 1); break;
        default: q = word_llama3(g, p, 3); break;
        }
        out[n++] = (uint32_t)(q - p);
        p = q;
    }
    return n;
}

/* The bytes_to_unicode character of a byte: printable Latin-1 stands for itself, the other 68
 * bytes (0x00-0x20, 0x7F-0xA0, 0xAD) for U+0100.. in byte order. */
static uint32_t byte_cpt(uint8_t b) {
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE) return b;
    if (b <= 0x20) return 0x100 + b;
    if (b <= 0xA0) return 0x100 + 33 + (b - 0x7F);
    return 0x100 + 67; /* 0xAD */
}

/* The inverse: the byte a code point stands for, or -1. */
static int cpt_byte(uint32_t c) {
    if (c < 0x100) return byte_cpt((uint8_t)c) == c ? (int)c : -1;
    if (c < 0x100 + 33) return (int)(c - 0x100);
    if (c < 0x100 + 67) return (int)(c - 0x100 - 33 + 0x7F);
    return c == 0x100 + 67 ? 0xAD : -1;
}

static const uint8_t PRE_PASSES[][5] = {
    [PRE_DEFAULT] = {4, SPLIT_PUNCTS, SPLIT_GPT2, SPLIT_NUMBERS, SPLIT_DIGIT3},
    [PRE_GPT2] = {1, SPLIT_GPT2},
    [PRE_SMOLLM] = {2, SPLIT_NUMBER1, SPLIT_GPT2},
    [PRE_QWEN2] = {1, SPLIT_QWEN2},
    [PRE_LLAMA3] = {1, SPLIT_LLAMA3},
};

/* GPT2 encode of one raw fragment: code points, words by the pre-tokenizer's passes (each pass
 * splits the previous pass's words further), then per word the byte-mapped text and BPE. */
static lm_status gpt2_run(const lm_vocab *v, work *w, const char *text, size_t len) {
    const uint8_t *s = (const uint8_t *)text;
    if (!grow((void **)&w->cp, &w->cp_cap, len, sizeof *w->cp) || !grow((void **)&w->cf, &w->cf_cap, len, 1) ||
        !grow((void **)&w->wa, &w->wa_cap, len, sizeof *w->wa) || !grow((void **)&w->wb, &w->wb_cap, len, sizeof *w->wb))
        return lm_fail(LM_STATUS_OUT_OF_MEMORY, "out of memory");
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        uint32_t c = next_cpt(s, len, &i);
        w->cp[n] = c;
        w->cf[n++] = ucd_class(c);
    }
    if (!n) return LM_STATUS_OK;
    size_t nw = 1;
    w->wa[0] = (uint32_t)n;
    const uint8_t *passes = PRE_PASSES[v->pre];
    for (int k = 1; k <= passes[0]; k++) {
        size_t nb = 0, at = 0;
        for (size_t i = 0; i < nw; i++) {
            seg g = {w->cp, w->cf, at + w->wa[i]};
            nb += split_pass(&g, at, passes[k], w->wb + nb);
            at = g.end;
        }
        uint32_t *t = w->wa;
        w->wa = w->wb;
        w->wb = t;
        nw = nb;
    }
    for (size_t i = 0, at = 0; i < nw; at += w->wa[i++]) {
        size_t m = 0;
        if (!grow((void **)&w->buf, &w->buf_cap, 8 * (size_t)w->wa[i], 1)) return lm_fail(LM_STATUS_OUT_OF_MEMORY, "out of memory");
        for (size_t j = at; j < at + w->wa[i]; j++) {
            char u[4];
            size_t ul = put_utf8(u, w->cp[j]);
            for (size_t b = 0; b < ul; b++) m += put_utf8(w->buf + m, byte_cpt((uint8_t)u[b]));
        }
        LM_TRY(bpe_word(v, w, 0, m, v->ignore_merges));
    }
    return LM_STATUS_OK;
}

lm_status lm_vocab_tokenize(const lm_vocab *v, const char *text, size_t len, bool add_bos, bool parse_special,
                            int32_t *out, int32_t cap, int32_t *n_out) {
    if (!v || (!text && len) || !n_out || cap < 0 || (cap > 0 && !out))
        return lm_fail(LM_STATUS_INVALID_ARGUMENT, "lm_vocab_tokenize: NULL or negative argument");
    *n_out = 0;
    if (len > MAX_INPUT) return lm_fail(LM_STATUS_INVALID_ARGUMENT, "text of %zu bytes is too long to tokenize", len);
    work w = {.out = out, .cap = cap};
    fvec fr = {0};
    lm_status st = partition(v, text, len, parse_special, &fr);
    if (st) goto done;
    if (add_bos && v->add_bos && v->bos >= 0) emit(&w, v->bos);
    bool prev_special = true;
    for (size_t i = 0; i < fr.n && !st; i++) {
        const frag *f = &fr.p[i];
        if (f->id >= 0) {
            emit(&w, f->id);
            prev_special = true;
        } else if (v->type == LM_VOCAB_SPM) {
            st = spm_run(v, &w, text + f->off, f->len, v->add_space_prefix && prev_special);
            prev_special = false;
        } else if (v->type == LM_VOCAB_BPE) {
            st = bpe_run(v, &w, text + f->off, f->len);
        } else {
            st = gpt2_run(v, &w, text + f->off, f->len);
        }
    }
    if (st) goto done;
    *n_out = (int32_t)w.n_out;
    if (w.n_out > cap) st = lm_fail(LM_STATUS_BUFFER_TOO_SMALL, "%lld tokens do not fit in %d", (long long)w.n_out, cap);
done:
    free(fr.p);
    free(w.buf);
    free(w.s);
    free(w.h);
    free(w.cp);
    free(w.cf);
    free(w.wa);
    free(w.wb);
    return st;
}

/* ---------------------------------------------------------------------------------------- */
/* decoding                                                                                 */

/* GPT2 NORMAL token text back to bytes (llama.cpp llama_decode_text): each character to the byte
 * it stands for; a character that stands for none becomes "[UNK_BYTE_0x<its UTF-8 in hex><the
 * token text>]", as in llama.cpp. Writes to out unless NULL; returns the length. */
static size_t gpt2_decode(const tok *t, char *out) {
    static const char hex[] = "0123456789abcdef";
    const uint8_t *s = (const uint8_t *)t->text;
    size_t n = 0;
    for (size_t i = 0; i < t->len;) {
        uint32_t c = next_cpt(s, t->len, &i);
        int b = cpt_byte(c);
        if (b >= 0) {
            if (out) out[n] = (char)b;
            n++;
            continue;
        }
        char u[4];
        size_t ul = put_utf8(u, c);
        if (out) {
            memcpy(out + n, "[UNK_BYTE_0x", 12);
            for (size_t k = 0; k < ul; k++) {
                out[n + 12 + 2 * k] = hex[(uint8_t)u[k] >> 4];
                out[n + 13 + 2 * k] = hex[(uint8_t)u[k] & 15];
            }
            memcpy(out + n + 12 + 2 * ul, t->text, t->len);
            out[n + 12 + 2 * ul + t->len] = ']';
        }
        n += 12 + 2 * ul + t->len + 1;
    }
    return n;
}

lm_status lm_vocab_piece(const lm_vocab *v, int32_t id, bool render_special, char *buf, size_t cap, size_t *len) {
    if (!v || !len || (cap && !buf)) return lm_fail(LM_STATUS_INVALID_ARGUMENT, "lm_vocab_piece: NULL argument");
    *len = 0;
    if (id < 0 || id >= v->n) return lm_fail(LM_STATUS_INVALID_ARGUMENT, "token id %d is out of range [0, %d)", id, v->n);
    const tok *t = &v->t[id];
    size_t n = 0;
    enum { NONE, RAW, UNESCAPE, BYTEMAP, BYTE } how = NONE;
    if ((t->attr & (A_UNKNOWN | A_CONTROL)) && !render_special) {
        how = NONE;
    } else if (t->attr & (A_UNKNOWN | A_CONTROL | A_USER)) {
        how = RAW;
        n = t->len;
    } else if ((t->attr & A_NORMAL) && v->type == LM_VOCAB_GPT2) {
        how = BYTEMAP;
        n = gpt2_decode(t, NULL);
    } else if (t->attr & A_NORMAL) {
        how = UNESCAPE;
        n = t->len;
        for (uint32_t i = 0; i + 2 < t->len; i++)
            if (memcmp(t->text + i, "\xe2\x96\x81", 3) == 0) {
                n -= 2;
                i += 2;
            }
    } else if (t->attr & A_BYTE) {
        how = BYTE;
        n = 1;
    }
    *len = n;
    if (n > cap) return lm_fail(LM_STATUS_BUFFER_TOO_SMALL, "token %d needs %zu bytes", id, n);
    if (how == RAW) {
        memcpy(buf, t->text, n);
    } else if (how == BYTE) {
        buf[0] = (char)t->byte;
    } else if (how == BYTEMAP) {
        gpt2_decode(t, buf);
    } else if (how == UNESCAPE) {
        size_t o = 0;
        for (uint32_t i = 0; i < t->len;) {
            if (i + 2 < t->len && memcmp(t->text + i, "\xe2\x96\x81", 3) == 0) {
                buf[o++] = ' ';
                i += 3;
            } else {
                buf[o++] = t->text[i++];
            }
        }
    }
    return LM_STATUS_OK;
}
