#!/usr/bin/env python3
"""gen_hf_fixtures.py - golden-logit fixtures from HF transformers for tiny random Gemma models.

WHAT IT DOES
    For each of four tiny, random-weight, structurally faithful models

        gemma3_tiny   Gemma3ForCausalLM  (sliding/global 5:1 pattern, GQA, tied embeddings)
        gemma4_dense  Gemma4ForCausalLM  31B-shaped (K=V full layers, proportional RoPE, softcap 30)
        gemma4_moe    Gemma4ForCausalLM  26B-A4B-shaped (dense MLP + routed experts, 3 extra norms)
        gemma4_e      Gemma4ForCausalLM  E2B-shaped (per-layer embeddings, KV sharing, double-wide MLP)

    it
      1. builds the model in float32 with HF transformers (fixed seeds) and randomises *every*
         weight, including all norm weights, layer_scalar, router scale and per_expert_scale,
      2. builds a tiny tokenizer (SentencePiece BPE for Gemma 3, a tokenizers-library BPE
         tokenizer.json for Gemma 4; both trained on /usr/share/common-licenses/GPL-3),
      3. saves the HF checkpoint and converts it with llama.cpp's own convert_hf_to_gguf.py
         (taken from the llama-cpp-python 0.3.36 sdist, run with that tree's gguf-py, --outtype f32),
      4. runs the HF forward pass (eager attention, float32, no KV cache) on 3 token sequences
         (lengths 5, 23, 40; first token = BOS) and records the logits of every position,
      5. evaluates the converted GGUF with llama-cpp-python on the same tokens and prints
         max|logits_llama - logits_hf| / max|logits_hf| (informational only),
      6. writes the fixtures and a README.md describing everything.

HOW TO RUN (by hand; CI never runs this - it has no torch)
    /root/.cache/lumen/venv/bin/python tools/gen_hf_fixtures.py --out tests/fixtures/hf

    Options:
      --llama-cpp-dir DIR   use an already extracted llama.cpp tree (the sdist's vendor/llama.cpp)
                            instead of running `pip download --no-deps --no-binary :all:
                            llama-cpp-python==0.3.36` into a temp dir (needs PyPI access).
      --keep-tmp            keep the temp dir (HF checkpoints, tokenizers) and print its path.
      --no-llama-check      skip step 5.
      --only NAME ...       build only some models (debugging; README.md is then not rewritten).

    Requirements (in the venv): torch (CPU), transformers 5.23, numpy, sentencepiece, tokenizers,
    safetensors, llama-cpp-python 0.3.36 (for step 5).
    Runtime: about 1 minute on 2 CPU cores (including the ~77 MB sdist download).

WHAT IT WRITES (into --out)
    <name>.gguf          converted model, all tensors F32 (each < 3 MB)
    <name>.logits        HF reference logits, format below
    <name>.config.json   the HF config.json exactly as save_pretrained wrote it
    README.md            configs, features exercised, versions, llama.cpp-vs-HF numbers,
                         GGUF tensor tables and metadata keys

LOGITS FILE FORMAT (little-endian)
    char[4] "LMLG"; u32 version = 1; u32 n_vocab; u32 n_seq;
    then n_seq times: u32 n_tok; i32 tokens[n_tok]; f32 logits[n_tok][n_vocab]
    logits[t] are the (softcapped, where the model has a softcap) logits predicting token t+1.

WHY HIDDEN SIZE 64 (AND PLE WIDTH 16)
    HF multiplies the token embedding by embed_scale = sqrt(hidden_size) *after casting it to the
    weight dtype* (bf16 for real checkpoints; Gemma 4 PLE uses sqrt(hidden_size_per_layer_input)
    the same way), while llama.cpp's gemma3/gemma4 graphs use the exact float sqrt.  With H = 64 and
    P = 16 the scales are 8 and 4, exactly representable in bf16/fp16/fp32, so HF-fp32, HF-bf16,
    llama.cpp and lumen all agree and a fixture mismatch cannot be blamed on scale rounding.  The
    same holds for the other power-of-two derived constants: H^-0.5 = 1/8 (router input scale,
    PLE projection scale), attention scale 1/sqrt(32) (Gemma 3, query_pre_attn_scalar = head_dim).

DETERMINISM
    torch.manual_seed / numpy default_rng with fixed seeds per model, single-threaded torch,
    SentencePiece trained with num_threads=1 and no sampling, Gemma 4 BPE merges learned by a small
    deterministic pure-Python trainer in this file.  Re-running produces identical logits files.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

LLAMA_CPP_PYTHON_VERSION = "0.3.36"
CORPUS = Path("/usr/share/common-licenses/GPL-3")
SEQ_LENGTHS = (5, 23, 40)

# ----------------------------------------------------------------------------------------------
# model specifications
# ----------------------------------------------------------------------------------------------

S, F = "sliding_attention", "full_attention"

# Gemma 4 tokenizer layout: control tokens first (ids 0..4 match real Gemma), then the Gemma 4
# chat/tool tokens, then the 256 byte-fallback tokens, then learned BPE tokens.
G4_SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>",
               "<|turn>", "<turn|>", "<|think|>", "<|channel>", "<channel|>",
               "<|tool_call>", "<tool_call|>", "<|tool_response>", "<tool_response|>", '<|"|>']
G3_SPECIALS_USER = ["<start_of_turn>", "<end_of_turn>"]  # added as user-defined, marked special
VOCAB_SIZE = 512
# the Llama-family fixtures reuse the Gemma 3 SentencePiece tokenizer (the converter takes
# tokenizer.model first for both): their tests feed token ids, the tokenizer only has to convert
TOKENIZER_OF = {"llama": "gemma3", "qwen2": "gemma3"}

MODELS = {
    "gemma3_tiny": dict(
        family="gemma3",
        seed=1003,
        config=dict(
            vocab_size=VOCAB_SIZE, hidden_size=64, intermediate_size=128,
            num_hidden_layers=7, num_attention_heads=4, num_key_value_heads=2, head_dim=32,
            query_pre_attn_scalar=32, sliding_window=8, sliding_window_pattern=6,
            rope_theta=1_000_000.0, rope_local_base_freq=10_000.0,
            max_position_embeddings=512, rms_norm_eps=1e-6,
            final_logit_softcapping=None, attn_logit_softcapping=None,
            tie_word_embeddings=True, pad_token_id=0, eos_token_id=1, bos_token_id=2,
        ),
        features="Gemma 3 text decoder: layer_types from sliding_window_pattern 6 (layer 5 global, "
                 "layers 0-4 and 6 sliding - last layer sliding like Gemma 3 27B), GQA 4q/2kv, "
                 "head_dim 32, attention scale query_pre_attn_scalar^-0.5 = 32^-0.5, window 8, "
                 "rope 1e6 global / 1e4 local (full rotation), (1+w) RMSNorm (GGUF has +1 folded), "
                 "q_norm/k_norm, sandwich norms, GeGLU-tanh, tied embeddings, no softcaps.",
    ),
    "gemma4_dense": dict(
        family="gemma4",
        seed=1004,
        config=dict(
            vocab_size=VOCAB_SIZE, hidden_size=64, intermediate_size=128,
            num_hidden_layers=6, layer_types=[S, S, F, S, S, F],
            num_attention_heads=4, num_key_value_heads=2, head_dim=32,
            global_head_dim=64, num_global_key_value_heads=1, attention_k_eq_v=True,
            sliding_window=8, final_logit_softcapping=30.0,
            rope_parameters={
                "sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0},
                "full_attention": {"rope_type": "proportional", "partial_rotary_factor": 0.25,
                                   "rope_theta": 1_000_000.0},
            },
            hidden_size_per_layer_input=0, num_kv_shared_layers=0, enable_moe_block=False,
            use_double_wide_mlp=False, max_position_embeddings=512, rms_norm_eps=1e-6,
            tie_word_embeddings=True, pad_token_id=0, eos_token_id=1, bos_token_id=2,
        ),
        features="31B-shaped: per-layer sliding/full list [S,S,F,S,S,F] (last layer full), "
                 "head_dim 32 sliding / 64 full, kv heads 2 sliding / 1 full, attention_k_eq_v "
                 "(full layers have no v_proj: V = v_norm(raw K)), unweighted v_norm, attention "
                 "scale 1.0, proportional RoPE on full layers (theta 1e6, partial_rotary_factor 0.25 "
                 "-> 8 of 32 frequency slots rotate, rope_freqs tensor), default RoPE theta 1e4 on "
                 "sliding layers, window 8, random layer_scalar, random norm weights, final logit "
                 "softcap 30, tied embeddings.",
    ),
    "gemma4_moe": dict(
        family="gemma4",
        seed=1005,
        config=dict(
            vocab_size=VOCAB_SIZE, hidden_size=64, intermediate_size=64,
            num_hidden_layers=6, layer_types=[S, S, F, S, S, F],
            num_attention_heads=4, num_key_value_heads=2, head_dim=32,
            global_head_dim=64, num_global_key_value_heads=1, attention_k_eq_v=True,
            sliding_window=8, final_logit_softcapping=30.0,
            rope_parameters={
                "sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0},
                "full_attention": {"rope_type": "proportional", "partial_rotary_factor": 0.25,
                                   "rope_theta": 1_000_000.0},
            },
            enable_moe_block=True, num_experts=8, top_k_experts=2, moe_intermediate_size=32,
            hidden_size_per_layer_input=0, num_kv_shared_layers=0, use_double_wide_mlp=False,
            max_position_embeddings=512, rms_norm_eps=1e-6,
            tie_word_embeddings=True, pad_token_id=0, eos_token_id=1, bos_token_id=2,
        ),
        features="26B-A4B-shaped: everything in gemma4_dense plus, on every layer, the MoE block: "
                 "dense GeGLU MLP (I=64) in parallel with 8 routed experts (top-2, expert width 32, "
                 "fused gate_up), router = unweighted RMSNorm * H^-0.5 * router.scale -> proj -> "
                 "softmax -> top-k -> renormalise -> * per_expert_scale (scale and per_expert_scale "
                 "random), extra norms pre_feedforward_layernorm_2, post_feedforward_layernorm_1/_2.",
    ),
    "gemma4_e": dict(
        family="gemma4",
        seed=1006,
        config=dict(
            vocab_size=VOCAB_SIZE, hidden_size=64, intermediate_size=64,
            num_hidden_layers=10, layer_types=[S, S, S, S, F, S, S, S, S, F],
            num_attention_heads=4, num_key_value_heads=1, head_dim=32,
            global_head_dim=64, num_global_key_value_heads=None, attention_k_eq_v=False,
            sliding_window=8, final_logit_softcapping=30.0,
            rope_parameters={
                "sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0},
                "full_attention": {"rope_type": "proportional", "partial_rotary_factor": 0.25,
                                   "rope_theta": 1_000_000.0},
            },
            hidden_size_per_layer_input=16, vocab_size_per_layer_input=VOCAB_SIZE,
            num_kv_shared_layers=5, use_double_wide_mlp=True, enable_moe_block=False,
            max_position_embeddings=512, rms_norm_eps=1e-6,
            tie_word_embeddings=True, pad_token_id=0, eos_token_id=1, bos_token_id=2,
        ),
        features="E2B-shaped: 4:1 pattern [S,S,S,S,F,S,S,S,S,F], per-layer embeddings (PLE, width "
                 "16: embed_tokens_per_layer [512][10*16] scaled by sqrt(16)=4, "
                 "per_layer_model_projection * H^-0.5, per_layer_projection_norm, per-layer gate/"
                 "projection/post norm), num_kv_shared_layers 5 (layers 5-9 = S,S,S,S,F reuse the KV of "
                 "the donors: last non-shared sliding layer 3 and last non-shared full layer 4; they "
                 "have no k_proj/v_proj/k_norm; as in E2B/E4B the last non-shared layer is full and "
                 "the one before it sliding, which llama.cpp's donor rule requires), "
                 "use_double_wide_mlp (I=64, 128 on shared layers 5-9), attention_k_eq_v false (full "
                 "layers have v_proj and the same kv-head count 1), head_dim 32/64, proportional "
                 "RoPE, softcap 30, random layer_scalar and norm weights.",
    ),
    "llama_tiny": dict(
        family="llama",
        seed=1007,
        config=dict(
            vocab_size=VOCAB_SIZE, hidden_size=64, intermediate_size=160,
            num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
            rope_theta=10_000.0, max_position_embeddings=512, rms_norm_eps=1e-5,
            attention_bias=False, mlp_bias=False, tie_word_embeddings=False,
            pad_token_id=0, eos_token_id=1, bos_token_id=2,
        ),
        features="Llama decoder (llama arch: Llama 2/3, SmolLM2): pre-norm blocks, GQA 4q/2kv, "
                 "head_dim 16, attention scale head_dim^-0.5, RoPE theta 1e4 (HF rotate_half; the "
                 "converter permutes q/k so that GGUF uses adjacent-pair rope), SwiGLU MLP, untied "
                 "output matrix, no biases.",
    ),
    "qwen2_tiny": dict(
        family="qwen2",
        seed=1008,
        config=dict(
            vocab_size=VOCAB_SIZE, hidden_size=64, intermediate_size=160,
            num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=1, head_dim=16,
            rope_theta=1_000_000.0, max_position_embeddings=512, rms_norm_eps=1e-6,
            use_sliding_window=False, tie_word_embeddings=True,
            pad_token_id=0, eos_token_id=1, bos_token_id=2,
        ),
        features="Qwen2 decoder (qwen2 arch: Qwen2/2.5, DeepSeek-R1-Distill-Qwen): as llama_tiny "
                 "but with q/k/v projection biases (random), GQA 4q/1kv, RoPE on halves (neox) "
                 "theta 1e6, tied embeddings.",
    ),
}


def log(*a):
    print(*a, flush=True)


# ----------------------------------------------------------------------------------------------
# llama.cpp tree (converter) acquisition
# ----------------------------------------------------------------------------------------------

def obtain_llama_cpp(tmp: Path, given: str | None) -> Path:
    if given:
        tree = Path(given).resolve()
    else:
        dl = tmp / "sdist"
        dl.mkdir()
        log(f"[sdist] pip download llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION} (source) ...")
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                        f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}", "-d", str(dl)], check=True)
        tars = glob.glob(str(dl / "llama_cpp_python-*.tar.gz"))
        if len(tars) != 1:
            raise SystemExit(f"expected one sdist tarball in {dl}, got {tars}")
        with tarfile.open(tars[0]) as tf:
            try:
                tf.extractall(dl, filter="data")
            except TypeError:
                tf.extractall(dl)
        tree = dl / f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}" / "vendor" / "llama.cpp"
    if not (tree / "convert_hf_to_gguf.py").is_file() or not (tree / "gguf-py" / "gguf").is_dir():
        raise SystemExit(f"{tree} does not look like a llama.cpp tree")
    return tree


# ----------------------------------------------------------------------------------------------
# tokenizers
# ----------------------------------------------------------------------------------------------

def corpus_lines() -> list[str]:
    text = CORPUS.read_text(encoding="utf-8")
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


def build_gemma3_tokenizer(dst: Path) -> dict:
    """SentencePiece BPE model shaped like Gemma's: pad 0, eos 1, bos 2, unk 3, byte fallback."""
    import sentencepiece as spm
    dst.mkdir(parents=True, exist_ok=True)
    txt = dst / "corpus.txt"
    txt.write_text("\n".join(corpus_lines()) + "\n", encoding="utf-8")
    prefix = dst / "sp"
    spm.SentencePieceTrainer.train(
        input=str(txt), model_prefix=str(prefix), model_type="bpe", vocab_size=VOCAB_SIZE,
        character_coverage=1.0, byte_fallback=True, split_digits=True,
        pad_id=0, eos_id=1, bos_id=2, unk_id=3,
        pad_piece="<pad>", eos_piece="<eos>", bos_piece="<bos>", unk_piece="<unk>",
        control_symbols=["<mask>"], user_defined_symbols=G3_SPECIALS_USER,
        add_dummy_prefix=False, remove_extra_whitespaces=False, normalization_rule_name="identity",
        num_threads=1, minloglevel=2,
    )
    os.replace(f"{prefix}.model", dst / "tokenizer.model")
    os.remove(f"{prefix}.vocab")
    txt.unlink()
    sp = spm.SentencePieceProcessor(model_file=str(dst / "tokenizer.model"))
    assert sp.vocab_size() == VOCAB_SIZE, sp.vocab_size()
    assert [sp.id_to_piece(i) for i in range(4)] == ["<pad>", "<eos>", "<bos>", "<unk>"]
    added = {}
    for i in range(sp.vocab_size()):
        p = sp.id_to_piece(i)
        if p in ("<pad>", "<eos>", "<bos>", "<unk>", "<mask>") or p in G3_SPECIALS_USER:
            added[str(i)] = {"content": p, "lstrip": False, "normalized": False, "rstrip": False,
                             "single_word": False, "special": True}
    tok_cfg = {
        "add_bos_token": True, "add_eos_token": False,
        "bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>", "unk_token": "<unk>",
        "added_tokens_decoder": added,
        "tokenizer_class": "GemmaTokenizer",
    }
    (dst / "tokenizer_config.json").write_text(json.dumps(tok_cfg, indent=2), encoding="utf-8")
    first_normal = max(int(k) for k in added) + 1
    n_byte = sum(1 for i in range(sp.vocab_size()) if sp.is_byte(i))
    return {"kind": "SentencePiece BPE (tokenizer.model)", "n_vocab": VOCAB_SIZE,
            "first_normal_id": first_normal, "bos": 2, "eos": 1, "pad": 0, "unk": 3,
            "n_byte_tokens": n_byte}


