/* SPDX-License-Identifier: MIT */
/*
 * Listeners: multishot accept on one socket per processor.
 *
 * With SO_REUSEPORT the kernel hashes each new TCP connection to one of
 * the sockets bound to the port; giving every processor its own socket,
 * with its accept armed in that processor's ring, spreads the accept work
 * over the processors without any lock between them.  Accepted sockets
 * queue in the listener until a task takes them with sl_listener_accept().
 *
 * Running out of descriptors (EMFILE, ENFILE) ends the multishot accept.
 * Arming it again at once would fail again at once, a busy loop; instead
 * the socket waits on a timer, 1 ms doubling to 1 s, while the pending
 * connections wait in the kernel's backlog.  Connections past max_conns
 * are accepted and closed at once, so the client sees a reset rather than
 * a hang, and both are counted.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mimalloc.h>

#include "io/conn_internal.h"

#define LSOCK_BACKOFF_MIN_NS (1 * SL_NSEC_PER_MSEC)
#define LSOCK_BACKOFF_MAX_NS (1 * SL_NSEC_PER_SEC)
#define ACCEPT_TOKEN 1u

enum lsock_state {
	LSOCK_IDLE,
	LSOCK_ARMED,
	LSOCK_BACKOFF,
};

/* One listening socket and the processor whose ring accepts on it. */
struct lsock {
	struct sl_listener *l;
	int fd;
	struct sl__proc *p;
	enum lsock_state state;		/* owner processor only */
	struct sl__completion cqe;
	struct sl__completion arm;	/* posted: arm there */
	struct sl__completion stop;	/* posted: stop there */
	struct sl__timer backoff;
	uint64_t backoff_ns;
};

struct sl_listener {
	struct sl_listen_opts opts;
	struct sl_addr addr;
	bool unlink_path;
	unsigned nsocks;
	struct lsock *socks;

	_Atomic uint32_t lock;
	int *fds;			/* accepted, not yet taken */
	uint32_t head, len, cap;
	struct sl__waitq acceptors;
	struct sl__waiter *closer;
	unsigned busy;			/* sockets not idle + posts in flight */
	bool closing;

	/* The listener, its open connections, and acceptors inside
	 * sl_listener_accept(): the last to let go frees it. */
	_Atomic uint32_t refs;
	_Atomic uint64_t open;
	struct {
		_Atomic uint64_t accepted, refused, emfile, errors;
	} st;
};

void
sl_listen_opts_default(struct sl_listen_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->backlog = 4096;
	o->per_proc = true;
	sl_sock_opts_default(&o->conn);
}

static void
listener_unref(struct sl_listener *l)
{
	if (atomic_fetch_sub_explicit(&l->refs, 1, memory_order_acq_rel) != 1)
		return;
	mi_free(l->socks);
	mi_free(l->fds);
	mi_free(l);
}

void
sl__listener_conn_gone(struct sl_listener *l)
{
	atomic_fetch_sub_explicit(&l->open, 1, memory_order_relaxed);
	listener_unref(l);
}

/* Wake the closer once every socket is idle (lock held). */
static struct sl__task *
listener_closer_ready(struct sl_listener *l)
{
	struct sl__waiter *w = l->closer;

	if (!w || l->busy)
		return NULL;
	l->closer = NULL;
	return sl__waiter_claim(w) ? w->task : NULL;
}

