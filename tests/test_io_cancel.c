/* SPDX-License-Identifier: MIT */
/*
 * Races of cancellation against completion, thousands of times over.
 *
 * In each round one task starts a request under a context and another
 * task cancels that context at a varying moment: at once, after a few
 * yields, or after spinning for a random few microseconds, from the
 * requester's processor or another.  Other rounds use a deadline just past
 * or just ahead instead.  Meanwhile a peer makes the request able to complete
 * at about the same time.  The request must then end either in full
 * success or with the context's error, and the byte stream must come
 * through whole: every byte is checked against its position in the
 * stream, so a byte lost, repeated or read into a buffer after its call
 * returned shows up as a mismatch.
 *
 * Requests covered: a socket receive (the multishot receive queue), a
 * socket send on a nearly full buffer (a kernel request that must be
 * cancelled in the kernel), and a read of a pipe through the file calls
 * (the same, for requests that park in the kernel until data comes).
 *
 * Meant to run under ASan as well: the kernel writes into receive buffers
 * and reads send buffers where ASan cannot see it, so buffers are filled
 * with a guard pattern before each call and checked again some rounds
 * later, and send buffers are overwritten before they are freed.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <sys/utsname.h>

#include <cmocka.h>

#include "core/chan.h"
#include "core/context.h"
#include "core/task.h"
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

/* For results that are negative errno values: prints both messages. */
#define assert_err(got, want)                                                  \
	do {                                                                   \
		long long got_ = (long long)(got);                             \
		long long want_ = (long long)(want);                           \
		if (got_ != want_)                                             \
			fail_msg("%s: %lld (%s), expected %lld (%s)", #got,    \
				 got_, sl_strerror((int)got_), want_,          \
				 sl_strerror((int)want_));                     \
	} while (0)

static uint64_t
mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* The byte at @pos of stream @seed. */
static unsigned char
pattern_byte(uint64_t seed, uint64_t pos)
{
	uint64_t z = mix64(seed * 0x9e3779b97f4a7c15ull + (pos >> 3));

	return (unsigned char)(z >> ((pos & 7) * 8));
}

static void
pattern_fill(unsigned char *p, size_t n, uint64_t seed, uint64_t pos)
{
	for (size_t i = 0; i < n; i++)
		p[i] = pattern_byte(seed, pos + i);
}

static bool
pattern_matches(const unsigned char *p, size_t n, uint64_t seed, uint64_t pos)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != pattern_byte(seed, pos + i))
			return false;
	return true;
}

/* ---- guarded receive buffers ---- */

/*
 * A ring of receive buffers.  Each use fills its buffer with the guard
 * byte; the bytes past what the call returned must still hold it when the
 * buffer comes round again, GUARD_SLOTS rounds later, or the kernel wrote
 * into it after the call had returned.
 */
#define GUARD_SLOTS 8
#define GUARD_BYTE 0xa5

struct guarded {
	unsigned char *buf[GUARD_SLOTS];
	size_t cap;
	size_t used[GUARD_SLOTS];
	unsigned next;
	uint64_t late_writes;
};

static void
guarded_init(struct guarded *g, size_t cap)
{
	memset(g, 0, sizeof(*g));
	g->cap = cap;
	for (int i = 0; i < GUARD_SLOTS; i++) {
		g->buf[i] = malloc(cap);
		CHECK(g->buf[i] != NULL);
		if (g->buf[i])
			memset(g->buf[i], GUARD_BYTE, cap);
	}
}

static void
guarded_check(struct guarded *g, unsigned slot)
{
	for (size_t i = g->used[slot]; i < g->cap; i++) {
		if (g->buf[slot][i] != GUARD_BYTE) {
			g->late_writes++;
			CHECK(g->buf[slot][i] == GUARD_BYTE);
			return;
		}
	}
}

/* The next buffer, checked and guarded afresh. */
static unsigned char *
guarded_take(struct guarded *g, unsigned *slot)
{
	*slot = g->next++ % GUARD_SLOTS;
	guarded_check(g, *slot);
	memset(g->buf[*slot], GUARD_BYTE, g->cap);
	g->used[*slot] = 0;
	return g->buf[*slot];
}

