/* SPDX-License-Identifier: MIT */
/*
 * Internal structures of the runtime, shared by the files of core/.
 * Not installed; nothing outside core/ includes it.
 */
#ifndef SLUICE_CORE_SCHED_INTERNAL_H
#define SLUICE_CORE_SCHED_INTERNAL_H

#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/base.h"
#include "core/ring.h"
#include "core/runtime.h"
#include "core/task.h"

struct sl__task;
struct sl__proc;
struct sl__machine;

/* ---- context switch (switch_*.S) ---- */

struct sl__ctx {
	void *sp;
};

void sl__ctx_switch(struct sl__ctx *from, struct sl__ctx *to);
void sl__task_entry(void);
void sl__task_start(struct sl__task *t) __attribute__((noreturn));

/*
 * Lay out a first frame below @stack_top so that the first switch to @ctx
 * enters sl__task_start(@arg) (switch_init.c).
 */
void sl__ctx_init(struct sl__ctx *ctx, void *stack_top, void *arg);

/* ---- spinlock: for short critical sections that never park ---- */

void sl__spin_lock_slow(_Atomic uint32_t *l);

SL_INLINE void
sl__spin_lock(_Atomic uint32_t *l)
{
	uint32_t expected = 0;

	if (SL_LIKELY(atomic_compare_exchange_weak_explicit(
		    l, &expected, 1, memory_order_acquire,
		    memory_order_relaxed)))
		return;
	sl__spin_lock_slow(l);
}

SL_INLINE void
sl__spin_unlock(_Atomic uint32_t *l)
{
	atomic_store_explicit(l, 0, memory_order_release);
}

static inline void
sl__cpu_relax(void)
{
#if defined(__x86_64__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield" ::: "memory");
#endif
}

/* ---- waiters: how a parked task is found and woken ---- */

/*
 * A waiter is one task's entry in one wait queue.  A task that waits on
 * several things at once (select, or any wait with a context) puts one
 * waiter in each queue; all of them point at the same claim word.  Whoever
 * wants to wake the task must first win a CAS of that word from 0 to its
 * waiter's token, so exactly one waker wakes each wait, and the task learns
 * from the word which of its waits ended it.
 */
struct sl__waiter {
	struct sl__waiter *next;
	struct sl__waiter *prev;
	struct sl__task *task;
	_Atomic uint32_t *claim;
	uint32_t token;
	bool queued;
	/* Rendezvous channels hand the element over through this. */
	void *elem;
	/* Set by the waker before the wake: the outcome for this case. */
	int result;
	bool done;
	/*
	 * The claim word is this waiter's alone and every waker reaches it
	 * through one queue under that queue's lock, so claiming it needs no
	 * CAS.  Never set for waits that also have a context, a timeout or
	 * several cases.
	 */
	bool exclusive;
};

struct sl__waitq {
	struct sl__waiter *head;
	struct sl__waiter *tail;
};

void sl__waitq_push(struct sl__waitq *q, struct sl__waiter *w);
void sl__waitq_remove(struct sl__waitq *q, struct sl__waiter *w);

/*
 * Claim and remove the first waiter whose claim is still free, dropping
 * stale ones (claimed by another of their task's cases) on the way.
 * @dropped counts every waiter removed.  Returns NULL if none could be had.
 */
struct sl__waiter *sl__waitq_claim_one(struct sl__waitq *q,
				       unsigned *dropped);

static inline bool
sl__waiter_claim(struct sl__waiter *w)
{
	uint32_t expected = 0;

	if (w->exclusive) {
		atomic_store_explicit(w->claim, w->token, memory_order_relaxed);
		return true;
	}
	return atomic_compare_exchange_strong_explicit(
		w->claim, &expected, w->token, memory_order_acq_rel,
		memory_order_acquire);
}

/* The claim token a task writes on its own word to stop further wakes. */
#define SL__CLAIM_SELF 0xffffffffu
#define SL__CLAIM_TIMEOUT 0xfffffffeu
#define SL__CLAIM_CTX 0xfffffffdu

/* ---- timers (timer.c) ---- */

