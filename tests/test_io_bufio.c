/* SPDX-License-Identifier: MIT */
/*
 * Tests of the buffered reader and writer on TCP connections.
 *
 * The reader must hand out a line or frame that lies within one receive
 * buffer as a view into that buffer, and gather one that spans buffers
 * into its own; it must stop at its limit, tell the end of the stream at a
 * boundary from one inside a line or frame, and read length-prefixed
 * frames of any size.  The writer must deliver many small writes intact
 * and in order, send a write larger than its buffer without buffering it,
 * flush a lone small write by itself when asked to, and keep returning
 * the first send error.
 *
 * Receive buffers are 4096 bytes (the default), so a line longer than that
 * always spans buffers; shorter ones are made to span by sending them in
 * pieces, each sent only once the previous one has been received.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include <cmocka.h>

#include "core/context.h"
#include "core/task.h"
#include "io/bufio.h"
#include "io/conn_internal.h"
#include "io/net.h"

#include "harness.h"

/*
 * Multishot receive and accept on rings of provided buffers, which every
 * socket here uses, came in Linux 6.0 (docs/io.md).  On an older kernel
 * every case is skipped, and the reason said once.
 */
static bool
kernel_has_multishot(char *why, size_t len)
{
	struct utsname u;
	int major = 0, minor = 0;

	if (uname(&u) || sscanf(u.release, "%d.%d", &major, &minor) != 2)
		return true;	/* unknown: let the cases say */
	if (major >= 6)
		return true;
	snprintf(why, len, "Linux %s lacks multishot receive (6.0)",
		 u.release);
	return false;
}

#define RECV_BUF 4096

/* For results that are negative errno values: prints both messages. */
#define assert_err(got, want)                                                  \
	do {                                                                   \
		long long got_ = (long long)(got);                             \
		long long want_ = (long long)(want);                           \
		if (got_ != want_)                                             \
			fail_msg("%s: %lld (%s), expected %lld (%s)", #got,    \
				 got_, sl_strerror((int)got_), want_,          \
				 sl_strerror((int)want_));                     \
	} while (0)

static uint64_t
mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* The byte at @pos of stream @seed; never a newline. */
static char
text_byte(uint64_t seed, uint64_t pos)
{
	uint64_t z = mix64(seed * 0x9e3779b97f4a7c15ull + (pos >> 3));

	return (char)('!' + (unsigned char)(z >> ((pos & 7) * 8)) % 90);
}

static void
text_fill(char *p, size_t n, uint64_t seed, uint64_t pos)
{
	for (size_t i = 0; i < n; i++)
		p[i] = text_byte(seed, pos + i);
}

static bool
text_matches(const char *p, size_t n, uint64_t seed, uint64_t pos)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != text_byte(seed, pos + i))
			return false;
	return true;
}

/* ---- connections ---- */

struct pair {
	struct sl_listener *l;
	struct sl_conn *a;	/* the connecting end: the writer */
	struct sl_conn *b;	/* the accepted end: the reader */
};

static bool
pair_open(struct pair *p)
{
	struct sl_addr addr;
	char s[64];

	memset(p, 0, sizeof(*p));
	CHECK_ERR_EQ(sl_listen("127.0.0.1:0", NULL, &p->l), 0);
	if (!p->l)
		return false;
	sl_listener_addr(p->l, &addr);
	CHECK_ERR_EQ(sl_connect(NULL, sl_addr_format(&addr, s, sizeof(s)),
				NULL, &p->a),
		     0);
	if (!p->a)
		return false;
	CHECK_ERR_EQ(sl_listener_accept(NULL, p->l, &p->b), 0);
	return p->b != NULL;
}

static void
pair_close(struct pair *p)
{
	sl_conn_close(p->a);
	sl_conn_close(p->b);
	sl_listener_close(p->l);
}

static void
send_all(struct sl_conn *c, const void *buf, size_t len)
{
	CHECK_INT_EQ(sl_conn_send(NULL, c, buf, len), (ssize_t)len);
}

static struct sl_task *
spawn_pinned(sl_task_fn fn, void *arg, int proc)
{
	struct sl_task_opts o = {.proc = proc, .pinned = true};
	struct sl_task *t = NULL;

	CHECK_ERR_EQ(sl_task_spawn(fn, arg, &o, &t), 0);
	return t;
}

