/* signal_session.c -- socket.io sessions: Engine.IO v4 transports and
 * heartbeat, Socket.IO v5 packets routed into the rooms (see
 * signal_session.h and docs/signaling.md, "socket.io").
 *
 * Life of a session: created by the polling handshake (or a WebSocket
 * without sid) -> packets over polling (a held GET is answered when there
 * is output or at the next ping) -> optionally upgraded: a WebSocket with
 * the sid probes ("2probe" / "3probe"; a held GET gets a noop so the client
 * can pause polling), then "5" switches the transport and the queued
 * packets follow over it -> closed by a close packet, a missed pong, the
 * loss of its WebSocket, or a limit. Closing from inside a room send is
 * deferred to the session's flush event, so no room is changed while it is
 * being walked.
 */
#include "signal/signal_session.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_token.h"
#include "log.h"
#include "signal/signal_conn.h"
#include "signal/signal_eio.h"
#include "signal/signal_http.h"
#include "signal/signal_ice.h"
#include "signal/signal_iplimit.h"
#include "signal/signal_room.h"
#include "signal/signal_sio.h"

#define NBUCKETS 1024              /* power of two; sids are random */
#define PING_INTERVAL_MS 25000     /* Engine.IO defaults, capped by the idle timeout */
#define PING_TIMEOUT_MS 20000
#define WS_NORMAL 1000             /* RFC 6455 §7.4.1 */
#define WS_TRY_AGAIN 1013

struct signal_session {
	enum signal_sink_kind kind;        /* SIGNAL_SINK_SIO: first, see signal_conn_send_text */
	struct signal_ctx *ctx;
	char sid[SIGNAL_EIO_SID_LEN + 1];
	struct signal_session *next;       /* hash chain */
	struct signal_conn *poll;          /* held long-polling GET */
	struct signal_conn *ws;            /* WebSocket transport (after the upgrade) */
	struct signal_conn *probe;         /* WebSocket being probed for the upgrade */
	int upgrading;                     /* probe answered: polling gets noops */
	int dead;                          /* to be closed from the flush event */
	const char *dead_why;
	struct evbuffer *outq;             /* polling output: packets separated by 0x1e */
	struct event *flush;               /* answers the held GET, or closes when dead */
	struct event *ping;                /* every ping interval */
	struct event *pong_wait;           /* ping timeout */
	struct event *probe_wait;          /* "5" must follow "3probe" within the ping timeout */
	int connected;                     /* Socket.IO CONNECT to "/" done */
	char token[AUTH_TOKEN_MAX_LEN + 1];/* handshake token (query, or CONNECT auth) */
	int has_token;
	char host[INET6_ADDRSTRLEN + 3];   /* local IP the client reached */
	char remote[INET6_ADDRSTRLEN + 8];
	uint8_t ipkey[SIGNAL_IPLIMIT_KEY_LEN];
	int ip_counted;
	struct signal_rate rate;
	struct signal_peer peer;           /* peer.id is the Socket.IO sid */
	long long join_ack;                /* ack id of a join the rooms have not answered yet, or -1 */
};

struct signal_sessions {
	struct signal_session *bucket[NBUCKETS];
	size_t n;
};

static void session_close(struct signal_session *s, const char *why);

static int ping_interval_ms(const struct config *cfg)
{
	int cap = cfg->signaling_idle_timeout > 0 ? cfg->signaling_idle_timeout * 500 : PING_INTERVAL_MS;

	return cap < PING_INTERVAL_MS ? cap : PING_INTERVAL_MS;
}

static int ping_timeout_ms(const struct config *cfg)
{
	int cap = cfg->signaling_idle_timeout > 0 ? cfg->signaling_idle_timeout * 500 : PING_TIMEOUT_MS;

	return cap < PING_TIMEOUT_MS ? cap : PING_TIMEOUT_MS;
}

struct signal_sessions *signal_sessions_new(void)
{
	return calloc(1, sizeof(struct signal_sessions));
}

