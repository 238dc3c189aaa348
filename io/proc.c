/* SPDX-License-Identifier: MIT */
/*
 * Each processor's I/O state: its ring of provided receive buffers.
 *
 * Multishot receives do not name a buffer; the kernel picks the next one
 * from the processor's buffer ring when data arrives, so a connection with
 * nothing to read holds no memory.  The buffer goes back to the ring when
 * the reader is done with it.  Only the processor's own machine may add to
 * its ring (the tail is a plain store), so a reader on another processor
 * drops the buffer id into the owner's returns queue instead, and the
 * owner takes the ids back when it next needs buffers.
 *
 * When the ring runs dry a multishot receive ends with -ENOBUFS.  That is
 * not an error: the owner takes back returned buffers, or grows the ring
 * up to bufs_max, and arms the receive again.  When neither helps, the
 * receiver waits on the stall list and is re-armed as buffers come back;
 * meanwhile its data waits in the socket and the sender's window closes,
 * which is the back-pressure we want.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <mimalloc.h>

#include "core/ring.h"
#include "io/io_internal.h"

static struct sl_io_opts io_opts = {
	.buf_size = 4096,
	.bufs_initial = 256,
	.bufs_max = 4096,
};
/* Processors whose buffer rings exist now: the options are fixed while
 * any does, and free to change again once a runtime has ended. */
static _Atomic uint32_t io_rings_live;

int
sl_io_configure(const struct sl_io_opts *opts)
{
	struct sl_io_opts o = {4096, 256, 4096};

	if (opts) {
		o = *opts;
		if (!o.buf_size)
			o.buf_size = 4096;
		if (!o.bufs_initial)
			o.bufs_initial = 256;
		if (!o.bufs_max)
			o.bufs_max = 4096;
	}
	if (o.buf_size < 256 || o.buf_size > (1u << 20) ||
	    o.bufs_max > 32768 || o.bufs_initial > o.bufs_max)
		return -EINVAL;
	if (atomic_load(&io_rings_live))
		return -EBUSY;
	io_opts = o;
	return 0;
}

static unsigned
pow2_at_least(unsigned n)
{
	unsigned p = 1;

	while (p < n)
		p <<= 1;
	return p;
}

/* Put @bid in the ring's @i-th free slot, noting where (owner only). */
static void
io_ring_add(struct sl__io_proc *ip, uint16_t bid, int mask, unsigned i)
{
	uint16_t slot = (uint16_t)((ip->br->tail + i) & (unsigned)mask);

	ip->slot_bid[slot] = bid;
	ip->bid_slot[bid] = slot;
	io_uring_buf_ring_add(ip->br, ip->addr[bid], ip->buf_size, bid, mask,
			      (int)i);
}

/* Allocate @n more buffers and put them in the ring (owner only). */
static int
io_bufs_add(struct sl__io_proc *ip, unsigned n)
{
	size_t bytes = (size_t)n * ip->buf_size;
	int mask = io_uring_buf_ring_mask(ip->entries);
	char *mem;

	if (ip->nchunks == SL_ARRAY_SIZE(ip->chunks) ||
	    ip->nbufs + n > ip->entries)
		return -ENOSPC;
	mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return -errno;
	ip->chunks[ip->nchunks] = mem;
	ip->chunk_bytes[ip->nchunks] = bytes;
	ip->nchunks++;

	for (unsigned i = 0; i < n; i++) {
		uint16_t bid = (uint16_t)(ip->nbufs + i);

		ip->addr[bid] = mem + (size_t)i * ip->buf_size;
		io_ring_add(ip, bid, mask, i);
	}
	io_uring_buf_ring_advance(ip->br, (int)n);
	ip->nbufs += n;
	sl__io_stat_add_owner(&ip->st.bufs, n);
	return 0;
}

static void
io_buf_ring_put(struct sl__io_proc *ip, uint16_t bid)
{
	io_ring_add(ip, bid, io_uring_buf_ring_mask(ip->entries), 0);
	io_uring_buf_ring_advance(ip->br, 1);
}

