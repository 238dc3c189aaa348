/* SPDX-License-Identifier: MIT */
/*
 * Buffered reading and writing on a connection.
 *
 * The reader hands out views into the receive buffers the kernel filled,
 * so a line or frame that lies within one buffer is never copied; one that
 * spans buffers is copied once, into the reader's own buffer.  The writer
 * copies small writes once into its buffer and sends large ones straight
 * from the caller's memory.
 */
#ifndef SLUICE_IO_BUFIO_H
#define SLUICE_IO_BUFIO_H

#include <stddef.h>
#include <stdint.h>

#include "core/sync.h"
#include "io/net.h"

struct sl_context;

struct sl_reader {
	struct sl_conn *conn;
	size_t max;		/* longest line or frame accepted */
	/* The buffer under the last peek, and what of it was handed out. */
	struct sl_iobuf cur;
	size_t handed;
	/* Bytes gathered across buffers. */
	char *acc;
	size_t acc_len, acc_cap;
};

/* sl_reader_init() - read @conn; lines and exact reads longer than @max fail. */
void sl_reader_init(struct sl_reader *r, struct sl_conn *conn, size_t max);
void sl_reader_fini(struct sl_reader *r);

/**
 * sl_reader_line() - the bytes up to and including the next @delim.
 * @out: set to a view valid until the next call on @r.
 *
 * Return: the length (> 0); 0 at the end of the stream with nothing
 * pending; -EMSGSIZE when no @delim came within @max bytes (the reader
 * cannot go on: the stream position is lost); -EPIPE when the stream
 * ended inside a line; or the connection's error.
 */
ssize_t sl_reader_line(struct sl_context *ctx, struct sl_reader *r, char delim,
		       const char **out);

/**
 * sl_reader_try_line() - sl_reader_line() for a line already received: the
 * next line if it lies whole in the buffer at hand, else 0 with nothing
 * consumed, so a later sl_reader_line() starts at the same place.  It
 * never parks, so a caller can gather lines into a batch and act on the
 * batch as soon as the next line would mean waiting.  A line longer than
 * @max also gives 0; sl_reader_line() then reports it.
 */
ssize_t sl_reader_try_line(struct sl_reader *r, char delim, const char **out);

/** sl_reader_exact() - exactly @n bytes (@n <= max), as for sl_reader_line(). */
ssize_t sl_reader_exact(struct sl_context *ctx, struct sl_reader *r, size_t n,
			const char **out);

struct sl_writer {
	struct sl_conn *conn;
	struct sl_mutex mu;
	char *buf;
	size_t len, cap;
	int err;		/* sticky: the first send error */
	uint64_t flush_after_ns;
	uint64_t first_ns;	/* when the oldest buffered byte came */
	struct sl_cond kick;
	struct sl_task *flusher;
	struct sl_context *stop;
	int closing;
};

/**
 * sl_writer_init() - a writer of @cap bytes on @conn.
 * @flush_after_ns: when not 0, a task flushes bytes that have waited this
 *	long, so a quiet writer's last bytes do not sit in the buffer.
 */
int sl_writer_init(struct sl_writer *w, struct sl_conn *conn, size_t cap,
		   uint64_t flush_after_ns);

/* sl_writer_write() - buffer @len bytes; sends when the buffer fills. */
int sl_writer_write(struct sl_context *ctx, struct sl_writer *w,
		    const void *data, size_t len);

/* sl_writer_flush() - send what is buffered. */
int sl_writer_flush(struct sl_context *ctx, struct sl_writer *w);

/* sl_writer_fini() - flush, stop the flusher, free; returns the error. */
int sl_writer_fini(struct sl_writer *w);

#endif /* SLUICE_IO_BUFIO_H */