/* What the call returned: the bytes past it must keep the guard. */
static void
guarded_used(struct guarded *g, unsigned slot, ssize_t n)
{
	g->used[slot] = n > 0 ? (size_t)n : 0;
}

static void
guarded_fini(struct guarded *g)
{
	for (unsigned i = 0; i < GUARD_SLOTS; i++) {
		if (!g->buf[i])
			continue;
		guarded_check(g, i);
		free(g->buf[i]);
	}
}

/* ---- the cancelling side ---- */

/*
 * The longest spin before a cancel and the furthest deadline: long enough
 * that the request often completes first, which takes longer under a
 * sanitizer.
 */
#define RACE_SPAN_US HARNESS_SCALE(60, 300)
#define RACE_SPAN_NS (RACE_SPAN_US * SL_NSEC_PER_USEC)

enum cancel_mode {
	CANCEL_AT_ONCE,
	CANCEL_AFTER_YIELDS,
	CANCEL_AFTER_SPIN,
};

struct canceller {
	struct sl_context *ctx;
	enum cancel_mode mode;
	unsigned yields;
	uint64_t spin_ns;
};

static void
canceller_run(void *arg)
{
	struct canceller *c = arg;
	uint64_t until;

	switch (c->mode) {
	case CANCEL_AT_ONCE:
		break;
	case CANCEL_AFTER_YIELDS:
		for (unsigned i = 0; i < c->yields; i++)
			sl_task_yield();
		break;
	case CANCEL_AFTER_SPIN:
		until = sl_now_ns() + c->spin_ns;
		while (sl_now_ns() < until)
			;
		break;
	}
	sl_context_cancel(c->ctx);
}

/*
 * The runs have three processors: the requester's, the peer's, and one
 * where a canceller can spin without holding up either of them.  Other
 * cancellers start on any of the three, so some cancel from the
 * requester's own processor before its request has even been submitted.
 */
#define RACE_PROCS 3
#define RACE_SPIN_PROC 2

static void
race_run(sl_task_fn main_fn, void *arg)
{
	struct sl_runtime_opts opts;

	sl_runtime_opts_init(&opts);
	opts.nprocs = RACE_PROCS;
	/* More processors than CPUs here: let the kernel place them. */
	opts.pin = false;
	harness_run_opts(&opts, main_fn, arg);
}

/*
 * One round's race: a fresh context and a task that cancels it.
 * race_end() waits for that task and drops the context, so the canceller
 * never touches a freed one.
 */
struct race {
	struct canceller c;
	struct sl_task *task;
};

static struct sl_context *
race_start(struct race *r, uint64_t *rng, uint64_t round)
{
	uint64_t z = harness_random(rng);
	struct sl_task_opts o = {.proc = (int)(round % RACE_PROCS)};

	memset(r, 0, sizeof(*r));
	CHECK_ERR_EQ(sl_context_with_cancel(sl_context_background(), &r->c.ctx),
		     0);
	if (!r->c.ctx)
		return NULL;
	/* A quarter at once, a quarter after yields, half after a spin. */
	r->c.mode = z % 4 == 0   ? CANCEL_AT_ONCE
		    : z % 4 == 1 ? CANCEL_AFTER_YIELDS
				 : CANCEL_AFTER_SPIN;
	r->c.yields = 1 + (unsigned)(z >> 8) % 8;
	r->c.spin_ns = (z >> 16) % RACE_SPAN_NS;
	if (r->c.mode == CANCEL_AFTER_SPIN) {
		o.proc = RACE_SPIN_PROC;
		o.pinned = true;
	}
	CHECK_ERR_EQ(sl_task_spawn(canceller_run, &r->c, &o, &r->task), 0);
	return r->c.ctx;
}

static void
race_end(struct race *r)
{
	harness_join(r->task);
	if (r->c.ctx)
		sl_context_release(r->c.ctx);
}

/* A deadline from 2 us past to RACE_SPAN_NS ahead. */
static uint64_t
near_deadline(uint64_t *rng)
{
	uint64_t early = 2 * SL_NSEC_PER_USEC;
	uint64_t z = harness_random(rng) % (RACE_SPAN_NS + early);

	return sl_now_ns() + z - early;
}

/* ---- connections ---- */

