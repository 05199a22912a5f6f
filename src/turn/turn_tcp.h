/* turn_tcp.h -- connection state of TCP allocations (RFC 6062 §5).
 *
 * Pure code: no sockets. A worker keeps one table of the peer data
 * connections of all its TCP allocations, keyed by CONNECTION-ID, and each
 * allocation a list of its own (for 446 and for closing them all when the
 * allocation ends). A CONNECTION-ID carries the owning worker's index in its
 * low TURN_TCP_WORKER_BITS bits, so a ConnectionBind accepted by any worker
 * knows where to hand its connection without a shared table. One worker
 * owns a table and everything in it: nothing here locks.
 */
#ifndef TURNSTONE_TURN_TCP_H
#define TURNSTONE_TURN_TCP_H

#include <stddef.h>
#include <stdint.h>

#include "stun/stun_msg.h"

#define TURN_TCP_WORKER_BITS 10     /* relay-threads <= 1024 */
#define TURN_TCP_BUCKETS 1024       /* hash buckets per worker table */
#define TURN_TCP_BIND_TIMEOUT 30    /* s a peer connection waits for ConnectionBind (§5.2, §5.3) */

enum turn_tcp_state {
	TURN_TCP_CONNECTING,        /* Connect sent, no answer from the peer yet */
	TURN_TCP_PENDING,           /* peer connected, waiting for ConnectionBind */
	TURN_TCP_BOUND,             /* client data connection bound: raw bytes both ways */
};

struct turn_tcp_conn {
	uint32_t id;                /* CONNECTION-ID, host order */
	struct stun_addr peer;      /* peer transport address */
	uint8_t state;              /* enum turn_tcp_state */
	uint8_t inbound;            /* 1: the peer connected to the relayed address (§5.3) */
	uint64_t deadline;          /* monotonic s: end of CONNECTING or PENDING */
	void *io;                   /* the owner's I/O state */
	struct turn_tcp_conn *hnext;            /* table hash chain */
	struct turn_tcp_conn *anext, *aprev;    /* allocation's list */
};

/* One allocation's connections. */
struct turn_tcp_list {
	struct turn_tcp_conn *head;
	unsigned npending;          /* CONNECTING or PENDING */
};

/* One worker's connections. */
struct turn_tcp_table {
	struct turn_tcp_conn *buckets[TURN_TCP_BUCKETS];
	size_t count;
	size_t npending;
};

/* The worker index encoded in a CONNECTION-ID. */
static inline unsigned turn_tcp_id_worker(uint32_t id)
{
	return id & ((1u << TURN_TCP_WORKER_BITS) - 1);
}

/* New connection to peer in state st, linked into t and l, with a fresh
 * CONNECTION-ID made from rnd (any 32 random bits) and worker (the owner's
 * index, < 1024), unique in t. deadline is left 0. Returns NULL on out of
 * memory. */
struct turn_tcp_conn *turn_tcp_add(struct turn_tcp_table *t, struct turn_tcp_list *l, const struct stun_addr *peer,
				   enum turn_tcp_state st, uint32_t rnd, unsigned worker);

/* The connection with CONNECTION-ID id, or NULL. */
struct turn_tcp_conn *turn_tcp_find(const struct turn_tcp_table *t, uint32_t id);

/* l's connection (in any state) to the transport address peer, or NULL:
 * a second one to the same peer is 446 (§5.2). */
struct turn_tcp_conn *turn_tcp_find_peer(const struct turn_tcp_list *l, const struct stun_addr *peer);

/* Moves c to state st, keeping the pending counts of t and l. */
void turn_tcp_set_state(struct turn_tcp_table *t, struct turn_tcp_list *l, struct turn_tcp_conn *c,
			enum turn_tcp_state st);

/* 1 when c is CONNECTING or PENDING. */
static inline int turn_tcp_is_pending(const struct turn_tcp_conn *c)
{
	return c->state != TURN_TCP_BOUND;
}

/* Unlinks c from t and l and frees it; the caller has released c->io. */
void turn_tcp_remove(struct turn_tcp_table *t, struct turn_tcp_list *l, struct turn_tcp_conn *c);

/* Calls fn on every connection of t; fn may remove the one it is given. */
void turn_tcp_foreach(struct turn_tcp_table *t, void (*fn)(struct turn_tcp_conn *, void *), void *arg);

#endif
