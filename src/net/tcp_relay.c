/* tcp_relay.c -- TURN TCP allocations (RFC 6062 §5): the relayed address
 * as a listening socket, Connect, ConnectionAttempt, ConnectionBind and
 * raw byte relaying between client and peer data connections. */
#include "net/tcp_relay.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "net/limits.h"
#include "net/netaddr.h"
#include "net/selfaddr.h"
#include "net/stream.h"
#include "turn/turn_policy.h"
#include "turn/turn_tcp.h"

/* An allocation's TCP side (relay->tcp). */
struct tcp_relay_alloc {
	struct evconnlistener *lev;   /* the relayed transport address */
	struct event *resume_ev;      /* re-enables lev after an accept error */
	struct stun_addr bound;       /* its local address (outgoing connections bind to it) */
	struct turn_tcp_list conns;
	struct relay *r;
};

/* One peer data connection and, once bound, its client data connection
 * (turn_tcp_conn.io). */
struct tcp_peer {
	struct turn_tcp_conn *tc;
	struct tcp_relay_alloc *ta;
	struct worker *w;
	struct bufferevent *peer;     /* plain TCP to the peer */
	struct bufferevent *client;   /* client data connection, NULL until bound */
	uint8_t client_tls;
	uint8_t client_family;        /* STATS_V4/V6 of the conns[][] gauge slot */
	uint8_t closing;              /* one side is gone: flushing the other, then close */
	uint8_t paused[STATS_NDIR];   /* source of this direction stopped: output queue full */
	uint8_t bps_held[STATS_NDIR]; /* source of this direction stopped: max-bps / bps-capacity */
	struct event *bps_ev;         /* retries held directions, created on first use */
	/* the Connect being answered (§5.2) */
	uint8_t tid[STUN_TID_LEN];
	uint8_t sha256, fp;
};

/* A ConnectionBind handed to the owning worker (WORKER_MSG_TCP_BIND). */
struct tcp_bind_msg {
	struct stream_detached d;
	uint32_t id;
	char username[TURN_USERNAME_MAX + 1];
	uint8_t key[32];
	size_t keylen;
	uint8_t tid[STUN_TID_LEN];
	uint8_t sha256, fp;
};

static void refusal_free(struct tcp_refusal *f);

static struct tcp_relay_alloc *alloc_tcp(const struct turn_alloc *a)
{
	const struct relay *r = a->io;

	return r != NULL ? r->tcp : NULL;
}

int tcp_relay_is_tcp(const struct turn_alloc *a)
{
	return alloc_tcp(a) != NULL;
}

int tcp_relay_worker_init(struct worker *w)
{
	if (!w->srv->cfg->tcp_relay)
		return 0;
	return (w->tcp_conns = calloc(1, sizeof(*w->tcp_conns))) != NULL ? 0 : -1;
}

void tcp_relay_worker_free(struct worker *w)
{
	while (w->tcp_refusing != NULL)
		refusal_free(w->tcp_refusing);
	free(w->tcp_conns);
	w->tcp_conns = NULL;
}

int tcp_relay_allocate_check(const struct req *r)
{
	if (!r->w->srv->cfg->tcp_relay)
		return 442;
	if (r->o->conn == NULL) /* §5.1: the control connection must be TCP or TLS */
		return 400;
	if (stun_msg_find(&r->m, TURN_ATTR_DONT_FRAGMENT) != NULL || stun_msg_find(&r->m, TURN_ATTR_EVEN_PORT) != NULL ||
	    stun_msg_find(&r->m, TURN_ATTR_RESERVATION_TOKEN) != NULL)
		return 400;
	return 0;
}

/* ---- answers ------------------------------------------------------------ */

/* Builds an answer to a request (code 0: success) into w->tx with
 * MESSAGE-INTEGRITY from key and FINGERPRINT when fp. Returns its length, 0 on overflow. */
