/* turn_auth.h -- long-term credential checks for TURN requests (RFC 8489
 * §9.2.4): configured users, TURN REST API names, and the Redis user
 * database, whose lookups park the request until Redis answers. */
#ifndef TURNSTONE_TURN_AUTH_H
#define TURNSTONE_TURN_AUTH_H

#include "net/turn_req.h"

/* RFC 8489 §9.2.1 nonce cookie: "obMatJos2" and the 24 STUN Security
 * Feature bits in base64. Bit 0 (the rightmost, erratum 6290) is "Password
 * algorithms": 0x000001 is "AAAB". Every NONCE the server hands out starts
 * with it and one without it is not ours (438), so a path attacker cannot
 * strip the cookie to bid a client down to MD5. */
#define TURN_NONCE_COOKIE "obMatJos2AAAB"
#define TURN_NONCE_COOKIE_LEN 13

/* Writes the PASSWORD-ALGORITHMS value the server offers (RFC 8489 §14.11)
 * into out (8 bytes) and returns its length: SHA-256 first, or MD5 first
 * when redis-userdb is set (Redis users have MD5 keys only, docs/redis.md). */
size_t turn_auth_algorithms(const struct config *cfg, uint8_t out[8]);

/* Authenticates r and, once the key is known (now, or when Redis answers),
 * calls turn_req_authenticated; on failure answers 400/401/438/500 itself.
 * Sources, in order: REST API names when use-auth-secret is on, the
 * configured users, then the Redis user database. */
void turn_auth_request(struct req *r);

/* Drops the requests of conn (all, when conn is NULL) that wait for Redis:
 * the connection is closing, or the worker is stopping. */
void turn_cancel_pending(struct worker *w, const struct stream_conn *conn);

#endif
