/* SPDX-License-Identifier: MIT */
/*
 * Wait queues and the generic wait with a context and a deadline.
 */
#include <errno.h>

#include "core/context.h"
#include "core/wait_internal.h"

void
sl__waitq_push(struct sl__waitq *q, struct sl__waiter *w)
{
	w->next = NULL;
	w->prev = q->tail;
	if (q->tail)
		q->tail->next = w;
	else
		q->head = w;
	q->tail = w;
	w->queued = true;
}

void
sl__waitq_remove(struct sl__waitq *q, struct sl__waiter *w)
{
	if (!w->queued)
		return;
	if (w->prev)
		w->prev->next = w->next;
	else
		q->head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	else
		q->tail = w->prev;
	w->next = w->prev = NULL;
	w->queued = false;
}

struct sl__waiter *
sl__waitq_claim_one(struct sl__waitq *q, unsigned *dropped)
{
	struct sl__waiter *w;

	while ((w = q->head)) {
		sl__waitq_remove(q, w);
		(*dropped)++;
		if (sl__waiter_claim(w))
			return w;
		/* Another of its cases won: it no longer waits here. */
	}
	return NULL;
}

static void
wait_timer_fired(struct sl__timer *t)
{
	struct sl__wait *w = t->arg;
	uint32_t expected = 0;

	if (atomic_compare_exchange_strong_explicit(
		    &w->claim, &expected, SL__CLAIM_TIMEOUT,
		    memory_order_acq_rel, memory_order_acquire))
		sl__wake(w->task);
}

int
sl__wait_begin(struct sl__wait *w, struct sl_context *ctx, uint64_t deadline,
	       const char *reason)
{
	int err;

	atomic_init(&w->claim, 0);
	w->task = sl__task_current();
	w->ctx = ctx;
	w->done = NULL;
	w->timer_on = false;

	if (ctx && (err = sl_context_err(ctx)))
		return err;
	if (deadline != UINT64_MAX && deadline <= sl_now_ns())
		return -ETIMEDOUT;

	sl__park_prepare(w->task, reason);
	if (ctx && (w->done = sl__context_done(ctx))) {
		w->ctxw = (struct sl__waiter){
			.task = w->task,
			.claim = &w->claim,
			.token = SL__CLAIM_CTX,
		};
		if (!sl__chan_add_closed_waiter(w->done, &w->ctxw)) {
			/* Ended between the check and now. */
			w->done = NULL;
			sl__park_cancel(w->task);
			return sl_context_err(ctx);
		}
	}
	if (deadline != UINT64_MAX) {
		w->timer = (struct sl__timer){
			.fn = wait_timer_fired,
			.arg = w,
		};
		w->timer_on = true;
		sl__timer_start(&w->timer, deadline);
	}
	return 0;
}

static void
wait_disarm(struct sl__wait *w)
{
	if (w->done) {
		sl__chan_remove_closed_waiter(w->done, &w->ctxw);
		w->done = NULL;
	}
	if (w->timer_on) {
		sl__timer_stop(&w->timer);
		w->timer_on = false;
	}
}

uint32_t
sl__wait_park(struct sl__wait *w)
{
	sl__park(w->task);
	wait_disarm(w);
	return atomic_load_explicit(&w->claim, memory_order_acquire);
}

bool
sl__wait_abort(struct sl__wait *w)
{
	uint32_t expected = 0;

	if (atomic_compare_exchange_strong_explicit(
		    &w->claim, &expected, SL__CLAIM_SELF, memory_order_acq_rel,
		    memory_order_acquire)) {
		sl__park_cancel(w->task);
		wait_disarm(w);
		return true;
	}
	/* A waker won and will wake us: park to take that wake. */
	sl__park(w->task);
	wait_disarm(w);
	return false;
}

int
sl__wait_error(struct sl__wait *w, uint32_t token)
{
	int err;

	if (token == SL__CLAIM_TIMEOUT)
		return -ETIMEDOUT;
	if (token == SL__CLAIM_CTX && w->ctx && (err = sl_context_err(w->ctx)))
		return err;
	return -ECANCELED;
}
