/* SPDX-License-Identifier: MIT */
/*
 * Tests of the task-aware mutex, condition variable and once: mutual
 * exclusion under contention, trylock, giving up with a context, waking
 * with signal and broadcast, and a once that runs exactly once.
 *
 * Shared counters here are deliberately plain, not atomic: only the
 * primitive under test orders them, so a broken one shows up as a wrong
 * total here or as a race under ThreadSanitizer.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/context.h"
#include "core/runtime.h"
#include "core/sync.h"
#include "core/task.h"

#include "harness.h"

/* ---- mutex ---- */

#define MUTEX_TASKS 32
#define MUTEX_ROUNDS HARNESS_SCALE(100000, 10000)

struct mutex_test {
	struct sl_mutex m;
	uint64_t counter;
	int inside;
	uint64_t overlaps;
};

static void
mutex_task(void *arg)
{
	struct mutex_test *mt = arg;

	for (int i = 0; i < MUTEX_ROUNDS; i++) {
		sl_mutex_lock(&mt->m);
		if (mt->inside++ != 0)
			mt->overlaps++;
		mt->counter++;
		/* Sometimes hold the lock across a yield, so that waiters
		 * really park and are handed the lock later. */
		if (i % 64 == 0)
			sl_task_yield();
		mt->inside--;
		sl_mutex_unlock(&mt->m);
	}
}

static void
mutex_main(void *arg)
{
	struct mutex_test *mt = arg;
	struct sl_task *t[MUTEX_TASKS];

	for (int i = 0; i < MUTEX_TASKS; i++)
		t[i] = harness_spawn(mutex_task, mt, i % 2);
	for (int i = 0; i < MUTEX_TASKS; i++)
		harness_join(t[i]);
}

static void
test_mutex_excludes_many_tasks(void **state)
{
	struct mutex_test mt = {.m = SL_MUTEX_INIT};

	(void)state;
	harness_run(2, mutex_main, &mt);
	assert_int_equal(mt.counter, (uint64_t)MUTEX_TASKS * MUTEX_ROUNDS);
	assert_int_equal(mt.overlaps, 0);
	assert_int_equal(mt.inside, 0);
}

struct trylock_test {
	struct sl_mutex m;
	bool first;
	bool second;
	bool other_task_while_held;
	bool other_task_after_unlock;
	bool relock;
};

static void
trylock_task(void *arg)
{
	struct trylock_test *tt = arg;
	bool got = sl_mutex_trylock(&tt->m);

	if (tt->first && !tt->other_task_while_held && got) {
		tt->other_task_while_held = true;
		sl_mutex_unlock(&tt->m);
	}
}

static void
trylock_after_task(void *arg)
{
	struct trylock_test *tt = arg;

	tt->other_task_after_unlock = sl_mutex_trylock(&tt->m);
	if (tt->other_task_after_unlock)
		sl_mutex_unlock(&tt->m);
}

static void
trylock_main(void *arg)
{
	struct trylock_test *tt = arg;
	struct sl_task *t;

	sl_mutex_init(&tt->m);
	tt->first = sl_mutex_trylock(&tt->m);
	tt->second = sl_mutex_trylock(&tt->m);
	t = harness_spawn(trylock_task, tt, 1);
	harness_join(t);
	sl_mutex_unlock(&tt->m);

	t = harness_spawn(trylock_after_task, tt, 1);
	harness_join(t);
	tt->relock = sl_mutex_trylock(&tt->m);
	if (tt->relock)
		sl_mutex_unlock(&tt->m);
}

static void
test_mutex_trylock_only_when_free(void **state)
{
	struct trylock_test tt;

	(void)state;
	memset(&tt, 0, sizeof(tt));
	harness_run(2, trylock_main, &tt);
	assert_true(tt.first);
	assert_false(tt.second);
	assert_false(tt.other_task_while_held);
	assert_true(tt.other_task_after_unlock);
	assert_true(tt.relock);
}

struct lock_ctx_test {
	struct sl_mutex m;
	struct sl_context *ctx;
	int parked_rc;
	bool parked_returned;
	bool returned_before_cancel;
	bool waiter_got_lock_after;
	int precancelled_rc;
	int free_rc;
	bool main_relock;
};

