/* SPDX-License-Identifier: MIT */
/*
 * Events: a kind, a key and a payload, stamped on ingest.
 *
 * An event is one allocation: the header below, then the kind, the key and
 * the payload back to back.  Decoders build it straight from the receive
 * buffer, so its bytes are copied once after the kernel's copy.  One event
 * may be queued on several routes at once: it is reference-counted and
 * immutable once built.
 */
#ifndef SLUICE_ROUTER_EVENT_H
#define SLUICE_ROUTER_EVENT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/base.h"

/* Limits; docs/protocol.md says what happens past each. */
#define SL_KIND_MAX 255u
#define SL_KEY_MAX 4096u
#define SL_PAYLOAD_MAX_DEFAULT (1u << 20)

struct sl_event {
	uint64_t ts_ns;		/* ingest time, sl_now_ns()'s clock */
	uint64_t seq;		/* ingest order, unique per router */
	uint64_t hash;		/* of the key (XXH3, 64 bits) */
	_Atomic uint32_t refs;
	uint16_t kind_len;
	uint16_t key_len;
	uint32_t payload_len;
	uint32_t pad_;
	char data[];		/* kind, key, payload */
};

static inline const char *
sl_event_kind(const struct sl_event *e)
{
	return e->data;
}

static inline const char *
sl_event_key(const struct sl_event *e)
{
	return e->data + e->kind_len;
}

static inline const char *
sl_event_payload(const struct sl_event *e)
{
	return e->data + e->kind_len + e->key_len;
}

/**
 * sl_event_alloc() - an event with room for the given lengths, refs = 1,
 * hash, ts and seq zero.  The caller fills data[] and then calls
 * sl_event_seal() to compute the hash.
 * Return: the event, or NULL (ENOMEM, or EINVAL for lengths past limits).
 */
struct sl_event *sl_event_alloc(size_t kind_len, size_t key_len,
				size_t payload_len);

/* sl_event_new() - alloc, copy the three parts in, seal. */
struct sl_event *sl_event_new(const char *kind, size_t kind_len,
			      const char *key, size_t key_len,
			      const void *payload, size_t payload_len);

/* sl_event_seal() - compute the key's hash once data[] is filled. */
void sl_event_seal(struct sl_event *e);

/* The hash sl_event_seal() uses, for looking keys up without an event. */
uint64_t sl_key_hash(const char *key, size_t len);

static inline struct sl_event *
sl_event_ref(struct sl_event *e)
{
	atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
	return e;
}

/* sl_event_unref() - drop a reference; frees the event at zero. */
void sl_event_unref(struct sl_event *e);

/* Bytes the event occupies (header + data), for memory accounting. */
static inline size_t
sl_event_size(const struct sl_event *e)
{
	return sizeof(*e) + e->kind_len + e->key_len + e->payload_len;
}

#endif /* SLUICE_ROUTER_EVENT_H */
