/*
 * quantize.c — lm_model_quantize: rewrite a GGUF model's weight matrices in one of lumen's own
 * formats (i4_g128, f8_e4m3; quant_blocks.h), everything else copied byte for byte.
 *
 * Converted: tensors of two or more dimensions named "*.weight" whose rows are whole 128-element
 * groups, stored as F32 / F16 / BF16 (or any quantized type with `requantize`), except norms and
 * the MoE router (small and sensitive). The metadata is copied verbatim (it is one contiguous byte
 * range of the input) plus the key "lumen.quantize.type"; tensor data keeps the input's alignment.
 * f8_e4m3 with `per_channel` gives every block of a row the row's scale (amax / 448).
 * Quantization uses the reference quantizers of quant.c, row by row, in the calling thread.
 */
#include "gguf.h"
#include "lumen.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

lm_quantize_params lm_quantize_default_params(void) {
    lm_quantize_params p;
    memset(&p, 0, sizeof p);
    p.type = "f8_e4m3";
    return p;
}

static bool convertible(const lm_gguf_tensor *t, lm_dtype to, bool requantize) {
    const size_t n = strlen(t->name);
    if (t->n_dims < 2 || n < 7 || strcmp(t->name + n - 7, ".weight") != 0) return false;
    if (strstr(t->name, "norm") || strstr(t->name, "ffn_gate_inp")) return false;
    /* 4 bits are too few for the embedding / output head (Gemma ties them): like Q4_K_M, which
       keeps them at 6-8 bits, i4_g128 leaves them as they are */
    if (to == LM_I4_G128 && (!strcmp(t->name, "token_embd.weight") || !strcmp(t->name, "output.weight"))) return false;
    if (t->ne[0] % 128 != 0) return false;
    if (t->type == LM_F32 || t->type == LM_F16 || t->type == LM_BF16) return true;
    return requantize && t->type != LM_I4_G128 && t->type != LM_F8_E4M3 && lm_dtype_get(t->type)->dequant != NULL;
}

static bool put(FILE *f, const void *p, size_t n) { return fwrite(p, 1, n, f) == n; }
static bool put_u32(FILE *f, uint32_t v) { return put(f, &v, 4); }
static bool put_u64(FILE *f, uint64_t v) { return put(f, &v, 8); }
static bool put_str(FILE *f, const char *s) { return put_u64(f, strlen(s)) && put(f, s, strlen(s)); }
static bool pad_to(FILE *f, uint64_t align) {
    static const uint8_t zeros[4096];
    const long pos = ftell(f);
    if (pos < 0) return false;
    const uint64_t n = (align - (uint64_t)pos % align) % align;
    return n == 0 || put(f, zeros, (size_t)n);
}

/* one row of src (type st) as `to` */
static void convert_row(lm_dtype st, const void *src, lm_dtype to, bool per_channel, int64_t K, float *tmp, void *dst) {
    lm_dequant_row(st, src, tmp, K);
    if (to == LM_F8_E4M3 && per_channel) {
        float amax = 0.0f;
        for (int64_t i = 0; i < K; i++) amax = fmaxf(amax, fabsf(tmp[i]));
        const float d = amax / 448.0f, id = amax > 0.0f ? 448.0f / amax : 0.0f;
        lm_block_f8_e4m3 *b = dst;
        for (int64_t j = 0; j < K / LM_QK_G128; j++) {
            b[j].d = d;
            for (int i = 0; i < LM_QK_G128; i++) b[j].qs[i] = lm_f32_to_e4m3(tmp[j * LM_QK_G128 + i] * id);
        }
        return;
    }
    lm_dtype_get(to)->quant(tmp, dst, K);
}

