/*
 * utf8_llama.h — test support shared by test_tokenizer.c and the tokenizer fuzzer: text as
 * llama.cpp decodes and re-encodes it (unicode_cpts_from_utf8, unicode_cpt_to_utf8): a lead byte
 * with its continuation bytes gives a code point (overlong forms and surrogates included) written
 * back in shortest form; anything else, and code points above U+10FFFF, gives U+FFFD for one
 * byte. out needs room for 3 bytes per input byte.
 */
#ifndef LM_TEST_UTF8_LLAMA_H
#define LM_TEST_UTF8_LLAMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

static inline size_t utf8_as_llama(const char *in, size_t n, char *out) {
    const unsigned char *p = (const unsigned char *)in;
    size_t m = 0;
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        size_t k = c < 0x80 ? 0 : c < 0xC0 ? 9 : c < 0xE0 ? 1 : c < 0xF0 ? 2 : c < 0xF8 ? 3 : 9;
        uint32_t cp = k ? c & (0x3Fu >> k) : c;
        bool ok = k != 9 && i + k < n;
        for (size_t j = 1; ok && j <= k; j++) {
            ok = (p[i + j] & 0xC0) == 0x80;
            cp = cp << 6 | (p[i + j] & 0x3Fu);
        }
        if (!ok || cp > 0x10FFFF) {
            cp = 0xFFFD;
            k = 0;
        }
        i += k + 1;
        if (cp < 0x80) {
            out[m++] = (char)cp;
        } else if (cp < 0x800) {
            out[m++] = (char)(0xC0 | cp >> 6);
            out[m++] = (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out[m++] = (char)(0xE0 | cp >> 12);
            out[m++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            out[m++] = (char)(0x80 | (cp & 0x3F));
        } else {
            out[m++] = (char)(0xF0 | cp >> 18);
            out[m++] = (char)(0x80 | ((cp >> 12) & 0x3F));
            out[m++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            out[m++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    return m;
}

#endif /* LM_TEST_UTF8_LLAMA_H */
