/* SPDX-License-Identifier: MIT */
/*
 * Task stacks.
 *
 * Each task gets one anonymous mapping: a guard page at the low end, the
 * stack above it, and the task's own struct at the very top, so a task and
 * its stack are one allocation and a parked task that uses little stack
 * keeps a single resident page.  Mappings are made once and then recycled
 * through a per-processor cache (sched.c), never mapped and unmapped per
 * spawn.
 *
 * Guard pages cost address-space mappings: the guard splits each stack into
 * two VMAs, and vm.max_map_count (65530 by default) caps a process's VMAs.
 * So stacks get a guard only while the budget allows (about 28k guarded
 * stacks at the default, keeping 8192 mappings for everything else); beyond
 * that they are mapped without one, and only a check of the lowest bytes of
 * the stack when the task exits detects an overflow.  docs/architecture.md says how to run a
 * million parked tasks (small stacks, a larger vm.max_map_count).
 *
 * An overflow into a guard page raises SIGSEGV; the handler runs on an
 * alternate signal stack (the faulting stack is unusable), names the task,
 * and aborts.
 */
#include <errno.h>
#include <numa.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/sched_internal.h"

#if defined(SL_SANITIZE_THREAD)
#include <sanitizer/tsan_interface.h>
#endif

#define SL__PAGE 4096
#define SL__ALTSTACK_SIZE (64 * 1024)

static _Atomic long guarded_budget;
static _Atomic long guarded_in_use;

static long
read_max_map_count(void)
{
	FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
	long v = 65530;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = 65530;
		fclose(f);
	}
	return v;
}

static uint64_t *
stack_bottom(const struct sl__task *t)
{
	return (uint64_t *)(void *)((char *)t->map_base +
				    (t->guarded ? SL__PAGE : 0));
}

/*
 * Unguarded stacks are checked for overflow when their task exits: the
 * lowest 64 bytes must still be zero, as the kernel handed them out.  A
 * written canary would touch the stack's lowest page and double the resident
 * size of a parked task; reading an untouched page maps the shared zero page
 * and costs no memory.  Guarded stacks need no check.
 */
bool
sl__stack_bottom_intact(const struct sl__task *t)
{
	const uint64_t *low = stack_bottom(t);
	uint64_t any = 0;

	if (t->guarded)
		return true;
	for (int i = 0; i < 8; i++)
		any |= low[i];
	return any == 0;
}

struct sl__task *
sl__stack_alloc(size_t stack_size)
{
	bool guarded = atomic_fetch_add_explicit(&guarded_in_use, 1,
						 memory_order_relaxed) <
		       atomic_load_explicit(&guarded_budget,
					    memory_order_relaxed);
	size_t map_size = stack_size + (guarded ? SL__PAGE : 0);
	struct sl__proc *p = sl__proc_current();
	struct sl__task *t;
	char *base;

	if (!guarded)
		atomic_fetch_sub_explicit(&guarded_in_use, 1,
					  memory_order_relaxed);
	base = mmap(NULL, map_size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
		    -1, 0);
	if (base == MAP_FAILED)
		goto fail;
	if (guarded && mprotect(base, SL__PAGE, PROT_NONE) != 0) {
		munmap(base, map_size);
		goto fail;
	}
	if (sl__rt.numa && p)
		numa_tonode_memory(base, map_size, p->node);

	/* The task struct sits at the top, cache-line aligned. */
	t = (struct sl__task *)(void *)((uintptr_t)(base + map_size -
						    sizeof(*t)) &
					~(uintptr_t)(SL_CACHE_LINE - 1));
	memset(t, 0, sizeof(*t));
	t->map_base = base;
	t->map_size = map_size;
	t->stack_size = (size_t)((char *)t - base) - (guarded ? SL__PAGE : 0);
	t->guarded = guarded;
	t->cached = stack_size == sl__rt.opts.stack_size;
#if defined(SL_SANITIZE_THREAD)
	t->tsan_fiber = __tsan_create_fiber(0);
#endif
	atomic_store_explicit(&t->state, SL__TASK_FREE, memory_order_relaxed);
	if (sl__table_add(t) != 0) {
#if defined(SL_SANITIZE_THREAD)
		__tsan_destroy_fiber(t->tsan_fiber);
#endif
		munmap(base, map_size);
		goto fail;
	}
	return t;

fail:
	if (guarded)
		atomic_fetch_sub_explicit(&guarded_in_use, 1,
					  memory_order_relaxed);
	return NULL;
}

