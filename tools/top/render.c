/* SPDX-License-Identifier: MIT */
/*
 * The screen's layout: a title, two summary lines, three tables and a
 * note.  Numbers are right-aligned in fixed columns and shortened with
 * SI suffixes (k, M, G) so that a busy daemon does not widen the table;
 * totals below a million are written out in full.
 */
#include "tools/top/render.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define LINE_MAX_BYTES 512
/* Names longer than this are cut, the last shown byte replaced by '+'. */
#define NAME_MAX_WIDTH 24

/* ---- the screen ---- */

void
top_screen_init(struct top_screen *s)
{
	memset(s, 0, sizeof(*s));
}

void
top_screen_fini(struct top_screen *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->lines[i].text);
	free(s->lines);
	top_screen_init(s);
}

static int
screen_push(struct top_screen *s, enum top_style style, const char *text)
{
	char *copy;

	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 32;
		struct top_line *n = realloc(s->lines, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		s->lines = n;
		s->cap = cap;
	}
	copy = strdup(text);
	if (!copy)
		return -ENOMEM;
	s->lines[s->n].style = style;
	s->lines[s->n].text = copy;
	s->n++;
	return 0;
}

int
top_screen_add(struct top_screen *s, enum top_style style, const char *fmt, ...)
{
	char line[LINE_MAX_BYTES];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	return screen_push(s, style, line);
}

void
top_screen_print(const struct top_screen *s, FILE *out)
{
	for (size_t i = 0; i < s->n; i++)
		fprintf(out, "%s\n", s->lines[i].text);
}

/* ---- numbers ---- */

/*
 * Three significant digits, without an exponent, for 0 <= v < 1000.  The
 * limits sit where printf's rounding would add a digit (9.996 prints as
 * "10.00"), so a column never holds four significant digits.
 */
static void
fmt_sig3(char *buf, size_t len, double v, const char *unit)
{
	if (v < 9.995)
		snprintf(buf, len, "%.2f%s", v, unit);
	else if (v < 99.95)
		snprintf(buf, len, "%.1f%s", v, unit);
	else
		snprintf(buf, len, "%.0f%s", v, unit);
}

/* 1234567 as "1.23M".  The unit steps up at 999.5, not 1000, for the
 * same reason: 999.7k would otherwise print as "1000k". */
static void
fmt_si(char *buf, size_t len, double v)
{
	static const char *const units[] = {"", "k", "M", "G", "T", "P"};
	unsigned u = 0;

	while (v >= 999.5 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1000;
		u++;
	}
	fmt_sig3(buf, len, v, units[u]);
}

char *
top_fmt_count(char *buf, size_t len, double v)
{
	if (isnan(v))
		snprintf(buf, len, "-");
	else if (v < 1e6)
		snprintf(buf, len, "%.0f", v);
	else
		fmt_si(buf, len, v);
	return buf;
}

/* Rates keep a decimal below 100, where a slow route's 0.5/s matters,
 * and drop it above, where it is noise. */
char *
top_fmt_rate(char *buf, size_t len, double v)
{
	if (isnan(v))
		snprintf(buf, len, "-");
	else if (v == 0)
		snprintf(buf, len, "0");
	else if (v < 99.95)
		snprintf(buf, len, "%.1f", v);
	else if (v < 1e5)
		snprintf(buf, len, "%.0f", v);
	else
		fmt_si(buf, len, v);
	return buf;
}

char *
top_fmt_seconds(char *buf, size_t len, double v, int above)
{
	static const struct {
		double below, scale;
		const char *unit;
	} units[] = {
		{1e-6, 1e9, "ns"},
		{1e-3, 1e6, "us"},
		{1, 1e3, "ms"},
		{1e3, 1, "s"},
	};
	char num[32];
	size_t u = 0;

	if (isnan(v) || v == 0) {
		snprintf(buf, len, isnan(v) ? "-" : "0");
		return buf;
	}
	while (u + 1 < sizeof(units) / sizeof(units[0]) &&
	       v >= units[u].below * 0.9995)
		u++;
	if (v >= 1e3)
		snprintf(num, sizeof(num), "%.0fs", v);
	else
		fmt_sig3(num, sizeof(num), v * units[u].scale, units[u].unit);
	snprintf(buf, len, "%s%s", above ? ">" : "", num);
	return buf;
}

