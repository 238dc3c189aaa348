/* SPDX-License-Identifier: MIT */
/*
 * File requests: open, read, write, sync, close.  Regular files never
 * report readiness, so these go to the kernel's workers when they would
 * block; the calling task parks meanwhile and its processor runs others.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include <mimalloc.h>

#include "io/file.h"
#include "io/io_internal.h"

int
sl_file_open(struct sl_context *ctx, const char *path, int flags, mode_t mode)
{
	struct sl__io_op op;
	struct io_uring_sqe *sqe;
	int r;

	sqe = sl__io_begin(&op, ctx, SL_NO_DEADLINE, "file open", &r);
	if (!sqe)
		return r;
	io_uring_prep_openat(sqe, AT_FDCWD, path, flags | O_CLOEXEC, mode);
	return sl__io_run(&op, sqe);
}

ssize_t
sl_file_read(struct sl_context *ctx, int fd, void *buf, size_t len,
	     int64_t off)
{
	struct sl__io_op op;
	struct io_uring_sqe *sqe;
	int r;

	if (len > INT32_MAX)
		len = INT32_MAX;
	sqe = sl__io_begin(&op, ctx, SL_NO_DEADLINE, "file read", &r);
	if (!sqe)
		return r;
	io_uring_prep_read(sqe, fd, buf, (unsigned)len, (uint64_t)off);
	return sl__io_run(&op, sqe);
}

ssize_t
sl_file_writev(struct sl_context *ctx, int fd, const struct iovec *iov,
	       int n, int64_t off)
{
	struct iovec local[64];
	struct iovec *v = local, *cur;
	size_t total = 0;
	ssize_t ret;
	int left = n;

	if (n < 0 || n > IOV_MAX)
		return -EINVAL;
	if (n > (int)SL_ARRAY_SIZE(local)) {
		v = mi_malloc((size_t)n * sizeof(*v));
		if (!v)
			return -ENOMEM;
	}
	memcpy(v, iov, (size_t)n * sizeof(*v));
	for (int i = 0; i < n; i++)
		total += iov[i].iov_len;
	ret = (ssize_t)total;

	/* Continue short writes from where the last one stopped. */
	cur = v;
	while (left > 0) {
		struct sl__io_op op;
		struct io_uring_sqe *sqe;
		int r;

		while (left > 0 && cur->iov_len == 0) {
			cur++;
			left--;
		}
		if (!left)
			break;
		sqe = sl__io_begin(&op, ctx, SL_NO_DEADLINE, "file write", &r);
		if (!sqe) {
			ret = r;
			break;
		}
		io_uring_prep_writev(sqe, fd, cur, (unsigned)left,
				     (uint64_t)off);
		r = sl__io_run(&op, sqe);
		if (r <= 0) {
			ret = r ? r : -EIO;
			break;
		}
		if (off >= 0)
			off += r;
		for (size_t done = (size_t)r; done > 0;) {
			size_t take = done < cur->iov_len ? done : cur->iov_len;

			cur->iov_base = (char *)cur->iov_base + take;
			cur->iov_len -= take;
			done -= take;
			if (cur->iov_len == 0) {
				cur++;
				left--;
			}
		}
	}
	if (v != local)
		mi_free(v);
	return ret;
}

ssize_t
sl_file_write(struct sl_context *ctx, int fd, const void *buf, size_t len,
	      int64_t off)
{
	struct iovec iov = {.iov_base = (void *)(uintptr_t)buf, .iov_len = len};

	return sl_file_writev(ctx, fd, &iov, 1, off);
}

int
sl_file_sync(struct sl_context *ctx, int fd, bool data_only)
{
	struct sl__io_op op;
	struct io_uring_sqe *sqe;
	int r = sl__io_injected_sync_failure();

	if (r)
		return r;
	sqe = sl__io_begin(&op, ctx, SL_NO_DEADLINE, "file sync", &r);
	if (!sqe)
		return r;
	io_uring_prep_fsync(sqe, fd, data_only ? IORING_FSYNC_DATASYNC : 0);
	return sl__io_run(&op, sqe);
}

int
sl_file_close(int fd)
{
	struct sl__io_op op;
	struct io_uring_sqe *sqe;
	int r;

	sqe = sl__io_begin(&op, NULL, SL_NO_DEADLINE, "file close", &r);
	if (!sqe)
		return close(fd) ? -errno : 0;
	io_uring_prep_close(sqe, fd);
	return sl__io_run(&op, sqe);
}
