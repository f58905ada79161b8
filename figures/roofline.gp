# figures/roofline.gp -- a chapter's roofline: every row of the CSV with a rate in TFLOP/s
# and GB/s drawn at its arithmetic intensity (FLOPs per byte moved, from the two rates),
# under the memory roof (the copy ceiling) and the compute ceilings (rows of kind ceiling
# with TFLOP/s: the chapter's own, or, for a chapter that measures none, those of the
# sibling CSV named by roofs_from, measured on the same GPU). Other GPUs' CSVs (other) are
# drawn in the same axes: their roofs dotted, their points open.
#   gnuplot -e "csv='figures/data/nvidia-h200/gemm.csv'; out='roofline.svg'; term='svg'" figures/roofline.gp
if (!exists("csv"))        csv = ''
if (!exists("other"))      other = ''
if (!exists("roofs_from")) roofs_from = ''
if (!exists("out"))        out = 'roofline.svg'
if (!exists("term"))       term = (out[strlen(out)-3:] eq '.pdf') ? 'pdf' : 'svg'
if (!exists("size"))       size = ''   # only rows of this size ('' = every size)
if (!exists("skip"))       skip = 'f16' # an element type left out (it would repeat another's points)
if (term eq 'pdf') {
    set terminal pdfcairo size 6.2in,4.3in enhanced font "Helvetica,9" fontscale 0.7 linewidth 1
} else {
    set terminal svg size 960,720 dynamic enhanced font "Helvetica,13" linewidth 1.2 background rgb "white"
}
set output out
set datafile separator ","
q(s) = "'" . s . "'"
exists_file(f) = strlen(f) > 0 && system('test -s ' . q(f) . ' && echo 1 || echo 0') + 0
if (!exists_file(csv)) {
    unset border; unset tics; unset key
    set xrange [0:1]; set yrange [0:1]
    set label 1 "No measurements yet" at 0.5, 0.5 center font ",20" tc rgb "#5f6368"
    plot 2 notitle
    if (term eq 'svg') { unset output; system(sprintf("echo '<!-- no data: no CSV -->' >> %s", q(out))) }
    exit
}
gpus = csv . ' ' . other
AWK(f, prog) = 'tr -d "\r" < ' . q(f) . ' | awk -F, -v OFS=, -v S=' . q(size) . ' -v X=' . q(skip) . ' ' . q(prog)
dir(f) = system('dirname ' . q(f))
slug(f) = system('basename $(dirname ' . q(f) . ')')
# the CSV whose compute ceilings are drawn for GPU file f: its own, or the sibling's
roofcsv(f) = (system(AWK(f, '$2 == "ceiling" && $7 != "" { n++ } END { print n + 0 }')) + 0 > 0 || strlen(roofs_from) == 0) \
    ? f : dir(f) . '/' . roofs_from . '.csv'
bw(f) = system(AWK(f, '$1 == "copy-ceiling" { print $6 }')) + 0                      # GB/s
roofs(f) = exists_file(roofcsv(f)) ? system(AWK(roofcsv(f), '$2 == "ceiling" && $7 != "" { printf "%s ", $1 }')) : ''
roof(f, name) = system(AWK(roofcsv(f), '$1 == "' . name . '" { print $7 }')) + 0      # TFLOP/s
SEL = '$2 != "ceiling" && $3 != X && $6 != "" && $7 != "" && $10 == "pass" && (S == "" || $4 == S)'
versions = system(AWK(csv, 'NR > 1 && ' . SEL . ' && !s[$1 "/" $3]++ { printf "%s/%s ", $1, $3 }'))
# the x axis from a decade below the smallest intensity measured (at most 1) to 10^4
xmin = 1.0
do for [g = 1:words(gpus)] {
    lo = system(AWK(word(gpus, g), 'NR > 1 && ' . SEL . ' { x = $7 * 1000 / $6; if (m == "" || x < m) m = x } END { print (m == "" ? 1 : m) }')) + 0
    if (lo > 0 && lo < xmin) { xmin = lo }
}
if (xmin < 1) { xmin = 10 ** floor(log10(xmin) - 0.3) }
set logscale xy 10
set xrange [xmin : 10000]
set yrange [0.1 * xmin : 2000]
set xlabel "arithmetic intensity (FLOPs per byte of the inputs and the output, each moved once)"
set ylabel "throughput (TFLOP/s)"
set grid xtics ytics mxtics mytics lc rgb "#e3e6ea" lw 1 dt 1, lc rgb "#f1f3f4" lw 1 dt 1
set border 3 lc rgb "#444444"
set tics nomirror out
set key outside bottom center horizontal maxrows 6 font ",10" samplen 1 noenhanced
array C[12] = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", \
               "#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#393b79", "#ad494a"]
# every GPU's memory roof and highest compute roof, and the reference's compute roofs, read
# once here (each is a run of awk), not at every point of the curves
highest(f) = exists_file(roofcsv(f)) ? system(AWK(roofcsv(f), '$2 == "ceiling" && $7 != "" && $7 + 0 > m { m = $7 + 0 } END { print m + 0 }')) + 0 : 0
ngpu = words(gpus)
array BW[ngpu]
array TOP[ngpu]  # the memory roof rises to the highest compute roof, or (none measured) on
do for [g = 1:ngpu] {
    BW[g] = bw(word(gpus, g))
    h = highest(word(gpus, g))
    TOP[g] = h > 0 ? h : 1e9
}
ref_roofs = roofs(csv)
nroof = words(ref_roofs)
array R[nroof > 0 ? nroof : 1]
do for [i = 1:nroof] {
    R[i] = roof(csv, word(ref_roofs, i))
    set label i + 100 sprintf("%s %.0f TFLOP/s", word(ref_roofs, i), R[i]) at xmin * 1.2, R[i] * 1.15 left font ",10" tc rgb "#5f6368"
}
set label 99 sprintf("memory: %.0f GB/s", BW[1]) at xmin * 2, BW[1] * xmin * 2 / 1000 * 1.3 left rotate by 45 font ",10" tc rgb "#5f6368"
rows(f, v) = '< ' . AWK(f, 'NR > 1 && $1 "/" $3 == "' . v . '" && ' . SEL . ' { print $7 * 1000 / $6, $7 }')
roofline(g, x) = x * BW[g] / 1000 < TOP[g] ? x * BW[g] / 1000 : TOP[g]
cmd = 'plot roofline(1, x) with lines lc rgb "#9aa0a6" dt 2 notitle'
if (nroof > 0) {
    cmd = cmd . ', for [i = 1:nroof] (x * BW[1] / 1000 < R[i] ? 1/0 : R[i]) with lines lc rgb "#9aa0a6" dt 2 notitle'
}
if (ngpu > 1) {
    cmd = cmd . ', for [g = 2:ngpu] roofline(g, x) with lines lc rgb "#5f6368" dt 3 title "roof: " . slug(word(gpus, g))'
}
cmd = cmd . ', for [i = 1:words(versions)] rows(csv, word(versions, i)) using 1:2 with points pt (i <= 12 ? 7 : 5) ps 0.9 lc rgb C[(i - 1) % 12 + 1] title word(versions, i)'
if (ngpu > 1) {
    cmd = cmd . ', for [g = 2:ngpu] for [i = 1:words(versions)] rows(word(gpus, g), word(versions, i)) using 1:2 with points pt 6 ps 0.9 lc rgb C[(i - 1) % 12 + 1] notitle'
}
eval(cmd)
if (term eq 'svg') { unset output; system(sprintf("echo '<!-- y axis: log -->' >> %s", q(out))) }
