/* SPDX-License-Identifier: MIT */
/*
 * The two wire formats (docs/protocol.md is the specification):
 *
 * Lines, for people and shell tools:
 *	KIND SP KEY [SP PAYLOAD] LF
 * KIND and KEY contain no space, tab or control byte except as escapes;
 * PAYLOAD is the rest of the line.  In all three a backslash escapes:
 * \\ \n \r \t \s (a space) \xHH (any byte).  A CR before the LF is dropped.
 * Empty lines are ignored.
 *
 * Frames, for programs: a 4-byte big-endian length of what follows, a type
 * byte, and a body:
 *	EVENT (1)  u8 kind_len, u16 key_len (BE), kind, key, payload (rest)
 *	HELLO (2)  u32 ack_every (BE): the producer asks for an ACK after
 *	           every ack_every accepted events (0: no ACKs, the default)
 *	ACK   (3)  u64 accepted (BE): events accepted on this connection so
 *	           far (router to producer)
 * A connection speaks one format, chosen by its input's configuration.
 */
#ifndef SLUICE_ROUTER_WIRE_H
#define SLUICE_ROUTER_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "router/event.h"

struct sl_wire_limits {
	size_t kind_max;	/* <= SL_KIND_MAX */
	size_t key_max;		/* <= SL_KEY_MAX */
	size_t payload_max;
	size_t line_max;	/* whole line including LF */
	size_t frame_max;	/* whole frame including the length field */
};

/* Defaults: 255, 4096, 1 MiB, and line/frame maxima that fit them. */
void sl_wire_limits_default(struct sl_wire_limits *l);

enum {
	SL_FRAME_EVENT = 1,
	SL_FRAME_HELLO = 2,
	SL_FRAME_ACK = 3,
};

#define SL_FRAME_HEADER 5	/* length field + type byte */

/**
 * sl_line_decode() - build an event from one line.
 * @line, @len: the line, with or without its LF (and CR).
 * @out: the new event (refs = 1, sealed), or NULL for an empty line.
 * @why: on error, a static description naming the limit or the fault.
 *
 * Return: 0; -EMSGSIZE for a field or line past its limit; -EBADMSG for
 * a malformed line (no key, a bad escape, a control byte in a field);
 * -ENOMEM.
 */
int sl_line_decode(const char *line, size_t len,
		   const struct sl_wire_limits *lim, struct sl_event **out,
		   const char **why);

/**
 * sl_line_encode() - write @e as one line, escaped, LF-terminated.
 * Return: bytes written, or the bytes needed (> @cap) if @buf is too small.
 */
size_t sl_line_encode(const struct sl_event *e, char *buf, size_t cap);

struct sl_frame {
	int type;
	struct sl_event *event;	/* EVENT: refs = 1, sealed */
	uint32_t ack_every;	/* HELLO */
	uint64_t accepted;	/* ACK */
};

/**
 * sl_frame_length() - the total length of the frame starting at @buf.
 * Return: the length (> 0) once the 4 length bytes are there; 0 if fewer
 * than 4 bytes are; -EMSGSIZE past lim->frame_max; -EBADMSG when the
 * length cannot hold a frame.
 */
long sl_frame_length(const char *buf, size_t len,
		     const struct sl_wire_limits *lim, const char **why);

/**
 * sl_frame_decode() - decode one whole frame (@len as sl_frame_length()).
 * Return: 0; -EBADMSG (unknown type, lengths that disagree); -EMSGSIZE;
 * -ENOMEM.
 */
int sl_frame_decode(const char *buf, size_t len,
		    const struct sl_wire_limits *lim, struct sl_frame *out,
		    const char **why);

/**
 * sl_frame_decode_body() - decode a frame whose length field has already
 * been read and checked: @buf is the type byte and the body, @len their
 * length (the length field's value).  Lets a reader that holds the four
 * length bytes apart from the rest decode in place, without a copy.
 * Return: as sl_frame_decode().
 */
int sl_frame_decode_body(const char *buf, size_t len,
			 const struct sl_wire_limits *lim,
			 struct sl_frame *out, const char **why);

/* Encoders; each returns the bytes written, or the bytes needed if > cap. */
size_t sl_frame_encode_event(const struct sl_event *e, char *buf, size_t cap);
size_t sl_frame_encode_hello(uint32_t ack_every, char *buf, size_t cap);
size_t sl_frame_encode_ack(uint64_t accepted, char *buf, size_t cap);

#endif /* SLUICE_ROUTER_WIRE_H */
