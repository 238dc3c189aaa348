/* SPDX-License-Identifier: MIT */
/*
 * Tests of the wire formats: lines (fields, escapes, CR and LF, every error
 * with its message, each limit exactly at and one past it, and round trips
 * of random bytes through the encoder and back) and frames (the byte layout,
 * partial and wrong lengths, unknown types, HELLO and ACK, round trips and a
 * stream cut at every byte).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "router/event.h"
#include "router/wire.h"

#include "harness.h"

/* A string literal's bytes without its NUL, for the (ptr, len) calls. */
#define LIT(s) (s), (sizeof(s) - 1)

static struct sl_wire_limits
limits_default(void)
{
	struct sl_wire_limits lim;

	sl_wire_limits_default(&lim);
	return lim;
}

static void
assert_bytes(const char *what, const char *got, size_t got_len,
	     const char *want, size_t want_len)
{
	if (got_len != want_len)
		fail_msg("%s: %zu bytes, expected %zu", what, got_len,
			 want_len);
	if (want_len && memcmp(got, want, want_len) != 0)
		fail_msg("%s: bytes differ", what);
}

static void
assert_event_is(const struct sl_event *e, const char *kind, size_t kind_len,
		const char *key, size_t key_len, const char *payload,
		size_t payload_len)
{
	assert_non_null(e);
	assert_bytes("kind", sl_event_kind(e), e->kind_len, kind, kind_len);
	assert_bytes("key", sl_event_key(e), e->key_len, key, key_len);
	assert_bytes("payload", sl_event_payload(e), e->payload_len, payload,
		     payload_len);
	assert_int_equal(e->hash, sl_key_hash(key, key_len));
	assert_int_equal(atomic_load(&e->refs), 1);
}

#define ASSERT_EVENT_IS(e, kind, key, payload)                                 \
	assert_event_is((e), LIT(kind), LIT(key), LIT(payload))

static void
assert_events_equal(const struct sl_event *got, const struct sl_event *want)
{
	assert_event_is(got, sl_event_kind(want), want->kind_len,
			sl_event_key(want), want->key_len,
			sl_event_payload(want), want->payload_len);
}

static struct sl_event *
line_ok(const char *line, size_t len, const struct sl_wire_limits *lim)
{
	struct sl_event *e = NULL;
	const char *why = NULL;
	int err = sl_line_decode(line, len, lim, &e, &why);

	if (err)
		fail_msg("decoding \"%.*s\": %s (%s)", (int)len, line,
			 sl_strerror(err), why ? why : "no reason");
	assert_non_null(e);
	return e;
}

static void
line_bad(const char *line, size_t len, const struct sl_wire_limits *lim,
	 int want_err, const char *want_why)
{
	struct sl_event *e = (struct sl_event *)&e;
	const char *why = NULL;
	int err = sl_line_decode(line, len, lim, &e, &why);

	if (err != want_err)
		fail_msg("decoding \"%.*s\": %d (%s), expected %d (%s)",
			 (int)len, line, err, why ? why : "no reason",
			 want_err, want_why);
	assert_null(e);
	assert_non_null(why);
	assert_string_equal(why, want_why);
}

/* ---- lines: good input ---- */

static void
test_line_decode_kind_and_key(void **state)
{
	struct sl_wire_limits lim = limits_default();
	struct sl_event *e;

	(void)state;
	e = line_ok(LIT("user.login alice\n"), &lim);
	ASSERT_EVENT_IS(e, "user.login", "alice", "");
	assert_int_equal(e->ts_ns, 0);
	assert_int_equal(e->seq, 0);
	sl_event_unref(e);

	e = line_ok(LIT("user.login alice"), &lim);
	ASSERT_EVENT_IS(e, "user.login", "alice", "");
	sl_event_unref(e);

	e = line_ok(LIT("k y\r\n"), &lim);
	ASSERT_EVENT_IS(e, "k", "y", "");
	sl_event_unref(e);
}

static void
test_line_decode_payload_keeps_spaces(void **state)
{
	struct sl_wire_limits lim = limits_default();
	struct sl_event *e;

	(void)state;
	e = line_ok(LIT("order.paid 42 {\"total\": 9.5}\n"), &lim);
	ASSERT_EVENT_IS(e, "order.paid", "42", "{\"total\": 9.5}");
	sl_event_unref(e);

	/* Only the first space after the key separates. */
	e = line_ok(LIT("k key   two  spaces \r\n"), &lim);
	ASSERT_EVENT_IS(e, "k", "key", "  two  spaces ");
	sl_event_unref(e);

	/* A space after the key and nothing more: an empty payload. */
	e = line_ok(LIT("k key \n"), &lim);
	ASSERT_EVENT_IS(e, "k", "key", "");
	sl_event_unref(e);
}

static void
test_line_decode_drops_one_cr(void **state)
{
	struct sl_wire_limits lim = limits_default();
	struct sl_event *e;

	(void)state;
	e = line_ok(LIT("k key data\r"), &lim);
	ASSERT_EVENT_IS(e, "k", "key", "data");
	sl_event_unref(e);

	e = line_ok(LIT("k key data\r\r\n"), &lim);
	ASSERT_EVENT_IS(e, "k", "key", "data\r");
	sl_event_unref(e);

	e = line_ok(LIT("k key a\rb\n"), &lim);
	ASSERT_EVENT_IS(e, "k", "key", "a\rb");
	sl_event_unref(e);
}

