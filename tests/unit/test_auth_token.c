/* test_auth_token.c -- unit tests for signaling join tokens (auth_token).
 *
 * Known answers computed independently of this code:
 *   printf '%s' "$payload" | openssl dgst -sha256 -hmac "$secret" -binary |
 *     base64 | tr '+/' '-_' | tr -d '='
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "auth/auth_token.h"

#define T0 1767225600ULL
#define KNOWN "1767225600:alice:team:standup:zhUzSF9-7YxNVSPJfwoOpZLlVdjmVD1Wn4LnXqcOyPk"

static void test_make_known_answer(void **state)
{
	char buf[AUTH_TOKEN_MAX_LEN + 1];

	assert_int_equal(auth_token_make("s3cret", T0, "alice", "team:standup", buf, sizeof(buf)),
			 (int)strlen(KNOWN));
	assert_string_equal(buf, KNOWN);
	assert_int_equal(auth_token_make("s3cret", T0, "bob", "r", buf, sizeof(buf)), 60);
	assert_string_equal(buf, "1767225600:bob:r:xWcAXpKLR7b0IEh3sUPzv0iJxoKa0568FzK6YczoPjE");
}

static void test_check_good(void **state)
{
	struct auth_token t;

	memset(&t, 0, sizeof(t));
	assert_int_equal(auth_token_check("s3cret", KNOWN, "team:standup", T0 - 5, &t), AUTH_TOKEN_OK);
	assert_true(t.expiry == T0);
	assert_string_equal(t.user, "alice");
	assert_string_equal(t.room, "team:standup");
	/* valid through its expiry second; NULL room: any room */
	assert_int_equal(auth_token_check("s3cret", KNOWN, "team:standup", T0, NULL), AUTH_TOKEN_OK);
	assert_int_equal(auth_token_check("s3cret", KNOWN, NULL, T0, NULL), AUTH_TOKEN_OK);
}

static void test_check_bad(void **state)
{
	char buf[sizeof(KNOWN) + 8];
	struct auth_token t;

	assert_int_equal(auth_token_check("s3cret", KNOWN, "team:standup", T0 + 1, &t), AUTH_TOKEN_EXPIRED);
	assert_string_equal(t.user, "alice");
	assert_int_equal(auth_token_check("s3cret", KNOWN, "team", T0, NULL), AUTH_TOKEN_WRONG_ROOM);
	assert_int_equal(auth_token_check("s3cret", KNOWN, "team:standup:x", T0, NULL), AUTH_TOKEN_WRONG_ROOM);
	assert_int_equal(auth_token_check("other", KNOWN, "team:standup", T0, NULL), AUTH_TOKEN_BAD_MAC);
	/* a changed field, a changed MAC character: bad signature */
	strcpy(buf, KNOWN);
	buf[0] = '2';
	assert_int_equal(auth_token_check("s3cret", buf, NULL, T0, NULL), AUTH_TOKEN_BAD_MAC);
	strcpy(buf, KNOWN);
	buf[strlen(buf) - 1] = 'x';
	assert_int_equal(auth_token_check("s3cret", buf, NULL, T0, NULL), AUTH_TOKEN_BAD_MAC);
	/* a forged expiry never reports "expired" before the MAC is checked */
	strcpy(buf, KNOWN);
	buf[0] = '0';
	assert_int_equal(auth_token_check("s3cret", buf, NULL, T0, NULL), AUTH_TOKEN_BAD_MAC);
}

