/* SPDX-License-Identifier: MIT */
/*
 * sluiced's secure defaults, seen from outside:
 *
 *  - as root (euid 0) it refuses to start, with one line saying how to
 *    run it instead, unless --allow-root or security.allow_root: true
 *    says otherwise; then it starts and warns;
 *  - with no configuration every socket it would open is on loopback,
 *    and --check marks an address that is not;
 *  - an admin endpoint off loopback without a token is a configuration
 *    error; with a token it starts;
 *  - the admin token: no token, a wrong one, one that differs only at
 *    the end or in length, or another scheme all get 401; the right one
 *    gets 200; /healthz needs none;
 *  - an input at max_conns closes the excess connections at accept,
 *    counts them in sluice_input_refused_total and logs it, while the
 *    connections it holds keep working;
 *  - what one connection may make sluiced buffer is bounded by
 *    limits.line_max: a longer line is skipped and counted, and the
 *    connection goes on.
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
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "itest.h"

#define RUN(r, ...)                                                            \
	assert_int_equal(itest_run_sluiced((const char *const[]){__VA_ARGS__, NULL}, \
				     "msg=\"ready\"", (r)),                    \
			 0)

static void
assert_exit(const struct itest_run *r, int code)
{
	if (!WIFEXITED(r->status) || WEXITSTATUS(r->status) != code)
		fail_msg("status %#x, expected exit %d; output:\n%s",
			 r->status, code, r->out);
}

static void
assert_said(const struct itest_run *r, const char *want)
{
	if (!strstr(r->out, want))
		fail_msg("the output lacks \"%s\":\n%s", want, r->out);
}

/* ---- running as root ---- */

static void
test_sluiced_security_root(void **state)
{
	char path[] = "/tmp/sluiced-root-XXXXXX";
	static const char yaml[] =
		"security: {allow_root: true}\n"
		"admin: {addr: \"127.0.0.1:0\"}\n"
		"inputs: [{name: tcp, addr: \"127.0.0.1:0\"}]\n";
	struct itest_run r;
	int fd;

	(void)state;
	if (geteuid() != 0) {
		/* Nothing to refuse: it starts without the override. */
		RUN(&r, "-l", "127.0.0.1:0", "-a", "127.0.0.1:0");
		assert_said(&r, "msg=\"ready\"");
		assert_exit(&r, 0);
		return;
	}

	RUN(&r, "-l", "127.0.0.1:0", "-a", "127.0.0.1:0");
	assert_exit(&r, 1);
	assert_said(&r, "sluiced: refusing to run as root (euid 0): run it "
			"as an unprivileged user (the packaged service does), "
			"or pass --allow-root or set security.allow_root: "
			"true\n");
	if (strstr(r.out, "listening"))
		fail_msg("it opened a socket before refusing:\n%s", r.out);

	/* --check opens nothing, so it answers as root too. */
	RUN(&r, "--check");
	assert_exit(&r, 0);
	assert_said(&r, "security: allow_root=false\n");

	/* The flag. */
	RUN(&r, "--allow-root", "-l", "127.0.0.1:0", "-a", "127.0.0.1:0");
	assert_said(&r, "msg=\"ready\"");
	assert_said(&r, "level=warn subsys=sluiced msg=\"running as root "
			"(security.allow_root)\"");
	assert_exit(&r, 0);

	/* The key, in a file. */
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, yaml, sizeof(yaml) - 1),
			 (ssize_t)sizeof(yaml) - 1);
	close(fd);
	RUN(&r, "-c", path);
	unlink(path);
	assert_said(&r, "msg=\"ready\"");
	assert_exit(&r, 0);
}

/* ---- addresses ---- */

