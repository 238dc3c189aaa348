/* SPDX-License-Identifier: MIT */
/*
 * io_sluice: Sluice's server for the io benchmarks (tools/bench/run-io),
 * doing the job of the peers in io_peers.c and go/ioserver with io/:
 *
 *   io_sluice [--port P] [--records N] [--conns N] [--task] [--procs N]
 *             [--idle-spin-us US] [--max-buffered BYTES]
 *             [--buf-size BYTES] [--bufs N] [--bufs-max N]
 *
 * The main task listens on 127.0.0.1:P (0 picks a free port) with one
 * SO_REUSEPORT socket per processor.  A connection keeps no task while it
 * has nothing to read: sl_conn_notify() starts a handler task when bytes
 * arrive, the handler borrows each buffer the kernel filled
 * (sl_conn_try_peek), counts its newlines with memchr, hands it back
 * (sl_conn_consume), and once the connection has nothing more it asks to
 * be notified again and ends.  An idle connection so holds neither a task
 * nor a buffer, which is how a server of many mostly idle producers is
 * meant to use io/.  The kernel's copy into the buffer is the only one.
 * The shared tally is added to once per buffer, as the peers do per read.
 *
 * With --task a connection has a task of its own instead, parked in
 * sl_conn_peek() while it waits (the router's inputs work so today); run-io
 * shows it as the server "sluice-task".
 *
 * It prints the lines the peers print, which run-io reads:
 *
 *   port=P pid=PID                    first, once it listens
 *   ioserver impl=sluice open=N       once --conns N connections are open
 *   ioserver impl=sluice records=N bytes=B seconds=S rate=R cpu=C ...
 *
 * The last line comes when --records N records have arrived, followed by
 * io/'s counters (sl_io_stats_get: receive buffers allocated, times a
 * processor's buffer ring ran dry, receives re-armed, receives that filled
 * several buffers at once, cancels sent, io_uring_enter calls) and the
 * processors' (tasks stolen, sleeps in the ring, idle processors woken).
 * The server then stops its runtime and exits.  seconds runs from the
 * first byte received to the last record, and cpu is the process's
 * own user and system time (getrusage) over the same span.  Without
 * --records it serves until killed, which is how the idle workload runs.
 *
 * The other options are the runtime's and io/'s knobs, for experiments;
 * run-io leaves them at their defaults.  --procs and --idle-spin-us set
 * the number of processors (default: one per CPU) and how long one that
 * ran out of work spins before it sleeps; --max-buffered the received
 * bytes a connection may hold before it stops receiving (256 KiB);
 * --buf-size, --bufs and --bufs-max the size of the provided receive
 * buffers, how many each processor starts with and how many it may grow
 * to (4 KiB, 256 and 4096).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/base.h"
#include "core/context.h"
#include "core/runtime.h"
#include "core/task.h"
#include "io/io.h"
#include "io/net.h"

struct server_opts {
	uint16_t port;
	uint64_t records;	/* report and stop after this many; 0: never */
	uint64_t conns;		/* report once this many are open; 0: never */
	unsigned procs;
	int64_t idle_spin_us;	/* -1: the runtime's default */
	uint32_t buf_size;
	uint32_t bufs;
	uint32_t bufs_max;
	size_t max_buffered;	/* per connection; 0: io/'s default */
	bool task;		/* a parked task per connection */
};

/* What the task that completes the count hands to the main task. */
struct result {
	uint64_t records;
	uint64_t bytes;
	double seconds;
	double cpu;
};

/*
 * The tally every connection adds to, laid out as in io_peers.c: the
 * counters on one line, the start time (looked at on every buffer, set
 * once) on another, the open count on a third.
 */
static struct {
	_Alignas(SL_FALSE_SHARING) _Atomic uint64_t records;
	_Atomic uint64_t bytes;
	_Alignas(SL_FALSE_SHARING) _Atomic uint64_t start_ns;
	_Atomic double cpu_start;	/* stored just after start_ns */
	_Alignas(SL_FALSE_SHARING) _Atomic uint64_t open;
	struct server_opts opts;
	struct sl_context *done;	/* cancelled once the count is in */
	struct result result;
	int err;			/* the first failure, -errno */
} tally;

static double
cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
	       ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) /
		       1e6;
}

/* Count the newlines in @p[0..@n) with memchr, as the peers do. */
static uint64_t
count_records(const char *p, size_t n)
{
	const char *end = p + n;
	uint64_t count = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		if (!nl)
			break;
		count++;
		p = nl + 1;
	}
	return count;
}

static void
tally_first_byte(void)
{
	uint64_t zero = 0;

	if (atomic_load_explicit(&tally.start_ns, memory_order_relaxed))
		return;
	if (atomic_compare_exchange_strong(&tally.start_ns, &zero,
					   sl_now_ns()))
		atomic_store(&tally.cpu_start, cpu_seconds());
}

