/* SPDX-License-Identifier: MIT */
/*
 * The line and frame codecs; docs/protocol.md is the specification.
 *
 * Decoding a line reads its bytes twice and allocates once.  The first pass
 * finds the three fields, checks every escape and every byte of the kind
 * and the key, and counts how long each field is once decoded.  Only then
 * is the event allocated, at exactly those lengths, and the second pass
 * copies each field into it: with one memcpy when the field holds no
 * backslash (its decoded length then equals its raw length), otherwise run
 * by run between backslashes found with memchr.  A line that fails costs no
 * allocation, and the first pass never writes.
 *
 * The kind and the key are short and every byte must be looked at, so they
 * are scanned byte by byte with plain comparisons.  The payload may be long
 * and any byte but a backslash is taken as it is, so it is scanned with
 * memchr only.
 *
 * Every error names its cause in a static string, so the router can log it
 * without formatting anything and without keeping the line.
 */
#include <errno.h>
#include <string.h>

#include "router/wire.h"

/*
 * sl_frame_length() returns a frame's length, which may reach 2^32 + 3, as
 * a long.
 */
_Static_assert(sizeof(long) >= 8, "frame lengths need a 64-bit long");

/* The largest payload an event can hold (sl_event_alloc() refuses more). */
#define WIRE_PAYLOAD_CEILING                                                   \
	((size_t)UINT32_MAX - sizeof(struct sl_event) - SL_KIND_MAX -          \
	 SL_KEY_MAX)

/* The EVENT frame's fixed part after the type: kind_len, key_len. */
#define FRAME_EVENT_HEAD 3

/*
 * Byte tables are built at compile time: BYTES_256(F) expands to F(0),
 * F(1), ... F(255), separated by commas.
 */
#define BYTES_4(F, b) F(b), F((b) + 1), F((b) + 2), F((b) + 3)
#define BYTES_16(F, b)                                                         \
	BYTES_4(F, b), BYTES_4(F, (b) + 4), BYTES_4(F, (b) + 8),               \
		BYTES_4(F, (b) + 12)
#define BYTES_64(F, b)                                                         \
	BYTES_16(F, b), BYTES_16(F, (b) + 16), BYTES_16(F, (b) + 32),          \
		BYTES_16(F, (b) + 48)
#define BYTES_256(F)                                                           \
	BYTES_64(F, 0), BYTES_64(F, 64), BYTES_64(F, 128), BYTES_64(F, 192)

#define IS_VISIBLE(c) ((c) > 0x20 && (c) < 0x7f)
#define HEX_DIGIT(v) ((char)((v) < 10 ? '0' + (v) : 'a' + (v)-10))

/*
 * "bad escape \q" for a visible byte after the backslash, and
 * "bad escape \<0x07>" for any other, so that a log line never carries a
 * raw control byte.
 */
#define BAD_ESCAPE(c)                                                          \
	{                                                                      \
		'b', 'a', 'd', ' ', 'e', 's', 'c', 'a', 'p', 'e', ' ', '\\',   \
		IS_VISIBLE(c) ? (char)(c) : '<',                               \
		IS_VISIBLE(c) ? '\0' : '0',                                    \
		IS_VISIBLE(c) ? '\0' : 'x',                                    \
		IS_VISIBLE(c) ? '\0' : HEX_DIGIT((c) >> 4),                    \
		IS_VISIBLE(c) ? '\0' : HEX_DIGIT((c)&15),                      \
		IS_VISIBLE(c) ? '\0' : '>', '\0'                               \
	}

static const char line_bad_escape[256][19] = {BYTES_256(BAD_ESCAPE)};

/* "frame type 0x09 unknown". */
#define BAD_TYPE(t)                                                            \
	{                                                                      \
		'f', 'r', 'a', 'm', 'e', ' ', 't', 'y', 'p', 'e', ' ', '0',    \
		'x', HEX_DIGIT((t) >> 4), HEX_DIGIT((t)&15), ' ', 'u', 'n',    \
		'k', 'n', 'o', 'w', 'n', '\0'                                  \
	}

static const char frame_bad_type[256][24] = {BYTES_256(BAD_TYPE)};

/*
 * What each byte of a field becomes in a line: 1 (itself), 2 (\\ \n \r \t,
 * and \s in the kind and the key) or 4 (\xHH).  Control bytes are escaped
 * everywhere, the payload included, so a line never carries one raw.
 */
