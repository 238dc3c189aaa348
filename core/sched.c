/* SPDX-License-Identifier: MIT */
/*
 * The scheduler: tasks (G) run on processors (P) driven by machines (M).
 *
 * Glossary
 *   G  a task: a function with a stack of its own (struct sl__task).
 *   P  a processor: the right to run tasks, with a local run queue, a
 *      runnext slot, a timer heap, caches and an io_uring (struct sl__proc).
 *      There is one per usable CPU unless told otherwise.
 *   M  a machine: an OS thread, pinned to its processor's CPU, that runs
 *      the tasks of the processor it holds (struct sl__machine).  Normally
 *      there is one M per P; spare Ms exist only while some M is inside a
 *      blocking call.
 *
 * The approach is Go's (runtime/proc.go), rebuilt for C and io_uring:
 *
 *   - A task switches directly to the next task on its processor
 *     (sl__ctx_switch saves only callee-saved registers; no signal mask,
 *     no system call).  Only when a processor has nothing to run does it
 *     switch to its M's scheduler loop (g0), which steals, polls and sleeps.
 *
 *   - Work that must happen after a task is off its stack (queueing it for
 *     another processor to steal, completing a park, freeing it after exit)
 *     is left in m->post_fn and run by whichever context runs next.  Go gets
 *     the same guarantee by switching to g0 for every park (mcall); the post
 *     hook saves that second switch.
 *
 *   - Each P's run queue is a 256-slot array: the owner pushes at the tail
 *     without locks, anyone pops at the head with a CAS, and an idle P steals
 *     half.  Overflow moves half of the queue to the global queue, which is
 *     also checked every 61st schedule so no task waits there forever.
 *
 *   - runnext holds the task readied most recently by the running task.  It
 *     runs next, on the same P, so a wake-then-park exchange (channel ping
 *     pong, spawn-then-join) never leaves the processor.
 *
 *   - An idle P sleeps inside io_uring_enter() on its own ring, bounded by
 *     its earliest timer.  It is woken by a completion: I/O, a message from
 *     another ring (IORING_OP_MSG_RING) or a write to its eventfd.
 *
 * Waking idle processors (Go's wakep discipline).  A cross-CPU wake-up costs
 * 15-18 us on a small VM, far more than most tasks run, so it is rationed:
 *
 *   W1  A P is woken only if some P is idle (npidle > 0) and no P is already
 *       spinning (looking for work); the waker makes the woken P count as
 *       spinning before it even runs (nspinning 0 -> 1 by CAS).
 *   W2  A spinning P that finds work stops spinning and, if it was the last
 *       spinner, wakes another P (there may be more work).  Work it found
 *       on its own queues (its completions, run queue or inbox) says
 *       nothing about work elsewhere, so then it wakes another only if a
 *       queue another P could take from is not empty.
 *   W3  Readying a task into runnext does not wake anyone when runnext was
 *       empty: the successor runs as soon as the current task parks, which is
 *       what a waking task almost always does next.  Go wakes here too; we do
 *       not.  runnext is never stolen, so it needs no atomic read-modify-
 *       write; if the current task keeps running instead, W5 applies.
 *   W4  No lost wake-up: a P going idle first publishes itself in the idle
 *       list and drops spinning, then (after a full fence) looks at every run
 *       queue once more; a waker first publishes the task, then (after a full
 *       fence) reads npidle and nspinning.  One of the two sees the other.
 *   W5  When a P's schedule tick has not moved for half a time slice while
 *       tasks wait behind the running one (runnext included), the monitor
 *       asks the running task to yield at its next preemption point, and
 *       wakes an idle P to steal what is in the run queue.
 *   W6  A P that runs out of work keeps looking for idle_spin_ns before it
 *       sleeps: about the cost of one sleep and wake-up, so never worse
 *       than twice the best choice.
 *   W7  A P clears wake_pending whenever it is about to sleep, not only when
 *       it wakes: a kick that saw it idle just before an earlier wake-up can
 *       set the flag late, and a stale flag would make every later kick skip
 *       its message.
 *   W8  A batch of wake-ups (completions, timers, posted work) queues its
 *       tasks at the tail without waking anyone, then wakes one idle P
 *       only if more than one task waits: the P that ran the batch runs the
 *       next task itself.  As in W4's note in wakep(), missing a wake-up
 *       for work on the caller's own queue costs parallelism, not progress.
 *
 * Parking.  A task that waits publishes waiters (sched_internal.h) on the
 * objects it waits for; a waker claims one by CAS and calls sl__wake().  The
 * task's park word closes the race between the task leaving its stack and
 * the wake: PARKING (set before publishing) -> PARKED (set by the post hook,
 * once the task is off its stack) -> NONE (set by the waker, which then
 * readies it).  A wake that comes while the word is still PARKING sets
 * WOKEN, and the post hook readies the task itself.  So every wake readies
 * the task exactly once, never before its registers are saved.
 *
 * Blocking calls.  sl_blocking_enter() marks the P BLOCKING.  The P is
 * handed to a spare M at once if it has queued work, else by the monitor
 * once the call has lasted retake_ns and work arrived.  On exit the task
 * keeps the P if it is still BLOCKING (a CAS back to RUNNING); otherwise the
 * task goes on the global queue and the M waits as a spare.
 *
 * Rejected alternatives
 *   - ucontext/swapcontext: it saves and restores the signal mask with a
 *     system call on every switch (~1 us).
 *   - One global run queue with a lock: every schedule would bounce one
 *     cache line between CPUs.
 *   - Waking an idle P for every readied task: on two CPUs that is a
 *     15 us wake-up for a 100 ns task.
 *   - Preemption by signals: Go needs it for tight loops in arbitrary code;
 *     Sluice's tasks are our own code, which yields.  The monitor reports
 *     tasks that hold a P too long instead.
 */
#include <errno.h>
#include <mimalloc.h>
#include <numa.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/context.h"
#include "core/sched_internal.h"
#include "core/wait_internal.h"

#if defined(SL_SANITIZE_ADDRESS)
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(SL_SANITIZE_THREAD)
#include <sanitizer/tsan_interface.h>
#endif

struct sl__sched sl__rt;

static __thread struct sl__machine *tls_machine
	__attribute__((tls_model("initial-exec")));

static char rt_error[256];

/* Set while sl_runtime_run() is between start and return. */
static _Atomic uint32_t rt_active;

/*
 * Set (release) once the processors exist and cleared before they are
 * freed, so the calls documented as safe from any thread can tell.
 */
static _Atomic uint32_t rt_up;

/*
 * A task can resume on another thread after any switch, but a compiler may
 * keep the address of a thread-local variable in a register across a call.
 * Reading it through a function the compiler cannot see into forces a fresh
 * read after every switch.
 */
__attribute__((noinline)) struct sl__machine *
sl__machine_current(void)
{
	struct sl__machine *m = tls_machine;

	__asm__ volatile("" : "+r"(m)::"memory");
	return m;
}

void
sl__spin_lock_slow(_Atomic uint32_t *l)
{
	unsigned spins = 0;

	for (;;) {
		uint32_t expected = 0;

		if (atomic_load_explicit(l, memory_order_relaxed) == 0 &&
		    atomic_compare_exchange_weak_explicit(
			    l, &expected, 1, memory_order_acquire,
			    memory_order_relaxed))
			return;
		/* The holder may be preempted; after a while let it run. */
		if (++spins < 128)
			sl__cpu_relax();
		else
			sched_yield();
	}
}

uint32_t
sl__rand(void)
{
	struct sl__proc *p = sl__proc_current();
	static _Atomic uint32_t seed = 0x9e3779b9u;

	if (p)
		return sl__proc_rand(p);
	return atomic_fetch_add_explicit(&seed, 0x9e3779b9u,
					 memory_order_relaxed) >> 7;
}

/* ---- the local run queue ---- */

static uint32_t
runq_len(struct sl__proc *p)
{
	uint32_t h = atomic_load_explicit(&p->runq_head, memory_order_acquire);
	uint32_t t = atomic_load_explicit(&p->runq_tail, memory_order_acquire);

	return t - h + (atomic_load_explicit(&p->runnext,
					     memory_order_relaxed) != NULL);
}

static void gq_put_batch(struct sl__task **batch, uint32_t n);

/* Move half of a full local queue, plus @t, to the global queue. */
static bool
runq_put_slow(struct sl__proc *p, struct sl__task *t, uint32_t h,
	      uint32_t tl)
{
	struct sl__task *batch[SL__RUNQ_SIZE / 2 + 1];
	uint32_t n = (tl - h) / 2;

	for (uint32_t i = 0; i < n; i++)
		batch[i] = atomic_load_explicit(
			&p->runq[(h + i) % SL__RUNQ_SIZE],
			memory_order_relaxed);
	if (!atomic_compare_exchange_strong_explicit(
		    &p->runq_head, &h, h + n, memory_order_release,
		    memory_order_relaxed))
		return false;

	batch[n] = t;
	gq_put_batch(batch, n + 1);
	return true;
}

static void
runq_put_tail(struct sl__proc *p, struct sl__task *t)
{
	for (;;) {
		/* Acquire pairs with the release CAS of a consumer, so we
		 * never overwrite a slot it has not read yet. */
		uint32_t h = atomic_load_explicit(&p->runq_head,
						  memory_order_acquire);
		uint32_t tl = atomic_load_explicit(&p->runq_tail,
						   memory_order_relaxed);

		if (tl - h < SL__RUNQ_SIZE) {
			atomic_store_explicit(&p->runq[tl % SL__RUNQ_SIZE], t,
					      memory_order_relaxed);
			/* Publishes the slot to consumers. */
			atomic_store_explicit(&p->runq_tail, tl + 1,
					      memory_order_release);
			return;
		}
		if (runq_put_slow(p, t, h, tl))
			return;
	}
}

static void
pinq_put(struct sl__proc *p, struct sl__task *t)
{
	t->next = NULL;
	if (p->pinq_tail)
		p->pinq_tail->next = t;
	else
		p->pinq_head = t;
	p->pinq_tail = t;
}

