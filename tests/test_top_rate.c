/* SPDX-License-Identifier: MIT */
/*
 * Tests of sluice-top's arithmetic (tools/top/rate.c, tools/top/model.c).
 *
 * Counter rates, with a reset taken as a restart from zero; quantiles
 * from known buckets, worked out by hand (interpolation inside a bucket,
 * the first bucket from 0, a rank past the last finite bound, empty and
 * malformed histograms); the window between two readings of a histogram;
 * and a view built from two canned scrapes: daemon-wide and per-route
 * rates, a route whose counters reset, a route that appeared, the fold
 * ratio and p99 over the window against those since the start, and a
 * daemon restart between the scrapes.  Where the router is built, the
 * router's own histogram is exported, parsed back and its p99 estimated
 * against the true value.
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

#include "tools/top/model.h"
#include "tools/top/prom.h"
#include "tools/top/rate.h"

#include "harness.h"

#ifdef TOP_TEST_ROUTER
#include "router/histogram.h"
#endif

/* Equal to within a part in a billion: the arithmetic is exact enough. */
static void
assert_near(double got, double want, const char *what)
{
	if (!(fabs(got - want) <= 1e-9 * fmax(1, fabs(want))))
		fail_msg("%s: got %.12g, want %.12g", what, got, want);
}

static void
test_rate_counter_increase_and_reset(void **state)
{
	(void)state;
	assert_near(top_counter_increase(100, 250), 150, "growth");
	assert_near(top_counter_increase(100, 100), 0, "no change");
	/* Lower than before: restarted from zero, all of it new. */
	assert_near(top_counter_increase(1000, 40), 40, "reset");
	assert_near(top_counter_rate(100, 300, 2), 100, "rate");
	assert_near(top_counter_rate(1000, 40, 2), 20, "rate after reset");
	assert_true(isnan(top_counter_rate(1, 2, 0)));
	assert_true(isnan(top_counter_rate(1, 2, -1)));
	assert_true(isnan(top_counter_rate(NAN, 2, 1)));
	assert_true(isnan(top_counter_rate(1, NAN, 1)));
}

#define B(le_, n_)                                                             \
	{                                                                      \
		.le = (le_), .count = (n_)                                     \
	}

static double
quantile(const struct top_bucket *b, size_t n, double q, bool *above)
{
	struct top_quantile out = {0};

	assert_int_equal(top_hist_quantile(b, n, q, &out), 0);
	if (above)
		*above = out.above;
	else
		assert_false(out.above);
	return out.value;
}

static void
test_quantile_interpolates_within_the_bucket(void **state)
{
	/* 10 at or below 1, 20 more in (1, 2], 10 more in (2, 5]. */
	static const struct top_bucket b[] = {
		B(1, 10),
		B(2, 30),
		B(5, 40),
		B(INFINITY, 40),
	};

	(void)state;
	/* rank 20 of 40: bucket (1, 2], 10 of its 20 in: 1.5. */
	assert_near(quantile(b, 4, 0.5, NULL), 1.5, "p50");
	/* rank 39.6: bucket (2, 5], 9.6 of its 10 in: 2 + 3 * 0.96. */
	assert_near(quantile(b, 4, 0.99, NULL), 4.88, "p99");
	assert_near(quantile(b, 4, 1, NULL), 5, "p100");
	/* rank 4 in the first bucket, which starts at 0: 0.4. */
	assert_near(quantile(b, 4, 0.1, NULL), 0.4, "p10");
	/* rank 10 exactly fills the first bucket: its upper bound. */
	assert_near(quantile(b, 4, 0.25, NULL), 1, "p25");
	assert_near(quantile(b, 4, 0, NULL), 0, "p0");
}

static void
test_quantile_skips_empty_buckets(void **state)
{
	static const struct top_bucket b[] = {
		B(0.001, 0),
		B(0.002, 0),
		B(0.005, 8),
		B(INFINITY, 8),
	};

	(void)state;
	/* Everything is in (0.002, 0.005]: p0 is its lower bound. */
	assert_near(quantile(b, 4, 0, NULL), 0.002, "p0");
	assert_near(quantile(b, 4, 0.5, NULL), 0.0035, "p50");
}

