/* turn_handler.h -- STUN Binding and TURN request processing for UDP clients.
 *
 * Called by a worker for each datagram; answers through the worker's sockets.
 * Implements RFC 8489 §6.3 and §9.2 (long-term credentials) and the server
 * side of RFC 8656 §7-§12 (Allocate, Refresh, CreatePermission, ChannelBind,
 * Send/Data indications, ChannelData).
 */
#ifndef TURNSTONE_TURN_HANDLER_H
#define TURNSTONE_TURN_HANDLER_H

#include <stddef.h>
#include <stdint.h>

#include "net/worker.h"

/* One message from a client: a datagram, or one framed message of a TCP/TLS
 * stream (len without ChannelData padding). o says where it came from and
 * where answers go; buf is only read. */
void turn_handle_client(struct worker *w, const struct origin *o, const uint8_t *buf, size_t len);

/* A datagram from peer to allocation a's relay socket. buf has
 * WORKER_HEADROOM bytes before it and 4 spare bytes after it, where the
 * ChannelData or Data indication header and padding are written. */
void turn_handle_peer(struct worker *w, struct turn_alloc *a, const struct stun_addr *peer, uint8_t *buf,
		      size_t len);

/* Ends every allocation of user on w (a kill message from Redis). */
void turn_kill_user(struct worker *w, const char *user);

#endif
