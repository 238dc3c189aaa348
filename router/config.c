/* SPDX-License-Identifier: MIT */
/*
 * sluiced's configuration loader.
 *
 * The schema is data.  Each mapping of the file is a table of keys (struct
 * cfg_key): the key's name, the kind of value it takes, where the value
 * goes (an offset into an "item": the whole configuration, one input, one
 * route or one sink), its bounds, and a slot in the item's origin array,
 * where the line the value came from is kept.  One walker reads the YAML
 * tree against the tables, one resolver reads "--set" key paths against
 * the same tables, and both hand the value text to one converter, so an
 * override is read, bounded and reported exactly as the file would be.
 *
 * The origin arrays let checks that run later, after overrides, still say
 * where each value came from ("sluiced.yaml:14:" or "--set:"), and tell a
 * key that was given from one left at its default: a sink key given for a
 * sink type that does not use it is an error, and limits.line_max and
 * frame_max are derived from the other limits only when not given.
 *
 * The YAML is read twice by libyaml: first as events, to report syntax
 * errors and to refuse aliases (with an alias one node can sit under many
 * keys, and a few lines can name exponentially many: a walk of a tree is
 * linear, a walk of such a graph is not), then as a document whose nodes
 * carry their lines.  Scalars are taken as the text they are: "null" as a
 * sink type is the word null; only an empty plain value counts as missing.
 *
 * Rejected: mapping YAML onto the structs by hand, key by key (every key
 * would be read in two places, the file and the overrides, and the two
 * would drift); a generic tree that callers query by path (a typo in a key
 * would read as "absent" and pass silently).
 *
 * Memory: this file uses the C library's allocator rather than mimalloc,
 * so that the sanitizers (and the fuzzer's leak check) see every
 * allocation the loader makes; none of it is on a hot path.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <yaml.h>

#include "io/net.h"
#include "router/config.h"
#include "router/router_internal.h"

#define KiB 1024ull
#define MiB (1024ull * KiB)
#define GiB (1024ull * MiB)

/* Bounds that come from elsewhere, with their reasons. */
/* Linux caps the completion queue at 65536 entries (IORING_MAX_CQ_ENTRIES
 * in io_uring/io_uring.c) and core/poller.c asks for four per submission
 * entry. */
#define CFG_RING_ENTRIES_MAX 32768	/* the kernel's IORING_MAX_ENTRIES */
#define CFG_CQ_ENTRIES_MAX 65536	/* twice that, as io_uring allows */
/* core/sched.c refuses task stacks outside 16 KiB to 1 GiB. */
#define CFG_STACK_MIN (16 * KiB)
#define CFG_STACK_MAX GiB
/* A frame carries its length in 32 bits; payloads stay well inside. */
#define CFG_PAYLOAD_MAX GiB
#define CFG_FRAME_EVENT_HEAD 3	/* u8 kind_len, u16 key_len (wire.h) */
#define CFG_LINE_MIN 4		/* "k k\n" */
#define CFG_FRAME_MIN (SL_FRAME_HEADER + CFG_FRAME_EVENT_HEAD + 2)
#define CFG_BUFFER_MAX (4 * GiB + SL_FRAME_HEADER)
#define CFG_SHARD_INBOX_MAX (1u << 20)
#define CFG_CPU_MAX 1023	/* CPU_SETSIZE - 1 */
#define CFG_NODE_MAX 1023	/* the runtime's bound on NUMA node numbers */
#define CFG_SQPOLL_IDLE_MAX 600000	/* ms: ten minutes */
#define CFG_IDLE_SPIN_MAX (100 * SL_NSEC_PER_MSEC)
#define CFG_IO_BUF_MIN 256		/* io/proc.c's bounds */
#define CFG_IO_BUF_MAX MiB
#define CFG_IO_BUFS_MAX 32768
#define CFG_NAME_MAX 64
#define CFG_STRING_MAX 4096	/* paths, patterns, plug-in strings */
#define CFG_INPUTS_MAX 256
#define CFG_ROUTES_MAX 4096
#define CFG_FILE_MAX (16 * MiB)

/* The longest run of a user's text a message repeats. */
#define CFG_QUOTE_MAX 48

/* ---- owned strings ---- */

struct sluiced_string_ {
	struct sluiced_string_ *next;
	char s[];
};

/* A NUL-terminated copy of @s owned by @c, or NULL without memory. */
static const char *
cfg_strdup(struct sluiced_config *c, const char *s, size_t len)
{
	struct sluiced_string_ *str = malloc(sizeof(*str) + len + 1);

	if (!str)
		return NULL;
	memcpy(str->s, s, len);
	str->s[len] = '\0';
	str->next = c->strings_;
	c->strings_ = str;
	return str->s;
}

/* ---- numbers with units ---- */

/* A decimal number: whole part, and up to 18 digits of fraction. */
struct cfg_decimal {
	uint64_t whole;
	uint64_t frac;		/* the fraction's digits as an integer */
	uint64_t frac_den;	/* 10^(digits kept) */
	bool frac_rest;		/* non-zero digits past the kept ones */
};

/*
 * Read digits[.digits] (at least one digit) from *@p.
 * Return: 0, -EINVAL if there is no number, -ERANGE if the whole part
 * does not fit 64 bits.
 */
static int
cfg_decimal_read(const char **p, const char *end, struct cfg_decimal *d)
{
	const char *s = *p;
	bool digits = false;

	memset(d, 0, sizeof(*d));
	d->frac_den = 1;
	for (; s < end && *s >= '0' && *s <= '9'; s++) {
		if (__builtin_mul_overflow(d->whole, 10, &d->whole) ||
		    __builtin_add_overflow(d->whole, (uint64_t)(*s - '0'),
					   &d->whole))
			return -ERANGE;
		digits = true;
	}
	if (s < end && *s == '.') {
		for (s++; s < end && *s >= '0' && *s <= '9'; s++) {
			digits = true;
			if (d->frac_den < 1000000000000000000ull) {
				d->frac = d->frac * 10 + (uint64_t)(*s - '0');
				d->frac_den *= 10;
			} else if (*s != '0') {
				d->frac_rest = true;
			}
		}
	}
	if (!digits)
		return -EINVAL;
	*p = s;
	return 0;
}

/* @d * @unit, rounded down; -ERANGE past 64 bits.  @exact: no rounding. */
static int
cfg_decimal_scale(const struct cfg_decimal *d, uint64_t unit, uint64_t *out,
		  bool *exact)
{
	unsigned __int128 frac = (unsigned __int128)d->frac * unit;
	uint64_t v;

	if (__builtin_mul_overflow(d->whole, unit, &v) ||
	    __builtin_add_overflow(v, (uint64_t)(frac / d->frac_den), &v))
		return -ERANGE;
	*exact = frac % d->frac_den == 0 && !d->frac_rest;
	*out = v;
	return 0;
}

struct cfg_unit {
	const char *name;
	uint64_t scale;
};

static const struct cfg_unit cfg_time_units[] = {
	{"ns", 1},
	{"us", SL_NSEC_PER_USEC},
	{"ms", SL_NSEC_PER_MSEC},
	{"s", SL_NSEC_PER_SEC},
	{"m", 60 * SL_NSEC_PER_SEC},
	{"h", 3600 * SL_NSEC_PER_SEC},
};

static const struct cfg_unit cfg_size_units[] = {
	{"KiB", KiB}, {"MiB", MiB}, {"GiB", GiB},
	{"KB", 1000}, {"MB", 1000000}, {"GB", 1000000000},
};

#define CFG_TIME_UNITS "ns, us, ms, s, m, h"
#define CFG_SIZE_UNITS "KiB, MiB, GiB, KB, MB, GB"

/* The unit spelled by the letters at *@p (advanced past them), or NULL
 * with the letters' extent in *@p all the same. */
static const struct cfg_unit *
cfg_unit_read(const char **p, const char *end, const struct cfg_unit *units,
	      size_t n)
{
	const char *s = *p;

	while (*p < end && ((**p >= 'a' && **p <= 'z') ||
			    (**p >= 'A' && **p <= 'Z')))
		(*p)++;
	for (size_t i = 0; i < n; i++)
		if (strlen(units[i].name) == (size_t)(*p - s) &&
		    !memcmp(units[i].name, s, (size_t)(*p - s)))
			return &units[i];
	return NULL;
}

/*
 * Write @s into @buf as a message repeats it: at most CFG_QUOTE_MAX bytes,
 * "..." after a cut, and bytes outside printable ASCII (and quotes and
 * backslashes) escaped, so a message stays one readable line whatever the
 * file holds.
 */
static const char *
cfg_quote(const char *s, size_t len, char *buf, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < len && o + 8 < cap; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (i == CFG_QUOTE_MAX) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		if (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\')
			o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", ch);
		else
			buf[o++] = (char)ch;
	}
	buf[o] = '\0';
	return buf;
}

#define CFG_QUOTE_BUF (CFG_QUOTE_MAX * 4 + 8)

int
sluiced_parse_duration(const char *s, size_t len, uint64_t *ns, char *why,
		       size_t whylen)
{
	const char *p = s, *end = s + len;
	char q[CFG_QUOTE_BUF];
	uint64_t total = 0;

	cfg_quote(s, len, q, sizeof(q));
	if (len && s[0] == '-') {
		snprintf(why, whylen, "negative duration \"%s\"", q);
		return -EINVAL;
	}
	if (len == 1 && s[0] == '0') {
		*ns = 0;
		return 0;
	}
	if (len == 0)
		goto bad;
	while (p < end) {
		const struct cfg_unit *u;
		struct cfg_decimal d;
		const char *unit;
		uint64_t v;
		bool exact;
		int r = cfg_decimal_read(&p, end, &d);

		if (r == -ERANGE)
			goto overflow;
		if (r)
			goto bad;
		unit = p;
		u = cfg_unit_read(&p, end, cfg_time_units,
				  SL_ARRAY_SIZE(cfg_time_units));
		if (!u && p == unit && p == end) {
			snprintf(why, whylen,
				 "bad duration \"%s\": missing unit (%s)", q,
				 CFG_TIME_UNITS);
			return -EINVAL;
		}
		if (!u && p == unit)
			goto bad;
		if (!u) {
			char uq[CFG_QUOTE_BUF];

			snprintf(why, whylen,
				 "bad duration \"%s\": unknown unit \"%s\" (%s)",
				 q, cfg_quote(unit, (size_t)(p - unit), uq,
					      sizeof(uq)),
				 CFG_TIME_UNITS);
			return -EINVAL;
		}
		if (cfg_decimal_scale(&d, u->scale, &v, &exact) ||
		    __builtin_add_overflow(total, v, &total))
			goto overflow;
	}
	*ns = total;
	return 0;
bad:
	snprintf(why, whylen,
		 "bad duration \"%s\": expected a number and a unit (%s), "
		 "e.g. 250ms or 1.5s", q, CFG_TIME_UNITS);
	return -EINVAL;
overflow:
	snprintf(why, whylen,
		 "duration \"%s\" is too long (at most 2^64-1 ns, about 584 "
		 "years)", q);
	return -EINVAL;
}

int
sluiced_parse_size(const char *s, size_t len, uint64_t *bytes, char *why,
		   size_t whylen)
{
	const char *p = s, *end = s + len, *unit;
	const struct cfg_unit *u = NULL;
	char q[CFG_QUOTE_BUF];
	struct cfg_decimal d;
	bool exact;
	uint64_t v;
	int r;

	cfg_quote(s, len, q, sizeof(q));
	if (len && s[0] == '-') {
		snprintf(why, whylen, "negative size \"%s\"", q);
		return -EINVAL;
	}
	r = cfg_decimal_read(&p, end, &d);
	if (r == -ERANGE)
		goto overflow;
	if (r)
		goto bad;
	unit = p;
	if (p < end) {
		u = cfg_unit_read(&p, end, cfg_size_units,
				  SL_ARRAY_SIZE(cfg_size_units));
		if (p == unit || p != end)
			goto bad;
		if (!u) {
			char uq[CFG_QUOTE_BUF];

			snprintf(why, whylen,
				 "bad size \"%s\": unknown unit \"%s\" (%s)", q,
				 cfg_quote(unit, (size_t)(p - unit), uq,
					   sizeof(uq)),
				 CFG_SIZE_UNITS);
			return -EINVAL;
		}
	}
	if (cfg_decimal_scale(&d, u ? u->scale : 1, &v, &exact))
		goto overflow;
	if (!exact) {
		snprintf(why, whylen,
			 "size \"%s\" is not a whole number of bytes", q);
		return -EINVAL;
	}
	*bytes = v;
	return 0;
bad:
	snprintf(why, whylen,
		 "bad size \"%s\": expected a number of bytes with an optional "
		 "unit (%s), e.g. 64KiB", q, CFG_SIZE_UNITS);
	return -EINVAL;
overflow:
	snprintf(why, whylen, "size \"%s\" does not fit in 64 bits", q);
	return -EINVAL;
}

/*
 * A plain decimal integer with an optional '-': its sign and magnitude.
 * Return: 0, -EINVAL for anything else, -ERANGE past 64 bits.
 */
static int
cfg_int_read(const char *s, size_t len, bool *neg, uint64_t *mag)
{
	size_t i = len && s[0] == '-';
	uint64_t v = 0;

	*neg = i;
	if (i == len)
		return -EINVAL;
	for (; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		if (__builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, (uint64_t)(s[i] - '0'), &v))
			return -ERANGE;
	}
	*mag = v;
	return 0;
}

/* "64KiB", "1h", "5ms": the largest unit that states @v exactly. */
static const char *
cfg_size_text(uint64_t v, char *buf, size_t len)
{
	static const struct cfg_unit *const order[] = {
		&cfg_size_units[2], &cfg_size_units[1], &cfg_size_units[0]};

	for (size_t i = 0; v && i < SL_ARRAY_SIZE(order); i++)
		if (v % order[i]->scale == 0) {
			snprintf(buf, len, "%llu%s",
				 (unsigned long long)(v / order[i]->scale),
				 order[i]->name);
			return buf;
		}
	snprintf(buf, len, "%llu", (unsigned long long)v);
	return buf;
}

