/* stream.c -- TCP and TLS client connections: accept, frame, answer, limits. */
#include "net/stream.h"

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
#include "net/netaddr.h"
#include "net/turn_auth.h"
#include "net/turn_handler.h"
#include "stun/stun_frame.h"

/* Largest frame: a STUN message of 20 + 65532 bytes, or padded ChannelData. */
#define STREAM_MAX_FRAME (STUN_HEADER_LEN + 65535 + 3)

/* The conns[][] gauge slot of c (net/stats.h). */
#define CONN_GAUGE(c) \
	((c)->w->stats.conns[(c)->tls ? STATS_TLS : STATS_TCP][(c)->o.client.family == STUN_AF_IPV6 ? STATS_V6 : STATS_V4])

int stream_is_tls(const struct stream_conn *c)
{
	return c->tls;
}

static void stream_close(struct stream_conn *c)
{
	struct worker *w = c->w;

	STAT_ADD(CONN_GAUGE(c), -1);
	turn_cancel_pending(w, c);
	if (c->alloc != NULL)
		worker_alloc_free(w, c->alloc); /* clears c->alloc through stream_set_alloc */
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	if (c->manual_close) {
		/* Made without BEV_OPT_CLOSE_ON_FREE so that a ConnectionBind
		 * can keep the socket: close it (and its TLS state) here. */
		evutil_socket_t fd = bufferevent_getfd(c->bev);
		SSL *ssl = c->tls ? bufferevent_openssl_get_ssl(c->bev) : NULL;

		bufferevent_free(c->bev);
		if (ssl != NULL)
			SSL_free(ssl);
		if (fd >= 0)
			close(fd);
	} else {
		bufferevent_free(c->bev);
	}
	atomic_fetch_sub(&w->srv->nconns, 1);
	free(c);
}

/* Runs c->handoff: unlinks and frees c without closing its socket. */
static void stream_do_handoff(struct stream_conn *c)
{
	struct worker *w = c->w;
	struct stream_detached d;
	struct evbuffer *in = bufferevent_get_input(c->bev);
	stream_handoff_fn fn = c->handoff;
	void *arg = c->handoff_arg;

	memset(&d, 0, sizeof(d));
	d.fd = -1;
	if (!c->manual_close || c->alloc != NULL) {
		stream_close(c);
		fn(w, &d, arg);
		return;
	}
	d.fd = bufferevent_getfd(c->bev);
	d.ssl = c->tls ? bufferevent_openssl_get_ssl(c->bev) : NULL;
	d.tls = c->tls;
	d.client = c->o.client;
	d.local = c->o.local;
	if ((d.nrest = evbuffer_get_length(in)) > 0 && (d.rest = malloc(d.nrest)) != NULL)
		evbuffer_remove(in, d.rest, d.nrest);
	else
		d.nrest = 0;
	STAT_ADD(CONN_GAUGE(c), -1);
	turn_cancel_pending(w, c);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	bufferevent_free(c->bev); /* no BEV_OPT_CLOSE_ON_FREE: fd and SSL survive */
	free(c);
	fn(w, &d, arg);
}

void stream_handoff(struct stream_conn *c, stream_handoff_fn fn, void *arg)
{
	c->handoff = fn;
	c->handoff_arg = arg;
	if (!c->in_read)
		stream_do_handoff(c);
}

void stream_set_alloc(struct stream_conn *c, struct turn_alloc *a)
{
	struct timeval idle = { c->w->srv->cfg->idle_timeout, 0 };

	c->alloc = a;
	/* With an allocation its lifetime rules; without one, idle-timeout. */
	bufferevent_set_timeouts(c->bev, a != NULL ? NULL : &idle, NULL);
}

int stream_send(struct stream_conn *c, const void *buf, size_t len, int is_data)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	size_t limit = (size_t)c->w->srv->cfg->stream_output_limit;

	if (is_data && evbuffer_get_length(out) >= limit)
		return -1;
	if (evbuffer_add(out, buf, len) < 0)
		return -1;
	if (!c->paused && evbuffer_get_length(out) >= limit) {
		/* Stop reading until the client drains what it asked for. */
		c->paused = 1;
		bufferevent_disable(c->bev, EV_READ);
		bufferevent_setwatermark(c->bev, EV_WRITE, limit / 2, 0);
	}
	return 0;
}

