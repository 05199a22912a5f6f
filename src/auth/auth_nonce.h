/* auth_nonce.h -- stateless NONCE values for long-term credentials.
 *
 * RFC 8489 §9.2: the server hands out a NONCE with every 401 and answers 438
 * (Stale Nonce) once it is no longer valid. Nothing is stored per client: a
 * nonce is the issue time plus an HMAC-SHA256 (keyed with a per-process
 * random secret) over that time and the client's IP address, so any worker
 * can check any nonce and a nonce cannot be moved to another client. Each
 * thread memoises the MACs it computed lately (a cache, not state: a miss
 * recomputes), so a client's 401 and the requests that follow it under the
 * same nonce cost one HMAC between them.
 */
#ifndef TURNSTONE_AUTH_NONCE_H
#define TURNSTONE_AUTH_NONCE_H

#include <stddef.h>
#include <stdint.h>

#include "stun/stun_msg.h"

#define AUTH_NONCE_LEN 24 /* characters: 8 hex of time, 16 hex of MAC */

struct auth_nonce {
	uint8_t secret[32];
	uint32_t lifetime; /* seconds */
};

/* Sets a fresh random secret and the lifetime in seconds. Returns 0, or -1
 * when the random generator fails. */
int auth_nonce_init(struct auth_nonce *n, uint32_t lifetime);

/* Writes a NUL-terminated nonce for client (only its IP is bound) issued at
 * now (seconds, wall clock) into out. */
void auth_nonce_make(const struct auth_nonce *n, uint64_t now, const struct stun_addr *client,
		     char out[AUTH_NONCE_LEN + 1]);

/* Checks a received nonce (len bytes, not NUL-terminated). Returns 0 when it
 * is ours, for this client, and younger than the lifetime; -1 otherwise (the
 * caller answers 438 with a fresh nonce). */
int auth_nonce_check(const struct auth_nonce *n, uint64_t now, const struct stun_addr *client,
		     const uint8_t *nonce, size_t len);

#endif
