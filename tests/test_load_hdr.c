/* SPDX-License-Identifier: MIT */
/*
 * Tests of sluice-load's HDR histogram (tools/load/hdr.c): the layout
 * keeps 3 significant digits from 1 us to 1 h; percentiles agree with the
 * exact order statistics of known distributions to within that precision;
 * merging gives the histogram of the union; a saved histogram reads back
 * the same, and a damaged file is refused.
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

#include "tools/load/hdr.h"
#include "tools/load/rng.h"

#include "harness.h"

#define HOUR_NS (3600 * UINT64_C(1000000000))

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* The exact @p-th percentile of sorted @v: the rank-th smallest value,
 * rank = ceil(p/100 * n), as the histogram defines it. */
static uint64_t
exact_percentile(const uint64_t *v, size_t n, double p)
{
	double want = p / 100.0 * (double)n;
	size_t rank = (size_t)ceil(want - 1e-9);

	if (rank < 1)
		rank = 1;
	return v[rank - 1];
}

/* |got - want| within one part in a thousand of want (3 digits). */
static void
assert_within_3_digits(uint64_t got, uint64_t want)
{
	double err = fabs((double)got - (double)want);

	if (err > (double)want / 1000.0 + 1)
		fail_msg("got %llu, want %llu (off by %.0f, more than 0.1%%)",
		         (unsigned long long)got, (unsigned long long)want,
		         err);
}

static void
test_hdr_layout_keeps_three_digits(void **state)
{
	struct load_hdr h;
	struct load_rng r;

	(void)state;
	assert_int_equal(load_hdr_init_latency(&h), 0);
	assert_int_equal(h.ncounts, 33792);
	assert_true(load_hdr_highest_equiv(&h, h.ncounts - 1) >= HOUR_NS);

	load_rng_seed(&r, 7, 0);
	for (int i = 0; i < 200000; i++) {
		/* Log-uniform from 1 ns to 1 h, plus the powers of two. */
		uint64_t v = (uint64_t)exp(load_rng_double(&r) * log(3.6e12));
		size_t idx;
		uint64_t lo, hi;

		if (i < 42)
			v = UINT64_C(1) << i;
		if (v > HOUR_NS)
			v = HOUR_NS;
		idx = load_hdr_index(&h, v);
		assert_true(idx < h.ncounts);
		lo = load_hdr_lowest_equiv(&h, idx);
		hi = load_hdr_highest_equiv(&h, idx);
		assert_true(lo <= v && v <= hi);
		/* The counter is at most a thousandth of its values wide. */
		if (v >= 1000)
			assert_true((hi - lo + 1) * 1000 <= v);
		/* Counters are contiguous: the next one starts after. */
		if (idx + 1 < h.ncounts)
			assert_int_equal(load_hdr_lowest_equiv(&h, idx + 1),
			                 hi + 1);
	}
	load_hdr_fini(&h);
}

static void
test_hdr_rejects_bad_layouts(void **state)
{
	struct load_hdr h;

	(void)state;
	assert_int_equal(load_hdr_init(&h, 0, 1000, 3), -EINVAL);
	assert_int_equal(load_hdr_init(&h, 1, 1, 3), -EINVAL);
	assert_int_equal(load_hdr_init(&h, 1, 1000, 0), -EINVAL);
	assert_int_equal(load_hdr_init(&h, 1, 1000, 6), -EINVAL);
	assert_int_equal(load_hdr_init(&h, 1, UINT64_MAX, 3), -EINVAL);
}

static void
test_hdr_percentiles_of_a_small_set(void **state)
{
	struct load_hdr h;

	(void)state;
	assert_int_equal(load_hdr_init_latency(&h), 0);
	assert_int_equal(load_hdr_percentile(&h, 50), 0); /* empty */
	for (uint64_t v = 1; v <= 1000; v++)
		load_hdr_record(&h, v);
	assert_int_equal(load_hdr_percentile(&h, 0), 1);
	assert_int_equal(load_hdr_percentile(&h, 50), 500);
	assert_int_equal(load_hdr_percentile(&h, 99), 990);
	/* 99.9% of 1000 is 999 values: not 1000 by a rounding slip. */
	assert_int_equal(load_hdr_percentile(&h, 99.9), 999);
	assert_int_equal(load_hdr_percentile(&h, 100), 1000);
	assert_int_equal(h.min, 1);
	assert_int_equal(h.max, 1000);
	assert_true(fabs(load_hdr_mean(&h) - 500.5) < 1e-9);
	assert_true(fabs(load_hdr_stddev(&h) - 288.6749) < 1e-3);
	load_hdr_fini(&h);
}