/* Whether @p..@p+@n lies in the receive buffer the reader holds now. */
static bool
in_current_buffer(const struct sl_conn *c, const char *p, size_t n)
{
	const char *base;

	if (!c->has_cur)
		return false;
	base = sl__io_buf_addr(c->cur.ip, c->cur.bid) + c->cur.off;
	return p >= base && p + n <= base + c->cur.len;
}

static bool
in_acc(const struct sl_reader *r, const char *p)
{
	return r->acc && p >= r->acc && p < r->acc + r->acc_cap;
}

/* ---- lines within one buffer are views ---- */

struct view_test {
	ssize_t n[4];
	bool view[3];
	bool same_buffer;
	bool text_ok[3];
};

static void
view_main(void *arg)
{
	static const char *const lines[] = {"alpha\n", "beta\n", "gamma\n"};
	struct view_test *t = arg;
	const char *p[3] = {NULL, NULL, NULL}, *end;
	struct sl_reader r;
	struct pair pr;

	if (!pair_open(&pr))
		return;
	send_all(pr.a, "alpha\nbeta\ngamma\n", 17);
	CHECK_ERR_EQ(sl_conn_shutdown(NULL, pr.a, SHUT_WR), 0);

	sl_reader_init(&r, pr.b, 1024);
	for (int i = 0; i < 3; i++) {
		t->n[i] = sl_reader_line(NULL, &r, '\n', &p[i]);
		if (t->n[i] <= 0)
			break;
		t->view[i] = in_current_buffer(pr.b, p[i], (size_t)t->n[i]) &&
			     !in_acc(&r, p[i]);
		t->text_ok[i] = (size_t)t->n[i] == strlen(lines[i]) &&
				memcmp(p[i], lines[i], (size_t)t->n[i]) == 0;
	}
	/* One send of 17 bytes arrives in one buffer: the views follow
	 * each other in it. */
	t->same_buffer = t->n[0] > 0 && t->n[1] > 0 && t->n[2] > 0 &&
			 p[1] == p[0] + 6 && p[2] == p[1] + 5;
	t->n[3] = sl_reader_line(NULL, &r, '\n', &end);
	sl_reader_fini(&r);
	pair_close(&pr);
}

static void
test_bufio_line_within_buffer_is_a_view(void **state)
{
	struct view_test t;

	(void)state;
	memset(&t, 0, sizeof(t));
	harness_run(2, view_main, &t);
	for (int i = 0; i < 3; i++) {
		assert_true(t.text_ok[i]);
		assert_true(t.view[i]);
	}
	assert_true(t.same_buffer);
	assert_err(t.n[3], 0);
}

/* ---- lines taken without waiting ---- */

struct try_test {
	ssize_t first, second, partial, rest, end_try, end;
	bool second_follows, rest_ok;
	ssize_t long_try, long_line;
};

static void
try_main(void *arg)
{
	struct try_test *t = arg;
	const char *p0 = NULL, *p1 = NULL, *p = NULL;
	struct sl_reader r;
	struct pair pr;

	if (!pair_open(&pr))
		return;
	send_all(pr.a, "alpha\nbeta\ngam", 14);

	sl_reader_init(&r, pr.b, 1024);
	t->first = sl_reader_line(NULL, &r, '\n', &p0);
	t->second = sl_reader_try_line(&r, '\n', &p1);
	t->second_follows = t->first == 6 && t->second == 5 &&
			    p1 == p0 + 6 && memcmp(p1, "beta\n", 5) == 0;
	/* "gam" has no delimiter yet: nothing is taken. */
	t->partial = sl_reader_try_line(&r, '\n', &p);

	send_all(pr.a, "ma\n", 3);
	CHECK_ERR_EQ(sl_conn_shutdown(NULL, pr.a, SHUT_WR), 0);
	t->rest = sl_reader_line(NULL, &r, '\n', &p);
	t->rest_ok = t->rest == 6 && memcmp(p, "gamma\n", 6) == 0;
	t->end_try = sl_reader_try_line(&r, '\n', &p);
	t->end = sl_reader_line(NULL, &r, '\n', &p);
	sl_reader_fini(&r);
	pair_close(&pr);

	/* A line over the limit is left for sl_reader_line() to report. */
	if (!pair_open(&pr))
		return;
	send_all(pr.a, "ok\ntoo long\n", 12);
	sl_reader_init(&r, pr.b, 4);
	if (sl_reader_line(NULL, &r, '\n', &p) == 3) {
		t->long_try = sl_reader_try_line(&r, '\n', &p);
		t->long_line = sl_reader_line(NULL, &r, '\n', &p);
	}
	sl_reader_fini(&r);
	pair_close(&pr);
}

