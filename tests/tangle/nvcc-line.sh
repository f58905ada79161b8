#!/usr/bin/env bash
# The #line directives written by tangle must make nvcc name the Markdown
# line of errors planted in chunks that another chapter's root uses.
#
# usage: tests/tangle/nvcc-line.sh TANGLE_BINARY
# Exits 77 (CTest's "skipped") when nvcc is not available.
set -eu
export LC_ALL=C

if [ $# -ne 1 ]; then
    echo "usage: $0 TANGLE_BINARY" >&2
    exit 2
fi
TANGLE=$(realpath "$1")
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
if [ ! -x "$NVCC" ]; then
    echo "skip: nvcc not found"
    exit 77
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
mkdir chapters

# Errors are planted in a nested chunk (A), in the enclosing chunk after a
# reference (B: checks the re-synchronising #line), and in the root of the
# other chapter after a reference (C).
cat >chapters/01-main.md <<'MARKDOWN'
# The program

```{.cuda file=code/scale/scale.cu}
#include <cuda_runtime.h>

<<scale-kernel>>

int main()
{
    undeclared_c = 3; // planted error C
    float *x;
    cudaMalloc(&x, 256 * sizeof(float));
    scale<<<1, 256>>>(x, 2.0f);
    cudaDeviceSynchronize();
    cudaFree(x);
    return 0;
}
```
MARKDOWN
cat >chapters/02-kernel.md <<'MARKDOWN'
# The kernel

The kernel is built from two chunks.

```{.cuda #scale-kernel}
__global__ void scale(float *x, float factor)
{
    <<scale-body>>
    undeclared_b = 2; // planted error B
}
```

Its body:

```{.cuda #scale-body}
int i = threadIdx.x;

undeclared_a = 1; // planted error A
x[i] = factor * x[i];
```
MARKDOWN

passed=0
failed=0
ok() { echo "ok $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }

# 1. Each planted error is reported at its Markdown line, as FILE(LINE).
if ! "$TANGLE" chapters/*.md; then
    fail nvcc-error-line "tangle failed"
elif "$NVCC" -c code/scale/scale.cu -o scale.o >nvcc.log 2>&1; then
    fail nvcc-error-line "nvcc accepted the planted errors"
else
    missing=""
    for spec in 02-kernel.md:A 02-kernel.md:B 01-main.md:C; do
        file=chapters/${spec%:*} mark=${spec#*:}
        line=$(grep -n "planted error $mark" "$file" | cut -d: -f1)
        ident=undeclared_$(echo "$mark" | tr A-C a-c)
        if ! grep -F "$file($line): error:" nvcc.log | grep -q "$ident"; then
            missing="$missing $file($line)"
        fi
    done
    if [ -n "$missing" ]; then
        fail nvcc-error-line "not reported at$missing; nvcc said: $(head -c 800 nvcc.log)"
    else
        ok nvcc-error-line
    fi
fi

# 2. With the errors removed the tangled file compiles without a warning.
sed -i '/planted error/d' chapters/*.md
if ! "$TANGLE" chapters/*.md; then
    fail nvcc-clean-compile "tangle failed"
elif ! "$NVCC" -c -lineinfo -Werror all-warnings -Xcompiler -Wall,-Wextra \
    code/scale/scale.cu -o scale.o >nvcc.log 2>&1; then
    fail nvcc-clean-compile "$(head -c 600 nvcc.log)"
elif [ -s nvcc.log ]; then
    fail nvcc-clean-compile "unexpected output: $(head -c 600 nvcc.log)"
else
    ok nvcc-clean-compile
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
