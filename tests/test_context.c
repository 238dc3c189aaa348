/* SPDX-License-Identifier: MIT */
/*
 * Tests of contexts: the background context, cancel and its done channel,
 * deadlines, inheritance down a tree, and the promise that matters most:
 * one cancel releases every task blocked in a _ctx call anywhere below it,
 * leaving no task and no context behind.
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
#include "core/sync.h"
#include "core/task.h"

#include "harness.h"

#define HOUR_NS (3600 * SL_NSEC_PER_SEC)
#define DEADLINE_NS (30 * SL_NSEC_PER_MSEC)

static struct sl_context *
derive(struct sl_context *parent)
{
	struct sl_context *ctx = NULL;

	CHECK_ERR_EQ(sl_context_with_cancel(parent, &ctx), 0);
	return ctx;
}

/* ---- without a runtime ---- */

static void
test_context_background_never_ends(void **state)
{
	struct sl_context *bg = sl_context_background();

	(void)state;
	assert_non_null(bg);
	assert_ptr_equal(sl_context_background(), bg);
	assert_int_equal(sl_context_err(bg), 0);
	assert_null(sl_context_done(bg));
	assert_int_equal(sl_context_deadline(bg), UINT64_MAX);
}

/* Creating, cancelling and releasing need no task (context.h). */
static void
test_context_cancel_works_outside_tasks(void **state)
{
	uint64_t base = sl_context_live();
	struct sl_context *parent = NULL;
	struct sl_context *child = NULL;
	struct sl_chan *done;

	(void)state;
	assert_int_equal(sl_context_with_cancel(sl_context_background(),
						&parent),
			 0);
	assert_int_equal(sl_context_with_cancel(parent, &child), 0);
	assert_int_equal(sl_context_live(), base + 2);
	done = sl_context_done(child);
	assert_non_null(done);
	assert_false(sl_chan_is_closed(done));

	sl_context_cancel(parent);
	assert_int_equal(sl_context_err(parent), -ECANCELED);
	assert_int_equal(sl_context_err(child), -ECANCELED);
	assert_true(sl_chan_is_closed(done));
	assert_int_equal(sl_context_err(sl_context_background()), 0);

	sl_context_release(child);
	sl_context_release(parent);
	assert_int_equal(sl_context_live(), base);
}

/* ---- cancel ---- */

struct cancel_test {
	uint64_t base;
	int err_before;
	bool closed_before;
	bool try_recv_before;
	int err_after[2];
	bool closed_after;
	int recv_done;
	uint64_t deadline;
	uint64_t live_while_held;
	uint64_t live_after;
};

static void
cancel_main(void *arg)
{
	struct cancel_test *c = arg;
	struct sl_context *ctx;
	struct sl_chan *done;

	c->base = sl_context_live();
	ctx = derive(sl_context_background());
	if (ctx == NULL)
		return;
	done = sl_context_done(ctx);
	CHECK(done != NULL);
	if (done == NULL)
		return;
	c->live_while_held = sl_context_live();

	c->err_before = sl_context_err(ctx);
	c->closed_before = sl_chan_is_closed(done);
	c->try_recv_before = sl_chan_try_recv(done, NULL);
	c->deadline = sl_context_deadline(ctx);

	sl_context_cancel(ctx);
	c->err_after[0] = sl_context_err(ctx);
	sl_context_cancel(ctx);
	c->err_after[1] = sl_context_err(ctx);
	c->closed_after = sl_chan_is_closed(done);
	c->recv_done = sl_chan_recv(done, NULL);

	sl_context_release(ctx);
	c->live_after = sl_context_live();
}

static void
test_context_cancel_sets_error_and_closes_done(void **state)
{
	struct cancel_test c;

	(void)state;
	memset(&c, 0, sizeof(c));
	harness_run(1, cancel_main, &c);
	assert_int_equal(c.live_while_held, c.base + 1);
	assert_int_equal(c.err_before, 0);
	assert_false(c.closed_before);
	assert_false(c.try_recv_before);
	assert_int_equal(c.deadline, UINT64_MAX);
	assert_int_equal(c.err_after[0], -ECANCELED);
	assert_int_equal(c.err_after[1], -ECANCELED);
	assert_true(c.closed_after);
	assert_int_equal(c.recv_done, -EPIPE);
	assert_int_equal(c.live_after, c.base);
}

/* ---- deadlines ---- */

