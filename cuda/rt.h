/*
 * rt.h — the seam between lumen's CUDA backend and the CUDA runtime / cuBLAS.
 *
 * The backend and kernels (the .cu files of cuda/) call only what is declared here. Built by nvcc these are
 * thin inline wrappers over the CUDA runtime and cuBLAS; built by the host compiler (no GPU) they
 * are implemented by the emulator (cuda/emu/emu.cpp): memory is host memory, streams run work
 * when it is launched (or record it while a graph is being captured), events read the host
 * clock, graphs replay what was captured, and sgemm is a host loop. So the list below is exactly
 * the runtime surface lumen depends on.
 *
 * Every function returns 0 on success or a nonzero code; rt::error_string(code) says what failed
 * (for the emulator, including the kernel error it caught: a barrier not reached by every thread,
 * shared memory out of range, ...).
 */
#ifndef LM_CUDA_RT_H
#define LM_CUDA_RT_H

#include <cstddef>
#include <cstdint>

#ifdef __CUDACC__
#include <cstdio>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#else
#include "emu/emu.h"
#include <tuple>
#include <type_traits>
#include <utility>
#endif

/* The backend lives in one namespace per build flavour so a binary can hold both. */
#ifdef __CUDACC__
#define LM_CUDA_NS lm_cuda_nv
#else
#define LM_CUDA_NS lm_cuda_emu
#endif

namespace LM_CUDA_NS {
namespace rt {

typedef void *stream_t;
typedef void *event_t;
typedef void *graph_exec_t;
typedef void *blas_t;

struct device_props {
    char name[256];
    size_t total_mem;
    int sm_count;
    int cc_major, cc_minor;
    double bandwidth_gbs;   /* theoretical DRAM bandwidth (0 if unknown) */
    size_t smem_optin;      /* max shared memory per block with opt-in */
    size_t l2_bytes;
};

#ifdef __CUDACC__
static inline int device_count(int *n) {
    cudaError_t e = cudaGetDeviceCount(n);
    if (e != cudaSuccess) {
        *n = 0;
        cudaGetLastError();
    }
    return 0;
}
static inline int set_device(int d) { return (int)cudaSetDevice(d); }
static inline int get_props(int d, device_props *p) {
    cudaDeviceProp q;
    cudaError_t e = cudaGetDeviceProperties(&q, d);
    if (e) return (int)e;
    int clock_khz = 0, bus_bits = 0;
    cudaDeviceGetAttribute(&clock_khz, cudaDevAttrMemoryClockRate, d);
    cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, d);
    snprintf(p->name, sizeof p->name, "%s", q.name);
    p->total_mem = q.totalGlobalMem;
    p->sm_count = q.multiProcessorCount;
    p->cc_major = q.major;
    p->cc_minor = q.minor;
    p->bandwidth_gbs = 2.0 * clock_khz * 1e3 * (bus_bits / 8.0) / 1e9;
    p->smem_optin = q.sharedMemPerBlockOptin;
    p->l2_bytes = (size_t)q.l2CacheSize;
    return 0;
}
static inline int mem_info(size_t *free_b, size_t *total_b) { return (int)cudaMemGetInfo(free_b, total_b); }
static inline int malloc_device(void **p, size_t n) { return (int)cudaMalloc(p, n); }
static inline int free_device(void *p) { return (int)cudaFree(p); }
static inline int malloc_host(void **p, size_t n) { return (int)cudaMallocHost(p, n); }
static inline int free_host(void *p) { return (int)cudaFreeHost(p); }
static inline int memcpy_h2d(void *d, const void *s, size_t n, stream_t st) {
    return (int)cudaMemcpyAsync(d, s, n, cudaMemcpyHostToDevice, (cudaStream_t)st);
}
static inline int memcpy_d2h(void *d, const void *s, size_t n, stream_t st) {
    return (int)cudaMemcpyAsync(d, s, n, cudaMemcpyDeviceToHost, (cudaStream_t)st);
}
static inline int memcpy_d2d(void *d, const void *s, size_t n, stream_t st) {
    return (int)cudaMemcpyAsync(d, s, n, cudaMemcpyDeviceToDevice, (cudaStream_t)st);
}
static inline int memset_d(void *d, int v, size_t n, stream_t st) { return (int)cudaMemsetAsync(d, v, n, (cudaStream_t)st); }
static inline int stream_create(stream_t *s) {
    cudaStream_t q;
    cudaError_t e = cudaStreamCreateWithFlags(&q, cudaStreamNonBlocking);
    *s = q;
    return (int)e;
}
static inline int stream_destroy(stream_t s) { return (int)cudaStreamDestroy((cudaStream_t)s); }
static inline int stream_sync(stream_t s) { return (int)cudaStreamSynchronize((cudaStream_t)s); }
static inline int event_create(event_t *e) {
    cudaEvent_t q;
    cudaError_t r = cudaEventCreate(&q);
    *e = q;
    return (int)r;
}
static inline int event_destroy(event_t e) { return (int)cudaEventDestroy((cudaEvent_t)e); }
static inline int event_record(event_t e, stream_t s) { return (int)cudaEventRecord((cudaEvent_t)e, (cudaStream_t)s); }
static inline int event_sync(event_t e) { return (int)cudaEventSynchronize((cudaEvent_t)e); }
static inline int event_elapsed_ms(float *ms, event_t a, event_t b) {
    return (int)cudaEventElapsedTime(ms, (cudaEvent_t)a, (cudaEvent_t)b);
}
static inline int capture_begin(stream_t s) {
    return (int)cudaStreamBeginCapture((cudaStream_t)s, cudaStreamCaptureModeThreadLocal);
}
/* end the capture of s and instantiate it */
static inline int capture_end(stream_t s, graph_exec_t *out) {
    cudaGraph_t g;
    cudaError_t e = cudaStreamEndCapture((cudaStream_t)s, &g);
    if (e) return (int)e;
    cudaGraphExec_t x;
    e = cudaGraphInstantiate(&x, g, 0);
    cudaGraphDestroy(g);
    *out = x;
    return (int)e;
}
static inline int graph_launch(graph_exec_t g, stream_t s) { return (int)cudaGraphLaunch((cudaGraphExec_t)g, (cudaStream_t)s); }
static inline int graph_destroy(graph_exec_t g) { return (int)cudaGraphExecDestroy((cudaGraphExec_t)g); }
static inline int last_error() { return (int)cudaGetLastError(); }
static inline int peek_error() { return (int)cudaPeekAtLastError(); }
static inline const char *error_string(int e) {
    return e >= 100000 ? "cuBLAS call failed" : cudaGetErrorString((cudaError_t)e);
}
static inline int set_max_dyn_smem(const void *kernel, int bytes) {
    return (int)cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
}
static inline int blas_create(blas_t *b) {
    cublasHandle_t h;
    int e = (int)cublasCreate(&h);
    *b = h;
    return e ? 100000 + e : 0;
}
static inline int blas_destroy(blas_t b) { return cublasDestroy((cublasHandle_t)b) ? 100000 : 0; }
/* C[m, n] = A^T[m, k] B[k, n] in column-major terms: A is k x m (lda), B k x n (ldb), C m x n
   (ldc), all f32, fp32 arithmetic (no TF32) */
static inline int sgemm_tn(blas_t b, stream_t s, int m, int n, int k, const float *A, int lda, const float *B, int ldb,
                           float *C, int ldc) {
    cublasHandle_t h = (cublasHandle_t)b;
    cublasSetStream(h, (cudaStream_t)s);
    const float one = 1.0f, zero = 0.0f;
    int e = (int)cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &one, A, lda, B, ldb, &zero, C, ldc);
    return e ? 100000 + e : 0;
}
/* the same product with f16 A and B and f32 accumulation on the tensor cores (cublasGemmEx,
   C f32): the FP16 reference the tensor-core kernels are benchmarked against */
