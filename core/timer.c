/* SPDX-License-Identifier: MIT */
/*
 * Per-processor timers: a binary min-heap of deadlines, one per processor.
 *
 * A timer lives in the heap of the processor that started it.  The owner
 * runs due timers at schedule points and bounds its idle wait by the
 * earliest deadline (heap.next, readable without the lock).  Another
 * processor may stop a timer, so each heap has a spinlock; it is almost
 * never contended, since timers are nearly always stopped where started.
 *
 * Stopping races with firing.  A firing timer is taken out of the heap and
 * marked RUNNING under the lock, and its callback runs unlocked.  A stop that
 * finds it RUNNING waits until it is DONE, so when sl__timer_stop() returns
 * the callback is not touching anything the caller is about to free.
 * Callbacks are short (they wake a task), so the wait is too.
 */
#include <mimalloc.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/sched_internal.h"

static void
heap_set(struct sl__timer_heap *h, uint32_t i, struct sl__timer *t)
{
	h->v[i] = t;
	t->idx = (int32_t)i;
}

static void
heap_up(struct sl__timer_heap *h, uint32_t i)
{
	struct sl__timer *t = h->v[i];

	while (i > 0) {
		uint32_t parent = (i - 1) / 2;

		if (h->v[parent]->when <= t->when)
			break;
		heap_set(h, i, h->v[parent]);
		i = parent;
	}
	heap_set(h, i, t);
}

static void
heap_down(struct sl__timer_heap *h, uint32_t i)
{
	struct sl__timer *t = h->v[i];

	for (;;) {
		uint32_t c = 2 * i + 1;

		if (c >= h->len)
			break;
		if (c + 1 < h->len && h->v[c + 1]->when < h->v[c]->when)
			c++;
		if (t->when <= h->v[c]->when)
			break;
		heap_set(h, i, h->v[c]);
		i = c;
	}
	heap_set(h, i, t);
}

static void
heap_publish_next(struct sl__timer_heap *h)
{
	atomic_store_explicit(&h->next, h->len ? h->v[0]->when : UINT64_MAX,
			      memory_order_release);
}

static void
heap_remove_at(struct sl__timer_heap *h, uint32_t i)
{
	struct sl__timer *last = h->v[--h->len];

	h->v[i]->idx = -1;
	if (i == h->len)
		return;
	heap_set(h, i, last);
	heap_down(h, i);
	heap_up(h, (uint32_t)last->idx);
}

void
sl__timer_start(struct sl__timer *t, uint64_t when)
{
	struct sl__proc *cur = sl__proc_current();
	struct sl__proc *p = cur ? cur : sl__rt.procs[0];
	struct sl__timer_heap *h = &p->timers;
	bool earliest;

	t->when = when;
	t->p = p;
	atomic_store_explicit(&t->state, SL__TIMER_QUEUED,
			      memory_order_relaxed);

	sl__spin_lock(&h->lock);
	if (h->len == h->cap) {
		uint32_t cap = h->cap ? h->cap * 2 : 64;
		struct sl__timer **v = mi_realloc(h->v, cap * sizeof(*v));

		if (!v) {
			fprintf(stderr, "sluice: out of memory for timers\n");
			abort();
		}
		h->v = v;
		h->cap = cap;
	}
	heap_set(h, h->len++, t);
	heap_up(h, h->len - 1);
	earliest = h->v[0] == t;
	heap_publish_next(h);
	sl__spin_unlock(&h->lock);

	/* A sleeping processor computed its wait from the old earliest
	 * deadline; from another thread, make it look again. */
	if (earliest && p != cur && atomic_load_explicit(&p->idle,
							  memory_order_seq_cst))
		sl__poller_wake(cur, p);
}

bool
sl__timer_stop(struct sl__timer *t)
{
	struct sl__timer_heap *h;

	if (!t->p)
		return false;
	h = &t->p->timers;
	sl__spin_lock(&h->lock);
	if (t->idx >= 0 && atomic_load_explicit(&t->state,
						memory_order_relaxed) ==
				   SL__TIMER_QUEUED) {
		heap_remove_at(h, (uint32_t)t->idx);
		heap_publish_next(h);
		atomic_store_explicit(&t->state, SL__TIMER_IDLE,
				      memory_order_relaxed);
		sl__spin_unlock(&h->lock);
		return true;
	}
	sl__spin_unlock(&h->lock);

	while (atomic_load_explicit(&t->state, memory_order_acquire) ==
	       SL__TIMER_RUNNING)
		sl__cpu_relax();
	return false;
}

unsigned
sl__timers_run(struct sl__proc *p, uint64_t now)
{
	struct sl__timer_heap *h = &p->timers;
	unsigned fired = 0;

	while (atomic_load_explicit(&h->next, memory_order_acquire) <= now) {
		struct sl__timer *t;

		sl__spin_lock(&h->lock);
		if (!h->len || h->v[0]->when > now) {
			sl__spin_unlock(&h->lock);
			break;
		}
		t = h->v[0];
		heap_remove_at(h, 0);
		heap_publish_next(h);
		atomic_store_explicit(&t->state, SL__TIMER_RUNNING,
				      memory_order_relaxed);
		sl__spin_unlock(&h->lock);

		t->fn(t);
		/* Pairs with the acquire in sl__timer_stop(). */
		atomic_store_explicit(&t->state, SL__TIMER_DONE,
				      memory_order_release);
		fired++;
	}
	if (fired)
		atomic_fetch_add_explicit(&p->st.timers_fired, fired,
					  memory_order_relaxed);
	return fired;
}

void
sl__timers_free(struct sl__proc *p)
{
	mi_free(p->timers.v);
	p->timers.v = NULL;
	p->timers.len = p->timers.cap = 0;
}
