/* redis_probe.c -- drives auth_redis on a libevent loop for
 * tests/integration/redis_client.sh. Not installed.
 *
 *   redis_probe --parse CONNINFO
 *       prints "host=H port=P db=D user=U password=W timeout=T", or
 *       "error: MESSAGE" and exits 1.
 *   redis_probe [-v] CONNINFO REALM CACHE_TTL
 *       reads commands on stdin, one per line, and answers on stdout:
 *         key REALM USER    -> "key USER STATUS HEX|- ELAPSED_MS"
 *         cached REALM USER -> "cached USER 0|-1"
 *         secrets REALM     -> "secrets STATUS N S1,S2,..." (sorted)
 *         connected         -> "connected 0|1"
 *         cancel            -> starts a lookup, cancels it: "cancel N"
 *         quit              -> frees everything and exits 0
 *       and prints "kill USER" for every kill message. A callback called
 *       from inside the call that started it prints "REENTERED".
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth_redis.h"
#include "log.h"

struct probe {
	struct event_base *base;
	struct auth_redis *r;
	struct event *in;
	char line[4096];
	size_t len;
	int in_call; /* inside auth_redis_get_key / get_secrets */
};

struct pending {
	struct probe *p;
	char user[512];
	struct timespec t0;
};

static long elapsed_ms(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

static void on_key(void *arg, int status, const uint8_t *key)
{
	struct pending *q = arg;
	char hex[33] = "-";
	int i;

	if (q->p->in_call)
		printf("REENTERED\n");
	if (status == 0)
		for (i = 0; i < 16; i++)
			snprintf(hex + 2 * i, 3, "%02x", key[i]);
	printf("key %s %d %s %ld\n", q->user, status, hex, elapsed_ms(&q->t0));
	fflush(stdout);
	free(q);
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void on_secrets(void *arg, int status, const char *const *secrets, size_t n)
{
	struct probe *p = arg;
	const char **v = calloc(n + 1, sizeof(*v));
	size_t i;

	if (p->in_call)
		printf("REENTERED\n");
	printf("secrets %d %zu ", status, n);
	if (v != NULL) {
		memcpy(v, secrets, n * sizeof(*v));
		qsort(v, n, sizeof(*v), cmp);
		for (i = 0; i < n; i++)
			printf("%s%s", i ? "," : "", v[i]);
		free(v);
	}
	printf("\n");
	fflush(stdout);
}

static void on_kill(void *arg, const char *user)
{
	printf("kill %s\n", user);
	fflush(stdout);
}

static void never_called(void *arg, int status, const uint8_t *key)
{
	printf("CANCELLED CALLBACK CALLED\n");
	fflush(stdout);
}

static void command(struct probe *p, char *line)
{
	char *w[4] = { 0 };
	int n = 0;
	char *save = NULL, *tok;

	for (tok = strtok_r(line, " ", &save); tok != NULL && n < 4; tok = strtok_r(NULL, " ", &save))
		w[n++] = tok;
	if (n == 3 && strcmp(w[0], "key") == 0) {
		struct pending *q = calloc(1, sizeof(*q));

		q->p = p;
		snprintf(q->user, sizeof(q->user), "%s", w[2]);
		clock_gettime(CLOCK_MONOTONIC, &q->t0);
		p->in_call = 1;
		if (auth_redis_get_key(p->r, w[1], w[2], on_key, q) < 0) {
			printf("key %s error - 0\n", w[2]);
			free(q);
		}
		p->in_call = 0;
	} else if (n == 3 && strcmp(w[0], "cached") == 0) {
		uint8_t key[16];

		printf("cached %s %d\n", w[2], auth_redis_cached_key(p->r, w[1], w[2], key));
	} else if (n == 2 && strcmp(w[0], "secrets") == 0) {
		p->in_call = 1;
		if (auth_redis_get_secrets(p->r, w[1], on_secrets, p) < 0)
			printf("secrets error\n");
		p->in_call = 0;
	} else if (n == 1 && strcmp(w[0], "connected") == 0) {
		printf("connected %d\n", auth_redis_connected(p->r));
	} else if (n == 1 && strcmp(w[0], "cancel") == 0) {
		static int tag;

		auth_redis_get_key(p->r, "x", "y", never_called, &tag);
		printf("cancel %zu\n", auth_redis_cancel(p->r, &tag));
	} else if (n == 1 && strcmp(w[0], "quit") == 0) {
		event_base_loopbreak(p->base);
	} else {
		printf("unknown command\n");
	}
	fflush(stdout);
}

static void on_stdin(evutil_socket_t fd, short what, void *arg)
{
	struct probe *p = arg;
	char buf[1024];
	ssize_t n = read(fd, buf, sizeof(buf));
	ssize_t i;

	if (n <= 0) {
		event_base_loopbreak(p->base);
		return;
	}
	for (i = 0; i < n; i++) {
		if (buf[i] == '\n') {
			p->line[p->len] = '\0';
			p->len = 0;
			command(p, p->line);
		} else if (p->len + 1 < sizeof(p->line)) {
			p->line[p->len++] = buf[i];
		}
	}
}

static int parse_only(const char *s)
{
	struct auth_redis_conninfo ci;
	char err[256];

	if (auth_redis_parse_conninfo(s, &ci, err, sizeof(err)) < 0) {
		printf("error: %s\n", err);
		return 1;
	}
	printf("host=%s port=%d db=%d user=%s password=%s timeout=%d\n", ci.host, ci.port, ci.db, ci.user,
	       ci.password, ci.connect_timeout);
	return 0;
}

int main(int argc, char **argv)
{
	struct probe p;
	struct auth_redis_params params;
	char err[256];
	int a = 1;

	if (argc == 3 && strcmp(argv[1], "--parse") == 0)
		return parse_only(argv[2]);
	if (argc > 1 && strcmp(argv[1], "-v") == 0) {
		log_set_level(LOG_LVL_DEBUG);
		a++;
	}
	if (argc - a != 3) {
		fprintf(stderr, "usage: redis_probe --parse CONNINFO | [-v] CONNINFO REALM CACHE_TTL\n");
		return 2;
	}
	memset(&p, 0, sizeof(p));
	memset(&params, 0, sizeof(params));
	params.conninfo = argv[a];
	params.realm = argv[a + 1];
	params.cache_ttl = atoi(argv[a + 2]);
	params.on_kill = on_kill;
	p.base = event_base_new();
	if (p.base == NULL || (p.r = auth_redis_new(p.base, &params, err, sizeof(err))) == NULL) {
		fprintf(stderr, "redis_probe: %s\n", p.base == NULL ? "event_base_new failed" : err);
		return 1;
	}
	p.in = event_new(p.base, 0, EV_READ | EV_PERSIST, on_stdin, &p);
	event_add(p.in, NULL);
	event_base_dispatch(p.base);
	auth_redis_free(p.r);
	event_free(p.in);
	event_base_free(p.base);
	return 0;
}
