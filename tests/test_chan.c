/* SPDX-License-Identifier: MIT */
/*
 * Tests of channels: buffered order, the rendezvous of capacity 0, calls
 * that must never block, the rules of close, signal-only channels, and
 * stress runs in which every item sent must be received exactly once and,
 * per producer, in order.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/chan.h"
#include "core/context.h"
#include "core/runtime.h"
#include "core/task.h"

#include "harness.h"

static struct sl_chan *
chan_new(size_t elem_size, size_t capacity)
{
	struct sl_chan *ch = sl_chan_create(elem_size, capacity);

	CHECK(ch != NULL);
	return ch;
}

/* ---- creation ---- */

struct create_result {
	size_t cap[4];
	size_t len;
	bool closed;
	bool bad_is_null;
	int bad_errno;
};

static void
create_main(void *arg)
{
	struct create_result *r = arg;
	static const size_t asked[] = {0, 1, 5, 8};
	struct sl_chan *ch;

	for (size_t i = 0; i < SL_ARRAY_SIZE(asked); i++) {
		ch = chan_new(sizeof(uint64_t), asked[i]);
		if (ch == NULL)
			return;
		r->cap[i] = sl_chan_cap(ch);
		r->len += sl_chan_len(ch);
		r->closed |= sl_chan_is_closed(ch);
		sl_chan_destroy(ch);
	}

	errno = 0;
	ch = sl_chan_create(4097, 4);
	r->bad_is_null = ch == NULL;
	r->bad_errno = errno;
	if (ch != NULL)
		sl_chan_destroy(ch);
}

static void
test_chan_create_reports_capacity(void **state)
{
	struct create_result r;

	(void)state;
	memset(&r, 0, sizeof(r));
	harness_run(1, create_main, &r);
	assert_int_equal(r.cap[0], 0);
	/* A buffer of one may round up to the ring's minimum of two. */
	assert_in_range(r.cap[1], 1, 2);
	assert_int_equal(r.cap[2], 8);
	assert_int_equal(r.cap[3], 8);
	assert_int_equal(r.len, 0);
	assert_false(r.closed);
	assert_true(r.bad_is_null);
	assert_int_equal(r.bad_errno, EINVAL);
}

/* ---- buffered order ---- */

#define FIFO_ITEMS HARNESS_SCALE(100000, 20000)

struct fifo_test {
	struct sl_chan *ch;
	uint64_t len_full;
	bool try_send_full;
	bool try_recv_empty;
	uint64_t out_of_order;
	uint64_t received;
};

static void
fifo_producer(void *arg)
{
	struct fifo_test *f = arg;

	for (uint64_t i = 0; i < FIFO_ITEMS; i++)
		CHECK_ERR_EQ(sl_chan_send(f->ch, &i), 0);
}

static void
fifo_main(void *arg)
{
	struct fifo_test *f = arg;
	struct sl_task *t;
	uint64_t v;

	f->ch = chan_new(sizeof(uint64_t), 8);
	if (f->ch == NULL)
		return;

	for (v = 0; v < 8; v++)
		CHECK_ERR_EQ(sl_chan_send(f->ch, &v), 0);
	f->len_full = sl_chan_len(f->ch);
	f->try_send_full = sl_chan_try_send(f->ch, &v);
	for (uint64_t want = 0; want < 8; want++) {
		CHECK_ERR_EQ(sl_chan_recv(f->ch, &v), 0);
		f->out_of_order += v != want;
	}
	f->try_recv_empty = sl_chan_try_recv(f->ch, &v);

	/* Now with a producer on the other processor, so that both sides
	 * park in turn. */
	t = harness_spawn(fifo_producer, f, 1);
	for (uint64_t want = 0; want < FIFO_ITEMS; want++) {
		CHECK_ERR_EQ(sl_chan_recv(f->ch, &v), 0);
		f->out_of_order += v != want;
		f->received++;
	}
	harness_join(t);
	sl_chan_destroy(f->ch);
}

static void
test_chan_buffered_fifo(void **state)
{
	struct fifo_test f = {0};

	(void)state;
	harness_run(2, fifo_main, &f);
	assert_int_equal(f.len_full, 8);
	assert_false(f.try_send_full);
	assert_false(f.try_recv_empty);
	assert_int_equal(f.received, FIFO_ITEMS);
	assert_int_equal(f.out_of_order, 0);
}

/* ---- rendezvous ---- */

#define RENDEZVOUS_ITEMS HARNESS_SCALE(20000, 4000)

struct rendezvous_test {
	struct sl_chan *ch;
	_Atomic uint64_t arrivals;
	uint64_t early_returns;
	uint64_t out_of_order;
	uint64_t max_len;
};

/* Announces each receive before making it: a send that returns while the
 * count of arrivals is still behind has completed without a receiver. */
static void
announcing_receiver(void *arg)
{
	struct rendezvous_test *r = arg;
	uint64_t v;

	for (uint64_t i = 0; i < RENDEZVOUS_ITEMS; i++) {
		atomic_fetch_add(&r->arrivals, 1);
		CHECK_ERR_EQ(sl_chan_recv(r->ch, &v), 0);
		r->out_of_order += v != i;
	}
}

