/* SPDX-License-Identifier: MIT */
/*
 * A small blocking HTTP/1.1 client for sluice-top: one GET per
 * connection, a deadline over the whole exchange, plain TCP only.
 *
 * It sends "Connection: close" and reads the answer to its end: the
 * Content-Length, the last chunk of a chunked body, or the peer closing
 * when the answer gives neither.  The parsing steps are pure functions,
 * exposed for the tests.
 *
 * One thread per call; calls share nothing.
 */
#ifndef SLUICE_TOP_HTTP_H
#define SLUICE_TOP_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest body accepted, and the largest head. */
#define TOP_HTTP_BODY_MAX (64u << 20)
#define TOP_HTTP_HEAD_MAX (64u << 10)
/* Room for an error message, with its NUL. */
#define TOP_HTTP_ERR_MAX 320
/* A bearer token: 1 to this many visible ASCII bytes. */
#define TOP_HTTP_TOKEN_MAX 256

struct top_http_addr {
	char host[256]; /* without brackets */
	char port[6];
	bool ipv6; /* written as [host]:port */
};

/**
 * top_http_parse_addr() - split "host:port" or "[v6 address]:port".
 * An "http://" prefix and a trailing "/" are accepted, as they are what
 * a user copies from a browser; "https://" is refused.
 * @why: on error, a static string saying what is wrong.
 * Return: 0; -EINVAL.
 */
int top_http_parse_addr(const char *addr, struct top_http_addr *out,
			const char **why);

struct top_http_head {
	int status;
	unsigned version_minor;
	bool has_length;
	uint64_t content_length;
	bool chunked;
};

/**
 * top_http_parse_head() - parse a response's status line and headers.
 * Lines may end in CRLF or LF.  Content-Length must be digits (repeats
 * must agree); a Transfer-Encoding other than chunked is refused.
 * @why: on -EPROTO, a static string.
 * Return: the head's size with its blank line; 0 when incomplete;
 * -EPROTO when malformed.
 */
int top_http_parse_head(const char *buf, size_t len, struct top_http_head *h,
			const char **why);

/**
 * top_http_dechunk() - decode a chunked body.
 * @out: room for @len bytes, or NULL to check completeness only.
 * @out_len: the decoded size, when complete.
 * Return: the bytes of @buf the body used (trailers included) once it is
 * complete; 0 when more bytes are needed; -EPROTO when malformed.
 */
long top_http_dechunk(const char *buf, size_t len, char *out, size_t *out_len);

struct top_http_request {
	const char *addr;    /* top_http_parse_addr()'s forms */
	const char *path;    /* "/metrics" */
	const char *token;   /* sent as a bearer token; NULL: none */
	uint64_t timeout_ns; /* from the call to the last byte */
	/* When this descriptor turns readable (a signalfd, say) the call
	 * gives up with -ECANCELED; -1 for none. */
	int cancel_fd;
};

struct top_http_response {
	int status; /* 0 until a head arrived */
	char *body; /* NUL-terminated; NULL until a 200 arrived */
	size_t body_len;
	char err[TOP_HTTP_ERR_MAX];	/* on failure, what happened */
};

/**
 * top_http_get() - GET @rq->path from @rq->addr.
 * @rs: filled in; free with top_http_response_fini() whatever the result.
 *
 * Return: 0 when the answer is a 200 with its body in @rs; otherwise a
 * negative errno value with @rs->err set: -EINVAL (bad address or
 * token), -EADDRNOTAVAIL (the host does not resolve), a connect error
 * such as -ECONNREFUSED, -ETIMEDOUT, -ECONNRESET, -EPROTO (not an HTTP
 * answer), -EMSGSIZE (past the limits above), -EACCES (401 or 403: a
 * token is wanted, or was refused), -EIO (another status, with its
 * reason in @rs->err), -ECANCELED, -ENOMEM.
 */
int top_http_get(const struct top_http_request *rq,
		 struct top_http_response *rs);
void top_http_response_fini(struct top_http_response *rs);

#endif /* SLUICE_TOP_HTTP_H */
