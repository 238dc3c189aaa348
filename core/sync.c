/* SPDX-License-Identifier: MIT */
/*
 * Task-aware mutex, condition variable, once and wait group.
 *
 * All four park waiting tasks on a wait queue guarded by a spinlock word of
 * their own; the spinlock is held only to add or remove a waiter, never
 * while a task runs user code, so a spinning thread never waits for a
 * parked task.
 *
 * Mutex.  state holds LOCKED and WAITERS bits.  lock() tries one CAS; on
 * failure it takes the queue lock, sets WAITERS (only while LOCKED is still
 * set, re-checked under the queue lock), queues itself and parks.  unlock()
 * clears LOCKED with one CAS when WAITERS is clear; otherwise it takes the
 * queue lock, hands WAITERS on if more remain, and wakes one waiter, which
 * then competes for the lock again (barging is allowed: it keeps throughput
 * up, and a woken waiter that loses simply queues again).  Because WAITERS
 * is set and checked under the queue lock, an unlock cannot miss a waiter
 * that queued before it.
 */
#include <errno.h>

#include "core/context.h"
#include "core/sync.h"
#include "core/task.h"
#include "core/wait_internal.h"

#define MUTEX_LOCKED 1u
#define MUTEX_WAITERS 2u

static struct sl__waitq *
waitq_of(void **slot)
{
	/* The public structs keep an opaque pointer-sized slot; the queue
	 * needs head and tail, so the slot holds a small queue object. */
	return (struct sl__waitq *)(void *)slot;
}

_Static_assert(sizeof(struct sl__waitq) == 2 * sizeof(void *),
	       "a wait queue is two pointers");

void
sl_mutex_init(struct sl_mutex *m)
{
	atomic_init(&m->state, 0);
	atomic_init(&m->qlock, 0);
	m->waiters[0] = m->waiters[1] = NULL;
}

bool
sl_mutex_trylock(struct sl_mutex *m)
{
	uint32_t s = atomic_load_explicit(&m->state, memory_order_relaxed);

	while (!(s & MUTEX_LOCKED))
		if (atomic_compare_exchange_weak_explicit(
			    &m->state, &s, s | MUTEX_LOCKED,
			    memory_order_acquire, memory_order_relaxed))
			return true;
	return false;
}

int
sl_mutex_lock_ctx(struct sl_context *ctx, struct sl_mutex *m)
{
	struct sl__waitq *q = waitq_of(m->waiters);

	for (;;) {
		struct sl__waiter me;
		struct sl__wait w;
		uint32_t s, token;
		int err;

		if (sl_mutex_trylock(m))
			return 0;
		err = sl__wait_begin(&w, ctx, UINT64_MAX, "mutex");
		if (err)
			return err;
		me = (struct sl__waiter){
			.task = w.task, .claim = &w.claim, .token = 1};

		sl__spin_lock(&m->qlock);
		s = atomic_load_explicit(&m->state, memory_order_relaxed);
		if (!(s & MUTEX_LOCKED) ||
		    !atomic_compare_exchange_strong_explicit(
			    &m->state, &s, s | MUTEX_WAITERS,
			    memory_order_relaxed, memory_order_relaxed)) {
			/* Unlocked meanwhile: try again from the top. */
			sl__spin_unlock(&m->qlock);
			if (!sl__wait_abort(&w))
				goto woken;
			continue;
		}
		sl__waitq_push(q, &me);
		sl__spin_unlock(&m->qlock);

		sl__wait_park(&w);
woken:
		token = atomic_load_explicit(&w.claim, memory_order_acquire);
		if (token == 1)
			continue;
		/* The context ended: leave the queue if still in it. */
		sl__spin_lock(&m->qlock);
		sl__waitq_remove(q, &me);
		sl__spin_unlock(&m->qlock);
		return sl__wait_error(&w, token);
	}
}

void
sl_mutex_lock(struct sl_mutex *m)
{
	sl_mutex_lock_ctx(NULL, m);
}

void
sl_mutex_unlock(struct sl_mutex *m)
{
	struct sl__waitq *q = waitq_of(m->waiters);
	uint32_t s = MUTEX_LOCKED;
	struct sl__waiter *w;
	unsigned dropped = 0;
	struct sl__task *t = NULL;

	if (atomic_compare_exchange_strong_explicit(
		    &m->state, &s, 0, memory_order_release,
		    memory_order_relaxed))
		return;

	sl__spin_lock(&m->qlock);
	w = sl__waitq_claim_one(q, &dropped);
	if (w)
		t = w->task;
	/* Unlock, keeping WAITERS while anyone still queues. */
	atomic_store_explicit(&m->state, q->head ? MUTEX_WAITERS : 0,
			      memory_order_release);
	sl__spin_unlock(&m->qlock);
	if (t)
		sl__wake(t);
}

/* ---- condition variable ---- */

void
sl_cond_init(struct sl_cond *c)
{
	atomic_init(&c->qlock, 0);
	c->waiters[0] = c->waiters[1] = NULL;
}

int
sl_cond_wait_ctx(struct sl_context *ctx, struct sl_cond *c, struct sl_mutex *m)
{
	struct sl__waitq *q = waitq_of(c->waiters);
	struct sl__waiter me;
	struct sl__wait w;
	uint32_t token;
	int err;

	err = sl__wait_begin(&w, ctx, UINT64_MAX, "cond");
	if (err)
		return err;
	me = (struct sl__waiter){.task = w.task, .claim = &w.claim, .token = 1};
	sl__spin_lock(&c->qlock);
	sl__waitq_push(q, &me);
	sl__spin_unlock(&c->qlock);

	/* Queued before the mutex is released, so a signal sent after the
	 * caller's predicate check cannot be missed. */
	sl_mutex_unlock(m);
	token = sl__wait_park(&w);
	if (token != 1) {
		sl__spin_lock(&c->qlock);
		sl__waitq_remove(q, &me);
		sl__spin_unlock(&c->qlock);
	}
	sl_mutex_lock(m);
	return token == 1 ? 0 : sl__wait_error(&w, token);
}

