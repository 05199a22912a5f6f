/* auth_token.h -- signaling join tokens: proof from an application's own
 * backend that a client may join a room and get TURN credentials.
 *
 * The backend shares signaling-auth-secret with turnstone (the same idea as
 * the TURN REST API, draft-uberti-behave-turn-rest-00, with HMAC-SHA256) and
 * hands its authenticated user
 *     payload = "<expiry>:<user id>:<room>"   (expiry: Unix time, seconds)
 *     token   = payload ":" base64url(HMAC-SHA256(secret, payload))
 * base64url is RFC 4648 §5 without "=" padding (43 characters), so a token
 * is safe in a URL query. The room is everything between the second and the
 * last ':' (it may contain ':'); the user id is 1..AUTH_TOKEN_USER_MAX of
 * [A-Za-z0-9_.@-]. A token is valid through its expiry second.
 * docs/signaling.md shows how to mint one in a few lines of any language;
 * `turnstone-admin signaling-token` prints one.
 *
 * Pure code: strings in, strings and results out. HMAC from OpenSSL
 * libcrypto; MACs are compared in constant time (CRYPTO_memcmp).
 */
#ifndef TURNSTONE_AUTH_TOKEN_H
#define TURNSTONE_AUTH_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#define AUTH_TOKEN_MAC_LEN 43   /* characters: base64url of 32 bytes, no padding */
#define AUTH_TOKEN_USER_MAX 64  /* bytes of a user id */
#define AUTH_TOKEN_ROOM_MAX 128 /* bytes of a room name (as the signaling protocol) */
/* longest token: 20 digits, user, room, the MAC and three ':' */
#define AUTH_TOKEN_MAX_LEN (20 + AUTH_TOKEN_USER_MAX + AUTH_TOKEN_ROOM_MAX + AUTH_TOKEN_MAC_LEN + 3)

/* What auth_token_check found. The order of checks is format, MAC, expiry,
 * room, so nothing about a forged token's contents is confirmed. */
enum auth_token_status {
	AUTH_TOKEN_OK = 0,
	AUTH_TOKEN_MALFORMED = -1,  /* not "<expiry>:<user>:<room>:<mac>" or too long */
	AUTH_TOKEN_BAD_MAC = -2,    /* not signed with this secret */
	AUTH_TOKEN_EXPIRED = -3,    /* expiry < now */
	AUTH_TOKEN_WRONG_ROOM = -4, /* signed for another room */
};

/* A checked token's contents (NUL-terminated copies). */
struct auth_token {
	uint64_t expiry;                      /* Unix seconds */
	char user[AUTH_TOKEN_USER_MAX + 1];
	char room[AUTH_TOKEN_ROOM_MAX + 1];
};

/* 1 when user[0..len) is a valid user id: 1..AUTH_TOKEN_USER_MAX bytes of
 * [A-Za-z0-9_.@-]; else 0. */
int auth_token_user_ok(const char *user, size_t len);

/* Writes the token for (expiry, user, room) signed with secret into
 * out[0..outlen) with a NUL. room: 1..AUTH_TOKEN_ROOM_MAX bytes, no NUL.
 * Returns the token's length in bytes, or -1 when an argument is NULL or
 * invalid (see auth_token_user_ok, expiry 0), it does not fit, or HMAC
 * fails. */
int auth_token_make(const char *secret, uint64_t expiry, const char *user, const char *room, char *out,
		    size_t outlen);

/* Checks token (NUL-terminated) against secret at time now (Unix seconds).
 * room NULL accepts any room (GET /ice-servers); otherwise the token's room
 * must equal it byte for byte. Fills *t (when not NULL) once the MAC is
 * good, also for EXPIRED and WRONG_ROOM. Returns an auth_token_status. */
int auth_token_check(const char *secret, const char *token, const char *room, uint64_t now,
		     struct auth_token *t);

/* A short reason for a status, used as the signaling error reason:
 * "token malformed", "token bad signature", "token expired",
 * "token for another room"; "" for AUTH_TOKEN_OK. */
const char *auth_token_reason(int status);

#endif