static void
test_line_decode_every_escape(void **state)
{
	struct sl_wire_limits lim = limits_default();
	struct sl_event *e;

	(void)state;
	e = line_ok(LIT("a\\\\b\\nc\\rd\\te\\sf\\x00g\\xffh\\xAb\\x7F "
			"k\\\\\\n\\r\\t\\s\\x20\\x0a "
			"p\\\\\\n\\r\\t\\s\\x00\\xC3\\xa9 end\n"),
		    &lim);
	ASSERT_EVENT_IS(e, "a\\b\nc\rd\te f\0g\xffh\xab\x7f",
			"k\\\n\r\t  \n", "p\\\n\r\t \0\xc3\xa9 end");
	sl_event_unref(e);
}

static void
test_line_decode_passes_high_bytes_and_raw_payload(void **state)
{
	struct sl_wire_limits lim = limits_default();
	struct sl_event *e;

	(void)state;
	/* UTF-8 anywhere; tabs, NUL and other control bytes in a payload. */
	e = line_ok(LIT("caf\xc3\xa9 \xe2\x82\xac" "1 \t\0\x01\x7f\x80\xff\n"),
		    &lim);
	ASSERT_EVENT_IS(e, "caf\xc3\xa9", "\xe2\x82\xac" "1",
			"\t\0\x01\x7f\x80\xff");
	sl_event_unref(e);
}

static void
test_line_decode_ignores_empty_lines(void **state)
{
	static const char *const empty[] = {"", "\n", "\r\n", "\r"};
	struct sl_wire_limits lim = limits_default();

	(void)state;
	for (size_t i = 0; i < SL_ARRAY_SIZE(empty); i++) {
		struct sl_event *e = (struct sl_event *)&e;
		const char *why = NULL;

		assert_int_equal(sl_line_decode(empty[i], strlen(empty[i]),
						&lim, &e, &why),
				 0);
		assert_null(e);
		assert_null(why);
	}
}

/* ---- lines: bad input ---- */

struct bad_line {
	const char *line;
	size_t len;
	int err;
	const char *why;
};

#define BAD_LINE(s, e, w) {LIT(s), (e), (w)}

static void
test_line_decode_rejects_malformed(void **state)
{
	static const struct bad_line bad[] = {
		BAD_LINE("kind\n", -EBADMSG,
			 "no key (a line is KIND SP KEY [SP PAYLOAD])"),
		BAD_LINE(" key\n", -EBADMSG, "empty kind"),
		BAD_LINE("  \n", -EBADMSG, "empty kind"),
		BAD_LINE("kind  payload\n", -EBADMSG, "empty key"),
		BAD_LINE("kind \n", -EBADMSG, "empty key"),
		BAD_LINE("ki\tnd key\n", -EBADMSG,
			 "tab in kind (fields are separated by one space)"),
		BAD_LINE("kind\tkey\n", -EBADMSG,
			 "tab in kind (fields are separated by one space)"),
		BAD_LINE("kind key\tpayload\n", -EBADMSG,
			 "tab in key (fields are separated by one space)"),
		BAD_LINE("ki\0nd key\n", -EBADMSG,
			 "control byte in kind (escape it as \\xHH)"),
		BAD_LINE("kind k\x01" "y\n", -EBADMSG,
			 "control byte in key (escape it as \\xHH)"),
		BAD_LINE("kind k\x7f" "y\n", -EBADMSG,
			 "control byte in key (escape it as \\xHH)"),
		BAD_LINE("kind k\ry\n", -EBADMSG,
			 "control byte in key (escape it as \\xHH)"),
		BAD_LINE("kind key a\\q\n", -EBADMSG, "bad escape \\q"),
		BAD_LINE("ki\\N key\n", -EBADMSG, "bad escape \\N"),
		BAD_LINE("kind k\\\x07 x\n", -EBADMSG, "bad escape \\<0x07>"),
		BAD_LINE("kind key \\\xc3\xa9\n", -EBADMSG,
			 "bad escape \\<0xc3>"),
		BAD_LINE("kind key a\\ b\n", -EBADMSG,
			 "bad escape \\ followed by a space (a space is \\s)"),
		BAD_LINE("kind key a\\\n", -EBADMSG, "backslash at end of line"),
		BAD_LINE("kind key a\\\r\n", -EBADMSG,
			 "backslash at end of line"),
		BAD_LINE("kind\\\n", -EBADMSG, "backslash at end of line"),
		BAD_LINE("kind key\\", -EBADMSG, "backslash at end of line"),
		BAD_LINE("kind key \\x4\n", -EBADMSG,
			 "bad escape \\x: two hex digits must follow"),
		BAD_LINE("kind key \\x\n", -EBADMSG,
			 "bad escape \\x: two hex digits must follow"),
		BAD_LINE("kind key \\xg0\n", -EBADMSG,
			 "bad escape \\x: two hex digits must follow"),
		BAD_LINE("kind key \\x0G\n", -EBADMSG,
			 "bad escape \\x: two hex digits must follow"),
		BAD_LINE("kind \\x/0 x\n", -EBADMSG,
			 "bad escape \\x: two hex digits must follow"),
		BAD_LINE("kind key a\nb\n", -EBADMSG,
			 "LF inside the line (one line per call)"),
		BAD_LINE("kind\nkey\n", -EBADMSG,
			 "LF inside the line (one line per call)"),
	};
	struct sl_wire_limits lim = limits_default();

	(void)state;
	for (size_t i = 0; i < SL_ARRAY_SIZE(bad); i++)
		line_bad(bad[i].line, bad[i].len, &lim, bad[i].err,
			 bad[i].why);
}

static void
test_line_decode_accepts_null_why(void **state)
{
	struct sl_wire_limits lim = limits_default();
	struct sl_event *e = NULL;

	(void)state;
	assert_int_equal(sl_line_decode(LIT("kind\n"), &lim, &e, NULL),
			 -EBADMSG);
	assert_null(e);
	assert_int_equal(sl_line_decode(LIT("k y\n"), &lim, &e, NULL), 0);
	ASSERT_EVENT_IS(e, "k", "y", "");
	sl_event_unref(e);
}

