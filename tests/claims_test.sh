#!/bin/sh
# tests/claims_test.sh [REPO_ROOT]: the weaver's checked claims, on the committed data.
# A true claim reads as written; one false on the reference data fails the build; one true
# there but false on another GPU is marked with that GPU's value; a claim without data or
# with a malformed range is an error; a claim with `*` for the size or dtype holds at every
# one with data, or fails naming where; a key divided by itself is an error. Skipped (77)
# without pandoc.
. "$(dirname "$0")/weave_lib.sh"
ratio="reduce/v3-add-on-load/f32/268435456/gbps / reduce/v2-sequential/f32/268435456/gbps"
weave() {  # weave TEXT: the woven HTML on stdout, pandoc's status as the function's
    printf '# Claims\n\n%s\n' "$1" > "$tmp/c.md"
    pandoc --lua-filter=tools/weave.lua -M data-dir=figures/data -M ref-gpu=nvidia-h200 \
        -M 'gpus=nvidia-h100-80gb-hbm3 nvidia-h200' -M chapter="$tmp/c.md" -t html "$tmp/c.md" 2>"$tmp/err"
}
out=$(weave "[v3 is about twice v2]{.claim expr=\"$ratio\" in=\"1.6:2.4\"}") && st=0 || st=$?
check "a true claim builds" test "$st" -eq 0
check "a true claim reads as written, unmarked" sh -c 'echo "$1" | grep -q "about twice v2" && ! echo "$1" | grep -q claim-fails' - "$out"
out=$(weave "[v3 is three times v2]{.claim expr=\"$ratio\" in=\"2.8:3.2\"}") && st=0 || st=$?
check "a claim false on the reference data fails the build" test "$st" -ne 0
check "... and says so" grep -q "false on the reference data" "$tmp/err"
out=$(weave "[v3 is 1.87 times v2 or more]{.claim expr=\"$ratio\" in=\"1.868:\"}") && st=0 || st=$?
check "a claim true on the reference but not on another GPU builds" test "$st" -eq 0
check "... marked, with that GPU's value" sh -c 'echo "$1" | tr "\n" " " | grep -q "claim-fails.*not on the NVIDIA H100 80GB HBM3: 1.865"' - "$out"
out=$(weave "[nothing]{.claim expr=\"reduce/no-such-version/f32/268435456/gbps\" in=\"0:1\"}") && st=0 || st=$?
check "a claim on a key without data is an error" test "$st" -ne 0
out=$(weave "[bad range]{.claim expr=\"$ratio\" in=\"2\"}") && st=0 || st=$?
check "a malformed range is an error" test "$st" -ne 0
every="reduce/v3-add-on-load/f32/*/gbps / reduce/v2-sequential/f32/*/gbps"
out=$(weave "[v3 is faster than v2 at every size]{.claim expr=\"$every\" in=\"1:\"}") && st=0 || st=$?
check "a claim at every size (*) that holds at each builds" test "$st" -eq 0
out=$(weave "[v3 is a third faster at every size]{.claim expr=\"$every\" in=\"1.3:\"}") && st=0 || st=$?
check "a claim at every size false at one fails the build" test "$st" -ne 0
check "... naming that size" grep -q "false on the reference data.*1048576 [0-9.]*×" "$tmp/err"
out=$(weave "[a third faster from 2^22^ on]{.claim expr=\"$every\" in=\"1.35:\" over=\"4194304,33554432\"}") && st=0 || st=$?
check "over= keeps the sizes listed" test "$st" -eq 0
check "... and another GPU's failing size is named" sh -c 'echo "$1" | tr "\n" " " | grep -q "claim-fails.*not on the NVIDIA H100 80GB HBM3: 4194304 1.34"' - "$out"
out=$(weave "[no such size]{.claim expr=\"$every\" in=\"1:\" over=\"12345\"}") && st=0 || st=$?
check "a size of over= without data is an error" test "$st" -ne 0
out=$(weave "[every type]{.claim expr=\"reduce/v3-add-on-load/*/268435456/gbps / reduce/v2-sequential/*/268435456/gbps\" in=\"1:\"}") && st=0 || st=$?
check "a claim in every dtype (*) builds" test "$st" -eq 0
self="reduce/v3-add-on-load/f32/*/gbps / reduce/v3-add-on-load/f32/*/gbps"
out=$(weave "[v3 is level with itself]{.claim expr=\"$self\" in=\"0.9:1.1\"}") && st=0 || st=$?
check "a ratio of a key to itself, which cannot fail, is an error" test "$st" -ne 0
check "... and says so" grep -q "divides a key by itself" "$tmp/err"
finish
