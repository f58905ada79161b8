# figures/attention-traffic.gp -- the bytes the attention chapter's versions move per
# forward pass, counted (not measured): FlashAttention's shapes, b s = 16384 tokens, 16
# heads of 128, bfloat16, by sequence length s. a0 writes the float32 scores S, reads
# them, writes P over them and reads P: 16 bytes a score, b h s^2 scores. Every version
# reads Q, K, V and writes O once: 4 b h s d elements of 2 bytes. The flash versions read
# K and V once per tile of 128 queries, from the L2 after the first time.
#   gnuplot -e "out='attention-traffic.svg'; term='svg'" figures/attention-traffic.gp
if (!exists("out"))  out = 'attention-traffic.svg'
if (!exists("term")) term = (out[strlen(out)-3:] eq '.pdf') ? 'pdf' : 'svg'
if (term eq 'pdf') {
    set terminal pdfcairo size 5.0in,2.8in enhanced font "Helvetica,9" fontscale 0.7 linewidth 1
} else {
    set terminal svg size 800,440 enhanced font "Helvetica,13" linewidth 1.2 background rgb "white"
}
set output out
TOKENS = 16384.0; H = 16.0; D = 128.0; BQ = 128.0
b(s) = TOKENS / s
scores(s) = 16.0 * b(s) * H * s * s                      # a0: S and P, written and read
io(s) = 4.0 * b(s) * H * s * D * 2.0                      # Q, K, V, O once
l2(s) = 2.0 * b(s) * H * s * D * 2.0 * (s / BQ)           # K and V once per query tile
set logscale y 10
set format y "%.0s %cB"
set xrange [8.8 : 14.2]
set xtics ("512" 9, "1K" 10, "2K" 11, "4K" 12, "8K" 13, "16K" 14)
set xlabel "sequence length s (b s = 16K tokens, 16 heads of 128)"
set ylabel "bytes per forward pass"
set key top left box opaque
set yrange [1e8 : 2e12]
set grid ytics lc rgb "#dddddd"
set samples 6
plot [9:14] scores(2**x) w lp lw 2 pt 7 lc rgb "#d93025" t "a0: the scores S and P, 16 bytes a score (memory)", \
     l2(2**x) w lp lw 2 pt 5 lc rgb "#f9ab00" t "flash versions: K and V once per 128 queries (mostly the L2)", \
     io(2**x) w lp lw 2 pt 9 lc rgb "#1a73e8" t "every version: Q, K, V and O once (memory)"
