/* SPDX-License-Identifier: MIT */
/*
 * The little of docs/protocol.md that sluice-load reads: ACK frames from
 * the target, and the lines or frames sluiced's tcp sink writes (one
 * event per reconcile, escaped as protocol.md's "What Sluice writes"
 * says).  Records are cut out of a byte stream by a splitter that keeps
 * the part of a record a receive buffer ended in the middle of.
 */
#ifndef SLUICE_LOAD_WIRE_H
#define SLUICE_LOAD_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOAD_HELLO_LEN 9
#define LOAD_ACK_LEN 13

struct load_splitter {
	bool frames;
	size_t max; /* longest record accepted, in bytes */
	char *acc;  /* a record's head from an earlier buffer */
	size_t len, cap;
};

/* load_split_init() - cut lines (LF) or frames, each at most @max bytes. */
void load_split_init(struct load_splitter *s, bool frames, size_t max);
void load_split_fini(struct load_splitter *s);

/* A record: a line without its LF (and CR), or a whole frame. */
typedef void (*load_record_fn)(void *arg, const char *rec, size_t len);

/**
 * load_split_feed() - cut the records out of @data, calling @fn for each
 * whole one, in order; keep an unfinished tail for the next call.
 *
 * Return: 0; -EMSGSIZE when a record is longer than max (the stream
 * cannot be followed past it); -EBADMSG for a frame length of 0; -ENOMEM.
 */
int load_split_feed(struct load_splitter *s, const char *data, size_t len,
                    load_record_fn fn, void *arg);

/* load_split_pending() - bytes of an unfinished record held. */
static inline size_t
load_split_pending(const struct load_splitter *s)
{
	return s->len;
}

/* load_hello_encode() - a HELLO frame asking for an ACK every @n events. */
void load_hello_encode(uint32_t n, char buf[LOAD_HELLO_LEN]);

/**
 * load_ack_decode() - the count of an ACK frame (a whole frame).
 * Return: 0, or -EBADMSG for any other frame.
 */
int load_ack_decode(const char *rec, size_t len, uint64_t *accepted);

/* An event as a sink writes it.  The fields point into the record or
 * into the caller's scratch space. */
struct load_sink_event {
	const char *kind, *key, *payload;
	size_t kind_len, key_len, payload_len;
};

/**
 * load_sink_decode() - the fields of one record a sink wrote.
 * @scratch: at least @len bytes, for fields that carried escapes.
 *
 * Return: 0; -EBADMSG for a line or frame that is not an event.
 */
int load_sink_decode(const char *rec, size_t len, bool frames, char *scratch,
                     struct load_sink_event *out);

#endif /* SLUICE_LOAD_WIRE_H */
