/* SPDX-License-Identifier: MIT */
/*
 * Runtime-level behaviour that needs a process of its own: a stack overflow
 * ends the process with a message naming the task; io_uring blocked by a
 * seccomp filter makes start-up fail with one line naming the cause; SIGQUIT
 * writes a task dump; and the runtime works with SQPOLL rings and with the
 * eventfd wake-up path that kernels without IORING_OP_MSG_RING use.
 *
 * Tests that kill or restrict a process run a child for it: this program
 * again (fork and exec, so no state of the parent, the sanitizers' included,
 * is inherited), told which child to be on its command line.  The parent
 * reads what the child writes to stderr through a pipe.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/chan.h"
#include "core/runtime.h"
#include "core/task.h"
#include "tests/harness.h"

/* What a child wrote to stderr, and how it ended. */
struct child {
	char out[65536];
	size_t len;
	int status;
};

/*
 * Run @fn in a child with its stderr on a pipe; collect the output until
 * the child exits, or until @until appears and then kill it.  Gives up
 * (and kills the child) after @limit_ms without that.
 */
static void
child_run_poked(struct child *c, const char *role, const char *until,
		int limit_ms, int poke)
{
	int fds[2];
	pid_t pid;

	memset(c, 0, sizeof(*c));
	assert_int_equal(pipe(fds), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fds[1], STDERR_FILENO);
		close(fds[0]);
		close(fds[1]);
		execl("/proc/self/exe", "test_runtime", "--child", role,
		      (char *)NULL);
		_exit(127);
	}
	close(fds[1]);

	for (int waited = 0; waited < limit_ms;) {
		struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
		int r = poll(&pfd, 1, 100);
		ssize_t n;

		if (r == 0) {
			waited += 100;
			/* Like an operator's kill -QUIT, now and then, once
			 * the child says its handlers are in place. */
			if (poke && waited % 300 == 0 &&
			    strstr(c->out, "child-ready"))
				kill(pid, poke);
			continue;
		}
		n = read(fds[0], c->out + c->len, sizeof(c->out) - 1 - c->len);
		if (n <= 0)
			break; /* the child closed stderr: it has ended */
		c->len += (size_t)n;
		c->out[c->len] = '\0';
		if (until && strstr(c->out, until))
			break;
	}
	kill(pid, SIGKILL);
	close(fds[0]);
	assert_int_equal(waitpid(pid, &c->status, 0), pid);
}

static void
child_run(struct child *c, const char *role, const char *until, int limit_ms)
{
	child_run_poked(c, role, until, limit_ms, 0);
}

/* ---- stack overflow ---- */

static unsigned
recurse(unsigned depth)
{
	volatile char frame[1024];

	frame[0] = (char)depth;
	frame[sizeof(frame) - 1] = (char)depth;
	if (depth > 1000000)
		return (unsigned)frame[0];
	return recurse(depth + 1) + (unsigned)frame[1023];
}

static void
overflow_task(void *arg)
{
	(void)arg;
	recurse(0);
}

static void
overflow_main(void *arg)
{
	struct sl_task_opts opts = {
		.name = "deep-recursion",
		.stack_size = 16384,
		.proc = -1,
	};
	struct sl_task *t;

	(void)arg;
	if (sl_task_spawn(overflow_task, NULL, &opts, &t) == 0)
		sl_task_join(t);
}

static void
overflow_child(void)
{
	sl_runtime_run(NULL, overflow_main, NULL);
}

static void
test_runtime_stack_overflow_names_the_task(void **state)
{
	struct child c;

	(void)state;
#if defined(SL_SANITIZE_ADDRESS) || defined(SL_SANITIZE_THREAD)
	skip(); /* the sanitizers own SIGSEGV and report overflows themselves */
#endif
	child_run(&c, "overflow", NULL, 60000);
	if (!WIFSIGNALED(c.status))
		fail_msg("the child did not die of a signal (status %d): %s",
			 c.status, c.out);
	assert_int_equal(WTERMSIG(c.status), SIGABRT);
	if (!strstr(c.out, "stack overflow in task") ||
	    !strstr(c.out, "deep-recursion"))
		fail_msg("no overflow message naming the task: %s", c.out);
}

