/* SPDX-License-Identifier: MIT */
/*
 * Tests of sluice-load's verify mode: the bookkeeping (tools/load/verify.c)
 * and the path a delivered event takes to it (tools/load/wire.c and the
 * payload of tools/load/workload.c).
 *
 * A key whose last version never comes back is reported missing, one
 * whose last version is beaten by an older one is stale, a version never
 * sent or a key not ours is flagged, repeats and older versions are
 * counted but do not fail; sink output cut at any byte gives the same
 * records; and raising a key's delivered version from several threads at
 * once keeps the highest.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tools/load/verify.h"
#include "tools/load/wire.h"
#include "tools/load/workload.h"

#include "harness.h"

static void
test_verify_all_delivered_is_ok(void **state)
{
	struct load_verify v;
	struct load_verify_result r;

	(void)state;
	assert_int_equal(load_verify_init(&v, 100), 0);
	for (uint64_t k = 0; k < 100; k += 2) {
		load_verify_sent(&v, k, 3);
		assert_int_equal(load_verify_seen(&v, k, 1), LOAD_SEEN_NEW);
		assert_int_equal(load_verify_seen(&v, k, 3), LOAD_SEEN_NEW);
	}
	assert_int_equal(load_verify_pending(&v), 0);
	load_verify_check(&v, &r);
	assert_int_equal(r.keys_sent, 50); /* odd keys were never sent */
	assert_int_equal(r.ok, 50);
	assert_int_equal(r.stale, 0);
	assert_int_equal(r.missing, 0);
	assert_int_equal(r.seen[LOAD_SEEN_NEW], 100);
	load_verify_fini(&v);
}

static void
test_verify_detects_a_dropped_key(void **state)
{
	struct load_verify v;
	struct load_verify_result r;

	(void)state;
	assert_int_equal(load_verify_init(&v, 10), 0);
	for (uint64_t k = 0; k < 10; k++) {
		load_verify_sent(&v, k, 1);
		if (k != 7)
			load_verify_seen(&v, k, 1);
	}
	assert_int_equal(load_verify_pending(&v), 1);
	load_verify_check(&v, &r);
	assert_int_equal(r.ok, 9);
	assert_int_equal(r.missing, 1);
	assert_int_equal(r.missing_keys[0], 7);
	assert_int_equal(r.stale, 0);
	load_verify_fini(&v);
}

static void
test_verify_detects_a_stale_key(void **state)
{
	struct load_verify v;
	struct load_verify_result r;

	(void)state;
	assert_int_equal(load_verify_init(&v, 10), 0);
	for (uint64_t k = 0; k < 10; k++) {
		load_verify_sent(&v, k, 5);
		load_verify_seen(&v, k, k == 4 ? 3 : 5);
	}
	load_verify_check(&v, &r);
	assert_int_equal(r.ok, 9);
	assert_int_equal(r.stale, 1);
	assert_int_equal(r.stale_keys[0], 4);
	assert_int_equal(r.missing, 0);
	load_verify_fini(&v);
}

static void
test_verify_classifies_each_delivery(void **state)
{
	struct load_verify v;
	struct load_verify_result r;

	(void)state;
	assert_int_equal(load_verify_init(&v, 4), 0);
	load_verify_sent(&v, 1, 6);
	assert_int_equal(load_verify_seen(&v, 1, 4), LOAD_SEEN_NEW);
	assert_int_equal(load_verify_seen(&v, 1, 4), LOAD_SEEN_REPEAT);
	assert_int_equal(load_verify_seen(&v, 1, 2), LOAD_SEEN_OLDER);
	assert_int_equal(load_verify_seen(&v, 1, 7), LOAD_SEEN_UNSENT);
	assert_int_equal(load_verify_seen(&v, 1, 0), LOAD_SEEN_UNSENT);
	assert_int_equal(load_verify_seen(&v, 2, 1), LOAD_SEEN_UNSENT);
	assert_int_equal(load_verify_seen(&v, 4, 1), LOAD_SEEN_BAD_KEY);
	assert_int_equal(load_verify_seen(&v, 1, 6), LOAD_SEEN_NEW);
	/* An older version after the last does not lower it. */
	assert_int_equal(load_verify_seen(&v, 1, 5), LOAD_SEEN_OLDER);
	load_verify_bad(&v);

	load_verify_check(&v, &r);
	assert_int_equal(r.ok, 1);
	assert_int_equal(r.seen[LOAD_SEEN_NEW], 2);
	assert_int_equal(r.seen[LOAD_SEEN_REPEAT], 1);
	assert_int_equal(r.seen[LOAD_SEEN_OLDER], 2);
	assert_int_equal(r.seen[LOAD_SEEN_UNSENT], 3);
	assert_int_equal(r.seen[LOAD_SEEN_BAD_KEY], 1);
	assert_int_equal(r.malformed, 1);
	load_verify_fini(&v);
}

