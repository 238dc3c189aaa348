/* SPDX-License-Identifier: MIT */
/*
 * The router: route tables, routes, their shards, and feeding events in.
 *
 * An event is matched against the current route table (read inside an
 * SRCU section, so a reload never pauses ingest), and for each route it
 * matches goes to the shard that owns its key: shard = hash % processors.
 * The shard's inbox is a channel, a bounded lock-free MPMC ring that parks
 * the sender while it is full; that is the back-pressure path, since the
 * sender is the input task of a connection, and while it is parked its
 * connection is not read.  A connection routes the events it decoded from
 * one receive buffer together (sl__route_batch): one SRCU section, one
 * clock read and one range of sequence numbers for all of them, and one
 * channel burst per shard, in order, instead of one send per event.
 *
 * Each shard has a pump task pinned to its processor.  The pump alone
 * touches the shard's fold queue: it adds what arrives, hands ready items
 * to the shard's workers over a small channel (small, so keys stay in the
 * queue, where further events fold into them, rather than in the channel),
 * and applies what the workers report: done, or retry with backoff.  So
 * the fold queue, the heart of the router, needs no lock at all.
 *
 * Two locks order the control paths (struct sluice): reloads and shutdown
 * hold r->reload throughout, drains included; the route list is changed
 * and read under r->admin, which is only ever held briefly, so /metrics
 * answers during a drain.  Routes stay listed, stopped, after shutdown
 * until sluice_destroy(), so their figures can still be read.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <mimalloc.h>

#include "core/runtime.h"
#include "router/router_internal.h"

#define PUMP_BATCH 256
#define DEAD_QUEUE 1024

/* ---- sinks: the shared part ---- */

struct sluice_sink *
sluice_sink_new(const struct sluice_sink_ops *ops, void *state)
{
	struct sluice_sink *s = mi_zalloc(sizeof(*s));

	if (!s)
		return NULL;
	s->ops = ops;
	s->state = state;
	atomic_init(&s->refs, 1);
	return s;
}

