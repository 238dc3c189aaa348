/* SPDX-License-Identifier: MIT */
/*
 * router_load: the load side of the router benchmarks (tools/bench/run-router).
 * One program drives Sluice (router_sluice) and the Go peer (go/router)
 * identically, on plain POSIX threads and blocking sockets, so that neither
 * server's runtime is in the producer's way.
 *
 *   router_load send --port P --keys K --events N [--conns C]
 *                    [--rate R] [--chunk BYTES]
 *   router_load drain [--conns C]
 *   router_load nats --port P [--msgs N] [--size BYTES]
 *
 * send   Connects C connections (default 4) to 127.0.0.1:P and sends N
 *        events over K keys.  Event i (0 <= i < N) is for key i % K with
 *        version i / K + 1, so each key's versions rise by one, and it goes
 *        on connection (i % K) % C, so a key always uses the same
 *        connection and its versions arrive in order.  Every line is 64
 *        bytes:
 *
 *          set k0001234 00000017 1733212345678901234 xxxxxxxxxxxxxxxxxxxxx
 *
 *        kind "set", key "k" and 7 digits, and a payload of the version
 *        (8 digits), a send stamp (CLOCK_REALTIME ns, 19 digits; zero when
 *        not measuring latency) and filler.
 *
 *        Without --rate (closed loop) every connection's bytes are built
 *        before the first connection opens, and each connection's thread
 *        writes them in --chunk pieces (default 64 KiB) as fast as the
 *        server takes them, so building lines costs nothing while the
 *        server runs.  With --rate R (open loop) one thread sends event i
 *        at its intended time start + i/R, stamped with that intended
 *        time, not the time it got out: a server that falls behind sees
 *        its latency grow rather than its load drop.
 *
 *        Each connection is then shut for writing and waits for the server
 *        to close it, which both servers do on reading the end of input:
 *        at that moment every event has been read and handed to the
 *        server's queue.  The report line:
 *
 *          load events=N bytes=B start_ns=T sent_ns=T eof_ns=T cpu=S
 *
 *        start_ns is just before the first write, sent_ns when the last
 *        write returned, eof_ns when the last connection was closed by the
 *        server (all CLOCK_REALTIME), cpu this process's user + system
 *        seconds from start to end.
 *
 * drain  A server that reads and discards: it shows what the producer can
 *        send when the receiver costs nothing.  It prints "port=P pid=PID",
 *        reads C connections to their end and exits.
 *
 * nats   A NATS publisher speaking the text protocol: CONNECT, then N
 *        (default 2*10^7) PUB messages of --size bytes (default 64) to one
 *        subject, written in 64 KiB chunks of whole messages, then PING.
 *        The server answers PONG only after it has processed every PUB
 *        before it, so the time to the PONG is the time it took to accept
 *        them all.  It prints "nats msgs=N seconds=S rate=R cpu=S".
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LINE_LEN 64
#define KEY_AT 5	/* 7 key digits */
#define VER_AT 13	/* 8 version digits */
#define STAMP_AT 22	/* 19 stamp digits */
#define MAX_CONNS 64

static const char line_template[LINE_LEN + 1] =
	"set k0000000 00000000 0000000000000000000 xxxxxxxxxxxxxxxxxxxxx\n";

_Static_assert(sizeof(line_template) == LINE_LEN + 1, "a line is 64 bytes");

struct load_opts {
	uint16_t port;
	uint64_t keys, events, msgs;
	unsigned conns;
	double rate;		/* events per second; 0: closed loop */
	size_t chunk;
	size_t size;		/* nats payload bytes */
};

static void
die(const char *what, int err)
{
	fprintf(stderr, "router_load: %s: %s\n", what, strerror(err));
	exit(1);
}

static uint64_t
realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double
cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
	       ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) /
		       1e6;
}

/* Write @v as exactly @width decimal digits ending at @p + @width. */
static void
put_digits(char *p, uint64_t v, int width)
{
	for (int i = width - 1; i >= 0; i--) {
		p[i] = (char)('0' + v % 10);
		v /= 10;
	}
}

