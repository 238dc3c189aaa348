/* SPDX-License-Identifier: MIT */
/*
 * The HTTP client: parse the address, resolve it, connect without
 * blocking past the deadline, send one request, and read until the
 * answer is complete.  Every wait is a poll() on the socket and the
 * cancel descriptor with what is left of the deadline, so one timeout
 * bounds the whole call and a signal ends it at once.
 */
#include "tools/top/http.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/base.h"

/* ---- addresses ---- */

static bool
all_digits(const char *s, size_t len)
{
	if (!len)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static int
addr_port(const char *p, size_t len, struct top_http_addr *out,
	  const char **why)
{
	unsigned long port;

	if (!all_digits(p, len) || len > 5) {
		*why = "the port must be a number from 1 to 65535";
		return -EINVAL;
	}
	port = strtoul(p, NULL, 10);
	if (port < 1 || port > 65535) {
		*why = "the port must be a number from 1 to 65535";
		return -EINVAL;
	}
	snprintf(out->port, sizeof(out->port), "%lu", port);
	return 0;
}

int
top_http_parse_addr(const char *addr, struct top_http_addr *out,
		    const char **why)
{
	const char *host, *colon, *end = addr + strlen(addr);
	size_t host_len;

	memset(out, 0, sizeof(*out));
	if (!strncasecmp(addr, "https://", 8)) {
		*why = "https is not supported: reach a remote endpoint "
		       "through a TLS proxy or an SSH tunnel";
		return -EINVAL;
	}
	if (!strncasecmp(addr, "http://", 7))
		addr += 7;
	else if (strstr(addr, "://")) {
		*why = "only http:// addresses are supported";
		return -EINVAL;
	}
	if (end > addr && end[-1] == '/')
		end--;
	if (memchr(addr, '/', (size_t)(end - addr))) {
		*why = "give host:port, without a path";
		return -EINVAL;
	}

	if (*addr == '[') {
		const char *close = memchr(addr, ']', (size_t)(end - addr));

		if (!close || close + 1 == end || close[1] != ':') {
			*why = "an IPv6 address is written [address]:port";
			return -EINVAL;
		}
		host = addr + 1;
		host_len = (size_t)(close - host);
		colon = close + 1;
		out->ipv6 = true;
	} else {
		colon = memrchr(addr, ':', (size_t)(end - addr));
		if (!colon) {
			*why = "no port: write host:port";
			return -EINVAL;
		}
		host = addr;
		host_len = (size_t)(colon - addr);
		if (memchr(host, ':', host_len)) {
			*why = "an IPv6 address is written [address]:port";
			return -EINVAL;
		}
	}
	if (!host_len || host_len >= sizeof(out->host)) {
		*why = host_len ? "the host name is too long" : "no host";
		return -EINVAL;
	}
	memcpy(out->host, host, host_len);
	out->host[host_len] = '\0';
	return addr_port(colon + 1, (size_t)(end - colon - 1), out, why);
}

/* ---- the answer's head ---- */

/* The next line from @*pos: its length without CR LF, or -1 when no LF
 * has arrived yet. */
static long
next_line(const char *buf, size_t len, size_t *pos, const char **line)
{
	const char *nl = memchr(buf + *pos, '\n', len - *pos);
	size_t n;

	if (!nl)
		return -1;
	*line = buf + *pos;
	n = (size_t)(nl - *line);
	*pos += n + 1;
	if (n && (*line)[n - 1] == '\r')
		n--;
	return (long)n;
}

static bool
is_token_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || strchr("!#$%&'*+-.^_`|~", c);
}

static int
parse_status_line(const char *l, size_t n, struct top_http_head *h,
		  const char **why)
{
	if (n < 12 || memcmp(l, "HTTP/1.", 7) || l[7] < '0' || l[7] > '9' ||
	    l[8] != ' ' || !all_digits(l + 9, 3) || (n > 12 && l[12] != ' ')) {
		*why = "the status line is not HTTP/1.x";
		return -EPROTO;
	}
	h->version_minor = (unsigned)(l[7] - '0');
	h->status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
	return 0;
}

