/* SPDX-License-Identifier: MIT */
/*
 * Tests of sluice-top's Prometheus text parser (tools/top/prom.c).
 *
 * Samples with and without labels, the three label escapes, the special
 * values, timestamps, HELP and TYPE lines and plain comments parse as the
 * format says; every kind of malformed line is refused on its own, adds
 * nothing, and in a document is skipped and counted while the lines
 * around it still parse; random bytes and every prefix of a document are
 * parsed without a crash (the sanitizer builds check the memory).
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tools/top/prom.h"

#include "harness.h"

static void
parse_ok(struct top_prom_set *s, const char *text)
{
	top_prom_init(s);
	assert_int_equal(top_prom_parse(s, text, strlen(text)), 0);
}

static const struct top_prom_sample *
sample(const struct top_prom_set *s, size_t i)
{
	assert_true(i < s->nsamples);
	return &s->samples[i];
}

static void
test_prom_samples_and_types(void **state)
{
	static const char doc[] =
		"# HELP sluice_events_ingested_total Events accepted.\n"
		"# TYPE sluice_events_ingested_total counter\n"
		"sluice_events_ingested_total 31433\n"
		"# TYPE sluice_tasks gauge\n"
		"sluice_tasks 14\n"
		"sluice_route_pending{route=\"default\"} 7\n"
		"  indented:metric\t2.5e3  \n";
	struct top_prom_set s;

	(void)state;
	parse_ok(&s, doc);
	assert_int_equal(s.bad_lines, 0);
	assert_int_equal(s.nsamples, 4);

	assert_string_equal(sample(&s, 0)->name,
			    "sluice_events_ingested_total");
	assert_int_equal(sample(&s, 0)->nlabels, 0);
	assert_true(sample(&s, 0)->value == 31433);
	assert_false(sample(&s, 0)->has_timestamp);
	assert_true(sample(&s, 1)->value == 14);
	assert_string_equal(top_prom_label(sample(&s, 2), "route"), "default");
	assert_null(top_prom_label(sample(&s, 2), "proc"));
	assert_true(sample(&s, 2)->value == 7);
	assert_string_equal(sample(&s, 3)->name, "indented:metric");
	assert_true(sample(&s, 3)->value == 2500);

	assert_int_equal(s.nfamilies, 2);
	assert_int_equal(top_prom_type_of(&s, "sluice_events_ingested_total"),
			 TOP_PROM_COUNTER);
	assert_int_equal(top_prom_type_of(&s, "sluice_tasks"), TOP_PROM_GAUGE);
	assert_int_equal(top_prom_type_of(&s, "sluice_route_pending"),
			 TOP_PROM_UNTYPED);
	top_prom_fini(&s);
}

static void
test_prom_label_escapes(void **state)
{
	static const char doc[] =
		"m{q=\"say \\\"hi\\\"\",b=\"C:\\\\dir\",n=\"two\\nlines\"} 1\n"
		"m { a = \"x\" , b=\"\" , } 2\n"
		"m{} 3\n"
		"m{route=\"a,b}c=d\"} 4\n";
	struct top_prom_set s;

	(void)state;
	parse_ok(&s, doc);
	assert_int_equal(s.bad_lines, 0);
	assert_int_equal(s.nsamples, 4);

	assert_int_equal(sample(&s, 0)->nlabels, 3);
	assert_string_equal(top_prom_label(sample(&s, 0), "q"), "say \"hi\"");
	assert_string_equal(top_prom_label(sample(&s, 0), "b"), "C:\\dir");
	assert_string_equal(top_prom_label(sample(&s, 0), "n"), "two\nlines");

	/* Blanks around the parts, an empty value, a trailing comma. */
	assert_int_equal(sample(&s, 1)->nlabels, 2);
	assert_string_equal(top_prom_label(sample(&s, 1), "a"), "x");
	assert_string_equal(top_prom_label(sample(&s, 1), "b"), "");

	assert_int_equal(sample(&s, 2)->nlabels, 0);
	assert_true(sample(&s, 2)->value == 3);

	/* Separators inside quotes are the value's. */
	assert_string_equal(top_prom_label(sample(&s, 3), "route"), "a,b}c=d");
	top_prom_fini(&s);
}

