/* turn_auth.c -- long-term credentials for TURN requests (RFC 8489 §9.2.4):
 * nonce and realm checks, keys from the configured users, the TURN REST API
 * (static and Redis secrets) and the Redis user database. A request whose key
 * must come from Redis is parked (copied) until the lookup answers. */
#include "net/turn_auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_redis.h"
#include "auth/auth_rest.h"
#include "log.h"
#include "stun/stun_prep.h"

#define TURN_MAX_PENDING 4096 /* requests a worker keeps waiting for Redis */

/* A request parked while its key or secrets are looked up in Redis. The
 * datagram buffer is reused at once, so the request bytes are copied. */
struct pending {
	struct worker *w;
	struct origin o;
	size_t len;
	struct pending *prev, *next;
	uint8_t buf[];
};

/* Rebuilds a req from a parked request. Returns 0, or -1 if it no longer
 * parses or it has been answered meanwhile (a retransmission of it was, from
 * the allocation's response cache). */
static int pending_req(struct pending *p, struct req *r)
{
	memset(r, 0, sizeof(*r));
	r->w = p->w;
	r->o = &p->o;
	r->client = &p->o.client;
	r->local = &p->o.local;
	if (stun_msg_parse(&r->m, p->buf, p->len, NULL) != STUN_PARSE_OK)
		return -1;
	r->alloc = turn_table_find(&p->w->allocs, r->client, r->local, transport_of(r->o));
	{
		const struct stun_attr *u = stun_msg_find(&r->m, STUN_ATTR_USERNAME);

		if (u == NULL || u->len > TURN_USERNAME_MAX)
			return -1;
		memcpy(r->username, u->val, u->len);
		r->username[u->len] = '\0';
	}
	if (r->alloc != NULL && r->alloc->last_resp != NULL &&
	    memcmp(r->alloc->last_tid, r->m.tid, STUN_TID_LEN) == 0) {
		worker_send_client(r->o, r->alloc->last_resp, r->alloc->last_resp_len, 0);
		return -1;
	}
	return 0;
}

static void pending_unlink(struct pending *p)
{
	p->w->npending--;
	if (p->prev != NULL)
		p->prev->next = p->next;
	else
		p->w->pending = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
}

/* 1 when the same request (5-tuple and transaction ID) is already parked:
 * a retransmission, which the parked copy's answer will serve. */
static int parked_already(const struct req *r)
{
	const struct pending *p;

	for (p = r->w->pending; p != NULL; p = p->next)
		if (p->o.conn == r->o->conn && turn_addr_equal(&p->o.client, r->client) &&
		    turn_addr_equal(&p->o.local, r->local) &&
		    memcmp(p->buf + 8, r->m.tid, STUN_TID_LEN) == 0)
			return 1;
	return 0;
}

static struct pending *park(struct req *r)
{
	struct pending *p;

	/* Bounded: a flood of requests for unknown users while Redis is slow
	 * must not grow the worker without limit; those get 500 at once. */
	if (r->w->npending >= TURN_MAX_PENDING || (p = malloc(sizeof(*p) + r->m.len)) == NULL)
		return NULL;
	r->w->npending++;
	p->w = r->w;
	p->o = *r->o;
	p->len = r->m.len;
	memcpy(p->buf, r->m.buf, r->m.len);
	p->prev = NULL;
	p->next = r->w->pending;
	if (p->next != NULL)
		p->next->prev = p;
	r->w->pending = p;
	return p;
}

void turn_cancel_pending(struct worker *w, const struct stream_conn *conn)
{
	struct pending *p = w->pending, *next;

	for (; p != NULL; p = next) {
		next = p->next;
		if (conn != NULL && p->o.conn != conn)
			continue;
		if (w->redis != NULL)
			auth_redis_cancel(w->redis, p);
		pending_unlink(p);
		free(p);
	}
}

