/* SPDX-License-Identifier: MIT */
/*
 * io_peers: the plain C side of the io benchmarks (tools/bench/run-io).
 * Two servers Sluice is compared with, the load generator that feeds every
 * server, and a client that holds idle connections:
 *
 *   io_peers read  [--port P] [--records N] [--conns N]
 *   io_peers epoll [--port P] [--records N] [--conns N] [--threads T]
 *   io_peers load  --port P --records N [--conns C] [--threads T]
 *                  [--chunk BYTES | --batch LO-HI] [--seed S] [--splice]
 *   io_peers idle  --port P --conns N
 *
 * The servers listen on 127.0.0.1:P (0 picks a free port) and count the
 * newline-terminated records that arrive on any connection:
 *
 *   read   a thread per connection in a blocking read() loop over a 64 KiB
 *          buffer, records counted with memchr;
 *   epoll  one thread per CPU, each with its own SO_REUSEPORT listener and
 *          epoll set; connections are edge-triggered and non-blocking and
 *          are read until the kernel has nothing more (EAGAIN, or a short
 *          read, which epoll(7) documents as the same thing for streams).
 *
 * Both are written as a competent C programmer would write them for speed,
 * and count in the same way as io_sluice.c, so the comparison is of the
 * I/O model alone.  Every server prints the same lines, which run-io reads:
 *
 *   port=P pid=PID                  first, once it listens
 *   ioserver impl=read open=N       once --conns N connections are open
 *   ioserver impl=read records=N bytes=B seconds=S rate=R cpu=C
 *
 * The last line comes when --records N records have arrived, after which
 * the server exits.  seconds runs from the first byte received to the
 * last record; cpu is the process's own user and system time (getrusage)
 * over the same span.  Without --records the server runs until killed.
 *
 * The load generator opens C connections, and once all are connected
 * writes N records of 64 bytes (63 printable bytes and '\n') spread evenly
 * over them: each write carries BYTES/64 records with --chunk (the
 * default, 64 KiB), or a seeded random count between LO and HI with
 * --batch.  T threads (default 1) share the connections; a thread with one
 * connection writes in blocking mode, one with more writes round-robin
 * over non-blocking sockets and waits in epoll when all are full.  It
 * prints "load conns=C records=N writes=W seconds=S rate=R cpu=C", its
 * own CPU time included, since on a small machine it shares the CPUs with
 * the server it feeds.  With --splice a thread with one connection moves
 * each write's pages into the socket with vmsplice and splice instead of
 * copying them, which halves the copying on a loopback connection.
 *
 * The idle client opens N connections, prints "idle conns=N", and holds
 * them until its standard input reaches end of file or it is signalled.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* accept4, for a build outside the project's */
#endif
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define RECORD_SIZE 64
#define READ_BUF_SIZE (64 * 1024)

/* The read server's threads: the 64 KiB buffer lives on the stack, and
 * 256 KiB leaves ample room without reserving glibc's default 8 MiB for
 * each of ten thousand threads. */
#define READ_THREAD_STACK (256 * 1024)

#define EPOLL_EVENTS 256
#define LISTEN_BACKLOG 4096

/* ---- shared helpers ---- */

static const char *prog_impl = "io_peers";

static _Noreturn void
die(const char *what, int err)
{
	fprintf(stderr, "io_peers %s: %s: %s\n", prog_impl, what,
		strerror(err));
	exit(1);
}

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double
cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
	       ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) /
		       1e6;
}

/* Ten thousand connections need more descriptors than the usual soft limit
 * of 1024; take what the hard limit allows. */
static void
raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static uint64_t
parse_u64(const char *flag, const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-') {
		fprintf(stderr, "io_peers: %s wants a number, not '%s'\n",
			flag, s);
		exit(2);
	}
	return v;
}

