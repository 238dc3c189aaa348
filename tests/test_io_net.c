/* SPDX-License-Identifier: MIT */
/*
 * Tests of io/'s sockets (io/net.h): echo round trips over TCP (IPv4 and
 * IPv6), Unix stream sockets (a path and an abstract name), UDP and Unix
 * datagram sockets; ten thousand connections open at once; half-close and
 * resets; cancellation and deadlines, raced against completions;
 * back-pressure; a processor's ring of receive buffers running dry and
 * recovering; datagram bursts and truncation; listener limits (max_conns,
 * running out of descriptors); name lookups; closing a socket or listener
 * under a task parked on it, which may run only after the close returned.
 *
 * Stream bytes are a pattern computed from their offset in the stream, and
 * datagram bytes from their datagram's number, so a byte lost, repeated or
 * moved anywhere is caught where it lands.  Cases that need something this
 * machine lacks (IPv6, a kernel behaviour) skip and say why.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sys/utsname.h>

#include <cmocka.h>
#include <liburing.h>

#include "core/chan.h"
#include "core/context.h"
#include "core/task.h"
#include "io/conn_internal.h"
#include "io/file.h"
#include "io/net.h"

#include "harness.h"

/*
 * Multishot receive and accept on rings of provided buffers, which every
 * socket here uses, came in Linux 6.0 (docs/io.md).  On an older kernel
 * every case is skipped, and the reason said once.
 */
static bool
kernel_has_multishot(char *why, size_t len)
{
	struct utsname u;
	int major = 0, minor = 0;

	if (uname(&u) || sscanf(u.release, "%d.%d", &major, &minor) != 2)
		return true;	/* unknown: let the cases say */
	if (major >= 6)
		return true;
	snprintf(why, len, "Linux %s lacks multishot receive (6.0)",
		 u.release);
	return false;
}

/* io.h documents this as the default receive buffer size. */
#define DEFAULT_BUF_SIZE 4096

#define MSEC SL_NSEC_PER_MSEC

/* ---- shared helpers ---- */

static inline uint8_t
pattern_byte(uint32_t seed, uint64_t off)
{
	uint64_t x = (off + 1) * 0x9e3779b97f4a7c15ull + seed;

	x ^= x >> 29;
	return (uint8_t)(x ^ x >> 47);
}

static void
pattern_fill(void *buf, uint32_t seed, uint64_t off, size_t len)
{
	uint8_t *b = buf;

	for (size_t i = 0; i < len; i++)
		b[i] = pattern_byte(seed, off + i);
}

/* Whether @buf holds stream @seed's bytes from @off; the first wrong byte
 * is reported as a failed check at the caller's line. */
#define CHECK_PATTERN(buf, seed, off, len)                                     \
	pattern_check((buf), (seed), (off), (len), __FILE__, __LINE__)

static bool
pattern_check(const void *buf, uint32_t seed, uint64_t off, size_t len,
	      const char *file, int line)
{
	const uint8_t *b = buf;

	for (size_t i = 0; i < len; i++) {
		uint8_t want = pattern_byte(seed, off + i);

		if (b[i] != want) {
			harness_fail(file, line,
				     "stream %u, byte %llu: got %#x, want %#x",
				     seed, (unsigned long long)(off + i), b[i],
				     want);
			return false;
		}
	}
	return true;
}

static uint64_t
io_bufs_in_use(void)
{
	struct sl_io_stats st;

	sl_io_stats_get(&st);
	return st.bufs_in_use;
}

/* Receive exactly @len bytes; returns @len, or what sl_conn_recv()
 * returned when the stream ended or failed first. */
static ssize_t
recv_full(struct sl_context *ctx, struct sl_conn *c, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = sl_conn_recv(ctx, c, (char *)buf + got, len - got);

		if (n <= 0)
			return n;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/*
 * Read @c to its end, checking every byte against stream @seed from
 * offset 0.  Returns the byte count; *@end gets the last result (0 at a
 * clean end).  A wrong byte is reported once and reading goes on, so the
 * sender is never left blocked.
 */
static uint64_t
drain_checked(struct sl_conn *c, uint32_t seed, int *end)
{
	size_t cap = 65536;
	char *buf = malloc(cap);
	uint64_t got = 0;
	bool ok = true;
	ssize_t n;

	CHECK(buf != NULL);
	if (!buf)
		return 0;
	while ((n = sl_conn_recv(NULL, c, buf, cap)) > 0) {
		if (ok)
			ok = CHECK_PATTERN(buf, seed, got, (size_t)n);
		got += (uint64_t)n;
	}
	*end = (int)n;
	free(buf);
	return got;
}

/* The calling task's start options: a name for the dump, maybe a pin. */
static struct sl_task *
spawn_named(sl_task_fn fn, void *arg, const char *name, int proc,
	    bool pinned)
{
	struct sl_task_opts o = {.name = name, .proc = proc, .pinned = pinned};
	struct sl_task *t = NULL;
	int rc = sl_task_spawn(fn, arg, &o, &t);

	if (rc)
		harness_fail(__FILE__, __LINE__, "spawn %s: %s", name,
			     sl_strerror(rc));
	return t;
}

/*
 * Park until the task named @name is parked on @reason, as the task dump
 * shows it.  This is how a test knows that a call has really reached the
 * point it means to interrupt, without guessing with a sleep.
 */
static bool
wait_until_parked(const char *name, const char *reason)
{
	uint64_t give_up = sl_now_ns() + 20 * SL_NSEC_PER_SEC;
	char needle[160];

	snprintf(needle, sizeof(needle), "\"%s\" waiting on=\"%s\"", name,
		 reason);
	while (sl_now_ns() < give_up) {
		char *text = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&text, &len);
		bool found;

		if (!f)
			break;
		sl_runtime_dump_tasks(f);
		fclose(f);
		found = text && strstr(text, needle);
		free(text);
		if (found)
			return true;
		sl_task_sleep(MSEC / 2);
	}
	harness_fail(__FILE__, __LINE__, "task %s never parked on \"%s\"",
		     name, reason);
	return false;
}

/* A listener and a connection to it, from both ends. */
struct pair {
	struct sl_listener *l;
	struct sl_conn *srv;	/* the accepted end */
	struct sl_conn *cli;	/* the connecting end */
};

static bool
pair_open(struct pair *p, const char *addr, const struct sl_sock_opts *srv,
	  const struct sl_sock_opts *cli)
{
	struct sl_listen_opts lo;
	struct sl_addr a;
	char text[128];

	memset(p, 0, sizeof(*p));
	sl_listen_opts_default(&lo);
	if (srv)
		lo.conn = *srv;
	CHECK_ERR_EQ(sl_listen(addr, &lo, &p->l), 0);
	if (!p->l)
		return false;
	sl_listener_addr(p->l, &a);
	CHECK_ERR_EQ(sl_connect(NULL, sl_addr_format(&a, text, sizeof(text)),
				cli, &p->cli),
		     0);
	if (!p->cli)
		return false;
	CHECK_ERR_EQ(sl_listener_accept(NULL, p->l, &p->srv), 0);
	return p->srv != NULL;
}

static void
pair_close(struct pair *p)
{
	sl_conn_close(p->cli);
	sl_conn_close(p->srv);
	sl_listener_close(p->l);
	memset(p, 0, sizeof(*p));
}

/* Socket options with small kernel buffers, so a peer that does not read
 * makes the sender block after a few kilobytes. */
static struct sl_sock_opts
small_buffers(void)
{
	struct sl_sock_opts o;

	sl_sock_opts_default(&o);
	o.sndbuf = 4096;
	o.rcvbuf = 4096;
	return o;
}

/* Fill-until-blocked sends: the chunk, and where to stop believing that a
 * peer which reads nothing will ever block the sender. */
#define FILL_CHUNK (16 * 1024)
#define FILL_LIMIT (64ull << 20)

/*
 * Send stream @seed in FILL_CHUNK pieces to a peer that does not read,
 * until a send fails, as one must once the socket buffers are full.
 * *@sent counts the bytes of the sends that succeeded, *@attempted those
 * handed to the kernel (the failed send may have moved some).
 */
static int
send_until_blocked(struct sl_context *ctx, struct sl_conn *c, uint32_t seed,
		   uint64_t *sent, uint64_t *attempted)
{
	char *buf = malloc(FILL_CHUNK);
	ssize_t n = 0;

	CHECK(buf != NULL);
	if (!buf)
		return -ENOMEM;
	while (*attempted < FILL_LIMIT) {
		pattern_fill(buf, seed, *attempted, FILL_CHUNK);
		n = sl_conn_send(ctx, c, buf, FILL_CHUNK);
		*attempted += FILL_CHUNK;
		if (n < 0)
			break;
		CHECK_INT_EQ(n, FILL_CHUNK);
		*sent += (uint64_t)n;
	}
	free(buf);
	if (n >= 0)
		harness_fail(__FILE__, __LINE__,
			     "%llu bytes went to a peer that reads nothing "
			     "and the sender never blocked",
			     (unsigned long long)*attempted);
	return (int)n;
}

static void
set_linger_zero(struct sl_conn *c)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};

	CHECK_INT_EQ(setsockopt(sl_conn_fd(c), SOL_SOCKET, SO_LINGER, &lg,
				sizeof(lg)),
		     0);
}

/* ---- 1. echo round trips over every kind of stream socket ---- */

#define ECHO_SEED 11
#define ECHO_ROUNDS 2

static const size_t echo_sizes[] = {1,	   2,	  7,	 100,	1000,
				    4095,  4096,  4097,	 10000, 65536,
				    65537, 300000};

struct stream_echo {
	char addr[128];
	struct sl_listener *l;
	struct sl_conn *cli;
	uint64_t echoed;	/* bytes the server sent back */
	uint64_t received;	/* bytes the client got back, all checked */
	int server_end;		/* the server's last peek: 0 at the end */
	int client_end;
	uint64_t bufs_after;
};

static uint64_t
echo_stream_total(void)
{
	uint64_t total = 0;

	for (size_t i = 0; i < SL_ARRAY_SIZE(echo_sizes); i++)
		total += echo_sizes[i];
	return total * ECHO_ROUNDS;
}

/* The server echoes straight from the received buffers (peek/consume). */
static void
echo_stream_server(void *arg)
{
	struct stream_echo *e = arg;
	struct sl_conn *c = NULL;
	struct sl_iobuf b;
	int r;

	CHECK_ERR_EQ(sl_listener_accept(NULL, e->l, &c), 0);
	if (!c)
		return;
	while ((r = sl_conn_peek(NULL, c, &b)) == 1) {
		CHECK_INT_EQ(sl_conn_send(NULL, c, b.data, b.len), b.len);
		e->echoed += b.len;
		sl_conn_consume(c, b.len);
	}
	e->server_end = r;
	sl_conn_close(c);
}

/* One message by one of the three ways to send. */
static ssize_t
send_by(struct sl_conn *c, const char *buf, size_t len, unsigned how)
{
	struct iovec iov[3];

	switch (how % 3) {
	case 0:
		return sl_conn_send(NULL, c, buf, len);
	case 1:
		iov[0] = (struct iovec){(void *)(uintptr_t)buf, len / 3};
		iov[1] = (struct iovec){(void *)(uintptr_t)(buf + len / 3),
					len / 3};
		iov[2] = (struct iovec){
			(void *)(uintptr_t)(buf + 2 * (len / 3)),
			len - 2 * (len / 3)};
		return sl_conn_sendv(NULL, c, iov, 3);
	default:
		return sl_conn_send_zc(NULL, c, buf, len);
	}
}

static void
echo_stream_writer(void *arg)
{
	struct stream_echo *e = arg;
	char *buf = malloc(300000);
	uint64_t off = 0;
	unsigned how = 0;

	CHECK(buf != NULL);
	if (!buf)
		return;
	for (int round = 0; round < ECHO_ROUNDS; round++) {
		for (size_t i = 0; i < SL_ARRAY_SIZE(echo_sizes); i++) {
			size_t len = echo_sizes[i];

			pattern_fill(buf, ECHO_SEED, off, len);
			CHECK_INT_EQ(send_by(e->cli, buf, len, how++), len);
			off += len;
		}
	}
	CHECK_ERR_EQ(sl_conn_shutdown(NULL, e->cli, SHUT_WR), 0);
	free(buf);
}

static void
echo_stream_reader(void *arg)
{
	struct stream_echo *e = arg;

	e->received = drain_checked(e->cli, ECHO_SEED, &e->client_end);
}

static void
echo_stream_main(void *arg)
{
	struct stream_echo *e = arg;
	struct sl_task *srv, *wr, *rd;
	struct sl_addr a;
	char text[128];

	CHECK_ERR_EQ(sl_listen(e->addr, NULL, &e->l), 0);
	if (!e->l)
		return;
	sl_listener_addr(e->l, &a);
	srv = harness_spawn(echo_stream_server, e, -1);
	CHECK_ERR_EQ(sl_connect(NULL, sl_addr_format(&a, text, sizeof(text)),
				NULL, &e->cli),
		     0);
	if (!e->cli)
		return;
	wr = harness_spawn(echo_stream_writer, e, 0);
	rd = harness_spawn(echo_stream_reader, e, 1);
	harness_join(wr);
	harness_join(rd);
	harness_join(srv);
	sl_conn_close(e->cli);
	sl_listener_close(e->l);
	e->bufs_after = io_bufs_in_use();
}

static void
run_stream_echo(const char *addr)
{
	struct stream_echo e;

	memset(&e, 0, sizeof(e));
	snprintf(e.addr, sizeof(e.addr), "%s", addr);
	harness_run(2, echo_stream_main, &e);
	assert_int_equal(e.echoed, echo_stream_total());
	assert_int_equal(e.received, echo_stream_total());
	assert_int_equal(e.server_end, 0);
	assert_int_equal(e.client_end, 0);
	assert_int_equal(e.bufs_after, 0);
}

