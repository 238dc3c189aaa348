/* SPDX-License-Identifier: MIT */
/*
 * Tests of route tables: each match kind on its own, several matches in
 * rule order, key prefixes, the default route, every build error with its
 * message, the glob matcher's syntax and its cost on patterns that make a
 * naive matcher explode, and seeded cross-checks of both the glob matcher
 * and whole-table matching against small reference implementations that
 * share no code with router/route.c.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/base.h"
#include "router/route.h"

#include "harness.h"

#define RULE(n, h, k, kp)                                                      \
	{.name = (n), .how = (h), .kind = (k), .key_prefix = (kp)}
#define EXACT(n, k) RULE(n, SL_MATCH_EXACT, k, NULL)
#define PREFIX(n, k) RULE(n, SL_MATCH_PREFIX, k, NULL)
#define GLOB(n, k) RULE(n, SL_MATCH_GLOB, k, NULL)
#define ANY(n) RULE(n, SL_MATCH_ANY, NULL, NULL)
#define DEFAULT(n) {.name = (n), .how = SL_MATCH_ANY, .is_default = true}

#define MATCH_MAX 64

static struct sl_route_table *
build_ok(const struct sl_route_rule *rules, size_t n)
{
	char err[256] = "";
	struct sl_route_table *t = sl_route_table_build(rules, n, err,
							sizeof(err));

	if (!t)
		fail_msg("build failed: %s", err);
	assert_int_equal(sl_route_table_size(t), n);
	return t;
}

/* Match @kind and @key (C strings); hits in @out, count returned. */
static size_t
match(const struct sl_route_table *t, const char *kind, const char *key,
      uint32_t out[MATCH_MAX])
{
	return sl_route_match(t, kind, strlen(kind), key, strlen(key), out,
			      MATCH_MAX);
}

/* Assert that @kind with @key matches exactly the rule indices in @want. */
static void
expect_match_at(const struct sl_route_table *t, const char *kind,
		const char *key, const uint32_t *want, size_t nwant,
		int line)
{
	uint32_t out[MATCH_MAX];
	size_t n = match(t, kind, key, out);

	if (n != nwant)
		fail_msg("line %d: kind \"%s\" key \"%s\": %zu matches, "
			 "expected %zu", line, kind, key, n, nwant);
	for (size_t i = 0; i < n; i++) {
		if (out[i] != want[i])
			fail_msg("line %d: kind \"%s\" key \"%s\": match %zu "
				 "is rule %u, expected %u", line, kind, key,
				 i, out[i], want[i]);
	}
}

#define EXPECT(t, kind, key, ...)                                              \
	do {                                                                   \
		const uint32_t want_[] = {__VA_ARGS__};                        \
		expect_match_at((t), (kind), (key), want_,                     \
				SL_ARRAY_SIZE(want_), __LINE__);               \
	} while (0)

#define EXPECT_NONE(t, kind, key)                                              \
	expect_match_at((t), (kind), (key), NULL, 0, __LINE__)

/* ---- each match kind ---- */

static void
test_route_exact_matches_whole_kind(void **state)
{
	const struct sl_route_rule rules[] = {
		EXACT("paid", "order.paid"),
		EXACT("new", "order.new"),
		EXACT("user", "user"),
	};
	struct sl_route_table *t = build_ok(rules, SL_ARRAY_SIZE(rules));

	(void)state;
	EXPECT(t, "order.paid", "", 0);
	EXPECT(t, "order.new", "k", 1);
	EXPECT(t, "user", "", 2);
	EXPECT_NONE(t, "order.pai", "");
	EXPECT_NONE(t, "order.paid.", "");
	EXPECT_NONE(t, "Order.paid", "");
	EXPECT_NONE(t, "", "");
	sl_route_table_free(t);
}

static void
test_route_exact_compares_bytes_not_c_strings(void **state)
{
	const struct sl_route_rule rules[] = {EXACT("a", "ab")};
	struct sl_route_table *t = build_ok(rules, 1);
	uint32_t out[2];

	(void)state;
	/* A kind is bytes with a length: an embedded NUL is not an end. */
	assert_int_equal(sl_route_match(t, "ab\0", 3, "", 0, out, 2), 0);
	assert_int_equal(sl_route_match(t, "abc", 2, "", 0, out, 2), 1);
	assert_int_equal(out[0], 0);
	sl_route_table_free(t);
}

static void
test_route_prefix_matches_start_of_kind(void **state)
{
	const struct sl_route_rule rules[] = {
		PREFIX("orders", "order."),
		PREFIX("o", "o"),
		PREFIX("paid", "order.paid"),
		PREFIX("users", "user."),
	};
	struct sl_route_table *t = build_ok(rules, SL_ARRAY_SIZE(rules));

	(void)state;
	EXPECT(t, "order.paid", "", 0, 1, 2);
	EXPECT(t, "order.paid.late", "", 0, 1, 2);
	EXPECT(t, "order.new", "", 0, 1);
	EXPECT(t, "order.", "", 0, 1);
	EXPECT(t, "order", "", 1);
	EXPECT(t, "user.x", "", 3);
	EXPECT_NONE(t, "user", "");
	EXPECT_NONE(t, "x.order.", "");
	EXPECT_NONE(t, "", "");
	sl_route_table_free(t);
}

