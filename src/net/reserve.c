/* reserve.c -- the shared table of reserved relay ports (RFC 8656 §7.2). */
#include "net/reserve.h"

#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct reservation {
	uint8_t token[RESERVE_TOKEN_LEN];
	int fd;
	struct stun_addr addr;
	uint64_t expires;
	struct reservation *next;
};

static pthread_mutex_t reserve_lock = PTHREAD_MUTEX_INITIALIZER;
static struct reservation *reserve_head;
static _Atomic int reserve_count;   /* entries in the table, read without the lock */

/* Drops expired reservations; called with the lock held. */
static void reserve_expire(uint64_t now)
{
	struct reservation **pp = &reserve_head, *r;

	while ((r = *pp) != NULL) {
		if (now >= r->expires) {
			*pp = r->next;
			close(r->fd);
			free(r);
			reserve_count--;
		} else {
			pp = &r->next;
		}
	}
}

int reserve_put(int fd, const struct stun_addr *addr, uint64_t now, uint32_t lifetime,
		uint8_t token[RESERVE_TOKEN_LEN])
{
	struct reservation *r = calloc(1, sizeof(*r));

	if (r == NULL || RAND_bytes(r->token, RESERVE_TOKEN_LEN) != 1) {
		free(r);
		close(fd);
		return -1;
	}
	r->fd = fd;
	r->addr = *addr;
	r->expires = now + lifetime;
	memcpy(token, r->token, RESERVE_TOKEN_LEN);
	pthread_mutex_lock(&reserve_lock);
	reserve_expire(now);
	r->next = reserve_head;
	reserve_head = r;
	reserve_count++;
	pthread_mutex_unlock(&reserve_lock);
	return 0;
}

void reserve_tick(uint64_t now)
{
	if (reserve_count == 0)
		return;
	pthread_mutex_lock(&reserve_lock);
	reserve_expire(now);
	pthread_mutex_unlock(&reserve_lock);
}

int reserve_take(const uint8_t token[RESERVE_TOKEN_LEN], uint64_t now, struct stun_addr *addr)
{
	struct reservation **pp, *r;
	int fd = -1;

	pthread_mutex_lock(&reserve_lock);
	reserve_expire(now);
	for (pp = &reserve_head; (r = *pp) != NULL; pp = &r->next) {
		if (memcmp(r->token, token, RESERVE_TOKEN_LEN) == 0) {
			*pp = r->next;
			fd = r->fd;
			*addr = r->addr;
			free(r);
			reserve_count--;
			break;
		}
	}
	pthread_mutex_unlock(&reserve_lock);
	return fd;
}

void reserve_clear(void)
{
	pthread_mutex_lock(&reserve_lock);
	reserve_expire(UINT64_MAX);
	pthread_mutex_unlock(&reserve_lock);
}
