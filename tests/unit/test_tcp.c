/* test_tcp.c -- unit tests for the TCP allocation connection table (RFC 6062). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "turn/turn_tcp.h"

static struct stun_addr peer(uint8_t last, uint16_t port)
{
	struct stun_addr x;

	memset(&x, 0, sizeof(x));
	x.family = STUN_AF_IPV4;
	x.ip[0] = 192;
	x.ip[1] = 0;
	x.ip[2] = 2;
	x.ip[3] = last;
	x.port = port;
	return x;
}

/* CONNECTION-IDs carry the worker index, are unique even when the random
 * bits repeat, and are found again by id and by peer. */
static void test_ids(void **state)
{
	struct turn_tcp_table *t = calloc(1, sizeof(*t));
	struct turn_tcp_list l = { 0 };
	struct stun_addr p1 = peer(1, 80), p2 = peer(1, 81);
	struct turn_tcp_conn *a, *b;

	assert_non_null(t);
	a = turn_tcp_add(t, &l, &p1, TURN_TCP_CONNECTING, 0xdeadbeef, 5);
	b = turn_tcp_add(t, &l, &p2, TURN_TCP_PENDING, 0xdeadbeef, 5);
	assert_non_null(a);
	assert_non_null(b);
	assert_int_not_equal(a->id, b->id);
	assert_int_equal(turn_tcp_id_worker(a->id), 5);
	assert_int_equal(turn_tcp_id_worker(b->id), 5);
	assert_ptr_equal(turn_tcp_find(t, a->id), a);
	assert_ptr_equal(turn_tcp_find(t, b->id), b);
	assert_null(turn_tcp_find(t, a->id ^ 0x400));
	assert_ptr_equal(turn_tcp_find_peer(&l, &p1), a);
	assert_ptr_equal(turn_tcp_find_peer(&l, &p2), b);
	p2.port = 82;
	assert_null(turn_tcp_find_peer(&l, &p2));
	assert_int_equal(t->count, 2);
	turn_tcp_remove(t, &l, a);
	turn_tcp_remove(t, &l, b);
	assert_int_equal(t->count, 0);
	assert_null(l.head);
	free(t);
}

/* Pending counts follow the state: CONNECTING and PENDING count, BOUND does not. */
static void test_pending(void **state)
{
	struct turn_tcp_table *t = calloc(1, sizeof(*t));
	struct turn_tcp_list l1 = { 0 }, l2 = { 0 };
	struct stun_addr p = peer(2, 443);
	struct turn_tcp_conn *a, *b, *c;

	assert_non_null(t);
	a = turn_tcp_add(t, &l1, &p, TURN_TCP_CONNECTING, 1u << 12, 0);
	b = turn_tcp_add(t, &l1, &(struct stun_addr){ 0 }, TURN_TCP_PENDING, 2u << 12, 0);
	c = turn_tcp_add(t, &l2, &p, TURN_TCP_PENDING, 3u << 12, 0);
	assert_int_equal(t->npending, 3);
	assert_int_equal(l1.npending, 2);
	assert_int_equal(l2.npending, 1);
	turn_tcp_set_state(t, &l1, a, TURN_TCP_PENDING);
	assert_int_equal(l1.npending, 2);
	turn_tcp_set_state(t, &l1, a, TURN_TCP_BOUND);
	assert_int_equal(l1.npending, 1);
	assert_int_equal(t->npending, 2);
	turn_tcp_remove(t, &l1, a); /* bound: pending counts unchanged */
	assert_int_equal(t->npending, 2);
	turn_tcp_remove(t, &l1, b);
	assert_int_equal(l1.npending, 0);
	assert_null(l1.head);
	/* the other allocation's list is untouched */
	assert_ptr_equal(l2.head, c);
	turn_tcp_remove(t, &l2, c);
	assert_int_equal(t->npending, 0);
	assert_int_equal(t->count, 0);
	free(t);
}

struct counter {
	struct turn_tcp_table *t;
	struct turn_tcp_list *l;
	int n;
};

static void drop(struct turn_tcp_conn *c, void *arg)
{
	struct counter *k = arg;

	k->n++;
	turn_tcp_remove(k->t, k->l, c);
}

/* foreach visits every connection once and survives removal of the current one;
 * many ids with the same random bits stay distinct. */
static void test_foreach(void **state)
{
	struct turn_tcp_table *t = calloc(1, sizeof(*t));
	struct turn_tcp_list l = { 0 };
	struct counter k = { t, &l, 0 };
	int i;

	assert_non_null(t);
	for (i = 0; i < 3000; i++) {
		struct stun_addr p = peer((uint8_t)i, (uint16_t)i);

		assert_non_null(turn_tcp_add(t, &l, &p, TURN_TCP_PENDING, 42u << 10, 1023));
	}
	assert_int_equal(t->count, 3000);
	turn_tcp_foreach(t, drop, &k);
	assert_int_equal(k.n, 3000);
	assert_int_equal(t->count, 0);
	assert_int_equal(t->npending, 0);
	assert_null(l.head);
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ids),
		cmocka_unit_test(test_pending),
		cmocka_unit_test(test_foreach),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