static void
test_route_glob_matches_whole_kind(void **state)
{
	const struct sl_route_rule rules[] = {
		GLOB("paid", "*.paid"),
		GLOB("v", "order.v?"),
		GLOB("cls", "[ou]*[!x]"),
	};
	struct sl_route_table *t = build_ok(rules, SL_ARRAY_SIZE(rules));

	(void)state;
	EXPECT(t, "order.paid", "", 0, 2);
	EXPECT(t, "x.paid", "", 0);
	EXPECT(t, "order.v1", "", 1, 2);
	EXPECT(t, "user", "", 2);
	EXPECT(t, "order.vx", "", 1);
	EXPECT_NONE(t, "order.paid.x", "");
	EXPECT_NONE(t, "order.v12x", "");
	EXPECT_NONE(t, "", "");
	sl_route_table_free(t);
}

static void
test_route_any_matches_every_kind(void **state)
{
	const struct sl_route_rule rules[] = {
		EXACT("e", "x"),
		ANY("all"),
		/* ANY ignores its pattern, even a malformed one. */
		RULE("all2", SL_MATCH_ANY, "[", NULL),
	};
	struct sl_route_table *t = build_ok(rules, SL_ARRAY_SIZE(rules));

	(void)state;
	EXPECT(t, "x", "", 0, 1, 2);
	EXPECT(t, "anything", "key", 1, 2);
	EXPECT(t, "", "", 1, 2);
	sl_route_table_free(t);
}

/* ---- several matches ---- */

static void
test_route_match_lists_hits_in_rule_order(void **state)
{
	/* Kinds interleave so that no single source yields them in order. */
	const struct sl_route_rule rules[] = {
		ANY("a0"),
		GLOB("g1", "order.*"),
		EXACT("e2", "order.paid"),
		PREFIX("p3", "order."),
		ANY("a4"),
		EXACT("e5", "order.paid"),
		PREFIX("p6", "ord"),
		GLOB("g7", "*paid"),
		EXACT("e8", "order.new"),
		PREFIX("p9", "order.paid"),
	};
	struct sl_route_table *t = build_ok(rules, SL_ARRAY_SIZE(rules));

	(void)state;
	EXPECT(t, "order.paid", "", 0, 1, 2, 3, 4, 5, 6, 7, 9);
	EXPECT(t, "order.new", "", 0, 1, 3, 4, 6, 8);
	EXPECT(t, "prepaid", "", 0, 4, 7);
	sl_route_table_free(t);
}

/* The example in docs/routes.md. */
static void
test_route_docs_example(void **state)
{
	struct sl_route_rule rules[] = {
		PREFIX("orders", "order."),
		GLOB("paid", "*.paid"),
		RULE("eu-orders", SL_MATCH_PREFIX, "order.", "eu-"),
		ANY("audit"),
	};
	struct sl_route_table *t = build_ok(rules, SL_ARRAY_SIZE(rules));

	(void)state;
	EXPECT(t, "order.paid", "eu-4", 0, 1, 2, 3);
	EXPECT(t, "order.paid", "us-9", 0, 1, 3);
	EXPECT(t, "user.new", "eu-4", 3);
	sl_route_table_free(t);

	rules[3] = (struct sl_route_rule)DEFAULT("rest");
	t = build_ok(rules, SL_ARRAY_SIZE(rules));
	EXPECT(t, "order.new", "us-9", 0);
	EXPECT(t, "user.new", "us-9", 3);
	sl_route_table_free(t);
}

static void
test_route_match_counts_past_max(void **state)
{
	const struct sl_route_rule rules[] = {
		ANY("a0"),  PREFIX("p1", "k"), EXACT("e2", "kind"),
		ANY("a3"),  GLOB("g4", "k*"),  EXACT("e5", "kind"),
		ANY("a6"),
	};
	struct sl_route_table *t = build_ok(rules, SL_ARRAY_SIZE(rules));
	uint32_t out[8];

	(void)state;
	/* The smallest indices are kept, whatever order they were found in. */
	for (size_t max = 0; max <= 7; max++) {
		memset(out, 0xff, sizeof(out));
		assert_int_equal(sl_route_match(t, "kind", 4, "", 0, out, max),
				 7);
		for (size_t i = 0; i < max; i++)
			assert_int_equal(out[i], i);
		assert_int_equal(out[max], UINT32_MAX);
	}
	assert_int_equal(sl_route_match(t, "kind", 4, "", 0, NULL, 0), 7);
	sl_route_table_free(t);
}

/* ---- key prefixes ---- */

static void
test_route_key_prefix_filters_candidates(void **state)
{
	const struct sl_route_rule rules[] = {
		RULE("eu", SL_MATCH_EXACT, "order", "eu-"),
		RULE("all", SL_MATCH_EXACT, "order", NULL),
		RULE("empty", SL_MATCH_PREFIX, "ord", ""),
		RULE("us", SL_MATCH_GLOB, "o*", "us-"),
		RULE("eu-any", SL_MATCH_ANY, NULL, "eu-1"),
	};
	struct sl_route_table *t = build_ok(rules, SL_ARRAY_SIZE(rules));

	(void)state;
	EXPECT(t, "order", "eu-17", 0, 1, 2, 4);
	EXPECT(t, "order", "eu-2", 0, 1, 2);
	EXPECT(t, "order", "us-1", 1, 2, 3);
	EXPECT(t, "order", "eu", 1, 2);
	EXPECT(t, "order", "", 1, 2);
	EXPECT(t, "other", "eu-1", 4);
	EXPECT(t, "other", "us-", 3);
	EXPECT_NONE(t, "x", "us-");
	sl_route_table_free(t);
}

