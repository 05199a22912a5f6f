/* auth_token.c -- signaling join tokens (HMAC-SHA256, see auth_token.h). */
#include "auth/auth_token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

int auth_token_user_ok(const char *user, size_t len)
{
	size_t i;

	if (user == NULL || len == 0 || len > AUTH_TOKEN_USER_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		char ch = user[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '_' || ch == '.' || ch == '@' || ch == '-'))
			return 0;
	}
	return 1;
}

/* base64url(HMAC-SHA256(secret, payload[0..len))) without padding into mac
 * (AUTH_TOKEN_MAC_LEN characters and a NUL). Returns 0 or -1. */
static int token_mac(const char *secret, const char *payload, size_t len, char mac[AUTH_TOKEN_MAC_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE], b64[48];
	unsigned int mdlen = 0;
	int i;

	if (HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)payload, len, md, &mdlen) ==
		    NULL ||
	    mdlen != 32)
		return -1;
	if (EVP_EncodeBlock(b64, md, (int)mdlen) != AUTH_TOKEN_MAC_LEN + 1) /* 44 with one '=' */
		return -1;
	OPENSSL_cleanse(md, sizeof(md));
	for (i = 0; i < AUTH_TOKEN_MAC_LEN; i++)
		mac[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : (char)b64[i];
	mac[AUTH_TOKEN_MAC_LEN] = '\0';
	return 0;
}

int auth_token_make(const char *secret, uint64_t expiry, const char *user, const char *room, char *out,
		    size_t outlen)
{
	char mac[AUTH_TOKEN_MAC_LEN + 1];
	size_t rlen;
	int n;

	if (secret == NULL || user == NULL || room == NULL || out == NULL || expiry == 0 ||
	    !auth_token_user_ok(user, strlen(user)) || (rlen = strlen(room)) == 0 || rlen > AUTH_TOKEN_ROOM_MAX)
		return -1;
	n = snprintf(out, outlen, "%llu:%s:%s", (unsigned long long)expiry, user, room);
	if (n < 0 || (size_t)n + 1 + AUTH_TOKEN_MAC_LEN >= outlen)
		return -1;
	if (token_mac(secret, out, (size_t)n, mac) < 0)
		return -1;
	out[n] = ':';
	memcpy(out + n + 1, mac, AUTH_TOKEN_MAC_LEN + 1);
	return n + 1 + AUTH_TOKEN_MAC_LEN;
}

/* Parses s[0..len) as a non-zero decimal uint64 without a sign. */
static int parse_expiry(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0 || len > 20)
		return -1;
	for (i = 0; i < len; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return -1;
		d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (v == 0)
		return -1;
	*out = v;
	return 0;
}

int auth_token_check(const char *secret, const char *token, const char *room, uint64_t now,
		     struct auth_token *t)
{
	const char *c1, *c2, *last;
	char want[AUTH_TOKEN_MAC_LEN + 1];
	size_t len, ulen, rlen;
	uint64_t expiry;
	int good;

	if (secret == NULL || token == NULL || (len = strlen(token)) > AUTH_TOKEN_MAX_LEN)
		return AUTH_TOKEN_MALFORMED;
	if ((c1 = strchr(token, ':')) == NULL || (c2 = strchr(c1 + 1, ':')) == NULL ||
	    (last = strrchr(token, ':')) == c2)
		return AUTH_TOKEN_MALFORMED;
	ulen = (size_t)(c2 - c1 - 1);
	rlen = (size_t)(last - c2 - 1);
	if (parse_expiry(token, (size_t)(c1 - token), &expiry) < 0 || !auth_token_user_ok(c1 + 1, ulen) ||
	    rlen == 0 || rlen > AUTH_TOKEN_ROOM_MAX || strlen(last + 1) != AUTH_TOKEN_MAC_LEN)
		return AUTH_TOKEN_MALFORMED;
	if (token_mac(secret, token, (size_t)(last - token), want) < 0)
		return AUTH_TOKEN_MALFORMED;
	good = CRYPTO_memcmp(want, last + 1, AUTH_TOKEN_MAC_LEN) == 0;
	OPENSSL_cleanse(want, sizeof(want));
	if (!good)
		return AUTH_TOKEN_BAD_MAC;
	if (t != NULL) {
		t->expiry = expiry;
		memcpy(t->user, c1 + 1, ulen);
		t->user[ulen] = '\0';
		memcpy(t->room, c2 + 1, rlen);
		t->room[rlen] = '\0';
	}
	if (expiry < now)
		return AUTH_TOKEN_EXPIRED;
	if (room != NULL && (strlen(room) != rlen || memcmp(room, c2 + 1, rlen) != 0))
		return AUTH_TOKEN_WRONG_ROOM;
	return AUTH_TOKEN_OK;
}

const char *auth_token_reason(int status)
{
	switch (status) {
	case AUTH_TOKEN_OK: return "";
	case AUTH_TOKEN_BAD_MAC: return "token bad signature";
	case AUTH_TOKEN_EXPIRED: return "token expired";
	case AUTH_TOKEN_WRONG_ROOM: return "token for another room";
	default: return "token malformed";
	}
}
