/* SPDX-License-Identifier: MIT */
/*
 * Helpers for the integration tests, which run the sluiced binary as a
 * child process and reach it only the way its users do: through its
 * sockets, its signals, its configuration file and its log.
 *
 *  - struct itest_daemon: sluiced started on a temporary configuration.
 *    A thread reads its stderr into a log that tests wait on ("ready",
 *    "routes reloaded", ...); another collects its exit status.
 *  - struct itest_sink: a TCP listener owned by the test, standing in for
 *    the peer of sluiced's tcp sink.  It parses the lines sluiced writes,
 *    "KIND kN VERSION[ PAD]", and keeps per key the highest version seen,
 *    so a test can wait for every key's final version and count versions
 *    that went backwards.
 *  - producers: blocking sockets that send lines or frames, in threads.
 *
 * The test side uses plain threads and blocking sockets, nothing from the
 * runtime under test, so a fault in the runtime cannot hide itself by
 * stalling the test's own machinery.  Every wait has a deadline, and the
 * deadlines are generous: they only decide how long a broken build takes
 * to fail, never whether a working one passes.
 */
#ifndef SLUICE_TESTS_ITEST_H
#define SLUICE_TESTS_ITEST_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Sizes of the loads: the full figure in plain builds, a smaller one under
 * a sanitizer (both sluiced and the test run five to twenty times
 * slower).  ITEST_SCALE_DIV in the environment divides the plain figure,
 * for a quick run on a slow machine, down to the sanitizer's at most. */
#ifdef SL_SANITIZER
#define ITEST_SCALE(plain, sanitized) (sanitized)
#define ITEST_WAIT_MS 120000u
#else
#define ITEST_SCALE(plain, sanitized) itest_scaled((plain), (sanitized))
#define ITEST_WAIT_MS 60000u
#endif

unsigned itest_scaled(unsigned plain, unsigned floor);

/* The admin endpoint every test configuration opens, with a token. */
#define ITEST_TOKEN "itest-token"
#define ITEST_ADMIN_YAML                                                       \
	"admin:\n  addr: \"127.0.0.1:0\"\n  token: " ITEST_TOKEN "\n"

uint64_t itest_now_ms(void);

/* The sluiced binary under test, for tests that run it with arguments of
 * their own rather than through itest_daemon_start(). */
const char *itest_sluiced_path(void);

/* What one run of sluiced said (stdout and stderr together) and how it
 * ended. */
struct itest_run {
	char out[16384];
	size_t len;
	int status;
};

/*
 * itest_run_sluiced() - run sluiced with @args (NULL-terminated, without
 * the program name) to its end.  If @ready is given and appears in its
 * output, the child is sent SIGTERM and drains.  Return: 0 with
 * r->status, or -1 when the child neither exited nor got ready in time
 * (it is killed).
 */
int itest_run_sluiced(const char *const *args, const char *ready,
		      struct itest_run *r);

/* ---- the daemon ---- */

struct itest_daemon {
	char dir[64];			/* temporary directory */
	char config[96];		/* its sluiced.yaml */
	pid_t pid;
	int err_fd;			/* read end of sluiced's stderr */
	pthread_t log_thread, wait_thread;
	bool threads;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	char *log;			/* everything sluiced wrote to stderr */
	size_t log_len, log_cap;
	bool log_eof, exited;
	int status;			/* waitpid()'s, once exited */
	struct itest_sink *watchers[4];	/* told when the child exits */
	unsigned nwatchers;
};

/*
 * Write @yaml to a new temporary directory and start sluiced on it, then
 * wait until it logs "ready" (or exits).  Return: 0, or -1 with the reason
 * and sluiced's log printed.
 */
int itest_daemon_start(struct itest_daemon *d, const char *yaml);

struct itest_sink;

/*
 * Tell @s when sluiced exits, so that a wait on the sink gives up once
 * nothing more can arrive (sluiced gone and its connections read to their
 * end) instead of at its deadline.  Call before itest_daemon_start().
 */
void itest_daemon_watch(struct itest_daemon *d, struct itest_sink *s);

/* Replace the configuration file atomically (write, then rename). */
void itest_daemon_write_config(struct itest_daemon *d, const char *yaml);

void itest_daemon_signal(struct itest_daemon *d, int sig);

/* Occurrences of @needle in the log so far. */
unsigned itest_log_count(struct itest_daemon *d, const char *needle);

/* Wait until @needle occurs at least @count times in the log. */
bool itest_log_wait(struct itest_daemon *d, const char *needle,
		    unsigned count, uint64_t timeout_ms);

/* The address sluiced logged for input @name, or for the admin endpoint
 * when @name is NULL.  Return: 0 or -1. */
int itest_daemon_addr(struct itest_daemon *d, const char *name, char *buf,
		      size_t len);

/* Wait for the child to exit; true with its waitpid() status in @status. */
bool itest_daemon_wait_exit(struct itest_daemon *d, uint64_t timeout_ms,
			    int *status);

bool itest_daemon_running(struct itest_daemon *d);

/* Print the log to stderr (on a failure, to see what sluiced said). */
void itest_daemon_dump_log(struct itest_daemon *d);

/* True when the log holds a sanitizer's report. */
bool itest_daemon_sanitizer_report(struct itest_daemon *d);

/*
 * Kill the child if it still runs, reap it, join the threads and remove
 * the temporary files.  Safe on a daemon that never started or was
 * finished already (cmocka teardown calls it after a failed assert).
 */
void itest_daemon_finish(struct itest_daemon *d);

/* cmocka fixtures: a zeroed daemon in *@state, finished and freed after
 * the test whatever its outcome. */
int itest_daemon_setup(void **state);
int itest_daemon_teardown(void **state);

