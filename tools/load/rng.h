/* SPDX-License-Identifier: MIT */
/*
 * The load generator's random numbers: xoshiro256** seeded through
 * splitmix64, so that one seed gives one run, event for event, whatever
 * the machine.  Each stream (a connection's keys, its kinds, its payload
 * sizes) is seeded from the run's seed and the stream's own number.
 */
#ifndef SLUICE_LOAD_RNG_H
#define SLUICE_LOAD_RNG_H

#include <stdint.h>

struct load_rng {
	uint64_t s[4];
};

static inline uint64_t
load_splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* load_rng_seed() - the stream @stream of run seed @seed. */
static inline void
load_rng_seed(struct load_rng *r, uint64_t seed, uint64_t stream)
{
	uint64_t x = seed ^ (stream * 0xd1342543de82ef95ull);

	for (int i = 0; i < 4; i++)
		r->s[i] = load_splitmix64(&x);
}

static inline uint64_t
load_rng_rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static inline uint64_t
load_rng_next(struct load_rng *r)
{
	uint64_t *s = r->s;
	uint64_t out = load_rng_rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = load_rng_rotl(s[3], 45);
	return out;
}

/* A double in [0, 1) with 53 random bits. */
static inline double
load_rng_double(struct load_rng *r)
{
	return (double)(load_rng_next(r) >> 11) * 0x1.0p-53;
}

/*
 * An integer in [0, n), n > 0, by multiplying into 128 bits: the bias is
 * at most n / 2^64, far below anything a run of 2^40 draws can show.
 */
static inline uint64_t
load_rng_below(struct load_rng *r, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)load_rng_next(r) * n) >> 64);
}

#endif /* SLUICE_LOAD_RNG_H */
