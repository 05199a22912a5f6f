/* test_alloc.c -- unit tests for TURN allocation state and the 5-tuple table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "turn/turn_alloc.h"

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

static struct stun_addr v6(uint8_t last, uint16_t port)
{
	struct stun_addr x;

	memset(&x, 0, sizeof(x));
	x.family = STUN_AF_IPV6;
	x.ip[0] = 0x20;
	x.ip[1] = 0x01;
	x.ip[15] = last;
	x.port = port;
	return x;
}

static void test_perm_lifetime(void **state)
{
	struct turn_alloc *a = calloc(1, sizeof(*a));
	struct stun_addr p = v4(198, 51, 100, 7, 1000), q = v4(198, 51, 100, 7, 2000), o = v4(198, 51, 100, 8, 1000);

	assert_int_equal(turn_alloc_perm_ok(a, &p, 100), 0);
	assert_int_equal(turn_alloc_perm_add(a, &p, 100, 300), 0);
	assert_int_equal(turn_alloc_perm_ok(a, &p, 100), 1);
	/* Permissions are per IP: any port of the peer passes (RFC 8656 §9). */
	assert_int_equal(turn_alloc_perm_ok(a, &q, 399), 1);
	assert_int_equal(turn_alloc_perm_ok(a, &o, 150), 0);
	assert_int_equal(turn_alloc_perm_ok(a, &p, 400), 0);
	/* Refresh extends rather than duplicates. */
	assert_int_equal(turn_alloc_perm_add(a, &p, 350, 300), 0);
	assert_int_equal(a->nperms, 1);
	assert_int_equal(turn_alloc_perm_ok(a, &p, 600), 1);
	turn_alloc_expire(a, 650);
	assert_int_equal(a->nperms, 0);
	turn_alloc_free(a);
}

static void test_perm_family(void **state)
{
	struct turn_alloc *a = calloc(1, sizeof(*a));
	struct stun_addr p4 = v4(0, 0, 0, 1, 1), p6 = v6(1, 1);

	/* ::1-like bytes in an IPv4 address must not match an IPv6 permission */
	assert_int_equal(turn_alloc_perm_add(a, &p6, 0, 300), 0);
	assert_int_equal(turn_alloc_perm_ok(a, &p4, 1), 0);
	assert_int_equal(turn_alloc_perm_ok(a, &p6, 1), 1);
	turn_alloc_free(a);
}

static void test_perm_capacity(void **state)
{
	struct turn_alloc *a = calloc(1, sizeof(*a));
	int i;

	for (i = 0; i < TURN_MAX_PERMS; i++) {
		struct stun_addr p = v4(198, 51, (uint8_t)(i / 200), (uint8_t)(i % 200), 1);

		assert_int_equal(turn_alloc_perm_add(a, &p, 0, 300), 0);
	}
	struct stun_addr extra = v4(203, 0, 113, 1, 1);

	assert_int_equal(turn_alloc_perm_add(a, &extra, 10, 300), -1);
	/* Once the old ones expire there is room again. */
	assert_int_equal(turn_alloc_perm_add(a, &extra, 301, 300), 0);
	assert_int_equal(a->nperms, 1);
	turn_alloc_free(a);
}

static void test_channel_bind(void **state)
{
	struct turn_alloc *a = calloc(1, sizeof(*a));
	struct stun_addr p = v4(198, 51, 100, 7, 1000), q = v4(198, 51, 100, 9, 1000);
	const struct turn_chan *c;

	assert_int_equal(turn_alloc_chan_bind(a, 0x4000, &p, 0, 600, 300), TURN_CHAN_OK);
	/* ChannelBind installs the permission too (§11.2). */
	assert_int_equal(turn_alloc_perm_ok(a, &p, 1), 1);
	c = turn_alloc_chan_by_number(a, 0x4000, 1);
	assert_non_null(c);
	assert_int_equal(c->peer.port, 1000);
	assert_ptr_equal(turn_alloc_chan_by_peer(a, &p, 1), c);
	assert_null(turn_alloc_chan_by_number(a, 0x4001, 1));
	/* Same number to another peer, or same peer to another number: 400. */
	assert_int_equal(turn_alloc_chan_bind(a, 0x4000, &q, 1, 600, 300), TURN_CHAN_CONFLICT);
	assert_int_equal(turn_alloc_chan_bind(a, 0x4001, &p, 1, 600, 300), TURN_CHAN_CONFLICT);
	/* Refresh of the same binding. */
	assert_int_equal(turn_alloc_chan_bind(a, 0x4000, &p, 500, 600, 300), TURN_CHAN_OK);
	assert_non_null(turn_alloc_chan_by_number(a, 0x4000, 1000));
	assert_null(turn_alloc_chan_by_number(a, 0x4000, 1100));
	turn_alloc_free(a);
}

