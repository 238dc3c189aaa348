/* SPDX-License-Identifier: MIT */
/*
 * Reports.  Latencies are printed with three significant digits, the
 * histogram's precision; data files hold milliseconds.
 */
#include "tools/load/report.h"

#include <errno.h>
#include <math.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const char *const target_names[] = {"tcp", "udp", "unix", "unixgram"};

static enum load_metric
report_primary(const struct load_opts *o)
{
	return load_primary_metric(o->verify, o->ack_every > 0);
}

bool
load_report_passed(const struct load_opts *o, const struct load_result *r)
{
	if (r->fatal[0])
		return false;
	if (!o->verify)
		return true;
	return r->vr.stale == 0 && r->vr.missing == 0 &&
	       r->vr.seen[LOAD_SEEN_UNSENT] == 0;
}

static double
step_seconds(const struct load_plan *p, unsigned k)
{
	return (double)p->steps[k].dur_ns / 1e9;
}

static double
step_achieved(const struct load_result *r, const struct load_plan *p,
              unsigned k)
{
	double s = step_seconds(p, k);

	return s > 0 ? (double)r->stats.steps[k].sent / s : 0;
}

static uint64_t
step_p99(const struct load_result *r, unsigned k, enum load_metric m)
{
	const struct load_hdr *h = r->stats.steps[k].lat[m];

	return h ? load_hdr_percentile(h, 99) : 0;
}

/* Whether ramp step @k kept its rate with a p99 within --slo. */
static bool
step_held(const struct load_opts *o, const struct load_result *r, unsigned k)
{
	const struct load_plan *p = &o->plan;

	return step_achieved(r, p, k) >= 0.95 * p->steps[k].rate &&
	       step_p99(r, k, report_primary(o)) <= o->slo_ns;
}

int
load_report_knee(const struct load_opts *o, const struct load_result *r)
{
	const struct load_plan *p = &o->plan;
	int knee = -1;

	if (p->max || p->nsteps < 2)
		return -1;
	for (unsigned k = 0; k < p->nsteps; k++)
		if (step_held(o, r, k))
			knee = (int)k;
	return knee;
}

/* ---- the table ---- */

static void
report_plan(const struct load_opts *o, FILE *out)
{
	const struct load_plan *p = &o->plan;
	char a[32], b[32], d[32];

	if (p->max) {
		fprintf(out, "  plan       max rate");
	} else if (p->nsteps == 1) {
		load_format_amount(p->steps[0].rate, a, sizeof(a));
		fprintf(out, "  plan       open loop at %s/s", a);
	} else {
		load_format_amount(p->steps[0].rate, a, sizeof(a));
		load_format_amount(p->steps[p->nsteps - 1].rate, b, sizeof(b));
		load_format_duration(p->steps[0].dur_ns, d, sizeof(d));
		fprintf(out, "  plan       ramp %s/s to %s/s in %u steps of %s",
		        a, b, p->nsteps, d);
	}
	if (p->total)
		fprintf(out, ", %llu events", (unsigned long long)p->total);
	if (load_plan_length(p)) {
		load_format_duration(load_plan_length(p), d, sizeof(d));
		fprintf(out, ", %s", d);
	}
	if (p->warmup_ns) {
		load_format_duration(p->warmup_ns, d, sizeof(d));
		fprintf(out, ", warm-up %s", d);
	}
	fputc('\n', out);
}

static void
report_head(const struct load_opts *o, FILE *out)
{
	char dist[64], size[64], kinds[256] = "";
	size_t off = 0;

	fprintf(out, "sluice-load: %s, %s, %u %s, depth %u", o->target,
	        o->wl.frames ? "frames" : "lines", o->conns,
	        o->type == LOAD_TARGET_TCP || o->type == LOAD_TARGET_UNIX
	                ? "connections"
	                : "sockets",
	        o->depth);
	if (o->ack_every)
		fprintf(out, ", ACK every %u", o->ack_every);
	fputc('\n', out);
	report_plan(o, out);
	load_dist_format(&o->wl.dist, dist, sizeof(dist));
	load_size_format(&o->wl.size, size, sizeof(size));
	for (unsigned i = 0; i < o->wl.nkinds && off < sizeof(kinds); i++)
		off += (size_t)snprintf(kinds + off, sizeof(kinds) - off,
		                        "%s%s:%u", i ? "," : "",
		                        o->wl.kinds[i].name,
		                        o->wl.kinds[i].weight);
	fprintf(out,
	        "  workload   %llu keys %s, kinds %s, payload %s B, seed "
	        "%llu\n",
	        (unsigned long long)o->wl.nkeys, dist, kinds, size,
	        (unsigned long long)o->wl.seed);
}

