/* SPDX-License-Identifier: MIT */
/*
 * io/: network and file I/O over each processor's io_uring.
 *
 * Every call here must be made from a task.  It queues its request on the
 * ring of the processor the task runs on and parks only the task; the
 * processor runs other tasks meanwhile and submits the queued requests in
 * one system call at its next schedule point (at most 16 task switches
 * later) or when it runs out of work.  The completion makes the task
 * runnable again.
 *
 * Errors follow core/base.h: a negative errno value, which sl_strerror()
 * describes.  Calls that take a context give up with its error when it
 * ends: -ECANCELED when it was cancelled, -ETIMEDOUT when its deadline
 * passed.  A request that the kernel completes anyway while it is being
 * cancelled reports its real result: bytes that moved are never lost.
 *
 * Receive buffers come from a ring of provided buffers per processor; a
 * connection holds one only between the kernel filling it and the reader
 * consuming it, so an idle connection holds none.  See docs/io.md.
 */
#ifndef SLUICE_IO_IO_H
#define SLUICE_IO_IO_H

#include <stdbool.h>
#include <stdint.h>

#include "core/base.h"

/* Deadlines are absolute times on sl_now_ns()'s clock; this means none. */
#define SL_NO_DEADLINE UINT64_MAX

struct sl_io_opts {
	/* Bytes per provided receive buffer (default 4096). */
	uint32_t buf_size;
	/* Buffers each processor starts with (default 256). */
	uint32_t bufs_initial;
	/* Buffers a processor may grow to when its ring runs dry
	 * (default 4096, at most 32768). */
	uint32_t bufs_max;
};

/**
 * sl_io_configure() - set the I/O layer's options, before it is first used.
 * @opts: NULL for the defaults.
 *
 * Call it before sl_runtime_run(), or from a task before the first
 * receive.  The options are fixed while any processor has its receive
 * buffers, and free to change again once the runtime has ended.
 *
 * Return: 0, -EINVAL for an option out of range, or -EBUSY while some
 * processor has its buffers set up.
 */
int sl_io_configure(const struct sl_io_opts *opts);

struct sl_io_stats {
	uint64_t ops;		/* one-shot requests queued */
	uint64_t submits;	/* io_uring_enter calls made by processors */
	uint64_t cancels;	/* cancel requests sent to the kernel */
	uint64_t timeouts;	/* requests ended by their deadline */
	uint64_t bufs_total;	/* receive buffers allocated */
	uint64_t bufs_in_use;	/* held by connections and readers now */
	uint64_t enobufs;	/* times a processor's buffer ring ran dry */
	uint64_t buf_grows;	/* times it got more buffers for that */
	uint64_t stalls;	/* receives that waited for a buffer back */
	uint64_t recv_rearms;	/* multishot receives armed again */
	uint64_t recv_bundles;	/* receives that filled several buffers */
};

/** sl_io_stats_get() - totals over all processors (approximate while live). */
void sl_io_stats_get(struct sl_io_stats *out);

#endif /* SLUICE_IO_IO_H */
