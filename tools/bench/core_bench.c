/* SPDX-License-Identifier: MIT */
/*
 * core_bench: the Sluice runtime on the core workloads, one workload per
 * run, printing one result line in the format of the Go peer
 * (tools/bench/go/corebench), so tools/bench/run-core can alternate the two:
 *
 *   core_bench WORKLOAD [N]
 *
 *   corebench name=chan-2 impl=sluice unit=items/s better=higher value=...
 *
 * The workloads mirror the Go program one for one and use only the public
 * API in the core headers:
 *
 *   spawn       spawn and join N tasks in waves of 10^4       ns per task
 *   parked      N tasks parked on one channel receive         resident
 *               (page tables, not in VmRSS, go to stderr)     bytes per task
 *   yield       two tasks yielding to each other, 1 proc      ns per switch
 *   pingpong-1  unbuffered round trip between two tasks,      ns per round
 *   pingpong-2  on 1 and on 2 processors                      trip
 *   chan-P      P producers and P consumers on one channel    items per
 *               of 1024 8-byte items (P = 1, 2, 4)            second
 *   select      one consumer selecting over 4 channels fed    ns per item
 *               by 4 producers, under a cancellable context
 *
 * Processors: 1 for yield and pingpong-1, 2 for the rest, as GOMAXPROCS on
 * the Go side; every other runtime option keeps its default.  A workload
 * whose own check fails (an item lost, a wrong echo) exits 1.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "core/chan.h"
#include "core/context.h"
#include "core/runtime.h"
#include "core/task.h"

/* The most tasks the spawn workload keeps alive at once. */
#define SPAWN_BATCH 10000

/* The buffer of the chan and select workloads' channels. */
#define CHAN_CAP 1024

#define MAX_PAIRS 4
#define SELECT_PRODUCERS 4

struct job;

struct workload {
	const char *name;
	unsigned nprocs;
	uint64_t size;
	const char *unit;
	const char *better;
	int (*run)(struct job *job);
	unsigned pairs;		/* producers and consumers, for chan-P */
};

/* What the main task is asked to do and what it reports back. */
struct job {
	const struct workload *w;
	uint64_t n;
	double value;
	int err;		/* 0, -errno from the runtime, or 1 (check) */
};

static int
fail(const char *what, int err)
{
	fprintf(stderr, "core_bench: %s: %s\n", what, sl_strerror(err));
	return err;
}

static double
per_op(uint64_t start_ns, uint64_t ops)
{
	return (double)(sl_now_ns() - start_ns) / (double)ops;
}

/* The sum of 1..n, what the receivers of the chan and select workloads
 * must add up to. */
static uint64_t
expected_sum(uint64_t n)
{
	return n * (n + 1) / 2;
}

static void
noop_task(void *arg)
{
	(void)arg;
}

static void
noop_done_task(void *arg)
{
	sl_waitgroup_done(arg);
}

/* The Go peer's pattern: detached tasks, one wait group per wave. */
static int
run_spawn_wg(struct job *job)
{
	struct sl_waitgroup wg;
	uint64_t start = sl_now_ns();
	int err = 0;

	sl_waitgroup_init(&wg);
	for (uint64_t done = 0; done < job->n && !err;) {
		uint64_t k = job->n - done < SPAWN_BATCH ? job->n - done
							 : SPAWN_BATCH;
		uint64_t i;

		sl_waitgroup_add(&wg, (int64_t)k);
		for (i = 0; i < k; i++) {
			err = sl_go(noop_done_task, &wg);
			if (err) {
				sl_waitgroup_add(&wg, -(int64_t)(k - i));
				break;
			}
		}
		sl_waitgroup_wait(&wg);
		done += i;
	}

	job->value = per_op(start, job->n);
	return err ? fail("spawn", err) : 0;
}

static int
run_spawn(struct job *job)
{
	struct sl_task **tasks = malloc(SPAWN_BATCH * sizeof(*tasks));
	uint64_t start = sl_now_ns();
	int err = 0;

	if (!tasks)
		return fail("spawn", -ENOMEM);

	for (uint64_t done = 0; done < job->n && !err;) {
		uint64_t k = job->n - done < SPAWN_BATCH ? job->n - done
							 : SPAWN_BATCH;
		uint64_t i;

		for (i = 0; i < k; i++) {
			err = sl_task_spawn(noop_task, NULL, NULL, &tasks[i]);
			if (err)
				break;
		}
		for (uint64_t j = 0; j < i; j++)
			sl_task_join(tasks[j]);
		done += i;
	}

	job->value = per_op(start, job->n);
	free(tasks);
	return err ? fail("spawn", err) : 0;
}

