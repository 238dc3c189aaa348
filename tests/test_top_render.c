/* SPDX-License-Identifier: MIT */
/*
 * Tests of sluice-top's screen (tools/top/render.c) and command line
 * (tools/top/opts.c).
 *
 * Two canned scrapes two seconds apart, in sluiced's own format, render
 * to the exact rows worked out by hand below: the title, the event and
 * error summaries, the route, processor and input tables, and the note
 * on what the rates cover.  One scrape alone renders totals, no rates,
 * and the figures since the start.  A route name with a quote and a
 * newline is shown without either escape reaching the terminal.  The
 * number formats, the unreachable screen and the options are checked on
 * their own.
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
#include <unistd.h>

#include <cmocka.h>

#include "tools/top/opts.h"
#include "tools/top/render.h"
#include "tools/top/snapshot.h"

#include "harness.h"

#define SEC UINT64_C(1000000000)

/* A route name with a quote and a newline in it, escaped as sluiced
 * escapes label values. */
#define ODD "odd\\\"na\\nme"
#define LAT(route, le, n)                                                      \
	"sluice_reconcile_latency_seconds_bucket{route=\"" route "\",le=\"" le  \
	"\"} " #n "\n"
#define DUR(route, le, n)                                                      \
	"sluice_reconcile_duration_seconds_bucket{route=\"" route "\",le=\"" le \
	"\"} " #n "\n"

/* Everything sluiced exports that the screen uses, at the first scrape. */
static const char scrape_prev[] =
	"# HELP sluice_events_ingested_total Events accepted.\n"
	"# TYPE sluice_events_ingested_total counter\n"
	"sluice_events_ingested_total 100000\n"
	"sluice_events_unmatched_total 7\n"
	"sluice_events_malformed_total 3\n"
	"sluice_dead_letters_dropped_total 0\n"
	"sluice_route_pending{route=\"orders\"} 12\n"
	"sluice_route_pending{route=\"" ODD "\"} 0\n"
	"sluice_route_processing{route=\"orders\"} 2\n"
	"sluice_route_processing{route=\"" ODD "\"} 0\n"
	"sluice_route_waiting{route=\"orders\"} 1\n"
	"sluice_route_waiting{route=\"" ODD "\"} 0\n"
	"sluice_route_adds_total{route=\"orders\"} 90000\n"
	"sluice_route_adds_total{route=\"" ODD "\"} 10000\n"
	"sluice_route_folds_total{route=\"orders\"} 30000\n"
	"sluice_route_folds_total{route=\"" ODD "\"} 0\n"
	"sluice_route_reconciles_total{route=\"orders\"} 60000\n"
	"sluice_route_reconciles_total{route=\"" ODD "\"} 10000\n"
	"sluice_route_failures_total{route=\"orders\"} 4\n"
	"sluice_route_failures_total{route=\"" ODD "\"} 0\n"
	"sluice_route_retries_total{route=\"orders\"} 4\n"
	"sluice_route_retries_total{route=\"" ODD "\"} 0\n"
	"sluice_route_dead_letters_total{route=\"orders\"} 1\n"
	"sluice_route_dead_letters_total{route=\"" ODD "\"} 0\n"
	"# TYPE sluice_reconcile_latency_seconds histogram\n"
	LAT("orders", "0.001", 50000)
	LAT("orders", "0.002", 59000)
	LAT("orders", "0.005", 60000)
	LAT("orders", "+Inf", 60000)
	"sluice_reconcile_latency_seconds_sum{route=\"orders\"} 40.5\n"
	"sluice_reconcile_latency_seconds_count{route=\"orders\"} 60000\n"
	LAT(ODD, "0.001", 10000)
	LAT(ODD, "+Inf", 10000)
	DUR("orders", "1e-06", 60000)
	DUR("orders", "2e-06", 60000)
	DUR("orders", "+Inf", 60000)
	"sluice_input_events_total{input=\"tcp\"} 100000\n"
	"sluice_input_bytes_total{input=\"tcp\"} 4000000\n"
	"sluice_input_malformed_total{input=\"tcp\"} 3\n"
	"sluice_input_oversized_total{input=\"tcp\"} 0\n"
	"sluice_input_connections_total{input=\"tcp\"} 5\n"
	"sluice_input_closed_bad_total{input=\"tcp\"} 1\n"
	"sluice_proc_tasks_run_total{proc=\"0\"} 500000\n"
	"sluice_proc_tasks_run_total{proc=\"1\"} 300000\n"
	"sluice_proc_steals_total{proc=\"0\"} 1000\n"
	"sluice_proc_steals_total{proc=\"1\"} 1000\n"
	"sluice_proc_parks_total{proc=\"0\"} 400000\n"
	"sluice_proc_parks_total{proc=\"1\"} 300000\n"
	"sluice_proc_wakeups_total{proc=\"0\"} 2000\n"
	"sluice_proc_wakeups_total{proc=\"1\"} 1000\n"
	"sluice_proc_submits_total{proc=\"0\"} 3000\n"
	"sluice_proc_submits_total{proc=\"1\"} 0\n"
	"sluice_proc_hogs_total{proc=\"0\"} 0\n"
	"sluice_proc_hogs_total{proc=\"1\"} 0\n"
	"sluice_proc_runq_length{proc=\"0\"} 3\n"
	"sluice_proc_runq_length{proc=\"1\"} 0\n"
	"sluice_tasks 40\n"
	"sluice_io_buffers 512\n"
	"sluice_io_buffers_in_use 10\n"
	"sluice_io_enobufs_total 0\n"
	"sluice_ready 1\n"
	"sluice_draining 0\n"
	"sluice_reloads_total{result=\"ok\"} 2\n"
	"sluice_reloads_total{result=\"refused\"} 1\n"
	"sluice_start_time_seconds 1700000000\n"
	"sluice_admin_connections_total 3\n";