/* ---- lines: limits ---- */

static struct sl_wire_limits
limits_small(void)
{
	struct sl_wire_limits lim = {
		.kind_max = 4,
		.key_max = 6,
		.payload_max = 8,
		.line_max = 1000,
		.frame_max = 1000,
	};

	return lim;
}

static void
test_line_field_limits_at_and_past(void **state)
{
	struct sl_wire_limits lim = limits_small();
	struct sl_event *e;

	(void)state;
	e = line_ok(LIT("abcd efghij 12345678\n"), &lim);
	ASSERT_EVENT_IS(e, "abcd", "efghij", "12345678");
	sl_event_unref(e);

	line_bad(LIT("abcde efghij 12345678\n"), &lim, -EMSGSIZE,
		 "kind longer than kind_max");
	line_bad(LIT("abcd efghijk 12345678\n"), &lim, -EMSGSIZE,
		 "key longer than key_max");
	line_bad(LIT("abcd efghij 123456789\n"), &lim, -EMSGSIZE,
		 "payload longer than payload_max");

	/* The limits count decoded bytes, not escaped ones. */
	e = line_ok(LIT("\\x41\\x42\\s\\\\ \\n\\n\\n\\n\\n\\n "
			"\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\n"),
		    &lim);
	ASSERT_EVENT_IS(e, "AB \\", "\n\n\n\n\n\n", "\0\0\0\0\0\0\0\0");
	sl_event_unref(e);

	line_bad(LIT("\\x41\\x42\\s\\\\\\t key\n"), &lim, -EMSGSIZE,
		 "kind longer than kind_max");
	line_bad(LIT("kind \\n\\n\\n\\n\\n\\n\\n\n"), &lim, -EMSGSIZE,
		 "key longer than key_max");
	line_bad(LIT("kind key \\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\n"), &lim,
		 -EMSGSIZE, "payload longer than payload_max");
}

static void
test_line_length_limit_at_and_past(void **state)
{
	struct sl_wire_limits lim = limits_small();
	struct sl_event *e;

	(void)state;
	/* 21 bytes with the LF; the LF counts even when the caller drops it,
	 * and a CR counts like any other byte. */
	lim.line_max = 21;
	e = line_ok(LIT("abcd efghij 12345678\n"), &lim);
	sl_event_unref(e);
	e = line_ok(LIT("abcd efghij 12345678"), &lim);
	sl_event_unref(e);
	line_bad(LIT("abcd efghij 12345678\r\n"), &lim, -EMSGSIZE,
		 "line longer than line_max");
	line_bad(LIT("abcd efghij 12345678\r"), &lim, -EMSGSIZE,
		 "line longer than line_max");

	lim.line_max = 20;
	line_bad(LIT("abcd efghij 12345678\n"), &lim, -EMSGSIZE,
		 "line longer than line_max");
	line_bad(LIT("abcd efghij 12345678"), &lim, -EMSGSIZE,
		 "line longer than line_max");
	e = line_ok(LIT("abcd efghij 1234567\n"), &lim);
	sl_event_unref(e);
}

static void
test_line_limits_above_event_ceilings_are_clamped(void **state)
{
	struct sl_wire_limits lim = limits_default();
	char line[SL_KEY_MAX + 16];
	struct sl_event *e;

	(void)state;
	lim.kind_max = 100000;
	lim.key_max = 100000;

	memset(line, 'a', sizeof(line));
	line[SL_KIND_MAX] = ' ';
	line[SL_KIND_MAX + 1] = 'k';
	e = line_ok(line, SL_KIND_MAX + 2, &lim);
	assert_int_equal(e->kind_len, SL_KIND_MAX);
	sl_event_unref(e);
	line[SL_KIND_MAX] = 'a';
	line[SL_KIND_MAX + 1] = ' ';
	line_bad(line, SL_KIND_MAX + 3, &lim, -EMSGSIZE,
		 "kind longer than kind_max");

	memset(line, 'b', sizeof(line));
	line[1] = ' ';
	e = line_ok(line, 2 + SL_KEY_MAX, &lim);
	assert_int_equal(e->key_len, SL_KEY_MAX);
	sl_event_unref(e);
	line_bad(line, 2 + SL_KEY_MAX + 1, &lim, -EMSGSIZE,
		 "key longer than key_max");
}

