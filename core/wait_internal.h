/* SPDX-License-Identifier: MIT */
/*
 * A wait with an optional context and deadline, the building block of every
 * blocking call in core/ (wait.c).
 *
 * Use:
 *	struct sl__wait w;
 *	int err = sl__wait_begin(&w, ctx, deadline, "chan recv");
 *	if (err) return err;            // ctx already ended
 *	... publish waiters with .claim = &w.claim, re-check the condition ...
 *	if (condition already true) {
 *		if (sl__wait_abort(&w))   // won our own claim: nobody will wake us
 *			return ...;
 *	}
 *	token = sl__wait_park(&w);      // the token of whoever woke us
 *
 * sl__wait_park() and sl__wait_abort() both remove the context waiter and
 * stop the timer before returning; the caller removes its own waiters.
 */
#ifndef SLUICE_CORE_WAIT_INTERNAL_H
#define SLUICE_CORE_WAIT_INTERNAL_H

#include "core/sched_internal.h"

struct sl_context;
struct sl_chan;

struct sl__wait {
	_Atomic uint32_t claim;
	struct sl__task *task;
	struct sl_context *ctx;
	struct sl_chan *done;
	struct sl__waiter ctxw;
	struct sl__timer timer;
	bool timer_on;
};

/*
 * Prepare to park: the claim word is cleared, the context's done channel
 * and the deadline (UINT64_MAX for none) are armed.  Returns 0, or the
 * context's error (-ECANCELED, -ETIMEDOUT) or -ETIMEDOUT for a deadline
 * already past, in which case nothing is armed.
 */
int sl__wait_begin(struct sl__wait *w, struct sl_context *ctx,
		   uint64_t deadline, const char *reason);

/* Park until claimed; returns the winning token. */
uint32_t sl__wait_park(struct sl__wait *w);

/*
 * Give up waiting.  Returns true if we won our own claim (no wake will
 * come); false if a waker had already claimed us, in which case we have
 * parked to absorb its wake and w->claim holds its token.
 */
bool sl__wait_abort(struct sl__wait *w);

/* Map a token of SL__CLAIM_CTX or SL__CLAIM_TIMEOUT to an error. */
int sl__wait_error(struct sl__wait *w, uint32_t token);

/* Channel hooks for context done channels (chan.c). */
bool sl__chan_add_closed_waiter(struct sl_chan *ch, struct sl__waiter *w);
void sl__chan_remove_closed_waiter(struct sl_chan *ch, struct sl__waiter *w);

/* Context internals used by the wait (context.c). */
struct sl_chan *sl__context_done(struct sl_context *ctx);

#endif /* SLUICE_CORE_WAIT_INTERNAL_H */
