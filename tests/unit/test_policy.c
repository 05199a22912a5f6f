/* test_policy.c -- unit tests for the peer address policy (turn_policy). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "net/selfaddr.h"
#include "turn/turn_policy.h"

/* Builds a stun_addr from an IP literal; fails the test when it does not parse. */
static struct stun_addr addr(const char *s)
{
	struct stun_addr a;

	memset(&a, 0, sizeof(a));
	if (strchr(s, ':') != NULL) {
		a.family = STUN_AF_IPV6;
		if (inet_pton(AF_INET6, s, a.ip) != 1)
			fail_msg("test bug: bad IPv6 literal %s", s);
	} else {
		a.family = STUN_AF_IPV4;
		if (inet_pton(AF_INET, s, a.ip) != 1)
			fail_msg("test bug: bad IPv4 literal %s", s);
	}
	return a;
}

static int permits(const struct turn_policy *p, const char *s)
{
	struct stun_addr a = addr(s);
	return turn_policy_permits(p, &a);
}

static void assert_refused(const struct turn_policy *p, const char *s)
{
	if (permits(p, s) != 0)
		fail_msg("%s should be refused", s);
}

static void assert_permitted(const struct turn_policy *p, const char *s)
{
	if (permits(p, s) != 1)
		fail_msg("%s should be permitted", s);
}

static int setup(void **state)
{
	*state = turn_policy_new();
	return *state == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	turn_policy_free(*state);
	return 0;
}

