/* auth_redis.c -- asynchronous Redis lookups of long-term keys and REST API
 * secrets (coturn's schema), a kill-channel subscriber, and a small per-worker
 * key cache. hiredis async API on the worker's libevent event_base. */
#include "auth/auth_redis.h"

#include <ctype.h>
#include <errno.h>
#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "net/stats.h"
#include "stun/stun_msg.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define CACHE_WAYS 4
#define CACHE_ID_MAX 160 /* bytes of "realm\0user"; longer names are not cached */

/* ---- conninfo ----------------------------------------------------------- */

static int set_err(char *err, size_t errlen, const char *fmt, const char *arg)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, fmt, arg);
	return -1;
}

/* Copies src[0..len) into dst[0..cap) decoding %XX when pct. Returns 0 or -1. */
static int copy_field(char *dst, size_t cap, const char *src, size_t len, int pct)
{
	size_t i, o = 0;

	for (i = 0; i < len; i++) {
		char c = src[i];

		if (pct && c == '%' && i + 2 < len && isxdigit((unsigned char)src[i + 1]) &&
		    isxdigit((unsigned char)src[i + 2])) {
			char hex[3] = { src[i + 1], src[i + 2], 0 };

			c = (char)strtol(hex, NULL, 16);
			i += 2;
		}
		if (o + 1 >= cap)
			return -1;
		dst[o++] = c;
	}
	dst[o] = '\0';
	return 0;
}

/* Parses a decimal int in [lo, hi] from s[0..len). Returns 0 or -1. */
static int parse_int(const char *s, size_t len, int lo, int hi, int *out)
{
	long v = 0;
	size_t i;

	if (len == 0 || len > 9)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v < lo || v > hi)
		return -1;
	*out = (int)v;
	return 0;
}

/* redis://[[user]:password@]host[:port][/db] */
static int parse_url(const char *s, struct auth_redis_conninfo *ci, char *err, size_t errlen)
{
	const char *p = s + strlen("redis://"), *end = p + strlen(p), *at, *hostend, *slash, *colon;

	slash = memchr(p, '/', (size_t)(end - p));
	if (slash == NULL)
		slash = end;
	at = NULL;
	for (const char *q = p; q < slash; q++)
		if (*q == '@')
			at = q; /* the last '@': a password may contain one %-encoded or not */
	if (at != NULL) {
		colon = memchr(p, ':', (size_t)(at - p));
		if (colon == NULL)
			return set_err(err, errlen, "redis URL '%s': userinfo must be [user]:password", s);
		if (copy_field(ci->user, sizeof(ci->user), p, (size_t)(colon - p), 1) < 0 ||
		    copy_field(ci->password, sizeof(ci->password), colon + 1, (size_t)(at - colon - 1), 1) < 0)
			return set_err(err, errlen, "redis URL '%s': user or password too long", s);
		p = at + 1;
	}
	if (*p == '[') {
		hostend = memchr(p, ']', (size_t)(slash - p));
		if (hostend == NULL)
			return set_err(err, errlen, "redis URL '%s': unterminated [IPv6] host", s);
		if (copy_field(ci->host, sizeof(ci->host), p + 1, (size_t)(hostend - p - 1), 0) < 0)
			return set_err(err, errlen, "redis URL '%s': host too long", s);
		colon = hostend + 1 < slash && hostend[1] == ':' ? hostend + 1 : NULL;
		if (colon == NULL && hostend + 1 != slash)
			return set_err(err, errlen, "redis URL '%s': junk after ]", s);
	} else {
		colon = memchr(p, ':', (size_t)(slash - p));
		hostend = colon != NULL ? colon : slash;
		if (hostend > p && copy_field(ci->host, sizeof(ci->host), p, (size_t)(hostend - p), 0) < 0)
			return set_err(err, errlen, "redis URL '%s': host too long", s);
	}
	if (ci->host[0] == '\0')
		return set_err(err, errlen, "redis URL '%s': no host", s);
	if (colon != NULL && parse_int(colon + 1, (size_t)(slash - colon - 1), 1, 65535, &ci->port) < 0)
		return set_err(err, errlen, "redis URL '%s': bad port", s);
	if (slash < end && slash + 1 < end && parse_int(slash + 1, (size_t)(end - slash - 1), 0, 1000000, &ci->db) < 0)
		return set_err(err, errlen, "redis URL '%s': bad database number", s);
	return 0;
}

