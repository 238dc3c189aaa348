/* SPDX-License-Identifier: MIT */
/*
 * sluice-top: a terminal view of a running sluiced, refreshed from its
 * admin endpoint's /metrics (docs/sluice-top.md).
 *
 * Three ways to run:
 *  - --once: scrape, wait an interval, scrape again, print the screen as
 *    plain text and exit (one scrape and no rates with --interval 0);
 *  - live on a terminal: the alternate screen, redrawn every interval;
 *  - live with stdout not a terminal: a plain screen every interval,
 *    separated by blank lines, for logs.
 *
 * The live loop waits in poll() on a signalfd, the keyboard and the
 * time of the next scrape.  Signals are blocked and read from the
 * signalfd, so they are handled in the loop, never in a handler: a
 * resize repaints, Ctrl-C, SIGTERM, SIGHUP and SIGQUIT end the loop and
 * the terminal is restored on the way out, Ctrl-Z gives the terminal
 * back before the process stops.  The signalfd also interrupts a scrape
 * in progress, so quitting never waits for a slow endpoint.
 *
 * Exit status: 0 done; 1 the endpoint could not be scraped (--once) or
 * the terminal could not be set up; 2 bad arguments.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "core/base.h"
#include "tools/top/opts.h"
#include "tools/top/snapshot.h"
#include "tools/top/term.h"

struct top_app {
	struct top_opts o;
	struct top_http_request rq;
	struct top_term term;
	bool tty;
	int sigfd;

	struct top_snapshot last, fresh; /* the good scrapes */
	char last_clock[16];             /* when @last was taken, "" if never */
	unsigned failures;               /* scrapes failed in a row */
	struct top_screen screen;        /* what is on show */
	uint64_t due;                    /* the next scrape, sl_now_ns() time */
	bool quit;
};

static void
clock_of(double wall, char *buf, size_t len)
{
	time_t t = (time_t)wall;
	struct tm tm;

	if (!localtime_r(&t, &tm) || !strftime(buf, len, "%H:%M:%S", &tm))
		snprintf(buf, len, "?");
}

static double
wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- --once ---- */

static int
run_once(struct top_app *a)
{
	struct top_render_info info = {.addr = a->o.admin};
	char err[TOP_HTTP_ERR_MAX];
	char when[16];
	int r;

	r = top_snapshot_fetch(&a->last, &a->rq, err, sizeof(err));
	if (!r && a->o.interval_s > 0) {
		struct timespec ts = {
			.tv_sec = (time_t)a->o.interval_s,
			.tv_nsec = (long)((a->o.interval_s -
					   (double)(time_t)a->o.interval_s) *
					  1e9),
		};

		/* The sampling interval itself: the rates cover it. */
		while (nanosleep(&ts, &ts) && errno == EINTR)
			;
		r = top_snapshot_fetch(&a->fresh, &a->rq, err, sizeof(err));
	}
	if (r) {
		fprintf(stderr, "sluice-top: %s\n", err);
		return 1;
	}

	clock_of(a->fresh.valid ? a->fresh.wall : a->last.wall, when,
		 sizeof(when));
	info.clock = when;
	if (a->fresh.valid)
		r = top_snapshot_render(&a->screen, &a->last, &a->fresh, &info);
	else
		r = top_snapshot_render(&a->screen, NULL, &a->last, &info);
	if (r) {
		fprintf(stderr, "sluice-top: %s\n", sl_strerror(r));
		return 1;
	}
	top_screen_print(&a->screen, stdout);
	return fflush(stdout) ? 1 : 0;
}

/* ---- the live view ---- */

static void
live_show(struct top_app *a)
{
	if (a->tty) {
		top_term_paint(&a->term, &a->screen);
		return;
	}
	top_screen_print(&a->screen, stdout);
	fputc('\n', stdout);
	fflush(stdout);
}

/* One scrape, and the screen that follows from it. */
static void
live_scrape(struct top_app *a)
{
	struct top_render_info info = {.addr = a->o.admin};
	char err[TOP_HTTP_ERR_MAX];
	char when[16];
	int r;

	r = top_snapshot_fetch(&a->fresh, &a->rq, err, sizeof(err));
	if (r == -ECANCELED)
		return; /* a signal: the loop handles it and scrapes again */

	top_screen_fini(&a->screen);
	if (r) {
		a->failures++;
		clock_of(wall_now(), when, sizeof(when));
		info.clock = when;
		r = top_render_unreachable(
			&a->screen, &info, err, a->o.interval_s, a->failures,
			a->last_clock[0] ? a->last_clock : NULL);
	} else {
		a->failures = 0;
		clock_of(a->fresh.wall, a->last_clock, sizeof(a->last_clock));
		info.clock = a->last_clock;
		r = top_snapshot_render(&a->screen, &a->last, &a->fresh, &info);
		/* The fresh scrape is the base of the next one's rates. */
		top_snapshot_fini(&a->last);
		a->last = a->fresh;
		top_snapshot_init(&a->fresh);
	}
	if (r)
		top_screen_add(&a->screen, TOP_STYLE_WARN, "out of memory");
	live_show(a);

	a->due += (uint64_t)(a->o.interval_s * 1e9);
	if (a->due <= sl_now_ns())
		a->due = sl_now_ns() + (uint64_t)(a->o.interval_s * 1e9);
}

