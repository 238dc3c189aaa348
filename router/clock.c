/* SPDX-License-Identifier: MIT */
/* Clocks for fold queues and limiters. */
#include "router/clock.h"

#include "core/base.h"

static uint64_t
clock_system_now(struct sl_clock *c)
{
	(void)c;
	return sl_now_ns();
}

static struct sl_clock clock_system = {.now = clock_system_now};

struct sl_clock *
sl_clock_system(void)
{
	return &clock_system;
}

static uint64_t
clock_manual_now(struct sl_clock *c)
{
	return ((struct sl_manual_clock *)c)->t;
}

void
sl_manual_clock_init(struct sl_manual_clock *c, uint64_t start)
{
	c->base.now = clock_manual_now;
	c->t = start;
}
