/*
 * emu.h — the CUDA C++ kernel language, emulated on the host, for the subset lumen's kernels use.
 *
 * lumen's .cu files compile two ways: with nvcc for real GPUs, and with the host C++ compiler
 * against this header (when __CUDACC__ is not defined) so that CI — which has no GPU — runs the
 * very same kernel sources. Each CUDA thread of a block is a fiber with its own stack; blocks run
 * one after another. Synchronisation is real, not assumed:
 *   - __syncthreads() parks the fiber until every thread of the block has reached a barrier;
 *     threads waiting at different barriers, or a barrier that a thread skipped by returning,
 *     are reported as errors (what hangs or corrupts a real GPU);
 *   - warp collectives (__shfl*_sync, __ballot_sync, __any_sync, __all_sync, __syncwarp,
 *     __reduce_*_sync) exchange values only when every lane in the mask has arrived at the same
 *     collective; a lane missing from a mask, a mismatched mask or a different collective is an
 *     error;
 *   - shared memory is declared with LM_SHARED / LM_SHARED2 / LM_SHARED_DYN (raw __shared__ does
 *     not compile here): indexing is bounds-checked and the arrays are filled with 0xff (NaN)
 *     before every block, so reads of never-written shared memory poison the result.
 * The first error of a launch is recorded with the thread and block that hit it; the launch then
 * stops and the error is reported through the runtime (cuda/rt.h), failing the step.
 * FP16 / BF16 / FP8 conversions come from CUDA's own headers (their host code paths).
 */
#ifndef LM_CUDA_EMU_H
#define LM_CUDA_EMU_H

#ifdef __CUDACC__
#error "emu.h is for host compilation of the kernels; nvcc builds use the real CUDA language"
#endif

/* raw __shared__ would be per-fiber (wrong) here: force LM_SHARED */
#define __shared__ LM_EMU_raw_shared_is_not_supported_use_LM_SHARED
#define __launch_bounds__(...)

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <vector_functions.h>
#include <vector_types.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <vector>

#ifndef __restrict__
#define __restrict__ __restrict
#endif

namespace lm_emu {

/* the running CUDA thread */
/* cp.async: copies issued by a thread, held back until cp.async.wait_group retires their group,
   so a read of the destination before the wait sees the poisoned shared memory */
struct cp_copy {
    void *dst;
    unsigned char data[16];
    unsigned n;
};

struct thread_state {
    uint3 tid, bid;
    dim3 bdim, gdim;
    unsigned lane, warp;
    void *dyn_smem;
    size_t dyn_smem_bytes;
    std::vector<cp_copy> cp_open;                /* issued, not yet committed */
    std::vector<std::vector<cp_copy>> cp_groups; /* committed groups, oldest first */
};
extern __thread thread_state *cur; /* __thread: plain TLS (C++ thread_local adds an init wrapper) */

/* error reporting: records the first error of the launch (with thread and block) */
[[gnu::format(printf, 1, 2)]] void fail(const char *fmt, ...);
bool failed();

/* synchronisation (park the fiber until the collective completes) */
void syncthreads(const char *site);
enum coll_op { C_SYNCWARP, C_SHFL, C_SHFL_UP, C_SHFL_DOWN, C_SHFL_XOR, C_BALLOT, C_ANY, C_ALL, C_RADD, C_RMIN, C_RMAX, C_FN };
uint64_t warp_collective(coll_op op, unsigned mask, uint64_t value, int param, int width, const char *site);
/* A whole-warp instruction (ldmatrix, mma): every lane of the warp arrives with its own argument
   block; once all 32 are there, fn runs once with the 32 blocks (lanes still parked, so their
   registers are stable) and writes each lane's results. All lanes must pass the same fn. */
typedef void (*warp_fn)(void *const args[32]);
void warp_exec(warp_fn fn, void *arg, const char *site);

template <typename T> inline uint64_t to_bits(T v) {
    static_assert(sizeof(T) <= 8, "warp shuffles of more than 8 bytes are not emulated");
    uint64_t u = 0;
    std::memcpy(&u, &v, sizeof v);
    return u;
}
template <typename T> inline T from_bits(uint64_t u) {
    T v;
    std::memcpy(&v, &u, sizeof v);
    return v;
}

/* shared memory */
void shared_register(void *p, size_t bytes); /* poisoned before every block */
void shared_oob(const char *name, size_t i, size_t n, const char *file, int line);

template <typename T, size_t N> struct shared_array {
    alignas(16) T data_[N]; /* as __align__(16) in the nvcc build: 16-byte vector accesses */
    const char *name_;
    shared_array(const char *name) : name_(name) { shared_register(data_, sizeof data_); }
    T &at(size_t i, const char *file, int line) {
        if (i >= N) {
            shared_oob(name_, i, N, file, line);
            static T dummy;
            return dummy;
        }
        return data_[i];
    }
    T &operator[](size_t i) { return at(i, "?", 0); }
    operator T *() { return data_; }
};

template <typename T, size_t R, size_t C> struct shared_array2 {
    alignas(16) T data_[R][C];
    const char *name_;
    shared_array2(const char *name) : name_(name) { shared_register(data_, sizeof data_); }
    struct row {
        T *p;
        size_t r;
        const char *name;
        T &operator[](size_t j) {
            if (j >= C) {
                shared_oob(name, r * C + j, R * C, "?", 0);
                static T dummy;
                return dummy;
            }
            return p[j];
        }
        operator T *() { return p; }
    };
    row operator[](size_t i) {
        if (i >= R) {
            shared_oob(name_, i * C, R * C, "?", 0);
            static T dummy[C];
            return row{dummy, 0, name_};
        }
        return row{data_[i], i, name_};
    }
};

/* dynamic shared memory of the launch, viewed as T[] with a bounds check */
template <typename T> struct shared_dyn {
    const char *name_;
    T &operator[](size_t i) {
        const size_t n = cur->dyn_smem_bytes / sizeof(T);
        if (i >= n) {
            shared_oob(name_, i, n, "?", 0);
            static T dummy;
            return dummy;
        }
        return static_cast<T *>(cur->dyn_smem)[i];
    }
    operator T *() { return static_cast<T *>(cur->dyn_smem); }
};

/* launch: run `body` once per thread of every block (host fibers) */
struct launch_config {
    dim3 grid, block;
    size_t smem;
    void *stream;
};
int launch(const launch_config &cfg, std::function<void()> body, const char *name);

} // namespace lm_emu

