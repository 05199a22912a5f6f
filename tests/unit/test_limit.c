/* test_limit.c -- unit tests for the abuse-limit building blocks
 * (turn/turn_limit.c): token bucket, per-source rate table, user-quota table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "turn/turn_limit.h"

static struct stun_addr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port)
{
	struct stun_addr x;

	memset(&x, 0, sizeof(x));
	x.family = STUN_AF_IPV4;
	x.ip[0] = a;
	x.ip[1] = b;
	x.ip[2] = c;
	x.ip[3] = d;
	x.port = port;
	return x;
}

static struct stun_addr v6(const uint8_t ip[16], uint16_t port)
{
	struct stun_addr x;

	memset(&x, 0, sizeof(x));
	x.family = STUN_AF_IPV6;
	memcpy(x.ip, ip, 16);
	x.port = port;
	return x;
}

/* ---- token bucket ------------------------------------------------------ */

/* Sends len-byte datagrams as fast as asked for ms milliseconds (one try
 * per millisecond) and returns the bytes that passed. */
static uint64_t bucket_run(struct turn_bucket *b, uint64_t rate, uint64_t burst, uint64_t t0, uint64_t ms,
			   size_t len, int per_ms)
{
	uint64_t passed = 0, t;
	int i;

	for (t = t0; t < t0 + ms; t++)
		for (i = 0; i < per_ms; i++)
			if (turn_bucket_ok(b, rate, burst, t)) {
				turn_bucket_take(b, len);
				passed += len;
			}
	return passed;
}

static void test_bucket_rate(void **state)
{
	struct turn_bucket b;
	uint64_t got;

	/* 10 kB/s, burst 10 kB, offered ~1 MB/s for 3 s: 3 * 10k + 10k,
	 * plus at most one datagram of debt. */
	turn_bucket_init(&b, 10000, 5000);
	got = bucket_run(&b, 10000, 10000, 5000, 3000, 1000, 1);
	assert_true(got >= 40000 - 1000);
	assert_true(got <= 40000 + 1000);
}

static void test_bucket_low_rate_no_rounding(void **state)
{
	struct turn_bucket b;
	uint64_t got;

	/* 100 B/s refilled every millisecond: 0.1 byte per call must add up. */
	turn_bucket_init(&b, 0, 0);
	got = bucket_run(&b, 100, 100, 0, 10000, 10, 1);
	assert_true(got >= 990 && got <= 1010);
}

static void test_bucket_large_datagram_and_cap(void **state)
{
	struct turn_bucket b;

	/* A datagram bigger than the burst still passes, then the debt is paid. */
	turn_bucket_init(&b, 1000, 0);
	assert_true(turn_bucket_ok(&b, 1000, 1000, 0));
	turn_bucket_take(&b, 5000);
	assert_false(turn_bucket_ok(&b, 1000, 1000, 1000));
	assert_false(turn_bucket_ok(&b, 1000, 1000, 3999));
	assert_true(turn_bucket_ok(&b, 1000, 1000, 4000));
	/* An idle hour fills to the burst, not beyond (and does not overflow). */
	assert_true(turn_bucket_ok(&b, 2000000000, 1000, 3600000 + 4000));
	turn_bucket_take(&b, 1001);
	assert_false(turn_bucket_ok(&b, 1, 1000, 3600000 + 4000));
	/* A clock going backwards refills nothing. */
	assert_false(turn_bucket_ok(&b, 1000, 1000, 10));
}

/* ---- rate table -------------------------------------------------------- */

static void test_rate_cap_per_second(void **state)
{
	struct turn_rate t;
	struct stun_addr a = v4(192, 0, 2, 1, 1000), a2 = v4(192, 0, 2, 1, 2000), b = v4(192, 0, 2, 2, 1000);
	int i;

	assert_int_equal(turn_rate_init(&t, 1024, 42), 0);
	for (i = 0; i < 5; i++)
		assert_int_equal(turn_rate_hit(&t, &a, TURN_RATE_UNAUTH, 10, 5), 1);
	/* the port is ignored */
	assert_int_equal(turn_rate_hit(&t, &a2, TURN_RATE_UNAUTH, 10, 5), 0);
	/* kinds are counted apart, sources too */
	assert_int_equal(turn_rate_hit(&t, &a, TURN_RATE_ALLOC, 10, 5), 1);
	assert_int_equal(turn_rate_hit(&t, &b, TURN_RATE_UNAUTH, 10, 5), 1);
	/* a new second starts afresh */
	assert_int_equal(turn_rate_hit(&t, &a, TURN_RATE_UNAUTH, 11, 5), 1);
	/* limit 0: no limit, nothing counted */
	for (i = 0; i < 100; i++)
		assert_int_equal(turn_rate_hit(&t, &b, TURN_RATE_ALLOC, 11, 0), 1);
	turn_rate_free(&t);
}

