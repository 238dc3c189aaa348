/* SPDX-License-Identifier: MIT */
/*
 * Tests of sluiced's configuration loader (router/config.c).
 *
 * Loading: the defaults of an empty file; a file with every key, read
 * back field by field; the example in docs/configuration.md; every class
 * of error with its exact message, file, line and key path; YAML syntax
 * errors at libyaml's line.  Overrides: values, the same messages with
 * "--set", key paths that lead nowhere, a failed override changing
 * nothing, checks across keys after overrides.  Durations and sizes on
 * their own: units, fractions, overflow, signs.  The fold merges of sum
 * and max on their own, and end to end: a configuration's routes
 * installed in a router, events fed, and the sink files added up.
 * Building sinks: shared dead letters, and failures that leave nothing
 * built.
 */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/base.h"
#include "router/config.h"
#include "router/router_internal.h"

#include "harness.h"

#define ERR_LEN 512

static char test_dir[] = "/tmp/sluice-config-XXXXXX";

/* Parse @yaml as "t.yaml"; fail the test with the message if it fails. */
static void
parse_ok_at(const char *yaml, struct sluiced_config *c, int line)
{
	char err[ERR_LEN] = "x";
	int r = sluiced_config_parse(yaml, strlen(yaml), "t.yaml", c, err,
				     sizeof(err));

	if (r)
		fail_msg("line %d: parse failed (%d): %s", line, r, err);
	if (err[0])
		fail_msg("line %d: no error but the message \"%s\"", line, err);
}
#define parse_ok(yaml, c) parse_ok_at((yaml), (c), __LINE__)

/* Parse @yaml as @file and expect exactly @want. */
static void
expect_error_at(const char *file, const char *yaml, const char *want,
		int line)
{
	struct sluiced_config c;
	char err[ERR_LEN] = "";
	int r = sluiced_config_parse(yaml, strlen(yaml), file, &c, err,
				     sizeof(err));

	if (r != -EINVAL)
		fail_msg("line %d: parse returned %d (%s), expected -EINVAL",
			 line, r, err);
	if (strcmp(err, want))
		fail_msg("line %d: the message\n  \"%s\"\nexpected\n  \"%s\"",
			 line, err, want);
	/* A failed parse leaves nothing to free. */
	assert_null(c.routes);
	assert_null(c.inputs);
	assert_null(c.strings_);
}
#define expect_error(yaml, want)                                               \
	expect_error_at("t.yaml", (yaml), (want), __LINE__)

/* Apply @assignment and expect exactly @want ("" for success). */
static void
expect_set_at(struct sluiced_config *c, const char *assignment,
	      const char *want, int line)
{
	char err[ERR_LEN] = "x";
	int r = sluiced_config_set(c, assignment, err, sizeof(err));

	if ((r == 0) != (want[0] == '\0') || strcmp(err, want))
		fail_msg("line %d: set \"%s\": %d \"%s\", expected \"%s\"",
			 line, assignment, r, err, want);
}
#define expect_set(c, a, want) expect_set_at((c), (a), (want), __LINE__)

static void
expect_check_at(struct sluiced_config *c, const char *want, int line)
{
	char err[ERR_LEN] = "x";
	int r = sluiced_config_check(c, err, sizeof(err));

	if ((r == 0) != (want[0] == '\0') || strcmp(err, want))
		fail_msg("line %d: check: %d \"%s\", expected \"%s\"", line, r,
			 err, want);
}
#define expect_config_check(c, want) expect_check_at((c), (want), __LINE__)

/* ---- defaults ---- */

static void
assert_defaults(const struct sluiced_config *c)
{
	struct sl_wire_limits wl;
	const struct sluice_route *r;

	sl_wire_limits_default(&wl);
	assert_int_equal(c->runtime.nprocs, 0);
	assert_int_equal(c->runtime.ring_entries, 256);
	assert_false(c->runtime.sqpoll);
	assert_int_equal(c->runtime.sqpoll_cpu, -1);
	assert_int_equal(c->runtime.stack_size, 64 * 1024);
	assert_true(c->runtime.pin);
	assert_null(c->runtime.cpus);
	assert_null(c->runtime.numa);
	assert_int_equal(c->runtime.cq_entries, 0);
	assert_int_equal(c->runtime.sqpoll_idle_ms, 1000);
	assert_false(c->runtime.huge_pages);
	assert_int_equal(c->runtime.idle_spin_ns, 20 * SL_NSEC_PER_USEC);
	assert_int_equal(c->io.buf_size, 4096);
	assert_int_equal(c->io.bufs_initial, 256);
	assert_int_equal(c->io.bufs_max, 4096);
	assert_false(c->allow_root);

	assert_int_equal(c->opts.limits.kind_max, 255);
	assert_int_equal(c->opts.limits.key_max, 4096);
	assert_int_equal(c->opts.limits.payload_max, 1 << 20);
	assert_int_equal(c->opts.limits.line_max, wl.line_max);
	assert_int_equal(c->opts.limits.frame_max, wl.frame_max);
	assert_int_equal(c->opts.max_malformed, 100);
	assert_int_equal(c->opts.shard_inbox, 4096);

	assert_int_equal(c->ninputs, 1);
	assert_string_equal(c->inputs[0].in.name, "tcp");
	assert_int_equal(c->inputs[0].in.type, SLUICE_INPUT_TCP);
	assert_string_equal(c->inputs[0].in.addr, "127.0.0.1:7400");
	assert_false(c->inputs[0].in.frames);
	assert_int_equal(c->inputs[0].in.max_conns, 0);
	assert_int_equal(c->inputs[0].in.max_buffered, 0);

	assert_int_equal(c->nroutes, 1);
	r = &c->routes[0].route;
	assert_string_equal(r->name, "default");
	assert_int_equal(r->match, SL_MATCH_ANY);
	assert_true(r->is_default);
	assert_string_equal(r->kind, "");
	assert_string_equal(r->key_prefix, "");
	assert_int_equal(r->workers, 4);
	assert_int_equal(c->routes[0].fold, SLUICED_FOLD_LATEST);
	assert_int_equal(r->fold.policy, SL_FOLD_LATEST);
	assert_null(r->fold.merge);
	assert_int_equal(r->fold.keep_max, 16);
	assert_int_equal(r->fold.backoff_base_ns, 5 * SL_NSEC_PER_MSEC);
	assert_int_equal(r->fold.backoff_cap_ns, 1000 * SL_NSEC_PER_SEC);
	assert_false(r->fold.jitter);
	assert_true(r->fold.retry_rate == 10.0);
	assert_int_equal(r->fold.retry_burst, 100);
	assert_int_equal(r->fold.max_attempts, 0);
	assert_int_equal(r->fold.max_pending, 0);
	assert_null(r->sink);
	assert_null(r->dead_letter);
	assert_int_equal(c->routes[0].sink.type, SLUICED_SINK_NULL);
	assert_false(c->routes[0].has_dead_letter);

	assert_string_equal(c->admin.addr, "127.0.0.1:7401");
	assert_int_equal(c->admin.timeout_ns, 5 * SL_NSEC_PER_SEC);
	assert_null(c->admin.token);
	assert_int_equal(c->admin.max_request, 8 * 1024);
	assert_true(c->admin_enabled);
	assert_int_equal(c->drain_timeout_ns, 10 * SL_NSEC_PER_SEC);
	assert_int_equal(c->log_level, SLUICED_LOG_INFO);
}

static void
test_config_defaults_without_file(void **state)
{
	struct sluiced_config c;
	char err[ERR_LEN];

	(void)state;
	assert_int_equal(sluiced_config_defaults(&c), 0);
	assert_defaults(&c);
	assert_null(c.file);
	/* The defaults pass their own checks. */
	assert_int_equal(sluiced_config_check(&c, err, sizeof(err)), 0);
	assert_defaults(&c);
	sluiced_config_free(&c);
	assert_null(c.routes);
}

static void
test_config_empty_file_is_the_defaults(void **state)
{
	static const char *const texts[] = {
		"", "# nothing here\n", "---\n", "~\n",
		"runtime:\nlimits: # all commented out\n",
	};
	struct sluiced_config c;

	(void)state;
	for (size_t i = 0; i < SL_ARRAY_SIZE(texts); i++) {
		parse_ok(texts[i], &c);
		assert_defaults(&c);
		assert_string_equal(c.file, "t.yaml");
		sluiced_config_free(&c);
	}
}

/* ---- a file with every key ---- */

static const char full_yaml[] =
	"# every key given\n"
	"runtime:\n"
	"  procs: 2\n"
	"  ring_entries: 512\n"
	"  sqpoll: true\n"
	"  sqpoll_cpu: 1\n"
	"  stack_size: 128KiB\n"
	"limits:\n"
	"  kind_max: 64\n"
	"  key_max: 1KiB\n"
	"  payload_max: 64KiB\n"
	"  line_max: 300000\n"
	"  frame_max: 70000\n"
	"  max_malformed: 0\n"
	"  shard_inbox: 1024\n"
	"inputs:\n"
	"  - name: tcp-lines\n"
	"    type: tcp\n"
	"    addr: \"0.0.0.0:7400\"\n"
	"    format: lines\n"
	"    max_conns: 1000\n"
	"    max_buffered: 64KiB\n"
	"  - {name: udp, type: udp, addr: \"[::1]:7402\", format: frames}\n"
	"  - name: local\n"
	"    type: unix\n"
	"    addr: /run/sluice.sock\n"
	"  - {name: local.dgram, type: unix-dgram, addr: \"@sluice\"}\n"
	"routes:\n"
	"  - name: orders\n"
	"    match: prefix\n"
	"    kind: \"order.\"\n"
	"    key_prefix: \"eu-\"\n"
	"    default: false\n"
	"    fold: keep-all\n"
	"    keep_max: 8\n"
	"    workers: 2\n"
	"    backoff: {base: 10ms, cap: 1m, jitter: true}\n"
	"    retry: {rate: 0.5, burst: 20}\n"
	"    max_attempts: 5\n"
	"    max_pending: 100000\n"
	"    sink:\n"
	"      type: file\n"
	"      path: /var/lib/sluice/orders.log\n"
	"      sync: false\n"
	"      rotate: 64MiB\n"
	"      format: frames\n"
	"    dead_letter: {type: file, path: /var/lib/sluice/dead.log}\n"
	"  - name: counters\n"
	"    match: glob\n"
	"    kind: \"count.*\"\n"
	"    fold: sum\n"
	"    sink: {type: tcp, addr: \"127.0.0.1:9000\", conns: 4,\n"
	"           timeout: 250ms, format: frames}\n"
	"    dead_letter: {type: file, path: /var/lib/sluice/dead.log}\n"
	"  - name: peaks\n"
	"    match: exact\n"
	"    kind: temp\n"
	"    fold: max\n"
	"    sink: {type: plugin, plugin: ./libpeaks.so, config: \"u=1\"}\n"
	"  - name: rest\n"
	"    default: true\n"
	"    sink: {type: stdout}\n"
	"admin:\n"
	"  addr: \"127.0.0.1:9901\"\n"
	"  timeout: 2s\n"
	"  max_request: 16KiB\n"
	"  token: s3cret-token\n"
	"shutdown:\n"
	"  drain_timeout: 1m30s\n"
	"log:\n"
	"  level: debug\n";

