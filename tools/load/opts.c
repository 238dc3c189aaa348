/* SPDX-License-Identifier: MIT */
/*
 * Command-line parsing for sluice-load.
 */
#include "tools/load/opts.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define LOAD_VERSION "0.1.0"

void
load_usage(FILE *out)
{
	/* clang-format off: the text is laid out as it prints. */
	fprintf(out,
	        "usage: sluice-load [options] [TARGET]\n"
	        "       sluice-load merge [--json] [--hist-out FILE] FILE...\n"
	        "\n"
	        "Drive an event router that speaks Sluice's line or frame "
	        "format, at a\n"
	        "constant rate (latency from each event's planned send time) "
	        "or as fast\n"
	        "as it takes them, and optionally check what comes out of its "
	        "tcp sink.\n"
	        "\n"
	        "TARGET  tcp://HOST:PORT (the default, tcp://127.0.0.1:7400), "
	        "HOST:PORT,\n"
	        "        udp://HOST:PORT, unix:/PATH (stream), unixgram:/PATH\n"
	        "\n"
	        "Load\n"
	        "  -f, --format lines|frames  what to send (default lines)\n"
	        "  -c, --conns N          connections or datagram sockets "
	        "(default 4)\n"
	        "  -d, --depth N          events outstanding per connection: "
	        "unacknowledged\n"
	        "                         with ACKs, else written at once "
	        "(default 1024)\n"
	        "      --ack-every N      frames: ask for an ACK every N "
	        "events (default\n"
	        "                         64; 0: none)\n"
	        "  -r, --rate R[,R...]    events/s in all (open loop), a list "
	        "makes a\n"
	        "                         staircase; \"max\": as fast as "
	        "possible (default)\n"
	        "      --ramp FROM:TO:STEP  staircase from FROM to TO "
	        "events/s\n"
	        "      --step-time DUR    how long each step lasts (default "
	        "5s)\n"
	        "  -t, --duration DUR     how long to send (default 10s)\n"
	        "  -n, --count N          how many events to send, instead of "
	        "a duration\n"
	        "  -w, --warmup DUR       leave events planned this early out "
	        "of the\n"
	        "                         figures (default 0)\n"
	        "      --tick DUR         wake-up grid of the connections: "
	        "events wait\n"
	        "                         at most this long for their write "
	        "(default 100us)\n"
	        "      --dgram-size N     bytes per datagram, UDP and unixgram "
	        "(default 1400)\n"
	        "\n"
	        "Workload\n"
	        "  -k, --keys N           distinct keys (default 10000)\n"
	        "      --dist D           uniform, zipf:S or hot:F:P[:C] "
	        "(default uniform)\n"
	        "      --kinds K          kinds and weights, e.g. set:9,del:1 "
	        "(default set)\n"
	        "      --payload SIZE     N, uniform:A-B or exp:MEAN bytes, at "
	        "least 30\n"
	        "                         (default 30)\n"
	        "      --seed N           seed of every random choice (default "
	        "1)\n"
	        "\n"
	        "Verify\n"
	        "      --verify ADDR      listen as the router's tcp sink on "
	        "ADDR, check\n"
	        "                         every key's last version came back, "
	        "and measure\n"
	        "                         send-to-reconcile latency\n"
	        "      --verify-timeout DUR  how long to wait for the last "
	        "versions\n"
	        "                         after sending ends (default 10s)\n"
	        "\n"
	        "Errors\n"
	        "      --connect-timeout DUR  (default 3s)\n"
	        "      --stall-timeout DUR  a write or an ACK that makes no "
	        "progress this\n"
	        "                         long breaks the connection (default "
	        "10s)\n"
	        "      --give-up DUR      stop when the target stays "
	        "unreachable this long\n"
	        "                         (default 10s)\n"
	        "\n"
	        "Output\n"
	        "      --interval DUR     progress and time-series interval "
	        "(default 1s)\n"
	        "      --slo DUR          a ramp step whose p99 is above this "
	        "is past the\n"
	        "                         knee (default 10ms)\n"
	        "      --json             the summary as JSON on stdout\n"
	        "      --progress, --no-progress  the live line on stderr "
	        "(default: on a\n"
	        "                         terminal)\n"
	        "      --report DIR       data files, a gnuplot script and "
	        "PNG/SVG plots\n"
	        "      --hist-out PREFIX  write each latency histogram to "
	        "PREFIX-NAME.hdr\n"
	        "      --procs N          processors of the runtime (default "
	        "1)\n"
	        "      --cpus LIST        CPUs to run on, e.g. 1 or 0-1 "
	        "(default any)\n"
	        "  -h, --help             this text\n"
	        "  -V, --version          the version\n");
	/* clang-format on */
}

