/*
 * fuzz_gguf.c — libFuzzer harness for the GGUF reader (run it with tests/fuzz/run_fuzz.sh).
 *
 * Each input goes through lm_gguf_parse. A rejected input must come with an error message; an
 * accepted one is walked completely: every metadata value rendered with lm_gguf_value_str (into
 * a roomy and a tiny buffer), every array element converted, every key looked up again, every
 * tensor's bytes touched and its first row dequantized — so ASan/UBSan see any out-of-bounds
 * read or undefined arithmetic a crafted file can provoke, in the reader and in quant.c.
 *
 * Built with -DFUZZ_GEN_SEEDS instead, the same file is a program that writes a seed corpus of
 * valid files (with the tu_gguf writer of tests/test_util.c) into the directory given as argv[1].
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"

#ifndef FUZZ_GEN_SEEDS

static void fuzz_check(bool ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "fuzz_gguf: invariant violated: %s\n", what);
        abort();
    }
}

static volatile unsigned sink;

static void walk_value(const lm_gguf_value *v) {
    char big[512], tiny[5];
    lm_gguf_value_str(v, big, sizeof big);
    fuzz_check(strlen(big) < sizeof big, "value_str terminates (big)");
    lm_gguf_value_str(v, tiny, sizeof tiny);
    fuzz_check(strlen(tiny) < sizeof tiny, "value_str terminates (tiny)");
    if (v->type == LM_GGUF_STRING) {
        if (v->str.len) sink += (uint8_t)v->str.ptr[v->str.len - 1];
        return;
    }
    if (v->type != LM_GGUF_ARRAY) return;
    if (v->arr.type == LM_GGUF_STRING) {
        for (uint64_t i = 0; i < v->arr.n; i++)
            if (v->arr.strs[i].len) sink += (uint8_t)v->arr.strs[i].ptr[v->arr.strs[i].len - 1];
    } else if (v->arr.type == LM_GGUF_ARRAY) {
        for (uint64_t i = 0; i < v->arr.n; i++) {
            fuzz_check(v->arr.elems[i].type == LM_GGUF_ARRAY, "nested element is an array");
            walk_value(&v->arr.elems[i]);
        }
    } else {
        for (uint64_t i = 0; i < v->arr.n; i++) {
            int64_t x;
            double d;
            if (lm_gguf_arr_int(v, i, &x)) sink += (unsigned)x;
            fuzz_check(lm_gguf_arr_float(v, i, &d), "numeric element converts to double");
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lm_gguf *g = NULL;
    lm_status st = lm_gguf_parse(data, size, &g);
    if (st != LM_STATUS_OK) {
        fuzz_check(g == NULL, "no handle on failure");
        fuzz_check(st == LM_STATUS_FORMAT || st == LM_STATUS_UNSUPPORTED, "failure status is format/unsupported");
        fuzz_check(lm_last_error()[0] != 0, "failure has a message");
        return 0;
    }
    fuzz_check(lm_gguf_base(g) == data && lm_gguf_file_size(g) == size, "base and size");
    for (int64_t i = 0; i < lm_gguf_n_kv(g); i++) {
        const lm_gguf_kv *kv = lm_gguf_kv_at(g, i);
        walk_value(&kv->value);
        char key[300];
        if (kv->key.len < sizeof key && !memchr(kv->key.ptr, 0, kv->key.len)) {
            memcpy(key, kv->key.ptr, kv->key.len);
            key[kv->key.len] = 0;
            fuzz_check(lm_gguf_find(g, key) == kv, "keys are unique and found");
        }
    }
    uint32_t u32;
    int64_t i64;
    float f32;
    bool b;
    lm_gguf_str s;
    const lm_gguf_value *arr;
    (void)lm_gguf_get_u32(g, "general.alignment", &u32);
    (void)lm_gguf_get_i64(g, "general.alignment", &i64);
    (void)lm_gguf_get_f32(g, "general.alignment", &f32);
    (void)lm_gguf_get_bool(g, "general.alignment", &b);
    (void)lm_gguf_get_str(g, "general.architecture", &s);
    (void)lm_gguf_get_arr(g, "tokenizer.ggml.tokens", LM_GGUF_STRING, &arr);
    const uint8_t *lo = data, *hi = data + size;
    for (int64_t i = 0; i < lm_gguf_n_tensors(g); i++) {
        const lm_gguf_tensor *t = lm_gguf_tensor_at(g, i);
        const uint8_t *p = t->data;
        fuzz_check(t->size > 0 && p >= lo && p <= hi && t->size <= (uint64_t)(hi - p), "tensor data inside the input");
        fuzz_check(t->offset % lm_gguf_alignment(g) == 0, "tensor offset aligned");
        fuzz_check(lm_gguf_find_tensor(g, t->name) == t, "tensor names unique");
        sink += p[0] + p[t->size - 1];
        const lm_dtype_traits *tr = lm_dtype_get(t->type);
        fuzz_check(tr && tr->supported, "tensor type loadable");
        fuzz_check(t->ne[0] % tr->block == 0, "rows hold whole blocks");
        fuzz_check(lm_row_bytes(t->type, t->ne[0]) <= t->size, "first row inside the tensor");
        if (tr->dequant && t->ne[0] <= 65536) {
            float *row = malloc((size_t)t->ne[0] * sizeof *row);
            if (row) {
                lm_dequant_row(t->type, t->data, row, t->ne[0]);
                sink += (unsigned)(row[0] != row[0]);
                free(row);
            }
        }
    }
    lm_gguf_close(g);
    return 0;
}

#else /* FUZZ_GEN_SEEDS: write the seed corpus */

