/* turn_limit.h -- pure building blocks of the abuse limits (RFC 8656 §7.2,
 * error 486; bandwidth and per-source rate caps): a token bucket, a
 * fixed-size table of per-source-IP request counts, and a username -> count
 * table for user-quota.
 *
 * No sockets, no clock, no locks: times come from the caller, and the
 * callers (src/net/limits.c) decide who may touch which table when.
 */
#ifndef TURNSTONE_TURN_LIMIT_H
#define TURNSTONE_TURN_LIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "stun/stun_msg.h"

/* ---- token bucket ------------------------------------------------------ */

/* Bytes per second with a burst. Tokens are kept in milli-bytes so that a
 * refill every millisecond at a low rate does not round down to nothing. A
 * datagram passes while the bucket is not in debt and is then charged in
 * full, so the bucket may go negative by one datagram: any datagram size can
 * pass and the long-run rate still holds (at most rate * t + burst + one
 * datagram in t seconds). */
struct turn_bucket {
	int64_t tokens;          /* milli-bytes */
	uint64_t last_ms;        /* time of the last refill */
};

/* Fills b with burst bytes at now_ms (milliseconds, any monotonic origin). */
void turn_bucket_init(struct turn_bucket *b, uint64_t burst, uint64_t now_ms);

/* Refills b at rate bytes/s for the time since the last call (capped at
 * burst bytes) and returns 1 when a datagram may pass now, else 0. A clock
 * going backwards refills nothing. */
int turn_bucket_ok(struct turn_bucket *b, uint64_t rate, uint64_t burst, uint64_t now_ms);

/* Charges len bytes to b (after turn_bucket_ok said yes). */
void turn_bucket_take(struct turn_bucket *b, size_t len);

/* ---- per-source-IP rate table ----------------------------------------- */

/* What is counted per source and second. */
enum { TURN_RATE_ALLOC, TURN_RATE_UNAUTH, TURN_RATE_NKIND };

#define TURN_RATE_WAYS 4 /* slots per set */

struct turn_rate_slot {
	uint64_t key;            /* IPv4 address, or the /64 prefix of an IPv6 one */
	uint32_t sec;            /* the second these counts are for */
	uint8_t fam;             /* 0: empty, else STUN_AF_IPV4 / STUN_AF_IPV6 */
	uint16_t n[TURN_RATE_NKIND];
};

/* A fixed array of nsets * TURN_RATE_WAYS slots, allocated once: sources
 * never add memory. A source's set is picked by a keyed hash (seed chosen at
 * random at start), so a sprayer cannot aim at one set; within a set a new
 * source takes an empty slot, else one whose second is over, else the one
 * with the fewest events this second. A source hammering at its cap has the
 * most events in its set and so is the last to be pushed out by many
 * one-shot sources. */
struct turn_rate {
	size_t nsets;            /* power of two */
	uint64_t seed;
	struct turn_rate_slot *slots;
};

/* Allocates at least nslots slots (rounded up to a power of two number of
 * sets) and writes them all, so the memory is resident from the start.
 * Returns 0 or -1 on out of memory. */
int turn_rate_init(struct turn_rate *t, size_t nslots, uint64_t seed);
void turn_rate_free(struct turn_rate *t);

/* The set a source address falls into (port ignored; IPv6 by /64;
 * IPv4-mapped IPv6 as IPv4): callers sharing a table lock by set. */
size_t turn_rate_set_of(const struct turn_rate *t, const struct stun_addr *a);

/* Counts one event of kind (TURN_RATE_*) from a in second sec, unless the
 * source already had limit events of that kind this second. Returns 1 when
 * counted (allowed), 0 when over the limit. limit 0 means no limit. */
int turn_rate_hit(struct turn_rate *t, const struct stun_addr *a, int kind, uint32_t sec, unsigned limit);

/* ---- allocations per username (user-quota) ----------------------------- */

struct turn_userq;

/* Empty table; nbuckets is rounded up to a power of two. NULL on out of memory. */
struct turn_userq *turn_userq_new(size_t nbuckets);
void turn_userq_free(struct turn_userq *q);

/* Adds one allocation for the name (len bytes, not NUL-terminated) unless
 * it holds limit already (limit 0: no limit). Returns 0, -1 at the limit,
 * -2 on out of memory. An entry exists only while its count is above 0. */
int turn_userq_acquire(struct turn_userq *q, const char *name, size_t len, unsigned limit);
/* Removes one allocation of name (no-op for an unknown name). */
void turn_userq_release(struct turn_userq *q, const char *name, size_t len);
/* Allocations name holds now. */
unsigned turn_userq_count(const struct turn_userq *q, const char *name, size_t len);

#endif
