/* main.c -- turnstone: start-up, signals, worker threads, shutdown. */
#include "config.h"

#include <errno.h>
#include <ifaddrs.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth_nonce.h"
#include "auth/auth_redis.h"
#include "auth/auth_users.h"
#include "log.h"
#include "net/admin_http.h"
#include "net/ebpf/ebpf.h"
#include "net/limits.h"
#include "net/netaddr.h"
#include "net/reserve.h"
#include "net/tls.h"
#include "signal/signal_server.h"
#include "net/worker.h"
#include "proc.h"
#include "stun/stun_prep.h"

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct event_base *base = arg;

	log_info("signal %d: shutting down", (int)sig);
	event_base_loopbreak(base);
}

/* Draining (SIGUSR1, or POST /drain on the admin listener, which raises
 * SIGUSR1): new Allocates get 508, live allocations keep relaying, and the
 * server stops once the last one is gone or drain-timeout has passed. */
struct drain {
	struct server *srv;
	struct event_base *base;
	struct event *timer;       /* 1 s, while draining */
	uint64_t start;            /* worker_now() when draining began */
};

/* Allocations open on all workers (the allocs[][] gauges). */
static int64_t open_allocations(const struct server *srv)
{
	int64_t n = 0;
	int i, t, f;

	for (i = 0; i < srv->nworkers; i++)
		for (t = 0; t < STATS_NTRANSPORT; t++)
			for (f = 0; f < STATS_NFAMILY; f++)
				n += STAT_GET(srv->workers[i].stats.allocs[t][f]);
	return n;
}

static void drain_check(evutil_socket_t fd, short what, void *arg)
{
	struct drain *d = arg;
	int64_t n = open_allocations(d->srv);
	int timeout = d->srv->cfg->drain_timeout;

	if (n <= 0) {
		log_info("drained: no allocation left, shutting down");
		event_base_loopbreak(d->base);
	} else if (timeout > 0 && worker_now() - d->start >= (uint64_t)timeout) {
		log_info("drain-timeout (%d s) passed with %lld allocation(s) left, shutting down", timeout,
			 (long long)n);
		event_base_loopbreak(d->base);
	}
}

static void on_sigusr1(evutil_socket_t sig, short what, void *arg)
{
	struct drain *d = arg;
	struct timeval one = { 1, 0 };

	if (atomic_exchange(&d->srv->draining, 1)) {
		log_info("SIGUSR1: already draining");
		return;
	}
	d->start = worker_now();
	log_info("SIGUSR1: draining: refusing new allocations, %lld open; exiting when they end%s",
		 (long long)open_allocations(d->srv), d->srv->cfg->drain_timeout > 0 ? " or at drain-timeout" : "");
	if ((d->timer = event_new(d->base, -1, EV_PERSIST, drain_check, d)) == NULL ||
	    event_add(d->timer, &one) < 0)
		log_warnx("cannot start the drain timer: the server will not exit by itself");
	/* The first check is the timer's, a second from now: time for the
	 * admin thread to deliver its answer to POST /drain. */
}

/* SIGHUP: reopen the log file (logrotate), reload the TLS certificate and
 * key. New connections get the new context; existing ones keep theirs. On
 * failure the old one stays. */
static struct signal_server *sigsrv; /* the signaling endpoint, or NULL */

static void on_sighup(evutil_socket_t sig, short what, void *arg)
{
	struct server *srv = arg;
	char err[512];
	SSL_CTX *ctx;
	int i;

	if (log_reopen() < 0)
		log_warn("SIGHUP: cannot reopen log-file '%s', still writing to the old one", srv->cfg->log_file);
	else if (srv->cfg->log_file != NULL && !srv->cfg->syslog)
		log_info("SIGHUP: log-file '%s' reopened", srv->cfg->log_file);
	if (srv->tls == NULL) {
		log_info("SIGHUP: TLS is off, nothing to reload");
		return;
	}
	if ((ctx = tls_ctx_new(srv->cfg, err, sizeof(err))) == NULL) {
		log_warnx("SIGHUP: certificate reload failed, keeping the old one: %s", err);
		return;
	}
	for (i = 0; i < srv->nworkers; i++) {
		SSL_CTX_up_ref(ctx);
		if (worker_post(&srv->workers[i], WORKER_MSG_TLS_CTX, ctx) < 0) {
			SSL_CTX_free(ctx);
			log_warnx("SIGHUP: worker %d did not take the new certificate", i);
		}
	}
	if (sigsrv != NULL && srv->cfg->signaling_tls) {
		SSL_CTX_up_ref(ctx);
		signal_set_tls(sigsrv, ctx);
	}
	SSL_CTX_free(srv->tls);
	srv->tls = ctx;
	log_info("SIGHUP: certificate '%s' reloaded", srv->cfg->cert);
}

