/* SPDX-License-Identifier: MIT */
/*
 * sluice-load against sluiced, end to end, in verify mode.
 *
 * sluiced runs with one route whose tcp sink points at a port on which
 * the built sluice-load listens (--verify).  sluice-load then sends a
 * fixed number of events at a moderate open-loop rate, waits until every
 * key's last version has come back through the sink, and prints its
 * summary as JSON.  The test reads that summary and holds it against
 * what must be true of a router that loses nothing: every event sent was
 * ingested (sluiced's own counter agrees), every key sent is ok, none is
 * stale or missing, and nothing came back that was never sent.
 *
 * The two programs are seen only from outside, the way a user runs them:
 * their command lines, their output and sluiced's admin endpoint.  The
 * sink's port is found by binding port 0 and closing the socket again,
 * so another process could take it in between; sluice-load then says it
 * cannot listen and the test fails with that message, not silently.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
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

#ifndef SLUICE_LOAD_PATH
#error "SLUICE_LOAD_PATH must name the sluice-load binary under test"
#endif

extern char **environ;

/* The run: events in all at an open-loop rate, over keys.  Under a
 * sanitizer both programs run five to fifteen times slower, so the rate
 * and the count shrink with them; the run lasts about 3 s either way. */
#define LOAD_KEYS ITEST_SCALE(2000, 400)
#define LOAD_RATE ITEST_SCALE(20000, 2500)
#define LOAD_EVENTS ITEST_SCALE(60000, 8000)

/* What sluice-load wrote, and how it ended. */
struct load_child {
	pid_t pid;
	char *out, *err;	/* stdout (the JSON) and stderr, whole */
	size_t out_len, err_len;
	int status;		/* waitpid()'s */
	bool exited;
};

struct fixture {
	struct itest_daemon d;
	struct load_child load;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->d.err_fd = -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	if (f->load.pid > 0 && !f->load.exited) {
		kill(f->load.pid, SIGKILL);
		waitpid(f->load.pid, NULL, 0);
	}
	free(f->load.out);
	free(f->load.err);
	itest_daemon_finish(&f->d);
	free(f);
	return 0;
}

/* A loopback port nothing listens on at the moment of asking. */
static int
free_port(char *addr, size_t len)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t salen = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    getsockname(fd, (struct sockaddr *)&sa, &salen)) {
		int r = -errno;

		close(fd);
		return r;
	}
	close(fd);
	snprintf(addr, len, "127.0.0.1:%u", ntohs(sa.sin_port));
	return 0;
}

/* Append what @fd has to @buf; false once it reached its end. */
static bool
drain_fd(int fd, char **buf, size_t *len)
{
	char chunk[4096];
	ssize_t n = read(fd, chunk, sizeof(chunk));
	char *p;

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	if (n <= 0)
		return false;
	p = realloc(*buf, *len + (size_t)n + 1);
	if (!p)
		return false;
	memcpy(p + *len, chunk, (size_t)n);
	*len += (size_t)n;
	p[*len] = '\0';
	*buf = p;
	return true;
}

/*
 * Run sluice-load with @argv and collect its output until it exits, for
 * at most @timeout_ms; a run past that is killed.  Return: 0, or -1 when
 * it could not be started or had to be killed.
 */
static int
load_run(struct load_child *c, char *const argv[], uint64_t timeout_ms)
{
	posix_spawn_file_actions_t fa;
	uint64_t deadline = itest_now_ms() + timeout_ms;
	int out[2], err[2], r;
	struct pollfd pf[2];

	if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC))
		return -1;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
	posix_spawn_file_actions_adddup2(&fa, err[1], STDERR_FILENO);
	r = posix_spawn(&c->pid, SLUICE_LOAD_PATH, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(out[1]);
	close(err[1]);
	if (r) {
		fprintf(stderr, "cannot run %s: %s\n", SLUICE_LOAD_PATH,
			strerror(r));
		c->pid = 0;
		close(out[0]);
		close(err[0]);
		return -1;
	}

	/* Both pipes reach their end when the child exits. */
	pf[0] = (struct pollfd){.fd = out[0], .events = POLLIN};
	pf[1] = (struct pollfd){.fd = err[0], .events = POLLIN};
	while (pf[0].fd >= 0 || pf[1].fd >= 0) {
		uint64_t now = itest_now_ms();

		pf[0].revents = pf[1].revents = 0;
		if (now >= deadline)
			break;
		if (poll(pf, 2, (int)(deadline - now)) < 0 && errno != EINTR)
			break;
		if (pf[0].revents && !drain_fd(out[0], &c->out, &c->out_len))
			pf[0].fd = -1;
		if (pf[1].revents && !drain_fd(err[0], &c->err, &c->err_len))
			pf[1].fd = -1;
	}
	r = pf[0].fd < 0 && pf[1].fd < 0 ? 0 : -1;
	if (r)
		kill(c->pid, SIGKILL);
	close(out[0]);
	close(err[0]);
	while (waitpid(c->pid, &c->status, 0) < 0 && errno == EINTR)
		;
	c->exited = true;
	return r;
}

/* The number after "@key": in @json (the first occurrence). */
static bool
json_number(const char *json, const char *key, uint64_t *out)
{
	char needle[64];
	const char *p;
	char *end;

	snprintf(needle, sizeof(needle), "\"%s\": ", key);
	p = json ? strstr(json, needle) : NULL;
	if (!p)
		return false;
	p += strlen(needle);
	*out = strtoull(p, &end, 10);
	return end != p;
}

/* The number after "@key": inside the object that follows "@object": */
static uint64_t
json_field(const char *json, const char *object, const char *key)
{
	char needle[64];
	const char *p;
	uint64_t v = 0;

	snprintf(needle, sizeof(needle), "\"%s\": {", object);
	p = json ? strstr(json, needle) : NULL;
	if (!p || !json_number(p, key, &v))
		fail_msg("no %s.%s in sluice-load's summary", object, key);
	return v;
}

