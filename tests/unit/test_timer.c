/* test_timer.c -- unit tests for the per-worker timer wheel (turn_timer). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "turn/turn_timer.h"

struct item {
	struct turn_timer t;
	uint64_t fired_at;   /* 0: not fired */
	int id;
};

struct ctx {
	uint64_t now;
	size_t fired;
	struct item *cancel; /* fire() cancels this one, when set */
	struct turn_wheel *wh;
	int rearm;           /* fire() re-arms its timer rearm seconds later */
};

static void fire(struct turn_timer *t, void *arg)
{
	struct item *it = (struct item *)t;
	struct ctx *c = arg;

	assert_false(turn_timer_armed(t)); /* disarmed before fire */
	it->fired_at = c->now;
	c->fired++;
	if (c->cancel != NULL && c->cancel != it)
		turn_timer_cancel(&c->cancel->t);
	if (c->rearm)
		turn_timer_arm(c->wh, t, c->now + (uint64_t)c->rearm);
}

static size_t advance(struct turn_wheel *wh, struct ctx *c, uint64_t now)
{
	c->now = now;
	return turn_wheel_advance(wh, now, fire, c);
}

static void test_insert_fire(void **state)
{
	static struct turn_wheel wh;
	struct item a = { 0 }, b = { 0 };
	struct ctx c = { 0 };

	turn_wheel_init(&wh, 1000);
	turn_timer_arm(&wh, &a.t, 1005);
	turn_timer_arm(&wh, &b.t, 1010);
	assert_true(turn_timer_armed(&a.t));
	assert_int_equal(advance(&wh, &c, 1004), 0);
	assert_int_equal(advance(&wh, &c, 1005), 1);
	assert_int_equal(a.fired_at, 1005);
	assert_int_equal(b.fired_at, 0);
	/* a skipped stretch fires what it passed, once */
	assert_int_equal(advance(&wh, &c, 1020), 1);
	assert_int_equal(b.fired_at, 1020);
	assert_int_equal(advance(&wh, &c, 1030), 0);
	/* overdue: fires on the next advance */
	turn_timer_arm(&wh, &a.t, 900);
	assert_int_equal(advance(&wh, &c, 1031), 1);
}

static void test_cancel_rearm(void **state)
{
	static struct turn_wheel wh;
	struct item a = { 0 }, b = { 0 };
	struct ctx c = { 0 };

	turn_wheel_init(&wh, 0);
	turn_timer_cancel(&a.t); /* zeroed: no-op */
	turn_timer_arm(&wh, &a.t, 10);
	turn_timer_cancel(&a.t);
	turn_timer_cancel(&a.t); /* idempotent */
	assert_false(turn_timer_armed(&a.t));
	/* re-arm on refresh: later, then earlier */
	turn_timer_arm(&wh, &b.t, 5);
	turn_timer_arm(&wh, &b.t, 50);
	assert_int_equal(advance(&wh, &c, 20), 0);
	assert_int_equal(b.fired_at, 0);
	turn_timer_arm(&wh, &b.t, 30);
	assert_int_equal(advance(&wh, &c, 29), 0);
	assert_int_equal(advance(&wh, &c, 30), 1);
	assert_int_equal(advance(&wh, &c, 60), 0); /* the old 50 is gone */
	assert_int_equal(a.fired_at, 0);
}

/* Many timers in one second; fire() cancelling another due timer. */
static void test_same_second(void **state)
{
	static struct turn_wheel wh;
	enum { N = 10000 };
	struct item *it = calloc(N, sizeof(*it));
	struct ctx c = { 0 };
	size_t i, n = 0;

	assert_non_null(it);
	turn_wheel_init(&wh, 0);
	for (i = 0; i < N; i++)
		turn_timer_arm(&wh, &it[i].t, 100);
	c.cancel = &it[N / 2];
	n = advance(&wh, &c, 100);
	/* it[N/2] fired or got cancelled by an earlier fire; all others fired */
	assert_true(n == N || n == N - 1);
	for (i = 0; i < N; i++)
		if (&it[i] != c.cancel)
			assert_int_equal(it[i].fired_at, 100);
	free(it);
}

/* Far-future timers (beyond one turn) wait; re-arming from fire() works. */
static void test_far_and_rearm(void **state)
{
	static struct turn_wheel wh;
	struct item far = { 0 }, tick = { 0 };
	struct ctx c = { 0 };
	uint64_t s;

	turn_wheel_init(&wh, 0);
	turn_timer_arm(&wh, &far.t, TURN_WHEEL_SLOTS * 2 + 7);
	for (s = 1; s < TURN_WHEEL_SLOTS * 2 + 7; s++)
		assert_int_equal(advance(&wh, &c, s), 0);
	assert_int_equal(advance(&wh, &c, s), 1);
	assert_int_equal(far.fired_at, TURN_WHEEL_SLOTS * 2 + 7);
	c.wh = &wh;
	c.rearm = 3;
	turn_timer_arm(&wh, &tick.t, s + 3);
	assert_int_equal(advance(&wh, &c, s + 3), 1);
	assert_int_equal(advance(&wh, &c, s + 5), 0);
	assert_int_equal(advance(&wh, &c, s + 6), 1);
	turn_timer_cancel(&tick.t);
}

/* 100,000 timers spread over 500 seconds: nothing fires before its second,
 * and each second fires exactly its own 200 (the wheel's work per second is
 * its slot, which holds only these). */
static void test_work_per_tick(void **state)
{
	static struct turn_wheel wh;
	enum { N = 100000 };
	struct item *it = calloc(N, sizeof(*it));
	struct ctx c = { 0 };
	size_t i;
	uint64_t s;

	assert_non_null(it);
	turn_wheel_init(&wh, 0);
	for (i = 0; i < N; i++)
		turn_timer_arm(&wh, &it[i].t, 3000 + i % 500);
	for (s = 1; s < 3000; s++)
		assert_int_equal(advance(&wh, &c, s), 0);
	for (i = 0; i < N; i++)
		assert_true(turn_timer_armed(&it[i].t));
	/* each second fires exactly its own share */
	for (s = 3000; s < 3500; s++)
		assert_int_equal(advance(&wh, &c, s), N / 500);
	free(it);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_insert_fire),
		cmocka_unit_test(test_cancel_rearm),
		cmocka_unit_test(test_same_second),
		cmocka_unit_test(test_far_and_rearm),
		cmocka_unit_test(test_work_per_tick),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