/* The default line_max holds the largest event even fully escaped. */
static void
test_line_default_limits_fit_the_largest_event(void **state)
{
	struct sl_wire_limits lim = limits_default();
	size_t payload_max = SL_PAYLOAD_MAX_DEFAULT;
	char *kind = malloc(SL_KIND_MAX);
	char *key = malloc(SL_KEY_MAX);
	char *payload = malloc(payload_max + 1);
	char *buf = malloc(lim.line_max + 8);
	struct sl_event *e, *got;
	size_t n;

	(void)state;
	assert_true(kind && key && payload && buf);
	memset(kind, 0x01, SL_KIND_MAX);
	memset(key, 0x02, SL_KEY_MAX);
	memset(payload, 0x03, payload_max + 1);
	assert_int_equal(lim.kind_max, SL_KIND_MAX);
	assert_int_equal(lim.key_max, SL_KEY_MAX);
	assert_int_equal(lim.payload_max, payload_max);

	e = sl_event_new(kind, SL_KIND_MAX, key, SL_KEY_MAX, payload,
			 payload_max);
	assert_non_null(e);
	n = sl_line_encode(e, buf, lim.line_max + 8);
	assert_int_equal(n, lim.line_max - 1);
	got = line_ok(buf, n, &lim);
	assert_events_equal(got, e);
	sl_event_unref(got);

	/* With a CR the line is exactly line_max long. */
	buf[n - 1] = '\r';
	buf[n] = '\n';
	got = line_ok(buf, n + 1, &lim);
	assert_events_equal(got, e);
	sl_event_unref(got);
	sl_event_unref(e);

	/* One more payload byte, escaped: past line_max. */
	e = sl_event_new(kind, SL_KIND_MAX, key, SL_KEY_MAX, payload,
			 payload_max + 1);
	assert_non_null(e);
	n = sl_line_encode(e, buf, lim.line_max + 8);
	assert_int_equal(n, lim.line_max + 3);
	line_bad(buf, n, &lim, -EMSGSIZE, "line longer than line_max");
	sl_event_unref(e);

	/* Unescaped, the same payload fits the line but not payload_max. */
	memset(payload, 'p', payload_max + 1);
	e = sl_event_new(LIT("k"), LIT("y"), payload, payload_max + 1);
	assert_non_null(e);
	n = sl_line_encode(e, buf, lim.line_max + 8);
	line_bad(buf, n, &lim, -EMSGSIZE, "payload longer than payload_max");
	sl_event_unref(e);

	free(kind);
	free(key);
	free(payload);
	free(buf);
}

/* ---- lines: encoding ---- */

static void
test_line_encode_escapes_what_it_must(void **state)
{
	static const char want[] =
		"a\\sb\\x00\xc3\xa9 k\\\\\\n\\r\\t\\x7f\\x1f\x80 "
		"x y\\r\\n\\\\\\x00\\x7f\x80\xff\\tz \n";
	struct sl_event *e;
	char buf[128];
	size_t n;

	(void)state;
	e = sl_event_new(LIT("a b\0\xc3\xa9"), LIT("k\\\n\r\t\x7f\x1f\x80"),
			 LIT("x y\r\n\\\0\x7f\x80\xff\tz "));
	assert_non_null(e);
	n = sl_line_encode(e, buf, sizeof(buf));
	assert_bytes("line", buf, n, want, sizeof(want) - 1);
	sl_event_unref(e);

	/* No payload: no space after the key. */
	e = sl_event_new(LIT("k"), LIT("y"), NULL, 0);
	assert_non_null(e);
	n = sl_line_encode(e, buf, sizeof(buf));
	assert_bytes("line", buf, n, LIT("k y\n"));
	sl_event_unref(e);
}

static void
test_line_encode_reports_size_when_short(void **state)
{
	struct sl_event *e;
	char buf[64];
	size_t need;

	(void)state;
	e = sl_event_new(LIT("k k"), LIT("y"), LIT("\n"));
	assert_non_null(e);
	need = sl_line_encode(e, NULL, 0);
	assert_int_equal(need, strlen("k\\sk y \\n\n"));

	/* Too small by one: the size again, and nothing written. */
	memset(buf, '#', sizeof(buf));
	assert_int_equal(sl_line_encode(e, buf, need - 1), need);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], '#');

	assert_int_equal(sl_line_encode(e, buf, need), need);
	assert_bytes("line", buf, need, LIT("k\\sk y \\n\n"));
	assert_int_equal(buf[need], '#');
	sl_event_unref(e);
}

/* ---- lines: round trips ---- */

/* Bytes the escaping treats specially, drawn often on purpose. */
static const unsigned char wire_nasty[] = {
	' ', '\\', '\n', '\r', '\t', 0, 0x7f, 0x80, 0xff,
	'x', 's', 'n', '0', 'f', 0x1f, 0x20 + 1,
};

static void
fill_random(uint64_t *rng, char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t r = harness_random(rng);

		if (r & 1)
			p[i] = (char)wire_nasty[(r >> 8) %
						SL_ARRAY_SIZE(wire_nasty)];
		else
			p[i] = (char)(r >> 16);
	}
}

/* A length in [min, max], often at either end, mostly short. */
static size_t
random_len(uint64_t *rng, size_t min, size_t max)
{
	uint64_t r = harness_random(rng);
	size_t short_span = max - min < 40 ? max - min : 40;

	switch (r % 8) {
	case 0:
		return min;
	case 1:
		return max;
	case 2:
		return min + (r >> 8) % (max - min + 1);
	default:
		return min + (r >> 8) % (short_span + 1);
	}
}

static struct sl_event *
random_event(uint64_t *rng, size_t payload_max)
{
	static char kind[SL_KIND_MAX], key[SL_KEY_MAX];
	static char payload[4096];
	size_t kind_len = random_len(rng, 1, SL_KIND_MAX);
	size_t key_len = random_len(rng, 1, SL_KEY_MAX);
	size_t payload_len = random_len(rng, 0, payload_max);
	struct sl_event *e;

	fill_random(rng, kind, kind_len);
	fill_random(rng, key, key_len);
	fill_random(rng, payload, payload_len);
	e = sl_event_new(kind, kind_len, key, key_len, payload, payload_len);
	assert_non_null(e);
	return e;
}

/* A line as the encoder writes it: no raw control byte but the last LF,
 * and exactly two raw spaces before the payload. */
static void
assert_line_is_clean(const char *line, size_t n)
{
	size_t spaces = 0, raw_controls = 0;

	assert_true(n >= 4);
	assert_int_equal(line[n - 1], '\n');
	for (size_t i = 0; i < n - 1; i++) {
		unsigned char c = (unsigned char)line[i];

		raw_controls += c < 0x20 || c == 0x7f;
		if (c == ' ' && spaces < 2)
			spaces++;
	}
	assert_int_equal(raw_controls, 0);
	assert_in_range(spaces, 1, 2);
}

