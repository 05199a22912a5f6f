/* signal_ice.h -- the "iceServers" list the signaling endpoint hands to
 * pages (in "joined" and GET /ice-servers): the server's STUN and TURN URLs
 * (RFC 7064, RFC 7065) and TURN REST API credentials
 * (draft-uberti-behave-turn-rest-00 §2.2) that expire after
 * signaling-credential-ttl seconds, so a page never holds a long-lived
 * password.
 *
 * The secret is the first static-auth-secret; without one but with
 * redis-userdb it is the first (sorted) secret of the realm in Redis, read
 * asynchronously on the signaling thread's event_base and refreshed every
 * minute. Without use-auth-secret or any secret the list has the STUN URL
 * only. Signaling thread only.
 */
#ifndef TURNSTONE_SIGNAL_ICE_H
#define TURNSTONE_SIGNAL_ICE_H

#include <jansson.h>
#include <stddef.h>

#include "config.h"

struct event_base;
struct signal_ice;

/* Creates the list builder for cfg (which must outlive it) on base; starts
 * the Redis secret lookup when needed and logs once when pages will get no
 * TURN credentials. Returns NULL with a message in err on failure. */
struct signal_ice *signal_ice_new(const struct config *cfg, struct event_base *base, char *err, size_t errlen);

/* Frees ice and its Redis client. Call on the signaling thread (or before it
 * runs / after it stopped). NULL is ignored. */
void signal_ice_free(struct signal_ice *ice);

/* Builds the RTCIceServer array. host is the address to advertise when
 * external-ip is not set: the local IP the HTTP client reached, IPv6 in
 * brackets. user_id goes into the REST username "<expiry>:<user_id>";
 * NULL: the client is not entitled to TURN credentials, STUN only.
 * Returns a new reference, or NULL on no memory. */
json_t *signal_ice_servers(struct signal_ice *ice, const char *host, const char *user_id);

/* 1 when signal_ice_servers currently includes TURN credentials. */
int signal_ice_has_credentials(const struct signal_ice *ice);

#endif