struct sl__timer;
typedef void (*sl__timer_fn)(struct sl__timer *t);

enum {
	SL__TIMER_IDLE = 0,
	SL__TIMER_QUEUED,
	SL__TIMER_RUNNING,
	SL__TIMER_DONE,
};

struct sl__timer {
	uint64_t when;
	sl__timer_fn fn;
	void *arg;
	struct sl__proc *p;
	int32_t idx;
	_Atomic uint32_t state;
};

struct sl__timer_heap {
	_Atomic uint32_t lock;
	uint32_t len;
	uint32_t cap;
	struct sl__timer **v;
	/* The earliest deadline, readable without the lock. */
	_Atomic uint64_t next;
};

/* Start @t on the calling task's processor (processor 0 from a thread). */
void sl__timer_start(struct sl__timer *t, uint64_t when);

/*
 * Stop @t.  Returns true if it was removed before firing.  If its callback
 * is running on another processor, waits for it to finish, so the caller may
 * free the timer (and what its callback touches) on return.
 */
bool sl__timer_stop(struct sl__timer *t);

/* Run @p's expired timers; returns how many fired. */
unsigned sl__timers_run(struct sl__proc *p, uint64_t now);
void sl__timers_free(struct sl__proc *p);

/* ---- tasks ---- */

enum sl__task_state {
	SL__TASK_RUNNABLE = 0,
	SL__TASK_RUNNING,
	SL__TASK_WAITING,
	SL__TASK_BLOCKING,
	SL__TASK_DEAD,
	SL__TASK_FREE,		/* cached for reuse */
};

/* The park handshake (sched.c, "Parking"). */
enum {
	SL__PARK_NONE = 0,
	SL__PARK_PARKING,
	SL__PARK_PARKED,
	SL__PARK_WOKEN,
};

/* join word values besides a waiting task's waiter pointer */
#define SL__JOIN_RUNNING ((uintptr_t)0)
#define SL__JOIN_DONE ((uintptr_t)1)

#define SL__TASK_NAME_MAX 32

struct sl__task {
	struct sl__ctx ctx;
	/* Link in the global run queue and the per-processor pinned queue. */
	struct sl__task *next;
	_Atomic uint32_t park;
	_Atomic uint32_t state;
	/* Atomic because task dumps read them while spawns write them. */
	_Atomic uint64_t id;
	_Atomic uint64_t parent_id;
	sl_task_fn fn;
	void *arg;

	/* What the task waits on and since when, and what it says it is
	 * doing (sl_task_set_note), for task dumps. */
	const char *_Atomic wait_reason;
	const char *_Atomic note;
	_Atomic uint64_t wait_since;

	/* Processor the task must run on, or NULL. */
	struct sl__proc *pinned;

	/* Join: SL__JOIN_RUNNING, SL__JOIN_DONE or a struct sl__waiter *. */
	_Atomic uintptr_t join;
	/* Set once the exiting task no longer touches its joiner's waiter. */
	_Atomic uint32_t join_ack;
	_Atomic uint32_t refs;

	/* Stack mapping: [guard][stack ... task struct]. */
	void *map_base;
	size_t map_size;
	size_t stack_size;
	bool guarded;
	bool cached;
	/* Spawned with a handle, so someone may join it. */
	bool joinable;

	/* Index in the table of all task structs (debug.c). */
	uint32_t table_idx;

#if defined(SL_SANITIZE_ADDRESS)
	void *asan_fake_stack;
#endif
#if defined(SL_SANITIZE_THREAD)
	void *tsan_fiber;
#endif
	/* Written word by word with atomic stores, so a concurrent task dump
	 * can read it without a lock; the task itself reads it as chars. */
	union {
		char name[SL__TASK_NAME_MAX];
		_Atomic uint64_t name_words[SL__TASK_NAME_MAX / 8];
	};
};

/* ---- processors and machines ---- */

#define SL__RUNQ_SIZE 256
#define SL__TASK_CACHE 128