static int
parse_header(const char *l, size_t n, struct top_http_head *h, const char **why)
{
	const char *colon = memchr(l, ':', n), *v, *ve = l + n;
	size_t name_len;

	if (!colon || colon == l) {
		*why = "a header line has no name";
		return -EPROTO;
	}
	name_len = (size_t)(colon - l);
	for (size_t i = 0; i < name_len; i++)
		if (!is_token_char(l[i])) {
			*why = "a header name is malformed";
			return -EPROTO;
		}
	for (v = colon + 1; v < ve && (*v == ' ' || *v == '\t'); v++)
		;
	while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
		ve--;

	if (name_len == 14 && !strncasecmp(l, "Content-Length", 14)) {
		uint64_t len;

		if (!all_digits(v, (size_t)(ve - v)) || ve - v > 18) {
			*why = "Content-Length is not a number";
			return -EPROTO;
		}
		len = strtoull(v, NULL, 10);
		if (h->has_length && len != h->content_length) {
			*why = "two different Content-Length headers";
			return -EPROTO;
		}
		h->has_length = true;
		h->content_length = len;
	} else if (name_len == 17 && !strncasecmp(l, "Transfer-Encoding", 17)) {
		if (ve - v != 7 || strncasecmp(v, "chunked", 7)) {
			*why = "a transfer coding other than chunked";
			return -EPROTO;
		}
		h->chunked = true;
	}
	return 0;
}

int
top_http_parse_head(const char *buf, size_t len, struct top_http_head *h,
		    const char **why)
{
	size_t pos = 0;
	const char *l;
	long n;
	int r;

	memset(h, 0, sizeof(*h));
	*why = NULL;
	n = next_line(buf, len, &pos, &l);
	if (n >= 0) {
		r = parse_status_line(l, (size_t)n, h, why);
		if (r)
			return r;
		while ((n = next_line(buf, len, &pos, &l)) > 0) {
			if (*l == ' ' || *l == '\t') {
				*why = "a folded header line";
				return -EPROTO;
			}
			r = parse_header(l, (size_t)n, h, why);
			if (r)
				return r;
		}
	}
	if (n == 0 && pos <= TOP_HTTP_HEAD_MAX)
		return (int)pos;
	if (len >= TOP_HTTP_HEAD_MAX) {
		*why = "the head is too long";
		return -EPROTO;
	}
	return 0;
}

/* ---- chunked bodies ---- */

/* A chunk-size line: hex digits, then an optional ";extension". */
static int
chunk_size(const char *l, size_t n, uint64_t *size)
{
	size_t i = 0;

	*size = 0;
	for (; i < n; i++) {
		char c = l[i];
		unsigned d;

		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
			d = (unsigned)((c | 0x20) - 'a' + 10);
		else
			break;
		*size = *size * 16 + d;
		if (*size > TOP_HTTP_BODY_MAX)
			return -EPROTO;
	}
	while (i < n && (l[i] == ' ' || l[i] == '\t'))
		i++;
	if (!i || (i < n && l[i] != ';'))
		return -EPROTO;
	return 0;
}

long
top_http_dechunk(const char *buf, size_t len, char *out, size_t *out_len)
{
	size_t pos = 0, total = 0;

	for (;;) {
		uint64_t size;
		const char *l;
		long n = next_line(buf, len, &pos, &l);

		if (n < 0)
			return len - pos > 1024 ? -EPROTO : 0;
		if (chunk_size(l, (size_t)n, &size))
			return -EPROTO;
		if (size == 0)
			break;
		if (total + size > TOP_HTTP_BODY_MAX)
			return -EPROTO;
		if (len - pos < size + 1)
			return 0;
		if (out)
			memcpy(out + total, buf + pos, size);
		total += size;
		pos += size;
		/* The data ends in CR LF (or LF). */
		if (buf[pos] == '\r') {
			if (len - pos < 2)
				return 0;
			pos++;
		}
		if (buf[pos] != '\n')
			return -EPROTO;
		pos++;
	}

	/* Trailer lines, up to an empty one. */
	for (;;) {
		const char *l;
		long n = next_line(buf, len, &pos, &l);

		if (n < 0)
			return len - pos > TOP_HTTP_HEAD_MAX ? -EPROTO : 0;
		if (n == 0)
			break;
	}
	*out_len = total;
	return (long)pos;
}

