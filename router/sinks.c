/* SPDX-License-Identifier: MIT */
/*
 * Built-in sinks: null, callback, stdout, file and tcp.
 *
 * Order per key.  The fold queue never hands a key to two workers at once,
 * and a worker reports done only after its sink call returns, so a sink
 * keeps per-key order as long as a call returns only once its bytes are
 * where they are going: written to the file, or handed to the kernel on
 * the connection that key always uses.  Every sink here waits for that.
 *
 * Batching.  Workers of many keys reconcile at once.  The file and tcp
 * sinks let them share writes: the first worker to find no write in
 * flight sends everything the others have queued with it, in one request,
 * and hands each its result (group commit, as in io/log.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mimalloc.h>

#include "io/file.h"
#include "io/net.h"
#include "router/router_internal.h"

/* Encode an item's events (its newest, or all for KEEP_ALL) into @buf. */
static int
sink_encode(const struct sl_foldq_item *it, bool frames, char **buf,
	    size_t *len, size_t *cap)
{
	for (unsigned i = 0; i < it->nevents; i++) {
		const struct sl_event *e = it->events[i];
		size_t room = *cap - *len, n;
		/* No buffer yet: the encoders only measure with no room, and
		 * NULL + 0 is undefined behaviour, so do not form it. */
		char *at = *buf ? *buf + *len : NULL;

		n = frames ? sl_frame_encode_event(e, at, room)
			   : sl_line_encode(e, at, room);
		if (n > room) {
			size_t ncap = *cap ? *cap : 4096;
			char *nb;

			while (ncap - *len < n)
				ncap *= 2;
			nb = mi_realloc(*buf, ncap);
			if (!nb)
				return -ENOMEM;
			*buf = nb;
			*cap = ncap;
			n = frames ? sl_frame_encode_event(e, *buf + *len,
							   ncap - *len)
				   : sl_line_encode(e, *buf + *len,
						    ncap - *len);
		}
		*len += n;
	}
	return 0;
}

/* ---- null ---- */

static int
null_reconcile(void *state, const struct sl_foldq_item *it,
	       struct sl_context *ctx)
{
	(void)state;
	(void)it;
	(void)ctx;
	return 0;
}

static const struct sluice_sink_ops null_ops = {
	.type = "null",
	.reconcile = null_reconcile,
};

struct sluice_sink *
sluice_sink_null(void)
{
	return sluice_sink_new(&null_ops, NULL);
}

/* ---- callback ---- */

struct callback_sink {
	int (*fn)(void *arg, const struct sl_foldq_item *item,
		  struct sl_context *ctx);
	void *arg;
};

static int
callback_reconcile(void *state, const struct sl_foldq_item *it,
		   struct sl_context *ctx)
{
	struct callback_sink *cb = state;

	return cb->fn(cb->arg, it, ctx);
}

static void
callback_close(void *state)
{
	mi_free(state);
}

static const struct sluice_sink_ops callback_ops = {
	.type = "callback",
	.reconcile = callback_reconcile,
	.close = callback_close,
};

struct sluice_sink *
sluice_sink_callback(int (*fn)(void *arg, const struct sl_foldq_item *item,
			       struct sl_context *ctx),
		     void *arg)
{
	struct callback_sink *cb = mi_zalloc(sizeof(*cb));
	struct sluice_sink *s;

	if (!cb)
		return NULL;
	cb->fn = fn;
	cb->arg = arg;
	s = sluice_sink_new(&callback_ops, cb);
	if (!s)
		mi_free(cb);
	return s;
}

/* ---- group writes, shared by the fd-based sinks ---- */

/*
 * The batch being gathered: the bytes, and the waiters whose bytes they
 * are.  The leader takes both, writes, and hands each waiter the result.
 */
struct batch_req {
	struct batch_req *next;
	int result;
	bool done;
	struct sl_cond cv;
};

struct group {
	struct sl_mutex mu;
	char *buf;
	size_t len, cap;
	struct batch_req *head, *tail;
	bool busy;		/* a batch is being written */
};

static void
group_init(struct group *g)
{
	memset(g, 0, sizeof(*g));
	sl_mutex_init(&g->mu);
}

