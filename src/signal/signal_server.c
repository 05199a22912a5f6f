/* signal_server.c -- the signaling thread: its event_base, the HTTP /
 * WebSocket listeners, the wake-up eventfd that carries stop and TLS reload
 * requests from other threads, and start/stop. Connections are in
 * signal_conn.c, rooms in signal_room.c (docs/signaling.md, docs/threads.md).
 */
#include "signal/signal_server.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netdb.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "signal/signal_conn.h"
#include "signal/signal_ice.h"
#include "signal/signal_iplimit.h"
#include "signal/signal_room.h"
#include "signal/signal_session.h"

#ifndef CONFIG_DATADIR
#define CONFIG_DATADIR "/usr/local/share"
#endif

#define MAX_LISTENERS (CONFIG_MAX_LISTEN + 1)

struct signal_server {
	struct signal_ctx ctx;           /* rooms, connections: thread-owned */
	struct evconnlistener *lst[MAX_LISTENERS];
	size_t nlst;
	SSL_CTX *tls;                    /* thread-owned once running; NULL: plain HTTP */
	int efd;                         /* eventfd: wakes the thread */
	struct event *wake;
	pthread_t thread;
	int running;                     /* thread started */

	pthread_mutex_t mu;              /* protects the two fields below */
	int stop;
	SSL_CTX *pending_tls;            /* from signal_set_tls, not yet taken */
};

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct signal_server *s = arg;

	signal_conn_new(&s->ctx, fd, s->tls);
}

static void on_accept_resume(evutil_socket_t fd, short what, void *arg)
{
	evconnlistener_enable(arg);
}

/* accept(2) failed. Out of descriptors (EMFILE/ENFILE) the socket stays
 * readable and libevent would retry at once, for ever: pause the listener
 * for a second instead, and say so at most every 10 s. */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
	static _Atomic int64_t logged;
	struct timeval tv = { 1, 0 };
	int e = EVUTIL_SOCKET_ERROR();

	evconnlistener_disable(l);
	if (event_base_once(evconnlistener_get_base(l), -1, EV_TIMEOUT, on_accept_resume, l, &tv) < 0)
		evconnlistener_enable(l);
	errno = e;
	if (log_ratelimit(&logged, 10))
		log_warn("signaling: accept failed, listener paused for 1 s (this message at most every 10 s)");
}

/* Runs on the signaling thread when another thread wrote the eventfd. */
static void on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct signal_server *s = arg;
	uint64_t v;
	SSL_CTX *tls;
	int stop;

	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warn("signaling: eventfd read");
	pthread_mutex_lock(&s->mu);
	stop = s->stop;
	tls = s->pending_tls;
	s->pending_tls = NULL;
	pthread_mutex_unlock(&s->mu);
	if (tls != NULL) {
		if (s->tls != NULL) {
			SSL_CTX_free(s->tls);
			s->tls = tls;
			log_info("signaling: new TLS certificate in use");
		} else {
			SSL_CTX_free(tls); /* signaling-tls is off */
		}
	}
	if (stop)
		event_base_loopbreak(s->ctx.base);
}

static void *signal_thread(void *arg)
{
	struct signal_server *s = arg;

	event_base_dispatch(s->ctx.base);
	signal_sessions_free(&s->ctx);
	signal_conn_free_all(&s->ctx);
	return NULL;
}

/* 1 when the IP literal ip is in 127.0.0.0/8 or is ::1. */
static int is_loopback(const char *ip)
{
	return strncmp(ip, "127.", 4) == 0 || strcmp(ip, "::1") == 0 || strncmp(ip, "::ffff:127.", 11) == 0;
}

