/* SPDX-License-Identifier: MIT */
/*
 * Terminal modes and painting; term.h says what and why.
 */
#include "tools/top/term.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define ESC "\x1b"
/* Enter the alternate screen and hide the cursor; and the reverse. */
#define TERM_SETUP ESC "[?1049h" ESC "[?25l" ESC "[H" ESC "[2J"
#define TERM_RESTORE ESC "[0m" ESC "[?25h" ESC "[?1049l"

static int
write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

void
top_term_resize(struct top_term *t)
{
	struct winsize ws;

	t->rows = 24;
	t->cols = 80;
	if (ioctl(t->out_fd, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) {
		t->rows = ws.ws_row;
		t->cols = ws.ws_col;
	}
}

int
top_term_enter(struct top_term *t, int in_fd, int out_fd)
{
	struct termios raw;

	t->in_fd = in_fd;
	t->out_fd = out_fd;
	t->keys = false;
	if (isatty(in_fd) && tcgetattr(in_fd, &t->saved) == 0) {
		/* Keys arrive one by one, unechoed; Ctrl-C still raises
		 * SIGINT (ISIG stays), which the caller reads from its
		 * signalfd. */
		raw = t->saved;
		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		raw.c_cc[VMIN] = 0;
		raw.c_cc[VTIME] = 0;
		if (tcsetattr(in_fd, TCSAFLUSH, &raw) == 0)
			t->keys = true;
	}
	t->active = true;
	top_term_resize(t);
	return write_all(out_fd, TERM_SETUP, strlen(TERM_SETUP));
}

void
top_term_leave(struct top_term *t)
{
	if (!t->active)
		return;
	write_all(t->out_fd, TERM_RESTORE, strlen(TERM_RESTORE));
	if (t->keys)
		tcsetattr(t->in_fd, TCSAFLUSH, &t->saved);
	t->keys = false;
	t->active = false;
}

static const char *
style_on(enum top_style st)
{
	switch (st) {
	case TOP_STYLE_TITLE:
		return ESC "[7m"; /* reverse video, as a title bar */
	case TOP_STYLE_HEADING:
		return ESC "[1m";
	case TOP_STYLE_WARN:
		return ESC "[1;31m";
	case TOP_STYLE_NOTE:
		return ESC "[2m";
	case TOP_STYLE_PLAIN:
		break;
	}
	return "";
}

struct frame {
	char *p;
	size_t len, cap;
	int err;
};

static void
frame_put(struct frame *f, const char *s, size_t n)
{
	if (f->err)
		return;
	if (f->len + n > f->cap) {
		size_t cap = (f->cap ? f->cap * 2 : 8192) + n;
		char *p = realloc(f->p, cap);

		if (!p) {
			f->err = -ENOMEM;
			return;
		}
		f->p = p;
		f->cap = cap;
	}
	memcpy(f->p + f->len, s, n);
	f->len += n;
}

static void
frame_str(struct frame *f, const char *s)
{
	frame_put(f, s, strlen(s));
}

/* One row: the text cut to the width, anything unprintable as '?'; a
 * title bar fills the whole width. */
static void
frame_line(struct frame *f, const struct top_term *t, enum top_style st,
	   const char *text)
{
	size_t i, cols = t->cols;

	frame_str(f, style_on(st));
	for (i = 0; text[i] && i < cols; i++) {
		char c = text[i] >= 0x20 && text[i] < 0x7f ? text[i] : '?';

		frame_put(f, &c, 1);
	}
	for (; st == TOP_STYLE_TITLE && i < cols; i++)
		frame_put(f, " ", 1);
	if (st != TOP_STYLE_PLAIN)
		frame_str(f, ESC "[0m");
	frame_str(f, ESC "[K");
}

int
top_term_paint(struct top_term *t, const struct top_screen *s)
{
	struct frame f = {0};
	size_t rows = t->rows, shown = s->n;
	char more[64];
	int r;

	if (shown > rows) {
		/* The last row says how much did not fit. */
		shown = rows ? rows - 1 : 0;
		snprintf(more, sizeof(more),
			 "... %zu more lines: enlarge the window",
			 s->n - shown);
	}
	frame_str(&f, ESC "[H");
	for (size_t i = 0; i < shown; i++) {
		frame_line(&f, t, s->lines[i].style, s->lines[i].text);
		if (i + 1 < rows)
			frame_str(&f, "\r\n");
	}
	if (shown < s->n && rows)
		frame_line(&f, t, TOP_STYLE_NOTE, more);
	frame_str(&f, ESC "[J");
	r = f.err ? f.err : write_all(t->out_fd, f.p, f.len);
	free(f.p);
	return r;
}
