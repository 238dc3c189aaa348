/* SPDX-License-Identifier: MIT */
/*
 * The plug-in interface: a custom reconciler in a shared object.
 *
 * A plug-in exports three functions with these names and types, and the
 * ABI version it was built against:
 *
 *	const unsigned sluice_plugin_abi = SLUICE_PLUGIN_ABI;
 *	int  sluice_plugin_init(const char *config, void **state);
 *	int  sluice_plugin_reconcile(void *state,
 *				     const struct sluice_plugin_item *item);
 *	void sluice_plugin_close(void *state);
 *
 * and optionally `const unsigned sluice_plugin_flags`.  init and close run
 * once; reconcile runs on worker tasks, concurrently for different keys,
 * never twice at once for one key.  Each returns 0 or a negative errno
 * value; a failed reconcile is retried with backoff (-ETIMEDOUT meaning
 * "the outcome is unknown").  Everything the item points to is valid only
 * during the call.
 *
 * A reconcile that may block its thread (a blocking client library, disk
 * I/O) must say so with SLUICE_PLUGIN_BLOCKING: each call then runs in a
 * blocking section, so the processor is handed to another thread and
 * keeps running other tasks meanwhile.  Without the flag a reconcile must
 * return quickly.
 */
#ifndef SLUICE_ROUTER_PLUGIN_H
#define SLUICE_ROUTER_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#define SLUICE_PLUGIN_ABI 1u
#define SLUICE_PLUGIN_BLOCKING 1u

struct sluice_plugin_event {
	const char *kind;
	size_t kind_len;
	const char *payload;
	size_t payload_len;
	uint64_t ts_ns;		/* ingest time (CLOCK_MONOTONIC) */
	uint64_t seq;		/* ingest order */
};

struct sluice_plugin_item {
	const char *key;
	size_t key_len;
	const struct sluice_plugin_event *events;	/* oldest first */
	unsigned nevents;
	unsigned attempts;	/* failures before this call */
};

typedef int (*sluice_plugin_init_fn)(const char *config, void **state);
typedef int (*sluice_plugin_reconcile_fn)(
	void *state, const struct sluice_plugin_item *item);
typedef void (*sluice_plugin_close_fn)(void *state);

#endif /* SLUICE_ROUTER_PLUGIN_H */
