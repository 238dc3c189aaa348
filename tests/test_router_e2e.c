/* SPDX-License-Identifier: MIT */
/*
 * The router end to end, embedded: events in (fed directly, and over TCP
 * connections in both wire formats), folded, reconciled into a callback
 * sink that checks the guarantees:
 *
 *  - every key's final version is reconciled;
 *  - a key is never reconciled by two workers at once;
 *  - a key's reconciles see its versions in order (never an older one
 *    after a newer one).
 *
 * Payloads are decimal versions that rise by one per event of a key.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/chan.h"
#include "core/context.h"
#include "core/sync.h"
#include "core/task.h"
#include "io/net.h"
#include "router/sluice.h"

#include "harness.h"

struct key_state {
	_Atomic uint32_t busy;		/* workers inside reconcile */
	_Atomic uint64_t seen;		/* highest version reconciled */
	_Atomic uint64_t reconciles;
};

struct e2e {
	struct sluice_stats after;	/* read after shutdown */
	unsigned nkeys;
	uint64_t versions;		/* per key */
	struct key_state *keys;
	_Atomic uint64_t overlaps, regressions, reconciles;
	_Atomic uint64_t fail_first;	/* fail this many reconciles */
	struct sluice *r;
	struct sl_chan *finished;	/* a key reached its last version */
	bool frames;
	unsigned conns;
	char addr[64];
};

static unsigned
key_index(const char *key, size_t len)
{
	unsigned v = 0;

	/* Keys are "k<number>". */
	for (size_t i = 1; i < len; i++)
		v = v * 10 + (unsigned)(key[i] - '0');
	return v;
}

static uint64_t
parse_version(const char *p, size_t len)
{
	uint64_t v = 0;

	for (size_t i = 0; i < len; i++)
		v = v * 10 + (uint64_t)(p[i] - '0');
	return v;
}

static int
check_reconcile(void *arg, const struct sl_foldq_item *it,
		struct sl_context *ctx)
{
	struct e2e *t = arg;
	unsigned k = key_index(it->key, it->key_len);
	struct key_state *ks = &t->keys[k];
	const struct sl_event *e = it->events[it->nevents - 1];
	uint64_t v = parse_version(sl_event_payload(e), e->payload_len);
	uint64_t prev;

	(void)ctx;
	if (atomic_fetch_add(&ks->busy, 1) != 0)
		atomic_fetch_add(&t->overlaps, 1);
	sl_task_yield(); /* give an overlapping worker a chance to show */

	for (uint64_t left = atomic_load(&t->fail_first); left;)
		if (atomic_compare_exchange_weak(&t->fail_first, &left,
						 left - 1)) {
			atomic_fetch_sub(&ks->busy, 1);
			return -EIO;
		}
	prev = atomic_load(&ks->seen);
	if (v < prev)
		atomic_fetch_add(&t->regressions, 1);
	else
		atomic_store(&ks->seen, v);
	atomic_fetch_add(&ks->reconciles, 1);
	atomic_fetch_add(&t->reconciles, 1);
	atomic_fetch_sub(&ks->busy, 1);
	if (v == t->versions) {
		unsigned key = k;

		sl_chan_send(t->finished, &key);
	}
	return 0;
}

static void
wait_all_final(struct e2e *t)
{
	unsigned done = 0;
	bool *seen = calloc(t->nkeys, sizeof(*seen));

	/* A key may finish more than once (reconciled again after its last
	 * version); count each key once. */
	while (done < t->nkeys) {
		unsigned k;

		if (sl_chan_recv(t->finished, &k))
			break;
		if (!seen[k]) {
			seen[k] = true;
			done++;
		}
	}
	free(seen);
}

