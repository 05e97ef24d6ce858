/*
 * mma.cuh — the tensor-core building blocks, one spelling for both builds:
 *   cp_async16 / cp_async_commit / cp_async_wait<N>   global -> shared copies (cp.async.cg, 16 B)
 *   ldmatrix_x4 / ldmatrix_x2 / ldmatrix_x2_trans     8x8 b16 tiles from shared memory (ldmatrix)
 *   mma_m16n8k16_f16 / _bf16                          D = A B + C, f16/bf16 in, f32 accumulate
 * With nvcc these are the PTX instructions (sm_80+). Under the emulator they are computed from
 * the fragment layouts of the PTX ISA ("Matrix Fragments for mma.m16n8k16", "ldmatrix") with
 * warp shuffles, so a kernel that puts a value in the wrong register or lane gets wrong numbers
 * in CI exactly as it would on a GPU; cp.async copies are held back until the wait that retires
 * their group, so reading shared memory too early reads the emulator's NaN poison.
 *
 * Fragments (groupID g = lane / 4, t = lane % 4; a .b32 register holds two 16-bit values, the
 * lower-indexed one in the low half):
 *   A 16x16 row-major: a[0] = A[g][2t..2t+1], a[1] = A[g+8][2t..], a[2] = A[g][2t+8..], a[3] = A[g+8][2t+8..]
 *   B 16x8 ("col"):    b[0] = B[2t..2t+1][g],  b[1] = B[2t+8..2t+9][g]
 *   C/D 16x8 f32:      c[0] = C[g][2t], c[1] = C[g][2t+1], c[2] = C[g+8][2t], c[3] = C[g+8][2t+1]
 *   ldmatrix: lanes 8j..8j+7 give the row addresses of tile j; lane l receives row l/4, columns
 *   2(l%4), 2(l%4)+1 of tile j in register j (.trans: rows 2(l%4), 2(l%4)+1 of column l/4).
 */
#ifndef LM_CUDA_MMA_CUH
#define LM_CUDA_MMA_CUH

#include "common.cuh"

namespace LM_CUDA_NS {

#ifdef __CUDACC__

LM_DEV void cp_async16(void *smem, const void *gmem) {
    const unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(gmem));
}
LM_DEV void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> LM_DEV void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

LM_DEV void ldmatrix_x4(unsigned (&r)[4], const void *row) {
    const unsigned s = (unsigned)__cvta_generic_to_shared(row);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(s));
}
LM_DEV void ldmatrix_x2(unsigned (&r)[2], const void *row) {
    const unsigned s = (unsigned)__cvta_generic_to_shared(row);
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];\n" : "=r"(r[0]), "=r"(r[1]) : "r"(s));
}
LM_DEV void ldmatrix_x2_trans(unsigned (&r)[2], const void *row) {
    const unsigned s = (unsigned)__cvta_generic_to_shared(row);
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];\n" : "=r"(r[0]), "=r"(r[1]) : "r"(s));
}

LM_DEV void mma_m16n8k16_f16(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2], const float (&c)[4]) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
                 "{%10, %11, %12, %13};\n"
                 : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
}
LM_DEV void mma_m16n8k16_bf16(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2], const float (&c)[4]) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
                 "{%10, %11, %12, %13};\n"
                 : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
}

#else /* the emulator */

static inline void cp_async16(void *smem, const void *gmem) {
    lm_emu::cp_copy c;
    c.dst = smem;
    c.n = 16;
    std::memcpy(c.data, gmem, 16); /* the source is read when the copy is issued */
    lm_emu::cur->cp_open.push_back(c);
}
static inline void cp_async_commit() {
    lm_emu::cur->cp_groups.push_back(std::move(lm_emu::cur->cp_open));
    lm_emu::cur->cp_open.clear();
}
template <int N> static inline void cp_async_wait() {
    auto &g = lm_emu::cur->cp_groups;
    while ((int)g.size() > N) {
        for (const lm_emu::cp_copy &c : g.front()) std::memcpy(c.dst, c.data, c.n);
        g.erase(g.begin());
    }
}

