/* SPDX-License-Identifier: MIT */
/*
 * The tcp sink's peer goes away mid-run and comes back on the same port.
 *
 * The first half of every key's versions is sent and flows to the sink.
 * Then the sink's listener closes and its connections are reset, as if
 * the peer had crashed; the second half, final versions included, is sent
 * while it is down, so every reconcile of it fails and is retried.  Once
 * sluiced has accepted every event and counted failed reconciles, the
 * listener opens again: every key's final version must arrive, with no
 * version going backwards and nothing dead-lettered.
 *
 * Retries are configured to come fast (backoff capped at 200 ms, no token
 * bucket), so that recovery takes a moment rather than the minutes that
 * client-go's defaults (10 retries a second per shard) would take for
 * thousands of keys.
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

struct fixture {
	struct itest_daemon d;
	struct itest_sink sink;
	struct itest_load load[CONNS];
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	for (unsigned i = 0; i < CONNS; i++)
		f->load[i].fd = -1;
	f->d.err_fd = -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	for (unsigned i = 0; i < CONNS; i++)
		if (f->load[i].fd >= 0)
			close(f->load[i].fd);
	itest_daemon_finish(&f->d);
	itest_sink_close(&f->sink);
	free(f);
	return 0;
}

/* Send versions @from..@to of every key, key k on connection k % CONNS. */
static void
send_versions(struct fixture *f, unsigned nkeys, uint32_t from, uint32_t to)
{
	for (unsigned i = 0; i < CONNS; i++) {
		f->load[i].kind = "set";
		f->load[i].first = i;
		f->load[i].step = CONNS;
		f->load[i].nkeys = nkeys;
		f->load[i].from = from;
		f->load[i].to = to;
		itest_load_start(&f->load[i]);
	}
	for (unsigned i = 0; i < CONNS; i++)
		assert_int_equal(itest_load_join(&f->load[i]), 0);
}

static void
test_sluiced_sink_restart(void **state)
{
	struct fixture *f = *state;
	const unsigned nkeys = 2000;
	const uint32_t versions = ITEST_SCALE(100, 30), half = versions / 2;
	uint64_t total = (uint64_t)nkeys * versions, v = 0;
	struct itest_sink_counts n;
	char yaml[1024], in_addr[64], missing[256];
	int status = 0;

	assert_int_equal(itest_sink_open(&f->sink, "set", nkeys, versions), 0);
	snprintf(yaml, sizeof(yaml),
		 "runtime:\n  procs: 2\n"
		 "inputs:\n"
		 "  - {name: tcp, type: tcp, addr: \"127.0.0.1:0\"}\n"
		 "routes:\n"
		 "  - name: all\n"
		 "    default: true\n"
		 "    backoff: {base: 5ms, cap: 200ms}\n"
		 "    retry: {rate: 0}\n"
		 "    sink: {type: tcp, addr: \"%s\", conns: 2, "
		 "timeout: 60s}\n" ITEST_ADMIN_YAML,
		 f->sink.addr);
	itest_daemon_watch(&f->d, &f->sink);
	assert_int_equal(itest_daemon_start(&f->d, yaml), 0);
	assert_int_equal(itest_daemon_addr(&f->d, "tcp", in_addr,
					   sizeof(in_addr)), 0);
	for (unsigned i = 0; i < CONNS; i++) {
		f->load[i].fd = itest_connect(in_addr);
		assert_true(f->load[i].fd >= 0);
	}

	/* Up: the first half flows. */
	send_versions(f, nkeys, 1, half);
	assert_true(itest_sink_wait_lines(&f->sink, nkeys, ITEST_WAIT_MS));

	/* Down: the second half is accepted, and cannot be delivered. */
	itest_sink_down(&f->sink);
	send_versions(f, nkeys, half + 1, versions);
	assert_true(itest_metric_wait(&f->d, "sluice_events_ingested_total",
				      total, ITEST_WAIT_MS));
	assert_true(itest_metric_wait(&f->d, "sluice_route_failures_total"
				      "{route=\"all\"}", 1, ITEST_WAIT_MS));
	n = itest_sink_counts(&f->sink);
	assert_int_equal(n.finals, 0);

	/* Up again on the same port: everything accepted arrives. */
	assert_int_equal(itest_sink_up(&f->sink), 0);
	if (!itest_sink_wait_finals(&f->sink, ITEST_WAIT_MS)) {
		unsigned m = itest_sink_missing(&f->sink, missing,
						sizeof(missing));

		itest_daemon_dump_log(&f->d);
		itest_metrics_dump(&f->d, "sluice_route_", "/debug/tasks");
		fail_msg("%u keys lack their final version: %s", m, missing);
	}
	n = itest_sink_counts(&f->sink);
	assert_int_equal(n.regressions, 0);
	assert_int_equal(n.conn_regressions, 0);
	assert_int_equal(n.bad_lines, 0);
	assert_true(n.accepted > 2); /* it did connect again */
	assert_int_equal(itest_metric(&f->d, "sluice_route_dead_letters_total"
				      "{route=\"all\"}", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(itest_metric(&f->d, "sluice_events_ingested_total",
				      &v), 0);
	assert_int_equal(v, total);
	/* The producers' connections were never dropped. */
	assert_int_equal(itest_metric(&f->d, "sluice_input_connections_total"
				      "{input=\"tcp\"}", &v), 0);
	assert_int_equal(v, CONNS);

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
		cmocka_unit_test_setup_teardown(test_sluiced_sink_restart, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
