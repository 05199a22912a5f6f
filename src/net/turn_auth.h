/* turn_auth.h -- long-term credential checks for TURN requests (RFC 8489
 * §9.2.4): configured users, TURN REST API names, and the Redis user
 * database, whose lookups park the request until Redis answers. */
#ifndef TURNSTONE_TURN_AUTH_H
#define TURNSTONE_TURN_AUTH_H

#include "net/turn_req.h"

/* Authenticates r and, once the key is known (now, or when Redis answers),
 * calls turn_req_authenticated; on failure answers 400/401/438/500 itself.
 * Sources, in order: REST API names when use-auth-secret is on, the
 * configured users, then the Redis user database. */
void turn_auth_request(struct req *r);

/* Drops the requests of conn (all, when conn is NULL) that wait for Redis:
 * the connection is closing, or the worker is stopping. */
void turn_cancel_pending(struct worker *w, const struct stream_conn *conn);

#endif
