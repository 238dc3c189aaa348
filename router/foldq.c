/* SPDX-License-Identifier: MIT */
/*
 * The fold queue.  foldq.h is the contract; this comment is the design.
 *
 * Glossary
 *   entry    the queue's record of one key, 48 bytes in a slab.
 *   pending  the event, or events (KEEP_ALL), an entry holds for the
 *            key's next reconcile.
 *   work     the record behind an sl_foldq_item while a worker has it.
 *   IDLE     an entry kept only for its failure count: nothing pending,
 *            no worker.
 *
 * Layout
 *   Entries live in chunks of 256 and are named by 32-bit indices, so
 *   every link is four bytes and an entry never moves while it is alive
 *   (the key pointer and item->entry_ rely on that).  Three structures
 *   run through the entries:
 *
 *   - The key table: chained hashing, a power-of-two array of 32-bit
 *     bucket heads and a 32-bit chain link in each entry, grown at load
 *     1 and shrunk at 1/8.  The bucket is cut from a remix of the
 *     event's hash, so it stays uniform whichever bits of the same hash
 *     picked the shard.  A lookup compares the stored hash before the key
 *     bytes, which are never copied while a key is pending: they are read
 *     in place inside the newest event the entry holds.
 *   - The queue: an intrusive singly linked FIFO.  A queued key leaves
 *     it only through get(), from the head, so no back link is needed.
 *   - The waiting heap: a binary min-heap of entry indices ordered by the
 *     due time kept in the entry.  Each entry records its position in the
 *     heap, so an earlier add_after is a decrease-key and an add that
 *     brings a waiting key forward removes it in O(log n).
 *
 * Cost per key: the entry (48 bytes), its share of the bucket array
 * (4 to 8 bytes at load 1 to 1/2) and, while waiting, a 4-byte heap slot
 * (8 with the heap's doubling slack): at most 60 bytes, within the 64
 * that foldq.h promises.  KEEP_ALL keys holding more than one event add
 * a list of event pointers (16 bytes + 8 per event).
 *
 * Failure counts stay in the entry.  After done() without forget() the
 * entry becomes IDLE and keeps its count; its key no longer lives in any
 * event, so it is copied: into the entry itself (the pending and time
 * fields are free then) when it is 16 bytes or shorter, else into an
 * allocation of its own.  A separate failure table was rejected: every
 * add would search two tables and every done() would move the count
 * between them, to save memory only on keys that failed, which should
 * be rare.  Keeping the last event instead of copying the key was
 * rejected too: it would pin a payload of up to 1 MiB to remember one
 * number.
 *
 * Invariants
 *   I1  An entry is in exactly one state; nqueued, nwaiting and
 *       nprocessing count the entries in each.
 *   I2  FQ_IN_HEAP is set exactly when the entry is in the heap, and then
 *       it is WAITING, or PROCESSING with a deferred add (add_after or
 *       retry to a key a worker has).  FQ_DIRTY is set only on PROCESSING
 *       entries, never together with FQ_IN_HEAP.
 *   I3  An entry holds pending events exactly when it is QUEUED, WAITING,
 *       or PROCESSING with FQ_DIRTY or FQ_IN_HEAP; ndirty counts the
 *       last kind, so nqueued + nwaiting + ndirty is the pending count
 *       that max_pending limits.
 *   I4  The key points into the newest event the entry holds, else into
 *       the newest event of its worker's item (valid until done() or
 *       retry()), else, IDLE, into the entry's own copy.
 *   I5  Heap capacity >= heap length + processing keys, reserved by
 *       get() and add_after(), so retry() and a deferred add never
 *       allocate.
 *   I6  An entry is freed only when it is not PROCESSING, holds nothing
 *       and has no failures.
 *
 * Rejected layouts
 *   - Open addressing with 8-byte slots (a hash tag beside the index):
 *     fewer entry visits on a miss, but at 10^6 keys a power-of-two table
 *     sits at load 0.48 and costs 16 bytes a key, past the budget.
 *   - One allocation per entry with pointer links: 8-byte links make the
 *     entry 56 bytes and each bucket 8 bytes.
 *   - Heap nodes carrying the due time beside the index: sifts touch no
 *     entry, but a waiting key costs 16 bytes of heap instead of 4.
 *   - client-go's separate waiting set, in which a key may also be
 *     queued: foldq.h keeps one state per key, so an add_after to a queued
 *     key folds its event and nothing more.
 *
 * Where foldq.h leaves a choice
 *   - add_after to a processing key defers the rerun: the pending events
 *     wait in the heap and turn dirty at the due time, or the key turns
 *     WAITING at done() if that comes first.  A plain add makes it dirty
 *     at once.
 *   - retry() of an item whose key was added to meanwhile queues the key
 *     at once, as an add brings a waiting key forward; the failure still
 *     counts and the bucket still pays.  retry() then returns 0.
 *   - retry() after shutdown without drain dead-letters the item
 *     (client-go drops it): the events reach the dead-letter callback
 *     instead of vanishing.  With drain it backs off as before, since a
 *     key that fails once during a drain would otherwise be given up
 *     while there is still time to deliver it; a drain deadline
 *     (set_deadline) caps each delay at half the time left, so every
 *     retry comes due before the deadline, and max_attempts still ends a
 *     key that keeps failing.  Whoever drains must bound the drain
 *     (max_attempts or a deadline) if the sink may never recover.
 *   - max_attempts counts tries: the retry that would be failure number
 *     max_attempts dead-letters instead.
 *   - -ENOMEM from add leaves the event with the caller, as -EAGAIN does.
 *   - Zero options take their defaults, except retry_rate, where 0 means
 *     no bucket as foldq.h says; NULL options give every default, the
 *     bucket included.
 *   - A waiting key moved to the queue keeps its due time as queued_ns.
 *   - Without drain, shutdown stops moving waiting keys to the queue (as
 *     client-go stops its waiting loop); they are freed by destroy.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mimalloc.h>

#include "core/base.h"
#include "router/foldq.h"

#define FQ_NIL UINT32_MAX
#define FQ_CHUNK_SHIFT 8
#define FQ_CHUNK (1u << FQ_CHUNK_SHIFT)
#define FQ_BUCKETS_MIN 64u
#define FQ_HEAP_MIN 64u
#define FQ_KEY_INLINE 16u
#define FQ_SPARE_WORK 64u
#define FQ_LIST_MIN 4u
/* Longer delays are clamped, so now + delay cannot wrap and no delay
 * reads as retry()'s dead-lettered UINT64_MAX. */