void
sl__sink_ref(struct sluice_sink *s)
{
	atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void
sl__sink_unref(struct sluice_sink *s)
{
	if (!s ||
	    atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
		return;
	if (s->ops->close)
		s->ops->close(s->state);
	mi_free(s);
}

/* ---- dead letters ---- */

struct dead_item {
	struct sl_event **events;
	unsigned nevents;
	char reason[96];
	unsigned attempts;
};

/* Called by the fold queue inside retry(), on the pump: hand the item to
 * the route's dead-letter task, which may take its time with it. */
static void
route_dead(const struct sl_foldq_item *it, const char *reason, void *arg)
{
	struct shard *sh = arg;
	struct route *rt = sh->route;
	struct dead_item d = {.nevents = it->nevents,
			      .attempts = it->attempts};

	atomic_fetch_add_explicit(&sh->dead, 1, memory_order_relaxed);
	sl__router_log("warn",
		       "msg=\"dead letter\" route=%s key=\"%.*s\" "
		       "attempts=%u reason=\"%s\"",
		       rt->name, (int)it->key_len, it->key, it->attempts,
		       reason);
	if (!rt->dead_letter)
		return;
	d.events = mi_malloc(it->nevents * sizeof(*d.events));
	if (!d.events)
		goto dropped;
	for (unsigned i = 0; i < it->nevents; i++)
		d.events[i] = sl_event_ref(it->events[i]);
	snprintf(d.reason, sizeof(d.reason), "%s", reason);
	if (sl_chan_try_send(rt->dead_ch, &d))
		return;
	for (unsigned i = 0; i < it->nevents; i++)
		sl_event_unref(d.events[i]);
	mi_free(d.events);
dropped:
	atomic_fetch_add_explicit(&rt->r->st.dead_dropped, 1,
				  memory_order_relaxed);
}

static void
dead_task(void *arg)
{
	struct route *rt = arg;
	struct dead_item d;

	while (sl_chan_recv(rt->dead_ch, &d) == 0) {
		struct sl_foldq_item it = {
			.key = sl_event_key(d.events[d.nevents - 1]),
			.key_len = d.events[d.nevents - 1]->key_len,
			.hash = d.events[d.nevents - 1]->hash,
			.events = d.events,
			.nevents = d.nevents,
			.attempts = d.attempts,
		};
		struct sluice_sink *s = rt->dead_letter;
		int r = s->ops->reconcile(s->state, &it, NULL);

		if (r)
			sl__router_log("error",
				       "msg=\"dead-letter sink failed\" "
				       "route=%s err=\"%s\"",
				       rt->name, sl_strerror(r));
		for (unsigned i = 0; i < d.nevents; i++)
			sl_event_unref(d.events[i]);
		mi_free(d.events);
	}
}

/* ---- shards ---- */

/* The fold queue's clock: the pump's round time (see struct shard). */
static uint64_t
shard_clock_now(struct sl_clock *c)
{
	return SL_CONTAINER_OF(c, struct shard, clock)->round_ns;
}

static void
shard_publish(struct shard *sh)
{
	struct sl_foldq_stats st;

	sl_foldq_stats_get(sh->q, &st);
	atomic_store_explicit(&sh->pending, st.queued + st.waiting,
			      memory_order_relaxed);
	atomic_store_explicit(&sh->processing, st.processing,
			      memory_order_relaxed);
	atomic_store_explicit(&sh->waiting, st.waiting, memory_order_relaxed);
	atomic_store_explicit(&sh->adds, st.adds, memory_order_relaxed);
	atomic_store_explicit(&sh->folds, st.folds, memory_order_relaxed);
	atomic_store_explicit(&sh->dirties, st.dirties, memory_order_relaxed);
	atomic_store_explicit(&sh->retries, st.retries, memory_order_relaxed);
	atomic_store_explicit(&sh->key_bytes, st.bytes, memory_order_relaxed);
}

/* Apply a worker's report. */
static void
shard_finish(struct shard *sh, struct shard_done *d)
{
	struct sl_foldq_item *it = d->item;

	if (d->result == 0) {
		atomic_fetch_add_explicit(&sh->reconciles, 1,
					  memory_order_relaxed);
		/* done() drops the entry of a key that never failed; only a
		 * key with failures has a count to reset, which costs a
		 * hash and a lookup. */
		if (it->attempts > 0)
			sl_foldq_forget(sh->q, it->key, it->key_len);
		sl_foldq_done(sh->q, it);
		return;
	}
	atomic_fetch_add_explicit(&sh->failures, 1, memory_order_relaxed);
	sl_foldq_retry(sh->q, it, sl_strerror(d->result));
}

/*
 * Take what the inbox holds, up to PUMP_BATCH events, into the pump's
 * buffer, without parking: the burst receive parks only on an empty
 * channel, and its context (ended from the start) turns that park into
 * an error.
 * Return: the number taken, 0 if none, or -EPIPE once the inbox is
 * closed and empty.
 */
static ssize_t
shard_take(struct shard *sh, struct sl_event **buf)
{
	ssize_t k;

	if (sl_chan_len(sh->in) == 0 && !sl_chan_is_closed(sh->in))
		return 0;
	k = sl_chan_recv_burst_ctx(sh->route->r->poll, sh->in, buf,
				   PUMP_BATCH);
	return k == -EPIPE || k > 0 ? k : 0;
}

/* Add @ev to the queue; false when the queue is at its limit (the event
 * stays with the caller). */
static bool
shard_add(struct shard *sh, struct sl_event *ev)
{
	int r = sl_foldq_add(sh->q, ev);

	if (r == -EAGAIN)
		return false;
	if (r == -ENOMEM) {
		sl__router_log("error",
			       "msg=\"no memory for a key; event dropped\" "
			       "route=%s",
			       sh->route->name);
		sl_event_unref(ev);
	}
	return true;
}

/* The inbox is closed and empty: the queue drains, with retries backing
 * off no further than halfway to the drain's deadline. */
static void
shard_inbox_closed(struct shard *sh)
{
	/* Acquire: pairs with the release in shard_stop(), made before the
	 * close that brought the pump here. */
	sl_foldq_set_deadline(sh->q,
			      atomic_load_explicit(&sh->drain_deadline,
						   memory_order_acquire));
	sl_foldq_shutdown(sh->q, true);
}

/* What the pump leaves undone when it stops: keys still pending in the
 * queue, plus an item and events it held. */
static void
shard_count_left(struct shard *sh, bool held, unsigned events)
{
	struct sl_foldq_stats st;

	sl_foldq_stats_get(sh->q, &st);
	atomic_store_explicit(&sh->left,
			      st.queued + st.waiting + (held ? 1 : 0) + events,
			      memory_order_relaxed);
}

/*
 * The pump.  Each round it reads the clock once (the fold queue's time
 * for the round), applies what the workers reported, takes what is ready
 * in the inbox without waiting (a burst at a time), hands items to idle
 * workers, and then parks in one select on whatever can move next: an
 * event (unless the queue is at its limit, which is how back-pressure
 * reaches the inbox), a report, a free worker for the item in hand, or
 * the time the next waiting key is due.
 */
static void
shard_pump(void *arg)
{
	struct shard *sh = arg;
	struct sl_foldq_item *held = NULL;
	struct sl_event *evs[PUMP_BATCH];
	unsigned ev_at = 0, ev_n = 0, inflight = 0;
	bool in_open = true, have_done = false;
	struct shard_done d;

	for (;;) {
		struct sl_select_case cases[3];
		uint64_t due, timeout;
		bool full = false, abort;
		unsigned taken = 0;
		int n = 0, r;

		sh->round_ns = sl_now_ns();
		if (have_done) {
			have_done = false;
			inflight--;
			shard_finish(sh, &d);
		}
		while (sl_chan_try_recv(sh->done, &d)) {
			inflight--;
			shard_finish(sh, &d);
		}

		for (;;) {
			if (ev_at == ev_n) {
				ssize_t k;

				if (!in_open || taken >= PUMP_BATCH)
					break;
				k = shard_take(sh, evs);
				if (k == -EPIPE) {
					in_open = false;
					shard_inbox_closed(sh);
				}
				if (k <= 0)
					break;
				ev_at = 0;
				ev_n = (unsigned)k;
				taken += ev_n;
			}
			if (!shard_add(sh, evs[ev_at])) {
				full = true; /* keep it for later */
				break;
			}
			ev_at++;
		}

		abort = atomic_load_explicit(&sh->abort, memory_order_acquire);
		while (!abort) {
			if (!held)
				held = sl_foldq_get(sh->q);
			if (!held || !sl_chan_try_send(sh->work, &held))
				break;
			held = NULL;
			inflight++;
		}
		shard_publish(sh);

		/* The inbox closes only once the buffer is empty (it is read
		 * only then), so nothing is left unadded on a drain. */
		if (!in_open &&
		    (abort ? inflight == 0 : sl_foldq_drained(sh->q) && !held))
			break;

		if (in_open && !full && ev_at == ev_n)
			cases[n++] = (struct sl_select_case){
				.ch = sh->in, .dir = SL_SELECT_RECV,
				.elem = &evs[0]};
		cases[n++] = (struct sl_select_case){
			.ch = sh->done, .dir = SL_SELECT_RECV, .elem = &d};
		if (held && !abort)
			cases[n++] = (struct sl_select_case){
				.ch = sh->work, .dir = SL_SELECT_SEND,
				.elem = &held};
		/*
		 * A waiting key that comes due is only worth waking for if
		 * it can be handed out: not while an item waits for a free
		 * worker (it is promoted once one frees up), nor once
		 * aborted.  Waking for it then would find it due again at
		 * once and spin, pinned, starving the workers of this
		 * processor that the pump is waiting on.
		 */
		due = held || abort ? UINT64_MAX : sl_foldq_next_due(sh->q);
		timeout = due == UINT64_MAX ? SL_SELECT_FOREVER
		       : due > sh->round_ns ? due - sh->round_ns
					    : SL_SELECT_POLL;
		/* A stop request closes the inbox, which wakes this select. */
		r = sl_select(cases, (size_t)n, NULL, timeout);
		if (r < 0)
			continue; /* timed out: a waiting key is due */
		if (cases[r].ch == sh->done) {
			have_done = true; /* applied at the round's clock */
		} else if (cases[r].ch == sh->in) {
			if (cases[r].result == -EPIPE) {
				/* Closed and empty: the route stops. */
				in_open = false;
				shard_inbox_closed(sh);
			} else {
				ev_at = 0; /* added next round */
				ev_n = 1;
			}
		} else if (cases[r].ch == sh->work) {
			held = NULL;
			inflight++;
		}
	}
	shard_count_left(sh, held != NULL, ev_n - ev_at);
	if (held)
		sl_foldq_done(sh->q, held);
	for (; ev_at < ev_n; ev_at++)
		sl_event_unref(evs[ev_at]);
	shard_publish(sh);
	sl_chan_close(sh->work);
}

static void
worker_record(struct shard_worker *w, const struct sl_foldq_item *it,
	      int result, uint64_t start, uint64_t end)
{
	uint64_t newest = it->events[it->nevents - 1]->ts_ns;

	sl_mutex_lock(&w->mu);
	sl_histogram_record(&w->duration, end - start);
	if (result == 0 && newest && end > newest)
		sl_histogram_record(&w->latency, end - newest);
	sl_mutex_unlock(&w->mu);
}

static void
shard_worker(void *arg)
{
	struct shard_worker *w = arg;
	struct shard *sh = w->sh;
	struct route *rt = sh->route;
	struct sl_foldq_item *it;

	while (sl_chan_recv(sh->work, &it) == 0) {
		struct sluice_sink *s;
		struct shard_done d = {.item = it};
		uint64_t start = sl_now_ns(), end;
		uint32_t idx;

		atomic_store_explicit(&w->busy_since, start,
				      memory_order_relaxed);
		/*
		 * The read-side section covers loading the sink and taking a
		 * reference, not the reconcile: a reconcile may wait on its
		 * peer for as long as the sink's timeout, and a section that
		 * long would hold up every grace period (a reload, and a
		 * shutdown before its deadline can act).  A sink replaced
		 * meanwhile stays open on this reference until it returns.
		 */
		idx = sl_srcu_read_lock(&rt->r->srcu);
		s = atomic_load(&rt->sink);
		sl__sink_ref(s);
		sl_srcu_read_unlock(&rt->r->srcu, idx);
		d.result = s->ops->reconcile(s->state, it, rt->ctx);
		sl__sink_unref(s);

		end = sl_now_ns();
		atomic_store_explicit(&w->busy_since, 0, memory_order_relaxed);
		worker_record(w, it, d.result, start, end);

		/* The done channel is as deep as there are workers, and each
		 * worker has at most one report out: this never parks long. */
		sl_chan_send(sh->done, &d);

		/*
		 * Ingest before the next reconcile: let the tasks waiting on
		 * this processor (connections decoding, the pump adding) run
		 * first, so the keys still queued take in the events already
		 * received and each reconcile delivers a state that is as
		 * new as it can be.  Without it a worker that always finds
		 * work runs reconcile after reconcile of states a moment
		 * from being stale, which doubled the reconciles per event
		 * and cost more CPU than the yields do (measured with
		 * tools/bench/run-router).  With nothing else runnable, the
		 * yield returns at once.
		 */
		sl_task_yield();
	}
}

static int
shard_start(struct route *rt, struct shard *sh, unsigned proc)
{
	struct sl_foldq_opts fo = rt->cfg.fold;
	struct sl_task_opts pump_opts = {
		.name = "pump", .proc = (int)proc, .pinned = true};
	struct sl_task_opts wopts = {.name = "worker", .proc = (int)proc};
	unsigned nw = rt->cfg.workers ? rt->cfg.workers : 4;
	int r;

	sh->route = rt;
	sh->proc = proc;
	atomic_init(&sh->drain_deadline, UINT64_MAX);
	/* A queue given no clock of its own reads the pump's round time:
	 * one clock read per round instead of one per key queued. */
	if (!fo.clock) {
		sh->clock.now = shard_clock_now;
		sh->round_ns = sl_now_ns();
		fo.clock = &sh->clock;
	}
	fo.dead = route_dead;
	fo.dead_arg = sh;
	sh->q = sl_foldq_create(&fo);
	sh->in = sl_chan_create(sizeof(struct sl_event *),
				rt->r->opts.shard_inbox);
	sh->work = sl_chan_create(sizeof(struct sl_foldq_item *), nw);
	sh->done = sl_chan_create(sizeof(struct shard_done), nw);
	sh->workers = mi_calloc(nw, sizeof(*sh->workers));
	if (!sh->q || !sh->in || !sh->work || !sh->done || !sh->workers)
		return -ENOMEM;
	r = sl_task_spawn(shard_pump, sh, &pump_opts, &sh->pump);
	if (r)
		return r;
	for (unsigned i = 0; i < nw; i++) {
		struct shard_worker *w = &sh->workers[i];

		w->sh = sh;
		sl_mutex_init(&w->mu);
		sl_histogram_reset(&w->latency);
		sl_histogram_reset(&w->duration);
		r = sl_task_spawn(shard_worker, w, &wopts, &w->task);
		if (r)
			return r;
		sh->nworkers++;
	}
	return 0;
}

/*
 * Stop a shard: close its inbox; the pump drains the queue (or, once
 * aborted, only waits for the items in flight) and closes the work channel,
 * which ends the workers.  @ctx bounds the drain: when it ends, the shard
 * is aborted.
 */
static int
shard_stop(struct shard *sh, struct sl_context *ctx)
{
	int rc = 0;

	/* Release: pairs with the acquire in shard_inbox_closed(). */
	if (ctx)
		atomic_store_explicit(&sh->drain_deadline,
				      sl_context_deadline(ctx),
				      memory_order_release);
	if (sh->in)
		sl_chan_close(sh->in);
	if (sh->pump && sl_task_join_ctx(ctx, sh->pump) == 0) {
		sh->pump = NULL;
	} else if (sh->pump) {
		rc = -ETIMEDOUT;
		atomic_store_explicit(&sh->abort, true, memory_order_release);
		sl_context_cancel(sh->route->ctx);
		/* Wake the pump if it waits for a free worker. */
		sl_chan_close(sh->in);
		sl_task_join(sh->pump);
		sh->pump = NULL;
	} else if (sh->work) {
		sl_chan_close(sh->work);
	}
	/* nworkers stays: metrics read the workers' figures until the
	 * route is freed. */
	for (unsigned i = 0; i < sh->nworkers; i++) {
		sl_task_join(sh->workers[i].task);
		sh->workers[i].task = NULL;
	}
	return rc;
}

static void
shard_free(struct shard *sh)
{
	struct sl_event *ev;
	struct shard_done d;

	/* Only after a forced stop is anything left here. */
	if (sh->in)
		while (sl_chan_try_recv(sh->in, &ev))
			sl_event_unref(ev);
	if (sh->done)
		while (sl_chan_try_recv(sh->done, &d))
			sl_foldq_done(sh->q, d.item);
	if (sh->q)
		sl_foldq_destroy(sh->q);
	if (sh->in)
		sl_chan_destroy(sh->in);
	if (sh->work)
		sl_chan_destroy(sh->work);
	if (sh->done)
		sl_chan_destroy(sh->done);
	mi_free(sh->workers);
}

/* ---- routes ---- */

static char *
dup_or_null(const char *s)
{
	return s ? mi_strdup(s) : NULL;
}

static void
route_free(struct route *rt)
{
	for (unsigned i = 0; i < rt->nshards; i++)
		shard_free(&rt->shards[i]);
	if (rt->dead_ch)
		sl_chan_destroy(rt->dead_ch);
	if (rt->ctx)
		sl_context_release(rt->ctx);
	sl__sink_unref(atomic_load(&rt->sink));
	sl__sink_unref(rt->dead_letter);
	mi_free(rt->shards);
	mi_free(rt->name);
	mi_free(rt->kind);
	mi_free(rt->key_prefix);
	mi_free(rt);
}

/*
 * Stop a route's tasks within @ctx (NULL: drain fully).  Its memory stays,
 * so its figures can still be read until route_free().
 * Return: 0, or -ETIMEDOUT if @ctx ended first.
 */
static int
route_halt(struct route *rt, struct sl_context *ctx)
{
	int rc = 0;

	if (rt->stopped)
		return 0;
	for (unsigned i = 0; i < rt->nshards; i++)
		if (shard_stop(&rt->shards[i], ctx))
			rc = -ETIMEDOUT;
	if (rt->dead_ch)
		sl_chan_close(rt->dead_ch);
	if (rt->dead_task)
		sl_task_join(rt->dead_task);
	rt->dead_task = NULL;
	rt->stopped = true;
	return rc;
}

/* Keys a stopped route left neither reconciled nor dead-lettered. */
static uint64_t
route_left(const struct route *rt)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < rt->nshards; i++)
		n += atomic_load_explicit(&rt->shards[i].left,
					  memory_order_relaxed);
	return n;
}

