#!/usr/bin/env python3
"""
gen_quant_fixtures.py — writes the dequantization fixtures tests/test_quant.c checks lm_dequant_row
against, bit for bit. The expected output comes from gguf.quants.dequantize of the gguf Python
package (the reference llama.cpp's converter uses), so the C dequantizers are checked against an
independent implementation, not against themselves.

Usage: gen_quant_fixtures.py [OUT_DIR]   (default: tests/fixtures/quant next to this script)
Needs: numpy and gguf (pip install gguf). Deterministic: the same seed gives the same files.

One file per type, OUT_DIR/<name>.bin, lower-case ggml type name (f32, f16, bf16, q4_0, q4_1,
q5_0, q5_1, q8_0, q2_k, q3_k, q4_k, q5_k, q6_k). All integers little-endian:

    offset  size        field
    0       4           magic "LMQF"
    4       4           u32 format version (1)
    8       4           u32 ggml type id (GGMLQuantizationType)
    12      4           u32 elements per block   (from gguf.GGML_QUANT_SIZES)
    16      4           u32 bytes per block      (from gguf.GGML_QUANT_SIZES)
    20      4           u32 n_blocks
    24      4           u32 n_elements = n_blocks * elements per block
    28      4           u32 n_bytes    = n_blocks * bytes per block
    32      n_bytes     the encoded blocks, verbatim as in a GGUF file
    32+n_bytes  4*n_elements   expected float32 values

How the blocks are drawn (every decode path gets exercised):
  * quantized types: every byte of the block is random (so every nibble / 2-bit / high-bit /
    6-bit-scale / signed-scale pattern occurs), then each f16 scale/min field (d, m, dmin) is
    overwritten by a random finite half: mostly normal values of moderate magnitude
    (2^-14 .. 2^3) of both signs, ~10% subnormal halves, ~5% +0 / -0. Block 0 has all quant
    bytes 0x00 and block 1 all 0xFF (extremes of every field); the rest are random.
  * f16 / bf16: random finite bit patterns (any exponent but the all-ones one), with the
    special values +-0, the smallest/largest subnormal, the smallest normal and the largest
    finite value placed first; ~1/8 of the random draws are forced subnormal.
  * f32: random finite bit patterns incl. +-0 and subnormals (dequantization is a copy).
"""
import os
import struct
import sys

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType as T
from gguf.quants import dequantize

SEED = 20240611
N_ELEMS = 8192  # per file: 256 blocks of 32 or 32 blocks of 256 elements

# byte offsets of the f16 scale/min fields inside one block (ggml layouts, quant_blocks.h)
HALF_FIELDS = {
    T.Q4_0: [0],
    T.Q4_1: [0, 2],
    T.Q5_0: [0],
    T.Q5_1: [0, 2],
    T.Q8_0: [0],
    T.Q2_K: [80, 82],  # scales[16] qs[64] d dmin
    T.Q3_K: [108],     # hmask[32] qs[64] scales[12] d
    T.Q4_K: [0, 2],
    T.Q5_K: [0, 2],
    T.Q6_K: [208],     # ql[128] qh[64] scales[16] d
}

TYPES = [T.F32, T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0,
         T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K]


def random_scale_half(rng: np.random.Generator) -> int:
    """A finite f16 bit pattern for a scale or min field."""
    sign = int(rng.integers(0, 2)) << 15
    r = rng.random()
    if r < 0.05:
        return sign  # +0 / -0
    if r < 0.15:
        return sign | int(rng.integers(1, 0x400))  # subnormal
    exp = int(rng.integers(1, 19))  # biased exponent 1..18: 2^-14 .. 2^3
    return sign | (exp << 10) | int(rng.integers(0, 0x400))


