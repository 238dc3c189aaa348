/* SPDX-License-Identifier: MIT */
/*
 * Channels and select.
 *
 * A buffered channel is an sl_ring plus a wait queue for each direction.
 * The fast path touches only the ring: a send enqueues, then checks whether
 * any receiver waits; a receive dequeues, then checks for waiting senders.
 * The lock guards only the wait queues, so it is taken only when some task
 * has to wait or be woken.
 *
 * A rendezvous channel (capacity 0) has no ring: a sender hands its element
 * straight to a waiting receiver (copying it into the receiver's buffer) or
 * waits until a receiver takes it from its own; both happen under the lock.
 *
 * Every wait is a select, possibly of one case.  A waiting task puts one
 * waiter per case in the channels' queues, all sharing one claim word (see
 * sched_internal.h): a waker must win the claim to wake it, so a select
 * is woken exactly once however many of its channels become ready.
 *
 * The wake-up protocol for buffered channels, and why no wake-up is lost:
 *
 *   I1  A receiver about to wait (1) adds its waiter and increments
 *       nrecvw under the lock, (2) issues a full fence, and (3) looks at the
 *       ring's head slot again.  If an element is there it stops waiting
 *       (it claims itself and retries from the top).
 *   I2  A sender (1) publishes its element (the ring's release store),
 *       (2) issues a full fence, and (3) reads nrecvw; if it is non-zero it
 *       takes the lock and claims and wakes one waiting receiver.
 *   I3  By the two fences, either the sender's read sees the receiver's
 *       increment, or the receiver's re-check sees the element.  So a
 *       receiver never sleeps while an element it could take sits in the
 *       ring.  Senders waiting for space mirror this with nsendw.
 *   I4  A woken receiver retries the case that woke it first.  If it finds
 *       the ring empty, another task took the element: the wake was not
 *       lost, only overtaken; the receiver queues again.
 *   I5  Each successful operation wakes at most one waiter of the other
 *       side, so waking costs O(1) and there is no thundering herd; close
 *       wakes everyone.
 *
 * Rendezvous: a waker that hands over an element also sets the waiter's
 * done flag and result before waking it, so the woken task returns without
 * touching the channel again.
 *
 * Rejected alternatives: Go's single lock per channel for every operation
 * (an uncontended lock costs two atomic operations per send and receive,
 * and contended ones serialise producers); spinning until the ring has room
 * (burns the CPU the other side needs on a two-CPU machine); waking all
 * waiters on every operation.
 */
#include <errno.h>
#include <mimalloc.h>

#include "core/chan.h"
#include "core/context.h"
#include "core/wait_internal.h"

struct sl_chan {
	struct sl_ring *ring;	/* NULL for rendezvous channels */
	uint32_t elem_size;
	size_t cap;

	/* Read on every fast-path operation, written when waiters come. */
	_Alignas(SL_FALSE_SHARING) _Atomic uint32_t nrecvw;
	_Atomic uint32_t nsendw;
	_Atomic uint32_t closed;

	_Alignas(SL_FALSE_SHARING) _Atomic uint32_t lock;
	struct sl__waitq recvq;
	struct sl__waitq sendq;
};

struct sl_chan *
sl_chan_create(size_t elem_size, size_t capacity)
{
	struct sl_chan *ch;

	if (elem_size > 4096) {
		errno = EINVAL;
		return NULL;
	}
	ch = mi_zalloc_aligned(sizeof(*ch), SL_FALSE_SHARING);
	if (!ch) {
		errno = ENOMEM;
		return NULL;
	}
	ch->elem_size = (uint32_t)elem_size;
	if (capacity > 0) {
		ch->ring = sl_ring_create(elem_size, capacity);
		if (!ch->ring) {
			mi_free(ch);
			return NULL;
		}
		ch->cap = sl_ring_capacity(ch->ring);
	}
	return ch;
}

void
sl_chan_destroy(struct sl_chan *ch)
{
	if (!ch)
		return;
	sl_ring_destroy(ch->ring);
	mi_free(ch);
}

static inline bool
chan_closed(const struct sl_chan *ch)
{
	return atomic_load_explicit(&ch->closed, memory_order_acquire);
}

