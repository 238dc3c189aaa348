/* SPDX-License-Identifier: MIT */
/*
 * mimalloc's allocation calls, served by the C library's allocator: part
 * of libsluice_core only in sanitizer builds (and linked into the fuzz
 * targets), so every program and test built then uses it.
 *
 * The sanitizers see memory through the allocator they intercept, and
 * the system's libmimalloc is not built with them.  Under ThreadSanitizer
 * a block freed on one thread and handed out again on another looks like
 * a race between its old and its new owner, because the atomics inside
 * mimalloc that order the two are invisible; every event the router
 * allocates after the first few thousand would be reported.  Under
 * AddressSanitizer a use after mi_free() goes unseen.  Routed through
 * malloc(), both see every allocation, and a report is a real one.
 *
 * mimalloc returns a unique pointer for a zero-byte request, where
 * malloc() may return NULL, which the callers would take for ENOMEM; so
 * zero becomes one byte.  Aligned blocks come from posix_memalign(), whose
 * blocks free() and realloc() accept as mimalloc's functions accept
 * theirs.
 */
#include <stdlib.h>
#include <string.h>

#include <mimalloc.h>

void *
mi_malloc(size_t size)
{
	return malloc(size ? size : 1);
}

void *
mi_zalloc(size_t size)
{
	return calloc(1, size ? size : 1);
}

void *
mi_calloc(size_t count, size_t size)
{
	if (!count || !size)
		count = size = 1;
	return calloc(count, size);
}

void *
mi_realloc(void *p, size_t newsize)
{
	return realloc(p, newsize ? newsize : 1);
}

void
mi_free(void *p)
{
	free(p);
}

char *
mi_strdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

void *
mi_malloc_aligned(size_t size, size_t alignment)
{
	void *p = NULL;

	if (alignment < sizeof(void *))
		alignment = sizeof(void *);
	return posix_memalign(&p, alignment, size ? size : 1) ? NULL : p;
}

void *
mi_zalloc_aligned(size_t size, size_t alignment)
{
	void *p = mi_malloc_aligned(size, alignment);

	if (p)
		memset(p, 0, size);
	return p;
}