/* Two seconds later. */
static const char scrape_cur[] =
	"sluice_events_ingested_total 124690\n"
	"sluice_events_unmatched_total 9\n"
	"sluice_events_malformed_total 3\n"
	"sluice_dead_letters_dropped_total 0\n"
	"sluice_route_pending{route=\"orders\"} 40\n"
	"sluice_route_pending{route=\"" ODD "\"} 0\n"
	"sluice_route_processing{route=\"orders\"} 4\n"
	"sluice_route_processing{route=\"" ODD "\"} 0\n"
	"sluice_route_waiting{route=\"orders\"} 2\n"
	"sluice_route_waiting{route=\"" ODD "\"} 0\n"
	"sluice_route_adds_total{route=\"orders\"} 114000\n"
	"sluice_route_adds_total{route=\"" ODD "\"} 10000\n"
	"sluice_route_folds_total{route=\"orders\"} 36000\n"
	"sluice_route_folds_total{route=\"" ODD "\"} 0\n"
	"sluice_route_reconciles_total{route=\"orders\"} 78000\n"
	"sluice_route_reconciles_total{route=\"" ODD "\"} 10000\n"
	"sluice_route_failures_total{route=\"orders\"} 8\n"
	"sluice_route_failures_total{route=\"" ODD "\"} 0\n"
	"sluice_route_retries_total{route=\"orders\"} 10\n"
	"sluice_route_retries_total{route=\"" ODD "\"} 0\n"
	"sluice_route_dead_letters_total{route=\"orders\"} 2\n"
	"sluice_route_dead_letters_total{route=\"" ODD "\"} 0\n"
	LAT("orders", "0.001", 50000)
	LAT("orders", "0.002", 68000)
	LAT("orders", "0.005", 78000)
	LAT("orders", "+Inf", 78000)
	LAT(ODD, "0.001", 10000)
	LAT(ODD, "+Inf", 10000)
	DUR("orders", "1e-06", 60000)
	DUR("orders", "2e-06", 78000)
	DUR("orders", "+Inf", 78000)
	"sluice_input_events_total{input=\"tcp\"} 124690\n"
	"sluice_input_bytes_total{input=\"tcp\"} 4987600\n"
	"sluice_input_malformed_total{input=\"tcp\"} 3\n"
	"sluice_input_oversized_total{input=\"tcp\"} 0\n"
	"sluice_input_connections_total{input=\"tcp\"} 6\n"
	"sluice_input_closed_bad_total{input=\"tcp\"} 1\n"
	"sluice_proc_tasks_run_total{proc=\"0\"} 520000\n"
	"sluice_proc_tasks_run_total{proc=\"1\"} 300500\n"
	"sluice_proc_steals_total{proc=\"0\"} 1100\n"
	"sluice_proc_steals_total{proc=\"1\"} 1000\n"
	"sluice_proc_parks_total{proc=\"0\"} 415000\n"
	"sluice_proc_parks_total{proc=\"1\"} 300400\n"
	"sluice_proc_wakeups_total{proc=\"0\"} 2400\n"
	"sluice_proc_wakeups_total{proc=\"1\"} 1001\n"
	"sluice_proc_submits_total{proc=\"0\"} 3300\n"
	"sluice_proc_submits_total{proc=\"1\"} 0\n"
	"sluice_proc_hogs_total{proc=\"0\"} 1\n"
	"sluice_proc_hogs_total{proc=\"1\"} 0\n"
	"sluice_proc_runq_length{proc=\"0\"} 3\n"
	"sluice_proc_runq_length{proc=\"1\"} 0\n"
	"sluice_tasks 42\n"
	"sluice_io_buffers 512\n"
	"sluice_io_buffers_in_use 12\n"
	"sluice_io_enobufs_total 0\n"
	"sluice_ready 1\n"
	"sluice_draining 0\n"
	"sluice_reloads_total{result=\"ok\"} 2\n"
	"sluice_reloads_total{result=\"refused\"} 1\n"
	"sluice_start_time_seconds 1700000000\n";