/* Binds one listener on ip (a literal), port. Returns 0, or -1 with err. */
static int listen_on(struct signal_server *s, const char *ip, int port, char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_PASSIVE, .ai_socktype = SOCK_STREAM}, *ai;
	char portstr[16];
	unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC;
	int rc;

	snprintf(portstr, sizeof(portstr), "%d", port);
	if ((rc = getaddrinfo(ip, portstr, &hints, &ai)) != 0) {
		snprintf(err, errlen, "signaling: '%s' is not an IP address: %s", ip, gai_strerror(rc));
		return -1;
	}
	if (ai->ai_family == AF_INET6)
		flags |= LEV_OPT_BIND_IPV6ONLY;
	s->lst[s->nlst] = evconnlistener_new_bind(s->ctx.base, on_accept, s, flags, 128, ai->ai_addr,
						  (int)ai->ai_addrlen);
	freeaddrinfo(ai);
	if (s->lst[s->nlst] == NULL) {
		snprintf(err, errlen, "signaling: cannot listen on %s%s%s port %d: %s",
			 strchr(ip, ':') ? "[" : "", ip, strchr(ip, ':') ? "]" : "", port, strerror(errno));
		return -1;
	}
	evconnlistener_set_error_cb(s->lst[s->nlst], on_accept_error);
	s->nlst++;
	log_info("signaling: listening for %s on %s%s%s port %d", s->tls != NULL ? "https/wss" : "http/ws",
		 strchr(ip, ':') ? "[" : "", ip, strchr(ip, ':') ? "]" : "", port);
	if (s->ctx.cfg->signaling_open_credentials && s->ctx.cfg->signaling_auth_secret == NULL && !is_loopback(ip))
		log_warnx("signaling: signaling-open-credentials on %s: anyone who reaches this address gets "
			  "TURN credentials; set signaling-auth-secret for a public server", ip);
	return 0;
}

static int listen_all(struct signal_server *s, const struct config *cfg, char *err, size_t errlen)
{
	size_t i;

	if (cfg->n_listening_ip == 0) {
		if (listen_on(s, "0.0.0.0", cfg->signaling_port, err, errlen) < 0)
			return -1;
		if (listen_on(s, "::", cfg->signaling_port, err, errlen) < 0)
			log_warnx("%s; signaling on IPv4 only", err);
		return 0;
	}
	for (i = 0; i < cfg->n_listening_ip && i < CONFIG_MAX_LISTEN; i++)
		if (listen_on(s, cfg->listening_ip[i], cfg->signaling_port, err, errlen) < 0)
			return -1;
	return 0;
}

