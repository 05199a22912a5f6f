/* test_signal_iplimit.c -- unit tests for connections per source address
 * (signal_iplimit): IPv4, v4-mapped IPv6 and IPv6 /64 keys, take/put. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "signal/signal_iplimit.h"

static void key_of(const char *ip, uint8_t key[SIGNAL_IPLIMIT_KEY_LEN])
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
	}
	assert_int_equal(signal_iplimit_key((struct sockaddr *)&ss, key), 0);
}

static void test_keys(void **state)
{
	uint8_t a[SIGNAL_IPLIMIT_KEY_LEN], b[SIGNAL_IPLIMIT_KEY_LEN];
	struct sockaddr sa = {.sa_family = AF_UNIX};

	key_of("192.0.2.1", a);
	key_of("::ffff:192.0.2.1", b);
	assert_memory_equal(a, b, sizeof(a));
	key_of("192.0.2.2", b);
	assert_memory_not_equal(a, b, sizeof(a));
	key_of("2001:db8:1:2::1", a);
	key_of("2001:db8:1:2:ffff::9", b);
	assert_memory_equal(a, b, sizeof(a)); /* same /64 */
	key_of("2001:db8:1:3::1", b);
	assert_memory_not_equal(a, b, sizeof(a));
	assert_int_equal(signal_iplimit_key(&sa, a), -1);
}

static void test_take_put(void **state)
{
	struct signal_iplimit *t = signal_iplimit_new();
	uint8_t a[SIGNAL_IPLIMIT_KEY_LEN], b[SIGNAL_IPLIMIT_KEY_LEN];
	int i;

	assert_non_null(t);
	key_of("127.0.0.1", a);
	key_of("127.0.0.2", b);
	for (i = 0; i < 3; i++)
		assert_int_equal(signal_iplimit_take(t, a, 3), 0);
	assert_int_equal(signal_iplimit_take(t, a, 3), -1);
	assert_int_equal(signal_iplimit_take(t, b, 3), 0); /* another address is not affected */
	assert_int_equal(signal_iplimit_count(t, a), 3);
	signal_iplimit_put(t, a);
	assert_int_equal(signal_iplimit_count(t, a), 2);
	assert_int_equal(signal_iplimit_take(t, a, 3), 0);
	for (i = 0; i < 3; i++)
		signal_iplimit_put(t, a);
	assert_int_equal(signal_iplimit_count(t, a), 0);
	signal_iplimit_put(t, a); /* not counted: ignored */
	assert_int_equal(signal_iplimit_count(t, b), 1);
	signal_iplimit_free(t); /* b's entry is freed here (ASan checks) */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_take_put),
	};

	return cmocka_run_group_tests_name("signal_iplimit", tests, NULL, NULL);
}
