// SPDX-License-Identifier: MIT
/*
 * Where the runtime runs: which CPUs get a processor, which NUMA nodes
 * memory comes from, and whether the heap uses huge pages.
 *
 * Every knob is checked against the machine before anything starts, so an
 * operator who asks for something the machine cannot give (an offline
 * CPU, a node that does not exist) gets one line that says which and why,
 * instead of a runtime that quietly does something else.
 */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mimalloc.h>
#include <numa.h>

#include "core/sched_internal.h"

/* Highest node number a node list may name. */
#define PLACEMENT_MAX_NODES 1024

/*
 * Parse a list of numbers and ranges ("0-3,8,10-11") into @set, numbers
 * below @limit.  Returns 0, or -EINVAL with the reason in @why.
 */
static int
placement_parse_list(const char *s, cpu_set_t *set, int limit,
		     const char *what, char *why, size_t whylen)
{
	const char *p = s;

	CPU_ZERO(set);
	if (!*p) {
		snprintf(why, whylen, "%s: empty list", what);
		return -EINVAL;
	}
	while (*p) {
		char *end;
		long lo, hi;

		lo = strtol(p, &end, 10);
		if (end == p || lo < 0) {
			snprintf(why, whylen, "%s \"%s\": expected a number "
				 "or a range such as 0-3 at \"%s\"", what, s, p);
			return -EINVAL;
		}
		hi = lo;
		p = end;
		if (*p == '-') {
			p++;
			hi = strtol(p, &end, 10);
			if (end == p || hi < lo) {
				snprintf(why, whylen, "%s \"%s\": bad range "
					 "at \"%s\"", what, s, p);
				return -EINVAL;
			}
			p = end;
		}
		if (hi >= limit) {
			snprintf(why, whylen, "%s \"%s\": %ld is past the "
				 "largest supported (%d)", what, s, hi,
				 limit - 1);
			return -EINVAL;
		}
		for (long i = lo; i <= hi; i++)
			CPU_SET((int)i, set);
		if (*p == ',')
			p++;
		else if (*p) {
			snprintf(why, whylen, "%s \"%s\": unexpected \"%c\"",
				 what, s, *p);
			return -EINVAL;
		}
	}
	return 0;
}

/*
 * The online CPUs, from sysfs.  Returns false where sysfs cannot say (a
 * container without it), in which case every CPU counts as online.
 */
static bool
placement_online(cpu_set_t *online)
{
	char buf[4096], why[128];
	FILE *f = fopen("/sys/devices/system/cpu/online", "r");
	bool ok;

	if (!f)
		return false;
	ok = fgets(buf, sizeof(buf), f) != NULL;
	fclose(f);
	if (!ok)
		return false;
	buf[strcspn(buf, "\n")] = '\0';
	return placement_parse_list(buf, online, CPU_SETSIZE, "online", why,
				    sizeof(why)) == 0;
}

/* The first CPU of @want missing from @have, or -1. */
static int
placement_first_missing(const cpu_set_t *want, const cpu_set_t *have)
{
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, want) && !CPU_ISSET(c, have))
			return c;
	return -1;
}

/* Restrict @set to the CPUs of the nodes in @nodes. */
static int
placement_numa_nodes(const char *list, cpu_set_t *set, char *why,
		     size_t whylen)
{
	cpu_set_t nodes, on_nodes;
	int max_node = numa_available() < 0 ? 0 : numa_max_node();
	int r;

	r = placement_parse_list(list, &nodes, PLACEMENT_MAX_NODES, "numa",
				 why, whylen);
	if (r)
		return r;
	CPU_ZERO(&on_nodes);
	for (int n = 0; n < PLACEMENT_MAX_NODES; n++) {
		if (!CPU_ISSET(n, &nodes))
			continue;
		if (n > max_node) {
			snprintf(why, whylen, "numa: node %d does not exist "
				 "(this machine has nodes 0-%d)", n, max_node);
			return -EINVAL;
		}
		if (numa_available() < 0) {
			/* Without NUMA support every CPU is on node 0. */
			CPU_OR(&on_nodes, &on_nodes, set);
			continue;
		}
		for (int c = 0; c < CPU_SETSIZE; c++)
			if (CPU_ISSET(c, set) && numa_node_of_cpu(c) == n)
				CPU_SET(c, &on_nodes);
	}
	CPU_AND(set, set, &on_nodes);
	if (CPU_COUNT(set) == 0) {
		snprintf(why, whylen, "numa \"%s\": none of the usable CPUs "
			 "is on these nodes", list);
		return -EINVAL;
	}
	if (numa_available() >= 0) {
		struct bitmask *bm = numa_parse_nodestring(list);

		if (bm) {
			numa_set_membind(bm);
			numa_bitmask_free(bm);
		}
	}
	return 0;
}

