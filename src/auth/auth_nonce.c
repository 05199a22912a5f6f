/* auth_nonce.c -- stateless nonces: issue time + truncated HMAC-SHA256. */
#include "auth/auth_nonce.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <string.h>

int auth_nonce_init(struct auth_nonce *n, uint32_t lifetime)
{
	n->lifetime = lifetime;
	return RAND_bytes(n->secret, sizeof(n->secret)) == 1 ? 0 : -1;
}

static void nonce_mac(const struct auth_nonce *n, uint32_t t, const struct stun_addr *client,
		      uint8_t mac[32])
{
	uint8_t msg[4 + 1 + 16];
	size_t iplen = client->family == STUN_AF_IPV6 ? 16 : 4;
	unsigned int maclen = 32;

	msg[0] = (uint8_t)(t >> 24);
	msg[1] = (uint8_t)(t >> 16);
	msg[2] = (uint8_t)(t >> 8);
	msg[3] = (uint8_t)t;
	msg[4] = client->family;
	memcpy(msg + 5, client->ip, iplen);
	HMAC(EVP_sha256(), n->secret, sizeof(n->secret), msg, 5 + iplen, mac, &maclen);
}

static const char hexdigits[] = "0123456789abcdef";

void auth_nonce_make(const struct auth_nonce *n, uint64_t now, const struct stun_addr *client,
		     char out[AUTH_NONCE_LEN + 1])
{
	uint32_t t = (uint32_t)now;
	uint8_t mac[32];
	int i;

	nonce_mac(n, t, client, mac);
	for (i = 0; i < 8; i++)
		out[i] = hexdigits[(t >> (28 - 4 * i)) & 0xf];
	for (i = 0; i < 8; i++) {
		out[8 + 2 * i] = hexdigits[mac[i] >> 4];
		out[9 + 2 * i] = hexdigits[mac[i] & 0xf];
	}
	out[AUTH_NONCE_LEN] = '\0';
}

static int hexval(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int auth_nonce_check(const struct auth_nonce *n, uint64_t now, const struct stun_addr *client,
		     const uint8_t *nonce, size_t len)
{
	char expect[AUTH_NONCE_LEN + 1];
	uint32_t t = 0;
	int i, v;

	if (len != AUTH_NONCE_LEN)
		return -1;
	for (i = 0; i < 8; i++) {
		if ((v = hexval(nonce[i])) < 0)
			return -1;
		t = (t << 4) | (uint32_t)v;
	}
	/* A nonce from the future (clock stepped back) is refused as well. */
	if ((uint64_t)t > now || now - t >= n->lifetime)
		return -1;
	auth_nonce_make(n, t, client, expect);
	return CRYPTO_memcmp(expect, nonce, AUTH_NONCE_LEN) == 0 ? 0 : -1;
}
