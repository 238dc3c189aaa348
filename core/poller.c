/* SPDX-License-Identifier: MIT */
/*
 * The poller: each processor's io_uring, used as its idle wait.
 *
 * Ring ownership.  A ring belongs to its processor, not to a thread: when a
 * blocking call hands the processor to a spare machine, the ring goes with
 * it and is driven from a new thread.  That rules out
 * IORING_SETUP_SINGLE_ISSUER (the kernel binds the ring to the first
 * submitting thread and refuses others) and therefore DEFER_TASKRUN, which
 * requires it.  COOP_TASKRUN is left off too: with it, completion work
 * queued to a thread that is stuck in a blocking call would wait for that
 * call to end, and the processor's new machine would not see its
 * completions.  Without it the kernel interrupts the old thread briefly to
 * post them, which is what we want.  We do ask for SUBMIT_ALL (keep
 * submitting past a failed SQE) and a completion queue four times the
 * submission queue, so bursts of multishot completions do not overflow it.
 *
 * Waking an idle processor.  A processor sleeps in io_uring_enter() waiting
 * for one completion, with its earliest timer as the timeout.  Another
 * processor wakes it by posting a completion into its ring with
 * IORING_OP_MSG_RING (Linux 5.18), submitted from its own ring, with
 * IOSQE_CQE_SKIP_SUCCESS so the sender gets no completion of its own.  A
 * thread without a ring (the monitor, a thread outside the runtime) writes
 * to the processor's eventfd instead, on which a read is always pending;
 * kernels without MSG_RING use the eventfd for everything.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/sched_internal.h"

static void
poller_explain(int err, char *buf, size_t len)
{
	FILE *f;
	int disabled = -1;

	switch (-err) {
	case ENOSYS:
		snprintf(buf, len,
			 "io_uring is unavailable (ENOSYS): the kernel was "
			 "built without it or a seccomp filter hides it; run "
			 "on Linux 5.19 or later without a filter on "
			 "io_uring_setup");
		return;
	case EPERM:
	case EACCES:
		f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
		if (f) {
			if (fscanf(f, "%d", &disabled) != 1)
				disabled = -1;
			fclose(f);
		}
		if (disabled == 2)
			snprintf(buf, len,
				 "io_uring is disabled by sysctl "
				 "kernel.io_uring_disabled=2; set it to 0 "
				 "(sysctl -w kernel.io_uring_disabled=0)");
		else if (disabled == 1)
			snprintf(buf, len,
				 "io_uring is limited to the group in "
				 "kernel.io_uring_group "
				 "(kernel.io_uring_disabled=1); run as a "
				 "member of it or set the sysctl to 0");
		else
			snprintf(buf, len,
				 "io_uring is blocked by a security policy "
				 "(%s), such as a container's default seccomp "
				 "profile; allow io_uring_setup, "
				 "io_uring_enter and io_uring_register",
				 sl_strerror(err));
		return;
	case ENOMEM:
		snprintf(buf, len,
			 "io_uring could not get memory (ENOMEM): raise the "
			 "locked-memory limit (ulimit -l) or lower "
			 "ring_entries");
		return;
	default:
		snprintf(buf, len, "io_uring_setup failed: %s",
			 sl_strerror(err));
	}
}

static void
poller_arm_eventfd(struct sl__proc *p)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&p->ring);

	if (!sqe) {
		sl__poller_flush(p);
		sqe = io_uring_get_sqe(&p->ring);
		if (!sqe)
			return;
	}
	io_uring_prep_read(sqe, p->efd, &p->efd_buf, sizeof(p->efd_buf), 0);
	io_uring_sqe_set_data64(sqe, SL__CQE_EVENTFD);
	p->efd_armed = true;
	p->sq_unsubmitted++;
}

static bool
poller_probe_msg_ring(struct io_uring *ring)
{
	struct io_uring_probe *probe;
	bool ok;

	if (getenv("SLUICE_NO_MSG_RING"))
		return false;
	probe = io_uring_get_probe_ring(ring);
	if (!probe)
		return false;
	ok = io_uring_opcode_supported(probe, IORING_OP_MSG_RING);
	io_uring_free_probe(probe);
	return ok;
}

/* Whether a ring without SQPOLL can be set up: tells a refused SQPOLL
 * apart from io_uring refused altogether. */
static bool
poller_plain_ring_works(const struct sl_runtime_opts *o)
{
	struct io_uring ring;

	if (io_uring_queue_init(o->ring_entries, &ring, 0) < 0)
		return false;
	io_uring_queue_exit(&ring);
	return true;
}