static char *
fmt_pct(char *buf, size_t len, double ratio)
{
	if (isnan(ratio))
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.1f%%", ratio * 100);
	return buf;
}

static char *
fmt_duration(char *buf, size_t len, double s)
{
	unsigned long long t = (unsigned long long)s;

	if (isnan(s) || s < 0)
		snprintf(buf, len, "-");
	else if (t >= 86400)
		snprintf(buf, len, "%llud%02lluh", t / 86400, t % 86400 / 3600);
	else if (t >= 3600)
		snprintf(buf, len, "%lluh%02llum", t / 3600, t % 3600 / 60);
	else if (t >= 60)
		snprintf(buf, len, "%llum%02llus", t / 60, t % 60);
	else
		snprintf(buf, len, "%llus", t);
	return buf;
}

/* A name as shown: printable ASCII only, cut to @width with a '+'. */
static void
fmt_name(char *buf, size_t width, const char *name)
{
	size_t len = strlen(name), i;

	for (i = 0; i < len && i < width; i++)
		buf[i] = name[i] >= 0x20 && name[i] < 0x7f ? name[i] : '?';
	if (len > width)
		buf[width - 1] = '+';
	buf[i] = '\0';
}

/* ---- tables ---- */

#define CELLS_MAX 12
#define CELL_BYTES 24
#define NCOLS(a) ((unsigned)(sizeof(a) / sizeof((a)[0])))

struct table {
	const char *name_title;
	const char *const *titles;
	const int *widths;
	unsigned ncols;
	int name_width;
};

static int
table_width_of_names(const struct top_row *rows, size_t n, const char *title)
{
	size_t w = strlen(title);

	for (size_t i = 0; i < n; i++)
		if (strlen(rows[i].name) > w)
			w = strlen(rows[i].name);
	return (int)(w > NAME_MAX_WIDTH ? NAME_MAX_WIDTH : w);
}

static int
table_line(struct top_screen *out, enum top_style style, const struct table *t,
	   const char *name, char cells[][CELL_BYTES])
{
	char line[LINE_MAX_BYTES];
	size_t at;

	at = (size_t)snprintf(line, sizeof(line), "%-*s", t->name_width, name);
	for (unsigned c = 0; c < t->ncols && at < sizeof(line); c++)
		at += (size_t)snprintf(line + at, sizeof(line) - at, " %*s",
				       t->widths[c], cells[c]);
	return screen_push(out, style, line);
}

static int
table_heading(struct top_screen *out, const struct table *t)
{
	char cells[CELLS_MAX][CELL_BYTES];

	for (unsigned c = 0; c < t->ncols; c++)
		snprintf(cells[c], CELL_BYTES, "%s", t->titles[c]);
	return table_line(out, TOP_STYLE_HEADING, t, t->name_title, cells);
}

static int
table_row(struct top_screen *out, const struct table *t, const char *name,
	  char cells[][CELL_BYTES])
{
	char shown[NAME_MAX_WIDTH + 1];

	fmt_name(shown, (size_t)t->name_width, name);
	return table_line(out, TOP_STYLE_PLAIN, t, shown, cells);
}