#define LM_EMU_STR2(x) #x
#define LM_EMU_STR(x) LM_EMU_STR2(x)
#define LM_EMU_SITE __FILE__ ":" LM_EMU_STR(__LINE__)

/* built-in variables */
#define threadIdx (::lm_emu::cur->tid)
#define blockIdx (::lm_emu::cur->bid)
#define blockDim (::lm_emu::cur->bdim)
#define gridDim (::lm_emu::cur->gdim)
#define warpSize 32

/* shared memory declarations (kernel scope) */
#define LM_SHARED(T, name, n) static thread_local ::lm_emu::shared_array<T, (n)> name(#name)
#define LM_SHARED2(T, name, r, c) static thread_local ::lm_emu::shared_array2<T, (r), (c)> name(#name)
#define LM_SHARED_DYN(T, name) ::lm_emu::shared_dyn<T> name{#name}

/* synchronisation */
#define __syncthreads() ::lm_emu::syncthreads(LM_EMU_SITE)
#define __syncwarp(...) ((void)::lm_emu::warp_collective(::lm_emu::C_SYNCWARP, lm_emu_mask_or_all(__VA_ARGS__), 0, 0, 32, LM_EMU_SITE))
static inline unsigned lm_emu_mask_or_all(unsigned m = 0xffffffffu) { return m; }
#define __threadfence() ((void)0)
#define __threadfence_block() ((void)0)

