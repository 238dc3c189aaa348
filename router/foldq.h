/* SPDX-License-Identifier: MIT */
/*
 * The fold queue: one shard of a route's pending work, owned by one
 * processor and touched only by tasks of that processor, so it has no
 * locks.  (router/fold.h spreads a route over shards and carries events
 * from other processors to the owner.)
 *
 * Semantics follow the work queue of Kubernetes' client-go, written from
 * its documented behaviour:
 *
 *  - A key is in at most one of: queued (waiting for a worker), processing
 *    (a worker has it), waiting (for a retry or add_after time).  A key
 *    that is processing may also be dirty: added again meanwhile.
 *  - add: a new key is queued at the tail.  A key already queued keeps its
 *    place and its pending event is folded with the new one.  A key that
 *    is processing is marked dirty and the event folded into its dirty
 *    pending event; it is queued again when done() is called, never handed
 *    to a second worker meanwhile ("stingy": one reconcile per key in
 *    flight).  A key that is waiting is queued now (the add brings it
 *    earlier), its event folded.
 *  - get: the oldest queued key moves to processing, with its pending
 *    event(s), which the worker now owns.
 *  - done: the key leaves processing; if dirty it is queued again at the
 *    tail with what was added meanwhile.
 *  - retry (client-go's AddRateLimited, given back the item's events): the
 *    key waits base * 2^(failures) (capped; optional jitter), further
 *    delayed by the token bucket, then is queued; the events come back,
 *    folded under anything added meanwhile (newer events win, by policy).
 *    After max_attempts failures the item goes to the dead-letter callback
 *    instead, with the reason, and the key's failures are forgotten.
 *  - forget: the key's failure count goes back to zero (call after a
 *    success; done() does not imply it, as in client-go).
 *  - add_after: the key waits until now + delay, then is added; an earlier
 *    time replaces a later one, never the reverse.
 *  - shutdown: adds are refused (-ESHUTDOWN); get hands out what is still
 *    queued, then reports the shutdown.  shutdown with drain: waiting keys
 *    are queued at once, and the queue reports drained only when nothing
 *    is queued, processing, dirty or waiting, so dirty keys are still
 *    handed out and a retry during the drain still backs off and runs
 *    (no later than halfway to the drain's deadline, if one is set).
 *    Without drain, a retry after shutdown dead-letters the item.
 *
 * Fold policies: LATEST keeps the newest event (by seq); MERGE calls a
 * function with the pending and the new event that returns the one to
 * keep (sum, max, user code); KEEP_ALL keeps up to keep_max events in
 * arrival order, dropping (and counting) the oldest past that.
 *
 * Memory: each pending key costs one entry of at most 64 bytes beyond its
 * key (stored once, inside its event) and the events themselves.
 */
#ifndef SLUICE_ROUTER_FOLDQ_H
#define SLUICE_ROUTER_FOLDQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "router/clock.h"
#include "router/event.h"

enum sl_fold_policy {
	SL_FOLD_LATEST,
	SL_FOLD_MERGE,
	SL_FOLD_KEEP_ALL,
};

/*
 * A merge: combine @pending (older) and @incoming (newer) into the event
 * to keep.  It may return either (then it must unref the other) or a new
 * event (then it unrefs both).
 */
typedef struct sl_event *(*sl_fold_merge_fn)(struct sl_event *pending,
					     struct sl_event *incoming,
					     void *arg);

struct sl_foldq_item;

/* Called with an item that used up its attempts; owns the item's events
 * until it returns (they are freed after). */
typedef void (*sl_fold_dead_fn)(const struct sl_foldq_item *item,
				const char *reason, void *arg);

struct sl_foldq_opts {
	enum sl_fold_policy policy;
	sl_fold_merge_fn merge;
	void *merge_arg;
	unsigned keep_max;		/* KEEP_ALL: default 16 */

	/* Per-key exponential backoff: base * 2^failures, capped. */
	uint64_t backoff_base_ns;	/* default 5 ms */
	uint64_t backoff_cap_ns;	/* default 1000 s, as client-go */
	bool jitter;			/* +- up to 10% of the delay */
	uint64_t jitter_seed;

	/* The route's token bucket for retries: @rate per second, @burst
	 * deep (default 10/s, 100 deep, as client-go; rate 0: no bucket). */
	double retry_rate;
	unsigned retry_burst;