static size_t build_answer(struct worker *w, uint16_t method, const uint8_t *tid, int code, const uint8_t *key,
			   size_t keylen, int sha256, int fp, uint32_t connection_id)
{
	struct stun_builder b;

	stun_build_init(&b, w->tx, sizeof(w->tx), method, code ? STUN_CLASS_ERROR : STUN_CLASS_SUCCESS, tid);
	if (w->srv->cfg->software != NULL)
		stun_build_str(&b, STUN_ATTR_SOFTWARE, w->srv->cfg->software);
	if (code)
		stun_build_error(&b, code, NULL);
	else if (connection_id != 0 || method == TURN_METHOD_CONNECT)
		stun_build_u32(&b, TURN_ATTR_CONNECTION_ID, connection_id);
	if (keylen > 0) {
		if (sha256)
			stun_build_integrity_sha256(&b, key, keylen);
		else
			stun_build_integrity(&b, key, keylen);
	}
	if (fp)
		stun_build_fingerprint(&b);
	return stun_build_finish(&b);
}

/* Answers tp's Connect on the control connection: success with its
 * CONNECTION-ID (code 0) or code. */
static void answer_connect(struct tcp_peer *tp, int code)
{
	struct relay *r = tp->ta->r;
	struct turn_alloc *a = r->alloc;
	size_t n = build_answer(tp->w, TURN_METHOD_CONNECT, tp->tid, code, a->key, a->keylen, tp->sha256, tp->fp,
				tp->tc->id);

	if (n > 0)
		worker_send_client(&r->o, tp->w->tx, n, 0);
}

/* ---- connection bookkeeping -------------------------------------------- */

static uint32_t tcp_rand(struct worker *w)
{
	uint32_t x = w->rng;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return w->rng = x;
}

/* Room for one more pending peer connection in ta and in the server?
 * Takes a server-wide slot when there is. */
static int pending_take(struct worker *w, struct tcp_relay_alloc *ta)
{
	const struct config *cfg = w->srv->cfg;

	if (ta->conns.npending >= (unsigned)cfg->tcp_relay_max_pending)
		return -1;
	if (atomic_fetch_add(&w->srv->tcp_pending, 1) >= cfg->tcp_relay_max_pending_total) {
		atomic_fetch_sub(&w->srv->tcp_pending, 1);
		return -1;
	}
	return 0;
}

static struct tcp_peer *peer_new(struct worker *w, struct tcp_relay_alloc *ta, const struct stun_addr *peer,
				 enum turn_tcp_state st, uint64_t deadline)
{
	struct tcp_peer *tp = calloc(1, sizeof(*tp));

	if (tp == NULL)
		return NULL;
	if ((tp->tc = turn_tcp_add(w->tcp_conns, &ta->conns, peer, st, tcp_rand(w), (unsigned)w->id)) == NULL) {
		free(tp);
		return NULL;
	}
	tp->tc->io = tp;
	tp->tc->deadline = deadline;
	tp->ta = ta;
	tp->w = w;
	return tp;
}

/* Frees tp, both its connections and its table entry (and pending slot). */
static void peer_free(struct tcp_peer *tp)
{
	struct worker *w = tp->w;

	if (tp->bps_ev != NULL)
		event_free(tp->bps_ev);
	if (tp->peer != NULL)
		bufferevent_free(tp->peer);
	if (tp->client != NULL) {
		bufferevent_free(tp->client);
		STAT_ADD(w->stats.conns[tp->client_tls ? STATS_TLS : STATS_TCP][tp->client_family], -1);
		atomic_fetch_sub(&w->srv->nconns, 1);
	}
	if (turn_tcp_is_pending(tp->tc))
		atomic_fetch_sub(&w->srv->tcp_pending, 1);
	turn_tcp_remove(w->tcp_conns, &tp->ta->conns, tp->tc);
	free(tp);
}

/* ---- relaying ----------------------------------------------------------- */

static void relay_count(struct tcp_peer *tp, int dir, size_t n)
{
	struct worker *w = tp->w;
	struct turn_alloc *a = tp->ta->r->alloc;

	STAT_INC(w->stats.packets[dir]);
	STAT_ADD(w->stats.bytes[dir], n);
	if (dir == STATS_TO_PEER) {
		a->packets_to_peer++;
		a->bytes_to_peer += n;
	} else {
		a->packets_to_client++;
		a->bytes_to_client += n;
	}
}

