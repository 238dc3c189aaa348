/* SPDX-License-Identifier: MIT */
/*
 * Tests of the runtime and of tasks: starting and stopping, spawn and join,
 * detached tasks, ids and names, placement and pinning, yield, sleep, wait
 * groups, live-task counts, per-processor statistics and the task dump.
 *
 * Each test runs a main task under harness_run(); tasks record what they
 * saw, and the test asserts on it once the runtime has returned.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/chan.h"
#include "core/runtime.h"
#include "core/task.h"

#include "harness.h"

/* ---- starting and stopping ---- */

struct run_probe {
	bool ran;
	uint64_t id;
	char name[64];
	unsigned nprocs;
	int proc;
	uint64_t live;
};

static void
probe_main(void *arg)
{
	struct run_probe *p = arg;

	p->ran = true;
	p->id = sl_task_id();
	snprintf(p->name, sizeof(p->name), "%s", sl_task_name());
	p->nprocs = sl_runtime_nprocs();
	p->proc = sl_runtime_proc_id();
	p->live = sl_runtime_live_tasks();
}

static void
test_runtime_run_returns_after_main(void **state)
{
	(void)state;

	/* Outside any task there is no id and no name. */
	assert_int_equal(sl_task_id(), 0);
	assert_string_equal(sl_task_name(), "");

	/* The runtime starts and stops cleanly more than once. */
	for (unsigned round = 0; round < 3; round++) {
		struct run_probe p = {.proc = -1};

		harness_run(2, probe_main, &p);
		assert_true(p.ran);
		assert_at_least(p.id, 1);
		/* Every task has a name; see sl_task_opts.name. */
		assert_true(p.name[0] != '\0');
		assert_int_equal(p.nprocs, 2);
		assert_in_range(p.proc, 0, 1);
		assert_int_equal(p.live, 1);
	}
	assert_int_equal(sl_task_id(), 0);
}

static void
test_runtime_run_rejects_bad_options(void **state)
{
	struct sl_runtime_opts opts;
	struct run_probe p = {.proc = -1};
	int rc;

	(void)state;
	sl_runtime_opts_init(&opts);
	opts.nprocs = SL_MAX_PROCS + 1;
	rc = sl_runtime_run(&opts, probe_main, &p);
	assert_int_equal(rc, -EINVAL);
	assert_false(p.ran);
	assert_non_null(sl_runtime_error());
}

struct busy_probe {
	int rc;
};

static void *
nested_run_thread(void *arg)
{
	struct busy_probe *b = arg;
	struct run_probe p = {.proc = -1};

	b->rc = sl_runtime_run(NULL, probe_main, &p);
	if (p.ran)
		harness_fail(__FILE__, __LINE__, "a second runtime ran");
	return NULL;
}

static void *
start_and_join_thread(void *arg)
{
	pthread_t thread;

	if (pthread_create(&thread, NULL, nested_run_thread, arg) != 0)
		return arg;
	pthread_join(thread, NULL);
	return NULL;
}

static void
busy_main(void *arg)
{
	/* The thread is joined inside a blocking bracket so the processor
	 * is not held while this task waits for it. */
	CHECK(sl_blocking_call(start_and_join_thread, arg) == NULL);
}

static void
test_runtime_run_busy_while_running(void **state)
{
	struct busy_probe b = {.rc = 1};

	(void)state;
	harness_run(2, busy_main, &b);
	assert_int_equal(b.rc, -EBUSY);
}

/* ---- spawn and join ---- */

#define SIDE_EFFECT_WORDS 4096
#define SIDE_EFFECT_ROUNDS HARNESS_SCALE(200, 50)

struct side_effect {
	uint64_t words[SIDE_EFFECT_WORDS];
	uint64_t seed;
	bool done;
};

static void
side_effect_task(void *arg)
{
	struct side_effect *s = arg;

	/* Park once first, so that the join usually has to wait. */
	if (s->seed % 2)
		sl_task_yield();
	for (unsigned i = 0; i < SIDE_EFFECT_WORDS; i++)
		s->words[i] = s->seed * 31 + i;
	s->done = true;
}

struct join_result {
	uint64_t rounds;
	uint64_t bad_words;
	uint64_t not_done;
};

