/* SPDX-License-Identifier: MIT */
/*
 * Stream connections (TCP and Unix): connect, receive, send, shut down,
 * close.
 */
#include <errno.h>
#include <limits.h>
#include <netinet/tcp.h>
#include <string.h>
#include <unistd.h>

#include <mimalloc.h>

#include "core/context.h"
#include "core/task.h"
#include "io/conn_internal.h"

void
sl_sock_opts_default(struct sl_sock_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->nodelay = true;
	o->max_buffered = 256 * 1024;
}

int
sl__sock_apply(int fd, int family, const struct sl_sock_opts *o)
{
	int one = 1;

	if (family != AF_UNIX && o->nodelay &&
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
		return -errno;
	if (family != AF_UNIX && o->keepalive_s > 0) {
		int idle = o->keepalive_s;

		if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)) ||
		    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle,
			       sizeof(idle)))
			return -errno;
	}
	if (o->sndbuf > 0 &&
	    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &o->sndbuf, sizeof(int)))
		return -errno;
	if (o->rcvbuf > 0 &&
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &o->rcvbuf, sizeof(int)))
		return -errno;
	return 0;
}

/* The last hold on the connection is gone (sl__rx_release). */
static void
conn_free(struct sl__rx *rx)
{
	mi_free(SL_CONTAINER_OF(rx, struct sl_conn, rx));
}

struct sl_conn *
sl__conn_new(int fd, int family, const struct sl_sock_opts *o)
{
	struct sl_conn *c = mi_zalloc(sizeof(*c));

	if (!c)
		return NULL;
	c->fd = fd;
	c->family = family;
	c->rdeadline = SL_NO_DEADLINE;
	c->wdeadline = SL_NO_DEADLINE;
	sl__rx_init(&c->rx, fd, false, o->max_buffered, 0, conn_free);
	return c;
}