/* Record @n samples of @draw into @h and into @v, sorted afterwards. */
static void
fill(struct load_hdr *h, uint64_t *v, size_t n,
     uint64_t (*draw)(struct load_rng *r), uint64_t seed)
{
	struct load_rng r;

	load_rng_seed(&r, seed, 1);
	for (size_t i = 0; i < n; i++) {
		v[i] = draw(&r);
		load_hdr_record(h, v[i]);
	}
	qsort(v, n, sizeof(*v), cmp_u64);
}

/* Exponential, mean 1 ms. */
static uint64_t
draw_exp(struct load_rng *r)
{
	return (uint64_t)(-log1p(-load_rng_double(r)) * 1e6);
}

/* Uniform from 1 us to 1 s. */
static uint64_t
draw_uniform(struct load_rng *r)
{
	return 1000 + load_rng_below(r, 999999001);
}

/* Log-normal around 200 us: the shape of real latencies, long tail. */
static uint64_t
draw_lognormal(struct load_rng *r)
{
	double u1 = load_rng_double(r), u2 = load_rng_double(r);
	double z = sqrt(-2 * log1p(-u1)) * cos(2 * M_PI * u2);

	return (uint64_t)exp(log(2e5) + 1.2 * z);
}

static void
check_against_exact(uint64_t (*draw)(struct load_rng *r), uint64_t seed)
{
	static const double ps[] = {1,  10,   25,    50,     75,     90,
	                            99, 99.9, 99.99, 99.999, 99.9999};
	size_t n = HARNESS_SCALE(1000000, 200000);
	uint64_t *v = malloc(n * sizeof(*v));
	struct load_hdr h;

	assert_non_null(v);
	assert_int_equal(load_hdr_init_latency(&h), 0);
	fill(&h, v, n, draw, seed);
	assert_int_equal(h.total, n);
	assert_int_equal(h.min, v[0]);
	assert_int_equal(h.max, v[n - 1]);
	for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++)
		assert_within_3_digits(load_hdr_percentile(&h, ps[i]),
		                       exact_percentile(v, n, ps[i]));
	load_hdr_fini(&h);
	free(v);
}

static void
test_hdr_percentiles_match_exponential(void **state)
{
	(void)state;
	check_against_exact(draw_exp, 11);
}

static void
test_hdr_percentiles_match_uniform(void **state)
{
	(void)state;
	check_against_exact(draw_uniform, 12);
}

static void
test_hdr_percentiles_match_lognormal(void **state)
{
	(void)state;
	check_against_exact(draw_lognormal, 13);
}

/* And the analytic quantiles: the exponential's p-th is -ln(1-p) * mean. */
static void
test_hdr_exponential_quantiles_analytic(void **state)
{
	size_t n = HARNESS_SCALE(2000000, 400000);
	struct load_hdr h;
	struct load_rng r;

	(void)state;
	assert_int_equal(load_hdr_init_latency(&h), 0);
	load_rng_seed(&r, 5, 2);
	for (size_t i = 0; i < n; i++)
		load_hdr_record(&h, draw_exp(&r));
	for (double p = 10; p <= 99; p += 89.0 / 8) {
		double want = -log(1 - p / 100) * 1e6;
		double got = (double)load_hdr_percentile(&h, p);

		/* Sampling error dominates: 2% at these counts. */
		if (fabs(got - want) > 0.02 * want)
			fail_msg("p%.1f: %.0f, want %.0f", p, got, want);
	}
	assert_true(fabs(load_hdr_mean(&h) - 1e6) < 0.01e6);
	load_hdr_fini(&h);
}

static void
test_hdr_merge_is_the_union(void **state)
{
	struct load_hdr a, b, all;
	struct load_rng r;

	(void)state;
	assert_int_equal(load_hdr_init_latency(&a), 0);
	assert_int_equal(load_hdr_init_latency(&b), 0);
	assert_int_equal(load_hdr_init_latency(&all), 0);
	load_rng_seed(&r, 3, 3);
	for (int i = 0; i < 300000; i++) {
		uint64_t v = draw_lognormal(&r);

		load_hdr_record(i % 3 ? &a : &b, v);
		load_hdr_record(&all, v);
	}
	assert_int_equal(load_hdr_merge(&a, &b), 0);
	assert_int_equal(a.total, all.total);
	assert_int_equal(a.min, all.min);
	assert_int_equal(a.max, all.max);
	assert_memory_equal(a.counts, all.counts,
	                    all.ncounts * sizeof(*all.counts));
	for (double p = 0; p <= 100; p += 0.5)
		assert_int_equal(load_hdr_percentile(&a, p),
		                 load_hdr_percentile(&all, p));

	/* Merging into an empty histogram copies. */
	load_hdr_reset(&b);
	assert_int_equal(load_hdr_merge(&b, &all), 0);
	assert_int_equal(load_hdr_percentile(&b, 99.9),
	                 load_hdr_percentile(&all, 99.9));
	load_hdr_fini(&a);
	load_hdr_fini(&b);
	load_hdr_fini(&all);
}