static void
test_sluiced_security_loopback_defaults(void **state)
{
	struct itest_run r;

	(void)state;
	RUN(&r, "--check");
	assert_exit(&r, 0);
	assert_said(&r, "input tcp: addr=127.0.0.1:7400 max_conns=0 "
			"max_buffered=262144\n");
	assert_said(&r, "admin: 127.0.0.1:7401 token=none\n");
	if (strstr(r.out, "not loopback"))
		fail_msg("a default address is not loopback:\n%s", r.out);

	/* An input elsewhere is allowed, when asked for, and marked. */
	RUN(&r, "--check", "-l", "0.0.0.0:7400");
	assert_exit(&r, 0);
	assert_said(&r, "input tcp: addr=0.0.0.0:7400 (not loopback) ");
}

static void
test_sluiced_security_admin_needs_token_off_loopback(void **state)
{
	struct itest_run r;

	(void)state;
	RUN(&r, "--allow-root", "-l", "127.0.0.1:0", "-a", "0.0.0.0:0");
	assert_exit(&r, 2);
	assert_said(&r, "sluiced: --set: admin.addr: \"0.0.0.0:0\" is not a "
			"loopback address and admin.token is not set: set a "
			"token, or listen on 127.0.0.1 or a Unix socket\n");
	if (strstr(r.out, "listening"))
		fail_msg("it opened a socket before refusing:\n%s", r.out);

	RUN(&r, "--allow-root", "-l", "127.0.0.1:0", "-a", "[::]:0");
	assert_exit(&r, 2);
	assert_said(&r, "admin.addr: \"[::]:0\" is not a loopback address");

	/* With a token it starts, and says the endpoint wants one. */
	RUN(&r, "--allow-root", "-l", "127.0.0.1:0", "-a", "0.0.0.0:0", "--set",
	    "admin.token=0123456789abcdef");
	assert_said(&r, "msg=\"admin listening\" addr=0.0.0.0:");
	assert_said(&r, " auth=token\n");
	assert_exit(&r, 0);
}

/* ---- the admin token ---- */

/* One request to the admin endpoint; its status code, or -1. */
static int
admin_status(struct itest_daemon *d, const char *path, const char *auth)
{
	char addr[64], req[512], resp[256];
	size_t len = 0;
	int fd, code = -1;

	if (itest_daemon_addr(d, NULL, addr, sizeof(addr)))
		return -1;
	fd = itest_connect(addr);
	if (fd < 0)
		return -1;
	snprintf(req, sizeof(req),
		 "GET %s HTTP/1.1\r\nHost: %s\r\n%s%s%sConnection: close\r\n"
		 "\r\n",
		 path, addr, auth ? "Authorization: " : "", auth ? auth : "",
		 auth ? "\r\n" : "");
	if (itest_send_all(fd, req, strlen(req)) == 0) {
		while (len < sizeof(resp) - 1) {
			ssize_t n = recv(fd, resp + len,
					 sizeof(resp) - 1 - len, 0);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			len += (size_t)n;
		}
		resp[len] = '\0';
		if (sscanf(resp, "HTTP/1.1 %d", &code) != 1)
			code = -1;
	}
	close(fd);
	return code;
}

static void
test_sluiced_security_token(void **state)
{
	struct itest_daemon *d = *state;

	if (itest_daemon_start(d, "inputs:\n  - {name: tcp, addr: "
				  "\"127.0.0.1:0\"}\n" ITEST_ADMIN_YAML))
		fail_msg("sluiced did not start");

	assert_int_equal(admin_status(d, "/metrics", NULL), 401);
	assert_int_equal(admin_status(d, "/metrics", "Bearer wrong"), 401);
	/* Same length, last byte differs; a prefix; a longer one. */
	assert_int_equal(admin_status(d, "/metrics", "Bearer itest-tokem"),
			 401);
	assert_int_equal(admin_status(d, "/metrics", "Bearer itest-toke"),
			 401);
	assert_int_equal(admin_status(d, "/metrics",
				      "Bearer " ITEST_TOKEN "x"),
			 401);
	assert_int_equal(admin_status(d, "/metrics", "Basic " ITEST_TOKEN),
			 401);
	assert_int_equal(admin_status(d, "/metrics", "Bearer"), 401);
	assert_int_equal(admin_status(d, "/debug/tasks", NULL), 401);
	assert_int_equal(admin_status(d, "/readyz", "Bearer nope"), 401);

	assert_int_equal(admin_status(d, "/metrics", "Bearer " ITEST_TOKEN),
			 200);
	assert_int_equal(admin_status(d, "/readyz", "bearer " ITEST_TOKEN),
			 200);
	assert_int_equal(admin_status(d, "/healthz", NULL), 200);
}