/* One "key=value" of coturn's format. */
static int parse_kv(const char *k, size_t klen, const char *v, size_t vlen, struct auth_redis_conninfo *ci)
{
#define KEY_IS(name) (klen == strlen(name) && strncmp(k, name, klen) == 0)
	if (KEY_IS("ip") || KEY_IS("host"))
		return copy_field(ci->host, sizeof(ci->host), v, vlen, 0);
	if (KEY_IS("port"))
		return parse_int(v, vlen, 1, 65535, &ci->port);
	if (KEY_IS("dbname") || KEY_IS("db") || KEY_IS("database"))
		return parse_int(v, vlen, 0, 1000000, &ci->db);
	if (KEY_IS("password") || KEY_IS("pwd") || KEY_IS("passwd") || KEY_IS("secret"))
		return copy_field(ci->password, sizeof(ci->password), v, vlen, 0);
	if (KEY_IS("user") || KEY_IS("uname") || KEY_IS("name"))
		return copy_field(ci->user, sizeof(ci->user), v, vlen, 0);
	if (KEY_IS("connect_timeout") || KEY_IS("timeout"))
		return parse_int(v, vlen, 1, 3600, &ci->connect_timeout);
	return -2;
#undef KEY_IS
}

int auth_redis_parse_conninfo(const char *s, struct auth_redis_conninfo *ci, char *err, size_t errlen)
{
	const char *p;

	memset(ci, 0, sizeof(*ci));
	strcpy(ci->host, "127.0.0.1");
	ci->port = 6379;
	ci->connect_timeout = 5;
	if (s == NULL)
		return set_err(err, errlen, "%s", "no redis connection string");
	if (strncmp(s, "redis://", 8) == 0)
		return parse_url(s, ci, err, errlen);
	if (strstr(s, "://") != NULL)
		return set_err(err, errlen, "'%s': only redis:// URLs are supported (no TLS)", s);
	for (p = s;;) {
		const char *k, *eq, *v;
		int rc;

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		k = p;
		while (*p != '\0' && *p != ' ' && *p != '\t')
			p++;
		eq = memchr(k, '=', (size_t)(p - k));
		if (eq == NULL || eq == k) {
			char word[64];

			snprintf(word, sizeof(word), "%.*s", (int)(p - k), k);
			return set_err(err, errlen, "redis connection string: '%s' is not key=value", word);
		}
		v = eq + 1;
		rc = parse_kv(k, (size_t)(eq - k), v, (size_t)(p - v), ci);
		if (rc < 0) {
			char word[64];

			snprintf(word, sizeof(word), "%.*s", (int)(eq - k), k);
			return set_err(err, errlen,
				       rc == -2 ? "redis connection string: unknown key '%s'"
						: "redis connection string: bad value for '%s'",
				       word);
		}
	}
	return 0;
}

/* ---- state -------------------------------------------------------------- */

enum conn_state { CONN_DOWN, CONN_CONNECTING, CONN_UP };
enum req_kind { REQ_KEY, REQ_SECRETS };

/* One of the two connections (lookups, subscriber). */
struct rconn {
	struct auth_redis *r;
	const char *role;          /* for log lines */
	int subscriber;
	redisAsyncContext *ac;     /* NULL while down */
	int state;
	int backoff_ms;
	int in_outage;             /* a loss was logged: log the recovery too */
	struct event *retry;       /* reconnect after backoff_ms */
	struct event *ctimer;      /* connect timeout */
};

/* A pending request. It lives until its callback has been delivered (or it
 * was cancelled) AND hiredis has answered every command sent for it, since
 * hiredis keeps the pointer as privdata. */
struct req {
	struct req *prev, *next;
	struct auth_redis *r;
	int kind;
	int inflight;              /* commands hiredis has not answered yet */
	int done;                  /* callback delivered or cancelled */
	int status;                /* for an answer known before any command */
	int stage;                 /* REQ_KEY: 0 GET .../key, 1 GET .../password */
	int sha256;                /* REQ_KEY: a SHA-256 key (32 bytes): from .../password only */
	uint64_t sent_us;          /* monotonic time the last command was sent (latency metric) */
	uint8_t key[32];           /* 16 bytes used for MD5 */
	char *realm, *user;
	char **secrets;
	size_t nsecrets;
	auth_redis_key_cb *kcb;
	auth_redis_secrets_cb *scb;
	void *arg;
	struct event *timer;       /* timeout, or 0 s for a known answer */
};

