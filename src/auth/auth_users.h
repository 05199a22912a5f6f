/* auth_users.h -- long-term credential users from the configuration.
 *
 * RFC 8489 §9.2.2: the key is MD5 (or SHA-256 with PASSWORD-ALGORITHM) of
 * "username:realm:password". Keys are computed once at start; passwords are
 * not kept. Read-only after creation, so all workers share one table.
 */
#ifndef TURNSTONE_AUTH_USERS_H
#define TURNSTONE_AUTH_USERS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct auth_users;

/* 1 when password is coturn's stored-key form "0x" + 32 hex digits (the MD5
 * long-term key of RFC 8489 §9.2.2, as turnadmin -k prints it), with the
 * 16 bytes in key; 0 otherwise (key untouched). Such a user has no SHA-256
 * key: a PASSWORD-ALGORITHM SHA-256 request for it fails like an unknown
 * user. */
int auth_users_hex_key(const char *password, uint8_t key[16]);

/* Builds the table for realm from n config users. Returns NULL on out of memory. */
struct auth_users *auth_users_new(const char *realm, const struct config_user *users, size_t n);
void auth_users_free(struct auth_users *u);

/* Copies the key of user name[0..namelen) for alg (enum stun_pw_alg) into
 * key. Returns the key length in bytes (16 or 32), or -1 for an unknown user
 * or algorithm. */
int auth_users_key(const struct auth_users *u, const uint8_t *name, size_t namelen, int alg, uint8_t key[32]);

/* Finds the user whose USERHASH (RFC 8489 §14.4) is hash. Returns the
 * NUL-terminated name (owned by the table) or NULL. */
const char *auth_users_by_userhash(const struct auth_users *u, const uint8_t hash[32]);

#endif
