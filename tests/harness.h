/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the core/ test programs.
 *
 * cmocka ends a failing test with a longjmp back to where the test started.
 * That is only sound on the test's own thread and stack, and a task runs on
 * a stack of its own on one of the runtime's threads.  Code that runs inside
 * tasks therefore checks with the CHECK_* macros below: a failed check prints
 * where and why at once and is counted, and harness_run() fails the test from
 * the test thread once sl_runtime_run() has returned.  Tests keep their
 * results in variables and assert on them after the run wherever they can.
 */
#ifndef SLUICE_TESTS_HARNESS_H
#define SLUICE_TESTS_HARNESS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/runtime.h"
#include "core/task.h"

/*
 * Sizes for stress loops: the full figure in plain builds and a smaller one
 * under a sanitizer, which slows the code down by five to twenty times.
 */
#ifdef SL_SANITIZER
#define HARNESS_SCALE(plain, sanitized) (sanitized)
#else
#define HARNESS_SCALE(plain, sanitized) (plain)
#endif

/* Longer than any test takes; shorter than ctest's timeout of 300 s. */
#define HARNESS_HANG_SECONDS 120

void harness_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Failed checks since the last harness_reset(). */
uint64_t harness_failures(void);

/* Forget earlier failures; harness_run() does this itself. */
void harness_reset(void);

/* From the test thread: fail the test if a check failed since the reset. */
void harness_assert_clean(void);

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond))                                                   \
			harness_fail(__FILE__, __LINE__, "%s", #cond);         \
	} while (0)

#define CHECK_INT_EQ(a, b)                                                     \
	do {                                                                   \
		long long check_a_ = (long long)(a);                           \
		long long check_b_ = (long long)(b);                           \
		if (check_a_ != check_b_)                                      \
			harness_fail(__FILE__, __LINE__,                       \
				     "%s == %s: %lld != %lld", #a, #b,         \
				     check_a_, check_b_);                      \
	} while (0)

#define CHECK_UINT_EQ(a, b)                                                    \
	do {                                                                   \
		unsigned long long check_a_ = (unsigned long long)(a);         \
		unsigned long long check_b_ = (unsigned long long)(b);         \
		if (check_a_ != check_b_)                                      \
			harness_fail(__FILE__, __LINE__,                       \
				     "%s == %s: %llu != %llu", #a, #b,         \
				     check_a_, check_b_);                      \
	} while (0)

#define CHECK_UINT_GE(a, b)                                                    \
	do {                                                                   \
		unsigned long long check_a_ = (unsigned long long)(a);         \
		unsigned long long check_b_ = (unsigned long long)(b);         \
		if (check_a_ < check_b_)                                       \
			harness_fail(__FILE__, __LINE__,                       \
				     "%s >= %s: %llu < %llu", #a, #b,          \
				     check_a_, check_b_);                      \
	} while (0)

/* For return codes: prints both values with their messages. */
#define CHECK_ERR_EQ(a, b)                                                     \
	do {                                                                   \
		int check_a_ = (int)(a);                                       \
		int check_b_ = (int)(b);                                       \
		if (check_a_ != check_b_)                                      \
			harness_fail(__FILE__, __LINE__,                       \
				     "%s == %s: %d (%s) != %d (%s)", #a, #b,   \
				     check_a_, sl_strerror(check_a_),          \
				     check_b_, sl_strerror(check_b_));         \
	} while (0)

/* cmocka has no ">=" assert; a range with no top prints both values. */
#define assert_at_least(value, minimum)                                        \
	assert_in_range((value), (minimum), UINTMAX_MAX)

/*
 * Save the crash handlers in place before cmocka installs its own, so that
 * harness_run() can put them back: a crash on a runtime thread then dumps
 * core, or gives the sanitizer's report, instead of running cmocka's handler
 * on a thread it does not know.  Call once from main().
 */
void harness_init(void);

/*
 * Run @main_fn(@arg) as the main task of a runtime with @nprocs processors
 * and fail the test (from the calling thread) if the run did not return 0 or
 * any check failed meanwhile.  Skips the test when the kernel refuses
 * io_uring.  A watchdog dumps every task and aborts if the run hangs.
 */
void harness_run(unsigned nprocs, sl_task_fn main_fn, void *arg);
void harness_run_opts(struct sl_runtime_opts *opts, sl_task_fn main_fn,
		      void *arg);

/* Spawn on @proc (-1: the caller's), counting a failure if that fails. */
#define harness_spawn(fn, arg, proc)                                           \
	harness_spawn_at((fn), (arg), (proc), __FILE__, __LINE__)
struct sl_task *harness_spawn_at(sl_task_fn fn, void *arg, int proc,
				 const char *file, int line);

/* Join @t unless spawning it failed. */
#define harness_join(t) harness_join_at((t), __FILE__, __LINE__)
void harness_join_at(struct sl_task *t, const char *file, int line);

/* The sum over all processors of one sl_proc_stats counter. */
uint64_t harness_stats_sum(size_t field_offset);
#define HARNESS_STATS_SUM(field)                                               \
	harness_stats_sum(offsetof(struct sl_proc_stats, field))

/* A small, fast, seeded generator (splitmix64) for shuffles and choices. */
uint64_t harness_random(uint64_t *state);

/*
 * Exactly-once bookkeeping for stress tests: items are numbered 0..n-1 and
 * every consumer marks what it received.  A mark that was already set, or is
 * out of range, is a failure reported at once.
 */
struct harness_seen {
	void *storage;
	_Atomic uint64_t *words;
	uint64_t n;
	_Atomic uint64_t marked;
	_Atomic uint64_t sum;
};

void harness_seen_init(struct harness_seen *s, uint64_t n);
void harness_seen_mark(struct harness_seen *s, uint64_t item);

/* cmocka asserts, from the test thread: every item arrived exactly once. */
void harness_seen_assert_all(struct harness_seen *s);
void harness_seen_free(struct harness_seen *s);

#endif /* SLUICE_TESTS_HARNESS_H */
