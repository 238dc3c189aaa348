/* SPDX-License-Identifier: MIT */
/*
 * Multishot receive queues: the receive side of every socket.
 *
 * One multishot receive stays in the kernel while the socket has a reader
 * and room in its queue.  Each completion carries one buffer from the
 * processor's provided-buffer ring, or for a stream a bundle of them
 * (Linux 6.10); the completion queues them and wakes a reader.  The
 * receive ends (a completion without IORING_CQE_F_MORE) at the end of the
 * stream, on an error, when the buffer ring is dry (-ENOBUFS), when we
 * cancel it, when it has taken the byte limit it was armed with, and
 * sometimes for the kernel's own reasons; each case decides whether and
 * where it is armed again:
 *
 *   end of stream, error        not again; readers see it after the queue
 *   -ENOBUFS                    again at once if the ring could be
 *                               refilled, else after buffers come back
 *   cancelled for back-pressure by the next reader that finds the queue
 *                               below half its limit, on the reader's own
 *                               processor; at once if a notification
 *                               waits and the queue has drained
 *   ended with data             again at once, or as cancelled if the
 *                               queue is full (the limit was reached)
 *
 * The state lives under a spinlock because the completion runs on the
 * receive's processor while readers and the closer run anywhere.  Nothing
 * that can take another socket's lock (handing a buffer back can re-arm a
 * stalled socket) is done with the lock held.
 */
#include <errno.h>
#include <string.h>

#include <mimalloc.h>

#include "core/task.h"
#include "io/io_internal.h"

#define RX_TOKEN 1u

static void rx_complete(struct sl__completion *c, int res, uint32_t flags);
static void rx_maybe_rearm(struct sl__rx *rx, struct sl__io_proc *ip);

static void
rx_lock(struct sl__rx *rx)
{
	sl__spin_lock(&rx->lock);
}

static void
rx_unlock(struct sl__rx *rx)
{
	sl__spin_unlock(&rx->lock);
}

/*
 * Whether the kernel takes a byte limit on a multishot receive: per
 * receive in sqe->len and in all in sqe->optlen (Linux 6.17; liburing
 * 2.3 calls the field file_index).  Older kernels refuse the request with
 * -EINVAL, which turns this off for good (rx_complete).
 */
static _Atomic bool rx_caps_work = true;

bool
sl__rx_caps_work(void)
{
	return atomic_load_explicit(&rx_caps_work, memory_order_relaxed);
}

/*
 * The byte limit for a stream receive armed now: the room left under
 * max_bytes, rounded up to whole buffers, so that the receive ends by
 * itself where the limit would have it cancelled; 0 for none.  Cancelling
 * comes too late: a bundled receive may have taken a megabyte by then.
 */
static uint32_t
rx_room(const struct sl__rx *rx, const struct sl__io_proc *ip)
{
	size_t room, bufs;

	if (rx->msg || rx->max_bytes == SIZE_MAX ||
	    rx->bytes >= rx->max_bytes ||
	    !atomic_load_explicit(&rx_caps_work, memory_order_relaxed))
		return 0;
	room = rx->max_bytes - rx->bytes;
	bufs = (room + ip->buf_size - 1) / ip->buf_size;
	if (bufs > INT32_MAX / ip->buf_size)
		return 0;
	return (uint32_t)(bufs * ip->buf_size);
}

