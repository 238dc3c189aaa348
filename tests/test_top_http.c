/* SPDX-License-Identifier: MIT */
/*
 * Tests of sluice-top's HTTP client (tools/top/http.c) against a small
 * server in the test process, and of the sluice-top program run against
 * the same server.
 *
 * The server is a thread with a listening socket on a free port: for
 * each connection it reads the request's head, keeps it, and answers from
 * a script (all at once, one byte per write, or not at all until the
 * client gives up).  The client is checked on what it sends (the request
 * line, Host, the bearer token) and on what it makes of each answer: a
 * metrics body whole, chunked or until close; 401 and 404 with their
 * reasons; a truncated body, a non-HTTP peer, an oversized one, silence
 * (timeout) and a cancel.  A port nothing listens on gives a clear
 * "cannot connect" error.  The address, head and chunk parsers are
 * checked as pure functions too.
 *
 * The program: --once against the server prints the screen and exits
 * 0; against a closed port it prints why and exits 1; a bad option exits
 * 2.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "tools/top/http.h"
#include "tools/top/snapshot.h"

#include "harness.h"

extern char **environ;

#define TIMEOUT_NS (10ull * 1000000000ull)

/* ---- the server ---- */

enum fake_how {
	FAKE_WHOLE,  /* the reply in one write */
	FAKE_BYTES,  /* one byte per write */
	FAKE_SILENT, /* no reply: wait for the client to close */
};

struct fake_reply {
	const char *data;
	enum fake_how how;
};

#define FAKE_MAX 4

struct fake_server {
	int lfd;
	char addr[32];
	pthread_t thread;
	const struct fake_reply *replies;
	size_t nreplies;

	/* Written by the server thread; read after fake_join(). */
	char requests[FAKE_MAX][2048];
	size_t nrequests;
	int error;
};

static void
fake_read_request(int fd, char *buf, size_t cap)
{
	size_t len = 0;

	buf[0] = '\0';
	while (len + 1 < cap && !strstr(buf, "\r\n\r\n")) {
		ssize_t n = read(fd, buf + len, cap - 1 - len);

		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
	}
}

static void
fake_write(int fd, const char *p, size_t len, size_t step)
{
	while (len) {
		ssize_t n = write(fd, p, len < step ? len : step);

		if (n <= 0)
			return;
		p += n;
		len -= (size_t)n;
	}
}

static void *
fake_main(void *arg)
{
	struct fake_server *s = arg;

	for (size_t i = 0; i < s->nreplies; i++) {
		const struct fake_reply *r = &s->replies[i];
		int fd = accept(s->lfd, NULL, NULL);
		char sink[256];

		if (fd < 0) {
			s->error = errno;
			return NULL;
		}
		fake_read_request(fd, s->requests[i], sizeof(s->requests[i]));
		s->nrequests++;
		switch (r->how) {
		case FAKE_WHOLE:
			fake_write(fd, r->data, strlen(r->data), SIZE_MAX);
			break;
		case FAKE_BYTES:
			fake_write(fd, r->data, strlen(r->data), 1);
			break;
		case FAKE_SILENT:
			/* Until the client hangs up. */
			while (read(fd, sink, sizeof(sink)) > 0)
				;
			break;
		}
		close(fd);
	}
	return NULL;
}

static void
fake_start(struct fake_server *s, const struct fake_reply *replies, size_t n)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	/* A broken client must not hang the test: accept gives up. */
	struct timeval tv = {.tv_sec = 20};

	assert_true(n <= FAKE_MAX);
	memset(s, 0, sizeof(*s));
	s->replies = replies;
	s->nreplies = n;
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s->lfd >= 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(s->lfd, 8), 0);
	assert_int_equal(
		setsockopt(s->lfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)),
		0);
	assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&sin, &len), 0);
	snprintf(s->addr, sizeof(s->addr), "127.0.0.1:%u", ntohs(sin.sin_port));
	assert_int_equal(pthread_create(&s->thread, NULL, fake_main, s), 0);
}

static void
fake_join(struct fake_server *s)
{
	assert_int_equal(pthread_join(s->thread, NULL), 0);
	close(s->lfd);
	assert_int_equal(s->error, 0);
}

/* A port on loopback that refuses connections: bound, not listening.
 * Kept bound while used so that nothing else takes it. */
