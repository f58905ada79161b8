# figures/hopper-pipeline.gp -- the warp-specialized pipeline of the Hopper GEMM chapter,
# drawn (a schedule, not a measurement): the producer's copies into a ring of four
# stages, their time in flight, and the two consumer warpgroups' groups of wgmma, each
# starting when its stage is full; a stage is refilled once both consumers released it.
#   gnuplot -e "out='hopper-pipeline.svg'; term='svg'" figures/hopper-pipeline.gp
if (!exists("out"))  out = 'hopper-pipeline.svg'
if (!exists("term")) term = (out[strlen(out)-3:] eq '.pdf') ? 'pdf' : 'svg'
if (term eq 'pdf') {
    set terminal pdfcairo size 6.2in,2.6in enhanced font "Helvetica,9" fontscale 0.7 linewidth 1
} else {
    set terminal svg size 960,400 enhanced font "Helvetica,13" linewidth 1.2 background rgb "white"
}
set output out
unset border; unset tics; unset key
set xrange [-30 : 120]
set yrange [-10 : 62]
n = 0
rect(x1, y1, x2, y2, fill, edge) = sprintf('set object %d rect from %g,%g to %g,%g fc rgb "%s" fs solid border lc rgb "%s" lw 1', \
    n = n + 1, x1, y1, x2, y2, fill, edge)
text(s, x, y, how) = sprintf('set label %d "%s" at %g,%g %s', n = n + 1, s, x, y, how)
colour(i) = word("#e8f0fe #fce8e6 #e6f4ea #fef7e0 #f3e8fd #e4f7fb #fde7f3 #eceff1", i % 8 + 1)
edge(i) = word("#1a73e8 #d93025 #188038 #f9ab00 #9334e6 #12b5cb #e52592 #5f6368", i % 8 + 1)

# the schedule: copy i issued at issue[i], lands at issue[i] + LAT; its wgmma group runs
# from start[i] for MMA; its stage is released at the end of the group, and copy i + 4
# goes into it then
TILES = 9; STAGES = 4; LAT = 14.0; MMA = 10.0
array issue[TILES]; array start[TILES]; array done[TILES]
do for [i = 1:TILES] {
    issue[i] = (i <= STAGES) ? (i - 1) * 1.5 : done[i - STAGES]
    start[i] = issue[i] + LAT
    if (i > 1 && done[i - 1] > start[i]) { start[i] = done[i - 1] }
    done[i] = start[i] + MMA
}
# rows: producer, the four stages, the two consumers
yp = 52; ys(s) = 40 - s * 6; yc1 = 6; yc2 = 0
eval text("producer (warpgroup 0)", -2, yp + 2, "right font \",11\"")
do for [s = 0:STAGES - 1] { eval text(sprintf("stage %d", s), -2, ys(s) + 2, "right font \",11\"") }
eval text("consumer 1", -2, yc1 + 2, "right font \",11\"")
eval text("consumer 2", -2, yc2 + 2, "right font \",11\"")
do for [i = 1:TILES] {
    k = i - 1; s = k % STAGES
    eval rect(issue[i], yp, issue[i] + 1.2, yp + 4, colour(k), edge(k))
    eval rect(issue[i], ys(s) + 0.5, issue[i] + LAT, ys(s) + 3.5, "#ffffff", edge(k))
    eval rect(issue[i] + LAT, ys(s) + 0.5, done[i], ys(s) + 3.5, colour(k), edge(k))
    eval text(sprintf("k%d", k), issue[i] + LAT / 2, ys(s) + 2, "center font \",9\"")
    eval rect(start[i], yc1, done[i] - 0.3, yc1 + 4, colour(k), edge(k))
    eval rect(start[i], yc2, done[i] - 0.3, yc2 + 4, colour(k), edge(k))
    eval text(sprintf("wgmma k%d", k), (start[i] + done[i]) / 2, yc1 + 2, "center font \",9\"")
    eval text(sprintf("wgmma k%d", k), (start[i] + done[i]) / 2, yc2 + 2, "center font \",9\"")
}
eval text("white: a tile's copy in flight; coloured: the stage full, until both consumers are done with it", 44, -6, "center font \",11\"")
plot NaN notitle
