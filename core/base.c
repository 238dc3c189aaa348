/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "core/base.h"

const char *
sl_strerror(int err)
{
	const char *msg;

	if (err == 0)
		return "success";
	if (err < 0)
		err = -err;

	/* strerrordesc_np() returns a static string, unlike strerror(),
	 * whose buffer may be shared between threads. */
	msg = strerrordesc_np(err);
	return msg ? msg : "unknown error";
}

uint64_t
sl_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * SL_NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}
