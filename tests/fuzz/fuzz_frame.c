/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the frame codec.
 *
 * Each input is read as a connection's stream of frames, twice over: as
 * one buffer, walking it with sl_frame_length() and sl_frame_decode() as a
 * datagram reader does, and as bytes arriving in pieces, read the way the
 * router reads a connection (router/input.c): four length bytes, then
 * exactly the rest, decoded with sl_frame_decode_body().  Both readings
 * skip an oversized frame's declared bytes and stop at a length that
 * cannot be a frame.  The invariants, any of which aborts when broken:
 *
 *  1. sl_frame_length() is 0 until 4 bytes are there, then the same for
 *     any longer view; it is > 0, -EBADMSG or -EMSGSIZE, with a reason on
 *     an error.
 *  2. Decoding a whole frame returns 0, -EBADMSG, -EMSGSIZE or -ENOMEM; on
 *     an error there is a reason and the result is all zero.  A view one
 *     byte short or long of the frame is refused.
 *  3. A decoded frame, EVENT, HELLO or ACK, encodes back to exactly the
 *     bytes it came from.
 *  4. A decoded event has a non-empty kind and key within the limits and
 *     the hash of its key, and survives the line format too.
 *  5. However the stream is cut into pieces (whole, one byte at a time,
 *     in two at every boundary of a short input, in pieces of random
 *     sizes), the reader decodes the same frames, refuses the same ones
 *     for the same reasons, and is left holding the same bytes.  Each
 *     call sees only the bytes that have arrived, in a block of exactly
 *     that size, so a read past them is caught.
 *  6. Frames built from the input's bytes (events, HELLOs, ACKs) and sent
 *     back to back come out of the reader as the same frames, however
 *     the stream is cut.
 */
#include <errno.h>

#include "router/wire.h"

#include "fuzz.h"

/* ---- one frame ---- */

/* Invariant 4's second half: the same event through a line. */
static void
check_as_line(const struct sl_event *e)
{
	struct sl_wire_limits lim;
	struct sl_event *back = NULL;
	size_t need = sl_line_encode(e, NULL, 0);
	char *buf = malloc(need);

	FUZZ_CHECK(buf != NULL);
	FUZZ_CHECK(sl_line_encode(e, buf, need) == need);
	sl_wire_limits_default(&lim);
	FUZZ_CHECK(sl_line_decode(buf, need, &lim, &back, NULL) == 0);
	FUZZ_CHECK(back != NULL && fuzz_events_equal(back, e));
	sl_event_unref(back);
	free(buf);
}

/* Invariant 3: encode @f again and compare with the @len bytes at @p. */
static void
check_reencode(const struct sl_frame *f, const uint8_t *p, size_t len)
{
	char *buf = malloc(len);
	size_t n = 0;

	FUZZ_CHECK(buf != NULL);
	switch (f->type) {
	case SL_FRAME_EVENT:
		n = sl_frame_encode_event(f->event, buf, len);
		break;
	case SL_FRAME_HELLO:
		n = sl_frame_encode_hello(f->ack_every, buf, len);
		break;
	case SL_FRAME_ACK:
		n = sl_frame_encode_ack(f->accepted, buf, len);
		break;
	default:
		FUZZ_CHECK(!"decoded a frame of no known type");
	}
	FUZZ_CHECK(n == len);
	FUZZ_CHECK(memcmp(buf, p, len) == 0);
	free(buf);
}

/* Invariant 2 for views one byte off the frame's length. */
static void
check_wrong_sizes(const uint8_t *p, size_t len, size_t avail,
		  const struct sl_wire_limits *lim)
{
	struct sl_frame f;
	const char *why = NULL;

	FUZZ_CHECK(sl_frame_decode((const char *)p, len - 1, lim, &f, &why) ==
		   -EBADMSG);
	FUZZ_CHECK(why != NULL && f.type == 0 && f.event == NULL);
	if (avail > len) {
		why = NULL;
		FUZZ_CHECK(sl_frame_decode((const char *)p, len + 1, lim, &f,
					   &why) == -EBADMSG);
		FUZZ_CHECK(why != NULL && f.type == 0 && f.event == NULL);
	}
}