struct pair {
	struct sl_listener *l;
	struct sl_conn *a;	/* the connecting end */
	struct sl_conn *b;	/* the accepted end */
};

static bool
pair_open(struct pair *p, const struct sl_sock_opts *aopts,
	  const struct sl_listen_opts *lopts)
{
	struct sl_addr addr;
	char s[64];

	memset(p, 0, sizeof(*p));
	CHECK_ERR_EQ(sl_listen("127.0.0.1:0", lopts, &p->l), 0);
	if (!p->l)
		return false;
	sl_listener_addr(p->l, &addr);
	CHECK_ERR_EQ(sl_connect(NULL, sl_addr_format(&addr, s, sizeof(s)),
				aopts, &p->a),
		     0);
	if (!p->a)
		return false;
	CHECK_ERR_EQ(sl_listener_accept(NULL, p->l, &p->b), 0);
	return p->b != NULL;
}

static void
pair_close(struct pair *p)
{
	sl_conn_close(p->a);
	sl_conn_close(p->b);
	sl_listener_close(p->l);
}

static struct sl_task *
spawn_pinned(sl_task_fn fn, void *arg, int proc)
{
	struct sl_task_opts o = {.proc = proc, .pinned = true};
	struct sl_task *t = NULL;

	CHECK_ERR_EQ(sl_task_spawn(fn, arg, &o, &t), 0);
	return t;
}

/* Outcomes of the raced calls. */
struct tally {
	uint64_t ok, ended, other;
	int first_other;
};

static void
tally_add(struct tally *t, ssize_t r, int ended_err)
{
	if (r > 0) {
		t->ok++;
	} else if (r == ended_err) {
		t->ended++;
	} else {
		if (!t->other++)
			t->first_other = (int)r;
		CHECK_ERR_EQ(r, ended_err);
	}
}

static void
tally_assert(const struct tally *t, const char *what)
{
	print_message("%s: %llu completed, %llu ended early\n", what,
		      (unsigned long long)t->ok,
		      (unsigned long long)t->ended);
	if (t->other)
		fail_msg("%s: %llu other results, the first %d (%s)", what,
			 (unsigned long long)t->other, t->first_other,
			 sl_strerror(t->first_other));
	/* Both sides of the race must have won some rounds, or the test
	 * did not test the race. */
	assert_true(t->ok > 0);
	assert_true(t->ended > 0);
}

/* ---- a socket receive ---- */

/*
 * A feeder pinned to a processor of its own sends one chunk per round;
 * the receiver races one receive against the cancel, then reads on
 * without a context until it has all that was sent, so every round starts
 * with nothing queued and the receive parks.
 */
#define RECV_ROUNDS HARNESS_SCALE(5000, 1000)
#define RECV_CHUNK 8192
#define STREAM_SEED 21

struct feeder {
	struct sl_conn *c;
	struct sl_chan *tokens;		/* chunk sizes; 0 ends */
	uint64_t sent;
	bool file;			/* a pipe's write end in fd */
	int fd;
};

static void
feeder_run(void *arg)
{
	struct feeder *f = arg;
	unsigned char *chunk = malloc(RECV_CHUNK);
	uint32_t n;

	CHECK(chunk != NULL);
	while (chunk && sl_chan_recv(f->tokens, &n) == 0 && n) {
		pattern_fill(chunk, n, STREAM_SEED, f->sent);
		if (f->file)
			CHECK_INT_EQ(sl_file_write(NULL, f->fd, chunk, n, -1),
				     n);
		else
			CHECK_INT_EQ(sl_conn_send(NULL, f->c, chunk, n), n);
		f->sent += n;
	}
	if (f->file)
		CHECK_ERR_EQ(sl_file_close(f->fd), 0);
	else
		CHECK_ERR_EQ(sl_conn_shutdown(NULL, f->c, SHUT_WR), 0);
	free(chunk);
}

struct stream_in {
	struct guarded g;
	uint64_t got;
	uint64_t expected;
	uint64_t bad_at;
	bool bad;
};

