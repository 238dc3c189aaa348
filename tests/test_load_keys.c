/* SPDX-License-Identifier: MIT */
/*
 * Tests of sluice-load's key distributions (tools/load/keys.c) and of the
 * generator built on them (tools/load/workload.c), over seeded runs: the
 * uniform, Zipf and hot-set shapes match their definitions within a few
 * standard deviations, churn replaces hot keys at its rate, a seed repeats
 * a run exactly, and every key's versions rise by one.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tools/load/keys.h"
#include "tools/load/workload.h"

#include "harness.h"

/* Count @draws keys of @d over @n keys into a new array. */
static uint64_t *
histogram_of(const struct load_dist *d, uint64_t n, uint64_t draws,
             uint64_t seed)
{
	uint64_t *c = calloc(n, sizeof(*c));
	struct load_keys k;
	struct load_rng r;

	assert_non_null(c);
	assert_int_equal(load_keys_init(&k, d, n), 0);
	load_rng_seed(&r, seed, 0);
	for (uint64_t i = 0; i < draws; i++) {
		uint64_t key = load_keys_next(&k, &r);

		assert_true(key < n);
		c[key]++;
	}
	load_keys_fini(&k);
	return c;
}

/* @got within @sigmas binomial standard deviations of @p * @draws. */
static void
assert_share(uint64_t got, double p, uint64_t draws, double sigmas,
             const char *what)
{
	double want = p * (double)draws;
	double sd = sqrt((double)draws * p * (1 - p));

	if (fabs((double)got - want) > sigmas * sd + 1)
		fail_msg("%s: %llu, want %.1f +- %.1f", what,
		         (unsigned long long)got, want, sigmas * sd);
}

static void
test_keys_uniform_shape(void **state)
{
	uint64_t draws = HARNESS_SCALE(1000000, 200000);
	struct load_dist d = {.kind = LOAD_DIST_UNIFORM};
	uint64_t *c = histogram_of(&d, 100, draws, 1);
	double chi2 = 0, want = (double)draws / 100;

	(void)state;
	for (int i = 0; i < 100; i++)
		chi2 += ((double)c[i] - want) * ((double)c[i] - want) / want;
	/* 99 degrees of freedom: the 99.99th percentile is about 157. */
	if (chi2 > 157)
		fail_msg("chi-square %.1f over 99 degrees of freedom", chi2);
	free(c);
}

static double
zipf_norm(uint64_t n, double s)
{
	double h = 0;

	for (uint64_t k = 1; k <= n; k++)
		h += pow((double)k, -s);
	return h;
}

/* Each of the top ranks, and the mass of the rest in blocks. */
static void
check_zipf(uint64_t n, double s, uint64_t seed)
{
	uint64_t draws = HARNESS_SCALE(1000000, 300000);
	struct load_dist d = {.kind = LOAD_DIST_ZIPF, .zipf_s = s};
	uint64_t *c = histogram_of(&d, n, draws, seed);
	double h = zipf_norm(n, s);
	char what[128];

	for (uint64_t k = 1; k <= 20 && k <= n; k++) {
		snprintf(what, sizeof(what), "zipf:%g n=%llu rank %llu", s,
		         (unsigned long long)n, (unsigned long long)k);
		assert_share(c[k - 1], pow((double)k, -s) / h, draws, 5, what);
	}
	/* Ranks 21..n in ten blocks of equal width. */
	for (uint64_t b = 0; n > 20 && b < 10; b++) {
		uint64_t lo = 21 + b * (n - 20) / 10;
		uint64_t hi = 21 + (b + 1) * (n - 20) / 10;
		uint64_t got = 0;
		double p = 0;

		for (uint64_t k = lo; k < hi; k++) {
			got += c[k - 1];
			p += pow((double)k, -s) / h;
		}
		snprintf(what, sizeof(what), "zipf:%g ranks %llu..%llu", s,
		         (unsigned long long)lo, (unsigned long long)hi - 1);
		assert_share(got, p, draws, 5, what);
	}
	free(c);
}

static void
test_keys_zipf_shape(void **state)
{
	(void)state;
	check_zipf(1000, 1.0, 21);
	check_zipf(1000, 1.1, 22);
	check_zipf(10000, 0.5, 23);
	check_zipf(100, 2.0, 24);
	check_zipf(5, 0.99, 25);
}

static void
test_keys_zipf_large_n_stays_in_range(void **state)
{
	struct load_dist d = {.kind = LOAD_DIST_ZIPF, .zipf_s = 1.2};
	struct load_keys k;
	struct load_rng r;
	uint64_t first = 0, n = UINT64_C(1) << 32;
	int draws = 100000;

	(void)state;
	assert_int_equal(load_keys_init(&k, &d, n), 0);
	load_rng_seed(&r, 3, 0);
	for (int i = 0; i < draws; i++) {
		uint64_t key = load_keys_next(&k, &r);

		assert_true(key < n);
		first += key == 0;
	}
	/* Rank 1 has 1 / H(2^32, 1.2): zeta(1.2) = 5.5916 less the tail
	 * beyond 2^32, (2^32)^-0.2 / 0.2 = 0.0588. */
	assert_share(first, 1 / 5.5328, (uint64_t)draws, 5, "zipf rank 1");
	load_keys_fini(&k);
}