static int
closed_port(char *addr, size_t len)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t slen = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &slen), 0);
	snprintf(addr, len, "127.0.0.1:%u", ntohs(sin.sin_port));
	return fd;
}

static int
get(const char *addr, const char *token, uint64_t timeout_ns,
    struct top_http_response *rs)
{
	struct top_http_request rq = {
		.addr = addr,
		.path = "/metrics",
		.token = token,
		.timeout_ns = timeout_ns,
		.cancel_fd = -1,
	};

	return top_http_get(&rq, rs);
}

static void
expect_err(const struct top_http_response *rs, const char *want)
{
	if (!strstr(rs->err, want))
		fail_msg("error \"%s\" does not say \"%s\"", rs->err, want);
}

/* ---- canned answers ---- */

#define METRICS_BODY                                                           \
	"# TYPE sluice_events_ingested_total counter\n"                        \
	"sluice_events_ingested_total 4242\n"                                  \
	"sluice_route_pending{route=\"orders\"} 17\n"                          \
	"sluice_route_adds_total{route=\"orders\"} 4242\n"                     \
	"sluice_proc_runq_length{proc=\"0\"} 1\n"                              \
	"sluice_proc_runq_length{proc=\"1\"} 0\n"                              \
	"sluice_start_time_seconds 1700000000\n"

#define STR_(x) #x
#define STR(x) STR_(x)

/* The body's length; the test checks the figure. */
#define METRICS_LEN 272
static const char metrics_ok[] =
	"HTTP/1.1 200 OK\r\n"
	"Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
	"Content-Length: " STR(METRICS_LEN) "\r\n"
					    "Cache-Control: no-store\r\n"
					    "Connection: close\r\n"
					    "\r\n" METRICS_BODY;

static void
test_http_fetch_snapshot(void **state)
{
	const struct fake_reply replies[] = {{metrics_ok, FAKE_WHOLE}};
	struct top_http_request rq = {
		.path = "/metrics", .cancel_fd = -1, .timeout_ns = TIMEOUT_NS};
	struct top_snapshot snap;
	struct fake_server s;
	char err[TOP_HTTP_ERR_MAX], host[64];

	(void)state;
	assert_int_equal(strlen(METRICS_BODY), METRICS_LEN);
	fake_start(&s, replies, 1);
	rq.addr = s.addr;
	top_snapshot_init(&snap);
	assert_int_equal(top_snapshot_fetch(&snap, &rq, err, sizeof(err)), 0);
	fake_join(&s);

	/* What was asked. */
	assert_int_equal(s.nrequests, 1);
	assert_true(!strncmp(s.requests[0], "GET /metrics HTTP/1.1\r\n", 23));
	snprintf(host, sizeof(host), "\r\nHost: %s\r\n", s.addr);
	assert_non_null(strstr(s.requests[0], host));
	assert_non_null(strstr(s.requests[0], "\r\nConnection: close\r\n"));
	assert_null(strstr(s.requests[0], "Authorization"));

	/* What came back, boiled down. */
	assert_true(snap.valid);
	assert_int_equal(snap.set.bad_lines, 0);
	assert_int_equal(snap.set.nsamples, 6);
	assert_true(snap.st.g[TOP_G_INGESTED] == 4242);
	assert_int_equal(snap.st.groups[TOP_ROUTES].n, 1);
	assert_string_equal(snap.st.groups[TOP_ROUTES].items[0].name, "orders");
	assert_true(snap.st.groups[TOP_ROUTES].items[0].v[TOP_R_PENDING] == 17);
	assert_int_equal(snap.st.groups[TOP_PROCS].n, 2);
	assert_true(snap.mono_ns > 0);
	assert_true(snap.wall > 1.7e9);
	top_snapshot_fini(&snap);
}

static void
test_http_sends_the_token(void **state)
{
	const struct fake_reply replies[] = {{metrics_ok, FAKE_WHOLE}};
	struct top_http_response rs;
	struct fake_server s;

	(void)state;
	fake_start(&s, replies, 1);
	assert_int_equal(get(s.addr, "s3cret-token", TIMEOUT_NS, &rs), 0);
	fake_join(&s);
	assert_non_null(strstr(s.requests[0],
			       "\r\nAuthorization: Bearer s3cret-token\r\n"));
	assert_int_equal(rs.status, 200);
	assert_int_equal(rs.body_len, METRICS_LEN);
	assert_string_equal(rs.body, METRICS_BODY);
	top_http_response_fini(&rs);

	/* A token that could break the header is not sent at all. */
	assert_int_equal(get(s.addr, "two\r\nX: y", TIMEOUT_NS, &rs), -EINVAL);
	expect_err(&rs, "the token must be");
	top_http_response_fini(&rs);
}

