/* SPDX-License-Identifier: MIT */
/*
 * Tests of the admin endpoint: the request parser on its own (every
 * status it can give, its limits at and just past each bound, every
 * prefix of valid requests, and the invariants its header promises, over
 * seeded mutations of valid and invalid requests), then the server inside
 * a runtime, over real loopback connections: each endpoint, methods,
 * limits, the token, slow clients, stop with requests in flight, many
 * clients at once, and reloads of a real configuration file through
 * POST /reload, refused ones keeping the routes that run.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/context.h"
#include "core/task.h"
#include "io/net.h"
#include "router/admin.h"
#include "router/config.h"
#include "router/sluice.h"

#include "harness.h"

/* ---- the parser ---- */

static int
parse_str(const char *s, struct sl_admin_request *req)
{
	return sl_admin_parse_request(s, strlen(s), req);
}

static void
test_admin_parse_get(void **state)
{
	static const char s[] = "GET /metrics?x=1&y HTTP/1.1\r\n"
				"Host: localhost:7401\r\n"
				"User-Agent:curl/8.0\r\n"
				"Accept: \t*/* \t\r\n"
				"\r\n";
	struct sl_admin_request req;

	(void)state;
	assert_int_equal(parse_str(s, &req), strlen(s));
	assert_int_equal(req.method, SL_ADMIN_METHOD_GET);
	assert_int_equal(req.method_len, 3);
	assert_int_equal(req.target_len, strlen("/metrics?x=1&y"));
	assert_int_equal(req.path_len, strlen("/metrics"));
	assert_memory_equal(req.target, "/metrics", 8);
	assert_int_equal(req.version_minor, 1);
	assert_int_equal(req.nheaders, 3);
	assert_non_null(req.host);
	assert_null(req.authorization);
	assert_int_equal(req.host->value_len, strlen("localhost:7401"));
	/* No space after the colon; spaces and tabs around a value. */
	assert_int_equal(req.headers[1].value_len, strlen("curl/8.0"));
	assert_int_equal(req.headers[2].value_len, 3);
	assert_memory_equal(req.headers[2].value, "*/*", 3);
	assert_int_equal(req.body_len, 0);
	assert_int_equal(req.size, strlen(s));
}

static void
test_admin_parse_methods(void **state)
{
	struct sl_admin_request req;

	(void)state;
	assert_true(parse_str("HEAD / HTTP/1.0\r\n\r\n", &req) > 0);
	assert_int_equal(req.method, SL_ADMIN_METHOD_HEAD);
	/* HTTP/1.0 needs no Host. */
	assert_int_equal(req.version_minor, 0);
	assert_true(parse_str("POST /reload HTTP/1.1\r\nHost: h\r\n\r\n",
			      &req) > 0);
	assert_int_equal(req.method, SL_ADMIN_METHOD_POST);
	/* Well-formed methods the server does not serve parse fine: the
	 * server answers them 405. */
	assert_true(parse_str("DELETE /x HTTP/1.1\r\nHost: h\r\n\r\n",
			      &req) > 0);
	assert_int_equal(req.method, SL_ADMIN_METHOD_OTHER);
	assert_int_equal(req.method_len, 6);
	assert_true(parse_str("get / HTTP/1.1\r\nHost: h\r\n\r\n", &req) > 0);
	assert_int_equal(req.method, SL_ADMIN_METHOD_OTHER);
	/* A later minor version is still HTTP/1. */
	assert_true(parse_str("GET / HTTP/1.9\r\nHost: h\r\n\r\n", &req) > 0);
	assert_int_equal(req.version_minor, 9);
}

static void
test_admin_parse_body_and_pipelining(void **state)
{
	static const char s[] = "POST /reload HTTP/1.1\r\n"
				"Host: h\r\n"
				"content-LENGTH: 5\r\n"
				"\r\n"
				"hello"
				"GET / HTTP/1.1\r\n";
	size_t head = strlen(s) - strlen("hello") -
		      strlen("GET / HTTP/1.1\r\n");
	struct sl_admin_request req;

	(void)state;
	/* The bytes after the body are not part of the request. */
	assert_int_equal(parse_str(s, &req), head + 5);
	assert_int_equal(req.body_len, 5);
	assert_memory_equal(req.body, "hello", 5);

	/* Head complete, body not: incomplete, and 413 if the buffer is
	 * full. */
	assert_int_equal(sl_admin_parse_request(s, head + 4, &req), 0);
	assert_int_equal(req.status, 413);

	/* Content-Length at the limit is taken; 0 means no body. */
	{
		char big[256];

		snprintf(big, sizeof(big),
			 "POST /reload HTTP/1.1\r\nHost: h\r\n"
			 "Content-Length: %d\r\n\r\n",
			 SL_ADMIN_BODY_MAX);
		assert_int_equal(parse_str(big, &req), 0);
		assert_int_equal(req.status, 413);
	}
	assert_true(parse_str("POST /reload HTTP/1.1\r\nHost: h\r\n"
			      "Content-Length: 000\r\n\r\n",
			      &req) > 0);
	assert_int_equal(req.body_len, 0);
}

/* Every prefix of a valid request is incomplete, never an error. */
static void
test_admin_parse_every_prefix(void **state)
{
	static const char post[] = "POST /reload?now HTTP/1.1\r\nHost: a\r\n"
				   "Content-Length: 3\r\n"
				   "Authorization: Bearer x\r\n"
				   "X-Empty:\r\n\r\nabc";
	const char *const valid[] = {
		"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\n",
		post,
	};
	struct sl_admin_request req;

	(void)state;
	for (size_t v = 0; v < SL_ARRAY_SIZE(valid); v++) {
		size_t len = strlen(valid[v]);

		for (size_t k = 0; k < len; k++) {
			int r = sl_admin_parse_request(valid[v], k, &req);

			if (r != 0)
				fail_msg("request %zu, prefix %zu: %d (%s)", v,
					 k, r, req.why ? req.why : "");
		}
		assert_int_equal(sl_admin_parse_request(valid[v], len, &req),
				 len);
	}

	/* While incomplete, the status names the part that is open. */
	assert_int_equal(parse_str("GE", &req), 0);
	assert_int_equal(req.status, 400);
	assert_int_equal(parse_str("GET /he", &req), 0);
	assert_int_equal(req.status, 414);
	/* The version is still part of the request line. */
	assert_int_equal(parse_str("GET / HTTP/1.", &req), 0);
	assert_int_equal(req.status, 414);
	assert_int_equal(parse_str("GET / HTTP/1.1\r\nHost: a\r\nX-", &req),
			 0);
	assert_int_equal(req.status, 431);
}

struct parse_case {
	const char *in;
	int status;
};