static void
setup_router(struct e2e *t, enum sl_fold_policy policy)
{
	struct sluice_route route = {
		.name = "all",
		.match = SL_MATCH_ANY,
		.is_default = true,
		.workers = 4,
		.fold = {.policy = policy,
			 .backoff_base_ns = SL_NSEC_PER_MSEC,
			 .backoff_cap_ns = 10 * SL_NSEC_PER_MSEC,
			 .retry_rate = 0},
	};
	char err[256] = "";

	route.sink = sluice_sink_callback(check_reconcile, t);
	CHECK_ERR_EQ(sluice_create(NULL, &t->r), 0);
	CHECK_ERR_EQ(sluice_set_routes(t->r, &route, 1, err, sizeof(err)), 0);
	if (err[0])
		fprintf(stderr, "set_routes: %s\n", err);
	t->finished = sl_chan_create(sizeof(unsigned), 1024);
}

static void
teardown_router(struct e2e *t)
{
	CHECK_ERR_EQ(sluice_shutdown(t->r, true, UINT64_MAX), 0);
	sluice_stats_get(t->r, &t->after);
	sluice_destroy(t->r);
	sl_chan_destroy(t->finished);
}

/* ---- fed directly ---- */

struct feeder {
	struct e2e *t;
	unsigned first, step;
};

/* The text of key @k ("k<k>") and of version @v, with their lengths. */
static void
key_version_text(unsigned k, uint64_t v, char key[16], size_t *kl,
		 char val[24], size_t *vl)
{
	*kl = (size_t)snprintf(key, 16, "k%u", k);
	*vl = (size_t)snprintf(val, 24, "%llu", (unsigned long long)v);
}

static void
feed_task(void *arg)
{
	struct feeder *f = arg;
	struct e2e *t = f->t;
	char key[16], val[24];

	for (uint64_t v = 1; v <= t->versions; v++)
		for (unsigned k = f->first; k < t->nkeys; k += f->step) {
			size_t kl, vl;

			key_version_text(k, v, key, &kl, val, &vl);
			CHECK_INT_EQ(sluice_feed(t->r, NULL, "set", 3, key, kl,
						 val, vl),
				     1);
		}
}

static void
direct_main(void *arg)
{
	struct e2e *t = arg;
	struct feeder f[4];
	struct sl_task *tasks[4];

	setup_router(t, SL_FOLD_LATEST);
	for (unsigned i = 0; i < 4; i++) {
		f[i] = (struct feeder){.t = t, .first = i, .step = 4};
		tasks[i] = harness_spawn(feed_task, &f[i], -1);
	}
	for (unsigned i = 0; i < 4; i++)
		harness_join(tasks[i]);
	wait_all_final(t);
	teardown_router(t);
}

static void
check_results(struct e2e *t)
{
	assert_int_equal(atomic_load(&t->overlaps), 0);
	assert_int_equal(atomic_load(&t->regressions), 0);
	for (unsigned k = 0; k < t->nkeys; k++)
		assert_int_equal(atomic_load(&t->keys[k].seen), t->versions);
	/* Folding: far fewer reconciles than events is expected, but never
	 * more than events. */
	assert_true(atomic_load(&t->reconciles) <=
		    (uint64_t)t->nkeys * t->versions);
	/* The routes' figures outlive the shutdown. */
	assert_int_equal(t->after.reconciles, atomic_load(&t->reconciles));
	assert_int_equal(t->after.dead, 0);
	assert_int_equal(t->after.left, 0);
	assert_int_equal(t->after.pending + t->after.processing, 0);
}

static void
test_router_e2e_direct(void **state)
{
	struct e2e t = {.nkeys = 2000, .versions = 50};

	(void)state;
	t.keys = calloc(t.nkeys, sizeof(*t.keys));
	harness_run(2, direct_main, &t);
	check_results(&t);
	free(t.keys);
}

/* ---- fed in batches ---- */

/* Batch sizes for the batch feeders, in turn: single events, sizes
 * around the router's 64-event chunk, and more than two chunks. */
static const size_t batch_sizes[] = {1, 63, 64, 65, 150, 7};

struct batch_result {
	_Atomic uint64_t routed, calls_failed;
	int after_shutdown;
	size_t routed_after_shutdown;
};

struct batch_feeder {
	struct e2e *t;
	struct batch_result *res;
	unsigned first, step;
};

