/* SPDX-License-Identifier: MIT */
/*
 * The admin endpoint: a strict, minimal HTTP/1.1 server.
 *
 * Scope.  The clients are a Prometheus scraper, a load balancer's probes,
 * curl in an operator's shell and a deployment script.  None of them needs
 * keep-alive, pipelining, chunked bodies or request bodies at all, so the
 * server answers one request per connection, with "Connection: close",
 * and refuses what it does not need instead of half-supporting it.  A
 * parser that accepts less has fewer ways to disagree with a proxy in
 * front of it about where a request ends.  Keep-alive was left out on
 * purpose: a scrape every few seconds costs one accept, and without it a
 * connection has one deadline and one answer, so a slow or idle client
 * can never hold a connection slot past timeout_ns.
 *
 * Parsing.  sl_admin_parse_request() re-reads the request from its first
 * byte each time more bytes arrive.  That keeps it a pure function (easy
 * to test and fuzz) at the price of rescanning; the server bounds the
 * price by re-parsing a header section only when a new line has arrived,
 * and the buffer is max_request bytes at most.  Every check runs on the
 * bytes seen so far, so a request that cannot become valid is answered at
 * once rather than when the client gives up.
 *
 * Tasks.  One acceptor task, and one task per connection that reads the
 * request, answers, and closes.  A connection gets timeout_ns from accept
 * to a complete request (a read deadline on the connection), and again
 * timeout_ns to take the response.  Stopping cancels the server's context:
 * the acceptor and every reader or writer parked on it return at once.
 *
 * Closing.  After the response the server shuts its sending side and
 * reads, briefly and up to a bound, whatever the client still sends: a
 * socket closed with unread bytes sends a reset, and a reset can make
 * the client's kernel throw away the response it has not read yet.  That
 * matters for the error answers (413, 431), sent before the client has
 * finished sending.
 *
 * Authentication.  With a token configured, every endpoint except /healthz
 * (which probes call without credentials) wants "Authorization: Bearer
 * <token>".  The comparison takes the same time whatever the presented
 * value shares with the token, length included (admin_token_equal()).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <mimalloc.h>

#include "core/context.h"
#include "core/runtime.h"
#include "core/sync.h"
#include "core/task.h"
#include "io/net.h"
#include "router/admin.h"
#include "router/router_internal.h"

/* ---- the request parser ---- */

/* The scan's position and what it learned that the request does not hold. */
struct http_scan {
	const char *buf, *p, *end;
	struct sl_admin_request *req;
	bool has_length;
	size_t length;
};

static int
http_fail(struct sl_admin_request *req, int status, const char *why)
{
	req->status = status;
	req->why = why;
	return -EBADMSG;
}

