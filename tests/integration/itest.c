/* SPDX-License-Identifier: MIT */
/*
 * Helpers for the integration tests; see itest.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "itest.h"

#ifndef SLUICED_PATH
#error "SLUICED_PATH must name the sluiced binary under test"
#endif

extern char **environ;

/* The frame header: a 4-byte length, then the type (docs/protocol.md). */
#define FRAME_EVENT 1
#define FRAME_HELLO 2
#define FRAME_ACK 3

uint64_t
itest_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

unsigned
itest_scaled(unsigned plain, unsigned floor)
{
	const char *div = getenv("ITEST_SCALE_DIV");
	unsigned long n = div ? strtoul(div, NULL, 10) : 0;

	if (n <= 1)
		return plain;
	return plain / n > floor ? (unsigned)(plain / n) : floor;
}

/* Absolute CLOCK_MONOTONIC time @ms from now, for pthread_cond_timedwait. */
static struct timespec
deadline_in(uint64_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(ms / 1000u);
	ts.tv_nsec += (long)(ms % 1000u) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

static void
monotonic_cond_init(pthread_cond_t *cv)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(cv, &ca);
	pthread_condattr_destroy(&ca);
}

/* ---- the daemon ---- */

static void *
daemon_log_thread(void *arg)
{
	struct itest_daemon *d = arg;
	char buf[4096];

	for (;;) {
		ssize_t n = read(d->err_fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		pthread_mutex_lock(&d->mu);
		if (n <= 0) {
			d->log_eof = true;
			pthread_cond_broadcast(&d->cv);
			pthread_mutex_unlock(&d->mu);
			return NULL;
		}
		if (d->log_len + (size_t)n + 1 > d->log_cap) {
			size_t cap = d->log_cap ? d->log_cap : 65536;
			char *p;

			while (d->log_len + (size_t)n + 1 > cap)
				cap *= 2;
			p = realloc(d->log, cap);
			if (!p) {
				pthread_mutex_unlock(&d->mu);
				continue; /* lose this piece of the log */
			}
			d->log = p;
			d->log_cap = cap;
		}
		memcpy(d->log + d->log_len, buf, (size_t)n);
		d->log_len += (size_t)n;
		d->log[d->log_len] = '\0';
		pthread_cond_broadcast(&d->cv);
		pthread_mutex_unlock(&d->mu);
	}
}

static void *
daemon_wait_thread(void *arg)
{
	struct itest_daemon *d = arg;
	int status = 0;

	while (waitpid(d->pid, &status, 0) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&d->mu);
	d->exited = true;
	d->status = status;
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);

	for (unsigned i = 0; i < d->nwatchers; i++) {
		struct itest_sink *s = d->watchers[i];

		pthread_mutex_lock(&s->mu);
		s->source_gone = true;
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
	}
	return NULL;
}

void
itest_daemon_watch(struct itest_daemon *d, struct itest_sink *s)
{
	if (d->nwatchers < sizeof(d->watchers) / sizeof(d->watchers[0]))
		d->watchers[d->nwatchers++] = s;
}

void
itest_daemon_write_config(struct itest_daemon *d, const char *yaml)
{
	char tmp[128];
	FILE *f;

	/* Written aside and renamed over, so that a reload never reads a
	 * half-written file. */
	snprintf(tmp, sizeof(tmp), "%s.tmp", d->config);
	f = fopen(tmp, "w");
	if (!f || fputs(yaml, f) < 0 || fclose(f) || rename(tmp, d->config))
		fprintf(stderr, "itest: cannot write %s: %s\n", d->config,
			strerror(errno));
}

static unsigned
count_locked(struct itest_daemon *d, const char *needle)
{
	unsigned n = 0;

	for (const char *p = d->log; p && (p = strstr(p, needle)); p++)
		n++;
	return n;
}

unsigned
itest_log_count(struct itest_daemon *d, const char *needle)
{
	unsigned n;

	pthread_mutex_lock(&d->mu);
	n = count_locked(d, needle);
	pthread_mutex_unlock(&d->mu);
	return n;
}

bool
itest_log_wait(struct itest_daemon *d, const char *needle, unsigned count,
	       uint64_t timeout_ms)
{
	struct timespec until = deadline_in(timeout_ms);
	bool found;

	pthread_mutex_lock(&d->mu);
	/* The log only grows until the child's stderr reaches its end. */
	while (!(found = count_locked(d, needle) >= count) && !d->log_eof)
		if (pthread_cond_timedwait(&d->cv, &d->mu, &until) ==
		    ETIMEDOUT)
			break;
	if (!found)
		found = count_locked(d, needle) >= count;
	pthread_mutex_unlock(&d->mu);
	return found;
}

