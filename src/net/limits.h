/* limits.h -- limits against abuse (RFC 8656 §7.2; docs/limits.md):
 * allocation quotas (486), per-allocation and server-wide bandwidth caps,
 * and per-source-IP caps on Allocates and 401 answers.
 *
 * Sharing: the quota table and the per-IP table are server-wide, each
 * behind its own mutex(es), and are touched only by requests (an
 * authenticated Allocate, a 401 answer) and when an allocation ends, never
 * on the relay path. Bandwidth buckets are per allocation (owned by its
 * worker) and per worker (bps-capacity / relay-threads each), so the relay
 * path writes nothing shared and takes no lock.
 */
#ifndef TURNSTONE_LIMITS_H
#define TURNSTONE_LIMITS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "net/worker.h"
#include "turn/turn_limit.h"

#define LIMITS_RATE_SLOTS 16384 /* per-IP table slots for the whole server (~24 bytes each) */
#define LIMITS_RATE_LOCKS 64    /* mutexes over the per-IP table, by set */

struct limits {
	pthread_mutex_t quota_lock;  /* guards users and total */
	struct turn_userq *users;    /* allocations per username (user-quota on) */
	uint64_t total;              /* allocations counted while a quota is on */
	int rate_on;                 /* a per-IP rate is set: rate is allocated */
	struct turn_rate rate;
	pthread_mutex_t rate_lock[LIMITS_RATE_LOCKS];
};

/* Builds srv->limits from srv->cfg before any worker starts (the per-IP
 * table is allocated and written here, once). Returns 0 or -1 with a
 * message in err. */
int limits_init(struct server *srv, char *err, size_t errlen);
/* Frees srv->limits; every worker has been freed already. */
void limits_free(struct server *srv);

/* Takes a quota slot for a new allocation of username (user-quota counts
 * REST API names by their user id). Returns 0 when allowed (*held = 1 when
 * a slot was taken and must be given back with limits_alloc_release),
 * 486 (RFC 8656 §7.2: Allocation Quota Reached, counted in w's stats), or
 * 508 when the user table is out of memory. */
int limits_alloc_acquire(struct worker *w, const char *username, int *held);
/* Gives back the slot of an allocation of username that ended (any thread). */
void limits_alloc_release(const struct server *srv, const char *username);

/* 1 when client's source IP (IPv6: its /64) may have one more event of
 * kind (TURN_RATE_ALLOC: an authenticated Allocate on a 5-tuple without
 * an allocation; TURN_RATE_UNAUTH: a 401 answer) this second; 0 when over
 * allocate-rate-per-ip / unauthorized-rate-per-ip: the caller drops the
 * request without an answer (counted in w's stats). */
int limits_rate_ok(struct worker *w, const struct stun_addr *client, int kind);

/* Sets up w's bps-capacity buckets (capacity / relay-threads each). */
void limits_worker_init(struct worker *w);
/* Fills a new relay's max-bps buckets. */
void limits_relay_init(struct worker *w, struct relay *r);

/* The slow path of limits_bps_pass, for a worker with a bandwidth limit. */
int limits_bps_check(struct worker *w, struct relay *r, int dir, size_t len);

/* 1 when len payload bytes may be relayed for r in direction dir
 * (STATS_TO_PEER / STATS_TO_CLIENT) under max-bps and bps-capacity, on
 * w->now_ms (read once per receive batch); 0: drop the datagram. */
static inline int limits_bps_pass(struct worker *w, struct relay *r, int dir, size_t len)
{
	return !w->bps_on || limits_bps_check(w, r, dir, len);
}

#endif
