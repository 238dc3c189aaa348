/* SPDX-License-Identifier: MIT */
/*
 * Metrics in Prometheus' text exposition format: the router's counters,
 * each route's queue figures and reconcile histograms, and the runtime's
 * per-processor figures.
 */
#include <stdio.h>
#include <string.h>

#include <mimalloc.h>

#include "core/runtime.h"
#include "io/io.h"
#include "router/router_internal.h"

static void
metric_head(FILE *out, const char *name, const char *type, const char *help)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
metric_u64(FILE *out, const char *name, const char *labels, uint64_t v)
{
	if (labels && *labels)
		fprintf(out, "%s{%s} %llu\n", name, labels,
			(unsigned long long)v);
	else
		fprintf(out, "%s %llu\n", name, (unsigned long long)v);
}

struct route_metric {
	const char *name, *type, *help;
	size_t offset;		/* of the _Atomic uint64_t in struct shard */
};

#define SHARD_FIELD(f) offsetof(struct shard, f)

static const struct route_metric route_metrics[] = {
	{"sluice_route_pending", "gauge",
	 "Keys queued or waiting for a retry.", SHARD_FIELD(pending)},
	{"sluice_route_processing", "gauge",
	 "Keys a worker is reconciling now.", SHARD_FIELD(processing)},
	{"sluice_route_waiting", "gauge",
	 "Keys waiting for a retry or a delayed add.", SHARD_FIELD(waiting)},
	{"sluice_route_adds_total", "counter",
	 "Events added to the route's queues.", SHARD_FIELD(adds)},
	{"sluice_route_folds_total", "counter",
	 "Events folded into a key already pending.", SHARD_FIELD(folds)},
	{"sluice_route_dirty_total", "counter",
	 "Events for a key being reconciled (it runs once more).",
	 SHARD_FIELD(dirties)},
	{"sluice_route_reconciles_total", "counter",
	 "Reconciles that succeeded.", SHARD_FIELD(reconciles)},
	{"sluice_route_failures_total", "counter",
	 "Reconciles that failed.", SHARD_FIELD(failures)},
	{"sluice_route_retries_total", "counter",
	 "Keys requeued with backoff.", SHARD_FIELD(retries)},
	{"sluice_route_dead_letters_total", "counter",
	 "Keys that used up their attempts.", SHARD_FIELD(dead)},
	{"sluice_route_queue_bytes", "gauge",
	 "Memory held by the route's queue entries.", SHARD_FIELD(key_bytes)},
};

/*
 * The age of each route's oldest reconcile in progress: a sink call that
 * hangs shows here long before any histogram moves.  Each worker keeps
 * the start of its reconcile in a word of its own, so this costs the
 * workers one store per reconcile start and end.
 */
static void
metrics_longest(struct sluice *r, FILE *out)
{
	uint64_t now = sl_now_ns();

	metric_head(out, "sluice_route_longest_reconcile_seconds", "gauge",
		    "Age of the oldest reconcile in progress (0: none).");
	for (struct route *rt = r->routes; rt; rt = rt->next) {
		uint64_t oldest = 0;

		for (unsigned i = 0; i < rt->nshards; i++) {
			const struct shard *sh = &rt->shards[i];

			for (unsigned w = 0; w < sh->nworkers; w++) {
				uint64_t t = atomic_load_explicit(
					&sh->workers[w].busy_since,
					memory_order_relaxed);

				if (t && t < now && now - t > oldest)
					oldest = now - t;
			}
		}
		fprintf(out,
			"sluice_route_longest_reconcile_seconds{route=\"%s\"} "
			"%.6f\n",
			rt->name, (double)oldest / 1e9);
	}
}

/* A histogram kept per worker (at @offset in struct shard_worker),
 * merged over a route's workers. */
static void
metrics_histograms(struct sluice *r, FILE *out, const char *name,
		   const char *help, size_t offset)
{
	struct sl_histogram *sum = mi_malloc(sizeof(*sum));
	char labels[160];

	metric_head(out, name, "histogram", help);
	if (!sum)
		return;
	for (struct route *rt = r->routes; rt; rt = rt->next) {
		sl_histogram_reset(sum);
		for (unsigned i = 0; i < rt->nshards; i++) {
			struct shard *sh = &rt->shards[i];

			for (unsigned w = 0; w < sh->nworkers; w++) {
				struct shard_worker *wk = &sh->workers[w];

				sl_mutex_lock(&wk->mu);
				sl_histogram_merge(
					sum, (const struct sl_histogram
						      *)((const char *)wk +
							 offset));
				sl_mutex_unlock(&wk->mu);
			}
		}
		snprintf(labels, sizeof(labels), "route=\"%s\"", rt->name);
		sl_histogram_write_prom(sum, out, name, labels);
	}
	mi_free(sum);
}

