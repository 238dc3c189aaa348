/* SPDX-License-Identifier: MIT */
/*
 * What a run measured: latency histograms for the whole run, for each
 * step of a ramp and for each reporting interval, and the time series of
 * intervals that the report plots.
 *
 * Three latencies, each from the event's planned send time (sched.h):
 *
 *   send  until the write that carried the event returned: the kernel had
 *         the bytes.  Grows when the target stops reading (back-pressure)
 *         or when the sender falls behind its schedule.
 *   ack   until the target's ACK covering the event arrived (frames with
 *         acknowledgements).  Taken for the event that completes each
 *         ACK, whose latency is exact; the others share its ACK.
 *   e2e   until the sink delivered the event's version back to sluice-load
 *         (verify mode): ingest, routing, folding and reconcile.  Taken
 *         for every delivered version; versions folded away have none.
 *
 * The whole-run histograms leave out events planned during the warm-up;
 * interval histograms keep everything, so the plots show the warm-up too.
 * A load_stats has no lock: the caller serialises.
 */
#ifndef SLUICE_LOAD_STATS_H
#define SLUICE_LOAD_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tools/load/hdr.h"
#include "tools/load/sched.h"

enum load_metric {
	LOAD_M_SEND,
	LOAD_M_ACK,
	LOAD_M_E2E,
	LOAD_M_COUNT,
};

extern const char *const load_metric_names[LOAD_M_COUNT];

/* The most telling latency a run measures: e2e when verifying, else ack
 * when the target acknowledges, else send. */
static inline enum load_metric
load_primary_metric(bool verify, bool acks)
{
	if (verify)
		return LOAD_M_E2E;
	return acks ? LOAD_M_ACK : LOAD_M_SEND;
}

/* The figures of one histogram that reports show. */
struct load_summary {
	uint64_t n;
	uint64_t p50, p90, p99, p999, p9999, max;
	double mean;
};

void load_summarize(const struct load_hdr *h, struct load_summary *out);

/* Counters the run keeps itself, read at each interval's end. */
struct load_counts {
	uint64_t sent;      /* events handed to the kernel */
	uint64_t acked;     /* events covered by ACKs */
	uint64_t delivered; /* new versions the sink delivered */
	uint64_t errors;    /* connects failed, disconnects, timeouts */
};

struct load_row {
	double t;      /* seconds from the start to the row's end */
	double target; /* planned events per second (0: max rate) */
	double sent, acked, delivered; /* per second */
	uint64_t errors;               /* in all, so far */
	struct load_summary lat[LOAD_M_COUNT];
};

struct load_step_stats {
	uint64_t sent; /* events whose write returned in the step */
	uint64_t delivered;
	struct load_hdr *lat[LOAD_M_COUNT]; /* by planned time */
};

struct load_stats {
	const struct load_plan *plan;
	struct load_hdr total[LOAD_M_COUNT];
	struct load_hdr interval[LOAD_M_COUNT];
	bool used[LOAD_M_COUNT];
	struct load_step_stats steps[LOAD_MAX_STEPS];
	unsigned nsteps; /* 1 unless the plan is a ramp */
	struct load_row *rows;
	size_t nrows, cap;
	struct load_counts last; /* at the last row */
	double last_t;
};

/* load_stats_init() - empty statistics for @plan.  0 or -ENOMEM. */
int load_stats_init(struct load_stats *s, const struct load_plan *plan);
void load_stats_fini(struct load_stats *s);

/* One latency: of @metric, for an event planned at @planned_rel and done
 * at @done_rel (both nanoseconds after the start). */
struct load_sample {
	uint8_t metric;
	uint64_t planned_rel, done_rel;
};

/* load_stats_add() - record @n samples.  Return: 0 or -ENOMEM. */
int load_stats_add(struct load_stats *s, const struct load_sample *v, size_t n);

/**
 * load_stats_row() - close the interval that ends @t_s seconds after the
 * start: a row from the interval histograms and the change in @now since
 * the last row; the interval histograms start over.
 * Return: 0 or -ENOMEM.
 */
int load_stats_row(struct load_stats *s, double t_s,
                   const struct load_counts *now);

#endif /* SLUICE_LOAD_STATS_H */