static void
test_keys_hot_set_shape(void **state)
{
	uint64_t draws = HARNESS_SCALE(1000000, 300000), hot = 0;
	struct load_dist d = {
	        .kind = LOAD_DIST_HOT, .hot_frac = 0.01, .hot_prob = 0.9};
	uint64_t *c = histogram_of(&d, 10000, draws, 31);
	double chi2 = 0, want = 0.9 * (double)draws / 100;

	(void)state;
	/* Without churn the hot set is keys 0..99 throughout. */
	for (int i = 0; i < 100; i++) {
		hot += c[i];
		chi2 += ((double)c[i] - want) * ((double)c[i] - want) / want;
	}
	assert_share(hot, 0.9, draws, 5, "hot share");
	if (chi2 > 157)
		fail_msg("hot keys not uniform: chi-square %.1f", chi2);
	/* A cold key gets 0.1 / 9900 of the events. */
	assert_share(c[5000], 0.1 / 9900, draws, 6, "one cold key");
	free(c);
}

static void
test_keys_hot_set_churns_at_its_rate(void **state)
{
	struct load_dist d = {.kind = LOAD_DIST_HOT,
	                      .hot_frac = 0.01,
	                      .hot_prob = 0.9,
	                      .churn = 0.01};
	uint64_t draws = 100000, in_hot = 0, original = 0;
	struct load_keys k;
	struct load_rng r;

	(void)state;
	assert_int_equal(load_keys_init(&k, &d, 10000), 0);
	load_rng_seed(&r, 41, 0);
	for (uint64_t i = 0; i < draws; i++) {
		uint64_t key = load_keys_next(&k, &r);

		/* The key was hot when drawn unless this draw churned it
		 * out, which happens to 1 in 100 of 1 in 100 draws. */
		in_hot += load_keys_is_hot(&k, key);
	}
	assert_share(k.churned, 0.01, draws, 5, "replacements");
	assert_share(in_hot, 0.9, draws, 6, "share of the moving hot set");
	/* After ~1000 replacements of 100 hot keys, almost none of the
	 * first hot set is left: (1 - 1/100)^1000 is 4e-5. */
	for (uint64_t key = 0; key < 100; key++)
		original += load_keys_is_hot(&k, key);
	assert_true(original <= 2);
	load_keys_fini(&k);
}

static void
test_keys_seed_repeats_the_run(void **state)
{
	struct load_dist d = {.kind = LOAD_DIST_HOT,
	                      .hot_frac = 0.05,
	                      .hot_prob = 0.7,
	                      .churn = 0.1};
	struct load_keys a, b;
	struct load_rng ra, rb;
	int same = 0;

	(void)state;
	assert_int_equal(load_keys_init(&a, &d, 1000), 0);
	assert_int_equal(load_keys_init(&b, &d, 1000), 0);
	load_rng_seed(&ra, 77, 4);
	load_rng_seed(&rb, 77, 4);
	for (int i = 0; i < 10000; i++)
		assert_int_equal(load_keys_next(&a, &ra),
		                 load_keys_next(&b, &rb));
	load_rng_seed(&rb, 78, 4);
	for (int i = 0; i < 1000; i++)
		same += load_keys_next(&a, &ra) == load_keys_next(&b, &rb);
	assert_true(same < 100);
	load_keys_fini(&a);
	load_keys_fini(&b);
}

static void
test_dist_parse(void **state)
{
	struct load_dist d;
	char err[200], buf[64];

	(void)state;
	assert_int_equal(load_dist_parse("uniform", &d, err, sizeof(err)), 0);
	assert_int_equal(d.kind, LOAD_DIST_UNIFORM);
	assert_int_equal(load_dist_parse("zipf:1.1", &d, err, sizeof(err)), 0);
	assert_int_equal(d.kind, LOAD_DIST_ZIPF);
	assert_true(d.zipf_s == 1.1);
	assert_int_equal(
	        load_dist_parse("hot:0.01:0.9:0.001", &d, err, sizeof(err)), 0);
	load_dist_format(&d, buf, sizeof(buf));
	assert_string_equal(buf, "hot:0.01:0.9:0.001");
	assert_int_equal(load_dist_parse("hot:0.2:0.5", &d, err, sizeof(err)),
	                 0);
	assert_true(d.churn == 0);

	assert_int_equal(load_dist_parse("zipf", &d, err, sizeof(err)),
	                 -EINVAL);
	assert_int_equal(load_dist_parse("zipf:0", &d, err, sizeof(err)),
	                 -EINVAL);
	assert_int_equal(load_dist_parse("zipf:1x", &d, err, sizeof(err)),
	                 -EINVAL);
	assert_int_equal(load_dist_parse("hot:0:0.5", &d, err, sizeof(err)),
	                 -EINVAL);
	assert_int_equal(load_dist_parse("hot:0.1:1.5", &d, err, sizeof(err)),
	                 -EINVAL);
	assert_int_equal(load_dist_parse("hot:0.1:0.5:2", &d, err, sizeof(err)),
	                 -EINVAL);
	assert_int_equal(load_dist_parse("normal", &d, err, sizeof(err)),
	                 -EINVAL);
	assert_non_null(strstr(err, "uniform, zipf:S or hot:F:P[:C]"));
}

