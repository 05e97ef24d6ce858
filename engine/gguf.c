/*
 * gguf.c — GGUF reader (see gguf.h). Parsing is a cursor over [base, base + size): every read
 * checks the bytes left first. Counts are bounded by the bytes that could hold them before
 * anything is allocated, so an adversarial count fails fast instead of allocating.
 */
#define _GNU_SOURCE
#include "gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGUF_MAGIC 0x46554747u /* "GGUF" little-endian */

/* Allocation list owned by the lm_gguf (string tables, nested arrays). */
typedef struct blk {
    struct blk *next;
    max_align_t align_[];
} blk;

struct lm_gguf {
    const uint8_t *base;
    size_t size;
    void *map;     /* mmap'ed region or NULL */
    void *owned;   /* malloc'ed file copy or NULL */
    uint32_t version;
    uint64_t alignment;
    uint64_t data_offset;
    uint64_t kv_end; /* byte offset where the metadata ends and the tensor infos begin */
    int64_t n_kv;
    lm_gguf_kv *kv;
    int64_t n_tensors;
    lm_gguf_tensor *tensors;
    blk *blocks;
};

typedef struct cursor {
    const uint8_t *p;
    size_t left;
    size_t pos; /* offset from file start, for messages */
} cursor;

static void *galloc(lm_gguf *g, size_t size) {
    blk *b = malloc(sizeof(blk) + size);
    if (!b) return NULL;
    b->next = g->blocks;
    g->blocks = b;
    return (void *)b->align_;
}

static bool rd(cursor *c, void *dst, size_t n) {
    if (c->left < n) return false;
    memcpy(dst, c->p, n);
    c->p += n;
    c->left -= n;
    c->pos += n;
    return true;
}

static bool skip(cursor *c, size_t n) {
    if (c->left < n) return false;
    c->p += n;
    c->left -= n;
    c->pos += n;
    return true;
}

/* Open-addressing set of byte strings (metadata keys, tensor names) for duplicate detection in
 * linear time: a file may hold millions of tiny entries, so a pairwise scan would hang. */
typedef struct nameset {
    const char **ptr;
    uint64_t *len;
    size_t cap; /* power of two, >= 2 * entries */
} nameset;

static bool nameset_init(nameset *s, uint64_t n) {
    s->cap = 16;
    while (s->cap < n * 2) s->cap <<= 1;
    s->ptr = calloc(s->cap, sizeof *s->ptr);
    s->len = calloc(s->cap, sizeof *s->len);
    return s->ptr && s->len;
}

static void nameset_free(nameset *s) {
    free(s->ptr);
    free(s->len);
    s->ptr = NULL;
    s->len = NULL;
}

/* Insert; false if the string was already present. */
static bool nameset_add(nameset *s, const char *p, uint64_t n) {
    uint64_t h = 1469598103934665603ull;
    for (uint64_t i = 0; i < n; i++) h = (h ^ (uint8_t)p[i]) * 1099511628211ull;
    size_t i = (size_t)(h ^ (h >> 32)) & (s->cap - 1);
    for (; s->ptr[i]; i = (i + 1) & (s->cap - 1))
        if (s->len[i] == n && memcmp(s->ptr[i], p, n) == 0) return false;
    s->ptr[i] = p;
    s->len[i] = n;
    return true;
}

static const size_t type_sizes[LM_GGUF_TYPE_COUNT] = {
    [LM_GGUF_U8] = 1, [LM_GGUF_I8] = 1, [LM_GGUF_U16] = 2, [LM_GGUF_I16] = 2,
    [LM_GGUF_U32] = 4, [LM_GGUF_I32] = 4, [LM_GGUF_F32] = 4, [LM_GGUF_BOOL] = 1,
    [LM_GGUF_STRING] = 0, [LM_GGUF_ARRAY] = 0, [LM_GGUF_U64] = 8, [LM_GGUF_I64] = 8,
    [LM_GGUF_F64] = 8,
};

size_t lm_gguf_type_size(uint32_t t) { return t < LM_GGUF_TYPE_COUNT ? type_sizes[t] : 0; }

const char *lm_gguf_type_name(uint32_t t) {
    static const char *names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                  "bool", "string", "array", "u64", "i64", "f64"};
    return t < LM_GGUF_TYPE_COUNT ? names[t] : "?";
}

