/* turn_alloc.h -- TURN allocation state: lifetimes, permissions, channels.
 *
 * Pure code (RFC 8656 §7, §9, §12): no sockets. Times are seconds on a
 * monotonic clock supplied by the caller. One worker thread owns a table and
 * every allocation in it, so nothing here locks.
 */
#ifndef TURNSTONE_TURN_ALLOC_H
#define TURNSTONE_TURN_ALLOC_H

#include <stddef.h>
#include <stdint.h>

#include "stun/stun_msg.h"
#include "turn/turn_timer.h"

#define TURN_MAX_PERMS 64     /* per allocation; more → 508 */
#define TURN_MAX_CHANNELS 64  /* per allocation; more → 508 */
#define TURN_CHANNEL_QUARANTINE 300 /* s a number/peer stays reserved after expiry (§12) */
#define TURN_USERNAME_MAX 128 /* bytes */
#define TURN_TRANSPORT_UDP 17  /* IANA protocol numbers, as in REQUESTED-TRANSPORT */
#define TURN_TRANSPORT_TCP 6

struct turn_perm {
	uint8_t family;
	uint8_t ip[16];
	uint64_t expires;
};

/* The kernel counters of an offloaded channel as last added to the
 * statistics (net/ebpf/relay_map.h ts_ctr): seen[direction (STATS_TO_PEER,
 * _TO_CLIENT)][packets, bytes, datagrams dropped by max-bps, by
 * bps-capacity]. */
struct turn_ebpf_seen {
	uint32_t counter;        /* slot in ts_ctr */
	uint64_t seen[2][4];
};

struct turn_chan {
	uint16_t number;
	struct stun_addr peer;
	uint64_t expires;        /* binding usable while now < expires */
	/* ebpf-offload (net/ebpf/ebpf.h): 1 while the kernel maps hold this
	 * channel, and then ebpf_seen its counter slot and what was last read
	 * from it: malloc'd while ebpf is 1, else NULL (72 bytes only for
	 * offloaded channels); freed with the entry */
	uint8_t ebpf;
	struct turn_ebpf_seen *ebpf_seen;
};

struct turn_alloc {
	/* 5-tuple: client transport address and the server address it reached. */
	struct stun_addr client;
	struct stun_addr server;
	uint8_t transport;           /* client transport: TURN_TRANSPORT_UDP or _TCP (TLS is TCP) */
	struct stun_addr relay;      /* relayed transport address as advertised */
	struct stun_addr relay2;     /* dual allocation (RFC 8656 §7.2): the relayed address of
					the other family; family 0 when there is none */
	uint64_t expires;
	const char *username;        /* NUL-terminated, at most TURN_USERNAME_MAX bytes: "" until
					turn_alloc_set_user, then malloc'd and owned (issue 14: most
					names are short, so not an inline 129-byte array) */
	uint8_t key[32];             /* long-term key of username */
	uint8_t keylen;
	/* Last request and its answer, so a retransmission (same transaction ID)
	 * gets the same bytes back (RFC 8489 §6.3.1). */
	uint8_t last_tid[STUN_TID_LEN];
	uint16_t last_resp_len;
	uint8_t *last_resp;          /* malloc'd, owned */

	/* Permissions and channels (issue 14): malloc'd arrays, NULL while
	 * empty, 1 entry, then doubled up to the cap as needed (most allocations hold
	 * 1-4), freed again when turn_alloc_expire leaves one empty. Entries
	 * may be dead (expired): every lookup checks now, and turn_alloc_expire
	 * compacts them. */
	uint8_t nperms, nchans;      /* entries in use */
	uint8_t perms_size, chans_size; /* entries allocated */
	uint8_t max_perms, max_chans; /* caps (max-permissions, max-channels); 0: TURN_MAX_* */
	struct turn_perm *perms;
	struct turn_chan *chans;

	void *io;                    /* the owner's per-allocation I/O state */
	struct turn_alloc *hnext;    /* table hash chain */
	uint32_t hash;               /* of the 5-tuple (table buckets) */
	struct turn_timer timer;     /* the owner's expiry timer (turn_timer.h); cancelled by
					turn_table_remove */

	/* Live metrics and /sessions (issue 11): written by the owning worker
	 * only; other threads see them through a snapshot message. */
	uint64_t created;            /* monotonic seconds when the Allocate succeeded */
	uint64_t bytes_to_peer;      /* payload bytes relayed client -> peer */
	uint64_t bytes_to_client;    /* payload bytes relayed peer -> client */
	uint64_t packets_to_peer, packets_to_client;
	uint8_t stats_transport;     /* STATS_UDP/TCP/TLS of the allocs[][] gauge slot counted */
	uint8_t stats_family;        /* STATS_V4/V6 of that slot */
};

/* Outcomes of turn_alloc_chan_bind. */
enum { TURN_CHAN_OK = 0, TURN_CHAN_CONFLICT = -1, TURN_CHAN_FULL = -2, TURN_CHAN_PERMS_FULL = -3 };

/* 1 when the two addresses have the same family and IP (port ignored). */
int turn_addr_same_ip(const struct stun_addr *a, const struct stun_addr *b);
/* 1 when family, IP and port are all equal. */
int turn_addr_equal(const struct stun_addr *a, const struct stun_addr *b);

/* Installs or refreshes the permission for peer's IP until now + lifetime
 * (seconds). Returns 0, or -1 when the allocation holds its cap
 * (a->max_perms, else TURN_MAX_PERMS) of live permissions already (508). */
