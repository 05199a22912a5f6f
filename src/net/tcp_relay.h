/* tcp_relay.h -- TURN TCP allocations (RFC 6062): Connect, ConnectionBind,
 * ConnectionAttempt, and raw relaying between client and peer data
 * connections.
 *
 * Off unless tcp-relay is set. A TCP allocation's relayed address is a
 * listening TCP socket in min-port..max-port, owned (with every peer and
 * client data connection of the allocation) by the worker that owns the
 * allocation. A ConnectionBind arrives on a new client connection, which
 * SO_REUSEPORT may have given to another worker: that worker authenticates
 * it and hands the socket (and TLS state) to the owner, named by the low
 * bits of the CONNECTION-ID, through the owner's message queue
 * (WORKER_MSG_TCP_BIND). See docs/threads.md.
 */
#ifndef TURNSTONE_TCP_RELAY_H
#define TURNSTONE_TCP_RELAY_H

#include "net/turn_req.h"
#include "net/worker.h"

/* Sets up w's connection table when tcp-relay is on. Returns 0 or -1 (out of memory). */
int tcp_relay_worker_init(struct worker *w);
/* Frees w's table; every allocation has been released already. */
void tcp_relay_worker_free(struct worker *w);

/* Checks an Allocate with REQUESTED-TRANSPORT TCP (RFC 6062 §5.1): 0 when
 * it may go on, else the error code: 442 with tcp-relay off, 400 over UDP
 * or with DONT-FRAGMENT, EVEN-PORT or RESERVATION-TOKEN. */
int tcp_relay_allocate_check(const struct req *r);

/* Binds and listens on a free port of min-port..max-port at addr->ip, sets
 * addr->port. Returns the socket, or -1 (errno set; EMFILE/ENFILE when out
 * of descriptors). */
int tcp_relay_bind(struct worker *w, struct stun_addr *addr);
/* Starts accepting peer connections on r->fd (bound at *bound) for r's
 * allocation. Returns 0 or -1; on -1 r->fd is still the caller's. */
int tcp_relay_attach(struct worker *w, struct relay *r, const struct stun_addr *bound);
/* Closes r's listening socket and every peer and client data connection of
 * the allocation (RFC 6062 §5.5: they end with it). */
void tcp_relay_release(struct relay *r);
/* 1 when a is a TCP allocation. */
int tcp_relay_is_tcp(const struct turn_alloc *a);

/* Connect (RFC 6062 §5.2) and ConnectionBind (§5.4), authenticated. */
void tcp_relay_connect(struct req *r);
void tcp_relay_connection_bind(struct req *r);

/* WORKER_MSG_TCP_BIND on the owning worker / freeing one never delivered. */
void tcp_relay_on_msg(struct worker *w, void *ptr);
void tcp_relay_msg_free(struct server *srv, void *ptr);

/* Once a second: Connect timeouts (447), peer connections never bound
 * (30 s, §5.3), closing connections that never drained. */
void tcp_relay_tick(struct worker *w);

#endif
