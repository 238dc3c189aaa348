/* SPDX-License-Identifier: MIT */
/*
 * Route matching: which routes an event belongs to, by its kind and key.
 *
 * A table is built once from a list of rules and never changes; a reload
 * builds a new table and swaps the pointer (the router does that), so
 * matching takes no lock.  Matching cost does not grow with the number of
 * exact-kind rules (a hash lookup); prefix rules are found by walking the
 * kind's prefixes in a sorted table; glob rules are tried one by one.
 */
#ifndef SLUICE_ROUTER_ROUTE_H
#define SLUICE_ROUTER_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sl_match {
	SL_MATCH_EXACT,		/* kind == pattern */
	SL_MATCH_PREFIX,	/* kind starts with pattern */
	SL_MATCH_GLOB,		/* '*' any run, '?' one byte, [a-z] [!x] classes,
				 * '\\' escapes; the whole kind must match */
	SL_MATCH_ANY,		/* every kind */
};

struct sl_route_rule {
	const char *name;	/* unique within a table */
	enum sl_match how;
	const char *kind;	/* the pattern (ignored for ANY) */
	const char *key_prefix;	/* NULL or "": every key */
	/* The route for events no other rule matches (at most one).  It
	 * takes exactly those events; its own match fields are not used and
	 * must be left empty. */
	bool is_default;
};

struct sl_route_table;

/**
 * sl_route_table_build() - compile @n rules.
 * @err: on failure, a message naming the rule and the fault (duplicate
 *	name, empty or malformed pattern, two defaults).
 * Return: the table, or NULL.
 */
struct sl_route_table *sl_route_table_build(const struct sl_route_rule *rules,
					    size_t n, char *err,
					    size_t errlen);
void sl_route_table_free(struct sl_route_table *t);

size_t sl_route_table_size(const struct sl_route_table *t);
/* The rule at @idx, as given (strings are the table's own copies). */
const struct sl_route_rule *sl_route_table_rule(const struct sl_route_table *t,
						size_t idx);

/**
 * sl_route_match() - the indices of every rule that matches, in rule order,
 * or the default rule's alone if none does.
 * Return: the number of matches (may exceed @max; only @max are written);
 * 0 means unmatched with no default.
 */
size_t sl_route_match(const struct sl_route_table *t, const char *kind,
		      size_t kind_len, const char *key, size_t key_len,
		      uint32_t *out, size_t max);

/* sl_glob_match() - the glob matcher on its own. */
bool sl_glob_match(const char *pat, size_t pat_len, const char *s,
		   size_t len);

#endif /* SLUICE_ROUTER_ROUTE_H */