bool
sl_chan_is_closed(const struct sl_chan *ch)
{
	return chan_closed(ch);
}

size_t
sl_chan_len(const struct sl_chan *ch)
{
	return ch->ring ? sl_ring_count(ch->ring) : 0;
}

size_t
sl_chan_cap(const struct sl_chan *ch)
{
	return ch->cap;
}

static void
copy_elem(const struct sl_chan *ch, void *dst, const void *src)
{
	if (ch->elem_size && dst && src)
		sl__ring_copy(dst, src, ch->elem_size);
}

/*
 * Waiter counts change only under the channel lock, so a load and a store
 * update them; a locked read-modify-write would cost an atomic instruction
 * for nothing.  Readers outside the lock only test them against zero (I2).
 */
static inline void
count_sub(_Atomic uint32_t *count, unsigned n)
{
	uint32_t v = atomic_load_explicit(count, memory_order_relaxed);

	atomic_store_explicit(count, v - n, memory_order_relaxed);
}

/* Claim and wake one waiter of @q (I2, I5). */
static void
wake_one(struct sl_chan *ch, struct sl__waitq *q, _Atomic uint32_t *count)
{
	struct sl__waiter *w;
	unsigned dropped = 0;
	struct sl__task *t = NULL;

	sl__spin_lock(&ch->lock);
	w = sl__waitq_claim_one(q, &dropped);
	if (dropped)
		count_sub(count, dropped);
	if (w) {
		w->done = false;
		t = w->task;
	}
	sl__spin_unlock(&ch->lock);
	if (t)
		sl__wake(t);
}

static inline void
wake_after(struct sl_chan *ch, struct sl__waitq *q, _Atomic uint32_t *count)
{
	SL_FENCE_SEQ_CST(); /* I2 (2) */
	if (SL_UNLIKELY(atomic_load_explicit(count, memory_order_relaxed)))
		wake_one(ch, q, count);
}

/*
 * Hand over to or take from a waiting peer of a rendezvous channel.
 * @into_peer: we send (copy our element into the receiver's buffer).
 */
static __attribute__((noinline)) int
rendezvous(struct sl_chan *ch, void *elem, bool send)
{
	struct sl__waitq *q = send ? &ch->recvq : &ch->sendq;
	_Atomic uint32_t *count = send ? &ch->nrecvw : &ch->nsendw;
	struct sl__waiter *w;
	struct sl__task *t;
	unsigned dropped = 0;

	if (!atomic_load_explicit(count, memory_order_acquire))
		return chan_closed(ch) ? -EPIPE : -EAGAIN;

	sl__spin_lock(&ch->lock);
	if (chan_closed(ch)) {
		sl__spin_unlock(&ch->lock);
		return -EPIPE;
	}
	w = sl__waitq_claim_one(q, &dropped);
	if (dropped)
		count_sub(count, dropped);
	if (!w) {
		sl__spin_unlock(&ch->lock);
		return -EAGAIN;
	}
	if (send)
		copy_elem(ch, w->elem, elem);
	else
		copy_elem(ch, elem, w->elem);
	w->result = 0;
	w->done = true;
	t = w->task;
	sl__spin_unlock(&ch->lock);
	sl__wake(t);
	return 0;
}

/* One attempt to send: 0, -EAGAIN (would wait) or -EPIPE (closed). */
static inline int
try_send(struct sl_chan *ch, const void *elem)
{
	int r;

	if (!ch->ring) {
		if (!atomic_load_explicit(&ch->nrecvw, memory_order_acquire))
			return chan_closed(ch) ? -EPIPE : -EAGAIN;
		return rendezvous(ch, (void *)(uintptr_t)elem, true);
	}
	r = sl__ring_enqueue_one(ch->ring, elem, true);
	if (r == 0)
		wake_after(ch, &ch->recvq, &ch->nrecvw);
	return r;
}

