/* SPDX-License-Identifier: MIT */
/*
 * From parsed samples to states, and from two states to a view; model.h
 * describes both.  Which series feed which field is the tables below:
 * adding a figure to the display starts with a line here.
 */
#include "tools/top/model.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- which series go where ---- */

struct global_map {
	const char *metric;
	const char *label, *value; /* a label to match, or NULL */
	unsigned field;
	bool counter;
};

static const struct global_map global_map[] = {
	{"sluice_events_ingested_total", NULL, NULL, TOP_G_INGESTED, true},
	{"sluice_events_unmatched_total", NULL, NULL, TOP_G_UNMATCHED, true},
	{"sluice_events_malformed_total", NULL, NULL, TOP_G_MALFORMED, true},
	{"sluice_dead_letters_dropped_total", NULL, NULL, TOP_G_DEAD_DROPPED,
	 true},
	{"sluice_tasks", NULL, NULL, TOP_G_TASKS, false},
	{"sluice_ready", NULL, NULL, TOP_G_READY, false},
	{"sluice_draining", NULL, NULL, TOP_G_DRAINING, false},
	{"sluice_start_time_seconds", NULL, NULL, TOP_G_START_TIME, false},
	{"sluice_reloads_total", "result", "ok", TOP_G_RELOADS_OK, true},
	{"sluice_reloads_total", "result", "refused", TOP_G_RELOADS_REFUSED,
	 true},
	{"sluice_io_buffers", NULL, NULL, TOP_G_IO_BUFFERS, false},
	{"sluice_io_buffers_in_use", NULL, NULL, TOP_G_IO_IN_USE, false},
	{"sluice_io_enobufs_total", NULL, NULL, TOP_G_IO_ENOBUFS, true},
};

struct entity_map {
	const char *metric;
	unsigned field;
	bool counter;
};

static const struct entity_map route_map[] = {
	{"sluice_route_pending", TOP_R_PENDING, false},
	{"sluice_route_processing", TOP_R_PROCESSING, false},
	{"sluice_route_waiting", TOP_R_WAITING, false},
	{"sluice_route_queue_bytes", TOP_R_QUEUE_BYTES, false},
	{"sluice_route_adds_total", TOP_R_ADDS, true},
	{"sluice_route_folds_total", TOP_R_FOLDS, true},
	{"sluice_route_dirty_total", TOP_R_DIRTY, true},
	{"sluice_route_reconciles_total", TOP_R_RECONCILES, true},
	{"sluice_route_failures_total", TOP_R_FAILURES, true},
	{"sluice_route_retries_total", TOP_R_RETRIES, true},
	{"sluice_route_dead_letters_total", TOP_R_DEAD, true},
};

static const struct entity_map proc_map[] = {
	{"sluice_proc_runq_length", TOP_P_RUNQ, false},
	{"sluice_proc_tasks_run_total", TOP_P_TASKS_RUN, true},
	{"sluice_proc_parks_total", TOP_P_PARKS, true},
	{"sluice_proc_steals_total", TOP_P_STEALS, true},
	{"sluice_proc_wakeups_total", TOP_P_WAKEUPS, true},
	{"sluice_proc_submits_total", TOP_P_SUBMITS, true},
	{"sluice_proc_spawns_total", TOP_P_SPAWNS, true},
	{"sluice_proc_hogs_total", TOP_P_HOGS, true},
};

static const struct entity_map input_map[] = {
	{"sluice_input_events_total", TOP_I_EVENTS, true},
	{"sluice_input_bytes_total", TOP_I_BYTES, true},
	{"sluice_input_malformed_total", TOP_I_MALFORMED, true},
	{"sluice_input_oversized_total", TOP_I_OVERSIZED, true},
	{"sluice_input_connections_total", TOP_I_CONNS, true},
	{"sluice_input_closed_bad_total", TOP_I_CLOSED_BAD, true},
};

static const struct {
	const char *label;
	const struct entity_map *map;
	size_t n;
} kinds[TOP_NKINDS] = {
	[TOP_ROUTES] = {"route", route_map, ARRAY_SIZE(route_map)},
	[TOP_PROCS] = {"proc", proc_map, ARRAY_SIZE(proc_map)},
	[TOP_INPUTS] = {"input", input_map, ARRAY_SIZE(input_map)},
};

