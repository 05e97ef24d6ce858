/*
 * chat.c — Gemma 3, Gemma 4, ChatML and DeepSeek-R1 chat templates rendered in C (see chat.h), so
 * that prompts need no Jinja engine. References (tests/test_chat.c compares byte for byte):
 *   Gemma 3: "<bos>" + llama.cpp's built-in "gemma" template: a leading system message is
 *            trimmed and prepended to the first user turn with "\n\n"; "assistant" becomes
 *            "model"; contents are trimmed of ASCII whitespace (C isspace). Google's template
 *            requires user/model alternation after the optional system message, so anything
 *            else is rejected.
 *   Gemma 4: llama.cpp's models/templates/google-gemma-4-31B-it-interleaved.jinja without tools:
 *            an optional system turn (thinking on, or a leading system message) holding
 *            "<|think|>\n" and the trimmed system text; one <|turn>ROLE\n...<turn|>\n per message;
 *            model turns lose their <|channel>...<channel|> thought blocks; trimming is Jinja's
 *            (Python str.strip, Unicode whitespace); the generation prompt pre-fills an empty
 *            thought channel when thinking is off.
 *   ChatML, DeepSeek-R1: llama.cpp's built-in "chatml" and "deepseek3" templates (llama-chat.cpp),
 *            which llama.cpp picks for files whose Jinja template holds <|im_start|>, or
 *            <｜User｜> and <｜Assistant｜>. Model-specific defaults of the Jinja templates (SmolLM2's
 *            default system prompt, R1's stripping of <think> blocks from earlier answers) are
 *            not reproduced, as in llama.cpp without --jinja.
 * Output contract: on success the text is NUL-terminated and *len is its length without the NUL;
 * when cap < length + 1 the result is LM_STATUS_BUFFER_TOO_SMALL and *len is still the length.
 */
#include "chat.h"

#include <stdlib.h>
#include <string.h>

typedef enum role { R_SYSTEM, R_USER, R_MODEL } role;

/* Output sink that counts everything and stores what fits. */
typedef struct sink {
    char *buf;
    size_t cap, n;
} sink;

static void put(sink *s, const char *p, size_t n) {
    if (s->n < s->cap) memcpy(s->buf + s->n, p, n < s->cap - s->n ? n : s->cap - s->n);
    s->n += n;
}

static void puts_(sink *s, const char *p) { put(s, p, strlen(p)); }

