/* SPDX-License-Identifier: MIT */
/*
 * Arithmetic on scraped metrics for sluice-top: rates from two readings
 * of a counter, and quantiles from a Prometheus histogram's buckets.
 *
 * A counter only grows while the process that owns it lives; a reading
 * lower than the one before means the counter started again from zero
 * (the daemon restarted, or a route was removed and added back), so the
 * whole new reading is the increase.  That undercounts what happened
 * before the restart within the window, which no reader can know.
 *
 * A histogram's buckets are cumulative: bucket "le" counts observations
 * at or below its bound, the last bound is +Inf and counts them all.  A
 * quantile is found as Prometheus' histogram_quantile() finds it: the
 * bucket holding the rank, then a straight line between that bucket's
 * lower and upper bound, as if its observations were spread evenly.  The
 * answer is an estimate: its error is at most the bucket's width.
 */
#ifndef SLUICE_TOP_RATE_H
#define SLUICE_TOP_RATE_H

#include <stdbool.h>
#include <stddef.h>

/* The increase of a counter from @prev to @cur (@cur after a reset). */
double top_counter_increase(double prev, double cur);

/* The increase per second over @dt_s seconds; NaN when @dt_s <= 0 or
 * either reading is NaN. */
double top_counter_rate(double prev, double cur, double dt_s);

/* One cumulative bucket: observations <= @le. */
struct top_bucket {
	double le;
	double count;
};

struct top_quantile {
	double value;
	/* The rank fell in the +Inf bucket: @value is the highest finite
	 * bound, and the quantile is somewhere above it. */
	bool above;
};

/**
 * top_hist_quantile() - estimate quantile @q of a histogram.
 * @b: @n buckets sorted by bound, the last one +Inf.
 * @q: 0 to 1.
 *
 * The lower bound of the first bucket is 0 when its upper bound is
 * positive (durations), else the bound itself.
 *
 * Return: 0 with @out set; -ENODATA when the histogram counts nothing;
 * -EINVAL when @q is out of range, there are no buckets, the bounds are
 * not increasing, the last is not +Inf, or a count is lower than the one
 * before (not cumulative).
 */
int top_hist_quantile(const struct top_bucket *b, size_t n, double q,
		      struct top_quantile *out);

/**
 * top_hist_window() - the buckets of what a histogram observed between
 * two readings: @cur minus @prev, bucket by bucket.
 * @out: room for @ncur buckets; may be @cur.
 *
 * When the readings have different bounds, or the total went down (a
 * reset), @out is @cur: everything it counts is new.  @prev may be NULL
 * (no earlier reading): @out is @cur.
 */
void top_hist_window(const struct top_bucket *prev, size_t nprev,
		     const struct top_bucket *cur, size_t ncur,
		     struct top_bucket *out);

#endif /* SLUICE_TOP_RATE_H */