const char *
itest_sluiced_path(void)
{
	return SLUICED_PATH;
}

/* Read what the child writes until EOF or @until; true at EOF. */
static bool
itest_run_read(struct itest_run *r, int fd, uint64_t until,
	       const char *stop_at, bool *seen)
{
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		uint64_t now = itest_now_ms();
		ssize_t n;

		if (stop_at && !*seen && strstr(r->out, stop_at)) {
			*seen = true;
			return false;
		}
		if (now >= until)
			return false;
		if (poll(&p, 1, (int)(until - now)) <= 0)
			continue;
		if (r->len == sizeof(r->out) - 1) {
			/* Full: what comes later is read and dropped. */
			char junk[4096];

			n = read(fd, junk, sizeof(junk));
		} else {
			n = read(fd, r->out + r->len,
				 sizeof(r->out) - 1 - r->len);
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return true;
		if (r->len < sizeof(r->out) - 1)
			r->len += (size_t)n;
		r->out[r->len] = '\0';
	}
}

/* See itest.h. */
int
itest_run_sluiced(const char *const *args, const char *ready,
		  struct itest_run *r)
{
	char *argv[32];
	const char *path;
	posix_spawn_file_actions_t fa;
	uint64_t until = itest_now_ms() + ITEST_WAIT_MS;
	bool seen = false, eof;
	size_t n = 0;
	int pipefd[2];
	pid_t pid;

	memset(r, 0, sizeof(*r));
	/* posix_spawn() takes char *const[] but writes nothing: copy the
	 * pointers as they are. */
	path = itest_sluiced_path();
	memcpy(&argv[n++], &path, sizeof(path));
	for (; args[n - 1] && n < sizeof(argv) / sizeof(argv[0]) - 1; n++)
		memcpy(&argv[n], &args[n - 1], sizeof(argv[n]));
	argv[n] = NULL;
	if (pipe2(pipefd, O_CLOEXEC))
		return -1;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDERR_FILENO);
	if (posix_spawn(&pid, path, &fa, NULL, argv, environ)) {
		posix_spawn_file_actions_destroy(&fa);
		close(pipefd[0]);
		close(pipefd[1]);
		return -1;
	}
	posix_spawn_file_actions_destroy(&fa);
	close(pipefd[1]);

	eof = itest_run_read(r, pipefd[0], until, ready, &seen);
	if (!eof && seen) {
		kill(pid, SIGTERM);
		eof = itest_run_read(r, pipefd[0], until, NULL, &seen);
	}
	if (!eof)
		kill(pid, SIGKILL);
	close(pipefd[0]);
	waitpid(pid, &r->status, 0);
	if (!eof)
		fprintf(stderr, "sluiced did not finish; its output:\n%s\n",
			r->out);
	return eof ? 0 : -1;
}

int
itest_daemon_start(struct itest_daemon *d, const char *yaml)
{
	posix_spawn_file_actions_t fa;
	/* posix_spawn() takes char *const[]: the strings must be writable. */
	char prog[] = SLUICED_PATH, opt[] = "-c";
	/* The tests often run as root, which sluiced refuses by default. */
	char root[] = "--allow-root";
	char *argv[] = {prog, root, opt, d->config, NULL};
	struct itest_sink *watchers[4];
	unsigned nwatchers = d->nwatchers;
	int pipefd[2], r;

	memcpy(watchers, d->watchers, sizeof(watchers));
	memset(d, 0, sizeof(*d));
	memcpy(d->watchers, watchers, sizeof(watchers));
	d->nwatchers = nwatchers;
	d->err_fd = -1;
	pthread_mutex_init(&d->mu, NULL);
	monotonic_cond_init(&d->cv);
	snprintf(d->dir, sizeof(d->dir), "/tmp/sluiced-itest-XXXXXX");
	if (!mkdtemp(d->dir)) {
		fprintf(stderr, "itest: mkdtemp: %s\n", strerror(errno));
		d->dir[0] = '\0';
		return -1;
	}
	snprintf(d->config, sizeof(d->config), "%s/sluiced.yaml", d->dir);
	itest_daemon_write_config(d, yaml);

	if (pipe2(pipefd, O_CLOEXEC))
		return -1;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDERR_FILENO);
	posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null",
					 O_WRONLY, 0);
	r = posix_spawn(&d->pid, SLUICED_PATH, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pipefd[1]);
	d->err_fd = pipefd[0];
	if (r) {
		fprintf(stderr, "itest: cannot run %s: %s\n", SLUICED_PATH,
			strerror(r));
		d->pid = 0;
		return -1;
	}
	pthread_create(&d->log_thread, NULL, daemon_log_thread, d);
	pthread_create(&d->wait_thread, NULL, daemon_wait_thread, d);
	d->threads = true;

	if (!itest_log_wait(d, "msg=\"ready\"", 1, ITEST_WAIT_MS)) {
		fprintf(stderr, "itest: sluiced did not get ready; its log:\n");
		itest_daemon_dump_log(d);
		return -1;
	}
	return 0;
}