static void
group_fini(struct group *g)
{
	mi_free(g->buf);
}

/*
 * Append @it's encoding and wait until the batch it joined is written by
 * @write, which the batch's leader calls without the mutex, with its own
 * @ctx: a write that may wait on a peer must return when that ends.
 * Every reconcile of a route gets the same context, so the leader's ends
 * when its followers' would.
 */
static int
group_submit(struct group *g, const struct sl_foldq_item *it, bool frames,
	     int (*write)(void *arg, struct sl_context *ctx, const char *buf,
			  size_t len),
	     void *arg, struct sl_context *ctx)
{
	struct batch_req req = {0};
	int r;

	sl_cond_init(&req.cv);
	sl_mutex_lock(&g->mu);
	r = sink_encode(it, frames, &g->buf, &g->len, &g->cap);
	if (r) {
		sl_mutex_unlock(&g->mu);
		return r;
	}
	if (g->tail)
		g->tail->next = &req;
	else
		g->head = &req;
	g->tail = &req;

	for (;;) {
		struct batch_req *batch, *q, *next;
		char *buf;
		size_t len;

		while (!req.done && g->busy)
			sl_cond_wait(&req.cv, &g->mu);
		if (req.done)
			break;

		/* Lead: take the batch, write it unlocked. */
		g->busy = true;
		batch = g->head;
		g->head = g->tail = NULL;
		buf = g->buf;
		len = g->len;
		g->buf = NULL;
		g->len = g->cap = 0;
		sl_mutex_unlock(&g->mu);

		r = write(arg, ctx, buf, len);
		mi_free(buf);

		sl_mutex_lock(&g->mu);
		for (q = batch; q; q = next) {
			next = q->next;
			q->result = r;
			q->done = true;
			if (q != &req)
				sl_cond_signal(&q->cv);
		}
		g->busy = false;
		/* The first waiter of the next batch leads it. */
		if (g->head)
			sl_cond_signal(&g->head->cv);
	}
	r = req.result;
	sl_mutex_unlock(&g->mu);
	return r;
}

/* ---- stdout ---- */

struct fd_sink {
	struct group g;
	int fd;
};

static int
fd_write(void *arg, struct sl_context *ctx, const char *buf, size_t len)
{
	struct fd_sink *s = arg;
	ssize_t n = sl_file_write(NULL, s->fd, buf, len, -1);

	(void)ctx;
	return n < 0 ? (int)n : 0;
}

static int
stdout_reconcile(void *state, const struct sl_foldq_item *it,
		 struct sl_context *ctx)
{
	return group_submit(state, it, false, fd_write, state, ctx);
}

static void
stdout_close(void *state)
{
	struct fd_sink *s = state;

	group_fini(&s->g);
	mi_free(s);
}

static const struct sluice_sink_ops stdout_ops = {
	.type = "stdout",
	.reconcile = stdout_reconcile,
	.close = stdout_close,
};

struct sluice_sink *
sluice_sink_stdout(void)
{
	struct fd_sink *s = mi_zalloc(sizeof(*s));
	struct sluice_sink *sink;

	if (!s)
		return NULL;
	group_init(&s->g);
	s->fd = STDOUT_FILENO;
	sink = sluice_sink_new(&stdout_ops, s);
	if (!sink)
		mi_free(s);
	return sink;
}

/* ---- file ---- */

struct file_sink {
	struct group g;
	struct sluice_file_sink_opts o;
	char *path;
	int fd;
	uint64_t size;
	int error;		/* sticky after a failed sync */
};

static int
file_open(struct file_sink *s)
{
	struct stat st;
	int fd = sl_file_open(NULL, s->path, O_WRONLY | O_CREAT | O_APPEND,
			      0644);

	if (fd < 0)
		return fd;
	if (fstat(fd, &st)) {
		int r = -errno;

		sl_file_close(fd);
		return r;
	}
	s->fd = fd;
	s->size = (uint64_t)st.st_size;
	return 0;
}

