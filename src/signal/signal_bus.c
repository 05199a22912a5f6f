/* signal_bus.c -- the signaling fleet's Redis connections (hiredis async on
 * the signaling thread's event_base): membership hashes, liveness keys and
 * per-room pub/sub channels (docs/signaling.md). The reconnect pattern
 * (backoff, one log line per outage) follows auth_redis.c; the conninfo is
 * parsed by auth_redis_parse_conninfo. */
#include "signal/signal_bus.h"

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/auth_redis.h"
#include "log.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define REQ_TIMEOUT_MS 2000
#define KEY_SERVER "turnstone/signal/server/"
#define KEY_ROOM "turnstone/signal/room/"
#define CHANNEL_ROOM "turnstone/signal/channel/"

enum { BC_DOWN, BC_CONNECTING, BC_UP };
enum { REQ_JOIN, REQ_MEMBERS, REQ_ALIVE };

struct bconn {
	struct signal_bus *b;
	const char *role;
	int subscriber;
	redisAsyncContext *ac;     /* NULL while down */
	int state;
	int backoff_ms;
	int in_outage;
	struct event *retry, *ctimer;
};

/* A pending request; lives until its callback ran (or was cancelled) and
 * hiredis answered every command sent for it (hiredis holds the pointer). */
struct breq {
	struct breq *prev, *next;
	struct signal_bus *b;
	int kind, stage, inflight, done;
	signal_bus_members_cb *mcb;
	signal_bus_alive_cb *acb;
	void *arg;
	struct event *timer;
	char server[SIGNAL_BUS_ID_LEN + 1];
};

struct signal_bus {
	struct event_base *base;
	struct auth_redis_conninfo ci;
	char id[SIGNAL_BUS_ID_LEN + 1];
	int ttl;
	struct signal_bus_cbs cbs;
	void *arg;
	struct bconn cmd, sub;
	int up;                    /* both connections up, cbs.up called */
	struct timespec up_at;
	struct event *tick;
	struct breq *reqs;
	int closing;
};

static void bconn_start(struct bconn *c);

static struct timeval ms_tv(int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	return tv;
}

/* ---- requests ----------------------------------------------------------- */

static void req_free(struct breq *q)
{
	struct signal_bus *b = q->b;

	if (q->prev != NULL)
		q->prev->next = q->next;
	else
		b->reqs = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	if (q->timer != NULL)
		event_free(q->timer);
	free(q);
}

/* Delivers the result once (unless cancelled or the bus is closing). */
static void req_finish(struct breq *q, int status, const char *const *peers, const char *const *servers, size_t n)
{
	if (!q->done) {
		q->done = 1;
		evtimer_del(q->timer);
		if (!q->b->closing) {
			if (q->kind == REQ_ALIVE)
				q->acb(q->arg, q->server, status);
			else
				q->mcb(q->arg, status, peers, servers, n);
		}
	}
	if (q->inflight == 0)
		req_free(q);
}

static void req_timeout(evutil_socket_t fd, short what, void *arg)
{
	req_finish(arg, -1, NULL, NULL, 0);
}

static struct breq *req_new(struct signal_bus *b, int kind, void *arg)
{
	struct breq *q = calloc(1, sizeof(*q));
	struct timeval tv = ms_tv(REQ_TIMEOUT_MS);

	if (q == NULL)
		return NULL;
	q->b = b;
	q->kind = kind;
	q->arg = arg;
	if ((q->timer = evtimer_new(b->base, req_timeout, q)) == NULL) {
		free(q);
		return NULL;
	}
	evtimer_add(q->timer, &tv);
	q->next = b->reqs;
	if (b->reqs != NULL)
		b->reqs->prev = q;
	b->reqs = q;
	return q;
}

void signal_bus_cancel(struct signal_bus *b, void *arg)
{
	struct breq *q, *next;

	if (b == NULL)
		return;
	for (q = b->reqs; q != NULL; q = next) {
		next = q->next;
		if (!q->done && q->arg == arg) {
			q->done = 1;
			evtimer_del(q->timer);
			if (q->inflight == 0)
				req_free(q);
		}
	}
}

/* ---- connections -------------------------------------------------------- */