/* Re-arm up to @n stalled receivers (owner only). */
static void
io_stalled_resume(struct sl__io_proc *ip, unsigned n)
{
	while (n-- && ip->stalled) {
		struct sl__io_stall *s = ip->stalled;

		sl__io_stall_remove(ip, s);
		s->resume(s, ip);
	}
}

void
sl__io_returns_drain(struct sl__io_proc *ip)
{
	uint16_t bids[64];
	unsigned n, total = 0;

	while ((n = sl_ring_dequeue_burst(ip->returns, bids, 64)) > 0) {
		int mask = io_uring_buf_ring_mask(ip->entries);

		for (unsigned i = 0; i < n; i++)
			io_ring_add(ip, bids[i], mask, i);
		io_uring_buf_ring_advance(ip->br, (int)n);
		total += n;
	}
	if (total && ip->stalled)
		io_stalled_resume(ip, total);
}

/* Posted by a returning processor when the owner has stalled receivers. */
static void
io_kick(struct sl__completion *c, int res, uint32_t flags)
{
	struct sl__io_proc *ip = SL_CONTAINER_OF(c, struct sl__io_proc, kick);

	(void)res;
	(void)flags;
	atomic_store_explicit(&ip->kick_posted, 0, memory_order_release);
	sl__io_returns_drain(ip);
}

void
sl__io_buf_put(struct sl__io_proc *ip, uint16_t bid)
{
	if (sl__proc_current() == ip->p) {
		io_buf_ring_put(ip, bid);
		atomic_fetch_sub_explicit(&ip->in_use, 1, memory_order_relaxed);
		if (ip->stalled)
			io_stalled_resume(ip, 1);
		return;
	}

	/*
	 * The queue holds every buffer id there is, so it cannot fill.  The
	 * id goes in before the buffer stops counting as in use, so that
	 * sl__io_buf_refill() never counts on a buffer that is on its way.
	 */
	sl_ring_try_enqueue(ip->returns, &bid);
	atomic_fetch_sub_explicit(&ip->in_use, 1, memory_order_release);
	SL_FENCE_SEQ_CST(); /* our id in the queue, then their stall count */
	if (atomic_load_explicit(&ip->nstalled, memory_order_relaxed) &&
	    !atomic_exchange_explicit(&ip->kick_posted, 1,
				      memory_order_acq_rel))
		sl__proc_post(ip->p, &ip->kick);
}

bool
sl__io_buf_refill(struct sl__io_proc *ip)
{
	unsigned before = ip->nbufs;
	uint16_t bid;
	bool got = false;

	sl__io_stat_add_owner(&ip->st.enobufs, 1);
	while (sl_ring_try_dequeue(ip->returns, &bid)) {
		io_buf_ring_put(ip, bid);
		got = true;
	}
	if (got)
		return true;

	/*
	 * Buffers may have gone back into the ring itself since the kernel
	 * found it empty (put by a reader on this processor, or drained from
	 * the returns queue by a kick), at a moment when no receiver was
	 * stalled to be resumed.  Stalling now would wait for a put that may
	 * never come.  A buffer the kernel took before this receive failed
	 * has been counted in by now, its completion having come first, so a
	 * buffer not counted as in use is in the ring: arm again.  (Should
	 * another receive have taken it meanwhile, the next -ENOBUFS comes
	 * after that receive's completion and finds the count right.)
	 */
	if (atomic_load_explicit(&ip->in_use, memory_order_acquire) <
	    (int64_t)ip->nbufs)
		return true;
	if (ip->nbufs < ip->entries) {
		unsigned n = ip->nbufs;

		if (n > ip->entries - ip->nbufs)
			n = ip->entries - ip->nbufs;
		if (io_bufs_add(ip, n) == 0) {
			sl__io_stat_add_owner(&ip->st.grows, 1);
			return ip->nbufs > before;
		}
	}
	return false;
}

