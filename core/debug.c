/* SPDX-License-Identifier: MIT */
/*
 * Observability: the registry of live tasks and the task dump.
 *
 * Each processor keeps a list of the live tasks spawned on it, under a
 * spinlock that only spawn, exit and a dump take, so the lock is almost
 * always uncontended.  A dump walks the lists one at a time and reads each
 * task's fields with relaxed atomic loads: it never stops the world, and
 * each line is consistent for its task.
 *
 * SIGQUIT asks for a dump on stderr.  The handler only sets a flag (nothing
 * else is async-signal-safe); the monitor thread writes the dump.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "core/sched_internal.h"

static struct sigaction old_quit;
static bool quit_installed;

void
sl__registry_add(struct sl__proc *p, struct sl__task *t)
{
	t->reg_p = p;
	t->reg_prev = NULL;
	sl__spin_lock(&p->reg_lock);
	t->reg_next = p->reg_head;
	if (p->reg_head)
		p->reg_head->reg_prev = t;
	p->reg_head = t;
	sl__spin_unlock(&p->reg_lock);
}

void
sl__registry_remove(struct sl__task *t)
{
	struct sl__proc *p = t->reg_p;

	if (!p)
		return;
	sl__spin_lock(&p->reg_lock);
	if (t->reg_prev)
		t->reg_prev->reg_next = t->reg_next;
	else
		p->reg_head = t->reg_next;
	if (t->reg_next)
		t->reg_next->reg_prev = t->reg_prev;
	sl__spin_unlock(&p->reg_lock);
	t->reg_p = NULL;
}

void sl__registry_name_of(uint64_t id, char *buf, size_t len);

void
sl__registry_name_of(uint64_t id, char *buf, size_t len)
{
	snprintf(buf, len, "?");
	for (unsigned i = 0; i < sl__rt.nprocs; i++) {
		struct sl__proc *p = sl__rt.procs[i];

		sl__spin_lock(&p->reg_lock);
		for (struct sl__task *t = p->reg_head; t; t = t->reg_next) {
			if (t->id == id) {
				snprintf(buf, len, "%s", t->name);
				sl__spin_unlock(&p->reg_lock);
				return;
			}
		}
		sl__spin_unlock(&p->reg_lock);
	}
}

static const char *
state_name(uint32_t s)
{
	switch (s) {
	case SL__TASK_RUNNABLE:
		return "runnable";
	case SL__TASK_RUNNING:
		return "running";
	case SL__TASK_WAITING:
		return "waiting";
	case SL__TASK_BLOCKING:
		return "blocking";
	case SL__TASK_DEAD:
		return "dead";
	default:
		return "?";
	}
}

static void
dump_one(FILE *out, struct sl__task *t, uint64_t now)
{
	uint32_t state = atomic_load_explicit(&t->state, memory_order_relaxed);
	const char *reason = atomic_load_explicit(&t->wait_reason,
						  memory_order_relaxed);
	const char *note = atomic_load_explicit(&t->note, memory_order_relaxed);
	uint64_t since = atomic_load_explicit(&t->wait_since,
					      memory_order_relaxed);

	fprintf(out, "task %llu \"%s\" %s", (unsigned long long)t->id, t->name,
		state_name(state));
	if (state == SL__TASK_WAITING) {
		fprintf(out, " on=\"%s\"", reason ? reason : "?");
		if (since && now > since)
			fprintf(out, " for_ms=%llu",
				(unsigned long long)((now - since) /
						     SL_NSEC_PER_MSEC));
	}
	if (note)
		fprintf(out, " note=\"%s\"", note);
	fprintf(out, " spawned_by=%llu\n", (unsigned long long)t->parent_id);
}

void
sl_runtime_dump_tasks(FILE *out)
{
	uint64_t now = sl_now_ns();

	fprintf(out, "sluice task dump: %llu live tasks on %u processors\n",
		(unsigned long long)sl_runtime_live_tasks(), sl__rt.nprocs);
	for (unsigned i = 0; i < sl__rt.nprocs; i++) {
		struct sl__proc *p = sl__rt.procs[i];

		if (!p)
			continue;
		sl__spin_lock(&p->reg_lock);
		for (struct sl__task *t = p->reg_head; t; t = t->reg_next)
			dump_one(out, t, now);
		sl__spin_unlock(&p->reg_lock);
	}
	fflush(out);
}

static void
quit_handler(int sig)
{
	(void)sig;
	atomic_store_explicit(&sl__rt.dump_request, 1, memory_order_relaxed);
}

void
sl__debug_init(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = quit_handler;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	quit_installed = sigaction(SIGQUIT, &sa, &old_quit) == 0;
}

void
sl__debug_fini(void)
{
	if (quit_installed)
		sigaction(SIGQUIT, &old_quit, NULL);
	quit_installed = false;
}
