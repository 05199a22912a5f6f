/* test_auth.c -- unit tests for stateless nonces and the static user table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>

#include "auth/auth_nonce.h"
#include "auth/auth_users.h"
#include "stun/stun_msg.h"

static struct stun_addr client(uint8_t last)
{
	struct stun_addr a;

	memset(&a, 0, sizeof(a));
	a.family = STUN_AF_IPV4;
	a.ip[0] = 192;
	a.ip[1] = 0;
	a.ip[2] = 2;
	a.ip[3] = last;
	a.port = 5000;
	return a;
}

static void test_nonce_roundtrip(void **state)
{
	struct auth_nonce n;
	struct stun_addr c = client(1);
	char s[AUTH_NONCE_LEN + 1];

	assert_int_equal(auth_nonce_init(&n, 600), 0);
	auth_nonce_make(&n, 1000000, &c, s);
	assert_int_equal(strlen(s), AUTH_NONCE_LEN);
	assert_int_equal(auth_nonce_check(&n, 1000000, &c, (const uint8_t *)s, AUTH_NONCE_LEN), 0);
	assert_int_equal(auth_nonce_check(&n, 1000599, &c, (const uint8_t *)s, AUTH_NONCE_LEN), 0);
}

static void test_nonce_stale(void **state)
{
	struct auth_nonce n;
	struct stun_addr c = client(1);
	char s[AUTH_NONCE_LEN + 1];

	assert_int_equal(auth_nonce_init(&n, 600), 0);
	auth_nonce_make(&n, 1000000, &c, s);
	assert_int_equal(auth_nonce_check(&n, 1000600, &c, (const uint8_t *)s, AUTH_NONCE_LEN), -1);
	/* issued "in the future": refused too */
	assert_int_equal(auth_nonce_check(&n, 999999, &c, (const uint8_t *)s, AUTH_NONCE_LEN), -1);
}

static void test_nonce_bound_to_client_and_secret(void **state)
{
	struct auth_nonce n, other;
	struct stun_addr c = client(1), d = client(2);
	char s[AUTH_NONCE_LEN + 1];

	assert_int_equal(auth_nonce_init(&n, 600), 0);
	assert_int_equal(auth_nonce_init(&other, 600), 0);
	auth_nonce_make(&n, 5000, &c, s);
	assert_int_equal(auth_nonce_check(&n, 5001, &d, (const uint8_t *)s, AUTH_NONCE_LEN), -1);
	assert_int_equal(auth_nonce_check(&other, 5001, &c, (const uint8_t *)s, AUTH_NONCE_LEN), -1);
}

static void test_nonce_tampered(void **state)
{
	struct auth_nonce n;
	struct stun_addr c = client(1);
	char s[AUTH_NONCE_LEN + 1];
	int i;

	assert_int_equal(auth_nonce_init(&n, 600), 0);
	auth_nonce_make(&n, 5000, &c, s);
	for (i = 0; i < AUTH_NONCE_LEN; i++) {
		char t[AUTH_NONCE_LEN + 1];

		memcpy(t, s, sizeof(t));
		t[i] = t[i] == '0' ? '1' : '0';
		assert_int_equal(auth_nonce_check(&n, 5001, &c, (const uint8_t *)t, AUTH_NONCE_LEN), -1);
	}
	assert_int_equal(auth_nonce_check(&n, 5001, &c, (const uint8_t *)s, AUTH_NONCE_LEN - 1), -1);
	assert_int_equal(auth_nonce_check(&n, 5001, &c, (const uint8_t *)"zzzzzzzz", 8), -1);
	assert_int_equal(auth_nonce_check(&n, 5001, &c, (const uint8_t *)"", 0), -1);
}

/* The nonce computed from scratch: 8 hex digits of t, then the first 8
 * bytes of HMAC-SHA256(secret, t || family || IP) in hex. */
static void nonce_reference(const struct auth_nonce *n, uint32_t t, const struct stun_addr *c,
			    char out[AUTH_NONCE_LEN + 1])
{
	uint8_t msg[21], mac[32];
	size_t iplen = c->family == STUN_AF_IPV6 ? 16 : 4;
	unsigned int maclen = 0;

	msg[0] = (uint8_t)(t >> 24);
	msg[1] = (uint8_t)(t >> 16);
	msg[2] = (uint8_t)(t >> 8);
	msg[3] = (uint8_t)t;
	msg[4] = c->family;
	memcpy(msg + 5, c->ip, iplen);
	assert_non_null(HMAC(EVP_sha256(), n->secret, sizeof(n->secret), msg, 5 + iplen, mac, &maclen));
	snprintf(out, AUTH_NONCE_LEN + 1, "%08x%02x%02x%02x%02x%02x%02x%02x%02x", t, mac[0], mac[1], mac[2],
		 mac[3], mac[4], mac[5], mac[6], mac[7]);
}