def train_bpe_merges(lines: list[str], base_alphabet: list[str], n_merges: int) -> list[tuple[str, str]]:
    """Tiny deterministic BPE trainer on '▁'-normalised lines (ties broken lexicographically)."""
    words = Counter()
    for ln in lines:
        norm = ln.replace(" ", "\u2581")
        # count units split at '▁' boundaries (merges never cross a '▁' that starts a word,
        # which keeps the vocabulary word-like; the tokenizer itself has no such restriction)
        parts = norm.split("\u2581")
        for j, p in enumerate(parts):
            w = ("\u2581" if j > 0 else "") + p
            if w:
                words[w] += 1
    alpha = set(base_alphabet)
    seqs = {w: [c for c in w] for w in words if all(c in alpha for c in w)}
    merges = []
    for _ in range(n_merges):
        pairs = Counter()
        for w, sym in seqs.items():
            f = words[w]
            for a, b in zip(sym, sym[1:]):
                pairs[(a, b)] += f
        if not pairs:
            break
        best = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        merges.append(best)
        a, b = best
        for w, sym in seqs.items():
            i, out = 0, []
            while i < len(sym):
                if i + 1 < len(sym) and sym[i] == a and sym[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(sym[i])
                    i += 1
            seqs[w] = out
    return merges


def build_gemma4_tokenizer(dst: Path) -> dict:
    """tokenizer.json in the layout of Gemma 4's (BPE, byte_fallback, ' '->'▁' normaliser)."""
    from tokenizers import Tokenizer
    dst.mkdir(parents=True, exist_ok=True)
    lines = corpus_lines()
    chars = sorted({c for ln in lines for c in ln.replace(" ", "\u2581")})
    vocab: dict[str, int] = {}
    for t in G4_SPECIALS:
        vocab[t] = len(vocab)
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for c in chars:
        if c not in vocab:
            vocab[c] = len(vocab)
    n_merges = VOCAB_SIZE - len(vocab)
    merges = train_bpe_merges(lines, chars, n_merges)
    for a, b in merges:
        t = a + b
        if t not in vocab:
            vocab[t] = len(vocab)
    # pad with unused tokens if the corpus ran out of merges
    i = 0
    while len(vocab) < VOCAB_SIZE:
        vocab[f"<unused{i}>"] = len(vocab)
        i += 1
    assert len(vocab) == VOCAB_SIZE
    added = [{"id": vocab[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for t in G4_SPECIALS]
    tj = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"},
        "pre_tokenizer": {"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithPrevious",
                          "invert": False},
        "post_processor": None,
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True,
                  "ignore_merges": False, "vocab": vocab, "merges": [[a, b] for a, b in merges]},
    }
    (dst / "tokenizer.json").write_text(json.dumps(tj, ensure_ascii=False, indent=1), encoding="utf-8")
    tok_cfg = {
        "add_bos_token": True, "add_eos_token": False,
        "bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>", "unk_token": "<unk>",
        "mask_token": "<mask>", "tokenizer_class": "GemmaTokenizer",
        "added_tokens_decoder": {str(a["id"]): {k: v for k, v in a.items() if k != "id"} for a in added},
    }
    (dst / "tokenizer_config.json").write_text(json.dumps(tok_cfg, indent=2), encoding="utf-8")
    # sanity: the tokenizers library accepts it and round-trips
    tk = Tokenizer.from_file(str(dst / "tokenizer.json"))
    s = "This License applies to any program \u00e9\u4e2d!"
    assert tk.decode(tk.encode(s).ids) == s, tk.decode(tk.encode(s).ids)
    return {"kind": "BPE tokenizer.json (byte_fallback, ' '->'\u2581')", "n_vocab": VOCAB_SIZE,
            "first_normal_id": len(G4_SPECIALS), "bos": 2, "eos": 1, "pad": 0, "unk": 3,
            "n_merges": len(merges), "n_byte_tokens": 256}


# ----------------------------------------------------------------------------------------------
# HF models
# ----------------------------------------------------------------------------------------------

def build_hf_model(name: str, spec: dict):
    import torch
    torch.manual_seed(spec["seed"])
    cfg_kw = dict(spec["config"])
    if spec["family"] == "llama":
        from transformers import LlamaConfig, LlamaForCausalLM
        config = LlamaConfig(**cfg_kw)
        config._attn_implementation = "eager"
        model = LlamaForCausalLM(config)
    elif spec["family"] == "qwen2":
        from transformers import Qwen2Config, Qwen2ForCausalLM
        config = Qwen2Config(**cfg_kw)
        config._attn_implementation = "eager"
        model = Qwen2ForCausalLM(config)
    elif spec["family"] == "gemma3":
        from transformers import Gemma3ForCausalLM, Gemma3TextConfig
        config = Gemma3TextConfig(**cfg_kw)
        config._attn_implementation = "eager"
        model = Gemma3ForCausalLM(config)
    else:
        from transformers import Gemma4ForCausalLM, Gemma4TextConfig
        if cfg_kw.get("num_global_key_value_heads") is None:
            cfg_kw.pop("num_global_key_value_heads", None)
        config = Gemma4TextConfig(**cfg_kw)
        config._attn_implementation = "eager"
        # the literal per-expert loop of Gemma4TextExperts.forward, not grouped_mm
        config._experts_implementation = "eager"
        model = Gemma4ForCausalLM(config)
    model = model.to(torch.float32).eval()
    randomize(model, spec)
    return model


def randomize(model, spec):
    """Overwrite every parameter and learned buffer with seeded random values (nothing stays 1/0)."""
    import torch
    g = torch.Generator().manual_seed(spec["seed"] * 7919)
    fam = spec["family"]
    H = spec["config"]["hidden_size"]

    def u(shape, lo, hi):
        return lo + (hi - lo) * torch.rand(shape, generator=g, dtype=torch.float32)

    def n(shape, std):
        return std * torch.randn(shape, generator=g, dtype=torch.float32)

    with torch.no_grad():
        named = list(model.named_parameters()) + [(k, b) for k, b in model.named_buffers()
                                                  if k.endswith("layer_scalar")]
        seen = set()
        for pname, p in named:
            if id(p) in seen:  # tied lm_head
                continue
            seen.add(id(p))
            if pname.endswith("layer_scalar"):
                v = u(p.shape, 0.4, 1.6)
            elif "norm" in pname and pname.endswith("weight"):
                # Gemma 3 RMSNorm multiplies by (1 + w); Gemma 4 by w
                v = u(p.shape, -0.5, 0.5) if fam == "gemma3" else u(p.shape, 0.5, 1.5)
            elif pname.endswith("router.scale") or pname.endswith("router.per_expert_scale"):
                v = u(p.shape, 0.5, 1.5)
            elif pname.endswith("router.proj.weight"):
                v = n(p.shape, 3.0)  # router logits std ~3: well separated top-k choices
            elif pname.endswith("embed_tokens.weight"):
                v = n(p.shape, 6.0 / H ** 0.5)  # tied: output logits std ~6, exercises softcap
            elif pname.endswith("embed_tokens_per_layer.weight"):
                v = n(p.shape, 0.25)
            elif pname.endswith("experts.gate_up_proj"):
                v = n(p.shape, 1.0 / p.shape[-1] ** 0.5)
            elif pname.endswith("experts.down_proj"):
                v = n(p.shape, 1.0 / p.shape[-1] ** 0.5)
            elif p.dim() == 2:
                v = n(p.shape, 1.0 / p.shape[1] ** 0.5)
            elif pname.endswith("proj.bias"):  # Qwen2 q/k/v biases
                v = n(p.shape, 0.5)
            else:
                raise RuntimeError(f"unhandled parameter {pname} {tuple(p.shape)}")
            p.copy_(v)


def hf_logits(model, tokens: list[int]):
    import torch
    with torch.no_grad():
        out = model(input_ids=torch.tensor([tokens], dtype=torch.long), use_cache=False)
    return out.logits[0].to(torch.float32).numpy().copy()


class GgmlGelu(object):
    """ggml's CPU GELU (GGML_GELU_FP16): input rounded to fp16, tanh-GELU from a fp16 table."""

    def __new__(cls):
        import torch

        class _M(torch.nn.Module):
            def forward(self, x):
                xf = x.to(torch.float16).to(x.dtype)
                y = torch.nn.functional.gelu(xf, approximate="tanh").to(torch.float16).to(x.dtype)
                y = torch.where(x >= 10, x, y)
                return torch.where(x <= -10, torch.zeros_like(x), y)
        return _M()


def hf_variant_logits(model, seqs, variant: str):
    """Diagnostics: the same HF model in float64, or with ggml's fp16-table GELU."""
    import copy
    import torch
    m = copy.deepcopy(model)
    if variant == "fp64":
        m = m.to(torch.float64)
    elif variant == "ggml_gelu":
        for mod in m.modules():
            if hasattr(mod, "act_fn"):
                mod.act_fn = GgmlGelu()
    else:
        raise ValueError(variant)
    out = []
    with torch.no_grad():
        for t in seqs:
            lg = m(input_ids=torch.tensor([t], dtype=torch.long), use_cache=False).logits[0]
            out.append(lg.to(torch.float64).numpy())
    return out


def sensitivity(model, spec, toks, ref) -> dict:
    """How much single small structural mistakes change the logits (longest sequence)."""
    import copy
    import torch
    fam = spec["family"]
    res = {}

    def run(mutate):
        m = copy.deepcopy(model)
        with torch.no_grad():
            mutate(m)
        return rel_max(hf_logits(m, toks), ref)

    if fam in ("llama", "qwen2"):
        res["layer 1 input_layernorm weight = 1"] = run(lambda m: m.model.layers[1].input_layernorm.weight.fill_(1.0))
        res["rope theta x 1.01"] = run(lambda m: setattr(m.model.rotary_emb, "inv_freq", m.model.rotary_emb.inv_freq / 1.01 ** (torch.arange(m.model.rotary_emb.inv_freq.numel()) * 2.0 / spec["config"]["head_dim"])))
        if fam == "qwen2":
            res["layer 0 k bias = 0"] = run(lambda m: m.model.layers[0].self_attn.k_proj.bias.zero_())
        return res
    lt = model.config.layer_types
    full = lt.index(F)

    def window(m):
        m.config.sliding_window = m.config.sliding_window + 1

    def qnorm(m):
        m.model.layers[full].self_attn.q_norm.weight.fill_(0.0 if fam == "gemma3" else 1.0)

    res["sliding_window + 1"] = run(window)
    res[f"layer {full} q_norm weight neutral"] = run(qnorm)
    if fam == "gemma4":
        res["layer 1 layer_scalar = 1"] = run(lambda m: m.model.layers[1].layer_scalar.fill_(1.0))
    return res


def rel_max(a, ref) -> float:
    return float(np.abs(np.asarray(a, np.float64) - ref).max() / np.abs(ref).max())


def router_min_gap(model, tokens: list[int]) -> float | None:
    """Smallest gap between the k-th and (k+1)-th router logit over all tokens and layers."""
    import torch
    if not getattr(model.config, "enable_moe_block", False):
        return None
    k = model.config.top_k_experts
    gaps = []

    def hook(mod, inp, out):
        hs = mod.norm(inp[0]) * mod.scale * mod.scalar_root_size
        lg = mod.proj(hs)
        top = torch.topk(lg, k + 1, dim=-1).values
        gaps.append((top[:, k - 1] - top[:, k]).min().item())

    hs = [layer.router.register_forward_hook(hook) for layer in model.model.layers]
    try:
        hf_logits(model, tokens)
    finally:
        for h in hs:
            h.remove()
    return min(gaps)


ROUTER_MIN_GAP = 0.01  # router logit units; logits have std ~3


def make_sequences(model, spec, tok_info) -> tuple[list[list[int]], list]:
    rng = np.random.default_rng(spec["seed"])
    lo, hi = tok_info["first_normal_id"], tok_info["n_vocab"]
    seqs, gaps = [], []
    for L in SEQ_LENGTHS:
        for attempt in range(500):
            toks = [tok_info["bos"]] + rng.integers(lo, hi, size=L - 1).tolist()
            gap = router_min_gap(model, toks)
            if gap is None or gap > ROUTER_MIN_GAP:
                break
        else:
            raise RuntimeError("could not find a token sequence without near-tied router choices")
        seqs.append(toks)
        gaps.append(gap)
    return seqs, gaps


# ----------------------------------------------------------------------------------------------
# conversion, GGUF inspection, llama.cpp check
# ----------------------------------------------------------------------------------------------

def convert(tree: Path, hf_dir: Path, out_file: Path) -> str:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree / "gguf-py") + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["NO_LOCAL_GGUF"] = ""
    cmd = [sys.executable, str(tree / "convert_hf_to_gguf.py"), str(hf_dir),
           "--outfile", str(out_file), "--outtype", "f32"]
    r = subprocess.run(cmd, env=env, cwd=str(tree), capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stdout + r.stderr)
        raise SystemExit(f"converter failed for {hf_dir}")
    return r.stdout + r.stderr


