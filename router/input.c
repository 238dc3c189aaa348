/* SPDX-License-Identifier: MIT */
/*
 * Inputs: listeners and datagram sockets that decode lines or frames into
 * events and feed them to the router.
 *
 * A stream input runs one task per connection.  The task reads with the
 * buffered reader, so a line or frame that lies within one receive buffer
 * is decoded straight out of it, and the event is the only copy.  Routing
 * parks the task while a shard it feeds is full; meanwhile its connection
 * is not read, its receive queue fills, the multishot receive stops, and
 * TCP closes the producer's window: back-pressure, end to end, with
 * nothing dropped.  Datagram inputs cannot push back: what the kernel
 * drops is counted.
 *
 * Bad input costs the sender, not the router: a malformed line or frame is
 * counted, logged (rate-limited) and skipped; an oversized one is skipped
 * to its end, with the limit in the log line; a connection that sends
 * max_malformed bad items is closed.
 */
#include <errno.h>
#include <string.h>

#include <mimalloc.h>

#include "io/bufio.h"
#include "io/net.h"
#include "router/router_internal.h"

struct input {
	struct input *next;
	struct sluice *r;
	char *name, *addr;
	struct sluice_input cfg;
	struct sl_listener *l;
	struct sl_dgram *d;
	struct sl_context *ctx;		/* cancelled to stop */
	struct sl_waitgroup wg;		/* its tasks */
	struct sl_task *acceptor;
	struct sl_addr bound;

	_Atomic uint64_t conns, events, malformed, oversized, closed_bad;
	_Atomic uint64_t bytes;
	/* Times a connection stopped receiving at max_buffered. */
	_Atomic uint64_t paused;
	/* Connections closed at accept for max_conns, as the listener last
	 * counted them: kept here once it is closed.  Under r->admin. */
	uint64_t refused;
};

struct conn_task {
	struct input *in;
	struct sl_conn *c;
	uint64_t malformed;
	uint64_t accepted;
	uint32_t ack_every;
	/* Lines decoded and not yet routed, and the bytes they came in. */
	struct sl_event *batch[SL__ROUTE_BATCH];
	unsigned nbatch;
	uint64_t batch_bytes;
	/* The connection's pause count as last added to the input's. */
	uint64_t pauses;
};

/* A connection is about to be closed for its bad input. */
static void
input_closed_bad(struct input *in, const char *why)
{
	atomic_fetch_add_explicit(&in->closed_bad, 1, memory_order_relaxed);
	sl__router_log("warn",
		       "msg=\"connection closed for bad input\" input=%s "
		       "why=\"%s\"",
		       in->name, why);
}

/* Count a bad item; true when the connection has sent too many. */
static bool
input_bad(struct conn_task *ct, int err, const char *why)
{
	struct input *in = ct->in;
	struct sluice *r = in->r;

	atomic_fetch_add_explicit(&r->st.malformed, 1, memory_order_relaxed);
	if (err == -EMSGSIZE) {
		atomic_fetch_add_explicit(&in->oversized, 1,
					  memory_order_relaxed);
		atomic_fetch_add_explicit(&r->st.oversized, 1,
					  memory_order_relaxed);
	} else {
		atomic_fetch_add_explicit(&in->malformed, 1,
					  memory_order_relaxed);
	}
	sl__router_log("warn", "msg=\"bad input skipped\" input=%s why=\"%s\"",
		       in->name, why);
	ct->malformed++;
	if (r->opts.max_malformed && ct->malformed >= r->opts.max_malformed) {
		atomic_fetch_add_explicit(&in->closed_bad, 1,
					  memory_order_relaxed);
		sl__router_log("warn",
			       "msg=\"connection closed: too much bad input\" "
			       "input=%s max_malformed=%u",
			       in->name, r->opts.max_malformed);
		return true;
	}
	return false;
}

