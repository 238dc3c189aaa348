/* SPDX-License-Identifier: MIT */
/*
 * The append log: group commit.
 *
 * An append queues its record and waits.  The first append to find no
 * batch in flight leads: it takes every queued record (up to the batch
 * caps), writes them with one writev at the end of the file, syncs once,
 * and hands each record's waiter the result.  Appends that arrive while it
 * does so queue for the next batch, whose first waiter the leader wakes as
 * the new leader.  Under load a batch therefore holds everything that came
 * during one write and sync, and the cost of a sync is shared by all.
 *
 * A failed write or sync fails the log for good.  After a failed fsync
 * Linux may already have dropped the dirty pages (and cleared the error),
 * so a second fsync could succeed without the data being on disk; the
 * only honest answer is to report every later append as failed.
 */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include <mimalloc.h>

#include "core/context.h"
#include "core/sync.h"
#include "io/file.h"
#include "io/io_internal.h"

struct log_req {
	struct log_req *next;
	const struct iovec *iov;
	int iovcnt;
	size_t len;
	uint64_t offset;
	int result;
	bool done;
	struct sl_cond cv;
};

struct sl_log {
	int fd;
	struct sl_log_opts opts;
	struct sl_mutex mu;
	struct log_req *head, *tail;	/* queued, not yet in a batch */
	bool busy;			/* a batch is in flight */
	int error;
	uint64_t size;
	bool closing;
	struct sl_cond idle;
	struct {
		uint64_t records, batches, bytes;
	} st;
};

int
sl_log_open(struct sl_context *ctx, const char *path,
	    const struct sl_log_opts *opts, struct sl_log **out)
{
	struct sl_log *log;
	struct stat st;
	int fd;

	fd = sl_file_open(ctx, path, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st)) {
		int r = -errno;

		sl_file_close(fd);
		return r;
	}
	log = mi_zalloc(sizeof(*log));
	if (!log) {
		sl_file_close(fd);
		return -ENOMEM;
	}
	log->fd = fd;
	log->size = (uint64_t)st.st_size;
	log->opts.data_only = true;
	log->opts.max_batch_records = 1024;
	log->opts.max_batch_bytes = 4u << 20;
	if (opts) {
		log->opts.data_only = opts->data_only;
		if (opts->max_batch_records)
			log->opts.max_batch_records = opts->max_batch_records;
		if (opts->max_batch_bytes)
			log->opts.max_batch_bytes = opts->max_batch_bytes;
	}
	if (log->opts.max_batch_records > IOV_MAX / 4)
		log->opts.max_batch_records = IOV_MAX / 4;
	sl_mutex_init(&log->mu);
	sl_cond_init(&log->idle);
	*out = log;
	return 0;
}

/*
 * The error of a context that has ended: its own once it has one, or
 * -ETIMEDOUT for a deadline already past whose timer has not fired yet.
 */
static int
log_ctx_ended(const struct sl_context *ctx)
{
	int err = sl_context_err(ctx);

	if (err)
		return err;
	return sl_context_deadline(ctx) <= sl_now_ns() ? -ETIMEDOUT : 0;
}

/* Take the next batch off the queue (mutex held). */
static struct log_req *
log_take_batch(struct sl_log *log, unsigned *nrec, int *niov)
{
	struct log_req *first = log->head, *last = NULL, *r;
	size_t bytes = 0;
	unsigned n = 0;
	int iov = 0;

	for (r = first; r; r = r->next) {
		if (n && (n + 1 > log->opts.max_batch_records ||
			  bytes + r->len > log->opts.max_batch_bytes ||
			  iov + r->iovcnt > IOV_MAX))
			break;
		r->offset = log->size + bytes;
		bytes += r->len;
		iov += r->iovcnt;
		n++;
		last = r;
	}
	log->head = last->next;
	if (!log->head)
		log->tail = NULL;
	last->next = NULL;
	*nrec = n;
	*niov = iov;
	return first;
}

