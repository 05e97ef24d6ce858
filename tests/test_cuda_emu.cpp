/*
 * test_cuda_emu.cpp — the CUDA emulator itself (cuda/emu): kernels that are correct compute the
 * right numbers, and kernels with the bugs that hang or corrupt a real GPU are reported with a
 * message naming the problem instead of passing: a barrier skipped by some threads, threads at
 * different barriers, shared memory indexed out of range, a shuffle whose mask leaves out a
 * lane that calls it, shared memory read before any thread wrote it (poisoned to NaN), too much
 * dynamic shared memory. Also: streams captured into a graph replay the captured work.
 */
#include "rt.h"
#include "common.cuh"

#include <criterion/criterion.h>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

using namespace lm_cuda_emu;

__global__ void k_reduce(const float *x, float *out, int n) {
    LM_SHARED(float, part, 8);
    float v = 0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) v += x[i];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (threadIdx.x % 32 == 0) part[threadIdx.x / 32] = v;
    __syncthreads();
    if (threadIdx.x < 32) {
        v = threadIdx.x < blockDim.x / 32 ? part[threadIdx.x] : 0.f;
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
        if (threadIdx.x == 0) out[blockIdx.x] = v;
    }
}

static std::string take_error() {
    const int e = rt::last_error();
    return e ? rt::error_string(e) : "";
}

Test(cuda_emu, reduction_is_exact) {
    std::vector<float> x(1000), out(3);
    double ref = 0;
    for (int i = 0; i < 1000; i++) ref += (x[i] = (float)i * 0.5f);
    cr_assert_eq(LM_LAUNCH(k_reduce, 3, 256, 0, nullptr, x.data(), out.data(), 1000), 0, "%s", take_error().c_str());
    for (int b = 0; b < 3; b++) cr_assert_float_eq(out[b], ref, 1e-3);
}

__global__ void k_early_return(float *out) {
    if (threadIdx.x == 5) return;
    __syncthreads();
    out[threadIdx.x] = 1;
}

Test(cuda_emu, barrier_skipped_by_a_thread) {
    std::vector<float> out(64);
    cr_assert_neq(LM_LAUNCH(k_early_return, 1, 64, 0, nullptr, out.data()), 0);
    const std::string m = take_error();
    cr_assert(m.find("not reached by every thread") != std::string::npos, "%s", m.c_str());
}

__global__ void k_divergent_barriers(float *out) {
    if (threadIdx.x < 32) {
        __syncthreads();
    } else {
        __syncthreads();
    }
    out[threadIdx.x] = 1;
}

Test(cuda_emu, threads_at_different_barriers) {
    std::vector<float> out(64);
    cr_assert_neq(LM_LAUNCH(k_divergent_barriers, 1, 64, 0, nullptr, out.data()), 0);
    const std::string m = take_error();
    cr_assert(m.find("barrier") != std::string::npos, "%s", m.c_str());
}

__global__ void k_shared_oob(float *out) {
    LM_SHARED(float, s, 64);
    s[threadIdx.x] = 1;
    __syncthreads();
    out[threadIdx.x] = s[threadIdx.x];
}

Test(cuda_emu, shared_memory_out_of_range) {
    std::vector<float> out(128);
    cr_assert_neq(LM_LAUNCH(k_shared_oob, 1, 128, 0, nullptr, out.data()), 0);
    const std::string m = take_error();
    cr_assert(m.find("out of range") != std::string::npos || m.find("bounds") != std::string::npos, "%s", m.c_str());
}

__global__ void k_dyn_oob(float *out, int n) {
    LM_SHARED_DYN(float, s);
    s[threadIdx.x + n] = 1;
    out[threadIdx.x] = 0;
}

Test(cuda_emu, dynamic_shared_memory_out_of_range) {
    std::vector<float> out(32);
    cr_assert_eq(LM_LAUNCH(k_dyn_oob, 1, 32, 32 * sizeof(float), nullptr, out.data(), 0), 0, "%s", take_error().c_str());
    cr_assert_neq(LM_LAUNCH(k_dyn_oob, 1, 32, 32 * sizeof(float), nullptr, out.data(), 1), 0);
    cr_assert_neq(take_error(), "");
}

__global__ void k_bad_mask(float *out) {
    const float v = __shfl_sync(0x0000ffffu, 1.0f, 20);
    out[threadIdx.x] = v;
}

Test(cuda_emu, shuffle_mask_missing_a_lane) {
    std::vector<float> out(32);
    cr_assert_neq(LM_LAUNCH(k_bad_mask, 1, 32, 0, nullptr, out.data()), 0);
    const std::string m = take_error();
    cr_assert(m.find("mask") != std::string::npos, "%s", m.c_str());
}

__global__ void k_unwritten_shared(float *out) {
    LM_SHARED(float, s, 64);
    if (threadIdx.x < 32) s[threadIdx.x] = 2.0f;
    __syncthreads();
    out[threadIdx.x] = s[threadIdx.x];
}