static void
assert_full_routes(const struct sluiced_config *c)
{
	const struct sluiced_route_config *o = &c->routes[0], *n = &c->routes[1];
	const struct sluiced_route_config *p = &c->routes[2], *d = &c->routes[3];

	assert_int_equal(c->nroutes, 4);
	assert_string_equal(o->route.name, "orders");
	assert_int_equal(o->route.match, SL_MATCH_PREFIX);
	assert_string_equal(o->route.kind, "order.");
	assert_string_equal(o->route.key_prefix, "eu-");
	assert_false(o->route.is_default);
	assert_int_equal(o->fold, SLUICED_FOLD_KEEP_ALL);
	assert_int_equal(o->route.fold.policy, SL_FOLD_KEEP_ALL);
	assert_int_equal(o->route.fold.keep_max, 8);
	assert_int_equal(o->route.workers, 2);
	assert_int_equal(o->route.fold.backoff_base_ns, 10 * SL_NSEC_PER_MSEC);
	assert_int_equal(o->route.fold.backoff_cap_ns, 60 * SL_NSEC_PER_SEC);
	assert_true(o->route.fold.jitter);
	assert_true(o->route.fold.retry_rate == 0.5);
	assert_int_equal(o->route.fold.retry_burst, 20);
	assert_int_equal(o->route.fold.max_attempts, 5);
	assert_int_equal(o->route.fold.max_pending, 100000);
	assert_int_equal(o->sink.type, SLUICED_SINK_FILE);
	assert_string_equal(o->sink.path, "/var/lib/sluice/orders.log");
	assert_false(o->sink.sync);
	assert_int_equal(o->sink.rotate_bytes, 64 << 20);
	assert_true(o->sink.frames);
	assert_true(o->has_dead_letter);
	assert_int_equal(o->dead_letter.type, SLUICED_SINK_FILE);
	assert_string_equal(o->dead_letter.path, "/var/lib/sluice/dead.log");
	assert_true(o->dead_letter.sync);

	assert_string_equal(n->route.name, "counters");
	assert_int_equal(n->route.match, SL_MATCH_GLOB);
	assert_string_equal(n->route.kind, "count.*");
	assert_int_equal(n->route.fold.policy, SL_FOLD_MERGE);
	assert_ptr_equal(n->route.fold.merge, sluiced_merge_sum);
	assert_int_equal(n->route.workers, 4);
	assert_int_equal(n->sink.type, SLUICED_SINK_TCP);
	assert_string_equal(n->sink.addr, "127.0.0.1:9000");
	assert_int_equal(n->sink.conns, 4);
	assert_int_equal(n->sink.timeout_ns, 250 * SL_NSEC_PER_MSEC);
	assert_true(n->sink.frames);

	assert_int_equal(p->route.match, SL_MATCH_EXACT);
	assert_string_equal(p->route.kind, "temp");
	assert_ptr_equal(p->route.fold.merge, sluiced_merge_max);
	assert_int_equal(p->sink.type, SLUICED_SINK_PLUGIN);
	assert_string_equal(p->sink.plugin, "./libpeaks.so");
	assert_string_equal(p->sink.config, "u=1");
	assert_false(p->has_dead_letter);

	assert_string_equal(d->route.name, "rest");
	assert_true(d->route.is_default);
	assert_int_equal(d->sink.type, SLUICED_SINK_STDOUT);
}

static void
test_config_full_file_reads_back(void **state)
{
	struct sluiced_config c;

	(void)state;
	parse_ok(full_yaml, &c);
	assert_int_equal(c.runtime.nprocs, 2);
	assert_int_equal(c.runtime.ring_entries, 512);
	assert_true(c.runtime.sqpoll);
	assert_int_equal(c.runtime.sqpoll_cpu, 1);
	assert_int_equal(c.runtime.stack_size, 128 * 1024);

	assert_int_equal(c.opts.limits.kind_max, 64);
	assert_int_equal(c.opts.limits.key_max, 1024);
	assert_int_equal(c.opts.limits.payload_max, 64 * 1024);
	assert_int_equal(c.opts.limits.line_max, 300000);
	assert_int_equal(c.opts.limits.frame_max, 70000);
	assert_int_equal(c.opts.max_malformed, 0);
	assert_int_equal(c.opts.shard_inbox, 1024);

	assert_int_equal(c.ninputs, 4);
	assert_string_equal(c.inputs[0].in.name, "tcp-lines");
	assert_int_equal(c.inputs[0].in.type, SLUICE_INPUT_TCP);
	assert_string_equal(c.inputs[0].in.addr, "0.0.0.0:7400");
	assert_false(c.inputs[0].in.frames);
	assert_int_equal(c.inputs[0].in.max_conns, 1000);
	assert_int_equal(c.inputs[0].in.max_buffered, 64 * 1024);
	assert_int_equal(c.inputs[1].in.max_buffered, 0);
	assert_int_equal(c.inputs[1].in.type, SLUICE_INPUT_UDP);
	assert_string_equal(c.inputs[1].in.addr, "[::1]:7402");
	assert_true(c.inputs[1].in.frames);
	assert_int_equal(c.inputs[2].in.type, SLUICE_INPUT_UNIX);
	assert_string_equal(c.inputs[2].in.addr, "/run/sluice.sock");
	assert_string_equal(c.inputs[3].in.name, "local.dgram");
	assert_int_equal(c.inputs[3].in.type, SLUICE_INPUT_UNIX_DGRAM);
	assert_string_equal(c.inputs[3].in.addr, "@sluice");

	assert_full_routes(&c);

	assert_string_equal(c.admin.addr, "127.0.0.1:9901");
	assert_int_equal(c.admin.timeout_ns, 2 * SL_NSEC_PER_SEC);
	assert_string_equal(c.admin.token, "s3cret-token");
	assert_int_equal(c.admin.max_request, 16 * 1024);
	assert_true(c.admin_enabled);
	assert_int_equal(c.drain_timeout_ns, 90 * SL_NSEC_PER_SEC);
	assert_int_equal(c.log_level, SLUICED_LOG_DEBUG);
	sluiced_config_free(&c);
}

/* line_max and frame_max follow the field limits unless given. */
static void
test_config_limits_derived(void **state)
{
	struct sluiced_config c;
	size_t fields = 100 + 200 + 3000;

	(void)state;
	parse_ok("limits: {kind_max: 100, key_max: 200, payload_max: 3000}\n",
		 &c);
	assert_int_equal(c.opts.limits.line_max, 4 * fields + 4);
	assert_int_equal(c.opts.limits.frame_max, 5 + 3 + fields);

	/* An override of a field limit moves them too. */
	expect_set(&c, "limits.payload_max=4000", "");
	expect_config_check(&c, "");
	assert_int_equal(c.opts.limits.line_max, 4 * (fields + 1000) + 4);
	sluiced_config_free(&c);

	parse_ok("limits: {payload_max: 3000, line_max: 512}\n", &c);
	assert_int_equal(c.opts.limits.line_max, 512);
	assert_int_equal(c.opts.limits.frame_max, 5 + 3 + 255 + 4096 + 3000);
	sluiced_config_free(&c);
}

/* The example in docs/configuration.md, found from this file's path. */
static void
test_config_docs_example_loads(void **state)
{
	char path[PATH_MAX], *text, *start, *end, *slash;
	struct sluiced_config c;
	FILE *f;
	long len;

	(void)state;
	snprintf(path, sizeof(path), "%s", __FILE__);
	slash = strrchr(path, '/');
	if (!slash || path[0] != '/')
		skip();
	*slash = '\0';
	slash = strrchr(path, '/');
	if (!slash)
		skip();
	snprintf(slash, sizeof(path) - (size_t)(slash - path),
		 "/docs/configuration.md");
	f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot read %s", path);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	text = malloc((size_t)len + 1);
	assert_non_null(text);
	assert_int_equal(fread(text, 1, (size_t)len, f), (size_t)len);
	text[len] = '\0';
	fclose(f);

	start = strstr(text, "## A complete example");
	assert_non_null(start);
	start = strstr(start, "```yaml\n");
	assert_non_null(start);
	start += strlen("```yaml\n");
	end = strstr(start, "\n```");
	assert_non_null(end);
	end[1] = '\0';
	parse_ok(start, &c);
	assert_int_equal(c.nroutes, 4);
	assert_int_equal(c.ninputs, 2);
	/* The routes share one dead-letter file, and the endpoint has a
	 * token, as the example's comments say. */
	assert_true(c.routes[0].has_dead_letter);
	assert_string_equal(c.routes[0].dead_letter.path,
			    c.routes[1].dead_letter.path);
	assert_non_null(c.admin.token);
	sluiced_config_free(&c);
	free(text);
}

/* ---- errors ---- */

static void
test_config_error_unknown_and_repeated_keys(void **state)
{
	(void)state;
	expect_error("runtim:\n  procs: 2\n",
		     "t.yaml:1: runtim: unknown key (did you mean "
		     "\"runtime\"?)");
	expect_error("runtime:\n  procs: 2\n  zzz: 1\n",
		     "t.yaml:3: runtime.zzz: unknown key (expected one of: "
		     "procs, ring_entries, sqpoll, sqpoll_cpu, stack_size, "
		     "cpus, numa, pin, cq_entries, sqpoll_idle_ms, "
		     "huge_pages, idle_spin)");
	expect_error("routes:\n  - name: a\n    wrkers: 2\n"
		     "    sink: {type: null}\n",
		     "t.yaml:3: routes[0].wrkers: unknown key (did you mean "
		     "\"workers\"?)");
	expect_error("routes:\n  - name: a\n    sink: {type: null, paht: x}\n",
		     "t.yaml:3: routes[0].sink.paht: unknown key (did you mean "
		     "\"path\"?)");
	expect_error("log:\n  level: info\n  level: warn\n",
		     "t.yaml:3: log.level: given twice (first on line 2)");
	/* A key with odd bytes is repeated escaped. */
	expect_error("\"a\\tb\": 1\n",
		     "t.yaml:1: a\\x09b: unknown key (expected one of: runtime, "
		     "io, limits, inputs, routes, admin, shutdown, log, "
		     "security)");
	expect_error("? [a]\n: 1\n",
		     "t.yaml:1: a key must be a plain name, found a list");
}

