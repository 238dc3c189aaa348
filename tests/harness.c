/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the core/ test programs; see harness.h.
 */
#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/base.h"
#include "core/runtime.h"
#include "core/task.h"

#include "harness.h"

/* Enough to see what went wrong without flooding the log from a loop. */
#define HARNESS_PRINTED_FAILURES 40

static _Atomic uint64_t failures;
static char first_failure[512];

static const int crash_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGSYS};
static struct sigaction saved_crash_actions[SL_ARRAY_SIZE(crash_signals)];

void
harness_fail(const char *file, int line, const char *fmt, ...)
{
	uint64_t nth = atomic_fetch_add(&failures, 1);
	char msg[448];
	va_list ap;

	if (nth >= HARNESS_PRINTED_FAILURES)
		return;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	/* Only the first failure writes here, and the test thread reads it
	 * after the runtime has stopped, so no lock is needed. */
	if (nth == 0)
		snprintf(first_failure, sizeof(first_failure), "%s:%d: %s",
			 file, line, msg);
	if (sl_task_id() == 0)
		fprintf(stderr, "%s:%d: check failed: %s\n", file, line, msg);
	else
		fprintf(stderr, "%s:%d: check failed in task %llu (%s): %s\n",
			file, line, (unsigned long long)sl_task_id(),
			sl_task_name(), msg);
}

uint64_t
harness_failures(void)
{
	return atomic_load(&failures);
}

void
harness_reset(void)
{
	atomic_store(&failures, 0);
	first_failure[0] = '\0';
}

void
harness_assert_clean(void)
{
	uint64_t n = harness_failures();

	if (n != 0)
		fail_msg("%llu checks failed during the run; the first: %s",
			 (unsigned long long)n, first_failure);
}

void
harness_init(void)
{
	for (size_t i = 0; i < SL_ARRAY_SIZE(crash_signals); i++)
		sigaction(crash_signals[i], NULL, &saved_crash_actions[i]);
}

static void
restore_crash_handlers(void)
{
	for (size_t i = 0; i < SL_ARRAY_SIZE(crash_signals); i++)
		sigaction(crash_signals[i], &saved_crash_actions[i], NULL);
}

/*
 * Whether this kernel lets the process create an io_uring at all (it may be
 * too old, or a seccomp filter may refuse the call).  When it does not, a
 * runtime start failure is the environment's and the test is skipped; when
 * it does, the same failure is the runtime's and fails the test.
 */
static bool
kernel_has_io_uring(void)
{
	struct io_uring ring;
	int rc = io_uring_queue_init(4, &ring, 0);

	if (rc == -ENOSYS || rc == -EPERM)
		return false;
	if (rc == 0)
		io_uring_queue_exit(&ring);
	return true;
}

struct watchdog {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool finished;
};

static void
watchdog_report(void)
{
	fprintf(stderr,
		"\nThe run is still going after %d s; it is taken to hang.\n"
		"Live tasks: %llu.  Task dump:\n",
		HARNESS_HANG_SECONDS,
		(unsigned long long)sl_runtime_live_tasks());
	sl_runtime_dump_tasks(stderr);

	for (unsigned p = 0; p < SL_MAX_PROCS; p++) {
		struct sl_proc_stats st;

		if (sl_runtime_proc_stats(p, &st) != 0)
			break;
		fprintf(stderr,
			"proc %u: run %llu parks %llu steals %llu "
			"handoffs %llu runq %u idle %u\n",
			p, (unsigned long long)st.tasks_run,
			(unsigned long long)st.parks,
			(unsigned long long)st.steals,
			(unsigned long long)st.handoffs, st.runq_len, st.idle);
	}
	fflush(stderr);
}

static void *
watchdog_main(void *arg)
{
	struct watchdog *w = arg;
	struct timespec deadline;
	int rc = 0;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += HARNESS_HANG_SECONDS;

	pthread_mutex_lock(&w->lock);
	while (!w->finished && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&w->cond, &w->lock, &deadline);
	pthread_mutex_unlock(&w->lock);

	if (rc == ETIMEDOUT && !w->finished) {
		watchdog_report();
		abort();
	}
	return NULL;
}

static void
watchdog_start(struct watchdog *w, pthread_t *thread)
{
	pthread_condattr_t attr;

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cond, &attr);
	pthread_condattr_destroy(&attr);
	pthread_mutex_init(&w->lock, NULL);
	w->finished = false;

	assert_int_equal(pthread_create(thread, NULL, watchdog_main, w), 0);
}