static void test_check_malformed(void **state)
{
	static const char *const bad[] = {
		"", "abc", "1767225600:alice", "1767225600:alice:room",
		":alice:r:zhUzSF9-7YxNVSPJfwoOpZLlVdjmVD1Wn4LnXqcOyPk",
		"0:alice:r:zhUzSF9-7YxNVSPJfwoOpZLlVdjmVD1Wn4LnXqcOyPk",
		"-1:alice:r:zhUzSF9-7YxNVSPJfwoOpZLlVdjmVD1Wn4LnXqcOyPk",
		"99999999999999999999:alice:r:zhUzSF9-7YxNVSPJfwoOpZLlVdjmVD1Wn4LnXqcOyPk",
		"1767225600::r:zhUzSF9-7YxNVSPJfwoOpZLlVdjmVD1Wn4LnXqcOyPk",
		"1767225600:al ice:r:zhUzSF9-7YxNVSPJfwoOpZLlVdjmVD1Wn4LnXqcOyPk",
		"1767225600:alice::zhUzSF9-7YxNVSPJfwoOpZLlVdjmVD1Wn4LnXqcOyPk",
		"1767225600:alice:r:zhUzSF9-7YxNVSPJfwoOpZLlVdjmVD1Wn4LnXqcOyP",
		"1767225600:alice:r:zhUzSF9-7YxNVSPJfwoOpZLlVdjmVD1Wn4LnXqcOyPk=",
	};
	char big[AUTH_TOKEN_MAX_LEN + 64];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (auth_token_check("s3cret", bad[i], NULL, T0, NULL) != AUTH_TOKEN_MALFORMED)
			fail_msg("accepted as well-formed: '%s'", bad[i]);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "1767225600:u:", 13);
	assert_int_equal(auth_token_check("s3cret", big, NULL, T0, NULL), AUTH_TOKEN_MALFORMED);
	assert_int_equal(auth_token_check(NULL, KNOWN, NULL, T0, NULL), AUTH_TOKEN_MALFORMED);
	assert_int_equal(auth_token_check("s3cret", NULL, NULL, T0, NULL), AUTH_TOKEN_MALFORMED);
}

static void test_make_rejects(void **state)
{
	char buf[AUTH_TOKEN_MAX_LEN + 1], room[AUTH_TOKEN_ROOM_MAX + 2], user[AUTH_TOKEN_USER_MAX + 2];

	assert_int_equal(auth_token_make("s", 0, "u", "r", buf, sizeof(buf)), -1);
	assert_int_equal(auth_token_make("s", T0, "", "r", buf, sizeof(buf)), -1);
	assert_int_equal(auth_token_make("s", T0, "a:b", "r", buf, sizeof(buf)), -1);
	assert_int_equal(auth_token_make("s", T0, "u", "", buf, sizeof(buf)), -1);
	assert_int_equal(auth_token_make(NULL, T0, "u", "r", buf, sizeof(buf)), -1);
	assert_int_equal(auth_token_make("s", T0, "u", "r", buf, 20), -1); /* never truncated */
	memset(room, 'r', sizeof(room) - 1);
	room[sizeof(room) - 1] = '\0';
	assert_int_equal(auth_token_make("s", T0, "u", room, buf, sizeof(buf)), -1);
	room[AUTH_TOKEN_ROOM_MAX] = '\0';
	memset(user, 'u', sizeof(user) - 1);
	user[AUTH_TOKEN_USER_MAX] = '\0';
	/* the longest token fits AUTH_TOKEN_MAX_LEN and checks */
	assert_int_equal(auth_token_make("s", UINT64_MAX, user, room, buf, sizeof(buf)), AUTH_TOKEN_MAX_LEN);
	assert_int_equal(auth_token_check("s", buf, room, T0, NULL), AUTH_TOKEN_OK);
	user[AUTH_TOKEN_USER_MAX] = 'u';
	user[AUTH_TOKEN_USER_MAX + 1] = '\0';
	assert_int_equal(auth_token_make("s", T0, user, "r", buf, sizeof(buf)), -1);
}

static void test_user_ok_and_reasons(void **state)
{
	assert_true(auth_token_user_ok("a.b-c_d@e9", 10));
	assert_false(auth_token_user_ok("a+b", 3));
	assert_false(auth_token_user_ok("a/b", 3));
	assert_false(auth_token_user_ok("x", 0));
	assert_string_equal(auth_token_reason(AUTH_TOKEN_OK), "");
	assert_string_equal(auth_token_reason(AUTH_TOKEN_EXPIRED), "token expired");
	assert_string_equal(auth_token_reason(AUTH_TOKEN_WRONG_ROOM), "token for another room");
	assert_string_equal(auth_token_reason(AUTH_TOKEN_BAD_MAC), "token bad signature");
	assert_string_equal(auth_token_reason(AUTH_TOKEN_MALFORMED), "token malformed");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_make_known_answer),
		cmocka_unit_test(test_check_good),
		cmocka_unit_test(test_check_bad),
		cmocka_unit_test(test_check_malformed),
		cmocka_unit_test(test_make_rejects),
		cmocka_unit_test(test_user_ok_and_reasons),
	};

	return cmocka_run_group_tests_name("auth_token", tests, NULL, NULL);
}
