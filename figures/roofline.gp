# figures/roofline.gp -- a roofline of a compute-bound chapter: every row of the CSV with
# a rate in TFLOP/s and GB/s drawn at its arithmetic intensity (FLOPs per byte moved,
# from the two rates), under the memory roof (the copy ceiling) and the chapter's compute
# ceilings (rows of kind ceiling with TFLOP/s).
#   gnuplot -e "csv='figures/data/nvidia-h200/gemm.csv'; out='roofline.svg'; term='svg'" figures/roofline.gp
if (!exists("csv"))  csv = ''
if (!exists("out"))  out = 'roofline.svg'
if (!exists("term")) term = (out[strlen(out)-3:] eq '.pdf') ? 'pdf' : 'svg'
if (!exists("size")) size = ''   # only rows of this size ('' = every size)
if (!exists("skip")) skip = 'f16' # an element type left out (it would repeat another's points)
if (term eq 'pdf') {
    set terminal pdfcairo size 6.2in,4.3in enhanced font "Helvetica,9" fontscale 0.7 linewidth 1
} else {
    set terminal svg size 960,720 dynamic enhanced font "Helvetica,13" linewidth 1.2 background rgb "white"
}
set output out
set datafile separator ","
q(s) = "'" . s . "'"
have = strlen(csv) > 0 && system('test -s ' . q(csv) . ' && echo 1 || echo 0') + 0
if (!have) {
    unset border; unset tics; unset key
    set xrange [0:1]; set yrange [0:1]
    set label 1 "No measurements yet" at 0.5, 0.5 center font ",20" tc rgb "#5f6368"
    plot 2 notitle
    if (term eq 'svg') { unset output; system(sprintf("echo '<!-- no data: no CSV -->' >> %s", q(out))) }
    exit
}
AWK(prog) = 'tr -d "\r" < ' . q(csv) . ' | awk -F, -v OFS=, -v S=' . q(size) . ' -v X=' . q(skip) . ' ' . q(prog)
bw = system(AWK('$1 == "copy-ceiling" { print $6 }')) + 0                  # GB/s
roofs = system(AWK('$2 == "ceiling" && $7 != "" { printf "%s ", $1 }'))     # compute ceilings
roof(name) = system(AWK('$1 == "' . name . '" { print $7 }')) + 0            # TFLOP/s
versions = system(AWK('NR > 1 && $2 != "ceiling" && $3 != X && $6 != "" && $7 != "" && $10 == "pass" && (S == "" || $4 == S) && !s[$1 "/" $3]++ { printf "%s/%s ", $1, $3 }'))
set logscale xy 10
set xrange [1 : 10000]
set yrange [0.1 : 2000]
set xlabel "arithmetic intensity (FLOPs per byte of the inputs and the output, each moved once)"
set ylabel "throughput (TFLOP/s)"
set grid xtics ytics mxtics mytics lc rgb "#e3e6ea" lw 1 dt 1, lc rgb "#f1f3f4" lw 1 dt 1
set border 3 lc rgb "#444444"
set tics nomirror out
set key outside bottom center horizontal maxrows 6 font ",10" samplen 1 noenhanced
array C[12] = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", \
               "#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#393b79", "#ad494a"]
do for [i = 1:words(roofs)] {
    r = roof(word(roofs, i))
    set label i + 100 sprintf("%s %.0f TFLOP/s", word(roofs, i), r) at 1.2, r * 1.15 left font ",10" tc rgb "#5f6368"
}
set label 99 sprintf("memory: %.0f GB/s", bw) at 2, bw * 2 / 1000 * 1.3 left rotate by 45 font ",10" tc rgb "#5f6368"
rows(v) = '< ' . AWK('NR > 1 && $1 "/" $3 == "' . v . '" && $6 != "" && $7 != "" && $10 == "pass" && (S == "" || $4 == S) { print $7 * 1000 / $6, $7 }')
plot for [i = 1:words(roofs)] (x * bw / 1000 < roof(word(roofs, i)) ? x * bw / 1000 : roof(word(roofs, i))) \
        with lines lc rgb "#9aa0a6" dt 2 notitle, \
     for [i = 1:words(versions)] rows(word(versions, i)) using 1:2 with points pt (i <= 12 ? 7 : 5) ps 0.9 \
        lc rgb C[(i - 1) % 12 + 1] title word(versions, i)
if (term eq 'svg') { unset output; system(sprintf("echo '<!-- y axis: log -->' >> %s", q(out))) }