static void
test_line_round_trip_random(void **state)
{
	struct sl_wire_limits lim = limits_default();
	size_t cases = HARNESS_SCALE(20000, 4000);
	size_t cap = 4 * (SL_KIND_MAX + SL_KEY_MAX + 4096) + 8;
	char *buf = malloc(cap), *again = malloc(cap);
	uint64_t rng = 0x5eed0001;

	(void)state;
	assert_true(buf && again);
	for (size_t i = 0; i < cases; i++) {
		struct sl_event *e = random_event(&rng, 4096);
		struct sl_event *got;
		size_t need = sl_line_encode(e, NULL, 0);
		size_t n = sl_line_encode(e, buf, need);

		assert_int_equal(n, need);
		assert_line_is_clean(buf, n);
		got = line_ok(buf, n, &lim);
		assert_events_equal(got, e);

		/* Decoding again and re-encoding gives the same bytes. */
		assert_int_equal(sl_line_encode(got, again, cap), n);
		assert_memory_equal(again, buf, n);
		sl_event_unref(got);

		/* Without its LF, and with CRLF: the same event. */
		got = line_ok(buf, n - 1, &lim);
		assert_events_equal(got, e);
		sl_event_unref(got);
		buf[n - 1] = '\r';
		buf[n] = '\n';
		got = line_ok(buf, n + 1, &lim);
		assert_events_equal(got, e);
		sl_event_unref(got);
		sl_event_unref(e);
	}
	free(buf);
	free(again);
}

/* ---- frames ---- */

#define ASSERT_BYTE(buf, i, v) assert_int_equal((unsigned char)(buf)[i], (v))

static void
test_frame_length_needs_four_bytes(void **state)
{
	struct sl_wire_limits lim = limits_default();
	char buf[16];
	const char *why = NULL;

	(void)state;
	assert_int_equal(sl_frame_encode_hello(7, buf, sizeof(buf)), 9);
	for (size_t n = 0; n < 4; n++)
		assert_int_equal(sl_frame_length(buf, n, &lim, &why), 0);
	for (size_t n = 4; n <= 9; n++)
		assert_int_equal(sl_frame_length(buf, n, &lim, &why), 9);
	assert_null(why);
}

static void
test_frame_length_rejects_bad_lengths(void **state)
{
	struct sl_wire_limits lim = limits_default();
	const char *why = NULL;

	(void)state;
	assert_int_equal(sl_frame_length(LIT("\0\0\0\0"), &lim, &why),
			 -EBADMSG);
	assert_string_equal(why,
			    "frame length 0 leaves no room for the type byte");

	/* The smallest frame: a type byte alone. */
	assert_int_equal(sl_frame_length(LIT("\0\0\0\x01"), &lim, &why),
			 SL_FRAME_HEADER);

	why = NULL;
	assert_int_equal(sl_frame_length(LIT("\xff\xff\xff\xff"), &lim, &why),
			 -EMSGSIZE);
	assert_string_equal(why, "frame longer than frame_max");

	/* frame_max counts the length field: 100 in all is 96 after it. */
	lim.frame_max = 100;
	assert_int_equal(sl_frame_length(LIT("\0\0\0\x60"), &lim, NULL), 100);
	why = NULL;
	assert_int_equal(sl_frame_length(LIT("\0\0\0\x61"), &lim, &why),
			 -EMSGSIZE);
	assert_string_equal(why, "frame longer than frame_max");

	/* The whole 32-bit range is a length, not a sign. */
	lim.frame_max = (size_t)UINT32_MAX + 4;
	assert_int_equal(sl_frame_length(LIT("\xff\xff\xff\xff"), &lim, NULL),
			 (long)UINT32_MAX + 4);
}

static void
test_frame_event_layout_is_big_endian(void **state)
{
	char key[258], buf[512];
	struct sl_event *e;
	size_t n;

	(void)state;
	memset(key, 'k', sizeof(key));
	e = sl_event_new(LIT("ab"), key, sizeof(key), LIT("xyz"));
	assert_non_null(e);
	n = sl_frame_encode_event(e, buf, sizeof(buf));

	/* 4 + 1 + 1 + 2 + 2 + 258 + 3 = 271 bytes; 267 = 0x10b after the
	 * length field; key_len 258 = 0x0102. */
	assert_int_equal(n, 271);
	ASSERT_BYTE(buf, 0, 0x00);
	ASSERT_BYTE(buf, 1, 0x00);
	ASSERT_BYTE(buf, 2, 0x01);
	ASSERT_BYTE(buf, 3, 0x0b);
	ASSERT_BYTE(buf, 4, SL_FRAME_EVENT);
	ASSERT_BYTE(buf, 5, 2);
	ASSERT_BYTE(buf, 6, 0x01);
	ASSERT_BYTE(buf, 7, 0x02);
	ASSERT_BYTE(buf, 8, 'a');
	ASSERT_BYTE(buf, 9, 'b');
	for (size_t i = 10; i < 10 + sizeof(key); i++)
		ASSERT_BYTE(buf, i, 'k');
	assert_memory_equal(buf + 268, "xyz", 3);
	sl_event_unref(e);
}