static void
lock_ctx_waiter(void *arg)
{
	struct lock_ctx_test *lt = arg;

	lt->parked_rc = sl_mutex_lock_ctx(lt->ctx, &lt->m);
	lt->parked_returned = true;
	/* Main still holds the mutex: a try must fail unless the failed
	 * wait left the lock to this task after all. */
	lt->waiter_got_lock_after = sl_mutex_trylock(&lt->m);
	if (lt->waiter_got_lock_after || lt->parked_rc == 0)
		sl_mutex_unlock(&lt->m);
}

static void
lock_ctx_main(void *arg)
{
	struct lock_ctx_test *lt = arg;
	struct sl_context *live = NULL;
	struct sl_task *t;

	sl_mutex_init(&lt->m);
	CHECK_ERR_EQ(sl_context_with_cancel(sl_context_background(), &lt->ctx),
		     0);
	CHECK_ERR_EQ(sl_context_with_cancel(sl_context_background(), &live),
		     0);
	if (lt->ctx == NULL || live == NULL)
		return;

	sl_mutex_lock(&lt->m);
	t = harness_spawn(lock_ctx_waiter, lt, -1);
	/* One processor: the waiter parks on the mutex during the yield. */
	sl_task_yield();
	lt->returned_before_cancel = lt->parked_returned;
	sl_context_cancel(lt->ctx);
	harness_join(t);

	/* An ended context gives up at once on a held mutex. */
	lt->precancelled_rc = sl_mutex_lock_ctx(lt->ctx, &lt->m);
	sl_mutex_unlock(&lt->m);

	/* The departed waiter must not have been left the lock. */
	lt->main_relock = sl_mutex_trylock(&lt->m);
	if (lt->main_relock)
		sl_mutex_unlock(&lt->m);
	lt->free_rc = sl_mutex_lock_ctx(live, &lt->m);
	if (lt->free_rc == 0)
		sl_mutex_unlock(&lt->m);

	sl_context_release(live);
	sl_context_release(lt->ctx);
}

static void
test_mutex_lock_ctx_gives_up_on_cancel(void **state)
{
	struct lock_ctx_test lt;

	(void)state;
	memset(&lt, 0, sizeof(lt));
	harness_run(1, lock_ctx_main, &lt);
	assert_false(lt.returned_before_cancel);
	assert_true(lt.parked_returned);
	assert_int_equal(lt.parked_rc, -ECANCELED);
	assert_false(lt.waiter_got_lock_after);
	assert_int_equal(lt.precancelled_rc, -ECANCELED);
	assert_true(lt.main_relock);
	assert_int_equal(lt.free_rc, 0);
}

/* ---- condition variable ---- */

#define QUEUE_SLOTS 8
#define QUEUE_PRODUCERS 4
#define QUEUE_CONSUMERS 4
#define QUEUE_ITEMS HARNESS_SCALE(2000000, 200000)

struct bounded_queue {
	struct sl_mutex m;
	struct sl_cond not_full;
	struct sl_cond not_empty;
	uint64_t slot[QUEUE_SLOTS];
	unsigned head;
	unsigned count;
	bool finished;
	uint64_t per_producer;
	struct harness_seen seen;
};

struct queue_worker {
	struct bounded_queue *q;
	unsigned id;
};

static void
queue_producer(void *arg)
{
	struct queue_worker *w = arg;
	struct bounded_queue *q = w->q;

	for (uint64_t i = 0; i < q->per_producer; i++) {
		sl_mutex_lock(&q->m);
		while (q->count == QUEUE_SLOTS)
			sl_cond_wait(&q->not_full, &q->m);
		q->slot[(q->head + q->count) % QUEUE_SLOTS] =
			w->id * q->per_producer + i;
		q->count++;
		sl_cond_signal(&q->not_empty);
		sl_mutex_unlock(&q->m);
	}
}

static void
queue_consumer(void *arg)
{
	struct queue_worker *w = arg;
	struct bounded_queue *q = w->q;

	for (;;) {
		uint64_t v;

		sl_mutex_lock(&q->m);
		while (q->count == 0 && !q->finished)
			sl_cond_wait(&q->not_empty, &q->m);
		if (q->count == 0) {
			sl_mutex_unlock(&q->m);
			break;
		}
		v = q->slot[q->head];
		q->head = (q->head + 1) % QUEUE_SLOTS;
		q->count--;
		sl_cond_signal(&q->not_full);
		sl_mutex_unlock(&q->m);
		harness_seen_mark(&q->seen, v);
	}
}

