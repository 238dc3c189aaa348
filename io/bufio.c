/* SPDX-License-Identifier: MIT */
/*
 * Buffered reader and writer on a connection.
 */
#include <errno.h>
#include <string.h>

#include <mimalloc.h>

#include "core/context.h"
#include "core/task.h"
#include "io/bufio.h"

void
sl_reader_init(struct sl_reader *r, struct sl_conn *conn, size_t max)
{
	memset(r, 0, sizeof(*r));
	r->conn = conn;
	r->max = max ? max : 64 * 1024;
}

void
sl_reader_fini(struct sl_reader *r)
{
	if (r->handed)
		sl_conn_consume(r->conn, r->handed);
	r->handed = 0;
	mi_free(r->acc);
	r->acc = NULL;
}

/* What the last call handed out is no longer the caller's. */
static void
reader_settle(struct sl_reader *r)
{
	if (r->handed) {
		sl_conn_consume(r->conn, r->handed);
		r->handed = 0;
	}
	r->acc_len = 0;
}

static int
reader_gather(struct sl_reader *r, const char *p, size_t n)
{
	if (r->acc_len + n > r->acc_cap) {
		size_t cap = r->acc_cap ? r->acc_cap : 256;
		char *acc;

		while (cap < r->acc_len + n)
			cap *= 2;
		if (cap > r->max)
			cap = r->max;
		acc = mi_realloc(r->acc, cap);
		if (!acc)
			return -ENOMEM;
		r->acc = acc;
		r->acc_cap = cap;
	}
	memcpy(r->acc + r->acc_len, p, n);
	r->acc_len += n;
	sl_conn_consume(r->conn, n);
	return 0;
}

/*
 * The common loop of both reads: @want returns how many bytes of the view
 * complete the item, given @have bytes gathered so far (0: the whole view
 * belongs to the item, and more is needed).
 */
static ssize_t
reader_read(struct sl_context *ctx, struct sl_reader *r,
	    size_t (*want)(const char *p, size_t n, size_t have, void *arg),
	    void *arg, const char **out)
{
	reader_settle(r);
	for (;;) {
		struct sl_iobuf b;
		bool complete;
		size_t n;
		int rc;

		rc = sl_conn_peek(ctx, r->conn, &b);
		if (rc < 0)
			return rc;
		if (rc == 0)
			return r->acc_len ? -EPIPE : 0;

		n = want(b.data, b.len, r->acc_len, arg);
		if (n && !r->acc_len) {
			/* Within one buffer: hand out a view, no copy. */
			if (n > r->max)
				return -EMSGSIZE;
			*out = b.data;
			r->handed = n;
			return (ssize_t)n;
		}
		complete = n != 0;
		if (!complete)
			n = b.len;
		if (r->acc_len + n > r->max)
			return -EMSGSIZE;
		rc = reader_gather(r, b.data, n);
		if (rc)
			return rc;
		if (complete) {
			*out = r->acc;
			return (ssize_t)r->acc_len;
		}
	}
}

static size_t
want_delim(const char *p, size_t n, size_t have, void *arg)
{
	const char *d;

	(void)have;
	d = memchr(p, *(const char *)arg, n);
	return d ? (size_t)(d - p) + 1 : 0;
}

ssize_t
sl_reader_line(struct sl_context *ctx, struct sl_reader *r, char delim,
	       const char **out)
{
	return reader_read(ctx, r, want_delim, &delim, out);
}

ssize_t
sl_reader_try_line(struct sl_reader *r, char delim, const char **out)
{
	struct sl_iobuf b;
	const char *end;
	size_t n;

	/* The view starts at the line handed out last, not yet consumed. */
	if (sl_conn_try_peek(r->conn, &b) <= 0 || b.len <= r->handed)
		return 0;
	end = memchr(b.data + r->handed, delim, b.len - r->handed);
	if (!end)
		return 0;
	n = (size_t)(end - b.data) + 1 - r->handed;
	if (n > r->max)
		return 0;

	/* Bytes remain past the handed line, so consuming it keeps the
	 * buffer, and the view, where they are. */
	reader_settle(r);
	*out = end + 1 - n;
	r->handed = n;
	return (ssize_t)n;
}