static struct sockaddr_in
loopback_addr(uint16_t port)
{
	struct sockaddr_in a;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons(port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

/* Count the newlines in @p[0..@n) with memchr, which glibc vectorises. */
static uint64_t
count_records(const char *p, size_t n)
{
	const char *end = p + n;
	uint64_t count = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		if (!nl)
			break;
		count++;
		p = nl + 1;
	}
	return count;
}

/* ---- the servers' common part: options, listening, the tally ---- */

struct server_opts {
	uint16_t port;
	uint64_t records;	/* report and exit after this many; 0: never */
	uint64_t conns;		/* report once this many are open; 0: never */
	unsigned threads;	/* epoll: threads, 0 for one per CPU */
};

/*
 * What every connection adds to.  The record and byte counters take one
 * atomic add per read, as the other servers' do.  start_ns is set once, by
 * the first read that returns data, and sits on its own line because every
 * read looks at it.
 */
static struct {
	_Alignas(128) _Atomic uint64_t records;
	_Atomic uint64_t bytes;
	_Alignas(128) _Atomic uint64_t start_ns;
	_Atomic double cpu_start;	/* stored just after start_ns */
	_Alignas(128) _Atomic uint64_t open;
	struct server_opts opts;
} tally;

/*
 * A listening socket on 127.0.0.1:@port, non-blocking for the epoll
 * server.  With @reuseport several sockets may share the port and the
 * kernel spreads connections over them.
 */
static int
listen_on(uint16_t port, bool reuseport, bool nonblock, uint16_t *bound)
{
	struct sockaddr_in a = loopback_addr(port);
	socklen_t len = sizeof(a);
	int one = 1;
	int fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC |
			     (nonblock ? SOCK_NONBLOCK : 0), 0);
	if (fd < 0)
		die("socket", errno);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuseport &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		die("SO_REUSEPORT", errno);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		die("bind", errno);
	if (listen(fd, LISTEN_BACKLOG) < 0)
		die("listen", errno);

	if (getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		die("getsockname", errno);
	*bound = ntohs(a.sin_port);
	return fd;
}

static void
announce_port(uint16_t port)
{
	printf("port=%u pid=%ld\n", port, (long)getpid());
	fflush(stdout);
}

static void
conn_opened(void)
{
	uint64_t open = atomic_fetch_add(&tally.open, 1) + 1;

	if (tally.opts.conns && open == tally.opts.conns) {
		printf("ioserver impl=%s open=%llu\n", prog_impl,
		       (unsigned long long)open);
		fflush(stdout);
	}
}

static void
conn_closed(void)
{
	atomic_fetch_sub(&tally.open, 1);
}

/* The first read with data starts the clock; later ones only look. */
static inline void
tally_first_byte(void)
{
	uint64_t zero = 0;

	if (atomic_load_explicit(&tally.start_ns, memory_order_relaxed))
		return;
	if (atomic_compare_exchange_strong(&tally.start_ns, &zero,
					   now_ns()))
		atomic_store(&tally.cpu_start, cpu_seconds());
}

/* The read that completes the count prints the result and ends the
 * process; the other threads may be in the middle of reads of their own,
 * which is why it leaves with _exit rather than unwinding them. */
static void
tally_report(uint64_t records)
{
	double secs = (double)(now_ns() - atomic_load(&tally.start_ns)) / 1e9;
	double cpu = cpu_seconds() - atomic_load(&tally.cpu_start);

	printf("ioserver impl=%s records=%llu bytes=%llu seconds=%.6f "
	       "rate=%.0f cpu=%.6f\n",
	       prog_impl, (unsigned long long)records,
	       (unsigned long long)atomic_load(&tally.bytes), secs,
	       secs > 0 ? (double)records / secs : 0.0, cpu);
	fflush(stdout);
	if (records != tally.opts.records) {
		fprintf(stderr, "io_peers %s: %llu records arrived, %llu "
			"expected\n", prog_impl, (unsigned long long)records,
			(unsigned long long)tally.opts.records);
		_exit(1);
	}
	_exit(0);
}

static inline void
tally_add(uint64_t records, size_t bytes)
{
	uint64_t want = tally.opts.records;
	uint64_t before;

	atomic_fetch_add_explicit(&tally.bytes, bytes, memory_order_relaxed);
	before = atomic_fetch_add(&tally.records, records);
	if (want && before < want && before + records >= want)
		tally_report(before + records);
}

static void
parse_server_opts(int argc, char **argv, struct server_opts *o)
{
	memset(o, 0, sizeof(*o));
	for (int i = 2; i < argc; i += 2) {
		const char *flag = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (!val) {
			fprintf(stderr, "io_peers: %s wants a value\n", flag);
			exit(2);
		}
		if (!strcmp(flag, "--port")) {
			uint64_t p = parse_u64(flag, val);

			if (p > 65535) {
				fprintf(stderr, "io_peers: bad port %s\n", val);
				exit(2);
			}
			o->port = (uint16_t)p;
		} else if (!strcmp(flag, "--records")) {
			o->records = parse_u64(flag, val);
		} else if (!strcmp(flag, "--conns")) {
			o->conns = parse_u64(flag, val);
		} else if (!strcmp(flag, "--threads")) {
			o->threads = (unsigned)parse_u64(flag, val);
		} else {
			fprintf(stderr, "io_peers: unknown flag %s\n", flag);
			exit(2);
		}
	}
}

/* ---- read: a thread per connection, blocking reads ---- */

static void *
read_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[READ_BUF_SIZE];

	conn_opened();
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n > 0) {
			tally_first_byte();
			tally_add(count_records(buf, (size_t)n), (size_t)n);
		} else if (n == 0) {
			break;
		} else if (errno != EINTR) {
			fprintf(stderr, "io_peers read: read: %s\n",
				strerror(errno));
			break;
		}
	}
	close(fd);
	conn_closed();
	return NULL;
}