static void
report_counts(const struct load_opts *o, const struct load_result *r, FILE *out)
{
	char rate[32], mb[32];
	double s = r->send_s > 0 ? r->send_s : 1e-9;

	load_format_amount((double)r->sent / s, rate, sizeof(rate));
	snprintf(mb, sizeof(mb), "%.1f MB/s", (double)r->bytes / s / 1e6);
	fprintf(out, "\n  sent       %llu events in %.2f s = %s/s (%s)%s\n",
	        (unsigned long long)r->sent, r->send_s, rate, mb,
	        r->interrupted ? ", stopped early" : "");
	if (o->ack_every)
		fprintf(out,
		        "  acked      %llu events, %llu left unacknowledged "
		        "(%llu end fences sent)\n",
		        (unsigned long long)r->acked,
		        (unsigned long long)r->unacked,
		        (unsigned long long)r->fences);
	if (o->verify)
		fprintf(out,
		        "  delivered  %llu new versions on %llu sink "
		        "connection%s (fold ratio %.2f)\n",
		        (unsigned long long)r->delivered,
		        (unsigned long long)r->sink_conns,
		        r->sink_conns == 1 ? "" : "s",
		        r->delivered ? (double)r->sent / (double)r->delivered
		                     : 0);
	fprintf(out,
	        "  errors     %llu: connect failures %llu, disconnects %llu, "
	        "write stalls %llu, ACK stalls %llu, datagram errors %llu, "
	        "sink errors %llu; events resent %llu, datagrams retried "
	        "%llu\n",
	        (unsigned long long)r->errors,
	        (unsigned long long)r->connect_failures,
	        (unsigned long long)r->disconnects,
	        (unsigned long long)r->send_timeouts,
	        (unsigned long long)r->ack_timeouts,
	        (unsigned long long)r->dgram_errors,
	        (unsigned long long)r->sink_errors,
	        (unsigned long long)r->resent,
	        (unsigned long long)r->dgram_retries);
	fprintf(out, "  cpu        %.2f s, %.0f%% of one core\n", r->cpu_s,
	        100 * r->cpu_s /
	                (r->send_s + r->converge_s > 0
	                         ? r->send_s + r->converge_s
	                         : 1));
}

static void
report_lat_row(const char *name, const struct load_summary *s, FILE *out)
{
	uint64_t v[] = {s->p50,   s->p90, s->p99,           s->p999,
	                s->p9999, s->max, (uint64_t)s->mean};
	char buf[32];

	fprintf(out, "  %-6s %10llu", name, (unsigned long long)s->n);
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		load_format_duration(v[i], buf, sizeof(buf));
		fprintf(out, " %8s", buf);
	}
	fputc('\n', out);
}

static void
report_latency(const struct load_result *r, FILE *out)
{
	fprintf(out, "\n  %-6s %10s %8s %8s %8s %8s %8s %8s %8s\n", "latency",
	        "count", "p50", "p90", "p99", "p99.9", "p99.99", "max", "mean");
	for (int m = 0; m < LOAD_M_COUNT; m++) {
		struct load_summary s;

		if (!r->stats.used[m])
			continue;
		load_summarize(&r->stats.total[m], &s);
		report_lat_row(load_metric_names[m], &s, out);
	}
}

static void
report_keys(const char *what, const uint64_t *keys, uint64_t n, FILE *out)
{
	if (!n)
		return;
	fprintf(out, "             %s keys:", what);
	for (uint64_t i = 0; i < n && i < LOAD_VERIFY_SAMPLES; i++)
		fprintf(out, " %llu", (unsigned long long)keys[i]);
	fprintf(out, "%s\n", n > LOAD_VERIFY_SAMPLES ? " ..." : "");
}