/* ---- connections and buffers per connection ---- */

/* Send one line and wait until the input has taken @total events. */
static void
send_and_wait(struct itest_daemon *d, int fd, const char *line,
	      uint64_t total)
{
	assert_int_equal(itest_send_all(fd, line, strlen(line)), 0);
	if (!itest_metric_wait(d, "sluice_input_events_total{input=\"tcp\"}",
			       total, ITEST_WAIT_MS)) {
		itest_metrics_dump(d, "sluice_input", NULL);
		fail_msg("event %llu did not arrive",
			 (unsigned long long)total);
	}
}

#define REFUSED "sluice_input_refused_total{input=\"tcp\"}"
#define EXCESS 12

static void
test_sluiced_security_max_conns(void **state)
{
	struct itest_daemon *d = *state;
	uint64_t v, start_ms, lines, bound;
	char addr[64];
	int fd[2 + EXCESS];

	if (itest_daemon_start(d, "inputs:\n  - {name: tcp, addr: "
				  "\"127.0.0.1:0\", max_conns: 2}\n"
				  ITEST_ADMIN_YAML))
		fail_msg("sluiced did not start");
	assert_int_equal(itest_daemon_addr(d, "tcp", addr, sizeof(addr)), 0);
	assert_int_equal(itest_metric(d, REFUSED, &v), 0);
	assert_int_equal(v, 0);

	/* Two connections, each known to be open once its event is in. */
	fd[0] = itest_connect(addr);
	assert_true(fd[0] >= 0);
	send_and_wait(d, fd[0], "set a 1\n", 1);
	fd[1] = itest_connect(addr);
	assert_true(fd[1] >= 0);
	send_and_wait(d, fd[1], "set b 1\n", 2);

	/* Every further one is closed at accept, and counted. */
	start_ms = itest_now_ms();
	for (int i = 2; i < 2 + EXCESS; i++) {
		fd[i] = itest_connect(addr);
		assert_true(fd[i] >= 0);
		assert_true(itest_wait_peer_close(fd[i], ITEST_WAIT_MS));
	}
	assert_true(itest_metric_wait(d, REFUSED, EXCESS, ITEST_WAIT_MS));
	assert_int_equal(itest_metric(d, REFUSED, &v), 0);
	assert_int_equal(v, EXCESS);

	/* Logged, but at most once a second: no more lines than seconds
	 * begun since the first refusal. */
	assert_true(itest_log_wait(d, "max_conns=2", 1, ITEST_WAIT_MS));
	lines = itest_log_count(d, "max_conns=2");
	bound = (itest_now_ms() - start_ms) / 1000 + 1;
	if (lines > bound)
		fail_msg("%llu log lines for %d refusals in %llu s",
			 (unsigned long long)lines, EXCESS,
			 (unsigned long long)bound);

	/* The two it holds still work. */
	send_and_wait(d, fd[0], "set a 2\n", 3);
	send_and_wait(d, fd[1], "set b 2\n", 4);
	for (int i = 0; i < 2 + EXCESS; i++)
		close(fd[i]);
}

static void
test_sluiced_security_line_bound(void **state)
{
	struct itest_daemon *d = *state;
	char addr[64], big[4096];
	int fd;

	if (itest_daemon_start(d, "limits: {line_max: 256}\n"
				  "inputs:\n  - {name: tcp, addr: "
				  "\"127.0.0.1:0\"}\n" ITEST_ADMIN_YAML))
		fail_msg("sluiced did not start");
	assert_int_equal(itest_daemon_addr(d, "tcp", addr, sizeof(addr)), 0);
	fd = itest_connect(addr);
	assert_true(fd >= 0);

	/* A line sixteen times the bound: skipped, counted, logged. */
	memset(big, 'x', sizeof(big));
	memcpy(big, "set big ", 8);
	big[sizeof(big) - 1] = '\n';
	assert_int_equal(itest_send_all(fd, big, sizeof(big)), 0);
	send_and_wait(d, fd, "set after 1\n", 1);
	assert_true(itest_metric_wait(
		d, "sluice_input_oversized_total{input=\"tcp\"}", 1,
		ITEST_WAIT_MS));
	assert_true(itest_log_wait(d, "line longer than line_max", 1,
				   ITEST_WAIT_MS));
	close(fd);
}