void
itest_daemon_signal(struct itest_daemon *d, int sig)
{
	pthread_mutex_lock(&d->mu);
	/* Not after the wait thread has reaped it: the pid may be reused. */
	if (d->pid > 0 && !d->exited)
		kill(d->pid, sig);
	pthread_mutex_unlock(&d->mu);
}

bool
itest_daemon_running(struct itest_daemon *d)
{
	bool running;

	pthread_mutex_lock(&d->mu);
	running = d->pid > 0 && !d->exited;
	pthread_mutex_unlock(&d->mu);
	return running;
}

int
itest_daemon_addr(struct itest_daemon *d, const char *name, char *buf,
		  size_t len)
{
	char needle[96];
	const char *p;
	size_t n;
	int r = -1;

	if (name)
		snprintf(needle, sizeof(needle),
			 "msg=\"listening\" input=%s addr=", name);
	else
		snprintf(needle, sizeof(needle),
			 "subsys=sluiced msg=\"admin listening\" addr=");
	pthread_mutex_lock(&d->mu);
	p = d->log ? strstr(d->log, needle) : NULL;
	if (p) {
		p += strlen(needle);
		n = strcspn(p, " \n");
		if (n < len) {
			memcpy(buf, p, n);
			buf[n] = '\0';
			r = 0;
		}
	}
	pthread_mutex_unlock(&d->mu);
	return r;
}

bool
itest_daemon_wait_exit(struct itest_daemon *d, uint64_t timeout_ms,
		       int *status)
{
	struct timespec until = deadline_in(timeout_ms);
	bool exited;

	pthread_mutex_lock(&d->mu);
	while (!d->exited && d->pid > 0)
		if (pthread_cond_timedwait(&d->cv, &d->mu, &until) ==
		    ETIMEDOUT)
			break;
	exited = d->exited;
	if (exited && status)
		*status = d->status;
	pthread_mutex_unlock(&d->mu);
	return exited;
}

void
itest_daemon_dump_log(struct itest_daemon *d)
{
	pthread_mutex_lock(&d->mu);
	fprintf(stderr, "---- sluiced's log ----\n%s---- end ----\n",
		d->log ? d->log : "");
	pthread_mutex_unlock(&d->mu);
}

bool
itest_daemon_sanitizer_report(struct itest_daemon *d)
{
	static const char *const marks[] = {
		"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
		"WARNING: ThreadSanitizer", "runtime error:",
	};

	for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++)
		if (itest_log_count(d, marks[i]))
			return true;
	return false;
}

void
itest_daemon_finish(struct itest_daemon *d)
{
	char tmp[128];

	if (d->threads) {
		if (itest_daemon_running(d))
			itest_daemon_signal(d, SIGKILL);
		pthread_join(d->wait_thread, NULL);
		pthread_join(d->log_thread, NULL);
		d->threads = false;
		if (getenv("ITEST_LOG") || itest_daemon_sanitizer_report(d))
			itest_daemon_dump_log(d);
	}
	if (d->err_fd >= 0)
		close(d->err_fd);
	d->err_fd = -1;
	if (d->dir[0]) {
		snprintf(tmp, sizeof(tmp), "%s.tmp", d->config);
		unlink(tmp);
		unlink(d->config);
		rmdir(d->dir);
		d->dir[0] = '\0';
	}
	free(d->log);
	d->log = NULL;
	d->log_len = d->log_cap = 0;
}

int
itest_daemon_setup(void **state)
{
	struct itest_daemon *d = calloc(1, sizeof(*d));

	if (!d)
		return -1;
	d->err_fd = -1;
	*state = d;
	return 0;
}

int
itest_daemon_teardown(void **state)
{
	itest_daemon_finish(*state);
	free(*state);
	return 0;
}