size_t signal_sessions_count(const struct signal_ctx *ctx)
{
	return ctx->sessions != NULL ? ctx->sessions->n : 0;
}

static struct signal_session *session_find(struct signal_ctx *ctx, const char *sid)
{
	struct signal_session *s;

	if (sid[0] == '\0')
		return NULL;
	for (s = ctx->sessions->bucket[signal_eio_sid_hash(sid, NBUCKETS)]; s != NULL; s = s->next)
		if (strcmp(s->sid, sid) == 0)
			return s;
	return NULL;
}

/* Unlinks and frees s; the caller has dealt with its connections. */
static void session_free(struct signal_session *s)
{
	struct signal_sessions *t = s->ctx->sessions;
	struct signal_session **pp = &t->bucket[signal_eio_sid_hash(s->sid, NBUCKETS)];

	while (*pp != NULL && *pp != s)
		pp = &(*pp)->next;
	if (*pp == s) {
		*pp = s->next;
		t->n--;
	}
	signal_rooms_leave(s->ctx->rooms, &s->peer);
	if (s->ip_counted)
		signal_iplimit_put(s->ctx->iplimit, s->ipkey);
	if (s->flush != NULL)
		event_free(s->flush);
	if (s->ping != NULL)
		event_free(s->ping);
	if (s->pong_wait != NULL)
		event_free(s->pong_wait);
	if (s->probe_wait != NULL)
		event_free(s->probe_wait);
	if (s->outq != NULL)
		evbuffer_free(s->outq);
	free(s);
}

void signal_sessions_free(struct signal_ctx *ctx)
{
	size_t i;

	if (ctx->sessions == NULL)
		return;
	for (i = 0; i < NBUCKETS; i++) {
		while (ctx->sessions->bucket[i] != NULL) {
			struct signal_session *s = ctx->sessions->bucket[i];

			if (s->poll != NULL)
				signal_conn_set_session(s->poll, NULL);
			if (s->ws != NULL)
				signal_conn_set_session(s->ws, NULL);
			if (s->probe != NULL)
				signal_conn_set_session(s->probe, NULL);
			session_free(s);
		}
	}
	free(ctx->sessions);
	ctx->sessions = NULL;
}

/* ---- output ------------------------------------------------------------ */

/* Closes s later, from its flush event (safe inside a room walk). */
static void session_kill(struct signal_session *s, const char *why)
{
	if (!s->dead) {
		s->dead = 1;
		s->dead_why = why;
	}
	event_active(s->flush, EV_WRITE, 0);
}

/* Sends one Engine.IO packet: over the WebSocket, else queued for polling. */
static void session_send(struct signal_session *s, const char *pkt, size_t len)
{
	if (s->dead)
		return;
	if (s->ws != NULL) {
		signal_conn_send_text(s->ws, pkt, len);
		return;
	}
	if (evbuffer_get_length(s->outq) + len >= (size_t)s->ctx->cfg->signaling_output_limit) {
		log_info("signaling: %s: socket.io client does not poll; dropping it", s->remote);
		session_kill(s, "output limit");
		return;
	}
	if ((evbuffer_get_length(s->outq) > 0 && evbuffer_add(s->outq, "\x1e", 1) < 0) ||
	    evbuffer_add(s->outq, pkt, len) < 0) {
		session_kill(s, "no memory");
		return;
	}
	if (s->poll != NULL)
		event_active(s->flush, EV_WRITE, 0);
}

static void session_send_str(struct signal_session *s, const char *pkt)
{
	session_send(s, pkt, strlen(pkt));
}

/* Answers the held GET with everything queued. */
static void poll_answer(struct signal_session *s)
{
	struct signal_conn *c = s->poll;
	size_t len = evbuffer_get_length(s->outq);

	s->poll = NULL;
	signal_conn_http_reply(c, 200, "text/plain; charset=UTF-8", (const char *)evbuffer_pullup(s->outq, -1),
			       len);
	evbuffer_drain(s->outq, len);
}

