/* SPDX-License-Identifier: MIT */
/*
 * Tests of sl_select: which case is chosen, polling, timeouts, context
 * cancellation, fairness among ready cases, send and receive cases mixed,
 * closed channels, and stress runs with every item received exactly once.
 */
#include <errno.h>
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
chan_new(size_t capacity)
{
	struct sl_chan *ch = sl_chan_create(sizeof(uint64_t), capacity);

	CHECK(ch != NULL);
	return ch;
}

static struct sl_select_case
recv_case(struct sl_chan *ch, uint64_t *out)
{
	return (struct sl_select_case){ch, SL_SELECT_RECV, out, 1};
}

static struct sl_select_case
send_case(struct sl_chan *ch, uint64_t *elem)
{
	return (struct sl_select_case){ch, SL_SELECT_SEND, elem, 1};
}

/* ---- which case ---- */

struct ready_test {
	int recv_idx;
	int recv_result;
	uint64_t recv_got;
	int send_idx;
	int send_result;
	uint64_t len_after_send;
	int null_idx;
	int max_idx;
	int too_many_rc;
	uint64_t wrong_picks;
};

static void
ready_main(void *arg)
{
	struct ready_test *r = arg;
	struct sl_chan *a = chan_new(2);
	struct sl_chan *b = chan_new(2);
	struct sl_select_case c[SL_SELECT_MAX + 1];
	uint64_t out = 0;
	uint64_t v = 7;

	if (a == NULL || b == NULL)
		return;

	CHECK_ERR_EQ(sl_chan_send(b, &v), 0);
	c[0] = recv_case(a, &out);
	c[1] = recv_case(b, &out);
	r->recv_idx = sl_select(c, 2, NULL, SL_SELECT_FOREVER);
	r->recv_result = c[1].result;
	r->recv_got = out;

	/* a is full, b has room: only the send to b can proceed. */
	while (sl_chan_try_send(a, &v))
		;
	v = 8;
	c[0] = send_case(a, &v);
	c[1] = send_case(b, &v);
	r->send_idx = sl_select(c, 2, NULL, SL_SELECT_FOREVER);
	r->send_result = c[1].result;
	r->len_after_send = sl_chan_len(b);

	/* NULL cases are skipped even around the only ready one. */
	c[0] = recv_case(NULL, &out);
	c[1] = recv_case(b, &out);
	c[2] = recv_case(NULL, &out);
	r->null_idx = sl_select(c, 3, NULL, SL_SELECT_FOREVER);

	/* The ready case moves around among idle ones, over and over. */
	for (int round = 0; round < 200; round++) {
		int ready = round % 8;

		for (int i = 0; i < 8; i++)
			c[i] = recv_case(i == ready ? a : b, &out);
		if (sl_select(c, 8, NULL, SL_SELECT_FOREVER) != ready)
			r->wrong_picks++;
		CHECK(sl_chan_try_send(a, &v));
	}

	for (int i = 0; i < SL_SELECT_MAX + 1; i++)
		c[i] = recv_case(b, &out);
	c[SL_SELECT_MAX - 1] = recv_case(a, &out);
	r->max_idx = sl_select(c, SL_SELECT_MAX, NULL, SL_SELECT_POLL);
	r->too_many_rc = sl_select(c, SL_SELECT_MAX + 1, NULL, SL_SELECT_POLL);

	sl_chan_destroy(a);
	sl_chan_destroy(b);
}

static void
test_select_ready_case_chosen(void **state)
{
	struct ready_test r;

	(void)state;
	memset(&r, 0, sizeof(r));
	harness_run(1, ready_main, &r);
	assert_int_equal(r.recv_idx, 1);
	assert_int_equal(r.recv_result, 0);
	assert_int_equal(r.recv_got, 7);
	assert_int_equal(r.send_idx, 1);
	assert_int_equal(r.send_result, 0);
	assert_int_equal(r.len_after_send, 1);
	assert_int_equal(r.null_idx, 1);
	assert_int_equal(r.wrong_picks, 0);
	assert_int_equal(r.max_idx, SL_SELECT_MAX - 1);
	assert_int_equal(r.too_many_rc, -EINVAL);
}

