#!/bin/sh
# tools/bench.sh PROGRAM...: check and time chapter programs on this machine's GPU and
# write figures/data/<gpu-slug>/<program>.csv with its provenance beside it; then add
# the PyTorch peer rows where PyTorch is installed (optional). BENCH_FLAGS_<program>, where
# set (the Makefile sets it for the chapters that need one), is passed to its --bench.
set -u
status=0
for p in "$@"; do
    bin=build/bin/$p
    slug=$("$bin" --slug)
    rc=$?
    if [ $rc -eq 77 ]; then
        echo "bench: no CUDA device on this machine; nothing measured" >&2
        exit 0
    fi
    [ $rc -eq 0 ] || exit $rc
    dir=figures/data/$slug
    mkdir -p "$dir"
    echo "== $p on $slug -> $dir/$p.csv"
    eval "flags=\${BENCH_FLAGS_$p:-}"
    # shellcheck disable=SC2086  # the flags are words
    "$bin" --bench $flags --csv "$dir/$p.csv" || status=1
    if python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
        python3 tools/torch_peers.py "$p" "$dir/$p.csv" || status=1
    else
        echo "bench: PyTorch with CUDA not found: no torch peer rows (optional)"
    fi
done
exit $status
