/* SPDX-License-Identifier: MIT */
/*
 * The embedding API under sluiced's load: 10^6 events over 10^4 keys sent
 * over several TCP connections into a router made with sluice.h, with a
 * callback sink that proves the fold queue's central promise: a key is
 * never reconciled by two workers at once.
 *
 * Each key has an in-flight flag.  A reconcile sets it with an atomic
 * exchange, which must find it clear, yields (so another worker given the
 * same key would run meanwhile and find the flag set), checks the version
 * against the highest seen, and clears the flag.  Eight workers per shard,
 * a small shard inbox and a low max_pending keep the workers busy and
 * back-pressure engaged, which is where a slip would show.
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
#include "core/task.h"
#include "io/net.h"
#include "router/sluice.h"

#include "harness.h"
#include "itest.h"

#define CONNS 8
#define BURST 5			/* versions of a key sent back to back */

struct key_state {
	_Atomic bool in_flight;
	_Atomic bool finished;
	_Atomic uint32_t top;		/* highest version reconciled */
};

struct embed {
	unsigned nkeys;
	uint32_t versions;
	struct key_state *keys;
	struct sluice *r;
	char addr[64];
	struct sl_chan *all_final;	/* one message, when the last key is */
	_Atomic uint64_t overlaps, regressions, reconciles, finals;
	struct sluice_stats stats;	/* once every key was final */
	bool timed_out;
};

static uint32_t
parse_decimal(const char *p, size_t len)
{
	uint32_t v = 0;

	for (size_t i = 0; i < len && p[i] >= '0' && p[i] <= '9'; i++)
		v = v * 10 + (uint32_t)(p[i] - '0');
	return v;
}

static int
embed_reconcile(void *arg, const struct sl_foldq_item *it,
		struct sl_context *ctx)
{
	struct embed *t = arg;
	const struct sl_event *e = it->events[it->nevents - 1];
	uint32_t k = parse_decimal(it->key + 1, it->key_len - 1);
	uint32_t v = parse_decimal(sl_event_payload(e), e->payload_len);
	struct key_state *ks;

	(void)ctx;
	if (k >= t->nkeys) {
		harness_fail(__FILE__, __LINE__, "reconcile of an unknown key");
		return 0;
	}
	ks = &t->keys[k];
	if (atomic_exchange_explicit(&ks->in_flight, true,
				     memory_order_acq_rel))
		atomic_fetch_add(&t->overlaps, 1);
	sl_task_yield();

	if (v < atomic_load_explicit(&ks->top, memory_order_relaxed))
		atomic_fetch_add(&t->regressions, 1);
	else
		atomic_store_explicit(&ks->top, v, memory_order_relaxed);
	atomic_fetch_add(&t->reconciles, 1);
	atomic_store_explicit(&ks->in_flight, false, memory_order_release);

	if (v == t->versions && !atomic_exchange(&ks->finished, true) &&
	    atomic_fetch_add(&t->finals, 1) + 1 == t->nkeys) {
		int one = 1;

		sl_chan_send(t->all_final, &one);
	}
	return 0;
}

struct sender {
	struct embed *t;
	unsigned first;
};

/*
 * Key k goes on connection k % CONNS, its versions in order.  They come
 * in bursts of BURST versions of one key, so that a key gets events while
 * it is queued (they fold) and while it is being reconciled (it is marked
 * dirty and runs again): the paths where a second worker could be handed
 * a key that already has one.
 */
static void
send_task(void *arg)
{
	struct sender *s = arg;
	struct embed *t = s->t;
	struct sl_conn *c = NULL;
	size_t len = 0, cap = 1 << 16;
	char *buf = malloc(cap);

	CHECK_ERR_EQ(sl_connect(NULL, t->addr, NULL, &c), 0);
	for (uint32_t b = 1; c && buf && b <= t->versions; b += BURST)
		for (unsigned k = s->first; k < t->nkeys; k += CONNS)
			for (uint32_t v = b; v < b + BURST; v++) {
				if (len + 64 > cap) {
					CHECK_INT_EQ(sl_conn_send(NULL, c, buf,
								  len),
						     len);
					len = 0;
				}
				len += (size_t)snprintf(buf + len, 64,
							"set k%u %u\n", k, v);
			}
	if (c && len)
		CHECK_INT_EQ(sl_conn_send(NULL, c, buf, len), len);
	if (c) {
		CHECK_ERR_EQ(sl_conn_shutdown(NULL, c, SHUT_WR), 0);
		sl_conn_close(c);
	}
	free(buf);
}

