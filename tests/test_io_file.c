/* SPDX-License-Identifier: MIT */
/*
 * Tests of files and the append log.
 *
 * Files: reads and writes at offsets and at the file position (the end,
 * with O_APPEND), vectors longer than the array kept on the stack, writes
 * the kernel takes in pieces, syncs, and errors as negative errno values.
 *
 * The log: many writers on two processors, with every record found exactly
 * once at the offset its append reported; group commit seen in the count of
 * batches; the batch caps; one failed sync failing every append of its
 * batch and every append after it; a context that ended before the append.
 *
 * The files live in a fresh directory under /tmp, removed at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/chan.h"
#include "core/context.h"
#include "core/task.h"
#include "io/file.h"
#include "io/io_internal.h"

#include "harness.h"

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

static char test_dir[] = "/tmp/sluice-file-XXXXXX";

static void
test_path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", test_dir, name);
}

static uint64_t
mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/*
 * The byte at @pos of stream @seed.  It depends on the position, so a lost,
 * repeated or misplaced stretch of bytes does not match.
 */
static unsigned char
pattern_byte(uint64_t seed, uint64_t pos)
{
	uint64_t z = mix64(seed * 0x9e3779b97f4a7c15ull + (pos >> 3));

	return (unsigned char)(z >> ((pos & 7) * 8));
}

static void
pattern_fill(unsigned char *p, size_t n, uint64_t seed, uint64_t pos)
{
	for (size_t i = 0; i < n; i++)
		p[i] = pattern_byte(seed, pos + i);
}

/* Where @p first differs from the stream at @pos, or @n if nowhere. */
static size_t
pattern_mismatch(const unsigned char *p, size_t n, uint64_t seed,
		 uint64_t pos)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != pattern_byte(seed, pos + i))
			return i;
	return n;
}

static struct sl_context *
ended_context(bool expired)
{
	struct sl_context *ctx = NULL;

	if (expired)
		CHECK_ERR_EQ(sl_context_with_deadline(sl_context_background(),
						      sl_now_ns() - 1, &ctx),
			     0);
	else
		CHECK_ERR_EQ(sl_context_with_cancel(sl_context_background(),
						    &ctx),
			     0);
	if (ctx && !expired)
		sl_context_cancel(ctx);
	return ctx;
}

/* The whole of a file, read from the test thread after a run. */
static unsigned char *
slurp(const char *path, size_t *len)
{
	struct stat st;
	unsigned char *buf;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		assert_true(n > 0);
		got += (size_t)n;
	}
	close(fd);
	*len = got;
	return buf;
}

/* ---- errors ---- */

struct errors_test {
	int open_missing;
	int open_missing_dir;
	int open_excl;
	ssize_t read_wronly;
	ssize_t write_rdonly;
	int close_ok;
	ssize_t read_closed;
	ssize_t write_closed;
	int sync_closed;
	int close_twice;
	ssize_t read_minus_one;
	int sync_pipe;
	ssize_t writev_negative;
	ssize_t writev_too_many;
};