static struct sl__task *
pinq_get(struct sl__proc *p)
{
	struct sl__task *t = p->pinq_head;

	if (t) {
		p->pinq_head = t->next;
		if (!p->pinq_head)
			p->pinq_tail = NULL;
	}
	return t;
}

static struct sl__task *
runq_get(struct sl__proc *p)
{
	struct sl__task *t = atomic_load_explicit(&p->runnext,
						  memory_order_relaxed);

	/* Only the owner touches runnext, so no read-modify-write. */
	if (t) {
		atomic_store_explicit(&p->runnext, NULL, memory_order_relaxed);
		return t;
	}

	for (;;) {
		uint32_t h = atomic_load_explicit(&p->runq_head,
						  memory_order_acquire);
		uint32_t tl = atomic_load_explicit(&p->runq_tail,
						   memory_order_relaxed);

		if (h == tl)
			return NULL;
		t = atomic_load_explicit(&p->runq[h % SL__RUNQ_SIZE],
					 memory_order_relaxed);
		if (atomic_compare_exchange_weak_explicit(
			    &p->runq_head, &h, h + 1, memory_order_release,
			    memory_order_relaxed))
			return t;
	}
}

/*
 * Take half of @victim's queue into @batch.  runnext is never stolen: it
 * belongs to the running task's successor, and if that task does not park,
 * the monitor asks it to yield (see sl__preempt_point), which frees it.
 */
static uint32_t
runq_grab(struct sl__proc *victim, struct sl__task **batch)
{
	for (;;) {
		uint32_t h = atomic_load_explicit(&victim->runq_head,
						  memory_order_acquire);
		/* Acquire pairs with the owner's release of tail. */
		uint32_t tl = atomic_load_explicit(&victim->runq_tail,
						   memory_order_acquire);
		uint32_t n = tl - h;

		n -= n / 2;
		if (n == 0)
			return 0;
		if (n > SL__RUNQ_SIZE / 2)
			continue; /* h and tl were read at different times */

		for (uint32_t i = 0; i < n; i++)
			batch[i] = atomic_load_explicit(
				&victim->runq[(h + i) % SL__RUNQ_SIZE],
				memory_order_relaxed);
		if (atomic_compare_exchange_weak_explicit(
			    &victim->runq_head, &h, h + n,
			    memory_order_release, memory_order_relaxed))
			return n;
	}
}

static struct sl__task *
runq_steal(struct sl__proc *p, struct sl__proc *victim)
{
	struct sl__task *batch[SL__RUNQ_SIZE / 2];
	uint32_t n = runq_grab(victim, batch);

	if (n == 0)
		return NULL;
	for (uint32_t i = 1; i < n; i++)
		runq_put_tail(p, batch[i]);
	atomic_fetch_add_explicit(&p->st.steals, n, memory_order_relaxed);
	return batch[0];
}

/* ---- the global queue (under sl__rt.lock) ---- */

/*
 * A growable circular array of task pointers.  Moving a batch in or out
 * copies pointers under the lock and never touches the tasks themselves,
 * which a linked list through the tasks would (a cache miss per task, with
 * the lock held).
 */
static void
gq_grow_locked(uint32_t need)
{
	uint32_t cap = sl__rt.gq_cap ? sl__rt.gq_cap : 256;
	struct sl__task **v;

	while (cap < need)
		cap *= 2;
	v = mi_malloc(cap * sizeof(*v));
	if (!v) {
		fprintf(stderr, "sluice: out of memory for the run queue\n");
		abort();
	}
	for (uint32_t i = 0; i < sl__rt.gq_count; i++)
		v[i] = sl__rt.gq_v[(sl__rt.gq_first + i) % sl__rt.gq_cap];
	mi_free(sl__rt.gq_v);
	sl__rt.gq_v = v;
	sl__rt.gq_cap = cap;
	sl__rt.gq_first = 0;
}

static void
gq_put_batch(struct sl__task **batch, uint32_t n)
{
	sl__spin_lock(&sl__rt.lock);
	if (sl__rt.gq_count + n > sl__rt.gq_cap)
		gq_grow_locked(sl__rt.gq_count + n);
	for (uint32_t i = 0; i < n; i++)
		sl__rt.gq_v[(sl__rt.gq_first + sl__rt.gq_count + i) %
			    sl__rt.gq_cap] = batch[i];
	sl__rt.gq_count += n;
	atomic_store_explicit(&sl__rt.gq_len, sl__rt.gq_count,
			      memory_order_seq_cst);
	sl__spin_unlock(&sl__rt.lock);
}

static void
gq_put(struct sl__task *t)
{
	gq_put_batch(&t, 1);
}

/*
 * Take a fair share of the global queue: one task to run, the rest onto
 * @p's local queue.  The global queue never holds pinned tasks.
 */
static struct sl__task *
gq_get(struct sl__proc *p, uint32_t max)
{
	struct sl__task *batch[SL__RUNQ_SIZE / 2];
	uint32_t n;

	if (atomic_load_explicit(&sl__rt.gq_len, memory_order_relaxed) == 0)
		return NULL;

	sl__spin_lock(&sl__rt.lock);
	n = sl__rt.gq_count / sl__rt.nprocs + 1;
	if (n > max)
		n = max;
	if (n > SL_ARRAY_SIZE(batch))
		n = SL_ARRAY_SIZE(batch);
	if (n > sl__rt.gq_count)
		n = sl__rt.gq_count;
	for (uint32_t i = 0; i < n; i++)
		batch[i] = sl__rt.gq_v[(sl__rt.gq_first + i) % sl__rt.gq_cap];
	if (n) {
		sl__rt.gq_first = (sl__rt.gq_first + n) % sl__rt.gq_cap;
		sl__rt.gq_count -= n;
	}
	atomic_store_explicit(&sl__rt.gq_len, sl__rt.gq_count,
			      memory_order_relaxed);
	sl__spin_unlock(&sl__rt.lock);

	if (!n)
		return NULL;
	/* Outside the lock: an overflowing local queue takes it again. */
	for (uint32_t i = 1; i < n; i++)
		runq_put_tail(p, batch[i]);
	return batch[0];
}

/* ---- idle processors and wake-ups ---- */

static void
idle_push_locked(struct sl__proc *p)
{
	p->idle_next = sl__rt.idle_head;
	sl__rt.idle_head = p;
	p->in_idle_list = true;
	atomic_fetch_add_explicit(&sl__rt.npidle, 1, memory_order_seq_cst);
}

static void
idle_remove_locked(struct sl__proc *p)
{
	struct sl__proc **pp = &sl__rt.idle_head;

	while (*pp && *pp != p)
		pp = &(*pp)->idle_next;
	if (*pp)
		*pp = p->idle_next;
	p->in_idle_list = false;
	atomic_fetch_sub_explicit(&sl__rt.npidle, 1, memory_order_seq_cst);
}

/* Wake @target if it sleeps, once per sleep. */
static void
proc_kick(struct sl__proc *from, struct sl__proc *target)
{
	uint32_t expected = 0;

	SL_FENCE_SEQ_CST(); /* W4, the waker's side */
	if (!atomic_load_explicit(&target->idle, memory_order_relaxed))
		return;
	if (!atomic_compare_exchange_strong_explicit(
		    &target->wake_pending, &expected, 1, memory_order_acq_rel,
		    memory_order_relaxed))
		return;
	if (from)
		sl__stat_inc(&from->st.wakeups_sent);
	sl__poller_wake(from, target);
}

/* W1: wake one idle processor to look for work, if nobody looks yet. */
static void
wakep(struct sl__proc *from)
{
	struct sl__proc *p;
	uint32_t zero = 0;

	/*
	 * W4 needs a full fence only for work that just this processor cannot
	 * run: the global queue and other processors' inboxes (from == NULL,
	 * or proc_kick).  Work on the caller's own queue is run by the caller
	 * before it may sleep, so a wake-up missed here costs parallelism
	 * until the monitor's next look (W5), never progress.
	 */
	if (!from)
		SL_FENCE_SEQ_CST();
	if (atomic_load_explicit(&sl__rt.npidle, memory_order_relaxed) == 0)
		return;
	if (atomic_load_explicit(&sl__rt.nspinning, memory_order_relaxed) ||
	    !atomic_compare_exchange_strong_explicit(
		    &sl__rt.nspinning, &zero, 1, memory_order_seq_cst,
		    memory_order_relaxed))
		return;

	sl__spin_lock(&sl__rt.lock);
	p = sl__rt.idle_head;
	if (p) {
		sl__rt.idle_head = p->idle_next;
		p->in_idle_list = false;
		atomic_fetch_sub_explicit(&sl__rt.npidle, 1,
					  memory_order_seq_cst);
	}
	sl__spin_unlock(&sl__rt.lock);

	if (!p) {
		atomic_fetch_sub_explicit(&sl__rt.nspinning, 1,
					  memory_order_seq_cst);
		return;
	}
	/* p now counts as spinning; it learns so when it finds itself out
	 * of the idle list (proc_idle). */
	atomic_store_explicit(&p->wake_pending, 1, memory_order_relaxed);
	if (from)
		sl__stat_inc(&from->st.wakeups_sent);
	sl__poller_wake(from, p);
}

/* W2: stop spinning; the last spinner to find work wakes another. */
static void
proc_stop_spinning(struct sl__proc *p)
{
	if (!p->spinning)
		return;
	p->spinning = false;
	if (atomic_fetch_sub_explicit(&sl__rt.nspinning, 1,
				      memory_order_seq_cst) == 1)
		wakep(p);
}

static bool work_anywhere(struct sl__proc *p);

/*
 * W2 for work a spinning P found on its own queues (its completions, its
 * run queue, its inbox): that says nothing about work elsewhere, so the
 * last spinner wakes another P only if some is left that another P could
 * take.  Waking one just to find nothing costs two CPUs a cross-CPU
 * wake-up each; one connection's completions used to do so thousands of
 * times a second.
 */