/* Arm the receive on @ip's processor, which must be the caller's. */
static void
rx_arm(struct sl__rx *rx, struct sl__io_proc *ip)
{
	struct io_uring_sqe *sqe = sl__io_sqe(ip->p);

	if (!sqe) {
		rx->err = -EBUSY;
		rx->state = SL__RX_IDLE;
		return;
	}
	if (rx->msg) {
		io_uring_prep_recvmsg_multishot(sqe, rx->fd, &rx->mh, 0);
	} else {
		uint32_t room = rx_room(rx, ip);

		io_uring_prep_recv_multishot(sqe, rx->fd, NULL, room, 0);
		sqe->file_index = room;	/* the kernel's optlen */
		rx->capped = room != 0;
		/* Take as many buffers per receive as the socket holds
		 * data for: one tcp_recvmsg() and one completion for
		 * many buffers instead of one each. */
		if (ip->bundle)
			sqe->ioprio |= IORING_RECVSEND_BUNDLE;
	}
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = SL__IO_BGID;
	io_uring_sqe_set_data(sqe, &rx->cqe);
	sl__io_queue(ip->p);
	sl__io_stat_add_owner(&ip->st.rearms, 1);
	rx->ip = ip;
	rx->state = SL__RX_ARMED;
}

/* Collect the tasks to wake (all readers when @all), under the lock. */
static unsigned
rx_claim_readers(struct sl__rx *rx, bool all, struct sl__task **wake,
		 unsigned max)
{
	unsigned n = 0, dropped;
	struct sl__waiter *w;

	while (n < max && (w = sl__waitq_claim_one(&rx->readers, &dropped))) {
		wake[n++] = w->task;
		if (!all)
			break;
	}
	if (rx->closer && n < max && rx->state == SL__RX_IDLE && !rx->posts) {
		w = rx->closer;
		rx->closer = NULL;
		if (sl__waiter_claim(w))
			wake[n++] = w->task;
	}
	return n;
}

static void
rx_wake(struct sl__task **wake, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		sl__wake(wake[i]);
}

/*
 * What a queued item counts against max_bytes: the whole buffer it holds,
 * not the bytes in it, so that a peer sending many tiny pieces cannot pin
 * a buffer per piece far past the limit.
 */
static size_t
rx_charge(const struct sl__rx_item *it)
{
	return it->ip->buf_size;
}

static bool
rx_push(struct sl__rx *rx, const struct sl__rx_item *it)
{
	if (rx->len == rx->cap) {
		uint32_t cap = rx->cap ? rx->cap * 2 : 8;
		struct sl__rx_item *q = mi_malloc(cap * sizeof(*q));

		if (!q)
			return false;
		for (uint32_t i = 0; i < rx->len; i++)
			q[i] = rx->q[(rx->head + i) % rx->cap];
		mi_free(rx->q);
		rx->q = q;
		rx->cap = cap;
		rx->head = 0;
	}
	rx->q[(rx->head + rx->len) % rx->cap] = *it;
	rx->len++;
	rx->bytes += rx_charge(it);
	return true;
}

static bool
rx_full(const struct sl__rx *rx)
{
	return rx->bytes >= rx->max_bytes || rx->len >= rx->max_items;
}

/* Parse a recvmsg buffer: payload position, truncation, kernel drops. */
static void
rx_parse_msg(struct sl__rx *rx, char *buf, int res, struct sl__rx_item *it)
{
	struct io_uring_recvmsg_out *o;
	struct cmsghdr *cm;

	o = io_uring_recvmsg_validate(buf, res, &rx->mh);
	if (!o) {
		it->len = 0;
		return;
	}
	it->off = (uint32_t)((char *)io_uring_recvmsg_payload(o, &rx->mh) -
			     buf);
	it->len = io_uring_recvmsg_payload_length(o, res, &rx->mh);
	if (o->flags & MSG_TRUNC) {
		it->flags |= SL__RX_TRUNC;
		sl__io_stat_add(&rx->st.truncated, 1);
	}
	for (cm = io_uring_recvmsg_cmsg_firsthdr(o, &rx->mh); cm;
	     cm = io_uring_recvmsg_cmsg_nexthdr(o, &rx->mh, cm)) {
		if (cm->cmsg_level == SOL_SOCKET &&
		    cm->cmsg_type == SO_RXQ_OVFL) {
			uint32_t drops;

			memcpy(&drops, CMSG_DATA(cm), sizeof(drops));
			/* The kernel's count since the socket opened. */
			atomic_store_explicit(&rx->st.dropped, drops,
					      memory_order_relaxed);
		}
	}
}

