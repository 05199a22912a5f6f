/* signal_conn.c -- a signaling client connection: HTTP/1.1 request head
 * (RFC 9112), static page and /ice-servers, WebSocket upgrade (RFC 6455
 * §4.2) and the JSON room protocol of docs/signaling.md over wslay.
 *
 * Life of a connection: HTTP (reading the head, 10 s deadline) -> either a
 * response and CLOSING, or WS (wslay owns the framing: masking checks and
 * 1002, max message length and 1009, ping replies, close handshake) ->
 * CLOSING (output drained, write side shut, input discarded for up to 2 s
 * so the close frame is not lost to a TCP reset) -> freed. A connection is
 * only freed from its own event callbacks; messages for other connections
 * are queued and sent from their flush event, so nothing is re-entered.
 *
 * /socket.io/ requests go to signal_session.c: a POST first reads its body
 * (BODY), a long-polling GET may be held for its session (HELD) until the
 * session answers it, and a WebSocket bound to a session hands its text
 * messages to the session instead of the JSON protocol.
 */
#include "signal/signal_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <wslay/wslay.h>

#include "auth/auth_token.h"
#include "log.h"
#include "signal/signal_eio.h"
#include "signal/signal_http.h"
#include "signal/signal_ice.h"
#include "signal/signal_iplimit.h"
#include "signal/signal_room.h"
#include "signal/signal_session.h"

#define HEAD_TIMEOUT_SEC 10          /* to send a whole request head */
#define LINGER_SEC 2                 /* CLOSING: wait for the client's FIN */
#define MAX_FILE (4 * 1024 * 1024)   /* bytes of one static file */
#define ABUSE_FACTOR 3               /* messages/s over rate*3: close 1008 */

/* CONN_BODY: reading a socket.io POST body; CONN_HELD: a socket.io
 * long-polling GET waiting for data of its session. */
enum conn_state { CONN_HTTP, CONN_BODY, CONN_HELD, CONN_WS, CONN_CLOSING };

struct signal_conn {
	enum signal_sink_kind kind;        /* SIGNAL_SINK_WS: first, see signal_conn_send_text */
	struct signal_ctx *ctx;
	struct bufferevent *bev;
	enum conn_state state;
	int tls;
	char host[INET6_ADDRSTRLEN + 3];   /* local IP the client reached, IPv6 bracketed */
	char remote[INET6_ADDRSTRLEN + 8]; /* for logs */
	wslay_event_context_ptr ws;
	struct signal_peer peer;
	uint8_t ipkey[SIGNAL_IPLIMIT_KEY_LEN]; /* source address, counted in ctx->iplimit */
	int ip_counted;
	struct event *timer;               /* HTTP: none; WS: ping/idle tick; CLOSING: linger */
	struct event *flush;               /* sends what wslay has queued */
	struct timespec last_rx;
	struct signal_rate rate;
	struct signal_session *sio;        /* socket.io session this connection carries, or NULL */
	char *post_target;                 /* CONN_BODY: the request target */
	char *cors;                        /* socket.io: Access-Control-Allow-Origin header lines, or NULL */
	size_t post_len;                   /* CONN_BODY: Content-Length */
	struct signal_conn *prev, *next;
};

static void conn_begin_close(struct signal_conn *c);
static void http_event(struct bufferevent *bev, short what, void *arg);

static double now_sec(struct timespec *ts)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	return (double)ts->tv_sec + ts->tv_nsec / 1e9;
}

static double ts_sec(const struct timespec *ts)
{
	return (double)ts->tv_sec + ts->tv_nsec / 1e9;
}

/* Tells c's socket.io session (if any) that c no longer carries it. */
static void conn_detach(struct signal_conn *c)
{
	struct signal_session *s = c->sio;

	if (s != NULL) {
		c->sio = NULL;
		signal_session_conn_gone(s, c);
	}
}

static void conn_free(struct signal_conn *c)
{
	struct signal_ctx *ctx = c->ctx;

	conn_detach(c);
	free(c->post_target);
	free(c->cors);
	signal_rooms_leave(ctx->rooms, &c->peer);
	if (c->ip_counted)
		signal_iplimit_put(ctx->iplimit, c->ipkey);
	if (c->timer != NULL)
		event_free(c->timer);
	if (c->flush != NULL)
		event_free(c->flush);
	if (c->ws != NULL)
		wslay_event_context_free(c->ws);
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		ctx->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	ctx->nconns--;
	free(c);
}

