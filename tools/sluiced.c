/* SPDX-License-Identifier: MIT */
/*
 * sluiced: the Sluice event router as a daemon.
 *
 * With no configuration it listens for lines on 127.0.0.1:7400, folds every
 * event into one route and reconciles into the null sink, with the admin
 * endpoint on 127.0.0.1:7401.  A YAML file (docs/configuration.md) sets
 * everything; --set overrides single keys; docs/admin.md describes the
 * admin endpoint.
 *
 * Life cycle.  main() reads and checks the configuration before the
 * runtime starts, so a bad file costs nothing but an exit status of 2.
 * It refuses to go on as root unless told to (a daemon that parses what
 * the network sends should not hold every privilege), configures the
 * I/O layer's receive buffers, and starts the runtime, which checks the
 * placement knobs against the machine: a CPU that is offline, a NUMA
 * node that does not exist or huge pages that cannot be had end the
 * start with one line naming the knob, and an exit status of 1.
 * The main task then creates the router, installs the routes, starts the
 * admin endpoint and opens the inputs; only then is the daemon ready.  It
 * then reads signals from a signalfd, through the ring, so waiting for a
 * signal parks one task and no thread:
 *
 *  - SIGHUP reloads the routes from the file, in a task of its own so the
 *    signal loop stays responsive.  POST /reload does the same.  Reloads
 *    run one at a time under reload_mu; a configuration that fails is
 *    refused with its reason and the running routes stay.
 *  - SIGTERM or SIGINT starts a drain, in a task of its own: readiness
 *    goes false, reloads are refused, the inputs stop, every accepted
 *    event is reconciled (or dead-lettered) within shutdown.drain_timeout,
 *    then the admin endpoint stops and the main task returns.  A second
 *    SIGTERM or SIGINT during the drain exits at once.
 *
 * Logs go to stderr, one line each, in the router's format:
 *	sluice: level=info subsys=sluiced msg="..." key=value ...
 */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "core/context.h"
#include "core/runtime.h"
#include "core/sync.h"
#include "core/task.h"
#include "io/file.h"
#include "io/io.h"
#include "io/net.h"
#include "router/admin.h"
#include "router/config.h"
#include "router/sluice.h"

#define SLUICED_VERSION "0.1.0"

/* Exit statuses (also in --help and docs/configuration.md). */
#define EXIT_OK 0
#define EXIT_RUNTIME 1		/* could not start, forced exit, work lost */
#define EXIT_USAGE 2		/* bad arguments or configuration */

/* Long options without a short form. */
enum {
	OPT_SET = 256,
	OPT_CHECK,
	OPT_LOG_LEVEL,
	OPT_CPUS,
	OPT_NUMA,
	OPT_SQPOLL,
	OPT_ALLOW_ROOT,
};

struct daemon {
	const char *path;		/* the config file, or NULL */
	const char **sets;		/* --set assignments, in order */
	int nsets;
	char **owned;			/* the assignments built here */
	int nowned;

	/* As started: what a reload compares against (runtime, limits,
	 * inputs and admin take effect only at a restart). */
	struct sluiced_config cfg;
	struct sluice *r;
	struct sl_admin *admin;

	/* Reloads run one at a time under @reload_mu.  @draining is set
	 * under it too, so a reload either ends before the drain starts
	 * or sees @draining and is refused. */
	struct sl_mutex reload_mu;
	struct sl_waitgroup reloads;	/* SIGHUP reload tasks */

	/* Read by the admin's tasks, written by the main and drain tasks. */
	_Atomic bool ready;
	_Atomic bool draining;
	_Atomic uint64_t drain_timeout_ns;
	_Atomic uint64_t reloads_ok, reloads_refused;
	_Atomic uint64_t last_reload_ok;	/* Unix seconds */
	uint64_t started;			/* Unix seconds */

	struct sl_context *signals;	/* cancelled once drained */
	int exit_code;
};

/* ---- logging ---- */

static _Atomic int log_min = SLUICED_LOG_INFO;

static const char *const log_names[] = {"debug", "info", "warn", "error"};