/* Hands every complete frame to turn_handle_client; may close c. */
static void stream_read_frames(struct bufferevent *bev, void *arg)
{
	struct stream_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct stun_frame f;
	uint8_t hdr[8];
	size_t avail;
	uint8_t *p;
	int rc;

	if (c->w->bps_on)
		c->w->now_ms = worker_now_ms();
	while (!c->paused && (avail = evbuffer_get_length(in)) >= 4) {
		evbuffer_copyout(in, hdr, avail < sizeof(hdr) ? avail : sizeof(hdr));
		rc = stun_frame_next(hdr, avail < sizeof(hdr) ? avail : sizeof(hdr), &f);
		if (rc < 0) {
			char cs[NETADDR_STRLEN];

			if (worker_log_ok(c->w))
				log_info("closing %s connection from %s: not STUN or ChannelData",
					 c->tls ? "TLS" : "TCP", netaddr_str(&c->o.client, cs));
			stream_close(c);
			return;
		}
		if (rc == 0 || avail < f.frame_len) {
			/* Wake up only when the whole frame is there. */
			bufferevent_setwatermark(bev, EV_READ, rc == 0 ? 8 : f.frame_len, STREAM_MAX_FRAME * 2);
			return;
		}
		if ((p = evbuffer_pullup(in, (ssize_t)f.frame_len)) == NULL) {
			stream_close(c);
			return;
		}
		c->in_read = 1;
		turn_handle_client(c->w, &c->o, p, f.msg_len);
		c->in_read = 0;
		evbuffer_drain(in, f.frame_len);
		if (c->handoff != NULL) {
			stream_do_handoff(c); /* frees c */
			return;
		}
	}
	bufferevent_setwatermark(bev, EV_READ, 4, STREAM_MAX_FRAME * 2);
}

static void stream_read(struct bufferevent *bev, void *arg)
{
	stream_read_frames(bev, arg); /* may free the connection */
}

static void stream_write(struct bufferevent *bev, void *arg)
{
	struct stream_conn *c = arg;

	/* Called when the output fell below the low-water mark set on pause. */
	if (c->paused) {
		c->paused = 0;
		bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
		bufferevent_enable(bev, EV_READ);
		stream_read(bev, c);
	}
}

static void stream_event(struct bufferevent *bev, short what, void *arg)
{
	struct stream_conn *c = arg;

	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
		if (log_level >= LOG_LVL_DEBUG) {
			char cs[NETADDR_STRLEN];

			log_debug("%s connection from %s closed (%s)", c->tls ? "TLS" : "TCP",
				  netaddr_str(&c->o.client, cs),
				  what & BEV_EVENT_TIMEOUT ? "idle" : what & BEV_EVENT_EOF ? "eof" : "error");
		}
		stream_close(c);
	}
}

static void stream_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int salen,
			  void *arg)
{
	struct worker *w = arg;
	int tls = 0, one = 1;
	struct stream_conn *c;
	struct sockaddr_storage local;
	socklen_t locallen = sizeof(local);
	SSL *ssl = NULL;
	size_t i;

	for (i = 0; i < w->ntls; i++)
		if (w->tls[i] == lev)
			tls = 1;
	if (atomic_fetch_add(&w->srv->nconns, 1) >= w->srv->cfg->max_connections) {
		atomic_fetch_sub(&w->srv->nconns, 1);
		if (worker_log_ok(w))
			log_warnx("max-connections (%d) reached: refusing a connection", w->srv->cfg->max_connections);
		close(fd);
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL || getsockname(fd, (struct sockaddr *)&local, &locallen) < 0 ||
	    netaddr_from_sockaddr(&c->o.client, sa) < 0 ||
	    netaddr_from_sockaddr(&c->o.local, (struct sockaddr *)&local) < 0 ||
	    (tls && (ssl = SSL_new(w->tls_ctx)) == NULL))
		goto fail;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->w = w;
	c->tls = tls;
	c->o.conn = c;
	/* With tcp-relay, a connection may become an RFC 6062 data connection
	 * and move to another worker: it must outlive its bufferevent. */
	c->manual_close = w->srv->cfg->tcp_relay;
	if (tls)
		c->bev = bufferevent_openssl_socket_new(w->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
							c->manual_close ? 0 : BEV_OPT_CLOSE_ON_FREE);
	else
		c->bev = bufferevent_socket_new(w->base, fd, c->manual_close ? 0 : BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL)
		goto fail;
	if (tls)
		bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	bufferevent_setcb(c->bev, stream_read, stream_write, stream_event, c);
	bufferevent_setwatermark(c->bev, EV_READ, 4, STREAM_MAX_FRAME * 2);
	stream_set_alloc(c, NULL);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->next = w->conns;
	if (w->conns != NULL)
		w->conns->prev = c;
	w->conns = c;
	STAT_INC(CONN_GAUGE(c));
	return;
fail:
	log_warnx("cannot set up a %s connection", tls ? "TLS" : "TCP");
	if (ssl != NULL)
		SSL_free(ssl);
	if (c == NULL || c->bev == NULL)
		close(fd);
	free(c);
	atomic_fetch_sub(&w->srv->nconns, 1);
}