void
sl__io_bufs_grow(struct sl__io_proc *ip)
{
	unsigned n = ip->nbufs;

	if (n > ip->entries - ip->nbufs)
		n = ip->entries - ip->nbufs;
	if (n && io_bufs_add(ip, n) == 0)
		sl__io_stat_add_owner(&ip->st.grows, 1);
}

void
sl__io_stall_add(struct sl__io_proc *ip, struct sl__io_stall *s)
{
	s->prev = NULL;
	s->next = ip->stalled;
	if (ip->stalled)
		ip->stalled->prev = s;
	ip->stalled = s;
	s->on_list = true;
	atomic_fetch_add_explicit(&ip->nstalled, 1, memory_order_relaxed);
	sl__io_stat_add_owner(&ip->st.stalls, 1);
	SL_FENCE_SEQ_CST(); /* our stall count, then their returned ids */
	if (sl_ring_maybe_nonempty(ip->returns))
		sl__io_returns_drain(ip);
}

void
sl__io_stall_remove(struct sl__io_proc *ip, struct sl__io_stall *s)
{
	if (!s->on_list)
		return;
	if (s->prev)
		s->prev->next = s->next;
	else
		ip->stalled = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->next = s->prev = NULL;
	s->on_list = false;
	atomic_fetch_sub_explicit(&ip->nstalled, 1, memory_order_relaxed);
}

void
sl__io_proc_fini(struct sl__proc *p)
{
	struct sl__io_proc *ip = p->io;

	if (!ip)
		return;
	p->io = NULL;
	if (ip->br) {
		io_uring_unregister_buf_ring(&p->ring, SL__IO_BGID);
		munmap(ip->br, ip->br_bytes);
		atomic_fetch_sub(&io_rings_live, 1);
	}
	for (unsigned i = 0; i < ip->nchunks; i++)
		munmap(ip->chunks[i], ip->chunk_bytes[i]);
	sl_ring_destroy(ip->returns);
	mi_free(ip->addr);
	mi_free(ip->slot_bid);
	mi_free(ip->bid_slot);
	mi_free(ip);
}

/*
 * Set up @ip's ring of provided buffers, on the first receive of its
 * processor: a processor that only sends or does file I/O never needs one.
 */
static int
io_bufs_setup(struct sl__io_proc *ip)
{
	struct sl__proc *p = ip->p;
	struct io_uring_buf_reg reg;
	int r;

	/* Counted first, so sl_io_configure() cannot change the options
	 * while they are being read. */
	atomic_fetch_add(&io_rings_live, 1);
	ip->buf_size = io_opts.buf_size;
	ip->entries = pow2_at_least(io_opts.bufs_max);
	ip->addr = mi_calloc(ip->entries, sizeof(*ip->addr));
	ip->slot_bid = mi_calloc(ip->entries, sizeof(*ip->slot_bid));
	ip->bid_slot = mi_calloc(ip->entries, sizeof(*ip->bid_slot));
	ip->returns = sl_ring_create(sizeof(uint16_t), ip->entries);
	ip->bundle = (p->ring.features & IORING_FEAT_RECVSEND_BUNDLE) &&
		     !getenv("SLUICE_NO_RECV_BUNDLE");
	if (!ip->addr || !ip->slot_bid || !ip->bid_slot || !ip->returns) {
		r = -ENOMEM;
		goto fail;
	}

	ip->br_bytes = ip->entries * sizeof(struct io_uring_buf);
	ip->br = mmap(NULL, ip->br_bytes, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ip->br == MAP_FAILED) {
		ip->br = NULL;
		r = -errno;
		goto fail;
	}
	io_uring_buf_ring_init(ip->br);
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (uint64_t)(uintptr_t)ip->br;
	reg.ring_entries = ip->entries;
	reg.bgid = SL__IO_BGID;
	r = io_uring_register_buf_ring(&p->ring, &reg, 0);
	if (r < 0) {
		munmap(ip->br, ip->br_bytes);
		ip->br = NULL;
		goto fail;
	}
	r = io_bufs_add(ip, io_opts.bufs_initial ? io_opts.bufs_initial : 1);
	if (r < 0)
		goto fail_registered;
	return 0;

fail_registered:
	io_uring_unregister_buf_ring(&p->ring, SL__IO_BGID);
	munmap(ip->br, ip->br_bytes);
	ip->br = NULL;
fail:
	sl_ring_destroy(ip->returns);
	ip->returns = NULL;
	mi_free(ip->addr);
	mi_free(ip->slot_bid);
	mi_free(ip->bid_slot);
	ip->addr = NULL;
	ip->slot_bid = ip->bid_slot = NULL;
	atomic_fetch_sub(&io_rings_live, 1);
	return r;
}

