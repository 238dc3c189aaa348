/* SPDX-License-Identifier: MIT */
/*
 * Which key each event goes to: uniform, Zipf, or a hot set with churn.
 *
 * Keys are numbered 0 .. n-1, and for Zipf key 0 is the most frequent
 * (rank 1).  Each sampler draws only from the load_rng it is given, so a
 * seeded run repeats exactly.
 *
 *   uniform          every key equally often
 *   zipf:S           key of rank k with probability proportional to k^-S
 *                    (S > 0); drawn by rejection-inversion in O(1) time
 *                    and memory, so a million keys cost nothing to set up
 *   hot:F:P[:C]      a hot set of F*n keys (at least one) takes a share P
 *                    of the events, uniformly within it; the rest go
 *                    uniformly to the other keys.  After each event, with
 *                    probability C (the churn), one hot key, chosen at
 *                    random, trades places with a random cold key: the
 *                    hot set drifts at C replacements per event.
 */
#ifndef SLUICE_LOAD_KEYS_H
#define SLUICE_LOAD_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "tools/load/rng.h"

enum load_dist_kind {
	LOAD_DIST_UNIFORM,
	LOAD_DIST_ZIPF,
	LOAD_DIST_HOT,
};

struct load_dist {
	enum load_dist_kind kind;
	double zipf_s;   /* zipf: the exponent, > 0 */
	double hot_frac; /* hot: share of the keys, (0, 1] */
	double hot_prob; /* hot: share of the events, [0, 1] */
	double churn;    /* hot: replacements per event, [0, 1] */
};

/**
 * load_dist_parse() - read "uniform", "zipf:S" or "hot:F:P[:C]".
 * Return: 0, or -EINVAL with the reason in @err.
 */
int load_dist_parse(const char *s, struct load_dist *out, char *err,
                    size_t errlen);

/* load_dist_format() - the same notation, for reports. */
void load_dist_format(const struct load_dist *d, char *buf, size_t len);

struct load_keys {
	struct load_dist d;
	uint64_t n;
	/* Zipf: the integrals rejection-inversion needs, fixed by n and S. */
	double z_first, z_last, z_accept;
	/* Hot set: perm[0 .. hot_n) are the hot keys, the rest are cold. */
	uint64_t hot_n;
	uint32_t *perm;
	uint64_t churned; /* replacements so far */
};

/**
 * load_keys_init() - a sampler of @d over @n keys (1 <= n <= 2^32).
 * Return: 0, -EINVAL, or -ENOMEM.
 */
int load_keys_init(struct load_keys *k, const struct load_dist *d, uint64_t n);
void load_keys_fini(struct load_keys *k);

/* load_keys_next() - the next key, 0 .. n-1. */
uint64_t load_keys_next(struct load_keys *k, struct load_rng *r);

/* load_keys_is_hot() - whether @key is in the hot set now (hot only). */
int load_keys_is_hot(const struct load_keys *k, uint64_t key);

/* load_zipf_sample() - one Zipf rank in 1 .. n, for tests and the above. */
uint64_t load_zipf_sample(const struct load_keys *k, struct load_rng *r);

#endif /* SLUICE_LOAD_KEYS_H */