/* Resolves listening, relay and external addresses into srv. Returns 0 or -1. */
static int server_addresses(struct server *srv, const struct config *cfg, char *err, size_t errlen)
{
	size_t i;

	if (cfg->n_listening_ip == 0) {
		netaddr_parse_ip(&srv->listen[0], "0.0.0.0", 0);
		netaddr_parse_ip(&srv->listen[1], "::", 0);
		srv->nlisten = 2;
	}
	for (i = 0; i < cfg->n_listening_ip; i++) {
		if (netaddr_parse_ip(&srv->listen[srv->nlisten++], cfg->listening_ip[i], 0) < 0) {
			snprintf(err, errlen, "listening-ip '%s' is not an IP address", cfg->listening_ip[i]);
			return -1;
		}
	}
	for (i = 0; i < cfg->n_relay_ip; i++) {
		struct stun_addr a;

		if (netaddr_parse_ip(&a, cfg->relay_ip[i], 0) < 0 || netaddr_is_any(&a)) {
			snprintf(err, errlen, "relay-ip '%s' is not a unicast IP address", cfg->relay_ip[i]);
			return -1;
		}
		if (a.family == STUN_AF_IPV4)
			srv->relay4[srv->nrelay4++] = a;
		else
			srv->relay6[srv->nrelay6++] = a;
	}
	/* external-ip, repeatable (coturn): PUBLIC/PRIVATE pairs, one per
	 * relay address, or one PUBLIC for every relay of its family. */
	for (i = 0; i < cfg->n_external_ip; i++) {
		struct server_ext *x = &srv->ext[srv->next];
		char buf[128], *slash;

		snprintf(buf, sizeof(buf), "%s", cfg->external_ips[i]);
		if ((slash = strchr(buf, '/')) != NULL)
			*slash++ = '\0';
		memset(x, 0, sizeof(*x));
		if (netaddr_parse_ip(&x->pub, buf, 0) < 0 ||
		    (slash != NULL && (netaddr_parse_ip(&x->priv, slash, 0) < 0 || x->priv.family != x->pub.family))) {
			snprintf(err, errlen, "external-ip '%s' must be PUBLIC or PUBLIC/PRIVATE IP addresses",
				 cfg->external_ips[i]);
			return -1;
		}
		srv->next++;
	}
	return 0;
}

/* The server's own addresses for the relay's self check (net/selfaddr.h):
 * listening, relay and external IPs and, since wildcard listeners and relays
 * bound to the address a client reached make them own too, every interface
 * address at start. */
static void server_self_addrs(struct server *srv, const struct config *cfg)
{
	struct ifaddrs *ifs, *i;
	struct stun_addr a;
	size_t k;

	selfaddr_init(&srv->self, cfg);
	for (k = 0; k < srv->nlisten; k++)
		selfaddr_add_ip(&srv->self, &srv->listen[k]);
	for (k = 0; k < srv->nrelay4; k++)
		selfaddr_add_ip(&srv->self, &srv->relay4[k]);
	for (k = 0; k < srv->nrelay6; k++)
		selfaddr_add_ip(&srv->self, &srv->relay6[k]);
	for (k = 0; k < srv->next; k++) {
		selfaddr_add_ip(&srv->self, &srv->ext[k].pub);
		selfaddr_add_ip(&srv->self, &srv->ext[k].priv);
	}
	if (getifaddrs(&ifs) < 0) {
		log_warn("getifaddrs: interface addresses not known as own");
		return;
	}
	for (i = ifs; i != NULL; i = i->ifa_next)
		if (i->ifa_addr != NULL && netaddr_from_sockaddr(&a, i->ifa_addr) == 0)
			selfaddr_add_ip(&srv->self, &a);
	freeifaddrs(ifs);
}

/* Sets up the workers and binds their sockets (threads not started yet, so
 * that privileges can be dropped in between). Returns 0 or -1. */
static int init_workers(struct server *srv, char *err, size_t errlen)
{
	int i;

	for (i = 0; i < srv->nworkers; i++) {
		if (worker_init(&srv->workers[i], i, srv, err, errlen) < 0) {
			worker_free(&srv->workers[i]);
			while (i-- > 0)
				worker_free(&srv->workers[i]);
			return -1;
		}
	}
	return 0;
}

static void start_workers(struct server *srv)
{
	int i;

	for (i = 0; i < srv->nworkers; i++)
		if (worker_start(&srv->workers[i]) < 0)
			fatal("cannot start worker thread");
}

/* Everything between binding the ports and starting the workers: the
 * pidfile (written as root), then the privilege drop. Returns 0 or -1. */
static int become_daemon(const struct config *cfg, char *err, size_t errlen)
{
	if (cfg->pidfile != NULL && proc_write_pidfile(cfg->pidfile, err, errlen) < 0)
		return -1;
	if (proc_drop_privileges(cfg, err, errlen) < 0) {
		if (cfg->pidfile != NULL)
			unlink(cfg->pidfile);
		return -1;
	}
	return 0;
}