struct sl__io_proc *
sl__io_proc_of(struct sl__proc *p)
{
	struct sl__io_proc *ip = p->io;

	if (SL_LIKELY(ip))
		return ip;
	ip = mi_zalloc_aligned(sizeof(*ip), SL_FALSE_SHARING);
	if (!ip)
		return NULL;
	ip->p = p;
	ip->kick.fn = io_kick;
	p->io = ip;
	return ip;
}

struct sl__io_proc *
sl__io_proc_get(int *err)
{
	struct sl__proc *p = sl__proc_current();
	struct sl__io_proc *ip;
	int r;

	if (SL_UNLIKELY(!p)) {
		*err = -EPERM;
		return NULL;
	}
	ip = sl__io_proc_of(p);
	if (SL_UNLIKELY(!ip)) {
		*err = -ENOMEM;
		return NULL;
	}
	if (SL_LIKELY(ip->br))
		return ip;
	r = io_bufs_setup(ip);
	if (r < 0) {
		*err = r;
		return NULL;
	}
	return ip;
}

void
sl_io_stats_get(struct sl_io_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; i < sl__rt.nprocs; i++) {
		struct sl__proc *p = sl__rt.procs[i];
		struct sl__io_proc *ip = p ? p->io : NULL;

		if (!p)
			continue;
		out->submits += atomic_load_explicit(&p->st.submits,
						     memory_order_relaxed);
		if (!ip)
			continue;
		out->ops += atomic_load_explicit(&ip->st.ops,
						 memory_order_relaxed);
		out->cancels += atomic_load_explicit(&ip->st.cancels,
						     memory_order_relaxed);
		out->timeouts += atomic_load_explicit(&ip->st.timeouts,
						      memory_order_relaxed);
		out->enobufs += atomic_load_explicit(&ip->st.enobufs,
						     memory_order_relaxed);
		out->buf_grows += atomic_load_explicit(&ip->st.grows,
						       memory_order_relaxed);
		out->stalls += atomic_load_explicit(&ip->st.stalls,
						    memory_order_relaxed);
		out->recv_rearms += atomic_load_explicit(
			&ip->st.rearms, memory_order_relaxed);
		out->bufs_total += atomic_load_explicit(&ip->st.bufs,
							memory_order_relaxed);
		out->recv_bundles += atomic_load_explicit(
			&ip->st.bundles, memory_order_relaxed);
		out->bufs_in_use += (uint64_t)atomic_load_explicit(
			&ip->in_use, memory_order_relaxed);
	}
}

static _Atomic int inject_err;
static _Atomic unsigned inject_count;

void
sl__io_inject_sync_failure(int err, unsigned count)
{
	atomic_store(&inject_err, err);
	atomic_store(&inject_count, count);
}

int
sl__io_injected_sync_failure(void)
{
	unsigned n = atomic_load(&inject_count);

	while (n) {
		if (atomic_compare_exchange_weak(&inject_count, &n, n - 1))
			return atomic_load(&inject_err);
	}
	return 0;
}
