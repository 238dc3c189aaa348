/* SPDX-License-Identifier: MIT */
/*
 * Bad input costs its sender and nobody else.  While two producers send
 * good events, others send malformed and oversized lines and frames:
 *
 *  - a connection that reaches limits.max_malformed bad lines is closed,
 *    and nothing it sent after the last of them is taken;
 *  - one that sends fewer stays open, its later events still routed;
 *  - oversized frames are stepped over, also one whose end falls on a
 *    receive-buffer boundary; a frame of length 0 ends the connection,
 *    since its framing is lost, and counts as closed for bad input;
 *  - the good producers' events all arrive, in order per key;
 *  - /metrics counts every bad item under the right input and reason;
 *  - sluiced stays up and drains to exit 0.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "itest.h"

#define GOOD 2
#define MAX_MALFORMED 4
/* limits.payload_max below; line_max and frame_max are derived from it:
 * 4 * (255 + 4096 + 1024) + 4 and 8 + 255 + 4096 + 1024. */
#define PAYLOAD_MAX 1024
#define LINE_MAX_DERIVED 21504
#define FRAME_MAX_DERIVED 5383

struct fixture {
	struct itest_daemon d;
	struct itest_sink sink;
	struct itest_load good[GOOD];
	int bad, survivor, frames;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	for (unsigned i = 0; i < GOOD; i++)
		f->good[i].fd = -1;
	f->bad = f->survivor = f->frames = -1;
	f->d.err_fd = -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	int fds[] = {f->bad, f->survivor, f->frames};