static void
test_route_key_prefix_is_bytes(void **state)
{
	const struct sl_route_rule rules[] = {
		RULE("k", SL_MATCH_ANY, NULL, "ab"),
	};
	struct sl_route_table *t = build_ok(rules, 1);
	uint32_t out[1];

	(void)state;
	assert_int_equal(sl_route_match(t, "x", 1, "abc", 2, out, 1), 1);
	assert_int_equal(sl_route_match(t, "x", 1, "abc", 1, out, 1), 0);
	assert_int_equal(sl_route_match(t, "x", 1, NULL, 0, out, 1), 0);
	sl_route_table_free(t);
}

/* ---- the default route ---- */

static void
test_route_default_only_when_nothing_matches(void **state)
{
	const struct sl_route_rule rules[] = {
		EXACT("paid", "order.paid"),
		DEFAULT("rest"),
		RULE("eu", SL_MATCH_PREFIX, "user.", "eu-"),
	};
	struct sl_route_table *t = build_ok(rules, SL_ARRAY_SIZE(rules));
	uint32_t out[1];

	(void)state;
	EXPECT(t, "order.paid", "", 0);
	EXPECT(t, "user.new", "eu-1", 2);
	EXPECT(t, "order.new", "", 1);
	EXPECT(t, "", "", 1);
	/* Dropped by its key prefix, the event is unmatched. */
	EXPECT(t, "user.new", "us-1", 1);

	assert_int_equal(sl_route_match(t, "x", 1, "", 0, NULL, 0), 1);
	assert_int_equal(sl_route_match(t, "x", 1, "", 0, out, 1), 1);
	assert_int_equal(out[0], 1);
	sl_route_table_free(t);
}

static void
test_route_default_alone_in_table(void **state)
{
	/* The zero match kind (EXACT) does not matter on a default. */
	const struct sl_route_rule rules[] = {
		{.name = "only", .is_default = true, .kind = ""},
	};
	struct sl_route_table *t = build_ok(rules, 1);

	(void)state;
	EXPECT(t, "anything", "", 0);
	EXPECT(t, "", "k", 0);
	sl_route_table_free(t);
}

static void
test_route_no_default_leaves_unmatched(void **state)
{
	const struct sl_route_rule rules[] = {
		EXACT("a", "a"),
		RULE("b", SL_MATCH_PREFIX, "b", "k"),
	};
	struct sl_route_table *t = build_ok(rules, SL_ARRAY_SIZE(rules));
	uint32_t out[4] = {7, 7, 7, 7};

	(void)state;
	assert_int_equal(sl_route_match(t, "c", 1, "", 0, out, 4), 0);
	assert_int_equal(sl_route_match(t, "bb", 2, "x", 1, out, 4), 0);
	assert_int_equal(out[0], 7);
	sl_route_table_free(t);
}

static void
test_route_empty_table_matches_nothing(void **state)
{
	char err[64] = "";
	struct sl_route_table *t = sl_route_table_build(NULL, 0, err,
							sizeof(err));
	uint32_t out[1];

	(void)state;
	assert_non_null(t);
	assert_int_equal(sl_route_table_size(t), 0);
	assert_null(sl_route_table_rule(t, 0));
	assert_int_equal(sl_route_match(t, "a", 1, "", 0, out, 1), 0);
	sl_route_table_free(t);
}

/* ---- build errors ---- */

struct build_case {
	const char *what;
	struct sl_route_rule rules[3];
	size_t n;
	const char *message;
};

static void
test_route_build_rejects_bad_rules(void **state)
{
	static const struct build_case cases[] = {
		{"NULL name", {EXACT("a", "a"), EXACT(NULL, "b")}, 2,
		 "the rule at index 1 has no name"},
		{"empty name", {EXACT("", "a")}, 1,
		 "the rule at index 0 has no name"},
		{"duplicate name",
		 {EXACT("a", "x"), ANY("b"), PREFIX("a", "y")}, 3,
		 "route \"a\": the name is already used by the rule at "
		 "index 0"},
		{"exact, NULL pattern", {EXACT("e", NULL)}, 1,
		 "route \"e\": the pattern is empty"},
		{"exact, empty pattern", {EXACT("e", "")}, 1,
		 "route \"e\": the pattern is empty"},
		{"prefix, empty pattern", {ANY("a"), PREFIX("p", "")}, 2,
		 "route \"p\": the pattern is empty"},
		{"glob, NULL pattern", {GLOB("g", NULL)}, 1,
		 "route \"g\": the pattern is empty"},
		{"unclosed class", {GLOB("g", "a[bc")}, 1,
		 "route \"g\": glob \"a[bc\": '[' at offset 1 is not closed"},
		{"class of one ']', unclosed", {GLOB("g", "x*[]")}, 1,
		 "route \"g\": glob \"x*[]\": '[' at offset 2 is not closed"},
		{"escape inside a class at the end", {GLOB("g", "[a\\")}, 1,
		 "route \"g\": glob \"[a\\\": '[' at offset 0 is not "
		 "closed"},
		{"trailing backslash", {GLOB("g", "ab\\")}, 1,
		 "route \"g\": glob \"ab\\\": '\\' at offset 2 ends the "
		 "pattern"},
		{"reversed range", {GLOB("g", "x[az-b]")}, 1,
		 "route \"g\": glob \"x[az-b]\": the range at offset 3 runs "
		 "backwards"},
		{"two defaults",
		 {DEFAULT("d1"), EXACT("e", "e"), DEFAULT("d2")}, 3,
		 "route \"d2\": a second default route (\"d1\" is one "
		 "already)"},
		{"default with a pattern",
		 {{.name = "d", .how = SL_MATCH_PREFIX, .kind = "a",
		   .is_default = true}},
		 1, "route \"d\": the default route takes no pattern (it gets "
		 "every event no other route matches)"},
		{"default with a key prefix",
		 {{.name = "d", .how = SL_MATCH_ANY, .key_prefix = "k",
		   .is_default = true}},
		 1, "route \"d\": the default route takes no key prefix (it "
		 "gets every event no other route matches)"},
		{"unknown match kind",
		 {{.name = "u", .how = (enum sl_match)9, .kind = "a"}}, 1,
		 "route \"u\": unknown match kind 9"},
		{"first fault in rule order wins",
		 {GLOB("g", "["), EXACT("", "a")}, 2,
		 "route \"g\": glob \"[\": '[' at offset 0 is not closed"},
	};

	(void)state;
	for (size_t i = 0; i < SL_ARRAY_SIZE(cases); i++) {
		const struct build_case *c = &cases[i];
		char err[256] = "";
		struct sl_route_table *t;

		errno = 0;
		t = sl_route_table_build(c->rules, c->n, err, sizeof(err));
		if (t)
			fail_msg("%s: built", c->what);
		if (errno != EINVAL)
			fail_msg("%s: errno %d", c->what, errno);
		if (strcmp(err, c->message))
			fail_msg("%s: message\n  \"%s\", expected\n  \"%s\"",
				 c->what, err, c->message);
	}
}

