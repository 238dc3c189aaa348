# SPDX-License-Identifier: MIT
#
# ratios.awk: read the markdown tables that run-core, run-io and run-router
# write (--md) and print, per comparison, one tab-separated line
#
#	LABEL	RATIO	WORST	BEST
#
# RATIO is how many times better Sluice's median is than the peer's (above
# 1: Sluice better, whichever way the figure is better); WORST and BEST
# bound it from the rounds' extremes: Sluice's worst round against the
# peer's best, and the other way round.  Cells are "MEDIAN [MIN-MAX]"
# with k, M and G suffixes; a cell with one value has no spread.
#
#	awk -v bench=core|io|router -f ratios.awk FILE.md
#
# Which figures are plotted: core, every row; io, records/s of each
# Sluice server against each peer on the ingest workloads and resident
# bytes on idle (but for epoll, whose idle connections live in the
# kernel); router, the figures named in keep[] below.

function value(s,    m, v) {
	if (!match(s, /[0-9]+(\.[0-9]+)?(e[-+][0-9]+)?[kMG]?/))
		return ""
	m = substr(s, RSTART, RLENGTH)
	v = m + 0
	if (m ~ /k$/) v *= 1e3
	if (m ~ /M$/) v *= 1e6
	if (m ~ /G$/) v *= 1e9
	return v
}

# Split cell @s into c["med"], c["lo"] and c["hi"]; false if no number.
function cell(s, c,    inner, n, parts) {
	delete c
	c["med"] = value(s)
	if (c["med"] == "")
		return 0
	c["lo"] = c["hi"] = c["med"]
	if (match(s, /\[[^]]*\]/)) {
		inner = substr(s, RSTART + 1, RLENGTH - 2)
		# The separator is the '-' between two numbers: after a digit
		# or a suffix and not inside an exponent.
		n = match(inner, /[0-9kMG]-[0-9]/)
		if (n) {
			c["lo"] = value(substr(inner, 1, n))
			c["hi"] = value(substr(inner, n + 2))
		}
	}
	return 1
}

function trim(s) {
	gsub(/^[ \t]+|[ \t*]+$/, "", s)
	return s
}

# Print one comparison; @higher says whether a larger figure is better.
function emit(label, s, p, higher,    r, lo, hi) {
	if (s["med"] <= 0 || p["med"] <= 0 || s["lo"] <= 0 || p["lo"] <= 0)
		return
	if (higher) {
		r = s["med"] / p["med"]
		lo = s["lo"] / p["hi"]
		hi = s["hi"] / p["lo"]
	} else {
		r = p["med"] / s["med"]
		lo = p["lo"] / s["hi"]
		hi = p["hi"] / s["lo"]
	}
	printf "%s\t%.4g\t%.4g\t%.4g\n", label, r, lo, hi
}

# Whether the printed ratio @r is Sluice over the peer (a higher figure is
# better) rather than the peer over Sluice: whichever is nearer in log terms.
function higher_better(r, s, p,    a, b) {
	a = log(s["med"] / p["med"] / r)
	b = log(p["med"] / s["med"] / r)
	return a * a <= b * b
}

BEGIN {
	FS = "|"
	keep["events/s ingested"] = "ingest"
	keep["seconds to converge"] = "converge"
	keep["server CPU-s (user+sys)"] = "CPU"
	keep["adds/s"] = "adds"
	keep["p99 latency (us)"] = "p99"
}

# core: | workload | figure | Sluice | peer | peer's | ratio |
bench == "core" && NF == 8 && $7 ~ /x *$/ {
	r = value($7)
	if (r > 0 && cell($4, s) && cell($6, p))
		emit(trim($2) " vs " trim($5), s, p, higher_better(r, s, p))
	next
}

# io: "#### WORKLOAD: ..." then | server | figure | ... rows.
bench == "io" && /^#### / {
	flush_io()
	workload = $0
	sub(/^#### /, "", workload)
	sub(/:.*/, "", workload)
	next
}
bench == "io" && NF >= 4 && $2 !~ /server|---|\// {
	name = trim($2)
	servers[++nservers] = name
	cells[name] = $3
	next
}

# router: "### WORKLOAD" then | figure | Sluice | Go | ratio |.
bench == "router" && /^### / {
	workload = $0
	sub(/^### /, "", workload)
	next
}
bench == "router" && NF == 6 && trim($2) in keep && $5 ~ /x *$/ {
	r = value($5)
	if (r > 0 && cell($3, s) && cell($4, p))
		emit(workload " " keep[trim($2)], s, p, higher_better(r, s, p))
	next
}

# One io workload's servers: each Sluice server against each peer.
function flush_io(    i, j, a, b) {
	for (i = 1; i <= nservers; i++) {
		if (servers[i] !~ /^sluice/)
			continue
		for (j = 1; j <= nservers; j++) {
			if (servers[j] ~ /^sluice/)
				continue
			# epoll keeps an idle connection's state in the
			# kernel, outside VmRSS: its few bytes are no figure
			# to divide by.
			if (workload == "idle" && servers[j] == "epoll")
				continue
			if (!cell(cells[servers[i]], a) ||
			    !cell(cells[servers[j]], b))
				continue
			emit(workload " " servers[i] " vs " servers[j], a, b,
			     workload != "idle")
		}
	}
	delete servers
	delete cells
	nservers = 0
}

END {
	if (bench == "io")
		flush_io()
}