/* Write and sync one batch, without the mutex.  Returns the result. */
static int
log_commit(struct sl_log *log, struct log_req *batch, int niov,
	   uint64_t offset)
{
	/* Zeroed because gcc cannot see that the loop below fills all niov
	 * entries; one memset is nothing beside the fsync. */
	struct iovec local[64] = {{0}};
	struct iovec *v = local;
	ssize_t w;
	int i = 0, r;

	if (niov > (int)SL_ARRAY_SIZE(local)) {
		v = mi_malloc((size_t)niov * sizeof(*v));
		if (!v)
			return -ENOMEM;
	}
	for (struct log_req *q = batch; q; q = q->next)
		for (int k = 0; k < q->iovcnt; k++)
			v[i++] = q->iov[k];

	/* Writing at the known end (not relying on O_APPEND's position)
	 * keeps every record's offset exact. */
	w = sl_file_writev(NULL, log->fd, v, niov, (int64_t)offset);
	if (v != local)
		mi_free(v);
	if (w < 0)
		return (int)w;
	r = sl_file_sync(NULL, log->fd, log->opts.data_only);
	return r < 0 ? r : 0;
}

int
sl_log_appendv(struct sl_context *ctx, struct sl_log *log,
	       const struct iovec *iov, int n, uint64_t *offset)
{
	struct log_req req;
	int r;

	if (n <= 0 || n > IOV_MAX)
		return -EINVAL;
	memset(&req, 0, sizeof(req));
	req.iov = iov;
	req.iovcnt = n;
	for (int i = 0; i < n; i++)
		req.len += iov[i].iov_len;
	sl_cond_init(&req.cv);

	/* A context that has already ended appends nothing, whether or not
	 * the mutex is free (taking a free one does not look at it). */
	if (ctx && (r = log_ctx_ended(ctx)))
		return r;
	r = sl_mutex_lock_ctx(ctx, &log->mu);
	if (r)
		return r;
	if (log->error || log->closing) {
		r = log->error ? log->error : -EBADF;
		sl_mutex_unlock(&log->mu);
		return r;
	}
	if (log->tail)
		log->tail->next = &req;
	else
		log->head = &req;
	log->tail = &req;

	/*
	 * Wait until our record is done, or no batch is in flight and we
	 * can lead the next one.  The context is not honoured here: once
	 * queued, the record may already be in the kernel's hands, so the
	 * caller must learn its fate.
	 */
	for (;;) {
		struct log_req *batch, *q, *next;
		unsigned nrec;
		int niov, res;
		uint64_t start;

		while (!req.done && log->busy)
			sl_cond_wait(&req.cv, &log->mu);
		if (req.done)
			break;

		log->busy = true;
		batch = log_take_batch(log, &nrec, &niov);
		start = log->size;
		res = log->error;
		sl_mutex_unlock(&log->mu);

		if (!res)
			res = log_commit(log, batch, niov, start);

		sl_mutex_lock(&log->mu);
		if (res && !log->error) {
			log->error = res;
			sl__io_log("error",
				   "msg=\"append log failed; it takes no "
				   "more appends\" err=\"%s\"",
				   sl_strerror(res));
		}
		for (q = batch; q; q = next) {
			next = q->next;
			q->result = res;
			q->done = true;
			if (!res) {
				log->size += q->len;
				log->st.bytes += q->len;
			}
			log->st.records++;
			if (q != &req)
				sl_cond_signal(&q->cv);
		}
		log->st.batches++;
		log->busy = false;
		/* The first waiter of the next batch leads it. */
		if (log->head)
			sl_cond_signal(&log->head->cv);
		else
			sl_cond_broadcast(&log->idle);
	}
	r = req.result;
	if (!r && offset)
		*offset = req.offset;
	sl_mutex_unlock(&log->mu);
	return r;
}

int
sl_log_append(struct sl_context *ctx, struct sl_log *log, const void *data,
	      size_t len, uint64_t *offset)
{
	struct iovec iov = {.iov_base = (void *)(uintptr_t)data, .iov_len = len};

	return sl_log_appendv(ctx, log, &iov, 1, offset);
}

void
sl_log_stats_get(struct sl_log *log, struct sl_log_stats *out)
{
	sl_mutex_lock(&log->mu);
	out->records = log->st.records;
	out->batches = log->st.batches;
	out->bytes = log->st.bytes;
	out->size = log->size;
	out->error = log->error;
	sl_mutex_unlock(&log->mu);
}

int
sl_log_close(struct sl_log *log)
{
	int r;

	if (!log)
		return 0;
	sl_mutex_lock(&log->mu);
	log->closing = true;
	while (log->busy || log->head)
		sl_cond_wait(&log->idle, &log->mu);
	r = log->error;
	sl_mutex_unlock(&log->mu);
	sl_file_close(log->fd);
	mi_free(log);
	return r;
}
