/* metrics.h -- the Prometheus text exposition (format 0.0.4) of the
 * workers' counters (net/stats.h) and the Redis clients' counters.
 *
 * Pure: it reads the counters it is given (relaxed atomic loads, so any
 * thread may call it) and writes text; no sockets, no libevent. Every metric
 * has HELP and TYPE lines; label values come from fixed lists (transport,
 * family, direction, code, reason) or the worker index, never from user
 * names or addresses. docs/metrics.md lists them.
 */
#ifndef TURNSTONE_METRICS_H
#define TURNSTONE_METRICS_H

#include <stddef.h>
#include <stdio.h>

#include "auth/auth_redis.h"
#include "net/stats.h"

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* What one scrape shows. */
struct metrics_input {
	const struct worker_stats *const *workers;   /* one per worker */
	size_t nworkers;
	const struct auth_redis_stats *const *redis; /* one per worker; NULL entries or nredis 0
							when redis-userdb is not set */
	size_t nredis;
	int draining;                                /* 1 while draining */
	long open_fds, max_fds;                      /* descriptors in use / soft limit, -1 unknown */
	double start_time;                           /* Unix time the server started, seconds */
};

/* Writes the exposition of in to f. Returns 0, or -1 when f reports an
 * error (e.g. out of memory on a memory stream). */
int metrics_render(FILE *f, const struct metrics_input *in);

#endif