static void
test_config_error_wrong_shapes(void **state)
{
	(void)state;
	expect_error("- a\n", "t.yaml:1: the top level must be a mapping of "
			      "sections, found a list");
	expect_error("runtime: 5\n",
		     "t.yaml:1: runtime: expected a mapping, found a single "
		     "value");
	expect_error("runtime:\n  procs: [1, 2]\n",
		     "t.yaml:2: runtime.procs: expected a whole number, found "
		     "a list");
	expect_error("inputs: {name: x}\n",
		     "t.yaml:1: inputs: expected a list, found a mapping");
	expect_error("inputs:\n", "t.yaml:1: inputs: expected a list, found "
				  "nothing");
	expect_error("routes:\n  - 5\n",
		     "t.yaml:2: routes[0]: expected a mapping, found a single "
		     "value");
	expect_error("routes:\n  - name: a\n    sink: null\n",
		     "t.yaml:3: routes[0].sink: expected a mapping, found a "
		     "single value");
	expect_error("routes: []\n",
		     "t.yaml:1: routes: no routes (leave the key out for the "
		     "default)");
	expect_error("log: {level: [debug]}\n",
		     "t.yaml:1: log.level: expected log level, found a list");
}

static void
test_config_error_values(void **state)
{
	(void)state;
	expect_error("runtime:\n  sqpoll: yes\n",
		     "t.yaml:2: runtime.sqpoll: expected true or false, found "
		     "\"yes\"");
	expect_error("runtime:\n  sqpoll: True\n",
		     "t.yaml:2: runtime.sqpoll: expected true or false, found "
		     "\"True\"");
	expect_error("runtime:\n  procs: two\n",
		     "t.yaml:2: runtime.procs: expected a whole number, found "
		     "\"two\"");
	expect_error("runtime:\n  procs: 0x10\n",
		     "t.yaml:2: runtime.procs: expected a whole number, found "
		     "\"0x10\"");
	expect_error("runtime:\n  procs: 300\n",
		     "t.yaml:2: runtime.procs: 300 is out of range (0 to 256)");
	expect_error("runtime:\n  procs: -1\n",
		     "t.yaml:2: runtime.procs: -1 is out of range (0 to 256)");
	expect_error("runtime:\n  procs: 99999999999999999999999\n",
		     "t.yaml:2: runtime.procs: 99999999999999999999999 is out "
		     "of range (0 to 256)");
	expect_error("runtime:\n  sqpoll_cpu: -2\n",
		     "t.yaml:2: runtime.sqpoll_cpu: -2 is out of range (-1 to "
		     "1023)");
	expect_error("runtime:\n  stack_size: 8KiB\n",
		     "t.yaml:2: runtime.stack_size: 8KiB is out of range "
		     "(16KiB to 1GiB)");
	expect_error("runtime:\n  ring_entries: 0\n",
		     "t.yaml:2: runtime.ring_entries: 0 is out of range (1 to "
		     "32768)");
	expect_error("runtime:\n  procs:\n\nlog: {level: info}\n",
		     "t.yaml:2: runtime.procs: missing value (expected a whole "
		     "number)");
	expect_error("admin:\n  token: ~\n",
		     "t.yaml:2: admin.token: missing value (expected a "
		     "string)");
	expect_error("log: {level: verbose}\n",
		     "t.yaml:1: log.level: unknown log level \"verbose\" "
		     "(debug, info, warn, error)");
	expect_error("routes:\n  - name: a\n    match: regex\n"
		     "    sink: {type: null}\n",
		     "t.yaml:3: routes[0].match: unknown match \"regex\" "
		     "(exact, prefix, glob, any)");
	expect_error("routes:\n  - name: a\n    fold: avg\n"
		     "    sink: {type: null}\n",
		     "t.yaml:3: routes[0].fold: unknown fold \"avg\" (latest, "
		     "sum, max, keep-all)");
	expect_error("inputs:\n  - {name: a, type: sctp, addr: \":1\"}\n",
		     "t.yaml:2: inputs[0].type: unknown input type \"sctp\" "
		     "(tcp, udp, unix, unix-dgram)");
	expect_error("inputs:\n  - {name: a, format: json, addr: \":1\"}\n",
		     "t.yaml:2: inputs[0].format: unknown format \"json\" "
		     "(lines, frames)");
	expect_error("inputs:\n  - {name: a, addr: \":1\", max_buffered: 0}\n",
		     "t.yaml:2: inputs[0].max_buffered: 0 is out of range "
		     "(1 to 1GiB)");
	expect_error("inputs:\n  - {name: a, addr: \":1\", max_buffered: 2GiB}\n",
		     "t.yaml:2: inputs[0].max_buffered: 2GiB is out of range "
		     "(1 to 1GiB)");
	expect_error("inputs:\n  - name: a\n    type: udp\n"
		     "    addr: \":1\"\n    max_buffered: 64KiB\n",
		     "t.yaml:5: inputs[0].max_buffered: only stream inputs "
		     "(tcp, unix) hold bytes per connection");
	expect_error("routes:\n  - name: a\n    workers: 0\n"
		     "    sink: {type: null}\n",
		     "t.yaml:3: routes[0].workers: 0 is out of range (1 to "
		     "1024)");
	expect_error("routes:\n  - name: a\n    retry: {rate: 1.2.3}\n"
		     "    sink: {type: null}\n",
		     "t.yaml:3: routes[0].retry.rate: expected a number of "
		     "retries per second (e.g. 10 or 0.5), found \"1.2.3\"");
	expect_error("routes:\n  - name: a\n    retry: {rate: 2000000}\n"
		     "    sink: {type: null}\n",
		     "t.yaml:3: routes[0].retry.rate: 2000000 is out of range "
		     "(0 to 1000000)");
}

static void
test_config_error_sizes_and_durations_in_place(void **state)
{
	(void)state;
	expect_error("limits:\n  payload_max: 2GiB\n",
		     "t.yaml:2: limits.payload_max: 2GiB is out of range (1 to "
		     "1GiB)");
	expect_error("limits:\n  kind_max: 300\n",
		     "t.yaml:2: limits.kind_max: 300 is out of range (1 to "
		     "255)");
	expect_error("limits:\n  key_max: 5000\n",
		     "t.yaml:2: limits.key_max: 5000 is out of range (1 to "
		     "4KiB)");
	expect_error("limits:\n  payload_max: 1MiBs\n",
		     "t.yaml:2: limits.payload_max: bad size \"1MiBs\": "
		     "unknown unit \"MiBs\" (KiB, MiB, GiB, KB, MB, GB)");
	expect_error("limits:\n  payload_max: -1\n",
		     "t.yaml:2: limits.payload_max: negative size \"-1\"");
	expect_error("shutdown:\n  drain_timeout: 10\n",
		     "t.yaml:2: shutdown.drain_timeout: bad duration \"10\": "
		     "missing unit (ns, us, ms, s, m, h)");
	expect_error("admin:\n  timeout: 0s\n",
		     "t.yaml:2: admin.timeout: 0s is out of range (1ms to 1h)");
	expect_error("routes:\n  - name: a\n    backoff: {base: -5ms}\n"
		     "    sink: {type: null}\n",
		     "t.yaml:3: routes[0].backoff.base: negative duration "
		     "\"-5ms\"");
}

/* The message the brief of the format gives, at line 14. */
static void
test_config_error_sink_type_names_file_line_and_path(void **state)
{
	(void)state;
	expect_error_at("sluiced.yaml",
			"# sluiced\n"
			"inputs:\n"
			"  - name: tcp\n"
			"    addr: \"127.0.0.1:7400\"\n"
			"routes:\n"
			"  - name: orders\n"
			"    match: prefix\n"
			"    kind: order.\n"
			"    sink:\n"
			"      type: stdout\n"
			"  - name: audit\n"
			"    match: any\n"
			"    sink:\n"
			"      type: nul\n",
			"sluiced.yaml:14: routes[1].sink.type: unknown sink type "
			"\"nul\" (null, stdout, file, tcp, plugin)",
			__LINE__);
}

static void
test_config_error_required_keys(void **state)
{
	(void)state;
	expect_error("routes:\n  - name: a\n",
		     "t.yaml:2: routes[0]: missing key \"sink\"");
	expect_error("routes:\n  - sink: {type: null}\n",
		     "t.yaml:2: routes[0]: missing key \"name\"");
	expect_error("routes:\n  - name: a\n    sink: {sync: true}\n",
		     "t.yaml:3: routes[0].sink: missing key \"type\"");
	expect_error("inputs:\n  - name: a\n",
		     "t.yaml:2: inputs[0]: missing key \"addr\"");
	expect_error("routes:\n  - name: a\n    sink:\n      type: file\n",
		     "t.yaml:4: routes[0].sink: missing key \"path\" (a file "
		     "sink needs it)");
	expect_error("routes:\n  - name: a\n    sink: {type: tcp}\n",
		     "t.yaml:3: routes[0].sink: missing key \"addr\" (a tcp "
		     "sink needs it)");
	expect_error("routes:\n  - name: a\n    sink: {type: null}\n"
		     "    dead_letter: {type: plugin}\n",
		     "t.yaml:4: routes[0].dead_letter: missing key \"plugin\" "
		     "(a plugin sink needs it)");
	expect_error("routes:\n  - name: a\n    match: exact\n"
		     "    sink: {type: null}\n",
		     "t.yaml:2: routes[0]: missing key \"kind\" (match exact "
		     "needs a pattern)");
}