static void
test_bufio_try_line_never_waits(void **state)
{
	struct try_test t;

	(void)state;
	memset(&t, 0, sizeof(t));
	harness_run(2, try_main, &t);
	assert_true(t.second_follows);
	assert_err(t.partial, 0);
	assert_true(t.rest_ok);
	assert_err(t.end_try, 0);
	assert_err(t.end, 0);
	assert_err(t.long_try, 0);
	assert_err(t.long_line, -EMSGSIZE);
}

/* ---- lines across buffers are gathered ---- */

/*
 * The writer sends a line in three pieces, each only after the reader's
 * connection has taken the previous one in, so each lands in a buffer of
 * its own while the reader waits inside sl_reader_line().
 */
struct pieces_test {
	struct pair pr;
	ssize_t n, n_end;
	bool in_acc, text_ok;
	uint64_t items;
};

static void
wait_items(const struct sl_conn *c, uint64_t n)
{
	while (atomic_load(&c->rx.st.items) < n)
		sl_task_yield();
}

static void
pieces_writer(void *arg)
{
	static const char *const pieces[] = {"hel", "lo wor", "ld\n"};
	struct pieces_test *t = arg;
	uint64_t base = atomic_load(&t->pr.b->rx.st.items);

	for (int i = 0; i < 3; i++) {
		send_all(t->pr.a, pieces[i], strlen(pieces[i]));
		wait_items(t->pr.b, base + (uint64_t)i + 1);
	}
	CHECK_ERR_EQ(sl_conn_shutdown(NULL, t->pr.a, SHUT_WR), 0);
}

static void
pieces_reader(void *arg)
{
	struct pieces_test *t = arg;
	struct sl_reader r;
	const char *p = NULL;

	sl_reader_init(&r, t->pr.b, 1024);
	t->n = sl_reader_line(NULL, &r, '\n', &p);
	if (t->n == 12) {
		t->in_acc = p == r.acc;
		t->text_ok = memcmp(p, "hello world\n", 12) == 0;
	}
	t->n_end = sl_reader_line(NULL, &r, '\n', &p);
	t->items = atomic_load(&t->pr.b->rx.st.items);
	sl_reader_fini(&r);
}

static void
pieces_main(void *arg)
{
	struct pieces_test *t = arg;
	struct sl_task *reader, *writer;

	if (!pair_open(&t->pr))
		return;
	/* Pinned apart: the writer's waiting must not hold up the reader's
	 * processor, where the receive completes. */
	reader = spawn_pinned(pieces_reader, t, 0);
	writer = spawn_pinned(pieces_writer, t, 1);
	harness_join(writer);
	harness_join(reader);
	pair_close(&t->pr);
}

static void
test_bufio_line_in_pieces_is_gathered(void **state)
{
	struct pieces_test t;

	(void)state;
	memset(&t, 0, sizeof(t));
	harness_run(2, pieces_main, &t);
	assert_int_equal(t.n, 12);
	assert_true(t.text_ok);
	assert_true(t.in_acc);
	assert_true(t.items >= 3);
	assert_err(t.n_end, 0);
}

/*
 * Lines of random length, up to five receive buffers long, sent in
 * chunks that ignore line boundaries.  Every line must come back whole;
 * one that fits a buffer may come as a view, one that spans must come
 * from the reader's own buffer.
 */
#define LONG_LINES HARNESS_SCALE(3000, 600)
#define LONG_MAX_LEN (5 * RECV_BUF)

static size_t
long_line_len(uint64_t i)
{
	uint64_t z = mix64(i + 77);

	/* Half short, half up to five buffers; the newline included. */
	return 1 + (size_t)(z & 1 ? (z >> 1) % 80 : (z >> 1) % LONG_MAX_LEN);
}

struct long_test {
	struct pair pr;
	uint64_t lines, views, gathered, bad, long_views;
	ssize_t last;
};

