/* SPDX-License-Identifier: MIT */
/*
 * Route tables: rules checked and compiled once, then matched from any
 * number of threads without a lock.
 *
 * Glossary.  A rule names a route and says which events belong to it: by
 * kind (exact, prefix, glob or any) and, optionally, by a key prefix.  A
 * table is the compiled form of one list of rules.  A group is the set of
 * rules that share one exact or one prefix pattern.
 *
 * Approach.  Each match kind gets the index that makes its lookup cheap:
 *
 *   exact   an open-addressing hash table from pattern to group, so one
 *           hash of the kind and (almost always) one probe finds every
 *           exact rule that applies, however many exact rules there are;
 *   prefix  groups sorted by (length, bytes); for each prefix length that
 *           occurs, one binary search for the kind's first that many bytes,
 *           so the walk touches only prefixes of the kind;
 *   glob    a list tried in rule order (iterative matcher, see below);
 *   any     a list, every entry a candidate.
 *
 * Each candidate then passes its rule's key prefix or is dropped.  Each of
 * the four sources yields rule indices in ascending order, but they
 * interleave, so hits go into the caller's array by insertion; the array
 * stays sorted and holds the smallest @max indices.
 *
 * Rejected.  A trie over all prefix patterns would find every matching
 * prefix in one walk of the kind, but costs a node per pattern byte and
 * pointer chasing on every lookup; a table usually has few distinct
 * prefix lengths, so a binary search per length is cheaper.  Compiling
 * globs to automata would make each glob linear, but globs are few and
 * short, and the backtracking matcher below is already bounded by
 * pattern x kind length.
 *
 * The default rule is not a candidate at all: it takes every event that
 * no other rule matches, so it carries no pattern or key prefix (the build
 * refuses one rather than ignore it) and sits in none of the indexes.
 *
 * Invariants.
 *  1. A table never changes after sl_route_table_build() returns, so any
 *     number of threads may match against it at once.
 *  2. Every rule index appears in exactly one source (exact group, prefix
 *     group, glob list, any list), or in none if it is the default rule.
 *  3. Within every group and list, indices ascend.
 *  4. Every string a table points to lives in its own string block.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mimalloc.h>

#include "core/base.h"
#include "router/event.h"
#include "router/route.h"

#define ROUTE_NONE UINT32_MAX

/* A pattern or name with its rule index, for sorting and grouping. */
struct route_key {
	const char *s;
	size_t len;
	uint32_t idx;
};

/* One distinct exact or prefix pattern and the rules that use it. */
struct route_group {
	const char *pat;
	size_t len;
	uint64_t hash;		/* of the pattern; exact groups only */
	uint32_t first;		/* into members[] */
	uint32_t count;
};

/* The prefix groups of one length: prefix[lo..hi), sorted by bytes. */
struct route_len_range {
	size_t len;
	uint32_t lo;
	uint32_t hi;
};

/* What matching needs of a rule besides its indices. */
struct route_compiled {
	const char *pat;
	size_t pat_len;
	const char *key_prefix;
	size_t key_prefix_len;
};

struct sl_route_table {
	size_t n;
	struct sl_route_rule *rules;	/* as given, strings copied */
	struct route_compiled *comp;	/* per rule */
	char *strings;			/* every copied string, back to back */

	uint32_t *members;		/* exact groups' rules, then prefix's */
	struct route_group *exact;
	uint32_t n_exact;
	uint32_t *slots;		/* group index + 1; 0 is empty */
	uint32_t slot_mask;

	struct route_group *prefix;
	uint32_t n_prefix;
	struct route_len_range *lens;	/* ascending by length */
	uint32_t n_lens;

	uint32_t *globs;
	uint32_t n_globs;
	uint32_t *any;
	uint32_t n_any;
	uint32_t default_idx;		/* ROUTE_NONE without a default */
};

/* ---- glob matching ---- */

/*
 * The outcome of one glob element against one byte.  The faults are only
 * ever seen by the checker: a well-formed pattern produces none, and the
 * matcher treats one as "no match", so a malformed pattern matches nothing.
 */