static void
report_verify(const struct load_opts *o, const struct load_result *r, FILE *out)
{
	const struct load_verify_result *v = &r->vr;

	fprintf(out,
	        "\n  verify     %s: %llu keys sent, %llu ok, %llu stale, %llu "
	        "missing; ",
	        load_report_passed(o, r) ? "PASS" : "FAIL",
	        (unsigned long long)v->keys_sent, (unsigned long long)v->ok,
	        (unsigned long long)v->stale, (unsigned long long)v->missing);
	if (r->converged)
		fprintf(out, "all delivered %.3f s after sending ended\n",
		        r->converge_s);
	else
		fprintf(out, "not all delivered within --verify-timeout\n");
	fprintf(out,
	        "             deliveries: %llu new, %llu repeated, %llu older, "
	        "%llu never sent, %llu unknown keys, %llu unreadable\n",
	        (unsigned long long)v->seen[LOAD_SEEN_NEW],
	        (unsigned long long)v->seen[LOAD_SEEN_REPEAT],
	        (unsigned long long)v->seen[LOAD_SEEN_OLDER],
	        (unsigned long long)v->seen[LOAD_SEEN_UNSENT],
	        (unsigned long long)v->seen[LOAD_SEEN_BAD_KEY],
	        (unsigned long long)v->malformed);
	report_keys("stale", v->stale_keys, v->stale, out);
	report_keys("missing", v->missing_keys, v->missing, out);
}

static void
report_steps(const struct load_opts *o, const struct load_result *r, FILE *out)
{
	const struct load_plan *p = &o->plan;
	enum load_metric m = report_primary(o);
	int knee = load_report_knee(o, r);
	char t[32], a[32], p50[32], p99[32], slo[32];

	fprintf(out, "\n  %-4s %10s %10s %9s %9s   (%s latency)\n", "step",
	        "target/s", "sent/s", "p50", "p99", load_metric_names[m]);
	for (unsigned k = 0; k < p->nsteps; k++) {
		const struct load_hdr *h = r->stats.steps[k].lat[m];

		load_format_amount(p->steps[k].rate, t, sizeof(t));
		load_format_amount(step_achieved(r, p, k), a, sizeof(a));
		load_format_duration(h ? load_hdr_percentile(h, 50) : 0, p50,
		                     sizeof(p50));
		load_format_duration(step_p99(r, k, m), p99, sizeof(p99));
		fprintf(out, "  %-4u %10s %10s %9s %9s  %-6s%s\n", k + 1, t, a,
		        p50, p99, step_held(o, r, k) ? "held" : "missed",
		        (int)k == knee ? "  <- knee" : "");
	}
	load_format_duration(o->slo_ns, slo, sizeof(slo));
	if (knee < 0)
		fprintf(out,
		        "  knee: none; no step kept 95%% of its rate with a "
		        "p99 within %s\n",
		        slo);
	else
		fprintf(out,
		        "  knee: %.0f events/s, the highest step that kept "
		        "95%% "
		        "of its rate with a p99 within %s\n",
		        p->steps[knee].rate, slo);
}

void
load_report_table(const struct load_opts *o, const struct load_result *r,
                  FILE *out)
{
	report_head(o, out);
	report_counts(o, r, out);
	report_latency(r, out);
	if (!o->plan.max && o->plan.nsteps > 1)
		report_steps(o, r, out);
	if (o->verify)
		report_verify(o, r, out);
	if (r->fatal[0])
		fprintf(out, "\n  FAILED: %s\n", r->fatal);
}

/* ---- JSON ---- */

static void
json_string(const char *s, FILE *out)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