/* Stop a route within @ctx (NULL: drain fully), and free it. */
static void
route_stop(struct route *rt, struct sl_context *ctx)
{
	route_halt(rt, ctx);
	route_free(rt);
}

/* Abort a route's shards: they stop handing out work at once. */
static void
route_abort(struct route *rt)
{
	for (unsigned i = 0; i < rt->nshards; i++)
		atomic_store_explicit(&rt->shards[i].abort, true,
				      memory_order_release);
	if (rt->ctx)
		sl_context_cancel(rt->ctx);
}

static int
route_start(struct sluice *r, const struct sluice_route *cfg,
	    struct route **out)
{
	struct route *rt = mi_zalloc(sizeof(*rt));
	int err = -ENOMEM;

	if (!rt)
		return -ENOMEM;
	rt->r = r;
	rt->cfg = *cfg;
	rt->name = dup_or_null(cfg->name);
	rt->kind = dup_or_null(cfg->kind);
	rt->key_prefix = dup_or_null(cfg->key_prefix);
	rt->cfg.name = rt->name;
	rt->cfg.kind = rt->kind;
	rt->cfg.key_prefix = rt->key_prefix;
	atomic_init(&rt->sink, cfg->sink);
	if (cfg->sink)
		sl__sink_ref(cfg->sink);
	rt->dead_letter = cfg->dead_letter;
	if (rt->dead_letter)
		sl__sink_ref(rt->dead_letter);
	rt->nshards = r->nprocs;
	rt->shards = mi_calloc(rt->nshards, sizeof(*rt->shards));
	if (!rt->name || !rt->shards || !cfg->sink)
		goto fail;
	err = sl_context_with_cancel(sl_context_background(), &rt->ctx);
	if (err)
		goto fail;
	err = -ENOMEM;
	if (rt->dead_letter) {
		rt->dead_ch = sl_chan_create(sizeof(struct dead_item),
					     DEAD_QUEUE);
		if (!rt->dead_ch)
			goto fail;
		err = sl_task_spawn(dead_task, rt,
				    &(struct sl_task_opts){.name = "dead-letter",
							   .proc = -1},
				    &rt->dead_task);
		if (err)
			goto fail;
	}
	for (unsigned i = 0; i < rt->nshards; i++) {
		err = shard_start(rt, &rt->shards[i], i);
		if (err)
			goto fail;
	}
	*out = rt;
	return 0;
fail:
	if (!cfg->sink)
		err = -EINVAL;
	route_abort(rt);
	route_stop(rt, NULL);
	return err;
}

