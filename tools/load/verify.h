/* SPDX-License-Identifier: MIT */
/*
 * Verify mode's bookkeeping: for every key, the last version sent and the
 * highest version a sink delivered ("reconciled").
 *
 * The lanes record a version as sent just before its bytes go to the
 * socket, so a delivered version is never above the recorded one unless
 * something made it up.  A sink may deliver a key's state more than once
 * (the tcp sink resends after a failed write) and a resent window after a
 * reconnect may bring an older version back; both are counted and are not
 * errors.  At the end a key is:
 *
 *   ok       its last version sent was delivered
 *   stale    a version was delivered, but not the last one sent
 *   missing  nothing was delivered for it at all
 *
 * and only ok is right: with every event accepted and the router drained,
 * folding may skip versions but must deliver each key's last.
 *
 * Sent versions are written by the key's own lane and read by the sink
 * tasks; delivered versions are raised by any sink task.  All of it is
 * atomic and lock-free, and any task may call any of these.
 */
#ifndef SLUICE_LOAD_VERIFY_H
#define SLUICE_LOAD_VERIFY_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define LOAD_VERIFY_SAMPLES 8

enum load_seen {
	LOAD_SEEN_NEW,     /* a version above any delivered before */
	LOAD_SEEN_REPEAT,  /* the highest delivered version, again */
	LOAD_SEEN_OLDER,   /* below the highest delivered */
	LOAD_SEEN_UNSENT,  /* above the last version sent: made up */
	LOAD_SEEN_BAD_KEY, /* not one of ours */
};

struct load_verify {
	uint64_t nkeys;
	_Atomic uint32_t *sent;
	_Atomic uint32_t *seen;
	_Atomic uint64_t counts[LOAD_SEEN_BAD_KEY + 1];
	_Atomic uint64_t malformed; /* records that did not parse */
};

/* load_verify_init() - bookkeeping for @nkeys keys.  0 or -ENOMEM. */
int load_verify_init(struct load_verify *v, uint64_t nkeys);
void load_verify_fini(struct load_verify *v);

/* load_verify_sent() - @key's version @version is about to be sent. */
static inline void
load_verify_sent(struct load_verify *v, uint64_t key, uint32_t version)
{
	atomic_store_explicit(&v->sent[key], version, memory_order_release);
}

/**
 * load_verify_seen() - a sink delivered @version of @key.
 * Return: what it was; counted in counts[].
 */
enum load_seen load_verify_seen(struct load_verify *v, uint64_t key,
                                uint32_t version);

/* load_verify_bad() - count a record that could not be read at all. */
static inline void
load_verify_bad(struct load_verify *v)
{
	atomic_fetch_add_explicit(&v->malformed, 1, memory_order_relaxed);
}

struct load_verify_result {
	uint64_t keys_sent; /* keys with at least one event sent */
	uint64_t ok, stale, missing;
	/* The first few keys found stale or missing, for the report. */
	uint64_t stale_keys[LOAD_VERIFY_SAMPLES];
	uint64_t missing_keys[LOAD_VERIFY_SAMPLES];
	/* counts[] and malformed, copied. */
	uint64_t seen[LOAD_SEEN_BAD_KEY + 1];
	uint64_t malformed;
};

/* load_verify_check() - compare every key's sent and delivered versions. */
void load_verify_check(struct load_verify *v, struct load_verify_result *out);

/* load_verify_pending() - keys whose last version is not delivered yet. */
uint64_t load_verify_pending(struct load_verify *v);

#endif /* SLUICE_LOAD_VERIFY_H */
