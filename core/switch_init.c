/* SPDX-License-Identifier: MIT */
/*
 * The first frame of a new task, matching the register layout that
 * sl__ctx_switch (switch_x86_64.S, switch_aarch64.S) pops.
 */
#include <string.h>

#include "core/sched_internal.h"

void
sl__ctx_init(struct sl__ctx *ctx, void *stack_top, void *arg)
{
	uintptr_t top = (uintptr_t)stack_top & ~(uintptr_t)15;

#if defined(__x86_64__)
	/* Popped in order: r15 r14 r13 r12 rbx rbp, then the return address;
	 * afterwards rsp is 16-byte aligned, as sl__task_entry expects. */
	uint64_t *sp = (uint64_t *)(top - 72);

	memset(sp, 0, 72);
	sp[3] = (uint64_t)(uintptr_t)arg;			/* r12 */
	sp[6] = (uint64_t)(uintptr_t)sl__task_entry;		/* return */
#elif defined(__aarch64__)
	/* x19..x28, x29, x30, d8..d15; the switch returns through x30. */
	uint64_t *sp = (uint64_t *)(top - 160);

	memset(sp, 0, 160);
	sp[0] = (uint64_t)(uintptr_t)arg;			/* x19 */
	sp[11] = (uint64_t)(uintptr_t)sl__task_entry;		/* x30 */
#else
#error "no context switch for this architecture"
#endif
	ctx->sp = sp;
}