/* Whether ::1 can be bound here; says why not when it cannot. */
static bool
ipv6_loopback_usable(int type)
{
	struct sockaddr_in6 a = {.sin6_family = AF_INET6,
				 .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	int fd = socket(AF_INET6, type | SOCK_CLOEXEC, 0);
	bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;

	if (!ok)
		print_message("IPv6 loopback unavailable (%s): skipped\n",
			      strerror(errno));
	if (fd >= 0)
		close(fd);
	return ok;
}

static void
test_io_net_echo_tcp4(void **state)
{
	(void)state;
	run_stream_echo("127.0.0.1:0");
}

static void
test_io_net_echo_tcp6(void **state)
{
	(void)state;
	if (!ipv6_loopback_usable(SOCK_STREAM))
		skip();
	run_stream_echo("[::1]:0");
}

static void
test_io_net_echo_unix_path(void **state)
{
	char addr[128];

	(void)state;
	snprintf(addr, sizeof(addr), "unix:/tmp/sluice-test-net-%d.sock",
		 (int)getpid());
	run_stream_echo(addr);
	/* The listener removes its socket file when it closes. */
	assert_int_equal(access(addr + 5, F_OK), -1);
}

static void
test_io_net_echo_unix_abstract(void **state)
{
	char addr[128];

	(void)state;
	snprintf(addr, sizeof(addr), "@sluice-test-net-%d", (int)getpid());
	run_stream_echo(addr);
}

/* ---- 1. echo round trips over datagram sockets ---- */

#define DGRAM_ECHOES 300

static const size_t dgram_sizes[] = {0, 1, 2, 100, 512, 1200, 1472, 2000,
				     3000};

struct dgram_echo {
	char srv_addr[128];
	char cli_addr[128];	/* "" for an unbound UDP client */
	int family;
	struct sl_dgram *srv;
	unsigned echoed;
	unsigned checked;
	struct sl_dgram_stats srv_st, cli_st;
	uint64_t bufs_after;
};

static void
dgram_echo_server(void *arg)
{
	struct dgram_echo *e = arg;

	for (unsigned i = 0; i < DGRAM_ECHOES; i++) {
		struct sl_datagram dg;
		int r = sl_dgram_recv(NULL, e->srv, &dg);

		CHECK_ERR_EQ(r, 0);
		if (r)
			return;
		CHECK(!dg.truncated);
		CHECK_INT_EQ(sl_dgram_send(NULL, e->srv, dg.data, dg.len,
					   &dg.from),
			     dg.len);
		sl_dgram_release(e->srv, &dg);
		e->echoed++;
	}
}

/* One datagram there and back; every byte and the sender checked. */
static void
dgram_echo_once(struct dgram_echo *e, struct sl_dgram *cli,
		const struct sl_addr *srv, unsigned i, char *buf)
{
	size_t len = dgram_sizes[i % SL_ARRAY_SIZE(dgram_sizes)];
	struct sl_datagram dg;
	char want[128], got[128];
	int r;

	pattern_fill(buf, i, 0, len);
	CHECK_INT_EQ(sl_dgram_send(NULL, cli, buf, len, srv), len);
	r = sl_dgram_recv(NULL, cli, &dg);
	CHECK_ERR_EQ(r, 0);
	if (r)
		return;
	CHECK_UINT_EQ(dg.len, len);
	CHECK(!dg.truncated);
	sl_addr_format(srv, want, sizeof(want));
	sl_addr_format(&dg.from, got, sizeof(got));
	if (strcmp(want, got))
		harness_fail(__FILE__, __LINE__, "reply from %s, not %s", got,
			     want);
	if (dg.len == len && CHECK_PATTERN(dg.data, i, 0, len))
		e->checked++;
	sl_dgram_release(cli, &dg);
}

static void
dgram_echo_main(void *arg)
{
	struct dgram_echo *e = arg;
	struct sl_dgram *cli = NULL;
	struct sl_addr srv;
	struct sl_task *t;
	char *buf = malloc(4096);

	CHECK_ERR_EQ(sl_dgram_open(e->srv_addr, 0, NULL, &e->srv), 0);
	CHECK_ERR_EQ(sl_dgram_open(e->cli_addr[0] ? e->cli_addr : NULL,
				   e->family, NULL, &cli),
		     0);
	if (!e->srv || !cli || !buf)
		return;
	sl_dgram_addr(e->srv, &srv);
	t = harness_spawn(dgram_echo_server, e, 1);
	for (unsigned i = 0; i < DGRAM_ECHOES; i++)
		dgram_echo_once(e, cli, &srv, i, buf);
	harness_join(t);
	sl_dgram_stats_get(e->srv, &e->srv_st);
	sl_dgram_stats_get(cli, &e->cli_st);
	sl_dgram_close(cli);
	sl_dgram_close(e->srv);
	free(buf);
	e->bufs_after = io_bufs_in_use();
}

static void
run_dgram_echo(const char *srv, const char *cli, int family)
{
	struct dgram_echo e;

	memset(&e, 0, sizeof(e));
	snprintf(e.srv_addr, sizeof(e.srv_addr), "%s", srv);
	snprintf(e.cli_addr, sizeof(e.cli_addr), "%s", cli ? cli : "");
	e.family = family;
	harness_run(2, dgram_echo_main, &e);
	assert_int_equal(e.echoed, DGRAM_ECHOES);
	assert_int_equal(e.checked, DGRAM_ECHOES);
	assert_int_equal(e.srv_st.received, DGRAM_ECHOES);
	assert_int_equal(e.srv_st.sent, DGRAM_ECHOES);
	assert_int_equal(e.cli_st.received, DGRAM_ECHOES);
	assert_int_equal(e.cli_st.sent, DGRAM_ECHOES);
	assert_int_equal(e.srv_st.dropped + e.cli_st.dropped, 0);
	assert_int_equal(e.srv_st.truncated + e.cli_st.truncated, 0);
	assert_int_equal(e.bufs_after, 0);
}

static void
test_io_net_echo_udp4(void **state)
{
	(void)state;
	run_dgram_echo("127.0.0.1:0", NULL, AF_INET);
}

static void
test_io_net_echo_udp6(void **state)
{
	(void)state;
	if (!ipv6_loopback_usable(SOCK_DGRAM))
		skip();
	run_dgram_echo("[::1]:0", NULL, AF_INET6);
}

static void
test_io_net_echo_unix_dgram(void **state)
{
	char srv[128], cli[128];

	(void)state;
	snprintf(srv, sizeof(srv), "unix:/tmp/sluice-test-net-dg-%d.sock",
		 (int)getpid());
	snprintf(cli, sizeof(cli), "@sluice-test-net-dg-%d", (int)getpid());
	run_dgram_echo(srv, cli, AF_UNIX);
}

/*
 * Sending to a Unix datagram socket whose queue is full: the kernel can
 * neither take the datagram nor drop it, so a send must wait until the
 * reader makes room (or its context ends), never report success for a
 * datagram that went nowhere.  Fill the receiver with nobody reading until
 * a send's short deadline passes, then read everything: every datagram a
 * send reported is there, in order, and nothing else.
 */
#define DGRAM_FULL_LEN 1000
#define DGRAM_FULL_MAX 100000

struct dgram_full {
	char srv_addr[128], cli_addr[128];
	uint32_t sent;		/* sends that reported success */
	int stop_err;		/* the send that did not */
	uint32_t received, in_order;
	int late_send;		/* a send once there is room again */
	struct sl_dgram_stats cli_st;
};

static void
dgram_full_main(void *arg)
{
	struct dgram_full *f = arg;
	struct sl_dgram_opts o = {.rcvbuf = 4096, .max_queued = 16};
	struct sl_dgram *srv = NULL, *cli = NULL;
	struct sl_addr to;
	char buf[DGRAM_FULL_LEN];

	CHECK_ERR_EQ(sl_dgram_open(f->srv_addr, 0, &o, &srv), 0);
	CHECK_ERR_EQ(sl_dgram_open(f->cli_addr, 0, NULL, &cli), 0);
	if (!srv || !cli)
		return;
	sl_dgram_addr(srv, &to);

	while (f->sent < DGRAM_FULL_MAX) {
		struct sl_context *ctx = NULL;
		ssize_t r;

		CHECK_ERR_EQ(sl_context_with_timeout(sl_context_background(),
						     100 * 1000 * 1000, &ctx),
			     0);
		if (!ctx)
			break;
		memcpy(buf, &f->sent, sizeof(f->sent));
		r = sl_dgram_send(ctx, cli, buf, sizeof(buf), &to);
		sl_context_release(ctx);
		if (r != (ssize_t)sizeof(buf)) {
			f->stop_err = (int)r;
			break;
		}
		f->sent++;
	}

	while (f->received < f->sent) {
		struct sl_datagram dg;
		uint32_t seq;
		int r = sl_dgram_recv(NULL, srv, &dg);

		CHECK_ERR_EQ(r, 0);
		if (r)
			break;
		memcpy(&seq, dg.data, sizeof(seq));
		f->in_order += dg.len == DGRAM_FULL_LEN && seq == f->received;
		f->received++;
		sl_dgram_release(srv, &dg);
	}
	f->late_send = (int)sl_dgram_send(NULL, cli, buf, 10, &to);
	sl_dgram_stats_get(cli, &f->cli_st);
	sl_dgram_close(cli);
	sl_dgram_close(srv);
}

static void
test_io_net_dgram_send_to_full_unix(void **state)
{
	struct dgram_full f;

	(void)state;
	memset(&f, 0, sizeof(f));
	snprintf(f.srv_addr, sizeof(f.srv_addr),
		 "unix:/tmp/sluice-test-net-full-%d.sock", (int)getpid());
	snprintf(f.cli_addr, sizeof(f.cli_addr), "@sluice-test-net-full-%d",
		 (int)getpid());
	harness_run(2, dgram_full_main, &f);
	assert_int_equal(f.stop_err, -ETIMEDOUT);
	assert_true(f.sent > 0);
	assert_int_equal(f.received, f.sent);
	assert_int_equal(f.in_order, f.sent);
	assert_int_equal(f.late_send, 10);
	assert_int_equal(f.cli_st.sent, f.sent + 1);
	assert_int_equal(f.cli_st.send_errors, 1);
}

/*
 * Bulk streams received in bundles: where the kernel can fill several
 * buffers in one receive (Linux 6.10), each completion names only the
 * first, and the rest are found by their places in the buffer ring.  Two
 * connections share the processor's ring, read at different paces, and a
 * third holds one buffer at a time for a while, so that buffers go back
 * out of order and the ring's order is shuffled.  Every
 * byte of 4 MiB each, sent in 256 KiB pieces, must arrive in order; the
 * statistics must show bundles on such a kernel; and every buffer must be
 * back once all is closed.
 */
#define BULK_BYTES (4u << 20)
#define BULK_PIECE (256u << 10)

struct bulk_stream {
	struct sl_conn *srv, *cli;
	uint32_t seed;
	size_t chunk;		/* the reader's receive size */
	uint64_t got;
	int end;
};

struct bulk {
	struct bulk_stream s[2];
	unsigned held;		/* buffers held a while by the third */
	uint64_t bundles;
	uint64_t bufs_after;
};

static void
bulk_reader(void *arg)
{
	struct bulk_stream *s = arg;
	char *buf = malloc(s->chunk);
	bool ok = true;
	ssize_t n;

	CHECK(buf != NULL);
	if (!buf)
		return;
	while ((n = sl_conn_recv(NULL, s->srv, buf, s->chunk)) > 0) {
		if (ok)
			ok = CHECK_PATTERN(buf, s->seed, s->got, (size_t)n);
		s->got += (uint64_t)n;
	}
	s->end = (int)n;
	free(buf);
}

static void
bulk_main(void *arg)
{
	struct bulk *b = arg;
	struct sl_listener *l = NULL;
	struct sl_io_stats before, after;
	struct sl_conn *hold_cli = NULL, *hold_srv = NULL;
	struct sl_iobuf held;
	bool holding = false;
	struct sl_task *t[2];
	struct sl_addr a;
	char addr[64];
	char *piece = malloc(BULK_PIECE);

	CHECK_ERR_EQ(sl_listen("127.0.0.1:0", NULL, &l), 0);
	if (!l || !piece)
		return;
	sl_listener_addr(l, &a);
	sl_addr_format(&a, addr, sizeof(addr));
	for (int i = 0; i < 2; i++) {
		struct bulk_stream *s = &b->s[i];

		CHECK_ERR_EQ(sl_connect(NULL, addr, NULL, &s->cli), 0);
		CHECK_ERR_EQ(sl_listener_accept(NULL, l, &s->srv), 0);
		if (!s->cli || !s->srv)
			return;
		s->seed = 21 + (uint32_t)i;
		s->chunk = i ? 1000 : 65536;
	}
	CHECK_ERR_EQ(sl_connect(NULL, addr, NULL, &hold_cli), 0);
	CHECK_ERR_EQ(sl_listener_accept(NULL, l, &hold_srv), 0);
	if (!hold_cli || !hold_srv)
		return;
	sl_io_stats_get(&before);
	for (int i = 0; i < 2; i++)
		t[i] = harness_spawn(bulk_reader, &b->s[i], -1);
	for (uint64_t off = 0; off < BULK_BYTES; off += BULK_PIECE) {
		/* Every 1 MiB, let the held buffer go back and hold a new
		 * one: each goes back behind the buffers that passed it. */
		if (off % (1u << 20) == 0) {
			if (holding)
				sl_conn_consume(hold_srv, held.len);
			CHECK_INT_EQ(sl_conn_send(NULL, hold_cli, "h", 1), 1);
			CHECK_INT_EQ(sl_conn_peek(NULL, hold_srv, &held), 1);
			holding = held.len == 1;
			b->held += holding;
		}
		for (int i = 0; i < 2; i++) {
			struct bulk_stream *s = &b->s[i];

			pattern_fill(piece, s->seed, off, BULK_PIECE);
			CHECK_INT_EQ(sl_conn_send(NULL, s->cli, piece,
						  BULK_PIECE),
				     BULK_PIECE);
		}
	}
	for (int i = 0; i < 2; i++) {
		CHECK_ERR_EQ(sl_conn_shutdown(NULL, b->s[i].cli, SHUT_WR), 0);
		harness_join(t[i]);
	}
	if (holding)
		sl_conn_consume(hold_srv, held.len);
	sl_io_stats_get(&after);
	b->bundles = after.recv_bundles - before.recv_bundles;
	for (int i = 0; i < 2; i++) {
		sl_conn_close(b->s[i].srv);
		sl_conn_close(b->s[i].cli);
	}
	sl_conn_close(hold_srv);
	sl_conn_close(hold_cli);
	sl_listener_close(l);
	free(piece);
	b->bufs_after = io_bufs_in_use();
}

/* Whether this kernel fills several provided buffers per receive. */
static bool
kernel_has_recv_bundles(void)
{
	struct io_uring_params p;
	struct io_uring ring;

	memset(&p, 0, sizeof(p));
	if (io_uring_queue_init_params(4, &ring, &p) < 0)
		return false;
	io_uring_queue_exit(&ring);
	return (p.features & (1U << 14)) && !getenv("SLUICE_NO_RECV_BUNDLE");
}

static void
test_io_net_bulk_stream_bundled(void **state)
{
	struct bulk b;

	(void)state;
	memset(&b, 0, sizeof(b));
	harness_run(1, bulk_main, &b);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(b.s[i].got, BULK_BYTES);
		assert_int_equal(b.s[i].end, 0);
	}
	assert_int_equal(b.held, BULK_BYTES >> 20);
	assert_int_equal(b.bufs_after, 0);
	if (kernel_has_recv_bundles())
		assert_true(b.bundles > 0);
	else
		assert_int_equal(b.bundles, 0);
}