void
sl__stack_free(struct sl__task *t)
{
	bool guarded = t->guarded;

	sl__table_remove(t);
#if defined(SL_SANITIZE_THREAD)
	__tsan_destroy_fiber(t->tsan_fiber);
#endif
	munmap(t->map_base, t->map_size);
	if (guarded)
		atomic_fetch_sub_explicit(&guarded_in_use, 1,
					  memory_order_relaxed);
}

void
sl__stack_prepare(struct sl__task *t)
{
	sl__ctx_init(&t->ctx, t, t);
#if defined(SL_SANITIZE_ADDRESS)
	t->asan_fake_stack = NULL;
#endif
}

#if !defined(SL_SANITIZE_ADDRESS)
/* ASan reports stack overflows itself and needs SIGSEGV for that. */
static struct sigaction old_segv;
static _Atomic int segv_installed;

static void
write_str(const char *s)
{
	ssize_t r = write(STDERR_FILENO, s, strlen(s));

	(void)r;
}

static void
write_u64(uint64_t v)
{
	char buf[24];
	int i = (int)sizeof(buf);

	buf[--i] = '\0';
	do {
		buf[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v && i > 0);
	write_str(buf + i);
}

/* Async-signal-safe: only write(2) and abort(). */
static void
segv_handler(int sig, siginfo_t *si, void *uctx)
{
	struct sl__machine *m = sl__machine_current();
	struct sl__task *t = m ? m->curg : NULL;
	char *addr = si->si_addr;

	if (t && t->guarded && addr >= (char *)t->map_base &&
	    addr < (char *)t->map_base + SL__PAGE) {
		write_str("sluice: stack overflow in task ");
		write_u64(t->id);
		write_str(" '");
		write_str(t->name);
		write_str("' (stack of ");
		write_u64(t->stack_size);
		write_str(" bytes); give it a larger stack_size\n");
		abort();
	}

	/* Not ours: let the previous disposition handle the re-fault. */
	sigaction(SIGSEGV, &old_segv, NULL);
	(void)sig;
	(void)uctx;
}
#endif

void
sl__stack_global_init(void)
{
	long maps = read_max_map_count();

	/* Two mappings per guarded stack; keep 8192 for the heap, libraries
	 * and rings (about 28k guarded stacks at the default 65530). */
	atomic_store(&guarded_budget, maps > 16384 ? (maps - 8192) / 2 : maps / 4);

#if !defined(SL_SANITIZE_ADDRESS)
	int expected = 0;

	if (atomic_compare_exchange_strong(&segv_installed, &expected, 1)) {
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = segv_handler;
		sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGSEGV, &sa, &old_segv);
	}
#endif
}

void
sl__stack_global_fini(void)
{
}

int
sl__stack_setup_machine(struct sl__machine *m)
{
	stack_t ss;

	m->altstack = mmap(NULL, SL__ALTSTACK_SIZE, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m->altstack == MAP_FAILED) {
		m->altstack = NULL;
		return -ENOMEM;
	}
	ss.ss_sp = m->altstack;
	ss.ss_size = SL__ALTSTACK_SIZE;
	ss.ss_flags = 0;
	if (sigaltstack(&ss, NULL) != 0)
		return -errno;
	return 0;
}

void
sl__stack_teardown_machine(struct sl__machine *m)
{
	stack_t ss = {.ss_flags = SS_DISABLE};

	if (!m->altstack)
		return;
	sigaltstack(&ss, NULL);
	munmap(m->altstack, SL__ALTSTACK_SIZE);
	m->altstack = NULL;
}