static void
test_route_build_rejects_missing_array(void **state)
{
	char err[64] = "";

	(void)state;
	errno = 0;
	assert_null(sl_route_table_build(NULL, 3, err, sizeof(err)));
	assert_int_equal(errno, EINVAL);
	assert_string_equal(err, "3 rules counted but none given");
}

static void
test_route_build_error_buffer_is_optional(void **state)
{
	const struct sl_route_rule rules[] = {EXACT("a", "a"), EXACT("a", "b")};
	char small[8];

	(void)state;
	errno = 0;
	assert_null(sl_route_table_build(rules, 2, NULL, 0));
	assert_int_equal(errno, EINVAL);

	/* A short buffer gets the start of the message, terminated. */
	memset(small, 'x', sizeof(small));
	assert_null(sl_route_table_build(rules, 2, small, sizeof(small)));
	assert_string_equal(small, "route \"");
}

/* ---- the table's own copies ---- */

static void
test_route_table_copies_strings(void **state)
{
	char name[] = "orders", kind[] = "order.", kp[] = "eu-";
	struct sl_route_rule rules[] = {
		RULE(name, SL_MATCH_PREFIX, kind, kp),
		ANY("all"),
	};
	struct sl_route_table *t = build_ok(rules, SL_ARRAY_SIZE(rules));
	const struct sl_route_rule *r;

	(void)state;
	memset(name, 'z', sizeof(name) - 1);
	memset(kind, 'z', sizeof(kind) - 1);
	memset(kp, 'z', sizeof(kp) - 1);
	rules[0].how = SL_MATCH_EXACT;

	EXPECT(t, "order.paid", "eu-1", 0, 1);
	EXPECT(t, "zzzzzz", "zzz", 1);

	r = sl_route_table_rule(t, 0);
	assert_non_null(r);
	assert_string_equal(r->name, "orders");
	assert_string_equal(r->kind, "order.");
	assert_string_equal(r->key_prefix, "eu-");
	assert_int_equal(r->how, SL_MATCH_PREFIX);
	assert_false(r->is_default);
	assert_ptr_not_equal(r->name, name);

	r = sl_route_table_rule(t, 1);
	assert_string_equal(r->name, "all");
	assert_null(r->kind);
	assert_null(r->key_prefix);
	assert_null(sl_route_table_rule(t, 2));
	sl_route_table_free(t);
}

/* ---- the glob matcher ---- */

static bool
glob(const char *pat, const char *s)
{
	return sl_glob_match(pat, strlen(pat), s, strlen(s));
}

static void
test_glob_star_and_question(void **state)
{
	(void)state;
	assert_true(glob("*", ""));
	assert_true(glob("*", "anything"));
	assert_true(glob("**", "x"));
	assert_true(glob("a*", "a"));
	assert_true(glob("a*b", "ab"));
	assert_true(glob("a*b", "axxb"));
	assert_true(glob("a*b*c", "abbbc"));
	assert_true(glob("*.*", "a.b.c"));
	assert_false(glob("a*b", "axxbx"));
	assert_false(glob("a*", "ba"));
	assert_true(glob("?", "x"));
	assert_false(glob("?", ""));
	assert_false(glob("?", "xy"));
	assert_true(glob("a?c", "abc"));
	assert_true(glob("*?", "x"));
	assert_false(glob("?*?", "x"));
	assert_true(glob("?*?", "xy"));
	assert_true(glob("abc", "abc"));
	assert_false(glob("abc", "abcd"));
	assert_false(glob("abcd", "abc"));
}

static void
test_glob_empty_pattern_and_string(void **state)
{
	(void)state;
	assert_true(sl_glob_match("", 0, "", 0));
	assert_true(sl_glob_match(NULL, 0, NULL, 0));
	assert_false(glob("", "a"));
	assert_false(glob("a", ""));
	assert_false(glob("[a]", ""));
	assert_true(glob("***", ""));
}