static void
queue_main(void *arg)
{
	struct bounded_queue *q = arg;
	struct queue_worker w[QUEUE_PRODUCERS + QUEUE_CONSUMERS];
	struct sl_task *t[QUEUE_PRODUCERS + QUEUE_CONSUMERS];

	for (unsigned i = 0; i < SL_ARRAY_SIZE(t); i++) {
		bool producer = i < QUEUE_PRODUCERS;

		w[i] = (struct queue_worker){q, producer ? i
							 : i - QUEUE_PRODUCERS};
		t[i] = harness_spawn(producer ? queue_producer : queue_consumer,
				     &w[i], (int)(i % 2));
	}
	for (unsigned i = 0; i < QUEUE_PRODUCERS; i++)
		harness_join(t[i]);

	sl_mutex_lock(&q->m);
	q->finished = true;
	sl_cond_broadcast(&q->not_empty);
	sl_mutex_unlock(&q->m);
	for (unsigned i = QUEUE_PRODUCERS; i < SL_ARRAY_SIZE(t); i++)
		harness_join(t[i]);
}

static void
test_cond_producer_consumer(void **state)
{
	struct bounded_queue *q = calloc(1, sizeof(*q));

	(void)state;
	assert_non_null(q);
	sl_mutex_init(&q->m);
	sl_cond_init(&q->not_full);
	sl_cond_init(&q->not_empty);
	q->per_producer = QUEUE_ITEMS / QUEUE_PRODUCERS;
	harness_seen_init(&q->seen, q->per_producer * QUEUE_PRODUCERS);

	harness_run(2, queue_main, q);
	harness_seen_assert_all(&q->seen);
	assert_int_equal(q->count, 0);
	harness_seen_free(&q->seen);
	free(q);
}

#define COND_WAITERS 16

struct wake_test {
	struct sl_mutex m;
	struct sl_cond c;
	unsigned waiting;
	unsigned tokens;
	unsigned taken;
	bool go;
	unsigned released;
};

static void
token_waiter(void *arg)
{
	struct wake_test *wt = arg;

	sl_mutex_lock(&wt->m);
	wt->waiting++;
	while (wt->tokens == 0)
		sl_cond_wait(&wt->c, &wt->m);
	wt->tokens--;
	wt->taken++;
	sl_mutex_unlock(&wt->m);
}

static void
go_waiter(void *arg)
{
	struct wake_test *wt = arg;

	sl_mutex_lock(&wt->m);
	wt->waiting++;
	while (!wt->go)
		sl_cond_wait(&wt->c, &wt->m);
	wt->released++;
	sl_mutex_unlock(&wt->m);
}

/* Yields until @n tasks have entered their wait.  On one processor a task
 * that counted itself is parked by the time this task runs again. */
static void
wait_for_waiters(struct wake_test *wt, unsigned n)
{
	for (;;) {
		unsigned waiting;

		sl_mutex_lock(&wt->m);
		waiting = wt->waiting;
		sl_mutex_unlock(&wt->m);
		if (waiting >= n)
			return;
		sl_task_yield();
	}
}

/*
 * Every waiter is parked before each wake-up: a signal that woke nobody,
 * or a broadcast that woke only some, leaves a task parked for good and
 * the run hangs (the harness's watchdog then dumps the tasks).
 */
static void
wake_main(void *arg)
{
	struct wake_test *wt = arg;
	struct sl_task *t[COND_WAITERS];

	for (int i = 0; i < COND_WAITERS; i++)
		t[i] = harness_spawn(token_waiter, wt, -1);
	wait_for_waiters(wt, COND_WAITERS);
	for (int i = 0; i < COND_WAITERS; i++) {
		sl_mutex_lock(&wt->m);
		wt->tokens++;
		sl_cond_signal(&wt->c);
		sl_mutex_unlock(&wt->m);
	}
	for (int i = 0; i < COND_WAITERS; i++)
		harness_join(t[i]);

	wt->waiting = 0;
	for (int i = 0; i < COND_WAITERS; i++)
		t[i] = harness_spawn(go_waiter, wt, -1);
	wait_for_waiters(wt, COND_WAITERS);
	sl_mutex_lock(&wt->m);
	wt->go = true;
	sl_cond_broadcast(&wt->c);
	sl_mutex_unlock(&wt->m);
	for (int i = 0; i < COND_WAITERS; i++)
		harness_join(t[i]);

	/* Waking with nobody waiting is harmless. */
	sl_cond_signal(&wt->c);
	sl_cond_broadcast(&wt->c);
}

