/* SPDX-License-Identifier: MIT */
/*
 * The run: tasks on Sluice's runtime, sockets through io/.
 *
 *   lane      one per connection (or datagram socket).  Takes the events
 *             its schedule says are due, encodes them into one buffer,
 *             writes it, and sleeps until the next is due.  With frames
 *             and ACKs it also reads the ACKs, between writes, and keeps
 *             the events not yet acknowledged in a window of --depth; a
 *             full window holds the lane back, and the events it holds
 *             back are late by their planned time, so latency shows it.
 *   sink      verify mode: accepts the router's tcp sink connections and
 *             one reader task per connection checks what arrives.
 *   reporter  closes an interval of the time series every --interval
 *             and draws the progress line.
 *   signals   the first SIGINT or SIGTERM stops sending (the run still
 *             verifies and reports); the second stops everything.
 *
 * Lanes record latencies in a small array of their own and add them to
 * the shared statistics, under one mutex, a batch at a time.
 *
 * Failures.  A connection that breaks (the target closed it, a write
 * failed, a write or an ACK made no progress for --stall-timeout) is
 * counted, made again, and what it may have lost is sent again: the
 * current write for lines, the whole unacknowledged window for frames
 * with ACKs.  A second stall in a row, or a target that cannot be reached
 * for --give-up, ends the run with a message saying which.
 */
#include "tools/load/run.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "core/context.h"
#include "core/runtime.h"
#include "core/sync.h"
#include "core/task.h"
#include "io/file.h"
#include "io/net.h"
#include "tools/load/wire.h"

#define SAMPLE_BATCH 512
#define SAMPLE_FLUSH_NS (20 * SL_NSEC_PER_MSEC)
#define BACKOFF_MIN_NS (10 * SL_NSEC_PER_MSEC)
#define BACKOFF_MAX_NS (1000 * SL_NSEC_PER_MSEC)
#define SINK_RECORD_MAX (2u << 20)
#define LOG_EVERY_NS SL_NSEC_PER_SEC
#define LANE_EOF 1 /* lane_read(): the target closed the connection */

/* Kinds of log line, each limited to one a second. */
enum run_log_kind {
	LOG_CONNECT,
	LOG_DISCONNECT,
	LOG_STALL,
	LOG_DGRAM,
	LOG_SINK,
	LOG_KINDS,
};

struct run_counters {
	_Atomic uint64_t sent, bytes, acked, unacked, delivered, fences;
	_Atomic uint64_t connects, connect_failures, disconnects;
	_Atomic uint64_t send_timeouts, ack_timeouts, resent, dgram_errors;
	_Atomic uint64_t dgram_retries;
	_Atomic uint64_t sink_conns, sink_errors;
};

struct load_run_state {
	const struct load_opts *o;
	struct load_result *res;
	struct sl_addr addr;
	uint64_t start_ns;
	struct sl_context *ctx; /* sending: cancelled to stop early */
	struct sl_context *all; /* everything: the second signal */
	struct sl_context *sink_ctx;
	struct sl_context *rep_ctx;

	struct sl_mutex mu; /* guards stats */
	struct load_stats *stats;
	struct run_counters c;
	struct load_verify verify;

	struct sl_listener *sink;
	struct sl_waitgroup sink_wg;
	struct sl_waitgroup lanes_wg;
	struct load_lane *lanes;
	bool progress;

	_Atomic int fatal_set;
	char fatal[512];
	_Atomic uint64_t log_last[LOG_KINDS];
	_Atomic uint64_t log_dropped[LOG_KINDS];
};

struct lane_slot {
	struct load_event ev;
	uint64_t planned;
};

struct load_lane {
	struct load_run_state *run;
	unsigned id;
	bool acks; /* frames with ACKs on a stream */
	struct load_sched sched;
	struct load_gen gen;
	struct sl_conn *conn;
	struct sl_dgram *dg;
	struct load_splitter split;
	char *buf;
	size_t len, cap;
	uint64_t *planned; /* --depth */

	/* The ACK window: slots head .. tail-1 are sent, unacknowledged. */
	struct lane_slot *win;
	uint64_t head, tail;
	uint64_t conn_first;   /* the slot first sent on this conn */
	uint64_t progress_ns;  /* last ACK that moved the window */
	bool fenced;           /* the end's fence is sent */
	struct lane_slot last; /* the last event sent */

	unsigned stalls;          /* in a row, without progress */
	uint64_t down_since;      /* target lost since, or 0 */
	uint64_t conn_since;      /* when this connection was made */
	uint64_t flap_backoff_ns; /* before reconnecting after a flap */
	struct load_sample samples[SAMPLE_BATCH];
	size_t nsamples;
	uint64_t flushed_ns;
};

/* ---- logging and failing ---- */

static void run_log(struct load_run_state *run, enum run_log_kind kind,
                    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A warning on stderr, at most one a second of each kind. */
static void
run_log(struct load_run_state *run, enum run_log_kind kind, const char *fmt,
        ...)
{
	uint64_t now = sl_now_ns();
	uint64_t last = atomic_load(&run->log_last[kind]);
	uint64_t dropped;
	char msg[512];
	va_list ap;

	if (last && now - last < LOG_EVERY_NS) {
		atomic_fetch_add(&run->log_dropped[kind], 1);
		return;
	}
	if (!atomic_compare_exchange_strong(&run->log_last[kind], &last, now))
		return;
	dropped = atomic_exchange(&run->log_dropped[kind], 0);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%ssluice-load: level=warn subsys=load %s",
	        run->progress ? "\r\033[K" : "", msg);
	if (dropped)
		fprintf(stderr, " suppressed=%llu",
		        (unsigned long long)dropped);
	fputc('\n', stderr);
}

