/* SPDX-License-Identifier: MIT */
/*
 * What the libFuzzer targets share: a check that aborts with its reason
 * (assert() is compiled out of release builds, and a fuzzer must never
 * miss a broken invariant), and event comparison.
 */
#ifndef SLUICE_TESTS_FUZZ_H
#define SLUICE_TESTS_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: invariant broken: %s\n",       \
				__FILE__, __LINE__, #cond);                    \
			abort();                                               \
		}                                                              \
	} while (0)

static inline bool
fuzz_bytes_equal(const char *a, size_t a_len, const char *b, size_t b_len)
{
	return a_len == b_len && (a_len == 0 || memcmp(a, b, a_len) == 0);
}

/* Same kind, key and payload, and a hash that is the key's. */
static inline bool
fuzz_events_equal(const struct sl_event *a, const struct sl_event *b)
{
	return fuzz_bytes_equal(sl_event_kind(a), a->kind_len,
				sl_event_kind(b), b->kind_len) &&
	       fuzz_bytes_equal(sl_event_key(a), a->key_len, sl_event_key(b),
				b->key_len) &&
	       fuzz_bytes_equal(sl_event_payload(a), a->payload_len,
				sl_event_payload(b), b->payload_len) &&
	       a->hash == b->hash;
}

/*
 * An event built from the fuzzer's bytes: the first two pick the kind's
 * and the key's lengths, the rest fill kind, key and payload in turn.
 * NULL when there are too few bytes for a non-empty kind and key.
 */
static inline struct sl_event *
fuzz_event_from(const uint8_t *data, size_t size)
{
	size_t kind_len, key_len;
	struct sl_event *e;

	if (size < 4)
		return NULL;
	kind_len = 1 + data[0] % 32;
	key_len = 1 + data[1] % 64;
	data += 2;
	size -= 2;
	if (kind_len + key_len > size)
		return NULL;
	e = sl_event_new((const char *)data, kind_len,
			 (const char *)data + kind_len, key_len,
			 data + kind_len + key_len, size - kind_len - key_len);
	FUZZ_CHECK(e != NULL);
	return e;
}

#endif /* SLUICE_TESTS_FUZZ_H */