/* Account for @n bytes just read into @buf. */
static void
stream_take(struct stream_in *s, const unsigned char *buf, ssize_t n)
{
	if (n <= 0)
		return;
	if (!s->bad && !pattern_matches(buf, (size_t)n, STREAM_SEED, s->got)) {
		s->bad = true;
		s->bad_at = s->got;
		CHECK(!"received bytes do not match the stream");
	}
	s->got += (uint64_t)n;
}

struct recv_test {
	struct pair pr;
	struct feeder f;
	struct stream_in in;
	bool deadlines;			/* deadlines instead of cancels */
	struct tally tally;
	ssize_t last;
};

/* Read without a context until everything sent so far has come. */
static void
recv_drain(struct recv_test *t)
{
	while (t->in.got < t->in.expected) {
		unsigned slot;
		unsigned char *buf = guarded_take(&t->in.g, &slot);
		ssize_t n = sl_conn_recv(NULL, t->pr.b, buf, RECV_CHUNK);

		guarded_used(&t->in.g, slot, n);
		if (n <= 0) {
			CHECK_INT_EQ(n, 1);
			return;
		}
		stream_take(&t->in, buf, n);
	}
}

static void
recv_round(struct recv_test *t, uint64_t *rng, uint64_t round)
{
	uint32_t n = 1 + (uint32_t)(harness_random(rng) % RECV_CHUNK);
	size_t want = 1 + harness_random(rng) % RECV_CHUNK;
	struct sl_context *ctx = NULL;
	struct race race;
	unsigned slot;
	unsigned char *buf = guarded_take(&t->in.g, &slot);
	ssize_t r;

	if (t->deadlines)
		sl_conn_set_deadline(t->pr.b, near_deadline(rng),
				     SL_NO_DEADLINE);
	else
		ctx = race_start(&race, rng, round);
	CHECK_ERR_EQ(sl_chan_send(t->f.tokens, &n), 0);
	t->in.expected += n;

	r = sl_conn_recv(ctx, t->pr.b, buf, want);
	guarded_used(&t->in.g, slot, r);
	tally_add(&t->tally, r, t->deadlines ? -ETIMEDOUT : -ECANCELED);
	stream_take(&t->in, buf, r);

	if (t->deadlines)
		sl_conn_set_deadline(t->pr.b, SL_NO_DEADLINE, SL_NO_DEADLINE);
	else
		race_end(&race);
	recv_drain(t);
}

static void
recv_main(void *arg)
{
	struct recv_test *t = arg;
	uint64_t rng = t->deadlines ? 2 : 1;
	struct sl_task *feeder;
	unsigned char *buf;
	uint32_t end = 0;
	unsigned slot;

	t->f.tokens = sl_chan_create(sizeof(uint32_t), 4);
	CHECK(t->f.tokens != NULL);
	if (!t->f.tokens || !pair_open(&t->pr, NULL, NULL))
		return;
	guarded_init(&t->in.g, RECV_CHUNK);
	t->f.c = t->pr.a;
	feeder = spawn_pinned(feeder_run, &t->f, 1);

	for (uint64_t i = 0; i < RECV_ROUNDS && !t->in.bad; i++)
		recv_round(t, &rng, i);

	CHECK_ERR_EQ(sl_chan_send(t->f.tokens, &end), 0);
	harness_join(feeder);
	buf = guarded_take(&t->in.g, &slot);
	t->last = sl_conn_recv(NULL, t->pr.b, buf, RECV_CHUNK);
	guarded_used(&t->in.g, slot, t->last);
	stream_take(&t->in, buf, t->last);
	guarded_fini(&t->in.g);
	pair_close(&t->pr);
	sl_chan_destroy(t->f.tokens);
}

static void
recv_assert(struct recv_test *t, const char *what)
{
	if (t->in.bad)
		fail_msg("stream wrong from byte %llu",
			 (unsigned long long)t->in.bad_at);
	assert_int_equal(t->in.g.late_writes, 0);
	assert_err(t->last, 0);
	assert_int_equal(t->in.got, t->f.sent);
	assert_int_equal(t->in.got, t->in.expected);
	tally_assert(&t->tally, what);
}

/* Static, so a failed assert (which leaves the test) leaks nothing. */
static struct recv_test recv_test;

static void
test_io_cancel_recv_race(void **state)
{
	struct recv_test *t = &recv_test;

	(void)state;
	memset(t, 0, sizeof(*t));
	race_run(recv_main, t);
	recv_assert(t, "recv against cancel");
}

