/* SPDX-License-Identifier: MIT */
/*
 * sluice-top's screen as text: a view (model.h) laid out as lines, each
 * with a style the terminal painter turns into escapes and --once prints
 * as plain text.  Nothing here knows about terminals: the lines are the
 * same either way, which is what lets the tests check the screen.
 *
 * Bytes in names (route, input, processor) outside printable ASCII are
 * shown as '?', so a label value cannot send escapes to the terminal,
 * and a column's width is its byte count.
 */
#ifndef SLUICE_TOP_RENDER_H
#define SLUICE_TOP_RENDER_H

#include <stddef.h>
#include <stdio.h>

#include "tools/top/model.h"

enum top_style {
	TOP_STYLE_PLAIN,
	TOP_STYLE_TITLE,   /* the first line */
	TOP_STYLE_HEADING, /* a table's column names */
	TOP_STYLE_WARN,    /* something is wrong */
	TOP_STYLE_NOTE,    /* how to read the figures */
};

struct top_line {
	enum top_style style;
	char *text; /* no newline */
};

struct top_screen {
	struct top_line *lines;
	size_t n, cap;
};

struct top_render_info {
	const char *addr;  /* the admin endpoint, for the title */
	const char *clock; /* the time of the scrape, "12:00:01"; or NULL */
};

/* An empty screen; cannot fail. */
void top_screen_init(struct top_screen *s);
/* Free every line and leave the screen empty. */
void top_screen_fini(struct top_screen *s);

/**
 * top_screen_add() - append a line, printf-style; longer than 511 bytes
 * is cut there.
 * Return: 0; -ENOMEM.
 */
int top_screen_add(struct top_screen *s, enum top_style style, const char *fmt,
		   ...) __attribute__((format(printf, 3, 4)));

/**
 * top_render() - append the lines of @v to @out: the title, events and
 * errors, the route, processor and input tables, and a note saying what
 * window the rates cover and how P99 is estimated.
 * Return: 0; -ENOMEM (@out holds what fitted).
 */
int top_render(struct top_screen *out, const struct top_view *v,
	       const struct top_render_info *info);

/**
 * top_render_unreachable() - the lines shown while the endpoint cannot
 * be scraped: what failed and that sluice-top keeps trying.
 * @why: the client's message.
 * @failures: failed scrapes in a row.
 * @last_ok: the clock of the last good scrape, or NULL if none yet.
 * Return: 0; -ENOMEM.
 */
int top_render_unreachable(struct top_screen *out,
			   const struct top_render_info *info, const char *why,
			   double retry_s, unsigned failures,
			   const char *last_ok);

/* The lines of @s, each ending in '\n', with no escapes. */
void top_screen_print(const struct top_screen *s, FILE *out);

/* Number formats used in the tables, exposed for the tests.  Each writes
 * at most @len bytes with the NUL and returns @buf.  NaN prints "-". */
char *top_fmt_count(char *buf, size_t len, double v);
char *top_fmt_rate(char *buf, size_t len, double v);
char *top_fmt_seconds(char *buf, size_t len, double v, int above);

#endif /* SLUICE_TOP_RENDER_H */
