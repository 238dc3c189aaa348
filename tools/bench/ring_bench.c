/* SPDX-License-Identifier: MIT */
/*
 * ring_bench: the raw MPMC ring, thread to thread, against its peers.
 *
 * One run moves 8-byte items from P producer threads to P consumer threads
 * through one ring of 1024 slots and prints the rate as one result line:
 *
 *   ring_bench IMPL THREADS BURST [ITEMS [CAP_MS]]
 *
 *   IMPL     sluice (sl_ring), ck (ck_ring MPMC), rte (DPDK rte_ring, MP/MC
 *            defaults) or vyukov (a plain bounded MPMC ring, the reference)
 *   THREADS  P: producers and consumers each (1, 2 or 4)
 *   BURST    1 for single-item calls, 32 for the burst calls
 *   ITEMS    items to move (default 10^7)
 *   CAP_MS   stop early after this long (default 2000 ms)
 *
 * tools/bench/run-core runs it for every ring in turn and compares them.
 *
 * Fairness.  Every ring runs the same producer and consumer loops; only the
 * enqueue and dequeue calls differ, and they are inlined into the loop (the
 * ring is a compile-time constant in each thread function).  On a full or
 * empty ring every thread follows the same retry policy: spin with a pause
 * instruction for BACKOFF_SPINS failed tries, then call sched_yield() on each
 * further failure, so that on a machine with fewer CPUs than threads the
 * thread that holds the ring's progress gets to run.  Nothing is pinned.
 *
 * Capacity.  ck_ring and rte_ring (without RING_F_EXACT_SZ) keep one of
 * their 1024 slots empty to tell full from empty, so they hold 1023 items;
 * sl_ring and the reference ring hold 1024.  The slot count, and so the
 * memory the rings touch, is the same.  ck_ring stores pointers: the items
 * travel as pointer-sized integers.  ck_ring has no MPMC burst calls and the
 * reference ring is single-item only, so they have no burst figures.
 *
 * Collapse.  With more threads than CPUs, a ring whose producers publish in
 * reservation order (ck_ring, rte_ring) stalls whenever a thread is
 * preempted between reserving and publishing: the others spin inside the
 * library, out of reach of the retry policy, until it runs again.  Runs are
 * therefore capped by time as well as by item count; a capped run reports
 * the rate it reached and says capped=1.
 *
 * Every run checks that the consumers received exactly the items the
 * producers sent (count and sum) and exits 1 if not.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/base.h"
/*
 * gcc 12 inlines sl__ring_copy() into calls with an 8-byte item and then
 * warns (-Warray-bounds, -Wstringop-overflow) about its 16-byte case, a
 * branch the ring's element size rules out at run time.  Silence that false
 * positive for the header only.
 */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Warray-bounds"
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#endif
#include "core/ring.h"
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#ifdef SL_BENCH_HAVE_CK
#include <ck_ring.h>
#endif
#ifdef SL_BENCH_HAVE_DPDK
#include <rte_ring.h>
#endif

#define RING_SLOTS 1024
#define MAX_THREADS 4
#define MAX_BURST 32
#define BACKOFF_SPINS 64

#define DEFAULT_ITEMS 10000000ull
#define DEFAULT_CAP_MS 2000ull

/* The exit code run-core reads as "this peer was not built". */
#define EXIT_SKIP 77

enum ring_impl {
	IMPL_SLUICE,
	IMPL_CK,
	IMPL_RTE,
	IMPL_VYUKOV,
};

static const char *const impl_names[] = {
	[IMPL_SLUICE] = "sluice",
	[IMPL_CK] = "ck",
	[IMPL_RTE] = "rte",
	[IMPL_VYUKOV] = "vyukov",
};

/*
 * The reference: a bounded MPMC queue with a sequence number per cell, in
 * its plainest form (8-byte payload, no sealing, no burst).  A cell at
 * position pos is free for a producer while seq == pos and holds an item for
 * a consumer while seq == pos + 1; the consumer frees it for the next lap
 * with seq = pos + capacity.  Each release store of seq pairs with the
 * acquire load of seq on the other side.
 */
struct vy_cell {
	_Atomic uint64_t seq;
	uint64_t value;
};