static void
errors_main(void *arg)
{
	struct errors_test *t = arg;
	char path[PATH_MAX], buf[16] = "0123456789";
	struct iovec iov = {.iov_base = buf, .iov_len = 4};
	int fd, pfd[2];

	test_path(path, sizeof(path), "missing");
	t->open_missing = sl_file_open(NULL, path, O_RDONLY, 0);
	test_path(path, sizeof(path), "no-such-dir/file");
	t->open_missing_dir =
		sl_file_open(NULL, path, O_WRONLY | O_CREAT, 0644);

	test_path(path, sizeof(path), "errors");
	fd = sl_file_open(NULL, path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	t->open_excl =
		sl_file_open(NULL, path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	t->read_wronly = sl_file_read(NULL, fd, buf, sizeof(buf), 0);
	t->close_ok = sl_file_close(fd);

	/* Nothing else in this run opens descriptors, so the number stays
	 * free between the close and the calls below. */
	t->read_closed = sl_file_read(NULL, fd, buf, sizeof(buf), 0);
	t->write_closed = sl_file_write(NULL, fd, buf, 4, 0);
	t->sync_closed = sl_file_sync(NULL, fd, false);
	t->close_twice = sl_file_close(fd);
	t->read_minus_one = sl_file_read(NULL, -1, buf, sizeof(buf), 0);

	fd = sl_file_open(NULL, path, O_RDONLY, 0);
	CHECK(fd >= 0);
	t->write_rdonly = sl_file_write(NULL, fd, buf, 4, 0);
	t->writev_negative = sl_file_writev(NULL, fd, &iov, -1, 0);
	t->writev_too_many = sl_file_writev(NULL, fd, &iov, IOV_MAX + 1, 0);
	CHECK_ERR_EQ(sl_file_close(fd), 0);

	CHECK_ERR_EQ(pipe2(pfd, O_CLOEXEC), 0);
	t->sync_pipe = sl_file_sync(NULL, pfd[1], true);
	close(pfd[0]);
	close(pfd[1]);
}

static void
test_file_errors_are_negative_errno(void **state)
{
	struct errors_test t;

	(void)state;
	memset(&t, 0, sizeof(t));
	harness_run(1, errors_main, &t);
	assert_err(t.open_missing, -ENOENT);
	assert_err(t.open_missing_dir, -ENOENT);
	assert_err(t.open_excl, -EEXIST);
	assert_err(t.read_wronly, -EBADF);
	assert_err(t.write_rdonly, -EBADF);
	assert_err(t.close_ok, 0);
	assert_err(t.read_closed, -EBADF);
	assert_err(t.write_closed, -EBADF);
	assert_err(t.sync_closed, -EBADF);
	assert_err(t.close_twice, -EBADF);
	assert_err(t.read_minus_one, -EBADF);
	assert_err(t.writev_negative, -EINVAL);
	assert_err(t.writev_too_many, -EINVAL);
	assert_err(t.sync_pipe, -EINVAL);
}

/* ---- contexts that ended before the call ---- */

struct ended_test {
	int open_cancelled;
	bool created;
	ssize_t write_cancelled;
	ssize_t read_cancelled;
	int sync_cancelled;
	ssize_t write_expired;
	ssize_t read_expired;
	off_t pos_after;
	off_t size_after;
};

static void
ended_main(void *arg)
{
	struct ended_test *t = arg;
	struct sl_context *cancelled = ended_context(false);
	struct sl_context *expired = ended_context(true);
	char path[PATH_MAX], buf[8] = "abcdefg";
	struct stat st;
	int fd;

	if (!cancelled || !expired)
		return;
	test_path(path, sizeof(path), "ended");
	t->open_cancelled = sl_file_open(cancelled, path,
					 O_RDWR | O_CREAT | O_EXCL, 0644);
	t->created = stat(path, &st) == 0;

	fd = sl_file_open(NULL, path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	CHECK_INT_EQ(sl_file_write(NULL, fd, buf, 7, 0), 7);
	t->write_cancelled = sl_file_write(cancelled, fd, "XYZ", 3, 7);
	t->read_cancelled = sl_file_read(cancelled, fd, buf, 4, -1);
	t->sync_cancelled = sl_file_sync(cancelled, fd, true);
	t->write_expired = sl_file_write(expired, fd, "XYZ", 3, -1);
	t->read_expired = sl_file_read(expired, fd, buf, 4, -1);

	/* Neither read moved the position, neither write the size. */
	t->pos_after = lseek(fd, 0, SEEK_CUR);
	CHECK_ERR_EQ(fstat(fd, &st), 0);
	t->size_after = st.st_size;
	CHECK_ERR_EQ(sl_file_close(fd), 0);
	sl_context_release(cancelled);
	sl_context_release(expired);
}

static void
test_file_ended_context_does_nothing(void **state)
{
	struct ended_test t;

	(void)state;
	memset(&t, 0, sizeof(t));
	harness_run(1, ended_main, &t);
	assert_err(t.open_cancelled, -ECANCELED);
	assert_false(t.created);
	assert_err(t.write_cancelled, -ECANCELED);
	assert_err(t.read_cancelled, -ECANCELED);
	assert_err(t.sync_cancelled, -ECANCELED);
	assert_err(t.write_expired, -ETIMEDOUT);
	assert_err(t.read_expired, -ETIMEDOUT);
	assert_int_equal(t.pos_after, 0);
	assert_int_equal(t.size_after, 7);
}

/* ---- offsets ---- */

#define OFFSETS_LEN 20000
#define OFFSETS_IOVS 100	/* more than the 64 kept on the stack */

struct offsets_test {
	unsigned char data[OFFSETS_LEN];
	unsigned char back[OFFSETS_LEN];
	ssize_t w_tail, w_head, r_all, r_end, r_at_end, r_far;
	ssize_t w_far, r_hole;
	bool hole_zero;
	ssize_t v_ret, v_back;
	size_t v_total;
	size_t v_mismatch;
	ssize_t v_none;
	off_t size;
};

static void
offsets_vectors(struct offsets_test *t, int fd)
{
	struct iovec iov[OFFSETS_IOVS];
	size_t at = 0;

	/* Pieces of 0 to 199 bytes: some empty, which the write skips. */
	for (int i = 0; i < OFFSETS_IOVS; i++) {
		size_t len = (size_t)(i * 37) % 200;

		iov[i].iov_base = t->data + at;
		iov[i].iov_len = len;
		at += len;
	}
	t->v_total = at;
	t->v_ret = sl_file_writev(NULL, fd, iov, OFFSETS_IOVS, 40000);
	memset(t->back, 0, sizeof(t->back));
	t->v_back = sl_file_read(NULL, fd, t->back, at, 40000);
	t->v_mismatch = pattern_mismatch(t->back, at, 1, 0);
	t->v_none = sl_file_writev(NULL, fd, iov, 0, 50000);
}

static void
offsets_main(void *arg)
{
	struct offsets_test *t = arg;
	char path[PATH_MAX];
	struct stat st;
	int fd;

	pattern_fill(t->data, OFFSETS_LEN, 1, 0);
	test_path(path, sizeof(path), "offsets");
	fd = sl_file_open(NULL, path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	if (fd < 0)
		return;

	/* The second part first, so the first write lands before it. */
	t->w_tail = sl_file_write(NULL, fd, t->data + 5000,
				  OFFSETS_LEN - 5000, 5000);
	t->w_head = sl_file_write(NULL, fd, t->data, 5000, 0);
	t->r_all = sl_file_read(NULL, fd, t->back, OFFSETS_LEN, 0);
	t->r_end = sl_file_read(NULL, fd, t->back, 100, OFFSETS_LEN - 10);
	t->r_at_end = sl_file_read(NULL, fd, t->back, 100, OFFSETS_LEN);
	t->r_far = sl_file_read(NULL, fd, t->back, 100, 1ll << 30);

	/* A write past the end leaves a hole that reads as zeros. */
	t->w_far = sl_file_write(NULL, fd, "tail", 4, 30000);
	memset(t->back, 0xff, sizeof(t->back));
	t->r_hole = sl_file_read(NULL, fd, t->back, 10000, OFFSETS_LEN);
	t->hole_zero = true;
	for (size_t i = 0; i < 10000; i++)
		t->hole_zero &= t->back[i] == 0;

	offsets_vectors(t, fd);
	CHECK_ERR_EQ(fstat(fd, &st), 0);
	t->size = st.st_size;
	CHECK_ERR_EQ(sl_file_close(fd), 0);
}

static void
test_file_read_write_at_offsets(void **state)
{
	struct offsets_test *t = calloc(1, sizeof(*t));
	char path[PATH_MAX];
	unsigned char *file;
	size_t len;

	(void)state;
	assert_non_null(t);
	harness_run(2, offsets_main, t);
	assert_int_equal(t->w_tail, OFFSETS_LEN - 5000);
	assert_int_equal(t->w_head, 5000);
	assert_int_equal(t->r_end, 10);
	assert_int_equal(t->r_at_end, 0);
	assert_int_equal(t->r_far, 0);
	assert_int_equal(t->w_far, 4);
	assert_int_equal(t->r_hole, 10000);
	assert_true(t->hole_zero);
	assert_int_equal(t->v_ret, t->v_total);
	assert_int_equal(t->v_back, t->v_total);
	assert_int_equal(t->v_mismatch, t->v_total);
	assert_int_equal(t->v_none, 0);
	assert_int_equal(t->size, 40000 + t->v_total);

	/* The bytes on disk, read without the runtime. */
	test_path(path, sizeof(path), "offsets");
	file = slurp(path, &len);
	assert_int_equal(len, t->size);
	assert_int_equal(t->r_all, OFFSETS_LEN);
	assert_memory_equal(file, t->data, OFFSETS_LEN);
	assert_memory_equal(file + 30000, "tail", 4);
	assert_memory_equal(file + 40000, t->data, t->v_total);
	free(file);
	free(t);
}

/* ---- the file position and O_APPEND ---- */

struct position_test {
	ssize_t w1, w2, wv;
	off_t pos_after_writes;
	ssize_t r1, r2, r3;
	char got1[8], got2[32];
	ssize_t pwrite_ret;
	off_t pos_after_pwrite;
	ssize_t app1, app2;
};

static void
position_main(void *arg)
{
	struct position_test *t = arg;
	struct iovec iov[2] = {
		{.iov_base = (void *)(uintptr_t) "three", .iov_len = 5},
		{.iov_base = (void *)(uintptr_t) "four", .iov_len = 4},
	};
	char path[PATH_MAX];
	int fd, afd;

	test_path(path, sizeof(path), "position");
	fd = sl_file_open(NULL, path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	t->w1 = sl_file_write(NULL, fd, "one", 3, -1);
	t->w2 = sl_file_write(NULL, fd, "two", 3, -1);
	t->wv = sl_file_writev(NULL, fd, iov, 2, -1);
	t->pos_after_writes = lseek(fd, 0, SEEK_CUR);

	/* Reads at the position take consecutive pieces, then the end. */
	CHECK_INT_EQ(lseek(fd, 0, SEEK_SET), 0);
	t->r1 = sl_file_read(NULL, fd, t->got1, 5, -1);
	t->r2 = sl_file_read(NULL, fd, t->got2, sizeof(t->got2), -1);
	t->r3 = sl_file_read(NULL, fd, t->got2, sizeof(t->got2), -1);

	/* With O_APPEND the position is the end, wherever others wrote. */
	afd = sl_file_open(NULL, path, O_WRONLY | O_APPEND, 0);
	CHECK(afd >= 0);
	t->app1 = sl_file_write(NULL, afd, "APP", 3, -1);
	t->pwrite_ret = sl_file_write(NULL, fd, "XY", 2, 0);
	t->pos_after_pwrite = lseek(fd, 0, SEEK_CUR);
	t->app2 = sl_file_write(NULL, afd, "END", 3, -1);
	CHECK_ERR_EQ(sl_file_close(afd), 0);
	CHECK_ERR_EQ(sl_file_close(fd), 0);
}

static void
test_file_position_and_append(void **state)
{
	struct position_test t;
	char path[PATH_MAX];
	unsigned char *file;
	size_t len;

	(void)state;
	memset(&t, 0, sizeof(t));
	harness_run(1, position_main, &t);
	assert_int_equal(t.w1, 3);
	assert_int_equal(t.w2, 3);
	assert_int_equal(t.wv, 9);
	assert_int_equal(t.pos_after_writes, 15);
	assert_int_equal(t.r1, 5);
	assert_memory_equal(t.got1, "onetw", 5);
	assert_int_equal(t.r2, 10);
	assert_memory_equal(t.got2, "othreefour", 10);
	assert_int_equal(t.r3, 0);
	assert_int_equal(t.app1, 3);
	assert_int_equal(t.pwrite_ret, 2);
	/* A write at an offset leaves the position where it was. */
	assert_int_equal(t.pos_after_pwrite, 15);
	assert_int_equal(t.app2, 3);

	test_path(path, sizeof(path), "position");
	file = slurp(path, &len);
	assert_int_equal(len, 21);
	assert_memory_equal(file, "XYetwothreefourAPPEND", 21);
	free(file);
}

/* ---- large writes, continued after short ones ---- */

#define PIPE_WRITE_LEN HARNESS_SCALE(4u << 20, 1u << 20)
#define PIPE_IOVS 300

struct pipe_test {
	int rfd, wfd;
	unsigned char *src;
	size_t v_total;
	ssize_t write_ret, writev_ret;
	uint64_t got;
	uint64_t reads;
	size_t bad_at;
	bool mismatch;
	int last_read;
};

/* Reads the pipe in pieces of random size, checking every byte. */
static void
pipe_reader(void *arg)
{
	struct pipe_test *t = arg;
	unsigned char *buf = malloc(65536);
	uint64_t rng = 42;

	CHECK(buf != NULL);
	if (!buf)
		return;
	for (;;) {
		size_t want = 1 + harness_random(&rng) % 65536;
		ssize_t n = sl_file_read(NULL, t->rfd, buf, want, -1);
		size_t at;

		t->reads++;
		if (n <= 0) {
			t->last_read = (int)n;
			break;
		}
		at = pattern_mismatch(buf, (size_t)n, 2, t->got);
		if (at != (size_t)n && !t->mismatch) {
			t->mismatch = true;
			t->bad_at = t->got + at;
		}
		t->got += (uint64_t)n;
	}
	free(buf);
}

static void
pipe_main(void *arg)
{
	struct pipe_test *t = arg;
	struct iovec *iov = calloc(PIPE_IOVS, sizeof(*iov));
	size_t at = PIPE_WRITE_LEN;
	struct sl_task *reader;
	int pfd[2];

	CHECK(iov != NULL);
	CHECK_ERR_EQ(pipe2(pfd, O_CLOEXEC), 0);
	if (!iov)
		return;
	t->rfd = pfd[0];
	t->wfd = pfd[1];
	reader = harness_spawn(pipe_reader, t, 1);

	/* A pipe takes at most its capacity per request, so both calls are
	 * served in many pieces that the reader must see in order. */
	t->write_ret = sl_file_write(NULL, t->wfd, t->src, PIPE_WRITE_LEN, -1);
	for (int i = 0; i < PIPE_IOVS; i++) {
		size_t len = (size_t)(i % 7 == 3 ? 0 : 1 + (i * 7919) % 12000);

		iov[i].iov_base = t->src + at;
		iov[i].iov_len = len;
		at += len;
	}
	t->v_total = at - PIPE_WRITE_LEN;
	t->writev_ret = sl_file_writev(NULL, t->wfd, iov, PIPE_IOVS, -1);
	CHECK_ERR_EQ(sl_file_close(t->wfd), 0);
	harness_join(reader);
	CHECK_ERR_EQ(sl_file_close(t->rfd), 0);
	free(iov);
}

static void
test_file_pipe_writes_continue_short_ones(void **state)
{
	struct pipe_test t;
	size_t cap = PIPE_WRITE_LEN + PIPE_IOVS * 12000;

	(void)state;
	memset(&t, 0, sizeof(t));
	t.src = malloc(cap);
	assert_non_null(t.src);
	pattern_fill(t.src, cap, 2, 0);
	harness_run(2, pipe_main, &t);
	assert_int_equal(t.write_ret, PIPE_WRITE_LEN);
	assert_int_equal(t.writev_ret, t.v_total);
	if (t.mismatch)
		fail_msg("the reader saw a wrong byte at %zu", t.bad_at);
	assert_int_equal(t.got, PIPE_WRITE_LEN + t.v_total);
	assert_int_equal(t.last_read, 0);
	free(t.src);
}

/*
 * A file size limit makes the kernel write only up to the limit: the first
 * request comes back short, and the continuation must then meet -EFBIG.  A
 * write that stopped at the short count would report success.
 */
#define FSIZE_LIMIT (1u << 20)
#define FSIZE_WRITE (FSIZE_LIMIT + FSIZE_LIMIT / 2)

struct fsize_test {
	unsigned char *src;
	ssize_t ret;
	ssize_t small_ret;
};

static void
fsize_main(void *arg)
{
	struct fsize_test *t = arg;
	char path[PATH_MAX];
	int fd;

	test_path(path, sizeof(path), "fsize");
	fd = sl_file_open(NULL, path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	t->ret = sl_file_write(NULL, fd, t->src, FSIZE_WRITE, 0);
	t->small_ret = sl_file_write(NULL, fd, t->src, 100, 0);
	CHECK_ERR_EQ(sl_file_close(fd), 0);
}

static void
test_file_short_write_is_continued(void **state)
{
	struct fsize_test t = {0};
	struct rlimit old, lim;
	struct sigaction ign = {.sa_handler = SIG_IGN}, old_sa;
	char path[PATH_MAX];
	unsigned char *file;
	size_t len;

	(void)state;
	t.src = malloc(FSIZE_WRITE);
	assert_non_null(t.src);
	pattern_fill(t.src, FSIZE_WRITE, 3, 0);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	if (old.rlim_max != RLIM_INFINITY && old.rlim_max < FSIZE_LIMIT)
		skip();
	lim = old;
	lim.rlim_cur = FSIZE_LIMIT;
	assert_int_equal(sigaction(SIGXFSZ, &ign, &old_sa), 0);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	harness_run(1, fsize_main, &t);
	setrlimit(RLIMIT_FSIZE, &old);
	sigaction(SIGXFSZ, &old_sa, NULL);

	assert_err(t.ret, -EFBIG);
	assert_int_equal(t.small_ret, 100);
	test_path(path, sizeof(path), "fsize");
	file = slurp(path, &len);
	assert_int_equal(len, FSIZE_LIMIT);
	assert_memory_equal(file, t.src, FSIZE_LIMIT);
	free(file);
	free(t.src);
}

/* A write of many megabytes to a regular file, read back whole. */
#define BIG_LEN HARNESS_SCALE(24u << 20, 6u << 20)

struct big_test {
	unsigned char *src, *back;
	ssize_t w, r;
	int sync_full, sync_data;
};

static void
big_main(void *arg)
{
	struct big_test *t = arg;
	char path[PATH_MAX];
	int fd;

	test_path(path, sizeof(path), "big");
	fd = sl_file_open(NULL, path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	t->w = sl_file_write(NULL, fd, t->src, BIG_LEN, 4096);
	t->sync_full = sl_file_sync(NULL, fd, false);
	t->sync_data = sl_file_sync(NULL, fd, true);
	t->r = 0;
	while ((size_t)t->r < BIG_LEN) {
		ssize_t n = sl_file_read(NULL, fd, t->back + t->r,
					 BIG_LEN - (size_t)t->r, 4096 + t->r);

		if (n <= 0) {
			CHECK_INT_EQ(n, 1);
			break;
		}
		t->r += n;
	}
	CHECK_ERR_EQ(sl_file_close(fd), 0);
}

static void
test_file_large_write_and_sync(void **state)
{
	struct big_test t = {0};

	(void)state;
	t.src = malloc(BIG_LEN);
	t.back = malloc(BIG_LEN);
	assert_non_null(t.src);
	assert_non_null(t.back);
	pattern_fill(t.src, BIG_LEN, 4, 0);
	harness_run(2, big_main, &t);
	assert_int_equal(t.w, BIG_LEN);
	assert_err(t.sync_full, 0);
	assert_err(t.sync_data, 0);
	assert_int_equal(t.r, BIG_LEN);
	assert_memory_equal(t.back, t.src, BIG_LEN);
	free(t.src);
	free(t.back);
}

/* The injected failure stands for the next sync only. */
struct inject_test {
	int first, second;
};

static void
inject_main(void *arg)
{
	struct inject_test *t = arg;
	char path[PATH_MAX];
	int fd;

	test_path(path, sizeof(path), "inject");
	fd = sl_file_open(NULL, path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	CHECK_INT_EQ(sl_file_write(NULL, fd, "x", 1, 0), 1);
	sl__io_inject_sync_failure(-EIO, 1);
	t->first = sl_file_sync(NULL, fd, true);
	t->second = sl_file_sync(NULL, fd, true);
	CHECK_ERR_EQ(sl_file_close(fd), 0);
}

static void
test_file_injected_sync_failure_once(void **state)
{
	struct inject_test t = {0};

	(void)state;
	harness_run(1, inject_main, &t);
	assert_err(t.first, -EIO);
	assert_err(t.second, 0);
}

/*
 * A task that yields in a loop must not hold up the requests of the other
 * tasks on its processor: a yield is a schedule point, where queued
 * requests go to the kernel and completions are reaped.  The time limit
 * only ends the test if that never happens.
 */
#define YIELD_LIMIT_NS (5 * SL_NSEC_PER_SEC)

struct yield_test {
	int fd;
	_Atomic bool synced;
	int sync_ret;
	bool gave_up;
	uint64_t yields;
};

static void
yield_syncer(void *arg)
{
	struct yield_test *t = arg;

	t->sync_ret = sl_file_sync(NULL, t->fd, true);
	atomic_store(&t->synced, true);
}

static void
yield_main(void *arg)
{
	struct yield_test *t = arg;
	char path[PATH_MAX];
	struct sl_task *syncer;
	uint64_t limit;

	test_path(path, sizeof(path), "yield");
	t->fd = sl_file_open(NULL, path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(t->fd >= 0);
	CHECK_INT_EQ(sl_file_write(NULL, t->fd, "x", 1, 0), 1);
	syncer = harness_spawn(yield_syncer, t, -1);
	limit = sl_now_ns() + YIELD_LIMIT_NS;
	while (!atomic_load(&t->synced)) {
		if (sl_now_ns() > limit) {
			t->gave_up = true;
			break;
		}
		sl_task_yield();
		t->yields++;
	}
	harness_join(syncer);
	CHECK_ERR_EQ(sl_file_close(t->fd), 0);
}

static void
test_file_request_completes_while_caller_yields(void **state)
{
	struct yield_test t;

	(void)state;
	memset(&t, 0, sizeof(t));
	harness_run(1, yield_main, &t);
	if (t.gave_up)
		fail_msg("the sync did not complete in %llu yields over 5 s",
			 (unsigned long long)t.yields);
	assert_err(t.sync_ret, 0);
}

/* ---- the append log ---- */

/*
 * A record: a 16-byte header naming its writer, its number and its length,
 * then a payload of 0 to 240 bytes from the pattern of (writer, number).
 */
#define REC_MAGIC 0x534c4f47u
#define REC_HEADER 16
#define REC_MAX (REC_HEADER + 240)

struct rec {
	uint64_t offset;
	uint32_t len;
	int result;
};

static uint64_t
rec_seed(uint32_t writer, uint32_t seq)
{
	return ((uint64_t)writer << 32 | seq) + 1000;
}

static uint32_t
rec_len(uint32_t writer, uint32_t seq, uint32_t fixed)
{
	if (fixed)
		return fixed;
	return REC_HEADER + (uint32_t)(mix64(rec_seed(writer, seq)) % 241);
}

static void
rec_build(unsigned char *buf, uint32_t writer, uint32_t seq, uint32_t len)
{
	uint32_t h[4] = {REC_MAGIC, writer, seq, len};

	memcpy(buf, h, sizeof(h));
	pattern_fill(buf + REC_HEADER, len - REC_HEADER, rec_seed(writer, seq),
		     0);
}

struct log_run {
	struct sl_log *log;
	struct sl_log_opts opts;
	char path[PATH_MAX];
	unsigned writers;
	unsigned records;	/* per writer */
	uint32_t fixed_len;	/* 0: lengths vary */
	struct rec *recs;	/* writers * records */
	struct sl_log_stats st;
	int open_ret, close_ret;
};

struct log_writer {
	struct log_run *run;
	uint32_t id;
};

/* Appends its records in order, every other one as two pieces. */
static void
log_writer(void *arg)
{
	struct log_writer *w = arg;
	struct log_run *run = w->run;
	unsigned char *buf = malloc(run->fixed_len ? run->fixed_len : REC_MAX);

	CHECK(buf != NULL);
	if (!buf)
		return;
	for (uint32_t s = 0; s < run->records; s++) {
		struct rec *r = &run->recs[w->id * run->records + s];
		uint32_t len = rec_len(w->id, s, run->fixed_len);

		rec_build(buf, w->id, s, len);
		r->len = len;
		if (s % 2) {
			struct iovec iov[2] = {
				{.iov_base = buf, .iov_len = REC_HEADER},
				{.iov_base = buf + REC_HEADER,
				 .iov_len = len - REC_HEADER},
			};

			r->result = sl_log_appendv(NULL, run->log, iov, 2,
						   &r->offset);
		} else {
			r->result = sl_log_append(NULL, run->log, buf, len,
						  &r->offset);
		}
		CHECK_ERR_EQ(r->result, 0);
	}
	free(buf);
}

static void
log_run_main(void *arg)
{
	struct log_run *run = arg;
	struct log_writer *w = calloc(run->writers, sizeof(*w));
	struct sl_task **tasks = calloc(run->writers, sizeof(*tasks));

	CHECK(w != NULL && tasks != NULL);
	run->open_ret = sl_log_open(NULL, run->path, &run->opts, &run->log);
	if (run->open_ret || !w || !tasks)
		goto out;
	for (unsigned i = 0; i < run->writers; i++) {
		w[i] = (struct log_writer){.run = run, .id = i};
		tasks[i] = harness_spawn(log_writer, &w[i], (int)(i % 2));
	}
	for (unsigned i = 0; i < run->writers; i++)
		harness_join(tasks[i]);
	sl_log_stats_get(run->log, &run->st);
	run->close_ret = sl_log_close(run->log);
out:
	free(w);
	free(tasks);
}

static int
rec_by_offset(const void *a, const void *b)
{
	const struct rec *x = *(const struct rec *const *)a;
	const struct rec *y = *(const struct rec *const *)b;

	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/*
 * From the test thread: the successful records tile [0, @size) exactly,
 * in some order, and each holds its own bytes at the offset it was told.
 */
static void
log_verify(struct log_run *run, uint64_t size)
{
	size_t n = (size_t)run->writers * run->records, ok = 0, len;
	const struct rec **sorted = calloc(n, sizeof(*sorted));
	unsigned char *file = slurp(run->path, &len);
	unsigned char want[REC_MAX > 4096 ? REC_MAX : 4096];
	uint64_t end = 0;

	assert_non_null(sorted);
	assert_true(len >= size);
	for (size_t i = 0; i < n; i++)
		if (run->recs[i].result == 0)
			sorted[ok++] = &run->recs[i];
	qsort(sorted, ok, sizeof(*sorted), rec_by_offset);
	for (size_t i = 0; i < ok; i++) {
		const struct rec *r = sorted[i];
		size_t idx = (size_t)(r - run->recs);
		uint32_t writer = (uint32_t)(idx / run->records);
		uint32_t seq = (uint32_t)(idx % run->records);

		if (r->offset != end)
			fail_msg("record %u/%u at %llu, expected at %llu",
				 writer, seq, (unsigned long long)r->offset,
				 (unsigned long long)end);
		assert_true(r->len <= sizeof(want));
		rec_build(want, writer, seq, r->len);
		assert_memory_equal(file + r->offset, want, r->len);
		end += r->len;
	}
	assert_int_equal(end, size);
	free(sorted);
	free(file);
}

static struct log_run *
log_run_new(const char *name, unsigned writers, unsigned records)
{
	struct log_run *run = calloc(1, sizeof(*run));

	assert_non_null(run);
	run->writers = writers;
	run->records = records;
	run->recs = calloc((size_t)writers * records, sizeof(*run->recs));
	assert_non_null(run->recs);
	for (size_t i = 0; i < (size_t)writers * records; i++)
		run->recs[i].result = 1;	/* never appended */
	test_path(run->path, sizeof(run->path), name);
	unlink(run->path);
	return run;
}

static void
log_run_free(struct log_run *run)
{
	free(run->recs);
	free(run);
}

#define LOG_WRITERS HARNESS_SCALE(32, 16)
#define LOG_RECORDS HARNESS_SCALE(2000, 300)

static void
test_log_concurrent_writers_group_commit(void **state)
{
	struct log_run *run = log_run_new("log-many", LOG_WRITERS,
					  LOG_RECORDS);
	uint64_t total = (uint64_t)LOG_WRITERS * LOG_RECORDS;

	(void)state;
	harness_run(2, log_run_main, run);
	assert_err(run->open_ret, 0);
	assert_err(run->close_ret, 0);
	assert_err(run->st.error, 0);
	assert_int_equal(run->st.records, total);
	assert_int_equal(run->st.bytes, run->st.size);
	log_verify(run, run->st.size);

	/* Group commit: writers that came during a sync shared the next. */
	print_message("%llu records in %llu batches\n",
		      (unsigned long long)run->st.records,
		      (unsigned long long)run->st.batches);
	assert_true(run->st.batches < total);
	assert_true(run->st.batches >= (total + 1023) / 1024);
	log_run_free(run);
}

/* One writer alone: every append is a batch of its own.  Reopening the
 * log continues at its end. */
#define LOG_SOLO_RECORDS 200

struct reopen_test {
	struct log_run *run;
	int reopen_ret;
	uint64_t size_before;
	struct sl_log_stats st;
	uint64_t offset;
	int append_ret, close_ret;
};

static void
solo_main(void *arg)
{
	struct reopen_test *t = arg;
	struct sl_log *log = NULL;
	char extra[REC_MAX];

	log_run_main(t->run);
	t->reopen_ret = sl_log_open(NULL, t->run->path, NULL, &log);
	if (t->reopen_ret)
		return;
	sl_log_stats_get(log, &t->st);
	memset(extra, 'x', sizeof(extra));
	t->append_ret = sl_log_append(NULL, log, extra, 10, &t->offset);
	t->close_ret = sl_log_close(log);
}

static void
test_log_single_writer_batch_per_record(void **state)
{
	struct reopen_test t = {0};

	(void)state;
	t.run = log_run_new("log-solo", 1, LOG_SOLO_RECORDS);
	harness_run(2, solo_main, &t);
	assert_err(t.run->open_ret, 0);
	assert_err(t.run->close_ret, 0);
	assert_int_equal(t.run->st.records, LOG_SOLO_RECORDS);
	assert_int_equal(t.run->st.batches, LOG_SOLO_RECORDS);
	log_verify(t.run, t.run->st.size);

	assert_err(t.reopen_ret, 0);
	assert_int_equal(t.st.size, t.run->st.size);
	assert_int_equal(t.st.records, 0);
	assert_err(t.append_ret, 0);
	assert_int_equal(t.offset, t.run->st.size);
	assert_err(t.close_ret, 0);
	log_run_free(t.run);
}

/* Caps: at most 4 records, or 2 records of 1000 bytes, per batch. */
#define CAP_WRITERS 16
#define CAP_RECORDS HARNESS_SCALE(400, 100)

static void
test_log_batch_caps(void **state)
{
	struct log_run *by_count = log_run_new("log-cap-n", CAP_WRITERS,
					       CAP_RECORDS);
	struct log_run *by_bytes = log_run_new("log-cap-b", CAP_WRITERS,
					       CAP_RECORDS);
	uint64_t total = (uint64_t)CAP_WRITERS * CAP_RECORDS;

	(void)state;
	by_count->opts.data_only = true;
	by_count->opts.max_batch_records = 4;
	harness_run(2, log_run_main, by_count);
	assert_err(by_count->open_ret, 0);
	assert_int_equal(by_count->st.records, total);
	print_message("records cap 4: %llu batches for %llu records\n",
		      (unsigned long long)by_count->st.batches,
		      (unsigned long long)total);
	assert_true(by_count->st.batches >= (total + 3) / 4);
	log_verify(by_count, by_count->st.size);

	by_bytes->opts.data_only = false;
	by_bytes->opts.max_batch_bytes = 2500;
	by_bytes->fixed_len = 1000;
	harness_run(2, log_run_main, by_bytes);
	assert_err(by_bytes->open_ret, 0);
	assert_int_equal(by_bytes->st.records, total);
	print_message("bytes cap 2500: %llu batches for %llu records\n",
		      (unsigned long long)by_bytes->st.batches,
		      (unsigned long long)total);
	assert_true(by_bytes->st.batches >= (total + 1) / 2);
	assert_int_equal(by_bytes->st.size, total * 1000);
	log_verify(by_bytes, by_bytes->st.size);
	log_run_free(by_count);
	log_run_free(by_bytes);
}

/* A record larger than the byte cap still goes out, alone. */
struct oversized_test {
	int ret;
	uint64_t offset;
	struct sl_log_stats st;
};

static void
oversized_main(void *arg)
{
	struct oversized_test *t = arg;
	struct sl_log_opts opts = {.data_only = true, .max_batch_bytes = 100};
	struct sl_log *log = NULL;
	char path[PATH_MAX];
	static char big[10000];

	test_path(path, sizeof(path), "log-oversized");
	CHECK_ERR_EQ(sl_log_open(NULL, path, &opts, &log), 0);
	if (!log)
		return;
	CHECK_ERR_EQ(sl_log_append(NULL, log, "head", 4, NULL), 0);
	t->ret = sl_log_append(NULL, log, big, sizeof(big), &t->offset);
	sl_log_stats_get(log, &t->st);
	CHECK_ERR_EQ(sl_log_close(log), 0);
}

static void
test_log_record_over_byte_cap(void **state)
{
	struct oversized_test t = {0};

	(void)state;
	harness_run(1, oversized_main, &t);
	assert_err(t.ret, 0);
	assert_int_equal(t.offset, 4);
	assert_int_equal(t.st.size, 10004);
	assert_int_equal(t.st.batches, 2);
}

/* ---- a failed sync fails the log ---- */

/*
 * First with the log idle: the failure is injected, then a crowd of
 * writers appends once each.  The first batch fails its sync and every
 * later one must not even try.
 */
#define FAIL_CROWD 8

struct fail_idle_test {
	struct sl_log *log;
	char path[PATH_MAX];
	uint64_t good_offset[10];
	int crowd[FAIL_CROWD];
	int later;
	struct sl_log_stats st;
	int close_ret;
	int injections_left;
};

struct crowd_arg {
	struct fail_idle_test *t;
	int i;
};

static void
crowd_writer(void *arg)
{
	struct crowd_arg *a = arg;

	a->t->crowd[a->i] = sl_log_append(NULL, a->t->log, "crowd!", 6, NULL);
}

static void
fail_idle_main(void *arg)
{
	struct fail_idle_test *t = arg;
	struct crowd_arg args[FAIL_CROWD];
	struct sl_task *tasks[FAIL_CROWD];

	CHECK_ERR_EQ(sl_log_open(NULL, t->path, NULL, &t->log), 0);
	if (!t->log)
		return;
	for (int i = 0; i < 10; i++)
		CHECK_ERR_EQ(sl_log_append(NULL, t->log, "good-record", 11,
					   &t->good_offset[i]),
			     0);

	sl__io_inject_sync_failure(-EIO, 1);
	for (int i = 0; i < FAIL_CROWD; i++) {
		args[i] = (struct crowd_arg){.t = t, .i = i};
		tasks[i] = harness_spawn(crowd_writer, &args[i], i % 2);
	}
	for (int i = 0; i < FAIL_CROWD; i++)
		harness_join(tasks[i]);
	t->later = sl_log_append(NULL, t->log, "later", 5, NULL);
	sl_log_stats_get(t->log, &t->st);
	t->close_ret = sl_log_close(t->log);
	t->injections_left = sl__io_injected_sync_failure();
}

static void
test_log_failed_sync_fails_every_append(void **state)
{
	struct fail_idle_test t;
	unsigned char *file;
	size_t len;

	(void)state;
	memset(&t, 0, sizeof(t));
	test_path(t.path, sizeof(t.path), "log-fail-idle");
	harness_run(2, fail_idle_main, &t);
	for (int i = 0; i < FAIL_CROWD; i++)
		assert_err(t.crowd[i], -EIO);
	assert_err(t.later, -EIO);
	assert_err(t.st.error, -EIO);
	assert_int_equal(t.st.size, 110);
	assert_err(t.close_ret, -EIO);
	/* Exactly one sync was made to fail, and it was the log's. */
	assert_int_equal(t.injections_left, 0);

	for (int i = 0; i < 10; i++)
		assert_int_equal(t.good_offset[i], 11 * i);
	file = slurp(t.path, &len);
	assert_true(len >= 110);
	for (int i = 0; i < 10; i++)
		assert_memory_equal(file + 11 * i, "good-record", 11);
	free(file);
}

/*
 * Then under load: writers append in a loop until an append fails; the
 * failure is injected once some thousand records are in.  Once any
 * append has returned the error, no append that starts later may
 * succeed, and every writer must end on that error.
 */
#define LOAD_WRITERS 16
#define LOAD_MAX_RECORDS 100000

struct fail_load_test {
	struct log_run *run;
	struct sl_chan *reached;	/* closed at inject_at successes */
	_Atomic uint64_t successes;
	_Atomic bool failed_seen;
	_Atomic uint64_t ok_after_failure;
	_Atomic uint64_t other_errors;
	int last[LOAD_WRITERS];
	unsigned done[LOAD_WRITERS];
	uint64_t inject_at;
};

struct load_writer {
	struct fail_load_test *t;
	uint32_t id;
};

static void
load_writer(void *arg)
{
	struct load_writer *w = arg;
	struct fail_load_test *t = w->t;
	struct log_run *run = t->run;
	unsigned char buf[REC_MAX];

	for (uint32_t s = 0; s < run->records; s++) {
		struct rec *r = &run->recs[w->id * run->records + s];
		bool after = atomic_load(&t->failed_seen);

		r->len = rec_len(w->id, s, 0);
		rec_build(buf, w->id, s, r->len);
		r->result = sl_log_append(NULL, run->log, buf, r->len,
					  &r->offset);
		t->done[w->id] = s + 1;
		t->last[w->id] = r->result;
		if (r->result == 0) {
			if (after)
				atomic_fetch_add(&t->ok_after_failure, 1);
			if (atomic_fetch_add(&t->successes, 1) + 1 ==
			    t->inject_at)
				sl_chan_close(t->reached);
			continue;
		}
		if (r->result != -EIO)
			atomic_fetch_add(&t->other_errors, 1);
		atomic_store(&t->failed_seen, true);
		break;
	}
}

static void
fail_load_main(void *arg)
{
	struct fail_load_test *t = arg;
	struct log_run *run = t->run;
	struct load_writer w[LOAD_WRITERS];
	struct sl_task *tasks[LOAD_WRITERS];

	t->reached = sl_chan_create(0, 0);
	CHECK(t->reached != NULL);
	run->open_ret = sl_log_open(NULL, run->path, NULL, &run->log);
	if (run->open_ret || !t->reached)
		return;
	for (uint32_t i = 0; i < LOAD_WRITERS; i++) {
		w[i] = (struct load_writer){.t = t, .id = i};
		tasks[i] = harness_spawn(load_writer, &w[i], (int)(i % 2));
	}

	/* Wait for progress (not for time), then fail the next sync. */
	CHECK_ERR_EQ(sl_chan_recv(t->reached, NULL), -EPIPE);
	sl__io_inject_sync_failure(-EIO, 1);

	for (int i = 0; i < LOAD_WRITERS; i++)
		harness_join(tasks[i]);
	CHECK_ERR_EQ(sl_log_append(NULL, run->log, "x", 1, NULL), -EIO);
	sl_log_stats_get(run->log, &run->st);
	run->close_ret = sl_log_close(run->log);
	sl_chan_destroy(t->reached);
}

static void
test_log_failed_sync_under_load(void **state)
{
	struct fail_load_test t;

	(void)state;
	memset(&t, 0, sizeof(t));
	t.run = log_run_new("log-fail-load", LOAD_WRITERS, LOAD_MAX_RECORDS);
	t.inject_at = HARNESS_SCALE(3000, 500);
	harness_run(2, fail_load_main, &t);
	assert_err(t.run->open_ret, 0);
	assert_int_equal(atomic_load(&t.ok_after_failure), 0);
	assert_int_equal(atomic_load(&t.other_errors), 0);
	for (int i = 0; i < LOAD_WRITERS; i++) {
		assert_err(t.last[i], -EIO);
		assert_true(t.done[i] < LOAD_MAX_RECORDS);
	}
	assert_err(t.run->st.error, -EIO);
	assert_err(t.run->close_ret, -EIO);
	assert_true(t.run->st.size > 0);

	/* Only the records whose appends succeeded count, at their offsets,
	 * covering exactly the log's size; the failed batch's bytes may lie
	 * beyond it. */
	log_verify(t.run, t.run->st.size);
	log_run_free(t.run);
}

/* ---- an ended context appends nothing ---- */

struct log_ctx_test {
	int first, cancelled, expired, second;
	uint64_t first_off, second_off;
	struct sl_log_stats mid;
	char path[PATH_MAX];
};

static void
log_ctx_main(void *arg)
{
	struct log_ctx_test *t = arg;
	struct sl_context *cancelled = ended_context(false);
	struct sl_context *expired = ended_context(true);
	struct sl_log *log = NULL;
	uint64_t off = 0;

	CHECK_ERR_EQ(sl_log_open(NULL, t->path, NULL, &log), 0);
	if (!log || !cancelled || !expired)
		return;
	t->first = sl_log_append(NULL, log, "first", 5, &t->first_off);
	t->cancelled = sl_log_append(cancelled, log, "NOPE", 4, &off);
	t->expired = sl_log_append(expired, log, "NOPE", 4, &off);
	sl_log_stats_get(log, &t->mid);
	t->second = sl_log_append(NULL, log, "second", 6, &t->second_off);
	CHECK_ERR_EQ(sl_log_close(log), 0);
	sl_context_release(cancelled);
	sl_context_release(expired);
}

static void
test_log_ended_context_appends_nothing(void **state)
{
	struct log_ctx_test t;
	unsigned char *file;
	size_t len;

	(void)state;
	memset(&t, 0, sizeof(t));
	test_path(t.path, sizeof(t.path), "log-ctx");
	harness_run(1, log_ctx_main, &t);
	assert_err(t.first, 0);
	assert_int_equal(t.first_off, 0);
	assert_err(t.cancelled, -ECANCELED);
	assert_err(t.expired, -ETIMEDOUT);
	assert_int_equal(t.mid.records, 1);
	assert_int_equal(t.mid.size, 5);
	assert_err(t.second, 0);
	assert_int_equal(t.second_off, 5);
	file = slurp(t.path, &len);
	assert_int_equal(len, 11);
	assert_memory_equal(file, "firstsecond", 11);
	free(file);
}

/* ---- the scratch directory ---- */

static int
dir_setup(void **state)
{
	(void)state;
	return mkdtemp(test_dir) ? 0 : -1;
}

static int
remove_entry(const char *path, const struct stat *st, int flag,
	     struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int
dir_teardown(void **state)
{
	(void)state;
	return nftw(test_dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_file_errors_are_negative_errno),
		cmocka_unit_test(test_file_ended_context_does_nothing),
		cmocka_unit_test(test_file_read_write_at_offsets),
		cmocka_unit_test(test_file_position_and_append),
		cmocka_unit_test(test_file_pipe_writes_continue_short_ones),
		cmocka_unit_test(test_file_short_write_is_continued),
		cmocka_unit_test(test_file_large_write_and_sync),
		cmocka_unit_test(test_file_injected_sync_failure_once),
		cmocka_unit_test(
			test_file_request_completes_while_caller_yields),
		cmocka_unit_test(test_log_concurrent_writers_group_commit),
		cmocka_unit_test(test_log_single_writer_batch_per_record),
		cmocka_unit_test(test_log_batch_caps),
		cmocka_unit_test(test_log_record_over_byte_cap),
		cmocka_unit_test(test_log_failed_sync_fails_every_append),
		cmocka_unit_test(test_log_failed_sync_under_load),
		cmocka_unit_test(test_log_ended_context_appends_nothing),
	};

	harness_init();
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, dir_setup, dir_teardown);
}