static void
join_main(void *arg)
{
	struct join_result *r = arg;
	struct side_effect *s = calloc(2, sizeof(*s));

	CHECK(s != NULL);
	if (s == NULL)
		return;

	/* Plain stores in the task, plain loads here: only the join's
	 * ordering makes them visible (and ThreadSanitizer checks it). */
	for (uint64_t round = 0; round < SIDE_EFFECT_ROUNDS; round++) {
		struct sl_task *t[2];

		for (int p = 0; p < 2; p++) {
			s[p].seed = round * 2 + (uint64_t)p;
			s[p].done = false;
			t[p] = harness_spawn(side_effect_task, &s[p], p);
		}
		for (int p = 0; p < 2; p++) {
			harness_join(t[p]);
			r->not_done += !s[p].done;
			for (unsigned i = 0; i < SIDE_EFFECT_WORDS; i++)
				r->bad_words += s[p].words[i] !=
						s[p].seed * 31 + i;
		}
		r->rounds++;
	}
	free(s);
}

static void
test_task_join_sees_side_effects(void **state)
{
	struct join_result r = {0};

	(void)state;
	harness_run(2, join_main, &r);
	assert_int_equal(r.rounds, SIDE_EFFECT_ROUNDS);
	assert_int_equal(r.not_done, 0);
	assert_int_equal(r.bad_words, 0);
}

#define DETACHED_TASKS 200

struct detached {
	struct sl_waitgroup wg;
	_Atomic uint64_t ran;
	uint64_t live_after;
};

static void
detached_task(void *arg)
{
	struct detached *d = arg;

	sl_task_yield();
	atomic_fetch_add(&d->ran, 1);
	sl_waitgroup_done(&d->wg);
}

static void
detached_main(void *arg)
{
	struct detached *d = arg;

	sl_waitgroup_init(&d->wg);
	sl_waitgroup_add(&d->wg, DETACHED_TASKS);
	for (int i = 0; i < DETACHED_TASKS / 2; i++)
		CHECK_ERR_EQ(sl_go(detached_task, d), 0);
	for (int i = 0; i < DETACHED_TASKS / 2; i++) {
		struct sl_task *t = harness_spawn(detached_task, d, i % 2);

		if (t != NULL)
			sl_task_detach(t);
	}
	sl_waitgroup_wait(&d->wg);

	/* A detached task may still be on its way out after its last
	 * statement; it must leave without anyone joining it. */
	while (sl_runtime_live_tasks() > 1)
		sl_task_yield();
	d->live_after = sl_runtime_live_tasks();
}

static void
test_task_detached_run_and_exit(void **state)
{
	struct detached d;

	(void)state;
	atomic_init(&d.ran, 0);
	harness_run(2, detached_main, &d);
	assert_int_equal(atomic_load(&d.ran), DETACHED_TASKS);
	assert_int_equal(d.live_after, 1);
}

/* ---- ids and names ---- */

#define NAMED_TASKS 64

struct name_slot {
	uint64_t id;
	char name[64];
};

struct names {
	struct name_slot slot[NAMED_TASKS];
	uint64_t main_id;
};

static void
record_name_task(void *arg)
{
	struct name_slot *s = arg;

	s->id = sl_task_id();
	snprintf(s->name, sizeof(s->name), "%s", sl_task_name());
}

static void
names_main(void *arg)
{
	struct names *n = arg;
	struct sl_task *t[NAMED_TASKS];
	char name[32];

	n->main_id = sl_task_id();

	/* One processor: no spawned task runs before this loop ends, so
	 * overwriting the name buffer shows whether spawn copied it. */
	for (int i = 0; i < NAMED_TASKS; i++) {
		struct sl_task_opts opts = {.proc = -1};

		snprintf(name, sizeof(name), "worker-%d", i);
		if (i % 2 == 0)
			opts.name = name;
		t[i] = NULL;
		CHECK_ERR_EQ(sl_task_spawn(record_name_task, &n->slot[i],
					   &opts, &t[i]),
			     0);
		memset(name, 'X', sizeof(name) - 1);
		name[sizeof(name) - 1] = '\0';
	}
	for (int i = 0; i < NAMED_TASKS; i++)
		harness_join(t[i]);
}

static int
compare_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a;
	uint64_t y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static void
