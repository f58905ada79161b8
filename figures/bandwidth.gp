# figures/bandwidth.gp -- one metric (GB/s by default) against problem size for
# every version of a chapter, from the measured CSVs (figures/data/*/NAME.csv).
#
# Usage (all parameters are gnuplot strings given with -e; only csv and out
# are required):
#   gnuplot -e "csv='figures/data/nvidia-h100-80gb-hbm3/reduce.csv'; \
#               other='figures/data/my-gpu/reduce.csv'; \
#               out='build/figures/reduce-bandwidth.svg'; term='svg'" \
#           figures/bandwidth.gp
#
#   csv      reference GPU's CSV (may be missing: a "no data yet" placeholder
#            figure is drawn instead of failing)
#   other    space separated CSVs of readers' GPUs, drawn in the same axes
#            with open points and dotted lines ('' = none)
#   out      output file
#   term     'svg' (HTML) or 'pdf' (pdfcairo, for LaTeX); default from out
#   metric   CSV column on the y axis: gbps (default), tflops, time_us, ...
#   dtype    only rows of this dtype (default: the dtype of the first row)
#   peer     space separated peer versions to draw (default: all kind=peer)
#   ceiling  space separated ceiling versions (default: all kind=ceiling);
#            each is a labelled horizontal line at its value at the largest size
#            (none with metric='time_us': a ceiling's time is of its own array)
#   title    plot title (default: none; the caption says what it is)
#   only     space separated "ours" versions to draw (default: all kind=ours)
#   x        'size' (default): x is the size, a count; or 'cols': sizes are
#            ROWSxCOLS, x is COLS, and only rows with ROWS*COLS == total are drawn;
#            or 'shape': sizes are categories (any strings, e.g. 16x64x256x256:2),
#            drawn at x = 1..n in the order of `shapes`, each labelled below the axis
#   total    with x='cols', the element count of the shapes drawn
#   shapes   with x='shape', space separated sizes to draw, in order (default: every
#            size of the reference CSV that is not a plain count, in CSV order)
#   labels   with x='shape', the tick labels, separated by | ("\n" starts a new line,
#            enhanced text: 2^{20}); a label left out or empty is its size with x
#            written as × and the part after the first colon on a second line
#   xlabel   the x axis label (default: elements, columns (...), or shape)
#   floor    with x='shape' and metric='time_us', a version whose pct_sol is of the memory
#            floor: over each shape a black bar at that version's time times its pct_sol
#   cross    with x='shape', two versions 'A B': the shape from which A is faster than B
#            (less time, or more of any other metric) at every shape drawn to its right
#            is marked by a dashed line before its group, labelled ('' = none)
#
# Rows with status=fail are left out, and so are the sizes the mode does not draw
# (x='size': shape strings; x='cols': other shapes; x='shape': sizes not in `shapes`).
# With x='shape' the reference GPU's values are bars, one group per shape (the versions,
# then the peers, hatched), and the other GPUs' are black open points on the bars'
# positions, a point type per GPU.
# The GPU names come from the .provenance files beside the CSVs.
#
# For tests/book_test.sh an SVG ends with XML comments: the y axis against the largest
# point and ceiling drawn; with x='shape', the shapes where nothing was drawn, if any;
# or, for the placeholder, why there is no data (no CSV, or no row of it drawn).

if (!exists("csv"))     csv = ''
if (!exists("other"))   other = ''
if (!exists("out"))     out = 'bandwidth.svg'
if (!exists("term"))    term = (out[strlen(out)-3:] eq '.pdf') ? 'pdf' : 'svg'
if (!exists("metric"))  metric = 'gbps'
if (!exists("dtype"))   dtype = ''
if (!exists("peer"))    peer = ''
if (!exists("ceiling")) ceiling = ''
if (!exists("floor"))   floor = ''
if (!exists("title"))   title = ''
if (!exists("only"))    only = ''
if (!exists("x"))       x = 'size'
if (!exists("total"))   total = '0'
if (!exists("shapes"))  shapes = ''
if (!exists("labels"))  labels = ''
if (!exists("xlabel"))  xlabel = ''
if (!exists("cross"))   cross = ''