static void __attribute__((format(printf, 2, 3)))
sd_log(enum sluiced_log_level level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	if ((int)level < atomic_load_explicit(&log_min, memory_order_relaxed))
		return;
	n = snprintf(line, sizeof(line), "sluice: level=%s subsys=sluiced ",
		     log_names[level]);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	/* One write per line, so lines from several threads never mix. */
	strcat(line, "\n");
	fputs(line, stderr);
}

/*
 * @s as the inside of a quoted log value: a quote or backslash gets a
 * backslash, a control byte becomes \xHH, so the value can neither end
 * early nor split the line.
 */
static const char *
log_quote(const char *s, char *buf, size_t len)
{
	size_t o = 0;

	for (; *s && o + 5 < len; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			o += (size_t)snprintf(buf + o, len - o, "\\x%02x", c);
		} else {
			buf[o++] = (char)c;
		}
	}
	buf[o] = '\0';
	return buf;
}

static uint64_t
wall_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec;
}

/* ---- configuration ---- */

/* The file (or the defaults), the overrides, and the checks. */
static int
config_read(const struct daemon *d, struct sluiced_config *c, char *err,
	    size_t errlen)
{
	return sluiced_config_read(d->path, d->sets, (size_t)d->nsets, c, err,
				   errlen);
}

/* The keys a reload applies at once, beside the routes. */
static void
config_apply_live(struct daemon *d, const struct sluiced_config *c)
{
	atomic_store(&d->drain_timeout_ns, c->drain_timeout_ns);
	atomic_store(&log_min, (int)c->log_level);
}

/* ---- reload ---- */

/*
 * Read the configuration again and install its routes.  Called by the
 * SIGHUP task and by the admin's POST /reload.
 * Return: 0; -EINVAL when the configuration is refused (the reason in
 * @err), -ESHUTDOWN while draining, -ENOMEM.
 */
static int
daemon_reload(struct daemon *d, const char *trigger, char *err,
	      size_t errlen)
{
	struct sluiced_config c;
	char q[768], restart[64] = "";
	int r;

	sl_mutex_lock(&d->reload_mu);
	if (atomic_load(&d->draining)) {
		sl_mutex_unlock(&d->reload_mu);
		snprintf(err, errlen, "shutting down: routes are not reloaded");
		sd_log(SLUICED_LOG_WARN,
		       "msg=\"reload refused: shutting down\" trigger=%s",
		       trigger);
		return -ESHUTDOWN;
	}
	r = config_read(d, &c, err, errlen);
	if (!r) {
		r = sluiced_config_install(d->r, &c, err, errlen);
		if (!r) {
			config_apply_live(d, &c);
			sluiced_config_restart_keys(&d->cfg, &c, restart,
						    sizeof(restart));
		}
		sluiced_config_free(&c);
	}
	sl_mutex_unlock(&d->reload_mu);

	if (r) {
		atomic_fetch_add(&d->reloads_refused, 1);
		sd_log(SLUICED_LOG_ERROR,
		       "msg=\"reload refused; the running routes stay\" "
		       "trigger=%s err=\"%s\"",
		       trigger, log_quote(err, q, sizeof(q)));
		/* Whatever the configuration did wrong, it was refused; only
		 * running out of memory is the daemon's own failure. */
		return r == -ENOMEM ? r : -EINVAL;
	}
	atomic_fetch_add(&d->reloads_ok, 1);
	atomic_store(&d->last_reload_ok, wall_seconds());
	sd_log(SLUICED_LOG_INFO, "msg=\"routes reloaded\" trigger=%s", trigger);
	if (restart[0])
		sd_log(SLUICED_LOG_WARN,
		       "msg=\"changed settings take effect only at a restart\" "
		       "sections=\"%s\"",
		       restart);
	return 0;
}

static int
admin_reload(void *arg, char *err, size_t errlen)
{
	return daemon_reload(arg, "admin", err, errlen);
}

static void
reload_task(void *arg)
{
	struct daemon *d = arg;
	char err[512];

	daemon_reload(d, "SIGHUP", err, sizeof(err));
	sl_waitgroup_done(&d->reloads);
}

/* ---- the admin endpoint's view of the daemon ---- */

static bool
admin_ready(void *arg)
{
	return atomic_load(&((struct daemon *)arg)->ready);
}

