/* SPDX-License-Identifier: MIT */
/*
 * A program that embeds the router the way a user would: built against the
 * installed headers and pkg-config file only, it feeds versioned events for
 * a few keys, drains, and checks that every key's last reconcile carried
 * its final version.  Exits 0 and prints "embed: ok" when all did.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/runtime.h"
#include "router/sluice.h"

#define EMBED_KEYS 16
#define EMBED_VERSIONS 200

static _Atomic unsigned long embed_last[EMBED_KEYS];
static int embed_failed;

static int
embed_reconcile(void *arg, const struct sl_foldq_item *item,
		struct sl_context *ctx)
{
	const struct sl_event *e = item->events[item->nevents - 1];
	char key[16], val[16];
	unsigned k;

	(void)arg;
	(void)ctx;
	/* Neither the key nor the payload ends in a NUL. */
	if (item->key_len >= sizeof(key) || e->payload_len >= sizeof(val))
		return -EINVAL;
	memcpy(key, item->key, item->key_len);
	key[item->key_len] = '\0';
	memcpy(val, sl_event_payload(e), e->payload_len);
	val[e->payload_len] = '\0';
	if (sscanf(key, "k%u", &k) != 1 || k >= EMBED_KEYS)
		return -EINVAL;
	atomic_store(&embed_last[k], strtoul(val, NULL, 10));
	return 0;
}

static void
embed_main(void *arg)
{
	struct sluice_route route = {
		.name = "all",
		.match = SL_MATCH_ANY,
		.is_default = true,
		.workers = 2,
	};
	struct sluice *r;
	char err[256] = "";

	(void)arg;
	route.sink = sluice_sink_callback(embed_reconcile, NULL);
	if (sluice_create(NULL, &r) ||
	    sluice_set_routes(r, &route, 1, err, sizeof(err))) {
		fprintf(stderr, "embed: cannot start the router: %s\n", err);
		embed_failed = 1;
		return;
	}

	for (unsigned v = 1; v <= EMBED_VERSIONS; v++)
		for (unsigned k = 0; k < EMBED_KEYS; k++) {
			char key[16], val[16];
			int kl = snprintf(key, sizeof(key), "k%u", k);
			int vl = snprintf(val, sizeof(val), "%u", v);

			if (sluice_feed(r, NULL, "set", 3, key, (size_t)kl,
					val, (size_t)vl) != 1)
				embed_failed = 1;
		}

	if (sluice_shutdown(r, true, UINT64_MAX))
		embed_failed = 1;
	sluice_destroy(r);
}

int
main(void)
{
	int rc = sl_runtime_run(NULL, embed_main, NULL);

	if (rc) {
		fprintf(stderr, "embed: runtime: %s\n", sl_strerror(rc));
		return 1;
	}
	for (unsigned k = 0; k < EMBED_KEYS; k++)
		if (atomic_load(&embed_last[k]) != EMBED_VERSIONS) {
			fprintf(stderr, "embed: key k%u ended at version %lu\n",
				k, atomic_load(&embed_last[k]));
			embed_failed = 1;
		}
	if (embed_failed)
		return 1;
	printf("embed: ok\n");
	return 0;
}
