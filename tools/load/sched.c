/* SPDX-License-Identifier: MIT */
/*
 * The rate schedule.  Times are computed from the event's number, never
 * by adding up intervals, so rounding does not drift over a long run:
 * event n of a step is planned at off + floor((n - first) * 10^9 / R) ns.
 */
#include "tools/load/sched.h"

#include <errno.h>
#include <math.h>

/* Events a step of @rate held for @dur_ns plans: the n with n/R < dur. */
static uint64_t
plan_step_events(double rate, uint64_t dur_ns)
{
	double n = ceil(rate * (double)dur_ns / 1e9 - 1e-9);

	return n < 1 ? 1 : (uint64_t)n;
}

static int
plan_init_max(struct load_plan *p)
{
	if (p->nsteps != 1 || (!p->steps[0].dur_ns && !p->total))
		return -EINVAL;
	p->first[0] = 0;
	p->first[1] = p->total ? p->total : UINT64_MAX;
	p->off_ns[0] = 0;
	p->off_ns[1] = p->steps[0].dur_ns ? p->steps[0].dur_ns : UINT64_MAX;
	return 0;
}

int
load_plan_init(struct load_plan *p)
{
	if (p->max)
		return plan_init_max(p);
	if (!p->nsteps || p->nsteps > LOAD_MAX_STEPS)
		return -EINVAL;

	p->first[0] = 0;
	p->off_ns[0] = 0;
	for (unsigned k = 0; k < p->nsteps; k++) {
		const struct load_step *st = &p->steps[k];
		bool last = k + 1 == p->nsteps;
		uint64_t n;

		if (!(st->rate > 0) || !isfinite(st->rate))
			return -EINVAL;
		if (!st->dur_ns && (!last || !p->total))
			return -EINVAL;
		n = st->dur_ns ? plan_step_events(st->rate, st->dur_ns)
		               : UINT64_MAX - p->first[k];
		p->first[k + 1] = p->first[k] + n;
		p->off_ns[k + 1] =
		        st->dur_ns ? p->off_ns[k] + st->dur_ns : UINT64_MAX;
	}

	/* A count shorter than the steps ends the plan early. */
	if (p->total)
		for (unsigned k = 1; k <= p->nsteps; k++)
			if (p->first[k] > p->total)
				p->first[k] = p->total;
	return 0;
}

static uint64_t
plan_step_time(const struct load_plan *p, unsigned k, uint64_t n)
{
	double dn = (double)(n - p->first[k]);

	return p->off_ns[k] + (uint64_t)(dn * 1e9 / p->steps[k].rate);
}

/* The step event @n belongs to, searching up from @k. */
static unsigned
plan_step_of(const struct load_plan *p, unsigned k, uint64_t n)
{
	while (k + 1 < p->nsteps && n >= p->first[k + 1])
		k++;
	return k;
}

uint64_t
load_plan_time(const struct load_plan *p, uint64_t n)
{
	if (p->max)
		return 0;
	return plan_step_time(p, plan_step_of(p, 0, n), n);
}

uint64_t
load_plan_events(const struct load_plan *p)
{
	return p->first[p->nsteps];
}

uint64_t
load_plan_length(const struct load_plan *p)
{
	uint64_t end = p->first[p->nsteps];

	if (p->max)
		return p->steps[0].dur_ns;
	if (p->off_ns[p->nsteps] != UINT64_MAX) {
		bool cut = false;

		for (unsigned k = 0; k < p->nsteps; k++)
			if (p->first[k + 1] - p->first[k] !=
			    plan_step_events(p->steps[k].rate,
			                     p->steps[k].dur_ns))
				cut = true;
		if (!cut)
			return p->off_ns[p->nsteps];
	}
	return end ? load_plan_time(p, end - 1) : 0;
}

unsigned
load_plan_step_at(const struct load_plan *p, uint64_t rel_ns)
{
	unsigned k = 0;

	if (p->max)
		return 0;
	while (k + 1 < p->nsteps && rel_ns >= p->off_ns[k + 1])
		k++;
	return k;
}

void
load_sched_init(struct load_sched *s, const struct load_plan *p,
                uint64_t start_ns, unsigned lane, unsigned lanes)
{
	s->p = p;
	s->start_ns = start_ns;
	s->lane = lane;
	s->lanes = lanes ? lanes : 1;
	s->n = lane;
	s->step = 0;
	s->taken = 0;
}

static bool
sched_max_over(const struct load_sched *s, uint64_t now)
{
	uint64_t dur = s->p->steps[0].dur_ns;

	return dur && now - s->start_ns >= dur && now >= s->start_ns;
}

static size_t
sched_take_max(struct load_sched *s, uint64_t now, uint64_t *planned,
               size_t max)
{
	uint64_t end = s->p->first[1];
	size_t k = 0;

	if (sched_max_over(s, now))
		return 0;
	while (k < max && s->n < end) {
		planned[k++] = now;
		s->n += s->lanes;
	}
	s->taken += k;
	return k;
}

size_t
load_sched_take(struct load_sched *s, uint64_t now, uint64_t *planned,
                size_t max)
{
	const struct load_plan *p = s->p;
	uint64_t end = p->first[p->nsteps];
	size_t k = 0;

	if (p->max)
		return sched_take_max(s, now, planned, max);
	while (k < max && s->n < end) {
		uint64_t t;

		s->step = plan_step_of(p, s->step, s->n);
		t = s->start_ns + plan_step_time(p, s->step, s->n);
		if (t > now)
			break;
		planned[k++] = t;
		s->n += s->lanes;
	}
	s->taken += k;
	return k;
}

uint64_t
load_sched_next(const struct load_sched *s, uint64_t now)
{
	const struct load_plan *p = s->p;
	uint64_t t;

	if (s->n >= p->first[p->nsteps])
		return UINT64_MAX;
	if (p->max)
		return sched_max_over(s, now) ? UINT64_MAX : now;
	t = s->start_ns +
	    plan_step_time(p, plan_step_of(p, s->step, s->n), s->n);
	return t > now ? t : now;
}

uint64_t
load_sched_wait(const struct load_sched *s, uint64_t now, uint64_t tick_ns)
{
	uint64_t next = load_sched_next(s, now), rel;

	if (next == UINT64_MAX)
		return UINT64_MAX;
	if (next <= now)
		return 0;
	if (next - now >= tick_ns || next < s->start_ns)
		return next - now; /* one wake-up per event anyway: be exact */

	/* Sooner than a tick: up to the tick grid, where every lane's short
	 * sleeps end at the same instants, so a processor wakes once for
	 * all of them and each wake-up sends a batch. */
	rel = next - s->start_ns;
	return s->start_ns + (rel + tick_ns - 1) / tick_ns * tick_ns - now;
}
