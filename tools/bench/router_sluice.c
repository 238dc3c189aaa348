/* SPDX-License-Identifier: MIT */
/*
 * router_sluice: Sluice's side of the router benchmarks (tools/bench/run-router),
 * the router embedded through router/sluice.h, beside the Go peer in
 * go/router.
 *
 *   router_sluice serve --keys K --events N [--workers W] [--work-ns NS]
 *                       [--latency] [--timeout S] [--procs P]
 *   router_sluice wq --keys K --events N [--workers W] [--timeout S]
 *                    [--procs P]
 *
 * Both modes install one route that takes every kind, folds LATEST and
 * reconciles into a callback sink, with W workers in all (W / P per
 * processor, since a route's workers are counted per processor).
 *
 * serve   A TCP lines input on 127.0.0.1 (a free port, printed first as
 *         "port=P pid=PID"), fed by `router_load send`.  This is the path
 *         sluiced runs (input task per connection, line decoding, route
 *         match, shard inbox, fold queue, workers, sink); the program
 *         embeds it rather than running sluiced because the sink must check
 *         every reconcile against the per-key versions, and the process's
 *         own getrusage at the moment of convergence is the figure wanted,
 *         which a metrics scrape from outside would blur.
 * wq      No network and no decoding: a task copies each event into an
 *         event of its own (as decoding would) and feeds them 64 at a
 *         time with sluice_feed_batch(); the route's shards, pumps, fold
 *         queues and workers do the rest.  This is sl_foldq as the router
 *         drives it: one pump per processor owns its queue, with no lock,
 *         and trades items with the workers over channels.
 *
 * The sink reads the key number and the version from each reconciled event
 * (the layout router_load writes), checks that the version is above the
 * last one reconciled for that key and not past the key's final version
 * (N / K), and counts a key as converged when its final version arrives.
 * When every key has, the program prints
 *
 *   router impl=sluice mode=M events=N keys=K workers=W reconciles=R
 *          converged_ns=T cpu=S rss_kb=K bad=B [start_ns=T added_ns=T]
 *          [io_bufs=N] [samples=N p50_us=X p99_us=X p999_us=X]
 *
 * and exits 0.  converged_ns is CLOCK_REALTIME when the last key's final
 * version was reconciled; cpu is the process's user + system seconds and
 * rss_kb its peak resident set (getrusage) at that moment; bad counts
 * reconciles that broke the order or carried a bad version.  In wq mode
 * start_ns and added_ns bound the feeding; in serve mode io_bufs is the
 * number of receive buffers io/ allocated (they are most of the resident
 * set beyond the keys).  With --work-ns each reconcile
 * busy-waits that long; with --latency the sink records, per reconcile,
 * the time from the send stamp in the newest event to the reconcile.  A
 * run that does not converge within --timeout seconds (default 120), or
 * that counted anything bad, prints "router impl=sluice FAILED ..." and
 * exits 1.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "core/base.h"
#include "core/context.h"
#include "core/runtime.h"
#include "core/task.h"
#include "io/io.h"
#include "router/sluice.h"

#define LINE_LEN 64
#define KEY_DIGITS 7
#define VER_DIGITS 8
#define STAMP_DIGITS 19

/*
 * Latency histogram: values below 32 ns have a bucket each; above, every
 * power of two is split into 32 buckets, so a bucket is at most 1/32 of
 * its value wide (about 3%).  go/router uses the same buckets.
 */
#define HIST_SUB 32
#define HIST_BUCKETS (HIST_SUB + 59 * HIST_SUB)

struct bench_opts {
	bool wq;
	uint64_t keys, events;
	unsigned workers, procs;
	uint64_t work_ns;
	bool latency;
	unsigned timeout_s;
};

struct proc_hist {
	_Alignas(SL_FALSE_SHARING) _Atomic uint64_t n[HIST_BUCKETS];
};

static struct {
	struct bench_opts o;
	uint32_t final;			/* every key's last version */
	uint32_t *last;			/* per key, written by its reconcile */
	_Alignas(SL_FALSE_SHARING) _Atomic uint64_t converged;
	_Atomic uint64_t bad;
	_Atomic uint64_t converged_ns;
	struct sl_waitgroup all_done;	/* 1 until every key converged */
	struct proc_hist *hist;		/* one per processor */
	uint64_t start_ns, added_ns;	/* wq: the feeding task's span */
	int err;
} bench;

static uint64_t
realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t
monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Parse @n decimal digits; UINT64_MAX if any is not a digit. */
static uint64_t
parse_digits(const char *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return UINT64_MAX;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	return v;
}

