#!/bin/sh
# tests/sanitize.sh TOOL PROGRAM SIZE...: run PROGRAM --check at SIZEs under
# compute-sanitizer's TOOL (memcheck, racecheck, initcheck, synccheck); exit 77 when there is no GPU or no
# compute-sanitizer, 1 when the sanitizer reports anything.
tool=$1 program=$2
shift 2
"$program" --slug >/dev/null 2>&1
rc=$?
[ $rc -eq 77 ] && { echo "no CUDA device: skipping"; exit 77; }
[ $rc -eq 0 ] || exit $rc
command -v compute-sanitizer >/dev/null 2>&1 || { echo "compute-sanitizer not found: skipping"; exit 77; }
exec compute-sanitizer --tool "$tool" --error-exitcode 1 "$program" --check "$@"
