/*
 * test_gguf.c — the GGUF reader against valid, real and hostile files.
 *
 *   - round trip of a synthetic file written with the tu_gguf_* writer: every metadata value
 *     type, arrays of every element type incl. strings, arrays of arrays and empty arrays, the
 *     typed getters, value rendering, tensor infos, offsets, data pointers and bytes;
 *     custom general.alignment layouts built by hand;
 *   - the real Gemma 3 270M file (skipped when absent);
 *   - malformed input: each case must fail with the right status and an error message that names
 *     the problem, and each comes with a valid twin that parses, so the failure is known to come
 *     from the defect and not from something else in the file;
 *   - every truncation of a small file and thousands of seeded random mutations: never a crash.
 *
 * Every parse runs on an exact-size malloc'ed copy, so AddressSanitizer reports any read past
 * the end of the input.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf.h"
#include "test_util.h"

#define MAGIC 0x46554747u

/* ---------------------------------------------------------------------------------------- */
/* raw encoders for hand-built files                                                        */

static void p8(tu_buf *b, uint8_t v) { tu_put(b, &v, 1); }
static void p32(tu_buf *b, uint32_t v) { tu_put(b, &v, 4); }
static void p64(tu_buf *b, uint64_t v) { tu_put(b, &v, 8); }
static void pstrn(tu_buf *b, const void *s, uint64_t n) { p64(b, n); tu_put(b, s, (size_t)n); }
static void pstr(tu_buf *b, const char *s) { pstrn(b, s, strlen(s)); }
static void pkey(tu_buf *b, const char *key, uint32_t type) { pstr(b, key); p32(b, type); }
static void ppad(tu_buf *b, size_t align) { while (b->n % align) p8(b, 0); }

static void phead(tu_buf *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    p32(b, MAGIC);
    p32(b, version);
    p64(b, n_tensors);
    p64(b, n_kv);
}

static void ptinfo(tu_buf *b, const char *name, uint64_t name_len, uint32_t n_dims, const uint64_t *ne,
                   uint32_t type, uint64_t off) {
    pstrn(b, name, name_len);
    p32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++) p64(b, ne[d]);
    p32(b, type);
    p64(b, off);
}

/* A file with no tensors and one metadata entry whose value bytes are given. */
static void one_kv(tu_buf *b, const char *key, uint32_t type, const void *payload, size_t n) {
    phead(b, 3, 0, 1);
    pkey(b, key, type);
    tu_put(b, payload, n);
}

typedef struct tinfo {
    const char *name;
    uint64_t name_len; /* 0: strlen(name) */
    uint32_t n_dims;
    uint64_t ne[5];
    uint32_t type;
    uint64_t off;
} tinfo;

/* A file with the given tensor infos, an optional general.alignment (0: none, default 32) and
 * `data_bytes` bytes of data section. */
static void tensor_file(tu_buf *b, const tinfo *t, size_t nt, size_t data_bytes, uint32_t align) {
    phead(b, 3, nt, align ? 2 : 1);
    pkey(b, "general.architecture", LM_GGUF_STRING);
    pstr(b, "test");
    if (align) {
        pkey(b, "general.alignment", LM_GGUF_U32);
        p32(b, align);
    }
    for (size_t i = 0; i < nt; i++)
        ptinfo(b, t[i].name, t[i].name_len ? t[i].name_len : strlen(t[i].name), t[i].n_dims, t[i].ne, t[i].type,
               t[i].off);
    ppad(b, align ? align : 32);
    for (size_t i = 0; i < data_bytes; i++) p8(b, (uint8_t)(i * 7 + 1));
}

/* ---------------------------------------------------------------------------------------- */
/* parsing helpers                                                                          */

static uint8_t *dup_exact(const void *p, size_t n) {
    uint8_t *m = malloc(n ? n : 1);
    cr_assert(m);
    if (n) memcpy(m, p, n);
    return m;
}

typedef struct owned {
    lm_gguf *g;
    uint8_t *mem;
    size_t n;
} owned;

static owned parse_ok_(const void *p, size_t n, int line) {
    owned o = {NULL, dup_exact(p, n), n};
    lm_clear_error();
    lm_status st = lm_gguf_parse(o.mem, n, &o.g);
    cr_assert_eq(st, LM_STATUS_OK, "line %d: parse failed (%s): %s", line, lm_status_string(st), lm_last_error());
    cr_assert_not_null(o.g);
    return o;
}
#define PARSE_OK(b) parse_ok_((b)->p, (b)->n, __LINE__)

static void owned_free(owned *o) {
    lm_gguf_close(o->g);
    free(o->mem);
}

static void expect_bad_(const void *p, size_t n, lm_status want, const char *needle, int line) {
    uint8_t *m = dup_exact(p, n);
    lm_gguf *g = (lm_gguf *)&g; /* must be reset to NULL */
    lm_clear_error();
    lm_status st = lm_gguf_parse(m, n, &g);
    const char *e = lm_last_error();
    cr_assert_eq(st, want, "line %d: status '%s', want '%s' (error: '%s')", line, lm_status_string(st),
                 lm_status_string(want), e);
    cr_assert_null(g, "line %d: *out not NULL after failure", line);
    cr_assert(e && e[0], "line %d: failure without an error message", line);
    cr_assert(strstr(e, needle), "line %d: error '%s' does not mention '%s'", line, e, needle);
    free(m);
}
#define EXPECT_BAD(b, st, needle) expect_bad_((b)->p, (b)->n, (st), (needle), __LINE__)

/* Build with `build`, expect failure; the buffer is reset each time. */
#define BAD_CASE(stmt, st, needle)                                                                 \
    do {                                                                                           \
        tu_buf b_ = {0};                                                                           \
        tu_buf *b = &b_;                                                                           \
        stmt;                                                                                      \
        EXPECT_BAD(b, (st), (needle));                                                             \
        tu_buf_free(b);                                                                            \
    } while (0)
#define GOOD_CASE(stmt)                                                                            \
    do {                                                                                           \
        tu_buf b_ = {0};                                                                           \
        tu_buf *b = &b_;                                                                           \
        stmt;                                                                                      \
        owned o_ = PARSE_OK(b);                                                                    \
        owned_free(&o_);                                                                           \
        tu_buf_free(b);                                                                            \
    } while (0)

/* Touch everything a parsed file exposes: render every value, read every array element and
 * every tensor's first and last byte (ASan checks they lie inside the input). */
static void walk(const lm_gguf *g, const uint8_t *mem, size_t n) {
    char small[7], buf[512];
    volatile unsigned sink = 0;
    for (int64_t i = 0; i < lm_gguf_n_kv(g); i++) {
        const lm_gguf_kv *kv = lm_gguf_kv_at(g, i);
        cr_assert_not_null(kv);
        for (uint64_t j = 0; j < kv->key.len; j++) sink += (uint8_t)kv->key.ptr[j];
        lm_gguf_value_str(&kv->value, buf, sizeof buf);
        cr_assert_lt(strlen(buf), sizeof buf);
        lm_gguf_value_str(&kv->value, small, sizeof small);
        cr_assert_lt(strlen(small), sizeof small);
        const lm_gguf_value *v = &kv->value;
        if (v->type == LM_GGUF_ARRAY && v->arr.type == LM_GGUF_STRING) {
            for (uint64_t j = 0; j < v->arr.n; j++)
                if (v->arr.strs[j].len) sink += (uint8_t)v->arr.strs[j].ptr[v->arr.strs[j].len - 1];
        } else if (v->type == LM_GGUF_ARRAY && v->arr.type != LM_GGUF_ARRAY) {
            for (uint64_t j = 0; j < v->arr.n; j++) {
                double d;
                if (lm_gguf_arr_float(v, j, &d)) sink += (unsigned)(d != d);
            }
        }
    }
    for (int64_t i = 0; i < lm_gguf_n_tensors(g); i++) {
        const lm_gguf_tensor *t = lm_gguf_tensor_at(g, i);
        const uint8_t *d = t->data;
        cr_assert(t->size > 0 && d >= mem && d + t->size <= mem + n, "tensor '%s' data outside the file", t->name);
        sink += d[0] + d[t->size - 1];
        cr_assert_eq(lm_gguf_find_tensor(g, t->name), t, "tensor names must be unique");
    }
    (void)sink;
}

/* ---------------------------------------------------------------------------------------- */
/* a small valid file: a few kinds of metadata and two tensors, the last one ending exactly at
 * the end of the file (so every strict prefix is invalid)                                  */

static void small_file(tu_buf *out) {
    tu_gguf *w = tu_gguf_new();
    tu_gguf_str(w, "general.architecture", "test");
    tu_gguf_u32(w, "test.block_count", 2);
    tu_gguf_f32(w, "test.eps", 1e-6f);
    tu_gguf_bool(w, "test.flag", true);
    static const char *const toks[] = {"<s>", "", "hello"};
    tu_gguf_arr_str(w, "tokenizer.ggml.tokens", toks, 3);
    static const int32_t ints[] = {1, -2, 3};
    tu_gguf_arr_i32(w, "test.ints", ints, 3);
    {
        tu_buf nested = {0}; /* [[7, 8], []] of u8 */
        p32(&nested, LM_GGUF_ARRAY);
        p64(&nested, 2);
        p32(&nested, LM_GGUF_U8);
        p64(&nested, 2);
        p8(&nested, 7);
        p8(&nested, 8);
        p32(&nested, LM_GGUF_U8);
        p64(&nested, 0);
        tu_gguf_raw(w, "test.nested", LM_GGUF_ARRAY, nested.p, nested.n);
        tu_buf_free(&nested);
    }
    float f[32];
    for (int i = 0; i < 32; i++) f[i] = (float)i - 3.5f;
    tu_gguf_tensor(w, "a.weight", LM_F32, 2, (const int64_t[]){8, 4}, f, sizeof f);
    uint8_t q[16 * 34];
    for (size_t i = 0; i < sizeof q; i++) q[i] = (uint8_t)(i * 13);
    tu_gguf_tensor(w, "b.weight", LM_Q8_0, 2, (const int64_t[]){32, 16}, q, sizeof q); /* 544 = 17 * 32 */
    tu_gguf_serialize(w, out);
    tu_gguf_free(w);
}

