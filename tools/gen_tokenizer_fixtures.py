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
  chat_gemma3.txt     conversations and their reference renderings: Gemma 3 = "<bos>" + llama.cpp's
  chat_gemma4.txt     built-in "gemma" template; Gemma 4 = llama.cpp's Gemma 4 Jinja template
                      (models/templates/google-gemma-4-31B-it-interleaved.jinja) rendered by jinja2

File format (trivial to parse in C), a sequence of records:
  "S <len>\\n" followed by <len> raw bytes and "\\n"          a byte string
  "<TAG> <int> <int> ...\\n"                                   anything else, TAG one letter
Records per file:
  corpus.txt:   N <count>, then <count> S records
  *_ids.txt:    H <n_tokens> <bos> <eos>; then per corpus string: I <n> ids (parse_special=false),
                I <n> ids (parse_special=true), both with add_bos=true
  *_pieces.txt: H <n_tokens> <bos> <eos>; E <n> <eog ids...>; then P <id> S(piece) S(piece special)
                per sampled id; then per sequence I <n> ids, S(text), S(text special)
  chat_*.txt:   per conversation: C <n_msgs> <add_generation_prompt> <enable_thinking>, then
                S(role) S(content) per message, then S(expected rendering)
The Gemma 3 files need the real model (tools/fetch_model.sh); without it they are left as they are.
"""
import argparse
import ctypes
import json
import os
import random
import sys

import gguf
import jinja2
import llama_cpp
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "tokenizer")
DEFAULT_MODEL = os.path.expanduser("~/.cache/lumen/models/gemma-3-270m-q4_k_m.gguf")


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