/*
 * GET /metrics and read one series: @series is its name with its labels
 * as sluiced writes them, e.g. sluice_input_malformed_total{input="tcp"}.
 * Return: 0 with the value, -ENOENT if the series is absent, or another
 * negative errno value (the request failed).
 */
int itest_metric(struct itest_daemon *d, const char *series, uint64_t *out);

/* Print the series whose names start with @prefix, and GET @path if not
 * NULL (e.g. "/debug/tasks"): what a failing test shows of sluiced. */
void itest_metrics_dump(struct itest_daemon *d, const char *prefix,
			const char *path);

/* Wait until @series reaches at least @min. */
bool itest_metric_wait(struct itest_daemon *d, const char *series,
		       uint64_t min, uint64_t timeout_ms);

/* ---- the sink's peer ---- */

#define ITEST_SINK_KINDS 8

struct itest_sink_conn;

struct itest_sink_counts {
	uint64_t accepted;		/* connections */
	uint64_t lines;			/* of any kind */
	uint64_t tracked;		/* of the tracked kind */
	uint64_t finals;		/* keys that reached the final version */
	/* A key's version lower than one seen before: over all connections,
	 * and within one connection. */
	uint64_t regressions, conn_regressions;
	uint64_t bad_lines;		/* of the tracked kind, unreadable */
};

struct itest_sink {
	int lfd;
	char addr[64];			/* 127.0.0.1:PORT */
	char kind[32];			/* the kind whose keys are tracked */
	int rcvbuf;			/* SO_RCVBUF, 0 for the default */
	unsigned nkeys;
	uint32_t final;			/* every key's last version */
	pthread_t acceptor;
	bool up;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct itest_sink_conn *conns;
	unsigned open;			/* connections not yet at EOF */
	bool paused;			/* readers hold off while set */
	bool source_gone;		/* the watching daemon has exited */
	uint32_t *top;			/* per key: highest version seen */
	struct itest_sink_counts n;
	struct {
		char name[32];
		uint64_t lines;
	} kinds[ITEST_SINK_KINDS];
	char first_problem[160];
};

/* Listen on 127.0.0.1 (a free port) for the lines of @kind, keys k0 ..
 * k@nkeys-1, final version @final.  Return: 0 or -errno. */
int itest_sink_open(struct itest_sink *s, const char *kind, unsigned nkeys,
		    uint32_t final);

/*
 * itest_sink_open() with a receive buffer of @rcvbuf bytes on every
 * connection (the kernel doubles it, and keeps a floor): while paused,
 * the sink then holds little of what sluiced writes, so sluiced's
 * writes wait after a few kilobytes instead of the megabytes a
 * loopback connection can otherwise take in.
 */
int itest_sink_open_rcvbuf(struct itest_sink *s, const char *kind,
			   unsigned nkeys, uint32_t final, int rcvbuf);

/* Stop reading (sluiced's writes then fill the socket buffers) or go on. */
void itest_sink_pause(struct itest_sink *s, bool paused);

/*
 * The sink goes away: the listener closes and every connection is reset
 * (SO_LINGER 0), so sluiced's next write on it fails at once.  Returns
 * after every reader has stopped.
 */
void itest_sink_down(struct itest_sink *s);

/* Listen again on the same port.  Return: 0 or -errno. */
int itest_sink_up(struct itest_sink *s);

bool itest_sink_wait_finals(struct itest_sink *s, uint64_t timeout_ms);
bool itest_sink_wait_lines(struct itest_sink *s, uint64_t lines,
			   uint64_t timeout_ms);
/* Wait until every accepted connection has reached its end. */
bool itest_sink_wait_closed(struct itest_sink *s, uint64_t timeout_ms);

/* The counters, read under the sink's lock. */
struct itest_sink_counts itest_sink_counts(struct itest_sink *s);

uint64_t itest_sink_kind_lines(struct itest_sink *s, const char *kind);
bool itest_sink_wait_kind(struct itest_sink *s, const char *kind,
			  uint64_t lines, uint64_t timeout_ms);

/* Keys whose final version has not arrived (first few in @buf). */
unsigned itest_sink_missing(struct itest_sink *s, char *buf, size_t len);

void itest_sink_close(struct itest_sink *s);

/* ---- producers ---- */

/* A blocking connection with CLOEXEC and send/receive timeouts. */
int itest_connect(const char *addr);

/* Send all of @buf; 0 or -errno (never SIGPIPE). */
int itest_send_all(int fd, const void *buf, size_t len);

/* Wait until @fd reports end of stream or a reset: the peer closed it. */
bool itest_wait_peer_close(int fd, uint64_t timeout_ms);

/*
 * A producer: sends, for each version @from..@to in turn, one event for
 * each key @first, @first + @step, ... below @nkeys: kind @kind, key kN,
 * payload the version, then a space and @pad bytes when @pad is not 0.
 * In frames, the events follow a HELLO asking for one ACK after the last
 * of them, which the producer waits for.
 */
struct itest_load {
	int fd;				/* connected by the caller */
	const char *kind;
	unsigned first, step, nkeys;
	uint32_t from, to;
	size_t pad;
	bool frames;

	pthread_t th;
	int result;			/* 0 or -errno */
	uint64_t events;		/* sent */
	uint64_t acked;			/* frames: the ACK's count */
};

/* Run the load on the calling thread; returns @l->result. */
int itest_load_run(struct itest_load *l);
void itest_load_start(struct itest_load *l);
int itest_load_join(struct itest_load *l);

/* Events one load sends. */
uint64_t itest_load_count(const struct itest_load *l);

#endif /* SLUICE_TESTS_ITEST_H */