static void
batch_feed_task(void *arg)
{
	struct batch_feeder *f = arg;
	struct e2e *t = f->t;
	struct sl_event *batch[150];
	size_t n = 0, want = batch_sizes[f->first % 6], turn = f->first;
	char key[16], val[24];

	for (uint64_t v = 1; v <= t->versions; v++)
		for (unsigned k = f->first; k < t->nkeys; k += f->step) {
			bool last = v == t->versions && k + f->step >= t->nkeys;
			size_t kl, vl, routed = 0;

			key_version_text(k, v, key, &kl, val, &vl);
			batch[n] = sl_event_new("set", 3, key, kl, val, vl);
			CHECK_UINT_EQ(batch[n] != NULL, 1);
			if (++n < want && !last)
				continue;
			if (sluice_feed_batch(t->r, NULL, batch, n, &routed))
				atomic_fetch_add(&f->res->calls_failed, 1);
			atomic_fetch_add(&f->res->routed, routed);
			n = 0;
			want = batch_sizes[++turn % 6];
		}
}

static void
batch_main(void *arg)
{
	struct batch_feeder *f = arg;
	struct e2e *t = f[0].t;
	struct sl_task *tasks[3];
	struct sl_event *late[2];

	setup_router(t, SL_FOLD_LATEST);
	for (unsigned i = 0; i < 3; i++)
		tasks[i] = harness_spawn(batch_feed_task, &f[i], -1);
	for (unsigned i = 0; i < 3; i++)
		harness_join(tasks[i]);
	wait_all_final(t);

	/* After shutdown a batch is refused whole, and released (a leak
	 * would show under ASan). */
	CHECK_ERR_EQ(sluice_shutdown(t->r, true, UINT64_MAX), 0);
	late[0] = sl_event_new("set", 3, "k0", 2, "1", 1);
	late[1] = sl_event_new("set", 3, "k1", 2, "1", 1);
	f[0].res->routed_after_shutdown = 99;
	f[0].res->after_shutdown = sluice_feed_batch(
		t->r, NULL, late, 2, &f[0].res->routed_after_shutdown);
	sluice_stats_get(t->r, &t->after);
	sluice_destroy(t->r);
	sl_chan_destroy(t->finished);
}

static void
test_router_e2e_direct_batches(void **state)
{
	struct e2e t = {.nkeys = 2000, .versions = 50};
	struct batch_result res = {0};
	struct batch_feeder f[3];

	(void)state;
	t.keys = calloc(t.nkeys, sizeof(*t.keys));
	for (unsigned i = 0; i < 3; i++)
		f[i] = (struct batch_feeder){
			.t = &t, .res = &res, .first = i, .step = 3};
	harness_run(2, batch_main, f);
	check_results(&t);
	assert_int_equal(atomic_load(&res.calls_failed), 0);
	assert_int_equal(atomic_load(&res.routed),
			 (uint64_t)t.nkeys * t.versions);
	assert_int_equal(t.after.ingested, (uint64_t)t.nkeys * t.versions);
	assert_int_equal(res.after_shutdown, -ESHUTDOWN);
	assert_int_equal(res.routed_after_shutdown, 0);
	free(t.keys);
}

/* Failures are retried with backoff until they succeed. */
static void
test_router_e2e_retries(void **state)
{
	struct e2e t = {.nkeys = 200, .versions = 5};

	(void)state;
	t.keys = calloc(t.nkeys, sizeof(*t.keys));
	atomic_store(&t.fail_first, 300);
	harness_run(2, direct_main, &t);
	check_results(&t);
	free(t.keys);
}

/* ---- over TCP ---- */

struct sender {
	struct e2e *t;
	unsigned first, step;
};