size_t turn_auth_algorithms(const struct config *cfg, uint8_t out[8])
{
	int first = cfg->redis_userdb != NULL ? STUN_PW_ALG_MD5 : STUN_PW_ALG_SHA256;
	int second = first == STUN_PW_ALG_MD5 ? STUN_PW_ALG_SHA256 : STUN_PW_ALG_MD5;

	/* Each entry: algorithm (16 bits), parameters length (16 bits, 0). */
	memset(out, 0, 8);
	out[1] = (uint8_t)first;
	out[5] = (uint8_t)second;
	return 8;
}

/* The password algorithm of a request under the nonce cookie (RFC 8489
 * §9.2.4): MD5 with neither PASSWORD-ALGORITHM nor PASSWORD-ALGORITHMS;
 * otherwise both must be present, PASSWORD-ALGORITHMS must be the list the
 * server sent and PASSWORD-ALGORITHM one of its entries. Returns the
 * algorithm, or -1 (400: a bid-down attempt or a broken client). */
static int request_pw_alg(const struct req *r)
{
	const struct stun_attr *alg = stun_msg_find(&r->m, STUN_ATTR_PASSWORD_ALGORITHM);
	const struct stun_attr *algs = stun_msg_find(&r->m, STUN_ATTR_PASSWORD_ALGORITHMS);
	uint8_t ours[8];
	size_t n = turn_auth_algorithms(r->w->srv->cfg, ours), i;

	if (alg == NULL && algs == NULL)
		return STUN_PW_ALG_MD5;
	if (alg == NULL || algs == NULL || alg->len != 4 || algs->len != n || memcmp(algs->val, ours, n) != 0)
		return -1;
	for (i = 0; i < n; i += 4)
		if (memcmp(alg->val, ours + i, 4) == 0)
			return (alg->val[0] << 8) | alg->val[1];
	return -1;
}

/* Counts an authentication failure of kind why (STATS_AUTH_*). */
static void auth_fail(struct req *r, int why)
{
	STAT_INC(r->w->stats.auth_fail[why]);
}

/* A credential that no longer exists (deleted user, expired REST name)
 * also ends the allocation it was used for, so that it cannot outlive
 * its credential by refreshing (coturn lets it). why: STATS_AUTH_*. */
static void credential_gone(struct req *r, int why)
{
	auth_fail(r, why);
	if (r->alloc != NULL && strcmp(r->alloc->username, r->username) == 0) {
		log_info("user '%s': credential gone, allocation ended", LOG_ESC(r->username));
		worker_alloc_free(r->w, r->alloc);
		r->alloc = NULL;
	}
	turn_req_challenge(r, 401);
}

/* Checks MESSAGE-INTEGRITY with key; on success finishes the request. */
static void auth_with_key(struct req *r, const uint8_t *key, size_t keylen)
{
	if (stun_msg_check_integrity(&r->m, key, keylen) != 1) {
		auth_fail(r, STATS_AUTH_BAD_INTEGRITY);
		if (worker_log_ok(r->w))
			log_info("authentication failed for user '%s'", LOG_ESC(r->username));
		turn_req_challenge(r, 401);
		return;
	}
	memcpy(r->key, key, keylen);
	r->keylen = keylen;
	r->sha256 = r->m.mi256_off != 0;
	turn_req_authenticated(r);
}

/* The key of a REST API name under secret for the request's password
 * algorithm (MD5 or SHA-256 of "username:realm:password", RFC 8489 §9.2.2).
 * Returns its length, or -1. */
static int rest_key(const struct req *r, const char *secret, uint8_t key[32])
{
	char pw[AUTH_REST_PASSWORD_LEN + 1];

	if (request_pw_alg(r) != STUN_PW_ALG_SHA256)
		return auth_rest_key(secret, r->username, r->w->srv->cfg->realm, key) == 0 ? AUTH_REST_KEY_LEN : -1;
	if (auth_rest_password(secret, r->username, pw) < 0)
		return -1;
	return stun_long_term_key(STUN_PW_ALG_SHA256, r->username, r->w->srv->cfg->realm, pw, key);
}

