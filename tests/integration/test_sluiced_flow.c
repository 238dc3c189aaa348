/* SPDX-License-Identifier: MIT */
/*
 * sluiced under load, end to end: producers send 10^6 events over 10^4
 * keys (2 * 10^5 under a sanitizer) on several TCP connections, each
 * key's versions in order on one connection; sluiced folds them and
 * reconciles through its tcp sink into a listener owned by the test.
 * Every key's final version must arrive, per key the versions the sink
 * receives must never go backwards, and sluiced's counters must agree
 * with what was sent and received.
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

#define CONNS 4
#define RECONCILES "sluice_route_reconciles_total{route=\"all\"}"

struct fixture {
	struct itest_daemon d;
	struct itest_sink sink;
	struct itest_load load[CONNS];
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	for (unsigned i = 0; i < CONNS; i++)
		f->load[i].fd = -1;
	f->d.err_fd = -1;
	*state = f;
	return f ? 0 : -1;
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

static void
fail_with_log(struct fixture *f, const char *what)
{
	char missing[256];
	unsigned n = itest_sink_missing(&f->sink, missing, sizeof(missing));

	itest_daemon_dump_log(&f->d);
	fail_msg("%s; %u keys without their final version (%s); sink: %s",
		 what, n, missing, f->sink.first_problem);
}

static void
test_sluiced_flow_order(void **state)
{
	struct fixture *f = *state;
	const unsigned nkeys = 10000;
	const uint32_t versions = ITEST_SCALE(100, 20);
	uint64_t total = (uint64_t)nkeys * versions, v = 0;
	struct itest_sink_counts n;
	char yaml[1024], in_addr[64];
	int status = 0;

	assert_int_equal(itest_sink_open(&f->sink, "set", nkeys, versions), 0);
	snprintf(yaml, sizeof(yaml),
		 "runtime:\n  procs: 2\n"
		 "inputs:\n"
		 "  - {name: tcp, type: tcp, addr: \"127.0.0.1:0\"}\n"
		 "routes:\n"
		 "  - name: all\n"
		 "    default: true\n"
		 "    sink: {type: tcp, addr: \"%s\", conns: 2, "
		 "timeout: 60s}\n" ITEST_ADMIN_YAML,
		 f->sink.addr);
	itest_daemon_watch(&f->d, &f->sink);
	assert_int_equal(itest_daemon_start(&f->d, yaml), 0);
	assert_int_equal(itest_daemon_addr(&f->d, "tcp", in_addr,
					   sizeof(in_addr)), 0);

	/* Key k goes on connection k % CONNS, all its versions in order. */
	for (unsigned i = 0; i < CONNS; i++) {
		f->load[i] = (struct itest_load){
			.fd = itest_connect(in_addr), .kind = "set",
			.first = i, .step = CONNS, .nkeys = nkeys,
			.from = 1, .to = versions};
		assert_true(f->load[i].fd >= 0);
	}
	for (unsigned i = 0; i < CONNS; i++)
		itest_load_start(&f->load[i]);
	for (unsigned i = 0; i < CONNS; i++)
		assert_int_equal(itest_load_join(&f->load[i]), 0);

	if (!itest_sink_wait_finals(&f->sink, ITEST_WAIT_MS))
		fail_with_log(f, "final versions missing");
	n = itest_sink_counts(&f->sink);
	assert_int_equal(n.regressions, 0);
	assert_int_equal(n.conn_regressions, 0);
	assert_int_equal(n.bad_lines, 0);

	/* What sluiced counted matches what was sent and received.  Its
	 * counters move just after the work they count, so wait for them. */
	assert_true(itest_metric_wait(&f->d, "sluice_events_ingested_total",
				      total, ITEST_WAIT_MS));
	assert_true(itest_metric_wait(&f->d, RECONCILES, n.tracked,
				      ITEST_WAIT_MS));
	assert_int_equal(itest_metric(&f->d, "sluice_events_ingested_total",
				      &v), 0);
	assert_int_equal(v, total);
	assert_int_equal(itest_metric(&f->d,
				      "sluice_input_events_total{input=\"tcp\"}",
				      &v), 0);
	assert_int_equal(v, total);
	assert_int_equal(itest_metric(&f->d, "sluice_events_malformed_total",
				      &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(itest_metric(&f->d,
				      "sluice_route_failures_total{route=\"all\"}",
				      &v), 0);
	assert_int_equal(v, 0);
	/* Every successful reconcile is one line at the sink: none lost,
	 * none doubled.  At least one per key, at most one per event. */
	assert_int_equal(itest_metric(&f->d, RECONCILES, &v), 0);
	assert_int_equal(v, itest_sink_counts(&f->sink).tracked);
	assert_in_range(v, nkeys, total);
	print_message("%llu events over %u keys: %llu reconciles\n",
		      (unsigned long long)total, nkeys, (unsigned long long)v);

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
		cmocka_unit_test_setup_teardown(test_sluiced_flow_order, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