static void
test_admin_parse_errors(void **state)
{
	static const struct parse_case cases[] = {
		/* request line */
		{"GET  / HTTP/1.1\r\n", 400},		/* empty target */
		{" GET / HTTP/1.1\r\n", 400},		/* empty method */
		{"\r\nGET / HTTP/1.1\r\n", 400},	/* leading CRLF */
		{"G(T / HTTP/1.1\r\n", 400},		/* not a token */
		{"GET\t/ HTTP/1.1\r\n", 400},
		{"GET x HTTP/1.1\r\n", 400},		/* not a path */
		{"GET http://h/ HTTP/1.1\r\n", 400},	/* absolute form */
		{"OPTIONS * HTTP/1.1\r\n", 400},
		{"GET /a#b HTTP/1.1\r\n", 400},
		{"GET /a\x7f HTTP/1.1\r\n", 400},
		{"GET /\xc3\xa9 HTTP/1.1\r\n", 400},
		{"GET /a\tb HTTP/1.1\r\n", 400},
		{"GET / http/1.1\r\n", 400},
		{"GET / HTTP/1.1 \r\n", 400},
		{"GET / HTTP/1.1\n", 400},		/* bare LF */
		{"GET / HTTP/1.1\rX", 400},
		{"GET / HTTP/11\r\n", 400},
		{"GET / HTTP/1.x\r\n", 400},
		{"GET / HTTP/2.0\r\n", 505},
		{"GET / HTTP/0.9\r\n", 505},
		{"GET / HTTP/3", 505},			/* known early */
		{"GET / HTTP/1.1 extra\r\n", 400},
		/* headers */
		{"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\n\tHost: a\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\n: a\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nHo(st: a\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nHost: a\x7f\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nHost: a\r\n\rX", 400},
		{"GET / HTTP/1.1\r\nHost: a\r\n\n", 400},
		{"GET / HTTP/1.1\r\n\r\n", 400},	/* 1.1 without Host */
		{"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer x\r\n"
		 "Authorization: Bearer y\r\n\r\n",
		 400},
		/* bodies */
		{"POST / HTTP/1.1\r\nContent-Length: \r\n", 400},
		{"POST / HTTP/1.1\r\nContent-Length: 1a\r\n", 400},
		{"POST / HTTP/1.1\r\nContent-Length: -1\r\n", 400},
		{"POST / HTTP/1.1\r\nContent-Length: +1\r\n", 400},
		{"POST / HTTP/1.1\r\nContent-Length: 1, 1\r\n", 400},
		{"POST / HTTP/1.1\r\nContent-Length: 1 1\r\n", 400},
		{"POST / HTTP/1.1\r\nContent-Length: 1\r\n"
		 "Content-Length: 1\r\n",
		 400},
		{"POST / HTTP/1.1\r\nContent-Length: 1025\r\n", 413},
		{"POST / HTTP/1.1\r\nContent-Length: "
		 "99999999999999999999999999\r\n",
		 413},
		{"POST / HTTP/1.1\r\nContent-Length: 99999x\r\n", 400},
		{"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n", 501},
		{"POST / HTTP/1.1\r\nContent-Length: 3\r\n"
		 "Transfer-Encoding: chunked\r\n",
		 400},
	};
	struct sl_admin_request req;

	(void)state;
	for (size_t i = 0; i < SL_ARRAY_SIZE(cases); i++) {
		int r = parse_str(cases[i].in, &req);

		if (r != -EBADMSG || req.status != cases[i].status)
			fail_msg("case %zu: got %d status %d, want status %d",
				 i, r, req.status, cases[i].status);
		assert_non_null(req.why);
	}

	/* A NUL byte is a control byte like any other. */
	assert_int_equal(sl_admin_parse_request("GET /a\0b HTTP/1.1\r\n", 19,
						&req),
			 -EBADMSG);
	assert_int_equal(req.status, 400);
	assert_int_equal(sl_admin_parse_request(NULL, 0, &req), 0);
}

/* Build "GET <target> HTTP/1.1\r\nHost: h\r\n" plus @extra headers. */
static char *
request_with(size_t target_len, unsigned nheaders, size_t field_len)
{
	size_t cap = target_len + (nheaders + 2) * (field_len + 64) + 64;
	char *s = malloc(cap), *p = s;

	assert_non_null(s);
	p += sprintf(p, "GET /");
	memset(p, 'a', target_len - 1);
	p += target_len - 1;
	p += sprintf(p, " HTTP/1.1\r\nHost: h\r\n");
	for (unsigned i = 0; i < nheaders; i++) {
		/* "X-nnnn: " + value + CRLF == field_len */
		int n = sprintf(p, "X-%04u: ", i);

		memset(p + n, 'v', field_len - (size_t)n - 2);
		p += field_len - 2;
		p += sprintf(p, "\r\n");
	}
	p += sprintf(p, "\r\n");
	return s;
}

static void
test_admin_parse_limits(void **state)
{
	struct sl_admin_request req;
	char method[SL_ADMIN_METHOD_MAX + 32];
	char *s;

	(void)state;

	/* Target: exactly at the limit, then one past it. */
	s = request_with(SL_ADMIN_TARGET_MAX, 0, 0);
	assert_true(parse_str(s, &req) > 0);
	assert_int_equal(req.target_len, SL_ADMIN_TARGET_MAX);
	free(s);
	s = request_with(SL_ADMIN_TARGET_MAX + 1, 0, 0);
	assert_int_equal(parse_str(s, &req), -EBADMSG);
	assert_int_equal(req.status, 414);
	/* Known before the end of the line arrives. */
	assert_int_equal(sl_admin_parse_request(s, 4 + SL_ADMIN_TARGET_MAX + 1,
						&req),
			 -EBADMSG);
	assert_int_equal(req.status, 414);
	free(s);

	/* Header lines: as many as allowed (Host is one), then one more. */
	s = request_with(1, SL_ADMIN_HEADERS_MAX - 1, 16);
	assert_true(parse_str(s, &req) > 0);
	assert_int_equal(req.nheaders, SL_ADMIN_HEADERS_MAX);
	free(s);
	s = request_with(1, SL_ADMIN_HEADERS_MAX, 16);
	assert_int_equal(parse_str(s, &req), -EBADMSG);
	assert_int_equal(req.status, 431);
	free(s);

	/* One header line of the longest length, CRLF included, then
	 * one byte longer, with and without its end in the buffer. */
	s = request_with(1, 1, SL_ADMIN_FIELD_MAX);
	assert_true(parse_str(s, &req) > 0);
	free(s);
	s = request_with(1, 1, SL_ADMIN_FIELD_MAX + 1);
	assert_int_equal(parse_str(s, &req), -EBADMSG);
	assert_int_equal(req.status, 431);
	assert_int_equal(sl_admin_parse_request(s, strlen(s) - 4, &req),
			 -EBADMSG);
	assert_int_equal(req.status, 431);
	free(s);

	/* A name alone past the limit. */
	s = malloc(SL_ADMIN_FIELD_MAX + 64);
	assert_non_null(s);
	strcpy(s, "GET / HTTP/1.1\r\n");
	memset(s + 16, 'n', SL_ADMIN_FIELD_MAX);
	s[16 + SL_ADMIN_FIELD_MAX] = '\0';
	assert_int_equal(parse_str(s, &req), -EBADMSG);
	assert_int_equal(req.status, 431);
	free(s);

	/* Methods: the longest allowed, then one longer (501). */
	memset(method, 'M', SL_ADMIN_METHOD_MAX);
	strcpy(method + SL_ADMIN_METHOD_MAX, " / HTTP/1.0\r\n\r\n");
	assert_true(parse_str(method, &req) > 0);
	assert_int_equal(req.method_len, SL_ADMIN_METHOD_MAX);
	memset(method, 'M', SL_ADMIN_METHOD_MAX + 1);
	strcpy(method + SL_ADMIN_METHOD_MAX + 1, " / HTTP/1.0\r\n\r\n");
	assert_int_equal(parse_str(method, &req), -EBADMSG);
	assert_int_equal(req.status, 501);
}