static _Noreturn void
run_read_server(const struct server_opts *o)
{
	pthread_attr_t attr;
	uint16_t port;
	int lfd = listen_on(o->port, false, false, &port);

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, READ_THREAD_STACK);
	announce_port(port);

	for (;;) {
		pthread_t t;
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		int err;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			die("accept", errno);
		}
		err = pthread_create(&t, &attr, read_conn,
				     (void *)(intptr_t)fd);
		if (err)
			die("pthread_create", err);
	}
}

/* ---- epoll: a thread per CPU, edge-triggered, non-blocking ---- */

struct epoll_worker {
	pthread_t thread;
	int lfd;
};

/* Take every connection waiting on the listener and watch it for input. */
static void
epoll_accept_all(int ep, int lfd)
{
	for (;;) {
		struct epoll_event ev;
		int fd = accept4(lfd, NULL, NULL,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EAGAIN)
				return;
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			die("accept", errno);
		}
		ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
		ev.data.fd = fd;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
			die("epoll_ctl", errno);
		conn_opened();
	}
}

/*
 * Read @fd until the kernel has nothing more for it.  A read shorter than
 * the buffer means the receive queue is empty, so the next arrival raises
 * a new edge; after a hang-up, though, no edge will follow, so then the
 * loop goes on to end of file.  Return: false once @fd is closed.
 */
static bool
epoll_drain(int fd, uint32_t events, char *buf)
{
	bool hangup = events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR);

	for (;;) {
		ssize_t n = read(fd, buf, READ_BUF_SIZE);

		if (n > 0) {
			tally_first_byte();
			tally_add(count_records(buf, (size_t)n), (size_t)n);
			if (n < READ_BUF_SIZE && !hangup)
				return true;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return true;
		if (n < 0)
			fprintf(stderr, "io_peers epoll: read: %s\n",
				strerror(errno));
		close(fd);
		conn_closed();
		return false;
	}
}