void
sl_cond_wait(struct sl_cond *c, struct sl_mutex *m)
{
	sl_cond_wait_ctx(NULL, c, m);
}

void
sl_cond_signal(struct sl_cond *c)
{
	struct sl__waitq *q = waitq_of(c->waiters);
	struct sl__waiter *w;
	struct sl__task *t = NULL;
	unsigned dropped = 0;

	if (!q->head)
		return; /* racy peek is fine: see sl_cond_wait_ctx */
	sl__spin_lock(&c->qlock);
	w = sl__waitq_claim_one(q, &dropped);
	if (w)
		t = w->task;
	sl__spin_unlock(&c->qlock);
	if (t)
		sl__wake(t);
}

/* Claim every waiter of @q under @lock and wake them after unlocking. */
static void
wake_all(_Atomic uint32_t *lock, struct sl__waitq *q)
{
	struct sl__waiter *list = NULL, *w;
	unsigned dropped = 0;

	sl__spin_lock(lock);
	while ((w = sl__waitq_claim_one(q, &dropped))) {
		w->next = list;
		list = w;
	}
	sl__spin_unlock(lock);
	while (list) {
		struct sl__waiter *next = list->next;

		sl__wake(list->task);
		list = next;
	}
}

void
sl_cond_broadcast(struct sl_cond *c)
{
	wake_all(&c->qlock, waitq_of(c->waiters));
}

/* ---- once ---- */

enum { ONCE_NEW = 0, ONCE_RUNNING, ONCE_DONE };

void
sl_once_do(struct sl_once *once, void (*fn)(void *arg), void *arg)
{
	struct sl__waitq *q = waitq_of(once->waiters);
	uint32_t s = ONCE_NEW;

	if (atomic_load_explicit(&once->state, memory_order_acquire) ==
	    ONCE_DONE)
		return;
	if (atomic_compare_exchange_strong_explicit(
		    &once->state, &s, ONCE_RUNNING, memory_order_acquire,
		    memory_order_acquire)) {
		fn(arg);
		sl__spin_lock(&once->qlock);
		atomic_store_explicit(&once->state, ONCE_DONE,
				      memory_order_release);
		sl__spin_unlock(&once->qlock);
		wake_all(&once->qlock, q);
		return;
	}

	for (;;) {
		struct sl__waiter me;
		struct sl__wait w;

		if (atomic_load_explicit(&once->state, memory_order_acquire) ==
		    ONCE_DONE)
			return;
		sl__wait_begin(&w, NULL, UINT64_MAX, "once");
		me = (struct sl__waiter){
			.task = w.task, .claim = &w.claim, .token = 1};
		sl__spin_lock(&once->qlock);
		if (atomic_load_explicit(&once->state, memory_order_acquire) ==
		    ONCE_DONE) {
			sl__spin_unlock(&once->qlock);
			sl__wait_abort(&w);
			return;
		}
		sl__waitq_push(q, &me);
		sl__spin_unlock(&once->qlock);
		sl__wait_park(&w);
	}
}

/* ---- wait group ---- */

void
sl_waitgroup_init(struct sl_waitgroup *wg)
{
	atomic_init(&wg->count, 0);
	atomic_init(&wg->lock, 0);
	wg->waiters[0] = wg->waiters[1] = NULL;
}

void
sl_waitgroup_add(struct sl_waitgroup *wg, int64_t delta)
{
	int64_t v = atomic_fetch_add_explicit(&wg->count, delta,
					      memory_order_acq_rel) +
		    delta;

	if (v == 0) {
		/* Waiters queue under the lock after checking the count, so
		 * taking the lock here orders us after any such check. */
		wake_all(&wg->lock, waitq_of(wg->waiters));
	}
}

void
sl_waitgroup_done(struct sl_waitgroup *wg)
{
	sl_waitgroup_add(wg, -1);
}

int
sl_waitgroup_wait_ctx(struct sl_context *ctx, struct sl_waitgroup *wg)
{
	struct sl__waitq *q = waitq_of(wg->waiters);

	for (;;) {
		struct sl__waiter me;
		struct sl__wait w;
		uint32_t token;
		int err;

		if (atomic_load_explicit(&wg->count, memory_order_acquire) <= 0)
			return 0;
		err = sl__wait_begin(&w, ctx, UINT64_MAX, "waitgroup");
		if (err)
			return err;
		me = (struct sl__waiter){
			.task = w.task, .claim = &w.claim, .token = 1};
		sl__spin_lock(&wg->lock);
		if (atomic_load_explicit(&wg->count, memory_order_acquire) <=
		    0) {
			sl__spin_unlock(&wg->lock);
			if (sl__wait_abort(&w))
				return 0;
			continue;
		}
		sl__waitq_push(q, &me);
		sl__spin_unlock(&wg->lock);
		token = sl__wait_park(&w);
		if (token == 1)
			continue;
		sl__spin_lock(&wg->lock);
		sl__waitq_remove(q, &me);
		sl__spin_unlock(&wg->lock);
		return sl__wait_error(&w, token);
	}
}

void
sl_waitgroup_wait(struct sl_waitgroup *wg)
{
	sl_waitgroup_wait_ctx(NULL, wg);
}
