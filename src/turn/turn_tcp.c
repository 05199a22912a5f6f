/* turn_tcp.c -- connection state of TCP allocations (RFC 6062 §5). Pure. */
#include "turn/turn_tcp.h"

#include <stdlib.h>
#include <string.h>

#include "turn/turn_alloc.h"

static size_t bucket_of(uint32_t id)
{
	/* The low bits are the worker index: hash the rest. */
	return (size_t)((id >> TURN_TCP_WORKER_BITS) * 2654435761u) % TURN_TCP_BUCKETS;
}

struct turn_tcp_conn *turn_tcp_find(const struct turn_tcp_table *t, uint32_t id)
{
	struct turn_tcp_conn *c;

	for (c = t->buckets[bucket_of(id)]; c != NULL; c = c->hnext)
		if (c->id == id)
			return c;
	return NULL;
}

struct turn_tcp_conn *turn_tcp_find_peer(const struct turn_tcp_list *l, const struct stun_addr *peer)
{
	struct turn_tcp_conn *c;

	for (c = l->head; c != NULL; c = c->anext)
		if (turn_addr_equal(&c->peer, peer))
			return c;
	return NULL;
}

struct turn_tcp_conn *turn_tcp_add(struct turn_tcp_table *t, struct turn_tcp_list *l, const struct stun_addr *peer,
				   enum turn_tcp_state st, uint32_t rnd, unsigned worker)
{
	struct turn_tcp_conn *c = calloc(1, sizeof(*c));
	uint32_t step = 1u << TURN_TCP_WORKER_BITS;
	uint32_t id = (rnd & ~(step - 1)) | (worker & (step - 1));
	size_t b;

	if (c == NULL)
		return NULL;
	while (turn_tcp_find(t, id) != NULL)
		id += step; /* stays on the same worker index */
	c->id = id;
	c->peer = *peer;
	c->state = (uint8_t)st;
	b = bucket_of(id);
	c->hnext = t->buckets[b];
	t->buckets[b] = c;
	t->count++;
	c->anext = l->head;
	if (l->head != NULL)
		l->head->aprev = c;
	l->head = c;
	if (turn_tcp_is_pending(c)) {
		t->npending++;
		l->npending++;
	}
	return c;
}

void turn_tcp_set_state(struct turn_tcp_table *t, struct turn_tcp_list *l, struct turn_tcp_conn *c,
			enum turn_tcp_state st)
{
	int was = turn_tcp_is_pending(c);

	c->state = (uint8_t)st;
	if (was && !turn_tcp_is_pending(c)) {
		t->npending--;
		l->npending--;
	} else if (!was && turn_tcp_is_pending(c)) {
		t->npending++;
		l->npending++;
	}
}

void turn_tcp_remove(struct turn_tcp_table *t, struct turn_tcp_list *l, struct turn_tcp_conn *c)
{
	struct turn_tcp_conn **pp;

	for (pp = &t->buckets[bucket_of(c->id)]; *pp != NULL; pp = &(*pp)->hnext) {
		if (*pp == c) {
			*pp = c->hnext;
			break;
		}
	}
	t->count--;
	if (c->aprev != NULL)
		c->aprev->anext = c->anext;
	else
		l->head = c->anext;
	if (c->anext != NULL)
		c->anext->aprev = c->aprev;
	if (turn_tcp_is_pending(c)) {
		t->npending--;
		l->npending--;
	}
	free(c);
}

void turn_tcp_foreach(struct turn_tcp_table *t, void (*fn)(struct turn_tcp_conn *, void *), void *arg)
{
	struct turn_tcp_conn *c, *next;
	size_t i;

	for (i = 0; i < TURN_TCP_BUCKETS; i++) {
		for (c = t->buckets[i]; c != NULL; c = next) {
			next = c->hnext;
			fn(c, arg);
		}
	}
}