Test(cuda_emu, unwritten_shared_memory_is_poisoned) {
    std::vector<float> out(64);
    cr_assert_eq(LM_LAUNCH(k_unwritten_shared, 1, 64, 0, nullptr, out.data()), 0, "%s", take_error().c_str());
    cr_assert_eq(out[0], 2.0f);
    cr_assert(std::isnan(out[40]), "a read of shared memory nobody wrote must not look like data (got %g)", out[40]);
}

Test(cuda_emu, dynamic_shared_memory_limit) {
    std::vector<float> out(32);
    cr_assert_neq(LM_LAUNCH(k_dyn_oob, 1, 32, 64 * 1024, nullptr, out.data(), 0), 0);
    const std::string m = take_error();
    cr_assert(m.find("shared memory") != std::string::npos, "%s", m.c_str());
    cr_assert_eq(rt::set_max_dyn_smem(reinterpret_cast<const void *>(k_dyn_oob), 64 * 1024), 0);
    cr_assert_eq(LM_LAUNCH(k_dyn_oob, 1, 32, 64 * 1024, nullptr, out.data(), 0), 0, "%s", take_error().c_str());
}

__global__ void k_add_one(float *x) { x[threadIdx.x] += 1.0f; }

Test(cuda_emu, captured_graph_replays) {
    rt::stream_t s;
    cr_assert_eq(rt::stream_create(&s), 0);
    std::vector<float> x(32, 0.0f);
    cr_assert_eq(rt::capture_begin(s), 0);
    LM_LAUNCH(k_add_one, 1, 32, 0, s, x.data());
    LM_LAUNCH(k_add_one, 1, 32, 0, s, x.data());
    rt::graph_exec_t g;
    cr_assert_eq(rt::capture_end(s, &g), 0);
    cr_assert_eq(x[0], 0.0f, "captured work must not run during capture");
    for (int i = 0; i < 3; i++) cr_assert_eq(rt::graph_launch(g, s), 0);
    cr_assert_eq(rt::stream_sync(s), 0);
    cr_assert_eq(x[7], 6.0f);
    rt::graph_destroy(g);
    rt::stream_destroy(s);
}

#include "mma.cuh"

/* cp.async data is visible only after cp.async.wait_group retires its group */
template <bool WAIT> __global__ void k_cp_async(const float *src, float *out) {
    LM_SHARED(float, s, 128);
    cp_async16(&s[4 * threadIdx.x], src + 4 * threadIdx.x);
    cp_async_commit();
    if (WAIT) cp_async_wait<0>();
    __syncthreads();
    out[threadIdx.x] = s[(4 * threadIdx.x + 5) % 128];
}

Test(cuda_emu, cp_async_needs_its_wait) {
    std::vector<float> src(128), out(32);
    for (int i = 0; i < 128; i++) src[i] = (float)i;
    auto with_wait = k_cp_async<true>;
    auto without_wait = k_cp_async<false>;
    cr_assert_eq(LM_LAUNCH(with_wait, 1, 32, 0, nullptr, src.data(), out.data()), 0, "%s", take_error().c_str());
    for (int t = 0; t < 32; t++) cr_assert_eq(out[t], (float)((4 * t + 5) % 128));
    cr_assert_eq(LM_LAUNCH(without_wait, 1, 32, 0, nullptr, src.data(), out.data()), 0, "%s", take_error().c_str());
    cr_assert(std::isnan(out[3]), "reading cp.async data before the wait must not see the data (got %g)", out[3]);
}

/* mma / ldmatrix are whole-warp instructions: a warp whose lanes split between two of them, or
   with a lane that returned early, is reported instead of computing garbage */
template <int MODE> __global__ void k_mma_divergent(float *out) {
    LM_SHARED(uint16_t, s, 16 * 16);
    for (int i = threadIdx.x; i < 256; i += 32) s[i] = 0x3c00; /* 1.0 */
    __syncwarp();
    if (MODE == 1 && threadIdx.x == 7) return;
    unsigned a[4] = {0x3c003c00u, 0x3c003c00u, 0x3c003c00u, 0x3c003c00u}, b[2] = {0x3c003c00u, 0x3c003c00u};
    float d[4] = {0, 0, 0, 0};
    if (MODE == 2 && threadIdx.x < 16) ldmatrix_x4(a, &s[(threadIdx.x % 16) * 16]);
    else mma_m16n8k16_f16(d, a, b, d);
    out[threadIdx.x] = d[0];
}

Test(cuda_emu, warp_instructions_need_the_whole_warp) {
    std::vector<float> out(32);
    auto ok = k_mma_divergent<0>;
    cr_assert_eq(LM_LAUNCH(ok, 1, 32, 0, nullptr, out.data()), 0, "%s", take_error().c_str());
    for (int t = 0; t < 32; t++) cr_assert_eq(out[t], 16.0f); /* 16 products of ones */
    auto early = k_mma_divergent<1>;
    cr_assert_neq(LM_LAUNCH(early, 1, 32, 0, nullptr, out.data()), 0);
    std::string m = take_error();
    cr_assert(!m.empty(), "a lane that skipped mma must be reported");
    auto split = k_mma_divergent<2>;
    cr_assert_neq(LM_LAUNCH(split, 1, 32, 0, nullptr, out.data()), 0);
    m = take_error();
    cr_assert(m.find("different") != std::string::npos, "%s", m.c_str());
}