#define FQ_DELAY_MAX (UINT64_MAX / 4)

#define FQ_DEFAULT_KEEP_MAX 16u
#define FQ_DEFAULT_BASE_NS (5 * SL_NSEC_PER_MSEC)
#define FQ_DEFAULT_CAP_NS (1000 * SL_NSEC_PER_SEC)
#define FQ_DEFAULT_RATE 10.0
#define FQ_DEFAULT_BURST 100u

enum foldq_state {
	FQ_FREE,		/* on the free list */
	FQ_IDLE,		/* failures only */
	FQ_QUEUED,
	FQ_WAITING,
	FQ_PROCESSING,
};

/* Entry flags. */
#define FQ_DIRTY 0x01u		/* processing; pending runs at done() */
#define FQ_IN_HEAP 0x02u	/* in the waiting heap, at position link */
#define FQ_PEND_LIST 0x04u	/* pend is a foldq_list, not an event */
#define FQ_KEY_OWN 0x08u	/* IDLE: key is a separate allocation */

struct foldq_entry {
	uint64_t hash;
	const char *key;	/* I4 */
	union {
		struct {
			void *pend;	/* event, or list with FQ_PEND_LIST */
			uint64_t time_ns; /* queued: since when; heap: due */
		};
		char key_inline[FQ_KEY_INLINE];	/* IDLE, short keys */
	};
	uint32_t chain;		/* next entry in the bucket */
	uint32_t link;		/* FIFO next, heap position or free next */
	uint32_t failures;
	uint16_t key_len;
	uint8_t state;
	uint8_t flags;
};

static inline void
ent_clear(struct foldq_entry *e, unsigned flag)
{
	e->flags = (uint8_t)(e->flags & ~flag);
}

_Static_assert(sizeof(struct foldq_entry) == 48,
	       "an entry plus its bucket share must stay within 64 bytes");
_Static_assert(SL_KEY_MAX <= UINT16_MAX, "key_len is 16 bits");

/* KEEP_ALL events of one key, a ring in arrival order. */
struct foldq_list {
	uint32_t n;
	uint32_t cap;
	uint32_t head;		/* the oldest */
	uint32_t pad_;
	struct sl_event *ev[];
};

/* An item handed out, and what the queue needs to take it back. */
struct foldq_work {
	struct sl_foldq_item item;
	struct sl_event *one;	/* the event of a single-event item */
	struct foldq_list *list;	/* or the events of a KEEP_ALL one */
	struct foldq_work *prev;	/* outstanding items, for destroy */
	struct foldq_work *next;	/* (or the spare list) */
	uint32_t idx;
	bool live;
};

struct sl_foldq {
	struct foldq_entry **chunks;
	uint32_t nchunks;
	uint32_t chunks_cap;
	uint32_t carved;	/* entries ever taken from the chunks */
	uint32_t free_head;
	uint32_t nentries;

	uint32_t *buckets;
	uint32_t bucket_bits;

	uint32_t fifo_head;
	uint32_t fifo_tail;

	uint32_t *heap;
	uint32_t heap_len;
	uint32_t heap_cap;

	uint32_t nqueued;
	uint32_t nwaiting;
	uint32_t nprocessing;
	uint32_t ndirty;

	struct foldq_work *busy;
	struct foldq_work *spare;
	uint32_t nspare;

	bool shut;
	bool drain;
	uint64_t deadline;	/* of the drain; UINT64_MAX: none */

	struct sl_foldq_opts o;
	struct sl_clock *clock;
	uint64_t rng;
	double tokens;
	uint64_t bucket_last;

	uint64_t bytes;
	struct sl_foldq_stats st;	/* the counters; gauges are computed */
};

/* ---- memory ---- */

static void *
fq_alloc(struct sl_foldq *q, size_t n)
{
	void *p = mi_malloc(n);

	if (p)
		q->bytes += n;
	return p;
}

static void
fq_free(struct sl_foldq *q, void *p, size_t n)
{
	if (!p)
		return;
	q->bytes -= n;
	mi_free(p);
}

static inline struct foldq_entry *
ent(const struct sl_foldq *q, uint32_t idx)
{
	return &q->chunks[idx >> FQ_CHUNK_SHIFT][idx & (FQ_CHUNK - 1)];
}

static inline uint64_t
fq_now(struct sl_foldq *q)
{
	return q->clock->now(q->clock);
}

static inline uint64_t
sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static bool
fq_chunk_add(struct sl_foldq *q)
{
	struct foldq_entry *c;

	if (q->nchunks == q->chunks_cap) {
		uint32_t cap = q->chunks_cap ? q->chunks_cap * 2 : 4;
		struct foldq_entry **v;

		if (cap > (FQ_NIL >> FQ_CHUNK_SHIFT))
			return false;
		v = mi_realloc(q->chunks, cap * sizeof(*v));
		if (!v)
			return false;
		q->bytes += (uint64_t)(cap - q->chunks_cap) * sizeof(*v);
		q->chunks = v;
		q->chunks_cap = cap;
	}
	c = fq_alloc(q, FQ_CHUNK * sizeof(*c));
	if (!c)
		return false;
	q->chunks[q->nchunks++] = c;
	return true;
}

