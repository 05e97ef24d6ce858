#version 450
// matmul_tile.comp — tiled GEMM for the prefill side: a workgroup of 256 invocations computes a
// 64 x 64 tile of dst (64 weight rows x 64 activation columns), stepping K by 32: 64 invocations
// dequantize one 32-element sub-block of a weight row each (dq32) into shared memory while the
// other 192 stage the 32 x 64 activation slab; then every invocation accumulates a 4 x 4 block
// from shared memory. Each weight is dequantized once per 64 columns (vs once per 8 in
// matmul_vec) and each activation read once per 64 rows. Needs K % 32 == 0.
#include "common/common.glsl"
#include "common/quant.glsl"
layout(local_size_x = 256) in;
layout(push_constant) uniform PC {
    uint64_t w, x, d;
    uint K, M, N, row_bytes;
    uint x_nb1, d_nb1;
} pc;
shared float Ws[64][33];
shared float Xs[32][65];

void main() {
    const uint tid = gl_LocalInvocationID.x, ty = tid / 16u, tx = tid % 16u;
    const uint m0 = gl_WorkGroupID.x * 64u, n0 = gl_WorkGroupID.y * 64u;
    float acc[4][4];
    [[unroll]] for (uint i = 0u; i < 4u; i++) [[unroll]] for (uint j = 0u; j < 4u; j++) acc[i][j] = 0.0;
    for (uint k0 = 0u; k0 < pc.K; k0 += 32u) {
        if (tid < 64u) {
            float wv[32];
            const uint m = m0 + tid;
            if (m < pc.M) dq32(pc.w + uint64_t(m) * pc.row_bytes, k0 / 32u, wv);
            else [[unroll]] for (uint i = 0u; i < 32u; i++) wv[i] = 0.0;
            [[unroll]] for (uint i = 0u; i < 32u; i++) Ws[tid][i] = wv[i];
        } else {
            for (uint e = tid - 64u; e < 32u * 64u; e += 192u) {
                const uint kk = e % 32u, c = e / 32u, n = n0 + c;
                Xs[kk][c] = n < pc.N ? F32(pc.x + uint64_t(n) * pc.x_nb1).v[k0 + kk] : 0.0;
            }
        }
        barrier();
        [[unroll]] for (uint kk = 0u; kk < 32u; kk++) {
            float a[4], b[4];
            [[unroll]] for (uint i = 0u; i < 4u; i++) a[i] = Ws[ty * 4u + i][kk];
            [[unroll]] for (uint j = 0u; j < 4u; j++) b[j] = Xs[kk][tx * 4u + j];
            [[unroll]] for (uint i = 0u; i < 4u; i++) [[unroll]] for (uint j = 0u; j < 4u; j++) acc[i][j] += a[i] * b[j];
        }
        barrier();
    }
    [[unroll]] for (uint j = 0u; j < 4u; j++) {
        const uint n = n0 + tx * 4u + j;
        if (n >= pc.N) continue;
        [[unroll]] for (uint i = 0u; i < 4u; i++) {
            const uint m = m0 + ty * 4u + i;
            if (m < pc.M) F32(pc.d + uint64_t(n) * pc.d_nb1).v[m] = acc[i][j];
        }
    }
}