/*
 * Invariants 2 to 4 for the whole frame of @len bytes at @p.  The decoded
 * frame is left in @f (its event is the caller's); the result is
 * sl_frame_decode()'s, with its reason in @why.
 */
static int
check_frame(const uint8_t *p, size_t len, size_t avail,
	    const struct sl_wire_limits *lim, struct sl_frame *f,
	    const char **why)
{
	int err = sl_frame_decode((const char *)p, len, lim, f, why);

	check_wrong_sizes(p, len, avail, lim);
	if (err) {
		FUZZ_CHECK(err == -EBADMSG || err == -EMSGSIZE ||
			   err == -ENOMEM);
		FUZZ_CHECK(*why != NULL && (*why)[0] != '\0');
		FUZZ_CHECK(f->type == 0 && f->event == NULL &&
			   f->ack_every == 0 && f->accepted == 0);
		return err;
	}

	check_reencode(f, p, len);
	if (f->type != SL_FRAME_EVENT) {
		FUZZ_CHECK(f->event == NULL);
		return 0;
	}
	FUZZ_CHECK(f->event != NULL);
	FUZZ_CHECK(f->event->kind_len >= 1 &&
		   f->event->kind_len <= lim->kind_max);
	FUZZ_CHECK(f->event->key_len >= 1 && f->event->key_len <= lim->key_max);
	FUZZ_CHECK(f->event->payload_len <= lim->payload_max);
	FUZZ_CHECK(atomic_load(&f->event->refs) == 1);
	FUZZ_CHECK(f->event->hash ==
		   sl_key_hash(sl_event_key(f->event), f->event->key_len));
	check_as_line(f->event);
	return 0;
}

/* ---- what a reading of a stream gives ---- */

/* One frame read, or refused. */
struct outcome {
	int err;
	const char *why;	/* NULL when err is 0 */
	struct sl_frame f;	/* the event is owned here */
};

struct record {
	struct outcome *v;
	size_t n, cap;
	bool closed;		/* stopped at a length no frame can have */
	size_t left;		/* bytes held or still to skip at the end */
};

static void
record_add(struct record *r, int err, const char *why,
	   const struct sl_frame *f)
{
	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 16;
		r->v = realloc(r->v, r->cap * sizeof(*r->v));
		FUZZ_CHECK(r->v != NULL);
	}
	r->v[r->n].err = err;
	r->v[r->n].why = err ? why : NULL;
	r->v[r->n].f = *f;
	r->n++;
}

static void
record_free(struct record *r)
{
	for (size_t i = 0; i < r->n; i++)
		sl_event_unref(r->v[i].f.event);
	free(r->v);
	memset(r, 0, sizeof(*r));
}

static bool
frames_equal(const struct sl_frame *a, const struct sl_frame *b)
{
	if (a->type != b->type || a->ack_every != b->ack_every ||
	    a->accepted != b->accepted)
		return false;
	if (!a->event || !b->event)
		return a->event == b->event;
	return fuzz_events_equal(a->event, b->event);
}

/* Invariant 5: two readings of one stream agree. */
static void
check_same_record(const struct record *a, const struct record *b)
{
	FUZZ_CHECK(a->n == b->n);
	FUZZ_CHECK(a->closed == b->closed);
	FUZZ_CHECK(a->left == b->left);
	for (size_t i = 0; i < a->n; i++) {
		const struct outcome *x = &a->v[i], *y = &b->v[i];

		FUZZ_CHECK(x->err == y->err);
		FUZZ_CHECK(!x->why == !y->why);
		FUZZ_CHECK(!x->why || strcmp(x->why, y->why) == 0);
		FUZZ_CHECK(frames_equal(&x->f, &y->f));
	}
}

