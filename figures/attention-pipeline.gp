# figures/attention-pipeline.gp -- what the warpgroups of the attention chapter's wgmma
# versions do, and when, drawn from a model (a schedule, not a measurement; the
# durations are illustrative). The producer copies tile k of K and V into stage k % 2
# once both consumers have released the tile before it there; a copy takes LAT to land.
# Each consumer computes the scores S = Q K^T of a tile (tensor cores), their softmax (its
# own warps), then O += P V (tensor cores); the tensor cores serve one product at a time.
# a4 waits for each product before going on. a5 issues the next tile's scores before the
# softmax of this one, so that they run during it, and so must wait for the next tile's K
# before its softmax starts.
#   gnuplot -e "out='attention-pipeline.svg'; term='svg'" figures/attention-pipeline.gp
if (!exists("out"))  out = 'attention-pipeline.svg'
if (!exists("term")) term = (out[strlen(out)-3:] eq '.pdf') ? 'pdf' : 'svg'
if (term eq 'pdf') {
    set terminal pdfcairo size 6.2in,3.4in enhanced font "Helvetica,9" fontscale 0.7 linewidth 1
} else {
    set terminal svg size 960,520 enhanced font "Helvetica,13" linewidth 1.2 background rgb "white"
}
set output out
unset border; unset tics; unset key
GS = 3.0; SM = 6.0; GV = 3.0; LAT = 7.0; TILES = 5; T_END = 108
set xrange [-20 : T_END]
set yrange [-6 : 74]
n = 0
rect(x1, y1, x2, y2, fill, edge) = sprintf('set object %d rect from %g,%g to %g,%g fc rgb "%s" fs solid border lc rgb "%s" lw 1', \
    n = n + 1, x1, y1, x2, y2, fill, edge)
text(s, x, y, how) = sprintf('set label %d "%s" at %g,%g %s', n = n + 1, s, x, y, how)
TC = "#e8f0fe"; TCE = "#1a73e8"; SF = "#fef7e0"; SFE = "#f9ab00"; CP = "#ffffff"; CPE = "#188038"; WT = "#fce8e6"
max(a, b) = (a > b) ? a : b
array ready[TILES]; array rel[TILES]; array cur[2]; array s_end[2]; array sm_end[2]

do for [v = 0:1] {
    y0 = (v == 0) ? 42 : 4   # consumer 2 at y0, consumer 1 at y0 + 6, the copies above
    tc = 0.0
    eval text(v == 0 ? "a4" : "a5", -19, y0 + 25, "left font \",13\"")
    eval text("copies of K, V", -2, y0 + 17, "right font \",11\"")
    eval text("consumer 1", -2, y0 + 8, "right font \",11\"")
    eval text("consumer 2", -2, y0 + 2, "right font \",11\"")
    do for [k = 1:TILES] { rel[k] = 1e9 }
    # the first two copies are issued at once; copy k (k > 2) when stage k % 2 is released
    copy(k) = (k <= 2) ? (k - 1) * 0.8 : rel[k - 2]
    cur[1] = 0.0; cur[2] = 0.0
    if (v == 1) {  # a5's first scores, before the loop
        ready[1] = copy(1) + LAT
        do for [c = 1:2] {
            y = y0 + (c == 1 ? 6 : 0)
            s0 = max(max(cur[c], ready[1]), tc); tc = s0 + GS
            eval rect(s0, y, tc, y + 4, TC, TCE)
            eval text("S1", s0 + GS / 2, y + 2, "center font \",9\"")
            cur[c] = tc
        }
    }
    do for [k = 1:TILES] {
        ready[k] = copy(k) + LAT
        ys = y0 + 14 + ((k - 1) % 2) * 4
        eval rect(copy(k), ys, ready[k], ys + 3, CP, CPE)
        eval text(sprintf("K%d V%d", k, k), (copy(k) + ready[k]) / 2, ys + 1.5, "center font \",8\"")
        if (k + 1 <= TILES && k + 1 <= 2) { ready[k + 1] = copy(k + 1) + LAT }
        do for [c = 1:2] {
            y = y0 + (c == 1 ? 6 : 0)
            if (v == 0) {
                s0 = max(max(cur[c], ready[k]), tc)
                if (s0 > cur[c] + 0.01) { eval rect(cur[c], y + 1.5, s0, y + 2.5, WT, "#d93025") }
                tc = s0 + GS
                eval rect(s0, y, tc, y + 4, TC, TCE)
                eval text(sprintf("S%d", k), s0 + GS / 2, y + 2, "center font \",9\"")
                s_end[c] = tc; sm_end[c] = tc + SM
                eval rect(tc, y, sm_end[c], y + 4, SF, SFE)
                eval text("softmax", tc + SM / 2, y + 2, "center font \",9\"")
            } else {
                # wait for the next tile's K, issue its scores, then this tile's softmax
                start = cur[c]; s_end[c] = cur[c]
                if (k < TILES) {
                    if (k + 1 > 2) { ready[k + 1] = copy(k + 1) + LAT }
                    start = max(cur[c], ready[k + 1])
                    s0 = max(start, tc); tc = s0 + GS
                    eval rect(s0, y + 2.2, tc, y + 4, TC, TCE)
                    eval text(sprintf("S%d", k + 1), s0 + GS / 2, y + 3.1, "center font \",8\"")
                    s_end[c] = tc
                }
                if (start > cur[c] + 0.01) { eval rect(cur[c], y + 1.5, start, y + 2.5, WT, "#d93025") }
                sm_end[c] = start + SM
                eval rect(start, y, sm_end[c], y + 2, SF, SFE)
                eval text("softmax", start + SM / 2, y + 1, "center font \",8\"")
            }
        }
        do for [c = 1:2] {
            y = y0 + (c == 1 ? 6 : 0)
            p0 = max(sm_end[c], tc); tc = p0 + GV
            eval rect(p0, y, tc, y + 4, TC, TCE)
            eval text(sprintf("PV%d", k), p0 + GV / 2, y + 2, "center font \",9\"")
            cur[c] = max(tc, s_end[c])
        }
        rel[k] = max(cur[1], cur[2])   # both consumers have released stage k % 2
    }
    eval text(sprintf("done at %.0f", max(cur[1], cur[2])), max(cur[1], cur[2]) + 1, y0 + 5, "left font \",10\"")
}
eval text("green: a copy in flight; blue: a product (tensor cores); yellow: a softmax; red: waiting", \
    (T_END - 20) / 2, -4, "center font \",11\"")
plot NaN notitle
