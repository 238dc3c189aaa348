/* SPDX-License-Identifier: MIT */
/*
 * The deployment knobs, seen from outside: sluiced started with each
 * knob set to something this machine cannot honour stops at once with
 * one line that names the knob and says why, and exit status 1; a knob
 * that is wrong on its face (a bad list, a ring whose completion queue
 * is smaller than its submission queue) is a configuration error, exit
 * status 2, whether it came from the file, --set or a dedicated flag;
 * --check prints the settings in effect; and a full set of knobs this
 * machine can honour starts, logs them, and routes events.
 *
 * SQPOLL without privilege cannot be had here: since Linux 5.11 the
 * kernel lets any user set up a polling ring, and these tests run on a
 * newer kernel.  Huge pages are refused only on a machine with neither
 * transparent huge pages nor reserved ones; that case runs where the
 * machine is so and is skipped elsewhere.
 */
#include <errno.h>
#include <fcntl.h>
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

/* Expect sluiced with @args to exit with @code and print @want. */
static void
expect_refused_at(const char *const *args, int code, const char *want,
		  int line)
{
	struct itest_run r;

	if (itest_run_sluiced(args, "msg=\"ready\"", &r))
		fail_msg("line %d: sluiced hung", line);
	if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != code)
		fail_msg("line %d: status %#x, expected exit %d; output:\n%s",
			 line, r.status, code, r.out);
	if (!strstr(r.out, want))
		fail_msg("line %d: output lacks \"%s\":\n%s", line, want,
			 r.out);
	/* One line, and nothing started. */
	if (strstr(r.out, "msg=\"ready\"") || strstr(r.out, "listening"))
		fail_msg("line %d: sluiced started:\n%s", line, r.out);
}
#define expect_refused(code, want, ...)                                        \
	expect_refused_at((const char *const[]){__VA_ARGS__, NULL}, (code),    \
			  (want), __LINE__)

/* Ports nobody else uses: each refusal must fail before binding. */
#define ARGS_BASE "--allow-root", "-l", "127.0.0.1:0", "-a", "127.0.0.1:0"

static void
test_sluiced_knobs_machine_refusals(void **state)
{
	(void)state;
	expect_refused(1,
		       "sluiced: runtime.cpus \"1023\": CPU 1023 is offline "
		       "or does not exist\n",
		       ARGS_BASE, "--cpus", "1023");
	expect_refused(1,
		       "sluiced: runtime.cpus \"0,1023\": CPU 1023 is "
		       "offline or does not exist\n",
		       ARGS_BASE, "--set", "runtime.cpus=0,1023");
	expect_refused(1,
		       "sluiced: runtime.numa: node 1000 does not exist "
		       "(this machine has nodes 0-",
		       ARGS_BASE, "--numa", "1000");
	expect_refused(1,
		       "sluiced: runtime.sqpoll_cpu 1023 is offline or does "
		       "not exist\n",
		       ARGS_BASE, "--sqpoll=1023");
}

/* True when the runtime would refuse huge pages on this machine. */
static bool
huge_pages_unavailable(void)
{
	char buf[128] = "";
	long reserved = 0;
	FILE *f;

	f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
	if (f) {
		if (!fgets(buf, sizeof(buf), f))
			buf[0] = '\0';
		fclose(f);
	}
	f = fopen("/proc/sys/vm/nr_hugepages", "r");
	if (f) {
		if (fscanf(f, "%ld", &reserved) != 1)
			reserved = 0;
		fclose(f);
	}
	return (!buf[0] || strstr(buf, "[never]")) && reserved <= 0;
}

static void
test_sluiced_knobs_huge_pages(void **state)
{
	(void)state;
	if (!huge_pages_unavailable()) {
		/* The other side of the same check: they are granted. */
		struct itest_run r;

		assert_int_equal(itest_run_sluiced((const char *const[]){
						     ARGS_BASE, "--set",
						     "runtime.huge_pages=true",
						     NULL},
					     "msg=\"ready\"", &r),
				 0);
		if (!strstr(r.out, "huge_pages=true"))
			fail_msg("no huge_pages=true in:\n%s", r.out);
		assert_true(WIFEXITED(r.status));
		assert_int_equal(WEXITSTATUS(r.status), 0);
		return;
	}
	expect_refused(1,
		       "sluiced: runtime.huge_pages: transparent huge pages "
		       "are ",
		       ARGS_BASE, "--set", "runtime.huge_pages=true");
}

static void
test_sluiced_knobs_bad_values(void **state)
{
	(void)state;
	/* Wrong on their face: configuration errors, exit 2, whichever
	 * way they came. */
	expect_refused(2,
		       "sluiced: --set: runtime.cpus: bad CPU list \"0-\" "
		       "(expected numbers and ranges: \"0-3,8\")\n",
		       ARGS_BASE, "--cpus", "0-");
	expect_refused(2,
		       "sluiced: --set: runtime.numa: bad NUMA policy "
		       "\"near\" (local, interleave, or a list of nodes such "
		       "as \"0\" or \"0-1\")\n",
		       ARGS_BASE, "--numa", "near");
	expect_refused(2,
		       "sluiced: --set: runtime.sqpoll_cpu: expected a whole "
		       "number, found \"x\"\n",
		       ARGS_BASE, "--sqpoll=x");
	expect_refused(2,
		       "sluiced: --set: runtime.cq_entries: 64 is below "
		       "runtime.ring_entries (128): every submission needs "
		       "room for its completion\n",
		       ARGS_BASE, "--set", "runtime.ring_entries=128", "--set",
		       "runtime.cq_entries=64");
	expect_refused(2,
		       "sluiced: --set: runtime.ring_entries: 40000 is out of "
		       "range (1 to 32768)\n",
		       ARGS_BASE, "--set", "runtime.ring_entries=40000");
	expect_refused(2,
		       "sluiced: --set: runtime.idle_spin: 5s is out of range "
		       "(0s to 100ms)\n",
		       ARGS_BASE, "--set", "runtime.idle_spin=5s");
	expect_refused(2,
		       "sluiced: --set: io.buffer_size: 100 is out of range "
		       "(256 to 1MiB)\n",
		       ARGS_BASE, "--set", "io.buffer_size=100");
	expect_refused(2,
		       "sluiced: --set: io.buffers: 600 is above "
		       "io.buffers_max (500)\n",
		       ARGS_BASE, "--set", "io.buffers_max=500", "--set",
		       "io.buffers=600");
	expect_refused(2,
		       "sluiced: --set: routes[0].max_pending: -1 is out of "
		       "range",
		       ARGS_BASE, "--set", "routes[0].max_pending=-1");
	expect_refused(2, "unrecognized option '--sqpoll-cpu=1'",
		       ARGS_BASE, "--sqpoll-cpu=1");
}

