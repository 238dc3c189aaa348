/* SPDX-License-Identifier: MIT */
/*
 * Record splitting and the few frames and lines sluice-load decodes.
 */
#include "tools/load/wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define FRAME_EVENT 1
#define FRAME_HELLO 2
#define FRAME_ACK 3

void
load_split_init(struct load_splitter *s, bool frames, size_t max)
{
	memset(s, 0, sizeof(*s));
	s->frames = frames;
	s->max = max;
}

void
load_split_fini(struct load_splitter *s)
{
	free(s->acc);
	s->acc = NULL;
	s->len = s->cap = 0;
}

static uint32_t
wire_be32(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;

	return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 |
	       (uint32_t)u[2] << 8 | u[3];
}

static int
split_keep(struct load_splitter *s, const char *data, size_t len)
{
	if (s->len + len > s->cap) {
		size_t cap = s->cap ? s->cap : 256;
		char *p;

		while (cap < s->len + len)
			cap *= 2;
		p = realloc(s->acc, cap);
		if (!p)
			return -ENOMEM;
		s->acc = p;
		s->cap = cap;
	}
	memcpy(s->acc + s->len, data, len);
	s->len += len;
	return 0;
}

/*
 * How long the record at the start of @p (@len bytes) is, or 0 if @len
 * does not hold all of it yet.  A line's length counts its LF.
 */
static long
split_record_len(const struct load_splitter *s, const char *p, size_t len)
{
	if (s->frames) {
		uint64_t total;

		if (len < 4)
			return len >= s->max ? -EMSGSIZE : 0;
		total = 4 + (uint64_t)wire_be32(p);
		if (total == 4)
			return -EBADMSG;
		if (total > s->max)
			return -EMSGSIZE;
		return total <= len ? (long)total : 0;
	} else {
		const char *lf = memchr(p, '\n', len);

		if (!lf)
			return len >= s->max ? -EMSGSIZE : 0;
		if ((size_t)(lf - p) + 1 > s->max)
			return -EMSGSIZE;
		return lf - p + 1;
	}
}

static void
split_emit(const struct load_splitter *s, const char *rec, size_t len,
           load_record_fn fn, void *arg)
{
	if (!s->frames) {
		len--; /* the LF */
		if (len && rec[len - 1] == '\r')
			len--;
		if (!len)
			return; /* an empty line is no record */
	}
	fn(arg, rec, len);
}

/* Complete the held record from @data; returns the bytes of @data used. */
static long
split_finish_held(struct load_splitter *s, const char *data, size_t len,
                  load_record_fn fn, void *arg)
{
	size_t used = 0;
	long n;

	/* Feed the held record a little at a time until its end is known:
	 * at most the 4 length bytes of a frame, or up to the LF. */
	for (;;) {
		size_t take;
		int r;

		n = split_record_len(s, s->acc, s->len);
		if (n < 0)
			return n;
		if (n > 0)
			break;
		if (used == len)
			return (long)used;
		if (s->frames && s->len < 4) {
			take = 4 - s->len;
		} else if (s->frames) {
			take = 4 + (size_t)wire_be32(s->acc) - s->len;
		} else {
			const char *lf = memchr(data + used, '\n', len - used);

			take = lf ? (size_t)(lf - (data + used)) + 1
			          : len - used;
		}
		if (take > len - used)
			take = len - used;
		r = split_keep(s, data + used, take);
		if (r)
			return r;
		used += take;
	}
	split_emit(s, s->acc, (size_t)n, fn, arg);
	s->len = 0;
	return (long)used;
}

int
load_split_feed(struct load_splitter *s, const char *data, size_t len,
                load_record_fn fn, void *arg)
{
	size_t off = 0;
	long n;

	if (s->len) {
		n = split_finish_held(s, data, len, fn, arg);
		if (n < 0)
			return (int)n;
		off = (size_t)n;
		if (s->len)
			return 0; /* all of @data went into the held record */
	}
	while (off < len) {
		n = split_record_len(s, data + off, len - off);
		if (n < 0)
			return (int)n;
		if (n == 0)
			return split_keep(s, data + off, len - off);
		split_emit(s, data + off, (size_t)n, fn, arg);
		off += (size_t)n;
	}
	return 0;
}