/*
 * Start the task of a notification.  If there is no memory for a task,
 * put the notification back: the next arrival tries again.
 */
static void
rx_spawn(struct sl__rx *rx, void (*fn)(void *), void *arg)
{
	int r = sl_task_spawn(fn, arg, NULL, NULL);

	if (!r)
		return;
	sl__io_log("error", "msg=\"cannot start a reader task\" err=\"%s\"",
		   sl_strerror(r));
	rx_lock(rx);
	if (!rx->notify_fn && !rx->closing) {
		rx->notify_fn = fn;
		rx->notify_arg = arg;
	}
	rx_unlock(rx);
}

static void
rx_resume(struct sl__io_stall *s, struct sl__io_proc *ip)
{
	struct sl__rx *rx = SL_CONTAINER_OF(s, struct sl__rx, stall);
	struct sl__task *wake[8];
	unsigned n = 0;

	rx_lock(rx);
	if (rx->state == SL__RX_STALLED) {
		if (rx->closing) {
			rx->state = SL__RX_IDLE;
			n = rx_claim_readers(rx, true, wake, 8);
		} else {
			rx_arm(rx, ip);
		}
	}
	rx_unlock(rx);
	rx_wake(wake, n);
}

/*
 * How many buffers a completion of @res bytes filled: one, or for a
 * bundled stream receive every buffer it needed, each filled whole but
 * the last.
 */
static unsigned
rx_bufs_filled(const struct sl__rx *rx, const struct sl__io_proc *ip,
	       int res)
{
	if (rx->msg || !ip->bundle)
		return 1;
	return ((uint32_t)res + ip->buf_size - 1) / ip->buf_size;
}

/*
 * Queue the @nbufs buffers of one completion of @res bytes, the first
 * @first, all counted as taken (lock held).  Returns how many were queued:
 * fewer than @nbufs only when there was no memory for the queue.
 */
static unsigned
rx_queue_bufs(struct sl__rx *rx, struct sl__io_proc *ip, uint16_t first,
	      unsigned nbufs, int res)
{
	uint32_t left = (uint32_t)res;
	unsigned k;

	for (k = 0; k < nbufs; k++)
		sl__io_buf_taken(ip);
	for (k = 0; k < nbufs; k++) {
		struct sl__rx_item it = {
			.ip = ip,
			.bid = sl__io_bundle_bid(ip, first, k),
			.len = left < ip->buf_size ? left : ip->buf_size,
		};

		if (rx->msg)
			rx_parse_msg(rx, sl__io_buf_addr(ip, it.bid), res, &it);
		if (!rx_push(rx, &it))
			break;
		left -= it.len;
		sl__io_stat_add(&rx->st.items, 1);
		sl__io_stat_add(&rx->st.bytes, it.len);
	}
	if (nbufs > 1)
		sl__io_stat_add_owner(&ip->st.bundles, 1);
	return k;
}