enum {
	SL__PROC_RUNNING = 0,
	SL__PROC_BLOCKING,	/* its machine is inside a blocking call */
	SL__PROC_HANDOFF,	/* taken from a blocking machine */
	SL__PROC_IDLE,
	SL__PROC_STOPPED,
};

/* user_data tags of the completions the runtime posts to itself */
#define SL__CQE_WAKE 1ull
#define SL__CQE_EVENTFD 2ull
/* SQEs whose completion nobody needs (cancels, closes) */
#define SL__CQE_IGNORE 3ull
#define SL__CQE_TAG_MAX 16ull

/*
 * A completion: the user_data of every SQE that core/ or io/ submits (other
 * than the tags above) points to one.  The processor that reaps the CQE
 * calls fn with the result.
 */
struct sl__completion {
	void (*fn)(struct sl__completion *c, int res, uint32_t flags);
};

struct sl__proc {
	/* Written by the owner only, read by others without locks. */
	uint32_t id;
	int cpu;
	int node;
	_Atomic uint32_t status;
	struct sl__machine *_Atomic m;
	_Atomic uint64_t schedtick;
	uint32_t gq_countdown;
	_Atomic uint64_t blocking_since;
	uint32_t rand;

	/* The run queue: the owner pushes at tail, anyone pops at head.
	 * runnext is the owner's alone. */
	_Alignas(SL_FALSE_SHARING) _Atomic uint32_t runq_head;
	_Atomic uint32_t runq_tail;
	struct sl__task *_Atomic runnext;
	struct sl__task *_Atomic runq[SL__RUNQ_SIZE];

	/* Pinned tasks ready to run here: owner only. */
	struct sl__task *pinq_head;
	struct sl__task *pinq_tail;
	/* Tasks readied for this processor by others (pinned ones). */
	struct sl_ring *inbox;
	/* Completions other threads asked this processor to run, because
	 * they touch its ring (sl__proc_post). */
	struct sl_ring *mail;
	/* The I/O layer's per-processor state (io/), or NULL. */
	void *_Atomic io;

	struct sl__timer_heap timers;

	/* The poller: this processor's io_uring. */
	struct io_uring ring;
	int efd;
	uint64_t efd_buf;
	bool efd_armed;
	unsigned sq_unsubmitted;

	/* Idle bookkeeping (sched.c, "Idle processors"). */
	_Alignas(SL_FALSE_SHARING) _Atomic uint32_t idle;
	_Atomic uint32_t wake_pending;
	struct sl__proc *idle_next;
	bool in_idle_list;
	bool spinning;
	/* Readying a batch (timers, completions): queue at the tail. */
	bool in_batch;

	/* Free tasks with stacks of the default size. */
	struct sl__task *cache[SL__TASK_CACHE];
	unsigned ncache;
	uint64_t next_id;
	uint64_t ids_left;
	/* Tasks spawned here and tasks that exited here: the owner writes
	 * both, so the live count needs no shared counter. */
	_Atomic uint64_t spawned;
	_Atomic uint64_t exited;


	/* The id of the task it runs now, for the monitor. */
	_Atomic uint64_t cur_id;

	/* Counters (sl_proc_stats), written by the owner with relaxed ops. */
	struct {
		_Atomic uint64_t tasks_run, spawns, steals, parks;
		_Atomic uint64_t wakeups_sent, wakeups, idle_waits, submits;
		_Atomic uint64_t timers_fired, handoffs, hogs;
	} st;

	/* Set by the monitor when the running task has held the processor
	 * for a whole time slice; checked at preemption points. */
	_Atomic uint32_t preempt;

	/* The monitor's view (sysmon, in sched.c). */
	uint64_t mon_tick;
	bool mon_asked;
	uint64_t mon_since;
	bool mon_reported;
};

struct sl__machine {
	uint32_t id;
	int pinned_cpu;
	pthread_t thread;
	struct sl__proc *p;
	struct sl__task *curg;
	/* The scheduler loop's own context, on the thread's stack. */
	struct sl__ctx g0;

	/*
	 * Work to finish after a switch, on the far side of it: the task
	 * switched away from cannot be published (queued, freed) before its
	 * registers are saved, so the next context to run does it.
	 */
	void (*post_fn)(struct sl__machine *m, struct sl__task *prev);
	struct sl__task *post_task;

