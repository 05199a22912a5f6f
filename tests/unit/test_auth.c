/* test_auth.c -- unit tests for stateless nonces and the static user table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

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
		cmocka_unit_test(test_users),
		cmocka_unit_test(test_rfc5769_long_term_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