static void
json_summary(const struct load_summary *s, FILE *out)
{
	fprintf(out,
	        "{\"count\": %llu, \"p50_ns\": %llu, \"p90_ns\": %llu, "
	        "\"p99_ns\": %llu, \"p999_ns\": %llu, \"p9999_ns\": %llu, "
	        "\"max_ns\": %llu, \"mean_ns\": %.0f}",
	        (unsigned long long)s->n, (unsigned long long)s->p50,
	        (unsigned long long)s->p90, (unsigned long long)s->p99,
	        (unsigned long long)s->p999, (unsigned long long)s->p9999,
	        (unsigned long long)s->max, s->mean);
}

static void
json_config(const struct load_opts *o, FILE *out)
{
	char dist[64], size[64];

	load_dist_format(&o->wl.dist, dist, sizeof(dist));
	load_size_format(&o->wl.size, size, sizeof(size));
	fprintf(out, "  \"target\": ");
	json_string(o->target, out);
	fprintf(out,
	        ",\n  \"transport\": \"%s\", \"format\": \"%s\", "
	        "\"conns\": %u, \"depth\": %u, \"ack_every\": %u,\n",
	        target_names[o->type], o->wl.frames ? "frames" : "lines",
	        o->conns, o->depth, o->ack_every);
	fprintf(out,
	        "  \"keys\": %llu, \"dist\": \"%s\", \"payload\": \"%s\", "
	        "\"seed\": %llu, \"max_rate\": %s, \"warmup_ns\": %llu,\n",
	        (unsigned long long)o->wl.nkeys, dist, size,
	        (unsigned long long)o->wl.seed, o->plan.max ? "true" : "false",
	        (unsigned long long)o->plan.warmup_ns);
}

static void
json_counts(const struct load_result *r, FILE *out)
{
	fprintf(out,
	        "  \"seconds\": %.6f, \"sent\": %llu, \"bytes\": %llu, "
	        "\"rate\": %.1f, \"acked\": %llu, \"unacked\": %llu, "
	        "\"delivered\": %llu,\n",
	        r->send_s, (unsigned long long)r->sent,
	        (unsigned long long)r->bytes,
	        r->send_s > 0 ? (double)r->sent / r->send_s : 0,
	        (unsigned long long)r->acked, (unsigned long long)r->unacked,
	        (unsigned long long)r->delivered);
	fprintf(out,
	        "  \"errors\": {\"total\": %llu, \"connect_failures\": %llu, "
	        "\"disconnects\": %llu, \"write_stalls\": %llu, "
	        "\"ack_stalls\": %llu, \"datagram\": %llu, \"sink\": %llu, "
	        "\"resent\": %llu, \"datagram_retries\": %llu},\n",
	        (unsigned long long)r->errors,
	        (unsigned long long)r->connect_failures,
	        (unsigned long long)r->disconnects,
	        (unsigned long long)r->send_timeouts,
	        (unsigned long long)r->ack_timeouts,
	        (unsigned long long)r->dgram_errors,
	        (unsigned long long)r->sink_errors,
	        (unsigned long long)r->resent,
	        (unsigned long long)r->dgram_retries);
	fprintf(out, "  \"cpu_seconds\": %.3f, \"interrupted\": %s,\n",
	        r->cpu_s, r->interrupted ? "true" : "false");
}

static void
json_latency(const struct load_result *r, FILE *out)
{
	bool first = true;

	fprintf(out, "  \"latency\": {");
	for (int m = 0; m < LOAD_M_COUNT; m++) {
		struct load_summary s;

		if (!r->stats.used[m])
			continue;
		load_summarize(&r->stats.total[m], &s);
		fprintf(out, "%s\n    \"%s\": ", first ? "" : ",",
		        load_metric_names[m]);
		json_summary(&s, out);
		first = false;
	}
	fprintf(out, "\n  },\n");
}

static void
json_steps(const struct load_opts *o, const struct load_result *r, FILE *out)
{
	const struct load_plan *p = &o->plan;
	enum load_metric m = report_primary(o);

	fprintf(out, "  \"knee_step\": %d,\n  \"steps\": [",
	        load_report_knee(o, r));
	for (unsigned k = 0; !p->max && k < p->nsteps; k++) {
		struct load_summary s = {0};

		if (r->stats.steps[k].lat[m])
			load_summarize(r->stats.steps[k].lat[m], &s);
		fprintf(out,
		        "%s\n    {\"target\": %.1f, \"sent_rate\": %.1f, "
		        "\"held\": %s, \"%s\": ",
		        k ? "," : "", p->steps[k].rate, step_achieved(r, p, k),
		        step_held(o, r, k) ? "true" : "false",
		        load_metric_names[m]);
		json_summary(&s, out);
		fputc('}', out);
	}
	fprintf(out, "\n  ],\n");
}