static void
test_glob_classes(void **state)
{
	(void)state;
	assert_true(glob("[abc]", "b"));
	assert_false(glob("[abc]", "d"));
	assert_true(glob("[a-c]x", "cx"));
	assert_false(glob("[a-c]x", "dx"));
	assert_true(glob("[a-cx-z]", "y"));
	assert_false(glob("[a-cx-z]", "m"));
	assert_true(glob("[!a-c]", "d"));
	assert_false(glob("[!a-c]", "b"));
	assert_false(glob("[!a]", ""));
	/* ']' first is a member; '-' first or last is a member. */
	assert_true(glob("[]a]", "]"));
	assert_true(glob("[!]a]", "b"));
	assert_false(glob("[!]a]", "]"));
	assert_true(glob("[-a]", "-"));
	assert_true(glob("[a-]", "-"));
	assert_false(glob("[a-]", "b"));
	/* A one-byte range, and a class is one byte, not a string. */
	assert_true(glob("[b-b]", "b"));
	assert_false(glob("[ab]", "ab"));
	/* Specials lose their meaning inside a class. */
	assert_true(glob("[*?]", "?"));
	assert_false(glob("[*?]", "x"));
	assert_true(glob("[[]", "["));
	/* '!' anywhere but first is a member; '^' is only a byte. */
	assert_true(glob("[a!]", "!"));
	assert_true(glob("[^a]", "^"));
	assert_false(glob("[^a]", "b"));
}

static void
test_glob_escapes(void **state)
{
	(void)state;
	assert_true(glob("a\\*", "a*"));
	assert_false(glob("a\\*", "ab"));
	assert_true(glob("\\?", "?"));
	assert_false(glob("\\?", "x"));
	assert_true(glob("\\[x]", "[x]"));
	assert_true(glob("\\\\", "\\"));
	assert_true(glob("\\a", "a"));
	assert_true(glob("[\\]]", "]"));
	assert_true(glob("[\\!a]", "!"));
	assert_true(glob("[a\\-z]", "-"));
	assert_false(glob("[a\\-z]", "m"));
	assert_true(glob("[\\a-\\c]", "b"));
	assert_true(glob("*\\*", "abc*"));
	assert_false(glob("*\\*", "abc"));
}

static void
test_glob_is_byte_based(void **state)
{
	(void)state;
	/* Bytes past 0x7f compare unsigned, in classes and ranges too. */
	assert_true(glob("?", "\xc3"));
	assert_false(glob("?", "\xc3\xa9"));
	assert_true(glob("??", "\xc3\xa9"));
	assert_true(glob("[\x80-\xff]", "\xc3"));
	assert_false(glob("[\x80-\xff]", "a"));
	assert_true(glob("[!\x80-\xff]", "a"));
	assert_true(sl_glob_match("a?b", 3, "a\0b", 3));
	assert_true(sl_glob_match("a*", 2, "a\0\0", 3));
}

static void
test_glob_malformed_matches_nothing(void **state)
{
	(void)state;
	assert_false(glob("[", "["));
	assert_false(glob("a[", "a["));
	assert_false(glob("*[", "x["));
	assert_false(glob("[]", "]"));
	assert_false(glob("a\\", "a\\"));
	assert_false(glob("a\\", "a"));
	assert_false(glob("[b-a]", "a"));
	assert_false(glob("*[b-a]", "xb"));
}

static void
test_glob_pathological_star_runs_finish(void **state)
{
	const size_t len = HARNESS_SCALE(200000, 50000);
	char *s = malloc(len + 2);
	char pat[64];
	size_t p = 0;

	(void)state;
	assert_non_null(s);
	memset(s, 'a', len);
	s[len] = 'b';
	s[len + 1] = '\0';

	/* a*a*...*b: backtracking at every star would be exponential. */
	for (int i = 0; i < 12; i++) {
		pat[p++] = 'a';
		pat[p++] = '*';
	}
	pat[p++] = 'b';
	pat[p] = '\0';
	assert_false(sl_glob_match(pat, p, s, len));
	assert_true(sl_glob_match(pat, p, s, len + 1));

	assert_false(sl_glob_match("*a*a*a*a*a*a*a*a*a*a*c", 22, s, len + 1));
	assert_true(sl_glob_match("*a*a*a*a*a*a*a*a*a*a*b", 22, s, len + 1));
	assert_false(sl_glob_match("*?*?*?*?*?*?*?*?*?*?c", 21, s, len + 1));
	free(s);
}

/* ---- a reference glob matcher ---- */

/*
 * The reference parses a pattern into one element per position (a star or
 * a set of bytes) and matches by dynamic programming over (element, byte),
 * so it has nothing in common with the backtracking matcher under test.
 */
struct ref_elem {
	bool star;
	uint64_t set[4];	/* bytes this element accepts */
};

static void
ref_set_add(struct ref_elem *e, unsigned lo, unsigned hi)
{
	for (unsigned b = lo; b <= hi; b++)
		e->set[b / 64] |= 1ull << (b % 64);
}

static bool
ref_set_has(const struct ref_elem *e, unsigned char b)
{
	return e->set[b / 64] >> (b % 64) & 1;
}

/* The byte at pat[*i], honouring an escape; false at the end. */
static bool
ref_take(const char *pat, size_t len, size_t *i, unsigned char *b)
{
	if (*i < len && pat[*i] == '\\')
		++*i;
	if (*i >= len)
		return false;
	*b = (unsigned char)pat[(*i)++];
	return true;
}