/* Skip the rest of an oversized line: read up to and past the next LF. */
static int
skip_line(struct input *in, struct sl_conn *c)
{
	for (;;) {
		struct sl_iobuf b;
		const char *lf;
		int r = sl_conn_peek(in->ctx, c, &b);

		if (r <= 0)
			return r ? r : -EPIPE;
		lf = memchr(b.data, '\n', b.len);
		if (lf) {
			sl_conn_consume(c, (size_t)(lf - b.data) + 1);
			return 0;
		}
		sl_conn_consume(c, b.len);
	}
}

/*
 * Skip the @n body bytes of an oversized frame, through the reader: the
 * reader may still hold the frame's header as a view it has not consumed
 * from the connection, and only its next read settles that.  Going around
 * it to the connection would start the skip at the header, and end it
 * four bytes short whenever the body ends on a receive-buffer boundary.
 */
static int
skip_frame_body(struct input *in, struct sl_reader *rd, uint64_t n)
{
	while (n) {
		size_t take = n < rd->max ? (size_t)n : rd->max;
		const char *p;
		ssize_t r = sl_reader_exact(in->ctx, rd, take, &p);

		if (r <= 0)
			return r ? (int)r : -EPIPE;
		n -= take;
	}
	return 0;
}

/* Add the connection's new pauses to the input's count.  A paused
 * connection resumes only as its reader consumes, so counting where the
 * reader routes what it read keeps the metric current. */
static void
input_count_pauses(struct conn_task *ct)
{
	struct sl_conn_stats cs;

	sl_conn_stats_get(ct->c, &cs);
	if (cs.pauses == ct->pauses)
		return;
	atomic_fetch_add_explicit(&ct->in->paused, cs.pauses - ct->pauses,
				  memory_order_relaxed);
	ct->pauses = cs.pauses;
}

static int
input_route(struct conn_task *ct, struct sl_event *e)
{
	struct input *in = ct->in;
	int r = sl__route_event(in->r, in->ctx, e);

	if (r < 0)
		return r;
	atomic_fetch_add_explicit(&in->events, 1, memory_order_relaxed);
	input_count_pauses(ct);
	ct->accepted++;
	if (ct->ack_every && ct->accepted % ct->ack_every == 0) {
		char ack[SL_FRAME_HEADER + 8];
		size_t n = sl_frame_encode_ack(ct->accepted, ack, sizeof(ack));
		ssize_t s = sl_conn_send(in->ctx, ct->c, ack, n);

		if (s < 0)
			return (int)s;
	}
	return 0;
}

/*
 * Route the lines decoded so far, all at once (router.c batches the
 * table read, the clock read and one channel burst per shard), and count
 * them and their bytes in the input's shared counters once.
 */
static int
input_flush(struct conn_task *ct)
{
	struct input *in = ct->in;
	size_t ingested = 0;
	int r;

	if (!ct->nbatch)
		return 0;
	r = sl__route_batch(in->r, in->ctx, ct->batch, ct->nbatch, &ingested);
	atomic_fetch_add_explicit(&in->events, ingested, memory_order_relaxed);
	atomic_fetch_add_explicit(&in->bytes, ct->batch_bytes,
				  memory_order_relaxed);
	input_count_pauses(ct);
	ct->accepted += ingested;
	ct->nbatch = 0;
	ct->batch_bytes = 0;
	return r;
}

static int
serve_lines(struct conn_task *ct, struct sl_reader *rd)
{
	struct input *in = ct->in;
	const struct sl_wire_limits *lim = &in->r->opts.limits;

	for (;;) {
		struct sl_event *e;
		const char *line, *why = NULL;
		ssize_t n;
		int r;

		if (ct->nbatch == SL__ROUTE_BATCH) {
			r = input_flush(ct);
			if (r < 0)
				return r;
		}
		/* Lines are held back for a batch only while the next one is
		 * already here: a batch never waits on the network. */
		n = sl_reader_try_line(rd, '\n', &line);
		if (n == 0) {
			r = input_flush(ct);
			if (r < 0)
				return r;
			n = sl_reader_line(in->ctx, rd, '\n', &line);
		}
		if (n == -EMSGSIZE) {
			if (input_bad(ct, -EMSGSIZE,
				      "line longer than line_max"))
				return 0;
			r = input_flush(ct); /* skipping may wait for data */
			if (r)
				return r;
			r = skip_line(in, ct->c);
			if (r)
				return r;
			continue;
		}
		if (n <= 0)
			return (int)n;
		ct->batch_bytes += (uint64_t)n;
		r = sl_line_decode(line, (size_t)n, lim, &e, &why);
		if (r == -ENOMEM)
			return r;
		if (r) {
			if (input_bad(ct, r, why))
				return 0;
			continue;
		}
		if (e)
			ct->batch[ct->nbatch++] = e;
	}
}