static void test_rate_ipv6_by_64(void **state)
{
	static const uint8_t p1[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1 };
	static const uint8_t p2[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 0xff, 0xee, 1, 2, 3, 4, 5, 6 };
	static const uint8_t p3[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 1 };
	static const uint8_t m4[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 9 };
	struct turn_rate t;
	struct stun_addr a = v6(p1, 1), b = v6(p2, 2), c = v6(p3, 3), mapped = v6(m4, 4), plain = v4(192, 0, 2, 9, 5);

	assert_int_equal(turn_rate_init(&t, 1024, 7), 0);
	assert_int_equal(turn_rate_hit(&t, &a, TURN_RATE_ALLOC, 1, 2), 1);
	assert_int_equal(turn_rate_hit(&t, &b, TURN_RATE_ALLOC, 1, 2), 1);
	/* same /64: the third one is over */
	assert_int_equal(turn_rate_hit(&t, &a, TURN_RATE_ALLOC, 1, 2), 0);
	/* another /64 is another source */
	assert_int_equal(turn_rate_hit(&t, &c, TURN_RATE_ALLOC, 1, 2), 1);
	/* ::ffff:192.0.2.9 and 192.0.2.9 are one source */
	assert_int_equal(turn_rate_hit(&t, &mapped, TURN_RATE_ALLOC, 1, 1), 1);
	assert_int_equal(turn_rate_hit(&t, &plain, TURN_RATE_ALLOC, 1, 1), 0);
	assert_int_equal(turn_rate_set_of(&t, &mapped), turn_rate_set_of(&t, &plain));
	turn_rate_free(&t);
}

static void test_rate_spray_keeps_heavy_source(void **state)
{
	struct turn_rate t;
	struct stun_addr heavy = v4(198, 51, 100, 1, 1);
	size_t nslots;
	unsigned i, over = 0;

	/* A small table: 64 slots. One source sits at its cap while 100,000
	 * distinct one-shot sources spray the same second; the table does not
	 * grow, and the heavy source stays capped. */
	assert_int_equal(turn_rate_init(&t, 64, 99), 0);
	nslots = t.nsets * TURN_RATE_WAYS;
	assert_int_equal(nslots, 64);
	for (i = 0; i < 3; i++)
		assert_int_equal(turn_rate_hit(&t, &heavy, TURN_RATE_UNAUTH, 5, 3), 1);
	for (i = 0; i < 100000; i++) {
		struct stun_addr s = v4(10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i, 9);

		turn_rate_hit(&t, &s, TURN_RATE_UNAUTH, 5, 3);
		if (i % 100 == 0)
			over += turn_rate_hit(&t, &heavy, TURN_RATE_UNAUTH, 5, 3);
	}
	assert_int_equal(over, 0);
	assert_int_equal(t.nsets * TURN_RATE_WAYS, nslots);
	turn_rate_free(&t);
}

static void test_rate_sizes(void **state)
{
	struct turn_rate t;

	assert_int_equal(turn_rate_init(&t, 16384, 1), 0);
	assert_int_equal(t.nsets, 4096);
	turn_rate_free(&t);
	assert_int_equal(turn_rate_init(&t, 1, 1), 0);
	assert_int_equal(t.nsets, 1);
	turn_rate_free(&t);
}

/* ---- user quota -------------------------------------------------------- */

static void test_userq(void **state)
{
	struct turn_userq *q = turn_userq_new(4);

	assert_non_null(q);
	assert_int_equal(turn_userq_acquire(q, "alice", 5, 2), 0);
	assert_int_equal(turn_userq_acquire(q, "alice", 5, 2), 0);
	assert_int_equal(turn_userq_acquire(q, "alice", 5, 2), -1);
	assert_int_equal(turn_userq_count(q, "alice", 5), 2);
	/* names are compared with their length: "alic" is someone else */
	assert_int_equal(turn_userq_acquire(q, "alic", 4, 2), 0);
	assert_int_equal(turn_userq_acquire(q, "bob", 3, 2), 0);
	turn_userq_release(q, "alice", 5);
	assert_int_equal(turn_userq_count(q, "alice", 5), 1);
	assert_int_equal(turn_userq_acquire(q, "alice", 5, 2), 0);
	turn_userq_release(q, "alice", 5);
	turn_userq_release(q, "alice", 5);
	assert_int_equal(turn_userq_count(q, "alice", 5), 0);
	/* releasing an unknown name is harmless */
	turn_userq_release(q, "alice", 5);
	turn_userq_release(q, "nobody", 6);
	assert_int_equal(turn_userq_count(q, "bob", 3), 1);
	/* limit 0: counted, never refused */
	for (int i = 0; i < 1000; i++)
		assert_int_equal(turn_userq_acquire(q, "carol", 5, 0), 0);
	assert_int_equal(turn_userq_count(q, "carol", 5), 1000);
	turn_userq_free(q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bucket_rate),
		cmocka_unit_test(test_bucket_low_rate_no_rounding),
		cmocka_unit_test(test_bucket_large_datagram_and_cap),
		cmocka_unit_test(test_rate_cap_per_second),
		cmocka_unit_test(test_rate_ipv6_by_64),
		cmocka_unit_test(test_rate_spray_keeps_heavy_source),
		cmocka_unit_test(test_rate_sizes),
		cmocka_unit_test(test_userq),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
