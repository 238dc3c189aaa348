/* SPDX-License-Identifier: MIT */
/*
 * The histogram's layout, in the terms of hdr.h.  With s = sub_shift and
 * u = unit_shift, a value v is first scaled to w = v >> u.  Values with
 * w < 2^s fall in bucket 0, one counter per unit.  Above that, bucket k
 * holds w in [2^(s+k-1), 2^(s+k)), counted in 2^(s-1) sub-buckets of
 * width 2^k units.  Its sub-bucket number w >> k lies in the upper half
 * [2^(s-1), 2^s), which is why bucket k starts at counter k * 2^(s-1)
 * (the lower half would repeat the bucket below) and the counters run on
 * without a gap: counter = k * 2^(s-1) + (w >> k).
 */
#include "tools/load/hdr.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define HDR_MAGIC "sluice-load-hdr"
#define HDR_VERSION 1

static unsigned
hdr_log2_floor(uint64_t v)
{
	return 63u - (unsigned)__builtin_clzll(v);
}

int
load_hdr_init(struct load_hdr *h, uint64_t lowest, uint64_t highest,
              int sigfigs)
{
	uint64_t need;
	unsigned b;

	memset(h, 0, sizeof(*h));
	if (lowest < 1 || sigfigs < 1 || sigfigs > 5 || highest < 2 * lowest ||
	    highest > (UINT64_C(1) << 62))
		return -EINVAL;

	/* Enough sub-buckets that a bucket's width is at most a
	 * 10^sigfigs-th of the values in it: 2 * 10^sigfigs, rounded up to
	 * a power of two. */
	need = 2;
	for (int i = 0; i < sigfigs; i++)
		need *= 10;
	h->sub_shift = hdr_log2_floor(need - 1) + 1;
	h->unit_shift = hdr_log2_floor(lowest);
	if (h->sub_shift + h->unit_shift > 62)
		return -EINVAL;

	/* Buckets until the last one reaches highest. */
	for (b = 1;
	     (((UINT64_C(1) << h->sub_shift) << (h->unit_shift + b - 1)) - 1) <
	     highest;
	     b++)
		;
	h->lowest = lowest;
	h->highest = highest;
	h->sigfigs = sigfigs;
	h->buckets = b;
	h->ncounts = (size_t)(b + 1) << (h->sub_shift - 1);
	h->counts = calloc(h->ncounts, sizeof(*h->counts));
	if (!h->counts)
		return -ENOMEM;
	h->min = UINT64_MAX;
	return 0;
}

int
load_hdr_init_latency(struct load_hdr *h)
{
	return load_hdr_init(h, 1, 3600 * UINT64_C(1000000000), 3);
}

void
load_hdr_fini(struct load_hdr *h)
{
	free(h->counts);
	memset(h, 0, sizeof(*h));
}

void
load_hdr_reset(struct load_hdr *h)
{
	memset(h->counts, 0, h->ncounts * sizeof(*h->counts));
	h->total = 0;
	h->clamped = 0;
	h->min = UINT64_MAX;
	h->max = 0;
	h->sum = 0;
	h->sum_sq = 0;
}

size_t
load_hdr_index(const struct load_hdr *h, uint64_t v)
{
	uint64_t w = v >> h->unit_shift;
	unsigned k;

	if (w < (UINT64_C(1) << h->sub_shift))
		return (size_t)w;
	k = hdr_log2_floor(w) - (h->sub_shift - 1);
	return ((size_t)k << (h->sub_shift - 1)) + (size_t)(w >> k);
}

/* The bucket of counter @idx, and its sub-bucket number. */
static unsigned
hdr_bucket_of(const struct load_hdr *h, size_t idx, uint64_t *sub)
{
	size_t half = (size_t)1 << (h->sub_shift - 1);
	unsigned k;

	if (idx < 2 * half) {
		*sub = idx;
		return 0;
	}
	k = (unsigned)((idx - 2 * half) / half) + 1;
	*sub = idx - ((size_t)k << (h->sub_shift - 1));
	return k;
}

uint64_t
load_hdr_lowest_equiv(const struct load_hdr *h, size_t idx)
{
	uint64_t sub;
	unsigned k = hdr_bucket_of(h, idx, &sub);

	return sub << (h->unit_shift + k);
}

uint64_t
load_hdr_highest_equiv(const struct load_hdr *h, size_t idx)
{
	uint64_t sub;
	unsigned k = hdr_bucket_of(h, idx, &sub);

	return (sub << (h->unit_shift + k)) +
	       (UINT64_C(1) << (h->unit_shift + k)) - 1;
}

void
load_hdr_record_n(struct load_hdr *h, uint64_t v, uint64_t n)
{
	if (!n)
		return;
	if (v > h->highest) {
		v = h->highest;
		h->clamped += n;
	}
	h->counts[load_hdr_index(h, v)] += n;
	h->total += n;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->sum += (double)v * (double)n;
	h->sum_sq += (double)v * (double)v * (double)n;
}

static bool
hdr_same_layout(const struct load_hdr *a, const struct load_hdr *b)
{
	return a->lowest == b->lowest && a->highest == b->highest &&
	       a->sigfigs == b->sigfigs && a->ncounts == b->ncounts;
}