static lm_status rd_str(cursor *c, lm_gguf_str *s, const char *what) {
    uint64_t len;
    size_t at = c->pos;
    if (!rd(c, &len, 8)) return lm_fail(LM_STATUS_FORMAT, "gguf: truncated length of %s at byte %zu", what, at);
    if (len > LM_GGUF_MAX_STRING || len > c->left)
        return lm_fail(LM_STATUS_FORMAT, "gguf: %s at byte %zu has length %llu but only %zu bytes remain",
                       what, at, (unsigned long long)len, c->left);
    s->ptr = (const char *)c->p;
    s->len = len;
    skip(c, (size_t)len);
    return LM_STATUS_OK;
}

/* `reserve`: bytes after this array that its enclosing arrays still need for their remaining
 * elements (12 bytes each at least). Bounding the count by the bytes left minus that reserve
 * keeps the allocations of nested arrays proportional to the file size: without it every
 * nesting level could claim the same bytes again. */
static lm_status rd_array(lm_gguf *g, cursor *c, lm_gguf_value *v, int depth, const char *key, uint64_t reserve) {
    uint32_t et;
    uint64_t n;
    size_t at = c->pos;
    if (depth >= LM_GGUF_MAX_DEPTH)
        return lm_fail(LM_STATUS_FORMAT, "gguf: key '%s': arrays nested deeper than %d", key, LM_GGUF_MAX_DEPTH);
    if (!rd(c, &et, 4) || !rd(c, &n, 8))
        return lm_fail(LM_STATUS_FORMAT, "gguf: key '%s': truncated array header at byte %zu", key, at);
    if (et >= LM_GGUF_TYPE_COUNT)
        return lm_fail(LM_STATUS_FORMAT, "gguf: key '%s': unknown array element type %u", key, et);
    v->arr.type = et;
    v->arr.n = n;
    v->arr.data = NULL;
    v->arr.strs = NULL;
    v->arr.elems = NULL;
    /* the smallest encoding of one element bounds the count by the bytes left */
    size_t min_elem = et == LM_GGUF_STRING ? 8 : et == LM_GGUF_ARRAY ? 12 : type_sizes[et];
    size_t avail = c->left > reserve ? c->left - (size_t)reserve : 0;
    if (n > avail / min_elem)
        return lm_fail(LM_STATUS_FORMAT,
                       "gguf: key '%s': array of %llu %s elements cannot fit in the %zu bytes left",
                       key, (unsigned long long)n, lm_gguf_type_name(et), avail);
    if (et == LM_GGUF_STRING) {
        v->arr.strs = galloc(g, (size_t)n * sizeof(lm_gguf_str) + 1);
        if (!v->arr.strs) return lm_fail(LM_STATUS_OUT_OF_MEMORY, "gguf: out of memory for key '%s'", key);
        for (uint64_t i = 0; i < n; i++) LM_TRY(rd_str(c, &v->arr.strs[i], key));
    } else if (et == LM_GGUF_ARRAY) {
        v->arr.elems = galloc(g, (size_t)n * sizeof(lm_gguf_value) + 1);
        if (!v->arr.elems) return lm_fail(LM_STATUS_OUT_OF_MEMORY, "gguf: out of memory for key '%s'", key);
        for (uint64_t i = 0; i < n; i++) {
            v->arr.elems[i].type = LM_GGUF_ARRAY;
            LM_TRY(rd_array(g, c, &v->arr.elems[i], depth + 1, key, reserve + (n - 1 - i) * 12));
        }
    } else {
        v->arr.data = c->p;
        if (et == LM_GGUF_BOOL)
            for (uint64_t i = 0; i < n; i++)
                if (c->p[i] > 1)
                    return lm_fail(LM_STATUS_FORMAT, "gguf: key '%s': bool array element %llu has value %u (not 0 or 1)",
                                   key, (unsigned long long)i, c->p[i]);
        skip(c, (size_t)n * type_sizes[et]);
    }
    return LM_STATUS_OK;
}