static void bus_set_down(struct signal_bus *b)
{
	if (!b->up)
		return;
	b->up = 0;
	evtimer_del(b->tick);
	if (b->cbs.down != NULL)
		b->cbs.down(b->arg);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct signal_bus *b = arg;
	struct timeval tv = ms_tv(b->ttl * 1000 / 3);

	if (!b->up)
		return;
	redisAsyncCommand(b->cmd.ac, NULL, NULL, "SET " KEY_SERVER "%s 1 EX %d", b->id, b->ttl);
	evtimer_add(b->tick, &tv);
	if (b->cbs.tick != NULL)
		b->cbs.tick(b->arg);
}

static void bus_check_up(struct signal_bus *b)
{
	struct timeval tv = ms_tv(b->ttl * 1000 / 3);

	if (b->up || b->cmd.state != BC_UP || b->sub.state != BC_UP)
		return;
	b->up = 1;
	clock_gettime(CLOCK_MONOTONIC, &b->up_at);
	redisAsyncCommand(b->cmd.ac, NULL, NULL, "SET " KEY_SERVER "%s 1 EX %d", b->id, b->ttl);
	evtimer_add(b->tick, &tv);
	log_info("signaling: fleet bus up on redis %s:%d (server id %s)", b->ci.host, b->ci.port, b->id);
	if (b->cbs.up != NULL)
		b->cbs.up(b->arg);
}

static void bconn_lost(struct bconn *c, const char *why, int hiredis_frees)
{
	struct signal_bus *b = c->b;
	redisAsyncContext *ac = c->ac;
	struct timeval tv;

	if (ac == NULL && c->state == BC_DOWN)
		return;
	c->ac = NULL;
	c->state = BC_DOWN;
	evtimer_del(c->ctimer);
	if (!c->in_outage) {
		c->in_outage = 1;
		log_warnx("signaling: redis %s:%d (%s): connection lost: %s; rooms are local until it is back",
			  b->ci.host, b->ci.port, c->role, why);
	} else {
		log_debug("signaling: redis %s:%d (%s): reconnect failed: %s", b->ci.host, b->ci.port, c->role, why);
	}
	tv = ms_tv(c->backoff_ms);
	evtimer_add(c->retry, &tv);
	c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
	bus_set_down(b);
	if (ac != NULL && !hiredis_frees)
		redisAsyncFree(ac);
}

static void bconn_up(struct bconn *c)
{
	c->state = BC_UP;
	c->backoff_ms = BACKOFF_MIN_MS;
	evtimer_del(c->ctimer);
	if (c->in_outage) {
		c->in_outage = 0;
		log_info("signaling: redis %s:%d (%s): connection restored", c->b->ci.host, c->b->ci.port, c->role);
	}
	bus_check_up(c->b);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
	struct bconn *c = ac->data;

	if (status != REDIS_OK && c != NULL && c->ac == ac)
		bconn_lost(c, ac->errstr[0] ? ac->errstr : "connect failed", 1);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	struct bconn *c = ac->data;

	if (c != NULL && c->ac == ac)
		bconn_lost(c, ac->err && ac->errstr[0] ? ac->errstr : "closed by the server", 1);
}

static void bconn_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	bconn_lost(arg, "connect timeout", 0);
}

static void bconn_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	bconn_start(arg);
}

/* AUTH / SELECT replies: an error drops the connection; SELECT's OK is up. */
static void on_setup_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct bconn *c = privdata;
	redisReply *rep = reply;
	char why[200];

	if (c->ac != ac)
		return;
	if (rep == NULL) {
		bconn_lost(c, ac->errstr[0] ? ac->errstr : "connection closed", 1);
	} else if (rep->type == REDIS_REPLY_ERROR) {
		snprintf(why, sizeof(why), "setup command refused: %s", rep->str);
		bconn_lost(c, why, 0);
	}
}

static void on_select_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct bconn *c = privdata;
	redisReply *rep = reply;

	if (c->ac != ac)
		return;
	if (rep != NULL && rep->type == REDIS_REPLY_STATUS)
		bconn_up(c);
	else
		on_setup_reply(ac, reply, privdata);
}