static void
test_io_cancel_recv_deadline_race(void **state)
{
	struct recv_test *t = &recv_test;

	(void)state;
	memset(t, 0, sizeof(*t));
	t->deadlines = true;
	race_run(recv_main, t);
	recv_assert(t, "recv against deadline");
}

/* ---- a socket send on a nearly full buffer ---- */

/*
 * Small socket buffers and a small receive queue, and messages of up to
 * 128 KiB, so each send waits for the receiver to make room, and the
 * cancel comes while the kernel holds the request.  A cancelled
 * sl_conn_send() does not say how much of the message went; the sender
 * waits until the kernel has nothing left to send and then reads the
 * exact count from TCP_INFO (bytes the peer acknowledged), so the stream
 * position stays exact and the next message carries on from it.
 */
#define SEND_ROUNDS HARNESS_SCALE(2000, 400)
#define SEND_MAX (128 * 1024)
#define SEND_SOCKBUF 16384

struct send_test {
	struct pair pr;
	bool deadlines;
	uint64_t pos;			/* sender: bytes in the stream */
	uint64_t acked_base;
	uint64_t full_cancels;		/* cancelled, yet all of it went */
	uint64_t partial;		/* cancelled after some of it went */
	struct tally tally;
	struct stream_in in;		/* receiver */
	ssize_t last;
	struct sl_io_stats st;
};

static int
unsent_bytes(int fd, int *outq)
{
	return ioctl(fd, SIOCOUTQ, outq) ? -errno : 0;
}

static int
acked_bytes(int fd, uint64_t *out)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len))
		return -errno;
	*out = ti.tcpi_bytes_acked;
	return 0;
}

/* After a send ended early: where the stream stands now. */
static uint64_t
send_settle(struct send_test *t)
{
	int fd = sl_conn_fd(t->pr.a), outq = 1;
	uint64_t acked = 0;

	while (outq > 0) {
		CHECK_ERR_EQ(unsent_bytes(fd, &outq), 0);
		sl_task_yield();
	}
	CHECK_ERR_EQ(acked_bytes(fd, &acked), 0);
	return acked - t->acked_base;
}

static void
send_round(struct send_test *t, uint64_t *rng, uint64_t round)
{
	size_t len = 1 + harness_random(rng) % SEND_MAX;
	struct sl_context *ctx = NULL;
	unsigned char *msg = malloc(len);
	struct race race;
	ssize_t r;

	CHECK(msg != NULL);
	if (!msg)
		return;
	pattern_fill(msg, len, STREAM_SEED, t->pos);
	if (t->deadlines)
		sl_conn_set_deadline(t->pr.a, SL_NO_DEADLINE,
				     near_deadline(rng));
	else
		ctx = race_start(&race, rng, round);

	r = sl_conn_send(ctx, t->pr.a, msg, len);
	tally_add(&t->tally, r, t->deadlines ? -ETIMEDOUT : -ECANCELED);

	if (t->deadlines)
		sl_conn_set_deadline(t->pr.a, SL_NO_DEADLINE, SL_NO_DEADLINE);
	else
		race_end(&race);

	if (r == (ssize_t)len) {
		t->pos += len;
	} else {
		uint64_t now = send_settle(t);

		CHECK(now >= t->pos);
		if (now - t->pos >= len)
			t->full_cancels++;
		else if (now > t->pos)
			t->partial++;
		t->pos = now;
	}

	/* Should the kernel read the message after all, it sends these
	 * bytes, which match no position of the stream. */
	memset(msg, 0xee, len);
	free(msg);
}

static void
send_receiver(void *arg)
{
	struct send_test *t = arg;
	unsigned char *buf = malloc(65536);
	ssize_t n;

	CHECK(buf != NULL);
	while (buf && (n = sl_conn_recv(NULL, t->pr.b, buf, 65536)) > 0)
		stream_take(&t->in, buf, n);
	t->last = buf ? n : -ENOMEM;
	free(buf);
}

