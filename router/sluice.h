/* SPDX-License-Identifier: MIT */
/*
 * Sluice as a library: embed the router in a C program.
 *
 * A router runs inside the task runtime (core/runtime.h): create it from a
 * task, give it routes (each with a sink) and inputs, or feed it events
 * directly, and shut it down before the runtime ends.  sluiced is this
 * API plus a configuration file and an admin endpoint.
 *
 *	struct sluice *r;
 *	struct sluice_route route = {
 *		.name = "orders", .match = SL_MATCH_PREFIX, .kind = "order.",
 *		.sink = sluice_sink_callback(reconcile, state),
 *	};
 *	sluice_create(NULL, &r);
 *	sluice_set_routes(r, &route, 1, err, sizeof(err));
 *	sluice_feed(r, NULL, "order.paid", 10, "o-17", 4, "v3", 2);
 *	...
 *	sluice_shutdown(r, true, sl_now_ns() + 5 * SL_NSEC_PER_SEC);
 *	sluice_destroy(r);
 */
#ifndef SLUICE_ROUTER_SLUICE_H
#define SLUICE_ROUTER_SLUICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "router/event.h"
#include "router/foldq.h"
#include "router/route.h"
#include "router/wire.h"

struct sl_context;
struct sluice;
struct sluice_sink;

/* ---- sinks ---- */

/*
 * What a reconcile returned.  Anything but SLUICE_OK is retried with
 * backoff, up to the route's max_attempts, then dead-lettered.
 */
enum {
	SLUICE_OK = 0,
	/* A negative errno value: failed, reason sl_strerror().  -ETIMEDOUT
	 * means the outcome is unknown (it may have been applied); it is
	 * retried like a failure, never counted as delivered. */
};

struct sluice_sink_ops {
	const char *type;	/* "null", "tcp", ... for metrics */
	/*
	 * Deliver the latest state of one key.  Called from a worker task of
	 * the key's shard; one call per key at a time.  Returns 0 or a
	 * negative errno value.  Must return when @ctx ends.
	 */
	int (*reconcile)(void *state, const struct sl_foldq_item *item,
			 struct sl_context *ctx);
	/* Flush and release; called once, after the last reconcile. */
	void (*close)(void *state);
};

/* sluice_sink_new() - a sink from its operations and state. */
struct sluice_sink *sluice_sink_new(const struct sluice_sink_ops *ops,
				    void *state);

/* sluice_sink_callback() - a sink that calls @fn for every reconcile. */
struct sluice_sink *sluice_sink_callback(
	int (*fn)(void *arg, const struct sl_foldq_item *item,
		  struct sl_context *ctx),
	void *arg);

/* Built-in sinks (router/sinks.c).  Each returns NULL with errno set. */
struct sluice_sink *sluice_sink_null(void);
/* Lines (sl_line_encode) to a FILE, buffered, flushed after each batch. */
struct sluice_sink *sluice_sink_stdout(void);

struct sluice_file_sink_opts {
	const char *path;
	/* Sync policy: each batch (true) or never (false: the kernel
	 * writes back in its own time). */
	bool sync;
	/* Start a new file (path.1, path.2, ...) past this size; 0: never. */
	uint64_t rotate_bytes;
	bool frames;		/* frame format instead of lines */
};
struct sluice_sink *sluice_sink_file(const struct sluice_file_sink_opts *o);

struct sluice_tcp_sink_opts {
	const char *addr;	/* host:port or unix:/path */
	unsigned conns;		/* connections; a key always uses the same */
	bool frames;		/* frame format instead of lines */
	uint64_t timeout_ns;	/* per write; past it the outcome is unknown */
	uint64_t backoff_min_ns, backoff_max_ns;	/* reconnects */
};
struct sluice_sink *sluice_sink_tcp(const struct sluice_tcp_sink_opts *o);

/* A plug-in: a shared object exporting sluice_plugin_init, _reconcile
 * and _close (router/plugin.h). */
struct sluice_sink *sluice_sink_plugin(const char *path, const char *config);

/* ---- routes ---- */

struct sluice_route {
	const char *name;
	enum sl_match match;
	const char *kind;
	const char *key_prefix;
	bool is_default;

	struct sl_foldq_opts fold;	/* policy, backoff, attempts, limits */
	unsigned workers;		/* per processor (default 4) */
	struct sluice_sink *sink;	/* the route takes it */
	/* Where items that used up their attempts go (NULL: logged and
	 * counted only).  Not owned by the route: may be shared. */
	struct sluice_sink *dead_letter;
};

/**
 * sluice_set_routes() - install a route table, replacing the current one.
 *
 * Routes whose name is in both tables keep their queues, keys and workers
 * (their new sink and options replace the old at once; queued keys are
 * not lost); new names start; names no longer present drain and stop.
 * Matching switches at once, without a pause: ingest does not stop.  A
 * table that fails validation is refused with the reason in @err and the
 * old one stays.
 */