static const char *
cfg_duration_text(uint64_t v, char *buf, size_t len)
{
	size_t i = SL_ARRAY_SIZE(cfg_time_units) - 1;

	if (v == 0) {
		snprintf(buf, len, "0s");
		return buf;
	}
	while (i > 0 && v % cfg_time_units[i].scale)
		i--;
	snprintf(buf, len, "%llu%s",
		 (unsigned long long)(v / cfg_time_units[i].scale),
		 cfg_time_units[i].name);
	return buf;
}

/* ---- the schema ---- */

enum cfg_kind {
	CFG_BOOL,
	CFG_UINT,	/* a plain count */
	CFG_INT,	/* a plain count that may be negative */
	CFG_SIZE,	/* bytes, with an optional unit */
	CFG_DURATION,	/* nanoseconds, with a unit */
	CFG_RATE,	/* a non-negative decimal, stored as double */
	CFG_STRING,
	CFG_ENUM,	/* one of a list of words, stored as its index */
	CFG_MAP,	/* a section: more keys of the same item */
	CFG_SINK,	/* a struct sluiced_sink_config, an item of its own */
	CFG_LIST,	/* a list of items: inputs or routes */
};

struct cfg_enum {
	const char *noun;		/* "sink type" */
	const char *const *words;
	size_t n;
};

/* String checks: 0, or -EINVAL with the reason in @why. */
typedef int (*cfg_check_fn)(const char *s, size_t len, char *why,
			    size_t whylen);

struct cfg_keys;
struct cfg_list;

struct cfg_key {
	const char *name;
	enum cfg_kind kind;
	unsigned slot;			/* in the item's origin array */
	size_t off, size;		/* the field in the item */
	int64_t min;			/* bounds; string lengths */
	uint64_t max;
	const struct cfg_enum *words;	/* CFG_ENUM */
	const struct cfg_keys *sub;	/* CFG_MAP, CFG_SINK */
	const struct cfg_list *list;	/* CFG_LIST */
	cfg_check_fn check;		/* CFG_STRING */
	size_t flag_off;		/* CFG_SINK: a bool set when given */
	unsigned sinks;			/* sink keys: the types using it */
	bool required;
};

/* The keys of one mapping, and where its item keeps origins and line. */
struct cfg_keys {
	const struct cfg_key *keys;
	size_t n;
	size_t origin_off, line_off;
	void (*init)(void *item);	/* defaults of a fresh item */
};

/* A list of items: where the array and its count live, and its bounds. */
struct cfg_list {
	const struct cfg_keys *keys;
	size_t item_size;
	size_t array_off, count_off;	/* in struct sluiced_config */
	size_t max;
	const char *noun;		/* "route" */
	bool empty_ok;
};

#define CFG_AT(type, member)                                                   \
	.off = offsetof(type, member), .size = sizeof(((type *)0)->member)
#define CFG_MAX_KEYS 20

static const char *const cfg_match_words[] = {"exact", "prefix", "glob",
					      "any"};
static const char *const cfg_input_words[] = {"tcp", "udp", "unix",
					      "unix-dgram"};
static const char *const cfg_sink_words[] = {"null", "stdout", "file", "tcp",
					     "plugin"};
static const char *const cfg_fold_words[] = {"latest", "sum", "max",
					     "keep-all"};
static const char *const cfg_format_words[] = {"lines", "frames"};
static const char *const cfg_level_words[] = {"debug", "info", "warn",
					      "error"};

#define CFG_WORDS(noun_, w) {.noun = (noun_), .words = (w), .n = SL_ARRAY_SIZE(w)}
static const struct cfg_enum cfg_match_enum = CFG_WORDS("match",
							cfg_match_words);
static const struct cfg_enum cfg_input_enum = CFG_WORDS("input type",
							cfg_input_words);
static const struct cfg_enum cfg_sink_enum = CFG_WORDS("sink type",
						       cfg_sink_words);
static const struct cfg_enum cfg_fold_enum = CFG_WORDS("fold", cfg_fold_words);
static const struct cfg_enum cfg_format_enum = CFG_WORDS("format",
							 cfg_format_words);
static const struct cfg_enum cfg_level_enum = CFG_WORDS("log level",
							cfg_level_words);

/* The words are the enums' values in order. */
_Static_assert(SL_MATCH_EXACT == 0 && SL_MATCH_PREFIX == 1 &&
		       SL_MATCH_GLOB == 2 && SL_MATCH_ANY == 3,
	       "cfg_match_words follows enum sl_match");
_Static_assert(SLUICE_INPUT_TCP == 0 && SLUICE_INPUT_UDP == 1 &&
		       SLUICE_INPUT_UNIX == 2 && SLUICE_INPUT_UNIX_DGRAM == 3,
	       "cfg_input_words follows enum sluice_input_type");
_Static_assert(SLUICED_SINK_PLUGIN == 4 && SLUICED_FOLD_KEEP_ALL == 3 &&
		       SLUICED_LOG_ERROR == 3,
	       "word lists follow their enums");

/* String checks. */