void signal_conn_free_all(struct signal_ctx *ctx)
{
	while (ctx->conns != NULL)
		conn_free(ctx->conns);
}

/* ---- CLOSING ---------------------------------------------------------- */

static void closing_read(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);

	evbuffer_drain(in, evbuffer_get_length(in));
}

static void closing_write(struct bufferevent *bev, void *arg)
{
	struct signal_conn *c = arg;

	if (c->tls) {
		conn_free(c); /* no half-close over TLS: the data is out */
		return;
	}
	shutdown(bufferevent_getfd(bev), SHUT_WR);
}

static void closing_event(struct bufferevent *bev, short what, void *arg)
{
	if (what != BEV_EVENT_CONNECTED)
		conn_free(arg);
}

static void closing_timeout(evutil_socket_t fd, short what, void *arg)
{
	conn_free(arg);
}

/* Stops the protocol: leaves the room, sends what is queued, then frees the
 * connection when the client closes or LINGER_SEC has passed. */
static void conn_begin_close(struct signal_conn *c)
{
	struct timeval tv = {LINGER_SEC, 0};

	if (c->state == CONN_CLOSING)
		return;
	c->state = CONN_CLOSING;
	conn_detach(c);
	signal_rooms_leave(c->ctx->rooms, &c->peer);
	if (c->flush != NULL)
		event_del(c->flush);
	if (c->timer != NULL)
		event_free(c->timer);
	c->timer = evtimer_new(c->ctx->base, closing_timeout, c);
	if (c->timer != NULL)
		evtimer_add(c->timer, &tv);
	bufferevent_set_timeouts(c->bev, NULL, NULL);
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	bufferevent_setcb(c->bev, closing_read, closing_write, closing_event, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	closing_read(c->bev, c);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		closing_write(c->bev, c); /* may free c */
}

/* ---- HTTP responses ---------------------------------------------------- */

/* Writes a whole response (Connection: close) and starts closing. body may
 * be NULL; with head_only the body is left out but its length is sent. */
static void http_respond(struct signal_conn *c, int status, const char *ctype, const void *body, size_t len,
			 const char *extra, int head_only)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	evbuffer_add_printf(out,
			    "HTTP/1.1 %d %s\r\nServer: turnstone\r\nConnection: close\r\n"
			    "Content-Length: %zu\r\nCache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n"
			    "%s%s%s%s\r\n",
			    status, signal_http_reason(status), len, ctype != NULL ? "Content-Type: " : "",
			    ctype != NULL ? ctype : "", ctype != NULL ? "\r\n" : "", extra != NULL ? extra : "");
	if (body != NULL && !head_only)
		evbuffer_add(out, body, len);
	log_debug("signaling: %s: HTTP %d", c->remote, status);
	conn_begin_close(c);
}

static void http_error(struct signal_conn *c, int status, const char *extra)
{
	char body[96];
	int n = snprintf(body, sizeof(body), "%d %s\n", status, signal_http_reason(status));

	http_respond(c, status, "text/plain; charset=utf-8", body, (size_t)n, extra, 0);
}

/* Reads a regular file (no symlink games: fstat after open) into memory. */
static char *read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	struct stat st;
	char *buf = NULL;
	size_t got = 0;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > MAX_FILE)
		goto out;
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL)
		goto out;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n <= 0) {
			free(buf);
			buf = NULL;
			goto out;
		}
		got += (size_t)n;
	}
	*len = got;
out:
	close(fd);
	return buf;
}

static void http_file(struct signal_conn *c, const struct signal_http_req *r, int head_only)
{
	const char *root = c->ctx->root;
	char path[4096];
	const char *ctype;
	size_t len = 0;
	char *body;

	if (root == NULL || (ctype = signal_http_map_file(root, r->target, path, sizeof(path))) == NULL ||
	    (body = read_file(path, &len)) == NULL) {
		http_error(c, 404, NULL);
		return;
	}
	http_respond(c, 200, ctype, body, len, NULL, head_only);
	free(body);
}

/* Whether a client gets TURN credentials (docs/signaling.md, "Who gets TURN
 * credentials"). With signaling-auth-secret only with a valid token (for
 * room, or any room when room is NULL); its user id and the peer id make
 * the REST user id "<user>.<peer id>", so session kill and logs can tie a
 * relay to a signaling client. Without a secret everyone when
 * signaling-open-credentials is set (user id: the peer id), else no one.
 * Returns 1 with uid filled, 0 for STUN only, -1 (refused) with *why set. */