/* A "Name: N kB" field of /proc/self/status in bytes, or -1. */
static int64_t
status_bytes(const char *field)
{
	FILE *f = fopen("/proc/self/status", "r");
	size_t len = strlen(field);
	char line[256];
	long long kb = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, field, len) == 0 && line[len] == ':' &&
		    sscanf(line + len + 1, "%lld", &kb) == 1)
			break;
	}
	fclose(f);
	return kb < 0 ? -1 : (int64_t)kb * 1024;
}

/* VmRSS, the figure the Go peer reads too. */
static int64_t
resident_bytes(void)
{
	return status_bytes("VmRSS");
}

struct parked {
	struct sl_chan *ch;
	struct sl_waitgroup ready;
	struct sl_waitgroup exited;
};

static void
parked_task(void *arg)
{
	struct parked *p = arg;

	sl_waitgroup_done(&p->ready);
	sl_chan_recv(p->ch, NULL);
	sl_waitgroup_done(&p->exited);
}

static int
run_parked(struct job *job)
{
	struct parked p;
	int64_t before, after, pte_before, pte_after;
	int err = 0;

	p.ch = sl_chan_create(0, 0);
	if (!p.ch)
		return fail("parked", -errno);
	sl_waitgroup_init(&p.ready);
	sl_waitgroup_init(&p.exited);
	before = resident_bytes();
	pte_before = status_bytes("VmPTE");

	sl_waitgroup_add(&p.ready, (int64_t)job->n);
	sl_waitgroup_add(&p.exited, (int64_t)job->n);
	for (uint64_t i = 0; i < job->n; i++) {
		err = sl_go(parked_task, &p);
		if (err) {
			fail("parked", err);
			sl_waitgroup_add(&p.ready, -(int64_t)(job->n - i));
			sl_waitgroup_add(&p.exited, -(int64_t)(job->n - i));
			break;
		}
	}
	sl_waitgroup_wait(&p.ready);
	after = resident_bytes();
	pte_after = status_bytes("VmPTE");

	sl_chan_close(p.ch);
	sl_waitgroup_wait(&p.exited);
	sl_chan_destroy(p.ch);
	if (before < 0 || after < 0)
		return fail("parked: reading VmRSS", -EIO);
	job->value = (double)(after - before) / (double)job->n;
	/* Page tables are not in VmRSS; say what they add beside it. */
	if (pte_before >= 0 && pte_after >= 0)
		fprintf(stderr, "core_bench: parked: page tables %.0f bytes "
				"per task beside VmRSS\n",
			(double)(pte_after - pte_before) / (double)job->n);
	return err;
}

static void
yield_task(void *arg)
{
	uint64_t n = *(const uint64_t *)arg;

	for (uint64_t i = 0; i < n; i++)
		sl_task_yield();
}

static int
run_yield(struct job *job)
{
	struct sl_task *t[2];
	uint64_t per = job->n / 2;
	uint64_t start = sl_now_ns();
	int err;

	err = sl_task_spawn(yield_task, &per, NULL, &t[0]);
	if (err)
		return fail("yield", err);
	err = sl_task_spawn(yield_task, &per, NULL, &t[1]);
	sl_task_join(t[0]);
	if (err)
		return fail("yield", err);
	sl_task_join(t[1]);

	job->n = 2 * per;
	job->value = per_op(start, job->n);
	return 0;
}

struct pingpong {
	struct sl_chan *ping;
	struct sl_chan *pong;
};

static void
echo_task(void *arg)
{
	struct pingpong *pp = arg;
	uint64_t v;

	while (sl_chan_recv(pp->ping, &v) == 0)
		sl_chan_send(pp->pong, &v);
}

static int
pingpong_loop(struct pingpong *pp, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		uint64_t v;

		sl_chan_send(pp->ping, &i);
		sl_chan_recv(pp->pong, &v);
		if (v != i) {
			fprintf(stderr, "core_bench: pingpong: sent %llu, "
					"got back %llu\n",
				(unsigned long long)i, (unsigned long long)v);
			return 1;
		}
	}
	return 0;
}