static lm_status rd_value(lm_gguf *g, cursor *c, uint32_t type, lm_gguf_value *v, int depth, const char *key) {
    v->type = type;
    size_t at = c->pos;
    switch (type) {
    case LM_GGUF_U8: { uint8_t x; if (!rd(c, &x, 1)) goto trunc; v->u64 = x; break; }
    case LM_GGUF_I8: { int8_t x; if (!rd(c, &x, 1)) goto trunc; v->i64 = x; break; }
    case LM_GGUF_U16: { uint16_t x; if (!rd(c, &x, 2)) goto trunc; v->u64 = x; break; }
    case LM_GGUF_I16: { int16_t x; if (!rd(c, &x, 2)) goto trunc; v->i64 = x; break; }
    case LM_GGUF_U32: { uint32_t x; if (!rd(c, &x, 4)) goto trunc; v->u64 = x; break; }
    case LM_GGUF_I32: { int32_t x; if (!rd(c, &x, 4)) goto trunc; v->i64 = x; break; }
    case LM_GGUF_U64: { uint64_t x; if (!rd(c, &x, 8)) goto trunc; v->u64 = x; break; }
    case LM_GGUF_I64: { int64_t x; if (!rd(c, &x, 8)) goto trunc; v->i64 = x; break; }
    case LM_GGUF_F32: { float x; if (!rd(c, &x, 4)) goto trunc; v->f64 = x; break; }
    case LM_GGUF_F64: { double x; if (!rd(c, &x, 8)) goto trunc; v->f64 = x; break; }
    case LM_GGUF_BOOL: {
        uint8_t x;
        if (!rd(c, &x, 1)) goto trunc;
        if (x > 1) return lm_fail(LM_STATUS_FORMAT, "gguf: key '%s': bool value %u is not 0 or 1", key, x);
        v->u64 = x;
        break;
    }
    case LM_GGUF_STRING: return rd_str(c, &v->str, key);
    case LM_GGUF_ARRAY: return rd_array(g, c, v, depth, key, 0);
    default: return lm_fail(LM_STATUS_FORMAT, "gguf: key '%s' has unknown value type %u", key, type);
    }
    return LM_STATUS_OK;
trunc:
    return lm_fail(LM_STATUS_FORMAT, "gguf: key '%s': truncated %s value at byte %zu", key,
                   lm_gguf_type_name(type), at);
}

/* Alignment the C layout of a type's blocks needs (its widest scalar field). The dequantizers and
 * kernels access tensor data through these structs, so a file whose general.alignment (1 is legal)
 * places a tensor at an offset that is not a multiple of this is rejected: reading it in place
 * would be a misaligned access. Checked on the file offset; the base address is page-aligned
 * (mmap), 64-byte aligned (read) or the caller's (lm_gguf_parse). */
static uint64_t dtype_align(lm_dtype t) {
    switch (t) {
    case LM_F32: case LM_I32: return 4;
    case LM_Q8_K: return _Alignof(lm_block_q8_K);
    case LM_I64: case LM_F64: return 8;
    case LM_I8: return 1;
    default: return _Alignof(lm_half); /* f16, bf16, i16 and every block with f16 scales */
    }
}