int signal_authorise(struct signal_ctx *ctx, const char *remote, const char *token, const char *room,
		     const char *peer_id, char *uid, size_t uidlen, const char **why)
{
	const struct config *cfg = ctx->cfg;
	struct auth_token t;
	int rc;

	if (cfg->signaling_auth_secret == NULL) {
		if (!cfg->signaling_open_credentials)
			return 0;
		snprintf(uid, uidlen, "%s", peer_id);
		return 1;
	}
	if (token == NULL) {
		*why = "token required";
		return -1;
	}
	rc = auth_token_check(cfg->signaling_auth_secret, token, room, (uint64_t)time(NULL), &t);
	if (rc != AUTH_TOKEN_OK) {
		*why = auth_token_reason(rc);
		log_debug("signaling: %s: %s", remote, *why);
		return -1;
	}
	snprintf(uid, uidlen, "%s.%s", t.user, peer_id);
	return 1;
}

static void http_ice_servers(struct signal_conn *c, const struct signal_http_req *r, int head_only)
{
	const struct config *cfg = c->ctx->cfg;
	const char *origin = signal_http_header(r, "Origin"), *token, *why = "";
	char uid[AUTH_TOKEN_USER_MAX + SIGNAL_PEER_ID_LEN + 2], qtoken[AUTH_TOKEN_MAX_LEN + 1], body[96];
	struct signal_peer tmp;
	json_t *list, *doc;
	char *text;
	int q, allowed;

	/* Browsers send Origin on cross-origin requests: refuse other sites'
	 * pages (other clients can set any Origin; the token is the real gate). */
	if (cfg->n_signaling_origin > 0 && origin != NULL &&
	    !signal_http_origin_allowed(origin, cfg->signaling_origin, cfg->n_signaling_origin)) {
		log_info("signaling: %s: /ice-servers from origin '%s' refused", c->remote, origin);
		http_error(c, 403, NULL);
		return;
	}
	if ((q = signal_http_query_param(r->target, "token", qtoken, sizeof(qtoken))) > 0)
		token = qtoken;
	else if (q < 0)
		token = "";  /* badly escaped or too long: malformed */
	else
		token = signal_http_bearer(r);
	if (signal_peer_init(&tmp, NULL) < 0) {
		http_error(c, 500, NULL);
		return;
	}
	if ((allowed = signal_authorise(c->ctx, c->remote, token, NULL, tmp.id, uid, sizeof(uid), &why)) < 0) {
		int n = snprintf(body, sizeof(body), "{\"error\":\"%s\"}", why);

		http_respond(c, 401, "application/json", body, (size_t)n,
			     "WWW-Authenticate: Bearer realm=\"turnstone\"\r\n", head_only);
		return;
	}
	list = signal_ice_servers(c->ctx->ice, c->host, allowed ? uid : NULL);
	doc = list != NULL ? json_pack("{s:o}", "iceServers", list) : NULL;
	text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	if (text == NULL) {
		http_error(c, 500, NULL);
		return;
	}
	http_respond(c, 200, "application/json", text, strlen(text), NULL, head_only);
	free(text);
}

/* ---- WebSocket -------------------------------------------------------- */