/* ---- the delivered path ---- */

struct delivery {
	const struct load_workload *w;
	struct load_verify *v;
	bool frames;
	char scratch[4096];
	uint64_t records, bad;
	uint64_t last_planned;
};

static void
deliver(void *arg, const char *rec, size_t len)
{
	struct delivery *d = arg;
	struct load_sink_event ev;
	uint64_t key, planned;
	uint32_t version;

	d->records++;
	if (load_sink_decode(rec, len, d->frames, d->scratch, &ev) ||
	    load_payload_parse(ev.payload, ev.payload_len, &version,
	                       &planned)) {
		d->bad++;
		load_verify_bad(d->v);
		return;
	}
	d->last_planned = planned;
	if (load_key_parse(d->w, ev.key, ev.key_len, &key))
		load_verify_seen(d->v, UINT64_MAX, version);
	else
		load_verify_seen(d->v, key, version);
}

/* Feed @buf to a splitter in pieces of @piece bytes. */
static void
feed_in_pieces(struct delivery *d, const char *buf, size_t len, size_t piece)
{
	struct load_splitter s;

	load_split_init(&s, d->frames, 1u << 16);
	for (size_t off = 0; off < len; off += piece) {
		size_t n = len - off < piece ? len - off : piece;

		assert_int_equal(load_split_feed(&s, buf + off, n, deliver, d),
		                 0);
	}
	assert_int_equal(load_split_pending(&s), 0);
	load_split_fini(&s);
}

/*
 * Two lanes generate events; the "router" delivers each key's last
 * event, except that it drops key A and delivers an older version of
 * key B.  Sent through the encoder and cut at every piece size, the
 * deliveries must show exactly those two keys wrong.
 */
static void
run_delivery(bool frames)
{
	struct load_workload w = {.nkeys = 50, .seed = 9, .frames = frames};
	struct load_event last[50] = {{0}}, older_b = {0};
	struct load_gen g[2];
	struct load_verify v;
	struct load_verify_result r;
	uint64_t key_a = 13, key_b = 22;
	char err[128], *out = malloc(1 << 16);
	size_t len = 0;

	assert_non_null(out);
	assert_int_equal(load_kinds_parse("set", &w, err, sizeof(err)), 0);
	assert_int_equal(
	        load_size_parse("uniform:30-60", &w.size, err, sizeof(err)), 0);
	assert_int_equal(load_workload_init(&w), 0);
	assert_int_equal(load_verify_init(&v, w.nkeys), 0);
	for (unsigned l = 0; l < 2; l++)
		assert_int_equal(load_gen_init(&g[l], &w, l, 2), 0);
	for (int i = 0; i < 2000; i++) {
		struct load_event ev;

		load_gen_next(&g[i % 2], &ev);
		load_verify_sent(&v, ev.key, ev.version);
		if (ev.key == key_b && last[key_b].version)
			older_b = last[key_b];
		last[ev.key] = ev;
	}
	for (uint64_t k = 0; k < w.nkeys; k++) {
		const struct load_event *ev = k == key_b ? &older_b : &last[k];

		if (k == key_a || !ev->version)
			continue;
		len += load_event_encode(&w, ev, 1000 + k, out + len,
		                         (1 << 16) - len);
	}
	assert_true(len < (1 << 16));

	for (size_t piece = 1; piece <= 97; piece += 8) {
		struct delivery d = {.w = &w, .v = &v, .frames = frames};

		feed_in_pieces(&d, out, len, piece);
		assert_int_equal(d.bad, 0);
		assert_int_equal(d.records, w.nkeys - 1);
		assert_int_equal(d.last_planned, 1000 + w.nkeys - 1);
	}
	load_verify_check(&v, &r);
	assert_int_equal(r.keys_sent, w.nkeys);
	assert_int_equal(r.ok, w.nkeys - 2);
	assert_int_equal(r.missing, 1);
	assert_int_equal(r.missing_keys[0], key_a);
	assert_int_equal(r.stale, 1);
	assert_int_equal(r.stale_keys[0], key_b);
	assert_int_equal(r.seen[LOAD_SEEN_UNSENT], 0);
	for (unsigned l = 0; l < 2; l++)
		load_gen_fini(&g[l]);
	load_verify_fini(&v);
	free(out);
}

