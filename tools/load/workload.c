/* SPDX-License-Identifier: MIT */
/*
 * Event generation and encoding.  The kinds, keys and payloads sluice-load
 * makes never hold a space, a backslash or a control byte where a line
 * would need an escape, so a line is written as it is, without escaping.
 */
#include "tools/load/workload.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VERSION_DIGITS 10
#define STAMP_DIGITS 19

/* Seeds of a lane's three random streams. */
enum {
	STREAM_KEY = 1,
	STREAM_KIND = 2,
	STREAM_SIZE = 3,
};

static int
wl_fail(char *err, size_t errlen, const char *why)
{
	snprintf(err, errlen, "%s", why);
	return -EINVAL;
}

/* A decimal number; advance *s past it.  Return: 0 or -EINVAL. */
static int
wl_uint(const char **s, uint64_t max, uint64_t *out)
{
	const char *p = *s;
	uint64_t v = 0;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > max)
			return -EINVAL;
	}
	*s = p;
	*out = v;
	return 0;
}

int
load_size_parse(const char *s, struct load_size *out, char *err, size_t errlen)
{
	uint64_t a, b;

	memset(out, 0, sizeof(*out));
	if (!strncmp(s, "uniform:", 8)) {
		s += 8;
		if (wl_uint(&s, LOAD_PAYLOAD_MAX, &a) || *s++ != '-' ||
		    wl_uint(&s, LOAD_PAYLOAD_MAX, &b) || *s || a > b)
			return wl_fail(err, errlen,
			               "uniform:A-B needs sizes A <= B of at "
			               "most 1 MiB");
		out->kind = LOAD_SIZE_UNIFORM;
		out->a = (uint32_t)a;
		out->b = (uint32_t)b;
		return 0;
	}
	if (!strncmp(s, "exp:", 4)) {
		s += 4;
		if (wl_uint(&s, LOAD_PAYLOAD_MAX / 16, &a) || *s || !a)
			return wl_fail(
			        err, errlen,
			        "exp:MEAN needs a mean from 1 to 64 KiB");
		out->kind = LOAD_SIZE_EXP;
		out->a = (uint32_t)a;
		/* Sixteen means is past the one-in-ten-million tail. */
		out->b = (uint32_t)(16 * a);
		return 0;
	}
	if (wl_uint(&s, LOAD_PAYLOAD_MAX, &a) || *s)
		return wl_fail(err, errlen,
		               "a payload size is N, uniform:A-B or exp:MEAN");
	if (a < LOAD_PAYLOAD_HEAD)
		return wl_fail(err, errlen,
		               "a payload carries its key's version and its "
		               "send time in 30 bytes: the size must be at "
		               "least 30");
	out->kind = LOAD_SIZE_FIXED;
	out->a = out->b = (uint32_t)a;
	return 0;
}

uint32_t
load_size_next(const struct load_size *z, struct load_rng *r)
{
	uint64_t n = z->a;

	switch (z->kind) {
	case LOAD_SIZE_FIXED:
		break;
	case LOAD_SIZE_UNIFORM:
		n = z->a + load_rng_below(r, (uint64_t)(z->b - z->a) + 1);
		break;
	case LOAD_SIZE_EXP: {
		double x = -log1p(-load_rng_double(r)) * z->a;

		n = x >= z->b ? z->b : (uint64_t)(x + 0.5);
		break;
	}
	}
	return n < LOAD_PAYLOAD_HEAD ? LOAD_PAYLOAD_HEAD : (uint32_t)n;
}

void
load_size_format(const struct load_size *z, char *buf, size_t len)
{
	switch (z->kind) {
	case LOAD_SIZE_FIXED:
		snprintf(buf, len, "%u", z->a);
		break;
	case LOAD_SIZE_UNIFORM:
		snprintf(buf, len, "uniform:%u-%u", z->a, z->b);
		break;
	case LOAD_SIZE_EXP:
		snprintf(buf, len, "exp:%u", z->a);
		break;
	}
}

