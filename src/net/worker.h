/* worker.h -- relay worker threads and the sockets they own.
 *
 * Each worker runs its own event_base. It owns one SO_REUSEPORT UDP socket per
 * listening address (the kernel hashes a client's 5-tuple to one of them, so
 * a client always reaches the same worker), every allocation created through
 * those sockets, and each allocation's relay socket. Nothing on the relay path
 * is shared between workers, so nothing on it locks. The main thread talks to
 * a worker only through its wake-up eventfd (stop requests).
 */
#ifndef TURNSTONE_WORKER_H
#define TURNSTONE_WORKER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth_nonce.h"
#include "auth/auth_users.h"
#include "config.h"
#include "stun/stun_msg.h"
#include "turn/turn_alloc.h"

struct event;
struct event_base;
struct worker;

#define WORKER_HEADROOM 64     /* bytes kept free before received data for TURN headers */
#define WORKER_SLOT 2048       /* bytes per receive slot (headroom + datagram + padding) */
#define WORKER_BATCH 32        /* datagrams per recvmmsg */

/* Read-only state shared by all workers, built once at start. */
struct server {
	const struct config *cfg;
	struct auth_users *users;
	struct auth_nonce nonce;
	struct stun_addr listen[CONFIG_MAX_LISTEN];
	size_t nlisten;
	struct stun_addr relay_v4, relay_v6;   /* configured relay-ip, family 0 when unset */
	struct stun_addr ext_public;           /* external-ip public part, family 0 when unset */
	struct stun_addr ext_private;          /* external-ip private part, family 0 when unset */
	int nworkers;
	struct worker *workers;
};

/* One UDP listening socket of a worker. */
struct listener {
	int fd;
	struct event *ev;
	struct stun_addr local;    /* bound address; may be the wildcard */
	int wildcard;              /* use IP_PKTINFO to learn and reuse the local address */
	struct worker *w;
};

/* I/O state of one allocation (turn_alloc.io). */
struct relay {
	int fd;
	struct event *ev;
	struct listener *l;        /* the socket the client's 5-tuple uses */
	struct turn_alloc *alloc;
	struct worker *w;
};

struct worker {
	int id;
	struct server *srv;
	pthread_t thread;
	struct event_base *base;
	struct listener ls[2 * CONFIG_MAX_LISTEN];
	size_t nls;
	struct turn_table allocs;
	struct event *tick_ev, *wake_ev;
	int wake_fd;
	uint32_t rng;
	uint8_t *rx;               /* WORKER_BATCH slots of WORKER_SLOT bytes */
	uint8_t tx[WORKER_SLOT];   /* response scratch buffer */
};

/* Creates worker id's event_base and binds its listening sockets. Returns 0,
 * or -1 with a message in err (errlen bytes). */
int worker_init(struct worker *w, int id, struct server *srv, char *err, size_t errlen);
/* Starts the worker thread. Returns 0 or -1 (errno set). */
int worker_start(struct worker *w);
/* Asks the worker to stop (thread-safe) and waits for its thread. */
void worker_stop(struct worker *w);
/* Frees everything the worker owns; its thread must have stopped. */
void worker_free(struct worker *w);

/* Monotonic clock in seconds (allocation and permission lifetimes). */
uint64_t worker_now(void);
/* Wall clock in seconds (nonces). */
uint64_t worker_wallclock(void);

/* Sends len bytes to client from the listener's local address local.
 * Returns 0 or -1 (dropped; UDP loss is the client's to recover from). */
int worker_send_client(struct listener *l, const struct stun_addr *local, const struct stun_addr *client,
		       const void *buf, size_t len);

/* What an Allocate asks of its relay socket (RFC 8656 §7.2). */
struct relay_req {
	struct stun_addr bind_ip;        /* address to bind, port ignored */
	int even;                        /* EVEN-PORT: even port number */
	int reserve;                     /* EVEN-PORT R bit: also reserve port + 1 */
	const uint8_t *token;            /* RESERVATION-TOKEN (8 bytes) to claim, or NULL */
	int dont_fragment;               /* DONT-FRAGMENT: set DF on relayed IPv4 packets */
	uint8_t token_out[8];            /* set when reserve succeeded */
};

/* Opens a relay socket for a: claims rq->token's reserved socket, or binds
 * a port from min-port..max-port on rq->bind_ip (even, and reserving the
 * next one, as asked), registers it with the worker's loop and stores the
 * bound address in *bound. Returns 0; -1 when no port is free (508); -2
 * when the token is unknown or expired (508 as well, logged differently). */
int worker_relay_open(struct worker *w, struct listener *l, struct turn_alloc *a, struct relay_req *rq,
		      struct stun_addr *bound);

/* Sends len bytes from a's relayed address to peer. Returns 0 or -1. */
int worker_relay_send(struct turn_alloc *a, const struct stun_addr *peer, const void *buf, size_t len);

/* Closes a's relay socket, removes a from the table and frees it. */
void worker_alloc_free(struct worker *w, struct turn_alloc *a);

#endif