static const struct top_render_info info = {
	.addr = "127.0.0.1:7401",
	.clock = "12:00:00",
};

static void
load(struct top_snapshot *s, const char *text, uint64_t mono, double wall)
{
	top_snapshot_init(s);
	assert_int_equal(
		top_snapshot_from_text(s, text, strlen(text), mono, wall), 0);
}

static void
expect_line(const struct top_screen *s, size_t i, enum top_style style,
	    const char *want)
{
	if (i >= s->n)
		fail_msg("line %zu: the screen has %zu lines", i, s->n);
	if (strcmp(s->lines[i].text, want))
		fail_msg("line %zu:\n got  \"%s\"\n want \"%s\"", i,
			 s->lines[i].text, want);
	assert_int_equal(s->lines[i].style, style);
}

static void
test_render_two_scrapes(void **state)
{
	struct top_snapshot prev, cur;
	struct top_screen s;
	size_t i = 0;

	(void)state;
	load(&prev, scrape_prev, 10 * SEC, 1700003723);
	load(&cur, scrape_cur, 12 * SEC, 1700003725);
	top_screen_init(&s);
	assert_int_equal(top_snapshot_render(&s, &prev, &cur, &info), 0);

	/* Up 3725 s; counters over 2 s: (124690 - 100000) / 2 = 12345. */
	expect_line(&s, i++, TOP_STYLE_TITLE,
		    "sluice-top  127.0.0.1:7401  up 1h02m  ready  tasks 42  "
		    "reloads 2 ok, 1 refused  12:00:00");
	expect_line(&s, i++, TOP_STYLE_PLAIN,
		    "events   in 12345/s (124690)   out 9000/s (88000)   "
		    "(in: ingested, out: reconciled, over all routes)");
	expect_line(&s, i++, TOP_STYLE_PLAIN,
		    "errors   parse 0/s (3)   unmatched 1.0/s (9)   "
		    "sink failures 2.0/s   dead letters 2");
	expect_line(&s, i++, TOP_STYLE_PLAIN,
		    "buffers  12 of 512 in use   ring empty 0/s (0)   "
		    "dead letters dropped 0");
	expect_line(&s, i++, TOP_STYLE_PLAIN, "");

	/*
	 * orders: in 24000 / 2, out 18000 / 2, 6000 of 24000 folded,
	 * retries 6 / 2, failures 4 / 2.  Latency in the window: 9000 in
	 * (1, 2] ms and 9000 in (2, 5] ms, so rank 17820 is 8820 into the
	 * latter: 2 + 3 * 0.98 = 4.94 ms.  Sink time: 18000 in (1, 2] us,
	 * rank 17820: 1.99 us.  The odd route observed nothing new.
	 */
	expect_line(&s, i++, TOP_STYLE_HEADING,
		    "ROUTE       DEPTH  BUSY  WAIT    IN/S   OUT/S  FOLD% "
		    "RETRY/S FAIL/S   DEAD  P99 LAT P99 SINK");
	expect_line(&s, i++, TOP_STYLE_PLAIN,
		    "orders         40     4     2   12000    9000  25.0%"
		    "     3.0    2.0      2   4.94ms   1.99us");
	expect_line(&s, i++, TOP_STYLE_PLAIN,
		    "odd\"na?me       0     0     0       0       0      -"
		    "       0      0      0        -        -");
	expect_line(&s, i++, TOP_STYLE_PLAIN, "");

	expect_line(&s, i++, TOP_STYLE_HEADING,
		    "P  RUNQ    RUN/S  PARKS/S STEALS/S WAKEUPS/S SUBMITS/S  "
		    "HOGS");
	expect_line(&s, i++, TOP_STYLE_PLAIN,
		    "0     3    10000     7500     50.0       200       150"
		    "     1");
	expect_line(&s, i++, TOP_STYLE_PLAIN,
		    "1     0      250      200        0       0.5         0"
		    "     0");
	expect_line(&s, i++, TOP_STYLE_PLAIN, "");

	/* 987600 bytes in 2 s: 493800/s, shown as 494k. */
	expect_line(&s, i++, TOP_STYLE_HEADING,
		    "INPUT EVENTS/S  BYTES/S  CONNS MALFORMED OVERSIZED "
		    "CLOSED");
	expect_line(
		&s, i++, TOP_STYLE_PLAIN,
		"tcp      12345     494k      6         3         0      1");
	expect_line(&s, i++, TOP_STYLE_PLAIN, "");
	expect_line(&s, i++, TOP_STYLE_NOTE,
		    "rates, FOLD% and P99 cover the last 2.00s; P99 is "
		    "interpolated linearly within its histogram bucket");
	assert_int_equal(s.n, i);

	top_screen_fini(&s);
	top_snapshot_fini(&prev);
	top_snapshot_fini(&cur);
}