/* Subscriber: confirmations and messages of every channel. */
static void on_sub(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct bconn *c = privdata;
	struct signal_bus *b = c->b;
	redisReply *rep = reply, **el;
	const char *ch;

	if (c->ac != ac || b->closing)
		return;
	if (rep == NULL) {
		bconn_lost(c, ac->errstr[0] ? ac->errstr : "connection closed", 1);
		return;
	}
	if (rep->type == REDIS_REPLY_ERROR) {
		on_setup_reply(ac, reply, privdata);
		return;
	}
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 || rep->element[0]->type != REDIS_REPLY_STRING)
		return;
	el = rep->element;
	if (strcmp(el[0]->str, "subscribe") == 0 && c->state != BC_UP) {
		bconn_up(c); /* our own server channel: the connection works */
	} else if (strcmp(el[0]->str, "message") == 0 && el[1]->type == REDIS_REPLY_STRING &&
		   el[2]->type == REDIS_REPLY_STRING) {
		ch = el[1]->str;
		if (strncmp(ch, CHANNEL_ROOM, strlen(CHANNEL_ROOM)) == 0 && b->cbs.message != NULL)
			b->cbs.message(b->arg, ch + strlen(CHANNEL_ROOM), el[2]->str, el[2]->len);
	}
}

static void bconn_start(struct bconn *c)
{
	struct signal_bus *b = c->b;
	redisAsyncContext *ac = redisAsyncConnect(b->ci.host, b->ci.port);
	struct timeval tv = ms_tv(b->ci.connect_timeout * 1000);

	c->state = BC_CONNECTING;
	if (ac == NULL) {
		bconn_lost(c, "out of memory", 1);
		return;
	}
	c->ac = ac;
	if (ac->err) {
		char why[128];

		snprintf(why, sizeof(why), "%s", ac->errstr);
		bconn_lost(c, why, 0);
		return;
	}
	ac->data = c;
	if (redisLibeventAttach(ac, b->base) != REDIS_OK) {
		bconn_lost(c, "cannot attach to the event loop", 0);
		return;
	}
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	evtimer_add(c->ctimer, &tv);
	if (b->ci.password[0] != '\0') {
		if (b->ci.user[0] != '\0')
			redisAsyncCommand(ac, on_setup_reply, c, "AUTH %s %s", b->ci.user, b->ci.password);
		else
			redisAsyncCommand(ac, on_setup_reply, c, "AUTH %s", b->ci.password);
	}
	if (c->subscriber)
		redisAsyncCommand(ac, on_sub, c, "SUBSCRIBE " KEY_SERVER "%s", b->id);
	else
		redisAsyncCommand(ac, on_select_reply, c, "SELECT %d", b->ci.db);
}

static int bconn_init(struct signal_bus *b, struct bconn *c, const char *role, int subscriber)
{
	c->b = b;
	c->role = role;
	c->subscriber = subscriber;
	c->state = BC_DOWN;
	c->backoff_ms = BACKOFF_MIN_MS;
	c->retry = evtimer_new(b->base, bconn_retry_cb, c);
	c->ctimer = evtimer_new(b->base, bconn_timeout_cb, c);
	return c->retry != NULL && c->ctimer != NULL ? 0 : -1;
}

static void bconn_close(struct bconn *c)
{
	redisAsyncContext *ac = c->ac;

	c->ac = NULL;
	c->state = BC_DOWN;
	if (ac != NULL)
		redisAsyncFree(ac); /* answers pending commands with NULL */
	if (c->retry != NULL)
		event_free(c->retry);
	if (c->ctimer != NULL)
		event_free(c->ctimer);
	c->retry = c->ctimer = NULL;
}

/* ---- life cycle --------------------------------------------------------- */

struct signal_bus *signal_bus_new(struct event_base *base, const char *conninfo, int ttl,
				  const struct signal_bus_cbs *cbs, void *arg, char *err, size_t errlen)
{
	static const char hex[] = "0123456789abcdef";
	struct signal_bus *b = calloc(1, sizeof(*b));
	unsigned char rnd[SIGNAL_BUS_ID_LEN / 2];
	size_t i;

	if (b == NULL) {
		snprintf(err, errlen, "signaling: out of memory");
		return NULL;
	}
	if (auth_redis_parse_conninfo(conninfo, &b->ci, err, errlen) < 0) {
		free(b);
		return NULL;
	}
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		snprintf(err, errlen, "signaling: no random bytes for the server id");
		free(b);
		return NULL;
	}
	for (i = 0; i < sizeof(rnd); i++) {
		b->id[2 * i] = hex[rnd[i] >> 4];
		b->id[2 * i + 1] = hex[rnd[i] & 15];
	}
	b->base = base;
	b->ttl = ttl >= 3 ? ttl : 3;
	if (cbs != NULL)
		b->cbs = *cbs;
	b->arg = arg;
	if ((b->tick = evtimer_new(base, on_tick, b)) == NULL || bconn_init(b, &b->cmd, "fleet commands", 0) < 0 ||
	    bconn_init(b, &b->sub, "fleet subscriber", 1) < 0) {
		snprintf(err, errlen, "signaling: out of memory");
		signal_bus_free(b);
		return NULL;
	}
	log_info("signaling: rooms span the fleet on redis %s:%d, server id %s", b->ci.host, b->ci.port, b->id);
	bconn_start(&b->cmd);
	bconn_start(&b->sub);
	return b;
}