test_task_ids_unique_and_names_kept(void **state)
{
	struct names n;
	uint64_t ids[NAMED_TASKS + 1];

	(void)state;
	memset(&n, 0, sizeof(n));
	harness_run(1, names_main, &n);

	for (int i = 0; i < NAMED_TASKS; i++) {
		char want[32];

		ids[i] = n.slot[i].id;
		assert_at_least(ids[i], 1);
		if (i % 2 == 0) {
			snprintf(want, sizeof(want), "worker-%d", i);
			assert_string_equal(n.slot[i].name, want);
		} else {
			/* Unnamed tasks report an empty name, even when
			 * their stack last served a named task. */
			assert_string_equal(n.slot[i].name, "");
		}
	}
	ids[NAMED_TASKS] = n.main_id;
	qsort(ids, SL_ARRAY_SIZE(ids), sizeof(ids[0]), compare_u64);
	for (size_t i = 1; i < SL_ARRAY_SIZE(ids); i++)
		assert_int_not_equal(ids[i - 1], ids[i]);
}

/* ---- placement and pinning ---- */

struct placement {
	int pinned_on[2];
	int unpinned_on[8];
	int rc_bad_proc;
	int rc_far_proc;
	int rc_small_stack;
	bool big_stack_ok;
};

static void
record_proc_task(void *arg)
{
	*(int *)arg = sl_runtime_proc_id();
}

/* Uses a quarter of a megabyte of stack, which only a task given a larger
 * stack than the default can hold. */
static void
big_stack_task(void *arg)
{
	volatile unsigned char buf[256 * 1024];

	for (size_t i = 0; i < sizeof(buf); i += 512)
		buf[i] = (unsigned char)i;
	*(bool *)arg = buf[512] == (unsigned char)512 && buf[0] == 0;
}

static void
placement_main(void *arg)
{
	struct placement *pl = arg;
	struct sl_task *t[10];
	struct sl_task *bad = NULL;

	for (int p = 0; p < 2; p++) {
		struct sl_task_opts opts = {.proc = p, .pinned = true};

		t[p] = NULL;
		CHECK_ERR_EQ(sl_task_spawn(record_proc_task,
					   &pl->pinned_on[p], &opts, &t[p]),
			     0);
	}
	for (int i = 0; i < 8; i++)
		t[2 + i] = harness_spawn(record_proc_task,
					 &pl->unpinned_on[i], i % 2);
	for (int i = 0; i < 10; i++)
		harness_join(t[i]);

	/* Refused spawns; should one be accepted after all, it is joined so
	 * that the failed check is the only consequence. */
	struct sl_task_opts opts = {.proc = 2};
	int scratch;

	pl->rc_bad_proc = sl_task_spawn(record_proc_task, &scratch, &opts,
					&bad);
	if (pl->rc_bad_proc == 0)
		harness_join(bad);
	opts.proc = 1000;
	pl->rc_far_proc = sl_task_spawn(record_proc_task, &scratch, &opts,
					&bad);
	if (pl->rc_far_proc == 0)
		harness_join(bad);
	opts = (struct sl_task_opts){.proc = -1, .stack_size = 1024};
	pl->rc_small_stack = sl_task_spawn(record_proc_task, &scratch, &opts,
					   &bad);
	if (pl->rc_small_stack == 0)
		harness_join(bad);

	opts = (struct sl_task_opts){.proc = -1, .stack_size = 1 << 20};
	t[0] = NULL;
	CHECK_ERR_EQ(sl_task_spawn(big_stack_task, &pl->big_stack_ok, &opts,
				   &t[0]),
		     0);
	harness_join(t[0]);
}

static void
test_task_opts_place_and_validate(void **state)
{
	struct placement pl;

	(void)state;
	memset(&pl, 0xff, sizeof(pl));
	pl.big_stack_ok = false;
	harness_run(2, placement_main, &pl);

	assert_int_equal(pl.pinned_on[0], 0);
	assert_int_equal(pl.pinned_on[1], 1);
	for (int i = 0; i < 8; i++)
		assert_in_range(pl.unpinned_on[i], 0, 1);
	assert_int_equal(pl.rc_bad_proc, -EINVAL);
	assert_int_equal(pl.rc_far_proc, -EINVAL);
	assert_int_equal(pl.rc_small_stack, -EINVAL);
	assert_true(pl.big_stack_ok);
}

#define PIN_ROUNDS HARNESS_SCALE(100000, 10000)
#define PINNED_PER_PROC 2
#define BUSY_TASKS 8

struct pinning {
	_Atomic bool stop;
	_Atomic uint64_t moved;
	_Atomic uint64_t busy_rounds;
	uint64_t rounds_checked;
	struct sl_chan *feed[2 * PINNED_PER_PROC];
};

struct pinned_arg {
	struct pinning *pn;
	int proc;
	struct sl_chan *feed;
	uint64_t rounds;
};