/* The value of the 4-byte length field at @p. */
static uint64_t
length_field(const uint8_t *p)
{
	return (uint64_t)p[0] << 24 | (uint64_t)p[1] << 16 |
	       (uint64_t)p[2] << 8 | p[3];
}

/*
 * The one-buffer reading: every frame checked by check_frame() where it
 * lies in @data, the whole input in view.
 */
static void
read_whole(const uint8_t *data, size_t size, const struct sl_wire_limits *lim,
	   struct record *rec)
{
	size_t off = 0;

	while (off < size) {
		const uint8_t *p = data + off;
		size_t avail = size - off;
		const char *why = NULL;
		long total = sl_frame_length((const char *)p, avail, lim, &why);
		struct sl_frame f;
		int err;

		for (size_t n = 0; n < 4 && n <= avail; n++)
			FUZZ_CHECK(sl_frame_length((const char *)p, n, lim,
						   NULL) == 0);
		if (avail >= 4)
			FUZZ_CHECK(sl_frame_length((const char *)p, 4, lim,
						   NULL) == total);
		if (total == 0)
			break;
		if (total < 0) {
			FUZZ_CHECK(total == -EBADMSG || total == -EMSGSIZE);
			FUZZ_CHECK(why != NULL && why[0] != '\0');
			memset(&f, 0, sizeof(f));
			record_add(rec, (int)total, why, &f);
			if (total == -EBADMSG) {
				rec->closed = true;
				return;
			}
			/* Too large: skip the declared bytes. */
			if (length_field(p) > avail - 4) {
				rec->left = (size_t)(length_field(p) -
						     (avail - 4));
				return;
			}
			off += 4 + (size_t)length_field(p);
			continue;
		}
		if ((size_t)total > avail)
			break;
		err = check_frame(p, (size_t)total, avail, lim, &f, &why);
		record_add(rec, err, why, &f);
		off += (size_t)total;
	}
	rec->left += size - off;
}

/*
 * The connection's reading: bytes arrive in pieces and are kept until a
 * frame is whole.  Every call into the codec gets a block of exactly the
 * bytes it may look at.
 */
struct stream {
	const struct sl_wire_limits *lim;
	uint8_t *buf;		/* bytes received and not yet used */
	size_t len, cap;
	uint64_t skip;		/* of an oversized frame, still to drop */
	struct record rec;
};

/* sl_frame_length() on the first @n held bytes, copied to fit. */
static long
stream_length(struct stream *s, size_t n, const char **why)
{
	uint8_t *copy = malloc(n ? n : 1);
	long total;

	FUZZ_CHECK(copy != NULL);
	memcpy(copy, s->buf, n);
	total = sl_frame_length((const char *)copy, n, s->lim, why);
	free(copy);
	return total;
}

/* Decode the frame of @total bytes at the front of the held bytes. */
static void
stream_decode(struct stream *s, size_t total)
{
	uint8_t *body = malloc(total - 4);
	const char *why = NULL;
	struct sl_frame f;
	int err;

	FUZZ_CHECK(body != NULL);
	memcpy(body, s->buf + 4, total - 4);
	err = sl_frame_decode_body((const char *)body, total - 4, s->lim, &f,
				   &why);
	free(body);
	record_add(&s->rec, err, why, &f);
}

/* Drop the first @n held bytes. */
static void
stream_consume(struct stream *s, size_t n)
{
	memmove(s->buf, s->buf + n, s->len - n);
	s->len -= n;
}

/*
 * Use whatever the held bytes make: the rest of an oversized frame to
 * drop, then whole frames, stopping at a length no frame can have.
 */