/*
 * A connection holds at most max_buffered bytes of receive buffers, even
 * where each receive could take far more at once (a bundle takes what the
 * socket holds): the receive is armed with the room left as its limit.
 * A slow reader takes 2 MiB one buffer at a time, looking at the buffers
 * in use each time; they never pass the limit (plus the one buffer the
 * rounding up to whole buffers allows).
 */
#define CAP_BYTES (2u << 20)
#define CAP_LIMIT (64u << 10)

struct cap_test {
	struct sl_conn *srv, *cli;
	uint64_t got;
	uint64_t max_in_use;
	int end;
};

static void
cap_sender(void *arg)
{
	struct cap_test *c = arg;
	char *buf = malloc(CAP_BYTES);

	CHECK(buf != NULL);
	if (!buf)
		return;
	pattern_fill(buf, 31, 0, CAP_BYTES);
	CHECK_INT_EQ(sl_conn_send(NULL, c->cli, buf, CAP_BYTES), CAP_BYTES);
	CHECK_ERR_EQ(sl_conn_shutdown(NULL, c->cli, SHUT_WR), 0);
	free(buf);
}

static void
cap_main(void *arg)
{
	struct cap_test *c = arg;
	struct sl_listen_opts lo;
	struct sl_listener *l = NULL;
	struct sl_iobuf b;
	struct sl_task *t;
	struct sl_addr a;
	char addr[64];
	int r;

	sl_listen_opts_default(&lo);
	lo.conn.max_buffered = CAP_LIMIT;
	CHECK_ERR_EQ(sl_listen("127.0.0.1:0", &lo, &l), 0);
	if (!l)
		return;
	sl_listener_addr(l, &a);
	sl_addr_format(&a, addr, sizeof(addr));
	CHECK_ERR_EQ(sl_connect(NULL, addr, NULL, &c->cli), 0);
	CHECK_ERR_EQ(sl_listener_accept(NULL, l, &c->srv), 0);
	if (!c->cli || !c->srv)
		return;
	t = harness_spawn(cap_sender, c, -1);
	while ((r = sl_conn_peek(NULL, c->srv, &b)) > 0) {
		uint64_t used = io_bufs_in_use();

		if (used > c->max_in_use)
			c->max_in_use = used;
		CHECK_PATTERN(b.data, 31, c->got, b.len);
		c->got += b.len;
		sl_conn_consume(c->srv, b.len);
		sl_task_yield();
	}
	c->end = r;
	harness_join(t);
	sl_conn_close(c->srv);
	sl_conn_close(c->cli);
	sl_listener_close(l);
}

static void
test_io_net_recv_capped_at_max_buffered(void **state)
{
	struct cap_test c;

	(void)state;
	memset(&c, 0, sizeof(c));
	harness_run(1, cap_main, &c);
	assert_int_equal(c.got, CAP_BYTES);
	assert_int_equal(c.end, 0);
	if (!sl__rx_caps_work())
		skip();
	assert_true(c.max_in_use > 0);
	assert_true(c.max_in_use <= CAP_LIMIT / 4096 + 1);
}

/* ---- 2. ten thousand connections at once ---- */

/*
 * MANY_CONNS connections open at once, served by io/: accepted over the
 * listener's per-processor sockets, each echoing one 8-byte number, all
 * still open when the listener is asked how many it has, then each read
 * to its end when the peer closes.  The clients are plain blocking
 * sockets in a child process, so each process needs one descriptor per
 * connection rather than two, which keeps the test within the usual hard
 * limit of descriptors.
 */
#define MANY_CONNS 10000
#define MANY_WORKERS 32
#define MANY_MAGIC 0x51ce000000000000ull
/* Descriptors the runtime, the sanitizers and cmocka may hold. */
#define MANY_SPARE_FDS 256

struct many {
	unsigned n;
	struct sl_listener *l;
	struct sl_conn **srv;
	int addr_fd;		/* to the child: the listener's address */
	int ready_fd;		/* from the child: every echo checked */
	int go_fd;		/* to the child: close everything */
	_Atomic unsigned next;
	_Atomic unsigned echoed;
	_Atomic unsigned ended;	/* connections read to a clean end */
	int ready_rc;
	struct sl_listener_stats all_open, all_closed;
	uint64_t bufs_after;
};

/* Accept connections in whatever order they come and echo 8 bytes. */
static void
many_server(void *arg)
{
	struct many *m = arg;

	for (;;) {
		unsigned i = atomic_fetch_add(&m->next, 1);
		struct sl_conn *c = NULL;
		uint64_t v = 0;

		if (i >= m->n)
			return;
		CHECK_ERR_EQ(sl_listener_accept(NULL, m->l, &c), 0);
		if (!c)
			return;
		m->srv[i] = c;
		CHECK_INT_EQ(recv_full(NULL, c, &v, sizeof(v)), sizeof(v));
		CHECK_UINT_EQ(v & ~0xffffffffull, MANY_MAGIC);
		CHECK_INT_EQ(sl_conn_send(NULL, c, &v, sizeof(v)), sizeof(v));
		atomic_fetch_add(&m->echoed, 1);
	}
}

struct many_worker {
	struct many *m;
	unsigned index;
};

/* Read every MANY_WORKERS-th connection to its end, then close it. */
static void
many_reader(void *arg)
{
	struct many_worker *w = arg;
	struct many *m = w->m;

	for (unsigned i = w->index; i < m->n; i += MANY_WORKERS) {
		char one;

		if (!m->srv[i])
			continue;
		if (sl_conn_recv(NULL, m->srv[i], &one, 1) == 0)
			atomic_fetch_add(&m->ended, 1);
		sl_conn_close(m->srv[i]);
		m->srv[i] = NULL;
	}
}

static void
many_run(sl_task_fn fn, void *arg, struct many_worker *w)
{
	struct sl_task *t[MANY_WORKERS];

	for (unsigned i = 0; i < MANY_WORKERS; i++)
		t[i] = harness_spawn(fn, w ? (void *)&w[i] : arg, (int)(i % 2));
	for (unsigned i = 0; i < MANY_WORKERS; i++)
		harness_join(t[i]);
}

static void
many_main(void *arg)
{
	struct many *m = arg;
	struct many_worker w[MANY_WORKERS];
	struct sl_listen_opts lo;
	struct sl_addr a;
	char ready = 0;

	sl_listen_opts_default(&lo);
	CHECK_ERR_EQ(sl_listen("127.0.0.1:0", &lo, &m->l), 0);
	if (!m->l)
		return;
	sl_listener_addr(m->l, &a);
	CHECK_INT_EQ(write(m->addr_fd, &a, sizeof(a)), sizeof(a));
	many_run(many_server, m, NULL);

	/* The child has checked every echo; all connections are open. */
	m->ready_rc = (int)sl_file_read(NULL, m->ready_fd, &ready, 1, -1);
	sl_listener_stats_get(m->l, &m->all_open);

	CHECK_INT_EQ(write(m->go_fd, "g", 1), 1);
	for (unsigned i = 0; i < MANY_WORKERS; i++)
		w[i] = (struct many_worker){.m = m, .index = i};
	many_run(many_reader, NULL, w);
	sl_listener_stats_get(m->l, &m->all_closed);
	sl_listener_close(m->l);
	m->bufs_after = io_bufs_in_use();
}

/* Read exactly @len bytes from a blocking descriptor. */
static bool
read_all(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, (char *)buf + got, len - got);

		if (n <= 0)
			return false;
		got += (size_t)n;
	}
	return true;
}

/*
 * The child: connect @n clients, send each its number, check each echo,
 * say so, wait for the word, close them all.  Its exit status says what
 * went wrong: 0 for nothing.
 */
static void __attribute__((noreturn))
many_child(unsigned n, int addr_fd, int ready_fd, int go_fd)
{
	int *fds = calloc(n, sizeof(*fds));
	struct sl_addr a;
	char go;

	if (!fds || !read_all(addr_fd, &a, sizeof(a)))
		_exit(10);
	for (unsigned i = 0; i < n; i++) {
		uint64_t v = MANY_MAGIC | i;

		fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fds[i] < 0)
			_exit(11);
		if (connect(fds[i], &a.u.sa, a.len))
			_exit(12);
		if (write(fds[i], &v, sizeof(v)) != sizeof(v))
			_exit(13);
	}
	for (unsigned i = 0; i < n; i++) {
		uint64_t v = 0;

		if (!read_all(fds[i], &v, sizeof(v)))
			_exit(14);
		if (v != (MANY_MAGIC | i))
			_exit(15);
	}
	if (write(ready_fd, "r", 1) != 1)
		_exit(16);
	if (read(go_fd, &go, 1) != 1)
		_exit(17);
	for (unsigned i = 0; i < n; i++)
		close(fds[i]);
	_exit(0);
}

/* Descriptors open now, as /proc/self/fd lists them. */
static unsigned
fds_open(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	unsigned n = 0;

	if (!d)
		return 64;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

/*
 * Let the process open @want more descriptors if it may, raising the soft
 * limit as far as the hard one (never the hard one itself).  Returns how
 * many more it may open.
 */
static unsigned
fds_allow(unsigned want)
{
	unsigned in_use = fds_open() + MANY_SPARE_FDS;
	rlim_t need = (rlim_t)in_use + want;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return 0;
	if (rl.rlim_cur < need) {
		rl.rlim_cur = rl.rlim_max < need ? rl.rlim_max : need;
		if (setrlimit(RLIMIT_NOFILE, &rl))
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur <= in_use)
		return 0;
	return rl.rlim_cur - in_use >= want ? want
					     : (unsigned)(rl.rlim_cur - in_use);
}

static void
test_io_net_many_connections(void **state)
{
	struct many m;
	struct rlimit before;
	unsigned allowed;
	int addr_p[2], ready_p[2], go_p[2], status = -1;
	pid_t child;

	(void)state;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &before), 0);
	allowed = fds_allow(MANY_CONNS);
	if (allowed < MANY_CONNS) {
		setrlimit(RLIMIT_NOFILE, &before);
		print_message("RLIMIT_NOFILE lets each process open only %u "
			      "more descriptors, not %u: skipped\n",
			      allowed, MANY_CONNS);
		skip();
	}
	memset(&m, 0, sizeof(m));
	m.n = MANY_CONNS;
	m.srv = calloc(m.n, sizeof(*m.srv));
	assert_non_null(m.srv);
	assert_int_equal(pipe2(addr_p, O_CLOEXEC), 0);
	assert_int_equal(pipe2(ready_p, O_CLOEXEC), 0);
	assert_int_equal(pipe2(go_p, O_CLOEXEC), 0);

	/* No runtime is running here, so the child is a plain process. */
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		close(addr_p[1]);
		close(ready_p[0]);
		close(go_p[1]);
		many_child(m.n, addr_p[0], ready_p[1], go_p[0]);
	}
	close(addr_p[0]);
	close(ready_p[1]);
	close(go_p[0]);
	m.addr_fd = addr_p[1];
	m.ready_fd = ready_p[0];
	m.go_fd = go_p[1];

	harness_run(2, many_main, &m);
	/* Closing the pipes ends the child even if the run went wrong. */
	close(m.addr_fd);
	close(m.go_fd);
	assert_int_equal(waitpid(child, &status, 0), child);
	close(m.ready_fd);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &before), 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(m.ready_rc, 1);
	assert_int_equal(atomic_load(&m.echoed), m.n);
	assert_int_equal(m.all_open.open, m.n);
	assert_int_equal(m.all_open.accepted, m.n);
	assert_int_equal(m.all_open.refused + m.all_open.emfile, 0);
	assert_int_equal(atomic_load(&m.ended), m.n);
	assert_int_equal(m.all_closed.open, 0);
	assert_int_equal(m.bufs_after, 0);
	free(m.srv);
}

/* ---- 3. half-close ---- */

#define HALF_REQUEST 100000
#define HALF_REPLY 50000

struct half_close {
	struct pair p;
	uint64_t srv_got;
	int srv_end[2];		/* the reads at and after the end */
	ssize_t reply_sent;
	ssize_t send_after_shutdown;
	uint64_t cli_got;
	int cli_end;
	uint64_t bufs_after;
};

static void
half_close_server(void *arg)
{
	struct half_close *h = arg;
	char *buf = malloc(HALF_REPLY);
	char one;

	h->srv_got = drain_checked(h->p.srv, 1, &h->srv_end[0]);
	h->srv_end[1] = (int)sl_conn_recv(NULL, h->p.srv, &one, 1);
	if (!buf)
		return;
	pattern_fill(buf, 2, 0, HALF_REPLY);
	h->reply_sent = sl_conn_send(NULL, h->p.srv, buf, HALF_REPLY);
	free(buf);
	CHECK_ERR_EQ(sl_conn_shutdown(NULL, h->p.srv, SHUT_WR), 0);
}

static void
half_close_main(void *arg)
{
	struct half_close *h = arg;
	char *buf = malloc(HALF_REQUEST);
	struct sl_task *t;

	if (!buf || !pair_open(&h->p, "127.0.0.1:0", NULL, NULL))
		goto out;
	t = harness_spawn(half_close_server, h, 1);
	pattern_fill(buf, 1, 0, HALF_REQUEST);
	CHECK_INT_EQ(sl_conn_send(NULL, h->p.cli, buf, HALF_REQUEST),
		     HALF_REQUEST);
	CHECK_ERR_EQ(sl_conn_shutdown(NULL, h->p.cli, SHUT_WR), 0);
	h->send_after_shutdown = sl_conn_send(NULL, h->p.cli, buf, 10);
	h->cli_got = drain_checked(h->p.cli, 2, &h->cli_end);
	harness_join(t);
out:
	pair_close(&h->p);
	free(buf);
	h->bufs_after = io_bufs_in_use();
}

