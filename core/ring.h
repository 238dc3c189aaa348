/* SPDX-License-Identifier: MIT */
/*
 * sl_ring: a bounded multi-producer multi-consumer queue of fixed-size
 * elements, usable between any threads (or tasks) without locks.
 *
 * Design.  Every slot carries a sequence number next to its payload (the
 * scheme Dmitry Vyukov published for bounded MPMC queues).  A producer that
 * reads tail == pos owns slot pos once its CAS moves tail to pos + 1; it then
 * writes the payload and publishes it by storing seq = pos + 1.  A consumer
 * owns slot pos when seq == pos + 1 and its CAS moves head; it copies the
 * payload out and frees the slot for the next lap by storing
 * seq = pos + capacity.
 *
 * Why this and not a head/tail pair per side (ck_ring, rte_ring): there, a
 * producer that reserved a range must wait until every earlier producer has
 * published before it may publish, so one preempted thread stalls all others
 * for a whole scheduler quantum.  With a sequence per slot, producers and
 * consumers of different slots never wait for one another; a preempted thread
 * delays only the slot it holds.  The price is one extra word per slot.
 *
 * Memory order, by pairing:
 *   R1  the producer's release store of seq = pos + 1 pairs with A1, the
 *       consumer's acquire load of seq: the payload is visible before it.
 *   R2  the consumer's release store of seq = pos + cap pairs with A2, the
 *       producer's acquire load of seq: the consumer has finished reading the
 *       old payload before a producer overwrites it.
 *   The CAS on head/tail only arbitrates ownership and is relaxed.
 *
 * Sealing.  Bit 63 of tail marks the ring sealed: every later enqueue fails
 * with -EPIPE while consumers keep draining.  Channels use it for close().
 *
 * Naming follows DPDK: _bulk moves all n elements or none, _burst moves as
 * many as fit and returns the count.
 */
#ifndef SLUICE_CORE_RING_H
#define SLUICE_CORE_RING_H

#include <errno.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "core/base.h"

#define SL_RING_SEALED (1ull << 63)

struct sl_ring {
	/* Read-only after creation: shared by every side without traffic. */
	unsigned char *slots;
	uint64_t mask;
	uint32_t stride;
	uint32_t elem_size;

	/* Producers' position (and the sealed bit), then consumers'. */
	_Alignas(SL_FALSE_SHARING) _Atomic uint64_t tail;
	_Alignas(SL_FALSE_SHARING) _Atomic uint64_t head;
	_Alignas(SL_FALSE_SHARING) char pad_end;
};

/**
 * sl_ring_create() - allocate a ring.
 * @elem_size: bytes per element, 0 to 4096 (0 makes a counting ring).
 * @capacity: slots; rounded up to a power of two, at least 2.
 *
 * Return: the ring, or NULL with errno EINVAL (bad size) or ENOMEM.
 */
struct sl_ring *sl_ring_create(size_t elem_size, size_t capacity);

/** sl_ring_destroy() - free a ring no thread is using any more. */
void sl_ring_destroy(struct sl_ring *r);

/** sl_ring_capacity() - the number of slots. */
static inline size_t
sl_ring_capacity(const struct sl_ring *r)
{
	return (size_t)r->mask + 1;
}

/**
 * sl_ring_count() - elements in the ring at some recent instant.
 *
 * Exact only while no other thread touches the ring.
 */
size_t sl_ring_count(const struct sl_ring *r);

/**
 * sl_ring_maybe_nonempty() - a cheap hint: false means the ring was empty
 * at some recent instant.  For polling loops that must not pay a call.
 */
static inline bool
sl_ring_maybe_nonempty(const struct sl_ring *r)
{
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);

	return (tail & ~SL_RING_SEALED) !=
	       atomic_load_explicit(&r->head, memory_order_relaxed);
}

/** sl_ring_seal() - make every later enqueue fail; true if this call did. */
bool sl_ring_seal(struct sl_ring *r);

/** sl_ring_sealed() - whether the ring has been sealed. */
static inline bool
sl_ring_sealed(const struct sl_ring *r)
{
	return atomic_load_explicit(&r->tail, memory_order_acquire) &
	       SL_RING_SEALED;
}

static inline unsigned char *
sl__ring_slot(const struct sl_ring *r, uint64_t pos)
{
	return r->slots + (size_t)(pos & r->mask) * r->stride;
}

static inline _Atomic uint64_t *
sl__ring_seq(unsigned char *slot)
{
	return (_Atomic uint64_t *)(void *)slot;
}

/* Copies 8-byte elements (pointers, counters) with a plain move instead of
 * a call to memcpy.  gcc may inline this into a caller whose element is
 * smaller and then warn about the 8-byte branch it cannot rule out; the
 * branch is only taken when the ring's element size is 8. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Warray-bounds"
#pragma GCC diagnostic ignored "-Wstringop-overread"
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#endif
SL_INLINE void
sl__ring_copy(void *dst, const void *src, uint32_t n)
{
	if (SL_LIKELY(n == 8))
		memcpy(dst, src, 8);
	else if (n)
		memcpy(dst, src, n);
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

/*
 * Wait after losing the CAS on head or tail, longer each time it is lost
 * again (1, 2, 4 ... 64 pauses).  A lost CAS means a task on another CPU
 * is moving elements through the same end right now; trying again at once
 * pulls the line back from it mid-run, and then every element costs both
 * CPUs a transfer.  Backing off lets the winner finish a run with the
 * line local.  Channels between tasks use it: with two or four producers
 * and as many consumers on two processors it took a channel from 18-28M
 * to 80-114M items/s (medians of 7 runs of core_bench chan-2 and chan-4;
 * about 20M to 31M in stretches when this VM's cross-CPU transfers were
 * slow).  The raw ring's own calls do not: there it measured slower, its
 * users being threads that spin on full and empty with their own policy.
 * Kept out of line, so the fast path that inlines the ring's calls does
 * not grow.
 */