static void
json_verify(const struct load_opts *o, const struct load_result *r, FILE *out)
{
	const struct load_verify_result *v = &r->vr;

	if (!o->verify) {
		fprintf(out, "  \"verify\": null,\n");
		return;
	}
	fprintf(out,
	        "  \"verify\": {\"pass\": %s, \"keys_sent\": %llu, \"ok\": "
	        "%llu, \"stale\": %llu, \"missing\": %llu, \"converged\": %s, "
	        "\"converge_seconds\": %.6f, \"new\": %llu, \"repeated\": "
	        "%llu, \"older\": %llu, \"unsent\": %llu, \"unknown_keys\": "
	        "%llu, \"unreadable\": %llu},\n",
	        load_report_passed(o, r) ? "true" : "false",
	        (unsigned long long)v->keys_sent, (unsigned long long)v->ok,
	        (unsigned long long)v->stale, (unsigned long long)v->missing,
	        r->converged ? "true" : "false", r->converge_s,
	        (unsigned long long)v->seen[LOAD_SEEN_NEW],
	        (unsigned long long)v->seen[LOAD_SEEN_REPEAT],
	        (unsigned long long)v->seen[LOAD_SEEN_OLDER],
	        (unsigned long long)v->seen[LOAD_SEEN_UNSENT],
	        (unsigned long long)v->seen[LOAD_SEEN_BAD_KEY],
	        (unsigned long long)v->malformed);
}

void
load_report_json(const struct load_opts *o, const struct load_result *r,
                 FILE *out)
{
	fprintf(out, "{\n");
	json_config(o, out);
	json_counts(r, out);
	json_latency(r, out);
	json_steps(o, r, out);
	json_verify(o, r, out);
	fprintf(out, "  \"pass\": %s,\n  \"error\": ",
	        load_report_passed(o, r) ? "true" : "false");
	if (r->fatal[0])
		json_string(r->fatal, out);
	else
		fprintf(out, "null");
	fprintf(out, "\n}\n");
}

/* ---- histogram files ---- */

int
load_report_hist(const struct load_result *r, const char *prefix, FILE *log)
{
	for (int m = 0; m < LOAD_M_COUNT; m++) {
		char path[4096];
		FILE *f;
		int rc;

		if (!r->stats.used[m])
			continue;
		snprintf(path, sizeof(path), "%s-%s.hdr", prefix,
		         load_metric_names[m]);
		f = fopen(path, "w");
		if (!f) {
			rc = -errno;
			fprintf(log, "sluice-load: cannot write %s: %s\n", path,
			        strerror(-rc));
			return rc;
		}
		rc = load_hdr_write(&r->stats.total[m], load_metric_names[m],
		                    f);
		if (fclose(f) || rc) {
			fprintf(log, "sluice-load: cannot write %s\n", path);
			return -EIO;
		}
		fprintf(log, "sluice-load: wrote %s\n", path);
	}
	return 0;
}

/* ---- plots ---- */

static FILE *
plot_open(const char *dir, const char *name, FILE *log)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f)
		fprintf(log, "sluice-load: cannot write %s: %s\n", path,
		        strerror(errno));
	return f;
}

static void
plot_ms(FILE *f, const struct load_summary *s, uint64_t v)
{
	if (s->n)
		fprintf(f, " %.6f", (double)v / 1e6);
	else
		fprintf(f, " NaN");
}

