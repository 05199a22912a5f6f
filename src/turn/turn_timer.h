/* turn_timer.h -- a per-worker timer wheel with one-second resolution.
 *
 * Pure code, no clock of its own: times are monotonic seconds supplied by
 * the caller. Timers are intrusive (embedded in what they time, e.g. struct
 * turn_alloc), so arming never allocates and cannot fail. A tick costs
 * O(timers in the seconds it passes), not O(all timers): the wheel has
 * TURN_WHEEL_SLOTS one-second slots, and a timer further away than that sits
 * in its slot and is merely skipped once per turn of the wheel (lifetimes up
 * to an hour never are). One thread owns a wheel; nothing here locks.
 */
#ifndef TURNSTONE_TURN_TIMER_H
#define TURNSTONE_TURN_TIMER_H

#include <stddef.h>
#include <stdint.h>

#define TURN_WHEEL_SLOTS 4096 /* seconds per turn; a power of two */

struct turn_timer {
	uint64_t when;                    /* monotonic second it fires at */
	struct turn_timer *next;
	struct turn_timer **pprev;        /* NULL: not armed */
};

struct turn_wheel {
	uint64_t now;                     /* last second processed */
	struct turn_timer *slot[TURN_WHEEL_SLOTS];
};

/* Empties wh; now is the current second (timers fire after it). */
void turn_wheel_init(struct turn_wheel *wh, uint64_t now);

/* Arms t (zeroed or cancelled or armed: re-armed) to fire at second when.
 * A time at or before the wheel's current second fires on the next
 * turn_wheel_advance. */
void turn_timer_arm(struct turn_wheel *wh, struct turn_timer *t, uint64_t when);

/* Disarms t if armed (idempotent; safe on a zeroed timer). Needs no
 * wheel, so whoever frees t's container can cancel it. */
void turn_timer_cancel(struct turn_timer *t);

/* 1 when t is armed. */
int turn_timer_armed(const struct turn_timer *t);

/* Fires, in no particular order, every timer due at or before now (each
 * disarmed before fire(t, arg) runs; fire may arm, re-arm or cancel any
 * timer, free t's container, or cancel other due timers). Returns the number
 * fired. Work is proportional to the timers in the slots passed. */
size_t turn_wheel_advance(struct turn_wheel *wh, uint64_t now, void (*fire)(struct turn_timer *, void *), void *arg);

#endif