static void
admin_metrics(void *arg, FILE *out)
{
	struct daemon *d = arg;

	fprintf(out,
		"# HELP sluice_ready 1 once every input listens, 0 before "
		"and while draining.\n"
		"# TYPE sluice_ready gauge\n"
		"sluice_ready %d\n"
		"# HELP sluice_draining 1 from the first SIGTERM or SIGINT.\n"
		"# TYPE sluice_draining gauge\n"
		"sluice_draining %d\n"
		"# HELP sluice_reloads_total Route reloads (SIGHUP and POST "
		"/reload), by result.\n"
		"# TYPE sluice_reloads_total counter\n"
		"sluice_reloads_total{result=\"ok\"} %llu\n"
		"sluice_reloads_total{result=\"refused\"} %llu\n"
		"# HELP sluice_last_reload_success_timestamp_seconds When "
		"the routes were last installed (start-up or reload).\n"
		"# TYPE sluice_last_reload_success_timestamp_seconds gauge\n"
		"sluice_last_reload_success_timestamp_seconds %llu\n"
		"# HELP sluice_start_time_seconds When the daemon started.\n"
		"# TYPE sluice_start_time_seconds gauge\n"
		"sluice_start_time_seconds %llu\n",
		atomic_load(&d->ready) ? 1 : 0,
		atomic_load(&d->draining) ? 1 : 0,
		(unsigned long long)atomic_load(&d->reloads_ok),
		(unsigned long long)atomic_load(&d->reloads_refused),
		(unsigned long long)atomic_load(&d->last_reload_ok),
		(unsigned long long)d->started);
}

/* ---- start and stop ---- */

static int
start_admin(struct daemon *d)
{
	struct sl_admin_opts ao = d->cfg.admin;
	char addr[128], q[256];
	int r;

	if (!d->cfg.admin_enabled) {
		sd_log(SLUICED_LOG_INFO, "msg=\"admin endpoint disabled\"");
		return 0;
	}
	ao.reload = admin_reload;
	ao.reload_arg = d;
	ao.ready = admin_ready;
	ao.ready_arg = d;
	ao.write_metrics = admin_metrics;
	ao.metrics_arg = d;
	r = sl_admin_start(d->r, &ao, &d->admin);
	if (r) {
		sd_log(SLUICED_LOG_ERROR,
		       "msg=\"cannot start the admin endpoint\" addr=\"%s\" "
		       "err=\"%s\"",
		       log_quote(ao.addr, q, sizeof(q)), sl_strerror(r));
		return r;
	}
	sl_admin_addr(d->admin, addr, sizeof(addr));
	sd_log(SLUICED_LOG_INFO, "msg=\"admin listening\" addr=%s auth=%s",
	       addr, ao.token ? "token" : "none");
	return 0;
}

static int
start_inputs(struct daemon *d)
{
	char addr[128], q[256];

	for (size_t i = 0; i < d->cfg.ninputs; i++) {
		const struct sluice_input *in = &d->cfg.inputs[i].in;
		int r = sluice_add_input(d->r, in);

		if (r) {
			sd_log(SLUICED_LOG_ERROR,
			       "msg=\"cannot open input\" input=%s "
			       "addr=\"%s\" err=\"%s\"",
			       in->name, log_quote(in->addr, q, sizeof(q)),
			       sl_strerror(r));
			return r;
		}
		if (sluice_input_addr(d->r, in->name, addr, sizeof(addr)))
			snprintf(addr, sizeof(addr), "%s", in->addr);
		sd_log(SLUICED_LOG_INFO,
		       "msg=\"listening\" input=%s addr=%s format=%s",
		       in->name, addr, in->frames ? "frames" : "lines");
	}
	return 0;
}

/*
 * The router, its routes, the admin endpoint, then the inputs: the admin
 * answers /healthz (and /readyz with 503) while inputs open, and the
 * daemon is ready once they all listen.
 */
