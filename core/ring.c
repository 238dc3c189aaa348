/* SPDX-License-Identifier: MIT */
/*
 * The out-of-line half of sl_ring: creation and the burst and bulk paths.
 * The single-element paths are inline in ring.h.
 *
 * A burst scans forward from its position for consecutive slots that are
 * ready (free for a producer, published for a consumer), claims all of them
 * with one CAS, and then moves the payloads.  It never waits for a slot held
 * by another thread: it stops the scan there, so a preempted thread delays
 * only the slots it holds, as in the single-element path.
 */
#include <errno.h>
#include <mimalloc.h>

#include "core/ring.h"

#define SL_RING_MAX_ELEM 4096

struct sl_ring *
sl_ring_create(size_t elem_size, size_t capacity)
{
	struct sl_ring *r;
	size_t cap = 2;
	uint32_t stride;

	if (elem_size > SL_RING_MAX_ELEM || capacity > (1ull << 32)) {
		errno = EINVAL;
		return NULL;
	}
	while (cap < capacity)
		cap <<= 1;

	/* The sequence word leads each slot; keep slots 8-byte aligned. */
	stride = (uint32_t)(8 + ((elem_size + 7) & ~(size_t)7));

	r = mi_zalloc_aligned(sizeof(*r), SL_FALSE_SHARING);
	if (!r)
		goto nomem;
	r->slots = mi_malloc_aligned(cap * stride, SL_FALSE_SHARING);
	if (!r->slots)
		goto nomem;
	r->mask = cap - 1;
	r->stride = stride;
	r->elem_size = (uint32_t)elem_size;

	for (size_t i = 0; i < cap; i++)
		atomic_init(sl__ring_seq(sl__ring_slot(r, i)), i);
	atomic_init(&r->tail, 0);
	atomic_init(&r->head, 0);
	return r;

nomem:
	mi_free(r);
	errno = ENOMEM;
	return NULL;
}

void
sl_ring_destroy(struct sl_ring *r)
{
	if (!r)
		return;
	mi_free(r->slots);
	mi_free(r);
}

size_t
sl_ring_count(const struct sl_ring *r)
{
	uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);

	tail &= ~SL_RING_SEALED;
	return tail > head ? (size_t)(tail - head) : 0;
}

bool
sl_ring_seal(struct sl_ring *r)
{
	uint64_t old = atomic_fetch_or_explicit(&r->tail, SL_RING_SEALED,
						memory_order_acq_rel);

	return !(old & SL_RING_SEALED);
}

/*
 * Count consecutive slots from @pos whose sequence equals pos + i + @lag:
 * lag 0 finds free slots (producer), lag 1 published ones (consumer).
 */
static unsigned
ring_scan(const struct sl_ring *r, uint64_t pos, unsigned n, uint64_t lag)
{
	uint64_t mask = r->mask;
	uint32_t stride = r->stride;
	uint64_t first = pos & mask;
	unsigned char *slot = r->slots + first * stride;
	unsigned run;
	unsigned i;

	/* No claim can hold more than every slot.  Bounding the scan also
	 * keeps it to one wrap: a slot seen at its start may have moved on a
	 * lap by the time the scan comes round to it again, and match. */
	if (n > mask + 1)
		n = (unsigned)(mask + 1);
	run = n;

	/* Walk slot pointers instead of re-deriving each from the position,
	 * up to the end of the array; then wrap to its start.  The ring's
	 * fields are read once: the acquire loads would otherwise make the
	 * compiler reload them for every slot. */
	if (first + n > mask + 1)
		run = (unsigned)(mask + 1 - first);
	for (i = 0; i < n; i++, slot += stride) {
		uint64_t seq;

		if (i == run)
			slot = r->slots;
		/* A1/A2 as in the single-element paths. */
		seq = atomic_load_explicit(sl__ring_seq(slot),
					   memory_order_acquire);
		if (seq != pos + i + lag)
			break;
	}
	return i;
}

/*
 * Claim up to @n consecutive ready slots at *@end (the tail for producers,
 * @lag 0; the head for consumers, @lag 1) with one CAS; @all asks for all
 * @n or none.  Returns the count and the first claimed position in *@start.
 * Only the tail ever carries the sealed bit.
 */
