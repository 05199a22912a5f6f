/* limits.c -- allocation quotas, bandwidth caps and per-source-IP rates
 * (RFC 8656 §7.2; docs/limits.md). The arithmetic is in turn/turn_limit.c. */
#include "net/limits.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_rest.h"
#include "net/ebpf/ebpf.h"
#include "net/ebpf/relay_map.h"

int limits_init(struct server *srv, char *err, size_t errlen)
{
	const struct config *cfg = srv->cfg;
	struct limits *l;
	uint64_t seed = 0;
	int i;

	if ((l = calloc(1, sizeof(*l))) == NULL)
		goto oom;
	srv->limits = l;
	pthread_mutex_init(&l->quota_lock, NULL);
	for (i = 0; i < LIMITS_RATE_LOCKS; i++)
		pthread_mutex_init(&l->rate_lock[i], NULL);
	if (cfg->user_quota > 0 && (l->users = turn_userq_new(1024)) == NULL)
		goto oom;
	if (cfg->allocate_rate_per_ip > 0 || cfg->unauthorized_rate_per_ip > 0) {
		if (RAND_bytes((unsigned char *)&seed, sizeof(seed)) != 1) {
			snprintf(err, errlen, "no randomness for the per-IP rate table");
			return -1;
		}
		if (turn_rate_init(&l->rate, LIMITS_RATE_SLOTS, seed) < 0)
			goto oom;
		l->rate_on = 1;
	}
	return 0;
oom:
	snprintf(err, errlen, "out of memory for the limits tables");
	return -1;
}

void limits_free(struct server *srv)
{
	struct limits *l = srv->limits;
	int i;

	if (l == NULL)
		return;
	turn_userq_free(l->users);
	if (l->rate_on)
		turn_rate_free(&l->rate);
	pthread_mutex_destroy(&l->quota_lock);
	for (i = 0; i < LIMITS_RATE_LOCKS; i++)
		pthread_mutex_destroy(&l->rate_lock[i]);
	free(l);
	srv->limits = NULL;
}

/* The name user-quota counts: a REST API name "expiry:id" by its id, so
 * that fresh time-limited credentials of one user share one quota. */
static void quota_name(const struct config *cfg, const char *username, const char **name, size_t *len)
{
	uint64_t expiry;

	if (cfg->use_auth_secret && auth_rest_parse(username, cfg->rest_api_separator, &expiry, name, len) == 0)
		return;
	*name = username;
	*len = strlen(username);
}

int limits_alloc_acquire(struct worker *w, const char *username, int *held)
{
	const struct config *cfg = w->srv->cfg;
	struct limits *l = w->srv->limits;
	const char *name;
	size_t len;
	int code = 0;

	*held = 0;
	if (cfg->user_quota == 0 && cfg->total_quota == 0)
		return 0;
	quota_name(cfg, username, &name, &len);
	pthread_mutex_lock(&l->quota_lock);
	if (cfg->total_quota > 0 && l->total >= (uint64_t)cfg->total_quota) {
		STAT_INC(w->stats.refused[STATS_REFUSE_TOTAL_QUOTA]);
		code = 486;
	} else if (l->users != NULL) {
		switch (turn_userq_acquire(l->users, name, len, (unsigned)cfg->user_quota)) {
		case 0:
			break;
		case -1:
			STAT_INC(w->stats.refused[STATS_REFUSE_USER_QUOTA]);
			code = 486;
			break;
		default:
			code = 508; /* out of memory */
			break;
		}
	}
	if (code == 0) {
		l->total++;
		*held = 1;
	}
	pthread_mutex_unlock(&l->quota_lock);
	return code;
}

void limits_alloc_release(const struct server *srv, const char *username)
{
	struct limits *l = srv->limits;
	const char *name;
	size_t len;

	quota_name(srv->cfg, username, &name, &len);
	pthread_mutex_lock(&l->quota_lock);
	if (l->total > 0)
		l->total--;
	if (l->users != NULL)
		turn_userq_release(l->users, name, len);
	pthread_mutex_unlock(&l->quota_lock);
}

