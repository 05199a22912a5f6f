/* stream.h -- STUN/TURN over TCP and TLS client connections (RFC 8656 §3.1,
 * RFC 8489 §6.2.2/§6.2.3).
 *
 * Each worker accepts on its own SO_REUSEPORT listening sockets, so an
 * accepted connection, its allocation and the allocation's relay socket all
 * belong to that worker. Messages are framed with stun_frame_next and handed
 * to turn_handle_client one by one. The relay leg is UDP, or TCP for an
 * RFC 6062 allocation (net/tcp_relay.h), whose ConnectionBind takes its
 * connection out of this module (stream_handoff).
 */
#ifndef TURNSTONE_STREAM_H
#define TURNSTONE_STREAM_H

#include <stddef.h>

#include "net/worker.h"

struct bufferevent;
typedef struct ssl_st SSL;

/* A connection taken out of stream.c (RFC 6062 ConnectionBind): the socket,
 * its TLS state and the bytes read but not yet handled, for another module
 * (and maybe another worker) to continue with. Still counted in nconns. */
struct stream_detached {
	int fd;
	SSL *ssl;                    /* NULL for plain TCP */
	int tls;
	struct stun_addr client, local;
	uint8_t *rest;               /* malloc'd input not yet handled, or NULL */
	size_t nrest;
};
typedef void (*stream_handoff_fn)(struct worker *w, struct stream_detached *d, void *arg);

struct stream_conn {
	struct bufferevent *bev;
	struct worker *w;
	struct origin o;             /* o.conn points back here */
	struct turn_alloc *alloc;    /* this connection's allocation, or NULL */
	int tls;                     /* 1 for TLS */
	int paused;                  /* reading stopped until the output drains */
	int manual_close;            /* bufferevent made without BEV_OPT_CLOSE_ON_FREE (tcp-relay) */
	int in_read;                 /* inside stream_read_frames */
	stream_handoff_fn handoff;   /* set by stream_handoff, run once the current frame is done */
	void *handoff_arg;
	struct stream_conn *prev, *next; /* worker's list */
};

/* Opens a TCP (tls = 0) or TLS (tls = 1) listening socket on addr for w and
 * registers it with w's loop. Returns 0, or -1 with a message in err. */
int stream_listen(struct worker *w, const struct stun_addr *addr, int tls, char *err, size_t errlen);

/* Queues len bytes to c. Relayed data (is_data) is dropped when the output
 * queue holds stream-output-limit bytes or more; answers to requests are
 * always queued, but then the connection is not read again until the queue
 * drains (so a client that never reads cannot grow it without bound).
 * Returns 0 or -1 (dropped). */
int stream_send(struct stream_conn *c, const void *buf, size_t len, int is_data);

/* Records a's allocation on c (NULL when it ends): while there is none, the
 * connection is closed after idle-timeout seconds without input. */
void stream_set_alloc(struct stream_conn *c, struct turn_alloc *a);

/* 1 when c is a TLS connection, 0 for plain TCP. */
int stream_is_tls(const struct stream_conn *c);

/* Takes c out of stream.c (RFC 6062 ConnectionBind): once the frame being
 * handled is consumed (at once when none is), c's socket, TLS state and
 * unread input are passed to fn(w, d, arg), which then owns them (fd, SSL,
 * d->rest, and one nconns slot); c itself is freed. c must have no
 * allocation. Only for connections with manual_close set (tcp-relay on):
 * otherwise fn gets d with fd -1 and the connection is closed. */
void stream_handoff(struct stream_conn *c, stream_handoff_fn fn, void *arg);

/* Closes every connection of w (shutdown). */
void stream_close_all(struct worker *w);

#endif