static struct route *
route_find(struct sluice *r, const char *name)
{
	for (struct route *rt = r->routes; rt; rt = rt->next)
		if (!strcmp(rt->name, name))
			return rt;
	return NULL;
}

static void
table_free(struct table *t)
{
	if (!t)
		return;
	sl_route_table_free(t->rt);
	mi_free(t->routes);
	mi_free(t);
}

/* Relink the route list in @t's order, taking out the routes @t no
 * longer names, returned as a list of their own.  Under r->admin. */
static struct route *
routes_relink(struct sluice *r, const struct table *t)
{
	struct route *gone = NULL, **tail = &r->routes;

	for (struct route *rt = r->routes, *next; rt; rt = next) {
		bool named = false;

		next = rt->next;
		for (size_t i = 0; i < t->n && !named; i++)
			named = t->routes[i] == rt;
		if (!named) {
			rt->next = gone;
			gone = rt;
		}
	}
	for (size_t i = 0; i < t->n; i++) {
		struct route *rt = t->routes[i];
		bool seen = false;

		/* A route named by two rules is listed once. */
		for (size_t j = 0; j < i && !seen; j++)
			seen = t->routes[j] == rt;
		if (seen)
			continue;
		*tail = rt;
		tail = &rt->next;
	}
	*tail = NULL;
	return gone;
}

