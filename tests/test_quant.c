/*
 * test_quant.c — the numerical definition of every tensor type.
 *
 *   - lm_dequant_row is bit-exact with gguf.quants.dequantize (the gguf Python package) on the
 *     random blocks of tests/fixtures/quant/<type>.bin, written by tools/gen_quant_fixtures.py;
 *     so are the CPU kernel tables' own (per-ISA vectorized) dequantizers, each table this CPU
 *     can run.
 *     Fixture format (little-endian): "LMQF", u32 version 1, u32 ggml type id, u32 elements per
 *     block, u32 bytes per block, u32 n_blocks, u32 n_elements, u32 n_bytes, then n_bytes of
 *     blocks and n_elements float32 expected values.
 *   - f16 <-> f32 and bf16 <-> f32 conversions: exhaustive over all 65536 16-bit patterns, and
 *     f32 -> f16 / bf16 rounding against a double-precision round-to-nearest-even reference on
 *     millions of floats (every tie point, the overflow and underflow boundaries, random bits).
 *   - the activation quantizers q8_0 / q8_1 / q8_K round to the nearest step.
 *   - lm_dtype_get agrees with the block layouts of quant_blocks.h.
 */
#include <criterion/criterion.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/kernels.h"
#include "dtype.h"
#include "test_util.h"

static uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

/* ---------------------------------------------------------------------------------------- */
/* dequantization fixtures                                                                  */

static void check_fixture(lm_dtype type, const char *file) {
    char rel[64];
    snprintf(rel, sizeof rel, "quant/%s", file);
    size_t size = 0;
    uint8_t *buf = tu_read_file(tu_fixture(rel), &size);
    cr_assert(buf, "cannot read fixture %s (run tools/gen_quant_fixtures.py)", tu_fixture(rel));
    cr_assert_geq(size, 32u);
    cr_assert_eq(memcmp(buf, "LMQF", 4), 0, "%s: bad magic", file);
    cr_assert_eq(rd32(buf + 4), 1u, "%s: fixture version", file);
    const uint32_t id = rd32(buf + 8), block = rd32(buf + 12), block_bytes = rd32(buf + 16);
    const uint32_t n_blocks = rd32(buf + 20), n = rd32(buf + 24), n_bytes = rd32(buf + 28);
    cr_assert_eq(id, (uint32_t)type, "%s holds type %u", file, id);
    cr_assert_eq((uint64_t)n_blocks * block, n);
    cr_assert_eq((uint64_t)n_blocks * block_bytes, n_bytes);
    cr_assert_eq(size, 32u + n_bytes + 4ull * n, "%s: size %zu", file, size);

    /* the block geometry of the reference (GGML_QUANT_SIZES) equals ours */
    const lm_dtype_traits *tr = lm_dtype_get(type);
    cr_assert(tr && tr->dequant);
    cr_assert_eq(tr->block, (int32_t)block, "%s block %d vs gguf-py %u", tr->name, tr->block, block);
    cr_assert_eq(tr->block_bytes, (int32_t)block_bytes, "%s bytes %d vs gguf-py %u", tr->name, tr->block_bytes,
                 block_bytes);
    cr_assert_eq(lm_row_bytes(type, n), n_bytes);

    /* exact-size copies so ASan sees any read past the blocks / write past the row */
    uint8_t *src = malloc(n_bytes);
    float *out = malloc((size_t)n * 4), *want = malloc((size_t)n * 4);
    memcpy(src, buf + 32, n_bytes);
    memcpy(want, buf + 32 + n_bytes, (size_t)n * 4);
    free(buf);
    memset(out, 0xA5, (size_t)n * 4);
    lm_dequant_row(type, src, out, n);

    uint32_t bad = 0, first = UINT32_MAX;
    for (uint32_t i = 0; i < n; i++) {
        const uint32_t a = f2u(out[i]), b = f2u(want[i]);
        const bool same = a == b || (isnan(out[i]) && isnan(want[i]));
        if (!same) {
            if (first == UINT32_MAX) first = i;
            bad++;
        }
    }
    if (bad)
        cr_log_error("%s: %u of %u values differ; first at %u (block %u): got %a (0x%08x), want %a (0x%08x)", tr->name,
                     bad, n, first, first / block, (double)out[first], f2u(out[first]), (double)want[first],
                     f2u(want[first]));
    cr_assert_eq(bad, 0u, "%s dequantization is not bit-exact with gguf-py", tr->name);

    /* the CPU kernel tables' dequantizers (the prefill GEMM's), where they have one */
    const lm_cpu_kernels *tables[3] = {&lm_cpu_kernels_generic, NULL, NULL};
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) tables[1] = &lm_cpu_kernels_avx2;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vnni"))
        tables[2] = &lm_cpu_kernels_avx512;
#endif
    for (int k = 0; k < 3; k++) {
        if (!tables[k] || !tables[k]->dequant[type]) continue;
        memset(out, 0xA5, (size_t)n * 4);
        tables[k]->dequant[type](src, out, n);
        uint32_t kbad = 0;
        for (uint32_t i = 0; i < n; i++) kbad += !(f2u(out[i]) == f2u(want[i]) || (isnan(out[i]) && isnan(want[i])));
        cr_assert_eq(kbad, 0u, "%s: the %s kernel table's dequantizer differs from gguf-py in %u of %u values", tr->name,
                     tables[k]->isa, kbad, n);
    }

    /* and row by row in sub-ranges: a dequantizer must not depend on where a row starts */
    const uint32_t half = n_blocks / 2;
    lm_dequant_row(type, src + (size_t)half * block_bytes, out, (int64_t)(n_blocks - half) * block);
    cr_assert_eq(memcmp(out, want + (size_t)half * block, (size_t)(n_blocks - half) * block * 4), 0);
    free(src);
    free(out);
    free(want);
}