static void
test_frame_hello_and_ack_layout(void **state)
{
	static const unsigned char hello[] = {0, 0, 0, 5, 2, 1, 2, 3, 4};
	static const unsigned char ack[] = {0,	  0,	0,    9,    3,
					    0x01, 0x02, 0x03, 0x04, 0x05,
					    0x06, 0x07, 0xf8};
	char buf[32];

	(void)state;
	assert_int_equal(sl_frame_encode_hello(0x01020304, buf, sizeof(buf)),
			 sizeof(hello));
	for (size_t i = 0; i < sizeof(hello); i++)
		ASSERT_BYTE(buf, i, hello[i]);

	assert_int_equal(sl_frame_encode_ack(0x01020304050607f8ull, buf,
					     sizeof(buf)),
			 sizeof(ack));
	for (size_t i = 0; i < sizeof(ack); i++)
		ASSERT_BYTE(buf, i, ack[i]);
}

static void
test_frame_hello_and_ack_round_trip(void **state)
{
	static const uint32_t every[] = {0, 1, 100, 0x80000000u, UINT32_MAX};
	static const uint64_t accepted[] = {0, 1, 1000000, 1ull << 63,
					    UINT64_MAX};
	struct sl_wire_limits lim = limits_default();
	struct sl_frame f;
	char buf[32];
	size_t n;

	(void)state;
	for (size_t i = 0; i < SL_ARRAY_SIZE(every); i++) {
		n = sl_frame_encode_hello(every[i], buf, sizeof(buf));
		assert_int_equal(sl_frame_length(buf, n, &lim, NULL), n);
		assert_int_equal(sl_frame_decode(buf, n, &lim, &f, NULL), 0);
		assert_int_equal(f.type, SL_FRAME_HELLO);
		assert_int_equal(f.ack_every, every[i]);
		assert_null(f.event);
	}
	for (size_t i = 0; i < SL_ARRAY_SIZE(accepted); i++) {
		n = sl_frame_encode_ack(accepted[i], buf, sizeof(buf));
		assert_int_equal(sl_frame_length(buf, n, &lim, NULL), n);
		assert_int_equal(sl_frame_decode(buf, n, &lim, &f, NULL), 0);
		assert_int_equal(f.type, SL_FRAME_ACK);
		assert_int_equal(f.accepted, accepted[i]);
		assert_null(f.event);
	}
}

static void
test_frame_encode_reports_size_when_short(void **state)
{
	struct sl_event *e;
	char buf[64];

	(void)state;
	e = sl_event_new(LIT("kind"), LIT("key"), LIT("payload"));
	assert_non_null(e);
	memset(buf, '#', sizeof(buf));
	assert_int_equal(sl_frame_encode_event(e, buf, 21), 22);
	assert_int_equal(sl_frame_encode_hello(1, buf, 8), 9);
	assert_int_equal(sl_frame_encode_ack(1, buf, 12), 13);
	assert_int_equal(sl_frame_encode_ack(1, NULL, 0), 13);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], '#');
	assert_int_equal(sl_frame_encode_event(e, buf, 22), 22);
	assert_int_equal(buf[22], '#');
	sl_event_unref(e);
}

struct bad_frame {
	const char *bytes;
	size_t len;
	int err;
	const char *why;
};

#define BAD_FRAME(s, e, w) {LIT(s), (e), (w)}

static void
frame_bad(const char *buf, size_t len, const struct sl_wire_limits *lim,
	  int want_err, const char *want_why)
{
	struct sl_frame f;
	const char *why = NULL;
	int err;

	memset(&f, 0x55, sizeof(f));
	err = sl_frame_decode(buf, len, lim, &f, &why);
	if (err != want_err)
		fail_msg("frame %zu bytes: %d (%s), expected %d (%s)", len, err,
			 why ? why : "no reason", want_err, want_why);
	assert_non_null(why);
	assert_string_equal(why, want_why);
	assert_int_equal(f.type, 0);
	assert_null(f.event);
	assert_int_equal(f.ack_every, 0);
	assert_int_equal(f.accepted, 0);
}

static void
test_frame_decode_rejects_malformed(void **state)
{
	static const struct bad_frame bad[] = {
		BAD_FRAME("\0\0\0", -EBADMSG,
			  "frame shorter than its 4-byte length field"),
		BAD_FRAME("\0\0\0\0", -EBADMSG,
			  "frame length 0 leaves no room for the type byte"),
		/* A HELLO cut short, or with a byte too many. */
		BAD_FRAME("\0\0\0\x05\x02\0\0\0", -EBADMSG,
			  "frame size disagrees with its length field"),
		BAD_FRAME("\0\0\0\x05\x02\0\0\0\0\0", -EBADMSG,
			  "frame size disagrees with its length field"),
		BAD_FRAME("\0\0\0\x01\x00", -EBADMSG,
			  "frame type 0x00 unknown"),
		BAD_FRAME("\0\0\0\x01\x04", -EBADMSG,
			  "frame type 0x04 unknown"),
		BAD_FRAME("\0\0\0\x03\x09\0\0", -EBADMSG,
			  "frame type 0x09 unknown"),
		BAD_FRAME("\0\0\0\x01\xff", -EBADMSG,
			  "frame type 0xff unknown"),
		BAD_FRAME("\0\0\0\x04\x02\0\0\0", -EBADMSG,
			  "HELLO frame body is not 4 bytes"),
		BAD_FRAME("\0\0\0\x06\x02\0\0\0\0\0", -EBADMSG,
			  "HELLO frame body is not 4 bytes"),
		BAD_FRAME("\0\0\0\x08\x03\0\0\0\0\0\0\0", -EBADMSG,
			  "ACK frame body is not 8 bytes"),
		BAD_FRAME("\0\0\0\x0a\x03\0\0\0\0\0\0\0\0\0", -EBADMSG,
			  "ACK frame body is not 8 bytes"),
		BAD_FRAME("\0\0\0\x01\x01", -EBADMSG,
			  "EVENT frame shorter than its kind and key lengths"),
		BAD_FRAME("\0\0\0\x03\x01\x01\0", -EBADMSG,
			  "EVENT frame shorter than its kind and key lengths"),
		BAD_FRAME("\0\0\0\x07\x01\x02\0\x02" "abc", -EBADMSG,
			  "EVENT kind and key lengths run past the frame's end"),
		BAD_FRAME("\0\0\0\x05\x01\x01\x01\0" "a", -EBADMSG,
			  "EVENT kind and key lengths run past the frame's end"),
		BAD_FRAME("\0\0\0\x06\x01\0\0\x01" "kp", -EBADMSG,
			  "empty kind"),
		BAD_FRAME("\0\0\0\x06\x01\x01\0\0" "kp", -EBADMSG,
			  "empty key"),
	};
	struct sl_wire_limits lim = limits_default();

	(void)state;
	for (size_t i = 0; i < SL_ARRAY_SIZE(bad); i++)
		frame_bad(bad[i].bytes, bad[i].len, &lim, bad[i].err,
			  bad[i].why);
	frame_bad(LIT("\xff\xff\xff\xff\x01"), &lim, -EMSGSIZE,
		  "frame longer than frame_max");
}