static unsigned
ring_claim(struct sl_ring *r, _Atomic uint64_t *end, unsigned n, bool all,
	   uint64_t lag, uint64_t *start)
{
	uint64_t pos = atomic_load_explicit(end, memory_order_relaxed);
	unsigned got;

	for (;;) {
		if (pos & SL_RING_SEALED)
			return 0;
		got = ring_scan(r, pos, n, lag);
		if (got == 0 || (all && got < n)) {
			/* Either full (empty), or our view of pos is stale. */
			uint64_t now = atomic_load_explicit(
				end, memory_order_relaxed);
			if (now == pos)
				return 0;
			pos = now;
			continue;
		}
		if (atomic_compare_exchange_weak_explicit(
			    end, &pos, pos + got, memory_order_relaxed,
			    memory_order_relaxed))
			break;
	}
	*start = pos;
	return got;
}

/*
 * Move one contiguous run of @n claimed slots (no wrap) starting at @slot,
 * position @pos, and hand each on by storing pos + @next in its sequence:
 * R1 publishes it to consumers (@in), R2 frees it for the next lap.
 *
 * 8-byte elements (pointers, counters: what rings mostly carry) get a loop
 * of their own, one load and two stores per slot; the general loop calls
 * memcpy for each element.  Everything the loop needs is read into locals
 * first: the release stores would otherwise make the compiler reload the
 * ring's fields on every slot.
 */
static void
ring_move_run(unsigned char *slot, uint32_t stride, uint32_t size,
	      uint64_t pos, uint64_t next, unsigned n, unsigned char *buf,
	      bool in)
{
	if (size == 8 && buf) {
		for (unsigned i = 0; i < n; i++, slot += stride) {
			/* The caller's buffer need not be 8-byte aligned:
			 * memcpy of a constant 8 bytes is one move anyway. */
			if (in)
				memcpy(slot + 8, buf + (size_t)i * 8, 8);
			else
				memcpy(buf + (size_t)i * 8, slot + 8, 8);
			/* R1 (in) or R2 (out), per slot. */
			atomic_store_explicit(sl__ring_seq(slot),
					      pos + i + next,
					      memory_order_release);
		}
		return;
	}
	for (unsigned i = 0; i < n; i++, slot += stride) {
		/* No buffer: a dequeue that discards, or 0-byte elements. */
		if (buf && in)
			sl__ring_copy(slot + 8, buf + (size_t)i * size, size);
		else if (buf)
			sl__ring_copy(buf + (size_t)i * size, slot + 8, size);
		/* R1 (in) or R2 (out), per slot. */
		atomic_store_explicit(sl__ring_seq(slot), pos + i + next,
				      memory_order_release);
	}
}

/*
 * Copy @got elements between @buf and the claimed slots from @pos, into
 * the ring (@in) or out of it (@buf may then be NULL), and hand each slot
 * on.  The claimed range wraps at most once: two runs.
 */
static void
ring_move(struct sl_ring *r, uint64_t pos, unsigned got, unsigned char *buf,
	  bool in)
{
	uint64_t next = in ? 1 : r->mask + 1;
	uint64_t at = pos & r->mask;
	unsigned run = got;

	if (at + run > r->mask + 1)
		run = (unsigned)(r->mask + 1 - at);
	ring_move_run(r->slots + at * r->stride, r->stride, r->elem_size, pos,
		      next, run, buf, in);
	if (run < got)
		ring_move_run(r->slots, r->stride, r->elem_size, pos + run,
			      next, got - run,
			      buf ? buf + (size_t)run * r->elem_size : NULL,
			      in);
}

static unsigned
ring_enqueue_n(struct sl_ring *r, const void *elems, unsigned n, bool all)
{
	uint64_t pos = 0;
	unsigned got = ring_claim(r, &r->tail, n, all, 0, &pos);

	ring_move(r, pos, got, (unsigned char *)(uintptr_t)elems, true);
	return got;
}

static unsigned
ring_dequeue_n(struct sl_ring *r, void *out, unsigned n, bool all)
{
	uint64_t pos = 0;
	unsigned got = ring_claim(r, &r->head, n, all, 1, &pos);

	ring_move(r, pos, got, out, false);
	return got;
}

unsigned
sl_ring_enqueue_burst(struct sl_ring *r, const void *elems, unsigned n)
{
	return ring_enqueue_n(r, elems, n, false);
}

unsigned
sl_ring_enqueue_bulk(struct sl_ring *r, const void *elems, unsigned n)
{
	if (n > sl_ring_capacity(r))
		return 0;
	return ring_enqueue_n(r, elems, n, true);
}

unsigned
sl_ring_dequeue_burst(struct sl_ring *r, void *out, unsigned n)
{
	return ring_dequeue_n(r, out, n, false);
}

unsigned
sl_ring_dequeue_bulk(struct sl_ring *r, void *out, unsigned n)
{
	if (n > sl_ring_capacity(r))
		return 0;
	return ring_dequeue_n(r, out, n, true);
}