static void
test_hdr_merge_refuses_other_layouts(void **state)
{
	struct load_hdr a, b;

	(void)state;
	assert_int_equal(load_hdr_init_latency(&a), 0);
	assert_int_equal(load_hdr_init(&b, 1000, HOUR_NS, 2), 0);
	load_hdr_record(&b, 5000);
	assert_int_equal(load_hdr_merge(&a, &b), -EINVAL);
	assert_int_equal(a.total, 0);
	load_hdr_fini(&a);
	load_hdr_fini(&b);
}

static void
test_hdr_values_above_the_top_are_clamped(void **state)
{
	struct load_hdr h;

	(void)state;
	assert_int_equal(load_hdr_init_latency(&h), 0);
	load_hdr_record(&h, 5);
	load_hdr_record_n(&h, 2 * HOUR_NS, 3);
	assert_int_equal(h.total, 4);
	assert_int_equal(h.clamped, 3);
	assert_int_equal(h.max, HOUR_NS);
	assert_int_equal(load_hdr_percentile(&h, 50), HOUR_NS);
	load_hdr_fini(&h);
}

static void
test_hdr_file_round_trip(void **state)
{
	struct load_hdr h, back;
	struct load_rng r;
	char name[32], err[128];
	FILE *f = tmpfile();

	(void)state;
	assert_non_null(f);
	assert_int_equal(load_hdr_init_latency(&h), 0);
	load_rng_seed(&r, 9, 9);
	for (int i = 0; i < 100000; i++)
		load_hdr_record(&h, draw_exp(&r));
	assert_int_equal(load_hdr_write(&h, "e2e", f), 0);
	rewind(f);
	assert_int_equal(
	        load_hdr_read(&back, f, name, sizeof(name), err, sizeof(err)),
	        0);
	assert_string_equal(name, "e2e");
	assert_int_equal(back.total, h.total);
	assert_int_equal(back.min, h.min);
	assert_int_equal(back.max, h.max);
	assert_memory_equal(back.counts, h.counts,
	                    h.ncounts * sizeof(*h.counts));
	assert_true(fabs(load_hdr_mean(&back) - load_hdr_mean(&h)) < 1e-6);
	fclose(f);
	load_hdr_fini(&back);
	load_hdr_fini(&h);
}

static void
read_text(const char *text, int want, const char *why)
{
	struct load_hdr h;
	char err[128] = "";
	FILE *f = tmpfile();

	assert_non_null(f);
	fputs(text, f);
	rewind(f);
	assert_int_equal(load_hdr_read(&h, f, NULL, 0, err, sizeof(err)), want);
	if (why)
		assert_string_equal(err, why);
	if (!want)
		load_hdr_fini(&h);
	fclose(f);
}

static void
test_hdr_read_refuses_damaged_files(void **state)
{
	static const char head[] =
	        "sluice-load-hdr 1 x lowest=1 highest=3600000000000 "
	        "sigfigs=3 total=3 clamped=0 min=5 max=7 sum=18 sum_sq=110\n";
	char buf[512];

	(void)state;
	snprintf(buf, sizeof(buf), "%s5 2\n7 1\nend\n", head);
	read_text(buf, 0, NULL);
	read_text("hello\n", -EINVAL, "not a sluice-load histogram");
	snprintf(buf, sizeof(buf), "%s5 2\n7 1\n", head);
	read_text(buf, -EINVAL, "truncated: no end line");
	snprintf(buf, sizeof(buf), "%s5 2\nend\n", head);
	read_text(buf, -EINVAL, "counters do not add up to total");
	snprintf(buf, sizeof(buf), "%s99999999 3\nend\n", head);
	read_text(buf, -EINVAL, "bad counter line");
	read_text("sluice-load-hdr 2 x lowest=1 highest=3600000000000 "
	          "sigfigs=3 total=0 clamped=0 min=0 max=0 sum=0 sum_sq=0\n"
	          "end\n",
	          -EINVAL, "unknown histogram version");
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_hdr_layout_keeps_three_digits),
	        cmocka_unit_test(test_hdr_rejects_bad_layouts),
	        cmocka_unit_test(test_hdr_percentiles_of_a_small_set),
	        cmocka_unit_test(test_hdr_percentiles_match_exponential),
	        cmocka_unit_test(test_hdr_percentiles_match_uniform),
	        cmocka_unit_test(test_hdr_percentiles_match_lognormal),
	        cmocka_unit_test(test_hdr_exponential_quantiles_analytic),
	        cmocka_unit_test(test_hdr_merge_is_the_union),
	        cmocka_unit_test(test_hdr_merge_refuses_other_layouts),
	        cmocka_unit_test(test_hdr_values_above_the_top_are_clamped),
	        cmocka_unit_test(test_hdr_file_round_trip),
	        cmocka_unit_test(test_hdr_read_refuses_damaged_files),
	};

	harness_init();
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
