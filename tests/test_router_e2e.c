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
	sluice_destroy(t->r);
	sl_chan_destroy(t->finished);
}

/* ---- fed directly ---- */

struct feeder {
	struct e2e *t;
	unsigned first, step;
};

static void
feed_task(void *arg)
{
	struct feeder *f = arg;
	struct e2e *t = f->t;
	char key[16], val[24];

	for (uint64_t v = 1; v <= t->versions; v++)
		for (unsigned k = f->first; k < t->nkeys; k += f->step) {
			int kl = snprintf(key, sizeof(key), "k%u", k);
			int vl = snprintf(val, sizeof(val), "%llu",
					  (unsigned long long)v);

			CHECK_INT_EQ(sluice_feed(t->r, NULL, "set", 3, key,
						 (size_t)kl, val, (size_t)vl),
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_router_e2e_direct),
		cmocka_unit_test(test_router_e2e_retries),
		cmocka_unit_test(test_router_e2e_tcp_lines),
		cmocka_unit_test(test_router_e2e_tcp_frames),
	};

	harness_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