static void data_read(struct bufferevent *src, void *arg);

/* The source bufferevent of direction dir. */
static struct bufferevent *dir_src(struct tcp_peer *tp, int dir)
{
	return dir == STATS_TO_PEER ? tp->client : tp->peer;
}

/* Reads the source of dir again unless something still holds it. */
static void src_resume(struct tcp_peer *tp, int dir)
{
	struct bufferevent *src = dir_src(tp, dir);

	if (src == NULL || tp->closing || tp->paused[dir] || tp->bps_held[dir])
		return;
	bufferevent_enable(src, EV_READ);
	data_read(src, tp);
}

#define TCP_RELAY_BPS_RETRY_MS 20

static void bps_retry(evutil_socket_t fd, short what, void *arg)
{
	struct tcp_peer *tp = arg;
	int dir;

	for (dir = 0; dir < STATS_NDIR; dir++) {
		if (tp->bps_held[dir]) {
			tp->bps_held[dir] = 0;
			src_resume(tp, dir); /* may hold it again */
		}
	}
}

/* max-bps / bps-capacity over TCP: bytes are never dropped; the source is
 * not read for TCP_RELAY_BPS_RETRY_MS instead, and TCP slows the sender
 * down. Returns 1 when n bytes may go now. */
static int bps_ok(struct tcp_peer *tp, struct bufferevent *src, int dir, size_t n)
{
	struct worker *w = tp->w;
	struct timeval tv = { 0, TCP_RELAY_BPS_RETRY_MS * 1000 };

	if (!w->bps_on)
		return 1;
	w->now_ms = worker_now_ms();
	if (limits_bps_pass(w, tp->ta->r, dir, n))
		return 1;
	if (tp->bps_ev == NULL && (tp->bps_ev = evtimer_new(w->base, bps_retry, tp)) == NULL)
		return 1; /* no timer: better relay than stall for ever */
	tp->bps_held[dir] = 1;
	bufferevent_disable(src, EV_READ);
	if (!evtimer_pending(tp->bps_ev, NULL))
		evtimer_add(tp->bps_ev, &tv);
	return 0;
}

/* Bytes arrived on src: move them to the other side as they are (§5.4).
 * A full output queue (stream-output-limit) stops reading src until it
 * drains to half: TCP pushes back on the sender instead of losing bytes. */
static void data_read(struct bufferevent *src, void *arg)
{
	struct tcp_peer *tp = arg;
	int dir = src == tp->client ? STATS_TO_PEER : STATS_TO_CLIENT;
	struct bufferevent *dst = dir == STATS_TO_PEER ? tp->peer : tp->client;
	struct evbuffer *in = bufferevent_get_input(src);
	size_t limit = (size_t)tp->w->srv->cfg->stream_output_limit, n = evbuffer_get_length(in);

	if (dst == NULL || tp->closing || n == 0 || tp->bps_held[dir] || !bps_ok(tp, src, dir, n))
		return;
	if (bufferevent_write_buffer(dst, in) < 0)
		return;
	relay_count(tp, dir, n);
	if (evbuffer_get_length(bufferevent_get_output(dst)) >= limit) {
		tp->paused[dir] = 1;
		bufferevent_disable(src, EV_READ);
		bufferevent_setwatermark(dst, EV_WRITE, limit / 2, 0);
	}
}

/* dst's output drained (below its low-water mark). */
static void data_write(struct bufferevent *dst, void *arg)
{
	struct tcp_peer *tp = arg;
	int dir = dst == tp->peer ? STATS_TO_PEER : STATS_TO_CLIENT;
	struct bufferevent *src = dir == STATS_TO_PEER ? tp->client : tp->peer;

	if (tp->closing) {
		if (evbuffer_get_length(bufferevent_get_output(dst)) == 0)
			peer_free(tp);
		return;
	}
	if (tp->paused[dir] && src != NULL) {
		tp->paused[dir] = 0;
		bufferevent_setwatermark(dst, EV_WRITE, 0, 0);
		src_resume(tp, dir);
	}
}

/* bev reached EOF or failed: the other side is closed too (§5.5), once
 * what was already queued for it is written. */