struct cache_ent {
	uint64_t expires;          /* monotonic ms; 0: empty */
	uint32_t hash;
	uint16_t idlen;
	uint8_t key[16];
	char id[CACHE_ID_MAX];     /* realm '\0' user */
};

struct auth_redis {
	struct event_base *base;
	struct auth_redis_conninfo ci;
	char *realm;
	char *kill_channel;
	int cache_ttl_ms;
	int timeout_ms;
	auth_redis_kill_cb *on_kill;
	void *kill_arg;
	struct rconn lookup, sub;
	struct req *reqs;          /* pending requests, doubly linked */
	struct cache_ent *cache;   /* nsets * CACHE_WAYS entries, NULL when disabled */
	size_t nsets;
	/* secrets of one realm, cached like keys */
	char *sec_realm;
	char **sec;
	size_t nsec;
	uint64_t sec_expires;
	struct auth_redis_stats stats; /* written by this worker only */
};

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* A command of q goes out now. */
static void stat_sent(struct req *q)
{
	STAT_INC(q->r->stats.requests);
	q->sent_us = now_us();
}

/* A command of q was answered: its latency goes into the histogram. */
static void stat_answered(struct req *q)
{
	static const uint64_t bounds[] = AUTH_REDIS_LATENCY_BOUNDS_US;
	uint64_t dt = now_us() - q->sent_us;
	int i;

	for (i = 0; i < AUTH_REDIS_NBOUNDS && dt > bounds[i]; i++)
		;
	STAT_INC(q->r->stats.latency_hist[i]);
	STAT_ADD(q->r->stats.latency_usec_sum, dt);
}