static const char *const hist_bucket_names[TOP_NHISTS] = {
	[TOP_H_LATENCY] = "sluice_reconcile_latency_seconds_bucket",
	[TOP_H_DURATION] = "sluice_reconcile_duration_seconds_bucket",
};

_Static_assert(TOP_R_NFIELDS <= TOP_ENTITY_FIELDS, "route fields");
_Static_assert(TOP_P_NFIELDS <= TOP_ENTITY_FIELDS, "proc fields");
_Static_assert(TOP_I_NFIELDS <= TOP_ENTITY_FIELDS, "input fields");

bool
top_field_is_counter(enum top_kind k, unsigned f)
{
	for (size_t i = 0; i < kinds[k].n; i++)
		if (kinds[k].map[i].field == f)
			return kinds[k].map[i].counter;
	return false;
}

static bool
global_is_counter(unsigned f)
{
	for (size_t i = 0; i < ARRAY_SIZE(global_map); i++)
		if (global_map[i].field == f)
			return global_map[i].counter;
	return false;
}

/* ---- states ---- */

/*
 * Each metric family lists its routes (or processors, or inputs) in the
 * same order, so the entity after the last one found is nearly always
 * the next one wanted: starting there makes a lookup one comparison in
 * practice, and the whole build linear in the number of samples.
 */
static struct top_entity *
group_find(struct top_group *g, const char *name)
{
	for (size_t k = 0; k < g->n; k++) {
		size_t i = (g->hint + k) % g->n;

		if (strcmp(g->items[i].name, name) == 0) {
			g->hint = i + 1;
			return &g->items[i];
		}
	}
	return NULL;
}

static struct top_entity *
group_find_or_add(struct top_group *g, const char *name)
{
	struct top_entity *e = group_find(g, name);

	if (e)
		return e;
	if (g->n == g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 8;

		e = realloc(g->items, cap * sizeof(*e));
		if (!e)
			return NULL;
		g->items = e;
		g->cap = cap;
	}
	e = &g->items[g->n++];
	memset(e, 0, sizeof(*e));
	e->name = name;
	for (size_t f = 0; f < TOP_ENTITY_FIELDS; f++)
		e->v[f] = NAN;
	g->hint = g->n;
	return e;
}

static void
hist_add(struct top_hist *h, const struct top_prom_sample *sm)
{
	const char *le = top_prom_label(sm, "le");
	double bound;

	if (!le || top_prom_parse_value(le, strlen(le), &bound) ||
	    h->n == TOP_HIST_MAX) {
		h->bad = true;
		return;
	}
	h->b[h->n].le = bound;
	h->b[h->n].count = sm->value;
	h->n++;
}

/* Buckets arrive sorted from sluiced; sort anyway, few and nearly so. */
static void
hist_sort(struct top_hist *h)
{
	for (unsigned i = 1; i < h->n; i++) {
		struct top_bucket b = h->b[i];
		unsigned j = i;

		for (; j > 0 && h->b[j - 1].le > b.le; j--)
			h->b[j] = h->b[j - 1];
		h->b[j] = b;
	}
}

static void
state_global(struct top_state *st, const struct top_prom_sample *sm)
{
	for (size_t i = 0; i < ARRAY_SIZE(global_map); i++) {
		const struct global_map *m = &global_map[i];
		const char *v;

		if (strcmp(sm->name, m->metric))
			continue;
		v = m->label ? top_prom_label(sm, m->label) : NULL;
		if (m->label && (!v || strcmp(v, m->value)))
			continue;
		st->g[m->field] = sm->value;
	}
}

/* A per-route, per-processor or per-input series, or a bucket of a
 * route's histogram; each metric name belongs to one kind at most. */
