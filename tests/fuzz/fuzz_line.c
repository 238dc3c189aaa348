/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the line codec.
 *
 * Each input is decoded as one line, under the default limits and under
 * tiny ones, and is also taken apart into an event of arbitrary bytes.  The
 * invariants, any of which aborts when broken:
 *
 *  1. Decoding returns 0, -EBADMSG, -EMSGSIZE or -ENOMEM.  On an error
 *     there is a reason and no event.
 *  2. An event has a non-empty kind and key within the limits, one
 *     reference, and the hash of its key.
 *  3. Its fields are what a plain, byte-at-a-time reading of the line
 *     gives: split at the first two raw spaces, then unescape.
 *  4. Encoding it and decoding the result gives the same event, and
 *     encoding that gives the same bytes again.  The encoder's size query
 *     agrees with what it writes.
 *  5. The line decodes the same with and without its LF.
 *  6. Tiny limits only refuse more: what they accept, the defaults accept
 *     as the same event.
 *  7. Any event of non-empty kind and key, whatever its bytes, survives
 *     encoding and decoding under the default limits.
 */
#include <errno.h>

#include "router/wire.h"

#include "fuzz.h"

static int
hex_nibble(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return c - 'A' + 10;
}

/* Unescape @n bytes of an accepted field into @out; return the length. */
static size_t
naive_unescape(const unsigned char *p, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (p[i] != '\\') {
			out[o++] = (char)p[i];
			continue;
		}
		i++;
		switch (p[i]) {
		case 'n':
			out[o++] = '\n';
			break;
		case 'r':
			out[o++] = '\r';
			break;
		case 't':
			out[o++] = '\t';
			break;
		case 's':
			out[o++] = ' ';
			break;
		case 'x':
			out[o++] = (char)(hex_nibble(p[i + 1]) * 16 +
					  hex_nibble(p[i + 2]));
			i += 2;
			break;
		default:
			out[o++] = (char)p[i];
			break;
		}
	}
	return o;
}

/* Invariant 3: compare @e with a plain reading of the accepted line. */
static void
check_naive(const uint8_t *line, size_t len, const struct sl_event *e)
{
	const unsigned char *p = line, *end = line + len, *sp;
	char *buf = malloc(len + 1);
	size_t n;

	FUZZ_CHECK(buf != NULL);
	if (end > p && end[-1] == '\n')
		end--;
	if (end > p && end[-1] == '\r')
		end--;

	sp = memchr(p, ' ', (size_t)(end - p));
	FUZZ_CHECK(sp != NULL);
	n = naive_unescape(p, (size_t)(sp - p), buf);
	FUZZ_CHECK(fuzz_bytes_equal(buf, n, sl_event_kind(e), e->kind_len));

	p = sp + 1;
	sp = memchr(p, ' ', (size_t)(end - p));
	n = naive_unescape(p, (size_t)((sp ? sp : end) - p), buf);
	FUZZ_CHECK(fuzz_bytes_equal(buf, n, sl_event_key(e), e->key_len));

	n = sp ? naive_unescape(sp + 1, (size_t)(end - sp - 1), buf) : 0;
	FUZZ_CHECK(fuzz_bytes_equal(buf, n, sl_event_payload(e),
				    e->payload_len));
	free(buf);
}

/* Invariant 4 (and 7): encode, decode, encode again. */
static void
check_round_trip(const struct sl_event *e)
{
	struct sl_wire_limits lim;
	struct sl_event *back = NULL;
	const char *why = NULL;
	size_t need = sl_line_encode(e, NULL, 0);
	char *buf = malloc(need), *again = malloc(need);

	FUZZ_CHECK(buf != NULL && again != NULL);
	FUZZ_CHECK(need >= 4);
	FUZZ_CHECK(sl_line_encode(e, buf, need - 1) == need);
	FUZZ_CHECK(sl_line_encode(e, buf, need) == need);
	FUZZ_CHECK(buf[need - 1] == '\n');

	sl_wire_limits_default(&lim);
	FUZZ_CHECK(sl_line_decode(buf, need, &lim, &back, &why) == 0);
	FUZZ_CHECK(back != NULL);
	FUZZ_CHECK(fuzz_events_equal(back, e));
	FUZZ_CHECK(sl_line_encode(back, again, need) == need);
	FUZZ_CHECK(memcmp(again, buf, need) == 0);

	sl_event_unref(back);
	free(buf);
	free(again);
}

/* Invariants 1 and 2 for one decode; the event is the caller's. */
static int
decode_checked(const uint8_t *data, size_t size,
	       const struct sl_wire_limits *lim, struct sl_event **e)
{
	const char *why = NULL;
	int err = sl_line_decode((const char *)data, size, lim, e, &why);

	if (err) {
		FUZZ_CHECK(err == -EBADMSG || err == -EMSGSIZE ||
			   err == -ENOMEM);
		FUZZ_CHECK(why != NULL && why[0] != '\0');
		FUZZ_CHECK(*e == NULL);
		return err;
	}
	if (*e) {
		FUZZ_CHECK((*e)->kind_len >= 1 && (*e)->kind_len <= lim->kind_max);
		FUZZ_CHECK((*e)->key_len >= 1 && (*e)->key_len <= lim->key_max);
		FUZZ_CHECK((*e)->payload_len <= lim->payload_max);
		FUZZ_CHECK(atomic_load(&(*e)->refs) == 1);
		FUZZ_CHECK((*e)->hash ==
			   sl_key_hash(sl_event_key(*e), (*e)->key_len));
	}
	return 0;
}

/* Invariant 5: the same input with an LF appended decodes the same. */
static void
check_with_lf(const uint8_t *data, size_t size,
	      const struct sl_wire_limits *lim, int err,
	      const struct sl_event *e)
{
	uint8_t *line;
	struct sl_event *other = NULL;

	if (size && data[size - 1] == '\n')
		return;
	line = malloc(size + 1);
	FUZZ_CHECK(line != NULL);
	if (size)
		memcpy(line, data, size);
	line[size] = '\n';

	FUZZ_CHECK(decode_checked(line, size + 1, lim, &other) == err);
	FUZZ_CHECK((e == NULL) == (other == NULL));
	if (e)
		FUZZ_CHECK(fuzz_events_equal(e, other));
	sl_event_unref(other);
	free(line);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct sl_wire_limits tiny = {
		.kind_max = 3,
		.key_max = 5,
		.payload_max = 7,
		.line_max = 24,
		.frame_max = 32,
	};
	struct sl_wire_limits lim;
	struct sl_event *e = NULL, *small = NULL, *made;
	int err, small_err;

	sl_wire_limits_default(&lim);
	err = decode_checked(data, size, &lim, &e);
	if (e) {
		check_naive(data, size, e);
		check_round_trip(e);
	}
	check_with_lf(data, size, &lim, err, e);

	small_err = decode_checked(data, size, &tiny, &small);
	if (small_err == 0) {
		FUZZ_CHECK(err == 0);
		FUZZ_CHECK((e == NULL) == (small == NULL));
		if (e)
			FUZZ_CHECK(fuzz_events_equal(e, small));
	}
	sl_event_unref(small);
	sl_event_unref(e);

	made = fuzz_event_from(data, size);
	if (made) {
		check_round_trip(made);
		sl_event_unref(made);
	}
	return 0;
}
