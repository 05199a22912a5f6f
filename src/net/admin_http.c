/* admin_http.c -- the admin HTTP listener: /metrics, /healthz, /ready,
 * /sessions and /drain on an evhttp server running on its own thread. */
#include "net/admin_http.h"

#include <dirent.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "net/metrics.h"
#include "net/sessions.h"

#define HEALTH_STALL 5          /* s without a tick before /healthz says a worker is stuck */
#define SESSIONS_TIMEOUT_MS 2000 /* how long /sessions waits for the workers */
#define READY_PERCENT 90        /* /ready fails above this share of a limit */

struct admin_http {
	struct server *srv;
	struct event_base *base;
	struct evhttp *http;
	struct event *tick;
	pthread_t thread;
	double start_time;          /* Unix time, seconds */
	uint64_t *ticks;            /* per worker: loop_ticks last seen ... */
	uint64_t *changed;          /* ... and the monotonic second it last moved */
	/* relayed bytes per direction at the last rate sample, its time, and
	 * the rate since the one before (bytes/s), for /ready's bps-capacity */
	uint64_t rate_bytes[STATS_NDIR];
	double rate_at;
	uint64_t rate_bps[STATS_NDIR];
};

static uint64_t mono_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec;
}

/* Descriptors open now (-1 unknown) and the soft limit (-1 unlimited). */
static void fd_usage(long *open_fds, long *max_fds)
{
	struct rlimit rl;
	struct dirent *de;
	DIR *d;
	long n = 0;

	*max_fds = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? (long)rl.rlim_cur : -1;
	*open_fds = -1;
	if ((d = opendir("/proc/self/fd")) == NULL)
		return;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	*open_fds = n - 1; /* not the one opendir used */
}

/* Sends code with body (len bytes) of content type ctype. */
static void reply(struct evhttp_request *req, int code, const char *ctype, const char *body, size_t len)
{
	struct evbuffer *out = evhttp_request_get_output_buffer(req);

	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", ctype);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "no-store");
	if (evhttp_request_get_command(req) != EVHTTP_REQ_HEAD)
		evbuffer_add(out, body, len);
	evhttp_send_reply(req, code, code == 200 ? "OK" : code == 202 ? "Accepted" : NULL, NULL);
}

static void reply_text(struct evhttp_request *req, int code, const char *text)
{
	reply(req, code, "text/plain; charset=utf-8", text, strlen(text));
}

static void handle_metrics(struct admin_http *h, struct evhttp_request *req)
{
	struct server *srv = h->srv;
	const struct worker_stats **ws = calloc((size_t)srv->nworkers, sizeof(*ws));
	const struct auth_redis_stats **rs = calloc((size_t)srv->nworkers, sizeof(*rs));
	struct metrics_input in;
	char *text = NULL;
	size_t len = 0;
	FILE *f = NULL;
	int i, rc = -1;

	if (ws != NULL && rs != NULL && (f = open_memstream(&text, &len)) != NULL) {
		memset(&in, 0, sizeof(in));
		for (i = 0; i < srv->nworkers; i++) {
			ws[i] = &srv->workers[i].stats;
			rs[i] = srv->workers[i].redis != NULL ? auth_redis_stats(srv->workers[i].redis) : NULL;
		}
		in.workers = ws;
		in.nworkers = (size_t)srv->nworkers;
		in.redis = rs;
		in.nredis = srv->cfg->redis_userdb != NULL ? (size_t)srv->nworkers : 0;
		in.draining = atomic_load(&srv->draining);
		in.start_time = h->start_time;
		fd_usage(&in.open_fds, &in.max_fds);
		rc = metrics_render(f, &in);
		if (fclose(f) != 0)
			rc = -1;
	}
	if (rc == 0)
		reply(req, 200, METRICS_CONTENT_TYPE, text, len);
	else
		reply_text(req, 500, "out of memory\n");
	free(text);
	free(ws);
	free(rs);
}

static double mono_dsec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Relayed bytes/s per direction over the last second or more: the sum of
 * every worker's byte counters, differenced (bps-capacity on /ready). */
static void sample_rate(struct admin_http *h)
{
	double now = mono_dsec();
	uint64_t sum[STATS_NDIR] = { 0 };
	int i, d;

	if (now - h->rate_at < 0.9)
		return;
	for (i = 0; i < h->srv->nworkers; i++)
		for (d = 0; d < STATS_NDIR; d++)
			sum[d] += STAT_GET(h->srv->workers[i].stats.bytes[d]);
	for (d = 0; d < STATS_NDIR; d++) {
		if (h->rate_at > 0)
			h->rate_bps[d] = (uint64_t)((double)(sum[d] - h->rate_bytes[d]) / (now - h->rate_at));
		h->rate_bytes[d] = sum[d];
	}
	h->rate_at = now;
}

/* Samples the workers' tick counters (on this thread). */
static void sample_ticks(struct admin_http *h)
{
	uint64_t now = mono_sec();
	int i;

	for (i = 0; i < h->srv->nworkers; i++) {
		uint64_t t = STAT_GET(h->srv->workers[i].stats.loop_ticks);

		if (t != h->ticks[i]) {
			h->ticks[i] = t;
			h->changed[i] = now;
		}
	}
}

