/* SPDX-License-Identifier: MIT */
/*
 * Placement knobs: the CPU set, the NUMA policy, ring sizes and huge pages.
 * A knob the machine can honour takes effect (processors run on the CPUs
 * asked for); one it cannot is refused before anything starts, with a
 * message that names the knob and the reason.
 */
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/runtime.h"
#include "core/task.h"
#include "tests/harness.h"

static _Atomic int placement_ran;
static _Atomic int placement_cpu;
static _Atomic unsigned placement_nprocs;

static void
placement_main(void *arg)
{
	(void)arg;
	atomic_store(&placement_cpu, sched_getcpu());
	atomic_store(&placement_nprocs, sl_runtime_nprocs());
	atomic_store(&placement_ran, 1);
}

/* Run with @o; returns what sl_runtime_run() did, the reason in @why. */
static int
placement_run(const struct sl_runtime_opts *o, char *why, size_t len)
{
	int r;

	atomic_store(&placement_ran, 0);
	r = sl_runtime_run(o, placement_main, NULL);
	snprintf(why, len, "%s", r ? sl_runtime_error() : "");
	return r;
}

static void
expect_refused(const struct sl_runtime_opts *o, const char *words)
{
	char why[512];
	int r = placement_run(o, why, sizeof(why));

	if (r == 0 || !strstr(why, words))
		fail_msg("expected a refusal naming \"%s\"; got %d \"%s\"",
			 words, r, why);
	assert_int_equal(r, -EINVAL);
	assert_int_equal(atomic_load(&placement_ran), 0);
}

/* The highest CPU this process may run on. */
static int
placement_last_cpu(void)
{
	cpu_set_t set;
	int last = -1;

	assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &set))
			last = c;
	return last;
}

static void
test_placement_cpu_set_is_honoured(void **state)
{
	struct sl_runtime_opts o;
	char list[16], why[256];
	int last = placement_last_cpu();

	(void)state;
	sl_runtime_opts_init(&o);
	snprintf(list, sizeof(list), "%d", last);
	o.cpus = list;
	assert_int_equal(placement_run(&o, why, sizeof(why)), 0);
	assert_int_equal(atomic_load(&placement_ran), 1);
	/* One CPU asked for: one processor, pinned to it. */
	assert_int_equal(atomic_load(&placement_nprocs), 1);
	assert_int_equal(atomic_load(&placement_cpu), last);
}

static void
test_placement_bad_cpu_sets_are_refused(void **state)
{
	struct sl_runtime_opts o;
	cpu_set_t set;
	char list[32];
	int outside = -1;

	(void)state;
	sl_runtime_opts_init(&o);
	o.cpus = "0-";
	expect_refused(&o, "cpus \"0-\"");
	o.cpus = "two";
	expect_refused(&o, "expected a number");
	o.cpus = "3-1";
	expect_refused(&o, "bad range");
	o.cpus = "0-5000";
	expect_refused(&o, "past the largest");
	o.cpus = "1000";
	expect_refused(&o, "CPU 1000 is offline or does not exist");

	/* An online CPU outside the affinity mask, where there is one. */
	assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
	for (int c = 0; c < sysconf(_SC_NPROCESSORS_ONLN); c++)
		if (!CPU_ISSET(c, &set)) {
			outside = c;
			break;
		}
	if (outside >= 0) {
		snprintf(list, sizeof(list), "%d", outside);
		o.cpus = list;
		expect_refused(&o, "outside the CPUs this process may use");
	}
}

static void
test_placement_numa_policies(void **state)
{
	struct sl_runtime_opts o;
	char why[256];

	(void)state;
	sl_runtime_opts_init(&o);
	/* Node 0 always exists, and both named policies always apply. */
	o.numa = "0";
	assert_int_equal(placement_run(&o, why, sizeof(why)), 0);
	o.numa = "interleave";
	assert_int_equal(placement_run(&o, why, sizeof(why)), 0);
	o.numa = "local";
	assert_int_equal(placement_run(&o, why, sizeof(why)), 0);

	o.numa = "1000";
	expect_refused(&o, "node 1000 does not exist");
	o.numa = "0,1023";
	expect_refused(&o, "node 1023 does not exist");
	o.numa = "node0";
	expect_refused(&o, "numa \"node0\"");
}

static void
test_placement_ring_sizes(void **state)
{
	struct sl_runtime_opts o;
	char why[256];

	(void)state;
	sl_runtime_opts_init(&o);
	o.ring_entries = 64;
	o.cq_entries = 32;
	expect_refused(&o, "cq_entries 32");
	o.cq_entries = 1u << 20;
	expect_refused(&o, "cq_entries 1048576");
	o.cq_entries = 0;
	o.ring_entries = 65536;
	expect_refused(&o, "ring_entries 65536");

	o.ring_entries = 64;
	o.cq_entries = 64;
	assert_int_equal(placement_run(&o, why, sizeof(why)), 0);
	assert_int_equal(atomic_load(&placement_ran), 1);
}

/* Huge pages: taken where the machine has them, refused where not. */
static void
test_placement_huge_pages(void **state)
{
	struct sl_runtime_opts o;
	char thp[128] = "", why[512];
	long reserved = 0;
	bool available;
	FILE *f;
	int r;

	(void)state;
	f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
	if (f) {
		if (!fgets(thp, sizeof(thp), f))
			thp[0] = '\0';
		fclose(f);
	}
	f = fopen("/proc/sys/vm/nr_hugepages", "r");
	if (f) {
		if (fscanf(f, "%ld", &reserved) != 1)
			reserved = 0;
		fclose(f);
	}
	available = (thp[0] && !strstr(thp, "[never]")) || reserved > 0;

	sl_runtime_opts_init(&o);
	o.huge_pages = true;
	r = placement_run(&o, why, sizeof(why));
	if (available) {
		assert_int_equal(r, 0);
		assert_int_equal(atomic_load(&placement_ran), 1);
	} else {
		assert_int_equal(r, -EINVAL);
		assert_non_null(strstr(why, "huge_pages"));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_placement_cpu_set_is_honoured),
		cmocka_unit_test(test_placement_bad_cpu_sets_are_refused),
		cmocka_unit_test(test_placement_numa_policies),
		cmocka_unit_test(test_placement_ring_sizes),
		cmocka_unit_test(test_placement_huge_pages),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
