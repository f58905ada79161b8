# tests/weave_lib.sh: what the weaver's tests share, sourced by each (`. tests/weave_lib.sh`
# with the test's own arguments): go to REPO_ROOT ($1, default .), skip (77) without
# pandoc, a scratch folder $tmp removed at exit, the counters, check and has, and the
# summary line that ends a test (finish). weave_machine_code sets nvcc and the cuobjdump
# tools/book.mk would find, for the tests that read machine code, and their weave.
root=${1:-.}
cd "$root" || exit 1
command -v pandoc >/dev/null 2>&1 || { echo "pandoc not installed: skipped"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0 skipped=
check() {  # check DESCRIPTION CONDITION...: counts it; on failure shows what pandoc said
    what=$1; shift
    if "$@"; then passed=$((passed + 1)); echo "ok   $what"; else failed=$((failed + 1)); echo "FAIL $what"; sed 's/^/     /' "$tmp/err"; fi
}
has() { printf "%s\n" "$1" | tr '\n' ' ' | grep -q -- "$2"; }  # has TEXT PATTERN, across lines
weave_machine_code() {  # weave_machine_code HEADING: also $tmp/bin for the programs, and weave
    heading=$1
    mkdir -p "$tmp/bin"
    nvcc=${NVCC:-nvcc}
    cuobjdump=${CUOBJDUMP:-$(command -v cuobjdump || true)}
    [ -n "$cuobjdump" ] || cuobjdump=$(dirname "$(command -v "$nvcc" || echo .)")/cuobjdump
    [ -x "$cuobjdump" ] || cuobjdump=build/tools/cuda/bin/cuobjdump
}
# weave TEXT [FORMAT [PANDOC ARGS]] (after weave_machine_code): TEXT woven as a chapter
# titled HEADING, the output on stdout, pandoc's status as the function's
weave() {
    printf '# %s\n\nSome prose.\n\n%s\n' "$heading" "$1" > "$tmp/c.md"
    fmt=${2:-html}
    shift; [ $# -gt 0 ] && shift
    pandoc --lua-filter=tools/weave.lua -M bin-dir="$tmp/bin" -M cuobjdump="$cuobjdump" \
        -M chapter="$tmp/c.md" -t "$fmt" "$@" "$tmp/c.md" 2>"$tmp/err"
}
finish() {  # the summary line; the status: whether every check passed
    echo "$passed passed, $failed failed${skipped:+, $skipped skipped}"
    [ "$failed" -eq 0 ]
}