static void *
epoll_worker_run(void *arg)
{
	struct epoll_worker *w = arg;
	struct epoll_event evs[EPOLL_EVENTS];
	struct epoll_event lev = {.events = EPOLLIN, .data.fd = w->lfd};
	char *buf = malloc(READ_BUF_SIZE);
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (!buf)
		die("malloc", ENOMEM);
	if (ep < 0)
		die("epoll_create1", errno);
	if (epoll_ctl(ep, EPOLL_CTL_ADD, w->lfd, &lev) < 0)
		die("epoll_ctl", errno);

	for (;;) {
		int n = epoll_wait(ep, evs, EPOLL_EVENTS, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait", errno);
		}
		for (int i = 0; i < n; i++) {
			if (evs[i].data.fd == w->lfd)
				epoll_accept_all(ep, w->lfd);
			else
				epoll_drain(evs[i].data.fd, evs[i].events,
					    buf);
		}
	}
	return NULL;
}

static int
run_epoll_server(const struct server_opts *o)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned n = o->threads ? o->threads : (unsigned)(cpus > 0 ? cpus : 1);
	struct epoll_worker *ws = calloc(n, sizeof(*ws));
	uint16_t port = o->port;

	if (!ws)
		die("calloc", ENOMEM);

	/* The first socket picks the port when asked for 0; the others
	 * join it there. */
	for (unsigned i = 0; i < n; i++)
		ws[i].lfd = listen_on(port, true, true, &port);
	announce_port(port);

	for (unsigned i = 0; i < n; i++) {
		int err = pthread_create(&ws[i].thread, NULL, epoll_worker_run,
					 &ws[i]);

		if (err)
			die("pthread_create", err);
	}
	pthread_join(ws[0].thread, NULL);
	return 0;
}

/* ---- load: the writers ---- */

struct load_opts {
	uint16_t port;
	uint64_t records;
	unsigned conns;
	unsigned threads;
	unsigned batch_lo;	/* records per write: from batch_lo */
	unsigned batch_hi;	/* to batch_hi, inclusive */
	uint64_t seed;
	bool splice;		/* one connection: send by vmsplice+splice */
};

/* Records back to back; every write sends a prefix of them. */
static char *load_records;

struct load_conn {
	int fd;
	uint64_t left;		/* records not yet taken into a write */
	const char *pending;	/* the unsent rest of the current write */
	size_t pending_len;
	bool blocked;		/* the last write found the socket full */
};

struct load_worker {
	pthread_t thread;
	const struct load_opts *o;
	struct load_conn *conns;
	unsigned n;
	uint64_t rng;
	uint64_t writes;	/* write system calls made */
};

/* xorshift64*: cheap, and the same sequence for the same seed. */
static uint64_t
load_rand(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545f4914f6cdd1dull;
}

static void
load_fill_records(unsigned count)
{
	size_t bytes = (size_t)count * RECORD_SIZE;

	/* Whole pages, so that splicing them hands the socket nothing else. */
	load_records = aligned_alloc(4096, (bytes + 4095) / 4096 * 4096);
	if (!load_records)
		die("aligned_alloc", ENOMEM);

	for (unsigned i = 0; i < count; i++) {
		char *r = load_records + (size_t)i * RECORD_SIZE;
		int head = snprintf(r, RECORD_SIZE, "rec %08u ", i);

		for (int j = head; j < RECORD_SIZE - 1; j++)
			r[j] = (char)('a' + (i + (unsigned)j) % 26);
		r[RECORD_SIZE - 1] = '\n';
	}
}

/* Take the next write's records out of @c's share. */
static void
load_next_write(struct load_worker *w, struct load_conn *c)
{
	uint64_t k = w->o->batch_lo;
	unsigned span = w->o->batch_hi - w->o->batch_lo + 1;

	if (span > 1)
		k += load_rand(&w->rng) % span;
	if (k > c->left)
		k = c->left;
	c->left -= k;
	c->pending = load_records;
	c->pending_len = (size_t)k * RECORD_SIZE;
}

static bool
load_conn_done(const struct load_conn *c)
{
	return !c->left && !c->pending_len;
}