static void
proc_stop_spinning_local(struct sl__proc *p)
{
	if (!p->spinning)
		return;
	p->spinning = false;
	if (atomic_fetch_sub_explicit(&sl__rt.nspinning, 1,
				      memory_order_seq_cst) != 1)
		return;
	if (atomic_load_explicit(&p->runq_head, memory_order_relaxed) !=
		    atomic_load_explicit(&p->runq_tail, memory_order_relaxed) ||
	    work_anywhere(p))
		wakep(p);
}

/* ---- making tasks runnable ---- */

static void
inbox_put(struct sl__proc *from, struct sl__proc *target, struct sl__task *t)
{
	while (!sl_ring_try_enqueue(target->inbox, &t)) {
		/* The inbox is large; a full one means the target is far
		 * behind.  Yield the CPU until it drains some. */
		proc_kick(from, target);
		sched_yield();
	}
	proc_kick(from, target);
}

/*
 * Queue @t on @p, the calling machine's processor.  @next puts it in
 * runnext (W3); whatever it displaces goes to the tail and may wake an idle
 * processor to come and steal it.
 */
static void
runq_put(struct sl__proc *p, struct sl__task *t, bool next)
{
	if (next) {
		struct sl__task *old = atomic_load_explicit(
			&p->runnext, memory_order_relaxed);

		atomic_store_explicit(&p->runnext, t, memory_order_relaxed);
		if (!old)
			return;
		t = old;
	}
	if (t->pinned) {
		pinq_put(p, t);
		return;
	}
	runq_put_tail(p, t);
	if (!p->in_batch)
		wakep(p);
}

/*
 * W8: after a batch of wake-ups (completions, timers, posted work) that
 * queued tasks at the tail since it found the tail at @tail0, wake an idle
 * P only if more than one task waits: this P runs the next one itself as
 * soon as the batch is over, and a P woken for that one would find
 * nothing, or worse, steal it.
 */
static void
batch_wakep(struct sl__proc *p, uint32_t tail0)
{
	uint32_t tail = atomic_load_explicit(&p->runq_tail,
					     memory_order_relaxed);
	uint32_t head = atomic_load_explicit(&p->runq_head,
					     memory_order_relaxed);
	bool next = atomic_load_explicit(&p->runnext, memory_order_relaxed);

	if (tail != tail0 && tail - head + next > 1)
		wakep(p);
}

void
sl__ready(struct sl__task *t)
{
	struct sl__proc *p = sl__proc_current();

	atomic_store_explicit(&t->state, SL__TASK_RUNNABLE,
			      memory_order_relaxed);
	if (t->pinned && t->pinned != p) {
		inbox_put(p, t->pinned, t);
		return;
	}
	if (p) {
		/* A batch of wake-ups (timers, completions) keeps its order:
		 * each would otherwise displace the last from runnext. */
		runq_put(p, t, !p->in_batch);
		return;
	}
	gq_put(t);
	wakep(NULL);
}

void
sl__wake(struct sl__task *t)
{
	uint32_t s = atomic_load_explicit(&t->park, memory_order_acquire);

	/*
	 * Fully parked: only we (the claim's winner) may touch the word now,
	 * since its post hook has run and it cannot run again before we ready
	 * it, so a plain store does.  PARKING still races with the post hook.
	 */
	if (SL_LIKELY(s == SL__PARK_PARKED)) {
		atomic_store_explicit(&t->park, SL__PARK_NONE,
				      memory_order_relaxed);
		sl__ready(t);
		return;
	}
	for (;;) {
		if (s == SL__PARK_PARKING) {
			/* Still on its stack: its post hook will ready it. */
			if (atomic_compare_exchange_weak_explicit(
				    &t->park, &s, SL__PARK_WOKEN,
				    memory_order_acq_rel,
				    memory_order_acquire))
				return;
		} else if (s == SL__PARK_PARKED) {
			if (atomic_compare_exchange_weak_explicit(
				    &t->park, &s, SL__PARK_NONE,
				    memory_order_acq_rel,
				    memory_order_acquire)) {
				sl__ready(t);
				return;
			}
		} else {
			/* A claim admits one waker per park. */
			fprintf(stderr, "sluice: task %llu woken twice\n",
				(unsigned long long)t->id);
			abort();
		}
	}
}

/* ---- switching ---- */

/*
 * Switch from @from (a task, or NULL for the M's scheduler loop) to @to
 * (likewise).  @dying says @from will never run again.
 */
static void
switch_to(struct sl__machine *m, struct sl__task *from, struct sl__task *to,
	  bool dying)
{
	struct sl__ctx *from_ctx = from ? &from->ctx : &m->g0;
	struct sl__ctx *to_ctx = to ? &to->ctx : &m->g0;

#if defined(SL_SANITIZE_ADDRESS)
	void **save = NULL;

	if (!dying)
		save = from ? &from->asan_fake_stack : &m->asan_fake_stack;
	if (to)
		__sanitizer_start_switch_fiber(
			save, (char *)to->map_base + (to->guarded ? 4096 : 0),
			to->stack_size);
	else
		__sanitizer_start_switch_fiber(save, m->g0_stack_bottom,
					       m->g0_stack_size);
#else
	(void)dying;
#endif
#if defined(SL_SANITIZE_THREAD)
	__tsan_switch_to_fiber(to ? to->tsan_fiber : m->tsan_fiber,
			       0);
#endif
	sl__ctx_switch(from_ctx, to_ctx);
}

/*
 * Runs first thing after every switch, in the context that was switched
 * to: tells the sanitizers we arrived, then does the work the previous
 * context left in post_fn.  Returns the (possibly new) machine.
 */
static struct sl__machine *
finish_switch(struct sl__task *self)
{
	struct sl__machine *m = sl__machine_current();

#if defined(SL_SANITIZE_ADDRESS)
	__sanitizer_finish_switch_fiber(self ? self->asan_fake_stack
					     : m->asan_fake_stack,
					NULL, NULL);
#else
	(void)self;
#endif
	if (m->post_fn) {
		void (*fn)(struct sl__machine *, struct sl__task *) =
			m->post_fn;

		m->post_fn = NULL;
		fn(m, m->post_task);
	}
	return m;
}

/* Drop @p's preemption request, if any: it has switched tasks anyway. */
static void
preempt_clear(struct sl__proc *p)
{
	if (atomic_exchange_explicit(&p->preempt, 0, memory_order_relaxed))
		atomic_fetch_sub_explicit(&sl__rt.preempt_pending, 1,
					  memory_order_relaxed);
}

static inline void
run_prepare(struct sl__machine *m, struct sl__proc *p, struct sl__task *t)
{
	uint64_t tick = atomic_load_explicit(&p->schedtick,
					     memory_order_relaxed);

	if (SL_UNLIKELY(atomic_load_explicit(&sl__rt.preempt_pending,
					     memory_order_relaxed)))
		preempt_clear(p);
	m->curg = t;
	atomic_store_explicit(&t->state, SL__TASK_RUNNING,
			      memory_order_relaxed);
	atomic_store_explicit(&p->cur_id, t->id, memory_order_relaxed);
	atomic_store_explicit(&p->schedtick, tick + 1, memory_order_relaxed);
	sl__stat_inc(&p->st.tasks_run);
}

static void
mail_drain(struct sl__proc *p)
{
	struct sl__completion *batch[32];
	uint32_t tail0 = atomic_load_explicit(&p->runq_tail,
					      memory_order_relaxed);
	unsigned n;

	p->in_batch = true;
	while ((n = sl_ring_dequeue_burst(p->mail, batch, 32)) > 0)
		for (unsigned i = 0; i < n; i++)
			batch[i]->fn(batch[i], 0, 0);
	p->in_batch = false;
	batch_wakep(p, tail0);
}

void
sl__proc_post(struct sl__proc *target, struct sl__completion *c)
{
	struct sl__proc *p = sl__proc_current();

	if (p == target) {
		c->fn(c, 0, 0);
		return;
	}
	while (!sl_ring_try_enqueue(target->mail, &c)) {
		/* Full: the target is far behind; let it catch up. */
		proc_kick(p, target);
		sched_yield();
	}
	proc_kick(p, target);
}

static void
inbox_drain(struct sl__proc *p)
{
	struct sl__task *batch[32];
	unsigned n;

	while ((n = sl_ring_dequeue_burst(p->inbox, batch, 32)) > 0)
		for (unsigned i = 0; i < n; i++)
			pinq_put(p, batch[i]);
}

/*
 * Find a task to run on @p without leaving it: the global queue now and then
 * for fairness, due timers, completions, then the local queues.
 */
static struct sl__task *
find_local(struct sl__proc *p)
{
	uint64_t tick = atomic_load_explicit(&p->schedtick,
					     memory_order_relaxed);
	struct sl__task *t;

	/* Every 61st schedule, as Go does: a prime, so it does not fall into
	 * step with a program's own period. */
	if (SL_UNLIKELY(--p->gq_countdown == 0)) {
		p->gq_countdown = 61;
		if ((t = gq_get(p, 1)))
			return t;
	}
	if (sl_ring_maybe_nonempty(p->inbox))
		inbox_drain(p);
	if (sl_ring_maybe_nonempty(p->mail))
		mail_drain(p);
	if (atomic_load_explicit(&p->timers.next, memory_order_relaxed) !=
	    UINT64_MAX) {
		uint32_t tail0 = atomic_load_explicit(&p->runq_tail,
						      memory_order_relaxed);

		p->in_batch = true;
		sl__timers_run(p, sl_now_ns());
		p->in_batch = false;
		batch_wakep(p, tail0);
	}
	if (io_uring_cq_ready(&p->ring)) {
		uint32_t tail0 = atomic_load_explicit(&p->runq_tail,
						      memory_order_relaxed);

		p->in_batch = true;
		sl__poller_reap(p);
		p->in_batch = false;
		batch_wakep(p, tail0);
	}
	if (p->sq_unsubmitted && tick % 16 == 0)
		sl__poller_flush(p);

	/* Alternate so pinned and unpinned tasks share the processor. */
	if ((tick & 1) && (t = pinq_get(p)))
		return t;
	if ((t = runq_get(p)))
		return t;
	if ((t = pinq_get(p)))
		return t;
	return gq_get(p, SL__RUNQ_SIZE / 2);
}