static int opts_fail(char *err, size_t errlen, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int
opts_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int
load_parse_duration(const char *s, uint64_t *ns)
{
	static const struct {
		const char *unit;
		double ns;
	} units[] = {
	        {"ns", 1},   {"us", 1e3},   {"ms", 1e6}, {"s", 1e9},
	        {"m", 60e9}, {"h", 3600e9}, {"", 1e9},
	};
	char *end;
	double v = strtod(s, &end);

	if (end == s || !(v >= 0) || *s == '-' || *s == '+')
		return -EINVAL;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].unit))
			continue;
		v *= units[i].ns;
		if (v > 1e18)
			return -EINVAL;
		*ns = (uint64_t)(v + 0.5);
		return 0;
	}
	return -EINVAL;
}

int
load_parse_amount(const char *s, double *out)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || !(v >= 0) || !isfinite(v) || *s == '-' || *s == '+')
		return -EINVAL;
	switch (*end) {
	case 'k':
	case 'K':
		v *= 1e3;
		end++;
		break;
	case 'M':
		v *= 1e6;
		end++;
		break;
	case 'G':
		v *= 1e9;
		end++;
		break;
	default:
		break;
	}
	if (*end)
		return -EINVAL;
	*out = v;
	return 0;
}

void
load_format_duration(uint64_t ns, char *buf, size_t len)
{
	if (ns < 1000)
		snprintf(buf, len, "%lluns", (unsigned long long)ns);
	else if (ns < 1000000)
		snprintf(buf, len, "%.3gus", (double)ns / 1e3);
	else if (ns < 1000000000)
		snprintf(buf, len, "%.3gms", (double)ns / 1e6);
	else
		snprintf(buf, len, "%.3gs", (double)ns / 1e9);
}

void
load_format_amount(double v, char *buf, size_t len)
{
	if (v < 1e3)
		snprintf(buf, len, "%.0f", v);
	else if (v < 1e6)
		snprintf(buf, len, "%.3gk", v / 1e3);
	else if (v < 1e9)
		snprintf(buf, len, "%.3gM", v / 1e6);
	else
		snprintf(buf, len, "%.3gG", v / 1e9);
}

static void
opts_defaults(struct load_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->type = LOAD_TARGET_TCP;
	snprintf(o->target, sizeof(o->target), "tcp://127.0.0.1:7400");
	snprintf(o->addr, sizeof(o->addr), "127.0.0.1:7400");
	o->conns = 4;
	o->depth = 1024;
	o->ack_every = 64;
	o->dgram_max = 1400;
	o->tick_ns = 100 * 1000;
	o->wl.nkeys = 10000;
	o->wl.dist.kind = LOAD_DIST_UNIFORM;
	o->wl.size.kind = LOAD_SIZE_FIXED;
	o->wl.size.a = o->wl.size.b = LOAD_PAYLOAD_HEAD;
	o->wl.seed = 1;
	o->verify_timeout_ns = 10 * UINT64_C(1000000000);
	o->connect_timeout_ns = 3 * UINT64_C(1000000000);
	o->stall_timeout_ns = 10 * UINT64_C(1000000000);
	o->give_up_ns = 10 * UINT64_C(1000000000);
	o->procs = 1;
	o->interval_ns = UINT64_C(1000000000);
	o->slo_ns = 10 * UINT64_C(1000000);
	o->progress = -1;
}