static void
rendezvous_main(void *arg)
{
	struct rendezvous_test *r = arg;
	struct sl_task *t;

	r->ch = chan_new(sizeof(uint64_t), 0);
	if (r->ch == NULL)
		return;
	t = harness_spawn(announcing_receiver, r, 1);
	for (uint64_t i = 0; i < RENDEZVOUS_ITEMS; i++) {
		uint64_t len;

		CHECK_ERR_EQ(sl_chan_send(r->ch, &i), 0);
		r->early_returns += atomic_load(&r->arrivals) < i + 1;
		len = sl_chan_len(r->ch);
		if (len > r->max_len)
			r->max_len = len;
	}
	harness_join(t);
	sl_chan_destroy(r->ch);
}

struct rendezvous_log {
	struct sl_chan *ch;
	char events[8];
	_Atomic unsigned n;
	int send_rc;
	int recv_rc;
	uint64_t got;
};

static void
log_event(struct rendezvous_log *l, char e)
{
	unsigned at = atomic_fetch_add(&l->n, 1);

	if (at < sizeof(l->events) - 1)
		l->events[at] = e;
}

static void
logging_sender(void *arg)
{
	struct rendezvous_log *l = arg;
	uint64_t v = 1234;

	log_event(l, 's');
	l->send_rc = sl_chan_send(l->ch, &v);
	log_event(l, 'S');
}

static void
logging_receiver(void *arg)
{
	struct rendezvous_log *l = arg;

	log_event(l, 'r');
	l->recv_rc = sl_chan_recv(l->ch, &l->got);
	log_event(l, 'R');
}

/*
 * On one processor the sender runs first and finds nobody: it must park,
 * so the receiver starts ('r') before the send returns ('S').
 */
static void
rendezvous_log_main(void *arg)
{
	struct rendezvous_log *l = arg;
	struct sl_task *s;
	struct sl_task *r;

	l->ch = chan_new(sizeof(uint64_t), 0);
	if (l->ch == NULL)
		return;
	s = harness_spawn(logging_sender, l, -1);
	sl_task_yield();
	r = harness_spawn(logging_receiver, l, -1);
	harness_join(s);
	harness_join(r);
	sl_chan_destroy(l->ch);
}

static void
test_chan_rendezvous_send_waits_for_receiver(void **state)
{
	struct rendezvous_test r = {.early_returns = 0};
	struct rendezvous_log l;
	const char *r_at;
	const char *send_done_at;

	(void)state;
	atomic_init(&r.arrivals, 0);
	harness_run(2, rendezvous_main, &r);
	assert_int_equal(r.early_returns, 0);
	assert_int_equal(r.out_of_order, 0);
	assert_int_equal(r.max_len, 0);

	memset(&l, 0, sizeof(l));
	harness_run(1, rendezvous_log_main, &l);
	assert_int_equal(l.send_rc, 0);
	assert_int_equal(l.recv_rc, 0);
	assert_int_equal(l.got, 1234);
	print_message("events: %s\n", l.events);
	r_at = strchr(l.events, 'r');
	send_done_at = strchr(l.events, 'S');
	assert_non_null(r_at);
	assert_non_null(send_done_at);
	assert_true(r_at < send_done_at);
	assert_int_equal(l.events[0], 's');
}

/* ---- calls that never block ---- */

struct try_test {
	struct sl_chan *ch;
	bool rv_send_alone;
	bool rv_recv_alone;
	bool buf_recv_empty;
	bool buf_send[3];
	bool rv_send_to_waiter;
	bool rv_recv_from_waiter;
	uint64_t got_by_waiter;
	uint64_t got_from_waiter;
	int waiter_rc;
	bool closed_send;
	bool closed_recv;
};

static void
waiting_receiver(void *arg)
{
	struct try_test *t = arg;

	t->waiter_rc = sl_chan_recv(t->ch, &t->got_by_waiter);
}

static void
waiting_sender(void *arg)
{
	struct try_test *t = arg;
	uint64_t v = 77;

	t->waiter_rc = sl_chan_send(t->ch, &v);
}

static void
try_main(void *arg)
{
	struct try_test *t = arg;
	struct sl_chan *buf = chan_new(sizeof(uint64_t), 2);
	struct sl_task *w;
	uint64_t v = 5;

	t->ch = chan_new(sizeof(uint64_t), 0);
	if (t->ch == NULL || buf == NULL)
		return;

	/* A rendezvous without a peer, and a buffer empty or full. */
	t->rv_send_alone = sl_chan_try_send(t->ch, &v);
	t->rv_recv_alone = sl_chan_try_recv(t->ch, &v);
	t->buf_recv_empty = sl_chan_try_recv(buf, &v);
	for (int i = 0; i < 3; i++)
		t->buf_send[i] = sl_chan_try_send(buf, &v);

	/* One processor: the yield lets the peer run until it parks, and
	 * then a try call finds it waiting. */
	w = harness_spawn(waiting_receiver, t, -1);
	sl_task_yield();
	v = 99;
	t->rv_send_to_waiter = sl_chan_try_send(t->ch, &v);
	harness_join(w);

	w = harness_spawn(waiting_sender, t, -1);
	sl_task_yield();
	t->rv_recv_from_waiter = sl_chan_try_recv(t->ch, &t->got_from_waiter);
	harness_join(w);

	CHECK_ERR_EQ(sl_chan_close(buf), 0);
	t->closed_send = sl_chan_try_send(buf, &v);
	CHECK(sl_chan_try_recv(buf, &v));
	CHECK(sl_chan_try_recv(buf, &v));
	t->closed_recv = sl_chan_try_recv(buf, &v);

	sl_chan_destroy(buf);
	sl_chan_destroy(t->ch);
}