/*
 * The promises of sl_admin_parse_request()'s header, checked on one input:
 * the result's range, the fields on success and on error, the views inside
 * the request, and that no prefix reaches a verdict the whole input does
 * not share.  The fuzz target checks the same; here it runs on a fixed,
 * seeded set of inputs so that every build checks them.
 */
static bool
inside(const char *p, size_t len, const char *buf, size_t size)
{
	return len == 0 || (p >= buf && p + len <= buf + size);
}

static void
check_parse_invariants(const char *buf, size_t len, uint64_t *rng)
{
	static const int errors[] = {400, 413, 414, 431, 501, 505};
	struct sl_admin_request req, pre;
	bool known = false;
	int r = sl_admin_parse_request(buf, len, &req);

	if (r > 0) {
		assert_true((size_t)r <= len);
		assert_int_equal(req.status, 0);
		assert_int_equal(req.size, (size_t)r);
		assert_non_null(req.body);
		assert_true(req.body_len <= SL_ADMIN_BODY_MAX);
		assert_true(inside(req.body, req.body_len, buf, req.size));
		assert_true(inside(req.method_name, req.method_len, buf,
				   req.size));
		assert_true(inside(req.target, req.target_len, buf, req.size));
		assert_true(req.path_len <= req.target_len);
		assert_true(req.nheaders <= SL_ADMIN_HEADERS_MAX);
		for (unsigned i = 0; i < req.nheaders; i++) {
			const struct sl_admin_header *h = &req.headers[i];

			assert_true(inside(h->name, h->name_len, buf,
					   req.size));
			assert_true(inside(h->value, h->value_len, buf,
					   req.size));
		}
		assert_true(!req.host || (req.host >= req.headers &&
					  req.host < req.headers +
							     req.nheaders));
		assert_true(!req.authorization ||
			    (req.authorization >= req.headers &&
			     req.authorization < req.headers + req.nheaders));
	} else if (r == -EBADMSG) {
		assert_non_null(req.why);
		assert_true(req.why[0] != '\0');
		for (size_t i = 0; i < SL_ARRAY_SIZE(errors); i++)
			known = known || req.status == errors[i];
		assert_true(known);
	} else {
		assert_int_equal(r, 0);
		assert_true(req.status == 400 || req.status == 413 ||
			    req.status == 414 || req.status == 431);
	}

	/* A prefix that has a verdict has this one: every prefix of a short
	 * input, a sample of a long one's. */
	for (size_t k = 0; k < len; k++) {
		size_t at = len <= 64 ? k : harness_random(rng) % len;
		int rp = sl_admin_parse_request(buf, at, &pre);

		if (rp != 0 && (rp != r || pre.status != req.status))
			fail_msg("prefix %zu of %zu: %d (%d), whole: %d (%d)",
				 at, len, rp, pre.status, r, req.status);
		if (len > 64 && k == 48)
			break;
	}
}

#define MUTANT_MAX 512

/* @seed changed in one to four random ways, into @out. */
static size_t
mutate(const char *seed, size_t len, char *out, uint64_t *rng)
{
	static const char bytes[] = " \r\n:/?#09aAZ\t\x01\x7f\x80-";
	unsigned steps = 1 + (unsigned)(harness_random(rng) % 4);

	memcpy(out, seed, len);
	while (steps--) {
		size_t at = len ? harness_random(rng) % len : 0;
		char b = bytes[harness_random(rng) % (sizeof(bytes) - 1)];

		switch (harness_random(rng) % 5) {
		case 0:		/* replace */
			if (len)
				out[at] = b;
			break;
		case 1:		/* insert */
			if (len < MUTANT_MAX) {
				memmove(out + at + 1, out + at, len - at);
				out[at] = b;
				len++;
			}
			break;
		case 2:		/* delete */
			if (len) {
				memmove(out + at, out + at + 1, len - at - 1);
				len--;
			}
			break;
		case 3:		/* cut short */
			len = at;
			break;
		default:	/* repeat a piece */
			if (len && len + 16 <= MUTANT_MAX) {
				size_t n = len - at < 16 ? len - at : 16;

				memmove(out + at + n, out + at, len - at);
				len += n;
			}
			break;
		}
	}
	return len;
}

static void
test_admin_parse_invariants(void **state)
{
	static const char *const seeds[] = {
		"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n",
		"HEAD /healthz?x=1 HTTP/1.0\r\nAccept: */*\r\n\r\n",
		"POST /reload HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n"
		"Authorization: Bearer t0k\r\n\r\nbody",
		"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
		"\r\n0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n",
		"GET / HTTP/2.0\r\n\r\n",
		"DELETE /x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
	};
	unsigned rounds = HARNESS_SCALE(3000, 600);
	uint64_t rng = 0x5eed;
	char out[MUTANT_MAX];

	(void)state;
	for (size_t i = 0; i < SL_ARRAY_SIZE(seeds); i++)
		check_parse_invariants(seeds[i], strlen(seeds[i]), &rng);
	for (unsigned n = 0; n < rounds; n++) {
		const char *seed = seeds[n % SL_ARRAY_SIZE(seeds)];
		size_t len = mutate(seed, strlen(seed), out, &rng);

		check_parse_invariants(out, len, &rng);
	}
}

/* ---- the server, live ---- */

#define REPLY_MAX (1024 * 1024)
#define TEST_TOKEN "s3cret-Token_1"

struct admin_test {
	struct sluice *r;
	struct sl_admin *a;
	char addr[64];
	struct sl_admin_opts opts;
	_Atomic bool ready;
	_Atomic int reloads;
	/* What the next reload returns: set by the test's main task, read
	 * by the server's connection task. */
	_Atomic int reload_rc;
	const char *_Atomic reload_msg;
	/* For the concurrent test. */
	unsigned clients, per_client;
	_Atomic uint64_t ok;
};

struct reply {
	int status;			/* 0: no status line */
	char *raw;
	size_t len;
	const char *body;
	size_t body_len;
};

static bool
test_ready(void *arg)
{
	struct admin_test *t = arg;

	return atomic_load(&t->ready);
}

static int
test_reload(void *arg, char *err, size_t errlen)
{
	struct admin_test *t = arg;

	const char *msg = atomic_load(&t->reload_msg);

	atomic_fetch_add(&t->reloads, 1);
	if (msg)
		snprintf(err, errlen, "%s", msg);
	return atomic_load(&t->reload_rc);
}

static void
test_metrics(void *arg, FILE *out)
{
	struct admin_test *t = arg;

	fprintf(out, "# TYPE test_reloads gauge\ntest_reloads %d\n",
		atomic_load(&t->reloads));
}