static __attribute__((noinline, cold)) unsigned
sl__ring_backoff(unsigned spins)
{
	for (unsigned k = 0; k < spins; k++) {
#if defined(__x86_64__)
		__builtin_ia32_pause();
#elif defined(__aarch64__)
		__asm__ volatile("yield" ::: "memory");
#endif
	}
	return spins < 64 ? spins * 2 : spins;
}

/* sl__ring_enqueue() with or without backing off after a lost CAS. */
SL_INLINE int
sl__ring_enqueue_one(struct sl_ring *r, const void *elem, bool backoff)
{
	uint64_t pos = atomic_load_explicit(&r->tail, memory_order_relaxed);
	unsigned char *slot;
	unsigned spins = 1;

	for (;;) {
		if (SL_UNLIKELY(pos & SL_RING_SEALED))
			return -EPIPE;
		slot = sl__ring_slot(r, pos);
		/* A2: pairs with the consumer's R2. */
		uint64_t seq = atomic_load_explicit(sl__ring_seq(slot),
						    memory_order_acquire);
		int64_t diff = (int64_t)(seq - pos);

		if (diff == 0) {
			if (atomic_compare_exchange_weak_explicit(
				    &r->tail, &pos, pos + 1,
				    memory_order_relaxed, memory_order_relaxed))
				break;
			if (backoff)
				spins = sl__ring_backoff(spins);
		} else if (diff < 0) {
			return -EAGAIN;
		} else {
			pos = atomic_load_explicit(&r->tail,
						   memory_order_relaxed);
		}
	}

	sl__ring_copy(slot + 8, elem, r->elem_size);
	/* R1: publish the payload; pairs with the consumer's A1. */
	atomic_store_explicit(sl__ring_seq(slot), pos + 1,
			      memory_order_release);
	return 0;
}

/* sl__ring_dequeue() with or without backing off after a lost CAS. */
SL_INLINE int
sl__ring_dequeue_one(struct sl_ring *r, void *out, bool backoff)
{
	uint64_t pos = atomic_load_explicit(&r->head, memory_order_relaxed);
	unsigned char *slot;
	unsigned spins = 1;

	for (;;) {
		slot = sl__ring_slot(r, pos);
		/* A1: pairs with the producer's R1. */
		uint64_t seq = atomic_load_explicit(sl__ring_seq(slot),
						    memory_order_acquire);
		int64_t diff = (int64_t)(seq - (pos + 1));

		if (diff == 0) {
			if (atomic_compare_exchange_weak_explicit(
				    &r->head, &pos, pos + 1,
				    memory_order_relaxed, memory_order_relaxed))
				break;
			if (backoff)
				spins = sl__ring_backoff(spins);
		} else if (diff < 0) {
			return -EAGAIN;
		} else {
			pos = atomic_load_explicit(&r->head,
						   memory_order_relaxed);
		}
	}

	if (out)
		sl__ring_copy(out, slot + 8, r->elem_size);
	/* R2: free the slot for the next lap; pairs with A2. */
	atomic_store_explicit(sl__ring_seq(slot), pos + r->mask + 1,
			      memory_order_release);
	return 0;
}

/**
 * sl__ring_enqueue() - enqueue one element, reporting why it could not.
 *
 * Return: 0, -EAGAIN when full, -EPIPE when sealed.
 */
SL_INLINE int
sl__ring_enqueue(struct sl_ring *r, const void *elem)
{
	return sl__ring_enqueue_one(r, elem, false);
}

/**
 * sl__ring_dequeue() - dequeue one element.
 *
 * Return: 0, or -EAGAIN when no published element is at the head.
 */
SL_INLINE int
sl__ring_dequeue(struct sl_ring *r, void *out)
{
	return sl__ring_dequeue_one(r, out, false);
}

/** sl_ring_try_enqueue() - enqueue one element; false if full or sealed. */
static inline bool
sl_ring_try_enqueue(struct sl_ring *r, const void *elem)
{
	return sl__ring_enqueue(r, elem) == 0;
}

/** sl_ring_try_dequeue() - dequeue one element into @out (may be NULL). */
static inline bool
sl_ring_try_dequeue(struct sl_ring *r, void *out)
{
	return sl__ring_dequeue(r, out) == 0;
}

/**
 * sl_ring_enqueue_burst() - enqueue up to @n elements from @elems.
 *
 * The elements are taken in order and land in consecutive slots, so one
 * consumer sees them in order.  Return: the number enqueued (0 when full or
 * sealed).
 */
unsigned sl_ring_enqueue_burst(struct sl_ring *r, const void *elems,
			       unsigned n);

/** sl_ring_enqueue_bulk() - enqueue all @n elements or none; returns n or 0. */
unsigned sl_ring_enqueue_bulk(struct sl_ring *r, const void *elems,
			      unsigned n);

/** sl_ring_dequeue_burst() - dequeue up to @n elements into @out. */
unsigned sl_ring_dequeue_burst(struct sl_ring *r, void *out, unsigned n);

/** sl_ring_dequeue_bulk() - dequeue exactly @n elements or none. */
unsigned sl_ring_dequeue_bulk(struct sl_ring *r, void *out, unsigned n);

#endif /* SLUICE_CORE_RING_H */