/*
 * A pinned task yields, sleeps and parks on a channel fed from the other
 * processor, checking its processor after every step, while unpinned tasks
 * keep both processors busy so idle stealing is tempted all the time.
 */
static void
pinned_task(void *arg)
{
	struct pinned_arg *a = arg;

	for (uint64_t i = 0; i < PIN_ROUNDS; i++) {
		if (i % 64 == 0) {
			uint64_t token;

			CHECK_ERR_EQ(sl_chan_recv(a->feed, &token), 0);
		} else if (i % 512 == 1) {
			sl_task_sleep(10 * SL_NSEC_PER_USEC);
		} else {
			sl_task_yield();
		}
		if (sl_runtime_proc_id() != a->proc)
			atomic_fetch_add(&a->pn->moved, 1);
		a->rounds++;
	}
}

static void
feeder_task(void *arg)
{
	struct sl_chan *feed = arg;
	uint64_t token = 0;

	while (sl_chan_send(feed, &token) == 0)
		token++;
}

static void
busy_task(void *arg)
{
	struct pinning *pn = arg;

	while (!atomic_load(&pn->stop)) {
		atomic_fetch_add(&pn->busy_rounds, 1);
		sl_task_yield();
	}
}

static void
pinning_main(void *arg)
{
	struct pinning *pn = arg;
	struct pinned_arg pa[2 * PINNED_PER_PROC];
	struct sl_task *pinned[2 * PINNED_PER_PROC];
	struct sl_task *others[2 * PINNED_PER_PROC + BUSY_TASKS];
	int n_others = 0;

	for (int i = 0; i < BUSY_TASKS; i++)
		others[n_others++] = harness_spawn(busy_task, pn, i % 2);

	for (int i = 0; i < 2 * PINNED_PER_PROC; i++) {
		struct sl_task_opts opts = {.proc = i % 2, .pinned = true};

		pn->feed[i] = sl_chan_create(sizeof(uint64_t), 0);
		CHECK(pn->feed[i] != NULL);
		pa[i] = (struct pinned_arg){pn, i % 2, pn->feed[i], 0};
		pinned[i] = NULL;
		CHECK_ERR_EQ(sl_task_spawn(pinned_task, &pa[i], &opts,
					   &pinned[i]),
			     0);
		others[n_others++] =
			harness_spawn(feeder_task, pn->feed[i], 1 - i % 2);
	}

	for (int i = 0; i < 2 * PINNED_PER_PROC; i++) {
		harness_join(pinned[i]);
		pn->rounds_checked += pa[i].rounds;
		sl_chan_close(pn->feed[i]);
	}
	atomic_store(&pn->stop, true);
	for (int i = 0; i < n_others; i++)
		harness_join(others[i]);
	for (int i = 0; i < 2 * PINNED_PER_PROC; i++)
		sl_chan_destroy(pn->feed[i]);
}

static void
test_task_pinned_never_migrates(void **state)
{
	struct pinning pn;

	(void)state;
	memset(&pn, 0, sizeof(pn));
	harness_run(2, pinning_main, &pn);
	assert_int_equal(pn.rounds_checked,
			 (uint64_t)PIN_ROUNDS * 2 * PINNED_PER_PROC);
	assert_int_equal(atomic_load(&pn.moved), 0);
	assert_at_least(atomic_load(&pn.busy_rounds), 1);
}

/* ---- yield ---- */

#define YIELD_ROUNDS 1000

struct interleave {
	char seq[2 * YIELD_ROUNDS + 1];
	_Atomic unsigned len;
};

struct yielder {
	struct interleave *il;
	char mark;
};

static void
yielder_task(void *arg)
{
	struct yielder *y = arg;

	for (int i = 0; i < YIELD_ROUNDS; i++) {
		unsigned at = atomic_fetch_add(&y->il->len, 1);

		if (at < 2 * YIELD_ROUNDS)
			y->il->seq[at] = y->mark;
		sl_task_yield();
	}
}

static void
interleave_main(void *arg)
{
	struct interleave *il = arg;
	struct yielder a = {il, 'a'};
	struct yielder b = {il, 'b'};
	struct sl_task *ta = harness_spawn(yielder_task, &a, -1);
	struct sl_task *tb = harness_spawn(yielder_task, &b, -1);

	harness_join(ta);
	harness_join(tb);
}

