/* turn_limit.c -- token bucket, per-source rate table and user-quota table
 * (the pure parts of the abuse limits, RFC 8656 §7.2). */
#include "turn/turn_limit.h"

#include <stdlib.h>
#include <string.h>

/* ---- token bucket ------------------------------------------------------ */

void turn_bucket_init(struct turn_bucket *b, uint64_t burst, uint64_t now_ms)
{
	b->tokens = (int64_t)(burst * 1000);
	b->last_ms = now_ms;
}

int turn_bucket_ok(struct turn_bucket *b, uint64_t rate, uint64_t burst, uint64_t now_ms)
{
	int64_t cap = (int64_t)(burst * 1000);

	if (now_ms > b->last_ms) {
		uint64_t dt = now_ms - b->last_ms;

		/* bytes/s * ms = milli-bytes; a long pause just fills up
		 * (and keeps the product from overflowing). */
		if (dt >= 100000 || b->tokens + (int64_t)(dt * rate) >= cap)
			b->tokens = cap;
		else
			b->tokens += (int64_t)(dt * rate);
		b->last_ms = now_ms;
	}
	return b->tokens >= 0;
}

void turn_bucket_take(struct turn_bucket *b, size_t len)
{
	b->tokens -= (int64_t)len * 1000;
}

/* ---- per-source-IP rate table ----------------------------------------- */

static size_t pow2(size_t n)
{
	size_t p = 1;

	while (p < n)
		p <<= 1;
	return p;
}

int turn_rate_init(struct turn_rate *t, size_t nslots, uint64_t seed)
{
	size_t n;

	t->nsets = pow2((nslots + TURN_RATE_WAYS - 1) / TURN_RATE_WAYS);
	t->seed = seed;
	n = t->nsets * TURN_RATE_WAYS;
	if ((t->slots = malloc(n * sizeof(*t->slots))) == NULL)
		return -1;
	/* memset, not calloc: touch every page now so that the table is
	 * resident from the start and a flood of sources cannot grow RSS. */
	memset(t->slots, 0, n * sizeof(*t->slots));
	return 0;
}

void turn_rate_free(struct turn_rate *t)
{
	free(t->slots);
	t->slots = NULL;
}

static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

/* The key of a source: its IPv4 address or IPv6 /64 prefix. */
static void rate_key(const struct stun_addr *a, uint64_t *key, uint8_t *fam)
{
	const uint8_t *p = a->ip;
	size_t i, n = 8;

	*fam = STUN_AF_IPV6;
	if (a->family == STUN_AF_IPV4 || memcmp(a->ip, v4mapped, sizeof(v4mapped)) == 0) {
		p = a->family == STUN_AF_IPV4 ? a->ip : a->ip + 12;
		n = 4;
		*fam = STUN_AF_IPV4;
	}
	*key = 0;
	for (i = 0; i < n; i++)
		*key = (*key << 8) | p[i];
}

/* A keyed 64-bit mix (splitmix64 finaliser over key ^ seed): spreads
 * sources over sets in a way an outsider cannot predict. */
static uint64_t rate_hash(const struct turn_rate *t, uint64_t key, uint8_t fam)
{
	uint64_t z = (key ^ t->seed) + 0x9e3779b97f4a7c15ull * (uint64_t)(fam + 1);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

size_t turn_rate_set_of(const struct turn_rate *t, const struct stun_addr *a)
{
	uint64_t key;
	uint8_t fam;

	rate_key(a, &key, &fam);
	return (size_t)rate_hash(t, key, fam) & (t->nsets - 1);
}

static unsigned slot_weight(const struct turn_rate_slot *s, uint32_t sec)
{
	unsigned w = 0;
	int k;

	if (s->fam == 0 || s->sec != sec)
		return 0;
	for (k = 0; k < TURN_RATE_NKIND; k++)
		if (s->n[k] > w)
			w = s->n[k];
	return w + 1; /* a live slot, even with no counts, beats a stale one */
}

int turn_rate_hit(struct turn_rate *t, const struct stun_addr *a, int kind, uint32_t sec, unsigned limit)
{
	struct turn_rate_slot *set, *s = NULL, *victim;
	uint64_t key;
	uint8_t fam;
	unsigned i, best = ~0u;

	if (limit == 0)
		return 1;
	rate_key(a, &key, &fam);
	set = &t->slots[(rate_hash(t, key, fam) & (t->nsets - 1)) * TURN_RATE_WAYS];
	victim = &set[0];
	for (i = 0; i < TURN_RATE_WAYS; i++) {
		unsigned wgt;

		if (set[i].fam == fam && set[i].key == key) {
			s = &set[i];
			break;
		}
		if ((wgt = slot_weight(&set[i], sec)) < best) {
			best = wgt;
			victim = &set[i];
		}
	}
	if (s == NULL) {
		s = victim;
		s->key = key;
		s->fam = fam;
		s->sec = sec;
		memset(s->n, 0, sizeof(s->n));
	} else if (s->sec != sec) {
		s->sec = sec;
		memset(s->n, 0, sizeof(s->n));
	}
	if (s->n[kind] >= limit)
		return 0;
	s->n[kind]++;
	return 1;
}

/* ---- allocations per username ------------------------------------------ */

struct userq_entry {
	struct userq_entry *next;
	unsigned count;
	size_t len;
	char name[];
};

struct turn_userq {
	size_t nbuckets;         /* power of two */
	struct userq_entry **buckets;
};

struct turn_userq *turn_userq_new(size_t nbuckets)
{
	struct turn_userq *q = calloc(1, sizeof(*q));

	if (q == NULL)
		return NULL;
	q->nbuckets = pow2(nbuckets < 1 ? 1 : nbuckets);
	if ((q->buckets = calloc(q->nbuckets, sizeof(*q->buckets))) == NULL) {
		free(q);
		return NULL;
	}
	return q;
}

void turn_userq_free(struct turn_userq *q)
{
	size_t i;

	if (q == NULL)
		return;
	for (i = 0; i < q->nbuckets; i++) {
		struct userq_entry *e = q->buckets[i], *next;

		for (; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(q->buckets);
	free(q);
}

/* FNV-1a: names come from authenticated requests only, so no seed. */
static struct userq_entry **userq_slot(const struct turn_userq *q, const char *name, size_t len)
{
	uint32_t h = 2166136261u;
	struct userq_entry **pp;
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ (uint8_t)name[i]) * 16777619u;
	for (pp = &q->buckets[h & (q->nbuckets - 1)]; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->len == len && memcmp((*pp)->name, name, len) == 0)
			break;
	return pp;
}

int turn_userq_acquire(struct turn_userq *q, const char *name, size_t len, unsigned limit)
{
	struct userq_entry **pp = userq_slot(q, name, len), *e = *pp;

	if (e != NULL) {
		if (limit != 0 && e->count >= limit)
			return -1;
		e->count++;
		return 0;
	}
	if ((e = malloc(sizeof(*e) + len)) == NULL)
		return -2;
	e->next = NULL;
	e->count = 1;
	e->len = len;
	memcpy(e->name, name, len);
	*pp = e;
	return 0;
}

void turn_userq_release(struct turn_userq *q, const char *name, size_t len)
{
	struct userq_entry **pp = userq_slot(q, name, len), *e = *pp;

	if (e == NULL)
		return;
	if (--e->count == 0) {
		*pp = e->next;
		free(e);
	}
}

unsigned turn_userq_count(const struct turn_userq *q, const char *name, size_t len)
{
	struct userq_entry *e = *userq_slot(q, name, len);

	return e != NULL ? e->count : 0;
}
