/* SPDX-License-Identifier: MIT */
/*
 * The Prometheus text parser: a cursor over one line, a reader per token
 * (names, quoted label values, numbers), and an arena that holds the
 * strings of every sample so a set frees them in one sweep.
 */
#include "tools/top/prom.h"

#include <errno.h>
#include <math.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

/* ---- the arena ---- */

#define PROM_CHUNK_SIZE (32 * 1024)

struct top_prom_chunk {
	struct top_prom_chunk *next;
	size_t used, size;
	alignas(16) char data[];
};

static void *
arena_alloc(struct top_prom_set *s, size_t n)
{
	struct top_prom_chunk *c = s->chunks;
	size_t at;

	/* Every allocation is rounded to 8 bytes so label arrays, which
	 * hold pointers, are aligned wherever they land. */
	n = (n + 7) & ~(size_t)7;
	if (!c || c->size - c->used < n) {
		size_t size = n > PROM_CHUNK_SIZE ? n : PROM_CHUNK_SIZE;

		c = malloc(sizeof(*c) + size);
		if (!c)
			return NULL;
		c->next = s->chunks;
		c->used = 0;
		c->size = size;
		s->chunks = c;
	}
	at = c->used;
	c->used += n;
	return c->data + at;
}

static char *
arena_strndup(struct top_prom_set *s, const char *p, size_t n)
{
	char *d = arena_alloc(s, n + 1);

	if (!d)
		return NULL;
	memcpy(d, p, n);
	d[n] = '\0';
	return d;
}

void
top_prom_init(struct top_prom_set *s)
{
	memset(s, 0, sizeof(*s));
}

void
top_prom_fini(struct top_prom_set *s)
{
	while (s->chunks) {
		struct top_prom_chunk *next = s->chunks->next;

		free(s->chunks);
		s->chunks = next;
	}
	free(s->samples);
	free(s->families);
	top_prom_init(s);
}

/* ---- tokens ---- */

struct cursor {
	const char *p, *end;
};

static void
skip_blank(struct cursor *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
		c->p++;
}

static bool
at_blank_or_end(const struct cursor *c)
{
	return c->p == c->end || *c->p == ' ' || *c->p == '\t';
}

static bool
is_name_start(char ch, bool colon)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       ch == '_' || (colon && ch == ':');
}

static bool
is_name_char(char ch, bool colon)
{
	return is_name_start(ch, colon) || (ch >= '0' && ch <= '9');
}

/*
 * A metric name ([a-zA-Z_:][a-zA-Z0-9_:]*, @colon true) or a label name
 * (no colons).  Return: its length, 0 when the cursor is not at one.
 */
static size_t
read_name(struct cursor *c, bool colon)
{
	const char *start = c->p;

	if (c->p == c->end || !is_name_start(*c->p, colon))
		return 0;
	while (c->p < c->end && is_name_char(*c->p, colon))
		c->p++;
	return (size_t)(c->p - start);
}

/* A token up to the next blank or the end of the line. */
static size_t
read_word(struct cursor *c)
{
	const char *start = c->p;

	while (!at_blank_or_end(c))
		c->p++;
	return (size_t)(c->p - start);
}

/*
 * The digits of a decimal floating-point literal: [+-] digits [. digits]
 * [(e|E) [+-] digits], with at least one digit before the exponent.
 * strtod() alone would also take hex, "infinity" and "nan(...)".
 */
static bool
is_decimal(const char *s, size_t len)
{
	size_t i = 0, digits = 0;

	if (i < len && (s[i] == '+' || s[i] == '-'))
		i++;
	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
		digits++;
	if (i < len && s[i] == '.')
		for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			digits++;
	if (!digits)
		return false;
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		size_t exp_digits = 0;

		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			i++;
		for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			exp_digits++;
		if (!exp_digits)
			return false;
	}
	return i == len;
}

static bool
word_is(const char *s, size_t len, const char *lit)
{
	return strlen(lit) == len && memcmp(s, lit, len) == 0;
}

int
top_prom_parse_value(const char *s, size_t len, double *out)
{
	char buf[80];

	if (word_is(s, len, "NaN")) {
		*out = NAN;
		return 0;
	}
	if (word_is(s, len, "+Inf") || word_is(s, len, "Inf")) {
		*out = INFINITY;
		return 0;
	}
	if (word_is(s, len, "-Inf")) {
		*out = -INFINITY;
		return 0;
	}
	if (len >= sizeof(buf) || !is_decimal(s, len))
		return -EINVAL;

	/* strtod wants a terminated string; the literal is short. */
	memcpy(buf, s, len);
	buf[len] = '\0';
	*out = strtod(buf, NULL);
	return 0;
}