static void
test_render_one_scrape_has_no_rates(void **state)
{
	struct top_snapshot cur;
	struct top_screen s;

	(void)state;
	load(&cur, scrape_cur, 12 * SEC, 1700003725);
	top_screen_init(&s);
	assert_int_equal(top_snapshot_render(&s, NULL, &cur, &info), 0);

	expect_line(&s, 1, TOP_STYLE_PLAIN,
		    "events   in -/s (124690)   out -/s (88000)   "
		    "(in: ingested, out: reconciled, over all routes)");
	/*
	 * Since the start: 36000 of 114000 adds folded (31.6%).  Latency:
	 * 78000 in all, rank 77220 is 9220 into the 10000 of (2, 5] ms:
	 * 4.77 ms.  Sink: 17220 into the 18000 of (1, 2] us: 1.96 us.  The
	 * odd route: rank 9900 of 10000 in (0, 1] ms: 990 us.
	 */
	expect_line(&s, 6, TOP_STYLE_PLAIN,
		    "orders         40     4     2       -       -  31.6%"
		    "       -      -      2   4.77ms   1.96us");
	expect_line(&s, 7, TOP_STYLE_PLAIN,
		    "odd\"na?me       0     0     0       -       -   0.0%"
		    "       -      -      0    990us        -");
	expect_line(&s, 10, TOP_STYLE_PLAIN,
		    "0     3        -        -        -         -         -"
		    "     1");
	expect_line(&s, s.n - 1, TOP_STYLE_NOTE,
		    "one scrape: no rates yet; FOLD% and P99 cover the time "
		    "since the daemon started; P99 is interpolated linearly "
		    "within its histogram bucket");

	top_screen_fini(&s);
	top_snapshot_fini(&cur);
}

