/* SPDX-License-Identifier: MIT */
/*
 * Contexts: cancellation trees with deadlines.
 *
 * Each derived context holds a reference to its parent and sits in its
 * parent's list of children.  Cancelling a context records the error, closes
 * its done channel (which wakes every task waiting on it, in a select or in
 * any _ctx call) and cancels its children.  Cancellation walks the subtree
 * with an explicit work list rather than recursion, so a deep tree cannot
 * overflow a small task stack.
 *
 * A deadline is a timer on the processor that created the context; when it
 * fires it cancels with -ETIMEDOUT.  A child's deadline is never later than
 * its parent's, as in Go.
 *
 * Lifetimes: the creator's reference is dropped by sl_context_release().  A
 * canceller takes a reference on each child it detaches before it lets go
 * of the parent's lock, so a child released concurrently by its owner stays
 * valid until the canceller is done with it.
 */
#include <errno.h>
#include <mimalloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/chan.h"
#include "core/context.h"
#include "core/wait_internal.h"

struct sl_context {
	_Atomic uint32_t refs;
	_Atomic int err;
	struct sl_context *parent;
	struct sl_chan *done;
	uint64_t deadline;

	/* Children, under lock.  in_parent says we are on our parent's. */
	_Atomic uint32_t lock;
	struct sl_context *children;
	struct sl_context *sib_next;
	struct sl_context *sib_prev;
	bool in_parent;

	struct sl__timer timer;
	bool timer_on;
};

static struct sl_context background = {
	.refs = 1,
	.deadline = UINT64_MAX,
};

static _Atomic uint64_t live_contexts;

struct sl_context *
sl_context_background(void)
{
	return &background;
}

uint64_t
sl_context_live(void)
{
	return atomic_load_explicit(&live_contexts, memory_order_relaxed);
}

int
sl_context_err(const struct sl_context *ctx)
{
	return atomic_load_explicit(&ctx->err, memory_order_acquire);
}

struct sl_chan *
sl_context_done(struct sl_context *ctx)
{
	return ctx->done;
}

struct sl_chan *
sl__context_done(struct sl_context *ctx)
{
	return ctx->done;
}

uint64_t
sl_context_deadline(const struct sl_context *ctx)
{
	return ctx->deadline;
}

static void
context_ref(struct sl_context *ctx)
{
	atomic_fetch_add_explicit(&ctx->refs, 1, memory_order_relaxed);
}

static void
context_unref(struct sl_context *ctx)
{
	while (ctx && ctx != &background) {
		struct sl_context *parent = ctx->parent;

		if (atomic_fetch_sub_explicit(&ctx->refs, 1,
					      memory_order_acq_rel) != 1)
			return;
		/* Last reference: it was cancelled on release, so its timer
		 * is stopped and it is off its parent's list. */
		sl_chan_destroy(ctx->done);
		mi_free(ctx);
		atomic_fetch_sub_explicit(&live_contexts, 1,
					  memory_order_relaxed);
		ctx = parent;
	}
}

/*
 * A canceller's private list of contexts still to end, each holding a
 * reference.  Private, because two cancellers may walk overlapping subtrees
 * at once (a deadline firing while the owner releases): a link field inside
 * the contexts would be shared between them.
 */
struct cancel_work {
	struct sl_context **v;
	size_t n;
	size_t cap;
	struct sl_context *small[16];
};

static void
work_push(struct cancel_work *w, struct sl_context *ctx)
{
	if (w->n == w->cap) {
		size_t cap = w->cap * 2;
		struct sl_context **v = mi_malloc(cap * sizeof(*v));

		if (!v) {
			fprintf(stderr, "sluice: out of memory while "
					"cancelling a context tree\n");
			abort();
		}
		memcpy(v, w->v, w->n * sizeof(*v));
		if (w->v != w->small)
			mi_free(w->v);
		w->v = v;
		w->cap = cap;
	}
	context_ref(ctx);
	w->v[w->n++] = ctx;
}

/*
 * End @root and its subtree with @err.  @from_timer is set when called by
 * @root's own deadline timer, which must not wait for itself to finish.
 */