static size_t
want_exact(const char *p, size_t n, size_t have, void *arg)
{
	size_t need = *(const size_t *)arg - have;

	(void)p;
	return n >= need ? need : 0;
}

ssize_t
sl_reader_exact(struct sl_context *ctx, struct sl_reader *r, size_t n,
		const char **out)
{
	if (n == 0)
		return -EINVAL;
	if (n > r->max)
		return -EMSGSIZE;
	return reader_read(ctx, r, want_exact, &n, out);
}

/* ---- the writer ---- */

static int
writer_flush_locked(struct sl_context *ctx, struct sl_writer *w)
{
	ssize_t r;

	if (w->err)
		return w->err;
	if (!w->len)
		return 0;
	r = sl_conn_send(ctx, w->conn, w->buf, w->len);
	w->len = 0;
	if (r < 0)
		w->err = (int)r;
	return w->err;
}

static void
writer_flusher(void *arg)
{
	struct sl_writer *w = arg;

	sl_mutex_lock(&w->mu);
	while (!w->closing) {
		uint64_t due, now;

		if (!w->len) {
			sl_cond_wait(&w->kick, &w->mu);
			continue;
		}
		due = w->first_ns + w->flush_after_ns;
		now = sl_now_ns();
		if (now < due) {
			sl_mutex_unlock(&w->mu);
			sl_task_sleep_ctx(w->stop, due - now);
			sl_mutex_lock(&w->mu);
			continue;
		}
		writer_flush_locked(NULL, w);
	}
	sl_mutex_unlock(&w->mu);
}

int
sl_writer_init(struct sl_writer *w, struct sl_conn *conn, size_t cap,
	       uint64_t flush_after_ns)
{
	int r;

	memset(w, 0, sizeof(*w));
	w->conn = conn;
	w->cap = cap ? cap : 64 * 1024;
	w->buf = mi_malloc(w->cap);
	if (!w->buf)
		return -ENOMEM;
	sl_mutex_init(&w->mu);
	sl_cond_init(&w->kick);
	w->flush_after_ns = flush_after_ns;
	if (!flush_after_ns)
		return 0;
	r = sl_context_with_cancel(sl_context_background(), &w->stop);
	if (!r)
		r = sl_task_spawn(writer_flusher, w,
				  &(struct sl_task_opts){.name = "flusher",
							 .proc = -1},
				  &w->flusher);
	if (r) {
		if (w->stop)
			sl_context_release(w->stop);
		mi_free(w->buf);
		w->buf = NULL;
	}
	return r;
}

int
sl_writer_write(struct sl_context *ctx, struct sl_writer *w, const void *data,
		size_t len)
{
	int r = 0;

	sl_mutex_lock(&w->mu);
	if (w->err) {
		r = w->err;
		goto out;
	}
	if (len > w->cap - w->len) {
		r = writer_flush_locked(ctx, w);
		if (r)
			goto out;
	}
	if (len >= w->cap) {
		/* Too big to buffer: send it from the caller's memory. */
		ssize_t s = sl_conn_send(ctx, w->conn, data, len);

		if (s < 0)
			r = w->err = (int)s;
		goto out;
	}
	if (!w->len && w->flush_after_ns) {
		w->first_ns = sl_now_ns();
		sl_cond_signal(&w->kick);
	}
	memcpy(w->buf + w->len, data, len);
	w->len += len;
out:
	sl_mutex_unlock(&w->mu);
	return r;
}

int
sl_writer_flush(struct sl_context *ctx, struct sl_writer *w)
{
	int r;

	sl_mutex_lock(&w->mu);
	r = writer_flush_locked(ctx, w);
	sl_mutex_unlock(&w->mu);
	return r;
}

int
sl_writer_fini(struct sl_writer *w)
{
	int r;

	sl_mutex_lock(&w->mu);
	w->closing = 1;
	sl_cond_signal(&w->kick);
	sl_mutex_unlock(&w->mu);
	if (w->flusher) {
		sl_context_cancel(w->stop);
		sl_task_join(w->flusher);
		sl_context_release(w->stop);
		w->flusher = NULL;
	}
	sl_mutex_lock(&w->mu);
	r = writer_flush_locked(NULL, w);
	sl_mutex_unlock(&w->mu);
	mi_free(w->buf);
	w->buf = NULL;
	return r;
}