	unsigned max_attempts;		/* 0: retry forever */
	sl_fold_dead_fn dead;
	void *dead_arg;

	/* Keys pending (queued, waiting or dirty) before add says -EAGAIN:
	 * the caller's signal to push back (0: no limit). */
	size_t max_pending;

	struct sl_clock *clock;		/* NULL: sl_clock_system() */
};

/* What get() hands a worker. */
struct sl_foldq_item {
	const char *key;		/* inside the newest event */
	size_t key_len;
	uint64_t hash;
	struct sl_event **events;	/* oldest first; the worker owns them */
	unsigned nevents;		/* 1 except for KEEP_ALL */
	unsigned attempts;		/* failures so far (0 on the first try) */
	uint64_t queued_ns;		/* when it was first queued this round */
	/* private */
	void *entry_;
};

struct sl_foldq;

/* Results of add. */
enum {
	SL_FOLDQ_QUEUED = 1,	/* a new key, now queued */
	SL_FOLDQ_FOLDED = 2,	/* folded into a queued or waiting key */
	SL_FOLDQ_DIRTY = 3,	/* the key is processing: it will run again */
};

struct sl_foldq *sl_foldq_create(const struct sl_foldq_opts *opts);
/* Frees everything, including events still pending or in items not done. */
void sl_foldq_destroy(struct sl_foldq *q);

/**
 * sl_foldq_add() - add @e (the queue takes the caller's reference).
 * Return: SL_FOLDQ_QUEUED, _FOLDED or _DIRTY; -ESHUTDOWN after shutdown
 * (@e is released); -EAGAIN at max_pending for a key not yet pending (@e
 * is NOT taken: the caller keeps it and pushes back); -ENOMEM.
 */
int sl_foldq_add(struct sl_foldq *q, struct sl_event *e);

/* sl_foldq_add_after() - as add, but the key waits @delay_ns first. */
int sl_foldq_add_after(struct sl_foldq *q, struct sl_event *e,
		       uint64_t delay_ns);

/**
 * sl_foldq_get() - the next queued item, or NULL if none is ready now.
 * Moves waiting keys whose time has come to the queue first.
 */
struct sl_foldq_item *sl_foldq_get(struct sl_foldq *q);

/* sl_foldq_done() - the worker is finished with @it (success or not); the
 * item's events are released. */
void sl_foldq_done(struct sl_foldq *q, struct sl_foldq_item *it);

/**
 * sl_foldq_retry() - reconciling @it failed: requeue it with backoff (its
 * events kept), or dead-letter it after max_attempts.  Ends the item as
 * done() does.  Return: the delay chosen, or UINT64_MAX if dead-lettered.
 */
uint64_t sl_foldq_retry(struct sl_foldq *q, struct sl_foldq_item *it,
			const char *reason);

/* sl_foldq_forget() - reset the failure count of a key. */
void sl_foldq_forget(struct sl_foldq *q, const char *key, size_t len);

/* sl_foldq_failures() - the failure count of a key (client-go NumRequeues). */
unsigned sl_foldq_failures(struct sl_foldq *q, const char *key, size_t len);

/* The time the earliest waiting key is due, or UINT64_MAX. */
uint64_t sl_foldq_next_due(struct sl_foldq *q);

void sl_foldq_shutdown(struct sl_foldq *q, bool drain);

/**
 * sl_foldq_set_deadline() - when a drain must end, on the queue's clock
 * (UINT64_MAX, the default: never).  retry() during a drain then puts a
 * key off by at most half the time left before @deadline.
 */
void sl_foldq_set_deadline(struct sl_foldq *q, uint64_t deadline);
bool sl_foldq_shutting_down(const struct sl_foldq *q);
/* Shut down and nothing left: queued, waiting (drain), processing, dirty. */
bool sl_foldq_drained(const struct sl_foldq *q);

struct sl_foldq_stats {
	uint64_t adds, folds, dirties, gets, dones, retries, dead;
	uint64_t dropped;		/* KEEP_ALL overflow */
	uint64_t queued, processing, waiting;	/* now */
	uint64_t keys;			/* entries held now */
	uint64_t bytes;			/* entry memory held now */
};

void sl_foldq_stats_get(const struct sl_foldq *q, struct sl_foldq_stats *out);

/* The length of the queue (client-go Len). */
size_t sl_foldq_len(const struct sl_foldq *q);

#endif /* SLUICE_ROUTER_FOLDQ_H */