/*
 * The generator: each lane owns every L-th key, a key's versions rise by
 * one from 1, kinds follow their weights, and payload sizes stay within
 * their distribution.
 */
static void
test_gen_lanes_versions_kinds_sizes(void **state)
{
	struct load_workload w = {.nkeys = 1000, .seed = 5};
	struct load_gen g[3];
	uint32_t *version = calloc(w.nkeys, sizeof(*version));
	uint64_t kind_count[2] = {0}, draws = 30000;
	char err[200];

	(void)state;
	assert_non_null(version);
	assert_int_equal(load_kinds_parse("set:3,del:1", &w, err, sizeof(err)),
	                 0);
	assert_int_equal(
	        load_size_parse("uniform:30-99", &w.size, err, sizeof(err)), 0);
	assert_int_equal(load_dist_parse("zipf:1.0", &w.dist, err, sizeof(err)),
	                 0);
	assert_int_equal(load_workload_init(&w), 0);
	assert_int_equal(w.key_digits, 3);
	for (unsigned l = 0; l < 3; l++)
		assert_int_equal(load_gen_init(&g[l], &w, l, 3), 0);
	assert_int_equal(g[0].nlocal, 334);
	assert_int_equal(g[2].nlocal, 333);

	for (uint64_t i = 0; i < draws; i++) {
		unsigned l = (unsigned)(i % 3);
		struct load_event ev;

		load_gen_next(&g[l], &ev);
		assert_int_equal(ev.key % 3, l);
		assert_true(ev.key < w.nkeys);
		assert_int_equal(ev.version, ++version[ev.key]);
		assert_in_range(ev.payload_len, 30, 99);
		kind_count[ev.kind]++;
	}
	assert_share(kind_count[0], 0.75, draws, 5, "kind set");
	for (unsigned l = 0; l < 3; l++)
		load_gen_fini(&g[l]);

	/* More lanes than keys: a lane would own nothing. */
	assert_int_equal(load_gen_init(&g[0], &w, 1000, 1001), -EINVAL);
	free(version);
}

static void
test_size_and_kind_parse(void **state)
{
	struct load_workload w = {0};
	struct load_size z;
	struct load_rng r;
	char err[200];
	double sum = 0;

	(void)state;
	assert_int_equal(load_size_parse("64", &z, err, sizeof(err)), 0);
	assert_int_equal(z.kind, LOAD_SIZE_FIXED);
	assert_int_equal(load_size_parse("16", &z, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "at least 30"));
	assert_int_equal(load_size_parse("uniform:9-5", &z, err, sizeof(err)),
	                 -EINVAL);
	assert_int_equal(load_size_parse("exp:200", &z, err, sizeof(err)), 0);
	load_rng_seed(&r, 1, 1);
	for (int i = 0; i < 100000; i++) {
		uint32_t n = load_size_next(&z, &r);

		assert_in_range(n, LOAD_PAYLOAD_HEAD, 3200);
		sum += n;
	}
	/* Mean 200, plus what raising draws below 30 to 30 adds:
	 * 30 - 200 (1 - e^-0.15) = 2.1.  The cut at 3200 takes e^-16. */
	assert_in_range((uint64_t)(sum / 100000), 198, 210);

	assert_int_equal(
	        load_kinds_parse("a,b:2,c.d-e_f:3", &w, err, sizeof(err)), 0);
	assert_int_equal(w.nkinds, 3);
	assert_int_equal(w.weight_total, 6);
	assert_string_equal(w.kinds[2].name, "c.d-e_f");
	assert_int_equal(load_kinds_parse("a b", &w, err, sizeof(err)),
	                 -EINVAL);
	assert_int_equal(load_kinds_parse("a:0", &w, err, sizeof(err)),
	                 -EINVAL);
	assert_int_equal(load_kinds_parse("", &w, err, sizeof(err)), -EINVAL);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_keys_uniform_shape),
	        cmocka_unit_test(test_keys_zipf_shape),
	        cmocka_unit_test(test_keys_zipf_large_n_stays_in_range),
	        cmocka_unit_test(test_keys_hot_set_shape),
	        cmocka_unit_test(test_keys_hot_set_churns_at_its_rate),
	        cmocka_unit_test(test_keys_seed_repeats_the_run),
	        cmocka_unit_test(test_dist_parse),
	        cmocka_unit_test(test_gen_lanes_versions_kinds_sizes),
	        cmocka_unit_test(test_size_and_kind_parse),
	};

	harness_init();
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