static void
rx_complete(struct sl__completion *c, int res, uint32_t flags)
{
	struct sl__rx *rx = SL_CONTAINER_OF(c, struct sl__rx, cqe);
	struct sl__io_proc *ip = rx->ip;
	struct sl__task *wake[8];
	bool more = flags & IORING_CQE_F_MORE;
	bool stall = false, all = false;
	void (*notify_fn)(void *) = NULL;
	void *notify_arg = NULL;
	unsigned n;

	if (sl_ring_maybe_nonempty(ip->returns))
		sl__io_returns_drain(ip);
	sl__io_bufs_top_up(ip);

	rx_lock(rx);
	if (res > 0 && (flags & IORING_CQE_F_BUFFER)) {
		uint16_t first = (uint16_t)(flags >> IORING_CQE_BUFFER_SHIFT);
		unsigned nbufs = rx_bufs_filled(rx, ip, res);
		unsigned k = rx_queue_bufs(rx, ip, first, nbufs, res);

		if (k < nbufs) {
			/* No memory for the queue: drop the rest of the data
			 * and say so; the stream is broken for the reader. */
			rx_unlock(rx);
			for (; k < nbufs; k++)
				sl__io_buf_put(ip, sl__io_bundle_bid(ip, first,
								     k));
			rx_lock(rx);
			rx->err = -ENOMEM;
			all = true;
		}
		if (more && rx_full(rx) && rx->state == SL__RX_ARMED) {
			/* Back-pressure: let the socket buffer fill. */
			sl__io_cancel_on(ip->p, &rx->cqe);
			rx->state = SL__RX_CANCELLING;
			sl__io_stat_add(&rx->st.pauses, 1);
		}
	} else if (res == 0 && !rx->msg) {
		rx->eof = true;
		all = true;
	} else if (res == -EINVAL && rx->capped && !more) {
		/* A kernel without byte limits on multishot receives:
		 * stop asking for them, and arm again below. */
		atomic_store_explicit(&rx_caps_work, false,
				      memory_order_relaxed);
		rx->capped = false;
		res = 0;
	} else if (res < 0 && res != -ENOBUFS && res != -ECANCELED) {
		rx->err = res;
		all = true;
	}

	if (!more) {
		/* A full queue stays idle whatever ended the receive, a dry
		 * buffer ring included: its reader arms it again. */
		if (rx->closing || rx->eof || rx->err) {
			rx->state = SL__RX_IDLE;
		} else if (res == -ECANCELED || rx_full(rx)) {
			/* A receive armed with the room left ends by itself
			 * once it has filled it: that is a pause too (the
			 * cancel above counted its own). */
			if (res != -ECANCELED && !rx->msg)
				sl__io_stat_add(&rx->st.pauses, 1);
			rx->state = SL__RX_IDLE;
			/*
			 * A notification asked for while the cancel was on
			 * its way found the receive busy and armed nothing,
			 * and no reader is parked to arm it: arm it here if
			 * the queue has drained, or it is lost for good.
			 */
			if (rx->notify_fn)
				rx_maybe_rearm(rx, ip);
		} else if (res == -ENOBUFS) {
			if (sl__io_buf_refill(ip)) {
				rx_arm(rx, ip);
			} else {
				rx->state = SL__RX_STALLED;
				stall = true;
			}
		} else {
			rx_arm(rx, ip);
		}
		all = all || rx->state == SL__RX_IDLE;
	}
	n = rx_claim_readers(rx, all, wake, 8);
	if (rx->notify_fn && (rx->len || rx->eof || rx->err)) {
		notify_fn = rx->notify_fn;
		notify_arg = rx->notify_arg;
		rx->notify_fn = NULL;
	}
	rx_unlock(rx);
	rx_wake(wake, n);
	if (notify_fn)
		rx_spawn(rx, notify_fn, notify_arg);
	if (stall)
		sl__io_stall_add(ip, &rx->stall);
}

void
sl__rx_init(struct sl__rx *rx, int fd, bool msg, size_t max_bytes,
	    uint32_t max_items, void (*release)(struct sl__rx *rx))
{
	memset(rx, 0, sizeof(*rx));
	atomic_init(&rx->users, 1);
	rx->release = release;
	rx->fd = fd;
	rx->msg = msg;
	rx->max_bytes = max_bytes ? max_bytes : SIZE_MAX;
	rx->max_items = max_items ? max_items : UINT32_MAX;
	rx->state = SL__RX_IDLE;
	rx->cqe.fn = rx_complete;
	rx->stall.resume = rx_resume;
}

static bool
rx_pop(struct sl__rx *rx, struct sl__rx_item *out)
{
	if (!rx->len)
		return false;
	*out = rx->q[rx->head];
	rx->head = (rx->head + 1) % rx->cap;
	rx->len--;
	rx->bytes -= rx_charge(out);
	return true;
}

/*
 * Resume receiving if the queue is below half its limit, or empty (a
 * limit of one buffer has no half), lock held.
 */