static void
test_chan_try_calls_never_block(void **state)
{
	struct try_test t;

	(void)state;
	memset(&t, 0, sizeof(t));
	harness_run(1, try_main, &t);
	assert_false(t.rv_send_alone);
	assert_false(t.rv_recv_alone);
	assert_false(t.buf_recv_empty);
	assert_true(t.buf_send[0]);
	assert_true(t.buf_send[1]);
	assert_false(t.buf_send[2]);
	assert_true(t.rv_send_to_waiter);
	assert_int_equal(t.got_by_waiter, 99);
	assert_true(t.rv_recv_from_waiter);
	assert_int_equal(t.got_from_waiter, 77);
	assert_int_equal(t.waiter_rc, 0);
	assert_false(t.closed_send);
	assert_false(t.closed_recv);
}

/* ---- try calls from a plain thread ---- */

#define THREAD_ITEMS HARNESS_SCALE(20000, 5000)

struct thread_peer {
	struct sl_chan *to_task;
	struct sl_chan *from_task;
	uint64_t task_out_of_order;
	uint64_t thread_out_of_order;
	pthread_t thread;
};

/*
 * A thread outside the runtime feeds a task through try_send and drains
 * another through try_recv; the task parks on both sides, so the thread's
 * calls must wake it.
 */
static void *
peer_thread(void *arg)
{
	struct thread_peer *p = arg;

	for (uint64_t i = 0; i < THREAD_ITEMS; i++)
		while (!sl_chan_try_send(p->to_task, &i))
			sched_yield();
	for (uint64_t i = 0; i < THREAD_ITEMS; i++) {
		uint64_t v;

		while (!sl_chan_try_recv(p->from_task, &v))
			sched_yield();
		p->thread_out_of_order += v != i;
	}
	return NULL;
}

static void *
join_thread(void *arg)
{
	struct thread_peer *p = arg;

	pthread_join(p->thread, NULL);
	return NULL;
}

static void
thread_peer_main(void *arg)
{
	struct thread_peer *p = arg;

	p->to_task = chan_new(sizeof(uint64_t), 4);
	p->from_task = chan_new(sizeof(uint64_t), 4);
	if (p->to_task == NULL || p->from_task == NULL)
		return;
	CHECK_INT_EQ(pthread_create(&p->thread, NULL, peer_thread, p), 0);

	for (uint64_t i = 0; i < THREAD_ITEMS; i++) {
		uint64_t v;

		CHECK_ERR_EQ(sl_chan_recv(p->to_task, &v), 0);
		p->task_out_of_order += v != i;
	}
	for (uint64_t i = 0; i < THREAD_ITEMS; i++)
		CHECK_ERR_EQ(sl_chan_send(p->from_task, &i), 0);

	sl_blocking_call(join_thread, p);
	sl_chan_destroy(p->to_task);
	sl_chan_destroy(p->from_task);
}

static void
test_chan_try_from_thread_wakes_task(void **state)
{
	struct thread_peer p;

	(void)state;
	memset(&p, 0, sizeof(p));
	harness_run(1, thread_peer_main, &p);
	assert_int_equal(p.task_out_of_order, 0);
	assert_int_equal(p.thread_out_of_order, 0);
}

/* ---- close ---- */

struct close_drain {
	int close_rc[2];
	bool closed;
	uint64_t got[3];
	int rc_after[2];
	int send_rc;
	bool try_send;
	bool try_recv;
};

static void
close_drain_main(void *arg)
{
	struct close_drain *c = arg;
	struct sl_chan *ch = chan_new(sizeof(uint64_t), 8);
	uint64_t v;

	if (ch == NULL)
		return;
	for (v = 1; v <= 3; v++)
		CHECK_ERR_EQ(sl_chan_send(ch, &v), 0);

	c->close_rc[0] = sl_chan_close(ch);
	c->closed = sl_chan_is_closed(ch);
	c->send_rc = sl_chan_send(ch, &v);
	c->try_send = sl_chan_try_send(ch, &v);
	for (int i = 0; i < 3; i++)
		CHECK_ERR_EQ(sl_chan_recv(ch, &c->got[i]), 0);
	c->rc_after[0] = sl_chan_recv(ch, &v);
	c->rc_after[1] = sl_chan_recv(ch, NULL);
	c->try_recv = sl_chan_try_recv(ch, &v);
	c->close_rc[1] = sl_chan_close(ch);
	sl_chan_destroy(ch);
}

