#!/bin/sh
# tests/sass_test.sh [REPO_ROOT]: the weaver's SASS excerpts, ```{.sass program= kernel=
# match=}```, on a small program compiled here (no GPU needed). A block shows the matching
# instructions under a caption that counts them; a pattern that matches nothing, a kernel
# that is not there, a program not built and a missing cuobjdump each stop the build with
# the chapter's line. Skipped (77) without pandoc; the cases that read machine code are
# skipped without nvcc or cuobjdump (found as tools/book.mk finds it).
. "$(dirname "$0")/weave_lib.sh"
weave_machine_code SASS
block() { printf '```{.sass %s}\n```' "$1"; }

# a program not built, and a cuobjdump that is not there: no machine code needed
out=$(weave "$(block 'program=absent kernel=k match=LDG')") && st=0 || st=$?
check "a program not built fails the build" test "$st" -ne 0
check "... naming the chapter's line and saying to run make programs" \
    grep -q "c.md:5: sass block program=absent kernel=k match='LDG': .*/bin/absent is not built: run \`make programs\`" "$tmp/err"
: > "$tmp/bin/present"
out=$(weave "$(block 'program=present kernel=k match=LDG')" html -M cuobjdump="$tmp/none/cuobjdump") && st=0 || st=$?
check "a missing cuobjdump fails the build" test "$st" -ne 0
check "... and says how to get it" grep -q "cuobjdump not found.*make book-deps.*nvidia-cuda-cuobjdump" "$tmp/err"
rm -f "$tmp/bin/present"
out=$(weave "$(block 'program=absent kernel=k')") && st=0 || st=$?
check "a block without match= is an error" grep -q "needs program=, kernel= and match=" "$tmp/err"

# a small program with a 16-byte copy and two instances of a template
cat > "$tmp/sasstest.cu" <<'EOF'
#include <cstddef>
__global__ void copy_v4(float4 *y, const float4 *x, size_t n)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) y[i] = x[i];
}
template <typename T>
__global__ void scale(T *y, const T *x, T a, size_t n)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) y[i] = a * x[i];
}
template __global__ void scale<float>(float *, const float *, float, size_t);
template __global__ void scale<double>(double *, const double *, double, size_t);
int main() { return 0; }
EOF
if ! command -v "$nvcc" >/dev/null 2>&1 || ! [ -x "$cuobjdump" ]; then
    echo "skip the cases that read machine code: no nvcc or no cuobjdump ($cuobjdump)"
    skipped=5
elif ! "$nvcc" -arch=sm_90 -o "$tmp/bin/sasstest" "$tmp/sasstest.cu" 2>"$tmp/err"; then
    check "the test program compiles" false
else
    out=$(weave "$(block 'program=sasstest kernel=copy_v4 match="^LDG%.E%.128"')") && st=0 || st=$?
    check "a block whose pattern matches builds" test "$st" -eq 0
    check "... showing the instruction, without address or encoding" \
        sh -c 'printf "%s\n" "$1" | grep -q "^<pre class=\"sass-listing\"><code>LDG.E.128 R[0-9]*, desc" && ! printf "%s\n" "$1" | grep -q "/\*"' - "$out"
    check "... under a caption that counts and names the kernel and the architecture" \
        has "$out" "1 of [0-9]* instructions of <code>copy_v4</code> (sm_90) match <code>^LDG.E.128</code>"
    out=$(weave "$(block 'program=sasstest kernel=scale match="^LDG"')") && st=0 || st=$?
    check "several instances: the first is taken, and named" has "$out" "scale&lt;.*the first of 2 instances of <code>scale</code>"
    out=$(weave "$(block 'program=sasstest kernel=scale instance="<double>" match=. lines=2')") && st=0 || st=$?
    check "instance= picks one, lines= limits the lines" \
        sh -c 'printf "%s\n" "$1" | tr "\n" " " | grep -q "scale&lt;double&gt;</code> (sm_90) match <code>.</code>; the first 2 are shown" &&
            test "$(printf "%s\n" "$1" | sed -n "/<pre/,/<\/pre>/p" | wc -l)" -eq 2' - "$out"
    out=$(weave "$(block 'program=sasstest kernel=copy_v4 match="^LDG%.E%.128"')" latex) && st=0 || st=$?
    check "the PDF's LaTeX has the caption and the instruction" \
        sh -c 'printf "%s\n" "$1" | tr "\n" " " | grep -q "chunkcaption{.*copy.*v4.*LDG.E.128 R"' - "$out"
    out=$(weave "Text.

$(block 'program=sasstest kernel=copy_v4 match="^HGMMA"')") && st=0 || st=$?
    check "a pattern that matches nothing fails the build" test "$st" -ne 0
    check "... naming the chapter's line and the block" \
        grep -q "c.md:7: sass block program=sasstest kernel=copy_v4 match='^HGMMA': no instruction of copy_v4 (sm_90, [0-9]* instructions) matches" "$tmp/err"
    out=$(weave "$(block 'program=sasstest kernel=no_such_kernel match=LDG')") && st=0 || st=$?
    check "a kernel that is not in the program fails the build" test "$st" -ne 0
    check "... and says so" grep -q "c.md:5: sass block .*: no function of .*/bin/sasstest (sm_90) has no_such_kernel in its name" "$tmp/err"
    out=$(weave "$(block 'program=sasstest kernel=copy_v4 match=LDG arch=sm_80')") && st=0 || st=$?
    check "a program built for another architecture than arch= is a note, not an error" \
        sh -c 'test "$1" -eq 0 && printf "%s\n" "$2" | tr "\n" " " | grep -q "note no-data.*sm_80 code of.*built for sm_90"' - "$st" "$out"
fi
finish