static void
test_render_warns_of_skipped_lines_and_restarts(void **state)
{
	static const char broken[] = "sluice_events_ingested_total 5\n"
				     "sluice_route_pending{route=\"r} 1\n"
				     "sluice_start_time_seconds 1700000500\n"
				     "sluice_tasks 3 x\n";
	struct top_snapshot prev, cur;
	struct top_screen s;

	(void)state;
	load(&prev, scrape_prev, 10 * SEC, 1700000600);
	load(&cur, broken, 11 * SEC, 1700000601);
	top_screen_init(&s);
	assert_int_equal(top_snapshot_render(&s, &prev, &cur, &info), 0);

	expect_line(&s, 0, TOP_STYLE_TITLE,
		    "sluice-top  127.0.0.1:7401  up 1m41s  12:00:00");
	expect_line(&s, 5, TOP_STYLE_HEADING,
		    "ROUTE   DEPTH  BUSY  WAIT    IN/S   OUT/S  FOLD% "
		    "RETRY/S FAIL/S   DEAD  P99 LAT P99 SINK");
	expect_line(&s, 6, TOP_STYLE_PLAIN, "(no routes)");
	expect_line(&s, s.n - 3, TOP_STYLE_WARN,
		    "warning: 2 malformed metric lines skipped (line 2: "
		    "label value has no closing quote)");
	expect_line(&s, s.n - 2, TOP_STYLE_WARN,
		    "the daemon restarted since the last scrape: rates "
		    "resume at the next one");

	top_screen_fini(&s);
	top_snapshot_fini(&prev);
	top_snapshot_fini(&cur);
}

static void
test_render_unreachable(void **state)
{
	struct top_screen s;

	(void)state;
	top_screen_init(&s);
	assert_int_equal(top_render_unreachable(&s, &info,
						"cannot connect to "
						"127.0.0.1:7401: Connection "
						"refused",
						1.0, 3, "11:59:57"),
			 0);
	expect_line(&s, 0, TOP_STYLE_TITLE,
		    "sluice-top  127.0.0.1:7401  12:00:00");
	expect_line(&s, 2, TOP_STYLE_WARN,
		    "cannot connect to 127.0.0.1:7401: Connection refused");
	expect_line(&s, 3, TOP_STYLE_PLAIN,
		    "retrying every 1.00s (3 failed in a row; last good "
		    "scrape: 11:59:57); q quits");
	top_screen_fini(&s);
}

static void
expect_fmt(const char *got, const char *want)
{
	if (strcmp(got, want))
		fail_msg("got \"%s\", want \"%s\"", got, want);
}

static void
test_render_number_formats(void **state)
{
	char b[32];

	(void)state;
	expect_fmt(top_fmt_count(b, sizeof(b), NAN), "-");
	expect_fmt(top_fmt_count(b, sizeof(b), 0), "0");
	expect_fmt(top_fmt_count(b, sizeof(b), 999999), "999999");
	expect_fmt(top_fmt_count(b, sizeof(b), 1e6), "1.00M");
	expect_fmt(top_fmt_count(b, sizeof(b), 12345678), "12.3M");
	expect_fmt(top_fmt_count(b, sizeof(b), 999.6e6), "1.00G");

	expect_fmt(top_fmt_rate(b, sizeof(b), NAN), "-");
	expect_fmt(top_fmt_rate(b, sizeof(b), 0), "0");
	expect_fmt(top_fmt_rate(b, sizeof(b), 0.25), "0.2");
	expect_fmt(top_fmt_rate(b, sizeof(b), 99.94), "99.9");
	expect_fmt(top_fmt_rate(b, sizeof(b), 99.96), "100");
	expect_fmt(top_fmt_rate(b, sizeof(b), 99999), "99999");
	expect_fmt(top_fmt_rate(b, sizeof(b), 100000), "100k");
	expect_fmt(top_fmt_rate(b, sizeof(b), 2.5e9), "2.50G");

	expect_fmt(top_fmt_seconds(b, sizeof(b), NAN, 0), "-");
	expect_fmt(top_fmt_seconds(b, sizeof(b), 0, 0), "0");
	expect_fmt(top_fmt_seconds(b, sizeof(b), 5e-8, 0), "50.0ns");
	expect_fmt(top_fmt_seconds(b, sizeof(b), 184e-6, 0), "184us");
	expect_fmt(top_fmt_seconds(b, sizeof(b), 0.0012, 0), "1.20ms");
	/* Rounding up to the next unit's 1.00, not "1000us". */
	expect_fmt(top_fmt_seconds(b, sizeof(b), 0.0009999, 0), "1.00ms");
	expect_fmt(top_fmt_seconds(b, sizeof(b), 2.5, 0), "2.50s");
	expect_fmt(top_fmt_seconds(b, sizeof(b), 60, 1), ">60.0s");
	expect_fmt(top_fmt_seconds(b, sizeof(b), 4000, 0), "4000s");
}