/* ---------------------------------------------------------------------------------------- */
/* round trip                                                                               */

static void raw_arr(tu_gguf *w, const char *key, uint32_t et, const void *data, size_t elem, uint64_t n) {
    tu_buf pl = {0};
    p32(&pl, et);
    p64(&pl, n);
    if (n) tu_put(&pl, data, (size_t)n * elem);
    tu_gguf_raw(w, key, LM_GGUF_ARRAY, pl.p, pl.n);
    tu_buf_free(&pl);
}

typedef struct rt_tensor {
    const char *name;
    uint32_t type;
    int n_dims;
    int64_t ne[4];
    size_t size;
} rt_tensor;

static const rt_tensor rt_tensors[] = {
    {"t.f32", LM_F32, 2, {4, 3}, 48},
    {"t.f16", LM_F16, 1, {64}, 128},
    {"t.q8_0", LM_Q8_0, 2, {32, 2}, 68},
    {"t.q4_k", LM_Q4_K, 4, {256, 1, 1, 2}, 288},
    {"t.bf16", LM_BF16, 3, {2, 2, 2}, 16},
    {"t.q6_k", LM_Q6_K, 2, {256, 1}, 210},
    {"blk.0.attn_q.weight", LM_Q5_0, 2, {64, 3}, 132},
};
#define N_RT (sizeof rt_tensors / sizeof rt_tensors[0])

static uint8_t *rt_data(size_t i, size_t size) {
    uint8_t *d = malloc(size);
    tu_rng r = tu_seed(100 + i);
    for (size_t j = 0; j < size; j++) d[j] = (uint8_t)tu_next(&r);
    return d;
}

static void build_round_trip(tu_buf *out) {
    tu_gguf *w = tu_gguf_new();
    const uint8_t u8 = 0xAB;
    const int8_t i8 = -5;
    const uint16_t u16 = 65535;
    const int16_t i16 = -32768;
    const uint64_t u64 = UINT64_MAX;
    const int64_t i64 = INT64_MIN;
    const double f64 = -1e300;
    tu_gguf_raw(w, "v.u8", LM_GGUF_U8, &u8, 1);
    tu_gguf_raw(w, "v.i8", LM_GGUF_I8, &i8, 1);
    tu_gguf_raw(w, "v.u16", LM_GGUF_U16, &u16, 2);
    tu_gguf_raw(w, "v.i16", LM_GGUF_I16, &i16, 2);
    tu_gguf_u32(w, "v.u32", 4000000000u);
    tu_gguf_i32(w, "v.i32", INT32_MIN);
    tu_gguf_f32(w, "v.f32", -1.5f);
    tu_gguf_bool(w, "v.true", true);
    tu_gguf_bool(w, "v.false", false);
    tu_gguf_str(w, "v.str", "hello\nworld");
    tu_gguf_str(w, "v.empty", "");
    tu_gguf_raw(w, "v.u64", LM_GGUF_U64, &u64, 8);
    tu_gguf_raw(w, "v.i64", LM_GGUF_I64, &i64, 8);
    tu_gguf_raw(w, "v.f64", LM_GGUF_F64, &f64, 8);

    static const uint8_t a_u8[] = {0, 1, 255};
    static const int8_t a_i8[] = {-128, 0, 127};
    static const uint16_t a_u16[] = {0, 1, 65535};
    static const int16_t a_i16[] = {-32768, 0, 32767};
    static const uint32_t a_u32[] = {0, 1, UINT32_MAX};
    static const int32_t a_i32[] = {INT32_MIN, 0, INT32_MAX};
    static const float a_f32[] = {-0.0f, 1.25f, 3e38f};
    static const bool a_bool[] = {true, false, true};
    static const uint64_t a_u64[] = {0, (uint64_t)INT64_MAX, UINT64_MAX};
    static const int64_t a_i64[] = {INT64_MIN, -1, INT64_MAX};
    static const double a_f64[] = {-1e-300, 0.5, 1e300};
    raw_arr(w, "a.u8", LM_GGUF_U8, a_u8, 1, 3);
    raw_arr(w, "a.i8", LM_GGUF_I8, a_i8, 1, 3);
    raw_arr(w, "a.u16", LM_GGUF_U16, a_u16, 2, 3);
    raw_arr(w, "a.i16", LM_GGUF_I16, a_i16, 2, 3);
    raw_arr(w, "a.u32", LM_GGUF_U32, a_u32, 4, 3);
    tu_gguf_arr_i32(w, "a.i32", a_i32, 3);
    tu_gguf_arr_f32(w, "a.f32", a_f32, 3);
    tu_gguf_arr_bool(w, "a.bool", a_bool, 3);
    raw_arr(w, "a.u64", LM_GGUF_U64, a_u64, 8, 3);
    raw_arr(w, "a.i64", LM_GGUF_I64, a_i64, 8, 3);
    raw_arr(w, "a.f64", LM_GGUF_F64, a_f64, 8, 3);
    static const char *const strs[] = {"a", "", "ccc"};
    tu_gguf_arr_str(w, "a.str", strs, 3);
    tu_gguf_arr_i32(w, "a.empty", a_i32, 0);
    tu_gguf_arr_str(w, "a.empty_str", strs, 0);
    raw_arr(w, "a.empty_arr", LM_GGUF_ARRAY, NULL, 0, 0);
    {
        tu_buf p = {0}; /* [[1, 2, 3], [], [4]] of i32 */
        p32(&p, LM_GGUF_ARRAY);
        p64(&p, 3);
        p32(&p, LM_GGUF_I32); p64(&p, 3); p32(&p, 1); p32(&p, 2); p32(&p, 3);
        p32(&p, LM_GGUF_I32); p64(&p, 0);
        p32(&p, LM_GGUF_I32); p64(&p, 1); p32(&p, 4);
        tu_gguf_raw(w, "n.i32", LM_GGUF_ARRAY, p.p, p.n);
        tu_buf_free(&p);
    }
    {
        tu_buf p = {0}; /* [["x"], ["y", "zz"]] */
        p32(&p, LM_GGUF_ARRAY);
        p64(&p, 2);
        p32(&p, LM_GGUF_STRING); p64(&p, 1); pstr(&p, "x");
        p32(&p, LM_GGUF_STRING); p64(&p, 2); pstr(&p, "y"); pstr(&p, "zz");
        tu_gguf_raw(w, "n.str", LM_GGUF_ARRAY, p.p, p.n);
        tu_buf_free(&p);
    }
    {
        tu_buf p = {0}; /* [[[9]]] of u8 */
        p32(&p, LM_GGUF_ARRAY); p64(&p, 1);
        p32(&p, LM_GGUF_ARRAY); p64(&p, 1);
        p32(&p, LM_GGUF_U8); p64(&p, 1); p8(&p, 9);
        tu_gguf_raw(w, "n.deep", LM_GGUF_ARRAY, p.p, p.n);
        tu_buf_free(&p);
    }
    for (size_t i = 0; i < N_RT; i++) {
        uint8_t *d = rt_data(i, rt_tensors[i].size);
        tu_gguf_tensor(w, rt_tensors[i].name, rt_tensors[i].type, rt_tensors[i].n_dims, rt_tensors[i].ne, d,
                       rt_tensors[i].size);
        free(d);
    }
    tu_gguf_serialize(w, out);
    tu_gguf_free(w);
}

static const lm_gguf_value *val(const lm_gguf *g, const char *key, uint32_t type) {
    const lm_gguf_kv *kv = lm_gguf_find(g, key);
    cr_assert_not_null(kv, "key '%s' missing", key);
    cr_assert_eq(kv->value.type, type, "key '%s' has type %s, want %s", key, lm_gguf_type_name(kv->value.type),
                 lm_gguf_type_name(type));
    return &kv->value;
}

static void check_int_arr(const lm_gguf *g, const char *key, uint32_t et, const int64_t *want, const bool *ok) {
    const lm_gguf_value *v = val(g, key, LM_GGUF_ARRAY);
    cr_assert_eq(v->arr.type, et, "%s element type", key);
    cr_assert_eq(v->arr.n, 3u);
    cr_assert_not_null(v->arr.data);
    for (uint64_t i = 0; i < 3; i++) {
        int64_t x = 0;
        const bool got = lm_gguf_arr_int(v, i, &x);
        cr_assert_eq(got, ok[i], "%s[%llu] convertible", key, (unsigned long long)i);
        if (got) cr_assert_eq(x, want[i], "%s[%llu] = %lld, want %lld", key, (unsigned long long)i, (long long)x,
                              (long long)want[i]);
    }
    int64_t x;
    cr_assert_not(lm_gguf_arr_int(v, 3, &x), "index past the end must fail");
}