static void
test_task_yield_lets_others_run(void **state)
{
	struct interleave il;

	(void)state;
	memset(&il, 0, sizeof(il));
	harness_run(1, interleave_main, &il);

	/* On one processor with both tasks runnable, every yield must let
	 * the other one run before the yielder continues. */
	assert_int_equal(atomic_load(&il.len), 2 * YIELD_ROUNDS);
	for (unsigned i = 1; i < 2 * YIELD_ROUNDS; i++)
		if (il.seq[i] == il.seq[i - 1])
			fail_msg("'%c' ran twice in a row at step %u of %s",
				 il.seq[i], i, il.seq);
}

/* ---- sleep ---- */

#define SLEEPERS 8
#define SLEEP_STEP_NS (4 * SL_NSEC_PER_MSEC)

struct sleeper {
	uint64_t ns;
	uint64_t slept;
	unsigned woke_nth;
	int rc;
	_Atomic unsigned *order;
};

static void
sleeper_task(void *arg)
{
	struct sleeper *s = arg;
	uint64_t t0 = sl_now_ns();

	s->rc = sl_task_sleep(s->ns);
	s->slept = sl_now_ns() - t0;
	s->woke_nth = atomic_fetch_add(s->order, 1);
}

struct sleep_order {
	struct sleeper s[SLEEPERS];
	_Atomic unsigned order;
	int rc_zero;
};

static void
sleep_order_main(void *arg)
{
	struct sleep_order *so = arg;
	struct sl_task *t[SLEEPERS];
	uint64_t rng = 7;

	so->rc_zero = sl_task_sleep(0);

	/* Spawned in a shuffled order, so waking in spawn order would not
	 * pass for waking in deadline order. */
	for (unsigned i = 0; i < SLEEPERS; i++)
		t[i] = NULL;
	for (unsigned left = SLEEPERS; left > 0; left--) {
		unsigned pick = (unsigned)(harness_random(&rng) % left);
		unsigned k = 0;

		for (unsigned i = 0; i < SLEEPERS; i++) {
			if (t[i] != NULL || k++ != pick)
				continue;
			so->s[i].ns = (i + 1) * SLEEP_STEP_NS;
			so->s[i].order = &so->order;
			t[i] = harness_spawn(sleeper_task, &so->s[i], -1);
			break;
		}
	}
	for (unsigned i = 0; i < SLEEPERS; i++)
		harness_join(t[i]);
}

static void
test_task_sleep_wakes_in_deadline_order(void **state)
{
	struct sleep_order so;

	(void)state;
	memset(&so, 0, sizeof(so));
	harness_run(1, sleep_order_main, &so);

	assert_int_equal(so.rc_zero, 0);
	for (unsigned i = 0; i < SLEEPERS; i++) {
		assert_int_equal(so.s[i].rc, 0);
		if (so.s[i].slept < so.s[i].ns)
			fail_msg("asked %llu ns, slept %llu ns",
				 (unsigned long long)so.s[i].ns,
				 (unsigned long long)so.s[i].slept);
	}

	/* Printed in full on a mismatch: the overshoot shows whether the
	 * out-of-order tasks were due together in one late timer pass. */
	for (unsigned i = 0; i < SLEEPERS; i++) {
		if (so.s[i].woke_nth == i)
			continue;
		for (unsigned k = 0; k < SLEEPERS; k++)
			print_error("sleeper %u: asked %llu us, slept %llu us, "
				    "ran %u-th after waking\n",
				    k,
				    (unsigned long long)(so.s[k].ns / 1000),
				    (unsigned long long)(so.s[k].slept / 1000),
				    so.s[k].woke_nth);
		assert_int_equal(so.s[i].woke_nth, i);
	}
}

#define SHORT_SLEEPERS 64

struct short_sleeps {
	struct sleeper s[SHORT_SLEEPERS];
	_Atomic unsigned order;
};

static void
short_sleeps_main(void *arg)
{
	struct short_sleeps *ss = arg;
	struct sl_task *t[SHORT_SLEEPERS];
	uint64_t rng = 11;

	for (unsigned i = 0; i < SHORT_SLEEPERS; i++) {
		ss->s[i].ns = harness_random(&rng) % (3 * SL_NSEC_PER_MSEC);
		ss->s[i].order = &ss->order;
		t[i] = harness_spawn(sleeper_task, &ss->s[i], (int)(i % 2));
	}
	for (unsigned i = 0; i < SHORT_SLEEPERS; i++)
		harness_join(t[i]);
}