static bool
ref_parse_class(const char *pat, size_t len, size_t *i, struct ref_elem *e)
{
	bool negate = false;
	size_t start;

	++*i;
	if (*i < len && pat[*i] == '!') {
		negate = true;
		++*i;
	}
	start = *i;
	while (*i >= len || pat[*i] != ']' || *i == start) {
		unsigned char lo, hi;

		if (!ref_take(pat, len, i, &lo))
			return false;
		hi = lo;
		if (*i + 1 < len && pat[*i] == '-' && pat[*i + 1] != ']') {
			++*i;
			if (!ref_take(pat, len, i, &hi) || hi < lo)
				return false;
		}
		ref_set_add(e, lo, hi);
	}
	++*i;
	if (negate) {
		for (int w = 0; w < 4; w++)
			e->set[w] = ~e->set[w];
	}
	return true;
}

/* Parse into @v (room for @len elements); -1 for a malformed pattern. */
static int
ref_parse(const char *pat, size_t len, struct ref_elem *v)
{
	size_t i = 0;
	int n = 0;

	while (i < len) {
		struct ref_elem *e = &v[n++];
		unsigned char b;

		memset(e, 0, sizeof(*e));
		if (pat[i] == '*') {
			e->star = true;
			i++;
		} else if (pat[i] == '?') {
			ref_set_add(e, 0, 255);
			i++;
		} else if (pat[i] == '[') {
			if (!ref_parse_class(pat, len, &i, e))
				return -1;
		} else {
			if (!ref_take(pat, len, &i, &b))
				return -1;
			ref_set_add(e, b, b);
		}
	}
	return n;
}

#define REF_MAX 64

/* ok[j] after element k: can the first k elements match s[0..j)? */
static bool
ref_glob(const char *pat, size_t plen, const char *s, size_t len)
{
	struct ref_elem v[REF_MAX];
	bool ok[REF_MAX + 1], next[REF_MAX + 1];
	int n;

	assert_true(plen <= REF_MAX && len <= REF_MAX);
	n = ref_parse(pat, plen, v);
	if (n < 0)
		return false;
	memset(ok, 0, sizeof(ok));
	ok[0] = true;
	for (int k = 0; k < n; k++) {
		memset(next, 0, sizeof(next));
		for (size_t j = 0; j <= len; j++) {
			if (v[k].star)
				next[j] = ok[j] || (j && next[j - 1]);
			else if (j)
				next[j] = ok[j - 1] &&
					  ref_set_has(&v[k],
						      (unsigned char)s[j - 1]);
		}
		memcpy(ok, next, sizeof(ok));
	}
	return ok[len];
}

/* ---- random patterns, kinds and rules ---- */

static uint64_t rng;

static unsigned
rnd(unsigned n)
{
	return (unsigned)(harness_random(&rng) % n);
}

static const char kind_bytes[] = "ab.*\xc3";

static size_t
random_string(char *buf, size_t min, size_t max, const char *alphabet)
{
	size_t len = min + rnd((unsigned)(max - min + 1));
	size_t na = strlen(alphabet);

	for (size_t i = 0; i < len; i++)
		buf[i] = alphabet[rnd((unsigned)na)];
	buf[len] = '\0';
	return len;
}

/* A glob over kind_bytes; malformed only if @allow_faults. */
static size_t
random_glob(char *buf, size_t room, bool allow_faults)
{
	static const char *const well_formed[] = {
		"*", "*", "?", "a", "b", ".", "\xc3", "\\*", "\\a", "\\\\",
		"[ab]", "[!a]", "[a-b]", "[!.-a]", "[]a]", "[\\*.]", "[*]",
		"[\x80-\xff]", "[-a]", "[a-]",
	};
	static const char *const faults[] = {"[", "\\", "[b-a]", "[a"};
	size_t n = 1 + rnd(6), len = 0;

	for (size_t i = 0; i < n; i++) {
		const char *el = well_formed[rnd(SL_ARRAY_SIZE(well_formed))];

		if (allow_faults && rnd(20) == 0)
			el = faults[rnd(SL_ARRAY_SIZE(faults))];
		if (len + strlen(el) >= room)
			break;
		memcpy(buf + len, el, strlen(el));
		len += strlen(el);
	}
	buf[len] = '\0';
	return len;
}

static void
test_glob_matches_reference(void **state)
{
	const int rounds = HARNESS_SCALE(200000, 40000);
	int matched = 0;

	(void)state;
	rng = 0x5eed0001;
	for (int r = 0; r < rounds; r++) {
		char pat[REF_MAX], s[16];
		size_t plen = random_glob(pat, sizeof(pat), true);
		size_t len = random_string(s, 0, 8, kind_bytes);
		bool got = sl_glob_match(pat, plen, s, len);
		bool want = ref_glob(pat, plen, s, len);

		if (got != want)
			fail_msg("glob \"%s\" on \"%s\": %d, reference %d", pat,
				 s, got, want);
		matched += got;
	}
	/* The generator must exercise both answers, not just one. */
	assert_in_range(matched, rounds / 100, rounds - rounds / 100);
}

