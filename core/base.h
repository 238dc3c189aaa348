/* SPDX-License-Identifier: MIT */
/*
 * Small shared definitions for every Sluice module: branch hints, cache-line
 * alignment, the error-message helper and the process-wide clock.
 *
 * Error convention (the same in every module): functions that return int
 * return 0 or a positive count on success and a negative errno value on
 * failure; sl_strerror() turns that value into a message.  Constructors
 * return NULL and leave the reason in errno.  try-operations return bool.
 */
#ifndef SLUICE_CORE_BASE_H
#define SLUICE_CORE_BASE_H

#include <stddef.h>
#include <stdint.h>

#define SL_LIKELY(x) __builtin_expect(!!(x), 1)
#define SL_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Both x86-64 and aarch64 parts we target prefetch lines in pairs, so 128
 * bytes keeps two hot fields from sharing a prefetch unit. */
#define SL_CACHE_LINE 64
#define SL_FALSE_SHARING 128
#define SL_CACHE_ALIGNED __attribute__((aligned(SL_FALSE_SHARING)))

#define SL_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define SL_CONTAINER_OF(ptr, type, member)                                     \
	((type *)((char *)(ptr)-offsetof(type, member)))

#define SL_COLD __attribute__((cold, noinline))
#define SL_INLINE static inline __attribute__((always_inline))

/*
 * A full (sequentially consistent) fence.  ThreadSanitizer does not model
 * fences (gcc warns, so TSan builds pass -Wno-tsan); every fence here
 * orders atomic accesses that TSan does see.
 */
#define SL_FENCE_SEQ_CST() atomic_thread_fence(memory_order_seq_cst)

#define SL_NSEC_PER_SEC 1000000000ull
#define SL_NSEC_PER_MSEC 1000000ull
#define SL_NSEC_PER_USEC 1000ull

/**
 * sl_strerror() - describe a negative errno value returned by Sluice.
 * @err: a value returned by a Sluice call (negative errno; 0 is "success").
 *
 * Return: a static, thread-safe string; never NULL.
 */
const char *sl_strerror(int err);

/**
 * sl_now_ns() - monotonic time in nanoseconds.
 *
 * Uses CLOCK_MONOTONIC through the vDSO; safe from any thread.  This is the
 * clock that sleeps, timers and context deadlines are expressed in.
 */
uint64_t sl_now_ns(void);

#endif /* SLUICE_CORE_BASE_H */
