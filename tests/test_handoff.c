/* SPDX-License-Identifier: MIT */
/*
 * Tests of the hand-off: a task that blocks its thread inside
 * sl_blocking_enter()/sl_blocking_exit() (or sl_blocking_call()) must not
 * stall the other tasks of its processor.
 *
 * The runtime has a single processor, and a blocker reads from a pipe that
 * only the other tasks write to, after they have counted a given amount of
 * progress while the blocker was inside its blocking call.  Without a
 * hand-off nothing else could run and nothing would write.  So that such a
 * failure reports itself instead of hanging, a rescuer thread writes the
 * pipe if nothing else has after a generous delay, and the test then fails
 * on the progress it finds; on the passing path no timing is involved.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/chan.h"
#include "core/runtime.h"
#include "core/task.h"

#include "harness.h"

#define RESCUE_SECONDS 60
#define PROGRESS_TARGET 10000
#define WORKERS 4
#define MAX_BLOCKERS 4

enum blocking_style {
	STYLE_ENTER_EXIT,
	STYLE_CALL,
};

/* What sets the other tasks going while the blockers wait. */
enum wake_source {
	WAKE_RUNNABLE,	/* workers are runnable when the call starts */
	WAKE_THREAD,	/* a plain thread sends to the workers' channel */
	WAKE_TIMER,	/* the workers' sleep ends during the call */
};

struct handoff;

struct blocker {
	struct handoff *h;
	int fd[2];
	char got;
	ssize_t read_rc;
	uint64_t progress_at_release;
	bool continued;
	int proc_after;
};

struct handoff {
	enum blocking_style style;
	enum wake_source wake;
	unsigned n_blockers;
	struct blocker b[MAX_BLOCKERS];
	struct sl_chan *kick;
	struct sl_chan *results;

	/* How many blockers are inside their call; workers count
	 * progress only while all of them are. */
	_Atomic unsigned inside;
	_Atomic uint64_t progress;
	_Atomic bool give_up;

	/* The rescuer thread, and the kicker thread for WAKE_THREAD. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool released;
	bool all_inside;
	bool rescued;
	pthread_t rescuer;
	pthread_t kicker;

	uint64_t handoffs_before;
	uint64_t handoffs_after;
	uint64_t live_after;
};

static void
handoff_signal(struct handoff *h, bool *flag)
{
	pthread_mutex_lock(&h->lock);
	*flag = true;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
}

static void
release_blockers(struct handoff *h)
{
	static const char byte = 'x';

	for (unsigned i = 0; i < h->n_blockers; i++)
		CHECK_INT_EQ(write(h->b[i].fd[1], &byte, 1), 1);
}

/* The blocking part proper: runs on the blocker's own thread. */
static void *
blocking_read(void *arg)
{
	struct blocker *b = arg;
	struct handoff *h = b->h;

	if (atomic_fetch_add(&h->inside, 1) + 1 == h->n_blockers)
		handoff_signal(h, &h->all_inside);
	b->read_rc = read(b->fd[0], &b->got, 1);
	b->progress_at_release = atomic_load(&h->progress);
	atomic_fetch_sub(&h->inside, 1);
	return NULL;
}

static void
blocker_task(void *arg)
{
	struct blocker *b = arg;
	struct handoff *h = b->h;

	if (h->style == STYLE_CALL) {
		CHECK(sl_blocking_call(blocking_read, b) == NULL);
	} else {
		sl_blocking_enter();
		blocking_read(b);
		sl_blocking_exit();
	}

	/* Back in the runtime: the task goes on as any other. */
	sl_task_yield();
	b->proc_after = sl_runtime_proc_id();
	b->continued = true;
	CHECK_ERR_EQ(sl_chan_send(h->results, &b->got), 0);
}

/*
 * Counts progress only while every blocker is inside its call.  The one
 * that takes the count to the target writes the pipes.
 */
static void
worker_task(void *arg)
{
	struct handoff *h = arg;

	if (h->wake == WAKE_THREAD)
		CHECK_ERR_EQ(sl_chan_recv(h->kick, NULL), 0);
	else if (h->wake == WAKE_TIMER)
		sl_task_sleep(2 * SL_NSEC_PER_MSEC);

	for (;;) {
		uint64_t p;

		if (atomic_load(&h->inside) < h->n_blockers) {
			if (atomic_load(&h->progress) >= PROGRESS_TARGET ||
			    atomic_load(&h->give_up))
				return;
			sl_task_yield();
			continue;
		}
		p = atomic_fetch_add(&h->progress, 1) + 1;
		if (p == PROGRESS_TARGET) {
			handoff_signal(h, &h->released);
			release_blockers(h);
		}
		if (p >= PROGRESS_TARGET)
			return;
		sl_task_yield();
	}
}

/* Writes the pipes itself if nothing else has after RESCUE_SECONDS. */
static void *
rescuer_thread(void *arg)
{
	struct handoff *h = arg;
	struct timespec deadline;
	int rc = 0;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += RESCUE_SECONDS;
	pthread_mutex_lock(&h->lock);
	while (!h->released && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&h->cond, &h->lock, &deadline);
	if (!h->released) {
		h->released = true;
		h->rescued = true;
	}
	pthread_mutex_unlock(&h->lock);

	if (h->rescued) {
		atomic_store(&h->give_up, true);
		release_blockers(h);
	}
	return NULL;
}

/* Waits until every blocker is inside its call, then wakes the workers
 * from outside the runtime. */
static void *
kicker_thread(void *arg)
{
	struct handoff *h = arg;

	pthread_mutex_lock(&h->lock);
	while (!h->all_inside && !h->released)
		pthread_cond_wait(&h->cond, &h->lock);
	pthread_mutex_unlock(&h->lock);

	for (int i = 0; i < WORKERS; i++)
		while (!sl_chan_try_send(h->kick, NULL))
			sched_yield();
	return NULL;
}

static void *
join_helpers(void *arg)
{
	struct handoff *h = arg;

	pthread_join(h->rescuer, NULL);
	if (h->wake == WAKE_THREAD)
		pthread_join(h->kicker, NULL);
	return NULL;
}

static void
handoff_main(void *arg)
{
	struct handoff *h = arg;
	struct sl_task *t[WORKERS + MAX_BLOCKERS];
	unsigned n = 0;

	h->handoffs_before = HARNESS_STATS_SUM(handoffs);
	h->kick = sl_chan_create(0, WORKERS);
	h->results = sl_chan_create(1, MAX_BLOCKERS);
	CHECK(h->kick != NULL && h->results != NULL);
	CHECK_INT_EQ(pthread_create(&h->rescuer, NULL, rescuer_thread, h), 0);
	if (h->wake == WAKE_THREAD)
		CHECK_INT_EQ(pthread_create(&h->kicker, NULL, kicker_thread, h),
			     0);

	/* Workers first, so that with WAKE_RUNNABLE they are queued when
	 * the blockers start. */
	for (unsigned i = 0; i < WORKERS; i++)
		t[n++] = harness_spawn(worker_task, h, -1);
	for (unsigned i = 0; i < h->n_blockers; i++)
		t[n++] = harness_spawn(blocker_task, &h->b[i], -1);
	for (unsigned i = 0; i < h->n_blockers; i++) {
		char got = 0;

		CHECK_ERR_EQ(sl_chan_recv(h->results, &got), 0);
		CHECK_INT_EQ(got, 'x');
	}
	for (unsigned i = 0; i < n; i++)
		harness_join(t[i]);

	handoff_signal(h, &h->released);
	sl_blocking_call(join_helpers, h);
	h->handoffs_after = HARNESS_STATS_SUM(handoffs);
	h->live_after = sl_runtime_live_tasks();
	sl_chan_destroy(h->kick);
	sl_chan_destroy(h->results);
}

static void
run_handoff(enum blocking_style style, enum wake_source wake,
	    unsigned n_blockers)
{
	struct handoff *h = calloc(1, sizeof(*h));
	pthread_condattr_t attr;

	assert_non_null(h);
	h->style = style;
	h->wake = wake;
	h->n_blockers = n_blockers;
	for (unsigned i = 0; i < n_blockers; i++) {
		h->b[i].h = h;
		h->b[i].proc_after = -1;
		assert_int_equal(pipe2(h->b[i].fd, O_CLOEXEC), 0);
	}
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&h->cond, &attr);
	pthread_condattr_destroy(&attr);
	pthread_mutex_init(&h->lock, NULL);