static void
test_chan_close_drains_then_epipe(void **state)
{
	struct close_drain c;

	(void)state;
	memset(&c, 0, sizeof(c));
	harness_run(1, close_drain_main, &c);
	assert_int_equal(c.close_rc[0], 0);
	assert_true(c.closed);
	assert_int_equal(c.send_rc, -EPIPE);
	assert_false(c.try_send);
	for (int i = 0; i < 3; i++)
		assert_int_equal(c.got[i], (uint64_t)i + 1);
	assert_int_equal(c.rc_after[0], -EPIPE);
	assert_int_equal(c.rc_after[1], -EPIPE);
	assert_false(c.try_recv);
	assert_int_equal(c.close_rc[1], -EPIPE);
}

#define CLOSE_WAITERS 8

struct close_waiters {
	struct sl_chan *ch;
	int rc[CLOSE_WAITERS];
	uint64_t buffered_got;
	int rc_drained;
	uint64_t capacity;
	bool senders;
};

struct close_waiter {
	struct close_waiters *cw;
	unsigned i;
};

static void
close_waiter_task(void *arg)
{
	struct close_waiter *w = arg;
	uint64_t v = 100 + w->i;

	if (w->cw->senders)
		w->cw->rc[w->i] = sl_chan_send(w->cw->ch, &v);
	else
		w->cw->rc[w->i] = sl_chan_recv(w->cw->ch, &v);
}

static void
close_waiters_main(void *arg)
{
	struct close_waiters *cw = arg;
	struct close_waiter w[CLOSE_WAITERS];
	struct sl_task *t[CLOSE_WAITERS];
	uint64_t v = 42;

	cw->ch = chan_new(sizeof(uint64_t), cw->capacity);
	if (cw->ch == NULL)
		return;
	/* Senders wait on a full buffer; receivers on an empty one. */
	if (cw->senders && cw->capacity > 0)
		while (sl_chan_try_send(cw->ch, &v))
			;

	for (unsigned i = 0; i < CLOSE_WAITERS; i++) {
		w[i] = (struct close_waiter){cw, i};
		t[i] = harness_spawn(close_waiter_task, &w[i],
				     (int)(i % sl_runtime_nprocs()));
	}
	/* With one processor every waiter is parked after this yield; with
	 * two, some may arrive after the close, which must not matter. */
	sl_task_yield();
	CHECK_ERR_EQ(sl_chan_close(cw->ch), 0);
	for (unsigned i = 0; i < CLOSE_WAITERS; i++)
		harness_join(t[i]);

	/* The buffer's old contents still come out, then nothing more. */
	if (cw->senders && cw->capacity > 0) {
		while (sl_chan_recv(cw->ch, &v) == 0) {
			CHECK_UINT_EQ(v, 42);
			cw->buffered_got++;
		}
	}
	cw->rc_drained = sl_chan_recv(cw->ch, &v);
	sl_chan_destroy(cw->ch);
}

static void
check_close_releases(unsigned nprocs, bool senders, uint64_t capacity)
{
	struct close_waiters cw;

	memset(&cw, 0, sizeof(cw));
	cw.senders = senders;
	cw.capacity = capacity;
	harness_run(nprocs, close_waiters_main, &cw);
	for (unsigned i = 0; i < CLOSE_WAITERS; i++)
		assert_int_equal(cw.rc[i], -EPIPE);
	assert_int_equal(cw.rc_drained, -EPIPE);
	if (senders && capacity > 0)
		assert_at_least(cw.buffered_got, capacity);
}

static void
test_chan_close_releases_waiting_receivers(void **state)
{
	(void)state;
	check_close_releases(1, false, 4);
	check_close_releases(1, false, 0);
	check_close_releases(2, false, 4);
	check_close_releases(2, false, 0);
}

static void
test_chan_close_releases_waiting_senders(void **state)
{
	(void)state;
	check_close_releases(1, true, 1);
	check_close_releases(1, true, 0);
	check_close_releases(2, true, 1);
	check_close_releases(2, true, 0);
}

/* ---- element sizes ---- */

#define SIGNALS HARNESS_SCALE(10000, 2000)

struct signal_test {
	struct sl_chan *ch;
	int send_rc[4];
	bool try_send_full;
	uint64_t len_full;
	int recv_rc[4];
	bool try_recv_empty;
	uint64_t pings;
	int rc_closed;
};

static void
pinger(void *arg)
{
	struct sl_chan *ch = arg;

	for (int i = 0; i < SIGNALS; i++)
		CHECK_ERR_EQ(sl_chan_send(ch, NULL), 0);
	CHECK_ERR_EQ(sl_chan_close(ch), 0);
}

static void
signal_main(void *arg)
{
	struct signal_test *s = arg;
	struct sl_chan *rv;
	struct sl_task *t;

	s->ch = chan_new(0, 4);
	rv = chan_new(0, 0);
	if (s->ch == NULL || rv == NULL)
		return;

	for (int i = 0; i < 4; i++)
		s->send_rc[i] = sl_chan_send(s->ch, NULL);
	s->try_send_full = sl_chan_try_send(s->ch, NULL);
	s->len_full = sl_chan_len(s->ch);
	for (int i = 0; i < 4; i++)
		s->recv_rc[i] = sl_chan_recv(s->ch, NULL);
	s->try_recv_empty = sl_chan_try_recv(s->ch, NULL);

	t = harness_spawn(pinger, rv, 1);
	while (sl_chan_recv(rv, NULL) == 0)
		s->pings++;
	harness_join(t);
	s->rc_closed = sl_chan_recv(rv, NULL);

	sl_chan_destroy(rv);
	sl_chan_destroy(s->ch);
}