/* ---- sockets ---- */

static int
parse_addr(const char *addr, struct sockaddr_in *sa)
{
	const char *colon = strrchr(addr, ':');
	char host[64];
	size_t n;

	if (!colon || (n = (size_t)(colon - addr)) >= sizeof(host))
		return -EINVAL;
	memcpy(host, addr, n);
	host[n] = '\0';
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)atoi(colon + 1));
	return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -EINVAL;
}

static void
set_timeouts(int fd, uint64_t ms)
{
	struct timeval tv = {.tv_sec = (time_t)(ms / 1000u),
			     .tv_usec = (suseconds_t)(ms % 1000u) * 1000};

	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

int
itest_connect(const char *addr)
{
	struct sockaddr_in sa;
	int fd, r;

	r = parse_addr(addr, &sa);
	if (r)
		return r;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A send parked by back-pressure for longer than any test waits is
	 * a failure, not a hang. */
	set_timeouts(fd, ITEST_WAIT_MS);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

int
itest_send_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

bool
itest_wait_peer_close(int fd, uint64_t timeout_ms)
{
	uint64_t until = itest_now_ms() + timeout_ms;
	char buf[4096];

	for (;;) {
		uint64_t now = itest_now_ms();
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (now >= until)
			return false;
		if (poll(&p, 1, (int)(until - now)) <= 0)
			continue;
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && (errno == ECONNRESET ||
					 errno == EPIPE)))
			return true;
	}
}

/* ---- metrics ---- */