static int
cfg_check_name(const char *s, size_t len, char *why, size_t whylen)
{
	bool ok = len >= 1 && len <= CFG_NAME_MAX;

	for (size_t i = 0; ok && i < len; i++)
		ok = (s[i] >= 'a' && s[i] <= 'z') ||
		     (s[i] >= 'A' && s[i] <= 'Z') ||
		     (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		     s[i] == '-' || s[i] == '.';
	if (ok)
		return 0;
	snprintf(why, whylen,
		 "a name is 1 to %d letters, digits, '_', '-' or '.'",
		 CFG_NAME_MAX);
	return -EINVAL;
}

/* An address sl_addr_parse() takes; a port past 65535 is named. */
static int
cfg_check_addr(const char *s, size_t len, char *why, size_t whylen)
{
	char q[CFG_QUOTE_BUF];
	struct sl_addr a;
	const char *colon = memrchr(s, ':', len);
	unsigned long long port = 0;
	bool digits = colon && colon + 1 < s + len;

	if (sl_addr_parse(s, &a) == 0)
		return 0;
	for (const char *p = colon ? colon + 1 : s + len; digits && p < s + len;
	     p++) {
		digits = *p >= '0' && *p <= '9';
		if (port <= 65535)
			port = port * 10 + (unsigned)(*p - '0');
	}
	cfg_quote(s, len, q, sizeof(q));
	if (digits && port > 65535 && strncmp(s, "unix:", 5))
		snprintf(why, whylen,
			 "bad address \"%s\": the port is out of range (0 to "
			 "65535)", q);
	else
		snprintf(why, whylen,
			 "bad address \"%s\" (expected HOST:PORT with a "
			 "numeric IPv4 or [IPv6] host, or a Unix socket path: "
			 "/path, @name or unix:/path)", q);
	return -EINVAL;
}

/* The admin address, or "" or "off" for no admin endpoint at all. */
static int
cfg_check_admin_addr(const char *s, size_t len, char *why, size_t whylen)
{
	if (len == 0 || (len == 3 && !memcmp(s, "off", 3)))
		return 0;
	return cfg_check_addr(s, len, why, whylen);
}

static int
cfg_check_token(const char *s, size_t len, char *why, size_t whylen)
{
	bool ok = len <= SL_ADMIN_TOKEN_MAX;

	for (size_t i = 0; ok && i < len; i++)
		ok = s[i] > 0x20 && s[i] < 0x7f;
	if (ok)
		return 0;
	/* The token is a secret: never repeated in a message. */
	snprintf(why, whylen,
		 "a token is 1 to %u visible ASCII characters, no spaces (or "
		 "\"\" for none)", SL_ADMIN_TOKEN_MAX);
	return -EINVAL;
}

/*
 * A list of numbers and ranges, "0-3,8", each number at most @max: the
 * form core/placement.c reads.  Whether the machine has them is for the
 * runtime to say at start-up.
 */
static int
cfg_check_list(const char *s, size_t len, unsigned max, const char *noun,
	       char *why, size_t whylen)
{
	char q[CFG_QUOTE_BUF];
	const char *p = s, *end = s + len;

	while (p < end) {
		unsigned long lo = 0, hi;
		const char *start = p;

		/* Digits past @max are read but no longer added up, so a
		 * long number cannot wrap around. */
		for (; p < end && *p >= '0' && *p <= '9'; p++)
			if (lo <= max)
				lo = lo * 10 + (unsigned)(*p - '0');
		hi = lo;
		if (p < end && *p == '-' && p > start) {
			const char *h = ++p;

			hi = 0;
			for (; p < end && *p >= '0' && *p <= '9'; p++)
				if (hi <= max)
					hi = hi * 10 + (unsigned)(*p - '0');
			if (p == h)
				start = p;	/* "3-": no upper end */
		}
		if (p == start || (p < end && *p != ',') || lo > hi) {
			snprintf(why, whylen, "bad %s list \"%s\" (expected "
				 "numbers and ranges: \"0-3,8\")", noun,
				 cfg_quote(s, len, q, sizeof(q)));
			return -EINVAL;
		}
		if (hi > max) {
			snprintf(why, whylen, "%s list \"%s\": %s numbers go "
				 "up to %u", noun,
				 cfg_quote(s, len, q, sizeof(q)), noun, max);
			return -EINVAL;
		}
		if (p < end && ++p == end) {
			snprintf(why, whylen,
				 "bad %s list \"%s\" (ends in a comma)", noun,
				 cfg_quote(s, len, q, sizeof(q)));
			return -EINVAL;
		}
	}
	return 0;
}

/* "" (every CPU the process may use) or a CPU list. */
static int
cfg_check_cpus(const char *s, size_t len, char *why, size_t whylen)
{
	return cfg_check_list(s, len, CFG_CPU_MAX, "CPU", why, whylen);
}

/* "local", "interleave" or a list of nodes. */
static int
cfg_check_numa(const char *s, size_t len, char *why, size_t whylen)
{
	char q[CFG_QUOTE_BUF];

	if ((len == 5 && !memcmp(s, "local", 5)) ||
	    (len == 10 && !memcmp(s, "interleave", 10)))
		return 0;
	if (len && s[0] >= '0' && s[0] <= '9')
		return cfg_check_list(s, len, CFG_NODE_MAX, "node", why,
				      whylen);
	snprintf(why, whylen, "bad NUMA policy \"%s\" (local, interleave, or "
		 "a list of nodes such as \"0\" or \"0-1\")",
		 cfg_quote(s, len, q, sizeof(q)));
	return -EINVAL;
}

static int
cfg_check_path(const char *s, size_t len, char *why, size_t whylen)
{
	(void)s;
	if (len > 0 && len < PATH_MAX)
		return 0;
	if (len)
		snprintf(why, whylen, "the path is longer than %d bytes",
			 PATH_MAX - 1);
	else
		snprintf(why, whylen, "the path is empty");
	return -EINVAL;
}

/* Origin slots, per item. */
enum {
	TOP_PROCS, TOP_RING_ENTRIES, TOP_SQPOLL, TOP_SQPOLL_CPU,
	TOP_STACK_SIZE, TOP_KIND_MAX, TOP_KEY_MAX, TOP_PAYLOAD_MAX,
	TOP_LINE_MAX, TOP_FRAME_MAX, TOP_MAX_MALFORMED, TOP_SHARD_INBOX,
	TOP_INPUTS, TOP_ROUTES, TOP_ADMIN_ADDR, TOP_ADMIN_TIMEOUT,
	TOP_ADMIN_TOKEN, TOP_ADMIN_MAX_REQUEST, TOP_DRAIN_TIMEOUT,
	TOP_LOG_LEVEL, TOP_CPUS, TOP_NUMA, TOP_PIN, TOP_CQ_ENTRIES,
	TOP_SQPOLL_IDLE, TOP_HUGE_PAGES, TOP_IDLE_SPIN, TOP_IO_BUF_SIZE,
	TOP_IO_BUFS, TOP_IO_BUFS_MAX, TOP_ALLOW_ROOT, TOP_SLOTS,
	/* Sections hold no value of their own. */
	TOP_SECTION = TOP_SLOTS,
};

enum {
	INPUT_NAME, INPUT_TYPE, INPUT_ADDR, INPUT_FORMAT, INPUT_MAX_CONNS,
	INPUT_MAX_BUFFERED, INPUT_SLOTS,
};

enum {
	ROUTE_NAME, ROUTE_MATCH, ROUTE_KIND, ROUTE_KEY_PREFIX, ROUTE_DEFAULT,
	ROUTE_FOLD, ROUTE_KEEP_MAX, ROUTE_WORKERS, ROUTE_BACKOFF_BASE,
	ROUTE_BACKOFF_CAP, ROUTE_BACKOFF_JITTER, ROUTE_RETRY_RATE,
	ROUTE_RETRY_BURST, ROUTE_MAX_ATTEMPTS, ROUTE_MAX_PENDING, ROUTE_SINK,
	ROUTE_DEAD_LETTER, ROUTE_SLOTS, ROUTE_SECTION = ROUTE_SLOTS,
};

enum {
	SINK_TYPE, SINK_PATH, SINK_SYNC, SINK_ROTATE, SINK_FORMAT, SINK_ADDR,
	SINK_CONNS, SINK_TIMEOUT, SINK_PLUGIN, SINK_CONFIG, SINK_SLOTS,
};

_Static_assert(TOP_SLOTS == SLUICED_TOP_KEYS_, "top origin slots");
_Static_assert(INPUT_SLOTS == SLUICED_INPUT_KEYS_, "input origin slots");
_Static_assert(ROUTE_SLOTS == SLUICED_ROUTE_KEYS_, "route origin slots");
_Static_assert(SINK_SLOTS == SLUICED_SINK_KEYS_, "sink origin slots");

#define SINK_USE(t) (1u << (t))
#define SINK_FILE_ONLY SINK_USE(SLUICED_SINK_FILE)

/* Sinks. */

static void
cfg_sink_init(void *item)
{
	struct sluiced_sink_config *s = item;

	memset(s, 0, sizeof(*s));
	s->type = SLUICED_SINK_NULL;
	s->sync = true;
	s->conns = 1;
	s->timeout_ns = 5 * SL_NSEC_PER_SEC;
	s->config = "";
}

#define SINK_AT(m) CFG_AT(struct sluiced_sink_config, m)
static const struct cfg_key cfg_sink_keys[] = {
	{.name = "type", .kind = CFG_ENUM, .slot = SINK_TYPE, SINK_AT(type),
	 .words = &cfg_sink_enum, .sinks = ~0u, .required = true},
	{.name = "path", .kind = CFG_STRING, .slot = SINK_PATH, SINK_AT(path),
	 .check = cfg_check_path, .sinks = SINK_FILE_ONLY},
	{.name = "sync", .kind = CFG_BOOL, .slot = SINK_SYNC, SINK_AT(sync),
	 .sinks = SINK_FILE_ONLY},
	{.name = "rotate", .kind = CFG_SIZE, .slot = SINK_ROTATE,
	 SINK_AT(rotate_bytes), .max = UINT64_MAX, .sinks = SINK_FILE_ONLY},
	{.name = "format", .kind = CFG_ENUM, .slot = SINK_FORMAT,
	 SINK_AT(frames), .words = &cfg_format_enum,
	 .sinks = SINK_FILE_ONLY | SINK_USE(SLUICED_SINK_TCP)},
	{.name = "addr", .kind = CFG_STRING, .slot = SINK_ADDR, SINK_AT(addr),
	 .check = cfg_check_addr, .sinks = SINK_USE(SLUICED_SINK_TCP)},
	{.name = "conns", .kind = CFG_UINT, .slot = SINK_CONNS, SINK_AT(conns),
	 .min = 1, .max = 256, .sinks = SINK_USE(SLUICED_SINK_TCP)},
	{.name = "timeout", .kind = CFG_DURATION, .slot = SINK_TIMEOUT,
	 SINK_AT(timeout_ns), .min = (int64_t)SL_NSEC_PER_MSEC,
	 .max = 3600 * SL_NSEC_PER_SEC, .sinks = SINK_USE(SLUICED_SINK_TCP)},
	{.name = "plugin", .kind = CFG_STRING, .slot = SINK_PLUGIN,
	 SINK_AT(plugin), .check = cfg_check_path,
	 .sinks = SINK_USE(SLUICED_SINK_PLUGIN)},
	{.name = "config", .kind = CFG_STRING, .slot = SINK_CONFIG,
	 SINK_AT(config), .max = CFG_STRING_MAX,
	 .sinks = SINK_USE(SLUICED_SINK_PLUGIN)},
};

static const struct cfg_keys cfg_sink_table = {
	.keys = cfg_sink_keys,
	.n = SL_ARRAY_SIZE(cfg_sink_keys),
	.origin_off = offsetof(struct sluiced_sink_config, origin_),
	.line_off = offsetof(struct sluiced_sink_config, line_),
	.init = cfg_sink_init,
};

/* Inputs. */

static void
cfg_input_init(void *item)
{
	struct sluiced_input_config *in = item;

	memset(in, 0, sizeof(*in));
	in->in.type = SLUICE_INPUT_TCP;
}

#define INPUT_AT(m) CFG_AT(struct sluiced_input_config, in.m)
static const struct cfg_key cfg_input_keys[] = {
	{.name = "name", .kind = CFG_STRING, .slot = INPUT_NAME,
	 INPUT_AT(name), .check = cfg_check_name, .required = true},
	{.name = "type", .kind = CFG_ENUM, .slot = INPUT_TYPE, INPUT_AT(type),
	 .words = &cfg_input_enum},
	{.name = "addr", .kind = CFG_STRING, .slot = INPUT_ADDR,
	 INPUT_AT(addr), .check = cfg_check_addr, .required = true},
	{.name = "format", .kind = CFG_ENUM, .slot = INPUT_FORMAT,
	 INPUT_AT(frames), .words = &cfg_format_enum},
	{.name = "max_conns", .kind = CFG_UINT, .slot = INPUT_MAX_CONNS,
	 INPUT_AT(max_conns), .max = UINT_MAX},
	{.name = "max_buffered", .kind = CFG_SIZE, .slot = INPUT_MAX_BUFFERED,
	 INPUT_AT(max_buffered), .min = 1, .max = GiB},
};

static const struct cfg_keys cfg_input_table = {
	.keys = cfg_input_keys,
	.n = SL_ARRAY_SIZE(cfg_input_keys),
	.origin_off = offsetof(struct sluiced_input_config, origin_),
	.line_off = offsetof(struct sluiced_input_config, line_),
	.init = cfg_input_init,
};

/* Routes. */

static void
cfg_route_init(void *item)
{
	struct sluiced_route_config *rc = item;
	struct sluice_route *r = &rc->route;

	memset(rc, 0, sizeof(*rc));
	r->match = SL_MATCH_ANY;
	r->kind = "";
	r->key_prefix = "";
	r->workers = 4;
	r->fold.policy = SL_FOLD_LATEST;
	r->fold.keep_max = 16;
	r->fold.backoff_base_ns = 5 * SL_NSEC_PER_MSEC;
	r->fold.backoff_cap_ns = 1000 * SL_NSEC_PER_SEC;
	r->fold.retry_rate = 10;
	r->fold.retry_burst = 100;
	rc->fold = SLUICED_FOLD_LATEST;
	cfg_sink_init(&rc->sink);
	cfg_sink_init(&rc->dead_letter);
}

#define ROUTE_AT(m) CFG_AT(struct sluiced_route_config, m)
static const struct cfg_key cfg_backoff_keys[] = {
	{.name = "base", .kind = CFG_DURATION, .slot = ROUTE_BACKOFF_BASE,
	 ROUTE_AT(route.fold.backoff_base_ns), .min = (int64_t)SL_NSEC_PER_USEC,
	 .max = 3600 * SL_NSEC_PER_SEC},
	{.name = "cap", .kind = CFG_DURATION, .slot = ROUTE_BACKOFF_CAP,
	 ROUTE_AT(route.fold.backoff_cap_ns), .min = (int64_t)SL_NSEC_PER_USEC,
	 .max = 7 * 24 * 3600 * SL_NSEC_PER_SEC},
	{.name = "jitter", .kind = CFG_BOOL, .slot = ROUTE_BACKOFF_JITTER,
	 ROUTE_AT(route.fold.jitter)},
};

static const struct cfg_key cfg_retry_keys[] = {
	{.name = "rate", .kind = CFG_RATE, .slot = ROUTE_RETRY_RATE,
	 ROUTE_AT(route.fold.retry_rate), .max = 1000000},
	{.name = "burst", .kind = CFG_UINT, .slot = ROUTE_RETRY_BURST,
	 ROUTE_AT(route.fold.retry_burst), .min = 1, .max = 1000000},
};

#define CFG_SECTION(keys_, origin_, line_)                                     \
	{.keys = (keys_), .n = SL_ARRAY_SIZE(keys_), .origin_off = (origin_),  \
	 .line_off = (line_)}
static const struct cfg_keys cfg_backoff_table = CFG_SECTION(
	cfg_backoff_keys, offsetof(struct sluiced_route_config, origin_),
	offsetof(struct sluiced_route_config, line_));
static const struct cfg_keys cfg_retry_table = CFG_SECTION(
	cfg_retry_keys, offsetof(struct sluiced_route_config, origin_),
	offsetof(struct sluiced_route_config, line_));

static const struct cfg_key cfg_route_keys[] = {
	{.name = "name", .kind = CFG_STRING, .slot = ROUTE_NAME,
	 ROUTE_AT(route.name), .check = cfg_check_name, .required = true},
	{.name = "match", .kind = CFG_ENUM, .slot = ROUTE_MATCH,
	 ROUTE_AT(route.match), .words = &cfg_match_enum},
	{.name = "kind", .kind = CFG_STRING, .slot = ROUTE_KIND,
	 ROUTE_AT(route.kind), .max = CFG_STRING_MAX},
	{.name = "key_prefix", .kind = CFG_STRING, .slot = ROUTE_KEY_PREFIX,
	 ROUTE_AT(route.key_prefix), .max = CFG_STRING_MAX},
	{.name = "default", .kind = CFG_BOOL, .slot = ROUTE_DEFAULT,
	 ROUTE_AT(route.is_default)},
	{.name = "fold", .kind = CFG_ENUM, .slot = ROUTE_FOLD, ROUTE_AT(fold),
	 .words = &cfg_fold_enum},
	{.name = "keep_max", .kind = CFG_UINT, .slot = ROUTE_KEEP_MAX,
	 ROUTE_AT(route.fold.keep_max), .min = 1, .max = 65536},
	{.name = "workers", .kind = CFG_UINT, .slot = ROUTE_WORKERS,
	 ROUTE_AT(route.workers), .min = 1, .max = 1024},
	{.name = "backoff", .kind = CFG_MAP, .slot = ROUTE_SECTION,
	 .sub = &cfg_backoff_table},
	{.name = "retry", .kind = CFG_MAP, .slot = ROUTE_SECTION,
	 .sub = &cfg_retry_table},
	{.name = "max_attempts", .kind = CFG_UINT, .slot = ROUTE_MAX_ATTEMPTS,
	 ROUTE_AT(route.fold.max_attempts), .max = UINT_MAX},
	{.name = "max_pending", .kind = CFG_UINT, .slot = ROUTE_MAX_PENDING,
	 ROUTE_AT(route.fold.max_pending), .max = SIZE_MAX},
	{.name = "sink", .kind = CFG_SINK, .slot = ROUTE_SINK, ROUTE_AT(sink),
	 .sub = &cfg_sink_table, .flag_off = SIZE_MAX, .required = true},
	{.name = "dead_letter", .kind = CFG_SINK, .slot = ROUTE_DEAD_LETTER,
	 ROUTE_AT(dead_letter), .sub = &cfg_sink_table,
	 .flag_off = offsetof(struct sluiced_route_config, has_dead_letter)},
};

static const struct cfg_keys cfg_route_table = {
	.keys = cfg_route_keys,
	.n = SL_ARRAY_SIZE(cfg_route_keys),
	.origin_off = offsetof(struct sluiced_route_config, origin_),
	.line_off = offsetof(struct sluiced_route_config, line_),
	.init = cfg_route_init,
};

/* The top level. */

#define TOP_AT(m) CFG_AT(struct sluiced_config, m)
static const struct cfg_key cfg_runtime_keys[] = {
	{.name = "procs", .kind = CFG_UINT, .slot = TOP_PROCS,
	 TOP_AT(runtime.nprocs), .max = SL_MAX_PROCS},
	{.name = "ring_entries", .kind = CFG_UINT, .slot = TOP_RING_ENTRIES,
	 TOP_AT(runtime.ring_entries), .min = 1, .max = CFG_RING_ENTRIES_MAX},
	{.name = "sqpoll", .kind = CFG_BOOL, .slot = TOP_SQPOLL,
	 TOP_AT(runtime.sqpoll)},
	{.name = "sqpoll_cpu", .kind = CFG_INT, .slot = TOP_SQPOLL_CPU,
	 TOP_AT(runtime.sqpoll_cpu), .min = -1, .max = CFG_CPU_MAX},
	{.name = "stack_size", .kind = CFG_SIZE, .slot = TOP_STACK_SIZE,
	 TOP_AT(runtime.stack_size), .min = CFG_STACK_MIN,
	 .max = CFG_STACK_MAX},
	{.name = "cpus", .kind = CFG_STRING, .slot = TOP_CPUS,
	 TOP_AT(runtime.cpus), .check = cfg_check_cpus},
	{.name = "numa", .kind = CFG_STRING, .slot = TOP_NUMA,
	 TOP_AT(runtime.numa), .check = cfg_check_numa},
	{.name = "pin", .kind = CFG_BOOL, .slot = TOP_PIN,
	 TOP_AT(runtime.pin)},
	{.name = "cq_entries", .kind = CFG_UINT, .slot = TOP_CQ_ENTRIES,
	 TOP_AT(runtime.cq_entries), .max = CFG_CQ_ENTRIES_MAX},
	{.name = "sqpoll_idle_ms", .kind = CFG_UINT, .slot = TOP_SQPOLL_IDLE,
	 TOP_AT(runtime.sqpoll_idle_ms), .max = CFG_SQPOLL_IDLE_MAX},
	{.name = "huge_pages", .kind = CFG_BOOL, .slot = TOP_HUGE_PAGES,
	 TOP_AT(runtime.huge_pages)},
	{.name = "idle_spin", .kind = CFG_DURATION, .slot = TOP_IDLE_SPIN,
	 TOP_AT(runtime.idle_spin_ns), .max = CFG_IDLE_SPIN_MAX},
};

static const struct cfg_key cfg_io_keys[] = {
	{.name = "buffer_size", .kind = CFG_SIZE, .slot = TOP_IO_BUF_SIZE,
	 TOP_AT(io.buf_size), .min = CFG_IO_BUF_MIN, .max = CFG_IO_BUF_MAX},
	{.name = "buffers", .kind = CFG_UINT, .slot = TOP_IO_BUFS,
	 TOP_AT(io.bufs_initial), .min = 1, .max = CFG_IO_BUFS_MAX},
	{.name = "buffers_max", .kind = CFG_UINT, .slot = TOP_IO_BUFS_MAX,
	 TOP_AT(io.bufs_max), .min = 1, .max = CFG_IO_BUFS_MAX},
};

static const struct cfg_key cfg_security_keys[] = {
	{.name = "allow_root", .kind = CFG_BOOL, .slot = TOP_ALLOW_ROOT,
	 TOP_AT(allow_root)},
};

static const struct cfg_key cfg_limits_keys[] = {
	{.name = "kind_max", .kind = CFG_SIZE, .slot = TOP_KIND_MAX,
	 TOP_AT(opts.limits.kind_max), .min = 1, .max = SL_KIND_MAX},
	{.name = "key_max", .kind = CFG_SIZE, .slot = TOP_KEY_MAX,
	 TOP_AT(opts.limits.key_max), .min = 1, .max = SL_KEY_MAX},
	{.name = "payload_max", .kind = CFG_SIZE, .slot = TOP_PAYLOAD_MAX,
	 TOP_AT(opts.limits.payload_max), .min = 1, .max = CFG_PAYLOAD_MAX},
	{.name = "line_max", .kind = CFG_SIZE, .slot = TOP_LINE_MAX,
	 TOP_AT(opts.limits.line_max), .min = CFG_LINE_MIN,
	 .max = CFG_BUFFER_MAX},
	{.name = "frame_max", .kind = CFG_SIZE, .slot = TOP_FRAME_MAX,
	 TOP_AT(opts.limits.frame_max), .min = CFG_FRAME_MIN,
	 .max = CFG_BUFFER_MAX},
	{.name = "max_malformed", .kind = CFG_UINT, .slot = TOP_MAX_MALFORMED,
	 TOP_AT(opts.max_malformed), .max = UINT_MAX},
	{.name = "shard_inbox", .kind = CFG_UINT, .slot = TOP_SHARD_INBOX,
	 TOP_AT(opts.shard_inbox), .min = 1, .max = CFG_SHARD_INBOX_MAX},
};

static const struct cfg_key cfg_admin_keys[] = {
	{.name = "addr", .kind = CFG_STRING, .slot = TOP_ADMIN_ADDR,
	 TOP_AT(admin.addr), .check = cfg_check_admin_addr},
	{.name = "timeout", .kind = CFG_DURATION, .slot = TOP_ADMIN_TIMEOUT,
	 TOP_AT(admin.timeout_ns), .min = (int64_t)SL_NSEC_PER_MSEC,
	 .max = 3600 * SL_NSEC_PER_SEC},
	{.name = "token", .kind = CFG_STRING, .slot = TOP_ADMIN_TOKEN,
	 TOP_AT(admin.token), .check = cfg_check_token},
	{.name = "max_request", .kind = CFG_SIZE,
	 .slot = TOP_ADMIN_MAX_REQUEST, TOP_AT(admin.max_request),
	 .min = SL_ADMIN_MAX_REQUEST_MIN, .max = SL_ADMIN_MAX_REQUEST_MAX},
};

static const struct cfg_key cfg_shutdown_keys[] = {
	{.name = "drain_timeout", .kind = CFG_DURATION,
	 .slot = TOP_DRAIN_TIMEOUT, TOP_AT(drain_timeout_ns),
	 .max = 24 * 3600 * SL_NSEC_PER_SEC},
};

static const struct cfg_key cfg_log_keys[] = {
	{.name = "level", .kind = CFG_ENUM, .slot = TOP_LOG_LEVEL,
	 TOP_AT(log_level), .words = &cfg_level_enum},
};

#define TOP_SECTION_TABLE(keys_)                                               \
	CFG_SECTION(keys_, offsetof(struct sluiced_config, origin_), SIZE_MAX)
static const struct cfg_keys cfg_runtime_table =
	TOP_SECTION_TABLE(cfg_runtime_keys);
static const struct cfg_keys cfg_io_table = TOP_SECTION_TABLE(cfg_io_keys);
static const struct cfg_keys cfg_security_table =
	TOP_SECTION_TABLE(cfg_security_keys);
static const struct cfg_keys cfg_limits_table =
	TOP_SECTION_TABLE(cfg_limits_keys);
static const struct cfg_keys cfg_admin_table =
	TOP_SECTION_TABLE(cfg_admin_keys);
static const struct cfg_keys cfg_shutdown_table =
	TOP_SECTION_TABLE(cfg_shutdown_keys);
static const struct cfg_keys cfg_log_table = TOP_SECTION_TABLE(cfg_log_keys);

static const struct cfg_list cfg_inputs_list = {
	.keys = &cfg_input_table,
	.item_size = sizeof(struct sluiced_input_config),
	.array_off = offsetof(struct sluiced_config, inputs),
	.count_off = offsetof(struct sluiced_config, ninputs),
	.max = CFG_INPUTS_MAX,
	.noun = "input",
	.empty_ok = true,
};

static const struct cfg_list cfg_routes_list = {
	.keys = &cfg_route_table,
	.item_size = sizeof(struct sluiced_route_config),
	.array_off = offsetof(struct sluiced_config, routes),
	.count_off = offsetof(struct sluiced_config, nroutes),
	.max = CFG_ROUTES_MAX,
	.noun = "route",
	.empty_ok = false,
};

static const struct cfg_key cfg_top_keys[] = {
	{.name = "runtime", .kind = CFG_MAP, .slot = TOP_SECTION,
	 .sub = &cfg_runtime_table},
	{.name = "io", .kind = CFG_MAP, .slot = TOP_SECTION,
	 .sub = &cfg_io_table},
	{.name = "limits", .kind = CFG_MAP, .slot = TOP_SECTION,
	 .sub = &cfg_limits_table},
	{.name = "inputs", .kind = CFG_LIST, .slot = TOP_INPUTS,
	 .list = &cfg_inputs_list},
	{.name = "routes", .kind = CFG_LIST, .slot = TOP_ROUTES,
	 .list = &cfg_routes_list},
	{.name = "admin", .kind = CFG_MAP, .slot = TOP_SECTION,
	 .sub = &cfg_admin_table},
	{.name = "shutdown", .kind = CFG_MAP, .slot = TOP_SECTION,
	 .sub = &cfg_shutdown_table},
	{.name = "log", .kind = CFG_MAP, .slot = TOP_SECTION,
	 .sub = &cfg_log_table},
	{.name = "security", .kind = CFG_MAP, .slot = TOP_SECTION,
	 .sub = &cfg_security_table},
};

static const struct cfg_keys cfg_top_table = CFG_SECTION(
	cfg_top_keys, offsetof(struct sluiced_config, origin_), SIZE_MAX);

/* cfg_walk_map() keeps a line per key of a table on its stack. */
_Static_assert(SL_ARRAY_SIZE(cfg_route_keys) <= CFG_MAX_KEYS &&
		       SL_ARRAY_SIZE(cfg_sink_keys) <= CFG_MAX_KEYS &&
		       SL_ARRAY_SIZE(cfg_limits_keys) <= CFG_MAX_KEYS &&
		       SL_ARRAY_SIZE(cfg_runtime_keys) <= CFG_MAX_KEYS &&
		       SL_ARRAY_SIZE(cfg_top_keys) <= CFG_MAX_KEYS,
	       "CFG_MAX_KEYS holds every table");

/* ---- errors ---- */

/* One load or override in progress. */
struct cfg_ctx {
	struct sluiced_config *c;
	yaml_document_t *doc;
	char *err;
	size_t errlen;
	char path[256];		/* the key path so far */
	size_t plen;
};

/* Append ".name" (or "name" at the top) to the key path; returns the
 * length to restore.  A name from the file is cut and cleaned. */
static size_t
cfg_path_push(struct cfg_ctx *x, const char *name, size_t len)
{
	size_t old = x->plen, room = sizeof(x->path) - x->plen;
	char q[CFG_QUOTE_BUF];
	int n;

	n = snprintf(x->path + x->plen, room, "%s%s", x->plen ? "." : "",
		     cfg_quote(name, len, q, sizeof(q)));
	x->plen = n < 0 || (size_t)n >= room ? sizeof(x->path) - 1
					     : x->plen + (size_t)n;
	return old;
}

static size_t
cfg_path_index(struct cfg_ctx *x, size_t i)
{
	size_t old = x->plen, room = sizeof(x->path) - x->plen;
	int n = snprintf(x->path + x->plen, room, "[%zu]", i);

	x->plen = n < 0 || (size_t)n >= room ? sizeof(x->path) - 1
					     : x->plen + (size_t)n;
	return old;
}

static void
cfg_path_pop(struct cfg_ctx *x, size_t old)
{
	x->plen = old;
	x->path[old] = '\0';
}

/* "FILE:LINE: ", "FILE: " or "--set: " for a value of @origin. */
static int
cfg_origin_text(const struct sluiced_config *c, uint32_t origin, char *buf,
		size_t len)
{
	const char *file = c->file ? c->file : "<defaults>";

	if (origin == SLUICED_ORIGIN_SET)
		return snprintf(buf, len, "--set: ");
	if (origin == SLUICED_ORIGIN_DEFAULT)
		return snprintf(buf, len, "%s: ", file);
	return snprintf(buf, len, "%s:%u: ", file, origin);
}

/* Report "ORIGIN: PATH: reason" (no PATH when @path is empty). */
static int __attribute__((format(printf, 6, 7)))
cfg_fail(const struct sluiced_config *c, char *err, size_t errlen,
	 uint32_t origin, const char *path, const char *fmt, ...)
{
	char head[320];
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	cfg_origin_text(c, origin, head, sizeof(head));
	if (errlen)
		snprintf(err, errlen, "%s%s%s%s", head, path, *path ? ": " : "",
			 why);
	return -EINVAL;
}

#define cfg_fail_here(x, origin, ...)                                          \
	cfg_fail((x)->c, (x)->err, (x)->errlen, (origin), (x)->path,           \
		 __VA_ARGS__)

static int
cfg_nomem(struct cfg_ctx *x)
{
	if (x->errlen)
		snprintf(x->err, x->errlen, "out of memory");
	return -ENOMEM;
}

/* Edit distance, for "did you mean"; small strings only. */
static size_t
cfg_distance(const char *a, size_t la, const char *b, size_t lb)
{
	size_t row[CFG_NAME_MAX + 1];

	if (la > CFG_NAME_MAX || lb > CFG_NAME_MAX)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

static int
cfg_unknown_key(struct cfg_ctx *x, uint32_t origin, const struct cfg_keys *t,
		const char *name, size_t len)
{
	const char *best = NULL;
	size_t best_d = 3;
	char list[320];
	size_t o = 0;

	for (size_t i = 0; i < t->n; i++) {
		const char *k = t->keys[i].name;
		size_t d = cfg_distance(name, len, k, strlen(k));

		if (d < best_d && d < strlen(k)) {
			best_d = d;
			best = k;
		}
		o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s",
				      i ? ", " : "", k);
		if (o >= sizeof(list))
			o = sizeof(list) - 1;
	}
	if (best)
		return cfg_fail_here(x, origin,
				     "unknown key (did you mean \"%s\"?)",
				     best);
	return cfg_fail_here(x, origin, "unknown key (expected one of: %s)",
			     list);
}

static const struct cfg_key *
cfg_lookup(const struct cfg_keys *t, const char *name, size_t len)
{
	for (size_t i = 0; i < t->n; i++)
		if (strlen(t->keys[i].name) == len &&
		    !memcmp(t->keys[i].name, name, len))
			return &t->keys[i];
	return NULL;
}

/* ---- values ---- */

/* A value's text and where it came from. */
struct cfg_scalar {
	const char *s;
	size_t len;
	bool missing;		/* an empty plain YAML value (null) */
	uint32_t origin;
};

static const char *
cfg_kind_noun(const struct cfg_key *k)
{
	switch (k->kind) {
	case CFG_BOOL:
		return "true or false";
	case CFG_UINT:
	case CFG_INT:
		return "a whole number";
	case CFG_SIZE:
		return "a size";
	case CFG_DURATION:
		return "a duration";
	case CFG_RATE:
		return "a number";
	case CFG_STRING:
		return "a string";
	case CFG_ENUM:
		return k->words->noun;
	case CFG_MAP:
	case CFG_SINK:
		return "a mapping";
	case CFG_LIST:
		return "a list";
	}
	return "a value";
}

static void
cfg_store(void *p, size_t size, uint64_t v)
{
	if (size == 1) {
		uint8_t b = (uint8_t)v;

		memcpy(p, &b, 1);
	} else if (size == 4) {
		uint32_t w = (uint32_t)v;

		memcpy(p, &w, 4);
	} else {
		memcpy(p, &v, 8);
	}
}

static int
cfg_enum_value(struct cfg_ctx *x, const struct cfg_key *k,
	       const struct cfg_scalar *v, uint64_t *out)
{
	const struct cfg_enum *e = k->words;
	char list[160], q[CFG_QUOTE_BUF];
	size_t o = 0;

	for (size_t i = 0; i < e->n; i++) {
		if (strlen(e->words[i]) == v->len &&
		    !memcmp(e->words[i], v->s, v->len)) {
			*out = i;
			return 0;
		}
		o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s",
				      i ? ", " : "", e->words[i]);
	}
	return cfg_fail_here(x, v->origin, "unknown %s \"%s\" (%s)", e->noun,
			     cfg_quote(v->s, v->len, q, sizeof(q)), list);
}