static void session_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct signal_session *s = arg;

	if (s->dead)
		session_close(s, s->dead_why);
	else if (s->poll != NULL && evbuffer_get_length(s->outq) > 0)
		poll_answer(s);
}

/* Sends every queued packet over the new WebSocket transport. */
static void session_move_queue(struct signal_session *s)
{
	size_t len = evbuffer_get_length(s->outq), pos = 0, plen;
	const char *buf = (const char *)evbuffer_pullup(s->outq, -1), *pkt;

	while (buf != NULL && signal_eio_payload_next(buf, len, &pos, &pkt, &plen))
		if (plen > 0)
			signal_conn_send_text(s->ws, pkt, plen);
	evbuffer_drain(s->outq, len);
}

/* Ends s: a close packet to whatever still carries it, out of its room,
 * freed. Connections are unbound first so they do not call back. */
static void session_close(struct signal_session *s, const char *why)
{
	log_debug("signaling: %s: socket.io session %.8s closed (%s)", s->remote, s->sid, why);
	if (s->poll != NULL)
		signal_conn_http_reply(s->poll, 200, "text/plain; charset=UTF-8", "1", 1);
	s->poll = NULL;
	if (s->ws != NULL) {
		signal_conn_set_session(s->ws, NULL);
		signal_conn_send_text(s->ws, "1", 1);
		signal_conn_ws_close(s->ws, WS_NORMAL, why);
	}
	if (s->probe != NULL) {
		signal_conn_set_session(s->probe, NULL);
		signal_conn_ws_close(s->probe, WS_NORMAL, why);
	}
	session_free(s);
}

/* ---- heartbeat --------------------------------------------------------- */

static void session_ping_cb(evutil_socket_t fd, short what, void *arg)
{
	struct signal_session *s = arg;
	int ms = ping_timeout_ms(s->ctx->cfg);
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	session_send_str(s, "2");
	if (!evtimer_pending(s->pong_wait, NULL))
		evtimer_add(s->pong_wait, &tv);
}

static void session_pong_wait_cb(evutil_socket_t fd, short what, void *arg)
{
	session_close(arg, "ping timeout");
}

/* A probe that never sent "5": polling goes on (and stops getting noops). */
static void session_probe_wait_cb(evutil_socket_t fd, short what, void *arg)
{
	struct signal_session *s = arg;
	struct signal_conn *c = s->probe;

	if (c == NULL)
		return;
	s->probe = NULL;
	s->upgrading = 0;
	signal_conn_set_session(c, NULL);
	signal_conn_ws_close(c, WS_NORMAL, "upgrade timeout");
}

/* ---- creation ---------------------------------------------------------- */

/* A new session for the client of c (which carries the handshake in
 * target). NULL when over max-connections, signaling-max-conns-per-ip or
 * out of memory. */
static struct signal_session *session_new(struct signal_ctx *ctx, struct signal_conn *c, const char *target)
{
	const struct config *cfg = ctx->cfg;
	int ms = ping_interval_ms(cfg);
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	struct signal_session *s;
	size_t h;