static void
live_signal(struct top_app *a)
{
	struct signalfd_siginfo si;

	while (read(a->sigfd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGWINCH:
			if (a->tty) {
				top_term_resize(&a->term);
				live_show(a);
			}
			break;
		case SIGTSTP:
			/* Give the terminal back, stop, and take it again
			 * once continued. */
			if (a->tty)
				top_term_leave(&a->term);
			kill(getpid(), SIGSTOP);
			if (a->tty && !top_term_enter(&a->term, STDIN_FILENO,
						      STDOUT_FILENO))
				live_show(a);
			break;
		case SIGCONT:
			break;
		default:
			a->quit = true;
		}
	}
}

static void
live_keys(struct top_app *a)
{
	char buf[64];
	ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));

	if (n <= 0) {
		/* The keyboard went away: stop reading it. */
		if (n == 0)
			a->term.keys = false;
		return;
	}
	for (ssize_t i = 0; i < n; i++) {
		if (buf[i] == 'q' || buf[i] == 'Q')
			a->quit = true;
		else if (buf[i] == 'r' || buf[i] == ' ')
			a->due = sl_now_ns(); /* refresh now */
	}
}

static int
run_live(struct top_app *a)
{
	a->tty = isatty(STDOUT_FILENO);
	if (a->tty && top_term_enter(&a->term, STDIN_FILENO, STDOUT_FILENO)) {
		top_term_leave(&a->term);
		fprintf(stderr, "sluice-top: cannot set up the terminal\n");
		return 1;
	}

	a->due = sl_now_ns();
	while (!a->quit) {
		struct pollfd p[2] = {
			{.fd = a->sigfd, .events = POLLIN},
			{.fd = STDIN_FILENO, .events = POLLIN},
		};
		uint64_t now = sl_now_ns();
		int nfds = a->tty && a->term.keys ? 2 : 1;
		int ms;

		if (now >= a->due) {
			live_scrape(a);
			now = sl_now_ns();
		}
		ms = a->due > now ? (int)((a->due - now + 999999) / 1000000)
				  : 0;
		if (poll(p, (nfds_t)nfds, ms) < 0 && errno != EINTR)
			break;
		if (p[0].revents)
			live_signal(a);
		if (nfds > 1 && p[1].revents)
			live_keys(a);
	}
	if (a->tty)
		top_term_leave(&a->term);
	return 0;
}

/* Signals the live loop reads from its signalfd rather than dies of. */
static int
signals_to_fd(void)
{
	static const int sigs[] = {SIGINT,   SIGTERM, SIGHUP, SIGQUIT,
				   SIGWINCH, SIGTSTP, SIGCONT};
	sigset_t set;
	int fd;

	sigemptyset(&set);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(&set, sigs[i]);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return -errno;
	fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int
main(int argc, char **argv)
{
	struct top_app a = {.sigfd = -1};
	char err[512];
	int r, status;

	r = top_opts_parse(argc, argv, &a.o, err, sizeof(err));
	if (r > 0)
		return 0;
	if (r < 0) {
		fprintf(stderr, "sluice-top: %s\n", err);
		return 2;
	}
	a.rq.addr = a.o.admin;
	a.rq.path = "/metrics";
	a.rq.token = a.o.token;
	a.rq.timeout_ns = (uint64_t)(a.o.timeout_s * 1e9);
	a.rq.cancel_fd = -1;
	top_snapshot_init(&a.last);
	top_snapshot_init(&a.fresh);
	top_screen_init(&a.screen);

	if (a.o.once) {
		status = run_once(&a);
	} else {
		a.sigfd = signals_to_fd();
		if (a.sigfd < 0) {
			fprintf(stderr, "sluice-top: signalfd: %s\n",
				sl_strerror(a.sigfd));
			status = 1;
		} else {
			a.rq.cancel_fd = a.sigfd;
			status = run_live(&a);
			close(a.sigfd);
		}
	}

	top_screen_fini(&a.screen);
	top_snapshot_fini(&a.fresh);
	top_snapshot_fini(&a.last);
	top_opts_fini(&a.o);
	return status;
}
