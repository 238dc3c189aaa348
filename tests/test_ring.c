/* SPDX-License-Identifier: MIT */
/*
 * Tests of sl_ring: the single-thread contract first (order, bounds, bulk
 * and burst, sealing, element sizes), then stress runs in which plain
 * threads move millions of numbered items through small rings and every item
 * must come out exactly once and, per producer, in order.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/ring.h"

#include "harness.h"

static struct sl_ring *
ring_new(size_t elem_size, size_t capacity)
{
	struct sl_ring *r = sl_ring_create(elem_size, capacity);

	assert_non_null(r);
	return r;
}

static void
test_ring_create_rounds_capacity(void **state)
{
	static const size_t asked[] = {1, 2, 3, 5, 64, 65, 1000, 1024, 1025};
	static const size_t want[] = {2, 2, 4, 8, 64, 128, 1024, 1024, 2048};

	(void)state;
	for (size_t i = 0; i < SL_ARRAY_SIZE(asked); i++) {
		struct sl_ring *r = ring_new(8, asked[i]);

		assert_int_equal(sl_ring_capacity(r), want[i]);
		assert_int_equal(sl_ring_count(r), 0);
		assert_false(sl_ring_sealed(r));
		sl_ring_destroy(r);
	}
}

static void
test_ring_create_rejects_large_elements(void **state)
{
	struct sl_ring *r;

	(void)state;
	errno = 0;
	r = sl_ring_create(4097, 16);
	assert_null(r);
	assert_int_equal(errno, EINVAL);

	r = ring_new(4096, 4);
	sl_ring_destroy(r);
}

static void
test_ring_fifo_order_across_laps(void **state)
{
	struct sl_ring *r = ring_new(sizeof(uint64_t), 8);
	uint64_t next_in = 0;
	uint64_t next_out = 0;

	(void)state;

	/* Uneven fill and drain steps carry head and tail across many laps
	 * and every slot boundary. */
	for (unsigned round = 0; round < 1000; round++) {
		unsigned fill = 1 + round % 8;
		unsigned drain = 1 + (round * 5) % 8;

		for (unsigned i = 0; i < fill; i++) {
			if (!sl_ring_try_enqueue(r, &next_in))
				break;
			next_in++;
		}
		for (unsigned i = 0; i < drain; i++) {
			uint64_t v;

			if (!sl_ring_try_dequeue(r, &v))
				break;
			assert_int_equal(v, next_out);
			next_out++;
		}
		assert_int_equal(sl_ring_count(r), next_in - next_out);
	}
	/* 4000 elements: five hundred laps of the eight slots. */
	assert_int_equal(next_in, 4000);
	sl_ring_destroy(r);
}

static void
test_ring_full_and_empty(void **state)
{
	struct sl_ring *r = ring_new(sizeof(uint64_t), 4);
	uint64_t v = 0;

	(void)state;
	assert_false(sl_ring_try_dequeue(r, &v));
	assert_int_equal(sl__ring_dequeue(r, &v), -EAGAIN);

	for (v = 0; v < 4; v++)
		assert_true(sl_ring_try_enqueue(r, &v));
	assert_int_equal(sl_ring_count(r), 4);
	assert_false(sl_ring_try_enqueue(r, &v));
	assert_int_equal(sl__ring_enqueue(r, &v), -EAGAIN);
	assert_int_equal(sl_ring_count(r), 4);

	/* One slot freed takes exactly one more element. */
	assert_true(sl_ring_try_dequeue(r, &v));
	assert_int_equal(v, 0);
	v = 4;
	assert_true(sl_ring_try_enqueue(r, &v));
	assert_false(sl_ring_try_enqueue(r, &v));

	for (uint64_t want = 1; want <= 4; want++) {
		assert_true(sl_ring_try_dequeue(r, &v));
		assert_int_equal(v, want);
	}
	assert_false(sl_ring_try_dequeue(r, &v));
	assert_int_equal(sl_ring_count(r), 0);
	sl_ring_destroy(r);
}

static void
test_ring_dequeue_null_discards(void **state)
{
	struct sl_ring *r = ring_new(sizeof(uint64_t), 4);
	uint64_t v;

	(void)state;
	for (v = 10; v < 13; v++)
		assert_true(sl_ring_try_enqueue(r, &v));
	assert_true(sl_ring_try_dequeue(r, NULL));
	assert_true(sl_ring_try_dequeue(r, &v));
	assert_int_equal(v, 11);
	assert_int_equal(sl_ring_count(r), 1);
	sl_ring_destroy(r);
}