/* ---- io_uring refused ---- */

static int refuse_errno;

static void refused_child(void);

static void
refused_main(void *arg)
{
	(void)arg;
	fprintf(stderr, "main ran\n");
}

static void
refused_child(void)
{
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
		BPF_STMT(BPF_RET | BPF_K,
			 SECCOMP_RET_ERRNO | ((unsigned)refuse_errno &
					      SECCOMP_RET_DATA)),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {
		.len = (unsigned short)SL_ARRAY_SIZE(filter),
		.filter = filter,
	};
	int err;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
		fprintf(stderr, "cannot install the filter: %s\n",
			strerror(errno));
		_exit(3);
	}
	err = sl_runtime_run(NULL, refused_main, NULL);
	fprintf(stderr, "run=%d error=%s\n", err, sl_runtime_error());
	fflush(stderr);
	_exit(err == -refuse_errno ? 0 : 1);
}

static void
test_runtime_io_uring_blocked_by_seccomp(void **state)
{
	struct child c;

	(void)state;
	child_run(&c, "refuse-eperm", NULL, 30000);
	assert_true(WIFEXITED(c.status));
	if (WEXITSTATUS(c.status) != 0 || strstr(c.out, "main ran"))
		fail_msg("start-up did not fail with -EPERM: %s", c.out);
	/* kernel.io_uring_disabled is 0 here, so the policy is blamed. */
	if (!strstr(c.out, "security policy") || !strstr(c.out, "seccomp"))
		fail_msg("the error does not name the cause: %s", c.out);
}

static void
test_runtime_io_uring_missing(void **state)
{
	struct child c;

	(void)state;
	child_run(&c, "refuse-enosys", NULL, 30000);
	assert_true(WIFEXITED(c.status));
	if (WEXITSTATUS(c.status) != 0 || !strstr(c.out, "ENOSYS"))
		fail_msg("start-up did not explain ENOSYS: %s", c.out);
}

/* ---- SIGQUIT ---- */

static void
quit_parked(void *arg)
{
	sl_chan_recv(arg, NULL); /* never sent to */
}

static void
quit_main(void *arg)
{
	struct sl_chan *never = sl_chan_create(0, 0);
	struct sl_task_opts opts = {.name = "parked-for-dump", .proc = -1};

	(void)arg;
	sl_task_spawn(quit_parked, never, &opts, NULL);
	fprintf(stderr, "child-ready\n");
	/* Park too; the parent sends SIGQUIT and kills us once it has read
	 * a dump that shows the other task parked. */
	sl_chan_recv(never, NULL);
}

static void
quit_child(void)
{
	sl_runtime_run(NULL, quit_main, NULL);
}

static void
test_runtime_sigquit_dumps_tasks(void **state)
{
	struct child c;

	(void)state;
	child_run_poked(&c, "quit",
			"\"parked-for-dump\" waiting on=\"chan recv\"", 30000,
			SIGQUIT);
	if (!strstr(c.out, "sluice task dump") ||
	    !strstr(c.out, "\"parked-for-dump\" waiting on=\"chan recv\""))
		fail_msg("no dump with the parked task (status %d): %s",
			 c.status, c.out);
	/* The process was still alive when the dump came: we killed it. */
	assert_true(WIFSIGNALED(c.status));
	assert_int_equal(WTERMSIG(c.status), SIGKILL);
}

/* ---- other ring set-ups ---- */

#define PINGS HARNESS_SCALE(20000, 2000)

struct pings {
	struct sl_chan *ping;
	struct sl_chan *pong;
	struct sl_waitgroup done;
	uint64_t echoed;
	uint64_t wakeups;
	uint64_t wakeups_sent;
};

static void
echo_task(void *arg)
{
	struct pings *p = arg;
	uint64_t v;

	while (sl_chan_recv(p->ping, &v) == 0)
		CHECK_ERR_EQ(sl_chan_send(p->pong, &v), 0);
	sl_waitgroup_done(&p->done);
}

