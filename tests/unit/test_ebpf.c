/* test_ebpf.c -- unit tests for the ebpf-offload channel map entries
 * (net/ebpf/ebpf_entry.c): layout, byte order, expiry times, and the cases
 * left to the socket path; the list of allocations with entries (the
 * once-a-second walk). Real turn_alloc state built with turn_alloc.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "net/ebpf/ebpf_entry.h"

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

/* A UDP allocation with channel 0x4001 bound to 192.0.2.9:7000 at t=100. */
static const struct ebpf_limits nolim = { 0, 0, 0, 0, 0 };

static struct turn_alloc *setup(struct turn_table *t)
{
	struct stun_addr client = v4(198, 51, 100, 7, 40000), server = v4(203, 0, 113, 1, 3478);
	struct stun_addr peer = v4(192, 0, 2, 9, 7000);
	struct turn_alloc *a;

	assert_int_equal(turn_table_init(t, 4), 0);
	a = turn_table_add(t, &client, &server, TURN_TRANSPORT_UDP);
	assert_non_null(a);
	a->relay = v4(203, 0, 113, 1, 50000);
	assert_int_equal(turn_alloc_chan_bind(a, 0x4001, &peer, 100, 600, 300), TURN_CHAN_OK);
	return a;
}

static void test_layout(void **state)
{
	struct turn_table t;
	struct turn_alloc *a = setup(&t);
	struct stun_addr bound = v4(10, 1, 2, 3, 50000);
	struct ts_ebpf_key k;
	struct ts_ebpf_val v;
	struct ts_ebpf_ckey ck;
	struct ts_ebpf_cval cv;

	assert_int_equal(sizeof(struct ts_ebpf_key), 12);
	assert_int_equal(sizeof(struct ts_ebpf_val), 64);
	assert_int_equal(sizeof(struct ts_ebpf_cval), 56);
	assert_int_equal(ebpf_entry_make(a, &bound, &a->chans[0], 100, &nolim, &k, &v, &ck, &cv), 0);
	/* network order, as on the wire: the bound address, not a->relay */
	assert_int_equal(k.relay_ip, htonl(0x0a010203));
	assert_int_equal(k.relay_port, htons(50000));
	assert_int_equal(k.peer_ip, htonl(0xc0000209));
	assert_int_equal(k.peer_port, htons(7000));
	assert_int_equal(v.client_ip, htonl(0xc6336407));
	assert_int_equal(v.client_port, htons(40000));
	assert_int_equal(v.listen_ip, htonl(0xcb007101));
	assert_int_equal(v.listen_port, htons(3478));
	assert_int_equal(v.channel, 0x4001);
	/* worker_now seconds -> CLOCK_MONOTONIC ns: live while now < expires */
	assert_true(v.chan_expires_ns == 700 * EBPF_NS_PER_S);
	assert_true(v.perm_expires_ns == 400 * EBPF_NS_PER_S);
	/* client -> peer: (listening, client, channel) -> (bound, peer) */
	assert_int_equal(sizeof(struct ts_ebpf_ckey), 16);
	assert_int_equal(ck.listen_ip, htonl(0xcb007101));
	assert_int_equal(ck.listen_port, htons(3478));
	assert_int_equal(ck.client_ip, htonl(0xc6336407));
	assert_int_equal(ck.client_port, htons(40000));
	assert_int_equal(ck.channel, htons(0x4001)); /* as in the ChannelData header */
	assert_int_equal(ck.pad, 0);
	assert_int_equal(cv.relay_ip, htonl(0x0a010203));
	assert_int_equal(cv.relay_port, htons(50000));
	assert_int_equal(cv.peer_ip, htonl(0xc0000209));
	assert_int_equal(cv.peer_port, htons(7000));
	assert_true(cv.chan_expires_ns == 700 * EBPF_NS_PER_S);
	assert_true(cv.perm_expires_ns == 400 * EBPF_NS_PER_S);
	assert_int_equal(v.bucket, 0);
	assert_int_equal(cv.bucket, 0);
	{ /* the key of a channel that is being removed: the same */
		struct ts_ebpf_ckey ck2;

		memset(&ck2, 0xff, sizeof(ck2));
		ebpf_entry_ckey(a, &a->chans[0], &ck2);
		assert_memory_equal(&ck, &ck2, sizeof(ck));
	}
	turn_table_destroy(&t, NULL);
}