/* Every second: health and rate samples. */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct admin_http *h = arg;

	sample_ticks(h);
	sample_rate(h);
}

static void handle_healthz(struct admin_http *h, struct evhttp_request *req)
{
	uint64_t now = mono_sec();
	char buf[128];
	int i;

	sample_ticks(h);
	for (i = 0; i < h->srv->nworkers; i++) {
		if (now - h->changed[i] > HEALTH_STALL) {
			snprintf(buf, sizeof(buf), "worker %d: event loop stalled for %llu s\n", i,
				 (unsigned long long)(now - h->changed[i]));
			reply_text(req, 503, buf);
			return;
		}
	}
	reply_text(req, 200, "ok\n");
}

/* Why the server is near a quota (90 % of total-quota or bps-capacity in
 * use), written into buf; NULL when it is not. */
static const char *ready_quota_reason(struct admin_http *h, char *buf, size_t len)
{
	const struct server *srv = h->srv;
	const struct config *cfg = srv->cfg;
	int64_t allocs = 0;
	int i, t, f, d;

	if (cfg->total_quota > 0) {
		for (i = 0; i < srv->nworkers; i++)
			for (t = 0; t < STATS_NTRANSPORT; t++)
				for (f = 0; f < STATS_NFAMILY; f++)
					allocs += STAT_GET(srv->workers[i].stats.allocs[t][f]);
		if (allocs * 100 >= (int64_t)cfg->total_quota * READY_PERCENT) {
			snprintf(buf, len, "total-quota: %lld of %d allocations in use", (long long)allocs,
				 cfg->total_quota);
			return buf;
		}
	}
	if (cfg->bps_capacity > 0)
		for (d = 0; d < STATS_NDIR; d++)
			if (h->rate_bps[d] * 100 >= (uint64_t)cfg->bps_capacity * READY_PERCENT) {
				snprintf(buf, len, "bps-capacity: %llu of %d bytes/s relayed %s",
					 (unsigned long long)h->rate_bps[d], cfg->bps_capacity,
					 d == STATS_TO_PEER ? "to peers" : "to clients");
				return buf;
			}
	return NULL;
}

/* Appends the reasons the server should get no new allocations to f.
 * Returns how many there are. */
static int ready_reasons(struct admin_http *h, FILE *f)
{
	struct server *srv = h->srv;
	long open_fds, max_fds;
	char buf[256];
	const char *why;
	int i, down = 0, n = 0;

	if (atomic_load(&srv->draining)) {
		fputs("draining\n", f);
		n++;
	}
	if (srv->cfg->redis_userdb != NULL) {
		for (i = 0; i < srv->nworkers; i++)
			if (srv->workers[i].redis == NULL ||
			    !atomic_load(&auth_redis_stats(srv->workers[i].redis)->connected))
				down++;
		if (down > 0) {
			fprintf(f, "redis: %d of %d workers cannot look up credentials\n", down, srv->nworkers);
			n++;
		}
	}
	fd_usage(&open_fds, &max_fds);
	if (open_fds >= 0 && max_fds > 0 && open_fds * 100 > max_fds * READY_PERCENT) {
		fprintf(f, "descriptors: %ld of %ld in use\n", open_fds, max_fds);
		n++;
	}
	if ((why = ready_quota_reason(h, buf, sizeof(buf))) != NULL) {
		fprintf(f, "%s\n", why);
		n++;
	}
	return n;
}

static void handle_ready(struct admin_http *h, struct evhttp_request *req)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	int n;

	if (f == NULL) {
		reply_text(req, 500, "out of memory\n");
		return;
	}
	n = ready_reasons(h, f);
	if (n == 0)
		fputs("ready\n", f);
	if (fclose(f) != 0) {
		free(text);
		reply_text(req, 500, "out of memory\n");
		return;
	}
	reply(req, n == 0 ? 200 : 503, "text/plain; charset=utf-8", text, len);
	free(text);
}

static void handle_sessions(struct admin_http *h, struct evhttp_request *req)
{
	struct session_info *v = NULL;
	size_t n = 0, len = 0;
	int truncated = 0;
	char *text = NULL;
	FILE *f;

	if (sessions_collect(h->srv, SESSIONS_TIMEOUT_MS, &v, &n, &truncated) < 0) {
		reply_text(req, 503, "a worker did not answer in time\n");
		return;
	}
	if ((f = open_memstream(&text, &len)) == NULL) {
		free(v);
		reply_text(req, 500, "out of memory\n");
		return;
	}
	sessions_json(f, v, n);
	free(v);
	if (fclose(f) != 0) {
		free(text);
		reply_text(req, 500, "out of memory\n");
		return;
	}
	if (truncated)
		evhttp_add_header(evhttp_request_get_output_headers(req), "X-Turnstone-Truncated", "1");
	reply(req, 200, "application/json", text, len);
	free(text);
}