static void
test_chan_elem_size_zero_signals(void **state)
{
	struct signal_test s;

	(void)state;
	memset(&s, 0, sizeof(s));
	harness_run(2, signal_main, &s);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(s.send_rc[i], 0);
		assert_int_equal(s.recv_rc[i], 0);
	}
	assert_false(s.try_send_full);
	assert_int_equal(s.len_full, 4);
	assert_false(s.try_recv_empty);
	assert_int_equal(s.pings, SIGNALS);
	assert_int_equal(s.rc_closed, -EPIPE);
}

#define BIG_ELEM 4096
#define BIG_ITEMS 2000

struct big_test {
	struct sl_chan *ch[2];
	uint64_t bad;
	uint64_t got;
};

static void
big_fill(unsigned char *e, uint64_t i)
{
	for (size_t b = 0; b < BIG_ELEM; b++)
		e[b] = (unsigned char)(i + b * 13);
}

static void
big_producer(void *arg)
{
	struct sl_chan *ch = arg;
	unsigned char *e = malloc(BIG_ELEM);

	CHECK(e != NULL);
	if (e == NULL)
		return;
	for (uint64_t i = 0; i < BIG_ITEMS; i++) {
		big_fill(e, i);
		CHECK_ERR_EQ(sl_chan_send(ch, e), 0);
	}
	sl_chan_close(ch);
	free(e);
}

static void
big_main(void *arg)
{
	struct big_test *b = arg;
	unsigned char *e = malloc(BIG_ELEM);
	unsigned char *want = malloc(BIG_ELEM);
	struct sl_task *t[2];

	CHECK(e != NULL && want != NULL);
	b->ch[0] = chan_new(BIG_ELEM, 2);
	b->ch[1] = chan_new(BIG_ELEM, 0);
	if (e == NULL || want == NULL || !b->ch[0] || !b->ch[1])
		return;

	for (int c = 0; c < 2; c++) {
		t[c] = harness_spawn(big_producer, b->ch[c], 1);
		for (uint64_t i = 0; sl_chan_recv(b->ch[c], e) == 0; i++) {
			big_fill(want, i);
			b->bad += memcmp(e, want, BIG_ELEM) != 0;
			b->got++;
		}
		harness_join(t[c]);
		sl_chan_destroy(b->ch[c]);
	}
	free(want);
	free(e);
}

static void
test_chan_large_elements_intact(void **state)
{
	struct big_test b;

	(void)state;
	memset(&b, 0, sizeof(b));
	harness_run(2, big_main, &b);
	assert_int_equal(b.got, 2 * BIG_ITEMS);
	assert_int_equal(b.bad, 0);
}

/* ---- every wake-up counts ---- */

#define PING_ROUNDS HARNESS_SCALE(200000, 20000)
#define STALL_NS (60 * SL_NSEC_PER_SEC)

/*
 * Two tasks bounce a token through a pair of buffered channels, so each
 * side is parked on an empty channel nearly every time the other sends.
 * In the stress runs a lost wake-up is often covered by a later one; here
 * it leaves both sides waiting.  Waits give up after STALL_NS, only so
 * that such a bug fails the test instead of hanging it.
 */
struct ping_pong {
	struct sl_chan *ping;
	struct sl_chan *pong;
	struct sl_context *stall;
	uint64_t rounds;
	uint64_t out_of_order;
	int stalled_rc;
};

static int
ping_wait(struct ping_pong *pp, struct sl_chan *ch, uint64_t *v)
{
	int rc = sl_chan_recv_ctx(pp->stall, ch, v);

	/* -EPIPE is the normal end; only the context's error is a stall. */
	if (rc != 0 && rc != -EPIPE) {
		pp->stalled_rc = rc;
		sl_chan_close(pp->ping);
		sl_chan_close(pp->pong);
	}
	return rc;
}

static void
pong_task(void *arg)
{
	struct ping_pong *pp = arg;
	uint64_t v;

	while (ping_wait(pp, pp->ping, &v) == 0)
		if (sl_chan_send(pp->pong, &v) != 0)
			break;
}

static void
ping_main(void *arg)
{
	struct ping_pong *pp = arg;
	struct sl_task *t;
	unsigned nprocs = sl_runtime_nprocs();

	pp->ping = chan_new(sizeof(uint64_t), 1024);
	pp->pong = chan_new(sizeof(uint64_t), 1024);
	CHECK_ERR_EQ(sl_context_with_timeout(sl_context_background(),
					     STALL_NS, &pp->stall),
		     0);
	if (pp->ping == NULL || pp->pong == NULL || pp->stall == NULL)
		return;

	t = harness_spawn(pong_task, pp, (int)(1 % nprocs));
	for (uint64_t i = 0; i < PING_ROUNDS; i++) {
		uint64_t v;

		if (sl_chan_send(pp->ping, &i) != 0 ||
		    ping_wait(pp, pp->pong, &v) != 0)
			break;
		pp->out_of_order += v != i;
		pp->rounds++;
	}
	sl_chan_close(pp->ping);
	harness_join(t);

	sl_context_release(pp->stall);
	sl_chan_destroy(pp->ping);
	sl_chan_destroy(pp->pong);
}