static void
test_task_sleep_never_wakes_early(void **state)
{
	struct short_sleeps ss;

	(void)state;
	memset(&ss, 0, sizeof(ss));
	harness_run(2, short_sleeps_main, &ss);
	for (unsigned i = 0; i < SHORT_SLEEPERS; i++) {
		assert_int_equal(ss.s[i].rc, 0);
		if (ss.s[i].slept < ss.s[i].ns)
			fail_msg("asked %llu ns, slept %llu ns",
				 (unsigned long long)ss.s[i].ns,
				 (unsigned long long)ss.s[i].slept);
	}
}

/* ---- wait group ---- */

#define WG_WORKERS 100
#define WG_WAITERS 3

struct wg_test {
	struct sl_waitgroup wg;
	bool flag[WG_WORKERS];
	uint64_t missing_seen[WG_WAITERS + 1];
	unsigned waiters_done;
	bool empty_wait_returned;
	bool balanced_wait_returned;
};

struct wg_worker {
	struct wg_test *w;
	unsigned i;
};

static void
wg_worker_task(void *arg)
{
	struct wg_worker *k = arg;

	if (k->i % 3 == 0)
		sl_task_sleep((k->i % 7) * 100 * SL_NSEC_PER_USEC);
	else
		sl_task_yield();
	k->w->flag[k->i] = true;
	sl_waitgroup_done(&k->w->wg);
}

struct wg_waiter {
	struct wg_test *w;
	unsigned slot;
};

/* Plain reads of the workers' plain writes: a wait that returned before
 * every done, or without ordering, shows up here or in ThreadSanitizer. */
static void
wg_waiter_task(void *arg)
{
	struct wg_waiter *k = arg;

	sl_waitgroup_wait(&k->w->wg);
	for (unsigned i = 0; i < WG_WORKERS; i++)
		k->w->missing_seen[k->slot] += !k->w->flag[i];
}

static void
wg_main(void *arg)
{
	struct wg_test *w = arg;
	struct wg_worker workers[WG_WORKERS];
	struct wg_waiter waiters[WG_WAITERS + 1];
	struct sl_task *t[WG_WORKERS + WG_WAITERS];
	struct sl_waitgroup empty;

	sl_waitgroup_init(&empty);
	sl_waitgroup_wait(&empty);
	w->empty_wait_returned = true;

	sl_waitgroup_init(&w->wg);
	sl_waitgroup_add(&w->wg, WG_WORKERS);
	for (unsigned i = 0; i < WG_WAITERS; i++) {
		waiters[i] = (struct wg_waiter){w, i};
		t[WG_WORKERS + i] =
			harness_spawn(wg_waiter_task, &waiters[i], (int)i % 2);
	}
	for (unsigned i = 0; i < WG_WORKERS; i++) {
		workers[i] = (struct wg_worker){w, i};
		t[i] = harness_spawn(wg_worker_task, &workers[i], (int)i % 2);
	}

	waiters[WG_WAITERS] = (struct wg_waiter){w, WG_WAITERS};
	wg_waiter_task(&waiters[WG_WAITERS]);
	for (unsigned i = 0; i < WG_WORKERS + WG_WAITERS; i++)
		harness_join(t[i]);
	w->waiters_done = WG_WAITERS + 1;

	/* Adds and finishes that balance out leave nothing to wait for. */
	sl_waitgroup_add(&w->wg, 2);
	sl_waitgroup_add(&w->wg, -1);
	sl_waitgroup_done(&w->wg);
	sl_waitgroup_wait(&w->wg);
	w->balanced_wait_returned = true;
}

static void
test_waitgroup_waits_for_every_done(void **state)
{
	struct wg_test *w = calloc(1, sizeof(*w));

	(void)state;
	assert_non_null(w);
	harness_run(2, wg_main, w);

	assert_true(w->empty_wait_returned);
	assert_int_equal(w->waiters_done, WG_WAITERS + 1);
	for (unsigned i = 0; i <= WG_WAITERS; i++)
		assert_int_equal(w->missing_seen[i], 0);
	assert_true(w->balanced_wait_returned);
	free(w);
}

/* ---- live tasks and statistics ---- */

#define LIVE_TASKS 100

struct live_test {
	uint64_t at_start;
	uint64_t while_parked;
	uint64_t after_join;
	struct sl_chan *gate;
};

static void
gate_task(void *arg)
{
	struct live_test *l = arg;

	CHECK_ERR_EQ(sl_chan_recv(l->gate, NULL), -EPIPE);
}

