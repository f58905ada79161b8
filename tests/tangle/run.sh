#!/usr/bin/env bash
# Tests of tools/tangle.c.
#
# usage: tests/tangle/run.sh TANGLE_BINARY
#
# golden/NAME/  chapters/*.md are tangled inside a copy of the directory
#               (it is the --root) with --depfile deps.d --index index.tsv;
#               the resulting tree must equal expected/, and stderr must
#               equal expected-stderr (empty when that file is absent).
# errors/NAME/  the same, but tangle must exit 1 with exactly
#               expected-stderr and write nothing at all.
# Further cases below check rewriting only changed files, --check, --list,
# --root, usage errors, CRLF input and #line directives with gcc.
#
# Prints "ok NAME" or "FAIL NAME: why" per case and a final summary line.
set -eu
export LC_ALL=C

if [ $# -ne 1 ]; then
    echo "usage: $0 TANGLE_BINARY" >&2
    exit 2
fi
TANGLE=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

passed=0
failed=0
ok() { echo "ok $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }

# Copy a case's chapters into a fresh work directory and print its path.
fresh_copy() { # CASE_DIR WORK_NAME
    local work="$TMP/$2"
    rm -rf "$work"
    mkdir -p "$work"
    cp -r "$1/chapters" "$work/"
    echo "$work"
}

# Run tangle in WORK on its chapters; sets $status, stderr in $TMP/stderr.
tangle_in() { # WORK [OPTIONS...]
    local work=$1
    shift
    status=0
    (cd "$work" && "$TANGLE" "$@" chapters/*.md) >"$TMP/stdout" 2>"$TMP/stderr" ||
        status=$?
}

same_stderr() { # CASE_DIR
    if [ -f "$1/expected-stderr" ]; then
        cmp -s "$1/expected-stderr" "$TMP/stderr"
    else
        [ ! -s "$TMP/stderr" ]
    fi
}

# ----------------------------------------------------------------------
# Golden and error cases
# ----------------------------------------------------------------------

run_golden() { # NAME
    local name=golden/$1 dir=$HERE/golden/$1 work
    work=$(fresh_copy "$dir" "golden-$1")
    tangle_in "$work" --depfile deps.d --index index.tsv
    if [ "$status" -ne 0 ]; then
        fail "$name" "exit status $status: $(head -c 300 "$TMP/stderr")"
    elif ! same_stderr "$dir"; then
        fail "$name" "unexpected stderr: $(head -c 300 "$TMP/stderr")"
    else
        rm -r "$work/chapters"
        if diff -r "$dir/expected" "$work" >"$TMP/diff"; then
            ok "$name"
        else
            fail "$name" "output differs: $(head -c 600 "$TMP/diff")"
        fi
    fi
}

run_error() { # NAME
    local name=errors/$1 dir=$HERE/errors/$1 work
    work=$(fresh_copy "$dir" "errors-$1")
    tangle_in "$work" --depfile deps.d --index index.tsv
    rm -r "$work/chapters"
    if [ "$status" -ne 1 ]; then
        fail "$name" "exit status $status, expected 1"
    elif ! same_stderr "$dir"; then
        fail "$name" "unexpected stderr: $(head -c 300 "$TMP/stderr")"
    elif [ -n "$(ls -A "$work")" ]; then
        fail "$name" "files were written: $(ls -A "$work" | tr '\n' ' ')"
    else
        ok "$name"
    fi
}

for dir in "$HERE"/golden/*/; do
    run_golden "$(basename "$dir")"
done
for dir in "$HERE"/errors/*/; do
    run_error "$(basename "$dir")"
done

# ----------------------------------------------------------------------
# Only changed files are rewritten
# ----------------------------------------------------------------------

mtime() { stat -c %Y "$1"; }

test_only_changed() {
    local name=only-changed work old
    work=$(fresh_copy "$HERE/golden/cross-file" only-changed)
    tangle_in "$work" --depfile deps.d --index index.tsv
    if [ "$status" -ne 0 ] || [ ! -f "$work/deps.d" ]; then
        fail "$name" "first run failed (status $status)"
        return
    fi
    (cd "$work" && touch -d '2001-01-01 00:00:00' code/cross/main.cu \
        code/cross/second.cuh deps.d index.tsv)
    old=$(mtime "$work/deps.d")

    tangle_in "$work" --depfile deps.d --index index.tsv
    for f in code/cross/main.cu code/cross/second.cuh deps.d index.tsv; do
        if [ "$(mtime "$work/$f")" != "$old" ]; then
            fail "$name" "$f rewritten although unchanged"
            return
        fi
    done

    # Changing a chunk used only by main.cu must rewrite main.cu alone.
    sed -i 's/int x = 0;/int x = 1;/' "$work/chapters/02-second.md"
    tangle_in "$work" --depfile deps.d --index index.tsv
    if [ "$(mtime "$work/code/cross/main.cu")" = "$old" ]; then
        fail "$name" "changed main.cu was not rewritten"
    elif ! grep -q 'int x = 1;' "$work/code/cross/main.cu"; then
        fail "$name" "main.cu lacks the change"
    elif [ "$(mtime "$work/code/cross/second.cuh")" != "$old" ]; then
        fail "$name" "second.cuh rewritten although unchanged"
    elif ls "$work"/code/cross/*.tangle-* >/dev/null 2>&1; then
        fail "$name" "temporary file left behind"
    else
        ok "$name"
    fi
}

# ----------------------------------------------------------------------
# Writing: all files or none; never through a link that leaves code/
# ----------------------------------------------------------------------

# The state of a work tree: every path with its type, mode and checksum.
snapshot() { # WORK
    (cd "$1" && find . -path ./chapters -prune -o -printf '%p %y %m\n' | sort &&
        find . -path ./chapters -prune -o -type f -exec md5sum {} + | sort)
}

test_all_or_nothing() {
    local name=all-or-nothing work before
    work=$(fresh_copy "$HERE/golden/cross-file" all-or-nothing)
    tangle_in "$work" --depfile deps.d --index index.tsv
    if [ "$status" -ne 0 ]; then
        fail "$name" "first run failed (status $status)"
        return
    fi
    # A change to every output, a file in a new folder, and a file that
    # cannot be written: code/blocker is a file, not a folder.
    echo "blocks the folder" >"$work/code/blocker"
    sed -i 's/#include <cstdio>/#include <cstdlib>/' "$work/chapters/01-first.md"
    cat >>"$work/chapters/02-second.md" <<'MARKDOWN'

```{.c file=code/new/folder/new.c}
int new_file;
```

```{.c file=code/blocker/x.c}
int blocked;
```
MARKDOWN
    before=$(snapshot "$work")
    tangle_in "$work" --depfile deps.d --index index.tsv
    if [ "$status" -ne 1 ]; then
        fail "$name" "exit status $status, expected 1"
    elif [ "$(cat "$TMP/stderr")" != \
        "chapters/02-second.md:28: cannot write 'code/blocker/x.c': Not a directory" ]; then
        fail "$name" "unexpected stderr: $(head -c 300 "$TMP/stderr")"
    elif [ "$(snapshot "$work")" != "$before" ]; then
        fail "$name" "the tree changed: $(diff <(echo "$before") <(snapshot "$work") | head -c 400)"
    else
        ok "$name"
    fi
}

test_target_is_folder() {
    local name=target-is-folder work
    work="$TMP/$name"
    mkdir -p "$work/chapters" "$work/code/d"
    printf '```{.c file=code/ok.c}\n```\n```{.c file=code/d}\nint d;\n```\n' \
        >"$work/chapters/01-a.md"
    tangle_in "$work"
    if [ "$status" -ne 1 ] ||
        [ "$(cat "$TMP/stderr")" != "chapters/01-a.md:3: cannot write 'code/d': Is a directory" ]; then
        fail "$name" "status $status: $(head -c 300 "$TMP/stderr")"
    elif [ -e "$work/code/ok.c" ] || [ -n "$(ls -A "$work/code/d")" ]; then
        fail "$name" "files were written"
    else
        ok "$name"
    fi
}

# Links that leave code/ are refused: a folder link inside code/, code/
# itself, and an output that is a link; a link within code/ is followed.
test_links() {
    local name=links work="$TMP/links" outside="$TMP/outside" link target file
    while read -r link target file; do
        rm -rf "$work" "$outside"
        mkdir -p "$work/chapters" "$work/code" "$outside"
        echo "not to be overwritten" >"$outside/x.c"
        rmdir "$work/code"
        [ "$link" = code ] || mkdir "$work/code"
        ln -s "$target" "$work/$link"
        printf '# Links\n\n```{.c file=%s}\nint x;\n```\n' "$file" >"$work/chapters/01-a.md"
        tangle_in "$work"
        if [ "$status" -ne 1 ] || [ "$(cat "$TMP/stderr")" != \
            "chapters/01-a.md:3: refusing to write '$file': the symbolic link '$link' leads out of code/" ]; then
            fail "$name" "$link: status $status: $(head -c 300 "$TMP/stderr")"
            return
        elif [ "$(ls -A "$outside")" != x.c ] ||
            [ "$(cat "$outside/x.c")" != "not to be overwritten" ]; then
            fail "$name" "$link: wrote outside code/"
            return
        fi
    done <<LINKS
code/link $outside code/link/x.c
code $outside code/x.c
code/x.c $outside/x.c code/x.c
code/up .. code/up/x.c
LINKS
    rm -rf "$work"
    mkdir -p "$work/chapters" "$work/code/real"
    ln -s real "$work/code/alias"
    printf '```{.c file=code/alias/x.c}\nint x;\n```\n' >"$work/chapters/01-a.md"
    tangle_in "$work"
    if [ "$status" -ne 0 ] || [ ! -f "$work/code/real/x.c" ]; then
        fail "$name" "a link within code/ was not followed (status $status)"
    else
        ok "$name"
    fi
}

# New files get the usual mode (0666 less the umask); a rewritten file
# keeps its own, e.g. an executable bit.
test_modes() {
    local name=modes work
    work=$(fresh_copy "$HERE/golden/non-c" modes)
    tangle_in "$work"
    if [ "$(stat -c %a "$work/code/scripts/run.sh")" != "$(printf '%o' $((0666 & ~0$(umask))))" ]; then
        fail "$name" "new file has mode $(stat -c %a "$work/code/scripts/run.sh")"
        return
    fi
    chmod 755 "$work/code/scripts/run.sh"
    sed -i 's/for n in 1 2 3/for n in 4 5 6/' "$work/chapters/01-build.md"
    tangle_in "$work"
    if [ "$status" -ne 0 ] || ! grep -q 'for n in 4 5 6' "$work/code/scripts/run.sh"; then
        fail "$name" "not rewritten (status $status)"
    elif [ "$(stat -c %a "$work/code/scripts/run.sh")" != 755 ]; then
        fail "$name" "mode not kept: $(stat -c %a "$work/code/scripts/run.sh")"
    else
        ok "$name"
    fi
}

# ----------------------------------------------------------------------
# --check, --list, --root and usage errors
# ----------------------------------------------------------------------

test_check() {
    local name=check work
    work=$(fresh_copy "$HERE/golden/cross-file" check)
    tangle_in "$work" --check
    if [ "$status" -ne 1 ] || ! grep -qx 'code/cross/main.cu: out of date' "$TMP/stdout"; then
        fail "$name" "missing files not reported (status $status)"
        return
    fi
    if [ -e "$work/code" ]; then
        fail "$name" "--check wrote files"
        return
    fi
    tangle_in "$work"
    tangle_in "$work" --check
    if [ "$status" -ne 0 ] || [ -s "$TMP/stdout" ]; then
        fail "$name" "in-sync tree reported (status $status): $(cat "$TMP/stdout")"
        return
    fi
    echo "// edited by hand" >>"$work/code/cross/second.cuh"
    tangle_in "$work" --check
    if [ "$status" -ne 1 ] ||
        [ "$(cat "$TMP/stdout")" != "code/cross/second.cuh: out of date" ]; then
        fail "$name" "edited file not reported exactly (status $status): $(cat "$TMP/stdout")"
    elif ! grep -q 'edited by hand' "$work/code/cross/second.cuh"; then
        fail "$name" "--check overwrote the edited file"
    else
        ok "$name"
    fi
}

test_list() {
    local name=list work
    work=$(fresh_copy "$HERE/golden/non-c" list)
    tangle_in "$work" --list
    if [ "$status" -ne 0 ]; then
        fail "$name" "exit status $status"
    elif [ "$(cat "$TMP/stdout")" != "$(printf '%s\n' code/Makefile \
        code/figures/bandwidth.gp code/scripts/run.sh code/scripts/summary.py)" ]; then
        fail "$name" "wrong list: $(cat "$TMP/stdout")"
    elif [ -e "$work/code" ]; then
        fail "$name" "--list wrote files"
    else
        ok "$name"
    fi
}

test_root() {
    local name=root work
    work=$(fresh_copy "$HERE/golden/simple" root)
    tangle_in "$work" --root out/tree --depfile deps.d
    if [ "$status" -ne 0 ]; then
        fail "$name" "exit status $status"
    elif ! cmp -s "$HERE/golden/simple/expected/code/hello/hello.cu" \
        "$work/out/tree/code/hello/hello.cu"; then
        fail "$name" "output not under --root"
    elif ! grep -qx 'out/tree/code/hello/hello.cu: chapters/01-hello.md' "$work/deps.d"; then
        fail "$name" "depfile target lacks the root: $(head -1 "$work/deps.d")"
    else
        ok "$name"
    fi
}

test_usage() {
    local name=usage s1=0 s2=0 s3=0
    "$TANGLE" >/dev/null 2>"$TMP/u1" || s1=$?
    "$TANGLE" --bogus x.md >/dev/null 2>"$TMP/u2" || s2=$?
    "$TANGLE" x.md --root >/dev/null 2>"$TMP/u3" || s3=$?
    if [ "$s1" -ne 2 ] || [ "$s2" -ne 2 ]; then
        fail "$name" "exit statuses $s1 $s2, expected 2"
    elif ! grep -q '^usage: tangle' "$TMP/u1" || ! grep -q '^usage: tangle' "$TMP/u2"; then
        fail "$name" "no usage message on stderr"
    elif [ "$s3" -eq 0 ]; then
        fail "$name" "a missing input file was accepted"
    else
        ok "$name"
    fi
}

# ----------------------------------------------------------------------
# CRLF input tangles like LF input
# ----------------------------------------------------------------------

test_crlf() {
    local name=crlf work
    work=$(fresh_copy "$HERE/golden/nested-indent" crlf)
    sed -i 's/$/\r/' "$work"/chapters/*.md
    tangle_in "$work"
    if [ "$status" -ne 0 ]; then
        fail "$name" "exit status $status"
    elif ! cmp -s "$HERE/golden/nested-indent/expected/code/nest.cu" "$work/code/nest.cu"; then
        fail "$name" "output differs from the LF version"
    else
        ok "$name"
    fi
}

# Lines ending in a lone CR, and NUL bytes, are errors at their line
# (they used to tangle nothing, or cut lines, without a word).
test_bad_text() {
    local name=bad-text work how line
    while read -r how line; do
        work=$(fresh_copy "$HERE/golden/simple" bad-text)
        case $how in
        cr-only) tr '\n' '\r' <"$HERE/golden/simple/chapters/01-hello.md" ;;
        lone-cr) sed '13s/ker/ker\r/' "$HERE/golden/simple/chapters/01-hello.md" ;;
        nul) sed '10s/$/\x00 after a NUL/' "$HERE/golden/simple/chapters/01-hello.md" ;;
        esac >"$work/chapters/01-hello.md"
        tangle_in "$work"
        local want="chapters/01-hello.md:$line: carriage return without a line feed (a chapter's lines end in LF or CRLF)"
        [ "$how" = nul ] && want="chapters/01-hello.md:$line: NUL byte (a chapter is text)"
        if [ "$status" -ne 1 ] || [ "$(cat "$TMP/stderr")" != "$want" ]; then
            fail "$name" "$how: status $status: $(head -c 300 "$TMP/stderr")"
            return
        elif [ -e "$work/code" ]; then
            fail "$name" "$how: files were written"
            return
        fi
    done <<CASES
cr-only 1
lone-cr 13
nul 10
CASES
    ok "$name"
}

# ----------------------------------------------------------------------
# #line directives: gcc names the Markdown lines of planted errors: in a
# chunk from another chapter (A), after a reference in that chunk (B: the
# re-synchronising #line) and in the root after a reference (C).
# ----------------------------------------------------------------------

test_gcc_line() {
    local name=gcc-line work missing="" spec file mark line
    if ! command -v gcc >/dev/null; then
        echo "ok $name # skipped, no gcc"
        passed=$((passed + 1))
        return
    fi
    work="$TMP/gcc-line"
    mkdir -p "$work/chapters"
    cat >"$work/chapters/01-main.md" <<'MARKDOWN'
# Main

```{.c file=code/main.c}
#include <stdio.h>

<<helpers>>

int main(void)
{
    <<main-body>>
    undeclared_c = 3; /* planted error C */
    return 0;
}
```
MARKDOWN
    cat >"$work/chapters/02-helpers.md" <<'MARKDOWN'
# Helpers

```{.c #main-body}
printf("%d\n", twice(21));
```

```{.c #helpers}
static int twice(int x)
{
    <<twice-body>>
    undeclared_b = 2; /* planted error B */
    return y;
}
```

```{.c #twice-body}
int y = 2 * x;
undeclared_a = 1; /* planted error A */
```
MARKDOWN
    tangle_in "$work"
    if [ "$status" -ne 0 ]; then
        fail "$name" "tangle failed: $(cat "$TMP/stderr")"
        return
    fi
    if (cd "$work" && gcc -c code/main.c -o main.o) 2>"$TMP/gcc" >&2; then
        fail "$name" "gcc accepted the planted errors"
        return
    fi
    for spec in 02-helpers.md:A 02-helpers.md:B 01-main.md:C; do
        file=chapters/${spec%:*} mark=${spec#*:}
        line=$(grep -n "planted error $mark" "$work/$file" | cut -d: -f1)
        if ! grep -q "^$file:$line:[0-9]*: error:.*undeclared_$(echo "$mark" | tr A-C a-c)" \
            "$TMP/gcc"; then
            missing="$missing $file:$line"
        fi
    done
    if [ -n "$missing" ]; then
        fail "$name" "gcc did not report$missing: $(head -c 600 "$TMP/gcc")"
        return
    fi
    sed -i '/planted error/d' "$work"/chapters/*.md
    tangle_in "$work"
    if [ "$status" -ne 0 ]; then
        fail "$name" "tangle failed on the corrected chapters"
    elif ! (cd "$work" && gcc -std=c11 -Wall -Wextra -Werror -c code/main.c -o main.o) \
        2>"$TMP/gcc"; then
        fail "$name" "corrected program does not compile: $(head -c 400 "$TMP/gcc")"
    else
        ok "$name"
    fi
}

# ----------------------------------------------------------------------
# Large and hostile inputs, generated: no recursion that overflows the
# stack, no quadratic time, no unbounded output.  `timeout` turns a hang
# into a failure; each case takes well under a second.
# ----------------------------------------------------------------------

# A chain of N nested chunks: the root uses c0, c0 uses c1, ...
chain_chapter() { # N
    awk -v n="$1" 'BEGIN {
        print "```{.c file=code/chain.c}\n<<c0>>\n```"
        for (i = 0; i < n - 1; i++) printf "```{.c #c%d}\n<<c%d>>\n```\n", i, i + 1
        printf "```{.c #c%d}\nint innermost;\n```\n", n - 1
    }'
}

# N levels, each using the next twice: 2^N copies of the last.
doubling_chapter() { # N FILE LAST_LINE
    awk -v n="$1" -v file="$2" -v last="$3" 'BEGIN {
        printf "```{file=%s}\n<<d0>>\n```\n", file
        for (i = 0; i < n - 1; i++)
            printf "```{#d%d}\n<<d%d>>\n<<d%d>>\n```\n", i, i + 1, i + 1
        printf "```{#d%d}\n%s```\n", n - 1, last
    }'
}

# Run tangle on the chapter read from stdin, in a fresh directory, within
# LIMIT seconds; sets $status like tangle_in (so no pipe into it).
tangle_generated() { # NAME LIMIT [OPTIONS...]
    local work="$TMP/$1" limit=$2
    shift 2
    rm -rf "$work"
    mkdir -p "$work/chapters"
    cat >"$work/chapters/01-generated.md"
    status=0
    (cd "$work" && timeout "$limit" "$TANGLE" "$@" chapters/01-generated.md) \
        >"$TMP/stdout" 2>"$TMP/stderr" || status=$?
}

test_deep_chain() {
    local name=deep-chain
    tangle_generated "$name" 20 < <(chain_chapter 100000)
    if [ "$status" -ne 0 ]; then
        fail "$name" "exit status $status: $(head -c 300 "$TMP/stderr")"
    elif [ "$(grep -c '^// <<c' "$TMP/$name/code/chain.c")" -ne 100000 ] ||
        ! grep -qx 'int innermost;' "$TMP/$name/code/chain.c"; then
        fail "$name" "chain not expanded in full"
    else
        ok "$name"
    fi
}

test_many_roots() {
    local name=many-roots
    awk 'BEGIN { for (i = 0; i < 200000; i++)
        printf "```{.c file=code/r/%d.c}\n<<shared>>\n```\n", i
        print "```{.c #shared}\nint shared;\n```" }' >"$TMP/many-roots.md"
    tangle_generated "$name" 10 --list <"$TMP/many-roots.md"
    if [ "$status" -ne 0 ] || [ "$(wc -l <"$TMP/stdout")" -ne 200000 ]; then
        fail "$name" "exit status $status: $(head -c 300 "$TMP/stderr")"
    else
        ok "$name"
    fi
}

# A chapter of chunks that double at every level (doubling_chapter LEVELS FILE LAST_LINE)
# must hit one of the tangler's limits: exit 1, MESSAGE at the chapter's line, no files.
expect_limit() { # NAME LEVELS FILE LAST_LINE MESSAGE
    local name=$1
    tangle_generated "$name" 20 < <(doubling_chapter "$2" "$3" "$4")
    if [ "$status" -ne 1 ]; then
        fail "$name" "exit status $status, expected 1"
    elif [ "$(cat "$TMP/stderr")" != "$5" ]; then
        fail "$name" "unexpected stderr: $(head -c 300 "$TMP/stderr")"
    elif [ -e "$TMP/$name/code" ]; then
        fail "$name" "files were written"
    else
        ok "$name"
    fi
}

test_output_limit() {
    expect_limit output-limit 24 code/big.c 'int x;\n' "chapters/01-generated.md:1: file 'code/big.c' \
makes the tangled output larger than 64 MiB, the limit (is a chunk used more often than meant?)"
}

test_expansion_limit() {
    expect_limit expansion-limit 40 code/empty.txt '' "chapters/01-generated.md:1: file 'code/empty.txt' \
expands more than 16777216 chunk references, the limit (is a chunk used more often than meant?)"
}

test_only_changed
test_all_or_nothing
test_target_is_folder
test_links
test_modes
test_check
test_list
test_root
test_usage
test_crlf
test_bad_text
test_gcc_line
test_deep_chain
test_many_roots
test_output_limit
test_expansion_limit

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
