#!/usr/bin/env python3
"""
gen_unicode_tables.py — writes engine/unicode_tables.h, the code point classes lumen's GPT-2 style
pre-tokenizers (engine/tokenizer.c) test: \\p{L}, \\p{N}, \\p{P} and \\s as llama.cpp defines them.

    /root/.cache/lumen/venv/bin/python tools/gen_unicode_tables.py [--check LLAMA_CPP/src/unicode-data.cpp]

llama.cpp classifies code points with its own table (src/unicode-data.cpp, made by
scripts/gen-unicode-data.py from UnicodeData.txt): one category flag per code point from the
general category (L*, N*, Z*, M*, P*, S*, C* except Cn, and Cn = undefined), and a separate
whitespace set (the White_Space property). Its current table is Unicode 15.1; Python 3.11's
unicodedata is 14.0, so this script takes the categories from the unicodedata2 package pinned to
15.1.0 (pip install unicodedata2==15.1.0), which reproduces llama.cpp's table exactly. With --check
it compares the result against llama.cpp's unicode-data.cpp and fails on any difference.

Whitespace is White_Space: Python's str.isspace() minus U+001C..U+001F (which isspace() counts as
separators and White_Space does not); the result is checked against the list in llama.cpp.

The header holds:
  LM_UCD_* class values: the category in the low 3 bits, LM_UCD_SPACE for whitespace;
  lm_ucd_ascii[128]    the class of each ASCII code point;
  lm_ucd_ranges[]      sorted (start << 4 | class) entries: the class holds from start up to the next
                       entry's start (the last runs to U+10FFFF); looked up by binary search.
The output is deterministic (no timestamps).
"""
import argparse
import os
import re
import sys

UNICODE_VERSION = "15.1.0"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "engine", "unicode_tables.h")
MAX_CP = 0x110000

# class values (low 3 bits: category); must match the enum written below
UNDEF, NUMBER, LETTER, SEPARATOR, MARK, PUNCT, SYMBOL, CONTROL = range(8)
SPACE = 8
CATEGORY = {
    "Cn": UNDEF,
    "Cc": CONTROL, "Cf": CONTROL, "Co": CONTROL, "Cs": CONTROL,
    "Ll": LETTER, "Lm": LETTER, "Lo": LETTER, "Lt": LETTER, "Lu": LETTER,
    "Mc": MARK, "Me": MARK, "Mn": MARK,
    "Nd": NUMBER, "Nl": NUMBER, "No": NUMBER,
    "Pc": PUNCT, "Pd": PUNCT, "Pe": PUNCT, "Pf": PUNCT, "Pi": PUNCT, "Po": PUNCT, "Ps": PUNCT,
    "Sc": SYMBOL, "Sk": SYMBOL, "Sm": SYMBOL, "So": SYMBOL,
    "Zl": SEPARATOR, "Zp": SEPARATOR, "Zs": SEPARATOR,
}
# llama.cpp's unicode_set_whitespace (the White_Space property)
WHITE_SPACE = [0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680] + list(range(0x2000, 0x200B)) + \
              [0x2028, 0x2029, 0x202F, 0x205F, 0x3000]
# llama.cpp's flag bits per category (unicode.h), for --check
LLAMA_FLAG = {UNDEF: 0x01, NUMBER: 0x02, LETTER: 0x04, SEPARATOR: 0x08, MARK: 0x10, PUNCT: 0x20,
              SYMBOL: 0x40, CONTROL: 0x80}


def classes():
    try:
        import unicodedata2 as ud
    except ImportError:
        sys.exit("gen_unicode_tables: needs unicodedata2 %s (pip install unicodedata2==%s)" % (UNICODE_VERSION, UNICODE_VERSION))
    if ud.unidata_version != UNICODE_VERSION:
        sys.exit("gen_unicode_tables: unicodedata2 has Unicode %s, llama.cpp's tables are %s" % (ud.unidata_version, UNICODE_VERSION))
    cls = [CATEGORY[ud.category(chr(c))] for c in range(MAX_CP)]
    ws = [c for c in range(MAX_CP) if chr(c).isspace() and not 0x1C <= c <= 0x1F]
    if ws != WHITE_SPACE:
        sys.exit("gen_unicode_tables: whitespace set differs from llama.cpp's: %s" % [hex(c) for c in ws])
    for c in ws:
        cls[c] |= SPACE
    # the Qwen2 / Llama 3 contractions compare unicode_tolower(c) with ASCII letters: make sure
    # no code point outside ASCII lowercases to one of them (then an ASCII fold is exact)
    for c in range(0x80, MAX_CP):
        low = chr(c).lower()
        if low and low[0] in "stmdrevl":
            sys.exit("gen_unicode_tables: U+%04X lowercases to '%s'" % (c, low[0]))
    return cls