int
sl__placement_cpus(const struct sl_runtime_opts *o, int *cpus,
		   unsigned max, unsigned *ncpus, char *why, size_t whylen)
{
	cpu_set_t allowed, want, online;
	unsigned n = 0;
	int r, c;

	if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) {
		CPU_ZERO(&allowed);
		for (c = 0; c < CPU_SETSIZE && c < (int)max; c++)
			CPU_SET(c, &allowed);
	}
	want = allowed;

	if (o->cpus && *o->cpus) {
		r = placement_parse_list(o->cpus, &want, CPU_SETSIZE, "cpus",
					 why, whylen);
		if (r)
			return r;
		if (placement_online(&online)) {
			c = placement_first_missing(&want, &online);
			if (c >= 0) {
				snprintf(why, whylen, "cpus \"%s\": CPU %d is "
					 "offline or does not exist", o->cpus,
					 c);
				return -EINVAL;
			}
		}
		c = placement_first_missing(&want, &allowed);
		if (c >= 0) {
			snprintf(why, whylen, "cpus \"%s\": CPU %d is outside "
				 "the CPUs this process may use (taskset, "
				 "cgroup cpuset or systemd CPUAffinity)",
				 o->cpus, c);
			return -EINVAL;
		}
	}

	if (o->numa && *o->numa && strcmp(o->numa, "local") != 0 &&
	    strcmp(o->numa, "interleave") != 0) {
		r = placement_numa_nodes(o->numa, &want, why, whylen);
		if (r)
			return r;
	}

	if (o->sqpoll && o->sqpoll_cpu >= 0) {
		if (o->sqpoll_cpu >= CPU_SETSIZE ||
		    (placement_online(&online) &&
		     !CPU_ISSET(o->sqpoll_cpu, &online))) {
			snprintf(why, whylen, "sqpoll_cpu %d is offline or "
				 "does not exist", o->sqpoll_cpu);
			return -EINVAL;
		}
	}

	for (c = 0; c < CPU_SETSIZE && n < max; c++)
		if (CPU_ISSET(c, &want))
			cpus[n++] = c;
	if (n == 0) {
		cpus[0] = -1;
		n = 1;
	}
	*ncpus = n;
	return 0;
}

int
sl__placement_memory(const struct sl_runtime_opts *o, char *why,
		     size_t whylen)
{
	if (o->numa && strcmp(o->numa, "interleave") == 0 &&
	    numa_available() >= 0 && numa_max_node() > 0)
		numa_set_interleave_mask(numa_all_nodes_ptr);

	if (o->huge_pages) {
		char buf[128] = "";
		long reserved = 0;
		FILE *f;

		f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
		if (f) {
			if (!fgets(buf, sizeof(buf), f))
				buf[0] = '\0';
			fclose(f);
		}
		f = fopen("/proc/sys/vm/nr_hugepages", "r");
		if (f) {
			if (fscanf(f, "%ld", &reserved) != 1)
				reserved = 0;
			fclose(f);
		}
		if ((!buf[0] || strstr(buf, "[never]")) && reserved <= 0) {
			snprintf(why, whylen,
				 "huge_pages: transparent huge pages are %s "
				 "and vm.nr_hugepages is 0; enable one "
				 "(echo madvise > /sys/kernel/mm/"
				 "transparent_hugepage/enabled) or turn "
				 "huge_pages off",
				 buf[0] ? "disabled" : "not supported");
			return -EINVAL;
		}
		mi_option_enable(mi_option_large_os_pages);
	}
	return 0;
}
