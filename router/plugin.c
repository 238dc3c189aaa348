/* SPDX-License-Identifier: MIT */
/* The plug-in sink: a reconciler loaded from a shared object. */
#include <dlfcn.h>
#include <errno.h>
#include <string.h>

#include <mimalloc.h>

#include "core/runtime.h"
#include "router/plugin.h"
#include "router/router_internal.h"

struct plugin_sink {
	void *dl;
	void *state;
	unsigned flags;
	sluice_plugin_reconcile_fn reconcile;
	sluice_plugin_close_fn close;
};

struct plugin_call {
	struct plugin_sink *p;
	const struct sluice_plugin_item *item;
	int result;
};

static void *
plugin_call_blocking(void *arg)
{
	struct plugin_call *c = arg;

	c->result = c->p->reconcile(c->p->state, c->item);
	return NULL;
}

static int
plugin_reconcile(void *state, const struct sl_foldq_item *it,
		 struct sl_context *ctx)
{
	struct plugin_sink *p = state;
	struct sluice_plugin_event small[4], *ev = small;
	struct sluice_plugin_item item = {
		.key = it->key,
		.key_len = it->key_len,
		.nevents = it->nevents,
		.attempts = it->attempts,
	};
	struct plugin_call call = {.p = p, .item = &item};

	(void)ctx;
	if (it->nevents > SL_ARRAY_SIZE(small)) {
		ev = mi_malloc(it->nevents * sizeof(*ev));
		if (!ev)
			return -ENOMEM;
	}
	for (unsigned i = 0; i < it->nevents; i++) {
		const struct sl_event *e = it->events[i];

		ev[i] = (struct sluice_plugin_event){
			.kind = sl_event_kind(e),
			.kind_len = e->kind_len,
			.payload = sl_event_payload(e),
			.payload_len = e->payload_len,
			.ts_ns = e->ts_ns,
			.seq = e->seq,
		};
	}
	item.events = ev;
	if (p->flags & SLUICE_PLUGIN_BLOCKING)
		sl_blocking_call(plugin_call_blocking, &call);
	else
		plugin_call_blocking(&call);
	if (ev != small)
		mi_free(ev);
	return call.result > 0 ? -EINVAL : call.result;
}

static void
plugin_close(void *state)
{
	struct plugin_sink *p = state;

	if (p->close)
		p->close(p->state);
	dlclose(p->dl);
	mi_free(p);
}

static const struct sluice_sink_ops plugin_ops = {
	.type = "plugin",
	.reconcile = plugin_reconcile,
	.close = plugin_close,
};

struct sluice_sink *
sluice_sink_plugin(const char *path, const char *config)
{
	struct plugin_sink *p;
	struct sluice_sink *s;
	const unsigned *abi, *flags;
	sluice_plugin_init_fn init;
	int r;

	p = mi_zalloc(sizeof(*p));
	if (!p)
		return NULL;
	p->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!p->dl) {
		sl__router_log("error", "msg=\"cannot load plug-in\" path=%s "
					"err=\"%s\"",
			       path, dlerror());
		mi_free(p);
		errno = ENOENT;
		return NULL;
	}
	abi = dlsym(p->dl, "sluice_plugin_abi");
	flags = dlsym(p->dl, "sluice_plugin_flags");
	*(void **)&init = dlsym(p->dl, "sluice_plugin_init");
	*(void **)&p->reconcile = dlsym(p->dl, "sluice_plugin_reconcile");
	*(void **)&p->close = dlsym(p->dl, "sluice_plugin_close");
	if (!abi || *abi != SLUICE_PLUGIN_ABI || !init || !p->reconcile) {
		sl__router_log("error",
			       "msg=\"not a plug-in for this version\" "
			       "path=%s abi=%u want=%u",
			       path, abi ? *abi : 0u, SLUICE_PLUGIN_ABI);
		dlclose(p->dl);
		mi_free(p);
		errno = EINVAL;
		return NULL;
	}
	p->flags = flags ? *flags : 0;
	r = init(config ? config : "", &p->state);
	if (r) {
		sl__router_log("error",
			       "msg=\"plug-in init failed\" path=%s err=\"%s\"",
			       path, sl_strerror(r < 0 ? r : -EINVAL));
		dlclose(p->dl);
		mi_free(p);
		errno = r < 0 ? -r : EINVAL;
		return NULL;
	}
	s = sluice_sink_new(&plugin_ops, p);
	if (!s)
		plugin_close(p);
	return s;
}