static void
send_task(void *arg)
{
	struct sender *s = arg;
	struct e2e *t = s->t;
	struct sl_conn *c = NULL;
	char *buf = malloc(65536);
	size_t len = 0;

	CHECK_ERR_EQ(sl_connect(NULL, t->addr, NULL, &c), 0);
	if (!c || !buf) {
		free(buf);
		return;
	}
	for (uint64_t v = 1; v <= t->versions; v++)
		for (unsigned k = s->first; k < t->nkeys; k += s->step) {
			char key[16], val[24];
			int kl = snprintf(key, sizeof(key), "k%u", k);
			int vl = snprintf(val, sizeof(val), "%llu",
					  (unsigned long long)v);
			struct sl_event *e;

			if (len > 60000) {
				CHECK_INT_EQ(sl_conn_send(NULL, c, buf, len),
					     len);
				len = 0;
			}
			if (!t->frames) {
				len += (size_t)snprintf(buf + len, 100,
							"set %s %s\n", key,
							val);
				continue;
			}
			e = sl_event_new("set", 3, key, (size_t)kl, val,
					 (size_t)vl);
			len += sl_frame_encode_event(e, buf + len, 200);
			sl_event_unref(e);
		}
	if (len)
		CHECK_INT_EQ(sl_conn_send(NULL, c, buf, len), len);
	CHECK_ERR_EQ(sl_conn_shutdown(NULL, c, SHUT_WR), 0);
	sl_conn_close(c);
	free(buf);
}

static void
tcp_main(void *arg)
{
	struct e2e *t = arg;
	struct sluice_input in = {
		.name = "tcp",
		.type = SLUICE_INPUT_TCP,
		.addr = "127.0.0.1:0",
		.frames = t->frames,
	};
	struct sender s[8];
	struct sl_task *tasks[8];

	setup_router(t, SL_FOLD_LATEST);
	CHECK_ERR_EQ(sluice_add_input(t->r, &in), 0);
	CHECK_ERR_EQ(sluice_input_addr(t->r, "tcp", t->addr, sizeof(t->addr)),
		     0);
	for (unsigned i = 0; i < t->conns; i++) {
		s[i] = (struct sender){.t = t, .first = i, .step = t->conns};
		tasks[i] = harness_spawn(send_task, &s[i], -1);
	}
	for (unsigned i = 0; i < t->conns; i++)
		harness_join(tasks[i]);
	wait_all_final(t);
	teardown_router(t);
}

static void
test_router_e2e_tcp_lines(void **state)
{
	struct e2e t = {.nkeys = HARNESS_SCALE(10000, 2000),
			.versions = HARNESS_SCALE(100, 20),
			.conns = 4};

	(void)state;
	t.keys = calloc(t.nkeys, sizeof(*t.keys));
	harness_run(2, tcp_main, &t);
	check_results(&t);
	free(t.keys);
}

static void
test_router_e2e_tcp_frames(void **state)
{
	struct e2e t = {.nkeys = 2000, .versions = 20, .conns = 3,
			.frames = true};

	(void)state;
	t.keys = calloc(t.nkeys, sizeof(*t.keys));
	harness_run(2, tcp_main, &t);
	check_results(&t);
	free(t.keys);
}

/* ---- metrics, stats and shutdown ---- */

/*
 * A sink whose reconciles wait at a gate until it opens, then fail while
 * @fail_left lasts (or always, with @fail_always), else succeed.
 */
struct gate {
	struct sl_mutex mu;
	struct sl_cond opened;
	bool open;
	_Atomic unsigned entered;
	_Atomic uint64_t fail_left, ok;
	_Atomic bool fail_always;
};

static int
gate_reconcile(void *arg, const struct sl_foldq_item *it,
	       struct sl_context *ctx)
{
	struct gate *g = arg;

	(void)it;
	(void)ctx;
	atomic_fetch_add(&g->entered, 1);
	sl_mutex_lock(&g->mu);
	while (!g->open)
		sl_cond_wait(&g->opened, &g->mu);
	sl_mutex_unlock(&g->mu);
	if (atomic_load(&g->fail_always))
		return -EIO;
	for (uint64_t left = atomic_load(&g->fail_left); left;)
		if (atomic_compare_exchange_weak(&g->fail_left, &left,
						 left - 1))
			return -EIO;
	atomic_fetch_add(&g->ok, 1);
	return 0;
}

static void
gate_init(struct gate *g, bool open)
{
	sl_mutex_init(&g->mu);
	sl_cond_init(&g->opened);
	g->open = open;
}

static void
gate_open(struct gate *g)
{
	sl_mutex_lock(&g->mu);
	g->open = true;
	sl_cond_broadcast(&g->opened);
	sl_mutex_unlock(&g->mu);
}

