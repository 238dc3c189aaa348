/* SPDX-License-Identifier: MIT */
/*
 * sluice-top against a real sluiced: the daemon runs as a child process
 * (tests/integration/itest.h) with a token on its admin endpoint, takes a
 * known number of events, and is then scraped the way sluice-top scrapes
 * it.
 *
 * What this pins down is the agreement between what router/metrics.c and
 * router/admin.c write and what tools/top reads: every line of the real
 * exposition parses (no line skipped), the figures the screen shows come
 * out equal to what was sent, a request without the token is refused
 * with a message that says so, and the program prints its screen from
 * the live endpoint with the token read from a file.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "tools/top/snapshot.h"

#include "itest.h"

extern char **environ;

#define EVENTS 3000
#define KEYS 100

struct fixture {
	struct itest_daemon d;
	char admin[64], input[64];
	char dir[64], token_file[96], out_file[96];
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->d.err_fd = -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	itest_daemon_finish(&f->d);
	if (f->token_file[0])
		unlink(f->token_file);
	if (f->out_file[0])
		unlink(f->out_file);
	if (f->dir[0])
		rmdir(f->dir);
	free(f);
	return 0;
}

static void
start_and_feed(struct fixture *f)
{
	static const char yaml[] =
		"runtime:\n  procs: 2\n"
		"inputs:\n"
		"  - {name: tcp, type: tcp, addr: \"127.0.0.1:0\"}\n"
		"routes:\n"
		"  - name: all\n"
		"    default: true\n"
		"    sink: {type: null}\n" ITEST_ADMIN_YAML;
	char line[64];
	int fd;

	assert_int_equal(itest_daemon_start(&f->d, yaml), 0);
	assert_int_equal(
		itest_daemon_addr(&f->d, NULL, f->admin, sizeof(f->admin)), 0);
	assert_int_equal(
		itest_daemon_addr(&f->d, "tcp", f->input, sizeof(f->input)), 0);

	fd = itest_connect(f->input);
	assert_true(fd >= 0);
	for (unsigned i = 0; i < EVENTS; i++) {
		int n = snprintf(line, sizeof(line), "set k%u %u\n", i % KEYS,
				 i);

		assert_int_equal(itest_send_all(fd, line, (size_t)n), 0);
	}
	close(fd);
	assert_true(itest_metric_wait(&f->d, "sluice_events_ingested_total",
				      EVENTS, ITEST_WAIT_MS));
	assert_true(itest_metric_wait(&f->d,
				      "sluice_route_adds_total{route=\"all\"}",
				      EVENTS, ITEST_WAIT_MS));
}

static const struct top_entity *
entity(const struct top_state *st, enum top_kind k, const char *name)
{
	const struct top_group *g = &st->groups[k];

	for (size_t i = 0; i < g->n; i++)
		if (!strcmp(g->items[i].name, name))
			return &g->items[i];
	fail_msg("no entity \"%s\"", name);
	return NULL;
}

static void
test_top_sluiced_scrape(void **state)
{
	struct fixture *f = *state;
	struct top_http_request rq = {.path = "/metrics",
				      .cancel_fd = -1,
				      .timeout_ns = 10ull * 1000000000ull};
	const struct top_entity *e;
	struct top_snapshot snap;
	struct top_screen screen;
	struct top_render_info info = {.addr = "sluiced"};
	char err[TOP_HTTP_ERR_MAX];
	int status = -1;

	start_and_feed(f);
	rq.addr = f->admin;
	top_snapshot_init(&snap);

	/* Without the token: refused, and the message says what to do. */
	assert_int_equal(top_snapshot_fetch(&snap, &rq, err, sizeof(err)),
			 -EACCES);
	if (!strstr(err, "answered 401: it wants a token"))
		fail_msg("error: %s", err);

	rq.token = ITEST_TOKEN;
	assert_int_equal(top_snapshot_fetch(&snap, &rq, err, sizeof(err)), 0);
	if (snap.set.bad_lines)
		fail_msg("%zu lines of sluiced's metrics skipped, first %zu: "
			 "%s",
			 snap.set.bad_lines, snap.set.first_bad_line,
			 snap.set.first_bad_why);
	assert_true(snap.set.nsamples > 50);
	assert_int_equal(
		top_prom_type_of(&snap.set, "sluice_reconcile_latency_seconds"),
		TOP_PROM_HISTOGRAM);

	assert_true(snap.st.g[TOP_G_INGESTED] == EVENTS);
	assert_true(snap.st.g[TOP_G_MALFORMED] == 0);
	assert_true(snap.st.g[TOP_G_READY] == 1);
	assert_true(snap.st.g[TOP_G_START_TIME] > 1.6e9);
	e = entity(&snap.st, TOP_ROUTES, "all");
	assert_true(e->v[TOP_R_ADDS] == EVENTS);
	assert_true(e->v[TOP_R_FOLDS] <= EVENTS);
	assert_false(e->hist[TOP_H_LATENCY].bad);
	assert_int_equal(e->hist[TOP_H_LATENCY].n, 25);
	e = entity(&snap.st, TOP_INPUTS, "tcp");
	assert_true(e->v[TOP_I_EVENTS] == EVENTS);
	assert_int_equal(snap.st.groups[TOP_PROCS].n, 2);
	e = entity(&snap.st, TOP_PROCS, "1");
	assert_false(isnan(e->v[TOP_P_RUNQ]));
	assert_false(isnan(e->v[TOP_P_TASKS_RUN]));

	/* The screen shows the route and no warning. */
	top_screen_init(&screen);
	assert_int_equal(top_snapshot_render(&screen, NULL, &snap, &info), 0);
	for (size_t i = 0; i < screen.n; i++)
		assert_int_not_equal(screen.lines[i].style, TOP_STYLE_WARN);
	assert_true(screen.n > 6);
	assert_true(!strncmp(screen.lines[6].text, "all ", 4));
	top_screen_fini(&screen);
	top_snapshot_fini(&snap);

	itest_daemon_signal(&f->d, SIGTERM);
	assert_true(itest_daemon_wait_exit(&f->d, ITEST_WAIT_MS, &status));
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void
test_top_sluiced_program_once(void **state)
{
	static char path[] = SLUICE_TOP_PATH;
	struct fixture *f = *state;
	char a0[] = "--once", a1[] = "--interval", a2[] = "0.2";
	char a3[] = "--admin", a4[] = "--token-file";
	char *argv[] = {path,          a0,  a1, a2, a3, f->admin, a4,
			f->token_file, NULL};
	char out[8192];
	posix_spawn_file_actions_t fa;
	ssize_t n;
	pid_t pid;
	int fd, st = 0;

	start_and_feed(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/sluice-top-itest-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->token_file, sizeof(f->token_file), "%s/token", f->dir);
	snprintf(f->out_file, sizeof(f->out_file), "%s/out", f->dir);
	fd = open(f->token_file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, ITEST_TOKEN "\n", strlen(ITEST_TOKEN) + 1),
			 (ssize_t)strlen(ITEST_TOKEN) + 1);
	close(fd);

	assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
	posix_spawn_file_actions_addopen(&fa, 1, f->out_file,
					 O_WRONLY | O_CREAT, 0600);
	assert_int_equal(posix_spawn(&pid, path, &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);

	fd = open(f->out_file, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	n = read(fd, out, sizeof(out) - 1);
	close(fd);
	assert_true(n > 0);
	out[n] = '\0';
	assert_non_null(strstr(out, "  ready  tasks "));
	/* Nothing is sent while it runs: the window saw no events. */
	assert_non_null(strstr(out, "\nevents   in 0/s (3000)"));
	assert_non_null(strstr(out, "\nall "));
	assert_non_null(strstr(out, "\ntcp "));
	assert_non_null(strstr(out, "\nrates, FOLD% and P99 cover the last"));
	assert_null(strstr(out, "warning"));
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_top_sluiced_scrape, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_top_sluiced_program_once,
						setup, teardown),
	};

	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