static void
lsock_arm(struct lsock *s)
{
	struct io_uring_sqe *sqe = sl__io_sqe(s->p);

	if (!sqe) {
		/* Cannot happen with a healthy ring; retry on the timer. */
		s->state = LSOCK_BACKOFF;
		sl__timer_start(&s->backoff, sl_now_ns() + LSOCK_BACKOFF_MIN_NS);
		return;
	}
	io_uring_prep_multishot_accept(sqe, s->fd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data(sqe, &s->cqe);
	sl__io_queue(s->p);
	s->state = LSOCK_ARMED;
}

/* The socket went idle for good (closing): account for it. */
static void
lsock_idle(struct lsock *s)
{
	struct sl_listener *l = s->l;
	struct sl__task *t;

	s->state = LSOCK_IDLE;
	sl__spin_lock(&l->lock);
	l->busy--;
	t = listener_closer_ready(l);
	sl__spin_unlock(&l->lock);
	if (t)
		sl__wake(t);
}

static void
lsock_backoff_fired(struct sl__timer *t)
{
	struct lsock *s = t->arg;
	bool closing;

	sl__spin_lock(&s->l->lock);
	closing = s->l->closing;
	sl__spin_unlock(&s->l->lock);
	if (s->state != LSOCK_BACKOFF)
		return;
	if (closing)
		lsock_idle(s);
	else
		lsock_arm(s);
}

static void
lsock_queue_fd(struct lsock *s, int fd)
{
	struct sl_listener *l = s->l;
	struct sl__waiter *w;
	struct sl__task *t = NULL;
	unsigned dropped;

	sl__spin_lock(&l->lock);
	if (l->closing) {
		sl__spin_unlock(&l->lock);
		sl__close_fd(fd);
		return;
	}
	if (l->len == l->cap) {
		uint32_t cap = l->cap ? l->cap * 2 : 64;
		int *fds = mi_malloc(cap * sizeof(*fds));

		if (!fds) {
			sl__spin_unlock(&l->lock);
			sl__close_fd(fd);
			sl__io_stat_add(&l->st.errors, 1);
			return;
		}
		for (uint32_t i = 0; i < l->len; i++)
			fds[i] = l->fds[(l->head + i) % l->cap];
		mi_free(l->fds);
		l->fds = fds;
		l->cap = cap;
		l->head = 0;
	}
	l->fds[(l->head + l->len) % l->cap] = fd;
	l->len++;
	if ((w = sl__waitq_claim_one(&l->acceptors, &dropped)))
		t = w->task;
	sl__spin_unlock(&l->lock);
	if (t)
		sl__wake(t);
}

static void
lsock_complete(struct sl__completion *c, int res, uint32_t flags)
{
	struct lsock *s = SL_CONTAINER_OF(c, struct lsock, cqe);
	struct sl_listener *l = s->l;
	bool more = flags & IORING_CQE_F_MORE;
	bool closing;

	if (res >= 0) {
		uint64_t open = atomic_fetch_add_explicit(
			&l->open, 1, memory_order_relaxed);

		if (l->opts.max_conns && open >= l->opts.max_conns) {
			atomic_fetch_sub_explicit(&l->open, 1,
						  memory_order_relaxed);
			sl__close_fd(res);
			sl__io_stat_add(&l->st.refused, 1);
			sl__io_log("warn",
				   "msg=\"connection refused: listener at "
				   "max_conns\" max_conns=%u",
				   l->opts.max_conns);
		} else {
			sl__io_stat_add(&l->st.accepted, 1);
			lsock_queue_fd(s, res);
		}
		s->backoff_ns = 0;
	} else if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS ||
		   res == -ENOMEM) {
		sl__io_stat_add(&l->st.emfile, 1);
		sl__io_log("warn",
			   "msg=\"accept failed, backing off\" err=\"%s\"",
			   sl_strerror(res));
	} else if (res != -ECANCELED) {
		sl__io_stat_add(&l->st.errors, 1);
	}
	if (more)
		return;

	/* The multishot accept ended: arm it again, after a pause if the
	 * process is out of descriptors or memory. */
	sl__spin_lock(&l->lock);
	closing = l->closing;
	sl__spin_unlock(&l->lock);
	if (closing || res == -ECANCELED || res == -EBADF ||
	    res == -EINVAL) {
		lsock_idle(s);
		return;
	}
	if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS ||
	    res == -ENOMEM) {
		s->backoff_ns = s->backoff_ns ? s->backoff_ns * 2
					      : LSOCK_BACKOFF_MIN_NS;
		if (s->backoff_ns > LSOCK_BACKOFF_MAX_NS)
			s->backoff_ns = LSOCK_BACKOFF_MAX_NS;
		s->state = LSOCK_BACKOFF;
		sl__timer_start(&s->backoff, sl_now_ns() + s->backoff_ns);
		return;
	}
	lsock_arm(s);
}

static void
lsock_arm_posted(struct sl__completion *c, int res, uint32_t flags)
{
	struct lsock *s = SL_CONTAINER_OF(c, struct lsock, arm);

	(void)res;
	(void)flags;
	lsock_arm(s);
}

static void
lsock_stop_posted(struct sl__completion *c, int res, uint32_t flags)
{
	struct lsock *s = SL_CONTAINER_OF(c, struct lsock, stop);
	struct sl_listener *l = s->l;
	struct sl__task *t;

	(void)res;
	(void)flags;
	if (s->state == LSOCK_ARMED) {
		sl__io_cancel_on(s->p, &s->cqe);
	} else if (s->state == LSOCK_BACKOFF) {
		if (sl__timer_stop(&s->backoff))
			lsock_idle(s);
	}
	/* The post itself is done. */
	sl__spin_lock(&l->lock);
	l->busy--;
	t = listener_closer_ready(l);
	sl__spin_unlock(&l->lock);
	if (t)
		sl__wake(t);
}

