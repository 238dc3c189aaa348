/* SPDX-License-Identifier: MIT */
/*
 * A sluice-load run: the runtime, the connections that send, the sink
 * that verify mode listens with, and what they measured.
 */
#ifndef SLUICE_LOAD_RUN_H
#define SLUICE_LOAD_RUN_H

#include <stdbool.h>
#include <stdint.h>

#include "tools/load/opts.h"
#include "tools/load/stats.h"
#include "tools/load/verify.h"

struct load_result {
	struct load_stats stats; /* owned; load_result_fini() */
	double send_s;           /* from the start until the last lane ended */
	double converge_s;       /* verify: from then until all delivered */
	bool converged;
	bool interrupted; /* stopped early by a signal */

	/* Totals. */
	uint64_t sent, bytes, acked, unacked, delivered, fences;
	uint64_t connects, connect_failures, disconnects;
	uint64_t send_timeouts, ack_timeouts, resent, dgram_errors;
	uint64_t dgram_retries; /* datagrams sent again: receiver full */
	uint64_t sink_conns, sink_errors;
	uint64_t errors; /* the sum of the error counters */

	bool verify;
	struct load_verify_result vr;

	double cpu_s;    /* user + system of this process */
	char fatal[512]; /* why the run stopped, if it failed */
};

/**
 * load_run() - run the load @o describes and fill @out.
 * Return: 0 when the run went through (its figures may still show
 * errors); -1 when it could not start or was stopped by a fatal error
 * (out->fatal says why).
 */
int load_run(const struct load_opts *o, struct load_result *out);

void load_result_fini(struct load_result *r);

#endif /* SLUICE_LOAD_RUN_H */