static void check_round_trip(const owned *o) {
    const lm_gguf *g = o->g;
    cr_assert_eq(lm_gguf_version(g), 3u);
    cr_assert_eq(lm_gguf_alignment(g), 32u);
    cr_assert_eq(lm_gguf_file_size(g), o->n);
    cr_assert_eq(lm_gguf_base(g), o->mem);
    cr_assert_eq(lm_gguf_n_kv(g), 32);
    cr_assert_eq(lm_gguf_n_tensors(g), (int64_t)N_RT);
    cr_assert(lm_gguf_str_eq(lm_gguf_kv_at(g, 0)->key, "v.u8"), "kvs keep file order");
    cr_assert(lm_gguf_str_eq(lm_gguf_kv_at(g, 31)->key, "n.deep"));
    cr_assert_null(lm_gguf_kv_at(g, 32));
    cr_assert_null(lm_gguf_kv_at(g, -1));
    cr_assert_null(lm_gguf_find(g, "v.u"));
    cr_assert_null(lm_gguf_find(g, "v.u88"));

    /* scalars */
    cr_assert_eq(val(g, "v.u8", LM_GGUF_U8)->u64, 0xABu);
    cr_assert_eq(val(g, "v.i8", LM_GGUF_I8)->i64, -5);
    cr_assert_eq(val(g, "v.u16", LM_GGUF_U16)->u64, 65535u);
    cr_assert_eq(val(g, "v.i16", LM_GGUF_I16)->i64, -32768);
    cr_assert_eq(val(g, "v.u32", LM_GGUF_U32)->u64, 4000000000u);
    cr_assert_eq(val(g, "v.i32", LM_GGUF_I32)->i64, INT32_MIN);
    cr_assert_eq(val(g, "v.f32", LM_GGUF_F32)->f64, -1.5);
    cr_assert_eq(val(g, "v.true", LM_GGUF_BOOL)->u64, 1u);
    cr_assert_eq(val(g, "v.false", LM_GGUF_BOOL)->u64, 0u);
    cr_assert(lm_gguf_str_eq(val(g, "v.str", LM_GGUF_STRING)->str, "hello\nworld"));
    cr_assert_eq(val(g, "v.empty", LM_GGUF_STRING)->str.len, 0u);
    cr_assert_eq(val(g, "v.u64", LM_GGUF_U64)->u64, UINT64_MAX);
    cr_assert_eq(val(g, "v.i64", LM_GGUF_I64)->i64, INT64_MIN);
    cr_assert_eq(val(g, "v.f64", LM_GGUF_F64)->f64, -1e300);

    /* typed getters and their conversions */
    uint32_t u32;
    int64_t i64;
    float f32;
    bool b;
    lm_gguf_str s;
    const lm_gguf_value *arr;
    cr_assert_eq(lm_gguf_get_u32(g, "v.u8", &u32), LM_STATUS_OK);
    cr_assert_eq(u32, 0xABu);
    cr_assert_eq(lm_gguf_get_u32(g, "v.u32", &u32), LM_STATUS_OK);
    cr_assert_eq(u32, 4000000000u);
    cr_assert_eq(lm_gguf_get_u32(g, "v.i8", &u32), LM_STATUS_FORMAT, "negative value into u32");
    cr_assert_eq(lm_gguf_get_u32(g, "v.u64", &u32), LM_STATUS_FORMAT, "2^64-1 into u32");
    cr_assert_eq(lm_gguf_get_u32(g, "v.str", &u32), LM_STATUS_FORMAT);
    cr_assert(strstr(lm_last_error(), "v.str"));
    cr_assert_eq(lm_gguf_get_u32(g, "missing", &u32), LM_STATUS_NOT_FOUND);
    cr_assert(strstr(lm_last_error(), "missing"));
    cr_assert_eq(lm_gguf_get_i64(g, "v.i64", &i64), LM_STATUS_OK);
    cr_assert_eq(i64, INT64_MIN);
    cr_assert_eq(lm_gguf_get_i64(g, "v.i16", &i64), LM_STATUS_OK);
    cr_assert_eq(i64, -32768);
    cr_assert_eq(lm_gguf_get_i64(g, "v.u64", &i64), LM_STATUS_FORMAT, "2^64-1 into i64");
    cr_assert_eq(lm_gguf_get_f32(g, "v.f64", &f32), LM_STATUS_OK);
    cr_assert(isinf(f32) && f32 < 0);
    cr_assert_eq(lm_gguf_get_f32(g, "v.i8", &f32), LM_STATUS_OK);
    cr_assert_eq(f32, -5.0f);
    cr_assert_eq(lm_gguf_get_f32(g, "v.str", &f32), LM_STATUS_FORMAT);
    cr_assert_eq(lm_gguf_get_bool(g, "v.true", &b), LM_STATUS_OK);
    cr_assert(b);
    cr_assert_eq(lm_gguf_get_bool(g, "v.false", &b), LM_STATUS_OK);
    cr_assert_not(b);
    cr_assert_eq(lm_gguf_get_bool(g, "v.f32", &b), LM_STATUS_FORMAT);
    cr_assert_eq(lm_gguf_get_str(g, "v.str", &s), LM_STATUS_OK);
    cr_assert_eq(s.len, 11u);
    cr_assert_eq(memcmp(s.ptr, "hello\nworld", 11), 0);
    cr_assert_geq((const uint8_t *)s.ptr, o->mem, "strings are views into the file");
    cr_assert_leq((const uint8_t *)s.ptr + s.len, o->mem + o->n);
    cr_assert_eq(lm_gguf_get_str(g, "v.u8", &s), LM_STATUS_FORMAT);
    cr_assert_eq(lm_gguf_get_arr(g, "a.i32", LM_GGUF_I32, &arr), LM_STATUS_OK);
    cr_assert_eq(lm_gguf_get_arr(g, "a.i32", LM_GGUF_F32, &arr), LM_STATUS_FORMAT);
    cr_assert_eq(lm_gguf_get_arr(g, "a.i32", LM_GGUF_TYPE_COUNT, &arr), LM_STATUS_OK, "any element type");
    cr_assert_eq(lm_gguf_get_arr(g, "v.u8", LM_GGUF_U8, &arr), LM_STATUS_FORMAT);
    cr_assert_eq(lm_gguf_get_arr(g, "missing", LM_GGUF_U8, &arr), LM_STATUS_NOT_FOUND);

    /* numeric arrays of every element type */
    static const bool all[3] = {true, true, true};
    check_int_arr(g, "a.u8", LM_GGUF_U8, (const int64_t[]){0, 1, 255}, all);
    check_int_arr(g, "a.i8", LM_GGUF_I8, (const int64_t[]){-128, 0, 127}, all);
    check_int_arr(g, "a.u16", LM_GGUF_U16, (const int64_t[]){0, 1, 65535}, all);
    check_int_arr(g, "a.i16", LM_GGUF_I16, (const int64_t[]){-32768, 0, 32767}, all);
    check_int_arr(g, "a.u32", LM_GGUF_U32, (const int64_t[]){0, 1, UINT32_MAX}, all);
    check_int_arr(g, "a.i32", LM_GGUF_I32, (const int64_t[]){INT32_MIN, 0, INT32_MAX}, all);
    check_int_arr(g, "a.bool", LM_GGUF_BOOL, (const int64_t[]){1, 0, 1}, all);
    check_int_arr(g, "a.u64", LM_GGUF_U64, (const int64_t[]){0, INT64_MAX, 0}, (const bool[]){true, true, false});
    check_int_arr(g, "a.i64", LM_GGUF_I64, (const int64_t[]){INT64_MIN, -1, INT64_MAX}, all);
    static const char *const float_keys[] = {"a.f32", "a.f64"};
    static const double float_want[2][3] = {{-0.0, 1.25, (double)3e38f}, {-1e-300, 0.5, 1e300}};
    for (int k = 0; k < 2; k++) {
        const lm_gguf_value *v = val(g, float_keys[k], LM_GGUF_ARRAY);
        cr_assert_eq(v->arr.type, k ? LM_GGUF_F64 : LM_GGUF_F32);
        cr_assert_eq(v->arr.n, 3u);
        for (uint64_t i = 0; i < 3; i++) {
            double d;
            cr_assert(lm_gguf_arr_float(v, i, &d));
            cr_assert_eq(d, float_want[k][i], "%s[%llu]", float_keys[k], (unsigned long long)i);
            cr_assert_eq(signbit(d) != 0, signbit(float_want[k][i]) != 0);
        }
        int64_t x;
        cr_assert_not(lm_gguf_arr_int(v, 0, &x), "floats are not integers");
    }
    {
        double d;
        cr_assert(lm_gguf_arr_float(val(g, "a.i16", LM_GGUF_ARRAY), 0, &d));
        cr_assert_eq(d, -32768.0);
        cr_assert(lm_gguf_arr_float(val(g, "a.u64", LM_GGUF_ARRAY), 2, &d), "u64 beyond INT64_MAX is still a number");
        cr_assert_eq(d, 18446744073709551616.0);
        cr_assert(lm_gguf_arr_float(val(g, "a.bool", LM_GGUF_ARRAY), 0, &d));
        cr_assert_eq(d, 1.0);
    }

    /* strings, empty arrays, nesting */
    const lm_gguf_value *v = val(g, "a.str", LM_GGUF_ARRAY);
    cr_assert_eq(v->arr.type, LM_GGUF_STRING);
    cr_assert_eq(v->arr.n, 3u);
    cr_assert(lm_gguf_str_eq(v->arr.strs[0], "a"));
    cr_assert(lm_gguf_str_eq(v->arr.strs[1], ""));
    cr_assert(lm_gguf_str_eq(v->arr.strs[2], "ccc"));
    double d;
    cr_assert_not(lm_gguf_arr_float(v, 0, &d), "strings are not numbers");
    v = val(g, "a.empty", LM_GGUF_ARRAY);
    cr_assert_eq(v->arr.type, LM_GGUF_I32);
    cr_assert_eq(v->arr.n, 0u);
    cr_assert_not(lm_gguf_arr_float(v, 0, &d));
    v = val(g, "a.empty_str", LM_GGUF_ARRAY);
    cr_assert_eq(v->arr.type, LM_GGUF_STRING);
    cr_assert_eq(v->arr.n, 0u);
    v = val(g, "a.empty_arr", LM_GGUF_ARRAY);
    cr_assert_eq(v->arr.type, LM_GGUF_ARRAY);
    cr_assert_eq(v->arr.n, 0u);
    v = val(g, "n.i32", LM_GGUF_ARRAY);
    cr_assert_eq(v->arr.type, LM_GGUF_ARRAY);
    cr_assert_eq(v->arr.n, 3u);
    cr_assert_not_null(v->arr.elems);
    static const int64_t n_want[3][3] = {{1, 2, 3}, {0}, {4}};
    static const uint64_t n_len[3] = {3, 0, 1};
    for (int i = 0; i < 3; i++) {
        const lm_gguf_value *e = &v->arr.elems[i];
        cr_assert_eq(e->type, LM_GGUF_ARRAY);
        cr_assert_eq(e->arr.type, LM_GGUF_I32);
        cr_assert_eq(e->arr.n, n_len[i]);
        for (uint64_t j = 0; j < n_len[i]; j++) {
            int64_t x;
            cr_assert(lm_gguf_arr_int(e, j, &x));
            cr_assert_eq(x, n_want[i][j]);
        }
    }
    v = val(g, "n.str", LM_GGUF_ARRAY);
    cr_assert_eq(v->arr.n, 2u);
    cr_assert_eq(v->arr.elems[0].arr.type, LM_GGUF_STRING);
    cr_assert_eq(v->arr.elems[0].arr.n, 1u);
    cr_assert(lm_gguf_str_eq(v->arr.elems[0].arr.strs[0], "x"));
    cr_assert_eq(v->arr.elems[1].arr.n, 2u);
    cr_assert(lm_gguf_str_eq(v->arr.elems[1].arr.strs[0], "y"));
    cr_assert(lm_gguf_str_eq(v->arr.elems[1].arr.strs[1], "zz"));
    v = val(g, "n.deep", LM_GGUF_ARRAY);
    cr_assert_eq(v->arr.n, 1u);
    cr_assert_eq(v->arr.elems[0].arr.type, LM_GGUF_ARRAY);
    const lm_gguf_value *inner = &v->arr.elems[0].arr.elems[0];
    cr_assert_eq(inner->arr.type, LM_GGUF_U8);
    cr_assert_eq(inner->arr.n, 1u);
    int64_t x;
    cr_assert(lm_gguf_arr_int(inner, 0, &x));
    cr_assert_eq(x, 9);

    /* tensors: order, infos, offsets (the writer pads each to 32 bytes), data */
    uint64_t off = 0;
    cr_assert_eq(lm_gguf_data_offset(g) % 32, 0u);
    cr_assert_leq(lm_gguf_data_offset(g), o->n);
    for (size_t i = 0; i < N_RT; i++) {
        const rt_tensor *w = &rt_tensors[i];
        const lm_gguf_tensor *t = lm_gguf_tensor_at(g, (int64_t)i);
        cr_assert_not_null(t);
        cr_assert_str_eq(t->name, w->name);
        cr_assert_eq(lm_gguf_find_tensor(g, w->name), t);
        cr_assert_eq(t->n_dims, w->n_dims);
        for (int dd = 0; dd < LM_GGUF_MAX_DIMS; dd++)
            cr_assert_eq(t->ne[dd], dd < w->n_dims ? w->ne[dd] : 1, "%s ne[%d] = %lld", w->name, dd, (long long)t->ne[dd]);
        cr_assert_eq((uint32_t)t->type, w->type);
        cr_assert_eq(t->size, w->size, "%s size %llu", w->name, (unsigned long long)t->size);
        cr_assert_eq(t->offset, off, "%s offset %llu, want %llu", w->name, (unsigned long long)t->offset,
                     (unsigned long long)off);
        cr_assert_eq((const uint8_t *)t->data, o->mem + lm_gguf_data_offset(g) + off);
        uint8_t *want = rt_data(i, w->size);
        cr_assert_eq(memcmp(t->data, want, w->size), 0, "%s data bytes differ", w->name);
        free(want);
        off += (w->size + 31) / 32 * 32;
    }
    cr_assert_null(lm_gguf_tensor_at(g, (int64_t)N_RT));
    cr_assert_null(lm_gguf_tensor_at(g, -1));
    cr_assert_null(lm_gguf_find_tensor(g, "t.f3"));
    cr_assert_null(lm_gguf_find_tensor(g, ""));
}