static int
render_routes(struct top_screen *out, const struct top_view *v)
{
	static const char *const titles[] = {
		"DEPTH",   "BUSY",   "WAIT", "IN/S",    "OUT/S",    "FOLD%",
		"RETRY/S", "FAIL/S", "DEAD", "P99 LAT", "P99 SINK",
	};
	static const int widths[] = {7, 5, 5, 7, 7, 6, 7, 6, 6, 8, 8};
	const struct top_row *rows = v->rows[TOP_ROUTES];
	size_t n = v->nrows[TOP_ROUTES];
	struct table t = {"ROUTE", titles, widths, NCOLS(titles), 0};
	int r;

	_Static_assert(NCOLS(titles) == NCOLS(widths), "a width per title");
	_Static_assert(NCOLS(titles) <= CELLS_MAX, "the cells fit");

	t.name_width = table_width_of_names(rows, n, t.name_title);
	r = table_heading(out, &t);
	for (size_t i = 0; !r && i < n; i++) {
		const struct top_row *row = &rows[i];
		char c[CELLS_MAX][CELL_BYTES];

		top_fmt_count(c[0], CELL_BYTES, row->now[TOP_R_PENDING]);
		top_fmt_count(c[1], CELL_BYTES, row->now[TOP_R_PROCESSING]);
		top_fmt_count(c[2], CELL_BYTES, row->now[TOP_R_WAITING]);
		top_fmt_rate(c[3], CELL_BYTES, row->rate[TOP_R_ADDS]);
		top_fmt_rate(c[4], CELL_BYTES, row->rate[TOP_R_RECONCILES]);
		fmt_pct(c[5], CELL_BYTES, row->fold_ratio);
		top_fmt_rate(c[6], CELL_BYTES, row->rate[TOP_R_RETRIES]);
		top_fmt_rate(c[7], CELL_BYTES, row->rate[TOP_R_FAILURES]);
		top_fmt_count(c[8], CELL_BYTES, row->now[TOP_R_DEAD]);
		for (unsigned h = 0; h < TOP_NHISTS; h++) {
			char *cell = c[9 + h];

			if (row->p99_err[h] == -EINVAL)
				snprintf(cell, CELL_BYTES, "?");
			else if (row->p99_err[h])
				snprintf(cell, CELL_BYTES, "-");
			else
				top_fmt_seconds(cell, CELL_BYTES,
						row->p99[h].value,
						row->p99[h].above);
		}
		r = table_row(out, &t, row->name, c);
	}
	/* Say so rather than show a bare heading: a daemon between a
	 * reload that removed every route and the next is a real state. */
	if (!r && !n)
		r = top_screen_add(out, TOP_STYLE_PLAIN, "(no routes)");
	return r;
}

static int
render_procs(struct top_screen *out, const struct top_view *v)
{
	static const char *const titles[] = {
		"RUNQ",      "RUN/S",     "PARKS/S", "STEALS/S",
		"WAKEUPS/S", "SUBMITS/S", "HOGS",
	};
	static const int widths[] = {5, 8, 8, 8, 9, 9, 5};
	static const unsigned rates[] = {
		TOP_P_TASKS_RUN, TOP_P_PARKS,   TOP_P_STEALS,
		TOP_P_WAKEUPS,   TOP_P_SUBMITS,
	};
	const struct top_row *rows = v->rows[TOP_PROCS];
	size_t n = v->nrows[TOP_PROCS];
	struct table t = {"P", titles, widths, NCOLS(titles), 0};
	int r;

	_Static_assert(NCOLS(titles) == NCOLS(widths), "a width per title");
	_Static_assert(NCOLS(titles) <= CELLS_MAX, "the cells fit");

	t.name_width = table_width_of_names(rows, n, t.name_title);
	r = table_heading(out, &t);
	for (size_t i = 0; !r && i < n; i++) {
		const struct top_row *row = &rows[i];
		char c[CELLS_MAX][CELL_BYTES];

		top_fmt_count(c[0], CELL_BYTES, row->now[TOP_P_RUNQ]);
		for (unsigned k = 0; k < 5; k++)
			top_fmt_rate(c[1 + k], CELL_BYTES, row->rate[rates[k]]);
		top_fmt_count(c[6], CELL_BYTES, row->now[TOP_P_HOGS]);
		r = table_row(out, &t, row->name, c);
	}
	return r;
}