static void
live_main(void *arg)
{
	struct live_test *l = arg;
	struct sl_task *t[LIVE_TASKS];

	l->at_start = sl_runtime_live_tasks();
	l->gate = sl_chan_create(0, 0);
	CHECK(l->gate != NULL);
	for (int i = 0; i < LIVE_TASKS; i++)
		t[i] = harness_spawn(gate_task, l, i % 2);
	l->while_parked = sl_runtime_live_tasks();

	sl_chan_close(l->gate);
	for (int i = 0; i < LIVE_TASKS; i++)
		harness_join(t[i]);
	l->after_join = sl_runtime_live_tasks();
	sl_chan_destroy(l->gate);
}

static void
test_runtime_live_tasks_back_to_main(void **state)
{
	struct live_test l = {0};

	(void)state;
	harness_run(2, live_main, &l);
	assert_int_equal(l.at_start, 1);
	assert_int_equal(l.while_parked, 1 + LIVE_TASKS);
	assert_int_equal(l.after_join, 1);
}

#define STAT_TASKS 10
#define STAT_YIELDS 1000

struct stats_test {
	_Atomic unsigned arrived;
	struct sl_proc_stats before[2];
	struct sl_proc_stats after[2];
	int rc_before[2];
	int rc_after[2];
	int rc_bad;
};

/* All tasks gather first, so each processor has five runnable tasks when
 * the counted yields begin. */
static void
stat_yield_task(void *arg)
{
	struct stats_test *st = arg;

	atomic_fetch_add(&st->arrived, 1);
	while (atomic_load(&st->arrived) < STAT_TASKS)
		sl_task_yield();
	for (int i = 0; i < STAT_YIELDS; i++)
		sl_task_yield();
}

static void
stats_main(void *arg)
{
	struct stats_test *st = arg;
	struct sl_task *t[STAT_TASKS];
	struct sl_proc_stats unused;

	for (unsigned p = 0; p < 2; p++)
		st->rc_before[p] = sl_runtime_proc_stats(p, &st->before[p]);
	for (int i = 0; i < STAT_TASKS; i++) {
		struct sl_task_opts opts = {.proc = i % 2, .pinned = true};

		t[i] = NULL;
		CHECK_ERR_EQ(sl_task_spawn(stat_yield_task, st, &opts,
					   &t[i]),
			     0);
	}
	for (int i = 0; i < STAT_TASKS; i++)
		harness_join(t[i]);
	for (unsigned p = 0; p < 2; p++)
		st->rc_after[p] = sl_runtime_proc_stats(p, &st->after[p]);
	st->rc_bad = sl_runtime_proc_stats(2, &unused);
}

static void
test_runtime_proc_stats_count_work(void **state)
{
	struct stats_test st;
	uint64_t spawns = 0;

	(void)state;
	memset(&st, 0, sizeof(st));
	harness_run(2, stats_main, &st);

	assert_int_equal(st.rc_bad, -EINVAL);
	for (unsigned p = 0; p < 2; p++) {
		assert_int_equal(st.rc_before[p], 0);
		assert_int_equal(st.rc_after[p], 0);

		/* Five pinned tasks share each processor, so a yield
		 * switches to another task unless the yielder is the last
		 * one left: at least four tasks' yields are counted. */
		print_message("proc %u: %llu switches\n", p,
			      (unsigned long long)(st.after[p].tasks_run -
						   st.before[p].tasks_run));
		assert_at_least(st.after[p].tasks_run,
				st.before[p].tasks_run +
					(STAT_TASKS / 2 - 1) * STAT_YIELDS);
		spawns += st.after[p].spawns - st.before[p].spawns;
	}
	assert_at_least(spawns, STAT_TASKS);
}

/* ---- task dump ---- */

#define DUMP_PARKED 3

struct dump_test {
	struct sl_chan *gate;
	char *text;
	size_t len;
	uint64_t live;
};

static void
dump_parked_task(void *arg)
{
	struct dump_test *d = arg;

	sl_task_set_note("held-at-gate");
	CHECK_ERR_EQ(sl_chan_recv(d->gate, NULL), -EPIPE);
}