static void test_channel_quarantine(void **state)
{
	struct turn_alloc *a = calloc(1, sizeof(*a));
	struct stun_addr p = v4(198, 51, 100, 7, 1000), q = v4(198, 51, 100, 9, 1000);

	assert_int_equal(turn_alloc_chan_bind(a, 0x4123, &p, 0, 600, 300), TURN_CHAN_OK);
	/* Expired, but the number stays reserved for 5 more minutes (§12). */
	assert_null(turn_alloc_chan_by_number(a, 0x4123, 600));
	assert_int_equal(turn_alloc_chan_bind(a, 0x4123, &q, 700, 600, 300), TURN_CHAN_CONFLICT);
	turn_alloc_expire(a, 899);
	assert_int_equal(a->nchans, 1);
	turn_alloc_expire(a, 900);
	assert_int_equal(a->nchans, 0);
	assert_int_equal(turn_alloc_chan_bind(a, 0x4123, &q, 900, 600, 300), TURN_CHAN_OK);
	turn_alloc_free(a);
}

static void test_response_cache(void **state)
{
	struct turn_alloc *a = calloc(1, sizeof(*a));
	uint8_t tid[STUN_TID_LEN] = { 1, 2, 3 };
	uint8_t resp[40] = { 9, 9, 9 };

	assert_int_equal(turn_alloc_cache_response(a, tid, resp, sizeof(resp)), 0);
	assert_int_equal(a->last_resp_len, sizeof(resp));
	assert_memory_equal(a->last_tid, tid, STUN_TID_LEN);
	assert_memory_equal(a->last_resp, resp, sizeof(resp));
	turn_alloc_free(a);
}

static int visits;

static void count_and_remove(struct turn_alloc *a, void *arg)
{
	visits++;
	if (a->client.port % 2 == 0)
		turn_table_remove(arg, a);
}

static void count_only(struct turn_alloc *a, void *arg)
{
	(void)a;
	(void)arg;
	visits++;
}

static void test_table(void **state)
{
	struct turn_table t;
	struct stun_addr server = v4(192, 0, 2, 1, 3478), server6 = v6(1, 3478);
	int i;

	assert_int_equal(turn_table_init(&t, 3), 0);
	assert_int_equal(t.nbuckets, 16);
	for (i = 0; i < 1000; i++) {
		struct stun_addr c = v4(198, 51, 100, (uint8_t)(i % 7), (uint16_t)(1000 + i));

		assert_non_null(turn_table_add(&t, &c, &server, TURN_TRANSPORT_UDP));
	}
	assert_int_equal(t.count, 1000);
	/* it grew from 16 buckets as allocations were added */
	assert_true(t.nbuckets >= 1000);
	for (i = 0; i < 1000; i++) {
		struct stun_addr c = v4(198, 51, 100, (uint8_t)(i % 7), (uint16_t)(1000 + i));
		struct turn_alloc *a = turn_table_find(&t, &c, &server, TURN_TRANSPORT_UDP);

		assert_non_null(a);
		assert_int_equal(a->client.port, 1000 + i);
		/* The server side and the transport are part of the 5-tuple. */
		assert_null(turn_table_find(&t, &c, &server6, TURN_TRANSPORT_UDP));
		assert_null(turn_table_find(&t, &c, &server, TURN_TRANSPORT_TCP));
	}
	visits = 0;
	turn_table_foreach(&t, count_and_remove, &t);
	assert_int_equal(visits, 1000);
	assert_int_equal(t.count, 500);
	struct stun_addr even = v4(198, 51, 100, 0, 1000), odd = v4(198, 51, 100, 1, 1001);

	assert_null(turn_table_find(&t, &even, &server, TURN_TRANSPORT_UDP));
	assert_non_null(turn_table_find(&t, &odd, &server, TURN_TRANSPORT_UDP));
	turn_table_destroy(&t, NULL);
	assert_null(t.buckets);
}