template <typename T> inline T lm_emu_shfl(::lm_emu::coll_op op, unsigned mask, T v, int p, int width, const char *site) {
    return ::lm_emu::from_bits<T>(::lm_emu::warp_collective(op, mask, ::lm_emu::to_bits(v), p, width, site));
}
#define __shfl_sync(mask, v, src, ...) lm_emu_shfl(::lm_emu::C_SHFL, (mask), (v), (src), lm_emu_width(__VA_ARGS__), LM_EMU_SITE)
#define __shfl_up_sync(mask, v, d, ...) lm_emu_shfl(::lm_emu::C_SHFL_UP, (mask), (v), (d), lm_emu_width(__VA_ARGS__), LM_EMU_SITE)
#define __shfl_down_sync(mask, v, d, ...) lm_emu_shfl(::lm_emu::C_SHFL_DOWN, (mask), (v), (d), lm_emu_width(__VA_ARGS__), LM_EMU_SITE)
#define __shfl_xor_sync(mask, v, m, ...) lm_emu_shfl(::lm_emu::C_SHFL_XOR, (mask), (v), (m), lm_emu_width(__VA_ARGS__), LM_EMU_SITE)
static inline int lm_emu_width(int w = 32) { return w; }
#define __ballot_sync(mask, pred) ((unsigned)::lm_emu::warp_collective(::lm_emu::C_BALLOT, (mask), (pred) ? 1u : 0u, 0, 32, LM_EMU_SITE))
#define __any_sync(mask, pred) ((int)::lm_emu::warp_collective(::lm_emu::C_ANY, (mask), (pred) ? 1u : 0u, 0, 32, LM_EMU_SITE))
#define __all_sync(mask, pred) ((int)::lm_emu::warp_collective(::lm_emu::C_ALL, (mask), (pred) ? 1u : 0u, 0, 32, LM_EMU_SITE))
#define __reduce_add_sync(mask, v) ((unsigned)::lm_emu::warp_collective(::lm_emu::C_RADD, (mask), (unsigned)(v), 0, 32, LM_EMU_SITE))
#define __reduce_min_sync(mask, v) ((unsigned)::lm_emu::warp_collective(::lm_emu::C_RMIN, (mask), (unsigned)(v), 0, 32, LM_EMU_SITE))
#define __reduce_max_sync(mask, v) ((unsigned)::lm_emu::warp_collective(::lm_emu::C_RMAX, (mask), (unsigned)(v), 0, 32, LM_EMU_SITE))
static inline unsigned __activemask() { return 0xffffffffu; }

/* memory */
template <typename T> static inline T __ldg(const T *p) { return *p; }

/* atomics: blocks run one at a time and fibers switch only at collectives, so plain
   read-modify-write is atomic here */
template <typename T> static inline T atomicAdd(T *p, T v) {
    T o = *p;
    *p = o + v;
    return o;
}
template <typename T> static inline T atomicMax(T *p, T v) {
    T o = *p;
    *p = o > v ? o : v;
    return o;
}
template <typename T> static inline T atomicMin(T *p, T v) {
    T o = *p;
    *p = o < v ? o : v;
    return o;
}
template <typename T> static inline T atomicExch(T *p, T v) {
    T o = *p;
    *p = v;
    return o;
}
template <typename T> static inline T atomicCAS(T *p, T cmp, T v) {
    T o = *p;
    if (o == cmp) *p = v;
    return o;
}

/* math and bit intrinsics */
static inline float lm_emu_expf(float x) { return expf(x); }
static inline float lm_emu_logf(float x) { return logf(x); }
#define __expf lm_emu_expf /* glibc declares its own __expf / __logf */
#define __logf lm_emu_logf
static inline float __fdividef(float a, float b) { return a / b; }
static inline float __frcp_rn(float x) { return 1.0f / x; }
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline float __saturatef(float x) { return x < 0.f ? 0.f : (x > 1.f ? 1.f : x); }
static inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
static inline int __float_as_int(float f) { int i; std::memcpy(&i, &f, 4); return i; }
static inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
static inline unsigned __float_as_uint(float f) { unsigned i; std::memcpy(&i, &f, 4); return i; }
static inline float __uint_as_float(unsigned i) { float f; std::memcpy(&f, &i, 4); return f; }
static inline int __popc(unsigned x) { return __builtin_popcount(x); }
static inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz((unsigned)x); }
static inline int __ffs(int x) { return __builtin_ffs(x); }
static inline int __dp4a(int a, int b, int c) {
    for (int i = 0; i < 4; i++) c += (int)(int8_t)(a >> (8 * i)) * (int)(int8_t)(b >> (8 * i));
    return c;
}
static inline unsigned __byte_perm(unsigned x, unsigned y, unsigned s) {
    const uint64_t v = ((uint64_t)y << 32) | x;
    unsigned r = 0;
    for (int i = 0; i < 4; i++) r |= (unsigned)((v >> (8 * ((s >> (4 * i)) & 7))) & 0xff) << (8 * i);
    return r;
}

#endif /* LM_CUDA_EMU_H */
