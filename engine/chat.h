/*
 * chat.h — built-in chat templates (Gemma 3, Gemma 4, ChatML, DeepSeek-R1), rendered in C without a
 * Jinja engine. The output is prompt text with special-token markup; the Gemma formats begin with
 * <bos>, the others with nothing (lm_chat_apply prepends the vocabulary's BOS text where the model
 * adds one). Tokenize it with parse_special = true and add_bos = false.
 */
#ifndef LM_CHAT_H
#define LM_CHAT_H

#include "common.h"

typedef enum lm_chat_format {
    LM_CHAT_GEMMA3 = 0,
    LM_CHAT_GEMMA4 = 1,
    LM_CHAT_CHATML = 2,   /* <|im_start|>role\ncontent<|im_end|>\n (SmolLM2, Qwen2.5): llama.cpp's "chatml" */
    LM_CHAT_DEEPSEEK3 = 3, /* <｜User｜>...<｜Assistant｜>... (DeepSeek-V3 / R1 distills): llama.cpp's "deepseek3" */
} lm_chat_format;

/* Same contract as lm_chat_apply (lumen.h). Fails with LM_STATUS_INVALID_ARGUMENT for an unknown
 * role, a NULL content, or roles that do not alternate where the template requires it. */
lm_status lm_chat_render(lm_chat_format fmt, const lm_chat_message *msgs, size_t n, bool add_generation_prompt,
                         bool enable_thinking, char *buf, size_t cap, size_t *len);

#endif /* LM_CHAT_H */