static void
rx_maybe_rearm(struct sl__rx *rx, struct sl__io_proc *ip)
{
	bool room = rx->len == 0 || (rx->bytes < rx->max_bytes / 2 &&
				     rx->len < rx->max_items / 2);

	if (rx->state == SL__RX_IDLE && !rx->eof && !rx->err &&
	    !rx->closing && room)
		rx_arm(rx, ip);
}

int
sl__rx_try_get(struct sl__rx *rx, struct sl__rx_item *out)
{
	struct sl__io_proc *ip;
	int err = 0, r;

	ip = sl__io_proc_get(&err);
	if (!ip)
		return err;
	rx_lock(rx);
	if (rx->closing)
		r = -EBADF;
	else if (rx_pop(rx, out))
		r = 1;
	else if (rx->err)
		r = rx->err;
	else if (rx->eof)
		r = 0;
	else
		r = -EAGAIN;
	if (r != 0 && !rx->closing)
		rx_maybe_rearm(rx, ip);
	rx_unlock(rx);
	return r;
}

int
sl__rx_notify(struct sl__rx *rx, void (*fn)(void *), void *arg)
{
	struct sl__io_proc *ip;
	bool now;
	int err = 0;

	ip = sl__io_proc_get(&err);
	if (!ip)
		return err;
	rx_lock(rx);
	if (rx->closing) {
		rx_unlock(rx);
		return -EBADF;
	}
	now = rx->len || rx->eof || rx->err;
	if (!now) {
		rx->notify_fn = fn;
		rx->notify_arg = arg;
		rx_maybe_rearm(rx, ip);
	}
	rx_unlock(rx);
	return now ? sl_task_spawn(fn, arg, NULL, NULL) : 0;
}

/*
 * Leave the socket.  The last of its owner and the readers inside
 * sl__rx_get() frees it: a reader that close woke may run only after
 * sl__rx_close() has returned, and must still find the lock and the
 * closing flag where it left them.
 */
static void
rx_leave(struct sl__rx *rx)
{
	if (atomic_fetch_sub_explicit(&rx->users, 1, memory_order_acq_rel) ==
	    1)
		rx->release(rx);
}

void
sl__rx_release(struct sl__rx *rx)
{
	rx_leave(rx);
}

static int
rx_get_inside(struct sl__rx *rx, struct sl_context *ctx, uint64_t deadline,
	      struct sl__rx_item *out)
{
	for (;;) {
		struct sl__io_proc *ip;
		struct sl__waiter waiter;
		struct sl__wait w;
		uint32_t token;
		int err = 0, r;

		/*
		 * The processor to arm on, looked up again on every pass: the
		 * wake that ends a park may resume this task on another one.
		 * An SQE put on the ring of the one it left races that
		 * machine's own use of the ring, and is never submitted if
		 * that machine sleeps: the receive would count as armed with
		 * nothing in the kernel.
		 */
		ip = sl__io_proc_get(&err);
		if (!ip)
			return err;

		rx_lock(rx);
		if (rx->closing) {
			rx_unlock(rx);
			return -EBADF;
		}
		if (rx_pop(rx, out)) {
			rx_maybe_rearm(rx, ip);
			rx_unlock(rx);
			return 1;
		}
		if (rx->err) {
			r = rx->err;
			rx_unlock(rx);
			return r;
		}
		if (rx->eof) {
			rx_unlock(rx);
			return 0;
		}
		if (rx->state == SL__RX_IDLE)
			rx_arm(rx, ip);
		rx_unlock(rx);

		r = sl__wait_begin(&w, ctx, deadline, "socket receive");
		if (r)
			return r;
		waiter = (struct sl__waiter){
			.task = w.task,
			.claim = &w.claim,
			.token = RX_TOKEN,
		};
		rx_lock(rx);
		if (rx->len || rx->err || rx->eof || rx->closing) {
			rx_unlock(rx);
			sl__wait_abort(&w);
			continue;
		}
		sl__waitq_push(&rx->readers, &waiter);
		rx_unlock(rx);

		token = sl__wait_park(&w);
		if (token == RX_TOKEN)
			continue;
		rx_lock(rx);
		if (waiter.queued)
			sl__waitq_remove(&rx->readers, &waiter);
		rx_unlock(rx);
		return sl__wait_error(&w, token);
	}
}

