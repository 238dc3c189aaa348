/* SPDX-License-Identifier: MIT */
/*
 * The admin endpoint: a small HTTP/1.1 server for metrics scrapes, health
 * and readiness probes, task dumps and reloads, written on io/ so that it
 * runs in tasks like the rest of the router and needs no HTTP library.
 *
 *	GET  /metrics       Prometheus text: sluice_write_metrics(), the
 *	                    caller's own series, and sluice_admin_*
 *	GET  /debug/tasks   one line per live task (sl_runtime_dump_tasks)
 *	GET  /healthz       200 "ok" while the process serves requests
 *	GET  /readyz        200 when the ready callback says so, else 503
 *	POST /reload        calls the reload callback: 200, or 4xx/5xx and why
 *
 * It answers one request per connection and closes it.  docs/admin.md
 * describes the endpoints, the status codes, the token, the limits and
 * every metric.
 *
 * The request parser, sl_admin_parse_request(), is a pure function with
 * no tie to the server, so that tests and fuzz targets drive it directly.
 */
#ifndef SLUICE_ROUTER_ADMIN_H
#define SLUICE_ROUTER_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/base.h"

struct sluice;
struct sl_admin;

/* ---- the request parser ---- */

/* The parser's limits, with the status a request past each one gets. */
#define SL_ADMIN_METHOD_MAX 16		/* 501: no method served is longer */
#define SL_ADMIN_TARGET_MAX 2048	/* 414 */
#define SL_ADMIN_FIELD_MAX 4096		/* one header line with CRLF: 431 */
#define SL_ADMIN_HEADERS_MAX 32		/* header lines: 431 */
#define SL_ADMIN_BODY_MAX 1024		/* Content-Length: 413 */

enum sl_admin_method {
	SL_ADMIN_METHOD_OTHER,	/* a well-formed method none of the below */
	SL_ADMIN_METHOD_GET,
	SL_ADMIN_METHOD_HEAD,
	SL_ADMIN_METHOD_POST,
};

/* One header line: views into the parsed buffer, not NUL-terminated. */
struct sl_admin_header {
	const char *name;
	size_t name_len;
	const char *value;	/* without the whitespace around it */
	size_t value_len;
};

struct sl_admin_request {
	enum sl_admin_method method;
	const char *method_name;
	size_t method_len;
	const char *target;	/* the request target as sent */
	size_t target_len;
	size_t path_len;	/* of @target, up to any '?' */
	unsigned version_minor;	/* HTTP/1.<version_minor> */

	struct sl_admin_header headers[SL_ADMIN_HEADERS_MAX];
	unsigned nheaders;
	/* The headers the server acts on; NULL when absent. */
	const struct sl_admin_header *host, *authorization;

	/* Once the head is complete, @body_len and @size are known, even
	 * while the body is still arriving (@body is then NULL). */
	const char *body;	/* Content-Length bytes after the head */
	size_t body_len;
	size_t size;		/* head and body: what the request uses */

	/*
	 * After an error: the status to answer and a short reason.  While
	 * the request is incomplete: the status to answer should no more
	 * bytes fit (414 in the request line, 431 in the headers, 413 in the
	 * body), so a server with a full buffer can say which part was long.
	 */
	int status;
	const char *why;
};

/**
 * sl_admin_parse_request() - parse one HTTP/1.x request from the start of
 * @buf.
 * @buf: @len bytes received so far (NULL when @len is 0); the views in
 *	@out point into it.
 * @len: any length; bytes after the request are not looked at.
 * @out: filled in; a struct of about 1.2 KiB, kept by the caller.  Always
 *	written, whatever the result.
 *
 * Strict by design: "METHOD SP origin-form-target SP HTTP/1.x CRLF", then
 * "Name: value CRLF" lines, then CRLF.  Bare LF, whitespace before a
 * colon, folded lines, control bytes, a request without Host in HTTP/1.1,
 * repeated Host, Authorization or Content-Length, and a Content-Length
 * that is not plain digits are all refused (400).  Transfer-Encoding is
 * refused: 501 alone, 400 next to a Content-Length (a smuggling attempt).
 *
 * Pure: no allocation, no global state, no I/O, nothing but libc string
 * functions; safe from any thread, in or out of a task.  A fuzz target
 * may compile router/admin.c on its own and link the router's, io's and
 * core's libraries for the server's symbols, which it never calls.
 *
 * What holds for every input, and what a fuzz target can check:
 *  1. The result is > 0, 0 or -EBADMSG, and a positive result is at most
 *     @len.  On > 0: @out->status is 0, @out->size equals the result,
 *     @out->body is non-NULL and @out->body_len <= SL_ADMIN_BODY_MAX, and
 *     every view (method, target, header names and values, body) lies
 *     inside the first @out->size bytes of @buf; path_len <= target_len;
 *     nheaders <= SL_ADMIN_HEADERS_MAX; host and authorization are NULL
 *     or point into @out->headers.
 *  2. On -EBADMSG: @out->why is a non-empty string and @out->status is
 *     one of 400, 413, 414, 431, 501, 505.
 *  3. Growing the input never changes a verdict: once @buf[0..len) gives
 *     > 0 or -EBADMSG, any longer buffer with the same first @len bytes
 *     gives the same result (and the same status).  So an error is
 *     reported as soon as the bytes that show it are in @buf, and an
 *     answer never waits for bytes that cannot make the request valid.
 *  4. On 0 (incomplete), @out->status is 414, 431 or 413 (or 400 before
 *     the method ends), the status to answer should the buffer be full.
 *
 * Return: the request's size in bytes once it is complete; 0 when more
 * bytes are needed; -EBADMSG when it can never become valid, with
 * @out->status and @out->why set.
 */