static void
long_writer(void *arg)
{
	struct long_test *t = arg;
	char *buf = malloc(64 * 1024);
	size_t len = 0;
	uint64_t rng = 5;

	CHECK(buf != NULL);
	if (!buf)
		return;
	for (uint64_t i = 0; i < LONG_LINES; i++) {
		size_t n = long_line_len(i);

		if (len + n > 64 * 1024) {
			size_t cut = 1 + harness_random(&rng) % len;

			send_all(t->pr.a, buf, cut);
			memmove(buf, buf + cut, len - cut);
			len -= cut;
		}
		if (len + n > 64 * 1024) {
			send_all(t->pr.a, buf, len);
			len = 0;
		}
		text_fill(buf + len, n - 1, i, 0);
		buf[len + n - 1] = '\n';
		len += n;
	}
	send_all(t->pr.a, buf, len);
	CHECK_ERR_EQ(sl_conn_shutdown(NULL, t->pr.a, SHUT_WR), 0);
	free(buf);
}

static void
long_main(void *arg)
{
	struct long_test *t = arg;
	struct sl_reader r;
	struct sl_task *writer;
	const char *p;
	ssize_t n;

	if (!pair_open(&t->pr))
		return;
	writer = harness_spawn(long_writer, t, 1);
	sl_reader_init(&r, t->pr.b, LONG_MAX_LEN);
	while ((n = sl_reader_line(NULL, &r, '\n', &p)) > 0) {
		size_t want = long_line_len(t->lines);

		if ((size_t)n != want || p[n - 1] != '\n' ||
		    !text_matches(p, (size_t)n - 1, t->lines, 0))
			t->bad++;
		if (p == r.acc) {
			t->gathered++;
		} else if (in_current_buffer(t->pr.b, p, (size_t)n)) {
			t->views++;
			t->long_views += (size_t)n > RECV_BUF;
		} else {
			t->bad++;
		}
		t->lines++;
	}
	t->last = n;
	harness_join(writer);
	sl_reader_fini(&r);
	pair_close(&t->pr);
}

static void
test_bufio_long_lines_span_buffers(void **state)
{
	struct long_test t;

	(void)state;
	memset(&t, 0, sizeof(t));
	harness_run(2, long_main, &t);
	assert_err(t.last, 0);
	assert_int_equal(t.lines, LONG_LINES);
	assert_int_equal(t.bad, 0);
	assert_int_equal(t.long_views, 0);
	print_message("%llu views, %llu gathered\n",
		      (unsigned long long)t.views,
		      (unsigned long long)t.gathered);
	assert_true(t.views > 0);
	assert_true(t.gathered > 0);
}

/* ---- limits ---- */

/*
 * A line of exactly the limit passes and one byte more fails, both within
 * one buffer and across buffers; so does a stretch with no newline at all,
 * at once rather than after waiting for more.  The context's deadline is
 * only there to turn a reader that waits into a failure.
 */
#define LIMIT_SPAN 6000
#define LIMIT_WAIT_NS (10 * SL_NSEC_PER_SEC)

struct limit_test {
	ssize_t small_ok, small_over;
	ssize_t span_ok, span_over;
	bool span_ok_gathered;
	ssize_t endless;
	ssize_t exact_over, exact_zero;
};

static ssize_t
limit_case(size_t max, const char *data, size_t len, size_t first,
	   ssize_t *second, bool *gathered)
{
	struct sl_context *ctx = NULL;
	struct sl_reader r;
	struct pair pr;
	const char *p = NULL;
	ssize_t n = -1;

	if (!pair_open(&pr))
		return n;
	CHECK_ERR_EQ(sl_context_with_timeout(sl_context_background(),
					     LIMIT_WAIT_NS, &ctx),
		     0);
	send_all(pr.a, data, len);
	sl_reader_init(&r, pr.b, max);
	if (first) {
		n = sl_reader_line(ctx, &r, '\n', &p);
		if (gathered)
			*gathered = p == r.acc;
		if (n != (ssize_t)first || memcmp(p, data, first) != 0)
			n = -1;
	}
	*second = sl_reader_line(ctx, &r, '\n', &p);
	sl_reader_fini(&r);
	sl_context_release(ctx);
	pair_close(&pr);
	return n;
}