# ---------------------------------------------------------------- terminal
if (term eq 'pdf') {
    set terminal pdfcairo size 6.2in,4.3in enhanced font "Helvetica,9" fontscale 0.7 linewidth 1
    small = ",8"
    tiny = ",7"
} else {
    set terminal svg size 960,720 dynamic enhanced font "Helvetica,13" linewidth 1.2 background rgb "white"
    small = ",11"
    tiny = small
}
set output out
set datafile separator ","

# ---------------------------------------------------------------- helpers (awk)
q(s) = "'" . s . "'"
exists_file(f) = (strlen(f) > 0) && (system('test -s ' . q(f) . ' && echo 1 || echo 0') + 0)
# column number of `metric` in the header of f
col(f) = system('cat ' . q(f) . ' 2>/dev/null | tr -d "\r" | awk -F, -v m=' . q(metric) . ' ' . q('NR==1 { for (i = 1; i <= NF; i++) if ($i == m) c = i } END { print c+0 }')) + 0
gpu_name(f) = system('p=' . q(f) . '; sed -n "s/^gpu: *//p" "${p%.csv}.provenance" 2>/dev/null | head -1')
# awk prologue: fields, filters on dtype / numeric size / pass, metric column m
# which sizes count, and the size field rewritten to its x: (x='cols') its column
# count, (x='shape') its position in `shapes` (S)
XFN = (x eq 'cols') ? 'function xv(s, a) { split(s, a, "x"); return (a[1] * a[2] == T) ? a[2] + 0 : -1 } ' : \
      (x eq 'shape') ? 'function xv(s, a, n, i) { n = split(S, a, " "); for (i = 1; i <= n; i++) if (a[i] == s) return i; return -1 } ' : ''
XOK = (x eq 'cols') ? '($2 == "ceiling" || ($4 ~ /^[0-9]+x[0-9]+$/ && ($4 = xv($4)) > 0))' : \
      (x eq 'shape') ? '($2 == "ceiling" || ($4 = xv($4)) > 0)' : '$4 ~ /^[0-9]+$/'
AWK(f, prog) = 'cat ' . q(f) . ' 2>/dev/null | tr -d "\r" | awk -F, -v OFS=, -v T=' . total . ' -v S=' . q(shapes) . ' -v d=' . q(dtype) . ' -v m=' . col(f) . ' ' . q(XFN . 'NR>1 && m>0 && (d=="" || $3==d || $2=="ceiling") && ' . XOK . ' && $m != "" && $10 != "fail" ' . prog)
# distinct versions of a kind, in CSV order
versions(f, kind) = system(AWK(f, '&& $2=="' . kind . '" && !s[$1]++ { printf "%s ", $1 }'))
# rows of one version sorted by size, for plotting ('< command' data source)
rows(f, v) = '< ' . AWK(f, '&& $1=="' . v . '"') . ' | sort -t, -k4,4n'
# value of a version at its largest size
at_largest(f, v) = system(AWK(f, '&& $1=="' . v . '" && $4+0 >= b { b = $4+0; x = $m } END { print x+0 }')) + 0

ok = exists_file(csv)
have_csv = ok
if (ok) {
    if (dtype eq '') { dtype = system('awk -F, ' . q('NR==2 { print $3 }') . ' ' . q(csv)) }
    if (x eq 'shape' && shapes eq '') {
        shapes = system('tr -d "\r" < ' . q(csv) . ' | awk -F, ' . q('NR>1 && $2 != "ceiling" && $4 !~ /^[0-9]+$/ && !s[$4]++ { printf "%s ", $4 }'))
    }
    ours = (strlen(only) > 0) ? only : versions(csv, 'ours')
    if (peer eq '') { peer = versions(csv, 'peer') }
    if (ceiling eq '') { ceiling = versions(csv, 'ceiling') }
    # a ceiling's time is that of its own array, not of the figure's sizes: on a time axis, none
    if (metric eq 'time_us') { ceiling = '' }
    ok = words(ours) + words(peer) > 0
}

