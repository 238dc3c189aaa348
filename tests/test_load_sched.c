/* SPDX-License-Identifier: MIT */
/*
 * Tests of sluice-load's rate schedule (tools/load/sched.c), driven by a
 * clock the tests move themselves; nothing sleeps.
 *
 * Events come due exactly on schedule and are dealt to the lanes round
 * robin; a sender that stalls, or cannot keep up, is charged the full
 * lateness of every event it held back (latency runs from the planned
 * time, not from when the event went out); ramps, counts, the max-rate
 * plan, the warm-up and the wake-up grid behave as documented.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tools/load/hdr.h"
#include "tools/load/sched.h"

#include "harness.h"

#define T0 UINT64_C(5000000000) /* the clock at the start of a run */
#define US UINT64_C(1000)
#define MS UINT64_C(1000000)
#define SEC UINT64_C(1000000000)

static void
plan_rate(struct load_plan *p, double rate, uint64_t dur_ns, uint64_t total)
{
	memset(p, 0, sizeof(*p));
	p->steps[0].rate = rate;
	p->steps[0].dur_ns = dur_ns;
	p->nsteps = 1;
	p->total = total;
	assert_int_equal(load_plan_init(p), 0);
}

/*
 * A sender on a manual clock: every @tick it takes what is due (at most
 * @per_tick per lane) and "sends" it at that instant, recording the
 * latency from the planned time.  @stall_from..@stall_to is a stretch in
 * which the sender is blocked and takes nothing.
 */
struct sim {
	uint64_t tick, per_tick, stall_from, stall_to;
	struct load_hdr lat;   /* from the planned time */
	struct load_hdr naive; /* from the time the event was taken */
	uint64_t events, last_done;
	uint64_t *planned_seen; /* every planned time, in take order */
	size_t nseen, capseen;
};

static void
sim_run(struct sim *s, const struct load_plan *p, unsigned lanes)
{
	struct load_sched sc[8];
	uint64_t buf[4096], now = T0;
	unsigned done = 0;

	assert_true(lanes <= 8);
	assert_int_equal(load_hdr_init_latency(&s->lat), 0);
	assert_int_equal(load_hdr_init_latency(&s->naive), 0);
	for (unsigned l = 0; l < lanes; l++)
		load_sched_init(&sc[l], p, T0, l, lanes);
	while (done < lanes) {
		bool stalled =
		        now >= T0 + s->stall_from && now < T0 + s->stall_to;

		done = 0;
		for (unsigned l = 0; l < lanes; l++) {
			size_t n = 0, max = s->per_tick ? s->per_tick : 4096;

			if (!stalled)
				n = load_sched_take(&sc[l], now, buf, max);
			for (size_t i = 0; i < n; i++) {
				assert_true(buf[i] <= now);
				load_hdr_record(&s->lat, now - buf[i]);
				load_hdr_record(&s->naive, 0);
				if (s->nseen == s->capseen) {
					s->capseen = s->capseen ? 2 * s->capseen
					                        : 1024;
					s->planned_seen = realloc(
					        s->planned_seen,
					        s->capseen * sizeof(uint64_t));
					assert_non_null(s->planned_seen);
				}
				s->planned_seen[s->nseen++] = buf[i];
			}
			s->events += n;
			if (n)
				s->last_done = now;
			if (load_sched_done(&sc[l], now))
				done++;
		}
		now += s->tick;
	}
}