static void
test_sluiced_knobs_check_reports_them(void **state)
{
	struct itest_run r;

	(void)state;
	assert_int_equal(itest_run_sluiced((const char *const[]){
					     "--check", "--cpus", "0", "--numa",
					     "0", "--sqpoll=0", "-p", "1",
					     "--set", "runtime.idle_spin=50us",
					     "--set", "io.buffer_size=8KiB",
					     "--set", "runtime.ring_entries=128",
					     "--set",
					     "routes[0].max_pending=1000",
					     NULL},
				     NULL, &r),
			 0);
	assert_true(WIFEXITED(r.status));
	assert_int_equal(WEXITSTATUS(r.status), 0);
	if (!strstr(r.out, "runtime: procs=1 cpus=0 numa=0 pin=true "
			   "ring_entries=128 cq_entries=512 sqpoll=true "
			   "sqpoll_cpu=0 sqpoll_idle_ms=1000 stack_size=65536 "
			   "huge_pages=false idle_spin_ns=50000\n") ||
	    !strstr(r.out, "io: buffer_size=8192 buffers=256 "
			   "buffers_max=4096\n") ||
	    !strstr(r.out, "route default: workers=4 max_pending=1000 ") ||
	    !strstr(r.out, "security: allow_root=false\n"))
		fail_msg("--check printed:\n%s", r.out);
}

/* Every knob at a value this machine can honour: it starts and routes. */
static void
test_sluiced_knobs_valid_set_starts(void **state)
{
	struct itest_daemon *d = *state;
	char yaml[1024], addr[64];
	int fd;

	(void)state;
	snprintf(yaml, sizeof(yaml),
		 "runtime:\n"
		 "  procs: 2\n"
		 "  cpus: \"0\"\n"
		 "  numa: \"0\"\n"
		 "  pin: true\n"
		 "  ring_entries: 128\n"
		 "  cq_entries: 1024\n"
		 "  sqpoll: true\n"
		 "  sqpoll_cpu: 0\n"
		 "  sqpoll_idle_ms: 20\n"
		 "  stack_size: 128KiB\n"
		 "  huge_pages: %s\n"
		 "  idle_spin: 50us\n"
		 "io:\n"
		 "  buffer_size: 8KiB\n"
		 "  buffers: 32\n"
		 "  buffers_max: 1024\n"
		 "inputs:\n"
		 "  - {name: tcp, addr: \"127.0.0.1:0\", max_conns: 16}\n"
		 "routes:\n"
		 "  - {name: all, default: true, max_pending: 100000,\n"
		 "     sink: {type: null}}\n" ITEST_ADMIN_YAML,
		 huge_pages_unavailable() ? "false" : "true");
	if (itest_daemon_start(d, yaml))
		fail_msg("sluiced did not start with every knob set");
	/* The log names each setting as the runtime took it. */
	assert_int_equal(itest_log_count(d, "msg=\"runtime\" procs=2 cpus=0 "
					    "numa=0 pin=true ring_entries=128 "
					    "cq_entries=1024 sqpoll=true "
					    "sqpoll_cpu=0 sqpoll_idle_ms=20 "
					    "stack_size=131072 "),
			 1);
	assert_int_equal(itest_log_count(d, "idle_spin_ns=50000 "
					    "buffer_size=8192 buffers=32 "
					    "buffers_max=1024"),
			 1);

	assert_int_equal(itest_daemon_addr(d, "tcp", addr, sizeof(addr)), 0);
	fd = itest_connect(addr);
	assert_true(fd >= 0);
	for (int i = 0; i < 100; i++) {
		char line[64];
		int n = snprintf(line, sizeof(line), "set k%d %d\n", i % 10, i);

		assert_int_equal(itest_send_all(fd, line, (size_t)n), 0);
	}
	close(fd);
	if (!itest_metric_wait(d, "sluice_input_events_total{input=\"tcp\"}",
			       100, ITEST_WAIT_MS)) {
		itest_metrics_dump(d, "sluice_input", NULL);
		fail_msg("the events did not arrive");
	}
	itest_daemon_signal(d, SIGTERM);
	{
		int status;

		assert_true(itest_daemon_wait_exit(d, ITEST_WAIT_MS, &status));
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sluiced_knobs_machine_refusals),
		cmocka_unit_test(test_sluiced_knobs_huge_pages),
		cmocka_unit_test(test_sluiced_knobs_bad_values),
		cmocka_unit_test(test_sluiced_knobs_check_reports_them),
		cmocka_unit_test_setup_teardown(
			test_sluiced_knobs_valid_set_starts,
			itest_daemon_setup, itest_daemon_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