/* A fresh entry (state FREE, to be filled by the caller), or FQ_NIL. */
static uint32_t
ent_alloc(struct sl_foldq *q)
{
	uint32_t idx = q->free_head;

	if (idx != FQ_NIL) {
		q->free_head = ent(q, idx)->link;
	} else {
		if (q->carved == q->nchunks * FQ_CHUNK && !fq_chunk_add(q))
			return FQ_NIL;
		idx = q->carved++;
	}
	q->nentries++;
	return idx;
}

/* ---- the key table ---- */

static inline uint32_t
bucket_of(const struct sl_foldq *q, uint64_t hash)
{
	/* Remixed so that the bits the shard was chosen by do not repeat
	 * in every key of the shard (the multiplier is 2^64 / phi). */
	hash ^= hash >> 29;
	hash *= 0x9e3779b97f4a7c15ull;
	return (uint32_t)(hash >> (64 - q->bucket_bits));
}

static uint32_t
table_find(const struct sl_foldq *q, uint64_t hash, const char *key,
	   size_t len)
{
	uint32_t idx = q->buckets[bucket_of(q, hash)];

	while (idx != FQ_NIL) {
		const struct foldq_entry *e = ent(q, idx);

		if (e->hash == hash && e->key_len == len &&
		    memcmp(e->key, key, len) == 0)
			return idx;
		idx = e->chain;
	}
	return FQ_NIL;
}

static void
table_link(struct sl_foldq *q, uint32_t idx)
{
	struct foldq_entry *e = ent(q, idx);
	uint32_t *head = &q->buckets[bucket_of(q, e->hash)];

	e->chain = *head;
	*head = idx;
}

/* Rehash into 2^bits buckets; on failure keep the old table (longer
 * chains cost time, not correctness). */
static void
table_resize(struct sl_foldq *q, uint32_t bits)
{
	uint32_t *old = q->buckets;
	uint32_t old_n = 1u << q->bucket_bits;
	uint32_t *nb = fq_alloc(q, ((size_t)1 << bits) * sizeof(*nb));

	if (!nb)
		return;
	memset(nb, 0xff, ((size_t)1 << bits) * sizeof(*nb));
	q->buckets = nb;
	q->bucket_bits = bits;
	for (uint32_t b = 0; b < old_n; b++) {
		uint32_t idx = old[b];

		while (idx != FQ_NIL) {
			uint32_t next = ent(q, idx)->chain;

			table_link(q, idx);
			idx = next;
		}
	}
	fq_free(q, old, old_n * sizeof(*old));
}

static void
table_insert(struct sl_foldq *q, uint32_t idx)
{
	table_link(q, idx);
	if (q->nentries > (1u << q->bucket_bits) && q->bucket_bits < 31)
		table_resize(q, q->bucket_bits + 1);
}

static void
table_unlink(struct sl_foldq *q, uint32_t idx)
{
	struct foldq_entry *e = ent(q, idx);
	uint32_t *p = &q->buckets[bucket_of(q, e->hash)];

	while (*p != idx)
		p = &ent(q, *p)->chain;
	*p = e->chain;
}

/* ---- the FIFO ---- */

static void
fifo_push(struct sl_foldq *q, uint32_t idx)
{
	ent(q, idx)->link = FQ_NIL;
	if (q->fifo_tail == FQ_NIL)
		q->fifo_head = idx;
	else
		ent(q, q->fifo_tail)->link = idx;
	q->fifo_tail = idx;
}

static uint32_t
fifo_pop(struct sl_foldq *q)
{
	uint32_t idx = q->fifo_head;

	q->fifo_head = ent(q, idx)->link;
	if (q->fifo_head == FQ_NIL)
		q->fifo_tail = FQ_NIL;
	return idx;
}

/* ---- the waiting heap ---- */

static inline uint64_t
heap_due(const struct sl_foldq *q, uint32_t pos)
{
	return ent(q, q->heap[pos])->time_ns;
}

static inline void
heap_put(struct sl_foldq *q, uint32_t pos, uint32_t idx)
{
	q->heap[pos] = idx;
	ent(q, idx)->link = pos;
}

static void
heap_up(struct sl_foldq *q, uint32_t pos)
{
	uint32_t idx = q->heap[pos];
	uint64_t due = ent(q, idx)->time_ns;

	while (pos > 0) {
		uint32_t parent = (pos - 1) / 2;

		if (heap_due(q, parent) <= due)
			break;
		heap_put(q, pos, q->heap[parent]);
		pos = parent;
	}
	heap_put(q, pos, idx);
}

static void
heap_down(struct sl_foldq *q, uint32_t pos)
{
	uint32_t idx = q->heap[pos];
	uint64_t due = ent(q, idx)->time_ns;

	for (;;) {
		uint32_t c = 2 * pos + 1;

		if (c >= q->heap_len)
			break;
		if (c + 1 < q->heap_len && heap_due(q, c + 1) < heap_due(q, c))
			c++;
		if (due <= heap_due(q, c))
			break;
		heap_put(q, pos, q->heap[c]);
		pos = c;
	}
	heap_put(q, pos, idx);
}

static bool
heap_resize(struct sl_foldq *q, uint32_t cap)
{
	uint32_t *v = mi_realloc(q->heap, (size_t)cap * sizeof(*v));

	if (!v)
		return false;
	q->bytes += (uint64_t)cap * sizeof(*v);
	q->bytes -= (uint64_t)q->heap_cap * sizeof(*v);
	q->heap = v;
	q->heap_cap = cap;
	return true;
}

/* I5: room for one more heap entry or processing key, and for every
 * processing key to enter the heap. */
static bool
heap_reserve(struct sl_foldq *q)
{
	uint64_t need = (uint64_t)q->heap_len + q->nprocessing + 1;
	uint64_t cap = q->heap_cap ? q->heap_cap : FQ_HEAP_MIN;

	if (need <= q->heap_cap)
		return true;
	while (cap < need)
		cap *= 2;
	return cap <= UINT32_MAX && heap_resize(q, (uint32_t)cap);
}

