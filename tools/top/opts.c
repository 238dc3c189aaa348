/* SPDX-License-Identifier: MIT */
/*
 * Parsing sluice-top's options: getopt_long, then a check of each value.
 */
#include "tools/top/opts.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/top/http.h"

#ifndef TOP_VERSION
#define TOP_VERSION "0"
#endif

static void
usage(FILE *out)
{
	fputs("usage: sluice-top [options]\n"
	      "\n"
	      "Show what a running sluiced is doing, refreshed from its admin\n"
	      "endpoint's /metrics: events in and out, each route's depth,\n"
	      "fold ratio, retries, dead letters and reconcile p99, each\n"
	      "processor's run queue and load, and the errors.\n"
	      "\n"
	      "Options:\n"
	      "  -a, --admin ADDR       the admin endpoint, host:port\n"
	      "                         (default " TOP_ADDR_DEFAULT ")\n"
	      "  -i, --interval SECS    seconds between refreshes (default 1;\n"
	      "                         0.1 to 3600; \"500ms\" works too)\n"
	      "      --once             print one snapshot as plain text and\n"
	      "                         exit: two scrapes an interval apart,\n"
	      "                         or one (no rates) with --interval 0\n"
	      "      --timeout SECS     give up on a scrape after this long\n"
	      "                         (default 2)\n"
	      "      --token TOKEN      send Authorization: Bearer TOKEN\n"
	      "      --token-file FILE  the same, the token read from FILE\n"
	      "                         (not shown by ps, unlike --token)\n"
	      "  -h, --help             this text\n"
	      "  -V, --version          the version\n"
	      "\n"
	      "Keys: q quits.  Ctrl-C and SIGTERM quit too, restoring the\n"
	      "terminal.\n"
	      "\n"
	      "Exit status: 0 done; 1 the endpoint could not be scraped\n"
	      "(--once); 2 bad arguments.\n",
	      out);
}

static int opt_error(char *err, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
opt_error(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* "1", "0.5", "2s", "500ms": seconds as a number. */
static int
parse_seconds(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || errno || !isfinite(v) || v < 0)
		return -EINVAL;
	if (!strcmp(end, "ms"))
		v /= 1000;
	else if (*end && strcmp(end, "s"))
		return -EINVAL;
	*out = v;
	return 0;
}

/* The first line of @path, without the line end or trailing blanks. */
static int
read_token_file(const char *path, char **out, char *err, size_t errlen)
{
	char buf[TOP_HTTP_TOKEN_MAX + 2];
	size_t len;
	FILE *f = fopen(path, "re");

	if (!f)
		return opt_error(err, errlen, "--token-file %s: %s", path,
				 strerror(errno));
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	len = strcspn(buf, "\r\n");
	while (len && (buf[len - 1] == ' ' || buf[len - 1] == '\t'))
		len--;
	buf[len] = '\0';
	if (!len || len > TOP_HTTP_TOKEN_MAX)
		return opt_error(err, errlen,
				 "--token-file %s: the first line must hold "
				 "a token of 1 to %d characters",
				 path, TOP_HTTP_TOKEN_MAX);
	*out = strdup(buf);
	return *out ? 0 : opt_error(err, errlen, "out of memory");
}

enum {
	OPT_ONCE = 256,
	OPT_TIMEOUT,
	OPT_TOKEN,
	OPT_TOKEN_FILE,
};

static int
opts_check(struct top_opts *o, const char *interval, const char *timeout,
	   const char *token, const char *token_file, char *err, size_t errlen)
{
	struct top_http_addr addr;
	const char *why;

	if (interval &&
	    (parse_seconds(interval, &o->interval_s) ||
	     (o->interval_s < 0.1 && !(o->once && o->interval_s == 0)) ||
	     o->interval_s > 3600))
		return opt_error(err, errlen,
				 "--interval %s: give 0.1 to 3600 seconds "
				 "(0 only with --once)",
				 interval);
	if (timeout && (parse_seconds(timeout, &o->timeout_s) ||
			o->timeout_s < 0.01 || o->timeout_s > 600))
		return opt_error(err, errlen,
				 "--timeout %s: give 0.01 to 600 seconds",
				 timeout);
	if (top_http_parse_addr(o->admin, &addr, &why))
		return opt_error(err, errlen, "--admin %s: %s", o->admin, why);
	if (token_file && token)
		return opt_error(err, errlen,
				 "--token and --token-file exclude each other");
	if (token_file)
		return read_token_file(token_file, &o->token, err, errlen);
	if (token) {
		o->token = strdup(token);
		if (!o->token)
			return opt_error(err, errlen, "out of memory");
	}
	return 0;
}

static const struct option longopts[] = {
	{"admin", required_argument, NULL, 'a'},
	{"interval", required_argument, NULL, 'i'},
	{"once", no_argument, NULL, OPT_ONCE},
	{"timeout", required_argument, NULL, OPT_TIMEOUT},
	{"token", required_argument, NULL, OPT_TOKEN},
	{"token-file", required_argument, NULL, OPT_TOKEN_FILE},
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, 'V'},
	{0},
};

int
top_opts_parse(int argc, char **argv, struct top_opts *o, char *err,
	       size_t errlen)
{
	const char *interval = NULL, *timeout = NULL;
	const char *token = NULL, *token_file = NULL;
	int opt;

	memset(o, 0, sizeof(*o));
	o->admin = TOP_ADDR_DEFAULT;
	o->interval_s = TOP_INTERVAL_DEFAULT;
	o->timeout_s = TOP_TIMEOUT_DEFAULT;

	/* 0 makes glibc's getopt start over, so tests may parse again. */
	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":a:i:hV", longopts, NULL)) !=
	       -1) {
		switch (opt) {
		case 'a':
			o->admin = optarg;
			break;
		case 'i':
			interval = optarg;
			break;
		case OPT_ONCE:
			o->once = true;
			break;
		case OPT_TIMEOUT:
			timeout = optarg;
			break;
		case OPT_TOKEN:
			token = optarg;
			break;
		case OPT_TOKEN_FILE:
			token_file = optarg;
			break;
		case 'h':
			usage(stdout);
			return 1;
		case 'V':
			printf("sluice-top " TOP_VERSION "\n");
			return 1;
		case ':':
			return opt_error(err, errlen, "%s needs a value",
					 argv[optind - 1]);
		default:
			return opt_error(err, errlen,
					 "unknown option %s (see --help)",
					 argv[optind - 1]);
		}
	}
	if (optind < argc)
		return opt_error(err, errlen, "unexpected argument \"%s\"",
				 argv[optind]);
	return opts_check(o, interval, timeout, token, token_file, err, errlen);
}

void
top_opts_fini(struct top_opts *o)
{
	free(o->token);
	o->token = NULL;
}
