/* auth_rest.c -- TURN REST API time-limited credentials (HMAC-SHA1 passwords). */
#include "auth/auth_rest.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#include "stun/stun_msg.h"

/* Parses s[0..len) as a non-zero decimal uint64. Returns 0 or -1. */
static int parse_u64(const char *s, size_t len, uint64_t *out)
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

int auth_rest_parse(const char *username, const char *sep, uint64_t *expiry, const char **user_id,
		    size_t *user_id_len)
{
	const char *p, *right;
	size_t ulen, seplen;
	uint64_t v;

	if (username == NULL || sep == NULL || (seplen = strlen(sep)) == 0)
		return -1;
	ulen = strlen(username);
	if ((p = strstr(username, sep)) == NULL) {
		/* bare "<expiry>" */
		if (parse_u64(username, ulen, &v) < 0)
			return -1;
		*expiry = v;
		if (user_id != NULL) {
			*user_id = username + ulen;
			*user_id_len = 0;
		}
		return 0;
	}
	right = p + seplen;
	if (parse_u64(username, (size_t)(p - username), &v) == 0) {
		*expiry = v;
		if (user_id != NULL) {
			*user_id = right;
			*user_id_len = ulen - (size_t)(right - username);
		}
		return 0;
	}
	/* "<user-id>" SEP "<expiry>": the order of the first REST API drafts */
	if (parse_u64(right, ulen - (size_t)(right - username), &v) == 0) {
		*expiry = v;
		if (user_id != NULL) {
			*user_id = username;
			*user_id_len = (size_t)(p - username);
		}
		return 0;
	}
	return -1;
}

int auth_rest_password(const char *secret, const char *username, char out[AUTH_REST_PASSWORD_LEN + 1])
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;

	if (secret == NULL || username == NULL)
		return -1;
	if (HMAC(EVP_sha1(), secret, (int)strlen(secret), (const unsigned char *)username, strlen(username),
		 mac, &maclen) == NULL || maclen != 20)
		return -1;
	/* EVP_EncodeBlock writes 28 characters and a NUL for 20 bytes */
	if (EVP_EncodeBlock((unsigned char *)out, mac, (int)maclen) != AUTH_REST_PASSWORD_LEN)
		return -1;
	return 0;
}

int auth_rest_key(const char *secret, const char *username, const char *realm, uint8_t out[AUTH_REST_KEY_LEN])
{
	char pw[AUTH_REST_PASSWORD_LEN + 1];
	uint8_t key[32];
	int rc;

	if (realm == NULL || auth_rest_password(secret, username, pw) < 0)
		return -1;
	rc = stun_long_term_key(STUN_PW_ALG_MD5, username, realm, pw, key);
	OPENSSL_cleanse(pw, sizeof(pw));
	if (rc != AUTH_REST_KEY_LEN)
		return -1;
	memcpy(out, key, AUTH_REST_KEY_LEN);
	OPENSSL_cleanse(key, sizeof(key));
	return 0;
}

int auth_rest_expired(const char *username, const char *sep, uint64_t now)
{
	uint64_t expiry;

	if (auth_rest_parse(username, sep, &expiry, NULL, NULL) < 0)
		return 1;
	return expiry < now;
}

int auth_rest_username(uint64_t expiry, const char *sep, const char *user_id, char *out, size_t outlen)
{
	int n;

	if (user_id == NULL || user_id[0] == '\0')
		n = snprintf(out, outlen, "%llu", (unsigned long long)expiry);
	else
		n = snprintf(out, outlen, "%llu%s%s", (unsigned long long)expiry, sep, user_id);
	if (n < 0 || (size_t)n >= outlen)
		return -1;
	return n;
}