static int
plot_series(const struct load_result *r, const char *dir, FILE *log)
{
	FILE *f = plot_open(dir, "series.dat", log);

	if (!f)
		return -EIO;
	fprintf(f, "# t_s target_per_s sent_per_s acked_per_s "
	           "delivered_per_s errors");
	for (int m = 0; m < LOAD_M_COUNT; m++)
		fprintf(f, " %s_p50_ms %s_p99_ms %s_max_ms",
		        load_metric_names[m], load_metric_names[m],
		        load_metric_names[m]);
	fprintf(f, " t_start_s\n");
	for (size_t i = 0; i < r->stats.nrows; i++) {
		const struct load_row *row = &r->stats.rows[i];

		fprintf(f, "%.3f ", row->t);
		/* No target past the plan's end, nor at max rate. */
		if (row->target > 0)
			fprintf(f, "%.1f", row->target);
		else
			fprintf(f, "NaN");
		fprintf(f, " %.1f %.1f %.1f %llu", row->sent, row->acked,
		        row->delivered, (unsigned long long)row->errors);
		for (int m = 0; m < LOAD_M_COUNT; m++) {
			const struct load_summary *s = &row->lat[m];

			plot_ms(f, s, s->p50);
			plot_ms(f, s, s->p99);
			plot_ms(f, s, s->max);
		}
		fprintf(f, " %.3f\n", i ? r->stats.rows[i - 1].t : 0.0);
	}
	return fclose(f) ? -EIO : 0;
}

/*
 * The percentile curve: points evenly spaced in log10(1 / (1 - p)), ten
 * per factor of ten, as far as the count supports, then the maximum.
 */
static int
plot_percentiles(const struct load_result *r, int m, const char *dir, FILE *log)
{
	const struct load_hdr *h = &r->stats.total[m];
	double top = h->total > 1 ? log10((double)h->total) : 0;
	char name[64];
	FILE *f;

	snprintf(name, sizeof(name), "percentiles-%s.dat",
	         load_metric_names[m]);
	f = plot_open(dir, name, log);
	if (!f)
		return -EIO;
	fprintf(f, "# percentile value_ms one_in\n");
	for (double x = 0; x <= top + 1e-9; x += 0.1) {
		double p = 100 * (1 - pow(10, -x));

		fprintf(f, "%.6f %.6f %.3f\n", p,
		        (double)load_hdr_percentile(h, p) / 1e6, pow(10, x));
	}
	fprintf(f, "100 %.6f %.3f\n", (double)h->max / 1e6, pow(10, top + 0.1));
	return fclose(f) ? -EIO : 0;
}

static int
plot_steps(const struct load_opts *o, const struct load_result *r,
           const char *dir, FILE *log)
{
	enum load_metric m = report_primary(o);
	FILE *f = plot_open(dir, "steps.dat", log);

	if (!f)
		return -EIO;
	fprintf(f, "# step target_per_s sent_per_s %s_p50_ms %s_p99_ms\n",
	        load_metric_names[m], load_metric_names[m]);
	for (unsigned k = 0; !o->plan.max && k < o->plan.nsteps; k++) {
		const struct load_hdr *h = r->stats.steps[k].lat[m];

		fprintf(f, "%u %.1f %.1f %.6f %.6f\n", k + 1,
		        o->plan.steps[k].rate, step_achieved(r, &o->plan, k),
		        h ? (double)load_hdr_percentile(h, 50) / 1e6 : 0,
		        (double)step_p99(r, k, m) / 1e6);
	}
	return fclose(f) ? -EIO : 0;
}

/* Columns of series.dat: a metric's p50, p99 and max (@which 0, 1, 2);
 * for LOAD_M_COUNT, the row's start time. */
static int
plot_col(int m, int which)
{
	return 7 + 3 * m + which;
}