/* ---- polling and timeouts ---- */

#define SELECT_TIMEOUT_NS (20 * SL_NSEC_PER_MSEC)

struct poll_test {
	int rc_empty;
	int rc_rendezvous;
	int rc_all_null;
	uint64_t len_after;
	int rc_ready;
	int rc_timeout;
	uint64_t waited;
	int rc_null_timeout;
	uint64_t null_waited;
};

static void
poll_main(void *arg)
{
	struct poll_test *p = arg;
	struct sl_chan *a = chan_new(4);
	struct sl_chan *rv = chan_new(0);
	struct sl_select_case c[3];
	uint64_t out = 0;
	uint64_t v = 3;
	uint64_t t0;

	if (a == NULL || rv == NULL)
		return;

	c[0] = recv_case(a, &out);
	c[1] = recv_case(rv, &out);
	p->rc_empty = sl_select(c, 2, NULL, SL_SELECT_POLL);

	/* Sending on a rendezvous channel with no receiver is not ready. */
	c[0] = send_case(rv, &v);
	p->rc_rendezvous = sl_select(c, 1, NULL, SL_SELECT_POLL);
	p->len_after = sl_chan_len(a) + sl_chan_len(rv);

	c[0] = recv_case(NULL, &out);
	c[1] = recv_case(NULL, &out);
	p->rc_all_null = sl_select(c, 2, NULL, SL_SELECT_POLL);

	CHECK_ERR_EQ(sl_chan_send(a, &v), 0);
	c[0] = recv_case(rv, &out);
	c[1] = recv_case(a, &out);
	p->rc_ready = sl_select(c, 2, NULL, SL_SELECT_POLL);

	t0 = sl_now_ns();
	p->rc_timeout = sl_select(c, 2, NULL, SELECT_TIMEOUT_NS);
	p->waited = sl_now_ns() - t0;

	c[0] = recv_case(NULL, &out);
	t0 = sl_now_ns();
	p->rc_null_timeout = sl_select(c, 1, NULL, SELECT_TIMEOUT_NS);
	p->null_waited = sl_now_ns() - t0;

	sl_chan_destroy(a);
	sl_chan_destroy(rv);
}

static void
test_select_poll_and_timeout(void **state)
{
	struct poll_test p;

	(void)state;
	memset(&p, 0, sizeof(p));
	harness_run(1, poll_main, &p);
	assert_int_equal(p.rc_empty, -EAGAIN);
	assert_int_equal(p.rc_rendezvous, -EAGAIN);
	assert_int_equal(p.rc_all_null, -EAGAIN);
	assert_int_equal(p.len_after, 0);
	assert_int_equal(p.rc_ready, 1);
	assert_int_equal(p.rc_timeout, -ETIMEDOUT);
	assert_at_least(p.waited, SELECT_TIMEOUT_NS);
	assert_int_equal(p.rc_null_timeout, -ETIMEDOUT);
	assert_at_least(p.null_waited, SELECT_TIMEOUT_NS);
}

/* ---- contexts ---- */

struct ctx_select {
	struct sl_context *ctx;
	struct sl_chan *idle;
	int rc;
	int done_idx;
	int done_result;
	bool woke_after_deadline;
	uint64_t deadline;
	uint64_t woke_at;
	uint64_t returned;
};

static void
parked_select_task(void *arg)
{
	struct ctx_select *cs = arg;
	struct sl_select_case c[1];
	uint64_t out;

	c[0] = recv_case(cs->idle, &out);
	cs->rc = sl_select(c, 1, cs->ctx, SL_SELECT_FOREVER);
	cs->woke_at = sl_now_ns();
	cs->returned++;
}

