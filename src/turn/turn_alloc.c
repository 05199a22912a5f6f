/* turn_alloc.c -- allocation state and the per-worker 5-tuple table (RFC 8656). */
#include "turn/turn_alloc.h"

#include <stdlib.h>
#include <string.h>

static size_t addr_iplen(const struct stun_addr *a)
{
	return a->family == STUN_AF_IPV6 ? 16 : 4;
}

int turn_addr_same_ip(const struct stun_addr *a, const struct stun_addr *b)
{
	return a->family == b->family && memcmp(a->ip, b->ip, addr_iplen(a)) == 0;
}

int turn_addr_equal(const struct stun_addr *a, const struct stun_addr *b)
{
	return a->port == b->port && turn_addr_same_ip(a, b);
}

static size_t perm_cap(const struct turn_alloc *a)
{
	return a->max_perms != 0 && a->max_perms < TURN_MAX_PERMS ? a->max_perms : TURN_MAX_PERMS;
}

static size_t chan_cap(const struct turn_alloc *a)
{
	return a->max_chans != 0 && a->max_chans < TURN_MAX_CHANNELS ? a->max_chans : TURN_MAX_CHANNELS;
}

int turn_alloc_perm_add(struct turn_alloc *a, const struct stun_addr *peer, uint64_t now, uint32_t lifetime)
{
	struct turn_perm *p;
	size_t i;

	for (i = 0; i < a->nperms; i++) {
		p = &a->perms[i];
		if (p->family == peer->family && memcmp(p->ip, peer->ip, addr_iplen(peer)) == 0) {
			p->expires = now + lifetime;
			return 0;
		}
	}
	turn_alloc_expire(a, now);
	if (a->nperms >= perm_cap(a))
		return -1;
	p = &a->perms[a->nperms++];
	memset(p, 0, sizeof(*p));
	p->family = peer->family;
	memcpy(p->ip, peer->ip, addr_iplen(peer));
	p->expires = now + lifetime;
	return 0;
}

int turn_alloc_perm_fits(struct turn_alloc *a, const struct stun_addr *peers, size_t n, uint64_t now)
{
	size_t i, j, fresh = 0;

	turn_alloc_expire(a, now);
	for (i = 0; i < n; i++) {
		if (turn_alloc_perm_ok(a, &peers[i], now))
			continue;
		for (j = 0; j < i; j++)
			if (turn_addr_same_ip(&peers[j], &peers[i]))
				break;
		if (j == i)
			fresh++;
	}
	return a->nperms + fresh <= perm_cap(a);
}

int turn_alloc_perm_ok(const struct turn_alloc *a, const struct stun_addr *peer, uint64_t now)
{
	size_t i;

	for (i = 0; i < a->nperms; i++) {
		const struct turn_perm *p = &a->perms[i];

		if (p->family == peer->family && now < p->expires &&
		    memcmp(p->ip, peer->ip, addr_iplen(peer)) == 0)
			return 1;
	}
	return 0;
}

int turn_alloc_chan_bind(struct turn_alloc *a, uint16_t number, const struct stun_addr *peer, uint64_t now,
			 uint32_t lifetime, uint32_t perm_lifetime)
{
	struct turn_chan *c;
	size_t i;

	for (i = 0; i < a->nchans; i++) {
		int same_num, same_peer;

		c = &a->chans[i];
		same_num = c->number == number;
		same_peer = turn_addr_equal(&c->peer, peer);
		if (same_num && same_peer)
			goto refresh;
		/* Live or quarantined bindings reserve both the number and the peer. */
		if ((same_num || same_peer) && now < c->expires + TURN_CHANNEL_QUARANTINE)
			return TURN_CHAN_CONFLICT;
	}
	turn_alloc_expire(a, now);
	if (a->nchans >= chan_cap(a))
		return TURN_CHAN_FULL;
	if (turn_alloc_perm_add(a, peer, now, perm_lifetime) < 0)
		return TURN_CHAN_PERMS_FULL;
	c = &a->chans[a->nchans++];
	memset(c, 0, sizeof(*c));
	c->number = number;
	c->peer = *peer;
	c->expires = now + lifetime;
	return TURN_CHAN_OK;
refresh:
	if (turn_alloc_perm_add(a, peer, now, perm_lifetime) < 0)
		return TURN_CHAN_PERMS_FULL;
	c->expires = now + lifetime;
	return TURN_CHAN_OK;
}

const struct turn_chan *turn_alloc_chan_by_number(const struct turn_alloc *a, uint16_t number, uint64_t now)
{
	size_t i;

	for (i = 0; i < a->nchans; i++)
		if (a->chans[i].number == number && now < a->chans[i].expires)
			return &a->chans[i];
	return NULL;
}

const struct turn_chan *turn_alloc_chan_by_peer(const struct turn_alloc *a, const struct stun_addr *peer,
						uint64_t now)
{
	size_t i;

	for (i = 0; i < a->nchans; i++)
		if (now < a->chans[i].expires && turn_addr_equal(&a->chans[i].peer, peer))
			return &a->chans[i];
	return NULL;
}