/* One attempt to receive: 0, -EAGAIN, or -EPIPE (closed and drained). */
static inline int
try_recv(struct sl_chan *ch, void *out)
{
	if (!ch->ring) {
		if (!atomic_load_explicit(&ch->nsendw, memory_order_acquire))
			return chan_closed(ch) ? -EPIPE : -EAGAIN;
		return rendezvous(ch, out, false);
	}
	for (;;) {
		if (sl__ring_dequeue_one(ch->ring, out, true) == 0) {
			wake_after(ch, &ch->sendq, &ch->nsendw);
			return 0;
		}
		if (!sl_ring_sealed(ch->ring))
			return -EAGAIN;
		/* Closed.  A sender that reserved a slot before the seal may
		 * still be writing it: wait for that element, then report. */
		if (sl_ring_count(ch->ring) == 0)
			return -EPIPE;
		sl__cpu_relax();
	}
}

static int
try_case(struct sl_select_case *c)
{
	if (c->dir == SL_SELECT_SEND)
		return try_send(c->ch, c->elem);
	return try_recv(c->ch, c->elem);
}

/* Is a case ready, judged under the channel lock after registering (I1)? */
static bool
ready_locked(struct sl_chan *ch, enum sl_select_dir dir,
	     const struct sl__task *self)
{
	struct sl__waiter *w;

	if (chan_closed(ch))
		return true;
	if (ch->ring) {
		struct sl_ring *r = ch->ring;
		uint64_t pos;
		uint64_t seq;

		if (dir == SL_SELECT_RECV) {
			pos = atomic_load_explicit(&r->head,
						   memory_order_acquire);
			seq = atomic_load_explicit(
				sl__ring_seq(sl__ring_slot(r, pos)),
				memory_order_acquire);
			return seq == pos + 1;
		}
		pos = atomic_load_explicit(&r->tail, memory_order_acquire);
		seq = atomic_load_explicit(sl__ring_seq(sl__ring_slot(r, pos)),
					   memory_order_acquire);
		return seq == pos;
	}
	/* Rendezvous: a peer of another task that can still be claimed. */
	w = dir == SL_SELECT_RECV ? ch->sendq.head : ch->recvq.head;
	for (; w; w = w->next)
		if (w->task != self &&
		    atomic_load_explicit(w->claim, memory_order_acquire) == 0)
			return true;
	return false;
}

/*
 * Take our waiters off their queues.  The waiter whose token is @skip was
 * already removed by the waker that claimed it (sl__waitq_claim_one removes
 * before it claims), so its lock need not be taken.
 */
static void
unregister_all(struct sl_select_case *cases, struct sl__waiter *ws,
	       size_t n, uint32_t skip)
{
	for (size_t i = 0; i < n; i++) {
		struct sl_chan *ch = cases[i].ch;
		_Atomic uint32_t *count;

		if (!ch || !ws[i].task)
			continue;
		count = cases[i].dir == SL_SELECT_RECV ? &ch->nrecvw
						       : &ch->nsendw;
		if ((uint32_t)i + 1 == skip)
			continue;
		sl__spin_lock(&ch->lock);
		if (ws[i].queued) {
			sl__waitq_remove(cases[i].dir == SL_SELECT_RECV
						 ? &ch->recvq
						 : &ch->sendq,
					 &ws[i]);
			count_sub(count, 1);
		}
		sl__spin_unlock(&ch->lock);
	}
}

/*
 * Add @w to @ch's queue for @dir and look again, under the lock, whether
 * the case has become ready (I1).  Returns true if it has; then @w is
 * taken off the queue again if @withdraw is set, or else left queued.
 */
static bool
waiter_publish(struct sl_chan *ch, enum sl_select_dir dir,
	       struct sl__waiter *w, bool withdraw)
{
	bool recv = dir == SL_SELECT_RECV;
	_Atomic uint32_t *count = recv ? &ch->nrecvw : &ch->nsendw;
	bool ready;

	sl__spin_lock(&ch->lock);
	sl__waitq_push(recv ? &ch->recvq : &ch->sendq, w);
	/* Counts change only under the lock: no read-modify-write. */
	atomic_store_explicit(count,
			      atomic_load_explicit(count,
						   memory_order_relaxed) + 1,
			      memory_order_relaxed);
	if (ch->ring)
		SL_FENCE_SEQ_CST(); /* I1 (2) */
	ready = ready_locked(ch, dir, w->task);
	if (ready && withdraw) {
		sl__waitq_remove(recv ? &ch->recvq : &ch->sendq, w);
		count_sub(count, 1);
	}
	sl__spin_unlock(&ch->lock);
	return ready;
}

