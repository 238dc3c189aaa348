/* SPDX-License-Identifier: MIT */
/*
 * The context switch on its own, without the runtime: built from
 * core/switch_<arch>.S and core/switch_init.c only, so it also runs under
 * an emulator for the architecture we do not build on (qemu-aarch64).
 *
 * Checks that a new context starts with an aligned stack, that values the
 * compiler keeps in callee-saved registers (integer and floating point)
 * survive a million switches in both directions, and that many contexts can
 * be switched between in turn.  Prints "N passed, N failed".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/sched_internal.h"

#define SWITCHES 1000000
#define RING_OF 64
#define STACK_SIZE (64 * 1024)

static struct sl__ctx main_ctx;
static int failures;
static int passes;

static void
expect(int ok, const char *what)
{
	if (ok) {
		passes++;
		return;
	}
	failures++;
	fprintf(stderr, "FAILED: %s\n", what);
}

struct coro {
	struct sl__ctx ctx;
	struct sl__ctx *back;
	uint64_t count;
	double acc;
	int aligned;
	int id;
};

/* The stack pointer's alignment inside a C function called normally. */
static __attribute__((noinline)) int
stack_aligned(void)
{
	_Alignas(16) volatile char probe[16];

	return ((uintptr_t)probe & 15) == 0;
}

/* The entry the switch's trampoline calls with the coroutine pointer. */
void
sl__task_start(struct sl__task *arg)
{
	struct coro *c = (struct coro *)(void *)arg;
	uint64_t a = 0x1111111111111111ull * (uint64_t)(c->id + 1);
	uint64_t b = a ^ 0xfedcba9876543210ull;
	double x = 1.5 + c->id;

	c->aligned = stack_aligned();
	for (;;) {
		/* a, b and x live across the switch, in callee-saved
		 * registers or on this stack; both must survive. */
		a += 3;
		b ^= a;
		x *= 1.0000001;
		c->count++;
		sl__ctx_switch(&c->ctx, c->back);
		if (a % 3 != (0x1111111111111111ull * (uint64_t)(c->id + 1) +
			      3 * c->count) % 3)
			failures++;
		c->acc = x + (double)(b & 1);
	}
}

static struct coro *
coro_new(int id, struct sl__ctx *back)
{
	char *stack = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct coro *c;

	if (stack == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	c = (struct coro *)(void *)(stack + STACK_SIZE - 256);
	memset(c, 0, sizeof(*c));
	c->id = id;
	c->back = back;
	sl__ctx_init(&c->ctx, c, c);
	return c;
}

int
main(void)
{
	struct coro *one = coro_new(0, &main_ctx);
	struct coro *ring[RING_OF];
	volatile double here = 2.25;
	uint64_t mine = 0x0123456789abcdefull;

	for (uint64_t i = 0; i < SWITCHES; i++) {
		sl__ctx_switch(&main_ctx, &one->ctx);
		mine = mine * 6364136223846793005ull + 1;
		here = here * 1.0;
	}
	expect(one->count == SWITCHES, "a million switches each way");
	expect(one->aligned, "a new context starts with an aligned stack");
	expect(here == 2.25, "the caller's floating-point state survives");
	expect(one->acc > 1.0, "the coroutine's floating-point state survives");

	for (int i = 0; i < RING_OF; i++)
		ring[i] = coro_new(i + 1, &main_ctx);
	for (int round = 0; round < 1000; round++)
		for (int i = 0; i < RING_OF; i++)
			sl__ctx_switch(&main_ctx, &ring[i]->ctx);
	for (int i = 0; i < RING_OF; i++)
		expect(ring[i]->count == 1000 && ring[i]->aligned,
		       "every context of a ring of 64 ran 1000 times");
	expect(failures == 0, "values kept in registers across switches");

	printf("switch: %d passed, %d failed\n", passes, failures);
	return failures ? 1 : 0;
}
