/* SPDX-License-Identifier: MIT */
/*
 * Tasks: coroutines with stacks of their own, scheduled by the runtime across
 * processors.  Also sleep, yield and the wait group.
 *
 * All calls here are made from inside a task.
 */
#ifndef SLUICE_CORE_TASK_H
#define SLUICE_CORE_TASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/runtime.h"

struct sl_task;
struct sl_context;

struct sl_task_opts {
	const char *name;	/* copied (31 bytes kept); NULL: unnamed */
	size_t stack_size;	/* 0 takes the runtime's default */
	int proc;		/* processor to start on, -1 for the caller's */
	bool pinned;		/* never migrate to another processor */
};

/**
 * sl_task_spawn() - create a task running @fn(@arg).
 * @opts: NULL for the defaults.
 * @out: receives a handle to join; NULL makes the task detached.
 *
 * The task starts on the chosen processor and, unless pinned, may be stolen
 * by an idle one.  Its stack comes from a per-processor cache.
 *
 * Return: 0, -ENOMEM, or -EINVAL for a bad processor or stack size.
 */
int sl_task_spawn(sl_task_fn fn, void *arg, const struct sl_task_opts *opts,
		  struct sl_task **out);

/** sl_go() - spawn a detached task with default options. */
int sl_go(sl_task_fn fn, void *arg);

/**
 * sl_task_join() - wait until @t has returned, then release the handle.
 * Return: 0.
 */
int sl_task_join(struct sl_task *t);

/**
 * sl_task_join_ctx() - sl_task_join() that gives up when @ctx ends.
 *
 * Return: 0 (handle released), or @ctx's error (-ECANCELED or -ETIMEDOUT);
 * the handle then stays valid, to be joined or detached later.
 */
int sl_task_join_ctx(struct sl_context *ctx, struct sl_task *t);

/** sl_task_detach() - give up the handle; the task frees itself at exit. */
void sl_task_detach(struct sl_task *t);

/** sl_task_yield() - let other runnable tasks run, then continue. */
void sl_task_yield(void);

/**
 * sl_task_sleep() - park for at least @ns nanoseconds.  Return: 0.
 */
int sl_task_sleep(uint64_t ns);

/** sl_task_sleep_ctx() - sleep; returns early with @ctx's error. */
int sl_task_sleep_ctx(struct sl_context *ctx, uint64_t ns);

/** sl_task_id() - the calling task's id (ids start at 1); 0 outside tasks. */
uint64_t sl_task_id(void);

/** sl_task_name() - the calling task's name; "" if unnamed or outside tasks. */
const char *sl_task_name(void);

/** sl_task_set_note() - note what the task is doing, for task dumps. */
void sl_task_set_note(const char *static_note);

/*
 * A wait group counts outstanding work; wait parks until the count is zero.
 * Any task may add or finish; one or more tasks may wait.
 */
struct sl_waitgroup {
	_Atomic int64_t count;
	_Atomic uint32_t lock;
	void *waiters[2];
};

/** sl_waitgroup_init() - a wait group with count zero. */
void sl_waitgroup_init(struct sl_waitgroup *wg);

/** sl_waitgroup_add() - add @delta (may be negative) to the count. */
void sl_waitgroup_add(struct sl_waitgroup *wg, int64_t delta);

/** sl_waitgroup_done() - subtract one. */
void sl_waitgroup_done(struct sl_waitgroup *wg);

/** sl_waitgroup_wait() - park until the count is zero. */
void sl_waitgroup_wait(struct sl_waitgroup *wg);

/**
 * sl_waitgroup_wait_ctx() - wait, giving up when @ctx ends.
 * Return: 0, or @ctx's error.
 */
int sl_waitgroup_wait_ctx(struct sl_context *ctx, struct sl_waitgroup *wg);

#endif /* SLUICE_CORE_TASK_H */