/* Writes what is queued on ac (the last HDELs, PUBLISHes and the DEL of
 * the liveness key at shutdown) for at most ~300 ms: the event loop that
 * would have sent it has stopped. */
static void bus_flush(redisAsyncContext *ac)
{
	struct pollfd pfd = {.fd = ac->c.fd, .events = POLLOUT};
	int done = 0, i;

	for (i = 0; i < 3 && !done; i++) {
		if (redisBufferWrite(&ac->c, &done) == REDIS_ERR)
			return;
		if (!done)
			poll(&pfd, 1, 100);
	}
}

void signal_bus_free(struct signal_bus *b)
{
	struct breq *q, *next;

	if (b == NULL)
		return;
	b->closing = 1;
	for (q = b->reqs; q != NULL; q = q->next)
		q->done = 1;
	if (b->cmd.state == BC_UP) {
		redisAsyncCommand(b->cmd.ac, NULL, NULL, "DEL " KEY_SERVER "%s", b->id);
		bus_flush(b->cmd.ac);
	}
	bconn_close(&b->cmd); /* flushes what it can, then NULL replies free the requests */
	bconn_close(&b->sub);
	for (q = b->reqs; q != NULL; q = next) {
		next = q->next;
		req_free(q);
	}
	if (b->tick != NULL)
		event_free(b->tick);
	OPENSSL_cleanse(&b->ci, sizeof(b->ci));
	free(b);
}

const char *signal_bus_id(const struct signal_bus *b)
{
	return b->id;
}

int signal_bus_up(const struct signal_bus *b)
{
	return b != NULL && b->up;
}

double signal_bus_up_for(const struct signal_bus *b)
{
	struct timespec now;

	if (b == NULL || !b->up)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - b->up_at.tv_sec) + (now.tv_nsec - b->up_at.tv_nsec) / 1e9;
}

/* ---- commands ----------------------------------------------------------- */

int signal_bus_subscribe(struct signal_bus *b, const char *room)
{
	if (!signal_bus_up(b))
		return -1;
	return redisAsyncCommand(b->sub.ac, on_sub, &b->sub, "SUBSCRIBE " CHANNEL_ROOM "%s", room) == REDIS_OK ? 0 : -1;
}

int signal_bus_unsubscribe(struct signal_bus *b, const char *room)
{
	if (!signal_bus_up(b))
		return -1;
	return redisAsyncCommand(b->sub.ac, on_sub, &b->sub, "UNSUBSCRIBE " CHANNEL_ROOM "%s", room) == REDIS_OK ? 0
														 : -1;
}

int signal_bus_publish(struct signal_bus *b, const char *room, const char *text)
{
	if (!signal_bus_up(b))
		return -1;
	return redisAsyncCommand(b->cmd.ac, NULL, NULL, "PUBLISH " CHANNEL_ROOM "%s %s", room, text) == REDIS_OK ? 0
														 : -1;
}

int signal_bus_set_member(struct signal_bus *b, const char *room, const char *peer)
{
	if (!signal_bus_up(b))
		return -1;
	if (redisAsyncCommand(b->cmd.ac, NULL, NULL, "HSET " KEY_ROOM "%s %s %s", room, peer, b->id) != REDIS_OK)
		return -1;
	redisAsyncCommand(b->cmd.ac, NULL, NULL, "EXPIRE " KEY_ROOM "%s %d", room, 4 * b->ttl);
	return 0;
}

int signal_bus_del_member(struct signal_bus *b, const char *room, const char *peer)
{
	if (!signal_bus_up(b))
		return -1;
	return redisAsyncCommand(b->cmd.ac, NULL, NULL, "HDEL " KEY_ROOM "%s %s", room, peer) == REDIS_OK ? 0 : -1;
}