static unsigned
hist_index(uint64_t v)
{
	unsigned e;

	if (v < HIST_SUB)
		return (unsigned)v;
	e = 63u - (unsigned)__builtin_clzll(v);	/* >= 5 */
	return HIST_SUB + (e - 5) * HIST_SUB +
	       (unsigned)((v >> (e - 5)) & (HIST_SUB - 1));
}

/* The middle of bucket @i. */
static double
hist_value(unsigned i)
{
	unsigned e, mant;

	if (i < HIST_SUB)
		return i;
	e = (i - HIST_SUB) / HIST_SUB + 5;
	mant = (i - HIST_SUB) % HIST_SUB;
	return (double)((uint64_t)(HIST_SUB + mant) << (e - 5)) +
	       (double)(1ull << (e - 5)) / 2;
}

static void
busy_work(uint64_t ns)
{
	uint64_t end = monotonic_ns() + ns;

	while (monotonic_ns() < end)
		;
}

/* The sink: check the reconciled version and count convergence. */
static int
bench_reconcile(void *arg, const struct sl_foldq_item *it,
		struct sl_context *ctx)
{
	const struct sl_event *e = it->events[it->nevents - 1];
	const char *payload = sl_event_payload(e);
	uint64_t key = UINT64_MAX, ver = UINT64_MAX;

	(void)arg;
	(void)ctx;
	if (e->key_len == 1 + KEY_DIGITS && e->payload_len >= VER_DIGITS)
		key = parse_digits(sl_event_key(e) + 1, KEY_DIGITS);
	if (key < bench.o.keys)
		ver = parse_digits(payload, VER_DIGITS);
	if (key >= bench.o.keys || ver <= bench.last[key] ||
	    ver > bench.final) {
		atomic_fetch_add_explicit(&bench.bad, 1, memory_order_relaxed);
		return 0;
	}
	bench.last[key] = (uint32_t)ver;

	if (bench.o.latency &&
	    e->payload_len >= VER_DIGITS + 1 + STAMP_DIGITS) {
		uint64_t stamp = parse_digits(payload + VER_DIGITS + 1,
					      STAMP_DIGITS);
		uint64_t now = realtime_ns();
		struct proc_hist *h = &bench.hist[sl_runtime_proc_id()];

		if (stamp != UINT64_MAX && now > stamp)
			atomic_fetch_add_explicit(&h->n[hist_index(now - stamp)],
						  1, memory_order_relaxed);
	}
	if (bench.o.work_ns)
		busy_work(bench.o.work_ns);

	if (ver == bench.final &&
	    atomic_fetch_add_explicit(&bench.converged, 1,
				      memory_order_acq_rel) +
			    1 ==
		    bench.o.keys) {
		atomic_store(&bench.converged_ns, realtime_ns());
		sl_waitgroup_done(&bench.all_done);
	}
	return 0;
}

/* Events the wq feeder hands the router at once. */
#define FEED_BATCH 64

/* wq: feed every event from one task, as a producer would: each event
 * copied into an event of its own, as decoding a line would, and handed
 * over FEED_BATCH at a time. */
static void
feed_task(void *arg)
{
	struct sluice *r = arg;
	char line[LINE_LEN + 1] =
		"set k0000000 00000000 0000000000000000000 "
		"xxxxxxxxxxxxxxxxxxxxx\n";
	struct sl_event *batch[FEED_BATCH];
	size_t n = 0, routed = 0;
	int rc = 0;

	bench.start_ns = realtime_ns();
	for (uint64_t i = 0; i < bench.o.events; i++) {
		uint64_t key = i % bench.o.keys, ver = i / bench.o.keys + 1;
		size_t went;

		for (int d = KEY_DIGITS; d >= 1; d--, key /= 10)
			line[4 + d] = (char)('0' + key % 10);
		for (int d = VER_DIGITS - 1; d >= 0; d--, ver /= 10)
			line[13 + d] = (char)('0' + ver % 10);
		batch[n] = sl_event_new(line, 3, line + 4, 1 + KEY_DIGITS,
					line + 13, LINE_LEN - 14);
		if (!batch[n]) {
			rc = -ENOMEM;
			goto fail;
		}
		if (++n < FEED_BATCH && i + 1 < bench.o.events)
			continue;
		rc = sluice_feed_batch(r, NULL, batch, n, &went);
		routed += went;
		if (rc || went != n)
			goto fail;
		n = 0;
	}
	bench.added_ns = realtime_ns();
	return;
fail:
	fprintf(stderr, "router_sluice: feed: %s (%zu events routed)\n",
		rc < 0 ? sl_strerror(rc) : "not routed", routed);
	bench.err = rc < 0 ? rc : -EINVAL;
}