/* ---- the exchange ---- */

struct conn {
	const struct top_http_request *rq;
	struct top_http_response *rs;
	struct top_http_addr addr;
	uint64_t deadline;
	int fd;

	char *buf;
	size_t len, cap;
	struct top_http_head head;
	size_t head_len; /* 0 until the head is complete */
};

/*
 * Wait until @c's socket is ready for @events.  Return: 0; -ETIMEDOUT
 * past the deadline; -ECANCELED when the cancel descriptor is readable.
 */
static int
conn_wait(struct conn *c, short events)
{
	for (;;) {
		struct pollfd p[2] = {
			{.fd = c->fd, .events = events},
			{.fd = c->rq->cancel_fd, .events = POLLIN},
		};
		uint64_t now = sl_now_ns();
		int ms, r;

		if (now >= c->deadline)
			return -ETIMEDOUT;
		ms = (int)((c->deadline - now + 999999) / 1000000);
		r = poll(p, c->rq->cancel_fd >= 0 ? 2 : 1, ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (c->rq->cancel_fd >= 0 && p[1].revents)
			return -ECANCELED;
		if (p[0].revents)
			return 0;
	}
}

static int conn_fail(struct conn *c, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
conn_fail(struct conn *c, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->rs->err, sizeof(c->rs->err), fmt, ap);
	va_end(ap);
	return err;
}

/* "cannot connect to 127.0.0.1:7401: Connection refused", and so on. */
static int
conn_wait_failed(struct conn *c, int r, const char *doing)
{
	double s = (double)c->rq->timeout_ns / 1e9;

	if (r == -ETIMEDOUT)
		return conn_fail(c, r, "%s %s: timed out after %.3g s", doing,
				 c->rq->addr, s);
	if (r == -ECANCELED)
		return conn_fail(c, r, "%s %s: interrupted", doing,
				 c->rq->addr);
	return conn_fail(c, r, "%s %s: %s", doing, c->rq->addr, sl_strerror(r));
}

/* One address of the host's: 0 once connected; a negative errno. */
static int
conn_try(struct conn *c, const struct addrinfo *ai)
{
	socklen_t elen = sizeof(int);
	int err = 0, r;

	c->fd = socket(ai->ai_family,
		       ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		       ai->ai_protocol);
	if (c->fd < 0)
		return -errno;
	if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return 0;
	if (errno != EINPROGRESS)
		return -errno;
	r = conn_wait(c, POLLOUT);
	if (r)
		return r;
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen))
		return -errno;
	return -err;
}

static int
conn_open(struct conn *c)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_NUMERICSERV,
	};
	struct addrinfo *res, *ai;
	int r = -EADDRNOTAVAIL;

	r = getaddrinfo(c->addr.host, c->addr.port, &hints, &res);
	if (r)
		return conn_fail(c, -EADDRNOTAVAIL, "cannot resolve %s: %s",
				 c->addr.host, gai_strerror(r));
	for (ai = res; ai; ai = ai->ai_next) {
		r = conn_try(c, ai);
		if (!r || r == -ETIMEDOUT || r == -ECANCELED)
			break;
		close(c->fd);
		c->fd = -1;
	}
	freeaddrinfo(res);
	if (r)
		return conn_wait_failed(c, r, "cannot connect to");
	return 0;
}