Test(gguf, round_trip) {
    tu_buf b = {0};
    build_round_trip(&b);
    owned o = PARSE_OK(&b);
    check_round_trip(&o);
    owned_free(&o);
    tu_buf_free(&b);
}

Test(gguf, round_trip_via_file) {
    tu_buf b = {0};
    build_round_trip(&b);
    const char *path = tu_tmp_path("round_trip.gguf");
    cr_assert(tu_write_file(path, b.p, b.n));
    for (int mm = 0; mm < 2; mm++) {
        lm_gguf *g = NULL;
        lm_status st = lm_gguf_open(path, mm == 1, &g);
        cr_assert_eq(st, LM_STATUS_OK, "open (mmap %d): %s", mm, lm_last_error());
        owned o = {g, (uint8_t *)lm_gguf_base(g), lm_gguf_file_size(g)};
        cr_assert_eq(o.n, b.n);
        check_round_trip(&o);
        lm_gguf_close(g);
    }
    unlink(path);
    tu_buf_free(&b);
}

Test(gguf, value_str) {
    tu_buf b = {0};
    build_round_trip(&b);
    owned o = PARSE_OK(&b);
    static const struct { const char *key, *want; } cases[] = {
        {"v.u8", "171"},
        {"v.i8", "-5"},
        {"v.u64", "18446744073709551615"},
        {"v.i64", "-9223372036854775808"},
        {"v.f32", "-1.5"},
        {"v.true", "true"},
        {"v.false", "false"},
        {"v.str", "hello\\nworld"},
        {"v.empty", ""},
        {"a.i32", "[i32 x 3] -2147483648, 0, 2147483647"},
        {"a.u64", "[u64 x 3] 0, 9223372036854775807, 18446744073709551615"},
        {"a.i64", "[i64 x 3] -9223372036854775808, -1, 9223372036854775807"},
        {"a.u8", "[u8 x 3] 0, 1, 255"},
        {"a.f32", "[f32 x 3] -0, 1.25, 3e+38"},
        {"a.bool", "[bool x 3] true, false, true"},
        {"a.str", "[string x 3] 'a', '', 'ccc'"},
        {"a.empty", "[i32 x 0] "},
        {"n.i32", "[array x 3] [array x 3], [array x 0], [array x 1]"},
    };
    char buf[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lm_gguf_value_str(&lm_gguf_find(o.g, cases[i].key)->value, buf, sizeof buf);
        cr_assert_str_eq(buf, cases[i].want, "%s rendered as '%s'", cases[i].key, buf);
    }
    /* every value into every small capacity: always terminated, never past the buffer
     * (exact-size heap buffers, so ASan sees an overrun) */
    for (int64_t k = 0; k < lm_gguf_n_kv(o.g); k++) {
        for (size_t cap = 1; cap < 48; cap++) {
            char *small = malloc(cap);
            lm_gguf_value_str(&lm_gguf_kv_at(o.g, k)->value, small, cap);
            cr_assert_lt(strnlen(small, cap), cap, "value %lld, cap %zu: not terminated", (long long)k, cap);
            free(small);
        }
    }
    owned_free(&o);
    tu_buf_free(&b);
}

/* general.alignment other than 32, with a layout where 32-byte padding would be wrong */
Test(gguf, custom_alignment) {
    static const uint32_t aligns[] = {64, 4096};
    for (size_t k = 0; k < 2; k++) {
        const uint32_t al = aligns[k];
        for (size_t filler = 0; filler < al; filler++) {
            tu_buf b = {0};
            phead(&b, 3, 2, 2);
            pkey(&b, "general.alignment", LM_GGUF_U32);
            p32(&b, al);
            pkey(&b, "filler", LM_GGUF_STRING);
            tu_buf f = {0};
            for (size_t i = 0; i < filler; i++) p8(&f, 'x');
            pstrn(&b, f.p ? (const char *)f.p : "", filler);
            tu_buf_free(&f);
            ptinfo(&b, "x", 1, 1, (const uint64_t[]){8}, LM_F32, 0);
            ptinfo(&b, "y", 1, 1, (const uint64_t[]){16}, LM_F32, al);
            const size_t header_end = b.n;
            if (header_end % al == 0 || header_end % al > 32) { /* want padding to 32 != padding to al */
                tu_buf_free(&b);
                continue;
            }
            ppad(&b, al);
            const size_t data_start = b.n;
            for (size_t i = 0; i < al + 64; i++) p8(&b, (uint8_t)i);
            owned o = PARSE_OK(&b);
            cr_assert_eq(lm_gguf_alignment(o.g), al);
            cr_assert_eq(lm_gguf_data_offset(o.g), data_start);
            cr_assert_eq((const uint8_t *)lm_gguf_find_tensor(o.g, "x")->data, o.mem + data_start);
            cr_assert_eq((const uint8_t *)lm_gguf_find_tensor(o.g, "y")->data, o.mem + data_start + al);
            cr_assert_eq(((const uint8_t *)lm_gguf_find_tensor(o.g, "y")->data)[0], (uint8_t)al);
            owned_free(&o);
            /* the same file without its last byte no longer holds tensor y */
            b.n--;
            EXPECT_BAD(&b, LM_STATUS_FORMAT, "'y'");
            tu_buf_free(&b);
            break;
        }
    }
    /* alignment 1: the data section starts right after the infos and any offset is aligned as far
     * as general.alignment goes, but a tensor must still sit at a file offset its type's blocks
     * can be read from in place (4 for f32, 2 for f16 and the f16-scaled blocks) */
    size_t filler = 0;
    for (int pass = 0; pass < 2; pass++) {
        static const struct { uint64_t x_off, y_off; uint32_t y_type; const char *bad; } cases[] = {
            {3, 37, LM_F16, NULL},     /* x at file offset = 0 mod 4, y even: fine */
            {3, 37, LM_Q8_0, NULL},
            {1, 37, LM_F16, "aligned to 4 bytes as f32 requires"},
            {3, 36, LM_F16, "aligned to 2 bytes as f16 requires"},
            {3, 36, LM_Q8_0, "aligned to 2 bytes as q8_0 requires"},
            {3, 36, LM_BF16, "aligned to 2 bytes as bf16 requires"},
        };
        for (size_t c = 0; c < (pass ? sizeof cases / sizeof cases[0] : 1); c++) {
            tu_buf b = {0};
            phead(&b, 3, 2, 2);
            pkey(&b, "general.alignment", LM_GGUF_U32);
            p32(&b, 1);
            pkey(&b, "filler", LM_GGUF_STRING);
            pstrn(&b, "xxxxxxxx", filler);
            ptinfo(&b, "x", 1, 1, (const uint64_t[]){8}, LM_F32, cases[c].x_off);
            ptinfo(&b, "y", 1, 1, (const uint64_t[]){32}, cases[c].y_type, cases[c].y_off);
            const size_t data_start = b.n;
            if (pass == 0) { /* choose the filler so that the data section starts at 1 mod 4 */
                filler = (1 + 4 - data_start % 4) % 4;
                tu_buf_free(&b);
                break;
            }
            cr_assert_eq(data_start % 4, 1u);
            for (size_t i = 0; i < 37 + 68; i++) p8(&b, (uint8_t)i);
            if (cases[c].bad) {
                EXPECT_BAD(&b, LM_STATUS_FORMAT, cases[c].bad);
            } else {
                owned o = PARSE_OK(&b);
                cr_assert_eq(lm_gguf_data_offset(o.g), data_start);
                cr_assert_eq((const uint8_t *)lm_gguf_find_tensor(o.g, "x")->data, o.mem + data_start + 3);
                cr_assert_eq((const uint8_t *)lm_gguf_find_tensor(o.g, "y")->data, o.mem + data_start + 37);
                owned_free(&o);
            }
            tu_buf_free(&b);
        }
    }
}