static int cmp_tensor_offset(const void *a, const void *b) {
    const lm_gguf_tensor *x = *(const lm_gguf_tensor *const *)a, *y = *(const lm_gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static lm_status parse_body(lm_gguf *g, nameset *names) {
    cursor c = {g->base, g->size, 0};
    uint32_t magic;
    uint64_t n_tensors, n_kv;
    if (!rd(&c, &magic, 4)) return lm_fail(LM_STATUS_FORMAT, "gguf: file is %zu bytes, too short for a header", g->size);
    if (magic != GGUF_MAGIC) return lm_fail(LM_STATUS_FORMAT, "gguf: bad magic 0x%08x (not a GGUF file)", magic);
    if (!rd(&c, &g->version, 4) || !rd(&c, &n_tensors, 8) || !rd(&c, &n_kv, 8))
        return lm_fail(LM_STATUS_FORMAT, "gguf: truncated header (%zu bytes)", g->size);
    if (g->version != 2 && g->version != 3)
        return lm_fail(LM_STATUS_UNSUPPORTED, "gguf: version %u is not supported (2 and 3 are)", g->version);
    /* each kv takes >= 13 bytes (key len 8 + type 4 + 1), each tensor info >= 8+4+8+4+8 */
    if (n_kv > c.left / 13)
        return lm_fail(LM_STATUS_FORMAT, "gguf: header claims %llu metadata entries, more than the file can hold",
                       (unsigned long long)n_kv);
    if (n_tensors > c.left / 32)
        return lm_fail(LM_STATUS_FORMAT, "gguf: header claims %llu tensors, more than the file can hold",
                       (unsigned long long)n_tensors);
    g->n_kv = (int64_t)n_kv;
    g->kv = calloc((size_t)n_kv + 1, sizeof(lm_gguf_kv));
    if (!g->kv || !nameset_init(names, n_kv)) return lm_fail(LM_STATUS_OUT_OF_MEMORY, "gguf: out of memory");
    g->alignment = 32;
    for (uint64_t i = 0; i < n_kv; i++) {
        lm_gguf_kv *kv = &g->kv[i];
        char keybuf[128];
        LM_TRY(rd_str(&c, &kv->key, "metadata key"));
        snprintf(keybuf, sizeof keybuf, "%.*s", (int)(kv->key.len < 100 ? kv->key.len : 100), kv->key.ptr);
        uint32_t type;
        if (!rd(&c, &type, 4)) return lm_fail(LM_STATUS_FORMAT, "gguf: key '%s': truncated value type", keybuf);
        if (type >= LM_GGUF_TYPE_COUNT) return lm_fail(LM_STATUS_FORMAT, "gguf: key '%s' has unknown value type %u", keybuf, type);
        LM_TRY(rd_value(g, &c, type, &kv->value, 0, keybuf));
        if (!nameset_add(names, kv->key.ptr, kv->key.len))
            return lm_fail(LM_STATUS_FORMAT, "gguf: duplicate metadata key '%s'", keybuf);
        if (lm_gguf_str_eq(kv->key, "general.alignment")) {
            if (type != LM_GGUF_U32 && type != LM_GGUF_U64)
                return lm_fail(LM_STATUS_FORMAT, "gguf: general.alignment has type %s, expected u32", lm_gguf_type_name(type));
            uint64_t a = kv->value.u64;
            if (a == 0 || (a & (a - 1)) != 0 || a > (1u << 20))
                return lm_fail(LM_STATUS_FORMAT, "gguf: general.alignment %llu is not a power of two <= 1 MiB", (unsigned long long)a);
            g->alignment = a;
        }
    }
    g->kv_end = (uint64_t)(c.p - g->base);
    /* now that the metadata is read, bound the tensor count again by what is left
     * (an info takes >= 8 + 1 + 4 + 8 + 4 + 8 = 33 bytes) */
    if (n_tensors > c.left / 33)
        return lm_fail(LM_STATUS_FORMAT, "gguf: header claims %llu tensors but only %zu bytes follow the metadata",
                       (unsigned long long)n_tensors, c.left);
    g->n_tensors = (int64_t)n_tensors;
    g->tensors = calloc((size_t)n_tensors + 1, sizeof(lm_gguf_tensor));
    nameset_free(names);
    if (!g->tensors || !nameset_init(names, n_tensors)) return lm_fail(LM_STATUS_OUT_OF_MEMORY, "gguf: out of memory");
    for (uint64_t i = 0; i < n_tensors; i++) {
        lm_gguf_tensor *t = &g->tensors[i];
        lm_gguf_str name;
        LM_TRY(rd_str(&c, &name, "tensor name"));
        if (name.len == 0 || name.len >= LM_GGUF_MAX_NAME)
            return lm_fail(LM_STATUS_FORMAT, "gguf: tensor %llu has a name of %llu bytes (1..%d allowed)",
                           (unsigned long long)i, (unsigned long long)name.len, LM_GGUF_MAX_NAME - 1);
        memcpy(t->name, name.ptr, name.len);
        t->name[name.len] = 0;
        if (strlen(t->name) != name.len) return lm_fail(LM_STATUS_FORMAT, "gguf: tensor %llu name contains a NUL byte", (unsigned long long)i);
        if (!nameset_add(names, t->name, name.len))
            return lm_fail(LM_STATUS_FORMAT, "gguf: duplicate tensor name '%s'", t->name);
        uint32_t n_dims, type;
        if (!rd(&c, &n_dims, 4)) return lm_fail(LM_STATUS_FORMAT, "gguf: tensor '%s': truncated info", t->name);
        if (n_dims < 1 || n_dims > LM_GGUF_MAX_DIMS)
            return lm_fail(LM_STATUS_FORMAT, "gguf: tensor '%s' has %u dimensions (1..%d allowed)", t->name, n_dims, LM_GGUF_MAX_DIMS);
        t->n_dims = (int32_t)n_dims;
        uint64_t nel = 1;
        for (int d = 0; d < LM_GGUF_MAX_DIMS; d++) t->ne[d] = 1;
        for (uint32_t d = 0; d < n_dims; d++) {
            uint64_t ne;
            if (!rd(&c, &ne, 8)) return lm_fail(LM_STATUS_FORMAT, "gguf: tensor '%s': truncated shape", t->name);
            if (ne == 0 || ne > ((uint64_t)1 << 40) || !lm_mul_ok(nel, ne, &nel) || nel > ((uint64_t)1 << 48))
                return lm_fail(LM_STATUS_FORMAT, "gguf: tensor '%s' has an invalid dimension %u = %llu",
                               t->name, d, (unsigned long long)ne);
            t->ne[d] = (int64_t)ne;
        }
        if (!rd(&c, &type, 4) || !rd(&c, &t->offset, 8))
            return lm_fail(LM_STATUS_FORMAT, "gguf: tensor '%s': truncated info", t->name);
        if (!lm_dtype_valid(type))
            return lm_fail(LM_STATUS_UNSUPPORTED, "gguf: tensor '%s' has unsupported type %u (%s)", t->name, type,
                           lm_dtype_name((lm_dtype)type));
        t->type = (lm_dtype)type;
        const lm_dtype_traits *tr = lm_dtype_get(t->type);
        if (t->ne[0] % tr->block != 0)
            return lm_fail(LM_STATUS_FORMAT, "gguf: tensor '%s': row length %lld is not a multiple of the %s block size %d",
                           t->name, (long long)t->ne[0], tr->name, tr->block);
        t->size = (nel / (uint64_t)tr->block) * (uint64_t)tr->block_bytes;
        if (t->offset % g->alignment != 0)
            return lm_fail(LM_STATUS_FORMAT, "gguf: tensor '%s' offset %llu is not aligned to %llu", t->name,
                           (unsigned long long)t->offset, (unsigned long long)g->alignment);
    }
    g->data_offset = lm_pad(c.pos, g->alignment);
    if (g->data_offset > g->size && n_tensors > 0)
        return lm_fail(LM_STATUS_FORMAT, "gguf: file ends (%zu bytes) before the tensor data section (%llu)", g->size,
                       (unsigned long long)g->data_offset);
    uint64_t data_size = g->size > g->data_offset ? g->size - g->data_offset : 0;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        lm_gguf_tensor *t = &g->tensors[i];
        uint64_t end;
        if (!lm_add_ok(t->offset, t->size, &end) || end > data_size)
            return lm_fail(LM_STATUS_FORMAT,
                           "gguf: tensor '%s' data [%llu, +%llu) lies outside the %llu-byte data section (file truncated?)",
                           t->name, (unsigned long long)t->offset, (unsigned long long)t->size,
                           (unsigned long long)data_size);
        if ((g->data_offset + t->offset) % dtype_align(t->type) != 0)
            return lm_fail(LM_STATUS_FORMAT, "gguf: tensor '%s' data at file offset %llu is not aligned to %llu bytes as %s requires",
                           t->name, (unsigned long long)(g->data_offset + t->offset),
                           (unsigned long long)dtype_align(t->type), lm_dtype_name(t->type));
        t->data = g->base + g->data_offset + t->offset;
    }
    if (g->n_tensors > 1) {
        /* overlapping tensors are an error (duplicate names were caught while reading) */
        lm_gguf_tensor **order = malloc((size_t)g->n_tensors * sizeof *order);
        if (!order) return lm_fail(LM_STATUS_OUT_OF_MEMORY, "gguf: out of memory");
        for (int64_t i = 0; i < g->n_tensors; i++) order[i] = &g->tensors[i];
        qsort(order, (size_t)g->n_tensors, sizeof *order, cmp_tensor_offset);
        lm_status st = LM_STATUS_OK;
        for (int64_t i = 1; i < g->n_tensors && !st; i++)
            if (order[i - 1]->offset + order[i - 1]->size > order[i]->offset)
                st = lm_fail(LM_STATUS_FORMAT, "gguf: tensors '%s' and '%s' overlap", order[i - 1]->name, order[i]->name);
        free(order);
        LM_TRY(st);
    }
    return LM_STATUS_OK;
}

static lm_status parse(lm_gguf *g) {
    nameset names = {0};
    lm_status st = parse_body(g, &names);
    nameset_free(&names);
    return st;
}

static lm_gguf *gguf_new(void) { return calloc(1, sizeof(lm_gguf)); }

lm_status lm_gguf_parse(const void *data, size_t size, lm_gguf **out) {
    *out = NULL;
    if (!data && size) return lm_fail(LM_STATUS_INVALID_ARGUMENT, "gguf: NULL buffer");
    lm_gguf *g = gguf_new();
    if (!g) return lm_fail(LM_STATUS_OUT_OF_MEMORY, "gguf: out of memory");
    g->base = data;
    g->size = size;
    lm_status st = parse(g);
    if (st) {
        lm_gguf_close(g);
        return st;
    }
    *out = g;
    return LM_STATUS_OK;
}

lm_status lm_gguf_open(const char *path, bool use_mmap, lm_gguf **out) {
    *out = NULL;
    if (!path) return lm_fail(LM_STATUS_INVALID_ARGUMENT, "gguf: NULL path");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return lm_fail(LM_STATUS_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return lm_fail(LM_STATUS_IO, "'%s' is not a regular file", path);
    }
    lm_gguf *g = gguf_new();
    if (!g) {
        close(fd);
        return lm_fail(LM_STATUS_OUT_OF_MEMORY, "gguf: out of memory");
    }
    g->size = (size_t)st.st_size;
    if (g->size == 0) {
        close(fd);
        lm_gguf_close(g);
        return lm_fail(LM_STATUS_FORMAT, "'%s' is empty", path);
    }
    if (use_mmap) {
        void *m = mmap(NULL, g->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            const int err = errno; /* before close() can change it */
            close(fd);
            lm_gguf_close(g);
            return lm_fail(LM_STATUS_IO, "cannot map '%s': %s", path, strerror(err));
        }
        g->map = m;
        g->base = m;
    } else {
        g->owned = lm_aalloc(g->size);
        if (!g->owned) {
            const size_t size = g->size; /* g is freed below */
            close(fd);
            lm_gguf_close(g);
            return lm_fail(LM_STATUS_OUT_OF_MEMORY, "cannot allocate %zu bytes to read '%s'", size, path);
        }
        size_t got = 0;
        while (got < g->size) {
            ssize_t r = read(fd, (uint8_t *)g->owned + got, g->size - got);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) {
                close(fd);
                lm_gguf_close(g);
                return lm_fail(LM_STATUS_IO, "read of '%s' failed after %zu bytes", path, got);
            }
            got += (size_t)r;
        }
        g->base = g->owned;
    }
    close(fd);
    lm_status s = parse(g);
    if (s) {
        lm_fail_prefix(s, "%s: ", path);
        lm_gguf_close(g);
        return s;
    }
    *out = g;
    return LM_STATUS_OK;
}