/* The bounds of @k as text, in its own units. */
static void
cfg_bounds_text(const struct cfg_key *k, char *lo, char *hi, size_t len)
{
	switch (k->kind) {
	case CFG_SIZE:
		cfg_size_text((uint64_t)k->min, lo, len);
		cfg_size_text(k->max, hi, len);
		return;
	case CFG_DURATION:
		cfg_duration_text((uint64_t)k->min, lo, len);
		cfg_duration_text(k->max, hi, len);
		return;
	case CFG_INT:
		snprintf(lo, len, "%lld", (long long)k->min);
		snprintf(hi, len, "%lld", (long long)k->max);
		return;
	case CFG_BOOL:
	case CFG_UINT:
	case CFG_RATE:
	case CFG_STRING:
	case CFG_ENUM:
	case CFG_MAP:
	case CFG_SINK:
	case CFG_LIST:
		break;
	}
	snprintf(lo, len, "%lld", (long long)k->min);
	snprintf(hi, len, "%llu", (unsigned long long)k->max);
}

static int
cfg_out_of_range(struct cfg_ctx *x, const struct cfg_key *k,
		 const struct cfg_scalar *v)
{
	char lo[32], hi[32], q[CFG_QUOTE_BUF];

	cfg_bounds_text(k, lo, hi, sizeof(lo));
	return cfg_fail_here(x, v->origin, "%s is out of range (%s to %s)",
			     cfg_quote(v->s, v->len, q, sizeof(q)), lo, hi);
}

