/* SPDX-License-Identifier: MIT */
/*
 * Contexts carry cancellation and deadlines down a tree of tasks, as Go's
 * context package does.  Cancelling a context cancels every context derived
 * from it; a context with a deadline cancels itself when the deadline passes.
 *
 * Every blocking call in Sluice has a _ctx variant that returns the
 * context's error as soon as the context ends, so one cancel unblocks a whole
 * tree of tasks.
 *
 * Contexts are reference counted.  The creator of a derived context owns one
 * reference and drops it with sl_context_release(), which also cancels it
 * (Go's "defer cancel()").  All calls are safe from any thread; creating and
 * releasing need no task, waiting does.
 */
#ifndef SLUICE_CORE_CONTEXT_H
#define SLUICE_CORE_CONTEXT_H

#include <stdint.h>

#include "core/base.h"

struct sl_context;
struct sl_chan;

/** sl_context_background() - the root context: never cancelled. */
struct sl_context *sl_context_background(void);

/**
 * sl_context_with_cancel() - derive a context cancelled by
 * sl_context_cancel() or when @parent ends.
 *
 * Return: 0 or -ENOMEM; *@out receives the new context.
 */
int sl_context_with_cancel(struct sl_context *parent, struct sl_context **out);

/**
 * sl_context_with_deadline() - derive a context that also ends at
 * @deadline_ns on the sl_now_ns() clock.
 */
int sl_context_with_deadline(struct sl_context *parent, uint64_t deadline_ns,
			     struct sl_context **out);

/** sl_context_with_timeout() - deadline @timeout_ns from now. */
int sl_context_with_timeout(struct sl_context *parent, uint64_t timeout_ns,
			    struct sl_context **out);

/**
 * sl_context_cancel() - end @ctx and all its descendants with -ECANCELED.
 * Cancelling an ended context does nothing.
 */
void sl_context_cancel(struct sl_context *ctx);

/** sl_context_release() - cancel @ctx and drop the creator's reference. */
void sl_context_release(struct sl_context *ctx);

/**
 * sl_context_err() - why @ctx ended.
 *
 * Return: 0 while it is live, -ECANCELED, or -ETIMEDOUT (deadline passed).
 */
int sl_context_err(const struct sl_context *ctx);

/**
 * sl_context_done() - a channel that is closed when @ctx ends, for use in
 * sl_select(); NULL for the background context, which never ends.  Valid as
 * long as the caller holds a reference to @ctx.
 */
struct sl_chan *sl_context_done(struct sl_context *ctx);

/** sl_context_deadline() - the effective deadline, or UINT64_MAX. */
uint64_t sl_context_deadline(const struct sl_context *ctx);

/** sl_context_live() - contexts created and not yet freed (for tests). */
uint64_t sl_context_live(void);

#endif /* SLUICE_CORE_CONTEXT_H */