/* Move path.N to path.N+1 (up to 9 kept), path to path.1, start anew. */
static int
file_rotate(struct file_sink *s)
{
	char from[4096], to[4096];
	size_t n = strlen(s->path);

	if (n + 4 > sizeof(from))
		return -ENAMETOOLONG;
	sl_file_close(s->fd);
	s->fd = -1;
	for (int i = 8; i >= 1; i--) {
		snprintf(from, sizeof(from), "%s.%d", s->path, i);
		snprintf(to, sizeof(to), "%s.%d", s->path, i + 1);
		rename(from, to);
	}
	snprintf(to, sizeof(to), "%s.1", s->path);
	if (rename(s->path, to) && errno != ENOENT)
		return -errno;
	return file_open(s);
}

/* Runs as the batch's leader: one write, one sync, rotation.  Local
 * file I/O ends on its own, so @ctx is not needed. */
static int
file_write(void *arg, struct sl_context *ctx, const char *buf, size_t len)
{
	struct file_sink *s = arg;
	ssize_t n;
	int r;

	(void)ctx;
	if (s->error)
		return s->error;
	if (s->fd < 0 && (r = file_open(s)))
		return r;
	n = sl_file_write(NULL, s->fd, buf, len, -1);
	if (n < 0)
		return (int)n;
	s->size += len;
	if (s->o.sync) {
		r = sl_file_sync(NULL, s->fd, true);
		if (r) {
			/* As in io/log.c: no retrying a failed sync. */
			s->error = r;
			sl__router_log("error",
				       "msg=\"file sink failed\" path=%s "
				       "err=\"%s\"",
				       s->path, sl_strerror(r));
			return r;
		}
	}
	if (s->o.rotate_bytes && s->size >= s->o.rotate_bytes) {
		r = file_rotate(s);
		if (r)
			sl__router_log("error",
				       "msg=\"file sink rotation failed\" "
				       "path=%s err=\"%s\"",
				       s->path, sl_strerror(r));
	}
	return 0;
}

static int
file_reconcile(void *state, const struct sl_foldq_item *it,
	       struct sl_context *ctx)
{
	struct file_sink *s = state;

	return group_submit(&s->g, it, s->o.frames, file_write, s, ctx);
}

static void
file_close(void *state)
{
	struct file_sink *s = state;

	if (s->fd >= 0)
		sl_file_close(s->fd);
	group_fini(&s->g);
	mi_free(s->path);
	mi_free(s);
}

static const struct sluice_sink_ops file_ops = {
	.type = "file",
	.reconcile = file_reconcile,
	.close = file_close,
};

struct sluice_sink *
sluice_sink_file(const struct sluice_file_sink_opts *o)
{
	struct file_sink *s;
	struct sluice_sink *sink;
	int r;

	if (!o || !o->path) {
		errno = EINVAL;
		return NULL;
	}
	s = mi_zalloc(sizeof(*s));
	if (!s)
		return NULL;
	group_init(&s->g);
	s->o = *o;
	s->path = mi_strdup(o->path);
	s->fd = -1;
	r = s->path ? file_open(s) : -ENOMEM;
	if (r) {
		mi_free(s->path);
		mi_free(s);
		errno = -r;
		return NULL;
	}
	sink = sluice_sink_new(&file_ops, s);
	if (!sink)
		file_close(s);
	return sink;
}

/* ---- tcp ---- */

struct tcp_conn {
	struct group g;
	struct tcp_sink *sink;
	struct sl_conn *c;
	uint64_t backoff_ns;
	uint64_t next_try;	/* no connect attempt before this */
};

struct tcp_sink {
	struct sluice_tcp_sink_opts o;
	char *addr;
	struct tcp_conn *conns;
	_Atomic uint64_t connects, connect_failures, timeouts;
};

/*
 * Runs as the batch's leader, without the group's mutex.  @ctx (the
 * route's, cancelled when a drain runs out of time) cuts short a connect
 * or a send that waits on a peer that does not read, which the write
 * timeout alone would let wait far longer.
 */
