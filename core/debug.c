/* SPDX-License-Identifier: MIT */
/*
 * Observability: the table of task structs and the task dump.
 *
 * Every task struct that exists (running, parked, or cached for reuse) is in
 * one table, changed only when a stack is mapped or unmapped, which caching
 * makes rare.  A dump walks the table under its lock and reads each task's
 * fields with relaxed atomic loads, skipping free ones: it never stops the
 * world, spawning and exiting touch no shared list, and each line is
 * consistent for its task.
 *
 * SIGQUIT asks for a dump on stderr.  The handler only sets a flag (nothing
 * else is async-signal-safe); the monitor thread writes the dump.
 */
#include <errno.h>
#include <mimalloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "core/sched_internal.h"

static struct sigaction old_quit;
static bool quit_installed;

int
sl__table_add(struct sl__task *t)
{
	sl__spin_lock(&sl__rt.table_lock);
	if (sl__rt.table_len == sl__rt.table_cap) {
		uint32_t cap = sl__rt.table_cap ? sl__rt.table_cap * 2 : 1024;
		struct sl__task **v = mi_realloc(sl__rt.table, cap * sizeof(*v));

		if (!v) {
			sl__spin_unlock(&sl__rt.table_lock);
			return -ENOMEM;
		}
		sl__rt.table = v;
		sl__rt.table_cap = cap;
	}
	t->table_idx = sl__rt.table_len;
	sl__rt.table[sl__rt.table_len++] = t;
	sl__spin_unlock(&sl__rt.table_lock);
	return 0;
}

void
sl__table_remove(struct sl__task *t)
{
	struct sl__task *last;

	sl__spin_lock(&sl__rt.table_lock);
	last = sl__rt.table[--sl__rt.table_len];
	sl__rt.table[t->table_idx] = last;
	last->table_idx = t->table_idx;
	sl__spin_unlock(&sl__rt.table_lock);
}

/* At shutdown, with every machine stopped: unmap every stack. */
void
sl__table_free_all(void)
{
	while (sl__rt.table_len)
		sl__stack_free(sl__rt.table[sl__rt.table_len - 1]);
	mi_free(sl__rt.table);
	sl__rt.table = NULL;
	sl__rt.table_cap = 0;
}

void
sl__task_name_set(struct sl__task *t, const char *name)
{
	uint64_t words[SL__TASK_NAME_MAX / 8] = {0};

	if (name)
		strncpy((char *)words, name, SL__TASK_NAME_MAX - 1);
	for (size_t i = 0; i < SL_ARRAY_SIZE(words); i++)
		atomic_store_explicit(&t->name_words[i], words[i],
				      memory_order_relaxed);
}

void
sl__task_name_copy(struct sl__task *t, char *buf)
{
	uint64_t words[SL__TASK_NAME_MAX / 8];

	for (size_t i = 0; i < SL_ARRAY_SIZE(words); i++)
		words[i] = atomic_load_explicit(&t->name_words[i],
						memory_order_relaxed);
	memcpy(buf, words, SL__TASK_NAME_MAX);
	buf[SL__TASK_NAME_MAX - 1] = '\0';
}

void sl__registry_name_of(uint64_t id, char *buf, size_t len);

void
sl__registry_name_of(uint64_t id, char *buf, size_t len)
{
	char name[SL__TASK_NAME_MAX];

	snprintf(buf, len, "?");
	sl__spin_lock(&sl__rt.table_lock);
	for (uint32_t i = 0; i < sl__rt.table_len; i++) {
		struct sl__task *t = sl__rt.table[i];

		if (atomic_load_explicit(&t->id, memory_order_relaxed) == id &&
		    atomic_load_explicit(&t->state, memory_order_acquire) !=
			    SL__TASK_FREE) {
			sl__task_name_copy(t, name);
			snprintf(buf, len, "%s", name);
			break;
		}
	}
	sl__spin_unlock(&sl__rt.table_lock);
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
	case SL__TASK_FREE:
		return "free";
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

	char name[SL__TASK_NAME_MAX];

	if (state == SL__TASK_FREE || state == SL__TASK_DEAD)
		return;
	sl__task_name_copy(t, name);
	fprintf(out, "task %llu \"%s\" %s",
		(unsigned long long)atomic_load_explicit(&t->id,
							 memory_order_relaxed),
		name, state_name(state));
	if (state == SL__TASK_WAITING) {
		fprintf(out, " on=\"%s\"", reason ? reason : "?");
		if (since && now > since)
			fprintf(out, " for_ms=%llu",
				(unsigned long long)((now - since) /
						     SL_NSEC_PER_MSEC));
	}
	if (note)
		fprintf(out, " note=\"%s\"", note);
	fprintf(out, " spawned_by=%llu\n",
		(unsigned long long)atomic_load_explicit(&t->parent_id,
							 memory_order_relaxed));
}

void
sl_runtime_dump_tasks(FILE *out)
{
	uint64_t now = sl_now_ns();

	if (!sl__runtime_up()) {
		fprintf(out, "sluice task dump: no runtime is running\n");
		return;
	}
	fprintf(out, "sluice task dump: %llu live tasks on %u processors\n",
		(unsigned long long)sl_runtime_live_tasks(), sl__rt.nprocs);
	/* fprintf under a spinlock: dumps are rare, and the lock only holds
	 * up stack mapping and unmapping, never spawn or exit. */
	sl__spin_lock(&sl__rt.table_lock);
	for (uint32_t i = 0; i < sl__rt.table_len; i++)
		dump_one(out, sl__rt.table[i], now);
	sl__spin_unlock(&sl__rt.table_lock);
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