/* Go's "case <-ctx.Done()": the done channel as an ordinary case. */
static void
done_case_task(void *arg)
{
	struct ctx_select *cs = arg;
	struct sl_select_case c[2];
	uint64_t out;

	c[0] = recv_case(cs->idle, &out);
	c[1] = recv_case(sl_context_done(cs->ctx), NULL);
	cs->done_idx = sl_select(c, 2, NULL, SL_SELECT_FOREVER);
	cs->done_result = c[1].result;
}

static void
ctx_select_main(void *arg)
{
	struct ctx_select *cs = arg;
	struct ctx_select by_done = {.rc = 1};
	struct ctx_select by_deadline = {.rc = 1};
	struct sl_task *t[3];

	cs->idle = chan_new(4);
	CHECK_ERR_EQ(sl_context_with_cancel(sl_context_background(), &cs->ctx),
		     0);
	if (cs->idle == NULL || cs->ctx == NULL)
		return;
	by_done = *cs;

	/* One processor: after the yield both tasks are parked. */
	t[0] = harness_spawn(parked_select_task, cs, -1);
	t[1] = harness_spawn(done_case_task, &by_done, -1);
	sl_task_yield();
	CHECK_UINT_EQ(cs->returned, 0);
	sl_context_cancel(cs->ctx);
	harness_join(t[0]);
	harness_join(t[1]);
	cs->done_idx = by_done.done_idx;
	cs->done_result = by_done.done_result;

	/* A deadline ends a select with -ETIMEDOUT, not before it. */
	by_deadline.idle = cs->idle;
	CHECK_ERR_EQ(sl_context_with_timeout(sl_context_background(),
					     SELECT_TIMEOUT_NS,
					     &by_deadline.ctx),
		     0);
	if (by_deadline.ctx != NULL) {
		by_deadline.deadline = sl_context_deadline(by_deadline.ctx);
		t[2] = harness_spawn(parked_select_task, &by_deadline, -1);
		harness_join(t[2]);
		cs->woke_after_deadline =
			by_deadline.woke_at >= by_deadline.deadline;
		CHECK_ERR_EQ(by_deadline.rc, -ETIMEDOUT);
		sl_context_release(by_deadline.ctx);
	}

	sl_context_release(cs->ctx);
	sl_chan_destroy(cs->idle);
}

static void
test_select_ctx_cancel_wakes_parked(void **state)
{
	struct ctx_select cs;

	(void)state;
	memset(&cs, 0, sizeof(cs));
	harness_run(1, ctx_select_main, &cs);
	assert_int_equal(cs.rc, -ECANCELED);
	assert_int_equal(cs.returned, 1);
	assert_int_equal(cs.done_idx, 1);
	assert_int_equal(cs.done_result, -EPIPE);
	assert_true(cs.woke_after_deadline);
}

/* ---- fairness ---- */

#define FAIR_ROUNDS 10000

struct fair_test {
	uint64_t recv_wins[3];
	uint64_t send_wins[2];
	uint64_t three_wins[3];
	uint64_t bad_rc;
};

/* Every channel stays ready throughout: the one chosen is refilled (or
 * drained) at once, so only the selection rule decides. */
