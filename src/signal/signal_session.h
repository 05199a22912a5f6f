/* signal_session.h -- socket.io sessions of the signaling endpoint
 * (docs/signaling.md, "socket.io"): the Engine.IO v4 session table keyed by
 * sid, the long-polling and WebSocket transports and the upgrade between
 * them, the server's ping/pong heartbeat, and Socket.IO v5 packets routed
 * into the rooms of signal_room.c (join, leave, any app-named event; acks).
 *
 * A session is not a connection: over long-polling every HTTP request is
 * its own signal_conn (Connection: close) and the session outlives them;
 * over WebSocket one signal_conn carries it. Sessions hold one
 * signaling-max-conns-per-ip slot of their address and count against
 * max-connections. Signaling thread only.
 */
#ifndef TURNSTONE_SIGNAL_SESSION_H
#define TURNSTONE_SIGNAL_SESSION_H

#include <stddef.h>

struct signal_conn;
struct signal_ctx;
struct signal_session;
struct signal_sessions;

/* An empty session table, or NULL on no memory. */
struct signal_sessions *signal_sessions_new(void);

/* Frees every session of ctx and the table, unbinding (not closing) the
 * connections that carry them: call before signal_conn_free_all. */
void signal_sessions_free(struct signal_ctx *ctx);

/* Number of sessions (tests and logs). */
size_t signal_sessions_count(const struct signal_ctx *ctx);

/* A GET on /socket.io/ with transport=polling: without sid the handshake
 * (a new session, the open packet), with one the long poll (queued packets
 * at once, else c is held until there are some or the next ping). Answers
 * c (400 with an Engine.IO error object on a bad query or unknown sid). */
void signal_session_get(struct signal_ctx *ctx, struct signal_conn *c, const char *target);

/* A POST of the len bytes body (packets separated by 0x1e) to the session
 * named in target. Answers c ("ok", or 400). */
void signal_session_post(struct signal_ctx *ctx, struct signal_conn *c, const char *target, const char *body,
			 size_t len);

/* Before answering a WebSocket upgrade on /socket.io/: 0 when target is an
 * acceptable websocket request (no sid, or the sid of a polling session not
 * already upgrading), else the HTTP status (400). */
int signal_session_ws_check(struct signal_ctx *ctx, const char *target);

/* After the 101: binds the WebSocket connection c to a new session (no sid
 * in target: sends the open packet) or to the named one as its upgrade
 * probe. Closes c when that fails. */
void signal_session_ws_attach(struct signal_ctx *ctx, struct signal_conn *c, const char *target);

/* One text message (an Engine.IO packet) on the WebSocket connection c
 * bound to s. */
void signal_session_ws_text(struct signal_session *s, struct signal_conn *c, const char *data, size_t len);

/* c (bound to s, or held for it) is closing: s forgets it; losing the
 * WebSocket transport closes s. */
void signal_session_conn_gone(struct signal_session *s, struct signal_conn *c);

/* The rooms' send callback for a session (via signal_conn_send_text): the
 * room message text (JSON) is sent as a Socket.IO EVENT (signal_sio.h). */
void signal_session_room_send(void *sess, const char *text, size_t len);

#endif
