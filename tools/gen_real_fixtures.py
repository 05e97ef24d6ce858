#!/usr/bin/env python3
"""Reference outputs of llama.cpp on the real Gemma 3 270M Q4_K_M GGUF, for tests/test_real_model.c.

Run once by hand (CI only reads the committed outputs):

    /root/.cache/lumen/venv/bin/python tools/gen_real_fixtures.py \
        --model ~/.cache/lumen/models/gemma-3-270m-q4_k_m.gguf --out tests/fixtures/real

Needs llama-cpp-python (built from source by pip; the version is recorded in the manifest), and
for the float64 reference transformers + torch + accelerate (`--no-hf` skips it).
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
  ref_hf.bin        the same record as ref_logits.bin, from HF transformers in float64 on the
                    weights of the same GGUF (dequantized by transformers' GGUF loader): the
                    exact model, without any engine's activation rounding
  greedy_hf.txt     greedy continuations of the same prompts from HF float64, with margins
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


def write_ref(path, toks, logits):
    """LMRL record file from a [n_pos + 1, n_vocab] logits array (float64 or float32)."""
    n_vocab = logits.shape[1]
    n_pos = len(toks) - 1
    nll = 0.0
    with open(path, "wb") as f:
        f.write(b"LMRL")
        f.write(struct.pack("<IIII", 1, n_pos, n_vocab, TOPK))
        for i in range(n_pos):
            row = logits[i].astype(np.float64)
            mx = row.max()
            lse = mx + math.log(np.exp(row - mx).sum())
            nxt = toks[i + 1]
            nll -= row[nxt] - lse
            ids = np.argsort(-row, kind="stable")[:TOPK].astype(np.int32)
            f.write(struct.pack("<ff", lse, float(row[nxt])))
            f.write(ids.tobytes())
            f.write(row[ids].astype(np.float32).tobytes())
    return math.exp(nll / n_pos)


def hf_reference(model_path, toks, prompts_tok, out_dir):
    """Logits and greedy continuations of the exact model: HF transformers, float64."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(2)
    m = AutoModelForCausalLM.from_pretrained(os.path.dirname(model_path), gguf_file=os.path.basename(model_path),
                                             dtype=torch.float32, attn_implementation="eager").double().eval()
    with torch.no_grad():
        logits = m(torch.tensor([toks])).logits[0].numpy()
    ppl = write_ref(os.path.join(out_dir, "ref_hf.bin"), toks, logits)
    with open(os.path.join(out_dir, "greedy_hf.txt"), "w") as f:
        for pt in prompts_tok:
            seq = list(pt)
            out, margins = [], []
            with torch.no_grad():
                for _ in range(N_GREEDY):
                    row = m(torch.tensor([seq])).logits[0, -1].numpy()
                    order = np.argsort(-row, kind="stable")
                    out.append(int(order[0]))
                    margins.append(float(row[order[0]] - row[order[1]]))
                    seq.append(int(order[0]))
            f.write("prompt " + " ".join(str(t) for t in pt) + "\n")
            f.write("greedy " + " ".join(str(t) for t in out) + "\n")
            f.write("margin " + " ".join(f"{x:.6f}" for x in margins) + "\n")
    import transformers
    return ppl, transformers.__version__, torch.__version__, logits


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--text", default="/usr/share/common-licenses/GPL-3")
    ap.add_argument("--bytes", type=int, default=4500)
    ap.add_argument("--no-hf", action="store_true")
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
    ppl = write_ref(os.path.join(args.out, "ref_logits.bin"), toks, logits)
    print(f"llama.cpp perplexity {ppl:.6f} over {n_pos} predictions", file=sys.stderr)

    prompts_tok = []
    with open(os.path.join(args.out, "greedy.txt"), "w", encoding="utf-8") as f:
        for p in PROMPTS:
            llm.reset()
            pt = llm.tokenize(p.encode("utf-8"), add_bos=True, special=False)
            prompts_tok.append(pt)
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

    hf = None
    if not args.no_hf:
        hf = hf_reference(args.model, toks, prompts_tok, args.out)
        print(f"HF float64 perplexity {hf[0]:.6f}", file=sys.stderr)
        # how far llama.cpp itself is from the exact model, over the full vocabulary
        a = logits[:n_pos].astype(np.float64)
        b = hf[3][:n_pos].astype(np.float64)
        la = a - a.max(1, keepdims=True)
        la -= np.log(np.exp(la).sum(1, keepdims=True))
        lb = b - b.max(1, keepdims=True)
        lb -= np.log(np.exp(lb).sum(1, keepdims=True))
        kl = (np.exp(la) * (la - lb)).sum(1)
        top1 = float((a.argmax(1) == b.argmax(1)).mean())
        hf = hf[:3] + (top1, float(kl.mean()))
        print(f"llama.cpp vs HF float64: top-1 agreement {top1:.4f}, mean KL {kl.mean():.6f}", file=sys.stderr)

    with open(os.path.join(args.out, "manifest.txt"), "w") as f:
        f.write(f"llama-cpp-python {llama_cpp.__version__}\n")
        f.write(f"model {os.path.basename(args.model)}\n")
        f.write(f"n_ctx 2048 n_ubatch 512 threads 2 (KV f16, llama.cpp defaults otherwise)\n")
        f.write(f"tokens {len(toks)} predictions {n_pos} topk {TOPK}\n")
        f.write(f"perplexity {ppl:.6f}\n")
        if hf:
            f.write(f"hf_perplexity {hf[0]:.6f} (transformers {hf[1]}, torch {hf[2]}, float64)\n")
            f.write(f"llama_vs_hf_top1 {hf[3]:.6f}\nllama_vs_hf_kl {hf[4]:.6f}\n")


if __name__ == "__main__":
    main()