#define ESC_PAYLOAD(c)                                                         \
	((c) == '\\' || (c) == '\n' || (c) == '\r' || (c) == '\t' ? 2          \
	 : (c) < 0x20 || (c) == 0x7f				  ? 4          \
								  : 1)
#define ESC_TOKEN(c) ((c) == ' ' ? 2 : ESC_PAYLOAD(c))

static const unsigned char line_esc_token[256] = {BYTES_256(ESC_TOKEN)};
static const unsigned char line_esc_payload[256] = {BYTES_256(ESC_PAYLOAD)};

void
sl_wire_limits_default(struct sl_wire_limits *l)
{
	size_t fields = SL_KIND_MAX + SL_KEY_MAX + SL_PAYLOAD_MAX_DEFAULT;

	l->kind_max = SL_KIND_MAX;
	l->key_max = SL_KEY_MAX;
	l->payload_max = SL_PAYLOAD_MAX_DEFAULT;

	/* Any event within the field limits fits as a line even if every
	 * byte needs \xHH: four bytes each, two spaces, CR and LF. */
	l->line_max = 4 * fields + 4;
	l->frame_max = SL_FRAME_HEADER + FRAME_EVENT_HEAD + fields;
}

SL_INLINE size_t
wire_min(size_t a, size_t b)
{
	return a < b ? a : b;
}

/* ---- lines ---- */

SL_INLINE int
hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/*
 * The length in the line of the escape whose backslash is at @p: 2, or 4
 * for \xHH.  0 for a bad escape, with *@why set.
 */
static size_t
line_escape_len(const unsigned char *p, const unsigned char *end,
		const char **why)
{
	if (SL_UNLIKELY(end - p < 2)) {
		*why = "backslash at end of line";
		return 0;
	}
	switch (p[1]) {
	case '\\':
	case 'n':
	case 'r':
	case 't':
	case 's':
		return 2;
	case 'x':
		if (end - p < 4 || hex_value(p[2]) < 0 || hex_value(p[3]) < 0) {
			*why = "bad escape \\x: two hex digits must follow";
			return 0;
		}
		return 4;
	case ' ':
		*why = "bad escape \\ followed by a space (a space is \\s)";
		return 0;
	default:
		*why = line_bad_escape[p[1]];
		return 0;
	}
}

/* The messages for one of the two space-delimited fields. */
struct line_token_why {
	const char *empty;
	const char *too_long;
	const char *tab;
	const char *control;
};

static const struct line_token_why line_kind_why = {
	.empty = "empty kind",
	.too_long = "kind longer than kind_max",
	.tab = "tab in kind (fields are separated by one space)",
	.control = "control byte in kind (escape it as \\xHH)",
};

static const struct line_token_why line_key_why = {
	.empty = "empty key",
	.too_long = "key longer than key_max",
	.tab = "tab in key (fields are separated by one space)",
	.control = "control byte in key (escape it as \\xHH)",
};

/* Where each field lies in the line, and its decoded length. */
struct line_field {
	const unsigned char *start;
	const unsigned char *end;
	size_t len;
};

/*
 * Scan the kind or the key from @f->start up to the first space or @end:
 * set @f->end and @f->len.  Stops as soon as the field has grown past @max,
 * so an overlong field costs no more than @max escapes to find.
 */
static int
line_scan_token(struct line_field *f, const unsigned char *end, size_t max,
		const struct line_token_why *w, const char **why)
{
	const unsigned char *p = f->start;
	size_t n = 0;

	while (p < end) {
		unsigned char c = *p;

		if (SL_LIKELY(c > ' ' && c != '\\' && c != 0x7f)) {
			p++;
		} else if (c == ' ') {
			break;
		} else if (c == '\\') {
			size_t esc = line_escape_len(p, end, why);

			if (!esc)
				return -EBADMSG;
			p += esc;
		} else {
			*why = c == '\t' ? w->tab : w->control;
			return -EBADMSG;
		}
		if (SL_UNLIKELY(++n > max)) {
			*why = w->too_long;
			return -EMSGSIZE;
		}
	}

	if (p == f->start) {
		*why = w->empty;
		return -EBADMSG;
	}
	f->end = p;
	f->len = n;
	return 0;
}