static void
test_io_net_half_close(void **state)
{
	struct half_close h;

	(void)state;
	memset(&h, 0, sizeof(h));
	harness_run(2, half_close_main, &h);
	assert_int_equal(h.srv_got, HALF_REQUEST);
	assert_int_equal(h.srv_end[0], 0);
	assert_int_equal(h.srv_end[1], 0);
	assert_int_equal(h.send_after_shutdown, -EPIPE);
	assert_int_equal(h.reply_sent, HALF_REPLY);
	assert_int_equal(h.cli_got, HALF_REPLY);
	assert_int_equal(h.cli_end, 0);
	assert_int_equal(h.bufs_after, 0);
}

/* ---- 4. peer reset mid-stream ---- */

#define RESET_SENT (32 * 1024)
#define RESET_READ 1024
#define RESET_STREAM_READ (200 * 1024)

struct reset {
	struct pair p;
	int recv_rc[2];
	ssize_t send_rc;
	/* The second case: the peer resets while we keep sending. */
	uint64_t writer_sent;
	ssize_t writer_rc;
	ssize_t recv_after;
	uint64_t bufs_after;
};

/* The reader took some of what was sent, then resets the connection. */
static void
reset_recv_main(void *arg)
{
	struct reset *r = arg;
	char *buf = malloc(RESET_SENT);
	char got[RESET_READ];

	if (!buf || !pair_open(&r->p, "127.0.0.1:0", NULL, NULL))
		goto out;
	pattern_fill(buf, 4, 0, RESET_SENT);
	CHECK_INT_EQ(sl_conn_send(NULL, r->p.cli, buf, RESET_SENT),
		     RESET_SENT);
	CHECK_INT_EQ(recv_full(NULL, r->p.srv, got, RESET_READ), RESET_READ);
	CHECK_PATTERN(got, 4, 0, RESET_READ);

	set_linger_zero(r->p.srv);
	sl_conn_close(r->p.srv);
	r->p.srv = NULL;

	r->recv_rc[0] = (int)sl_conn_recv(NULL, r->p.cli, got, sizeof(got));
	r->recv_rc[1] = (int)sl_conn_recv(NULL, r->p.cli, got, sizeof(got));
	r->send_rc = sl_conn_send(NULL, r->p.cli, buf, 1000);
out:
	pair_close(&r->p);
	free(buf);
	r->bufs_after = io_bufs_in_use();
}

static void
test_io_net_reset_seen_by_recv(void **state)
{
	struct reset r;

	(void)state;
	memset(&r, 0, sizeof(r));
	harness_run(2, reset_recv_main, &r);
	assert_int_equal(r.recv_rc[0], -ECONNRESET);
	/* The socket's error stays (net.h: reported on every later call). */
	assert_int_equal(r.recv_rc[1], -ECONNRESET);
	if (r.send_rc != -EPIPE && r.send_rc != -ECONNRESET)
		fail_msg("send after a reset: %zd (%s)", r.send_rc,
			 sl_strerror((int)r.send_rc));
	assert_int_equal(r.bufs_after, 0);
}

static void
reset_writer(void *arg)
{
	struct reset *r = arg;
	char *buf = malloc(65536);
	ssize_t n;

	if (!buf)
		return;
	do {
		pattern_fill(buf, 5, r->writer_sent, 65536);
		n = sl_conn_send(NULL, r->p.cli, buf, 65536);
		if (n > 0)
			r->writer_sent += (uint64_t)n;
	} while (n > 0 && r->writer_sent < FILL_LIMIT);
	r->writer_rc = n;
	free(buf);
}

static void
reset_send_main(void *arg)
{
	struct reset *r = arg;
	char *buf = malloc(RESET_STREAM_READ);
	struct sl_task *t;
	char one;

	if (!buf || !pair_open(&r->p, "127.0.0.1:0", NULL, NULL))
		goto out;
	t = harness_spawn(reset_writer, r, 1);
	CHECK_INT_EQ(recv_full(NULL, r->p.srv, buf, RESET_STREAM_READ),
		     RESET_STREAM_READ);
	CHECK_PATTERN(buf, 5, 0, RESET_STREAM_READ);
	set_linger_zero(r->p.srv);
	sl_conn_close(r->p.srv);
	r->p.srv = NULL;
	harness_join(t);
	r->recv_after = sl_conn_recv(NULL, r->p.cli, &one, 1);
out:
	pair_close(&r->p);
	free(buf);
	r->bufs_after = io_bufs_in_use();
}

static void
test_io_net_reset_seen_by_send(void **state)
{
	struct reset r;

	(void)state;
	memset(&r, 0, sizeof(r));
	harness_run(2, reset_send_main, &r);
	if (r.writer_rc != -EPIPE && r.writer_rc != -ECONNRESET)
		fail_msg("send into a reset connection: %zd (%s) after %llu "
			 "bytes",
			 r.writer_rc, sl_strerror((int)r.writer_rc),
			 (unsigned long long)r.writer_sent);
	/* Whichever call saw the reset first took the socket's error. */
	if (r.recv_after != 0 && r.recv_after != -ECONNRESET)
		fail_msg("recv after a reset: %zd (%s)", r.recv_after,
			 sl_strerror((int)r.recv_after));
	assert_int_equal(r.bufs_after, 0);
}

/* ---- 5. cancellation ---- */

struct cancel_recv {
	struct pair p;
	struct sl_context *ctx;
	ssize_t parked_rc;
	int peek_rc;
	ssize_t after_rc;
	bool after_ok;
	uint64_t bufs_after;
};

static void
cancel_recv_reader(void *arg)
{
	struct cancel_recv *c = arg;
	char buf[256];
	struct sl_iobuf b;

	c->parked_rc = sl_conn_recv(c->ctx, c->p.cli, buf, sizeof(buf));
	/* An ended context fails at once, even with data queued. */
	c->peek_rc = sl_conn_peek(c->ctx, c->p.cli, &b);
	c->after_rc = recv_full(NULL, c->p.cli, buf, 100);
	c->after_ok = c->after_rc == 100 && CHECK_PATTERN(buf, 6, 0, 100);
}

static void
cancel_recv_main(void *arg)
{
	struct cancel_recv *c = arg;
	struct sl_task *t;
	char buf[100];

	if (!pair_open(&c->p, "127.0.0.1:0", NULL, NULL))
		goto out;
	CHECK_ERR_EQ(sl_context_with_cancel(sl_context_background(), &c->ctx),
		     0);
	t = spawn_named(cancel_recv_reader, c, "reader", 1, false);
	wait_until_parked("reader", "socket receive");
	sl_context_cancel(c->ctx);
	/* The connection is still good: what comes next is read whole. */
	pattern_fill(buf, 6, 0, sizeof(buf));
	CHECK_INT_EQ(sl_conn_send(NULL, c->p.srv, buf, sizeof(buf)),
		     sizeof(buf));
	harness_join(t);
	sl_context_release(c->ctx);
out:
	pair_close(&c->p);
	c->bufs_after = io_bufs_in_use();
}

static void
test_io_net_cancel_parked_recv(void **state)
{
	struct cancel_recv c;

	(void)state;
	memset(&c, 0, sizeof(c));
	harness_run(2, cancel_recv_main, &c);
	assert_int_equal(c.parked_rc, -ECANCELED);
	assert_int_equal(c.peek_rc, -ECANCELED);
	assert_int_equal(c.after_rc, 100);
	assert_true(c.after_ok);
	assert_int_equal(c.bufs_after, 0);
}

struct cancel_send {
	struct pair p;
	struct sl_context *ctx;
	uint64_t sent, attempted;
	int fill_rc;
	ssize_t cancel_rc;
	uint64_t cancels_before, cancels_after;
	uint64_t srv_got;
	int srv_end;
	ssize_t reply_rc;
	bool reply_ok;
	uint64_t bufs_after;
};

static void
cancel_send_canceller(void *arg)
{
	struct cancel_send *c = arg;

	wait_until_parked("main", "socket send");
	sl_context_cancel(c->ctx);
}

static uint64_t
io_cancels(void)
{
	struct sl_io_stats st;

	sl_io_stats_get(&st);
	return st.cancels;
}

static void
cancel_send_main(void *arg)
{
	struct cancel_send *c = arg;
	struct sl_sock_opts small = small_buffers();
	char *buf = malloc(FILL_CHUNK);
	struct sl_task *t;

	if (!buf || !pair_open(&c->p, "127.0.0.1:0", &small, &small))
		goto out;

	/* Fill the socket buffers: a send with a short deadline times out. */
	sl_conn_set_deadline(c->p.cli, SL_NO_DEADLINE, sl_now_ns() + 100 * MSEC);
	c->fill_rc = send_until_blocked(NULL, c->p.cli, 7, &c->sent,
					&c->attempted);
	sl_conn_set_deadline(c->p.cli, SL_NO_DEADLINE, SL_NO_DEADLINE);

	CHECK_ERR_EQ(sl_context_with_cancel(sl_context_background(), &c->ctx),
		     0);
	t = harness_spawn(cancel_send_canceller, c, 1);
	c->cancels_before = io_cancels();
	pattern_fill(buf, 7, c->attempted, FILL_CHUNK);
	c->cancel_rc = sl_conn_send(c->ctx, c->p.cli, buf, FILL_CHUNK);
	c->attempted += FILL_CHUNK;
	c->cancels_after = io_cancels();
	harness_join(t);
	sl_context_release(c->ctx);

	/* Still closable in one direction and usable in the other. */
	CHECK_ERR_EQ(sl_conn_shutdown(NULL, c->p.cli, SHUT_WR), 0);
	c->srv_got = drain_checked(c->p.srv, 7, &c->srv_end);
	pattern_fill(buf, 8, 0, 100);
	CHECK_INT_EQ(sl_conn_send(NULL, c->p.srv, buf, 100), 100);
	c->reply_rc = recv_full(NULL, c->p.cli, buf, 100);
	c->reply_ok = c->reply_rc == 100 && CHECK_PATTERN(buf, 8, 0, 100);
out:
	pair_close(&c->p);
	free(buf);
	c->bufs_after = io_bufs_in_use();
}

static void
test_io_net_cancel_blocked_send(void **state)
{
	struct cancel_send c;

	(void)state;
	memset(&c, 0, sizeof(c));
	harness_run(2, cancel_send_main, &c);
	assert_int_equal(c.fill_rc, -ETIMEDOUT);
	assert_int_equal(c.cancel_rc, -ECANCELED);
	/* The request was in the kernel: it took a cancel to end it. */
	assert_true(c.cancels_after > c.cancels_before);
	assert_int_equal(c.srv_end, 0);
	assert_in_range(c.srv_got, c.sent, c.attempted);
	assert_int_equal(c.reply_rc, 100);
	assert_true(c.reply_ok);
	assert_int_equal(c.bufs_after, 0);
}

/*
 * Cancels raced against arriving data.  Round by round the reader makes a
 * context and hands it to the writer, which sends the round's bytes and
 * cancels the context in one of four orders.  The reader reads the round
 * with that context; once it is cancelled it reads the rest without one.
 * Whatever the order, every byte must arrive once, in place.
 */
#define RACE_ROUNDS HARNESS_SCALE(4000, 600)

struct race_recv {
	struct pair p;
	struct sl_chan *ctxs;	/* reader -> writer: the context to cancel */
	struct sl_chan *acks;	/* writer -> reader: done with it */
	uint64_t expected, got;
	unsigned cancelled;	/* rounds whose first read was cancelled */
	unsigned data_first;	/* rounds whose first read got data */
	uint64_t bufs_after;
};

static size_t
race_len(unsigned round)
{
	return 1 + (round * 7919u) % 6000;
}

/* One read of at most @max bytes, by recv or by peek/consume. */
static ssize_t
race_read(struct sl_context *ctx, struct sl_conn *c, char *buf, size_t max,
	  unsigned round)
{
	struct sl_iobuf b;
	size_t n;
	int r;

	if (round % 2)
		return sl_conn_recv(ctx, c, buf, max);
	r = sl_conn_peek(ctx, c, &b);
	if (r <= 0)
		return r;
	n = b.len < max ? b.len : max;
	memcpy(buf, b.data, n);
	sl_conn_consume(c, n);
	return (ssize_t)n;
}

static void
race_recv_round(struct race_recv *r, unsigned round, char *buf)
{
	struct sl_context *ctx = NULL, *use;
	size_t len = race_len(round), done = 0;
	bool first = true;

	CHECK_ERR_EQ(sl_context_with_cancel(sl_context_background(), &ctx), 0);
	CHECK_ERR_EQ(sl_chan_send(r->ctxs, &ctx), 0);
	use = ctx;
	while (done < len) {
		ssize_t n = race_read(use, r->p.cli, buf, len - done, round);

		if (n == -ECANCELED && use) {
			r->cancelled += first;
			first = false;
			use = NULL;
			continue;
		}
		CHECK(n > 0);
		if (n <= 0)
			break;
		r->data_first += first;
		first = false;
		CHECK_PATTERN(buf, 9, r->got, (size_t)n);
		r->got += (uint64_t)n;
		done += (size_t)n;
	}
	CHECK_ERR_EQ(sl_chan_recv(r->acks, NULL), 0);
	sl_context_release(ctx);
}

static void
race_recv_reader(void *arg)
{
	struct race_recv *r = arg;
	char *buf = malloc(6000);

	if (!buf)
		return;
	for (unsigned round = 0; round < RACE_ROUNDS; round++)
		race_recv_round(r, round, buf);
	free(buf);
}

static void
race_recv_writer(void *arg)
{
	struct race_recv *r = arg;
	char *buf = malloc(6000);
	uint64_t off = 0;

	if (!buf)
		return;
	for (unsigned round = 0; round < RACE_ROUNDS; round++) {
		struct sl_context *ctx = NULL;
		size_t len = race_len(round);

		CHECK_ERR_EQ(sl_chan_recv(r->ctxs, &ctx), 0);
		pattern_fill(buf, 9, off, len);
		if (round % 4 == 0 || round % 4 == 3)
			sl_context_cancel(ctx);
		if (round % 4 == 3)
			sl_task_yield();
		CHECK_INT_EQ(sl_conn_send(NULL, r->p.srv, buf, len), len);
		if (round % 4 == 2)
			sl_task_yield();
		sl_context_cancel(ctx);
		CHECK_ERR_EQ(sl_chan_send(r->acks, &round), 0);
		off += len;
		r->expected += len;
	}
	free(buf);
}