/* How far the workers got, for server_free. */
enum { WORKERS_NONE, WORKERS_BOUND, WORKERS_RUNNING };

/* Stops (when running) and frees (when bound or running) the workers, then
 * everything else the server owns, and the configuration. */
static void server_free(struct server *srv, struct config *cfg, int workers)
{
	int i;

	if (workers == WORKERS_RUNNING)
		for (i = 0; i < srv->nworkers; i++)
			worker_stop(&srv->workers[i]);
	if (workers != WORKERS_NONE)
		for (i = 0; i < srv->nworkers; i++)
			worker_free(&srv->workers[i]);
	if (srv->tls != NULL)
		SSL_CTX_free(srv->tls);
	free(srv->workers);
	limits_free(srv);
	reserve_clear();
	auth_users_free(srv->users);
	config_free(cfg);
}

int main(int argc, char **argv)
{
	struct config cfg;
	struct server srv;
	struct event_base *base;
	struct event *sigs[4];
	struct admin_http *admin = NULL;
	struct drain drain;
	char err[512];
	int want_help = 0, i, rc;

	config_defaults(&cfg);
	if (config_load(&cfg, argc, argv, &want_help, err, sizeof(err)) < 0 ||
	    (!want_help && config_validate(&cfg, err, sizeof(err)) < 0)) {
		fprintf(stderr, "turnstone: %s\n", err);
		config_free(&cfg);
		return 2;
	}
	if (want_help) {
		config_usage(argv[0]);
		config_free(&cfg);
		return 0;
	}
	if (cfg.redis_userdb != NULL) {
		struct auth_redis_conninfo ci;
		char why[256];

		if (auth_redis_parse_conninfo(cfg.redis_userdb, &ci, why, sizeof(why)) < 0) {
			fprintf(stderr, "turnstone: redis-userdb: %s\n", why);
			config_free(&cfg);
			return 2;
		}
	}
	if (cfg.redis_statsdb != NULL) {
		struct auth_redis_conninfo ci;
		char why[256];

		if (auth_redis_parse_conninfo(cfg.redis_statsdb, &ci, why, sizeof(why)) < 0) {
			fprintf(stderr, "turnstone: redis-statsdb: %s\n", why);
			config_free(&cfg);
			return 2;
		}
	}
	if (cfg.check_only) {
		/* --check-config: what a start would say about the file, then stop. */
		static struct server chk; /* only its address fields are used */

		if (server_addresses(&chk, &cfg, err, sizeof(err)) < 0) {
			fprintf(stderr, "turnstone: %s\n", err);
			config_free(&cfg);
			return 2;
		}
		if (cfg.warnings != NULL)
			fprintf(stderr, "%s", cfg.warnings);
		printf("turnstone: configuration OK (%s)\n",
		       cfg.config_file == NULL ? "command line only"
		       : cfg.coturn_format     ? "coturn's turnserver.conf format"
					       : "libconfig format");
		config_free(&cfg);
		return 0;
	}
	if (cfg.syslog)
		log_use_syslog("turnstone");
	else if (cfg.log_file != NULL && log_open(cfg.log_file) < 0) {
		fprintf(stderr, "turnstone: cannot open log-file '%s': %s\n", cfg.log_file, strerror(errno));
		config_free(&cfg);
		return 2;
	}
	log_set_level(cfg.verbose ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	/* coturn keys accepted without effect: one line each (issue 12). */
	for (const char *p = cfg.warnings, *nl; p != NULL && (nl = strchr(p, '\n')) != NULL; p = nl + 1)
		log_warnx("%.*s", (int)(nl - p), p);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGUSR1, SIG_IGN); /* until the drain handler is installed: not fatal */
	evthread_use_pthreads();

	memset(&srv, 0, sizeof(srv));
	srv.cfg = &cfg;
	if (server_addresses(&srv, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "turnstone: %s\n", err);
		config_free(&cfg);
		return 2;
	}
	server_self_addrs(&srv, &cfg);
	for (i = 0; i < (int)cfg.n_users; i++) {
		char prep[1024];

		/* RFC 8489 §9.2.2: OpaqueString (stun_prep.h) refuses it, so no key */
		if (stun_opaque_string(cfg.users[i].password, prep, sizeof(prep)) < 0 ||
		    stun_opaque_string(cfg.realm, prep, sizeof(prep)) < 0) {
			fprintf(stderr, "turnstone: user '%s': the password or realm is empty, has control characters "
					"or is not UTF-8\n", cfg.users[i].name);
			config_free(&cfg);
			return 2;
		}
	}
	if ((srv.users = auth_users_new(cfg.realm, cfg.users, cfg.n_users)) == NULL ||
	    auth_nonce_init(&srv.nonce, (uint32_t)cfg.stale_nonce) < 0)
		fatalx("cannot set up credentials");
	if (cfg.allow_loopback_peers)
		log_warnx("allow-loopback-peers is on: clients may relay to this host's loopback services");
	srv.nworkers = cfg.relay_threads > 0 ? cfg.relay_threads : 1;
	proc_raise_nofile(&cfg, srv.nworkers);
	if ((srv.workers = calloc((size_t)srv.nworkers, sizeof(*srv.workers))) == NULL)
		fatal("calloc");
	if (!cfg.no_tls && (cfg.cert != NULL || cfg.pkey != NULL)) {
		if ((srv.tls = tls_ctx_new(&cfg, err, sizeof(err))) == NULL) {
			fprintf(stderr, "turnstone: %s\n", err);
			free(srv.workers);
			auth_users_free(srv.users);
			config_free(&cfg);
			return 2;
		}
	} else if (!cfg.no_tls) {
		log_info("TLS is off: set 'cert' and 'pkey' to listen on port %d", cfg.tls_listening_port);
	}
	if (limits_init(&srv, err, sizeof(err)) < 0)
		fatalx("%s", err);
	rc = init_workers(&srv, err, sizeof(err));
	if (rc < 0 && cfg.n_listening_ip == 0 && srv.nlisten == 2) {
		log_warnx("%s; listening on IPv4 only", err);
		srv.nlisten = 1;
		rc = init_workers(&srv, err, sizeof(err));
	}
	if (rc < 0) {
		log_err("%s", err);
		server_free(&srv, &cfg, WORKERS_NONE);
		return 1;
	}
	if (!cfg.no_signaling && (sigsrv = signal_start(&cfg, srv.tls, err, sizeof(err))) == NULL) {
		log_err("signaling: %s", err);
		server_free(&srv, &cfg, WORKERS_BOUND);
		return 1;
	}
	if (cfg.prometheus && (admin = admin_http_start(&srv, err, sizeof(err))) == NULL) {
		log_err("%s", err);
		if (sigsrv != NULL)
			signal_stop(sigsrv);
		server_free(&srv, &cfg, WORKERS_BOUND);
		return 1;
	}
	ebpf_offload_start(&cfg); /* as root, before the privilege drop */
	if (become_daemon(&cfg, err, sizeof(err)) < 0) {
		ebpf_offload_stop();
		log_err("%s", err);
		admin_http_stop(admin);
		if (sigsrv != NULL)
			signal_stop(sigsrv);
		server_free(&srv, &cfg, WORKERS_BOUND);
		return 1;
	}
	start_workers(&srv);
	for (i = 0; i < (int)srv.nlisten; i++) {
		char as[NETADDR_STRLEN];
		struct stun_addr a = srv.listen[i];

		a.port = (uint16_t)cfg.listening_port;
		log_info("listening on%s%s %s", cfg.no_udp ? "" : " UDP", cfg.no_tcp ? "" : " TCP",
			 netaddr_str(&a, as));
		if (srv.tls != NULL) {
			a.port = (uint16_t)cfg.tls_listening_port;
			log_info("listening on TLS %s", netaddr_str(&a, as));
		}
	}
	log_info("turnstone ready: realm '%s', %d relay threads, relay ports %d-%d, %zu users", cfg.realm,
		 srv.nworkers, cfg.min_port, cfg.max_port, cfg.n_users);

	if ((base = event_base_new()) == NULL)
		fatalx("cannot create the main event loop");
	sigs[0] = evsignal_new(base, SIGINT, on_signal, base);
	sigs[1] = evsignal_new(base, SIGTERM, on_signal, base);
	sigs[2] = evsignal_new(base, SIGHUP, on_sighup, &srv);
	memset(&drain, 0, sizeof(drain));
	drain.srv = &srv;
	drain.base = base;
	sigs[3] = evsignal_new(base, SIGUSR1, on_sigusr1, &drain);
	for (i = 0; i < 4; i++)
		event_add(sigs[i], NULL);
	event_base_dispatch(base);

	admin_http_stop(admin);
	if (drain.timer != NULL)
		event_free(drain.timer);
	if (sigsrv != NULL)
		signal_stop(sigsrv);
	for (i = 0; i < 4; i++)
		event_free(sigs[i]);
	event_base_free(base);
	if (cfg.pidfile != NULL && unlink(cfg.pidfile) < 0)
		log_warn("cannot remove pidfile '%s' (with proc-user, keep it in a directory that user may "
			 "write)", cfg.pidfile);
	server_free(&srv, &cfg, WORKERS_RUNNING);
	ebpf_offload_stop(); /* the workers have emptied its map */
	log_info("stopped");
	return 0;
}