int sluice_set_routes(struct sluice *r, const struct sluice_route *routes,
		      size_t n, char *err, size_t errlen);

/* ---- the router ---- */

struct sluice_opts {
	struct sl_wire_limits limits;
	/* Close a connection after this many malformed lines or frames
	 * (default 100; 0: never). */
	unsigned max_malformed;
	/* Events queued on their way to a shard before the input waits
	 * (per shard; default 4096). */
	unsigned shard_inbox;
};

int sluice_create(const struct sluice_opts *opts, struct sluice **out);

/**
 * sluice_feed() - route one event, parking while a route it goes to is
 * full.  The bytes are copied.
 * Return: the number of routes it went to (0: unmatched, counted), or a
 * negative errno value (-ESHUTDOWN, -EMSGSIZE, @ctx's error).
 */
int sluice_feed(struct sluice *r, struct sl_context *ctx, const char *kind,
		size_t kind_len, const char *key, size_t key_len,
		const void *payload, size_t payload_len);

/* sluice_feed_event() - route @e, taking the caller's reference. */
int sluice_feed_event(struct sluice *r, struct sl_context *ctx,
		      struct sl_event *e);

/**
 * sluice_feed_batch() - route the @n events at @ev, taking the caller's
 * reference to each, as sluice_feed_event() would one at a time but at a
 * fraction of the cost: every 64 events share one clock read, one look
 * at the route table and one channel burst per shard.  Each shard gets
 * its events in the order given.  Parks while a route is full.
 * @routed: if not NULL, set to how many went to at least one route (the
 * rest were unmatched, and counted so, or not sent).
 * Return: 0, or a negative errno value (-ESHUTDOWN; @ctx's error or
 * -EPIPE when sending stopped part-way); events not sent are released.
 */
int sluice_feed_batch(struct sluice *r, struct sl_context *ctx,
		      struct sl_event **ev, size_t n, size_t *routed);

/* ---- inputs ---- */

enum sluice_input_type {
	SLUICE_INPUT_TCP,
	SLUICE_INPUT_UDP,
	SLUICE_INPUT_UNIX,		/* stream */
	SLUICE_INPUT_UNIX_DGRAM,
};

struct sluice_input {
	const char *name;
	enum sluice_input_type type;
	const char *addr;
	bool frames;			/* frame format (else lines) */
	unsigned max_conns;		/* 0: no cap */
	/* Received bytes one connection may hold before its reader takes
	 * them; past it the input stops receiving from that connection
	 * and TCP closes the sender's window (counted, as pauses, in
	 * sluice_input_paused_total).  Counted in whole receive buffers.
	 * 0: 256 KiB.  Stream inputs only. */
	size_t max_buffered;
};

/* sluice_add_input() - listen and ingest; returns once listening. */
int sluice_add_input(struct sluice *r, const struct sluice_input *in);

/* The address an input is bound to (for port 0), or -ENOENT. */
int sluice_input_addr(struct sluice *r, const char *name, char *buf,
		      size_t len);

/* ---- metrics and shutdown ---- */

/* Prometheus text format, every metric the router keeps. */
void sluice_write_metrics(struct sluice *r, FILE *out);

struct sluice_stats {
	uint64_t ingested;		/* events accepted */
	uint64_t unmatched;
	uint64_t malformed;
	uint64_t reconciles;		/* sink calls that succeeded */
	uint64_t failures;		/* sink calls that failed */
	uint64_t dead;
	uint64_t folds;
	uint64_t pending;		/* keys queued, waiting or dirty */
	uint64_t processing;
	/* After sluice_shutdown(): keys it left neither reconciled nor
	 * dead-lettered (dropped). */
	uint64_t left;
};

/*
 * sluice_stats_get() - the router's counters, summed over its routes.
 * Callable from any task at any time, during a drain and after
 * sluice_shutdown() too (the routes' figures stay until
 * sluice_destroy()); it never waits for a drain or a reload.
 */
void sluice_stats_get(struct sluice *r, struct sluice_stats *out);

/**
 * sluice_shutdown() - stop inputs, then either drain (every accepted event
 * reconciled, or dead-lettered) or stop at once, by @deadline.
 *
 * While draining, a reconcile that fails is retried with the route's
 * backoff as at any other time (and dead-lettered after max_attempts),
 * except that no retry is put off past halfway to @deadline.  When
 * @deadline passes, the shards are aborted: reconciles in flight are
 * cancelled and the keys still pending are dropped, counted in the log
 * (keys_left=N) and in sluice_stats.left.  Metrics and stats keep
 * answering throughout.  @deadline UINT64_MAX drains with no end.
 *
 * Return: 0 when every accepted event was reconciled or dead-lettered (or,
 * without drain, always); -ETIMEDOUT if a drain left keys undone.
 */
int sluice_shutdown(struct sluice *r, bool drain, uint64_t deadline);

void sluice_destroy(struct sluice *r);

#endif /* SLUICE_ROUTER_SLUICE_H */