def quant_blocks(qtype: T, n_blocks: int, rng: np.random.Generator) -> np.ndarray:
    _, type_size = GGML_QUANT_SIZES[qtype]
    blocks = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    blocks[0, :] = 0x00
    blocks[1, :] = 0xFF
    for b in range(n_blocks):
        for off in HALF_FIELDS[qtype]:
            h = random_scale_half(rng)
            blocks[b, off] = h & 0xFF
            blocks[b, off + 1] = h >> 8
    return blocks.reshape(-1)


def half_like(n: int, exp_bits: int, mant_bits: int, rng: np.random.Generator) -> np.ndarray:
    """n finite 16-bit patterns of a 1/exp/mant float format (f16: 5/10, bf16: 8/7)."""
    mant_mask = (1 << mant_bits) - 1
    exp_all = (1 << exp_bits) - 1
    special = [
        0x0000, 0x8000,                                     # +-0
        0x0001, 0x8001,                                     # smallest subnormal
        mant_mask, 0x8000 | mant_mask,                      # largest subnormal
        1 << mant_bits, 0x8000 | (1 << mant_bits),          # smallest normal
        ((exp_all - 1) << mant_bits) | mant_mask,           # largest finite
        0x8000 | ((exp_all - 1) << mant_bits) | mant_mask,
    ]
    v = rng.integers(0, 1 << 16, size=n, dtype=np.uint32)
    exp = (v >> mant_bits) & exp_all
    # the all-ones exponent (inf/NaN) becomes exponent 0: subnormals / zeros
    v = np.where(exp == exp_all, v & ~np.uint32(exp_all << mant_bits), v)
    sub = rng.random(n) < 0.125
    v = np.where(sub, v & np.uint32(0x8000 | mant_mask), v)
    v[: len(special)] = special
    return v.astype(np.uint16)


def f32_values(n: int, rng: np.random.Generator) -> np.ndarray:
    v = rng.integers(0, 1 << 32, size=n, dtype=np.uint64).astype(np.uint32)
    exp = (v >> 23) & 0xFF
    v = np.where(exp == 0xFF, v & np.uint32(0x807FFFFF), v)  # no inf/NaN: make them subnormal
    v[:4] = [0x00000000, 0x80000000, 0x00000001, 0x7F7FFFFF]
    return v


def make(qtype: T, rng: np.random.Generator) -> tuple[bytes, np.ndarray]:
    block, type_size = GGML_QUANT_SIZES[qtype]
    n_blocks = N_ELEMS // block
    if qtype == T.F32:
        data = f32_values(N_ELEMS, rng).view(np.uint8)
    elif qtype == T.F16:
        data = half_like(N_ELEMS, 5, 10, rng).view(np.uint8)
    elif qtype == T.BF16:
        data = half_like(N_ELEMS, 8, 7, rng).view(np.uint8)
    else:
        data = quant_blocks(qtype, n_blocks, rng)
    assert data.size == n_blocks * type_size
    out = np.asarray(dequantize(data, qtype), dtype=np.float32).reshape(-1)
    assert out.dtype == np.float32 and out.size == N_ELEMS, (qtype.name, out.dtype, out.shape)
    assert np.all(np.isfinite(out)), qtype.name
    return data.tobytes(), out


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "tests", "fixtures", "quant")
    os.makedirs(out_dir, exist_ok=True)
    for i, qtype in enumerate(TYPES):
        rng = np.random.default_rng([SEED, int(qtype)])  # per-type stream: files independent
        block, type_size = GGML_QUANT_SIZES[qtype]
        data, expected = make(qtype, rng)
        n_blocks = N_ELEMS // block
        header = struct.pack("<4s7I", b"LMQF", 1, int(qtype), block, type_size, n_blocks, N_ELEMS, len(data))
        path = os.path.join(out_dir, qtype.name.lower() + ".bin")
        with open(path, "wb") as f:
            f.write(header)
            f.write(data)
            f.write(expected.astype("<f4").tobytes())
        print(f"{path}: {n_blocks} blocks, {len(data)} + {4 * N_ELEMS} bytes")


if __name__ == "__main__":
    main()