/* An optional timestamp: an integer count of milliseconds. */
static int
parse_timestamp(const char *s, size_t len, int64_t *out)
{
	bool neg = false;
	uint64_t v = 0;
	size_t i = 0;

	if (i < len && (s[i] == '-' || s[i] == '+'))
		neg = s[i++] == '-';
	if (i == len)
		return -EINVAL;
	for (; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		if (v > ((uint64_t)INT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = neg ? -(int64_t)v : (int64_t)v;
	return 0;
}

/*
 * A quoted label value, the cursor on its opening quote.  A first pass
 * finds the closing quote and checks every escape; the second copies
 * the value unescaped into the arena.
 */
static int
read_label_value(struct top_prom_set *s, struct cursor *c, const char **out,
		 const char **why)
{
	const char *start = ++c->p, *q;
	size_t n = 0;
	char *d;

	for (q = start; q < c->end && *q != '"'; q++, n++) {
		if (*q != '\\')
			continue;
		if (q + 1 == c->end ||
		    (q[1] != '\\' && q[1] != '"' && q[1] != 'n')) {
			*why = "label value has an escape other than \\\\ \\\" "
			       "\\n";
			return -EBADMSG;
		}
		q++;
	}
	if (q == c->end) {
		*why = "label value has no closing quote";
		return -EBADMSG;
	}

	d = arena_alloc(s, n + 1);
	if (!d)
		return -ENOMEM;
	*out = d;
	for (const char *p = start; p < q; p++) {
		if (*p == '\\') {
			p++;
			*d++ = *p == 'n' ? '\n' : *p;
		} else {
			*d++ = *p;
		}
	}
	*d = '\0';
	c->p = q + 1;
	return 0;
}

/* ---- lines ---- */

static int
parse_labels(struct top_prom_set *s, struct cursor *c,
	     struct top_prom_label *labels, unsigned *nlabels, const char **why)
{
	unsigned n = 0;

	c->p++; /* the '{' */
	for (;;) {
		const char *name;
		size_t len;
		int r;

		skip_blank(c);
		if (c->p < c->end && *c->p == '}')
			break;
		name = c->p;
		len = read_name(c, false);
		if (!len) {
			*why = "expected a label name or '}'";
			return -EBADMSG;
		}
		if (n == TOP_PROM_LABELS_MAX) {
			*why = "too many labels";
			return -EBADMSG;
		}
		for (unsigned i = 0; i < n; i++)
			if (word_is(name, len, labels[i].name)) {
				*why = "label named twice";
				return -EBADMSG;
			}
		labels[n].name = arena_strndup(s, name, len);
		if (!labels[n].name)
			return -ENOMEM;

		skip_blank(c);
		if (c->p == c->end || *c->p != '=') {
			*why = "expected '=' after a label name";
			return -EBADMSG;
		}
		c->p++;
		skip_blank(c);
		if (c->p == c->end || *c->p != '"') {
			*why = "label value is not quoted";
			return -EBADMSG;
		}
		r = read_label_value(s, c, &labels[n].value, why);
		if (r)
			return r;
		n++;

		skip_blank(c);
		if (c->p < c->end && *c->p == ',') {
			c->p++;
			continue;
		}
		if (c->p < c->end && *c->p == '}')
			break;
		*why = "expected ',' or '}' after a label";
		return -EBADMSG;
	}
	c->p++; /* the '}' */
	*nlabels = n;
	return 0;
}

static int
add_sample(struct top_prom_set *s, const struct top_prom_sample *sm)
{
	if (s->nsamples == s->samples_cap) {
		size_t cap = s->samples_cap ? s->samples_cap * 2 : 256;
		struct top_prom_sample *n;

		n = realloc(s->samples, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		s->samples = n;
		s->samples_cap = cap;
	}
	s->samples[s->nsamples++] = *sm;
	return 0;
}

/* After the name and labels: a blank, the value, and maybe a timestamp. */
static int
parse_value_part(struct cursor *c, struct top_prom_sample *sm, const char **why)
{
	const char *word;
	size_t len;

	if (c->p == c->end || !at_blank_or_end(c)) {
		*why = c->p == c->end ? "sample has no value"
				      : "expected a blank before the value";
		return -EBADMSG;
	}
	skip_blank(c);
	word = c->p;
	len = read_word(c);
	if (!len) {
		*why = "sample has no value";
		return -EBADMSG;
	}
	if (top_prom_parse_value(word, len, &sm->value)) {
		*why = "value is not a number";
		return -EBADMSG;
	}

	skip_blank(c);
	if (c->p == c->end)
		return 0;
	word = c->p;
	len = read_word(c);
	if (parse_timestamp(word, len, &sm->timestamp_ms)) {
		*why = "timestamp is not an integer of milliseconds";
		return -EBADMSG;
	}
	sm->has_timestamp = true;
	skip_blank(c);
	if (c->p < c->end) {
		*why = "unexpected text after the timestamp";
		return -EBADMSG;
	}
	return 0;
}

static int
parse_sample(struct top_prom_set *s, struct cursor *c, const char **why)
{
	struct top_prom_label labels[TOP_PROM_LABELS_MAX];
	struct top_prom_sample sm = {0};
	const char *word = c->p;
	size_t len = read_name(c, true);
	int r;

	if (!len) {
		*why = "a sample must start with a metric name";
		return -EBADMSG;
	}
	sm.name = arena_strndup(s, word, len);
	if (!sm.name)
		return -ENOMEM;

	/* Blanks may come between the name and its labels. */
	word = c->p;
	skip_blank(c);
	if (c->p < c->end && *c->p == '{') {
		r = parse_labels(s, c, labels, &sm.nlabels, why);
		if (r)
			return r;
	} else {
		c->p = word;
	}
	r = parse_value_part(c, &sm, why);
	if (r)
		return r;

	if (sm.nlabels) {
		struct top_prom_label *l;

		l = arena_alloc(s, sm.nlabels * sizeof(*l));
		if (!l)
			return -ENOMEM;
		memcpy(l, labels, sm.nlabels * sizeof(*l));
		sm.labels = l;
	}
	return add_sample(s, &sm);
}

static int
parse_type(struct top_prom_set *s, const char *name, size_t name_len,
	   struct cursor *c, const char **why)
{
	static const struct {
		const char *word;
		enum top_prom_type type;
	} types[] = {
		{"counter", TOP_PROM_COUNTER},
		{"gauge", TOP_PROM_GAUGE},
		{"histogram", TOP_PROM_HISTOGRAM},
		{"summary", TOP_PROM_SUMMARY},
		{"untyped", TOP_PROM_UNTYPED},
	};
	struct top_prom_family f = {0};
	const char *word = c->p;
	size_t len = read_word(c);
	size_t i;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (word_is(word, len, types[i].word))
			break;
	skip_blank(c);
	if (i == sizeof(types) / sizeof(types[0]) || c->p < c->end) {
		*why = "TYPE is not counter, gauge, histogram, summary or "
		       "untyped";
		return -EBADMSG;
	}
	for (size_t k = 0; k < s->nfamilies; k++)
		if (word_is(name, name_len, s->families[k].name)) {
			*why = "a second TYPE line for one metric";
			return -EBADMSG;
		}

	if (s->nfamilies == s->families_cap) {
		size_t cap = s->families_cap ? s->families_cap * 2 : 64;
		struct top_prom_family *n;

		n = realloc(s->families, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		s->families = n;
		s->families_cap = cap;
	}
	f.name = arena_strndup(s, name, name_len);
	if (!f.name)
		return -ENOMEM;
	f.type = types[i].type;
	s->families[s->nfamilies++] = f;
	return 0;
}

/* HELP text is free but for its escapes: only \\ and \n. */
static int
check_help(const struct cursor *c, const char **why)
{
	for (const char *p = c->p; p < c->end; p++) {
		if (*p != '\\')
			continue;
		if (p + 1 == c->end || (p[1] != '\\' && p[1] != 'n')) {
			*why = "HELP text has an escape other than \\\\ \\n";
			return -EBADMSG;
		}
		p++;
	}
	return 0;
}

/* A line starting with '#': HELP and TYPE are checked, others ignored. */
static int
parse_comment(struct top_prom_set *s, struct cursor *c, const char **why)
{
	const char *word, *name;
	size_t len, name_len;
	bool help;

	c->p++; /* the '#' */
	skip_blank(c);
	word = c->p;
	len = read_word(c);
	help = word_is(word, len, "HELP");
	if (!help && !word_is(word, len, "TYPE"))
		return 0;
	if (!at_blank_or_end(c) || c->p == c->end) {
		*why = "HELP or TYPE without a metric name";
		return -EBADMSG;
	}

	skip_blank(c);
	name = c->p;
	name_len = read_name(c, true);
	if (!name_len || !at_blank_or_end(c)) {
		*why = "HELP or TYPE with a malformed metric name";
		return -EBADMSG;
	}
	skip_blank(c);
	return help ? check_help(c, why)
		    : parse_type(s, name, name_len, c, why);
}

int
top_prom_parse_line(struct top_prom_set *s, const char *line, size_t len,
		    const char **why)
{
	struct cursor c = {line, line + len};

	*why = NULL;
	skip_blank(&c);
	if (c.p == c.end)
		return 0;
	if (*c.p == '#')
		return parse_comment(s, &c, why);
	return parse_sample(s, &c, why);
}

int
top_prom_parse(struct top_prom_set *s, const char *text, size_t len)
{
	const char *p = text, *end = text + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;
		const char *why;
		int r;

		s->lines++;
		r = top_prom_parse_line(s, p, (size_t)(eol - p), &why);
		if (r == -ENOMEM)
			return r;
		if (r) {
			if (!s->bad_lines++) {
				s->first_bad_line = s->lines;
				s->first_bad_why = why;
			}
		}
		p = nl ? nl + 1 : end;
	}
	return 0;
}

const char *
top_prom_label(const struct top_prom_sample *sm, const char *name)
{
	for (unsigned i = 0; i < sm->nlabels; i++)
		if (strcmp(sm->labels[i].name, name) == 0)
			return sm->labels[i].value;
	return NULL;
}

enum top_prom_type
top_prom_type_of(const struct top_prom_set *s, const char *name)
{
	for (size_t i = 0; i < s->nfamilies; i++)
		if (strcmp(s->families[i].name, name) == 0)
			return s->families[i].type;
	return TOP_PROM_UNTYPED;
}