static void
stream_drain(struct stream *s)
{
	while (!s->rec.closed) {
		const char *why = NULL;
		long total;

		if (s->skip) {
			size_t n = s->len < s->skip ? s->len : (size_t)s->skip;

			stream_consume(s, n);
			s->skip -= n;
			if (s->skip)
				return;
		}

		/* Invariant 1: short of the length field, nothing yet. */
		FUZZ_CHECK(stream_length(s, s->len < 4 ? s->len : 3, NULL) ==
			   0);
		if (s->len < 4)
			return;
		total = stream_length(s, 4, &why);
		if (total < 0) {
			record_add(&s->rec, (int)total, why,
				   &(struct sl_frame){0});
			if (total != -EMSGSIZE) {
				s->rec.closed = true;
				return;
			}
			s->skip = length_field(s->buf);
			stream_consume(s, 4);
			continue;
		}

		if (s->len < (size_t)total)
			return;
		stream_decode(s, (size_t)total);
		stream_consume(s, (size_t)total);
	}
}

static void
stream_feed(struct stream *s, const uint8_t *p, size_t n)
{
	if (s->rec.closed || n == 0)
		return;
	if (s->len + n > s->cap) {
		s->cap = 2 * (s->len + n);
		s->buf = realloc(s->buf, s->cap);
		FUZZ_CHECK(s->buf != NULL);
	}
	memcpy(s->buf + s->len, p, n);
	s->len += n;
	stream_drain(s);
}

/* Bytes held at the end, for invariant 5's last clause. */
static void
stream_finish(struct stream *s)
{
	if (!s->rec.closed)
		s->rec.left = s->len + (size_t)s->skip;
	free(s->buf);
	s->buf = NULL;
}

/* A small generator for the pieces' sizes, seeded from the input. */
static uint64_t
next_random(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
}

static uint64_t
seed_of(const uint8_t *data, size_t size)
{
	uint64_t h = 0xcbf29ce484222325u;

	for (size_t i = 0; i < size; i++)
		h = (h ^ data[i]) * 0x100000001b3u;
	return h | 1;
}

enum cut {
	CUT_WHOLE,
	CUT_BYTES,
	CUT_AT,		/* in two, at @at */
	CUT_RANDOM,
};

/* Read @data cut as @how says and compare with @want. */
static void
check_cut(const uint8_t *data, size_t size, const struct sl_wire_limits *lim,
	  enum cut how, size_t at, const struct record *want)
{
	struct stream s = {.lim = lim};
	uint64_t state = seed_of(data, size);
	size_t off = 0;

	switch (how) {
	case CUT_WHOLE:
		stream_feed(&s, data, size);
		break;
	case CUT_BYTES:
		for (; off < size; off++)
			stream_feed(&s, data + off, 1);
		break;
	case CUT_AT:
		stream_feed(&s, data, at);
		stream_feed(&s, data + at, size - at);
		break;
	case CUT_RANDOM:
		while (off < size) {
			uint64_t r = next_random(&state);
			size_t n = 1 + (size_t)(r >> 8) % (1u << (r % 11));

			n = n < size - off ? n : size - off;
			stream_feed(&s, data + off, n);
			off += n;
		}
		break;
	}
	stream_finish(&s);
	check_same_record(want, &s.rec);
	record_free(&s.rec);
}

/* Invariant 5 for @data under @lim. */
static void
check_stream(const uint8_t *data, size_t size, const struct sl_wire_limits *lim)
{
	struct record want = {0};

	read_whole(data, size, lim, &want);
	check_cut(data, size, lim, CUT_WHOLE, 0, &want);
	check_cut(data, size, lim, CUT_BYTES, 0, &want);
	check_cut(data, size, lim, CUT_RANDOM, 0, &want);
	if (size <= 256) {
		for (size_t at = 1; at < size; at++)
			check_cut(data, size, lim, CUT_AT, at, &want);
	} else {
		uint64_t state = seed_of(data, size) ^ 0x9e3779b97f4a7c15u;

		for (int i = 0; i < 16; i++)
			check_cut(data, size, lim, CUT_AT,
				  1 + (size_t)(next_random(&state) % (size - 1)),
				  &want);
	}
	record_free(&want);
}