/*
 * Put a waiter for every case; stop early, returning true, if a case turned
 * out ready after its waiter went in (I1).
 */
static bool
register_all(struct sl_select_case *cases, struct sl__waiter *ws, size_t n,
	     size_t start, struct sl__wait *w)
{
	for (size_t k = 0; k < n; k++) {
		size_t i = (start + k) % n;
		struct sl_chan *ch = cases[i].ch;

		if (!ch)
			continue;
		ws[i] = (struct sl__waiter){
			.task = w->task,
			.claim = &w->claim,
			.token = (uint32_t)i + 1,
			.elem = cases[i].elem,
		};
		if (waiter_publish(ch, cases[i].dir, &ws[i], false))
			return true;
	}
	return false;
}

/*
 * The select engine.  @ws has room for one waiter per case.  @polled says
 * the caller has just tried every case.  After a wake-up, the case that
 * woke us is tried first (I4).
 */
static int
select_run(struct sl_select_case *cases, size_t n, struct sl_context *ctx,
	   uint64_t deadline, bool block, struct sl__waiter *ws, bool polled)
{
	long prefer = -1;

	for (;; polled = false) {
		size_t start = n > 1 ? sl__rand() % n : 0;
		struct sl__wait w;
		uint32_t token;
		int err;

		if (prefer >= 0) {
			err = try_case(&cases[prefer]);
			if (err != -EAGAIN) {
				cases[prefer].result = err;
				return (int)prefer;
			}
		}
		for (size_t k = 0; k < n && !polled; k++) {
			size_t i = (start + k) % n;

			if (!cases[i].ch)
				continue;
			err = try_case(&cases[i]);
			if (err != -EAGAIN) {
				cases[i].result = err;
				return (int)i;
			}
		}
		if (!block)
			return -EAGAIN;

		err = sl__wait_begin(&w, ctx, deadline, "select");
		if (err)
			return err;
		for (size_t i = 0; i < n; i++)
			ws[i].task = NULL;
		if (register_all(cases, ws, n, start, &w)) {
			if (sl__wait_abort(&w)) {
				/* Nobody claimed us: retry from the top. */
				unregister_all(cases, ws, n, 0);
				prefer = -1;
				continue;
			}
			/* A waker won first; abort took its wake. */
			token = atomic_load_explicit(&w.claim,
						     memory_order_acquire);
		} else {
			token = sl__wait_park(&w);
		}
		unregister_all(cases, ws, n, (uint32_t)token);

		if (token == 0 || token > n)
			return sl__wait_error(&w, token);
		if (ws[token - 1].done) {
			cases[token - 1].result = ws[token - 1].result;
			return (int)token - 1;
		}
		prefer = (long)token - 1;
	}
}

int
sl_select(struct sl_select_case *cases, size_t n, struct sl_context *ctx,
	  uint64_t timeout_ns)
{
	/* A parked task's stack should stay within one page, so small
	 * selects keep their waiters on the stack and large ones on the heap. */
	struct sl__waiter small[4];
	struct sl__waiter *ws = small;
	uint64_t deadline = UINT64_MAX;
	int r;

	if (n > SL_SELECT_MAX)
		return -EINVAL;
	sl__preempt_point();
	if (timeout_ns != SL_SELECT_FOREVER && timeout_ns != SL_SELECT_POLL) {
		deadline = sl_now_ns() + timeout_ns;
		if (deadline < timeout_ns)
			deadline = UINT64_MAX;
	}
	if (n > SL_ARRAY_SIZE(small) && timeout_ns != SL_SELECT_POLL) {
		ws = mi_malloc(n * sizeof(*ws));
		if (!ws)
			return -ENOMEM;
	}
	r = select_run(cases, n, ctx, deadline, timeout_ns != SL_SELECT_POLL,
		       ws, false);
	if (ws != small)
		mi_free(ws);
	return r;
}