static void run_fail(struct load_run_state *run, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* End the run: the first reason given is the one reported. */
static void
run_fail(struct load_run_state *run, const char *fmt, ...)
{
	int expected = 0;
	va_list ap;

	if (atomic_compare_exchange_strong(&run->fatal_set, &expected, 1)) {
		va_start(ap, fmt);
		vsnprintf(run->fatal, sizeof(run->fatal), fmt, ap);
		va_end(ap);
	}
	sl_context_cancel(run->all);
}

static bool
run_failed(struct load_run_state *run)
{
	return atomic_load(&run->fatal_set) != 0;
}

/* What a connect error means, in words a user can act on. */
static const char *
run_connect_hint(int err)
{
	switch (err) {
	case -ECONNREFUSED:
		return "nothing listens there (is the router running, and on "
		       "this address?)";
	case -ETIMEDOUT:
		return "no answer within --connect-timeout (a host that is "
		       "down, or a firewall dropping packets)";
	case -EHOSTUNREACH:
	case -ENETUNREACH:
		return "no route to that address";
	case -ENOENT:
		return "no socket at that path (is the router running?)";
	case -EACCES:
	case -EPERM:
		return "not allowed to connect there";
	default:
		return "";
	}
}

/* ---- samples ---- */

static void
lane_flush(struct load_lane *l, uint64_t now)
{
	struct load_run_state *run = l->run;
	int r;

	l->flushed_ns = now;
	if (!l->nsamples)
		return;
	sl_mutex_lock(&run->mu);
	r = load_stats_add(run->stats, l->samples, l->nsamples);
	sl_mutex_unlock(&run->mu);
	l->nsamples = 0;
	if (r)
		run_fail(run, "out of memory for the statistics");
}

static void
lane_sample(struct load_lane *l, enum load_metric m, uint64_t planned,
            uint64_t done)
{
	uint64_t start = l->run->start_ns;
	struct load_sample *s;

	if (l->nsamples == SAMPLE_BATCH)
		lane_flush(l, done);
	s = &l->samples[l->nsamples++];
	s->metric = (uint8_t)m;
	s->planned_rel = planned > start ? planned - start : 0;
	s->done_rel = done > start ? done - start : 0;
}

/* ---- connections ---- */

static void
lane_drop_conn(struct load_lane *l)
{
	if (l->conn) {
		sl_conn_close(l->conn);
		l->conn = NULL;
	}
	load_split_fini(&l->split);
	load_split_init(&l->split, true, 64);
}

static int lane_write(struct load_lane *l, const char *buf, size_t len);
static int lane_resend_window(struct load_lane *l);

/* One connect attempt, within --connect-timeout. */
static int
lane_connect_once(struct load_lane *l)
{
	struct load_run_state *run = l->run;
	struct sl_context *ctx;
	int r;

	r = sl_context_with_timeout(run->ctx, run->o->connect_timeout_ns, &ctx);
	if (r)
		return r;
	r = sl_connect_addr(ctx, &run->addr, NULL, &l->conn);
	if (r == -ECANCELED && !sl_context_err(run->ctx))
		r = -ETIMEDOUT; /* our timeout, not a stop */
	sl_context_release(ctx);
	if (r)
		l->conn = NULL;
	return r;
}

/* After a connect: ask for ACKs and send the window again. */
static int
lane_greet(struct load_lane *l)
{
	char hello[LOAD_HELLO_LEN];
	int r;

	if (!l->acks)
		return 0;
	l->conn_first = l->head;
	l->fenced = false;
	l->progress_ns = sl_now_ns();
	load_hello_encode(l->run->o->ack_every, hello);
	r = lane_write(l, hello, sizeof(hello));
	if (r)
		return r;
	return lane_resend_window(l);
}

/*
 * Connect, retrying with backoff until the target answers, the run is
 * stopped (-ECANCELED) or --give-up has passed (a fatal error).
 */
static int
lane_connect(struct load_lane *l)
{
	struct load_run_state *run = l->run;
	const struct load_opts *o = run->o;
	uint64_t backoff = BACKOFF_MIN_NS;
	char where[160];
	int r;

	for (;;) {
		r = lane_connect_once(l);
		if (!r) {
			atomic_fetch_add(&run->c.connects, 1);
			r = lane_greet(l);
			if (!r) {
				l->conn_since = sl_now_ns();
				return 0;
			}
			lane_drop_conn(l);
		}
		if (sl_context_err(run->ctx))
			return -ECANCELED;
		atomic_fetch_add(&run->c.connect_failures, 1);
		if (!l->down_since)
			l->down_since = sl_now_ns();
		sl_addr_format(&run->addr, where, sizeof(where));
		if (sl_now_ns() - l->down_since >= o->give_up_ns) {
			run_fail(run,
			         "lost the target %s: cannot connect for %.1f "
			         "s: %s%s%s",
			         where, (double)o->give_up_ns / 1e9,
			         sl_strerror(r),
			         *run_connect_hint(r) ? "; " : "",
			         run_connect_hint(r));
			return -ECANCELED;
		}
		run_log(run, LOG_CONNECT,
		        "msg=\"cannot connect; retrying\" lane=%u addr=%s "
		        "err=\"%s\" retry_ms=%llu",
		        l->id, where, sl_strerror(r),
		        (unsigned long long)(backoff / SL_NSEC_PER_MSEC));
		if (sl_task_sleep_ctx(run->ctx, backoff))
			return -ECANCELED;
		backoff = backoff * 2 > BACKOFF_MAX_NS ? BACKOFF_MAX_NS
		                                       : backoff * 2;
	}
}

/*
 * A connection that breaks within a second of being made does not count
 * as the target being back: the time it has been gone runs on, and the
 * lane waits before connecting again, longer each time.  A target that
 * accepts and at once drops every connection thus ends the run after
 * --give-up, as one that refuses them does.
 * Return: true when the run is over.
 */
static bool
lane_flapping(struct load_lane *l)
{
	struct load_run_state *run = l->run;
	uint64_t now = sl_now_ns();

	if (now - l->conn_since >= SL_NSEC_PER_SEC)
		return false;
	if (!l->down_since)
		l->down_since = l->conn_since;
	if (now - l->down_since >= run->o->give_up_ns) {
		run_fail(run,
		         "the target keeps closing the connection: every "
		         "connection for %.1f s broke within a second",
		         (double)run->o->give_up_ns / 1e9);
		return true;
	}
	l->flap_backoff_ns =
	        l->flap_backoff_ns ? 2 * l->flap_backoff_ns : BACKOFF_MIN_NS;
	if (l->flap_backoff_ns > BACKOFF_MAX_NS)
		l->flap_backoff_ns = BACKOFF_MAX_NS;
	return sl_task_sleep_ctx(run->ctx, l->flap_backoff_ns) != 0;
}

/*
 * The connection broke (@err) or stalled: count it, connect again (which
 * resends the ACK window).  @err is a negative errno value or LANE_EOF.
 * Return: 0, or -ECANCELED when the run ends.
 */
static int
lane_broken(struct load_lane *l, int err, bool stall)
{
	struct load_run_state *run = l->run;

	lane_drop_conn(l);
	if (sl_context_err(run->ctx))
		return -ECANCELED;
	if (sl_now_ns() - l->conn_since >= SL_NSEC_PER_SEC) {
		/* It was up for a while: the target was back. */
		l->down_since = 0;
		l->flap_backoff_ns = 0;
	}
	if (stall && ++l->stalls >= 2) {
		run_fail(run,
		         "the target stopped %s: no progress for %.1f s, "
		         "twice in a row, on connection %u",
		         l->acks ? "acknowledging" : "reading",
		         (double)run->o->stall_timeout_ns / 1e9, l->id);
		return -ECANCELED;
	}
	if (!stall)
		atomic_fetch_add(&run->c.disconnects, 1);
	if (!stall && lane_flapping(l))
		return -ECANCELED;
	run_log(run, stall ? LOG_STALL : LOG_DISCONNECT,
	        "msg=\"%s; reconnecting\" lane=%u err=\"%s\"",
	        stall ? (l->acks ? "the target stopped acknowledging"
	                         : "the target stopped reading")
	              : "connection lost",
	        l->id,
	        err == LANE_EOF ? "closed by the target" : sl_strerror(err));
	return lane_connect(l);
}

/* Write all of @buf on the stream.  Return: 0 or the error. */
static int
lane_write(struct load_lane *l, const char *buf, size_t len)
{
	struct load_run_state *run = l->run;
	ssize_t n;

	sl_conn_set_deadline(l->conn, SL_NO_DEADLINE,
	                     sl_now_ns() + run->o->stall_timeout_ns);
	/* Under run->all, not run->ctx: a stop lets the write in progress
	 * finish, so that no event recorded as sent is cut off. */
	n = sl_conn_send(run->all, l->conn, buf, len);
	if (n < 0) {
		if (n == -ETIMEDOUT)
			atomic_fetch_add(&run->c.send_timeouts, 1);
		return (int)n;
	}
	atomic_fetch_add_explicit(&run->c.bytes, len, memory_order_relaxed);
	return 0;
}

/* Room for @need more bytes in the lane's buffer. */
static int
lane_reserve(struct load_lane *l, size_t need)
{
	size_t cap;
	char *p;

	if (l->len + need <= l->cap)
		return 0;
	cap = l->cap ? l->cap : 4096;
	while (cap < l->len + need)
		cap *= 2;
	p = realloc(l->buf, cap);
	if (!p)
		return -ENOMEM;
	l->buf = p;
	l->cap = cap;
	return 0;
}

static int
lane_encode(struct load_lane *l, const struct load_event *ev, uint64_t planned)
{
	const struct load_workload *w = &l->run->o->wl;
	size_t need = load_event_size(w, ev);

	if (lane_reserve(l, need))
		return -ENOMEM;
	l->len += load_event_encode(w, ev, planned, l->buf + l->len,
	                            l->cap - l->len);
	return 0;
}

/* Send the unacknowledged window again, in order, on a new connection. */
static int
lane_resend_window(struct load_lane *l)
{
	uint64_t depth = l->run->o->depth;
	int r;

	if (l->head == l->tail)
		return 0;
	l->len = 0;
	for (uint64_t s = l->head; s != l->tail; s++) {
		struct lane_slot *slot = &l->win[s % depth];

		r = lane_encode(l, &slot->ev, slot->planned);
		if (r)
			return r;
	}
	atomic_fetch_add(&l->run->c.resent, l->tail - l->head);
	return lane_write(l, l->buf, l->len);
}

/* ---- ACKs ---- */

static void
lane_on_ack(void *arg, const char *rec, size_t len)
{
	struct load_lane *l = arg;
	uint64_t depth = l->run->o->depth, accepted, upto, now, moved = 0;

	if (load_ack_decode(rec, len, &accepted))
		return; /* not an ACK: the router sends nothing else */
	upto = l->conn_first + accepted;
	now = sl_now_ns();
	while (l->head < l->tail && l->head < upto) {
		/* The event that completed this ACK: its latency is exact. */
		if (l->head + 1 == upto)
			lane_sample(l, LOAD_M_ACK,
			            l->win[l->head % depth].planned, now);
		l->head++;
		moved++;
	}
	if (moved) {
		l->progress_ns = now;
		l->stalls = 0;
		atomic_fetch_add_explicit(&l->run->c.acked, moved,
		                          memory_order_relaxed);
	}
}

/*
 * Read what the target sent: ACKs, or only the end of the stream on a
 * line connection.  Waits until @until (0: not at all) for the first
 * bytes.  Return: 0; LANE_EOF when the target closed the connection; or
 * an error that breaks it.
 */
static int
lane_read(struct load_lane *l, uint64_t until)
{
	struct sl_iobuf b;
	bool wait = until != 0;
	int r;

	for (;;) {
		if (wait) {
			sl_conn_set_deadline(l->conn, until, SL_NO_DEADLINE);
			r = sl_conn_peek(l->run->ctx, l->conn, &b);
			wait = false;
		} else {
			r = sl_conn_try_peek(l->conn, &b);
		}
		if (r == -EAGAIN || r == -ETIMEDOUT)
			return 0;
		if (r == 0)
			return LANE_EOF;
		if (r < 0)
			return r;
		if (l->acks) {
			r = load_split_feed(&l->split, b.data, b.len,
			                    lane_on_ack, l);
			if (r) {
				sl_conn_consume(l->conn, b.len);
				return -EBADMSG;
			}
		}
		sl_conn_consume(l->conn, b.len);
	}
}

/* ---- sending ---- */

/* Send @n events due at the given planned times, on a stream. */
static int
lane_send_stream(struct load_lane *l, size_t n)
{
	struct load_run_state *run = l->run;
	uint64_t depth = run->o->depth, done;
	bool verify = run->o->verify;
	int r;

	l->len = 0;
	if (l->acks && l->head == l->tail)
		l->progress_ns = sl_now_ns();
	for (size_t i = 0; i < n; i++) {
		struct lane_slot slot;

		load_gen_next(&l->gen, &slot.ev);
		slot.planned = l->planned[i];
		if (lane_encode(l, &slot.ev, slot.planned))
			return -ENOMEM;
		if (verify)
			load_verify_sent(&run->verify, slot.ev.key,
			                 slot.ev.version);
		if (l->acks)
			l->win[l->tail++ % depth] = slot;
		l->last = slot;
	}

	for (;;) {
		r = lane_write(l, l->buf, l->len);
		if (!r)
			break;
		r = lane_broken(l, r, r == -ETIMEDOUT);
		if (r)
			return r;
		if (l->acks)
			break; /* reconnecting resent the whole window */
		atomic_fetch_add(&run->c.resent, n);
	}
	if (!l->acks)
		l->stalls = 0; /* a write went through: reading resumed */

	done = sl_now_ns();
	for (size_t i = 0; i < n; i++)
		lane_sample(l, LOAD_M_SEND, l->planned[i], done);
	atomic_fetch_add_explicit(&run->c.sent, n, memory_order_relaxed);
	return 0;
}

/*
 * One datagram.  A Unix datagram socket whose receiver's queue is full
 * can report 0 bytes sent rather than wait (seen with io_uring's sendmsg
 * on Linux 6.18): that datagram was not sent, so wait a tick and send it
 * again, for up to --stall-timeout.
 */
static ssize_t
lane_dgram_send_all(struct load_lane *l)
{
	struct load_run_state *run = l->run;
	uint64_t give_up = sl_now_ns() + run->o->stall_timeout_ns;
	ssize_t w;

	for (;;) {
		w = sl_dgram_send(run->all, l->dg, l->buf, l->len, &run->addr);
		if (w != 0 || sl_now_ns() >= give_up)
			return w == 0 ? -EAGAIN : w;
		atomic_fetch_add(&run->c.dgram_retries, 1);
		if (sl_task_sleep_ctx(run->ctx, run->o->tick_ns))
			return -ECANCELED;
	}
}

/* Send the datagram in the lane's buffer, holding events @first..@end-1. */
static int
lane_send_datagram(struct load_lane *l, size_t first, size_t end)
{
	struct load_run_state *run = l->run;
	uint64_t done;
	ssize_t w;

	w = lane_dgram_send_all(l);
	if (w == -ECANCELED)
		return -ECANCELED;
	if (w < 0) {
		/* No connection to make again: the events are lost, and
		 * verify mode will say which keys they were. */
		atomic_fetch_add(&run->c.dgram_errors, 1);
		run_log(run, LOG_DGRAM,
		        "msg=\"datagram not sent\" lane=%u err=\"%s\"", l->id,
		        sl_strerror((int)w));
	} else {
		atomic_fetch_add_explicit(&run->c.bytes, l->len,
		                          memory_order_relaxed);
	}
	done = sl_now_ns();
	for (size_t i = first; i < end; i++)
		lane_sample(l, LOAD_M_SEND, l->planned[i], done);
	l->len = 0;
	return 0;
}

/* Send @n events as datagrams of at most --dgram-size bytes each. */
static int
lane_send_dgram(struct load_lane *l, size_t n)
{
	struct load_run_state *run = l->run;
	size_t max = run->o->dgram_max, first = 0;
	int r;

	l->len = 0;
	for (size_t i = 0; i < n; i++) {
		struct load_event ev;

		load_gen_next(&l->gen, &ev);
		if (l->len &&
		    l->len + load_event_size(&run->o->wl, &ev) > max) {
			r = lane_send_datagram(l, first, i);
			if (r)
				return r;
			first = i;
		}
		if (lane_encode(l, &ev, l->planned[i]))
			return -ENOMEM;
		if (run->o->verify)
			load_verify_sent(&run->verify, ev.key, ev.version);
	}
	r = l->len ? lane_send_datagram(l, first, n) : 0;
	atomic_fetch_add_explicit(&run->c.sent, n, memory_order_relaxed);
	return r;
}

/*
 * The end of a lane with ACKs: the router acknowledges every ack_every
 * events, so the last few might never be.  Ask for an ACK per event and
 * send the lane's last event once more: the router folds the repeat
 * into the key's pending state, and its ACK covers everything before it.
 */
static int
lane_fence(struct load_lane *l)
{
	char hello[LOAD_HELLO_LEN];
	int r;

	l->fenced = true;
	l->len = 0;
	load_hello_encode(1, hello);
	if (lane_reserve(l, sizeof(hello)))
		return -ENOMEM;
	memcpy(l->buf, hello, sizeof(hello));
	l->len = sizeof(hello);
	r = lane_encode(l, &l->last.ev, l->last.planned);
	if (!r)
		r = lane_write(l, l->buf, l->len);
	if (!r)
		atomic_fetch_add(&l->run->c.fences, 1);
	return r;
}

/* With nothing due: wait for ACKs or the next event, watching stalls. */
static int
lane_idle_acks(struct load_lane *l, uint64_t now, uint64_t wait, bool full)
{
	struct load_run_state *run = l->run;
	uint64_t stall_at = l->progress_ns + run->o->stall_timeout_ns;
	uint64_t until;
	int r;

	if (now >= stall_at) {
		atomic_fetch_add(&run->c.ack_timeouts, 1);
		return lane_broken(l, -ETIMEDOUT, true);
	}
	if (wait == UINT64_MAX && !l->fenced) {
		r = lane_fence(l);
		if (r)
			return lane_broken(l, r, r == -ETIMEDOUT);
	}
	until = stall_at;
	if (!full && wait != UINT64_MAX && now + wait < until)
		until = now + wait;
	r = lane_read(l, until);
	return r ? lane_broken(l, r, false) : 0;
}

static bool
lane_stream(const struct load_lane *l)
{
	enum load_target_type t = l->run->o->type;

	return t == LOAD_TARGET_TCP || t == LOAD_TARGET_UNIX;
}

/* One turn of the lane's loop.  Return: 1 when done, 0, or an error. */
static int
lane_turn(struct load_lane *l)
{
	const struct load_opts *o = l->run->o;
	uint64_t now = sl_now_ns(), wait, room = o->depth;
	bool stream = lane_stream(l);
	size_t n;
	int r;

	if (sl_context_err(l->run->ctx))
		return -ECANCELED; /* stopped early: send nothing more */
	if (stream) {
		r = lane_read(l, 0);
		if (r)
			return lane_broken(l, r, false);
		if (l->acks)
			room = o->depth - (l->tail - l->head);
	}
	if (now - l->flushed_ns >= SAMPLE_FLUSH_NS)
		lane_flush(l, now);

	n = room ? load_sched_take(&l->sched, now, l->planned, room) : 0;
	if (n)
		return stream ? lane_send_stream(l, n) : lane_send_dgram(l, n);

	wait = load_sched_wait(&l->sched, now, o->tick_ns);
	if (l->acks && l->head != l->tail)
		return lane_idle_acks(l, now, wait, room == 0);
	if (wait == UINT64_MAX)
		return 1;
	return sl_task_sleep_ctx(l->run->ctx, wait) ? -ECANCELED : 0;
}

static int
lane_open_dgram(struct load_lane *l)
{
	const struct load_opts *o = l->run->o;
	char local[108];

	if (o->type == LOAD_TARGET_UDP)
		return sl_dgram_open(NULL, l->run->addr.u.sa.sa_family, NULL,
		                     &l->dg);
	/* A Unix datagram socket needs a name of its own to send from. */
	snprintf(local, sizeof(local), "@sluice-load.%d.%u", (int)getpid(),
	         l->id);
	return sl_dgram_open(local, 0, NULL, &l->dg);
}

static void
lane_task(void *arg)
{
	struct load_lane *l = arg;
	struct load_run_state *run = l->run;
	int r = 0;

	if (lane_stream(l) && !l->conn)
		r = lane_connect(l);
	else if (!lane_stream(l))
		r = lane_open_dgram(l);
	if (r && r != -ECANCELED)
		run_fail(run, "lane %u cannot open its socket: %s", l->id,
		         sl_strerror(r));
	while (!r)
		r = lane_turn(l);
	if (r < 0 && r != -ECANCELED)
		run_fail(run, "lane %u: %s", l->id, sl_strerror(r));

	lane_flush(l, sl_now_ns());
	if (l->acks)
		atomic_fetch_add(&run->c.unacked, l->tail - l->head);
	lane_drop_conn(l);
	if (l->dg)
		sl_dgram_close(l->dg);
	l->dg = NULL;
	sl_waitgroup_done(&run->lanes_wg);
}

static int
lane_init(struct load_lane *l, struct load_run_state *run, unsigned id)
{
	const struct load_opts *o = run->o;
	int r;

	memset(l, 0, sizeof(*l));
	l->run = run;
	l->id = id;
	l->acks = o->ack_every > 0;
	load_split_init(&l->split, true, 64);
	r = load_gen_init(&l->gen, &o->wl, id, o->conns);
	if (r)
		return r;
	l->planned = calloc(o->depth, sizeof(*l->planned));
	if (l->acks)
		l->win = calloc(o->depth, sizeof(*l->win));
	if (!l->planned || (l->acks && !l->win))
		return -ENOMEM;
	return 0;
}

static void
lane_fini(struct load_lane *l)
{
	load_gen_fini(&l->gen);
	load_split_fini(&l->split);
	free(l->planned);
	free(l->win);
	free(l->buf);
}

/* ---- the sink (verify mode) ---- */

struct sink_conn {
	struct load_run_state *run;
	struct sl_conn *c;
	struct load_splitter split;
	bool decided;
	char *scratch;
	size_t scratch_cap;
	uint64_t now;
	struct load_sample samples[SAMPLE_BATCH];
	size_t nsamples;
};

static void
sink_flush(struct sink_conn *s)
{
	struct load_run_state *run = s->run;
	int r;

	if (!s->nsamples)
		return;
	sl_mutex_lock(&run->mu);
	r = load_stats_add(run->stats, s->samples, s->nsamples);
	sl_mutex_unlock(&run->mu);
	s->nsamples = 0;
	if (r)
		run_fail(run, "out of memory for the statistics");
}

static void
sink_on_record(void *arg, const char *rec, size_t len)
{
	struct sink_conn *s = arg;
	struct load_run_state *run = s->run;
	uint64_t start = run->start_ns, key, planned;
	struct load_sink_event ev;
	uint32_t version;

	if (len > s->scratch_cap) {
		char *p = realloc(s->scratch, len);

		if (!p) {
			load_verify_bad(&run->verify);
			return;
		}
		s->scratch = p;
		s->scratch_cap = len;
	}
	if (load_sink_decode(rec, len, s->split.frames, s->scratch, &ev) ||
	    load_payload_parse(ev.payload, ev.payload_len, &version,
	                       &planned)) {
		load_verify_bad(&run->verify);
		return;
	}
	if (load_key_parse(&run->o->wl, ev.key, ev.key_len, &key)) {
		load_verify_seen(&run->verify, UINT64_MAX, version);
		return;
	}
	if (load_verify_seen(&run->verify, key, version) != LOAD_SEEN_NEW)
		return;
	atomic_fetch_add_explicit(&run->c.delivered, 1, memory_order_relaxed);
	if (s->nsamples == SAMPLE_BATCH)
		sink_flush(s);
	s->samples[s->nsamples++] = (struct load_sample){
	        .metric = LOAD_M_E2E,
	        .planned_rel = planned > start ? planned - start : 0,
	        .done_rel = s->now > start ? s->now - start : 0,
	};
}

static void
sink_conn_task(void *arg)
{
	struct sink_conn *s = arg;
	struct load_run_state *run = s->run;
	struct sl_iobuf b;
	int r;

	for (;;) {
		r = sl_conn_peek(run->sink_ctx, s->c, &b);
		if (r <= 0)
			break;
		if (!s->decided) {
			/* A frame's length starts with a zero byte, a line
			 * with its kind: the first byte tells them apart. */
			load_split_init(&s->split, b.data[0] == 0,
			                SINK_RECORD_MAX);
			s->decided = true;
		}
		s->now = sl_now_ns();
		r = load_split_feed(&s->split, b.data, b.len, sink_on_record,
		                    s);
		sl_conn_consume(s->c, b.len);
		sink_flush(s);
		if (r) {
			atomic_fetch_add(&run->c.sink_errors, 1);
			run_log(run, LOG_SINK,
			        "msg=\"sink stream unreadable; closing it\" "
			        "err=\"%s\"",
			        sl_strerror(r));
			break;
		}
	}
	if (r < 0 && r != -ECANCELED && r != -ECONNRESET && r != -EBADMSG &&
	    r != -EMSGSIZE)
		atomic_fetch_add(&run->c.sink_errors, 1);
	sink_flush(s);
	sl_conn_close(s->c);
	load_split_fini(&s->split);
	free(s->scratch);
	free(s);
	sl_waitgroup_done(&run->sink_wg);
}

static void
sink_accept_task(void *arg)
{
	struct load_run_state *run = arg;

	for (;;) {
		struct sink_conn *s;
		struct sl_conn *c;
		int r = sl_listener_accept(run->sink_ctx, run->sink, &c);

		if (r == -ECANCELED || r == -EBADF)
			break;
		if (r) {
			atomic_fetch_add(&run->c.sink_errors, 1);
			continue;
		}
		s = calloc(1, sizeof(*s));
		if (!s) {
			sl_conn_close(c);
			continue;
		}
		s->run = run;
		s->c = c;
		atomic_fetch_add(&run->c.sink_conns, 1);
		sl_waitgroup_add(&run->sink_wg, 1);
		if (sl_go(sink_conn_task, s)) {
			sl_conn_close(c);
			free(s);
			sl_waitgroup_done(&run->sink_wg);
		}
	}
	sl_waitgroup_done(&run->sink_wg);
}

/* ---- the reporter ---- */

static void
run_counts(struct load_run_state *run, struct load_counts *out)
{
	struct run_counters *c = &run->c;

	out->sent = atomic_load(&c->sent);
	out->acked = atomic_load(&c->acked);
	out->delivered = atomic_load(&c->delivered);
	out->errors =
	        atomic_load(&c->connect_failures) +
	        atomic_load(&c->disconnects) + atomic_load(&c->send_timeouts) +
	        atomic_load(&c->ack_timeouts) + atomic_load(&c->dgram_errors) +
	        atomic_load(&c->sink_errors);
}

static enum load_metric
run_primary(const struct load_opts *o)
{
	return load_primary_metric(o->verify, o->ack_every > 0);
}

static void
run_progress(struct load_run_state *run, double t, uint64_t p99,
             const struct load_row *row)
{
	uint64_t len = load_plan_length(&run->o->plan);
	char rate[32], target[32], lat[32], left[48];

	load_format_amount(row->sent, rate, sizeof(rate));
	load_format_amount(row->target, target, sizeof(target));
	load_format_duration(p99, lat, sizeof(lat));
	if (len && (double)len / 1e9 > t)
		snprintf(left, sizeof(left), "%.0fs left",
		         (double)len / 1e9 - t);
	else
		snprintf(left, sizeof(left), "finishing");
	fprintf(stderr, "\r\033[K[%6.1fs] %s/s%s%s  %s p99 %s  errors %llu  %s",
	        t, rate, row->target > 0 ? " of " : "",
	        row->target > 0 ? target : "",
	        load_metric_names[run_primary(run->o)], lat,
	        (unsigned long long)row->errors, left);
	fflush(stderr);
}

/* Close an interval: a row of the series, and the progress line. */
static void
run_row(struct load_run_state *run)
{
	enum load_metric m = run_primary(run->o);
	double t = (double)(sl_now_ns() - run->start_ns) / 1e9;
	struct load_counts counts;
	struct load_row row;
	uint64_t p99;
	int r;

	run_counts(run, &counts);
	sl_mutex_lock(&run->mu);
	r = load_stats_row(run->stats, t, &counts);
	row = run->stats->rows[run->stats->nrows ? run->stats->nrows - 1 : 0];
	p99 = load_hdr_percentile(&run->stats->total[m], 99);
	sl_mutex_unlock(&run->mu);
	if (r) {
		run_fail(run, "out of memory for the time series");
		return;
	}
	if (run->progress)
		run_progress(run, t, p99, &row);
}

static void
reporter_task(void *arg)
{
	struct load_run_state *run = arg;
	uint64_t next = run->start_ns + run->o->interval_ns;

	for (;;) {
		uint64_t now = sl_now_ns();

		if (now < next && sl_task_sleep_ctx(run->rep_ctx, next - now))
			break;
		run_row(run);
		next += run->o->interval_ns;
	}
}

/* ---- signals ---- */

struct signal_watch {
	struct load_run_state *run;
	struct sl_context *ctx;
	int fd;
};

static void
signal_task(void *arg)
{
	struct signal_watch *w = arg;
	struct signalfd_siginfo si;
	int seen = 0;

	for (;;) {
		ssize_t n = sl_file_read(w->ctx, w->fd, &si, sizeof(si), -1);

		if (n == -ECANCELED)
			break;
		if (n != (ssize_t)sizeof(si))
			continue;
		if (++seen == 1) {
			w->run->res->interrupted = true;
			sl_context_cancel(w->run->ctx);
		} else {
			sl_context_cancel(w->run->all);
		}
	}
}

/* ---- the main task ---- */

static int
run_resolve(struct load_run_state *run)
{
	const struct load_opts *o = run->o;
	char host[sizeof(o->addr)], *colon;
	int r;

	if (o->type == LOAD_TARGET_UNIXGRAM ||
	    !sl_addr_parse(o->addr, &run->addr))
		return sl_addr_parse(o->addr, &run->addr);
	if (o->type == LOAD_TARGET_UNIX)
		return -EINVAL;
	snprintf(host, sizeof(host), "%s", o->addr);
	colon = strrchr(host, ':');
	if (!colon || !colon[1])
		return -EINVAL;
	*colon = '\0';
	r = sl_resolve(host, colon + 1, &run->addr, 1);
	return r < 0 ? r : 0;
}

/* The first connection, made before the clock starts, so that a target
 * that is not there is reported at once and plainly. */
static int
run_probe(struct load_run_state *run, struct load_lane *l)
{
	char where[160];
	int r;

	if (!lane_stream(l))
		return 0;
	r = lane_connect_once(l);
	if (!r) {
		atomic_fetch_add(&run->c.connects, 1);
		l->conn_since = sl_now_ns();
		r = lane_greet(l);
		if (r)
			lane_drop_conn(l);
	}
	if (!r)
		return 0;
	sl_addr_format(&run->addr, where, sizeof(where));
	run_fail(run, "cannot connect to %s: %s%s%s", where, sl_strerror(r),
	         *run_connect_hint(r) ? "; " : "", run_connect_hint(r));
	return r;
}

static int
run_start_sink(struct load_run_state *run)
{
	struct sl_listen_opts lo;
	char where[160];
	int r;

	sl_listen_opts_default(&lo);
	lo.per_proc = false;
	r = sl_listen(run->o->sink_addr, &lo, &run->sink);
	if (r) {
		run_fail(run, "cannot listen as the sink on %s: %s",
		         run->o->sink_addr, sl_strerror(r));
		return r;
	}
	sl_waitgroup_add(&run->sink_wg, 1);
	r = sl_go(sink_accept_task, run);
	if (r) {
		sl_waitgroup_done(&run->sink_wg);
		run_fail(run, "cannot start the sink: %s", sl_strerror(r));
		return r;
	}
	if (run->progress) {
		struct sl_addr a;

		sl_listener_addr(run->sink, &a);
		fprintf(stderr,
		        "sluice-load: verifying: the sink listens on "
		        "%s\n",
		        sl_addr_format(&a, where, sizeof(where)));
	}
	return 0;
}

/* Wait, after sending, until every key's last version came back. */
static void
run_converge(struct load_run_state *run, uint64_t sent_end)
{
	uint64_t deadline = sent_end + run->o->verify_timeout_ns;

	for (;;) {
		uint64_t now = sl_now_ns();

		if (!load_verify_pending(&run->verify)) {
			run->res->converged = true;
			run->res->converge_s = (double)(now - sent_end) / 1e9;
			return;
		}
		if (now >= deadline ||
		    sl_task_sleep_ctx(run->all, 10 * SL_NSEC_PER_MSEC))
			return;
	}
}

static void
run_collect(struct load_run_state *run)
{
	struct load_result *res = run->res;
	struct run_counters *c = &run->c;

	res->sent = atomic_load(&c->sent);
	res->bytes = atomic_load(&c->bytes);
	res->acked = atomic_load(&c->acked);
	res->unacked = atomic_load(&c->unacked);
	res->delivered = atomic_load(&c->delivered);
	res->fences = atomic_load(&c->fences);
	res->connects = atomic_load(&c->connects);
	res->connect_failures = atomic_load(&c->connect_failures);
	res->disconnects = atomic_load(&c->disconnects);
	res->send_timeouts = atomic_load(&c->send_timeouts);
	res->ack_timeouts = atomic_load(&c->ack_timeouts);
	res->resent = atomic_load(&c->resent);
	res->dgram_errors = atomic_load(&c->dgram_errors);
	res->dgram_retries = atomic_load(&c->dgram_retries);
	res->sink_conns = atomic_load(&c->sink_conns);
	res->sink_errors = atomic_load(&c->sink_errors);
	res->errors = res->connect_failures + res->disconnects +
	              res->send_timeouts + res->ack_timeouts +
	              res->dgram_errors + res->sink_errors;
	res->verify = run->o->verify;
	if (res->verify)
		load_verify_check(&run->verify, &res->vr);
	if (run_failed(run))
		snprintf(res->fatal, sizeof(res->fatal), "%s", run->fatal);
}

static int
run_spawn_lanes(struct load_run_state *run)
{
	const struct load_opts *o = run->o;

	for (unsigned i = 0; i < o->conns; i++)
		load_sched_init(&run->lanes[i].sched, &o->plan, run->start_ns,
		                i, o->conns);
	for (unsigned i = 0; i < o->conns; i++) {
		struct sl_task_opts to = {.name = "lane", .proc = -1};
		int r;

		sl_waitgroup_add(&run->lanes_wg, 1);
		to.proc = (int)(i % sl_runtime_nprocs());
		r = sl_task_spawn(lane_task, &run->lanes[i], &to, NULL);
		if (r) {
			sl_waitgroup_done(&run->lanes_wg);
			run_fail(run, "cannot start lane %u: %s", i,
			         sl_strerror(r));
			return r;
		}
	}
	return 0;
}

static void
run_send(struct load_run_state *run)
{
	struct sl_task *rep = NULL;
	uint64_t end;

	run->start_ns = sl_now_ns();
	if (run_spawn_lanes(run))
		sl_context_cancel(run->ctx);
	else if (sl_task_spawn(reporter_task, run, NULL, &rep))
		rep = NULL;
	sl_waitgroup_wait(&run->lanes_wg);
	end = sl_now_ns();
	run->res->send_s = (double)(end - run->start_ns) / 1e9;

	if (run->o->verify && !run_failed(run))
		run_converge(run, end);
	if (run->sink) {
		sl_context_cancel(run->sink_ctx);
		sl_listener_close(run->sink);
		sl_waitgroup_wait(&run->sink_wg);
		run->sink = NULL;
	}
	sl_context_cancel(run->rep_ctx);
	if (rep)
		sl_task_join(rep);
	run_row(run);
	if (run->progress)
		fputc('\n', stderr);
}

static int
run_contexts(struct load_run_state *run)
{
	if (sl_context_with_cancel(sl_context_background(), &run->all) ||
	    sl_context_with_cancel(run->all, &run->ctx) ||
	    sl_context_with_cancel(run->all, &run->sink_ctx) ||
	    sl_context_with_cancel(run->all, &run->rep_ctx))
		return -ENOMEM;
	return 0;
}

static void
run_release(struct load_run_state *run)
{
	if (run->rep_ctx)
		sl_context_release(run->rep_ctx);
	if (run->sink_ctx)
		sl_context_release(run->sink_ctx);
	if (run->ctx)
		sl_context_release(run->ctx);
	if (run->all)
		sl_context_release(run->all);
}

static int
run_setup(struct load_run_state *run)
{
	const struct load_opts *o = run->o;
	int r;

	r = run_resolve(run);
	if (r) {
		run_fail(run, "cannot use the target %s: %s", o->target,
		         r == -EINVAL   ? "not an address (HOST:PORT or a path)"
		         : r == -ENOENT ? "no such host"
		                        : sl_strerror(r));
		return r;
	}
	run->lanes = calloc(o->conns, sizeof(*run->lanes));
	if (!run->lanes)
		return -ENOMEM;
	for (unsigned i = 0; i < o->conns; i++) {
		r = lane_init(&run->lanes[i], run, i);
		if (r) {
			run_fail(run, "cannot set up lane %u: %s", i,
			         sl_strerror(r));
			return r;
		}
	}
	if (o->verify && run_start_sink(run))
		return -1;
	return run_probe(run, &run->lanes[0]);
}

static void
run_main(void *arg)
{
	struct load_run_state *run = arg;
	struct signal_watch sw = {.run = run, .fd = -1};
	struct sl_task *sig = NULL;
	sigset_t set;

	if (run_contexts(run)) {
		run_fail(run, "out of memory");
		goto out;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sw.fd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sw.fd >= 0 &&
	    !sl_context_with_cancel(sl_context_background(), &sw.ctx) &&
	    sl_task_spawn(signal_task, &sw, NULL, &sig))
		sig = NULL;

	if (!run_setup(run))
		run_send(run);
	if (run->sink) {
		sl_context_cancel(run->sink_ctx);
		sl_listener_close(run->sink);
		sl_waitgroup_wait(&run->sink_wg);
	}
	run_collect(run);

	if (sig) {
		sl_context_cancel(sw.ctx);
		sl_task_join(sig);
	}
	if (sw.ctx)
		sl_context_release(sw.ctx);
	if (sw.fd >= 0)
		close(sw.fd);
out:
	if (run->lanes)
		for (unsigned i = 0; i < run->o->conns; i++)
			lane_fini(&run->lanes[i]);
	free(run->lanes);
	run_release(run);
}

static double
run_cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
	       ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) /
	               1e6;
}