static void
fair_main(void *arg)
{
	struct fair_test *f = arg;
	struct sl_chan *ch[3];
	struct sl_select_case c[3];
	uint64_t out;
	uint64_t v = 1;

	for (int i = 0; i < 3; i++) {
		ch[i] = chan_new(4);
		if (ch[i] == NULL)
			return;
		CHECK(sl_chan_try_send(ch[i], &v));
		CHECK(sl_chan_try_send(ch[i], &v));
	}

	for (int round = 0; round < FAIR_ROUNDS; round++) {
		int rc;

		c[0] = recv_case(ch[0], &out);
		c[1] = recv_case(ch[1], &out);
		rc = sl_select(c, 2, NULL, SL_SELECT_FOREVER);
		if (rc < 0 || rc > 1) {
			f->bad_rc++;
			continue;
		}
		f->recv_wins[rc]++;
		CHECK(sl_chan_try_send(ch[rc], &v));
	}

	for (int round = 0; round < FAIR_ROUNDS; round++) {
		int rc;

		for (int i = 0; i < 3; i++)
			c[i] = recv_case(ch[i], &out);
		rc = sl_select(c, 3, NULL, SL_SELECT_POLL);
		if (rc < 0 || rc > 2) {
			f->bad_rc++;
			continue;
		}
		f->three_wins[rc]++;
		CHECK(sl_chan_try_send(ch[rc], &v));
	}

	/* Sends: both channels keep room for one more. */
	for (int i = 0; i < 2; i++)
		while (sl_chan_try_recv(ch[i], &out))
			;
	for (int round = 0; round < FAIR_ROUNDS; round++) {
		int rc;

		c[0] = send_case(ch[0], &v);
		c[1] = send_case(ch[1], &v);
		rc = sl_select(c, 2, NULL, SL_SELECT_FOREVER);
		if (rc < 0 || rc > 1) {
			f->bad_rc++;
			continue;
		}
		f->send_wins[rc]++;
		CHECK(sl_chan_try_recv(ch[rc], &out));
	}

	for (int i = 0; i < 3; i++)
		sl_chan_destroy(ch[i]);
}

static void
assert_share(uint64_t wins, uint64_t rounds, unsigned lo_pct,
	     unsigned hi_pct)
{
	print_message("chosen %llu of %llu\n", (unsigned long long)wins,
		      (unsigned long long)rounds);
	assert_in_range(wins, rounds * lo_pct / 100, rounds * hi_pct / 100);
}

static void
test_select_fair_among_ready_cases(void **state)
{
	struct fair_test f;

	(void)state;
	memset(&f, 0, sizeof(f));
	harness_run(1, fair_main, &f);
	assert_int_equal(f.bad_rc, 0);
	for (int i = 0; i < 2; i++) {
		assert_share(f.recv_wins[i], FAIR_ROUNDS, 40, 60);
		assert_share(f.send_wins[i], FAIR_ROUNDS, 40, 60);
	}
	for (int i = 0; i < 3; i++)
		assert_share(f.three_wins[i], FAIR_ROUNDS, 27, 40);
}

/* ---- send and receive together ---- */

#define PAIRED_ROUNDS HARNESS_SCALE(20000, 4000)

struct mixed_test {
	int send_idx;
	uint64_t sent_seen;
	int recv_idx;
	uint64_t recv_got;
	uint64_t paired;
	uint64_t bad;
};

struct paired {
	struct sl_chan *rv;
	struct sl_chan *idle;
	struct mixed_test *m;
};

/* Both sides of one rendezvous channel select at once, each also waiting
 * on a channel that never becomes ready; they must still meet. */
static void
select_sender(void *arg)
{
	struct paired *p = arg;
	struct sl_select_case c[2];
	uint64_t out;

	for (uint64_t i = 0; i < PAIRED_ROUNDS; i++) {
		c[0] = recv_case(p->idle, &out);
		c[1] = send_case(p->rv, &i);
		if (sl_select(c, 2, NULL, SL_SELECT_FOREVER) != 1 ||
		    c[1].result != 0)
			p->m->bad++;
	}
}

static void
select_receiver(void *arg)
{
	struct paired *p = arg;
	struct sl_select_case c[2];
	uint64_t out = 0;

	for (uint64_t i = 0; i < PAIRED_ROUNDS; i++) {
		c[0] = recv_case(p->rv, &out);
		c[1] = recv_case(p->idle, &out);
		if (sl_select(c, 2, NULL, SL_SELECT_FOREVER) != 0 ||
		    c[0].result != 0 || out != i)
			p->m->bad++;
		else
			p->m->paired++;
	}
}