static void
test_prom_values_and_timestamps(void **state)
{
	static const char doc[] = "a NaN\n"
				  "b +Inf\n"
				  "c -Inf\n"
				  "d -2.5\n"
				  "e 1e-6\n"
				  "f .5E+2\n"
				  "g 7 1712345678901\n"
				  "h 8 -15\n"
				  "i 18446744073709551615\n";
	struct top_prom_set s;

	(void)state;
	parse_ok(&s, doc);
	assert_int_equal(s.bad_lines, 0);
	assert_int_equal(s.nsamples, 9);
	assert_true(isnan(sample(&s, 0)->value));
	assert_true(isinf(sample(&s, 1)->value) && sample(&s, 1)->value > 0);
	assert_true(isinf(sample(&s, 2)->value) && sample(&s, 2)->value < 0);
	assert_true(sample(&s, 3)->value == -2.5);
	assert_true(sample(&s, 4)->value == 1e-6);
	assert_true(sample(&s, 5)->value == 50);
	assert_true(sample(&s, 6)->has_timestamp);
	assert_int_equal(sample(&s, 6)->timestamp_ms, 1712345678901LL);
	assert_int_equal(sample(&s, 7)->timestamp_ms, -15);
	assert_true(sample(&s, 8)->value == 18446744073709551615.0);
	top_prom_fini(&s);
}

static void
test_prom_histogram(void **state)
{
	static const char doc[] =
		"# HELP lat_seconds Latency.\n"
		"# TYPE lat_seconds histogram\n"
		"lat_seconds_bucket{route=\"r\",le=\"1e-06\"} 0\n"
		"lat_seconds_bucket{route=\"r\",le=\"0.0005\"} 10\n"
		"lat_seconds_bucket{route=\"r\",le=\"+Inf\"} 12\n"
		"lat_seconds_sum{route=\"r\"} 0.004\n"
		"lat_seconds_count{route=\"r\"} 12\n";
	struct top_prom_set s;
	double le;

	(void)state;
	parse_ok(&s, doc);
	assert_int_equal(s.bad_lines, 0);
	assert_int_equal(s.nsamples, 5);
	assert_int_equal(top_prom_type_of(&s, "lat_seconds"),
			 TOP_PROM_HISTOGRAM);
	assert_string_equal(top_prom_label(sample(&s, 1), "le"), "0.0005");
	assert_int_equal(top_prom_parse_value("0.0005", 6, &le), 0);
	assert_true(le == 0.0005);
	assert_int_equal(top_prom_parse_value("+Inf", 4, &le), 0);
	assert_true(isinf(le));
	assert_true(sample(&s, 2)->value == 12);
	assert_string_equal(sample(&s, 4)->name, "lat_seconds_count");
	top_prom_fini(&s);
}

static void
test_prom_comments(void **state)
{
	static const char doc[] = "#\n"
				  "# just words here\n"
				  "#HELPLESS is not HELP\n"
				  "# HELP m Some \\\\ text with \\n escapes.\n"
				  "# HELP m\n"
				  "   \n"
				  "\n"
				  "m 1\n";
	struct top_prom_set s;

	(void)state;
	parse_ok(&s, doc);
	assert_int_equal(s.bad_lines, 0);
	assert_int_equal(s.nsamples, 1);
	assert_int_equal(s.nfamilies, 0);
	top_prom_fini(&s);
}