/* auth_nonce keeps a per-thread memo of MACs: whatever it holds, every
 * nonce made or checked must be the one computed from scratch, across
 * secrets (the memo is flushed when the secret changes), families, clients
 * that share a memo slot, and times. */
static void test_nonce_memo(void **state)
{
	struct auth_nonce n[2];
	char got[AUTH_NONCE_LEN + 1], want[AUTH_NONCE_LEN + 1];

	assert_int_equal(auth_nonce_init(&n[0], 600), 0);
	assert_int_equal(auth_nonce_init(&n[1], 600), 0);
	for (int round = 0; round < 3000; round++) {
		const struct auth_nonce *k = &n[(round / 700) % 2];
		struct stun_addr c = client((uint8_t)(round % 256));
		uint32_t t = 7000 + (uint32_t)(round % 2);

		c.ip[2] = (uint8_t)(round / 256 % 4);

		if (round % 4 == 3) {
			/* IPv6 whose first 4 bytes equal the IPv4 address */
			c.family = STUN_AF_IPV6;
			c.ip[15] = 1;
		}
		auth_nonce_make(k, t, &c, got);
		nonce_reference(k, t, &c, want);
		assert_string_equal(got, want);
		assert_int_equal(auth_nonce_check(k, t + 1, &c, (const uint8_t *)want, AUTH_NONCE_LEN), 0);
		/* the other secret (now and then: it flushes the memo), another
		 * client, another time: refused */
		if (round % 100 == 99)
			assert_int_equal(auth_nonce_check(&n[k == &n[0]], t + 1, &c, (const uint8_t *)want, AUTH_NONCE_LEN),
					 -1);
		c.ip[3] ^= 0x40;
		assert_int_equal(auth_nonce_check(k, t + 1, &c, (const uint8_t *)want, AUTH_NONCE_LEN), -1);
		c.ip[3] ^= 0x40;
		want[7] = want[7] == '0' ? '1' : '0';
		assert_int_equal(auth_nonce_check(k, t + 1, &c, (const uint8_t *)want, AUTH_NONCE_LEN), -1);
	}
}

static void test_users(void **state)
{
	struct config_user u[2] = { { "alice", "secret" }, { "bob", "pw2" } };
	struct auth_users *t = auth_users_new("example.org", u, 2);
	uint8_t key[32], want[32], hash[32];

	assert_non_null(t);
	assert_int_equal(auth_users_key(t, (const uint8_t *)"alice", 5, STUN_PW_ALG_MD5, key), 16);
	assert_int_equal(stun_long_term_key(STUN_PW_ALG_MD5, "alice", "example.org", "secret", want), 16);
	assert_memory_equal(key, want, 16);
	assert_int_equal(auth_users_key(t, (const uint8_t *)"bob", 3, STUN_PW_ALG_SHA256, key), 32);
	assert_int_equal(stun_long_term_key(STUN_PW_ALG_SHA256, "bob", "example.org", "pw2", want), 32);
	assert_memory_equal(key, want, 32);
	/* prefixes and unknown names do not match */
	assert_int_equal(auth_users_key(t, (const uint8_t *)"alic", 4, STUN_PW_ALG_MD5, key), -1);
	assert_int_equal(auth_users_key(t, (const uint8_t *)"carol", 5, STUN_PW_ALG_MD5, key), -1);
	assert_int_equal(auth_users_key(t, (const uint8_t *)"alice", 5, 7, key), -1);
	stun_userhash("bob", "example.org", hash);
	assert_string_equal(auth_users_by_userhash(t, hash), "bob");
	hash[0] ^= 1;
	assert_null(auth_users_by_userhash(t, hash));
	auth_users_free(t);
}

static void test_rfc5769_long_term_key(void **state)
{
	/* RFC 5769 §2.4: MD5("<U+30DE><U+30C8><U+30EA><U+30C3><U+30AF><U+30B9>:example.org:TheMatrIX") */
	static const uint8_t want[16] = { 0xe8, 0xca, 0x7a, 0xd5, 0x9d, 0x5e, 0xb0, 0x51,
					  0x8e, 0x31, 0x29, 0x11, 0xd2, 0xda, 0xb2, 0xa9 };
	uint8_t key[32];

	/* computed independently with Python's hashlib for this test */
	assert_int_equal(stun_long_term_key(STUN_PW_ALG_MD5,
					    "\xe3\x83\x9e\xe3\x83\x88\xe3\x83\xaa\xe3\x83\x83\xe3\x82\xaf\xe3\x82\xb9",
					    "example.org", "TheMatrIX", key), 16);
	assert_memory_equal(key, want, 16);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nonce_roundtrip),
		cmocka_unit_test(test_nonce_stale),
		cmocka_unit_test(test_nonce_bound_to_client_and_secret),
		cmocka_unit_test(test_nonce_tampered),
		cmocka_unit_test(test_nonce_memo),
		cmocka_unit_test(test_users),
		cmocka_unit_test(test_rfc5769_long_term_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