static int
render_inputs(struct top_screen *out, const struct top_view *v)
{
	static const char *const titles[] = {
		"EVENTS/S",  "BYTES/S",   "CONNS",
		"MALFORMED", "OVERSIZED", "CLOSED",
	};
	static const int widths[] = {8, 8, 6, 9, 9, 6};
	const struct top_row *rows = v->rows[TOP_INPUTS];
	size_t n = v->nrows[TOP_INPUTS];
	struct table t = {"INPUT", titles, widths, NCOLS(titles), 0};
	int r;

	_Static_assert(NCOLS(titles) == NCOLS(widths), "a width per title");
	_Static_assert(NCOLS(titles) <= CELLS_MAX, "the cells fit");

	if (!n)
		return 0;
	t.name_width = table_width_of_names(rows, n, t.name_title);
	r = table_heading(out, &t);
	for (size_t i = 0; !r && i < n; i++) {
		const struct top_row *row = &rows[i];
		char c[CELLS_MAX][CELL_BYTES];

		top_fmt_rate(c[0], CELL_BYTES, row->rate[TOP_I_EVENTS]);
		top_fmt_rate(c[1], CELL_BYTES, row->rate[TOP_I_BYTES]);
		top_fmt_count(c[2], CELL_BYTES, row->now[TOP_I_CONNS]);
		top_fmt_count(c[3], CELL_BYTES, row->now[TOP_I_MALFORMED]);
		top_fmt_count(c[4], CELL_BYTES, row->now[TOP_I_OVERSIZED]);
		top_fmt_count(c[5], CELL_BYTES, row->now[TOP_I_CLOSED_BAD]);
		r = table_row(out, &t, row->name, c);
	}
	return r;
}

/* ---- the summary lines ---- */

/* Draining wins over ready: a draining daemon reports not ready too, and
 * the reason is the useful part. */
static const char *
state_word(const struct top_view *v)
{
	if (v->now[TOP_G_DRAINING] > 0)
		return "  draining";
	if (isnan(v->now[TOP_G_READY]))
		return "";
	return v->now[TOP_G_READY] > 0 ? "  ready" : "  NOT READY";
}

static int
render_title(struct top_screen *out, const struct top_view *v,
	     const struct top_render_info *info)
{
	char line[LINE_MAX_BYTES], a[32], b[32];
	size_t at;

	at = (size_t)snprintf(
		line, sizeof(line), "sluice-top  %s  up %s%s", info->addr,
		fmt_duration(a, sizeof(a), v->uptime_s), state_word(v));
	if (at < sizeof(line) && !isnan(v->now[TOP_G_TASKS]))
		at += (size_t)snprintf(
			line + at, sizeof(line) - at, "  tasks %s",
			top_fmt_count(a, sizeof(a), v->now[TOP_G_TASKS]));
	if (at < sizeof(line) && !isnan(v->now[TOP_G_RELOADS_OK]))
		at += (size_t)snprintf(
			line + at, sizeof(line) - at,
			"  reloads %s ok, %s refused",
			top_fmt_count(a, sizeof(a), v->now[TOP_G_RELOADS_OK]),
			top_fmt_count(b, sizeof(b),
				      v->now[TOP_G_RELOADS_REFUSED]));
	if (at < sizeof(line) && info->clock)
		snprintf(line + at, sizeof(line) - at, "  %s", info->clock);
	return screen_push(out, TOP_STYLE_TITLE, line);
}

/* "1.2k/s (345)": a counter's rate with its total. */
static char *
fmt_rate_total(char *buf, size_t len, double rate, double total)
{
	char r[CELL_BYTES], t[CELL_BYTES];

	snprintf(buf, len, "%s/s (%s)", top_fmt_rate(r, sizeof(r), rate),
		 top_fmt_count(t, sizeof(t), total));
	return buf;
}