/* Growable arrays (issue 14): nothing until used, doubling up to the cap
 * (64 by default: the 65th is refused, 508), freed again once empty. */
static void test_growth(void **state)
{
	struct turn_alloc *a = calloc(1, sizeof(*a));
	struct stun_addr p;
	int i;

	assert_null(a->perms);
	assert_null(a->chans);
	for (i = 0; i < TURN_MAX_PERMS; i++) {
		p = v4(198, 51, 100, (uint8_t)i, 1);
		assert_int_equal(turn_alloc_perm_add(a, &p, 0, 300), 0);
		assert_true(a->perms_size >= a->nperms);
	}
	assert_int_equal(a->perms_size, TURN_MAX_PERMS);
	p = v4(198, 51, 101, 1, 1);
	assert_int_equal(turn_alloc_perm_add(a, &p, 0, 300), -1);
	for (i = 0; i < TURN_MAX_PERMS; i++) {
		p = v4(198, 51, 100, (uint8_t)i, 1);
		assert_int_equal(turn_alloc_perm_ok(a, &p, 299), 1);
	}
	/* channels: 64 peers already permitted, 64 channels */
	for (i = 0; i < TURN_MAX_CHANNELS; i++) {
		p = v4(198, 51, 100, (uint8_t)i, 7);
		assert_int_equal(turn_alloc_chan_bind(a, (uint16_t)(0x4000 + i), &p, 0, 600, 300), TURN_CHAN_OK);
	}
	p = v4(198, 51, 100, 0, 8);
	assert_int_equal(turn_alloc_chan_bind(a, 0x5000, &p, 0, 600, 300), TURN_CHAN_FULL);
	for (i = 0; i < TURN_MAX_CHANNELS; i++)
		assert_non_null(turn_alloc_chan_by_number(a, (uint16_t)(0x4000 + i), 1));
	/* The next deadline: the permissions' end at 300 (refreshed by the
	 * binds), then the channels' at 600, then quarantine's end. */
	a->expires = 5000;
	assert_int_equal(turn_alloc_next_deadline(a, 0), 300);
	turn_alloc_expire(a, 300);
	assert_int_equal(a->nperms, 0);
	assert_null(a->perms);
	assert_int_equal(turn_alloc_next_deadline(a, 300), 600);
	assert_int_equal(turn_alloc_next_deadline(a, 600), 600 + TURN_CHANNEL_QUARANTINE);
	turn_alloc_expire(a, 600 + TURN_CHANNEL_QUARANTINE);
	assert_null(a->chans);
	assert_int_equal(turn_alloc_next_deadline(a, 1000), 5000);
	turn_alloc_free(a);
}

/* Incremental growth: lookups, adds and removes while a move is under way
 * find everything, and the move finishes (by adds or by turn_table_step). */
static void test_table_incremental(void **state)
{
	struct turn_table t;
	struct stun_addr server = v4(192, 0, 2, 1, 3478);
	int i, j, saw_move = 0;

	assert_int_equal(turn_table_init(&t, 16), 0);
	for (i = 0; i < 5000; i++) {
		struct stun_addr c = v4(203, 0, (uint8_t)(i >> 8), (uint8_t)i, (uint16_t)(40000 + i));

		assert_non_null(turn_table_add(&t, &c, &server, TURN_TRANSPORT_UDP));
		if (t.old != NULL) {
			saw_move = 1;
			/* never a whole rehash at once */
			assert_true(t.moved < t.nold);
			for (j = 0; j <= i; j += 7) {
				struct stun_addr d = v4(203, 0, (uint8_t)(j >> 8), (uint8_t)j, (uint16_t)(40000 + j));

				assert_non_null(turn_table_find(&t, &d, &server, TURN_TRANSPORT_UDP));
			}
		}
	}
	assert_true(saw_move);
	/* Start a move, remove during it, finish it by steps. */
	while (t.old == NULL) {
		struct stun_addr c = v4(203, 1, (uint8_t)(i >> 8), (uint8_t)i, 1);

		assert_non_null(turn_table_add(&t, &c, &server, TURN_TRANSPORT_UDP));
		i++;
	}
	for (j = 0; j < 5000; j += 2) {
		struct stun_addr d = v4(203, 0, (uint8_t)(j >> 8), (uint8_t)j, (uint16_t)(40000 + j));
		struct turn_alloc *a = turn_table_find(&t, &d, &server, TURN_TRANSPORT_UDP);

		assert_non_null(a);
		turn_table_remove(&t, a);
	}
	visits = 0;
	turn_table_foreach(&t, count_only, NULL);
	assert_int_equal((size_t)visits, t.count);
	while (t.old != NULL)
		turn_table_step(&t, 3);
	for (j = 0; j < 5000; j++) {
		struct stun_addr d = v4(203, 0, (uint8_t)(j >> 8), (uint8_t)j, (uint16_t)(40000 + j));

		if (j % 2)
			assert_non_null(turn_table_find(&t, &d, &server, TURN_TRANSPORT_UDP));
		else
			assert_null(turn_table_find(&t, &d, &server, TURN_TRANSPORT_UDP));
	}
	turn_table_destroy(&t, NULL);
}

