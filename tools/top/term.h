/* SPDX-License-Identifier: MIT */
/*
 * The terminal for sluice-top's live view, with ANSI escapes only: the
 * alternate screen (so the shell's screen comes back on exit), a hidden
 * cursor, keys read one at a time without echo, and a painter that
 * redraws the whole screen in one write, each line cut to the width.
 * Any terminal that xterm's escapes work on will do: xterm, the Linux
 * console, tmux and screen.
 */
#ifndef SLUICE_TOP_TERM_H
#define SLUICE_TOP_TERM_H

#include <stdbool.h>
#include <termios.h>

#include "tools/top/render.h"

struct top_term {
	int in_fd, out_fd;
	bool keys;   /* @in_fd is a terminal we set to raw mode */
	bool active; /* between top_term_enter() and top_term_leave() */
	struct termios saved;
	unsigned rows, cols;
};

/* Take over the terminal on @out_fd, keys from @in_fd when that is a
 * terminal too.  Return: 0; a negative errno (nothing changed). */
int top_term_enter(struct top_term *t, int in_fd, int out_fd);

/* Give the terminal back as it was; safe to call twice. */
void top_term_leave(struct top_term *t);

/* Read the window's size again (after SIGWINCH); 24x80 when unknown. */
void top_term_resize(struct top_term *t);

/* Draw @s: as many lines as fit, the last replaced by a count of those
 * cut off when there are more.  Return: 0; a negative errno. */
int top_term_paint(struct top_term *t, const struct top_screen *s);

#endif /* SLUICE_TOP_TERM_H */
