/* SPDX-License-Identifier: MIT */
/*
 * One scrape of the admin endpoint, kept whole: the parsed samples, the
 * state boiled down from them (model.h), and when it was taken.  Two
 * snapshots make a screen.
 */
#ifndef SLUICE_TOP_SNAPSHOT_H
#define SLUICE_TOP_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tools/top/http.h"
#include "tools/top/model.h"
#include "tools/top/prom.h"
#include "tools/top/render.h"

struct top_snapshot {
	struct top_prom_set set;
	struct top_state st; /* points into @set */
	uint64_t mono_ns;    /* when the answer was in (sl_now_ns) */
	double wall;         /* the same moment, Unix seconds */
	bool valid;
};

/* An empty snapshot; cannot fail. */
void top_snapshot_init(struct top_snapshot *s);
/* Free what @s holds; it is empty again. */
void top_snapshot_fini(struct top_snapshot *s);

/**
 * top_snapshot_from_text() - fill @s from a metrics document taken at
 * @mono_ns / @wall.  What @s held before is freed first.
 * Return: 0; -ENOMEM (@s is then empty).
 */
int top_snapshot_from_text(struct top_snapshot *s, const char *text, size_t len,
			   uint64_t mono_ns, double wall);

/**
 * top_snapshot_fetch() - scrape @rq into @s (@rq->path is /metrics).
 * @err: on failure, the reason, for a person.
 * Return: 0; any error of top_http_get() (@s is then empty).
 */
int top_snapshot_fetch(struct top_snapshot *s,
		       const struct top_http_request *rq, char *err,
		       size_t errlen);

/**
 * top_snapshot_render() - the screen for @cur, with rates against @prev
 * (NULL or not valid: no rates).  Appends to @out.
 * Return: 0; -ENOMEM.
 */
int top_snapshot_render(struct top_screen *out, const struct top_snapshot *prev,
			const struct top_snapshot *cur,
			const struct top_render_info *info);

#endif /* SLUICE_TOP_SNAPSHOT_H */