	for (unsigned i = 0; i < GOOD; i++)
		if (f->good[i].fd >= 0)
			close(f->good[i].fd);
	for (unsigned i = 0; i < 3; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	itest_daemon_finish(&f->d);
	itest_sink_close(&f->sink);
	free(f);
	return 0;
}

/* Append @n bytes of @c, then a LF, after @prefix. */
static size_t
put_long_line(char *p, const char *prefix, char c, size_t n)
{
	size_t len = strlen(prefix);

	memcpy(p, prefix, len);
	memset(p + len, c, n);
	p[len + n] = '\n';
	return len + n + 1;
}

static size_t
put_frame_event(char *p, const char *kind, const char *key,
		const char *payload)
{
	size_t kl = strlen(kind), keyl = strlen(key), pl = strlen(payload);
	uint32_t len = (uint32_t)(4 + kl + keyl + pl);
	size_t n = 0;

	p[n++] = (char)(len >> 24);
	p[n++] = (char)(len >> 16);
	p[n++] = (char)(len >> 8);
	p[n++] = (char)len;
	p[n++] = 1; /* EVENT */
	p[n++] = (char)kl;
	p[n++] = (char)(keyl >> 8);
	p[n++] = (char)keyl;
	memcpy(p + n, kind, kl);
	memcpy(p + n + kl, key, keyl);
	memcpy(p + n + kl + keyl, payload, pl);
	return n + kl + keyl + pl;
}

/*
 * Good events of kind "pre", then MAX_MALFORMED bad lines (two oversized:
 * a line past line_max and a payload past payload_max; two malformed),
 * then events of kind "after" that must never be taken.
 */
static int
send_bad_lines(int fd)
{
	size_t cap = LINE_MAX_DERIVED + 8192, n = 0;
	char *buf = malloc(cap);
	int r;

	if (!buf)
		return -ENOMEM;
	n += (size_t)sprintf(buf + n, "pre p1 1\npre p2 1\n");
	n += put_long_line(buf + n, "set huge ", 'y', LINE_MAX_DERIVED);
	n += put_long_line(buf + n, "set fat ", 'z', PAYLOAD_MAX + 1);
	n += (size_t)sprintf(buf + n, "nokey\n");
	n += (size_t)sprintf(buf + n, "set k1 bad\\qescape\n");
	n += (size_t)sprintf(buf + n, "after a1 1\nafter a2 1\n");
	r = itest_send_all(fd, buf, n);
	free(buf);
	/* sluiced may close the connection before it has read all of it;
	 * the rest of the bytes then meet a reset, which is the point. */
	return r == -ECONNRESET || r == -EPIPE ? 0 : r;
}

/* Two bad lines among good ones: fewer than the limit, so it stays. */
static int
send_survivor_lines(int fd)
{
	static const char lines[] = "mid m1 1\n"
				    "k\n"
				    "x y \\x4\n"
				    "mid m2 1\n";

	return itest_send_all(fd, lines, sizeof(lines) - 1);
}

static size_t
put_oversized_frame(char *p, size_t body)
{
	p[0] = (char)(body >> 24);
	p[1] = (char)(body >> 16);
	p[2] = (char)(body >> 8);
	p[3] = (char)body;
	memset(p + 4, 0x01, body);
	return 4 + body;
}

/*
 * Two oversized frames (each stepped over by its length field), a good
 * event, a frame of length 0 (the stream cannot be resynchronised: the
 * connection ends) and an event that must never be taken.
 *
 * The first oversized body is 5 receive buffers long (sluiced's buffers
 * are 4096 bytes), so that its end falls on a buffer boundary when the
 * bytes arrive together: the case where a skip that started at the
 * header instead of after it came out four bytes short.
 */
static int
send_bad_frames(int fd)
{
	size_t aligned = 5 * 4096, odd = 3 * FRAME_MAX_DERIVED + 1, n = 0;
	char *buf = malloc(aligned + odd + 256);
	int r;

	if (!buf)
		return -ENOMEM;
	n += put_oversized_frame(buf + n, aligned);
	n += put_oversized_frame(buf + n, odd);
	n += put_frame_event(buf + n, "fr", "f1", "1");
	memset(buf + n, 0, 4);
	n += 4;
	n += put_frame_event(buf + n, "after", "f2", "1");
	r = itest_send_all(fd, buf, n);
	free(buf);
	return r == -ECONNRESET || r == -EPIPE ? 0 : r;
}

static void
expect_metric(struct itest_daemon *d, const char *series, uint64_t want)
{
	uint64_t v = UINT64_MAX;
	int r = itest_metric(d, series, &v);

	if (r || v != want)
		fail_msg("%s: %llu (read: %d), expected %llu", series,
			 (unsigned long long)v, r, (unsigned long long)want);
}

static void
test_sluiced_input_bad_input(void **state)
{
	struct fixture *f = *state;
	const unsigned nkeys = 2000;
	const uint32_t versions = ITEST_SCALE(50, 10);
	uint64_t good_events = (uint64_t)nkeys * versions;
	char yaml[1024], lines_addr[64], frames_addr[64];
	struct itest_sink_counts n;
	int status = 0;

	assert_int_equal(itest_sink_open(&f->sink, "set", nkeys, versions), 0);
	snprintf(yaml, sizeof(yaml),
		 "runtime:\n  procs: 2\n"
		 "limits:\n"
		 "  payload_max: %d\n"
		 "  max_malformed: %d\n"
		 "inputs:\n"
		 "  - {name: tcp, type: tcp, addr: \"127.0.0.1:0\"}\n"
		 "  - {name: fr, type: tcp, addr: \"127.0.0.1:0\", "
		 "format: frames}\n"
		 "routes:\n"
		 "  - name: all\n"
		 "    default: true\n"
		 "    sink: {type: tcp, addr: \"%s\", conns: 2, "
		 "timeout: 60s}\n" ITEST_ADMIN_YAML,
		 PAYLOAD_MAX, MAX_MALFORMED, f->sink.addr);
	itest_daemon_watch(&f->d, &f->sink);
	assert_int_equal(itest_daemon_start(&f->d, yaml), 0);
	assert_int_equal(itest_daemon_addr(&f->d, "tcp", lines_addr,
					   sizeof(lines_addr)), 0);
	assert_int_equal(itest_daemon_addr(&f->d, "fr", frames_addr,
					   sizeof(frames_addr)), 0);

	for (unsigned i = 0; i < GOOD; i++) {
		f->good[i] = (struct itest_load){
			.fd = itest_connect(lines_addr), .kind = "set",
			.first = i, .step = GOOD, .nkeys = nkeys,
			.from = 1, .to = versions};
		assert_true(f->good[i].fd >= 0);
		itest_load_start(&f->good[i]);
	}

	/* The bad producers, while the good ones send. */
	f->bad = itest_connect(lines_addr);
	f->survivor = itest_connect(lines_addr);
	f->frames = itest_connect(frames_addr);
	assert_true(f->bad >= 0 && f->survivor >= 0 && f->frames >= 0);
	assert_int_equal(send_bad_lines(f->bad), 0);
	assert_int_equal(send_survivor_lines(f->survivor), 0);
	assert_int_equal(send_bad_frames(f->frames), 0);
	assert_true(itest_wait_peer_close(f->bad, ITEST_WAIT_MS));
	assert_true(itest_wait_peer_close(f->frames, ITEST_WAIT_MS));

	/* The survivor's event after its bad lines arrives; the connection
	 * is still open, so the close that follows is ours, answered. */
	assert_true(itest_sink_wait_kind(&f->sink, "mid", 2, ITEST_WAIT_MS));
	assert_int_equal(shutdown(f->survivor, SHUT_WR), 0);
	assert_true(itest_wait_peer_close(f->survivor, ITEST_WAIT_MS));

	for (unsigned i = 0; i < GOOD; i++)
		assert_int_equal(itest_load_join(&f->good[i]), 0);
	if (!itest_sink_wait_finals(&f->sink, ITEST_WAIT_MS)) {
		itest_daemon_dump_log(&f->d);
		fail_msg("the good producers' final versions did not arrive");
	}
	assert_true(itest_metric_wait(&f->d,
				      "sluice_input_events_total{input=\"tcp\"}",
				      good_events + 4, ITEST_WAIT_MS));

	/* Every bad item counted once, under its input and its reason. */
	expect_metric(&f->d, "sluice_input_events_total{input=\"tcp\"}",
		      good_events + 4);
	expect_metric(&f->d, "sluice_input_malformed_total{input=\"tcp\"}", 4);
	expect_metric(&f->d, "sluice_input_oversized_total{input=\"tcp\"}", 2);
	expect_metric(&f->d, "sluice_input_closed_bad_total{input=\"tcp\"}", 1);
	expect_metric(&f->d, "sluice_input_events_total{input=\"fr\"}", 1);
	expect_metric(&f->d, "sluice_input_malformed_total{input=\"fr\"}", 1);
	expect_metric(&f->d, "sluice_input_oversized_total{input=\"fr\"}", 2);
	expect_metric(&f->d, "sluice_input_closed_bad_total{input=\"fr\"}", 1);
	expect_metric(&f->d, "sluice_events_malformed_total", 9);
	expect_metric(&f->d, "sluice_events_ingested_total", good_events + 5);
	assert_true(itest_log_count(&f->d, "msg=\"bad input skipped\"") > 0);
	assert_true(itest_log_count(&f->d, "too much bad input") > 0);

	/* Still up: drain, exit 0, and only then count what arrived, so
	 * that "never" means never. */
	itest_daemon_signal(&f->d, SIGTERM);
	assert_true(itest_daemon_wait_exit(&f->d, ITEST_WAIT_MS, &status));
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_true(itest_sink_wait_closed(&f->sink, ITEST_WAIT_MS));
	assert_int_equal(itest_sink_kind_lines(&f->sink, "pre"), 2);
	assert_int_equal(itest_sink_kind_lines(&f->sink, "mid"), 2);
	assert_int_equal(itest_sink_kind_lines(&f->sink, "fr"), 1);
	assert_int_equal(itest_sink_kind_lines(&f->sink, "after"), 0);
	n = itest_sink_counts(&f->sink);
	assert_int_equal(n.regressions, 0);
	assert_int_equal(n.bad_lines, 0);
	assert_false(itest_daemon_sanitizer_report(&f->d));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sluiced_input_bad_input,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
