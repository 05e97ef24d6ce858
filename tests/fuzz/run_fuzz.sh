#!/bin/sh
# run_fuzz.sh — build the GGUF reader's libFuzzer harness (tests/fuzz/fuzz_gguf.c) with
# ASan + UBSan and fuzz it for a while.
#
#   tests/fuzz/run_fuzz.sh [SECONDS] [extra libFuzzer flags...]     (default 60 s)
#   tests/fuzz/run_fuzz.sh tokenizer [SECONDS]   fuzz the tokenizers (SPM, gemma4 BPE, GPT-2 byte-level
#                                                BPE under each pre-tokenizer) + chat templates instead
#
# Environment: CC (default clang-14, else clang), FUZZ_DIR (work directory, default
# ${TMPDIR:-/tmp}/lumen-fuzz). The corpus grown there is kept between runs; crashing inputs land in
# $FUZZ_DIR/artifacts. Seeds: valid files written with the test GGUF writer, plus the first 64 KiB
# of the real model when it is in the model cache. Reproduce a crash with
#   $FUZZ_DIR/fuzz_gguf $FUZZ_DIR/artifacts/crash-...
set -eu

if [ "${1:-}" = tokenizer ]; then
    shift
    secs=${1:-60}
    root=$(cd "$(dirname "$0")/../.." && pwd)
    dir=${FUZZ_DIR:-${TMPDIR:-/tmp}/lumen-fuzz}/tokenizer
    if [ -z "${CC:-}" ]; then
        if command -v clang-14 >/dev/null 2>&1; then CC=clang-14; else CC=clang; fi
    fi
    mkdir -p "$dir/corpus" "$dir/artifacts"
    printf 'Hello world <start_of_turn>user\n  spaces\n\n\n tabs\t <|turn> \360\237\230\200 \377' > "$dir/corpus/seed1"
    printf "I'm IT'S 'll <|im_start|>user\r\n 1234567 \342\200\224 x  \n\n \302\205 <think>\340\244\250\340\245\215 \303" > "$dir/corpus/seed2"
    echo "run_fuzz: building tokenizer harness with $CC"
    $CC -std=c17 -Wall -Wextra -g -O1 -ffp-contract=off -fno-omit-frame-pointer -I"$root/include" -I"$root/engine" \
        -DLUMEN_FIXTURES="\"$root/tests/fixtures\"" -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
        "$root/tests/fuzz/fuzz_tokenizer.c" "$root/engine/tokenizer.c" "$root/engine/chat.c" "$root/engine/gguf.c" \
        "$root/engine/quant.c" "$root/engine/status.c" -o "$dir/fuzz_tokenizer" -lm
    echo "run_fuzz: fuzzing the tokenizers for ${secs}s"
    exec "$dir/fuzz_tokenizer" -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$dir/artifacts/" -print_final_stats=1 "$dir/corpus"
fi

secs=${1:-60}
[ $# -gt 0 ] && shift
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${FUZZ_DIR:-${TMPDIR:-/tmp}/lumen-fuzz}
if [ -z "${CC:-}" ]; then
    if command -v clang-14 >/dev/null 2>&1; then CC=clang-14; else CC=clang; fi
fi
mkdir -p "$dir/corpus" "$dir/seeds" "$dir/artifacts"

engine="$root/engine/gguf.c $root/engine/quant.c $root/engine/status.c"
flags="-std=c17 -Wall -Wextra -g -O1 -ffp-contract=off -fno-omit-frame-pointer -I$root/include -I$root/engine -I$root/tests"

echo "run_fuzz: building with $CC"
# shellcheck disable=SC2086
$CC $flags -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    "$root/tests/fuzz/fuzz_gguf.c" $engine -o "$dir/fuzz_gguf" -lm
# shellcheck disable=SC2086
$CC $flags -DFUZZ_GEN_SEEDS -DLUMEN_FIXTURES="\"$root/tests/fixtures\"" -DLUMEN_MODEL_CACHE="\"\"" \
    "$root/tests/fuzz/fuzz_gguf.c" "$root/tests/test_util.c" $engine -o "$dir/gen_seeds" -lm

"$dir/gen_seeds" "$dir/seeds"
model=${LUMEN_MODEL:-$HOME/.cache/lumen/models/gemma-3-270m-q4_k_m.gguf}
if [ -r "$model" ]; then
    head -c 65536 "$model" > "$dir/seeds/real_model_64k.gguf"
fi

cat > "$dir/gguf.dict" <<'EOF'
"GGUF"
"\x03\x00\x00\x00"
"\x02\x00\x00\x00"
"general.alignment"
"general.architecture"
"tokenizer.ggml.tokens"
"\x00\x00\x00\x00\x00\x00\x00\x40"
"\xff\xff\xff\xff\xff\xff\xff\xff"
"\x09\x00\x00\x00"
"\x08\x00\x00\x00"
"\x07\x00\x00\x00"
"\x20\x00\x00\x00"
EOF

echo "run_fuzz: fuzzing for ${secs}s; corpus $dir/corpus, artifacts $dir/artifacts"
exec "$dir/fuzz_gguf" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
    -dict="$dir/gguf.dict" -artifact_prefix="$dir/artifacts/" -print_final_stats=1 "$@" \
    "$dir/corpus" "$dir/seeds"