/* A router with one route, one event fed, and the admin in front. */
static void
admin_up(struct admin_test *t)
{
	struct sluice_route route = {
		.name = "all",
		.match = SL_MATCH_ANY,
		.is_default = true,
		.workers = 1,
	};
	char err[256] = "";

	route.sink = sluice_sink_null();
	CHECK(route.sink != NULL);
	CHECK_ERR_EQ(sluice_create(NULL, &t->r), 0);
	CHECK_ERR_EQ(sluice_set_routes(t->r, &route, 1, err, sizeof(err)), 0);
	CHECK_INT_EQ(sluice_feed(t->r, NULL, "order.paid", 10, "o-1", 3, "v",
				 1),
		     1);

	if (!t->opts.addr)
		t->opts.addr = "127.0.0.1:0";
	t->opts.ready = test_ready;
	t->opts.ready_arg = t;
	t->opts.reload = test_reload;
	t->opts.reload_arg = t;
	t->opts.write_metrics = test_metrics;
	t->opts.metrics_arg = t;
	CHECK_ERR_EQ(sl_admin_start(t->r, &t->opts, &t->a), 0);
	if (t->a)
		CHECK_ERR_EQ(sl_admin_addr(t->a, t->addr, sizeof(t->addr)), 0);
}

static void
admin_down(struct admin_test *t)
{
	sl_admin_stop(t->a);
	CHECK_ERR_EQ(sluice_shutdown(t->r, true, UINT64_MAX), 0);
	sluice_destroy(t->r);
}

static const char *
reply_header_end(const struct reply *rp)
{
	return rp->body ? rp->body : rp->raw + rp->len;
}

/* Whether the head holds the line "@line" exactly. */
static bool
reply_has(const struct reply *rp, const char *line)
{
	char needle[256];
	const char *at;

	snprintf(needle, sizeof(needle), "\r\n%s\r\n", line);
	at = strstr(rp->raw, needle);
	return at && at < reply_header_end(rp);
}

static bool
reply_body_is(const struct reply *rp, const char *want)
{
	return rp->body && rp->body_len == strlen(want) &&
	       !memcmp(rp->body, want, rp->body_len);
}

static bool
reply_body_has(const struct reply *rp, const char *want)
{
	return rp->body && strstr(rp->body, want);
}

/* Read until the server closes; what arrived is NUL-terminated. */
static int
read_to_eof(struct sl_conn *c, char *buf, size_t cap, size_t *len)
{
	ssize_t n;

	*len = 0;
	while ((n = sl_conn_recv(NULL, c, buf + *len, cap - 1 - *len)) > 0)
		*len += (size_t)n;
	buf[*len] = '\0';
	return (int)n;
}

/*
 * Send @req over a new connection, read the reply to EOF and split it.
 * Checks what every reply must have: a status line, Connection: close,
 * and a Content-Length that matches the body (but for HEAD).
 */
static void
fetch_n(const char *addr, const char *req, size_t req_len, struct reply *rp)
{
	struct sl_conn *c = NULL;
	const char *cl, *end;
	bool head = !strncmp(req, "HEAD ", 5);
	int r;

	memset(rp, 0, sizeof(*rp));
	rp->raw = malloc(REPLY_MAX);
	CHECK(rp->raw != NULL);
	if (!rp->raw)
		return;
	rp->raw[0] = '\0';
	CHECK_ERR_EQ(sl_connect(NULL, addr, NULL, &c), 0);
	if (!c)
		return;
	CHECK_INT_EQ(sl_conn_send(NULL, c, req, req_len), req_len);
	r = read_to_eof(c, rp->raw, REPLY_MAX, &rp->len);
	CHECK_ERR_EQ(r, 0);
	sl_conn_close(c);

	if (sscanf(rp->raw, "HTTP/1.1 %3d ", &rp->status) != 1)
		rp->status = 0;
	end = strstr(rp->raw, "\r\n\r\n");
	CHECK(end != NULL);
	if (!end)
		return;
	rp->body = end + 4;
	rp->body_len = rp->len - (size_t)(rp->body - rp->raw);
	CHECK(reply_has(rp, "Connection: close"));
	cl = strstr(rp->raw, "\r\nContent-Length: ");
	CHECK(cl != NULL && cl < end);
	if (cl && !head)
		CHECK_UINT_EQ(strtoull(cl + 18, NULL, 10), rp->body_len);
	if (head)
		CHECK_UINT_EQ(rp->body_len, 0);
}

static void
fetch(const char *addr, const char *req, struct reply *rp)
{
	fetch_n(addr, req, strlen(req), rp);
}

static void
reply_free(struct reply *rp)
{
	free(rp->raw);
	rp->raw = NULL;
}

/* Fetch and check the status and, when given, the exact body. */
static void
expect(const char *addr, const char *req, int status, const char *body)
{
	struct reply rp;

	fetch(addr, req, &rp);
	if (rp.status != status)
		harness_fail(__FILE__, __LINE__,
			     "%.40s...: status %d, want %d; reply:\n%.300s",
			     req, rp.status, status, rp.raw ? rp.raw : "");
	if (body && !reply_body_is(&rp, body))
		harness_fail(__FILE__, __LINE__, "%.40s...: body \"%.200s\"",
			     req, rp.body ? rp.body : "(none)");
	reply_free(&rp);
}

/* The value of an unlabelled or fully labelled sample, or -1. */
static long long
metric_value(const struct reply *rp, const char *sample)
{
	char needle[256];
	const char *at;

	snprintf(needle, sizeof(needle), "\n%s ", sample);
	at = rp->body ? strstr(rp->body - 1, needle) : NULL;
	return at ? strtoll(at + strlen(needle), NULL, 10) : -1;
}

static long long
scrape(struct admin_test *t, const char *sample, const char *auth)
{
	char req[256];
	struct reply rp;
	long long v;

	snprintf(req, sizeof(req),
		 "GET /metrics HTTP/1.1\r\nHost: t\r\n%s\r\n", auth);
	fetch(t->addr, req, &rp);
	CHECK_INT_EQ(rp.status, 200);
	v = metric_value(&rp, sample);
	reply_free(&rp);
	return v;
}

#define GET(path) "GET " path " HTTP/1.1\r\nHost: t\r\n\r\n"