/* Leave the running task @self for the next runnable one (or g0). */
static void
task_switch_away(struct sl__machine *m, struct sl__task *self,
		 struct sl__task *next,
		 void (*post)(struct sl__machine *, struct sl__task *),
		 bool dying)
{
	m->post_fn = post;
	m->post_task = self;
	if (next) {
		run_prepare(m, m->p, next);
	} else {
		m->curg = NULL;
	}
	switch_to(m, self, next, dying);
	finish_switch(self);
}

/* ---- parking ---- */

static void
post_park(struct sl__machine *m, struct sl__task *t)
{
	uint32_t s = SL__PARK_PARKING;

	(void)m;
	if (atomic_compare_exchange_strong_explicit(
		    &t->park, &s, SL__PARK_PARKED, memory_order_acq_rel,
		    memory_order_acquire))
		return;
	/* Woken while still on its stack (SL__PARK_WOKEN). */
	atomic_store_explicit(&t->park, SL__PARK_NONE, memory_order_relaxed);
	sl__ready(t);
}

void
sl__park_prepare(struct sl__task *t, const char *reason)
{
	atomic_store_explicit(&t->wait_reason, reason, memory_order_relaxed);
	atomic_store_explicit(&t->park, SL__PARK_PARKING,
			      memory_order_relaxed);
}

void
sl__park_cancel(struct sl__task *t)
{
	atomic_store_explicit(&t->park, SL__PARK_NONE, memory_order_relaxed);
	atomic_store_explicit(&t->wait_reason, NULL, memory_order_relaxed);
}

void
sl__park(struct sl__task *t)
{
	sl__park_on(sl__machine_current(), t);
}

void
sl__park_on(struct sl__machine *m, struct sl__task *t)
{
	struct sl__proc *p = m->p;

	sl__stat_inc(&p->st.parks);
	atomic_store_explicit(&t->wait_since,
			      atomic_load_explicit(&sl__rt.coarse_now,
						   memory_order_relaxed),
			      memory_order_relaxed);
	atomic_store_explicit(&t->state, SL__TASK_WAITING,
			      memory_order_relaxed);
	task_switch_away(m, t, find_local(p), post_park, false);
	atomic_store_explicit(&t->wait_reason, NULL, memory_order_relaxed);
}

/* ---- yield ---- */

static void
post_yield(struct sl__machine *m, struct sl__task *t)
{
	struct sl__proc *p = m->p;

	atomic_store_explicit(&t->state, SL__TASK_RUNNABLE,
			      memory_order_relaxed);
	if (t->pinned)
		pinq_put(p, t);
	else
		runq_put_tail(p, t);
}

void
sl__preempt_slow(void)
{
	struct sl__proc *p = sl__proc_current();

	if (p && atomic_load_explicit(&p->preempt, memory_order_relaxed) &&
	    sl__task_current()) {
		preempt_clear(p);
		sl_task_yield();
	}
}

void
sl_task_yield(void)
{
	struct sl__machine *m = sl__machine_current();
	struct sl__task *next;

	if (!m || !m->curg)
		return;
	next = find_local(m->p);
	if (!next) {
		/*
		 * Nothing else to run: the caller keeps the processor, but
		 * the submissions queued so far must not wait for the next
		 * schedule round, or a task that polls by yielding would
		 * never see its own I/O start.
		 */
		if (m->p->sq_unsubmitted)
			sl__poller_flush(m->p);
		return;
	}
	task_switch_away(m, m->curg, next, post_yield, false);
}

/* ---- task life ---- */

/*
 * Free tasks (with their stacks) are cached per processor; a processor whose
 * cache overflows moves half of it to a global pool, and one whose cache is
 * empty refills half of it from there, as Go does with its free G lists.
 * So a task spawned on one processor and joined on another does not cost an
 * mmap and a munmap.  The pool is capped; beyond the cap stacks are unmapped.
 */
#define SL__POOL_MAX 16384

static void
pool_put_batch(struct sl__proc *p)
{
	unsigned n = SL__TASK_CACHE / 2;
	struct sl__task *spill[SL__TASK_CACHE / 2];
	unsigned nspill = 0;

	sl__spin_lock(&sl__rt.pool_lock);
	while (n--) {
		struct sl__task *t = p->cache[--p->ncache];

		if (sl__rt.pool_len < SL__POOL_MAX)
			sl__rt.pool[sl__rt.pool_len++] = t;
		else
			spill[nspill++] = t;
	}
	sl__spin_unlock(&sl__rt.pool_lock);

	while (nspill)
		sl__stack_free(spill[--nspill]);
}

static void
pool_get_batch(struct sl__proc *p)
{
	sl__spin_lock(&sl__rt.pool_lock);
	while (sl__rt.pool_len && p->ncache < SL__TASK_CACHE / 2)
		p->cache[p->ncache++] = sl__rt.pool[--sl__rt.pool_len];
	sl__spin_unlock(&sl__rt.pool_lock);
}

