/* turn_req.h -- one STUN/TURN request being answered: shared by the
 * request handlers (turn_handler.c) and authentication (turn_auth.c).
 * Internal to src/net. */
#ifndef TURNSTONE_TURN_REQ_H
#define TURNSTONE_TURN_REQ_H

#include <stddef.h>
#include <stdint.h>

#include "net/worker.h"
#include "stun/stun_msg.h"

#define TRANSPORT_UDP 17

/* One request being answered. */
struct req {
	struct worker *w;
	const struct origin *o;
	const struct stun_addr *client, *local; /* &o->client, &o->local */
	struct stun_msg m;
	struct turn_alloc *alloc;     /* existing allocation of this 5-tuple, or NULL */
	/* set once the request is authenticated */
	char username[TURN_USERNAME_MAX + 1];
	uint8_t key[32];
	size_t keylen;
	int sha256;                   /* request used MESSAGE-INTEGRITY-SHA256 */
};

static inline uint8_t transport_of(const struct origin *o)
{
	return o->conn != NULL ? TURN_TRANSPORT_TCP : TURN_TRANSPORT_UDP;
}

/* Starts a response of class cls to r in the worker's scratch buffer (with SOFTWARE). */
void turn_req_begin(struct req *r, struct stun_builder *b, uint8_t cls);
/* Adds MESSAGE-INTEGRITY (when r is authenticated) and FINGERPRINT (when the
 * request had one), sends it to r's client; returns the length sent, 0 on overflow. */
size_t turn_req_send(struct req *r, struct stun_builder *b);
/* Counts the answer to an Allocate (code 200 for success) in the worker's
 * allocate[] metrics; does nothing for other methods. */
void turn_req_count(struct req *r, int code);
/* Error response with the default reason phrase (RFC 8489 §14.8). */
void turn_req_error(struct req *r, int code);
/* 401 or 438 with REALM and a fresh NONCE, never MESSAGE-INTEGRITY (§9.2.4). */
void turn_req_challenge(struct req *r, int code);
/* 420 with UNKNOWN-ATTRIBUTES (RFC 8489 §6.3.1.1). */
void turn_req_unknown(struct req *r);
/* Continues a TURN request once turn_auth_request has authenticated it. */
void turn_req_authenticated(struct req *r);

#endif