static void
test_verify_delivered_lines_find_the_wrong_keys(void **state)
{
	(void)state;
	run_delivery(false);
}

static void
test_verify_delivered_frames_find_the_wrong_keys(void **state)
{
	(void)state;
	run_delivery(true);
}

/* A line as sluiced's sinks write one, with escapes in every field. */
static void
test_sink_line_escapes_are_undone(void **state)
{
	static const char line[] = "k\\sind k\\x00\\\\y 0000000003 "
	                           "0000000000000000042 tail\\n";
	struct load_sink_event ev;
	char scratch[sizeof(line)];
	uint64_t planned;
	uint32_t version;

	(void)state;
	assert_int_equal(
	        load_sink_decode(line, sizeof(line) - 1, false, scratch, &ev),
	        0);
	assert_int_equal(ev.kind_len, 5);
	assert_memory_equal(ev.kind, "k ind", 5);
	assert_int_equal(ev.key_len, 4);
	assert_memory_equal(ev.key, "k\0\\y", 4);
	assert_int_equal(ev.payload_len, 36);
	assert_int_equal(ev.payload[35], '\n');
	assert_int_equal(load_payload_parse(ev.payload, ev.payload_len,
	                                    &version, &planned),
	                 0);
	assert_int_equal(version, 3);
	assert_int_equal(planned, 42);

	/* A key with no payload, and lines that are not events. */
	assert_int_equal(load_sink_decode("set k1", 6, false, scratch, &ev), 0);
	assert_int_equal(ev.payload_len, 0);
	assert_int_equal(load_sink_decode("set", 3, false, scratch, &ev),
	                 -EBADMSG);
	assert_int_equal(load_sink_decode(" k", 2, false, scratch, &ev),
	                 -EBADMSG);
	assert_int_equal(load_sink_decode("a k\\q x", 7, false, scratch, &ev),
	                 -EBADMSG);
	assert_int_equal(load_sink_decode("a k\\x4 x", 8, false, scratch, &ev),
	                 -EBADMSG);
}

static void
test_payload_parse_refuses_other_payloads(void **state)
{
	uint64_t t;
	uint32_t v;

	(void)state;
	assert_int_equal(load_payload_parse("0000000001 0000000000000000002",
	                                    30, &v, &t),
	                 0);
	assert_int_equal(load_payload_parse("0000000001 0000000000000000002 x",
	                                    32, &v, &t),
	                 0);
	assert_int_equal(
	        load_payload_parse("0000000001 000000000000000000", 29, &v, &t),
	        -EBADMSG);
	assert_int_equal(load_payload_parse("000000000x 0000000000000000002",
	                                    30, &v, &t),
	                 -EBADMSG);
	assert_int_equal(load_payload_parse("0000000001_0000000000000000002",
	                                    30, &v, &t),
	                 -EBADMSG);
	assert_int_equal(load_payload_parse("9999999999 0000000000000000002",
	                                    30, &v, &t),
	                 -EBADMSG); /* above 2^32 - 1 */
}

static void
test_split_refuses_oversized_and_empty_frames(void **state)
{
	static const char zero[4] = {0, 0, 0, 0};
	static const char big[4] = {0, 1, 0, 0};
	struct delivery d = {0};
	struct load_splitter s;
	char line[100];

	(void)state;
	load_split_init(&s, true, 1024);
	assert_int_equal(load_split_feed(&s, zero, 4, deliver, &d), -EBADMSG);
	load_split_fini(&s);
	load_split_init(&s, true, 1024);
	assert_int_equal(load_split_feed(&s, big, 2, deliver, &d), 0);
	assert_int_equal(load_split_feed(&s, big + 2, 2, deliver, &d),
	                 -EMSGSIZE);
	load_split_fini(&s);

	load_split_init(&s, false, 50);
	memset(line, 'x', sizeof(line));
	assert_int_equal(load_split_feed(&s, line, 30, deliver, &d), 0);
	assert_int_equal(load_split_feed(&s, line, 30, deliver, &d), -EMSGSIZE);
	load_split_fini(&s);
	assert_int_equal(d.records, 0);
}

