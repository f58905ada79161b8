set terminal svg
    set grid

    set key left top
plot "bandwidth.dat" using 1:2 with lines