/*
 * A connection holds at most max_buffered bytes of receive buffers its
 * reader has not taken: with one 4 KiB buffer allowed, 256 KiB sent at
 * once must pause receiving (counted), and still arrive whole.  An input
 * with the default bound that never fills it counts no pause.
 */
#define PAUSED "sluice_input_paused_total{input=\"tcp\"}"
#define BB_LINES 4096

static void
test_sluiced_security_buffer_bound(void **state)
{
	struct itest_daemon *d = *state;
	char addr[64], *bulk;
	uint64_t v;
	int fd;

	if (itest_daemon_start(d, "inputs:\n"
				  "  - {name: tcp, addr: \"127.0.0.1:0\", "
				  "max_buffered: 4KiB}\n"
				  "  - {name: wide, addr: \"127.0.0.1:0\"}\n"
				  ITEST_ADMIN_YAML))
		fail_msg("sluiced did not start");
	assert_int_equal(itest_metric(d, PAUSED, &v), 0);
	assert_int_equal(v, 0);

	/* 64-byte lines, one key each, in one send. */
	bulk = malloc((size_t)BB_LINES * 64 + 1); /* + snprintf's NUL */
	assert_non_null(bulk);
	for (int i = 0; i < BB_LINES; i++)
		snprintf(bulk + (size_t)i * 64, 65, "set k%05d %-52d\n", i, i);
	assert_int_equal(itest_daemon_addr(d, "tcp", addr, sizeof(addr)), 0);
	fd = itest_connect(addr);
	assert_true(fd >= 0);
	assert_int_equal(itest_send_all(fd, bulk, (size_t)BB_LINES * 64), 0);
	free(bulk);
	if (!itest_metric_wait(d, "sluice_input_events_total{input=\"tcp\"}",
			       BB_LINES, ITEST_WAIT_MS))
		fail_msg("not every line arrived");
	assert_int_equal(itest_metric(d, PAUSED, &v), 0);
	if (v < 1)
		fail_msg("256 KiB through a 4 KiB bound counted no pause");
	close(fd);

	assert_int_equal(itest_daemon_addr(d, "wide", addr, sizeof(addr)), 0);
	fd = itest_connect(addr);
	assert_true(fd >= 0);
	assert_int_equal(itest_send_all(fd, "set w 1\n", 8), 0);
	assert_true(itest_metric_wait(
		d, "sluice_input_events_total{input=\"wide\"}", 1,
		ITEST_WAIT_MS));
	assert_int_equal(itest_metric(
				 d, "sluice_input_paused_total{input=\"wide\"}",
				 &v),
			 0);
	assert_int_equal(v, 0);
	close(fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sluiced_security_root),
		cmocka_unit_test(test_sluiced_security_loopback_defaults),
		cmocka_unit_test(
			test_sluiced_security_admin_needs_token_off_loopback),
		cmocka_unit_test_setup_teardown(test_sluiced_security_token,
						itest_daemon_setup,
						itest_daemon_teardown),
		cmocka_unit_test_setup_teardown(test_sluiced_security_max_conns,
						itest_daemon_setup,
						itest_daemon_teardown),
		cmocka_unit_test_setup_teardown(test_sluiced_security_line_bound,
						itest_daemon_setup,
						itest_daemon_teardown),
		cmocka_unit_test_setup_teardown(
			test_sluiced_security_buffer_bound,
			itest_daemon_setup, itest_daemon_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