static void
endpoints_main(void *arg)
{
	struct admin_test *t = arg;
	struct reply rp;

	admin_up(t);
	if (!t->a)
		return;

	/* /healthz, with HEAD and a query string. */
	fetch(t->addr, GET("/healthz"), &rp);
	CHECK_INT_EQ(rp.status, 200);
	CHECK(reply_body_is(&rp, "ok\n"));
	CHECK(reply_has(&rp, "Content-Type: text/plain; charset=utf-8"));
	CHECK(reply_has(&rp, "Content-Length: 3"));
	reply_free(&rp);
	fetch(t->addr, "HEAD /healthz HTTP/1.1\r\nHost: t\r\n\r\n", &rp);
	CHECK_INT_EQ(rp.status, 200);
	CHECK(reply_has(&rp, "Content-Length: 3"));
	reply_free(&rp);
	expect(t->addr, GET("/healthz?verbose=1"), 200, "ok\n");
	expect(t->addr, "GET /healthz HTTP/1.0\r\n\r\n", 200, "ok\n");

	/* /readyz follows the callback. */
	atomic_store(&t->ready, false);
	expect(t->addr, GET("/readyz"), 503, "not ready\n");
	atomic_store(&t->ready, true);
	expect(t->addr, GET("/readyz"), 200, "ready\n");

	/* /reload: success, a bad configuration, an internal failure. */
	expect(t->addr, "POST /reload HTTP/1.1\r\nHost: t\r\n\r\n", 200,
	       "reloaded\n");
	CHECK_INT_EQ(atomic_load(&t->reloads), 1);
	atomic_store(&t->reload_rc, -EINVAL);
	atomic_store(&t->reload_msg, "route \"x\": empty pattern");
	expect(t->addr,
	       "POST /reload HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
	       400, "route \"x\": empty pattern\n");
	atomic_store(&t->reload_rc, -EIO);
	atomic_store(&t->reload_msg, NULL);
	fetch(t->addr, "POST /reload HTTP/1.1\r\nHost: t\r\n\r\n", &rp);
	CHECK_INT_EQ(rp.status, 500);
	CHECK(reply_body_has(&rp, sl_strerror(-EIO)));
	reply_free(&rp);
	atomic_store(&t->reload_rc, -ESHUTDOWN);
	atomic_store(&t->reload_msg, "shutting down");
	expect(t->addr, "POST /reload HTTP/1.1\r\nHost: t\r\n\r\n", 503,
	       "shutting down\n");
	CHECK_INT_EQ(atomic_load(&t->reloads), 4);

	/* Wrong methods name the right ones; unknown paths are 404. */
	fetch(t->addr, GET("/reload"), &rp);
	CHECK_INT_EQ(rp.status, 405);
	CHECK(reply_has(&rp, "Allow: POST"));
	reply_free(&rp);
	fetch(t->addr, "POST /metrics HTTP/1.1\r\nHost: t\r\n\r\n", &rp);
	CHECK_INT_EQ(rp.status, 405);
	CHECK(reply_has(&rp, "Allow: GET, HEAD"));
	reply_free(&rp);
	expect(t->addr, "DELETE /healthz HTTP/1.1\r\nHost: t\r\n\r\n", 405,
	       NULL);
	expect(t->addr, GET("/nope"), 404, "not found\n");
	expect(t->addr, GET("/metrics/"), 404, NULL);
	expect(t->addr, GET("/%6detrics"), 404, NULL);
	CHECK_INT_EQ(atomic_load(&t->reloads), 4);

	/* Requests the parser refuses get its status and reason. */
	expect(t->addr, "GARBAGE\r\n\r\n", 400, "malformed method\n");
	expect(t->addr, "GET / HTTP/2.0\r\n\r\n", 505, NULL);
	expect(t->addr,
	       "POST /reload HTTP/1.1\r\nHost: t\r\n"
	       "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	       501, NULL);
	CHECK_INT_EQ(atomic_load(&t->reloads), 4);

	/* The task dump lists the server's own tasks. */
	fetch(t->addr, GET("/debug/tasks"), &rp);
	CHECK_INT_EQ(rp.status, 200);
	CHECK(reply_body_has(&rp, "sluice task dump:"));
	CHECK(reply_body_has(&rp, "\"admin-accept\""));
	CHECK(reply_body_has(&rp, "\"admin-conn\""));
	reply_free(&rp);

	/* The router's metrics, then the server's own. */
	fetch(t->addr, GET("/metrics"), &rp);
	CHECK_INT_EQ(rp.status, 200);
	CHECK(reply_has(&rp, "Content-Type: text/plain; version=0.0.4; "
			     "charset=utf-8"));
	CHECK_INT_EQ(metric_value(&rp, "sluice_events_ingested_total"), 1);
	/* The caller's series come after the router's. */
	CHECK_INT_EQ(metric_value(&rp, "test_reloads"), 4);
	CHECK(strstr(rp.body, "\ntest_reloads ") >
	      strstr(rp.body, "\nsluice_events_ingested_total "));
	CHECK(reply_body_has(&rp,
			     "# TYPE sluice_admin_requests_total counter\n"));
	CHECK_INT_EQ(metric_value(&rp, "sluice_admin_requests_total{endpoint="
				       "\"/healthz\",status=\"200\"}"),
		     4);
	CHECK_INT_EQ(metric_value(&rp, "sluice_admin_requests_total{endpoint="
				       "\"/readyz\",status=\"503\"}"),
		     1);
	CHECK_INT_EQ(metric_value(&rp, "sluice_admin_requests_total{endpoint="
				       "\"/reload\",status=\"400\"}"),
		     1);
	CHECK_INT_EQ(metric_value(&rp, "sluice_admin_requests_total{endpoint="
				       "\"other\",status=\"404\"}"),
		     3);
	CHECK_INT_EQ(metric_value(&rp, "sluice_admin_rejects_total{status="
				       "\"400\"}"),
		     1);
	CHECK_INT_EQ(metric_value(&rp, "sluice_admin_rejects_total{status="
				       "\"505\"}"),
		     1);
	CHECK_INT_EQ(metric_value(&rp, "sluice_admin_rejects_total{status="
				       "\"501\"}"),
		     1);
	CHECK_INT_EQ(metric_value(&rp, "sluice_admin_requests_total{endpoint="
				       "\"/reload\",status=\"503\"}"),
		     1);
	CHECK_INT_EQ(metric_value(&rp, "sluice_admin_timeouts_total"), 0);
	CHECK_INT_EQ(metric_value(&rp, "sluice_admin_connections_total"), 21);
	reply_free(&rp);

	admin_down(t);
}

static void
test_router_admin_endpoints(void **state)
{
	struct admin_test t = {0};

	(void)state;
	harness_run(2, endpoints_main, &t);
	assert_int_equal(atomic_load(&t.reloads), 4);
}

/* Requests past a limit are answered, not cut off, even while the client
 * is still sending. */
static void
limits_main(void *arg)
{
	struct admin_test *t = arg;
	struct reply rp;
	char *s;

	admin_up(t);
	if (!t->a)
		return;

	/* Headers past max_request (512 here), sent in one go. */
	s = request_with(1, 40, 100);
	fetch(t->addr, s, &rp);
	CHECK_INT_EQ(rp.status, 431);
	CHECK(reply_body_is(&rp,
			    "request headers longer than the server takes\n"));
	reply_free(&rp);
	free(s);

	/* More header lines than the parser takes, within max_request. */
	s = request_with(1, SL_ADMIN_HEADERS_MAX, 12);
	CHECK(strlen(s) < 512);
	expect(t->addr, s, 431, "too many header lines\n");
	free(s);

	/* A request line past max_request but within the parser's limit. */
	s = request_with(1000, 0, 0);
	expect(t->addr, s, 414,
	       "request line longer than the server takes\n");
	free(s);
	/* Past the parser's own limit: still 414. */
	s = request_with(SL_ADMIN_TARGET_MAX + 100, 0, 0);
	expect(t->addr, s, 414, NULL);
	free(s);

	/* A body too large is refused before it is read; the body follows
	 * and is dropped. */
	s = malloc(8192);
	CHECK(s != NULL);
	if (s) {
		int n = sprintf(s, "POST /reload HTTP/1.1\r\nHost: t\r\n"
				   "Content-Length: 5000\r\n\r\n");

		memset(s + n, 'b', 5000);
		fetch_n(t->addr, s, (size_t)n + 5000, &rp);
		CHECK_INT_EQ(rp.status, 413);
		reply_free(&rp);
		free(s);
	}
	/* A body the parser takes but the buffer cannot hold. */
	expect(t->addr,
	       "POST /reload HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n"
	       "\r\n",
	       413, "request body longer than the server takes\n");
	CHECK_INT_EQ(atomic_load(&t->reloads), 0);

	CHECK_INT_EQ(scrape(t, "sluice_admin_rejects_total{status=\"431\"}",
			    ""),
		     2);
	CHECK_INT_EQ(scrape(t, "sluice_admin_rejects_total{status=\"414\"}",
			    ""),
		     2);
	CHECK_INT_EQ(scrape(t, "sluice_admin_rejects_total{status=\"413\"}",
			    ""),
		     2);
	admin_down(t);
}

static void
test_router_admin_limits(void **state)
{
	struct admin_test t = {.opts = {.max_request = 512}};

	(void)state;
	harness_run(2, limits_main, &t);
}

#define AUTH(v) "Authorization: " v "\r\n"

static void
token_main(void *arg)
{
	struct admin_test *t = arg;
	static const char *const wrong[] = {
		"",
		AUTH("Bearer wrong"),
		AUTH("Bearer s3cret-Token_"),		/* a prefix */
		AUTH("Bearer s3cret-Token_12"),		/* longer */
		AUTH("Bearer S3cret-Token_1"),
		AUTH("Bearer"),
		AUTH("Bearer "),
		AUTH("BearerS3cret-Token_1"),
		AUTH("Basic czNjcmV0LVRva2VuXzE="),
		AUTH(TEST_TOKEN),
	};
	char req[256];
	struct reply rp;

	admin_up(t);
	if (!t->a)
		return;

	/* Every wrong credential, on a served path and an unknown one. */
	for (size_t i = 0; i < SL_ARRAY_SIZE(wrong); i++) {
		snprintf(req, sizeof(req),
			 "GET /metrics HTTP/1.1\r\nHost: t\r\n%s\r\n",
			 wrong[i]);
		fetch(t->addr, req, &rp);
		if (rp.status != 401)
			harness_fail(__FILE__, __LINE__, "credential %zu: %d",
				     i, rp.status);
		CHECK(reply_has(&rp,
				"WWW-Authenticate: Bearer realm=\"sluice\""));
		reply_free(&rp);
	}
	expect(t->addr, GET("/nope"), 401, NULL);
	expect(t->addr, GET("/readyz"), 401, NULL);
	expect(t->addr, GET("/debug/tasks"), 401, NULL);
	expect(t->addr, "POST /reload HTTP/1.1\r\nHost: t\r\n\r\n", 401,
	       NULL);
	CHECK_INT_EQ(atomic_load(&t->reloads), 0);

	/* Probes need no token. */
	expect(t->addr, GET("/healthz"), 200, "ok\n");

	/* The token, with the scheme in any case and extra spaces. */
	atomic_store(&t->ready, true);
	expect(t->addr,
	       "GET /readyz HTTP/1.1\r\nHost: t\r\n"
	       AUTH("Bearer " TEST_TOKEN) "\r\n",
	       200, "ready\n");
	expect(t->addr,
	       "GET /readyz HTTP/1.1\r\nHost: t\r\n"
	       AUTH("bEARER   " TEST_TOKEN "  ") "\r\n",
	       200, "ready\n");
	expect(t->addr,
	       "POST /reload HTTP/1.1\r\nHost: t\r\n"
	       AUTH("Bearer " TEST_TOKEN) "\r\n",
	       200, "reloaded\n");
	expect(t->addr,
	       "GET /nope HTTP/1.1\r\nHost: t\r\n"
	       AUTH("Bearer " TEST_TOKEN) "\r\n",
	       404, NULL);
	CHECK_INT_EQ(atomic_load(&t->reloads), 1);

	CHECK_INT_EQ(scrape(t,
			    "sluice_admin_requests_total{endpoint="
			    "\"/metrics\",status=\"401\"}",
			    AUTH("Bearer " TEST_TOKEN)),
		     (long long)SL_ARRAY_SIZE(wrong));
	admin_down(t);
}

static void
test_router_admin_token(void **state)
{
	struct admin_test t = {.opts = {.token = TEST_TOKEN}};

	(void)state;
	harness_run(2, token_main, &t);
}

/*
 * A client that sends half a request and stops is dropped at the
 * deadline, without an answer, and others are served meanwhile; a client
 * that sends its request a byte at a time within the deadline is served.
 */
#define SLOW_TIMEOUT_NS (1 * SL_NSEC_PER_SEC)

static void
slow_main(void *arg)
{
	struct admin_test *t = arg;
	static const char half[] = "GET /healthz HTTP/1.1\r\nHo";
	static const char whole[] = GET("/healthz");
	struct sl_conn *slow = NULL, *trickle = NULL;
	char buf[512];
	uint64_t start;
	size_t len;

	admin_up(t);
	if (!t->a)
		return;

	start = sl_now_ns();
	CHECK_ERR_EQ(sl_connect(NULL, t->addr, NULL, &slow), 0);
	if (!slow)
		return;
	CHECK_INT_EQ(sl_conn_send(NULL, slow, half, sizeof(half) - 1),
		     sizeof(half) - 1);

	/* Served while the slow client holds its connection. */
	expect(t->addr, GET("/healthz"), 200, "ok\n");
	CHECK_ERR_EQ(sl_connect(NULL, t->addr, NULL, &trickle), 0);
	for (size_t i = 0; trickle && i < sizeof(whole) - 1; i++) {
		CHECK_INT_EQ(sl_conn_send(NULL, trickle, &whole[i], 1), 1);
		sl_task_yield();
	}
	if (trickle) {
		CHECK_ERR_EQ(read_to_eof(trickle, buf, sizeof(buf), &len), 0);
		CHECK(!strncmp(buf, "HTTP/1.1 200 OK\r\n", 17));
		sl_conn_close(trickle);
	}
	CHECK_INT_EQ(scrape(t, "sluice_admin_timeouts_total", ""), 0);

	/* The slow client gets nothing but the end of the stream, and not
	 * before its deadline. */
	CHECK_ERR_EQ(read_to_eof(slow, buf, sizeof(buf), &len), 0);
	CHECK_UINT_EQ(len, 0);
	CHECK_UINT_GE(sl_now_ns() - start, SLOW_TIMEOUT_NS);
	sl_conn_close(slow);
	CHECK_INT_EQ(scrape(t, "sluice_admin_timeouts_total", ""), 1);
	CHECK_INT_EQ(scrape(t, "sluice_admin_requests_total{endpoint="
			       "\"/healthz\",status=\"200\"}",
			    ""),
		     2);
	admin_down(t);
}

static void
test_router_admin_slow_client(void **state)
{
	struct admin_test t = {.opts = {.timeout_ns = SLOW_TIMEOUT_NS}};

	(void)state;
	harness_run(2, slow_main, &t);
}

/* Stop cancels a request in flight rather than waiting out its deadline. */
static void
stop_main(void *arg)
{
	struct admin_test *t = arg;
	struct sl_conn *slow = NULL, *late = NULL;
	char buf[64];
	uint64_t start;
	size_t len;

	admin_up(t);
	if (!t->a)
		return;
	CHECK_ERR_EQ(sl_connect(NULL, t->addr, NULL, &slow), 0);
	if (!slow)
		return;
	CHECK_INT_EQ(sl_conn_send(NULL, slow, "GET / HT", 8), 8);
	/* Accepts are in order: once this is served, so was the slow
	 * client's connection accepted. */
	expect(t->addr, GET("/healthz"), 200, "ok\n");

	start = sl_now_ns();
	sl_admin_stop(t->a);
	t->a = NULL;
	/* The timeout is a minute: stopping must not have waited for it. */
	CHECK(sl_now_ns() - start < 30 * SL_NSEC_PER_SEC);
	CHECK_ERR_EQ(read_to_eof(slow, buf, sizeof(buf), &len), 0);
	CHECK_UINT_EQ(len, 0);
	sl_conn_close(slow);

	/* Nothing listens any more. */
	CHECK_ERR_EQ(sl_connect(NULL, t->addr, NULL, &late), -ECONNREFUSED);
	if (late)
		sl_conn_close(late);
	admin_down(t);
}

static void
test_router_admin_stop(void **state)
{
	struct admin_test t = {.opts = {.timeout_ns = 60 * SL_NSEC_PER_SEC}};

	(void)state;
	harness_run(2, stop_main, &t);
}

static void
start_errors_main(void *arg)
{
	struct admin_test *t = arg;
	char long_token[SL_ADMIN_TOKEN_MAX + 2];
	struct sl_admin *a = NULL;
	char tiny[4];

	admin_up(t);
	if (!t->a)
		return;

	CHECK_ERR_EQ(sl_admin_start(t->r, &(struct sl_admin_opts){
						  .addr = "not an address"},
				    &a),
		     -EINVAL);
	CHECK_ERR_EQ(sl_admin_start(t->r, &(struct sl_admin_opts){
						  .addr = "127.0.0.1:0",
						  .token = ""},
				    &a),
		     -EINVAL);
	CHECK_ERR_EQ(sl_admin_start(t->r, &(struct sl_admin_opts){
						  .addr = "127.0.0.1:0",
						  .token = "two words"},
				    &a),
		     -EINVAL);
	memset(long_token, 'k', sizeof(long_token) - 1);
	long_token[sizeof(long_token) - 1] = '\0';
	CHECK_ERR_EQ(sl_admin_start(t->r, &(struct sl_admin_opts){
						  .addr = "127.0.0.1:0",
						  .token = long_token},
				    &a),
		     -EINVAL);
	CHECK_ERR_EQ(sl_admin_start(t->r, &(struct sl_admin_opts){
						  .addr = "127.0.0.1:0",
						  .max_request = 100},
				    &a),
		     -EINVAL);
	CHECK_ERR_EQ(sl_admin_start(t->r, &(struct sl_admin_opts){
						  .addr = "127.0.0.1:0",
						  .max_request = 1 << 20},
				    &a),
		     -EINVAL);
	CHECK_ERR_EQ(sl_admin_start(NULL, NULL, &a), -EINVAL);
	/* The port the first server holds. */
	CHECK_ERR_EQ(sl_admin_start(t->r, &(struct sl_admin_opts){
						  .addr = t->addr},
				    &a),
		     -EADDRINUSE);
	CHECK(a == NULL);

	/* A token of the longest length works. */
	long_token[SL_ADMIN_TOKEN_MAX] = '\0';
	CHECK_ERR_EQ(sl_admin_start(t->r, &(struct sl_admin_opts){
						  .addr = "127.0.0.1:0",
						  .token = long_token},
				    &a),
		     0);
	if (a) {
		char addr[64], req[512];

		CHECK_ERR_EQ(sl_admin_addr(a, addr, sizeof(addr)), 0);
		snprintf(req, sizeof(req),
			 "GET /readyz HTTP/1.1\r\nHost: t\r\n"
			 "Authorization: Bearer %s\r\n\r\n",
			 long_token);
		expect(addr, req, 200, "ready\n");
		CHECK_ERR_EQ(sl_admin_addr(a, tiny, sizeof(tiny)), -ENOSPC);
		CHECK_INT_EQ(tiny[0], '\0');
		sl_admin_stop(a);
	}
	admin_down(t);
}

static void
test_router_admin_start_errors(void **state)
{
	struct admin_test t = {0};

	(void)state;
	harness_run(2, start_errors_main, &t);
}

/* Many clients at once on both processors, scrapes among them. */
struct client {
	struct admin_test *t;
	unsigned id;
};

static void
client_task(void *arg)
{
	struct client *cl = arg;
	struct admin_test *t = cl->t;

	for (unsigned i = 0; i < t->per_client; i++) {
		struct reply rp;

		fetch(t->addr, (i + cl->id) % 5 ? GET("/healthz")
						 : GET("/metrics"),
		      &rp);
		if (rp.status == 200)
			atomic_fetch_add(&t->ok, 1);
		reply_free(&rp);
	}
}

static void
concurrent_main(void *arg)
{
	struct admin_test *t = arg;
	struct client cl[16];
	struct sl_task *tasks[16];
	uint64_t healthz = 0;

	admin_up(t);
	if (!t->a)
		return;
	for (unsigned i = 0; i < t->clients; i++) {
		cl[i] = (struct client){.t = t, .id = i};
		tasks[i] = harness_spawn(client_task, &cl[i], (int)(i % 2));
	}
	for (unsigned i = 0; i < t->clients; i++)
		harness_join(tasks[i]);
	for (unsigned i = 0; i < t->clients; i++)
		for (unsigned k = 0; k < t->per_client; k++)
			healthz += (k + i) % 5 != 0;
	CHECK_INT_EQ(scrape(t, "sluice_admin_requests_total{endpoint="
			       "\"/healthz\",status=\"200\"}",
			    ""),
		     healthz);
	admin_down(t);
}

static void
test_router_admin_concurrent(void **state)
{
	struct admin_test t = {.clients = 16,
			       .per_client = HARNESS_SCALE(50, 10)};

	(void)state;
	harness_run(2, concurrent_main, &t);
	assert_int_equal(atomic_load(&t.ok), t.clients * t.per_client);
}

/*
 * POST /reload with a real configuration file: the reload callback is what
 * sluiced's is, sluiced_config_read() and sluiced_config_install().  A
 * good file replaces the routes; a file that does not parse, fails a
 * check, names a sink that cannot be opened, or is gone, is refused with
 * its reason, and the routes that run stay and keep taking events.
 */
struct reload_test {
	struct sluice *r;
	struct sl_admin *a;
	char addr[64];
	char dir[64];
	char path[96];
	_Atomic int calls;
};

static int
config_reload(void *arg, char *err, size_t errlen)
{
	struct reload_test *t = arg;
	struct sluiced_config c;
	int rc;

	atomic_fetch_add(&t->calls, 1);
	rc = sluiced_config_read(t->path, NULL, 0, &c, err, errlen);
	if (!rc) {
		rc = sluiced_config_install(t->r, &c, err, errlen);
		sluiced_config_free(&c);
	}
	return rc == 0 || rc == -ENOMEM ? rc : -EINVAL;
}

static void
write_config(struct reload_test *t, const char *route, const char *file)
{
	FILE *f = fopen(t->path, "w");

	CHECK(f != NULL);
	if (!f)
		return;
	fprintf(f,
		"inputs: []\n"
		"routes:\n"
		"  - name: %s\n"
		"    default: true\n"
		"    sink: {type: file, path: \"%s\", sync: false}\n",
		route, file);
	CHECK_INT_EQ(fclose(f), 0);
}

#define POST_RELOAD "POST /reload HTTP/1.1\r\nHost: t\r\n\r\n"

static void
feed(struct reload_test *t, const char *key)
{
	CHECK_INT_EQ(sluice_feed(t->r, NULL, "k", 1, key, strlen(key), "v", 1),
		     1);
}

/* The sample's value in a scrape, or -1 when the series is absent. */
static long long
scrape_plain(const char *addr, const char *sample)
{
	struct reply rp;
	long long v;

	fetch(addr, GET("/metrics"), &rp);
	CHECK_INT_EQ(rp.status, 200);
	v = metric_value(&rp, sample);
	reply_free(&rp);
	return v;
}

static void
reload_main(void *arg)
{
	struct reload_test *t = arg;
	char err[512] = "", file[160], want[512];
	struct reply rp;

	/* Start as sluiced does: read, install, then the endpoint. */
	snprintf(file, sizeof(file), "%s/a.log", t->dir);
	write_config(t, "a", file);
	CHECK_ERR_EQ(sluice_create(NULL, &t->r), 0);
	CHECK_ERR_EQ(config_reload(t, err, sizeof(err)), 0);
	CHECK_ERR_EQ(sl_admin_start(t->r, &(struct sl_admin_opts){
						  .addr = "127.0.0.1:0",
						  .reload = config_reload,
						  .reload_arg = t},
				    &t->a),
		     0);
	if (!t->a)
		return;
	CHECK_ERR_EQ(sl_admin_addr(t->a, t->addr, sizeof(t->addr)), 0);
	feed(t, "k1");

	/* A good file: route b replaces route a, which drains first. */
	snprintf(file, sizeof(file), "%s/b.log", t->dir);
	write_config(t, "b", file);
	expect(t->addr, POST_RELOAD, 200, "reloaded\n");
	CHECK_INT_EQ(scrape_plain(t->addr,
				  "sluice_route_adds_total{route=\"a\"}"),
		     -1);
	CHECK_INT_EQ(scrape_plain(t->addr,
				  "sluice_route_adds_total{route=\"b\"}"),
		     0);
	feed(t, "k2");

	/* A value the loader refuses: its file, line and key are named. */
	{
		FILE *f = fopen(t->path, "w");

		CHECK(f != NULL);
		if (f) {
			fputs("routes:\n  - name: c\n    default: true\n"
			      "    sink: {type: nul}\n",
			      f);
			fclose(f);
		}
	}
	snprintf(want, sizeof(want),
		 "%s:4: routes[0].sink.type: unknown sink type \"nul\" "
		 "(null, stdout, file, tcp, plugin)\n",
		 t->path);
	expect(t->addr, POST_RELOAD, 400, want);

	/* A file sink that cannot be opened: refused when it is built. */
	write_config(t, "d", "/nonexistent-sluice-dir/d.log");
	fetch(t->addr, POST_RELOAD, &rp);
	CHECK_INT_EQ(rp.status, 400);
	CHECK(reply_body_has(&rp, "routes[0].sink: cannot open file "
				  "\"/nonexistent-sluice-dir/d.log\""));
	reply_free(&rp);

	/* No file at all. */
	CHECK_ERR_EQ(unlink(t->path), 0);
	fetch(t->addr, POST_RELOAD, &rp);
	CHECK_INT_EQ(rp.status, 400);
	CHECK(reply_body_has(&rp, "cannot read: No such file or directory"));
	reply_free(&rp);

	/* Route b still runs and takes events. */
	CHECK_INT_EQ(scrape_plain(t->addr,
				  "sluice_route_adds_total{route=\"b\"}"),
		     1);
	CHECK_INT_EQ(scrape_plain(t->addr,
				  "sluice_route_adds_total{route=\"c\"}"),
		     -1);
	CHECK_INT_EQ(scrape_plain(t->addr,
				  "sluice_route_adds_total{route=\"d\"}"),
		     -1);
	feed(t, "k3");
	CHECK_INT_EQ(atomic_load(&t->calls), 5);

	sl_admin_stop(t->a);
	CHECK_ERR_EQ(sluice_shutdown(t->r, true, UINT64_MAX), 0);
	sluice_destroy(t->r);
}

/* The whole file at @path, or "" if there is none. */
static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, 4096);
	size_t n = 0;

	assert_non_null(buf);
	if (f) {
		n = fread(buf, 1, 4095, f);
		fclose(f);
	}
	buf[n] = '\0';
	return buf;
}