static void
test_ack_and_hello_layout(void **state)
{
	static const char ack[] = {0, 0, 0, 9, 3,    0,         0,
	                           0, 0, 0, 0, 0x0b, (char)0xb8};
	char hello[LOAD_HELLO_LEN];
	uint64_t n;

	(void)state;
	load_hello_encode(1000, hello);
	assert_memory_equal(hello, "\0\0\0\5\2\0\0\3\xe8", LOAD_HELLO_LEN);
	assert_int_equal(load_ack_decode(ack, sizeof(ack), &n), 0);
	assert_int_equal(n, 3000);
	assert_int_equal(load_ack_decode(hello, sizeof(hello), &n), -EBADMSG);
}

/* ---- concurrency ---- */

#define RACE_KEYS 64
#define RACE_TOP 2000u

struct racer {
	struct load_verify *v;
	uint64_t seed;
};

static void *
race_deliver(void *arg)
{
	struct racer *rc = arg;
	uint64_t x = rc->seed;

	/* Every version of every key, in an order of this thread's own. */
	for (uint32_t i = 0; i < RACE_TOP * RACE_KEYS; i++) {
		uint64_t z = harness_random(&x);

		load_verify_seen(rc->v, z % RACE_KEYS,
		                 (uint32_t)(z >> 32) % RACE_TOP + 1);
	}
	for (uint64_t k = 0; k < RACE_KEYS; k++)
		load_verify_seen(rc->v, k, RACE_TOP);
	return NULL;
}

static void
test_verify_concurrent_deliveries_keep_the_highest(void **state)
{
	struct load_verify v;
	struct load_verify_result r;
	struct racer rc[4];
	pthread_t t[4];

	(void)state;
	assert_int_equal(load_verify_init(&v, RACE_KEYS), 0);
	for (uint64_t k = 0; k < RACE_KEYS; k++)
		load_verify_sent(&v, k, RACE_TOP);
	for (int i = 0; i < 4; i++) {
		rc[i] = (struct racer){.v = &v, .seed = (uint64_t)i + 1};
		assert_int_equal(
		        pthread_create(&t[i], NULL, race_deliver, &rc[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	load_verify_check(&v, &r);
	assert_int_equal(r.ok, RACE_KEYS);
	/* Each key became new at most RACE_TOP times, and the top version
	 * was new exactly once per key. */
	assert_true(r.seen[LOAD_SEEN_NEW] <= (uint64_t)RACE_KEYS * RACE_TOP);
	assert_int_equal(r.seen[LOAD_SEEN_NEW] + r.seen[LOAD_SEEN_REPEAT] +
	                         r.seen[LOAD_SEEN_OLDER],
	                 4 * ((uint64_t)RACE_TOP * RACE_KEYS + RACE_KEYS));
	assert_int_equal(r.seen[LOAD_SEEN_UNSENT], 0);
	load_verify_fini(&v);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_verify_all_delivered_is_ok),
	        cmocka_unit_test(test_verify_detects_a_dropped_key),
	        cmocka_unit_test(test_verify_detects_a_stale_key),
	        cmocka_unit_test(test_verify_classifies_each_delivery),
	        cmocka_unit_test(
	                test_verify_delivered_lines_find_the_wrong_keys),
	        cmocka_unit_test(
	                test_verify_delivered_frames_find_the_wrong_keys),
	        cmocka_unit_test(test_sink_line_escapes_are_undone),
	        cmocka_unit_test(test_payload_parse_refuses_other_payloads),
	        cmocka_unit_test(test_split_refuses_oversized_and_empty_frames),
	        cmocka_unit_test(test_ack_and_hello_layout),
	        cmocka_unit_test(
	                test_verify_concurrent_deliveries_keep_the_highest),
	};

	harness_init();
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