# ---------------------------------------------------------------- placeholder
if (!ok) {
    # a short banner instead of an empty plot
    unset output
    if (term eq 'pdf') {
        set terminal pdfcairo size 6.2in,1.4in enhanced font "Helvetica,9"
    } else {
        set terminal svg size 960,200 enhanced font "Helvetica,13" background rgb "white"
    }
    set output out
    set margins 0, 0, 0, 0
    unset border; unset tics; unset key
    set xrange [0:1]; set yrange [0:1]
    set label 1 "No measurements yet" at 0.5, 0.56 center font ",20" tc rgb "#5f6368"
    set label 2 "run  make bench  on a GPU to draw this figure" at 0.5, 0.44 center tc rgb "#5f6368"
    plot 2 notitle
    if (term eq 'svg') {
        unset output
        system(sprintf("echo '<!-- no data: %s -->' >> %s", have_csv ? 'nothing drawn from the CSV' : 'no CSV', q(out)))
    }
    exit
}

# ---------------------------------------------------------------- style
# 12 distinguishable colours for "ours" (cycled), dark tones for peers
array C[12] = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", \
               "#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#393b79", "#ad494a"]
array P[6] = [7, 5, 9, 11, 13, 15]          # filled point types, cycled
array PO[6] = [6, 4, 8, 10, 12, 14]         # the same, open (readers' GPUs)
array PC[4] = ["#000000", "#6a3d9a", "#b15928", "#005f73"]
color(i) = C[(i - 1) % 12 + 1]
pt(i) = P[(i - 1) % 6 + 1]
pto(i) = PO[(i - 1) % 6 + 1]
pcolor(i) = PC[(i - 1) % 4 + 1]

label = (metric eq 'gbps') ? 'effective bandwidth (GB/s)' : \
        (metric eq 'tflops') ? 'throughput (TFLOP/s)' : \
        (metric eq 'time_us') ? 'time (µs)' : \
        (metric eq 'pct_sol') ? '% of speed of light' : metric
unit = (metric eq 'gbps') ? 'GB/s' : (metric eq 'tflops') ? 'TFLOP/s' : (metric eq 'time_us') ? 'µs' : ''

if (strlen(title) > 0) { set title title }
# a count as 2^k where it is a power of two
pow2(v) = (2**floor(log(v) / log(2) + 0.5) == v) ? sprintf("2^{%d}", floor(log(v) / log(2) + 0.5)) : sprintf("%.0f", v)
set xlabel ((strlen(xlabel) > 0) ? xlabel : (x eq 'cols') ? sprintf("columns (rows × columns = %s)", pow2(total + 0)) : \
            (x eq 'shape') ? "shape" : "elements")
set ylabel label
set grid xtics ytics lc rgb "#e3e6ea" lw 1 dt 1
set border 3 lc rgb "#444444"
set tics nomirror out

# every GPU's CSV (the reference first), and an awk test: is this row's version drawn?
files = csv . ' ' . other
nfiles = words(files)
isdrawn = 'index(" ' . ours . ' ' . peer . ' ", " " $1 " ")'
isceiling = '($2 == "ceiling" && index(" ' . ceiling . ' ", " " $1 " "))'