static int
start(struct daemon *d)
{
	char err[512] = "", q[768];
	int r;

	r = sluice_create(&d->cfg.opts, &d->r);
	if (r) {
		sd_log(SLUICED_LOG_ERROR,
		       "msg=\"cannot start the router\" err=\"%s\"",
		       sl_strerror(r));
		return r;
	}
	r = sluiced_config_install(d->r, &d->cfg, err, sizeof(err));
	if (r) {
		sd_log(SLUICED_LOG_ERROR,
		       "msg=\"cannot install the routes\" err=\"%s\"",
		       log_quote(err, q, sizeof(q)));
		return r;
	}
	atomic_store(&d->last_reload_ok, wall_seconds());
	sd_log(SLUICED_LOG_DEBUG, "msg=\"routes installed\" routes=%zu",
	       d->cfg.nroutes);
	r = start_admin(d);
	if (!r)
		r = start_inputs(d);
	if (!r)
		atomic_store(&d->ready, true);
	return r;
}

/*
 * Stop the router (draining, or not), then the admin endpoint, and free
 * both.  Reloads are refused from here on.
 * Return: 0, or -ETIMEDOUT if the drain left work undone.
 */
static int
stop(struct daemon *d, bool drain)
{
	uint64_t timeout = atomic_load(&d->drain_timeout_ns);
	uint64_t start_ns = sl_now_ns();
	struct sluice_stats st;
	int r;

	atomic_store(&d->ready, false);
	sl_mutex_lock(&d->reload_mu);
	atomic_store(&d->draining, true);
	sl_mutex_unlock(&d->reload_mu);
	sl_waitgroup_wait(&d->reloads);

	sluice_stats_get(d->r, &st);
	if (drain)
		sd_log(SLUICED_LOG_INFO,
		       "msg=\"draining\" keys_pending=%llu "
		       "keys_processing=%llu",
		       (unsigned long long)st.pending,
		       (unsigned long long)st.processing);
	r = sluice_shutdown(d->r, drain, drain ? start_ns + timeout : 0);
	/* The routes' figures stay readable after the shutdown. */
	sluice_stats_get(d->r, &st);
	if (r)
		sd_log(SLUICED_LOG_WARN,
		       "msg=\"drain timed out; unfinished work was dropped\" "
		       "drain_timeout_ms=%llu keys_dropped=%llu",
		       (unsigned long long)(timeout / SL_NSEC_PER_MSEC),
		       (unsigned long long)st.left);
	else if (drain)
		sd_log(SLUICED_LOG_INFO, "msg=\"drained\" ms=%llu",
		       (unsigned long long)((sl_now_ns() - start_ns) /
					    SL_NSEC_PER_MSEC));
	sl_admin_stop(d->admin);
	d->admin = NULL;
	sluice_destroy(d->r);
	d->r = NULL;
	return r;
}

/* Drain and stop, then end the signal loop by cancelling its context. */
static void
drain_task(void *arg)
{
	struct daemon *d = arg;

	if (stop(d, true))
		d->exit_code = EXIT_RUNTIME;
	sl_context_cancel(d->signals);
}

/* ---- signals ---- */

static void
on_stop_signal(struct daemon *d, uint32_t signo, unsigned *stops)
{
	if (++*stops > 1) {
		sd_log(SLUICED_LOG_WARN,
		       "msg=\"second signal: exiting without draining\" "
		       "signal=%s",
		       signo == SIGTERM ? "TERM" : "INT");
		fflush(stderr);
		_exit(EXIT_RUNTIME);
	}
	sd_log(SLUICED_LOG_INFO,
	       "msg=\"stopping\" signal=%s drain_timeout_ms=%llu",
	       signo == SIGTERM ? "TERM" : "INT",
	       (unsigned long long)(atomic_load(&d->drain_timeout_ns) /
				    SL_NSEC_PER_MSEC));
	/* Drain in a task of its own, so a second signal can still be
	 * read meanwhile. */
	atomic_store(&d->ready, false);
	if (sl_task_spawn(drain_task, d,
			  &(struct sl_task_opts){.name = "sluiced-drain",
						 .proc = -1},
			  NULL))
		drain_task(d);
}

static void
on_reload_signal(struct daemon *d)
{
	sl_waitgroup_add(&d->reloads, 1);
	if (sl_task_spawn(reload_task, d,
			  &(struct sl_task_opts){.name = "sluiced-reload",
						 .proc = -1},
			  NULL))
		reload_task(d);
}