/*
 * Add one buffer's records.  Exactly one call sees the count cross the
 * target: it takes the figures and cancels the main task's context, whose
 * cancellation orders these stores before the main task's reads.
 */
static void
tally_add(uint64_t records, size_t bytes)
{
	uint64_t want = tally.opts.records;
	uint64_t before;
	struct result *res = &tally.result;

	atomic_fetch_add_explicit(&tally.bytes, bytes, memory_order_relaxed);
	before = atomic_fetch_add(&tally.records, records);
	if (!want || before >= want || before + records < want)
		return;

	res->records = before + records;
	res->bytes = atomic_load(&tally.bytes);
	res->seconds =
		(double)(sl_now_ns() - atomic_load(&tally.start_ns)) / 1e9;
	res->cpu = cpu_seconds() - atomic_load(&tally.cpu_start);
	sl_context_cancel(tally.done);
}

static void
tally_buffer(const struct sl_iobuf *b)
{
	tally_first_byte();
	tally_add(count_records(b->data, b->len), b->len);
}

static const char *
server_name(void)
{
	return tally.opts.task ? "sluice-task" : "sluice";
}

static void
conn_opened(void)
{
	uint64_t open = atomic_fetch_add(&tally.open, 1) + 1;

	if (tally.opts.conns && open == tally.opts.conns) {
		printf("ioserver impl=%s open=%llu\n", server_name(),
		       (unsigned long long)open);
		fflush(stdout);
	}
}

/* --task: a connection's task counts what arrives until the peer closes. */
static void
serve_conn(void *arg)
{
	struct sl_conn *c = arg;
	struct sl_context *bg = sl_context_background();
	struct sl_iobuf b;
	int r;

	conn_opened();
	while ((r = sl_conn_peek(bg, c, &b)) > 0) {
		tally_buffer(&b);
		sl_conn_consume(c, b.len);
	}
	if (r < 0)
		fprintf(stderr, "io_sluice: receive: %s\n", sl_strerror(r));
	atomic_fetch_sub(&tally.open, 1);
	sl_conn_close(c);
}

/*
 * The handler: a task started because @arg has input.  It takes what has
 * arrived without parking, then hands the connection back to
 * sl_conn_notify() and ends, so an idle connection holds no task.
 */
static void
serve_notified(void *arg)
{
	struct sl_conn *c = arg;
	struct sl_iobuf b;
	int r;

	while ((r = sl_conn_try_peek(c, &b)) > 0) {
		tally_buffer(&b);
		sl_conn_consume(c, b.len);
	}
	if (r == -EAGAIN) {
		r = sl_conn_notify(c, serve_notified, c);
		if (!r)
			return;
	}
	if (r < 0)
		fprintf(stderr, "io_sluice: receive: %s\n", sl_strerror(r));
	atomic_fetch_sub(&tally.open, 1);
	sl_conn_close(c);
}

/* Hand a new connection to its handler, a task or a notification. */
static int
serve(struct sl_conn *c)
{
	if (tally.opts.task)
		return sl_go(serve_conn, c);
	conn_opened();
	return sl_conn_notify(c, serve_notified, c);
}

static int
listen_loopback(struct sl_listener **out)
{
	struct sl_listen_opts lo;
	struct sl_addr bound;
	char addr[32];
	int err;

	sl_listen_opts_default(&lo);
	lo.per_proc = true;
	if (tally.opts.max_buffered)
		lo.conn.max_buffered = tally.opts.max_buffered;
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", tally.opts.port);
	err = sl_listen(addr, &lo, out);
	if (err)
		return err;

	sl_listener_addr(*out, &bound);
	printf("port=%u pid=%ld\n", sl_addr_port(&bound), (long)getpid());
	fflush(stdout);
	return 0;
}

static void
report(void)
{
	const struct result *res = &tally.result;
	struct sl_io_stats st;
	uint64_t steals = 0, sleeps = 0, wakes = 0;

	sl_io_stats_get(&st);
	for (unsigned i = 0; i < sl_runtime_nprocs(); i++) {
		struct sl_proc_stats ps;

		if (sl_runtime_proc_stats(i, &ps) == 0) {
			steals += ps.steals;
			sleeps += ps.idle_waits;
			wakes += ps.wakeups_sent;
		}
	}
	printf("ioserver impl=%s records=%llu bytes=%llu seconds=%.6f "
	       "rate=%.0f cpu=%.6f bufs=%llu enobufs=%llu rearms=%llu "
	       "bundles=%llu cancels=%llu submits=%llu steals=%llu sleeps=%llu "
	       "wakes=%llu\n",
	       server_name(), (unsigned long long)res->records,
	       (unsigned long long)res->bytes, res->seconds,
	       res->seconds > 0 ? (double)res->records / res->seconds : 0.0,
	       res->cpu, (unsigned long long)st.bufs_total,
	       (unsigned long long)st.enobufs,
	       (unsigned long long)st.recv_rearms,
	       (unsigned long long)st.recv_bundles,
	       (unsigned long long)st.cancels,
	       (unsigned long long)st.submits, (unsigned long long)steals,
	       (unsigned long long)sleeps, (unsigned long long)wakes);
	fflush(stdout);
	if (res->records != tally.opts.records) {
		fprintf(stderr, "io_sluice: %llu records arrived, %llu "
			"expected\n", (unsigned long long)res->records,
			(unsigned long long)tally.opts.records);
		tally.err = -EPROTO;
	}
}