void
load_hello_encode(uint32_t n, char buf[LOAD_HELLO_LEN])
{
	buf[0] = 0;
	buf[1] = 0;
	buf[2] = 0;
	buf[3] = 5;
	buf[4] = FRAME_HELLO;
	buf[5] = (char)(n >> 24);
	buf[6] = (char)(n >> 16);
	buf[7] = (char)(n >> 8);
	buf[8] = (char)n;
}

int
load_ack_decode(const char *rec, size_t len, uint64_t *accepted)
{
	const unsigned char *u = (const unsigned char *)rec;
	uint64_t v = 0;

	if (len != LOAD_ACK_LEN || wire_be32(rec) != 9 || u[4] != FRAME_ACK)
		return -EBADMSG;
	for (int i = 5; i < 13; i++)
		v = v << 8 | u[i];
	*accepted = v;
	return 0;
}

static int
wire_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The byte a one-letter escape stands for, or -1. */
static int
wire_escape_byte(char c)
{
	switch (c) {
	case '\\':
		return '\\';
	case 'n':
		return '\n';
	case 'r':
		return '\r';
	case 't':
		return '\t';
	case 's':
		return ' ';
	default:
		return -1;
	}
}

/* Undo a line's escapes from @p into @out; returns the length or -1. */
static long
wire_unescape(const char *p, size_t len, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		int b, hi, lo;

		if (p[i] != '\\') {
			out[o++] = p[i];
			continue;
		}
		if (++i == len)
			return -1;
		if (p[i] != 'x') {
			b = wire_escape_byte(p[i]);
			if (b < 0)
				return -1;
			out[o++] = (char)b;
			continue;
		}
		if (i + 2 >= len)
			return -1;
		hi = wire_hex(p[i + 1]);
		lo = wire_hex(p[i + 2]);
		if (hi < 0 || lo < 0)
			return -1;
		out[o++] = (char)(hi << 4 | lo);
		i += 2;
	}
	return (long)o;
}

/* Set *@f, *@flen to the field, unescaped into @scratch if it must be. */
static int
wire_field(const char *p, size_t len, char **scratch, const char **f,
           size_t *flen)
{
	long n;

	if (!memchr(p, '\\', len)) {
		*f = p;
		*flen = len;
		return 0;
	}
	n = wire_unescape(p, len, *scratch);
	if (n < 0)
		return -EBADMSG;
	*f = *scratch;
	*flen = (size_t)n;
	*scratch += n;
	return 0;
}

static int
wire_sink_line(const char *rec, size_t len, char *scratch,
               struct load_sink_event *out)
{
	const char *sp1 = memchr(rec, ' ', len), *sp2, *key, *end = rec + len;

	if (!sp1 || sp1 == rec)
		return -EBADMSG;
	key = sp1 + 1;
	sp2 = memchr(key, ' ', (size_t)(end - key));
	if (!sp2)
		sp2 = end;
	if (sp2 == key)
		return -EBADMSG;
	if (wire_field(rec, (size_t)(sp1 - rec), &scratch, &out->kind,
	               &out->kind_len) ||
	    wire_field(key, (size_t)(sp2 - key), &scratch, &out->key,
	               &out->key_len))
		return -EBADMSG;
	if (sp2 == end) {
		out->payload = end;
		out->payload_len = 0;
		return 0;
	}
	return wire_field(sp2 + 1, (size_t)(end - sp2 - 1), &scratch,
	                  &out->payload, &out->payload_len);
}

static int
wire_sink_frame(const char *rec, size_t len, struct load_sink_event *out)
{
	const unsigned char *u = (const unsigned char *)rec;
	size_t kind_len, key_len;

	if (len < 8 || wire_be32(rec) != len - 4 || u[4] != FRAME_EVENT)
		return -EBADMSG;
	kind_len = u[5];
	key_len = (size_t)u[6] << 8 | u[7];
	if (!kind_len || !key_len || 8 + kind_len + key_len > len)
		return -EBADMSG;
	out->kind = rec + 8;
	out->kind_len = kind_len;
	out->key = out->kind + kind_len;
	out->key_len = key_len;
	out->payload = out->key + key_len;
	out->payload_len = len - 8 - kind_len - key_len;
	return 0;
}

int
load_sink_decode(const char *rec, size_t len, bool frames, char *scratch,
                 struct load_sink_event *out)
{
	if (frames)
		return wire_sink_frame(rec, len, out);
	return wire_sink_line(rec, len, scratch, out);
}
