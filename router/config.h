/* SPDX-License-Identifier: MIT */
/*
 * sluiced's configuration: a YAML file, command-line overrides, and the
 * route table built from them.  docs/configuration.md describes every key.
 *
 *	struct sluiced_config c;
 *	const char *sets[] = {"routes[0].workers=8"};
 *
 *	if (sluiced_config_read("sluiced.yaml", sets, 1, &c, err,
 *				sizeof(err)))
 *		die(err);
 *	...sl_runtime_run(&c.runtime, ...), then in a task:
 *	sluice_create(&c.opts, &r);
 *	sluiced_config_install(r, &c, err, sizeof(err));
 *	...
 *	sluiced_config_free(&c);
 *
 * sluiced_config_read() is sluiced_config_load() (or _defaults()), one
 * sluiced_config_set() per override and sluiced_config_check();
 * sluiced_config_install() is sluiced_config_routes(), sluice_set_routes()
 * and sluiced_routes_free().  The steps are public for callers and tests
 * that need one of them alone.
 *
 * Loading is strict, so that a mistake is found when the file is read and
 * not when traffic arrives: an unknown key, a key given twice, a value of
 * the wrong type or out of range, a key that the chosen sink type does not
 * use, and YAML aliases are all errors.  Every message has one form,
 *
 *	FILE:LINE: KEY.PATH: reason
 *
 * with "--set" in place of FILE:LINE for a value that came from an
 * override, and no KEY.PATH for YAML syntax errors.
 *
 * A configuration is plain data: loading it opens no file and no socket.
 * sluiced_config_routes() builds the sinks.  None of these functions is
 * thread-safe on one configuration; distinct configurations are
 * independent.  Loading, overriding and checking run on any thread, in or
 * out of a task; building routes runs in a task (the file sink opens its
 * file through io/).
 */
#ifndef SLUICE_ROUTER_CONFIG_H
#define SLUICE_ROUTER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/runtime.h"
#include "io/io.h"
#include "router/admin.h"
#include "router/sluice.h"

enum sluiced_log_level {
	SLUICED_LOG_DEBUG,
	SLUICED_LOG_INFO,
	SLUICED_LOG_WARN,
	SLUICED_LOG_ERROR,
};

enum sluiced_sink_type {
	SLUICED_SINK_NULL,
	SLUICED_SINK_STDOUT,
	SLUICED_SINK_FILE,
	SLUICED_SINK_TCP,
	SLUICED_SINK_PLUGIN,
};

enum sluiced_fold {
	SLUICED_FOLD_LATEST,
	SLUICED_FOLD_SUM,	/* SL_FOLD_MERGE with sluiced_merge_sum() */
	SLUICED_FOLD_MAX,	/* SL_FOLD_MERGE with sluiced_merge_max() */
	SLUICED_FOLD_KEEP_ALL,
};

/*
 * Where a value came from, kept per key for the messages of checks that
 * run after loading: a line of the file (1-based), or one of these.
 */
#define SLUICED_ORIGIN_DEFAULT 0u
#define SLUICED_ORIGIN_SET UINT32_MAX

/* Keys per item, for the origin arrays below (config.c checks them). */
#define SLUICED_SINK_KEYS_ 10
#define SLUICED_INPUT_KEYS_ 6
#define SLUICED_ROUTE_KEYS_ 17
#define SLUICED_TOP_KEYS_ 31

/* A sink as data; sluiced_config_routes() builds it. */
struct sluiced_sink_config {
	enum sluiced_sink_type type;
	const char *path;	/* file */
	bool sync;		/* file: sync each batch */
	uint64_t rotate_bytes;	/* file: 0 never */
	bool frames;		/* file, tcp: frames instead of lines */
	const char *addr;	/* tcp */
	unsigned conns;		/* tcp */
	uint64_t timeout_ns;	/* tcp: per write */
	const char *plugin;	/* plugin: the shared object */
	const char *config;	/* plugin: handed to its init */

	/* private */
	uint32_t line_;		/* of the key that holds this sink */
	uint32_t origin_[SLUICED_SINK_KEYS_];
};

struct sluiced_input_config {
	struct sluice_input in;	/* for sluice_add_input() */

	/* private */
	uint32_t line_;
	uint32_t origin_[SLUICED_INPUT_KEYS_];
};

struct sluiced_route_config {
	/*
	 * The route as sluice_set_routes() takes it, without its sinks:
	 * fold.policy and fold.merge follow @fold.
	 */
	struct sluice_route route;
	enum sluiced_fold fold;
	struct sluiced_sink_config sink;
	bool has_dead_letter;
	struct sluiced_sink_config dead_letter;

	/* private */
	uint32_t line_;
	uint32_t origin_[SLUICED_ROUTE_KEYS_];
};

struct sluiced_string_;

