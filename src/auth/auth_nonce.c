/* auth_nonce.c -- stateless nonces: issue time + truncated HMAC-SHA256. */
#include "auth/auth_nonce.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <string.h>

#include "stun/stun_hmac.h"

int auth_nonce_init(struct auth_nonce *n, uint32_t lifetime)
{
	n->lifetime = lifetime;
	return RAND_bytes(n->secret, sizeof(n->secret)) == 1 ? 0 : -1;
}

/* HMAC-SHA256 under the secret of t and the client's IP; the secret's keyed
 * context is kept per thread (stun_hmac). Returns 0 or -1. */
static int nonce_mac(const struct auth_nonce *n, const uint8_t *msg, size_t len, uint8_t mac[32])
{
	return stun_hmac(STUN_HMAC_SHA256, n->secret, sizeof(n->secret), msg, len, NULL, 0, mac, 32);
}

/* Per-thread memo of the MAC part (8 bytes) for (t, client IP): a client's
 * 401 and its next request, and the requests of one allocation, carry the
 * same (t, IP), and the MAC is a function of (secret, t, IP) alone, so it is
 * computed once per thread. Direct-mapped; a miss just computes it. Flushed
 * whenever the secret differs from the one it was filled under. */
#define NONCE_MEMO 256
struct nonce_memo_entry {
	uint8_t used;
	uint8_t msg[4 + 1 + 16]; /* t, family, IP (zero-padded) */
	uint8_t mac[8];
};

static _Thread_local struct {
	uint8_t secret[32];
	struct nonce_memo_entry e[NONCE_MEMO];
} nonce_memo;

/* The first 8 bytes of the MAC of t and client into mac8. Returns 0 or -1. */
static int nonce_mac8(const struct auth_nonce *n, uint32_t t, const struct stun_addr *client, uint8_t mac8[8])
{
	uint8_t msg[4 + 1 + 16] = { 0 }, mac[32];
	size_t iplen = client->family == STUN_AF_IPV6 ? 16 : 4;
	struct nonce_memo_entry *e;
	uint32_t h = 2166136261u;

	msg[0] = (uint8_t)(t >> 24);
	msg[1] = (uint8_t)(t >> 16);
	msg[2] = (uint8_t)(t >> 8);
	msg[3] = (uint8_t)t;
	msg[4] = client->family;
	memcpy(msg + 5, client->ip, iplen);
	if (CRYPTO_memcmp(nonce_memo.secret, n->secret, sizeof(n->secret)) != 0) {
		memset(nonce_memo.e, 0, sizeof(nonce_memo.e));
		memcpy(nonce_memo.secret, n->secret, sizeof(n->secret));
	}
	for (size_t i = 0; i < sizeof(msg); i++)
		h = (h ^ msg[i]) * 16777619u; /* FNV-1a */
	e = &nonce_memo.e[(h ^ (h >> 16)) % NONCE_MEMO];
	if (e->used && memcmp(e->msg, msg, sizeof(msg)) == 0) {
		memcpy(mac8, e->mac, 8);
		return 0;
	}
	/* the MAC input is t, family and the IP's own length, as before */
	if (nonce_mac(n, msg, 5 + iplen, mac) != 0)
		return -1;
	memcpy(mac8, mac, 8);
	memcpy(e->msg, msg, sizeof(msg));
	memcpy(e->mac, mac, 8);
	e->used = 1;
	return 0;
}

static const char hexdigits[] = "0123456789abcdef";

/* The nonce text for t. Returns 0, or -1 when the MAC failed (out then
 * holds a zero MAC). */
static int nonce_text(const struct auth_nonce *n, uint32_t t, const struct stun_addr *client,
		      char out[AUTH_NONCE_LEN + 1])
{
	uint8_t mac[8];
	int i, rc;

	/* On failure the MAC part is zeros: auth_nonce_check, which refuses
	 * whenever its own MAC fails, accepts such a nonce with odds 2^-64. */
	if ((rc = nonce_mac8(n, t, client, mac)) != 0)
		memset(mac, 0, sizeof(mac));
	for (i = 0; i < 8; i++)
		out[i] = hexdigits[(t >> (28 - 4 * i)) & 0xf];
	for (i = 0; i < 8; i++) {
		out[8 + 2 * i] = hexdigits[mac[i] >> 4];
		out[9 + 2 * i] = hexdigits[mac[i] & 0xf];
	}
	out[AUTH_NONCE_LEN] = '\0';
	return rc;
}

void auth_nonce_make(const struct auth_nonce *n, uint64_t now, const struct stun_addr *client,
		     char out[AUTH_NONCE_LEN + 1])
{
	nonce_text(n, (uint32_t)now, client, out);
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
	if (nonce_text(n, t, client, expect) != 0)
		return -1;
	return CRYPTO_memcmp(expect, nonce, AUTH_NONCE_LEN) == 0 ? 0 : -1;
}
