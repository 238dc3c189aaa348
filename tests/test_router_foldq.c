/* SPDX-License-Identifier: MIT */
/*
 * Tests of the fold queue, all on a manual clock: order, the three fold
 * policies, one worker per key, add_after, retry arithmetic (backoff,
 * cap, jitter, token bucket), failure counts, dead letters, shutdown with
 * and without drain, the pending limit, teardown, a randomized comparison
 * with a reference model, and the memory a key costs.
 *
 * Every event a test adds carries an extra reference the test keeps, so
 * the test can see when the queue lets go of it (refs back to 1).
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "router/clock.h"
#include "router/event.h"
#include "router/foldq.h"

#include "harness.h"

#define T0 1000000ull	/* the manual clock's start */
#define MS SL_NSEC_PER_MSEC

/* ---- helpers ---- */

static struct sl_event *
ev_make(const char *key, uint64_t seq, uint64_t val)
{
	struct sl_event *e = sl_event_new("t", 1, key, strlen(key), &val,
					  sizeof(val));

	assert_non_null(e);
	e->seq = seq;
	return e;
}

/* An event whose fate the test watches: it keeps a reference itself. */
static struct sl_event *
ev_watch(const char *key, uint64_t seq, uint64_t val)
{
	return sl_event_ref(ev_make(key, seq, val));
}

static uint64_t
ev_val(const struct sl_event *e)
{
	uint64_t v;

	memcpy(&v, sl_event_payload(e), sizeof(v));
	return v;
}

static uint32_t
ev_refs(struct sl_event *e)
{
	return atomic_load(&e->refs);
}

/* The queue let go of @e: only the test's reference is left; drop it. */
static void
assert_released(struct sl_event *e)
{
	assert_int_equal(ev_refs(e), 1);
	sl_event_unref(e);
}

static void
assert_key(const struct sl_foldq_item *it, const char *key)
{
	assert_non_null(it);
	assert_int_equal(it->key_len, strlen(key));
	assert_memory_equal(it->key, key, it->key_len);
}

static struct sl_foldq *
fq_new(struct sl_foldq_opts *o, struct sl_manual_clock *clk)
{
	struct sl_foldq *q;

	sl_manual_clock_init(clk, T0);
	o->clock = &clk->base;
	q = sl_foldq_create(o);
	assert_non_null(q);
	return q;
}

static void
add_ok(struct sl_foldq *q, const char *key, uint64_t seq, int want)
{
	assert_int_equal(sl_foldq_add(q, ev_make(key, seq, seq)), want);
}

static struct sl_event *
merge_sum(struct sl_event *pending, struct sl_event *incoming, void *arg)
{
	unsigned *calls = arg;
	uint64_t seq = pending->seq > incoming->seq ? pending->seq
						    : incoming->seq;
	char key[64];
	struct sl_event *e;

	(*calls)++;
	memcpy(key, sl_event_key(incoming), incoming->key_len);
	key[incoming->key_len] = '\0';
	e = ev_make(key, seq, ev_val(pending) + ev_val(incoming));
	sl_event_unref(pending);
	sl_event_unref(incoming);
	return e;
}

/* ---- options ---- */

static void
test_foldq_create_rejects_bad_options(void **state)
{
	struct sl_foldq_opts o;

	(void)state;
	memset(&o, 0, sizeof(o));
	o.policy = SL_FOLD_MERGE;	/* without a merge function */
	errno = 0;
	assert_null(sl_foldq_create(&o));
	assert_int_equal(errno, EINVAL);

	memset(&o, 0, sizeof(o));
	o.backoff_base_ns = 10 * MS;
	o.backoff_cap_ns = 1 * MS;
	errno = 0;
	assert_null(sl_foldq_create(&o));
	assert_int_equal(errno, EINVAL);

	memset(&o, 0, sizeof(o));
	o.retry_rate = NAN;
	errno = 0;
	assert_null(sl_foldq_create(&o));
	assert_int_equal(errno, EINVAL);

	o.retry_rate = -1.0;
	errno = 0;
	assert_null(sl_foldq_create(&o));
	assert_int_equal(errno, EINVAL);

	memset(&o, 0, sizeof(o));
	o.policy = (enum sl_fold_policy)7;
	errno = 0;
	assert_null(sl_foldq_create(&o));
	assert_int_equal(errno, EINVAL);

	/* NULL options: every default, on the system clock. */
	sl_foldq_destroy(sl_foldq_create(NULL));
}

/* ---- order and folding ---- */

static void
test_foldq_get_fifo_order(void **state)
{
	static const char *const keys[] = {"c", "a", "d", "b", "e"};
	struct sl_manual_clock clk;
	struct sl_foldq_opts o = {0};
	struct sl_foldq *q = fq_new(&o, &clk);
	struct sl_foldq_item *it[5];

	(void)state;
	assert_null(sl_foldq_get(q));
	for (unsigned i = 0; i < 5; i++)
		add_ok(q, keys[i], i, SL_FOLDQ_QUEUED);
	assert_int_equal(sl_foldq_len(q), 5);
	for (unsigned i = 0; i < 5; i++) {
		it[i] = sl_foldq_get(q);
		assert_key(it[i], keys[i]);
		assert_int_equal(it[i]->nevents, 1);
		assert_int_equal(it[i]->events[0]->seq, i);
		assert_int_equal(it[i]->attempts, 0);
		assert_int_equal(it[i]->queued_ns, T0);
		assert_int_equal(it[i]->hash, sl_key_hash(keys[i], 1));
	}
	assert_null(sl_foldq_get(q));
	assert_int_equal(sl_foldq_len(q), 0);
	for (unsigned i = 0; i < 5; i++)
		sl_foldq_done(q, it[i]);
	sl_foldq_destroy(q);
}

static void
test_foldq_latest_keeps_newest(void **state)
{
	struct sl_manual_clock clk;
	struct sl_foldq_opts o = {.policy = SL_FOLD_LATEST};
	struct sl_foldq *q = fq_new(&o, &clk);
	struct sl_event *e1 = ev_watch("k", 1, 10);
	struct sl_event *e3 = ev_watch("k", 3, 30);
	struct sl_event *e2 = ev_watch("k", 2, 20);
	struct sl_event *t1 = ev_watch("t", 5, 1);
	struct sl_event *t2 = ev_watch("t", 5, 2);
	struct sl_foldq_item *it;
	struct sl_foldq_stats st;

	(void)state;
	assert_int_equal(sl_foldq_add(q, e1), SL_FOLDQ_QUEUED);
	assert_int_equal(sl_foldq_add(q, e3), SL_FOLDQ_FOLDED);
	/* Arrives late with an older seq: folded away, e3 stays. */
	assert_int_equal(sl_foldq_add(q, e2), SL_FOLDQ_FOLDED);
	assert_int_equal(ev_refs(e1), 1);
	assert_int_equal(ev_refs(e2), 1);
	/* Equal seqs: the later arrival wins. */
	assert_int_equal(sl_foldq_add(q, t1), SL_FOLDQ_QUEUED);
	assert_int_equal(sl_foldq_add(q, t2), SL_FOLDQ_FOLDED);
	assert_int_equal(ev_refs(t1), 1);
	assert_int_equal(sl_foldq_len(q), 2);

	it = sl_foldq_get(q);
	assert_key(it, "k");
	assert_int_equal(it->nevents, 1);
	assert_ptr_equal(it->events[0], e3);
	sl_foldq_done(q, it);
	it = sl_foldq_get(q);
	assert_key(it, "t");
	assert_ptr_equal(it->events[0], t2);
	sl_foldq_done(q, it);

	sl_foldq_stats_get(q, &st);
	assert_int_equal(st.adds, 5);
	assert_int_equal(st.folds, 3);
	sl_foldq_destroy(q);
	assert_released(e1);
	assert_released(e2);
	assert_released(e3);
	assert_released(t1);
	assert_released(t2);
}

static void
test_foldq_merge_sums(void **state)
{
	struct sl_manual_clock clk;
	unsigned calls = 0;
	struct sl_foldq_opts o = {.policy = SL_FOLD_MERGE,
				  .merge = merge_sum,
				  .merge_arg = &calls};
	struct sl_foldq *q = fq_new(&o, &clk);
	struct sl_event *e[4];
	struct sl_foldq_item *it;

	(void)state;
	for (unsigned i = 0; i < 4; i++) {
		e[i] = ev_watch("sum", i, i + 1);
		assert_int_equal(sl_foldq_add(q, e[i]),
				 i == 0 ? SL_FOLDQ_QUEUED : SL_FOLDQ_FOLDED);
	}
	assert_int_equal(calls, 3);
	it = sl_foldq_get(q);
	assert_key(it, "sum");
	assert_int_equal(it->nevents, 1);
	assert_int_equal(ev_val(it->events[0]), 1 + 2 + 3 + 4);
	assert_int_equal(it->events[0]->seq, 3);
	sl_foldq_done(q, it);
	sl_foldq_destroy(q);
	for (unsigned i = 0; i < 4; i++)
		assert_released(e[i]);
}