/* ---------------------------------------------------------------------------------------- */
/* the real model                                                                           */

Test(gguf, real_model, .timeout = 120) {
    const char *path = tu_real_model_path();
    if (!path) cr_skip_test("Gemma 3 270M GGUF not found (tools/fetch_model.sh)");
    lm_gguf *g = NULL, *h = NULL;
    cr_assert_eq(lm_gguf_open(path, true, &g), LM_STATUS_OK, "%s", lm_last_error());
    cr_assert_eq(lm_gguf_version(g), 3u);
    cr_assert_eq(lm_gguf_n_tensors(g), 236);
    cr_assert_eq(lm_gguf_n_kv(g), 33);
    lm_gguf_str arch;
    cr_assert_eq(lm_gguf_get_str(g, "general.architecture", &arch), LM_STATUS_OK);
    cr_assert(lm_gguf_str_eq(arch, "gemma3"));
    uint32_t u;
    cr_assert_eq(lm_gguf_get_u32(g, "gemma3.block_count", &u), LM_STATUS_OK);
    cr_assert_eq(u, 18u);
    cr_assert_eq(lm_gguf_get_u32(g, "gemma3.embedding_length", &u), LM_STATUS_OK);
    cr_assert_eq(u, 640u);
    float eps;
    cr_assert_eq(lm_gguf_get_f32(g, "gemma3.attention.layer_norm_rms_epsilon", &eps), LM_STATUS_OK);
    cr_assert_eq(eps, 1e-6f);
    const lm_gguf_value *toks, *scores;
    cr_assert_eq(lm_gguf_get_arr(g, "tokenizer.ggml.tokens", LM_GGUF_STRING, &toks), LM_STATUS_OK);
    cr_assert_eq(toks->arr.n, 262144u);
    cr_assert(lm_gguf_str_eq(toks->arr.strs[2], "<bos>"), "token 2 is '%.*s'", (int)toks->arr.strs[2].len,
              toks->arr.strs[2].ptr);
    cr_assert_eq(lm_gguf_get_arr(g, "tokenizer.ggml.scores", LM_GGUF_F32, &scores), LM_STATUS_OK);
    cr_assert_eq(scores->arr.n, 262144u);

    int hist[LM_DTYPE_COUNT] = {0};
    const uint8_t *base = lm_gguf_base(g);
    for (int64_t i = 0; i < lm_gguf_n_tensors(g); i++) {
        const lm_gguf_tensor *t = lm_gguf_tensor_at(g, i);
        cr_assert_lt((unsigned)t->type, (unsigned)LM_DTYPE_COUNT);
        hist[t->type]++;
        cr_assert_eq(t->offset % lm_gguf_alignment(g), 0u);
        cr_assert_eq((const uint8_t *)t->data, base + lm_gguf_data_offset(g) + t->offset);
        cr_assert_leq((const uint8_t *)t->data + t->size, base + lm_gguf_file_size(g));
        int64_t nel = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
        cr_assert_eq(t->size, lm_row_bytes(t->type, nel));
    }
    cr_assert_eq(hist[LM_F32], 109);
    cr_assert_eq(hist[LM_Q5_0], 81);
    cr_assert_eq(hist[LM_Q4_K], 27);
    cr_assert_eq(hist[LM_Q8_0], 10);
    cr_assert_eq(hist[LM_Q6_K], 9);
    const lm_gguf_tensor *emb = lm_gguf_find_tensor(g, "token_embd.weight");
    cr_assert_not_null(emb);
    cr_assert_eq(emb->n_dims, 2);
    cr_assert_eq(emb->ne[0], 640);
    cr_assert_eq(emb->ne[1], 262144);
    cr_assert_eq(emb->type, LM_Q8_0);
    cr_assert_not_null(lm_gguf_find_tensor(g, "blk.17.ffn_down.weight"));
    cr_assert_null(lm_gguf_find_tensor(g, "blk.18.ffn_down.weight"));
    char buf[512];
    for (int64_t i = 0; i < lm_gguf_n_kv(g); i++) lm_gguf_value_str(&lm_gguf_kv_at(g, i)->value, buf, sizeof buf);

    /* read instead of mapped: the same infos and bytes */
    cr_assert_eq(lm_gguf_open(path, false, &h), LM_STATUS_OK, "%s", lm_last_error());
    cr_assert_eq(lm_gguf_n_tensors(h), 236);
    cr_assert_eq(lm_gguf_data_offset(h), lm_gguf_data_offset(g));
    for (int64_t i = 0; i < 236; i++) {
        const lm_gguf_tensor *a = lm_gguf_tensor_at(g, i), *c = lm_gguf_tensor_at(h, i);
        cr_assert_str_eq(a->name, c->name);
        cr_assert_eq(a->offset, c->offset);
        cr_assert_eq(a->size, c->size);
        size_t cmp = a->size < 65536 ? a->size : 65536;
        cr_assert_eq(memcmp(a->data, c->data, cmp), 0, "%s differs between mmap and read", a->name);
    }
    lm_gguf_close(h);
    lm_gguf_close(g);
}

/* ---------------------------------------------------------------------------------------- */
/* header                                                                                   */

Test(gguf_bad, header) {
    BAD_CASE((void)b, LM_STATUS_FORMAT, "too short");        /* empty */
    BAD_CASE(tu_put(b, "GGU", 3), LM_STATUS_FORMAT, "too short");
    for (size_t extra = 0; extra < 20; extra++) /* magic + a partial header */
        BAD_CASE((p32(b, MAGIC), p32(b, 3), p64(b, 0), p64(b, 0), b->n = 4 + extra), LM_STATUS_FORMAT,
                 "truncated header");
    BAD_CASE((p32(b, 0x4c4d4747u), p32(b, 3), p64(b, 0), p64(b, 0)), LM_STATUS_FORMAT, "bad magic"); /* "GGML" */
    BAD_CASE((p32(b, 0), p32(b, 3), p64(b, 0), p64(b, 0)), LM_STATUS_FORMAT, "magic");
    BAD_CASE(tu_put(b, "FUGG\3\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 24), LM_STATUS_FORMAT, "magic");
    static const uint32_t bad_versions[] = {0, 1, 4, 0x03000000u, UINT32_MAX};
    for (size_t i = 0; i < sizeof bad_versions / sizeof bad_versions[0]; i++)
        BAD_CASE(phead(b, bad_versions[i], 0, 0), LM_STATUS_UNSUPPORTED, "version");
    GOOD_CASE(phead(b, 3, 0, 0));
    GOOD_CASE(phead(b, 2, 0, 0));
}

Test(gguf_bad, absurd_counts) {
    static const uint64_t huge[] = {(uint64_t)1 << 62, UINT64_MAX, (uint64_t)1 << 32, 1000};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        BAD_CASE((phead(b, 3, 0, huge[i]), pkey(b, "k", LM_GGUF_U8), p8(b, 1)), LM_STATUS_FORMAT, "metadata entries");
        BAD_CASE((phead(b, 3, huge[i], 1), pkey(b, "k", LM_GGUF_U8), p8(b, 1)), LM_STATUS_FORMAT, "tensors");
    }
    /* a count the file could hold by the header bound but not after the metadata */
    BAD_CASE((phead(b, 3, 3, 1), pkey(b, "k", LM_GGUF_STRING), pstrn(b, "0123456789012345678901234567890123456789"
                                                                        "0123456789012345678901234567890123456789",
                                                                     80)),
             LM_STATUS_FORMAT, "tensors");
    /* one more kv than present */
    BAD_CASE((phead(b, 3, 0, 2), pkey(b, "k", LM_GGUF_U32), p32(b, 1), p64(b, 0), p8(b, 0)), LM_STATUS_FORMAT, "");
    GOOD_CASE((phead(b, 3, 0, 1), pkey(b, "k", LM_GGUF_U8), p8(b, 1)));
}

/* ---------------------------------------------------------------------------------------- */
/* metadata                                                                                 */

Test(gguf_bad, value_types) {
    static const uint32_t bad[] = {13, 14, 100, 0x80000000u, UINT32_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        BAD_CASE(one_kv(b, "k", bad[i], "\0\0\0\0\0\0\0\0", 8), LM_STATUS_FORMAT, "unknown value type");
        uint8_t arr[12] = {0}; /* element type, count 0 */
        memcpy(arr, &bad[i], 4);
        BAD_CASE(one_kv(b, "k", LM_GGUF_ARRAY, arr, 12), LM_STATUS_FORMAT, "unknown array element type");
    }
    for (uint32_t t = 0; t < LM_GGUF_TYPE_COUNT; t++) { /* an empty array of every element type is fine */
        uint8_t arr[12] = {0};
        memcpy(arr, &t, 4);
        GOOD_CASE(one_kv(b, "k", LM_GGUF_ARRAY, arr, 12));
    }
}

Test(gguf_bad, bool_values) {
    GOOD_CASE(one_kv(b, "k", LM_GGUF_BOOL, "\1", 1));
    GOOD_CASE(one_kv(b, "k", LM_GGUF_BOOL, "\0", 1));
    BAD_CASE(one_kv(b, "k", LM_GGUF_BOOL, "\2", 1), LM_STATUS_FORMAT, "bool value 2");
    BAD_CASE(one_kv(b, "k", LM_GGUF_BOOL, "\377", 1), LM_STATUS_FORMAT, "bool value 255");
    const uint8_t good[] = {LM_GGUF_BOOL, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1};
    const uint8_t bad[] = {LM_GGUF_BOOL, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2};
    GOOD_CASE(one_kv(b, "k", LM_GGUF_ARRAY, good, sizeof good));
    BAD_CASE(one_kv(b, "k", LM_GGUF_ARRAY, bad, sizeof bad), LM_STATUS_FORMAT, "bool array element 2");
}

Test(gguf_bad, truncated_scalars) {
    static const struct { uint32_t type; size_t size; } s[] = {
        {LM_GGUF_U8, 1}, {LM_GGUF_U16, 2}, {LM_GGUF_I16, 2}, {LM_GGUF_U32, 4}, {LM_GGUF_F32, 4},
        {LM_GGUF_U64, 8}, {LM_GGUF_I64, 8}, {LM_GGUF_F64, 8}, {LM_GGUF_BOOL, 1},
    };
    const uint8_t zeros[8] = {0};
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
        GOOD_CASE(one_kv(b, "k", s[i].type, zeros, s[i].size));
        for (size_t n = 0; n < s[i].size; n++)
            BAD_CASE(one_kv(b, "k", s[i].type, zeros, n), LM_STATUS_FORMAT, "truncated");
    }
    BAD_CASE((phead(b, 3, 0, 1), pstr(b, "a.long.key.name"), p8(b, 0)), LM_STATUS_FORMAT, "truncated value type");
}

