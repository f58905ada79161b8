# figures/swizzle.gp -- eight 64-byte rows of a shared-memory tile, as stored without and
# with swizzle_chunk<64>: each cell a 16-byte chunk at its place, coloured by the group of
# four banks it falls in, named by the columns of the tile it holds; outlined, the eight
# chunks one ldmatrix phase reads (columns 0-7 of rows 0-7).
#   gnuplot -e "out='swizzle.svg'; term='svg'" figures/swizzle.gp
if (!exists("out"))  out = 'swizzle.svg'
if (!exists("term")) term = (out[strlen(out)-3:] eq '.pdf') ? 'pdf' : 'svg'
if (term eq 'pdf') {
    set terminal pdfcairo size 6.2in,2.9in enhanced font "Helvetica,9" fontscale 0.7 linewidth 1
} else {
    set terminal svg size 960,450 enhanced font "Helvetica,13" linewidth 1.2 background rgb "white"
}
set output out
unset border; unset tics; unset key
set size ratio -1
set xrange [-3.2 : 16.6]
set yrange [-2.0 : 9.4]
array G[8] = ["#e8f0fe", "#fce8e6", "#fef7e0", "#e6f4ea", "#f3e8fd", "#e4f7fb", "#fde7f3", "#f1f3f4"]
n = 0
do for [panel = 0:1] {
    ox = panel * 9.2
    do for [r = 0:7] {
        do for [p = 0:3] {
            c = panel ? (p ^ ((r >> 1) & 3)) : p          # the chunk of the row stored at place p
            group = (4 * (r & 1) + p) % 8                 # 16-byte unit of its 128-byte line
            y = 7 - r
            n = n + 1
            eval sprintf('set object %d rect from %g,%g to %g,%g fc rgb "%s" fs solid border lc rgb "%s" lw %g', \
                n, ox + p * 1.75, y, ox + p * 1.75 + 1.75, y + 1, G[group + 1], (c == 0) ? "#202124" : "#9aa0a6", (c == 0) ? 3 : 1)
            eval sprintf('set label %d "%d–%d  (b%d)" at %g,%g center font ",10"', n, 8 * c, 8 * c + 7, group, ox + p * 1.75 + 0.875, y + 0.5)
        }
        if (panel == 0) { n = n + 1; eval sprintf('set label %d "row %d" at %g,%g right font ",10"', n, r, -0.2, 7 - r + 0.5) }
    }
    n = n + 1
    eval sprintf('set label %d "%s" at %g,%g center font ",11"', n, panel ? "swizzled: chunk c of row r at c xor ((r / 2) mod 4)" : "plain: chunk c of row r at c", ox + 3.5, 8.7)
}
n = n + 1
eval sprintf('set label %d "each cell: the tile columns it holds and (b) its group of four banks\noutlined: the pieces one ldmatrix phase reads" at %g,%g center font ",10"', n, 7.2, -0.9)
plot NaN notitle