static void
plot_script_one(const struct load_result *r, FILE *f, const char *term,
                const char *ext)
{
	int t0 = plot_col(LOAD_M_COUNT, 0); /* rates are steps from here */
	const char *sep = "";

	fprintf(f, "set terminal %s\n", term);

	fprintf(f, "set output 'latency-over-time.%s'\n", ext);
	fprintf(f, "set title 'Latency over time (per interval)'\n"
	           "set xlabel 'seconds'\nset ylabel 'ms'\nset logscale y\n"
	           "set key top left\nset grid\nplot ");
	for (int m = 0; m < LOAD_M_COUNT; m++) {
		if (!r->stats.used[m])
			continue;
		fprintf(f,
		        "%s'series.dat' using 1:%d with lines title '%s p50', "
		        "'series.dat' using 1:%d with lines title '%s p99', "
		        "'series.dat' using 1:%d with lines dt 2 title '%s "
		        "max'",
		        sep, plot_col(m, 0), load_metric_names[m],
		        plot_col(m, 1), load_metric_names[m], plot_col(m, 2),
		        load_metric_names[m]);
		sep = ", ";
	}
	fprintf(f, "\nunset logscale\n");

	/* gnuplot reads tic labels as formats: a percent sign is doubled
	 * there, and again here for fprintf. */
	fprintf(f, "set output 'latency-by-percentile.%s'\n", ext);
	fprintf(f, "set title 'Latency by percentile (whole run, warm-up "
	           "excluded)'\nset xlabel 'percentile'\nset ylabel 'ms'\n"
	           "set logscale x\nset logscale y\nset xrange [1:*]\n"
	           "set xtics ('0%%%%' 1, '90%%%%' 10, '99%%%%' 100, "
	           "'99.9%%%%' 1000, '99.99%%%%' 10000, '99.999%%%%' 100000, "
	           "'99.9999%%%%' 1000000)\nplot ");
	sep = "";
	for (int m = 0; m < LOAD_M_COUNT; m++) {
		if (!r->stats.used[m])
			continue;
		fprintf(f,
		        "%s'percentiles-%s.dat' using 3:2 with lines title "
		        "'%s'",
		        sep, load_metric_names[m], load_metric_names[m]);
		sep = ", ";
	}
	fprintf(f, "\nunset logscale\nset xtics autofreq\nset xrange [*:*]\n");

	fprintf(f, "set output 'throughput.%s'\n", ext);
	fprintf(f,
	        "set title 'Throughput over time'\nset xlabel 'seconds'\n"
	        "set ylabel 'events per second'\nset format y '%%.1s%%c'\n"
	        "set yrange [0:*]\nset offsets 0, 0, graph 0.08, 0\n"
	        "plot 'series.dat' using %d:2 with steps dt 2 title 'target', "
	        "'series.dat' using %d:3 with steps title 'sent'",
	        t0, t0);
	if (r->stats.used[LOAD_M_ACK])
		fprintf(f, ", 'series.dat' using %d:4 with steps title 'acked'",
		        t0);
	if (r->stats.used[LOAD_M_E2E])
		fprintf(f,
		        ", 'series.dat' using %d:5 with steps title "
		        "'delivered (new versions)'",
		        t0);
	fprintf(f, "\nset output\nset format y\nset yrange [*:*]\n"
	           "set offsets 0, 0, 0, 0\n");
}

static int
plot_script(const struct load_result *r, const char *dir, FILE *log)
{
	FILE *f = plot_open(dir, "plots.gp", log);

	if (!f)
		return -EIO;
	fprintf(f, "# Plots of a sluice-load run: gnuplot plots.gp, in this "
	           "directory.\nset datafile missing 'NaN'\n");
	plot_script_one(r, f, "pngcairo size 1000,600", "png");
	plot_script_one(r, f, "svg size 1000,600 dynamic", "svg");
	return fclose(f) ? -EIO : 0;
}

/* Whether @name is an executable file on $PATH. */
static bool
plot_have(const char *name)
{
	const char *path = getenv("PATH");
	char buf[4096];

	while (path && *path) {
		const char *colon = strchr(path, ':');
		size_t n = colon ? (size_t)(colon - path) : strlen(path);

		snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, path, name);
		if (n && !access(buf, X_OK))
			return true;
		path = colon ? colon + 1 : NULL;
	}
	return false;
}

