#!/bin/sh
# tests/gpus_page_test.sh [REPO_ROOT]: the page of the GPUs measured, on the committed data:
# every chapter with data has its table, with every GPU that measured it; the claims that
# fail on the second GPU are listed with its values; the contents page links the page.
# Skipped (77) without pandoc.
. "$(dirname "$0")/weave_lib.sh"
chapters=$(ls chapters/*.md | tr '\n' ' ')
page() {  # page MODE: a generated page as plain text
    pandoc --metadata-file=book/metadata.yaml --lua-filter=tools/weave.lua -M data-dir=figures/data \
        -M ref-gpu=nvidia-h200 -M "chapters=$chapters" -M 'gpus=nvidia-h100-80gb-hbm3 nvidia-h200' \
        -M "$1=true" -f markdown -t plain /dev/null 2>"$tmp/err"
}
page gpus-page > "$tmp/gpus.txt" && st=0 || st=$?
check "the GPUs page builds" test "$st" -eq 0
for c in chapters/*.md; do
    title=$(sed -n 's/^# //p' "$c" | head -1 | sed 's/`//g')
    csv=$(basename "$c" .md | sed 's/^[0-9]*-//; s/-/_/g')
    [ -f "figures/data/nvidia-h200/$csv.csv" ] || continue
    check "the page has '$title'" grep -qF "$title" "$tmp/gpus.txt"
done
check "both GPUs appear where both measured (reduce)" sh -c \
    'sed -n "/^Reduce/,/^Elementwise/p" "$1" | grep -q "NVIDIA H200" && sed -n "/^Reduce/,/^Elementwise/p" "$1" | grep -q "NVIDIA H100"' - "$tmp/gpus.txt"
check "each peer's ratio is given (reduce: cub)" grep -q "cub .*×" "$tmp/gpus.txt"
check "the second GPU's failing claims are counted" grep -q "of the [0-9]* claims with data on this GPU do not hold on it:" "$tmp/gpus.txt"
check "... and listed with the measured value (measuring: the cached copy)" sh -c \
    'tr "\n" " " < "$1" | grep -q "cached copy stays under.*measured 1\.[0-9]*×"' - "$tmp/gpus.txt"
page index-page > "$tmp/index.txt" && st=0 || st=$?
pandoc --metadata-file=book/metadata.yaml --lua-filter=tools/weave.lua -M data-dir=figures/data \
    -M ref-gpu=nvidia-h200 -M "chapters=$chapters" -M index-page=true -f markdown -t html /dev/null 2>"$tmp/err" \
    | grep -q 'href="gpus.html"' && st=0 || st=1
check "the contents page links it" test "$st" -eq 0
finish