static void
signal_loop(struct daemon *d, int sfd)
{
	unsigned stops = 0;

	for (;;) {
		struct signalfd_siginfo si;
		ssize_t n = sl_file_read(d->signals, sfd, &si, sizeof(si), -1);

		if (n == -ECANCELED)
			return; /* drained */
		if (n != (ssize_t)sizeof(si))
			continue;
		if (si.ssi_signo == SIGHUP && stops == 0)
			on_reload_signal(d);
		else if (si.ssi_signo == SIGHUP)
			sd_log(SLUICED_LOG_WARN,
			       "msg=\"SIGHUP ignored: shutting down\"");
		else
			on_stop_signal(d, si.ssi_signo, &stops);
	}
}

/* CPUs in the process's affinity mask: what runtime.procs 0 means. */
static int
usable_cpus(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set))
		return 1;
	return CPU_COUNT(&set);
}

/*
 * The knobs as the runtime and the I/O layer will take them, defaults
 * resolved, one line per section, for --check and the start-up log.
 * @nprocs: the processors running, or 0 before the runtime starts.
 */
static void
format_knobs(const struct sluiced_config *c, unsigned nprocs, char *rt,
	     size_t rtlen, char *io, size_t iolen)
{
	const struct sl_runtime_opts *o = &c->runtime;
	unsigned cq = o->cq_entries ? o->cq_entries : 4 * o->ring_entries;
	char procs[32], sq[64] = "";

	if (o->nprocs)
		snprintf(procs, sizeof(procs), "%u", o->nprocs);
	else if (nprocs)
		snprintf(procs, sizeof(procs), "0(=%u)", nprocs);
	else if (o->cpus && *o->cpus)
		snprintf(procs, sizeof(procs), "0(=one per CPU of cpus)");
	else
		snprintf(procs, sizeof(procs), "0(=%d)", usable_cpus());
	if (o->sqpoll)
		snprintf(sq, sizeof(sq), " sqpoll_cpu=%d sqpoll_idle_ms=%u",
			 o->sqpoll_cpu, o->sqpoll_idle_ms);
	snprintf(rt, rtlen,
		 "procs=%s cpus=%s numa=%s pin=%s ring_entries=%u "
		 "cq_entries=%u sqpoll=%s%s stack_size=%zu huge_pages=%s "
		 "idle_spin_ns=%llu",
		 procs, o->cpus && *o->cpus ? o->cpus : "all",
		 o->numa && *o->numa ? o->numa : "local",
		 o->pin ? "true" : "false", o->ring_entries, cq,
		 o->sqpoll ? "true" : "false", sq, o->stack_size,
		 o->huge_pages ? "true" : "false",
		 (unsigned long long)o->idle_spin_ns);
	snprintf(io, iolen, "buffer_size=%u buffers=%u buffers_max=%u",
		 c->io.buf_size, c->io.bufs_initial, c->io.bufs_max);
}

/* The settings the daemon runs with, so a log shows what was tuned. */
static void
log_knobs(const struct daemon *d)
{
	char rt[512], io[128];

	format_knobs(&d->cfg, sl_runtime_nprocs(), rt, sizeof(rt), io,
		     sizeof(io));
	sd_log(SLUICED_LOG_INFO, "msg=\"runtime\" %s %s", rt, io);
	if (geteuid() == 0)
		sd_log(SLUICED_LOG_WARN,
		       "msg=\"running as root (security.allow_root)\"");
}

static void
main_task(void *arg)
{
	struct daemon *d = arg;
	sigset_t set;
	int sfd;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0) {
		sd_log(SLUICED_LOG_ERROR, "msg=\"signalfd failed\" err=\"%s\"",
		       sl_strerror(-errno));
		d->exit_code = EXIT_RUNTIME;
		return;
	}
	if (sl_context_with_cancel(sl_context_background(), &d->signals) ||
	    start(d)) {
		d->exit_code = EXIT_RUNTIME;
		if (d->r)
			stop(d, false);
		if (d->signals)
			sl_context_release(d->signals);
		close(sfd);
		return;
	}
	log_knobs(d);
	sd_log(SLUICED_LOG_INFO,
	       "msg=\"ready\" version=" SLUICED_VERSION " config=\"%s\"",
	       d->path ? d->path : "(defaults)");

	signal_loop(d, sfd);
	sl_context_release(d->signals);
	close(sfd);
}

