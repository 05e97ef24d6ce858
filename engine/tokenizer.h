/*
 * tokenizer.h — vocabulary and tokenizers read from GGUF metadata:
 *   LM_VOCAB_SPM   SentencePiece ("llama" tokenizer model; Gemma 3): score-ordered bigram merges
 *   LM_VOCAB_BPE   merge-ranked BPE without byte-to-unicode mapping ("gemma4" tokenizer model)
 *   LM_VOCAB_GPT2  GPT-2 style byte-level BPE ("gpt2" tokenizer model; Llama 3, Qwen2, SmolLM2,
 *                  DeepSeek-R1-Distill-Qwen): a regex-like pre-tokenizer chosen by tokenizer.ggml.pre
 *                  splits the text into words, each word's bytes are mapped to printable characters
 *                  (bytes_to_unicode) and merged by rank
 * All: special-token partition (CONTROL/UNKNOWN only when parse_special, USER_DEFINED always).
 * SPM and gemma4: whitespace escaped to U+2581, byte fallback through the <0xXX> tokens.
 * Behaviour matches llama.cpp's tokenizer for these models (tests/test_tokenizer.c compares token
 * ids with llama.cpp's on a corpus).
 */
#ifndef LM_TOKENIZER_H
#define LM_TOKENIZER_H

#include "gguf.h"

typedef enum lm_vocab_type {
    LM_VOCAB_SPM = 0,
    LM_VOCAB_BPE = 1,
    LM_VOCAB_GPT2 = 2,
} lm_vocab_type;

/* GGUF tokenizer.ggml.token_type values */
enum {
    LM_TOKEN_NORMAL = 1,
    LM_TOKEN_UNKNOWN = 2,
    LM_TOKEN_CONTROL = 3,
    LM_TOKEN_USER_DEFINED = 4,
    LM_TOKEN_UNUSED = 5,
    LM_TOKEN_BYTE = 6,
};

typedef struct lm_vocab lm_vocab;

/* Build the vocabulary from a parsed GGUF (the gguf must outlive the vocab: token texts are
 * views into it). Fails with LM_STATUS_FORMAT on inconsistent tokenizer metadata and with
 * LM_STATUS_UNSUPPORTED for tokenizer models other than "llama", "gemma4" and "gpt2", and for
 * "gpt2" pre-tokenizers (tokenizer.ggml.pre) lumen does not implement. */
lm_status lm_vocab_load(const lm_gguf *g, lm_vocab **out);
void lm_vocab_free(lm_vocab *v);

lm_vocab_type lm_vocab_get_type(const lm_vocab *v);
int32_t lm_vocab_n_tokens(const lm_vocab *v);
int32_t lm_vocab_bos(const lm_vocab *v);
int32_t lm_vocab_eos(const lm_vocab *v);
bool lm_vocab_add_bos(const lm_vocab *v);
bool lm_vocab_is_eog(const lm_vocab *v, int32_t id);
int32_t lm_vocab_token_type(const lm_vocab *v, int32_t id);
/* Token text as stored (with U+2581 or, for GPT2, U+0120 for spaces), or NULL for an invalid id. */
const char *lm_vocab_text(const lm_vocab *v, int32_t id, size_t *len);
/* Id of an exact token text, or -1. */
int32_t lm_vocab_find(const lm_vocab *v, const char *text, size_t len);

/* Encode: see lm_tokenize in lumen.h (same contract). */
lm_status lm_vocab_tokenize(const lm_vocab *v, const char *text, size_t len, bool add_bos, bool parse_special,
                            int32_t *out, int32_t cap, int32_t *n_out);
/* Bytes of one token's text with U+2581 -> ' ' (GPT2: each character mapped back to its byte) and
 * <0xXX> -> the byte; CONTROL tokens render as "" unless render_special, USER_DEFINED tokens as
 * their text. Same contract as lm_token_to_piece. */
lm_status lm_vocab_piece(const lm_vocab *v, int32_t id, bool render_special, char *buf, size_t cap, size_t *len);

#endif /* LM_TOKENIZER_H */