/* 1 when the request comes from a loopback address. */
static int from_loopback(struct evhttp_request *req)
{
	struct evhttp_connection *c = evhttp_request_get_connection(req);
	const char *ip = NULL;
	ev_uint16_t port;

	if (c == NULL)
		return 0;
	evhttp_connection_get_peer(c, (char **)&ip, &port);
	return ip != NULL && (strncmp(ip, "127.", 4) == 0 || strcmp(ip, "::1") == 0 ||
			      strncmp(ip, "::ffff:127.", 11) == 0);
}

static void handle_drain(struct admin_http *h, struct evhttp_request *req)
{
	if (!from_loopback(req)) {
		reply_text(req, 403, "drain is only accepted from loopback\n");
		return;
	}
	/* The main thread owns the drain (timer, exit): the same path as
	 * `kill -USR1`, so both behave alike. */
	log_info("admin: drain requested over HTTP");
	if (kill(getpid(), SIGUSR1) < 0) {
		reply_text(req, 500, "cannot signal the main thread\n");
		return;
	}
	reply_text(req, 202, "draining\n");
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct admin_http *h = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	int get = cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD;

	if (path == NULL) {
		reply_text(req, 400, "bad request\n");
		return;
	}
	if (strcmp(path, "/drain") == 0) {
		if (cmd == EVHTTP_REQ_POST)
			handle_drain(h, req);
		else
			reply_text(req, 405, "use POST\n");
		return;
	}
	if (strcmp(path, "/metrics") != 0 && strcmp(path, "/healthz") != 0 && strcmp(path, "/ready") != 0 &&
	    strcmp(path, "/sessions") != 0) {
		reply_text(req, 404, "not found: try /metrics, /healthz, /ready, /sessions\n");
		return;
	}
	if (!get) {
		reply_text(req, 405, "use GET\n");
		return;
	}
	if (strcmp(path, "/metrics") == 0)
		handle_metrics(h, req);
	else if (strcmp(path, "/healthz") == 0)
		handle_healthz(h, req);
	else if (strcmp(path, "/ready") == 0)
		handle_ready(h, req);
	else
		handle_sessions(h, req);
}

static void *admin_main(void *arg)
{
	struct admin_http *h = arg;

	event_base_dispatch(h->base);
	return NULL;
}

static void admin_free(struct admin_http *h)
{
	if (h->tick != NULL)
		event_free(h->tick);
	if (h->http != NULL)
		evhttp_free(h->http);
	if (h->base != NULL)
		event_base_free(h->base);
	free(h->ticks);
	free(h->changed);
	free(h);
}

struct admin_http *admin_http_start(struct server *srv, char *err, size_t errlen)
{
	const struct config *cfg = srv->cfg;
	const char *ip = cfg->prometheus_ip != NULL ? cfg->prometheus_ip : "127.0.0.1";
	struct timeval one = { 1, 0 };
	struct admin_http *h;
	int i, rc;

	if ((h = calloc(1, sizeof(*h))) == NULL)
		goto oom;
	h->srv = srv;
	h->start_time = (double)time(NULL);
	h->ticks = calloc((size_t)srv->nworkers, sizeof(*h->ticks));
	h->changed = calloc((size_t)srv->nworkers, sizeof(*h->changed));
	if (h->ticks == NULL || h->changed == NULL || (h->base = event_base_new()) == NULL ||
	    (h->http = evhttp_new(h->base)) == NULL ||
	    (h->tick = event_new(h->base, -1, EV_PERSIST, on_tick, h)) == NULL || event_add(h->tick, &one) < 0)
		goto oom;
	for (i = 0; i < srv->nworkers; i++)
		h->changed[i] = mono_sec();
	evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST);
	evhttp_set_timeout(h->http, 10);
	evhttp_set_max_headers_size(h->http, 8192);
	evhttp_set_max_body_size(h->http, 1024);
	evhttp_set_gencb(h->http, on_request, h);
	if (evhttp_bind_socket_with_handle(h->http, ip, (ev_uint16_t)cfg->prometheus_port) == NULL) {
		snprintf(err, errlen, "prometheus: cannot listen on %s port %d: %s", ip, cfg->prometheus_port,
			 strerror(errno));
		admin_free(h);
		return NULL;
	}
	if ((rc = pthread_create(&h->thread, NULL, admin_main, h)) != 0) {
		snprintf(err, errlen, "prometheus: cannot start its thread: %s", strerror(rc));
		admin_free(h);
		return NULL;
	}
	log_info("admin HTTP (metrics) listening on %s%s%s:%d", strchr(ip, ':') ? "[" : "", ip,
		 strchr(ip, ':') ? "]" : "", cfg->prometheus_port);
	return h;
oom:
	snprintf(err, errlen, "prometheus: out of memory");
	if (h != NULL)
		admin_free(h);
	return NULL;
}

void admin_http_stop(struct admin_http *h)
{
	if (h == NULL)
		return;
	event_base_loopexit(h->base, NULL);
	pthread_join(h->thread, NULL);
	admin_free(h);
}