enum glob_step {
	GLOB_NO,
	GLOB_YES,
	GLOB_UNCLOSED,		/* '[' without its ']' */
	GLOB_TRAILING,		/* '\\' as the last byte */
	GLOB_REVERSED,		/* a range like z-a */
};

/* One byte of a class, itself possibly escaped; advances *j past it. */
static enum glob_step
glob_class_byte(const char *pat, size_t plen, size_t *j, unsigned char *b)
{
	size_t i = *j;

	if (pat[i] == '\\') {
		/* The escape's target is missing, so the ']' is too. */
		if (i + 1 == plen)
			return GLOB_UNCLOSED;
		i++;
	}
	*b = (unsigned char)pat[i];
	*j = i + 1;
	return GLOB_YES;
}

/*
 * Match @c against the class opening at pat[*p] ('[') and leave *p past its
 * ']'.  A ']' right after the '[' (or the '!') is a member, not the end,
 * and so is a '-' that cannot make a range.  The whole class is read even
 * after a hit, so a fault later in it is never hidden.
 */
static enum glob_step
glob_class(const char *pat, size_t plen, size_t *p, unsigned char c,
	   size_t *fault_at)
{
	size_t j = *p + 1;
	bool negate = false, hit = false, first = true;

	if (j < plen && pat[j] == '!') {
		negate = true;
		j++;
	}
	for (;;) {
		unsigned char lo, hi;
		size_t at = j;

		if (j >= plen)
			goto unclosed;
		if (pat[j] == ']' && !first)
			break;
		first = false;

		if (glob_class_byte(pat, plen, &j, &lo) != GLOB_YES)
			goto unclosed;
		hi = lo;
		if (j + 1 < plen && pat[j] == '-' && pat[j + 1] != ']') {
			j++;
			if (glob_class_byte(pat, plen, &j, &hi) != GLOB_YES)
				goto unclosed;
			if (hi < lo) {
				*fault_at = at;
				return GLOB_REVERSED;
			}
		}
		if (lo <= c && c <= hi)
			hit = true;
	}
	*p = j + 1;
	return hit != negate ? GLOB_YES : GLOB_NO;

unclosed:
	*fault_at = *p;
	return GLOB_UNCLOSED;
}

/*
 * Match @c against the single-byte element at pat[*p] (anything but '*')
 * and leave *p past it.  On a fault, *fault_at is where the element starts.
 */
static enum glob_step
glob_element(const char *pat, size_t plen, size_t *p, unsigned char c,
	     size_t *fault_at)
{
	size_t i = *p;
	unsigned char want;

	switch (pat[i]) {
	case '?':
		*p = i + 1;
		return GLOB_YES;
	case '[':
		return glob_class(pat, plen, p, c, fault_at);
	case '\\':
		if (i + 1 == plen) {
			*fault_at = i;
			return GLOB_TRAILING;
		}
		want = (unsigned char)pat[i + 1];
		*p = i + 2;
		break;
	default:
		want = (unsigned char)pat[i];
		*p = i + 1;
		break;
	}
	return want == c ? GLOB_YES : GLOB_NO;
}

/*
 * Every element other than '*' consumes exactly one byte, so when a match
 * fails after a '*' it is enough to let the most recent '*' swallow one
 * more byte and resume after it: an earlier '*' taking more could only
 * lead to positions the latest one already covers.  Each restart moves
 * the star's start in @s on by one byte and, between restarts, the
 * pattern position only advances, so there are at most pat_len x len
 * element tests, and no recursion.
 */
bool
sl_glob_match(const char *pat, size_t pat_len, const char *s, size_t len)
{
	size_t p = 0, i = 0;
	size_t star_p = SIZE_MAX, star_i = 0;
	size_t fault;

	while (i < len) {
		if (p < pat_len && pat[p] == '*') {
			while (p < pat_len && pat[p] == '*')
				p++;
			star_p = p;
			star_i = i;
			continue;
		}
		if (p < pat_len) {
			size_t next = p;
			enum glob_step r = glob_element(pat, pat_len, &next,
							(unsigned char)s[i],
							&fault);

			if (r == GLOB_YES) {
				p = next;
				i++;
				continue;
			}
			if (r != GLOB_NO)
				return false;
		}
		if (star_p == SIZE_MAX)
			return false;
		p = star_p;
		i = ++star_i;
	}

	while (p < pat_len && pat[p] == '*')
		p++;
	return p == pat_len;
}