def gguf_summary(path: Path) -> dict:
    from gguf import GGUFReader, GGUFValueType
    rd = GGUFReader(str(path))
    meta = []
    for key, fld in rd.fields.items():
        if key.startswith("GGUF."):
            continue
        vt = fld.types[0] if fld.types else None
        if vt == GGUFValueType.ARRAY:
            sub = fld.types[1] if len(fld.types) > 1 else None
            nel = len(fld.data)
            if key.startswith("tokenizer.") and nel > 16:
                meta.append((key, f"array[{sub.name}] x {nel}", None))
                continue
            if sub == GGUFValueType.STRING:
                val = [bytes(fld.parts[i]).decode("utf-8", "replace") for i in fld.data]
            else:
                val = [fld.parts[i].tolist()[0] for i in fld.data]
            meta.append((key, f"array[{sub.name}]", val))
        elif vt == GGUFValueType.STRING:
            v = bytes(fld.parts[fld.data[0]]).decode("utf-8", "replace")
            if len(v) > 80:
                v = v[:77] + "..."
            meta.append((key, "STRING", v))
        else:
            v = fld.parts[fld.data[0]].tolist()[0]
            meta.append((key, vt.name if vt is not None else "?", v))
    tensors = [(t.name, [int(x) for x in t.shape], t.tensor_type.name, int(t.n_bytes)) for t in rd.tensors]
    return {"meta": meta, "tensors": tensors}