#define FIXTURE_TEST(T, FILE)                                                                      \
    Test(dequant, T) { check_fixture(LM_##T, FILE); }

FIXTURE_TEST(F32, "f32.bin")
FIXTURE_TEST(F16, "f16.bin")
FIXTURE_TEST(BF16, "bf16.bin")
FIXTURE_TEST(Q4_0, "q4_0.bin")
FIXTURE_TEST(Q4_1, "q4_1.bin")
FIXTURE_TEST(Q5_0, "q5_0.bin")
FIXTURE_TEST(Q5_1, "q5_1.bin")
FIXTURE_TEST(Q8_0, "q8_0.bin")
FIXTURE_TEST(Q2_K, "q2_k.bin")
FIXTURE_TEST(Q3_K, "q3_k.bin")
FIXTURE_TEST(Q4_K, "q4_k.bin")
FIXTURE_TEST(Q5_K, "q5_k.bin")
FIXTURE_TEST(Q6_K, "q6_k.bin")

/* ---------------------------------------------------------------------------------------- */
/* f16                                                                                      */

static bool h_is_nan(uint16_t h) { return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0; }

/* Value of a half from its fields, in double (exact). */
static double ref_f16_value(uint16_t h) {
    const int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    const double s = (h & 0x8000u) ? -1.0 : 1.0;
    if (e == 0) return s * ldexp(m, -24);
    if (e == 31) return m ? NAN : s * INFINITY;
    return s * ldexp(1024 + m, e - 25);
}

/* Reference f32 -> f16, round to nearest even, computed in double (x has 24 significant bits,
 * so x / quantum is exact and rint() does the one rounding). */
static uint16_t ref_f32_to_f16(float f) {
    if (isnan(f)) return 0x7e00;
    const uint16_t sign = signbit(f) ? 0x8000 : 0;
    const double a = fabs((double)f);
    if (a >= 65520.0) return sign | 0x7c00; /* 65520 = midpoint of 65504 and 2^16: ties to even = inf */
    if (a < 0x1p-14) {
        const double q = rint(a / 0x1p-24); /* 0..1024; 1024 encodes the smallest normal */
        return (uint16_t)(sign | (uint16_t)q);
    }
    int e;
    frexp(a, &e); /* a = m * 2^e, m in [0.5, 1): floor(log2 a) = e - 1 */
    const double q = rint(a / ldexp(1.0, e - 1 - 10)); /* 1024..2048 */
    /* q == 2048 carries into the exponent field, which is the correct encoding */
    return (uint16_t)(sign | (uint16_t)(((e - 1 + 15) << 10) + (int)q - 1024));
}

static void check_f16_round(float f) {
    const uint16_t got = lm_f32_to_f16(f), want = ref_f32_to_f16(f);
    if (isnan(f)) {
        cr_assert(h_is_nan(got), "f32->f16(NaN 0x%08x) = 0x%04x is not NaN", f2u(f), got);
        return;
    }
    cr_assert_eq(got, want, "f32->f16(%a = 0x%08x) = 0x%04x, want 0x%04x", (double)f, f2u(f), got, want);
}

Test(f16, to_f32_exhaustive) {
    for (uint32_t h = 0; h < 65536; h++) {
        const float f = lm_f16_to_f32((uint16_t)h);
        const double want = ref_f16_value((uint16_t)h);
        if (h_is_nan((uint16_t)h)) {
            cr_assert(isnan(f), "f16 0x%04x must give NaN", h);
            cr_assert_eq(signbit(f) != 0, (h & 0x8000u) != 0, "f16 NaN 0x%04x lost its sign", h);
            continue;
        }
        cr_assert_eq((double)f, want, "f16 0x%04x -> %a, want %a", h, (double)f, want);
        cr_assert_eq(signbit(f) != 0, (h & 0x8000u) != 0, "f16 0x%04x: sign", h);
    }
}

Test(f16, round_trip_exhaustive) {
    for (uint32_t h = 0; h < 65536; h++) {
        const uint16_t back = lm_f32_to_f16(lm_f16_to_f32((uint16_t)h));
        if (h_is_nan((uint16_t)h))
            cr_assert(h_is_nan(back), "NaN 0x%04x came back as 0x%04x", h, back);
        else
            cr_assert_eq(back, h, "0x%04x -> f32 -> 0x%04x", h, back);
    }
}

Test(f16, rounding_ties_and_neighbours) {
    /* every midpoint between two adjacent finite halves (a tie, exactly representable in f32) and
     * its f32 neighbours, for both signs; plus the last finite / first overflowing values */
    for (uint32_t h = 0; h < 0x7c00; h++) {
        const double lo = ref_f16_value((uint16_t)h);
        const double hi = h + 1 < 0x7c00 ? ref_f16_value((uint16_t)(h + 1)) : 65536.0;
        const float mid = (float)((lo + hi) / 2);
        cr_assert_eq((double)mid, (lo + hi) / 2, "midpoint not exact");
        for (int s = 0; s < 2; s++) {
            const float m = s ? -mid : mid;
            check_f16_round(m);
            check_f16_round(nextafterf(m, INFINITY));
            check_f16_round(nextafterf(m, -INFINITY));
            check_f16_round(s ? -(float)lo : (float)lo);
        }
    }
    /* explicit spot checks of the reference itself */
    cr_assert_eq(ref_f32_to_f16(65504.0f), 0x7bff);
    cr_assert_eq(ref_f32_to_f16(65519.99f), 0x7bff);
    cr_assert_eq(ref_f32_to_f16(65520.0f), 0x7c00);
    cr_assert_eq(ref_f32_to_f16(0x1p-25f), 0x0000);             /* tie to even (0) */
    cr_assert_eq(ref_f32_to_f16(nextafterf(0x1p-25f, 1)), 0x0001);
    cr_assert_eq(ref_f32_to_f16(0x1.8p-24f), 0x0002);           /* 1.5 ulp: tie to even (2) */
    cr_assert_eq(ref_f32_to_f16(-0.0f), 0x8000);
    cr_assert_eq(ref_f32_to_f16(1.0f + 0x1p-11f), 0x3c00);       /* tie to even */
    cr_assert_eq(ref_f32_to_f16(1.0f + 0x1.8p-10f), 0x3c02);
}

Test(f16, rounding_boundaries) {
    /* thousands of f32 ulps around the overflow threshold, the normal/subnormal boundary, the
     * smallest subnormal and zero, both signs */
    static const float centres[] = {65504.0f, 65520.0f, 65536.0f, 0x1p-14f, 0x1p-24f, 0x1p-25f, 0x1p-26f,
                                    0x1.ffcp-15f, 0.0f, 1.0f, FLT_MAX, 0x1p-126f};
    for (size_t c = 0; c < sizeof centres / sizeof centres[0]; c++) {
        for (int s = 0; s < 2; s++) {
            float up = s ? -centres[c] : centres[c], down = up;
            for (int k = 0; k < 4096; k++) {
                check_f16_round(up);
                check_f16_round(down);
                up = nextafterf(up, INFINITY);
                down = nextafterf(down, -INFINITY);
            }
        }
    }
    check_f16_round(INFINITY);
    check_f16_round(-INFINITY);
    check_f16_round(NAN);
    check_f16_round(-NAN);
    check_f16_round(u2f(0x7f800001u)); /* signalling NaN with a payload the f16 mantissa loses */
    check_f16_round(u2f(0xff800001u));
    cr_assert_eq(lm_f32_to_f16(INFINITY), 0x7c00);
    cr_assert_eq(lm_f32_to_f16(-INFINITY), 0xfc00);
}

Test(f16, rounding_random) {
    tu_rng r = tu_seed(16);
    for (int i = 0; i < 2000000; i++) {
        uint32_t u = (uint32_t)tu_next(&r);
        if (i & 1) {
            /* concentrate on the f16 range: exponent 2^-27 .. 2^16 */
            const uint32_t e = 127 - 27 + (uint32_t)tu_range(&r, 0, 43);
            u = (u & 0x807fffffu) | (e << 23);
        }
        check_f16_round(u2f(u)); /* odd draws are uniform over all bit patterns incl. NaN/inf */
    }
}

/* ---------------------------------------------------------------------------------------- */
/* bf16                                                                                     */

static bool bf_is_nan(uint16_t h) { return (h & 0x7f80u) == 0x7f80u && (h & 0x7fu) != 0; }

/* Reference f32 -> bf16 round to nearest even, in double. */
static uint16_t ref_f32_to_bf16(float f) {
    if (isnan(f)) return 0x7fc0;
    const double a = fabs((double)f);
    const uint16_t sign = signbit(f) ? 0x8000 : 0;
    if (isinf(f)) return sign | 0x7f80;
    double quantum;
    if (a < 0x1p-126) {
        quantum = 0x1p-133; /* f32 subnormal range: bf16 keeps 7 of the 23 mantissa bits */
    } else {
        int e;
        frexp(a, &e);
        quantum = ldexp(1.0, e - 1 - 7);
    }
    const double r = rint(a / quantum) * quantum;
    if (r >= 0x1p128) return sign | 0x7f80;
    return (uint16_t)(sign | (f2u((float)r) >> 16));
}

static void check_bf16_round(float f) {
    const uint16_t got = lm_f32_to_bf16(f), want = ref_f32_to_bf16(f);
    if (isnan(f)) {
        cr_assert(bf_is_nan(got), "f32->bf16(NaN 0x%08x) = 0x%04x is not NaN", f2u(f), got);
        cr_assert_eq(got & 0x8000u, (f2u(f) >> 16) & 0x8000u, "NaN sign");
        return;
    }
    cr_assert_eq(got, want, "f32->bf16(%a = 0x%08x) = 0x%04x, want 0x%04x", (double)f, f2u(f), got, want);
}

Test(bf16, exhaustive) {
    for (uint32_t h = 0; h < 65536; h++) {
        const float f = lm_bf16_to_f32((uint16_t)h);
        cr_assert_eq(f2u(f), h << 16, "bf16 0x%04x widened wrongly", h);
        const uint16_t back = lm_f32_to_bf16(f);
        if (bf_is_nan((uint16_t)h))
            cr_assert(bf_is_nan(back), "bf16 NaN 0x%04x came back as 0x%04x", h, back);
        else
            cr_assert_eq(back, h, "bf16 0x%04x -> f32 -> 0x%04x", h, back);
        /* the tie point above h (low half 0x8000) and its neighbours */
        if (!bf_is_nan((uint16_t)h) && (h & 0x7fffu) != 0x7f80u) {
            const uint32_t tie = h << 16 | 0x8000u;
            check_bf16_round(u2f(tie));
            check_bf16_round(u2f(tie + 1));
            check_bf16_round(u2f(tie - 1));
        }
    }
    /* NaNs whose payload lives only in the low 16 bits must stay NaN */
    check_bf16_round(u2f(0x7f800001u));
    check_bf16_round(u2f(0xff800001u));
    check_bf16_round(u2f(0x7fffffffu));
    cr_assert_eq(ref_f32_to_bf16(FLT_MAX), 0x7f80);                  /* rounds up to inf */
    cr_assert_eq(ref_f32_to_bf16(u2f(0x7f7f7fffu)), 0x7f7f);
    cr_assert_eq(ref_f32_to_bf16(u2f(0x3f808000u)), 0x3f80);         /* tie to even */
    cr_assert_eq(ref_f32_to_bf16(u2f(0x3f818000u)), 0x3f82);
}

Test(bf16, rounding_random) {
    tu_rng r = tu_seed(30);
    for (int i = 0; i < 2000000; i++) check_bf16_round(u2f((uint32_t)tu_next(&r)));
}

/* ---------------------------------------------------------------------------------------- */
/* activation quantizers                                                                    */

/* n values in blocks of `blk` with a per-block magnitude (1e-3 .. 1e3), an all-zero block, a
 * block with a single non-zero element and one with a huge dynamic range. */
static float *activation_input(tu_rng *r, int64_t n, int blk) {
    float *x = malloc((size_t)n * sizeof *x);
    for (int64_t b = 0; b < n / blk; b++) {
        const float scale = powf(10.0f, tu_uniform(r) * 6.0f - 3.0f);
        tu_fill_normal(r, x + b * blk, blk, scale);
    }
    memset(x + 1 * blk, 0, (size_t)blk * sizeof *x);
    memset(x + 2 * blk, 0, (size_t)blk * sizeof *x);
    x[2 * blk + 5] = -3.25f;
    for (int j = 0; j < blk; j++) x[3 * blk + j] = (j & 1 ? -1.0f : 1.0f) * ldexpf(1.0f, j % 24 - 12);
    return x;
}

/* |y - x| <= half a step, plus the error of storing the scale in reduced precision */
static void check_half_step(const char *what, const float *x, const float *y, int blk, int64_t b, double step,
                            double stored_step) {
    const double tol = 0.5 * step + 127.0 * fabs(stored_step - step) + 1e-4 * step;
    for (int j = 0; j < blk; j++) {
        const double err = fabs((double)y[j] - (double)x[j]);
        cr_assert(err <= tol, "%s block %lld elem %d: x=%g y=%g err=%g > tol %g (step %g)", what, (long long)b, j,
                  (double)x[j], (double)y[j], err, tol, step);
    }
}

Test(quantize, q8_0) {
    tu_rng r = tu_seed(80);
    const int64_t n = 64 * LM_QK8_0;
    float *x = activation_input(&r, n, LM_QK8_0), *y = malloc((size_t)n * sizeof *y);
    lm_block_q8_0 *q = malloc((size_t)(n / LM_QK8_0) * sizeof *q);
    lm_quant_row_q8_0(x, q, n);
    lm_dequant_row(LM_Q8_0, q, y, n);
    for (int64_t b = 0; b < n / LM_QK8_0; b++) {
        const float *xb = x + b * LM_QK8_0;
        double amax = 0;
        for (int j = 0; j < LM_QK8_0; j++) amax = fmax(amax, fabs((double)xb[j]));
        const double step = amax / 127.0;
        cr_assert_eq(lm_f16_to_f32(q[b].d), (double)lm_f16_to_f32(ref_f32_to_f16((float)step)), "q8_0 block %lld scale",
                     (long long)b);
        check_half_step("q8_0", xb, y + b * LM_QK8_0, LM_QK8_0, b, step, lm_f16_to_f32(q[b].d));
        for (int j = 0; j < LM_QK8_0; j++) cr_assert(q[b].qs[j] >= -127 && q[b].qs[j] <= 127);
    }
    for (int j = 0; j < LM_QK8_0; j++) cr_assert_eq(q[1].qs[j], 0);
    cr_assert_eq(q[2].qs[5], -127);
    free(x);
    free(y);
    free(q);
}

Test(quantize, q8_1) {
    tu_rng r = tu_seed(81);
    const int64_t n = 64 * LM_QK8_1;
    float *x = activation_input(&r, n, LM_QK8_1), *y = malloc((size_t)n * sizeof *y);
    lm_block_q8_1 *q = malloc((size_t)(n / LM_QK8_1) * sizeof *q);
    lm_quant_row_q8_1(x, q, n);
    for (int64_t b = 0; b < n / LM_QK8_1; b++) {
        const float *xb = x + b * LM_QK8_1;
        double amax = 0;
        int sum = 0;
        for (int j = 0; j < LM_QK8_1; j++) {
            amax = fmax(amax, fabs((double)xb[j]));
            sum += q[b].qs[j];
        }
        const double step = amax / 127.0, d = lm_f16_to_f32(q[b].d);
        cr_assert_eq(d, (double)lm_f16_to_f32(ref_f32_to_f16((float)step)), "q8_1 block %lld scale", (long long)b);
        for (int j = 0; j < LM_QK8_1; j++) y[j] = (float)q[b].qs[j] * (float)d;
        check_half_step("q8_1", xb, y, LM_QK8_1, b, step, d);
        /* s = d * sum(qs), rounded once to f16 (d before its own rounding) */
        const double s = lm_f16_to_f32(q[b].s), want = (double)sum * step;
        cr_assert(fabs(s - want) <= fabs(want) * 0x1p-11 + 0x1p-24 + 1e-6 * fabs(want),
                  "q8_1 block %lld: s = %g, want d*sum = %g", (long long)b, s, want);
    }
    /* the generic dequantizer reads q8_1 blocks the same way */
    lm_dequant_row(LM_Q8_1, q, y, n);
    for (int j = 0; j < LM_QK8_1; j++) cr_assert_eq(y[j], (float)q[0].qs[j] * lm_f16_to_f32(q[0].d));
    free(x);
    free(y);
    free(q);
}

Test(quantize, q8_K) {
    tu_rng r = tu_seed(82);
    const int64_t n = 16 * LM_QK_K;
    float *x = activation_input(&r, n, LM_QK_K), *y = malloc((size_t)n * sizeof *y);
    lm_block_q8_K *q = malloc((size_t)(n / LM_QK_K) * sizeof *q);
    memset(q, 0x5A, (size_t)(n / LM_QK_K) * sizeof *q);
    lm_quant_row_q8_K(x, q, n);
    lm_dequant_row(LM_Q8_K, q, y, n);
    for (int64_t b = 0; b < n / LM_QK_K; b++) {
        const float *xb = x + b * LM_QK_K;
        double amax = 0;
        for (int j = 0; j < LM_QK_K; j++) amax = fmax(amax, fabs((double)xb[j]));
        const double step = amax / 127.0;
        cr_assert(fabs(q[b].d - step) <= step * 1e-6, "q8_K block %lld: d = %g, want %g", (long long)b, (double)q[b].d,
                  step);
        check_half_step("q8_K", xb, y + b * LM_QK_K, LM_QK_K, b, step, q[b].d);
        for (int g = 0; g < LM_QK_K / 16; g++) {
            int s = 0;
            for (int l = 0; l < 16; l++) s += q[b].qs[g * 16 + l];
            cr_assert_eq(q[b].bsums[g], s, "q8_K block %lld: bsums[%d] = %d, sum of qs = %d", (long long)b, g,
                         q[b].bsums[g], s);
        }
        for (int j = 0; j < LM_QK_K; j++) cr_assert(q[b].qs[j] >= -127 && q[b].qs[j] <= 127);
    }
    /* the all-zero block is all zero, bsums included */
    cr_assert_eq(q[1].d, 0.0f);
    for (int j = 0; j < LM_QK_K; j++) cr_assert_eq(q[1].qs[j], 0);
    for (int g = 0; g < LM_QK_K / 16; g++) cr_assert_eq(q[1].bsums[g], 0);
    cr_assert_eq(q[2].qs[5], -127);
    free(x);
    free(y);
    free(q);
}

/* Blocks too small for a finite inverse scale (amax < 127 / FLT_MAX: 1/d overflows), subnormal
 * and tiny blocks, and non-finite activations: quants stay in [-127, 127] (no undefined float ->
 * int8 conversion; build with -fsanitize=float-cast-overflow to see it), and finite tiny blocks
 * still dequantize to within half a step. */
Test(quantize, tiny_and_non_finite) {
    static const float amaxes[] = {1e-6f, 1e-30f, 1e-37f, 3e-39f, 1e-44f, 0x1p-149f};
    enum { NB = sizeof amaxes / sizeof amaxes[0] + 2 };
    float x[NB * LM_QK_K], y[NB * LM_QK_K];
    tu_rng r = tu_seed(83);
    for (int b = 0; b < NB; b++) {
        float *xb = x + b * LM_QK_K;
        for (int j = 0; j < LM_QK_K; j++) xb[j] = tu_uniform(&r) * 2.0f - 1.0f;
        if (b < NB - 2) {
            float m = 0;
            for (int j = 0; j < LM_QK_K; j++) m = fmaxf(m, fabsf(xb[j]));
            for (int j = 0; j < LM_QK_K; j++) xb[j] = xb[j] / m * amaxes[b];
            xb[3] = 0.0f;
        }
    }
    x[(NB - 2) * LM_QK_K + 7] = NAN;      /* a NaN and an inf block (last two, in every format) */
    x[(NB - 1) * LM_QK_K + 9] = -INFINITY;
    x[(NB - 2) * LM_QK_K + LM_QK8_0 + 1] = NAN;
    x[(NB - 1) * LM_QK_K + LM_QK8_0 + 2] = INFINITY;
    const int64_t n = NB * LM_QK_K;

    lm_block_q8_0 q0[NB * LM_QK_K / LM_QK8_0];
    lm_block_q8_1 q1[NB * LM_QK_K / LM_QK8_1];
    lm_block_q8_K qk[NB];
    lm_quant_row_q8_0(x, q0, n);
    lm_quant_row_q8_1(x, q1, n);
    lm_quant_row_q8_K(x, qk, n);
    for (int i = 0; i < n / LM_QK8_0; i++)
        for (int j = 0; j < LM_QK8_0; j++) {
            cr_assert(q0[i].qs[j] >= -127 && q0[i].qs[j] <= 127, "q8_0 block %d: qs %d", i, q0[i].qs[j]);
            cr_assert(q1[i].qs[j] >= -127 && q1[i].qs[j] <= 127, "q8_1 block %d: qs %d", i, q1[i].qs[j]);
        }
    for (int b = 0; b < NB; b++)
        for (int j = 0; j < LM_QK_K; j++) cr_assert(qk[b].qs[j] >= -127 && qk[b].qs[j] <= 127);

    /* the finite tiny blocks */
    lm_dequant_row(LM_Q8_0, q0, y, n);
    for (int b = 0; b < NB - 2; b++) {
        const double step = amaxes[b] / 127.0;
        for (int i = b * LM_QK_K / LM_QK8_0; i < (b + 1) * LM_QK_K / LM_QK8_0; i++)
            check_half_step("q8_0 tiny", x + i * LM_QK8_0, y + i * LM_QK8_0, LM_QK8_0, i, step,
                            lm_f16_to_f32(q0[i].d));
    }
    lm_dequant_row(LM_Q8_K, qk, y, n);
    for (int b = 0; b < NB - 2; b++) {
        const double step = amaxes[b] / 127.0;
        check_half_step("q8_K tiny", x + b * LM_QK_K, y + b * LM_QK_K, LM_QK_K, b, step, qk[b].d);
        for (int g = 0; g < LM_QK_K / 16; g++) {
            int s = 0;
            for (int l = 0; l < 16; l++) s += qk[b].qs[g * 16 + l];
            cr_assert_eq(qk[b].bsums[g], s);
        }
        if (!isfinite(127.0f / amaxes[b])) { /* no finite scale: an all-zero block */
            cr_assert_eq(qk[b].d, 0.0f);
            for (int j = 0; j < LM_QK_K; j++) cr_assert_eq(qk[b].qs[j], 0);
        } else {
            cr_assert_gt(qk[b].d, 0.0f, "amax %g: d must not underflow when 127/amax is finite", (double)amaxes[b]);
        }
    }
}

/* the kernel tables this CPU can run (generic always) */
static int runnable_tables(const lm_cpu_kernels *t[3]) {
    int n = 0;
    t[n++] = &lm_cpu_kernels_generic;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) t[n++] = &lm_cpu_kernels_avx2;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vnni"))
        t[n++] = &lm_cpu_kernels_avx512;
#endif
    return n;
}

/* q8s (int8 with a scale per 32 plus an int8 residual plane at 1/256 of it): the first plane within
 * half a step, both planes within 1/256 of a step, the scaled sums, and every SIMD quantizer
 * bit-identical to the reference, on blocks of widely varying magnitude */
Test(quantize, q8s) {
    tu_rng r = tu_seed(84);
    const int64_t n = 24 * LM_QK8S;
    float *x = activation_input(&r, n, 32), *y = malloc((size_t)n * sizeof *y);
    lm_block_q8s *q = malloc((size_t)(n / LM_QK8S) * sizeof *q), *q2 = malloc((size_t)(n / LM_QK8S) * sizeof *q2);
    lm_quant_row_q8s(x, q, n);
    lm_dequant_row(LM_Q8S, q, y, n);
    for (int64_t i = 0; i < n / 32; i++) {
        const lm_block_q8s *b = &q[i / 8];
        const int j = (int)(i % 8);
        double amax = 0;
        for (int k = 0; k < 32; k++) amax = fmax(amax, fabs((double)x[i * 32 + k]));
        const double step = amax / 127.0;
        cr_assert(fabs(b->d[j] - step) <= step * 1e-6, "q8s block %lld: d = %g, want %g", (long long)i, (double)b->d[j], step);
        check_half_step("q8s two planes", x + i * 32, y + i * 32, 32, i, step / 128.0, b->d[j] / 128.0);
        float y1[32];
        for (int k = 0; k < 32; k++) y1[k] = b->d[j] * (float)b->qs[32 * j + k];
        check_half_step("q8s first plane", x + i * 32, y1, 32, i, step, b->d[j]);
        int s[2] = {0, 0};
        for (int k = 0; k < 32; k++) {
            cr_assert(b->qs[32 * j + k] >= -127 && b->qs[32 * j + k] <= 127);
            cr_assert(b->qr[32 * j + k] >= -127 && b->qr[32 * j + k] <= 127);
            s[k / 16] += 256 * b->qs[32 * j + k] + b->qr[32 * j + k];
        }
        cr_assert_eq(b->s16[2 * j], b->d[j] * ((float)s[0] / 256.0f));
        cr_assert_eq(b->s16[2 * j + 1], b->d[j] * ((float)s[1] / 256.0f));
        cr_assert_eq(b->s32[j], b->d[j] * ((float)(s[0] + s[1]) / 256.0f));
        int t[2] = {0, 0};
        for (int k = 0; k < 32; k++) t[k / 16] += b->qs[32 * j + k];
        cr_assert_eq(b->t16[2 * j], b->d[j] * (float)t[0]);
        cr_assert_eq(b->t16[2 * j + 1], b->d[j] * (float)t[1]);
        cr_assert_eq(b->t32[j], b->d[j] * (float)(t[0] + t[1]));
    }
    cr_assert_eq(q[0].d[1], 0.0f, "an all-zero 32 has scale 0");
    cr_assert_eq(q[0].s32[1], 0.0f);
    cr_assert_eq(q[0].qs[2 * 32 + 5], -127);

    /* SIMD quantizers: identical bytes, also with NaN / inf / tiny blocks in the row */
    x[5 * 32 + 3] = NAN;
    x[9 * 32 + 30] = -INFINITY;
    for (int k = 0; k < 32; k++) x[13 * 32 + k] *= 1e-39f;
    lm_quant_row_q8s(x, q, n);
    cr_assert(isnan(q[0].d[5]) && isnan(q[1].d[1]), "a NaN or inf in a 32 makes its scale NaN");
    cr_assert_eq(q[1].d[5], 0.0f, "a 32 too small for a finite inverse scale is zero");
    const lm_cpu_kernels *t[3];
    const int nt = runnable_tables(t);
    for (int k = 0; k < nt; k++) {
        if (!t[k]->quant_q8s) continue;
        memset(q2, 0x5A, (size_t)(n / LM_QK8S) * sizeof *q2);
        t[k]->quant_q8s(x, q2, n);
        for (int64_t b = 0; b < n / LM_QK8S; b++) {
            cr_assert_eq(memcmp(q[b].qs, q2[b].qs, LM_QK8S), 0, "%s quant_q8s: quants of block %lld differ", t[k]->isa, (long long)b);
            cr_assert_eq(memcmp(q[b].qr, q2[b].qr, LM_QK8S), 0, "%s quant_q8s: residuals of block %lld differ", t[k]->isa, (long long)b);
            cr_assert_eq(memcmp(q[b].s16, q2[b].s16, sizeof q[b].s16 + sizeof q[b].t32 + sizeof q[b].t16), 0,
                         "%s quant_q8s: sums of block %lld differ", t[k]->isa, (long long)b);
            for (int j = 0; j < 8; j++)
                cr_assert(f2u(q[b].d[j]) == f2u(q2[b].d[j]) || (isnan(q[b].d[j]) && isnan(q2[b].d[j])),
                          "%s quant_q8s: scale %d of block %lld differs", t[k]->isa, j, (long long)b);
        }
    }
    /* a row of 2 x 256 + 64 values (32-blocked weights of small models): the last block partial,
       empty (zero) past the row's end, the SIMD quantizers identical */
    const int64_t nt2 = 2 * LM_QK8S + 64;
    lm_quant_row_q8s(x + 20 * LM_QK8S, q, nt2);
    for (int j = 2; j < 8; j++) cr_assert_eq(q[2].d[j], 0.0f, "32-block %d past the row's end", j);
    for (int j = 64; j < LM_QK8S; j++) cr_assert(q[2].qs[j] == 0 && q[2].qr[j] == 0);
    cr_assert(q[2].d[0] > 0.0f && q[2].d[1] > 0.0f);
    lm_dequant_row(LM_Q8S, q, y, nt2);
    for (int64_t i = 0; i < nt2; i++)
        cr_assert(fabsf(y[i] - x[20 * LM_QK8S + i]) <= q[i / LM_QK8S].d[i % LM_QK8S / 32] / 256.0f * 1.0001f + 1e-30f, "tail row value %lld", (long long)i);
    for (int k = 0; k < nt; k++) {
        if (!t[k]->quant_q8s) continue;
        memset(q2, 0x5A, 3 * sizeof *q2);
        t[k]->quant_q8s(x + 20 * LM_QK8S, q2, nt2);
        for (int b = 0; b < 3; b++)
            cr_assert(!memcmp(q[b].qs, q2[b].qs, LM_QK8S) && !memcmp(q[b].qr, q2[b].qr, LM_QK8S) && !memcmp(q[b].d, q2[b].d, sizeof q[b].d) &&
                          !memcmp(q[b].s32, q2[b].s32, sizeof q[b].s32 + sizeof q[b].s16 + sizeof q[b].t32 + sizeof q[b].t16),
                      "%s quant_q8s: block %d of a row with a partial block differs", t[k]->isa, b);
    }
    free(x);
    free(y);
    free(q);
    free(q2);
}

/* one column of a table's q8s dot */
static float dot1(const lm_cpu_kernels *t, lm_dtype ty, int64_t K, const void *w, const void *x, int two) {
    float o;
    t->mdot8[ty](K, w, &x, 1, two, &o);
    return o;
}

/* The q8s dot kernels against double arithmetic on the same quantized operands: dequantized
 * weights x the activations as each dot sees them (two planes: d (qs + qr / 256); one plane:
 * d qs). Only the float accumulation may differ, so the tolerance is 1e-5 of sum |w x|. Weights
 * are random bytes with sane f16 scales; K spans several super-blocks, and for the 32-blocked
 * types (q4_0, q8_0) ends in a partial one (7 x 256 + 96). */
static int64_t q8s_test_k(lm_dtype ty) { return lm_dtype_get(ty)->block == 32 ? 7 * LM_QK_K + 96 : 7 * LM_QK_K; }
static void q8s_test_scales(tu_rng *r, lm_dtype ty, uint8_t *w, int64_t K, bool fixed) {
    for (int64_t b = 0; b < K / LM_QK_K; b++) {
        const uint16_t d = lm_f32_to_f16(fixed ? 0.05f : 0.01f + 0.1f * tu_uniform(r)), dm = lm_f32_to_f16(fixed ? 0.01f : 0.02f * tu_uniform(r));
        if (ty == LM_Q4_K) ((lm_block_q4_K *)w)[b].d = d, ((lm_block_q4_K *)w)[b].dmin = dm;
        if (ty == LM_Q5_K) ((lm_block_q5_K *)w)[b].d = d, ((lm_block_q5_K *)w)[b].dmin = dm;
        if (ty == LM_Q6_K) ((lm_block_q6_K *)w)[b].d = d;
    }
    for (int64_t b = 0; b < K / 32 && (ty == LM_Q4_0 || ty == LM_Q8_0); b++) {
        const uint16_t d = lm_f32_to_f16(fixed ? 0.05f : 0.01f + 0.1f * tu_uniform(r));
        if (ty == LM_Q4_0) ((lm_block_q4_0 *)w)[b].d = d;
        else ((lm_block_q8_0 *)w)[b].d = d;
    }
}
static int64_t q8s_blocks(int64_t K) { return (K + LM_QK8S - 1) / LM_QK8S; }

Test(dot, q8s_kernels) {
    static const lm_dtype types[] = {LM_Q4_K, LM_Q5_K, LM_Q6_K, LM_Q4_0, LM_Q8_0};
    const lm_cpu_kernels *t[3];
    const int nt = runnable_tables(t);
    tu_rng r = tu_seed(85);
    const int64_t KM = 8 * LM_QK_K;
    float *x = activation_input(&r, KM, 32), *xd = malloc((size_t)KM * sizeof *xd), *wd = malloc((size_t)KM * sizeof *wd);
    lm_block_q8s *xq = malloc((size_t)q8s_blocks(KM) * sizeof *xq);
    int checked = 0;
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const lm_dtype ty = types[ti];
        const int64_t K = q8s_test_k(ty);
        lm_quant_row_q8s(x, xq, K);
        lm_dequant_row(LM_Q8S, xq, xd, K);
        const size_t rb = lm_row_bytes(ty, K);
        uint8_t *w = malloc(rb);
        for (int row = 0; row < 16; row++) {
            for (size_t i = 0; i < rb; i++) w[i] = (uint8_t)(tu_uniform(&r) * 256.0f);
            q8s_test_scales(&r, ty, w, K, false);
            lm_dequant_row(ty, w, wd, K);
            double want = 0, mag = 0, want1 = 0, mag1 = 0;
            for (int64_t i = 0; i < K; i++) {
                const double x1 = (double)xq[i / 256].d[i % 256 / 32] * xq[i / 256].qs[i % 256];
                want += (double)wd[i] * xd[i];
                mag += fabs((double)wd[i] * xd[i]);
                want1 += (double)wd[i] * x1;
                mag1 += fabs((double)wd[i] * x1);
            }
            for (int k = 0; k < nt; k++) {
                if (!t[k]->mdot8[ty]) continue;
                const double got = dot1(t[k], ty, K, w, xq, 1), got1 = dot1(t[k], ty, K, w, xq, 0);
                cr_assert(fabs(got - want) <= 1e-5 * mag, "%s %s row %d: two-plane dot %.9g, want %.9g (sum |wx| %.4g)",
                          t[k]->isa, lm_dtype_name(ty), row, got, want, mag);
                cr_assert(fabs(got1 - want1) <= 1e-5 * mag1, "%s %s row %d: 8-bit dot %.9g, want %.9g (sum |wx| %.4g)", t[k]->isa,
                          lm_dtype_name(ty), row, got1, want1, mag1);
                checked++;
            }
        }
        free(w);
    }
    /* on a CPU with AVX2 the three K-quants must have been checked, with AVX-512 VNNI also q4_0 and q8_0 */
    cr_assert_eq(checked, 3 * 16 * (nt - 1) + (nt == 3 ? 2 * 16 : 0));

    /* the multi-column dots: 1..LM_Q8S_MAXC columns, each bit-identical to the single dot */
    lm_block_q8s *xs = malloc((size_t)LM_Q8S_MAXC * (size_t)q8s_blocks(KM) * sizeof *xs);
    int mchecked = 0;
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const lm_dtype ty = types[ti];
        const int64_t K = q8s_test_k(ty);
        const void *cols[LM_Q8S_MAXC];
        for (int c = 0; c < LM_Q8S_MAXC; c++) {
            for (int64_t i = 0; i < K; i++) x[i] = (tu_uniform(&r) - 0.5f) * (float)(c + 1);
            lm_quant_row_q8s(x, xs + (size_t)c * (size_t)q8s_blocks(K), K);
            cols[c] = xs + (size_t)c * (size_t)q8s_blocks(K);
        }
        uint8_t *w = malloc(lm_row_bytes(ty, K));
        for (size_t i = 0; i < lm_row_bytes(ty, K); i++) w[i] = (uint8_t)(tu_uniform(&r) * 256.0f);
        q8s_test_scales(&r, ty, w, K, true);
        for (int k = 0; k < nt; k++) {
            if (!t[k]->mdot8[ty]) continue;
            for (int two = 0; two < 2; two++)
                for (int nc = 1; nc <= LM_Q8S_MAXC; nc++) {
                    float o[LM_Q8S_MAXC];
                    t[k]->mdot8[ty](K, w, cols, nc, two, o);
                    for (int c = 0; c < nc; c++) {
                        const float want = dot1(t[k], ty, K, w, cols[c], two);
                        cr_assert_eq(f2u(o[c]), f2u(want), "%s %s mdot8 (%d columns, two %d) column %d: %.9g, single %.9g",
                                     t[k]->isa, lm_dtype_name(ty), nc, two, c, (double)o[c], (double)want);
                    }
                    mchecked++;
                }
        }
        free(w);
    }
    cr_assert_eq(mchecked, 3 * 2 * LM_Q8S_MAXC * (nt - 1) + (nt == 3 ? 2 * 2 * LM_Q8S_MAXC : 0));
    free(xs);
    free(x);
    free(xd);
    free(wd);
    free(xq);
}