/* With max-bps and bps-capacity the slots and rates go into both entries. */
static void test_limits(void **state)
{
	struct turn_table t;
	struct turn_alloc *a = setup(&t);
	struct stun_addr bound = v4(10, 1, 2, 3, 50000);
	struct ebpf_limits l = { 1, 300, 2, 125000, 1000000 };
	struct ts_ebpf_key k;
	struct ts_ebpf_val v;
	struct ts_ebpf_ckey ck;
	struct ts_ebpf_cval cv;

	assert_int_equal(ebpf_entry_make(a, &bound, &a->chans[0], 100, &l, &k, &v, &ck, &cv), 0);
	assert_int_equal(v.bucket, 300);
	assert_int_equal(cv.bucket, 300);
	assert_int_equal(v.cap_bucket, 2);
	assert_int_equal(cv.cap_bucket, 2);
	assert_true(v.rate == 125000 && cv.rate == 125000);
	assert_true(v.cap_rate == 1000000 && cv.cap_rate == 1000000);
	l.cap_rate = 0; /* max-bps only: no capacity slot needed */
	l.cap_bucket = 0;
	assert_int_equal(ebpf_entry_make(a, &bound, &a->chans[0], 100, &l, &k, &v, &ck, &cv), 0);
	assert_int_equal(v.cap_bucket, 0);
	turn_table_destroy(&t, NULL);
}

/* The shared bucket (relay_map.h): the token bucket of turn_limit.c. */
static void test_bucket(void **state)
{
	const uint64_t s = TS_EBPF_NS, rate = 1000; /* bytes/s, burst 1000 bytes */
	__u64 tat = 0;
	uint64_t now = 50 * s, passed = 0;
	int i;

	/* full: one second's worth passes at once, plus one datagram of debt */
	for (i = 0; i < 100; i++)
		if (ts_bucket_ok(tat, now)) {
			ts_bucket_take(&tat, now, 100, rate);
			passed += 100;
		}
	assert_int_equal(passed, 1100);
	assert_false(ts_bucket_ok(tat, now));
	assert_false(ts_bucket_ok(tat, now + s / 10 - 1)); /* 100 bytes of debt: 0.1 s */
	assert_true(ts_bucket_ok(tat, now + s / 10));
	/* over 10 s at most rate * 10 + burst + one datagram */
	passed = 0;
	for (i = 0; i < 10000; i++) {
		uint64_t t2 = now + (uint64_t)i * s / 1000;

		if (ts_bucket_ok(tat, t2)) {
			ts_bucket_take(&tat, t2, 100, rate);
			passed += 100;
		}
	}
	assert_true(passed <= 10 * rate + 100);
	assert_true(passed >= 10 * rate - 200);
	/* idle: refills to the burst, not beyond */
	now += 100 * s;
	passed = 0;
	while (ts_bucket_ok(tat, now)) {
		ts_bucket_take(&tat, now, 100, rate);
		passed += 100;
	}
	assert_int_equal(passed, 1100);
}

/* A refresh (CreatePermission or ChannelBind again) moves the times on. */
static void test_refresh(void **state)
{
	struct turn_table t;
	struct turn_alloc *a = setup(&t);
	struct stun_addr peer = v4(192, 0, 2, 9, 1), bound = v4(10, 1, 2, 3, 50000);
	struct ts_ebpf_key k;
	struct ts_ebpf_val v;
	struct ts_ebpf_ckey ck;
	struct ts_ebpf_cval cv;

	assert_int_equal(turn_alloc_perm_add(a, &peer, 250, 300), 0); /* same IP, other port */
	assert_int_equal(ebpf_entry_make(a, &bound, &a->chans[0], 250, &nolim, &k, &v, &ck, &cv), 0);
	assert_true(v.perm_expires_ns == 550 * EBPF_NS_PER_S);
	assert_true(v.chan_expires_ns == 700 * EBPF_NS_PER_S);
	turn_table_destroy(&t, NULL);
}