def llama_worker(gguf_path: str, seqs_json: str, out_npz: str, kv_f32: bool):
    """Runs in a child process: evaluate every sequence with llama-cpp-python, save all logits."""
    import llama_cpp
    seqs = json.loads(Path(seqs_json).read_text())
    kw = dict(type_k=llama_cpp.GGML_TYPE_F32, type_v=llama_cpp.GGML_TYPE_F32) if kv_f32 else {}
    llm = llama_cpp.Llama(model_path=gguf_path, logits_all=True, n_ctx=64, n_batch=64,
                          n_threads=2, verbose=False, **kw)
    arrs = {}
    for i, toks in enumerate(seqs):
        llm.reset()
        llm.eval(toks)
        arrs[f"s{i}"] = np.array(llm.scores[: len(toks)], dtype=np.float32)
    np.savez(out_npz, **arrs)


def llama_check(gguf_path: Path, seqs, refs, kv_f32: bool) -> list[dict] | str:
    work = Path(tempfile.mkdtemp(prefix="lumen_llama_check_"))
    try:
        (work / "seqs.json").write_text(json.dumps(seqs))
        r = subprocess.run([sys.executable, os.path.abspath(__file__), "--llama-worker", str(gguf_path),
                            str(work / "seqs.json"), str(work / "out.npz"), "1" if kv_f32 else "0"],
                           capture_output=True, text=True)
        if r.returncode != 0 or not (work / "out.npz").is_file():
            tail = [ln for ln in (r.stdout + r.stderr).splitlines() if "GGML_ASSERT" in ln or "error" in ln.lower()]
            return f"llama.cpp failed (rc {r.returncode}): " + " / ".join(tail[:3])
        got_all = np.load(work / "out.npz")
        gots = [got_all[f"s{i}"] for i in range(len(seqs))]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    res = []
    for toks, ref, got in zip(seqs, refs, gots):
        d = np.abs(got - ref)
        res.append({
            "n_tok": len(toks),
            "rel_max": float(d.max() / np.abs(ref).max()),
            "abs_max": float(d.max()),
            "ref_absmax": float(np.abs(ref).max()),
            "argmax_agree": float(np.mean(got.argmax(-1) == ref.argmax(-1))),
            "logits": got,
        })
    return res