/* Wait (yielding) until @n reconciles have reached the gate. */
static void
gate_wait_entered(struct gate *g, unsigned n)
{
	while (atomic_load(&g->entered) < n)
		sl_task_sleep(SL_NSEC_PER_MSEC / 10);
}

static struct sluice_route
gate_route(const char *name, const char *kind, struct gate *g)
{
	return (struct sluice_route){
		.name = name,
		.match = kind ? SL_MATCH_PREFIX : SL_MATCH_ANY,
		.kind = kind,
		.workers = 2,
		.fold = {.backoff_base_ns = SL_NSEC_PER_MSEC,
			 .backoff_cap_ns = 20 * SL_NSEC_PER_MSEC},
		.sink = sluice_sink_callback(gate_reconcile, g),
	};
}

/* The router's metrics as one string (free it). */
static char *
metrics_text(struct sluice *r)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	CHECK(f != NULL);
	if (!f)
		return NULL;
	sluice_write_metrics(r, f);
	fclose(f);
	return buf;
}

/* The value of the sample named @sample (name and labels), or -1. */
static double
metric_value(const char *text, const char *sample)
{
	size_t n = strlen(sample);
	const char *p = text;

	while (p && *p) {
		if (!strncmp(p, sample, n) && p[n] == ' ')
			return strtod(p + n + 1, NULL);
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return -1;
}

/* The routes in the order /metrics lists them, "a,b,c". */
static void
metrics_route_order(struct sluice *r, char *out, size_t len)
{
	static const char key[] = "sluice_route_pending{route=\"";
	char *text = metrics_text(r);
	size_t at = 0;

	out[0] = '\0';
	for (const char *p = text; p && (p = strstr(p, key)); p++) {
		const char *name = p + strlen(key);
		const char *end = strchr(name, '"');

		if (!end)
			break;
		at += (size_t)snprintf(out + at, len - at, "%s%.*s",
				       at ? "," : "", (int)(end - name), name);
	}
	free(text);
}

struct order_test {
	char first[64], reloaded[64];
};

static void
order_main(void *arg)
{
	struct order_test *o = arg;
	struct gate g;
	struct sluice *r;
	struct sluice_route rt[3];
	char err[256] = "";

	gate_init(&g, true);
	CHECK_ERR_EQ(sluice_create(NULL, &r), 0);
	rt[0] = gate_route("zeta", "z.", &g);
	rt[1] = gate_route("alpha", "a.", &g);
	rt[2] = gate_route("mid", "m.", &g);
	CHECK_ERR_EQ(sluice_set_routes(r, rt, 3, err, sizeof(err)), 0);
	metrics_route_order(r, o->first, sizeof(o->first));

	/* A reload keeps "alpha" and "zeta", drops "mid", adds "new". */
	rt[0] = gate_route("alpha", "a.", &g);
	rt[1] = gate_route("new", "n.", &g);
	rt[2] = gate_route("zeta", "z.", &g);
	CHECK_ERR_EQ(sluice_set_routes(r, rt, 3, err, sizeof(err)), 0);
	metrics_route_order(r, o->reloaded, sizeof(o->reloaded));
	CHECK_ERR_EQ(sluice_shutdown(r, true, UINT64_MAX), 0);
	sluice_destroy(r);
}

/* Routes appear in /metrics in the order of the table installed. */
static void
test_router_e2e_metrics_route_order(void **state)
{
	struct order_test o;

	(void)state;
	harness_run(2, order_main, &o);
	assert_string_equal(o.first, "zeta,alpha,mid");
	assert_string_equal(o.reloaded, "alpha,new,zeta");
}

struct longest_test {
	double during, after;
};

static void
longest_main(void *arg)
{
	struct longest_test *l = arg;
	const char *sample =
		"sluice_route_longest_reconcile_seconds{route=\"slow\"}";
	struct sluice_route rt;
	struct sluice_stats st;
	struct gate g = {0};
	struct sluice *r;
	char err[256] = "", *text;

	gate_init(&g, false);
	CHECK_ERR_EQ(sluice_create(NULL, &r), 0);
	rt = gate_route("slow", NULL, &g);
	CHECK_ERR_EQ(sluice_set_routes(r, &rt, 1, err, sizeof(err)), 0);
	CHECK_INT_EQ(sluice_feed(r, NULL, "set", 3, "k1", 2, "v", 1), 1);
	gate_wait_entered(&g, 1);

	/* The reconcile is held at the gate: its age only grows. */
	sl_task_sleep(50 * SL_NSEC_PER_MSEC);
	text = metrics_text(r);
	l->during = metric_value(text, sample);
	free(text);

	gate_open(&g);
	do {
		sl_task_sleep(SL_NSEC_PER_MSEC / 10);
		sluice_stats_get(r, &st);
	} while (st.reconciles < 1);
	text = metrics_text(r);
	l->after = metric_value(text, sample);
	free(text);
	CHECK_ERR_EQ(sluice_shutdown(r, true, UINT64_MAX), 0);
	sluice_destroy(r);
}

/* /metrics shows how long the oldest reconcile in progress has run. */
static void
test_router_e2e_longest_reconcile(void **state)
{
	struct longest_test l = {0};

	(void)state;
	harness_run(2, longest_main, &l);
	assert_true(l.during >= 0.05);
	assert_true(l.during < 60);
	assert_true(l.after == 0);
}

struct drain_test {
	struct sluice *r;
	struct gate g;
	uint64_t deadline;
	int rc;
	uint64_t elapsed_ns;
	struct sl_waitgroup wg;
	char *metrics;
	struct sluice_stats during, after;
	bool metrics_in_time;
};

static void
drain_shutdown_task(void *arg)
{
	struct drain_test *d = arg;
	uint64_t t0 = sl_now_ns();

	d->rc = sluice_shutdown(d->r, true, d->deadline);
	d->elapsed_ns = sl_now_ns() - t0;
}

static void
drain_metrics_task(void *arg)
{
	struct drain_test *d = arg;

	d->metrics = metrics_text(d->r);
	sluice_stats_get(d->r, &d->during);
	sl_waitgroup_done(&d->wg);
}

/* Feed @nkeys keys, one event each, into a router draining to @g. */
static void
drain_start(struct drain_test *d, unsigned nkeys)
{
	struct sluice_route rt = gate_route("slow", "set", &d->g);
	char err[256] = "", key[16];

	CHECK_ERR_EQ(sluice_create(NULL, &d->r), 0);
	CHECK_ERR_EQ(sluice_set_routes(d->r, &rt, 1, err, sizeof(err)), 0);
	for (unsigned k = 0; k < nkeys; k++) {
		int n = snprintf(key, sizeof(key), "k%u", k);

		CHECK_INT_EQ(sluice_feed(d->r, NULL, "set", 3, key, (size_t)n,
					 "v", 1),
			     1);
	}
}

/* Wait until shutdown has begun: the router refuses events (until then
 * these match no route, and change nothing). */
static void
drain_wait_stopping(struct drain_test *d)
{
	while (sluice_feed(d->r, NULL, "probe", 5, "k", 1, "v", 1) !=
	       -ESHUTDOWN)
		sl_task_sleep(SL_NSEC_PER_MSEC / 10);
}

static void
drain_metrics_main(void *arg)
{
	struct drain_test *d = arg;
	struct sl_context *limit = NULL;
	struct sl_task *stop;

	gate_init(&d->g, false);
	d->deadline = UINT64_MAX;
	drain_start(d, 1);
	gate_wait_entered(&d->g, 1);
	stop = harness_spawn(drain_shutdown_task, d, -1);
	drain_wait_stopping(d);
	/* Give the shutdown time to reach its drain, which waits on the
	 * gate; metrics must answer whenever they are asked. */
	sl_task_sleep(20 * SL_NSEC_PER_MSEC);

	sl_waitgroup_init(&d->wg);
	sl_waitgroup_add(&d->wg, 1);
	harness_spawn(drain_metrics_task, d, -1);
	CHECK_ERR_EQ(sl_context_with_timeout(sl_context_background(),
					     5 * SL_NSEC_PER_SEC, &limit),
		     0);
	d->metrics_in_time = sl_waitgroup_wait_ctx(limit, &d->wg) == 0;
	sl_context_release(limit);
	gate_open(&d->g);
	if (!d->metrics_in_time)
		sl_waitgroup_wait(&d->wg);
	harness_join(stop);
	sluice_stats_get(d->r, &d->after);
	sluice_destroy(d->r);
}

/* /metrics and stats answer while a drain waits on a slow sink. */
static void
test_router_e2e_metrics_during_drain(void **state)
{
	struct drain_test d = {0};

	(void)state;
	harness_run(2, drain_metrics_main, &d);
	assert_true(d.metrics_in_time);
	assert_non_null(d.metrics);
	assert_true(metric_value(d.metrics,
				 "sluice_route_processing{route=\"slow\"}") ==
		    1);
	assert_int_equal(d.during.processing, 1);
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.after.reconciles, 1);
	free(d.metrics);
}