static void
race_recv_main(void *arg)
{
	struct race_recv *r = arg;
	struct sl_task *rd, *wr;

	r->ctxs = sl_chan_create(sizeof(struct sl_context *), 1);
	r->acks = sl_chan_create(sizeof(unsigned), 1);
	if (!r->ctxs || !r->acks ||
	    !pair_open(&r->p, "127.0.0.1:0", NULL, NULL))
		goto out;
	rd = harness_spawn(race_recv_reader, r, 0);
	wr = harness_spawn(race_recv_writer, r, 1);
	harness_join(rd);
	harness_join(wr);
out:
	pair_close(&r->p);
	if (r->ctxs)
		sl_chan_destroy(r->ctxs);
	if (r->acks)
		sl_chan_destroy(r->acks);
	r->bufs_after = io_bufs_in_use();
}

static void
test_io_net_cancel_races_recv(void **state)
{
	struct race_recv r;

	(void)state;
	memset(&r, 0, sizeof(r));
	harness_run(2, race_recv_main, &r);
	print_message("%u rounds: first read cancelled in %u, data in %u\n",
		      RACE_ROUNDS, r.cancelled, r.data_first);
	assert_int_equal(r.got, r.expected);
	assert_int_equal(r.cancelled + r.data_first, RACE_ROUNDS);
	assert_true(r.cancelled > 0);
	assert_int_equal(r.bufs_after, 0);
}

/*
 * Cancels raced against a send that the peer is draining: the send either
 * finishes or fails with -ECANCELED, and the peer then reads a prefix of
 * the stream (all of it if the send finished), every byte in place.  The
 * cancel comes after a random wait of up to the quickest whole send seen
 * so far (measured first, and again on every round that finishes), so
 * both outcomes come up on a fast machine and under a sanitizer alike.
 */
#define SEND_RACE_ROUNDS HARNESS_SCALE(100, 40)
#define SEND_RACE_LEN (256 * 1024)

struct race_send {
	struct sl_listener *l;
	struct sl_conn *srv;
	struct sl_context *ctx;
	uint64_t delay_ns;
	uint64_t got;
	int end;
	uint64_t whole_ns;		/* the quickest whole send */
	unsigned finished, cancelled, other;
	uint64_t bufs_after;
};

static void
race_send_reader(void *arg)
{
	struct race_send *r = arg;

	r->got = drain_checked(r->srv, 10, &r->end);
}

static void
race_send_canceller(void *arg)
{
	struct race_send *r = arg;

	if (r->delay_ns)
		sl_task_sleep(r->delay_ns);
	sl_context_cancel(r->ctx);
}

/* One connection, one send under @ctx (if any); returns its result. */
static ssize_t
race_send_once(struct race_send *r, const char *addr, const char *buf,
	       struct sl_context *ctx)
{
	struct sl_sock_opts small = small_buffers();
	struct sl_conn *cli = NULL;
	struct sl_task *rd, *cn = NULL;
	uint64_t start;
	ssize_t n;

	CHECK_ERR_EQ(sl_connect(NULL, addr, &small, &cli), 0);
	CHECK_ERR_EQ(sl_listener_accept(NULL, r->l, &r->srv), 0);
	if (!cli || !r->srv)
		return -ENOTCONN;
	rd = harness_spawn(race_send_reader, r, 1);
	if (ctx)
		cn = harness_spawn(race_send_canceller, r, 1);
	start = sl_now_ns();
	n = sl_conn_send(ctx, cli, buf, SEND_RACE_LEN);
	if (n == SEND_RACE_LEN && sl_now_ns() - start < r->whole_ns)
		r->whole_ns = sl_now_ns() - start;
	CHECK_ERR_EQ(sl_conn_shutdown(NULL, cli, SHUT_WR), 0);
	if (cn)
		harness_join(cn);
	harness_join(rd);
	CHECK_INT_EQ(r->end, 0);
	CHECK(r->got <= SEND_RACE_LEN);
	if (n == SEND_RACE_LEN)
		CHECK_UINT_EQ(r->got, SEND_RACE_LEN);
	sl_conn_close(cli);
	sl_conn_close(r->srv);
	r->srv = NULL;
	return n;
}

static void
race_send_round(struct race_send *r, const char *addr, const char *buf,
		uint64_t *rng)
{
	ssize_t n;

	r->delay_ns = harness_random(rng) % (r->whole_ns + 1);
	CHECK_ERR_EQ(sl_context_with_cancel(sl_context_background(), &r->ctx),
		     0);
	if (!r->ctx)
		return;
	n = race_send_once(r, addr, buf, r->ctx);
	if (n == SEND_RACE_LEN) {
		r->finished++;
	} else if (n == -ECANCELED) {
		r->cancelled++;
	} else {
		harness_fail(__FILE__, __LINE__, "send: %zd (%s)", n,
			     sl_strerror((int)n));
		r->other++;
	}
	sl_context_release(r->ctx);
}

static void
race_send_main(void *arg)
{
	struct race_send *r = arg;
	char *buf = malloc(SEND_RACE_LEN);
	uint64_t rng = 10;
	struct sl_addr a;
	char addr[64];

	CHECK_ERR_EQ(sl_listen("127.0.0.1:0", NULL, &r->l), 0);
	if (!r->l || !buf)
		goto out;
	sl_listener_addr(r->l, &a);
	sl_addr_format(&a, addr, sizeof(addr));
	pattern_fill(buf, 10, 0, SEND_RACE_LEN);
	/* Three sends first, the first being slowed by cold caches. */
	r->whole_ns = UINT64_MAX;
	for (int i = 0; i < 3; i++)
		CHECK_INT_EQ(race_send_once(r, addr, buf, NULL), SEND_RACE_LEN);
	for (unsigned i = 0; i < SEND_RACE_ROUNDS; i++)
		race_send_round(r, addr, buf, &rng);
out:
	sl_listener_close(r->l);
	free(buf);
	r->bufs_after = io_bufs_in_use();
}

static void
test_io_net_cancel_races_send(void **state)
{
	struct race_send r;

	(void)state;
	memset(&r, 0, sizeof(r));
	harness_run(2, race_send_main, &r);
	print_message("%u rounds: send finished in %u, cancelled in %u "
		      "(one whole send took %llu us)\n",
		      SEND_RACE_ROUNDS, r.finished, r.cancelled,
		      (unsigned long long)(r.whole_ns / 1000));
	assert_int_equal(r.other, 0);
	assert_int_equal(r.finished + r.cancelled, SEND_RACE_ROUNDS);
	/* Both sides of the race won some rounds, or it was not raced. */
	assert_true(r.finished > 0);
	assert_true(r.cancelled > 0);
	assert_int_equal(r.bufs_after, 0);
}

/* ---- 6. deadlines ---- */

#define DEADLINE_NS (50 * MSEC)

struct deadlines {
	struct pair p;
	uint64_t deadline, woke;
	int first_rc, again_rc;
	ssize_t after_rc;
	bool after_ok;
	uint64_t sent, attempted;
	int ctx_err;
	uint64_t timeouts;
	uint64_t bufs_after;
};

static uint64_t
io_timeouts(void)
{
	struct sl_io_stats st;

	sl_io_stats_get(&st);
	return st.timeouts;
}

/* After a read timed out the connection still reads what comes later. */
static void
deadline_read_after(struct deadlines *d)
{
	char buf[100];

	pattern_fill(buf, 12, 0, sizeof(buf));
	CHECK_INT_EQ(sl_conn_send(NULL, d->p.srv, buf, sizeof(buf)),
		     sizeof(buf));
	memset(buf, 0, sizeof(buf));
	d->after_rc = recv_full(NULL, d->p.cli, buf, sizeof(buf));
	d->after_ok = d->after_rc == 100 && CHECK_PATTERN(buf, 12, 0, 100);
}

static void
deadline_read_main(void *arg)
{
	struct deadlines *d = arg;
	char buf[16];

	if (!pair_open(&d->p, "127.0.0.1:0", NULL, NULL))
		goto out;
	d->deadline = sl_now_ns() + DEADLINE_NS;
	sl_conn_set_deadline(d->p.cli, d->deadline, SL_NO_DEADLINE);
	d->first_rc = (int)sl_conn_recv(NULL, d->p.cli, buf, sizeof(buf));
	d->woke = sl_now_ns();
	d->again_rc = (int)sl_conn_recv(NULL, d->p.cli, buf, sizeof(buf));
	sl_conn_set_deadline(d->p.cli, SL_NO_DEADLINE, SL_NO_DEADLINE);
	deadline_read_after(d);
out:
	pair_close(&d->p);
	d->bufs_after = io_bufs_in_use();
}

static void
test_io_net_read_deadline(void **state)
{
	struct deadlines d;

	(void)state;
	memset(&d, 0, sizeof(d));
	harness_run(2, deadline_read_main, &d);
	assert_int_equal(d.first_rc, -ETIMEDOUT);
	assert_true(d.woke >= d.deadline);
	assert_int_equal(d.again_rc, -ETIMEDOUT);
	assert_int_equal(d.after_rc, 100);
	assert_true(d.after_ok);
	assert_int_equal(d.bufs_after, 0);
}

static void
deadline_write_main(void *arg)
{
	struct deadlines *d = arg;
	struct sl_sock_opts small = small_buffers();
	char buf[16] = {0};
	uint64_t before;

	if (!pair_open(&d->p, "127.0.0.1:0", &small, &small))
		goto out;
	before = io_timeouts();
	d->deadline = sl_now_ns() + DEADLINE_NS;
	sl_conn_set_deadline(d->p.cli, SL_NO_DEADLINE, d->deadline);
	d->first_rc = send_until_blocked(NULL, d->p.cli, 13, &d->sent,
					 &d->attempted);
	d->woke = sl_now_ns();
	d->again_rc = (int)sl_conn_send(NULL, d->p.cli, buf, sizeof(buf));
	d->timeouts = io_timeouts() - before;
out:
	pair_close(&d->p);
	d->bufs_after = io_bufs_in_use();
}

static void
test_io_net_write_deadline(void **state)
{
	struct deadlines d;

	(void)state;
	memset(&d, 0, sizeof(d));
	harness_run(2, deadline_write_main, &d);
	assert_int_equal(d.first_rc, -ETIMEDOUT);
	assert_true(d.woke >= d.deadline);
	assert_int_equal(d.again_rc, -ETIMEDOUT);
	/* The kernel ended the send: the linked timeout fired. */
	assert_true(d.timeouts >= 1);
	assert_int_equal(d.bufs_after, 0);
}

static void
ctx_timeout_recv_main(void *arg)
{
	struct deadlines *d = arg;
	struct sl_context *ctx = NULL;
	char buf[16];

	if (!pair_open(&d->p, "127.0.0.1:0", NULL, NULL))
		goto out;
	CHECK_ERR_EQ(sl_context_with_timeout(sl_context_background(),
					     DEADLINE_NS, &ctx),
		     0);
	if (!ctx)
		goto out;
	d->deadline = sl_context_deadline(ctx);
	d->first_rc = (int)sl_conn_recv(ctx, d->p.cli, buf, sizeof(buf));
	d->woke = sl_now_ns();
	d->ctx_err = sl_context_err(ctx);
	sl_context_release(ctx);
	deadline_read_after(d);
out:
	pair_close(&d->p);
	d->bufs_after = io_bufs_in_use();
}

static void
test_io_net_context_timeout_recv(void **state)
{
	struct deadlines d;

	(void)state;
	memset(&d, 0, sizeof(d));
	harness_run(2, ctx_timeout_recv_main, &d);
	assert_int_equal(d.first_rc, -ETIMEDOUT);
	assert_true(d.woke >= d.deadline);
	assert_int_equal(d.ctx_err, -ETIMEDOUT);
	assert_int_equal(d.after_rc, 100);
	assert_true(d.after_ok);
	assert_int_equal(d.bufs_after, 0);
}

static void
ctx_timeout_send_main(void *arg)
{
	struct deadlines *d = arg;
	struct sl_sock_opts small = small_buffers();
	struct sl_context *ctx = NULL;

	if (!pair_open(&d->p, "127.0.0.1:0", &small, &small))
		goto out;
	CHECK_ERR_EQ(sl_context_with_timeout(sl_context_background(),
					     DEADLINE_NS, &ctx),
		     0);
	if (!ctx)
		goto out;
	d->deadline = sl_context_deadline(ctx);
	d->first_rc = send_until_blocked(ctx, d->p.cli, 14, &d->sent,
					 &d->attempted);
	d->woke = sl_now_ns();
	d->ctx_err = sl_context_err(ctx);
	sl_context_release(ctx);
out:
	pair_close(&d->p);
	d->bufs_after = io_bufs_in_use();
}

static void
test_io_net_context_timeout_send(void **state)
{
	struct deadlines d;

	(void)state;
	memset(&d, 0, sizeof(d));
	harness_run(2, ctx_timeout_send_main, &d);
	assert_int_equal(d.first_rc, -ETIMEDOUT);
	assert_true(d.woke >= d.deadline);
	assert_int_equal(d.ctx_err, -ETIMEDOUT);
	assert_int_equal(d.bufs_after, 0);
}

/*
 * A connect that cannot finish: the listener's backlog is 0 and already
 * holds a connection it never accepts, so the kernel drops every further
 * SYN and the client keeps retrying until its context times out.
 */
#define BACKLOG_FILLERS 4

struct connect_timeout {
	int rc;
	uint64_t deadline, woke;
	char skip_why[160];
};

static int
raw_listener_full(struct sockaddr_in *a, int *fillers)
{
	socklen_t len = sizeof(*a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a->sin_family = AF_INET;
	a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a->sin_port = 0;
	CHECK(fd >= 0);
	CHECK_INT_EQ(bind(fd, (struct sockaddr *)a, sizeof(*a)), 0);
	CHECK_INT_EQ(listen(fd, 0), 0);
	CHECK_INT_EQ(getsockname(fd, (struct sockaddr *)a, &len), 0);
	for (int i = 0; i < BACKLOG_FILLERS; i++) {
		fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK |
						     SOCK_CLOEXEC,
				    0);
		CHECK(fillers[i] >= 0);
		if (connect(fillers[i], (struct sockaddr *)a, sizeof(*a)))
			CHECK_INT_EQ(errno, EINPROGRESS);
	}
	return fd;
}