static void
test_router_admin_reload_config(void **state)
{
	struct reload_test t = {0};
	char path[160], *a, *b;

	(void)state;
	snprintf(t.dir, sizeof(t.dir), "/tmp/sluice-admin-XXXXXX");
	assert_non_null(mkdtemp(t.dir));
	snprintf(t.path, sizeof(t.path), "%s/sluiced.yaml", t.dir);
	harness_run(2, reload_main, &t);

	/* k1 went to route a; k2 and k3 to route b, before and after the
	 * refused reloads. */
	snprintf(path, sizeof(path), "%s/a.log", t.dir);
	a = slurp(path);
	unlink(path);
	snprintf(path, sizeof(path), "%s/b.log", t.dir);
	b = slurp(path);
	unlink(path);
	unlink(t.path);
	rmdir(t.dir);
	assert_string_equal(a, "k k1 v\n");
	assert_string_equal(b, "k k2 v\nk k3 v\n");
	free(a);
	free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_admin_parse_get),
		cmocka_unit_test(test_admin_parse_methods),
		cmocka_unit_test(test_admin_parse_body_and_pipelining),
		cmocka_unit_test(test_admin_parse_every_prefix),
		cmocka_unit_test(test_admin_parse_errors),
		cmocka_unit_test(test_admin_parse_limits),
		cmocka_unit_test(test_admin_parse_invariants),
		cmocka_unit_test(test_router_admin_endpoints),
		cmocka_unit_test(test_router_admin_limits),
		cmocka_unit_test(test_router_admin_token),
		cmocka_unit_test(test_router_admin_slow_client),
		cmocka_unit_test(test_router_admin_stop),
		cmocka_unit_test(test_router_admin_start_errors),
		cmocka_unit_test(test_router_admin_concurrent),
		cmocka_unit_test(test_router_admin_reload_config),
	};

	harness_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