static void
task_release(struct sl__proc *p, struct sl__task *t)
{
	/* The last reference needs no read-modify-write: nobody else can
	 * be dropping one at the same time. */
	if (atomic_load_explicit(&t->refs, memory_order_acquire) != 1 &&
	    atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
		return;
	atomic_store_explicit(&t->state, SL__TASK_FREE, memory_order_release);
	if (!p || !t->cached) {
		sl__stack_free(t);
		return;
	}
	if (p->ncache == SL__TASK_CACHE)
		pool_put_batch(p);
	p->cache[p->ncache++] = t;
}

/* After exit, off the dead task's stack: wake the joiner, drop our ref. */
static void
post_exit(struct sl__machine *m, struct sl__task *t)
{
	uintptr_t j;

	if (!t->joinable) {
		/* Spawned without a handle: nobody else holds a reference. */
		atomic_store_explicit(&t->refs, 1, memory_order_relaxed);
		task_release(m->p, t);
		return;
	}

	j = atomic_exchange_explicit(&t->join, SL__JOIN_DONE,
				     memory_order_acq_rel);
	if (j > SL__JOIN_DONE) {
		struct sl__waiter *w = (struct sl__waiter *)j;
		struct sl__task *joiner = w->task;

		if (sl__waiter_claim(w)) {
			atomic_store_explicit(&t->join_ack, 1,
					      memory_order_release);
			sl__wake(joiner);
		} else {
			atomic_store_explicit(&t->join_ack, 1,
					      memory_order_release);
		}
	} else {
		atomic_store_explicit(&t->join_ack, 1, memory_order_release);
	}
	task_release(m->p, t);
}

void
sl__task_start(struct sl__task *t)
{
	struct sl__machine *m = finish_switch(t);
	struct sl__proc *p;

	(void)m;
	t->fn(t->arg);

	m = sl__machine_current();
	p = m->p;
	if (!sl__stack_bottom_intact(t)) {
		fprintf(stderr,
			"sluice: stack overflow in task %llu '%s' "
			"(the bottom of its stack was overwritten)\n",
			(unsigned long long)t->id, t->name);
		abort();
	}
	atomic_store_explicit(&t->state, SL__TASK_DEAD, memory_order_relaxed);
	/*
	 * Released, not merely counted: a task that sees the live count
	 * fall (sl_runtime_live_tasks()) may free what this task used, so
	 * everything the task did must be visible to it first.
	 */
	atomic_store_explicit(&p->exited,
			      atomic_load_explicit(&p->exited,
						   memory_order_relaxed) + 1,
			      memory_order_release);
	task_switch_away(m, t, find_local(p), post_exit, true);
	__builtin_unreachable();
}

static uint64_t
next_task_id(struct sl__proc *p)
{
	if (!p)
		return atomic_fetch_add_explicit(&sl__rt.id_block, 1,
						 memory_order_relaxed);
	if (p->ids_left == 0) {
		/* Take ids in blocks so spawning does not share a line. */
		p->next_id = atomic_fetch_add_explicit(
			&sl__rt.id_block, 1024, memory_order_relaxed);
		p->ids_left = 1024;
	}
	p->ids_left--;
	return p->next_id++;
}

static struct sl__task *
task_alloc(struct sl__proc *p, size_t stack_size)
{
	if (stack_size == sl__rt.opts.stack_size && p && !p->ncache)
		pool_get_batch(p);
	if (stack_size == sl__rt.opts.stack_size && p && p->ncache) {
		struct sl__task *t = p->cache[--p->ncache];

#if defined(SL_SANITIZE_THREAD)
		/* The old task never returned from its first frame, so its
		 * fiber's shadow call stack still holds those frames; reusing
		 * the fiber would overflow that stack after ~32k spawns. */
		__tsan_destroy_fiber(t->tsan_fiber);
		t->tsan_fiber = __tsan_create_fiber(0);
#endif
		return t;
	}
	return sl__stack_alloc(stack_size);
}

static void
task_place(struct sl__proc *cur, struct sl__proc *target, struct sl__task *t)
{
	if (target && target != cur) {
		inbox_put(cur, target, t);
		return;
	}
	if (cur) {
		runq_put(cur, t, true);
		return;
	}
	gq_put(t);
	wakep(NULL);
}

int
sl_task_spawn(sl_task_fn fn, void *arg, const struct sl_task_opts *opts,
	      struct sl_task **out)
{
	struct sl__proc *cur = sl__proc_current();
	struct sl__task *self = sl__task_current();
	struct sl__proc *target = NULL;
	size_t size = sl__rt.opts.stack_size;
	struct sl__task *t;

	if (!atomic_load_explicit(&sl__rt.running, memory_order_acquire) ||
	    !fn)
		return -EINVAL;
	if (opts && opts->stack_size) {
		if (opts->stack_size < 16384 || opts->stack_size > (1ul << 30))
			return -EINVAL;
		size = (opts->stack_size + 4095) & ~(size_t)4095;
	}
	if (opts && opts->proc >= 0) {
		if ((unsigned)opts->proc >= sl__rt.nprocs)
			return -EINVAL;
		target = sl__rt.procs[opts->proc];
	}

	t = task_alloc(cur, size);
	if (!t)
		return -ENOMEM;
	t->fn = fn;
	t->arg = arg;
	atomic_store_explicit(&t->id, next_task_id(cur), memory_order_relaxed);
	atomic_store_explicit(&t->parent_id, self ? self->id : 0,
			      memory_order_relaxed);
	t->pinned = NULL;
	if (opts && opts->pinned)
		t->pinned = target ? target : (cur ? cur : sl__rt.procs[0]);
	atomic_store_explicit(&t->park, SL__PARK_NONE, memory_order_relaxed);
	atomic_store_explicit(&t->wait_reason, NULL, memory_order_relaxed);
	atomic_store_explicit(&t->note, NULL, memory_order_relaxed);
	atomic_store_explicit(&t->join, SL__JOIN_RUNNING, memory_order_relaxed);
	atomic_store_explicit(&t->join_ack, 0, memory_order_relaxed);
	atomic_store_explicit(&t->refs, out ? 2 : 1, memory_order_relaxed);
	t->joinable = out != NULL;
	if (opts && opts->name)
		sl__task_name_set(t, opts->name);
	else if (t->name[0])
		sl__task_name_set(t, NULL);
	sl__stack_prepare(t);
	/* Published for dumps once its fields are set. */
	atomic_store_explicit(&t->state, SL__TASK_RUNNABLE,
			      memory_order_release);

	if (cur) {
		sl__stat_inc(&cur->spawned);
		sl__stat_inc(&cur->st.spawns);
	} else {
		atomic_fetch_add_explicit(&sl__rt.spawned_outside, 1,
					  memory_order_relaxed);
	}
	if (out)
		*out = (struct sl_task *)t;

	task_place(cur, t->pinned ? t->pinned : target, t);
	return 0;
}

int
sl_go(sl_task_fn fn, void *arg)
{
	return sl_task_spawn(fn, arg, NULL, NULL);
}

static void
join_finish(struct sl__task *t)
{
	/* The exiting side may still be reading our waiter; it signals
	 * when it is done, within a few instructions. */
	while (!atomic_load_explicit(&t->join_ack, memory_order_acquire))
		sl__cpu_relax();
	task_release(sl__proc_current(), t);
}

int
sl_task_join_ctx(struct sl_context *ctx, struct sl_task *handle)
{
	struct sl__task *t = (struct sl__task *)handle;
	struct sl__waiter jw = {0};
	struct sl__wait w;
	uintptr_t expected = SL__JOIN_RUNNING;
	uint32_t token;
	int err;

	if (atomic_load_explicit(&t->join, memory_order_acquire) ==
	    SL__JOIN_DONE) {
		join_finish(t);
		return 0;
	}

	err = sl__wait_begin(&w, ctx, UINT64_MAX, "join");
	if (err)
		return err;
	jw.task = sl__task_current();
	jw.claim = &w.claim;
	jw.token = 1;
	if (!atomic_compare_exchange_strong_explicit(
		    &t->join, &expected, (uintptr_t)&jw, memory_order_acq_rel,
		    memory_order_acquire)) {
		/* It finished meanwhile. */
		sl__wait_abort(&w);
		join_finish(t);
		return 0;
	}

	token = sl__wait_park(&w);
	if (token == 1) {
		join_finish(t);
		return 0;
	}

	/* The context ended first: take our waiter back, unless the task
	 * is exiting and already holds it, in which case wait for it to let
	 * go; the handle stays valid either way. */
	expected = (uintptr_t)&jw;
	if (!atomic_compare_exchange_strong_explicit(
		    &t->join, &expected, SL__JOIN_RUNNING,
		    memory_order_acq_rel, memory_order_acquire))
		while (!atomic_load_explicit(&t->join_ack,
					     memory_order_acquire))
			sl__cpu_relax();
	return sl__wait_error(&w, token);
}

int
sl_task_join(struct sl_task *handle)
{
	return sl_task_join_ctx(NULL, handle);
}

void
sl_task_detach(struct sl_task *handle)
{
	struct sl__task *t = (struct sl__task *)handle;

	if (t)
		task_release(sl__proc_current(), t);
}

int
sl_task_sleep_ctx(struct sl_context *ctx, uint64_t ns)
{
	struct sl__wait w;
	uint64_t deadline = sl_now_ns() + ns;
	uint32_t token;
	int err;

	if (deadline < ns)
		deadline = UINT64_MAX - 1;
	err = sl__wait_begin(&w, ctx, deadline, "sleep");
	if (err == -ETIMEDOUT && !(ctx && sl_context_err(ctx)))
		return 0; /* zero-length sleep */
	if (err)
		return err;
	token = sl__wait_park(&w);
	if (token == SL__CLAIM_TIMEOUT)
		return 0;
	return sl__wait_error(&w, token);
}

int
sl_task_sleep(uint64_t ns)
{
	return sl_task_sleep_ctx(NULL, ns);
}

uint64_t
sl_task_id(void)
{
	struct sl__task *t = sl__task_current();

	return t ? t->id : 0;
}

const char *
sl_task_name(void)
{
	struct sl__task *t = sl__task_current();

	return t ? t->name : "";
}

void
sl_task_set_note(const char *static_note)
{
	struct sl__task *t = sl__task_current();

	if (t)
		atomic_store_explicit(&t->note, static_note,
				      memory_order_relaxed);
}

/* ---- machines ---- */

static void *machine_main(void *arg);

static void
machine_pin(struct sl__machine *m, struct sl__proc *p)
{
	cpu_set_t set;

	if (!sl__rt.opts.pin || p->cpu < 0 || m->pinned_cpu == p->cpu)
		return;
	CPU_ZERO(&set);
	CPU_SET(p->cpu, &set);
	if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0)
		m->pinned_cpu = p->cpu;
}

static struct sl__machine *
machine_new(void)
{
	struct sl__machine *m = mi_zalloc(sizeof(*m));

	if (!m)
		return NULL;
	pthread_mutex_init(&m->mu, NULL);
	pthread_cond_init(&m->cv, NULL);
	m->pinned_cpu = -1;
	sl__spin_lock(&sl__rt.lock);
	m->id = sl__rt.nmachines++;
	m->all_next = sl__rt.all_m;
	sl__rt.all_m = m;
	sl__spin_unlock(&sl__rt.lock);
	return m;
}

/* Give @p to a spare machine, starting one if none waits. */
static void
handoff_p(struct sl__proc *p)
{
	struct sl__machine *m;

	atomic_fetch_add_explicit(&p->st.handoffs, 1, memory_order_relaxed);
	sl__spin_lock(&sl__rt.lock);
	m = sl__rt.spare_head;
	if (m)
		sl__rt.spare_head = m->spare_next;
	sl__spin_unlock(&sl__rt.lock);

	if (!m) {
		m = machine_new();
		if (!m)
			goto fail;
		m->handed = p;
		if (pthread_create(&m->thread, NULL, machine_main, m) != 0)
			goto fail;
		return;
	}
	pthread_mutex_lock(&m->mu);
	m->handed = p;
	pthread_cond_signal(&m->cv);
	pthread_mutex_unlock(&m->mu);
	return;

fail:
	/* Without a thread the processor stays with its blocked machine,
	 * which takes it back when the call returns. */
	fprintf(stderr, "sluice: level=error subsys=sched "
			"msg=\"cannot start a spare machine\"\n");
	atomic_store_explicit(&p->status, SL__PROC_BLOCKING,
			      memory_order_release);
}

/* Wait as a spare until handed a processor; false when stopping. */
static bool
machine_wait_for_p(struct sl__machine *m)
{
	sl__spin_lock(&sl__rt.lock);
	m->spare_next = sl__rt.spare_head;
	sl__rt.spare_head = m;
	sl__spin_unlock(&sl__rt.lock);

	pthread_mutex_lock(&m->mu);
	while (!m->handed && !m->exiting)
		pthread_cond_wait(&m->cv, &m->mu);
	pthread_mutex_unlock(&m->mu);
	return m->handed != NULL;
}

static void
machine_take_p(struct sl__machine *m)
{
	struct sl__proc *p = m->handed;

	m->handed = NULL;
	m->p = p;
	atomic_store_explicit(&p->m, m, memory_order_relaxed);
	atomic_store_explicit(&p->status, SL__PROC_RUNNING,
			      memory_order_release);
	machine_pin(m, p);
}

static struct sl__task *steal_work(struct sl__proc *p);
static struct sl__task *spin_for_work(struct sl__proc *p, bool *stolen);
static struct sl__task *proc_idle(struct sl__proc *p);

static struct sl__task *
find_runnable(struct sl__proc *p)
{
	for (;;) {
		struct sl__task *t;
		uint32_t busy, spinning;
		bool stolen;

		if (atomic_load_explicit(&sl__rt.stopping,
					 memory_order_acquire))
			return NULL;
		t = find_local(p);
		if (t)
			goto found_local;
		if (p->sq_unsubmitted)
			sl__poller_flush(p);

		/* Spin only while spinners are fewer than half the busy
		 * processors, as Go does, so idle CPUs stay idle. */
		busy = sl__rt.nprocs - atomic_load_explicit(
			&sl__rt.npidle, memory_order_relaxed);
		spinning = atomic_load_explicit(&sl__rt.nspinning,
						memory_order_relaxed);
		if (!p->spinning && 2 * spinning < busy) {
			p->spinning = true;
			atomic_fetch_add_explicit(&sl__rt.nspinning, 1,
						  memory_order_seq_cst);
		}
		if (p->spinning && (t = steal_work(p)))
			goto found;
		if (p->spinning && (t = spin_for_work(p, &stolen))) {
			if (stolen)
				goto found;
			goto found_local;
		}
		if ((t = proc_idle(p)))
			goto found;
		continue;
found_local:
		proc_stop_spinning_local(p);
		return t;
found:
		proc_stop_spinning(p);
		return t;
	}
}

