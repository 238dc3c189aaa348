/* SPDX-License-Identifier: MIT */
/*
 * A latency histogram with fixed log-linear buckets (about 1.6% wide),
 * from 1 ns to about 1 hour, cheap to record into and to merge.  The
 * router keeps one per route for reconcile latency and duration and
 * exports them in Prometheus' histogram format.
 */
#ifndef SLUICE_ROUTER_HISTOGRAM_H
#define SLUICE_ROUTER_HISTOGRAM_H

#include <stdint.h>
#include <stdio.h>

/* 2^42 ns (73 min), 64 sub-buckets per power of two. */
#define SL_HIST_SUB 64
#define SL_HIST_POW 42
#define SL_HIST_BUCKETS (SL_HIST_SUB * SL_HIST_POW)

struct sl_histogram {
	uint64_t count;
	uint64_t sum;
	uint64_t max;
	uint32_t c[SL_HIST_BUCKETS];
};

void sl_histogram_reset(struct sl_histogram *h);
void sl_histogram_record(struct sl_histogram *h, uint64_t v);
void sl_histogram_merge(struct sl_histogram *into,
			const struct sl_histogram *from);
/* The value at quantile @q (0..1): the upper bound of its bucket. */
uint64_t sl_histogram_quantile(const struct sl_histogram *h, double q);

/* Prometheus lines for @name{@labels} with buckets in seconds. */
void sl_histogram_write_prom(const struct sl_histogram *h, FILE *out,
			     const char *name, const char *labels);

#endif /* SLUICE_ROUTER_HISTOGRAM_H */