/* Halve while under a quarter used, keeping I5. */
static void
heap_shrink(struct sl_foldq *q)
{
	uint64_t used = (uint64_t)q->heap_len + q->nprocessing;
	uint32_t cap = q->heap_cap;

	while (cap > FQ_HEAP_MIN && used < cap / 4)
		cap /= 2;
	if (cap != q->heap_cap)
		heap_resize(q, cap);
}

static void
heap_insert(struct sl_foldq *q, uint32_t idx, uint64_t due)
{
	struct foldq_entry *e = ent(q, idx);

	e->time_ns = due;
	e->flags |= FQ_IN_HEAP;
	q->heap[q->heap_len] = idx;
	heap_up(q, q->heap_len++);
}

/* Move @idx to @due if that is earlier (earlier add_after wins). */
static void
heap_advance(struct sl_foldq *q, uint32_t idx, uint64_t due)
{
	struct foldq_entry *e = ent(q, idx);

	if (due < e->time_ns) {
		e->time_ns = due;
		heap_up(q, e->link);
	}
}

static void
heap_remove(struct sl_foldq *q, uint32_t idx)
{
	struct foldq_entry *e = ent(q, idx);
	uint32_t pos = e->link;
	uint32_t last = q->heap[--q->heap_len];

	ent_clear(e, FQ_IN_HEAP);
	if (pos == q->heap_len)
		return;
	heap_put(q, pos, last);
	if (pos > 0 && heap_due(q, (pos - 1) / 2) > ent(q, last)->time_ns)
		heap_up(q, pos);
	else
		heap_down(q, pos);
}

/* ---- pending events ---- */

static inline struct sl_event *
list_at(const struct foldq_list *l, uint32_t i)
{
	return l->ev[(l->head + i) % l->cap];
}

static void
reverse(struct sl_event **v, uint32_t n)
{
	for (uint32_t i = 0; i < n / 2; i++) {
		struct sl_event *t = v[i];

		v[i] = v[n - 1 - i];
		v[n - 1 - i] = t;
	}
}

/* Put the oldest event at ev[0], in place. */
static void
list_straighten(struct foldq_list *l)
{
	if (l->head == 0)
		return;
	reverse(l->ev, l->head);
	reverse(l->ev + l->head, l->cap - l->head);
	reverse(l->ev, l->cap);
	l->head = 0;
}

static size_t
list_size(uint32_t cap)
{
	return sizeof(struct foldq_list) + (size_t)cap * sizeof(void *);
}

static struct foldq_list *
list_new(struct sl_foldq *q, uint32_t cap)
{
	struct foldq_list *l = fq_alloc(q, list_size(cap));

	if (l) {
		l->n = 0;
		l->cap = cap;
		l->head = 0;
		l->pad_ = 0;
	}
	return l;
}

static void
list_free(struct sl_foldq *q, struct foldq_list *l)
{
	if (l)
		fq_free(q, l, list_size(l->cap));
}

static void
list_drop_oldest(struct sl_foldq *q, struct foldq_list *l)
{
	sl_event_unref(l->ev[l->head]);
	l->head = (l->head + 1) % l->cap;
	l->n--;
	q->st.dropped++;
}

/* Make room for one more event; -ENOMEM leaves @lp as it was. */
static int
list_room(struct sl_foldq *q, struct foldq_list **lp)
{
	struct foldq_list *l = *lp;
	uint32_t cap;

	if (l->n < l->cap)
		return 0;
	cap = (uint64_t)l->cap * 2 < q->o.keep_max ? l->cap * 2
						   : q->o.keep_max;
	list_straighten(l);
	l = mi_realloc(l, list_size(cap));
	if (!l)
		return -ENOMEM;
	q->bytes += list_size(cap) - list_size(l->cap);
	l->cap = cap;
	*lp = l;
	return 0;
}

static inline struct sl_event *
pend_newest(const struct foldq_entry *e)
{
	const struct foldq_list *l = e->pend;

	if (!(e->flags & FQ_PEND_LIST))
		return e->pend;
	return list_at(l, l->n - 1);
}

/* I3; an IDLE entry's pend field may hold its key's bytes. */
static inline bool
ent_pending(const struct foldq_entry *e)
{
	return e->state != FQ_IDLE && e->pend != NULL;
}

/* I4 after the pending events changed. */
static inline void
ent_rekey(struct foldq_entry *e)
{
	e->key = sl_event_key(pend_newest(e));
}

/* LATEST and MERGE: the one event to keep of an older and a newer. */
static struct sl_event *
fold_pair(struct sl_foldq *q, struct sl_event *older, struct sl_event *newer)
{
	struct sl_event *keep;

	if (q->o.policy == SL_FOLD_MERGE) {
		keep = q->o.merge(older, newer, q->o.merge_arg);
		if (!keep) {
			fprintf(stderr, "sluice: fold queue merge function "
					"returned no event\n");
			abort();
		}
		return keep;
	}
	if (newer->seq >= older->seq) {
		sl_event_unref(older);
		return newer;
	}
	sl_event_unref(newer);
	return older;
}

/*
 * KEEP_ALL: append @ev to an entry's events, dropping the oldest past
 * keep_max.  -ENOMEM, with nothing changed, if a list could not grow and
 * @drop_if_full is false; with it true the oldest is dropped instead.
 */
static int
pend_append(struct sl_foldq *q, struct foldq_entry *e, struct sl_event *ev,
	    bool drop_if_full)
{
	struct foldq_list *l;

	if (!(e->flags & FQ_PEND_LIST)) {
		if (q->o.keep_max == 1) {
			sl_event_unref(e->pend);
			q->st.dropped++;
			e->pend = ev;
			return 0;
		}
		l = list_new(q, FQ_LIST_MIN < q->o.keep_max ? FQ_LIST_MIN
							    : q->o.keep_max);
		if (!l && !drop_if_full)
			return -ENOMEM;
		if (!l) {
			sl_event_unref(e->pend);
			q->st.dropped++;
			e->pend = ev;
			return 0;
		}
		l->ev[l->n++] = e->pend;
		e->pend = l;
		e->flags |= FQ_PEND_LIST;
	}
	l = e->pend;
	if (l->n == q->o.keep_max)
		list_drop_oldest(q, l);
	if (list_room(q, &l) < 0) {
		if (!drop_if_full)
			return -ENOMEM;
		list_drop_oldest(q, l);
	}
	l->ev[(l->head + l->n++) % l->cap] = ev;
	e->pend = l;
	return 0;
}