int
sl__poller_init(struct sl__proc *p, char *err, size_t errlen)
{
	const struct sl_runtime_opts *o = &sl__rt.opts;
	struct io_uring_params params;
	int r;

	memset(&params, 0, sizeof(params));
	params.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
	params.cq_entries = o->cq_entries ? o->cq_entries : o->ring_entries * 4;
	if (o->sqpoll) {
		params.flags |= IORING_SETUP_SQPOLL;
		params.sq_thread_idle = o->sqpoll_idle_ms;
		if (o->sqpoll_cpu >= 0) {
			params.flags |= IORING_SETUP_SQ_AFF;
			params.sq_thread_cpu = (uint32_t)o->sqpoll_cpu;
		}
	}
	r = io_uring_queue_init_params(o->ring_entries, &p->ring, &params);
	if (r == -EINVAL && !o->sqpoll) {
		/* Kernels before 5.18 lack SUBMIT_ALL. */
		params.flags &= ~(unsigned)IORING_SETUP_SUBMIT_ALL;
		r = io_uring_queue_init_params(o->ring_entries, &p->ring,
					       &params);
	}
	if (r == -EPERM && o->sqpoll && poller_plain_ring_works(o)) {
		snprintf(err, errlen,
			 "sqpoll: the kernel refused a polling ring (EPERM); "
			 "before Linux 5.11 SQPOLL needs CAP_SYS_NICE: grant "
			 "it or turn sqpoll off");
		p->ring.ring_fd = -1;
		return r;
	}
	if (r < 0) {
		poller_explain(r, err, errlen);
		p->ring.ring_fd = -1;
		return r;
	}
	if (!(params.features & IORING_FEAT_EXT_ARG)) {
		snprintf(err, errlen,
			 "io_uring lacks IORING_FEAT_EXT_ARG (Linux 5.11); "
			 "Sluice needs Linux 5.19 or later");
		io_uring_queue_exit(&p->ring);
		p->ring.ring_fd = -1;
		return -ENOSYS;
	}
	if (p->id == 0)
		sl__rt.msg_ring = poller_probe_msg_ring(&p->ring);

	p->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->efd < 0) {
		r = -errno;
		snprintf(err, errlen, "eventfd: %s", sl_strerror(r));
		return r;
	}
	poller_arm_eventfd(p);
	return 0;
}

void
sl__poller_destroy(struct sl__proc *p)
{
	if (p->ring.ring_fd >= 0)
		io_uring_queue_exit(&p->ring);
	p->ring.ring_fd = -1;
	if (p->efd >= 0)
		close(p->efd);
	p->efd = -1;
}

unsigned
sl__poller_reap(struct sl__proc *p)
{
	struct io_uring_cqe *cqes[64];
	unsigned n, total = 0;

	while ((n = io_uring_peek_batch_cqe(&p->ring, cqes, 64)) > 0) {
		for (unsigned i = 0; i < n; i++) {
			uint64_t ud = io_uring_cqe_get_data64(cqes[i]);

			if (ud == SL__CQE_EVENTFD) {
				p->efd_armed = false;
			} else if (ud > SL__CQE_TAG_MAX) {
				struct sl__completion *c =
					(struct sl__completion *)(uintptr_t)ud;

				c->fn(c, cqes[i]->res, cqes[i]->flags);
			}
		}
		io_uring_cq_advance(&p->ring, n);
		total += n;
	}
	if (!p->efd_armed && p->efd >= 0)
		poller_arm_eventfd(p);
	return total;
}

void
sl__poller_flush(struct sl__proc *p)
{
	int r = io_uring_submit(&p->ring);

	sl__stat_inc(&p->st.submits);
	if (r >= 0)
		p->sq_unsubmitted = 0;
}

void
sl__poller_wait(struct sl__proc *p, uint64_t deadline)
{
	struct __kernel_timespec ts, *tsp = NULL;
	struct io_uring_cqe *cqe;

	if (!p->efd_armed)
		poller_arm_eventfd(p);
	if (deadline != UINT64_MAX) {
		uint64_t now = sl_now_ns();
		uint64_t left = deadline > now ? deadline - now : 0;

		if (left == 0) {
			if (p->sq_unsubmitted)
				sl__poller_flush(p);
			sl__poller_reap(p);
			return;
		}
		ts.tv_sec = (long long)(left / SL_NSEC_PER_SEC);
		ts.tv_nsec = (long long)(left % SL_NSEC_PER_SEC);
		tsp = &ts;
	}
	sl__stat_inc(&p->st.submits);
	io_uring_submit_and_wait_timeout(&p->ring, &cqe, 1, tsp, NULL);
	p->sq_unsubmitted = 0;
	sl__poller_reap(p);
}

void
sl__poller_wake(struct sl__proc *from, struct sl__proc *target)
{
	static const uint64_t one = 1;
	ssize_t r;

	if (from && from != target && sl__rt.msg_ring) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&from->ring);

		if (!sqe) {
			sl__poller_flush(from);
			sqe = io_uring_get_sqe(&from->ring);
		}
		if (sqe) {
			io_uring_prep_msg_ring(sqe, target->ring.ring_fd, 0,
					       SL__CQE_WAKE, 0);
			sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
			io_uring_sqe_set_data64(sqe, SL__CQE_WAKE);
			sl__poller_flush(from);
			return;
		}
	}
	r = write(target->efd, &one, sizeof(one));
	(void)r; /* EAGAIN: the counter is already non-zero, it will wake */
}
