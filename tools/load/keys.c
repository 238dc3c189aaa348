/* SPDX-License-Identifier: MIT */
/*
 * Key samplers.
 *
 * Zipf by rejection-inversion (Hörmann and Derflinger, 1996).  Take the
 * hat function h(x) = x^-S over [0.5, n + 0.5] and its integral
 * H(x) = (x^(1-S) - 1) / (1-S) (log x when S = 1).  Drawing u uniformly
 * between H(1.5) - h(1) and H(n + 0.5) and inverting, x = H^-1(u), lands x
 * near rank k = round(x) with probability close to k^-S; the draw is kept
 * when x falls within the part of k's interval that exactly matches k^-S,
 * which the test below decides without computing the normalising sum.
 * Far more than 9 draws in 10 are kept for any S, so a sample costs a few
 * logarithms and exponentials, and no table.
 *
 * The two helpers keep H and its inverse accurate as S nears 1, where
 * (x^(1-S) - 1) / (1-S) is a difference of nearly equal numbers:
 * expm1(t)/t and log1p(t)/t both tend to 1 as t tends to 0.
 */
#include "tools/load/keys.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double
keys_log1p_over(double t)
{
	if (fabs(t) > 1e-8)
		return log1p(t) / t;
	return 1 - t * (0.5 - t / 3);
}

static double
keys_expm1_over(double t)
{
	if (fabs(t) > 1e-8)
		return expm1(t) / t;
	return 1 + t * (0.5 + t / 6);
}

/* H(x), the integral of x^-S from 1. */
static double
zipf_h_integral(double s, double x)
{
	double lx = log(x);

	return keys_expm1_over((1 - s) * lx) * lx;
}

/* h(x) = x^-S. */
static double
zipf_h(double s, double x)
{
	return exp(-s * log(x));
}

/* H^-1(y). */
static double
zipf_h_inverse(double s, double y)
{
	double t = y * (1 - s);

	if (t < -1)
		t = -1; /* rounding below the domain's edge */
	return exp(keys_log1p_over(t) * y);
}

uint64_t
load_zipf_sample(const struct load_keys *k, struct load_rng *r)
{
	double s = k->d.zipf_s;

	for (;;) {
		double u = k->z_last +
		           load_rng_double(r) * (k->z_first - k->z_last);
		double x = zipf_h_inverse(s, u);
		double kr = floor(x + 0.5);

		if (kr < 1)
			kr = 1;
		else if (kr > (double)k->n)
			kr = (double)k->n;
		if (kr - x <= k->z_accept ||
		    u >= zipf_h_integral(s, kr + 0.5) - zipf_h(s, kr))
			return (uint64_t)kr;
	}
}

static int
keys_fail(char *err, size_t errlen, const char *why)
{
	snprintf(err, errlen, "%s", why);
	return -EINVAL;
}

/* Read a number in [lo, hi] ending at ':' or the end; advance *s. */
static int
keys_number(const char **s, double lo, double hi, double *out)
{
	char *end;
	double v = strtod(*s, &end);

	if (end == *s || (*end && *end != ':') || !(v >= lo && v <= hi))
		return -EINVAL;
	*out = v;
	*s = *end ? end + 1 : end;
	return 0;
}

int
load_dist_parse(const char *s, struct load_dist *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (!strcmp(s, "uniform")) {
		out->kind = LOAD_DIST_UNIFORM;
		return 0;
	}
	if (!strncmp(s, "zipf:", 5)) {
		s += 5;
		out->kind = LOAD_DIST_ZIPF;
		if (keys_number(&s, 1e-6, 100, &out->zipf_s) || *s)
			return keys_fail(err, errlen,
			                 "zipf:S needs an exponent S in "
			                 "(0, 100]");
		return 0;
	}
	if (!strncmp(s, "hot:", 4)) {
		s += 4;
		out->kind = LOAD_DIST_HOT;
		if (keys_number(&s, 1e-12, 1, &out->hot_frac) ||
		    keys_number(&s, 0, 1, &out->hot_prob))
			return keys_fail(err, errlen,
			                 "hot:F:P[:C] needs a key share F in "
			                 "(0, 1] and an event share P in "
			                 "[0, 1]");
		if (*s && (keys_number(&s, 0, 1, &out->churn) || *s))
			return keys_fail(err, errlen,
			                 "hot:F:P:C needs a churn C in [0, 1] "
			                 "(replacements per event)");
		return 0;
	}
	return keys_fail(err, errlen,
	                 "a key distribution is uniform, zipf:S or "
	                 "hot:F:P[:C]");
}