def check(cls, path):
    src = open(path, encoding="utf-8").read()
    m = re.search(r"unicode_ranges_flags = \{(.*?)\};", src, re.S)
    ranges = [(int(a, 16), int(b, 16)) for a, b in re.findall(r"\{0x([0-9A-Fa-f]+), 0x([0-9A-Fa-f]+)\}", m.group(1))]
    m = re.search(r"unicode_set_whitespace = \{(.*?)\};", src, re.S)
    ws = sorted(int(x, 16) for x in re.findall(r"0x([0-9A-Fa-f]+)", m.group(1)))
    bad = 0
    for (start, flags), (end, _) in zip(ranges, ranges[1:]):
        for c in range(start, end):
            if LLAMA_FLAG[cls[c] & 7] != flags:
                bad += 1
    if ws != WHITE_SPACE or [c for c in range(MAX_CP) if cls[c] & SPACE] != ws:
        bad += 1
    if bad:
        sys.exit("gen_unicode_tables: %d code points differ from %s" % (bad, path))
    print("matches", path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--check", metavar="UNICODE_DATA_CPP", help="llama.cpp's src/unicode-data.cpp to compare with")
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args()
    cls = classes()
    if args.check:
        check(cls, args.check)

    ranges = [(0x80, cls[0x80])]
    for c in range(0x81, MAX_CP):
        if cls[c] != ranges[-1][1]:
            ranges.append((c, cls[c]))
    lines = []
    add = lines.append
    add("/*")
    add(" * unicode_tables.h — code point classes for the GPT-2 style pre-tokenizers (engine/tokenizer.c).")
    add(" * Generated by tools/gen_unicode_tables.py from Unicode %s (the unicodedata2 package); do not edit." % UNICODE_VERSION)
    add(" * The classes are llama.cpp's (src/unicode-data.cpp): the general category folded to one of eight")
    add(" * values, plus LM_UCD_SPACE for the White_Space property. lm_ucd_ranges holds start << 4 | class,")
    add(" * sorted; a class holds up to the next entry's start, the last one up to U+10FFFF.")
    add(" */")
    add("#ifndef LM_UNICODE_TABLES_H")
    add("#define LM_UNICODE_TABLES_H")
    add("")
    add("#include <stdint.h>")
    add("")
    add('#define LM_UCD_VERSION "%s"' % UNICODE_VERSION)
    add("")
    add("enum {")
    add("    LM_UCD_UNDEF = %d,     /* Cn (unassigned) */" % UNDEF)
    add("    LM_UCD_NUMBER = %d,    /* \\p{N} */" % NUMBER)
    add("    LM_UCD_LETTER = %d,    /* \\p{L} */" % LETTER)
    add("    LM_UCD_SEPARATOR = %d, /* \\p{Z} */" % SEPARATOR)
    add("    LM_UCD_MARK = %d,      /* \\p{M} */" % MARK)
    add("    LM_UCD_PUNCT = %d,     /* \\p{P} */" % PUNCT)
    add("    LM_UCD_SYMBOL = %d,    /* \\p{S} */" % SYMBOL)
    add("    LM_UCD_CONTROL = %d,   /* Cc, Cf, Co, Cs */" % CONTROL)
    add("    LM_UCD_CATEGORY = 7,")
    add("    LM_UCD_SPACE = %d,     /* \\s: the White_Space property */" % SPACE)
    add("};")
    add("")
    add("static const uint8_t lm_ucd_ascii[128] = {")
    for r in range(0, 128, 16):
        add("    " + " ".join("%d," % cls[c] for c in range(r, r + 16)))
    add("};")
    add("")
    add("#define LM_UCD_N_RANGES %d" % len(ranges))
    add("static const uint32_t lm_ucd_ranges[LM_UCD_N_RANGES] = {")
    for i in range(0, len(ranges), 8):
        add("    " + " ".join("0x%07x," % (s << 4 | k) for s, k in ranges[i:i + 8]))
    add("};")
    add("")
    add("#endif /* LM_UNICODE_TABLES_H */")
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote %s: %d ranges" % (os.path.relpath(args.out, ROOT), len(ranges)))


if __name__ == "__main__":
    main()