static void
test_quantile_past_the_last_bound(void **state)
{
	static const struct top_bucket b[] = {
		B(1, 10),
		B(5, 10),
		B(INFINITY, 20),
	};
	bool above = false;

	(void)state;
	/* Half the observations are above 5: p99 is only known to be. */
	assert_near(quantile(b, 3, 0.99, &above), 5, "floor");
	assert_true(above);
	assert_near(quantile(b, 3, 0.4, &above), 0.8, "below");
	assert_false(above);
}

static void
test_quantile_refuses_what_is_not_a_histogram(void **state)
{
	static const struct top_bucket empty[] = {B(1, 0), B(INFINITY, 0)};
	static const struct top_bucket no_inf[] = {B(1, 1), B(2, 2)};
	static const struct top_bucket unsorted[] = {
		B(2, 1),
		B(1, 2),
		B(INFINITY, 2),
	};
	static const struct top_bucket decreasing[] = {
		B(1, 5),
		B(2, 3),
		B(INFINITY, 5),
	};
	static const struct top_bucket ok[] = {B(1, 1), B(INFINITY, 1)};
	struct top_quantile out;

	(void)state;
	assert_int_equal(top_hist_quantile(empty, 2, 0.99, &out), -ENODATA);
	assert_int_equal(top_hist_quantile(no_inf, 2, 0.99, &out), -EINVAL);
	assert_int_equal(top_hist_quantile(unsorted, 3, 0.99, &out), -EINVAL);
	assert_int_equal(top_hist_quantile(decreasing, 3, 0.5, &out), -EINVAL);
	assert_int_equal(top_hist_quantile(ok, 0, 0.5, &out), -EINVAL);
	assert_int_equal(top_hist_quantile(ok, 2, 1.5, &out), -EINVAL);
	assert_int_equal(top_hist_quantile(ok, 2, -0.1, &out), -EINVAL);
	assert_int_equal(top_hist_quantile(ok, 2, NAN, &out), -EINVAL);
}

static void
test_hist_window(void **state)
{
	static const struct top_bucket prev[] = {
		B(1, 10),
		B(2, 30),
		B(INFINITY, 31),
	};
	static const struct top_bucket cur[] = {
		B(1, 12),
		B(2, 40),
		B(INFINITY, 45),
	};
	static const struct top_bucket reset[] = {
		B(1, 1),
		B(2, 2),
		B(INFINITY, 3),
	};
	static const struct top_bucket other[] = {
		B(1, 50),
		B(3, 60),
		B(INFINITY, 70),
	};
	struct top_bucket w[3];

	(void)state;
	top_hist_window(prev, 3, cur, 3, w);
	assert_near(w[0].count, 2, "(0,1]");
	assert_near(w[1].count, 10, "(0,2]");
	assert_near(w[2].count, 14, "all");
	assert_near(w[1].le, 2, "bound");

	/* A lower total is a reset: the new reading is the window. */
	top_hist_window(prev, 3, reset, 3, w);
	assert_near(w[2].count, 3, "reset");
	/* Other bounds cannot be subtracted: the same. */
	top_hist_window(prev, 3, other, 3, w);
	assert_near(w[1].le, 3, "other bounds");
	assert_near(w[2].count, 70, "other bounds");
	top_hist_window(NULL, 0, cur, 3, w);
	assert_near(w[2].count, 45, "no earlier reading");
}

/* ---- views from canned scrapes ---- */

#define HIST(route, a, b, c, inf)                                              \
	"sluice_reconcile_latency_seconds_bucket{route=\"" route               \
	"\",le=\"0.001\"} " #a "\n"                                            \
	"sluice_reconcile_latency_seconds_bucket{route=\"" route               \
	"\",le=\"0.01\"} " #b "\n"                                             \
	"sluice_reconcile_latency_seconds_bucket{route=\"" route               \
	"\",le=\"0.1\"} " #c "\n"                                              \
	"sluice_reconcile_latency_seconds_bucket{route=\"" route               \
	"\",le=\"+Inf\"} " #inf "\n"

