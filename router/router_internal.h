/* SPDX-License-Identifier: MIT */
/* router/ internals shared by router.c, input.c, sinks.c and metrics.c. */
#ifndef SLUICE_ROUTER_INTERNAL_H
#define SLUICE_ROUTER_INTERNAL_H

#include <stdatomic.h>
#include <stdio.h>

#include "core/chan.h"
#include "core/context.h"
#include "core/sync.h"
#include "core/task.h"
#include "router/histogram.h"
#include "router/sluice.h"
#include "router/srcu.h"

struct sluice_sink {
	const struct sluice_sink_ops *ops;
	void *state;
	_Atomic uint32_t refs;		/* routes and dispatches holding it */
};

void sl__sink_ref(struct sluice_sink *s);
void sl__sink_unref(struct sluice_sink *s);

struct route;

/* A worker's report to its shard's pump. */
struct shard_done {
	struct sl_foldq_item *item;
	int result;
};

/*
 * One processor's part of a route: its fold queue, owned by the pump task
 * (pinned to the processor), which alone touches the queue.  Events reach
 * it through @in, from any processor; items go to the workers through
 * @work and come back through @done.
 */
struct shard {
	struct route *route;
	unsigned proc;
	struct sl_chan *in;		/* struct sl_event * */
	struct sl_chan *work;		/* struct sl_foldq_item * */
	struct sl_chan *done;		/* struct shard_done */
	struct sl_foldq *q;
	struct sl_task *pump;
	struct sl_task **workers;
	unsigned nworkers;

	/* Written by the pump, read by metrics. */
	_Atomic uint64_t pending, processing, waiting;
	_Atomic uint64_t adds, folds, dirties, retries, dead, reconciles;
	_Atomic uint64_t failures, in_flight_since;
	_Atomic uint64_t key_bytes;
	_Atomic bool abort;		/* stop handing out work */
};

struct route {
	struct sluice *r;
	char *name;
	struct sluice_route cfg;	/* strings owned below */
	char *kind, *key_prefix;
	struct sluice_sink *_Atomic sink;
	struct sluice_sink *dead_letter;
	struct shard *shards;
	unsigned nshards;
	struct sl_chan *dead_ch;	/* struct dead_item */
	struct sl_task *dead_task;
	/* Given to every reconcile; cancelled when the route is aborted. */
	struct sl_context *ctx;

	/* Reconcile latency (newest event's ingest to done) and duration. */
	struct sl_histogram latency, duration;
	struct sl_mutex hist_mu;
	struct route *next;		/* all live routes */
};

/* A route table as installed: the matcher and its rule -> route map. */
struct table {
	struct sl_route_table *rt;
	struct route **routes;		/* by rule index */
	size_t n;
};

struct input;

struct sluice {
	struct sluice_opts opts;
	unsigned nprocs;
	struct sl_srcu srcu;
	struct table *_Atomic table;
	struct sl_mutex admin;		/* reloads, inputs, shutdown */
	struct route *routes;		/* every route alive */
	struct input *inputs;
	_Atomic uint64_t seq;
	bool stopping;

	struct {
		_Atomic uint64_t ingested, unmatched, malformed, conns_closed;
		_Atomic uint64_t dead_dropped, oversized;
	} st;
};

/* Route one decoded event (router.c); takes the caller's reference. */
int sl__route_event(struct sluice *r, struct sl_context *ctx,
		    struct sl_event *e);

/* Inputs (input.c). */
void sl__inputs_stop(struct sluice *r);
void sl__inputs_free(struct sluice *r);
void sl__inputs_metrics(struct sluice *r, FILE *out);

/* Log one line in the runtime's format, at most once a second per site. */
#define sl__router_log(level, fmt, ...)                                        \
	do {                                                                   \
		static _Atomic uint64_t sl__last;                              \
		uint64_t sl__now = sl_now_ns();                                \
		uint64_t sl__prev = atomic_load_explicit(                      \
			&sl__last, memory_order_relaxed);                      \
		if (sl__now - sl__prev >= SL_NSEC_PER_SEC &&                   \
		    atomic_compare_exchange_strong(&sl__last, &sl__prev,       \
						   sl__now))                   \
			fprintf(stderr,                                        \
				"sluice: level=" level " subsys=router " fmt   \
				"\n",                                          \
				__VA_ARGS__);                                  \
	} while (0)

#endif /* SLUICE_ROUTER_INTERNAL_H */