static lm_status get_role(const lm_chat_message *m, size_t i, role *r) {
    if (!m->role || !m->content)
        return lm_fail(LM_STATUS_INVALID_ARGUMENT, "chat message %zu has a NULL %s", i, m->role ? "content" : "role");
    if (!strcmp(m->role, "system")) *r = R_SYSTEM;
    else if (!strcmp(m->role, "user")) *r = R_USER;
    else if (!strcmp(m->role, "assistant") || !strcmp(m->role, "model")) *r = R_MODEL;
    else
        return lm_fail(LM_STATUS_INVALID_ARGUMENT,
                       "chat message %zu has role '%.32s' (expected system, user, assistant or model)", i, m->role);
    return LM_STATUS_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* trimming                                                                                 */

static bool c_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* C isspace trim (llama.cpp's trim in llama-chat.cpp) */
static void trim_ascii(const char **p, size_t *n) {
    while (*n && c_space((unsigned char)(*p)[0])) (*p)++, (*n)--;
    while (*n && c_space((unsigned char)(*p)[*n - 1])) (*n)--;
}

/* Byte length of the Python whitespace character (str.isspace) encoded at s[0..n), or 0. */
static size_t py_space_at(const unsigned char *s, size_t n) {
    if (!n) return 0;
    if (s[0] < 0x80) return (s[0] >= 0x09 && s[0] <= 0x0D) || (s[0] >= 0x1C && s[0] <= 0x20) ? 1 : 0;
    if (n >= 2 && s[0] == 0xC2 && (s[1] == 0x85 || s[1] == 0xA0)) return 2;
    if (n < 3) return 0;
    uint32_t c = (uint32_t)(s[0] & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F);
    if ((s[0] & 0xF0) != 0xE0 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
    bool ws = c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
              c == 0x205F || c == 0x3000;
    return ws ? 3 : 0;
}

/* Jinja's trim filter: Python str.strip() */
static void trim_py(const char **p, size_t *n) {
    size_t k;
    while ((k = py_space_at((const unsigned char *)*p, *n)) != 0) *p += k, *n -= k;
    for (;;) {
        const unsigned char *s = (const unsigned char *)*p;
        if (*n >= 1 && py_space_at(s + *n - 1, 1) == 1) *n -= 1;
        else if (*n >= 2 && py_space_at(s + *n - 2, 2) == 2) *n -= 2;
        else if (*n >= 3 && py_space_at(s + *n - 3, 3) == 3) *n -= 3;
        else break;
    }
}

static const char *find_str(const char *p, size_t n, const char *needle) {
    size_t m = strlen(needle);
    for (size_t i = 0; i + m <= n; i++)
        if (p[i] == needle[0] && memcmp(p + i, needle, m) == 0) return p + i;
    return NULL;
}

/* The template's strip_thinking macro: split on "<channel|>", keep of each part the text before
 * its first "<|channel>", join, trim (Python whitespace). */
static lm_status put_model_text(sink *s, const char *p, size_t n) {
    static const char OPEN[] = "<|channel>", CLOSE[] = "<channel|>";
    char *tmp = malloc(n ? n : 1);
    if (!tmp) return lm_fail(LM_STATUS_OUT_OF_MEMORY, "out of memory");
    size_t m = 0;
    const char *q = p, *end = p + n;
    for (;;) {
        const char *c = find_str(q, (size_t)(end - q), CLOSE);
        const char *part_end = c ? c : end;
        const char *o = find_str(q, (size_t)(part_end - q), OPEN);
        const char *keep_end = o ? o : part_end;
        memcpy(tmp + m, q, (size_t)(keep_end - q));
        m += (size_t)(keep_end - q);
        if (!c) break;
        q = c + sizeof CLOSE - 1;
    }
    const char *t = tmp;
    trim_py(&t, &m);
    put(s, t, m);
    free(tmp);
    return LM_STATUS_OK;
}

static void put_trimmed(sink *s, const char *p, bool python) {
    size_t n = strlen(p);
    if (python) trim_py(&p, &n);
    else trim_ascii(&p, &n);
    put(s, p, n);
}

/* ---------------------------------------------------------------------------------------- */
/* templates                                                                                */

static lm_status gemma3(sink *s, const lm_chat_message *msgs, size_t n, bool add_gen) {
    size_t i = 0;
    role r;
    const char *sys = NULL;
    if (n) {
        LM_TRY(get_role(&msgs[0], 0, &r));
        if (r == R_SYSTEM) {
            sys = msgs[0].content;
            i = 1;
        }
    }
    for (size_t k = i; k < n; k++) {
        LM_TRY(get_role(&msgs[k], k, &r));
        role want = (k - i) % 2 == 0 ? R_USER : R_MODEL;
        if (r != want)
            return lm_fail(LM_STATUS_INVALID_ARGUMENT,
                           "Gemma 3 chat: message %zu has role '%.32s' but roles must alternate user/assistant "
                           "after an optional leading system message", k, msgs[k].role);
    }
    puts_(s, "<bos>");
    for (size_t k = i; k < n; k++) {
        bool user = (k - i) % 2 == 0;
        puts_(s, user ? "<start_of_turn>user\n" : "<start_of_turn>model\n");
        if (user && sys) {
            const char *p = sys;
            size_t len = strlen(p);
            trim_ascii(&p, &len);
            if (len) {
                put(s, p, len);
                puts_(s, "\n\n");
            }
            sys = NULL;
        }
        put_trimmed(s, msgs[k].content, false);
        puts_(s, "<end_of_turn>\n");
    }
    if (add_gen) puts_(s, "<start_of_turn>model\n");
    return LM_STATUS_OK;
}

static lm_status gemma4(sink *s, const lm_chat_message *msgs, size_t n, bool add_gen, bool thinking) {
    size_t i = 0;
    role r;
    for (size_t k = 0; k < n; k++) LM_TRY(get_role(&msgs[k], k, &r));
    puts_(s, "<bos>");
    bool sys = n && get_role(&msgs[0], 0, &r) == LM_STATUS_OK && r == R_SYSTEM;
    if (thinking || sys) {
        puts_(s, "<|turn>system\n");
        if (thinking) puts_(s, "<|think|>\n");
        if (sys) {
            put_trimmed(s, msgs[0].content, true);
            i = 1;
        }
        puts_(s, "<turn|>\n");
    }
    for (size_t k = i; k < n; k++) {
        get_role(&msgs[k], k, &r);
        puts_(s, r == R_SYSTEM ? "<|turn>system\n" : r == R_USER ? "<|turn>user\n" : "<|turn>model\n");
        if (r == R_MODEL) LM_TRY(put_model_text(s, msgs[k].content, strlen(msgs[k].content)));
        else put_trimmed(s, msgs[k].content, true);
        puts_(s, "<turn|>\n");
    }
    if (add_gen) {
        puts_(s, "<|turn>model\n");
        if (!thinking) puts_(s, "<|channel>thought\n<channel|>");
    }
    return LM_STATUS_OK;
}

/* llama.cpp's built-in "chatml": every message verbatim (roles as given; "model" is written as
   "assistant"), no trimming */
static lm_status chatml(sink *s, const lm_chat_message *msgs, size_t n, bool add_gen) {
    role r;
    for (size_t k = 0; k < n; k++) {
        LM_TRY(get_role(&msgs[k], k, &r));
        puts_(s, "<|im_start|>");
        puts_(s, r == R_SYSTEM ? "system" : r == R_USER ? "user" : "assistant");
        puts_(s, "\n");
        puts_(s, msgs[k].content);
        puts_(s, "<|im_end|>\n");
    }
    if (add_gen) puts_(s, "<|im_start|>assistant\n");
    return LM_STATUS_OK;
}

/* llama.cpp's built-in "deepseek3": system text + blank line, user turns after <｜User｜>,
   assistant turns after <｜Assistant｜> and closed by <｜end▁of▁sentence｜> */
static lm_status deepseek3(sink *s, const lm_chat_message *msgs, size_t n, bool add_gen) {
    role r;
    for (size_t k = 0; k < n; k++) {
        LM_TRY(get_role(&msgs[k], k, &r));
        if (r == R_SYSTEM) {
            puts_(s, msgs[k].content);
            puts_(s, "\n\n");
        } else if (r == R_USER) {
            puts_(s, "<\xef\xbd\x9cUser\xef\xbd\x9c>");
            puts_(s, msgs[k].content);
        } else {
            puts_(s, "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>");
            puts_(s, msgs[k].content);
            puts_(s, "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>");
        }
    }
    if (add_gen) puts_(s, "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>");
    return LM_STATUS_OK;
}

lm_status lm_chat_render(lm_chat_format fmt, const lm_chat_message *msgs, size_t n, bool add_generation_prompt,
                         bool enable_thinking, char *buf, size_t cap, size_t *len) {
    if (!len || (n && !msgs) || (cap && !buf)) return lm_fail(LM_STATUS_INVALID_ARGUMENT, "lm_chat_render: NULL argument");
    *len = 0;
    sink s = {buf, cap, 0};
    lm_status st;
    if (fmt == LM_CHAT_GEMMA3) st = gemma3(&s, msgs, n, add_generation_prompt);
    else if (fmt == LM_CHAT_GEMMA4) st = gemma4(&s, msgs, n, add_generation_prompt, enable_thinking);
    else if (fmt == LM_CHAT_CHATML) st = chatml(&s, msgs, n, add_generation_prompt);
    else if (fmt == LM_CHAT_DEEPSEEK3) st = deepseek3(&s, msgs, n, add_generation_prompt);
    else return lm_fail(LM_STATUS_INVALID_ARGUMENT, "unknown chat format %d", (int)fmt);
    if (st) return st;
    *len = s.n;
    if (s.n >= cap) return lm_fail(LM_STATUS_BUFFER_TOO_SMALL, "chat prompt needs %zu bytes plus a NUL", s.n);
    buf[s.n] = 0;
    return LM_STATUS_OK;
}