struct vy_ring {
	struct vy_cell *cells;
	uint64_t mask;
	_Alignas(SL_FALSE_SHARING) _Atomic uint64_t enq_pos;
	_Alignas(SL_FALSE_SHARING) _Atomic uint64_t deq_pos;
	_Alignas(SL_FALSE_SHARING) char pad_end;
};

static int
vy_init(struct vy_ring *r, uint64_t slots)
{
	r->cells = aligned_alloc(SL_FALSE_SHARING, slots * sizeof(*r->cells));
	if (!r->cells)
		return -ENOMEM;
	r->mask = slots - 1;
	for (uint64_t i = 0; i < slots; i++)
		atomic_init(&r->cells[i].seq, i);
	atomic_init(&r->enq_pos, 0);
	atomic_init(&r->deq_pos, 0);
	return 0;
}

SL_INLINE bool
vy_enqueue(struct vy_ring *r, uint64_t value)
{
	uint64_t pos = atomic_load_explicit(&r->enq_pos, memory_order_relaxed);
	struct vy_cell *cell;

	for (;;) {
		cell = &r->cells[pos & r->mask];
		uint64_t seq = atomic_load_explicit(&cell->seq,
						    memory_order_acquire);
		int64_t lag = (int64_t)(seq - pos);

		if (lag == 0) {
			if (atomic_compare_exchange_weak_explicit(
				    &r->enq_pos, &pos, pos + 1,
				    memory_order_relaxed, memory_order_relaxed))
				break;
		} else if (lag < 0) {
			return false;
		} else {
			pos = atomic_load_explicit(&r->enq_pos,
						   memory_order_relaxed);
		}
	}

	cell->value = value;
	atomic_store_explicit(&cell->seq, pos + 1, memory_order_release);
	return true;
}

SL_INLINE bool
vy_dequeue(struct vy_ring *r, uint64_t *value)
{
	uint64_t pos = atomic_load_explicit(&r->deq_pos, memory_order_relaxed);
	struct vy_cell *cell;

	for (;;) {
		cell = &r->cells[pos & r->mask];
		uint64_t seq = atomic_load_explicit(&cell->seq,
						    memory_order_acquire);
		int64_t lag = (int64_t)(seq - (pos + 1));

		if (lag == 0) {
			if (atomic_compare_exchange_weak_explicit(
				    &r->deq_pos, &pos, pos + 1,
				    memory_order_relaxed, memory_order_relaxed))
				break;
		} else if (lag < 0) {
			return false;
		} else {
			pos = atomic_load_explicit(&r->deq_pos,
						   memory_order_relaxed);
		}
	}

	*value = cell->value;
	atomic_store_explicit(&cell->seq, pos + r->mask + 1,
			      memory_order_release);
	return true;
}

/* The run's shared state.  Fields written during the run sit on lines of
 * their own so they do not disturb the ring's lines. */
struct bench {
	enum ring_impl impl;
	unsigned threads;
	unsigned burst;
	uint64_t items;

	struct sl_ring *sl;
	struct vy_ring vy;
#ifdef SL_BENCH_HAVE_CK
	_Alignas(SL_FALSE_SHARING) struct ck_ring ck;
	struct ck_ring_buffer *ck_slots;
#endif
#ifdef SL_BENCH_HAVE_DPDK
	struct rte_ring *rte;
#endif

	pthread_barrier_t start;
	pthread_mutex_t lock;
	pthread_cond_t finished;
	unsigned consumers_done;

	_Alignas(SL_FALSE_SHARING) atomic_bool stop;
	_Alignas(SL_FALSE_SHARING) _Atomic unsigned producers_done;
};

/* One thread's tally, on its own lines. */
struct worker {
	struct bench *bench;
	unsigned index;
	uint64_t count;
	uint64_t sum;
	uint64_t start_ns;
	uint64_t end_ns;
} SL_CACHE_ALIGNED;

SL_INLINE void
cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield" ::: "memory");
#else
	atomic_signal_fence(memory_order_seq_cst);
#endif
}

/* The retry policy shared by every ring: see the top of the file. */
SL_INLINE void
backoff(unsigned *fails)
{
	if (*fails < BACKOFF_SPINS) {
		(*fails)++;
		cpu_relax();
	} else {
		sched_yield();
	}
}