struct deadline_test {
	uint64_t asked;
	uint64_t reported;
	int err_before;
	int sleep_rc;
	uint64_t woke_at;
	int err_after;
	int err_after_cancel;
	bool done_closed;
	uint64_t child_longer;
	uint64_t child_shorter_asked;
	uint64_t child_shorter;
	int past_err;
	uint64_t base;
	uint64_t live_after;
};

static void
deadline_main(void *arg)
{
	struct deadline_test *d = arg;
	struct sl_context *ctx = NULL;
	struct sl_context *longer = NULL;
	struct sl_context *shorter = NULL;
	struct sl_context *past = NULL;

	d->base = sl_context_live();
	d->asked = sl_now_ns() + DEADLINE_NS;
	CHECK_ERR_EQ(sl_context_with_deadline(sl_context_background(),
					      d->asked, &ctx),
		     0);
	if (ctx == NULL)
		return;
	d->reported = sl_context_deadline(ctx);
	d->err_before = sl_context_err(ctx);

	/* A child keeps the earlier of its own and its parent's deadline. */
	CHECK_ERR_EQ(sl_context_with_timeout(ctx, HOUR_NS, &longer), 0);
	d->child_shorter_asked = sl_now_ns() + DEADLINE_NS / 2;
	CHECK_ERR_EQ(sl_context_with_deadline(ctx, d->child_shorter_asked,
					      &shorter),
		     0);
	if (longer != NULL)
		d->child_longer = sl_context_deadline(longer);
	if (shorter != NULL)
		d->child_shorter = sl_context_deadline(shorter);

	d->sleep_rc = sl_task_sleep_ctx(ctx, HOUR_NS);
	d->woke_at = sl_now_ns();
	d->err_after = sl_context_err(ctx);
	d->done_closed = sl_chan_is_closed(sl_context_done(ctx));
	sl_context_cancel(ctx);
	d->err_after_cancel = sl_context_err(ctx);

	/* A deadline already past ends the context at birth. */
	CHECK_ERR_EQ(sl_context_with_deadline(sl_context_background(),
					      sl_now_ns() - 1, &past),
		     0);
	if (past != NULL) {
		d->past_err = sl_context_err(past);
		sl_context_release(past);
	}

	if (shorter != NULL)
		sl_context_release(shorter);
	if (longer != NULL)
		sl_context_release(longer);
	sl_context_release(ctx);
	d->live_after = sl_context_live();
}

static void
test_context_deadline_times_out_not_early(void **state)
{
	struct deadline_test d;

	(void)state;
	memset(&d, 0, sizeof(d));
	harness_run(2, deadline_main, &d);
	assert_int_equal(d.reported, d.asked);
	assert_int_equal(d.err_before, 0);
	assert_int_equal(d.sleep_rc, -ETIMEDOUT);
	if (d.woke_at < d.asked)
		fail_msg("woke %llu ns before the deadline",
			 (unsigned long long)(d.asked - d.woke_at));
	assert_int_equal(d.err_after, -ETIMEDOUT);
	assert_int_equal(d.err_after_cancel, -ETIMEDOUT);
	assert_true(d.done_closed);
	assert_int_equal(d.child_longer, d.asked);
	assert_int_equal(d.child_shorter, d.child_shorter_asked);
	assert_int_equal(d.past_err, -ETIMEDOUT);
	assert_int_equal(d.live_after, d.base);
}

/* ---- inheritance ---- */

struct inherit_test {
	int born_cancelled;
	bool born_done_closed;
	int born_timed_out;
	int parent_after_child_release;
	int sibling_after_child_release;
	int parent_after_child_cancel;
	int orphan_err;
	bool orphan_done_closed;
	uint64_t base;
	uint64_t live_after;
};