static int
conn_send(struct conn *c)
{
	const char *tok = c->rq->token;
	char req[TOP_HTTP_TOKEN_MAX + 1024];
	size_t len, off = 0;
	int n;

	/* "Connection: close" so that a server that would keep the
	 * connection open ends the answer by closing it. */
	n = snprintf(req, sizeof(req),
		     "GET %s HTTP/1.1\r\nHost: %s%s%s:%s\r\n"
		     "User-Agent: sluice-top\r\nAccept: text/plain\r\n"
		     "Connection: close\r\n%s%s%s\r\n",
		     c->rq->path, c->addr.ipv6 ? "[" : "", c->addr.host,
		     c->addr.ipv6 ? "]" : "", c->addr.port,
		     tok ? "Authorization: Bearer " : "", tok ? tok : "",
		     tok ? "\r\n" : "");
	if (n < 0 || (size_t)n >= sizeof(req))
		return conn_fail(c, -EINVAL, "the request does not fit");
	len = (size_t)n;

	while (off < len) {
		ssize_t w = send(c->fd, req + off, len - off, MSG_NOSIGNAL);
		int r;

		if (w > 0) {
			off += (size_t)w;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return conn_wait_failed(c, -errno,
						"cannot send the request to");
		r = conn_wait(c, POLLOUT);
		if (r)
			return conn_wait_failed(c, r,
						"cannot send the request to");
	}
	return 0;
}

/* Whether the body has all arrived, by the head's rules; -EPROTO or
 * -EMSGSIZE when it never will fit them. */
static int
conn_body_complete(struct conn *c, bool eof)
{
	size_t have = c->len - c->head_len, dummy;
	long r;

	if (c->head.has_length) {
		if (c->head.content_length > TOP_HTTP_BODY_MAX)
			return -EMSGSIZE;
		return have >= c->head.content_length;
	}
	if (have > TOP_HTTP_BODY_MAX + 64 * 1024)
		return -EMSGSIZE;
	if (c->head.chunked) {
		r = top_http_dechunk(c->buf + c->head_len, have, NULL, &dummy);
		return r < 0 ? -EPROTO : r > 0;
	}
	return eof;
}

static int
conn_grow(struct conn *c)
{
	size_t cap = c->cap ? c->cap * 2 : 16 * 1024;
	char *n;

	if (c->cap >= TOP_HTTP_HEAD_MAX + TOP_HTTP_BODY_MAX + 128 * 1024)
		return -EMSGSIZE;
	n = realloc(c->buf, cap + 1);
	if (!n)
		return -ENOMEM;
	c->buf = n;
	c->cap = cap;
	return 0;
}

/*
 * After each read: parse the head once it is in, then check the body.
 * The head is parsed again from the start until it is complete; heads are
 * a few hundred bytes, and the parser then needs no state between reads.
 * Return: 1 when the answer is complete, 0 for more, or an error.
 */
static int
conn_progress(struct conn *c, bool eof)
{
	const char *why = NULL;
	int r;

	if (!c->head_len) {
		r = top_http_parse_head(c->buf, c->len, &c->head, &why);
		if (r < 0)
			return conn_fail(c, r, "%s sent a malformed answer: %s",
					 c->rq->addr, why);
		if (r == 0)
			return eof ? conn_fail(c, -EPROTO,
					       "%s closed the connection "
					       "before answering",
					       c->rq->addr)
				   : 0;
		c->head_len = (size_t)r;
		c->rs->status = c->head.status;
	}
	r = conn_body_complete(c, eof);
	if (r == -EMSGSIZE)
		return conn_fail(c, r,
				 "the answer from %s is larger than "
				 "%u MiB",
				 c->rq->addr, TOP_HTTP_BODY_MAX >> 20);
	if (r < 0)
		return conn_fail(c, r, "%s sent a malformed chunked body",
				 c->rq->addr);
	if (!r && eof)
		return conn_fail(c, -EPROTO,
				 "%s closed the connection in the middle of "
				 "the answer",
				 c->rq->addr);
	return r;
}

static int
conn_recv(struct conn *c)
{
	for (;;) {
		ssize_t n;
		int r;

		if (c->len == c->cap) {
			r = conn_grow(c);
			if (r == -EMSGSIZE)
				return conn_fail(c, r,
						 "the answer from %s is "
						 "too large",
						 c->rq->addr);
			if (r)
				return conn_fail(c, r, "out of memory");
		}
		n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
		if (n > 0) {
			c->len += (size_t)n;
			r = conn_progress(c, false);
		} else if (n == 0) {
			r = conn_progress(c, true);
		} else if (errno == EINTR) {
			continue;
		} else if (errno == EAGAIN) {
			r = conn_wait(c, POLLIN);
			if (r)
				return conn_wait_failed(
					c, r, "cannot read the answer from");
		} else {
			return conn_wait_failed(c, -errno,
						"cannot read the answer from");
		}
		if (r)
			return r < 0 ? r : 0;
	}
}

/* The first line of an error answer's body, printable bytes only. */
static void
body_reason(const struct conn *c, char *out, size_t len)
{
	const char *p = c->buf + c->head_len;
	size_t n = c->len - c->head_len, i;

	if (c->head.has_length && c->head.content_length < n)
		n = (size_t)c->head.content_length;
	if (c->head.chunked)
		n = 0; /* not worth decoding for a message */
	for (i = 0; i < n && i + 1 < len && p[i] != '\n' && p[i] != '\r'; i++)
		out[i] = p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '?';
	out[i] = '\0';
}

static int
conn_answer(struct conn *c)
{
	struct top_http_response *rs = c->rs;
	size_t have = c->len - c->head_len;
	char reason[128];

	if (c->head.status != 200) {
		body_reason(c, reason, sizeof(reason));
		if (c->head.status == 401 || c->head.status == 403)
			return conn_fail(c, -EACCES, "%s answered %d: %s",
					 c->rq->addr, c->head.status,
					 c->rq->token ? "the token was refused"
						      : "it wants a token "
							"(--token or "
							"--token-file)");
		return conn_fail(c, -EIO, "%s answered %d%s%s", c->rq->addr,
				 c->head.status, *reason ? ": " : "", reason);
	}

	rs->body = malloc(have + 1);
	if (!rs->body)
		return conn_fail(c, -ENOMEM, "out of memory");
	if (c->head.chunked)
		top_http_dechunk(c->buf + c->head_len, have, rs->body,
				 &rs->body_len);
	else if (c->head.has_length)
		rs->body_len = (size_t)c->head.content_length;
	else
		rs->body_len = have;
	if (!c->head.chunked)
		memcpy(rs->body, c->buf + c->head_len, rs->body_len);
	rs->body[rs->body_len] = '\0';
	return 0;
}

/* Visible ASCII only: a CR or LF in the token would end the header and
 * let the rest be read as headers of its own. */
static int
check_token(const char *tok)
{
	size_t len = strlen(tok);

	if (!len || len > TOP_HTTP_TOKEN_MAX)
		return -EINVAL;
	for (size_t i = 0; i < len; i++)
		if (tok[i] <= 0x20 || tok[i] >= 0x7f)
			return -EINVAL;
	return 0;
}

int
top_http_get(const struct top_http_request *rq, struct top_http_response *rs)
{
	struct conn c = {.rq = rq, .rs = rs, .fd = -1};
	const char *why;
	int r;

	memset(rs, 0, sizeof(*rs));
	c.deadline = sl_now_ns() + rq->timeout_ns;
	if (top_http_parse_addr(rq->addr, &c.addr, &why))
		return conn_fail(&c, -EINVAL, "bad address \"%s\": %s",
				 rq->addr, why);
	if (rq->token && check_token(rq->token))
		return conn_fail(&c, -EINVAL,
				 "the token must be 1 to %d visible ASCII "
				 "characters",
				 TOP_HTTP_TOKEN_MAX);

	r = conn_open(&c);
	if (!r)
		r = conn_send(&c);
	if (!r)
		r = conn_recv(&c);
	if (!r)
		r = conn_answer(&c);
	if (c.fd >= 0)
		close(c.fd);
	free(c.buf);
	return r;
}

void
top_http_response_fini(struct top_http_response *rs)
{
	free(rs->body);
	rs->body = NULL;
	rs->body_len = 0;
}
