/* SPDX-License-Identifier: MIT */
/*
 * Sleepable read-copy-update, after Linux's SRCU: readers of a shared
 * pointer (the route table, a route's sink) take no lock and may park
 * while they hold it; a writer swaps the pointer, waits until every reader
 * that could still see the old one is gone, and only then frees it.
 *
 * Readers count themselves in one of two counters, chosen by an index the
 * writer flips; each processor has its own pair, so readers on different
 * processors touch different cache lines.  A reader may finish on another
 * processor than it started on: only the sums matter.
 */
#ifndef SLUICE_ROUTER_SRCU_H
#define SLUICE_ROUTER_SRCU_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/sync.h"

struct sl_srcu_slot;

struct sl_srcu {
	_Atomic uint32_t idx;
	unsigned nslots;
	struct sl_srcu_slot *slots;
	struct sl_mutex writers;
	_Atomic uint64_t syncs;
};

int sl_srcu_init(struct sl_srcu *s);
void sl_srcu_fini(struct sl_srcu *s);

/* Enter a read-side section; pass the result to sl_srcu_read_unlock(). */
uint32_t sl_srcu_read_lock(struct sl_srcu *s);
void sl_srcu_read_unlock(struct sl_srcu *s, uint32_t idx);

/*
 * Wait until every read-side section that began before the call has
 * ended.  From a task; writers are serialised.  Publish the new pointer
 * before calling, free the old one after.
 */
void sl_srcu_synchronize(struct sl_srcu *s);

#endif /* SLUICE_ROUTER_SRCU_H */