SL_INLINE bool
ring_put(struct bench *b, enum ring_impl impl, uint64_t value)
{
	switch (impl) {
	case IMPL_SLUICE:
		return sl_ring_try_enqueue(b->sl, &value);
	case IMPL_CK:
#ifdef SL_BENCH_HAVE_CK
		return ck_ring_enqueue_mpmc(&b->ck, b->ck_slots,
					    (void *)(uintptr_t)value);
#else
		break;
#endif
	case IMPL_RTE:
#ifdef SL_BENCH_HAVE_DPDK
		return rte_ring_enqueue(b->rte, (void *)(uintptr_t)value) == 0;
#else
		break;
#endif
	case IMPL_VYUKOV:
		return vy_enqueue(&b->vy, value);
	}
	abort();
}

SL_INLINE bool
ring_get(struct bench *b, enum ring_impl impl, uint64_t *value)
{
	switch (impl) {
	case IMPL_SLUICE:
		return sl_ring_try_dequeue(b->sl, value);
	case IMPL_CK: {
#ifdef SL_BENCH_HAVE_CK
		void *p;

		if (!ck_ring_dequeue_mpmc(&b->ck, b->ck_slots, &p))
			return false;
		*value = (uintptr_t)p;
		return true;
#else
		break;
#endif
	}
	case IMPL_RTE: {
#ifdef SL_BENCH_HAVE_DPDK
		void *p;

		if (rte_ring_dequeue(b->rte, &p) != 0)
			return false;
		*value = (uintptr_t)p;
		return true;
#else
		break;
#endif
	}
	case IMPL_VYUKOV:
		return vy_dequeue(&b->vy, value);
	}
	abort();
}

/* The burst calls.  rte_ring_enqueue_burst() is rte_ring_enqueue_burst_elem()
 * with an element size of sizeof(void *); calling the latter directly lets
 * the items stay uint64_t without a cast between pointer tables. */
SL_INLINE unsigned
ring_put_burst(struct bench *b, enum ring_impl impl, const uint64_t *values,
	       unsigned n)
{
	switch (impl) {
	case IMPL_SLUICE:
		return sl_ring_enqueue_burst(b->sl, values, n);
	case IMPL_RTE:
#ifdef SL_BENCH_HAVE_DPDK
		return rte_ring_enqueue_burst_elem(b->rte, values,
						   sizeof(*values), n, NULL);
#else
		break;
#endif
	case IMPL_CK:
	case IMPL_VYUKOV:
		break;
	}
	abort();
}

SL_INLINE unsigned
ring_get_burst(struct bench *b, enum ring_impl impl, uint64_t *values,
	       unsigned n)
{
	switch (impl) {
	case IMPL_SLUICE:
		return sl_ring_dequeue_burst(b->sl, values, n);
	case IMPL_RTE:
#ifdef SL_BENCH_HAVE_DPDK
		return rte_ring_dequeue_burst_elem(b->rte, values,
						   sizeof(*values), n, NULL);
#else
		break;
#endif
	case IMPL_CK:
	case IMPL_VYUKOV:
		break;
	}
	abort();
}

SL_INLINE bool
stopped(struct bench *b)
{
	return atomic_load_explicit(&b->stop, memory_order_relaxed);
}

/* Producer i sends i + 1, i + 1 + P, i + 1 + 2P, ... up to the item count,
 * so together the producers send 1..items exactly once. */
SL_INLINE void
produce(struct worker *w, enum ring_impl impl)
{
	struct bench *b = w->bench;
	uint64_t step = b->threads;
	uint64_t next = w->index + 1;
	unsigned fails = 0;

	while (next <= b->items && !stopped(b)) {
		if (!ring_put(b, impl, next)) {
			backoff(&fails);
			continue;
		}
		fails = 0;
		w->count++;
		w->sum += next;
		next += step;
	}
}

SL_INLINE void
produce_burst(struct worker *w, enum ring_impl impl)
{
	struct bench *b = w->bench;
	uint64_t step = b->threads;
	uint64_t next = w->index + 1;
	uint64_t buf[MAX_BURST];
	unsigned head = 0, len = 0;
	unsigned fails = 0;

	while (!stopped(b)) {
		if (head == len) {
			head = len = 0;
			for (; len < b->burst && next <= b->items; len++) {
				buf[len] = next;
				next += step;
			}
			if (len == 0)
				break;
		}

		unsigned n = ring_put_burst(b, impl, buf + head, len - head);

		if (n == 0) {
			backoff(&fails);
			continue;
		}
		fails = 0;
		for (unsigned i = 0; i < n; i++)
			w->sum += buf[head + i];
		w->count += n;
		head += n;
	}
}