static void
limit_main(void *arg)
{
	struct limit_test *t = arg;
	char *data = malloc(2 * LIMIT_SPAN + 2);
	struct sl_reader r;
	struct pair pr;
	const char *p;

	CHECK(data != NULL);
	if (!data)
		return;

	/* 100 and 101 bytes, newline included, with a limit of 100. */
	memset(data, 'x', 201);
	data[99] = '\n';
	data[200] = '\n';
	t->small_ok = limit_case(100, data, 201, 100, &t->small_over, NULL);

	memset(data, 'y', 2 * LIMIT_SPAN + 1);
	data[LIMIT_SPAN - 1] = '\n';
	data[2 * LIMIT_SPAN] = '\n';
	t->span_ok = limit_case(LIMIT_SPAN, data, 2 * LIMIT_SPAN + 1,
				LIMIT_SPAN, &t->span_over,
				&t->span_ok_gathered);

	/* More than the limit with no newline, and the stream stays open. */
	memset(data, 'z', LIMIT_SPAN + 1000);
	limit_case(LIMIT_SPAN, data, LIMIT_SPAN + 1000, 0, &t->endless, NULL);

	if (pair_open(&pr)) {
		sl_reader_init(&r, pr.b, 100);
		t->exact_over = sl_reader_exact(NULL, &r, 101, &p);
		t->exact_zero = sl_reader_exact(NULL, &r, 0, &p);
		sl_reader_fini(&r);
		pair_close(&pr);
	}
	free(data);
}

static void
test_bufio_limit_is_exact(void **state)
{
	struct limit_test t;

	(void)state;
	memset(&t, 0, sizeof(t));
	harness_run(2, limit_main, &t);
	assert_int_equal(t.small_ok, 100);
	assert_err(t.small_over, -EMSGSIZE);
	assert_int_equal(t.span_ok, LIMIT_SPAN);
	assert_true(t.span_ok_gathered);
	assert_err(t.span_over, -EMSGSIZE);
	assert_err(t.endless, -EMSGSIZE);
	assert_err(t.exact_over, -EMSGSIZE);
	assert_err(t.exact_zero, -EINVAL);
}

/* ---- the end of the stream ---- */

struct eof_test {
	ssize_t boundary[3];
	ssize_t inside[2];
	ssize_t inside_long;
	ssize_t exact_short[2];
	ssize_t exact_boundary[2];
};

/* Send @data, shut the writing side, and read up to @n results. */
static void
eof_case(const char *data, size_t len, const size_t *exact, ssize_t *out,
	 int n)
{
	struct sl_reader r;
	struct pair pr;
	const char *p;

	if (!pair_open(&pr))
		return;
	send_all(pr.a, data, len);
	CHECK_ERR_EQ(sl_conn_shutdown(NULL, pr.a, SHUT_WR), 0);
	sl_reader_init(&r, pr.b, 8192);
	for (int i = 0; i < n; i++)
		out[i] = exact ? sl_reader_exact(NULL, &r, exact[i], &p)
			       : sl_reader_line(NULL, &r, '\n', &p);
	sl_reader_fini(&r);
	pair_close(&pr);
}

static void
eof_main(void *arg)
{
	static const size_t short_frame[] = {4, 100};
	static const size_t whole_frames[] = {8, 4};
	struct eof_test *t = arg;
	char *data = malloc(5000);

	CHECK(data != NULL);
	if (!data)
		return;
	eof_case("abc\n", 4, NULL, t->boundary, 3);
	eof_case("abc\ndef", 7, NULL, t->inside, 2);

	/* A partial line longer than one buffer, gathered when it ends. */
	memset(data, 'q', 5000);
	eof_case(data, 5000, NULL, &t->inside_long, 1);

	/* A frame that promises 100 bytes and brings 46, and frames that
	 * end with the stream. */
	memcpy(data, "\0\0\0\144", 4);
	eof_case(data, 50, short_frame, t->exact_short, 2);
	eof_case("12345678", 8, whole_frames, t->exact_boundary, 2);
	free(data);
}

static void
test_bufio_end_of_stream(void **state)
{
	struct eof_test t;

	(void)state;
	memset(&t, 0, sizeof(t));
	harness_run(2, eof_main, &t);
	assert_int_equal(t.boundary[0], 4);
	assert_err(t.boundary[1], 0);
	assert_err(t.boundary[2], 0);
	assert_int_equal(t.inside[0], 4);
	assert_err(t.inside[1], -EPIPE);
	assert_err(t.inside_long, -EPIPE);
	assert_int_equal(t.exact_short[0], 4);
	assert_err(t.exact_short[1], -EPIPE);
	assert_int_equal(t.exact_boundary[0], 8);
	assert_err(t.exact_boundary[1], 0);
}

/* ---- length-prefixed frames ---- */

#define FRAMES HARNESS_SCALE(4000, 800)
#define FRAME_MAX 20000