/* Fold @ev, newer than anything pending, into @e's pending events (which
 * may be none).  -ENOMEM only from a KEEP_ALL list that cannot grow. */
static int
pend_add(struct sl_foldq *q, struct foldq_entry *e, struct sl_event *ev)
{
	int r = 0;

	if (!e->pend)
		e->pend = ev;
	else if (q->o.policy == SL_FOLD_KEEP_ALL)
		r = pend_append(q, e, ev, false);
	else
		e->pend = fold_pair(q, e->pend, ev);
	if (r == 0)
		ent_rekey(e);
	return r;
}

static void
pend_release(struct sl_foldq *q, struct foldq_entry *e)
{
	struct foldq_list *l = e->pend;

	if (!l)
		return;
	if (e->flags & FQ_PEND_LIST) {
		for (uint32_t i = 0; i < l->n; i++)
			sl_event_unref(list_at(l, i));
		list_free(q, l);
	} else {
		sl_event_unref(e->pend);
	}
	e->pend = NULL;
	ent_clear(e, FQ_PEND_LIST);
}

/* ---- work records ---- */

static inline struct foldq_work *
work_of(struct sl_foldq_item *it)
{
	return SL_CONTAINER_OF(it, struct foldq_work, item);
}

static struct foldq_work *
work_get(struct sl_foldq *q)
{
	struct foldq_work *w = q->spare;

	if (w) {
		q->spare = w->next;
		q->nspare--;
	} else {
		w = fq_alloc(q, sizeof(*w));
		if (!w)
			return NULL;
	}
	w->prev = NULL;
	w->next = q->busy;
	if (q->busy)
		q->busy->prev = w;
	q->busy = w;
	w->live = true;
	return w;
}

static void
work_release_events(struct sl_foldq *q, struct foldq_work *w)
{
	if (w->list) {
		for (uint32_t i = 0; i < w->list->n; i++)
			sl_event_unref(w->list->ev[i]);
		list_free(q, w->list);
	} else {
		sl_event_unref(w->one);
	}
	w->list = NULL;
	w->one = NULL;
}

static void
work_put(struct sl_foldq *q, struct foldq_work *w)
{
	w->live = false;
	if (w->prev)
		w->prev->next = w->next;
	else
		q->busy = w->next;
	if (w->next)
		w->next->prev = w->prev;
	if (q->nspare >= FQ_SPARE_WORK) {
		fq_free(q, w, sizeof(*w));
		return;
	}
	w->next = q->spare;
	q->spare = w;
	q->nspare++;
}

static struct foldq_work *
work_check(struct sl_foldq_item *it, const char *call)
{
	struct foldq_work *w = work_of(it);

	if (SL_UNLIKELY(!w->live)) {
		fprintf(stderr, "sluice: %s() on a fold queue item that "
				"was already finished\n", call);
		abort();
	}
	return w;
}

/* ---- entries leaving ---- */

/* Give back the slab when the queue empties, so a burst of keys does not
 * hold its peak memory forever.  The first chunk stays. */
static void
fq_trim(struct sl_foldq *q)
{
	struct foldq_entry **v;

	while (q->nchunks > 1)
		fq_free(q, q->chunks[--q->nchunks],
			FQ_CHUNK * sizeof(struct foldq_entry));
	q->carved = 0;
	q->free_head = FQ_NIL;
	if (q->chunks_cap > 4) {
		v = mi_realloc(q->chunks, 4 * sizeof(*v));
		if (v) {
			q->bytes -= (q->chunks_cap - 4) * sizeof(*v);
			q->chunks = v;
			q->chunks_cap = 4;
		}
	}
	if (q->bucket_bits > 6)
		table_resize(q, 6);
	heap_shrink(q);
}

static void
ent_key_release(struct sl_foldq *q, struct foldq_entry *e)
{
	if (e->flags & FQ_KEY_OWN)
		fq_free(q, (void *)(uintptr_t)e->key, e->key_len);
	ent_clear(e, FQ_KEY_OWN);
}

static void
ent_remove(struct sl_foldq *q, uint32_t idx)
{
	struct foldq_entry *e = ent(q, idx);

	table_unlink(q, idx);
	ent_key_release(q, e);
	e->state = FQ_FREE;
	e->flags = 0;
	e->link = q->free_head;
	q->free_head = idx;
	q->nentries--;
	if (q->nentries == 0)
		fq_trim(q);
	else if (q->bucket_bits > 6 && q->nentries < (1u << q->bucket_bits) / 8)
		table_resize(q, q->bucket_bits - 1);
}

/* Keep only the failure count (I6); the key must be copied out of the
 * worker's events before they go. */
static void
ent_make_idle(struct sl_foldq *q, uint32_t idx)
{
	struct foldq_entry *e = ent(q, idx);
	char *copy;

	if (e->key_len <= FQ_KEY_INLINE) {
		memmove(e->key_inline, e->key, e->key_len);
		e->key = e->key_inline;
	} else {
		copy = fq_alloc(q, e->key_len);
		if (!copy) {
			/* Forgetting the count beats failing done(). */
			ent_remove(q, idx);
			return;
		}
		memcpy(copy, e->key, e->key_len);
		e->key = copy;
		e->flags |= FQ_KEY_OWN;
	}
	e->state = FQ_IDLE;
}