int
load_run(const struct load_opts *o, struct load_result *out)
{
	struct load_run_state *run;
	struct sl_runtime_opts ro;
	double cpu0;
	sigset_t set;
	int r;

	memset(out, 0, sizeof(*out));
	run = calloc(1, sizeof(*run));
	if (!run)
		return -1;
	run->o = o;
	run->res = out;
	run->stats = &out->stats;
	run->progress = o->progress < 0 ? isatty(STDERR_FILENO) : o->progress;
	sl_mutex_init(&run->mu);
	sl_waitgroup_init(&run->sink_wg);
	sl_waitgroup_init(&run->lanes_wg);
	if (load_stats_init(&out->stats, &o->plan) ||
	    (o->verify && load_verify_init(&run->verify, o->wl.nkeys))) {
		snprintf(out->fatal, sizeof(out->fatal), "out of memory");
		free(run);
		return -1;
	}

	/* Signals are read through a signalfd: block them everywhere. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	sl_runtime_opts_init(&ro);
	ro.nprocs = o->procs;
	ro.cpus = o->cpus;
	ro.pin = o->cpus != NULL;
	/* A lane preempted by the kernel on a busy machine looks like a task
	 * that will not yield; only report the ones that hold on for long. */
	ro.hog_report_ns = SL_NSEC_PER_SEC;
	/* A lane's processor wakes for its timers, not for work from other
	 * processors: spinning before each sleep would only burn the CPU
	 * the target needs (it was a third of the cost at 20k events/s). */
	ro.idle_spin_ns = 0;
	/* The summary (or its JSON) is the output; the runtime's own notes
	 * about the machine would only get in its way. */
	ro.quiet = true;
	cpu0 = run_cpu_seconds();
	r = sl_runtime_run(&ro, run_main, run);
	out->cpu_s = run_cpu_seconds() - cpu0;
	if (r)
		snprintf(out->fatal, sizeof(out->fatal),
		         "cannot start the runtime: %s", sl_runtime_error());
	if (o->verify)
		load_verify_fini(&run->verify);
	free(run);
	return r || out->fatal[0] ? -1 : 0;
}

void
load_result_fini(struct load_result *r)
{
	load_stats_fini(&r->stats);
}