/*
 * Before sleeping, a spinning processor keeps looking for up to idle_spin_ns:
 * a sleep and a wake-up cost about as much on a small VM, so spinning that
 * long is never worse than twice the best choice, and it turns the common
 * "more work arrives a few microseconds later" into no wake-up at all.
 */
static struct sl__task *
spin_for_work(struct sl__proc *p, bool *stolen)
{
	uint64_t until = 0;

	*stolen = false;

	for (unsigned i = 0; sl__rt.opts.idle_spin_ns; i++) {
		struct sl__task *t;

		if (i % 32 == 0) {
			uint64_t now = sl_now_ns();

			if (!until)
				until = now + sl__rt.opts.idle_spin_ns;
			else if (now >= until)
				break;
			if (atomic_load_explicit(&sl__rt.stopping,
						 memory_order_relaxed))
				break;
		}
		sl__cpu_relax();
		if ((t = find_local(p)))
			return t;
		if (work_anywhere(p) && (t = steal_work(p))) {
			*stolen = true;
			return t;
		}
	}
	return NULL;
}

static struct sl__task *
steal_work(struct sl__proc *p)
{
	unsigned n = sl__rt.nprocs;

	for (int round = 0; round < 4; round++) {
		unsigned start = sl__proc_rand(p) % n;

		for (unsigned i = 0; i < n; i++) {
			struct sl__proc *v = sl__rt.procs[(start + i) % n];
			struct sl__task *t;

			if (v == p)
				continue;
			t = runq_steal(p, v);
			if (t)
				return t;
		}
	}
	return NULL;
}

/* Is there work another processor could hand us?  (W4's re-check.) */
static bool
work_anywhere(struct sl__proc *p)
{
	if (atomic_load_explicit(&sl__rt.gq_len, memory_order_seq_cst))
		return true;
	if (sl_ring_count(p->inbox) || sl_ring_count(p->mail))
		return true;
	for (unsigned i = 0; i < sl__rt.nprocs; i++) {
		struct sl__proc *v = sl__rt.procs[i];

		if (v != p &&
		    atomic_load_explicit(&v->runq_head, memory_order_acquire) !=
			    atomic_load_explicit(&v->runq_tail,
						 memory_order_acquire))
			return true;
	}
	return false;
}

/*
 * Go idle: join the idle list, stop spinning, look once more (W4), then
 * sleep in the ring until a completion, a wake-up or the next timer.
 * Returns a task if the global queue had one; NULL means "look again".
 */
static struct sl__task *
proc_idle(struct sl__proc *p)
{
	bool was_spinning = p->spinning;

	sl__spin_lock(&sl__rt.lock);
	if (atomic_load_explicit(&sl__rt.gq_len, memory_order_relaxed)) {
		sl__spin_unlock(&sl__rt.lock);
		return gq_get(p, SL__RUNQ_SIZE / 2);
	}
	idle_push_locked(p);
	/*
	 * A kick that saw us idle before our last wake-up may have set
	 * wake_pending after we cleared it and sent a message we already
	 * reaped while running.  Clear it again before we look idle, or
	 * every later kick would think a message were on its way.
	 */
	atomic_store_explicit(&p->wake_pending, 0, memory_order_relaxed);
	atomic_store_explicit(&p->idle, 1, memory_order_seq_cst);
	sl__spin_unlock(&sl__rt.lock);

	if (was_spinning) {
		p->spinning = false;
		atomic_fetch_sub_explicit(&sl__rt.nspinning, 1,
					  memory_order_seq_cst);
	}
	SL_FENCE_SEQ_CST();

	if (work_anywhere(p) ||
	    atomic_load_explicit(&sl__rt.stopping, memory_order_acquire)) {
		sl__spin_lock(&sl__rt.lock);
		if (p->in_idle_list) {
			idle_remove_locked(p);
			sl__spin_unlock(&sl__rt.lock);
			atomic_store_explicit(&p->idle, 0,
					      memory_order_relaxed);
			return NULL;
		}
		/* A waker already took us out; its message is on its way and
		 * ends the wait below at once. */
		sl__spin_unlock(&sl__rt.lock);
	}

	sl__stat_inc(&p->st.idle_waits);
	sl__poller_wait(p, atomic_load_explicit(&p->timers.next,
						memory_order_relaxed));
	atomic_store_explicit(&p->idle, 0, memory_order_relaxed);
	atomic_store_explicit(&p->wake_pending, 0, memory_order_release);
	sl__stat_inc(&p->st.wakeups);

	sl__spin_lock(&sl__rt.lock);
	if (p->in_idle_list)
		idle_remove_locked(p);
	else
		p->spinning = true; /* wakep counted us as spinning */
	sl__spin_unlock(&sl__rt.lock);
	return NULL;
}

/* The scheduler loop each machine runs on its own stack (g0). */
static void
machine_loop(struct sl__machine *m)
{
	for (;;) {
		struct sl__proc *p = m->p;
		struct sl__task *t;

		if (!p)
			return;
		t = find_runnable(p);
		if (!t)
			return;
		run_prepare(m, p, t);
		switch_to(m, NULL, t, false);
		m = finish_switch(NULL);
	}
}

static void
machine_enter(struct sl__machine *m)
{
	tls_machine = m;
#if defined(SL_SANITIZE_THREAD)
	m->tsan_fiber = __tsan_get_current_fiber();
#endif
#if defined(SL_SANITIZE_ADDRESS)
	{
		pthread_attr_t attr;
		void *addr;
		size_t size;

		pthread_getattr_np(pthread_self(), &attr);
		pthread_attr_getstack(&attr, &addr, &size);
		pthread_attr_destroy(&attr);
		m->g0_stack_bottom = addr;
		m->g0_stack_size = size;
	}
#endif
	sl__stack_setup_machine(m);
}

static void *
machine_main(void *arg)
{
	struct sl__machine *m = arg;

	machine_enter(m);
	for (;;) {
		if (!m->p) {
			if (!m->handed && !machine_wait_for_p(m))
				break;
			machine_take_p(m);
		}
		machine_loop(m);
		if (atomic_load_explicit(&sl__rt.stopping,
					 memory_order_acquire))
			break;
	}
	sl__stack_teardown_machine(m);
	tls_machine = NULL;
	return NULL;
}

/* ---- blocking calls ---- */

static void
post_lost_p(struct sl__machine *m, struct sl__task *t)
{
	(void)m;
	atomic_store_explicit(&t->state, SL__TASK_RUNNABLE,
			      memory_order_relaxed);
	if (t->pinned) {
		inbox_put(NULL, t->pinned, t);
		return;
	}
	gq_put(t);
	wakep(NULL);
}

/*
 * Completions waiting in @p's ring, as another thread may read it: both
 * indexes with atomic loads (liburing's io_uring_cq_ready() reads the head
 * plainly, which is right only for the ring's owner).
 */
static bool
proc_cq_pending(struct sl__proc *p)
{
	unsigned tail = atomic_load_explicit(
		(_Atomic unsigned *)(void *)p->ring.cq.ktail,
		memory_order_acquire);
	unsigned head = atomic_load_explicit(
		(_Atomic unsigned *)(void *)p->ring.cq.khead,
		memory_order_relaxed);

	return tail != head;
}

static bool
proc_has_work(struct sl__proc *p, uint64_t now)
{
	return runq_len(p) || sl_ring_count(p->inbox) ||
	       sl_ring_count(p->mail) || proc_cq_pending(p) ||
	       atomic_load_explicit(&p->timers.next, memory_order_relaxed) <=
		       now;
}

void
sl_blocking_enter(void)
{
	struct sl__machine *m = sl__machine_current();
	struct sl__proc *p;
	uint32_t s = SL__PROC_BLOCKING;

	if (!m || !m->curg)
		return;
	p = m->p;
	atomic_store_explicit(&m->curg->state, SL__TASK_BLOCKING,
			      memory_order_relaxed);
	m->in_blocking = true;
	atomic_store_explicit(&p->blocking_since, sl_now_ns(),
			      memory_order_relaxed);
	atomic_fetch_add_explicit(&sl__rt.blocking_count, 1,
				  memory_order_relaxed);
	atomic_store_explicit(&p->status, SL__PROC_BLOCKING,
			      memory_order_seq_cst);

	if (p->pinq_head || proc_has_work(p, 0)) {
		/* Queued work would wait for the whole call: hand over now. */
		if (atomic_compare_exchange_strong_explicit(
			    &p->status, &s, SL__PROC_HANDOFF,
			    memory_order_acq_rel, memory_order_relaxed))
			handoff_p(p);
		return;
	}
	if (atomic_load_explicit(&sl__rt.mon_long_sleep, memory_order_relaxed)) {
		pthread_mutex_lock(&sl__rt.mon_mu);
		pthread_cond_signal(&sl__rt.mon_cv);
		pthread_mutex_unlock(&sl__rt.mon_mu);
	}
}

void
sl_blocking_exit(void)
{
	struct sl__machine *m = sl__machine_current();
	struct sl__task *t;
	struct sl__proc *p;
	uint32_t s = SL__PROC_BLOCKING;

	if (!m || !m->curg || !m->in_blocking)
		return;
	t = m->curg;
	p = m->p;
	m->in_blocking = false;
	atomic_fetch_sub_explicit(&sl__rt.blocking_count, 1,
				  memory_order_relaxed);
	if (atomic_compare_exchange_strong_explicit(
		    &p->status, &s, SL__PROC_RUNNING, memory_order_acq_rel,
		    memory_order_acquire)) {
		atomic_store_explicit(&t->state, SL__TASK_RUNNING,
				      memory_order_relaxed);
		return;
	}

	/* The processor went to another machine.  Queue ourselves for any
	 * processor once off this stack; this machine becomes a spare. */
	m->p = NULL;
	m->curg = NULL;
	m->post_fn = post_lost_p;
	m->post_task = t;
	switch_to(m, t, NULL, false);
	finish_switch(t);
}

void *
sl_blocking_call(void *(*fn)(void *arg), void *arg)
{
	void *ret;

	sl_blocking_enter();
	ret = fn(arg);
	sl_blocking_exit();
	return ret;
}

