#!/bin/sh
# tests/repeat_test.sh PROGRAM RUNS ARG...: runs PROGRAM ARG... RUNS times and requires
# every version that prints "bits VERSION DTYPE SIZE HASH" (a version that promises the
# same result on every run) to print the same hash each time. Exit 77 without a GPU.
program=$1 runs=$2
shift 2
"$program" --slug >/dev/null 2>&1
rc=$?
[ $rc -eq 77 ] && { echo "no CUDA device: skipping"; exit 77; }
[ $rc -eq 0 ] || exit $rc
all=$(mktemp)
trap 'rm -f "$all"' EXIT
i=0
while [ $i -lt "$runs" ]; do
    "$program" "$@" > "$all.run" 2>&1 || { cat "$all.run"; echo "FAIL: run $((i + 1)) exited $?"; rm -f "$all.run"; exit 1; }
    grep '^bits ' "$all.run" >> "$all"
    i=$((i + 1))
done
rm -f "$all.run"
lines=$(wc -l < "$all")
[ "$lines" -gt 0 ] || { echo "FAIL: no version printed its output's bits"; exit 1; }
keys=$(awk '{print $2, $3, $4}' "$all" | sort -u | wc -l)
distinct=$(sort -u "$all" | wc -l)
sort -u "$all"
if [ "$keys" -ne "$distinct" ]; then
    echo "FAIL: $distinct different results for $keys (version, type, size) pairs over $runs runs"
    exit 1
fi
echo "ok: $keys (version, type, size) results, the same bits in each of $runs runs"
