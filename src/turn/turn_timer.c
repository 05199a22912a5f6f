/* turn_timer.c -- one-second timer wheel (see turn_timer.h). */
#include "turn/turn_timer.h"

#include <string.h>

static void link_in(struct turn_timer **head, struct turn_timer *t)
{
	t->next = *head;
	if (t->next != NULL)
		t->next->pprev = &t->next;
	t->pprev = head;
	*head = t;
}

static void unlink_t(struct turn_timer *t)
{
	if (t->next != NULL)
		t->next->pprev = t->pprev;
	*t->pprev = t->next;
	t->next = NULL;
	t->pprev = NULL;
}

void turn_wheel_init(struct turn_wheel *wh, uint64_t now)
{
	memset(wh, 0, sizeof(*wh));
	wh->now = now;
}

int turn_timer_armed(const struct turn_timer *t)
{
	return t->pprev != NULL;
}

void turn_timer_cancel(struct turn_timer *t)
{
	if (t->pprev != NULL)
		unlink_t(t);
}

void turn_timer_arm(struct turn_wheel *wh, struct turn_timer *t, uint64_t when)
{
	uint64_t s = when > wh->now ? when : wh->now + 1; /* overdue: next advance */

	turn_timer_cancel(t);
	t->when = when;
	link_in(&wh->slot[s & (TURN_WHEEL_SLOTS - 1)], t);
}

size_t turn_wheel_advance(struct turn_wheel *wh, uint64_t now, void (*fire)(struct turn_timer *, void *), void *arg)
{
	struct turn_timer *due = NULL, *t, *next;
	uint64_t s, last;
	size_t n = 0;

	if (now <= wh->now)
		return 0;
	/* A jump of a whole turn or more visits every slot once. */
	last = now - wh->now >= TURN_WHEEL_SLOTS ? wh->now + TURN_WHEEL_SLOTS : now;
	for (s = wh->now + 1; s <= last; s++) {
		for (t = wh->slot[s & (TURN_WHEEL_SLOTS - 1)]; t != NULL; t = next) {
			next = t->next;
			if (t->when <= now) { /* else a later turn's timer: stays */
				unlink_t(t);
				link_in(&due, t);
			}
		}
	}
	wh->now = now;
	/* Fire from a private list: fire() may cancel a due timer (it unlinks
	 * from here through pprev) or arm new ones (they go into the wheel,
	 * after now, so this loop ends). */
	while ((t = due) != NULL) {
		unlink_t(t);
		n++;
		fire(t, arg);
	}
	return n;
}