static void side_gone(struct tcp_peer *tp, struct bufferevent *bev)
{
	struct bufferevent *other = bev == tp->peer ? tp->client : tp->peer;

	if (tp->tc->state != TURN_TCP_BOUND || other == NULL || tp->closing ||
	    evbuffer_get_length(bufferevent_get_output(other)) == 0) {
		peer_free(tp);
		return;
	}
	/* Keep bev's half until then: peer_free frees both. */
	bufferevent_disable(bev, EV_READ | EV_WRITE);
	tp->closing = 1;
	tp->tc->deadline = worker_now() + TURN_TCP_BIND_TIMEOUT;
	bufferevent_disable(other, EV_READ);
	bufferevent_setwatermark(other, EV_WRITE, 0, 0);
}

static void peer_event(struct bufferevent *bev, short what, void *arg)
{
	struct tcp_peer *tp = arg;
	char ps[NETADDR_STRLEN];

	if (what & BEV_EVENT_CONNECTED) {
		/* §5.2: answer with the CONNECTION-ID; the peer's bytes wait
		 * in its socket until ConnectionBind (TCP flow control). */
		turn_tcp_set_state(tp->w->tcp_conns, &tp->ta->conns, tp->tc, TURN_TCP_PENDING);
		tp->tc->deadline = worker_now() + TURN_TCP_BIND_TIMEOUT;
		bufferevent_disable(bev, EV_READ);
		answer_connect(tp, 0);
		log_debug("tcp-relay: connected to %s, connection id %08x", netaddr_str(&tp->tc->peer, ps), tp->tc->id);
		return;
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		if (tp->tc->state == TURN_TCP_CONNECTING) {
			log_debug("tcp-relay: connect to %s failed", netaddr_str(&tp->tc->peer, ps));
			answer_connect(tp, 447);
			peer_free(tp);
			return;
		}
		side_gone(tp, bev);
	}
}

static void client_event(struct bufferevent *bev, short what, void *arg)
{
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		side_gone(arg, bev);
}

/* ---- the relayed address: listening, inbound peers (§5.3) --------------- */

int tcp_relay_bind(struct worker *w, struct stun_addr *addr)
{
	const struct config *cfg = w->srv->cfg;
	uint32_t range = (uint32_t)(cfg->max_port - cfg->min_port + 1), i, start = tcp_rand(w) % range;
	struct sockaddr_storage ss;
	socklen_t sslen;
	int fd, on = 1;

	for (i = 0; i < range; i++) {
		addr->port = (uint16_t)(cfg->min_port + (start + i) % range);
		sslen = netaddr_to_sockaddr(addr, &ss);
		if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
			return -1;
		if (addr->family == STUN_AF_IPV6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
		/* Bound without SO_REUSEPORT, so no other TCP allocation can
		 * get this port; set afterwards, so outgoing connections of
		 * this allocation can bind to it too (§5.2: the relayed
		 * address is their local address). */
		if (bind(fd, (struct sockaddr *)&ss, sslen) == 0 && listen(fd, 64) == 0 &&
		    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) == 0)
			return fd;
		close(fd);
		if (errno != EADDRINUSE)
			return -1;
	}
	errno = EADDRINUSE;
	return -1;
}