void turn_alloc_expire(struct turn_alloc *a, uint64_t now)
{
	size_t i, j;

	for (i = j = 0; i < a->nperms; i++)
		if (now < a->perms[i].expires)
			a->perms[j++] = a->perms[i];
	a->nperms = (uint8_t)j;
	for (i = j = 0; i < a->nchans; i++)
		if (now < a->chans[i].expires + TURN_CHANNEL_QUARANTINE)
			a->chans[j++] = a->chans[i];
	a->nchans = (uint8_t)j;
}

int turn_alloc_cache_response(struct turn_alloc *a, const uint8_t tid[STUN_TID_LEN], const uint8_t *resp, size_t len)
{
	uint8_t *p;

	if (len > UINT16_MAX)
		return -1;
	if ((p = realloc(a->last_resp, len)) == NULL)
		return -1;
	memcpy(p, resp, len);
	memcpy(a->last_tid, tid, STUN_TID_LEN);
	a->last_resp = p;
	a->last_resp_len = (uint16_t)len;
	return 0;
}

/* ---- table ------------------------------------------------------------- */

static uint64_t addr_hash(uint64_t h, const struct stun_addr *a)
{
	size_t i, n = addr_iplen(a);

	/* FNV-1a: cheap, and the per-worker table is not exposed to collisions
	 * an attacker can aim well, since port and worker hashing add noise. */
	h = (h ^ a->family) * 1099511628211ull;
	h = (h ^ (a->port & 0xff)) * 1099511628211ull;
	h = (h ^ (a->port >> 8)) * 1099511628211ull;
	for (i = 0; i < n; i++)
		h = (h ^ a->ip[i]) * 1099511628211ull;
	return h;
}

static size_t bucket_of(const struct turn_table *t, const struct stun_addr *client, const struct stun_addr *server,
			uint8_t transport)
{
	uint64_t h = addr_hash(addr_hash((14695981039346656037ull ^ transport) * 1099511628211ull, client), server);

	return (size_t)(h ^ (h >> 29)) & (t->nbuckets - 1);
}

int turn_table_init(struct turn_table *t, size_t nbuckets)
{
	size_t n = 16;

	while (n < nbuckets)
		n <<= 1;
	t->buckets = calloc(n, sizeof(*t->buckets));
	if (t->buckets == NULL)
		return -1;
	t->nbuckets = n;
	t->count = 0;
	return 0;
}

void turn_table_destroy(struct turn_table *t, void (*release)(struct turn_alloc *))
{
	size_t i;

	for (i = 0; i < t->nbuckets; i++) {
		struct turn_alloc *a = t->buckets[i], *next;

		for (; a != NULL; a = next) {
			next = a->hnext;
			if (release != NULL)
				release(a);
			free(a->last_resp);
			free(a);
		}
	}
	free(t->buckets);
	t->buckets = NULL;
	t->nbuckets = t->count = 0;
}

struct turn_alloc *turn_table_find(const struct turn_table *t, const struct stun_addr *client,
				   const struct stun_addr *server, uint8_t transport)
{
	struct turn_alloc *a = t->buckets[bucket_of(t, client, server, transport)];

	for (; a != NULL; a = a->hnext)
		if (a->transport == transport && turn_addr_equal(&a->client, client) &&
		    turn_addr_equal(&a->server, server))
			return a;
	return NULL;
}

/* Doubles the bucket array; on out of memory the table just stays as it is. */
static void table_grow(struct turn_table *t)
{
	size_t n = t->nbuckets * 2, i, b;
	struct turn_alloc **nb = calloc(n, sizeof(*nb)), *a, *next;
	struct turn_table nt;

	if (nb == NULL)
		return;
	nt.nbuckets = n;
	nt.buckets = nb;
	for (i = 0; i < t->nbuckets; i++) {
		for (a = t->buckets[i]; a != NULL; a = next) {
			next = a->hnext;
			b = bucket_of(&nt, &a->client, &a->server, a->transport);
			a->hnext = nb[b];
			nb[b] = a;
		}
	}
	free(t->buckets);
	t->buckets = nb;
	t->nbuckets = n;
}

struct turn_alloc *turn_table_add(struct turn_table *t, const struct stun_addr *client,
				  const struct stun_addr *server, uint8_t transport)
{
	struct turn_alloc *a = calloc(1, sizeof(*a));
	size_t b;

	if (a == NULL)
		return NULL;
	/* Keep chains short (about one entry) as allocations pile up. */
	if (t->count >= t->nbuckets)
		table_grow(t);
	a->client = *client;
	a->server = *server;
	a->transport = transport;
	b = bucket_of(t, client, server, transport);
	a->hnext = t->buckets[b];
	t->buckets[b] = a;
	t->count++;
	return a;
}

void turn_table_remove(struct turn_table *t, struct turn_alloc *a)
{
	struct turn_alloc **pp = &t->buckets[bucket_of(t, &a->client, &a->server, a->transport)];

	for (; *pp != NULL; pp = &(*pp)->hnext) {
		if (*pp == a) {
			*pp = a->hnext;
			t->count--;
			break;
		}
	}
	free(a->last_resp);
	free(a);
}

void turn_table_foreach(struct turn_table *t, void (*fn)(struct turn_alloc *, void *), void *arg)
{
	size_t i;

	for (i = 0; i < t->nbuckets; i++) {
		struct turn_alloc *a = t->buckets[i], *next;

		for (; a != NULL; a = next) {
			next = a->hnext;
			fn(a, arg);
		}
	}
}