/* Tries each REST API secret; 1 when one matched (request finished). */
static int rest_try(struct req *r, const char *const *secrets, size_t n)
{
	uint8_t key[32];
	size_t i;
	int len;

	for (i = 0; i < n; i++) {
		if ((len = rest_key(r, secrets[i], key)) > 0 &&
		    stun_msg_check_integrity(&r->m, key, (size_t)len) == 1) {
			auth_with_key(r, key, (size_t)len);
			return 1;
		}
	}
	return 0;
}

static void redis_unavailable(struct req *r)
{
	log_debug("user '%s': credential store unavailable, answering 500", LOG_ESC(r->username));
	turn_req_error(r, 500);
}

static void on_redis_secrets(void *arg, int status, const char *const *secrets, size_t n)
{
	struct pending *p = arg;
	struct req r;

	pending_unlink(p);
	if (pending_req(p, &r) == 0) {
		if (status < 0)
			redis_unavailable(&r);
		else if (!rest_try(&r, secrets, n)) {
			auth_fail(&r, STATS_AUTH_BAD_INTEGRITY);
			turn_req_challenge(&r, 401);
		}
	}
	free(p);
}

static void on_redis_key(void *arg, int status, const uint8_t *key)
{
	struct pending *p = arg;
	struct req r;

	pending_unlink(p);
	if (pending_req(p, &r) == 0) {
		int sha256 = request_pw_alg(&r) == STUN_PW_ALG_SHA256;

		if (status < 0) {
			redis_unavailable(&r);
		} else if (status > 0 && sha256) {
			/* Maybe a user with an MD5 key only: not a deleted one. */
			auth_fail(&r, STATS_AUTH_UNKNOWN_USER);
			turn_req_challenge(&r, 401);
		} else if (status > 0) {
			credential_gone(&r, STATS_AUTH_UNKNOWN_USER);
		} else {
			auth_with_key(&r, key, sha256 ? 32 : 16);
		}
	}
	free(p);
}

/* Parks r and asks Redis for its REST API secrets (secrets = 1) or its
 * user's key; the callback finishes r. A retransmission of a request that
 * is already parked is dropped: the parked copy's answer serves it. */
static void park_and_ask(struct req *r, int secrets)
{
	const char *realm = r->w->srv->cfg->realm;
	struct pending *p;
	int rc;

	if (parked_already(r))
		return;
	if ((p = park(r)) == NULL) {
		turn_req_error(r, 500);
		return;
	}
	if (secrets)
		rc = auth_redis_get_secrets(r->w->redis, realm, on_redis_secrets, p);
	else if (request_pw_alg(r) == STUN_PW_ALG_SHA256)
		rc = auth_redis_get_key_sha256(r->w->redis, realm, r->username, on_redis_key, p);
	else
		rc = auth_redis_get_key(r->w->redis, realm, r->username, on_redis_key, p);
	if (rc < 0) {
		pending_unlink(p);
		free(p);
		turn_req_error(r, 500);
	}
}

/* TURN REST API username (use-auth-secret): static secrets first, then
 * the secrets in Redis. */
static void auth_rest(struct req *r)
{
	const struct config *cfg = r->w->srv->cfg;

	if (auth_rest_expired(r->username, cfg->rest_api_separator, worker_wallclock())) {
		credential_gone(r, STATS_AUTH_EXPIRED_REST);
		return;
	}
	if (rest_try(r, (const char *const *)cfg->static_auth_secret, cfg->n_static_auth_secret))
		return;
	if (r->w->redis == NULL) {
		auth_fail(r, STATS_AUTH_BAD_INTEGRITY);
		turn_req_challenge(r, 401);
		return;
	}
	park_and_ask(r, 1);
}

/* The checks that need no key (RFC 8489 §9.2.4). Returns 0 and fills
 * r->username, or -1 after answering. *pw_alg gets PASSWORD-ALGORITHM. */
