/*
 * test_util.c — see test_util.h.
 */
#define _GNU_SOURCE
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

uint64_t tu_next(tu_rng *r) {
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

float tu_uniform(tu_rng *r) { return (float)((tu_next(r) >> 40) * (1.0 / 16777216.0)); }

float tu_normal(tu_rng *r) {
    double u1 = ((tu_next(r) >> 11) + 1) * (1.0 / 9007199254740993.0), u2 = (tu_next(r) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

int64_t tu_range(tu_rng *r, int64_t lo, int64_t hi) { return lo + (int64_t)(tu_next(r) % (uint64_t)(hi - lo + 1)); }

void tu_fill_normal(tu_rng *r, float *x, int64_t n, float scale) {
    for (int64_t i = 0; i < n; i++) x[i] = tu_normal(r) * scale;
}

double tu_nmse(const float *a, const float *ref, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)ref[i];
        num += d * d;
        den += (double)ref[i] * (double)ref[i];
    }
    return den > 0 ? num / den : num;
}

double tu_max_rel(const float *a, const float *ref, int64_t n) {
    double md = 0, mr = 0;
    for (int64_t i = 0; i < n; i++) {
        md = fmax(md, fabs((double)a[i] - (double)ref[i]));
        mr = fmax(mr, fabs((double)ref[i]));
    }
    return mr > 0 ? md / mr : md;
}

bool tu_all_finite(const float *a, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(a[i])) return false;
    return true;
}

void *tu_read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)(n > 0 ? n : 0) + 1); /* always NUL-terminated, for text fixtures */
    if (p && n > 0 && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    if (p) p[n > 0 ? n : 0] = 0;
    fclose(f);
    if (p && size) *size = (size_t)n;
    return p;
}

bool tu_write_file(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    bool ok = fwrite(data, 1, size, f) == size;
    return fclose(f) == 0 && ok;
}

const char *tu_fixture(const char *name) {
    static _Thread_local char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", LUMEN_FIXTURES, name);
    return buf;
}

const char *tu_tmp_path(const char *name) {
    static _Thread_local char buf[4096];
    const char *dir = getenv("TMPDIR");
    snprintf(buf, sizeof buf, "%s/lumen-test-%d-%s", dir && *dir ? dir : "/tmp", (int)getpid(), name);
    return buf;
}

/* the file named by the environment variable, else `file` in the model cache, else NULL */
static const char *cached_model(const char *env_var, const char *file, char *buf, size_t cap) {
    const char *env = getenv(env_var);
    if (env && access(env, R_OK) == 0) return env;
    snprintf(buf, cap, "%s/%s", LUMEN_MODEL_CACHE, file);
    return access(buf, R_OK) == 0 ? buf : NULL;
}

const char *tu_real_model_path(void) {
    static char buf[4096];
    return cached_model("LUMEN_MODEL", "gemma-3-270m-q4_k_m.gguf", buf, sizeof buf);
}

const char *tu_smollm2_path(void) {
    static char buf[4096];
    return cached_model("LUMEN_MODEL_SMOLLM2", "SmolLM2-135M-Instruct.Q4_1.gguf", buf, sizeof buf);
}

