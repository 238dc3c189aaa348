/* SPDX-License-Identifier: MIT */
/*
 * One-shot requests: queue an SQE, park the task, wake it on completion.
 *
 * A request can end three ways, and the task must not return before the
 * kernel is done with the memory the request points to (its buffer, and
 * this struct, which is on the task's stack):
 *
 *  - It completes.  Its completion runs on the processor that submitted
 *    it, records the result and, once nothing else is outstanding, wakes
 *    the task.
 *  - Its deadline passes.  The deadline travels with the request as an
 *    IORING_OP_LINK_TIMEOUT, so the kernel cancels it without our help;
 *    the request then completes with -ECANCELED and the timeout with
 *    -ETIME, and the task reports -ETIMEDOUT.  Two completions: @pending
 *    counts both.
 *  - Its context ends.  The context wakes the task (a waiter on the done
 *    channel), and the task asks the kernel to cancel the request with
 *    IORING_OP_ASYNC_CANCEL.  The cancel must go through the ring that
 *    holds the request, which belongs to whichever machine runs that
 *    processor now, so the task posts it there (sl__proc_post).  Then the
 *    task parks again, without the context, until the request's own
 *    completion arrives, which may well be a success that raced the
 *    cancel: then the task reports the success, since the bytes moved.
 */
#include <errno.h>

#include "core/context.h"
#include "io/io_internal.h"

/* The claim token of a request's completion. */
#define IO_TOKEN_DONE 1u

/*
 * One completion that points into @op is done.  The one that brings the
 * count to zero wakes the task through the wait it parks on now, and
 * counts itself in @op->settled before the wake: from then on it touches
 * nothing of @op, which the task may free (return from) at once.
 */
static void
io_op_settle(struct sl__io_op *op)
{
	struct sl__wait *w;
	struct sl__task *t;
	uint32_t zero = 0;
	bool won;

	if (atomic_fetch_sub_explicit(&op->pending, 1, memory_order_acq_rel) !=
	    1)
		return;
	w = atomic_load_explicit(&op->wake, memory_order_acquire);
	t = w->task;
	won = atomic_compare_exchange_strong_explicit(
		&w->claim, &zero, IO_TOKEN_DONE, memory_order_acq_rel,
		memory_order_acquire);
	atomic_fetch_add_explicit(&op->settled, 1, memory_order_release);
	if (won)
		sl__wake(t);
}

/*
 * Wait until @n handlers have brought the count to zero and let go of
 * @op.  One that did so without waking us may still be between its count
 * and its mark (io_op_settle) on another machine, with nothing left to do
 * but those few instructions; one on our own machine has finished.
 */
static void
io_op_wait_settled(struct sl__io_op *op, uint32_t n)
{
	while (atomic_load_explicit(&op->settled, memory_order_acquire) < n)
		sl__cpu_relax();
}

static void
io_op_complete(struct sl__completion *c, int res, uint32_t flags)
{
	struct sl__io_op *op = SL_CONTAINER_OF(c, struct sl__io_op, c);

	if (op->zc && (flags & IORING_CQE_F_NOTIF)) {
		/* The zero-copy notice: the kernel let go of the buffer. */
		io_op_settle(op);
		return;
	}
	op->res = res;
	op->flags = flags;
	if (op->zc && (flags & IORING_CQE_F_MORE))
		atomic_fetch_add_explicit(&op->pending, 1,
					  memory_order_relaxed);
	io_op_settle(op);
}

static void
io_op_timeout_complete(struct sl__completion *c, int res, uint32_t flags)
{
	struct sl__io_op *op = SL_CONTAINER_OF(c, struct sl__io_op, tc);

	(void)flags;
	op->tres = res;
	io_op_settle(op);
}

struct io_uring_sqe *
sl__io_sqe(struct sl__proc *p)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&p->ring);

	if (!sqe) {
		sl__poller_flush(p);
		sqe = io_uring_get_sqe(&p->ring);
	}
	return sqe;
}

void
sl__io_queue(struct sl__proc *p)
{
	p->sq_unsubmitted++;
}

void
sl__io_cancel_on(struct sl__proc *p, void *user_data)
{
	struct sl__io_proc *ip = sl__io_proc_of(p);
	struct io_uring_sqe *sqe = sl__io_sqe(p);

	if (!sqe)
		return;
	io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)user_data, 0);
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	io_uring_sqe_set_data64(sqe, SL__CQE_IGNORE);
	sl__io_queue(p);
	if (ip)
		sl__io_stat_add_owner(&ip->st.cancels, 1);
}

/* Runs on the request's processor: cancel it there. */
static void
io_op_cancel_posted(struct sl__completion *c, int res, uint32_t flags)
{
	struct sl__io_op *op = SL_CONTAINER_OF(c, struct sl__io_op, cc);

	(void)res;
	(void)flags;
	sl__io_cancel_on(op->proc, &op->c);
	io_op_settle(op);
}