/* done()'s move out of PROCESSING, shared by retry() and dead-letters. */
static void
ent_finish(struct sl_foldq *q, uint32_t idx)
{
	struct foldq_entry *e = ent(q, idx);

	q->nprocessing--;
	if (e->flags & FQ_DIRTY) {
		ent_clear(e, FQ_DIRTY);
		e->state = FQ_QUEUED;
		e->time_ns = fq_now(q);
		q->ndirty--;
		q->nqueued++;
		fifo_push(q, idx);
	} else if (e->flags & FQ_IN_HEAP) {
		e->state = FQ_WAITING;
		q->ndirty--;
		q->nwaiting++;
	} else if (e->failures > 0) {
		ent_make_idle(q, idx);
	} else {
		ent_remove(q, idx);
	}
}

/* ---- creation ---- */

static int
fq_opts_check(struct sl_foldq_opts *o)
{
	if ((unsigned)o->policy > SL_FOLD_KEEP_ALL)
		return -EINVAL;
	if (o->policy == SL_FOLD_MERGE && !o->merge)
		return -EINVAL;
	if (!(o->retry_rate >= 0.0) || o->retry_rate > 1e18)
		return -EINVAL;	/* also NaN */
	if (o->keep_max == 0)
		o->keep_max = FQ_DEFAULT_KEEP_MAX;
	if (o->backoff_base_ns == 0)
		o->backoff_base_ns = FQ_DEFAULT_BASE_NS;
	if (o->backoff_cap_ns == 0)
		o->backoff_cap_ns = FQ_DEFAULT_CAP_NS;
	if (o->backoff_cap_ns < o->backoff_base_ns)
		return -EINVAL;
	if (o->retry_rate > 0.0 && o->retry_burst == 0)
		o->retry_burst = FQ_DEFAULT_BURST;
	if (!o->clock)
		o->clock = sl_clock_system();
	return 0;
}

static uint64_t
splitmix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

struct sl_foldq *
sl_foldq_create(const struct sl_foldq_opts *opts)
{
	struct sl_foldq_opts o = {.retry_rate = FQ_DEFAULT_RATE};
	struct sl_foldq *q;
	int r;

	if (opts)
		o = *opts;
	r = fq_opts_check(&o);
	if (r < 0) {
		errno = -r;
		return NULL;
	}
	q = mi_zalloc(sizeof(*q));
	if (!q)
		goto nomem;
	q->bytes = sizeof(*q);
	q->o = o;
	q->clock = o.clock;
	q->deadline = UINT64_MAX;
	q->free_head = FQ_NIL;
	q->fifo_head = FQ_NIL;
	q->fifo_tail = FQ_NIL;
	/* xorshift must not start at zero; splitmix of any seed is not. */
	q->rng = splitmix(o.jitter_seed) | 1;
	q->tokens = (double)o.retry_burst;
	q->bucket_last = fq_now(q);
	q->bucket_bits = 6;
	q->buckets = fq_alloc(q, FQ_BUCKETS_MIN * sizeof(uint32_t));
	if (!q->buckets)
		goto nomem_q;
	memset(q->buckets, 0xff, FQ_BUCKETS_MIN * sizeof(uint32_t));
	return q;

nomem_q:
	mi_free(q);
nomem:
	errno = ENOMEM;
	return NULL;
}

void
sl_foldq_destroy(struct sl_foldq *q)
{
	struct foldq_work *w;

	if (!q)
		return;
	while ((w = q->busy) != NULL) {
		work_release_events(q, w);
		q->busy = w->next;
		mi_free(w);
	}
	while ((w = q->spare) != NULL) {
		q->spare = w->next;
		mi_free(w);
	}
	for (uint32_t idx = 0; idx < q->carved; idx++) {
		struct foldq_entry *e = ent(q, idx);

		if (e->state == FQ_FREE)
			continue;
		if (e->state == FQ_IDLE)
			ent_key_release(q, e);
		else
			pend_release(q, e);
	}
	for (uint32_t i = 0; i < q->nchunks; i++)
		mi_free(q->chunks[i]);
	mi_free(q->chunks);
	mi_free(q->buckets);
	mi_free(q->heap);
	mi_free(q);
}

/* ---- add ---- */

/* A key with nothing pending: take @ev as its first event and schedule
 * it, for now if @due is 0. */
static int
fq_add_first(struct sl_foldq *q, uint32_t idx, struct sl_event *ev,
	     uint64_t due)
{
	struct foldq_entry *e = ent(q, idx);

	e->pend = ev;
	e->key = sl_event_key(ev);
	if (e->state == FQ_PROCESSING) {
		q->ndirty++;
		q->st.dirties++;
		if (due)
			heap_insert(q, idx, due);
		else
			e->flags |= FQ_DIRTY;
		return SL_FOLDQ_DIRTY;
	}
	if (due) {
		e->state = FQ_WAITING;
		q->nwaiting++;
		heap_insert(q, idx, due);
	} else {
		e->state = FQ_QUEUED;
		e->time_ns = fq_now(q);
		q->nqueued++;
		fifo_push(q, idx);
	}
	return SL_FOLDQ_QUEUED;
}

/* A key with events pending: fold @ev in and bring the key forward if
 * this add is due sooner. */
static int
fq_add_fold(struct sl_foldq *q, uint32_t idx, struct sl_event *ev,
	    uint64_t due)
{
	struct foldq_entry *e = ent(q, idx);
	int r = pend_add(q, e, ev);

	if (r < 0)
		return r;
	q->st.folds++;
	if (e->state == FQ_PROCESSING)
		q->st.dirties++;
	if (!(e->flags & FQ_IN_HEAP))
		return e->state == FQ_PROCESSING ? SL_FOLDQ_DIRTY
						 : SL_FOLDQ_FOLDED;
	if (due) {
		heap_advance(q, idx, due);
	} else if (e->state == FQ_PROCESSING) {
		heap_remove(q, idx);
		e->flags |= FQ_DIRTY;
	} else {
		heap_remove(q, idx);
		e->state = FQ_QUEUED;
		e->time_ns = fq_now(q);
		q->nwaiting--;
		q->nqueued++;
		fifo_push(q, idx);
	}
	return e->state == FQ_PROCESSING ? SL_FOLDQ_DIRTY : SL_FOLDQ_FOLDED;
}