static int
lsock_open(const struct sl_addr *a, const struct sl_listen_opts *o,
	   bool reuseport)
{
	int one = 1;
	int fd = socket(a->u.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int r;

	if (fd < 0)
		return -errno;
	if (a->u.sa.sa_family != AF_UNIX &&
	    (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	     (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one,
				      sizeof(one)))))
		goto fail;
	if (bind(fd, &a->u.sa, a->len) || listen(fd, o->backlog))
		goto fail;
	return fd;
fail:
	r = -errno;
	close(fd);
	return r;
}

/* A stale Unix socket file from an earlier run: remove it, nothing else. */
static void
unix_remove_stale(const struct sl_addr *a)
{
	struct stat st;

	if (a->u.un.sun_path[0] && !stat(a->u.un.sun_path, &st) &&
	    S_ISSOCK(st.st_mode))
		unlink(a->u.un.sun_path);
}

int
sl_listen(const char *addr, const struct sl_listen_opts *opts,
	  struct sl_listener **out)
{
	struct sl_listen_opts defaults;
	struct sl_listener *l;
	struct sl_addr a;
	bool is_unix;
	unsigned n;
	int r;

	if (!sl__proc_current() || !sl__task_current())
		return -EPERM;
	r = sl_addr_parse(addr, &a);
	if (r)
		return r;
	if (!opts) {
		sl_listen_opts_default(&defaults);
		opts = &defaults;
	}
	is_unix = a.u.sa.sa_family == AF_UNIX;
	n = opts->per_proc && !is_unix ? sl__rt.nprocs : 1;

	l = mi_zalloc(sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->socks = mi_calloc(n, sizeof(*l->socks));
	if (!l->socks) {
		mi_free(l);
		return -ENOMEM;
	}
	l->opts = *opts;
	if (l->opts.backlog <= 0)
		l->opts.backlog = 4096;
	atomic_init(&l->refs, 1);
	if (is_unix) {
		unix_remove_stale(&a);
		l->unlink_path = a.u.un.sun_path[0] != '\0';
	}

	for (unsigned i = 0; i < n; i++) {
		struct lsock *s = &l->socks[i];

		r = lsock_open(&a, &l->opts, n > 1);
		if (r < 0)
			goto fail;
		s->fd = r;
		l->nsocks++;
		if (i == 0) {
			/* Port 0: the others must bind the port we got. */
			l->addr.len = sizeof(l->addr.u);
			getsockname(s->fd, &l->addr.u.sa, &l->addr.len);
			if (!is_unix)
				a = l->addr;
			else
				l->addr = a;
		}
	}

	for (unsigned i = 0; i < n; i++) {
		struct lsock *s = &l->socks[i];

		s->l = l;
		s->p = n > 1 ? sl__rt.procs[i] : sl__proc_current();
		s->cqe.fn = lsock_complete;
		s->arm.fn = lsock_arm_posted;
		s->stop.fn = lsock_stop_posted;
		s->backoff = (struct sl__timer){
			.fn = lsock_backoff_fired,
			.arg = s,
		};
		s->state = LSOCK_ARMED; /* from now on, as far as close cares */
		l->busy++;
	}
	for (unsigned i = 0; i < n; i++)
		sl__proc_post(l->socks[i].p, &l->socks[i].arm);
	*out = l;
	return 0;
fail:
	for (unsigned i = 0; i < l->nsocks; i++)
		close(l->socks[i].fd);
	mi_free(l->socks);
	mi_free(l);
	return r;
}

void
sl_listener_addr(const struct sl_listener *l, struct sl_addr *out)
{
	*out = l->addr;
}

static int
listener_accept(struct sl_context *ctx, struct sl_listener *l,
		struct sl_conn **out)
{
	for (;;) {
		struct sl__waiter waiter;
		struct sl__wait w;
		uint32_t token;
		int fd = -1, r;

		sl__spin_lock(&l->lock);
		if (l->closing) {
			sl__spin_unlock(&l->lock);
			return -EBADF;
		}
		if (l->len) {
			fd = l->fds[l->head];
			l->head = (l->head + 1) % l->cap;
			l->len--;
		}
		sl__spin_unlock(&l->lock);

		if (fd >= 0) {
			struct sl_conn *c;

			r = sl__sock_apply(fd, l->addr.u.sa.sa_family,
					   &l->opts.conn);
			c = r ? NULL
			      : sl__conn_new(fd, l->addr.u.sa.sa_family,
					     &l->opts.conn);
			if (!c) {
				sl__close_fd(fd);
				atomic_fetch_sub_explicit(
					&l->open, 1, memory_order_relaxed);
				return r ? r : -ENOMEM;
			}
			atomic_fetch_add_explicit(&l->refs, 1,
						  memory_order_relaxed);
			c->listener = l;
			*out = c;
			return 0;
		}

		r = sl__wait_begin(&w, ctx, SL_NO_DEADLINE, "accept");
		if (r)
			return r;
		waiter = (struct sl__waiter){
			.task = w.task,
			.claim = &w.claim,
			.token = ACCEPT_TOKEN,
		};
		sl__spin_lock(&l->lock);
		if (l->len || l->closing) {
			sl__spin_unlock(&l->lock);
			sl__wait_abort(&w);
			continue;
		}
		sl__waitq_push(&l->acceptors, &waiter);
		sl__spin_unlock(&l->lock);

		token = sl__wait_park(&w);
		if (token == ACCEPT_TOKEN)
			continue;
		sl__spin_lock(&l->lock);
		if (waiter.queued)
			sl__waitq_remove(&l->acceptors, &waiter);
		sl__spin_unlock(&l->lock);
		return sl__wait_error(&w, token);
	}
}

int
sl_listener_accept(struct sl_context *ctx, struct sl_listener *l,
		   struct sl_conn **out)
{
	int r;

