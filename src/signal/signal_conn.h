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

#include "config.h"

typedef struct ssl_ctx_st SSL_CTX;
struct event_base;
struct signal_conn;
struct signal_ice;
struct signal_iplimit;
struct signal_rooms;

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
};

/* Takes over the accepted socket fd and starts reading a request head; with
 * tls not NULL the connection speaks TLS (the SSL holds its own reference).
 * Returns 0, or -1 (fd closed) when over max-connections or
 * signaling-max-conns-per-ip, or out of memory. */
int signal_conn_new(struct signal_ctx *ctx, evutil_socket_t fd, SSL_CTX *tls);

/* Closes and frees every connection of ctx at once (shutdown). */
void signal_conn_free_all(struct signal_ctx *ctx);

/* The rooms' send callback: queues a text message on the WebSocket
 * connection conn and schedules sending it. Ignored when conn is closing. */
void signal_conn_send_text(void *conn, const char *text, size_t len);

#endif