static uint64_t
json_top(const char *json, const char *key)
{
	uint64_t v = 0;

	if (!json_number(json, key, &v))
		fail_msg("no %s in sluice-load's summary", key);
	return v;
}

static void
show_load(const struct load_child *c)
{
	fprintf(stderr, "---- sluice-load's stdout ----\n%s"
		"---- its stderr ----\n%s---- end ----\n",
		c->out ? c->out : "", c->err ? c->err : "");
}

/* sluiced, its one route reconciling into a tcp sink at @sink_addr. */
static void
start_sluiced(struct fixture *f, const char *sink_addr)
{
	char yaml[1024];

	snprintf(yaml, sizeof(yaml),
		 "runtime:\n  procs: 2\n"
		 "inputs:\n"
		 "  - {name: tcp, type: tcp, addr: \"127.0.0.1:0\"}\n"
		 "routes:\n"
		 "  - name: all\n"
		 "    default: true\n"
		 "    backoff: {base: 5ms, cap: 200ms}\n"
		 "    retry: {rate: 0}\n"
		 "    sink: {type: tcp, addr: \"%s\", timeout: 30s}\n"
		 ITEST_ADMIN_YAML,
		 sink_addr);
	assert_int_equal(itest_daemon_start(&f->d, yaml), 0);
}

/* sluice-load: a fixed count at a fixed rate into @in_addr, verified on
 * @sink_addr, with its JSON summary on stdout.  It must exit 0. */
static void
run_sluice_load(struct fixture *f, const char *in_addr, char *sink_addr)
{
	struct load_child *c = &f->load;
	/* posix_spawn() takes char *const[]: the strings must be writable. */
	char prog[] = "sluice-load", json[] = "--json",
	     quiet[] = "--no-progress", c_opt[] = "-c", conns[] = "2",
	     k_opt[] = "-k", r_opt[] = "-r", n_opt[] = "-n",
	     verify[] = "--verify", vt_opt[] = "--verify-timeout",
	     vt[] = "60s";
	char keys[16], rate[16], count[16], target[80];
	char *argv[] = {
		prog, json, quiet, c_opt, conns, k_opt, keys, r_opt, rate,
		n_opt, count, verify, sink_addr, vt_opt, vt, target, NULL,
	};

	snprintf(target, sizeof(target), "tcp://%s", in_addr);
	snprintf(keys, sizeof(keys), "%u", LOAD_KEYS);
	snprintf(rate, sizeof(rate), "%u", LOAD_RATE);
	snprintf(count, sizeof(count), "%u", LOAD_EVENTS);
	if (load_run(c, argv, ITEST_WAIT_MS)) {
		show_load(c);
		itest_daemon_dump_log(&f->d);
		fail_msg("sluice-load did not finish within %u ms",
			 ITEST_WAIT_MS);
	}
	if (!WIFEXITED(c->status) || WEXITSTATUS(c->status) != 0) {
		show_load(c);
		itest_daemon_dump_log(&f->d);
		itest_metrics_dump(&f->d, "sluice_route_", NULL);
		fail_msg("sluice-load failed: status %#x", c->status);
	}
}

static void
test_load_verify_e2e(void **state)
{
	struct fixture *f = *state;
	const char *out;
	char in_addr[64], sink_addr[64];
	uint64_t v = 0, delivered;
	int status = 0;

	assert_int_equal(free_port(sink_addr, sizeof(sink_addr)), 0);
	start_sluiced(f, sink_addr);
	assert_int_equal(itest_daemon_addr(&f->d, "tcp", in_addr,
					   sizeof(in_addr)), 0);
	run_sluice_load(f, in_addr, sink_addr);
	out = f->load.out;

	/* It sent what it planned, and sluiced took all of it. */
	assert_int_equal(json_top(out, "sent"), LOAD_EVENTS);
	assert_int_equal(itest_metric(&f->d, "sluice_events_ingested_total",
				      &v), 0);
	assert_int_equal(v, LOAD_EVENTS);

	/* Every key came back at its last version, and nothing else did. */
	assert_int_equal(json_field(out, "verify", "keys_sent"), LOAD_KEYS);
	assert_int_equal(json_field(out, "verify", "ok"), LOAD_KEYS);
	assert_int_equal(json_field(out, "verify", "stale"), 0);
	assert_int_equal(json_field(out, "verify", "missing"), 0);
	assert_int_equal(json_field(out, "verify", "unsent"), 0);
	assert_int_equal(json_field(out, "verify", "unknown_keys"), 0);
	assert_int_equal(json_field(out, "verify", "unreadable"), 0);
	assert_int_equal(json_field(out, "errors", "total"), 0);
	assert_non_null(strstr(out, "\"converged\": true"));

	/* New versions came back: at least one per key, no more than were
	 * sent, and no more than sluiced says it reconciled. */
	delivered = json_field(out, "verify", "new");
	assert_true(delivered >= LOAD_KEYS);
	assert_true(delivered <= LOAD_EVENTS);
	assert_int_equal(json_top(out, "delivered"), delivered);
	assert_int_equal(itest_metric(&f->d, "sluice_route_reconciles_total"
				      "{route=\"all\"}", &v), 0);
	assert_true(v >= delivered);

	/* sluice-load is built with the same sanitizer as everything else:
	 * a report from it fails the test even when it exited 0. */
	assert_null(strstr(f->load.err ? f->load.err : "", "Sanitizer"));
	assert_null(strstr(f->load.err ? f->load.err : "", "runtime error:"));

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
		cmocka_unit_test_setup_teardown(test_load_verify_e2e, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
