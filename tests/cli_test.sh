#!/bin/sh
# tests/cli_test.sh PROGRAM: the command-line contract that holds with or without a GPU.
program=$1
passed=0 failed=0
expect() {  # expect STATUS ARGS...: PROGRAM ARGS must exit with STATUS
    want=$1; shift
    "$program" "$@" >/dev/null 2>&1
    got=$?
    if [ "$got" -eq "$want" ]; then passed=$((passed + 1)); echo "ok   exit $got: $*"
    else failed=$((failed + 1)); echo "FAIL exit $got, expected $want: $*"; fi
}
expect 0 --help
expect 0 --list
expect 2 --no-such-option
expect 2 --version no-such-version --check
expect 2 --n
expect 2 --csv out.csv
expect 2 --reps 0
expect 2 --dtype f99 --check
# sizes and numbers are checked before the GPU is looked for: 2 with or without a GPU
expect 2 --check 12x
expect 2 --check abc
expect 2 --n 0
expect 2 --n 0 --bench
expect 2 --seed abc --check
expect 2 --seed -1 --check
expect 2 --reps 5x --bench
expect 2 --pretend-arch 80 --check
"$program" --list | grep -q . || { failed=$((failed + 1)); echo "FAIL --list printed nothing"; }
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