/* ---- the monitor (Go's sysmon) ---- */

#define SL__MON_MIN_NS (50 * SL_NSEC_PER_USEC)
#define SL__MON_MAX_NS (10 * SL_NSEC_PER_MSEC)
#define SL__RETAKE_ANYWAY_NS (10 * SL_NSEC_PER_MSEC)

void sl__registry_name_of(uint64_t id, char *buf, size_t len);

static void
monitor_report_hog(struct sl__proc *p, uint64_t now)
{
	uint64_t id = atomic_load_explicit(&p->cur_id, memory_order_relaxed);
	char name[SL__TASK_NAME_MAX];

	atomic_fetch_add_explicit(&p->st.hogs, 1, memory_order_relaxed);
	p->mon_reported = true;
	/* At most one line a second, so a stuck task cannot flood logs. */
	if (now - sl__rt.mon_last_log < SL_NSEC_PER_SEC)
		return;
	sl__rt.mon_last_log = now;
	sl__registry_name_of(id, name, sizeof(name));
	fprintf(stderr,
		"sluice: level=warn subsys=sched msg=\"task held its "
		"processor without yielding\" task=%llu name=\"%s\" proc=%u "
		"held_ms=%llu\n",
		(unsigned long long)id, name, p->id,
		(unsigned long long)((now - p->mon_since) / SL_NSEC_PER_MSEC));
}

/* One look at one processor; returns true if it needs closer watching. */
static bool
monitor_check(struct sl__proc *p, uint64_t now)
{
	uint32_t status = atomic_load_explicit(&p->status,
					       memory_order_acquire);
	uint64_t tick = atomic_load_explicit(&p->schedtick,
					     memory_order_relaxed);
	bool moved = tick != p->mon_tick || p->mon_since == 0;

	if (moved) {
		p->mon_tick = tick;
		p->mon_since = now;
		p->mon_reported = false;
		p->mon_asked = false;
	}

	if (status == SL__PROC_BLOCKING) {
		uint64_t held = now - atomic_load_explicit(&p->blocking_since,
							   memory_order_relaxed);
		uint32_t s = SL__PROC_BLOCKING;

		if (held < sl__rt.opts.retake_ns)
			return true;
		if (!proc_has_work(p, now) && held < SL__RETAKE_ANYWAY_NS)
			return true;
		if (atomic_compare_exchange_strong_explicit(
			    &p->status, &s, SL__PROC_HANDOFF,
			    memory_order_acq_rel, memory_order_relaxed))
			handoff_p(p);
		return true;
	}
	if (status != SL__PROC_RUNNING ||
	    atomic_load_explicit(&p->idle, memory_order_relaxed))
		return false;

	/* Nothing waits behind the task: let it run. */
	if (moved || (!runq_len(p) && !sl_ring_count(p->inbox)))
		return false;

	/* First ask the task to yield at its next preemption point; report
	 * it only if it has not done so a whole slice later. */
	if (!p->mon_asked &&
	    now - p->mon_since >= sl__rt.opts.hog_report_ns / 2) {
		p->mon_asked = true;
		if (!atomic_exchange_explicit(&p->preempt, 1,
					      memory_order_relaxed))
			atomic_fetch_add_explicit(&sl__rt.preempt_pending, 1,
						  memory_order_relaxed);
	}
	if (!p->mon_reported &&
	    now - p->mon_since >= sl__rt.opts.hog_report_ns)
		monitor_report_hog(p, now);
	/* W5: queued work behind a task that does not yield. */
	wakep(NULL);
	return false;
}

static void *
monitor_main(void *arg)
{
	uint64_t delay = SL__MON_MIN_NS;
	unsigned quiet = 0;

	(void)arg;
	pthread_mutex_lock(&sl__rt.mon_mu);
	while (!atomic_load_explicit(&sl__rt.stopping, memory_order_acquire)) {
		uint64_t now = sl_now_ns() + delay;
		struct timespec ts = {
			.tv_sec = (time_t)(now / SL_NSEC_PER_SEC),
			.tv_nsec = (long)(now % SL_NSEC_PER_SEC),
		};
		bool watch = false;

		atomic_store_explicit(&sl__rt.mon_long_sleep,
				      delay >= SL__MON_MAX_NS,
				      memory_order_relaxed);
		pthread_cond_timedwait(&sl__rt.mon_cv, &sl__rt.mon_mu, &ts);
		if (atomic_load_explicit(&sl__rt.stopping,
					 memory_order_acquire))
			break;
		pthread_mutex_unlock(&sl__rt.mon_mu);

		atomic_store_explicit(&sl__rt.coarse_now, sl_now_ns(),
				      memory_order_relaxed);
		if (atomic_exchange_explicit(&sl__rt.dump_request, 0,
					     memory_order_acq_rel))
			sl_runtime_dump_tasks(stderr);
		now = sl_now_ns();
		for (unsigned i = 0; i < sl__rt.nprocs; i++)
			watch |= monitor_check(sl__rt.procs[i], now);
		if (watch || atomic_load_explicit(&sl__rt.blocking_count,
						  memory_order_relaxed)) {
			delay = SL__MON_MIN_NS;
			quiet = 0;
		} else if (++quiet > 20 && delay < SL__MON_MAX_NS) {
			delay *= 2;
		}
		pthread_mutex_lock(&sl__rt.mon_mu);
	}
	pthread_mutex_unlock(&sl__rt.mon_mu);
	return NULL;
}

/* ---- starting and stopping ---- */

void
sl_runtime_opts_init(struct sl_runtime_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->pin = true;
	opts->stack_size = 64 * 1024;
	opts->ring_entries = 256;
	opts->sqpoll_cpu = -1;
	opts->sqpoll_idle_ms = 1000;
	opts->hog_report_ns = 10 * SL_NSEC_PER_MSEC;
	opts->retake_ns = 20 * SL_NSEC_PER_USEC;
	opts->idle_spin_ns = 20 * SL_NSEC_PER_USEC;
}

const char *
sl_runtime_error(void)
{
	return rt_error;
}

static int
runtime_fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
runtime_fail(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rt_error, sizeof(rt_error), fmt, ap);
	va_end(ap);
	return err;
}

static int
runtime_config(const struct sl_runtime_opts *opts, int *cpus, unsigned *ncpus)
{
	const char *env = getenv("SLUICE_PROCS");
	char why[256];
	int err;

	if (opts)
		sl__rt.opts = *opts;
	else
		sl_runtime_opts_init(&sl__rt.opts);
	if (sl__rt.opts.stack_size == 0)
		sl__rt.opts.stack_size = 64 * 1024;
	if (sl__rt.opts.stack_size < 16384)
		return runtime_fail(-EINVAL, "stack size below 16 KiB");
	sl__rt.opts.stack_size = (sl__rt.opts.stack_size + 4095) & ~4095ul;
	if (sl__rt.opts.ring_entries == 0)
		sl__rt.opts.ring_entries = 256;
	if (sl__rt.opts.ring_entries > 32768)
		return runtime_fail(-EINVAL, "ring_entries %u: at most 32768",
				    sl__rt.opts.ring_entries);
	if (sl__rt.opts.cq_entries == 0)
		sl__rt.opts.cq_entries = 4 * sl__rt.opts.ring_entries;
	if (sl__rt.opts.cq_entries < sl__rt.opts.ring_entries ||
	    sl__rt.opts.cq_entries > 65536)
		return runtime_fail(-EINVAL, "cq_entries %u: from ring_entries "
				    "(%u) to 65536", sl__rt.opts.cq_entries,
				    sl__rt.opts.ring_entries);

	err = sl__placement_cpus(&sl__rt.opts, cpus, SL_MAX_PROCS, ncpus,
				 why, sizeof(why));
	if (err)
		return runtime_fail(err, "%s", why);
	sl__rt.nprocs = sl__rt.opts.nprocs;
	if (sl__rt.nprocs == 0 && env && *env) {
		char *end;
		unsigned long v = strtoul(env, &end, 10);

		if (*end || v == 0 || v > SL_MAX_PROCS)
			return runtime_fail(-EINVAL,
					    "SLUICE_PROCS=%s: want 1 to %d",
					    env, SL_MAX_PROCS);
		sl__rt.nprocs = (unsigned)v;
	}
	if (sl__rt.nprocs == 0)
		sl__rt.nprocs = *ncpus;
	if (sl__rt.nprocs > SL_MAX_PROCS)
		return runtime_fail(-EINVAL, "at most %d processors",
				    SL_MAX_PROCS);
	return 0;
}

static void
runtime_numa_init(void)
{
	static _Atomic int said;

	bool nodes = numa_available() >= 0 && numa_max_node() > 0;
	const char *policy = sl__rt.opts.numa;

	/* Interleaving leaves placement to the process's policy. */
	sl__rt.numa = nodes && !(policy && strcmp(policy, "interleave") == 0);
	if (!nodes && !sl__rt.opts.quiet && !atomic_exchange(&said, 1))
		fprintf(stderr,
			"sluice: level=info subsys=sched msg=\"%s; memory is "
			"placed without NUMA policy\"\n",
			numa_available() < 0 ? "NUMA is not available"
					     : "one NUMA node");
}

static struct sl__proc *
proc_create(unsigned id, int cpu, int *err)
{
	int node = 0;
	struct sl__proc *p;

	if (sl__rt.numa && cpu >= 0)
		node = numa_node_of_cpu(cpu);
	if (sl__rt.numa && node >= 0)
		p = numa_alloc_onnode(sizeof(*p), node);
	else
		p = mi_zalloc_aligned(sizeof(*p), SL_FALSE_SHARING);
	if (!p) {
		*err = runtime_fail(-ENOMEM, "no memory for processor %u", id);
		return NULL;
	}
	p->id = id;
	p->cpu = cpu;
	p->node = node < 0 ? 0 : node;
	p->rand = 0x2545f491u * (id + 1);
	p->gq_countdown = 61;
	p->efd = -1;
	atomic_store_explicit(&p->timers.next, UINT64_MAX,
			      memory_order_relaxed);
	p->inbox = sl_ring_create(sizeof(struct sl__task *), 1024);
	p->mail = sl_ring_create(sizeof(struct sl__completion *), 4096);
	if (!p->inbox || !p->mail) {
		*err = runtime_fail(-ENOMEM, "no memory for processor %u", id);
		return p;
	}
	*err = sl__poller_init(p, rt_error, sizeof(rt_error));
	return p;
}