/* Event @i as one line at @p. */
static void
make_line(char *p, const struct load_opts *o, uint64_t i, uint64_t stamp)
{
	memcpy(p, line_template, LINE_LEN);
	put_digits(p + KEY_AT, i % o->keys, 7);
	put_digits(p + VER_AT, i / o->keys + 1, 8);
	if (stamp)
		put_digits(p + STAMP_AT, stamp, 19);
}

static int
connect_local(uint16_t port)
{
	struct sockaddr_in sa = {
		.sin_family = AF_INET,
		.sin_port = htons(port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket", errno);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("connect", errno);
	return fd;
}

static void
write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("write", errno);
		p += n;
		len -= (size_t)n;
	}
}

/* Shut @fd for writing and wait for the server to close its side. */
static uint64_t
wait_server_close(int fd)
{
	char sink[256];

	shutdown(fd, SHUT_WR);
	for (;;) {
		ssize_t n = read(fd, sink, sizeof(sink));

		if (n == 0 || (n < 0 && errno == ECONNRESET))
			break;
		if (n < 0 && errno != EINTR)
			die("read", errno);
	}
	close(fd);
	return realtime_ns();
}

/* ---- send, closed loop ---- */

struct sender {
	pthread_t thread;
	int fd;
	char *buf;
	size_t len, chunk;
	pthread_barrier_t *go;
	uint64_t sent_ns, eof_ns;
};

static void *
sender_main(void *arg)
{
	struct sender *s = arg;

	pthread_barrier_wait(s->go);
	for (size_t off = 0; off < s->len; off += s->chunk)
		write_all(s->fd, s->buf + off,
			  s->len - off < s->chunk ? s->len - off : s->chunk);
	s->sent_ns = realtime_ns();
	s->eof_ns = wait_server_close(s->fd);
	return NULL;
}

static void
report(const struct load_opts *o, uint64_t start, uint64_t sent,
       uint64_t eof, double cpu)
{
	printf("load events=%llu bytes=%llu start_ns=%llu sent_ns=%llu "
	       "eof_ns=%llu cpu=%.3f\n",
	       (unsigned long long)o->events,
	       (unsigned long long)(o->events * LINE_LEN),
	       (unsigned long long)start, (unsigned long long)sent,
	       (unsigned long long)eof, cpu);
	fflush(stdout);
}

static void
send_closed(const struct load_opts *o)
{
	struct sender s[MAX_CONNS] = {0};
	pthread_barrier_t go;
	uint64_t per = o->events / o->conns, start, sent = 0, eof = 0;
	double cpu0;

	/* Build everything first: the run measures the server, not this. */
	for (unsigned c = 0; c < o->conns; c++) {
		s[c].len = per * LINE_LEN;
		s[c].buf = malloc(s[c].len);
		if (!s[c].buf)
			die("malloc", ENOMEM);
		for (uint64_t j = 0; j < per; j++)
			make_line(s[c].buf + j * LINE_LEN, o, c + o->conns * j,
				  0);
	}

	pthread_barrier_init(&go, NULL, o->conns + 1);
	for (unsigned c = 0; c < o->conns; c++) {
		s[c].fd = connect_local(o->port);
		s[c].chunk = o->chunk;
		s[c].go = &go;
		if (pthread_create(&s[c].thread, NULL, sender_main, &s[c]))
			die("pthread_create", errno);
	}
	cpu0 = cpu_seconds();
	start = realtime_ns();
	pthread_barrier_wait(&go);
	for (unsigned c = 0; c < o->conns; c++) {
		pthread_join(s[c].thread, NULL);
		sent = s[c].sent_ns > sent ? s[c].sent_ns : sent;
		eof = s[c].eof_ns > eof ? s[c].eof_ns : eof;
		free(s[c].buf);
	}
	report(o, start, sent, eof, cpu_seconds() - cpu0);
}

/* ---- send, open loop ---- */

struct outbuf {
	int fd;
	size_t len;
	char data[64 * 1024];
};

static void
outbuf_flush(struct outbuf *b)
{
	write_all(b->fd, b->data, b->len);
	b->len = 0;
}

