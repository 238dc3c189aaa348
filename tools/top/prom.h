/* SPDX-License-Identifier: MIT */
/*
 * A parser for Prometheus' text exposition format (version 0.0.4), the
 * format sluiced's admin endpoint serves at /metrics, for sluice-top.
 *
 * A document is lines separated by LF.  A line is empty, a comment
 * ("# ..."), a "# HELP name text" or "# TYPE name type" line, or a
 * sample:
 *
 *	name [{label="value", ...}] value [timestamp]
 *
 * The parser is strict about what it accepts (names by their grammar,
 * only the escapes \\ \" \n in label values, only \\ \n in HELP text,
 * decimal numbers or NaN, +Inf, -Inf as values, integer timestamps, no
 * label named twice, one TYPE per family) and lenient about what it does
 * with a bad line: the line is skipped, counted, and the first one's
 * number and reason are kept, so that one odd series cannot blank the
 * whole display.  A caller that wants all or nothing checks bad_lines.
 *
 * A set owns every string its samples point to; the views stay valid
 * until top_prom_fini().  A set is plain memory: one thread at a time.
 */
#ifndef SLUICE_TOP_PROM_H
#define SLUICE_TOP_PROM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Labels one sample may carry; more make the line malformed. */
#define TOP_PROM_LABELS_MAX 32

enum top_prom_type {
	TOP_PROM_UNTYPED,
	TOP_PROM_COUNTER,
	TOP_PROM_GAUGE,
	TOP_PROM_HISTOGRAM,
	TOP_PROM_SUMMARY,
};

struct top_prom_label {
	const char *name;
	const char *value; /* unescaped */
};

struct top_prom_sample {
	const char *name;
	const struct top_prom_label *labels;
	unsigned nlabels;
	double value;
	bool has_timestamp;
	int64_t timestamp_ms;
};

/* A "# TYPE" line. */
struct top_prom_family {
	const char *name;
	enum top_prom_type type;
};

struct top_prom_chunk;

struct top_prom_set {
	struct top_prom_sample *samples; /* in document order */
	size_t nsamples;
	struct top_prom_family *families;
	size_t nfamilies;

	/* Lines skipped as malformed, and the first of them (1-based). */
	size_t bad_lines;
	size_t first_bad_line;
	const char *first_bad_why; /* a static string; NULL when none */

	/* Private: capacities, the line counter and the string arena. */
	size_t samples_cap, families_cap, lines;
	struct top_prom_chunk *chunks;
};

/* An empty set; cannot fail (memory is taken as lines arrive). */
void top_prom_init(struct top_prom_set *s);

/* Free everything the set holds and leave it empty, ready for reuse. */
void top_prom_fini(struct top_prom_set *s);

/**
 * top_prom_parse() - parse a document and add its samples and families
 * to @s.
 * @text: @len bytes; need not be NUL-terminated; a last line without a
 *	final LF counts.  May be parsed in several calls only at line
 *	boundaries.
 *
 * Malformed lines are skipped and counted in @s->bad_lines (see above).
 *
 * Return: 0; -ENOMEM when memory ran out (the set then holds the lines
 * before the one that failed).
 */
int top_prom_parse(struct top_prom_set *s, const char *text, size_t len);

/**
 * top_prom_parse_line() - parse one line (without its LF) into @s.
 * @why: on -EBADMSG, a static string saying what is wrong.
 *
 * The line is not counted in @s->bad_lines; top_prom_parse() does that.
 *
 * Return: 0 for a sample, family, comment or empty line; -EBADMSG for a
 * malformed line, with nothing added; -ENOMEM.
 */
int top_prom_parse_line(struct top_prom_set *s, const char *line, size_t len,
			const char **why);

/* The value of label @name of @sm, or NULL when it has none. */
const char *top_prom_label(const struct top_prom_sample *sm, const char *name);

/* The type a "# TYPE" line gave family @name; TOP_PROM_UNTYPED if none. */
enum top_prom_type top_prom_type_of(const struct top_prom_set *s,
				    const char *name);

/**
 * top_prom_parse_value() - a sample value as the format writes it: a
 * decimal number (with optional sign, fraction and exponent), NaN, +Inf,
 * -Inf or Inf.  Used for the "le" label of histogram buckets too.
 *
 * Return: 0 with @out set; -EINVAL for anything else (hex, empty,
 * trailing bytes).
 */
int top_prom_parse_value(const char *s, size_t len, double *out);

#endif /* SLUICE_TOP_PROM_H */
