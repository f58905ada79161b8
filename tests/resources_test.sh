#!/bin/sh
# tests/resources_test.sh [REPO_ROOT]: the weaver's kernel resources, ```{.resources
# program= kernel= [instance=]}``` and [res:PROGRAM/KERNEL/INSTANCE/FIELD]{.r}, on a small
# program compiled here (no GPU needed). A block becomes a table of every matching
# function with its registers (cuobjdump -res-usage REG) and the kernel's own static
# shared memory (without the 1 KiB the system reserves); a kernel that matches nothing
# stops the build with the chapter's line; a key resolves to a number; a key that
# matches several functions is an error. Skipped (77) without pandoc; the cases that
# read machine code are skipped without nvcc or cuobjdump (found as tools/book.mk finds it).
. "$(dirname "$0")/weave_lib.sh"
weave_machine_code Resources
block() { printf '```{.resources %s}\n```' "$1"; }

# a program not built, and a cuobjdump that is not there: no machine code needed
out=$(weave "$(block 'program=absent kernel=k')") && st=0 || st=$?
check "a program not built fails the build" test "$st" -ne 0
check "... naming the chapter's line and saying to run make programs" \
    grep -q "c.md:5: resources block program=absent kernel=k: .*/bin/absent is not built: run \`make programs\`" "$tmp/err"
: > "$tmp/bin/present"
out=$(weave "$(block 'program=present kernel=k')" html -M cuobjdump="$tmp/none/cuobjdump") && st=0 || st=$?
check "a missing cuobjdump fails the build" test "$st" -ne 0
check "... and says how to get it" grep -q "c.md:5: resources block.*cuobjdump not found.*make book-deps" "$tmp/err"
rm -f "$tmp/bin/present"
out=$(weave "$(block 'kernel=k')") && st=0 || st=$?
check "a block without program= is an error" grep -q "needs program= and kernel=" "$tmp/err"
out=$(weave "Text [res:absent/k//speed]{.r}.") && st=0 || st=$?
check "a key with an unknown field is an error" \
    sh -c 'test "$1" -ne 0 && grep -q "c.md:5: resources key .res:absent/k//speed.: field .speed. is none of regs, shared, local, stack" "$2"' - "$st" "$tmp/err"

# a small program: a kernel without shared memory, and two instances of one with 1 KiB
cat > "$tmp/restest.cu" <<'EOF'
#include <cstddef>
__global__ void copy_plain(float *y, const float *x, size_t n)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) y[i] = x[i];
}
template <typename T, int N>
__global__ void tile(T *y, const T *x)
{
    __shared__ T buf[N];
    buf[threadIdx.x] = x[threadIdx.x];
    __syncthreads();
    y[threadIdx.x] = buf[N - 1 - threadIdx.x];
}
template __global__ void tile<float, 256>(float *, const float *);
template __global__ void tile<double, 128>(double *, const double *);
int main() { return 0; }
EOF
if ! command -v "$nvcc" >/dev/null 2>&1 || ! [ -x "$cuobjdump" ]; then
    echo "skip the cases that read machine code: no nvcc or no cuobjdump ($cuobjdump)"
    skipped=9
elif ! "$nvcc" -arch=sm_90 -o "$tmp/bin/restest" "$tmp/restest.cu" 2>"$tmp/err"; then
    check "the test program compiles" false
else
    out=$(weave "$(block 'program=restest kernel=tile')") && st=0 || st=$?
    check "a block builds" test "$st" -eq 0
    check "... a table with a row per instance, its template arguments under the kernel's name" \
        sh -c 'test "$(printf "%s\n" "$1" | grep -c "<code>&lt;[a-z]*, [0-9]*&gt;</code></td>")" -eq 2 &&
            printf "%s\n" "$1" | tr "\n" " " | grep -q "<th[^>]*><code>tile</code></th>"' - "$out"
    reg=$("$cuobjdump" -res-usage "$tmp/bin/restest" | grep -A1 '_Z4tileIfLi256' | sed -n 's/.*REG:\([0-9]*\).*/\1/p')
    check "... the registers cuobjdump reports ($reg) and 1024 bytes of shared memory, the reserved KiB left out" \
        sh -c 'printf "%s\n" "$1" | tr "\n" " " | grep -q "&lt;float, 256&gt;</code></td> *<td[^>]*>$2</td> *<td[^>]*>1024</td> *<td[^>]*>0</td> *<td[^>]*>0</td>"' - "$out" "$reg"
    check "... under a caption naming the program, the kernel and the architecture" \
        has "$out" "<caption>Resources of the kernels of <code>restest</code> matching <code>tile</code> (sm_90), from <code>cuobjdump -res-usage</code>"
    out=$(weave "$(block 'program=restest kernel=tile instance="<double"')" latex) && st=0 || st=$?
    check "instance= keeps one; the PDF's LaTeX is a table" \
        sh -c 'test "$1" -eq 0 && printf "%s\n" "$2" | tr "\n" " " | grep -q "longtable.*tile.*\\\\textless{}double" &&
            ! printf "%s\n" "$2" | grep -q "\\\\textless{}float"' - "$st" "$out"
    out=$(weave "Text.

$(block 'program=restest kernel=no_such_kernel')") && st=0 || st=$?
    check "a kernel that matches nothing fails the build with the chapter's line" \
        sh -c 'test "$1" -ne 0 && grep -q "c.md:7: resources block program=restest kernel=no_such_kernel: no function of .*/bin/restest (sm_90) has no_such_kernel in its name" "$2"' - "$st" "$tmp/err"
    out=$(weave "Registers: [res:restest/tile/double/regs]{.r}, shared [res:restest/copy_plain//shared]{.r}.") && st=0 || st=$?
    check "a key resolves to a number (the registers; 0 bytes of shared memory without __shared__)" \
        sh -c 'test "$1" -eq 0 && printf "%s\n" "$2" | tr "\n" " " | grep -q "title=\"res:restest/tile/double/regs\">[0-9][0-9]*</span>.*title=\"res:restest/copy_plain//shared\">0</span>"' - "$st" "$out"
    out=$(weave "Text.

Ambiguous: [res:restest/tile//regs]{.r}.") && st=0 || st=$?
    check "a key matching several functions fails with the chapter's line" \
        sh -c 'test "$1" -ne 0 && grep -q "c.md:7: resources key .res:restest/tile//regs.: matches 2 functions (tile<.*>; tile<.*>): an instance substring must narrow it to one" "$2"' - "$st" "$tmp/err"
fi
finish
