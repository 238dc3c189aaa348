/* SPDX-License-Identifier: MIT */
/*
 * Reloading routes under load (SIGHUP after the configuration file
 * changed), and refusing bad files.
 *
 *  1. sluiced starts with one route, "main", into sink A.  A stops
 *     reading, so keys queue up in sluiced, and the file gains a route
 *     "extra" (kind extra, into sink B) and a changed "main".  SIGHUP.
 *  2. Events of kind extra, sent on the same connections after the
 *     reload, reach B: the new table is live.
 *  3. Two bad files (a YAML syntax error, then two default routes) are
 *     refused, each with its reason in the log, while "main" carries
 *     load; the process stays up and the routes of step 1 stay.
 *  4. Every key's final version reaches A and B.  The producers'
 *     connections were never dropped, and nothing went to the wrong sink.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "itest.h"

#define CONNS 2
#define RELOADED "msg=\"routes reloaded\""
#define REFUSED "reload refused"

struct fixture {
	struct itest_daemon d;
	struct itest_sink a, b;
	struct itest_load load[CONNS];
	int fds[CONNS];
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	for (unsigned i = 0; i < CONNS; i++)
		f->fds[i] = -1;
	f->d.err_fd = -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	for (unsigned i = 0; i < CONNS; i++)
		if (f->fds[i] >= 0)
			close(f->fds[i]);
	itest_daemon_finish(&f->d);
	itest_sink_close(&f->a);
	itest_sink_close(&f->b);
	free(f);
	return 0;
}

static void
config_v1(struct fixture *f, char *buf, size_t len)
{
	snprintf(buf, len,
		 "runtime:\n  procs: 2\n"
		 "inputs:\n"
		 "  - {name: tcp, type: tcp, addr: \"127.0.0.1:0\"}\n"
		 "routes:\n"
		 "  - name: main\n"
		 "    default: true\n"
		 "    sink: {type: tcp, addr: \"%s\", conns: 2, "
		 "timeout: 60s}\n" ITEST_ADMIN_YAML,
		 f->a.addr);
}

/* "main" changed (workers, connections), "extra" new. */
static void
config_v2(struct fixture *f, char *buf, size_t len)
{
	snprintf(buf, len,
		 "runtime:\n  procs: 2\n"
		 "inputs:\n"
		 "  - {name: tcp, type: tcp, addr: \"127.0.0.1:0\"}\n"
		 "routes:\n"
		 "  - name: extra\n"
		 "    match: exact\n"
		 "    kind: extra\n"
		 "    sink: {type: tcp, addr: \"%s\", timeout: 60s}\n"
		 "  - name: main\n"
		 "    default: true\n"
		 "    workers: 2\n"
		 "    sink: {type: tcp, addr: \"%s\", conns: 3, "
		 "timeout: 60s}\n" ITEST_ADMIN_YAML,
		 f->b.addr, f->a.addr);
}

/* Start the producers on versions @from..@to of @kind, keys kN < @nkeys,
 * payloads padded by @pad bytes, on the connections sluiced already has. */
static void
start_load(struct fixture *f, const char *kind, unsigned nkeys,
	   uint32_t from, uint32_t to, size_t pad)
{
	for (unsigned i = 0; i < CONNS; i++) {
		f->load[i] = (struct itest_load){
			.fd = f->fds[i], .kind = kind, .first = i,
			.step = CONNS, .nkeys = nkeys, .from = from, .to = to,
			.pad = pad};
		itest_load_start(&f->load[i]);
	}
}

static void
join_load(struct fixture *f)
{
	for (unsigned i = 0; i < CONNS; i++)
		assert_int_equal(itest_load_join(&f->load[i]), 0);
}

static void
expect_finals(struct fixture *f, struct itest_sink *s)
{
	char missing[256];
	unsigned n;

	if (itest_sink_wait_finals(s, ITEST_WAIT_MS))
		return;
	n = itest_sink_missing(s, missing, sizeof(missing));
	itest_daemon_dump_log(&f->d);
	fail_msg("sink %s: %u keys lack their final version: %s", s->kind, n,
		 missing);
}