static int
run_pingpong(struct job *job)
{
	struct pingpong pp = {
		.ping = sl_chan_create(sizeof(uint64_t), 0),
		.pong = sl_chan_create(sizeof(uint64_t), 0),
	};
	struct sl_task *echo;
	uint64_t start;
	int err = -ENOMEM;

	if (!pp.ping || !pp.pong)
		goto out;
	err = sl_task_spawn(echo_task, &pp, NULL, &echo);
	if (err)
		goto out;

	start = sl_now_ns();
	err = pingpong_loop(&pp, job->n);
	job->value = per_op(start, job->n);

	sl_chan_close(pp.ping);
	sl_task_join(echo);
out:
	if (err < 0)
		fail("pingpong", err);
	if (pp.ping)
		sl_chan_destroy(pp.ping);
	if (pp.pong)
		sl_chan_destroy(pp.pong);
	return err;
}

/* Shared by the producers and consumers of the chan and select workloads. */
struct flow {
	struct sl_chan *ch;
	uint64_t first;		/* a producer sends first, first + step, */
	uint64_t step;
	uint64_t last;		/* ... up to last */
	_Atomic uint64_t *sum;	/* consumers add what they received */
	_Atomic uint64_t *count;
};

static void
producer_task(void *arg)
{
	const struct flow *f = arg;

	for (uint64_t v = f->first; v <= f->last; v += f->step) {
		if (sl_chan_send(f->ch, &v) != 0)
			return;
	}
}

static void
consumer_task(void *arg)
{
	const struct flow *f = arg;
	uint64_t v, sum = 0, count = 0;

	while (sl_chan_recv(f->ch, &v) == 0) {
		sum += v;
		count++;
	}
	atomic_fetch_add_explicit(f->sum, sum, memory_order_relaxed);
	atomic_fetch_add_explicit(f->count, count, memory_order_relaxed);
}

static int
check_received(const char *what, uint64_t n, uint64_t count, uint64_t sum)
{
	if (count == n && sum == expected_sum(n))
		return 0;
	fprintf(stderr,
		"core_bench: %s: received %llu items summing to %llu, "
		"sent %llu summing to %llu\n",
		what, (unsigned long long)count, (unsigned long long)sum,
		(unsigned long long)n, (unsigned long long)expected_sum(n));
	return 1;
}

/* Spawn @n tasks running @fn over @flows[i]; on failure join those started
 * and return the error. */
static int
spawn_flows(sl_task_fn fn, struct flow *flows, unsigned n,
	    struct sl_task **tasks)
{
	for (unsigned i = 0; i < n; i++) {
		int err = sl_task_spawn(fn, &flows[i], NULL, &tasks[i]);

		if (err) {
			for (unsigned j = 0; j < i; j++)
				sl_task_join(tasks[j]);
			return err;
		}
	}
	return 0;
}

static void
join_all(struct sl_task **tasks, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		sl_task_join(tasks[i]);
}

static int
run_chan(struct job *job)
{
	unsigned p = job->w->pairs;
	uint64_t n = job->n - job->n % p;
	_Atomic uint64_t sum = 0, count = 0;
	struct flow flows[MAX_PAIRS];
	struct sl_task *prod[MAX_PAIRS], *cons[MAX_PAIRS];
	struct sl_chan *ch = sl_chan_create(sizeof(uint64_t), CHAN_CAP);
	uint64_t start = sl_now_ns();
	int err;

	if (!ch)
		return fail("chan", -errno);
	for (unsigned i = 0; i < p; i++)
		flows[i] = (struct flow){ ch, i + 1, p, n, &sum, &count };

	err = spawn_flows(producer_task, flows, p, prod);
	if (err)
		goto out;
	err = spawn_flows(consumer_task, flows, p, cons);
	if (err) {
		sl_chan_close(ch);
		join_all(prod, p);
		goto out;
	}
	join_all(prod, p);
	sl_chan_close(ch);
	join_all(cons, p);

	job->n = n;
	job->value = (double)n * SL_NSEC_PER_SEC /
		     (double)(sl_now_ns() - start);
	err = check_received("chan", n, count, sum);
out:
	sl_chan_destroy(ch);
	return err < 0 ? fail("chan", err) : err;
}

/* The consumer of the select workload.  The context goes in as sl_select()'s
 * own argument, which is how Sluice spells Go's "case <-ctx.Done()". */