void lm_gguf_close(lm_gguf *g) {
    if (!g) return;
    while (g->blocks) {
        blk *n = g->blocks->next;
        free(g->blocks);
        g->blocks = n;
    }
    free(g->kv);
    free(g->tensors);
    if (g->map) munmap(g->map, g->size);
    lm_afree(g->owned);
    free(g);
}

uint32_t lm_gguf_version(const lm_gguf *g) { return g->version; }
uint64_t lm_gguf_alignment(const lm_gguf *g) { return g->alignment; }
uint64_t lm_gguf_data_offset(const lm_gguf *g) { return g->data_offset; }
uint64_t lm_gguf_file_size(const lm_gguf *g) { return g->size; }
const uint8_t *lm_gguf_base(const lm_gguf *g) { return g->base; }
int64_t lm_gguf_n_kv(const lm_gguf *g) { return g->n_kv; }
uint64_t lm_gguf_kv_end(const lm_gguf *g) { return g->kv_end; }
int64_t lm_gguf_n_tensors(const lm_gguf *g) { return g->n_tensors; }

const lm_gguf_kv *lm_gguf_kv_at(const lm_gguf *g, int64_t i) {
    return i >= 0 && i < g->n_kv ? &g->kv[i] : NULL;
}

bool lm_gguf_str_eq(lm_gguf_str s, const char *c) {
    size_t n = strlen(c);
    return s.len == n && memcmp(s.ptr, c, n) == 0;
}