static void
connect_timeout_main(void *arg)
{
	struct connect_timeout *c = arg;
	struct sl_context *ctx = NULL;
	struct sl_conn *conn = NULL;
	int fillers[BACKLOG_FILLERS];
	struct sockaddr_in sa;
	struct sl_addr a;
	int lfd = raw_listener_full(&sa, fillers);

	memset(&a, 0, sizeof(a));
	memcpy(&a.u.in4, &sa, sizeof(sa));
	a.len = sizeof(sa);
	CHECK_ERR_EQ(sl_context_with_timeout(sl_context_background(),
					     200 * MSEC, &ctx),
		     0);
	c->deadline = sl_context_deadline(ctx);
	c->rc = sl_connect_addr(ctx, &a, NULL, &conn);
	c->woke = sl_now_ns();
	if (c->rc == 0)
		snprintf(c->skip_why, sizeof(c->skip_why),
			 "the kernel completed a connect past a full backlog");
	else if (c->rc != -ETIMEDOUT)
		snprintf(c->skip_why, sizeof(c->skip_why),
			 "connect to a full backlog failed at once: %s",
			 sl_strerror(c->rc));
	sl_conn_close(conn);
	sl_context_release(ctx);
	for (int i = 0; i < BACKLOG_FILLERS; i++)
		close(fillers[i]);
	close(lfd);
}

static void
test_io_net_connect_timeout(void **state)
{
	struct connect_timeout c;

	(void)state;
	memset(&c, 0, sizeof(c));
	harness_run(2, connect_timeout_main, &c);
	if (c.skip_why[0]) {
		print_message("%s: skipped\n", c.skip_why);
		skip();
	}
	assert_int_equal(c.rc, -ETIMEDOUT);
	assert_true(c.woke >= c.deadline);
}

/* ---- 8. back-pressure ---- */

/*
 * The accepted end may hold BP_MAX_BUFFERED bytes of receive buffers, that
 * is BP_BUFS whole buffers, queued for its reader; then it stops receiving
 * and the sender's window closes.
 */
#define BP_MAX_BUFFERED (16 * 1024)
#define BP_BUFS (BP_MAX_BUFFERED / DEFAULT_BUF_SIZE)

/* The receive state of @c, read under its lock (io/io_internal.h). */
static enum sl__rx_state
rx_state(struct sl_conn *c)
{
	enum sl__rx_state st;

	sl__spin_lock(&c->rx.lock);
	st = c->rx.state;
	sl__spin_unlock(&c->rx.lock);
	return st;
}

struct backpressure {
	struct pair p;
	struct sl_chan *holding;	/* reader -> main: has its buffer */
	struct sl_chan *go;		/* main -> reader: read the rest */
	int peek_rc;
	uint64_t sent, attempted;
	int send_rc;
	enum sl__rx_state stopped;	/* once the sender is stuck */
	uint64_t held;
	uint64_t got;
	int end;
	uint64_t bufs_after;
	struct sl_conn_stats at_stop;	/* the server end's, sender stuck */
	struct sl_conn_stats at_end;	/* and once every byte was read */
};

/* Take the first buffer and hold it until told to go on. */
static void
backpressure_reader(void *arg)
{
	struct backpressure *b = arg;
	struct sl_iobuf first;

	b->peek_rc = sl_conn_peek(NULL, b->p.srv, &first);
	CHECK_ERR_EQ(sl_chan_send(b->holding, NULL), 0);
	CHECK_ERR_EQ(sl_chan_recv(b->go, NULL), 0);
	b->got = drain_checked(b->p.srv, 15, &b->end);
}

/* Send stream 15 in @chunk pieces until a send times out. */
static int
backpressure_fill(struct backpressure *b, size_t chunk, uint64_t wait_ns)
{
	char *buf = malloc(chunk);
	ssize_t n = 0;

	if (!buf)
		return -ENOMEM;
	sl_conn_set_deadline(b->p.cli, SL_NO_DEADLINE, sl_now_ns() + wait_ns);
	while (b->attempted < FILL_LIMIT) {
		pattern_fill(buf, 15, b->attempted, chunk);
		n = sl_conn_send(NULL, b->p.cli, buf, chunk);
		b->attempted += chunk;
		if (n < 0)
			break;
		b->sent += (uint64_t)n;
	}
	sl_conn_set_deadline(b->p.cli, SL_NO_DEADLINE, SL_NO_DEADLINE);
	free(buf);
	return (int)n;
}

static bool
backpressure_open(struct backpressure *b)
{
	struct sl_sock_opts srv;

	sl_sock_opts_default(&srv);
	srv.max_buffered = BP_MAX_BUFFERED;
	b->holding = sl_chan_create(0, 1);
	b->go = sl_chan_create(0, 1);
	return b->holding && b->go &&
	       pair_open(&b->p, "127.0.0.1:0", &srv, NULL);
}

static void
backpressure_finish(struct backpressure *b, struct sl_task *reader)
{
	CHECK_ERR_EQ(sl_chan_send(b->go, NULL), 0);
	CHECK_ERR_EQ(sl_conn_shutdown(NULL, b->p.cli, SHUT_WR), 0);
	harness_join(reader);
}

static void
backpressure_close(struct backpressure *b)
{
	pair_close(&b->p);
	if (b->holding)
		sl_chan_destroy(b->holding);
	if (b->go)
		sl_chan_destroy(b->go);
	b->bufs_after = io_bufs_in_use();
}

/*
 * Bulk: the kernel may fill some buffers past the limit before the
 * completion that reaches it is handled (a multishot receive takes what
 * the socket has), so the count held is not exact here; what must hold
 * is that receiving has stopped by the time the sender blocks, and that
 * every byte arrives once the reader reads.
 */
static void
backpressure_bulk_main(void *arg)
{
	struct backpressure *b = arg;
	struct sl_task *t;

	if (!backpressure_open(b))
		goto out;
	t = harness_spawn(backpressure_reader, b, 1);
	b->send_rc = backpressure_fill(b, FILL_CHUNK, 300 * MSEC);
	CHECK_ERR_EQ(sl_chan_recv(b->holding, NULL), 0);
	b->stopped = rx_state(b->p.srv);
	b->held = io_bufs_in_use();
	sl_conn_stats_get(b->p.srv, &b->at_stop);
	backpressure_finish(b, t);
	sl_conn_stats_get(b->p.srv, &b->at_end);
out:
	backpressure_close(b);
}

static void
test_io_net_backpressure(void **state)
{
	struct backpressure b;

	(void)state;
	memset(&b, 0, sizeof(b));
	harness_run(2, backpressure_bulk_main, &b);
	print_message("%llu bytes sent before the sender blocked, %llu "
		      "receive buffers held\n",
		      (unsigned long long)b.sent,
		      (unsigned long long)b.held);
	assert_int_equal(b.peek_rc, 1);
	assert_int_equal(b.send_rc, -ETIMEDOUT);
	/* Stopped: no receive left in the kernel to take more. */
	assert_int_equal(b.stopped, SL__RX_IDLE);
	assert_int_equal(b.end, 0);
	assert_in_range(b.got, b.sent, b.attempted);
	assert_int_equal(b.bufs_after, 0);
	/* The stop was counted, and the counters saw every byte. */
	assert_true(b.at_stop.pauses >= 1);
	assert_true(b.at_end.pauses >= b.at_stop.pauses);
	assert_int_equal(b.at_end.bytes, b.got);
}

/*
 * Tiny pieces, each sent once the last was taken in (or receiving had
 * stopped), so each lands in a buffer of its own.  The limit counts the
 * buffers held, not the bytes in them: after BP_BUFS pieces, whose bytes
 * come to a small part of max_buffered, receiving stops.  Counting bytes
 * instead would pin a whole buffer per piece, a buffer ring's worth for a
 * peer that trickles.
 */
#define BP_PIECES 64
#define BP_PIECE 64

/* Park until the receive is armed or stopped, not between the two. */
static enum sl__rx_state
rx_state_settled(struct sl_conn *c)
{
	enum sl__rx_state st;

	while ((st = rx_state(c)) == SL__RX_CANCELLING)
		sl_task_sleep(MSEC / 10);
	return st;
}

/* Send one piece; return once it is in a buffer or cannot be. */
static void
backpressure_piece(struct backpressure *b, char *buf)
{
	uint64_t before = io_bufs_in_use();

	if (rx_state_settled(b->p.srv) != SL__RX_ARMED)
		b->stopped = SL__RX_IDLE;
	pattern_fill(buf, 15, b->sent, BP_PIECE);
	CHECK_INT_EQ(sl_conn_send(NULL, b->p.cli, buf, BP_PIECE), BP_PIECE);
	b->sent += BP_PIECE;
	b->attempted = b->sent;
	while (b->stopped != SL__RX_IDLE && io_bufs_in_use() == before)
		sl_task_sleep(MSEC / 10);
}

static void
backpressure_pieces_main(void *arg)
{
	struct backpressure *b = arg;
	char buf[BP_PIECE];
	struct sl_task *t;

	if (!backpressure_open(b))
		goto out;
	b->stopped = SL__RX_ARMED;
	t = harness_spawn(backpressure_reader, b, 1);
	/* The reader's peek arms the receive.  A first piece sent before
	 * that would find it idle, taken for stopped, and the pieces after
	 * it would go unpaced, several to a buffer. */
	while (rx_state(b->p.srv) != SL__RX_ARMED)
		sl_task_sleep(MSEC / 10);
	/* The first piece is the reader's, out of the queue. */
	backpressure_piece(b, buf);
	CHECK_ERR_EQ(sl_chan_recv(b->holding, NULL), 0);
	for (int i = 1; i < BP_PIECES; i++)
		backpressure_piece(b, buf);
	b->held = io_bufs_in_use();
	b->stopped = rx_state_settled(b->p.srv);
	backpressure_finish(b, t);
out:
	backpressure_close(b);
}

static void
test_io_net_backpressure_small_writes(void **state)
{
	struct backpressure b;

	(void)state;
	memset(&b, 0, sizeof(b));
	harness_run(2, backpressure_pieces_main, &b);
	assert_int_equal(b.peek_rc, 1);
	assert_int_equal(b.stopped, SL__RX_IDLE);
	/* The reader's buffer and a full queue. */
	assert_int_equal(b.held, 1 + BP_BUFS);
	assert_int_equal(b.end, 0);
	assert_int_equal(b.got, (uint64_t)BP_PIECES * BP_PIECE);
	assert_int_equal(b.bufs_after, 0);
}

/* ---- 8b. the buffer ring runs dry, and recovers ---- */

/*
 * Each processor gets 4 receive buffers, growing to at most 16.  Four
 * connections, two receiving on each processor, are sent far more than
 * that while their readers hold on: each ring runs dry (-ENOBUFS), grows
 * twice, runs dry again, and its receives stall.  Then each connection is
 * drained by a task on the other processor, so the buffers go home
 * through the returns queue; the stalled receives must be armed again
 * and every byte must arrive, in order, with no buffer beyond the cap.
 */
#define DRY_BUFS_INITIAL 4
#define DRY_BUFS_MAX 16
#define DRY_CONNS 4
#define DRY_BYTES (512 * 1024)

struct dry;

struct dry_conn {
	struct dry *d;
	unsigned i;
	struct pair p;
	struct sl_task *holder;
	uint64_t got;
	int end;
	int peek_rc;
};

struct dry {
	struct dry_conn c[DRY_CONNS];
	struct sl_chan *go;
	int configure_busy;
	int stalled_rc;
	struct sl_io_stats at_stall, after;
};

static void
dry_holder(void *arg)
{
	struct dry_conn *c = arg;
	struct sl_iobuf first;

	c->peek_rc = sl_conn_peek(NULL, c->p.srv, &first);
	CHECK_ERR_EQ(sl_chan_recv(c->d->go, NULL), 0);
}

static void
dry_writer(void *arg)
{
	struct dry_conn *c = arg;
	char *buf = malloc(DRY_BYTES);

	CHECK(buf != NULL);
	if (!buf)
		return;
	pattern_fill(buf, 100 + c->i, 0, DRY_BYTES);
	CHECK_INT_EQ(sl_conn_send(NULL, c->p.cli, buf, DRY_BYTES), DRY_BYTES);
	CHECK_ERR_EQ(sl_conn_shutdown(NULL, c->p.cli, SHUT_WR), 0);
	free(buf);
}

/* Once the holder is gone (one reader at a time), read to the end. */
static void
dry_drainer(void *arg)
{
	struct dry_conn *c = arg;

	harness_join(c->holder);
	c->got = drain_checked(c->p.srv, 100 + c->i, &c->end);
}

/* Park until every buffer of both rings is out and receives stall. */
static int
dry_wait_stalled(struct sl_io_stats *st)
{
	uint64_t give_up = sl_now_ns() + 10 * SL_NSEC_PER_SEC;

	do {
		sl_io_stats_get(st);
		if (st->stalls && st->bufs_total == 2 * DRY_BUFS_MAX &&
		    st->bufs_in_use == st->bufs_total)
			return 0;
		sl_task_sleep(MSEC / 2);
	} while (sl_now_ns() < give_up);
	return -ETIMEDOUT;
}

static void
dry_main(void *arg)
{
	struct dry *d = arg;
	struct sl_task *writers[DRY_CONNS], *drainers[DRY_CONNS];
	struct sl_io_opts o = {.buf_size = DEFAULT_BUF_SIZE};

	d->go = sl_chan_create(0, DRY_CONNS);
	if (!d->go)
		return;
	for (unsigned i = 0; i < DRY_CONNS; i++) {
		d->c[i] = (struct dry_conn){.d = d, .i = i};
		pair_open(&d->c[i].p, "127.0.0.1:0", NULL, NULL);
	}
	for (unsigned i = 0; i < DRY_CONNS; i++) {
		d->c[i].holder = spawn_named(dry_holder, &d->c[i], "holder",
					     (int)(i % 2), true);
		writers[i] = harness_spawn(dry_writer, &d->c[i], -1);
	}

	/* Some holders may still wait for a first buffer: those come only
	 * once the drainers of the others are at work. */
	d->stalled_rc = dry_wait_stalled(&d->at_stall);
	/* The rings exist now: their options are fixed. */
	d->configure_busy = sl_io_configure(&o);
	for (unsigned i = 0; i < DRY_CONNS; i++)
		CHECK_ERR_EQ(sl_chan_send(d->go, NULL), 0);
	for (unsigned i = 0; i < DRY_CONNS; i++)
		drainers[i] = spawn_named(dry_drainer, &d->c[i], "drainer",
					  (int)((i + 1) % 2), true);
	for (unsigned i = 0; i < DRY_CONNS; i++) {
		harness_join(writers[i]);
		harness_join(drainers[i]);
		pair_close(&d->c[i].p);
	}
	sl_io_stats_get(&d->after);
	sl_chan_destroy(d->go);
}