int
sluice_set_routes(struct sluice *r, const struct sluice_route *routes,
		  size_t n, char *err, size_t errlen)
{
	struct sl_route_rule *rules;
	struct route **made = NULL, *gone = NULL;
	struct sluice_sink **old_sinks;
	struct table *t = NULL, *old;
	int rc = 0;

	rules = mi_calloc(n ? n : 1, sizeof(*rules));
	old_sinks = mi_calloc(n ? n : 1, sizeof(*old_sinks));
	if (!rules || !old_sinks) {
		rc = -ENOMEM;
		goto early;
	}
	for (size_t i = 0; i < n; i++) {
		rules[i] = (struct sl_route_rule){
			.name = routes[i].name,
			.how = routes[i].match,
			.kind = routes[i].kind,
			.key_prefix = routes[i].key_prefix,
			.is_default = routes[i].is_default,
		};
		if (!routes[i].sink) {
			snprintf(err, errlen, "route %s: no sink",
				 routes[i].name ? routes[i].name : "(unnamed)");
			rc = -EINVAL;
			goto early;
		}
	}

	/* Only reloads and shutdown change the route list, all under
	 * r->reload, so it can be read here without r->admin. */
	sl_mutex_lock(&r->reload);
	if (atomic_load(&r->stopping)) {
		rc = -ESHUTDOWN;
		goto out;
	}
	t = mi_zalloc(sizeof(*t));
	made = mi_calloc(n ? n : 1, sizeof(*made));
	if (!t || !made) {
		rc = -ENOMEM;
		goto out;
	}
	t->rt = sl_route_table_build(rules, n, err, errlen);
	if (!t->rt) {
		rc = -EINVAL;
		goto out;
	}
	t->n = n;
	t->routes = mi_calloc(n ? n : 1, sizeof(*t->routes));
	if (!t->routes) {
		rc = -ENOMEM;
		goto out;
	}

	/* Start the new routes first, so a failure changes nothing. */
	for (size_t i = 0; i < n; i++) {
		struct route *rt = route_find(r, routes[i].name);

		if (rt) {
			t->routes[i] = rt;
			continue;
		}
		rc = route_start(r, &routes[i], &made[i]);
		if (rc) {
			snprintf(err, errlen, "route %s: %s", routes[i].name,
				 sl_strerror(rc));
			goto out;
		}
		t->routes[i] = made[i];
	}

	/* Kept routes take their new sink.  The route's reference to the
	 * old one is dropped after the grace period below, by when every
	 * worker still reconciling into it holds a reference of its own;
	 * the last of them closes it. */
	for (size_t i = 0; i < n; i++) {
		struct route *rt = t->routes[i];

		if (made[i])
			continue;
		sl__sink_ref(routes[i].sink);
		old_sinks[i] = atomic_exchange(&rt->sink, routes[i].sink);
	}

	/* The list follows the new table's order; routes it no longer
	 * names leave the list (and metrics) now and drain below. */
	sl_mutex_lock(&r->admin);
	gone = routes_relink(r, t);
	sl_mutex_unlock(&r->admin);

	old = atomic_exchange(&r->table, t);
	t = NULL;
	sl_srcu_synchronize(&r->srcu);
	table_free(old);
	for (size_t i = 0; i < n; i++)
		sl__sink_unref(old_sinks[i]);
	while (gone) {
		struct route *rt = gone;

		gone = rt->next;
		route_stop(rt, NULL);
	}
	mi_free(made);
	made = NULL;
out:
	if (made) {
		for (size_t i = 0; i < n; i++)
			if (made[i]) {
				route_abort(made[i]);
				route_stop(made[i], NULL);
			}
		mi_free(made);
	}
	table_free(t);
	sl_mutex_unlock(&r->reload);
early:
	mi_free(old_sinks);
	mi_free(rules);
	for (size_t i = 0; i < n; i++)
		sl__sink_unref(routes[i].sink); /* the caller's reference */
	return rc;
}