static void relay_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct tcp_relay_alloc *ta = arg;
	struct relay *r = ta->r;
	struct worker *w = r->w;
	struct turn_alloc *a = r->alloc;
	struct stun_addr peer;
	struct tcp_peer *tp;
	struct stun_builder b;
	uint8_t tid[STUN_TID_LEN];
	char ps[NETADDR_STRLEN];
	size_t i, n;

	if (netaddr_from_sockaddr(&peer, sa) < 0) {
		close(fd);
		return;
	}
	/* §5.3: no permission, no connection; and the peer policy, as for Connect. */
	if (!turn_alloc_perm_ok(a, &peer, worker_now()) || !turn_policy_permits(w->srv->cfg->policy, &peer)) {
		log_debug("tcp-relay: inbound connection from %s: no permission", netaddr_str(&peer, ps));
		close(fd);
		return;
	}
	if (turn_tcp_find_peer(&ta->conns, &peer) != NULL || pending_take(w, ta) < 0) {
		STAT_INC(w->stats.refused[STATS_REFUSE_TCP_PENDING]);
		if (worker_log_ok(w))
			log_info("tcp-relay: user %s: inbound connection from %s refused (pending limit)",
				 LOG_ESC(a->username), netaddr_str(&peer, ps));
		close(fd);
		return;
	}
	if ((tp = peer_new(w, ta, &peer, TURN_TCP_PENDING, worker_now() + TURN_TCP_BIND_TIMEOUT)) == NULL) {
		atomic_fetch_sub(&w->srv->tcp_pending, 1);
		close(fd);
		return;
	}
	tp->tc->inbound = 1;
	if ((tp->peer = bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		close(fd);
		peer_free(tp);
		return;
	}
	bufferevent_setcb(tp->peer, data_read, data_write, peer_event, tp);
	bufferevent_enable(tp->peer, EV_WRITE); /* not EV_READ: the peer's bytes wait for ConnectionBind */
	for (i = 0; i < STUN_TID_LEN; i += 4) {
		uint32_t x = tcp_rand(w);

		memcpy(tid + i, &x, 4);
	}
	stun_build_init(&b, w->tx, sizeof(w->tx), TURN_METHOD_CONNECTION_ATTEMPT, STUN_CLASS_INDICATION, tid);
	stun_build_xor_addr(&b, TURN_ATTR_XOR_PEER_ADDRESS, &peer);
	stun_build_u32(&b, TURN_ATTR_CONNECTION_ID, tp->tc->id);
	if ((n = stun_build_finish(&b)) > 0)
		worker_send_client(&r->o, w->tx, n, 0);
	log_debug("tcp-relay: ConnectionAttempt from %s, connection id %08x", netaddr_str(&peer, ps), tp->tc->id);
}

static void relay_accept_resume(evutil_socket_t fd, short what, void *arg)
{
	struct tcp_relay_alloc *ta = arg;

	evconnlistener_enable(ta->lev);
}

/* accept(2) failed (out of descriptors, most likely): the connection stays
 * in the backlog and the socket readable, so pause this listener for a
 * second rather than spin (as stream.c does for client listeners). */
static void relay_accept_error(struct evconnlistener *lev, void *arg)
{
	struct tcp_relay_alloc *ta = arg;
	struct timeval tv = { 1, 0 };
	static _Atomic int64_t logged;

	evconnlistener_disable(lev);
	event_add(ta->resume_ev, &tv);
	if (log_ratelimit(&logged, 10))
		log_warn("tcp-relay: accept on a relayed address (this message at most every 10 s)");
}

int tcp_relay_attach(struct worker *w, struct relay *r, const struct stun_addr *bound)
{
	struct tcp_relay_alloc *ta = calloc(1, sizeof(*ta));

	if (ta == NULL || w->tcp_conns == NULL)
		goto fail;
	ta->r = r;
	ta->bound = *bound;
	if ((ta->resume_ev = evtimer_new(w->base, relay_accept_resume, ta)) == NULL)
		goto fail;
	ta->lev = evconnlistener_new(w->base, relay_accept, ta, LEV_OPT_CLOSE_ON_FREE, -1, r->fd);
	if (ta->lev == NULL)
		goto fail;
	evconnlistener_set_error_cb(ta->lev, relay_accept_error);
	r->tcp = ta;
	return 0;
fail:
	if (ta != NULL && ta->resume_ev != NULL)
		event_free(ta->resume_ev);
	free(ta);
	return -1;
}

void tcp_relay_release(struct relay *r)
{
	struct tcp_relay_alloc *ta = r->tcp;

	while (ta->conns.head != NULL)
		peer_free(ta->conns.head->io);
	evconnlistener_free(ta->lev); /* closes r->fd */
	event_free(ta->resume_ev);
	free(ta);
	r->tcp = NULL;
	r->fd = -1;
}

/* ---- Connect (§5.2) ----------------------------------------------------- */