/* tchar of RFC 9110, section 5.6.2: the bytes of methods and field names. */
static bool
http_is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Bytes of a field value: visible ASCII, obs-text, space and tab. */
static bool
http_is_value_byte(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static enum sl_admin_method
http_method_kind(const char *m, size_t len)
{
	if (len == 3 && !memcmp(m, "GET", 3))
		return SL_ADMIN_METHOD_GET;
	if (len == 4 && !memcmp(m, "HEAD", 4))
		return SL_ADMIN_METHOD_HEAD;
	if (len == 4 && !memcmp(m, "POST", 4))
		return SL_ADMIN_METHOD_POST;
	return SL_ADMIN_METHOD_OTHER;
}

/*
 * Each step below returns 1 when its part is complete (the scan is past
 * it), 0 when the bytes ran out first, or -EBADMSG.
 */
static int
http_method(struct http_scan *s)
{
	struct sl_admin_request *req = s->req;
	const char *start = s->p;

	req->status = 400;
	while (s->p < s->end && http_is_tchar((unsigned char)*s->p)) {
		if (s->p - start == SL_ADMIN_METHOD_MAX)
			return http_fail(req, 501, "method not implemented");
		s->p++;
	}
	if (s->p == s->end)
		return 0;
	if (*s->p != ' ' || s->p == start)
		return http_fail(req, 400, "malformed method");

	req->method_name = start;
	req->method_len = (size_t)(s->p - start);
	req->method = http_method_kind(start, req->method_len);
	s->p++;
	return 1;
}

/* Only the origin form ("/path?query") names anything this server has. */
static int
http_target(struct http_scan *s)
{
	struct sl_admin_request *req = s->req;
	const char *start = s->p, *q;

	req->status = 414;
	while (s->p < s->end && *s->p != ' ') {
		unsigned char c = (unsigned char)*s->p;

		if (s->p - start == SL_ADMIN_TARGET_MAX)
			return http_fail(req, 414, "request target too long");
		if (c <= 0x20 || c >= 0x7f || c == '#')
			return http_fail(req, 400, "malformed request target");
		if (s->p == start && c != '/')
			return http_fail(req, 400,
					 "request target is not a path");
		s->p++;
	}
	if (s->p == s->end)
		return 0;
	if (s->p == start)
		return http_fail(req, 400, "empty request target");

	req->target = start;
	req->target_len = (size_t)(s->p - start);
	q = memchr(start, '?', req->target_len);
	req->path_len = q ? (size_t)(q - start) : req->target_len;
	s->p++;
	return 1;
}

/* "HTTP/" DIGIT "." DIGIT CRLF, checked byte by byte as bytes arrive. */
static int
http_version(struct http_scan *s)
{
	static const char pattern[] = "HTTP/#.#\r\n";	/* '#': a digit */
	const size_t want = sizeof(pattern) - 1;
	struct sl_admin_request *req = s->req;
	size_t avail = (size_t)(s->end - s->p);
	size_t n = avail < want ? avail : want;

	/* Still in the request line: should no more bytes fit, it was the
	 * line that was too long. */
	req->status = 414;
	for (size_t i = 0; i < n; i++) {
		char c = s->p[i];
		bool ok = pattern[i] == '#' ? c >= '0' && c <= '9'
					    : c == pattern[i];

		if (!ok)
			return http_fail(req, 400,
					 i < 8 ? "malformed HTTP version"
					       : "request line must end in CRLF");
		if (i == 5 && c != '1')
			return http_fail(req, 505,
					 "HTTP version not supported");
	}
	if (n < want)
		return 0;

	req->version_minor = (unsigned)(s->p[7] - '0');
	s->p += want;
	return 1;
}

static bool
http_name_is(const struct sl_admin_header *h, const char *name)
{
	size_t len = strlen(name);

	return h->name_len == len && !strncasecmp(h->name, name, len);
}

static int
http_content_length(struct http_scan *s, const struct sl_admin_header *h)
{
	struct sl_admin_request *req = s->req;
	size_t v = 0;
	bool large = false;

	if (s->has_length)
		return http_fail(req, 400, "repeated Content-Length");
	if (!h->value_len)
		return http_fail(req, 400, "empty Content-Length");
	for (size_t i = 0; i < h->value_len; i++) {
		char c = h->value[i];

		if (c < '0' || c > '9')
			return http_fail(req, 400, "malformed Content-Length");
		/* Stop adding once past the limit, so nothing overflows;
		 * the remaining bytes must still be digits. */
		if (!large)
			v = v * 10 + (size_t)(c - '0');
		large = large || v > SL_ADMIN_BODY_MAX;
	}
	if (large)
		return http_fail(req, 413, "request body too large");
	s->has_length = true;
	s->length = v;
	return 1;
}

/* Act on the headers whose meaning the parser must know. */
static int
http_header_meaning(struct http_scan *s, const struct sl_admin_header *h)
{
	struct sl_admin_request *req = s->req;

	if (http_name_is(h, "content-length"))
		return http_content_length(s, h);
	if (http_name_is(h, "transfer-encoding"))
		return s->has_length
			       ? http_fail(req, 400,
					   "Transfer-Encoding with "
					   "Content-Length")
			       : http_fail(req, 501,
					   "Transfer-Encoding not supported");
	if (http_name_is(h, "host")) {
		if (req->host)
			return http_fail(req, 400, "repeated Host");
		req->host = h;
	} else if (http_name_is(h, "authorization")) {
		if (req->authorization)
			return http_fail(req, 400, "repeated Authorization");
		req->authorization = h;
	}
	return 1;
}

/* The line's length so far is checked wherever a loop stops, so a long
 * line is refused whether or not its end has arrived. */
static bool
http_line_too_long(const struct http_scan *s, const char *line)
{
	return (size_t)(s->p - line) > SL_ADMIN_FIELD_MAX - 2;
}

/* One "Name: value" CRLF line. */
static int
http_header(struct http_scan *s, struct sl_admin_header *h)
{
	struct sl_admin_request *req = s->req;
	const char *line = s->p, *v, *v_end;

	while (s->p < s->end && http_is_tchar((unsigned char)*s->p))
		s->p++;
	if (http_line_too_long(s, line))
		return http_fail(req, 431, "header line too long");
	if (s->p == s->end)
		return 0;
	if (*s->p != ':')
		return http_fail(req, 400,
				 *s->p == ' ' || *s->p == '\t'
					 ? "whitespace before a colon"
					 : "malformed header name");
	if (s->p == line)
		return http_fail(req, 400, "empty header name");
	h->name = line;
	h->name_len = (size_t)(s->p - line);
	s->p++;

	v = s->p;
	while (s->p < s->end && http_is_value_byte((unsigned char)*s->p))
		s->p++;
	if (http_line_too_long(s, line))
		return http_fail(req, 431, "header line too long");
	if (s->p == s->end)
		return 0;
	if (*s->p != '\r')
		return http_fail(req, 400,
				 *s->p == '\n' ? "header line must end in CRLF"
					       : "control byte in a header");
	if (s->end - s->p < 2)
		return 0;
	if (s->p[1] != '\n')
		return http_fail(req, 400, "header line must end in CRLF");

	v_end = s->p;
	while (v < v_end && (*v == ' ' || *v == '\t'))
		v++;
	while (v_end > v && (v_end[-1] == ' ' || v_end[-1] == '\t'))
		v_end--;
	h->value = v;
	h->value_len = (size_t)(v_end - v);
	s->p += 2;
	return 1;
}

static int
http_headers(struct http_scan *s)
{
	struct sl_admin_request *req = s->req;
	int r;

	req->status = 431;
	for (;;) {
		if (s->p == s->end)
			return 0;
		if (*s->p == '\r') {
			if (s->end - s->p < 2)
				return 0;
			if (s->p[1] != '\n')
				return http_fail(req, 400,
						 "header section must end in "
						 "CRLF");
			s->p += 2;
			break;
		}
		if (*s->p == ' ' || *s->p == '\t')
			return http_fail(req, 400,
					 "folded or indented header line");
		if (req->nheaders == SL_ADMIN_HEADERS_MAX)
			return http_fail(req, 431, "too many header lines");

		r = http_header(s, &req->headers[req->nheaders]);
		if (r <= 0)
			return r;
		req->nheaders++;
		r = http_header_meaning(s, &req->headers[req->nheaders - 1]);
		if (r < 0)
			return r;
	}

	/* RFC 9112, section 3.2: a 1.1 request without Host is refused. */
	if (req->version_minor >= 1 && !req->host)
		return http_fail(req, 400, "HTTP/1.1 request without Host");
	return 1;
}

int
sl_admin_parse_request(const char *buf, size_t len,
		       struct sl_admin_request *out)
{
	struct http_scan s = {.buf = buf, .p = buf, .req = out};
	size_t head;
	int r;

	memset(out, 0, sizeof(*out));
	out->status = 400;	/* still in the method */
	if (!len)
		return 0; /* @buf may be NULL then: no pointer arithmetic */
	s.end = buf + len;
	if ((r = http_method(&s)) <= 0 || (r = http_target(&s)) <= 0 ||
	    (r = http_version(&s)) <= 0 || (r = http_headers(&s)) <= 0)
		return r;

	head = (size_t)(s.p - buf);
	out->body_len = s.length;
	out->size = head + s.length;
	if (len - head < s.length) {
		out->status = 413;
		return 0;
	}
	out->body = s.p;
	out->status = 0;
	/* At most one request line, SL_ADMIN_HEADERS_MAX fields and the
	 * body: far below INT_MAX. */
	return (int)out->size;
}

/* ---- the server ---- */

/* After the response: how long and how much to read before closing. */
#define ADMIN_LINGER_NS (1 * SL_NSEC_PER_SEC)
#define ADMIN_LINGER_BYTES (64 * 1024)

/* Every status the server answers, for the counters. */
static const int admin_statuses[] = {200, 400, 401, 404, 405, 413,
				     414, 431, 500, 501, 503, 505};
#define ADMIN_NSTATUS SL_ARRAY_SIZE(admin_statuses)

enum admin_endpoint {
	ADMIN_METRICS,
	ADMIN_TASKS,
	ADMIN_HEALTHZ,
	ADMIN_READYZ,
	ADMIN_RELOAD,
	ADMIN_OTHER,		/* any other path: 404 */
	ADMIN_NENDPOINTS,
};

struct sl_admin {
	struct sluice *r;
	struct sl_admin_opts opts;	/* addr points at the copy below */
	char *addr;
	/* Zero-padded, so the comparison reads the same bytes whatever
	 * the token's length. */
	char token[SL_ADMIN_TOKEN_MAX];
	size_t token_len;		/* 0: no token required */
	struct sl_listener *l;
	struct sl_context *ctx;		/* cancelled by sl_admin_stop() */
	struct sl_waitgroup wg;		/* the acceptor and each connection */
	struct sl_mutex reload_mu;	/* one reload at a time */

	_Atomic uint64_t requests[ADMIN_NENDPOINTS][ADMIN_NSTATUS];
	_Atomic uint64_t rejects[ADMIN_NSTATUS];
	_Atomic uint64_t timeouts;
};

struct admin_conn {
	struct sl_admin *a;
	struct sl_conn *c;
	uint64_t accepted_ns;
	char *buf;			/* opts.max_request bytes */
};

/* What to send back: a text or an owned body, and the headers it needs. */
struct admin_reply {
	int status;
	const char *type;
	const char *allow;		/* 405: the methods the path takes */
	bool challenge;			/* 401: WWW-Authenticate */
	const char *body;
	size_t len;
	char *owned;			/* from open_memstream(), freed after */
	char text[640];			/* a reason: a reload's can be long */
};

struct admin_route {
	const char *path;
	const char *allow;
	bool post;			/* POST only; else GET and HEAD */
	bool open;			/* served without the token */
	void (*serve)(struct sl_admin *a, struct admin_reply *rep);
};

static const char *
admin_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Internal Server Error";
	}
}