/* Send what @c has pending, once.  Return: false if the socket was full. */
static bool
load_send(struct load_worker *w, struct load_conn *c)
{
	ssize_t n;

	if (!c->pending_len)
		load_next_write(w, c);
	n = send(c->fd, c->pending, c->pending_len, MSG_NOSIGNAL);
	if (n < 0) {
		if (errno == EAGAIN)
			return false;
		if (errno == EINTR)
			return true;
		die("send", errno);
	}
	w->writes++;
	c->pending += n;
	c->pending_len -= (size_t)n;
	return true;
}

/* One connection: blocking writes, nothing to wait for but the socket. */
static void
load_blocking(struct load_worker *w)
{
	struct load_conn *c = &w->conns[0];

	while (!load_conn_done(c))
		load_send(w, c);
}

/* Move @len bytes from the pipe's read end @from to the socket @to. */
static void
load_splice_out(int from, int to, size_t len)
{
	while (len) {
		ssize_t n = splice(from, NULL, to, NULL, len, SPLICE_F_MORE);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("splice", errno);
		}
		len -= (size_t)n;
	}
}

/*
 * One connection, --splice: each write's pages go into a pipe (vmsplice)
 * and from there into the socket (splice), so the kernel references the
 * record pages instead of copying them, and the receiver's copy out of the
 * socket is the only one.  On one loopback connection the sender's copy
 * otherwise costs about as much as the receiver's, and that would make the
 * generator, not the server, the limit.  The record pages never change,
 * so the socket may hold references to them as long as it likes.
 */
static void
load_spliced(struct load_worker *w)
{
	struct load_conn *c = &w->conns[0];
	int p[2];

	if (pipe2(p, O_CLOEXEC) < 0)
		die("pipe2", errno);
	fcntl(p[1], F_SETPIPE_SZ, 1 << 20);

	while (!load_conn_done(c)) {
		struct iovec iov;

		load_next_write(w, c);
		iov.iov_base = (void *)(uintptr_t)c->pending;
		iov.iov_len = c->pending_len;
		while (iov.iov_len) {
			ssize_t n = vmsplice(p[1], &iov, 1, 0);

			if (n < 0) {
				if (errno == EINTR)
					continue;
				die("vmsplice", errno);
			}
			load_splice_out(p[0], c->fd, (size_t)n);
			iov.iov_base = (char *)iov.iov_base + n;
			iov.iov_len -= (size_t)n;
			w->writes++;
		}
		c->pending_len = 0;
	}
	close(p[0]);
	close(p[1]);
}

/*
 * Many connections: one write to each in turn, skipping those whose
 * socket is full; edge-triggered EPOLLOUT says when they have room again.
 * While some can still be written, the ready list is only collected
 * (timeout 0); once all are full, the thread sleeps in epoll_wait.
 */
static void
load_multiplexed(struct load_worker *w)
{
	struct epoll_event evs[EPOLL_EVENTS];
	unsigned live = 0, nblocked = 0;
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (ep < 0)
		die("epoll_create1", errno);
	for (unsigned i = 0; i < w->n; i++) {
		struct epoll_event ev = {.events = EPOLLOUT | EPOLLET,
					 .data.u32 = i};

		if (epoll_ctl(ep, EPOLL_CTL_ADD, w->conns[i].fd, &ev) < 0)
			die("epoll_ctl", errno);
		live += !load_conn_done(&w->conns[i]);
	}

	while (live) {
		int n;

		for (unsigned i = 0; i < w->n; i++) {
			struct load_conn *c = &w->conns[i];

			if (c->blocked || load_conn_done(c))
				continue;
			if (!load_send(w, c)) {
				c->blocked = true;
				nblocked++;
			} else if (load_conn_done(c)) {
				live--;
			}
		}
		if (!nblocked)
			continue;

		n = epoll_wait(ep, evs, EPOLL_EVENTS, nblocked == live ? -1 : 0);

		if (n < 0 && errno != EINTR)
			die("epoll_wait", errno);
		for (int i = 0; i < n; i++) {
			struct load_conn *c = &w->conns[evs[i].data.u32];

			if (c->blocked) {
				c->blocked = false;
				nblocked--;
			}
		}
	}
	close(ep);
}

