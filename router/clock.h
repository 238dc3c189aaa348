/* SPDX-License-Identifier: MIT */
/*
 * The clock fold queues and rate limiters read.  Production uses
 * sl_clock_system(); tests use a manual clock they advance themselves, so
 * backoff and rate arithmetic is checked without waiting.
 */
#ifndef SLUICE_ROUTER_CLOCK_H
#define SLUICE_ROUTER_CLOCK_H

#include <stdint.h>

struct sl_clock {
	uint64_t (*now)(struct sl_clock *c);
};

/* sl_now_ns(), the runtime's monotonic clock. */
struct sl_clock *sl_clock_system(void);

/* A clock that moves only when told to. */
struct sl_manual_clock {
	struct sl_clock base;
	uint64_t t;
};

void sl_manual_clock_init(struct sl_manual_clock *c, uint64_t start);

static inline void
sl_manual_clock_advance(struct sl_manual_clock *c, uint64_t ns)
{
	c->t += ns;
}

#endif /* SLUICE_ROUTER_CLOCK_H */