/* Run gnuplot on plots.gp inside @dir.  Return: its exit status or -1. */
static int
plot_run(const char *dir)
{
	static char gnuplot[] = "gnuplot", dash_e[] = "-e";
	char cd[4200], script[4200];
	char *argv[] = {gnuplot, dash_e, cd, script, NULL};
	pid_t pid;
	int status;

	/* gnuplot's own cd keeps the script's file names relative. */
	snprintf(cd, sizeof(cd), "cd '%s'", dir);
	snprintf(script, sizeof(script), "%s/plots.gp", dir);
	if (script[0] != '/') {
		/* After the cd, a relative path would be taken from @dir. */
		snprintf(script, sizeof(script), "plots.gp");
	}
	if (posix_spawnp(&pid, gnuplot, NULL, NULL, argv, environ))
		return -1;
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

int
load_report_plots(const struct load_opts *o, const struct load_result *r,
                  const char *dir, FILE *log)
{
	int rc;

	if (mkdir(dir, 0755) && errno != EEXIST) {
		fprintf(log, "sluice-load: cannot make %s: %s\n", dir,
		        strerror(errno));
		return -errno;
	}
	rc = plot_series(r, dir, log);
	for (int m = 0; m < LOAD_M_COUNT && !rc; m++)
		if (r->stats.used[m])
			rc = plot_percentiles(r, m, dir, log);
	if (!rc)
		rc = plot_steps(o, r, dir, log);
	if (!rc)
		rc = plot_script(r, dir, log);
	if (rc)
		return rc;
	if (!plot_have("gnuplot")) {
		fprintf(log,
		        "sluice-load: wrote the data and %s/plots.gp; gnuplot "
		        "is not installed, so no images (apt-get install "
		        "gnuplot-nox, then run gnuplot plots.gp there)\n",
		        dir);
		return 0;
	}
	rc = plot_run(dir);
	if (rc) {
		fprintf(log,
		        "sluice-load: gnuplot failed on %s/plots.gp "
		        "(status %d)\n",
		        dir, rc);
		return -EIO;
	}
	fprintf(log,
	        "sluice-load: wrote %s/{latency-over-time,"
	        "latency-by-percentile,throughput}.{png,svg}\n",
	        dir);
	return 0;
}

/* ---- merge ---- */

int
load_merge(const struct load_opts *o)
{
	struct load_hdr sum = {0}, h;
	struct load_summary s;
	char err[128], name[128];
	bool have = false;
	int status = 0;

	for (int i = 0; i < o->nmerge; i++) {
		FILE *f = fopen(o->merge_files[i], "r");
		int r;

		if (!f) {
			fprintf(stderr, "sluice-load: merge: %s: %s\n",
			        o->merge_files[i], strerror(errno));
			status = 1;
			goto out;
		}
		r = load_hdr_read(&h, f, name, sizeof(name), err, sizeof(err));
		fclose(f);
		if (r) {
			fprintf(stderr, "sluice-load: merge: %s: %s\n",
			        o->merge_files[i],
			        r == -EINVAL ? err : strerror(-r));
			status = 1;
			goto out;
		}
		if (!have) {
			sum = h;
			have = true;
			continue;
		}
		r = load_hdr_merge(&sum, &h);
		load_hdr_fini(&h);
		if (r) {
			fprintf(stderr,
			        "sluice-load: merge: %s: a histogram of "
			        "another "
			        "range or precision\n",
			        o->merge_files[i]);
			status = 1;
			goto out;
		}
	}
	load_summarize(&sum, &s);
	if (o->json) {
		fprintf(stdout, "{\"files\": %d, \"latency\": ", o->nmerge);
		json_summary(&s, stdout);
		fprintf(stdout, "}\n");
	} else {
		fprintf(stdout, "merged %d histograms\n", o->nmerge);
		fprintf(stdout, "  %-6s %10s %8s %8s %8s %8s %8s %8s %8s\n", "",
		        "count", "p50", "p90", "p99", "p99.9", "p99.99", "max",
		        "mean");
		report_lat_row("all", &s, stdout);
	}
	if (o->hist_out) {
		FILE *f = fopen(o->hist_out, "w");
		int r = f ? load_hdr_write(&sum, name, f) : -errno;

		if ((f && fclose(f)) || r) {
			fprintf(stderr, "sluice-load: merge: cannot write %s\n",
			        o->hist_out);
			status = 1;
		}
	}
out:
	if (have)
		load_hdr_fini(&sum);
	return status;
}
