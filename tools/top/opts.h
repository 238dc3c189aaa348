/* SPDX-License-Identifier: MIT */
/*
 * sluice-top's command line.  docs/sluice-top.md describes each option;
 * --help prints a summary.
 */
#ifndef SLUICE_TOP_OPTS_H
#define SLUICE_TOP_OPTS_H

#include <stdbool.h>
#include <stddef.h>

#define TOP_ADDR_DEFAULT "127.0.0.1:7401"
#define TOP_INTERVAL_DEFAULT 1.0
#define TOP_TIMEOUT_DEFAULT 2.0

struct top_opts {
	const char *admin; /* host:port of the admin endpoint */
	double interval_s; /* between refreshes; 0 only with --once */
	double timeout_s;  /* for one scrape */
	bool once;
	char *token; /* NULL: none; owned (top_opts_fini) */
};

/**
 * top_opts_parse() - read the command line into @o.
 * @err: on -EINVAL, what is wrong, for "sluice-top: <err>".
 *
 * Return: 0; 1 when --help or --version printed its text to stdout (the
 * program then exits 0); -EINVAL for a bad command line.
 */
int top_opts_parse(int argc, char **argv, struct top_opts *o, char *err,
		   size_t errlen);

void top_opts_fini(struct top_opts *o);

#endif /* SLUICE_TOP_OPTS_H */