static uint32_t
frame_len(uint64_t i)
{
	uint64_t z = mix64(i + 1234);

	return 1 + (uint32_t)(z & 1 ? (z >> 1) % 64 : (z >> 1) % FRAME_MAX);
}

struct frames_test {
	struct pair pr;
	uint64_t frames, views, gathered, bad;
	ssize_t last;
	int writer_fini;
};

/* Frames through a writer, in pieces that ignore frame boundaries. */
static void
frames_writer(void *arg)
{
	struct frames_test *t = arg;
	char *frame = malloc(4 + FRAME_MAX);
	struct sl_writer w;
	uint64_t rng = 9;

	CHECK(frame != NULL);
	CHECK_ERR_EQ(sl_writer_init(&w, t->pr.a, RECV_BUF, 0), 0);
	if (!frame)
		return;
	for (uint64_t i = 0; i < FRAMES; i++) {
		uint32_t len = frame_len(i);
		size_t at = 0;

		frame[0] = (char)(len >> 24);
		frame[1] = (char)(len >> 16);
		frame[2] = (char)(len >> 8);
		frame[3] = (char)len;
		text_fill(frame + 4, len, i, 0);
		while (at < 4 + len) {
			size_t piece = 1 + harness_random(&rng) % 700;

			if (piece > 4 + len - at)
				piece = 4 + len - at;
			CHECK_ERR_EQ(sl_writer_write(NULL, &w, frame + at,
						     piece),
				     0);
			at += piece;
		}
	}
	t->writer_fini = sl_writer_fini(&w);
	CHECK_ERR_EQ(sl_conn_shutdown(NULL, t->pr.a, SHUT_WR), 0);
	free(frame);
}

static void
frames_main(void *arg)
{
	struct frames_test *t = arg;
	struct sl_task *writer;
	struct sl_reader r;
	const char *p;
	ssize_t n;

	if (!pair_open(&t->pr))
		return;
	writer = harness_spawn(frames_writer, t, 1);
	sl_reader_init(&r, t->pr.b, FRAME_MAX);
	while ((n = sl_reader_exact(NULL, &r, 4, &p)) == 4) {
		const unsigned char *h = (const unsigned char *)p;
		uint32_t len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 |
			       (uint32_t)h[2] << 8 | h[3];

		if (len != frame_len(t->frames)) {
			t->bad++;
			break;
		}
		n = sl_reader_exact(NULL, &r, len, &p);
		if (n != (ssize_t)len || !text_matches(p, len, t->frames, 0))
			t->bad++;
		if (p == r.acc)
			t->gathered++;
		else if (in_current_buffer(t->pr.b, p, len))
			t->views++;
		else
			t->bad++;
		t->frames++;
	}
	t->last = n;
	harness_join(writer);
	sl_reader_fini(&r);
	pair_close(&t->pr);
}

static void
test_bufio_exact_frames(void **state)
{
	struct frames_test t;

	(void)state;
	memset(&t, 0, sizeof(t));
	harness_run(2, frames_main, &t);
	assert_err(t.writer_fini, 0);
	assert_err(t.last, 0);
	assert_int_equal(t.bad, 0);
	assert_int_equal(t.frames, FRAMES);
	print_message("%llu views, %llu gathered\n",
		      (unsigned long long)t.views,
		      (unsigned long long)t.gathered);
	assert_true(t.views > 0);
	assert_true(t.gathered > 0);
}

/* ---- the writer ---- */

/* Reads @c to its end, checking it against stream @seed. */
struct stream_check {
	struct sl_conn *c;
	uint64_t seed;
	uint64_t got;
	uint64_t bad_at;
	bool bad;
	ssize_t last;
};

static void
stream_reader(void *arg)
{
	struct stream_check *s = arg;
	char *buf = malloc(65536);
	ssize_t n;

	CHECK(buf != NULL);
	if (!buf)
		return;
	while ((n = sl_conn_recv(NULL, s->c, buf, 65536)) > 0) {
		if (!s->bad && !text_matches(buf, (size_t)n, s->seed, s->got)) {
			s->bad = true;
			s->bad_at = s->got;
		}
		s->got += (uint64_t)n;
	}
	s->last = n;
	free(buf);
}

#define SMALL_WRITES HARNESS_SCALE(200000, 40000)

struct small_test {
	struct stream_check check;
	uint64_t sent;
	int fini;
};