static void
test_foldq_keep_all_order_and_overflow(void **state)
{
	struct sl_manual_clock clk;
	struct sl_foldq_opts o = {.policy = SL_FOLD_KEEP_ALL, .keep_max = 3};
	struct sl_foldq *q = fq_new(&o, &clk);
	struct sl_event *e[7];
	struct sl_foldq_item *it;
	struct sl_foldq_stats st;

	(void)state;
	for (unsigned i = 0; i < 7; i++) {
		/* Seqs out of order: KEEP_ALL keeps arrival order. */
		e[i] = ev_watch("all", 100 - i, i);
		assert_int_equal(sl_foldq_add(q, e[i]),
				 i == 0 ? SL_FOLDQ_QUEUED : SL_FOLDQ_FOLDED);
	}
	sl_foldq_stats_get(q, &st);
	assert_int_equal(st.dropped, 4);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(ev_refs(e[i]), 1);

	it = sl_foldq_get(q);
	assert_key(it, "all");
	assert_int_equal(it->nevents, 3);
	for (unsigned i = 0; i < 3; i++)
		assert_ptr_equal(it->events[i], e[4 + i]);
	/* The key lives in the newest event. */
	assert_ptr_equal(it->key, sl_event_key(e[6]));
	sl_foldq_done(q, it);

	/* Default keep_max is 16. */
	sl_foldq_destroy(q);
	o.keep_max = 0;
	q = fq_new(&o, &clk);
	for (unsigned i = 0; i < 20; i++)
		add_ok(q, "d", i, i == 0 ? SL_FOLDQ_QUEUED : SL_FOLDQ_FOLDED);
	it = sl_foldq_get(q);
	assert_int_equal(it->nevents, 16);
	assert_int_equal(it->events[0]->seq, 4);
	assert_int_equal(it->events[15]->seq, 19);
	sl_foldq_done(q, it);
	sl_foldq_stats_get(q, &st);
	assert_int_equal(st.dropped, 4);
	sl_foldq_destroy(q);
	for (unsigned i = 0; i < 7; i++)
		assert_released(e[i]);
}

/* ---- one worker per key ---- */

static void
test_foldq_processing_is_stingy(void **state)
{
	struct sl_manual_clock clk;
	struct sl_foldq_opts o = {0};
	struct sl_foldq *q = fq_new(&o, &clk);
	struct sl_foldq_item *a, *b, *again;
	struct sl_foldq_stats st;

	(void)state;
	add_ok(q, "a", 1, SL_FOLDQ_QUEUED);
	a = sl_foldq_get(q);
	assert_key(a, "a");

	/* Added while a worker has it: dirty, not handed to a second one. */
	add_ok(q, "a", 2, SL_FOLDQ_DIRTY);
	add_ok(q, "a", 3, SL_FOLDQ_DIRTY);
	add_ok(q, "b", 1, SL_FOLDQ_QUEUED);
	assert_int_equal(sl_foldq_len(q), 1);
	b = sl_foldq_get(q);
	assert_key(b, "b");
	assert_null(sl_foldq_get(q));
	sl_foldq_stats_get(q, &st);
	assert_int_equal(st.processing, 2);
	assert_int_equal(st.queued, 0);
	assert_int_equal(st.dirties, 2);

	/* The item's events are still the first round's. */
	assert_int_equal(a->events[0]->seq, 1);
	sl_foldq_done(q, a);
	assert_int_equal(sl_foldq_len(q), 1);
	again = sl_foldq_get(q);
	assert_key(again, "a");
	assert_int_equal(again->nevents, 1);
	assert_int_equal(again->events[0]->seq, 3);
	sl_foldq_done(q, again);

	/* Exactly once more. */
	assert_null(sl_foldq_get(q));
	sl_foldq_done(q, b);
	sl_foldq_stats_get(q, &st);
	assert_int_equal(st.gets, 3);
	assert_int_equal(st.dones, 3);
	assert_int_equal(st.keys, 0);
	sl_foldq_destroy(q);
}

static void
test_foldq_done_removes_key(void **state)
{
	struct sl_manual_clock clk;
	struct sl_foldq_opts o = {0};
	struct sl_foldq *q = fq_new(&o, &clk);
	struct sl_event *e = ev_watch("gone", 1, 1);
	struct sl_foldq_item *it;
	struct sl_foldq_stats st;

	(void)state;
	assert_int_equal(sl_foldq_add(q, e), SL_FOLDQ_QUEUED);
	it = sl_foldq_get(q);
	assert_int_equal(ev_refs(e), 2);
	sl_foldq_done(q, it);
	assert_int_equal(ev_refs(e), 1);
	sl_foldq_stats_get(q, &st);
	assert_int_equal(st.keys, 0);
	assert_int_equal(st.processing, 0);
	assert_int_equal(st.queued, 0);
	assert_null(sl_foldq_get(q));
	assert_int_equal(sl_foldq_failures(q, "gone", 4), 0);

	/* The same key comes back as a new one. */
	add_ok(q, "gone", 2, SL_FOLDQ_QUEUED);
	it = sl_foldq_get(q);
	assert_int_equal(it->events[0]->seq, 2);
	sl_foldq_done(q, it);
	sl_foldq_destroy(q);
	assert_released(e);
}

/* ---- add_after ---- */

static void
test_foldq_add_after_waits_until_due(void **state)
{
	struct sl_manual_clock clk;
	struct sl_foldq_opts o = {0};
	struct sl_foldq *q = fq_new(&o, &clk);
	struct sl_foldq_item *it;
	struct sl_foldq_stats st;

	(void)state;
	assert_int_equal(sl_foldq_next_due(q), UINT64_MAX);
	assert_int_equal(sl_foldq_add_after(q, ev_make("w", 1, 1), 10 * MS),
			 SL_FOLDQ_QUEUED);
	assert_int_equal(sl_foldq_next_due(q), T0 + 10 * MS);
	sl_foldq_stats_get(q, &st);
	assert_int_equal(st.waiting, 1);
	assert_int_equal(sl_foldq_len(q), 0);

	sl_manual_clock_advance(&clk, 10 * MS - 1);
	assert_null(sl_foldq_get(q));
	sl_manual_clock_advance(&clk, 1);
	it = sl_foldq_get(q);
	assert_key(it, "w");
	assert_int_equal(it->queued_ns, T0 + 10 * MS);
	sl_foldq_stats_get(q, &st);
	assert_int_equal(st.waiting, 0);
	assert_int_equal(sl_foldq_next_due(q), UINT64_MAX);
	sl_foldq_done(q, it);

	/* A zero delay is a plain add. */
	assert_int_equal(sl_foldq_add_after(q, ev_make("z", 1, 1), 0),
			 SL_FOLDQ_QUEUED);
	assert_int_equal(sl_foldq_len(q), 1);
	sl_foldq_destroy(q);
}

static void
test_foldq_add_after_earlier_wins(void **state)
{
	struct sl_manual_clock clk;
	struct sl_foldq_opts o = {0};
	struct sl_foldq *q = fq_new(&o, &clk);
	struct sl_foldq_item *it;

	(void)state;
	/* Other waiting keys around it, so the heap has to reorder. */
	sl_foldq_add_after(q, ev_make("x", 1, 1), 7 * MS);
	sl_foldq_add_after(q, ev_make("y", 1, 1), 30 * MS);
	assert_int_equal(sl_foldq_add_after(q, ev_make("k", 1, 1), 10 * MS),
			 SL_FOLDQ_QUEUED);
	assert_int_equal(sl_foldq_add_after(q, ev_make("k", 2, 2), 5 * MS),
			 SL_FOLDQ_FOLDED);
	assert_int_equal(sl_foldq_next_due(q), T0 + 5 * MS);
	/* Later than the time it has: ignored, but the event folds. */
	assert_int_equal(sl_foldq_add_after(q, ev_make("k", 3, 3), 20 * MS),
			 SL_FOLDQ_FOLDED);
	assert_int_equal(sl_foldq_next_due(q), T0 + 5 * MS);

	sl_manual_clock_advance(&clk, 5 * MS - 1);
	assert_null(sl_foldq_get(q));
	sl_manual_clock_advance(&clk, 1);
	it = sl_foldq_get(q);
	assert_key(it, "k");
	assert_int_equal(it->events[0]->seq, 3);
	assert_null(sl_foldq_get(q));
	sl_foldq_done(q, it);
	assert_int_equal(sl_foldq_next_due(q), T0 + 7 * MS);

	/* add_after to a queued key folds; it stays queued. */
	add_ok(q, "q", 1, SL_FOLDQ_QUEUED);
	assert_int_equal(sl_foldq_add_after(q, ev_make("q", 2, 2), MS),
			 SL_FOLDQ_FOLDED);
	assert_int_equal(sl_foldq_len(q), 1);
	it = sl_foldq_get(q);
	assert_key(it, "q");
	assert_int_equal(it->events[0]->seq, 2);
	sl_foldq_done(q, it);
	sl_foldq_destroy(q);
}