/* A whole number, size or duration of @k's kind, bounded. */
static int
cfg_number_value(struct cfg_ctx *x, const struct cfg_key *k,
		 const struct cfg_scalar *v, uint64_t *out)
{
	char why[256], q[CFG_QUOTE_BUF];
	uint64_t uv = 0;
	bool neg;
	int r;

	switch (k->kind) {
	case CFG_SIZE:
		if (sluiced_parse_size(v->s, v->len, &uv, why, sizeof(why)))
			return cfg_fail_here(x, v->origin, "%s", why);
		break;
	case CFG_DURATION:
		if (sluiced_parse_duration(v->s, v->len, &uv, why, sizeof(why)))
			return cfg_fail_here(x, v->origin, "%s", why);
		break;
	case CFG_INT:
	case CFG_UINT:
		r = cfg_int_read(v->s, v->len, &neg, &uv);
		if (r == -ERANGE)
			return cfg_out_of_range(x, k, v);
		if (r)
			return cfg_fail_here(
				x, v->origin,
				"expected a whole number, found \"%s\"",
				cfg_quote(v->s, v->len, q, sizeof(q)));
		/* Signed bounds are small: compare magnitudes. */
		if (neg && uv && (k->min >= 0 || uv > (uint64_t)-k->min))
			return cfg_out_of_range(x, k, v);
		if (neg) {
			*out = (uint64_t)-(int64_t)uv;
			return 0;
		}
		break;
	case CFG_BOOL:
	case CFG_RATE:
	case CFG_STRING:
	case CFG_ENUM:
	case CFG_MAP:
	case CFG_SINK:
	case CFG_LIST:
		return -EINVAL;
	}
	if ((k->min > 0 && uv < (uint64_t)k->min) || uv > k->max)
		return cfg_out_of_range(x, k, v);
	*out = uv;
	return 0;
}

/* Retries per second: digits with an optional fraction, no exponent. */
static int
cfg_rate_value(struct cfg_ctx *x, const struct cfg_key *k,
	       const struct cfg_scalar *v, double *out)
{
	char buf[64], q[CFG_QUOTE_BUF];
	const char *p = v->s;
	struct cfg_decimal dec;
	bool ok = v->len < sizeof(buf) &&
		  cfg_decimal_read(&p, v->s + v->len, &dec) == 0 &&
		  p == v->s + v->len;
	double d;

	if (!ok)
		return cfg_fail_here(x, v->origin,
				     "expected a number of retries per second "
				     "(e.g. 10 or 0.5), found \"%s\"",
				     cfg_quote(v->s, v->len, q, sizeof(q)));
	memcpy(buf, v->s, v->len);
	buf[v->len] = '\0';
	d = strtod(buf, NULL);
	if (d > (double)k->max)
		return cfg_out_of_range(x, k, v);
	*out = d;
	return 0;
}

static int
cfg_string_value(struct cfg_ctx *x, const struct cfg_key *k,
		 const struct cfg_scalar *v, const char **out)
{
	char why[256];

	if (memchr(v->s, '\0', v->len))
		return cfg_fail_here(x, v->origin, "contains a NUL byte");
	if (k->check && k->check(v->s, v->len, why, sizeof(why)))
		return cfg_fail_here(x, v->origin, "%s", why);
	if (k->max && v->len > k->max)
		return cfg_fail_here(x, v->origin, "longer than %llu bytes",
				     (unsigned long long)k->max);
	*out = cfg_strdup(x->c, v->s, v->len);
	return *out ? 0 : cfg_nomem(x);
}

/*
 * Read @v as the value of leaf key @k and store it in @item, recording
 * its origin.  Nothing is stored unless the whole value is good.
 */
static int
cfg_apply(struct cfg_ctx *x, const struct cfg_key *k, char *item,
	  uint32_t *origin, const struct cfg_scalar *v)
{
	char q[CFG_QUOTE_BUF];
	const char *str = NULL;
	uint64_t u = 0;
	double d = 0;
	int r = 0;

	if (v->missing)
		return cfg_fail_here(x, v->origin, "missing value (expected %s)",
				     cfg_kind_noun(k));
	switch (k->kind) {
	case CFG_BOOL:
		if (v->len == 4 && !memcmp(v->s, "true", 4))
			u = 1;
		else if (!(v->len == 5 && !memcmp(v->s, "false", 5)))
			return cfg_fail_here(
				x, v->origin,
				"expected true or false, found \"%s\"",
				cfg_quote(v->s, v->len, q, sizeof(q)));
		cfg_store(item + k->off, k->size, u);
		break;
	case CFG_UINT:
	case CFG_INT:
	case CFG_SIZE:
	case CFG_DURATION:
		r = cfg_number_value(x, k, v, &u);
		if (!r)
			cfg_store(item + k->off, k->size, u);
		break;
	case CFG_ENUM:
		r = cfg_enum_value(x, k, v, &u);
		if (!r)
			cfg_store(item + k->off, k->size, u);
		break;
	case CFG_RATE:
		r = cfg_rate_value(x, k, v, &d);
		if (!r)
			memcpy(item + k->off, &d, sizeof(d));
		break;
	case CFG_STRING:
		r = cfg_string_value(x, k, v, &str);
		if (!r)
			memcpy(item + k->off, &str, sizeof(str));
		break;
	case CFG_MAP:
	case CFG_SINK:
	case CFG_LIST:
		return -EINVAL;
	}
	if (!r)
		origin[k->slot] = v->origin;
	return r;
}

/* ---- the YAML walk ---- */

static uint32_t
cfg_line(const yaml_node_t *n)
{
	return (uint32_t)n->start_mark.line + 1;
}

static const char *
cfg_node_noun(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_SCALAR_NODE:
		return "a single value";
	case YAML_SEQUENCE_NODE:
		return "a list";
	case YAML_MAPPING_NODE:
		return "a mapping";
	case YAML_NO_NODE:
		break;
	}
	return "nothing";
}

static struct cfg_scalar
cfg_scalar_of(const yaml_node_t *n)
{
	struct cfg_scalar v = {
		.s = (const char *)n->data.scalar.value,
		.len = n->data.scalar.length,
		.origin = cfg_line(n),
	};

	/* Only an empty or "~" plain value is YAML's null here: the word
	 * null is a sink type. */
	v.missing = n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
		    (v.len == 0 || (v.len == 1 && v.s[0] == '~'));
	return v;
}

static bool
cfg_is_missing(const yaml_node_t *n)
{
	return n->type == YAML_SCALAR_NODE && cfg_scalar_of(n).missing;
}

static int cfg_walk_map(struct cfg_ctx *x, const yaml_node_t *map,
			const struct cfg_keys *t, char *item);

/* Keys a mapping of an item must have, reported on the item's line. */
static int
cfg_required(struct cfg_ctx *x, const struct cfg_keys *t, char *item)
{
	const uint32_t *origin = (const uint32_t *)(item + t->origin_off);
	uint32_t line;

	memcpy(&line, item + t->line_off, sizeof(line));
	for (size_t i = 0; i < t->n; i++)
		if (t->keys[i].required && !origin[t->keys[i].slot])
			return cfg_fail_here(x, line, "missing key \"%s\"",
					     t->keys[i].name);
	return 0;
}

static int
cfg_walk_sink(struct cfg_ctx *x, const struct cfg_key *k, char *item,
	      const yaml_node_t *key, const yaml_node_t *val)
{
	struct sluiced_sink_config *s = (void *)(item + k->off);
	int r;

	if (val->type != YAML_MAPPING_NODE)
		return cfg_fail_here(x, cfg_line(val),
				     "expected a mapping, found %s",
				     cfg_is_missing(val) ? "nothing"
							 : cfg_node_noun(val));
	cfg_sink_init(s);
	s->line_ = cfg_line(key);
	r = cfg_walk_map(x, val, &cfg_sink_table, (char *)s);
	if (!r)
		r = cfg_required(x, &cfg_sink_table, (char *)s);
	if (!r && k->flag_off != SIZE_MAX)
		*(bool *)(item + k->flag_off) = true;
	return r;
}

/* A list of items replaces the defaults whole. */
static int
cfg_walk_list(struct cfg_ctx *x, const struct cfg_list *l,
	      const yaml_node_t *val)
{
	const struct cfg_keys *t = l->keys;
	char *base = (char *)x->c;
	yaml_node_item_t *items;
	size_t n;
	char *arr;
	int r = 0;

	if (val->type != YAML_SEQUENCE_NODE)
		return cfg_fail_here(x, cfg_line(val),
				     "expected a list, found %s",
				     cfg_is_missing(val) ? "nothing"
							 : cfg_node_noun(val));
	items = val->data.sequence.items.start;
	n = (size_t)(val->data.sequence.items.top - items);
	if (n == 0 && !l->empty_ok)
		return cfg_fail_here(x, cfg_line(val),
				     "no %ss (leave the key out for the "
				     "default)", l->noun);
	if (n > l->max)
		return cfg_fail_here(x, cfg_line(val),
				     "%zu %ss, more than the %zu allowed", n,
				     l->noun, l->max);
	arr = calloc(n ? n : 1, l->item_size);
	if (!arr)
		return cfg_nomem(x);
	free(*(void **)(base + l->array_off));
	memcpy(base + l->array_off, &arr, sizeof(arr));
	memset(base + l->count_off, 0, sizeof(size_t));

	for (size_t i = 0; i < n && !r; i++) {
		yaml_node_t *node = yaml_document_get_node(x->doc, items[i]);
		char *item = arr + i * l->item_size;
		uint32_t line = cfg_line(node);
		size_t old = cfg_path_index(x, i);

		t->init(item);
		memcpy(item + t->line_off, &line, sizeof(line));
		if (node->type != YAML_MAPPING_NODE)
			r = cfg_fail_here(x, line,
					  "expected a mapping, found %s",
					  cfg_is_missing(node)
						  ? "nothing"
						  : cfg_node_noun(node));
		else
			r = cfg_walk_map(x, node, t, item);
		if (!r)
			r = cfg_required(x, t, item);
		cfg_path_pop(x, old);
		memcpy(base + l->count_off, &(size_t){i + 1}, sizeof(size_t));
	}
	return r;
}

static int
cfg_walk_value(struct cfg_ctx *x, const struct cfg_key *k, char *item,
	       uint32_t *origin, const yaml_node_t *key,
	       const yaml_node_t *val)
{
	struct cfg_scalar v;

	switch (k->kind) {
	case CFG_MAP:
		/* A section with every key commented out reads as null. */
		if (cfg_is_missing(val))
			return 0;
		if (val->type != YAML_MAPPING_NODE)
			return cfg_fail_here(x, cfg_line(val),
					     "expected a mapping, found %s",
					     cfg_node_noun(val));
		return cfg_walk_map(x, val, k->sub, item);
	case CFG_SINK:
		origin[k->slot] = cfg_line(key);
		return cfg_walk_sink(x, k, item, key, val);
	case CFG_LIST:
		origin[k->slot] = cfg_line(key);
		return cfg_walk_list(x, k->list, val);
	case CFG_BOOL:
	case CFG_UINT:
	case CFG_INT:
	case CFG_SIZE:
	case CFG_DURATION:
	case CFG_RATE:
	case CFG_STRING:
	case CFG_ENUM:
		break;
	}
	if (val->type != YAML_SCALAR_NODE)
		return cfg_fail_here(x, cfg_line(val), "expected %s, found %s",
				     cfg_kind_noun(k), cfg_node_noun(val));
	v = cfg_scalar_of(val);
	/* An empty value has no place of its own: libyaml marks it where
	 * the next token starts, often a line further down. */
	if (v.missing)
		v.origin = cfg_line(key);
	return cfg_apply(x, k, item, origin, &v);
}

static int
cfg_walk_map(struct cfg_ctx *x, const yaml_node_t *map,
	     const struct cfg_keys *t, char *item)
{
	uint32_t *origin = (uint32_t *)(item + t->origin_off);
	uint32_t seen[CFG_MAX_KEYS] = {0};
	yaml_node_pair_t *p;

	for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *key = yaml_document_get_node(x->doc, p->key);
		yaml_node_t *val = yaml_document_get_node(x->doc, p->value);
		const struct cfg_key *k;
		const char *name;
		size_t len, old;
		int r;

		if (!key || !val)
			return cfg_fail_here(x, cfg_line(map),
					     "malformed mapping");
		if (key->type != YAML_SCALAR_NODE)
			return cfg_fail_here(x, cfg_line(key),
					     "a key must be a plain name, "
					     "found %s", cfg_node_noun(key));
		name = (const char *)key->data.scalar.value;
		len = key->data.scalar.length;
		old = cfg_path_push(x, name, len);
		k = cfg_lookup(t, name, len);
		if (!k) {
			r = cfg_unknown_key(x, cfg_line(key), t, name, len);
		} else if (seen[k - t->keys]) {
			r = cfg_fail_here(x, cfg_line(key),
					  "given twice (first on line %u)",
					  seen[k - t->keys]);
		} else {
			seen[k - t->keys] = cfg_line(key);
			r = cfg_walk_value(x, k, item, origin, key, val);
		}
		if (r)
			return r;
		cfg_path_pop(x, old);
	}
	return 0;
}

/* ---- reading YAML ---- */

/* The line of byte @offset of @text, for reader errors (no mark). */
static uint32_t
cfg_offset_line(const char *text, size_t len, size_t offset)
{
	uint32_t line = 1;

	for (size_t i = 0; i < offset && i < len; i++)
		line += text[i] == '\n';
	return line;
}

static int
cfg_yaml_error(struct cfg_ctx *x, const yaml_parser_t *p, const char *text,
	       size_t len)
{
	uint32_t line;

	if (p->error == YAML_MEMORY_ERROR)
		return cfg_nomem(x);
	if (p->error == YAML_READER_ERROR)
		line = cfg_offset_line(text, len, p->problem_offset);
	else
		line = (uint32_t)p->problem_mark.line + 1;
	if (p->context)
		return cfg_fail(x->c, x->err, x->errlen, line, "",
				"syntax error: %s (%s on line %u)",
				p->problem ? p->problem : "unknown",
				p->context, (unsigned)p->context_mark.line + 1);
	return cfg_fail(x->c, x->err, x->errlen, line, "",
			"syntax error: %s", p->problem ? p->problem : "unknown");
}