	/*
	 * Hold the listener while inside: an acceptor that close woke may
	 * run only after sl_listener_close() has returned, and must still
	 * find the lock and the closing flag.
	 */
	atomic_fetch_add_explicit(&l->refs, 1, memory_order_relaxed);
	r = listener_accept(ctx, l, out);
	listener_unref(l);
	return r;
}

void
sl_listener_stats_get(const struct sl_listener *l,
		      struct sl_listener_stats *out)
{
	out->accepted = atomic_load_explicit(&l->st.accepted,
					     memory_order_relaxed);
	out->refused = atomic_load_explicit(&l->st.refused,
					    memory_order_relaxed);
	out->emfile = atomic_load_explicit(&l->st.emfile,
					   memory_order_relaxed);
	out->errors = atomic_load_explicit(&l->st.errors,
					   memory_order_relaxed);
	out->open = atomic_load_explicit(&l->open, memory_order_relaxed);
}

void
sl_listener_close(struct sl_listener *l)
{
	struct sl__task *wake[64];
	struct sl__waiter *w;
	unsigned n, dropped;

	if (!l)
		return;
	sl__spin_lock(&l->lock);
	l->closing = true;
	l->busy += l->nsocks; /* the stop posts */
	sl__spin_unlock(&l->lock);

	/* Parked acceptors return -EBADF. */
	do {
		n = 0;
		sl__spin_lock(&l->lock);
		while (n < SL_ARRAY_SIZE(wake) &&
		       (w = sl__waitq_claim_one(&l->acceptors, &dropped)))
			wake[n++] = w->task;
		sl__spin_unlock(&l->lock);
		for (unsigned i = 0; i < n; i++)
			sl__wake(wake[i]);
	} while (n == SL_ARRAY_SIZE(wake));

	for (unsigned i = 0; i < l->nsocks; i++)
		sl__proc_post(l->socks[i].p, &l->socks[i].stop);

	for (;;) {
		struct sl__waiter waiter;
		struct sl__wait wt;

		sl__wait_begin(&wt, NULL, SL_NO_DEADLINE, "listener close");
		waiter = (struct sl__waiter){
			.task = wt.task,
			.claim = &wt.claim,
			.token = ACCEPT_TOKEN,
		};
		sl__spin_lock(&l->lock);
		if (!l->busy) {
			sl__spin_unlock(&l->lock);
			sl__wait_abort(&wt);
			break;
		}
		l->closer = &waiter;
		sl__spin_unlock(&l->lock);
		sl__wait_park(&wt);
	}

	for (unsigned i = 0; i < l->nsocks; i++)
		sl__close_fd(l->socks[i].fd);
	while (l->len) {
		sl__close_fd(l->fds[l->head]);
		atomic_fetch_sub_explicit(&l->open, 1, memory_order_relaxed);
		l->head = (l->head + 1) % l->cap;
		l->len--;
	}
	if (l->unlink_path)
		unlink(l->addr.u.un.sun_path);
	listener_unref(l);
}
