/* SPDX-License-Identifier: MIT */
/*
 * Verify mode's bookkeeping.  The delivered version of a key only rises:
 * a compare-and-swap loop raises it, so two sink tasks delivering the
 * same key at once (a resend racing a new connection) cannot lower it.
 */
#include "tools/load/verify.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int
load_verify_init(struct load_verify *v, uint64_t nkeys)
{
	memset(v, 0, sizeof(*v));
	v->nkeys = nkeys;
	v->sent = calloc(nkeys, sizeof(*v->sent));
	v->seen = calloc(nkeys, sizeof(*v->seen));
	if (!v->sent || !v->seen) {
		load_verify_fini(v);
		return -ENOMEM;
	}
	return 0;
}

void
load_verify_fini(struct load_verify *v)
{
	free(v->sent);
	free(v->seen);
	v->sent = NULL;
	v->seen = NULL;
}

static enum load_seen
verify_raise(struct load_verify *v, uint64_t key, uint32_t version)
{
	uint32_t old =
	        atomic_load_explicit(&v->seen[key], memory_order_relaxed);

	for (;;) {
		if (version == old)
			return LOAD_SEEN_REPEAT;
		if (version < old)
			return LOAD_SEEN_OLDER;
		if (atomic_compare_exchange_weak_explicit(
		            &v->seen[key], &old, version, memory_order_relaxed,
		            memory_order_relaxed))
			return LOAD_SEEN_NEW;
	}
}

enum load_seen
load_verify_seen(struct load_verify *v, uint64_t key, uint32_t version)
{
	enum load_seen what;

	if (key >= v->nkeys) {
		what = LOAD_SEEN_BAD_KEY;
	} else if (!version ||
	           version > atomic_load_explicit(&v->sent[key],
	                                          memory_order_acquire)) {
		/* Pairs with the release in load_verify_sent(): the lane
		 * stored the version before the bytes left, so a version
		 * that came back is never above what we read here. */
		what = LOAD_SEEN_UNSENT;
	} else {
		what = verify_raise(v, key, version);
	}
	atomic_fetch_add_explicit(&v->counts[what], 1, memory_order_relaxed);
	return what;
}

void
load_verify_check(struct load_verify *v, struct load_verify_result *out)
{
	memset(out, 0, sizeof(*out));
	for (uint64_t k = 0; k < v->nkeys; k++) {
		uint32_t sent =
		        atomic_load_explicit(&v->sent[k], memory_order_acquire);
		uint32_t seen =
		        atomic_load_explicit(&v->seen[k], memory_order_relaxed);

		if (!sent)
			continue;
		out->keys_sent++;
		if (seen == sent) {
			out->ok++;
		} else if (!seen) {
			if (out->missing < LOAD_VERIFY_SAMPLES)
				out->missing_keys[out->missing] = k;
			out->missing++;
		} else {
			if (out->stale < LOAD_VERIFY_SAMPLES)
				out->stale_keys[out->stale] = k;
			out->stale++;
		}
	}
	for (int i = 0; i <= LOAD_SEEN_BAD_KEY; i++)
		out->seen[i] = atomic_load_explicit(&v->counts[i],
		                                    memory_order_relaxed);
	out->malformed =
	        atomic_load_explicit(&v->malformed, memory_order_relaxed);
}

uint64_t
load_verify_pending(struct load_verify *v)
{
	uint64_t n = 0;

	for (uint64_t k = 0; k < v->nkeys; k++)
		if (atomic_load_explicit(&v->seen[k], memory_order_relaxed) !=
		    atomic_load_explicit(&v->sent[k], memory_order_acquire))
			n++;
	return n;
}