static size_t
admin_status_index(int status)
{
	for (size_t i = 0; i < ADMIN_NSTATUS; i++)
		if (admin_statuses[i] == status)
			return i;
	return 8; /* 500: every status sent is in the table */
}

static void
admin_reply_text(struct admin_reply *rep, int status, const char *text)
{
	int n = snprintf(rep->text, sizeof(rep->text), "%s\n", text);

	rep->status = status;
	rep->type = "text/plain; charset=utf-8";
	rep->body = rep->text;
	rep->len = n < 0 ? 0
			 : (size_t)n < sizeof(rep->text) ? (size_t)n
							 : sizeof(rep->text) - 1;
}

/* ---- endpoints ---- */

static void
admin_write_metrics(struct sl_admin *a, FILE *out)
{
	static const char *const names[ADMIN_NENDPOINTS] = {
		"/metrics", "/debug/tasks", "/healthz", "/readyz", "/reload",
		"other",
	};
	struct sl_listener_stats ls;

	fputs("# HELP sluice_admin_requests_total Admin requests answered, "
	      "by endpoint and status.\n"
	      "# TYPE sluice_admin_requests_total counter\n", out);
	for (size_t e = 0; e < ADMIN_NENDPOINTS; e++)
		for (size_t s = 0; s < ADMIN_NSTATUS; s++) {
			uint64_t v = atomic_load_explicit(
				&a->requests[e][s], memory_order_relaxed);

			if (v)
				fprintf(out,
					"sluice_admin_requests_total{endpoint="
					"\"%s\",status=\"%d\"} %llu\n",
					names[e], admin_statuses[s],
					(unsigned long long)v);
		}

	fputs("# HELP sluice_admin_rejects_total Admin requests refused as "
	      "malformed or past a limit, by status.\n"
	      "# TYPE sluice_admin_rejects_total counter\n", out);
	for (size_t s = 0; s < ADMIN_NSTATUS; s++) {
		uint64_t v = atomic_load_explicit(&a->rejects[s],
						  memory_order_relaxed);

		if (v)
			fprintf(out,
				"sluice_admin_rejects_total{status=\"%d\"} "
				"%llu\n",
				admin_statuses[s], (unsigned long long)v);
	}

	sl_listener_stats_get(a->l, &ls);
	fprintf(out,
		"# HELP sluice_admin_timeouts_total Admin connections dropped "
		"for not sending a complete request in time.\n"
		"# TYPE sluice_admin_timeouts_total counter\n"
		"sluice_admin_timeouts_total %llu\n"
		"# HELP sluice_admin_connections_total Admin connections "
		"accepted.\n"
		"# TYPE sluice_admin_connections_total counter\n"
		"sluice_admin_connections_total %llu\n"
		"# HELP sluice_admin_connections_refused_total Admin "
		"connections closed at once: too many were open.\n"
		"# TYPE sluice_admin_connections_refused_total counter\n"
		"sluice_admin_connections_refused_total %llu\n",
		(unsigned long long)atomic_load(&a->timeouts),
		(unsigned long long)ls.accepted,
		(unsigned long long)ls.refused);
}