/* Check the payload's escapes and count its decoded length. */
static int
line_scan_payload(struct line_field *f, size_t max, const char **why)
{
	const unsigned char *p = f->start;
	const unsigned char *bs;
	size_t saved = 0;

	while ((bs = memchr(p, '\\', (size_t)(f->end - p))) != NULL) {
		size_t esc = line_escape_len(bs, f->end, why);

		if (!esc)
			return -EBADMSG;
		saved += esc - 1;
		p = bs + esc;
	}

	f->len = (size_t)(f->end - f->start) - saved;
	if (f->len > max) {
		*why = "payload longer than payload_max";
		return -EMSGSIZE;
	}
	return 0;
}

/*
 * The first pass over a line's body (no LF, no final CR, not empty): split
 * it into @f[0..2] (kind, key, payload) and check everything.
 */
static int
line_scan(const unsigned char *p, const unsigned char *end,
	  const struct sl_wire_limits *lim, struct line_field f[3],
	  const char **why)
{
	int err;

	if (SL_UNLIKELY(memchr(p, '\n', (size_t)(end - p)) != NULL)) {
		*why = "LF inside the line (one line per call)";
		return -EBADMSG;
	}

	f[0].start = p;
	err = line_scan_token(&f[0], end, wire_min(lim->kind_max, SL_KIND_MAX),
			      &line_kind_why, why);
	if (err)
		return err;
	if (f[0].end == end) {
		*why = "no key (a line is KIND SP KEY [SP PAYLOAD])";
		return -EBADMSG;
	}

	f[1].start = f[0].end + 1;
	err = line_scan_token(&f[1], end, wire_min(lim->key_max, SL_KEY_MAX),
			      &line_key_why, why);
	if (err)
		return err;

	/* The payload is everything after the key's space, even if empty. */
	f[2].start = f[1].end == end ? end : f[1].end + 1;
	f[2].end = end;
	return line_scan_payload(
		&f[2], wire_min(lim->payload_max, WIRE_PAYLOAD_CEILING), why);
}

/*
 * The second pass: copy a field whose escapes line_scan() has checked,
 * resolving them.  Return: the end of what was written.
 */
static char *
line_unescape(char *out, const struct line_field *f)
{
	const unsigned char *p = f->start;
	size_t raw = (size_t)(f->end - p);

	if (SL_LIKELY(raw == f->len)) {
		memcpy(out, p, raw);
		return out + raw;
	}

	while (p < f->end) {
		const unsigned char *bs = memchr(p, '\\', (size_t)(f->end - p));
		size_t run = (size_t)((bs ? bs : f->end) - p);

		memcpy(out, p, run);
		out += run;
		if (!bs)
			break;

		switch (bs[1]) {
		case 'n':
			*out++ = '\n';
			break;
		case 'r':
			*out++ = '\r';
			break;
		case 't':
			*out++ = '\t';
			break;
		case 's':
			*out++ = ' ';
			break;
		case 'x':
			*out++ = (char)(hex_value(bs[2]) << 4 | hex_value(bs[3]));
			p = bs + 4;
			continue;
		default: /* a backslash: nothing else passed the scan */
			*out++ = '\\';
			break;
		}
		p = bs + 2;
	}
	return out;
}

int
sl_line_decode(const char *line, size_t len, const struct sl_wire_limits *lim,
	       struct sl_event **out, const char **why)
{
	const unsigned char *p = (const unsigned char *)line;
	const unsigned char *end = p + len;
	struct line_field f[3];
	struct sl_event *e;
	const char *ignored;
	size_t wire = len + 1;
	char *o;
	int err;

	if (!why)
		why = &ignored;
	*out = NULL;

	/* The LF counts against line_max whether or not the caller kept it. */
	if (end > p && end[-1] == '\n') {
		end--;
		wire = len;
	}
	if (end > p && end[-1] == '\r')
		end--;
	if (end == p)
		return 0;
	if (wire > lim->line_max) {
		*why = "line longer than line_max";
		return -EMSGSIZE;
	}

	err = line_scan(p, end, lim, f, why);
	if (err)
		return err;

	e = sl_event_alloc(f[0].len, f[1].len, f[2].len);
	if (SL_UNLIKELY(!e)) {
		*why = "no memory for the event";
		return -ENOMEM;
	}
	o = line_unescape(e->data, &f[0]);
	o = line_unescape(o, &f[1]);
	line_unescape(o, &f[2]);
	sl_event_seal(e);
	*out = e;
	return 0;
}

/* The bytes @n bytes at @p take in a line, escaped as @esc says. */
static size_t
line_escaped_size(const unsigned char *p, size_t n, const unsigned char *esc)
{
	size_t size = 0;

	for (size_t i = 0; i < n; i++)
		size += esc[p[i]];
	return size;
}

