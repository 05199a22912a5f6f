/* signal_conn.h -- one client connection of the signaling endpoint: the
 * HTTP/1.1 request head, a static file or /ice-servers answer, or the
 * WebSocket upgrade (RFC 6455 §4.2) and then the JSON room protocol over
 * wslay (RFC 6455 §5, docs/signaling.md), with ping/pong keep-alive, idle
 * timeout, message size and rate limits.
 *
 * Internal to src/signal: every connection lives on the signaling thread.
 */
#ifndef TURNSTONE_SIGNAL_CONN_H
#define TURNSTONE_SIGNAL_CONN_H

#include <event2/util.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config.h"

typedef struct ssl_ctx_st SSL_CTX;
struct event_base;
struct signal_conn;
struct signal_ice;
struct signal_iplimit;
struct signal_rooms;
struct signal_session;
struct signal_sessions;

/* The first member of every object the rooms' send callback gets (a
 * struct signal_peer's conn): a WebSocket connection of the JSON protocol
 * or a socket.io session. */
enum signal_sink_kind { SIGNAL_SINK_WS = 1, SIGNAL_SINK_SIO };

/* A signaling-rate token bucket (burst: the rate), one per client. */
struct signal_rate {
	double tokens;
	struct timespec at;        /* CLOCK_MONOTONIC of the last refill */
	long window_start;         /* second of the abuse window */
	unsigned window_count;
};

/* What connections share, owned by the signaling thread. */
struct signal_ctx {
	const struct config *cfg;
	struct event_base *base;
	struct signal_rooms *rooms;
	struct signal_ice *ice;
	struct signal_conn *conns;       /* every open connection */
	size_t nconns;
	struct signal_iplimit *iplimit;  /* connections per source address */
	const char *root;                /* page directory in use (signaling-root or the source tree's) */
	struct signal_sessions *sessions; /* socket.io sessions (signal_session.c) */
};

/* Takes over the accepted socket fd and starts reading a request head; with
 * tls not NULL the connection speaks TLS (the SSL holds its own reference).
 * Returns 0, or -1 (fd closed) when over max-connections or
 * signaling-max-conns-per-ip, or out of memory. */
int signal_conn_new(struct signal_ctx *ctx, evutil_socket_t fd, SSL_CTX *tls);

/* Closes and frees every connection of ctx at once (shutdown). */
void signal_conn_free_all(struct signal_ctx *ctx);

/* The rooms' send callback: queues a text message on the WebSocket
 * connection conn and schedules sending it. Ignored when conn is closing.
 * A socket.io session (SIGNAL_SINK_SIO) gets it as an event instead
 * (signal_session_room_send). */
void signal_conn_send_text(void *conn, const char *text, size_t len);

/* Whether a client gets TURN credentials (docs/signaling.md, "Who gets TURN
 * credentials"). With signaling-auth-secret only with a valid token (for
 * room, or any room when room is NULL); its user id and the peer id make
 * the REST user id "<user>.<peer id>". Without a secret everyone when
 * signaling-open-credentials is set (user id: the peer id), else no one.
 * remote is for logs. Returns 1 with uid filled, 0 for STUN only, -1
 * (refused) with *why set to a static reason. */
int signal_authorise(struct signal_ctx *ctx, const char *remote, const char *token, const char *room,
		     const char *peer_id, char *uid, size_t uidlen, const char **why);

/* Fills the bucket r for signaling-rate of cfg. */
void signal_rate_init(struct signal_rate *r, const struct config *cfg);

/* Takes one message from r. Returns 0 to go on, 1 when the message is to
 * be refused, 2 when the client is to be closed for sending more than three
 * times the rate within one second. */
int signal_rate_take(struct signal_rate *r, const struct config *cfg);

/* ---- for socket.io sessions (signal_session.c) ---- */

/* Answers c's HTTP request with status, Content-Type ctype and body
 * (len bytes, copied), then closes c. Detaches c from its session. */
void signal_conn_http_reply(struct signal_conn *c, int status, const char *ctype, const char *body, size_t len);

/* Keeps c's long-polling GET open for session s (no timeouts: s answers it
 * with signal_conn_http_reply within its ping interval). */
void signal_conn_hold(struct signal_conn *c, struct signal_session *s);

/* Binds the WebSocket connection c to s (NULL: unbinds without telling s);
 * its text messages then go to signal_session_ws_text. */
void signal_conn_set_session(struct signal_conn *c, struct signal_session *s);

/* Sends a close frame with code (RFC 6455 §7.4) and reason on the WebSocket
 * connection c. */
void signal_conn_ws_close(struct signal_conn *c, uint16_t code, const char *reason);

/* The client's address for logs, and the local IP it reached (IPv6
 * bracketed) for the iceServers. */
const char *signal_conn_remote(const struct signal_conn *c);
const char *signal_conn_host(const struct signal_conn *c);

/* Copies c's signal_iplimit key into key. Returns 0, or -1 when c's
 * address was not counted (unknown family). */
int signal_conn_ipkey(const struct signal_conn *c, uint8_t *key);

#endif