static void
mixed_main(void *arg)
{
	struct mixed_test *m = arg;
	struct sl_chan *a = chan_new(2);
	struct sl_chan *b = chan_new(2);
	struct paired p = {chan_new(0), chan_new(4), m};
	struct sl_select_case c[2];
	struct sl_task *t[2];
	uint64_t out = 0;
	uint64_t v = 11;

	if (a == NULL || b == NULL || p.rv == NULL || p.idle == NULL)
		return;

	c[0] = recv_case(a, &out);
	c[1] = send_case(b, &v);
	m->send_idx = sl_select(c, 2, NULL, SL_SELECT_FOREVER);
	CHECK(sl_chan_try_recv(b, &m->sent_seen));

	v = 12;
	CHECK(sl_chan_try_send(a, &v));
	while (sl_chan_try_send(b, &v))
		;
	c[0] = recv_case(a, &out);
	c[1] = send_case(b, &v);
	m->recv_idx = sl_select(c, 2, NULL, SL_SELECT_FOREVER);
	m->recv_got = out;

	t[0] = harness_spawn(select_sender, &p, 0);
	t[1] = harness_spawn(select_receiver, &p, 1);
	harness_join(t[0]);
	harness_join(t[1]);

	sl_chan_destroy(a);
	sl_chan_destroy(b);
	sl_chan_destroy(p.rv);
	sl_chan_destroy(p.idle);
}

static void
test_select_mixes_send_and_recv(void **state)
{
	struct mixed_test m;

	(void)state;
	memset(&m, 0, sizeof(m));
	harness_run(2, mixed_main, &m);
	assert_int_equal(m.send_idx, 1);
	assert_int_equal(m.sent_seen, 11);
	assert_int_equal(m.recv_idx, 0);
	assert_int_equal(m.recv_got, 12);
	assert_int_equal(m.bad, 0);
	assert_int_equal(m.paired, PAIRED_ROUNDS);
}

/* ---- closed channels ---- */

struct closed_test {
	int drained_idx;
	int drained_result;
	int buffered_idx;
	int buffered_result;
	uint64_t buffered_got;
	int after_idx;
	int after_result;
	int send_idx;
	int send_result;
	int parked_idx;
	int parked_result;
	struct sl_chan *wait_on[2];
};

static void
parked_on_closing(void *arg)
{
	struct closed_test *ct = arg;
	struct sl_select_case c[2];
	uint64_t out;

	c[0] = recv_case(ct->wait_on[0], &out);
	c[1] = recv_case(ct->wait_on[1], &out);
	ct->parked_idx = sl_select(c, 2, NULL, SL_SELECT_FOREVER);
	ct->parked_result = c[ct->parked_idx == 1].result;
}

static void
closed_main(void *arg)
{
	struct closed_test *ct = arg;
	struct sl_chan *a = chan_new(4);
	struct sl_chan *b = chan_new(4);
	struct sl_chan *full = chan_new(4);
	struct sl_select_case c[2];
	struct sl_task *t;
	uint64_t out = 0;
	uint64_t v = 21;

	ct->wait_on[0] = chan_new(4);
	ct->wait_on[1] = chan_new(0);
	if (!a || !b || !full || !ct->wait_on[0] || !ct->wait_on[1])
		return;

	CHECK_ERR_EQ(sl_chan_close(a), 0);
	c[0] = recv_case(b, &out);
	c[1] = recv_case(a, &out);
	ct->drained_idx = sl_select(c, 2, NULL, SL_SELECT_FOREVER);
	ct->drained_result = c[1].result;

	/* A closed channel gives its buffered element first. */
	CHECK_ERR_EQ(sl_chan_send(b, &v), 0);
	CHECK_ERR_EQ(sl_chan_close(b), 0);
	c[0] = recv_case(b, &out);
	ct->buffered_idx = sl_select(c, 1, NULL, SL_SELECT_FOREVER);
	ct->buffered_result = c[0].result;
	ct->buffered_got = out;
	ct->after_idx = sl_select(c, 1, NULL, SL_SELECT_FOREVER);
	ct->after_result = c[0].result;

	/* A send to a closed channel is ready, and fails. */
	while (sl_chan_try_send(full, &v))
		;
	CHECK_ERR_EQ(sl_chan_close(full), 0);
	c[0] = send_case(full, &v);
	ct->send_idx = sl_select(c, 1, NULL, SL_SELECT_POLL);
	ct->send_result = c[0].result;

	/* One processor: the task parks, then the close must wake it. */
	t = harness_spawn(parked_on_closing, ct, -1);
	sl_task_yield();
	CHECK_ERR_EQ(sl_chan_close(ct->wait_on[1]), 0);
	harness_join(t);

	sl_chan_destroy(a);
	sl_chan_destroy(b);
	sl_chan_destroy(full);
	sl_chan_destroy(ct->wait_on[0]);
	sl_chan_destroy(ct->wait_on[1]);
}