/* The int8 GEMM (AVX-512 VNNI tables): 13 rows (a partial 16-row slice) x 1..8 columns (1..4
 * with both planes) over 5 super-blocks, against double arithmetic on the operands it sees (as
 * for the dots above: tolerance 1e-5 of sum |w x| per output); the 3 padding rows must come out 0. */
Test(dot, i8_gemm) {
    static const lm_dtype types[] = {LM_Q4_K, LM_Q5_K, LM_Q6_K, LM_Q4_0};
    const lm_cpu_kernels *t[3];
    const int nt = runnable_tables(t);
    tu_rng r = tu_seed(86);
    enum { NR = 13, NC = LM_I8_MAXC };
    const int64_t K = 5 * LM_QK_K, ns = K / LM_QK_K;
    lm_block_q8s *xq = malloc((size_t)NC * (size_t)ns * sizeof *xq);
    float *xd[2][NC];
    for (int c = 0; c < NC; c++) {
        float *x = activation_input(&r, K, 32);
        lm_quant_row_q8s(x, xq + c * ns, K);
        xd[1][c] = malloc((size_t)K * sizeof(float));
        xd[0][c] = malloc((size_t)K * sizeof(float));
        lm_dequant_row(LM_Q8S, xq + c * ns, xd[1][c], K);
        for (int64_t i = 0; i < K; i++) xd[0][c][i] = xq[c * ns + i / 256].d[i % 256 / 32] * (float)xq[c * ns + i / 256].qs[i % 256];
        free(x);
    }
    const void *cols[NC];
    for (int c = 0; c < NC; c++) cols[c] = xq + c * ns;
    lm_i8_slice *sl = aligned_alloc(64, (size_t)ns * sizeof *sl);
    float *wd = malloc((size_t)K * sizeof *wd);
    int checked = 0;
    for (int k = 0; k < nt; k++) {
        if (!t[k]->i8_gemm) continue;
        for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
            const lm_dtype ty = types[ti];
            const size_t rb = lm_row_bytes(ty, K);
            uint8_t *w = malloc(rb * NR);
            const void *rows[NR];
            for (int row = 0; row < NR; row++) {
                uint8_t *wr = w + rb * row;
                rows[row] = wr;
                for (size_t i = 0; i < rb; i++) wr[i] = (uint8_t)(tu_uniform(&r) * 256.0f);
                for (int64_t b = 0; b < ns; b++) {
                    const uint16_t d = lm_f32_to_f16(0.01f + 0.1f * tu_uniform(&r)), dm = lm_f32_to_f16(0.02f * tu_uniform(&r));
                    if (ty == LM_Q4_K) ((lm_block_q4_K *)wr)[b].d = d, ((lm_block_q4_K *)wr)[b].dmin = dm;
                    if (ty == LM_Q5_K) ((lm_block_q5_K *)wr)[b].d = d, ((lm_block_q5_K *)wr)[b].dmin = dm;
                    if (ty == LM_Q6_K) ((lm_block_q6_K *)wr)[b].d = d;
                }
                if (ty == LM_Q4_0)
                    for (int64_t b = 0; b < K / 32; b++) ((lm_block_q4_0 *)wr)[b].d = lm_f32_to_f16(0.01f + 0.1f * tu_uniform(&r));
            }
            for (int64_t sb = 0; sb < ns; sb++) t[k]->i8_repack[ty](rows, NR, sb, sl + sb);
            for (int two = 0; two < 2; two++)
                for (int nc = 1; nc <= (two ? NC / 2 : NC); nc++) {
                    float o[NC * LM_I8_ROWS];
                    t[k]->i8_gemm(sl, ns, cols, nc, two, o);
                    for (int row = 0; row < LM_I8_ROWS; row++) {
                        if (row < NR) lm_dequant_row(ty, rows[row], wd, K);
                        for (int c = 0; c < nc; c++) {
                            const float got = o[c * LM_I8_ROWS + row];
                            if (row >= NR) {
                                cr_assert_eq(got, 0.0f, "%s padding row %d column %d: %g", lm_dtype_name(ty), row, c, (double)got);
                                continue;
                            }
                            double want = 0, mag = 0;
                            for (int64_t i = 0; i < K; i++) {
                                want += (double)wd[i] * xd[two][c][i];
                                mag += fabs((double)wd[i] * xd[two][c][i]);
                            }
                            cr_assert(fabs(got - want) <= 1e-5 * mag, "%s %s i8_gemm (%d columns, two %d) row %d column %d: %.9g, want %.9g",
                                      t[k]->isa, lm_dtype_name(ty), nc, two, row, c, (double)got, want);
                        }
                    }
                    checked++;
                }
            free(w);
        }
    }
    for (int c = 0; c < NC; c++) free(xd[0][c]), free(xd[1][c]);
    free(xq);
    free(sl);
    free(wd);
    if (!checked) cr_skip("no kernel table with the int8 GEMM runs here (needs AVX-512 VNNI)");
    cr_assert_eq(checked, 4 * (NC + NC / 2));
}

