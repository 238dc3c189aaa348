/* SPDX-License-Identifier: MIT */
/*
 * io/ internals: one-shot requests with contexts and deadlines, and each
 * processor's ring of provided receive buffers.
 */
#ifndef SLUICE_IO_INTERNAL_H
#define SLUICE_IO_INTERNAL_H

#include <stdio.h>
#include <sys/socket.h>

#include <liburing.h>

#include "core/sched_internal.h"
#include "core/wait_internal.h"
#include "io/io.h"

/* ---- one-shot requests (op.c) ---- */

/*
 * A request in flight, on the stack of the task that waits for it.  The
 * task does not return before every completion that points into this
 * struct has been reaped: the request's own, its linked timeout's, and the
 * cancel it may have posted.  That count is @pending.
 */
struct sl__io_op {
	struct sl__completion c;	/* the request's completion */
	struct sl__completion tc;	/* its linked timeout's */
	struct sl__completion cc;	/* posts the cancel to @proc */
	struct sl__wait w;
	/* The wait the task parks on now: @w, or after a cancel a second
	 * one (io_op_settle wakes through this). */
	struct sl__wait *_Atomic wake;
	struct sl__proc *proc;		/* whose ring holds the request */
	struct __kernel_timespec ts;
	_Atomic int pending;
	/* Times the count reached zero and that handler let go of this. */
	_Atomic uint32_t settled;
	int res;
	uint32_t flags;
	int tres;
	bool zc;			/* zero-copy send: a notice follows */
	bool linked;
};

/*
 * Start a request: returns an SQE of the calling task's processor for the
 * caller to prepare, or NULL with *err set (not on a processor, the context
 * already ended, the deadline passed).  Nothing may park between this and
 * sl__io_run().
 */
struct io_uring_sqe *sl__io_begin(struct sl__io_op *op,
				  struct sl_context *ctx, uint64_t deadline,
				  const char *reason, int *err);

/* Queue the prepared request, park until it is over, return its result. */
int sl__io_run(struct sl__io_op *op, struct io_uring_sqe *sqe);

/*
 * Queue a request whose completion nobody waits for (a close, a cancel) on
 * the caller's processor.  Returns false when not on a processor.
 */
struct io_uring_sqe *sl__io_sqe(struct sl__proc *p);
void sl__io_queue(struct sl__proc *p);

/* Cancel, on its own processor, whatever request has @user_data there. */
void sl__io_cancel_on(struct sl__proc *p, void *user_data);

/* ---- processors' I/O state and provided buffers (proc.c) ---- */

#define SL__IO_BGID 0

/* From the kernel's uapi header (Linux 6.10); liburing 2.3 predates it. */
#ifndef IORING_RECVSEND_BUNDLE
#define IORING_RECVSEND_BUNDLE (1U << 4)
#endif
#ifndef IORING_FEAT_RECVSEND_BUNDLE
#define IORING_FEAT_RECVSEND_BUNDLE (1U << 14)
#endif

struct sl__io_stall;

struct sl__io_proc {
	struct sl__proc *p;
	/* The provided-buffer ring and the buffers behind it. */
	struct io_uring_buf_ring *br;
	size_t br_bytes;
	unsigned entries;		/* ring slots: bufs_max, a power of 2 */
	unsigned nbufs;			/* buffers allocated so far */
	uint32_t buf_size;
	char **addr;			/* buffer id -> address */
	/*
	 * Which buffer sits in which ring slot, and back: a bundled receive
	 * (below) names only the first buffer it filled, and the others are
	 * the ones in the slots after it.
	 */
	uint16_t *slot_bid, *bid_slot;
	/* Stream receives take several buffers per completion when the
	 * socket holds that much (IORING_RECVSEND_BUNDLE, Linux 6.10). */
	bool bundle;
	char *chunks[16];
	size_t chunk_bytes[16];
	unsigned nchunks;
	/* Buffer ids handed back by other processors. */
	struct sl_ring *returns;
	/* Receivers waiting for a buffer to come back (owner only). */
	struct sl__io_stall *stalled;
	_Atomic uint32_t nstalled;
	_Atomic uint32_t kick_posted;
	struct sl__completion kick;
	_Atomic int64_t in_use;

	/*
	 * Statistics.  Only the owner bumps them (sl__io_stat_add_owner),
	 * but @timeouts: the task that timed out bumps it wherever it woke.
	 */
	struct {
		_Atomic uint64_t ops, cancels, timeouts, enobufs, grows;
		_Atomic uint64_t stalls, rearms, bufs, bundles;
	} st;
};