/* ---- the command line ---- */

static void
usage(FILE *out)
{
	fputs("usage: sluiced [options]\n"
	      "\n"
	      "Route events from TCP, UDP and Unix sockets into sinks, folding\n"
	      "each key's pending events so that a key's latest state is\n"
	      "reconciled once per change.\n"
	      "\n"
	      "Options:\n"
	      "  -c, --config FILE      YAML configuration (see\n"
	      "                         docs/configuration.md).  Without one:\n"
	      "                         lines on 127.0.0.1:7400, one route to\n"
	      "                         the null sink, admin on 127.0.0.1:7401\n"
	      "      --set KEY=VALUE    override one key after the file, e.g.\n"
	      "                         --set routes[0].workers=8\n"
	      "                         --set admin.addr=off\n"
	      "                         (repeatable; applied in order)\n"
	      "  -l, --listen ADDR      the first input's address\n"
	      "                         (--set inputs[0].addr=ADDR)\n"
	      "  -a, --admin ADDR       the admin endpoint's address, or off\n"
	      "                         (--set admin.addr=ADDR)\n"
	      "  -p, --procs N          processors; 0: one per usable CPU\n"
	      "                         (--set runtime.procs=N)\n"
	      "      --cpus LIST        the CPUs processors run on, e.g.\n"
	      "                         0-3,8 (--set runtime.cpus=LIST)\n"
	      "      --numa POLICY      local, interleave, or a node list\n"
	      "                         (--set runtime.numa=POLICY)\n"
	      "      --sqpoll[=CPU]     kernel threads poll the submission\n"
	      "                         queues, on CPU if given\n"
	      "                         (--set runtime.sqpoll=true and\n"
	      "                         --set runtime.sqpoll_cpu=CPU)\n"
	      "      --log-level LEVEL  debug, info, warn or error\n"
	      "                         (--set log.level=LEVEL)\n"
	      "      --allow-root       run even as root (euid 0), which is\n"
	      "                         refused otherwise\n"
	      "                         (--set security.allow_root=true)\n"
	      "      --check            read and check the configuration,\n"
	      "                         print the settings in effect and\n"
	      "                         exit; nothing is opened, bound or\n"
	      "                         loaded\n"
	      "  -h, --help             this text\n"
	      "  -V, --version          the version\n"
	      "\n"
	      "Signals:\n"
	      "  HUP        reload the routes from the file; a configuration\n"
	      "             that fails is refused and the running routes stay\n"
	      "  TERM, INT  stop the inputs and drain within\n"
	      "             shutdown.drain_timeout; a second one exits at once\n"
	      "\n"
	      "Admin endpoint (docs/admin.md): GET /metrics, /healthz,\n"
	      "/readyz, /debug/tasks; POST /reload.\n"
	      "\n"
	      "Every other key (runtime.idle_spin, io.buffer_size, ...) is\n"
	      "set in the file or with --set; docs/configuration.md lists\n"
	      "them and docs/tuning.md says what each trades.\n"
	      "\n"
	      "Logs go to stderr, one key=value line per event.\n"
	      "\n"
	      "Exit status: 0 stopped cleanly (or --check passed); 1 could\n"
	      "not start (running as root, a knob the machine cannot honour,\n"
	      "an address in use), the drain timed out, or a second signal\n"
	      "forced the exit; 2 bad arguments or configuration.\n",
	      out);
}

/* Turn a shortcut option into the override it stands for. */
static int
add_set(struct daemon *d, const char *key, const char *value)
{
	size_t len = strlen(key) + strlen(value) + 2;
	char *s = malloc(len);

	if (!s)
		return -ENOMEM;
	snprintf(s, len, "%s=%s", key, value);
	d->owned[d->nowned++] = s;
	d->sets[d->nsets++] = s;
	return 0;
}