const lm_gguf_kv *lm_gguf_find(const lm_gguf *g, const char *key) {
    for (int64_t i = 0; i < g->n_kv; i++)
        if (lm_gguf_str_eq(g->kv[i].key, key)) return &g->kv[i];
    return NULL;
}

const lm_gguf_tensor *lm_gguf_tensor_at(const lm_gguf *g, int64_t i) {
    return i >= 0 && i < g->n_tensors ? &g->tensors[i] : NULL;
}

const lm_gguf_tensor *lm_gguf_find_tensor(const lm_gguf *g, const char *name) {
    for (int64_t i = 0; i < g->n_tensors; i++)
        if (strcmp(g->tensors[i].name, name) == 0) return &g->tensors[i];
    return NULL;
}

static bool is_signed(uint32_t t) { return t == LM_GGUF_I8 || t == LM_GGUF_I16 || t == LM_GGUF_I32 || t == LM_GGUF_I64; }
static bool is_unsigned(uint32_t t) {
    return t == LM_GGUF_U8 || t == LM_GGUF_U16 || t == LM_GGUF_U32 || t == LM_GGUF_U64 || t == LM_GGUF_BOOL;
}

lm_status lm_gguf_get_i64(const lm_gguf *g, const char *key, int64_t *out) {
    const lm_gguf_kv *kv = lm_gguf_find(g, key);
    if (!kv) return lm_fail(LM_STATUS_NOT_FOUND, "metadata key '%s' not found", key);
    uint32_t t = kv->value.type;
    if (is_signed(t)) *out = kv->value.i64;
    else if (is_unsigned(t) && kv->value.u64 <= (uint64_t)INT64_MAX) *out = (int64_t)kv->value.u64;
    else return lm_fail(LM_STATUS_FORMAT, "metadata key '%s' has type %s, expected an integer", key, lm_gguf_type_name(t));
    return LM_STATUS_OK;
}