/* Globs the reference rejects are exactly those the build rejects. */
static void
test_glob_faults_match_reference(void **state)
{
	const int rounds = HARNESS_SCALE(20000, 5000);
	int rejected = 0;

	(void)state;
	rng = 0x5eed0002;
	for (int r = 0; r < rounds; r++) {
		struct sl_route_rule rule = GLOB("g", NULL);
		struct ref_elem v[REF_MAX];
		char pat[REF_MAX], err[256];
		size_t plen = random_glob(pat, sizeof(pat), true);
		struct sl_route_table *t;
		bool bad;

		if (!plen)
			continue;
		rule.kind = pat;
		bad = ref_parse(pat, plen, v) < 0;
		t = sl_route_table_build(&rule, 1, err, sizeof(err));
		if (bad != !t)
			fail_msg("glob \"%s\": reference says %s, build %s",
				 pat, bad ? "malformed" : "fine",
				 t ? "accepted it" : err);
		rejected += bad;
		sl_route_table_free(t);
	}
	assert_in_range(rejected, rounds / 20, rounds / 2);
}

/* ---- whole tables against a reference ---- */

struct rand_table {
	struct sl_route_rule *rules;
	char (*text)[3][REF_MAX];	/* name, pattern, key prefix */
	size_t n;
};

static void
rand_table_make(struct rand_table *rt, size_t n, bool with_default)
{
	rt->n = n;
	rt->rules = calloc(n ? n : 1, sizeof(*rt->rules));
	rt->text = calloc(n ? n : 1, sizeof(*rt->text));
	assert_non_null(rt->rules);
	assert_non_null(rt->text);

	for (size_t i = 0; i < n; i++) {
		struct sl_route_rule *r = &rt->rules[i];
		char *pat = rt->text[i][1], *kp = rt->text[i][2];

		snprintf(rt->text[i][0], REF_MAX, "r%zu", i);
		r->name = rt->text[i][0];
		r->how = (enum sl_match)rnd(4);
		if (r->how == SL_MATCH_GLOB)
			random_glob(pat, REF_MAX, false);
		if (r->how != SL_MATCH_GLOB || !pat[0])
			random_string(pat, 1, 5, "ab.c");
		r->kind = r->how == SL_MATCH_ANY ? NULL : pat;

		switch (rnd(4)) {
		case 0:
			r->key_prefix = NULL;
			break;
		case 1:
			r->key_prefix = "";
			break;
		default:
			random_string(kp, 1, 2, "xy");
			r->key_prefix = kp;
			break;
		}
	}
	if (with_default && n) {
		struct sl_route_rule *d = &rt->rules[rnd((unsigned)n)];

		d->is_default = true;
		d->kind = NULL;
		d->key_prefix = NULL;
	}
}

static void
rand_table_free(struct rand_table *rt)
{
	free(rt->rules);
	free(rt->text);
}

static bool
ref_rule_matches(const struct sl_route_rule *r, const char *kind,
		 size_t kind_len, const char *key, size_t key_len)
{
	size_t plen = r->kind ? strlen(r->kind) : 0;
	size_t kplen = r->key_prefix ? strlen(r->key_prefix) : 0;
	bool kind_ok = false;

	if (kplen > key_len || strncmp(key, r->key_prefix ? r->key_prefix : "",
				       kplen))
		return false;
	switch (r->how) {
	case SL_MATCH_EXACT:
		kind_ok = plen == kind_len && !memcmp(r->kind, kind, plen);
		break;
	case SL_MATCH_PREFIX:
		kind_ok = plen <= kind_len && !memcmp(r->kind, kind, plen);
		break;
	case SL_MATCH_GLOB:
		kind_ok = ref_glob(r->kind, plen, kind, kind_len);
		break;
	case SL_MATCH_ANY:
		kind_ok = true;
		break;
	}
	return kind_ok;
}

/* The obvious way: every rule in order, then the default. */
static size_t
ref_match(const struct rand_table *rt, const char *kind, size_t kind_len,
	  const char *key, size_t key_len, uint32_t *out)
{
	size_t n = 0, deflt = SIZE_MAX;

	for (size_t i = 0; i < rt->n; i++) {
		if (rt->rules[i].is_default)
			deflt = i;
		else if (ref_rule_matches(&rt->rules[i], kind, kind_len, key,
					  key_len))
			out[n++] = (uint32_t)i;
	}
	if (!n && deflt != SIZE_MAX)
		out[n++] = (uint32_t)deflt;
	return n;
}

/* Match @kinds random kinds against @rt; return how many matched any. */
static size_t
cross_check(const struct rand_table *rt, const struct sl_route_table *t,
	    int kinds)
{
	uint32_t *got = malloc((rt->n + 1) * sizeof(*got));
	uint32_t *want = malloc((rt->n + 1) * sizeof(*want));
	size_t hits = 0;

	assert_non_null(got);
	assert_non_null(want);
	for (int k = 0; k < kinds; k++) {
		char kind[16], key[8];
		size_t kl = random_string(kind, 0, 7, kind_bytes);
		size_t keyl = random_string(key, 0, 3, "xy");
		size_t nw = ref_match(rt, kind, kl, key, keyl, want);
		size_t max = rnd(4) ? rt->n + 1 : rnd(3);
		size_t ng = sl_route_match(t, kind, kl, key, keyl, got, max);

		if (ng != nw)
			fail_msg("kind \"%s\" key \"%s\": %zu matches, "
				 "reference %zu", kind, key, ng, nw);
		for (size_t i = 0; i < nw && i < max; i++) {
			if (got[i] != want[i])
				fail_msg("kind \"%s\" key \"%s\": match %zu is "
					 "%u, reference %u", kind, key, i,
					 got[i], want[i]);
		}
		hits += nw > 0;
	}
	free(got);
	free(want);
	return hits;
}