static void
print_latency(void)
{
	static const double pct[] = {0.50, 0.99, 0.999};
	static const char *const names[] = {"p50_us", "p99_us", "p999_us"};
	uint64_t total = 0, seen = 0;
	unsigned nprocs = sl_runtime_nprocs(), p = 0;
	uint64_t *sum = calloc(HIST_BUCKETS, sizeof(*sum));

	if (!sum)
		return;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		for (unsigned k = 0; k < nprocs; k++)
			sum[i] += atomic_load(&bench.hist[k].n[i]);
		total += sum[i];
	}
	printf(" samples=%llu", (unsigned long long)total);
	for (unsigned i = 0; i < HIST_BUCKETS && p < 3; i++) {
		seen += sum[i];
		while (p < 3 && total && (double)seen >= pct[p] * (double)total)
			printf(" %s=%.1f", names[p++], hist_value(i) / 1e3);
	}
	free(sum);
}

/* The runtime's per-processor counters, summed: how often processors
 * slept and were woken, and how many task switches the run cost. */
static void
print_sched(void)
{
	struct sl_proc_stats sum = {0}, ps;

	for (unsigned p = 0; p < sl_runtime_nprocs(); p++) {
		if (sl_runtime_proc_stats(p, &ps))
			continue;
		sum.tasks_run += ps.tasks_run;
		sum.parks += ps.parks;
		sum.wakeups += ps.wakeups;
		sum.idle_waits += ps.idle_waits;
		sum.submits += ps.submits;
		sum.steals += ps.steals;
	}
	printf(" switches=%llu parks=%llu wakeups=%llu idle_waits=%llu "
	       "submits=%llu steals=%llu",
	       (unsigned long long)sum.tasks_run,
	       (unsigned long long)sum.parks,
	       (unsigned long long)sum.wakeups,
	       (unsigned long long)sum.idle_waits,
	       (unsigned long long)sum.submits,
	       (unsigned long long)sum.steals);
}

static void
report(struct sluice *r, int wait_err)
{
	struct sluice_stats st;
	struct rusage ru;
	uint64_t bad = atomic_load(&bench.bad);
	bool ok = wait_err == 0 && bad == 0 && bench.err == 0;

	getrusage(RUSAGE_SELF, &ru);
	sluice_stats_get(r, &st);
	printf("router impl=sluice%s mode=%s events=%llu keys=%llu "
	       "workers=%u reconciles=%llu converged_ns=%llu cpu=%.3f "
	       "rss_kb=%ld bad=%llu",
	       ok ? "" : " FAILED", bench.o.wq ? "wq" : "serve",
	       (unsigned long long)bench.o.events,
	       (unsigned long long)bench.o.keys, bench.o.workers,
	       (unsigned long long)st.reconciles,
	       (unsigned long long)atomic_load(&bench.converged_ns),
	       (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
		       ((double)ru.ru_utime.tv_usec +
			(double)ru.ru_stime.tv_usec) /
			       1e6,
	       ru.ru_maxrss, (unsigned long long)bad);
	if (bench.o.wq)
		printf(" start_ns=%llu added_ns=%llu",
		       (unsigned long long)bench.start_ns,
		       (unsigned long long)bench.added_ns);
	if (!bench.o.wq) {
		struct sl_io_stats io;

		sl_io_stats_get(&io);
		printf(" io_bufs=%llu", (unsigned long long)io.bufs_total);
	}
	print_sched();
	if (bench.o.latency)
		print_latency();
	if (!ok)
		printf(" keys_converged=%llu ingested=%llu pending=%llu",
		       (unsigned long long)atomic_load(&bench.converged),
		       (unsigned long long)st.ingested,
		       (unsigned long long)st.pending);
	printf("\n");
	fflush(stdout);
	if (!ok && !bench.err)
		bench.err = wait_err ? wait_err : -EPROTO;
}

static int
start_router(struct sluice **out)
{
	unsigned nprocs = sl_runtime_nprocs();
	struct sluice_route route = {
		.name = "bench",
		.match = SL_MATCH_ANY,
		.fold = {.policy = SL_FOLD_LATEST},
		.workers = bench.o.workers / nprocs ? bench.o.workers / nprocs
						    : 1,
		.sink = sluice_sink_callback(bench_reconcile, NULL),
	};
	char err[256] = "";
	int rc = sluice_create(NULL, out);

	if (rc == 0)
		rc = sluice_set_routes(*out, &route, 1, err, sizeof(err));
	if (rc)
		fprintf(stderr, "router_sluice: router: %s %s\n",
			sl_strerror(rc), err);
	return rc;
}

static void
main_task(void *arg)
{
	struct sl_context *deadline = NULL;
	struct sluice *r = NULL;
	char addr[128];
	int rc;

	(void)arg;
	sl_waitgroup_init(&bench.all_done);
	sl_waitgroup_add(&bench.all_done, 1);
	bench.hist = aligned_alloc(SL_FALSE_SHARING,
				   sl_runtime_nprocs() * sizeof(*bench.hist));
	if (bench.hist)
		memset(bench.hist, 0,
		       sl_runtime_nprocs() * sizeof(*bench.hist));
	rc = bench.hist ? start_router(&r) : -ENOMEM;
	if (rc)
		goto out;

	if (bench.o.wq) {
		rc = sl_task_spawn(feed_task, r,
				   &(struct sl_task_opts){.name = "feed",
							  .proc = -1},
				   NULL);
	} else {
		struct sluice_input in = {.name = "bench",
					  .type = SLUICE_INPUT_TCP,
					  .addr = "127.0.0.1:0"};

		rc = sluice_add_input(r, &in);
		if (rc == 0)
			rc = sluice_input_addr(r, "bench", addr, sizeof(addr));
		if (rc == 0) {
			const char *colon = strrchr(addr, ':');

			printf("port=%s pid=%d\n", colon ? colon + 1 : addr,
			       (int)getpid());
			fflush(stdout);
		}
	}
	if (rc == 0)
		rc = sl_context_with_timeout(sl_context_background(),
					     (uint64_t)bench.o.timeout_s *
						     SL_NSEC_PER_SEC,
					     &deadline);
	if (rc)
		goto out;
	report(r, sl_waitgroup_wait_ctx(deadline, &bench.all_done));
	sl_context_release(deadline);
out:
	if (rc) {
		fprintf(stderr, "router_sluice: %s\n", sl_strerror(rc));
		bench.err = rc;
	}
	if (r) {
		sluice_shutdown(r, bench.err == 0,
				sl_now_ns() + 5 * SL_NSEC_PER_SEC);
		sluice_destroy(r);
	}
}

static uint64_t
parse_num(const char *flag, const char *s, double max)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || v < 0 || v > max) {
		fprintf(stderr, "router_sluice: %s wants a number up to %.0f, "
			"not '%s'\n", flag, max, s);
		exit(2);
	}
	return (uint64_t)v;
}

