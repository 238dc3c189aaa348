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
 * connection is not read.
 *
 * Each shard has a pump task pinned to its processor.  The pump alone
 * touches the shard's fold queue: it adds what arrives, hands ready items
 * to the shard's workers over a small channel (small, so keys stay in the
 * queue, where further events fold into them, rather than in the channel),
 * and applies what the workers report: done, or retry with backoff.  So
 * the fold queue, the heart of the router, needs no lock at all.
 */
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
		sl_foldq_forget(sh->q, it->key, it->key_len);
		sl_foldq_done(sh->q, it);
		return;
	}
	atomic_fetch_add_explicit(&sh->failures, 1, memory_order_relaxed);
	sl_foldq_retry(sh->q, it, sl_strerror(d->result));
}

/*
 * The pump.  Each round it takes what is ready without waiting (reports
 * first, so keys free up; then events), hands items to idle workers, and
 * then parks in one select on whatever can move next: an event (unless
 * the queue is at its limit, which is how back-pressure reaches the
 * inbox), a report, a free worker for the item in hand, or the time the
 * next waiting key is due.
 */
static void
shard_pump(void *arg)
{
	struct shard *sh = arg;
	struct sl_foldq_item *held = NULL;
	struct sl_event *ev = NULL;
	unsigned inflight = 0;
	bool in_open = true;

	for (;;) {
		struct shard_done d;
		struct sl_select_case cases[3];
		uint64_t due, now, timeout;
		bool full = false, abort;
		int n = 0, r;

		while (sl_chan_try_recv(sh->done, &d)) {
			inflight--;
			shard_finish(sh, &d);
		}

		for (int i = 0; in_open && i < PUMP_BATCH; i++) {
			if (!ev && !sl_chan_try_recv(sh->in, &ev))
				break;
			r = sl_foldq_add(sh->q, ev);
			if (r == -EAGAIN) {
				full = true; /* keep @ev for later */
				break;
			}
			ev = NULL;
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

		if (!in_open && (abort ? inflight == 0
				       : sl_foldq_drained(sh->q) && !held))
			break;

		if (in_open && !full && !ev)
			cases[n++] = (struct sl_select_case){
				.ch = sh->in, .dir = SL_SELECT_RECV,
				.elem = &ev};
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
		now = sl_now_ns();
		timeout = due == UINT64_MAX ? SL_SELECT_FOREVER
		       : due > now	    ? due - now
					    : SL_SELECT_POLL;
		/* A stop request closes the inbox, which wakes this select. */
		r = sl_select(cases, (size_t)n, NULL, timeout);
		if (r < 0)
			continue; /* timed out: a waiting key is due */
		if (cases[r].ch == sh->done) {
			inflight--;
			shard_finish(sh, &d);
		} else if (cases[r].ch == sh->in) {
			if (cases[r].result == -EPIPE) {
				/* Closed and empty: the route stops. */
				in_open = false;
				ev = NULL;
				sl_foldq_shutdown(sh->q, true);
			}
			/* else @ev is added next round */
		} else if (cases[r].ch == sh->work) {
			held = NULL;
			inflight++;
		}
	}
	if (held)
		sl_foldq_done(sh->q, held);
	if (ev)
		sl_event_unref(ev);
	shard_publish(sh);
	sl_chan_close(sh->work);
}

static void
shard_worker(void *arg)
{
	struct shard *sh = arg;
	struct route *rt = sh->route;
	struct sl_foldq_item *it;

	while (sl_chan_recv(sh->work, &it) == 0) {
		struct sluice_sink *s;
		struct shard_done d = {.item = it};
		uint64_t start = sl_now_ns(), end, newest;
		uint32_t idx;

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
		newest = it->events[it->nevents - 1]->ts_ns;
		sl_mutex_lock(&rt->hist_mu);
		sl_histogram_record(&rt->duration, end - start);
		if (d.result == 0 && newest && end > newest)
			sl_histogram_record(&rt->latency, end - newest);
		sl_mutex_unlock(&rt->hist_mu);

		/* The done channel is as deep as there are workers, and each
		 * worker has at most one report out: this never parks long. */
		sl_chan_send(sh->done, &d);
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
		r = sl_task_spawn(shard_worker, sh, &wopts, &sh->workers[i]);
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
	for (unsigned i = 0; i < sh->nworkers; i++)
		sl_task_join(sh->workers[i]);
	sh->nworkers = 0;
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

/* Stop a route within @ctx (NULL: drain fully), and free it. */
static int
route_stop(struct route *rt, struct sl_context *ctx)
{
	int rc = 0;

	for (unsigned i = 0; i < rt->nshards; i++)
		if (shard_stop(&rt->shards[i], ctx))
			rc = -ETIMEDOUT;
	if (rt->dead_ch)
		sl_chan_close(rt->dead_ch);
	if (rt->dead_task)
		sl_task_join(rt->dead_task);
	route_free(rt);
	return rc;
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
	sl_mutex_init(&rt->hist_mu);
	sl_histogram_reset(&rt->latency);
	sl_histogram_reset(&rt->duration);
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

int
sluice_set_routes(struct sluice *r, const struct sluice_route *routes,
		  size_t n, char *err, size_t errlen)
{
	struct sl_route_rule *rules;
	struct route **made = NULL, *gone = NULL, **pp;
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

	sl_mutex_lock(&r->admin);
	if (r->stopping) {
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

	/* Link the new routes; unlink those no longer named. */
	for (size_t i = 0; i < n; i++)
		if (made[i] && t->routes[i] == made[i]) {
			made[i]->next = r->routes;
			r->routes = made[i];
		}
	for (pp = &r->routes; *pp;) {
		struct route *rt = *pp;
		bool named = false;

		for (size_t i = 0; i < n && !named; i++)
			named = t->routes[i] == rt;
		if (named) {
			pp = &rt->next;
			continue;
		}
		*pp = rt->next;
		rt->next = gone;
		gone = rt;
	}

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
	sl_mutex_unlock(&r->admin);
early:
	mi_free(old_sinks);
	mi_free(rules);
	for (size_t i = 0; i < n; i++)
		sl__sink_unref(routes[i].sink); /* the caller's reference */
	return rc;
}

/* ---- feeding ---- */

int
sl__route_event(struct sluice *r, struct sl_context *ctx, struct sl_event *e)
{
	uint32_t small[16], *matches = small;
	size_t n, sent = 0;
	struct table *t;
	uint32_t idx;
	int rc = 0;

	e->ts_ns = sl_now_ns();
	e->seq = atomic_fetch_add_explicit(&r->seq, 1, memory_order_relaxed);

	idx = sl_srcu_read_lock(&r->srcu);
	t = atomic_load(&r->table);
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
	if (n == 0)
		atomic_fetch_add_explicit(&r->st.unmatched, 1,
					  memory_order_relaxed);
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
	sl_srcu_read_unlock(&r->srcu, idx);
	if (matches != small)
		mi_free(matches);
	if (n == 0)
		sl_event_unref(e);
	if (sent)
		atomic_fetch_add_explicit(&r->st.ingested, 1,
					  memory_order_relaxed);
	return sent || !n ? (int)sent : (rc ? rc : -EPIPE);
}

int
sluice_feed_event(struct sluice *r, struct sl_context *ctx, struct sl_event *e)
{
	if (r->stopping) {
		sl_event_unref(e);
		return -ESHUTDOWN;
	}
	return sl__route_event(r, ctx, e);
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
	sl_mutex_init(&r->admin);
	rc = sl_srcu_init(&r->srcu);
	if (rc) {
		mi_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

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
		}
	sl_mutex_unlock(&r->admin);
}

int
sluice_shutdown(struct sluice *r, bool drain, uint64_t deadline)
{
	struct sl_context *ctx = NULL;
	struct route *rt;
	struct table *t;
	int rc = 0;

	sl_mutex_lock(&r->admin);
	if (r->stopping) {
		sl_mutex_unlock(&r->admin);
		return 0;
	}
	r->stopping = true;
	sl_mutex_unlock(&r->admin);

	/* No new events: stop the inputs, then wait out the feeders. */
	sl__inputs_stop(r);
	t = atomic_exchange(&r->table, NULL);
	sl_srcu_synchronize(&r->srcu);
	table_free(t);

	/*
	 * Closing a shard's inbox makes its pump drain the queue and exit
	 * once nothing is left.  Without drain, or once the deadline passes,
	 * the shards are aborted: they hand out nothing more and exit when
	 * the reconciles in flight return (their context is cancelled).
	 */
	sl_mutex_lock(&r->admin);
	if (!drain)
		for (rt = r->routes; rt; rt = rt->next)
			route_abort(rt);
	if (deadline != UINT64_MAX &&
	    sl_context_with_deadline(sl_context_background(), deadline,
				     &ctx))
		ctx = NULL;
	while ((rt = r->routes)) {
		r->routes = rt->next;
		if (route_stop(rt, ctx))
			rc = -ETIMEDOUT;
	}
	sl_mutex_unlock(&r->admin);
	if (ctx)
		sl_context_release(ctx);
	return rc;
}

void
sluice_destroy(struct sluice *r)
{
	if (!r)
		return;
	if (!r->stopping)
		sluice_shutdown(r, false, 0);
	sl__inputs_free(r);
	sl_srcu_fini(&r->srcu);
	mi_free(r);
}