static void
test_io_net_buffer_ring_dry_recovers(void **state)
{
	struct sl_io_opts small = {
		.buf_size = DEFAULT_BUF_SIZE,
		.bufs_initial = DRY_BUFS_INITIAL,
		.bufs_max = DRY_BUFS_MAX,
	};
	struct dry *d = calloc(1, sizeof(*d));

	(void)state;
	assert_non_null(d);
	assert_int_equal(sl_io_configure(&small), 0);
	harness_run(2, dry_main, d);
	/* Between runs the options may change again: back to defaults. */
	assert_int_equal(sl_io_configure(NULL), 0);

	print_message("ran dry %llu times, grew %llu times, %llu stalls, "
		      "%llu receives armed\n",
		      (unsigned long long)d->after.enobufs,
		      (unsigned long long)d->after.buf_grows,
		      (unsigned long long)d->after.stalls,
		      (unsigned long long)d->after.recv_rearms);
	assert_int_equal(d->configure_busy, -EBUSY);
	assert_int_equal(d->stalled_rc, 0);
	for (unsigned i = 0; i < DRY_CONNS; i++) {
		assert_int_equal(d->c[i].peek_rc, 1);
		assert_int_equal(d->c[i].got, DRY_BYTES);
		assert_int_equal(d->c[i].end, 0);
	}
	/* Each ring grew 4 -> 8 -> 16 and no further. */
	assert_int_equal(d->after.buf_grows, 4);
	assert_int_equal(d->after.bufs_total, 2 * DRY_BUFS_MAX);
	assert_true(d->after.enobufs > d->after.buf_grows);
	assert_true(d->after.stalls >= 2);
	/* Every receive that stalled was armed again: the first arms, and
	 * one more for each stall at least. */
	assert_true(d->after.recv_rearms >= DRY_CONNS + d->after.stalls);
	assert_int_equal(d->after.bufs_in_use, 0);
	free(d);
}

/* ---- 9. datagram bursts and truncation ---- */

#define BURST_COUNT 20000
#define BURST_SIZE 200
#define BURST_FENCES_MAX 50

struct burst {
	struct sl_dgram *rx, *tx;
	struct sl_addr to;
	uint64_t data_got, fences_sent, fences_got;
	int64_t last_seq;
	bool fence_seen;
	struct sl_dgram_stats st;
	uint64_t bufs_after;
};

/* Read until the fence numbered @fence arrives or 200 ms pass. */
static void
burst_read_until_fence(struct burst *b, uint32_t fence)
{
	struct sl_context *ctx = NULL;

	CHECK_ERR_EQ(sl_context_with_timeout(sl_context_background(),
					     200 * MSEC, &ctx),
		     0);
	for (;;) {
		struct sl_datagram dg;
		uint32_t seq;
		int r = sl_dgram_recv(ctx, b->rx, &dg);

		if (r == -ETIMEDOUT)
			break;
		CHECK_ERR_EQ(r, 0);
		if (r)
			break;
		CHECK(dg.len >= sizeof(seq));
		memcpy(&seq, dg.data, sizeof(seq));
		if (seq >= BURST_COUNT) {
			b->fences_got++;
			b->fence_seen = seq == BURST_COUNT + fence;
		} else {
			CHECK((int64_t)seq > b->last_seq);
			CHECK_UINT_EQ(dg.len, BURST_SIZE);
			CHECK_PATTERN(dg.data + 4, seq, 0, BURST_SIZE - 4);
			b->last_seq = seq;
			b->data_got++;
		}
		sl_dgram_release(b->rx, &dg);
		if (b->fence_seen)
			break;
	}
	sl_context_release(ctx);
}

static void
burst_main(void *arg)
{
	struct burst *b = arg;
	struct sl_dgram_opts small = {.rcvbuf = 4096};
	char buf[BURST_SIZE];

	CHECK_ERR_EQ(sl_dgram_open("127.0.0.1:0", 0, &small, &b->rx), 0);
	CHECK_ERR_EQ(sl_dgram_open(NULL, AF_INET, NULL, &b->tx), 0);
	if (!b->rx || !b->tx)
		goto out;
	sl_dgram_addr(b->rx, &b->to);

	/* Nobody reads meanwhile: the socket buffer overflows. */
	for (uint32_t seq = 0; seq < BURST_COUNT; seq++) {
		memcpy(buf, &seq, sizeof(seq));
		pattern_fill(buf + 4, seq, 0, BURST_SIZE - 4);
		CHECK_INT_EQ(sl_dgram_send(NULL, b->tx, buf, BURST_SIZE,
					   &b->to),
			     BURST_SIZE);
	}

	/* Then read it out.  Drops are reported with the next datagram
	 * queued after them, so a fence datagram is sent (and sent again if
	 * it too was dropped) until it arrives. */
	b->last_seq = -1;
	for (uint32_t f = 0; f < BURST_FENCES_MAX && !b->fence_seen; f++) {
		uint32_t seq = BURST_COUNT + f;

		CHECK_INT_EQ(sl_dgram_send(NULL, b->tx, &seq, sizeof(seq),
					   &b->to),
			     sizeof(seq));
		b->fences_sent++;
		burst_read_until_fence(b, f);
	}
	sl_dgram_stats_get(b->rx, &b->st);
out:
	sl_dgram_close(b->tx);
	sl_dgram_close(b->rx);
	b->bufs_after = io_bufs_in_use();
}

static void
test_io_net_udp_burst_drops_counted(void **state)
{
	struct burst b;

	(void)state;
	memset(&b, 0, sizeof(b));
	harness_run(2, burst_main, &b);
	print_message("%d datagrams: %llu received, %llu dropped, %llu "
		      "fences sent\n",
		      BURST_COUNT, (unsigned long long)b.data_got,
		      (unsigned long long)b.st.dropped,
		      (unsigned long long)b.fences_sent);
	assert_true(b.fence_seen);
	assert_true(b.data_got > 0);
	assert_true(b.st.dropped > 0);
	assert_int_equal(b.st.received, b.data_got + b.fences_got);
	assert_int_equal(b.st.received + b.st.dropped,
			 BURST_COUNT + b.fences_sent);
	assert_int_equal(b.st.truncated, 0);
	assert_int_equal(b.bufs_after, 0);
}

#define TRUNC_SIZE 5000

struct trunc {
	bool first_truncated, second_truncated;
	size_t first_len, second_len;
	bool first_ok, second_ok;
	struct sl_dgram_stats st;
	uint64_t bufs_after;
};

static void
trunc_main(void *arg)
{
	struct trunc *t = arg;
	struct sl_dgram *rx = NULL, *tx = NULL;
	char *buf = malloc(TRUNC_SIZE);
	struct sl_datagram dg;
	struct sl_addr to;

	CHECK_ERR_EQ(sl_dgram_open("127.0.0.1:0", 0, NULL, &rx), 0);
	CHECK_ERR_EQ(sl_dgram_open(NULL, AF_INET, NULL, &tx), 0);
	if (!rx || !tx || !buf)
		goto out;
	sl_dgram_addr(rx, &to);
	pattern_fill(buf, 16, 0, TRUNC_SIZE);
	CHECK_INT_EQ(sl_dgram_send(NULL, tx, buf, TRUNC_SIZE, &to), TRUNC_SIZE);
	pattern_fill(buf, 17, 0, 100);
	CHECK_INT_EQ(sl_dgram_send(NULL, tx, buf, 100, &to), 100);

	CHECK_ERR_EQ(sl_dgram_recv(NULL, rx, &dg), 0);
	t->first_truncated = dg.truncated;
	t->first_len = dg.len;
	t->first_ok = dg.len > 0 && dg.len < TRUNC_SIZE &&
		      CHECK_PATTERN(dg.data, 16, 0, dg.len);
	sl_dgram_release(rx, &dg);
	CHECK_ERR_EQ(sl_dgram_recv(NULL, rx, &dg), 0);
	t->second_truncated = dg.truncated;
	t->second_len = dg.len;
	t->second_ok = dg.len == 100 && CHECK_PATTERN(dg.data, 17, 0, 100);
	sl_dgram_release(rx, &dg);
	sl_dgram_stats_get(rx, &t->st);
out:
	sl_dgram_close(tx);
	sl_dgram_close(rx);
	free(buf);
	t->bufs_after = io_bufs_in_use();
}

static void
test_io_net_dgram_truncated(void **state)
{
	struct trunc t;

	(void)state;
	memset(&t, 0, sizeof(t));
	harness_run(2, trunc_main, &t);
	assert_true(t.first_truncated);
	assert_true(t.first_ok);
	assert_false(t.second_truncated);
	assert_true(t.second_ok);
	assert_int_equal(t.st.truncated, 1);
	assert_int_equal(t.st.received, 2);
	assert_int_equal(t.bufs_after, 0);
}

/* ---- 10. listener limits ---- */

#define MAX_CONNS 2

struct max_conns {
	ssize_t refused_recv;
	int late_accept;
	ssize_t late_recv;
	struct sl_listener_stats at_limit, after;
	uint64_t bufs_after;
};

static void
max_conns_main(void *arg)
{
	struct max_conns *m = arg;
	struct sl_conn *cli[MAX_CONNS + 2] = {0}, *srv[MAX_CONNS + 2] = {0};
	struct sl_context *ctx = NULL;
	struct sl_listener *l = NULL;
	struct sl_listen_opts lo;
	struct sl_addr a;
	char addr[64], one = 'x';

	sl_listen_opts_default(&lo);
	lo.max_conns = MAX_CONNS;
	CHECK_ERR_EQ(sl_listen("127.0.0.1:0", &lo, &l), 0);
	if (!l)
		return;
	sl_listener_addr(l, &a);
	sl_addr_format(&a, addr, sizeof(addr));
	for (int i = 0; i < MAX_CONNS; i++) {
		CHECK_ERR_EQ(sl_connect(NULL, addr, NULL, &cli[i]), 0);
		CHECK_ERR_EQ(sl_listener_accept(NULL, l, &srv[i]), 0);
	}

	/* One too many: the kernel completes the handshake, the listener
	 * closes it at once. */
	CHECK_ERR_EQ(sl_connect(NULL, addr, NULL, &cli[MAX_CONNS]), 0);
	if (cli[MAX_CONNS])
		m->refused_recv = sl_conn_recv(NULL, cli[MAX_CONNS], &one, 1);
	sl_listener_stats_get(l, &m->at_limit);

	/* Below the limit again, a new connection is accepted. */
	sl_conn_close(srv[0]);
	srv[0] = NULL;
	CHECK_ERR_EQ(sl_connect(NULL, addr, NULL, &cli[MAX_CONNS + 1]), 0);
	CHECK_ERR_EQ(sl_context_with_timeout(sl_context_background(),
					     5 * SL_NSEC_PER_SEC, &ctx),
		     0);
	m->late_accept = sl_listener_accept(ctx, l, &srv[MAX_CONNS + 1]);
	sl_context_release(ctx);
	if (srv[MAX_CONNS + 1] && cli[MAX_CONNS + 1]) {
		CHECK_INT_EQ(sl_conn_send(NULL, cli[MAX_CONNS + 1], "y", 1), 1);
		m->late_recv = sl_conn_recv(NULL, srv[MAX_CONNS + 1], &one, 1);
		CHECK_INT_EQ(one, 'y');
	}
	sl_listener_stats_get(l, &m->after);
	for (int i = 0; i < MAX_CONNS + 2; i++) {
		sl_conn_close(cli[i]);
		sl_conn_close(srv[i]);
	}
	sl_listener_close(l);
	m->bufs_after = io_bufs_in_use();
}

static void
test_io_net_listener_max_conns(void **state)
{
	struct max_conns m;

	(void)state;
	memset(&m, 0, sizeof(m));
	harness_run(2, max_conns_main, &m);
	if (m.refused_recv != 0 && m.refused_recv != -ECONNRESET)
		fail_msg("read on a refused connection: %zd (%s)",
			 m.refused_recv, sl_strerror((int)m.refused_recv));
	assert_int_equal(m.at_limit.refused, 1);
	assert_int_equal(m.at_limit.accepted, MAX_CONNS);
	assert_int_equal(m.at_limit.open, MAX_CONNS);
	assert_int_equal(m.late_accept, 0);
	assert_int_equal(m.late_recv, 1);
	assert_int_equal(m.after.accepted, MAX_CONNS + 1);
	assert_int_equal(m.after.refused, 1);
	assert_int_equal(m.after.open, MAX_CONNS);
	assert_int_equal(m.bufs_after, 0);
}

/*
 * Out of descriptors at accept.  The kernel reads RLIMIT_NOFILE for an
 * io_uring accept when the request is submitted, so the limit is lowered
 * before the listener exists, and the descriptors below it are then taken
 * with dup().  A client socket made beforehand connects; its accept fails
 * with EMFILE, and the listener must back off rather than retry in a busy
 * loop, then accept the connection once descriptors are free again.
 */
/*
 * Each listening socket (one per processor) retries 1, 3, 7, ... 511 ms
 * after its first failure, 10 tries in 600 ms, where a busy loop would
 * fail thousands of times.
 */
#define EMFILE_WAIT_NS (600 * MSEC)
#define EMFILE_MAX_FAILURES_PER_SOCKET 11
#define EMFILE_FILLERS 512

struct emfile {
	uint64_t failures_first;	/* accept failures when first seen */
	uint64_t failures;		/* ... over the whole wait */
	uint64_t accepted_during;
	unsigned nsocks;
	int accept_rc[2];
	ssize_t recv_rc;
	bool fill_ok;
	uint64_t bufs_after;
};

/* The highest descriptor open now. */
static int
fd_highest(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int top = 2;

	if (!d)
		return 1024;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' && atoi(de->d_name) > top)
			top = atoi(de->d_name);
	closedir(d);
	return top;
}