static int
select_loop(struct sl_chan **chans, struct sl_context *ctx, uint64_t n,
	    uint64_t *sum)
{
	struct sl_select_case cases[SELECT_PRODUCERS];
	uint64_t vals[SELECT_PRODUCERS];

	for (unsigned i = 0; i < SELECT_PRODUCERS; i++) {
		cases[i] = (struct sl_select_case){
			.ch = chans[i],
			.dir = SL_SELECT_RECV,
			.elem = &vals[i],
		};
	}

	for (uint64_t got = 0; got < n; got++) {
		int i = sl_select(cases, SELECT_PRODUCERS, ctx,
				  SL_SELECT_FOREVER);

		if (i < 0)
			return i;
		if (cases[i].result != 0)
			return cases[i].result;
		*sum += vals[i];
	}
	return 0;
}

static int
run_select(struct job *job)
{
	uint64_t n = job->n - job->n % SELECT_PRODUCERS, sum = 0, start;
	struct sl_chan *chans[SELECT_PRODUCERS] = { 0 };
	struct flow flows[SELECT_PRODUCERS];
	struct sl_task *prod[SELECT_PRODUCERS];
	struct sl_context *ctx = NULL;
	int err = -ENOMEM;

	for (unsigned i = 0; i < SELECT_PRODUCERS; i++) {
		chans[i] = sl_chan_create(sizeof(uint64_t), CHAN_CAP);
		if (!chans[i])
			goto out;
		flows[i] = (struct flow){ chans[i], i + 1, SELECT_PRODUCERS, n,
					  NULL, NULL };
	}
	err = sl_context_with_cancel(sl_context_background(), &ctx);
	if (err)
		goto out;

	start = sl_now_ns();
	err = spawn_flows(producer_task, flows, SELECT_PRODUCERS, prod);
	if (err)
		goto out;
	err = select_loop(chans, ctx, n, &sum);
	job->value = per_op(start, n);
	job->n = n;

	for (unsigned i = 0; i < SELECT_PRODUCERS; i++)
		sl_chan_close(chans[i]);
	join_all(prod, SELECT_PRODUCERS);
	if (!err)
		err = check_received("select", n, n, sum);
out:
	if (ctx)
		sl_context_release(ctx);
	for (unsigned i = 0; i < SELECT_PRODUCERS; i++) {
		if (chans[i])
			sl_chan_destroy(chans[i]);
	}
	return err < 0 ? fail("select", err) : err;
}

static const struct workload workloads[] = {
	{ "spawn", 2, 1000000, "ns/task", "lower", run_spawn_wg, 0 },
	{ "spawn-join", 2, 1000000, "ns/task", "lower", run_spawn, 0 },
	{ "parked", 2, 100000, "bytes/task", "lower", run_parked, 0 },
	{ "yield", 1, 2000000, "ns/switch", "lower", run_yield, 0 },
	{ "pingpong-1", 1, 1000000, "ns/roundtrip", "lower", run_pingpong, 0 },
	{ "pingpong-2", 2, 1000000, "ns/roundtrip", "lower", run_pingpong, 0 },
	{ "chan-1", 2, 10000000, "items/s", "higher", run_chan, 1 },
	{ "chan-2", 2, 10000000, "items/s", "higher", run_chan, 2 },
	{ "chan-4", 2, 10000000, "items/s", "higher", run_chan, 4 },
	{ "select", 2, 4000000, "ns/item", "lower", run_select, 0 },
};

static void
main_task(void *arg)
{
	struct job *job = arg;

	job->err = job->w->run(job);
}

static const struct workload *
find_workload(const char *name)
{
	for (size_t i = 0; i < SL_ARRAY_SIZE(workloads); i++) {
		if (strcmp(workloads[i].name, name) == 0)
			return &workloads[i];
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	struct sl_runtime_opts opts;
	struct job job = { 0 };
	int err;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: core_bench WORKLOAD [N]\n");
		return 2;
	}
	job.w = find_workload(argv[1]);
	if (!job.w) {
		fprintf(stderr, "core_bench: unknown workload '%s'\n", argv[1]);
		return 2;
	}
	job.n = argc == 3 ? strtoull(argv[2], NULL, 10) : job.w->size;
	if (job.n < 4) {
		fprintf(stderr, "core_bench: bad size '%s'\n", argv[2]);
		return 2;
	}

	sl_runtime_opts_init(&opts);
	opts.nprocs = job.w->nprocs;
	err = sl_runtime_run(&opts, main_task, &job);
	if (err) {
		fprintf(stderr, "core_bench: runtime: %s\n",
			sl_runtime_error());
		return 1;
	}
	if (job.err)
		return 1;

	printf("corebench name=%s impl=sluice unit=%s better=%s value=%.1f "
	       "n=%llu\n",
	       job.w->name, job.w->unit, job.w->better, job.value,
	       (unsigned long long)job.n);
	return 0;
}