int
load_hdr_merge(struct load_hdr *into, const struct load_hdr *from)
{
	if (!hdr_same_layout(into, from))
		return -EINVAL;
	if (!from->total)
		return 0;
	for (size_t i = 0; i < into->ncounts; i++)
		into->counts[i] += from->counts[i];
	into->total += from->total;
	into->clamped += from->clamped;
	if (from->min < into->min)
		into->min = from->min;
	if (from->max > into->max)
		into->max = from->max;
	into->sum += from->sum;
	into->sum_sq += from->sum_sq;
	return 0;
}

/* How many values must lie at or below the @p-th percentile. */
static uint64_t
hdr_rank(uint64_t total, double p)
{
	double want = p / 100.0 * (double)total;
	double near = nearbyint(want);
	uint64_t r;

	/* 99.9% of 1000 is 999, not 999.0000000001 rounded up to 1000. */
	if (fabs(want - near) < 1e-6 * (near > 1 ? near : 1))
		want = near;
	r = (uint64_t)ceil(want);
	if (r < 1)
		r = 1;
	return r > total ? total : r;
}

uint64_t
load_hdr_percentile(const struct load_hdr *h, double p)
{
	uint64_t rank, seen = 0;

	if (!h->total)
		return 0;
	if (p <= 0)
		return h->min;
	if (p >= 100)
		return h->max;
	rank = hdr_rank(h->total, p);
	for (size_t i = 0; i < h->ncounts; i++) {
		seen += h->counts[i];
		if (seen >= rank) {
			uint64_t v = load_hdr_highest_equiv(h, i);

			if (v > h->max)
				v = h->max;
			return v < h->min ? h->min : v;
		}
	}
	return h->max;
}

double
load_hdr_mean(const struct load_hdr *h)
{
	return h->total ? h->sum / (double)h->total : 0;
}

double
load_hdr_stddev(const struct load_hdr *h)
{
	double mean, var;

	if (h->total < 2)
		return 0;
	mean = load_hdr_mean(h);
	var = h->sum_sq / (double)h->total - mean * mean;
	return var > 0 ? sqrt(var) : 0;
}

int
load_hdr_write(const struct load_hdr *h, const char *name, FILE *out)
{
	fprintf(out,
	        "%s %d %s lowest=%llu highest=%llu sigfigs=%d total=%llu "
	        "clamped=%llu min=%llu max=%llu sum=%.17g sum_sq=%.17g\n",
	        HDR_MAGIC, HDR_VERSION, name && *name ? name : "-",
	        (unsigned long long)h->lowest, (unsigned long long)h->highest,
	        h->sigfigs, (unsigned long long)h->total,
	        (unsigned long long)h->clamped,
	        (unsigned long long)(h->total ? h->min : 0),
	        (unsigned long long)h->max, h->sum, h->sum_sq);
	for (size_t i = 0; i < h->ncounts; i++)
		if (h->counts[i])
			fprintf(out, "%zu %llu\n", i,
			        (unsigned long long)h->counts[i]);
	fprintf(out, "end\n");
	return ferror(out) ? -EIO : 0;
}

static int
hdr_fail(char *err, size_t errlen, const char *why)
{
	snprintf(err, errlen, "%s", why);
	return -EINVAL;
}

/* The header line: everything load_hdr_write() puts before the counts. */
static int
hdr_read_header(FILE *in, struct load_hdr *h, char *name, size_t namelen,
                char *err, size_t errlen)
{
	unsigned long long lowest, highest, total, clamped, min, max;
	char magic[32], label[128];
	double sum, sum_sq;
	int version, sigfigs, r;

	if (fscanf(in,
	           "%31s %d %127s lowest=%llu highest=%llu sigfigs=%d "
	           "total=%llu clamped=%llu min=%llu max=%llu sum=%lg "
	           "sum_sq=%lg",
	           magic, &version, label, &lowest, &highest, &sigfigs, &total,
	           &clamped, &min, &max, &sum, &sum_sq) != 12 ||
	    strcmp(magic, HDR_MAGIC))
		return hdr_fail(err, errlen, "not a sluice-load histogram");
	if (version != HDR_VERSION)
		return hdr_fail(err, errlen, "unknown histogram version");
	r = load_hdr_init(h, lowest, highest, sigfigs);
	if (r)
		return r == -EINVAL ? hdr_fail(err, errlen, "bad layout") : r;
	h->total = total;
	h->clamped = clamped;
	h->min = total ? min : UINT64_MAX;
	h->max = max;
	h->sum = sum;
	h->sum_sq = sum_sq;
	if (name && namelen)
		snprintf(name, namelen, "%s", label);
	return 0;
}

int
load_hdr_read(struct load_hdr *h, FILE *in, char *name, size_t namelen,
              char *err, size_t errlen)
{
	unsigned long long idx, n;
	uint64_t seen = 0;
	char word[32];
	int r;

	r = hdr_read_header(in, h, name, namelen, err, errlen);
	if (r)
		return r;
	for (;;) {
		if (fscanf(in, "%31s", word) != 1) {
			r = hdr_fail(err, errlen, "truncated: no end line");
			goto fail;
		}
		if (!strcmp(word, "end"))
			break;
		if (sscanf(word, "%llu", &idx) != 1 ||
		    fscanf(in, "%llu", &n) != 1 || idx >= h->ncounts) {
			r = hdr_fail(err, errlen, "bad counter line");
			goto fail;
		}
		h->counts[idx] += n;
		seen += n;
	}
	if (seen != h->total) {
		r = hdr_fail(err, errlen, "counters do not add up to total");
		goto fail;
	}
	return 0;

fail:
	load_hdr_fini(h);
	return r;
}