/* ---- the command line ---- */

static char prog_name[] = "sluice-top";

static int
parse(struct top_opts *o, char *err, size_t len, ...)
{
	char *argv[16] = {prog_name};
	int argc = 1;
	va_list ap;

	va_start(ap, len);
	for (char *a; (a = va_arg(ap, char *)) && argc < 15;)
		argv[argc++] = a;
	va_end(ap);
	err[0] = '\0';
	return top_opts_parse(argc, argv, o, err, len);
}

static void
test_opts_defaults_and_values(void **state)
{
	struct top_opts o;
	char err[256];

	(void)state;
	assert_int_equal(parse(&o, err, sizeof(err), NULL), 0);
	assert_string_equal(o.admin, "127.0.0.1:7401");
	assert_true(o.interval_s == 1.0);
	assert_true(o.timeout_s == 2.0);
	assert_false(o.once);
	assert_null(o.token);
	top_opts_fini(&o);

	assert_int_equal(parse(&o, err, sizeof(err), "-a", "[::1]:9000",
			       "--interval", "500ms", "--once", "--timeout",
			       "0.25s", "--token", "s3cret", NULL),
			 0);
	assert_string_equal(o.admin, "[::1]:9000");
	assert_true(o.interval_s == 0.5);
	assert_true(o.once);
	assert_true(o.timeout_s == 0.25);
	assert_string_equal(o.token, "s3cret");
	top_opts_fini(&o);

	/* --interval 0 is one scrape, which only --once can use. */
	assert_int_equal(parse(&o, err, sizeof(err), "--once", "-i", "0", NULL),
			 0);
	assert_true(o.interval_s == 0);
	top_opts_fini(&o);
}

static void
expect_refused(const char *want, ...)
{
	char *argv[16] = {prog_name};
	struct top_opts o;
	char err[256];
	int argc = 1;
	va_list ap;

	va_start(ap, want);
	for (char *a; (a = va_arg(ap, char *)) && argc < 15;)
		argv[argc++] = a;
	va_end(ap);
	assert_int_equal(top_opts_parse(argc, argv, &o, err, sizeof(err)),
			 -EINVAL);
	if (!strstr(err, want))
		fail_msg("\"%s\" does not say \"%s\"", err, want);
	top_opts_fini(&o);
}

static void
test_opts_refused(void **state)
{
	(void)state;
	expect_refused("0 only with --once", "-i", "0", NULL);
	expect_refused("--interval abc", "--interval", "abc", NULL);
	expect_refused("--interval 2h", "--interval", "2h", NULL);
	expect_refused("--timeout 0", "--timeout", "0", NULL);
	expect_refused("no port", "--admin", "localhost", NULL);
	expect_refused("https is not supported", "-a", "https://h:1", NULL);
	expect_refused("unknown option --bogus", "--bogus", NULL);
	expect_refused("--admin needs a value", "--admin", NULL);
	expect_refused("unexpected argument \"extra\"", "extra", NULL);
	expect_refused("exclude each other", "--token", "a", "--token-file",
		       "/dev/null", NULL);
	expect_refused("the first line must hold a token", "--token-file",
		       "/dev/null", NULL);
	expect_refused("No such file", "--token-file",
		       "/nonexistent/sluice-top-token", NULL);
}

static void
test_opts_token_file(void **state)
{
	char path[] = "/tmp/sluice-top-token-XXXXXX";
	struct top_opts o;
	char err[256];
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "tok-123 \nsecond line\n", 21), 21);
	close(fd);
	assert_int_equal(
		parse(&o, err, sizeof(err), "--token-file", path, NULL), 0);
	assert_string_equal(o.token, "tok-123");
	top_opts_fini(&o);
	unlink(path);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render_two_scrapes),
		cmocka_unit_test(test_render_one_scrape_has_no_rates),
		cmocka_unit_test(
			test_render_warns_of_skipped_lines_and_restarts),
		cmocka_unit_test(test_render_unreachable),
		cmocka_unit_test(test_render_number_formats),
		cmocka_unit_test(test_opts_defaults_and_values),
		cmocka_unit_test(test_opts_refused),
		cmocka_unit_test(test_opts_token_file),
	};

	harness_init();
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
