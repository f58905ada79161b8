# figures/gemm-tiles.gp -- the tiling of the GEMM chapter's tensor-core kernels, drawn:
# the block's 128 x 256 tile of C in eight warp tiles of 64 x 64, one warp tile in its
# 4 x 8 mma.sync tiles of 16 x 8, and the K loop's tiles of A and B.
#   gnuplot -e "out='gemm-tiles.svg'; term='svg'" figures/gemm-tiles.gp
if (!exists("out"))  out = 'gemm-tiles.svg'
if (!exists("term")) term = (out[strlen(out)-3:] eq '.pdf') ? 'pdf' : 'svg'
if (term eq 'pdf') {
    set terminal pdfcairo size 6.2in,3.1in enhanced font "Helvetica,9" fontscale 0.7 linewidth 1
} else {
    set terminal svg size 960,480 enhanced font "Helvetica,13" linewidth 1.2 background rgb "white"
}
set output out
unset border; unset tics; unset key
set size ratio -1
set xrange [-110 : 620]
set yrange [-30 : 205]
n = 0
rect(x1, y1, x2, y2, fill, edge) = sprintf('set object %d rect from %g,%g to %g,%g fc rgb "%s" fs solid border lc rgb "%s" lw 1', \
    n = n + 1, x1, y1, x2, y2, fill, edge)
text(s, x, y, how) = sprintf('set label %d "%s" at %g,%g %s', n = n + 1, s, x, y, how)
# B's tile (K x 256, drawn above C) and A's tile (128 x K, drawn left of C): K steps of 32
eval rect(0, 150, 256, 182, "#e8f0fe", "#1a73e8")
eval text("B tile: 32 (K) × 256, one step of the K loop", 128, 190, "center font \",11\"")
eval rect(-42, 0, -10, 128, "#fce8e6", "#d93025")
eval text("A tile:\\n128 × 32", -48, 64, "right font \",11\"")
# C's block tile in warp tiles
eval rect(0, 0, 256, 128, "#ffffff", "#202124")
do for [wy = 0:1] { do for [wx = 0:3] {
    eval rect(wx * 64 + 1, wy * 64 + 1, wx * 64 + 63, wy * 64 + 63, (wx == 3 && wy == 1) ? "#e6f4ea" : "#f1f3f4", \
              (wx == 3 && wy == 1) ? "#188038" : "#5f6368")
    eval text(sprintf("warp %d", (1 - wy) * 4 + wx), wx * 64 + 32, wy * 64 + 32, "center font \",11\"")
} }
eval text("block tile of C: 128 × 256, 8 warps of 64 × 64", 128, -14, "center font \",11\"")
# one warp tile, enlarged, in mma tiles of 16 x 8
ox = 330; oy = 0; sc = 2.6
eval rect(ox, oy, ox + 64 * sc, oy + 64 * sc, "#ffffff", "#202124")
do for [i = 0:3] { do for [j = 0:7] {
    eval rect(ox + j * 8 * sc + 0.6, oy + (3 - i) * 16 * sc + 0.6, ox + (j + 1) * 8 * sc - 0.6, oy + (4 - i) * 16 * sc - 0.6, \
              (i == 0 && j == 0) ? "#fbbc04" : "#e6f4ea", "#5f6368")
} }
eval text("warp 3's tile: 64 × 64 = 4 × 8 mma tiles of 16 × 8", ox + 32 * sc, -14, "center font \",11\"")
eval text("one m16n8k16:\\n16 × 8 of C,\\n4 floats a lane", ox + 64 * sc + 8, oy + 60 * sc, "left font \",11\"")
set arrow 1 from 256, 128 to ox, oy + 64 * sc lc rgb "#188038" dt 2 nohead
set arrow 2 from 256, 64 to ox, oy lc rgb "#188038" dt 2 nohead
plot NaN notitle
