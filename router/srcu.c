/* SPDX-License-Identifier: MIT */
/*
 * SRCU: see srcu.h.
 *
 * Why two waits.  A reader reads the index, then increments that
 * counter.  If it stalls between the two (a thread can be preempted
 * anywhere), a writer may flip the index and find the old counter at
 * zero; the reader then increments the old counter and reads the
 * pointer, which by then is the new one, so that writer was right to
 * free the old.  But the next writer, flipping back, would wait only on
 * the other counter and miss this reader, which holds what is now the
 * current pointer.  Waiting on both counters in turn, with a flip before
 * each, closes that hole, as Linux's SRCU does.  All the operations are
 * sequentially consistent; the argument needs a single total order of
 * the counter updates, the index flips and the pointer accesses.
 */
#include <errno.h>
#include <sched.h>

#include <mimalloc.h>

#include "core/runtime.h"
#include "core/task.h"
#include "router/srcu.h"

struct sl_srcu_slot {
	_Alignas(SL_FALSE_SHARING) _Atomic int64_t c[2];
};

int
sl_srcu_init(struct sl_srcu *s)
{
	unsigned n = sl_runtime_nprocs();

	atomic_init(&s->idx, 0);
	atomic_init(&s->syncs, 0);
	s->nslots = n ? n : 1;
	s->slots = mi_zalloc_aligned(s->nslots * sizeof(*s->slots),
				     SL_FALSE_SHARING);
	if (!s->slots)
		return -ENOMEM;
	sl_mutex_init(&s->writers);
	return 0;
}

void
sl_srcu_fini(struct sl_srcu *s)
{
	mi_free(s->slots);
	s->slots = NULL;
}

static struct sl_srcu_slot *
srcu_slot(struct sl_srcu *s)
{
	int p = sl_runtime_proc_id();

	return &s->slots[p >= 0 ? (unsigned)p % s->nslots : 0];
}

uint32_t
sl_srcu_read_lock(struct sl_srcu *s)
{
	uint32_t idx = atomic_load(&s->idx) & 1;

	atomic_fetch_add(&srcu_slot(s)->c[idx], 1);
	return idx;
}

void
sl_srcu_read_unlock(struct sl_srcu *s, uint32_t idx)
{
	atomic_fetch_sub(&srcu_slot(s)->c[idx], 1);
}

static int64_t
srcu_readers(struct sl_srcu *s, uint32_t idx)
{
	int64_t sum = 0;

	for (unsigned i = 0; i < s->nslots; i++)
		sum += atomic_load(&s->slots[i].c[idx]);
	return sum;
}

static void
srcu_wait(struct sl_srcu *s, uint32_t idx)
{
	uint64_t pause = 10 * SL_NSEC_PER_USEC;

	/* Readers may be parked for as long as their work takes, so there
	 * is nothing to wake us: look again, less and less often. */
	while (srcu_readers(s, idx) != 0) {
		if (sl_runtime_nprocs())
			sl_task_sleep(pause);
		else
			sched_yield();
		if (pause < SL_NSEC_PER_MSEC)
			pause *= 2;
	}
}

void
sl_srcu_synchronize(struct sl_srcu *s)
{
	sl_mutex_lock(&s->writers);
	for (int round = 0; round < 2; round++) {
		uint32_t old = atomic_fetch_xor(&s->idx, 1) & 1;

		srcu_wait(s, old);
	}
	atomic_fetch_add(&s->syncs, 1);
	sl_mutex_unlock(&s->writers);
}