static int
state_entity(struct top_state *st, const struct top_prom_sample *sm)
{
	for (unsigned k = 0; k < TOP_NKINDS; k++) {
		const char *label;

		for (size_t i = 0; i < kinds[k].n; i++) {
			struct top_entity *e;

			if (strcmp(sm->name, kinds[k].map[i].metric))
				continue;
			label = top_prom_label(sm, kinds[k].label);
			if (!label)
				return 0;
			e = group_find_or_add(&st->groups[k], label);
			if (!e)
				return -ENOMEM;
			e->v[kinds[k].map[i].field] = sm->value;
			return 0;
		}
	}
	for (unsigned h = 0; h < TOP_NHISTS; h++) {
		const char *route;
		struct top_entity *e;

		if (strcmp(sm->name, hist_bucket_names[h]))
			continue;
		route = top_prom_label(sm, "route");
		if (!route)
			return 0;
		e = group_find_or_add(&st->groups[TOP_ROUTES], route);
		if (!e)
			return -ENOMEM;
		hist_add(&e->hist[h], sm);
	}
	return 0;
}

int
top_state_build(struct top_state *st, const struct top_prom_set *set)
{
	memset(st, 0, sizeof(*st));
	for (size_t f = 0; f < TOP_G_NFIELDS; f++)
		st->g[f] = NAN;
	st->bad_lines = set->bad_lines;
	st->first_bad_line = set->first_bad_line;
	st->first_bad_why = set->first_bad_why;

	for (size_t i = 0; i < set->nsamples; i++) {
		const struct top_prom_sample *sm = &set->samples[i];

		/* Other exporters' series (a sidecar's, say) are not ours. */
		if (strncmp(sm->name, "sluice_", 7))
			continue;
		state_global(st, sm);
		if (state_entity(st, sm)) {
			top_state_fini(st);
			return -ENOMEM;
		}
	}

	for (size_t i = 0; i < st->groups[TOP_ROUTES].n; i++)
		for (unsigned h = 0; h < TOP_NHISTS; h++)
			hist_sort(&st->groups[TOP_ROUTES].items[i].hist[h]);
	return 0;
}

void
top_state_fini(struct top_state *st)
{
	for (unsigned k = 0; k < TOP_NKINDS; k++)
		free(st->groups[k].items);
	memset(st, 0, sizeof(*st));
}

/* ---- views ---- */

/* A counter's rate, an absent earlier reading counting as 0: a route or
 * input that appears between two scrapes started from zero in between. */
static double
rate_from(double prev, double cur, double dt)
{
	return top_counter_rate(isnan(prev) ? 0 : prev, cur, dt);
}

static double
increase_from(double prev, double cur)
{
	return top_counter_increase(isnan(prev) ? 0 : prev, cur);
}

/*
 * Each histogram's p99 over the window when there are rates, so that it
 * moves with the traffic as the rates do; since the start otherwise.  A
 * quantile of the cumulative histogram would barely move after the first
 * minutes of a long run.
 */
static void
row_p99(struct top_row *r, const struct top_entity *prev,
	const struct top_entity *cur, bool rates)
{
	for (unsigned h = 0; h < TOP_NHISTS; h++) {
		const struct top_hist *ch = &cur->hist[h];
		const struct top_hist *ph = prev ? &prev->hist[h] : NULL;
		struct top_bucket win[TOP_HIST_MAX];

		if (ch->bad || !ch->n) {
			r->p99_err[h] = ch->bad ? -EINVAL : -ENODATA;
			continue;
		}
		if (rates && ph && !ph->bad)
			top_hist_window(ph->b, ph->n, ch->b, ch->n, win);
		else
			top_hist_window(NULL, 0, ch->b, ch->n, win);
		r->p99_err[h] = top_hist_quantile(win, ch->n, 0.99, &r->p99[h]);
	}
}

static void
row_build(struct top_row *r, enum top_kind k, const struct top_entity *prev,
	  const struct top_entity *cur, bool rates, double dt)
{
	double adds, folds;

	r->name = cur->name;
	for (unsigned f = 0; f < TOP_ENTITY_FIELDS; f++) {
		r->now[f] = cur->v[f];
		r->rate[f] = NAN;
		if (rates && top_field_is_counter(k, f))
			r->rate[f] = rate_from(prev ? prev->v[f] : NAN,
					       cur->v[f], dt);
	}
	r->fold_ratio = NAN;
	if (k != TOP_ROUTES)
		return;

	/* Folds over adds within the same window as the rates: a ratio of
	 * two rates, not of two totals, so it follows the traffic now. */
	adds = cur->v[TOP_R_ADDS];
	folds = cur->v[TOP_R_FOLDS];
	if (rates) {
		adds = increase_from(prev ? prev->v[TOP_R_ADDS] : NAN, adds);
		folds = increase_from(prev ? prev->v[TOP_R_FOLDS] : NAN, folds);
	}
	if (adds > 0 && folds >= 0)
		r->fold_ratio = folds / adds;
	row_p99(r, prev, cur, rates);
}

