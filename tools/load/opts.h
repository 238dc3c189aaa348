/* SPDX-License-Identifier: MIT */
/*
 * sluice-load's command line: the options, their defaults and checks.
 * docs/sluice-load.md describes each option; --help prints a summary.
 */
#ifndef SLUICE_LOAD_OPTS_H
#define SLUICE_LOAD_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tools/load/sched.h"
#include "tools/load/workload.h"

enum load_target_type {
	LOAD_TARGET_TCP,
	LOAD_TARGET_UDP,
	LOAD_TARGET_UNIX, /* stream */
	LOAD_TARGET_UNIXGRAM,
};

struct load_opts {
	/* Where and how. */
	enum load_target_type type;
	char target[300]; /* as given */
	char addr[300];   /* host:port or unix path, for io/ */
	unsigned conns;
	unsigned depth;     /* events outstanding per connection */
	uint32_t ack_every; /* frames on a stream: HELLO's N; 0 off */
	size_t dgram_max;   /* bytes per datagram */

	/* When: the plan and its pacing. */
	struct load_plan plan;
	uint64_t tick_ns;

	/* What. */
	struct load_workload wl;

	/* Verify mode: listen as the tcp sink. */
	bool verify;
	char sink_addr[300];
	uint64_t verify_timeout_ns;

	/* Errors. */
	uint64_t connect_timeout_ns;
	uint64_t stall_timeout_ns; /* no write or ACK progress */
	uint64_t give_up_ns;       /* target gone this long: stop */

	/* The runtime. */
	unsigned procs;
	const char *cpus;

	/* Output. */
	uint64_t interval_ns;
	uint64_t slo_ns; /* a ramp step's p99 above this is past the knee */
	bool json;
	int progress; /* -1: when stderr is a terminal */
	const char *report_dir;
	const char *hist_out; /* prefix of the histogram files */

	/* "sluice-load merge FILE...": no run, merge histograms. */
	bool merge;
	char **merge_files;
	int nmerge;
};

/**
 * load_opts_parse() - read the command line into @o.
 * Return: 0; 1 when --help or --version was answered on stdout (exit 0);
 * -EINVAL with one line in @err (exit 2).
 */
int load_opts_parse(int argc, char **argv, struct load_opts *o, char *err,
                    size_t errlen);

void load_usage(FILE *out);

/* "250ms", "1.5s", "2m", a bare number is seconds.  0 or -EINVAL. */
int load_parse_duration(const char *s, uint64_t *ns);

/* "50000", "50k", "1.5M", "2G": a count or rate.  0 or -EINVAL. */
int load_parse_amount(const char *s, double *out);

/* load_format_duration() - "12.3us", "4.56ms", "1.2s" for reports. */
void load_format_duration(uint64_t ns, char *buf, size_t len);

/* load_format_amount() - "950", "12.3k", "1.25M". */
void load_format_amount(double v, char *buf, size_t len);

#endif /* SLUICE_LOAD_OPTS_H */