static int
opts_target(struct load_opts *o, const char *t, char *err, size_t errlen)
{
	static const struct {
		const char *prefix;
		enum load_target_type type;
		bool keep; /* the prefix is part of io/'s address */
	} forms[] = {
	        {"tcp://", LOAD_TARGET_TCP, false},
	        {"udp://", LOAD_TARGET_UDP, false},
	        {"unixgram:", LOAD_TARGET_UNIXGRAM, false},
	        {"unix:", LOAD_TARGET_UNIX, true},
	};
	const char *rest = t;

	if (strlen(t) >= sizeof(o->addr) - 8)
		return opts_fail(err, errlen, "target too long: %s", t);
	o->type = LOAD_TARGET_TCP;
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		size_t n = strlen(forms[i].prefix);

		if (strncmp(t, forms[i].prefix, n))
			continue;
		o->type = forms[i].type;
		rest = forms[i].keep ? t : t + n;
		break;
	}
	if (!*rest ||
	    (o->type == LOAD_TARGET_UNIXGRAM && *rest != '/' && *rest != '@'))
		return opts_fail(err, errlen,
		                 "bad target '%s': tcp://HOST:PORT, "
		                 "udp://HOST:PORT, unix:/PATH or "
		                 "unixgram:/PATH",
		                 t);
	snprintf(o->target, sizeof(o->target), "%s", t);
	snprintf(o->addr, sizeof(o->addr), "%s", rest);
	return 0;
}

/* Rates "R" or "R1,R2,...": the steps' rates (0 with max for "max"). */
static int
opts_rates(struct load_opts *o, const char *s, char *err, size_t errlen)
{
	char buf[1024], *save = NULL, *tok;

	o->plan.nsteps = 0;
	o->plan.max = false;
	if (!strcmp(s, "max") || !strcmp(s, "0")) {
		o->plan.max = true;
		return 0;
	}
	snprintf(buf, sizeof(buf), "%s", s);
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		double r;

		if (load_parse_amount(tok, &r) || !(r > 0))
			return opts_fail(err, errlen,
			                 "bad rate '%s': events per second "
			                 "above 0 (50000, 50k, 1.5M) or max",
			                 tok);
		if (o->plan.nsteps == LOAD_MAX_STEPS)
			return opts_fail(err, errlen, "at most %d rates",
			                 LOAD_MAX_STEPS);
		o->plan.steps[o->plan.nsteps++].rate = r;
	}
	if (!o->plan.nsteps)
		return opts_fail(err, errlen, "no rate given");
	return 0;
}

static int
opts_ramp(struct load_opts *o, const char *s, char *err, size_t errlen)
{
	char buf[256], *a, *b, *c;
	double from, to, step;

	snprintf(buf, sizeof(buf), "%s", s);
	a = buf;
	b = strchr(a, ':');
	c = b ? strchr(b + 1, ':') : NULL;
	if (!b || !c)
		goto bad;
	*b++ = '\0';
	*c++ = '\0';
	if (load_parse_amount(a, &from) || load_parse_amount(b, &to) ||
	    load_parse_amount(c, &step) || !(from > 0) || !(step > 0) ||
	    to < from)
		goto bad;
	o->plan.max = false;
	o->plan.nsteps = 0;
	for (double r = from; r <= to * (1 + 1e-9); r += step) {
		if (o->plan.nsteps == LOAD_MAX_STEPS)
			return opts_fail(err, errlen,
			                 "a ramp has at most %d steps",
			                 LOAD_MAX_STEPS);
		o->plan.steps[o->plan.nsteps++].rate = r;
	}
	return 0;
bad:
	return opts_fail(err, errlen,
	                 "bad ramp '%s': FROM:TO:STEP in events per second, "
	                 "0 < FROM <= TO, e.g. 10k:100k:10k",
	                 s);
}

/* What the options that shape the plan said, before it is built. */
struct plan_args {
	bool ramp;
	bool duration_set, count_set;
	uint64_t duration_ns, step_ns;
	double count;
};

static int
opts_build_plan(struct load_opts *o, const struct plan_args *a, char *err,
                size_t errlen)
{
	struct load_plan *p = &o->plan;

	if (a->ramp && a->duration_set)
		return opts_fail(err, errlen,
		                 "--ramp runs for its steps: give --step-time, "
		                 "not --duration");
	p->total = a->count_set ? (uint64_t)a->count : 0;
	if (a->count_set && !p->total)
		return opts_fail(err, errlen, "--count must be above 0");
	if (p->max) {
		p->nsteps = 1;
		p->steps[0].rate = 0;
		p->steps[0].dur_ns =
		        a->count_set && !a->duration_set ? 0 : a->duration_ns;
	} else if (p->nsteps == 1 && !a->ramp) {
		p->steps[0].dur_ns =
		        a->count_set && !a->duration_set ? 0 : a->duration_ns;
	} else {
		for (unsigned k = 0; k < p->nsteps; k++)
			p->steps[k].dur_ns = a->step_ns;
	}
	if (load_plan_init(p))
		return opts_fail(err, errlen,
		                 "the rate, duration and count give no "
		                 "events to send");
	if (p->warmup_ns && load_plan_length(p) &&
	    p->warmup_ns >= load_plan_length(p))
		return opts_fail(err, errlen,
		                 "--warmup is as long as the whole run");
	return 0;
}