/*
 * The first pass: syntax errors, aliases and second documents, reported
 * at their own lines.
 */
static int
cfg_yaml_scan(struct cfg_ctx *x, const char *text, size_t len)
{
	yaml_parser_t p;
	unsigned docs = 0;
	int r = 0;

	if (!yaml_parser_initialize(&p))
		return cfg_nomem(x);
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	while (!r) {
		yaml_event_t ev;
		yaml_event_type_t type;
		uint32_t line;

		if (!yaml_parser_parse(&p, &ev)) {
			r = cfg_yaml_error(x, &p, text, len);
			break;
		}
		type = ev.type;
		line = (uint32_t)ev.start_mark.line + 1;
		yaml_event_delete(&ev);
		if (type == YAML_ALIAS_EVENT)
			r = cfg_fail(x->c, x->err, x->errlen, line, "",
				     "YAML aliases are not supported: write "
				     "the value out");
		else if (type == YAML_DOCUMENT_START_EVENT && ++docs > 1)
			r = cfg_fail(x->c, x->err, x->errlen, line, "",
				     "a second YAML document: the file must "
				     "hold one");
		else if (type == YAML_STREAM_END_EVENT)
			break;
	}
	yaml_parser_delete(&p);
	return r;
}

static int
cfg_yaml_walk(struct cfg_ctx *x, const char *text, size_t len)
{
	yaml_parser_t p;
	yaml_document_t doc;
	yaml_node_t *root;
	int r = 0;

	if (!yaml_parser_initialize(&p))
		return cfg_nomem(x);
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	if (!yaml_parser_load(&p, &doc)) {
		r = cfg_yaml_error(x, &p, text, len);
		yaml_parser_delete(&p);
		return r;
	}
	x->doc = &doc;
	root = yaml_document_get_root_node(&doc);
	if (root && !cfg_is_missing(root)) {
		if (root->type != YAML_MAPPING_NODE)
			r = cfg_fail(x->c, x->err, x->errlen, cfg_line(root),
				     "", "the top level must be a mapping of "
				     "sections, found %s", cfg_node_noun(root));
		else
			r = cfg_walk_map(x, root, &cfg_top_table,
					 (char *)x->c);
	}
	x->doc = NULL;
	yaml_document_delete(&doc);
	yaml_parser_delete(&p);
	return r;
}

/* ---- defaults, parse, load, free ---- */

int
sluiced_config_defaults(struct sluiced_config *c)
{
	struct sluiced_input_config *in;
	struct sluiced_route_config *rc;

	memset(c, 0, sizeof(*c));
	sl_runtime_opts_init(&c->runtime);
	/* io/proc.c's defaults, spelled out so that --check can show them. */
	c->io.buf_size = 4096;
	c->io.bufs_initial = 256;
	c->io.bufs_max = 4096;
	sl_wire_limits_default(&c->opts.limits);
	c->opts.max_malformed = 100;
	c->opts.shard_inbox = 4096;
	c->admin.addr = SL_ADMIN_ADDR_DEFAULT;
	c->admin.timeout_ns = SL_ADMIN_TIMEOUT_DEFAULT;
	c->admin.max_request = SL_ADMIN_MAX_REQUEST_DEFAULT;
	c->admin_enabled = true;
	c->drain_timeout_ns = 10 * SL_NSEC_PER_SEC;
	c->log_level = SLUICED_LOG_INFO;

	in = malloc(sizeof(*in));
	rc = malloc(sizeof(*rc));
	if (!in || !rc) {
		free(in);
		free(rc);
		return -ENOMEM;
	}
	cfg_input_init(in);
	in->in.name = "tcp";
	in->in.addr = "127.0.0.1:7400";
	cfg_route_init(rc);
	rc->route.name = "default";
	rc->route.is_default = true;
	c->inputs = in;
	c->ninputs = 1;
	c->routes = rc;
	c->nroutes = 1;
	return 0;
}

void
sluiced_config_free(struct sluiced_config *c)
{
	struct sluiced_string_ *s = c->strings_, *next;

	for (; s; s = next) {
		next = s->next;
		free(s);
	}
	free(c->inputs);
	free(c->routes);
	memset(c, 0, sizeof(*c));
}

int
sluiced_config_parse(const char *text, size_t len, const char *filename,
		     struct sluiced_config *c, char *err, size_t errlen)
{
	struct cfg_ctx x = {.c = c, .err = err, .errlen = errlen};
	int r;

	if (errlen)
		err[0] = '\0';
	r = sluiced_config_defaults(c);
	if (r)
		return cfg_nomem(&x);
	if (!filename)
		filename = "<config>";
	c->file = cfg_strdup(c, filename, strlen(filename));
	r = c->file ? 0 : cfg_nomem(&x);
	if (!r)
		r = cfg_yaml_scan(&x, text, len);
	if (!r)
		r = cfg_yaml_walk(&x, text, len);
	if (!r)
		r = sluiced_config_check(c, err, errlen);
	if (r)
		sluiced_config_free(c);
	return r;
}

int
sluiced_config_load(const char *path, struct sluiced_config *c, char *err,
		    size_t errlen)
{
	FILE *f = fopen(path, "rb");
	char *text = NULL;
	size_t len = 0;
	int r = 0;

	memset(c, 0, sizeof(*c));
	if (!f) {
		r = -errno;
		goto fail;
	}
	text = malloc(CFG_FILE_MAX + 1);
	if (!text) {
		r = -ENOMEM;
		goto fail;
	}
	len = fread(text, 1, CFG_FILE_MAX + 1, f);
	if (ferror(f))
		r = -EIO;
	else if (len > CFG_FILE_MAX)
		r = -EFBIG;
	if (r)
		goto fail;
	fclose(f);
	r = sluiced_config_parse(text, len, path, c, err, errlen);
	free(text);
	return r;
fail:
	if (f)
		fclose(f);
	free(text);
	if (errlen)
		snprintf(err, errlen, "%s: cannot read: %s", path,
			 r == -EFBIG ? "larger than 16 MiB" : sl_strerror(r));
	return r;
}

int
sluiced_config_read(const char *path, const char *const *sets, size_t nsets,
		    struct sluiced_config *c, char *err, size_t errlen)
{
	int r;

	if (path) {
		r = sluiced_config_load(path, c, err, errlen);
	} else {
		r = sluiced_config_defaults(c);
		if (r && errlen)
			snprintf(err, errlen, "out of memory");
	}
	for (size_t i = 0; !r && i < nsets; i++)
		r = sluiced_config_set(c, sets[i], err, errlen);
	if (!r)
		r = sluiced_config_check(c, err, errlen);
	if (r)
		sluiced_config_free(c);
	return r;
}

/* ---- overrides ---- */

/* The name at *@p: letters, digits and '_'. */
static size_t
cfg_set_name(const char *p, const char *end)
{
	size_t n = 0;

	while (p + n < end &&
	       ((p[n] >= 'a' && p[n] <= 'z') || (p[n] >= 'A' && p[n] <= 'Z') ||
		(p[n] >= '0' && p[n] <= '9') || p[n] == '_'))
		n++;
	return n;
}

/* "[N]" at *@p: the index, or -1. */
static long
cfg_set_index(const char **p, const char *end)
{
	const char *s = *p + 1;
	long v = 0;

	if (*p >= end || **p != '[' || s >= end || *s < '0' || *s > '9')
		return -1;
	for (; s < end && *s >= '0' && *s <= '9' && v < 100000000; s++)
		v = v * 10 + (*s - '0');
	if (s >= end || *s != ']')
		return -1;
	*p = s + 1;
	return v;
}

/* Where an override's key path leads: a leaf key in an item. */
struct cfg_target {
	const struct cfg_key *key;
	char *item;
	uint32_t *origin;
	/* A dead-letter sink the override brings into being. */
	struct sluiced_route_config *new_dead_letter;
};

static int
cfg_set_bad_path(struct cfg_ctx *x, const char *what)
{
	return cfg_fail(x->c, x->err, x->errlen, SLUICED_ORIGIN_SET, "",
			"bad key path \"%s\": %s", x->path, what);
}

/* Into a list: "[N]" and the item it names. */
static int
cfg_set_enter_list(struct cfg_ctx *x, const struct cfg_list *l,
		   const char **p, const char *end, char **item)
{
	char *base = (char *)x->c;
	char *arr;
	size_t n;
	long i;

	memcpy(&arr, base + l->array_off, sizeof(arr));
	memcpy(&n, base + l->count_off, sizeof(n));
	i = cfg_set_index(p, end);
	if (i < 0)
		return cfg_fail_here(x, SLUICED_ORIGIN_SET,
				     "expected an index, e.g. %s[0]", x->path);
	cfg_path_index(x, (size_t)i);
	if ((size_t)i >= n)
		return cfg_fail_here(x, SLUICED_ORIGIN_SET,
				     "no such %s (there %s %zu)", l->noun,
				     n == 1 ? "is" : "are", n);
	*item = arr + (size_t)i * l->item_size;
	return 0;
}

static int
cfg_set_resolve(struct cfg_ctx *x, const char *p, const char *end,
		struct cfg_target *out)
{
	const struct cfg_keys *t = &cfg_top_table;
	char *item = (char *)x->c;

	for (;;) {
		size_t n = cfg_set_name(p, end);
		const struct cfg_key *k;
		int r;

		if (n == 0) {
			snprintf(x->path, sizeof(x->path), "%.*s",
				 (int)(end - p), p);
			return cfg_set_bad_path(x, "expected a key name");
		}
		cfg_path_push(x, p, n);
		k = cfg_lookup(t, p, n);
		if (!k)
			return cfg_unknown_key(x, SLUICED_ORIGIN_SET, t, p, n);
		p += n;
		if (k->kind == CFG_LIST) {
			r = cfg_set_enter_list(x, k->list, &p, end, &item);
			if (r)
				return r;
			t = k->list->keys;
		} else if (k->kind == CFG_SINK) {
			struct sluiced_route_config *rc = (void *)item;

			if (k->flag_off != SIZE_MAX && !rc->has_dead_letter)
				out->new_dead_letter = rc;
			item += k->off;
			t = k->sub;
		} else if (k->kind == CFG_MAP) {
			t = k->sub;
		} else if (p == end) {
			out->key = k;
			out->item = item;
			out->origin = (uint32_t *)(item + t->origin_off);
			return 0;
		} else {
			return cfg_fail_here(x, SLUICED_ORIGIN_SET,
					     "a single value has no keys "
					     "under it");
		}
		if (p == end)
			return cfg_fail_here(x, SLUICED_ORIGIN_SET,
					     "not a single value: set one of "
					     "its keys, e.g. %s.%s",
					     x->path, t->keys[0].name);
		if (*p != '.')
			return cfg_set_bad_path(x, "expected '.'");
		p++;
	}
}

int
sluiced_config_set(struct sluiced_config *c, const char *assignment,
		   char *err, size_t errlen)
{
	struct cfg_ctx x = {.c = c, .err = err, .errlen = errlen};
	const char *eq = strchr(assignment, '=');
	struct cfg_target t = {0};
	struct sluiced_sink_config saved;
	struct cfg_scalar v;
	char q[CFG_QUOTE_BUF];
	int r;

	if (errlen)
		err[0] = '\0';
	if (!eq)
		return cfg_fail(c, err, errlen, SLUICED_ORIGIN_SET, "",
				"\"%s\": expected KEY=VALUE",
				cfg_quote(assignment, strlen(assignment), q,
					  sizeof(q)));
	r = cfg_set_resolve(&x, assignment, eq, &t);
	if (r)
		return r;
	if (t.new_dead_letter) {
		saved = t.new_dead_letter->dead_letter;
		cfg_sink_init(&t.new_dead_letter->dead_letter);
	}
	v = (struct cfg_scalar){.s = eq + 1, .len = strlen(eq + 1),
				.origin = SLUICED_ORIGIN_SET};
	r = cfg_apply(&x, t.key, t.item, t.origin, &v);
	if (t.new_dead_letter) {
		if (r)
			t.new_dead_letter->dead_letter = saved;
		else
			t.new_dead_letter->has_dead_letter = true;
	}
	return r;
}

/* ---- checks across keys ---- */

/* Fill what follows from other keys: fold policies, derived limits. */
static void
cfg_derive(struct sluiced_config *c)
{
	struct sl_wire_limits *l = &c->opts.limits;
	uint64_t fields = (uint64_t)l->kind_max + l->key_max + l->payload_max;

	/* As sl_wire_limits_default() sizes them: any event within the
	 * field limits fits, even with every byte escaped as \xHH. */
	if (!c->origin_[TOP_LINE_MAX])
		l->line_max = (size_t)(4 * fields + 4);
	if (!c->origin_[TOP_FRAME_MAX])
		l->frame_max = (size_t)(SL_FRAME_HEADER +
					CFG_FRAME_EVENT_HEAD + fields);

	/* "" is no token and "" or "off" no endpoint: say so in the form
	 * sl_admin_start() takes. */
	if (c->admin.token && !c->admin.token[0])
		c->admin.token = NULL;
	c->admin_enabled = c->admin.addr && c->admin.addr[0] &&
			   strcmp(c->admin.addr, "off") != 0;

	for (size_t i = 0; i < c->nroutes; i++) {
		struct sluiced_route_config *rc = &c->routes[i];
		struct sl_foldq_opts *f = &rc->route.fold;

		f->merge = NULL;
		switch (rc->fold) {
		case SLUICED_FOLD_LATEST:
			f->policy = SL_FOLD_LATEST;
			break;
		case SLUICED_FOLD_SUM:
			f->policy = SL_FOLD_MERGE;
			f->merge = sluiced_merge_sum;
			break;
		case SLUICED_FOLD_MAX:
			f->policy = SL_FOLD_MERGE;
			f->merge = sluiced_merge_max;
			break;
		case SLUICED_FOLD_KEEP_ALL:
			f->policy = SL_FOLD_KEEP_ALL;
			break;
		}
	}
}

