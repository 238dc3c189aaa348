/* SPDX-License-Identifier: MIT */
/*
 * When each event is due: the rate schedule of sluice-load.
 *
 * A plan is a staircase of steps, each a rate held for a duration (one
 * step for a constant rate), optionally cut short by a total count.  It
 * fixes the time every event of the run is planned for: event n of a
 * step of rate R that starts at T is due at T + (n - first) / R, whether
 * or not the sender is ready then.  Latency is measured from that planned
 * time, never from when the event actually went out, so a target that
 * stalls the sender is charged for every event the stall held back, as
 * wrk2 does it: this is the correction for coordinated omission (see
 * docs/sluice-load.md).
 *
 * The events are dealt to the connections ("lanes") round robin: lane l
 * of L sends events l, l + L, l + 2L, ...  The lanes together keep the
 * plan's rate and spacing exactly, each at 1/L of it.
 *
 * A plan with max = true has no rate: every event is due as soon as the
 * lane can take it, and its planned time is the time it was taken.
 *
 * Nothing here reads a clock: the caller passes the time in, so tests
 * drive the schedule with a clock of their own.  A plan is read-only once
 * built and may be shared by every lane; a load_sched belongs to one lane.
 */
#ifndef SLUICE_LOAD_SCHED_H
#define SLUICE_LOAD_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOAD_MAX_STEPS 64

struct load_step {
	double rate;     /* events per second (> 0) */
	uint64_t dur_ns; /* 0: no end but the count (last step only) */
};

struct load_plan {
	bool max; /* as fast as possible; steps[0].dur_ns ends it */
	struct load_step steps[LOAD_MAX_STEPS];
	unsigned nsteps;
	uint64_t total;     /* events in all; 0: no limit */
	uint64_t warmup_ns; /* events planned earlier are not measured */

	/* Derived by load_plan_init(): the first event of each step, and the
	 * step's start relative to the run's start.  first[nsteps] is the
	 * end of the plan (UINT64_MAX when only the count ends it). */
	uint64_t first[LOAD_MAX_STEPS + 1];
	uint64_t off_ns[LOAD_MAX_STEPS + 1];
};

/**
 * load_plan_init() - check the steps and derive the rest.
 * Return: 0, or -EINVAL (no step, a rate not above 0, an endless step that
 * is not the last or has no count, more than LOAD_MAX_STEPS steps).
 */
int load_plan_init(struct load_plan *p);

/* load_plan_time() - the planned time of event @n, relative to the start. */
uint64_t load_plan_time(const struct load_plan *p, uint64_t n);

/* load_plan_events() - events in the whole plan; UINT64_MAX if open. */
uint64_t load_plan_events(const struct load_plan *p);

/**
 * load_plan_length() - how long the plan runs, from the start to the
 * planned time of its last event (open loop) or to its duration (max); 0
 * when only a count ends a max-rate plan.
 */
uint64_t load_plan_length(const struct load_plan *p);

/* load_plan_step_at() - the step running @rel_ns after the start. */
unsigned load_plan_step_at(const struct load_plan *p, uint64_t rel_ns);

/* load_plan_measured() - whether an event planned at @rel_ns counts. */
static inline bool
load_plan_measured(const struct load_plan *p, uint64_t rel_ns)
{
	return rel_ns >= p->warmup_ns;
}

struct load_sched {
	const struct load_plan *p;
	uint64_t start_ns;
	unsigned lane, lanes;
	uint64_t n;     /* the lane's next event */
	unsigned step;  /* the step of event n (open loop) */
	uint64_t taken; /* events this lane has taken */
};

/* load_sched_init() - lane @lane of @lanes, the run starting at @start_ns. */
void load_sched_init(struct load_sched *s, const struct load_plan *p,
                     uint64_t start_ns, unsigned lane, unsigned lanes);

/**
 * load_sched_take() - the lane's events due at @now.
 * @planned: receives the absolute planned time of each, in order.
 * @max: at most this many are taken; the rest stay due.
 *
 * Return: how many were taken (0 when none is due yet or the plan is done).
 */
size_t load_sched_take(struct load_sched *s, uint64_t now, uint64_t *planned,
                       size_t max);

/**
 * load_sched_next() - when the lane's next event is due: an absolute
 * time, @now when it is due already (or the plan is max rate), or
 * UINT64_MAX once the lane has nothing more to send.
 */
uint64_t load_sched_next(const struct load_sched *s, uint64_t now);

/* load_sched_done() - whether the lane has sent its share of the plan. */
static inline bool
load_sched_done(const struct load_sched *s, uint64_t now)
{
	return load_sched_next(s, now) == UINT64_MAX;
}

/**
 * load_sched_wait() - how long a lane with nothing due at @now sleeps.
 * Until its next event when that is at least @tick_ns away: a lane that
 * sends less often than once a tick wakes once per event and sends it on
 * time.  A nearer event waits for the grid of @tick_ns steps from the
 * start, where every lane's short sleeps end at the same instants: at
 * high rates one wake-up of a processor then serves all its lanes, each
 * sending a batch, and an event waits less than @tick_ns for it.  Its
 * latency says so.
 * Return: nanoseconds; 0 when something is due; UINT64_MAX when done.
 */
uint64_t load_sched_wait(const struct load_sched *s, uint64_t now,
                         uint64_t tick_ns);

#endif /* SLUICE_LOAD_SCHED_H */