static void
metrics_routes(struct sluice *r, FILE *out)
{
	char labels[160];

	for (size_t m = 0; m < SL_ARRAY_SIZE(route_metrics); m++) {
		const struct route_metric *rm = &route_metrics[m];

		metric_head(out, rm->name, rm->type, rm->help);
		for (struct route *rt = r->routes; rt; rt = rt->next) {
			uint64_t sum = 0;

			for (unsigned i = 0; i < rt->nshards; i++)
				sum += atomic_load_explicit(
					(_Atomic uint64_t *)((char *)&rt
								     ->shards[i] +
							     rm->offset),
					memory_order_relaxed);
			snprintf(labels, sizeof(labels), "route=\"%s\"",
				 rt->name);
			metric_u64(out, rm->name, labels, sum);
		}
	}

	metrics_longest(r, out);
	metrics_histograms(r, out, "sluice_reconcile_latency_seconds",
			   "From the newest event's ingest to its reconcile's "
			   "end.",
			   offsetof(struct shard_worker, latency));
	metrics_histograms(r, out, "sluice_reconcile_duration_seconds",
			   "Time spent in the sink per reconcile.",
			   offsetof(struct shard_worker, duration));
}

static void
metrics_runtime(FILE *out)
{
	static const struct {
		const char *name, *type, *help;
		size_t offset;
	} pm[] = {
		{"sluice_proc_tasks_run_total", "counter",
		 "Task switches on the processor.",
		 offsetof(struct sl_proc_stats, tasks_run)},
		{"sluice_proc_steals_total", "counter",
		 "Tasks stolen from other processors.",
		 offsetof(struct sl_proc_stats, steals)},
		{"sluice_proc_parks_total", "counter", "Tasks that parked.",
		 offsetof(struct sl_proc_stats, parks)},
		{"sluice_proc_wakeups_total", "counter",
		 "Times the processor was woken from idle.",
		 offsetof(struct sl_proc_stats, wakeups)},
		{"sluice_proc_submits_total", "counter",
		 "io_uring_enter calls.",
		 offsetof(struct sl_proc_stats, submits)},
		{"sluice_proc_spawns_total", "counter", "Tasks created.",
		 offsetof(struct sl_proc_stats, spawns)},
		{"sluice_proc_hogs_total", "counter",
		 "Tasks reported for holding the processor too long.",
		 offsetof(struct sl_proc_stats, hogs)},
	};
	unsigned n = sl_runtime_nprocs();
	char labels[32];

	for (size_t m = 0; m < SL_ARRAY_SIZE(pm); m++) {
		metric_head(out, pm[m].name, pm[m].type, pm[m].help);
		for (unsigned p = 0; p < n; p++) {
			struct sl_proc_stats st;

			if (sl_runtime_proc_stats(p, &st))
				continue;
			snprintf(labels, sizeof(labels), "proc=\"%u\"", p);
			metric_u64(out, pm[m].name, labels,
				   *(uint64_t *)((char *)&st + pm[m].offset));
		}
	}
	metric_head(out, "sluice_proc_runq_length", "gauge",
		    "Tasks in the processor's run queue.");
	for (unsigned p = 0; p < n; p++) {
		struct sl_proc_stats st;

		if (sl_runtime_proc_stats(p, &st))
			continue;
		snprintf(labels, sizeof(labels), "proc=\"%u\"", p);
		metric_u64(out, "sluice_proc_runq_length", labels,
			   st.runq_len);
	}
	metric_head(out, "sluice_tasks", "gauge", "Live tasks.");
	metric_u64(out, "sluice_tasks", NULL, sl_runtime_live_tasks());
}

static void
metrics_io(FILE *out)
{
	struct sl_io_stats st;

	sl_io_stats_get(&st);
	metric_head(out, "sluice_io_buffers", "gauge",
		    "Receive buffers allocated, over all processors.");
	metric_u64(out, "sluice_io_buffers", NULL, st.bufs_total);
	metric_head(out, "sluice_io_buffers_in_use", "gauge",
		    "Receive buffers held by connections and readers.");
	metric_u64(out, "sluice_io_buffers_in_use", NULL, st.bufs_in_use);
	metric_head(out, "sluice_io_enobufs_total", "counter",
		    "Times a buffer ring ran dry.");
	metric_u64(out, "sluice_io_enobufs_total", NULL, st.enobufs);
	metric_head(out, "sluice_io_ops_total", "counter",
		    "One-shot I/O requests.");
	metric_u64(out, "sluice_io_ops_total", NULL, st.ops);
}

void
sluice_write_metrics(struct sluice *r, FILE *out)
{
	static const struct {
		const char *name, *help;
		size_t offset;
	} rm[] = {
		{"sluice_events_ingested_total",
		 "Events accepted by at least one route.",
		 offsetof(struct sluice, st.ingested)},
		{"sluice_events_unmatched_total",
		 "Events no route took (and no default).",
		 offsetof(struct sluice, st.unmatched)},
		{"sluice_events_malformed_total",
		 "Malformed or oversized lines and frames.",
		 offsetof(struct sluice, st.malformed)},
		{"sluice_dead_letters_dropped_total",
		 "Dead letters dropped because their queue was full.",
		 offsetof(struct sluice, st.dead_dropped)},
	};

	for (size_t m = 0; m < SL_ARRAY_SIZE(rm); m++) {
		metric_head(out, rm[m].name, "counter", rm[m].help);
		metric_u64(out, rm[m].name, NULL,
			   atomic_load((_Atomic uint64_t *)((char *)r +
							    rm[m].offset)));
	}
	sl_mutex_lock(&r->admin);
	metrics_routes(r, out);
	sl__inputs_metrics(r, out);
	sl_mutex_unlock(&r->admin);
	metrics_runtime(out);
	metrics_io(out);
}