static void
test_config_error_sink_keys_per_type(void **state)
{
	(void)state;
	expect_error("routes:\n  - name: a\n    sink:\n      type: tcp\n"
		     "      addr: 127.0.0.1:9\n      path: /tmp/x\n",
		     "t.yaml:6: routes[0].sink.path: not used by a tcp sink");
	expect_error("routes:\n  - name: a\n    sink: {type: stdout, "
		     "format: frames}\n",
		     "t.yaml:3: routes[0].sink.format: not used by a stdout "
		     "sink");
	expect_error("routes:\n  - name: a\n    sink: {type: null, conns: 2}\n",
		     "t.yaml:3: routes[0].sink.conns: not used by a null sink");
	expect_error("routes:\n  - name: a\n    sink: {type: tcp, addr: "
		     "\"127.0.0.1:0\"}\n",
		     "t.yaml:3: routes[0].sink.addr: port 0 cannot be "
		     "connected to");
	expect_error("routes:\n  - name: a\n    sink: {type: tcp, addr: "
		     "\"127.0.0.1:70000\"}\n",
		     "t.yaml:3: routes[0].sink.addr: bad address "
		     "\"127.0.0.1:70000\": the port is out of range (0 to "
		     "65535)");
	expect_error("routes:\n  - name: a\n    sink: {type: file, path: \"\"}\n",
		     "t.yaml:3: routes[0].sink.path: the path is empty");
	expect_error("routes:\n  - name: a\n    sink: {type: file, path: x}\n"
		     "  - name: b\n    sink: {type: file, path: x}\n",
		     "t.yaml:5: routes[1].sink.path: the file \"x\" is also "
		     "written by routes[0].sink");
	expect_error("routes:\n  - name: a\n    sink: {type: null}\n"
		     "    dead_letter: {type: file, path: d}\n"
		     "  - name: b\n    sink: {type: null}\n"
		     "    dead_letter: {type: file, path: d, sync: false}\n",
		     "t.yaml:7: routes[1].dead_letter.path: the file \"d\" is "
		     "also written by routes[0].dead_letter");
}

static void
test_config_error_routes_across_keys(void **state)
{
	(void)state;
	expect_error("routes:\n  - name: a\n    sink: {type: null}\n"
		     "  - name: a\n    sink: {type: null}\n",
		     "t.yaml:4: routes[1].name: duplicate route name \"a\" "
		     "(routes[0] has it)");
	expect_error("routes:\n  - {name: a, default: true, sink: {type: "
		     "null}}\n  - {name: b, default: true, sink: {type: "
		     "null}}\n",
		     "t.yaml:3: routes[1].default: a second default route "
		     "(routes[0], \"a\", is one already)");
	expect_error("routes:\n  - {name: a, default: true, kind: x, sink: "
		     "{type: null}}\n",
		     "t.yaml:2: routes[0].kind: the default route takes no "
		     "pattern (it gets every event no other route matches)");
	expect_error("routes:\n  - {name: a, default: true, key_prefix: x, "
		     "sink: {type: null}}\n",
		     "t.yaml:2: routes[0].key_prefix: the default route takes "
		     "no key prefix");
	expect_error("routes:\n  - name: a\n    kind: x\n"
		     "    sink: {type: null}\n",
		     "t.yaml:3: routes[0].kind: match any takes no pattern "
		     "(set match to exact, prefix or glob)");
	expect_error("routes:\n  - name: a\n    match: prefix\n    kind: \"\"\n"
		     "    sink: {type: null}\n",
		     "t.yaml:4: routes[0].kind: the pattern is empty (match "
		     "prefix needs one)");
	expect_error("routes:\n  - name: a\n    match: glob\n    kind: \"a[b\"\n"
		     "    sink: {type: null}\n",
		     "t.yaml:4: routes[0].kind: glob \"a[b\": '[' at offset 1 "
		     "is not closed");
	expect_error("limits: {kind_max: 3}\nroutes:\n  - name: a\n"
		     "    match: exact\n    kind: abcd\n    sink: {type: null}\n",
		     "t.yaml:5: routes[0].kind: the pattern is longer than "
		     "limits.kind_max (3): it can never match");
	expect_error("routes:\n  - name: a\n    keep_max: 4\n"
		     "    sink: {type: null}\n",
		     "t.yaml:3: routes[0].keep_max: only used with fold "
		     "keep-all (fold is latest)");
	expect_error("routes:\n  - name: a\n    backoff: {base: 2s, cap: 1s}\n"
		     "    sink: {type: null}\n",
		     "t.yaml:3: routes[0].backoff.cap: 1s is below "
		     "backoff.base (2s)");
	expect_error("routes:\n  - name: a b\n    sink: {type: null}\n",
		     "t.yaml:2: routes[0].name: a name is 1 to 64 letters, "
		     "digits, '_', '-' or '.'");
}

static void
test_config_error_inputs_and_admin(void **state)
{
	(void)state;
	expect_error("inputs:\n  - {name: a, addr: /tmp/s}\n",
		     "t.yaml:2: inputs[0].addr: a tcp input needs HOST:PORT, "
		     "not a socket path");
	expect_error("inputs:\n  - {name: a, type: unix-dgram, addr: "
		     "\"127.0.0.1:1\"}\n",
		     "t.yaml:2: inputs[0].addr: a unix-dgram input needs a "
		     "socket path (/path, @name or unix:/path)");
	expect_error("inputs:\n  - {name: a, addr: \"localhost:80\"}\n",
		     "t.yaml:2: inputs[0].addr: bad address \"localhost:80\" "
		     "(expected HOST:PORT with a numeric IPv4 or [IPv6] host, "
		     "or a Unix socket path: /path, @name or unix:/path)");
	expect_error("inputs:\n  - {name: a, addr: \"127.0.0.1:99999\"}\n",
		     "t.yaml:2: inputs[0].addr: bad address "
		     "\"127.0.0.1:99999\": the port is out of range (0 to "
		     "65535)");
	expect_error("inputs:\n  - {name: a, addr: \":1\"}\n"
		     "  - {name: a, addr: \":2\"}\n",
		     "t.yaml:3: inputs[1].name: duplicate input name \"a\" "
		     "(inputs[0] has it)");
	expect_error("admin:\n  token: \"two words\"\n",
		     "t.yaml:2: admin.token: a token is 1 to 256 visible ASCII "
		     "characters, no spaces (or \"\" for none)");
	expect_error("admin:\n  token: \"a\\0b\"\n",
		     "t.yaml:2: admin.token: contains a NUL byte");
	expect_error("admin:\n  addr: \"127.0.0.1\"\n",
		     "t.yaml:2: admin.addr: bad address \"127.0.0.1\" "
		     "(expected HOST:PORT with a numeric IPv4 or [IPv6] host, "
		     "or a Unix socket path: /path, @name or unix:/path)");
}

static void
test_config_error_yaml_features(void **state)
{
	(void)state;
	expect_error("log: &l\n  level: info\nadmin: *l\n",
		     "t.yaml:3: YAML aliases are not supported: write the "
		     "value out");
	expect_error("log: {level: info}\n---\nlog: {level: warn}\n",
		     "t.yaml:2: a second YAML document: the file must hold "
		     "one");
}

/* libyaml's own message, at libyaml's line. */
static void
test_config_error_yaml_syntax_line(void **state)
{
	(void)state;
	expect_error("routes:\n  - name: a\n   sink: x\n",
		     "t.yaml:3: syntax error: did not find expected '-' "
		     "indicator (while parsing a block collection on line 2)");
	expect_error("log: {level: info\n\nadmin: {}\n",
		     "t.yaml:3: syntax error: did not find expected ',' or "
		     "'}' (while parsing a flow mapping on line 1)");
	expect_error("log:\n  level: info\n  bad: indent: here\n",
		     "t.yaml:3: syntax error: mapping values are not allowed "
		     "in this context");
	/* Reader errors carry an offset, not a mark. */
	expect_error("log:\n  level: info\n\x01\n",
		     "t.yaml:3: syntax error: control characters are not "
		     "allowed");
}

/* ---- loading files ---- */

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static void
test_config_load_names_the_file(void **state)
{
	struct sluiced_config c;
	char path[PATH_MAX], err[ERR_LEN], want[PATH_MAX + 128];

	(void)state;
	snprintf(path, sizeof(path), "%s/ok.yaml", test_dir);
	write_file(path, full_yaml);
	assert_int_equal(sluiced_config_load(path, &c, err, sizeof(err)), 0);
	assert_string_equal(c.file, path);
	assert_full_routes(&c);
	sluiced_config_free(&c);

	snprintf(path, sizeof(path), "%s/bad.yaml", test_dir);
	write_file(path, "log:\n  level: loud\n");
	assert_int_equal(sluiced_config_load(path, &c, err, sizeof(err)),
			 -EINVAL);
	snprintf(want, sizeof(want),
		 "%s:2: log.level: unknown log level \"loud\" (debug, info, "
		 "warn, error)", path);
	assert_string_equal(err, want);

	snprintf(path, sizeof(path), "%s/missing.yaml", test_dir);
	assert_int_equal(sluiced_config_load(path, &c, err, sizeof(err)),
			 -ENOENT);
	snprintf(want, sizeof(want),
		 "%s: cannot read: No such file or directory", path);
	assert_string_equal(err, want);
	assert_null(c.routes);
}

/* ---- overrides ---- */

static void
test_config_set_values(void **state)
{
	struct sluiced_config c;

	(void)state;
	parse_ok("routes:\n  - name: a\n    sink: {type: null}\n", &c);
	expect_set(&c, "routes[0].workers=8", "");
	assert_int_equal(c.routes[0].route.workers, 8);
	expect_set(&c, "admin.addr=127.0.0.1:9000", "");
	assert_string_equal(c.admin.addr, "127.0.0.1:9000");
	expect_set(&c, "admin.token=a=b", "");
	assert_string_equal(c.admin.token, "a=b");
	expect_set(&c, "runtime.stack_size=1MiB", "");
	assert_int_equal(c.runtime.stack_size, 1 << 20);
	expect_set(&c, "routes[0].backoff.cap=2h", "");
	assert_int_equal(c.routes[0].route.fold.backoff_cap_ns,
			 7200 * SL_NSEC_PER_SEC);
	expect_set(&c, "routes[0].fold=sum", "");
	expect_set(&c, "inputs[0].max_conns=10", "");
	assert_int_equal(c.inputs[0].in.max_conns, 10);
	expect_set(&c, "inputs[0].max_buffered=1MiB", "");
	assert_int_equal(c.inputs[0].in.max_buffered, 1 << 20);
	expect_config_check(&c, "");
	/* Checking derives the fold's merge. */
	assert_ptr_equal(c.routes[0].route.fold.merge, sluiced_merge_sum);

	/* Related keys change together; the check waits for both. */
	expect_set(&c, "routes[0].sink.type=file", "");
	expect_config_check(&c, "--set: routes[0].sink: missing key \"path\" (a file "
			 "sink needs it)");
	expect_set(&c, "routes[0].sink.path=/tmp/out.log", "");
	expect_config_check(&c, "");

	/* A dead-letter key brings the dead-letter sink into being. */
	assert_false(c.routes[0].has_dead_letter);
	expect_set(&c, "routes[0].dead_letter.type=stdout", "");
	assert_true(c.routes[0].has_dead_letter);
	assert_int_equal(c.routes[0].dead_letter.type, SLUICED_SINK_STDOUT);
	expect_config_check(&c, "");
	sluiced_config_free(&c);
}