static void
proc_destroy(struct sl__proc *p)
{
	if (!p)
		return;
	if (p->io && sl__io_proc_fini)
		sl__io_proc_fini(p);
	sl__poller_destroy(p);
	sl__timers_free(p);
	p->ncache = 0; /* the stacks went with the task table */
	sl_ring_destroy(p->inbox);
	sl_ring_destroy(p->mail);
	if (sl__rt.numa)
		numa_free(p, sizeof(*p));
	else
		mi_free(p);
}

struct main_args {
	sl_task_fn fn;
	void *arg;
};

static void
runtime_stop_all(void)
{
	struct sl__machine *m;

	atomic_store_explicit(&sl__rt.stopping, 1, memory_order_seq_cst);
	for (unsigned i = 0; i < sl__rt.nprocs; i++) {
		struct sl__proc *p = sl__rt.procs[i];

		atomic_store_explicit(&p->wake_pending, 1,
				      memory_order_relaxed);
		sl__poller_wake(NULL, p);
	}
	sl__spin_lock(&sl__rt.lock);
	m = sl__rt.all_m;
	sl__spin_unlock(&sl__rt.lock);
	for (; m; m = m->all_next) {
		pthread_mutex_lock(&m->mu);
		m->exiting = true;
		pthread_cond_signal(&m->cv);
		pthread_mutex_unlock(&m->mu);
	}
	pthread_mutex_lock(&sl__rt.mon_mu);
	pthread_cond_signal(&sl__rt.mon_cv);
	pthread_mutex_unlock(&sl__rt.mon_mu);
}

static void
main_task(void *arg)
{
	struct main_args *ma = arg;

	ma->fn(ma->arg);
	runtime_stop_all();
}

static void
runtime_free_all(void)
{
	struct sl__machine *m, *next;

	/* Every stack goes: cached ones, and those of tasks still alive,
	 * which are abandoned as at the end of a Go program. */
	sl__table_free_all();
	sl__rt.pool_len = 0;
	mi_free(sl__rt.pool);
	sl__rt.pool = NULL;
	mi_free(sl__rt.gq_v);
	sl__rt.gq_v = NULL;
	for (unsigned i = 0; i < sl__rt.nprocs; i++) {
		proc_destroy(sl__rt.procs[i]);
		sl__rt.procs[i] = NULL;
	}
	for (m = sl__rt.all_m; m; m = next) {
		next = m->all_next;
		pthread_mutex_destroy(&m->mu);
		pthread_cond_destroy(&m->cv);
		mi_free(m);
	}
	sl__rt.all_m = NULL;
	pthread_mutex_destroy(&sl__rt.mon_mu);
	pthread_cond_destroy(&sl__rt.mon_cv);
	sl__debug_fini();
	sl__stack_global_fini();
}

static int
runtime_start_machines(struct sl__machine **m0)
{
	for (unsigned i = 0; i < sl__rt.nprocs; i++) {
		struct sl__machine *m = machine_new();

		if (!m)
			return runtime_fail(-ENOMEM, "no memory for machines");
		m->handed = sl__rt.procs[i];
		if (i == 0) {
			*m0 = m;
			continue;
		}
		if (pthread_create(&m->thread, NULL, machine_main, m) != 0)
			return runtime_fail(-EAGAIN,
					    "cannot create machine threads");
	}
	return 0;
}

static void
runtime_join_machines(struct sl__machine *m0)
{
	struct sl__machine *m;

	/* Machines started while we joined (handoffs) are on the list too;
	 * walk it again until every one has been joined. */
	for (;;) {
		bool joined = false;

		sl__spin_lock(&sl__rt.lock);
		m = sl__rt.all_m;
		sl__spin_unlock(&sl__rt.lock);
		for (; m; m = m->all_next) {
			if (m == m0 || m->thread == 0)
				continue;
			pthread_join(m->thread, NULL);
			m->thread = 0;
			joined = true;
		}
		if (!joined)
			break;
	}
}

/* Everything but the machines: the monitor's lock, stacks, processors. */
static int
runtime_init(const int *cpus, unsigned ncpus)
{
	pthread_condattr_t ca;
	int err = 0;

	char why[256];

	runtime_numa_init();
	err = sl__placement_memory(&sl__rt.opts, why, sizeof(why));
	if (err)
		return runtime_fail(err, "%s", why);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&sl__rt.mon_mu, NULL);
	pthread_cond_init(&sl__rt.mon_cv, &ca);
	pthread_condattr_destroy(&ca);
	sl__stack_global_init();
	sl__debug_init();
	sl__rt.pool = mi_malloc(SL__POOL_MAX * sizeof(*sl__rt.pool));
	if (!sl__rt.pool)
		return runtime_fail(-ENOMEM, "no memory for the task pool");

	for (unsigned i = 0; i < sl__rt.nprocs && !err; i++)
		sl__rt.procs[i] = proc_create(i, cpus[i % ncpus], &err);
	return err;
}

/* Free it all once every machine has stopped (or none started). */
static int
runtime_finish(int err)
{
	atomic_store_explicit(&rt_up, 0, memory_order_release);
	runtime_free_all();
	atomic_store(&sl__rt.running, 0);
	atomic_store(&rt_active, 0);
	return err;
}

int
sl_runtime_run(const struct sl_runtime_opts *opts, sl_task_fn main_fn,
	       void *arg)
{
	static int cpus[SL_MAX_PROCS];
	struct sl_task_opts main_opts = {.name = "main", .proc = 0};
	struct main_args ma = {main_fn, arg};
	struct sl__machine *m0 = NULL;
	cpu_set_t saved;
	unsigned ncpus = 1;
	uint32_t expected = 0;
	int err;

	if (!main_fn)
		return -EINVAL;
	if (!atomic_compare_exchange_strong(&rt_active, &expected, 1))
		return -EBUSY;
	memset(&sl__rt, 0, sizeof(sl__rt));
	rt_error[0] = '\0';
	atomic_store(&sl__rt.id_block, 1);
	atomic_store(&sl__rt.coarse_now, sl_now_ns());
	err = runtime_config(opts, cpus, &ncpus);
	if (err) {
		atomic_store(&rt_active, 0);
		return err;
	}

	err = runtime_init(cpus, ncpus);
	if (err)
		return runtime_finish(err);
	atomic_store(&sl__rt.running, 1);
	atomic_store_explicit(&rt_up, 1, memory_order_release);
	err = sl_task_spawn(main_task, &ma, &main_opts, NULL);
	if (err)
		return runtime_finish(err);
	err = runtime_start_machines(&m0);
	if (err) {
		runtime_stop_all();
		runtime_join_machines(NULL);
		return runtime_finish(err);
	}
	if (pthread_create(&sl__rt.sysmon, NULL, monitor_main, NULL) != 0)
		sl__rt.sysmon = 0;

	/* The calling thread is machine 0 until the main task returns. */
	sched_getaffinity(0, sizeof(saved), &saved);
	machine_main(m0);
	sched_setaffinity(0, sizeof(saved), &saved);

	runtime_stop_all();
	runtime_join_machines(m0);
	if (sl__rt.sysmon)
		pthread_join(sl__rt.sysmon, NULL);
	return runtime_finish(0);
}

/* ---- introspection ---- */

unsigned
sl_runtime_nprocs(void)
{
	if (!atomic_load_explicit(&rt_up, memory_order_acquire))
		return 0;
	return sl__rt.nprocs;
}

bool
sl__runtime_up(void)
{
	return atomic_load_explicit(&rt_up, memory_order_acquire);
}

int
sl_runtime_proc_id(void)
{
	struct sl__proc *p = sl__proc_current();

	return p ? (int)p->id : -1;
}

uint64_t
sl_runtime_live_tasks(void)
{
	uint64_t spawned, exited = 0;

	if (!sl__runtime_up())
		return 0;
	for (unsigned i = 0; i < sl__rt.nprocs; i++) {
		struct sl__proc *p = sl__rt.procs[i];

		/* Read exits first, so a racing exit never makes us report
		 * fewer spawns than exits. */
		exited += atomic_load_explicit(&p->exited,
					       memory_order_acquire);
	}
	spawned = atomic_load_explicit(&sl__rt.spawned_outside,
				       memory_order_acquire);
	for (unsigned i = 0; i < sl__rt.nprocs; i++)
		spawned += atomic_load_explicit(&sl__rt.procs[i]->spawned,
						memory_order_acquire);
	return spawned - exited;
}

int
sl_runtime_proc_stats(unsigned proc, struct sl_proc_stats *out)
{
	struct sl__proc *p;

	if (!sl__runtime_up() || proc >= sl__rt.nprocs || !out)
		return -EINVAL;
	p = sl__rt.procs[proc];
#define SL__LOAD(f) atomic_load_explicit(&p->st.f, memory_order_relaxed)
	out->tasks_run = SL__LOAD(tasks_run);
	out->spawns = SL__LOAD(spawns);
	out->steals = SL__LOAD(steals);
	out->parks = SL__LOAD(parks);
	out->wakeups_sent = SL__LOAD(wakeups_sent);
	out->wakeups = SL__LOAD(wakeups);
	out->idle_waits = SL__LOAD(idle_waits);
	out->submits = SL__LOAD(submits);
	out->timers_fired = SL__LOAD(timers_fired);
	out->handoffs = SL__LOAD(handoffs);
	out->hogs = SL__LOAD(hogs);
#undef SL__LOAD
	out->runq_len = runq_len(p);
	out->idle = atomic_load_explicit(&p->idle, memory_order_relaxed);
	return 0;
}