static void
send_open(const struct load_opts *o)
{
	struct outbuf *bufs = calloc(o->conns, sizeof(*bufs));
	double ns_per_event = 1e9 / o->rate;
	uint64_t start, i = 0, sent, eof = 0;
	double cpu0;

	if (!bufs)
		die("calloc", ENOMEM);
	for (unsigned c = 0; c < o->conns; c++)
		bufs[c].fd = connect_local(o->port);

	cpu0 = cpu_seconds();
	start = realtime_ns();
	while (i < o->events) {
		uint64_t now = realtime_ns();
		uint64_t due = (uint64_t)((double)(now - start) / ns_per_event) +
			       1;

		if (due > o->events)
			due = o->events;
		for (; i < due; i++) {
			struct outbuf *b = &bufs[(i % o->keys) % o->conns];
			uint64_t stamp = start +
					 (uint64_t)((double)i * ns_per_event);

			if (b->len + LINE_LEN > sizeof(b->data))
				outbuf_flush(b);
			make_line(b->data + b->len, o, i, stamp);
			b->len += LINE_LEN;
		}
		for (unsigned c = 0; c < o->conns; c++)
			if (bufs[c].len)
				outbuf_flush(&bufs[c]);
		if (i < o->events) {
			struct timespec nap = {.tv_nsec = 20000};

			nanosleep(&nap, NULL);
		}
	}
	sent = realtime_ns();
	for (unsigned c = 0; c < o->conns; c++) {
		uint64_t t = wait_server_close(bufs[c].fd);

		eof = t > eof ? t : eof;
	}
	report(o, start, sent, eof, cpu_seconds() - cpu0);
	free(bufs);
}

/* ---- drain ---- */

static void *
drain_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	static char scratch[MAX_CONNS][256 * 1024];
	static _Atomic unsigned slot;
	char *buf = scratch[slot++ % MAX_CONNS];

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(scratch[0]));

		if (n == 0)
			break;
		if (n < 0 && errno != EINTR)
			die("read", errno);
	}
	close(fd);
	return NULL;
}

static void
drain(const struct load_opts *o)
{
	struct sockaddr_in sa = {
		.sin_family = AF_INET,
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	socklen_t len = sizeof(sa);
	pthread_t t[MAX_CONNS];
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(lfd, 128) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &len) < 0)
		die("listen", errno);
	printf("port=%u pid=%d\n", ntohs(sa.sin_port), (int)getpid());
	fflush(stdout);
	for (unsigned c = 0; c < o->conns; c++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0)
			die("accept", errno);
		if (pthread_create(&t[c], NULL, drain_conn,
				   (void *)(intptr_t)fd))
			die("pthread_create", errno);
	}
	for (unsigned c = 0; c < o->conns; c++)
		pthread_join(t[c], NULL);
	close(lfd);
}

/* ---- nats ---- */

/* Read until @want has arrived; the bytes before it are dropped. */
static void
nats_expect(int fd, const char *want)
{
	char buf[4096];
	size_t have = 0;

	for (;;) {
		ssize_t n = read(fd, buf + have, sizeof(buf) - 1 - have);

		if (n <= 0)
			die("nats read", n ? errno : EPIPE);
		have += (size_t)n;
		buf[have] = '\0';
		if (strstr(buf, want))
			return;
		if (strstr(buf, "-ERR")) {
			fprintf(stderr, "router_load: nats: %s", buf);
			exit(1);
		}
		if (have > sizeof(buf) / 2) {
			/* Keep the tail, where @want may have started. */
			memmove(buf, buf + have - 64, 64);
			have = 64;
		}
	}
}