/* Run @write into a memory stream and make its output the body. */
static void
admin_reply_stream(struct sl_admin *a, struct admin_reply *rep,
		   const char *type,
		   void (*write)(struct sl_admin *a, FILE *out))
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	bool bad;

	if (!f) {
		admin_reply_text(rep, 500, "out of memory");
		return;
	}
	write(a, f);
	bad = ferror(f) != 0;
	if (fclose(f) || bad) {
		free(buf);
		admin_reply_text(rep, 500, "out of memory");
		return;
	}
	rep->status = 200;
	rep->type = type;
	rep->owned = buf;
	rep->body = buf;
	rep->len = len;
}

static void
admin_metrics_body(struct sl_admin *a, FILE *out)
{
	sluice_write_metrics(a->r, out);
	if (a->opts.write_metrics)
		a->opts.write_metrics(a->opts.metrics_arg, out);
	admin_write_metrics(a, out);
}

static void
admin_serve_metrics(struct sl_admin *a, struct admin_reply *rep)
{
	admin_reply_stream(a, rep, "text/plain; version=0.0.4; charset=utf-8",
			   admin_metrics_body);
}

static void
admin_tasks_body(struct sl_admin *a, FILE *out)
{
	(void)a;
	sl_runtime_dump_tasks(out);
}

