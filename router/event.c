/* SPDX-License-Identifier: MIT */
/* Events: allocation, hashing, reference counts. */
#include <errno.h>
#include <string.h>

#include <mimalloc.h>
#include <xxhash.h>

#include "router/event.h"

struct sl_event *
sl_event_alloc(size_t kind_len, size_t key_len, size_t payload_len)
{
	struct sl_event *e;

	if (kind_len > SL_KIND_MAX || key_len > SL_KEY_MAX ||
	    payload_len > UINT32_MAX - sizeof(*e) - SL_KIND_MAX - SL_KEY_MAX) {
		errno = EINVAL;
		return NULL;
	}
	e = mi_malloc(sizeof(*e) + kind_len + key_len + payload_len);
	if (!e)
		return NULL;
	e->ts_ns = 0;
	e->seq = 0;
	e->hash = 0;
	atomic_init(&e->refs, 1);
	e->kind_len = (uint16_t)kind_len;
	e->key_len = (uint16_t)key_len;
	e->payload_len = (uint32_t)payload_len;
	e->pad_ = 0;
	return e;
}

uint64_t
sl_key_hash(const char *key, size_t len)
{
	/* XXH3: fast on short keys, and well mixed in every bit, so shard
	 * and table indices can both be cut from one hash. */
	return XXH3_64bits(key, len);
}

void
sl_event_seal(struct sl_event *e)
{
	e->hash = sl_key_hash(sl_event_key(e), e->key_len);
}

struct sl_event *
sl_event_new(const char *kind, size_t kind_len, const char *key,
	     size_t key_len, const void *payload, size_t payload_len)
{
	struct sl_event *e = sl_event_alloc(kind_len, key_len, payload_len);

	if (!e)
		return NULL;
	memcpy(e->data, kind, kind_len);
	memcpy(e->data + kind_len, key, key_len);
	if (payload_len)
		memcpy(e->data + kind_len + key_len, payload, payload_len);
	sl_event_seal(e);
	return e;
}

void
sl_event_unref(struct sl_event *e)
{
	if (!e)
		return;
	if (atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) == 1)
		mi_free(e);
}