static void
send_sender(void *arg)
{
	struct send_test *t = arg;
	uint64_t rng = t->deadlines ? 4 : 3;

	CHECK_ERR_EQ(acked_bytes(sl_conn_fd(t->pr.a), &t->acked_base), 0);
	for (uint64_t i = 0; i < SEND_ROUNDS; i++)
		send_round(t, &rng, i);
	CHECK_ERR_EQ(sl_conn_shutdown(NULL, t->pr.a, SHUT_WR), 0);
}

static void
send_main(void *arg)
{
	struct send_test *t = arg;
	struct sl_sock_opts aopts;
	struct sl_listen_opts lopts;
	struct sl_task *rx, *tx;

	sl_sock_opts_default(&aopts);
	aopts.sndbuf = SEND_SOCKBUF;
	sl_listen_opts_default(&lopts);
	lopts.conn.rcvbuf = SEND_SOCKBUF;
	lopts.conn.max_buffered = SEND_SOCKBUF;
	if (!pair_open(&t->pr, &aopts, &lopts))
		return;

	/* Pinned apart: the sender's waiting for its bytes to be taken
	 * must not hold up the processor where they are received. */
	rx = spawn_pinned(send_receiver, t, 1);
	tx = spawn_pinned(send_sender, t, 0);
	harness_join(tx);
	harness_join(rx);
	sl_io_stats_get(&t->st);
	pair_close(&t->pr);
}

static void
send_assert(struct send_test *t, const char *what)
{
	if (t->in.bad)
		fail_msg("stream wrong from byte %llu",
			 (unsigned long long)t->in.bad_at);
	assert_err(t->last, 0);
	assert_int_equal(t->in.got, t->pos);
	if (t->full_cancels)
		fail_msg("%llu sends reported an error after all their bytes "
			 "had gone",
			 (unsigned long long)t->full_cancels);
	print_message("%s: %llu sends ended part way\n", what,
		      (unsigned long long)t->partial);
	tally_assert(&t->tally, what);
}

static struct send_test send_test;

static void
test_io_cancel_send_race(void **state)
{
	struct send_test *t = &send_test;

	(void)state;
	memset(t, 0, sizeof(*t));
	race_run(send_main, t);
	send_assert(t, "send against cancel");
	/* Every send that completed queued at least one request. */
	print_message("io stats: %llu ops, %llu cancels\n",
		      (unsigned long long)t->st.ops,
		      (unsigned long long)t->st.cancels);
	assert_true(t->st.ops >= t->tally.ok);
	assert_true(t->st.cancels > 0);
}

static void
test_io_cancel_send_deadline_race(void **state)
{
	struct send_test *t = &send_test;

	(void)state;
	memset(t, 0, sizeof(*t));
	t->deadlines = true;
	race_run(send_main, t);
	send_assert(t, "send against deadline");
	print_message("io stats: %llu ops, %llu timeouts\n",
		      (unsigned long long)t->st.ops,
		      (unsigned long long)t->st.timeouts);
	assert_true(t->st.ops >= t->tally.ok);
	assert_true(t->st.timeouts > 0);
}

/* ---- a pipe read through the file calls ---- */

/*
 * A read of an empty pipe parks in the kernel until data comes, so a
 * cancel must reach the kernel; the feeder writes a chunk (at most
 * PIPE_BUF bytes, so it goes in whole) at about the same time.  Rounds
 * alternate between a cancelled context and one whose deadline is near.
 */
#define PIPE_ROUNDS HARNESS_SCALE(5000, 1000)
#define PIPE_CHUNK 4096

struct pipe_test {
	int rfd;
	struct feeder f;
	struct stream_in in;
	struct tally cancelled, timed;
	ssize_t last;
	struct sl_io_stats st;
};

static void
pipe_drain(struct pipe_test *t)
{
	while (t->in.got < t->in.expected) {
		unsigned slot;
		unsigned char *buf = guarded_take(&t->in.g, &slot);
		ssize_t n = sl_file_read(NULL, t->rfd, buf, PIPE_CHUNK, -1);

		guarded_used(&t->in.g, slot, n);
		if (n <= 0) {
			CHECK_INT_EQ(n, 1);
			return;
		}
		stream_take(&t->in, buf, n);
	}
}