static ssize_t ws_recv_cb(wslay_event_context_ptr ws, uint8_t *buf, size_t len, int flags, void *arg)
{
	struct signal_conn *c = arg;
	int n = evbuffer_remove(bufferevent_get_input(c->bev), buf, len);

	if (n <= 0) {
		wslay_event_set_error(ws, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	return n;
}

static ssize_t ws_send_cb(wslay_event_context_ptr ws, const uint8_t *data, size_t len, int flags, void *arg)
{
	struct signal_conn *c = arg;

	if (evbuffer_get_length(bufferevent_get_output(c->bev)) > (size_t)c->ctx->cfg->signaling_output_limit) {
		log_info("signaling: %s: client does not read; dropping it", c->remote);
		wslay_event_set_error(ws, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	if (bufferevent_write(c->bev, data, len) < 0) {
		wslay_event_set_error(ws, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return (ssize_t)len;
}

/* Sends what wslay has queued; begins closing when wslay is done (close
 * handshake finished or sent) or on a write error. */
static void ws_flush(struct signal_conn *c)
{
	if (c->state != CONN_WS)
		return;
	if (wslay_event_send(c->ws) < 0 || wslay_event_get_close_sent(c->ws) ||
	    (!wslay_event_want_read(c->ws) && !wslay_event_want_write(c->ws)))
		conn_begin_close(c);
}

static void ws_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	ws_flush(arg);
}

void signal_conn_send_text(void *conn, const char *text, size_t len)
{
	struct signal_conn *c = conn;
	struct wslay_event_msg m = {WSLAY_TEXT_FRAME, (const uint8_t *)text, len};

	if (c != NULL && c->kind == SIGNAL_SINK_SIO) {
		signal_session_room_send(conn, text, len);
		return;
	}
	if (c == NULL || c->state != CONN_WS)
		return;
	if (wslay_event_queue_msg(c->ws, &m) == 0)
		event_active(c->flush, EV_WRITE, 0);
}

static void ws_close(struct signal_conn *c, uint16_t code, const char *reason)
{
	log_debug("signaling: %s: closing with %u (%s)", c->remote, code, reason);
	wslay_event_queue_close(c->ws, code, (const uint8_t *)reason, strlen(reason));
	event_active(c->flush, EV_WRITE, 0);
}

void signal_conn_ws_close(struct signal_conn *c, uint16_t code, const char *reason)
{
	if (c->state == CONN_WS)
		ws_close(c, code, reason);
}

static void ws_error(struct signal_conn *c, const char *reason)
{
	json_t *msg = json_pack("{s:s, s:s}", "type", "error", "reason", reason);
	char *text = msg != NULL ? json_dumps(msg, JSON_COMPACT) : NULL;

	if (text != NULL)
		signal_conn_send_text(c, text, strlen(text));
	free(text);
	json_decref(msg);
}

void signal_rate_init(struct signal_rate *r, const struct config *cfg)
{
	memset(r, 0, sizeof(*r));
	r->tokens = cfg->signaling_rate > 0 ? cfg->signaling_rate : 50;
	now_sec(&r->at);
}

int signal_rate_take(struct signal_rate *r, const struct config *cfg)
{
	double rate = cfg->signaling_rate > 0 ? cfg->signaling_rate : 50;
	struct timespec now;
	double t = now_sec(&now);

	r->tokens += (t - ts_sec(&r->at)) * rate;
	if (r->tokens > rate)
		r->tokens = rate;
	r->at = now;
	if (now.tv_sec != r->window_start) {
		r->window_start = now.tv_sec;
		r->window_count = 0;
	}
	if (++r->window_count > ABUSE_FACTOR * rate)
		return 2;
	if (r->tokens < 1)
		return 1;
	r->tokens -= 1;
	return 0;
}

/* signaling-rate for one WebSocket client: 0 to go on, else refused (an
 * error sent, or the connection closed with 1008 for abuse). */
static int ws_rate_limit(struct signal_conn *c)
{
	int rc = signal_rate_take(&c->rate, c->ctx->cfg);

	if (rc == 2)
		ws_close(c, WSLAY_CODE_POLICY_VIOLATION, "rate limit");
	else if (rc == 1)
		ws_error(c, "rate limit");
	return rc;
}

static void ws_join(struct signal_conn *c, json_t *msg)
{
	json_t *room = json_object_get(msg, "room"), *token = json_object_get(msg, "token"), *ice, *reply;
	char uid[AUTH_TOKEN_USER_MAX + SIGNAL_PEER_ID_LEN + 2];
	const char *why = "";
	int rc, allowed;

	if (!json_is_string(room) || json_string_length(room) == 0 ||
	    json_string_length(room) > SIGNAL_ROOM_NAME_MAX || strlen(json_string_value(room)) != json_string_length(room)) {
		ws_error(c, "missing room");
		return;
	}
	/* Refused: an error, and the client stays where it was. */
	allowed = signal_authorise(c->ctx, c->remote, json_is_string(token) ? json_string_value(token) : token != NULL ? "" : NULL,
				 json_string_value(room), c->peer.id, uid, sizeof(uid), &why);
	if (allowed < 0) {
		ws_error(c, why);
		return;
	}
	signal_rooms_leave(c->ctx->rooms, &c->peer); /* one room at a time: join again = move */
	ice = signal_ice_servers(c->ctx->ice, c->host, allowed ? uid : NULL);
	reply = json_pack("{s:s, s:O, s:o}", "type", "joined", "room", room, "iceServers",
			  ice != NULL ? ice : json_array());
	if (reply == NULL) {
		ws_error(c, "server error");
		return;
	}
	/* The rooms send "joined" (with id and peers) now or, across a fleet,
	 * when Redis has answered. */
	if ((rc = signal_rooms_join(c->ctx->rooms, &c->peer, json_string_value(room), reply)) != 0) {
		ws_error(c, rc == -1 ? "room full" : rc == -3 ? "too many rooms" : "server error");
		return;
	}
	log_debug("signaling: %s: peer %s joining room '%s'%s%s", c->remote, c->peer.id, json_string_value(room),
		  allowed ? " with TURN credentials for " : "", allowed ? uid : "");
}

static int reserved_type(const char *type)
{
	static const char *const ours[] = {"joined", "peer-joined", "peer-left", "error"};
	size_t i;

	for (i = 0; i < sizeof(ours) / sizeof(ours[0]); i++)
		if (strcmp(type, ours[i]) == 0)
			return 1;
	return 0;
}

/* One text message from the client (docs/signaling.md). */
static void ws_text(struct signal_conn *c, const uint8_t *data, size_t len)
{
	json_error_t jerr;
	json_t *msg, *type;
	const char *t;
	int rc;

	if (ws_rate_limit(c) != 0)
		return;
	if (signal_json_too_deep((const char *)data, len, c->ctx->cfg->signaling_max_json_depth)) {
		ws_error(c, "too deep");
		return;
	}
	if ((msg = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
		ws_error(c, "invalid JSON");
		return;
	}
	type = json_object_get(msg, "type");
	if (!json_is_object(msg)) {
		ws_error(c, "not a JSON object");
	} else if (!json_is_string(type) || json_string_length(type) == 0) {
		ws_error(c, "missing type");
	} else if (strcmp((t = json_string_value(type)), "join") == 0) {
		ws_join(c, msg);
	} else if (strcmp(t, "leave") == 0) {
		signal_rooms_leave(c->ctx->rooms, &c->peer);
	} else if (reserved_type(t)) {
		ws_error(c, "reserved type");
	} else if ((rc = signal_rooms_forward(c->ctx->rooms, &c->peer, msg)) != 0) {
		ws_error(c, rc == -1   ? "unknown peer"
			    : rc == -2 ? "not in a room"
			    : rc == -4 ? "peer unreachable"
				       : "server error");
	}
	json_decref(msg);
}

static void ws_msg_cb(wslay_event_context_ptr ws, const struct wslay_event_on_msg_recv_arg *arg, void *user)
{
	struct signal_conn *c = user;

	if (c->state != CONN_WS || wslay_event_get_close_sent(ws))
		return;
	if (c->sio != NULL) {
		/* binary frames are attachments of a refused BINARY_EVENT: dropped */
		if (arg->opcode == WSLAY_TEXT_FRAME)
			signal_session_ws_text(c->sio, c, (const char *)arg->msg, arg->msg_length);
		return;
	}
	if (arg->opcode == WSLAY_TEXT_FRAME)
		ws_text(c, arg->msg, arg->msg_length);
	else if (arg->opcode == WSLAY_BINARY_FRAME)
		ws_close(c, WSLAY_CODE_UNSUPPORTED_DATA, "binary frames are not supported");
}

static void ws_read(struct bufferevent *bev, void *arg)
{
	struct signal_conn *c = arg;
	struct timespec ts;

	now_sec(&ts);
	c->last_rx = ts;
	if (wslay_event_recv(c->ws) < 0) {
		conn_begin_close(c);
		return;
	}
	ws_flush(c);
}

static void ws_event(struct bufferevent *bev, short what, void *arg)
{
	struct signal_conn *c = arg;

	if (what == BEV_EVENT_CONNECTED)
		return;
	log_debug("signaling: %s: connection %s", c->remote, (what & BEV_EVENT_EOF) ? "closed" : "failed");
	conn_free(c);
}

/* Every idle/2 seconds: close an idle client, else ping it (RFC 6455 §5.5.2). */
static void ws_tick(evutil_socket_t fd, short what, void *arg)
{
	struct signal_conn *c = arg;
	struct timespec now;
	int idle = c->ctx->cfg->signaling_idle_timeout;
	struct wslay_event_msg ping = {WSLAY_PING, (const uint8_t *)"ts", 2};

	if (now_sec(&now) - ts_sec(&c->last_rx) >= idle) {
		ws_close(c, WSLAY_CODE_GOING_AWAY, "idle timeout");
		return;
	}
	if (wslay_event_queue_msg(c->ws, &ping) == 0)
		event_active(c->flush, EV_WRITE, 0);
}

static int ws_start(struct signal_conn *c)
{
	static const struct wslay_event_callbacks cbs = {
		.recv_callback = ws_recv_cb,
		.send_callback = ws_send_cb,
		.on_msg_recv_callback = ws_msg_cb,
	};
	int idle = c->ctx->cfg->signaling_idle_timeout;
	struct timeval tv = {idle > 1 ? idle / 2 : 1, idle > 1 ? (idle % 2) * 500000 : 0};

	if (wslay_event_context_server_init(&c->ws, &cbs, c) != 0)
		return -1;
	wslay_event_config_set_max_recv_msg_length(c->ws, (uint64_t)c->ctx->cfg->signaling_max_message);
	if (signal_peer_init(&c->peer, c) < 0)
		return -1;
	if ((c->flush = event_new(c->ctx->base, -1, 0, ws_flush_cb, c)) == NULL)
		return -1;
	if (idle > 0 && ((c->timer = event_new(c->ctx->base, -1, EV_PERSIST, ws_tick, c)) == NULL ||
			 event_add(c->timer, &tv) < 0))
		return -1;
	signal_rate_init(&c->rate, c->ctx->cfg);
	c->last_rx = c->rate.at;
	c->state = CONN_WS;
	bufferevent_set_timeouts(c->bev, NULL, NULL);
	bufferevent_setcb(c->bev, ws_read, NULL, ws_event, c);
	return 0;
}

static void http_upgrade(struct signal_conn *c, const struct signal_http_req *r)
{
	const struct config *cfg = c->ctx->cfg;
	size_t plen = strcspn(r->target, "?");
	char accept[29];
	int status, sio = cfg->signaling_socketio && signal_eio_is_path(r->target);

	if (!sio && (plen != 3 || strncmp(r->target, "/ws", 3) != 0)) {
		http_error(c, 404, NULL);
		return;
	}
	status = signal_http_ws_check(r, cfg->signaling_origin, cfg->n_signaling_origin, accept);
	if (status == 0 && sio)
		status = signal_session_ws_check(c->ctx, r->target);
	if (status != 0) {
		if (status == 403)
			log_info("signaling: %s: WebSocket from origin '%s' refused", c->remote,
				 signal_http_header(r, "Origin") ? signal_http_header(r, "Origin") : "(none)");
		http_error(c, status, status == 426 ? "Sec-WebSocket-Version: 13\r\n" : NULL);
		return;
	}
	if (ws_start(c) < 0) {
		http_error(c, 503, NULL);
		return;
	}
	evbuffer_add_printf(bufferevent_get_output(c->bev),
			    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
			    "Sec-WebSocket-Accept: %s\r\n\r\n",
			    accept);
	log_debug("signaling: %s: WebSocket open, peer %s", c->remote, c->peer.id);
	if (sio)
		signal_session_ws_attach(c->ctx, c, r->target);
	if (c->state == CONN_WS && evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		ws_read(c->bev, c); /* frames sent right behind the head */
}

/* ---- socket.io long-polling (the sessions are in signal_session.c) ---- */

void signal_conn_http_reply(struct signal_conn *c, int status, const char *ctype, const char *body, size_t len)
{
	c->sio = NULL;
	http_respond(c, status, ctype, body, len, c->cors, 0);
}

static void held_read(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);

	evbuffer_drain(in, evbuffer_get_length(in)); /* no pipelining behind a poll */
}

static void held_event(struct bufferevent *bev, short what, void *arg)
{
	if (what != BEV_EVENT_CONNECTED)
		conn_free(arg); /* the client gave up the poll: conn_free tells the session */
}

void signal_conn_hold(struct signal_conn *c, struct signal_session *s)
{
	c->state = CONN_HELD;
	c->sio = s;
	bufferevent_set_timeouts(c->bev, NULL, NULL);
	bufferevent_setcb(c->bev, held_read, NULL, held_event, c);
}

void signal_conn_set_session(struct signal_conn *c, struct signal_session *s)
{
	c->sio = s;
}

const char *signal_conn_remote(const struct signal_conn *c)
{
	return c->remote;
}

const char *signal_conn_host(const struct signal_conn *c)
{
	return c->host;
}

int signal_conn_ipkey(const struct signal_conn *c, uint8_t *key)
{
	if (!c->ip_counted)
		return -1;
	memcpy(key, c->ipkey, SIGNAL_IPLIMIT_KEY_LEN);
	return 0;
}

static void body_read(struct bufferevent *bev, void *arg)
{
	struct signal_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	const char *body;

	if (evbuffer_get_length(in) < c->post_len)
		return;
	body = (const char *)evbuffer_pullup(in, (ev_ssize_t)c->post_len);
	if (body == NULL && c->post_len > 0) {
		http_error(c, 500, NULL);
		return;
	}
	c->state = CONN_HTTP;
	signal_session_post(c->ctx, c, c->post_target, body != NULL ? body : "", c->post_len);
	evbuffer_drain(in, c->post_len);
	if (c->state == CONN_HTTP)
		http_error(c, 500, NULL); /* the session must have answered */
}

/* A socket.io request: GET (handshake or poll), POST (packets; the body is
 * read first, at most signaling-max-message bytes) or the WebSocket. */
static void http_socketio(struct signal_conn *c, const struct signal_http_req *r)
{
	const struct config *cfg = c->ctx->cfg;
	const char *origin = signal_http_header(r, "Origin"), *cl;
	char *end;
	unsigned long n;
	size_t clen;

	if (cfg->n_signaling_origin > 0 && origin != NULL &&
	    !signal_http_origin_allowed(origin, cfg->signaling_origin, cfg->n_signaling_origin)) {
		log_info("signaling: %s: socket.io from origin '%s' refused", c->remote, origin);
		http_error(c, 403, NULL);
		return;
	}
	/* Allowed pages of other origins may read the answers (simple requests
	 * only: no preflight, no credentials). */
	if (origin != NULL && (c->cors = malloc((clen = strlen(origin) + 64))) != NULL)
		snprintf(c->cors, clen, "Access-Control-Allow-Origin: %s\r\nVary: Origin\r\n", origin);
	if (signal_http_wants_ws(r)) {
		http_upgrade(c, r);
	} else if (strcmp(r->method, "GET") == 0) {
		signal_session_get(c->ctx, c, r->target);
	} else if (strcmp(r->method, "POST") != 0) {
		http_error(c, 405, "Allow: GET, POST\r\n");
	} else if (signal_http_header(r, "Transfer-Encoding") != NULL ||
		   (cl = signal_http_header(r, "Content-Length")) == NULL) {
		http_error(c, 411, NULL);
	} else if (*cl < '0' || *cl > '9' || (n = strtoul(cl, &end, 10), *end != '\0') ||
		   n > (unsigned long)cfg->signaling_max_message) {
		http_error(c, *cl >= '0' && *cl <= '9' && *end == '\0' ? 413 : 400, NULL);
	} else if ((c->post_target = strdup(r->target)) == NULL) {
		http_error(c, 500, NULL);
	} else {
		c->post_len = n;
		c->state = CONN_BODY;
		bufferevent_setcb(c->bev, body_read, NULL, http_event, c);
		body_read(c->bev, c);
	}
}

static void http_dispatch(struct signal_conn *c, const struct signal_http_req *r)
{
	int head_only = strcmp(r->method, "HEAD") == 0;
	size_t plen = strcspn(r->target, "?");

	if (c->ctx->cfg->signaling_socketio && signal_eio_is_path(r->target)) {
		http_socketio(c, r);
	} else if (signal_http_wants_ws(r)) {
		http_upgrade(c, r);
	} else if (strcmp(r->method, "GET") != 0 && !head_only) {
		http_error(c, 405, "Allow: GET, HEAD\r\n");
	} else if (plen == 12 && strncmp(r->target, "/ice-servers", 12) == 0) {
		http_ice_servers(c, r, head_only);
	} else {
		http_file(c, r, head_only);
	}
}

static void http_read(struct bufferevent *bev, void *arg)
{
	struct signal_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	static __thread struct signal_http_req req;
	int status;

	if (end.pos < 0) {
		if (evbuffer_get_length(in) > SIGNAL_HTTP_MAX_HEAD)
			http_error(c, 431, NULL);
		return;
	}
	if ((size_t)end.pos > SIGNAL_HTTP_MAX_HEAD) {
		http_error(c, 431, NULL);
		return;
	}
	status = signal_http_parse((const char *)evbuffer_pullup(in, end.pos + 4), (size_t)end.pos, &req);
	evbuffer_drain(in, (size_t)end.pos + 4);
	if (status != 0) {
		http_error(c, status, NULL);
		return;
	}
	log_debug("signaling: %s: %s %s", c->remote, req.method, req.target);
	http_dispatch(c, &req);
}

static void http_event(struct bufferevent *bev, short what, void *arg)
{
	struct signal_conn *c = arg;

	unsigned long e;

	if (what == BEV_EVENT_CONNECTED)
		return; /* TLS handshake done */
	if (what & BEV_EVENT_TIMEOUT) {
		http_error(c, 408, NULL);
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		while (c->tls && (e = bufferevent_get_openssl_error(bev)) != 0)
			log_debug("signaling: %s: TLS: %s", c->remote, ERR_reason_error_string(e));
		log_debug("signaling: %s: connection error before a request", c->remote);
	}
	conn_free(c);
}

/* ---- accept ----------------------------------------------------------- */

static void addr_str(const struct sockaddr_storage *ss, char *host, size_t hostlen, int *port)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	*port = 0;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		*port = ntohs(s4->sin_port);
		snprintf(host, hostlen, "%s", ip);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		*port = ntohs(s6->sin6_port);
		snprintf(host, hostlen, "[%s]", ip);
	} else {
		snprintf(host, hostlen, "%s", ip);
	}
}

static void conn_addresses(struct signal_conn *c, evutil_socket_t fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char h[INET6_ADDRSTRLEN + 3];
	int port;

	snprintf(c->host, sizeof(c->host), "127.0.0.1");
	snprintf(c->remote, sizeof(c->remote), "?");
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
		addr_str(&ss, c->host, sizeof(c->host), &port);
	sl = sizeof(ss);
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
		addr_str(&ss, h, sizeof(h), &port);
		snprintf(c->remote, sizeof(c->remote), "%s:%d", h, port);
	}
}

/* Counts c's source address (signaling-max-conns-per-ip). Returns 0, or -1
 * when the address already has that many connections. */
static int conn_count_ip(struct signal_conn *c, evutil_socket_t fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int rc;

	if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0 || signal_iplimit_key((struct sockaddr *)&ss, c->ipkey) < 0)
		return 0; /* e.g. the peer is already gone: nothing to count */
	rc = signal_iplimit_take(c->ctx->iplimit, c->ipkey, (unsigned)c->ctx->cfg->signaling_max_conns_per_ip);
	if (rc == -1) {
		log_debug("signaling: %d connections from one address (signaling-max-conns-per-ip); refusing one",
			  c->ctx->cfg->signaling_max_conns_per_ip);
		return -1;
	}
	c->ip_counted = rc == 0;
	return 0;
}

int signal_conn_new(struct signal_ctx *ctx, evutil_socket_t fd, SSL_CTX *tls)
{
	struct timeval tv = {HEAD_TIMEOUT_SEC, 0};
	struct signal_conn *c;
	SSL *ssl = NULL;

	if ((ctx->cfg->max_connections > 0 && ctx->nconns >= (size_t)ctx->cfg->max_connections) ||
	    (c = calloc(1, sizeof(*c))) == NULL) {
		log_warnx("signaling: too many connections; refusing one");
		evutil_closesocket(fd);
		return -1;
	}
	c->kind = SIGNAL_SINK_WS;
	c->ctx = ctx;
	if (conn_count_ip(c, fd) < 0) {
		evutil_closesocket(fd);
		free(c);
		return -1;
	}
	conn_addresses(c, fd);
	if (tls != NULL && (ssl = SSL_new(tls)) != NULL) {
		c->tls = 1;
		c->bev = bufferevent_openssl_socket_new(ctx->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
							 BEV_OPT_CLOSE_ON_FREE);
		if (c->bev != NULL)
			bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	} else if (tls == NULL) {
		c->bev = bufferevent_socket_new(ctx->base, fd, BEV_OPT_CLOSE_ON_FREE);
	}
	if (c->bev == NULL) {
		if (ssl != NULL)
			SSL_free(ssl);
		if (c->ip_counted)
			signal_iplimit_put(ctx->iplimit, c->ipkey);
		evutil_closesocket(fd);
		free(c);
		return -1;
	}
	c->next = ctx->conns;
	if (ctx->conns != NULL)
		ctx->conns->prev = c;
	ctx->conns = c;
	ctx->nconns++;
	bufferevent_setcb(c->bev, http_read, NULL, http_event, c);
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	return 0;
}