def write_logits(path: Path, n_vocab: int, seqs, logits):
    with open(path, "wb") as f:
        f.write(b"LMLG")
        f.write(struct.pack("<III", 1, n_vocab, len(seqs)))
        for toks, lg in zip(seqs, logits):
            assert lg.shape == (len(toks), n_vocab), lg.shape
            f.write(struct.pack("<I", len(toks)))
            f.write(np.asarray(toks, dtype="<i4").tobytes())
            f.write(np.ascontiguousarray(lg, dtype="<f4").tobytes())


def read_logits(path: Path):
    b = path.read_bytes()
    assert b[:4] == b"LMLG"
    ver, nv, ns = struct.unpack_from("<III", b, 4)
    off, out = 16, []
    for _ in range(ns):
        (nt,) = struct.unpack_from("<I", b, off)
        off += 4
        toks = np.frombuffer(b, "<i4", nt, off).tolist()
        off += 4 * nt
        lg = np.frombuffer(b, "<f4", nt * nv, off).reshape(nt, nv)
        off += 4 * nt * nv
        out.append((toks, lg))
    assert off == len(b)
    return ver, nv, out


# ----------------------------------------------------------------------------------------------
# README
# ----------------------------------------------------------------------------------------------

def md_config_table(name, spec, cfg_saved) -> str:
    c = spec["config"]
    fam = spec["family"]
    lt = cfg_saved.get("layer_types") or []
    if fam in ("llama", "qwen2"):
        rows = [("class", "LlamaForCausalLM" if fam == "llama" else "Qwen2ForCausalLM"), ("seed", spec["seed"])]
        rows += [(k, v) for k, v in c.items() if k not in ("pad_token_id", "eos_token_id", "bos_token_id")]
        out = [f"| {k} | {v} |" for k, v in rows]
        return "\n".join(["| setting | value |", "|---|---|"] + out)
    rows = [("class", "Gemma3ForCausalLM" if fam == "gemma3" else "Gemma4ForCausalLM"),
            ("seed", spec["seed"]),
            ("vocab_size", c["vocab_size"]), ("hidden_size", c["hidden_size"]),
            ("intermediate_size", c["intermediate_size"]), ("num_hidden_layers", c["num_hidden_layers"]),
            ("layer_types", "".join("F" if t == F else "S" for t in lt)),
            ("num_attention_heads", c["num_attention_heads"]),
            ("num_key_value_heads", c["num_key_value_heads"]), ("head_dim", c["head_dim"]),
            ("sliding_window", c["sliding_window"])]
    if fam == "gemma3":
        rows += [("query_pre_attn_scalar", c["query_pre_attn_scalar"]),
                 ("rope_theta (global) / rope_local_base_freq", f'{c["rope_theta"]:g} / {c["rope_local_base_freq"]:g}'),
                 ("final / attn logit softcap", "none / none")]
    else:
        rows += [("global_head_dim", c["global_head_dim"]),
                 ("num_global_key_value_heads", c["num_global_key_value_heads"] if c.get("num_global_key_value_heads") else "null (= num_key_value_heads)"),
                 ("attention_k_eq_v", c["attention_k_eq_v"]),
                 ("rope sliding", "default, theta 1e4"),
                 ("rope full", "proportional, theta 1e6, partial_rotary_factor 0.25"),
                 ("final_logit_softcapping", c["final_logit_softcapping"]),
                 ("enable_moe_block", c["enable_moe_block"])]
        if c["enable_moe_block"]:
            rows += [("num_experts / top_k_experts / moe_intermediate_size",
                      f'{c["num_experts"]} / {c["top_k_experts"]} / {c["moe_intermediate_size"]}')]
        rows += [("hidden_size_per_layer_input (PLE)", c["hidden_size_per_layer_input"]),
                 ("num_kv_shared_layers", c["num_kv_shared_layers"]),
                 ("use_double_wide_mlp", c["use_double_wide_mlp"])]
    rows += [("rms_norm_eps", c["rms_norm_eps"]), ("tie_word_embeddings", True)]
    s = "| key | value |\n|---|---|\n" + "".join(f"| {k} | {v} |\n" for k, v in rows)
    return s


