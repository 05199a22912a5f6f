/* test_rest.c -- unit tests for TURN REST API credentials (auth_rest).
 *
 * Known answers computed independently of this code:
 *   printf '%s' "$user" | openssl dgst -sha1 -hmac "$secret" -binary | base64
 *   printf '%s' "$user:example.org:$password" | md5sum
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "auth/auth_rest.h"

static void hex16(const char *hex, uint8_t out[16])
{
	int i;

	for (i = 0; i < 16; i++) {
		unsigned v;

		assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
}

static void test_password_known_answers(void **state)
{
	char pw[AUTH_REST_PASSWORD_LEN + 1];

	assert_int_equal(auth_rest_password("north", "1700000000:alice", pw), 0);
	assert_string_equal(pw, "Cd/49soE35ICqcJF/bCTn8Z4OyE=");
	assert_int_equal(auth_rest_password("north", "1700000000", pw), 0);
	assert_string_equal(pw, "CWyHi3zCeWqXBir9thl4m+iZPRY=");
	assert_int_equal(auth_rest_password("north", "4102444800:bob@example.org", pw), 0);
	assert_string_equal(pw, "2rYgX7TyeZ2TIPBOjqn/4L/nutI=");
	assert_int_equal(auth_rest_password("s3cr3t", "1700000000_carol", pw), 0);
	assert_string_equal(pw, "+y70dneARV1FAdEvj5LyAC6dVAA=");
	assert_int_equal(strlen(pw), AUTH_REST_PASSWORD_LEN);
	assert_int_equal(auth_rest_password(NULL, "x", pw), -1);
	assert_int_equal(auth_rest_password("x", NULL, pw), -1);
}

static void test_key_known_answers(void **state)
{
	uint8_t key[16], want[16];

	assert_int_equal(auth_rest_key("north", "1700000000:alice", "example.org", key), 0);
	hex16("d9a6a3d964467baeffd2fce41704a913", want);
	assert_memory_equal(key, want, 16);
	assert_int_equal(auth_rest_key("north", "1700000000", "example.org", key), 0);
	hex16("b0bdedaea226f1f35aa370453808839b", want);
	assert_memory_equal(key, want, 16);
	assert_int_equal(auth_rest_key("north", "4102444800:bob@example.org", "example.org", key), 0);
	hex16("703ec1435a993f21f33d690f8cc58860", want);
	assert_memory_equal(key, want, 16);
	/* another secret gives another key */
	assert_int_equal(auth_rest_key("south", "4102444800:bob@example.org", "example.org", key), 0);
	assert_memory_not_equal(key, want, 16);
	assert_int_equal(auth_rest_key("north", "1", NULL, key), -1);
}

static void test_parse_forms(void **state)
{
	uint64_t exp = 0;
	const char *id = NULL;
	size_t idlen = 99;

	assert_int_equal(auth_rest_parse("1700000000:alice", ":", &exp, &id, &idlen), 0);
	assert_true(exp == 1700000000u);
	assert_int_equal(idlen, 5);
	assert_memory_equal(id, "alice", 5);

	/* the user id may itself contain the separator */
	assert_int_equal(auth_rest_parse("42:a:b", ":", &exp, &id, &idlen), 0);
	assert_true(exp == 42);
	assert_int_equal(idlen, 3);
	assert_memory_equal(id, "a:b", 3);

	/* bare expiry */
	assert_int_equal(auth_rest_parse("1700000000", ":", &exp, &id, &idlen), 0);
	assert_true(exp == 1700000000u);
	assert_int_equal(idlen, 0);

	/* older order: user id first */
	assert_int_equal(auth_rest_parse("alice:1700000001", ":", &exp, &id, &idlen), 0);
	assert_true(exp == 1700000001u);
	assert_int_equal(idlen, 5);
	assert_memory_equal(id, "alice", 5);

	/* other separators, multi-character too */
	assert_int_equal(auth_rest_parse("99_carol", "_", &exp, &id, &idlen), 0);
	assert_true(exp == 99);
	assert_memory_equal(id, "carol", 5);
	assert_int_equal(auth_rest_parse("99--carol", "--", &exp, &id, &idlen), 0);
	assert_true(exp == 99);
	assert_int_equal(idlen, 5);
	/* ":" is not the separator here, so the whole name is not a number */
	assert_int_equal(auth_rest_parse("99:carol", "_", &exp, &id, &idlen), -1);

	/* largest uint64 parses; one more overflows */
	assert_int_equal(auth_rest_parse("18446744073709551615:x", ":", &exp, NULL, NULL), 0);
	assert_true(exp == UINT64_MAX);
	assert_int_equal(auth_rest_parse("18446744073709551616:x", ":", &exp, NULL, NULL), -1);
}