static void
admin_serve_tasks(struct sl_admin *a, struct admin_reply *rep)
{
	admin_reply_stream(a, rep, "text/plain; charset=utf-8",
			   admin_tasks_body);
}

static void
admin_serve_healthz(struct sl_admin *a, struct admin_reply *rep)
{
	(void)a;
	admin_reply_text(rep, 200, "ok");
}

static void
admin_serve_readyz(struct sl_admin *a, struct admin_reply *rep)
{
	if (!a->opts.ready || a->opts.ready(a->opts.ready_arg))
		admin_reply_text(rep, 200, "ready");
	else
		admin_reply_text(rep, 503, "not ready");
}

/* The status a failed reload is answered with (see sl_admin_opts). */
static int
admin_reload_status(int rc)
{
	switch (rc) {
	case -EINVAL:
		return 400;
	case -ESHUTDOWN:
		return 503;
	default:
		return 500;
	}
}

/* The caller logs the outcome: it knows what was reloaded and from where. */
static void
admin_serve_reload(struct sl_admin *a, struct admin_reply *rep)
{
	char err[600] = "";
	int rc;

	if (!a->opts.reload) {
		admin_reply_text(rep, 501, "no reload handler is configured");
		return;
	}
	if (sl_mutex_lock_ctx(a->ctx, &a->reload_mu)) {
		admin_reply_text(rep, 503, "shutting down");
		return;
	}
	rc = a->opts.reload(a->opts.reload_arg, err, sizeof(err));
	sl_mutex_unlock(&a->reload_mu);
	err[sizeof(err) - 1] = '\0';

	if (rc >= 0)
		admin_reply_text(rep, 200, "reloaded");
	else
		admin_reply_text(rep, admin_reload_status(rc),
				 err[0] ? err : sl_strerror(rc));
}

static const struct admin_route admin_routes[ADMIN_NENDPOINTS] = {
	[ADMIN_METRICS] = {"/metrics", "GET, HEAD", false, false,
			   admin_serve_metrics},
	[ADMIN_TASKS] = {"/debug/tasks", "GET, HEAD", false, false,
			 admin_serve_tasks},
	[ADMIN_HEALTHZ] = {"/healthz", "GET, HEAD", false, true,
			   admin_serve_healthz},
	[ADMIN_READYZ] = {"/readyz", "GET, HEAD", false, false,
			  admin_serve_readyz},
	[ADMIN_RELOAD] = {"/reload", "POST", true, false, admin_serve_reload},
	[ADMIN_OTHER] = {NULL, NULL, false, false, NULL},
};