static void
drain_retry_main(void *arg)
{
	struct drain_test *d = arg;
	struct sl_task *stop;

	gate_init(&d->g, false);
	drain_start(d, 100);
	gate_wait_entered(&d->g, 1);
	/* Every key fails a time or two during the drain, then succeeds. */
	atomic_store(&d->g.fail_left, 150);
	stop = harness_spawn(drain_shutdown_task, d, -1);
	drain_wait_stopping(d);
	gate_open(&d->g);
	harness_join(stop);
	sluice_stats_get(d->r, &d->after);
	sluice_destroy(d->r);
}

/* A reconcile that fails during a drain is retried, not given up. */
static void
test_router_e2e_drain_retries_failures(void **state)
{
	struct drain_test d = {.deadline = 0};

	(void)state;
	d.deadline = UINT64_MAX;
	harness_run(2, drain_retry_main, &d);
	assert_int_equal(d.rc, 0);
	assert_int_equal(atomic_load(&d.g.fail_left), 0);
	assert_int_equal(d.after.failures, 150);
	assert_int_equal(d.after.dead, 0);
	assert_int_equal(d.after.left, 0);
	assert_int_equal(d.after.reconciles, 100);
	assert_int_equal(atomic_load(&d.g.ok), 100);
}

static void
drain_deadline_main(void *arg)
{
	struct drain_test *d = arg;

	gate_init(&d->g, true);
	atomic_store(&d->g.fail_always, true);
	drain_start(d, 50);
	gate_wait_entered(&d->g, 1);
	d->deadline = sl_now_ns() + 300 * SL_NSEC_PER_MSEC;
	drain_shutdown_task(d);
	sluice_stats_get(d->r, &d->after);
	sluice_destroy(d->r);
}