static int
serve_frames(struct conn_task *ct, struct sl_reader *rd)
{
	struct input *in = ct->in;
	const struct sl_wire_limits *lim = &in->r->opts.limits;

	for (;;) {
		struct sl_frame f;
		const char *hdr, *body, *why = NULL;
		char head[4];
		ssize_t n = sl_reader_exact(in->ctx, rd, 4, &hdr);
		long total;
		int r;

		if (n <= 0)
			return (int)n;
		memcpy(head, hdr, 4);
		total = sl_frame_length(head, 4, lim, &why);
		if (total == -EMSGSIZE) {
			uint64_t len = ((uint64_t)(uint8_t)head[0] << 24) |
				       ((uint64_t)(uint8_t)head[1] << 16) |
				       ((uint64_t)(uint8_t)head[2] << 8) |
				       (uint64_t)(uint8_t)head[3];

			if (input_bad(ct, -EMSGSIZE, why))
				return 0;
			r = skip_frame_body(in, rd, len);
			if (r)
				return r;
			continue;
		}
		if (total < 0) {
			/* A length that cannot be a frame: the stream cannot
			 * be resynchronised, so the connection ends, and is
			 * counted as closed for bad input (unless reaching
			 * max_malformed counted it already). */
			if (!input_bad(ct, (int)total, why))
				input_closed_bad(in, why);
			return 0;
		}
		n = sl_reader_exact(in->ctx, rd, (size_t)total - 4, &body);
		if (n <= 0)
			return n ? (int)n : -EPIPE;
		atomic_fetch_add_explicit(&in->bytes, (uint64_t)total,
					  memory_order_relaxed);

		r = sl_frame_decode_body(body, (size_t)total - 4, lim, &f, &why);
		if (r == -ENOMEM)
			return r;
		if (r) {
			if (input_bad(ct, r, why))
				return 0;
			continue;
		}
		if (f.type == SL_FRAME_HELLO) {
			ct->ack_every = f.ack_every;
			continue;
		}
		if (f.type != SL_FRAME_EVENT) {
			if (input_bad(ct, -EBADMSG,
				      "frame type not sent by producers"))
				return 0;
			continue;
		}
		r = input_route(ct, f.event);
		if (r < 0)
			return r;
	}
}

static void
conn_task(void *arg)
{
	struct conn_task *ct = arg;
	struct input *in = ct->in;
	const struct sl_wire_limits *lim = &in->r->opts.limits;
	struct sl_reader rd;
	int r;

	sl_reader_init(&rd, ct->c, in->cfg.frames ? lim->frame_max
						  : lim->line_max);
	r = in->cfg.frames ? serve_frames(ct, &rd) : serve_lines(ct, &rd);
	/* However the connection ended, the lines it delivered are routed
	 * (unless the input is stopping, which drops them). */
	input_flush(ct);
	input_count_pauses(ct);
	if (r < 0 && r != -ECANCELED && r != -ECONNRESET && r != -EPIPE)
		sl__router_log("info",
			       "msg=\"connection ended\" input=%s err=\"%s\"",
			       in->name, sl_strerror(r));
	sl_reader_fini(&rd);
	sl_conn_close(ct->c);
	atomic_fetch_add_explicit(&in->r->st.conns_closed, 1,
				  memory_order_relaxed);
	mi_free(ct);
	sl_waitgroup_done(&in->wg);
}