void tu_put(tu_buf *b, const void *data, size_t n) {
    if (n == 0) return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        b->p = realloc(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
}

void tu_buf_free(tu_buf *b) {
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

/* ---------------------------------------------------------------------------------------- */

typedef struct tu_tensor {
    char *name;
    uint32_t type;
    int n_dims;
    int64_t ne[4];
    uint8_t *data;
    size_t size;
} tu_tensor;

struct tu_gguf {
    tu_buf kv; /* serialized kv pairs */
    uint64_t n_kv;
    tu_tensor *t;
    size_t n_t;
};

tu_gguf *tu_gguf_new(void) { return calloc(1, sizeof(tu_gguf)); }

void tu_gguf_free(tu_gguf *g) {
    if (!g) return;
    tu_buf_free(&g->kv);
    for (size_t i = 0; i < g->n_t; i++) {
        free(g->t[i].name);
        free(g->t[i].data);
    }
    free(g->t);
    free(g);
}

static void put_str(tu_buf *b, const char *s) {
    uint64_t n = strlen(s);
    tu_put(b, &n, 8);
    tu_put(b, s, n);
}

static void put_key(tu_gguf *g, const char *key, uint32_t type) {
    put_str(&g->kv, key);
    tu_put(&g->kv, &type, 4);
    g->n_kv++;
}

void tu_gguf_u32(tu_gguf *g, const char *key, uint32_t v) { put_key(g, key, 4); tu_put(&g->kv, &v, 4); }
void tu_gguf_i32(tu_gguf *g, const char *key, int32_t v) { put_key(g, key, 5); tu_put(&g->kv, &v, 4); }
void tu_gguf_f32(tu_gguf *g, const char *key, float v) { put_key(g, key, 6); tu_put(&g->kv, &v, 4); }
void tu_gguf_bool(tu_gguf *g, const char *key, bool v) { uint8_t b = v; put_key(g, key, 7); tu_put(&g->kv, &b, 1); }
void tu_gguf_str(tu_gguf *g, const char *key, const char *v) { put_key(g, key, 8); put_str(&g->kv, v); }

static void arr_head(tu_gguf *g, const char *key, uint32_t et, uint64_t n) {
    put_key(g, key, 9);
    tu_put(&g->kv, &et, 4);
    tu_put(&g->kv, &n, 8);
}

void tu_gguf_arr_i32(tu_gguf *g, const char *key, const int32_t *v, size_t n) { arr_head(g, key, 5, n); tu_put(&g->kv, v, n * 4); }
void tu_gguf_arr_f32(tu_gguf *g, const char *key, const float *v, size_t n) { arr_head(g, key, 6, n); tu_put(&g->kv, v, n * 4); }
void tu_gguf_arr_bool(tu_gguf *g, const char *key, const bool *v, size_t n) {
    arr_head(g, key, 7, n);
    for (size_t i = 0; i < n; i++) { uint8_t b = v[i]; tu_put(&g->kv, &b, 1); }
}
void tu_gguf_arr_str(tu_gguf *g, const char *key, const char *const *v, size_t n) {
    arr_head(g, key, 8, n);
    for (size_t i = 0; i < n; i++) put_str(&g->kv, v[i]);
}

void tu_gguf_raw(tu_gguf *g, const char *key, uint32_t type, const void *payload, size_t n) {
    put_key(g, key, type);
    tu_put(&g->kv, payload, n);
}

void tu_gguf_tensor(tu_gguf *g, const char *name, uint32_t type, int n_dims, const int64_t *ne, const void *data, size_t size) {
    g->t = realloc(g->t, (g->n_t + 1) * sizeof(tu_tensor));
    tu_tensor *t = &g->t[g->n_t++];
    t->name = strdup(name);
    t->type = type;
    t->n_dims = n_dims;
    for (int i = 0; i < 4; i++) t->ne[i] = i < n_dims ? ne[i] : 1;
    t->data = malloc(size ? size : 1);
    if (size) memcpy(t->data, data, size);
    t->size = size;
}

void tu_gguf_serialize(const tu_gguf *g, tu_buf *out) {
    const uint32_t magic = 0x46554747u, version = 3;
    const uint64_t nt = g->n_t;
    tu_put(out, &magic, 4);
    tu_put(out, &version, 4);
    tu_put(out, &nt, 8);
    tu_put(out, &g->n_kv, 8);
    tu_put(out, g->kv.p ? g->kv.p : (uint8_t *)"", g->kv.n);
    uint64_t off = 0;
    for (size_t i = 0; i < g->n_t; i++) {
        const tu_tensor *t = &g->t[i];
        put_str(out, t->name);
        uint32_t nd = (uint32_t)t->n_dims;
        tu_put(out, &nd, 4);
        for (int d = 0; d < t->n_dims; d++) {
            uint64_t ne = (uint64_t)t->ne[d];
            tu_put(out, &ne, 8);
        }
        tu_put(out, &t->type, 4);
        tu_put(out, &off, 8);
        off += (t->size + 31) / 32 * 32;
    }
    static const uint8_t zeros[32] = {0};
    tu_put(out, zeros, (32 - out->n % 32) % 32);
    for (size_t i = 0; i < g->n_t; i++) {
        tu_put(out, g->t[i].data, g->t[i].size);
        tu_put(out, zeros, (32 - g->t[i].size % 32) % 32);
    }
}

bool tu_gguf_save(const tu_gguf *g, const char *path) {
    tu_buf b = {0};
    tu_gguf_serialize(g, &b);
    bool ok = tu_write_file(path, b.p, b.n);
    tu_buf_free(&b);
    return ok;
}