static const char scrape_a[] =
	"sluice_events_ingested_total 1000\n"
	"sluice_events_unmatched_total 5\n"
	"sluice_events_malformed_total 2\n"
	"sluice_start_time_seconds 1700000000\n"
	"sluice_tasks 14\n"
	"sluice_route_pending{route=\"orders\"} 3\n"
	"sluice_route_adds_total{route=\"orders\"} 1000\n"
	"sluice_route_folds_total{route=\"orders\"} 100\n"
	"sluice_route_reconciles_total{route=\"orders\"} 900\n"
	"sluice_route_retries_total{route=\"orders\"} 10\n"
	"sluice_route_adds_total{route=\"users\"} 500\n"
	"sluice_route_reconciles_total{route=\"users\"} 500\n" HIST(
		"orders", 90, 99, 100,
		100) "sluice_proc_runq_length{proc=\"0\"} 2\n"
		     "sluice_proc_tasks_run_total{proc=\"0\"} 10000\n";

/* Two seconds later. */
static const char scrape_b[] =
	"sluice_events_ingested_total 1600\n"
	"sluice_events_unmatched_total 5\n"
	"sluice_events_malformed_total 6\n"
	"sluice_start_time_seconds 1700000000\n"
	"sluice_tasks 15\n"
	"sluice_route_pending{route=\"orders\"} 4\n"
	"sluice_route_adds_total{route=\"orders\"} 1400\n"
	"sluice_route_folds_total{route=\"orders\"} 300\n"
	"sluice_route_reconciles_total{route=\"orders\"} 1100\n"
	"sluice_route_retries_total{route=\"orders\"} 10\n"
	/* users was removed and added back: its counters restarted. */
	"sluice_route_adds_total{route=\"users\"} 40\n"
	"sluice_route_reconciles_total{route=\"users\"} 30\n"
	"sluice_route_adds_total{route=\"fresh\"} 10\n" HIST(
		"orders", 90, 99, 200,
		200) "sluice_proc_runq_length{proc=\"0\"} 4\n"
		     "sluice_proc_tasks_run_total{proc=\"0\"} 12000\n";

struct scrape {
	struct top_prom_set set;
	struct top_state st;
};

static void
scrape_load(struct scrape *s, const char *text)
{
	top_prom_init(&s->set);
	assert_int_equal(top_prom_parse(&s->set, text, strlen(text)), 0);
	assert_int_equal(s->set.bad_lines, 0);
	assert_int_equal(top_state_build(&s->st, &s->set), 0);
}

static void
scrape_free(struct scrape *s)
{
	top_state_fini(&s->st);
	top_prom_fini(&s->set);
}

static const struct top_row *
row(const struct top_view *v, enum top_kind k, const char *name)
{
	for (size_t i = 0; i < v->nrows[k]; i++)
		if (!strcmp(v->rows[k][i].name, name))
			return &v->rows[k][i];
	fail_msg("no row \"%s\"", name);
	return NULL;
}

static void
test_view_rates_between_two_scrapes(void **state)
{
	struct scrape a, b;
	struct top_view v;
	const struct top_row *r;

	(void)state;
	scrape_load(&a, scrape_a);
	scrape_load(&b, scrape_b);
	assert_int_equal(top_view_build(&v, &a.st, &b.st, 2.0, 1700000100), 0);
	assert_true(v.rates);
	assert_false(v.restarted);
	assert_near(v.window_s, 2, "window");
	assert_near(v.uptime_s, 100, "uptime");

	assert_near(v.rate[TOP_G_INGESTED], 300, "in/s");
	assert_near(v.rate[TOP_G_UNMATCHED], 0, "unmatched/s");
	assert_near(v.rate[TOP_G_MALFORMED], 2, "parse errors/s");
	assert_near(v.now[TOP_G_MALFORMED], 6, "parse errors");
	assert_true(isnan(v.rate[TOP_G_TASKS])); /* a gauge */
	assert_near(v.now[TOP_G_TASKS], 15, "tasks");

	r = row(&v, TOP_ROUTES, "orders");
	assert_near(r->now[TOP_R_PENDING], 4, "depth");
	assert_true(isnan(r->rate[TOP_R_PENDING]));
	assert_near(r->rate[TOP_R_ADDS], 200, "orders in/s");
	assert_near(r->rate[TOP_R_RECONCILES], 100, "orders out/s");
	assert_near(r->rate[TOP_R_RETRIES], 0, "orders retries/s");
	/* Absent from both scrapes: unknown, not zero. */
	assert_true(isnan(r->rate[TOP_R_DEAD]));
	/* 200 of the window's 400 adds folded. */
	assert_near(r->fold_ratio, 0.5, "fold ratio over the window");

	r = row(&v, TOP_ROUTES, "users");
	assert_near(r->rate[TOP_R_ADDS], 20, "users in/s after a reset");
	assert_near(r->rate[TOP_R_RECONCILES], 15, "users out/s after reset");
	r = row(&v, TOP_ROUTES, "fresh");
	assert_near(r->rate[TOP_R_ADDS], 5, "a new route counts from 0");

	/* Out: reconciles over the routes that have the series. */
	assert_near(v.out_rate, 100 + 15, "out/s");
	assert_near(v.out_total, 1100 + 30, "reconciled");
	/* No route exports dead letters here: unknown. */
	assert_true(isnan(v.dead_total));

	r = row(&v, TOP_PROCS, "0");
	assert_near(r->rate[TOP_P_TASKS_RUN], 1000, "P0 tasks run/s");
	assert_near(r->now[TOP_P_RUNQ], 4, "P0 run queue");

	top_view_fini(&v);
	scrape_free(&a);
	scrape_free(&b);
}