static void *
load_worker_run(void *arg)
{
	struct load_worker *w = arg;

	if (w->n == 1 && w->o->splice)
		load_spliced(w);
	else if (w->n == 1)
		load_blocking(w);
	else if (w->n > 1)
		load_multiplexed(w);
	return NULL;
}

static int
connect_loopback(uint16_t port)
{
	struct sockaddr_in a = loopback_addr(port);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket", errno);
	while (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		if (errno != EINTR)
			die("connect", errno);
	}
	return fd;
}

/*
 * Connect everything first, so the servers' accepting is over before the
 * first record is written; small writes go out at once (TCP_NODELAY), as
 * from independent clients.
 */
static void
load_connect(const struct load_opts *o, struct load_conn *conns)
{
	int one = 1;

	for (unsigned i = 0; i < o->conns; i++) {
		struct load_conn *c = &conns[i];

		c->fd = connect_loopback(o->port);
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->left = o->records / o->conns + (i < o->records % o->conns);
	}
}

static int
run_load(const struct load_opts *o)
{
	unsigned nthreads = o->threads < o->conns ? o->threads : o->conns;
	struct load_conn *conns = calloc(o->conns, sizeof(*conns));
	struct load_worker *ws = calloc(nthreads, sizeof(*ws));
	uint64_t writes = 0, start;
	unsigned first = 0;
	double secs;

	if (!conns || !ws)
		die("calloc", ENOMEM);
	load_fill_records(o->batch_hi);
	load_connect(o, conns);

	/* Contiguous shares; a worker with several goes non-blocking. */
	for (unsigned t = 0; t < nthreads; t++) {
		struct load_worker *w = &ws[t];

		w->o = o;
		w->conns = conns + first;
		w->n = o->conns / nthreads + (t < o->conns % nthreads);
		w->rng = (o->seed + 1) * 0x9e3779b97f4a7c15ull + t;
		first += w->n;
		for (unsigned i = 0; w->n > 1 && i < w->n; i++) {
			int on = 1;

			if (ioctl(w->conns[i].fd, FIONBIO, &on) < 0)
				die("FIONBIO", errno);
		}
	}

	start = now_ns();
	for (unsigned t = 0; t < nthreads; t++) {
		int err = pthread_create(&ws[t].thread, NULL, load_worker_run,
					 &ws[t]);

		if (err)
			die("pthread_create", err);
	}
	for (unsigned t = 0; t < nthreads; t++) {
		pthread_join(ws[t].thread, NULL);
		writes += ws[t].writes;
	}
	secs = (double)(now_ns() - start) / 1e9;

	printf("load conns=%u records=%llu writes=%llu seconds=%.6f "
	       "rate=%.0f cpu=%.6f\n",
	       o->conns, (unsigned long long)o->records,
	       (unsigned long long)writes, secs,
	       secs > 0 ? (double)o->records / secs : 0.0, cpu_seconds());
	for (unsigned i = 0; i < o->conns; i++)
		close(conns[i].fd);
	return 0;
}

static void
parse_batch(const char *s, struct load_opts *o)
{
	unsigned lo, hi;
	char tail;

	if (sscanf(s, "%u-%u%c", &lo, &hi, &tail) != 2 || !lo || hi < lo ||
	    hi > 1u << 20) {
		fprintf(stderr, "io_peers: --batch wants LO-HI records, "
			"1 <= LO <= HI, not '%s'\n", s);
		exit(2);
	}
	o->batch_lo = lo;
	o->batch_hi = hi;
}

