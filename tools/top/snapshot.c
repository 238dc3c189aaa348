/* SPDX-License-Identifier: MIT */
/*
 * Scrape, parse, boil down; and two snapshots into a screen.
 */
#include "tools/top/snapshot.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/base.h"

void
top_snapshot_init(struct top_snapshot *s)
{
	memset(s, 0, sizeof(*s));
	top_prom_init(&s->set);
}

void
top_snapshot_fini(struct top_snapshot *s)
{
	top_state_fini(&s->st);
	top_prom_fini(&s->set);
	top_snapshot_init(s);
}

int
top_snapshot_from_text(struct top_snapshot *s, const char *text, size_t len,
		       uint64_t mono_ns, double wall)
{
	int r;

	top_snapshot_fini(s);
	r = top_prom_parse(&s->set, text, len);
	if (!r)
		r = top_state_build(&s->st, &s->set);
	if (r) {
		top_snapshot_fini(s);
		return r;
	}
	s->mono_ns = mono_ns;
	s->wall = wall;
	s->valid = true;
	return 0;
}

int
top_snapshot_fetch(struct top_snapshot *s, const struct top_http_request *rq,
		   char *err, size_t errlen)
{
	struct top_http_response rs;
	struct timespec ts;
	int r;

	top_snapshot_fini(s);
	r = top_http_get(rq, &rs);
	if (r) {
		snprintf(err, errlen, "%s", rs.err);
		top_http_response_fini(&rs);
		return r;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	r = top_snapshot_from_text(s, rs.body, rs.body_len, sl_now_ns(),
				   (double)ts.tv_sec + ts.tv_nsec / 1e9);
	top_http_response_fini(&rs);
	if (r)
		snprintf(err, errlen, "cannot hold the metrics: %s",
			 sl_strerror(r));
	return r;
}

int
top_snapshot_render(struct top_screen *out, const struct top_snapshot *prev,
		    const struct top_snapshot *cur,
		    const struct top_render_info *info)
{
	const struct top_state *ps = NULL;
	struct top_view v;
	double dt = 0;
	int r;

	if (prev && prev->valid && cur->mono_ns > prev->mono_ns) {
		ps = &prev->st;
		dt = (double)(cur->mono_ns - prev->mono_ns) / 1e9;
	}
	r = top_view_build(&v, ps, &cur->st, dt, cur->wall);
	if (r)
		return r;
	r = top_render(out, &v, info);
	top_view_fini(&v);
	return r;
}
