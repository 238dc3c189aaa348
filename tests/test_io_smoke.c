/* SPDX-License-Identifier: MIT */
/*
 * A first round trip through io/: a TCP echo server and client in one
 * runtime, lines through sl_reader and sl_writer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/task.h"
#include "io/bufio.h"
#include "io/net.h"

#include "harness.h"

#define LINES 20000

struct echo {
	struct sl_listener *l;
	struct sl_addr addr;
	uint64_t echoed;
	uint64_t got;
};

static void
echo_server(void *arg)
{
	struct echo *e = arg;
	struct sl_conn *c = NULL;
	struct sl_reader r;
	struct sl_writer w;
	const char *line;
	ssize_t n;

	CHECK_ERR_EQ(sl_listener_accept(NULL, e->l, &c), 0);
	if (!c)
		return;
	sl_reader_init(&r, c, 1024);
	CHECK_ERR_EQ(sl_writer_init(&w, c, 4096, 0), 0);
	while ((n = sl_reader_line(NULL, &r, '\n', &line)) > 0) {
		CHECK_ERR_EQ(sl_writer_write(NULL, &w, line, (size_t)n), 0);
		e->echoed++;
		/* Flush when the client has sent all it will before reading. */
		if (e->echoed % 100 == 0)
			CHECK_ERR_EQ(sl_writer_flush(NULL, &w), 0);
	}
	CHECK_INT_EQ(n, 0);
	CHECK_ERR_EQ(sl_writer_fini(&w), 0);
	sl_reader_fini(&r);
	sl_conn_close(c);
}

static void
echo_main(void *arg)
{
	struct echo *e = arg;
	struct sl_conn *c = NULL;
	struct sl_reader r;
	struct sl_task *srv;
	char addr[64], line[64];
	const char *got;

	CHECK_ERR_EQ(sl_listen("127.0.0.1:0", NULL, &e->l), 0);
	if (!e->l)
		return;
	sl_listener_addr(e->l, &e->addr);
	srv = harness_spawn(echo_server, e, -1);
	CHECK_ERR_EQ(sl_connect(NULL, sl_addr_format(&e->addr, addr,
						       sizeof(addr)),
				NULL, &c),
		     0);
	if (!c)
		return;
	sl_reader_init(&r, c, 1024);
	for (int i = 0; i < LINES; i += 100) {
		for (int k = i; k < i + 100; k++) {
			int len = snprintf(line, sizeof(line), "line %d\n", k);

			CHECK_INT_EQ(sl_conn_send(NULL, c, line, (size_t)len),
				     len);
		}
		for (int k = i; k < i + 100; k++) {
			ssize_t n = sl_reader_line(NULL, &r, '\n', &got);
			int len = snprintf(line, sizeof(line), "line %d\n", k);

			CHECK_INT_EQ(n, len);
			if (n == len)
				CHECK(memcmp(got, line, (size_t)len) == 0);
			e->got++;
		}
	}
	CHECK_ERR_EQ(sl_conn_shutdown(NULL, c, SHUT_WR), 0);
	harness_join(srv);
	CHECK_INT_EQ(sl_reader_line(NULL, &r, '\n', &got), 0);
	sl_reader_fini(&r);
	sl_conn_close(c);
	sl_listener_close(e->l);
}

static void
test_io_smoke_echo(void **state)
{
	struct echo e = {0};

	(void)state;
	harness_run(2, echo_main, &e);
	assert_int_equal(e.echoed, LINES);
	assert_int_equal(e.got, LINES);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_io_smoke_echo),
	};

	harness_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
