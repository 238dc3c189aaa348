/* SPDX-License-Identifier: MIT */
/*
 * Datagram sockets (UDP and Unix datagram) over multishot recvmsg.
 *
 * Each provided buffer receives one datagram behind the kernel's header
 * (struct io_uring_recvmsg_out), the sender's address and the control
 * data.  A datagram larger than what is left of the buffer is truncated by
 * the kernel (MSG_TRUNC): counted, and flagged to the reader.  SO_RXQ_OVFL
 * makes the kernel report in the control data how many datagrams it
 * dropped because the socket buffer was full; that count is the "dropped"
 * statistic.  When readers fall behind by max_queued datagrams the receive
 * stops, and the kernel drops (and counts) the excess, as it would for a
 * slow reader of any UDP socket.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mimalloc.h>

#include "io/conn_internal.h"

struct sl_dgram {
	int fd;
	struct sl_addr addr;
	bool unlink_path;
	struct sl__rx rx;
	char control[CMSG_SPACE(sizeof(uint32_t))];
	_Atomic uint64_t sent, send_errors;
};

/* The last hold on the socket is gone (sl__rx_release). */
static void
dgram_free(struct sl__rx *rx)
{
	mi_free(SL_CONTAINER_OF(rx, struct sl_dgram, rx));
}

int
sl_dgram_open(const char *bind_addr, int family_hint,
	      const struct sl_dgram_opts *opts, struct sl_dgram **out)
{
	struct sl_dgram_opts defaults = {.max_queued = 1024};
	struct sl_addr a;
	struct sl_dgram *d;
	int one = 1, family = family_hint;
	int fd, r;

	if (!opts)
		opts = &defaults;
	if (bind_addr) {
		r = sl_addr_parse(bind_addr, &a);
		if (r)
			return r;
		family = a.u.sa.sa_family;
	} else if (family != AF_INET && family != AF_INET6) {
		return -EINVAL;
	}
	fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof(one)) ||
	    (opts->sndbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUF,
					    &opts->sndbuf, sizeof(int))) ||
	    (opts->rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF,
					    &opts->rcvbuf, sizeof(int))))
		goto fail_errno;
	if (bind_addr) {
		if (family == AF_UNIX && a.u.un.sun_path[0]) {
			struct stat st;

			if (!stat(a.u.un.sun_path, &st) &&
			    S_ISSOCK(st.st_mode))
				unlink(a.u.un.sun_path);
		}
		if (bind(fd, &a.u.sa, a.len))
			goto fail_errno;
	}

	d = mi_zalloc(sizeof(*d));
	if (!d) {
		close(fd);
		return -ENOMEM;
	}
	d->fd = fd;
	d->addr.len = sizeof(d->addr.u);
	if (getsockname(fd, &d->addr.u.sa, &d->addr.len))
		d->addr.len = 0;
	if (family == AF_UNIX && bind_addr) {
		d->addr = a;
		d->unlink_path = a.u.un.sun_path[0] != '\0';
	}
	sl__rx_init(&d->rx, fd, true, 0,
		    opts->max_queued ? opts->max_queued : 1024, dgram_free);
	d->rx.mh.msg_namelen = sizeof(struct sockaddr_storage);
	d->rx.mh.msg_controllen = sizeof(d->control);
	*out = d;
	return 0;
fail_errno:
	r = -errno;
	close(fd);
	return r;
}

void
sl_dgram_addr(const struct sl_dgram *d, struct sl_addr *out)
{
	*out = d->addr;
}

int
sl_dgram_recv(struct sl_context *ctx, struct sl_dgram *d,
	      struct sl_datagram *out)
{
	struct sl__rx_item it;
	struct io_uring_recvmsg_out *o;
	char *buf;
	int r;

	r = sl__rx_get(&d->rx, ctx, SL_NO_DEADLINE, &it);
	if (r < 0)
		return r;
	if (r == 0)
		return -EPIPE; /* datagram sockets have no end of stream */

	buf = sl__io_buf_addr(it.ip, it.bid);
	out->data = buf + it.off;
	out->len = it.len;
	out->truncated = it.flags & SL__RX_TRUNC;
	memset(&out->from, 0, sizeof(out->from));
	o = (struct io_uring_recvmsg_out *)buf;
	if (it.len || it.off) {
		socklen_t nl = o->namelen;

		if (nl > sizeof(out->from.u))
			nl = sizeof(out->from.u);
		memcpy(&out->from.u, io_uring_recvmsg_name(o), nl);
		out->from.len = nl;
	}
	out->priv[0] = it.bid;
	out->priv[1] = 0;
	out->priv_proc = it.ip;
	return 0;
}

void
sl_dgram_release(struct sl_dgram *d, struct sl_datagram *dg)
{
	(void)d;
	if (!dg->priv_proc)
		return;
	sl__io_buf_put(dg->priv_proc, (uint16_t)dg->priv[0]);
	dg->priv_proc = NULL;
}

ssize_t
sl_dgram_send(struct sl_context *ctx, struct sl_dgram *d, const void *buf,
	      size_t len, const struct sl_addr *to)
{
	struct sl__io_op op;
	struct io_uring_sqe *sqe;
	struct msghdr mh;
	struct iovec iov = {.iov_base = (void *)(uintptr_t)buf, .iov_len = len};
	int r;

	memset(&mh, 0, sizeof(mh));
	if (to) {
		mh.msg_name = (void *)(uintptr_t)&to->u;
		mh.msg_namelen = to->len;
	}
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	sqe = sl__io_begin(&op, ctx, SL_NO_DEADLINE, "datagram send", &r);
	if (!sqe)
		return r;
	io_uring_prep_sendmsg(sqe, d->fd, &mh, MSG_NOSIGNAL);
	r = sl__io_run(&op, sqe);
	if (r < 0)
		sl__io_stat_add(&d->send_errors, 1);
	else
		sl__io_stat_add(&d->sent, 1);
	return r;
}

void
sl_dgram_stats_get(const struct sl_dgram *d, struct sl_dgram_stats *out)
{
	out->received = atomic_load_explicit(&d->rx.st.items,
					     memory_order_relaxed);
	out->truncated = atomic_load_explicit(&d->rx.st.truncated,
					      memory_order_relaxed);
	out->dropped = atomic_load_explicit(&d->rx.st.dropped,
					    memory_order_relaxed);
	out->sent = atomic_load_explicit(&d->sent, memory_order_relaxed);
	out->send_errors = atomic_load_explicit(&d->send_errors,
						memory_order_relaxed);
}

void
sl_dgram_close(struct sl_dgram *d)
{
	if (!d)
		return;
	sl__rx_close(&d->rx);
	sl__close_fd(d->fd);
	if (d->unlink_path)
		unlink(d->addr.u.un.sun_path);
	/* Freed now, or by a reader that close woke, as it leaves. */
	sl__rx_release(&d->rx);
}