static void
test_ring_bulk_all_or_nothing(void **state)
{
	struct sl_ring *r = ring_new(sizeof(uint64_t), 8);
	uint64_t in[16];
	uint64_t out[16];

	(void)state;
	for (unsigned i = 0; i < 16; i++)
		in[i] = 100 + i;

	assert_int_equal(sl_ring_enqueue_bulk(r, in, 5), 5);
	/* Four do not fit in the three free slots: nothing may move. */
	assert_int_equal(sl_ring_enqueue_bulk(r, in + 5, 4), 0);
	assert_int_equal(sl_ring_count(r), 5);
	assert_int_equal(sl_ring_enqueue_bulk(r, in + 5, 3), 3);
	assert_int_equal(sl_ring_count(r), 8);
	assert_int_equal(sl_ring_enqueue_bulk(r, in + 8, 1), 0);

	/* Nine are asked of eight: none may leave. */
	assert_int_equal(sl_ring_dequeue_bulk(r, out, 9), 0);
	assert_int_equal(sl_ring_count(r), 8);
	assert_int_equal(sl_ring_dequeue_bulk(r, out, 3), 3);
	assert_int_equal(sl_ring_dequeue_bulk(r, out + 3, 5), 5);
	for (unsigned i = 0; i < 8; i++)
		assert_int_equal(out[i], 100 + i);
	assert_int_equal(sl_ring_dequeue_bulk(r, out, 1), 0);
	sl_ring_destroy(r);
}

static void
test_ring_burst_partial_counts(void **state)
{
	struct sl_ring *r = ring_new(sizeof(uint64_t), 8);
	uint64_t in[16];
	uint64_t out[16];

	(void)state;
	for (unsigned i = 0; i < 16; i++)
		in[i] = 200 + i;

	assert_int_equal(sl_ring_enqueue_burst(r, in, 5), 5);
	/* Only three fit; they must be the first three offered. */
	assert_int_equal(sl_ring_enqueue_burst(r, in + 5, 6), 3);
	assert_int_equal(sl_ring_enqueue_burst(r, in + 8, 4), 0);
	assert_int_equal(sl_ring_count(r), 8);

	assert_int_equal(sl_ring_dequeue_burst(r, out, 3), 3);
	assert_int_equal(sl_ring_dequeue_burst(r, out + 3, 16), 5);
	for (unsigned i = 0; i < 8; i++)
		assert_int_equal(out[i], 200 + i);
	assert_int_equal(sl_ring_dequeue_burst(r, out, 16), 0);
	assert_int_equal(sl_ring_count(r), 0);
	sl_ring_destroy(r);
}

/*
 * 8-byte elements take their own copy loop in the burst path: check it on
 * a burst that wraps past the end of the slot array, through caller
 * buffers that are not 8-byte aligned, and with a NULL output that
 * discards.
 */
static void
test_ring_burst_8_byte_wraps_unaligned(void **state)
{
	struct sl_ring *r = ring_new(sizeof(uint64_t), 8);
	unsigned char in[1 + 7 * 8];
	unsigned char out[1 + 7 * 8];
	uint64_t v;

	(void)state;
	/* Move both ends to slot 5, so 7 elements wrap after 3. */
	for (uint64_t i = 0; i < 5; i++) {
		assert_true(sl_ring_try_enqueue(r, &i));
		assert_true(sl_ring_try_dequeue(r, &v));
	}
	for (uint64_t i = 0; i < 7; i++) {
		v = 0x1122334455667700ull + i;
		memcpy(in + 1 + i * 8, &v, 8);
	}
	memset(out, 0, sizeof(out));

	assert_int_equal(sl_ring_enqueue_burst(r, in + 1, 7), 7);
	assert_int_equal(sl_ring_dequeue_burst(r, out + 1, 7), 7);
	assert_memory_equal(out + 1, in + 1, 7 * 8);

	/* Again across the wrap, taking the elements out into nothing. */
	assert_int_equal(sl_ring_enqueue_burst(r, in + 1, 7), 7);
	assert_int_equal(sl_ring_dequeue_burst(r, NULL, 3), 3);
	assert_int_equal(sl_ring_dequeue_burst(r, out + 1, 8), 4);
	assert_memory_equal(out + 1, in + 1 + 3 * 8, 4 * 8);
	assert_int_equal(sl_ring_count(r), 0);
	sl_ring_destroy(r);
}