static void
pipe_round(struct pipe_test *t, uint64_t *rng, uint64_t round)
{
	uint32_t n = 1 + (uint32_t)(harness_random(rng) % PIPE_CHUNK);
	size_t want = 1 + harness_random(rng) % PIPE_CHUNK;
	bool by_deadline = round % 3 == 2;
	struct sl_context *ctx = NULL;
	struct race race;
	unsigned slot;
	unsigned char *buf = guarded_take(&t->in.g, &slot);
	ssize_t r;

	if (by_deadline)
		CHECK_ERR_EQ(sl_context_with_deadline(sl_context_background(),
						      near_deadline(rng), &ctx),
			     0);
	else
		ctx = race_start(&race, rng, round);
	CHECK_ERR_EQ(sl_chan_send(t->f.tokens, &n), 0);
	t->in.expected += n;

	r = sl_file_read(ctx, t->rfd, buf, want, -1);
	guarded_used(&t->in.g, slot, r);
	if (by_deadline)
		tally_add(&t->timed, r, -ETIMEDOUT);
	else
		tally_add(&t->cancelled, r, -ECANCELED);
	stream_take(&t->in, buf, r);

	if (by_deadline)
		sl_context_release(ctx);
	else
		race_end(&race);
	pipe_drain(t);
}

static void
pipe_main(void *arg)
{
	struct pipe_test *t = arg;
	uint64_t rng = 5;
	struct sl_task *feeder;
	unsigned char *buf;
	uint32_t end = 0;
	unsigned slot;
	int pfd[2];

	t->f.tokens = sl_chan_create(sizeof(uint32_t), 4);
	CHECK(t->f.tokens != NULL);
	CHECK_ERR_EQ(pipe2(pfd, O_CLOEXEC), 0);
	if (!t->f.tokens)
		return;
	t->rfd = pfd[0];
	t->f.file = true;
	t->f.fd = pfd[1];
	guarded_init(&t->in.g, PIPE_CHUNK);
	feeder = spawn_pinned(feeder_run, &t->f, 1);

	for (uint64_t i = 0; i < PIPE_ROUNDS && !t->in.bad; i++)
		pipe_round(t, &rng, i);

	CHECK_ERR_EQ(sl_chan_send(t->f.tokens, &end), 0);
	harness_join(feeder);
	buf = guarded_take(&t->in.g, &slot);
	t->last = sl_file_read(NULL, t->rfd, buf, PIPE_CHUNK, -1);
	guarded_used(&t->in.g, slot, t->last);
	stream_take(&t->in, buf, t->last);
	sl_io_stats_get(&t->st);
	guarded_fini(&t->in.g);
	CHECK_ERR_EQ(sl_file_close(t->rfd), 0);
	sl_chan_destroy(t->f.tokens);
}

static struct pipe_test pipe_test;

static void
test_io_cancel_pipe_read_race(void **state)
{
	struct pipe_test *t = &pipe_test;

	(void)state;
	memset(t, 0, sizeof(*t));
	race_run(pipe_main, t);
	if (t->in.bad)
		fail_msg("stream wrong from byte %llu",
			 (unsigned long long)t->in.bad_at);
	assert_int_equal(t->in.g.late_writes, 0);
	assert_err(t->last, 0);
	assert_int_equal(t->in.got, t->f.sent);
	assert_int_equal(t->in.got, t->in.expected);
	tally_assert(&t->cancelled, "pipe read against cancel");
	tally_assert(&t->timed, "pipe read against deadline");
	/* Every read queued a request; the cancelled ones were cancelled
	 * in the kernel. */
	print_message("io stats: %llu ops, %llu cancels, %llu timeouts\n",
		      (unsigned long long)t->st.ops,
		      (unsigned long long)t->st.cancels,
		      (unsigned long long)t->st.timeouts);
	assert_true(t->st.ops >= t->in.expected / PIPE_CHUNK);
	assert_true(t->st.cancels > 0);
}

int
main(int argc, char **argv)
{
	char why[128];

	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_io_cancel_recv_race),
		cmocka_unit_test(test_io_cancel_recv_deadline_race),
		cmocka_unit_test(test_io_cancel_send_race),
		cmocka_unit_test(test_io_cancel_send_deadline_race),
		cmocka_unit_test(test_io_cancel_pipe_read_race),
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
