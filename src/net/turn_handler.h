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

/* A datagram from client to the listener l (local = the server address it
 * reached). buf has WORKER_HEADROOM bytes before it and room for padding
 * after it, up to WORKER_SLOT in all. */
void turn_handle_client(struct worker *w, struct listener *l, const struct stun_addr *client,
			const struct stun_addr *local, uint8_t *buf, size_t len);

/* A datagram from peer to allocation a's relay socket; same buffer layout. */
void turn_handle_peer(struct worker *w, struct turn_alloc *a, const struct stun_addr *peer, uint8_t *buf,
		      size_t len);

#endif
