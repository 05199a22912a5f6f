/* signal_iplimit.c -- connections per IPv4 address / IPv6 /64 (see
 * signal_iplimit.h). */
#include "signal/signal_iplimit.h"

#include <netinet/in.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define IPLIMIT_BUCKETS 4096

struct ip_entry {
	uint8_t key[SIGNAL_IPLIMIT_KEY_LEN];
	unsigned n;
	struct ip_entry *next;
};

struct signal_iplimit {
	struct ip_entry *bucket[IPLIMIT_BUCKETS];
	uint32_t seed;
};

struct signal_iplimit *signal_iplimit_new(void)
{
	struct signal_iplimit *t = calloc(1, sizeof(*t));

	if (t != NULL && RAND_bytes((unsigned char *)&t->seed, sizeof(t->seed)) != 1)
		t->seed = 0x9e3779b9u; /* still correct, only predictable */
	return t;
}

void signal_iplimit_free(struct signal_iplimit *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < IPLIMIT_BUCKETS; i++) {
		struct ip_entry *e, *next;

		for (e = t->bucket[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(t);
}

int signal_iplimit_key(const struct sockaddr *sa, uint8_t key[SIGNAL_IPLIMIT_KEY_LEN])
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	memset(key, 0, SIGNAL_IPLIMIT_KEY_LEN);
	if (sa->sa_family == AF_INET) {
		key[0] = 4;
		memcpy(key + 1, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const uint8_t *a = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;

		if (memcmp(a, mapped, sizeof(mapped)) == 0) {
			key[0] = 4;
			memcpy(key + 1, a + 12, 4);
		} else {
			key[0] = 6;
			memcpy(key + 1, a, 8); /* the /64 */
		}
		return 0;
	}
	return -1;
}

static size_t bucket_of(const struct signal_iplimit *t, const uint8_t *key)
{
	uint32_t h = 2166136261u ^ t->seed; /* FNV-1a, seeded */
	size_t i;

	for (i = 0; i < SIGNAL_IPLIMIT_KEY_LEN; i++)
		h = (h ^ key[i]) * 16777619u;
	h ^= h >> 15;
	return h % IPLIMIT_BUCKETS;
}

static struct ip_entry **find(struct signal_iplimit *t, const uint8_t *key)
{
	struct ip_entry **pp;

	for (pp = &t->bucket[bucket_of(t, key)]; *pp != NULL; pp = &(*pp)->next)
		if (memcmp((*pp)->key, key, SIGNAL_IPLIMIT_KEY_LEN) == 0)
			break;
	return pp;
}

int signal_iplimit_take(struct signal_iplimit *t, const uint8_t key[SIGNAL_IPLIMIT_KEY_LEN], unsigned max)
{
	struct ip_entry **pp = find(t, key);

	if (*pp == NULL) {
		if (max == 0)
			return -1;
		if ((*pp = calloc(1, sizeof(**pp))) == NULL)
			return -2;
		memcpy((*pp)->key, key, SIGNAL_IPLIMIT_KEY_LEN);
	}
	if ((*pp)->n >= max)
		return -1;
	(*pp)->n++;
	return 0;
}

void signal_iplimit_put(struct signal_iplimit *t, const uint8_t key[SIGNAL_IPLIMIT_KEY_LEN])
{
	struct ip_entry **pp = find(t, key), *e = *pp;

	if (e == NULL)
		return;
	if (--e->n == 0) {
		*pp = e->next;
		free(e);
	}
}

unsigned signal_iplimit_count(const struct signal_iplimit *t, const uint8_t key[SIGNAL_IPLIMIT_KEY_LEN])
{
	struct ip_entry **pp = find((struct signal_iplimit *)t, key);

	return *pp != NULL ? (*pp)->n : 0;
}