static enum admin_endpoint
admin_find(const struct sl_admin_request *req)
{
	for (int e = 0; e < ADMIN_OTHER; e++) {
		const char *p = admin_routes[e].path;

		if (strlen(p) == req->path_len &&
		    !memcmp(p, req->target, req->path_len))
			return (enum admin_endpoint)e;
	}
	return ADMIN_OTHER;
}

/*
 * Compare a presented token with the configured one in time that depends
 * on neither: the loop always covers the whole zero-padded token buffer,
 * and a difference in length or in any byte only sets bits in @diff.
 * Branches depend on @got_len alone, which the client already knows.
 */
static bool
admin_token_equal(const struct sl_admin *a, const char *got, size_t got_len)
{
	size_t diff = got_len ^ a->token_len;

	for (size_t i = 0; i < SL_ADMIN_TOKEN_MAX; i++) {
		unsigned char g = i < got_len ? (unsigned char)got[i] : 0;

		diff |= (size_t)(g ^ (unsigned char)a->token[i]);
	}
	return diff == 0;
}

/* "Bearer" (any case), one or more spaces, the token. */
static bool
admin_authorized(const struct sl_admin *a, const struct sl_admin_request *req)
{
	const struct sl_admin_header *h = req->authorization;
	size_t i = 6;

	if (!h || h->value_len <= i || strncasecmp(h->value, "Bearer", i) ||
	    h->value[i] != ' ')
		return false;
	while (i < h->value_len && h->value[i] == ' ')
		i++;
	return admin_token_equal(a, h->value + i, h->value_len - i);
}

static void
admin_dispatch(struct sl_admin *a, const struct sl_admin_request *req,
	       struct admin_reply *rep)
{
	enum admin_endpoint e = admin_find(req);
	const struct admin_route *rt = &admin_routes[e];
	bool method_ok = rt->post ? req->method == SL_ADMIN_METHOD_POST
				  : req->method == SL_ADMIN_METHOD_GET ||
					    req->method == SL_ADMIN_METHOD_HEAD;

	/* Authentication first, so a client without the token learns
	 * nothing, not even which paths exist. */
	if (a->token_len && !rt->open && !admin_authorized(a, req)) {
		admin_reply_text(rep, 401, "a valid bearer token is required");
		rep->challenge = true;
	} else if (e == ADMIN_OTHER) {
		admin_reply_text(rep, 404, "not found");
	} else if (!method_ok) {
		admin_reply_text(rep, 405, "method not allowed");
		rep->allow = rt->allow;
	} else {
		rt->serve(a, rep);
	}
	atomic_fetch_add_explicit(&a->requests[e][admin_status_index(
					  rep->status)],
				  1, memory_order_relaxed);
}

/* ---- connections ---- */

static const char *
admin_full_reason(int status)
{
	switch (status) {
	case 414: return "request line longer than the server takes";
	case 413: return "request body longer than the server takes";
	default: return "request headers longer than the server takes";
	}
}

/*
 * Read until sl_admin_parse_request() has a whole request or a verdict.
 * Return: as sl_admin_parse_request() (never 0), or the connection's
 * error (-ETIMEDOUT at the read deadline, -ECANCELED on stop, -EPIPE if
 * the client hung up).
 */
static int
admin_read(struct admin_conn *ac, struct sl_admin_request *req)
{
	struct sl_admin *a = ac->a;
	size_t len = 0, cap = a->opts.max_request;

	memset(req, 0, sizeof(*req));
	for (;;) {
		struct sl_iobuf b;
		size_t take;
		bool fresh_line;
		int r = sl_conn_peek(a->ctx, ac->c, &b);

		if (r <= 0)
			return r ? r : -EPIPE;
		take = b.len < cap - len ? b.len : cap - len;
		memcpy(ac->buf + len, b.data, take);
		sl_conn_consume(ac->c, take);
		fresh_line = memchr(ac->buf + len, '\n', take) != NULL;
		len += take;

		/* Within the header section, nothing can change until a
		 * line ends (see the essay on rescanning). */
		if (req->status == 431 && !fresh_line && len < cap)
			continue;
		r = sl_admin_parse_request(ac->buf, len, req);
		if (r != 0)
			return r;
		if (len == cap || req->size > cap) {
			req->why = admin_full_reason(req->status);
			return -EBADMSG;
		}
	}
}