static void
embed_main(void *arg)
{
	struct embed *t = arg;
	struct sluice_opts opts = {.max_malformed = 100, .shard_inbox = 64};
	struct sluice_route route = {
		.name = "all", .match = SL_MATCH_ANY, .is_default = true,
		.workers = 8,
		.fold = {.policy = SL_FOLD_LATEST, .max_pending = 512},
	};
	struct sluice_input in = {.name = "tcp", .type = SLUICE_INPUT_TCP,
				  .addr = "127.0.0.1:0"};
	struct sender s[CONNS];
	struct sl_task *tasks[CONNS];
	struct sl_context *ctx = NULL;
	char err[256] = "";
	int one;

	t->all_final = sl_chan_create(sizeof(int), 1);
	route.sink = sluice_sink_callback(embed_reconcile, t);
	CHECK_ERR_EQ(sluice_create(&opts, &t->r), 0);
	CHECK_ERR_EQ(sluice_set_routes(t->r, &route, 1, err, sizeof(err)), 0);
	CHECK_ERR_EQ(sluice_add_input(t->r, &in), 0);
	CHECK_ERR_EQ(sluice_input_addr(t->r, "tcp", t->addr, sizeof(t->addr)),
		     0);

	for (unsigned i = 0; i < CONNS; i++) {
		s[i] = (struct sender){.t = t, .first = i};
		tasks[i] = harness_spawn(send_task, &s[i], (int)(i % 2));
	}
	for (unsigned i = 0; i < CONNS; i++)
		harness_join(tasks[i]);

	CHECK_ERR_EQ(sl_context_with_timeout(sl_context_background(),
					     ITEST_WAIT_MS * SL_NSEC_PER_MSEC,
					     &ctx),
		     0);
	if (sl_chan_recv_ctx(ctx, t->all_final, &one))
		t->timed_out = true;
	sl_context_release(ctx);

	/* After the drain every worker has reported back; the routes'
	 * counters stay readable until sluice_destroy(). */
	CHECK_ERR_EQ(sluice_shutdown(t->r, true, UINT64_MAX), 0);
	sluice_stats_get(t->r, &t->stats);
	sluice_destroy(t->r);
	sl_chan_destroy(t->all_final);
}

static void
test_embed_order_no_concurrent_reconcile(void **state)
{
	struct embed t = {.nkeys = 10000, .versions = ITEST_SCALE(100, 20)};
	uint64_t total;
	unsigned missing = 0;

	(void)state;
	t.versions -= t.versions % BURST; /* whole bursts */
	total = (uint64_t)t.nkeys * t.versions;
	assert_true(t.versions >= BURST);
	t.keys = calloc(t.nkeys, sizeof(*t.keys));
	assert_non_null(t.keys);
	harness_run(2, embed_main, &t);

	assert_false(t.timed_out);
	assert_int_equal(atomic_load(&t.overlaps), 0);
	assert_int_equal(atomic_load(&t.regressions), 0);
	for (unsigned k = 0; k < t.nkeys; k++)
		missing += atomic_load(&t.keys[k].top) != t.versions;
	assert_int_equal(missing, 0);
	assert_int_equal(t.stats.ingested, total);
	assert_int_equal(t.stats.malformed, 0);
	assert_int_equal(t.stats.failures, 0);
	assert_int_equal(t.stats.dead, 0);
	/* Read after the drain: the router counted every reconcile the
	 * sink saw, and left nothing. */
	assert_int_equal(t.stats.reconciles, atomic_load(&t.reconciles));
	assert_int_equal(t.stats.left, 0);
	assert_int_equal(t.stats.pending + t.stats.processing, 0);
	assert_in_range(atomic_load(&t.reconciles), t.nkeys, total);
	/* The bursts did fold: the test went through the paths it is for. */
	assert_true(t.stats.folds > 0);
	print_message("%llu events over %u keys: %llu reconciles, %llu "
		      "folds\n",
		      (unsigned long long)total, t.nkeys,
		      (unsigned long long)t.stats.reconciles,
		      (unsigned long long)t.stats.folds);
	free(t.keys);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_embed_order_no_concurrent_reconcile),
	};

	harness_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
