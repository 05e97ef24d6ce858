/*
 * test_util.h — helpers shared by the test suites: seeded random numbers, error metrics,
 * fixture files, and a small GGUF writer for synthetic and adversarial model files.
 */
#ifndef LM_TEST_UTIL_H
#define LM_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- random (xorshift64*) */
typedef struct tu_rng { uint64_t s; } tu_rng;
static inline tu_rng tu_seed(uint64_t seed) { tu_rng r = {seed * 0x9E3779B97F4A7C15ull + 1}; return r; }
uint64_t tu_next(tu_rng *r);
float tu_uniform(tu_rng *r);            /* [0, 1) */
float tu_normal(tu_rng *r);             /* N(0, 1) */
int64_t tu_range(tu_rng *r, int64_t lo, int64_t hi); /* [lo, hi] */
void tu_fill_normal(tu_rng *r, float *x, int64_t n, float scale);

/* ---- metrics */
double tu_nmse(const float *a, const float *ref, int64_t n);     /* sum (a-r)^2 / sum r^2 */
double tu_max_rel(const float *a, const float *ref, int64_t n);  /* max|a-r| / max|r| */
bool tu_all_finite(const float *a, int64_t n);

/* ---- files */
void *tu_read_file(const char *path, size_t *size); /* malloc'ed + NUL-terminated, NULL on error */
bool tu_write_file(const char *path, const void *data, size_t size);
const char *tu_fixture(const char *name);           /* LUMEN_FIXTURES "/" name (static buffer) */
const char *tu_tmp_path(const char *name);          /* unique path in the temp dir (static buffer) */
/* Path of the Gemma 3 270M Q4_K_M GGUF if present (LUMEN_MODEL env or the model cache), else NULL. */
const char *tu_smollm2_path(void); /* SmolLM2-135M-Instruct Q4_1 (llama architecture), or NULL */
const char *tu_real_model_path(void);

/* ---- growable byte buffer */
typedef struct tu_buf { uint8_t *p; size_t n, cap; } tu_buf;
void tu_put(tu_buf *b, const void *data, size_t n);
void tu_buf_free(tu_buf *b);

/* ---- GGUF writer */
typedef struct tu_gguf tu_gguf;
tu_gguf *tu_gguf_new(void);
void tu_gguf_free(tu_gguf *g);
void tu_gguf_u32(tu_gguf *g, const char *key, uint32_t v);
void tu_gguf_i32(tu_gguf *g, const char *key, int32_t v);
void tu_gguf_f32(tu_gguf *g, const char *key, float v);
void tu_gguf_bool(tu_gguf *g, const char *key, bool v);
void tu_gguf_str(tu_gguf *g, const char *key, const char *v);
void tu_gguf_arr_i32(tu_gguf *g, const char *key, const int32_t *v, size_t n);
void tu_gguf_arr_f32(tu_gguf *g, const char *key, const float *v, size_t n);
void tu_gguf_arr_bool(tu_gguf *g, const char *key, const bool *v, size_t n);
void tu_gguf_arr_str(tu_gguf *g, const char *key, const char *const *v, size_t n);
/* raw value bytes of any type (for adversarial files): type id + encoded payload */
void tu_gguf_raw(tu_gguf *g, const char *key, uint32_t type, const void *payload, size_t n);
/* tensor with data (copied); ne in GGUF order */
void tu_gguf_tensor(tu_gguf *g, const char *name, uint32_t type, int n_dims, const int64_t *ne, const void *data,
                    size_t size);
void tu_gguf_serialize(const tu_gguf *g, tu_buf *out);
bool tu_gguf_save(const tu_gguf *g, const char *path);

#endif /* LM_TEST_UTIL_H */