static int
admin_send(struct admin_conn *ac, const struct admin_reply *rep,
	   bool head_only)
{
	char head[512];
	struct iovec iov[2];
	int n;

	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 %d %s\r\n"
		     "Content-Type: %s\r\n"
		     "Content-Length: %zu\r\n"
		     "Cache-Control: no-store\r\n"
		     "Connection: close\r\n"
		     "%s%s%s"
		     "%s"
		     "\r\n",
		     rep->status, admin_reason(rep->status), rep->type,
		     rep->len, rep->allow ? "Allow: " : "",
		     rep->allow ? rep->allow : "", rep->allow ? "\r\n" : "",
		     rep->challenge
			     ? "WWW-Authenticate: Bearer realm=\"sluice\"\r\n"
			     : "");
	if (n < 0 || (size_t)n >= sizeof(head))
		return -EOVERFLOW;

	iov[0] = (struct iovec){.iov_base = head, .iov_len = (size_t)n};
	iov[1] = (struct iovec){.iov_base = (void *)(uintptr_t)rep->body,
				.iov_len = rep->len};
	n = (int)sl_conn_sendv(ac->a->ctx, ac->c, iov,
			       head_only || !rep->len ? 1 : 2);
	return n < 0 ? n : 0;
}

/* Half-close, then drop what the client still sends (see the essay). */
static void
admin_linger(struct admin_conn *ac)
{
	struct sl_admin *a = ac->a;
	uint64_t wait = a->opts.timeout_ns < ADMIN_LINGER_NS
				? a->opts.timeout_ns
				: ADMIN_LINGER_NS;
	size_t dropped = 0;

	if (sl_conn_shutdown(a->ctx, ac->c, SHUT_WR))
		return;
	sl_conn_set_deadline(ac->c, sl_now_ns() + wait, SL_NO_DEADLINE);
	while (dropped < ADMIN_LINGER_BYTES) {
		struct sl_iobuf b;

		if (sl_conn_peek(a->ctx, ac->c, &b) <= 0)
			break;
		dropped += b.len;
		sl_conn_consume(ac->c, b.len);
	}
}

static void
admin_conn_task(void *arg)
{
	struct admin_conn *ac = arg;
	struct sl_admin *a = ac->a;
	struct sl_admin_request req;
	struct admin_reply rep;
	uint64_t deadline;
	int n;

	memset(&rep, 0, sizeof(rep));
	ac->buf = mi_malloc(a->opts.max_request);
	if (!ac->buf)
		goto out;
	sl_conn_set_deadline(ac->c, ac->accepted_ns + a->opts.timeout_ns,
			     SL_NO_DEADLINE);
	n = admin_read(ac, &req);
	if (n == -ETIMEDOUT) {
		atomic_fetch_add_explicit(&a->timeouts, 1,
					  memory_order_relaxed);
		goto out;
	}
	if (n == -EBADMSG) {
		atomic_fetch_add_explicit(
			&a->rejects[admin_status_index(req.status)], 1,
			memory_order_relaxed);
		admin_reply_text(&rep, req.status, req.why);
	} else if (n < 0) {
		goto out; /* hung up, reset, or the server is stopping */
	} else {
		admin_dispatch(a, &req, &rep);
	}

	deadline = sl_now_ns() + a->opts.timeout_ns;
	sl_conn_set_deadline(ac->c, deadline, deadline);
	if (!admin_send(ac, &rep, n > 0 && req.method == SL_ADMIN_METHOD_HEAD))
		admin_linger(ac);
out:
	free(rep.owned);
	mi_free(ac->buf);
	sl_conn_close(ac->c);
	mi_free(ac);
	sl_waitgroup_done(&a->wg);
}

static void
admin_accept_task(void *arg)
{
	struct sl_admin *a = arg;

	for (;;) {
		struct admin_conn *ac;
		struct sl_conn *c;
		int r = sl_listener_accept(a->ctx, a->l, &c);

		if (r && sl_context_err(a->ctx))
			break;
		if (r) {
			sl__router_log("warn",
				       "msg=\"admin accept failed\" err=\"%s\"",
				       sl_strerror(r));
			continue;
		}
		ac = mi_zalloc(sizeof(*ac));
		if (!ac) {
			sl_conn_close(c);
			continue;
		}
		ac->a = a;
		ac->c = c;
		ac->accepted_ns = sl_now_ns();
		sl_waitgroup_add(&a->wg, 1);
		if (sl_task_spawn(admin_conn_task, ac,
				  &(struct sl_task_opts){.name = "admin-conn",
							 .proc = -1},
				  NULL)) {
			sl_waitgroup_done(&a->wg);
			sl_conn_close(c);
			mi_free(ac);
		}
	}
	sl_waitgroup_done(&a->wg);
}