static void
test_http_401_and_404_say_why(void **state)
{
	static const char unauthorized[] =
		"HTTP/1.1 401 Unauthorized\r\n"
		"WWW-Authenticate: Bearer realm=\"sluice\"\r\n"
		"Content-Length: 13\r\n\r\nunauthorized\n";
	static const char not_found[] = "HTTP/1.1 404 Not Found\r\n"
					"Content-Length: 13\r\n\r\n"
					"no such path\n";
	const struct fake_reply replies[] = {
		{unauthorized, FAKE_WHOLE},
		{unauthorized, FAKE_WHOLE},
		{not_found, FAKE_WHOLE},
	};
	struct top_http_response rs;
	struct fake_server s;

	(void)state;
	fake_start(&s, replies, 3);
	assert_int_equal(get(s.addr, NULL, TIMEOUT_NS, &rs), -EACCES);
	assert_int_equal(rs.status, 401);
	assert_null(rs.body);
	expect_err(&rs, "answered 401: it wants a token (--token or "
			"--token-file)");
	top_http_response_fini(&rs);

	assert_int_equal(get(s.addr, "wrong", TIMEOUT_NS, &rs), -EACCES);
	expect_err(&rs, "answered 401: the token was refused");
	top_http_response_fini(&rs);

	assert_int_equal(get(s.addr, NULL, TIMEOUT_NS, &rs), -EIO);
	assert_int_equal(rs.status, 404);
	expect_err(&rs, "answered 404: no such path");
	top_http_response_fini(&rs);
	fake_join(&s);
}

static void
test_http_chunked_and_close_delimited(void **state)
{
	static const char chunked[] = "HTTP/1.1 200 OK\r\n"
				      "Transfer-Encoding: chunked\r\n\r\n"
				      "5\r\nhello\r\n"
				      "7;note=x\r\n, world\r\n"
				      "A\r\n and more\n\r\n"
				      "0\r\nX-Trailer: 1\r\n\r\n";
	static const char until_close[] = "HTTP/1.0 200 OK\n"
					  "Content-Type: text/plain\n\n"
					  "m 1\nn 2\n";
	const struct fake_reply replies[] = {
		{chunked, FAKE_BYTES},
		{chunked, FAKE_WHOLE},
		{until_close, FAKE_BYTES},
	};
	struct top_http_response rs;
	struct fake_server s;

	(void)state;
	fake_start(&s, replies, 3);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(get(s.addr, NULL, TIMEOUT_NS, &rs), 0);
		assert_string_equal(rs.body, "hello, world and more\n");
		assert_int_equal(rs.body_len, 22);
		top_http_response_fini(&rs);
	}
	assert_int_equal(get(s.addr, NULL, TIMEOUT_NS, &rs), 0);
	assert_string_equal(rs.body, "m 1\nn 2\n");
	top_http_response_fini(&rs);
	fake_join(&s);
}

static void
test_http_broken_answers(void **state)
{
	static const char truncated[] = "HTTP/1.1 200 OK\r\n"
					"Content-Length: 100\r\n\r\nshort";
	static const char not_http[] = "SSH-2.0-OpenSSH_9.2\r\n";
	static const char too_big[] = "HTTP/1.1 200 OK\r\n"
				      "Content-Length: 999999999999\r\n\r\n";
	static const char bad_chunk[] = "HTTP/1.1 200 OK\r\n"
					"Transfer-Encoding: chunked\r\n\r\n"
					"zz\r\n";
	const struct fake_reply replies[] = {
		{truncated, FAKE_WHOLE},
		{not_http, FAKE_WHOLE},
		{too_big, FAKE_WHOLE},
		{bad_chunk, FAKE_WHOLE},
	};
	struct top_http_response rs;
	struct fake_server s;

	(void)state;
	fake_start(&s, replies, 4);
	assert_int_equal(get(s.addr, NULL, TIMEOUT_NS, &rs), -EPROTO);
	expect_err(&rs, "closed the connection in the middle of the answer");
	top_http_response_fini(&rs);

	assert_int_equal(get(s.addr, NULL, TIMEOUT_NS, &rs), -EPROTO);
	expect_err(&rs, "sent a malformed answer: the status line is not "
			"HTTP/1.x");
	top_http_response_fini(&rs);

	assert_int_equal(get(s.addr, NULL, TIMEOUT_NS, &rs), -EMSGSIZE);
	expect_err(&rs, "is larger than 64 MiB");
	top_http_response_fini(&rs);

	assert_int_equal(get(s.addr, NULL, TIMEOUT_NS, &rs), -EPROTO);
	expect_err(&rs, "malformed chunked body");
	top_http_response_fini(&rs);
	fake_join(&s);
}