/* Return: -1 to go on, else the exit status. */
static int
parse_args(struct daemon *d, int argc, char **argv, bool *check)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'},
		{"set", required_argument, NULL, OPT_SET},
		{"listen", required_argument, NULL, 'l'},
		{"admin", required_argument, NULL, 'a'},
		{"procs", required_argument, NULL, 'p'},
		{"log-level", required_argument, NULL, OPT_LOG_LEVEL},
		{"cpus", required_argument, NULL, OPT_CPUS},
		{"numa", required_argument, NULL, OPT_NUMA},
		{"sqpoll", optional_argument, NULL, OPT_SQPOLL},
		{"allow-root", no_argument, NULL, OPT_ALLOW_ROOT},
		{"check", no_argument, NULL, OPT_CHECK},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{0},
	};
	int opt, r = 0;

	while ((opt = getopt_long(argc, argv, "c:l:a:p:hV", longopts,
				  NULL)) != -1 && !r) {
		switch (opt) {
		case 'c':
			d->path = optarg;
			break;
		case OPT_SET:
			d->sets[d->nsets++] = optarg;
			break;
		case 'l':
			r = add_set(d, "inputs[0].addr", optarg);
			break;
		case 'a':
			r = add_set(d, "admin.addr", optarg);
			break;
		case 'p':
			r = add_set(d, "runtime.procs", optarg);
			break;
		case OPT_LOG_LEVEL:
			r = add_set(d, "log.level", optarg);
			break;
		case OPT_CPUS:
			r = add_set(d, "runtime.cpus", optarg);
			break;
		case OPT_NUMA:
			r = add_set(d, "runtime.numa", optarg);
			break;
		case OPT_SQPOLL:
			r = add_set(d, "runtime.sqpoll", "true");
			if (!r && optarg)
				r = add_set(d, "runtime.sqpoll_cpu", optarg);
			break;
		case OPT_ALLOW_ROOT:
			r = add_set(d, "security.allow_root", "true");
			break;
		case OPT_CHECK:
			*check = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'V':
			printf("sluiced " SLUICED_VERSION "\n");
			return EXIT_OK;
		default:
			/* getopt has said what was wrong. */
			fputs("Try 'sluiced --help' for more information.\n",
			      stderr);
			return EXIT_USAGE;
		}
	}
	if (r) {
		fprintf(stderr, "sluiced: %s\n", sl_strerror(r));
		return EXIT_RUNTIME;
	}
	if (optind < argc) {
		fprintf(stderr,
			"sluiced: unexpected argument '%s'\n"
			"Try 'sluiced --help' for more information.\n",
			argv[optind]);
		return EXIT_USAGE;
	}
	return -1;
}

static void
print_summary(const struct daemon *d)
{
	const struct sluiced_config *c = &d->cfg;
	const struct sl_wire_limits *l = &c->opts.limits;
	struct sl_sock_opts conn; /* io/'s defaults, for max_buffered */
	char rt[512], io[128];

	printf("sluiced: configuration ok: %s: %zu input%s, %zu route%s, "
	       "admin %s\n",
	       d->path ? d->path : "(defaults)", c->ninputs,
	       c->ninputs == 1 ? "" : "s", c->nroutes,
	       c->nroutes == 1 ? "" : "s",
	       c->admin_enabled ? c->admin.addr : "off");
	format_knobs(c, 0, rt, sizeof(rt), io, sizeof(io));
	printf("runtime: %s\nio: %s\n", rt, io);
	printf("limits: line_max=%zu frame_max=%zu max_malformed=%u "
	       "shard_inbox=%u\n",
	       l->line_max, l->frame_max, c->opts.max_malformed,
	       c->opts.shard_inbox);
	sl_sock_opts_default(&conn);
	for (size_t i = 0; i < c->ninputs; i++) {
		const struct sluice_input *in = &c->inputs[i].in;
		bool stream = in->type == SLUICE_INPUT_TCP ||
			      in->type == SLUICE_INPUT_UNIX;

		printf("input %s: addr=%s%s max_conns=%u", in->name, in->addr,
		       sluiced_addr_local(in->addr) ? "" : " (not loopback)",
		       in->max_conns);
		if (stream)
			printf(" max_buffered=%zu",
			       in->max_buffered ? in->max_buffered
						: conn.max_buffered);
		printf("\n");
	}
	for (size_t i = 0; i < c->nroutes; i++) {
		const struct sluice_route *r = &c->routes[i].route;

		printf("route %s: workers=%u max_pending=%zu max_attempts=%u\n",
		       r->name, r->workers, r->fold.max_pending,
		       r->fold.max_attempts);
	}
	printf("admin: %s token=%s\nsecurity: allow_root=%s\n",
	       c->admin_enabled ? c->admin.addr : "off",
	       c->admin.token ? "set" : "none",
	       c->allow_root ? "true" : "false");
}