static void
test_config_set_errors(void **state)
{
	struct sluiced_config c;

	(void)state;
	parse_ok("routes:\n  - name: a\n    sink: {type: null}\n", &c);
	expect_set(&c, "routes[0].workers=0",
		   "--set: routes[0].workers: 0 is out of range (1 to 1024)");
	assert_int_equal(c.routes[0].route.workers, 4);
	expect_set(&c, "routes[0].wrkers=1",
		   "--set: routes[0].wrkers: unknown key (did you mean "
		   "\"workers\"?)");
	expect_set(&c, "routes[3].workers=1",
		   "--set: routes[3]: no such route (there is 1)");
	expect_set(&c, "routes.workers=1",
		   "--set: routes: expected an index, e.g. routes[0]");
	expect_set(&c, "admin=1",
		   "--set: admin: not a single value: set one of its keys, "
		   "e.g. admin.addr");
	expect_set(&c, "routes[0].sink=1",
		   "--set: routes[0].sink: not a single value: set one of its "
		   "keys, e.g. routes[0].sink.type");
	expect_set(&c, "routes[0].workers.x=1",
		   "--set: routes[0].workers: a single value has no keys "
		   "under it");
	expect_set(&c, "workers", "--set: \"workers\": expected KEY=VALUE");
	expect_set(&c, "=5", "--set: bad key path \"\": expected a key name");
	expect_set(&c, "log..level=x",
		   "--set: bad key path \".level\": expected a key name");
	expect_set(&c, "log.level=loud",
		   "--set: log.level: unknown log level \"loud\" (debug, info, "
		   "warn, error)");
	expect_set(&c, "shutdown.drain_timeout=5",
		   "--set: shutdown.drain_timeout: bad duration \"5\": missing "
		   "unit (ns, us, ms, s, m, h)");
	expect_set(&c, "routes[0].sink.type=",
		   "--set: routes[0].sink.type: unknown sink type \"\" (null, "
		   "stdout, file, tcp, plugin)");

	/* A failed override of a dead-letter key creates nothing. */
	expect_set(&c, "routes[0].dead_letter.conns=0",
		   "--set: routes[0].dead_letter.conns: 0 is out of range (1 "
		   "to 256)");
	assert_false(c.routes[0].has_dead_letter);
	expect_config_check(&c, "");
	sluiced_config_free(&c);
}

/* Checks after overrides name each value's own origin. */
static void
test_config_set_then_check_names_origins(void **state)
{
	struct sluiced_config c;

	(void)state;
	parse_ok("routes:\n  - name: a\n    sink: {type: null}\n"
		 "  - name: b\n    sink: {type: null}\n", &c);
	expect_set(&c, "routes[1].name=a", "");
	expect_config_check(&c, "--set: routes[1].name: duplicate route name \"a\" "
			 "(routes[0] has it)");
	expect_set(&c, "routes[1].name=c", "");
	expect_config_check(&c, "");

	/* The file's value, reported at its line after an override made it
	 * wrong. */
	expect_set(&c, "routes[0].sink.type=tcp", "");
	expect_set(&c, "routes[0].sink.addr=127.0.0.1:9", "");
	expect_config_check(&c, "");
	expect_set(&c, "routes[1].sink.conns=3", "");
	expect_config_check(&c, "--set: routes[1].sink.conns: not used by a null "
			 "sink");
	sluiced_config_free(&c);

	parse_ok("routes:\n  - name: a\n    sink: {type: file, path: x}\n",
		 &c);
	expect_set(&c, "routes[0].sink.type=stdout", "");
	expect_config_check(&c, "t.yaml:3: routes[0].sink.path: not used by a stdout "
			 "sink");
	sluiced_config_free(&c);
}

/* ---- the admin section ---- */

static void
test_config_admin_off_and_token(void **state)
{
	static const char *const off[] = {
		"admin: {addr: off}\n",
		"admin: {addr: \"\"}\n",
		"admin:\n  addr: \"off\"\n",
	};
	struct sluiced_config c;

	(void)state;
	for (size_t i = 0; i < SL_ARRAY_SIZE(off); i++) {
		parse_ok(off[i], &c);
		assert_false(c.admin_enabled);
		sluiced_config_free(&c);
	}

	/* Off and on again by override; "" is no token. */
	parse_ok("admin: {token: abc}\n", &c);
	assert_true(c.admin_enabled);
	assert_string_equal(c.admin.token, "abc");
	expect_set(&c, "admin.addr=off", "");
	expect_set(&c, "admin.token=", "");
	expect_config_check(&c, "");
	assert_false(c.admin_enabled);
	assert_null(c.admin.token);
	expect_set(&c, "admin.addr=127.0.0.1:0", "");
	expect_config_check(&c, "");
	assert_true(c.admin_enabled);
	assert_string_equal(c.admin.addr, "127.0.0.1:0");
	sluiced_config_free(&c);

	parse_ok("admin: {token: \"\"}\n", &c);
	assert_null(c.admin.token);
	sluiced_config_free(&c);

	/* Anything else must be an address. */
	expect_error("admin: {addr: of}\n",
		     "t.yaml:1: admin.addr: bad address \"of\" (expected "
		     "HOST:PORT with a numeric IPv4 or [IPv6] host, or a Unix "
		     "socket path: /path, @name or unix:/path)");
	expect_error("admin:\n  max_request: 100\n",
		     "t.yaml:2: admin.max_request: 100 is out of range (256 to "
		     "64KiB)");
	expect_error("admin:\n  max_request: 1MiB\n",
		     "t.yaml:2: admin.max_request: 1MiB is out of range (256 "
		     "to 64KiB)");
	expect_error("admin:\n  tokn: x\n",
		     "t.yaml:2: admin.tokn: unknown key (did you mean "
		     "\"token\"?)");
}

/* ---- deployment knobs: runtime placement, io buffers, security ---- */

static void
test_config_knobs_read_back(void **state)
{
	struct sluiced_config c;

	(void)state;
	parse_ok("runtime:\n"
		 "  procs: 2\n"
		 "  cpus: \"0-1,3\"\n"
		 "  numa: interleave\n"
		 "  pin: false\n"
		 "  ring_entries: 1024\n"
		 "  cq_entries: 4096\n"
		 "  sqpoll: true\n"
		 "  sqpoll_cpu: 1\n"
		 "  sqpoll_idle_ms: 50\n"
		 "  stack_size: 256KiB\n"
		 "  huge_pages: true\n"
		 "  idle_spin: 150us\n"
		 "io:\n"
		 "  buffer_size: 16KiB\n"
		 "  buffers: 64\n"
		 "  buffers_max: 512\n"
		 "security:\n"
		 "  allow_root: true\n",
		 &c);
	assert_int_equal(c.runtime.nprocs, 2);
	assert_string_equal(c.runtime.cpus, "0-1,3");
	assert_string_equal(c.runtime.numa, "interleave");
	assert_false(c.runtime.pin);
	assert_int_equal(c.runtime.ring_entries, 1024);
	assert_int_equal(c.runtime.cq_entries, 4096);
	assert_true(c.runtime.sqpoll);
	assert_int_equal(c.runtime.sqpoll_cpu, 1);
	assert_int_equal(c.runtime.sqpoll_idle_ms, 50);
	assert_int_equal(c.runtime.stack_size, 256 * 1024);
	assert_true(c.runtime.huge_pages);
	assert_int_equal(c.runtime.idle_spin_ns, 150 * SL_NSEC_PER_USEC);
	assert_int_equal(c.io.buf_size, 16 * 1024);
	assert_int_equal(c.io.bufs_initial, 64);
	assert_int_equal(c.io.bufs_max, 512);
	assert_true(c.allow_root);

	/* Every form of numa and cpus the runtime reads, by override. */
	expect_set(&c, "runtime.numa=local", "");
	assert_string_equal(c.runtime.numa, "local");
	expect_set(&c, "runtime.numa=0-1,3", "");
	assert_string_equal(c.runtime.numa, "0-1,3");
	expect_set(&c, "runtime.cpus=7", "");
	expect_set(&c, "runtime.cpus=", "");
	assert_string_equal(c.runtime.cpus, "");
	expect_set(&c, "runtime.idle_spin=0", "");
	assert_int_equal(c.runtime.idle_spin_ns, 0);
	expect_set(&c, "security.allow_root=false", "");
	assert_false(c.allow_root);
	expect_config_check(&c, "");
	sluiced_config_free(&c);
}

static void
test_config_error_knobs(void **state)
{
	(void)state;
	expect_error("runtime:\n  cpus: \"0-\"\n",
		     "t.yaml:2: runtime.cpus: bad CPU list \"0-\" (expected "
		     "numbers and ranges: \"0-3,8\")");
	expect_error("runtime:\n  cpus: \"3-1\"\n",
		     "t.yaml:2: runtime.cpus: bad CPU list \"3-1\" (expected "
		     "numbers and ranges: \"0-3,8\")");
	expect_error("runtime:\n  cpus: \"1,,2\"\n",
		     "t.yaml:2: runtime.cpus: bad CPU list \"1,,2\" (expected "
		     "numbers and ranges: \"0-3,8\")");
	expect_error("runtime:\n  cpus: \"1,\"\n",
		     "t.yaml:2: runtime.cpus: bad CPU list \"1,\" (ends in a "
		     "comma)");
	expect_error("runtime:\n  cpus: all\n",
		     "t.yaml:2: runtime.cpus: bad CPU list \"all\" (expected "
		     "numbers and ranges: \"0-3,8\")");
	expect_error("runtime:\n  cpus: \"0-4096\"\n",
		     "t.yaml:2: runtime.cpus: CPU list \"0-4096\": CPU numbers "
		     "go up to 1023");
	expect_error("runtime:\n  cpus: \"99999999999999999999999\"\n",
		     "t.yaml:2: runtime.cpus: CPU list "
		     "\"99999999999999999999999\": CPU numbers go up to 1023");
	expect_error("runtime:\n  numa: \"0-2000\"\n",
		     "t.yaml:2: runtime.numa: node list \"0-2000\": node "
		     "numbers go up to 1023");
	expect_error("runtime:\n  numa: remote\n",
		     "t.yaml:2: runtime.numa: bad NUMA policy \"remote\" "
		     "(local, interleave, or a list of nodes such as \"0\" or "
		     "\"0-1\")");
	expect_error("runtime:\n  numa: \"0-x\"\n",
		     "t.yaml:2: runtime.numa: bad node list \"0-x\" (expected "
		     "numbers and ranges: \"0-3,8\")");
	expect_error("runtime:\n  cq_entries: 70000\n",
		     "t.yaml:2: runtime.cq_entries: 70000 is out of range (0 "
		     "to 65536)");
	expect_error("runtime:\n  idle_spin: 1s\n",
		     "t.yaml:2: runtime.idle_spin: 1s is out of range (0s to "
		     "100ms)");
	expect_error("runtime:\n  pin: 1\n",
		     "t.yaml:2: runtime.pin: expected true or false, found "
		     "\"1\"");
	expect_error("io:\n  buffer_size: 128\n",
		     "t.yaml:2: io.buffer_size: 128 is out of range (256 to "
		     "1MiB)");
	expect_error("io:\n  buffers_max: 40000\n",
		     "t.yaml:2: io.buffers_max: 40000 is out of range (1 to "
		     "32768)");
	expect_error("io:\n  buffers: 0\n",
		     "t.yaml:2: io.buffers: 0 is out of range (1 to 32768)");
	expect_error("security:\n  allow_root: yes\n",
		     "t.yaml:2: security.allow_root: expected true or false, "
		     "found \"yes\"");

	/* Keys that must agree, named where the offending one was given. */
	expect_error("runtime:\n  ring_entries: 512\n  cq_entries: 256\n",
		     "t.yaml:3: runtime.cq_entries: 256 is below "
		     "runtime.ring_entries (512): every submission needs room "
		     "for its completion");
	expect_error("runtime:\n  sqpoll_cpu: 1\n",
		     "t.yaml:2: runtime.sqpoll_cpu: set, but runtime.sqpoll is "
		     "false");
	expect_error("runtime:\n  sqpoll_idle_ms: 10\n",
		     "t.yaml:2: runtime.sqpoll_idle_ms: set, but "
		     "runtime.sqpoll is false");
	expect_error("io:\n  buffers_max: 100\n  buffers: 200\n",
		     "t.yaml:3: io.buffers: 200 is above io.buffers_max (100)");
	/* The default buffers (256) against a smaller maximum. */
	expect_error("io:\n  buffers_max: 100\n",
		     "t.yaml:2: io.buffers_max: 100 is below io.buffers (256)");
}