int limits_rate_ok(struct worker *w, const struct stun_addr *client, int kind)
{
	const struct config *cfg = w->srv->cfg;
	struct limits *l = w->srv->limits;
	unsigned limit = (unsigned)(kind == TURN_RATE_ALLOC ? cfg->allocate_rate_per_ip : cfg->unauthorized_rate_per_ip);
	pthread_mutex_t *lock;
	int ok;

	if (limit == 0)
		return 1;
	lock = &l->rate_lock[turn_rate_set_of(&l->rate, client) % LIMITS_RATE_LOCKS];
	pthread_mutex_lock(lock);
	ok = turn_rate_hit(&l->rate, client, kind, (uint32_t)worker_now(), limit);
	pthread_mutex_unlock(lock);
	if (!ok)
		STAT_INC(w->stats.refused[kind == TURN_RATE_ALLOC ? STATS_REFUSE_ALLOC_RATE : STATS_REFUSE_UNAUTH_RATE]);
	return ok;
}

void limits_worker_init(struct worker *w)
{
	const struct config *cfg = w->srv->cfg;
	int d;

	w->bps_on = cfg->max_bps > 0 || cfg->bps_capacity > 0;
	w->now_ms = worker_now_ms();
	/* Each worker gets an equal share and its own buckets: no shared
	 * write on the relay path. A worker with few allocations cannot lend
	 * its share to a busy one. */
	w->cap_rate = cfg->bps_capacity > 0 ? (uint64_t)cfg->bps_capacity / (uint64_t)w->srv->nworkers : 0;
	if (cfg->bps_capacity > 0 && w->cap_rate == 0)
		w->cap_rate = 1;
	for (d = 0; d < STATS_NDIR; d++)
		turn_bucket_init(&w->cap[d], w->cap_rate, w->now_ms);
}

void limits_relay_init(struct worker *w, struct relay *r)
{
	uint64_t rate = (uint64_t)w->srv->cfg->max_bps;
	int d;

	if (w->bps_on)
		w->now_ms = worker_now_ms();
	for (d = 0; d < STATS_NDIR; d++)
		turn_bucket_init(&r->bps[d], rate, w->now_ms);
	/* ebpf-offload: one bucket for the program and this path (docs/ebpf.md) */
	ebpf_relay_bucket_init(w, r);
}

/* A bucket in the kernel's array (ebpf-offload): same test and charge as
 * turn_bucket_ok/take, on the program's clock. */
static int kbucket_ok(const __u64 *tat, uint64_t now_ns)
{
	return ts_bucket_ok(__atomic_load_n(tat, __ATOMIC_RELAXED), now_ns);
}

int limits_bps_check(struct worker *w, struct relay *r, int dir, size_t len)
{
	uint64_t rate = (uint64_t)w->srv->cfg->max_bps;
	/* With ebpf-offload the buckets live in the kernel's array, shared
	 * with the program (NULL otherwise, or for a relay without a slot). */
	__u64 *kb = rate > 0 ? ebpf_bucket_tat(r->ebpf_bucket, dir) : NULL;
	__u64 *kc = w->cap_rate > 0 ? ebpf_bucket_tat(ebpf_cap_slot(w), dir) : NULL;
	uint64_t now_ns = kb != NULL || kc != NULL ? ebpf_now_ns() : 0;

	/* Burst: one second's worth. */
	if (rate > 0 && !(kb != NULL ? kbucket_ok(kb, now_ns) : turn_bucket_ok(&r->bps[dir], rate, rate, w->now_ms))) {
		STAT_INC(w->stats.refused[STATS_REFUSE_BPS]);
		return 0;
	}
	if (w->cap_rate > 0 &&
	    !(kc != NULL ? kbucket_ok(kc, now_ns) : turn_bucket_ok(&w->cap[dir], w->cap_rate, w->cap_rate, w->now_ms))) {
		STAT_INC(w->stats.refused[STATS_REFUSE_BPS_CAPACITY]);
		return 0;
	}
	if (kb != NULL)
		ts_bucket_take(kb, now_ns, len, rate);
	else if (rate > 0)
		turn_bucket_take(&r->bps[dir], len);
	if (kc != NULL)
		ts_bucket_take(kc, now_ns, len, w->cap_rate);
	else if (w->cap_rate > 0)
		turn_bucket_take(&w->cap[dir], len);
	return 1;
}