/*
 * The runtime's reason for a failed start names the knob in its first
 * word ("cpus \"0-9\": CPU 9 is offline ..."): say which key of the
 * configuration that is.
 */
static void
report_runtime_error(int err)
{
	static const char *const knobs[] = {
		"cpus", "numa", "sqpoll_cpu", "sqpoll", "huge_pages",
		"ring_entries", "cq_entries",
	};
	const char *why = sl_runtime_error();

	if (!why || !*why) {
		fprintf(stderr, "sluiced: cannot start the runtime: %s\n",
			sl_strerror(err));
		return;
	}
	for (size_t i = 0; i < sizeof(knobs) / sizeof(knobs[0]); i++) {
		size_t n = strlen(knobs[i]);

		if (!strncmp(why, knobs[i], n) &&
		    (why[n] == ' ' || why[n] == ':')) {
			fprintf(stderr, "sluiced: runtime.%s\n", why);
			return;
		}
	}
	fprintf(stderr, "sluiced: cannot start the runtime: %s\n", why);
}

static int
run(struct daemon *d)
{
	struct sl_runtime_opts ro = d->cfg.runtime;
	sigset_t set;
	int err;

	/* Signals are taken through a signalfd: block them in every thread
	 * (the runtime's threads inherit this mask). */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	sl_mutex_init(&d->reload_mu);
	sl_waitgroup_init(&d->reloads);
	atomic_store(&d->drain_timeout_ns, d->cfg.drain_timeout_ns);
	atomic_store(&log_min, (int)d->cfg.log_level);
	d->started = wall_seconds();
	err = sl_io_configure(&d->cfg.io);
	if (err) {
		/* The configuration's ranges are io's, so this is a bug. */
		fprintf(stderr, "sluiced: io: buffer settings refused: %s\n",
			sl_strerror(err));
		return EXIT_RUNTIME;
	}
	err = sl_runtime_run(&ro, main_task, d);
	if (err) {
		report_runtime_error(err);
		return EXIT_RUNTIME;
	}
	return d->exit_code;
}

int
main(int argc, char **argv)
{
	struct daemon d = {0};
	char err[512] = "";
	bool check = false;
	int rc;

	/* At most two overrides per argument (--sqpoll=CPU makes two). */
	d.sets = calloc(2 * (size_t)argc, sizeof(*d.sets));
	d.owned = calloc(2 * (size_t)argc, sizeof(*d.owned));
	if (!d.sets || !d.owned) {
		fprintf(stderr, "sluiced: out of memory\n");
		rc = EXIT_RUNTIME;
		goto out;
	}
	rc = parse_args(&d, argc, argv, &check);
	if (rc >= 0)
		goto out;

	if (config_read(&d, &d.cfg, err, sizeof(err))) {
		fprintf(stderr, "sluiced: %s\n", err);
		rc = EXIT_USAGE;
		goto out;
	}
	if (check) {
		print_summary(&d);
		rc = EXIT_OK;
	} else if (geteuid() == 0 && !d.cfg.allow_root) {
		fprintf(stderr,
			"sluiced: refusing to run as root (euid 0): run it as "
			"an unprivileged user (the packaged service does), or "
			"pass --allow-root or set security.allow_root: true\n");
		rc = EXIT_RUNTIME;
	} else {
		rc = run(&d);
	}
	sluiced_config_free(&d.cfg);
out:
	for (int i = 0; i < d.nowned; i++)
		free(d.owned[i]);
	free(d.owned);
	free(d.sets);
	return rc;
}