static void
test_chan_ping_pong_never_loses_wakeup(void **state)
{
	(void)state;
	for (unsigned nprocs = 1; nprocs <= 2; nprocs++) {
		struct ping_pong pp;

		memset(&pp, 0, sizeof(pp));
		harness_run(nprocs, ping_main, &pp);
		if (pp.stalled_rc != 0)
			fail_msg("%u procs: round %llu waited %llu s: %s",
				 nprocs, (unsigned long long)pp.rounds,
				 (unsigned long long)(STALL_NS /
						      SL_NSEC_PER_SEC),
				 sl_strerror(pp.stalled_rc));
		assert_int_equal(pp.rounds, PING_ROUNDS);
		assert_int_equal(pp.out_of_order, 0);
	}
}

/*
 * The same guarantee for plain sends and receives, which wait on their own
 * path (one waiter, no context): a producer pushes numbered items through
 * a channel of capacity 1, so it waits for room about as often as the
 * consumer waits for an item.  A plain wait cannot time out, so a watchdog
 * task closes the channel if the run stalls; the waits then end with
 * -EPIPE and the count falls short.
 */
#define RELAY_ITEMS HARNESS_SCALE(1000000, 100000)

struct relay {
	struct sl_chan *ch;
	struct sl_chan *finished;
	uint64_t received;
	uint64_t out_of_order;
	int stalled_rc;
};

static void
relay_producer(void *arg)
{
	struct relay *r = arg;

	for (uint64_t i = 0; i < RELAY_ITEMS; i++)
		if (sl_chan_send(r->ch, &i) != 0)
			return;
}

static void
relay_watchdog(void *arg)
{
	struct relay *r = arg;
	struct sl_context *stall = NULL;
	int rc;

	CHECK_ERR_EQ(sl_context_with_timeout(sl_context_background(),
					     STALL_NS, &stall),
		     0);
	if (stall == NULL)
		return;
	rc = sl_chan_recv_ctx(stall, r->finished, NULL);
	if (rc != -EPIPE) {
		r->stalled_rc = rc;
		sl_chan_close(r->ch);
	}
	sl_context_release(stall);
}

static void
relay_main(void *arg)
{
	struct relay *r = arg;
	unsigned nprocs = sl_runtime_nprocs();
	struct sl_task *prod, *dog;
	uint64_t v;

	r->ch = chan_new(sizeof(uint64_t), 1);
	r->finished = chan_new(0, 0);
	if (r->ch == NULL || r->finished == NULL)
		return;
	dog = harness_spawn(relay_watchdog, r, 0);
	prod = harness_spawn(relay_producer, r, (int)(1 % nprocs));
	while (r->received < RELAY_ITEMS && sl_chan_recv(r->ch, &v) == 0) {
		r->out_of_order += v != r->received;
		r->received++;
	}
	sl_chan_close(r->finished);
	harness_join(dog);
	sl_chan_close(r->ch);
	harness_join(prod);
	sl_chan_destroy(r->ch);
	sl_chan_destroy(r->finished);
}

static void
test_chan_plain_waits_never_lose_wakeup(void **state)
{
	(void)state;
	for (unsigned nprocs = 1; nprocs <= 2; nprocs++) {
		struct relay r;

		memset(&r, 0, sizeof(r));
		harness_run(nprocs, relay_main, &r);
		if (r.stalled_rc != 0)
			fail_msg("%u procs: item %llu waited %llu s: %s",
				 nprocs, (unsigned long long)r.received,
				 (unsigned long long)(STALL_NS /
						      SL_NSEC_PER_SEC),
				 sl_strerror(r.stalled_rc));
		assert_int_equal(r.received, RELAY_ITEMS);
		assert_int_equal(r.out_of_order, 0);
	}
}

/* ---- stress ---- */

#define NO_ITEM UINT64_MAX
#define STRESS_MAX_PRODUCERS 16

struct stress_item {
	uint64_t value;
	uint64_t inverse;
	uint64_t product;
};

struct chan_stress {
	struct sl_chan *ch;
	size_t capacity;
	size_t elem_size;
	unsigned producers;
	unsigned consumers;
	uint64_t per_producer;
	struct harness_seen seen;
	_Atomic uint64_t send_failures;
	bool burst;		/* the burst calls instead of single ones */
};

struct stress_worker {
	struct chan_stress *s;
	unsigned id;
	uint64_t last[STRESS_MAX_PRODUCERS];
	char buf[23 * sizeof(struct stress_item)];	/* burst receives */
	unsigned have, next;
};

#define STRESS_BURST_MAX 37

