/* SPDX-License-Identifier: MIT */
/*
 * What sluice-top shows, in two steps.
 *
 * A state is one scrape boiled down to the figures the display uses:
 * the daemon-wide series, and one entity per route, processor and input
 * (the "route", "proc" and "input" labels), each a row of numbers indexed
 * by the field enums below.  A figure the scrape did not have is NaN.
 *
 * A view is two states apart in time turned into what a reader wants:
 * counters as rates over the window between them, gauges as they are
 * now, each route's fold ratio and reconcile p99 over the same window.
 * With no earlier state (the first scrape), or when the daemon restarted
 * in between (its start time changed), there are no rates, and the
 * ratios and quantiles cover everything since the daemon started.
 *
 * Both are plain memory: one thread at a time.
 */
#ifndef SLUICE_TOP_MODEL_H
#define SLUICE_TOP_MODEL_H

#include <stdbool.h>
#include <stddef.h>

#include "tools/top/prom.h"
#include "tools/top/rate.h"

/* Buckets kept per histogram; sluiced writes 25. */
#define TOP_HIST_MAX 64
/* The widest of the per-entity field enums. */
#define TOP_ENTITY_FIELDS 12

enum top_global_field {
	TOP_G_INGESTED,        /* sluice_events_ingested_total */
	TOP_G_UNMATCHED,       /* sluice_events_unmatched_total */
	TOP_G_MALFORMED,       /* sluice_events_malformed_total */
	TOP_G_DEAD_DROPPED,    /* sluice_dead_letters_dropped_total */
	TOP_G_TASKS,           /* sluice_tasks */
	TOP_G_READY,           /* sluice_ready */
	TOP_G_DRAINING,        /* sluice_draining */
	TOP_G_START_TIME,      /* sluice_start_time_seconds */
	TOP_G_RELOADS_OK,      /* sluice_reloads_total{result="ok"} */
	TOP_G_RELOADS_REFUSED, /* sluice_reloads_total{result="refused"} */
	TOP_G_IO_BUFFERS,      /* sluice_io_buffers */
	TOP_G_IO_IN_USE,       /* sluice_io_buffers_in_use */
	TOP_G_IO_ENOBUFS,      /* sluice_io_enobufs_total */
	TOP_G_NFIELDS,
};

enum top_kind {
	TOP_ROUTES, /* label "route" */
	TOP_PROCS,  /* label "proc" */
	TOP_INPUTS, /* label "input" */
	TOP_NKINDS,
};

/* Fields of a route: sluice_route_<name>, summed over its shards. */
enum top_route_field {
	TOP_R_PENDING,     /* gauge: the route's depth */
	TOP_R_PROCESSING,  /* gauge: keys being reconciled */
	TOP_R_WAITING,     /* gauge: keys waiting out a backoff */
	TOP_R_QUEUE_BYTES, /* gauge */
	TOP_R_ADDS,        /* events into the queues */
	TOP_R_FOLDS,       /* of those, folded into a pending key */
	TOP_R_DIRTY,
	TOP_R_RECONCILES, /* sink calls that succeeded */
	TOP_R_FAILURES,
	TOP_R_RETRIES,
	TOP_R_DEAD, /* dead letters */
	TOP_R_NFIELDS,
};

/* Fields of a processor: sluice_proc_<name>. */
enum top_proc_field {
	TOP_P_RUNQ, /* gauge: run-queue length */
	TOP_P_TASKS_RUN,
	TOP_P_PARKS,
	TOP_P_STEALS,
	TOP_P_WAKEUPS,
	TOP_P_SUBMITS,
	TOP_P_SPAWNS,
	TOP_P_HOGS,
	TOP_P_NFIELDS,
};

/* Fields of an input: sluice_input_<name>. */
enum top_input_field {
	TOP_I_EVENTS,
	TOP_I_BYTES,
	TOP_I_MALFORMED,
	TOP_I_OVERSIZED,
	TOP_I_CONNS,
	TOP_I_CLOSED_BAD,
	TOP_I_NFIELDS,
};

/* A route's two histograms. */
enum top_hist_kind {
	TOP_H_LATENCY,  /* sluice_reconcile_latency_seconds */
	TOP_H_DURATION, /* sluice_reconcile_duration_seconds */
	TOP_NHISTS,
};

struct top_hist {
	struct top_bucket b[TOP_HIST_MAX]; /* sorted by bound */
	unsigned n;
	bool bad; /* a bucket's "le" did not parse, or too many */
};

struct top_entity {
	const char *name; /* the label's value, in the state's set */
	double v[TOP_ENTITY_FIELDS];
	struct top_hist hist[TOP_NHISTS]; /* routes only */
};

struct top_group {
	struct top_entity *items; /* in the order of first appearance */
	size_t n, cap;
	size_t hint; /* where the next lookup starts (see model.c) */
};

struct top_state {
	double g[TOP_G_NFIELDS];
	struct top_group groups[TOP_NKINDS];
	/* What the parse skipped, copied from the set. */
	size_t bad_lines, first_bad_line;
	const char *first_bad_why;
};

/**
 * top_state_build() - boil @set down into @st.
 * @st: uninitialised; free with top_state_fini().  Its names point into
 *	@set, which must outlive it.
 *
 * Series it does not know are ignored, so a newer daemon with more
 * metrics works; one it knows without the label it wants is ignored too.
 *
 * Return: 0; -ENOMEM (@st is then empty but valid for top_state_fini()).
 */
int top_state_build(struct top_state *st, const struct top_prom_set *set);
void top_state_fini(struct top_state *st);

/* Whether field @f of kind @k is a counter (shown as a rate). */
bool top_field_is_counter(enum top_kind k, unsigned f);

struct top_row {
	const char *name;
	double now[TOP_ENTITY_FIELDS];  /* the reading: totals and gauges */
	double rate[TOP_ENTITY_FIELDS]; /* counters per second; else NaN */
	/* Routes: folds per add, 0 to 1; NaN when nothing was added. */
	double fold_ratio;
	/* Routes: p99 of each histogram; err is 0, -ENODATA (nothing
	 * observed in the window) or -EINVAL (buckets unusable). */
	struct top_quantile p99[TOP_NHISTS];
	int p99_err[TOP_NHISTS];
};

struct top_view {
	/* Rates exist: an earlier state from the same daemon run. */
	bool rates;
	/* The daemon's start time changed between the two states. */
	bool restarted;
	double window_s; /* between the states; 0 without rates */
	double uptime_s; /* NaN when the start time is not known */

	double now[TOP_G_NFIELDS];
	double rate[TOP_G_NFIELDS];
	/* Sums over the routes that export the series (NaN if none):
	 * reconciles are the events-out figure. */
	double out_total, out_rate;
	double failures_rate, retries_rate, dead_total;

	struct top_row *rows[TOP_NKINDS];
	size_t nrows[TOP_NKINDS];

	size_t bad_lines, first_bad_line;
	const char *first_bad_why;
};

/**
 * top_view_build() - what changed from @prev to @cur.
 * @prev: the earlier state, or NULL.
 * @dt_s: seconds between the two scrapes (0 with no @prev).
 * @now_wall: the wall clock, for the uptime (Unix seconds).
 * @v: uninitialised; free with top_view_fini().  Names point into the
 *	states' sets.
 *
 * Return: 0; -ENOMEM.
 */
int top_view_build(struct top_view *v, const struct top_state *prev,
		   const struct top_state *cur, double dt_s, double now_wall);
void top_view_fini(struct top_view *v);

#endif /* SLUICE_TOP_MODEL_H */
