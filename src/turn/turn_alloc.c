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

/* Makes room for one more entry in *arr (n used, *size allocated, elem
 * bytes each): 1, then doubling up to cap. Returns 0, or -1 when at cap or
 * out of memory (both 508 to the client). */
static int grow(void **arr, size_t n, uint8_t *size, size_t cap, size_t elem)
{
	size_t ns;
	void *p;

	if (n < *size)
		return 0;
	if (n >= cap)
		return -1;
	ns = *size == 0 ? 1 : (size_t)*size * 2;
	if (ns > cap)
		ns = cap;
	if ((p = realloc(*arr, ns * elem)) == NULL)
		return -1;
	*arr = p;
	*size = (uint8_t)ns;
	return 0;
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
	if (a->nperms >= perm_cap(a) ||
	    grow((void **)&a->perms, a->nperms, &a->perms_size, perm_cap(a), sizeof(*a->perms)) < 0)
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
	/* Grown after perm_add, whose turn_alloc_expire may free an empty array. */
	if (grow((void **)&a->chans, a->nchans, &a->chans_size, chan_cap(a), sizeof(*a->chans)) < 0)
		return TURN_CHAN_FULL; /* out of memory: 508 as well */
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
		else
			free(a->chans[i].ebpf_seen); /* NULL unless the owner failed to clear it */
	a->nchans = (uint8_t)j;
	/* Shrink to nothing only: an allocation that used some and lost all
	 * returns to the size of one that never had any. */
	if (a->nperms == 0 && a->perms != NULL) {
		free(a->perms);
		a->perms = NULL;
		a->perms_size = 0;
	}
	if (a->nchans == 0 && a->chans != NULL) {
		free(a->chans);
		a->chans = NULL;
		a->chans_size = 0;
	}
}

uint64_t turn_alloc_next_deadline(const struct turn_alloc *a, uint64_t now)
{
	uint64_t d = a->expires, e;
	size_t i;

	for (i = 0; i < a->nperms; i++)
		if (a->perms[i].expires > now && a->perms[i].expires < d)
			d = a->perms[i].expires;
	for (i = 0; i < a->nchans; i++) {
		e = a->chans[i].expires > now ? a->chans[i].expires : a->chans[i].expires + TURN_CHANNEL_QUARANTINE;
		if (e > now && e < d)
			d = e;
	}
	return d;
}

static const char no_user[] = "";

int turn_alloc_set_user(struct turn_alloc *a, const char *username, const uint8_t *key, size_t keylen)
{
	size_t n = strnlen(username, TURN_USERNAME_MAX);
	char *u;

	if (keylen > sizeof(a->key) || (u = malloc(n + 1)) == NULL)
		return -1;
	memcpy(u, username, n);
	u[n] = '\0';
	if (a->username != no_user)
		free((char *)a->username);
	a->username = u;
	memcpy(a->key, key, keylen);
	a->keylen = (uint8_t)keylen;
	return 0;
}