int
sl__rx_get(struct sl__rx *rx, struct sl_context *ctx, uint64_t deadline,
	   struct sl__rx_item *out)
{
	int r;

	atomic_fetch_add_explicit(&rx->users, 1, memory_order_relaxed);
	r = rx_get_inside(rx, ctx, deadline, out);
	rx_leave(rx);
	return r;
}

/* Posted to the receive's processor: cancel it there. */
static void
rx_cancel_posted(struct sl__completion *c, int res, uint32_t flags)
{
	struct sl__rx *rx = SL_CONTAINER_OF(c, struct sl__rx, cancel);
	struct sl__task *wake[8];
	unsigned n;

	(void)res;
	(void)flags;
	rx_lock(rx);
	if (rx->state == SL__RX_ARMED) {
		sl__io_cancel_on(rx->ip->p, &rx->cqe);
		rx->state = SL__RX_CANCELLING;
	}
	rx->posts--;
	n = rx_claim_readers(rx, true, wake, 8);
	rx_unlock(rx);
	rx_wake(wake, n);
}

/* Posted to the stall list's processor: leave it. */
static void
rx_unstall_posted(struct sl__completion *c, int res, uint32_t flags)
{
	struct sl__rx *rx = SL_CONTAINER_OF(c, struct sl__rx, unstall);
	struct sl__task *wake[8];
	unsigned n;

	(void)res;
	(void)flags;
	sl__io_stall_remove(rx->ip, &rx->stall);
	rx_lock(rx);
	if (rx->state == SL__RX_STALLED)
		rx->state = SL__RX_IDLE;
	rx->posts--;
	n = rx_claim_readers(rx, true, wake, 8);
	rx_unlock(rx);
	rx_wake(wake, n);
}

void
sl__rx_close(struct sl__rx *rx)
{
	struct sl__rx_item it;
	struct sl__task *wake[8];
	unsigned n;

	rx_lock(rx);
	rx->closing = true;
	rx->notify_fn = NULL;
	/* Readers parked now fail with -EBADF. */
	n = rx_claim_readers(rx, true, wake, 8);
	rx_unlock(rx);
	rx_wake(wake, n);

	for (;;) {
		struct sl__waiter waiter;
		struct sl__wait w;

		rx_lock(rx);
		if (rx->state == SL__RX_IDLE && !rx->posts) {
			rx_unlock(rx);
			break;
		}
		if (rx->state == SL__RX_ARMED && !rx->posts) {
			rx->posts++;
			rx->cancel.fn = rx_cancel_posted;
			rx_unlock(rx);
			sl__proc_post(rx->ip->p, &rx->cancel);
			continue;
		}
		if (rx->state == SL__RX_STALLED && !rx->posts) {
			rx->posts++;
			rx->unstall.fn = rx_unstall_posted;
			rx_unlock(rx);
			sl__proc_post(rx->ip->p, &rx->unstall);
			continue;
		}
		rx_unlock(rx);

		sl__wait_begin(&w, NULL, SL_NO_DEADLINE, "socket close");
		waiter = (struct sl__waiter){
			.task = w.task,
			.claim = &w.claim,
			.token = RX_TOKEN,
		};
		rx_lock(rx);
		if (rx->state == SL__RX_IDLE && !rx->posts) {
			rx_unlock(rx);
			sl__wait_abort(&w);
			break;
		}
		rx->closer = &waiter;
		rx_unlock(rx);
		sl__wait_park(&w);
	}

	while (rx_pop(rx, &it))
		sl__rx_item_release(&it);
	mi_free(rx->q);
	rx->q = NULL;
}