lm_status lm_gguf_get_u32(const lm_gguf *g, const char *key, uint32_t *out) {
    int64_t v;
    LM_TRY(lm_gguf_get_i64(g, key, &v));
    if (v < 0 || v > (int64_t)UINT32_MAX)
        return lm_fail(LM_STATUS_FORMAT, "metadata key '%s' = %lld is out of range", key, (long long)v);
    *out = (uint32_t)v;
    return LM_STATUS_OK;
}

lm_status lm_gguf_get_f32(const lm_gguf *g, const char *key, float *out) {
    const lm_gguf_kv *kv = lm_gguf_find(g, key);
    if (!kv) return lm_fail(LM_STATUS_NOT_FOUND, "metadata key '%s' not found", key);
    uint32_t t = kv->value.type;
    if (t == LM_GGUF_F32 || t == LM_GGUF_F64) *out = (float)kv->value.f64;
    else if (is_signed(t)) *out = (float)kv->value.i64;
    else if (is_unsigned(t)) *out = (float)kv->value.u64;
    else return lm_fail(LM_STATUS_FORMAT, "metadata key '%s' has type %s, expected a number", key, lm_gguf_type_name(t));
    return LM_STATUS_OK;
}

lm_status lm_gguf_get_bool(const lm_gguf *g, const char *key, bool *out) {
    const lm_gguf_kv *kv = lm_gguf_find(g, key);
    if (!kv) return lm_fail(LM_STATUS_NOT_FOUND, "metadata key '%s' not found", key);
    if (kv->value.type == LM_GGUF_BOOL || is_unsigned(kv->value.type)) *out = kv->value.u64 != 0;
    else if (is_signed(kv->value.type)) *out = kv->value.i64 != 0;
    else return lm_fail(LM_STATUS_FORMAT, "metadata key '%s' has type %s, expected bool", key, lm_gguf_type_name(kv->value.type));
    return LM_STATUS_OK;
}

lm_status lm_gguf_get_str(const lm_gguf *g, const char *key, lm_gguf_str *out) {
    const lm_gguf_kv *kv = lm_gguf_find(g, key);
    if (!kv) return lm_fail(LM_STATUS_NOT_FOUND, "metadata key '%s' not found", key);
    if (kv->value.type != LM_GGUF_STRING)
        return lm_fail(LM_STATUS_FORMAT, "metadata key '%s' has type %s, expected string", key, lm_gguf_type_name(kv->value.type));
    *out = kv->value.str;
    return LM_STATUS_OK;
}

lm_status lm_gguf_get_arr(const lm_gguf *g, const char *key, uint32_t elem_type, const lm_gguf_value **out) {
    const lm_gguf_kv *kv = lm_gguf_find(g, key);
    if (!kv) return lm_fail(LM_STATUS_NOT_FOUND, "metadata key '%s' not found", key);
    if (kv->value.type != LM_GGUF_ARRAY)
        return lm_fail(LM_STATUS_FORMAT, "metadata key '%s' has type %s, expected array", key, lm_gguf_type_name(kv->value.type));
    if (elem_type < LM_GGUF_TYPE_COUNT && kv->value.arr.type != elem_type)
        return lm_fail(LM_STATUS_FORMAT, "metadata key '%s' is an array of %s, expected %s", key,
                       lm_gguf_type_name(kv->value.arr.type), lm_gguf_type_name(elem_type));
    *out = &kv->value;
    return LM_STATUS_OK;
}

bool lm_gguf_arr_int(const lm_gguf_value *a, uint64_t i, int64_t *out) {
    if (a->type != LM_GGUF_ARRAY || i >= a->arr.n || !a->arr.data) return false;
    const uint8_t *p = a->arr.data + i * type_sizes[a->arr.type];
    switch (a->arr.type) {
    case LM_GGUF_U8: case LM_GGUF_BOOL: *out = p[0]; return true;
    case LM_GGUF_I8: *out = (int8_t)p[0]; return true;
    case LM_GGUF_U16: { uint16_t v; memcpy(&v, p, 2); *out = v; return true; }
    case LM_GGUF_I16: { int16_t v; memcpy(&v, p, 2); *out = v; return true; }
    case LM_GGUF_U32: { uint32_t v; memcpy(&v, p, 4); *out = v; return true; }
    case LM_GGUF_I32: { int32_t v; memcpy(&v, p, 4); *out = v; return true; }
    case LM_GGUF_U64: { uint64_t v; memcpy(&v, p, 8); if (v > (uint64_t)INT64_MAX) return false; *out = (int64_t)v; return true; }
    case LM_GGUF_I64: { int64_t v; memcpy(&v, p, 8); *out = v; return true; }
    default: return false;
    }
}