int
sl_connect_addr(struct sl_context *ctx, const struct sl_addr *addr,
		const struct sl_sock_opts *opts, struct sl_conn **out)
{
	struct sl_sock_opts defaults;
	struct sl__io_op op;
	struct io_uring_sqe *sqe;
	struct sl_conn *c;
	int fd, r;

	if (!opts) {
		sl_sock_opts_default(&defaults);
		opts = &defaults;
	}
	fd = socket(addr->u.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	r = sl__sock_apply(fd, addr->u.sa.sa_family, opts);
	if (r)
		goto fail;

	sqe = sl__io_begin(&op, ctx, SL_NO_DEADLINE, "connect", &r);
	if (!sqe)
		goto fail;
	io_uring_prep_connect(sqe, fd, &addr->u.sa, addr->len);
	r = sl__io_run(&op, sqe);
	if (r < 0)
		goto fail;

	c = sl__conn_new(fd, addr->u.sa.sa_family, opts);
	if (!c) {
		r = -ENOMEM;
		goto fail;
	}
	c->peer = *addr;
	c->have_peer = true;
	*out = c;
	return 0;
fail:
	close(fd);
	return r;
}

int
sl_connect(struct sl_context *ctx, const char *addr,
	   const struct sl_sock_opts *opts, struct sl_conn **out)
{
	struct sl_addr a;
	int r = sl_addr_parse(addr, &a);

	if (r)
		return r;
	return sl_connect_addr(ctx, &a, opts, out);
}

void
sl_conn_set_deadline(struct sl_conn *c, uint64_t read_deadline,
		     uint64_t write_deadline)
{
	c->rdeadline = read_deadline;
	c->wdeadline = write_deadline;
}

int
sl_conn_peek(struct sl_context *ctx, struct sl_conn *c, struct sl_iobuf *out)
{
	int r;

	if (!c->has_cur) {
		r = sl__rx_get(&c->rx, ctx, c->rdeadline, &c->cur);
		if (r <= 0)
			return r;
		c->has_cur = true;
		c->cur_off = 0;
	}
	out->data = sl__io_buf_addr(c->cur.ip, c->cur.bid) + c->cur.off +
		    c->cur_off;
	out->len = c->cur.len - c->cur_off;
	return 1;
}

int
sl_conn_try_peek(struct sl_conn *c, struct sl_iobuf *out)
{
	int r;

	if (!c->has_cur) {
		r = sl__rx_try_get(&c->rx, &c->cur);
		if (r <= 0)
			return r;
		c->has_cur = true;
		c->cur_off = 0;
	}
	out->data = sl__io_buf_addr(c->cur.ip, c->cur.bid) + c->cur.off +
		    c->cur_off;
	out->len = c->cur.len - c->cur_off;
	return 1;
}

int
sl_conn_notify(struct sl_conn *c, void (*fn)(void *arg), void *arg)
{
	if (c->has_cur)
		return sl_task_spawn(fn, arg, NULL, NULL);
	return sl__rx_notify(&c->rx, fn, arg);
}

void
sl_conn_consume(struct sl_conn *c, size_t n)
{
	if (!c->has_cur)
		return;
	c->cur_off += (uint32_t)n;
	if (c->cur_off >= c->cur.len) {
		c->has_cur = false;
		sl__rx_item_release(&c->cur);
	}
}

ssize_t
sl_conn_recv(struct sl_context *ctx, struct sl_conn *c, void *buf, size_t len)
{
	struct sl_iobuf b;
	size_t n;
	int r;

	if (!len)
		return 0;
	r = sl_conn_peek(ctx, c, &b);
	if (r <= 0)
		return r;
	n = b.len < len ? b.len : len;
	memcpy(buf, b.data, n);
	sl_conn_consume(c, n);
	return (ssize_t)n;
}

/* One send request: returns bytes sent or a negative errno value. */
static int
conn_send_once(struct sl_context *ctx, struct sl_conn *c, const void *buf,
	       size_t len, bool zc)
{
	struct sl__io_op op;
	struct io_uring_sqe *sqe;
	int r;

	sqe = sl__io_begin(&op, ctx, c->wdeadline, "socket send", &r);
	if (!sqe)
		return r;
	if (zc) {
		io_uring_prep_send_zc(sqe, c->fd, buf, len, MSG_NOSIGNAL, 0);
		op.zc = true;
	} else {
		io_uring_prep_send(sqe, c->fd, buf, len, MSG_NOSIGNAL);
		op.zc = false;
	}
	return sl__io_run(&op, sqe);
}

static ssize_t
conn_send_all(struct sl_context *ctx, struct sl_conn *c, const void *buf,
	      size_t len, bool zc)
{
	const char *p = buf;
	size_t done = 0;

	while (done < len) {
		size_t chunk = len - done;
		int r;

		if (chunk > INT32_MAX)
			chunk = INT32_MAX;
		r = conn_send_once(ctx, c, p + done, chunk, zc);
		if (zc && (r == -EOPNOTSUPP || r == -EINVAL)) {
			/* No zero-copy for this socket or kernel. */
			zc = false;
			continue;
		}
		if (r < 0)
			return r;
		if (r == 0)
			return -EPIPE;
		done += (size_t)r;
	}
	return (ssize_t)len;
}

ssize_t
sl_conn_send(struct sl_context *ctx, struct sl_conn *c, const void *buf,
	     size_t len)
{
	return conn_send_all(ctx, c, buf, len, false);
}

ssize_t
sl_conn_send_zc(struct sl_context *ctx, struct sl_conn *c, const void *buf,
		size_t len)
{
	return conn_send_all(ctx, c, buf, len, true);
}

ssize_t
sl_conn_sendv(struct sl_context *ctx, struct sl_conn *c,
	      const struct iovec *iov, int n)
{
	struct iovec local[64];
	struct iovec *v = local;
	size_t total = 0;
	ssize_t ret;
	int left = n;

	if (n < 0 || n > IOV_MAX)
		return -EINVAL;
	if (n > (int)SL_ARRAY_SIZE(local)) {
		v = mi_malloc((size_t)n * sizeof(*v));
		if (!v)
			return -ENOMEM;
	}
	memcpy(v, iov, (size_t)n * sizeof(*v));
	for (int i = 0; i < n; i++)
		total += iov[i].iov_len;

	/* Each request sends what it can; move past what went out. */
	struct iovec *cur = v;
	ret = (ssize_t)total;
	while (left > 0) {
		struct sl__io_op op;
		struct io_uring_sqe *sqe;
		struct msghdr mh;
		int r;

		while (left > 0 && cur->iov_len == 0) {
			cur++;
			left--;
		}
		if (!left)
			break;
		memset(&mh, 0, sizeof(mh));
		mh.msg_iov = cur;
		mh.msg_iovlen = (size_t)left;
		sqe = sl__io_begin(&op, ctx, c->wdeadline, "socket send", &r);
		if (!sqe) {
			ret = r;
			break;
		}
		op.zc = false;
		io_uring_prep_sendmsg(sqe, c->fd, &mh, MSG_NOSIGNAL);
		r = sl__io_run(&op, sqe);
		if (r <= 0) {
			ret = r ? r : -EPIPE;
			break;
		}
		for (size_t sent = (size_t)r; sent > 0;) {
			size_t take = sent < cur->iov_len ? sent : cur->iov_len;

			cur->iov_base = (char *)cur->iov_base + take;
			cur->iov_len -= take;
			sent -= take;
			if (cur->iov_len == 0 && left > 0) {
				cur++;
				left--;
			}
		}
	}
	if (v != local)
		mi_free(v);
	return ret;
}

int
sl_conn_shutdown(struct sl_context *ctx, struct sl_conn *c, int how)
{
	struct sl__io_op op;
	struct io_uring_sqe *sqe;
	int r;

	sqe = sl__io_begin(&op, ctx, SL_NO_DEADLINE, "socket shutdown", &r);
	if (!sqe)
		return r;
	op.zc = false;
	io_uring_prep_shutdown(sqe, c->fd, how);
	return sl__io_run(&op, sqe);
}

/* Close @fd through the ring when there is one; nobody waits for it. */
void
sl__close_fd(int fd)
{
	struct sl__proc *p = sl__proc_current();
	struct io_uring_sqe *sqe = p ? sl__io_sqe(p) : NULL;

	if (!sqe) {
		close(fd);
		return;
	}
	io_uring_prep_close(sqe, fd);
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	io_uring_sqe_set_data64(sqe, SL__CQE_IGNORE);
	sl__io_queue(p);
}

void
sl_conn_close(struct sl_conn *c)
{
	if (!c)
		return;
	sl__rx_close(&c->rx);
	if (c->has_cur) {
		c->has_cur = false;
		sl__rx_item_release(&c->cur);
	}
	sl__close_fd(c->fd);
	if (c->listener)
		sl__listener_conn_gone(c->listener);
	/* Freed now, or by a reader that close woke, as it leaves. */
	sl__rx_release(&c->rx);
}

void
sl_conn_stats_get(const struct sl_conn *c, struct sl_conn_stats *out)
{
	out->bytes = atomic_load_explicit(&c->rx.st.bytes,
					  memory_order_relaxed);
	out->pauses = atomic_load_explicit(&c->rx.st.pauses,
					   memory_order_relaxed);
}

int
sl_conn_fd(const struct sl_conn *c)
{
	return c->fd;
}

void
sl_conn_peer(const struct sl_conn *c, struct sl_addr *out)
{
	if (c->have_peer) {
		*out = c->peer;
		return;
	}
	memset(out, 0, sizeof(*out));
	out->len = sizeof(out->u);
	if (getpeername(c->fd, &out->u.sa, &out->len))
		memset(out, 0, sizeof(*out));
}
