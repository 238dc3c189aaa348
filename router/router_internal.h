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

struct shard;

/*
 * One worker task of a shard, with the figures only it writes: its own
 * histograms, so a reconcile never waits on another worker to record
 * (metrics merge them on read), and the start of the reconcile it is in.
 */
struct shard_worker {
	struct shard *sh;
	struct sl_task *task;
	/* sl_now_ns() when the reconcile in progress began; 0 while idle. */
	_Atomic uint64_t busy_since;
	/* Reconcile latency (newest event's ingest to done) and duration;
	 * @mu is taken by this worker to record and by metrics to read. */
	struct sl_mutex mu;
	struct sl_histogram latency, duration;
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
	struct shard_worker *workers;
	unsigned nworkers;

	/* The fold queue's clock: the time the pump read at the start of
	 * its round, so a round of adds costs one clock read. */
	struct sl_clock clock;
	uint64_t round_ns;
	/* When a drain must end (UINT64_MAX: never); retries back off no
	 * further than halfway to it.  Set before the inbox closes. */
	_Atomic uint64_t drain_deadline;

	/* Written by the pump, read by metrics. */
	_Atomic uint64_t pending, processing, waiting;
	_Atomic uint64_t adds, folds, dirties, retries, dead, reconciles;
	_Atomic uint64_t failures;
	_Atomic uint64_t key_bytes;
	/* Keys neither reconciled nor dead-lettered when the pump stopped. */
	_Atomic uint64_t left;
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
	bool stopped;			/* its tasks have ended */
	struct route *next;		/* all live routes, in table order */
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
	/* Ended from the start: a burst receive with it never parks. */
	struct sl_context *poll;
	/*
	 * Two locks.  @reload is held for a whole reload or shutdown, drains
	 * included, and only orders them.  @admin guards the lists and
	 * @stopping, and is only ever held for a short walk or a link, so
	 * metrics and stats read while a drain goes on.  @reload comes first
	 * when both are taken.
	 */
	struct sl_mutex reload;
	struct sl_mutex admin;
	struct route *routes;		/* every route, in table order */
	struct input *inputs;
	_Atomic uint64_t seq;
	_Atomic bool stopping;

	struct {
		_Atomic uint64_t ingested, unmatched, malformed, conns_closed;
		_Atomic uint64_t dead_dropped, oversized;
	} st;
};

/* Route one decoded event (router.c); takes the caller's reference. */
int sl__route_event(struct sluice *r, struct sl_context *ctx,
		    struct sl_event *e);

/* Events a connection routes at once: one table read, one clock read and
 * one channel burst per shard for all of them. */
#define SL__ROUTE_BATCH 64

/*
 * Route @n (at most SL__ROUTE_BATCH) decoded events, taking the caller's
 * references, as sl__route_event() would one by one: stamped in order,
 * and in order per shard.  *@ingested is set to how many went to at
 * least one route.
 * Return: 0, or, when sending stopped part-way (@ctx ended, a route
 * stopped), @ctx's error or -EPIPE; what was not sent is released.
 */
int sl__route_batch(struct sluice *r, struct sl_context *ctx,
		    struct sl_event **ev, size_t n, size_t *ingested);

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