/* ---- life cycle ---- */

/* Fill in defaults and check bounds; the token is checked by the caller. */
static int
admin_opts_check(struct sl_admin_opts *o)
{
	if (!o->addr)
		o->addr = SL_ADMIN_ADDR_DEFAULT;
	if (!o->timeout_ns)
		o->timeout_ns = SL_ADMIN_TIMEOUT_DEFAULT;
	if (!o->max_request)
		o->max_request = SL_ADMIN_MAX_REQUEST_DEFAULT;
	if (o->max_request < SL_ADMIN_MAX_REQUEST_MIN ||
	    o->max_request > SL_ADMIN_MAX_REQUEST_MAX ||
	    o->timeout_ns > UINT64_MAX / 4)
		return -EINVAL;
	if (o->token) {
		size_t len = strlen(o->token);

		if (!len || len > SL_ADMIN_TOKEN_MAX)
			return -EINVAL;
		/* Visible ASCII only: what a header value can carry intact. */
		for (size_t i = 0; i < len; i++)
			if (o->token[i] <= 0x20 || o->token[i] >= 0x7f)
				return -EINVAL;
	}
	return 0;
}

static void
admin_free(struct sl_admin *a)
{
	if (a->ctx)
		sl_context_release(a->ctx);
	mi_free(a->addr);
	/* The token is a secret: leave no copy in freed memory. */
	explicit_bzero(a->token, sizeof(a->token));
	mi_free(a);
}

int
sl_admin_start(struct sluice *r, const struct sl_admin_opts *o,
	       struct sl_admin **out)
{
	struct sl_admin_opts opts = {0};
	struct sl_listen_opts lo;
	struct sl_admin *a;
	int rc;

	if (!r || !out)
		return -EINVAL;
	if (o)
		opts = *o;
	rc = admin_opts_check(&opts);
	if (rc)
		return rc;
	a = mi_zalloc(sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->r = r;
	a->opts = opts;
	a->addr = mi_strdup(opts.addr);
	a->opts.addr = a->addr;
	a->opts.token = NULL;
	if (opts.token) {
		a->token_len = strlen(opts.token);
		memcpy(a->token, opts.token, a->token_len);
	}
	sl_waitgroup_init(&a->wg);
	sl_mutex_init(&a->reload_mu);
	rc = a->addr ? sl_context_with_cancel(sl_context_background(), &a->ctx)
		     : -ENOMEM;
	if (rc)
		goto fail;

	sl_listen_opts_default(&lo);
	lo.per_proc = false;	/* a trickle of requests: one socket does */
	lo.backlog = SL_ADMIN_MAX_CONNS;
	lo.max_conns = SL_ADMIN_MAX_CONNS;
	rc = sl_listen(a->addr, &lo, &a->l);
	if (rc)
		goto fail;
	sl_waitgroup_add(&a->wg, 1);
	rc = sl_task_spawn(admin_accept_task, a,
			   &(struct sl_task_opts){.name = "admin-accept",
						  .proc = -1},
			   NULL);
	if (rc) {
		sl_waitgroup_done(&a->wg);
		sl_listener_close(a->l);
		goto fail;
	}

	*out = a;
	return 0;
fail:
	admin_free(a);
	return rc;
}

int
sl_admin_addr(struct sl_admin *a, char *buf, size_t len)
{
	struct sl_addr sa;
	char tmp[128];

	sl_listener_addr(a->l, &sa);
	sl_addr_format(&sa, tmp, sizeof(tmp));
	if (strlen(tmp) >= len) {
		if (len)
			buf[0] = '\0';
		return -ENOSPC;
	}
	memcpy(buf, tmp, strlen(tmp) + 1);
	return 0;
}

void
sl_admin_stop(struct sl_admin *a)
{
	if (!a)
		return;

	/* Wake the acceptor and every connection parked on the context,
	 * and wait until they have all returned: only then is nobody left
	 * to touch the listener. */
	sl_context_cancel(a->ctx);
	sl_waitgroup_wait(&a->wg);
	sl_listener_close(a->l);
	admin_free(a);
}