static int
render_summary(struct top_screen *out, const struct top_view *v)
{
	char a[64], b[64], c[64], d[64];
	int r;

	r = top_screen_add(
		out, TOP_STYLE_PLAIN,
		"events   in %s   out %s   (in: ingested, out: "
		"reconciled, over all routes)",
		fmt_rate_total(a, sizeof(a), v->rate[TOP_G_INGESTED],
			       v->now[TOP_G_INGESTED]),
		fmt_rate_total(b, sizeof(b), v->out_rate, v->out_total));
	if (r)
		return r;

	top_fmt_rate(c, sizeof(c), v->failures_rate);
	top_fmt_count(d, sizeof(d), v->dead_total);
	r = top_screen_add(
		out, TOP_STYLE_PLAIN,
		"errors   parse %s   unmatched %s   sink failures %s/s   "
		"dead letters %s",
		fmt_rate_total(a, sizeof(a), v->rate[TOP_G_MALFORMED],
			       v->now[TOP_G_MALFORMED]),
		fmt_rate_total(b, sizeof(b), v->rate[TOP_G_UNMATCHED],
			       v->now[TOP_G_UNMATCHED]),
		c, d);
	if (r)
		return r;

	top_fmt_count(a, sizeof(a), v->now[TOP_G_IO_IN_USE]);
	top_fmt_count(b, sizeof(b), v->now[TOP_G_IO_BUFFERS]);
	top_fmt_count(d, sizeof(d), v->now[TOP_G_DEAD_DROPPED]);
	return top_screen_add(out, TOP_STYLE_PLAIN,
			      "buffers  %s of %s in use   ring empty %s   "
			      "dead letters dropped %s",
			      a, b,
			      fmt_rate_total(c, sizeof(c),
					     v->rate[TOP_G_IO_ENOBUFS],
					     v->now[TOP_G_IO_ENOBUFS]),
			      d);
}

static int
render_notes(struct top_screen *out, const struct top_view *v)
{
	char w[32];
	int r = 0;

	if (v->bad_lines)
		r = top_screen_add(out, TOP_STYLE_WARN,
				   "warning: %zu malformed metric line%s "
				   "skipped (line %zu: %s)",
				   v->bad_lines, v->bad_lines == 1 ? "" : "s",
				   v->first_bad_line,
				   v->first_bad_why ? v->first_bad_why : "?");
	if (!r && v->restarted)
		r = top_screen_add(out, TOP_STYLE_WARN,
				   "the daemon restarted since the last "
				   "scrape: rates resume at the next one");
	if (r)
		return r;
	if (v->rates) {
		top_fmt_seconds(w, sizeof(w), v->window_s, 0);
		return top_screen_add(out, TOP_STYLE_NOTE,
				      "rates, FOLD%% and P99 cover the last "
				      "%s; P99 is interpolated linearly "
				      "within its histogram bucket",
				      w);
	}
	return top_screen_add(out, TOP_STYLE_NOTE,
			      "one scrape: no rates yet; FOLD%% and P99 "
			      "cover the time since the daemon started; P99 "
			      "is interpolated linearly within its histogram "
			      "bucket");
}

int
top_render(struct top_screen *out, const struct top_view *v,
	   const struct top_render_info *info)
{
	int r;

	r = render_title(out, v, info);
	if (!r)
		r = render_summary(out, v);
	if (!r)
		r = top_screen_add(out, TOP_STYLE_PLAIN, "%s", "");
	if (!r)
		r = render_routes(out, v);
	if (!r)
		r = top_screen_add(out, TOP_STYLE_PLAIN, "%s", "");
	if (!r)
		r = render_procs(out, v);
	if (!r && v->nrows[TOP_INPUTS])
		r = top_screen_add(out, TOP_STYLE_PLAIN, "%s", "");
	if (!r)
		r = render_inputs(out, v);
	if (!r)
		r = top_screen_add(out, TOP_STYLE_PLAIN, "%s", "");
	if (!r)
		r = render_notes(out, v);
	return r;
}

int
top_render_unreachable(struct top_screen *out,
		       const struct top_render_info *info, const char *why,
		       double retry_s, unsigned failures, const char *last_ok)
{
	char every[32];
	int r;

	top_fmt_seconds(every, sizeof(every), retry_s, 0);
	r = top_screen_add(out, TOP_STYLE_TITLE, "sluice-top  %s%s%s",
			   info->addr, info->clock ? "  " : "",
			   info->clock ? info->clock : "");
	if (!r)
		r = top_screen_add(out, TOP_STYLE_PLAIN, "%s", "");
	if (!r)
		r = top_screen_add(out, TOP_STYLE_WARN, "%s", why);
	if (!r)
		r = top_screen_add(out, TOP_STYLE_PLAIN,
				   "retrying every %s (%u failed in a row; "
				   "last good scrape: %s); q quits",
				   every, failures, last_ok ? last_ok : "none");
	return r;
}