static int
view_rows(struct top_view *v, enum top_kind k, const struct top_state *prev,
	  const struct top_state *cur, double dt)
{
	const struct top_group *cg = &cur->groups[k];
	struct top_group pg = {0};

	if (prev)
		pg = prev->groups[k];
	v->rows[k] = calloc(cg->n ? cg->n : 1, sizeof(struct top_row));
	if (!v->rows[k])
		return -ENOMEM;
	v->nrows[k] = cg->n;

	for (size_t i = 0; i < cg->n; i++) {
		const struct top_entity *pe = NULL;

		if (v->rates) {
			pg.hint = i; /* the same position, most likely */
			pe = group_find(&pg, cg->items[i].name);
		}
		row_build(&v->rows[k][i], k, pe, &cg->items[i], v->rates, dt);
	}
	return 0;
}

/* Add @x to @sum, an absent series (NaN) adding nothing; the sum stays
 * NaN until some series is present. */
static void
sum_known(double *sum, double x)
{
	if (isnan(x))
		return;
	*sum = isnan(*sum) ? x : *sum + x;
}

static void
view_totals(struct top_view *v)
{
	const struct top_row *routes = v->rows[TOP_ROUTES];

	v->out_total = v->out_rate = v->dead_total = NAN;
	v->failures_rate = v->retries_rate = NAN;
	for (size_t i = 0; i < v->nrows[TOP_ROUTES]; i++) {
		const struct top_row *r = &routes[i];

		sum_known(&v->out_total, r->now[TOP_R_RECONCILES]);
		sum_known(&v->dead_total, r->now[TOP_R_DEAD]);
		sum_known(&v->out_rate, r->rate[TOP_R_RECONCILES]);
		sum_known(&v->failures_rate, r->rate[TOP_R_FAILURES]);
		sum_known(&v->retries_rate, r->rate[TOP_R_RETRIES]);
	}
}

int
top_view_build(struct top_view *v, const struct top_state *prev,
	       const struct top_state *cur, double dt_s, double now_wall)
{
	double started = cur->g[TOP_G_START_TIME];

	/*
	 * A restart shows only in the start time: the new run's counters
	 * may already be past the old run's, and a rate across the two
	 * would be nonsense that the reset rule cannot catch.
	 */
	memset(v, 0, sizeof(*v));
	v->restarted = prev && !isnan(started) &&
		       !isnan(prev->g[TOP_G_START_TIME]) &&
		       prev->g[TOP_G_START_TIME] != started;
	v->rates = prev && dt_s > 0 && !v->restarted;
	v->window_s = v->rates ? dt_s : 0;
	v->uptime_s = isnan(started) ? NAN : now_wall - started;
	v->bad_lines = cur->bad_lines;
	v->first_bad_line = cur->first_bad_line;
	v->first_bad_why = cur->first_bad_why;

	for (unsigned f = 0; f < TOP_G_NFIELDS; f++) {
		v->now[f] = cur->g[f];
		v->rate[f] = NAN;
		if (v->rates && global_is_counter(f))
			v->rate[f] =
				top_counter_rate(prev->g[f], cur->g[f], dt_s);
	}
	for (unsigned k = 0; k < TOP_NKINDS; k++)
		if (view_rows(v, k, v->rates ? prev : NULL, cur, dt_s)) {
			top_view_fini(v);
			return -ENOMEM;
		}
	view_totals(v);
	return 0;
}

void
top_view_fini(struct top_view *v)
{
	for (unsigned k = 0; k < TOP_NKINDS; k++)
		free(v->rows[k]);
	memset(v, 0, sizeof(*v));
}
