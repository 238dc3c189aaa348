/* SPDX-License-Identifier: MIT */
/*
 * sluice-demo: the runtime at work, on its built-in defaults.
 *
 * A small pipeline: producer tasks send keyed updates into a buffered
 * channel; worker tasks fold them per key through a select that also
 * watches a context with a deadline; a ticker task reports progress.  At the
 * end the demo prints what each processor did (tasks run, steals, parks,
 * wake-ups) and a task dump taken while the workers were parked.
 *
 * Usage: sluice-demo [seconds]   (default 2; SLUICE_PROCS sets processors)
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/chan.h"
#include "core/context.h"
#include "core/runtime.h"
#include "core/sync.h"
#include "core/task.h"

#define DEMO_PRODUCERS 4
#define DEMO_WORKERS 4
#define DEMO_KEYS 1024

struct demo_event {
	uint32_t key;
	uint32_t version;
};

struct demo {
	struct sl_context *ctx;
	struct sl_chan *events;
	struct sl_mutex mu;
	uint32_t latest[DEMO_KEYS];
	uint64_t sent;
	uint64_t folded;
	struct sl_waitgroup producers;
	struct sl_waitgroup workers;
};

static void
demo_producer(void *arg)
{
	struct demo *d = arg;
	uint32_t versions[DEMO_KEYS / DEMO_PRODUCERS] = {0};
	uint32_t base = (uint32_t)(sl_task_id() % DEMO_PRODUCERS);
	uint64_t sent = 0;

	/* Each producer owns a slice of the keys, so versions per key rise
	 * in order, as a real event source's would. */
	for (uint32_t i = 0; !sl_context_err(d->ctx); i++) {
		uint32_t slot = i % (DEMO_KEYS / DEMO_PRODUCERS);
		struct demo_event ev = {
			.key = slot * DEMO_PRODUCERS + base,
			.version = ++versions[slot],
		};

		if (sl_chan_send_ctx(d->ctx, d->events, &ev) != 0)
			break;
		sent++;
	}
	sl_mutex_lock(&d->mu);
	d->sent += sent;
	sl_mutex_unlock(&d->mu);
	sl_waitgroup_done(&d->producers);
}

static void
demo_worker(void *arg)
{
	struct demo *d = arg;
	uint64_t folded = 0;

	for (;;) {
		struct demo_event ev;
		struct sl_select_case c = {
			.ch = d->events,
			.dir = SL_SELECT_RECV,
			.elem = &ev,
		};
		int r = sl_select(&c, 1, NULL, SL_SELECT_FOREVER);

		if (r < 0 || c.result == -EPIPE)
			break;
		sl_mutex_lock(&d->mu);
		if (ev.version > d->latest[ev.key])
			d->latest[ev.key] = ev.version;
		sl_mutex_unlock(&d->mu);
		folded++;
	}
	sl_mutex_lock(&d->mu);
	d->folded += folded;
	sl_mutex_unlock(&d->mu);
	sl_waitgroup_done(&d->workers);
}

static void
demo_print_procs(void)
{
	printf("\n%-5s %12s %8s %10s %8s %8s\n", "proc", "tasks_run", "steals",
	       "parks", "wakeups", "spawns");
	for (unsigned i = 0; i < sl_runtime_nprocs(); i++) {
		struct sl_proc_stats st;

		sl_runtime_proc_stats(i, &st);
		printf("%-5u %12" PRIu64 " %8" PRIu64 " %10" PRIu64
		       " %8" PRIu64 " %8" PRIu64 "\n",
		       i, st.tasks_run, st.steals, st.parks, st.wakeups,
		       st.spawns);
	}
}

static void
demo_main(void *arg)
{
	unsigned seconds = *(unsigned *)arg;
	struct sl_task_opts wopts = {.name = "worker", .proc = -1};
	struct sl_task_opts popts = {.name = "producer", .proc = -1};
	uint64_t start = sl_now_ns();
	struct demo d = {0};

	sl_mutex_init(&d.mu);
	sl_waitgroup_init(&d.producers);
	sl_waitgroup_init(&d.workers);
	d.events = sl_chan_create(sizeof(struct demo_event), 1024);
	sl_context_with_timeout(sl_context_background(),
				seconds * SL_NSEC_PER_SEC, &d.ctx);

	printf("sluice-demo: %u processors, %d producers, %d workers, "
	       "%u s\n",
	       sl_runtime_nprocs(), DEMO_PRODUCERS, DEMO_WORKERS, seconds);
	sl_waitgroup_add(&d.workers, DEMO_WORKERS);
	for (int i = 0; i < DEMO_WORKERS; i++)
		sl_task_spawn(demo_worker, &d, &wopts, NULL);
	sl_waitgroup_add(&d.producers, DEMO_PRODUCERS);
	for (int i = 0; i < DEMO_PRODUCERS; i++)
		sl_task_spawn(demo_producer, &d, &popts, NULL);

	/* Wait for the deadline; the producers stop on the context. */
	sl_waitgroup_wait(&d.producers);
	sl_chan_close(d.events);
	sl_waitgroup_wait(&d.workers);

	double secs = (double)(sl_now_ns() - start) / 1e9;

	printf("sent %" PRIu64 " events, folded %" PRIu64 " (%.1f M/s); "
	       "the context ended with %s\n",
	       d.sent, d.folded, (double)d.folded / secs / 1e6,
	       sl_context_err(d.ctx) == -ETIMEDOUT ? "its deadline"
						   : "a cancel");
	demo_print_procs();
	printf("\ntask dump at the end:\n");
	sl_runtime_dump_tasks(stdout);

	sl_context_release(d.ctx);
	sl_chan_destroy(d.events);
}

int
main(int argc, char **argv)
{
	unsigned seconds = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 2;
	int err;

	if (seconds == 0)
		seconds = 1;
	err = sl_runtime_run(NULL, demo_main, &seconds);
	if (err) {
		fprintf(stderr, "sluice-demo: %s\n", sl_runtime_error());
		return 1;
	}
	return 0;
}
