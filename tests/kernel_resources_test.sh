#!/bin/sh
# tests/kernel_resources_test.sh [REPO_ROOT]: the weaver's ::: {.kernel-resources} div, on
# a CSV made here: a table per GPU with data of what each version's heaviest kernel needs
# (the harness's last five columns), shared memory in KiB, a row per version with the
# columns filled, none for a row without them; a GPU whose CSV has no such row says so;
# the keys of the new columns resolve. Skipped (77) without pandoc.
. "$(dirname "$0")/weave_lib.sh"
mkdir -p "$tmp/data/gpu-a" "$tmp/data/gpu-b"
head='version,kind,dtype,size,time_us,gbps,tflops,pct_sol,max_rel_err,status,kernels,regs,smem,local,occupancy'
cat > "$tmp/data/gpu-a/t.csv" <<CSV
$head
copy-ceiling,ceiling,f32,1024,1.000,4000.0,,100.0,,pass,,,,,
v1-plain,ours,f32,1024,2.000,2000.0,,50.0,1.00e-07,pass,1,32,0,0,100.0
v2-tiled,ours,f32,1024,1.500,2666.7,,66.7,1.00e-07,pass,2,128,49152,16,25.0
v3-other,ours,f32,2048,1.500,2666.7,,66.7,1.00e-07,pass,1,64,1024,0,50.0
lib,peer,f32,1024,1.800,2222.2,,55.6,1.00e-07,pass,,,,,
CSV
printf '%s\ncopy-ceiling,ceiling,f32,1024,1.000,3000.0,,100.0,,pass\n' \
    'version,kind,dtype,size,time_us,gbps,tflops,pct_sol,max_rel_err,status' > "$tmp/data/gpu-b/t.csv"
for g in gpu-a gpu-b; do printf 'gpu: GPU %s\ndate: 2026-12-02T00:00:00Z\nsources_sha1: x\n' "$g" > "$tmp/data/$g/t.provenance"; done
weave() {  # weave TEXT: the woven HTML on stdout, pandoc's status as the function's
    printf '# Kernel resources\n\n%s\n' "$1" > "$tmp/c.md"
    pandoc --lua-filter=tools/weave.lua -M data-dir="$tmp/data" -M ref-gpu=gpu-a -M 'gpus=gpu-a gpu-b' \
        -M chapter="$tmp/c.md" -t html "$tmp/c.md" 2>"$tmp/err"
}
div='::: {.kernel-resources csv=t dtype=f32 size=1024}
What each version needs.
:::'
out=$(weave "$div") && st=0 || st=$?
check "a kernel-resources div builds" test "$st" -eq 0
check "... a row per version with the columns at that size" \
    sh -c 'printf "%s" "$1" | grep -q "<code>v1-plain</code>" && printf "%s" "$1" | grep -q "<code>v2-tiled</code>"' - "$out"
check "... none for a size not asked for, a peer or a ceiling without them" \
    sh -c '! printf "%s" "$1" | grep -q "v3-other\|<code>lib</code>\|copy-ceiling"' - "$out"
check "... shared memory in KiB, occupancy in percent" has "$out" "<td[^>]*>48</td>.*<td[^>]*>16</td>.*<td[^>]*>25</td>"
check "... the caption, then where it was measured" has "$out" "What each version needs. Measured on"
check "a GPU whose data has none of the columns says so" has "$out" "No kernel resources in the GPU gpu-b"
out=$(weave "It needs [t/v2-tiled/f32/1024/regs]{.r} registers and [t/v2-tiled/f32/1024/smem]{.r}.") && st=0 || st=$?
check "keys of the new columns resolve" test "$st" -eq 0
check "... to the register count" has "$out" ">128</span> registers"
check "... and the shared memory in KiB" has "$out" ">48.*KiB</span>"
finish