/* A drain that cannot finish ends at its deadline and counts the keys
 * it leaves neither reconciled nor dead-lettered. */
static void
test_router_e2e_drain_deadline_counts_left(void **state)
{
	struct drain_test d = {0};

	(void)state;
	harness_run(2, drain_deadline_main, &d);
	assert_int_equal(d.rc, -ETIMEDOUT);
	assert_int_equal(d.after.left, 50);
	assert_int_equal(d.after.dead, 0);
	assert_int_equal(d.after.reconciles, 0);
	/* Retried through the drain, several times per key. */
	assert_true(d.after.failures > 100);
	assert_true(d.elapsed_ns < 10 * SL_NSEC_PER_SEC);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_router_e2e_direct),
		cmocka_unit_test(test_router_e2e_direct_batches),
		cmocka_unit_test(test_router_e2e_retries),
		cmocka_unit_test(test_router_e2e_tcp_lines),
		cmocka_unit_test(test_router_e2e_tcp_frames),
		cmocka_unit_test(test_router_e2e_metrics_route_order),
		cmocka_unit_test(test_router_e2e_longest_reconcile),
		cmocka_unit_test(test_router_e2e_metrics_during_drain),
		cmocka_unit_test(test_router_e2e_drain_retries_failures),
		cmocka_unit_test(test_router_e2e_drain_deadline_counts_left),
	};

	harness_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