static void
dump_main(void *arg)
{
	struct dump_test *d = arg;
	struct sl_task *t[DUMP_PARKED];
	FILE *f;

	d->gate = sl_chan_create(0, 0);
	CHECK(d->gate != NULL);
	for (int i = 0; i < DUMP_PARKED; i++) {
		char name[32];
		struct sl_task_opts opts = {.name = name, .proc = -1};

		snprintf(name, sizeof(name), "dump-parked-%d", i);
		t[i] = NULL;
		CHECK_ERR_EQ(sl_task_spawn(dump_parked_task, d, &opts, &t[i]),
			     0);
	}

	/* One processor: this yield lets all three run until they park. */
	sl_task_yield();
	d->live = sl_runtime_live_tasks();
	f = open_memstream(&d->text, &d->len);
	CHECK(f != NULL);
	if (f != NULL) {
		sl_runtime_dump_tasks(f);
		fclose(f);
	}

	sl_chan_close(d->gate);
	for (int i = 0; i < DUMP_PARKED; i++)
		harness_join(t[i]);
	sl_chan_destroy(d->gate);
}

static void
test_runtime_dump_tasks_lists_parked(void **state)
{
	struct dump_test d = {0};
	unsigned lines = 0;

	(void)state;
	harness_run(1, dump_main, &d);
	assert_non_null(d.text);
	print_message("task dump:\n%s", d.text);

	for (const char *c = d.text; *c; c++)
		lines += *c == '\n';
	assert_at_least(lines, d.live);
	assert_int_equal(d.live, 1 + DUMP_PARKED);

	for (int i = 0; i < DUMP_PARKED; i++) {
		char name[32];
		const char *at;
		const char *eol;

		snprintf(name, sizeof(name), "dump-parked-%d", i);
		at = strstr(d.text, name);
		if (at == NULL)
			fail_msg("%s is not in the dump", name);
		assert_null(strstr(at + 1, name));

		/* The note belongs on the task's own line. */
		eol = strchr(at, '\n');
		while (at > d.text && at[-1] != '\n')
			at--;
		if (eol == NULL)
			eol = at + strlen(at);
		if (memmem(at, (size_t)(eol - at), "held-at-gate", 12) == NULL)
			fail_msg("no note on the line of %s", name);
	}
	free(d.text);
}

/* ---- many tasks ---- */

#define MANY_TOTAL HARNESS_SCALE(100000, 10000)
#define MANY_ALIVE HARNESS_SCALE(10000, 1000)

struct many {
	_Atomic uint64_t ran;
	uint64_t joined;
	uint64_t live_after;
};

static void
many_task(void *arg)
{
	struct many *m = arg;

	if (atomic_fetch_add(&m->ran, 1) % 8 == 0)
		sl_task_yield();
}

static void
many_main(void *arg)
{
	struct many *m = arg;
	struct sl_task **t = calloc(MANY_ALIVE, sizeof(*t));

	CHECK(t != NULL);
	if (t == NULL)
		return;
	for (uint64_t done = 0; done < MANY_TOTAL; done += MANY_ALIVE) {
		for (int i = 0; i < MANY_ALIVE; i++)
			t[i] = harness_spawn(many_task, m, i % 2);
		for (int i = 0; i < MANY_ALIVE; i++) {
			harness_join(t[i]);
			m->joined += t[i] != NULL;
		}
	}
	m->live_after = sl_runtime_live_tasks();
	free(t);
}

static void
test_task_many_spawn_and_join(void **state)
{
	struct many m = {.joined = 0};

	(void)state;
	atomic_init(&m.ran, 0);
	harness_run(2, many_main, &m);
	assert_int_equal(atomic_load(&m.ran), MANY_TOTAL);
	assert_int_equal(m.joined, MANY_TOTAL);
	assert_int_equal(m.live_after, 1);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_runtime_run_returns_after_main),
		cmocka_unit_test(test_runtime_run_rejects_bad_options),
		cmocka_unit_test(test_runtime_run_busy_while_running),
		cmocka_unit_test(test_task_join_sees_side_effects),
		cmocka_unit_test(test_task_detached_run_and_exit),
		cmocka_unit_test(test_task_ids_unique_and_names_kept),
		cmocka_unit_test(test_task_opts_place_and_validate),
		cmocka_unit_test(test_task_pinned_never_migrates),
		cmocka_unit_test(test_task_yield_lets_others_run),
		cmocka_unit_test(test_task_sleep_wakes_in_deadline_order),
		cmocka_unit_test(test_task_sleep_never_wakes_early),
		cmocka_unit_test(test_waitgroup_waits_for_every_done),
		cmocka_unit_test(test_runtime_live_tasks_back_to_main),
		cmocka_unit_test(test_runtime_proc_stats_count_work),
		cmocka_unit_test(test_runtime_dump_tasks_lists_parked),
		cmocka_unit_test(test_task_many_spawn_and_join),
	};

	harness_init();
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