/* Write @n bytes from @p escaped as @esc says; the caller made room. */
static char *
line_escape(char *o, const unsigned char *p, size_t n,
	    const unsigned char *esc)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = p[i];

		if (SL_LIKELY(esc[c] == 1)) {
			*o++ = (char)c;
			continue;
		}
		*o++ = '\\';
		switch (c) {
		case '\\':
			*o++ = '\\';
			break;
		case '\n':
			*o++ = 'n';
			break;
		case '\r':
			*o++ = 'r';
			break;
		case '\t':
			*o++ = 't';
			break;
		case ' ':
			*o++ = 's';
			break;
		default:
			*o++ = 'x';
			*o++ = HEX_DIGIT(c >> 4);
			*o++ = HEX_DIGIT(c & 15);
			break;
		}
	}
	return o;
}

size_t
sl_line_encode(const struct sl_event *e, char *buf, size_t cap)
{
	const unsigned char *kind = (const unsigned char *)sl_event_kind(e);
	const unsigned char *key = (const unsigned char *)sl_event_key(e);
	const unsigned char *payload =
		(const unsigned char *)sl_event_payload(e);
	size_t fields = (size_t)e->kind_len + e->key_len + e->payload_len;
	char *o = buf;

	/* Sizing costs a pass; skip it when even the worst case fits. */
	if (cap < 4 * fields + 3) {
		size_t need = line_escaped_size(kind, e->kind_len,
						line_esc_token) +
			      1 +
			      line_escaped_size(key, e->key_len,
						line_esc_token) +
			      1;

		if (e->payload_len)
			need += 1 + line_escaped_size(payload, e->payload_len,
						      line_esc_payload);
		if (need > cap)
			return need;
	}

	o = line_escape(o, kind, e->kind_len, line_esc_token);
	*o++ = ' ';
	o = line_escape(o, key, e->key_len, line_esc_token);
	if (e->payload_len) {
		*o++ = ' ';
		o = line_escape(o, payload, e->payload_len, line_esc_payload);
	}
	*o++ = '\n';
	return (size_t)(o - buf);
}

/* ---- frames ---- */