static void
accept_task(void *arg)
{
	struct input *in = arg;

	for (;;) {
		struct conn_task *ct;
		struct sl_conn *c;
		uint64_t n;
		int r = sl_listener_accept(in->ctx, in->l, &c);

		if (r)
			break; /* stopped */
		ct = mi_zalloc(sizeof(*ct));
		if (!ct) {
			sl_conn_close(c);
			continue;
		}
		ct->in = in;
		ct->c = c;
		n = atomic_fetch_add_explicit(&in->conns, 1,
					      memory_order_relaxed);
		sl_waitgroup_add(&in->wg, 1);
		/*
		 * Connections start on the processors in turn (a connection's
		 * receive is armed where its task runs): decoding is most of
		 * the work, and a few busy connections left on the acceptor's
		 * processor would keep the others idle, since a task that
		 * runs on rarely sits in a run queue to be stolen.
		 */
		if (sl_task_spawn(conn_task, ct,
				  &(struct sl_task_opts){
					  .name = "conn",
					  .proc = (int)(n % in->r->nprocs)},
				  NULL)) {
			sl_waitgroup_done(&in->wg);
			sl_conn_close(c);
			mi_free(ct);
		}
	}
	sl_waitgroup_done(&in->wg);
}

/* A datagram holds one or more lines, or one or more frames. */
static void
dgram_task(void *arg)
{
	struct input *in = arg;
	const struct sl_wire_limits *lim = &in->r->opts.limits;
	struct conn_task ct = {.in = in};

	for (;;) {
		struct sl_datagram dg;
		const char *p, *end, *why = NULL;
		int r = sl_dgram_recv(in->ctx, in->d, &dg);

		if (r)
			break;
		atomic_fetch_add_explicit(&in->bytes, dg.len,
					  memory_order_relaxed);
		ct.malformed = 0; /* per datagram: no connection to close */
		if (dg.truncated) {
			input_bad(&ct, -EMSGSIZE,
				  "datagram larger than a receive buffer");
			sl_dgram_release(in->d, &dg);
			continue;
		}
		p = dg.data;
		end = dg.data + dg.len;
		while (p < end) {
			struct sl_event *e = NULL;
			size_t len;

			if (in->cfg.frames) {
				long total = sl_frame_length(p, (size_t)(end - p),
							     lim, &why);
				struct sl_frame f;

				if (total <= 0 || total > end - p) {
					input_bad(&ct, total < 0 ? (int)total
								 : -EBADMSG,
						  why ? why
						      : "frame cut short");
					break;
				}
				len = (size_t)total;
				r = sl_frame_decode(p, len, lim, &f, &why);
				e = r == 0 && f.type == SL_FRAME_EVENT
					    ? f.event
					    : NULL;
				if (r == 0 && !e) {
					r = -EBADMSG;
					why = "not an event";
				}
			} else {
				const char *lf = memchr(p, '\n',
							(size_t)(end - p));

				len = lf ? (size_t)(lf - p) + 1
					 : (size_t)(end - p);
				r = sl_line_decode(p, len, lim, &e, &why);
			}
			p += len;
			if (r) {
				input_bad(&ct, r, why);
				continue;
			}
			if (e && sl__route_event(in->r, in->ctx, e) >= 0)
				atomic_fetch_add_explicit(&in->events, 1,
							  memory_order_relaxed);
		}
		sl_dgram_release(in->d, &dg);
	}
	sl_waitgroup_done(&in->wg);
}

/* Stop accepting and reading; tasks parked in a receive or in routing
 * see the cancellation and end.  Under r->admin. */
static void
input_cancel(struct input *in)
{
	sl_context_cancel(in->ctx);
	if (in->l) {
		struct sl_listener_stats ls;

		sl_listener_stats_get(in->l, &ls);
		in->refused = ls.refused;
		sl_listener_close(in->l);
		in->l = NULL;
	}
}

/* After input_cancel(): wait for the input's tasks to end. */
static void
input_wait(struct input *in)
{
	sl_waitgroup_wait(&in->wg);
	if (in->d) {
		sl_dgram_close(in->d);
		in->d = NULL;
	}
}