static void
test_ring_seal_stops_enqueue_and_drains(void **state)
{
	struct sl_ring *r = ring_new(sizeof(uint64_t), 8);
	uint64_t in[4] = {1, 2, 3, 4};
	uint64_t v = 9;

	(void)state;
	assert_int_equal(sl_ring_enqueue_burst(r, in, 3), 3);
	assert_true(sl_ring_seal(r));
	assert_true(sl_ring_sealed(r));
	assert_false(sl_ring_seal(r));

	assert_false(sl_ring_try_enqueue(r, &v));
	assert_int_equal(sl__ring_enqueue(r, &v), -EPIPE);
	assert_int_equal(sl_ring_enqueue_burst(r, in, 4), 0);
	assert_int_equal(sl_ring_enqueue_bulk(r, in, 1), 0);
	assert_int_equal(sl_ring_count(r), 3);

	/* What was in before the seal still comes out, in order. */
	for (uint64_t want = 1; want <= 3; want++) {
		assert_true(sl_ring_try_dequeue(r, &v));
		assert_int_equal(v, want);
	}
	assert_false(sl_ring_try_dequeue(r, &v));
	assert_true(sl_ring_sealed(r));
	sl_ring_destroy(r);
}

static void
test_ring_elem_size_zero_counts(void **state)
{
	struct sl_ring *r = ring_new(0, 4);
	char dummy = 0;

	(void)state;
	for (int i = 0; i < 4; i++)
		assert_true(sl_ring_try_enqueue(r, &dummy));
	assert_false(sl_ring_try_enqueue(r, &dummy));
	assert_int_equal(sl_ring_count(r), 4);

	assert_int_equal(sl_ring_dequeue_burst(r, &dummy, 3), 3);
	assert_true(sl_ring_try_dequeue(r, NULL));
	assert_false(sl_ring_try_dequeue(r, NULL));
	assert_int_equal(sl_ring_count(r), 0);
	sl_ring_destroy(r);
}

/* Fills element @i of size @size with a pattern that depends on every byte's
 * position, so a torn or shifted copy cannot match. */
static void
pattern_fill(unsigned char *e, size_t size, uint64_t i)
{
	for (size_t b = 0; b < size; b++)
		e[b] = (unsigned char)(i * 131 + b * 7 + (b >> 8));
}

static void
check_sizes_keep_values(size_t size)
{
	struct sl_ring *r = ring_new(size, 8);
	unsigned char *in = malloc(size * 24);
	unsigned char *out = malloc(size * 24);
	unsigned char *want = malloc(size);

	assert_non_null(in);
	assert_non_null(out);
	assert_non_null(want);
	for (uint64_t i = 0; i < 24; i++)
		pattern_fill(in + i * size, size, i);

	/* Single calls, then bursts, across two laps of the ring. */
	for (uint64_t i = 0; i < 6; i++)
		assert_true(sl_ring_try_enqueue(r, in + i * size));
	for (uint64_t i = 0; i < 6; i++) {
		assert_true(sl_ring_try_dequeue(r, out));
		assert_memory_equal(out, in + i * size, size);
	}
	assert_int_equal(sl_ring_enqueue_burst(r, in + 6 * size, 8), 8);
	assert_int_equal(sl_ring_dequeue_bulk(r, out, 8), 8);
	for (uint64_t i = 0; i < 8; i++) {
		pattern_fill(want, size, 6 + i);
		assert_memory_equal(out + i * size, want, size);
	}

	free(want);
	free(out);
	free(in);
	sl_ring_destroy(r);
}

static void
test_ring_elem_sizes_keep_values(void **state)
{
	static const size_t sizes[] = {1, 3, 4, 8, 16, 24, 100, 4096};

	(void)state;
	for (size_t i = 0; i < SL_ARRAY_SIZE(sizes); i++)
		check_sizes_keep_values(sizes[i]);
}

/* ---- stress with threads ---- */

#define STRESS_PRODUCERS 4
#define STRESS_CONSUMERS 4
#define STRESS_BATCH 32
#define STRESS_ITEMS HARNESS_SCALE(10000000ull, 1000000ull)
#define NO_ITEM UINT64_MAX

enum ring_api {
	RING_SINGLE,
	RING_BURST,
	RING_BULK,
};

/* Every element carries its number, its complement and a product of it,
 * so a copy torn between two producers' writes is noticed. */
