#!/usr/bin/env python3
"""End-to-end throughput of lumen vs llama.cpp on the same GGUF, same threads, same machine, in one run.

    python bench/compare_llamacpp.py --model ~/.cache/lumen/models/gemma-3-270m-q4_k_m.gguf \
        --lumen build/lumen --threads 2 [--backend cpu] [--out bench/results/NAME.md]

Run it with the python of a peer build from bench/install_peer.sh KIND, KIND matching --backend:

    $(bash bench/install_peer.sh vulkan) bench/compare_llamacpp.py --backend vulkan -p 64 -n 16 ...

With --backend vulkan or cuda, llama.cpp offloads every layer (n_gpu_layers=-1) to its backend of
that kind; for Vulkan, GGML_VK_VISIBLE_DEVICES defaults to device 0 so that a CPU Vulkan driver
(lavapipe), which ggml skips by default, is used when it is the only device.

pp512: one 512-token prompt batch (logits for the last token only); tg128: 128 single-token decode
steps from an empty context. Both engines get the same random token ids. --reps rounds alternate
between the engines (each warmed up first); medians are reported and the ratio is
lumen / llama.cpp (> 1 = lumen faster). llama.cpp runs through llama-cpp-python (built from source by pip on this machine, so it
uses this CPU's full instruction set); its Python call overhead per decode step is a few
microseconds, under 0.1 % of a step here.
"""
import argparse
import datetime
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import time


class LlamaCpp:
    def __init__(self, model, threads, n_prompt, n_gen, gpu):
        import llama_cpp

        self.version = llama_cpp.__version__
        self.llm = llama_cpp.Llama(model_path=model, n_ctx=n_prompt + n_gen + 16, n_batch=n_prompt,
                                   n_ubatch=n_prompt, n_threads=threads, n_threads_batch=threads,
                                   n_gpu_layers=-1 if gpu else 0, verbose=False)
        rng = random.Random(42)
        self.toks = [self.llm.token_bos()] + [rng.randrange(self.llm.n_vocab()) for _ in range(n_prompt + n_gen)]
        self.n_prompt, self.n_gen = n_prompt, n_gen
        self.run()  # warm-up

    def run(self):
        llm = self.llm
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(self.toks[: self.n_prompt])
        t1 = time.perf_counter()
        llm.reset()
        t2 = time.perf_counter()
        for i in range(self.n_gen):
            llm.eval([self.toks[i]])
        t3 = time.perf_counter()
        return self.n_prompt / (t1 - t0), self.n_gen / (t3 - t2)


def bench_lumen(lumen, model, threads, n_prompt, n_gen, backend):
    """One `lumen bench` run (it warms up itself, then measures once)."""
    cmd = [lumen, "bench", "-m", model, "-p", str(n_prompt), "-n", str(n_gen), "-t", str(threads), "--reps", "1",
           "--backend", backend, "--quiet"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    pp = float(re.search(r"\| pp%d \| ([0-9.]+)" % n_prompt, out).group(1))
    tg = float(re.search(r"\| tg%d \| ([0-9.]+)" % n_gen, out).group(1))
    return pp, tg


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            return next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except Exception:
        return platform.processor()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--lumen", default="build/lumen")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("--out")
    a = ap.parse_args()

    gpu = a.backend != "cpu"
    if a.backend == "vulkan":
        os.environ.setdefault("GGML_VK_VISIBLE_DEVICES", "0")
    device = cpu_name()
    if a.backend == "vulkan":
        try:
            out = subprocess.run(["vulkaninfo", "--summary"], capture_output=True, text=True).stdout
            names = re.findall(r"deviceName\s*=\s*(.+)", out)
            device = names[int(os.environ.get("LUMEN_VK_DEVICE", "0"))].strip() if names else "?"
        except Exception:
            device = "?"
    elif a.backend == "cuda":
        device = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                                text=True).stdout.strip().splitlines()[0]
    # rounds alternate between the engines so that drift in machine speed hits both alike
    peer = LlamaCpp(a.model, a.threads, a.p, a.n, gpu)
    lp, lt, cp, ct = [], [], [], []
    for r in range(a.reps):
        x = bench_lumen(a.lumen, a.model, a.threads, a.p, a.n, a.backend)
        y = peer.run()
        lp.append(x[0]); lt.append(x[1]); cp.append(y[0]); ct.append(y[1])
        print(f"round {r + 1}/{a.reps}: lumen pp {x[0]:.1f} tg {x[1]:.1f} | llama.cpp pp {y[0]:.1f} tg {y[1]:.1f}",
              file=sys.stderr)
    l_pp, l_tg, c_pp, c_tg = (statistics.median(v) for v in (lp, lt, cp, ct))
    ver = peer.version

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    cpu = cpu_name()
    lines = [
        f"# lumen vs llama.cpp — {os.path.basename(a.model)}",
        "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}, lumen commit {commit}",
        f"- machine: {cpu}, {os.cpu_count()} cores; threads {a.threads}; backend {a.backend} on device: {device}",
        f"- llama.cpp: llama-cpp-python {ver} (built from source by pip on this machine"
        + (f", ggml {a.backend} backend, all layers offloaded)" if gpu else ")"),
        f"- median of {a.reps} alternating rounds after a warm-up; command: `python bench/compare_llamacpp.py --model {os.path.basename(a.model)} --threads {a.threads} --backend {a.backend} -p {a.p} -n {a.n} --reps {a.reps}`",
        "",
        "| test | lumen tok/s | llama.cpp tok/s | ratio (lumen / llama.cpp) |",
        "|---|---:|---:|---:|",
        f"| pp{a.p} | {l_pp:.2f} | {c_pp:.2f} | {l_pp / c_pp:.3f} |",
        f"| tg{a.n} | {l_tg:.2f} | {c_tg:.2f} | {l_tg / c_tg:.3f} |",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
        with open(a.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