/* Each refused alone, with a reason, and nothing added to the set. */
static void
test_prom_malformed_lines_refused(void **state)
{
	static const char *const bad[] = {
		"1metric 1",                /* name starts with a digit */
		"m",                        /* no value */
		"m ",                       /* no value */
		"m{",                       /* labels not closed */
		"m{a=1} 1",                 /* value not quoted */
		"m{a=\"1} 1",               /* quote not closed */
		"m{a=\"1\"",                /* brace not closed */
		"m{a=\"x\\q\"} 1",          /* unknown escape */
		"m{a=\"x\\",                /* escape at the end */
		"m{a=\"1\",a=\"2\"} 1",     /* label twice */
		"m{=\"1\"} 1",              /* no label name */
		"m{a:b=\"1\"} 1",           /* colon in a label name */
		"m{a=\"1\" b=\"2\"} 1",     /* no comma */
		"m{a=\"1\"}1",              /* no blank before the value */
		"m 1 2 3",                  /* text after the timestamp */
		"m 1 x",                    /* timestamp not a number */
		"m 1 1.5",                  /* timestamp not an integer */
		"m 1 99999999999999999999", /* timestamp out of range */
		"m abc",                    /* value not a number */
		"m 0x10",                   /* hex */
		"m inf",                    /* Inf is spelled +Inf or Inf */
		"m 1.2.3",
		"m 1e",
		"m -",
		"m\x01 1",         /* control byte in the name */
		"# TYPE m",        /* no type */
		"# TYPE m countr", /* unknown type */
		"# TYPE m counter extra",
		"# TYPE 9m counter", /* bad name */
		"# HELP",            /* no name */
		"# HELP m bad \\t escape",
		"# HELP m trailing \\",
	};
	struct top_prom_set s;

	(void)state;
	top_prom_init(&s);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *why = NULL;
		int r = top_prom_parse_line(&s, bad[i], strlen(bad[i]), &why);

		if (r != -EBADMSG)
			fail_msg("line %zu \"%s\": %d, not -EBADMSG", i, bad[i],
				 r);
		assert_non_null(why);
		assert_true(*why != '\0');
	}
	assert_int_equal(s.nsamples, 0);
	assert_int_equal(s.nfamilies, 0);
	top_prom_fini(&s);
}

static void
test_prom_too_many_labels(void **state)
{
	char line[1024];
	size_t at = 0;
	struct top_prom_set s;
	const char *why;

	(void)state;
	at += (size_t)snprintf(line + at, sizeof(line) - at, "m{");
	for (int i = 0; i <= TOP_PROM_LABELS_MAX; i++)
		at += (size_t)snprintf(line + at, sizeof(line) - at,
				       "l%d=\"v\",", i);
	snprintf(line + at, sizeof(line) - at, "} 1");
	top_prom_init(&s);
	assert_int_equal(top_prom_parse_line(&s, line, strlen(line), &why),
			 -EBADMSG);
	assert_string_equal(why, "too many labels");

	/* One fewer is fine. */
	at = (size_t)snprintf(line, sizeof(line), "m{");
	for (int i = 0; i < TOP_PROM_LABELS_MAX; i++)
		at += (size_t)snprintf(line + at, sizeof(line) - at,
				       "l%d=\"v\",", i);
	snprintf(line + at, sizeof(line) - at, "} 1");
	assert_int_equal(top_prom_parse_line(&s, line, strlen(line), &why), 0);
	assert_int_equal(s.samples[0].nlabels, TOP_PROM_LABELS_MAX);
	top_prom_fini(&s);
}