static bool
cfg_str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

static bool
cfg_sink_equal(const struct sluiced_sink_config *a,
	       const struct sluiced_sink_config *b)
{
	return a->type == b->type && cfg_str_eq(a->path, b->path) &&
	       a->sync == b->sync && a->rotate_bytes == b->rotate_bytes &&
	       a->frames == b->frames && cfg_str_eq(a->addr, b->addr) &&
	       a->conns == b->conns && a->timeout_ns == b->timeout_ns &&
	       cfg_str_eq(a->plugin, b->plugin) &&
	       cfg_str_eq(a->config, b->config);
}

/*
 * Where a message about a whole sink points: where its type was chosen
 * (the type decides what else it needs), else the key holding it.
 */
static uint32_t
cfg_sink_origin(const struct sluiced_sink_config *s)
{
	return s->origin_[SINK_TYPE] ? s->origin_[SINK_TYPE] : s->line_;
}

static int
cfg_check_sink(const struct sluiced_config *c,
	       const struct sluiced_sink_config *s, const char *path,
	       char *err, size_t errlen)
{
	static const unsigned needs[] = {
		[SLUICED_SINK_FILE] = SINK_PATH,
		[SLUICED_SINK_TCP] = SINK_ADDR,
		[SLUICED_SINK_PLUGIN] = SINK_PLUGIN,
	};
	const char *type = cfg_sink_words[s->type];
	char kpath[300];

	for (size_t i = 0; i < SL_ARRAY_SIZE(cfg_sink_keys); i++) {
		const struct cfg_key *k = &cfg_sink_keys[i];

		snprintf(kpath, sizeof(kpath), "%s.%s", path, k->name);
		if (s->origin_[k->slot] && !(k->sinks & SINK_USE(s->type)))
			return cfg_fail(c, err, errlen, s->origin_[k->slot],
					kpath, "not used by a %s sink", type);
	}
	if (s->type < SL_ARRAY_SIZE(needs) && needs[s->type] &&
	    !s->origin_[needs[s->type]])
		return cfg_fail(c, err, errlen, cfg_sink_origin(s), path,
				"missing key \"%s\" (a %s sink needs it)",
				cfg_sink_keys[needs[s->type]].name, type);
	if (s->type == SLUICED_SINK_TCP) {
		struct sl_addr a;

		snprintf(kpath, sizeof(kpath), "%s.addr", path);
		if (sl_addr_parse(s->addr, &a) == 0 &&
		    a.u.sa.sa_family != AF_UNIX && sl_addr_port(&a) == 0)
			return cfg_fail(c, err, errlen, s->origin_[SINK_ADDR],
					kpath, "port 0 cannot be connected to");
	}
	return 0;
}

static int
cfg_check_inputs(const struct sluiced_config *c, char *err, size_t errlen)
{
	char path[64];

	for (size_t i = 0; i < c->ninputs; i++) {
		const struct sluiced_input_config *in = &c->inputs[i];
		bool unix_type = in->in.type == SLUICE_INPUT_UNIX ||
				 in->in.type == SLUICE_INPUT_UNIX_DGRAM;
		struct sl_addr a;

		for (size_t j = 0; j < i; j++)
			if (!strcmp(c->inputs[j].in.name, in->in.name)) {
				snprintf(path, sizeof(path), "inputs[%zu].name",
					 i);
				return cfg_fail(c, err, errlen,
						in->origin_[INPUT_NAME], path,
						"duplicate input name \"%s\" "
						"(inputs[%zu] has it)",
						in->in.name, j);
			}
		snprintf(path, sizeof(path), "inputs[%zu].addr", i);
		if (sl_addr_parse(in->in.addr, &a))
			return cfg_fail(c, err, errlen, in->origin_[INPUT_ADDR],
					path, "bad address");
		if (unix_type && a.u.sa.sa_family != AF_UNIX)
			return cfg_fail(c, err, errlen, in->origin_[INPUT_ADDR],
					path,
					"a %s input needs a socket path "
					"(/path, @name or unix:/path)",
					cfg_input_words[in->in.type]);
		if (!unix_type && a.u.sa.sa_family == AF_UNIX)
			return cfg_fail(c, err, errlen, in->origin_[INPUT_ADDR],
					path,
					"a %s input needs HOST:PORT, not a "
					"socket path",
					cfg_input_words[in->in.type]);
		if (in->in.max_buffered &&
		    (in->in.type == SLUICE_INPUT_UDP ||
		     in->in.type == SLUICE_INPUT_UNIX_DGRAM)) {
			snprintf(path, sizeof(path), "inputs[%zu].max_buffered",
				 i);
			return cfg_fail(c, err, errlen,
					in->origin_[INPUT_MAX_BUFFERED], path,
					"only stream inputs (tcp, unix) hold "
					"bytes per connection");
		}
	}
	return 0;
}

bool
sluiced_addr_local(const char *addr)
{
	struct sl_addr a;

	if (!addr || sl_addr_parse(addr, &a))
		return false;
	switch (a.u.sa.sa_family) {
	case AF_UNIX:
		/* Reached only through the file system (or, for an abstract
		 * name, from this network namespace). */
		return true;
	case AF_INET:
		return (ntohl(a.u.in4.sin_addr.s_addr) >> 24) == 127;
	case AF_INET6:
		return IN6_IS_ADDR_LOOPBACK(&a.u.in6.sin6_addr) ||
		       (IN6_IS_ADDR_V4MAPPED(&a.u.in6.sin6_addr) &&
			a.u.in6.sin6_addr.s6_addr[12] == 127);
	default:
		return false;
	}
}

/*
 * An admin endpoint anyone on the network can reach must want a token:
 * without one, any host could reload the routes and read the metrics.
 */
static int
cfg_check_admin(const struct sluiced_config *c, char *err, size_t errlen)
{
	if (!c->admin_enabled || c->admin.token ||
	    sluiced_addr_local(c->admin.addr))
		return 0;
	return cfg_fail(c, err, errlen, c->origin_[TOP_ADMIN_ADDR],
			"admin.addr",
			"\"%s\" is not a loopback address and admin.token is "
			"not set: set a token, or listen on 127.0.0.1 or a "
			"Unix socket", c->admin.addr);
}

/* Runtime and io keys that must agree with each other. */
static int
cfg_check_runtime(const struct sluiced_config *c, char *err, size_t errlen)
{
	const struct sl_runtime_opts *o = &c->runtime;

	if (o->cq_entries && o->cq_entries < o->ring_entries)
		return cfg_fail(c, err, errlen, c->origin_[TOP_CQ_ENTRIES],
				"runtime.cq_entries",
				"%u is below runtime.ring_entries (%u): every "
				"submission needs room for its completion",
				o->cq_entries, o->ring_entries);
	if (!o->sqpoll && c->origin_[TOP_SQPOLL_CPU])
		return cfg_fail(c, err, errlen, c->origin_[TOP_SQPOLL_CPU],
				"runtime.sqpoll_cpu",
				"set, but runtime.sqpoll is false");
	if (!o->sqpoll && c->origin_[TOP_SQPOLL_IDLE])
		return cfg_fail(c, err, errlen, c->origin_[TOP_SQPOLL_IDLE],
				"runtime.sqpoll_idle_ms",
				"set, but runtime.sqpoll is false");
	/* Blame the key that was given: a lowered maximum against the
	 * default start, or a start raised past the maximum. */
	if (c->io.bufs_initial > c->io.bufs_max && !c->origin_[TOP_IO_BUFS])
		return cfg_fail(c, err, errlen, c->origin_[TOP_IO_BUFS_MAX],
				"io.buffers_max",
				"%u is below io.buffers (%u)", c->io.bufs_max,
				c->io.bufs_initial);
	if (c->io.bufs_initial > c->io.bufs_max)
		return cfg_fail(c, err, errlen, c->origin_[TOP_IO_BUFS],
				"io.buffers",
				"%u is above io.buffers_max (%u)",
				c->io.bufs_initial, c->io.bufs_max);
	return 0;
}

/* The pattern of one route against its match and the limits. */
static int
cfg_check_pattern(const struct sluiced_config *c,
		  const struct sluiced_route_config *rc, size_t i, char *err,
		  size_t errlen)
{
	const struct sluice_route *r = &rc->route;
	const char *match = cfg_match_words[r->match];
	uint32_t kind_origin = rc->origin_[ROUTE_KIND];
	char path[64], kpath[64];

	snprintf(path, sizeof(path), "routes[%zu]", i);
	snprintf(kpath, sizeof(kpath), "routes[%zu].kind", i);
	if (r->is_default && r->kind[0])
		return cfg_fail(c, err, errlen, kind_origin, kpath,
				"the default route takes no pattern (it gets "
				"every event no other route matches)");
	if (r->is_default && r->key_prefix[0]) {
		snprintf(kpath, sizeof(kpath), "routes[%zu].key_prefix", i);
		return cfg_fail(c, err, errlen,
				rc->origin_[ROUTE_KEY_PREFIX], kpath,
				"the default route takes no key prefix");
	}
	if (r->is_default)
		return 0;
	if (r->match == SL_MATCH_ANY && r->kind[0])
		return cfg_fail(c, err, errlen, kind_origin, kpath,
				"match any takes no pattern (set match to "
				"exact, prefix or glob)");
	if (r->match != SL_MATCH_ANY && !r->kind[0] && kind_origin)
		return cfg_fail(c, err, errlen, kind_origin, kpath,
				"the pattern is empty (match %s needs one)",
				match);
	if (r->match != SL_MATCH_ANY && !r->kind[0])
		return cfg_fail(c, err, errlen, rc->line_, path,
				"missing key \"kind\" (match %s needs a "
				"pattern)", match);
	if (r->match != SL_MATCH_GLOB &&
	    strlen(r->kind) > c->opts.limits.kind_max)
		return cfg_fail(c, err, errlen, kind_origin, kpath,
				"the pattern is longer than limits.kind_max "
				"(%zu): it can never match",
				c->opts.limits.kind_max);
	if (strlen(r->key_prefix) > c->opts.limits.key_max) {
		snprintf(kpath, sizeof(kpath), "routes[%zu].key_prefix", i);
		return cfg_fail(c, err, errlen,
				rc->origin_[ROUTE_KEY_PREFIX], kpath,
				"longer than limits.key_max (%zu): it can "
				"never match", c->opts.limits.key_max);
	}
	return 0;
}

/* A glob's syntax, by the route table's own check (one rule alone). */
static int
cfg_check_glob(const struct sluiced_config *c,
	       const struct sluiced_route_config *rc, size_t i, char *err,
	       size_t errlen)
{
	struct sl_route_rule rule = {
		.name = rc->route.name,
		.how = rc->route.match,
		.kind = rc->route.kind,
		.key_prefix = rc->route.key_prefix,
		.is_default = rc->route.is_default,
	};
	struct sl_route_table *t;
	char why[256], prefix[CFG_NAME_MAX + 16], kpath[64];
	const char *msg = why;
	int n;

	why[0] = '\0';
	t = sl_route_table_build(&rule, 1, why, sizeof(why));
	if (t) {
		sl_route_table_free(t);
		return 0;
	}
	if (!why[0])
		return -ENOMEM;
	/* The table names the route; the key path already does. */
	n = snprintf(prefix, sizeof(prefix), "route \"%s\": ", rule.name);
	if (n > 0 && !strncmp(why, prefix, (size_t)n))
		msg += n;
	snprintf(kpath, sizeof(kpath), "routes[%zu].kind", i);
	return cfg_fail(c, err, errlen, rc->origin_[ROUTE_KIND], kpath, "%s",
			msg);
}

static int
cfg_check_route(const struct sluiced_config *c, size_t i, char *err,
		size_t errlen)
{
	const struct sluiced_route_config *rc = &c->routes[i];
	const struct sluice_route *r = &rc->route;
	char path[64];
	int e;

	for (size_t j = 0; j < i; j++) {
		if (strcmp(c->routes[j].route.name, r->name))
			continue;
		snprintf(path, sizeof(path), "routes[%zu].name", i);
		return cfg_fail(c, err, errlen, rc->origin_[ROUTE_NAME], path,
				"duplicate route name \"%s\" (routes[%zu] has "
				"it)", r->name, j);
	}
	for (size_t j = 0; r->is_default && j < i; j++) {
		if (!c->routes[j].route.is_default)
			continue;
		snprintf(path, sizeof(path), "routes[%zu].default", i);
		return cfg_fail(c, err, errlen, rc->origin_[ROUTE_DEFAULT],
				path,
				"a second default route (routes[%zu], \"%s\", "
				"is one already)",
				j, c->routes[j].route.name);
	}
	e = cfg_check_pattern(c, rc, i, err, errlen);
	if (!e && r->match == SL_MATCH_GLOB && !r->is_default)
		e = cfg_check_glob(c, rc, i, err, errlen);
	if (e)
		return e;
	if (rc->origin_[ROUTE_KEEP_MAX] && rc->fold != SLUICED_FOLD_KEEP_ALL) {
		snprintf(path, sizeof(path), "routes[%zu].keep_max", i);
		return cfg_fail(c, err, errlen, rc->origin_[ROUTE_KEEP_MAX],
				path, "only used with fold keep-all (fold is "
				"%s)", cfg_fold_words[rc->fold]);
	}
	if (r->fold.backoff_cap_ns < r->fold.backoff_base_ns) {
		char cap[32], base[32];

		snprintf(path, sizeof(path), "routes[%zu].backoff.cap", i);
		return cfg_fail(c, err, errlen,
				rc->origin_[ROUTE_BACKOFF_CAP]
					? rc->origin_[ROUTE_BACKOFF_CAP]
					: rc->origin_[ROUTE_BACKOFF_BASE],
				path, "%s is below backoff.base (%s)",
				cfg_duration_text(r->fold.backoff_cap_ns, cap,
						  sizeof(cap)),
				cfg_duration_text(r->fold.backoff_base_ns,
						  base, sizeof(base)));
	}
	snprintf(path, sizeof(path), "routes[%zu].sink", i);
	e = cfg_check_sink(c, &rc->sink, path, err, errlen);
	if (!e && rc->has_dead_letter) {
		snprintf(path, sizeof(path), "routes[%zu].dead_letter", i);
		e = cfg_check_sink(c, &rc->dead_letter, path, err, errlen);
	}
	return e;
}