# ---------------------------------------------------------------- axes
if (x eq 'shape') {
    # x: a category per shape at 1..n, labelled, with grid lines between them; awk prints
    # the most lines a label has, a |, then the tics
    set xrange [0.5 : words(shapes) + 0.5]
    tics = system('awk -v S=' . q(shapes) . ' -v L=' . q(labels) . ' ' . q('BEGIN { n = split(S, s, " "); m = split(L, l, "|"); \
        for (i = 1; i <= n; i++) { t = l[i]; gsub(/^ +| +$/, "", t); if (i > m || t == "") t = s[i]; \
            if (t == s[i]) { gsub(/x/, "×", t); sub(/:/, "\\n:", t) } gsub(/\n/, "\\n", t); gsub(/"/, "", t); \
            k = split(t, parts, /\\n/); if (k > most) most = k; \
            out = out sprintf("%s\"%s\" %d", (i > 1 ? ", " : ""), t, i) } \
        for (i = 1; i < n; i++) out = out sprintf(", \"\" %g 1", i + 0.5); \
        print most "|" out }'))
    bar_at = strstrt(tics, '|')
    eval('set xtics (' . tics[bar_at + 1:] . ')')
    # many labels side by side: a smaller font (smaller still on the PDF's narrower axis)
    if (words(shapes) > 4) { set xtics font tiny }
    # gnuplot leaves room for one line of tick labels: an offset for each other line
    # makes room for them (the plot moves up)
    set xlabel offset 0, -(tics[1:bar_at - 1] - 1)
    set grid noxtics mxtics ytics lc rgb "#e3e6ea" lw 1 dt 1, lc rgb "#e3e6ea" lw 1 dt 1
} else {
    # x: log 2, a tick at every size that has a point (every other one where there are many),
    # a little room beyond the first and last point
    xs = ''
    do for [f in files] { xs = xs . system(AWK(f, '&& ' . isdrawn . ' { printf "%s ", $4 }')) . ' ' }
    xs = system('for v in ' . xs . '; do echo $v; done | sort -n -u | tr "\n" " "')
    nx = words(xs)
    set logscale x 2
    set xrange [word(xs, 1) / 1.25 : word(xs, nx) * 1.25]
    tics = ''
    do for [i = 1:nx:((nx > 12) ? 2 : 1)] {
        v = word(xs, i) + 0
        tics = tics . sprintf('%s"%s" %.0f', (i > 1 ? ', ' : ''), pow2(v), v)
    }
    eval('set xtics (' . tics . ')')
}

# y: from 0 to a little above the largest value drawn (the versions and peers drawn and
# the ceilings drawn, of every GPU), never to a row that is not drawn (demonstrations,
# CPU, a ceiling that applies to another element type)
ymax = 0
do for [f in files] {
    m = system(AWK(f, '&& (' . isdrawn . ' || ' . isceiling . ') && $m+0 > x { x = $m+0 } END { print x+0 }')) + 0
    if (m > ymax) { ymax = m }
}
if (metric eq 'time_us') {
    set logscale y 10
    set format y "%g"
} else {
    set yrange [0:ymax * 1.08]
}

# ---------------------------------------------------------------- GPUs and ceilings
# GPU i (1 = the reference, or the first GPU with data) draws its versions with dash type
# DT[i] and, but for the first, open points (x='shape': the first draws bars, GPU i the
# black open points GPT[i]).  Ceilings are grey horizontal lines, dashed
# for the first GPU and in their GPU's dash type for the others, labelled in the right
# margin at their height (nudged apart where they are close).
array DT[5] = [1, 3, 4, 5, 2]
dt(g) = DT[(g - 1) % 5 + 1]
array DTNAME[5] = ["solid", "dotted", "dash-dot", "dash-dot-dot", "dashed"]
array CG[5] = ["#666666", "#808080", "#8c8c8c", "#999999", "#737373"]
array GPT[4] = [6, 8, 12, 4]
gpt(g) = GPT[(g - 2) % 4 + 1]
array GPTNAME[4] = ["open circles", "open triangles", "open diamonds", "open squares"]
# which lines are which GPU: a line each above the plot (where there are several GPUs)
if (nfiles > 1) {
    set tmargin nfiles * 1.2 + 1
    do for [g = 1:nfiles] {
        drawn_as = (x ne 'shape') ? sprintf("%s points, %s lines", (g == 1 ? 'filled' : 'open'), DTNAME[(g - 1) % 5 + 1]) : \
                   (g == 1) ? 'bars' : GPTNAME[(g - 2) % 4 + 1]
        set label 90 + g sprintf("%s: %s", drawn_as, gpu_name(word(files, g))) \
            at graph 0.5, graph 1.0 offset 0, (nfiles - g) * 1.2 + 0.8 center font small tc rgb "#333333" noenhanced
    }
}