static void
test_view_p99_over_the_window(void **state)
{
	struct scrape a, b;
	struct top_view v;
	const struct top_row *r;

	(void)state;
	scrape_load(&a, scrape_a);
	scrape_load(&b, scrape_b);

	/*
	 * The window holds 100 observations in (0.01, 0.1] and 0 below:
	 * rank 99 of 100 there is 0.01 + 0.09 * 0.99.
	 */
	assert_int_equal(top_view_build(&v, &a.st, &b.st, 2.0, 0), 0);
	r = row(&v, TOP_ROUTES, "orders");
	assert_int_equal(r->p99_err[TOP_H_LATENCY], 0);
	assert_false(r->p99[TOP_H_LATENCY].above);
	assert_near(r->p99[TOP_H_LATENCY].value, 0.01 + 0.09 * 0.99, "p99");
	/* No duration histogram was scraped, and users has no latency. */
	assert_int_equal(r->p99_err[TOP_H_DURATION], -ENODATA);
	assert_int_equal(row(&v, TOP_ROUTES, "users")->p99_err[TOP_H_LATENCY],
			 -ENODATA);
	top_view_fini(&v);

	/*
	 * Since the start (no earlier scrape): 200 observations, 99 at or
	 * below 0.01; rank 198 is 99 into the 101 of (0.01, 0.1].
	 */
	assert_int_equal(top_view_build(&v, NULL, &b.st, 0, 0), 0);
	assert_false(v.rates);
	r = row(&v, TOP_ROUTES, "orders");
	assert_near(r->p99[TOP_H_LATENCY].value, 0.01 + 0.09 * 99.0 / 101.0,
		    "p99 since the start");
	/* And the fold ratio since the start: 300 of 1400. */
	assert_near(r->fold_ratio, 300.0 / 1400.0, "fold ratio since start");
	assert_true(isnan(r->rate[TOP_R_ADDS]));
	assert_true(isnan(v.rate[TOP_G_INGESTED]));
	assert_near(v.now[TOP_G_INGESTED], 1600, "ingested");
	top_view_fini(&v);

	/* Nothing observed between two equal scrapes: no p99 to show. */
	assert_int_equal(top_view_build(&v, &b.st, &b.st, 1.0, 0), 0);
	assert_int_equal(row(&v, TOP_ROUTES, "orders")->p99_err[TOP_H_LATENCY],
			 -ENODATA);
	assert_true(isnan(row(&v, TOP_ROUTES, "orders")->fold_ratio));
	top_view_fini(&v);

	scrape_free(&a);
	scrape_free(&b);
}

static void
test_view_restart_drops_rates(void **state)
{
	static const char restarted[] =
		"sluice_events_ingested_total 1700\n"
		"sluice_start_time_seconds 1700000090\n";
	struct scrape a, c;
	struct top_view v;

	(void)state;
	scrape_load(&a, scrape_a);
	scrape_load(&c, restarted);

	/* The counter grew past the old reading, so a reset would not show:
	 * only the start time tells that these 1700 are all new. */
	assert_int_equal(top_view_build(&v, &a.st, &c.st, 2.0, 1700000100), 0);
	assert_true(v.restarted);
	assert_false(v.rates);
	assert_true(isnan(v.rate[TOP_G_INGESTED]));
	assert_near(v.uptime_s, 10, "uptime of the new run");
	top_view_fini(&v);
	scrape_free(&a);
	scrape_free(&c);
}