def md_gguf(summary) -> str:
    s = "Metadata (tokenizer arrays abbreviated):\n\n| key | type | value |\n|---|---|---|\n"
    for k, t, v in summary["meta"]:
        vs = "" if v is None else json.dumps(v, ensure_ascii=False)
        s += f"| `{k}` | {t} | {vs.replace('|', chr(92) + '|')} |\n"
    s += "\nTensors (shape in GGUF order, fastest dimension first):\n\n| name | shape | type |\n|---|---|---|\n"
    for nm, shp, ty, _ in summary["tensors"]:
        s += f"| `{nm}` | {shp} | {ty} |\n"
    return s


LOADER_NOTES = """## What the converter produced (notes for the lumen GGUF loader)

* **Tensor names.** Per layer: `attn_norm`, `attn_q`, `attn_k`, `attn_v`, `attn_q_norm`,
  `attn_k_norm`, `attn_output`, `post_attention_norm`, `ffn_norm` (pre-FFN norm), `ffn_gate`,
  `ffn_up`, `ffn_down`, `post_ffw_norm`; Gemma 4 adds `layer_output_scale.weight` (F32, shape [1] =
  HF `layer_scalar`, multiplies the whole residual after the layer). Global: `token_embd` (tied, no
  `output.weight`), `output_norm`, Gemma 4 `rope_freqs.weight`. There is no v_norm tensor (it has no
  weight).
* **K = V (attention_k_eq_v).** Full-attention layers simply have **no `blk.N.attn_v.weight`**; V is
  `RMSNorm_noweight(raw K projection)`. Sliding layers keep `attn_v`. `attn_k_norm`/`attn_q_norm`
  have the layer's head dim (32 sliding, 64 full).
* **Per-layer shapes.** `gemma4.attention.key_length`/`value_length` = full-layer head dim (64);
  `key_length_swa`/`value_length_swa` = sliding head dim (32). `gemma4.attention.head_count_kv` is an
  INT32 array per layer when sliding and full kv-head counts differ (dense, MoE) and a plain UINT32
  when they are equal (gemma4_e). `gemma4.attention.sliding_window_pattern` is a BOOL array (true =
  sliding). `gemma4.feed_forward_length` is an INT32 array when use_double_wide_mlp is set (gemma4_e:
  64 x5 then 128 x5), else a UINT32.
* **RoPE.** `gemma4.rope.dimension_count` = full head dim (64), `rope.dimension_count_swa` = 32,
  `rope.freq_base` = 1e6 (full), `rope.freq_base_swa` = 1e4. Proportional RoPE is encoded only by the
  single global `rope_freqs.weight` (F32, [global_head_dim/2] = [32]): 8 x 1.0 then 24 x 1e30
  (`n_rot = global_head_dim * 0.25 / 2 = 8` frequency slots rotate, exponent denominator = 64);
  llama.cpp divides each slot's angle by that factor, NEOX (half-split) pairing. It applies to full
  layers only. Gemma 3 GGUFs have no rope_freqs, no rope.dimension_count (= head_dim) and no
  scaling keys here.
* **Gemma 3 layer pattern.** The gemma3 GGUF has **no `sliding_window_pattern` key**; llama.cpp then
  uses period 6 (layer l is sliding iff l % 6 < 5), matching HF's default `sliding_window_pattern` 6
  (gemma3_tiny: layer 5 global, layer 6 sliding again). Gemma 3 norm weights in the GGUF already
  include the +1; attention scale is 1/sqrt(key_length) (query_pre_attn_scalar = head_dim here).
* **MoE (gemma4_moe).** Router: `ffn_gate_inp.weight` [64, 8] (HF `router.proj`) and
  `ffn_gate_inp.scale` [64] (HF `router.scale`); `ffn_down_exps.scale` [8] = HF
  `router.per_expert_scale` (llama.cpp scales each expert's output; equivalent to scaling its routing
  weight). Experts are **fused**: `ffn_gate_up_exps.weight` GGUF shape [64, 64, 8] = HF
  `experts.gate_up_proj` [E=8][2*I=64][H=64] byte-for-byte (rows 0..31 of each expert = gate,
  32..63 = up), `ffn_down_exps.weight` [32, 64, 8] = HF `experts.down_proj` [8][64][32]. Extra
  norms: `pre_ffw_norm_2` (before experts), `post_ffw_norm_1` (after dense MLP), `post_ffw_norm_2`
  (after experts); `post_ffw_norm` is applied to their sum. Keys `gemma4.expert_count` 8,
  `expert_used_count` 2, `expert_feed_forward_length` 32; `feed_forward_length` 64 is the dense MLP.
* **PLE (gemma4_e).** Global: `per_layer_token_embd.weight` [160, 512] (= [L*P] per token; HF
  `embed_tokens_per_layer`), `per_layer_model_proj.weight` [64, 160], `per_layer_proj_norm.weight`
  [16]. Per layer: `inp_gate.weight` [64, 16] (HF `per_layer_input_gate`, H -> P), `proj.weight`
  [16, 64] (HF `per_layer_projection`, P -> H), `post_norm.weight` [64] (HF
  `post_per_layer_input_norm`). Key `gemma4.embedding_length_per_layer_input` = 16 (0 in the other
  gemma4 files).
* **KV sharing (gemma4_e).** `gemma4.attention.shared_kv_layers` = 5: layers 5-9 have no `attn_k`,
  `attn_v`, `attn_k_norm`. HF's donor rule is "last non-shared layer of the same type" (here 3 for
  sliding, 4 for full). llama.cpp instead hard-codes donor = `n_layer - n_shared - 2` for sliding
  and `- 1` for full (`llama-model.cpp`), which only agrees when the last non-shared layer is full
  and the one before it sliding (true for real E2B/E4B and for this fixture). A first version of
  this fixture with shared layers starting after a sliding layer made llama.cpp abort with
  `GGML_ASSERT(map_layer_ids.find(il_reuse) != map_layer_ids.end())`; lumen should implement HF's
  rule.
* **HF config quirk (transformers 5.23).** `global_head_dim` and `num_global_key_value_heads` are
  constructor arguments but are *not* written to `config.json`: they become `per_layer_config`
  (`{"2": {"head_dim": 64, "num_key_value_heads": 1}, ...}` for every full layer; with
  attention_k_eq_v false only `head_dim` is overridden, so full layers keep `num_key_value_heads`).
  The converter reads either form. The `<name>.config.json` files are exactly what
  `save_pretrained` wrote.
* **Tokenizer metadata.** gemma3: `tokenizer.ggml.model` = `llama` (SPM), pre `default`; gemma4:
  model `gemma4` (BPE with merges, SPM-style byte tokens `<0xXX>`), no `tokenizer.ggml.pre` key,
  `add_bos_token` true, plus bos/eos/unk/pad/mask ids. The converter marks `<|channel>`,
  `<channel|>`, `<|tool_call>`, `<tool_call|>`, `<|tool_response>`, `<tool_response|>`, `<|"|>` as
  USER_DEFINED (token type 4) so they render; the other special tokens are CONTROL (3).
"""