static void
test_http_closed_without_answer(void **state)
{
	const struct fake_reply replies[] = {{"", FAKE_WHOLE}};
	struct top_http_response rs;
	struct fake_server s;

	(void)state;
	fake_start(&s, replies, 1);
	assert_int_equal(get(s.addr, NULL, TIMEOUT_NS, &rs), -EPROTO);
	expect_err(&rs, "closed the connection before answering");
	top_http_response_fini(&rs);
	fake_join(&s);
}

static void
test_http_unreachable(void **state)
{
	struct top_http_response rs;
	char addr[32], want[96];
	int fd;

	(void)state;
	fd = closed_port(addr, sizeof(addr));
	assert_int_equal(get(addr, NULL, TIMEOUT_NS, &rs), -ECONNREFUSED);
	snprintf(want, sizeof(want), "cannot connect to %s: Connection refused",
		 addr);
	expect_err(&rs, want);
	assert_int_equal(rs.status, 0);
	top_http_response_fini(&rs);
	close(fd);

	assert_int_equal(get("127.0.0.1", NULL, TIMEOUT_NS, &rs), -EINVAL);
	expect_err(&rs, "bad address \"127.0.0.1\": no port");
	top_http_response_fini(&rs);
}

static void
test_http_silent_server_times_out(void **state)
{
	const struct fake_reply replies[] = {{NULL, FAKE_SILENT}};
	struct top_http_response rs;
	struct fake_server s;

	(void)state;
	fake_start(&s, replies, 1);
	assert_int_equal(get(s.addr, NULL, 200 * 1000 * 1000, &rs), -ETIMEDOUT);
	expect_err(&rs, "cannot read the answer from");
	expect_err(&rs, "timed out after 0.2 s");
	top_http_response_fini(&rs);
	fake_join(&s);
}

static void
test_http_cancel_fd_ends_the_wait(void **state)
{
	const struct fake_reply replies[] = {{NULL, FAKE_SILENT}};
	struct top_http_request rq = {.path = "/metrics",
				      .timeout_ns = 60 * TIMEOUT_NS};
	struct top_http_response rs;
	struct fake_server s;
	int p[2];

	(void)state;
	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], "x", 1), 1);
	fake_start(&s, replies, 1);
	rq.addr = s.addr;
	rq.cancel_fd = p[0];
	/* Without the cancel this would wait ten minutes. */
	assert_int_equal(top_http_get(&rq, &rs), -ECANCELED);
	expect_err(&rs, "interrupted");
	top_http_response_fini(&rs);
	fake_join(&s);
	close(p[0]);
	close(p[1]);
}

/* ---- the parsers alone ---- */

static void
test_http_parse_addr(void **state)
{
	static const struct {
		const char *in, *host, *port;
		bool ipv6;
	} good[] = {
		{"127.0.0.1:7401", "127.0.0.1", "7401", false},
		{"localhost:80", "localhost", "80", false},
		{"[::1]:7401", "::1", "7401", true},
		{"http://10.0.0.2:9/", "10.0.0.2", "9", false},
		{"HTTP://[fe80::1]:65535", "fe80::1", "65535", true},
	};
	static const char *const bad[] = {
		"",
		"127.0.0.1",
		":7401",
		"h:",
		"h:0",
		"h:65536",
		"h:12a",
		"::1:7401",
		"[::1]7401",
		"[::1]",
		"https://h:1",
		"ftp://h:1",
		"h:1/metrics",
		"h:123456",
	};
	struct top_http_addr a;
	const char *why;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(top_http_parse_addr(good[i].in, &a, &why), 0);
		assert_string_equal(a.host, good[i].host);
		assert_string_equal(a.port, good[i].port);
		assert_int_equal(a.ipv6, good[i].ipv6);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		if (top_http_parse_addr(bad[i], &a, &why) != -EINVAL)
			fail_msg("\"%s\" was taken", bad[i]);
		assert_non_null(why);
	}
}