static void
inherit_main(void *arg)
{
	struct inherit_test *in = arg;
	struct sl_context *bg = sl_context_background();
	struct sl_context *parent;
	struct sl_context *child;
	struct sl_context *sibling;
	struct sl_context *late = NULL;
	struct sl_context *expired = NULL;
	struct sl_context *orphan;

	in->base = sl_context_live();

	/* Releasing or cancelling a child leaves its parent and siblings. */
	parent = derive(bg);
	child = derive(parent);
	sibling = derive(parent);
	if (!parent || !child || !sibling)
		return;
	sl_context_release(child);
	in->parent_after_child_release = sl_context_err(parent);
	in->sibling_after_child_release = sl_context_err(sibling);
	sl_context_cancel(sibling);
	in->parent_after_child_cancel = sl_context_err(parent);

	/* A child of an ended parent is born ended, with its reason. */
	sl_context_cancel(parent);
	CHECK_ERR_EQ(sl_context_with_cancel(parent, &late), 0);
	if (late != NULL) {
		in->born_cancelled = sl_context_err(late);
		in->born_done_closed = sl_chan_is_closed(sl_context_done(late));
	}
	CHECK_ERR_EQ(sl_context_with_deadline(bg, sl_now_ns() - 1, &expired),
		     0);
	if (expired != NULL) {
		struct sl_context *grandchild = derive(expired);

		if (grandchild != NULL) {
			in->born_timed_out = sl_context_err(grandchild);
			sl_context_release(grandchild);
		}
	}

	/* The parent released first: its child ends but stays valid for
	 * its own holder until released. */
	orphan = derive(sibling);
	sl_context_release(sibling);
	if (orphan != NULL) {
		in->orphan_err = sl_context_err(orphan);
		in->orphan_done_closed =
			sl_chan_is_closed(sl_context_done(orphan));
		sl_context_release(orphan);
	}

	if (expired != NULL)
		sl_context_release(expired);
	if (late != NULL)
		sl_context_release(late);
	sl_context_release(parent);
	in->live_after = sl_context_live();
}

static void
test_context_children_inherit_the_end(void **state)
{
	struct inherit_test in;

	(void)state;
	memset(&in, 0, sizeof(in));
	harness_run(1, inherit_main, &in);
	assert_int_equal(in.parent_after_child_release, 0);
	assert_int_equal(in.sibling_after_child_release, 0);
	assert_int_equal(in.parent_after_child_cancel, 0);
	assert_int_equal(in.born_cancelled, -ECANCELED);
	assert_true(in.born_done_closed);
	assert_int_equal(in.born_timed_out, -ETIMEDOUT);
	assert_int_equal(in.orphan_err, -ECANCELED);
	assert_true(in.orphan_done_closed);
	assert_int_equal(in.live_after, in.base);
}

/* ---- join_ctx ---- */

struct join_ctx_test {
	struct sl_chan *gate;
	int join_ctx_rc;
	int join_rc;
	int detached_join_ctx_rc;
	uint64_t live_before;
	uint64_t live_after;
};

static void
gate_task(void *arg)
{
	struct sl_chan *gate = arg;

	CHECK_ERR_EQ(sl_chan_recv(gate, NULL), -EPIPE);
}

static void
join_ctx_main(void *arg)
{
	struct join_ctx_test *j = arg;
	struct sl_context *ctx;
	struct sl_task *t[2];

	j->live_before = sl_runtime_live_tasks();
	j->gate = sl_chan_create(0, 0);
	ctx = derive(sl_context_background());
	if (j->gate == NULL || ctx == NULL)
		return;
	t[0] = harness_spawn(gate_task, j->gate, 1);
	t[1] = harness_spawn(gate_task, j->gate, 0);

	/* The handle survives a failed join_ctx: joined later, or
	 * detached so the task frees itself. */
	sl_context_cancel(ctx);
	j->join_ctx_rc = sl_task_join_ctx(ctx, t[0]);
	j->detached_join_ctx_rc = sl_task_join_ctx(ctx, t[1]);
	sl_task_detach(t[1]);
	sl_chan_close(j->gate);
	j->join_rc = sl_task_join(t[0]);

	while (sl_runtime_live_tasks() > j->live_before)
		sl_task_yield();
	j->live_after = sl_runtime_live_tasks();
	sl_context_release(ctx);
	sl_chan_destroy(j->gate);
}

static void
test_context_join_ctx_keeps_handle(void **state)
{
	struct join_ctx_test j;

	(void)state;
	memset(&j, 0, sizeof(j));
	harness_run(2, join_ctx_main, &j);
	assert_int_equal(j.join_ctx_rc, -ECANCELED);
	assert_int_equal(j.detached_join_ctx_rc, -ECANCELED);
	assert_int_equal(j.join_rc, 0);
	assert_int_equal(j.live_after, j.live_before);
}

/* ---- one cancel releases a whole tree of blocked tasks ---- */

enum block_kind {
	BLOCK_RECV,
	BLOCK_SEND,
	BLOCK_SLEEP,
	BLOCK_COND,
	BLOCK_WAITGROUP,
	BLOCK_JOIN,
	BLOCK_MUTEX,
	BLOCK_SELECT,
	BLOCK_KINDS,
};