struct sluiced_config {
	/* runtime.*: every field but hog_report_ns, retake_ns and quiet,
	 * which keep sl_runtime_opts_init()'s values.  cpus and numa are
	 * checked for form here; whether the machine has those CPUs and
	 * nodes is sl_runtime_run()'s check. */
	struct sl_runtime_opts runtime;
	/* io.*: receive buffers per processor, for sl_io_configure(). */
	struct sl_io_opts io;
	/* security.allow_root: run even with an effective user id of 0. */
	bool allow_root;
	/* limits.*, with line_max and frame_max derived unless given. */
	struct sluice_opts opts;
	struct sluiced_input_config *inputs;
	size_t ninputs;
	struct sluiced_route_config *routes;
	size_t nroutes;
	/* admin.*: addr, timeout_ns, max_request and token (NULL for
	 * none), ready for sl_admin_start(); the callbacks are left NULL
	 * for the caller. */
	struct sl_admin_opts admin;
	/* False when admin.addr is "" or "off": no admin endpoint. */
	bool admin_enabled;
	uint64_t drain_timeout_ns;
	/* The least severe level sluiced itself logs at. */
	enum sluiced_log_level log_level;
	/* The name messages give for the file; NULL for defaults alone. */
	const char *file;

	/* private: every string above is owned here */
	struct sluiced_string_ *strings_;
	uint32_t origin_[SLUICED_TOP_KEYS_];
};

/**
 * sluiced_config_defaults() - the configuration of an empty file: one tcp
 * input "tcp" on 127.0.0.1:7400 reading lines, and one route "default"
 * that matches every event and reconciles into the null sink.
 * @c: filled in; release with sluiced_config_free().
 *
 * Return: 0, or -ENOMEM (then @c holds nothing).
 */
int sluiced_config_defaults(struct sluiced_config *c);

/**
 * sluiced_config_parse() - load a configuration from YAML text.
 * @text, @len: the text (need not end in NUL).
 * @filename: the name messages give (NULL: "<config>").
 * @c: filled in: the defaults, with what the text gives on top; then
 *	checked as sluiced_config_check() does.
 * @err: on failure, one line "FILE:LINE: KEY.PATH: reason".
 *
 * Return: 0; -EINVAL for a bad configuration; -ENOMEM.  On failure @c
 * holds nothing (sluiced_config_free() on it is harmless).
 */
int sluiced_config_parse(const char *text, size_t len, const char *filename,
			 struct sluiced_config *c, char *err, size_t errlen);

/**
 * sluiced_config_load() - sluiced_config_parse() on the file at @path.
 *
 * Return: as sluiced_config_parse(); also the negative errno value of a
 * file that cannot be read (with "PATH: cannot read: reason" in @err), or
 * -EFBIG past 16 MiB.
 */
int sluiced_config_load(const char *path, struct sluiced_config *c, char *err,
			size_t errlen);

/**
 * sluiced_config_set() - apply one override, "KEY.PATH=VALUE".
 * @assignment: e.g. "routes[0].workers=8", "admin.addr=127.0.0.1:9000",
 *	"routes[1].dead_letter.type=stdout".  VALUE is the rest of the
 *	string, taken as it is (no quotes are removed), and read as the same
 *	key in the file would be.  Routes and inputs must exist already; a
 *	dead_letter key creates the route's dead-letter sink.
 *
 * The value is checked on its own at once, with the file's messages and
 * "--set" as the origin.  Checks that involve other keys (a file sink
 * needs a path, names are unique, ...) wait for sluiced_config_check(),
 * so that several overrides can change related keys: call it after the
 * last override.
 *
 * Return: 0, -EINVAL (message in @err, @c unchanged) or -ENOMEM.
 */
int sluiced_config_set(struct sluiced_config *c, const char *assignment,
		       char *err, size_t errlen);

/**
 * sluiced_config_read() - what sluiced runs with: the file at @path (or
 * the defaults when @path is NULL), then each of the @nsets overrides in
 * order, then sluiced_config_check().
 * @c: filled in; on failure it holds nothing.
 * @err: on failure, the message of the step that failed.
 *
 * Return: as sluiced_config_load(), sluiced_config_set() and
 * sluiced_config_check(): 0, -EINVAL, -ENOMEM, or the errno value of a
 * file that cannot be read.
 */
int sluiced_config_read(const char *path, const char *const *sets,
			size_t nsets, struct sluiced_config *c, char *err,
			size_t errlen);

/**
 * sluiced_config_check() - the checks that involve more than one key:
 * unique route and input names, at most one default route, patterns that
 * fit their match and the limits, addresses that fit their input type,
 * an admin endpoint off loopback only with a token, runtime.cq_entries
 * not below ring_entries, io.buffers not above io.buffers_max,
 * the keys each sink type needs and uses, backoff cap at least its base,
 * no file written by two sinks (identical dead letters excepted: they
 * share one sink).  Derives limits.line_max and frame_max from the other
 * limits unless they were given.
 *
 * Return: 0 or -EINVAL (message in @err).
 */
