/* SPDX-License-Identifier: MIT */
/*
 * Run statistics.  Histograms per step are made on first use, so a run
 * that never measures a metric, or is not a ramp, pays nothing for them.
 */
#include "tools/load/stats.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char *const load_metric_names[LOAD_M_COUNT] = {"send", "ack", "e2e"};

void
load_summarize(const struct load_hdr *h, struct load_summary *out)
{
	out->n = h->total;
	out->p50 = load_hdr_percentile(h, 50);
	out->p90 = load_hdr_percentile(h, 90);
	out->p99 = load_hdr_percentile(h, 99);
	out->p999 = load_hdr_percentile(h, 99.9);
	out->p9999 = load_hdr_percentile(h, 99.99);
	out->max = h->total ? h->max : 0;
	out->mean = load_hdr_mean(h);
}

int
load_stats_init(struct load_stats *s, const struct load_plan *plan)
{
	int r = 0;

	memset(s, 0, sizeof(*s));
	s->plan = plan;
	s->nsteps = plan->max ? 1 : plan->nsteps;
	for (int m = 0; m < LOAD_M_COUNT && !r; m++) {
		r = load_hdr_init_latency(&s->total[m]);
		if (!r)
			r = load_hdr_init_latency(&s->interval[m]);
	}
	if (r)
		load_stats_fini(s);
	return r;
}

void
load_stats_fini(struct load_stats *s)
{
	for (int m = 0; m < LOAD_M_COUNT; m++) {
		load_hdr_fini(&s->total[m]);
		load_hdr_fini(&s->interval[m]);
		for (unsigned k = 0; k < LOAD_MAX_STEPS; k++) {
			if (s->steps[k].lat[m])
				load_hdr_fini(s->steps[k].lat[m]);
			free(s->steps[k].lat[m]);
			s->steps[k].lat[m] = NULL;
		}
	}
	free(s->rows);
	s->rows = NULL;
}

static struct load_hdr *
stats_step_hdr(struct load_stats *s, unsigned k, int m)
{
	struct load_hdr *h = s->steps[k].lat[m];

	if (h)
		return h;
	h = malloc(sizeof(*h));
	if (!h)
		return NULL;
	if (load_hdr_init_latency(h)) {
		free(h);
		return NULL;
	}
	s->steps[k].lat[m] = h;
	return h;
}

int
load_stats_add(struct load_stats *s, const struct load_sample *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t lat = v[i].done_rel > v[i].planned_rel
		                       ? v[i].done_rel - v[i].planned_rel
		                       : 0;
		int m = v[i].metric;
		struct load_hdr *h;
		unsigned k;

		s->used[m] = true;
		load_hdr_record(&s->interval[m], lat);
		if (m == LOAD_M_SEND || m == LOAD_M_E2E) {
			k = load_plan_step_at(s->plan, v[i].done_rel);
			if (m == LOAD_M_SEND)
				s->steps[k].sent++;
			else
				s->steps[k].delivered++;
		}
		if (!load_plan_measured(s->plan, v[i].planned_rel))
			continue;
		load_hdr_record(&s->total[m], lat);
		if (s->nsteps < 2)
			continue;
		k = load_plan_step_at(s->plan, v[i].planned_rel);
		h = stats_step_hdr(s, k, m);
		if (!h)
			return -ENOMEM;
		load_hdr_record(h, lat);
	}
	return 0;
}

static double
stats_target_at(const struct load_plan *p, double t_s)
{
	uint64_t rel = (uint64_t)(t_s * 1e9);

	if (p->max || rel >= p->off_ns[p->nsteps])
		return 0;
	return p->steps[load_plan_step_at(p, rel)].rate;
}

int
load_stats_row(struct load_stats *s, double t_s, const struct load_counts *now)
{
	double dt = t_s - s->last_t;
	struct load_row *row;

	if (s->nrows == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 64;
		struct load_row *p = realloc(s->rows, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		s->rows = p;
		s->cap = cap;
	}
	if (dt <= 0)
		dt = 1e-9;
	row = &s->rows[s->nrows++];
	row->t = t_s;
	row->target = stats_target_at(s->plan, s->last_t + dt / 2);
	row->sent = (double)(now->sent - s->last.sent) / dt;
	row->acked = (double)(now->acked - s->last.acked) / dt;
	row->delivered = (double)(now->delivered - s->last.delivered) / dt;
	row->errors = now->errors;
	for (int m = 0; m < LOAD_M_COUNT; m++) {
		load_summarize(&s->interval[m], &row->lat[m]);
		load_hdr_reset(&s->interval[m]);
	}
	s->last = *now;
	s->last_t = t_s;
	return 0;
}