static int
head(const char *text, struct top_http_head *h)
{
	const char *why;

	return top_http_parse_head(text, strlen(text), h, &why);
}

static void
test_http_parse_head(void **state)
{
	static const char *const bad[] = {
		"HTTP/2 200 OK\r\n\r\n",
		"HTTP/1.1 20 OK\r\n\r\n",
		"HTTP/1.1 200OK\r\n\r\n",
		"\r\n",
		"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
		"HTTP/1.1 200 OK\r\n: empty name\r\n\r\n",
		"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
		"HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
		/* Two lengths that disagree. */
		("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n"
		 "Content-Length: 2\r\n\r\n"),
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
	};
	static const char ok[] = "HTTP/1.1 200 OK\r\n"
				 "content-length:  42 \r\n"
				 "Content-Length: 42\r\n"
				 "X-Other: whatever\r\n\r\nbody";
	struct top_http_head h;

	(void)state;
	assert_int_equal(head(ok, &h), (int)strlen(ok) - 4);
	assert_int_equal(h.status, 200);
	assert_int_equal(h.version_minor, 1);
	assert_true(h.has_length);
	assert_int_equal(h.content_length, 42);
	assert_false(h.chunked);

	/* Bare LF, no reason phrase, chunked in any case. */
	assert_int_equal(
		head("HTTP/1.0 503\nTransfer-Encoding: Chunked\n\n", &h), 41);
	assert_int_equal(h.status, 503);
	assert_int_equal(h.version_minor, 0);
	assert_true(h.chunked);

	/* Every proper prefix is incomplete. */
	for (size_t cut = 0; cut < strlen(ok) - 4; cut++) {
		const char *why;

		assert_int_equal(top_http_parse_head(ok, cut, &h, &why), 0);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (head(bad[i], &h) != -EPROTO)
			fail_msg("head %zu was taken: %s", i, bad[i]);
}

static void
test_http_dechunk(void **state)
{
	static const char body[] = "4\r\nwiki\r\n"
				   "5;ext=1\r\npedia\r\n"
				   "E\r\n in\r\n\r\nchunks.\r\n"
				   "0\r\n\r\n";
	static const char *const bad[] = {
		"g\r\n",
		"\r\n",
		"4\r\nwikiXX",
		"-1\r\n",
		"4 x\r\nwiki\r\n0\r\n\r\n",
		"FFFFFFFFFFFFFFFFFF\r\n",
	};
	char out[64];
	size_t n = 0;
	size_t len = strlen(body);

	(void)state;
	assert_int_equal(top_http_dechunk(body, len, out, &n), (long)len);
	assert_int_equal(n, 23);
	assert_memory_equal(out, "wikipedia in\r\n\r\nchunks.", 23);
	for (size_t cut = 0; cut < len; cut++)
		assert_int_equal(top_http_dechunk(body, cut, NULL, &n), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (top_http_dechunk(bad[i], strlen(bad[i]), NULL, &n) !=
		    -EPROTO)
			fail_msg("chunks %zu were taken: %s", i, bad[i]);
}

/* ---- the program ---- */

struct run {
	int status; /* the exit status, or -1 */
	char out[8192], err[2048];
};

static void
slurp(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, cap - 1) : -1;

	buf[n > 0 ? n : 0] = '\0';
	if (fd >= 0)
		close(fd);
}

/* Run sluice-top with @args (NULL-terminated), its stdout and stderr
 * into files, and wait for it. */
static void
run_top(struct run *r, const char *const *args)
{
	static char path[] = SLUICE_TOP_PATH;
	char dir[] = "/tmp/sluice-top-test-XXXXXX";
	char out[64], err[64], copies[15][128];
	char *argv[16];
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int st = 0, n = 0;

	assert_non_null(mkdtemp(dir));
	snprintf(out, sizeof(out), "%s/out", dir);
	snprintf(err, sizeof(err), "%s/err", dir);
	argv[n++] = path;
	for (; *args && n < 15; args++, n++) {
		snprintf(copies[n], sizeof(copies[n]), "%s", *args);
		argv[n] = copies[n];
	}
	argv[n] = NULL;

	assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT, 0600);
	posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT, 0600);
	assert_int_equal(posix_spawn(&pid, path, &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	slurp(out, r->out, sizeof(r->out));
	slurp(err, r->err, sizeof(r->err));
	unlink(out);
	unlink(err);
	rmdir(dir);
}

static void
test_program_once_prints_the_screen(void **state)
{
	const struct fake_reply replies[] = {{metrics_ok, FAKE_WHOLE}};
	struct fake_server s;
	struct run r;

	(void)state;
	fake_start(&s, replies, 1);
	run_top(&r, (const char *const[]){"--once", "--interval", "0",
					  "--admin", s.addr, NULL});
	fake_join(&s);
	if (r.status != 0)
		fail_msg("exit %d: %s", r.status, r.err);
	assert_string_equal(r.err, "");
	assert_non_null(strstr(r.out, "sluice-top  127.0.0.1:"));
	assert_non_null(strstr(r.out, "\nevents   in -/s (4242)   "));
	/* No processing, waiting or folds series: "-", not 0. */
	assert_non_null(strstr(r.out, "\norders      17     -     -       "
				      "-       -      -"));
	assert_non_null(strstr(r.out, "\n0     1        -"));
	assert_non_null(strstr(r.out, "\none scrape: no rates yet;"));
	/* Plain text: no escapes for a script to strip. */
	assert_null(strchr(r.out, '\x1b'));
}

static void
test_program_once_with_rates(void **state)
{
	static const char later[] =
		"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"
		"sluice_events_ingested_total 9242\n"
		"sluice_route_adds_total{route=\"orders\"} 9242\n"
		"sluice_start_time_seconds 1700000000\n";
	const struct fake_reply replies[] = {
		{metrics_ok, FAKE_WHOLE},
		{later, FAKE_WHOLE},
	};
	struct fake_server s;
	struct run r;

	(void)state;
	fake_start(&s, replies, 2);
	run_top(&r, (const char *const[]){"--once", "-i", "100ms", "-a", s.addr,
					  "--token", "t0k", NULL});
	if (r.status != 0)
		fail_msg("exit %d: %s", r.status, r.err);
	fake_join(&s);
	assert_non_null(strstr(s.requests[1], "Authorization: Bearer t0k"));
	/* 5000 events over a window of 100 ms or more: a rate, not "-". */
	assert_non_null(strstr(r.out, "\nevents   in "));
	assert_null(strstr(r.out, "\nevents   in -/s"));
	assert_non_null(strstr(r.out, "/s (9242)"));
	assert_non_null(strstr(r.out, "\nrates, FOLD% and P99 cover the last"));
}

static void
test_program_unreachable_exits_1(void **state)
{
	char addr[32], want[96];
	struct run r;
	int fd;

	(void)state;
	fd = closed_port(addr, sizeof(addr));
	run_top(&r, (const char *const[]){"--once", "--admin", addr, NULL});
	close(fd);
	assert_int_equal(r.status, 1);
	assert_string_equal(r.out, "");
	snprintf(want, sizeof(want),
		 "sluice-top: cannot connect to %s: Connection refused\n",
		 addr);
	assert_string_equal(r.err, want);
}

static void
test_program_bad_arguments_exit_2(void **state)
{
	struct run r;

	(void)state;
	run_top(&r, (const char *const[]){"--interval", "-1", NULL});
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "sluice-top: --interval -1: give 0.1 "
				      "to 3600 seconds"));
	run_top(&r, (const char *const[]){"--help", NULL});
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "usage: sluice-top [options]"));
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_http_fetch_snapshot),
		cmocka_unit_test(test_http_sends_the_token),
		cmocka_unit_test(test_http_401_and_404_say_why),
		cmocka_unit_test(test_http_chunked_and_close_delimited),
		cmocka_unit_test(test_http_broken_answers),
		cmocka_unit_test(test_http_closed_without_answer),
		cmocka_unit_test(test_http_unreachable),
		cmocka_unit_test(test_http_silent_server_times_out),
		cmocka_unit_test(test_http_cancel_fd_ends_the_wait),
		cmocka_unit_test(test_http_parse_addr),
		cmocka_unit_test(test_http_parse_head),
		cmocka_unit_test(test_http_dechunk),
		cmocka_unit_test(test_program_once_prints_the_screen),
		cmocka_unit_test(test_program_once_with_rates),
		cmocka_unit_test(test_program_unreachable_exits_1),
		cmocka_unit_test(test_program_bad_arguments_exit_2),
	};

	harness_init();
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