/* A receiver parked on a processor's stall list until buffers come back. */
struct sl__io_stall {
	struct sl__io_stall *next, *prev;
	bool on_list;
	void (*resume)(struct sl__io_stall *s, struct sl__io_proc *ip);
};

/*
 * @p's I/O state, created on first use without receive buffers, so that
 * every request is counted wherever it was made (owner only).  NULL when
 * there is no memory for it.
 */
struct sl__io_proc *sl__io_proc_of(struct sl__proc *p);

/* The calling task's processor's I/O state with its ring of receive
 * buffers, both set up on first use. */
struct sl__io_proc *sl__io_proc_get(int *err);

/*
 * The buffer @k slots after @first in the ring: a bundle's @k-th (owner
 * only).  Valid until the slot is written again, which takes a put for
 * every slot between the ring's tail and it: the caller looks each one up
 * before it puts any back.
 */
static inline uint16_t
sl__io_bundle_bid(const struct sl__io_proc *ip, uint16_t first, unsigned k)
{
	if (k == 0)
		return first;
	return ip->slot_bid[(ip->bid_slot[first] + k) & (ip->entries - 1)];
}

/* A buffer's address. */
static inline char *
sl__io_buf_addr(struct sl__io_proc *ip, uint16_t bid)
{
	return ip->addr[bid];
}

/* Hand buffer @bid back to @ip's ring, from any processor. */
void sl__io_buf_put(struct sl__io_proc *ip, uint16_t bid);

/* Note that the kernel handed a buffer out. */
static inline void
sl__io_buf_taken(struct sl__io_proc *ip)
{
	atomic_fetch_add_explicit(&ip->in_use, 1, memory_order_relaxed);
}

void sl__io_bufs_grow(struct sl__io_proc *ip);

/*
 * Grow the ring before it runs dry, once fewer than an eighth of the
 * buffers are free (owner only, with no socket's lock held: it may map
 * memory).  A dry ring ends every armed receive that wants a buffer with
 * -ENOBUFS, each to be re-armed: with many connections, thousands of
 * completions and submissions that growing a little early avoids.
 */
static inline void
sl__io_bufs_top_up(struct sl__io_proc *ip)
{
	int64_t used = atomic_load_explicit(&ip->in_use, memory_order_relaxed);

	if (SL_UNLIKELY((int64_t)ip->nbufs - used < (int64_t)ip->nbufs / 8 &&
			ip->nbufs < ip->entries))
		sl__io_bufs_grow(ip);
}

/*
 * The ring ran dry (a receive ended with -ENOBUFS): take back buffers that
 * other processors returned, or allocate more.  Returns true if the ring
 * has buffers again; false if the receiver must stall (sl__io_stall_add).
 */
bool sl__io_buf_refill(struct sl__io_proc *ip);
void sl__io_stall_add(struct sl__io_proc *ip, struct sl__io_stall *s);
void sl__io_stall_remove(struct sl__io_proc *ip, struct sl__io_stall *s);

/* Take back the buffers other processors returned (owner only). */
void sl__io_returns_drain(struct sl__io_proc *ip);

/* Fault injection for tests: fail the next @count syncs with @err. */
void sl__io_inject_sync_failure(int err, unsigned count);
int sl__io_injected_sync_failure(void);

/*
 * Statistics counters are read from any thread (sl_io_stats_get), so they
 * are atomic; relaxed, since they order nothing.  One that several
 * machines bump takes an atomic add; one that only its processor's own
 * machine bumps takes a plain load and store, as cheap as a plain field.
 */
static inline void
sl__io_stat_add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static inline void
sl__io_stat_add_owner(_Atomic uint64_t *c, uint64_t n)
{
	uint64_t v = atomic_load_explicit(c, memory_order_relaxed);

	atomic_store_explicit(c, v + n, memory_order_relaxed);
}

/* ---- multishot receive queues (rx.c) ---- */

/* One received buffer: which processor's ring it belongs to, and where
 * the payload lies within it. */
struct sl__rx_item {
	struct sl__io_proc *ip;
	uint16_t bid;
	uint16_t flags;		/* SL__RX_TRUNC */
	uint32_t off;
	uint32_t len;
};

#define SL__RX_TRUNC 1u

enum sl__rx_state {
	SL__RX_IDLE,		/* nothing in the kernel */
	SL__RX_ARMED,		/* a multishot receive is in the kernel */
	SL__RX_CANCELLING,	/* ... and we asked it to stop */
	SL__RX_STALLED,		/* waiting on a stall list for buffers */
};