static void
sim_fini(struct sim *s)
{
	load_hdr_fini(&s->lat);
	load_hdr_fini(&s->naive);
	free(s->planned_seen);
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static void
test_sched_events_come_due_on_schedule(void **state)
{
	struct load_plan p;
	struct sim s = {.tick = 100 * US};

	(void)state;
	plan_rate(&p, 1000, SEC, 0);
	assert_int_equal(load_plan_events(&p), 1000);
	sim_run(&s, &p, 3);

	/* The three lanes together send every event once, at start + n ms,
	 * and none waits as long as a tick. */
	assert_int_equal(s.events, 1000);
	qsort(s.planned_seen, s.nseen, sizeof(uint64_t), cmp_u64);
	for (uint64_t n = 0; n < 1000; n++)
		assert_int_equal(s.planned_seen[n], T0 + n * MS);
	assert_true(s.lat.max < 100 * US);
	assert_int_equal(s.last_done, T0 + 999 * MS);
	sim_fini(&s);
}

static void
test_sched_lanes_are_dealt_round_robin(void **state)
{
	struct load_plan p;
	struct load_sched a, b;
	uint64_t t[16];

	(void)state;
	plan_rate(&p, 1000, SEC, 0);
	load_sched_init(&a, &p, T0, 0, 2);
	load_sched_init(&b, &p, T0, 1, 2);
	assert_int_equal(load_sched_take(&a, T0 + 5 * MS, t, 16), 3);
	assert_int_equal(t[0], T0);
	assert_int_equal(t[1], T0 + 2 * MS);
	assert_int_equal(t[2], T0 + 4 * MS);
	assert_int_equal(load_sched_take(&b, T0 + 5 * MS, t, 16), 3);
	assert_int_equal(t[0], T0 + 1 * MS);
	assert_int_equal(t[2], T0 + 5 * MS);
	/* Not due yet: nothing, and the next time is the planned one. */
	assert_int_equal(load_sched_take(&a, T0 + 5 * MS, t, 16), 0);
	assert_int_equal(load_sched_next(&a, T0 + 5 * MS), T0 + 6 * MS);
	/* @max holds the rest back without losing them. */
	assert_int_equal(load_sched_take(&a, T0 + 20 * MS, t, 2), 2);
	assert_int_equal(t[1], T0 + 8 * MS);
	assert_int_equal(load_sched_next(&a, T0 + 20 * MS), T0 + 20 * MS);
}

/*
 * The sender is blocked from 0.5 s to 0.7 s.  Every event planned in
 * that stretch goes out at 0.7 s, so its latency is 0.7 s minus its
 * planned time: 2000 events with latencies spread evenly from 0 to
 * 200 ms.  Measured from when they went out, all 10000 look instant.
 */
static void
test_sched_stall_is_charged_to_every_held_event(void **state)
{
	struct load_plan p;
	struct sim s = {.tick = 100 * US,
	                .stall_from = 500 * MS + 50 * US,
	                .stall_to = 700 * MS};
	uint64_t late = 0;

	(void)state;
	plan_rate(&p, 10000, SEC, 0);
	sim_run(&s, &p, 1);
	assert_int_equal(s.events, 10000);

	for (size_t i = 0; i < s.lat.ncounts; i++)
		if (load_hdr_lowest_equiv(&s.lat, i) >= 50 * US)
			late += s.lat.counts[i];
	/* Planned in (0.5 s, 0.7 s): 1999 events, 100 us to 199.9 ms late;
	 * every other event went out the instant it was due. */
	assert_int_equal(late, 1999);
	assert_int_equal(s.lat.max, 200 * MS - 100 * US);

	/* The top 1% (100 events) are those planned just after 0.5 s:
	 * p99 is 200 ms less 100 events' worth (10 ms).  The top 10% are
	 * 1000 events: p90 is about 100 ms. */
	assert_in_range(load_hdr_percentile(&s.lat, 99), 189 * MS, 191 * MS);
	assert_in_range(load_hdr_percentile(&s.lat, 90), 99 * MS, 101 * MS);
	assert_true(load_hdr_percentile(&s.lat, 75) < 100 * US);

	/* The uncorrected measure sees none of it. */
	assert_int_equal(load_hdr_percentile(&s.naive, 99.99), 0);
	sim_fini(&s);
}

/*
 * A sender that can take only 5 events per 1 ms tick against a plan of
 * 10 per ms falls further behind with every tick: after the first tick
 * (one event due) it takes 5 a tick, so the last of 10000 events goes out
 * at 2 s, 1 s after it was planned, and latency grows linearly, so the
 * median is about half a second.
 */
static void
test_sched_slow_sender_latency_grows(void **state)
{
	struct load_plan p;
	struct sim s = {.tick = MS, .per_tick = 5};

	(void)state;
	plan_rate(&p, 10000, SEC, 0);
	sim_run(&s, &p, 1);
	assert_int_equal(s.events, 10000);
	assert_int_equal(s.last_done, T0 + 2000 * MS);
	assert_in_range(s.lat.max, 999 * MS, 1001 * MS);
	assert_in_range(load_hdr_percentile(&s.lat, 50), 495 * MS, 505 * MS);
	sim_fini(&s);
}

static void
test_sched_ramp_steps(void **state)
{
	struct load_plan p = {0};
	struct load_sched s;
	uint64_t t[1000];

	(void)state;
	p.steps[0] = (struct load_step){.rate = 1000, .dur_ns = SEC};
	p.steps[1] = (struct load_step){.rate = 2000, .dur_ns = SEC / 2};
	p.steps[2] = (struct load_step){.rate = 4000, .dur_ns = SEC / 4};
	p.nsteps = 3;
	assert_int_equal(load_plan_init(&p), 0);
	assert_int_equal(load_plan_events(&p), 3000);
	assert_int_equal(load_plan_length(&p), 1750 * MS);

	/* Each step starts on time and keeps its own spacing. */
	assert_int_equal(load_plan_time(&p, 999), 999 * MS);
	assert_int_equal(load_plan_time(&p, 1000), SEC);
	assert_int_equal(load_plan_time(&p, 1001), SEC + 500 * US);
	assert_int_equal(load_plan_time(&p, 2000), 1500 * MS);
	assert_int_equal(load_plan_time(&p, 2999), 1500 * MS + 999 * 250 * US);
	assert_int_equal(load_plan_step_at(&p, 999 * MS), 0);
	assert_int_equal(load_plan_step_at(&p, SEC), 1);
	assert_int_equal(load_plan_step_at(&p, 1600 * MS), 2);
	assert_int_equal(load_plan_step_at(&p, 5 * SEC), 2);

	/* A lane crosses the step boundary without a gap. */
	load_sched_init(&s, &p, T0, 0, 1);
	assert_int_equal(load_sched_take(&s, T0 + 998 * MS, t, 1000), 999);
	assert_int_equal(load_sched_take(&s, T0 + SEC + 600 * US, t, 8), 3);
	assert_int_equal(t[0], T0 + 999 * MS);
	assert_int_equal(t[1], T0 + SEC);
	assert_int_equal(t[2], T0 + SEC + 500 * US);
}

static void
test_sched_count_ends_the_plan(void **state)
{
	struct load_plan p;
	struct sim s = {.tick = MS};

	(void)state;
	/* No duration: the count alone ends it. */
	plan_rate(&p, 1000, 0, 2500);
	assert_int_equal(load_plan_events(&p), 2500);
	assert_int_equal(load_plan_length(&p), 2499 * MS);
	sim_run(&s, &p, 4);
	assert_int_equal(s.events, 2500);
	sim_fini(&s);

	/* A count shorter than the duration cuts it. */
	plan_rate(&p, 1000, 10 * SEC, 300);
	assert_int_equal(load_plan_events(&p), 300);
	assert_int_equal(load_plan_length(&p), 299 * MS);
}

static void
test_sched_max_rate(void **state)
{
	struct load_plan p = {.max = true, .nsteps = 1};
	struct load_sched a, b;
	uint64_t t[100];

	(void)state;
	p.steps[0].dur_ns = SEC;
	assert_int_equal(load_plan_init(&p), 0);
	load_sched_init(&a, &p, T0, 0, 2);
	/* Everything is due at once, planned for the moment it is taken. */
	assert_int_equal(load_sched_take(&a, T0 + 7, t, 100), 100);
	assert_int_equal(t[0], T0 + 7);
	assert_int_equal(t[99], T0 + 7);
	assert_int_equal(load_sched_wait(&a, T0 + 7, 100 * US), 0);
	assert_false(load_sched_done(&a, T0 + SEC - 1));
	assert_true(load_sched_done(&a, T0 + SEC));
	assert_int_equal(load_sched_take(&a, T0 + SEC, t, 100), 0);

	/* With a count, the lanes share it. */
	p.steps[0].dur_ns = 0;
	p.total = 250;
	assert_int_equal(load_plan_init(&p), 0);
	load_sched_init(&a, &p, T0, 0, 2);
	load_sched_init(&b, &p, T0, 1, 2);
	assert_int_equal(load_sched_take(&a, T0, t, 100), 100);
	assert_int_equal(load_sched_take(&a, T0, t, 100), 25);
	assert_int_equal(load_sched_take(&b, T0, t, 100), 100);
	assert_int_equal(load_sched_take(&b, T0, t, 100), 25);
	assert_true(load_sched_done(&a, T0) && load_sched_done(&b, T0));
}

static void
test_sched_wait_rounds_short_sleeps_to_the_grid(void **state)
{
	struct load_plan p;
	struct load_sched s;
	uint64_t t[4];

	(void)state;
	plan_rate(&p, 1000, 3 * MS, 0);
	load_sched_init(&s, &p, T0, 0, 1);
	assert_int_equal(load_sched_wait(&s, T0, 300 * US), 0);
	assert_int_equal(load_sched_take(&s, T0 + 100 * US, t, 4), 1);
	/* Next at 1 ms, more than a tick away: wake exactly then. */
	assert_int_equal(load_sched_wait(&s, T0 + 100 * US, 300 * US),
	                 900 * US);
	/* Less than a tick away: at the grid's next point, 1.2 ms. */
	assert_int_equal(load_sched_wait(&s, T0 + 800 * US, 300 * US),
	                 400 * US);
	/* On the grid already: then. */
	assert_int_equal(load_sched_wait(&s, T0 + 800 * US, 200 * US),
	                 200 * US);
	/* No grid at all. */
	assert_int_equal(load_sched_wait(&s, T0 + 800 * US, 0), 200 * US);
	assert_int_equal(load_sched_take(&s, T0 + 1200 * US, t, 4), 1);
	assert_int_equal(load_sched_take(&s, T0 + 2 * MS, t, 4), 1);
	assert_int_equal(load_sched_wait(&s, T0 + 2 * MS, 300 * US),
	                 UINT64_MAX);
}

static void
test_sched_warmup_boundary(void **state)
{
	struct load_plan p;

	(void)state;
	plan_rate(&p, 1000, SEC, 0);
	p.warmup_ns = 200 * MS;
	assert_false(load_plan_measured(&p, 199 * MS));
	assert_true(load_plan_measured(&p, 200 * MS));
}

static void
test_plan_refuses_what_cannot_run(void **state)
{
	struct load_plan p = {0};

	(void)state;
	assert_int_equal(load_plan_init(&p), -EINVAL); /* no step */
	p.nsteps = 1;
	p.steps[0] = (struct load_step){.rate = 0, .dur_ns = SEC};
	assert_int_equal(load_plan_init(&p), -EINVAL);
	p.steps[0] = (struct load_step){.rate = 100, .dur_ns = 0};
	assert_int_equal(load_plan_init(&p), -EINVAL); /* endless */
	p.nsteps = 2;
	p.total = 10;
	p.steps[1] = (struct load_step){.rate = 100, .dur_ns = SEC};
	assert_int_equal(load_plan_init(&p), -EINVAL); /* endless, not last */
	p.max = true;
	p.nsteps = 1;
	p.total = 0;
	p.steps[0].dur_ns = 0;
	assert_int_equal(load_plan_init(&p), -EINVAL); /* max, no end */
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_sched_events_come_due_on_schedule),
	        cmocka_unit_test(test_sched_lanes_are_dealt_round_robin),
	        cmocka_unit_test(
	                test_sched_stall_is_charged_to_every_held_event),
	        cmocka_unit_test(test_sched_slow_sender_latency_grows),
	        cmocka_unit_test(test_sched_ramp_steps),
	        cmocka_unit_test(test_sched_count_ends_the_plan),
	        cmocka_unit_test(test_sched_max_rate),
	        cmocka_unit_test(
	                test_sched_wait_rounds_short_sleeps_to_the_grid),
	        cmocka_unit_test(test_sched_warmup_boundary),
	        cmocka_unit_test(test_plan_refuses_what_cannot_run),
	};

	harness_init();
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