/*
 * The blocking wait of a plain send or receive (no context, no timeout):
 * the single-case select without its generality, since this is the path
 * every parking channel operation takes.  Same protocol (I1-I4).
 */
static int
wait_one(struct sl_chan *ch, enum sl_select_dir dir, void *elem)
{
	struct sl__machine *m = sl__machine_current();
	struct sl__task *self = m->curg;
	bool recv = dir == SL_SELECT_RECV;

	for (;;) {
		_Atomic uint32_t claim = 0;
		struct sl__waiter w = {
			.task = self,
			.claim = &claim,
			.token = 1,
			.elem = elem,
			/* Only this queue can wake us, under its lock. */
			.exclusive = true,
		};
		int r;

		sl__park_prepare(self, recv ? "chan recv" : "chan send");
		if (waiter_publish(ch, dir, &w, true)) {
			/* Ready after all; the waiter was withdrawn under the
			 * lock, before any waker could see it. */
			sl__park_cancel(self);
		} else {
			sl__park_on(m, self);
			m = sl__machine_current(); /* we may have moved */
			if (w.done)
				return w.result;
		}
		r = recv ? try_recv(ch, elem) : try_send(ch, elem);
		if (r != -EAGAIN)
			return r;
	}
}

/* A send or receive with a context that can end: a one-case select. */
static __attribute__((noinline)) int
chan_op_ctx(struct sl_context *ctx, struct sl_chan *ch, enum sl_select_dir dir,
	    void *elem)
{
	struct sl_select_case c = {.ch = ch, .dir = dir, .elem = elem};
	struct sl__waiter w;
	int r = select_run(&c, 1, ctx, UINT64_MAX, true, &w, true);

	return r < 0 ? r : c.result;
}

int
sl_chan_send_ctx(struct sl_context *ctx, struct sl_chan *ch, const void *elem)
{
	int r = try_send(ch, elem);

	sl__preempt_point();
	if (SL_LIKELY(r != -EAGAIN))
		return r;
	if (!ctx || !sl__context_done(ctx))
		return wait_one(ch, SL_SELECT_SEND, (void *)(uintptr_t)elem);
	return chan_op_ctx(ctx, ch, SL_SELECT_SEND, (void *)(uintptr_t)elem);
}

int
sl_chan_send(struct sl_chan *ch, const void *elem)
{
	return sl_chan_send_ctx(NULL, ch, elem);
}

int
sl_chan_recv_ctx(struct sl_context *ctx, struct sl_chan *ch, void *out)
{
	int r = try_recv(ch, out);

	sl__preempt_point();
	if (SL_LIKELY(r != -EAGAIN))
		return r;
	if (!ctx || !sl__context_done(ctx))
		return wait_one(ch, SL_SELECT_RECV, out);
	return chan_op_ctx(ctx, ch, SL_SELECT_RECV, out);
}

int
sl_chan_recv(struct sl_chan *ch, void *out)
{
	return sl_chan_recv_ctx(NULL, ch, out);
}

bool
sl_chan_try_send(struct sl_chan *ch, const void *elem)
{
	return try_send(ch, elem) == 0;
}

bool
sl_chan_try_recv(struct sl_chan *ch, void *out)
{
	return try_recv(ch, out) == 0;
}

/* After @k elements moved, wake up to @k waiters of @q: one per element,
 * as @k single operations would have. */
static void
wake_after_burst(struct sl_chan *ch, struct sl__waitq *q,
		 _Atomic uint32_t *count, unsigned k)
{
	SL_FENCE_SEQ_CST(); /* I2 (2), as wake_after() */
	for (unsigned i = 0; i < k; i++) {
		if (SL_LIKELY(!atomic_load_explicit(count,
						    memory_order_relaxed)))
			return;
		wake_one(ch, q, count);
	}
}

static inline unsigned
burst_clamp(size_t n)
{
	return n > UINT32_MAX ? UINT32_MAX : (unsigned)n;
}