/* Bursts of 1 to STRESS_BURST_MAX elements, the size varying. */
static void
stress_produce_bursts(struct stress_worker *w, uint64_t first)
{
	struct chan_stress *s = w->s;
	char buf[STRESS_BURST_MAX * sizeof(struct stress_item)];
	uint64_t i = 0;
	unsigned size = 1 + w->id;

	while (i < s->per_producer) {
		size_t n = size % STRESS_BURST_MAX + 1;
		ssize_t sent;

		if (n > s->per_producer - i)
			n = (size_t)(s->per_producer - i);
		for (size_t k = 0; k < n; k++) {
			uint64_t v = first + i + k;
			struct stress_item it = {v, ~v,
						 v * 0x9e3779b97f4a7c15ull};

			memcpy(buf + k * s->elem_size, &it, s->elem_size);
		}
		sent = sl_chan_send_burst_ctx(NULL, s->ch, buf, n);
		if (sent != (ssize_t)n) {
			atomic_fetch_add(&s->send_failures, 1);
			return;
		}
		i += n;
		size = size * 7 + 3;
	}
}

static void
stress_producer(void *arg)
{
	struct stress_worker *w = arg;
	struct chan_stress *s = w->s;
	uint64_t first = w->id * s->per_producer;

	if (s->burst) {
		stress_produce_bursts(w, first);
		return;
	}
	for (uint64_t i = 0; i < s->per_producer; i++) {
		uint64_t v = first + i;
		struct stress_item it = {v, ~v, v * 0x9e3779b97f4a7c15ull};

		if (sl_chan_send(s->ch, &it) != 0)
			atomic_fetch_add(&s->send_failures, 1);
	}
}

/*
 * The next element for a consumer: one receive, or the next of a burst
 * received into the worker's buffer (of up to 23 elements, so that bursts
 * in and out do not line up).
 */
static bool
stress_next(struct stress_worker *w, struct stress_item *it)
{
	struct chan_stress *s = w->s;

	if (!s->burst)
		return sl_chan_recv(s->ch, it) == 0;
	if (w->next == w->have) {
		ssize_t n = sl_chan_recv_burst_ctx(NULL, s->ch, w->buf, 23);

		if (n < 0) {
			CHECK_ERR_EQ((int)n, -EPIPE);
			return false;
		}
		CHECK(n >= 1 && n <= 23);
		w->have = (unsigned)n;
		w->next = 0;
	}
	memset(it, 0, sizeof(*it));
	memcpy(it, w->buf + w->next++ * s->elem_size, s->elem_size);
	return true;
}

static void
stress_consumer(void *arg)
{
	struct stress_worker *w = arg;
	struct chan_stress *s = w->s;
	struct stress_item it;

	for (unsigned p = 0; p < STRESS_MAX_PRODUCERS; p++)
		w->last[p] = NO_ITEM;

	while (stress_next(w, &it)) {
		uint64_t producer = it.value / s->per_producer;

		if (s->elem_size == sizeof(it)) {
			CHECK_UINT_EQ(it.inverse, ~it.value);
			CHECK_UINT_EQ(it.product,
				      it.value * 0x9e3779b97f4a7c15ull);
		}
		if (producer < s->producers) {
			/* One consumer sees each producer's items in the
			 * order they were sent. */
			if (w->last[producer] != NO_ITEM)
				CHECK_UINT_GE(it.value, w->last[producer] + 1);
			w->last[producer] = it.value;
		}
		harness_seen_mark(&s->seen, it.value);
	}
}

static void
stress_main(void *arg)
{
	struct chan_stress *s = arg;
	struct stress_worker *w = calloc(s->producers + s->consumers,
					 sizeof(*w));
	struct sl_task **t = calloc(s->producers + s->consumers, sizeof(*t));
	unsigned n = s->producers + s->consumers;

	s->ch = chan_new(s->elem_size, s->capacity);
	CHECK(w != NULL && t != NULL);
	if (w == NULL || t == NULL || s->ch == NULL)
		return;

	/* Consumers first, so that they wait on the empty channel. */
	for (unsigned i = 0; i < n; i++) {
		bool consumer = i < s->consumers;

		w[i].s = s;
		w[i].id = consumer ? i : i - s->consumers;
		t[i] = harness_spawn(consumer ? stress_consumer
					      : stress_producer,
				     &w[i], (int)(i % 2));
	}
	for (unsigned i = s->consumers; i < n; i++)
		harness_join(t[i]);
	CHECK_ERR_EQ(sl_chan_close(s->ch), 0);
	for (unsigned i = 0; i < s->consumers; i++)
		harness_join(t[i]);

	CHECK_UINT_EQ(sl_chan_len(s->ch), 0);
	sl_chan_destroy(s->ch);
	free(t);
	free(w);
}

static void
chan_stress_run_as(size_t capacity, size_t elem_size, unsigned producers,
		   unsigned consumers, uint64_t items, bool burst)
{
	struct chan_stress s = {
		.capacity = capacity,
		.elem_size = elem_size,
		.producers = producers,
		.consumers = consumers,
		.per_producer = items / producers,
		.burst = burst,
	};

	assert_true(producers <= STRESS_MAX_PRODUCERS);
	atomic_init(&s.send_failures, 0);
	harness_seen_init(&s.seen, s.per_producer * producers);

	harness_run(2, stress_main, &s);
	assert_int_equal(atomic_load(&s.send_failures), 0);
	harness_seen_assert_all(&s.seen);

	harness_seen_free(&s.seen);
}

static void
chan_stress_run(size_t capacity, size_t elem_size, unsigned producers,
		unsigned consumers, uint64_t items)
{
	chan_stress_run_as(capacity, elem_size, producers, consumers, items,
			   false);
}

