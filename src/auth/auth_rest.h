/* auth_rest.h -- time-limited credentials of the TURN REST API.
 *
 * draft-uberti-behave-turn-rest-00 §2.2 (the scheme coturn implements as
 * use-auth-secret / static-auth-secret; RFC 7635 §4.1 describes the same
 * idea for OAuth): a web service that shares a secret with the TURN server
 * hands a client
 *     username = "<expiry>" SEP "<user-id>"   (expiry: Unix time, seconds)
 *     password = base64(HMAC-SHA1(secret, username))
 * and the server recomputes the password instead of storing users. The
 * long-term key is then the usual MD5(username:realm:password) (RFC 8489
 * §9.2.2). Like coturn we also accept a bare "<expiry>" and the older
 * "<user-id>" SEP "<expiry>" order.
 *
 * Pure code: strings in, strings and keys out. Digests from OpenSSL libcrypto.
 * All strings are NUL-terminated and used as given (no SASLprep).
 */
#ifndef TURNSTONE_AUTH_REST_H
#define TURNSTONE_AUTH_REST_H

#include <stddef.h>
#include <stdint.h>

#define AUTH_REST_PASSWORD_LEN 28 /* characters: base64 of a 20-byte HMAC-SHA1 */
#define AUTH_REST_KEY_LEN 16      /* bytes: MD5 */

/* Splits a REST API username at the first occurrence of sep (a non-empty
 * string, the rest-api-separator, default ":"). On success *expiry is the
 * expiry time (Unix seconds) and, when user_id is not NULL, *user_id points
 * into username at the user id, *user_id_len bytes long, not NUL-terminated
 * (length 0 for a bare "<expiry>"). The part before sep is the expiry when it
 * is all digits, else the part after it (the older order). Returns 0, or -1
 * when neither part is a decimal number that fits in 64 bits, or it is 0. */
int auth_rest_parse(const char *username, const char *sep, uint64_t *expiry, const char **user_id,
		    size_t *user_id_len);

/* Writes base64(HMAC-SHA1(secret, username)) and a NUL into out.
 * Returns 0, or -1 when an argument is NULL or the digest fails. */
int auth_rest_password(const char *secret, const char *username, char out[AUTH_REST_PASSWORD_LEN + 1]);

/* The long-term key for a REST API username under secret: MD5 of
 * "username:realm:password" with password = auth_rest_password(secret,
 * username). The server computes it for each candidate secret and checks
 * MESSAGE-INTEGRITY with each (RFC 8489 §9.2.4). Returns 0 or -1. */
int auth_rest_key(const char *secret, const char *username, const char *realm, uint8_t out[AUTH_REST_KEY_LEN]);

/* 1 when username is not a valid REST API username (see auth_rest_parse)
 * or its expiry is before now (Unix seconds); 0 while it is still valid
 * (through its expiry second, as coturn). */
int auth_rest_expired(const char *username, const char *sep, uint64_t now);

/* Builds "<expiry>" SEP "<user_id>" (just "<expiry>" when user_id is NULL
 * or empty) into out[0..outlen). Returns the length in bytes, or -1 when it
 * does not fit. Used by turnstone-admin's credential command. */
int auth_rest_username(uint64_t expiry, const char *sep, const char *user_id, char *out, size_t outlen);

#endif