static int
opts_check(struct load_opts *o, char *err, size_t errlen)
{
	bool stream = o->type == LOAD_TARGET_TCP || o->type == LOAD_TARGET_UNIX;

	if (!o->conns || o->conns > 10000)
		return opts_fail(err, errlen, "--conns must be 1 to 10000");
	if (o->conns > o->wl.nkeys)
		return opts_fail(err, errlen,
		                 "--conns %u is more than --keys %llu: each "
		                 "connection needs keys of its own",
		                 o->conns, (unsigned long long)o->wl.nkeys);
	if (!o->depth || o->depth > 1u << 20)
		return opts_fail(err, errlen, "--depth must be 1 to 1048576");
	if (!o->wl.frames || !stream)
		o->ack_every = 0;
	if (o->ack_every > o->depth)
		return opts_fail(err, errlen,
		                 "--ack-every %u is above --depth %u: the "
		                 "window would close before an ACK came",
		                 o->ack_every, o->depth);
	if (o->dgram_max < 64 || o->dgram_max > 65507)
		return opts_fail(err, errlen,
		                 "--dgram-size must be 64 to 65507");
	if (!o->procs || o->procs > 256)
		return opts_fail(err, errlen, "--procs must be 1 to 256");
	if (!o->interval_ns)
		return opts_fail(err, errlen, "--interval must be above 0");
	if (load_workload_init(&o->wl))
		return opts_fail(err, errlen, "--keys must be 1 to 2^32");
	return 0;
}

enum {
	OPT_ACK_EVERY = 256,
	OPT_RAMP,
	OPT_STEP_TIME,
	OPT_TICK,
	OPT_DGRAM,
	OPT_DIST,
	OPT_KINDS,
	OPT_PAYLOAD,
	OPT_SEED,
	OPT_VERIFY,
	OPT_VERIFY_TIMEOUT,
	OPT_CONNECT_TIMEOUT,
	OPT_STALL_TIMEOUT,
	OPT_GIVE_UP,
	OPT_INTERVAL,
	OPT_SLO,
	OPT_JSON,
	OPT_PROGRESS,
	OPT_NO_PROGRESS,
	OPT_REPORT,
	OPT_HIST_OUT,
	OPT_PROCS,
	OPT_CPUS,
};