/* The pause after accept(2) failed with EMFILE/ENFILE, in seconds. */
#define STREAM_ACCEPT_PAUSE 1
/* At most one "out of descriptors" line per this many seconds, all workers. */
#define STREAM_NOFD_LOG_INTERVAL 10

static _Atomic int64_t stream_nofd_logged;

static void stream_accept_resume(evutil_socket_t fd, short what, void *arg)
{
	evconnlistener_enable(arg);
}

/* accept(2) failed with an error libevent does not retry itself. Out of
 * descriptors (EMFILE/ENFILE), the connection stays in the backlog and the
 * socket readable, so libevent would call accept again at once, for ever:
 * the listener pauses for STREAM_ACCEPT_PAUSE seconds instead (the backlog
 * waits; UDP and open connections go on) and one rate-limited line says so.
 * Any other error pauses it too, rather than spinning. */
static void stream_accept_error(struct evconnlistener *lev, void *arg)
{
	struct worker *w = arg;
	struct timeval tv = { STREAM_ACCEPT_PAUSE, 0 };
	int e = EVUTIL_SOCKET_ERROR();

	evconnlistener_disable(lev);
	if (event_base_once(w->base, -1, EV_TIMEOUT, stream_accept_resume, lev, &tv) < 0)
		evconnlistener_enable(lev); /* no timer: better spin than go deaf */
	errno = e;
	if (e == EMFILE || e == ENFILE) {
		if (log_ratelimit(&stream_nofd_logged, STREAM_NOFD_LOG_INTERVAL))
			log_warn("descriptors: worker %d cannot accept TCP/TLS connections, pausing its listener "
				 "(%ds, this message at most every %ds); raise RLIMIT_NOFILE",
				 w->id, STREAM_ACCEPT_PAUSE, STREAM_NOFD_LOG_INTERVAL);
	} else if (worker_log_ok(w)) {
		log_warn("worker %d: accept", w->id);
	}
}

int stream_listen(struct worker *w, const struct stun_addr *addr, int tls, char *err, size_t errlen)
{
	struct stun_addr a = *addr;
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct evconnlistener *lev;
	char as[NETADDR_STRLEN];
	int fd, on = 1;

	a.port = (uint16_t)(tls ? w->srv->cfg->tls_listening_port : w->srv->cfg->listening_port);
	sslen = netaddr_to_sockaddr(&a, &ss);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) < 0 ||
	    (a.family == STUN_AF_IPV6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) < 0) ||
	    bind(fd, (struct sockaddr *)&ss, sslen) < 0) {
		snprintf(err, errlen, "cannot listen on %s %s: %s", tls ? "TLS" : "TCP", netaddr_str(&a, as),
			 strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	lev = evconnlistener_new(w->base, stream_accept, w, LEV_OPT_CLOSE_ON_FREE, 1024, fd);
	if (lev == NULL) {
		snprintf(err, errlen, "cannot listen on %s %s: %s", tls ? "TLS" : "TCP", netaddr_str(&a, as),
			 strerror(errno));
		close(fd);
		return -1;
	}
	evconnlistener_set_error_cb(lev, stream_accept_error);
	if (tls)
		w->tls[w->ntls++] = lev;
	else
		w->tcp[w->ntcp++] = lev;
	return 0;
}

void stream_close_all(struct worker *w)
{
	while (w->conns != NULL)
		stream_close(w->conns);
}
