/* SPDX-License-Identifier: MIT */
/*
 * Channels: typed-by-size, bounded queues between tasks, with Go's
 * semantics, and select over several of them.
 *
 * A buffered channel is an sl_ring plus two wait queues; while no task waits,
 * send and receive touch only the ring and take no lock.  A channel of
 * capacity 0 is a rendezvous: a send completes only when a receiver takes
 * the element directly from the sender.  The wake-up protocol and its
 * invariants are described at the top of core/chan.c.
 *
 * Blocking calls park the calling task, never its thread, and must be made
 * from a task.  The try_ calls never block and may be made from any thread.
 */
#ifndef SLUICE_CORE_CHAN_H
#define SLUICE_CORE_CHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/base.h"

struct sl_chan;
struct sl_context;

/**
 * sl_chan_create() - make a channel of @elem_size-byte elements.
 * @elem_size: 0 to 4096 bytes (0 makes a signal-only channel).
 * @capacity: 0 for a rendezvous channel, else the buffer size (rounded up to
 * a power of two).
 *
 * Return: the channel, or NULL with errno EINVAL or ENOMEM.
 */
struct sl_chan *sl_chan_create(size_t elem_size, size_t capacity);

/**
 * sl_chan_destroy() - free a channel.  No task may be using or waiting on
 * it; buffered elements are discarded.
 */
void sl_chan_destroy(struct sl_chan *ch);

/**
 * sl_chan_send() - copy @elem into the channel, parking while it is full
 * (or, for capacity 0, until a receiver takes it).
 *
 * Return: 0, or -EPIPE if the channel is closed (before or while waiting).
 */
int sl_chan_send(struct sl_chan *ch, const void *elem);

/** sl_chan_send_ctx() - send; gives up with @ctx's error when it ends. */
int sl_chan_send_ctx(struct sl_context *ctx, struct sl_chan *ch,
		     const void *elem);

/**
 * sl_chan_recv() - take the next element into @out (may be NULL), parking
 * while the channel is empty.
 *
 * Return: 0, or -EPIPE once the channel is closed and drained.
 */
int sl_chan_recv(struct sl_chan *ch, void *out);

/** sl_chan_recv_ctx() - receive; gives up with @ctx's error when it ends. */
int sl_chan_recv_ctx(struct sl_context *ctx, struct sl_chan *ch, void *out);

/**
 * sl_chan_try_send() - send without blocking.
 *
 * Return: true if the element was sent; false if the channel was full, had
 * no waiting receiver (capacity 0), or is closed.
 */
bool sl_chan_try_send(struct sl_chan *ch, const void *elem);

/** sl_chan_try_recv() - receive without blocking; false if none was ready. */
bool sl_chan_try_recv(struct sl_chan *ch, void *out);

/**
 * sl_chan_send_burst_ctx() - send the @n elements at @elems in order,
 * parking while the channel is full.  A burst moves through the ring in
 * as few claims as room allows and wakes as many receivers as elements it
 * moved, so one call costs far less than @n sends.
 *
 * Return: @n; fewer if the channel closed or @ctx ended part-way (call
 * again for the error); or, when nothing was sent, -EPIPE or @ctx's error.
 */
ssize_t sl_chan_send_burst_ctx(struct sl_context *ctx, struct sl_chan *ch,
			       const void *elems, size_t n);

/**
 * sl_chan_recv_burst_ctx() - take up to @max elements into @out, parking
 * only while the channel is empty: once one element is there, the call
 * returns with it and whatever else is buffered.
 *
 * Return: the number taken (at least 1), or -EPIPE once the channel is
 * closed and drained, or @ctx's error.
 */
ssize_t sl_chan_recv_burst_ctx(struct sl_context *ctx, struct sl_chan *ch,
			       void *out, size_t max);

/**
 * sl_chan_close() - close the channel.  Waiting senders fail with -EPIPE;
 * receivers drain what is buffered and then see -EPIPE.  Safe from any
 * thread.
 *
 * Return: 0, or -EPIPE if it was already closed.
 */
int sl_chan_close(struct sl_chan *ch);

/** sl_chan_is_closed() - whether sl_chan_close() has been called. */
bool sl_chan_is_closed(const struct sl_chan *ch);

/** sl_chan_len() - buffered elements at some recent instant. */
size_t sl_chan_len(const struct sl_chan *ch);

/** sl_chan_cap() - the buffer size (0 for rendezvous channels). */
size_t sl_chan_cap(const struct sl_chan *ch);

enum sl_select_dir {
	SL_SELECT_RECV = 0,
	SL_SELECT_SEND = 1,
};

struct sl_select_case {
	struct sl_chan *ch;	/* NULL cases are never chosen */
	enum sl_select_dir dir;
	void *elem;		/* element to send, or where to receive */
	int result;		/* set on the chosen case: 0 or -EPIPE */
};

/* sl_select() @timeout_ns values with a special meaning. */
#define SL_SELECT_FOREVER UINT64_MAX	/* no timeout */
#define SL_SELECT_POLL 0		/* the "default" case: never park */

/**
 * sl_select() - wait until one of @cases can proceed, and perform it.
 * @ctx: optional; its cancellation ends the wait (Go's <-ctx.Done()).
 * @timeout_ns: SL_SELECT_FOREVER, SL_SELECT_POLL, or a relative timeout.
 *
 * Among cases ready at the same time the choice is uniformly random, so no
 * case starves.  A receive from a closed, drained channel is ready and
 * reports -EPIPE in its result; so does a send to a closed channel.
 *
 * Return: the index of the case performed; -EAGAIN when polling found
 * nothing ready; -ETIMEDOUT when the timeout passed; @ctx's error when it
 * ended; -EINVAL for more than SL_SELECT_MAX cases; -ENOMEM when a
 * blocking select of more than four cases cannot allocate its waiters.
 */
int sl_select(struct sl_select_case *cases, size_t n, struct sl_context *ctx,
	      uint64_t timeout_ns);

#define SL_SELECT_MAX 64

#endif /* SLUICE_CORE_CHAN_H */