/* 32-bit word w (columns 2w, 2w+1) of row r of the tile whose row addresses lanes 8j.. gave */
static inline unsigned lm_ldm_word(const void *row, int j, unsigned lane, bool trans) {
    if (!trans) {
        const char *p = (const char *)__shfl_sync(0xffffffffu, (uintptr_t)row, 8 * j + (int)lane / 4);
        unsigned v;
        std::memcpy(&v, p + 4 * (lane % 4), 4);
        return v;
    }
    const char *p0 = (const char *)__shfl_sync(0xffffffffu, (uintptr_t)row, 8 * j + 2 * (int)(lane % 4));
    const char *p1 = (const char *)__shfl_sync(0xffffffffu, (uintptr_t)row, 8 * j + 2 * (int)(lane % 4) + 1);
    uint16_t lo, hi;
    std::memcpy(&lo, p0 + 2 * (lane / 4), 2);
    std::memcpy(&hi, p1 + 2 * (lane / 4), 2);
    return (unsigned)lo | ((unsigned)hi << 16);
}
static inline void ldmatrix_x4(unsigned (&r)[4], const void *row) {
    for (int j = 0; j < 4; j++) r[j] = lm_ldm_word(row, j, lm_emu::cur->lane, false);
}
static inline void ldmatrix_x2(unsigned (&r)[2], const void *row) {
    for (int j = 0; j < 2; j++) r[j] = lm_ldm_word(row, j, lm_emu::cur->lane, false);
}
static inline void ldmatrix_x2_trans(unsigned (&r)[2], const void *row) {
    for (int j = 0; j < 2; j++) r[j] = lm_ldm_word(row, j, lm_emu::cur->lane, true);
}

template <bool BF> static inline float lm_half(unsigned reg, int hi) {
    const uint16_t h = (uint16_t)(hi ? reg >> 16 : reg & 0xffffu);
    return BF ? bf2f(h) : h2f(h);
}
/* every lane gathers its two rows of A and two columns of B from the lanes holding them */
template <bool BF> static inline void lm_mma(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2], const float (&c)[4]) {
    const unsigned lane = lm_emu::cur->lane, g = lane / 4, t = lane % 4;
    float A[2][16], B[2][16]; /* A[i][k]: row g + 8i; B[i][k]: column 2t + i */
    for (int q = 0; q < 4; q++) {
        const int src = (int)(lane & ~3u) + q;
        unsigned ar[4];
        for (int j = 0; j < 4; j++) ar[j] = __shfl_sync(0xffffffffu, a[j], src);
        for (int i = 0; i < 2; i++)
            for (int e = 0; e < 2; e++) {
                A[i][2 * q + e] = lm_half<BF>(ar[i], e);
                A[i][2 * q + 8 + e] = lm_half<BF>(ar[i + 2], e);
            }
        for (int i = 0; i < 2; i++) {
            const int owner = (int)(2 * t + i) * 4 + q;
            const unsigned b0 = __shfl_sync(0xffffffffu, b[0], owner), b1 = __shfl_sync(0xffffffffu, b[1], owner);
            for (int e = 0; e < 2; e++) {
                B[i][2 * q + e] = lm_half<BF>(b0, e);
                B[i][2 * q + 8 + e] = lm_half<BF>(b1, e);
            }
        }
    }
    for (int o = 0; o < 4; o++) {
        const int i = o / 2, jcol = o % 2;
        float acc = c[o];
        for (int k = 0; k < 16; k++) acc += A[i][k] * B[jcol][k];
        d[o] = acc;
    }
    (void)g;
}
static inline void mma_m16n8k16_f16(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2], const float (&c)[4]) {
    lm_mma<false>(d, a, b, c);
}
static inline void mma_m16n8k16_bf16(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2], const float (&c)[4]) {
    lm_mma<true>(d, a, b, c);
}

#endif

} // namespace LM_CUDA_NS

#endif /* LM_CUDA_MMA_CUH */