Test(gguf_bad, absurd_lengths) {
    static const uint64_t huge[] = {(uint64_t)1 << 62, UINT64_MAX, (uint64_t)1 << 31, ((uint64_t)1 << 30) + 1};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        const uint64_t n = huge[i];
        /* string value, key and tensor name lengths */
        BAD_CASE((phead(b, 3, 0, 1), pkey(b, "k", LM_GGUF_STRING), p64(b, n), tu_put(b, "abcdefgh", 8)), LM_STATUS_FORMAT,
                 "length");
        BAD_CASE((phead(b, 3, 0, 1), p64(b, n), tu_put(b, "abcdefghijklm", 13)), LM_STATUS_FORMAT, "metadata key");
        BAD_CASE((phead(b, 3, 1, 0), p64(b, n), tu_put(b, "abcdefghijklmnopqrstuvwxyz0123456789", 36)), LM_STATUS_FORMAT,
                 "tensor name");
        /* array counts, for fixed-size, string and array elements */
        static const uint32_t ets[] = {LM_GGUF_U8, LM_GGUF_U64, LM_GGUF_BOOL, LM_GGUF_STRING, LM_GGUF_ARRAY};
        for (size_t e = 0; e < sizeof ets / sizeof ets[0]; e++) {
            tu_buf pl = {0};
            p32(&pl, ets[e]);
            p64(&pl, n);
            for (int k = 0; k < 8; k++) p8(&pl, 0); /* room for one u64, one empty string */
            BAD_CASE(one_kv(b, "k", LM_GGUF_ARRAY, pl.p, pl.n), LM_STATUS_FORMAT, "cannot fit");
            tu_buf_free(&pl);
        }
    }
    /* one byte longer than what is left */
    GOOD_CASE((phead(b, 3, 0, 1), pkey(b, "k", LM_GGUF_STRING), p64(b, 8), tu_put(b, "abcdefgh", 8)));
    BAD_CASE((phead(b, 3, 0, 1), pkey(b, "k", LM_GGUF_STRING), p64(b, 9), tu_put(b, "abcdefgh", 8)), LM_STATUS_FORMAT,
             "has length 9 but only 8 bytes remain");
    BAD_CASE((phead(b, 3, 0, 1), p64(b, 14), tu_put(b, "abcdefghijklm", 13)), LM_STATUS_FORMAT, "metadata key");
    GOOD_CASE((phead(b, 3, 0, 1), p64(b, 9), tu_put(b, "abcdefghi\0\0\0\0\1", 14)));
    const uint8_t u32x2[] = {LM_GGUF_U32, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0};
    const uint8_t u32x3[] = {LM_GGUF_U32, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0};
    GOOD_CASE(one_kv(b, "k", LM_GGUF_ARRAY, u32x2, sizeof u32x2));
    BAD_CASE(one_kv(b, "k", LM_GGUF_ARRAY, u32x3, sizeof u32x3), LM_STATUS_FORMAT, "array of 3 u32 elements");
    /* a nested count that fits the bytes left but not alongside its siblings: [[u8 x 44], ?, ?]
     * followed by 44 bytes; the two sibling arrays need 24 of them, so at most 20 are its own */
    tu_buf pl = {0};
    p32(&pl, LM_GGUF_ARRAY);
    p64(&pl, 3);
    p32(&pl, LM_GGUF_U8);
    p64(&pl, 44);
    for (int k = 0; k < 44; k++) p8(&pl, 0);
    BAD_CASE(one_kv(b, "k", LM_GGUF_ARRAY, pl.p, pl.n), LM_STATUS_FORMAT, "array of 44 u8 elements cannot fit in the 20");
    tu_buf_free(&pl);
    p32(&pl, LM_GGUF_ARRAY); /* [[u8 x 20], [], []]: the same bytes, valid */
    p64(&pl, 3);
    p32(&pl, LM_GGUF_U8);
    p64(&pl, 20);
    for (int k = 0; k < 20; k++) p8(&pl, 0);
    for (int k = 0; k < 2; k++) {
        p32(&pl, LM_GGUF_U8);
        p64(&pl, 0);
    }
    BAD_CASE(one_kv(b, "k", LM_GGUF_ARRAY, pl.p, pl.n - 1), LM_STATUS_FORMAT, "cannot fit");
    GOOD_CASE(one_kv(b, "k", LM_GGUF_ARRAY, pl.p, pl.n));
    tu_buf_free(&pl);
}

static void nested(tu_buf *pl, int levels) {
    for (int i = 0; i < levels; i++) {
        p32(pl, i + 1 < levels ? LM_GGUF_ARRAY : LM_GGUF_U8);
        p64(pl, 1);
    }
    p8(pl, 42);
}

Test(gguf_bad, nesting_depth) {
    tu_buf pl = {0};
    nested(&pl, LM_GGUF_MAX_DEPTH);
    GOOD_CASE(one_kv(b, "k", LM_GGUF_ARRAY, pl.p, pl.n));
    tu_buf_free(&pl);
    for (int levels = LM_GGUF_MAX_DEPTH + 1; levels < LM_GGUF_MAX_DEPTH + 40; levels += 7) {
        nested(&pl, levels);
        BAD_CASE(one_kv(b, "k", LM_GGUF_ARRAY, pl.p, pl.n), LM_STATUS_FORMAT, "nested deeper");
        tu_buf_free(&pl);
    }
}

Test(gguf_bad, duplicate_keys) {
    BAD_CASE((phead(b, 3, 0, 2), pkey(b, "a.b", LM_GGUF_U8), p8(b, 1), pkey(b, "a.b", LM_GGUF_U8), p8(b, 1)),
             LM_STATUS_FORMAT, "duplicate metadata key 'a.b'");
    BAD_CASE((phead(b, 3, 0, 3), pkey(b, "x", LM_GGUF_U8), p8(b, 1), pkey(b, "y", LM_GGUF_STRING), pstr(b, "v"),
              pkey(b, "x", LM_GGUF_F32), p32(b, 0)),
             LM_STATUS_FORMAT, "duplicate metadata key 'x'");
    BAD_CASE((phead(b, 3, 0, 2), pkey(b, "", LM_GGUF_U8), p8(b, 1), pkey(b, "", LM_GGUF_U8), p8(b, 1)), LM_STATUS_FORMAT,
             "duplicate");
    /* prefixes and case differences are distinct keys */
    GOOD_CASE((phead(b, 3, 0, 4), pkey(b, "a.b", LM_GGUF_U8), p8(b, 1), pkey(b, "a.bc", LM_GGUF_U8), p8(b, 1),
               pkey(b, "A.b", LM_GGUF_U8), p8(b, 1), pkey(b, "a", LM_GGUF_U8), p8(b, 1)));
}

/* Many entries: duplicate detection must not be quadratic (a pairwise scan over 300k keys takes
 * minutes), and the last key duplicating the first is still found. */