static int
fq_add(struct sl_foldq *q, struct sl_event *ev, uint64_t due)
{
	const char *key = sl_event_key(ev);
	uint32_t idx;
	int r;

	if (SL_UNLIKELY(q->shut)) {
		sl_event_unref(ev);
		return -ESHUTDOWN;
	}
	idx = table_find(q, ev->hash, key, ev->key_len);
	if (idx != FQ_NIL && ent_pending(ent(q, idx))) {
		r = fq_add_fold(q, idx, ev, due);
		goto out;
	}

	/* A key that becomes pending: the limit applies, and a new one
	 * needs an entry (and a waiting one a heap slot). */
	if (q->o.max_pending &&
	    (size_t)q->nqueued + q->nwaiting + q->ndirty >= q->o.max_pending)
		return -EAGAIN;
	if (due && (idx == FQ_NIL || ent(q, idx)->state != FQ_PROCESSING) &&
	    !heap_reserve(q))
		return -ENOMEM;
	if (idx == FQ_NIL) {
		struct foldq_entry *e;

		idx = ent_alloc(q);
		if (idx == FQ_NIL)
			return -ENOMEM;
		e = ent(q, idx);
		e->hash = ev->hash;
		e->key_len = ev->key_len;
		e->failures = 0;
		e->flags = 0;
		e->state = FQ_IDLE;
		table_insert(q, idx);
	} else if (ent(q, idx)->state == FQ_IDLE) {
		ent_key_release(q, ent(q, idx));
	}
	r = fq_add_first(q, idx, ev, due);
out:
	if (r > 0)
		q->st.adds++;
	return r;
}

int
sl_foldq_add(struct sl_foldq *q, struct sl_event *e)
{
	return fq_add(q, e, 0);
}

int
sl_foldq_add_after(struct sl_foldq *q, struct sl_event *e, uint64_t delay_ns)
{
	uint64_t due;

	if (delay_ns == 0 || q->shut)
		return fq_add(q, e, 0);
	if (delay_ns > FQ_DELAY_MAX)
		delay_ns = FQ_DELAY_MAX;
	due = sat_add(fq_now(q), delay_ns);	/* >= 1: never "now" */
	return fq_add(q, e, due);
}

/* ---- get ---- */

/* Move keys due by @until: waiting ones to the queue (queued since their
 * due time), deferred adds of processing ones to dirty. */
static void
fq_promote(struct sl_foldq *q, uint64_t now, uint64_t until)
{
	while (q->heap_len && heap_due(q, 0) <= until) {
		uint32_t idx = q->heap[0];
		struct foldq_entry *e = ent(q, idx);

		heap_remove(q, idx);
		if (e->state == FQ_PROCESSING) {
			e->flags |= FQ_DIRTY;
			continue;
		}
		if (e->time_ns > now)
			e->time_ns = now;
		e->state = FQ_QUEUED;
		q->nwaiting--;
		q->nqueued++;
		fifo_push(q, idx);
	}
	heap_shrink(q);
}

/* Hand @e's pending events to @w as an item. */
static void
work_fill(struct foldq_work *w, struct foldq_entry *e)
{
	struct sl_foldq_item *it = &w->item;

	it->key = e->key;
	it->key_len = e->key_len;
	it->hash = e->hash;
	it->attempts = e->failures;
	it->queued_ns = e->time_ns;
	it->entry_ = e;
	if (e->flags & FQ_PEND_LIST) {
		w->list = e->pend;
		w->one = NULL;
		list_straighten(w->list);
		it->events = w->list->ev;
		it->nevents = w->list->n;
	} else {
		w->list = NULL;
		w->one = e->pend;
		it->events = &w->one;
		it->nevents = 1;
	}
	e->pend = NULL;
	ent_clear(e, FQ_PEND_LIST);
}

struct sl_foldq_item *
sl_foldq_get(struct sl_foldq *q)
{
	struct foldq_work *w;
	uint32_t idx;

	if (q->heap_len && (!q->shut || q->drain)) {
		uint64_t now = fq_now(q);

		fq_promote(q, now, now);
	}
	if (q->fifo_head == FQ_NIL)
		return NULL;
	if (!heap_reserve(q))
		goto nomem;
	w = work_get(q);
	if (!w)
		goto nomem;

	idx = fifo_pop(q);
	w->idx = idx;
	work_fill(w, ent(q, idx));
	ent(q, idx)->state = FQ_PROCESSING;
	q->nqueued--;
	q->nprocessing++;
	q->st.gets++;
	return &w->item;

nomem:
	errno = ENOMEM;
	return NULL;
}

void
sl_foldq_done(struct sl_foldq *q, struct sl_foldq_item *it)
{
	struct foldq_work *w = work_check(it, "sl_foldq_done");

	/* First the entry, whose key may still point into the events. */
	ent_finish(q, w->idx);
	work_release_events(q, w);
	work_put(q, w);
	q->st.dones++;
}

/* ---- retry ---- */

