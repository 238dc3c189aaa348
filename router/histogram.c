/* SPDX-License-Identifier: MIT */
/*
 * Log-linear histogram.  Values below 64 have a bucket each; above, each
 * power of two is cut into 64 equal buckets, so a bucket is at most 1/64
 * of its value wide.
 */
#include <string.h>

#include "router/histogram.h"

static unsigned
hist_index(uint64_t v)
{
	unsigned p;

	if (v < SL_HIST_SUB)
		return (unsigned)v;
	if (v >> SL_HIST_POW)
		return SL_HIST_BUCKETS - 1;
	p = 63u - (unsigned)__builtin_clzll(v);
	return (p - 5) * SL_HIST_SUB +
	       (unsigned)((v >> (p - 6)) - SL_HIST_SUB);
}

static uint64_t
hist_upper(unsigned idx)
{
	unsigned p, mant;

	if (idx < SL_HIST_SUB)
		return idx;
	p = idx / SL_HIST_SUB + 5;
	mant = idx % SL_HIST_SUB;
	return (((uint64_t)SL_HIST_SUB + mant + 1) << (p - 6)) - 1;
}

void
sl_histogram_reset(struct sl_histogram *h)
{
	memset(h, 0, sizeof(*h));
}

void
sl_histogram_record(struct sl_histogram *h, uint64_t v)
{
	h->c[hist_index(v)]++;
	h->count++;
	h->sum += v;
	if (v > h->max)
		h->max = v;
}

void
sl_histogram_merge(struct sl_histogram *into, const struct sl_histogram *from)
{
	for (unsigned i = 0; i < SL_HIST_BUCKETS; i++)
		into->c[i] += from->c[i];
	into->count += from->count;
	into->sum += from->sum;
	if (from->max > into->max)
		into->max = from->max;
}

uint64_t
sl_histogram_quantile(const struct sl_histogram *h, double q)
{
	uint64_t want, seen = 0;

	if (!h->count)
		return 0;
	want = (uint64_t)(q * (double)h->count);
	if (want >= h->count)
		want = h->count - 1;
	for (unsigned i = 0; i < SL_HIST_BUCKETS; i++) {
		seen += h->c[i];
		if (seen > want) {
			uint64_t up = hist_upper(i);

			return up < h->max ? up : h->max;
		}
	}
	return h->max;
}

void
sl_histogram_write_prom(const struct sl_histogram *h, FILE *out,
			const char *name, const char *labels)
{
	/* Prometheus wants few, fixed buckets: 1-2-5 steps, 1 us to 60 s. */
	static const double bounds[] = {
		1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4,
		1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 0.1,  0.2,  0.5,
		1,    2,    5,    10,   30,   60,
	};
	const char *sep = labels && *labels ? "," : "";
	uint64_t cum = 0;
	unsigned i = 0;

	for (size_t b = 0; b < sizeof(bounds) / sizeof(bounds[0]); b++) {
		uint64_t limit = (uint64_t)(bounds[b] * 1e9);

		while (i < SL_HIST_BUCKETS && hist_upper(i) <= limit)
			cum += h->c[i++];
		fprintf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name,
			labels ? labels : "", sep, bounds[b],
			(unsigned long long)cum);
	}
	fprintf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name,
		labels ? labels : "", sep, (unsigned long long)h->count);
	fprintf(out, "%s_sum{%s} %.9f\n", name, labels ? labels : "",
		(double)h->sum / 1e9);
	fprintf(out, "%s_count{%s} %llu\n", name, labels ? labels : "",
		(unsigned long long)h->count);
}
