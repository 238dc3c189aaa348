/* SPDX-License-Identifier: MIT */
/*
 * Stopping sluiced with SIGTERM.
 *
 *  - drain: producers send frames and wait for the ACK that covers their
 *    last event, so every event is accepted; the sink is not reading, so
 *    work is pending.  On SIGTERM the sink reads again, and sluiced must
 *    reconcile every accepted event before it exits 0, within
 *    shutdown.drain_timeout.  The sink's connections end only when
 *    sluiced exits, so what the sink holds by then is everything.
 *  - deadline: the sink accepts but never reads (a hung peer), so the
 *    drain cannot finish; sluiced must give up at drain_timeout, say so
 *    with the number of keys left, and exit 1, even though a tcp sink
 *    write would wait far longer.
 *  - second signal: the sink hangs and the drain timeout is an hour; a
 *    second SIGTERM must end the process at once, with status 1.
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
#define NKEYS 2000
/*
 * Payloads of 4000 bytes make a round of keys 8 MB, more than the sockets
 * between sluiced and a sink that stopped reading can hold (the sink's
 * receive buffer is made small, but on loopback sluiced's send buffer
 * starts at over a megabyte and may grow to tcp_wmem's 4 MB).
 */
#define PAD 4000
#define SMALL_RCVBUF 4096
#define PENDING "sluice_route_pending{route=\"all\"}"
#define PROCESSING "sluice_route_processing{route=\"all\"}"

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

/* Start sluiced with a frames input and one route into the sink. */
static void
start(struct fixture *f, const char *drain_timeout)
{
	char yaml[1024];

	snprintf(yaml, sizeof(yaml),
		 "runtime:\n  procs: 2\n"
		 "inputs:\n"
		 "  - {name: fr, type: tcp, addr: \"127.0.0.1:0\", "
		 "format: frames}\n"
		 "routes:\n"
		 "  - name: all\n"
		 "    default: true\n"
		 "    backoff: {base: 5ms, cap: 100ms}\n"
		 "    retry: {rate: 0}\n"
		 "    sink: {type: tcp, addr: \"%s\", conns: 2, "
		 "timeout: 10m}\n"
		 "shutdown:\n  drain_timeout: %s\n" ITEST_ADMIN_YAML,
		 f->sink.addr, drain_timeout);
	itest_daemon_watch(&f->d, &f->sink);
	assert_int_equal(itest_daemon_start(&f->d, yaml), 0);
}

/*
 * Send every key's versions over CONNS frame connections, padded by @pad
 * bytes, and wait for each connection's ACK of its last event.
 */
static void
send_acked(struct fixture *f, unsigned nkeys, uint32_t versions, size_t pad)
{
	char addr[64];

	assert_int_equal(itest_daemon_addr(&f->d, "fr", addr, sizeof(addr)),
			 0);
	for (unsigned i = 0; i < CONNS; i++) {
		f->load[i] = (struct itest_load){
			.fd = itest_connect(addr), .kind = "set", .first = i,
			.step = CONNS, .nkeys = nkeys, .from = 1,
			.to = versions, .pad = pad, .frames = true};
		assert_true(f->load[i].fd >= 0);
		itest_load_start(&f->load[i]);
	}
	for (unsigned i = 0; i < CONNS; i++) {
		assert_int_equal(itest_load_join(&f->load[i]), 0);
		assert_int_equal(f->load[i].acked, f->load[i].events);
	}
}

/* Pending or processing keys, as /metrics reports them. */
static uint64_t
work_left(struct fixture *f)
{
	uint64_t pending = 0, processing = 0;

	assert_int_equal(itest_metric(&f->d, PENDING, &pending), 0);
	assert_int_equal(itest_metric(&f->d, PROCESSING, &processing), 0);
	return pending + processing;
}

