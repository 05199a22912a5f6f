/* signal_server.h -- the WebSocket signaling endpoint and demo page server.
 *
 * One dedicated thread with its own event_base runs an HTTP/1.1 listener
 * (signaling-port; https/wss with signaling-tls): GET / and static files
 * from signaling-root, GET /ice-servers (STUN/TURN URLs and short-lived TURN
 * REST credentials), and the RFC 6455 WebSocket upgrade for the JSON room
 * protocol of docs/signaling.md. Every room and connection lives on that
 * thread, so nothing is shared with the relay workers.
 */
#ifndef TURNSTONE_SIGNAL_SERVER_H
#define TURNSTONE_SIGNAL_SERVER_H

#include <stddef.h>

#include "config.h"

typedef struct ssl_ctx_st SSL_CTX;
struct signal_server;

/* Binds the signaling listeners (TCP, port cfg->signaling_port, on each
 * cfg->listening_ip, or 0.0.0.0 and -- when IPv6 is available -- :: when
 * none is given) and starts the signaling thread. cfg must stay valid and
 * unchanged until signal_stop. tls may be NULL; when cfg->signaling_tls is
 * set and tls is not NULL the listeners speak TLS and the server takes its
 * own reference (SSL_CTX_up_ref); the caller keeps its reference.
 * Returns the server, or NULL with a message in err[0..errlen) when a
 * socket cannot be bound, signaling_tls is set without a context, or the
 * thread cannot start. */
struct signal_server *signal_start(const struct config *cfg, SSL_CTX *tls, char *err, size_t errlen);

/* Stops the thread (wakes it through its eventfd), closes every connection
 * and listener, joins it and frees s. Thread-safe; s may be NULL. */
void signal_stop(struct signal_server *s);

/* Replaces the TLS context used for new connections (SIGHUP reload).
 * Thread-safe. Takes over one reference to ctx (released when replaced or
 * at signal_stop); ctx NULL is ignored. Existing connections keep theirs. */
void signal_set_tls(struct signal_server *s, SSL_CTX *ctx);

#endif