static void
test_foldq_add_queues_waiting_key_now(void **state)
{
	struct sl_manual_clock clk;
	struct sl_foldq_opts o = {0};
	struct sl_foldq *q = fq_new(&o, &clk);
	struct sl_foldq_item *it;
	struct sl_foldq_stats st;

	(void)state;
	sl_foldq_add_after(q, ev_make("a", 1, 1), 3 * MS);
	sl_foldq_add_after(q, ev_make("w", 1, 1), 1000 * MS);
	sl_foldq_add_after(q, ev_make("b", 1, 1), 2 * MS);
	sl_manual_clock_advance(&clk, MS);
	add_ok(q, "w", 2, SL_FOLDQ_FOLDED);
	sl_foldq_stats_get(q, &st);
	assert_int_equal(st.waiting, 2);
	assert_int_equal(st.queued, 1);
	assert_int_equal(sl_foldq_next_due(q), T0 + 2 * MS);

	it = sl_foldq_get(q);
	assert_key(it, "w");
	assert_int_equal(it->events[0]->seq, 2);
	assert_int_equal(it->queued_ns, T0 + MS);
	sl_foldq_done(q, it);

	/* The others still wait, in due order. */
	sl_manual_clock_advance(&clk, 5 * MS);
	it = sl_foldq_get(q);
	assert_key(it, "b");
	sl_foldq_done(q, it);
	it = sl_foldq_get(q);
	assert_key(it, "a");
	sl_foldq_done(q, it);
	sl_foldq_destroy(q);
}

static void
test_foldq_add_after_to_processing_key_defers(void **state)
{
	struct sl_manual_clock clk;
	struct sl_foldq_opts o = {0};
	struct sl_foldq *q = fq_new(&o, &clk);
	struct sl_foldq_item *it;
	struct sl_foldq_stats st;

	(void)state;
	add_ok(q, "p", 1, SL_FOLDQ_QUEUED);
	it = sl_foldq_get(q);
	assert_int_equal(sl_foldq_add_after(q, ev_make("p", 2, 2), 10 * MS),
			 SL_FOLDQ_DIRTY);
	assert_int_equal(sl_foldq_next_due(q), T0 + 10 * MS);

	/* Done before the due time: the key waits out the rest of it. */
	sl_manual_clock_advance(&clk, 4 * MS);
	sl_foldq_done(q, it);
	sl_foldq_stats_get(q, &st);
	assert_int_equal(st.waiting, 1);
	assert_null(sl_foldq_get(q));
	sl_manual_clock_advance(&clk, 6 * MS);
	it = sl_foldq_get(q);
	assert_key(it, "p");
	assert_int_equal(it->events[0]->seq, 2);

	/* Due while still processing: dirty, queued by done(). */
	sl_foldq_add_after(q, ev_make("p", 3, 3), MS);
	sl_manual_clock_advance(&clk, 2 * MS);
	assert_null(sl_foldq_get(q));
	sl_foldq_done(q, it);
	it = sl_foldq_get(q);
	assert_key(it, "p");
	assert_int_equal(it->events[0]->seq, 3);

	/* A plain add to a deferred key makes it dirty at once. */
	sl_foldq_add_after(q, ev_make("p", 4, 4), 50 * MS);
	add_ok(q, "p", 5, SL_FOLDQ_DIRTY);
	assert_int_equal(sl_foldq_next_due(q), UINT64_MAX);
	sl_foldq_done(q, it);
	it = sl_foldq_get(q);
	assert_key(it, "p");
	assert_int_equal(it->events[0]->seq, 5);
	sl_foldq_done(q, it);
	sl_foldq_destroy(q);
}

/* ---- retry ---- */

/* Get @key, fail it, and return the delay retry() chose. */
static uint64_t
fail_once(struct sl_foldq *q, const char *key, unsigned attempts)
{
	struct sl_foldq_item *it = sl_foldq_get(q);

	assert_key(it, key);
	assert_int_equal(it->attempts, attempts);
	return sl_foldq_retry(q, it, "failed");
}

static void
test_foldq_retry_backoff_doubles(void **state)
{
	struct sl_manual_clock clk;
	struct sl_foldq_opts o = {0};	/* 5 ms base, no bucket */
	struct sl_foldq *q = fq_new(&o, &clk);
	struct sl_event *e = ev_watch("r", 1, 1);
	uint64_t d;

	(void)state;
	sl_foldq_add(q, e);
	for (unsigned i = 0; i < 12; i++) {
		d = fail_once(q, "r", i);
		assert_int_equal(d, (5 * MS) << i);
		assert_int_equal(sl_foldq_failures(q, "r", 1), i + 1);
		assert_int_equal(sl_foldq_next_due(q), clk.t + d);
		sl_manual_clock_advance(&clk, d - 1);
		assert_null(sl_foldq_get(q));
		sl_manual_clock_advance(&clk, 1);
	}
	/* The events came back with each retry. */
	assert_int_equal(ev_refs(e), 2);
	sl_foldq_destroy(q);
	assert_released(e);
}

static void
test_foldq_retry_backoff_caps_without_overflow(void **state)
{
	struct sl_manual_clock clk;
	struct sl_foldq_opts o = {0};	/* 5 ms .. 1000 s */
	struct sl_foldq *q = fq_new(&o, &clk);
	uint64_t d, want;

	(void)state;
	add_ok(q, "c", 1, SL_FOLDQ_QUEUED);
	for (unsigned i = 0; i < 1000; i++) {
		/* 5 ms * 2^18 = 1310.72 s is the first past the cap. */
		want = i < 18 ? (5 * MS) << i : 1000 * SL_NSEC_PER_SEC;
		d = fail_once(q, "c", i);
		assert_int_equal(d, want);
		sl_manual_clock_advance(&clk, d);
	}
	assert_int_equal(sl_foldq_failures(q, "c", 1), 1000);
	sl_foldq_destroy(q);

	/* The largest base and cap there are: still saturates. */
	o.backoff_base_ns = UINT64_MAX / 2;
	o.backoff_cap_ns = UINT64_MAX;
	q = fq_new(&o, &clk);
	add_ok(q, "c", 1, SL_FOLDQ_QUEUED);
	for (unsigned i = 0; i < 70; i++) {
		struct sl_foldq_item *it;

		if (i > 0)
			clk.t = sl_foldq_next_due(q);
		it = sl_foldq_get(q);
		assert_key(it, "c");
		assert_int_equal(it->attempts, i);
		clk.t = T0;
		d = sl_foldq_retry(q, it, "x");
		assert_true(d >= UINT64_MAX / 8 && d < UINT64_MAX);
	}
	sl_foldq_destroy(q);
}

static void
test_foldq_retry_jitter_bounded_and_seeded(void **state)
{
	struct sl_manual_clock clk;
	struct sl_foldq_opts o = {.jitter = true, .jitter_seed = 42};
	uint64_t d[3][14];
	unsigned moved = 0;

	(void)state;
	for (unsigned run = 0; run < 3; run++) {
		struct sl_foldq *q;

		o.jitter_seed = run == 2 ? 43 : 42;
		q = fq_new(&o, &clk);
		add_ok(q, "j", 1, SL_FOLDQ_QUEUED);
		for (unsigned i = 0; i < 14; i++) {
			uint64_t base = (5 * MS) << i;

			d[run][i] = fail_once(q, "j", i);
			assert_in_range(d[run][i], base - base / 10,
					base + base / 10);
			moved += d[run][i] != base;
			sl_manual_clock_advance(&clk, d[run][i]);
		}
		sl_foldq_destroy(q);
	}
	/* The same seed gives the same delays, another seed others. */
	assert_memory_equal(d[0], d[1], sizeof(d[0]));
	assert_memory_not_equal(d[0], d[2], sizeof(d[0]));
	assert_true(moved > 30);
}

static void
test_foldq_retry_token_bucket(void **state)
{
	struct sl_manual_clock clk;
	/* A 1 ns backoff, so the bucket decides: 10/s, burst default 100. */
	struct sl_foldq_opts o = {.backoff_base_ns = 1, .backoff_cap_ns = 1,
				  .retry_rate = 10.0};
	struct sl_foldq *q = fq_new(&o, &clk);
	struct sl_foldq_item *it[110];
	char key[16];

	(void)state;
	for (unsigned i = 0; i < 110; i++) {
		snprintf(key, sizeof(key), "b%u", i);
		add_ok(q, key, i, SL_FOLDQ_QUEUED);
	}
	for (unsigned i = 0; i < 110; i++)
		it[i] = sl_foldq_get(q);

	/* The burst goes at once, then one token every 100 ms. */
	for (unsigned i = 0; i < 100; i++)
		assert_int_equal(sl_foldq_retry(q, it[i], "x"), 1);
	for (unsigned i = 100; i < 103; i++)
		assert_int_equal(sl_foldq_retry(q, it[i], "x"),
				 (i - 99) * 100 * MS);

	/* One second refills ten tokens against a debt of three. */
	sl_manual_clock_advance(&clk, SL_NSEC_PER_SEC);
	for (unsigned i = 103; i < 110; i++)
		assert_int_equal(sl_foldq_retry(q, it[i], "x"), 1);
	sl_manual_clock_advance(&clk, 50 * MS);
	it[0] = sl_foldq_get(q);
	assert_non_null(it[0]);
	assert_int_equal(sl_foldq_retry(q, it[0], "x"), 50 * MS);
	sl_foldq_destroy(q);
}

