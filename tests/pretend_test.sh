#!/bin/sh
# tests/pretend_test.sh PROGRAM "VERSION..." SIZE...: checks PROGRAM as if the GPU were an
# sm_80 (--pretend-arch sm_80). Each named VERSION must be listed as skipped with
# "needs sm_90" at least once and never run; every other check must pass (exit 0).
# Exit 77 without a GPU.
program=$1 hopper=$2
shift 2
out=$("$program" --pretend-arch sm_80 --check "$@" 2>&1)
rc=$?
[ $rc -eq 77 ] && { echo "no CUDA device: skipping"; exit 77; }
echo "$out"
failed=0
[ $rc -eq 0 ] || { echo "FAIL: exit $rc, expected 0"; failed=1; }
echo "$out" | grep -q 'kernels run as sm_80' || { echo "FAIL: the program does not say it runs as sm_80"; failed=1; }
for v in $hopper; do
    echo "$out" | grep -Eq "^skip +$v[-[:space:]].*\(needs sm_90\)" ||
        { echo "FAIL: $v is not skipped with 'needs sm_90'"; failed=1; }
    echo "$out" | grep -Eq "^(pass|FAIL|miss) +$v[-[:space:]]" && { echo "FAIL: $v ran"; failed=1; }
done
[ $failed -eq 0 ] && echo "ok: $hopper skipped as needing sm_90, every other check passed"
exit $failed