static bool
wl_kind_byte(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

/* One "name[:weight]" item, up to ',' or the end. */
static int
wl_kind_item(const char **s, struct load_kind *k)
{
	const char *p = *s;
	uint64_t weight = 1;
	size_t n = 0;

	while (wl_kind_byte(p[n]))
		n++;
	if (!n || n > LOAD_KIND_MAX)
		return -EINVAL;
	memcpy(k->name, p, n);
	k->name[n] = '\0';
	k->len = (uint8_t)n;
	p += n;
	if (*p == ':') {
		p++;
		if (wl_uint(&p, UINT32_MAX, &weight) || !weight)
			return -EINVAL;
	}
	if (*p && *p != ',')
		return -EINVAL;
	k->weight = (uint32_t)weight;
	*s = *p ? p + 1 : p;
	return 0;
}

int
load_kinds_parse(const char *s, struct load_workload *w, char *err,
                 size_t errlen)
{
	w->nkinds = 0;
	w->weight_total = 0;
	while (*s) {
		struct load_kind *k;

		if (w->nkinds == LOAD_MAX_KINDS)
			return wl_fail(err, errlen, "at most 16 kinds");
		k = &w->kinds[w->nkinds];
		if (wl_kind_item(&s, k))
			return wl_fail(err, errlen,
			               "kinds are NAME[:WEIGHT],...: names of "
			               "1 to 63 letters, digits and ._- and "
			               "weights above 0");
		w->weight_total += k->weight;
		w->nkinds++;
	}
	if (!w->nkinds)
		return wl_fail(err, errlen, "no kind given");
	return 0;
}

int
load_workload_init(struct load_workload *w)
{
	uint64_t top;

	if (!w->nkeys || w->nkeys > (UINT64_C(1) << 32) || !w->nkinds)
		return -EINVAL;
	w->key_digits = 1;
	for (top = w->nkeys - 1; top >= 10; top /= 10)
		w->key_digits++;
	return 0;
}

int
load_gen_init(struct load_gen *g, const struct load_workload *w, unsigned lane,
              unsigned lanes)
{
	uint64_t stream = (uint64_t)lane << 8;
	int r;

	memset(g, 0, sizeof(*g));
	if (!lanes || lane >= lanes || lane >= w->nkeys)
		return -EINVAL;
	g->w = w;
	g->lane = lane;
	g->lanes = lanes;
	g->nlocal = (w->nkeys - lane + lanes - 1) / lanes;
	r = load_keys_init(&g->keys, &w->dist, g->nlocal);
	if (r)
		return r;
	g->version = calloc(g->nlocal, sizeof(*g->version));
	if (!g->version) {
		load_keys_fini(&g->keys);
		return -ENOMEM;
	}
	load_rng_seed(&g->rng_key, w->seed, stream + STREAM_KEY);
	load_rng_seed(&g->rng_kind, w->seed, stream + STREAM_KIND);
	load_rng_seed(&g->rng_size, w->seed, stream + STREAM_SIZE);
	return 0;
}

void
load_gen_fini(struct load_gen *g)
{
	load_keys_fini(&g->keys);
	free(g->version);
	g->version = NULL;
}

static uint16_t
gen_kind(struct load_gen *g)
{
	const struct load_workload *w = g->w;
	uint64_t x;

	if (w->nkinds == 1)
		return 0;
	x = load_rng_below(&g->rng_kind, w->weight_total);
	for (unsigned i = 0; i < w->nkinds; i++) {
		if (x < w->kinds[i].weight)
			return (uint16_t)i;
		x -= w->kinds[i].weight;
	}
	return (uint16_t)(w->nkinds - 1);
}

void
load_gen_next(struct load_gen *g, struct load_event *ev)
{
	uint64_t local = load_keys_next(&g->keys, &g->rng_key);

	ev->key = load_key_global(local, g->lane, g->lanes);
	ev->version = ++g->version[local];
	ev->kind = gen_kind(g);
	ev->payload_len = load_size_next(&g->w->size, &g->rng_size);
}

/* Write @v as exactly @width digits (the low ones) at @p. */
static void
wl_digits(char *p, unsigned width, uint64_t v)
{
	for (unsigned i = width; i-- > 0;) {
		p[i] = (char)('0' + v % 10);
		v /= 10;
	}
}

size_t
load_key_format(const struct load_workload *w, uint64_t key, char *buf)
{
	buf[0] = 'k';
	wl_digits(buf + 1, w->key_digits, key);
	return 1 + w->key_digits;
}

int
load_key_parse(const struct load_workload *w, const char *key, size_t len,
               uint64_t *out)
{
	uint64_t v = 0;

	if (len != 1u + w->key_digits || key[0] != 'k')
		return -EINVAL;
	for (size_t i = 1; i < len; i++) {
		if (key[i] < '0' || key[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(key[i] - '0');
	}
	if (v >= w->nkeys)
		return -EINVAL;
	*out = v;
	return 0;
}

size_t
load_event_size(const struct load_workload *w, const struct load_event *ev)
{
	size_t fields =
	        w->kinds[ev->kind].len + 1u + w->key_digits + ev->payload_len;

	/* A frame's 8-byte header, or a line's two spaces and LF. */
	return w->frames ? 8 + fields : fields + 3;
}

static void
wl_payload(char *p, const struct load_event *ev, uint64_t planned_ns)
{
	wl_digits(p, VERSION_DIGITS, ev->version);
	p[VERSION_DIGITS] = ' ';
	wl_digits(p + VERSION_DIGITS + 1, STAMP_DIGITS, planned_ns);
	if (ev->payload_len > LOAD_PAYLOAD_HEAD) {
		p[LOAD_PAYLOAD_HEAD] = ' ';
		memset(p + LOAD_PAYLOAD_HEAD + 1, 'x',
		       ev->payload_len - LOAD_PAYLOAD_HEAD - 1);
	}
}

_Static_assert(VERSION_DIGITS + 1 + STAMP_DIGITS == LOAD_PAYLOAD_HEAD,
               "the payload head is the version, a space and the stamp");

size_t
load_event_encode(const struct load_workload *w, const struct load_event *ev,
                  uint64_t planned_ns, char *buf, size_t cap)
{
	const struct load_kind *k = &w->kinds[ev->kind];
	size_t need = load_event_size(w, ev), keylen = 1u + w->key_digits;
	char *p = buf;

	if (need > cap)
		return need;
	if (w->frames) {
		uint32_t len = (uint32_t)(need - 4);

		p[0] = (char)(len >> 24);
		p[1] = (char)(len >> 16);
		p[2] = (char)(len >> 8);
		p[3] = (char)len;
		p[4] = 1; /* EVENT */
		p[5] = (char)k->len;
		p[6] = (char)(keylen >> 8);
		p[7] = (char)keylen;
		p += 8;
		memcpy(p, k->name, k->len);
		p += k->len;
		p += load_key_format(w, ev->key, p);
		wl_payload(p, ev, planned_ns);
		return need;
	}
	memcpy(p, k->name, k->len);
	p += k->len;
	*p++ = ' ';
	p += load_key_format(w, ev->key, p);
	*p++ = ' ';
	wl_payload(p, ev, planned_ns);
	p[ev->payload_len] = '\n';
	return need;
}

int
load_payload_parse(const char *p, size_t len, uint32_t *version,
                   uint64_t *planned_ns)
{
	uint64_t v = 0, t = 0;

	if (len < LOAD_PAYLOAD_HEAD || p[VERSION_DIGITS] != ' ' ||
	    (len > LOAD_PAYLOAD_HEAD && p[LOAD_PAYLOAD_HEAD] != ' '))
		return -EBADMSG;
	for (unsigned i = 0; i < VERSION_DIGITS; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -EBADMSG;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	for (unsigned i = VERSION_DIGITS + 1; i < LOAD_PAYLOAD_HEAD; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -EBADMSG;
		t = t * 10 + (uint64_t)(p[i] - '0');
	}
	if (v > UINT32_MAX)
		return -EBADMSG;
	*version = (uint32_t)v;
	*planned_ns = t;
	return 0;
}