struct io_uring_sqe *
sl__io_begin(struct sl__io_op *op, struct sl_context *ctx, uint64_t deadline,
	     const char *reason, int *err)
{
	struct sl__proc *p = sl__proc_current();
	struct io_uring_sqe *sqe;
	int r;

	if (!p || !sl__task_current()) {
		*err = -EPERM;
		return NULL;
	}
	op->c.fn = io_op_complete;
	op->tc.fn = io_op_timeout_complete;
	op->cc.fn = io_op_cancel_posted;
	op->proc = p;
	op->res = 0;
	op->flags = 0;
	op->tres = 0;
	op->linked = false;
	op->zc = false;
	atomic_init(&op->pending, 1);
	atomic_init(&op->wake, &op->w);
	atomic_init(&op->settled, 0);

	/*
	 * The context's deadline goes to the kernel as well, so the common
	 * way a context ends costs no cancel round trip.  (Its timer still
	 * fires and may race the kernel's: both paths give -ETIMEDOUT.)
	 */
	if (ctx && sl_context_deadline(ctx) < deadline)
		deadline = sl_context_deadline(ctx);
	if (deadline != SL_NO_DEADLINE) {
		uint64_t now = sl_now_ns();

		if (deadline <= now) {
			*err = -ETIMEDOUT;
			return NULL;
		}
		op->linked = true;
		op->ts.tv_sec = (long long)(deadline / SL_NSEC_PER_SEC);
		op->ts.tv_nsec = (long long)(deadline % SL_NSEC_PER_SEC);
		atomic_init(&op->pending, 2);
	}

	/* A linked pair must go out in one submission: make room first. */
	if (io_uring_sq_space_left(&p->ring) < 2)
		sl__poller_flush(p);
	r = sl__wait_begin(&op->w, ctx, SL_NO_DEADLINE, reason);
	if (r) {
		*err = r;
		return NULL;
	}
	/*
	 * Publish the wait record again, now complete.  The kernel orders
	 * the submission before its completion, but a race detector cannot
	 * see that; this release pairs with the acquire in io_op_settle(),
	 * which may run on another machine, and makes the order explicit.
	 */
	atomic_store_explicit(&op->wake, &op->w, memory_order_release);
	sqe = io_uring_get_sqe(&p->ring);
	if (!sqe) {
		/* The flush above could not make room: the kernel's queue is
		 * backed up (SQPOLL thread asleep is not this). */
		sl__wait_abort(&op->w);
		*err = -EBUSY;
		return NULL;
	}
	return sqe;
}

int
sl__io_run(struct sl__io_op *op, struct io_uring_sqe *sqe)
{
	struct sl__proc *p = op->proc;
	struct sl__io_proc *ip = sl__io_proc_of(p);
	struct sl_context *ctx = op->w.ctx;
	uint32_t token;
	bool cancelled = false;

	io_uring_sqe_set_data(sqe, &op->c);
	if (op->linked) {
		struct io_uring_sqe *tsqe = io_uring_get_sqe(&p->ring);

		sqe->flags |= IOSQE_IO_LINK;
		io_uring_prep_link_timeout(tsqe, &op->ts, IORING_TIMEOUT_ABS);
		io_uring_sqe_set_data(tsqe, &op->tc);
		p->sq_unsubmitted++;
	}
	p->sq_unsubmitted++;
	if (ip)
		sl__io_stat_add_owner(&ip->st.ops, 1);

	token = sl__wait_park(&op->w);
	if (token != IO_TOKEN_DONE) {
		struct sl__wait again;
		uint32_t zeros = 1;

		/*
		 * The context ended first.  Post the cancel to the request's
		 * processor, counted as outstanding until it has been queued
		 * there, then wait for everything to settle.
		 *
		 * The first wait's claim is spent, so the task parks on a
		 * fresh one, published before the post.  Should the request
		 * have settled already (the count was zero), its handler
		 * may still be looking at the first wait: let it finish
		 * first, so that it cannot find the fresh one.
		 */
		cancelled = true;
		if (atomic_fetch_add_explicit(&op->pending, 1,
					      memory_order_acq_rel) == 0) {
			io_op_wait_settled(op, 1);
			zeros = 2;
		}
		sl__wait_begin(&again, NULL, SL_NO_DEADLINE, "io cancel");
		atomic_store_explicit(&op->wake, &again, memory_order_release);
		sl__proc_post(op->proc, &op->cc);
		SL_FENCE_SEQ_CST(); /* our wait published, then their count */
		if (atomic_load_explicit(&op->pending, memory_order_acquire))
			sl__wait_park(&again);
		else
			sl__wait_abort(&again);
		io_op_wait_settled(op, zeros);
	}

	if (op->res != -ECANCELED && op->res != -EINTR)
		return op->res;
	/*
	 * The linked timeout fired unless it was itself cancelled (-ECANCELED,
	 * the request having finished first).  Its own result says how its
	 * cancel went: -ETIME, or -ENOENT / -EALREADY when the request was
	 * running on a kernel worker, which then ends it with -EINTR.
	 */
	if (op->linked && op->tres && op->tres != -ECANCELED) {
		if (ip)
			sl__io_stat_add(&ip->st.timeouts, 1);
		return -ETIMEDOUT;
	}
	if (cancelled && ctx) {
		int err = sl_context_err(ctx);

		if (err)
			return err;
	}
	return op->res;
}