const struct auth_redis_stats *auth_redis_stats(const struct auth_redis *r)
{
	return &r->stats;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct timeval ms_tv(int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	return tv;
}

/* ---- cache -------------------------------------------------------------- */

static int cache_id(const char *realm, const char *user, char id[CACHE_ID_MAX], uint32_t *hash)
{
	size_t rl = strlen(realm), ul = strlen(user), i;
	uint32_t h = 2166136261u; /* FNV-1a */

	if (rl + 1 + ul > CACHE_ID_MAX)
		return -1;
	memcpy(id, realm, rl + 1);
	memcpy(id + rl + 1, user, ul);
	for (i = 0; i < rl + 1 + ul; i++)
		h = (h ^ (uint8_t)id[i]) * 16777619u;
	*hash = h;
	return (int)(rl + 1 + ul);
}

static struct cache_ent *cache_lookup(struct auth_redis *r, const char *realm, const char *user, int *idlen,
				      char id[CACHE_ID_MAX], uint32_t *hash)
{
	struct cache_ent *set;
	int i;

	if (r->cache == NULL || (*idlen = cache_id(realm, user, id, hash)) < 0)
		return NULL;
	set = &r->cache[(*hash % r->nsets) * CACHE_WAYS];
	for (i = 0; i < CACHE_WAYS; i++)
		if (set[i].expires != 0 && set[i].hash == *hash && set[i].idlen == *idlen &&
		    memcmp(set[i].id, id, (size_t)*idlen) == 0)
			return &set[i];
	return NULL;
}

int auth_redis_cached_key(struct auth_redis *r, const char *realm, const char *user, uint8_t key[16])
{
	char id[CACHE_ID_MAX];
	uint32_t hash;
	int idlen;
	struct cache_ent *e;

	if (r == NULL || realm == NULL || user == NULL)
		return -1;
	e = cache_lookup(r, realm, user, &idlen, id, &hash);
	if (e == NULL || e->expires <= now_ms())
		return -1;
	memcpy(key, e->key, 16);
	return 0;
}

/* Stores a found key; evicts the way that expires first in its set. */
static void cache_put(struct auth_redis *r, const char *realm, const char *user, const uint8_t key[16])
{
	char id[CACHE_ID_MAX];
	uint32_t hash;
	int idlen, i;
	struct cache_ent *e, *set;

	if (r->cache == NULL)
		return;
	if ((e = cache_lookup(r, realm, user, &idlen, id, &hash)) == NULL) {
		if (idlen < 0)
			return;
		set = &r->cache[(hash % r->nsets) * CACHE_WAYS];
		e = &set[0];
		for (i = 1; i < CACHE_WAYS; i++)
			if (set[i].expires < e->expires)
				e = &set[i];
	}
	e->hash = hash;
	e->idlen = (uint16_t)idlen;
	memcpy(e->id, id, (size_t)idlen);
	memcpy(e->key, key, 16);
	e->expires = now_ms() + (uint64_t)r->cache_ttl_ms;
}

static void cache_drop(struct auth_redis *r, const char *realm, const char *user)
{
	char id[CACHE_ID_MAX];
	uint32_t hash;
	int idlen;
	struct cache_ent *e = cache_lookup(r, realm, user, &idlen, id, &hash);

	if (e != NULL) {
		OPENSSL_cleanse(e, sizeof(*e));
		e->expires = 0;
	}
}

static void free_strv(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Copies n strings. Returns NULL (and sets nothing) on out of memory when n > 0. */
static char **dup_strv(const char *const *v, size_t n)
{
	char **c = calloc(n ? n : 1, sizeof(*c));
	size_t i;

	if (c == NULL)
		return NULL;
	for (i = 0; i < n; i++)
		if ((c[i] = strdup(v[i])) == NULL) {
			free_strv(c, i);
			return NULL;
		}
	return c;
}

/* ---- requests ----------------------------------------------------------- */

static void req_free(struct req *q)
{
	struct auth_redis *r = q->r;

	if (q->prev != NULL)
		q->prev->next = q->next;
	else
		r->reqs = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	if (q->timer != NULL)
		event_free(q->timer);
	free(q->realm);
	free(q->user);
	if (q->secrets != NULL)
		free_strv(q->secrets, q->nsecrets);
	OPENSSL_cleanse(q->key, sizeof(q->key));
	free(q);
}

/* Calls the user's callback once, then frees q unless hiredis still holds it. */
static void req_finish(struct req *q, int status)
{
	if (!q->done) {
		q->done = 1;
		if (status < 0)
			STAT_INC(q->r->stats.errors);
		evtimer_del(q->timer);
		if (q->kind == REQ_KEY)
			q->kcb(q->arg, status, status == 0 ? q->key : NULL);
		else
			q->scb(q->arg, status, (const char *const *)q->secrets, status == 0 ? q->nsecrets : 0);
	}
	if (q->inflight == 0)
		req_free(q);
}

static void req_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct req *q = arg;

	if (q->status == -2) {
		log_debug("redis %s:%d: request for '%s' timed out after %d ms", q->r->ci.host, q->r->ci.port,
			  q->user != NULL ? q->user : q->realm, q->r->timeout_ms);
		req_finish(q, -1);
	} else {
		req_finish(q, q->status);
	}
}

static struct req *req_new(struct auth_redis *r, int kind, const char *realm, const char *user, void *arg)
{
	struct req *q = calloc(1, sizeof(*q));

	if (q == NULL)
		return NULL;
	q->r = r;
	q->kind = kind;
	q->arg = arg;
	q->status = -2; /* unknown yet: the timer means timeout */
	q->realm = strdup(realm);
	q->user = user != NULL ? strdup(user) : NULL;
	q->timer = evtimer_new(r->base, req_timer_cb, q);
	if (q->realm == NULL || (user != NULL && q->user == NULL) || q->timer == NULL) {
		if (q->timer != NULL)
			event_free(q->timer);
		free(q->realm);
		free(q->user);
		free(q);
		return NULL;
	}
	q->next = r->reqs;
	if (r->reqs != NULL)
		r->reqs->prev = q;
	r->reqs = q;
	return q;
}

/* Answers q from the event loop (never re-entering the caller). */
static void req_answer_later(struct req *q, int status)
{
	struct timeval zero = { 0, 0 };

	q->status = status;
	evtimer_add(q->timer, &zero);
}

/* ---- connections -------------------------------------------------------- */

static void conn_start(struct rconn *c);

/* The connection failed or was lost. hiredis_frees: the context is being
 * freed by hiredis itself (disconnect callback, failed connect); otherwise we
 * free it here, which answers its pending commands with NULL replies. Logs
 * once per outage and schedules a reconnect with exponential backoff. */
static void conn_lost(struct rconn *c, const char *why, int hiredis_frees)
{
	struct auth_redis *r = c->r;
	redisAsyncContext *ac = c->ac;
	struct timeval tv;

	if (ac == NULL && c->state == CONN_DOWN)
		return;
	c->ac = NULL;
	c->state = CONN_DOWN;
	if (!c->subscriber)
		atomic_store_explicit(&r->stats.connected, 0, memory_order_relaxed);
	evtimer_del(c->ctimer);
	if (!c->in_outage) {
		c->in_outage = 1;
		if (c->subscriber)
			log_debug("redis %s:%d (%s): connection lost: %s; retrying", r->ci.host, r->ci.port, c->role,
				  why);
		else
			log_warnx("redis %s:%d: connection lost: %s; retrying", r->ci.host, r->ci.port, why);
	} else {
		log_debug("redis %s:%d (%s): reconnect failed: %s", r->ci.host, r->ci.port, c->role, why);
	}
	tv = ms_tv(c->backoff_ms);
	evtimer_add(c->retry, &tv);
	c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
	if (ac != NULL && !hiredis_frees)
		redisAsyncFree(ac);
}

static void conn_up(struct rconn *c)
{
	struct auth_redis *r = c->r;

	c->state = CONN_UP;
	if (!c->subscriber)
		atomic_store_explicit(&r->stats.connected, 1, memory_order_relaxed);
	c->backoff_ms = BACKOFF_MIN_MS;
	evtimer_del(c->ctimer);
	if (c->in_outage) {
		c->in_outage = 0;
		if (c->subscriber)
			log_debug("redis %s:%d (%s): connection restored", r->ci.host, r->ci.port, c->role);
		else
			log_info("redis %s:%d: connection restored", r->ci.host, r->ci.port);
	} else {
		log_debug("redis %s:%d (%s): connected", r->ci.host, r->ci.port, c->role);
	}
}

static void on_connect(const redisAsyncContext *ac, int status)
{
	struct rconn *c = ac->data;

	if (status != REDIS_OK && c != NULL && c->ac == ac)
		conn_lost(c, ac->errstr[0] ? ac->errstr : "connect failed", 1);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	struct rconn *c = ac->data;

	if (c != NULL && c->ac == ac)
		conn_lost(c, ac->err && ac->errstr[0] ? ac->errstr : "closed by the server", 1);
}

static void conn_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	conn_lost(arg, "connect timeout", 0);
}

