# SPDX-License-Identifier: MIT
#
# ratios.gp: one bar per comparison that ratios.awk printed, drawn from 1
# to how many times better Sluice's median is than the peer's, on a log
# scale, with a whisker from the worst to the best case the rounds allow.
#
#	gnuplot -e "data='core.tsv'; out='docs/bench/core'; \
#	            heading='core: Sluice against its peers'" ratios.gp
#
# writes OUT.svg and OUT.png.

set datafile separator "\t"
stats data using 2 nooutput
n = STATS_records

set logscale y 10
set grid ytics
set ylabel "Sluice better by (x), log scale"
set xrange [-0.6:n - 0.4]
set xtics rotate by -50 left nomirror font ",9"
set ytics nomirror
set format y "%gx"
set title heading
set key off
set bmargin 11
# The line Sluice must be above to be the better one.
set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead dt 2 lw 1.5

width = n < 12 ? 900 : 60 + 45 * n
do for [fmt in "svg png"] {
	if (fmt eq "svg") {
		set terminal svg size width, 520 dynamic font "sans,11"
	} else {
		set terminal pngcairo size width, 520 font "sans,10"
	}
	set output sprintf("%s.%s", out, fmt)
	plot data using 0:2:($0 - 0.35):($0 + 0.35):(1):2:xtic(1) \
		with boxxyerror fs solid 0.55 border lc rgb "#2f5f8f" \
		lc rgb "#4a86c5", \
	     data using 0:2:3:4 with yerrorbars pt -1 lc rgb "black"
	unset output
}