	harness_run(1, handoff_main, h);

	if (h->rescued)
		fail_msg("no progress during the blocking call: %llu of %d "
			 "steps after %d s",
			 (unsigned long long)atomic_load(&h->progress),
			 PROGRESS_TARGET, RESCUE_SECONDS);
	for (unsigned i = 0; i < n_blockers; i++) {
		struct blocker *b = &h->b[i];

		assert_int_equal(b->read_rc, 1);
		assert_int_equal(b->got, 'x');
		assert_at_least(b->progress_at_release, PROGRESS_TARGET);
		assert_true(b->continued);
		assert_int_equal(b->proc_after, 0);
		close(b->fd[0]);
		close(b->fd[1]);
	}
	print_message("handoffs: %llu\n",
		      (unsigned long long)(h->handoffs_after -
					   h->handoffs_before));
	assert_at_least(h->handoffs_after, h->handoffs_before + 1);
	assert_int_equal(h->live_after, 1);

	pthread_cond_destroy(&h->cond);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

static void
test_handoff_runnable_tasks_progress(void **state)
{
	(void)state;
	run_handoff(STYLE_ENTER_EXIT, WAKE_RUNNABLE, 1);
}

static void
test_handoff_blocking_call_progress(void **state)
{
	(void)state;
	run_handoff(STYLE_CALL, WAKE_RUNNABLE, 1);
}

static void
test_handoff_work_woken_by_thread(void **state)
{
	(void)state;
	run_handoff(STYLE_ENTER_EXIT, WAKE_THREAD, 1);
}

static void
test_handoff_timer_fires_during_call(void **state)
{
	(void)state;
	run_handoff(STYLE_CALL, WAKE_TIMER, 1);
}

static void
test_handoff_many_blocked_calls(void **state)
{
	(void)state;
	run_handoff(STYLE_ENTER_EXIT, WAKE_RUNNABLE, MAX_BLOCKERS);
	run_handoff(STYLE_CALL, WAKE_THREAD, MAX_BLOCKERS);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handoff_runnable_tasks_progress),
		cmocka_unit_test(test_handoff_blocking_call_progress),
		cmocka_unit_test(test_handoff_work_woken_by_thread),
		cmocka_unit_test(test_handoff_timer_fires_during_call),
		cmocka_unit_test(test_handoff_many_blocked_calls),
	};

	harness_init();
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