int
sluice_add_input(struct sluice *r, const struct sluice_input *cfg)
{
	struct sl_listen_opts lo;
	struct input *in;
	char addr[128];
	int rc;

	if (!cfg->name || !cfg->addr)
		return -EINVAL;
	in = mi_zalloc(sizeof(*in));
	if (!in)
		return -ENOMEM;
	in->r = r;
	in->cfg = *cfg;
	in->name = mi_strdup(cfg->name);
	if (cfg->type == SLUICE_INPUT_UNIX ||
	    cfg->type == SLUICE_INPUT_UNIX_DGRAM)
		snprintf(addr, sizeof(addr), "%s%s",
			 strncmp(cfg->addr, "unix:", 5) ? "unix:" : "",
			 cfg->addr);
	else
		snprintf(addr, sizeof(addr), "%s", cfg->addr);
	in->addr = mi_strdup(addr);
	sl_waitgroup_init(&in->wg);
	rc = sl_context_with_cancel(sl_context_background(), &in->ctx);
	if (rc || !in->name || !in->addr)
		goto fail;

	switch (cfg->type) {
	case SLUICE_INPUT_TCP:
	case SLUICE_INPUT_UNIX:
		sl_listen_opts_default(&lo);
		lo.max_conns = cfg->max_conns;
		if (cfg->max_buffered)
			lo.conn.max_buffered = cfg->max_buffered;
		rc = sl_listen(in->addr, &lo, &in->l);
		if (rc)
			goto fail;
		sl_listener_addr(in->l, &in->bound);
		sl_waitgroup_add(&in->wg, 1);
		rc = sl_task_spawn(accept_task, in,
				   &(struct sl_task_opts){.name = "accept",
							  .proc = -1},
				   NULL);
		if (rc) {
			sl_waitgroup_done(&in->wg);
			goto fail;
		}
		break;
	case SLUICE_INPUT_UDP:
	case SLUICE_INPUT_UNIX_DGRAM:
		rc = sl_dgram_open(in->addr, 0, NULL, &in->d);
		if (rc)
			goto fail;
		sl_dgram_addr(in->d, &in->bound);
		for (unsigned i = 0; i < r->nprocs; i++) {
			sl_waitgroup_add(&in->wg, 1);
			if (sl_task_spawn(dgram_task, in,
					  &(struct sl_task_opts){
						  .name = "dgram",
						  .proc = (int)i},
					  NULL))
				sl_waitgroup_done(&in->wg);
		}
		break;
	default:
		rc = -EINVAL;
		goto fail;
	}

	sl_mutex_lock(&r->admin);
	if (!atomic_load(&r->stopping)) {
		in->next = r->inputs;
		r->inputs = in;
		sl_mutex_unlock(&r->admin);
		return 0;
	}
	/* Shutdown began meanwhile and will not see this input. */
	input_cancel(in);
	sl_mutex_unlock(&r->admin);
	input_wait(in);
	rc = -ESHUTDOWN;
fail:
	if (in->ctx)
		sl_context_release(in->ctx);
	mi_free(in->name);
	mi_free(in->addr);
	mi_free(in);
	return rc;
}

int
sluice_input_addr(struct sluice *r, const char *name, char *buf, size_t len)
{
	int rc = -ENOENT;

	sl_mutex_lock(&r->admin);
	for (struct input *in = r->inputs; in; in = in->next)
		if (!strcmp(in->name, name)) {
			sl_addr_format(&in->bound, buf, len);
			rc = 0;
			break;
		}
	sl_mutex_unlock(&r->admin);
	return rc;
}

void
sl__inputs_stop(struct sluice *r)
{
	struct input *head;

	sl_mutex_lock(&r->admin);
	for (struct input *in = r->inputs; in; in = in->next)
		input_cancel(in);
	head = r->inputs;
	sl_mutex_unlock(&r->admin);

	/* Waiting for the tasks to end is done without r->admin, so metrics
	 * keep answering; the list only grows at its head, and not at all
	 * once stopping is set. */
	for (struct input *in = head; in; in = in->next)
		input_wait(in);
}

void
sl__inputs_free(struct sluice *r)
{
	while (r->inputs) {
		struct input *in = r->inputs;

		r->inputs = in->next;
		sl_context_release(in->ctx);
		mi_free(in->name);
		mi_free(in->addr);
		mi_free(in);
	}
}