/* ---- feeding ---- */

/*
 * Send @e, stamped, to every route of @t it matches, taking the caller's
 * reference.  Inside the caller's SRCU section.
 * Return: the number of routes it went to (0: unmatched), or the error
 * that stopped it going anywhere.
 */
static int
route_one(struct sluice *r, struct sl_context *ctx, struct table *t,
	  struct sl_event *e)
{
	uint32_t small[16], *matches = small;
	size_t n, sent = 0;
	int rc = 0;

	n = t ? sl_route_match(t->rt, sl_event_kind(e), e->kind_len,
			       sl_event_key(e), e->key_len, matches,
			       SL_ARRAY_SIZE(small))
	      : 0;
	if (n > SL_ARRAY_SIZE(small)) {
		/* Rare: more routes than the stack array holds. */
		matches = mi_malloc(n * sizeof(*matches));
		if (matches)
			sl_route_match(t->rt, sl_event_kind(e), e->kind_len,
				       sl_event_key(e), e->key_len, matches,
				       n);
		else {
			sl__router_log("error",
				       "msg=\"no memory for matches; event "
				       "goes to the first %zu routes only\"",
				       SL_ARRAY_SIZE(small));
			n = SL_ARRAY_SIZE(small);
			matches = small;
		}
	}
	if (n == 0) {
		atomic_fetch_add_explicit(&r->st.unmatched, 1,
					  memory_order_relaxed);
		sl_event_unref(e);
	}
	for (size_t i = 0; i < n; i++) {
		struct route *rt = t->routes[matches[i]];
		struct shard *sh = &rt->shards[e->hash % rt->nshards];
		struct sl_event *ref = i + 1 < n ? sl_event_ref(e) : e;

		rc = sl_chan_send_ctx(ctx, sh->in, &ref);
		if (rc) {
			/* A route stopping under us (-EPIPE) or the caller
			 * giving up: the event goes no further there. */
			sl_event_unref(ref);
			if (i + 1 < n)
				continue;
			break;
		}
		sent++;
	}
	if (matches != small)
		mi_free(matches);
	return sent || !n ? (int)sent : (rc ? rc : -EPIPE);
}

int
sl__route_event(struct sluice *r, struct sl_context *ctx, struct sl_event *e)
{
	uint32_t idx;
	int rc;

	e->ts_ns = sl_now_ns();
	e->seq = atomic_fetch_add_explicit(&r->seq, 1, memory_order_relaxed);
	idx = sl_srcu_read_lock(&r->srcu);
	rc = route_one(r, ctx, atomic_load(&r->table), e);
	sl_srcu_read_unlock(&r->srcu, idx);
	if (rc > 0)
		atomic_fetch_add_explicit(&r->st.ingested, 1,
					  memory_order_relaxed);
	return rc;
}

/* The events of a batch bound for one shard, sent in one burst. */
struct stage {
	struct shard *sh;
	unsigned n;
	uint8_t from[SL__ROUTE_BATCH];	/* each event's place in the batch */
	struct sl_event *ev[SL__ROUTE_BATCH];
};

/* Shards one batch fills at a time; more are flushed in turn. */
#define STAGES 4

_Static_assert(SL__ROUTE_BATCH <= 256, "stage.from holds a batch index");