/*
 * A socket's receive side: a multishot receive (recv, or recvmsg for
 * datagrams) and the queue of buffers it filled that nobody took yet.
 * The completion runs on the processor holding the receive; readers run
 * anywhere; the lock covers everything below it.
 */
struct sl__rx {
	int fd;
	bool msg;			/* recvmsg, for datagrams */
	struct msghdr mh;		/* its template: name and control sizes */
	/* Stop receiving past this many bytes queued, counting whole
	 * buffers however full. */
	size_t max_bytes;
	uint32_t max_items;

	/* The owner and the readers inside sl__rx_get(); the last to
	 * leave calls @release, which frees the object around this. */
	_Atomic uint32_t users;
	void (*release)(struct sl__rx *rx);

	_Atomic uint32_t lock;
	enum sl__rx_state state;
	bool eof, closing;
	bool capped;			/* armed with a byte limit */
	int err;
	unsigned posts;			/* posted completions not yet run */
	struct sl__io_proc *ip;		/* where the receive is (or was) */
	struct sl__rx_item *q;
	uint32_t head, len, cap;
	size_t bytes;			/* buffer bytes the queue holds */
	struct sl__waitq readers;
	struct sl__waiter *closer;
	/* Spawned when an item, the end or an error arrives (one-shot). */
	void (*notify_fn)(void *arg);
	void *notify_arg;

	struct sl__completion cqe;	/* the receive's completions */
	struct sl__completion cancel;	/* posted: cancel it */
	struct sl__completion unstall;	/* posted: leave the stall list */
	struct sl__io_stall stall;

	struct {
		_Atomic uint64_t items, bytes, truncated, dropped;
		/* Times receiving stopped because the queue held
		 * max_bytes (streams). */
		_Atomic uint64_t pauses;
	} st;
};

/* @release frees the object holding @rx, once its owner has called
 * sl__rx_release() and no reader is inside it any more. */
void sl__rx_init(struct sl__rx *rx, int fd, bool msg, size_t max_bytes,
		 uint32_t max_items, void (*release)(struct sl__rx *rx));

/*
 * Take the oldest item, parking until there is one.  Returns 1 with *out
 * set (the caller now owns its buffer), 0 at the end of the stream, or a
 * negative errno value.  The socket's error is reported once the queue is
 * empty, and again on every later call.
 */
int sl__rx_get(struct sl__rx *rx, struct sl_context *ctx, uint64_t deadline,
	       struct sl__rx_item *out);

/* sl__rx_get() without waiting: -EAGAIN when there is nothing yet. */
int sl__rx_try_get(struct sl__rx *rx, struct sl__rx_item *out);

/*
 * Spawn @fn(@arg) once an item, the end or an error is there (at once if
 * one already is).  One-shot.  Returns 0 or a negative errno value.
 */
int sl__rx_notify(struct sl__rx *rx, void (*fn)(void *), void *arg);

/* Hand an item's buffer back to its processor. */
static inline void
sl__rx_item_release(struct sl__rx_item *it)
{
	sl__io_buf_put(it->ip, it->bid);
}

/*
 * Stop receiving, wait until the kernel is done, free queued buffers.
 * Readers parked in sl__rx_get() return -EBADF, perhaps after this has
 * returned; the owner then gives up its hold with sl__rx_release().
 */
void sl__rx_close(struct sl__rx *rx);

/* Whether stream receives are armed with a byte limit (see rx.c). */
bool sl__rx_caps_work(void);
void sl__rx_release(struct sl__rx *rx);

/* Log one line in the runtime's format, at most once a second per site. */
#define sl__io_log(level, fmt, ...)                                            \
	do {                                                                   \
		static _Atomic uint64_t sl__last_log;                          \
		uint64_t sl__now = sl_now_ns();                                \
		uint64_t sl__prev = atomic_load_explicit(                      \
			&sl__last_log, memory_order_relaxed);                  \
		if (sl__now - sl__prev >= SL_NSEC_PER_SEC &&                   \
		    atomic_compare_exchange_strong(&sl__last_log, &sl__prev,   \
						   sl__now))                   \
			fprintf(stderr,                                        \
				"sluice: level=" level " subsys=io " fmt "\n", \
				__VA_ARGS__);                                  \
	} while (0)
#endif /* SLUICE_IO_INTERNAL_H */
