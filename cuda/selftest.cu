/*
 * selftest.cu — the tensor-core building blocks of mma.cuh run end to end by one warp: A (16x16)
 * and B (16x8, stored both n-major and k-major) copied to shared memory with cp.async, loaded
 * into fragments with ldmatrix (plain and .trans), multiplied with mma.m16n8k16 (f16 and bf16),
 * D written out. Compiled in both builds: on a GPU it checks the PTX, under the emulator the
 * fragment layouts; tests/test_cuda.c compares D with a host product.
 */
#include "internal.h"
#include "mma.cuh"

#include <cmath>
#include <cstdlib>

namespace LM_CUDA_NS {

template <bool BF>
__global__ void __launch_bounds__(32) k_mma_selftest(const uint16_t *A, const uint16_t *Bt, const uint16_t *Bk, float *out) {
    LM_SHARED(uint16_t, sa, 16 * 16);
    LM_SHARED(uint16_t, sb, 8 * 16);
    LM_SHARED(uint16_t, sk, 16 * 8);
    const unsigned l = threadIdx.x, g = l / 4, t = l % 4;
    cp_async16(&sa[8 * l], A + 8 * l);
    if (l < 16) {
        cp_async16(&sb[8 * l], Bt + 8 * l);
        cp_async16(&sk[8 * l], Bk + 8 * l);
    }
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();
    /* A: tile j = l / 8 is rows 8 (j % 2).., columns 8 (j / 2).. (the order of a[0..3]) */
    const unsigned j = l / 8;
    unsigned a[4], b[2], bk[2];
    ldmatrix_x4(a, &sa[((j % 2) * 8 + l % 8) * 16 + (j / 2) * 8]);
    /* B from its n-major copy Bt[n][k]: tile j = k 8j.. (lanes 16..31 repeat lanes 0..15) */
    ldmatrix_x2(b, &sb[(l % 8) * 16 + ((l / 8) % 2) * 8]);
    /* B from its k-major copy Bk[k][n], transposed by ldmatrix */
    ldmatrix_x2_trans(bk, &sk[(l % 8 + 8 * ((l / 8) % 2)) * 8]);
    const float zero[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    float d[4], e[4];
    if constexpr (BF) {
        mma_m16n8k16_bf16(d, a, b, zero);
        mma_m16n8k16_bf16(e, a, bk, zero);
    } else {
        mma_m16n8k16_f16(d, a, b, zero);
        mma_m16n8k16_f16(e, a, bk, zero);
    }
    for (int o = 0; o < 4; o++) {
        const unsigned r = g + 8 * (o / 2), c = 2 * t + o % 2;
        out[r * 8 + c] = d[o];
        out[128 + r * 8 + c] = e[o];
    }
}

} // namespace LM_CUDA_NS

/* Runs the self-test on backend be; returns the largest |D - A B| / max |A B| of the two
   products, or -1 when the run failed. */
#ifdef __CUDACC__
extern "C" double lm_cuda_mma_selftest(lm_backend *be, int bf16) {
#else
extern "C" double lm_cuda_emu_mma_selftest(lm_backend *be, int bf16) {
#endif
    using namespace LM_CUDA_NS;
    ctx &c = *(ctx *)be->impl;
    uint16_t hA[256], hBt[128], hBk[128];
    double ref[128];
    float hout[256];
    unsigned s = 12345;
    auto rnd = [&]() { s = s * 1103515245u + 12345u; return ((s >> 8) & 0xffff) / 65536.0f * 2.0f - 1.0f; };
    auto enc = [&](float v) { return bf16 ? lm_f32_to_bf16(v) : lm_f32_to_f16(v); };
    auto dec = [&](uint16_t h) { return bf16 ? (double)lm_bf16_to_f32(h) : (double)lm_f16_to_f32(h); };
    for (int i = 0; i < 256; i++) hA[i] = enc(rnd());
    for (int k = 0; k < 16; k++)
        for (int n = 0; n < 8; n++) hBk[k * 8 + n] = hBt[n * 16 + k] = enc(rnd());
    double mx = 0;
    for (int r = 0; r < 16; r++)
        for (int n = 0; n < 8; n++) {
            double acc = 0;
            for (int k = 0; k < 16; k++) acc += dec(hA[r * 16 + k]) * dec(hBk[k * 8 + n]);
            ref[r * 8 + n] = acc;
            mx = std::fmax(mx, std::fabs(acc));
        }
    void *dA = nullptr, *dBt = nullptr, *dBk = nullptr, *dout = nullptr;
    int e = 0;
    if (!e) e = rt::malloc_device(&dA, sizeof hA);
    if (!e) e = rt::malloc_device(&dBt, sizeof hBt);
    if (!e) e = rt::malloc_device(&dBk, sizeof hBk);
    if (!e) e = rt::malloc_device(&dout, sizeof hout);
    if (!e) e = rt::memcpy_h2d(dA, hA, sizeof hA, c.stream);
    if (!e) e = rt::memcpy_h2d(dBt, hBt, sizeof hBt, c.stream);
    if (!e) e = rt::memcpy_h2d(dBk, hBk, sizeof hBk, c.stream);
    if (!e) {
        if (bf16) LM_LAUNCH(k_mma_selftest<true>, 1, 32, 0, c.stream, (const uint16_t *)dA, (const uint16_t *)dBt, (const uint16_t *)dBk, (float *)dout);
        else LM_LAUNCH(k_mma_selftest<false>, 1, 32, 0, c.stream, (const uint16_t *)dA, (const uint16_t *)dBt, (const uint16_t *)dBk, (float *)dout);
        e = rt::last_error();
    }
    if (!e) e = rt::memcpy_d2h(hout, dout, sizeof hout, c.stream);
    if (!e) e = rt::stream_sync(c.stream);
    rt::last_error();
    for (void *p : {dA, dBt, dBk, dout})
        if (p) rt::free_device(p);
    if (e) {
        lm_fail(LM_STATUS_BACKEND, "mma self-test: %s", rt::error_string(e));
        return -1;
    }
    double err = 0;
    for (int v = 0; v < 2; v++)
        for (int i = 0; i < 128; i++) err = std::fmax(err, std::fabs(hout[128 * v + i] - ref[i]) / mx);
    return err;
}