static int
http_get(struct itest_daemon *d, const char *path, char **body)
{
	char addr[64], req[256];
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int fd, r;

	if (itest_daemon_addr(d, NULL, addr, sizeof(addr)))
		return -ENOENT;
	fd = itest_connect(addr);
	if (fd < 0)
		return fd;
	snprintf(req, sizeof(req),
		 "GET %s HTTP/1.1\r\nHost: %s\r\n"
		 "Authorization: Bearer " ITEST_TOKEN "\r\n"
		 "Connection: close\r\n\r\n",
		 path, addr);
	r = itest_send_all(fd, req, strlen(req));
	while (!r) {
		ssize_t n;

		if (cap - len < 65536) {
			char *p = realloc(buf, cap + 262144);

			if (!p) {
				r = -ENOMEM;
				break;
			}
			buf = p;
			cap += 262144;
		}
		n = recv(fd, buf + len, cap - len - 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			r = errno == EAGAIN ? -ETIMEDOUT : -errno;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (r || !buf) {
		free(buf);
		return r ? r : -EPROTO;
	}
	buf[len] = '\0';
	if (strncmp(buf, "HTTP/1.1 200", 12)) {
		fprintf(stderr, "itest: %s answered: %.200s\n", path, buf);
		free(buf);
		return -EPROTO;
	}
	*body = buf;
	return 0;
}

int
itest_metric(struct itest_daemon *d, const char *series, uint64_t *out)
{
	char *body = NULL, *p;
	size_t n = strlen(series);
	int r = http_get(d, "/metrics", &body);

	if (r)
		return r;
	r = -ENOENT;
	/* The response starts with its status line, so a series found is
	 * never at the very start: p[-1] is in the buffer. */
	for (p = strstr(body, series); p; p = strstr(p + 1, series))
		if (p > body && p[-1] == '\n' && p[n] == ' ') {
			*out = strtoull(p + n + 1, NULL, 10);
			r = 0;
			break;
		}
	free(body);
	return r;
}

void
itest_metrics_dump(struct itest_daemon *d, const char *prefix,
		   const char *path)
{
	char *body = NULL;
	int r = http_get(d, "/metrics", &body);

	if (r)
		fprintf(stderr, "itest: GET /metrics: %s\n", strerror(-r));
	if (!r)
		for (char *p = body, *e; *p; p = e + 1) {
			e = strchr(p, '\n');
			if (!e)
				break;
			if (!strncmp(p, prefix, strlen(prefix)))
				fprintf(stderr, "%.*s\n", (int)(e - p), p);
		}
	free(body);
	body = NULL;
	r = path ? http_get(d, path, &body) : 0;
	if (r)
		fprintf(stderr, "itest: GET %s: %s\n", path, strerror(-r));
	else if (body)
		fprintf(stderr, "%s\n", body);
	free(body);
}

bool
itest_metric_wait(struct itest_daemon *d, const char *series, uint64_t min,
		  uint64_t timeout_ms)
{
	uint64_t until = itest_now_ms() + timeout_ms, v = 0;

	/*
	 * Polled: the value lives in another process, which has no way to
	 * tell us it changed.  The pause between scrapes only paces the
	 * polling, so that it does not take the CPU sluiced needs to get
	 * there; the condition, not the pause, ends the wait.
	 */
	for (;;) {
		if (itest_metric(d, series, &v) == 0 && v >= min)
			return true;
		if (itest_now_ms() >= until || !itest_daemon_running(d))
			break;
		nanosleep(&(struct timespec){.tv_nsec = 2000000}, NULL);
	}
	fprintf(stderr, "itest: %s stayed at %llu, below %llu\n", series,
		(unsigned long long)v, (unsigned long long)min);
	return false;
}

/* ---- the sink's peer ---- */

struct itest_sink_conn {
	struct itest_sink_conn *next;
	struct itest_sink *s;
	int fd;
	pthread_t th;
	uint32_t *top;			/* per key, within this connection */
};

static void __attribute__((format(printf, 2, 3)))
sink_problem(struct itest_sink *s, const char *fmt, ...)
{
	va_list ap;

	if (s->first_problem[0])
		return;
	va_start(ap, fmt);
	vsnprintf(s->first_problem, sizeof(s->first_problem), fmt, ap);
	va_end(ap);
}

static void
sink_count_kind(struct itest_sink *s, const char *kind, size_t len)
{
	for (unsigned i = 0; i < ITEST_SINK_KINDS; i++) {
		if (!s->kinds[i].name[0] && len < sizeof(s->kinds[i].name)) {
			memcpy(s->kinds[i].name, kind, len);
			s->kinds[i].name[len] = '\0';
		}
		if (strlen(s->kinds[i].name) == len &&
		    !memcmp(s->kinds[i].name, kind, len)) {
			s->kinds[i].lines++;
			return;
		}
	}
}

/* A decimal number filling [@p, @end); false if it is not one. */
static bool
parse_u32(const char *p, const char *end, uint32_t *out)
{
	uint64_t v = 0;

	if (p == end || end - p > 10)
		return false;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9')
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

/* One line, LF removed; called with the sink's mutex held. */
static void
sink_line(struct itest_sink_conn *c, const char *line, size_t len)
{
	struct itest_sink *s = c->s;
	const char *end = line + len, *kind_end, *key_end, *ver_end;
	uint32_t key, v;

	s->n.lines++;
	kind_end = memchr(line, ' ', len);
	if (!kind_end)
		goto bad;
	sink_count_kind(s, line, (size_t)(kind_end - line));
	if ((size_t)(kind_end - line) != strlen(s->kind) ||
	    memcmp(line, s->kind, strlen(s->kind)))
		return; /* another kind: counted only */
	key_end = memchr(kind_end + 1, ' ', (size_t)(end - kind_end - 1));
	if (!key_end || kind_end[1] != 'k' ||
	    !parse_u32(kind_end + 2, key_end, &key) || key >= s->nkeys)
		goto bad;
	ver_end = memchr(key_end + 1, ' ', (size_t)(end - key_end - 1));
	if (!parse_u32(key_end + 1, ver_end ? ver_end : end, &v) ||
	    v == 0 || v > s->final)
		goto bad;

	s->n.tracked++;
	if (v < c->top[key]) {
		s->n.conn_regressions++;
		sink_problem(s, "key k%u: version %u after %u on one "
				"connection", key, v, c->top[key]);
	} else {
		c->top[key] = v;
	}
	if (v < s->top[key]) {
		s->n.regressions++;
		sink_problem(s, "key k%u: version %u after %u", key, v,
			     s->top[key]);
		return;
	}
	if (v == s->final && s->top[key] < s->final)
		s->n.finals++;
	s->top[key] = v;
	return;
bad:
	s->n.bad_lines++;
	sink_problem(s, "line %llu unreadable: \"%.*s\"",
		     (unsigned long long)s->n.lines, (int)(len < 60 ? len : 60),
		     line);
}

static void *
sink_reader(void *arg)
{
	struct itest_sink_conn *c = arg;
	struct itest_sink *s = c->s;
	size_t cap = 1 << 16, have = 0;
	char *buf = malloc(cap);

	while (buf) {
		ssize_t n;
		char *p, *lf;

		pthread_mutex_lock(&s->mu);
		while (s->paused && s->up)
			pthread_cond_wait(&s->cv, &s->mu);
		pthread_mutex_unlock(&s->mu);

		n = recv(c->fd, buf + have, cap - have, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		have += (size_t)n;

		pthread_mutex_lock(&s->mu);
		for (p = buf; (lf = memchr(p, '\n', have - (size_t)(p - buf)));
		     p = lf + 1)
			sink_line(c, p, (size_t)(lf - p));
		have -= (size_t)(p - buf);
		memmove(buf, p, have);
		if (have == cap) {
			/* No line of ours is this long. */
			s->n.bad_lines++;
			have = 0;
		}
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
	}
	/* A partial line at the end was cut by a broken connection: sluiced
	 * retries what it could not deliver whole. */
	free(buf);
	pthread_mutex_lock(&s->mu);
	s->open--;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

static void *
sink_acceptor(void *arg)
{
	struct itest_sink *s = arg;

	for (;;) {
		struct itest_sink_conn *c;
		int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0 && (errno == EINTR || errno == ECONNABORTED))
			continue;
		if (fd < 0)
			return NULL; /* the listener was shut down */
		c = calloc(1, sizeof(*c));
		if (c)
			c->top = calloc(s->nkeys, sizeof(*c->top));
		if (!c || !c->top) {
			free(c);
			close(fd);
			continue;
		}
		c->s = s;
		c->fd = fd;
		pthread_mutex_lock(&s->mu);
		c->next = s->conns;
		s->conns = c;
		s->n.accepted++;
		s->open++;
		pthread_mutex_unlock(&s->mu);
		pthread_create(&c->th, NULL, sink_reader, c);
	}
}

static int
sink_listen(struct itest_sink *s, uint16_t port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons(port)};
	socklen_t salen = sizeof(sa);
	uint64_t until = itest_now_ms() + ITEST_WAIT_MS;
	int one = 1, fd, r;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (;;) {
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		/* Set on the listener, so that accepted connections have it
		 * from their handshake on (it sets the window scale). */
		if (s->rcvbuf)
			setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &s->rcvbuf,
				   sizeof(s->rcvbuf));
		if (!bind(fd, (struct sockaddr *)&sa, sizeof(sa)))
			break;
		r = -errno;
		close(fd);
		/*
		 * Reopening the old port can meet a connection sluiced just
		 * made from it (an outgoing connect may take any free
		 * ephemeral port).  That clears when the connect is refused,
		 * so try again for a while.
		 */
		if (r != -EADDRINUSE || !port || itest_now_ms() >= until)
			return r;
		nanosleep(&(struct timespec){.tv_nsec = 10000000}, NULL);
	}
	if (listen(fd, 64) ||
	    getsockname(fd, (struct sockaddr *)&sa, &salen)) {
		r = -errno;
		close(fd);
		return r;
	}
	s->lfd = fd;
	snprintf(s->addr, sizeof(s->addr), "127.0.0.1:%u",
		 (unsigned)ntohs(sa.sin_port));
	s->up = true;
	pthread_create(&s->acceptor, NULL, sink_acceptor, s);
	return 0;
}

int
itest_sink_open(struct itest_sink *s, const char *kind, unsigned nkeys,
		uint32_t final)
{
	return itest_sink_open_rcvbuf(s, kind, nkeys, final, 0);
}

int
itest_sink_open_rcvbuf(struct itest_sink *s, const char *kind,
		       unsigned nkeys, uint32_t final, int rcvbuf)
{
	memset(s, 0, sizeof(*s));
	s->lfd = -1;
	s->rcvbuf = rcvbuf;
	snprintf(s->kind, sizeof(s->kind), "%s", kind);
	s->nkeys = nkeys;
	s->final = final;
	s->top = calloc(nkeys, sizeof(*s->top));
	if (!s->top)
		return -ENOMEM;
	pthread_mutex_init(&s->mu, NULL);
	monotonic_cond_init(&s->cv);
	return sink_listen(s, 0);
}

void
itest_sink_pause(struct itest_sink *s, bool paused)
{
	pthread_mutex_lock(&s->mu);
	s->paused = paused;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

void
itest_sink_down(struct itest_sink *s)
{
	struct itest_sink_conn *c, *next;
	struct linger lg = {.l_onoff = 1, .l_linger = 0};

	if (!s->up)
		return;
	pthread_mutex_lock(&s->mu);
	s->up = false; /* wakes paused readers */
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);

	/* shutdown() wakes a thread blocked in accept() or recv() on the
	 * socket, where close() from another thread would not. */
	shutdown(s->lfd, SHUT_RDWR);
	pthread_join(s->acceptor, NULL);
	close(s->lfd);
	s->lfd = -1;

	/* Readers stop without telling the peer (SHUT_RD sends nothing);
	 * then each connection is reset, as if the sink had crashed. */
	for (c = s->conns; c; c = c->next)
		shutdown(c->fd, SHUT_RD);
	for (c = s->conns; c; c = next) {
		next = c->next;
		pthread_join(c->th, NULL);
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(c->fd);
		free(c->top);
		free(c);
	}
	s->conns = NULL;
}

int
itest_sink_up(struct itest_sink *s)
{
	const char *colon = strrchr(s->addr, ':');

	if (s->up || !colon)
		return -EINVAL;
	return sink_listen(s, (uint16_t)atoi(colon + 1));
}

/* Nothing more can arrive: sluiced has exited, every connection ended. */
static bool
sink_settled(struct itest_sink *s)
{
	return s->source_gone && s->open == 0;
}

/* Wait until @done(@s) holds; the sink's mutex is held while it runs. */
static bool
sink_wait(struct itest_sink *s, bool (*done)(struct itest_sink *, uint64_t),
	  uint64_t arg, uint64_t timeout_ms)
{
	struct timespec until = deadline_in(timeout_ms);
	bool ok;

	pthread_mutex_lock(&s->mu);
	while (!(ok = done(s, arg)) && !sink_settled(s))
		if (pthread_cond_timedwait(&s->cv, &s->mu, &until) ==
		    ETIMEDOUT)
			break;
	if (!ok)
		ok = done(s, arg);
	pthread_mutex_unlock(&s->mu);
	return ok;
}

static bool
all_finals(struct itest_sink *s, uint64_t unused)
{
	(void)unused;
	return s->n.finals == s->nkeys;
}

static bool
enough_lines(struct itest_sink *s, uint64_t lines)
{
	return s->n.lines >= lines;
}

static bool
all_closed(struct itest_sink *s, uint64_t unused)
{
	(void)unused;
	return s->open == 0;
}

bool
itest_sink_wait_finals(struct itest_sink *s, uint64_t timeout_ms)
{
	return sink_wait(s, all_finals, 0, timeout_ms);
}

bool
itest_sink_wait_lines(struct itest_sink *s, uint64_t lines,
		      uint64_t timeout_ms)
{
	return sink_wait(s, enough_lines, lines, timeout_ms);
}

bool
itest_sink_wait_closed(struct itest_sink *s, uint64_t timeout_ms)
{
	return sink_wait(s, all_closed, 0, timeout_ms);
}

struct itest_sink_counts
itest_sink_counts(struct itest_sink *s)
{
	struct itest_sink_counts n;

	pthread_mutex_lock(&s->mu);
	n = s->n;
	pthread_mutex_unlock(&s->mu);
	return n;
}

static uint64_t
kind_lines_locked(struct itest_sink *s, const char *kind)
{
	for (unsigned i = 0; i < ITEST_SINK_KINDS; i++)
		if (!strcmp(s->kinds[i].name, kind))
			return s->kinds[i].lines;
	return 0;
}

uint64_t
itest_sink_kind_lines(struct itest_sink *s, const char *kind)
{
	uint64_t n;

	pthread_mutex_lock(&s->mu);
	n = kind_lines_locked(s, kind);
	pthread_mutex_unlock(&s->mu);
	return n;
}

bool
itest_sink_wait_kind(struct itest_sink *s, const char *kind, uint64_t lines,
		     uint64_t timeout_ms)
{
	struct timespec until = deadline_in(timeout_ms);
	bool ok;

	pthread_mutex_lock(&s->mu);
	while (!(ok = kind_lines_locked(s, kind) >= lines) && !sink_settled(s))
		if (pthread_cond_timedwait(&s->cv, &s->mu, &until) ==
		    ETIMEDOUT)
			break;
	if (!ok)
		ok = kind_lines_locked(s, kind) >= lines;
	pthread_mutex_unlock(&s->mu);
	return ok;
}

unsigned
itest_sink_missing(struct itest_sink *s, char *buf, size_t len)
{
	unsigned missing = 0;
	size_t used = 0;

	if (len)
		buf[0] = '\0';
	pthread_mutex_lock(&s->mu);
	for (unsigned k = 0; k < s->nkeys; k++) {
		if (s->top[k] == s->final)
			continue;
		if (missing++ < 8 && used < len)
			used += (size_t)snprintf(buf + used, len - used,
						 "k%u@%u ", k, s->top[k]);
	}
	pthread_mutex_unlock(&s->mu);
	return missing;
}

void
itest_sink_close(struct itest_sink *s)
{
	if (!s->top)
		return; /* never opened */
	itest_sink_down(s);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s->top);
	s->top = NULL;
}

/* ---- producers ---- */

static size_t
put_be32(char *p, uint32_t v)
{
	p[0] = (char)(v >> 24);
	p[1] = (char)(v >> 16);
	p[2] = (char)(v >> 8);
	p[3] = (char)v;
	return 4;
}

/* One event, as a line or as a frame, at @p; returns its size. */
static size_t
put_event(const struct itest_load *l, char *p, unsigned key, uint32_t v)
{
	char keybuf[16], payload[32];
	size_t kind_len = strlen(l->kind), n = 0;
	int key_len = snprintf(keybuf, sizeof(keybuf), "k%u", key);
	int plen = snprintf(payload, sizeof(payload), "%u%s", v,
			    l->pad ? " " : "");
	size_t payload_len = (size_t)plen + l->pad;

	if (!l->frames) {
		n = (size_t)sprintf(p, "%s %s %s", l->kind, keybuf, payload);
		memset(p + n, 'x', l->pad);
		n += l->pad;
		p[n++] = '\n';
		return n;
	}
	n += put_be32(p, (uint32_t)(4 + kind_len + (size_t)key_len +
				    payload_len));
	p[n++] = FRAME_EVENT;
	p[n++] = (char)kind_len;
	p[n++] = (char)(key_len >> 8);
	p[n++] = (char)key_len;
	memcpy(p + n, l->kind, kind_len);
	n += kind_len;
	memcpy(p + n, keybuf, (size_t)key_len);
	n += (size_t)key_len;
	memcpy(p + n, payload, (size_t)plen);
	n += (size_t)plen;
	memset(p + n, 'x', l->pad);
	return n + l->pad;
}

uint64_t
itest_load_count(const struct itest_load *l)
{
	uint64_t keys = l->first < l->nkeys
				? (l->nkeys - l->first + l->step - 1) / l->step
				: 0;

	return keys * (uint64_t)(l->to - l->from + 1);
}

/* Read the ACK a frame producer asked for: 4 + 1 + 8 bytes. */
static int
read_ack(struct itest_load *l)
{
	unsigned char ack[13];
	size_t got = 0;

	while (got < sizeof(ack)) {
		ssize_t n = recv(l->fd, ack + got, sizeof(ack) - got, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n ? (errno == EAGAIN ? -ETIMEDOUT : -errno)
				 : -EPIPE;
		got += (size_t)n;
	}
	if (ack[0] || ack[1] || ack[2] || ack[3] != 9 || ack[4] != FRAME_ACK)
		return -EPROTO;
	l->acked = 0;
	for (int i = 5; i < 13; i++)
		l->acked = l->acked << 8 | ack[i];
	return 0;
}

int
itest_load_run(struct itest_load *l)
{
	size_t cap = (1 << 16) + l->pad + 128, len = 0;
	char *buf = malloc(cap);
	uint64_t total = itest_load_count(l);
	int r = buf ? 0 : -ENOMEM;

	l->events = 0;
	if (!r && l->frames) {
		/* HELLO: ack_every = every event of this load, so the one
		 * ACK comes once the last of them is accepted. */
		len += put_be32(buf, 5);
		buf[len++] = FRAME_HELLO;
		len += put_be32(buf + len, (uint32_t)total);
	}
	for (uint32_t v = l->from; !r && v <= l->to; v++)
		for (unsigned k = l->first; !r && k < l->nkeys; k += l->step) {
			if (len + l->pad + 128 > cap) {
				r = itest_send_all(l->fd, buf, len);
				len = 0;
			}
			len += put_event(l, buf + len, k, v);
			l->events++;
		}
	if (!r && len)
		r = itest_send_all(l->fd, buf, len);
	if (!r && l->frames && total)
		r = read_ack(l);
	free(buf);
	l->result = r;
	return r;
}

static void *
load_thread(void *arg)
{
	itest_load_run(arg);
	return NULL;
}

void
itest_load_start(struct itest_load *l)
{
	l->result = -EINPROGRESS;
	pthread_create(&l->th, NULL, load_thread, l);
}

int
itest_load_join(struct itest_load *l)
{
	pthread_join(l->th, NULL);
	return l->result;
}