static const char *const block_names[BLOCK_KINDS] = {
	[BLOCK_RECV] = "sl_chan_recv_ctx",
	[BLOCK_SEND] = "sl_chan_send_ctx",
	[BLOCK_SLEEP] = "sl_task_sleep_ctx",
	[BLOCK_COND] = "sl_cond_wait_ctx",
	[BLOCK_WAITGROUP] = "sl_waitgroup_wait_ctx",
	[BLOCK_JOIN] = "sl_task_join_ctx",
	[BLOCK_MUTEX] = "sl_mutex_lock_ctx",
	[BLOCK_SELECT] = "sl_select",
};

/* Things that never become ready by themselves. */
struct blockers {
	struct sl_chan *empty;
	struct sl_chan *full;
	struct sl_chan *gate;
	struct sl_mutex cond_lock;
	struct sl_cond cond;
	struct sl_waitgroup never;
	struct sl_mutex held;
	_Atomic unsigned started;
};

struct blocker {
	struct blockers *b;
	struct sl_context *ctx;
	enum block_kind kind;
	struct sl_task *target;
	struct sl_task *task;
	int rc;
	uint64_t returned_at;
	_Atomic bool returned;
};

static void
blocker_task(void *arg)
{
	struct blocker *k = arg;
	struct blockers *b = k->b;
	struct sl_select_case c[1];
	uint64_t v = 0;

	atomic_fetch_add(&b->started, 1);
	switch (k->kind) {
	case BLOCK_RECV:
		k->rc = sl_chan_recv_ctx(k->ctx, b->empty, &v);
		break;
	case BLOCK_SEND:
		k->rc = sl_chan_send_ctx(k->ctx, b->full, &v);
		break;
	case BLOCK_SLEEP:
		k->rc = sl_task_sleep_ctx(k->ctx, HOUR_NS);
		break;
	case BLOCK_COND:
		sl_mutex_lock(&b->cond_lock);
		k->rc = sl_cond_wait_ctx(k->ctx, &b->cond, &b->cond_lock);
		sl_mutex_unlock(&b->cond_lock);
		break;
	case BLOCK_WAITGROUP:
		k->rc = sl_waitgroup_wait_ctx(k->ctx, &b->never);
		break;
	case BLOCK_JOIN:
		k->rc = sl_task_join_ctx(k->ctx, k->target);
		break;
	case BLOCK_MUTEX:
		k->rc = sl_mutex_lock_ctx(k->ctx, &b->held);
		if (k->rc == 0)
			sl_mutex_unlock(&b->held);
		break;
	case BLOCK_SELECT:
		c[0] = (struct sl_select_case){b->empty, SL_SELECT_RECV, &v,
					       0};
		k->rc = sl_select(c, 1, k->ctx, SL_SELECT_FOREVER);
		break;
	case BLOCK_KINDS:
		break;
	}
	k->returned_at = sl_now_ns();
	atomic_store(&k->returned, true);
}

static bool
blockers_init(struct blockers *b)
{
	uint64_t v = 0;

	b->empty = sl_chan_create(sizeof(uint64_t), 4);
	b->full = sl_chan_create(sizeof(uint64_t), 1);
	b->gate = sl_chan_create(0, 0);
	CHECK(b->empty && b->full && b->gate);
	if (!b->empty || !b->full || !b->gate)
		return false;
	while (sl_chan_try_send(b->full, &v))
		;
	sl_mutex_init(&b->cond_lock);
	sl_cond_init(&b->cond);
	sl_waitgroup_init(&b->never);
	sl_waitgroup_add(&b->never, 1);
	sl_mutex_init(&b->held);
	sl_mutex_lock(&b->held);
	atomic_init(&b->started, 0);
	return true;
}

static void
blockers_fini(struct blockers *b)
{
	sl_mutex_unlock(&b->held);
	sl_waitgroup_done(&b->never);
	sl_chan_destroy(b->empty);
	sl_chan_destroy(b->full);
	sl_chan_destroy(b->gate);
}

/* Starts a blocker of @kind under @ctx; a join blocker gets a target of
 * its own that waits on the gate. */