static void
usage(void)
{
	fprintf(stderr,
		"usage: router_sluice serve|wq --keys K --events N "
		"[--workers W] [--work-ns NS] [--latency] [--timeout S] "
		"[--procs P]\n");
	exit(2);
}

static void
parse_opts(int argc, char **argv, struct bench_opts *o)
{
	*o = (struct bench_opts){.keys = 10000, .events = 5000000,
				 .workers = 4, .timeout_s = 120};
	if (argc < 2 || (strcmp(argv[1], "serve") && strcmp(argv[1], "wq")))
		usage();
	o->wq = !strcmp(argv[1], "wq");
	for (int i = 2; i < argc; i++) {
		const char *flag = argv[i];

		if (!strcmp(flag, "--latency")) {
			o->latency = true;
			continue;
		}
		if (++i >= argc)
			usage();
		if (!strcmp(flag, "--keys"))
			o->keys = parse_num(flag, argv[i], 1e7);
		else if (!strcmp(flag, "--events"))
			o->events = parse_num(flag, argv[i], 1e10);
		else if (!strcmp(flag, "--workers"))
			o->workers = (unsigned)parse_num(flag, argv[i], 4096);
		else if (!strcmp(flag, "--work-ns"))
			o->work_ns = parse_num(flag, argv[i], 1e9);
		else if (!strcmp(flag, "--timeout"))
			o->timeout_s = (unsigned)parse_num(flag, argv[i], 1e6);
		else if (!strcmp(flag, "--procs"))
			o->procs = (unsigned)parse_num(flag, argv[i],
						       SL_MAX_PROCS);
		else
			usage();
	}
	if (!o->keys || !o->workers || o->events % o->keys ||
	    o->events / o->keys > 99999999) {
		fprintf(stderr, "router_sluice: --events must be a multiple "
			"of --keys (at most 10^8 versions per key)\n");
		exit(2);
	}
}

int
main(int argc, char **argv)
{
	struct sl_runtime_opts ro;
	int err;

	parse_opts(argc, argv, &bench.o);
	bench.final = (uint32_t)(bench.o.events / bench.o.keys);
	bench.last = calloc(bench.o.keys, sizeof(*bench.last));
	if (!bench.last) {
		fprintf(stderr, "router_sluice: no memory for %llu keys\n",
			(unsigned long long)bench.o.keys);
		return 1;
	}
	sl_runtime_opts_init(&ro);
	ro.nprocs = bench.o.procs;
	err = sl_runtime_run(&ro, main_task, NULL);
	if (err) {
		fprintf(stderr, "router_sluice: %s\n", sl_runtime_error());
		return 1;
	}
	free(bench.last);
	return bench.err ? 1 : 0;
}