struct stress_item {
	uint64_t value;
	uint64_t inverse;
	uint64_t product;
};

struct ring_stress {
	struct sl_ring *ring;
	size_t elem_size;
	enum ring_api api;
	uint64_t per_producer;
	uint64_t total;
	_Atomic uint64_t consumed;
	struct harness_seen seen;
};

struct ring_worker {
	struct ring_stress *s;
	unsigned id;
	pthread_t thread;
	uint64_t last[STRESS_PRODUCERS];
};

static void
item_write(const struct ring_stress *s, unsigned char *slot, uint64_t v)
{
	struct stress_item it = {v, ~v, v * 0x9e3779b97f4a7c15ull};

	memcpy(slot, &it, s->elem_size);
}

/* Checks one received element for tearing, for its producer's order as
 * seen by this consumer, and marks it received. */
static void
item_take(struct ring_worker *w, const unsigned char *slot)
{
	struct ring_stress *s = w->s;
	struct stress_item it = {0, 0, 0};
	uint64_t producer;

	memcpy(&it, slot, s->elem_size);
	if (s->elem_size == sizeof(it)) {
		CHECK_UINT_EQ(it.inverse, ~it.value);
		CHECK_UINT_EQ(it.product, it.value * 0x9e3779b97f4a7c15ull);
	}

	producer = it.value / s->per_producer;
	if (producer < STRESS_PRODUCERS) {
		if (w->last[producer] != NO_ITEM)
			CHECK_UINT_GE(it.value, w->last[producer] + 1);
		w->last[producer] = it.value;
	}
	harness_seen_mark(&s->seen, it.value);
}

static unsigned
stress_enqueue(struct ring_stress *s, const unsigned char *items, unsigned n)
{
	switch (s->api) {
	case RING_SINGLE:
		return sl_ring_try_enqueue(s->ring, items) ? 1 : 0;
	case RING_BURST:
		return sl_ring_enqueue_burst(s->ring, items, n);
	case RING_BULK:
		return sl_ring_enqueue_bulk(s->ring, items, n);
	}
	return 0;
}

static unsigned
stress_dequeue(struct ring_stress *s, unsigned char *items, unsigned n)
{
	switch (s->api) {
	case RING_SINGLE:
		return sl_ring_try_dequeue(s->ring, items) ? 1 : 0;
	case RING_BURST:
		return sl_ring_dequeue_burst(s->ring, items, n);
	case RING_BULK:
		return sl_ring_dequeue_bulk(s->ring, items, n);
	}
	return 0;
}

/* Bulk calls move fixed groups of eight, which divide every count, so the
 * last group can always complete; bursts vary their size. */
static unsigned
stress_batch(const struct ring_stress *s, uint64_t i)
{
	if (s->api == RING_BULK)
		return 8;
	return 1 + (unsigned)(i % STRESS_BATCH);
}

static void *
stress_producer(void *arg)
{
	struct ring_worker *w = arg;
	struct ring_stress *s = w->s;
	unsigned char items[STRESS_BATCH * sizeof(struct stress_item)];
	uint64_t first = w->id * s->per_producer;
	uint64_t i = 0;

	while (i < s->per_producer) {
		unsigned want = stress_batch(s, i);
		unsigned got;

		if (want > s->per_producer - i)
			want = (unsigned)(s->per_producer - i);
		for (unsigned k = 0; k < want; k++)
			item_write(s, items + k * s->elem_size, first + i + k);

		got = stress_enqueue(s, items, want);
		CHECK(got <= want);
		if (s->api == RING_BULK)
			CHECK(got == 0 || got == want);
		if (got == 0)
			sched_yield();
		i += got;
	}
	return NULL;
}

static void *
stress_consumer(void *arg)
{
	struct ring_worker *w = arg;
	struct ring_stress *s = w->s;
	unsigned char items[STRESS_BATCH * sizeof(struct stress_item)];
	uint64_t i = 0;

	for (unsigned p = 0; p < STRESS_PRODUCERS; p++)
		w->last[p] = NO_ITEM;

	while (atomic_load(&s->consumed) < s->total) {
		unsigned want = stress_batch(s, i++);
		unsigned got = stress_dequeue(s, items, want);

		CHECK(got <= want);
		if (s->api == RING_BULK)
			CHECK(got == 0 || got == want);
		if (got == 0) {
			sched_yield();
			continue;
		}
		for (unsigned k = 0; k < got; k++)
			item_take(w, items + k * s->elem_size);
		atomic_fetch_add(&s->consumed, got);
	}
	return NULL;
}