def write_readme(out: Path, results: dict, versions: dict, tok_infos: dict):
    L = []
    L.append("# HF golden-logit fixtures (tiny random Gemma 3 / Gemma 4 models)\n")
    L.append("Generated by `tools/gen_hf_fixtures.py` (run by hand, not in CI):\n")
    L.append("    /root/.cache/lumen/venv/bin/python tools/gen_hf_fixtures.py --out tests/fixtures/hf\n")
    L.append("## Files\n")
    L.append("| model | `.gguf` bytes | `.logits` bytes | `.config.json` bytes |\n|---|---|---|---|")
    total = 0
    for name in results:
        sz = [(out / f"{name}{ext}").stat().st_size for ext in (".gguf", ".logits", ".config.json")]
        total += sum(sz)
        L.append(f"| {name} | {sz[0]} | {sz[1]} | {sz[2]} |")
    L.append(f"\nTotal (without this README): {total} bytes.\n")
    L.append("## Logits file format (little-endian)\n")
    L.append("    char[4] \"LMLG\"; u32 version = 1; u32 n_vocab; u32 n_seq;\n"
             "    n_seq times: u32 n_tok; i32 tokens[n_tok]; f32 logits[n_tok][n_vocab]\n")
    L.append("`logits[t]` is HF's output at position t (prediction of token t+1), after the final "
             "softcap where the model has one. Every model has 3 sequences of lengths "
             f"{', '.join(map(str, SEQ_LENGTHS))}; token 0 is BOS (id 2), the others are uniform random "
             "ids drawn from the non-special part of the vocabulary (seeded). Sequences are longer than "
             "the sliding window (8), so windowed attention is exercised. For gemma4_moe each "
             "sequence was re-drawn until the gap between the k-th and (k+1)-th router logit was > "
             f"{ROUTER_MIN_GAP} "
             "for every token and layer, so expert selection is not a near-tie (values below).\n")
    L.append("## How they were produced\n")
    L.append("* Models: built with HF transformers from the configs below, float32, "
             "`attn_implementation=\"eager\"` (and `experts_implementation=\"eager\"`, the literal per-expert loop, for the MoE), `model.eval()`, `torch.no_grad()`, `use_cache=False`.")
    L.append("* Weights: every parameter re-drawn from a seeded generator: linear weights N(0, 1/fan_in); "
             "tied embedding N(0, (6/sqrt(H))^2) so logits have std ~6 (exercises the softcap); norm "
             "weights U(0.5, 1.5) for Gemma 4 (multiplier) and U(-0.5, 0.5) for Gemma 3 (HF uses 1+w; "
             "the GGUF stores 1+w); `layer_scalar` U(0.4, 1.6); router `scale` and `per_expert_scale` "
             "U(0.5, 1.5); router `proj` N(0, 9); experts N(0, 1/fan_in); PLE table N(0, 1/16).")
    L.append("* Hidden size 64 and PLE width 16 were chosen because HF multiplies embeddings by "
             "sqrt(H) (and sqrt(P)) cast to the weight dtype (bf16 in real checkpoints) while llama.cpp "
             "uses the exact float value: sqrt(64) = 8 and sqrt(16) = 4 are exact in every dtype, as are "
             "H^-0.5 = 1/8 (router and PLE projection scales), so there is no embed-scale ambiguity.")
    L.append("* Tokenizers: Gemma 3 - SentencePiece BPE model (512 pieces, byte fallback, "
             "<pad>/<eos>/<bos>/<unk> = 0/1/2/3, <mask> control, <start_of_turn>/<end_of_turn> "
             "user-defined and marked special) trained on /usr/share/common-licenses/GPL-3. Gemma 4 - "
             "tokenizer.json BPE with byte_fallback and the ' '->'\u2581' normaliser (Gemma 4 layout) with "
             f"ids 0..{len(G4_SPECIALS) - 1} = {', '.join(G4_SPECIALS)}, then 256 `<0xXX>` byte tokens, "
             "then characters and merges learned from the same text by a deterministic trainer. The "
             "tokenizers only exist so the converter and llama.cpp accept the files; they are embedded "
             "in the GGUFs and can be used for tokenizer smoke tests, but are not the real Gemma vocab.")
    L.append("* Conversion: `convert_hf_to_gguf.py --outtype f32` from the llama.cpp tree vendored in the "
             f"llama-cpp-python {LLAMA_CPP_PYTHON_VERSION} sdist (`pip download --no-deps --no-binary :all:`), "
             "run with that tree's `gguf-py` on PYTHONPATH. The converter was not modified and no "
             "config was patched for it.")
    L.append("* llama.cpp check: `llama_cpp.Llama(model_path, logits_all=True, n_ctx=64, n_threads=2)`, "
             "`eval(tokens)`, all positions compared with HF.\n")
    L.append("Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".\n")
    L.append("## Accuracy numbers (informational)\n")
    L.append("All numbers are max|a - b| / max|b| over every position of a sequence (b = the committed "
             "HF float32 logits unless stated otherwise).\n")
    L.append("* **HF fp32 vs fp64**: the same HF model run in float64 - HF's own float32 rounding error, "
             "i.e. the best agreement an exact float32 implementation can expect.")
    L.append("* **llama.cpp f16 KV / f32 KV**: the converted GGUF (F32 weights) in llama.cpp with its "
             "default F16 KV cache (as requested) and with `type_k = type_v = GGML_TYPE_F32`.")
    L.append("* **llama.cpp vs HF+ggml GELU**: llama.cpp (f32 KV) against HF with its GELU replaced by "
             "ggml's CPU GELU (`GGML_GELU_FP16`: input rounded to fp16, result read from a fp16 table). "
             "This explains most of the llama.cpp-vs-HF difference; the rest is the same fp16 "
             "rounding flipping differently once upstream values differ slightly. **HF vs HF+ggml GELU** "
             "shows how sensitive each model is to that perturbation (gemma4_e most: PLE gates and "
             "KV-shared layers amplify it).\n")
    L.append("| model | seq len | HF fp32 vs fp64 | llama.cpp f16 KV | llama.cpp f32 KV | "
             "llama.cpp vs HF+ggml GELU | HF vs HF+ggml GELU | max abs logit | argmax agree (llama.cpp) "
             "|\n|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        ll, l32 = r.get("llama"), r.get("llama_f32kv")
        for i, toks in enumerate(r["seqs"]):
            row = [name, str(len(toks)), f"{r['hf_fp64'][i]:.1e}"]
            row.append(ll if isinstance(ll, str) else (f"{ll[i]['rel_max']:.1e}" if ll else "-"))
            row.append(l32 if isinstance(l32, str) else (f"{l32[i]['rel_max']:.1e}" if l32 else "-"))
            row.append(f"{r['llama_vs_ggml_gelu'][i]:.1e}" if "llama_vs_ggml_gelu" in r else "-")
            row.append(f"{r['hf_vs_ggml_gelu'][i]:.1e}" if "hf_vs_ggml_gelu" in r else "-")
            row.append(f"{float(np.abs(r['logits'][i]).max()):.2f}")
            row.append(f"{ll[i]['argmax_agree']:.3f}" if isinstance(ll, list) else "-")
            L.append("| " + " | ".join(row) + " |")
    L.append("")
    L.append("Sensitivity (HF, longest sequence): relative change of the logits caused by single small "
             "structural mistakes:\n")
    L.append("| model | mistake | rel max change |\n|---|---|---|")
    for name, r in results.items():
        for k, v in r["sensitivity"].items():
            L.append(f"| {name} | {k} | {v:.1e} |")
    L.append("")
    L.append("Verdict: llama.cpp reproduces HF on all four models to the precision its fp16 GELU "
             "table allows; single structural mistakes change the logits by several percent up to "
             "order 1 (table above), far above these differences. Suggested lumen tolerance for an fp32 "
             "path against these fixtures: ~1e-4 relative (HF's own fp32-vs-fp64 error is <= 1e-5); "
             "with fp16/bf16 intermediates expect numbers like the llama.cpp columns (up to ~1e-2 on "
             "gemma4_e).\n")
    for name, r in results.items():
        if r.get("gaps") and r["gaps"][0] is not None:
            L.append(f"{name}: smallest gap between the k-th and (k+1)-th router logit over all tokens "
                     f"and layers, per sequence: {', '.join(f'{x:.4f}' for x in r['gaps'])} "
                     f"(sequences are re-drawn until it is > {ROUTER_MIN_GAP}; router logits have std ~3).\n")
    L.append(LOADER_NOTES)
    for name, r in results.items():
        spec = MODELS[name]
        L.append(f"## {name}\n")
        L.append(spec["features"] + "\n")
        L.append(md_config_table(name, spec, r["config"]))
        L.append(md_gguf(r["gguf"]))
    (out / "README.md").write_text("\n".join(L) + "\n", encoding="utf-8")


# ----------------------------------------------------------------------------------------------

def main():
    if len(sys.argv) == 6 and sys.argv[1] == "--llama-worker":
        llama_worker(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5] == "1")
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--llama-cpp-dir", default=None,
                    help="extracted llama.cpp tree (skips the sdist download)")
    ap.add_argument("--keep-tmp", action="store_true")
    ap.add_argument("--no-llama-check", action="store_true")
    ap.add_argument("--only", nargs="*", default=None, help="subset of model names")
    args = ap.parse_args()

    t0 = time.time()
    import torch
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    import transformers
    transformers.logging.set_verbosity_error()

    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="lumen_hf_fixtures_"))
    try:
        tree = obtain_llama_cpp(tmp, args.llama_cpp_dir)
        sys.path.insert(0, str(tree / "gguf-py"))  # read GGUFs with the converter's gguf-py
        log(f"[tree] {tree}")

        tok_dirs = {"gemma3": tmp / "tok_gemma3", "gemma4": tmp / "tok_gemma4"}
        tok_infos = {"gemma3": build_gemma3_tokenizer(tok_dirs["gemma3"]),
                     "gemma4": build_gemma4_tokenizer(tok_dirs["gemma4"])}

        results = {}
        names = args.only or list(MODELS)
        for name in names:
            spec = MODELS[name]
            fam = spec["family"]
            log(f"[{name}] building HF model")
            model = build_hf_model(name, spec)
            hf_dir = tmp / "hf" / name  # the converter derives general.name from the dir name
            model.save_pretrained(hf_dir, safe_serialization=True)
            tok_fam = TOKENIZER_OF.get(fam, fam)
            for fn in os.listdir(tok_dirs[tok_fam]):
                shutil.copy(tok_dirs[tok_fam] / fn, hf_dir / fn)
            shutil.copy(hf_dir / "config.json", out / f"{name}.config.json")
            cfg_saved = json.loads((hf_dir / "config.json").read_text())

            # reload from disk: the fixture must describe the checkpoint the converter saw
            from transformers import AutoModelForCausalLM
            extra = {"experts_implementation": "eager"} if fam == "gemma4" else {}
            model2 = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32,
                                                          attn_implementation="eager", **extra).eval()
            for mm in (model, model2):
                assert mm.config._attn_implementation == "eager"
                if spec["config"].get("enable_moe_block"):
                    assert mm.config._experts_implementation == "eager", mm.config._experts_implementation
            sd1, sd2 = model.state_dict(), model2.state_dict()
            for k, v in sd1.items():
                assert torch.equal(v, sd2[k]), f"reload mismatch for {k}"

            tok_info = tok_infos[tok_fam]
            seqs, gaps = make_sequences(model, spec, tok_info)
            if gaps[0] is not None:
                log(f"[{name}] min router top-k gap per sequence: {[round(x, 4) for x in gaps]}")
            logits = [hf_logits(model, s) for s in seqs]
            logits2 = [hf_logits(model2, s) for s in seqs]
            # identical weights; only float summation order may differ (seen in the MoE, ~1e-5)
            reload_diff = max(float(np.abs(a - b).max() / np.abs(a).max()) for a, b in zip(logits, logits2))
            log(f"[{name}] HF in-memory vs reloaded checkpoint: rel max diff {reload_diff:.2e}")
            assert reload_diff < 1e-5, "reloaded model gives different logits"
            write_logits(out / f"{name}.logits", spec["config"]["vocab_size"], seqs, logits)
            ver, nv, back = read_logits(out / f"{name}.logits")
            assert ver == 1 and nv == spec["config"]["vocab_size"] and len(back) == len(seqs)

            log(f"[{name}] converting")
            conv_log = convert(tree, hf_dir, out / f"{name}.gguf")
            summ = gguf_summary(out / f"{name}.gguf")
            r = {"config": cfg_saved, "gguf": summ, "conv_log": conv_log, "seqs": seqs, "gaps": gaps,
                 "logits": logits}
            # HF's own float32 error: fp32 vs fp64 forward of the same weights
            l64 = hf_variant_logits(model, seqs, "fp64")
            r["hf_fp64"] = [rel_max(a, b) for a, b in zip(logits, l64)]
            log(f"[{name}] HF fp32 vs HF fp64: rel max {[f'{x:.1e}' for x in r['hf_fp64']]}")
            r["sensitivity"] = sensitivity(model, spec, seqs[-1], logits[-1])
            log(f"[{name}] sensitivity: " + ", ".join(f"{k}: {v:.1e}" for k, v in r["sensitivity"].items()))
            if not args.no_llama_check:
                r["llama"] = llama_check(out / f"{name}.gguf", seqs, logits, kv_f32=False)
                r["llama_f32kv"] = llama_check(out / f"{name}.gguf", seqs, logits, kv_f32=True)
                for kv in ("llama", "llama_f32kv"):
                    if isinstance(r[kv], str):
                        log(f"[{name}] {r[kv]}")
                        continue
                    for c in r[kv]:
                        log(f"[{name}] llama.cpp ({'f32' if kv.endswith('f32kv') else 'f16'} KV) vs HF, "
                        f"n_tok {c['n_tok']:3d}: rel max {c['rel_max']:.3e} "
                        f"(abs {c['abs_max']:.3e}, max|ref| {c['ref_absmax']:.2f}, "
                        f"argmax agree {c['argmax_agree']:.3f})")
                if not isinstance(r["llama_f32kv"], str) and fam.startswith("gemma"):
                    lg = hf_variant_logits(model, seqs, "ggml_gelu")
                    r["llama_vs_ggml_gelu"] = [rel_max(c["logits"], b) for c, b in zip(r["llama_f32kv"], lg)]
                    r["hf_vs_ggml_gelu"] = [rel_max(a, b) for a, b in zip(lg, logits)]
                    log(f"[{name}] llama.cpp (f32 KV) vs HF with ggml's fp16 GELU table: rel max "
                        f"{[f'{x:.1e}' for x in r['llama_vs_ggml_gelu']]}; HF vs HF with that GELU: "
                        f"{[f'{x:.1e}' for x in r['hf_vs_ggml_gelu']]}")
            results[name] = r
            del model, model2

        import llama_cpp
        import safetensors
        import sentencepiece
        import tokenizers
        versions = {"python": sys.version.split()[0], "torch": torch.__version__,
                    "transformers": transformers.__version__, "numpy": np.__version__,
                    "sentencepiece": sentencepiece.__version__, "tokenizers": tokenizers.__version__,
                    "safetensors": safetensors.__version__,
                    "llama-cpp-python (converter tree and runtime)": llama_cpp.__version__}
        if args.only is None:
            write_readme(out, results, versions, tok_infos)

        log("\n[files]")
        total = 0
        for name in results:
            for ext in (".gguf", ".logits", ".config.json"):
                p = out / f"{name}{ext}"
                total += p.stat().st_size
                log(f"  {p.name:28s} {p.stat().st_size:10d}")
                if ext == ".gguf":
                    assert p.stat().st_size < 3_000_000, f"{p} too large"
        log(f"  total {total} bytes")
        assert total < 12_000_000
        log(f"[done] {time.time() - t0:.1f} s")
    finally:
        if args.keep_tmp:
            log(f"[tmp kept] {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
