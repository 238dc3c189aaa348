/* SPDX-License-Identifier: MIT */
/*
 * sluiced: the Sluice event router as a daemon.
 *
 * With no configuration it listens for lines on 127.0.0.1:7400, folds every
 * event into one route and reconciles into the null sink, with the admin
 * endpoint on 127.0.0.1:7401.  A YAML file (docs/configuration.md) sets
 * everything; --set overrides single keys.
 *
 * Signals: SIGHUP reloads the routes from the file (a bad file is refused
 * and the running routes stay); SIGTERM and SIGINT stop the inputs and
 * drain within shutdown.drain_timeout; a second one exits at once.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "core/context.h"
#include "core/runtime.h"
#include "core/task.h"
#include "io/file.h"
#include "router/admin.h"
#include "router/config.h"
#include "router/sluice.h"

#define SLUICED_VERSION "0.1.0"

struct daemon {
	const char *path;		/* the config file, or NULL */
	char **sets;			/* --set assignments, in order */
	int nsets;
	struct sluiced_config cfg;
	struct sluice *r;
	struct sl_admin *admin;
	bool ready;
	int exit_code;
	struct sl_context *signals;	/* cancelled when drained */
};

static void
usage(FILE *out)
{
	fprintf(out,
		"usage: sluiced [options]\n"
		"\n"
		"Route events from TCP, UDP and Unix sockets into sinks, folding\n"
		"each key's pending events so every key's latest state is\n"
		"reconciled once per change.\n"
		"\n"
		"  -c, --config FILE    YAML configuration (docs/configuration.md);\n"
		"                       without one: lines on 127.0.0.1:7400, one\n"
		"                       route to the null sink, admin on :7401\n"
		"      --set KEY=VALUE  override one configuration key, e.g.\n"
		"                       --set routes[0].workers=8 (repeatable)\n"
		"  -l, --listen ADDR    the first input's address\n"
		"  -a, --admin ADDR     the admin endpoint's address\n"
		"  -p, --procs N        processors (default: one per usable CPU)\n"
		"      --check          validate the configuration and exit\n"
		"  -h, --help           this text\n"
		"  -V, --version        the version\n"
		"\n"
		"Signals: HUP reloads routes; TERM/INT drain and exit (twice:\n"
		"exit at once).  Logs go to stderr as key=value lines.\n");
}

static int
apply_overrides(struct daemon *d, char *err, size_t errlen)
{
	for (int i = 0; i < d->nsets; i++) {
		int r = sluiced_config_set(&d->cfg, d->sets[i], err, errlen);

		if (r)
			return r;
	}
	return 0;
}

static int
load_config(struct daemon *d, struct sluiced_config *c, char *err,
	    size_t errlen)
{
	struct daemon tmp = *d;
	int r;

	if (d->path)
		r = sluiced_config_load(d->path, c, err, errlen);
	else
		r = sluiced_config_defaults(c);
	if (r) {
		if (!d->path)
			snprintf(err, errlen, "%s", sl_strerror(r));
		return r;
	}
	tmp.cfg = *c;
	r = apply_overrides(&tmp, err, errlen);
	*c = tmp.cfg;
	if (!r)
		r = sluiced_config_check(c, err, errlen);
	return r;
}

static int
install_routes(struct daemon *d, const struct sluiced_config *c, char *err,
	       size_t errlen)
{
	struct sluice_route *routes = NULL;
	size_t n = 0;
	int r;

	r = sluiced_config_routes(c, &routes, &n, err, errlen);
	if (r)
		return r;
	r = sluice_set_routes(d->r, routes, n, err, errlen);
	sluiced_routes_free(routes, n);
	return r;
}

/* The admin's reload: read the file again and swap the routes. */
static int
reload(void *arg, char *err, size_t errlen)
{
	struct daemon *d = arg;
	struct sluiced_config c;
	int r;

	r = load_config(d, &c, err, errlen);
	if (!r)
		r = install_routes(d, &c, err, errlen);
	sluiced_config_free(&c);
	if (r)
		fprintf(stderr,
			"sluice: level=error subsys=sluiced msg=\"reload "
			"refused; the running routes stay\" err=\"%s\"\n",
			err);
	else
		fprintf(stderr, "sluice: level=info subsys=sluiced "
				"msg=\"routes reloaded\"\n");
	return r;
}

static bool
ready(void *arg)
{
	return ((struct daemon *)arg)->ready;
}

static int
start(struct daemon *d)
{
	struct sl_admin_opts ao = {0};
	char err[512] = "", addr[128];
	int r;

	r = sluice_create(&d->cfg.opts, &d->r);
	if (r) {
		fprintf(stderr,
			"sluice: level=error subsys=sluiced msg=\"cannot "
			"start the router\" err=\"%s\"\n",
			sl_strerror(r));
		return r;
	}
	r = install_routes(d, &d->cfg, err, sizeof(err));
	if (r) {
		fprintf(stderr,
			"sluice: level=error subsys=sluiced msg=\"bad routes\" "
			"err=\"%s\"\n",
			err);
		return r;
	}
	for (size_t i = 0; i < d->cfg.ninputs; i++) {
		const struct sluice_input *in = &d->cfg.inputs[i].in;

		r = sluice_add_input(d->r, in);
		if (r) {
			fprintf(stderr,
				"sluice: level=error subsys=sluiced "
				"msg=\"cannot open input\" input=%s addr=%s "
				"err=\"%s\"\n",
				in->name, in->addr, sl_strerror(r));
			return r;
		}
		sluice_input_addr(d->r, in->name, addr, sizeof(addr));
		fprintf(stderr,
			"sluice: level=info subsys=sluiced msg=\"listening\" "
			"input=%s addr=%s format=%s\n",
			in->name, addr, in->frames ? "frames" : "lines");
	}
	if (d->cfg.admin.addr && *d->cfg.admin.addr) {
		ao = d->cfg.admin;
		ao.reload = reload;
		ao.reload_arg = d;
		ao.ready = ready;
		ao.ready_arg = d;
		r = sl_admin_start(d->r, &ao, &d->admin);
		if (r) {
			fprintf(stderr,
				"sluice: level=error subsys=sluiced "
				"msg=\"cannot start the admin endpoint\" "
				"addr=%s err=\"%s\"\n",
				ao.addr, sl_strerror(r));
			return r;
		}
		sl_admin_addr(d->admin, addr, sizeof(addr));
		fprintf(stderr,
			"sluice: level=info subsys=sluiced msg=\"admin "
			"listening\" addr=%s\n",
			addr);
	}
	d->ready = true;
	return 0;
}