Test(gguf_bad, many_keys_and_tensors, .timeout = 30) {
    const uint64_t n = 300000;
    for (int dup = 0; dup < 2; dup++) {
        tu_buf b = {0};
        phead(&b, 3, 0, n);
        char key[32];
        for (uint64_t i = 0; i < n; i++) {
            snprintf(key, sizeof key, "k%llu", (unsigned long long)(dup && i == n - 1 ? 0 : i));
            pkey(&b, key, LM_GGUF_U8);
            p8(&b, (uint8_t)i);
        }
        if (dup) {
            EXPECT_BAD(&b, LM_STATUS_FORMAT, "duplicate metadata key 'k0'");
        } else {
            owned o = PARSE_OK(&b);
            cr_assert_eq(lm_gguf_n_kv(o.g), (int64_t)n);
            owned_free(&o);
        }
        tu_buf_free(&b);
    }
    const uint64_t nt = 100000;
    for (int dup = 0; dup < 2; dup++) {
        tu_buf b = {0};
        phead(&b, 3, nt, 0);
        char name[32];
        for (uint64_t i = 0; i < nt; i++) {
            snprintf(name, sizeof name, "t%llu", (unsigned long long)(dup && i == nt - 1 ? 7 : i));
            ptinfo(&b, name, strlen(name), 1, (const uint64_t[]){8}, LM_F32, i * 32);
        }
        ppad(&b, 32);
        for (uint64_t i = 0; i < nt; i++) tu_put(&b, "0123456789abcdef0123456789abcdef", 32);
        if (dup) {
            EXPECT_BAD(&b, LM_STATUS_FORMAT, "duplicate tensor name 't7'");
        } else {
            owned o = PARSE_OK(&b);
            cr_assert_eq(lm_gguf_n_tensors(o.g), (int64_t)nt);
            owned_free(&o);
        }
        tu_buf_free(&b);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* tensor infos                                                                             */

#define T1(name_, nd_, ne_, type_, off_)                                                          \
    (const tinfo[]) {                                                                            \
        { name_, 0, nd_, ne_, type_, off_ }                                                        \
    }
#define NE(...) {__VA_ARGS__}

Test(gguf_bad, tensor_names) {
    char longname[LM_GGUF_MAX_NAME + 1];
    memset(longname, 'n', sizeof longname);
    longname[LM_GGUF_MAX_NAME] = 0;
    GOOD_CASE(tensor_file(b, (const tinfo[]){{"a", 0, 1, {8}, LM_F32, 0}}, 1, 32, 0));
    GOOD_CASE(tensor_file(b, (const tinfo[]){{longname, LM_GGUF_MAX_NAME - 1, 1, {8}, LM_F32, 0}}, 1, 32, 0));
    BAD_CASE(tensor_file(b, (const tinfo[]){{longname, LM_GGUF_MAX_NAME, 1, {8}, LM_F32, 0}}, 1, 32, 0),
             LM_STATUS_FORMAT, "name of 256 bytes");
    BAD_CASE((phead(b, 3, 1, 0), ptinfo(b, "", 0, 1, (const uint64_t[]){8}, LM_F32, 0), ppad(b, 32),
              tu_put(b, longname, 32)),
             LM_STATUS_FORMAT, "name of 0 bytes");
    BAD_CASE(tensor_file(b, (const tinfo[]){{"ab\0cd", 5, 1, {8}, LM_F32, 0}}, 1, 32, 0), LM_STATUS_FORMAT, "NUL");
    BAD_CASE(tensor_file(b, (const tinfo[]){{"ab\0", 3, 1, {8}, LM_F32, 0}}, 1, 32, 0), LM_STATUS_FORMAT, "NUL");
    BAD_CASE(tensor_file(b, ((const tinfo[]){{"w", 0, 1, {8}, LM_F32, 0}, {"w", 0, 1, {8}, LM_F32, 32}}), 2, 64, 0),
             LM_STATUS_FORMAT, "duplicate tensor name 'w'");
    GOOD_CASE(tensor_file(b, ((const tinfo[]){{"w", 0, 1, {8}, LM_F32, 0}, {"w2", 0, 1, {8}, LM_F32, 32}}), 2, 64, 0));
}

Test(gguf_bad, tensor_dims) {
    GOOD_CASE(tensor_file(b, (const tinfo[]){{"t", 0, 4, {8, 1, 2, 1}, LM_F32, 0}}, 1, 64, 0));
    BAD_CASE(tensor_file(b, (const tinfo[]){{"t", 0, 0, {0}, LM_F32, 0}}, 1, 64, 0), LM_STATUS_FORMAT, "0 dimensions");
    BAD_CASE(tensor_file(b, (const tinfo[]){{"t", 0, 5, {8, 1, 1, 1, 1}, LM_F32, 0}}, 1, 64, 0), LM_STATUS_FORMAT,
             "5 dimensions");
    BAD_CASE((phead(b, 3, 1, 0), ptinfo(b, "t", 1, 0, NULL, LM_F32, 0), b->n -= 12, p32(b, UINT32_MAX), p64(b, 8),
              p32(b, 0), p64(b, 0)),
             LM_STATUS_FORMAT, "dimensions");
    static const uint64_t bad_shapes[][4] = {
        {0, 1, 1, 1},                                    /* zero */
        {8, 0, 1, 1},
        {(uint64_t)1 << 41, 1, 1, 1},                    /* one huge dimension */
        {8, UINT64_MAX, 1, 1},
        {(uint64_t)1 << 40, (uint64_t)1 << 40, 1, 1},    /* product overflows 64 bits */
        {(uint64_t)1 << 24, (uint64_t)1 << 24, (uint64_t)1 << 24, 1},
        {(uint64_t)1 << 30, (uint64_t)1 << 30, 1, 1},    /* product beyond 2^48 elements */
        {(uint64_t)1 << 16, (uint64_t)1 << 16, (uint64_t)1 << 16, (uint64_t)1 << 16},
    };
    for (size_t i = 0; i < sizeof bad_shapes / sizeof bad_shapes[0]; i++) {
        tinfo t = {"t", 0, 4, {0}, LM_F32, 0};
        memcpy(t.ne, bad_shapes[i], sizeof bad_shapes[i]);
        BAD_CASE(tensor_file(b, &t, 1, 64, 0), LM_STATUS_FORMAT, "invalid dimension");
    }
}

Test(gguf_bad, tensor_types) {
    /* not a type id at all, and types that exist but this build cannot load */
    static const struct { uint32_t type; const char *needle; } bad[] = {
        {99, "type 99"}, {UINT32_MAX, "type 4294967295"}, {4, "type 4"}, {40, "type 40"},
        {LM_Q8_1, "q8_1"}, {LM_Q8_K, "q8_K"}, {16, "type 16"}, {LM_I8, "i8"}, {LM_F64, "f64"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        BAD_CASE(tensor_file(b, (const tinfo[]){{"t", 0, 1, {256}, bad[i].type, 0}}, 1, 4096, 0), LM_STATUS_UNSUPPORTED,
                 bad[i].needle);
    /* rows must hold whole blocks */
    BAD_CASE(tensor_file(b, (const tinfo[]){{"t", 0, 2, {640, 2}, LM_Q4_K, 0}}, 1, 4096, 0), LM_STATUS_FORMAT,
             "not a multiple");
    BAD_CASE(tensor_file(b, (const tinfo[]){{"t", 0, 2, {33, 2}, LM_Q8_0, 0}}, 1, 4096, 0), LM_STATUS_FORMAT,
             "not a multiple");
    BAD_CASE(tensor_file(b, (const tinfo[]){{"t", 0, 2, {16, 32}, LM_Q4_0, 0}}, 1, 4096, 0), LM_STATUS_FORMAT,
             "not a multiple");
    GOOD_CASE(tensor_file(b, (const tinfo[]){{"t", 0, 2, {512, 2}, LM_Q4_K, 0}}, 1, 4 * 144, 0));
    GOOD_CASE(tensor_file(b, (const tinfo[]){{"t", 0, 2, {64, 2}, LM_Q8_0, 0}}, 1, 4 * 34, 0));
}

Test(gguf_bad, tensor_offsets) {
    /* F32 {8} = 32 bytes */
    GOOD_CASE(tensor_file(b, (const tinfo[]){{"t", 0, 1, {8}, LM_F32, 0}}, 1, 32, 0));
    GOOD_CASE(tensor_file(b, (const tinfo[]){{"t", 0, 1, {8}, LM_F32, 32}}, 1, 64, 0));
    BAD_CASE(tensor_file(b, (const tinfo[]){{"t", 0, 1, {8}, LM_F32, 16}}, 1, 64, 0), LM_STATUS_FORMAT, "not aligned");
    BAD_CASE(tensor_file(b, (const tinfo[]){{"t", 0, 1, {8}, LM_F32, 1}}, 1, 64, 0), LM_STATUS_FORMAT, "not aligned");
    BAD_CASE(tensor_file(b, (const tinfo[]){{"t", 0, 1, {8}, LM_F32, 32}}, 1, 32, 0), LM_STATUS_FORMAT, "outside");
    BAD_CASE(tensor_file(b, (const tinfo[]){{"t", 0, 1, {16}, LM_F32, 0}}, 1, 63, 0), LM_STATUS_FORMAT, "outside");
    BAD_CASE(tensor_file(b, (const tinfo[]){{"t", 0, 1, {8}, LM_F32, (uint64_t)1 << 40}}, 1, 32, 0), LM_STATUS_FORMAT,
             "outside");
    BAD_CASE(tensor_file(b, (const tinfo[]){{"t", 0, 1, {64}, LM_F32, UINT64_MAX - 31}}, 1, 32, 0), LM_STATUS_FORMAT,
             "outside"); /* offset + size wraps around */
    BAD_CASE(tensor_file(b, (const tinfo[]){{"t", 0, 1, {8}, LM_F32, 0}}, 1, 0, 0), LM_STATUS_FORMAT, "");
    /* the file ends inside the padding before the data section */
    BAD_CASE((phead(b, 3, 1, 0), ptinfo(b, "t", 1, 1, (const uint64_t[]){8}, LM_F32, 0)), LM_STATUS_FORMAT,
             "before the tensor data section");
    /* overlaps: partial, identical, contained; adjacent is fine */
    BAD_CASE(tensor_file(b, ((const tinfo[]){{"a", 0, 1, {16}, LM_F32, 0}, {"b", 0, 1, {8}, LM_F32, 32}}), 2, 128, 0),
             LM_STATUS_FORMAT, "overlap");
    BAD_CASE(tensor_file(b, ((const tinfo[]){{"a", 0, 1, {8}, LM_F32, 64}, {"b", 0, 1, {8}, LM_F32, 64}}), 2, 128, 0),
             LM_STATUS_FORMAT, "overlap");
    BAD_CASE(tensor_file(b, ((const tinfo[]){{"a", 0, 1, {8}, LM_F32, 32}, {"b", 0, 1, {8}, LM_F32, 64},
                                             {"c", 0, 1, {32}, LM_F32, 0}}),
                         3, 128, 0),
             LM_STATUS_FORMAT, "overlap");
    GOOD_CASE(tensor_file(b, ((const tinfo[]){{"a", 0, 1, {8}, LM_F32, 32}, {"b", 0, 1, {8}, LM_F32, 0},
                                              {"c", 0, 1, {16}, LM_F32, 64}}),
                          3, 128, 0));
}

Test(gguf_bad, alignment) {
    GOOD_CASE(tensor_file(b, (const tinfo[]){{"t", 0, 1, {8}, LM_F32, 0}}, 1, 32, 64));
    GOOD_CASE(tensor_file(b, (const tinfo[]){{"t", 0, 1, {8}, LM_F32, 0}}, 1, 32, 4));
    GOOD_CASE(tensor_file(b, (const tinfo[]){{"t", 0, 1, {16}, LM_F16, 0}}, 1, 32, 1));
    static const uint32_t bad[] = {0, 3, 48, 100, 1u << 21, UINT32_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        BAD_CASE(one_kv(b, "general.alignment", LM_GGUF_U32, &bad[i], 4), LM_STATUS_FORMAT, "general.alignment");
    /* the alignment applies to the offsets */
    BAD_CASE(tensor_file(b, (const tinfo[]){{"t", 0, 1, {8}, LM_F32, 32}}, 1, 96, 64), LM_STATUS_FORMAT, "not aligned");
    /* wrong types */
    const int32_t i32 = 32;
    const float f32 = 32.0f;
    BAD_CASE(one_kv(b, "general.alignment", LM_GGUF_I32, &i32, 4), LM_STATUS_FORMAT, "general.alignment");
    BAD_CASE(one_kv(b, "general.alignment", LM_GGUF_F32, &f32, 4), LM_STATUS_FORMAT, "general.alignment");
    BAD_CASE(one_kv(b, "general.alignment", LM_GGUF_STRING, "\2\0\0\0\0\0\0\0" "32", 10), LM_STATUS_FORMAT,
             "general.alignment");
    BAD_CASE(one_kv(b, "general.alignment", LM_GGUF_BOOL, "\1", 1), LM_STATUS_FORMAT, "general.alignment");
    const uint8_t arr[] = {LM_GGUF_U32, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0, 0};
    BAD_CASE(one_kv(b, "general.alignment", LM_GGUF_ARRAY, arr, sizeof arr), LM_STATUS_FORMAT, "general.alignment");
}

/* ---------------------------------------------------------------------------------------- */
/* truncation and random mutation                                                           */

Test(gguf_bad, every_truncation) {
    tu_buf b = {0};
    small_file(&b);
    owned o = PARSE_OK(&b);
    cr_assert_eq(lm_gguf_n_tensors(o.g), 2);
    const lm_gguf_tensor *last = lm_gguf_tensor_at(o.g, 1);
    cr_assert_eq(lm_gguf_data_offset(o.g) + last->offset + last->size, b.n, "the last tensor must end the file");
    owned_free(&o);
    for (size_t n = 0; n < b.n; n++) {
        uint8_t *m = dup_exact(b.p, n);
        lm_gguf *g = NULL;
        lm_clear_error();
        lm_status st = lm_gguf_parse(m, n, &g);
        cr_assert_eq(st, LM_STATUS_FORMAT, "prefix of %zu / %zu bytes: status '%s' (%s)", n, b.n, lm_status_string(st),
                     lm_last_error());
        cr_assert_null(g);
        cr_assert(lm_last_error()[0], "prefix of %zu bytes: no error message", n);
        free(m);
    }
    tu_buf_free(&b);
}

/* Apply 1..4 random edits to buf (n bytes, capacity cap); returns the new length. Positions favour
 * the header and metadata, where the parser's decisions are. */
static size_t mutate(tu_rng *r, uint8_t *buf, size_t n, size_t cap, size_t meta_end) {
    static const uint64_t interesting[] = {0, 1, 2, 3, 7, 8, 9, 12, 13, 31, 32, 33, 63, 64, 255, 256, 4096,
                                           (uint64_t)1 << 31, (uint64_t)1 << 32, (uint64_t)1 << 40,
                                           (uint64_t)1 << 48, (uint64_t)1 << 62, UINT64_MAX, UINT64_MAX - 31,
                                           (uint64_t)INT64_MAX};
    const int edits = (int)tu_range(r, 1, 4);
    for (int e = 0; e < edits && n > 0; e++) {
        const size_t span = (tu_next(r) & 1) && meta_end < n ? meta_end : n;
        const size_t pos = (size_t)tu_range(r, 0, (int64_t)span - 1);
        switch (tu_range(r, 0, 7)) {
        case 0: buf[pos] ^= (uint8_t)(1u << tu_range(r, 0, 7)); break;
        case 1: buf[pos] = (uint8_t)tu_next(r); break;
        case 2: { /* an interesting little-endian u64 or u32 */
            const uint64_t v = interesting[tu_range(r, 0, sizeof interesting / sizeof interesting[0] - 1)];
            const size_t w = (tu_next(r) & 1) ? 8 : 4;
            if (pos + w <= n) memcpy(buf + pos, &v, w);
            break;
        }
        case 3: { /* insert random bytes */
            const size_t k = (size_t)tu_range(r, 1, 16);
            if (n + k > cap) break;
            memmove(buf + pos + k, buf + pos, n - pos);
            for (size_t i = 0; i < k; i++) buf[pos + i] = (uint8_t)tu_next(r);
            n += k;
            break;
        }
        case 4: { /* delete bytes */
            const size_t k = (size_t)tu_range(r, 1, 16);
            if (pos + k > n) break;
            memmove(buf + pos, buf + pos + k, n - pos - k);
            n -= k;
            break;
        }
        case 5: n = pos; break; /* truncate */
        case 6: { /* copy a chunk over another place */
            const size_t k = (size_t)tu_range(r, 1, 24), src = (size_t)tu_range(r, 0, (int64_t)n - 1);
            if (src + k <= n && pos + k <= n) memmove(buf + pos, buf + src, k);
            break;
        }
        default: buf[pos] = (uint8_t)(buf[pos] + tu_range(r, -2, 2)); break; /* nudge a count */
        }
    }
    return n;
}

Test(gguf_bad, random_mutations, .timeout = 60) {
    tu_buf base = {0};
    small_file(&base);
    owned o = PARSE_OK(&base);
    const size_t meta_end = (size_t)lm_gguf_data_offset(o.g);
    owned_free(&o);
    tu_buf rt = {0};
    build_round_trip(&rt);
    const size_t rt_meta = 1024;

    const size_t cap = (base.n > rt.n ? base.n : rt.n) + 256;
    uint8_t *work = malloc(cap);
    tu_rng r = tu_seed(4242);
    int n_ok = 0, n_fail = 0;
    for (int it = 0; it < 100000; it++) {
        const tu_buf *src = (it & 3) == 3 ? &rt : &base;
        memcpy(work, src->p, src->n);
        const size_t n = mutate(&r, work, src->n, cap, src == &rt ? rt_meta : meta_end);
        uint8_t *m = dup_exact(work, n);
        lm_gguf *g = NULL;
        lm_clear_error();
        const lm_status st = lm_gguf_parse(m, n, &g);
        if (st == LM_STATUS_OK) {
            n_ok++;
            walk(g, m, n);
            lm_gguf_close(g);
        } else {
            n_fail++;
            cr_assert(st == LM_STATUS_FORMAT || st == LM_STATUS_UNSUPPORTED, "iteration %d: status '%s' (%s)", it,
                      lm_status_string(st), lm_last_error());
            cr_assert_null(g);
            cr_assert(lm_last_error()[0], "iteration %d: failure without a message", it);
        }
        free(m);
    }
    cr_log_info("random mutations: %d parsed, %d rejected", n_ok, n_fail);
    cr_assert_gt(n_ok, 100, "the mutations should leave some files valid");
    cr_assert_gt(n_fail, 10000, "the mutations should break most files");
    free(work);
    tu_buf_free(&base);
    tu_buf_free(&rt);
}

/* ---------------------------------------------------------------------------------------- */
/* lm_gguf_open                                                                             */

Test(gguf_open, errors) {
    lm_gguf *g = (lm_gguf *)&g;
    const char *missing = tu_tmp_path("does-not-exist.gguf");
    unlink(missing);
    lm_clear_error();
    cr_assert_eq(lm_gguf_open(missing, true, &g), LM_STATUS_IO);
    cr_assert_null(g);
    cr_assert(strstr(lm_last_error(), "does-not-exist.gguf"), "error '%s' names the file", lm_last_error());

    char dir[4096];
    snprintf(dir, sizeof dir, "%s", tu_tmp_path("dir.gguf"));
    rmdir(dir);
    cr_assert_eq(mkdir(dir, 0700), 0);
    for (int mm = 0; mm < 2; mm++) {
        g = (lm_gguf *)&g;
        lm_clear_error();
        cr_assert_eq(lm_gguf_open(dir, mm, &g), LM_STATUS_IO);
        cr_assert_null(g);
        cr_assert(strstr(lm_last_error(), "not a regular file"), "error: '%s'", lm_last_error());
    }
    rmdir(dir);

    g = (lm_gguf *)&g;
    cr_assert_eq(lm_gguf_open(NULL, true, &g), LM_STATUS_INVALID_ARGUMENT);
    cr_assert_null(g);

    const char *empty = tu_tmp_path("empty.gguf");
    cr_assert(tu_write_file(empty, "", 0));
    for (int mm = 0; mm < 2; mm++) {
        lm_clear_error();
        cr_assert_eq(lm_gguf_open(empty, mm, &g), LM_STATUS_FORMAT);
        cr_assert(strstr(lm_last_error(), "empty"), "error: '%s'", lm_last_error());
    }
    unlink(empty);

    /* a truncated file fails with the path in the message */
    tu_buf b = {0};
    small_file(&b);
    const char *trunc = tu_tmp_path("truncated.gguf");
    cr_assert(tu_write_file(trunc, b.p, b.n - 1));
    for (int mm = 0; mm < 2; mm++) {
        lm_clear_error();
        cr_assert_eq(lm_gguf_open(trunc, mm, &g), LM_STATUS_FORMAT);
        cr_assert_null(g);
        cr_assert(strstr(lm_last_error(), "truncated.gguf") && strstr(lm_last_error(), "b.weight"), "error: '%s'",
                  lm_last_error());
    }
    unlink(trunc);
    tu_buf_free(&b);
}