static void
small_main(void *arg)
{
	struct small_test *t = arg;
	struct sl_task *reader;
	struct sl_writer w;
	struct pair pr;
	char piece[64];
	uint64_t rng = 3;

	if (!pair_open(&pr))
		return;
	t->check = (struct stream_check){.c = pr.b, .seed = 11};
	reader = harness_spawn(stream_reader, &t->check, 1);
	CHECK_ERR_EQ(sl_writer_init(&w, pr.a, RECV_BUF, 0), 0);
	for (int i = 0; i < SMALL_WRITES; i++) {
		size_t n = 1 + harness_random(&rng) % sizeof(piece);

		text_fill(piece, n, 11, t->sent);
		CHECK_ERR_EQ(sl_writer_write(NULL, &w, piece, n), 0);
		t->sent += n;
	}
	t->fini = sl_writer_fini(&w);
	CHECK_ERR_EQ(sl_conn_shutdown(NULL, pr.a, SHUT_WR), 0);
	harness_join(reader);
	pair_close(&pr);
}

static void
test_bufio_writer_small_writes_in_order(void **state)
{
	struct small_test t;

	(void)state;
	memset(&t, 0, sizeof(t));
	harness_run(2, small_main, &t);
	assert_err(t.fini, 0);
	if (t.check.bad)
		fail_msg("wrong bytes from stream offset %llu",
			 (unsigned long long)t.check.bad_at);
	assert_err(t.check.last, 0);
	assert_int_equal(t.check.got, t.sent);
}

/*
 * A write at least as large as the buffer goes out from the caller's
 * memory, after what was buffered before it: the buffer is empty after.
 */
struct direct_test {
	struct stream_check check;
	size_t len_after[4];
	uint64_t sent;
	int fini;
};

static void
direct_main(void *arg)
{
	static const size_t sizes[] = {100, 100000, RECV_BUF, 10};
	struct direct_test *t = arg;
	char *buf = malloc(100000);
	struct sl_task *reader;
	struct sl_writer w;
	struct pair pr;

	CHECK(buf != NULL);
	if (!buf || !pair_open(&pr))
		return;
	t->check = (struct stream_check){.c = pr.b, .seed = 12};
	reader = harness_spawn(stream_reader, &t->check, 1);
	CHECK_ERR_EQ(sl_writer_init(&w, pr.a, RECV_BUF, 0), 0);
	for (int i = 0; i < 4; i++) {
		text_fill(buf, sizes[i], 12, t->sent);
		CHECK_ERR_EQ(sl_writer_write(NULL, &w, buf, sizes[i]), 0);
		t->len_after[i] = w.len;
		t->sent += sizes[i];
	}
	t->fini = sl_writer_fini(&w);
	CHECK_ERR_EQ(sl_conn_shutdown(NULL, pr.a, SHUT_WR), 0);
	harness_join(reader);
	pair_close(&pr);
	free(buf);
}

static void
test_bufio_writer_large_write_direct(void **state)
{
	struct direct_test t;

	(void)state;
	memset(&t, 0, sizeof(t));
	harness_run(2, direct_main, &t);
	assert_int_equal(t.len_after[0], 100);
	assert_int_equal(t.len_after[1], 0);
	assert_int_equal(t.len_after[2], 0);
	assert_int_equal(t.len_after[3], 10);
	assert_err(t.fini, 0);
	assert_false(t.check.bad);
	assert_int_equal(t.check.got, t.sent);
	assert_int_equal(t.sent, 100 + 100000 + RECV_BUF + 10);
}

/*
 * With flush_after_ns, a lone small write reaches the peer with no flush
 * from the caller; twice, so the flusher also goes back to waiting.  The
 * peer's deadline only turns a write that never comes into a failure.
 */
#define FLUSH_AFTER_NS (2 * SL_NSEC_PER_MSEC)
#define FLUSH_WAIT_NS (10 * SL_NSEC_PER_SEC)

struct flush_test {
	struct pair pr;
	int init;
	ssize_t got[2];
	char text[2][8];
	int fini;
};

struct flush_peer {
	struct flush_test *t;
	int round;
};