static void
test_select_closed_channel_reports_epipe(void **state)
{
	struct closed_test ct;

	(void)state;
	memset(&ct, 0, sizeof(ct));
	harness_run(1, closed_main, &ct);
	assert_int_equal(ct.drained_idx, 1);
	assert_int_equal(ct.drained_result, -EPIPE);
	assert_int_equal(ct.buffered_idx, 0);
	assert_int_equal(ct.buffered_result, 0);
	assert_int_equal(ct.buffered_got, 21);
	assert_int_equal(ct.after_idx, 0);
	assert_int_equal(ct.after_result, -EPIPE);
	assert_int_equal(ct.send_idx, 0);
	assert_int_equal(ct.send_result, -EPIPE);
	assert_int_equal(ct.parked_idx, 1);
	assert_int_equal(ct.parked_result, -EPIPE);
}

/* ---- stress ---- */

#define STRESS_CHANNELS 4
#define STRESS_PRODUCERS 8
#define STRESS_CONSUMERS 4
#define NO_ITEM UINT64_MAX

struct select_stress {
	struct sl_chan *ch[STRESS_CHANNELS];
	bool select_send;
	uint64_t per_producer;
	struct harness_seen seen;
	_Atomic uint64_t send_failures;
	_Atomic uint64_t select_errors;
};

struct stress_worker {
	struct select_stress *s;
	unsigned id;
	uint64_t last[STRESS_PRODUCERS];
};

static void
stress_producer(void *arg)
{
	struct stress_worker *w = arg;
	struct select_stress *s = w->s;
	struct sl_select_case c[STRESS_CHANNELS];

	for (uint64_t i = 0; i < s->per_producer; i++) {
		uint64_t v = w->id * s->per_producer + i;
		int rc;

		if (!s->select_send) {
			struct sl_chan *ch = s->ch[w->id % STRESS_CHANNELS];

			if (sl_chan_send(ch, &v) != 0)
				atomic_fetch_add(&s->send_failures, 1);
			continue;
		}

		/* Whichever channel has room (or a receiver) first. */
		for (int k = 0; k < STRESS_CHANNELS; k++)
			c[k] = send_case(s->ch[k], &v);
		rc = sl_select(c, STRESS_CHANNELS, NULL, SL_SELECT_FOREVER);
		if (rc < 0 || rc >= STRESS_CHANNELS || c[rc].result != 0)
			atomic_fetch_add(&s->send_failures, 1);
	}
}

