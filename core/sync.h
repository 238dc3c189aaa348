/* SPDX-License-Identifier: MIT */
/*
 * Task-aware synchronisation: a mutex, a condition variable and a once.
 * Waiting parks the task, never the thread, so a processor blocked on a
 * lock keeps running its other tasks.  Use these, not pthread primitives,
 * inside tasks.
 */
#ifndef SLUICE_CORE_SYNC_H
#define SLUICE_CORE_SYNC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/base.h"

struct sl_context;

struct sl_mutex {
	_Atomic uint32_t state;
	_Atomic uint32_t qlock;
	void *waiters[2];
};

#define SL_MUTEX_INIT {0, 0, {NULL, NULL}}

/** sl_mutex_init() - an unlocked mutex. */
void sl_mutex_init(struct sl_mutex *m);

/** sl_mutex_lock() - take the mutex, parking while another task holds it. */
void sl_mutex_lock(struct sl_mutex *m);

/**
 * sl_mutex_lock_ctx() - take the mutex or give up when @ctx ends.
 * Return: 0, or @ctx's error.
 */
int sl_mutex_lock_ctx(struct sl_context *ctx, struct sl_mutex *m);

/** sl_mutex_trylock() - take the mutex if it is free. */
bool sl_mutex_trylock(struct sl_mutex *m);

/** sl_mutex_unlock() - release; wakes one waiting task if there is one. */
void sl_mutex_unlock(struct sl_mutex *m);

struct sl_cond {
	_Atomic uint32_t qlock;
	void *waiters[2];
};

#define SL_COND_INIT {0, {NULL, NULL}}

void sl_cond_init(struct sl_cond *c);

/**
 * sl_cond_wait() - release @m, park until signalled, take @m again.
 * As with any condition variable, re-check the predicate in a loop.
 */
void sl_cond_wait(struct sl_cond *c, struct sl_mutex *m);

/**
 * sl_cond_wait_ctx() - wait, or stop waiting when @ctx ends.  @m is held
 * again on return either way.  Return: 0, or @ctx's error.
 */
int sl_cond_wait_ctx(struct sl_context *ctx, struct sl_cond *c,
		     struct sl_mutex *m);

/** sl_cond_signal() - wake one waiting task, if any. */
void sl_cond_signal(struct sl_cond *c);

/** sl_cond_broadcast() - wake all waiting tasks. */
void sl_cond_broadcast(struct sl_cond *c);

struct sl_once {
	_Atomic uint32_t state;
	_Atomic uint32_t qlock;
	void *waiters[2];
};

#define SL_ONCE_INIT {0, 0, {NULL, NULL}}

/**
 * sl_once_do() - run @fn(@arg) exactly once across all callers of @once;
 * callers that arrive while it runs park until it has finished.
 */
void sl_once_do(struct sl_once *once, void (*fn)(void *arg), void *arg);

#endif /* SLUICE_CORE_SYNC_H */