static void
ring_stress_run(size_t capacity, size_t elem_size, enum ring_api api)
{
	struct ring_stress s = {
		.elem_size = elem_size,
		.api = api,
		.per_producer = STRESS_ITEMS / STRESS_PRODUCERS,
	};
	struct ring_worker producers[STRESS_PRODUCERS];
	struct ring_worker consumers[STRESS_CONSUMERS];

	s.total = s.per_producer * STRESS_PRODUCERS;
	s.ring = ring_new(elem_size, capacity);
	atomic_init(&s.consumed, 0);
	harness_seen_init(&s.seen, s.total);
	harness_reset();

	for (unsigned i = 0; i < STRESS_CONSUMERS; i++) {
		consumers[i] = (struct ring_worker){.s = &s, .id = i};
		assert_int_equal(pthread_create(&consumers[i].thread, NULL,
						stress_consumer, &consumers[i]),
				 0);
	}
	for (unsigned i = 0; i < STRESS_PRODUCERS; i++) {
		producers[i] = (struct ring_worker){.s = &s, .id = i};
		assert_int_equal(pthread_create(&producers[i].thread, NULL,
						stress_producer, &producers[i]),
				 0);
	}
	for (unsigned i = 0; i < STRESS_PRODUCERS; i++)
		pthread_join(producers[i].thread, NULL);
	for (unsigned i = 0; i < STRESS_CONSUMERS; i++)
		pthread_join(consumers[i].thread, NULL);

	harness_assert_clean();
	harness_seen_assert_all(&s.seen);
	assert_int_equal(atomic_load(&s.consumed), s.total);
	assert_int_equal(sl_ring_count(s.ring), 0);
	assert_false(sl_ring_try_dequeue(s.ring, NULL));

	harness_seen_free(&s.seen);
	sl_ring_destroy(s.ring);
}

static void
test_ring_stress_single_1024(void **state)
{
	(void)state;
	ring_stress_run(1024, sizeof(uint64_t), RING_SINGLE);
}

static void
test_ring_stress_single_64(void **state)
{
	(void)state;
	ring_stress_run(64, sizeof(uint64_t), RING_SINGLE);
}

static void
test_ring_stress_burst_1024(void **state)
{
	(void)state;
	ring_stress_run(1024, sizeof(uint64_t), RING_BURST);
}

static void
test_ring_stress_burst_64(void **state)
{
	(void)state;
	ring_stress_run(64, sizeof(uint64_t), RING_BURST);
}

static void
test_ring_stress_bulk_24_byte_items(void **state)
{
	(void)state;
	ring_stress_run(64, sizeof(struct stress_item), RING_BULK);
}

static void
test_ring_stress_burst_24_byte_items(void **state)
{
	(void)state;
	ring_stress_run(64, sizeof(struct stress_item), RING_BURST);
}

/*
 * Sealing while producers race: everything enqueued before the seal comes
 * out, and nothing gets in after.  One consumer seals once half the run has
 * been consumed, when every producer still has items left to send.
 */
struct seal_race {
	struct sl_ring *ring;
	uint64_t per_producer;
	uint64_t seal_after;
	_Atomic uint64_t consumed;
	_Atomic unsigned producers_left;
	_Atomic unsigned seals_won;
	uint64_t enqueued[STRESS_PRODUCERS];
	struct harness_seen seen;
};

struct seal_worker {
	struct seal_race *s;
	unsigned id;
	pthread_t thread;
};

static void *
seal_producer(void *arg)
{
	struct seal_worker *w = arg;
	struct seal_race *s = w->s;
	uint64_t i = 0;
	int rc = 0;

	while (i < s->per_producer) {
		uint64_t v = w->id * s->per_producer + i;

		rc = sl__ring_enqueue(s->ring, &v);
		if (rc == -EPIPE)
			break;
		CHECK(rc == 0 || rc == -EAGAIN);
		if (rc == 0)
			i++;
		else
			sched_yield();
	}

	/* A producer stops early only because of the seal. */
	if (i < s->per_producer)
		CHECK_ERR_EQ(rc, -EPIPE);
	s->enqueued[w->id] = i;
	atomic_fetch_sub(&s->producers_left, 1);
	return NULL;
}