static const struct option opts_long[] = {
        {"format", required_argument, NULL, 'f'},
        {"conns", required_argument, NULL, 'c'},
        {"depth", required_argument, NULL, 'd'},
        {"ack-every", required_argument, NULL, OPT_ACK_EVERY},
        {"rate", required_argument, NULL, 'r'},
        {"ramp", required_argument, NULL, OPT_RAMP},
        {"step-time", required_argument, NULL, OPT_STEP_TIME},
        {"duration", required_argument, NULL, 't'},
        {"count", required_argument, NULL, 'n'},
        {"warmup", required_argument, NULL, 'w'},
        {"tick", required_argument, NULL, OPT_TICK},
        {"dgram-size", required_argument, NULL, OPT_DGRAM},
        {"keys", required_argument, NULL, 'k'},
        {"dist", required_argument, NULL, OPT_DIST},
        {"kinds", required_argument, NULL, OPT_KINDS},
        {"payload", required_argument, NULL, OPT_PAYLOAD},
        {"seed", required_argument, NULL, OPT_SEED},
        {"verify", required_argument, NULL, OPT_VERIFY},
        {"verify-timeout", required_argument, NULL, OPT_VERIFY_TIMEOUT},
        {"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
        {"stall-timeout", required_argument, NULL, OPT_STALL_TIMEOUT},
        {"give-up", required_argument, NULL, OPT_GIVE_UP},
        {"interval", required_argument, NULL, OPT_INTERVAL},
        {"slo", required_argument, NULL, OPT_SLO},
        {"json", no_argument, NULL, OPT_JSON},
        {"progress", no_argument, NULL, OPT_PROGRESS},
        {"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
        {"report", required_argument, NULL, OPT_REPORT},
        {"hist-out", required_argument, NULL, OPT_HIST_OUT},
        {"procs", required_argument, NULL, OPT_PROCS},
        {"cpus", required_argument, NULL, OPT_CPUS},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {0},
};

/* An unsigned option value in [lo, hi]. */
static int
opts_uint(const char *name, const char *s, double lo, double hi, double *out,
          char *err, size_t errlen)
{
	if (load_parse_amount(s, out) || *out < lo || *out > hi ||
	    *out != floor(*out))
		return opts_fail(err, errlen, "--%s: bad number '%s'", name, s);
	return 0;
}

static int
opts_dur(const char *name, const char *s, uint64_t *ns, char *err,
         size_t errlen)
{
	if (load_parse_duration(s, ns))
		return opts_fail(err, errlen,
		                 "--%s: bad duration '%s' (e.g. 500ms, 10s, "
		                 "2m)",
		                 name, s);
	return 0;
}

/* Options about the load itself. */
static int
opts_one_load(struct load_opts *o, struct plan_args *pa, int c, const char *v,
              char *err, size_t errlen)
{
	double x;

	switch (c) {
	case 'f':
		if (strcmp(v, "lines") && strcmp(v, "frames"))
			return opts_fail(err, errlen,
			                 "--format is lines or frames");
		o->wl.frames = !strcmp(v, "frames");
		return 0;
	case 'c':
		if (opts_uint("conns", v, 1, 10000, &x, err, errlen))
			return -EINVAL;
		o->conns = (unsigned)x;
		return 0;
	case 'd':
		if (opts_uint("depth", v, 1, 1 << 20, &x, err, errlen))
			return -EINVAL;
		o->depth = (unsigned)x;
		return 0;
	case OPT_ACK_EVERY:
		if (opts_uint("ack-every", v, 0, 1 << 20, &x, err, errlen))
			return -EINVAL;
		o->ack_every = (uint32_t)x;
		return 0;
	case 'r':
		pa->ramp = false;
		return opts_rates(o, v, err, errlen);
	case OPT_RAMP:
		pa->ramp = true;
		return opts_ramp(o, v, err, errlen);
	case OPT_STEP_TIME:
		return opts_dur("step-time", v, &pa->step_ns, err, errlen);
	case 't':
		pa->duration_set = true;
		return opts_dur("duration", v, &pa->duration_ns, err, errlen);
	case 'n':
		pa->count_set = true;
		return opts_uint("count", v, 1, 1e15, &pa->count, err, errlen);
	case 'w':
		return opts_dur("warmup", v, &o->plan.warmup_ns, err, errlen);
	case OPT_TICK:
		return opts_dur("tick", v, &o->tick_ns, err, errlen);
	case OPT_DGRAM:
		if (opts_uint("dgram-size", v, 64, 65507, &x, err, errlen))
			return -EINVAL;
		o->dgram_max = (size_t)x;
		return 0;
	default:
		return 1;
	}
}

/* Options about the workload. */
static int
opts_one_workload(struct load_opts *o, int c, const char *v, char *err,
                  size_t errlen)
{
	double x;

	switch (c) {
	case 'k':
		if (opts_uint("keys", v, 1, 4294967296.0, &x, err, errlen))
			return -EINVAL;
		o->wl.nkeys = (uint64_t)x;
		return 0;
	case OPT_DIST:
		return load_dist_parse(v, &o->wl.dist, err, errlen);
	case OPT_KINDS:
		return load_kinds_parse(v, &o->wl, err, errlen);
	case OPT_PAYLOAD:
		return load_size_parse(v, &o->wl.size, err, errlen);
	case OPT_SEED:
		if (opts_uint("seed", v, 0, 1.8e19, &x, err, errlen))
			return -EINVAL;
		o->wl.seed = (uint64_t)strtoull(v, NULL, 10);
		return 0;
	default:
		return 1;
	}
}

/* Verify, error and output options. */
static int
opts_one_other(struct load_opts *o, int c, const char *v, char *err,
               size_t errlen)
{
	double x;

	switch (c) {
	case OPT_VERIFY:
		o->verify = true;
		snprintf(o->sink_addr, sizeof(o->sink_addr), "%s", v);
		return 0;
	case OPT_VERIFY_TIMEOUT:
		return opts_dur("verify-timeout", v, &o->verify_timeout_ns, err,
		                errlen);
	case OPT_CONNECT_TIMEOUT:
		return opts_dur("connect-timeout", v, &o->connect_timeout_ns,
		                err, errlen);
	case OPT_STALL_TIMEOUT:
		return opts_dur("stall-timeout", v, &o->stall_timeout_ns, err,
		                errlen);
	case OPT_GIVE_UP:
		return opts_dur("give-up", v, &o->give_up_ns, err, errlen);
	case OPT_INTERVAL:
		return opts_dur("interval", v, &o->interval_ns, err, errlen);
	case OPT_SLO:
		return opts_dur("slo", v, &o->slo_ns, err, errlen);
	case OPT_JSON:
		o->json = true;
		return 0;
	case OPT_PROGRESS:
	case OPT_NO_PROGRESS:
		o->progress = c == OPT_PROGRESS;
		return 0;
	case OPT_REPORT:
		o->report_dir = v;
		return 0;
	case OPT_HIST_OUT:
		o->hist_out = v;
		return 0;
	case OPT_PROCS:
		if (opts_uint("procs", v, 1, 256, &x, err, errlen))
			return -EINVAL;
		o->procs = (unsigned)x;
		return 0;
	case OPT_CPUS:
		o->cpus = v;
		return 0;
	default:
		return 1;
	}
}

static int
opts_merge(int argc, char **argv, struct load_opts *o, char *err, size_t errlen)
{
	o->merge = true;
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			o->json = true;
		} else if (!strcmp(argv[i], "--hist-out") && i + 1 < argc) {
			o->hist_out = argv[++i];
		} else if (argv[i][0] == '-' && argv[i][1]) {
			return opts_fail(err, errlen,
			                 "merge: unknown option %s", argv[i]);
		} else {
			o->merge_files[o->nmerge++] = argv[i];
		}
	}
	if (!o->nmerge)
		return opts_fail(err, errlen, "merge: no histogram files");
	return 0;
}