static void
test_foldq_retry_keeps_events_under_newer(void **state)
{
	static const enum sl_fold_policy pol[] = {
		SL_FOLD_LATEST, SL_FOLD_MERGE, SL_FOLD_KEEP_ALL};
	struct sl_manual_clock clk;
	unsigned calls = 0;
	struct sl_foldq_item *it;

	(void)state;
	for (unsigned p = 0; p < 3; p++) {
		struct sl_foldq_opts o = {.policy = pol[p],
					  .merge = merge_sum,
					  .merge_arg = &calls};
		struct sl_foldq *q = fq_new(&o, &clk);

		/* Failed with nothing newer: back after the backoff, with
		 * its own events. */
		add_ok(q, "k", 1, SL_FOLDQ_QUEUED);
		it = sl_foldq_get(q);
		assert_int_equal(sl_foldq_retry(q, it, "x"), 5 * MS);
		sl_manual_clock_advance(&clk, 5 * MS);
		it = sl_foldq_get(q);
		assert_int_equal(it->events[0]->seq, 1);

		/* Added to meanwhile: queued at once, older under newer. */
		add_ok(q, "k", 2, SL_FOLDQ_DIRTY);
		assert_int_equal(sl_foldq_retry(q, it, "x"), 0);
		assert_int_equal(sl_foldq_failures(q, "k", 1), 2);
		it = sl_foldq_get(q);
		assert_key(it, "k");
		assert_int_equal(it->attempts, 2);
		switch (pol[p]) {
		case SL_FOLD_LATEST:
			assert_int_equal(it->nevents, 1);
			assert_int_equal(it->events[0]->seq, 2);
			break;
		case SL_FOLD_MERGE:
			assert_int_equal(it->nevents, 1);
			assert_int_equal(ev_val(it->events[0]), 3);
			break;
		case SL_FOLD_KEEP_ALL:
			assert_int_equal(it->nevents, 2);
			assert_int_equal(it->events[0]->seq, 1);
			assert_int_equal(it->events[1]->seq, 2);
			break;
		}
		sl_foldq_done(q, it);
		sl_foldq_destroy(q);
	}
	assert_int_equal(calls, 1);
}

/* ---- failure counts ---- */

static void
test_foldq_forget_resets(void **state)
{
	struct sl_manual_clock clk;
	struct sl_foldq_opts o = {0};
	struct sl_foldq *q = fq_new(&o, &clk);

	(void)state;
	add_ok(q, "f", 1, SL_FOLDQ_QUEUED);
	assert_int_equal(fail_once(q, "f", 0), 5 * MS);
	sl_manual_clock_advance(&clk, 5 * MS);
	assert_int_equal(fail_once(q, "f", 1), 10 * MS);
	assert_int_equal(sl_foldq_failures(q, "f", 1), 2);
	sl_foldq_forget(q, "f", 1);
	assert_int_equal(sl_foldq_failures(q, "f", 1), 0);
	sl_manual_clock_advance(&clk, 10 * MS);
	assert_int_equal(fail_once(q, "f", 0), 5 * MS);

	/* Unknown keys: nothing to forget, no failures. */
	sl_foldq_forget(q, "nope", 4);
	assert_int_equal(sl_foldq_failures(q, "nope", 4), 0);
	sl_foldq_destroy(q);
}

static void
test_foldq_failures_survive_done(void **state)
{
	/* One key short enough to be kept in the entry, one longer. */
	static const char *const keys[] = {
		"short", "a-key-longer-than-sixteen-bytes"};
	struct sl_manual_clock clk;
	struct sl_foldq_opts o = {0};
	struct sl_foldq *q = fq_new(&o, &clk);
	struct sl_foldq_item *it;
	struct sl_foldq_stats st;

	(void)state;
	for (unsigned k = 0; k < 2; k++) {
		size_t len = strlen(keys[k]);

		add_ok(q, keys[k], 1, SL_FOLDQ_QUEUED);
		fail_once(q, keys[k], 0);
		sl_manual_clock_advance(&clk, 5 * MS);
		it = sl_foldq_get(q);
		assert_key(it, keys[k]);
		sl_foldq_done(q, it);	/* without forget */

		sl_foldq_stats_get(q, &st);
		assert_int_equal(st.keys, k + 1);
		assert_int_equal(st.queued + st.waiting + st.processing, 0);
		assert_int_equal(sl_foldq_failures(q, keys[k], len), 1);

		/* Back with its count: the next failure waits 10 ms. */
		add_ok(q, keys[k], 2, SL_FOLDQ_QUEUED);
		assert_int_equal(fail_once(q, keys[k], 1), 10 * MS);
		sl_manual_clock_advance(&clk, 10 * MS);
		it = sl_foldq_get(q);
		sl_foldq_done(q, it);
		assert_int_equal(sl_foldq_failures(q, keys[k], len), 2);
	}
	/* forget() lets an idle key go. */
	sl_foldq_forget(q, keys[0], strlen(keys[0]));
	sl_foldq_stats_get(q, &st);
	assert_int_equal(st.keys, 1);
	sl_foldq_forget(q, keys[1], strlen(keys[1]));
	sl_foldq_stats_get(q, &st);
	assert_int_equal(st.keys, 0);
	sl_foldq_destroy(q);
}

struct dead_log {
	unsigned calls;
	char key[32];
	const char *reason;
	unsigned nevents;
	uint64_t seq;
	unsigned attempts;
	uint32_t refs;
	int add_back;
	struct sl_foldq *q;
};

static void
dead_record(const struct sl_foldq_item *it, const char *reason, void *arg)
{
	struct dead_log *d = arg;

	d->calls++;
	memcpy(d->key, it->key, it->key_len);
	d->key[it->key_len] = '\0';
	d->reason = reason;
	d->nevents = it->nevents;
	d->seq = it->events[it->nevents - 1]->seq;
	d->attempts = it->attempts;
	d->refs = ev_refs(it->events[0]);
	if (d->add_back)
		d->add_back = sl_foldq_add(d->q, ev_make(d->key, 99, 99));
}

static void
test_foldq_max_attempts_dead_letters(void **state)
{
	static const char reason[] = "sink refused";
	struct sl_manual_clock clk;
	struct dead_log log = {0};
	struct sl_foldq_opts o = {.max_attempts = 3,
				  .dead = dead_record,
				  .dead_arg = &log};
	struct sl_foldq *q = fq_new(&o, &clk);
	struct sl_event *e = ev_watch("dl", 7, 7);
	struct sl_foldq_item *it;
	struct sl_foldq_stats st;

	(void)state;
	sl_foldq_add(q, e);
	assert_int_equal(fail_once(q, "dl", 0), 5 * MS);
	sl_manual_clock_advance(&clk, 5 * MS);
	assert_int_equal(fail_once(q, "dl", 1), 10 * MS);
	sl_manual_clock_advance(&clk, 10 * MS);
	assert_int_equal(log.calls, 0);

	/* The third try fails: dead-lettered, not retried. */
	it = sl_foldq_get(q);
	assert_int_equal(sl_foldq_retry(q, it, reason), UINT64_MAX);
	assert_int_equal(log.calls, 1);
	assert_string_equal(log.key, "dl");
	assert_ptr_equal(log.reason, reason);
	assert_int_equal(log.nevents, 1);
	assert_int_equal(log.seq, 7);
	assert_int_equal(log.attempts, 2);
	assert_int_equal(log.refs, 2);	/* alive during the callback */
	assert_int_equal(ev_refs(e), 1);	/* freed after */

	sl_foldq_stats_get(q, &st);
	assert_int_equal(st.dead, 1);
	assert_int_equal(st.retries, 2);
	assert_int_equal(st.keys, 0);
	assert_int_equal(st.waiting + st.queued + st.processing, 0);
	assert_int_equal(sl_foldq_failures(q, "dl", 2), 0);
	assert_int_equal(sl_foldq_next_due(q), UINT64_MAX);

	/* The callback may add the key again: a new round, failures 0. */
	log.add_back = 1;
	log.q = q;
	add_ok(q, "dl", 8, SL_FOLDQ_QUEUED);
	fail_once(q, "dl", 0);
	sl_manual_clock_advance(&clk, 5 * MS);
	fail_once(q, "dl", 1);
	sl_manual_clock_advance(&clk, 10 * MS);
	it = sl_foldq_get(q);
	assert_int_equal(sl_foldq_retry(q, it, reason), UINT64_MAX);
	assert_int_equal(log.add_back, SL_FOLDQ_DIRTY);
	it = sl_foldq_get(q);
	assert_key(it, "dl");
	assert_int_equal(it->attempts, 0);
	assert_int_equal(it->events[0]->seq, 99);
	sl_foldq_done(q, it);
	sl_foldq_destroy(q);
	assert_released(e);
}