	/* Spare machines wait here for a processor to be handed to them. */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct sl__proc *handed;
	bool exiting;
	struct sl__machine *spare_next;
	struct sl__machine *all_next;
	bool in_blocking;

	void *altstack;
#if defined(SL_SANITIZE_ADDRESS)
	void *asan_fake_stack;
	const void *g0_stack_bottom;
	size_t g0_stack_size;
#endif
#if defined(SL_SANITIZE_THREAD)
	void *tsan_fiber;
#endif
};

struct sl__sched {
	struct sl_runtime_opts opts;
	unsigned nprocs;
	struct sl__proc *procs[SL_MAX_PROCS];
	bool numa;		/* place memory by its processor's node */
	bool msg_ring;

	/* Global run queue, idle processors and spare machines. */
	_Alignas(SL_FALSE_SHARING) _Atomic uint32_t lock;
	struct sl__task **gq_v;
	uint32_t gq_first;
	uint32_t gq_count;
	uint32_t gq_cap;
	_Atomic uint32_t gq_len;
	struct sl__proc *idle_head;
	struct sl__machine *spare_head;
	struct sl__machine *all_m;
	uint32_t nmachines;

	/* Every task struct (debug.c). */
	_Alignas(SL_FALSE_SHARING) _Atomic uint32_t table_lock;
	struct sl__task **table;
	uint32_t table_len;
	uint32_t table_cap;

	/* Free tasks beyond what the per-processor caches hold. */
	_Alignas(SL_FALSE_SHARING) _Atomic uint32_t pool_lock;
	struct sl__task **pool;
	uint32_t pool_len;

	_Alignas(SL_FALSE_SHARING) _Atomic uint32_t npidle;
	_Atomic uint32_t nspinning;
	/* Processors with a preemption request pending (read-mostly). */
	_Alignas(SL_FALSE_SHARING) _Atomic uint32_t preempt_pending;
	_Alignas(SL_FALSE_SHARING) _Atomic uint64_t id_block;
	/* Tasks spawned by threads outside the runtime. */
	_Atomic uint64_t spawned_outside;
	_Atomic uint32_t stopping;
	_Atomic uint32_t running;
	_Atomic uint32_t dump_request;

	pthread_t sysmon;
	pthread_mutex_t mon_mu;
	pthread_cond_t mon_cv;
	_Atomic uint32_t blocking_count;
	_Atomic uint32_t mon_long_sleep;
	/* The monitor's clock, refreshed on each of its rounds: good enough
	 * to tell a dump reader how long a task has waited, and free. */
	_Atomic uint64_t coarse_now;
	uint64_t mon_last_log;
};

extern struct sl__sched sl__rt;

/* Whether a runtime is up, for calls made from any thread. */
bool sl__runtime_up(void);

/* The machine of the calling thread, or NULL.  Not inlined: see sched.c. */
struct sl__machine *sl__machine_current(void);

static inline struct sl__task *
sl__task_current(void)
{
	struct sl__machine *m = sl__machine_current();

	return m ? m->curg : NULL;
}

static inline struct sl__proc *
sl__proc_current(void)
{
	struct sl__machine *m = sl__machine_current();

	return m ? m->p : NULL;
}

/*
 * Parking (sched.c).  A task that wants to wait:
 *   1. calls sl__park_prepare() before it publishes any waiter;
 *   2. publishes waiters (and re-checks its condition);
 *   3. calls sl__park(), which returns once some waker called sl__wake().
 * sl__park_cancel() undoes step 1 when step 2 found it need not wait and it
 * won its own claim word, so no waker can be on its way.
 */
void sl__park_prepare(struct sl__task *self, const char *reason);
void sl__park(struct sl__task *self);
/* sl__park() for a caller that already holds its machine pointer. */
void sl__park_on(struct sl__machine *m, struct sl__task *self);
void sl__park_cancel(struct sl__task *self);