/*
 * Accept until the count is in (the context is cancelled), then report
 * and return, which stops the runtime; the connections' tasks, parked in
 * their receives, are abandoned with it.  The context is not released:
 * the task that cancelled it may not have returned from
 * sl_context_cancel() yet, and the process ends here anyway.
 */
static void
main_task(void *arg)
{
	struct sl_listener *l;
	struct sl_conn *c;
	int err;

	(void)arg;
	err = sl_context_with_cancel(sl_context_background(), &tally.done);
	if (!err)
		err = listen_loopback(&l);
	if (err) {
		fprintf(stderr, "io_sluice: listen: %s\n", sl_strerror(err));
		tally.err = err;
		return;
	}

	while ((err = sl_listener_accept(tally.done, l, &c)) == 0) {
		err = serve(c);
		if (err) {
			sl_conn_close(c);
			break;
		}
	}
	if (err == -ECANCELED) {
		report();
	} else {
		fprintf(stderr, "io_sluice: accept: %s\n", sl_strerror(err));
		tally.err = err;
	}
	sl_listener_close(l);
}

static uint64_t
parse_u64(const char *flag, const char *s, uint64_t max)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v > max) {
		fprintf(stderr, "io_sluice: %s wants a number up to %llu, "
			"not '%s'\n", flag, (unsigned long long)max, s);
		exit(2);
	}
	return v;
}

static void
parse_opts(int argc, char **argv, struct server_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->idle_spin_us = -1;
	for (int i = 1; i < argc; i += 2) {
		const char *flag = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(flag, "--task")) {
			o->task = true;
			i--;
			continue;
		}
		if (!val) {
			fprintf(stderr, "usage: io_sluice [--port P] "
				"[--records N] [--conns N] [--task] "
				"[--procs N]\n"
				"       [--idle-spin-us US] "
				"[--max-buffered BYTES] [--buf-size BYTES] "
				"[--bufs N] [--bufs-max N]\n");
			exit(2);
		}
		if (!strcmp(flag, "--port"))
			o->port = (uint16_t)parse_u64(flag, val, 65535);
		else if (!strcmp(flag, "--records"))
			o->records = parse_u64(flag, val, UINT64_MAX);
		else if (!strcmp(flag, "--conns"))
			o->conns = parse_u64(flag, val, UINT64_MAX);
		else if (!strcmp(flag, "--procs"))
			o->procs = (unsigned)parse_u64(flag, val, SL_MAX_PROCS);
		else if (!strcmp(flag, "--idle-spin-us"))
			o->idle_spin_us = (int64_t)parse_u64(flag, val, 1000000);
		else if (!strcmp(flag, "--max-buffered"))
			o->max_buffered = (size_t)parse_u64(flag, val, 1u << 30);
		else if (!strcmp(flag, "--bufs-max"))
			o->bufs_max = (uint32_t)parse_u64(flag, val, 32768);
		else if (!strcmp(flag, "--bufs"))
			o->bufs = (uint32_t)parse_u64(flag, val, 32768);
		else if (!strcmp(flag, "--buf-size"))
			o->buf_size = (uint32_t)parse_u64(flag, val, 1u << 30);
		else {
			fprintf(stderr, "io_sluice: unknown flag %s\n", flag);
			exit(2);
		}
	}
}

/* Ten thousand connections need more descriptors than the usual soft limit
 * of 1024; take what the hard limit allows. */
static void
raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int
main(int argc, char **argv)
{
	struct sl_runtime_opts ro;
	int err;

	parse_opts(argc, argv, &tally.opts);
	raise_fd_limit();

	if (tally.opts.buf_size || tally.opts.bufs || tally.opts.bufs_max) {
		struct sl_io_opts io = {0};

		io.buf_size = tally.opts.buf_size;
		io.bufs_initial = tally.opts.bufs;
		io.bufs_max = tally.opts.bufs_max;
		err = sl_io_configure(&io);
		if (err) {
			fprintf(stderr, "io_sluice: buffer options: %s\n",
				sl_strerror(err));
			return 2;
		}
	}

	sl_runtime_opts_init(&ro);
	ro.nprocs = tally.opts.procs;
	if (tally.opts.idle_spin_us >= 0)
		ro.idle_spin_ns = (uint64_t)tally.opts.idle_spin_us * 1000;
	err = sl_runtime_run(&ro, main_task, NULL);
	if (err) {
		fprintf(stderr, "io_sluice: %s\n", sl_runtime_error());
		return 1;
	}
	return tally.err ? 1 : 0;
}