/*
 * Walk @pat once and report its first fault in @why.  Each element is fed
 * a byte only to learn its extent; the answer is ignored.
 */
static int
glob_check(const char *pat, size_t plen, char *why, size_t whylen)
{
	size_t p = 0, fault = 0;

	while (p < plen) {
		enum glob_step r;

		if (pat[p] == '*') {
			p++;
			continue;
		}
		r = glob_element(pat, plen, &p, 0, &fault);
		switch (r) {
		case GLOB_NO:
		case GLOB_YES:
			continue;
		case GLOB_UNCLOSED:
			snprintf(why, whylen, "'[' at offset %zu is not closed",
				 fault);
			return -EINVAL;
		case GLOB_TRAILING:
			snprintf(why, whylen,
				 "'\\' at offset %zu ends the pattern", fault);
			return -EINVAL;
		case GLOB_REVERSED:
			snprintf(why, whylen,
				 "the range at offset %zu runs backwards",
				 fault);
			return -EINVAL;
		}
	}
	return 0;
}

/* ---- building: validation ---- */

static int
route_key_cmp(const void *a, const void *b)
{
	const struct route_key *x = a, *y = b;
	int c;

	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	c = memcmp(x->s, y->s, x->len);
	if (c)
		return c;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static bool
route_key_same(const struct route_key *x, const struct route_key *y)
{
	return x->len == y->len && memcmp(x->s, y->s, x->len) == 0;
}

/*
 * For each rule, the index of the first rule with the same name, or
 * ROUTE_NONE if it is the first.  Sorting (not a hash set) keeps this
 * O(n log n) with no worst case.
 */
static uint32_t *
route_name_firsts(const struct sl_route_rule *rules, size_t n)
{
	struct route_key *keys = mi_malloc((n ? n : 1) * sizeof(*keys));
	uint32_t *firsts = mi_malloc((n ? n : 1) * sizeof(*firsts));

	if (!keys || !firsts) {
		mi_free(keys);
		mi_free(firsts);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		/* A missing name is reported by the caller, in rule order. */
		keys[i].s = rules[i].name ? rules[i].name : "";
		keys[i].len = strlen(keys[i].s);
		keys[i].idx = (uint32_t)i;
	}
	qsort(keys, n, sizeof(*keys), route_key_cmp);

	for (size_t i = 0, first = 0; i < n; i++) {
		if (i && !route_key_same(&keys[i], &keys[first]))
			first = i;
		firsts[keys[i].idx] = i == first ? ROUTE_NONE : keys[first].idx;
	}
	mi_free(keys);
	return firsts;
}

/*
 * The default route takes the events no other rule matches, whatever their
 * kind or key, so a pattern or key prefix on it could only mislead: it is
 * refused rather than ignored.  Its match kind is not looked at.
 */
static int
route_check_default(const struct sl_route_rule *r, char *why, size_t whylen)
{
	if (r->kind && r->kind[0]) {
		snprintf(why, whylen,
			 "the default route takes no pattern (it gets every "
			 "event no other route matches)");
		return -EINVAL;
	}
	if (r->key_prefix && r->key_prefix[0]) {
		snprintf(why, whylen,
			 "the default route takes no key prefix (it gets "
			 "every event no other route matches)");
		return -EINVAL;
	}
	return 0;
}

/* The checks one rule must pass on its own, in the order reported. */
static int
route_check_rule(const struct sl_route_rule *r, char *why, size_t whylen)
{
	if (r->is_default)
		return route_check_default(r, why, whylen);
	switch (r->how) {
	case SL_MATCH_EXACT:
	case SL_MATCH_PREFIX:
	case SL_MATCH_GLOB:
		break;
	case SL_MATCH_ANY:
		return 0;
	default:
		snprintf(why, whylen, "unknown match kind %d", (int)r->how);
		return -EINVAL;
	}
	if (!r->kind || !r->kind[0]) {
		snprintf(why, whylen, "the pattern is empty");
		return -EINVAL;
	}
	if (r->how == SL_MATCH_GLOB) {
		size_t len = strlen(r->kind);
		char fault[64];

		if (glob_check(r->kind, len, fault, sizeof(fault))) {
			snprintf(why, whylen, "glob \"%s\": %s", r->kind,
				 fault);
			return -EINVAL;
		}
	}
	return 0;
}

/*
 * Check every rule in order and report the first fault, naming the rule.
 * Return: 0, -EINVAL (with @err set) or -ENOMEM.
 */
static int
route_validate(const struct sl_route_rule *rules, size_t n, char *err,
	       size_t errlen)
{
	uint32_t *firsts;
	size_t deflt = SIZE_MAX;
	char why[256];
	int rc = 0;

	firsts = route_name_firsts(rules, n);
	if (!firsts)
		return -ENOMEM;

	for (size_t i = 0; i < n && !rc; i++) {
		const struct sl_route_rule *r = &rules[i];

		if (!r->name || !r->name[0]) {
			snprintf(err, errlen,
				 "the rule at index %zu has no name", i);
			rc = -EINVAL;
		} else if (firsts[i] != ROUTE_NONE) {
			snprintf(err, errlen,
				 "route \"%s\": the name is already used by "
				 "the rule at index %u", r->name, firsts[i]);
			rc = -EINVAL;
		} else if (route_check_rule(r, why, sizeof(why))) {
			snprintf(err, errlen, "route \"%s\": %s", r->name, why);
			rc = -EINVAL;
		} else if (r->is_default && deflt != SIZE_MAX) {
			snprintf(err, errlen,
				 "route \"%s\": a second default route "
				 "(\"%s\" is one already)",
				 r->name, rules[deflt].name);
			rc = -EINVAL;
		} else if (r->is_default) {
			deflt = i;
		}
	}
	mi_free(firsts);
	return rc;
}

/* ---- building: compiling ---- */

static char *
route_copy_string(char **cursor, const char *s)
{
	char *copy = *cursor;
	size_t len;

	if (!s)
		return NULL;
	len = strlen(s) + 1;
	memcpy(copy, s, len);
	*cursor += len;
	return copy;
}

/* Copy the rules and every string they point to into one block. */
static int
table_copy_rules(struct sl_route_table *t, const struct sl_route_rule *rules)
{
	size_t bytes = 1;
	char *cursor;

	for (size_t i = 0; i < t->n; i++) {
		bytes += strlen(rules[i].name) + 1;
		bytes += rules[i].kind ? strlen(rules[i].kind) + 1 : 0;
		bytes += rules[i].key_prefix ? strlen(rules[i].key_prefix) + 1
					     : 0;
	}
	t->strings = mi_malloc(bytes);
	t->rules = mi_calloc(t->n ? t->n : 1, sizeof(*t->rules));
	t->comp = mi_calloc(t->n ? t->n : 1, sizeof(*t->comp));
	if (!t->strings || !t->rules || !t->comp)
		return -ENOMEM;

	cursor = t->strings;
	for (size_t i = 0; i < t->n; i++) {
		struct sl_route_rule *r = &t->rules[i];
		struct route_compiled *c = &t->comp[i];

		*r = rules[i];
		r->name = route_copy_string(&cursor, rules[i].name);
		r->kind = route_copy_string(&cursor, rules[i].kind);
		r->key_prefix = route_copy_string(&cursor,
						  rules[i].key_prefix);
		c->pat = r->kind;
		c->pat_len = r->kind ? strlen(r->kind) : 0;
		c->key_prefix = r->key_prefix;
		c->key_prefix_len = r->key_prefix ? strlen(r->key_prefix) : 0;
	}
	return 0;
}

/*
 * Sorted keys of every non-default rule matching by @how, or NULL with
 * *count 0 when there are none.  -ENOMEM through *rc.
 */
static struct route_key *
table_sorted_keys(const struct sl_route_table *t, enum sl_match how,
		  size_t *count, int *rc)
{
	struct route_key *keys;
	size_t k = 0;

	*count = 0;
	for (size_t i = 0; i < t->n; i++)
		k += t->rules[i].how == how && !t->rules[i].is_default;
	if (!k)
		return NULL;
	keys = mi_malloc(k * sizeof(*keys));
	if (!keys) {
		*rc = -ENOMEM;
		return NULL;
	}

	k = 0;
	for (size_t i = 0; i < t->n; i++) {
		if (t->rules[i].how != how || t->rules[i].is_default)
			continue;
		keys[k].s = t->comp[i].pat;
		keys[k].len = t->comp[i].pat_len;
		keys[k].idx = (uint32_t)i;
		k++;
	}
	qsort(keys, k, sizeof(*keys), route_key_cmp);
	*count = k;
	return keys;
}

/*
 * Turn sorted keys into groups of equal patterns, their rules appended to
 * members[] from *used on (ascending within a group: the sort's tie-break).
 * Return: the number of groups.
 */
static uint32_t
table_group(struct sl_route_table *t, const struct route_key *keys, size_t k,
	    struct route_group *groups, uint32_t *used)
{
	uint32_t ng = 0;

	for (size_t i = 0; i < k; i++) {
		if (!i || !route_key_same(&keys[i], &keys[i - 1])) {
			groups[ng].pat = keys[i].s;
			groups[ng].len = keys[i].len;
			groups[ng].hash = 0;
			groups[ng].first = *used;
			groups[ng].count = 0;
			ng++;
		}
		t->members[(*used)++] = keys[i].idx;
		groups[ng - 1].count++;
	}
	return ng;
}

/* Hash the exact groups into a table at most half full. */
static int
table_hash_exact(struct sl_route_table *t)
{
	size_t cap = 2;

	while (cap < 2 * (size_t)t->n_exact)
		cap <<= 1;
	t->slots = mi_calloc(cap, sizeof(*t->slots));
	if (!t->slots)
		return -ENOMEM;
	t->slot_mask = (uint32_t)(cap - 1);

	for (uint32_t g = 0; g < t->n_exact; g++) {
		struct route_group *grp = &t->exact[g];
		size_t s;

		grp->hash = sl_key_hash(grp->pat, grp->len);
		s = grp->hash & t->slot_mask;
		while (t->slots[s])
			s = (s + 1) & t->slot_mask;
		t->slots[s] = g + 1;
	}
	return 0;
}

/* The prefix groups are sorted by length first: cut them into ranges. */
static int
table_range_prefix(struct sl_route_table *t)
{
	uint32_t nl = 0;

	t->lens = mi_malloc((t->n_prefix ? t->n_prefix : 1) *
			    sizeof(*t->lens));
	if (!t->lens)
		return -ENOMEM;
	for (uint32_t g = 0; g < t->n_prefix; g++) {
		if (!nl || t->lens[nl - 1].len != t->prefix[g].len) {
			t->lens[nl].len = t->prefix[g].len;
			t->lens[nl].lo = g;
			nl++;
		}
		t->lens[nl - 1].hi = g + 1;
	}
	t->n_lens = nl;
	return 0;
}

/* Exact and prefix groups, the hash table and the length ranges. */
static int
table_index_patterns(struct sl_route_table *t)
{
	struct route_key *ek, *pk;
	size_t ne, np;
	uint32_t used = 0;
	int rc = 0;

	ek = table_sorted_keys(t, SL_MATCH_EXACT, &ne, &rc);
	pk = table_sorted_keys(t, SL_MATCH_PREFIX, &np, &rc);
	t->members = mi_malloc((ne + np ? ne + np : 1) * sizeof(*t->members));
	t->exact = mi_malloc((ne ? ne : 1) * sizeof(*t->exact));
	t->prefix = mi_malloc((np ? np : 1) * sizeof(*t->prefix));
	if (rc || !t->members || !t->exact || !t->prefix) {
		rc = -ENOMEM;
		goto out;
	}

	t->n_exact = table_group(t, ek, ne, t->exact, &used);
	t->n_prefix = table_group(t, pk, np, t->prefix, &used);
	rc = table_hash_exact(t);
	if (!rc)
		rc = table_range_prefix(t);
out:
	mi_free(pk);
	mi_free(ek);
	return rc;
}

/* The indices of every non-default rule matching by @how, ascending. */
static uint32_t *
table_list(const struct sl_route_table *t, enum sl_match how, uint32_t *count)
{
	uint32_t *v = mi_malloc((t->n ? t->n : 1) * sizeof(*v));
	uint32_t k = 0;

	if (!v)
		return NULL;
	for (size_t i = 0; i < t->n; i++) {
		if (t->rules[i].how == how && !t->rules[i].is_default)
			v[k++] = (uint32_t)i;
	}
	*count = k;
	return v;
}

static int
table_index_rest(struct sl_route_table *t)
{
	t->globs = table_list(t, SL_MATCH_GLOB, &t->n_globs);
	t->any = table_list(t, SL_MATCH_ANY, &t->n_any);
	if (!t->globs || !t->any)
		return -ENOMEM;

	t->default_idx = ROUTE_NONE;
	for (size_t i = 0; i < t->n; i++) {
		if (t->rules[i].is_default)
			t->default_idx = (uint32_t)i;
	}
	return 0;
}

struct sl_route_table *
sl_route_table_build(const struct sl_route_rule *rules, size_t n, char *err,
		     size_t errlen)
{
	struct sl_route_table *t = NULL;
	char scratch[1];
	int rc;

	/* snprintf with a size of zero writes nothing, so @err may be NULL. */
	if (!err) {
		err = scratch;
		errlen = 0;
	}
	rc = -EINVAL;
	if (n && !rules) {
		snprintf(err, errlen, "%zu rules counted but none given", n);
		goto fail;
	}
	if (n >= ROUTE_NONE) {
		snprintf(err, errlen, "%zu rules: more than a table holds", n);
		goto fail;
	}
	rc = route_validate(rules, n, err, errlen);
	if (rc)
		goto fail;

	t = mi_zalloc(sizeof(*t));
	rc = -ENOMEM;
	if (!t)
		goto fail;
	t->n = n;
	rc = table_copy_rules(t, rules);
	if (!rc)
		rc = table_index_patterns(t);
	if (!rc)
		rc = table_index_rest(t);
	if (rc)
		goto fail;
	return t;

fail:
	if (rc == -ENOMEM)
		snprintf(err, errlen, "out of memory building the route table");
	sl_route_table_free(t);
	errno = -rc;
	return NULL;
}

void
sl_route_table_free(struct sl_route_table *t)
{
	if (!t)
		return;
	mi_free(t->any);
	mi_free(t->globs);
	mi_free(t->lens);
	mi_free(t->prefix);
	mi_free(t->slots);
	mi_free(t->exact);
	mi_free(t->members);
	mi_free(t->comp);
	mi_free(t->rules);
	mi_free(t->strings);
	mi_free(t);
}

size_t
sl_route_table_size(const struct sl_route_table *t)
{
	return t->n;
}

const struct sl_route_rule *
sl_route_table_rule(const struct sl_route_table *t, size_t idx)
{
	return idx < t->n ? &t->rules[idx] : NULL;
}

/* ---- matching ---- */

/* The caller's array, kept sorted and holding the smallest hits. */
struct route_hits {
	uint32_t *out;
	size_t max;
	size_t n;		/* every hit, kept or not */
};

/*
 * Sources yield ascending indices, so a new hit usually belongs at the end;
 * otherwise it is shifted into place, and once the array is full a hit
 * beyond its last entry is only counted.
 */
static void
hits_add(struct route_hits *h, uint32_t idx)
{
	size_t kept = h->n < h->max ? h->n : h->max;
	size_t pos;

	h->n++;
	if (kept == h->max) {
		if (!kept || idx > h->out[kept - 1])
			return;
		kept--;
	}
	pos = kept;
	while (pos && h->out[pos - 1] > idx)
		pos--;
	memmove(&h->out[pos + 1], &h->out[pos], (kept - pos) * sizeof(idx));
	h->out[pos] = idx;
}

static bool
route_key_passes(const struct route_compiled *c, const char *key,
		 size_t key_len)
{
	return c->key_prefix_len <= key_len &&
	       (!c->key_prefix_len ||
		memcmp(key, c->key_prefix, c->key_prefix_len) == 0);
}

static void
route_add_group(const struct sl_route_table *t, const struct route_group *g,
		const char *key, size_t key_len, struct route_hits *h)
{
	for (uint32_t i = 0; i < g->count; i++) {
		uint32_t idx = t->members[g->first + i];

		if (route_key_passes(&t->comp[idx], key, key_len))
			hits_add(h, idx);
	}
}

static void
route_match_exact(const struct sl_route_table *t, const char *kind,
		  size_t kind_len, const char *key, size_t key_len,
		  struct route_hits *h)
{
	uint64_t hash;
	size_t s;

	if (!t->n_exact)
		return;
	hash = sl_key_hash(kind, kind_len);
	for (s = hash & t->slot_mask; t->slots[s]; s = (s + 1) & t->slot_mask) {
		const struct route_group *g = &t->exact[t->slots[s] - 1];

		if (g->hash == hash && g->len == kind_len &&
		    memcmp(g->pat, kind, kind_len) == 0) {
			route_add_group(t, g, key, key_len, h);
			return;
		}
	}
}

/* The group in prefix[lo..hi) whose pattern is @kind's first @len bytes. */
static const struct route_group *
route_find_prefix(const struct sl_route_table *t, uint32_t lo, uint32_t hi,
		  const char *kind, size_t len)
{
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int c = memcmp(kind, t->prefix[mid].pat, len);

		if (!c)
			return &t->prefix[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

static void
route_match_prefix(const struct sl_route_table *t, const char *kind,
		   size_t kind_len, const char *key, size_t key_len,
		   struct route_hits *h)
{
	for (uint32_t l = 0; l < t->n_lens; l++) {
		const struct route_len_range *r = &t->lens[l];
		const struct route_group *g;

		if (r->len > kind_len)
			break;
		g = route_find_prefix(t, r->lo, r->hi, kind, r->len);
		if (g)
			route_add_group(t, g, key, key_len, h);
	}
}

static void
route_match_lists(const struct sl_route_table *t, const char *kind,
		  size_t kind_len, const char *key, size_t key_len,
		  struct route_hits *h)
{
	for (uint32_t i = 0; i < t->n_globs; i++) {
		const struct route_compiled *c = &t->comp[t->globs[i]];

		/* The key test is a memcmp; the glob may backtrack. */
		if (route_key_passes(c, key, key_len) &&
		    sl_glob_match(c->pat, c->pat_len, kind, kind_len))
			hits_add(h, t->globs[i]);
	}
	for (uint32_t i = 0; i < t->n_any; i++) {
		if (route_key_passes(&t->comp[t->any[i]], key, key_len))
			hits_add(h, t->any[i]);
	}
}

size_t
sl_route_match(const struct sl_route_table *t, const char *kind,
	       size_t kind_len, const char *key, size_t key_len,
	       uint32_t *out, size_t max)
{
	struct route_hits h = {.out = out, .max = max, .n = 0};

	route_match_exact(t, kind, kind_len, key, key_len, &h);
	route_match_prefix(t, kind, kind_len, key, key_len, &h);
	route_match_lists(t, kind, kind_len, key, key_len, &h);
	if (h.n || t->default_idx == ROUTE_NONE)
		return h.n;

	if (max)
		out[0] = t->default_idx;
	return 1;
}