int sl_admin_parse_request(const char *buf, size_t len,
			   struct sl_admin_request *out);

/* ---- the server ---- */

#define SL_ADMIN_ADDR_DEFAULT "127.0.0.1:7401"
#define SL_ADMIN_TIMEOUT_DEFAULT (5 * SL_NSEC_PER_SEC)
#define SL_ADMIN_MAX_REQUEST_DEFAULT (8 * 1024)
/* Bounds for max_request: room for a request line, and at most what the
 * parser's own limits can use. */
#define SL_ADMIN_MAX_REQUEST_MIN 256
#define SL_ADMIN_MAX_REQUEST_MAX (64 * 1024)
#define SL_ADMIN_TOKEN_MAX 256
/* Connections open at once; more are closed at accept and counted. */
#define SL_ADMIN_MAX_CONNS 64

struct sl_admin_opts {
	const char *addr;	/* NULL: SL_ADMIN_ADDR_DEFAULT; port 0 picks one */
	/* From accept to a complete request; slower clients are dropped
	 * and counted.  Also bounds sending the response (0: default). */
	uint64_t timeout_ns;
	size_t max_request;	/* bytes of head and body (0: default) */
	/* When set, every endpoint but /healthz wants the header
	 * "Authorization: Bearer <token>" (1 to SL_ADMIN_TOKEN_MAX visible
	 * ASCII bytes); NULL: no token.  Copied at start. */
	const char *token;
	/*
	 * POST /reload calls this, one call at a time, from a task.  It
	 * returns 0, or a negative errno value with a message in @err:
	 * -EINVAL, the new configuration was refused (answered 400);
	 * -ESHUTDOWN, the process is stopping (503); anything else, 500.
	 * NULL: /reload answers 501.
	 */
	int (*reload)(void *arg, char *err, size_t errlen);
	void *reload_arg;
	/* GET /readyz calls this from a task; NULL: always ready. */
	bool (*ready)(void *arg);
	void *ready_arg;
	/* GET /metrics calls this from a task, after the router's metrics,
	 * for the caller's own series (Prometheus text); NULL: none. */
	void (*write_metrics)(void *arg, FILE *out);
	void *metrics_arg;
};

/**
 * sl_admin_start() - listen on @o->addr and serve the admin endpoints for
 * router @r.
 * @o: options, or NULL for the defaults; strings are copied.
 * @out: receives the server.
 *
 * Call from a task.  @r must outlive the server: stop the server before
 * sluice_destroy().
 *
 * Return: 0; -EINVAL for an address that does not parse, a timeout,
 * max_request or token out of bounds (an empty token too); -EADDRINUSE
 * and other bind errors; -EPERM outside a task; -ENOMEM.
 */
int sl_admin_start(struct sluice *r, const struct sl_admin_opts *o,
		   struct sl_admin **out);

/**
 * sl_admin_addr() - the bound address as "127.0.0.1:7401" (the port
 * chosen when the address asked for port 0).
 * Return: 0, or -ENOSPC when @len is too small (@buf is then "").
 */
int sl_admin_addr(struct sl_admin *a, char *buf, size_t len);

/**
 * sl_admin_stop() - stop accepting, cancel requests in flight (a reload
 * callback already running is waited for), wait for every task of the
 * server, and free it.  Call from a task; NULL does nothing.
 */
void sl_admin_stop(struct sl_admin *a);

#endif /* SLUICE_ROUTER_ADMIN_H */