static void
test_cond_signal_and_broadcast_wake(void **state)
{
	struct wake_test wt;

	(void)state;
	memset(&wt, 0, sizeof(wt));
	sl_mutex_init(&wt.m);
	sl_cond_init(&wt.c);
	harness_run(1, wake_main, &wt);
	assert_int_equal(wt.taken, COND_WAITERS);
	assert_int_equal(wt.tokens, 0);
	assert_int_equal(wt.released, COND_WAITERS);
}

#define BARRIER_TASKS 8
#define BARRIER_ROUNDS HARNESS_SCALE(20000, 2000)

/* A reusable barrier built from a mutex and a condition variable: each
 * round the last task to arrive starts a new generation and broadcasts. */
struct barrier_test {
	struct sl_mutex m;
	struct sl_cond c;
	unsigned arrived;
	uint64_t generation;
	uint64_t round_sum[BARRIER_ROUNDS];
	uint64_t torn_rounds;
};

static void
barrier_task(void *arg)
{
	struct barrier_test *bt = arg;

	for (int r = 0; r < BARRIER_ROUNDS; r++) {
		uint64_t gen;

		sl_mutex_lock(&bt->m);
		bt->round_sum[r]++;
		gen = bt->generation;
		if (++bt->arrived == BARRIER_TASKS) {
			bt->arrived = 0;
			bt->generation++;
			sl_cond_broadcast(&bt->c);
		} else {
			while (bt->generation == gen)
				sl_cond_wait(&bt->c, &bt->m);
		}
		/* Nobody passes a round before everyone reached it. */
		if (bt->round_sum[r] != BARRIER_TASKS)
			bt->torn_rounds++;
		sl_mutex_unlock(&bt->m);
	}
}

static void
barrier_main(void *arg)
{
	struct barrier_test *bt = arg;
	struct sl_task *t[BARRIER_TASKS];

	for (int i = 0; i < BARRIER_TASKS; i++)
		t[i] = harness_spawn(barrier_task, bt, i % 2);
	for (int i = 0; i < BARRIER_TASKS; i++)
		harness_join(t[i]);
}

static void
test_cond_broadcast_barrier_rounds(void **state)
{
	struct barrier_test *bt = calloc(1, sizeof(*bt));

	(void)state;
	assert_non_null(bt);
	sl_mutex_init(&bt->m);
	sl_cond_init(&bt->c);
	harness_run(2, barrier_main, bt);
	assert_int_equal(bt->generation, BARRIER_ROUNDS);
	assert_int_equal(bt->torn_rounds, 0);
	for (int r = 0; r < BARRIER_ROUNDS; r++)
		assert_int_equal(bt->round_sum[r], BARRIER_TASKS);
	free(bt);
}

struct cond_ctx_test {
	struct sl_mutex m;
	struct sl_cond c;
	struct sl_context *ctx;
	bool waiting;
	bool returned;
	int rc;
	bool try_after_return;
	bool main_took_lock;
	bool returned_while_main_held;
	bool main_relock;
};

static void
cond_ctx_waiter(void *arg)
{
	struct cond_ctx_test *ct = arg;

	sl_mutex_lock(&ct->m);
	ct->waiting = true;
	ct->rc = sl_cond_wait_ctx(ct->ctx, &ct->c, &ct->m);
	ct->returned = true;
	/* Main has let go by now, so if this fails the waiter holds it.
	 * Either way this task holds it now, once. */
	ct->try_after_return = sl_mutex_trylock(&ct->m);
	sl_mutex_unlock(&ct->m);
}

/*
 * One processor.  The waiter parks in the wait and so lets the mutex go;
 * main takes it and cancels.  The waiter cannot return while main holds
 * the mutex, and returns holding it once main lets go.
 */