static void
test_sluiced_reload_under_load(void **state)
{
	struct fixture *f = *state;
	const unsigned nkeys = 2000, nextra = 500;
	const uint32_t versions = ITEST_SCALE(60, 20), half = versions / 2;
	const uint32_t extra_versions = 10;
	char yaml[2048], in_addr[64];
	struct itest_sink_counts na, nb;
	uint64_t v = 0, total;
	int status = 0;

	assert_int_equal(itest_sink_open(&f->a, "set", nkeys, versions), 0);
	assert_int_equal(itest_sink_open(&f->b, "extra", nextra,
					 extra_versions), 0);
	config_v1(f, yaml, sizeof(yaml));
	itest_daemon_watch(&f->d, &f->a);
	itest_daemon_watch(&f->d, &f->b);
	assert_int_equal(itest_daemon_start(&f->d, yaml), 0);
	assert_int_equal(itest_daemon_addr(&f->d, "tcp", in_addr,
					   sizeof(in_addr)), 0);
	for (unsigned i = 0; i < CONNS; i++) {
		f->fds[i] = itest_connect(in_addr);
		assert_true(f->fds[i] >= 0);
	}

	/*
	 * 1: keys queue up behind a sink that does not read (padded
	 * payloads fill the socket buffers between sluiced and A within a
	 * round of keys, then the workers wait); reload.
	 */
	itest_sink_pause(&f->a, true);
	start_load(f, "set", nkeys, 1, half, 512);
	assert_true(itest_metric_wait(&f->d,
				      "sluice_route_pending{route=\"main\"}",
				      100, ITEST_WAIT_MS));
	config_v2(f, yaml, sizeof(yaml));
	itest_daemon_write_config(&f->d, yaml);
	itest_daemon_signal(&f->d, SIGHUP);
	/* The reload waits until no worker is inside the old sink, and the
	 * old sink's workers wait for A to read. */
	itest_sink_pause(&f->a, false);
	assert_true(itest_log_wait(&f->d, RELOADED, 1, ITEST_WAIT_MS));
	join_load(f);

	/* 2: the new route takes its kind at once. */
	start_load(f, "extra", nextra, 1, extra_versions / 2, 0);
	join_load(f);
	assert_true(itest_sink_wait_kind(&f->b, "extra", nextra,
					 ITEST_WAIT_MS));

	/* 3: bad files, refused under load; the process stays. */
	start_load(f, "set", nkeys, half + 1, versions, 0);
	itest_daemon_write_config(&f->d, "routes: [\n");
	itest_daemon_signal(&f->d, SIGHUP);
	assert_true(itest_log_wait(&f->d, REFUSED, 1, ITEST_WAIT_MS));
	itest_daemon_write_config(&f->d,
				  "routes:\n"
				  "  - {name: one, default: true, "
				  "sink: {type: null}}\n"
				  "  - {name: two, default: true, "
				  "sink: {type: null}}\n");
	itest_daemon_signal(&f->d, SIGHUP);
	assert_true(itest_log_wait(&f->d, REFUSED, 2, ITEST_WAIT_MS));
	/* Each refusal says why. */
	assert_int_equal(itest_log_count(&f->d, "syntax error"), 1);
	assert_true(itest_log_count(&f->d, "default") >= 1);
	join_load(f);
	assert_true(itest_daemon_running(&f->d));
	assert_int_equal(itest_log_count(&f->d, RELOADED), 1);

	/* 4: the routes of step 1 still deliver everything. */
	start_load(f, "extra", nextra, extra_versions / 2 + 1,
		   extra_versions, 0);
	join_load(f);
	expect_finals(f, &f->a);
	expect_finals(f, &f->b);

	/* Across the sink swap a key's lines may be read from the old and
	 * the new connection in either order, so only order within one
	 * connection is asserted for A.  B's sink never changed. */
	na = itest_sink_counts(&f->a);
	nb = itest_sink_counts(&f->b);
	assert_int_equal(na.conn_regressions, 0);
	assert_int_equal(na.bad_lines, 0);
	assert_int_equal(nb.regressions, 0);
	assert_int_equal(nb.bad_lines, 0);
	assert_int_equal(itest_sink_kind_lines(&f->a, "extra"), 0);
	assert_int_equal(itest_sink_kind_lines(&f->b, "set"), 0);
	/* The producers' connections are the first two and only ones. */
	assert_int_equal(itest_metric(&f->d, "sluice_input_connections_total"
				      "{input=\"tcp\"}", &v), 0);
	assert_int_equal(v, CONNS);
	total = (uint64_t)nkeys * versions + (uint64_t)nextra * extra_versions;
	assert_true(itest_metric_wait(&f->d, "sluice_events_ingested_total",
				      total, ITEST_WAIT_MS));
	assert_int_equal(itest_metric(&f->d, "sluice_events_ingested_total",
				      &v), 0);
	assert_int_equal(v, total);

	itest_daemon_signal(&f->d, SIGTERM);
	assert_true(itest_daemon_wait_exit(&f->d, ITEST_WAIT_MS, &status));
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_false(itest_daemon_sanitizer_report(&f->d));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sluiced_reload_under_load,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