int
load_opts_parse(int argc, char **argv, struct load_opts *o, char *err,
                size_t errlen)
{
	struct plan_args pa = {.duration_ns = 10 * UINT64_C(1000000000),
	                       .step_ns = 5 * UINT64_C(1000000000)};
	int c, r;

	opts_defaults(o);
	o->plan.max = true;
	if (load_kinds_parse("set", &o->wl, err, errlen))
		return -EINVAL;
	if (argc > 1 && !strcmp(argv[1], "merge")) {
		o->merge_files = calloc((size_t)argc, sizeof(char *));
		if (!o->merge_files)
			return opts_fail(err, errlen, "out of memory");
		return opts_merge(argc, argv, o, err, errlen);
	}
	optind = 1;
	while ((c = getopt_long(argc, argv, "f:c:d:r:t:n:w:k:hV", opts_long,
	                        NULL)) != -1) {
		if (c == 'h') {
			load_usage(stdout);
			return 1;
		}
		if (c == 'V') {
			printf("sluice-load " LOAD_VERSION "\n");
			return 1;
		}
		if (c == '?')
			return opts_fail(err, errlen,
			                 "bad option (see --help)");
		r = opts_one_load(o, &pa, c, optarg, err, errlen);
		if (r > 0)
			r = opts_one_workload(o, c, optarg, err, errlen);
		if (r > 0)
			r = opts_one_other(o, c, optarg, err, errlen);
		if (r)
			return -EINVAL;
	}
	if (optind < argc - 1)
		return opts_fail(err, errlen, "one target only, not '%s'",
		                 argv[optind + 1]);
	if (optind == argc - 1 && opts_target(o, argv[optind], err, errlen))
		return -EINVAL;
	if (opts_check(o, err, errlen))
		return -EINVAL;
	return opts_build_plan(o, &pa, err, errlen);
}