/* ---- shutdown ---- */

static void
test_foldq_shutdown_refuses_adds(void **state)
{
	struct sl_manual_clock clk;
	struct sl_foldq_opts o = {0};
	struct sl_foldq *q = fq_new(&o, &clk);
	struct sl_event *late = ev_watch("c", 1, 1);
	struct sl_event *late2 = ev_watch("a", 2, 2);
	struct sl_event *waiter = ev_watch("w", 1, 1);
	struct sl_foldq_item *a, *b;

	(void)state;
	add_ok(q, "a", 1, SL_FOLDQ_QUEUED);
	add_ok(q, "b", 1, SL_FOLDQ_QUEUED);
	sl_foldq_add_after(q, waiter, MS);
	assert_false(sl_foldq_shutting_down(q));
	sl_foldq_shutdown(q, false);
	assert_true(sl_foldq_shutting_down(q));

	assert_int_equal(sl_foldq_add(q, late), -ESHUTDOWN);
	assert_int_equal(ev_refs(late), 1);
	assert_int_equal(sl_foldq_add_after(q, late2, MS), -ESHUTDOWN);
	assert_int_equal(ev_refs(late2), 1);

	/* What was queued still goes out; the waiting key does not. */
	sl_manual_clock_advance(&clk, 2 * MS);
	a = sl_foldq_get(q);
	assert_key(a, "a");
	b = sl_foldq_get(q);
	assert_key(b, "b");
	assert_null(sl_foldq_get(q));
	assert_false(sl_foldq_drained(q));
	sl_foldq_done(q, a);
	assert_false(sl_foldq_drained(q));
	sl_foldq_done(q, b);
	assert_true(sl_foldq_drained(q));
	assert_null(sl_foldq_get(q));
	assert_int_equal(ev_refs(waiter), 2);
	sl_foldq_destroy(q);
	assert_released(waiter);
	assert_released(late);
	assert_released(late2);
}

static void
test_foldq_shutdown_drain(void **state)
{
	struct sl_manual_clock clk;
	struct dead_log log = {0};
	struct sl_foldq_opts o = {.dead = dead_record, .dead_arg = &log};
	struct sl_foldq *q = fq_new(&o, &clk);
	struct sl_foldq_item *p, *r, *it;
	struct sl_foldq_stats st;

	(void)state;
	add_ok(q, "p", 1, SL_FOLDQ_QUEUED);
	add_ok(q, "r", 1, SL_FOLDQ_QUEUED);
	p = sl_foldq_get(q);
	r = sl_foldq_get(q);
	add_ok(q, "p", 2, SL_FOLDQ_DIRTY);
	add_ok(q, "a", 1, SL_FOLDQ_QUEUED);
	sl_foldq_add_after(q, ev_make("w", 1, 1), 3600 * SL_NSEC_PER_SEC);

	sl_foldq_shutdown(q, true);
	assert_true(sl_foldq_shutting_down(q));
	assert_int_equal(sl_foldq_add(q, ev_make("n", 1, 1)), -ESHUTDOWN);
	/* The waiting key is queued at once, behind "a". */
	sl_foldq_stats_get(q, &st);
	assert_int_equal(st.waiting, 0);
	assert_int_equal(sl_foldq_len(q), 2);
	it = sl_foldq_get(q);
	assert_key(it, "a");
	sl_foldq_done(q, it);
	it = sl_foldq_get(q);
	assert_key(it, "w");
	sl_foldq_done(q, it);
	assert_null(sl_foldq_get(q));
	assert_false(sl_foldq_drained(q));

	/* A retry while draining backs off as at any other time, not to
	 * the dead letters, and the key runs again before the queue is
	 * drained. */
	assert_int_equal(sl_foldq_retry(q, r, "late"), 5 * MS);
	assert_int_equal(log.calls, 0);
	assert_null(sl_foldq_get(q));
	assert_false(sl_foldq_drained(q));
	sl_manual_clock_advance(&clk, 5 * MS);
	it = sl_foldq_get(q);
	assert_key(it, "r");
	assert_int_equal(it->attempts, 1);
	sl_foldq_forget(q, "r", 1); /* it succeeded this time */
	sl_foldq_done(q, it);

	/* The dirty key still runs once more after done(). */
	sl_foldq_done(q, p);
	assert_false(sl_foldq_drained(q));
	it = sl_foldq_get(q);
	assert_key(it, "p");
	assert_int_equal(it->events[0]->seq, 2);
	assert_false(sl_foldq_drained(q));
	sl_foldq_done(q, it);
	assert_true(sl_foldq_drained(q));
	sl_foldq_stats_get(q, &st);
	assert_int_equal(st.keys, 0);
	sl_foldq_destroy(q);
}

/* A drain's deadline caps each retry at half the time left before it,
 * and a retry after a shutdown without drain dead-letters at once. */
static void
test_foldq_drain_retry_within_deadline(void **state)
{
	struct sl_manual_clock clk;
	struct dead_log log = {0};
	struct sl_foldq_opts o = {.backoff_base_ns = 40 * MS,
				  .backoff_cap_ns = 3600 * SL_NSEC_PER_SEC,
				  .dead = dead_record,
				  .dead_arg = &log};
	struct sl_foldq *q = fq_new(&o, &clk);
	struct sl_foldq_item *it;

	(void)state;
	add_ok(q, "k", 1, SL_FOLDQ_QUEUED);
	it = sl_foldq_get(q);
	sl_foldq_shutdown(q, true);
	sl_foldq_set_deadline(q, clk.t + 200 * MS);

	/* 40 ms of backoff fits in half of the 200 ms left. */
	assert_int_equal(sl_foldq_retry(q, it, "e1"), 40 * MS);
	sl_manual_clock_advance(&clk, 40 * MS);
	it = sl_foldq_get(q);
	assert_key(it, "k");
	/* 80 ms is just half of the 160 ms left; then 160 ms of backoff is
	 * cut to 40 (80 left) and 320 ms to 20 (40 left): every retry
	 * comes due before the deadline. */
	assert_int_equal(sl_foldq_retry(q, it, "e2"), 80 * MS);
	sl_manual_clock_advance(&clk, 80 * MS);
	it = sl_foldq_get(q);
	assert_int_equal(sl_foldq_retry(q, it, "e3"), 40 * MS);
	sl_manual_clock_advance(&clk, 40 * MS);
	it = sl_foldq_get(q);
	assert_int_equal(sl_foldq_retry(q, it, "e4"), 20 * MS);
	sl_manual_clock_advance(&clk, 20 * MS);
	it = sl_foldq_get(q);
	assert_non_null(it);
	assert_int_equal(it->attempts, 4);
	assert_int_equal(log.calls, 0);

	/* Past the deadline the retry is due at once. */
	sl_manual_clock_advance(&clk, 100 * MS);
	assert_int_equal(sl_foldq_retry(q, it, "e5"), 0);
	it = sl_foldq_get(q);
	assert_key(it, "k");
	sl_foldq_done(q, it);
	assert_true(sl_foldq_drained(q));
	assert_int_equal(log.calls, 0);
	sl_foldq_destroy(q);

	/* Without drain a retry is not worth keeping the key for. */
	q = fq_new(&o, &clk);
	add_ok(q, "n", 1, SL_FOLDQ_QUEUED);
	it = sl_foldq_get(q);
	sl_foldq_shutdown(q, false);
	assert_int_equal(sl_foldq_retry(q, it, "gone"), UINT64_MAX);
	assert_int_equal(log.calls, 1);
	assert_string_equal(log.key, "n");
	assert_true(sl_foldq_drained(q));
	sl_foldq_destroy(q);
}

/* ---- the pending limit ---- */

static void
test_foldq_max_pending_pushes_back(void **state)
{
	struct sl_manual_clock clk;
	struct sl_foldq_opts o = {.max_pending = 2};
	struct sl_foldq *q = fq_new(&o, &clk);
	struct sl_event *c = ev_make("c", 1, 1);
	struct sl_foldq_item *a;

	(void)state;
	add_ok(q, "a", 1, SL_FOLDQ_QUEUED);
	add_ok(q, "b", 1, SL_FOLDQ_QUEUED);
	assert_int_equal(sl_foldq_add(q, c), -EAGAIN);
	assert_int_equal(sl_foldq_add_after(q, c, MS), -EAGAIN);
	/* Not taken: the caller still holds its only reference. */
	assert_int_equal(ev_refs(c), 1);
	/* Keys already pending still fold. */
	add_ok(q, "a", 2, SL_FOLDQ_FOLDED);

	a = sl_foldq_get(q);
	assert_int_equal(sl_foldq_add(q, c), SL_FOLDQ_QUEUED);
	c = ev_make("x", 1, 1);
	assert_int_equal(sl_foldq_add(q, c), -EAGAIN);
	sl_event_unref(c);
	/* A processing key is not pending; making it dirty would be. */
	c = ev_make("a", 3, 3);
	assert_int_equal(sl_foldq_add(q, c), -EAGAIN);
	assert_int_equal(ev_refs(c), 1);
	sl_event_unref(c);
	sl_foldq_done(q, a);
	c = ev_make("x", 1, 1);
	assert_int_equal(sl_foldq_add(q, c), -EAGAIN);
	sl_event_unref(c);
	sl_foldq_destroy(q);
}