static void
test_config_admin_off_loopback_needs_token(void **state)
{
	static const char *const local[] = {
		"127.0.0.1:7401", "127.1.2.3:1", "[::1]:7401",
		"[::ffff:127.0.0.1]:7401", "/run/sluice/admin.sock",
		"@sluice-admin", "unix:/tmp/a.sock",
	};
	static const char *const remote[] = {
		"0.0.0.0:7401", "10.0.0.1:7401", "[::]:7401",
		"[2001:db8::1]:7401", "[::ffff:10.0.0.1]:7401", "128.0.0.1:1",
	};
	struct sluiced_config c;

	(void)state;
	for (size_t i = 0; i < SL_ARRAY_SIZE(local); i++)
		assert_true(sluiced_addr_local(local[i]));
	for (size_t i = 0; i < SL_ARRAY_SIZE(remote); i++)
		assert_false(sluiced_addr_local(remote[i]));
	assert_false(sluiced_addr_local("localhost:1"));
	assert_false(sluiced_addr_local(NULL));

	expect_error("admin:\n  addr: \"0.0.0.0:7401\"\n",
		     "t.yaml:2: admin.addr: \"0.0.0.0:7401\" is not a loopback "
		     "address and admin.token is not set: set a token, or "
		     "listen on 127.0.0.1 or a Unix socket");
	expect_error("admin:\n  addr: \"[::]:7401\"\n  token: \"\"\n",
		     "t.yaml:2: admin.addr: \"[::]:7401\" is not a loopback "
		     "address and admin.token is not set: set a token, or "
		     "listen on 127.0.0.1 or a Unix socket");
	parse_ok("admin:\n  addr: \"0.0.0.0:7401\"\n  token: s3cret\n", &c);
	assert_true(c.admin_enabled);
	sluiced_config_free(&c);

	/* By override: the check after the last one decides, so the token
	 * may come after the address. */
	parse_ok("", &c);
	expect_set(&c, "admin.addr=0.0.0.0:0", "");
	expect_config_check(&c, "--set: admin.addr: \"0.0.0.0:0\" is not a "
				"loopback address and admin.token is not set: "
				"set a token, or listen on 127.0.0.1 or a Unix "
				"socket");
	expect_set(&c, "admin.token=abc", "");
	expect_config_check(&c, "");
	sluiced_config_free(&c);

	/* Inputs may listen anywhere, but only where the file says: the
	 * defaults are loopback. */
	parse_ok("", &c);
	assert_true(sluiced_addr_local(c.inputs[0].in.addr));
	assert_true(sluiced_addr_local(c.admin.addr));
	sluiced_config_free(&c);
}

/* ---- reading with overrides, and what a reload cannot change ---- */