/* Send what @st holds in one burst; mark in @went the events it sent. */
static int
stage_flush(struct sl_context *ctx, struct stage *st, bool *went)
{
	ssize_t k = sl_chan_send_burst_ctx(ctx, st->sh->in, st->ev, st->n);
	unsigned sent = k > 0 ? (unsigned)k : 0;
	int rc = 0;

	for (unsigned i = 0; i < sent; i++)
		went[st->from[i]] = true;
	if (sent < st->n) {
		/* The context ended or the route stopped part-way. */
		rc = k < 0 ? (int)k : ctx && sl_context_err(ctx)
					 ? sl_context_err(ctx)
					 : -EPIPE;
		for (unsigned i = sent; i < st->n; i++)
			sl_event_unref(st->ev[i]);
	}
	st->n = 0;
	return rc;
}

static int
stages_flush(struct sl_context *ctx, struct stage *st, unsigned *nst,
	     bool *went)
{
	int rc = 0;

	for (unsigned i = 0; i < *nst; i++) {
		int r = stage_flush(ctx, &st[i], went);

		if (r && !rc)
			rc = r;
	}
	*nst = 0;
	return rc;
}

/* The stage of @sh, opened (after flushing the others if all are in
 * use) if there is none yet. */
static struct stage *
stage_for(struct sl_context *ctx, struct stage *st, unsigned *nst,
	  struct shard *sh, bool *went, int *rc)
{
	int r;

	for (unsigned i = 0; i < *nst; i++)
		if (st[i].sh == sh)
			return &st[i];
	if (*nst == STAGES) {
		r = stages_flush(ctx, st, nst, went);
		if (r && !*rc)
			*rc = r;
	}
	st[*nst].sh = sh;
	st[*nst].n = 0;
	return &st[(*nst)++];
}

int
sl__route_batch(struct sluice *r, struct sl_context *ctx,
		struct sl_event **ev, size_t n, size_t *ingested)
{
	struct stage st[STAGES];
	bool went[SL__ROUTE_BATCH] = {false};
	uint64_t now = sl_now_ns(), seq;
	uint32_t matches[8], idx;
	size_t unmatched = 0, count = 0;
	unsigned nst = 0;
	struct table *t;
	int rc = 0, r2;

	assert(n <= SL__ROUTE_BATCH);
	seq = atomic_fetch_add_explicit(&r->seq, n, memory_order_relaxed);
	idx = sl_srcu_read_lock(&r->srcu);
	t = atomic_load(&r->table);
	for (size_t i = 0; i < n; i++) {
		struct sl_event *e = ev[i];
		size_t m;

		e->ts_ns = now;
		e->seq = seq + i;
		m = t ? sl_route_match(t->rt, sl_event_kind(e), e->kind_len,
				       sl_event_key(e), e->key_len, matches,
				       SL_ARRAY_SIZE(matches))
		      : 0;
		if (m == 0) {
			unmatched++;
			sl_event_unref(e);
			continue;
		}
		if (m > SL_ARRAY_SIZE(matches)) {
			/* Many routes: what is staged goes first, to keep
			 * each shard's order, then this event on its own. */
			r2 = stages_flush(ctx, st, &nst, went);
			if (r2 && !rc)
				rc = r2;
			r2 = route_one(r, ctx, t, e);
			if (r2 > 0)
				went[i] = true;
			else if (r2 < 0 && !rc)
				rc = r2;
			continue;
		}
		for (size_t j = 0; j < m; j++) {
			struct route *rt = t->routes[matches[j]];
			struct shard *sh = &rt->shards[e->hash % rt->nshards];
			struct stage *s = stage_for(ctx, st, &nst, sh, went,
						    &rc);

			s->from[s->n] = (uint8_t)i;
			s->ev[s->n++] = j + 1 < m ? sl_event_ref(e) : e;
		}
	}
	r2 = stages_flush(ctx, st, &nst, went);
	if (r2 && !rc)
		rc = r2;
	sl_srcu_read_unlock(&r->srcu, idx);

	for (size_t i = 0; i < n; i++)
		count += went[i];
	if (unmatched)
		atomic_fetch_add_explicit(&r->st.unmatched, unmatched,
					  memory_order_relaxed);
	if (count)
		atomic_fetch_add_explicit(&r->st.ingested, count,
					  memory_order_relaxed);
	*ingested = count;
	return rc;
}

int
sluice_feed_event(struct sluice *r, struct sl_context *ctx, struct sl_event *e)
{
	if (atomic_load_explicit(&r->stopping, memory_order_relaxed)) {
		sl_event_unref(e);
		return -ESHUTDOWN;
	}
	return sl__route_event(r, ctx, e);
}

int
sluice_feed_batch(struct sluice *r, struct sl_context *ctx,
		  struct sl_event **ev, size_t n, size_t *routed)
{
	size_t done = 0, total = 0;
	int rc = 0;

	while (done < n && !rc) {
		size_t k = n - done < SL__ROUTE_BATCH ? n - done
						       : SL__ROUTE_BATCH;
		size_t went = 0;

		if (atomic_load_explicit(&r->stopping, memory_order_relaxed)) {
			rc = -ESHUTDOWN;
			break;
		}
		rc = sl__route_batch(r, ctx, ev + done, k, &went);
		total += went;
		done += k;
	}
	/* What a failure left unsent is the caller's no more. */
	for (; done < n; done++)
		sl_event_unref(ev[done]);
	if (routed)
		*routed = total;
	return rc;
}