void turn_alloc_free(struct turn_alloc *a)
{
	turn_timer_cancel(&a->timer); /* the owner's wheel may outlive a */
	if (a->username != no_user)
		free((char *)a->username);
	free(a->perms);
	for (size_t i = 0; i < a->nchans; i++)
		free(a->chans[i].ebpf_seen);
	free(a->chans);
	free(a->last_resp);
	free(a);
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

static uint32_t tuple_hash(const struct stun_addr *client, const struct stun_addr *server, uint8_t transport)
{
	uint64_t h = addr_hash(addr_hash((14695981039346656037ull ^ transport) * 1099511628211ull, client), server);

	return (uint32_t)(h ^ (h >> 29));
}

/* The chain a hash lives in: the old array's bucket while not yet moved. */
static struct turn_alloc **chain_of(const struct turn_table *t, uint32_t h)
{
	if (t->old != NULL) {
		size_t i = h & (t->nold - 1);

		if (i >= t->moved)
			return &t->old[i];
	}
	return &t->buckets[h & (t->nbuckets - 1)];
}

int turn_table_init(struct turn_table *t, size_t nbuckets)
{
	size_t n = 16;

	while (n < nbuckets)
		n <<= 1;
	memset(t, 0, sizeof(*t));
	t->buckets = calloc(n, sizeof(*t->buckets));
	if (t->buckets == NULL)
		return -1;
	t->nbuckets = n;
	return 0;
}

static void free_chain(struct turn_alloc *a, void (*release)(struct turn_alloc *))
{
	struct turn_alloc *next;

	for (; a != NULL; a = next) {
		next = a->hnext;
		if (release != NULL)
			release(a);
		turn_alloc_free(a);
	}
}

void turn_table_destroy(struct turn_table *t, void (*release)(struct turn_alloc *))
{
	size_t i;

	for (i = 0; i < t->nbuckets; i++)
		free_chain(t->buckets[i], release);
	for (i = t->moved; t->old != NULL && i < t->nold; i++)
		free_chain(t->old[i], release);
	free(t->buckets);
	free(t->old);
	memset(t, 0, sizeof(*t));
}

struct turn_alloc *turn_table_find(const struct turn_table *t, const struct stun_addr *client,
				   const struct stun_addr *server, uint8_t transport)
{
	uint32_t h = tuple_hash(client, server, transport);
	struct turn_alloc *a = *chain_of(t, h);

	for (; a != NULL; a = a->hnext)
		if (a->hash == h && a->transport == transport && turn_addr_equal(&a->client, client) &&
		    turn_addr_equal(&a->server, server))
			return a;
	return NULL;
}

void turn_table_step(struct turn_table *t, size_t n)
{
	struct turn_alloc *a, *next, **b;

	for (; t->old != NULL && n > 0; n--) {
		for (a = t->old[t->moved]; a != NULL; a = next) {
			next = a->hnext;
			b = &t->buckets[a->hash & (t->nbuckets - 1)];
			a->hnext = *b;
			*b = a;
		}
		t->old[t->moved] = NULL;
		if (++t->moved == t->nold) {
			free(t->old);
			t->old = NULL;
			t->nold = t->moved = 0;
		}
	}
}

/* Starts a move to a bucket array twice the size; on out of memory the
 * table just stays as it is (chains grow longer). */
static void table_grow(struct turn_table *t)
{
	struct turn_alloc **nb;

	if (t->old != NULL || (nb = calloc(t->nbuckets * 2, sizeof(*nb))) == NULL)
		return;
	t->old = t->buckets;
	t->nold = t->nbuckets;
	t->moved = 0;
	t->buckets = nb;
	t->nbuckets *= 2;
}

struct turn_alloc *turn_table_add(struct turn_table *t, const struct stun_addr *client,
				  const struct stun_addr *server, uint8_t transport)
{
	struct turn_alloc *a = calloc(1, sizeof(*a)), **b;

	if (a == NULL)
		return NULL;
	/* Keep chains short (about one entry) as allocations pile up; the
	 * move finishes before the new array fills (nold / TURN_TABLE_MOVE
	 * adds at most, nold needed). */
	if (t->count >= t->nbuckets)
		table_grow(t);
	turn_table_step(t, TURN_TABLE_MOVE);
	a->username = no_user;
	a->client = *client;
	a->server = *server;
	a->transport = transport;
	a->hash = tuple_hash(client, server, transport);
	b = chain_of(t, a->hash);
	a->hnext = *b;
	*b = a;
	t->count++;
	return a;
}

void turn_table_remove(struct turn_table *t, struct turn_alloc *a)
{
	struct turn_alloc **pp = chain_of(t, a->hash);

	for (; *pp != NULL; pp = &(*pp)->hnext) {
		if (*pp == a) {
			*pp = a->hnext;
			t->count--;
			break;
		}
	}
	turn_alloc_free(a);
}

static void foreach_chain(struct turn_alloc *a, void (*fn)(struct turn_alloc *, void *), void *arg)
{
	struct turn_alloc *next;

	for (; a != NULL; a = next) {
		next = a->hnext;
		fn(a, arg);
	}
}

void turn_table_foreach(struct turn_table *t, void (*fn)(struct turn_alloc *, void *), void *arg)
{
	size_t i, nold = t->nold;
	struct turn_alloc **old = t->old;

	for (i = t->moved; old != NULL && i < nold; i++)
		foreach_chain(old[i], fn, arg);
	for (i = 0; i < t->nbuckets; i++)
		foreach_chain(t->buckets[i], fn, arg);
}