static inline int hgemm_tn(blas_t b, stream_t s, int m, int n, int k, const void *A, int lda, const void *B, int ldb,
                           float *C, int ldc) {
    cublasHandle_t h = (cublasHandle_t)b;
    cublasSetStream(h, (cudaStream_t)s);
    const float one = 1.0f, zero = 0.0f;
    int e = (int)cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &one, A, CUDA_R_16F, lda, B, CUDA_R_16F, ldb, &zero,
                              C, CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    return e ? 100000 + e : 0;
}
/* `kernel` must be one token (a kernel name or a function-pointer variable) */
#define LM_LAUNCH(kernel, grid, block, smem, stream, ...) kernel<<<(grid), (block), (smem), (cudaStream_t)(stream)>>>(__VA_ARGS__)
#else
int device_count(int *n);
int set_device(int d);
int get_props(int d, device_props *p);
int mem_info(size_t *free_b, size_t *total_b);
int malloc_device(void **p, size_t n);
int free_device(void *p);
int malloc_host(void **p, size_t n);
int free_host(void *p);
int memcpy_h2d(void *d, const void *s, size_t n, stream_t st);
int memcpy_d2h(void *d, const void *s, size_t n, stream_t st);
int memcpy_d2d(void *d, const void *s, size_t n, stream_t st);
int memset_d(void *d, int v, size_t n, stream_t st);
int stream_create(stream_t *s);
int stream_destroy(stream_t s);
int stream_sync(stream_t s);
int event_create(event_t *e);
int event_destroy(event_t e);
int event_record(event_t e, stream_t s);
int event_sync(event_t e);
int event_elapsed_ms(float *ms, event_t a, event_t b);
int capture_begin(stream_t s);
int capture_end(stream_t s, graph_exec_t *out);
int graph_launch(graph_exec_t g, stream_t s);
int graph_destroy(graph_exec_t g);
int last_error();
int peek_error();
const char *error_string(int e);
int set_max_dyn_smem(const void *kernel, int bytes);
int blas_create(blas_t *b);
int blas_destroy(blas_t b);
int sgemm_tn(blas_t b, stream_t s, int m, int n, int k, const float *A, int lda, const float *B, int ldb, float *C, int ldc);
/* `kernel` must be one token (a kernel name or a function-pointer variable: take template
   instances into a variable first, `auto k = gemv<T, 4>;`). As with <<<>>>, the arguments are
   evaluated and converted to the kernel's parameter types at the launch; the emulator keeps those
   values (a captured graph replays the launch with them). */
#define LM_LAUNCH(kernel, grid, block, smem, stream, ...)                                                              \
    ::LM_CUDA_NS::rt::launch_args(#kernel, kernel, dim3(grid), dim3(block), (smem), (stream), __VA_ARGS__)
int launch_emu(const char *name, const void *kernel, dim3 grid, dim3 block, size_t smem, stream_t s,
               std::function<void()> body);
template <typename... P, typename... A>
int launch_args(const char *name, void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, stream_t s, A &&...a) {
    static_assert(sizeof...(P) == sizeof...(A), "kernel launched with the wrong number of arguments");
    std::tuple<std::decay_t<P>...> args(std::forward<A>(a)...);
    return launch_emu(name, reinterpret_cast<const void *>(kernel), grid, block, smem, s,
                      [kernel, args]() { std::apply(kernel, args); });
}
#endif

} // namespace rt
} // namespace LM_CUDA_NS

#endif /* LM_CUDA_RT_H */