/* ---------------------------------------------------------------------------------------- */
/* dtype table                                                                              */

Test(dtype, sizes_match_block_layouts) {
    static const struct { lm_dtype t; int32_t block, bytes; bool quantized; const char *name; } want[] = {
        {LM_F32, 1, 4, false, "f32"},
        {LM_F16, 1, 2, false, "f16"},
        {LM_BF16, 1, 2, false, "bf16"},
        {LM_Q4_0, LM_QK4_0, sizeof(lm_block_q4_0), true, "q4_0"},
        {LM_Q4_1, LM_QK4_1, sizeof(lm_block_q4_1), true, "q4_1"},
        {LM_Q5_0, LM_QK5_0, sizeof(lm_block_q5_0), true, "q5_0"},
        {LM_Q5_1, LM_QK5_1, sizeof(lm_block_q5_1), true, "q5_1"},
        {LM_Q8_0, LM_QK8_0, sizeof(lm_block_q8_0), true, "q8_0"},
        {LM_Q8_1, LM_QK8_1, sizeof(lm_block_q8_1), true, "q8_1"},
        {LM_Q2_K, LM_QK_K, sizeof(lm_block_q2_K), true, "q2_K"},
        {LM_Q3_K, LM_QK_K, sizeof(lm_block_q3_K), true, "q3_K"},
        {LM_Q4_K, LM_QK_K, sizeof(lm_block_q4_K), true, "q4_K"},
        {LM_Q5_K, LM_QK_K, sizeof(lm_block_q5_K), true, "q5_K"},
        {LM_Q6_K, LM_QK_K, sizeof(lm_block_q6_K), true, "q6_K"},
        {LM_Q8_K, LM_QK_K, sizeof(lm_block_q8_K), true, "q8_K"},
        {LM_I8, 1, 1, false, "i8"},
        {LM_I16, 1, 2, false, "i16"},
        {LM_I32, 1, 4, false, "i32"},
        {LM_I64, 1, 8, false, "i64"},
        {LM_F64, 1, 8, false, "f64"},
        {LM_E4M3, 1, 1, false, "e4m3"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const lm_dtype_traits *tr = lm_dtype_get(want[i].t);
        cr_assert(tr, "type %d missing", want[i].t);
        cr_assert_str_eq(tr->name, want[i].name);
        cr_assert_str_eq(lm_dtype_name(want[i].t), want[i].name);
        cr_assert_eq(tr->block, want[i].block, "%s block", tr->name);
        cr_assert_eq(tr->block_bytes, want[i].bytes, "%s bytes", tr->name);
        cr_assert_eq(tr->quantized, want[i].quantized, "%s quantized", tr->name);
        cr_assert_eq(lm_dtype_valid((uint32_t)want[i].t), tr->supported);
        if (tr->supported) cr_assert(tr->dequant, "%s is loadable but has no dequantizer", tr->name);
        cr_assert_eq(lm_row_bytes(want[i].t, 4 * (int64_t)want[i].block), 4 * (size_t)want[i].bytes);
    }
    /* the types a Gemma GGUF needs are loadable; activation-only formats are not */
    static const lm_dtype loadable[] = {LM_F32, LM_F16, LM_BF16, LM_Q4_0, LM_Q4_1, LM_Q5_0, LM_Q5_1,
                                        LM_Q8_0, LM_Q2_K, LM_Q3_K, LM_Q4_K, LM_Q5_K, LM_Q6_K};
    for (size_t i = 0; i < sizeof loadable / sizeof loadable[0]; i++)
        cr_assert(lm_dtype_valid((uint32_t)loadable[i]), "%s must be loadable", lm_dtype_name(loadable[i]));
    /* the fp8 KV type is not a file type */
    cr_assert(!lm_dtype_valid(LM_E4M3));
    cr_assert_not(lm_dtype_valid(LM_Q8_1));
    cr_assert_not(lm_dtype_valid(LM_Q8_K));
    /* ids that are not types */
    static const uint32_t holes[] = {4, 5, 16, 23, 29, 31, 39, 40, 99, 1000, UINT32_MAX};
    for (size_t i = 0; i < sizeof holes / sizeof holes[0]; i++) {
        cr_assert_null(lm_dtype_get((lm_dtype)holes[i]), "id %u is not a type", holes[i]);
        cr_assert_not(lm_dtype_valid(holes[i]));
        cr_assert_str_eq(lm_dtype_name((lm_dtype)holes[i]), "?");
    }
}

/* ---- lumen's own formats -------------------------------------------------------------------- */

/* E4M3 from its definition (OCP 8-bit FP: sign, 4 exponent bits with bias 7, 3 mantissa bits,
   no infinities, S.1111.111 = NaN), computed in double */
static double e4m3_def(unsigned c) {
    const int s = c >> 7, e = (c >> 3) & 15, m = c & 7;
    if (e == 15 && m == 7) return NAN;
    const double v = e == 0 ? m / 8.0 * pow(2.0, -6) : (1.0 + m / 8.0) * pow(2.0, e - 7);
    return s ? -v : v;
}

Test(f8_e4m3, decode_exhaustive) {
    for (unsigned c = 0; c < 256; c++) {
        const double ref = e4m3_def(c);
        const float got = lm_e4m3_to_f32((uint8_t)c);
        if (isnan(ref)) cr_assert(isnan(got), "code 0x%02x", c);
        else cr_assert_eq((double)got, ref, "code 0x%02x: %g vs %g", c, (double)got, ref);
    }
    cr_assert_eq(lm_e4m3_to_f32(0x7e), 448.0f);
    cr_assert_eq(lm_e4m3_to_f32(0x38), 1.0f);
    cr_assert_eq(lm_e4m3_to_f32(0x01), ldexpf(1.0f, -9));
}

/* encoding = the nearest finite code (ties to the even mantissa), saturating at +-448 */
Test(f8_e4m3, encode_nearest_even) {
    for (unsigned c = 0; c < 256; c++)
        if (!isnan(e4m3_def(c)) && c != 0x80) cr_assert_eq(lm_f32_to_e4m3((float)e4m3_def(c)), c, "code 0x%02x", c);
    tu_rng r = tu_seed(7);
    for (int it = 0; it < 200000; it++) {
        const float x = (it % 4 == 0 ? tu_normal(&r) * 0.02f : tu_normal(&r) * 120.0f);
        /* the midpoints between neighbours too */
        const uint8_t got = lm_f32_to_e4m3(x);
        double best = INFINITY;
        unsigned bc = 0;
        for (unsigned c = 0; c < 128; c++) {
            if (c == 0x7f) continue;
            const double v = x < 0 ? -e4m3_def(c) : e4m3_def(c), d = fabs(v - (double)x);
            if (d < best || (d == best && (c & 1) == 0)) best = d, bc = c;
        }
        if (fabs(x) >= 448.0f) bc = 0x7e;
        bc |= x < 0 ? 0x80 : 0;
        cr_assert_eq(got, bc, "x = %.9g: 0x%02x, expected 0x%02x", (double)x, got, bc);
    }
    for (unsigned c = 1; c < 0x7e; c++) {
        const float mid = (float)((e4m3_def(c) + e4m3_def(c + 1)) / 2.0);
        const unsigned even = (c & 1) ? c + 1 : c;
        cr_assert_eq(lm_f32_to_e4m3(mid), even, "midpoint after 0x%02x", c);
    }
    cr_assert_eq(lm_f32_to_e4m3(1e9f), 0x7e);
    cr_assert_eq(lm_f32_to_e4m3(-1e9f), 0xfe);
    cr_assert_eq(lm_f32_to_e4m3(NAN) & 0x7f, 0x7f);
}

/* the block quantizers: every value within half a step of its block's grid */
Test(quantize, i4_g128_and_f8_e4m3) {
    tu_rng r = tu_seed(11);
    enum { N = 128 * 40 };
    float *x = malloc(N * sizeof(float)), *y = malloc(N * sizeof(float));
    for (int i = 0; i < N; i++) x[i] = tu_normal(&r) * (i / 128 % 5 == 0 ? 0.001f : 1.5f) + (i / 128 % 7 == 0 ? 3.0f : 0.0f);
    lm_block_i4_g128 *qi = malloc(N / 128 * sizeof *qi);
    lm_dtype_get(LM_I4_G128)->quant(x, qi, N);
    lm_dequant_row(LM_I4_G128, qi, y, N);
    for (int b = 0; b < N / 128; b++) {
        /* no worse than plain round-to-nearest on the min..max grid (the quantizer searches for
           a better grid by least squares, which may trade an outlier for the rest) */
        const float *xb = x + 128 * b;
        float mn = xb[0], mx = xb[0];
        for (int j = 1; j < 128; j++) mn = fminf(mn, xb[j]), mx = fmaxf(mx, xb[j]);
        const float d0 = lm_f16_to_f32(lm_f32_to_f16((mx - mn) / 15.0f)), m0 = lm_f16_to_f32(lm_f32_to_f16(mn));
        double e_rtn = 0, e_q = 0;
        for (int j = 0; j < 128; j++) {
            float v = d0 > 0 ? nearbyintf((xb[j] - m0) / d0) : 0;
            v = v < 0 ? 0 : v > 15 ? 15 : v;
            e_rtn += pow(xb[j] - (d0 * v + m0), 2);
            e_q += pow(y[128 * b + j] - xb[j], 2);
            cr_assert(isfinite(y[128 * b + j]), "i4_g128 block %d [%d]", b, j);
        }
        cr_assert(e_q <= e_rtn * 1.0001 + 1e-12, "i4_g128 block %d: squared error %g above round-to-nearest's %g", b, e_q, e_rtn);
    }
    lm_block_f8_e4m3 *qf = malloc(N / 128 * sizeof *qf);
    lm_dtype_get(LM_F8_E4M3)->quant(x, qf, N);
    lm_dequant_row(LM_F8_E4M3, qf, y, N);
    for (int b = 0; b < N / 128; b++) {
        float amax = 0;
        for (int j = 0; j < 128; j++) amax = fmaxf(amax, fabsf(x[128 * b + j]));
        for (int j = 0; j < 128; j++) {
            /* 3 mantissa bits: relative error <= 2^-4 for normals, absolute d * 2^-10 below */
            const float xv = x[128 * b + j], e = fabsf(y[128 * b + j] - xv);
            cr_assert(e <= fabsf(xv) / 16.0f + qf[b].d * ldexpf(1.0f, -10) + 1e-7f * amax, "f8 block %d [%d]: %g vs %g", b, j,
                      (double)y[128 * b + j], (double)xv);
        }
    }
    free(x);
    free(y);
    free(qi);
    free(qf);
}
