/* SPDX-License-Identifier: MIT */
/*
 * The Sluice runtime: processors (P), machines (M) and the scheduler that
 * runs tasks (G) on them.  docs/architecture.md explains the design; the
 * essay at the top of core/sched.c holds the invariants.
 *
 * A program calls sl_runtime_run() once with a main task function; the call
 * returns when that function returns.  Every other core call (tasks,
 * channels, contexts, sync) is made from inside a task unless its comment
 * says otherwise.
 */
#ifndef SLUICE_CORE_RUNTIME_H
#define SLUICE_CORE_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/base.h"

/* The largest number of processors one runtime drives. */
#define SL_MAX_PROCS 256

struct sl_runtime_opts {
	/* Processors to run; 0 takes SLUICE_PROCS from the environment, or
	 * else one per CPU in the process's affinity mask. */
	unsigned nprocs;
	/* Pin each machine thread to its processor's CPU (default true). */
	bool pin;
	/* Default task stack size in bytes (default 64 KiB, min 16 KiB). */
	size_t stack_size;
	/* The CPUs processors run on, as CPUs and ranges ("0-3,8"); NULL
	 * or "" takes every CPU of the process's affinity mask.  A CPU that
	 * is offline or outside that mask is refused at start-up. */
	const char *cpus;
	/* Memory placement: "local" (NULL, the default: each processor's
	 * memory and stacks on its CPU's node), "interleave" (every page
	 * spread over all nodes), or a list of nodes ("0" or "0-1"):
	 * processors run only on those nodes' CPUs and memory comes only
	 * from them.  A node that does not exist is refused. */
	const char *numa;
	/* Entries in each processor's io_uring submission queue (default
	 * 256, at most 32768). */
	unsigned ring_entries;
	/* Entries in its completion queue (0: four times ring_entries; at
	 * least ring_entries, at most 65536). */
	unsigned cq_entries;
	/* Back the heap with 2 MiB pages (mimalloc's large OS pages):
	 * fewer TLB misses for large fold queues.  Refused where neither
	 * transparent huge pages nor reserved huge pages are available. */
	bool huge_pages;
	/* Let the kernel poll each submission queue (IORING_SETUP_SQPOLL). */
	bool sqpoll;
	/* CPU for the SQPOLL threads, or -1 to let the kernel choose. */
	int sqpoll_cpu;
	/* How long an SQPOLL thread spins before it sleeps, in ms. */
	unsigned sqpoll_idle_ms;
	/* A task that keeps its processor this long without yielding is
	 * counted and reported (default 10 ms). */
	uint64_t hog_report_ns;
	/* A machine in a blocking call longer than this loses its processor
	 * to a spare machine (default 20 us). */
	uint64_t retake_ns;
	/* How long a processor that ran out of work keeps looking before it
	 * sleeps in its ring (default 20 us, about one wake-up's cost; 0
	 * sleeps at once). */
	uint64_t idle_spin_ns;
	/* Leave out the informational lines printed at start-up (such as
	 * "one NUMA node"); warnings and errors are still printed.  Meant
	 * for tools whose own output goes to the same terminal. */
	bool quiet;
};

/** sl_runtime_opts_init() - fill @opts with the defaults. */
void sl_runtime_opts_init(struct sl_runtime_opts *opts);

typedef void (*sl_task_fn)(void *arg);

/**
 * sl_runtime_run() - start the runtime, run @main_fn(@arg) as a task, and
 * stop once it returns.
 * @opts: options, or NULL for the defaults.
 *
 * Call from a thread that is not itself running a runtime.  Tasks still
 * alive when @main_fn returns are abandoned and their stacks freed, as Go
 * does at exit; machines inside blocking calls are waited for first.
 *
 * Return: 0; -ENOSYS, -EPERM or another -errno when io_uring, threads or
 * memory cannot be had (sl_runtime_error() then says why and how to fix
 * it); -EINVAL for bad options; -EBUSY when a runtime is already running.
 */
int sl_runtime_run(const struct sl_runtime_opts *opts, sl_task_fn main_fn,
		   void *arg);

/** sl_runtime_error() - a one-line reason for the last failed start. */
const char *sl_runtime_error(void);

/** sl_runtime_nprocs() - processors of the running runtime, or 0. */
unsigned sl_runtime_nprocs(void);

/** sl_runtime_proc_id() - the processor the calling task runs on. */
int sl_runtime_proc_id(void);

/**
 * sl_runtime_live_tasks() - tasks spawned and not yet finished (including
 * the main task); 0 when no runtime runs.  Safe from any thread.
 */
uint64_t sl_runtime_live_tasks(void);

/* Per-processor counters: plain 64-bit words each written by one processor
 * and read with relaxed loads, so reading them never stops the world. */
struct sl_proc_stats {
	uint64_t tasks_run;	/* times a task was switched to */
	uint64_t spawns;	/* tasks created on this processor */
	uint64_t steals;	/* tasks taken from other processors */
	uint64_t parks;		/* tasks that parked here */
	uint64_t wakeups_sent;	/* idle processors this one woke */
	uint64_t wakeups;	/* times this processor was woken from idle */
	uint64_t idle_waits;	/* times it slept in its ring */
	uint64_t submits;	/* io_uring_enter calls made */
	uint64_t timers_fired;
	uint64_t handoffs;	/* times it moved to another machine */
	uint64_t hogs;		/* tasks reported for holding it too long */
	uint32_t runq_len;	/* run-queue length when read */
	uint32_t idle;		/* 1 while it sleeps */
};

/**
 * sl_runtime_proc_stats() - copy processor @proc's counters.
 *
 * Safe from any thread while the runtime runs.  Return: 0 or -EINVAL.
 */
int sl_runtime_proc_stats(unsigned proc, struct sl_proc_stats *out);

/**
 * sl_runtime_dump_tasks() - write one line per live task to @out: id, name,
 * state, what it waits on and for how long, and who spawned it.
 *
 * Safe from any thread; the listing is consistent per task, not globally.
 * The runtime also writes it to stderr when the process gets SIGQUIT.
 */
void sl_runtime_dump_tasks(FILE *out);

/**
 * sl_blocking_enter() - the calling task is about to make a call that may
 * block its thread (a blocking library call, a DNS lookup, a read of a slow
 * file).
 *
 * If its processor has other runnable tasks, it is handed at once to a spare
 * machine; otherwise the monitor thread hands it over if the call lasts
 * longer than the retake threshold and work arrives.  Pair every enter with
 * sl_blocking_exit() in the same task; do not park in between.
 */
void sl_blocking_enter(void);

/**
 * sl_blocking_exit() - the blocking call has returned.  The task keeps its
 * processor if it was not taken; otherwise it queues for one and its thread
 * parks as a spare machine.
 */
void sl_blocking_exit(void);

/** sl_blocking_call() - run @fn(@arg) inside an enter/exit bracket. */
void *sl_blocking_call(void *(*fn)(void *arg), void *arg);

#endif /* SLUICE_CORE_RUNTIME_H */
