/*
 * mma.cuh — the tensor-core building blocks, one spelling for both builds:
 *   cp_async16 / cp_async_commit / cp_async_wait<N>   global -> shared copies (cp.async.cg, 16 B)
 *   ldmatrix_x4 / _x2 / _x2_trans / _x4_trans          8x8 b16 tiles from shared memory (ldmatrix)
 *   mma_m16n8k16_f16 / _bf16                          D = A B + C, f16/bf16 in, f32 accumulate
 * With nvcc these are the PTX instructions (sm_80+). Under the emulator they are computed from
 * the fragment layouts of the PTX ISA ("Matrix Fragments for mma.m16n8k16", "ldmatrix"), once
 * per warp when all 32 lanes have arrived (lm_emu::warp_exec), so a kernel that puts a value in the wrong register or lane gets wrong numbers
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
LM_DEV void ldmatrix_x4_trans(unsigned (&r)[4], const void *row) {
    const unsigned s = (unsigned)__cvta_generic_to_shared(row);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(s));
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

/* ldmatrix and mma are whole-warp instructions: each lane hands its operands to
   lm_emu::warp_exec, and once the warp is complete one call computes every lane's result from
   the fragment layouts (one collective per instruction, not a shuffle per register). */
struct lm_ldm_arg {
    const void *row; /* this lane's row address */
    unsigned *r;     /* its destination registers */
    int n;           /* tiles (registers) */
    bool trans;
};
static inline void lm_ldm_exec(void *const args[32]) {
    for (unsigned lane = 0; lane < 32; lane++) {
        const lm_ldm_arg &me = *(const lm_ldm_arg *)args[lane];
        for (int j = 0; j < me.n; j++) {
            if (!me.trans) {
                /* row lane / 4 of tile j, columns 2 (lane % 4), +1 */
                const char *p = (const char *)((const lm_ldm_arg *)args[8 * j + lane / 4])->row;
                std::memcpy(&me.r[j], p + 4 * (lane % 4), 4);
            } else {
                /* rows 2 (lane % 4), +1 of column lane / 4 */
                const char *p0 = (const char *)((const lm_ldm_arg *)args[8 * j + 2 * (lane % 4)])->row;
                const char *p1 = (const char *)((const lm_ldm_arg *)args[8 * j + 2 * (lane % 4) + 1])->row;
                uint16_t lo, hi;
                std::memcpy(&lo, p0 + 2 * (lane / 4), 2);
                std::memcpy(&hi, p1 + 2 * (lane / 4), 2);
                me.r[j] = (unsigned)lo | ((unsigned)hi << 16);
            }
        }
    }
}
static inline void lm_ldmatrix(unsigned *r, int n, bool trans, const void *row) {
    lm_ldm_arg a = {row, r, n, trans};
    lm_emu::warp_exec(lm_ldm_exec, &a, "ldmatrix");
}
static inline void ldmatrix_x4(unsigned (&r)[4], const void *row) { lm_ldmatrix(r, 4, false, row); }
static inline void ldmatrix_x2(unsigned (&r)[2], const void *row) { lm_ldmatrix(r, 2, false, row); }
static inline void ldmatrix_x2_trans(unsigned (&r)[2], const void *row) { lm_ldmatrix(r, 2, true, row); }
static inline void ldmatrix_x4_trans(unsigned (&r)[4], const void *row) { lm_ldmatrix(r, 4, true, row); }

template <bool BF> static inline float lm_half(unsigned reg, int hi) {
    const uint16_t h = (uint16_t)(hi ? reg >> 16 : reg & 0xffffu);
    return BF ? bf2f(h) : h2f(h);
}
struct lm_mma_arg {
    const unsigned *a, *b;
    const float *c;
    float *d;
};
/* the warp's A (16x16), B (16x8) and C (16x8) gathered from the lanes' fragments, D = A B + C
   (f32 accumulation in k order) scattered back; d may alias c */
template <bool BF> static inline void lm_mma_exec(void *const args[32]) {
    float A[16][16], B[16][8], C[16][8];
    for (unsigned lane = 0; lane < 32; lane++) {
        const lm_mma_arg &m = *(const lm_mma_arg *)args[lane];
        const unsigned g = lane / 4, t = lane % 4;
        for (int e = 0; e < 2; e++) {
            A[g][2 * t + e] = lm_half<BF>(m.a[0], e);
            A[g + 8][2 * t + e] = lm_half<BF>(m.a[1], e);
            A[g][2 * t + 8 + e] = lm_half<BF>(m.a[2], e);
            A[g + 8][2 * t + 8 + e] = lm_half<BF>(m.a[3], e);
            B[2 * t + e][g] = lm_half<BF>(m.b[0], e);
            B[2 * t + 8 + e][g] = lm_half<BF>(m.b[1], e);
        }
        C[g][2 * t] = m.c[0], C[g][2 * t + 1] = m.c[1], C[g + 8][2 * t] = m.c[2], C[g + 8][2 * t + 1] = m.c[3];
    }
    for (unsigned lane = 0; lane < 32; lane++) {
        const lm_mma_arg &m = *(const lm_mma_arg *)args[lane];
        const unsigned g = lane / 4, t = lane % 4;
        for (int o = 0; o < 4; o++) {
            const unsigned r = g + 8 * (o / 2), col = 2 * t + o % 2;
            float acc = C[r][col];
            for (int k = 0; k < 16; k++) acc += A[r][k] * B[k][col];
            m.d[o] = acc;
        }
    }
}
static inline void mma_m16n8k16_f16(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2], const float (&c)[4]) {
    lm_mma_arg m = {a, b, c, d};
    lm_emu::warp_exec(lm_mma_exec<false>, &m, "mma.m16n8k16.f16");
}
static inline void mma_m16n8k16_bf16(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2], const float (&c)[4]) {
    lm_mma_arg m = {a, b, c, d};
    lm_emu::warp_exec(lm_mma_exec<true>, &m, "mma.m16n8k16.bf16");
}

#endif

} // namespace LM_CUDA_NS

#endif /* LM_CUDA_MMA_CUH */