static void
stop(struct daemon *d, bool drain)
{
	uint64_t deadline = sl_now_ns() + d->cfg.drain_timeout_ns;
	int r;

	d->ready = false;
	r = sluice_shutdown(d->r, drain, deadline);
	if (r)
		fprintf(stderr,
			"sluice: level=warn subsys=sluiced msg=\"drain "
			"timed out; unfinished work was dropped\"\n");
	if (d->admin)
		sl_admin_stop(d->admin);
	sluice_destroy(d->r);
}

/* Drain and stop, then end the signal loop by cancelling its context. */
static void
drain_task(void *arg)
{
	struct daemon *d = arg;

	stop(d, true);
	sl_context_cancel(d->signals);
}

static void
main_task(void *arg)
{
	struct daemon *d = arg;
	struct signalfd_siginfo si;
	sigset_t set;
	int sfd, stops = 0;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0 ||
	    sl_context_with_cancel(sl_context_background(), &d->signals) ||
	    start(d)) {
		d->exit_code = 1;
		if (d->r)
			stop(d, false);
		return;
	}
	fprintf(stderr, "sluice: level=info subsys=sluiced msg=\"ready\" "
			"version=" SLUICED_VERSION "\n");

	/* The signal descriptor is read through the ring like any file, so
	 * waiting for a signal parks only this task. */
	for (;;) {
		ssize_t n = sl_file_read(d->signals, sfd, &si, sizeof(si), -1);
		char err[512];

		if (n == -ECANCELED)
			break; /* drained */
		if (n != (ssize_t)sizeof(si))
			continue;
		if (si.ssi_signo == SIGHUP) {
			reload(d, err, sizeof(err));
			continue;
		}
		if (++stops > 1) {
			fprintf(stderr,
				"sluice: level=warn subsys=sluiced "
				"msg=\"second signal: exiting without "
				"draining\"\n");
			fflush(stderr);
			_exit(1);
		}
		fprintf(stderr,
			"sluice: level=info subsys=sluiced msg=\"stopping\" "
			"signal=%s drain_timeout_ms=%llu\n",
			si.ssi_signo == SIGTERM ? "TERM" : "INT",
			(unsigned long long)(d->cfg.drain_timeout_ns /
					     SL_NSEC_PER_MSEC));
		/* Drain in a task of its own, so a second signal can still
		 * be read meanwhile. */
		if (sl_go(drain_task, d)) {
			stop(d, true);
			break;
		}
	}
	sl_context_release(d->signals);
	close(sfd);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'},
		{"set", required_argument, NULL, 's'},
		{"listen", required_argument, NULL, 'l'},
		{"admin", required_argument, NULL, 'a'},
		{"procs", required_argument, NULL, 'p'},
		{"check", no_argument, NULL, 'k'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{0},
	};
	struct daemon d = {0};
	struct sl_runtime_opts ro;
	char err[512] = "", buf[160];
	bool check = false;
	sigset_t set;
	int opt, r;

	d.sets = calloc((size_t)argc, sizeof(*d.sets));
	if (!d.sets)
		return 1;
	while ((opt = getopt_long(argc, argv, "c:l:a:p:hV", longopts,
				  NULL)) != -1) {
		switch (opt) {
		case 'c':
			d.path = optarg;
			break;
		case 's':
			d.sets[d.nsets++] = optarg;
			break;
		case 'l':
			snprintf(buf, sizeof(buf), "inputs[0].addr=%s", optarg);
			d.sets[d.nsets++] = strdup(buf);
			break;
		case 'a':
			snprintf(buf, sizeof(buf), "admin.addr=%s", optarg);
			d.sets[d.nsets++] = strdup(buf);
			break;
		case 'p':
			snprintf(buf, sizeof(buf), "runtime.procs=%s", optarg);
			d.sets[d.nsets++] = strdup(buf);
			break;
		case 'k':
			check = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("sluiced " SLUICED_VERSION "\n");
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sluiced: unexpected argument '%s'\n",
			argv[optind]);
		usage(stderr);
		return 2;
	}

	r = load_config(&d, &d.cfg, err, sizeof(err));
	if (r) {
		fprintf(stderr, "sluiced: %s\n", err);
		return 2;
	}
	if (check) {
		printf("sluiced: configuration ok\n");
		sluiced_config_free(&d.cfg);
		return 0;
	}

	/* Signals are taken through a signalfd: block them in every thread
	 * (the runtime's threads inherit this mask). */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	ro = d.cfg.runtime;
	r = sl_runtime_run(&ro, main_task, &d);
	if (r) {
		fprintf(stderr, "sluiced: %s\n", sl_runtime_error());
		return 1;
	}
	sluiced_config_free(&d.cfg);
	return d.exit_code;
}
