#!/usr/bin/env python3
"""Reference outputs of llama.cpp on the real Gemma 3 270M Q4_K_M GGUF, for tests/test_real_model.c.

Run once by hand (CI only reads the committed outputs):

    /root/.cache/lumen/venv/bin/python tools/gen_real_fixtures.py \
        --model ~/.cache/lumen/models/gemma-3-270m-q4_k_m.gguf --out tests/fixtures/real

Needs llama-cpp-python (built from source by pip; the version is recorded in the manifest).
Writes into --out:
  text.txt          the evaluation text (the first ~4.5 kB of the GNU GPL v3, verbatim copying
                    of which is permitted; it is real English prose and long enough to cross
                    the model's 512-token sliding window)
  tokens.txt        llama.cpp's token ids of text.txt (BOS first), whitespace separated
  ref_logits.bin    per position: llama.cpp's log-sum-exp of the full logits row, the logit of
                    the true next token, and the TOPK largest logits with their ids
                    format: "LMRL" u32 version=1, u32 n_pos, u32 n_vocab, u32 topk, then per
                    position: f32 lse, f32 next_logit, i32 ids[topk], f32 logits[topk]
  greedy.txt        for 3 prompts: the prompt, llama.cpp's greedy continuation ids and, per
                    step, the margin between the best and second-best logit
  manifest.txt      versions, perplexity of text.txt under llama.cpp, and settings
Runtime: ~1 minute on 2 cores.
"""
import argparse
import math
import os
import struct
import sys

import numpy as np

TOPK = 256
PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
    "Once upon a time, in a small village by the sea,",
]
N_GREEDY = 32


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--text", default="/usr/share/common-licenses/GPL-3")
    ap.add_argument("--bytes", type=int, default=4500)
    args = ap.parse_args()

    import llama_cpp

    os.makedirs(args.out, exist_ok=True)
    with open(args.text, "rb") as f:
        raw = f.read(args.bytes)
    # cut at the last complete line so the text ends cleanly
    raw = raw[: raw.rfind(b"\n") + 1]
    text = raw.decode("utf-8")
    with open(os.path.join(args.out, "text.txt"), "w", encoding="utf-8") as f:
        f.write(text)

    llm = llama_cpp.Llama(model_path=args.model, n_ctx=2048, n_batch=2048, n_ubatch=512, n_threads=2,
                          logits_all=True, verbose=False, seed=0)
    n_vocab = llm.n_vocab()
    toks = llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)
    print(f"{len(toks)} tokens, vocab {n_vocab}", file=sys.stderr)
    with open(os.path.join(args.out, "tokens.txt"), "w") as f:
        f.write(" ".join(str(t) for t in toks) + "\n")

    llm.reset()
    llm.eval(toks)
    logits = np.array(llm.scores[: len(toks)], dtype=np.float32)  # [n_pos, n_vocab]
    n_pos = len(toks) - 1  # positions that predict a next token
    nll = 0.0
    with open(os.path.join(args.out, "ref_logits.bin"), "wb") as f:
        f.write(b"LMRL")
        f.write(struct.pack("<IIII", 1, n_pos, n_vocab, TOPK))
        for i in range(n_pos):
            row = logits[i].astype(np.float64)
            mx = row.max()
            lse = mx + math.log(np.exp(row - mx).sum())
            nxt = toks[i + 1]
            nll -= row[nxt] - lse
            ids = np.argsort(-logits[i], kind="stable")[:TOPK].astype(np.int32)
            f.write(struct.pack("<ff", lse, float(logits[i][nxt])))
            f.write(ids.tobytes())
            f.write(logits[i][ids].astype(np.float32).tobytes())
    ppl = math.exp(nll / n_pos)
    print(f"llama.cpp perplexity {ppl:.6f} over {n_pos} predictions", file=sys.stderr)

    with open(os.path.join(args.out, "greedy.txt"), "w", encoding="utf-8") as f:
        for p in PROMPTS:
            llm.reset()
            pt = llm.tokenize(p.encode("utf-8"), add_bos=True, special=False)
            llm.eval(pt)
            out, margins = [], []
            for _ in range(N_GREEDY):
                row = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
                order = np.argsort(-row, kind="stable")
                t = int(order[0])
                out.append(t)
                margins.append(float(row[order[0]] - row[order[1]]))
                llm.eval([t])
            f.write("prompt " + " ".join(str(t) for t in pt) + "\n")
            f.write("greedy " + " ".join(str(t) for t in out) + "\n")
            f.write("margin " + " ".join(f"{m:.6f}" for m in margins) + "\n")
            print(p.replace("\n", "\\n"), "->", llm.detokenize(out).decode("utf-8", "replace").replace("\n", "\\n"),
                  file=sys.stderr)

    with open(os.path.join(args.out, "manifest.txt"), "w") as f:
        f.write(f"llama-cpp-python {llama_cpp.__version__}\n")
        f.write(f"model {os.path.basename(args.model)}\n")
        f.write(f"n_ctx 2048 n_ubatch 512 threads 2 (KV f16, llama.cpp defaults otherwise)\n")
        f.write(f"tokens {len(toks)} predictions {n_pos} topk {TOPK}\n")
        f.write(f"perplexity {ppl:.6f}\n")


if __name__ == "__main__":
    main()