static void
watchdog_stop(struct watchdog *w, pthread_t thread)
{
	pthread_mutex_lock(&w->lock);
	w->finished = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);

	pthread_join(thread, NULL);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
}

void
harness_run_opts(struct sl_runtime_opts *opts, sl_task_fn main_fn, void *arg)
{
	struct watchdog w;
	pthread_t thread;
	int rc;

	harness_reset();
	restore_crash_handlers();

	watchdog_start(&w, &thread);
	rc = sl_runtime_run(opts, main_fn, arg);
	watchdog_stop(&w, thread);

	if (rc != 0 && !kernel_has_io_uring()) {
		print_message("io_uring is not available: %s\n",
			      sl_runtime_error());
		skip();
	}
	if (rc != 0)
		print_error("sl_runtime_run: %s (%s)\n", sl_strerror(rc),
			    sl_runtime_error());
	assert_int_equal(rc, 0);
	harness_assert_clean();
}

void
harness_run(unsigned nprocs, sl_task_fn main_fn, void *arg)
{
	struct sl_runtime_opts opts;

	sl_runtime_opts_init(&opts);
	opts.nprocs = nprocs;
	harness_run_opts(&opts, main_fn, arg);
}

struct sl_task *
harness_spawn_at(sl_task_fn fn, void *arg, int proc, const char *file,
		 int line)
{
	struct sl_task_opts opts = {.proc = proc};
	struct sl_task *t = NULL;
	int rc = sl_task_spawn(fn, arg, &opts, &t);

	if (rc != 0) {
		harness_fail(file, line, "spawn on proc %d: %s", proc,
			     sl_strerror(rc));
		return NULL;
	}
	return t;
}

void
harness_join_at(struct sl_task *t, const char *file, int line)
{
	int rc;

	if (t == NULL)
		return;
	rc = sl_task_join(t);
	if (rc != 0)
		harness_fail(file, line, "join: %s", sl_strerror(rc));
}

uint64_t
harness_stats_sum(size_t field_offset)
{
	uint64_t sum = 0;

	for (unsigned p = 0; p < sl_runtime_nprocs(); p++) {
		struct sl_proc_stats st;
		uint64_t v;

		CHECK_ERR_EQ(sl_runtime_proc_stats(p, &st), 0);
		memcpy(&v, (const char *)&st + field_offset, sizeof(v));
		sum += v;
	}
	return sum;
}

uint64_t
harness_random(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void
harness_seen_init(struct harness_seen *s, uint64_t n)
{
	s->n = n;
	s->storage = calloc((n + 63) / 64, sizeof(*s->words));
	assert_non_null(s->storage);
	s->words = s->storage;
	atomic_init(&s->marked, 0);
	atomic_init(&s->sum, 0);
}

void
harness_seen_mark(struct harness_seen *s, uint64_t item)
{
	uint64_t bit;
	uint64_t old;

	if (item >= s->n) {
		harness_fail(__FILE__, __LINE__,
			     "item %llu is out of range (n = %llu)",
			     (unsigned long long)item,
			     (unsigned long long)s->n);
		return;
	}

	bit = 1ull << (item % 64);
	old = atomic_fetch_or_explicit(&s->words[item / 64], bit,
				       memory_order_relaxed);
	if (old & bit)
		harness_fail(__FILE__, __LINE__, "item %llu received twice",
			     (unsigned long long)item);
	atomic_fetch_add_explicit(&s->marked, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->sum, item, memory_order_relaxed);
}

void
harness_seen_assert_all(struct harness_seen *s)
{
	uint64_t missing = 0;
	uint64_t first_missing = UINT64_MAX;

	for (uint64_t i = 0; i < s->n; i++) {
		uint64_t w = atomic_load(&s->words[i / 64]);

		if (w & (1ull << (i % 64)))
			continue;
		if (missing++ == 0)
			first_missing = i;
	}
	if (missing != 0)
		print_error("%llu items never arrived, the first is %llu\n",
			    (unsigned long long)missing,
			    (unsigned long long)first_missing);

	assert_int_equal(missing, 0);
	assert_int_equal(atomic_load(&s->marked), s->n);
	assert_int_equal(atomic_load(&s->sum), s->n * (s->n - 1) / 2);
}

void
harness_seen_free(struct harness_seen *s)
{
	free(s->storage);
	s->storage = NULL;
	s->words = NULL;
}