static void
test_route_match_agrees_with_reference(void **state)
{
	const int tables = HARNESS_SCALE(400, 100);
	size_t checked = 0, hits = 0;

	(void)state;
	rng = 0x5eed0003;
	for (int i = 0; i < tables; i++) {
		struct rand_table rt;
		struct sl_route_table *t;

		rand_table_make(&rt, rnd(40), rnd(2));
		t = build_ok(rt.rules, rt.n);
		hits += cross_check(&rt, t, 300);
		checked += 300;
		sl_route_table_free(t);
		rand_table_free(&rt);
	}
	assert_in_range(hits, checked / 4, checked - 1);
}

static void
test_route_match_agrees_with_reference_large(void **state)
{
	const size_t n = HARNESS_SCALE(5000, 2000);
	struct rand_table rt;
	struct sl_route_table *t;

	(void)state;
	rng = 0x5eed0004;
	rand_table_make(&rt, n, true);
	t = build_ok(rt.rules, rt.n);
	assert_in_range(cross_check(&rt, t, HARNESS_SCALE(3000, 600)), 1,
			UINT32_MAX);
	sl_route_table_free(t);
	rand_table_free(&rt);
}

/* ---- matching from many threads ---- */

#define SHARED_KINDS 512
#define SHARED_THREADS 4

struct shared {
	struct sl_route_table *t;
	char kinds[SHARED_KINDS][16];
	char keys[SHARED_KINDS][8];
	uint32_t want[SHARED_KINDS][MATCH_MAX];
	size_t nwant[SHARED_KINDS];
	int rounds;
	_Atomic uint64_t wrong;
};

static void *
shared_matcher(void *arg)
{
	struct shared *sh = arg;
	uint32_t out[MATCH_MAX];

	for (int r = 0; r < sh->rounds; r++) {
		for (size_t k = 0; k < SHARED_KINDS; k++) {
			size_t n = match(sh->t, sh->kinds[k], sh->keys[k], out);

			if (n != sh->nwant[k] ||
			    memcmp(out, sh->want[k], n * sizeof(*out)))
				atomic_fetch_add(&sh->wrong, 1);
		}
	}
	return NULL;
}

/* A table is read-only: matchers on several threads need no lock. */
static void
test_route_match_from_many_threads(void **state)
{
	struct shared *sh = calloc(1, sizeof(*sh));
	pthread_t th[SHARED_THREADS];
	struct rand_table rt;

	(void)state;
	assert_non_null(sh);
	rng = 0x5eed0005;
	rand_table_make(&rt, 48, true);
	sh->t = build_ok(rt.rules, rt.n);
	sh->rounds = HARNESS_SCALE(200, 40);
	for (size_t k = 0; k < SHARED_KINDS; k++) {
		random_string(sh->kinds[k], 0, 7, "ab.c");
		random_string(sh->keys[k], 0, 3, "xy");
		sh->nwant[k] = match(sh->t, sh->kinds[k], sh->keys[k],
				     sh->want[k]);
		assert_in_range(sh->nwant[k], 0, MATCH_MAX);
	}

	for (int i = 0; i < SHARED_THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, shared_matcher,
						sh), 0);
	for (int i = 0; i < SHARED_THREADS; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(atomic_load(&sh->wrong), 0);

	sl_route_table_free(sh->t);
	rand_table_free(&rt);
	free(sh);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_route_exact_matches_whole_kind),
		cmocka_unit_test(test_route_exact_compares_bytes_not_c_strings),
		cmocka_unit_test(test_route_prefix_matches_start_of_kind),
		cmocka_unit_test(test_route_glob_matches_whole_kind),
		cmocka_unit_test(test_route_any_matches_every_kind),
		cmocka_unit_test(test_route_match_lists_hits_in_rule_order),
		cmocka_unit_test(test_route_docs_example),
		cmocka_unit_test(test_route_match_counts_past_max),
		cmocka_unit_test(test_route_key_prefix_filters_candidates),
		cmocka_unit_test(test_route_key_prefix_is_bytes),
		cmocka_unit_test(test_route_default_only_when_nothing_matches),
		cmocka_unit_test(test_route_default_alone_in_table),
		cmocka_unit_test(test_route_no_default_leaves_unmatched),
		cmocka_unit_test(test_route_empty_table_matches_nothing),
		cmocka_unit_test(test_route_build_rejects_bad_rules),
		cmocka_unit_test(test_route_build_rejects_missing_array),
		cmocka_unit_test(test_route_build_error_buffer_is_optional),
		cmocka_unit_test(test_route_table_copies_strings),
		cmocka_unit_test(test_glob_star_and_question),
		cmocka_unit_test(test_glob_empty_pattern_and_string),
		cmocka_unit_test(test_glob_classes),
		cmocka_unit_test(test_glob_escapes),
		cmocka_unit_test(test_glob_is_byte_based),
		cmocka_unit_test(test_glob_malformed_matches_nothing),
		cmocka_unit_test(test_glob_pathological_star_runs_finish),
		cmocka_unit_test(test_glob_matches_reference),
		cmocka_unit_test(test_glob_faults_match_reference),
		cmocka_unit_test(test_route_match_agrees_with_reference),
		cmocka_unit_test(test_route_match_agrees_with_reference_large),
		cmocka_unit_test(test_route_match_from_many_threads),
	};

	harness_init();
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