int
sluice_feed(struct sluice *r, struct sl_context *ctx, const char *kind,
	    size_t kind_len, const char *key, size_t key_len,
	    const void *payload, size_t payload_len)
{
	struct sl_event *e;

	if (!kind_len || !key_len || kind_len > r->opts.limits.kind_max ||
	    key_len > r->opts.limits.key_max ||
	    payload_len > r->opts.limits.payload_max)
		return kind_len && key_len ? -EMSGSIZE : -EINVAL;
	e = sl_event_new(kind, kind_len, key, key_len, payload, payload_len);
	if (!e)
		return -ENOMEM;
	return sluice_feed_event(r, ctx, e);
}

/* ---- life cycle ---- */

int
sluice_create(const struct sluice_opts *opts, struct sluice **out)
{
	struct sluice *r;
	int rc;

	if (!sl_runtime_nprocs())
		return -EPERM;
	r = mi_zalloc(sizeof(*r));
	if (!r)
		return -ENOMEM;
	sl_wire_limits_default(&r->opts.limits);
	r->opts.max_malformed = 100;
	r->opts.shard_inbox = 4096;
	if (opts) {
		r->opts = *opts;
		if (!r->opts.limits.line_max)
			sl_wire_limits_default(&r->opts.limits);
		if (!r->opts.shard_inbox)
			r->opts.shard_inbox = 4096;
	}
	r->nprocs = sl_runtime_nprocs();
	sl_mutex_init(&r->reload);
	sl_mutex_init(&r->admin);
	rc = sl_context_with_cancel(sl_context_background(), &r->poll);
	if (rc) {
		mi_free(r);
		return rc;
	}
	sl_context_cancel(r->poll);
	rc = sl_srcu_init(&r->srcu);
	if (rc) {
		sl_context_release(r->poll);
		mi_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

/* Readable at any time, after shutdown too: the routes' figures stay
 * until sluice_destroy(). */
void
sluice_stats_get(struct sluice *r, struct sluice_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->ingested = atomic_load(&r->st.ingested);
	out->unmatched = atomic_load(&r->st.unmatched);
	out->malformed = atomic_load(&r->st.malformed);
	sl_mutex_lock(&r->admin);
	for (struct route *rt = r->routes; rt; rt = rt->next)
		for (unsigned i = 0; i < rt->nshards; i++) {
			struct shard *sh = &rt->shards[i];

			out->reconciles += atomic_load(&sh->reconciles);
			out->failures += atomic_load(&sh->failures);
			out->dead += atomic_load(&sh->dead);
			out->folds += atomic_load(&sh->folds);
			out->pending += atomic_load(&sh->pending);
			out->processing += atomic_load(&sh->processing);
			out->left += atomic_load(&sh->left);
		}
	sl_mutex_unlock(&r->admin);
}

/*
 * Stop every route, within @ctx, and count the keys they left.  The
 * routes stay listed (their figures readable) and r->admin is not held
 * meanwhile, so metrics keep answering through a drain; r->reload, held
 * by the caller, keeps the list as it is.
 */
static uint64_t
routes_halt(struct sluice *r, bool drain, struct sl_context *ctx)
{
	uint64_t left = 0;

	if (!drain)
		for (struct route *rt = r->routes; rt; rt = rt->next)
			route_abort(rt);
	for (struct route *rt = r->routes; rt; rt = rt->next) {
		route_halt(rt, ctx);
		left += route_left(rt);
	}
	return left;
}

int
sluice_shutdown(struct sluice *r, bool drain, uint64_t deadline)
{
	struct sl_context *ctx = NULL;
	struct table *t;
	uint64_t left;

	sl_mutex_lock(&r->reload);
	if (atomic_load(&r->stopping)) {
		sl_mutex_unlock(&r->reload);
		return 0;
	}
	sl_mutex_lock(&r->admin);
	atomic_store(&r->stopping, true);
	sl_mutex_unlock(&r->admin);

	/* No new events: stop the inputs, then wait out the feeders. */
	sl__inputs_stop(r);
	t = atomic_exchange(&r->table, NULL);
	sl_srcu_synchronize(&r->srcu);
	table_free(t);

	/*
	 * Closing a shard's inbox makes its pump drain the queue and exit
	 * once nothing is left; a reconcile that fails meanwhile is retried
	 * with backoff, no further than halfway to the deadline each time.
	 * Without drain, or once the deadline passes, the shards are
	 * aborted: they hand out nothing more and exit when the reconciles
	 * in flight return (their context is cancelled).  What is left then
	 * was neither reconciled nor dead-lettered, and is reported.
	 */
	if (deadline != UINT64_MAX &&
	    sl_context_with_deadline(sl_context_background(), deadline,
				     &ctx))
		ctx = NULL;
	left = routes_halt(r, drain, ctx);
	if (ctx)
		sl_context_release(ctx);
	sl_mutex_unlock(&r->reload);

	if (left && drain)
		sl__router_log("warn",
			       "msg=\"drain deadline passed; keys left "
			       "neither reconciled nor dead-lettered\" "
			       "keys_left=%llu",
			       (unsigned long long)left);
	else if (left)
		sl__router_log("info",
			       "msg=\"stopped without drain; pending keys "
			       "dropped\" keys_left=%llu",
			       (unsigned long long)left);
	return drain && left ? -ETIMEDOUT : 0;
}

void
sluice_destroy(struct sluice *r)
{
	if (!r)
		return;
	if (!atomic_load(&r->stopping))
		sluice_shutdown(r, false, 0);
	while (r->routes) {
		struct route *rt = r->routes;

		r->routes = rt->next;
		route_free(rt);
	}
	sl__inputs_free(r);
	sl_srcu_fini(&r->srcu);
	sl_context_release(r->poll);
	mi_free(r);
}