/* The outgoing connection from ta's relayed address to peer: 0 or -1. */
static int connect_peer(struct worker *w, struct tcp_peer *tp, const struct stun_addr *peer)
{
	struct sockaddr_storage ss, to;
	socklen_t sslen = netaddr_to_sockaddr(&tp->ta->bound, &ss), tolen = netaddr_to_sockaddr(peer, &to);
	int fd, on = 1;

	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	if (tp->ta->bound.family == STUN_AF_IPV6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) < 0 || bind(fd, (struct sockaddr *)&ss, sslen) < 0) {
		log_warn("tcp-relay: cannot bind an outgoing connection to the relayed address");
		close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	if ((tp->peer = bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		close(fd);
		return -1;
	}
	bufferevent_setcb(tp->peer, data_read, data_write, peer_event, tp);
	/* An immediate failure still calls peer_event (447) from the loop. */
	return bufferevent_socket_connect(tp->peer, (struct sockaddr *)&to, (int)tolen) < 0 ? -1 : 0;
}

void tcp_relay_connect(struct req *r)
{
	struct worker *w = r->w;
	const struct stun_attr *pa;
	struct tcp_relay_alloc *ta;
	struct stun_addr peer;
	struct tcp_peer *tp;
	char ps[NETADDR_STRLEN];

	if (r->alloc == NULL) {
		turn_req_error(r, 437);
		return;
	}
	if ((ta = alloc_tcp(r->alloc)) == NULL) { /* §5.2: only on a TCP allocation */
		turn_req_error(r, 400);
		return;
	}
	pa = stun_msg_find(&r->m, TURN_ATTR_XOR_PEER_ADDRESS);
	if (pa == NULL || stun_attr_xor_addr(&r->m, pa, &peer) < 0) {
		turn_req_error(r, 400);
		return;
	}
	if (peer.family != r->alloc->relay.family) {
		turn_req_error(r, 443);
		return;
	}
	if (!turn_policy_permits(w->srv->cfg->policy, &peer)) {
		if (worker_log_ok(w))
			log_info("user %s: Connect to %s refused by policy", LOG_ESC(r->alloc->username),
				 netaddr_str(&peer, ps));
		turn_req_error(r, 403);
		return;
	}
	/* Never to one of the server's own ports (selfaddr.h), as for ChannelBind. */
	if (selfaddr_refuses(&w->srv->self, &peer)) {
		STAT_INC(w->stats.refused[STATS_REFUSE_OWN_ADDRESS]);
		if (worker_log_ok(w))
			log_info("user %s: Connect to own address %s refused", LOG_ESC(r->alloc->username),
				 netaddr_str(&peer, ps));
		turn_req_error(r, 403);
		return;
	}
	if (turn_tcp_find_peer(&ta->conns, &peer) != NULL) {
		turn_req_error(r, 446);
		return;
	}
	if (pending_take(w, ta) < 0) {
		STAT_INC(w->stats.refused[STATS_REFUSE_TCP_PENDING]);
		turn_req_error(r, 508);
		return;
	}
	tp = peer_new(w, ta, &peer, TURN_TCP_CONNECTING,
		      worker_now() + (uint64_t)w->srv->cfg->tcp_relay_connect_timeout);
	if (tp == NULL) {
		atomic_fetch_sub(&w->srv->tcp_pending, 1);
		turn_req_error(r, 508);
		return;
	}
	memcpy(tp->tid, r->m.tid, STUN_TID_LEN);
	tp->sha256 = (uint8_t)r->sha256;
	tp->fp = r->m.fp_off != 0;
	if (connect_peer(w, tp, &peer) < 0) {
		turn_req_error(r, 447);
		peer_free(tp);
	}
}

/* ---- ConnectionBind (§5.4) ---------------------------------------------- */

static void msg_close(struct server *srv, struct tcp_bind_msg *m)
{
	if (m->d.fd >= 0) {
		if (m->d.ssl != NULL)
			SSL_free(m->d.ssl);
		close(m->d.fd);
		atomic_fetch_sub(&srv->nconns, 1);
	}
	free(m->d.rest);
	free(m);
}

void tcp_relay_msg_free(struct server *srv, void *ptr)
{
	msg_close(srv, ptr);
}

/* Called by stream.c on the accepting worker once the request's frame is
 * consumed: sends the connection to the owner of the CONNECTION-ID. */
static void bind_handoff(struct worker *w, struct stream_detached *d, void *arg)
{
	struct tcp_bind_msg *m = arg;
	struct worker *owner = &w->srv->workers[turn_tcp_id_worker(m->id)];

	m->d = *d;
	if (m->d.fd < 0) {
		msg_close(w->srv, m);
		return;
	}
	if (owner == w) {
		tcp_relay_on_msg(w, m);
		return;
	}
	log_debug("tcp-relay: connection id %08x: data connection handed from worker %d to worker %d", m->id, w->id,
		  owner->id);
	if (worker_post(owner, WORKER_MSG_TCP_BIND, m) < 0) {
		log_warnx("tcp-relay: cannot hand a ConnectionBind to worker %d", owner->id);
		msg_close(w->srv, m);
	}
}

void tcp_relay_connection_bind(struct req *r)
{
	const struct stun_attr *ca = stun_msg_find(&r->m, TURN_ATTR_CONNECTION_ID);
	struct tcp_bind_msg *m;
	uint32_t id;

	/* §5.4: on a TCP or TLS connection, a new one (not the control
	 * connection of an allocation), naming a connection. */
	if (!r->w->srv->cfg->tcp_relay || r->o->conn == NULL || r->alloc != NULL || ca == NULL ||
	    stun_attr_u32(ca, &id) < 0 || turn_tcp_id_worker(id) >= (unsigned)r->w->srv->nworkers) {
		turn_req_error(r, 400);
		return;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		turn_req_error(r, 500);
		return;
	}
	m->id = id;
	memcpy(m->username, r->username, sizeof(m->username));
	memcpy(m->key, r->key, sizeof(m->key));
	m->keylen = r->keylen;
	memcpy(m->tid, r->m.tid, STUN_TID_LEN);
	m->sha256 = (uint8_t)r->sha256;
	m->fp = r->m.fp_off != 0;
	/* The answer comes from the owner, on the moved connection. */
	stream_handoff(r->o->conn, bind_handoff, m);
}

/* The client data connection's bufferevent on w (takes m->d's fd and SSL). */
static struct bufferevent *client_bev(struct worker *w, struct tcp_bind_msg *m)
{
	struct bufferevent *bev;

	if (m->d.tls)
		bev = bufferevent_openssl_socket_new(w->base, m->d.fd, m->d.ssl, BUFFEREVENT_SSL_OPEN,
						     BEV_OPT_CLOSE_ON_FREE);
	else
		bev = bufferevent_socket_new(w->base, m->d.fd, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
		return NULL;
	if (m->d.tls)
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	m->d.fd = -1; /* the bufferevent owns them now */
	m->d.ssl = NULL;
	return bev;
}

/* A refused ConnectionBind's connection: closed once its answer is written
 * (or after 5 s, or on error); listed in w->tcp_refusing so that a worker
 * stopping meanwhile frees it. */
struct tcp_refusal {
	struct bufferevent *bev;
	struct worker *w;
	struct tcp_refusal *prev, *next;
};

static void refusal_free(struct tcp_refusal *f)
{
	if (f->prev != NULL)
		f->prev->next = f->next;
	else
		f->w->tcp_refusing = f->next;
	if (f->next != NULL)
		f->next->prev = f->prev;
	bufferevent_free(f->bev);
	atomic_fetch_sub(&f->w->srv->nconns, 1);
	free(f);
}

static void refuse_write(struct bufferevent *bev, void *arg)
{
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		refusal_free(arg);
}

static void refuse_event(struct bufferevent *bev, short what, void *arg)
{
	refusal_free(arg);
}

/* Refuses m with code: the answer is written, then the connection closed. */
static void bind_refuse(struct worker *w, struct tcp_bind_msg *m, int code)
{
	struct timeval tv = { 5, 0 };
	struct tcp_refusal *f = calloc(1, sizeof(*f));
	size_t n;

	if (f == NULL || (f->bev = client_bev(w, m)) == NULL) {
		free(f);
		msg_close(w->srv, m);
		return;
	}
	n = build_answer(w, TURN_METHOD_CONNECTION_BIND, m->tid, code, m->key, m->keylen, m->sha256, m->fp, 0);
	msg_close(w->srv, m); /* fd and SSL now belong to f->bev */
	f->w = w;
	f->next = w->tcp_refusing;
	if (f->next != NULL)
		f->next->prev = f;
	w->tcp_refusing = f;
	bufferevent_setcb(f->bev, NULL, refuse_write, refuse_event, f);
	bufferevent_set_timeouts(f->bev, &tv, &tv);
	bufferevent_enable(f->bev, EV_WRITE);
	if (n == 0 || bufferevent_write(f->bev, w->tx, n) < 0)
		refusal_free(f);
}

void tcp_relay_on_msg(struct worker *w, void *ptr)
{
	struct tcp_bind_msg *m = ptr;
	struct turn_tcp_conn *tc = w->tcp_conns != NULL ? turn_tcp_find(w->tcp_conns, m->id) : NULL;
	struct tcp_peer *tp;
	struct turn_alloc *a;
	size_t n;

	if (tc == NULL || tc->state != TURN_TCP_PENDING) {
		log_debug("tcp-relay: ConnectionBind for unknown connection id %08x", m->id);
		bind_refuse(w, m, 400);
		return;
	}
	tp = tc->io;
	a = tp->ta->r->alloc;
	if (strcmp(a->username, m->username) != 0) { /* the allocation's credentials only */
		bind_refuse(w, m, 441);
		return;
	}
	if ((tp->client = client_bev(w, m)) == NULL) {
		msg_close(w->srv, m);
		return;
	}
	tp->client_tls = (uint8_t)m->d.tls;
	tp->client_family = m->d.client.family == STUN_AF_IPV6 ? STATS_V6 : STATS_V4;
	STAT_INC(w->stats.conns[tp->client_tls ? STATS_TLS : STATS_TCP][tp->client_family]);
	atomic_fetch_sub(&w->srv->tcp_pending, 1);
	turn_tcp_set_state(w->tcp_conns, &tp->ta->conns, tc, TURN_TCP_BOUND);
	n = build_answer(w, TURN_METHOD_CONNECTION_BIND, m->tid, 0, m->key, m->keylen, m->sha256, m->fp, 0);
	if (n > 0)
		bufferevent_write(tp->client, w->tx, n);
	/* From here on, raw bytes both ways; what the client sent after its
	 * request goes to the peer first. */
	if (m->d.nrest > 0) {
		bufferevent_write(tp->peer, m->d.rest, m->d.nrest);
		relay_count(tp, STATS_TO_PEER, m->d.nrest);
	}
	bufferevent_setcb(tp->client, data_read, data_write, client_event, tp);
	bufferevent_enable(tp->client, EV_READ | EV_WRITE);
	bufferevent_enable(tp->peer, EV_READ | EV_WRITE);
	log_debug("tcp-relay: connection id %08x bound (user %s)", m->id, LOG_ESC(a->username));
	m->d.fd = -1;
	msg_close(w->srv, m);
	data_read(tp->peer, tp); /* bytes the peer sent while pending */
}

/* ---- timers ------------------------------------------------------------- */

static void tick_one(struct turn_tcp_conn *tc, void *arg)
{
	struct tcp_peer *tp = tc->io;
	uint64_t now = *(uint64_t *)arg;

	if (tc->state == TURN_TCP_BOUND && !tp->closing)
		return;
	if (now < tc->deadline)
		return;
	if (tc->state == TURN_TCP_CONNECTING)
		answer_connect(tp, 447); /* §5.2: timed out */
	else if (tc->state == TURN_TCP_PENDING)
		log_debug("tcp-relay: connection id %08x not bound in %d s, closed", tc->id, TURN_TCP_BIND_TIMEOUT);
	peer_free(tp);
}

void tcp_relay_tick(struct worker *w)
{
	uint64_t now = worker_now();

	if (w->tcp_conns != NULL && w->tcp_conns->count > 0)
		turn_tcp_foreach(w->tcp_conns, tick_one, &now);
}