/*
 * A consumer stops once every producer has finished and the ring is empty.
 * The acquire load of producers_done pairs with each producer's release
 * increment after its last enqueue, so an empty ring seen after it is final.
 */
SL_INLINE bool
drained(struct bench *b)
{
	return atomic_load_explicit(&b->producers_done, memory_order_acquire) ==
	       b->threads;
}

SL_INLINE void
consume(struct worker *w, enum ring_impl impl)
{
	struct bench *b = w->bench;
	unsigned fails = 0;
	uint64_t value;

	for (;;) {
		if (ring_get(b, impl, &value)) {
			fails = 0;
			w->count++;
			w->sum += value;
			continue;
		}
		if (drained(b)) {
			if (ring_get(b, impl, &value)) {
				w->count++;
				w->sum += value;
				continue;
			}
			break;
		}
		backoff(&fails);
	}
}

SL_INLINE void
consume_burst(struct worker *w, enum ring_impl impl)
{
	struct bench *b = w->bench;
	uint64_t buf[MAX_BURST];
	unsigned fails = 0;

	for (;;) {
		bool last = drained(b);
		unsigned n = ring_get_burst(b, impl, buf, b->burst);

		if (n == 0) {
			if (last)
				break;
			backoff(&fails);
			continue;
		}
		fails = 0;
		for (unsigned i = 0; i < n; i++)
			w->sum += buf[i];
		w->count += n;
	}
}

static void
producer_run(struct worker *w, enum ring_impl impl)
{
	struct bench *b = w->bench;

	pthread_barrier_wait(&b->start);
	w->start_ns = sl_now_ns();
	if (b->burst > 1)
		produce_burst(w, impl);
	else
		produce(w, impl);
	atomic_fetch_add_explicit(&b->producers_done, 1, memory_order_release);
}

static void
consumer_run(struct worker *w, enum ring_impl impl)
{
	struct bench *b = w->bench;

	pthread_barrier_wait(&b->start);
	w->start_ns = sl_now_ns();
	if (b->burst > 1)
		consume_burst(w, impl);
	else
		consume(w, impl);
	w->end_ns = sl_now_ns();

	pthread_mutex_lock(&b->lock);
	b->consumers_done++;
	pthread_cond_signal(&b->finished);
	pthread_mutex_unlock(&b->lock);
}

/* One pair of thread functions per ring, each with the ring fixed, so the
 * dispatch in ring_put() and ring_get() folds away. */
#define RING_THREADS(impl, tag)                                                \
	static void *tag##_producer(void *arg)                                 \
	{                                                                      \
		producer_run(arg, impl);                                       \
		return NULL;                                                   \
	}                                                                      \
	static void *tag##_consumer(void *arg)                                 \
	{                                                                      \
		consumer_run(arg, impl);                                       \
		return NULL;                                                   \
	}

RING_THREADS(IMPL_SLUICE, sluice)
RING_THREADS(IMPL_CK, ck)
RING_THREADS(IMPL_RTE, rte)
RING_THREADS(IMPL_VYUKOV, vyukov)

static void *(*const producers[])(void *) = {
	[IMPL_SLUICE] = sluice_producer,
	[IMPL_CK] = ck_producer,
	[IMPL_RTE] = rte_producer,
	[IMPL_VYUKOV] = vyukov_producer,
};

static void *(*const consumers[])(void *) = {
	[IMPL_SLUICE] = sluice_consumer,
	[IMPL_CK] = ck_consumer,
	[IMPL_RTE] = rte_consumer,
	[IMPL_VYUKOV] = vyukov_consumer,
};

/* Return: 0, -EOPNOTSUPP when the ring was not built in or has no burst
 * calls, or another -errno. */