static void conn_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	conn_start(arg);
}

/* Reply to AUTH or SELECT: an error drops the connection. */
static void on_setup_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct rconn *c = privdata;
	redisReply *rep = reply;
	char why[200];

	if (c->ac != ac)
		return;
	if (rep == NULL) {
		conn_lost(c, ac->errstr[0] ? ac->errstr : "connection closed", 1);
	} else if (rep->type == REDIS_REPLY_ERROR) {
		snprintf(why, sizeof(why), "setup command refused: %s", rep->str);
		conn_lost(c, why, 0);
	}
}

static void on_select_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct rconn *c = privdata;
	redisReply *rep = reply;

	if (c->ac != ac)
		return;
	if (rep != NULL && rep->type == REDIS_REPLY_STATUS)
		conn_up(c);
	else
		on_setup_reply(ac, reply, privdata);
}

static void on_sub_message(redisAsyncContext *ac, void *reply, void *privdata);

/* Opens the connection and queues AUTH, SELECT (lookups) or SUBSCRIBE. */
static void conn_start(struct rconn *c)
{
	struct auth_redis *r = c->r;
	redisAsyncContext *ac;
	struct timeval tv = ms_tv(r->ci.connect_timeout * 1000);

	ac = redisAsyncConnect(r->ci.host, r->ci.port);
	if (ac == NULL) {
		c->state = CONN_CONNECTING; /* so that conn_lost logs and retries */
		conn_lost(c, "out of memory", 1);
		return;
	}
	c->ac = ac;
	c->state = CONN_CONNECTING;
	if (ac->err) {
		char why[128];

		snprintf(why, sizeof(why), "%s", ac->errstr);
		conn_lost(c, why, 0);
		return;
	}
	ac->data = c;
	if (redisLibeventAttach(ac, r->base) != REDIS_OK) {
		conn_lost(c, "cannot attach to the event loop", 0);
		return;
	}
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	evtimer_add(c->ctimer, &tv);
	if (r->ci.password[0] != '\0') {
		if (r->ci.user[0] != '\0')
			redisAsyncCommand(ac, on_setup_reply, c, "AUTH %s %s", r->ci.user, r->ci.password);
		else
			redisAsyncCommand(ac, on_setup_reply, c, "AUTH %s", r->ci.password);
	}
	if (c->subscriber)
		redisAsyncCommand(ac, on_sub_message, c, "SUBSCRIBE %s", r->kill_channel);
	else
		redisAsyncCommand(ac, on_select_reply, c, "SELECT %d", r->ci.db);
}