/* Frees what signal_start built; the thread must not be running. */
static void server_free(struct signal_server *s)
{
	size_t i;

	for (i = 0; i < s->nlst; i++)
		evconnlistener_free(s->lst[i]);
	signal_sessions_free(&s->ctx);
	signal_conn_free_all(&s->ctx);
	signal_ice_free(s->ctx.ice);
	signal_rooms_free(s->ctx.rooms);
	signal_iplimit_free(s->ctx.iplimit);
	if (s->wake != NULL)
		event_free(s->wake);
	if (s->efd >= 0)
		close(s->efd);
	if (s->ctx.base != NULL)
		event_base_free(s->ctx.base);
	SSL_CTX_free(s->tls);
	SSL_CTX_free(s->pending_tls);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

/* signaling-root; but when it is the default and was never installed (the
 * server runs from its build tree) the source tree's share/www, so the page
 * works before `make install`. */
static const char *page_root(const struct config *cfg)
{
#ifdef TURNSTONE_SRCDIR
	struct stat st;

	if (cfg->signaling_root != NULL && strcmp(cfg->signaling_root, CONFIG_DATADIR "/turnstone/www") == 0 &&
	    stat(cfg->signaling_root, &st) < 0 && stat(TURNSTONE_SRCDIR "/share/www/index.html", &st) == 0) {
		log_info("signaling: %s does not exist; serving the page from %s", cfg->signaling_root,
			 TURNSTONE_SRCDIR "/share/www");
		return TURNSTONE_SRCDIR "/share/www";
	}
#endif
	return cfg->signaling_root;
}

/* The Redis of a fleet's rooms: signaling-redis, else redis-userdb; NULL
 * (rooms local to this server) when neither is set or signaling-redis is
 * "off". */
static const char *fleet_conninfo(const struct config *cfg)
{
	if (cfg->signaling_redis != NULL)
		return strcmp(cfg->signaling_redis, "off") == 0 ? NULL : cfg->signaling_redis;
	return cfg->redis_userdb;
}

static int server_init(struct signal_server *s, const struct config *cfg, char *err, size_t errlen)
{
	struct event_config *ec = event_config_new();

	if (ec != NULL) {
		event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
		s->ctx.base = event_base_new_with_config(ec);
		event_config_free(ec);
	}
	if (s->ctx.base == NULL) {
		snprintf(err, errlen, "signaling: cannot create an event base");
		return -1;
	}
	s->ctx.cfg = cfg;
	s->ctx.root = page_root(cfg);
	if ((s->ctx.iplimit = signal_iplimit_new()) == NULL || (s->ctx.sessions = signal_sessions_new()) == NULL ||
	    (s->ctx.rooms = signal_rooms_new((size_t)cfg->signaling_room_size, (size_t)cfg->signaling_max_rooms,
					     signal_conn_send_text)) == NULL) {
		snprintf(err, errlen, "signaling: out of memory");
		return -1;
	}
	if ((s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ||
	    (s->wake = event_new(s->ctx.base, s->efd, EV_READ | EV_PERSIST, on_wake, s)) == NULL ||
	    event_add(s->wake, NULL) < 0) {
		snprintf(err, errlen, "signaling: cannot set up the wake-up eventfd: %s", strerror(errno));
		return -1;
	}
	if ((s->ctx.ice = signal_ice_new(cfg, s->ctx.base, err, errlen)) == NULL)
		return -1;
	if (fleet_conninfo(cfg) != NULL &&
	    signal_rooms_fleet(s->ctx.rooms, s->ctx.base, fleet_conninfo(cfg), cfg->signaling_redis_ttl, err, errlen) < 0) {
		char why[256];

		snprintf(why, sizeof(why), "%s", err);
		snprintf(err, errlen, "%s: %s", cfg->signaling_redis != NULL ? "signaling-redis" : "redis-userdb", why);
		return -1;
	}
	return listen_all(s, cfg, err, errlen);
}

struct signal_server *signal_start(const struct config *cfg, SSL_CTX *tls, char *err, size_t errlen)
{
	struct signal_server *s = calloc(1, sizeof(*s));
	int rc;

	if (s == NULL) {
		snprintf(err, errlen, "signaling: out of memory");
		return NULL;
	}
	s->efd = -1;
	pthread_mutex_init(&s->mu, NULL);
	if (cfg->signaling_tls) {
		if (tls == NULL) {
			snprintf(err, errlen, "signaling-tls needs a TLS certificate ('cert' and 'pkey')");
			server_free(s);
			return NULL;
		}
		SSL_CTX_up_ref(tls);
		s->tls = tls;
	}
	if (server_init(s, cfg, err, errlen) < 0) {
		server_free(s);
		return NULL;
	}
	if ((rc = pthread_create(&s->thread, NULL, signal_thread, s)) != 0) {
		snprintf(err, errlen, "signaling: cannot start the thread: %s", strerror(rc));
		server_free(s);
		return NULL;
	}
	s->running = 1;
	return s;
}

static void wake(struct signal_server *s)
{
	uint64_t one = 1;

	if (write(s->efd, &one, sizeof(one)) < 0)
		log_warn("signaling: eventfd write");
}

void signal_stop(struct signal_server *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	s->stop = 1;
	pthread_mutex_unlock(&s->mu);
	wake(s);
	if (s->running)
		pthread_join(s->thread, NULL);
	server_free(s);
}

void signal_set_tls(struct signal_server *s, SSL_CTX *ctx)
{
	if (s == NULL || ctx == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	SSL_CTX_free(s->pending_tls);
	s->pending_tls = ctx;
	pthread_mutex_unlock(&s->mu);
	wake(s);
}