static void
test_sluiced_drain_sigterm(void **state)
{
	struct fixture *f = *state;
	const unsigned nkeys = NKEYS;
	const uint32_t versions = ITEST_SCALE(5, 3);
	const uint64_t drain_ms = 30000;
	uint64_t left, t0, elapsed;
	char missing[256];
	int status = 0;

	assert_int_equal(itest_sink_open_rcvbuf(&f->sink, "set", nkeys,
						versions, SMALL_RCVBUF), 0);
	itest_sink_pause(&f->sink, true);
	start(f, "30s");
	send_acked(f, nkeys, versions, PAD);
	left = work_left(f);
	assert_true(left > 0);

	t0 = itest_now_ms();
	itest_daemon_signal(&f->d, SIGTERM);
	assert_true(itest_log_wait(&f->d, "msg=\"stopping\"", 1,
				   ITEST_WAIT_MS));
	itest_sink_pause(&f->sink, false);
	assert_true(itest_daemon_wait_exit(&f->d, drain_ms + ITEST_WAIT_MS,
					   &status));
	elapsed = itest_now_ms() - t0;
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_in_range(elapsed, 0, drain_ms);
	assert_int_equal(itest_log_count(&f->d, "drain timed out"), 0);
	assert_int_equal(itest_log_count(&f->d, "keys_left="), 0);

	/* sluiced has exited: its connections end once the sink has read
	 * everything they carried. */
	assert_true(itest_sink_wait_closed(&f->sink, ITEST_WAIT_MS));
	if (itest_sink_missing(&f->sink, missing, sizeof(missing))) {
		itest_daemon_dump_log(&f->d);
		fail_msg("accepted before SIGTERM, never reconciled: %s",
			 missing);
	}
	assert_int_equal(itest_sink_counts(&f->sink).regressions, 0);
	assert_false(itest_daemon_sanitizer_report(&f->d));
	print_message("%llu keys pending at SIGTERM, drained in %llu ms\n",
		      (unsigned long long)left, (unsigned long long)elapsed);
}

static void
test_sluiced_drain_deadline(void **state)
{
	struct fixture *f = *state;
	const uint64_t drain_ms = 1000;
	uint64_t t0, elapsed;
	int status = 0;

	assert_int_equal(itest_sink_open_rcvbuf(&f->sink, "set", NKEYS, 2,
						SMALL_RCVBUF), 0);
	itest_sink_pause(&f->sink, true);
	start(f, "1s");
	send_acked(f, NKEYS, 2, PAD);
	assert_true(work_left(f) > 0);

	/* The sink never reads: the drain cannot finish. */
	t0 = itest_now_ms();
	itest_daemon_signal(&f->d, SIGTERM);
	assert_true(itest_daemon_wait_exit(&f->d, ITEST_WAIT_MS, &status));
	elapsed = itest_now_ms() - t0;
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 1);
	assert_int_equal(itest_log_count(&f->d, "drain timed out"), 1);
	/* The keys it gave up are counted, once. */
	assert_int_equal(itest_log_count(&f->d, "keys_left="), 1);
	/* It waited out the drain window, and stopped soon after it ended
	 * rather than when the sink's 10-minute write timeout would. */
	assert_in_range(elapsed, drain_ms, drain_ms + ITEST_WAIT_MS / 2);
	assert_false(itest_daemon_sanitizer_report(&f->d));
	print_message("drain_timeout 1 s: exited after %llu ms\n",
		      (unsigned long long)elapsed);
}

static void
test_sluiced_drain_second_signal(void **state)
{
	struct fixture *f = *state;
	uint64_t t0, elapsed;
	int status = 0;

	/* A hung sink: the drain cannot finish. */
	assert_int_equal(itest_sink_open_rcvbuf(&f->sink, "set", NKEYS, 2,
						SMALL_RCVBUF), 0);
	itest_sink_pause(&f->sink, true);
	start(f, "1h");
	send_acked(f, NKEYS, 2, PAD);
	assert_true(work_left(f) > 0);

	itest_daemon_signal(&f->d, SIGTERM);
	assert_true(itest_log_wait(&f->d, "msg=\"stopping\"", 1,
				   ITEST_WAIT_MS));
	assert_true(itest_daemon_running(&f->d));
	t0 = itest_now_ms();
	itest_daemon_signal(&f->d, SIGTERM);
	assert_true(itest_daemon_wait_exit(&f->d, ITEST_WAIT_MS, &status));
	elapsed = itest_now_ms() - t0;
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 1);
	assert_int_equal(itest_log_count(&f->d, "second signal"), 1);
	assert_false(itest_daemon_sanitizer_report(&f->d));
	print_message("second SIGTERM: exited after %llu ms\n",
		      (unsigned long long)elapsed);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sluiced_drain_sigterm,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_sluiced_drain_deadline,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_sluiced_drain_second_signal, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