static int
tcp_write(void *arg, struct sl_context *ctx, const char *buf, size_t len)
{
	struct tcp_conn *tc = arg;
	struct tcp_sink *s = tc->sink;
	uint64_t now = sl_now_ns();
	ssize_t n;

	if (!tc->c) {
		struct sl_context *cctx = NULL;
		int r;

		if (now < tc->next_try)
			return -ECONNREFUSED;
		if (s->o.timeout_ns)
			sl_context_with_timeout(ctx ? ctx
						    : sl_context_background(),
						s->o.timeout_ns, &cctx);
		atomic_fetch_add(&s->connects, 1);
		r = sl_connect(cctx ? cctx : ctx, s->addr, NULL, &tc->c);
		if (cctx)
			sl_context_release(cctx);
		if (r) {
			tc->c = NULL;
			atomic_fetch_add(&s->connect_failures, 1);
			tc->backoff_ns = tc->backoff_ns
						 ? tc->backoff_ns * 2
						 : s->o.backoff_min_ns;
			if (tc->backoff_ns > s->o.backoff_max_ns)
				tc->backoff_ns = s->o.backoff_max_ns;
			tc->next_try = now + tc->backoff_ns;
			sl__router_log("warn",
				       "msg=\"tcp sink cannot connect\" "
				       "addr=%s err=\"%s\" retry_in_ms=%llu",
				       s->addr, sl_strerror(r),
				       (unsigned long long)(tc->backoff_ns /
							    SL_NSEC_PER_MSEC));
			return r;
		}
		tc->backoff_ns = 0;
	}
	sl_conn_set_deadline(tc->c, SL_NO_DEADLINE,
			     s->o.timeout_ns ? now + s->o.timeout_ns
					     : SL_NO_DEADLINE);
	n = sl_conn_send(ctx, tc->c, buf, len);
	if (n >= 0)
		return 0;
	/*
	 * Broken, timed out or cancelled: the peer may have some of these
	 * bytes or none.  Start afresh on a new connection; the items are
	 * retried, so a receiver must take repeats (the latest state
	 * again).
	 */
	if (n == -ETIMEDOUT)
		atomic_fetch_add(&s->timeouts, 1);
	sl_conn_close(tc->c);
	tc->c = NULL;
	return (int)n;
}

static int
tcp_reconcile(void *state, const struct sl_foldq_item *it,
	      struct sl_context *ctx)
{
	struct tcp_sink *s = state;
	struct tcp_conn *tc = &s->conns[it->hash % s->o.conns];

	return group_submit(&tc->g, it, s->o.frames, tcp_write, tc, ctx);
}

static void
tcp_close(void *state)
{
	struct tcp_sink *s = state;

	for (unsigned i = 0; i < s->o.conns; i++) {
		if (s->conns[i].c)
			sl_conn_close(s->conns[i].c);
		group_fini(&s->conns[i].g);
	}
	mi_free(s->conns);
	mi_free(s->addr);
	mi_free(s);
}

static const struct sluice_sink_ops tcp_ops = {
	.type = "tcp",
	.reconcile = tcp_reconcile,
	.close = tcp_close,
};

struct sluice_sink *
sluice_sink_tcp(const struct sluice_tcp_sink_opts *o)
{
	struct tcp_sink *s;
	struct sluice_sink *sink;

	if (!o || !o->addr) {
		errno = EINVAL;
		return NULL;
	}
	s = mi_zalloc(sizeof(*s));
	if (!s)
		return NULL;
	s->o = *o;
	if (!s->o.conns)
		s->o.conns = 1;
	if (!s->o.backoff_min_ns)
		s->o.backoff_min_ns = 100 * SL_NSEC_PER_MSEC;
	if (!s->o.backoff_max_ns)
		s->o.backoff_max_ns = 10 * SL_NSEC_PER_SEC;
	if (s->o.timeout_ns == 0)
		s->o.timeout_ns = 5 * SL_NSEC_PER_SEC;
	s->addr = mi_strdup(o->addr);
	s->conns = mi_calloc(s->o.conns, sizeof(*s->conns));
	if (!s->addr || !s->conns) {
		mi_free(s->addr);
		mi_free(s->conns);
		mi_free(s);
		return NULL;
	}
	for (unsigned i = 0; i < s->o.conns; i++) {
		group_init(&s->conns[i].g);
		s->conns[i].sink = s;
	}
	sink = sluice_sink_new(&tcp_ops, s);
	if (!sink)
		tcp_close(s);
	return sink;
}