static void
test_state_odd_series(void **state)
{
	static const char text[] =
		/* No route label: ignored. */
		"sluice_route_pending 5\n"
		/* A bucket bound that is not a number spoils the p99. */
		"sluice_reconcile_duration_seconds_bucket{route=\"r\","
		"le=\"soon\"} 1\n"
		"sluice_reconcile_duration_seconds_bucket{route=\"r\","
		"le=\"+Inf\"} 1\n"
		/* Buckets out of order are sorted. */
		"sluice_reconcile_latency_seconds_bucket{route=\"r\","
		"le=\"+Inf\"} 4\n"
		"sluice_reconcile_latency_seconds_bucket{route=\"r\","
		"le=\"2\"} 4\n"
		"sluice_reconcile_latency_seconds_bucket{route=\"r\","
		"le=\"1\"} 0\n"
		/* Unknown series and other programs' metrics: ignored. */
		"sluice_something_new_total{route=\"r\"} 9\n"
		"process_cpu_seconds_total 3\n";
	struct scrape s;
	struct top_view v;
	const struct top_row *r;

	(void)state;
	scrape_load(&s, text);
	assert_int_equal(s.st.groups[TOP_ROUTES].n, 1);
	assert_int_equal(top_view_build(&v, NULL, &s.st, 0, 0), 0);
	r = row(&v, TOP_ROUTES, "r");
	assert_true(isnan(r->now[TOP_R_PENDING]));
	assert_int_equal(r->p99_err[TOP_H_DURATION], -EINVAL);
	assert_int_equal(r->p99_err[TOP_H_LATENCY], 0);
	assert_near(r->p99[TOP_H_LATENCY].value, 1 + 0.99, "sorted p99");
	assert_true(isnan(v.uptime_s));
	top_view_fini(&v);
	scrape_free(&s);
}

#ifdef TOP_TEST_ROUTER
/*
 * The router's histogram, exported as sluiced exports it, parsed back:
 * 1000 reconciles at 1, 2, ..., 1000 us.  The true p99 is 990 us; it
 * lies in the (500 us, 1 ms] bucket, and spreading that bucket's
 * observations evenly puts the estimate within the router's own bucket
 * error (about 1.6%) of it.
 */
static void
test_quantile_of_the_routers_histogram(void **state)
{
	struct sl_histogram *h = calloc(1, sizeof(*h));
	struct scrape s;
	struct top_view v;
	const struct top_row *r;
	char *text = NULL;
	size_t len = 0;
	FILE *out;

	(void)state;
	assert_non_null(h);
	sl_histogram_reset(h);
	for (uint64_t us = 1; us <= 1000; us++)
		sl_histogram_record(h, us * 1000);
	out = open_memstream(&text, &len);
	assert_non_null(out);
	sl_histogram_write_prom(h, out, "sluice_reconcile_latency_seconds",
				"route=\"r\"");
	fclose(out);

	scrape_load(&s, text);
	assert_int_equal(top_view_build(&v, NULL, &s.st, 0, 0), 0);
	r = row(&v, TOP_ROUTES, "r");
	assert_int_equal(r->p99_err[TOP_H_LATENCY], 0);
	if (fabs(r->p99[TOP_H_LATENCY].value - 990e-6) > 0.02 * 990e-6)
		fail_msg("p99 %.9g s, true 990 us",
			 r->p99[TOP_H_LATENCY].value);
	top_view_fini(&v);
	scrape_free(&s);
	free(text);
	free(h);
}
#endif

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rate_counter_increase_and_reset),
		cmocka_unit_test(test_quantile_interpolates_within_the_bucket),
		cmocka_unit_test(test_quantile_skips_empty_buckets),
		cmocka_unit_test(test_quantile_past_the_last_bound),
		cmocka_unit_test(test_quantile_refuses_what_is_not_a_histogram),
		cmocka_unit_test(test_hist_window),
		cmocka_unit_test(test_view_rates_between_two_scrapes),
		cmocka_unit_test(test_view_p99_over_the_window),
		cmocka_unit_test(test_view_restart_drops_rates),
		cmocka_unit_test(test_state_odd_series),
#ifdef TOP_TEST_ROUTER
		cmocka_unit_test(test_quantile_of_the_routers_histogram),
#endif
	};

	harness_init();
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