static void
test_prom_bad_lines_skipped_in_a_document(void **state)
{
	static const char doc[] = "# TYPE good counter\n"
				  "good 1\n"
				  "bad{route=\"x} 2\n"
				  "good_too{route=\"y\"} 3\n"
				  "# TYPE good gauge\n"
				  "also bad\n"
				  "last 4"; /* no final newline */
	struct top_prom_set s;

	(void)state;
	parse_ok(&s, doc);
	assert_int_equal(s.nsamples, 3);
	assert_string_equal(sample(&s, 0)->name, "good");
	assert_string_equal(sample(&s, 1)->name, "good_too");
	assert_string_equal(sample(&s, 2)->name, "last");
	assert_true(sample(&s, 2)->value == 4);

	assert_int_equal(s.bad_lines, 3);
	assert_int_equal(s.first_bad_line, 3);
	assert_string_equal(s.first_bad_why,
			    "label value has no closing quote");
	/* The second TYPE for "good" did not change the first. */
	assert_int_equal(top_prom_type_of(&s, "good"), TOP_PROM_COUNTER);

	/* fini empties the set for reuse. */
	top_prom_fini(&s);
	assert_int_equal(s.nsamples, 0);
	assert_int_equal(s.bad_lines, 0);
	assert_int_equal(top_prom_parse(&s, "x 1\n", 4), 0);
	assert_int_equal(s.nsamples, 1);
	top_prom_fini(&s);
}

/* Every sample the parser keeps must be whole: names and labels are
 * strings, and the counts add up. */
static void
check_set(const struct top_prom_set *s)
{
	assert_true(s->nsamples + s->bad_lines <= s->lines);
	for (size_t i = 0; i < s->nsamples; i++) {
		const struct top_prom_sample *sm = &s->samples[i];

		assert_true(strlen(sm->name) > 0);
		assert_true(sm->nlabels <= TOP_PROM_LABELS_MAX);
		for (unsigned l = 0; l < sm->nlabels; l++) {
			assert_true(strlen(sm->labels[l].name) > 0);
			(void)strlen(sm->labels[l].value);
		}
	}
}

static void
test_prom_garbage_does_not_crash(void **state)
{
	static const char alphabet[] = "m_{}=\",\\\"n 1.e+-#\tIfNa\n\x01\xff:";
	uint64_t x = 88172645463325252ULL;
	char buf[256];

	(void)state;
	for (int round = 0; round < HARNESS_SCALE(20000, 4000); round++) {
		struct top_prom_set s;
		size_t len;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		len = x % sizeof(buf);
		for (size_t i = 0; i < len; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			buf[i] = alphabet[x % (sizeof(alphabet) - 1)];
		}
		top_prom_init(&s);
		assert_int_equal(top_prom_parse(&s, buf, len), 0);
		check_set(&s);
		top_prom_fini(&s);
	}
}

static void
test_prom_every_prefix_parses(void **state)
{
	static const char doc[] =
		"# HELP h_seconds A histogram.\n"
		"# TYPE h_seconds histogram\n"
		"h_seconds_bucket{route=\"a\\\"b\",le=\"0.001\"} 3\n"
		"h_seconds_bucket{route=\"a\\\"b\",le=\"+Inf\"} 4 "
		"1700000000000\n"
		"h_seconds_count{route=\"a\\\"b\"} 4\n";
	size_t len = strlen(doc);

	(void)state;
	for (size_t cut = 0; cut <= len; cut++) {
		struct top_prom_set s;
		char *copy = malloc(cut ? cut : 1);

		/* A buffer of exactly @cut bytes, so ASan sees any read
		 * past the end. */
		assert_non_null(copy);
		memcpy(copy, doc, cut);
		top_prom_init(&s);
		assert_int_equal(top_prom_parse(&s, copy, cut), 0);
		check_set(&s);
		if (cut == len) {
			assert_int_equal(s.bad_lines, 0);
			assert_int_equal(s.nsamples, 3);
		}
		top_prom_fini(&s);
		free(copy);
	}
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prom_samples_and_types),
		cmocka_unit_test(test_prom_label_escapes),
		cmocka_unit_test(test_prom_values_and_timestamps),
		cmocka_unit_test(test_prom_histogram),
		cmocka_unit_test(test_prom_comments),
		cmocka_unit_test(test_prom_malformed_lines_refused),
		cmocka_unit_test(test_prom_too_many_labels),
		cmocka_unit_test(test_prom_bad_lines_skipped_in_a_document),
		cmocka_unit_test(test_prom_garbage_does_not_crash),
		cmocka_unit_test(test_prom_every_prefix_parses),
	};

	harness_init();
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