static void test_addr_compare(void **state)
{
	struct stun_addr a = v4(1, 2, 3, 4, 5), b = v4(1, 2, 3, 4, 6), c = v4(1, 2, 3, 5, 5);

	assert_true(turn_addr_same_ip(&a, &b));
	assert_false(turn_addr_equal(&a, &b));
	assert_false(turn_addr_same_ip(&a, &c));
	assert_true(turn_addr_equal(&a, &a));
}

/* max_perms / max_chans caps (max-permissions, max-channels) and the
 * all-or-nothing check of CreatePermission (RFC 8656 §9.2). */
static void test_caps(void **state)
{
	struct turn_alloc *a = calloc(1, sizeof(*a));
	struct stun_addr p1 = v4(198, 51, 100, 1, 1), p2 = v4(198, 51, 100, 2, 1), p3 = v4(198, 51, 100, 3, 1);
	struct stun_addr two[2], dup[2];

	a->max_perms = 2;
	a->max_chans = 1;
	assert_int_equal(turn_alloc_perm_add(a, &p1, 0, 300), 0);
	two[0] = p2;
	two[1] = p3;
	dup[0] = p2;
	dup[1] = v4(198, 51, 100, 2, 9); /* same IP, other port: one permission */
	assert_int_equal(turn_alloc_perm_fits(a, two, 2, 0), 0);
	assert_int_equal(turn_alloc_perm_fits(a, dup, 2, 0), 1);
	assert_int_equal(turn_alloc_perm_fits(a, &p1, 1, 0), 1);
	assert_int_equal(turn_alloc_perm_add(a, &p2, 0, 300), 0);
	assert_int_equal(turn_alloc_perm_add(a, &p3, 0, 300), -1);
	assert_int_equal(turn_alloc_perm_fits(a, &p3, 1, 0), 0);
	/* expired permissions make room */
	assert_int_equal(turn_alloc_perm_fits(a, &p3, 1, 300), 1);
	a->nperms = 0;
	assert_int_equal(turn_alloc_chan_bind(a, 0x4000, &p1, 0, 600, 300), TURN_CHAN_OK);
	assert_int_equal(turn_alloc_chan_bind(a, 0x4001, &p2, 0, 600, 300), TURN_CHAN_FULL);
	assert_int_equal(turn_alloc_chan_bind(a, 0x4000, &p1, 1, 600, 300), TURN_CHAN_OK);
	/* a new channel whose permission does not fit */
	a->max_chans = 2;
	assert_int_equal(turn_alloc_perm_add(a, &p2, 1, 300), 0);
	assert_int_equal(turn_alloc_chan_bind(a, 0x4001, &p3, 1, 600, 300), TURN_CHAN_PERMS_FULL);
	turn_alloc_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_perm_lifetime),
		cmocka_unit_test(test_perm_family),
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_perm_capacity),
		cmocka_unit_test(test_channel_bind),
		cmocka_unit_test(test_channel_quarantine),
		cmocka_unit_test(test_response_cache),
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_addr_compare),
		cmocka_unit_test(test_growth),
		cmocka_unit_test(test_table_incremental),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