static int
ring_setup(struct bench *b)
{
	switch (b->impl) {
	case IMPL_SLUICE:
		b->sl = sl_ring_create(sizeof(uint64_t), RING_SLOTS);
		return b->sl ? 0 : -errno;
	case IMPL_CK:
#ifdef SL_BENCH_HAVE_CK
		if (b->burst > 1)
			return -EOPNOTSUPP;
		b->ck_slots = aligned_alloc(SL_FALSE_SHARING,
					    RING_SLOTS * sizeof(*b->ck_slots));
		if (!b->ck_slots)
			return -ENOMEM;
		ck_ring_init(&b->ck, RING_SLOTS);
		return 0;
#else
		return -EOPNOTSUPP;
#endif
	case IMPL_RTE: {
#ifdef SL_BENCH_HAVE_DPDK
		/* rte_ring_create() needs the EAL's memory zones; a ring
		 * initialised in our own memory needs nothing of the EAL. */
		ssize_t size = rte_ring_get_memsize(RING_SLOTS);

		if (size < 0)
			return (int)size;
		b->rte = aligned_alloc(SL_FALSE_SHARING,
				       ((size_t)size + SL_FALSE_SHARING - 1) &
					       ~(size_t)(SL_FALSE_SHARING - 1));
		if (!b->rte)
			return -ENOMEM;
		return rte_ring_init(b->rte, "bench", RING_SLOTS, 0);
#else
		return -EOPNOTSUPP;
#endif
	}
	case IMPL_VYUKOV:
		if (b->burst > 1)
			return -EOPNOTSUPP;
		return vy_init(&b->vy, RING_SLOTS);
	}
	return -EINVAL;
}

static void
ring_teardown(struct bench *b)
{
	sl_ring_destroy(b->sl);
	free(b->vy.cells);
#ifdef SL_BENCH_HAVE_CK
	free(b->ck_slots);
#endif
#ifdef SL_BENCH_HAVE_DPDK
	free(b->rte);
#endif
}

/*
 * Wait until every consumer has finished, or until the time cap passes;
 * then tell the producers to stop and wait for the consumers to drain.
 * Return: whether the cap was reached.
 */
static bool
wait_consumers(struct bench *b, uint64_t cap_ns)
{
	struct timespec deadline;
	bool capped = false;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += (time_t)(cap_ns / SL_NSEC_PER_SEC);
	deadline.tv_nsec += (long)(cap_ns % SL_NSEC_PER_SEC);
	if (deadline.tv_nsec >= (long)SL_NSEC_PER_SEC) {
		deadline.tv_sec++;
		deadline.tv_nsec -= (long)SL_NSEC_PER_SEC;
	}

	pthread_mutex_lock(&b->lock);
	while (b->consumers_done < b->threads && !capped) {
		if (pthread_cond_timedwait(&b->finished, &b->lock, &deadline) ==
		    ETIMEDOUT)
			capped = true;
	}
	if (capped)
		atomic_store_explicit(&b->stop, true, memory_order_relaxed);
	while (b->consumers_done < b->threads)
		pthread_cond_wait(&b->finished, &b->lock);
	pthread_mutex_unlock(&b->lock);
	return capped;
}

static int
sync_init(struct bench *b)
{
	pthread_condattr_t attr;

	if (pthread_barrier_init(&b->start, NULL, 2 * b->threads + 1) ||
	    pthread_mutex_init(&b->lock, NULL) ||
	    pthread_condattr_init(&attr) ||
	    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) ||
	    pthread_cond_init(&b->finished, &attr))
		return -1;
	pthread_condattr_destroy(&attr);
	return 0;
}

/* What the threads of one run did, added up. */
struct totals {
	uint64_t sent, sent_sum;
	uint64_t got, got_sum;
	uint64_t start_ns, end_ns;
};

/* The run lasts from the first thread's start to the last consumer's end:
 * the threads take both times themselves, so a main thread that is slow to
 * wake after the barrier does not shorten the run. */
static struct totals
add_up(const struct worker *prod, const struct worker *cons, unsigned n)
{
	struct totals t = { .start_ns = UINT64_MAX };

	for (unsigned i = 0; i < n; i++) {
		t.sent += prod[i].count;
		t.sent_sum += prod[i].sum;
		t.got += cons[i].count;
		t.got_sum += cons[i].sum;
		if (prod[i].start_ns < t.start_ns)
			t.start_ns = prod[i].start_ns;
		if (cons[i].start_ns < t.start_ns)
			t.start_ns = cons[i].start_ns;
		if (cons[i].end_ns > t.end_ns)
			t.end_ns = cons[i].end_ns;
	}
	return t;
}

