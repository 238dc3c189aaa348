/* SPDX-License-Identifier: MIT */
/*
 * Counter rates and histogram quantiles; rate.h explains the rules.
 */
#include "tools/top/rate.h"

#include <errno.h>
#include <math.h>
#include <string.h>

double
top_counter_increase(double prev, double cur)
{
	return cur >= prev ? cur - prev : cur;
}

double
top_counter_rate(double prev, double cur, double dt_s)
{
	if (!(dt_s > 0) || isnan(prev) || isnan(cur))
		return NAN;
	return top_counter_increase(prev, cur) / dt_s;
}

static int
hist_check(const struct top_bucket *b, size_t n)
{
	if (!n || !isinf(b[n - 1].le) || b[n - 1].le < 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (isnan(b[i].le) || isnan(b[i].count) || b[i].count < 0)
			return -EINVAL;
		if (i &&
		    (b[i].le <= b[i - 1].le || b[i].count < b[i - 1].count))
			return -EINVAL;
	}
	return 0;
}

int
top_hist_quantile(const struct top_bucket *b, size_t n, double q,
		  struct top_quantile *out)
{
	double total, rank, lower, below, in_bucket;
	size_t i;

	if (!(q >= 0 && q <= 1) || hist_check(b, n))
		return -EINVAL;
	total = b[n - 1].count;
	if (total == 0)
		return -ENODATA;

	/* The first bucket that holds the rank (and holds anything, so
	 * that q = 0 lands on the first observation, not an empty bucket
	 * before it). */
	rank = q * total;
	for (i = 0; i < n; i++)
		if (b[i].count >= rank && b[i].count > 0)
			break;

	if (i == n - 1) {
		/* Past the last finite bound: only a floor is known. */
		out->above = true;
		out->value = n >= 2 ? b[n - 2].le : 0;
		return 0;
	}

	out->above = false;
	if (i == 0) {
		lower = b[0].le > 0 ? 0 : b[0].le;
		below = 0;
	} else {
		lower = b[i - 1].le;
		below = b[i - 1].count;
	}
	in_bucket = b[i].count - below;
	out->value = lower + (b[i].le - lower) * (rank - below) / in_bucket;
	return 0;
}

void
top_hist_window(const struct top_bucket *prev, size_t nprev,
		const struct top_bucket *cur, size_t ncur,
		struct top_bucket *out)
{
	bool reset = !prev || nprev != ncur ||
		     (ncur && cur[ncur - 1].count < prev[ncur - 1].count);

	for (size_t i = 0; !reset && i < ncur; i++)
		if (cur[i].le != prev[i].le)
			reset = true;
	if (reset) {
		if (out != cur)
			memmove(out, cur, ncur * sizeof(*out));
		return;
	}
	for (size_t i = 0; i < ncur; i++) {
		out[i].le = cur[i].le;
		out[i].count = cur[i].count - prev[i].count;
	}
}
