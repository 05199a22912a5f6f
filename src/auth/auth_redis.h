/* auth_redis.h -- per-worker asynchronous Redis client for long-term
 * credentials and REST API secrets, in coturn's Redis schema.
 *
 * One struct auth_redis lives in one worker thread and runs on that worker's
 * event_base (hiredis async API + its libevent adapter): nothing here ever
 * blocks. It keeps two connections:
 *   - lookups: GET turn/realm/<realm>/user/<user>/key (32 hex digits of
 *     MD5(user:realm:password), RFC 8489 §9.2.2), falling back to
 *     GET .../password (plain text) like coturn; SMEMBERS
 *     turn/realm/<realm>/secret for REST API shared secrets;
 *   - a subscriber on turnstone/realm/<realm>/kill: each message is a user
 *     name whose sessions must end (turnstone-admin session kill).
 * Both reconnect with exponential backoff (100 ms doubling to 5 s); while
 * the lookup connection is down every request fails promptly with -1.
 * Found keys are cached per worker for cache_ttl seconds; a kill message
 * drops that user's entry at once. See docs/redis.md.
 *
 * Callbacks are always called from the event loop, never from inside the
 * call that started the request, and exactly once unless cancelled. They
 * must not call auth_redis_free.
 */
#ifndef TURNSTONE_AUTH_REDIS_H
#define TURNSTONE_AUTH_REDIS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct auth_redis;

/* A parsed redis-userdb value. */
struct auth_redis_conninfo {
	char host[256];          /* IP literal or host name, default "127.0.0.1" */
	int port;                /* default 6379 */
	int db;                  /* database number for SELECT, default 0 */
	char user[128];          /* ACL user for AUTH (Redis 6), "" for none */
	char password[256];      /* "" for no AUTH */
	int connect_timeout;     /* seconds, default 5 */
};

/* Parses coturn's "ip=127.0.0.1 port=6379 dbname=0 password=secret
 * connect_timeout=5" (keys also: host, db, database, user, pwd, passwd,
 * timeout) or a URL "redis://[[user]:password@]host[:port][/db]" (host may
 * be "[v6]", user and password may be %-encoded) into *ci. Pure.
 * Returns 0, or -1 with a message in err[0..errlen). */
int auth_redis_parse_conninfo(const char *s, struct auth_redis_conninfo *ci, char *err, size_t errlen);

/* status: 0 found (key valid), 1 no such user (or an unusable stored
 * value, logged), -1 Redis unavailable, error reply or timeout. key is
 * only valid during the call and NULL unless status is 0. */
typedef void auth_redis_key_cb(void *arg, int status, const uint8_t *key);
/* status 0 with n secrets (n may be 0), or -1 with n 0. The strings are only
 * valid during the call. */
typedef void auth_redis_secrets_cb(void *arg, int status, const char *const *secrets, size_t n);
/* A kill message: user is the NUL-terminated message payload. */
typedef void auth_redis_kill_cb(void *arg, const char *user);

/* What auth_redis_new needs; the strings are copied. */
struct auth_redis_params {
	const char *conninfo;          /* redis-userdb value, see above */
	const char *realm;             /* realm of the kill channel */
	int cache_ttl;                 /* seconds a found key is reused, 0: no cache */
	size_t cache_size;             /* entries, 0: 4096 */
	int request_timeout_ms;        /* per request, 0: 1000 */
	auth_redis_kill_cb *on_kill;   /* may be NULL: then no subscriber connection */
	void *kill_arg;
};

/* Creates the client on base and starts connecting (asynchronously: the
 * first requests are queued behind AUTH and SELECT). Returns NULL with a
 * message in err when the conninfo is invalid or memory runs out. */
struct auth_redis *auth_redis_new(struct event_base *base, const struct auth_redis_params *p, char *err,
				  size_t errlen);

/* Closes both connections and frees r. Pending requests are dropped
 * without calling their callbacks. Call from r's thread, not from a callback. */
void auth_redis_free(struct auth_redis *r);

/* Looks up the MD5 long-term key (16 bytes) of user in realm; cb(arg, ...)
 * is called later exactly once (from the cache, Redis, the request timeout
 * or because Redis is down). Returns 0, or -1 without calling cb on bad
 * arguments or out of memory. */
int auth_redis_get_key(struct auth_redis *r, const char *realm, const char *user, auth_redis_key_cb *cb,
		       void *arg);

/* The same for a SHA-256 key (RFC 8489 §9.2.2, PASSWORD-ALGORITHM SHA-256;
 * the callback's key is then 32 bytes): only from the plain-text
 * .../password, since .../key holds an MD5 key; never cached. A user with
 * only .../key is "not found" (status 1). */
int auth_redis_get_key_sha256(struct auth_redis *r, const char *realm, const char *user, auth_redis_key_cb *cb,
			      void *arg);

/* Copies user's cached key into key without a request. Returns 0 when a
 * fresh entry exists, -1 otherwise. Lets the server skip parking a request. */
int auth_redis_cached_key(struct auth_redis *r, const char *realm, const char *user, uint8_t key[16]);

/* Reads the REST API shared secrets of realm (SMEMBERS
 * turn/realm/<realm>/secret); cb as above. Returns 0 or -1 like get_key. */
int auth_redis_get_secrets(struct auth_redis *r, const char *realm, auth_redis_secrets_cb *cb, void *arg);

/* Cancels every pending request whose callback argument is arg (e.g. the
 * connection that started it is closing): their callbacks are not called.
 * Returns how many were cancelled. */
size_t auth_redis_cancel(struct auth_redis *r, void *arg);

/* 1 when the lookup connection is up (AUTH and SELECT done), else 0. */
int auth_redis_connected(const struct auth_redis *r);

/* Upper bounds (microseconds) of the latency histogram's buckets; one more
 * bucket counts everything slower. */
#define AUTH_REDIS_LATENCY_BOUNDS_US { 500, 1000, 2500, 5000, 10000, 50000, 250000, 1000000 }
#define AUTH_REDIS_NBOUNDS 8

/* Live counters of one client for the metrics thread (issue 11). The owning
 * worker is the only writer; any thread may read them (relaxed atomics). */
struct auth_redis_stats {
	_Atomic int connected;                  /* the lookup connection is up */
	_Atomic uint64_t requests;              /* commands sent on the lookup connection */
	_Atomic uint64_t errors;                /* lookups failed: down, error reply, timeout */
	_Atomic uint64_t latency_usec_sum;      /* over the answered commands */
	_Atomic uint64_t latency_hist[AUTH_REDIS_NBOUNDS + 1]; /* answered commands per bucket
							       (not cumulative) */
};

/* r's counters; valid until auth_redis_free. */
const struct auth_redis_stats *auth_redis_stats(const struct auth_redis *r);

#endif
