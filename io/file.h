/* SPDX-License-Identifier: MIT */
/*
 * Files over io_uring, and an append-only log with group commit.
 */
#ifndef SLUICE_IO_FILE_H
#define SLUICE_IO_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "io/io.h"

struct sl_context;

/* sl_file_open() - open(2) as a request; returns the descriptor. */
int sl_file_open(struct sl_context *ctx, const char *path, int flags,
		 mode_t mode);

/**
 * sl_file_read() - read up to @len bytes at @off (-1: the file position).
 * Return: bytes read (0 at the end), or a negative errno value.
 */
ssize_t sl_file_read(struct sl_context *ctx, int fd, void *buf, size_t len,
		     int64_t off);

/**
 * sl_file_write() - write all of @buf at @off (-1: the file position, which
 * with O_APPEND is the end).  Short writes are continued.
 */
ssize_t sl_file_write(struct sl_context *ctx, int fd, const void *buf,
		      size_t len, int64_t off);
ssize_t sl_file_writev(struct sl_context *ctx, int fd,
		       const struct iovec *iov, int n, int64_t off);

/* sl_file_sync() - fsync(2), or fdatasync(2) when @data_only. */
int sl_file_sync(struct sl_context *ctx, int fd, bool data_only);

/* sl_file_close() - close(2) as a request. */
int sl_file_close(int fd);

/* ---- the append log ---- */

struct sl_log;

struct sl_log_opts {
	/* fdatasync instead of fsync (default true: the log's size changes
	 * are covered by fdatasync, its times do not matter). */
	bool data_only;
	/* Caps on one batch (defaults 1024 records, 4 MiB). */
	unsigned max_batch_records;
	size_t max_batch_bytes;
};

struct sl_log_stats {
	uint64_t records;
	uint64_t batches;	/* = syncs */
	uint64_t bytes;
	uint64_t size;		/* the log's length in bytes */
	int error;		/* 0, or what failed it (sticky) */
};

/**
 * sl_log_open() - open (creating) an append-only log at @path.
 *
 * Appends are batched: while one batch is written and synced, the appends
 * that arrive queue up and go out together as the next batch, with one
 * write and one sync.  Every append of a batch returns when its sync has.
 */
int sl_log_open(struct sl_context *ctx, const char *path,
		const struct sl_log_opts *opts, struct sl_log **out);

/**
 * sl_log_append() - append @len bytes and wait until they are durable.
 * @ctx: checked before the record is queued: an ended context appends
 *	nothing and returns its error (-ECANCELED, -ETIMEDOUT).  Once queued,
 *	the record may already be in the kernel's hands, so the call waits
 *	for its batch whatever @ctx does, and reports what happened to it.
 * @offset: if not NULL, where the record starts in the file.
 *
 * Return: 0; the context's error (nothing appended); the error of the
 * write or sync of the record's batch; or,
 * once any write or sync of the log has failed, that error again for
 * every later append.  A failed sync is not retried: after one, the
 * kernel may have dropped the dirty pages, so the file's contents past the
 * last good sync are unknown and only reopening (and checking) the log can
 * say what survived.
 */
int sl_log_append(struct sl_context *ctx, struct sl_log *log,
		  const void *data, size_t len, uint64_t *offset);
int sl_log_appendv(struct sl_context *ctx, struct sl_log *log,
		   const struct iovec *iov, int n, uint64_t *offset);

void sl_log_stats_get(struct sl_log *log, struct sl_log_stats *out);

/* sl_log_close() - wait for pending appends, then close; returns the error. */
int sl_log_close(struct sl_log *log);

#endif /* SLUICE_IO_FILE_H */