static void
blocker_start(struct blockers *b, struct blocker *k, struct sl_context *ctx,
	      enum block_kind kind, int proc)
{
	k->b = b;
	k->ctx = ctx;
	k->kind = kind;
	k->rc = 1;
	k->target = NULL;
	atomic_init(&k->returned, false);
	if (kind == BLOCK_JOIN)
		k->target = harness_spawn(gate_task, b->gate, proc);
	k->task = harness_spawn(blocker_task, k, proc);
}

/* Yields until every blocker has started; on one processor each one has
 * then parked, since nothing else runs while it goes to its wait. */
static void
blockers_wait_started(struct blockers *b, unsigned n)
{
	while (atomic_load(&b->started) < n)
		sl_task_yield();
	for (int i = 0; i < 8; i++)
		sl_task_yield();
}

static void
blocker_finish(struct blocker *k, int want)
{
	harness_join(k->task);
	if (k->rc != want)
		harness_fail(__FILE__, __LINE__,
			     "%s returned %d (%s), not %d (%s)",
			     block_names[k->kind], k->rc, sl_strerror(k->rc),
			     want, sl_strerror(want));
}

#define CHAIN_DEPTH 100
#define FAN_BRANCHES 10
#define FAN_LEAVES 100
#define TREE_NODES (1 + CHAIN_DEPTH + FAN_BRANCHES * (1 + FAN_LEAVES))

struct tree_test {
	unsigned nprocs;
	uint64_t live_tasks_before;
	uint64_t live_tasks_after;
	uint64_t live_ctx_before;
	uint64_t live_ctx_after;
	uint64_t early_returns;
	int upper_err;
	int root_err_after_partial;
	uint64_t checked;
};

/*
 * The tree: a root; under it a chain of CHAIN_DEPTH contexts, and
 * FAN_BRANCHES children with FAN_LEAVES children each.  One blocker task
 * per context, the kinds taken in turn.  First the chain is cut in the
 * middle: exactly the blockers below the cut must return.  Then the root
 * is cancelled and everything else must return.
 */
static void
tree_main(void *arg)
{
	struct tree_test *tt = arg;
	struct blockers b;
	struct sl_context **ctx = calloc(TREE_NODES, sizeof(*ctx));
	struct blocker *k = calloc(TREE_NODES, sizeof(*k));
	const unsigned cut = 1 + CHAIN_DEPTH / 2;
	unsigned n = 0;

	tt->live_tasks_before = sl_runtime_live_tasks();
	tt->live_ctx_before = sl_context_live();
	CHECK(ctx != NULL && k != NULL);
	if (ctx == NULL || k == NULL || !blockers_init(&b))
		return;

	/* Index 0 is the root, 1..CHAIN_DEPTH the chain, then the fan. */
	ctx[n++] = derive(sl_context_background());
	for (unsigned i = 0; i < CHAIN_DEPTH; i++, n++)
		ctx[n] = derive(ctx[n - 1]);
	for (unsigned br = 0; br < FAN_BRANCHES; br++) {
		unsigned branch = n;

		ctx[n++] = derive(ctx[0]);
		for (unsigned leaf = 0; leaf < FAN_LEAVES; leaf++)
			ctx[n++] = derive(ctx[branch]);
	}
	for (unsigned i = 0; i < TREE_NODES; i++) {
		if (ctx[i] == NULL)
			return;
		blocker_start(&b, &k[i], ctx[i], i % BLOCK_KINDS,
			      (int)(i % tt->nprocs));
	}
	blockers_wait_started(&b, TREE_NODES);

	sl_context_cancel(ctx[cut]);
	for (unsigned i = cut; i <= CHAIN_DEPTH; i++) {
		blocker_finish(&k[i], -ECANCELED);
		tt->checked++;
	}
	for (unsigned i = 0; i < TREE_NODES; i++)
		if ((i < cut || i > CHAIN_DEPTH) &&
		    atomic_load(&k[i].returned))
			tt->early_returns++;
	tt->upper_err = sl_context_err(ctx[cut - 1]);
	tt->root_err_after_partial = sl_context_err(ctx[0]);

	sl_context_cancel(ctx[0]);
	for (unsigned i = 0; i < TREE_NODES; i++) {
		if (i >= cut && i <= CHAIN_DEPTH)
			continue;
		blocker_finish(&k[i], -ECANCELED);
		tt->checked++;
	}

	/* The join blockers' targets still wait on the gate. */
	sl_chan_close(b.gate);
	for (unsigned i = 0; i < TREE_NODES; i++)
		harness_join(k[i].target);

	/* Release in a mixed order: along the chain every other context
	 * goes before its child, the rest after. */
	for (unsigned i = 0; i < TREE_NODES; i += 2)
		sl_context_release(ctx[i]);
	for (unsigned i = 1; i < TREE_NODES; i += 2)
		sl_context_release(ctx[i]);

	blockers_fini(&b);
	tt->live_tasks_after = sl_runtime_live_tasks();
	tt->live_ctx_after = sl_context_live();
	free(k);
	free(ctx);
}