#include "test_util.h"

static void save(const char *dir, const char *name, const tu_buf *b) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (!tu_write_file(path, b->p, b->n)) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    lm_gguf *g = NULL;
    if (lm_gguf_parse(b->p, b->n, &g) != LM_STATUS_OK) { /* seeds are valid files */
        fprintf(stderr, "seed %s does not parse: %s\n", name, lm_last_error());
        exit(1);
    }
    lm_gguf_close(g);
}

static void save_writer(const char *dir, const char *name, tu_gguf *w) {
    tu_buf b = {0};
    tu_gguf_serialize(w, &b);
    save(dir, name, &b);
    tu_buf_free(&b);
    tu_gguf_free(w);
}

static void raw_arr(tu_gguf *w, const char *key, uint32_t et, const void *data, size_t elem, uint64_t n) {
    tu_buf pl = {0};
    tu_put(&pl, &et, 4);
    tu_put(&pl, &n, 8);
    if (n) tu_put(&pl, data, (size_t)n * elem);
    tu_gguf_raw(w, key, LM_GGUF_ARRAY, pl.p, pl.n);
    tu_buf_free(&pl);
}

/* a tensor of `type` with ne[0] = one block (or 32 elements for plain types) and 2 rows */
static void add_tensor(tu_gguf *w, tu_rng *r, const char *name, lm_dtype type) {
    const lm_dtype_traits *tr = lm_dtype_get(type);
    const int64_t ne[2] = {tr->block > 1 ? tr->block : 32, 2};
    const size_t size = lm_row_bytes(type, ne[0]) * 2;
    uint8_t *d = malloc(size);
    for (size_t i = 0; i < size; i++) d[i] = (uint8_t)tu_next(r);
    tu_gguf_tensor(w, name, (uint32_t)type, 2, ne, d, size);
    free(d);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    tu_rng r = tu_seed(1);

    { /* empty: header only */
        tu_gguf *w = tu_gguf_new();
        save_writer(dir, "empty.gguf", w);
    }
    { /* every value type, arrays of each, nesting */
        tu_gguf *w = tu_gguf_new();
        const uint8_t u8 = 200;
        const int8_t i8 = -3;
        const uint16_t u16 = 60000;
        const int16_t i16 = -300;
        const uint64_t u64 = UINT64_MAX;
        const int64_t i64 = INT64_MIN;
        const double f64 = 3.25;
        tu_gguf_raw(w, "v.u8", LM_GGUF_U8, &u8, 1);
        tu_gguf_raw(w, "v.i8", LM_GGUF_I8, &i8, 1);
        tu_gguf_raw(w, "v.u16", LM_GGUF_U16, &u16, 2);
        tu_gguf_raw(w, "v.i16", LM_GGUF_I16, &i16, 2);
        tu_gguf_u32(w, "v.u32", 123456789);
        tu_gguf_i32(w, "v.i32", -123456789);
        tu_gguf_f32(w, "v.f32", 0.5f);
        tu_gguf_bool(w, "v.bool", true);
        tu_gguf_str(w, "v.str", "text\n\x01");
        tu_gguf_raw(w, "v.u64", LM_GGUF_U64, &u64, 8);
        tu_gguf_raw(w, "v.i64", LM_GGUF_I64, &i64, 8);
        tu_gguf_raw(w, "v.f64", LM_GGUF_F64, &f64, 8);
        static const uint64_t a64[] = {1, 2, UINT64_MAX, 4, 5, 6, 7, 8};
        static const uint16_t a16[] = {1, 2, 3};
        static const double ad[] = {1.5, -2.5};
        raw_arr(w, "a.u64", LM_GGUF_U64, a64, 8, 8);
        raw_arr(w, "a.u16", LM_GGUF_U16, a16, 2, 3);
        raw_arr(w, "a.f64", LM_GGUF_F64, ad, 8, 2);
        static const int32_t ai[] = {1, -2, 3, -4};
        static const float af[] = {0.25f, -1.0f};
        static const bool ab[] = {true, false};
        static const char *const as[] = {"<pad>", "", "a b", "\xe2\x96\x81x"};
        tu_gguf_arr_i32(w, "a.i32", ai, 4);
        tu_gguf_arr_f32(w, "a.f32", af, 2);
        tu_gguf_arr_bool(w, "a.bool", ab, 2);
        tu_gguf_arr_str(w, "a.str", as, 4);
        tu_buf p = {0}; /* [[1, 2], []] of i32 and [[["x"]]] */
        const uint32_t t_arr = LM_GGUF_ARRAY, t_i32 = LM_GGUF_I32, t_str = LM_GGUF_STRING;
        const uint64_t two = 2, one = 1, zero = 0;
        tu_put(&p, &t_arr, 4); tu_put(&p, &two, 8);
        tu_put(&p, &t_i32, 4); tu_put(&p, &two, 8); tu_put(&p, ai, 8);
        tu_put(&p, &t_i32, 4); tu_put(&p, &zero, 8);
        tu_gguf_raw(w, "n.i32", LM_GGUF_ARRAY, p.p, p.n);
        p.n = 0;
        tu_put(&p, &t_arr, 4); tu_put(&p, &one, 8);
        tu_put(&p, &t_arr, 4); tu_put(&p, &one, 8);
        tu_put(&p, &t_str, 4); tu_put(&p, &one, 8); tu_put(&p, &one, 8); tu_put(&p, "x", 1);
        tu_gguf_raw(w, "n.str", LM_GGUF_ARRAY, p.p, p.n);
        tu_buf_free(&p);
        save_writer(dir, "values.gguf", w);
    }
    { /* a miniature Gemma file with a tensor of every loadable type */
        tu_gguf *w = tu_gguf_new();
        tu_gguf_str(w, "general.architecture", "gemma3");
        tu_gguf_u32(w, "general.alignment", 32);
        tu_gguf_u32(w, "gemma3.block_count", 1);
        tu_gguf_u32(w, "gemma3.embedding_length", 256);
        tu_gguf_f32(w, "gemma3.attention.layer_norm_rms_epsilon", 1e-6f);
        static const char *const toks[] = {"<pad>", "<eos>", "<bos>", "<unk>", "a", "b", "ab", "\xe2\x96\x81"};
        static const float scores[] = {0, 0, 0, 0, -1, -2, -3, -4};
        static const int32_t types[] = {3, 3, 3, 2, 1, 1, 1, 1};
        tu_gguf_str(w, "tokenizer.ggml.model", "llama");
        tu_gguf_arr_str(w, "tokenizer.ggml.tokens", toks, 8);
        tu_gguf_arr_f32(w, "tokenizer.ggml.scores", scores, 8);
        tu_gguf_arr_i32(w, "tokenizer.ggml.token_type", types, 8);
        static const struct { const char *name; lm_dtype t; } ts[] = {
            {"token_embd.weight", LM_Q8_0}, {"output_norm.weight", LM_F32}, {"blk.0.attn_q.weight", LM_Q5_0},
            {"blk.0.attn_k.weight", LM_Q4_K}, {"blk.0.attn_v.weight", LM_Q6_K}, {"blk.0.ffn_up.weight", LM_Q2_K},
            {"blk.0.ffn_gate.weight", LM_Q3_K}, {"blk.0.ffn_down.weight", LM_Q5_K}, {"blk.0.a.weight", LM_Q4_0},
            {"blk.0.b.weight", LM_Q4_1}, {"blk.0.c.weight", LM_Q5_1}, {"blk.0.d.weight", LM_F16},
            {"blk.0.e.weight", LM_BF16}, {"blk.0.f.weight", LM_I32},
        };
        for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) add_tensor(w, &r, ts[i].name, ts[i].t);
        save_writer(dir, "mini_gemma.gguf", w);
    }
    { /* general.alignment 64, laid out by hand (the writer pads to 32) */
        tu_buf b = {0};
        const uint32_t magic = 0x46554747u, version = 3, t_u32 = LM_GGUF_U32, align = 64, nd = 1, f32 = LM_F32;
        const uint64_t nt = 2, nkv = 1, klen = 17, ne = 8, off0 = 0, off1 = 64;
        tu_put(&b, &magic, 4); tu_put(&b, &version, 4); tu_put(&b, &nt, 8); tu_put(&b, &nkv, 8);
        tu_put(&b, &klen, 8); tu_put(&b, "general.alignment", 17); tu_put(&b, &t_u32, 4); tu_put(&b, &align, 4);
        const uint64_t one = 1;
        tu_put(&b, &one, 8); tu_put(&b, "x", 1); tu_put(&b, &nd, 4); tu_put(&b, &ne, 8); tu_put(&b, &f32, 4);
        tu_put(&b, &off0, 8);
        tu_put(&b, &one, 8); tu_put(&b, "y", 1); tu_put(&b, &nd, 4); tu_put(&b, &ne, 8); tu_put(&b, &f32, 4);
        tu_put(&b, &off1, 8);
        while (b.n % 64) tu_put(&b, "", 1);
        for (int i = 0; i < 96; i++) { const uint8_t v = (uint8_t)i; tu_put(&b, &v, 1); }
        save(dir, "align64.gguf", &b);
        tu_buf_free(&b);
    }
    return 0;
}

#endif
