/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the configuration loader.
 *
 * Each input is a configuration file.  It is loaded from a block of
 * exactly its size with no NUL after it, as sluiced_config_parse() allows,
 * so a read past the text is caught.  Comment lines of the form
 * "#set KEY.PATH=VALUE" are YAML comments to the loader; the target
 * applies them afterwards as command-line overrides, the way sluiced does
 * with --set.  Every line of the input is also read as a duration and as
 * a size.  The invariants, any of which aborts when broken:
 *
 *  1. Loading returns 0, -EINVAL or -ENOMEM.  On failure the message is
 *     one non-empty line that starts with the file's name or "--set", and
 *     the configuration holds nothing.
 *  2. Loading is deterministic: the same text gives the same result, the
 *     same message, and configurations that agree key for key.
 *  3. A loaded configuration passes sluiced_config_check() again and
 *     keeps what it checks: unique route and input names, at most one
 *     default route, field limits within the wire format's ceilings.
 *  4. An override returns 0, -EINVAL or -ENOMEM; a refused one says
 *     "--set: ..."; after the overrides the checks pass or say why.
 *  5. Durations and sizes: a value that parses has a decimal form that
 *     parses to the same number ("<n>ns", "<n>"), and two durations
 *     written one after the other parse to their sum.
 *  6. Nothing leaks (the fuzzer's leak check), whatever fails.
 */
#include <errno.h>
#include <inttypes.h>

#include "router/config.h"

#include "fuzz.h"

#define FUZZ_FILE "fuzz.yaml"
#define FUZZ_SET "#set "
#define FUZZ_SET_LEN (sizeof(FUZZ_SET) - 1)
#define FUZZ_SETS_MAX 8

/* Invariant 1's message: one line, naming where the fault is. */
static void
check_message(const char *err, const char *origin)
{
	FUZZ_CHECK(err[0] != '\0');
	FUZZ_CHECK(strchr(err, '\n') == NULL);
	FUZZ_CHECK(strncmp(err, origin, strlen(origin)) == 0);
}

static bool
strings_equal(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool
sinks_equal(const struct sluiced_sink_config *a,
	    const struct sluiced_sink_config *b)
{
	return a->type == b->type && strings_equal(a->path, b->path) &&
	       a->sync == b->sync && a->rotate_bytes == b->rotate_bytes &&
	       a->frames == b->frames && strings_equal(a->addr, b->addr) &&
	       a->conns == b->conns && a->timeout_ns == b->timeout_ns &&
	       strings_equal(a->plugin, b->plugin) &&
	       strings_equal(a->config, b->config);
}

static bool
routes_equal(const struct sluiced_route_config *a,
	     const struct sluiced_route_config *b)
{
	const struct sluice_route *x = &a->route, *y = &b->route;

	return strings_equal(x->name, y->name) && x->match == y->match &&
	       strings_equal(x->kind, y->kind) &&
	       strings_equal(x->key_prefix, y->key_prefix) &&
	       x->is_default == y->is_default && x->workers == y->workers &&
	       a->fold == b->fold && sinks_equal(&a->sink, &b->sink) &&
	       a->has_dead_letter == b->has_dead_letter &&
	       (!a->has_dead_letter ||
		sinks_equal(&a->dead_letter, &b->dead_letter));
}

static bool
inputs_equal(const struct sluiced_input_config *a,
	     const struct sluiced_input_config *b)
{
	return strings_equal(a->in.name, b->in.name) &&
	       a->in.type == b->in.type &&
	       strings_equal(a->in.addr, b->in.addr) &&
	       a->in.frames == b->in.frames &&
	       a->in.max_conns == b->in.max_conns;
}

/* Invariant 2: two loads of one text agree key for key. */
static void
check_same_config(const struct sluiced_config *a,
		  const struct sluiced_config *b)
{
	char buf[256];

	FUZZ_CHECK(sluiced_config_restart_keys(a, b, buf, sizeof(buf)) == 0);
	FUZZ_CHECK(buf[0] == '\0');
	FUZZ_CHECK(a->nroutes == b->nroutes && a->ninputs == b->ninputs);
	for (size_t i = 0; i < a->nroutes; i++)
		FUZZ_CHECK(routes_equal(&a->routes[i], &b->routes[i]));
	for (size_t i = 0; i < a->ninputs; i++)
		FUZZ_CHECK(inputs_equal(&a->inputs[i], &b->inputs[i]));
	FUZZ_CHECK(a->admin_enabled == b->admin_enabled);
	FUZZ_CHECK(strings_equal(a->admin.addr, b->admin.addr));
	FUZZ_CHECK(strings_equal(a->admin.token, b->admin.token));
	FUZZ_CHECK(a->drain_timeout_ns == b->drain_timeout_ns);
	FUZZ_CHECK(a->log_level == b->log_level);
	FUZZ_CHECK(memcmp(&a->opts, &b->opts, sizeof(a->opts)) == 0);
}

/* Invariant 3: what sluiced_config_check() promises holds. */
static void
check_checked(struct sluiced_config *c)
{
	char err[1024];
	unsigned defaults = 0;

	FUZZ_CHECK(sluiced_config_check(c, err, sizeof(err)) == 0);
	for (size_t i = 0; i < c->nroutes; i++) {
		FUZZ_CHECK(c->routes[i].route.name != NULL);
		defaults += c->routes[i].route.is_default;
		for (size_t j = 0; j < i; j++)
			FUZZ_CHECK(strcmp(c->routes[i].route.name,
					  c->routes[j].route.name) != 0);
	}
	FUZZ_CHECK(defaults <= 1);
	for (size_t i = 0; i < c->ninputs; i++) {
		FUZZ_CHECK(c->inputs[i].in.name != NULL);
		FUZZ_CHECK(c->inputs[i].in.addr != NULL);
		for (size_t j = 0; j < i; j++)
			FUZZ_CHECK(strcmp(c->inputs[i].in.name,
					  c->inputs[j].in.name) != 0);
	}
	FUZZ_CHECK(c->opts.limits.kind_max >= 1 &&
		   c->opts.limits.kind_max <= SL_KIND_MAX);
	FUZZ_CHECK(c->opts.limits.key_max >= 1 &&
		   c->opts.limits.key_max <= SL_KEY_MAX);
}

/* Load @text (exactly @len bytes, no NUL after them) into @c. */
static int
load(const uint8_t *text, size_t len, struct sluiced_config *c, char *err,
     size_t errlen)
{
	char *copy = malloc(len ? len : 1);
	int r;

	FUZZ_CHECK(copy != NULL);
	if (len)
		memcpy(copy, text, len);
	memset(c, 0xa5, sizeof(*c)); /* the loader must not read it */
	r = sluiced_config_parse(copy, len, FUZZ_FILE, c, err, errlen);
	free(copy);

	FUZZ_CHECK(r == 0 || r == -EINVAL || r == -ENOMEM);
	if (r) {
		FUZZ_CHECK(c->inputs == NULL && c->ninputs == 0);
		FUZZ_CHECK(c->routes == NULL && c->nroutes == 0);
		FUZZ_CHECK(c->strings_ == NULL && c->file == NULL);
		if (r == -EINVAL)
			check_message(err, FUZZ_FILE);
	}
	return r;
}

/* Invariant 4: the "#set " lines of @text, applied to @c in order. */
static void
apply_sets(const uint8_t *text, size_t len, struct sluiced_config *c)
{
	const uint8_t *p = text, *end = text + len;
	unsigned nsets = 0;
	char err[1024];
	int r;

	while (p < end && nsets < FUZZ_SETS_MAX) {
		const uint8_t *lf = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((lf ? lf : end) - p);

		if (n > FUZZ_SET_LEN && !memcmp(p, FUZZ_SET, FUZZ_SET_LEN) &&
		    !memchr(p, '\0', n)) {
			char *set = strndup((const char *)p + FUZZ_SET_LEN,
					    n - FUZZ_SET_LEN);

			FUZZ_CHECK(set != NULL);
			r = sluiced_config_set(c, set, err, sizeof(err));
			FUZZ_CHECK(r == 0 || r == -EINVAL || r == -ENOMEM);
			if (r == -EINVAL)
				check_message(err, "--set: ");
			free(set);
			nsets++;
		}
		p += n + (lf != NULL);
	}
	if (!nsets)
		return;

	r = sluiced_config_check(c, err, sizeof(err));
	FUZZ_CHECK(r == 0 || r == -EINVAL);
	if (r) {
		FUZZ_CHECK(err[0] != '\0' && strchr(err, '\n') == NULL);
		return;
	}
	check_checked(c);
}

/* Invariant 5 for one duration, and for it followed by @prev. */
static void
check_duration(const char *s, size_t len, const char *prev, size_t prev_len)
{
	char why[512], buf[64];
	uint64_t ns, again, other, both;
	char *cat;
	int r = sluiced_parse_duration(s, len, &ns, why, sizeof(why));

	FUZZ_CHECK(r == 0 || r == -EINVAL);
	if (r) {
		FUZZ_CHECK(why[0] != '\0' && strchr(why, '\n') == NULL);
		return;
	}
	snprintf(buf, sizeof(buf), "%" PRIu64 "ns", ns);
	FUZZ_CHECK(sluiced_parse_duration(buf, strlen(buf), &again, why,
					  sizeof(why)) == 0);
	FUZZ_CHECK(again == ns);

	/* "0" alone is the one duration without a unit, and cannot be
	 * followed by another. */
	if (!prev || (len == 1 && s[0] == '0') ||
	    sluiced_parse_duration(prev, prev_len, &other, why,
				   sizeof(why)) != 0 ||
	    (prev_len == 1 && prev[0] == '0'))
		return;
	cat = malloc(len + prev_len);
	FUZZ_CHECK(cat != NULL);
	memcpy(cat, s, len);
	memcpy(cat + len, prev, prev_len);
	r = sluiced_parse_duration(cat, len + prev_len, &both, why,
				   sizeof(why));
	if (__builtin_add_overflow(ns, other, &again))
		FUZZ_CHECK(r == -EINVAL);
	else
		FUZZ_CHECK(r == 0 && both == again);
	free(cat);
}

/* Invariant 5 for one size. */
static void
check_size(const char *s, size_t len)
{
	char why[512], buf[64];
	uint64_t bytes, again;
	int r = sluiced_parse_size(s, len, &bytes, why, sizeof(why));

	FUZZ_CHECK(r == 0 || r == -EINVAL);
	if (r) {
		FUZZ_CHECK(why[0] != '\0' && strchr(why, '\n') == NULL);
		return;
	}
	snprintf(buf, sizeof(buf), "%" PRIu64, bytes);
	FUZZ_CHECK(sluiced_parse_size(buf, strlen(buf), &again, why,
				      sizeof(why)) == 0);
	FUZZ_CHECK(again == bytes);
	if (bytes % 1024 == 0) {
		snprintf(buf, sizeof(buf), "%" PRIu64 "KiB", bytes / 1024);
		FUZZ_CHECK(sluiced_parse_size(buf, strlen(buf), &again, why,
					      sizeof(why)) == 0);
		FUZZ_CHECK(again == bytes);
	}
}

/* Each line of @text, in a block of its own size, as both. */
static void
check_values(const uint8_t *text, size_t len)
{
	const uint8_t *p = text, *end = text + len;
	char *prev = NULL;
	size_t prev_len = 0;

	while (p < end) {
		const uint8_t *lf = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((lf ? lf : end) - p);
		char *line = malloc(n ? n : 1);

		FUZZ_CHECK(line != NULL);
		if (n)
			memcpy(line, p, n);
		check_duration(line, n, prev, prev_len);
		check_size(line, n);
		free(prev);
		prev = line;
		prev_len = n;
		p += n + (lf != NULL);
	}
	free(prev);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t empty[1];
	struct sluiced_config a, b;
	char err_a[1024], err_b[1024];
	int ra, rb;

	if (size == 0)
		data = empty; /* @data may be NULL; an empty file is valid */
	ra = load(data, size, &a, err_a, sizeof(err_a));
	rb = load(data, size, &b, err_b, sizeof(err_b));
	FUZZ_CHECK(ra == rb);
	if (ra == -EINVAL)
		FUZZ_CHECK(strcmp(err_a, err_b) == 0);
	if (ra == 0 && rb == 0) {
		check_same_config(&a, &b);
		check_checked(&a);
		apply_sets(data, size, &b);
	}
	sluiced_config_free(&a);
	sluiced_config_free(&b);
	sluiced_config_free(&b); /* harmless on a freed configuration */

	check_values(data, size);
	return 0;
}