static int
emfile_wait_failure(struct sl_listener *l, struct sl_listener_stats *st)
{
	uint64_t give_up = sl_now_ns() + 10 * SL_NSEC_PER_SEC;

	do {
		sl_task_sleep(MSEC);
		sl_listener_stats_get(l, st);
	} while (!st->emfile && sl_now_ns() < give_up);
	return st->emfile ? 0 : -ETIMEDOUT;
}

static int
emfile_accept(struct sl_listener *l, struct sl_conn **c)
{
	struct sl_context *ctx = NULL;
	int rc;

	CHECK_ERR_EQ(sl_context_with_timeout(sl_context_background(),
					     5 * SL_NSEC_PER_SEC, &ctx),
		     0);
	rc = sl_listener_accept(ctx, l, c);
	sl_context_release(ctx);
	return rc;
}

static void
emfile_main(void *arg)
{
	struct emfile *e = arg;
	int cfd[2], fillers[EMFILE_FILLERS], nfill = 0, devnull, fd;
	struct sl_conn *srv[2] = {NULL, NULL};
	struct sl_listener *l = NULL;
	struct sl_listener_stats st;
	struct rlimit old, low;
	struct sl_addr a;
	char one = 0;

	cfd[0] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	cfd[1] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	CHECK(cfd[0] >= 0 && cfd[1] >= 0 && devnull >= 0);
	CHECK_INT_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = (rlim_t)fd_highest() + 1 + sl_runtime_nprocs() + 4;
	CHECK_INT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);

	CHECK_ERR_EQ(sl_listen("127.0.0.1:0", NULL, &l), 0);
	if (!l)
		goto restore;
	sl_listener_addr(l, &a);
	while (nfill < EMFILE_FILLERS && (fd = dup(devnull)) >= 0)
		fillers[nfill++] = fd;
	e->fill_ok = nfill < EMFILE_FILLERS && errno == EMFILE;
	if (connect(cfd[0], &a.u.sa, a.len))
		CHECK_INT_EQ(errno, EINPROGRESS);

	CHECK_ERR_EQ(emfile_wait_failure(l, &st), 0);
	e->failures_first = st.emfile;
	sl_task_sleep(EMFILE_WAIT_NS);
	sl_listener_stats_get(l, &st);
	e->failures = st.emfile;
	e->accepted_during = st.accepted;
	e->nsocks = sl_runtime_nprocs();

restore:
	while (nfill)
		close(fillers[--nfill]);
	CHECK_INT_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
	if (!l)
		return;
	e->accept_rc[0] = emfile_accept(l, &srv[0]);
	if (srv[0]) {
		CHECK_INT_EQ(write(cfd[0], "z", 1), 1);
		e->recv_rc = sl_conn_recv(NULL, srv[0], &one, 1);
		CHECK_INT_EQ(one, 'z');
	}
	if (connect(cfd[1], &a.u.sa, a.len))
		CHECK_INT_EQ(errno, EINPROGRESS);
	e->accept_rc[1] = emfile_accept(l, &srv[1]);
	sl_conn_close(srv[0]);
	sl_conn_close(srv[1]);
	sl_listener_close(l);
	close(cfd[0]);
	close(cfd[1]);
	close(devnull);
	e->bufs_after = io_bufs_in_use();
}

static void
test_io_net_listener_emfile_backoff(void **state)
{
	struct emfile e;

	(void)state;
	memset(&e, 0, sizeof(e));
	harness_run(2, emfile_main, &e);
	print_message("accept failed %llu times in %llu ms out of "
		      "descriptors\n",
		      (unsigned long long)e.failures,
		      (unsigned long long)(EMFILE_WAIT_NS / MSEC));
	assert_true(e.fill_ok);
	assert_true(e.failures_first >= 1);
	/* Backing off: it tried again, but not in a busy loop. */
	assert_in_range(e.failures, 2,
			EMFILE_MAX_FAILURES_PER_SOCKET * e.nsocks);
	assert_int_equal(e.accepted_during, 0);
	assert_int_equal(e.accept_rc[0], 0);
	assert_int_equal(e.recv_rc, 1);
	assert_int_equal(e.accept_rc[1], 0);
	assert_int_equal(e.bufs_after, 0);
}

/* ---- 11. name lookups ---- */

struct resolve {
	int local_n;
	struct sl_addr local[8];
	int numeric_n;
	char numeric[64];
	int bad;
};

static void
resolve_main(void *arg)
{
	struct resolve *r = arg;
	struct sl_addr a;

	r->local_n = sl_resolve("localhost", "80", r->local, 8);
	r->numeric_n = sl_resolve("127.0.0.1", "8080", &a, 1);
	if (r->numeric_n == 1)
		sl_addr_format(&a, r->numeric, sizeof(r->numeric));
	r->bad = sl_resolve("no-such-host.invalid", "80", &a, 1);
}

static void
test_io_net_resolve(void **state)
{
	struct resolve r;

	(void)state;
	memset(&r, 0, sizeof(r));
	harness_run(2, resolve_main, &r);
	assert_in_range(r.local_n, 1, 8);
	for (int i = 0; i < r.local_n; i++) {
		int family = r.local[i].u.sa.sa_family;

		assert_true(family == AF_INET || family == AF_INET6);
		assert_int_equal(sl_addr_port(&r.local[i]), 80);
	}
	assert_int_equal(r.numeric_n, 1);
	assert_string_equal(r.numeric, "127.0.0.1:8080");
	/* -EAGAIN where there is no resolver to ask. */
	if (r.bad != -ENOENT && r.bad != -EAGAIN)
		fail_msg("lookup of a bad name: %d (%s)", r.bad,
			 sl_strerror(r.bad));
}

/* ---- 12. closing under a parked task ---- */

struct close_parked {
	struct sl_listener *l;
	struct pair p;
	struct sl_dgram *d;
	int rc;
	_Atomic bool hog_running;
	_Atomic bool hog_release;
	uint64_t bufs_after;
};

static void
close_parked_acceptor(void *arg)
{
	struct close_parked *c = arg;
	struct sl_conn *conn = NULL;

	c->rc = sl_listener_accept(NULL, c->l, &conn);
	sl_conn_close(conn);
}

static void
close_parked_reader(void *arg)
{
	struct close_parked *c = arg;
	char buf[16];

	c->rc = (int)sl_conn_recv(NULL, c->p.cli, buf, sizeof(buf));
}

static void
close_parked_dgram_reader(void *arg)
{
	struct close_parked *c = arg;
	struct sl_datagram dg;

	c->rc = sl_dgram_recv(NULL, c->d, &dg);
	if (c->rc == 0)
		sl_dgram_release(c->d, &dg);
}

/*
 * Keep processor 1 busy without a schedule point, so that a task woken
 * there does not run until the hog is released.
 */
static void
close_parked_hog(void *arg)
{
	struct close_parked *c = arg;

	atomic_store(&c->hog_running, true);
	while (!atomic_load(&c->hog_release))
		;
}

enum close_parked_kind {
	CLOSE_LISTENER,
	CLOSE_CONN,
	CLOSE_DGRAM,
};

struct close_parked_case {
	enum close_parked_kind kind;
	bool delay_wakee;
	struct close_parked c;
};

static void
close_parked_open(struct close_parked_case *k)
{
	struct sl_listen_opts lo;

	switch (k->kind) {
	case CLOSE_LISTENER:
		/* One socket, on this processor. */
		sl_listen_opts_default(&lo);
		lo.per_proc = false;
		CHECK_ERR_EQ(sl_listen("127.0.0.1:0", &lo, &k->c.l), 0);
		break;
	case CLOSE_CONN:
		pair_open(&k->c.p, "127.0.0.1:0", NULL, NULL);
		break;
	case CLOSE_DGRAM:
		CHECK_ERR_EQ(sl_dgram_open("127.0.0.1:0", 0, NULL, &k->c.d), 0);
		break;
	}
}

static void
close_parked_close(struct close_parked_case *k)
{
	switch (k->kind) {
	case CLOSE_LISTENER:
		sl_listener_close(k->c.l);
		k->c.l = NULL;
		break;
	case CLOSE_CONN:
		sl_conn_close(k->c.p.cli);
		k->c.p.cli = NULL;
		break;
	case CLOSE_DGRAM:
		sl_dgram_close(k->c.d);
		k->c.d = NULL;
		break;
	}
}

/*
 * A socket's receive lives on the processor that armed it, and closing
 * waits for that processor to reap the receive's last completion.  When
 * the reader's processor is to be held up by the hog, the receive is
 * armed here first, by a read that times out (the receive stays armed,
 * docs/io.md); the parked reader then finds it armed and leaves it where
 * it is, so the close can finish before the reader has run.
 */
static void
close_parked_arm_here(struct close_parked_case *k)
{
	struct sl_context *ctx = NULL;
	struct sl_datagram dg;
	char buf[16];
	int rc;

	CHECK_ERR_EQ(sl_context_with_timeout(sl_context_background(), MSEC,
					     &ctx),
		     0);
	if (!ctx)
		return;
	if (k->kind == CLOSE_CONN)
		rc = (int)sl_conn_recv(ctx, k->c.p.cli, buf, sizeof(buf));
	else
		rc = sl_dgram_recv(ctx, k->c.d, &dg);
	CHECK_ERR_EQ(rc, -ETIMEDOUT);
	sl_context_release(ctx);
}

/* On processor 0, pinned, so the hog on processor 1 never holds it up. */
static void
close_parked_closer(void *arg)
{
	static const sl_task_fn fns[] = {close_parked_acceptor,
					 close_parked_reader,
					 close_parked_dgram_reader};
	static const char *const reasons[] = {"accept", "socket receive",
					      "socket receive"};
	struct close_parked_case *k = arg;
	struct sl_task *t, *hog = NULL;

	close_parked_open(k);
	if (k->delay_wakee && k->kind != CLOSE_LISTENER)
		close_parked_arm_here(k);
	t = spawn_named(fns[k->kind], &k->c, "parked", 1, true);
	wait_until_parked("parked", reasons[k->kind]);
	if (k->delay_wakee) {
		hog = spawn_named(close_parked_hog, &k->c, "hog", 1, true);
		while (!atomic_load(&k->c.hog_running))
			sl_task_sleep(MSEC / 2);
	}
	close_parked_close(k);
	atomic_store(&k->c.hog_release, true);
	if (hog)
		harness_join(hog);
	harness_join(t);
	pair_close(&k->c.p);
	k->c.bufs_after = io_bufs_in_use();
}

static void
close_parked_main(void *arg)
{
	harness_join(spawn_named(close_parked_closer, arg, "closer", 0, true));
}

static void
run_close_parked(enum close_parked_kind kind, bool delay_wakee)
{
	struct close_parked_case k;

	memset(&k, 0, sizeof(k));
	k.kind = kind;
	k.delay_wakee = delay_wakee;
	harness_run(2, close_parked_main, &k);
	assert_int_equal(k.c.rc, -EBADF);
	assert_int_equal(k.c.bufs_after, 0);
}

static void
test_io_net_listener_close_wakes_acceptor(void **state)
{
	(void)state;
	run_close_parked(CLOSE_LISTENER, false);
}

/*
 * The woken acceptor runs only after sl_listener_close() has returned: it
 * must not need the listener's memory to find out that it was closed.
 */
static void
test_io_net_listener_close_wakes_late_acceptor(void **state)
{
	(void)state;
	run_close_parked(CLOSE_LISTENER, true);
}

static void
test_io_net_conn_close_wakes_reader(void **state)
{
	(void)state;
	run_close_parked(CLOSE_CONN, false);
}

static void
test_io_net_conn_close_wakes_late_reader(void **state)
{
	(void)state;
	run_close_parked(CLOSE_CONN, true);
}

static void
test_io_net_dgram_close_wakes_late_reader(void **state)
{
	(void)state;
	run_close_parked(CLOSE_DGRAM, true);
}

int
main(int argc, char **argv)
{
	char why[128];

	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_io_net_echo_tcp4),
		cmocka_unit_test(test_io_net_echo_tcp6),
		cmocka_unit_test(test_io_net_echo_unix_path),
		cmocka_unit_test(test_io_net_echo_unix_abstract),
		cmocka_unit_test(test_io_net_echo_udp4),
		cmocka_unit_test(test_io_net_echo_udp6),
		cmocka_unit_test(test_io_net_echo_unix_dgram),
		cmocka_unit_test(test_io_net_dgram_send_to_full_unix),
		cmocka_unit_test(test_io_net_bulk_stream_bundled),
		cmocka_unit_test(test_io_net_recv_capped_at_max_buffered),
		cmocka_unit_test(test_io_net_many_connections),
		cmocka_unit_test(test_io_net_half_close),
		cmocka_unit_test(test_io_net_reset_seen_by_recv),
		cmocka_unit_test(test_io_net_reset_seen_by_send),
		cmocka_unit_test(test_io_net_cancel_parked_recv),
		cmocka_unit_test(test_io_net_cancel_blocked_send),
		cmocka_unit_test(test_io_net_cancel_races_recv),
		cmocka_unit_test(test_io_net_cancel_races_send),
		cmocka_unit_test(test_io_net_read_deadline),
		cmocka_unit_test(test_io_net_write_deadline),
		cmocka_unit_test(test_io_net_context_timeout_recv),
		cmocka_unit_test(test_io_net_context_timeout_send),
		cmocka_unit_test(test_io_net_connect_timeout),
		cmocka_unit_test(test_io_net_backpressure),
		cmocka_unit_test(test_io_net_backpressure_small_writes),
		cmocka_unit_test(test_io_net_buffer_ring_dry_recovers),
		cmocka_unit_test(test_io_net_udp_burst_drops_counted),
		cmocka_unit_test(test_io_net_dgram_truncated),
		cmocka_unit_test(test_io_net_listener_max_conns),
		cmocka_unit_test(test_io_net_listener_emfile_backoff),
		cmocka_unit_test(test_io_net_resolve),
		cmocka_unit_test(test_io_net_listener_close_wakes_acceptor),
		cmocka_unit_test(test_io_net_listener_close_wakes_late_acceptor),
		cmocka_unit_test(test_io_net_conn_close_wakes_reader),
		cmocka_unit_test(test_io_net_conn_close_wakes_late_reader),
		cmocka_unit_test(test_io_net_dgram_close_wakes_late_reader),
	};

	harness_init();
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	if (!kernel_has_multishot(why, sizeof(why))) {
		print_message("%s: every case skipped\n", why);
		cmocka_set_skip_filter("*");
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