int sluiced_config_check(struct sluiced_config *c, char *err, size_t errlen);

/**
 * sluiced_addr_local() - whether @addr can be reached only from this
 * host: an IPv4 address in 127.0.0.0/8, [::1] (or a v4-mapped loopback
 * address), or a Unix socket.  False for anything else, and for text
 * that is not an address.
 */
bool sluiced_addr_local(const char *addr);

/* sluiced_config_free() - release what @c owns; @c is zeroed. */
void sluiced_config_free(struct sluiced_config *c);

/**
 * sluiced_config_routes() - build every route's sinks and the array for
 * sluice_set_routes().
 * @out: a new array of @n routes.  Each holds one reference to its sink
 *	and one to its dead-letter sink (dead letters of identical
 *	configuration share one sink).  Their strings point into @c: keep
 *	@c until the routes are installed.
 * @err: on failure, the route and the reason, e.g. "sluiced.yaml:12:
 *	routes[0].sink: cannot open file "/x/y": No such file or directory".
 *
 * Call from a task.  Return: 0, or the negative errno value of the sink
 * that could not be built (nothing is left built).
 */
int sluiced_config_routes(const struct sluiced_config *c,
			  struct sluice_route **out, size_t *n, char *err,
			  size_t errlen);

/**
 * sluiced_config_install() - build @c's routes and install them in @r as
 * its route table: sluiced_config_routes(), sluice_set_routes() and
 * sluiced_routes_free() in one call, for start-up and reloads alike.
 * @c: a configuration that passed sluiced_config_check().
 * @err: on failure, the reason: the route and its sink, or the router's.
 *
 * Call from a task.  On failure the table in @r is the one it had.
 *
 * Return: 0; the negative errno value of a sink that cannot be built
 * (e.g. -ENOENT, -EACCES); -EINVAL for a table the router refuses;
 * -ESHUTDOWN once the router is shutting down; -ENOMEM.
 */
int sluiced_config_install(struct sluice *r, const struct sluiced_config *c,
			   char *err, size_t errlen);

/**
 * sluiced_config_restart_keys() - the sections a reload cannot apply.
 * @cur: the configuration the process started with.
 * @next: a configuration about to be reloaded.
 * @buf: receives the names of the sections that differ and take effect
 *	only at a restart, e.g. "inputs, admin" ("" when none).
 *
 * Routes are what a reload installs, and shutdown.* and log.* are plain
 * values a caller can take over at once; runtime.*, io.*, limits.*,
 * inputs, admin.* and security.* shape what is already running.
 *
 * Return: how many sections differ.
 */
unsigned sluiced_config_restart_keys(const struct sluiced_config *cur,
				     const struct sluiced_config *next,
				     char *buf, size_t len);

/*
 * sluiced_routes_free() - after sluice_set_routes(), which takes the
 * sinks whether it succeeds or not: drop the dead-letter references and
 * free the array.
 */
void sluiced_routes_free(struct sluice_route *routes, size_t n);

/* sluiced_routes_discard() - routes never installed: drop every sink. */
void sluiced_routes_discard(struct sluice_route *routes, size_t n);

/*
 * The merges of fold sum and max (sl_fold_merge_fn).  Payloads are signed
 * 64-bit decimal integers: an optional '-' or '+' and 1 to 19 digits, and
 * nothing else.  sum keeps a new event with the newer event's kind, key,
 * time and sequence, and the sum as payload, saturating at INT64_MIN and
 * INT64_MAX; max keeps whichever event has the larger value, the newer on
 * a tie.  If either payload does not parse (or memory runs out) both keep
 * the newer event unchanged, and nothing is added up.
 */
struct sl_event *sluiced_merge_sum(struct sl_event *pending,
				   struct sl_event *incoming, void *arg);
struct sl_event *sluiced_merge_max(struct sl_event *pending,
				   struct sl_event *incoming, void *arg);

/**
 * sluiced_parse_duration() - "250ms", "1.5s", "1h30m", or "0".
 * Units ns, us, ms, s, m, h; each number may have a fraction; time below
 * a nanosecond is dropped.  No sign, no spaces.
 * Return: 0 with *@ns set, or -EINVAL with the reason in @why.
 */
int sluiced_parse_duration(const char *s, size_t len, uint64_t *ns,
			   char *why, size_t whylen);

/**
 * sluiced_parse_size() - "4096", "64KiB", "1.5MiB", "10MB".
 * Units KiB, MiB, GiB (powers of 1024) and KB, MB, GB (powers of 1000);
 * a fraction must come to a whole number of bytes.  No sign, no spaces.
 * Return: 0 with *@bytes set, or -EINVAL with the reason in @why.
 */
int sluiced_parse_size(const char *s, size_t len, uint64_t *bytes, char *why,
		       size_t whylen);

#endif /* SLUICE_ROUTER_CONFIG_H */
