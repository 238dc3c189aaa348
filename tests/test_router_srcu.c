/* SPDX-License-Identifier: MIT */
/*
 * Stress test of SRCU: readers on every processor keep reading a shared
 * pointer inside read-side sections, sometimes parking inside them, while
 * a writer keeps replacing it.  The writer poisons each old object after
 * sl_srcu_synchronize() and then frees it; a reader that ever sees poison
 * (or, under ASan, touches freed memory) proves a grace period too short.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "core/task.h"
#include "router/srcu.h"

#include "harness.h"

#define MAGIC_LIVE 0x5a5a5a5a5a5a5a5aull
#define MAGIC_DEAD 0xdeaddeaddeaddeadull
#define READERS 8

struct obj {
	uint64_t magic;
	uint64_t gen;
};

struct srcu_test {
	struct sl_srcu srcu;
	struct obj *_Atomic cur;
	_Atomic bool stop;
	_Atomic uint64_t reads, bad, regress, started;
	uint64_t swaps;
};

static void
reader(void *arg)
{
	struct srcu_test *t = arg;
	uint64_t last = 0, n = 0;

	atomic_fetch_add(&t->started, 1);
	while (!atomic_load(&t->stop)) {
		uint32_t idx = sl_srcu_read_lock(&t->srcu);
		struct obj *o = atomic_load(&t->cur);

		if (o->magic != MAGIC_LIVE)
			atomic_fetch_add(&t->bad, 1);
		if (o->gen < last)
			atomic_fetch_add(&t->regress, 1);
		last = o->gen;
		/* Sometimes hold the section across a park or a yield. */
		if (++n % 64 == 0)
			sl_task_sleep(1000);
		else if (n % 8 == 0)
			sl_task_yield();
		if (o->magic != MAGIC_LIVE)
			atomic_fetch_add(&t->bad, 1);
		sl_srcu_read_unlock(&t->srcu, idx);
		atomic_fetch_add(&t->reads, 1);
	}
}

static void
srcu_main(void *arg)
{
	struct srcu_test *t = arg;
	struct sl_task *r[READERS];
	struct obj *o = malloc(sizeof(*o));

	CHECK_ERR_EQ(sl_srcu_init(&t->srcu), 0);
	o->magic = MAGIC_LIVE;
	o->gen = 0;
	atomic_store(&t->cur, o);
	for (int i = 0; i < READERS; i++)
		r[i] = harness_spawn(reader, t, i % 2);

	/* Every reader must be reading before the writer starts. */
	while (atomic_load(&t->started) < READERS)
		sl_task_yield();
	for (uint64_t g = 1; g <= t->swaps; g++) {
		struct obj *n = malloc(sizeof(*n)), *old;

		sl_task_yield();
		n->magic = MAGIC_LIVE;
		n->gen = g;
		old = atomic_exchange(&t->cur, n);
		sl_srcu_synchronize(&t->srcu);
		old->magic = MAGIC_DEAD;
		free(old);
	}
	atomic_store(&t->stop, true);
	for (int i = 0; i < READERS; i++)
		harness_join(r[i]);
	free(atomic_load(&t->cur));
	sl_srcu_fini(&t->srcu);
}

static void
test_router_srcu_stress(void **state)
{
	struct srcu_test t = {.swaps = HARNESS_SCALE(3000, 500)};

	(void)state;
	harness_run(2, srcu_main, &t);
	assert_int_equal(atomic_load(&t.bad), 0);
	assert_int_equal(atomic_load(&t.regress), 0);
	assert_true(atomic_load(&t.reads) > t.swaps);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_router_srcu_stress),
	};

	harness_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