/* Subscriber: the SUBSCRIBE confirmation, then one reply per message. */
static void on_sub_message(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct rconn *c = privdata;
	struct auth_redis *r = c->r;
	redisReply *rep = reply, **el;

	if (c->ac != ac)
		return;
	if (rep == NULL) {
		conn_lost(c, ac->errstr[0] ? ac->errstr : "connection closed", 1);
		return;
	}
	if (rep->type == REDIS_REPLY_ERROR) {
		on_setup_reply(ac, reply, privdata);
		return;
	}
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3)
		return;
	el = rep->element;
	if (el[0]->type != REDIS_REPLY_STRING)
		return;
	if (strcmp(el[0]->str, "subscribe") == 0) {
		conn_up(c);
	} else if (strcmp(el[0]->str, "message") == 0 && el[2]->type == REDIS_REPLY_STRING) {
		log_debug("redis: kill message for '%s'", el[2]->str);
		cache_drop(r, r->realm, el[2]->str);
		if (r->on_kill != NULL)
			r->on_kill(r->kill_arg, el[2]->str);
	}
}

static int conn_init(struct auth_redis *r, struct rconn *c, const char *role, int subscriber)
{
	c->r = r;
	c->role = role;
	c->subscriber = subscriber;
	c->state = CONN_DOWN;
	c->backoff_ms = BACKOFF_MIN_MS;
	c->retry = evtimer_new(r->base, conn_retry_cb, c);
	c->ctimer = evtimer_new(r->base, conn_timeout_cb, c);
	return c->retry != NULL && c->ctimer != NULL ? 0 : -1;
}

static void conn_close(struct rconn *c)
{
	redisAsyncContext *ac = c->ac;

	c->ac = NULL;
	c->state = CONN_DOWN;
	if (ac != NULL)
		redisAsyncFree(ac); /* answers pending commands with NULL */
	if (c->retry != NULL)
		event_free(c->retry);
	if (c->ctimer != NULL)
		event_free(c->ctimer);
	c->retry = c->ctimer = NULL;
}

/* ---- lookups ------------------------------------------------------------ */

static void on_key_reply(redisAsyncContext *ac, void *reply, void *privdata);

/* Sends the command of q's current stage. Returns 0 or -1. */
static int key_send(struct req *q)
{
	redisAsyncContext *ac = q->r->lookup.ac;
	int rc;

	if (q->stage == 0)
		rc = redisAsyncCommand(ac, on_key_reply, q, "GET turn/realm/%s/user/%s/key", q->realm, q->user);
	else
		rc = redisAsyncCommand(ac, on_key_reply, q, "GET turn/realm/%s/user/%s/password", q->realm, q->user);
	if (rc != REDIS_OK)
		return -1;
	q->inflight++;
	stat_sent(q);
	return 0;
}

/* 32 hex digits into 16 bytes. Returns 0 or -1. */
static int unhex16(const char *s, size_t len, uint8_t out[16])
{
	size_t i;

	if (len != 32)
		return -1;
	for (i = 0; i < 32; i++)
		if (!isxdigit((unsigned char)s[i]))
			return -1;
	for (i = 0; i < 16; i++) {
		char b[3] = { s[2 * i], s[2 * i + 1], 0 };

		out[i] = (uint8_t)strtoul(b, NULL, 16);
	}
	return 0;
}

/* Interprets a GET reply. Returns 0 found (q->key set), 1 nothing usable,
 * -1 Redis error. */