static uint64_t
fq_xorshift(struct sl_foldq *q)
{
	uint64_t x = q->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	q->rng = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* base * 2^failures, saturating at the cap, jittered by up to 10%. */
static uint64_t
fq_backoff(struct sl_foldq *q, uint32_t failures)
{
	uint64_t base = q->o.backoff_base_ns;
	uint64_t cap = q->o.backoff_cap_ns;
	uint64_t d, j;

	if (failures >= 64 || base > (cap >> failures))
		d = cap;
	else
		d = base << failures;
	if (d > FQ_DELAY_MAX)
		d = FQ_DELAY_MAX;
	if (!q->o.jitter)
		return d;
	j = d / 10;
	return d - j + fq_xorshift(q) % (2 * j + 1);
}

/*
 * The bucket's delay for one more retry: take a token, and if none is
 * left, wait until the bucket has refilled the debt (tokens may go
 * negative: each retry reserves the next token not yet promised, as
 * golang.org/x/time/rate's Reserve does).
 */
static uint64_t
fq_bucket(struct sl_foldq *q, uint64_t now)
{
	double rate = q->o.retry_rate;
	double wait;

	if (rate <= 0.0)
		return 0;
	if (now > q->bucket_last) {
		q->tokens += (double)(now - q->bucket_last) * rate / 1e9;
		if (q->tokens > (double)q->o.retry_burst)
			q->tokens = (double)q->o.retry_burst;
		q->bucket_last = now;
	}
	q->tokens -= 1.0;
	if (q->tokens >= 0.0)
		return 0;
	wait = -q->tokens * 1e9 / rate + 0.5;
	return wait >= (double)FQ_DELAY_MAX ? FQ_DELAY_MAX : (uint64_t)wait;
}

/* Give the item's events back to its entry, under anything added since
 * (which is newer).  Never fails: KEEP_ALL drops the oldest instead. */
static void
fq_take_back(struct sl_foldq *q, struct foldq_work *w,
	     struct foldq_entry *e)
{
	void *newer = e->pend;
	bool newer_list = e->flags & FQ_PEND_LIST;

	e->pend = w->list ? (void *)w->list : (void *)w->one;
	e->flags = (uint8_t)((e->flags & ~FQ_PEND_LIST) |
			     (w->list ? FQ_PEND_LIST : 0));
	w->list = NULL;
	w->one = NULL;

	if (!newer) {
		q->ndirty++;
	} else if (q->o.policy != SL_FOLD_KEEP_ALL) {
		e->pend = fold_pair(q, e->pend, newer);
	} else if (!newer_list) {
		pend_append(q, e, newer, true);
	} else {
		struct foldq_list *l = newer;

		for (uint32_t i = 0; i < l->n; i++)
			pend_append(q, e, list_at(l, i), true);
		list_free(q, l);
	}
	ent_rekey(e);
}

static uint64_t
fq_dead_letter(struct sl_foldq *q, struct foldq_work *w, const char *reason)
{
	struct foldq_entry *e = ent(q, w->idx);

	if (q->o.dead)
		q->o.dead(&w->item, reason, q->o.dead_arg);
	e->failures = 0;
	q->st.dead++;
	ent_finish(q, w->idx);
	work_release_events(q, w);
	work_put(q, w);
	return UINT64_MAX;
}

/* A drain's retry comes due no later than halfway to its deadline, so
 * the key gets another try while there is time left. */
static uint64_t
fq_within_deadline(const struct sl_foldq *q, uint64_t now, uint64_t delay)
{
	uint64_t half = q->deadline > now ? (q->deadline - now) / 2 : 0;

	return delay < half ? delay : half;
}

uint64_t
sl_foldq_retry(struct sl_foldq *q, struct sl_foldq_item *it,
	       const char *reason)
{
	struct foldq_work *w = work_check(it, "sl_foldq_retry");
	struct foldq_entry *e = ent(q, w->idx);
	uint64_t now, delay, bucket, due;

	if ((q->shut && !q->drain) ||
	    (q->o.max_attempts && e->failures >= q->o.max_attempts - 1))
		return fq_dead_letter(q, w, reason);

	now = fq_now(q);
	delay = fq_backoff(q, e->failures);
	bucket = fq_bucket(q, now);
	if (bucket > delay)
		delay = bucket;
	if (q->drain && q->deadline != UINT64_MAX)
		delay = fq_within_deadline(q, now, delay);
	if (e->failures < UINT32_MAX)
		e->failures++;
	q->st.retries++;

	fq_take_back(q, w, e);
	due = sat_add(now, delay);
	if (e->flags & FQ_DIRTY) {
		due = now;
	} else if (e->flags & FQ_IN_HEAP) {
		heap_advance(q, w->idx, due);
		due = e->time_ns;
	} else if (delay == 0) {
		e->flags |= FQ_DIRTY;
	} else {
		heap_insert(q, w->idx, due);	/* room by I5 */
	}
	ent_finish(q, w->idx);
	work_put(q, w);
	/* A deferred add may be overdue until the next get() moves it. */
	return due > now ? due - now : 0;
}

/* ---- failures ---- */

void
sl_foldq_forget(struct sl_foldq *q, const char *key, size_t len)
{
	uint32_t idx = table_find(q, sl_key_hash(key, len), key, len);

	if (idx == FQ_NIL)
		return;
	ent(q, idx)->failures = 0;
	if (ent(q, idx)->state == FQ_IDLE)
		ent_remove(q, idx);
}

unsigned
sl_foldq_failures(struct sl_foldq *q, const char *key, size_t len)
{
	uint32_t idx = table_find(q, sl_key_hash(key, len), key, len);

	return idx == FQ_NIL ? 0 : ent(q, idx)->failures;
}

/* ---- shutdown and state ---- */

uint64_t
sl_foldq_next_due(struct sl_foldq *q)
{
	return q->heap_len ? heap_due(q, 0) : UINT64_MAX;
}

void
sl_foldq_shutdown(struct sl_foldq *q, bool drain)
{
	q->shut = true;
	if (!drain || q->drain)
		return;
	q->drain = true;
	fq_promote(q, fq_now(q), UINT64_MAX);
}

void
sl_foldq_set_deadline(struct sl_foldq *q, uint64_t deadline)
{
	q->deadline = deadline;
}

bool
sl_foldq_shutting_down(const struct sl_foldq *q)
{
	return q->shut;
}

bool
sl_foldq_drained(const struct sl_foldq *q)
{
	return q->shut && q->nqueued == 0 && q->nprocessing == 0 &&
	       (!q->drain || q->nwaiting == 0);
}

void
sl_foldq_stats_get(const struct sl_foldq *q, struct sl_foldq_stats *out)
{
	*out = q->st;
	out->queued = q->nqueued;
	out->processing = q->nprocessing;
	out->waiting = q->nwaiting;
	out->keys = q->nentries;
	out->bytes = q->bytes;
}

size_t
sl_foldq_len(const struct sl_foldq *q)
{
	return q->nqueued;
}