static void
burst_semantics_main(void *arg)
{
	struct sl_chan *ch = sl_chan_create(sizeof(uint64_t), 4);
	struct sl_context *ctx;
	uint64_t in[10], out[10];

	(void)arg;
	for (unsigned i = 0; i < 10; i++)
		in[i] = 100 + i;

	/* What fits goes in one call, and comes out in order. */
	CHECK_INT_EQ(sl_chan_send_burst_ctx(NULL, ch, in, 3), 3);
	CHECK_INT_EQ(sl_chan_recv_burst_ctx(NULL, ch, out, 10), 3);
	for (unsigned i = 0; i < 3; i++)
		CHECK_UINT_EQ(out[i], in[i]);

	/* A burst larger than the room left stops where the context ends:
	 * the count says how far it got, the next call gives the error. */
	CHECK_ERR_EQ(sl_context_with_cancel(sl_context_background(), &ctx), 0);
	sl_context_cancel(ctx);
	CHECK_INT_EQ(sl_chan_send_burst_ctx(ctx, ch, in, 10), 4);
	CHECK_INT_EQ(sl_chan_send_burst_ctx(ctx, ch, in + 4, 6), -ECANCELED);
	sl_context_release(ctx);

	/* A receive takes no more than asked for. */
	CHECK_INT_EQ(sl_chan_recv_burst_ctx(NULL, ch, out, 2), 2);
	CHECK_UINT_EQ(out[0], 100);
	CHECK_UINT_EQ(out[1], 101);
	CHECK_INT_EQ(sl_chan_recv_burst_ctx(NULL, ch, out, 0), 0);

	/* Closed: receivers drain what is buffered, then see -EPIPE; a
	 * burst send fails at once. */
	CHECK_ERR_EQ(sl_chan_close(ch), 0);
	CHECK_INT_EQ(sl_chan_send_burst_ctx(NULL, ch, in, 2), -EPIPE);
	CHECK_INT_EQ(sl_chan_recv_burst_ctx(NULL, ch, out, 10), 2);
	CHECK_UINT_EQ(out[0], 102);
	CHECK_UINT_EQ(out[1], 103);
	CHECK_INT_EQ(sl_chan_recv_burst_ctx(NULL, ch, out, 10), -EPIPE);
	sl_chan_destroy(ch);
}

static void
test_chan_burst_semantics(void **state)
{
	(void)state;
	harness_run(1, burst_semantics_main, NULL);
}

static void
test_chan_stress_bursts(void **state)
{
	(void)state;
	/* Through the ring in bursts, a small ring that fills often, and a
	 * rendezvous channel, where bursts fall back to single moves. */
	chan_stress_run_as(1024, sizeof(uint64_t), 4, 4,
			   HARNESS_SCALE(10000000, 1000000), true);
	chan_stress_run_as(8, sizeof(struct stress_item), 8, 8,
			   HARNESS_SCALE(4000000, 400000), true);
	chan_stress_run_as(0, sizeof(uint64_t), 4, 4,
			   HARNESS_SCALE(1000000, 100000), true);
}

static void
test_chan_stress_buffered_1024(void **state)
{
	(void)state;
	chan_stress_run(1024, sizeof(uint64_t), 4, 4,
			HARNESS_SCALE(10000000, 1000000));
}

static void
test_chan_stress_rendezvous(void **state)
{
	(void)state;
	chan_stress_run(0, sizeof(uint64_t), 4, 4,
			HARNESS_SCALE(2000000, 200000));
}

static void
test_chan_stress_many_tasks_small_buffer(void **state)
{
	(void)state;
	chan_stress_run(4, sizeof(struct stress_item), 16, 16,
			HARNESS_SCALE(4000000, 400000));
}

static void
test_chan_stress_many_tasks_rendezvous(void **state)
{
	(void)state;
	chan_stress_run(0, sizeof(struct stress_item), 16, 16,
			HARNESS_SCALE(2000000, 200000));
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chan_create_reports_capacity),
		cmocka_unit_test(test_chan_buffered_fifo),
		cmocka_unit_test(test_chan_rendezvous_send_waits_for_receiver),
		cmocka_unit_test(test_chan_try_calls_never_block),
		cmocka_unit_test(test_chan_try_from_thread_wakes_task),
		cmocka_unit_test(test_chan_close_drains_then_epipe),
		cmocka_unit_test(test_chan_close_releases_waiting_receivers),
		cmocka_unit_test(test_chan_close_releases_waiting_senders),
		cmocka_unit_test(test_chan_elem_size_zero_signals),
		cmocka_unit_test(test_chan_large_elements_intact),
		cmocka_unit_test(test_chan_ping_pong_never_loses_wakeup),
		cmocka_unit_test(test_chan_plain_waits_never_lose_wakeup),
		cmocka_unit_test(test_chan_stress_buffered_1024),
		cmocka_unit_test(test_chan_stress_rendezvous),
		cmocka_unit_test(test_chan_stress_many_tasks_small_buffer),
		cmocka_unit_test(test_chan_stress_many_tasks_rendezvous),
		cmocka_unit_test(test_chan_burst_semantics),
		cmocka_unit_test(test_chan_stress_bursts),
	};

	harness_init();
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