static void test_parse_rejects(void **state)
{
	uint64_t exp;
	const char *id;
	size_t idlen;

	assert_int_equal(auth_rest_parse("alice", ":", &exp, &id, &idlen), -1);
	assert_int_equal(auth_rest_parse("", ":", &exp, &id, &idlen), -1);
	assert_int_equal(auth_rest_parse(":alice", ":", &exp, &id, &idlen), -1);
	assert_int_equal(auth_rest_parse("alice:", ":", &exp, &id, &idlen), -1);
	assert_int_equal(auth_rest_parse("0:alice", ":", &exp, &id, &idlen), -1);
	assert_int_equal(auth_rest_parse("12a:alice", ":", &exp, &id, &idlen), -1);
	assert_int_equal(auth_rest_parse("-5:alice", ":", &exp, &id, &idlen), -1);
	assert_int_equal(auth_rest_parse("+5:alice", ":", &exp, &id, &idlen), -1);
	assert_int_equal(auth_rest_parse("1:alice", "", &exp, &id, &idlen), -1);
	assert_int_equal(auth_rest_parse(NULL, ":", &exp, &id, &idlen), -1);
}

static void test_expired(void **state)
{
	assert_int_equal(auth_rest_expired("1000:alice", ":", 999), 0);
	assert_int_equal(auth_rest_expired("1000:alice", ":", 1000), 0);
	assert_int_equal(auth_rest_expired("1000:alice", ":", 1001), 1);
	assert_int_equal(auth_rest_expired("1000", ":", 500), 0);
	assert_int_equal(auth_rest_expired("alice:1000", ":", 500), 0);
	/* not a REST username at all: never valid */
	assert_int_equal(auth_rest_expired("alice", ":", 0), 1);
	assert_int_equal(auth_rest_expired("0:alice", ":", 0), 1);
}

static void test_username_build(void **state)
{
	char buf[64];
	uint64_t exp;
	const char *id;
	size_t idlen;

	assert_int_equal(auth_rest_username(1700000000, ":", "alice", buf, sizeof(buf)), 16);
	assert_string_equal(buf, "1700000000:alice");
	assert_int_equal(auth_rest_parse(buf, ":", &exp, &id, &idlen), 0);
	assert_true(exp == 1700000000u);
	assert_int_equal(auth_rest_username(7, ":", "", buf, sizeof(buf)), 1);
	assert_string_equal(buf, "7");
	assert_int_equal(auth_rest_username(7, ":", NULL, buf, sizeof(buf)), 1);
	/* too small: -1, never truncated silently */
	assert_int_equal(auth_rest_username(1700000000, ":", "alice", buf, 16), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_password_known_answers),
		cmocka_unit_test(test_key_known_answers),
		cmocka_unit_test(test_parse_forms),
		cmocka_unit_test(test_parse_rejects),
		cmocka_unit_test(test_expired),
		cmocka_unit_test(test_username_build),
	};

	return cmocka_run_group_tests_name("rest", tests, NULL, NULL);
}