static int key_from_reply(struct req *q, const redisReply *rep)
{
	if (rep->type == REDIS_REPLY_NIL)
		return 1;
	if (rep->type != REDIS_REPLY_STRING) {
		log_warnx("redis: GET for user '%s' in realm '%s': %s", LOG_ESC(q->user), LOG_ESC(q->realm),
			  rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply type");
		return -1;
	}
	if (q->stage == 0) {
		if (unhex16(rep->str, rep->len, q->key) == 0)
			return 0;
		log_warnx("redis: key of user '%s' in realm '%s' is not 32 hex digits (MD5); ignored",
			  LOG_ESC(q->user), LOG_ESC(q->realm));
		return 1;
	}
	/* coturn's plain-text fallback: .../password (the only source of a
	 * SHA-256 key: .../key holds MD5) */
	{
		uint8_t k[32];
		int want = q->sha256 ? 32 : 16;
		int n = stun_long_term_key(q->sha256 ? STUN_PW_ALG_SHA256 : STUN_PW_ALG_MD5, q->user, q->realm,
					   rep->str, k);

		memcpy(q->key, k, (size_t)want);
		OPENSSL_cleanse(k, sizeof(k));
		return n == want ? 0 : -1;
	}
}

static void on_key_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct req *q = privdata;
	struct auth_redis *r = q->r;
	int st;

	q->inflight--;
	if (reply != NULL)
		stat_answered(q);
	if (reply == NULL && r->lookup.ac == ac)
		conn_lost(&r->lookup, ac->errstr[0] ? ac->errstr : "connection closed", 1);
	if (q->done) {
		if (q->inflight == 0)
			req_free(q);
		return;
	}
	if (reply == NULL) {
		req_finish(q, -1);
		return;
	}
	st = key_from_reply(q, reply);
	if (st == 1 && q->stage == 0) {
		q->stage = 1;
		if (key_send(q) == 0)
			return;
		st = -1;
	}
	if (st == 0 && !q->sha256) /* the cache holds MD5 keys */
		cache_put(r, q->realm, q->user, q->key);
	req_finish(q, st);
}

/* auth_redis_get_key and auth_redis_get_key_sha256. */
static int get_key(struct auth_redis *r, const char *realm, const char *user, int sha256, auth_redis_key_cb *cb,
		   void *arg)
{
	struct req *q;
	struct timeval tv;

	if (r == NULL || realm == NULL || user == NULL || cb == NULL)
		return -1;
	if ((q = req_new(r, REQ_KEY, realm, user, arg)) == NULL)
		return -1;
	q->kcb = cb;
	q->sha256 = sha256;
	q->stage = sha256; /* SHA-256: straight to .../password */
	if (!sha256 && auth_redis_cached_key(r, realm, user, q->key) == 0) {
		req_answer_later(q, 0);
	} else if (r->lookup.state == CONN_DOWN || key_send(q) < 0) {
		req_answer_later(q, -1);
	} else {
		tv = ms_tv(r->timeout_ms);
		evtimer_add(q->timer, &tv);
	}
	return 0;
}

int auth_redis_get_key(struct auth_redis *r, const char *realm, const char *user, auth_redis_key_cb *cb, void *arg)
{
	return get_key(r, realm, user, 0, cb, arg);
}

int auth_redis_get_key_sha256(struct auth_redis *r, const char *realm, const char *user, auth_redis_key_cb *cb,
			      void *arg)
{
	return get_key(r, realm, user, 1, cb, arg);
}

static void on_secrets_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct req *q = privdata;
	struct auth_redis *r = q->r;
	redisReply *rep = reply;
	const char **v;
	size_t i, n = 0;

	q->inflight--;
	if (rep != NULL)
		stat_answered(q);
	if (rep == NULL && r->lookup.ac == ac)
		conn_lost(&r->lookup, ac->errstr[0] ? ac->errstr : "connection closed", 1);
	if (q->done || rep == NULL || rep->type != REDIS_REPLY_ARRAY) {
		if (rep != NULL && rep->type == REDIS_REPLY_ERROR)
			log_warnx("redis: SMEMBERS turn/realm/%s/secret: %s", q->realm, rep->str);
		req_finish(q, -1);
		return;
	}
	if ((v = calloc(rep->elements + 1, sizeof(*v))) == NULL) {
		req_finish(q, -1);
		return;
	}
	for (i = 0; i < rep->elements; i++)
		if (rep->element[i]->type == REDIS_REPLY_STRING)
			v[n++] = rep->element[i]->str;
	q->secrets = dup_strv(v, n);
	free(v);
	if (q->secrets == NULL) {
		req_finish(q, -1);
		return;
	}
	q->nsecrets = n;
	if (r->cache != NULL) {
		char **c = dup_strv((const char *const *)q->secrets, n);
		char *realm = strdup(q->realm);

		if (c != NULL && realm != NULL) {
			if (r->sec != NULL)
				free_strv(r->sec, r->nsec);
			free(r->sec_realm);
			r->sec = c;
			r->nsec = n;
			r->sec_realm = realm;
			r->sec_expires = now_ms() + (uint64_t)r->cache_ttl_ms;
		} else {
			if (c != NULL)
				free_strv(c, n);
			free(realm);
		}
	}
	req_finish(q, 0);
}