/* ---- teardown ---- */

static void
test_foldq_destroy_frees_outstanding(void **state)
{
	static const enum sl_fold_policy pol[] = {
		SL_FOLD_LATEST, SL_FOLD_MERGE, SL_FOLD_KEEP_ALL};
	struct sl_manual_clock clk;
	unsigned calls = 0;
	struct sl_event *e[8];
	unsigned n;

	(void)state;
	for (unsigned p = 0; p < 3; p++) {
		struct sl_foldq_opts o = {.policy = pol[p],
					  .merge = merge_sum,
					  .merge_arg = &calls};
		struct sl_foldq *q = fq_new(&o, &clk);
		struct sl_foldq_item *it;

		n = 0;
		/* idle with a long key */
		e[n] = ev_watch("idle-key-longer-than-sixteen", 1, 1);
		sl_foldq_add(q, e[n++]);
		it = sl_foldq_get(q);
		sl_foldq_retry(q, it, "x");
		sl_manual_clock_advance(&clk, 5 * MS);
		sl_foldq_done(q, sl_foldq_get(q));
		/* processing, dirty with two events */
		e[n] = ev_watch("dirty", 1, 1);
		sl_foldq_add(q, e[n++]);
		sl_foldq_get(q);
		e[n] = ev_watch("dirty", 2, 2);
		sl_foldq_add(q, e[n++]);
		e[n] = ev_watch("dirty", 3, 3);
		sl_foldq_add(q, e[n++]);
		/* processing with a deferred add */
		e[n] = ev_watch("deferred", 1, 1);
		sl_foldq_add(q, e[n++]);
		sl_foldq_get(q);
		e[n] = ev_watch("deferred", 2, 2);
		sl_foldq_add_after(q, e[n++], MS);
		/* queued and waiting */
		e[n] = ev_watch("queued", 1, 1);
		sl_foldq_add(q, e[n++]);
		e[n] = ev_watch("waiting", 1, 1);
		sl_foldq_add_after(q, e[n++], MS);

		sl_foldq_destroy(q);
		for (unsigned i = 0; i < n; i++)
			assert_released(e[i]);
	}
}

/* ---- randomized comparison with a reference model ---- */

/*
 * The model keeps, per key, the state the contract says it must be in,
 * and predicts what each call returns and what get() hands out.  Keys
 * whose waits end at the same instant may be queued in any order, so the
 * model's queue records a group per position: get() must return a key of
 * the first group.
 */
#define MODEL_KEYS 48
#define MODEL_KEEP 3
#define MODEL_MAX_PENDING 32
#define MODEL_ATTEMPTS 6
#define MODEL_BASE 1000ull
#define MODEL_CAP 64000ull
#define MODEL_STEPS 100000

enum mstate { M_NONE, M_IDLE, M_QUEUED, M_WAITING, M_PROC };

enum mfate { F_QUEUE, F_HANDED, F_FOLDED, F_DROPPED, F_REFUSED };

struct mkey {
	char name[40];
	enum mstate state;
	bool dirty;		/* processing; runs again at done() */
	bool deferred;		/* processing; pending waits until due */
	uint64_t due;
	uint64_t queued_ns;
	unsigned failures;
	/* pending: event ids, oldest first (one except for KEEP_ALL),
	 * and for MERGE the sum of their values and the newest seq */
	unsigned npend;
	uint32_t pend[MODEL_KEEP];
	uint64_t sum;
	uint64_t seq;
	/* the worker's item and what it should hold */
	struct sl_foldq_item *item;
	unsigned attempts;
	unsigned nitem;
	uint32_t itemev[MODEL_KEEP];
	uint64_t itemsum;
};

struct model {
	enum sl_fold_policy policy;
	struct sl_foldq *q;
	struct sl_manual_clock clk;
	uint64_t rng;
	struct mkey k[MODEL_KEYS];
	/* the queue: key and group */
	unsigned fifo[MODEL_KEYS];
	unsigned group[MODEL_KEYS];
	unsigned nfifo;
	unsigned next_group;
	unsigned proc[MODEL_KEYS];	/* keys processing, for picking */
	unsigned nproc;
	bool shut;
	bool drain;
	/* every event made, with the test's own reference */
	struct sl_event **ev;
	uint8_t *fate;
	uint64_t *seq;
	uint64_t *val;
	uint32_t nev;
	uint64_t dropped;
	uint64_t merges;
	uint64_t dead;
	unsigned merge_calls;
	struct dead_log log;
};

static uint64_t
mrand(struct model *m, uint64_t n)
{
	return harness_random(&m->rng) % n;
}

static bool
m_pending(const struct mkey *k)
{
	return k->state == M_QUEUED || k->state == M_WAITING ||
	       (k->state == M_PROC && (k->dirty || k->deferred));
}

static unsigned
m_npending(const struct model *m)
{
	unsigned n = 0;

	for (unsigned i = 0; i < MODEL_KEYS; i++)
		n += m_pending(&m->k[i]);
	return n;
}

static void
m_fifo_push(struct model *m, unsigned key, unsigned group)
{
	m->fifo[m->nfifo] = key;
	m->group[m->nfifo++] = group;
}

/* Fold event @id, newer than what @k holds, into its pending events. */
static void
m_fold(struct model *m, struct mkey *k, uint32_t id)
{
	if (k->npend == 0) {
		k->npend = 1;
		k->pend[0] = id;
		k->sum = m->val[id];
		k->seq = m->seq[id];
		return;
	}
	switch (m->policy) {
	case SL_FOLD_LATEST:
		if (m->seq[id] >= m->seq[k->pend[0]]) {
			m->fate[k->pend[0]] = F_FOLDED;
			k->pend[0] = id;
		} else {
			m->fate[id] = F_FOLDED;
		}
		break;
	case SL_FOLD_MERGE:
		m->merges++;
		for (unsigned i = 0; i < k->npend; i++)
			if (k->pend[i] != UINT32_MAX)
				m->fate[k->pend[i]] = F_FOLDED;
		m->fate[id] = F_FOLDED;
		k->pend[0] = UINT32_MAX;	/* a merged event */
		k->sum += m->val[id];
		if (m->seq[id] > k->seq)
			k->seq = m->seq[id];
		break;
	case SL_FOLD_KEEP_ALL:
		if (k->npend == MODEL_KEEP) {
			m->fate[k->pend[0]] = F_DROPPED;
			m->dropped++;
			memmove(k->pend, k->pend + 1,
				(MODEL_KEEP - 1) * sizeof(k->pend[0]));
			k->npend--;
		}
		k->pend[k->npend++] = id;
		break;
	}
}

static void
m_check_item(struct model *m, struct mkey *k, struct sl_foldq_item *it)
{
	assert_int_equal(it->key_len, strlen(k->name));
	assert_memory_equal(it->key, k->name, it->key_len);
	assert_int_equal(it->nevents, k->nitem);
	assert_int_equal(it->attempts, k->attempts);
	if (m->policy == SL_FOLD_MERGE) {
		assert_int_equal(ev_val(it->events[0]), k->itemsum);
		if (k->itemev[0] != UINT32_MAX)
			assert_ptr_equal(it->events[0], m->ev[k->itemev[0]]);
		return;
	}
	for (unsigned i = 0; i < k->nitem; i++)
		assert_ptr_equal(it->events[i], m->ev[k->itemev[i]]);
}

static uint32_t
m_new_event(struct model *m, unsigned key)
{
	uint32_t id = m->nev++;
	/* Seqs drift out of arrival order and tie, for LATEST. */
	uint64_t seq = id + mrand(m, 4);

	m->ev[id] = ev_watch(m->k[key].name, seq, mrand(m, 1000));
	m->seq[id] = seq;
	m->val[id] = ev_val(m->ev[id]);
	m->fate[id] = F_QUEUE;
	return id;
}