/* Sink @k of all sinks in order: each route's sink, then its dead letter. */
static const struct sluiced_sink_config *
cfg_sink_at(const struct sluiced_config *c, size_t k, char *path, size_t len)
{
	const struct sluiced_route_config *rc = &c->routes[k / 2];

	if (k % 2 && !rc->has_dead_letter)
		return NULL;
	snprintf(path, len, "routes[%zu].%s", k / 2,
		 k % 2 ? "dead_letter" : "sink");
	return k % 2 ? &rc->dead_letter : &rc->sink;
}

/* Two sinks writing one file would interleave and rotate each other's
 * output; identical dead letters are one shared sink, so they may. */
static int
cfg_check_files(const struct sluiced_config *c, char *err, size_t errlen)
{
	char pa[64], pb[64], kpath[80];

	for (size_t b = 0; b < 2 * c->nroutes; b++) {
		const struct sluiced_sink_config *sb, *sa;

		sb = cfg_sink_at(c, b, pb, sizeof(pb));
		if (!sb || sb->type != SLUICED_SINK_FILE)
			continue;
		for (size_t a = 0; a < b; a++) {
			sa = cfg_sink_at(c, a, pa, sizeof(pa));
			if (!sa || sa->type != SLUICED_SINK_FILE ||
			    strcmp(sa->path, sb->path))
				continue;
			if (a % 2 && b % 2 && cfg_sink_equal(sa, sb))
				continue;
			snprintf(kpath, sizeof(kpath), "%s.path", pb);
			return cfg_fail(c, err, errlen, sb->origin_[SINK_PATH],
					kpath,
					"the file \"%s\" is also written by %s",
					sb->path, pa);
		}
	}
	return 0;
}

int
sluiced_config_check(struct sluiced_config *c, char *err, size_t errlen)
{
	int r;

	if (errlen)
		err[0] = '\0';
	cfg_derive(c);
	r = cfg_check_runtime(c, err, errlen);
	if (!r)
		r = cfg_check_admin(c, err, errlen);
	if (!r)
		r = cfg_check_inputs(c, err, errlen);
	for (size_t i = 0; !r && i < c->nroutes; i++)
		r = cfg_check_route(c, i, err, errlen);
	if (!r)
		r = cfg_check_files(c, err, errlen);
	if (r == -ENOMEM && errlen)
		snprintf(err, errlen, "out of memory");
	return r;
}

/* ---- fold merges ---- */

/* A payload as a signed 64-bit decimal integer. */
static bool
cfg_payload_int64(const struct sl_event *e, int64_t *out)
{
	const char *p = sl_event_payload(e);
	size_t n = e->payload_len, i = 0;
	bool neg = false;
	uint64_t v = 0;

	if (n && (p[0] == '-' || p[0] == '+')) {
		neg = p[0] == '-';
		i = 1;
	}
	if (i == n || n - i > 19)
		return false;
	for (; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(p[i] - '0'); /* 19 digits fit */
	}
	if (v > (uint64_t)INT64_MAX + neg)
		return false;
	*out = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v)
		   : (int64_t)v;
	return true;
}

/* Keep @incoming, the newer, and let @pending go. */
static struct sl_event *
cfg_keep_newer(struct sl_event *pending, struct sl_event *incoming)
{
	sl_event_unref(pending);
	return incoming;
}

struct sl_event *
sluiced_merge_sum(struct sl_event *pending, struct sl_event *incoming,
		  void *arg)
{
	int64_t a, b, sum;
	struct sl_event *e;
	char buf[24];
	int n;

	(void)arg;
	if (!cfg_payload_int64(pending, &a) || !cfg_payload_int64(incoming, &b))
		return cfg_keep_newer(pending, incoming);
	if (__builtin_add_overflow(a, b, &sum))
		sum = b > 0 ? INT64_MAX : INT64_MIN;
	n = snprintf(buf, sizeof(buf), "%lld", (long long)sum);
	e = sl_event_new(sl_event_kind(incoming), incoming->kind_len,
			 sl_event_key(incoming), incoming->key_len, buf,
			 (size_t)n);
	if (!e)
		return cfg_keep_newer(pending, incoming);
	e->ts_ns = incoming->ts_ns;
	e->seq = incoming->seq;
	sl_event_unref(pending);
	sl_event_unref(incoming);
	return e;
}

struct sl_event *
sluiced_merge_max(struct sl_event *pending, struct sl_event *incoming,
		  void *arg)
{
	int64_t a, b;

	(void)arg;
	if (!cfg_payload_int64(pending, &a) ||
	    !cfg_payload_int64(incoming, &b) || b >= a)
		return cfg_keep_newer(pending, incoming);
	sl_event_unref(incoming);
	return pending;
}

/* ---- building the routes ---- */

static struct sluice_sink *
cfg_sink_build(const struct sluiced_sink_config *s)
{
	switch (s->type) {
	case SLUICED_SINK_NULL:
		return sluice_sink_null();
	case SLUICED_SINK_STDOUT:
		return sluice_sink_stdout();
	case SLUICED_SINK_FILE:
		return sluice_sink_file(&(struct sluice_file_sink_opts){
			.path = s->path,
			.sync = s->sync,
			.rotate_bytes = s->rotate_bytes,
			.frames = s->frames,
		});
	case SLUICED_SINK_TCP:
		return sluice_sink_tcp(&(struct sluice_tcp_sink_opts){
			.addr = s->addr,
			.conns = s->conns,
			.frames = s->frames,
			.timeout_ns = s->timeout_ns,
		});
	case SLUICED_SINK_PLUGIN:
		return sluice_sink_plugin(s->plugin, s->config);
	}
	errno = EINVAL;
	return NULL;
}

static int
cfg_sink_fail(const struct sluiced_config *c,
	      const struct sluiced_sink_config *s, const char *path, int e,
	      char *err, size_t errlen)
{
	const char *why = sl_strerror(-e);

	switch (s->type) {
	case SLUICED_SINK_FILE:
		cfg_fail(c, err, errlen, s->origin_[SINK_PATH], path,
			 "cannot open file \"%s\": %s", s->path, why);
		break;
	case SLUICED_SINK_PLUGIN:
		cfg_fail(c, err, errlen, s->origin_[SINK_PLUGIN], path,
			 "cannot load plug-in \"%s\": %s (the log says more)",
			 s->plugin, why);
		break;
	case SLUICED_SINK_NULL:
	case SLUICED_SINK_STDOUT:
	case SLUICED_SINK_TCP:
		cfg_fail(c, err, errlen, cfg_sink_origin(s), path,
			 "cannot create the %s sink: %s",
			 cfg_sink_words[s->type], why);
		break;
	}
	return -e;
}

/* The dead letter of route @i: a new sink, or a reference to an identical
 * earlier one. */
static struct sluice_sink *
cfg_dead_letter(const struct sluiced_config *c, struct sluice_route *routes,
		size_t i)
{
	const struct sluiced_sink_config *s = &c->routes[i].dead_letter;

	for (size_t j = 0; j < i; j++)
		if (c->routes[j].has_dead_letter &&
		    cfg_sink_equal(&c->routes[j].dead_letter, s)) {
			sl__sink_ref(routes[j].dead_letter);
			return routes[j].dead_letter;
		}
	return cfg_sink_build(s);
}

int
sluiced_config_routes(const struct sluiced_config *c,
		      struct sluice_route **out, size_t *n, char *err,
		      size_t errlen)
{
	struct sluice_route *routes = calloc(c->nroutes ? c->nroutes : 1,
					     sizeof(*routes));
	char path[64];
	size_t i;
	int e = 0;

	if (errlen)
		err[0] = '\0';
	if (!routes)
		goto nomem;
	for (i = 0; i < c->nroutes; i++) {
		const struct sluiced_route_config *rc = &c->routes[i];

		routes[i] = rc->route;
		errno = 0;
		routes[i].sink = cfg_sink_build(&rc->sink);
		if (!routes[i].sink) {
			e = errno ? errno : ENOMEM;
			snprintf(path, sizeof(path), "routes[%zu].sink", i);
			cfg_sink_fail(c, &rc->sink, path, -e, err, errlen);
			break;
		}
		if (!rc->has_dead_letter)
			continue;
		errno = 0;
		routes[i].dead_letter = cfg_dead_letter(c, routes, i);
		if (!routes[i].dead_letter) {
			e = errno ? errno : ENOMEM;
			snprintf(path, sizeof(path), "routes[%zu].dead_letter",
				 i);
			cfg_sink_fail(c, &rc->dead_letter, path, -e, err,
				      errlen);
			break;
		}
	}
	if (e) {
		sluiced_routes_discard(routes, i + 1);
		return -e;
	}
	*out = routes;
	*n = c->nroutes;
	return 0;
nomem:
	if (errlen)
		snprintf(err, errlen, "out of memory");
	return -ENOMEM;
}

void
sluiced_routes_free(struct sluice_route *routes, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sl__sink_unref(routes[i].dead_letter);
	free(routes);
}

void
sluiced_routes_discard(struct sluice_route *routes, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sl__sink_unref(routes[i].sink);
	sluiced_routes_free(routes, n);
}

int
sluiced_config_install(struct sluice *r, const struct sluiced_config *c,
		       char *err, size_t errlen)
{
	struct sluice_route *routes = NULL;
	size_t n = 0;
	int rc;

	rc = sluiced_config_routes(c, &routes, &n, err, errlen);
	if (rc)
		return rc;
	/* The router takes the sinks whether it installs the table or not;
	 * only the dead-letter references stay with us. */
	rc = sluice_set_routes(r, routes, n, err, errlen);
	sluiced_routes_free(routes, n);
	if (rc == -ESHUTDOWN && errlen)
		snprintf(err, errlen, "the router is shutting down");
	else if (rc == -ENOMEM && errlen && !err[0])
		snprintf(err, errlen, "out of memory");
	return rc;
}

/* ---- what a reload cannot change ---- */

static bool
cfg_runtime_equal(const struct sl_runtime_opts *a,
		  const struct sl_runtime_opts *b)
{
	return a->nprocs == b->nprocs && a->ring_entries == b->ring_entries &&
	       a->cq_entries == b->cq_entries && a->sqpoll == b->sqpoll &&
	       a->sqpoll_cpu == b->sqpoll_cpu &&
	       a->sqpoll_idle_ms == b->sqpoll_idle_ms &&
	       a->stack_size == b->stack_size && a->pin == b->pin &&
	       a->huge_pages == b->huge_pages &&
	       a->idle_spin_ns == b->idle_spin_ns &&
	       cfg_str_eq(a->cpus, b->cpus) && cfg_str_eq(a->numa, b->numa);
}

static bool
cfg_io_equal(const struct sl_io_opts *a, const struct sl_io_opts *b)
{
	return a->buf_size == b->buf_size &&
	       a->bufs_initial == b->bufs_initial &&
	       a->bufs_max == b->bufs_max;
}

static bool
cfg_limits_equal(const struct sluice_opts *a, const struct sluice_opts *b)
{
	const struct sl_wire_limits *la = &a->limits, *lb = &b->limits;

	return la->kind_max == lb->kind_max && la->key_max == lb->key_max &&
	       la->payload_max == lb->payload_max &&
	       la->line_max == lb->line_max &&
	       la->frame_max == lb->frame_max &&
	       a->max_malformed == b->max_malformed &&
	       a->shard_inbox == b->shard_inbox;
}

static bool
cfg_inputs_equal(const struct sluiced_config *a, const struct sluiced_config *b)
{
	if (a->ninputs != b->ninputs)
		return false;
	for (size_t i = 0; i < a->ninputs; i++) {
		const struct sluice_input *x = &a->inputs[i].in;
		const struct sluice_input *y = &b->inputs[i].in;

		if (!cfg_str_eq(x->name, y->name) || x->type != y->type ||
		    !cfg_str_eq(x->addr, y->addr) || x->frames != y->frames ||
		    x->max_conns != y->max_conns ||
		    x->max_buffered != y->max_buffered)
			return false;
	}
	return true;
}

static bool
cfg_admin_equal(const struct sluiced_config *a, const struct sluiced_config *b)
{
	if (a->admin_enabled != b->admin_enabled)
		return false;
	if (!a->admin_enabled)
		return true;
	return cfg_str_eq(a->admin.addr, b->admin.addr) &&
	       a->admin.timeout_ns == b->admin.timeout_ns &&
	       a->admin.max_request == b->admin.max_request &&
	       cfg_str_eq(a->admin.token, b->admin.token);
}

unsigned
sluiced_config_restart_keys(const struct sluiced_config *cur,
			    const struct sluiced_config *next, char *buf,
			    size_t len)
{
	const bool same[] = {
		cfg_runtime_equal(&cur->runtime, &next->runtime),
		cfg_io_equal(&cur->io, &next->io),
		cfg_limits_equal(&cur->opts, &next->opts),
		cfg_inputs_equal(cur, next),
		cfg_admin_equal(cur, next),
		cur->allow_root == next->allow_root,
	};
	static const char *const names[] = {"runtime", "io", "limits",
					    "inputs", "admin", "security"};
	unsigned n = 0;
	size_t o = 0;

	_Static_assert(SL_ARRAY_SIZE(same) == SL_ARRAY_SIZE(names),
		       "a name per section");
	if (len)
		buf[0] = '\0';
	for (size_t i = 0; i < SL_ARRAY_SIZE(names); i++) {
		int w;

		if (same[i])
			continue;
		n++;
		if (o >= len)
			continue;
		w = snprintf(buf + o, len - o, "%s%s", o ? ", " : "",
			     names[i]);
		o = w < 0 ? len : o + (size_t)w;
	}
	return n;
}
