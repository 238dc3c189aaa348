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

/* One task's fields, copied under the table lock and printed after it. */
struct dump_line {
	uint64_t id;
	uint64_t parent_id;
	uint64_t since;
	const char *reason;
	const char *note;
	uint32_t state;
	char name[SL__TASK_NAME_MAX];
};

static bool
dump_take(struct dump_line *d, struct sl__task *t)
{
	d->state = atomic_load_explicit(&t->state, memory_order_relaxed);
	if (d->state == SL__TASK_FREE || d->state == SL__TASK_DEAD)
		return false;
	d->id = atomic_load_explicit(&t->id, memory_order_relaxed);
	d->parent_id = atomic_load_explicit(&t->parent_id,
					    memory_order_relaxed);
	d->since = atomic_load_explicit(&t->wait_since, memory_order_relaxed);
	d->reason = atomic_load_explicit(&t->wait_reason,
					 memory_order_relaxed);
	d->note = atomic_load_explicit(&t->note, memory_order_relaxed);
	sl__task_name_copy(t, d->name);
	return true;
}

static void
dump_print(FILE *out, const struct dump_line *d, uint64_t now)
{
	fprintf(out, "task %llu \"%s\" %s", (unsigned long long)d->id,
		d->name, state_name(d->state));
	if (d->state == SL__TASK_WAITING) {
		fprintf(out, " on=\"%s\"", d->reason ? d->reason : "?");
		if (d->since && now > d->since)
			fprintf(out, " for_ms=%llu",
				(unsigned long long)((now - d->since) /
						     SL_NSEC_PER_MSEC));
	}
	if (d->note)
		fprintf(out, " note=\"%s\"", d->note);
	fprintf(out, " spawned_by=%llu\n", (unsigned long long)d->parent_id);
}

/*
 * Copy the live tasks' fields under the table lock into a buffer sized
 * beforehand, so no I/O (which may block on a slow reader) and no
 * allocation happens while stacks cannot be mapped or unmapped.
 */
static struct dump_line *
dump_snapshot(uint32_t *count)
{
	for (;;) {
		struct dump_line *v;
		uint32_t room, n = 0;

		sl__spin_lock(&sl__rt.table_lock);
		room = sl__rt.table_len + 64;
		sl__spin_unlock(&sl__rt.table_lock);
		v = mi_malloc(room * sizeof(*v));

		if (!v)
			return NULL;
		sl__spin_lock(&sl__rt.table_lock);
		if (sl__rt.table_len > room) {
			sl__spin_unlock(&sl__rt.table_lock);
			mi_free(v);
			continue;
		}
		for (uint32_t i = 0; i < sl__rt.table_len; i++)
			n += dump_take(&v[n], sl__rt.table[i]);
		sl__spin_unlock(&sl__rt.table_lock);
		*count = n;
		return v;
	}
}

void
sl_runtime_dump_tasks(FILE *out)
{
	uint64_t now = sl_now_ns();
	struct dump_line *v;
	uint32_t n = 0;

	if (!sl__runtime_up()) {
		fprintf(out, "sluice task dump: no runtime is running\n");
		return;
	}
	v = dump_snapshot(&n);
	fprintf(out, "sluice task dump: %llu live tasks on %u processors\n",
		(unsigned long long)sl_runtime_live_tasks(), sl__rt.nprocs);
	if (!v)
		fprintf(out, "(no memory for the task list)\n");
	for (uint32_t i = 0; v && i < n; i++)
		dump_print(out, &v[i], now);
	fflush(out);
	mi_free(v);
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