static void
nats_publish(const struct load_opts *o)
{
	static const char hello[] =
		"CONNECT {\"verbose\":false,\"pedantic\":false,"
		"\"echo\":false}\r\nPING\r\n";
	char head[64];
	int hlen = snprintf(head, sizeof(head), "PUB bench %zu\r\n", o->size);
	size_t mlen = (size_t)hlen + o->size + 2;
	size_t per_chunk = (64 * 1024) / mlen, left = o->msgs;
	char *chunk = malloc(per_chunk * mlen);
	int fd = connect_local(o->port);
	uint64_t start, end;
	double cpu0;

	if (!chunk || per_chunk == 0)
		die("nats chunk", ENOMEM);
	for (size_t m = 0; m < per_chunk; m++) {
		char *p = chunk + m * mlen;

		memcpy(p, head, (size_t)hlen);
		memset(p + hlen, 'x', o->size);
		memcpy(p + hlen + o->size, "\r\n", 2);
	}
	nats_expect(fd, "INFO");
	write_all(fd, hello, sizeof(hello) - 1);
	nats_expect(fd, "PONG");

	cpu0 = cpu_seconds();
	start = realtime_ns();
	while (left) {
		size_t n = left < per_chunk ? left : per_chunk;

		write_all(fd, chunk, n * mlen);
		left -= n;
	}
	write_all(fd, "PING\r\n", 6);
	nats_expect(fd, "PONG");
	end = realtime_ns();
	printf("nats msgs=%llu seconds=%.3f rate=%.0f cpu=%.3f\n",
	       (unsigned long long)o->msgs, (double)(end - start) / 1e9,
	       (double)o->msgs * 1e9 / (double)(end - start),
	       cpu_seconds() - cpu0);
	close(fd);
	free(chunk);
}

/* ---- options ---- */

static uint64_t
parse_num(const char *flag, const char *s, double max)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || v < 0 || v > max) {
		fprintf(stderr, "router_load: %s wants a number up to %.0f, "
			"not '%s'\n", flag, max, s);
		exit(2);
	}
	return (uint64_t)v;
}

static void
usage(void)
{
	fprintf(stderr,
		"usage: router_load send --port P --keys K --events N "
		"[--conns C] [--rate R] [--chunk BYTES]\n"
		"       router_load drain [--conns C]\n"
		"       router_load nats --port P [--msgs N] [--size BYTES]\n");
	exit(2);
}

static void
parse_opts(int argc, char **argv, struct load_opts *o)
{
	*o = (struct load_opts){.keys = 10000, .events = 5000000,
				.conns = 4, .chunk = 64 * 1024,
				.msgs = 20000000, .size = 64};
	for (int i = 2; i < argc; i += 2) {
		const char *flag = argv[i], *val;

		if (i + 1 >= argc)
			usage();
		val = argv[i + 1];
		if (!strcmp(flag, "--port"))
			o->port = (uint16_t)parse_num(flag, val, 65535);
		else if (!strcmp(flag, "--keys"))
			o->keys = parse_num(flag, val, 1e7);
		else if (!strcmp(flag, "--events"))
			o->events = parse_num(flag, val, 1e10);
		else if (!strcmp(flag, "--conns"))
			o->conns = (unsigned)parse_num(flag, val, MAX_CONNS);
		else if (!strcmp(flag, "--rate"))
			o->rate = (double)parse_num(flag, val, 1e9);
		else if (!strcmp(flag, "--chunk"))
			o->chunk = parse_num(flag, val, 1 << 26);
		else if (!strcmp(flag, "--msgs"))
			o->msgs = parse_num(flag, val, 1e11);
		else if (!strcmp(flag, "--size"))
			o->size = parse_num(flag, val, 1 << 20);
		else
			usage();
	}
	if (!o->keys || !o->conns || !o->chunk || o->keys % o->conns ||
	    o->events % o->keys || o->events / o->keys > 99999999) {
		fprintf(stderr, "router_load: --keys must be a multiple of "
			"--conns and --events a multiple of --keys "
			"(at most 10^8 versions per key)\n");
		exit(2);
	}
}

int
main(int argc, char **argv)
{
	struct load_opts o;

	if (argc < 2)
		usage();
	parse_opts(argc, argv, &o);
	if (!strcmp(argv[1], "send") && o.port)
		o.rate > 0 ? send_open(&o) : send_closed(&o);
	else if (!strcmp(argv[1], "drain"))
		drain(&o);
	else if (!strcmp(argv[1], "nats") && o.port)
		nats_publish(&o);
	else
		usage();
	return 0;
}