int turn_alloc_perm_add(struct turn_alloc *a, const struct stun_addr *peer, uint64_t now, uint32_t lifetime);

/* 1 when permissions for all n peers fit under the cap at now (those
 * already permitted, and repeats, cost nothing), else 0: CreatePermission
 * is all or nothing (RFC 8656 §9.2). Drops expired permissions first. */
int turn_alloc_perm_fits(struct turn_alloc *a, const struct stun_addr *peers, size_t n, uint64_t now);

/* 1 when a live permission covers peer's IP (RFC 8656 §9), else 0. */
int turn_alloc_perm_ok(const struct turn_alloc *a, const struct stun_addr *peer, uint64_t now);

/* Binds or refreshes channel number to peer until now + lifetime, and
 * refreshes the peer's permission for perm_lifetime (RFC 8656 §11.2).
 * TURN_CHAN_CONFLICT when the number is bound (or quarantined) to another
 * peer or the peer to another number (400); TURN_CHAN_FULL at the channel
 * cap (a->max_chans, else TURN_MAX_CHANNELS), TURN_CHAN_PERMS_FULL when the
 * peer's permission does not fit (both 508). */
int turn_alloc_chan_bind(struct turn_alloc *a, uint16_t number, const struct stun_addr *peer, uint64_t now,
			 uint32_t lifetime, uint32_t perm_lifetime);

/* Live binding for a channel number / a peer transport address, or NULL.
 * The pointer is valid until the next call that may change a (perm_add,
 * perm_fits, chan_bind, expire: the array may move or be freed). */
const struct turn_chan *turn_alloc_chan_by_number(const struct turn_alloc *a, uint16_t number, uint64_t now);
const struct turn_chan *turn_alloc_chan_by_peer(const struct turn_alloc *a, const struct stun_addr *peer,
						uint64_t now);

/* Frees a and everything it owns (arrays, username, cached response) and
 * cancels its timer. For an allocation in a table use turn_table_remove,
 * which unlinks it first. */
void turn_alloc_free(struct turn_alloc *a);

/* Drops expired permissions and channels past their quarantine, and frees
 * an array left empty. */
void turn_alloc_expire(struct turn_alloc *a, uint64_t now);

/* Earliest second (after now) at which a needs attention: its expiry, or
 * the moment a permission/channel dies or a channel leaves quarantine, so
 * that turn_alloc_expire can compact it. */
uint64_t turn_alloc_next_deadline(const struct turn_alloc *a, uint64_t now);

/* Sets a's username (copied; truncated to TURN_USERNAME_MAX bytes) and
 * long-term key (keylen bytes, at most 32). Returns 0, or -1 on out of
 * memory (a unchanged; the Allocate gets 508). */
int turn_alloc_set_user(struct turn_alloc *a, const char *username, const uint8_t *key, size_t keylen);

/* Stores a copy of the response to request tid for retransmissions.
 * Returns 0 or -1 on out of memory (then nothing is cached). */
int turn_alloc_cache_response(struct turn_alloc *a, const uint8_t tid[STUN_TID_LEN], const uint8_t *resp, size_t len);

/* ---- per-worker table keyed by 5-tuple --------------------------------- */

/* Growth is incremental (issue 14): when the table holds as many
 * allocations as buckets, a bucket array twice the size is allocated and the
 * old one's buckets move over a few at a time (TURN_TABLE_MOVE per
 * turn_table_add, more per turn_table_step), so no single Allocate pays for
 * a full rehash. While a move is under way, lookups check the old array for
 * buckets not yet moved. */
#define TURN_TABLE_MOVE 4   /* old buckets moved per turn_table_add */

struct turn_table {
	size_t nbuckets;             /* power of two */
	size_t count;
	struct turn_alloc **buckets;
	struct turn_alloc **old;     /* array being emptied into buckets, or NULL */
	size_t nold;                 /* its size (nbuckets / 2) */
	size_t moved;                /* old[0 .. moved-1] are empty (already moved) */
};

/* Creates an empty table with nbuckets (rounded up to a power of two); it
 * doubles when it holds as many allocations as buckets.
 * Returns 0 or -1 on out of memory. */
int turn_table_init(struct turn_table *t, size_t nbuckets);
/* Frees the table and every allocation in it, calling release(a) first on
 * each so the owner can close its I/O state (release may be NULL). */
void turn_table_destroy(struct turn_table *t, void (*release)(struct turn_alloc *));

/* The allocation of 5-tuple (client, server, transport), or NULL. */
struct turn_alloc *turn_table_find(const struct turn_table *t, const struct stun_addr *client,
				   const struct stun_addr *server, uint8_t transport);
/* New zeroed allocation for the 5-tuple, inserted. Returns NULL on out of memory. */
struct turn_alloc *turn_table_add(struct turn_table *t, const struct stun_addr *client,
				  const struct stun_addr *server, uint8_t transport);
/* Unlinks and frees a (its cached response too); the caller has released a->io. */
void turn_table_remove(struct turn_table *t, struct turn_alloc *a);

/* Moves up to n buckets of a move under way (call now and then, e.g. each
 * second, so a move finishes even without Allocates). Never while a
 * turn_table_foreach runs. */
void turn_table_step(struct turn_table *t, size_t n);

/* Calls fn on every allocation; fn may remove the one it is given (but not
 * add any). */
void turn_table_foreach(struct turn_table *t, void (*fn)(struct turn_alloc *, void *), void *arg);

#endif