lm_status lm_model_quantize(const char *in, const char *out, const lm_quantize_params *params) {
    const lm_quantize_params p = params ? *params : lm_quantize_default_params();
    lm_dtype to;
    if (p.type && !strcmp(p.type, "i4_g128")) to = LM_I4_G128;
    else if (p.type && !strcmp(p.type, "f8_e4m3")) to = LM_F8_E4M3;
    else return lm_fail(LM_STATUS_INVALID_ARGUMENT, "quantize: unknown type '%s' (i4_g128 or f8_e4m3)", p.type ? p.type : "(null)");
    if (p.per_channel && to != LM_F8_E4M3) return lm_fail(LM_STATUS_INVALID_ARGUMENT, "quantize: per-channel scales are for f8_e4m3");
    if (!in || !out) return lm_fail(LM_STATUS_INVALID_ARGUMENT, "quantize: input and output paths are required");
    lm_gguf *g;
    LM_TRY(lm_gguf_open(in, true, &g));
    const int64_t nt = lm_gguf_n_tensors(g);
    const uint64_t align = lm_gguf_alignment(g);
    const bool has_key = lm_gguf_find(g, "lumen.quantize.type") != NULL;
    lm_status st = LM_STATUS_OK;
    float *tmp = NULL;
    uint8_t *row = NULL;
    FILE *f = fopen(out, "wb");
    if (!f) {
        lm_gguf_close(g);
        return lm_fail(LM_STATUS_IO, "quantize: cannot create '%s'", out);
    }
    /* sizes and types of the output tensors */
    lm_dtype *types = calloc((size_t)nt + 1, sizeof *types);
    uint64_t *sizes = calloc((size_t)nt + 1, sizeof *sizes);
    int64_t max_k = 1, n_conv = 0;
    uint64_t total = 0;
    if (!types || !sizes) st = lm_fail(LM_STATUS_OUT_OF_MEMORY, "quantize: out of memory");
    for (int64_t i = 0; i < nt && !st; i++) {
        const lm_gguf_tensor *t = lm_gguf_tensor_at(g, i);
        const bool conv = convertible(t, to, p.requantize);
        types[i] = conv ? to : t->type;
        if (conv) {
            int64_t rows = 1;
            for (int d = 1; d < t->n_dims; d++) rows *= t->ne[d];
            sizes[i] = (uint64_t)rows * lm_row_bytes(to, t->ne[0]);
            max_k = t->ne[0] > max_k ? t->ne[0] : max_k;
            n_conv++;
        } else {
            sizes[i] = t->size;
        }
        total += sizes[i];
    }
    if (!st && n_conv == 0) st = lm_fail(LM_STATUS_UNSUPPORTED, "quantize: '%s' has no F32/F16/BF16 weight matrices with rows of whole 128-groups%s", in,
                                         p.requantize ? "" : " (use requantize for quantized files)");
    if (!st) {
        tmp = malloc((size_t)max_k * sizeof(float));
        row = malloc(lm_row_bytes(to, max_k) + 64);
        if (!tmp || !row) st = lm_fail(LM_STATUS_OUT_OF_MEMORY, "quantize: out of memory");
    }
    /* header and metadata (verbatim, plus our key) */
    const uint8_t *base = lm_gguf_base(g);
    bool ok = !st && put(f, "GGUF", 4) && put_u32(f, 3) && put_u64(f, (uint64_t)nt) &&
              put_u64(f, (uint64_t)lm_gguf_n_kv(g) + (has_key ? 0 : 1)) && put(f, base + 24, lm_gguf_kv_end(g) - 24);
    if (ok && !has_key) ok = put_str(f, "lumen.quantize.type") && put_u32(f, LM_GGUF_STRING) && put_str(f, lm_dtype_name(to));
    /* tensor infos */
    uint64_t off = 0;
    for (int64_t i = 0; i < nt && ok; i++) {
        const lm_gguf_tensor *t = lm_gguf_tensor_at(g, i);
        ok = put_str(f, t->name) && put_u32(f, (uint32_t)t->n_dims);
        for (int d = 0; d < t->n_dims && ok; d++) ok = put_u64(f, (uint64_t)t->ne[d]);
        ok = ok && put_u32(f, (uint32_t)types[i]) && put_u64(f, off);
        off += (sizes[i] + align - 1) / align * align;
    }
    ok = ok && pad_to(f, align);
    /* data */
    uint64_t done = 0;
    for (int64_t i = 0; i < nt && ok; i++) {
        const lm_gguf_tensor *t = lm_gguf_tensor_at(g, i);
        if (types[i] == t->type) {
            ok = put(f, t->data, (size_t)t->size);
        } else {
            const int64_t K = t->ne[0], rows = (int64_t)(t->size / lm_row_bytes(t->type, K));
            const size_t in_rb = lm_row_bytes(t->type, K), out_rb = lm_row_bytes(to, K);
            for (int64_t r = 0; r < rows && ok; r++) {
                convert_row(t->type, (const uint8_t *)t->data + (size_t)r * in_rb, to, p.per_channel, K, tmp, row);
                ok = put(f, row, out_rb);
            }
        }
        ok = ok && pad_to(f, align);
        done += sizes[i];
        if (p.progress) p.progress(total ? (float)((double)done / (double)total) : 1.0f, p.progress_user);
    }
    if (!st && !ok) st = lm_fail(LM_STATUS_IO, "quantize: writing '%s' failed (disk full?)", out);
    if (fclose(f) != 0 && !st) st = lm_fail(LM_STATUS_IO, "quantize: writing '%s' failed", out);
    if (st) remove(out);
    free(tmp);
    free(row);
    free(types);
    free(sizes);
    lm_gguf_close(g);
    return st;
}
