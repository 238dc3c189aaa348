/* SPDX-License-Identifier: MIT */
/*
 * A high-dynamic-range histogram of latencies, for sluice-load.
 *
 * The range is cut into buckets that each double the width of the one
 * before; every bucket but the first is split into half_count equal
 * sub-buckets, the first into twice as many.  A value is thus kept to
 * within 1 part in half_count of itself: with 3 significant digits,
 * half_count is 1024, so two values that differ in their third digit
 * never share a counter.  Recording is a shift, a count of leading zeros
 * and an add; merging two histograms of one layout adds their counters.
 *
 * sluice-load records nanoseconds with a resolution of 1 ns and a top of
 * one hour (load_hdr_init_latency()): every value from 1 us to 1 h is
 * kept to 3 significant digits, in 33,792 counters (270 KB).
 *
 * A histogram is plain memory: it has no lock, and one task at a time may
 * use it.
 */
#ifndef SLUICE_LOAD_HDR_H
#define SLUICE_LOAD_HDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct load_hdr {
	/* Layout, fixed by load_hdr_init(). */
	uint64_t lowest;  /* resolution of the first bucket */
	uint64_t highest; /* values above are counted as this */
	int sigfigs;
	unsigned unit_shift; /* log2 of the first bucket's sub-bucket */
	unsigned sub_shift;  /* log2 of sub-buckets in the first bucket */
	unsigned buckets;
	size_t ncounts;

	/* Contents. */
	uint64_t total;
	uint64_t clamped;   /* values recorded above highest */
	uint64_t min, max;  /* exact, not bucketed */
	double sum, sum_sq; /* for the mean and standard deviation */
	uint64_t *counts;
};

/**
 * load_hdr_init() - an empty histogram.
 * @lowest: the smallest value told apart from 0 (>= 1).
 * @highest: the largest value kept (>= 2 * @lowest).
 * @sigfigs: significant decimal digits kept (1 to 5).
 *
 * Return: 0, -EINVAL for a bad layout, or -ENOMEM.
 */
int load_hdr_init(struct load_hdr *h, uint64_t lowest, uint64_t highest,
                  int sigfigs);

/* load_hdr_init_latency() - nanoseconds, 1 ns to 1 h, 3 digits. */
int load_hdr_init_latency(struct load_hdr *h);

/* load_hdr_fini() - release the counters; @h may be initialised again. */
void load_hdr_fini(struct load_hdr *h);

/* load_hdr_reset() - forget every value, keep the layout. */
void load_hdr_reset(struct load_hdr *h);

/* load_hdr_record_n() - count @v @n times (above highest: as highest). */
void load_hdr_record_n(struct load_hdr *h, uint64_t v, uint64_t n);

static inline void
load_hdr_record(struct load_hdr *h, uint64_t v)
{
	load_hdr_record_n(h, v, 1);
}

/**
 * load_hdr_merge() - add every value of @from to @into.
 * Return: 0, or -EINVAL when the two layouts differ (nothing is added).
 */
int load_hdr_merge(struct load_hdr *into, const struct load_hdr *from);

/**
 * load_hdr_percentile() - the value at percentile @p (0 to 100): the
 * smallest recorded value v, to the histogram's precision, such that at
 * least @p percent of the values are at most v.  0 when empty; the exact
 * maximum for 100.
 */
uint64_t load_hdr_percentile(const struct load_hdr *h, double p);

double load_hdr_mean(const struct load_hdr *h);
double load_hdr_stddev(const struct load_hdr *h);

/*
 * The counter a value lands in, and the range of values a counter holds
 * (both ends included).  For tests and the file format.
 */
size_t load_hdr_index(const struct load_hdr *h, uint64_t v);
uint64_t load_hdr_lowest_equiv(const struct load_hdr *h, size_t idx);
uint64_t load_hdr_highest_equiv(const struct load_hdr *h, size_t idx);

/**
 * load_hdr_write() - save @h as text: a header line, then one line per
 * non-empty counter ("INDEX COUNT").  @name labels it ("e2e", ...).
 * Return: 0 or -EIO.
 */
int load_hdr_write(const struct load_hdr *h, const char *name, FILE *out);

/**
 * load_hdr_read() - load a histogram written by load_hdr_write().
 * @h: initialised here with the file's layout; load_hdr_fini() it.
 * @name: receives the label (up to @namelen bytes), or NULL.
 * @err: a reason on failure.
 *
 * Return: 0; -EINVAL for a malformed file; -ENOMEM.
 */
int load_hdr_read(struct load_hdr *h, FILE *in, char *name, size_t namelen,
                  char *err, size_t errlen);

#endif /* SLUICE_LOAD_HDR_H */