/* Encode an event with the given sizes as a frame, filled with 'z'. */
static size_t
frame_of_sizes(char *buf, size_t cap, size_t kind_len, size_t key_len,
	       size_t payload_len)
{
	size_t n = SL_FRAME_HEADER + 3 + kind_len + key_len + payload_len;

	assert_true(n <= cap);
	memset(buf, 'z', n);
	buf[0] = (char)((n - 4) >> 24);
	buf[1] = (char)((n - 4) >> 16);
	buf[2] = (char)((n - 4) >> 8);
	buf[3] = (char)(n - 4);
	buf[4] = SL_FRAME_EVENT;
	buf[5] = (char)kind_len;
	buf[6] = (char)(key_len >> 8);
	buf[7] = (char)key_len;
	return n;
}

static void
frame_event_ok(const char *buf, size_t n, const struct sl_wire_limits *lim,
	       size_t kind_len, size_t key_len, size_t payload_len)
{
	struct sl_frame f;
	const char *why = "";
	int err = sl_frame_decode(buf, n, lim, &f, &why);

	if (err)
		fail_msg("frame %zu/%zu/%zu: %s", kind_len, key_len,
			 payload_len, why);
	assert_int_equal(f.type, SL_FRAME_EVENT);
	assert_int_equal(f.event->kind_len, kind_len);
	assert_int_equal(f.event->key_len, key_len);
	assert_int_equal(f.event->payload_len, payload_len);
	sl_event_unref(f.event);
}

static void
test_frame_limits_at_and_past(void **state)
{
	struct sl_wire_limits lim = limits_small();
	static char buf[SL_KEY_MAX + 64];
	size_t n;

	(void)state;
	/* kind_max 4, key_max 6, payload_max 8. */
	n = frame_of_sizes(buf, sizeof(buf), 4, 6, 8);
	frame_event_ok(buf, n, &lim, 4, 6, 8);
	n = frame_of_sizes(buf, sizeof(buf), 5, 6, 8);
	frame_bad(buf, n, &lim, -EMSGSIZE, "kind longer than kind_max");
	n = frame_of_sizes(buf, sizeof(buf), 4, 7, 8);
	frame_bad(buf, n, &lim, -EMSGSIZE, "key longer than key_max");
	n = frame_of_sizes(buf, sizeof(buf), 4, 6, 9);
	frame_bad(buf, n, &lim, -EMSGSIZE, "payload longer than payload_max");

	/* frame_max: this frame is 8 + 18 = 26 bytes. */
	n = frame_of_sizes(buf, sizeof(buf), 4, 6, 8);
	lim.frame_max = 26;
	frame_event_ok(buf, n, &lim, 4, 6, 8);
	lim.frame_max = 25;
	frame_bad(buf, n, &lim, -EMSGSIZE, "frame longer than frame_max");

	/* A u16 key length can exceed SL_KEY_MAX; the limit is clamped. */
	lim = limits_default();
	lim.key_max = 65535;
	n = frame_of_sizes(buf, sizeof(buf), 1, SL_KEY_MAX, 0);
	frame_event_ok(buf, n, &lim, 1, SL_KEY_MAX, 0);
	n = frame_of_sizes(buf, sizeof(buf), 1, SL_KEY_MAX + 1, 0);
	frame_bad(buf, n, &lim, -EMSGSIZE, "key longer than key_max");

	/* The largest kind a u8 holds is the largest there is. */
	n = frame_of_sizes(buf, sizeof(buf), SL_KIND_MAX, 1, 0);
	frame_event_ok(buf, n, &lim, SL_KIND_MAX, 1, 0);
}

/* The default frame_max holds exactly the largest event. */
static void
test_frame_default_limits_fit_the_largest_event(void **state)
{
	struct sl_wire_limits lim = limits_default();
	size_t payload_max = SL_PAYLOAD_MAX_DEFAULT;
	size_t cap = lim.frame_max + 1;
	char *buf = malloc(cap);
	size_t n;

	(void)state;
	assert_non_null(buf);
	n = frame_of_sizes(buf, cap, SL_KIND_MAX, SL_KEY_MAX, payload_max);
	assert_int_equal(n, lim.frame_max);
	assert_int_equal(sl_frame_length(buf, n, &lim, NULL), n);
	frame_event_ok(buf, n, &lim, SL_KIND_MAX, SL_KEY_MAX, payload_max);

	n = frame_of_sizes(buf, cap, SL_KIND_MAX, SL_KEY_MAX, payload_max + 1);
	assert_int_equal(sl_frame_length(buf, n, &lim, NULL), -EMSGSIZE);
	frame_bad(buf, n, &lim, -EMSGSIZE, "frame longer than frame_max");
	free(buf);
}