/* Stream inputs only: a datagram input has no connections to refuse. */
static void
input_refused_metrics(struct sluice *r, FILE *out)
{
	fprintf(out, "# HELP sluice_input_refused_total Connections closed at "
		     "accept because the input was at max_conns, by input.\n"
		     "# TYPE sluice_input_refused_total counter\n");
	for (struct input *in = r->inputs; in; in = in->next) {
		struct sl_listener_stats ls = {.refused = in->refused};

		if (in->cfg.type != SLUICE_INPUT_TCP &&
		    in->cfg.type != SLUICE_INPUT_UNIX)
			continue;
		if (in->l)
			sl_listener_stats_get(in->l, &ls);
		fprintf(out, "sluice_input_refused_total{input=\"%s\"} %llu\n",
			in->name, (unsigned long long)ls.refused);
	}
}

static void
input_paused_metrics(struct sluice *r, FILE *out)
{
	fprintf(out, "# HELP sluice_input_paused_total Times a connection "
		     "stopped receiving because it held max_buffered bytes "
		     "not yet decoded, by input.\n"
		     "# TYPE sluice_input_paused_total counter\n");
	for (struct input *in = r->inputs; in; in = in->next) {
		if (in->cfg.type != SLUICE_INPUT_TCP &&
		    in->cfg.type != SLUICE_INPUT_UNIX)
			continue;
		fprintf(out, "sluice_input_paused_total{input=\"%s\"} %llu\n",
			in->name,
			(unsigned long long)atomic_load(&in->paused));
	}
}

void
sl__inputs_metrics(struct sluice *r, FILE *out)
{
	fprintf(out, "# HELP sluice_input_events_total Events accepted, "
		     "by input.\n# TYPE sluice_input_events_total counter\n");
	for (struct input *in = r->inputs; in; in = in->next)
		fprintf(out, "sluice_input_events_total{input=\"%s\"} %llu\n",
			in->name, (unsigned long long)atomic_load(&in->events));
	fprintf(out, "# HELP sluice_input_bytes_total Bytes decoded, by "
		     "input.\n# TYPE sluice_input_bytes_total counter\n");
	for (struct input *in = r->inputs; in; in = in->next)
		fprintf(out, "sluice_input_bytes_total{input=\"%s\"} %llu\n",
			in->name, (unsigned long long)atomic_load(&in->bytes));
	fprintf(out, "# HELP sluice_input_malformed_total Malformed lines "
		     "or frames, by input.\n"
		     "# TYPE sluice_input_malformed_total counter\n");
	for (struct input *in = r->inputs; in; in = in->next)
		fprintf(out,
			"sluice_input_malformed_total{input=\"%s\"} %llu\n",
			in->name,
			(unsigned long long)atomic_load(&in->malformed));
	fprintf(out, "# HELP sluice_input_oversized_total Lines or frames "
		     "past their limit, by input.\n"
		     "# TYPE sluice_input_oversized_total counter\n");
	for (struct input *in = r->inputs; in; in = in->next)
		fprintf(out,
			"sluice_input_oversized_total{input=\"%s\"} %llu\n",
			in->name,
			(unsigned long long)atomic_load(&in->oversized));
	fprintf(out, "# HELP sluice_input_connections_total Connections "
		     "accepted, by input.\n"
		     "# TYPE sluice_input_connections_total counter\n");
	for (struct input *in = r->inputs; in; in = in->next)
		fprintf(out,
			"sluice_input_connections_total{input=\"%s\"} %llu\n",
			in->name, (unsigned long long)atomic_load(&in->conns));
	input_refused_metrics(r, out);
	input_paused_metrics(r, out);
	fprintf(out, "# HELP sluice_input_closed_bad_total Connections closed "
		     "for bad input, by input.\n"
		     "# TYPE sluice_input_closed_bad_total counter\n");
	for (struct input *in = r->inputs; in; in = in->next)
		fprintf(out,
			"sluice_input_closed_bad_total{input=\"%s\"} %llu\n",
			in->name,
			(unsigned long long)atomic_load(&in->closed_bad));
}