/* Lapsed permission or channel, TCP, IPv6, max-bps: no entry at all. */
static void test_refused(void **state)
{
	static const uint8_t ip6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 };
	struct turn_table t;
	struct turn_alloc *a = setup(&t);
	struct stun_addr bound = v4(10, 1, 2, 3, 50000), b6;
	struct ts_ebpf_key k;
	struct ts_ebpf_val v;
	struct ts_ebpf_ckey ck;
	struct ts_ebpf_cval cv;

	assert_int_equal(ebpf_entry_make(a, &bound, &a->chans[0], 399, &nolim, &k, &v, &ck, &cv), 0);
	assert_int_equal(ebpf_entry_make(a, &bound, &a->chans[0], 400, &nolim, &k, &v, &ck, &cv), -1); /* permission gone */
	{ /* a bandwidth limit without its bucket slot */
		struct ebpf_limits l = { 1, 0, 0, 1000, 0 };

		assert_int_equal(ebpf_entry_make(a, &bound, &a->chans[0], 100, &l, &k, &v, &ck, &cv), -1);
		l.rate = 0;
		l.cap_rate = 5000;
		l.bucket = 7;
		assert_int_equal(ebpf_entry_make(a, &bound, &a->chans[0], 100, &l, &k, &v, &ck, &cv), -1);
	}
	memset(&b6, 0, sizeof(b6));
	b6.family = STUN_AF_IPV6;
	memcpy(b6.ip, ip6, 16);
	assert_int_equal(ebpf_entry_make(a, &b6, &a->chans[0], 100, &nolim, &k, &v, &ck, &cv), -1);
	a->transport = TURN_TRANSPORT_TCP;
	assert_int_equal(ebpf_entry_make(a, &bound, &a->chans[0], 100, &nolim, &k, &v, &ck, &cv), -1);
	a->transport = TURN_TRANSPORT_UDP;
	a->chans[0].expires = 100; /* channel past its lifetime */
	assert_int_equal(ebpf_entry_make(a, &bound, &a->chans[0], 100, &nolim, &k, &v, &ck, &cv), -1);
	a->nperms = 0;
	assert_true(ebpf_entry_perm_expiry_ns(a, &a->chans[0]) == 0);
	turn_table_destroy(&t, NULL);
}

/* The nodes of l from the head, as indices into n[]; returns how many. */
static size_t walk(const struct ebpf_list *l, const struct ebpf_node *n, int *out, size_t max)
{
	const struct ebpf_node *p;
	size_t k = 0;

	for (p = l->head; p != NULL && k < max; p = p->next) {
		assert_true(p->next == NULL || p->next->prev == p);
		out[k++] = (int)(p - n);
	}
	assert_int_equal(k, l->len);
	return k;
}

/* Linked on the first entry, unlinked on the last, whatever the order;
 * drop unlinks at any count; a walk may release the node it visits. */
static void test_list(void **state)
{
	struct ebpf_list l = { NULL, 0 };
	struct ebpf_node n[4];
	struct ebpf_node *p, *next;
	int got[8];
	size_t visits;

	memset(n, 0, sizeof(n));
	assert_int_equal(walk(&l, n, got, 8), 0);
	ebpf_list_release(&l, &n[0]); /* nothing at 0 */
	assert_int_equal(n[0].entries, 0);
	assert_int_equal(l.len, 0);
	ebpf_list_hold(&l, &n[0]);
	ebpf_list_hold(&l, &n[1]);
	ebpf_list_hold(&l, &n[1]); /* a second channel: still one node */
	ebpf_list_hold(&l, &n[2]);
	assert_int_equal(walk(&l, n, got, 8), 3);
	assert_int_equal(got[0], 2);
	assert_int_equal(got[1], 1);
	assert_int_equal(got[2], 0);
	assert_null(l.head->prev);
	/* n[3] never held an entry: dropping it changes nothing */
	ebpf_list_drop(&l, &n[3]);
	assert_int_equal(l.len, 3);
	ebpf_list_release(&l, &n[1]); /* one of its two channels */
	assert_int_equal(walk(&l, n, got, 8), 3);
	ebpf_list_release(&l, &n[1]); /* the last: out, from the middle */
	assert_int_equal(walk(&l, n, got, 8), 2);
	assert_int_equal(got[0], 2);
	assert_int_equal(got[1], 0);
	assert_null(n[1].next);
	assert_null(n[1].prev);
	/* re-linked on a new first entry */
	ebpf_list_hold(&l, &n[1]);
	ebpf_list_hold(&l, &n[1]);
	assert_int_equal(walk(&l, n, got, 8), 3);
	/* a walk that releases every node it visits (each one's last entry
	 * lapses, as in ebpf_alloc_tick) still visits each once */
	ebpf_list_hold(&l, &n[0]); /* n[0]: two entries, stays */
	visits = 0;
	for (p = l.head; p != NULL; p = next) {
		next = p->next;
		ebpf_list_release(&l, p);
		visits++;
	}
	assert_int_equal(visits, 3);
	assert_int_equal(walk(&l, n, got, 8), 2); /* n[1] kept one of two, n[0] one of two */
	assert_int_equal(got[0], 1);
	assert_int_equal(got[1], 0);
	/* the allocation ends: out whatever its count */
	ebpf_list_hold(&l, &n[0]);
	ebpf_list_drop(&l, &n[0]); /* the tail */
	assert_int_equal(n[0].entries, 0);
	assert_int_equal(walk(&l, n, got, 8), 1);
	ebpf_list_drop(&l, &n[1]); /* the head and last */
	assert_null(l.head);
	assert_int_equal(l.len, 0);
	ebpf_list_release(&l, &n[1]);
	assert_int_equal(l.len, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_refresh),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_bucket),
		cmocka_unit_test(test_list),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