	if ((cfg->max_connections > 0 && ctx->sessions->n >= (size_t)cfg->max_connections) ||
	    (s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->kind = SIGNAL_SINK_SIO;
	s->ctx = ctx;
	s->join_ack = -1;
	snprintf(s->host, sizeof(s->host), "%s", signal_conn_host(c));
	snprintf(s->remote, sizeof(s->remote), "%s", signal_conn_remote(c));
	if (signal_conn_ipkey(c, s->ipkey) == 0) {
		if (signal_iplimit_take(ctx->iplimit, s->ipkey, (unsigned)cfg->signaling_max_conns_per_ip) != 0) {
			log_debug("signaling: %s: socket.io session over signaling-max-conns-per-ip", s->remote);
			free(s);
			return NULL;
		}
		s->ip_counted = 1;
	}
	s->has_token = signal_http_query_param(target, "token", s->token, sizeof(s->token)) == 1;
	signal_rate_init(&s->rate, cfg);
	if (signal_eio_sid_new(s->sid) < 0 || signal_peer_init(&s->peer, s) < 0 ||
	    (s->outq = evbuffer_new()) == NULL || (s->flush = event_new(ctx->base, -1, 0, session_flush_cb, s)) == NULL ||
	    (s->ping = event_new(ctx->base, -1, EV_PERSIST, session_ping_cb, s)) == NULL ||
	    (s->pong_wait = evtimer_new(ctx->base, session_pong_wait_cb, s)) == NULL ||
	    (s->probe_wait = evtimer_new(ctx->base, session_probe_wait_cb, s)) == NULL || event_add(s->ping, &tv) < 0) {
		session_free(s); /* not linked yet: session_free skips the unlink */
		return NULL;
	}
	h = signal_eio_sid_hash(s->sid, NBUCKETS);
	s->next = ctx->sessions->bucket[h];
	ctx->sessions->bucket[h] = s;
	ctx->sessions->n++;
	log_debug("signaling: %s: socket.io session %.8s open", s->remote, s->sid);
	return s;
}

/* ---- Socket.IO --------------------------------------------------------- */

/* Sends a Socket.IO packet (type, main namespace unless nsp, ack id or -1,
 * data or NULL); data is not stolen. */
static void sio_send(struct signal_session *s, enum signal_sio_type type, const char *nsp, long long ack,
		     const json_t *data)
{
	char *pkt = signal_sio_encode(type, nsp, ack, data);

	if (pkt == NULL) {
		session_kill(s, "no memory");
		return;
	}
	session_send_str(s, pkt);
	free(pkt);
}

/* Answers an event: with an ack id the ack [obj], else the event
 * [event, obj] (nothing when event is NULL). Steals obj. */
static void sio_result(struct signal_session *s, long long ack, const char *event, json_t *obj)
{
	json_t *args;

	if (ack < 0 && event == NULL) {
		json_decref(obj);
		return;
	}
	args = obj != NULL ? (ack >= 0 ? json_pack("[o]", obj) : json_pack("[s, o]", event, obj)) : NULL;
	if (args == NULL) {
		session_kill(s, "no memory");
		return;
	}
	sio_send(s, ack >= 0 ? SIGNAL_SIO_ACK : SIGNAL_SIO_EVENT, NULL, ack, args);
	json_decref(args);
}

/* A refusal: the ack [{"error": why}], else the event ["error", {"reason": why}]. */
static void sio_error(struct signal_session *s, long long ack, const char *why)
{
	log_debug("signaling: %s: socket.io: %s", s->remote, why);
	sio_result(s, ack, "error", ack >= 0 ? json_pack("{s:s}", "error", why) : json_pack("{s:s}", "reason", why));
}

/* join: ["join", "room"] or ["join", {"room": ..., "token": ...}]. The token
 * is the payload's, else the one of the handshake (CONNECT auth, query). */
static void sio_join(struct signal_session *s, long long ack, const json_t *args)
{
	json_t *arg = json_array_get(args, 1), *room = json_is_object(arg) ? json_object_get(arg, "room") : arg,
	       *tok = json_is_object(arg) ? json_object_get(arg, "token") : NULL, *ice, *reply;
	char uid[AUTH_TOKEN_USER_MAX + SIGNAL_PEER_ID_LEN + 2];
	const char *why = "", *token = s->has_token ? s->token : NULL;
	int rc, allowed;

	if (!json_is_string(room) || json_string_length(room) == 0 || json_string_length(room) > SIGNAL_ROOM_NAME_MAX ||
	    strlen(json_string_value(room)) != json_string_length(room)) {
		sio_error(s, ack, "missing room");
		return;
	}
	if (tok != NULL)
		token = json_is_string(tok) ? json_string_value(tok) : "";
	allowed = signal_authorise(s->ctx, s->remote, token, json_string_value(room), s->peer.id, uid, sizeof(uid), &why);
	if (allowed < 0) {
		sio_error(s, ack, why);
		return;
	}
	signal_rooms_leave(s->ctx->rooms, &s->peer);
	ice = signal_ice_servers(s->ctx->ice, s->host, allowed ? uid : NULL);
	reply = json_pack("{s:s, s:O, s:o}", "type", "joined", "room", room, "iceServers",
			  ice != NULL ? ice : json_array());
	if (reply == NULL) {
		sio_error(s, ack, "server error");
		return;
	}
	/* The rooms answer with "joined" (id and peers set) now or, across a
	 * fleet, once Redis has: signal_session_room_send turns it into the ack. */
	s->join_ack = ack;
	if ((rc = signal_rooms_join(s->ctx->rooms, &s->peer, json_string_value(room), reply)) != 0) {
		s->join_ack = -1;
		sio_error(s, ack, rc == -1 ? "room full" : rc == -3 ? "too many rooms" : "server error");
		return;
	}
	log_debug("signaling: %s: socket.io peer %s joining room '%s'%s%s", s->remote, s->peer.id,
		  json_string_value(room), allowed ? " with TURN credentials for " : "", allowed ? uid : "");
}

static int reserved_event(const char *name)
{
	/* ours (sent by the server) and Socket.IO's own client-side names */
	static const char *const names[] = {"joined", "peer-joined", "peer-left", "error", "connect",
					    "connect_error", "disconnect", "disconnecting"};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(name, names[i]) == 0)
			return 1;
	return 0;
}

/* An EVENT on "/": join, leave, or an app event forwarded in the room. */
static void sio_event(struct signal_session *s, long long ack, const json_t *args)
{
	const char *name = json_string_value(json_array_get(args, 0)), *why;
	json_t *msg;
	int rc;

	if (!json_is_array(args) || name == NULL) {
		sio_error(s, ack, "missing event name");
	} else if (strcmp(name, "join") == 0) {
		sio_join(s, ack, args);
	} else if (strcmp(name, "leave") == 0) {
		signal_rooms_leave(s->ctx->rooms, &s->peer);
		if (ack >= 0)
			sio_result(s, ack, NULL, json_object());
	} else if (reserved_event(name)) {
		sio_error(s, ack, "reserved event");
	} else if ((msg = signal_sio_to_room(args, &why)) == NULL) {
		sio_error(s, ack, why);
	} else {
		rc = signal_rooms_forward(s->ctx->rooms, &s->peer, msg);
		json_decref(msg);
		if (rc != 0)
			sio_error(s, ack, rc == -1 ? "unknown peer" : rc == -2 ? "not in a room" : "server error");
		else if (ack >= 0)
			sio_result(s, ack, NULL, json_object());
	}
}

/* CONNECT to a namespace: only "/" exists. The auth object may carry a
 * "token" for joins. */
static void sio_connect(struct signal_session *s, const struct signal_sio_pkt *p)
{
	json_t *tok = json_object_get(p->data, "token"), *reply;

	if (strcmp(p->nsp, "/") != 0) {
		reply = json_pack("{s:s}", "message", "Invalid namespace");
		if (reply != NULL)
			sio_send(s, SIGNAL_SIO_CONNECT_ERROR, p->nsp, -1, reply);
		json_decref(reply);
		return;
	}
	if (p->data != NULL && !json_is_object(p->data)) {
		reply = json_pack("{s:s}", "message", "auth must be an object");
		if (reply != NULL)
			sio_send(s, SIGNAL_SIO_CONNECT_ERROR, NULL, -1, reply);
		json_decref(reply);
		return;
	}
	if (json_is_string(tok) && json_string_length(tok) < sizeof(s->token) &&
	    strlen(json_string_value(tok)) == json_string_length(tok)) {
		snprintf(s->token, sizeof(s->token), "%s", json_string_value(tok));
		s->has_token = 1;
	}
	s->connected = 1;
	reply = json_pack("{s:s}", "sid", s->peer.id);
	if (reply != NULL)
		sio_send(s, SIGNAL_SIO_CONNECT, NULL, -1, reply);
	json_decref(reply);
}

/* One Engine.IO message packet's data: a Socket.IO packet. Returns 0, or -1
 * when s was closed. */
static int sio_packet(struct signal_session *s, const char *text, size_t len)
{
	struct signal_sio_pkt p;
	const char *why;
	int rc;

	if (signal_sio_parse(text, len, s->ctx->cfg->signaling_max_json_depth, &p, &why) < 0) {
		sio_error(s, -1, why);
		return 0;
	}
	if ((rc = signal_rate_take(&s->rate, s->ctx->cfg)) == 2) {
		json_decref(p.data);
		session_close(s, "rate limit");
		return -1;
	}
	if (rc == 1) {
		sio_error(s, p.ack, "rate limit");
	} else if (p.type == SIGNAL_SIO_CONNECT) {
		sio_connect(s, &p);
	} else if (strcmp(p.nsp, "/") != 0 || !s->connected) {
		log_debug("signaling: %s: socket.io packet for unconnected namespace %s ignored", s->remote, p.nsp);
	} else if (p.type == SIGNAL_SIO_DISCONNECT) {
		signal_rooms_leave(s->ctx->rooms, &s->peer);
		s->connected = 0;
	} else if (p.type == SIGNAL_SIO_EVENT) {
		sio_event(s, p.ack, p.data);
	} else if (p.type == SIGNAL_SIO_BINARY_EVENT || p.type == SIGNAL_SIO_BINARY_ACK) {
		sio_error(s, p.type == SIGNAL_SIO_BINARY_EVENT ? p.ack : -1, "binary events are not supported");
	}
	/* ACK and CONNECT_ERROR from a client: we never ask for acks */
	json_decref(p.data);
	return 0;
}

/* While a join with an ack id waits: its "joined" (or a fleet-wide "room
 * full") becomes that ack. Returns 1 when msg was the answer. */
static int join_answer(struct signal_session *s, json_t *msg)
{
	const char *type = json_string_value(json_object_get(msg, "type"));
	const char *reason = json_string_value(json_object_get(msg, "reason"));
	long long ack = s->join_ack;
	json_t *body;

	if (type == NULL)
		return 0;
	if (strcmp(type, "joined") == 0) {
		s->join_ack = -1;
		if ((body = json_copy(msg)) != NULL)
			json_object_del(body, "type");
		sio_result(s, ack, "joined", body);
		return 1;
	}
	if (strcmp(type, "error") == 0 && reason != NULL && strcmp(reason, "room full") == 0) {
		s->join_ack = -1;
		sio_error(s, ack, reason);
		return 1;
	}
	return 0;
}

void signal_session_room_send(void *sess, const char *text, size_t len)
{
	struct signal_session *s = sess;
	json_t *msg, *args;

	if (!s->connected || s->dead)
		return;
	msg = json_loadb(text, len, 0, NULL);
	if (msg != NULL && s->join_ack >= 0 && join_answer(s, msg)) {
		json_decref(msg);
		return;
	}
	args = msg != NULL ? signal_sio_from_room(msg) : NULL;
	if (args != NULL)
		sio_send(s, SIGNAL_SIO_EVENT, NULL, -1, args);
	json_decref(args);
	json_decref(msg);
}

/* ---- Engine.IO --------------------------------------------------------- */

/* One Engine.IO packet from the client over its transport. Returns 0, or -1
 * when s was closed. */
static int eio_packet(struct signal_session *s, const char *pkt, size_t len)
{
	char pong[8];

	if (len == 0) {
		session_close(s, "empty packet");
		return -1;
	}
	/* Socket.IO packets are counted in sio_packet; pongs are the server's
	 * own pace; anything else a client could repeat counts here too. */
	if (pkt[0] != SIGNAL_EIO_MESSAGE && pkt[0] != SIGNAL_EIO_PONG && pkt[0] != SIGNAL_EIO_CLOSE) {
		int rc = signal_rate_take(&s->rate, s->ctx->cfg);

		if (rc == 2) {
			session_close(s, "rate limit");
			return -1;
		}
		if (rc == 1)
			return 0;
	}
	switch (pkt[0]) {
	case SIGNAL_EIO_CLOSE:
		session_close(s, "closed by the client");
		return -1;
	case SIGNAL_EIO_PING: /* not in v4 (the server pings), answered anyway */
		snprintf(pong, sizeof(pong), "3%.*s", len - 1 < 5 ? (int)len - 1 : 5, pkt + 1);
		session_send_str(s, pong);
		return 0;
	case SIGNAL_EIO_PONG:
		evtimer_del(s->pong_wait);
		return 0;
	case SIGNAL_EIO_MESSAGE:
		return sio_packet(s, pkt + 1, len - 1);
	case SIGNAL_EIO_UPGRADE:
	case SIGNAL_EIO_NOOP:
	case 'b': /* a binary attachment over polling: dropped */
		return 0;
	default:
		session_close(s, "unknown packet type");
		return -1;
	}
}

/* Answers c with an Engine.IO error object (HTTP 400). */
static void eio_http_error(struct signal_conn *c, int code, const char *message)
{
	char body[128];
	int n = snprintf(body, sizeof(body), "{\"code\":%d,\"message\":\"%s\"}", code, message);

	signal_conn_http_reply(c, 400, "application/json", body, (size_t)n);
}

static int eio_error_code(const char *why)
{
	if (strcmp(why, "transport unknown") == 0)
		return 0;
	if (strcmp(why, "session ID unknown") == 0)
		return 1;
	if (strcmp(why, "unsupported protocol version") == 0)
		return 5;
	return 3; /* bad request */
}

static void eio_handshake(struct signal_ctx *ctx, struct signal_conn *c, const char *target)
{
	struct signal_session *s = session_new(ctx, c, target);
	char open[256];
	int n;

	if (s == NULL) {
		signal_conn_http_reply(c, 503, "text/plain; charset=utf-8", "503 Service Unavailable\n", 24);
		return;
	}
	n = signal_eio_open_packet(open, sizeof(open), s->sid, 1, ping_interval_ms(ctx->cfg),
				   ping_timeout_ms(ctx->cfg), (size_t)ctx->cfg->signaling_max_message);
	signal_conn_http_reply(c, 200, "text/plain; charset=UTF-8", open, n > 0 ? (size_t)n : 0);
}

void signal_session_get(struct signal_ctx *ctx, struct signal_conn *c, const char *target)
{
	struct signal_eio_query q;
	struct signal_session *s;
	const char *why;

	if (signal_eio_query_parse(target, &q, &why) < 0) {
		eio_http_error(c, eio_error_code(why), why);
	} else if (q.transport != SIGNAL_EIO_POLLING) {
		eio_http_error(c, 3, "bad request");
	} else if (q.sid[0] == '\0') {
		eio_handshake(ctx, c, target);
	} else if ((s = session_find(ctx, q.sid)) == NULL || s->dead) {
		eio_http_error(c, 1, "session ID unknown");
	} else if (s->ws != NULL) {
		eio_http_error(c, 3, "bad request");
	} else if (s->poll != NULL) {
		eio_http_error(c, 3, "bad request");
		session_close(s, "two polls at once");
	} else if (s->upgrading) {
		signal_conn_http_reply(c, 200, "text/plain; charset=UTF-8", "6", 1);
	} else {
		s->poll = c;
		if (evbuffer_get_length(s->outq) > 0)
			poll_answer(s);
		else
			signal_conn_hold(c, s);
	}
}

void signal_session_post(struct signal_ctx *ctx, struct signal_conn *c, const char *target, const char *body,
			 size_t len)
{
	struct signal_eio_query q;
	struct signal_session *s;
	const char *why, *pkt;
	size_t pos = 0, plen;

	if (signal_eio_query_parse(target, &q, &why) < 0) {
		eio_http_error(c, eio_error_code(why), why);
		return;
	}
	if (q.transport != SIGNAL_EIO_POLLING || q.sid[0] == '\0' || len == 0) {
		eio_http_error(c, 3, "bad request");
		return;
	}
	if ((s = session_find(ctx, q.sid)) == NULL || s->dead || s->ws != NULL) {
		eio_http_error(c, 1, "session ID unknown");
		return;
	}
	/* body lives in c's input buffer, which answering c drains: reply last */
	while (signal_eio_payload_next(body, len, &pos, &pkt, &plen))
		if (eio_packet(s, pkt, plen) < 0)
			break;
	signal_conn_http_reply(c, 200, "text/html", "ok", 2);
}

int signal_session_ws_check(struct signal_ctx *ctx, const char *target)
{
	struct signal_eio_query q;
	struct signal_session *s;
	const char *why;

	if (signal_eio_query_parse(target, &q, &why) < 0 || q.transport != SIGNAL_EIO_WEBSOCKET)
		return 400;
	if (q.sid[0] == '\0')
		return 0;
	if ((s = session_find(ctx, q.sid)) == NULL || s->dead || s->ws != NULL || s->probe != NULL)
		return 400;
	return 0;
}

void signal_session_ws_attach(struct signal_ctx *ctx, struct signal_conn *c, const char *target)
{
	struct signal_eio_query q;
	struct signal_session *s;
	const char *why;
	char open[256];
	int n;

	if (signal_eio_query_parse(target, &q, &why) < 0) {
		signal_conn_ws_close(c, WS_TRY_AGAIN, why);
		return;
	}
	if (q.sid[0] != '\0') {
		if ((s = session_find(ctx, q.sid)) == NULL || s->probe != NULL || s->ws != NULL) {
			signal_conn_ws_close(c, WS_NORMAL, "session ID unknown");
			return;
		}
		s->probe = c;
		signal_conn_set_session(c, s);
		return;
	}
	if ((s = session_new(ctx, c, target)) == NULL) {
		signal_conn_ws_close(c, WS_TRY_AGAIN, "too many sessions");
		return;
	}
	s->ws = c;
	signal_conn_set_session(c, s);
	n = signal_eio_open_packet(open, sizeof(open), s->sid, 0, ping_interval_ms(ctx->cfg),
				   ping_timeout_ms(ctx->cfg), (size_t)ctx->cfg->signaling_max_message);
	if (n > 0)
		signal_conn_send_text(c, open, (size_t)n);
}

void signal_session_ws_text(struct signal_session *s, struct signal_conn *c, const char *data, size_t len)
{
	if (s->dead)
		return;
	if (c == s->ws) {
		eio_packet(s, data, len);
		return;
	}
	if (c != s->probe)
		return;
	if (len == 6 && memcmp(data, "2probe", 6) == 0) {
		int ms = ping_timeout_ms(s->ctx->cfg);
		struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

		signal_conn_send_text(c, "3probe", 6);
		s->upgrading = 1;
		evtimer_add(s->probe_wait, &tv);
		if (s->poll != NULL) { /* let the client finish its poll and pause */
			struct signal_conn *p = s->poll;

			s->poll = NULL;
			signal_conn_http_reply(p, 200, "text/plain; charset=UTF-8", "6", 1);
		}
	} else if (len == 1 && data[0] == SIGNAL_EIO_UPGRADE && s->upgrading) {
		evtimer_del(s->probe_wait);
		s->ws = c;
		s->probe = NULL;
		s->upgrading = 0;
		if (s->poll != NULL) {
			struct signal_conn *p = s->poll;

			s->poll = NULL;
			signal_conn_http_reply(p, 200, "text/plain; charset=UTF-8", "6", 1);
		}
		session_move_queue(s);
		log_debug("signaling: %s: socket.io session %.8s upgraded to WebSocket", s->remote, s->sid);
	}
}

void signal_session_conn_gone(struct signal_session *s, struct signal_conn *c)
{
	if (c == s->poll) {
		s->poll = NULL;
	} else if (c == s->probe) {
		s->probe = NULL;
		s->upgrading = 0;
		evtimer_del(s->probe_wait);
	} else if (c == s->ws) {
		s->ws = NULL;
		session_close(s, "WebSocket closed");
	}
}