/* First, a middle and the last address of every default deny range. */
static const char *const deny_samples[][3] = {
	{ "0.0.0.0", "0.1.2.3", "0.255.255.255" },
	{ "10.0.0.0", "10.128.0.1", "10.255.255.255" },
	{ "100.64.0.0", "100.100.1.1", "100.127.255.255" },
	{ "127.0.0.0", "127.0.0.1", "127.255.255.255" },
	{ "169.254.0.0", "169.254.169.254", "169.254.255.255" },
	{ "172.16.0.0", "172.20.1.1", "172.31.255.255" },
	{ "192.0.0.0", "192.0.0.128", "192.0.0.255" },
	{ "192.0.2.0", "192.0.2.77", "192.0.2.255" },
	{ "192.88.99.0", "192.88.99.1", "192.88.99.255" },
	{ "192.168.0.0", "192.168.1.1", "192.168.255.255" },
	{ "198.18.0.0", "198.19.0.0", "198.19.255.255" },
	{ "198.51.100.0", "198.51.100.100", "198.51.100.255" },
	{ "203.0.113.0", "203.0.113.9", "203.0.113.255" },
	{ "224.0.0.0", "230.1.2.3", "239.255.255.255" },
	{ "240.0.0.0", "250.0.0.1", "255.255.255.255" },
	{ "::", "::", "::" },
	{ "::1", "::1", "::1" },
	{ "64:ff9b::", "64:ff9b::102:304", "64:ff9b::ffff:ffff" },
	{ "64:ff9b:1::", "64:ff9b:1:8000::1", "64:ff9b:1:ffff:ffff:ffff:ffff:ffff" },
	{ "100::", "100::abcd", "100::ffff:ffff:ffff:ffff" },
	{ "2001::", "2001:100::1", "2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff" },
	{ "2001:db8::", "2001:db8:8000::1", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff" },
	{ "2002::", "2002:808:808::1", "2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff" },
	{ "fc00::", "fd12:3456::1", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" },
	{ "fe80::", "fe80::1", "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff" },
	{ "ff00::", "ff02::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" },
	/* IPv4-translated (RFC 2765), documentation (RFC 9637), site-local (RFC 3879) */
	{ "::ffff:0:0.0.0.0", "::ffff:0:8.8.8.8", "::ffff:0:255.255.255.255" },
	{ "3fff::", "3fff:abc::1", "3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff" },
	{ "fec0::", "fec0::1", "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" },
};

static void test_default_deny_ranges(void **state)
{
	for (size_t i = 0; i < sizeof(deny_samples) / sizeof(deny_samples[0]); i++)
		for (int j = 0; j < 3; j++)
			assert_refused(*state, deny_samples[i][j]);
}

/* Addresses just outside the deny ranges must stay usable. */
static void test_public_permitted(void **state)
{
	static const char *const ok[] = {
		"1.0.0.0", "8.8.8.8", "9.255.255.255", "11.0.0.0", "100.63.255.255", "100.128.0.0",
		"126.255.255.255", "128.0.0.0", "169.253.255.255", "169.255.0.0", "172.15.255.255",
		"172.32.0.0", "192.0.1.0", "192.0.3.0", "192.88.98.255", "192.167.255.255",
		"192.169.0.0", "198.17.255.255", "198.20.0.0", "203.0.112.255", "203.0.114.0",
		"223.255.255.255",
		"2606:4700::1", "2001:200::", "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", "2003::1",
		"2620:0:1::1", "64:ff9b:0:1::", "fbff::1", "3ffe:ffff::1", "3fff:1000::", "::ffff:8.8.8.8", "::8.8.4.4",
		"::fffe:0:8.8.8.8", "::1:ffff:0:808:808",
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		assert_permitted(*state, ok[i]);
}

/* Every IPv6 spelling of a denied IPv4 address is refused. */
static void test_ipv6_spellings_of_ipv4(void **state)
{
	static const char *const bad[] = {
		"::ffff:127.0.0.1", "::127.0.0.1", "64:ff9b::127.0.0.1", "2002:7f00:0001::",
		"::ffff:10.0.0.1", "::10.0.0.1", "64:ff9b::10.0.0.1", "2002:0a00:0001::",
		"2002:0a00:0001:1234::5", "::ffff:169.254.169.254", "::169.254.169.254",
		"64:ff9b::169.254.169.254", "2002:a9fe:a9fe::", "::ffff:0.0.0.0",
		"::ffff:255.255.255.255", "::ffff:224.0.0.1", "::2:1",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_refused(*state, bad[i]);
}

static void test_embedded_v4(void **state)
{
	uint8_t out[4];
	struct stun_addr a;
	static const uint8_t ten[4] = { 10, 0, 0, 1 };

	a = addr("::ffff:10.0.0.1");
	assert_int_equal(turn_policy_embedded_v4(a.ip, out), 1);
	assert_memory_equal(out, ten, 4);
	a = addr("::10.0.0.1");
	assert_int_equal(turn_policy_embedded_v4(a.ip, out), 1);
	assert_memory_equal(out, ten, 4);
	a = addr("64:ff9b::a00:1");
	assert_int_equal(turn_policy_embedded_v4(a.ip, out), 1);
	assert_memory_equal(out, ten, 4);
	a = addr("2002:a00:1:ffff::1");
	assert_int_equal(turn_policy_embedded_v4(a.ip, out), 1);
	assert_memory_equal(out, ten, 4);
	a = addr("::");
	assert_int_equal(turn_policy_embedded_v4(a.ip, out), 0);
	a = addr("::1");
	assert_int_equal(turn_policy_embedded_v4(a.ip, out), 0);
	a = addr("2606:4700::1");
	assert_int_equal(turn_policy_embedded_v4(a.ip, out), 0);
}

static void test_allow_opens_subrange(void **state)
{
	struct turn_policy *p = *state;

	assert_int_equal(turn_policy_add(p, "10.1.0.0/16", 1), 0);
	assert_permitted(p, "10.1.0.0");
	assert_permitted(p, "10.1.200.3");
	assert_permitted(p, "10.1.255.255");
	assert_permitted(p, "::ffff:10.1.2.3");  /* via conversion */
	assert_refused(p, "10.0.255.255");
	assert_refused(p, "10.2.0.0");
	assert_refused(p, "::ffff:10.2.0.0");

	assert_int_equal(turn_policy_add(p, "fd00::1-fd00::ff", 1), 0);
	assert_permitted(p, "fd00::80");
	assert_refused(p, "fd00::100");
}

static void test_deny_adds_ranges(void **state)
{
	struct turn_policy *p = *state;

	assert_permitted(p, "8.8.8.8");
	assert_permitted(p, "2606:4700::1");
	assert_int_equal(turn_policy_add(p, "8.8.8.0/24", 0), 0);
	assert_int_equal(turn_policy_add(p, "2606:4700::/32", 0), 0);
	assert_refused(p, "8.8.8.8");
	assert_refused(p, "::ffff:8.8.8.8");
	assert_refused(p, "2606:4700::1");
	assert_permitted(p, "8.8.9.0");
	/* An allow still wins over a user deny. */
	assert_int_equal(turn_policy_add(p, "8.8.8.8", 1), 0);
	assert_permitted(p, "8.8.8.8");
	assert_refused(p, "8.8.8.7");
}

static void test_dash_ranges(void **state)
{
	struct turn_policy *p = *state;

	assert_int_equal(turn_policy_add(p, "1.2.3.4-1.2.3.10", 0), 0);
	assert_permitted(p, "1.2.3.3");
	assert_refused(p, "1.2.3.4");
	assert_refused(p, "1.2.3.7");
	assert_refused(p, "1.2.3.10");
	assert_permitted(p, "1.2.3.11");
	assert_int_equal(turn_policy_add(p, "2606::1-2606::1:0", 0), 0);
	assert_refused(p, "2606::ffff");
	assert_permitted(p, "2606::1:1");
	assert_int_equal(turn_policy_add(p, "5.5.5.5-5.5.5.5", 0), 0);
	assert_refused(p, "5.5.5.5");
	/* A CIDR with host bits set means its network. */
	assert_int_equal(turn_policy_add(p, "6.6.6.6/24", 0), 0);
	assert_refused(p, "6.6.6.0");
	assert_refused(p, "6.6.6.255");
	assert_permitted(p, "6.6.7.0");
}

static void test_bad_specs(void **state)
{
	static const char *const bad[] = {
		"10.0.0.1/33", "1.2.3.4-1.2.3.1", "::1-1.2.3.4", "1.2.3.4-::1", "abc", "",
		"::/129", "10.0.0.0/", "10.0.0.0/8x", "10.0.0.0/-1", "1.2.3.4-", "-1.2.3.4",
		"1.2.3", "1.2.3.4 ", "fe80::1%eth0", "1.2.3.4/8-1.2.3.5",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (turn_policy_add(*state, bad[i], 0) != -1)
			fail_msg("spec '%s' should be rejected", bad[i]);
	assert_int_equal(turn_policy_add(*state, NULL, 0), -1);
	assert_int_equal(turn_policy_add(NULL, "1.2.3.4", 0), -1);
}

static void test_allow_loopback(void **state)
{
	struct turn_policy *p = *state;

	turn_policy_allow_loopback(p);
	assert_permitted(p, "127.0.0.1");
	assert_permitted(p, "127.255.255.255");
	assert_permitted(p, "::1");
	assert_permitted(p, "::ffff:127.0.0.1");
	/* IPv4-translated is never a loopback spelling: refused all the same */
	assert_refused(p, "::ffff:0:127.0.0.1");
	assert_refused(p, "10.0.0.1");
	assert_refused(p, "::");
	assert_refused(p, "169.254.169.254");
}

static void test_odd_family_refused(void **state)
{
	struct stun_addr a;

	memset(&a, 0, sizeof(a));
	a.family = 7;
	assert_int_equal(turn_policy_permits(*state, &a), 0);
	a.family = STUN_AF_IPV4;
	assert_int_equal(turn_policy_permits(NULL, &a), 0);
}

/* The relay's own-address rule (net/selfaddr.h), both settings of
 * allow-loopback-peers; 203.0.113.7 plays the server's public address. */
static struct stun_addr addr_port(const char *s, uint16_t port)
{
	struct stun_addr a = addr(s);

	a.port = port;
	return a;
}

static void test_selfaddr(void **state)
{
	struct config cfg;
	struct selfaddr s;
	struct stun_addr own = addr("203.0.113.7"), any = addr("0.0.0.0"), a;

	(void)state;
	config_defaults(&cfg);
	cfg.listening_port = 3478;
	cfg.tls_listening_port = 5349;
	cfg.min_port = 49152;
	cfg.max_port = 65535;
	cfg.allow_loopback_peers = 0;
	selfaddr_init(&s, &cfg);
	selfaddr_add_ip(&s, &own);
	selfaddr_add_ip(&s, &own); /* repeat: once */
	selfaddr_add_ip(&s, &any); /* wildcard: skipped */
	assert_int_equal(s.nip, 1);
	/* own listening ports: refused on own IPs, loopback included */
	a = addr_port("203.0.113.7", 3478);
	assert_int_equal(selfaddr_refuses(&s, &a), 1);
	a = addr_port("127.0.0.5", 5349);
	assert_int_equal(selfaddr_refuses(&s, &a), 1);
	a = addr_port("::ffff:203.0.113.7", 3478);
	a.family = STUN_AF_IPV6;
	assert_int_equal(selfaddr_refuses(&s, &a), 1);
	/* the relay range of an own IP stays reachable (relay-only calls) */
	a = addr_port("203.0.113.7", 50000);
	assert_int_equal(selfaddr_refuses(&s, &a), 0);
	/* other ports of own IPs: refused without allow-loopback-peers */
	a = addr_port("203.0.113.7", 22);
	assert_int_equal(selfaddr_refuses(&s, &a), 1);
	a = addr_port("::1", 6379);
	assert_int_equal(selfaddr_refuses(&s, &a), 1);
	/* not own: anything goes (the peer policy decides) */
	a = addr_port("198.51.100.1", 3478);
	assert_int_equal(selfaddr_refuses(&s, &a), 0);
	a = addr_port("2001:db8::7", 22);
	assert_int_equal(selfaddr_refuses(&s, &a), 0);

	cfg.allow_loopback_peers = 1;
	selfaddr_init(&s, &cfg);
	selfaddr_add_ip(&s, &own);
	a = addr_port("127.0.0.1", 3478);
	assert_int_equal(selfaddr_refuses(&s, &a), 1);
	a = addr_port("127.0.0.1", 40000);
	assert_int_equal(selfaddr_refuses(&s, &a), 0);
	a = addr_port("203.0.113.7", 22);
	assert_int_equal(selfaddr_refuses(&s, &a), 0);
	config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_default_deny_ranges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_public_permitted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ipv6_spellings_of_ipv4, setup, teardown),
		cmocka_unit_test(test_embedded_v4),
		cmocka_unit_test_setup_teardown(test_allow_opens_subrange, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deny_adds_ranges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dash_ranges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_specs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_allow_loopback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_odd_family_refused, setup, teardown),
		cmocka_unit_test(test_selfaddr),
	};
	return cmocka_run_group_tests_name("turn_policy", tests, NULL, NULL);
}