static void
test_config_read_file_then_overrides(void **state)
{
	const char *sets[] = {"routes[0].workers=2", "routes[0].workers=7",
			      "admin.addr=off"};
	const char *bad[] = {"routes[0].workers=2", "routes[0].wrkers=1"};
	const char *clash[] = {"routes[0].sink.type=file"};
	char path[PATH_MAX], err[ERR_LEN];
	struct sluiced_config c;

	(void)state;
	/* No file: the defaults, then the overrides in order. */
	assert_int_equal(sluiced_config_read(NULL, sets, 3, &c, err,
					     sizeof(err)),
			 0);
	assert_null(c.file);
	assert_int_equal(c.routes[0].route.workers, 7);
	assert_false(c.admin_enabled);
	assert_int_equal(c.ninputs, 1);
	sluiced_config_free(&c);

	snprintf(path, sizeof(path), "%s/read.yaml", test_dir);
	write_file(path, "routes:\n  - name: a\n    workers: 3\n"
			 "    sink: {type: null}\n");
	assert_int_equal(sluiced_config_read(path, sets, 1, &c, err,
					     sizeof(err)),
			 0);
	assert_string_equal(c.file, path);
	assert_int_equal(c.routes[0].route.workers, 2);
	assert_true(c.admin_enabled);
	sluiced_config_free(&c);

	/* A bad override, and a check that fails only once every override
	 * is in: each leaves nothing behind. */
	assert_int_equal(sluiced_config_read(path, bad, 2, &c, err,
					     sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "--set: routes[0].wrkers: unknown key (did "
				 "you mean \"workers\"?)");
	assert_null(c.routes);
	assert_int_equal(sluiced_config_read(path, clash, 1, &c, err,
					     sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "--set: routes[0].sink: missing key \"path\" "
				 "(a file sink needs it)");
	assert_null(c.strings_);

	/* A file that cannot be read. */
	snprintf(path, sizeof(path), "%s/none.yaml", test_dir);
	assert_int_equal(sluiced_config_read(path, NULL, 0, &c, err,
					     sizeof(err)),
			 -ENOENT);
	assert_non_null(strstr(err, "none.yaml: cannot read: No such file"));
}

static void
test_config_restart_keys(void **state)
{
	static const char base[] =
		"inputs:\n  - {name: a, addr: \"127.0.0.1:1\"}\n"
		"routes:\n  - {name: r, sink: {type: null}}\n";
	struct sluiced_config cur, next;
	char buf[64], text[512];

	(void)state;
	parse_ok(base, &cur);

	/* The same file; then other routes, drain timeout and log level,
	 * none of which waits for a restart. */
	parse_ok(base, &next);
	assert_int_equal(sluiced_config_restart_keys(&cur, &next, buf,
						     sizeof(buf)),
			 0);
	assert_string_equal(buf, "");
	sluiced_config_free(&next);
	parse_ok("inputs:\n  - {name: a, addr: \"127.0.0.1:1\"}\n"
		 "routes:\n  - {name: s, fold: sum, sink: {type: stdout}}\n"
		 "shutdown: {drain_timeout: 1s}\nlog: {level: debug}\n",
		 &next);
	assert_int_equal(sluiced_config_restart_keys(&cur, &next, buf,
						     sizeof(buf)),
			 0);
	sluiced_config_free(&next);

	/* Each section that shapes what runs, alone and together. */
	parse_ok("inputs:\n  - {name: a, addr: \"127.0.0.1:2\"}\n"
		 "routes:\n  - {name: r, sink: {type: null}}\n", &next);
	assert_int_equal(sluiced_config_restart_keys(&cur, &next, buf,
						     sizeof(buf)),
			 1);
	assert_string_equal(buf, "inputs");
	sluiced_config_free(&next);

	snprintf(text, sizeof(text),
		 "%sruntime: {procs: 3}\nlimits: {key_max: 100}\n"
		 "admin: {token: t}\n",
		 base);
	parse_ok(text, &next);
	assert_int_equal(sluiced_config_restart_keys(&cur, &next, buf,
						     sizeof(buf)),
			 3);
	assert_string_equal(buf, "runtime, limits, admin");
	/* A short buffer keeps what fits; the count is still right. */
	assert_int_equal(sluiced_config_restart_keys(&cur, &next, buf, 10), 3);
	assert_string_equal(buf, "runtime, ");
	sluiced_config_free(&next);

	/* The knobs added to runtime, the io buffers and security. */
	snprintf(text, sizeof(text),
		 "%sruntime: {idle_spin: 0, cpus: \"0\"}\n"
		 "io: {buffer_size: 8KiB}\nsecurity: {allow_root: true}\n",
		 base);
	parse_ok(text, &next);
	assert_int_equal(sluiced_config_restart_keys(&cur, &next, buf,
						     sizeof(buf)),
			 3);
	assert_string_equal(buf, "runtime, io, security");
	sluiced_config_free(&next);

	/* Off is off, whatever the address it would have had. */
	parse_ok("admin: {addr: off}\n", &next);
	sluiced_config_free(&cur);
	parse_ok("admin: {addr: \"\", timeout: 1s}\n", &cur);
	assert_int_equal(sluiced_config_restart_keys(&cur, &next, buf,
						     sizeof(buf)),
			 0);
	sluiced_config_free(&next);
	sluiced_config_free(&cur);
}

/* ---- durations and sizes ---- */

static void
expect_duration_at(const char *s, uint64_t want, int line)
{
	char why[256] = "";
	uint64_t ns = 12345;
	int r = sluiced_parse_duration(s, strlen(s), &ns, why, sizeof(why));

	if (r || ns != want)
		fail_msg("line %d: \"%s\": %d (%s) %llu, expected %llu", line,
			 s, r, why, (unsigned long long)ns,
			 (unsigned long long)want);
}
#define expect_duration(s, want) expect_duration_at((s), (want), __LINE__)

static void
expect_bad_duration_at(const char *s, const char *want, int line)
{
	char why[256] = "";
	uint64_t ns = 12345;
	int r = sluiced_parse_duration(s, strlen(s), &ns, why, sizeof(why));

	if (r != -EINVAL || strcmp(why, want) || ns != 12345)
		fail_msg("line %d: \"%s\": %d \"%s\", expected \"%s\"", line, s,
			 r, why, want);
}
#define expect_bad_duration(s, want)                                           \
	expect_bad_duration_at((s), (want), __LINE__)

static void
test_config_durations(void **state)
{
	(void)state;
	expect_duration("0", 0);
	expect_duration("0s", 0);
	expect_duration("1ns", 1);
	expect_duration("250ms", 250 * SL_NSEC_PER_MSEC);
	expect_duration("1.5s", 1500 * SL_NSEC_PER_MSEC);
	expect_duration(".5us", 500);
	expect_duration("2.s", 2 * SL_NSEC_PER_SEC);
	expect_duration("1h30m", 5400 * SL_NSEC_PER_SEC);
	expect_duration("1m0.25s", 60250 * SL_NSEC_PER_MSEC);
	expect_duration("1000s", 1000 * SL_NSEC_PER_SEC);
	/* Below a nanosecond is dropped, not rounded. */
	expect_duration("1.9ns", 1);
	expect_duration("0.3333333333333333333333s", 333333333);
	/* Exactly at the top, and one past it. */
	expect_duration("18446744073709551615ns", UINT64_MAX);
	expect_bad_duration("18446744073709551616ns",
			    "duration \"18446744073709551616ns\" is too long "
			    "(at most 2^64-1 ns, about 584 years)");
	expect_bad_duration("5124096h",
			    "duration \"5124096h\" is too long (at most 2^64-1 "
			    "ns, about 584 years)");
	expect_bad_duration("5124095h1h",
			    "duration \"5124095h1h\" is too long (at most "
			    "2^64-1 ns, about 584 years)");
	expect_bad_duration("-5ms", "negative duration \"-5ms\"");
	expect_bad_duration("-0", "negative duration \"-0\"");
	expect_bad_duration("5", "bad duration \"5\": missing unit (ns, us, "
				 "ms, s, m, h)");
	expect_bad_duration("1.5", "bad duration \"1.5\": missing unit (ns, "
				   "us, ms, s, m, h)");
	expect_bad_duration("5sec", "bad duration \"5sec\": unknown unit "
				    "\"sec\" (ns, us, ms, s, m, h)");
	expect_bad_duration("5MS", "bad duration \"5MS\": unknown unit \"MS\" "
				   "(ns, us, ms, s, m, h)");
	expect_bad_duration("", "bad duration \"\": expected a number and a "
				"unit (ns, us, ms, s, m, h), e.g. 250ms or 1.5s");
	expect_bad_duration("5 ms", "bad duration \"5 ms\": expected a number "
				    "and a unit (ns, us, ms, s, m, h), e.g. "
				    "250ms or 1.5s");
	expect_bad_duration("+5s", "bad duration \"+5s\": expected a number "
				   "and a unit (ns, us, ms, s, m, h), e.g. "
				   "250ms or 1.5s");
	expect_bad_duration("1e3s", "bad duration \"1e3s\": unknown unit "
				    "\"e\" (ns, us, ms, s, m, h)");
	expect_bad_duration("ms", "bad duration \"ms\": expected a number and "
				  "a unit (ns, us, ms, s, m, h), e.g. 250ms or "
				  "1.5s");
	expect_bad_duration(".s", "bad duration \".s\": expected a number and "
				  "a unit (ns, us, ms, s, m, h), e.g. 250ms or "
				  "1.5s");
}

static void
expect_size_at(const char *s, uint64_t want, int line)
{
	char why[256] = "";
	uint64_t v = 12345;
	int r = sluiced_parse_size(s, strlen(s), &v, why, sizeof(why));

	if (r || v != want)
		fail_msg("line %d: \"%s\": %d (%s) %llu, expected %llu", line,
			 s, r, why, (unsigned long long)v,
			 (unsigned long long)want);
}
#define expect_size(s, want) expect_size_at((s), (want), __LINE__)

static void
expect_bad_size_at(const char *s, const char *want, int line)
{
	char why[256] = "";
	uint64_t v = 12345;
	int r = sluiced_parse_size(s, strlen(s), &v, why, sizeof(why));

	if (r != -EINVAL || strcmp(why, want) || v != 12345)
		fail_msg("line %d: \"%s\": %d \"%s\", expected \"%s\"", line, s,
			 r, why, want);
}
#define expect_bad_size(s, want) expect_bad_size_at((s), (want), __LINE__)

static void
test_config_sizes(void **state)
{
	(void)state;
	expect_size("0", 0);
	expect_size("4096", 4096);
	expect_size("64KiB", 64 * 1024);
	expect_size("1MiB", 1 << 20);
	expect_size("3GiB", 3ull << 30);
	expect_size("10KB", 10000);
	expect_size("2MB", 2000000);
	expect_size("1GB", 1000000000);
	expect_size("1.5KiB", 1536);
	expect_size("0.5MB", 500000);
	expect_size("18446744073709551615", UINT64_MAX);
	expect_size("17179869183GiB", 17179869183ull << 30);
	expect_bad_size("17179869184GiB",
			"size \"17179869184GiB\" does not fit in 64 bits");
	expect_bad_size("18446744073709551616",
			"size \"18446744073709551616\" does not fit in 64 "
			"bits");
	expect_bad_size("1.3KiB",
			"size \"1.3KiB\" is not a whole number of bytes");
	expect_bad_size("0.5", "size \"0.5\" is not a whole number of bytes");
	expect_bad_size("-1KiB", "negative size \"-1KiB\"");
	expect_bad_size("1kib", "bad size \"1kib\": unknown unit \"kib\" (KiB, "
				"MiB, GiB, KB, MB, GB)");
	expect_bad_size("1TiB", "bad size \"1TiB\": unknown unit \"TiB\" "
				"(KiB, MiB, GiB, KB, MB, GB)");
	expect_bad_size("64 KiB", "bad size \"64 KiB\": expected a number of "
				  "bytes with an optional unit (KiB, MiB, GiB, "
				  "KB, MB, GB), e.g. 64KiB");
	expect_bad_size("", "bad size \"\": expected a number of bytes with an "
			    "optional unit (KiB, MiB, GiB, KB, MB, GB), e.g. "
			    "64KiB");
	expect_bad_size("KiB", "bad size \"KiB\": expected a number of bytes "
			       "with an optional unit (KiB, MiB, GiB, KB, MB, "
			       "GB), e.g. 64KiB");
	expect_bad_size("1KiB2", "bad size \"1KiB2\": expected a number of "
				 "bytes with an optional unit (KiB, MiB, GiB, "
				 "KB, MB, GB), e.g. 64KiB");
}

/* ---- fold merges ---- */

static struct sl_event *
event(const char *payload, uint64_t seq)
{
	struct sl_event *e = sl_event_new("n", 1, "k", 1, payload,
					  strlen(payload));

	assert_non_null(e);
	e->seq = seq;
	e->ts_ns = 1000 + seq;
	return e;
}

static void
assert_payload(const struct sl_event *e, const char *want)
{
	if (e->payload_len != strlen(want) ||
	    memcmp(sl_event_payload(e), want, e->payload_len))
		fail_msg("payload \"%.*s\", expected \"%s\"",
			 (int)e->payload_len, sl_event_payload(e), want);
}

static void
expect_sum(const char *a, const char *b, const char *want)
{
	struct sl_event *e = sluiced_merge_sum(event(a, 1), event(b, 2), NULL);

	assert_payload(e, want);
	/* The result stands for the newer event. */
	assert_int_equal(e->seq, 2);
	assert_int_equal(e->ts_ns, 1002);
	assert_int_equal(e->kind_len, 1);
	assert_memory_equal(sl_event_key(e), "k", 1);
	assert_int_equal(e->hash, sl_key_hash("k", 1));
	sl_event_unref(e);
}

static void
test_config_merge_sum(void **state)
{
	(void)state;
	expect_sum("5", "7", "12");
	expect_sum("-5", "+3", "-2");
	expect_sum("007", "0", "7");
	expect_sum("9223372036854775807", "1", "9223372036854775807");
	expect_sum("-9223372036854775808", "-1", "-9223372036854775808");
	expect_sum("-9223372036854775808", "9223372036854775807", "-1");
	/* Not numbers: the newer event as it is, nothing added. */
	expect_sum("5", "x", "x");
	expect_sum("x", "5", "5");
	expect_sum("5", "", "");
	expect_sum("5", "-", "-");
	expect_sum("5", " 7", " 7");
	expect_sum("1", "9223372036854775808", "9223372036854775808");
	expect_sum("1", "00000000000000000001", "00000000000000000001");
}

static void
expect_max(const char *a, const char *b, const char *want, uint64_t seq)
{
	struct sl_event *e = sluiced_merge_max(event(a, 1), event(b, 2), NULL);

	assert_payload(e, want);
	assert_int_equal(e->seq, seq);
	sl_event_unref(e);
}

static void
test_config_merge_max(void **state)
{
	(void)state;
	expect_max("5", "7", "7", 2);
	expect_max("7", "5", "7", 1);
	expect_max("-1", "-2", "-1", 1);
	expect_max("3", "3", "3", 2);	/* a tie keeps the newer */
	expect_max("9223372036854775807", "-9223372036854775808",
		   "9223372036854775807", 1);
	expect_max("100", "abc", "abc", 2);
	expect_max("abc", "1", "1", 2);
}

/* ---- building routes ---- */

struct build_test {
	struct sluiced_config c;
	int rc;
	char err[ERR_LEN];
	struct sluice_route *routes;
	size_t n;
};

static void
build_main(void *arg)
{
	struct build_test *t = arg;

	t->rc = sluiced_config_routes(&t->c, &t->routes, &t->n, t->err,
				      sizeof(t->err));
}

static const char *
sink_type(const struct sluice_sink *s)
{
	return s ? s->ops->type : "(none)";
}

static void
test_config_routes_build_sinks(void **state)
{
	struct build_test t = {0};
	char yaml[2048];

	(void)state;
	snprintf(yaml, sizeof(yaml),
		 "routes:\n"
		 "  - name: a\n"
		 "    match: exact\n"
		 "    kind: a\n"
		 "    fold: sum\n"
		 "    sink: {type: file, path: %s/a.log, sync: false}\n"
		 "    dead_letter: {type: stdout}\n"
		 "  - name: b\n"
		 "    match: prefix\n"
		 "    kind: b\n"
		 "    sink: {type: tcp, addr: \"127.0.0.1:9\", conns: 2}\n"
		 "    dead_letter: {type: stdout}\n"
		 "  - name: c\n"
		 "    default: true\n"
		 "    sink: {type: null}\n"
		 "    dead_letter: {type: file, path: %s/dead.log}\n"
		 "  - name: d\n"
		 "    match: glob\n"
		 "    kind: \"d*\"\n"
		 "    sink: {type: stdout}\n"
		 "    dead_letter: {type: file, path: %s/dead.log}\n",
		 test_dir, test_dir, test_dir);
	parse_ok(yaml, &t.c);
	harness_run(1, build_main, &t);
	if (t.rc)
		fail_msg("build: %d %s", t.rc, t.err);
	assert_int_equal(t.n, 4);
	assert_string_equal(sink_type(t.routes[0].sink), "file");
	assert_string_equal(sink_type(t.routes[1].sink), "tcp");
	assert_string_equal(sink_type(t.routes[2].sink), "null");
	assert_string_equal(sink_type(t.routes[3].sink), "stdout");
	assert_string_equal(sink_type(t.routes[0].dead_letter), "stdout");
	assert_string_equal(sink_type(t.routes[2].dead_letter), "file");
	/* Identical dead letters are one sink, a reference per route. */
	assert_ptr_equal(t.routes[0].dead_letter, t.routes[1].dead_letter);
	assert_ptr_equal(t.routes[2].dead_letter, t.routes[3].dead_letter);
	assert_int_equal(atomic_load(&t.routes[0].dead_letter->refs), 2);
	/* The rest of each route is the configuration's. */
	assert_ptr_equal(t.routes[0].name, t.c.routes[0].route.name);
	assert_ptr_equal(t.routes[0].fold.merge, sluiced_merge_sum);
	assert_int_equal(t.routes[1].match, SL_MATCH_PREFIX);
	assert_true(t.routes[2].is_default);
	sluiced_routes_discard(t.routes, t.n);
	sluiced_config_free(&t.c);
}

static void
expect_build_error_at(const char *yaml, int want_rc, const char *want,
		      int line)
{
	struct build_test t = {0};

	parse_ok_at(yaml, &t.c, line);
	harness_run(1, build_main, &t);
	if (t.rc != want_rc || strcmp(t.err, want))
		fail_msg("line %d: build: %d \"%s\", expected %d \"%s\"", line,
			 t.rc, t.err, want_rc, want);
	sluiced_config_free(&t.c);
}
#define expect_build_error(yaml, rc, want)                                     \
	expect_build_error_at((yaml), (rc), (want), __LINE__)

/* A sink that cannot be built fails the whole table, and the sinks built
 * before it are released (the sanitizer build sees any leak). */
static void
test_config_routes_build_failures(void **state)
{
	(void)state;
	expect_build_error("routes:\n"
			   "  - {name: a, match: exact, kind: a,\n"
			   "     sink: {type: stdout},\n"
			   "     dead_letter: {type: null}}\n"
			   "  - name: b\n"
			   "    sink:\n"
			   "      type: file\n"
			   "      path: /nonexistent-dir/b.log\n",
			   -ENOENT,
			   "t.yaml:8: routes[1].sink: cannot open file "
			   "\"/nonexistent-dir/b.log\": No such file or "
			   "directory");
	expect_build_error("routes:\n"
			   "  - name: a\n"
			   "    sink: {type: null}\n"
			   "    dead_letter: {type: plugin, plugin: "
			   "/nonexistent-dir/p.so}\n",
			   -ENOENT,
			   "t.yaml:4: routes[0].dead_letter: cannot load "
			   "plug-in \"/nonexistent-dir/p.so\": No such file or "
			   "directory (the log says more)");
}

/*
 * End to end: the routes of a configuration installed in a router, with
 * fold sum and max into files.  However the events fold (that depends on
 * timing), every event is reconciled in exactly one batch, so the sums
 * written add up to the sum fed, and the largest maximum written is the
 * largest value fed.
 */
#define E2E_EVENTS 4000
#define E2E_KEYS 5

struct e2e_test {
	struct sluiced_config c;
	int64_t sum[E2E_KEYS], max[E2E_KEYS];
	int rc_routes, rc_set, rc_shutdown;
	uint64_t fed;
	char err[ERR_LEN];
};

static int64_t
e2e_value(unsigned i)
{
	return (int64_t)((i * 7919u) % 2001u) - 1000;
}

static void
e2e_main(void *arg)
{
	struct e2e_test *t = arg;
	struct sluice_route *routes;
	struct sluice *r;
	size_t n;

	CHECK_ERR_EQ(sluice_create(&t->c.opts, &r), 0);
	t->rc_routes = sluiced_config_routes(&t->c, &routes, &n, t->err,
					     sizeof(t->err));
	if (t->rc_routes) {
		sluice_destroy(r);
		return;
	}
	t->rc_set = sluice_set_routes(r, routes, n, t->err, sizeof(t->err));
	sluiced_routes_free(routes, n);
	for (unsigned i = 0; !t->rc_set && i < E2E_EVENTS; i++) {
		char key[16], payload[32];
		int kl = snprintf(key, sizeof(key), "k%u", i % E2E_KEYS);
		int pl = snprintf(payload, sizeof(payload), "%lld",
				  (long long)e2e_value(i));
		int fr = sluice_feed(r, NULL, "n.v", 3, key, (size_t)kl,
				     payload, (size_t)pl);

		CHECK_INT_EQ(fr, 2);
		t->fed += fr == 2;
	}
	t->rc_shutdown = sluice_shutdown(r, true,
					 sl_now_ns() + 60 * SL_NSEC_PER_SEC);
	sluice_destroy(r);
}

/* Per key: the sum of the values written, or their maximum. */
static void
e2e_read(const char *path, bool want_max, int64_t out[E2E_KEYS])
{
	char kind[16], key[16];
	long long v;
	unsigned lines = 0;
	FILE *f = fopen(path, "r");

	assert_non_null(f);
	for (int k = 0; k < E2E_KEYS; k++)
		out[k] = want_max ? INT64_MIN : 0;
	while (fscanf(f, "%15s %15s %lld", kind, key, &v) == 3) {
		unsigned k;

		assert_string_equal(kind, "n.v");
		assert_int_equal(sscanf(key, "k%u", &k), 1);
		assert_in_range(k, 0, E2E_KEYS - 1);
		if (want_max)
			out[k] = v > out[k] ? v : out[k];
		else
			out[k] += v;
		lines++;
	}
	assert_true(feof(f));
	fclose(f);
	/* At least one line per key, at most one per event. */
	assert_in_range(lines, E2E_KEYS, E2E_EVENTS);
}

static void
test_config_routes_fold_sum_and_max_end_to_end(void **state)
{
	struct e2e_test *t = calloc(1, sizeof(*t));
	char yaml[1024], path[PATH_MAX];
	int64_t got[E2E_KEYS];

	(void)state;
	assert_non_null(t);
	snprintf(yaml, sizeof(yaml),
		 "routes:\n"
		 "  - name: sums\n"
		 "    match: prefix\n"
		 "    kind: n.\n"
		 "    fold: sum\n"
		 "    workers: 2\n"
		 "    sink: {type: file, path: %s/sums.log, sync: false}\n"
		 "  - name: maxes\n"
		 "    match: exact\n"
		 "    kind: n.v\n"
		 "    fold: max\n"
		 "    sink: {type: file, path: %s/maxes.log, sync: false}\n",
		 test_dir, test_dir);
	parse_ok(yaml, &t->c);
	for (int k = 0; k < E2E_KEYS; k++)
		t->max[k] = INT64_MIN;
	for (unsigned i = 0; i < E2E_EVENTS; i++) {
		t->sum[i % E2E_KEYS] += e2e_value(i);
		if (e2e_value(i) > t->max[i % E2E_KEYS])
			t->max[i % E2E_KEYS] = e2e_value(i);
	}
	harness_run(2, e2e_main, t);
	if (t->rc_routes || t->rc_set)
		fail_msg("routes %d, set %d: %s", t->rc_routes, t->rc_set,
			 t->err);
	assert_int_equal(t->rc_shutdown, 0);
	assert_int_equal(t->fed, E2E_EVENTS);

	snprintf(path, sizeof(path), "%s/sums.log", test_dir);
	e2e_read(path, false, got);
	for (int k = 0; k < E2E_KEYS; k++)
		assert_int_equal(got[k], t->sum[k]);
	snprintf(path, sizeof(path), "%s/maxes.log", test_dir);
	e2e_read(path, true, got);
	for (int k = 0; k < E2E_KEYS; k++)
		assert_int_equal(got[k], t->max[k]);
	sluiced_config_free(&t->c);
	free(t);
}

/* ---- setup ---- */

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
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_defaults_without_file),
		cmocka_unit_test(test_config_empty_file_is_the_defaults),
		cmocka_unit_test(test_config_full_file_reads_back),
		cmocka_unit_test(test_config_limits_derived),
		cmocka_unit_test(test_config_docs_example_loads),
		cmocka_unit_test(test_config_error_unknown_and_repeated_keys),
		cmocka_unit_test(test_config_error_wrong_shapes),
		cmocka_unit_test(test_config_error_values),
		cmocka_unit_test(
			test_config_error_sizes_and_durations_in_place),
		cmocka_unit_test(
			test_config_error_sink_type_names_file_line_and_path),
		cmocka_unit_test(test_config_error_required_keys),
		cmocka_unit_test(test_config_error_sink_keys_per_type),
		cmocka_unit_test(test_config_error_routes_across_keys),
		cmocka_unit_test(test_config_error_inputs_and_admin),
		cmocka_unit_test(test_config_error_yaml_features),
		cmocka_unit_test(test_config_error_yaml_syntax_line),
		cmocka_unit_test(test_config_load_names_the_file),
		cmocka_unit_test(test_config_set_values),
		cmocka_unit_test(test_config_set_errors),
		cmocka_unit_test(test_config_set_then_check_names_origins),
		cmocka_unit_test(test_config_admin_off_and_token),
		cmocka_unit_test(test_config_knobs_read_back),
		cmocka_unit_test(test_config_error_knobs),
		cmocka_unit_test(test_config_admin_off_loopback_needs_token),
		cmocka_unit_test(test_config_read_file_then_overrides),
		cmocka_unit_test(test_config_restart_keys),
		cmocka_unit_test(test_config_durations),
		cmocka_unit_test(test_config_sizes),
		cmocka_unit_test(test_config_merge_sum),
		cmocka_unit_test(test_config_merge_max),
		cmocka_unit_test(test_config_routes_build_sinks),
		cmocka_unit_test(test_config_routes_build_failures),
		cmocka_unit_test(
			test_config_routes_fold_sum_and_max_end_to_end),
	};

	harness_init();
	return cmocka_run_group_tests(tests, dir_setup, dir_teardown);
}
