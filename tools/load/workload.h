/* SPDX-License-Identifier: MIT */
/*
 * What sluice-load sends: events of the form KIND KEY PAYLOAD, where the
 * payload begins with the key's version and the event's planned send time:
 *
 *	set k004711 0000000017 0001733212345678901 xxxxxxxx...
 *	    key     version    planned send time (ns, sl_now_ns's clock)
 *
 * Every key's version starts at 1 and rises by one with each event of
 * that key, so whoever receives the reconciled state can tell which of
 * the key's events it reflects: folding shows as versions skipped, a lost
 * update as a final version below the last one sent.  The payload head is
 * LOAD_PAYLOAD_HEAD (30) bytes; longer payloads are padded with a space
 * and 'x's, so a payload is never shorter than the head.
 *
 * Keys are named "k" and a zero-padded number, all of one length.  Each
 * connection ("lane") owns the keys whose number modulo the number of
 * lanes is its own, so a key's versions always travel one connection and
 * arrive in order, and each lane draws keys from the chosen distribution
 * over its own keys (keys.h): the global shape is the chosen one with the
 * ranks dealt round robin, so with Zipf the L hottest keys (one per lane)
 * are equally hot.
 */
#ifndef SLUICE_LOAD_WORKLOAD_H
#define SLUICE_LOAD_WORKLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tools/load/keys.h"
#include "tools/load/rng.h"

#define LOAD_MAX_KINDS 16
#define LOAD_KIND_MAX 63
#define LOAD_PAYLOAD_HEAD 30
#define LOAD_PAYLOAD_MAX (1u << 20)

enum load_size_kind {
	LOAD_SIZE_FIXED,   /* always a */
	LOAD_SIZE_UNIFORM, /* uniform in [a, b] */
	LOAD_SIZE_EXP,     /* exponential of mean a, at most b */
};

struct load_size {
	enum load_size_kind kind;
	uint32_t a, b;
};

/**
 * load_size_parse() - "N", "uniform:A-B" or "exp:MEAN".  Sizes drawn
 * below LOAD_PAYLOAD_HEAD are raised to it; a fixed size below it is
 * refused, since the payload could not carry its version.
 * Return: 0, or -EINVAL with the reason in @err.
 */
int load_size_parse(const char *s, struct load_size *out, char *err,
                    size_t errlen);
uint32_t load_size_next(const struct load_size *z, struct load_rng *r);
void load_size_format(const struct load_size *z, char *buf, size_t len);

struct load_kind {
	char name[LOAD_KIND_MAX + 1];
	uint8_t len;
	uint32_t weight;
};

struct load_workload {
	uint64_t nkeys;
	struct load_dist dist;
	struct load_kind kinds[LOAD_MAX_KINDS];
	unsigned nkinds;
	uint64_t weight_total;
	struct load_size size;
	uint64_t seed;
	bool frames;         /* encode frames, else lines */
	unsigned key_digits; /* set by load_workload_init() */
};

/**
 * load_kinds_parse() - "set" or "set:9,del:1": kinds and their weights
 * (default 1).  A kind is 1 to 63 bytes of letters, digits and ._-
 * Return: 0, or -EINVAL with the reason in @err.
 */
int load_kinds_parse(const char *s, struct load_workload *w, char *err,
                     size_t errlen);

/* load_workload_init() - check and finish @w.  Return: 0 or -EINVAL. */
int load_workload_init(struct load_workload *w);

struct load_event {
	uint64_t key; /* global key number */
	uint32_t version;
	uint16_t kind;
	uint32_t payload_len;
};

/* One lane's event source.  Belongs to that lane's task. */
struct load_gen {
	const struct load_workload *w;
	unsigned lane, lanes;
	uint64_t nlocal;       /* keys this lane owns */
	struct load_keys keys; /* over 0 .. nlocal-1 */
	struct load_rng rng_key, rng_kind, rng_size;
	uint32_t *version; /* last version sent, per local key */
};

/**
 * load_gen_init() - the source of lane @lane of @lanes.
 * Return: 0; -EINVAL when the lane owns no key (more lanes than keys);
 * -ENOMEM.
 */
int load_gen_init(struct load_gen *g, const struct load_workload *w,
                  unsigned lane, unsigned lanes);
void load_gen_fini(struct load_gen *g);

/* load_gen_next() - draw the next event and advance its key's version. */
void load_gen_next(struct load_gen *g, struct load_event *ev);

/* The global key of local key @local of lane @lane of @lanes. */
static inline uint64_t
load_key_global(uint64_t local, unsigned lane, unsigned lanes)
{
	return local * lanes + lane;
}

/* load_key_format() - the key's name; returns its length. */
size_t load_key_format(const struct load_workload *w, uint64_t key, char *buf);

/**
 * load_key_parse() - the number of a key named as load_key_format() does.
 * Return: 0, or -EINVAL for a key of another form or out of range.
 */
int load_key_parse(const struct load_workload *w, const char *key, size_t len,
                   uint64_t *out);

/* load_event_size() - the bytes load_event_encode() writes for @ev. */
size_t load_event_size(const struct load_workload *w,
                       const struct load_event *ev);

/**
 * load_event_encode() - @ev as one line or frame, stamped @planned_ns.
 * Return: the bytes written, or the bytes needed (> @cap) when @cap is too
 * small (nothing is written then).
 */
size_t load_event_encode(const struct load_workload *w,
                         const struct load_event *ev, uint64_t planned_ns,
                         char *buf, size_t cap);

/**
 * load_payload_parse() - the version and planned time at the head of a
 * payload.  Return: 0, or -EBADMSG for a payload of another form.
 */
int load_payload_parse(const char *p, size_t len, uint32_t *version,
                       uint64_t *planned_ns);

#endif /* SLUICE_LOAD_WORKLOAD_H */
