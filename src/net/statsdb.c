/* statsdb.c -- coturn's redis-statsdb allocation keys and messages (see
 * statsdb.h), over one asynchronous hiredis connection per worker. */
#include "net/statsdb.h"

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_redis.h"
#include "log.h"
#include "turn/turn_alloc.h"

struct statsdb {
	struct event_base *base;
	struct auth_redis_conninfo ci;
	char *realm;
	redisAsyncContext *ac;      /* NULL while disconnected */
	int up;                     /* connected (AUTH and SELECT queued before any message) */
	int warned;                 /* "down" logged since the last success */
	struct event *retry;        /* reconnect timer */
};

static void statsdb_connect(struct statsdb *s);

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	statsdb_connect(arg);
}

/* Connection gone (or never made): try again in a second. */
static void statsdb_lost(struct statsdb *s, const char *why)
{
	struct timeval one = { 1, 0 };

	if (!s->warned)
		log_warnx("redis-statsdb %s:%d: %s; retrying every second", s->ci.host, s->ci.port, why);
	s->warned = 1;
	s->ac = NULL;
	s->up = 0;
	evtimer_add(s->retry, &one);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
	struct statsdb *s = ac->data;

	if (status != REDIS_OK) {
		statsdb_lost(s, ac->errstr[0] ? ac->errstr : "cannot connect");
		return;
	}
	if (s->warned)
		log_info("redis-statsdb %s:%d: connected", s->ci.host, s->ci.port);
	s->warned = 0;
	s->up = 1;
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	struct statsdb *s = ac->data;

	(void)status;
	if (s != NULL && s->ac == ac)
		statsdb_lost(s, ac->errstr[0] ? ac->errstr : "connection closed");
}

/* Replies are not needed, but an error reply (AUTH, SELECT) is logged. */
static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	redisReply *rep = reply;

	(void)ac;
	(void)privdata;
	if (rep != NULL && rep->type == REDIS_REPLY_ERROR)
		log_warnx("redis-statsdb: command refused: %s", rep->str);
}

static void statsdb_connect(struct statsdb *s)
{
	redisAsyncContext *ac = redisAsyncConnect(s->ci.host, s->ci.port);

	if (ac == NULL || ac->err) {
		statsdb_lost(s, ac != NULL ? ac->errstr : "out of memory");
		if (ac != NULL)
			redisAsyncFree(ac);
		return;
	}
	ac->data = s;
	if (redisLibeventAttach(ac, s->base) != REDIS_OK) {
		redisAsyncFree(ac);
		statsdb_lost(s, "cannot attach to the event loop");
		return;
	}
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	s->ac = ac;
	if (s->ci.password[0] != '\0') {
		if (s->ci.user[0] != '\0')
			redisAsyncCommand(ac, on_reply, NULL, "AUTH %s %s", s->ci.user, s->ci.password);
		else
			redisAsyncCommand(ac, on_reply, NULL, "AUTH %s", s->ci.password);
	}
	redisAsyncCommand(ac, on_reply, NULL, "SELECT %d", s->ci.db);
}

struct statsdb *statsdb_new(struct event_base *base, const char *conninfo, const char *realm, char *err,
			    size_t errlen)
{
	struct statsdb *s = calloc(1, sizeof(*s));
	char why[256];

	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (auth_redis_parse_conninfo(conninfo, &s->ci, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "redis-statsdb: %s", why);
		free(s);
		return NULL;
	}
	s->base = base;
	s->realm = strdup(realm);
	s->retry = evtimer_new(base, on_retry, s);
	if (s->realm == NULL || s->retry == NULL) {
		snprintf(err, errlen, "out of memory");
		statsdb_free(s);
		return NULL;
	}
	statsdb_connect(s);
	return s;
}

void statsdb_free(struct statsdb *s)
{
	if (s == NULL)
		return;
	if (s->ac != NULL) {
		s->ac->data = NULL; /* on_disconnect runs inside redisAsyncFree */
		redisAsyncFree(s->ac);
	}
	if (s->retry != NULL)
		event_free(s->retry);
	free(s->realm);
	free(s);
}

/* key = turn/realm/<realm>/user/<user>/allocation/<id>/<tail>, coturn's names. */
static void alloc_key(const struct statsdb *s, char *key, size_t len, const char *user, uint64_t id,
		      const char *tail)
{
	snprintf(key, len, "turn/realm/%s/user/%s/allocation/%018" PRIu64 "/%s", s->realm, user, id, tail);
}

void statsdb_alloc_status(struct statsdb *s, uint64_t id, const char *user, int refresh, uint32_t lifetime,
			  const struct statsdb_client *cl)
{
	char key[512], val[512];

	if (s == NULL || !s->up || lifetime == 0)
		return;
	alloc_key(s, key, sizeof(key), user, id, "status");
	snprintf(val, sizeof(val), "%s lifetime=%" PRIu32 ", type=%s, local=%s, remote=%s, ssl=%s, cipher=%s",
		 refresh ? "refreshed" : "new", lifetime, cl->type, cl->local, cl->remote,
		 strcmp(cl->type, "TLS") == 0 ? "TLS" : "NONE", "NONE");
	/* %b: binary-safe, so a user name with spaces stays one argument */
	redisAsyncCommand(s->ac, on_reply, NULL, "SET %b %b EX %u", key, strlen(key), val, strlen(val),
			  (unsigned)lifetime);
	redisAsyncCommand(s->ac, on_reply, NULL, "PUBLISH %b %b", key, strlen(key), val, strlen(val));
}

void statsdb_alloc_deleted(struct statsdb *s, uint64_t id, const struct turn_alloc *a)
{
	char key[512], val[256];

	if (s == NULL || !s->up)
		return;
	alloc_key(s, key, sizeof(key), a->username, id, "status");
	redisAsyncCommand(s->ac, on_reply, NULL, "DEL %b", key, strlen(key));
	redisAsyncCommand(s->ac, on_reply, NULL, "PUBLISH %b %s", key, strlen(key), "deleted");
	/* client side: received from the client = relayed to the peer */
	alloc_key(s, key, sizeof(key), a->username, id, "total_traffic");
	snprintf(val, sizeof(val), "rcvp=%" PRIu64 ", rcvb=%" PRIu64 ", sentp=%" PRIu64 ", sentb=%" PRIu64,
		 a->packets_to_peer, a->bytes_to_peer, a->packets_to_client, a->bytes_to_client);
	redisAsyncCommand(s->ac, on_reply, NULL, "PUBLISH %b %b", key, strlen(key), val, strlen(val));
	alloc_key(s, key, sizeof(key), a->username, id, "total_traffic/peer");
	snprintf(val, sizeof(val), "rcvp=%" PRIu64 ", rcvb=%" PRIu64 ", sentp=%" PRIu64 ", sentb=%" PRIu64,
		 a->packets_to_client, a->bytes_to_client, a->packets_to_peer, a->bytes_to_peer);
	redisAsyncCommand(s->ac, on_reply, NULL, "PUBLISH %b %b", key, strlen(key), val, strlen(val));
}
