/* SPDX-License-Identifier: MIT */
/*
 * Addresses: parsing, formatting, and name lookups in a blocking section.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/runtime.h"
#include "io/net.h"

static int
addr_parse_port(const char *s, uint16_t *port)
{
	char *end;
	unsigned long v;

	if (!*s)
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > 65535)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

static int
addr_parse_unix(const char *path, struct sl_addr *out)
{
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(out->u.un.sun_path))
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->u.un.sun_family = AF_UNIX;
	memcpy(out->u.un.sun_path, path, n);
	if (path[0] == '@')
		out->u.un.sun_path[0] = '\0'; /* abstract namespace */
	out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
			       (path[0] == '@' ? 0 : 1));
	return 0;
}

int
sl_addr_parse(const char *s, struct sl_addr *out)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *colon;
	uint16_t port;
	size_t hl;

	if (!s)
		return -EINVAL;
	if (!strncmp(s, "unix:", 5))
		return addr_parse_unix(s + 5, out);
	if (s[0] == '/' || s[0] == '@')
		return addr_parse_unix(s, out);

	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		hl = (size_t)(close - s - 1);
		if (hl >= sizeof(host))
			return -EINVAL;
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
		if (addr_parse_port(close + 2, &port))
			return -EINVAL;
		memset(out, 0, sizeof(*out));
		out->u.in6.sin6_family = AF_INET6;
		out->u.in6.sin6_port = htons(port);
		if (inet_pton(AF_INET6, host, &out->u.in6.sin6_addr) != 1)
			return -EINVAL;
		out->len = sizeof(out->u.in6);
		return 0;
	}

	colon = strrchr(s, ':');
	if (!colon)
		return -EINVAL;
	hl = (size_t)(colon - s);
	if (hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (addr_parse_port(colon + 1, &port))
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->u.in4.sin_family = AF_INET;
	out->u.in4.sin_port = htons(port);
	if (hl == 0)
		out->u.in4.sin_addr.s_addr = htonl(INADDR_ANY);
	else if (inet_pton(AF_INET, host, &out->u.in4.sin_addr) != 1)
		return -EINVAL;
	out->len = sizeof(out->u.in4);
	return 0;
}

const char *
sl_addr_format(const struct sl_addr *a, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];

	switch (a->u.sa.sa_family) {
	case AF_INET:
		inet_ntop(AF_INET, &a->u.in4.sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(a->u.in4.sin_port));
		break;
	case AF_INET6:
		inet_ntop(AF_INET6, &a->u.in6.sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host,
			 ntohs(a->u.in6.sin6_port));
		break;
	case AF_UNIX:
		if (a->len > offsetof(struct sockaddr_un, sun_path) &&
		    a->u.un.sun_path[0] == '\0')
			snprintf(buf, len, "unix:@%.*s",
				 (int)(a->len -
				       offsetof(struct sockaddr_un, sun_path) -
				       1),
				 a->u.un.sun_path + 1);
		else
			snprintf(buf, len, "unix:%s", a->u.un.sun_path);
		break;
	default:
		snprintf(buf, len, "(unknown family %d)", a->u.sa.sa_family);
	}
	return buf;
}

uint16_t
sl_addr_port(const struct sl_addr *a)
{
	if (a->u.sa.sa_family == AF_INET)
		return ntohs(a->u.in4.sin_port);
	if (a->u.sa.sa_family == AF_INET6)
		return ntohs(a->u.in6.sin6_port);
	return 0;
}

struct resolve_call {
	const char *host, *port;
	struct addrinfo *res;
	int rc;
};

static void *
resolve_blocking(void *arg)
{
	struct resolve_call *rc = arg;
	struct addrinfo hints;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_ADDRCONFIG;
	rc->rc = getaddrinfo(rc->host, rc->port, &hints, &rc->res);
	return NULL;
}

static int
resolve_error(int rc)
{
	switch (rc) {
	case EAI_NONAME:
	case EAI_NODATA:
		return -ENOENT;
	case EAI_AGAIN:
		return -EAGAIN;
	case EAI_MEMORY:
		return -ENOMEM;
	case EAI_SERVICE:
	case EAI_FAMILY:
	case EAI_BADFLAGS:
		return -EINVAL;
	case EAI_SYSTEM:
		return errno ? -errno : -EIO;
	default:
		return -EIO;
	}
}

int
sl_resolve(const char *host, const char *port, struct sl_addr *out,
	   size_t max)
{
	struct resolve_call rc = {.host = host, .port = port};
	size_t n = 0;

	/* getaddrinfo may read files and wait on DNS for seconds: hand the
	 * processor to another machine while it does. */
	sl_blocking_call(resolve_blocking, &rc);
	if (rc.rc)
		return resolve_error(rc.rc);

	/* IPv4 first, then the rest, in the resolver's order. */
	for (int pass = 0; pass < 2; pass++)
		for (struct addrinfo *ai = rc.res; ai && n < max;
		     ai = ai->ai_next) {
			bool v4 = ai->ai_family == AF_INET;

			if (v4 != (pass == 0) ||
			    ai->ai_addrlen > sizeof(out[n].u))
				continue;
			memset(&out[n], 0, sizeof(out[n]));
			memcpy(&out[n].u, ai->ai_addr, ai->ai_addrlen);
			out[n].len = ai->ai_addrlen;
			n++;
		}
	freeaddrinfo(rc.res);
	return n ? (int)n : -ENOENT;
}
