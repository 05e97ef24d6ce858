/*
 * gguf.h — GGUF v2/v3 reader. The file is mapped (or read) once; metadata strings and tensor data
 * are views into that memory. Every count, length, offset and size is validated against the
 * bytes that exist, so a crafted file can neither read out of bounds nor make the reader
 * allocate absurd memory: it fails with LM_STATUS_FORMAT and a message naming the problem.
 */
#ifndef LM_GGUF_H
#define LM_GGUF_H

#include "common.h"
#include "dtype.h"

enum {
    LM_GGUF_U8 = 0, LM_GGUF_I8 = 1, LM_GGUF_U16 = 2, LM_GGUF_I16 = 3, LM_GGUF_U32 = 4,
    LM_GGUF_I32 = 5, LM_GGUF_F32 = 6, LM_GGUF_BOOL = 7, LM_GGUF_STRING = 8, LM_GGUF_ARRAY = 9,
    LM_GGUF_U64 = 10, LM_GGUF_I64 = 11, LM_GGUF_F64 = 12, LM_GGUF_TYPE_COUNT = 13,
};

#define LM_GGUF_MAX_DIMS 4
#define LM_GGUF_MAX_DEPTH 8        /* nesting depth of arrays of arrays */
#define LM_GGUF_MAX_STRING (1u << 30)
#define LM_GGUF_MAX_NAME 256

typedef struct lm_gguf_str {
    const char *ptr; /* into the file; not NUL-terminated */
    uint64_t len;
} lm_gguf_str;

typedef struct lm_gguf_value lm_gguf_value;
struct lm_gguf_value {
    uint32_t type;
    union {
        uint64_t u64; /* unsigned integers and bool */
        int64_t i64;  /* signed integers */
        double f64;   /* f32 / f64 */
        lm_gguf_str str;
        struct {
            uint32_t type;         /* element type */
            uint64_t n;            /* element count */
            const uint8_t *data;   /* raw elements (numeric / bool types) */
            lm_gguf_str *strs;     /* string elements */
            lm_gguf_value *elems;  /* nested arrays */
        } arr;
    };
};

typedef struct lm_gguf_kv {
    lm_gguf_str key;
    lm_gguf_value value;
} lm_gguf_kv;

typedef struct lm_gguf_tensor {
    char name[LM_GGUF_MAX_NAME];
    int32_t n_dims;
    int64_t ne[LM_GGUF_MAX_DIMS]; /* unused dims are 1 */
    lm_dtype type;
    uint64_t offset; /* relative to the data section */
    uint64_t size;   /* bytes */
    const void *data;
} lm_gguf_tensor;

typedef struct lm_gguf lm_gguf;

/* Open a file (mmap or read into memory). */
lm_status lm_gguf_open(const char *path, bool use_mmap, lm_gguf **out);
/* Parse a buffer the caller keeps alive until lm_gguf_close (tests, fuzzing). */
lm_status lm_gguf_parse(const void *data, size_t size, lm_gguf **out);
void lm_gguf_close(lm_gguf *g);

uint32_t lm_gguf_version(const lm_gguf *g);
uint64_t lm_gguf_alignment(const lm_gguf *g);
uint64_t lm_gguf_data_offset(const lm_gguf *g);
uint64_t lm_gguf_file_size(const lm_gguf *g);
const uint8_t *lm_gguf_base(const lm_gguf *g);

int64_t lm_gguf_n_kv(const lm_gguf *g);
/* The metadata entries are the file's bytes [24, lm_gguf_kv_end(g)) (after magic, version and the
   two counts), in file order: a writer can copy them verbatim. */
uint64_t lm_gguf_kv_end(const lm_gguf *g);
const lm_gguf_kv *lm_gguf_kv_at(const lm_gguf *g, int64_t i);
const lm_gguf_kv *lm_gguf_find(const lm_gguf *g, const char *key);

int64_t lm_gguf_n_tensors(const lm_gguf *g);
const lm_gguf_tensor *lm_gguf_tensor_at(const lm_gguf *g, int64_t i);
const lm_gguf_tensor *lm_gguf_find_tensor(const lm_gguf *g, const char *name);

/* Typed getters: NOT_FOUND if absent, FORMAT if the stored type does not convert
 * (integers convert between widths only when the value fits). */
lm_status lm_gguf_get_u32(const lm_gguf *g, const char *key, uint32_t *out);
lm_status lm_gguf_get_i64(const lm_gguf *g, const char *key, int64_t *out);
lm_status lm_gguf_get_f32(const lm_gguf *g, const char *key, float *out);
lm_status lm_gguf_get_bool(const lm_gguf *g, const char *key, bool *out);
lm_status lm_gguf_get_str(const lm_gguf *g, const char *key, lm_gguf_str *out);
lm_status lm_gguf_get_arr(const lm_gguf *g, const char *key, uint32_t elem_type,
                          const lm_gguf_value **out);

/* Element i of a numeric/bool array value converted to int64 / double (false if not numeric). */
bool lm_gguf_arr_int(const lm_gguf_value *arr, uint64_t i, int64_t *out);
bool lm_gguf_arr_float(const lm_gguf_value *arr, uint64_t i, double *out);
bool lm_gguf_str_eq(lm_gguf_str s, const char *c);
const char *lm_gguf_type_name(uint32_t type);
size_t lm_gguf_type_size(uint32_t type); /* 0 for string/array */

/* Render a value as text (arrays abbreviated). */
void lm_gguf_value_str(const lm_gguf_value *v, char *buf, size_t cap);

#endif /* LM_GGUF_H */