bool lm_gguf_arr_float(const lm_gguf_value *a, uint64_t i, double *out) {
    if (a->type != LM_GGUF_ARRAY || i >= a->arr.n || !a->arr.data) return false;
    const uint8_t *p = a->arr.data + i * type_sizes[a->arr.type];
    if (a->arr.type == LM_GGUF_F32) { float v; memcpy(&v, p, 4); *out = v; return true; }
    if (a->arr.type == LM_GGUF_F64) { double v; memcpy(&v, p, 8); *out = v; return true; }
    if (a->arr.type == LM_GGUF_U64) { uint64_t v; memcpy(&v, p, 8); *out = (double)v; return true; } /* > INT64_MAX too */
    int64_t v;
    if (!lm_gguf_arr_int(a, i, &v)) return false;
    *out = (double)v;
    return true;
}

static size_t put_escaped(char *buf, size_t cap, size_t at, const char *s, uint64_t n) {
    for (uint64_t i = 0; i < n && at + 5 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\n') { buf[at++] = '\\'; buf[at++] = 'n'; }
        else if (ch < 32) at += (size_t)snprintf(buf + at, cap - at, "\\x%02x", ch);
        else buf[at++] = (char)ch;
    }
    if (at < cap) buf[at] = 0;
    return at;
}

void lm_gguf_value_str(const lm_gguf_value *v, char *buf, size_t cap) {
    if (cap == 0) return;
    buf[0] = 0;
    switch (v->type) {
    case LM_GGUF_U8: case LM_GGUF_U16: case LM_GGUF_U32: case LM_GGUF_U64:
        snprintf(buf, cap, "%llu", (unsigned long long)v->u64); break;
    case LM_GGUF_I8: case LM_GGUF_I16: case LM_GGUF_I32: case LM_GGUF_I64:
        snprintf(buf, cap, "%lld", (long long)v->i64); break;
    case LM_GGUF_F32: case LM_GGUF_F64: snprintf(buf, cap, "%g", v->f64); break;
    case LM_GGUF_BOOL: snprintf(buf, cap, "%s", v->u64 ? "true" : "false"); break;
    case LM_GGUF_STRING: {
        size_t at = put_escaped(buf, cap, 0, v->str.ptr, v->str.len < 200 ? v->str.len : 200);
        if (v->str.len > 200 && at + 4 < cap) snprintf(buf + at, cap - at, "...");
        break;
    }
    case LM_GGUF_ARRAY: {
        size_t at = (size_t)snprintf(buf, cap, "[%s x %llu] ", lm_gguf_type_name(v->arr.type), (unsigned long long)v->arr.n);
        uint64_t show = v->arr.n < 6 ? v->arr.n : 6;
        for (uint64_t i = 0; i < show && at + 32 < cap; i++) {
            if (v->arr.type == LM_GGUF_STRING) {
                buf[at++] = '\'';
                at = put_escaped(buf, cap, at, v->arr.strs[i].ptr, v->arr.strs[i].len < 24 ? v->arr.strs[i].len : 24);
                if (at + 2 < cap) { buf[at++] = '\''; buf[at] = 0; }
            } else if (v->arr.type == LM_GGUF_ARRAY) {
                at += (size_t)snprintf(buf + at, cap - at, "[array x %llu]", (unsigned long long)v->arr.elems[i].arr.n);
            } else if (v->arr.type == LM_GGUF_BOOL) {
                at += (size_t)snprintf(buf + at, cap - at, "%s", v->arr.data[i] ? "true" : "false");
            } else if (v->arr.type == LM_GGUF_U64) {
                uint64_t u;
                memcpy(&u, v->arr.data + i * 8, 8);
                at += (size_t)snprintf(buf + at, cap - at, "%llu", (unsigned long long)u);
            } else if (v->arr.type == LM_GGUF_F32 || v->arr.type == LM_GGUF_F64) {
                double d = 0;
                lm_gguf_arr_float(v, i, &d);
                at += (size_t)snprintf(buf + at, cap - at, "%g", d);
            } else {
                int64_t n = 0;
                lm_gguf_arr_int(v, i, &n);
                at += (size_t)snprintf(buf + at, cap - at, "%lld", (long long)n);
            }
            if (i + 1 < v->arr.n && at + 3 < cap) at += (size_t)snprintf(buf + at, cap - at, ", ");
        }
        if (show < v->arr.n && at + 4 < cap) snprintf(buf + at, cap - at, "...");
        break;
    }
    }
}
