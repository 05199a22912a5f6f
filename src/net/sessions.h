/* sessions.h -- race-free snapshots of the allocations the workers own, for
 * the admin listener's GET /sessions (issue 11).
 *
 * The admin thread never reads a worker's allocation table. It posts a
 * WORKER_MSG_SESSIONS message carrying one reference-counted request to
 * every worker; each worker copies its own allocations into its slot of the
 * request on its own thread, then signals the request's condition variable.
 * The admin thread waits (bounded) until all have answered. Whoever drops the
 * last reference frees the request, so a worker answering after the admin
 * thread gave up writes into memory that is still alive. See docs/threads.md.
 */
#ifndef TURNSTONE_SESSIONS_H
#define TURNSTONE_SESSIONS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "net/worker.h"

#define SESSIONS_MAX_PER_WORKER 100000 /* a snapshot lists at most this many per worker */

/* One allocation as GET /sessions shows it. */
struct session_info {
	char user[TURN_USERNAME_MAX + 1];
	struct stun_addr client;     /* client transport address */
	struct stun_addr relay;      /* relayed transport address as advertised */
	int transport;               /* STATS_UDP, STATS_TCP or STATS_TLS */
	int worker;                  /* owning worker's id */
	uint64_t age;                /* seconds since the Allocate succeeded */
	uint64_t expires_in;         /* seconds of lifetime left */
	uint64_t bytes_to_peer, bytes_to_client;     /* payload bytes relayed */
	uint64_t packets_to_peer, packets_to_client;
};

struct sessions_req;

/* Asks every worker of srv for a snapshot and waits up to timeout_ms
 * milliseconds for all answers (call from any thread but a worker's).
 * On success returns 0 with *out a malloc'd array of *n entries (the caller
 * frees it; NULL when empty) and *truncated set when a worker had more than
 * SESSIONS_MAX_PER_WORKER. Returns -1 when a worker did not answer in time
 * or memory ran out. */
int sessions_collect(struct server *srv, int timeout_ms, struct session_info **out, size_t *n, int *truncated);

/* Worker side of WORKER_MSG_SESSIONS: copies w's allocations into q, signals
 * the waiting thread and drops the worker's reference. Worker thread only. */
void sessions_fill(struct worker *w, struct sessions_req *q);

/* Drops one reference to q (a message that will never be handled). */
void sessions_req_put(struct sessions_req *q);

/* Writes v[0..n) as a JSON array of objects (user, client, relay,
 * transport, worker, age_seconds, expires_in_seconds, bytes_to_peer,
 * bytes_to_client, packets_to_peer, packets_to_client). User names are
 * written as is when valid UTF-8; control characters and bytes that are not
 * part of valid UTF-8 become \u00XX escapes, so the output is always valid
 * JSON. */
void sessions_json(FILE *f, const struct session_info *v, size_t n);

#endif