static void
pinger_task(void *arg)
{
	struct pings *p = arg;

	for (uint64_t i = 0; i < PINGS; i++) {
		uint64_t back = 0;

		CHECK_ERR_EQ(sl_chan_send(p->ping, &i), 0);
		CHECK_ERR_EQ(sl_chan_recv(p->pong, &back), 0);
		CHECK_UINT_EQ(back, i);
		p->echoed++;
	}
	sl_chan_close(p->ping);
	sl_waitgroup_done(&p->done);
}

/*
 * Ping-pong between two tasks pinned to different processors: every
 * message wakes the other processor through its inbox, and with no idle
 * spinning each one sleeps in its ring between messages, so the wake-up
 * path (MSG_RING or eventfd) is taken many times.
 */
static void
pings_main(void *arg)
{
	struct pings *p = arg;
	struct sl_task_opts on0 = {.name = "pinger", .proc = 0, .pinned = true};
	struct sl_task_opts on1 = {.name = "echo", .proc = 1, .pinned = true};

	p->ping = sl_chan_create(8, 0);
	p->pong = sl_chan_create(8, 0);
	sl_waitgroup_init(&p->done);
	sl_waitgroup_add(&p->done, 2);
	CHECK_ERR_EQ(sl_task_spawn(echo_task, p, &on1, NULL), 0);
	CHECK_ERR_EQ(sl_task_spawn(pinger_task, p, &on0, NULL), 0);
	sl_waitgroup_wait(&p->done);
	p->wakeups = HARNESS_STATS_SUM(wakeups);
	p->wakeups_sent = HARNESS_STATS_SUM(wakeups_sent);
	sl_chan_destroy(p->ping);
	sl_chan_destroy(p->pong);
}

static void
pings_run(struct pings *p, bool sqpoll)
{
	struct sl_runtime_opts opts;

	sl_runtime_opts_init(&opts);
	opts.nprocs = 2;
	opts.idle_spin_ns = 0;
	opts.sqpoll = sqpoll;
	opts.sqpoll_idle_ms = 10;
	harness_run_opts(&opts, pings_main, p);
	if (getenv("SLUICE_TEST_VERBOSE"))
		printf("wakeups %llu, sent %llu\n",
		       (unsigned long long)p->wakeups,
		       (unsigned long long)p->wakeups_sent);
	assert_int_equal(p->echoed, PINGS);
	/* The processors slept and woke each other, many times. */
	assert_at_least(p->wakeups_sent, PINGS / 10);
	assert_at_least(p->wakeups, PINGS / 10);
}

static void
test_runtime_sqpoll_rings(void **state)
{
	struct pings p = {0};

	(void)state;
	pings_run(&p, true);
}

static void
test_runtime_eventfd_wakeups(void **state)
{
	struct pings p = {0};

	(void)state;
	setenv("SLUICE_NO_MSG_RING", "1", 1);
	pings_run(&p, false);
	unsetenv("SLUICE_NO_MSG_RING");
}

static void
test_runtime_msg_ring_wakeups(void **state)
{
	struct pings p = {0};

	(void)state;
	pings_run(&p, false);
}

/* The child roles, chosen by child_run() on the command line. */
static int
child_main(const char *role)
{
	if (strcmp(role, "overflow") == 0) {
		overflow_child();
	} else if (strcmp(role, "refuse-eperm") == 0) {
		refuse_errno = EPERM;
		refused_child();
	} else if (strcmp(role, "refuse-enosys") == 0) {
		refuse_errno = ENOSYS;
		refused_child();
	} else if (strcmp(role, "quit") == 0) {
		quit_child();
	} else {
		fprintf(stderr, "unknown child role %s\n", role);
		return 2;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_runtime_stack_overflow_names_the_task),
		cmocka_unit_test(test_runtime_io_uring_blocked_by_seccomp),
		cmocka_unit_test(test_runtime_io_uring_missing),
		cmocka_unit_test(test_runtime_sigquit_dumps_tasks),
		cmocka_unit_test(test_runtime_sqpoll_rings),
		cmocka_unit_test(test_runtime_eventfd_wakeups),
		cmocka_unit_test(test_runtime_msg_ring_wakeups),
	};

	if (argc > 2 && strcmp(argv[1], "--child") == 0)
		return child_main(argv[2]);
	harness_init();
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