nc = words(ceiling) * nfiles
cmax = 0
array CV[nc > 0 ? nc : 1]
array CY[nc > 0 ? nc : 1]
array CL[nc > 0 ? nc : 1]
n = 0
do for [g = 1:nfiles] {
    do for [c in ceiling] {
        v = at_largest(word(files, g), c)
        name = (strlen(c) > 8) ? ((c[strlen(c) - 7:] eq '-ceiling') ? c[1:strlen(c) - 8] : c) : c
        text = (metric eq 'pct_sol') ? sprintf("%s %.0f%%", name, v) : sprintf("%s %.0f %s", name, v, unit)
        dup = 0
        do for [j = 1:n] { if (CL[j] eq text) { dup = 1 } }
        if (v > 0 && !dup) {
            n = n + 1
            CV[n] = v; CL[n] = text
            if (v > cmax) { cmax = v }
            d = (g == 1) ? 2 : dt(g)
            # a grey of its own per GPU: the SVG terminal draws lines of one colour in one dash type
            set arrow n from graph 0, first v to graph 1, first v nohead dt d lw 1.2 lc rgb CG[(g - 1) % 5 + 1] back
        }
    }
}
if (n > 0) {
    # sort by value, then place the labels in graph units at least `gap` apart
    do for [i = 2:n] { do for [j = i:2:-1] { if (CV[j] < CV[j - 1]) {
        t = CV[j]; CV[j] = CV[j - 1]; CV[j - 1] = t; t = CL[j]; CL[j] = CL[j - 1]; CL[j - 1] = t } } }
    gap = 0.045
    do for [i = 1:n] { CY[i] = CV[i] / (ymax * 1.08); if (i > 1 && CY[i] < CY[i - 1] + gap) { CY[i] = CY[i - 1] + gap } }
    width = 0
    do for [i = 1:n] { if (strlen(CL[i]) > width) { width = strlen(CL[i]) } }
    set rmargin width + 2
    do for [i = 1:n] {
        set label 100 + i CL[i] at graph 1, graph CY[i] offset 0.6, 0 left font small tc rgb "#333333" noenhanced
    }
}

# the crossover: scanning the shapes from the right while A beats B, the last one reached
if (x eq 'shape' && words(cross) == 2) {
    ca = word(cross, 1); cb = word(cross, 2)
    better = (metric eq 'time_us') ? '<' : '>'
    ci = system(AWK(csv, '&& ($1 == "' . ca . '" || $1 == "' . cb . '") { v[$1 == "' . ca . '", $4] = $m + 0 } \
        END { n = split(S, a, " "); from = 0; for (i = n; i >= 1; i--) { \
            if (!((1, i) in v) || !((0, i) in v) || !(v[1, i] ' . better . ' v[0, i])) break; from = i } print from }')) + 0
    if (ci > 0) {
        set arrow 200 from ci - 0.5, graph 0 to ci - 0.5, graph 1 nohead dt 2 lw 1.5 lc rgb "#444444" front
        set label 200 sprintf("%s faster than %s from here", ca, cb) at ci - 0.45, graph 0.97 left \
            font small tc rgb "#333333" noenhanced front
    }
}

# the memory floor, on a time axis by shape: over each shape, a black bar at the time the
# version `floor` would take at its ceiling (its time times its % of it; AWK has made $4
# the shape's place)
floor_drawn = 0
if (x eq 'shape' && metric eq 'time_us' && strlen(floor) > 0) {
    do for [i = 1:words(shapes)] {
        v = system(AWK(csv, '&& $1 == "' . floor . '" && $4 == ' . i . ' && $8 != "" \
            { f = $5 * $8 / 100 } END { print f + 0 }')) + 0
        if (v > 0) {
            set arrow 300 + i from i - 0.47, first v to i + 0.47, first v nohead lw 2.5 lc rgb "#000000" front
            floor_drawn = 1
        }
    }
}