/* ---- frames made from the input ---- */

struct built {
	uint8_t *buf;
	size_t len;
	struct record rec;	/* the frames, as the reader should give them */
};

static void
built_add(struct built *b, const struct sl_frame *f)
{
	size_t need;

	switch (f->type) {
	case SL_FRAME_EVENT:
		need = sl_frame_encode_event(f->event, NULL, 0);
		break;
	case SL_FRAME_HELLO:
		need = sl_frame_encode_hello(f->ack_every, NULL, 0);
		FUZZ_CHECK(need == SL_FRAME_HEADER + 4);
		break;
	default:
		need = sl_frame_encode_ack(f->accepted, NULL, 0);
		FUZZ_CHECK(need == SL_FRAME_HEADER + 8);
		break;
	}
	b->buf = realloc(b->buf, b->len + need);
	FUZZ_CHECK(b->buf != NULL);

	switch (f->type) {
	case SL_FRAME_EVENT:
		FUZZ_CHECK(sl_frame_encode_event(f->event, (char *)b->buf +
							   b->len,
						 need) == need);
		break;
	case SL_FRAME_HELLO:
		FUZZ_CHECK(sl_frame_encode_hello(f->ack_every,
						 (char *)b->buf + b->len,
						 need) == need);
		break;
	default:
		FUZZ_CHECK(sl_frame_encode_ack(f->accepted,
					       (char *)b->buf + b->len,
					       need) == need);
		break;
	}
	b->len += need;
	record_add(&b->rec, 0, NULL, f);
}

static uint64_t
take_u64(const uint8_t **p, const uint8_t *end, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n && *p < end; i++, (*p)++)
		v = v << 8 | **p;
	return v;
}

/*
 * Invariant 6.  The input is a list of frames to build: a byte whose low
 * two bits pick HELLO (1), ACK (2) or EVENT (0, 3), then its value or its
 * event's lengths and bytes.
 */
static void
check_built(const uint8_t *data, size_t size)
{
	const uint8_t *p = data, *end;
	struct sl_wire_limits lim;
	struct built b = {0};

	if (size == 0)
		return; /* @data may be NULL, and NULL + 0 is undefined */
	end = data + size;
	sl_wire_limits_default(&lim);
	while (p < end) {
		struct sl_frame f = {0};
		unsigned pick = *p++ & 3;

		if (pick == 1) {
			f.type = SL_FRAME_HELLO;
			f.ack_every = (uint32_t)take_u64(&p, end, 4);
		} else if (pick == 2) {
			f.type = SL_FRAME_ACK;
			f.accepted = take_u64(&p, end, 8);
		} else {
			size_t n = p < end ? 4 + *p % 64 : 0;

			n = n < (size_t)(end - p) ? n : (size_t)(end - p);
			f.type = SL_FRAME_EVENT;
			f.event = fuzz_event_from(p, n);
			p += n;
			if (!f.event)
				continue;
		}
		built_add(&b, &f);
	}
	if (b.rec.n) {
		check_cut(b.buf, b.len, &lim, CUT_WHOLE, 0, &b.rec);
		check_cut(b.buf, b.len, &lim, CUT_BYTES, 0, &b.rec);
		check_cut(b.buf, b.len, &lim, CUT_RANDOM, 0, &b.rec);
	}
	record_free(&b.rec);
	free(b.buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct sl_wire_limits tiny = {
		.kind_max = 3,
		.key_max = 5,
		.payload_max = 7,
		.line_max = 24,
		.frame_max = 24,
	};
	struct sl_wire_limits lim;

	sl_wire_limits_default(&lim);
	check_stream(data, size, &lim);
	check_stream(data, size, &tiny);
	check_built(data, size);
	return 0;
}