static void
m_add(struct model *m, unsigned key, uint64_t delay)
{
	struct mkey *k = &m->k[key];
	uint32_t id = m_new_event(m, key);
	uint64_t now = m->clk.t;
	int r, want;

	r = delay ? sl_foldq_add_after(m->q, m->ev[id], delay)
		  : sl_foldq_add(m->q, m->ev[id]);
	if (m->shut) {
		assert_int_equal(r, -ESHUTDOWN);
		m->fate[id] = F_REFUSED;
		return;
	}
	if (!m_pending(k) && m_npending(m) >= MODEL_MAX_PENDING) {
		assert_int_equal(r, -EAGAIN);
		/* Still the caller's: drop the caller's reference. */
		sl_event_unref(m->ev[id]);
		m->fate[id] = F_REFUSED;
		return;
	}
	want = k->state == M_PROC ? SL_FOLDQ_DIRTY
	       : m_pending(k)	  ? SL_FOLDQ_FOLDED
				  : SL_FOLDQ_QUEUED;
	assert_int_equal(r, want);

	if (!m_pending(k)) {
		m_fold(m, k, id);
		if (k->state == M_PROC) {
			k->dirty = delay == 0;
			k->deferred = delay != 0;
			k->due = now + delay;
		} else if (delay) {
			k->state = M_WAITING;
			k->due = now + delay;
		} else {
			k->state = M_QUEUED;
			k->queued_ns = now;
			m_fifo_push(m, key, m->next_group++);
		}
		return;
	}
	m_fold(m, k, id);
	if (k->state == M_QUEUED || k->dirty)
		return;
	if (delay) {
		if (now + delay < k->due)
			k->due = now + delay;
	} else if (k->state == M_PROC) {
		k->deferred = false;
		k->dirty = true;
	} else {
		k->state = M_QUEUED;
		k->queued_ns = now;
		m_fifo_push(m, key, m->next_group++);
	}
}

/* Keys due by @until, earliest first; equal times share a group. */
static void
m_promote(struct model *m, uint64_t until)
{
	for (;;) {
		uint64_t best = UINT64_MAX;
		unsigned group = m->next_group++;

		for (unsigned i = 0; i < MODEL_KEYS; i++) {
			struct mkey *k = &m->k[i];

			if ((k->state == M_WAITING || k->deferred) &&
			    k->due < best)
				best = k->due;
		}
		if (best == UINT64_MAX || best > until)
			return;
		for (unsigned i = 0; i < MODEL_KEYS; i++) {
			struct mkey *k = &m->k[i];

			if ((k->state != M_WAITING && !k->deferred) ||
			    k->due != best)
				continue;
			if (k->state == M_WAITING) {
				k->state = M_QUEUED;
				k->queued_ns = best < m->clk.t ? best
							       : m->clk.t;
				m_fifo_push(m, i, group);
			} else if (k->deferred) {
				k->deferred = false;
				k->dirty = true;
			}
		}
	}
}

static void
m_get(struct model *m)
{
	struct sl_foldq_item *it;
	struct mkey *k;
	unsigned key, pos;

	if (!m->shut || m->drain)
		m_promote(m, m->clk.t);
	it = sl_foldq_get(m->q);
	if (m->nfifo == 0) {
		assert_null(it);
		return;
	}
	assert_non_null(it);

	/* The key must be one of the first group, and never one that a
	 * worker already has. */
	for (pos = 0; pos < m->nfifo && m->group[pos] == m->group[0]; pos++)
		if (strlen(m->k[m->fifo[pos]].name) == it->key_len &&
		    memcmp(m->k[m->fifo[pos]].name, it->key,
			   it->key_len) == 0)
			break;
	assert_true(pos < m->nfifo && m->group[pos] == m->group[0]);
	key = m->fifo[pos];
	memmove(m->fifo + pos, m->fifo + pos + 1,
		(m->nfifo - pos - 1) * sizeof(m->fifo[0]));
	memmove(m->group + pos, m->group + pos + 1,
		(m->nfifo - pos - 1) * sizeof(m->group[0]));
	m->nfifo--;

	k = &m->k[key];
	assert_int_equal(k->state, M_QUEUED);
	assert_int_equal(it->queued_ns, k->queued_ns);
	k->state = M_PROC;
	k->item = it;
	k->attempts = k->failures;
	k->nitem = m->policy == SL_FOLD_MERGE ? 1 : k->npend;
	memcpy(k->itemev, k->pend, sizeof(k->pend));
	k->itemsum = k->sum;
	k->npend = 0;
	for (unsigned i = 0; i < k->nitem; i++)
		if (k->itemev[i] != UINT32_MAX)
			m->fate[k->itemev[i]] = F_HANDED;
	m_check_item(m, k, it);
	m->proc[m->nproc++] = key;
}

/* The entry's move out of processing, as done() makes it. */
static void
m_finish(struct model *m, struct mkey *k, unsigned key)
{
	for (unsigned i = 0; i < m->nproc; i++) {
		if (m->proc[i] == key) {
			m->proc[i] = m->proc[--m->nproc];
			break;
		}
	}
	k->item = NULL;
	if (k->dirty) {
		k->dirty = false;
		k->state = M_QUEUED;
		k->queued_ns = m->clk.t;
		m_fifo_push(m, key, m->next_group++);
	} else if (k->deferred) {
		k->deferred = false;
		k->state = M_WAITING;
	} else {
		k->state = k->failures ? M_IDLE : M_NONE;
	}
}

static void
m_done(struct model *m, unsigned key)
{
	struct mkey *k = &m->k[key];

	m_check_item(m, k, k->item);
	sl_foldq_done(m->q, k->item);
	m_finish(m, k, key);
}

/* Take the item's events back under the pending ones (older first). */
static void
m_take_back(struct model *m, struct mkey *k)
{
	struct mkey newer = *k;

	k->npend = 0;
	if (m->policy == SL_FOLD_MERGE) {
		k->npend = 1;
		k->pend[0] = k->itemev[0];
		k->sum = k->itemsum;
		if (newer.npend) {
			/* A merge of two merged or plain events. */
			m->merges++;
			if (k->pend[0] != UINT32_MAX)
				m->fate[k->pend[0]] = F_FOLDED;
			if (newer.pend[0] != UINT32_MAX)
				m->fate[newer.pend[0]] = F_FOLDED;
			k->pend[0] = UINT32_MAX;
			k->sum += newer.sum;
		}
		return;
	}
	for (unsigned i = 0; i < k->nitem; i++)
		m_fold(m, k, k->itemev[i]);
	for (unsigned i = 0; i < newer.npend; i++)
		m_fold(m, k, newer.pend[i]);
}

static void
m_retry(struct model *m, unsigned key)
{
	struct mkey *k = &m->k[key];
	uint64_t now = m->clk.t;
	uint64_t got, want, delay;

	m_check_item(m, k, k->item);
	m->log.calls = 0;
	got = sl_foldq_retry(m->q, k->item, "model");
	if ((m->shut && !m->drain) || k->failures >= MODEL_ATTEMPTS - 1) {
		assert_int_equal(got, UINT64_MAX);
		assert_int_equal(m->log.calls, 1);
		assert_string_equal(m->log.key, k->name);
		m->dead++;
		k->failures = 0;
		m_finish(m, k, key);
		return;
	}
	assert_int_equal(m->log.calls, 0);
	delay = MODEL_BASE << k->failures;
	if (delay > MODEL_CAP)
		delay = MODEL_CAP;
	k->failures++;
	m_take_back(m, k);
	if (k->dirty) {
		want = 0;
	} else if (k->deferred) {
		if (now + delay < k->due)
			k->due = now + delay;
		want = k->due > now ? k->due - now : 0;
	} else {
		k->deferred = true;
		k->due = now + delay;
		want = delay;
	}
	assert_int_equal(got, want);
	m_finish(m, k, key);
}

static void
m_check(struct model *m)
{
	struct sl_foldq_stats st;
	unsigned count[M_PROC + 1] = {0};
	uint64_t due = UINT64_MAX;

	for (unsigned i = 0; i < MODEL_KEYS; i++) {
		struct mkey *k = &m->k[i];

		count[k->state]++;
		if ((k->state == M_WAITING || k->deferred) && k->due < due)
			due = k->due;
		assert_int_equal(sl_foldq_failures(m->q, k->name,
						   strlen(k->name)),
				 k->failures);
	}
	sl_foldq_stats_get(m->q, &st);
	assert_int_equal(st.queued, count[M_QUEUED]);
	assert_int_equal(st.waiting, count[M_WAITING]);
	assert_int_equal(st.processing, count[M_PROC]);
	assert_int_equal(st.keys, MODEL_KEYS - count[M_NONE]);
	assert_int_equal(sl_foldq_len(m->q), m->nfifo);
	assert_int_equal(m->nfifo, count[M_QUEUED]);
	assert_int_equal(m->nproc, count[M_PROC]);
	assert_int_equal(st.gets, st.dones + st.retries + st.dead +
					  st.processing);
	assert_int_equal(st.dropped, m->dropped);
	assert_int_equal(st.dead, m->dead);
	assert_int_equal(sl_foldq_next_due(m->q), due);
	if (m->policy == SL_FOLD_MERGE)
		assert_int_equal(m->merge_calls, m->merges);
}