ssize_t
sl_chan_send_burst_ctx(struct sl_context *ctx, struct sl_chan *ch,
		       const void *elems, size_t n)
{
	const char *p = elems;
	size_t done = 0;

	while (done < n) {
		unsigned k = 0;
		int r;

		if (ch->ring)
			k = sl_ring_enqueue_burst(ch->ring,
						  p + done * ch->elem_size,
						  burst_clamp(n - done));
		if (k) {
			done += k;
			wake_after_burst(ch, &ch->recvq, &ch->nrecvw, k);
			continue;
		}

		/* Full (or a rendezvous channel, or closed): one element the
		 * ordinary way, parking until there is room. */
		r = sl_chan_send_ctx(ctx, ch, p + done * ch->elem_size);
		if (r)
			return done ? (ssize_t)done : r;
		done++;
	}
	return (ssize_t)done;
}

ssize_t
sl_chan_recv_burst_ctx(struct sl_context *ctx, struct sl_chan *ch, void *out,
		       size_t max)
{
	char *p = out;
	size_t got;
	unsigned k;
	int r;

	if (max == 0)
		return 0;
	if (ch->ring) {
		k = sl_ring_dequeue_burst(ch->ring, p, burst_clamp(max));
		if (k) {
			wake_after_burst(ch, &ch->sendq, &ch->nsendw, k);
			return k;
		}
	}

	/* Empty: wait for one element, then take what else is there. */
	r = sl_chan_recv_ctx(ctx, ch, p);
	if (r)
		return r;
	got = 1;
	if (ch->ring) {
		k = sl_ring_dequeue_burst(ch->ring, p + ch->elem_size,
					  burst_clamp(max - 1));
		if (k)
			wake_after_burst(ch, &ch->sendq, &ch->nsendw, k);
		return (ssize_t)(got + k);
	}
	while (got < max && try_recv(ch, p + got * ch->elem_size) == 0)
		got++;
	return (ssize_t)got;
}

/* Take every waiter off @q, claiming those still free; returns them as a
 * list through their next pointers. */
static struct sl__waiter *
take_all(struct sl__waitq *q, _Atomic uint32_t *count)
{
	struct sl__waiter *list = NULL, *w;
	unsigned dropped = 0;

	while ((w = sl__waitq_claim_one(q, &dropped))) {
		w->result = -EPIPE;
		w->done = false; /* the woken task retries and sees closed */
		w->next = list;
		list = w;
	}
	count_sub(count, dropped);
	return list;
}

static void
wake_list(struct sl__waiter *w)
{
	while (w) {
		struct sl__waiter *next = w->next;

		/* After the wake the waiter may vanish with its stack. */
		sl__wake(w->task);
		w = next;
	}
}

int
sl_chan_close(struct sl_chan *ch)
{
	struct sl__waiter *recvs, *sends;

	sl__spin_lock(&ch->lock);
	if (atomic_load_explicit(&ch->closed, memory_order_relaxed)) {
		sl__spin_unlock(&ch->lock);
		return -EPIPE;
	}
	if (ch->ring)
		sl_ring_seal(ch->ring);
	atomic_store_explicit(&ch->closed, 1, memory_order_release);
	recvs = take_all(&ch->recvq, &ch->nrecvw);
	sends = take_all(&ch->sendq, &ch->nsendw);
	sl__spin_unlock(&ch->lock);

	wake_list(recvs);
	wake_list(sends);
	return 0;
}

bool
sl__chan_add_closed_waiter(struct sl_chan *ch, struct sl__waiter *w)
{
	sl__spin_lock(&ch->lock);
	if (atomic_load_explicit(&ch->closed, memory_order_relaxed)) {
		sl__spin_unlock(&ch->lock);
		return false;
	}
	sl__waitq_push(&ch->recvq, w);
	/* Under the lock, as every count change: no read-modify-write. */
	atomic_store_explicit(&ch->nrecvw,
			      atomic_load_explicit(&ch->nrecvw,
						   memory_order_relaxed) + 1,
			      memory_order_relaxed);
	sl__spin_unlock(&ch->lock);
	return true;
}

void
sl__chan_remove_closed_waiter(struct sl_chan *ch, struct sl__waiter *w)
{
	sl__spin_lock(&ch->lock);
	if (w->queued) {
		sl__waitq_remove(&ch->recvq, w);
		count_sub(&ch->nrecvw, 1);
	}
	sl__spin_unlock(&ch->lock);
}