static void
stress_consumer(void *arg)
{
	struct stress_worker *w = arg;
	struct select_stress *s = w->s;
	struct sl_select_case c[STRESS_CHANNELS];
	uint64_t out = 0;
	unsigned open = STRESS_CHANNELS;

	for (unsigned p = 0; p < STRESS_PRODUCERS; p++)
		w->last[p] = NO_ITEM;
	for (int k = 0; k < STRESS_CHANNELS; k++)
		c[k] = recv_case(s->ch[k], &out);

	/* A closed, drained channel's case is dropped by setting its
	 * channel to NULL; the consumer ends when none is left. */
	while (open > 0) {
		int rc = sl_select(c, STRESS_CHANNELS, NULL,
				   SL_SELECT_FOREVER);
		uint64_t producer;

		if (rc < 0 || rc >= STRESS_CHANNELS) {
			atomic_fetch_add(&s->select_errors, 1);
			break;
		}
		if (c[rc].result == -EPIPE) {
			c[rc].ch = NULL;
			open--;
			continue;
		}
		CHECK_ERR_EQ(c[rc].result, 0);

		producer = out / s->per_producer;
		if (!s->select_send && producer < STRESS_PRODUCERS) {
			if (w->last[producer] != NO_ITEM)
				CHECK_UINT_GE(out, w->last[producer] + 1);
			w->last[producer] = out;
		}
		harness_seen_mark(&s->seen, out);
	}
}

static void
stress_main(void *arg)
{
	static const size_t caps[STRESS_CHANNELS] = {0, 1, 16, 1024};
	struct select_stress *s = arg;
	struct stress_worker w[STRESS_PRODUCERS + STRESS_CONSUMERS];
	struct sl_task *t[STRESS_PRODUCERS + STRESS_CONSUMERS];

	for (int k = 0; k < STRESS_CHANNELS; k++)
		if ((s->ch[k] = chan_new(caps[k])) == NULL)
			return;

	for (unsigned i = 0; i < STRESS_CONSUMERS; i++) {
		w[i] = (struct stress_worker){.s = s, .id = i};
		t[i] = harness_spawn(stress_consumer, &w[i], (int)(i % 2));
	}
	for (unsigned i = 0; i < STRESS_PRODUCERS; i++) {
		unsigned k = STRESS_CONSUMERS + i;

		w[k] = (struct stress_worker){.s = s, .id = i};
		t[k] = harness_spawn(stress_producer, &w[k], (int)(i % 2));
	}
	for (unsigned i = STRESS_CONSUMERS; i < SL_ARRAY_SIZE(t); i++)
		harness_join(t[i]);
	for (int k = 0; k < STRESS_CHANNELS; k++)
		CHECK_ERR_EQ(sl_chan_close(s->ch[k]), 0);
	for (unsigned i = 0; i < STRESS_CONSUMERS; i++)
		harness_join(t[i]);
	for (int k = 0; k < STRESS_CHANNELS; k++)
		sl_chan_destroy(s->ch[k]);
}

static void
select_stress_run(bool select_send)
{
	struct select_stress s = {
		.select_send = select_send,
		.per_producer =
			HARNESS_SCALE(4000000, 400000) / STRESS_PRODUCERS,
	};

	atomic_init(&s.send_failures, 0);
	atomic_init(&s.select_errors, 0);
	harness_seen_init(&s.seen, s.per_producer * STRESS_PRODUCERS);
	harness_run(2, stress_main, &s);
	assert_int_equal(atomic_load(&s.send_failures), 0);
	assert_int_equal(atomic_load(&s.select_errors), 0);
	harness_seen_assert_all(&s.seen);
	harness_seen_free(&s.seen);
}

static void
test_select_stress_recv_from_four(void **state)
{
	(void)state;
	select_stress_run(false);
}

static void
test_select_stress_send_and_recv(void **state)
{
	(void)state;
	select_stress_run(true);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_select_ready_case_chosen),
		cmocka_unit_test(test_select_poll_and_timeout),
		cmocka_unit_test(test_select_ctx_cancel_wakes_parked),
		cmocka_unit_test(test_select_fair_among_ready_cases),
		cmocka_unit_test(test_select_mixes_send_and_recv),
		cmocka_unit_test(test_select_closed_channel_reports_epipe),
		cmocka_unit_test(test_select_stress_recv_from_four),
		cmocka_unit_test(test_select_stress_send_and_recv),
	};

	harness_init();
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