static void
context_cancel(struct sl_context *root, int err, bool from_timer)
{
	struct cancel_work w = {.cap = SL_ARRAY_SIZE(w.small)};

	w.v = w.small;
	work_push(&w, root);
	while (w.n) {
		struct sl_context *ctx = w.v[--w.n];
		struct sl_context *c;
		int expected = 0;

		sl__spin_lock(&ctx->lock);
		if (!atomic_compare_exchange_strong_explicit(
			    &ctx->err, &expected, err, memory_order_acq_rel,
			    memory_order_acquire)) {
			/* Ended already, by another canceller. */
			sl__spin_unlock(&ctx->lock);
			context_unref(ctx);
			continue;
		}
		/* Detach the children, holding a reference on each. */
		for (c = ctx->children; c; c = c->sib_next) {
			c->in_parent = false;
			work_push(&w, c);
		}
		ctx->children = NULL;
		sl__spin_unlock(&ctx->lock);

		sl_chan_close(ctx->done);
		if (ctx->timer_on && !(from_timer && ctx == root))
			sl__timer_stop(&ctx->timer);
		context_unref(ctx);
	}
	if (w.v != w.small)
		mi_free(w.v);
}

static void
context_timer_fired(struct sl__timer *t)
{
	context_cancel(t->arg, -ETIMEDOUT, true);
}

static int
context_new(struct sl_context *parent, uint64_t deadline,
	    struct sl_context **out)
{
	struct sl_context *ctx;
	int perr;

	if (!parent || !out)
		return -EINVAL;
	ctx = mi_zalloc(sizeof(*ctx));
	if (!ctx)
		return -ENOMEM;
	ctx->done = sl_chan_create(0, 0);
	if (!ctx->done) {
		mi_free(ctx);
		return -ENOMEM;
	}
	atomic_init(&ctx->refs, 1);
	atomic_fetch_add_explicit(&live_contexts, 1, memory_order_relaxed);
	ctx->parent = parent;
	context_ref(parent);
	ctx->deadline = deadline < parent->deadline ? deadline
						    : parent->deadline;

	/* Join the parent's children, unless it has already ended.  The
	 * background context never ends, so it keeps no list. */
	if (parent == &background) {
		*out = ctx;
		goto arm;
	}
	sl__spin_lock(&parent->lock);
	perr = sl_context_err(parent);
	if (!perr) {
		ctx->sib_next = parent->children;
		if (parent->children)
			parent->children->sib_prev = ctx;
		parent->children = ctx;
		ctx->in_parent = true;
	}
	sl__spin_unlock(&parent->lock);

	*out = ctx;
	if (perr) {
		context_cancel(ctx, perr, false);
		return 0;
	}
arm:
	if (ctx->deadline != UINT64_MAX) {
		if (ctx->deadline <= sl_now_ns() ||
		    !atomic_load_explicit(&sl__rt.running,
					  memory_order_acquire)) {
			context_cancel(ctx, -ETIMEDOUT, false);
			return 0;
		}
		ctx->timer = (struct sl__timer){
			.fn = context_timer_fired,
			.arg = ctx,
		};
		ctx->timer_on = true;
		sl__timer_start(&ctx->timer, ctx->deadline);
	}
	return 0;
}

int
sl_context_with_cancel(struct sl_context *parent, struct sl_context **out)
{
	return context_new(parent, UINT64_MAX, out);
}

int
sl_context_with_deadline(struct sl_context *parent, uint64_t deadline_ns,
			 struct sl_context **out)
{
	return context_new(parent, deadline_ns, out);
}

int
sl_context_with_timeout(struct sl_context *parent, uint64_t timeout_ns,
			struct sl_context **out)
{
	uint64_t now = sl_now_ns();
	uint64_t deadline = now + timeout_ns;

	if (deadline < now)
		deadline = UINT64_MAX - 1;
	return context_new(parent, deadline, out);
}

void
sl_context_cancel(struct sl_context *ctx)
{
	if (ctx && ctx != &background)
		context_cancel(ctx, -ECANCELED, false);
}

void
sl_context_release(struct sl_context *ctx)
{
	struct sl_context *parent;

	if (!ctx || ctx == &background)
		return;
	context_cancel(ctx, -ECANCELED, false);
	if (ctx->timer_on) {
		/* Already stopped by the cancel, unless the deadline's own
		 * callback is what cancelled it: wait for that to finish. */
		sl__timer_stop(&ctx->timer);
		ctx->timer_on = false;
	}

	parent = ctx->parent;
	sl__spin_lock(&parent->lock);
	if (ctx->in_parent) {
		if (ctx->sib_prev)
			ctx->sib_prev->sib_next = ctx->sib_next;
		else
			parent->children = ctx->sib_next;
		if (ctx->sib_next)
			ctx->sib_next->sib_prev = ctx->sib_prev;
		ctx->in_parent = false;
	}
	sl__spin_unlock(&parent->lock);
	context_unref(ctx);
}