static int auth_precheck(struct req *r, int *pw_alg)
{
	const struct server *srv = r->w->srv;
	const struct stun_attr *user, *uhash, *realm, *nonce;
	const char *name;

	if (r->m.mi_off == 0 && r->m.mi256_off == 0) {
		auth_fail(r, STATS_AUTH_MISSING);
		turn_req_challenge(r, 401);
		return -1;
	}
	user = stun_msg_find(&r->m, STUN_ATTR_USERNAME);
	uhash = stun_msg_find(&r->m, STUN_ATTR_USERHASH);
	realm = stun_msg_find(&r->m, STUN_ATTR_REALM);
	nonce = stun_msg_find(&r->m, STUN_ATTR_NONCE);
	if ((user == NULL && uhash == NULL) || realm == NULL || nonce == NULL) {
		turn_req_error(r, 400);
		return -1;
	}
	if (nonce->len <= TURN_NONCE_COOKIE_LEN || memcmp(nonce->val, TURN_NONCE_COOKIE, TURN_NONCE_COOKIE_LEN) != 0 ||
	    auth_nonce_check(&srv->nonce, worker_wallclock(), r->client, nonce->val + TURN_NONCE_COOKIE_LEN,
			     nonce->len - TURN_NONCE_COOKIE_LEN) < 0) {
		auth_fail(r, STATS_AUTH_STALE_NONCE);
		turn_req_challenge(r, 438);
		return -1;
	}
	if (realm->len != strlen(srv->cfg->realm) || memcmp(realm->val, srv->cfg->realm, realm->len) != 0) {
		turn_req_challenge(r, 401);
		return -1;
	}
	if ((*pw_alg = request_pw_alg(r)) < 0) {
		log_debug("PASSWORD-ALGORITHM(S) missing or not as offered");
		turn_req_error(r, 400);
		return -1;
	}
	if (user != NULL) {
		if (user->len > TURN_USERNAME_MAX || memchr(user->val, '\0', user->len) != NULL) {
			auth_fail(r, STATS_AUTH_UNKNOWN_USER);
			turn_req_challenge(r, 401);
			return -1;
		}
		memcpy(r->username, user->val, user->len);
		r->username[user->len] = '\0';
		/* The client prepared USERNAME (OpaqueString, RFC 8489 §14.3): bad
		 * UTF-8 or control characters name no user. */
		if (!stun_opaque_ok(user->val, user->len)) {
			auth_fail(r, STATS_AUTH_UNKNOWN_USER);
			if (worker_log_ok(r->w))
				log_info("authentication failed: unknown user '%s' (not an OpaqueString)",
					 LOG_ESC(r->username));
			turn_req_challenge(r, 401);
			return -1;
		}
		return 0;
	}
	if (uhash->len != 32 || (name = auth_users_by_userhash(srv->users, uhash->val)) == NULL) {
		auth_fail(r, STATS_AUTH_UNKNOWN_USER);
		turn_req_challenge(r, 401);
		return -1;
	}
	snprintf(r->username, sizeof(r->username), "%s", name);
	return 0;
}

/* Authenticates r and, once the key is known (now, or when Redis answers),
 * carries on with turn_req_authenticated. Sources, in order: REST API names when
 * use-auth-secret is on, the configured users, then the Redis user database. */
void turn_auth_request(struct req *r)
{
	const struct server *srv = r->w->srv;
	const struct config *cfg = srv->cfg;
	uint8_t key[32];
	int pw_alg, keylen;

	if (auth_precheck(r, &pw_alg) < 0)
		return;
	if (cfg->use_auth_secret && auth_rest_parse(r->username, cfg->rest_api_separator, &(uint64_t){ 0 }, NULL,
						    NULL) == 0) {
		auth_rest(r);
		return;
	}
	keylen = auth_users_key(srv->users, (const uint8_t *)r->username, strlen(r->username), pw_alg, key);
	if (keylen > 0) {
		auth_with_key(r, key, (size_t)keylen);
		return;
	}
	if (r->w->redis == NULL) {
		auth_fail(r, STATS_AUTH_UNKNOWN_USER);
		if (worker_log_ok(r->w))
			log_info("authentication failed: unknown user '%s'", LOG_ESC(r->username));
		turn_req_challenge(r, 401);
		return;
	}
	if (pw_alg == STUN_PW_ALG_MD5 && auth_redis_cached_key(r->w->redis, cfg->realm, r->username, key) == 0) {
		auth_with_key(r, key, 16);
		return;
	}
	park_and_ask(r, 0);
}