static void
flush_peer(void *arg)
{
	struct flush_peer *fp = arg;
	struct flush_test *t = fp->t;
	struct sl_context *ctx = NULL;
	size_t have = 0;

	CHECK_ERR_EQ(sl_context_with_timeout(sl_context_background(),
					     FLUSH_WAIT_NS, &ctx),
		     0);
	while (ctx && have < 5) {
		ssize_t n = sl_conn_recv(ctx, t->pr.b,
					 t->text[fp->round] + have, 5 - have);

		if (n <= 0) {
			t->got[fp->round] = n;
			break;
		}
		have += (size_t)n;
		t->got[fp->round] = (ssize_t)have;
	}
	sl_context_release(ctx);
}

static void
flush_main(void *arg)
{
	static const char *const words[] = {"ping\n", "pong\n"};
	struct flush_test *t = arg;
	struct sl_writer w;

	if (!pair_open(&t->pr))
		return;
	t->init = sl_writer_init(&w, t->pr.a, RECV_BUF, FLUSH_AFTER_NS);
	if (t->init == 0) {
		for (int i = 0; i < 2; i++) {
			struct flush_peer fp = {.t = t, .round = i};
			struct sl_task *peer;

			peer = harness_spawn(flush_peer, &fp, 1);
			CHECK_ERR_EQ(sl_writer_write(NULL, &w, words[i], 5),
				     0);
			harness_join(peer);
		}
		t->fini = sl_writer_fini(&w);
	}
	pair_close(&t->pr);
}

static void
test_bufio_writer_flushes_after_delay(void **state)
{
	struct flush_test t;

	(void)state;
	memset(&t, 0, sizeof(t));
	harness_run(2, flush_main, &t);
	assert_err(t.init, 0);
	assert_int_equal(t.got[0], 5);
	assert_memory_equal(t.text[0], "ping\n", 5);
	assert_int_equal(t.got[1], 5);
	assert_memory_equal(t.text[1], "pong\n", 5);
	assert_err(t.fini, 0);
}

/*
 * Once a send has failed (the peer closed), every later call returns that
 * first error, and so does the final flush.
 */
#define STICKY_TRIES 10000

struct sticky_test {
	int first;
	int tries;
	int later_write, later_flush, fini;
};

static void
sticky_main(void *arg)
{
	struct sticky_test *t = arg;
	char *chunk = calloc(1, 65536);
	struct sl_writer w;
	struct pair pr;

	CHECK(chunk != NULL);
	if (!chunk || !pair_open(&pr))
		return;
	sl_conn_close(pr.b);
	pr.b = NULL;
	CHECK_ERR_EQ(sl_writer_init(&w, pr.a, RECV_BUF, 0), 0);

	/* The first sends may still be taken; the peer's reset ends that. */
	while (t->first == 0 && t->tries < STICKY_TRIES) {
		t->first = sl_writer_write(NULL, &w, chunk, 65536);
		t->tries++;
	}
	t->later_write = sl_writer_write(NULL, &w, "x", 1);
	t->later_flush = sl_writer_flush(NULL, &w);
	t->fini = sl_writer_fini(&w);
	pair_close(&pr);
	free(chunk);
}

static void
test_bufio_writer_error_is_sticky(void **state)
{
	struct sticky_test t;

	(void)state;
	memset(&t, 0, sizeof(t));
	harness_run(2, sticky_main, &t);
	if (t.first != -EPIPE && t.first != -ECONNRESET)
		fail_msg("first error %d (%s) after %d writes", t.first,
			 sl_strerror(t.first), t.tries);
	assert_err(t.later_write, t.first);
	assert_err(t.later_flush, t.first);
	assert_err(t.fini, t.first);
}

int
main(int argc, char **argv)
{
	char why[128];

	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bufio_line_within_buffer_is_a_view),
		cmocka_unit_test(test_bufio_try_line_never_waits),
		cmocka_unit_test(test_bufio_line_in_pieces_is_gathered),
		cmocka_unit_test(test_bufio_long_lines_span_buffers),
		cmocka_unit_test(test_bufio_limit_is_exact),
		cmocka_unit_test(test_bufio_end_of_stream),
		cmocka_unit_test(test_bufio_exact_frames),
		cmocka_unit_test(test_bufio_writer_small_writes_in_order),
		cmocka_unit_test(test_bufio_writer_large_write_direct),
		cmocka_unit_test(test_bufio_writer_flushes_after_delay),
		cmocka_unit_test(test_bufio_writer_error_is_sticky),
	};

	harness_init();
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	if (!kernel_has_multishot(why, sizeof(why))) {
		print_message("%s: every case skipped\n", why);
		cmocka_set_skip_filter("*");
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
