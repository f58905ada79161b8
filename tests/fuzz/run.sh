#!/usr/bin/env bash
# The tangler under a fuzzer (tests/fuzz/tangle_fuzz.c).
#
# usage: tests/fuzz/run.sh replay|fuzz BUILD_DIR
#
# replay  builds the harness with a main() of its own (any C compiler;
#         AddressSanitizer and UBSan where the compiler has them) and runs
#         every regression input, the generated ones and the seed corpus.
# fuzz    builds it with clang -fsanitize=fuzzer,address,undefined and
#         fuzzes for FUZZ_SECONDS (default 15) from the seed FUZZ_SEED (default 1,
#         so that CI runs the same inputs each time), starting from the seeds and
#         the regressions; exits 77 (skipped) where clang has no libFuzzer.
#         New inputs are kept in BUILD_DIR/fuzz/corpus, crashes are written
#         to BUILD_DIR/fuzz/crash-* (add them to tests/fuzz/regressions/).
#
# The seed corpus is made from the book's chapters and the tangler's
# golden and error cases, so it follows them; the chapters of one input
# are separated by the byte 0x1C.
set -eu
export LC_ALL=C

if [ $# -ne 2 ] || { [ "$1" != replay ] && [ "$1" != fuzz ]; }; then
    echo "usage: $0 replay|fuzz BUILD_DIR" >&2
    exit 2
fi
MODE=$1
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=$(mkdir -p "$2/$MODE" && cd "$2/$MODE" && pwd)
SANITIZE="-fsanitize=address,undefined -fno-sanitize-recover=all"
CFLAGS="-std=c11 -g -O1 -Wall -Wextra"

# Chapters joined into one input, separated by 0x1C.
join_chapters() { # OUTPUT FILE...
    local out=$1 first=1 f
    shift
    for f in "$@"; do
        [ "$first" -eq 1 ] || printf '\034'
        cat "$f"
        first=0
    done >"$out"
}

make_seeds() { # DIR
    local dir=$1 test_case
    rm -rf "$dir"
    mkdir -p "$dir"
    for test_case in "$ROOT"/tests/tangle/golden/*/ "$ROOT"/tests/tangle/errors/*/; do
        join_chapters "$dir/$(basename "$(dirname "$test_case")")-$(basename "$test_case")" \
            "$test_case"/chapters/*.md
    done
    # the book: the measuring chapter (it holds the harness) with each other
    for f in "$ROOT"/chapters/*.md; do
        case $f in */00-*) continue ;; esac
        join_chapters "$dir/book-$(basename "$f" .md)" "$ROOT"/chapters/00-*.md "$f"
    done
}

# Inputs too large to commit, made by the same awk as tests/tangle/run.sh:
# a deep chain of chunks, and chunks doubling their use at every level.
make_generated() { # DIR
    local dir=$1
    rm -rf "$dir"
    mkdir -p "$dir"
    awk 'BEGIN { n = 50000
        print "```{.c file=code/chain.c}\n<<c0>>\n```"
        for (i = 0; i < n - 1; i++) printf "```{.c #c%d}\n<<c%d>>\n```\n", i, i + 1
        printf "```{.c #c%d}\nint innermost;\n```\n", n - 1 }' >"$dir/deep-chain"
    awk 'BEGIN { n = 24
        print "```{file=code/big.c}\n<<d0>>\n```"
        for (i = 0; i < n - 1; i++) printf "```{#d%d}\n<<d%d>>\n<<d%d>>\n```\n", i, i + 1, i + 1
        printf "```{#d%d}\nint x;\n```\n", n - 1 }' >"$dir/doubling"
    awk 'BEGIN { n = 40
        print "```{file=code/empty.txt}\n<<d0>>\n```"
        for (i = 0; i < n - 1; i++) printf "```{#d%d}\n<<d%d>>\n<<d%d>>\n```\n", i, i + 1, i + 1
        printf "```{#d%d}\n```\n", n - 1 }' >"$dir/empty-doubling"
}

# Does CC build a program from the C on stdin with these flags, and run it?
compiles() { # CC FLAGS...
    local cc=$1
    shift
    cat >"$OUT/probe.c"
    "$cc" "$@" "$OUT/probe.c" -o "$OUT/probe" >/dev/null 2>&1 &&
        "$OUT/probe" -runs=0 >/dev/null 2>&1
}

if [ "$MODE" = replay ]; then
    CC=${CC:-cc}
    flags=""
    # shellcheck disable=SC2086
    if echo 'int main(void) { return 0; }' | compiles "$CC" $SANITIZE; then
        flags=$SANITIZE
    else
        echo "note: $CC has no AddressSanitizer/UBSan here; replaying without them"
    fi
    # shellcheck disable=SC2086
    "$CC" $CFLAGS $flags -DREPLAY_MAIN -o "$OUT/replay" "$HERE/tangle_fuzz.c"
    make_seeds "$OUT/seeds"
    make_generated "$OUT/generated"
    "$OUT/replay" "$HERE/regressions" "$OUT/generated" "$OUT/seeds"
    exit 0
fi

CLANG=${CLANG:-}
if [ -z "$CLANG" ]; then
    for c in clang clang-18 clang-17 clang-16 clang-15 clang-14; do
        if command -v "$c" >/dev/null; then
            CLANG=$c
            break
        fi
    done
fi
# shellcheck disable=SC2086
if [ -z "$CLANG" ] || ! echo 'int LLVMFuzzerTestOneInput(const char *d, long n) { return 0; }' |
    compiles "$CLANG" -fsanitize=fuzzer,address,undefined; then
    echo "skip: no clang with -fsanitize=fuzzer"
    exit 77
fi
# shellcheck disable=SC2086
"$CLANG" $CFLAGS -fsanitize=fuzzer $SANITIZE -o "$OUT/fuzz" "$HERE/tangle_fuzz.c"
make_seeds "$OUT/seeds"
mkdir -p "$OUT/corpus"
"$OUT/fuzz" -max_total_time="${FUZZ_SECONDS:-15}" -seed="${FUZZ_SEED:-1}" -timeout=20 -rss_limit_mb=2048 \
    -dict="$HERE/tangle.dict" -artifact_prefix="$OUT/crash-" -print_final_stats=1 \
    "$OUT/corpus" "$OUT/seeds" "$HERE/regressions"