/*
 * Cooperative preemption.  The monitor asks a task that has held its
 * processor for a whole time slice to yield; channel operations and other
 * busy paths call sl__preempt_point(), which costs one load of a read-mostly
 * word unless some processor has a request pending.
 */
void sl__preempt_slow(void);

SL_INLINE void
sl__preempt_point(void)
{
	if (SL_UNLIKELY(atomic_load_explicit(&sl__rt.preempt_pending,
					     memory_order_relaxed)))
		sl__preempt_slow();
}

/* Make a parked (or parking) task runnable.  Call after winning its claim. */
void sl__wake(struct sl__task *t);

/* Make a runnable task run soon: on the caller's processor if it has one. */
void sl__ready(struct sl__task *t);

/*
 * Run @c->fn(@c, 0, 0) on processor @target, from its scheduler, soon.  A
 * processor's ring may only be touched by the machine that holds it, so
 * work on another processor's ring (cancelling an operation, returning a
 * buffer) travels this way.  Runs @c at once when @target is the caller's
 * own processor.  @c must stay valid until it has run.
 */
void sl__proc_post(struct sl__proc *target, struct sl__completion *c);

/*
 * Called for each processor whose io pointer is set, as it is destroyed.
 * Defined by io/ when it is linked in (a weak reference, so core/ alone
 * links without it).
 */
void sl__io_proc_fini(struct sl__proc *p) __attribute__((weak));

/* The poller (poller.c). */
int sl__poller_init(struct sl__proc *p, char *err, size_t errlen);

/*
 * Placement (placement.c).  sl__placement_cpus() checks the CPU set, the
 * SQPOLL CPU and a node list against the machine and fills @cpus with the
 * CPUs processors may take (binding memory to listed nodes);
 * sl__placement_memory() applies interleaving and huge pages.  Each
 * returns 0 or -EINVAL with the reason in @why.
 */
int sl__placement_cpus(const struct sl_runtime_opts *o, int *cpus,
		       unsigned max, unsigned *ncpus, char *why, size_t whylen);
int sl__placement_memory(const struct sl_runtime_opts *o, char *why,
			 size_t whylen);
void sl__poller_destroy(struct sl__proc *p);
/* Reap completions without waiting; returns the number handled. */
unsigned sl__poller_reap(struct sl__proc *p);
/* Submit queued SQEs and wait for a completion or until @deadline. */
void sl__poller_wait(struct sl__proc *p, uint64_t deadline);
/* Submit queued SQEs without waiting. */
void sl__poller_flush(struct sl__proc *p);
/* Wake @target from its idle wait; @from may be NULL (not on a processor). */
void sl__poller_wake(struct sl__proc *from, struct sl__proc *target);

/* Stacks (stack.c). */
struct sl__task *sl__stack_alloc(size_t stack_size);
void sl__stack_free(struct sl__task *t);
void sl__stack_prepare(struct sl__task *t);
int sl__stack_setup_machine(struct sl__machine *m);
void sl__stack_teardown_machine(struct sl__machine *m);
void sl__stack_global_init(void);
void sl__stack_global_fini(void);
bool sl__stack_bottom_intact(const struct sl__task *t);

/*
 * The table of every task struct that exists, live or cached (debug.c).
 * Stacks are added when mapped and removed before they are unmapped; task
 * dumps walk it under its lock and skip free tasks.  Spawning and exiting
 * touch no shared list.
 */
int sl__table_add(struct sl__task *t);
void sl__table_remove(struct sl__task *t);
void sl__table_free_all(void);
void sl__task_name_set(struct sl__task *t, const char *name);
void sl__task_name_copy(struct sl__task *t, char *buf);
void sl__debug_init(void);
void sl__debug_fini(void);

static inline uint32_t
sl__proc_rand(struct sl__proc *p)
{
	/* xorshift32: plenty for victim choice and select fairness. */
	uint32_t x = p->rand;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	p->rand = x;
	return x;
}

uint32_t sl__rand(void);

static inline void
sl__stat_inc(_Atomic uint64_t *c)
{
	atomic_store_explicit(c,
			      atomic_load_explicit(c, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

#endif /* SLUICE_CORE_SCHED_INTERNAL_H */