static void
report(const struct bench *b, const struct totals *t, bool capped)
{
	double secs = (double)(t->end_ns - t->start_ns) / 1e9;
	char name[32];

	snprintf(name, sizeof(name), "ring-%u/%u-%s", b->threads, b->threads,
		 b->burst > 1 ? "burst32" : "single");
	printf("ringbench name=%s impl=%s unit=items/s better=higher "
	       "value=%.1f n=%llu capped=%d\n",
	       name, impl_names[b->impl], (double)t->got / secs,
	       (unsigned long long)t->got, capped);
}

static int
run(struct bench *b, uint64_t cap_ns)
{
	struct worker prod[MAX_THREADS] = { 0 }, cons[MAX_THREADS] = { 0 };
	pthread_t tids[2 * MAX_THREADS];
	struct totals t;
	bool capped;
	unsigned n = 0;

	if (sync_init(b)) {
		fprintf(stderr, "ring_bench: cannot set up threads\n");
		return 1;
	}

	for (unsigned i = 0; i < b->threads; i++) {
		prod[i] = (struct worker){ .bench = b, .index = i };
		cons[i] = (struct worker){ .bench = b, .index = i };
		if (pthread_create(&tids[n++], NULL, producers[b->impl],
				   &prod[i]) ||
		    pthread_create(&tids[n++], NULL, consumers[b->impl],
				   &cons[i])) {
			fprintf(stderr, "ring_bench: cannot start threads\n");
			return 1;
		}
	}
	pthread_barrier_wait(&b->start);

	capped = wait_consumers(b, cap_ns);
	for (unsigned i = 0; i < n; i++)
		pthread_join(tids[i], NULL);

	t = add_up(prod, cons, b->threads);
	if (t.got != t.sent || t.got_sum != t.sent_sum ||
	    (!capped && t.sent != b->items)) {
		fprintf(stderr,
			"ring_bench: %s: sent %llu items (sum %llu), "
			"received %llu (sum %llu), wanted %llu\n",
			impl_names[b->impl], (unsigned long long)t.sent,
			(unsigned long long)t.sent_sum,
			(unsigned long long)t.got,
			(unsigned long long)t.got_sum,
			(unsigned long long)b->items);
		return 1;
	}
	report(b, &t, capped);
	return 0;
}

static int
parse_impl(const char *s, enum ring_impl *out)
{
	for (size_t i = 0; i < SL_ARRAY_SIZE(impl_names); i++) {
		if (strcmp(s, impl_names[i]) == 0) {
			*out = (enum ring_impl)i;
			return 0;
		}
	}
	return -EINVAL;
}

static void
usage(void)
{
	fprintf(stderr, "usage: ring_bench sluice|ck|rte|vyukov THREADS(1|2|4) "
			"BURST(1|32) [ITEMS [CAP_MS]]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct bench b = { 0 };
	uint64_t cap_ms = DEFAULT_CAP_MS;
	int err;

	if (argc < 4 || argc > 6 || parse_impl(argv[1], &b.impl))
		usage();
	b.threads = (unsigned)strtoul(argv[2], NULL, 10);
	b.burst = (unsigned)strtoul(argv[3], NULL, 10);
	b.items = argc > 4 ? strtoull(argv[4], NULL, 10) : DEFAULT_ITEMS;
	if (argc > 5)
		cap_ms = strtoull(argv[5], NULL, 10);
	if (b.threads < 1 || b.threads > MAX_THREADS ||
	    (b.burst != 1 && b.burst != MAX_BURST) || b.items == 0 ||
	    cap_ms == 0)
		usage();

	err = ring_setup(&b);
	if (err == -EOPNOTSUPP) {
		fprintf(stderr, "ring_bench: %s %s is not available here\n",
			impl_names[b.impl], b.burst > 1 ? "burst" : "single");
		return EXIT_SKIP;
	}
	if (err) {
		fprintf(stderr, "ring_bench: %s: %s\n", impl_names[b.impl],
			sl_strerror(err));
		return 1;
	}

	int rc = run(&b, cap_ms * SL_NSEC_PER_MSEC);

	ring_teardown(&b);
	return rc;
}