SL_INLINE uint16_t
be16_get(const unsigned char *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

SL_INLINE uint32_t
be32_get(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

SL_INLINE uint64_t
be64_get(const unsigned char *p)
{
	return (uint64_t)be32_get(p) << 32 | be32_get(p + 4);
}

SL_INLINE void
be16_put(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

SL_INLINE void
be32_put(unsigned char *p, uint32_t v)
{
	be16_put(p, (uint16_t)(v >> 16));
	be16_put(p + 2, (uint16_t)v);
}

SL_INLINE void
be64_put(unsigned char *p, uint64_t v)
{
	be32_put(p, (uint32_t)(v >> 32));
	be32_put(p + 4, (uint32_t)v);
}

long
sl_frame_length(const char *buf, size_t len, const struct sl_wire_limits *lim,
		const char **why)
{
	const char *ignored;
	uint64_t total;

	if (!why)
		why = &ignored;
	if (len < 4)
		return 0;

	total = 4 + (uint64_t)be32_get((const unsigned char *)buf);
	if (total < SL_FRAME_HEADER) {
		*why = "frame length 0 leaves no room for the type byte";
		return -EBADMSG;
	}
	if (total > lim->frame_max) {
		*why = "frame longer than frame_max";
		return -EMSGSIZE;
	}
	return (long)total;
}

/* An EVENT body: u8 kind_len, u16 key_len, kind, key, payload. */
static int
frame_decode_event(const unsigned char *b, size_t n,
		   const struct sl_wire_limits *lim, struct sl_frame *out,
		   const char **why)
{
	size_t kind_len, key_len, payload_len;
	struct sl_event *e;

	if (n < FRAME_EVENT_HEAD) {
		*why = "EVENT frame shorter than its kind and key lengths";
		return -EBADMSG;
	}
	kind_len = b[0];
	key_len = be16_get(b + 1);
	n -= FRAME_EVENT_HEAD;
	if (kind_len + key_len > n) {
		*why = "EVENT kind and key lengths run past the frame's end";
		return -EBADMSG;
	}
	payload_len = n - kind_len - key_len;

	if (kind_len == 0) {
		*why = "empty kind";
		return -EBADMSG;
	}
	if (key_len == 0) {
		*why = "empty key";
		return -EBADMSG;
	}
	if (kind_len > wire_min(lim->kind_max, SL_KIND_MAX)) {
		*why = "kind longer than kind_max";
		return -EMSGSIZE;
	}
	if (key_len > wire_min(lim->key_max, SL_KEY_MAX)) {
		*why = "key longer than key_max";
		return -EMSGSIZE;
	}
	if (payload_len > wire_min(lim->payload_max, WIRE_PAYLOAD_CEILING)) {
		*why = "payload longer than payload_max";
		return -EMSGSIZE;
	}

	/* Kind, key and payload lie back to back in the frame as in the
	 * event, so one copy moves all three. */
	e = sl_event_alloc(kind_len, key_len, payload_len);
	if (SL_UNLIKELY(!e)) {
		*why = "no memory for the event";
		return -ENOMEM;
	}
	memcpy(e->data, b + FRAME_EVENT_HEAD, n);
	sl_event_seal(e);
	out->event = e;
	return 0;
}

int
sl_frame_decode(const char *buf, size_t len, const struct sl_wire_limits *lim,
		struct sl_frame *out, const char **why)
{
	const char *ignored;
	long total;

	if (!why)
		why = &ignored;
	memset(out, 0, sizeof(*out));

	total = sl_frame_length(buf, len, lim, why);
	if (total < 0)
		return (int)total;
	if (total == 0) {
		*why = "frame shorter than its 4-byte length field";
		return -EBADMSG;
	}
	if ((size_t)total != len) {
		*why = "frame size disagrees with its length field";
		return -EBADMSG;
	}

	return sl_frame_decode_body(buf + 4, len - 4, lim, out, why);
}

int
sl_frame_decode_body(const char *buf, size_t len,
		     const struct sl_wire_limits *lim, struct sl_frame *out,
		     const char **why)
{
	const unsigned char *p = (const unsigned char *)buf;
	const unsigned char *body = p + 1;
	const char *ignored;
	size_t n;
	int err;

	if (!why)
		why = &ignored;
	memset(out, 0, sizeof(*out));
	if (len == 0) {
		*why = "frame has no type byte";
		return -EBADMSG;
	}
	n = len - 1;

	switch (p[0]) {
	case SL_FRAME_EVENT:
		err = frame_decode_event(body, n, lim, out, why);
		if (err)
			return err;
		break;
	case SL_FRAME_HELLO:
		if (n != 4) {
			*why = "HELLO frame body is not 4 bytes";
			return -EBADMSG;
		}
		out->ack_every = be32_get(body);
		break;
	case SL_FRAME_ACK:
		if (n != 8) {
			*why = "ACK frame body is not 8 bytes";
			return -EBADMSG;
		}
		out->accepted = be64_get(body);
		break;
	default:
		*why = frame_bad_type[p[0]];
		return -EBADMSG;
	}
	out->type = p[0];
	return 0;
}

/* Write the length field and the type of a frame of @total bytes. */
static unsigned char *
frame_put_header(char *buf, size_t total, int type)
{
	unsigned char *p = (unsigned char *)buf;

	be32_put(p, (uint32_t)(total - 4));
	p[4] = (unsigned char)type;
	return p + SL_FRAME_HEADER;
}

size_t
sl_frame_encode_event(const struct sl_event *e, char *buf, size_t cap)
{
	size_t data = (size_t)e->kind_len + e->key_len + e->payload_len;
	size_t total = SL_FRAME_HEADER + FRAME_EVENT_HEAD + data;
	unsigned char *p;

	if (total > cap)
		return total;
	p = frame_put_header(buf, total, SL_FRAME_EVENT);
	p[0] = (unsigned char)e->kind_len;
	be16_put(p + 1, e->key_len);
	memcpy(p + FRAME_EVENT_HEAD, e->data, data);
	return total;
}

size_t
sl_frame_encode_hello(uint32_t ack_every, char *buf, size_t cap)
{
	size_t total = SL_FRAME_HEADER + 4;

	if (total > cap)
		return total;
	be32_put(frame_put_header(buf, total, SL_FRAME_HELLO), ack_every);
	return total;
}

size_t
sl_frame_encode_ack(uint64_t accepted, char *buf, size_t cap)
{
	size_t total = SL_FRAME_HEADER + 8;

	if (total > cap)
		return total;
	be64_put(frame_put_header(buf, total, SL_FRAME_ACK), accepted);
	return total;
}