static void
check_tree(unsigned nprocs)
{
	struct tree_test tt;

	memset(&tt, 0, sizeof(tt));
	tt.nprocs = nprocs;
	harness_run(nprocs, tree_main, &tt);
	assert_int_equal(tt.checked, TREE_NODES);
	assert_int_equal(tt.early_returns, 0);
	assert_int_equal(tt.upper_err, 0);
	assert_int_equal(tt.root_err_after_partial, 0);
	assert_int_equal(tt.live_tasks_after, tt.live_tasks_before);
	assert_int_equal(tt.live_ctx_after, tt.live_ctx_before);
}

static void
test_context_cancel_releases_tree_one_proc(void **state)
{
	(void)state;
	check_tree(1);
}

static void
test_context_cancel_releases_tree_two_procs(void **state)
{
	(void)state;
	check_tree(2);
}

/* ---- a deadline releases every kind of wait ---- */

#define DEADLINE_BLOCKERS (4 * BLOCK_KINDS)

struct deadline_tree {
	uint64_t deadline;
	uint64_t early;
	uint64_t checked;
	uint64_t live_tasks_before;
	uint64_t live_tasks_after;
	uint64_t live_ctx_before;
	uint64_t live_ctx_after;
};

static void
deadline_tree_main(void *arg)
{
	struct deadline_tree *dt = arg;
	struct blocker k[DEADLINE_BLOCKERS];
	struct sl_context *root = NULL;
	struct sl_context *mid;
	struct blockers b;

	dt->live_tasks_before = sl_runtime_live_tasks();
	dt->live_ctx_before = sl_context_live();
	if (!blockers_init(&b))
		return;
	CHECK_ERR_EQ(sl_context_with_timeout(sl_context_background(),
					     DEADLINE_NS, &root),
		     0);
	mid = root != NULL ? derive(root) : NULL;
	if (mid == NULL)
		return;
	dt->deadline = sl_context_deadline(root);

	/* Half wait on the root itself, half on a child that inherits. */
	for (unsigned i = 0; i < DEADLINE_BLOCKERS; i++)
		blocker_start(&b, &k[i], i % 2 ? mid : root, i % BLOCK_KINDS,
			      (int)(i % 2));
	for (unsigned i = 0; i < DEADLINE_BLOCKERS; i++) {
		blocker_finish(&k[i], -ETIMEDOUT);
		dt->early += k[i].returned_at < dt->deadline;
		dt->checked++;
	}

	sl_chan_close(b.gate);
	for (unsigned i = 0; i < DEADLINE_BLOCKERS; i++)
		harness_join(k[i].target);
	sl_context_release(mid);
	sl_context_release(root);
	blockers_fini(&b);
	dt->live_tasks_after = sl_runtime_live_tasks();
	dt->live_ctx_after = sl_context_live();
}

static void
test_context_deadline_releases_every_wait(void **state)
{
	struct deadline_tree dt;

	(void)state;
	memset(&dt, 0, sizeof(dt));
	harness_run(2, deadline_tree_main, &dt);
	assert_int_equal(dt.checked, DEADLINE_BLOCKERS);
	assert_int_equal(dt.early, 0);
	assert_int_equal(dt.live_tasks_after, dt.live_tasks_before);
	assert_int_equal(dt.live_ctx_after, dt.live_ctx_before);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_context_background_never_ends),
		cmocka_unit_test(test_context_cancel_works_outside_tasks),
		cmocka_unit_test(test_context_cancel_sets_error_and_closes_done),
		cmocka_unit_test(test_context_deadline_times_out_not_early),
		cmocka_unit_test(test_context_children_inherit_the_end),
		cmocka_unit_test(test_context_join_ctx_keeps_handle),
		cmocka_unit_test(test_context_cancel_releases_tree_one_proc),
		cmocka_unit_test(test_context_cancel_releases_tree_two_procs),
		cmocka_unit_test(test_context_deadline_releases_every_wait),
	};

	harness_init();
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