static void
test_frame_event_round_trip_random(void **state)
{
	struct sl_wire_limits lim = limits_default();
	size_t cases = HARNESS_SCALE(20000, 4000);
	size_t cap = SL_FRAME_HEADER + 3 + SL_KIND_MAX + SL_KEY_MAX + 4096;
	char *buf = malloc(cap), *again = malloc(cap);
	uint64_t rng = 0x5eed0002;

	(void)state;
	assert_true(buf && again);
	for (size_t i = 0; i < cases; i++) {
		struct sl_event *e = random_event(&rng, 4096);
		struct sl_frame f;
		size_t n = sl_frame_encode_event(e, buf, cap);

		assert_int_equal(sl_frame_length(buf, n, &lim, NULL), n);
		assert_int_equal(sl_frame_decode(buf, n, &lim, &f, NULL), 0);
		assert_int_equal(f.type, SL_FRAME_EVENT);
		assert_events_equal(f.event, e);
		assert_int_equal(sl_frame_encode_event(f.event, again, cap), n);
		assert_memory_equal(again, buf, n);
		sl_event_unref(f.event);
		sl_event_unref(e);
	}
	free(buf);
	free(again);
}

/*
 * A stream of mixed frames arriving one byte at a time: the length is
 * unknown (0) until 4 bytes are there, and each frame decodes to what was
 * sent once all of it is.
 */
static void
test_frame_stream_cut_at_every_byte(void **state)
{
	enum { FRAMES = 300 };
	struct sl_wire_limits lim = limits_default();
	struct sl_event *sent[FRAMES];
	size_t cap = FRAMES * (SL_FRAME_HEADER + 3 + SL_KIND_MAX + SL_KEY_MAX +
			       256);
	char *stream = malloc(cap);
	size_t len = 0, start = 0, got = 0;
	uint64_t rng = 0x5eed0003;

	(void)state;
	assert_non_null(stream);
	for (size_t i = 0; i < FRAMES; i++) {
		sent[i] = NULL;
		switch (i % 3) {
		case 0:
			sent[i] = random_event(&rng, 256);
			len += sl_frame_encode_event(sent[i], stream + len,
						     cap - len);
			break;
		case 1:
			len += sl_frame_encode_hello((uint32_t)i, stream + len,
						     cap - len);
			break;
		default:
			len += sl_frame_encode_ack(i * 1000003ull, stream + len,
						   cap - len);
			break;
		}
	}

	for (size_t avail = 0; avail <= len; avail++) {
		size_t have = avail - start;
		long total = sl_frame_length(stream + start, have, &lim, NULL);
		struct sl_frame f;

		if (have < 4) {
			assert_int_equal(total, 0);
			continue;
		}
		assert_true(total > 0);
		if ((size_t)total > have)
			continue;

		assert_int_equal(sl_frame_decode(stream + start, (size_t)total,
						 &lim, &f, NULL),
				 0);
		switch (got % 3) {
		case 0:
			assert_int_equal(f.type, SL_FRAME_EVENT);
			assert_events_equal(f.event, sent[got]);
			sl_event_unref(f.event);
			break;
		case 1:
			assert_int_equal(f.type, SL_FRAME_HELLO);
			assert_int_equal(f.ack_every, got);
			break;
		default:
			assert_int_equal(f.type, SL_FRAME_ACK);
			assert_int_equal(f.accepted, got * 1000003ull);
			break;
		}
		start += (size_t)total;
		got++;
	}
	assert_int_equal(got, FRAMES);
	assert_int_equal(start, len);
	for (size_t i = 0; i < FRAMES; i++)
		sl_event_unref(sent[i]);
	free(stream);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_decode_kind_and_key),
		cmocka_unit_test(test_line_decode_payload_keeps_spaces),
		cmocka_unit_test(test_line_decode_drops_one_cr),
		cmocka_unit_test(test_line_decode_every_escape),
		cmocka_unit_test(
			test_line_decode_passes_high_bytes_and_raw_payload),
		cmocka_unit_test(test_line_decode_ignores_empty_lines),
		cmocka_unit_test(test_line_decode_rejects_malformed),
		cmocka_unit_test(test_line_decode_accepts_null_why),
		cmocka_unit_test(test_line_field_limits_at_and_past),
		cmocka_unit_test(test_line_length_limit_at_and_past),
		cmocka_unit_test(
			test_line_limits_above_event_ceilings_are_clamped),
		cmocka_unit_test(test_line_default_limits_fit_the_largest_event),
		cmocka_unit_test(test_line_encode_escapes_what_it_must),
		cmocka_unit_test(test_line_encode_reports_size_when_short),
		cmocka_unit_test(test_line_round_trip_random),
		cmocka_unit_test(test_frame_length_needs_four_bytes),
		cmocka_unit_test(test_frame_length_rejects_bad_lengths),
		cmocka_unit_test(test_frame_event_layout_is_big_endian),
		cmocka_unit_test(test_frame_hello_and_ack_layout),
		cmocka_unit_test(test_frame_hello_and_ack_round_trip),
		cmocka_unit_test(test_frame_encode_reports_size_when_short),
		cmocka_unit_test(test_frame_decode_rejects_malformed),
		cmocka_unit_test(test_frame_limits_at_and_past),
		cmocka_unit_test(
			test_frame_default_limits_fit_the_largest_event),
		cmocka_unit_test(test_frame_event_round_trip_random),
		cmocka_unit_test(test_frame_stream_cut_at_every_byte),
	};

	harness_init();
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