static void
parse_load_opts(int argc, char **argv, struct load_opts *o)
{
	bool have_port = false;

	memset(o, 0, sizeof(*o));
	o->conns = 1;
	o->threads = 1;
	o->batch_lo = o->batch_hi = READ_BUF_SIZE / RECORD_SIZE;
	for (int i = 2; i < argc; i += 2) {
		const char *flag = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(flag, "--splice")) {
			o->splice = true;
			i--;
			continue;
		}
		if (!val) {
			fprintf(stderr, "io_peers: %s wants a value\n", flag);
			exit(2);
		}
		if (!strcmp(flag, "--port")) {
			uint64_t p = parse_u64(flag, val);

			if (!p || p > 65535) {
				fprintf(stderr, "io_peers: bad port %s\n", val);
				exit(2);
			}
			o->port = (uint16_t)p;
			have_port = true;
		} else if (!strcmp(flag, "--records")) {
			o->records = parse_u64(flag, val);
		} else if (!strcmp(flag, "--conns")) {
			o->conns = (unsigned)parse_u64(flag, val);
		} else if (!strcmp(flag, "--threads")) {
			o->threads = (unsigned)parse_u64(flag, val);
		} else if (!strcmp(flag, "--chunk")) {
			uint64_t b = parse_u64(flag, val);

			if (b < RECORD_SIZE || b % RECORD_SIZE ||
			    b > (1u << 20) * RECORD_SIZE) {
				fprintf(stderr, "io_peers: --chunk wants a "
					"multiple of %d bytes\n", RECORD_SIZE);
				exit(2);
			}
			o->batch_lo = o->batch_hi = (unsigned)(b / RECORD_SIZE);
		} else if (!strcmp(flag, "--batch")) {
			parse_batch(val, o);
		} else if (!strcmp(flag, "--seed")) {
			o->seed = parse_u64(flag, val);
		} else {
			fprintf(stderr, "io_peers: unknown flag %s\n", flag);
			exit(2);
		}
	}
	if (!have_port || !o->conns || !o->threads) {
		fprintf(stderr, "io_peers load: --port is required; --conns "
			"and --threads must be at least 1\n");
		exit(2);
	}
}

/* ---- idle: connections that send nothing ---- */

static int
run_idle(const struct server_opts *o)
{
	char buf[64];

	if (!o->port || !o->conns) {
		fprintf(stderr, "io_peers idle: --port and --conns are "
			"required\n");
		exit(2);
	}
	for (uint64_t i = 0; i < o->conns; i++)
		connect_loopback(o->port);
	printf("idle conns=%llu\n", (unsigned long long)o->conns);
	fflush(stdout);

	/* Hold them: the descriptors close when the process ends. */
	for (;;) {
		ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));

		if (n > 0 || (n < 0 && errno == EINTR))
			continue;
		return 0;
	}
}

/* ---- main ---- */

static _Noreturn void
usage(void)
{
	fputs("usage: io_peers read  [--port P] [--records N] [--conns N]\n"
	      "       io_peers epoll [--port P] [--records N] [--conns N] "
	      "[--threads T]\n"
	      "       io_peers load  --port P --records N [--conns C] "
	      "[--threads T]\n"
	      "                      [--chunk BYTES | --batch LO-HI] "
	      "[--seed S] [--splice]\n"
	      "       io_peers idle  --port P --conns N\n",
	      stderr);
	exit(2);
}

int
main(int argc, char **argv)
{
	struct server_opts so;
	struct load_opts lo;

	if (argc < 2)
		usage();
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();
	prog_impl = argv[1];

	if (!strcmp(argv[1], "read") || !strcmp(argv[1], "epoll")) {
		parse_server_opts(argc, argv, &so);
		tally.opts = so;
		if (!strcmp(argv[1], "read"))
			run_read_server(&so);
		return run_epoll_server(&so);
	}
	if (!strcmp(argv[1], "load")) {
		parse_load_opts(argc, argv, &lo);
		return run_load(&lo);
	}
	if (!strcmp(argv[1], "idle")) {
		parse_server_opts(argc, argv, &so);
		return run_idle(&so);
	}
	usage();
}