static void *
seal_consumer(void *arg)
{
	struct seal_worker *w = arg;
	struct seal_race *s = w->s;

	for (;;) {
		/* Read before trying, so that an empty ring after every
		 * producer has left really is the end. */
		bool last_chance = atomic_load(&s->producers_left) == 0;
		uint64_t v;

		if (!sl_ring_try_dequeue(s->ring, &v)) {
			if (last_chance)
				break;
			sched_yield();
			continue;
		}

		harness_seen_mark(&s->seen, v);
		if (atomic_fetch_add(&s->consumed, 1) + 1 == s->seal_after &&
		    sl_ring_seal(s->ring))
			atomic_fetch_add(&s->seals_won, 1);
	}
	return NULL;
}

static void
test_ring_stress_seal_loses_nothing(void **state)
{
	struct seal_race s = {.per_producer = STRESS_ITEMS / 8};
	struct seal_worker producers[STRESS_PRODUCERS];
	struct seal_worker consumers[STRESS_CONSUMERS];
	uint64_t total = 0;

	(void)state;
	s.ring = ring_new(sizeof(uint64_t), 64);
	s.seal_after = s.per_producer * STRESS_PRODUCERS / 2;
	atomic_init(&s.consumed, 0);
	atomic_init(&s.producers_left, STRESS_PRODUCERS);
	atomic_init(&s.seals_won, 0);
	harness_seen_init(&s.seen, s.per_producer * STRESS_PRODUCERS);
	harness_reset();

	for (unsigned i = 0; i < STRESS_CONSUMERS; i++) {
		consumers[i] = (struct seal_worker){.s = &s, .id = i};
		assert_int_equal(pthread_create(&consumers[i].thread, NULL,
						seal_consumer, &consumers[i]),
				 0);
	}
	for (unsigned i = 0; i < STRESS_PRODUCERS; i++) {
		producers[i] = (struct seal_worker){.s = &s, .id = i};
		assert_int_equal(pthread_create(&producers[i].thread, NULL,
						seal_producer, &producers[i]),
				 0);
	}
	for (unsigned i = 0; i < STRESS_PRODUCERS; i++)
		pthread_join(producers[i].thread, NULL);
	for (unsigned i = 0; i < STRESS_CONSUMERS; i++)
		pthread_join(consumers[i].thread, NULL);
	harness_assert_clean();

	/* Each producer's accepted items are a prefix of what it offered,
	 * and exactly those came out. */
	assert_int_equal(atomic_load(&s.seals_won), 1);
	for (unsigned p = 0; p < STRESS_PRODUCERS; p++) {
		for (uint64_t i = 0; i < s.per_producer; i++) {
			uint64_t v = p * s.per_producer + i;
			uint64_t word = atomic_load(&s.seen.words[v / 64]);
			bool got = word & (1ull << (v % 64));

			if (got != (i < s.enqueued[p]))
				fail_msg("producer %u item %llu: received %d, "
					 "accepted %llu items",
					 p, (unsigned long long)i, got,
					 (unsigned long long)s.enqueued[p]);
		}
		total += s.enqueued[p];
	}
	assert_int_equal(atomic_load(&s.consumed), total);
	assert_at_least(total, s.seal_after);

	harness_seen_free(&s.seen);
	sl_ring_destroy(s.ring);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ring_create_rounds_capacity),
		cmocka_unit_test(test_ring_create_rejects_large_elements),
		cmocka_unit_test(test_ring_fifo_order_across_laps),
		cmocka_unit_test(test_ring_full_and_empty),
		cmocka_unit_test(test_ring_dequeue_null_discards),
		cmocka_unit_test(test_ring_bulk_all_or_nothing),
		cmocka_unit_test(test_ring_burst_partial_counts),
		cmocka_unit_test(test_ring_burst_8_byte_wraps_unaligned),
		cmocka_unit_test(test_ring_seal_stops_enqueue_and_drains),
		cmocka_unit_test(test_ring_elem_size_zero_counts),
		cmocka_unit_test(test_ring_elem_sizes_keep_values),
		cmocka_unit_test(test_ring_stress_single_1024),
		cmocka_unit_test(test_ring_stress_single_64),
		cmocka_unit_test(test_ring_stress_burst_1024),
		cmocka_unit_test(test_ring_stress_burst_64),
		cmocka_unit_test(test_ring_stress_burst_24_byte_items),
		cmocka_unit_test(test_ring_stress_bulk_24_byte_items),
		cmocka_unit_test(test_ring_stress_seal_loses_nothing),
	};

	harness_init();
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