static void
cond_ctx_main(void *arg)
{
	struct cond_ctx_test *ct = arg;
	struct sl_task *t;

	sl_mutex_init(&ct->m);
	sl_cond_init(&ct->c);
	CHECK_ERR_EQ(sl_context_with_cancel(sl_context_background(), &ct->ctx),
		     0);
	if (ct->ctx == NULL)
		return;

	t = harness_spawn(cond_ctx_waiter, ct, -1);
	sl_task_yield();
	CHECK(ct->waiting);
	ct->main_took_lock = sl_mutex_trylock(&ct->m);
	if (!ct->main_took_lock)
		sl_mutex_lock(&ct->m);
	sl_context_cancel(ct->ctx);
	for (int i = 0; i < 8; i++)
		sl_task_yield();
	ct->returned_while_main_held = ct->returned;
	sl_mutex_unlock(&ct->m);

	harness_join(t);
	ct->main_relock = sl_mutex_trylock(&ct->m);
	if (ct->main_relock)
		sl_mutex_unlock(&ct->m);
	sl_context_release(ct->ctx);
}

static void
test_cond_wait_ctx_returns_holding_mutex(void **state)
{
	struct cond_ctx_test ct;

	(void)state;
	memset(&ct, 0, sizeof(ct));
	harness_run(1, cond_ctx_main, &ct);
	assert_true(ct.main_took_lock);
	assert_false(ct.returned_while_main_held);
	assert_true(ct.returned);
	assert_int_equal(ct.rc, -ECANCELED);
	assert_false(ct.try_after_return);
	assert_true(ct.main_relock);
}

/* ---- once ---- */

#define ONCE_CALLERS 64
#define ONCE_LATE 16

struct once_test {
	struct sl_once once;
	uint64_t runs;
	uint64_t value;
	_Atomic uint64_t saw_wrong_value;
	_Atomic uint64_t saw_wrong_runs;
	uint64_t callers_back;
};

/* Yields while running so that other callers arrive and must wait. */
static void
once_fn(void *arg)
{
	struct once_test *ot = arg;

	ot->runs++;
	for (int i = 0; i < 16; i++)
		sl_task_yield();
	ot->value = 42;
}

static void
once_caller(void *arg)
{
	struct once_test *ot = arg;

	sl_once_do(&ot->once, once_fn, ot);
	/* Plain reads of once_fn's plain writes, ordered by the once. */
	if (ot->value != 42)
		atomic_fetch_add(&ot->saw_wrong_value, 1);
	if (ot->runs != 1)
		atomic_fetch_add(&ot->saw_wrong_runs, 1);
}

static void
once_main(void *arg)
{
	struct once_test *ot = arg;
	struct sl_task *t[ONCE_CALLERS];
	struct sl_task *late[ONCE_LATE];

	for (int i = 0; i < ONCE_CALLERS; i++)
		t[i] = harness_spawn(once_caller, ot, i % 2);
	for (int i = 0; i < ONCE_CALLERS; i++)
		harness_join(t[i]);

	/* Late callers, here and in new tasks, find it done. */
	once_caller(ot);
	for (int i = 0; i < ONCE_LATE; i++)
		late[i] = harness_spawn(once_caller, ot, i % 2);
	for (int i = 0; i < ONCE_LATE; i++)
		harness_join(late[i]);
	ot->callers_back = ONCE_CALLERS + 1 + ONCE_LATE;
}

static void
test_once_runs_exactly_once(void **state)
{
	struct once_test ot = {.once = SL_ONCE_INIT};

	(void)state;
	harness_run(2, once_main, &ot);
	assert_int_equal(ot.runs, 1);
	assert_int_equal(ot.value, 42);
	assert_int_equal(atomic_load(&ot.saw_wrong_value), 0);
	assert_int_equal(atomic_load(&ot.saw_wrong_runs), 0);
	assert_int_equal(ot.callers_back, ONCE_CALLERS + 1 + ONCE_LATE);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mutex_excludes_many_tasks),
		cmocka_unit_test(test_mutex_trylock_only_when_free),
		cmocka_unit_test(test_mutex_lock_ctx_gives_up_on_cancel),
		cmocka_unit_test(test_cond_producer_consumer),
		cmocka_unit_test(test_cond_signal_and_broadcast_wake),
		cmocka_unit_test(test_cond_broadcast_barrier_rounds),
		cmocka_unit_test(test_cond_wait_ctx_returns_holding_mutex),
		cmocka_unit_test(test_once_runs_exactly_once),
	};

	harness_init();
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