set key outside below center horizontal maxcols 3 width -2 samplen 3 spacing 1.1 font small noenhanced
nours = words(ours)
npeer = words(peer)
nother = words(other)
# divisors for the flattened loops over the other GPUs (gnuplot evaluates them even when
# a loop is empty, so they must never be zero)
no1 = (nours > 0) ? nours : 1
np1 = (npeer > 0) ? npeer : 1
# x of series k (the versions, then the peers): with x='shape', the middle of its bar in
# the group about the shape's position, the group at most 0.8 of a category wide
nseries = nours + npeer
# (the bar width is a number here: in a plot command x is the dummy variable, not the mode)
bar = (x eq 'shape') ? ((nseries > 5) ? 0.8 / nseries : 0.16) : 0
dodge(k) = (k - (nseries + 1) / 2.0) * bar

# how each part is drawn: the reference GPU's versions (1), peers (2), and the other GPUs'
# versions (3) and peers (4); lines and points, or (x='shape') bars and black points
if (x eq 'shape') {
    set boxwidth bar * 0.88 absolute
    W1 = "with boxes fs solid 0.9 noborder lc rgb color(i)"
    W2 = "with boxes fs pattern 4 border lw 1.2 lc rgb pcolor(i)"
    W3 = "with points pt gpt((k-1)/no1+2) ps 0.9 lw 1.2 lc rgb '#000000'"
    W4 = "with points pt gpt((k-1)/np1+2) ps 0.9 lw 1.2 lc rgb '#000000'"
} else {
    W1 = "with linespoints lw 1.6 pt pt(i) ps 0.8 lc rgb color(i)"
    W2 = "with linespoints dt 2 lw 3 pt 3 ps 1.0 lc rgb pcolor(i)"
    W3 = "with linespoints dt dt((k-1)/no1+2) lw 1.2 pt pto((k-1)%no1+1) ps 0.8 lc rgb color((k-1)%no1+1)"
    W4 = "with linespoints dt dt((k-1)/np1+2) lw 1.5 pt 4 ps 0.9 lc rgb pcolor((k-1)%np1+1)"
}

# the plot command holds only non-empty parts (gnuplot would otherwise
# evaluate the data sources of empty loops and warn about them)
P1 = "for [i=1:nours] rows(csv, word(ours, i)) using (column(4) + dodge(i)):(column(col(csv))) " . W1 . " title word(ours, i)"
P2 = "for [i=1:npeer] rows(csv, word(peer, i)) using (column(4) + dodge(nours + i)):(column(col(csv))) " . W2 . " title word(peer, i) . ' (peer)'"
P3 = "for [k=1:nother*nours] rows(word(other, (k-1)/no1+1), word(ours, (k-1)%no1+1)) using (column(4) + dodge((k-1)%no1+1)):(column(col(word(other, (k-1)/no1+1)))) " . W3 . " notitle"
P4 = "for [k=1:nother*npeer] rows(word(other, (k-1)/np1+1), word(peer, (k-1)%np1+1)) using (column(4) + dodge(nours + (k-1)%np1+1)):(column(col(word(other, (k-1)/np1+1)))) " . W4 . " notitle"
parts = ''
if (nours > 0) { parts = parts . ', ' . P1 }
if (npeer > 0) { parts = parts . ', ' . P2 }
if (nother > 0 && nours > 0) { parts = parts . ', ' . P3 }
if (nother > 0 && npeer > 0) { parts = parts . ', ' . P4 }
if (floor_drawn) { parts = parts . ", NaN with lines lw 2.5 lc rgb '#000000' title 'memory floor'" }
eval('plot ' . parts[3:])

# for tests/book_test.sh: the y axis against the largest point and ceiling drawn, after
# the SVG's last element as an XML comment
if (term eq 'svg') {
    unset output
    system(sprintf("echo '<!-- y axis: %s to %g; largest point drawn: %g; largest ceiling: %g -->' >> %s", \
        (metric eq 'time_us') ? 'log' : 'linear', GPVAL_Y_MAX, GPVAL_DATA_Y_MAX, cmax, q(out)))
    if (x eq 'shape') {
        empty = system(AWK(csv, '&& ' . isdrawn . ' { h[$4] = 1 } END { n = split(S, a, " "); for (i = 1; i <= n; i++) if (!h[i]) printf " %s", a[i] }'))
        if (strlen(empty) > 0) { system(sprintf("echo '<!-- shapes without a point:%s -->' >> %s", empty, q(out))) }
    }
}