int auth_redis_get_secrets(struct auth_redis *r, const char *realm, auth_redis_secrets_cb *cb, void *arg)
{
	struct req *q;
	struct timeval tv;

	if (r == NULL || realm == NULL || cb == NULL)
		return -1;
	if ((q = req_new(r, REQ_SECRETS, realm, NULL, arg)) == NULL)
		return -1;
	q->scb = cb;
	if (r->sec_realm != NULL && strcmp(r->sec_realm, realm) == 0 && r->sec_expires > now_ms() &&
	    (q->secrets = dup_strv((const char *const *)r->sec, r->nsec)) != NULL) {
		q->nsecrets = r->nsec;
		req_answer_later(q, 0);
	} else if (r->lookup.state == CONN_DOWN ||
		   redisAsyncCommand(r->lookup.ac, on_secrets_reply, q, "SMEMBERS turn/realm/%s/secret", realm) !=
			   REDIS_OK) {
		req_answer_later(q, -1);
	} else {
		q->inflight++;
		stat_sent(q);
		tv = ms_tv(r->timeout_ms);
		evtimer_add(q->timer, &tv);
	}
	return 0;
}

size_t auth_redis_cancel(struct auth_redis *r, void *arg)
{
	struct req *q, *next;
	size_t n = 0;

	for (q = r->reqs; q != NULL; q = next) {
		next = q->next;
		if (q->done || q->arg != arg)
			continue;
		q->done = 1;
		n++;
		evtimer_del(q->timer);
		if (q->inflight == 0)
			req_free(q);
	}
	return n;
}

int auth_redis_connected(const struct auth_redis *r)
{
	return r != NULL && r->lookup.state == CONN_UP;
}

/* ---- life cycle --------------------------------------------------------- */

struct auth_redis *auth_redis_new(struct event_base *base, const struct auth_redis_params *p, char *err,
				  size_t errlen)
{
	struct auth_redis *r;
	const char *realm = p->realm != NULL ? p->realm : "";
	size_t size = p->cache_size ? p->cache_size : 4096;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	if (auth_redis_parse_conninfo(p->conninfo, &r->ci, err, errlen) < 0) {
		free(r);
		return NULL;
	}
	r->base = base;
	r->timeout_ms = p->request_timeout_ms > 0 ? p->request_timeout_ms : 1000;
	r->cache_ttl_ms = p->cache_ttl > 0 ? p->cache_ttl * 1000 : 0;
	r->on_kill = p->on_kill;
	r->kill_arg = p->kill_arg;
	r->realm = strdup(realm);
	r->kill_channel = malloc(strlen(realm) + sizeof("turnstone/realm//kill"));
	if (r->kill_channel != NULL)
		sprintf(r->kill_channel, "turnstone/realm/%s/kill", realm);
	if (r->cache_ttl_ms > 0) {
		r->nsets = (size + CACHE_WAYS - 1) / CACHE_WAYS;
		r->cache = calloc(r->nsets * CACHE_WAYS, sizeof(*r->cache));
	}
	if (r->realm == NULL || r->kill_channel == NULL || (r->cache_ttl_ms > 0 && r->cache == NULL) ||
	    conn_init(r, &r->lookup, "lookups", 0) < 0 || conn_init(r, &r->sub, "subscriber", 1) < 0) {
		snprintf(err, errlen, "out of memory");
		auth_redis_free(r);
		return NULL;
	}
	conn_start(&r->lookup);
	if (r->on_kill != NULL)
		conn_start(&r->sub);
	return r;
}

void auth_redis_free(struct auth_redis *r)
{
	struct req *q, *next;

	if (r == NULL)
		return;
	for (q = r->reqs; q != NULL; q = q->next)
		q->done = 1;
	conn_close(&r->lookup); /* NULL replies free the requests hiredis held */
	conn_close(&r->sub);
	for (q = r->reqs; q != NULL; q = next) {
		next = q->next;
		req_free(q);
	}
	if (r->cache != NULL) {
		OPENSSL_cleanse(r->cache, r->nsets * CACHE_WAYS * sizeof(*r->cache));
		free(r->cache);
	}
	if (r->sec != NULL)
		free_strv(r->sec, r->nsec);
	free(r->sec_realm);
	free(r->realm);
	free(r->kill_channel);
	OPENSSL_cleanse(&r->ci, sizeof(r->ci));
	free(r);
}