void
load_dist_format(const struct load_dist *d, char *buf, size_t len)
{
	switch (d->kind) {
	case LOAD_DIST_UNIFORM:
		snprintf(buf, len, "uniform");
		break;
	case LOAD_DIST_ZIPF:
		snprintf(buf, len, "zipf:%g", d->zipf_s);
		break;
	case LOAD_DIST_HOT:
		snprintf(buf, len, "hot:%g:%g:%g", d->hot_frac, d->hot_prob,
		         d->churn);
		break;
	}
}

static void
keys_init_zipf(struct load_keys *k)
{
	double s = k->d.zipf_s;

	k->z_first = zipf_h_integral(s, 1.5) - 1;
	k->z_last = zipf_h_integral(s, (double)k->n + 0.5);
	k->z_accept =
	        2 - zipf_h_inverse(s, zipf_h_integral(s, 2.5) - zipf_h(s, 2));
}

static int
keys_init_hot(struct load_keys *k)
{
	double want = k->d.hot_frac * (double)k->n;

	k->hot_n = want < 1 ? 1 : (uint64_t)(want + 0.5);
	if (k->hot_n > k->n)
		k->hot_n = k->n;
	k->perm = malloc(k->n * sizeof(*k->perm));
	if (!k->perm)
		return -ENOMEM;
	for (uint64_t i = 0; i < k->n; i++)
		k->perm[i] = (uint32_t)i;
	return 0;
}

int
load_keys_init(struct load_keys *k, const struct load_dist *d, uint64_t n)
{
	memset(k, 0, sizeof(*k));
	if (n < 1 || n > (UINT64_C(1) << 32))
		return -EINVAL;
	k->d = *d;
	k->n = n;
	switch (d->kind) {
	case LOAD_DIST_UNIFORM:
		return 0;
	case LOAD_DIST_ZIPF:
		if (!(d->zipf_s > 0))
			return -EINVAL;
		keys_init_zipf(k);
		return 0;
	case LOAD_DIST_HOT:
		return keys_init_hot(k);
	}
	return -EINVAL;
}

void
load_keys_fini(struct load_keys *k)
{
	free(k->perm);
	k->perm = NULL;
}

static uint64_t
keys_next_hot(struct load_keys *k, struct load_rng *r)
{
	uint64_t cold_n = k->n - k->hot_n, key;

	if (!cold_n || load_rng_double(r) < k->d.hot_prob)
		key = k->perm[load_rng_below(r, k->hot_n)];
	else
		key = k->perm[k->hot_n + load_rng_below(r, cold_n)];

	if (cold_n && k->d.churn > 0 && load_rng_double(r) < k->d.churn) {
		uint64_t i = load_rng_below(r, k->hot_n);
		uint64_t j = k->hot_n + load_rng_below(r, cold_n);
		uint32_t t = k->perm[i];

		k->perm[i] = k->perm[j];
		k->perm[j] = t;
		k->churned++;
	}
	return key;
}

uint64_t
load_keys_next(struct load_keys *k, struct load_rng *r)
{
	switch (k->d.kind) {
	case LOAD_DIST_UNIFORM:
		return load_rng_below(r, k->n);
	case LOAD_DIST_ZIPF:
		return load_zipf_sample(k, r) - 1;
	case LOAD_DIST_HOT:
		return keys_next_hot(k, r);
	}
	return 0;
}

int
load_keys_is_hot(const struct load_keys *k, uint64_t key)
{
	if (k->d.kind != LOAD_DIST_HOT)
		return 0;
	for (uint64_t i = 0; i < k->hot_n; i++)
		if (k->perm[i] == key)
			return 1;
	return 0;
}