/* An HGETALL reply into two string vectors for the callback. */
static void members_from_reply(struct breq *q, const redisReply *rep)
{
	size_t i, n = 0, cap = rep->elements / 2;
	const char **peers = calloc(cap + 1, sizeof(*peers)), **servers = calloc(cap + 1, sizeof(*servers));

	if (peers == NULL || servers == NULL) {
		free(peers);
		free(servers);
		req_finish(q, -1, NULL, NULL, 0);
		return;
	}
	for (i = 0; i + 1 < rep->elements; i += 2) {
		if (rep->element[i]->type != REDIS_REPLY_STRING || rep->element[i + 1]->type != REDIS_REPLY_STRING)
			continue;
		peers[n] = rep->element[i]->str;
		servers[n++] = rep->element[i + 1]->str;
	}
	req_finish(q, 0, peers, servers, n);
	free(peers);
	free(servers);
}

static void on_req_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct breq *q = privdata;
	struct signal_bus *b = q->b;
	redisReply *rep = reply;
	int stage = q->stage++;

	q->inflight--;
	if (rep == NULL && b->cmd.ac == ac)
		bconn_lost(&b->cmd, ac->errstr[0] ? ac->errstr : "connection closed", 1);
	if (q->done) {
		if (q->inflight == 0)
			req_free(q);
		return;
	}
	if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
		if (rep != NULL)
			log_warnx("signaling: redis: %s", rep->str);
		req_finish(q, -1, NULL, NULL, 0);
	} else if (q->kind == REQ_ALIVE) {
		req_finish(q, rep->type == REDIS_REPLY_INTEGER ? rep->integer > 0 : -1, NULL, NULL, 0);
	} else if (q->kind == REQ_JOIN && stage == 0) {
		if (rep->type != REDIS_REPLY_INTEGER || rep->integer != 1)
			req_finish(q, 1, NULL, NULL, 0); /* id taken (HGETALL's reply is dropped) */
	} else if (rep->type != REDIS_REPLY_ARRAY) {
		req_finish(q, -1, NULL, NULL, 0);
	} else {
		members_from_reply(q, rep);
	}
}

/* Sends a command for q; counts it in flight. */
static int req_send(struct breq *q, const char *fmt, const char *a, const char *b2, const char *c)
{
	if (redisAsyncCommand(q->b->cmd.ac, on_req_reply, q, fmt, a, b2, c) != REDIS_OK)
		return -1;
	q->inflight++;
	return 0;
}

static int members_req(struct signal_bus *b, int kind, const char *room, const char *peer,
		       signal_bus_members_cb *cb, void *arg)
{
	struct breq *q;

	if (!signal_bus_up(b) || (q = req_new(b, kind, arg)) == NULL)
		return -1;
	q->mcb = cb;
	if ((kind == REQ_JOIN && req_send(q, "HSETNX " KEY_ROOM "%s %s %s", room, peer, b->id) < 0) ||
	    req_send(q, "HGETALL " KEY_ROOM "%s", room, NULL, NULL) < 0) {
		q->done = 1;
		if (q->inflight == 0)
			req_free(q);
		return -1;
	}
	redisAsyncCommand(b->cmd.ac, NULL, NULL, "EXPIRE " KEY_ROOM "%s %d", room, 4 * b->ttl);
	return 0;
}

int signal_bus_join(struct signal_bus *b, const char *room, const char *peer, signal_bus_members_cb *cb, void *arg)
{
	return members_req(b, REQ_JOIN, room, peer, cb, arg);
}

int signal_bus_members(struct signal_bus *b, const char *room, signal_bus_members_cb *cb, void *arg)
{
	return members_req(b, REQ_MEMBERS, room, NULL, cb, arg);
}

int signal_bus_alive(struct signal_bus *b, const char *server, signal_bus_alive_cb *cb, void *arg)
{
	struct breq *q;

	if (!signal_bus_up(b) || (q = req_new(b, REQ_ALIVE, arg)) == NULL)
		return -1;
	q->acb = cb;
	snprintf(q->server, sizeof(q->server), "%s", server);
	if (req_send(q, "EXISTS " KEY_SERVER "%s", server, NULL, NULL) < 0) {
		q->done = 1;
		req_free(q);
		return -1;
	}
	return 0;
}