static void
m_step(struct model *m)
{
	unsigned op = (unsigned)mrand(m, 100);
	unsigned key = (unsigned)mrand(m, MODEL_KEYS);

	if (op < 35) {
		m_add(m, key, 0);
	} else if (op < 45) {
		m_add(m, key, 1 + mrand(m, 5000));
	} else if (op < 65) {
		m_get(m);
	} else if (op < 77 && m->nproc) {
		m_done(m, m->proc[mrand(m, m->nproc)]);
	} else if (op < 87 && m->nproc) {
		m_retry(m, m->proc[mrand(m, m->nproc)]);
	} else if (op < 90) {
		sl_foldq_forget(m->q, m->k[key].name,
				strlen(m->k[key].name));
		m->k[key].failures = 0;
		if (m->k[key].state == M_IDLE)
			m->k[key].state = M_NONE;
	} else {
		sl_manual_clock_advance(&m->clk, mrand(m, 3000));
	}
}

static void
model_run(enum sl_fold_policy policy, uint64_t seed)
{
	struct model *m = calloc(1, sizeof(*m));
	struct sl_foldq_opts o = {
		.policy = policy,
		.merge = merge_sum,
		.keep_max = MODEL_KEEP,
		.backoff_base_ns = MODEL_BASE,
		.backoff_cap_ns = MODEL_CAP,
		.max_attempts = MODEL_ATTEMPTS,
		.dead = dead_record,
		.max_pending = MODEL_MAX_PENDING,
	};
	uint32_t cap = MODEL_STEPS + 1;
	unsigned handed = 0, folded = 0, dropped = 0, refused = 0;

	assert_non_null(m);
	m->policy = policy;
	m->rng = seed;
	o.merge_arg = &m->merge_calls;
	o.dead_arg = &m->log;
	m->q = fq_new(&o, &m->clk);
	m->ev = calloc(cap, sizeof(*m->ev));
	m->fate = calloc(cap, 1);
	m->seq = calloc(cap, sizeof(*m->seq));
	m->val = calloc(cap, sizeof(*m->val));
	assert_true(m->ev && m->fate && m->seq && m->val);
	for (unsigned i = 0; i < MODEL_KEYS; i++)
		snprintf(m->k[i].name, sizeof(m->k[i].name),
			 i % 3 ? "key-%u" : "a-long-key-past-the-inline-%u",
			 i);

	for (unsigned s = 0; s < MODEL_STEPS; s++) {
		m_step(m);
		m_check(m);
	}

	/* Drain: waiting keys come at once, and everything is handed out
	 * until nothing is left. */
	sl_foldq_shutdown(m->q, true);
	m->shut = true;
	m->drain = true;
	m_promote(m, UINT64_MAX);
	m_check(m);
	m_add(m, 0, 0);
	while (!sl_foldq_drained(m->q)) {
		if (m->nfifo + m->nproc == 0) {
			/* Only retries wait: move to the first one's time. */
			uint64_t due = sl_foldq_next_due(m->q);

			assert_true(due != UINT64_MAX && due > m->clk.t);
			m->clk.t = due;
			m_get(m);
		} else if (m->nfifo)
			m_get(m);
		else if (mrand(m, 2))
			m_done(m, m->proc[0]);
		else
			m_retry(m, m->proc[0]);
		m_check(m);
	}
	assert_int_equal(m->nfifo + m->nproc, 0);

	/* Every event was handed out, folded away, dropped (and counted)
	 * or refused, and the queue holds none of them any more. */
	for (uint32_t i = 0; i < m->nev; i++) {
		switch (m->fate[i]) {
		case F_HANDED:
			handed++;
			break;
		case F_FOLDED:
			folded++;
			break;
		case F_DROPPED:
			dropped++;
			break;
		case F_REFUSED:
			refused++;
			break;
		default:
			fail_msg("event %u never left the queue", i);
		}
		assert_released(m->ev[i]);
	}
	assert_int_equal(handed + folded + dropped + refused, m->nev);
	assert_int_equal(dropped, m->dropped);
	print_message("model %d: %u events, %u handed, %u folded, "
		      "%u dropped, %u refused, %llu dead\n",
		      (int)policy, m->nev, handed, folded, dropped, refused,
		      (unsigned long long)m->dead);
	assert_true(handed > 0 && refused > 0 && m->dead > 0);
	if (policy != SL_FOLD_KEEP_ALL)
		assert_true(folded > 0);
	else
		assert_true(dropped > 0);

	sl_foldq_destroy(m->q);
	free(m->ev);
	free(m->fate);
	free(m->seq);
	free(m->val);
	free(m);
}

static void
test_foldq_model_latest(void **state)
{
	(void)state;
	model_run(SL_FOLD_LATEST, 0x5eed0001);
}

static void
test_foldq_model_merge(void **state)
{
	(void)state;
	model_run(SL_FOLD_MERGE, 0x5eed0002);
}

static void
test_foldq_model_keep_all(void **state)
{
	(void)state;
	model_run(SL_FOLD_KEEP_ALL, 0x5eed0003);
}

/* ---- memory ---- */

#define MEM_KEYS 1000000u

/* Entry overhead per key with a million keys queued or waiting; then
 * all of them handed out and done, after which the queue must have
 * given back its peak memory. */
static double
bytes_per_key(bool waiting)
{
	struct sl_manual_clock clk;
	struct sl_foldq_opts o = {0};
	struct sl_foldq *q = fq_new(&o, &clk);
	struct sl_foldq_stats st, after;
	struct sl_foldq_item *it;
	char key[16];
	int r;

	for (unsigned i = 0; i < MEM_KEYS; i++) {
		struct sl_event *e;

		snprintf(key, sizeof(key), "key-%07u", i);
		e = ev_make(key, i, i);
		r = waiting ? sl_foldq_add_after(q, e, SL_NSEC_PER_SEC)
			    : sl_foldq_add(q, e);
		if (r != SL_FOLDQ_QUEUED)
			fail_msg("add %u: %d", i, r);
	}
	sl_foldq_stats_get(q, &st);
	assert_int_equal(st.keys, MEM_KEYS);
	assert_int_equal(waiting ? st.waiting : st.queued, MEM_KEYS);

	sl_manual_clock_advance(&clk, SL_NSEC_PER_SEC);
	while ((it = sl_foldq_get(q)) != NULL)
		sl_foldq_done(q, it);
	sl_foldq_stats_get(q, &after);
	assert_int_equal(after.keys, 0);
	assert_int_equal(after.dones, MEM_KEYS);
	assert_in_range(after.bytes, 1, 32 * 1024);
	sl_foldq_destroy(q);
	return (double)st.bytes / (double)st.keys;
}

static void
test_foldq_memory_per_key(void **state)
{
	double queued, waiting;

	(void)state;
	queued = bytes_per_key(false);
	waiting = bytes_per_key(true);
	print_message("fold queue: %.1f bytes/key queued, %.1f waiting "
		      "(%u keys)\n", queued, waiting, MEM_KEYS);
	assert_true(queued <= 64.0);
	assert_true(waiting <= 64.0);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_foldq_create_rejects_bad_options),
		cmocka_unit_test(test_foldq_get_fifo_order),
		cmocka_unit_test(test_foldq_latest_keeps_newest),
		cmocka_unit_test(test_foldq_merge_sums),
		cmocka_unit_test(test_foldq_keep_all_order_and_overflow),
		cmocka_unit_test(test_foldq_processing_is_stingy),
		cmocka_unit_test(test_foldq_done_removes_key),
		cmocka_unit_test(test_foldq_add_after_waits_until_due),
		cmocka_unit_test(test_foldq_add_after_earlier_wins),
		cmocka_unit_test(test_foldq_add_queues_waiting_key_now),
		cmocka_unit_test(test_foldq_add_after_to_processing_key_defers),
		cmocka_unit_test(test_foldq_retry_backoff_doubles),
		cmocka_unit_test(test_foldq_retry_backoff_caps_without_overflow),
		cmocka_unit_test(test_foldq_retry_jitter_bounded_and_seeded),
		cmocka_unit_test(test_foldq_retry_token_bucket),
		cmocka_unit_test(test_foldq_retry_keeps_events_under_newer),
		cmocka_unit_test(test_foldq_forget_resets),
		cmocka_unit_test(test_foldq_failures_survive_done),
		cmocka_unit_test(test_foldq_max_attempts_dead_letters),
		cmocka_unit_test(test_foldq_shutdown_refuses_adds),
		cmocka_unit_test(test_foldq_shutdown_drain),
		cmocka_unit_test(test_foldq_drain_retry_within_deadline),
		cmocka_unit_test(test_foldq_max_pending_pushes_back),
		cmocka_unit_test(test_foldq_destroy_frees_outstanding),
		cmocka_unit_test(test_foldq_model_latest),
		cmocka_unit_test(test_foldq_model_merge),
		cmocka_unit_test(test_foldq_model_keep_all),
		cmocka_unit_test(test_foldq_memory_per_key),
	};

	harness_init();
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
