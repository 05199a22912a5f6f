/* sessions.c -- snapshots of the workers' allocations for GET /sessions:
 * a reference-counted request handed to each worker through its message
 * queue, filled on the worker's thread, awaited with a timeout. */
#include "net/sessions.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net/netaddr.h"

/* One worker's answer. */
struct sessions_slot {
	struct session_info *v;
	size_t n;
	int truncated;
};

struct sessions_req {
	pthread_mutex_t lock;    /* guards everything below */
	pthread_cond_t done;     /* signalled when pending drops */
	int refs;                /* the collector + each message not yet handled */
	int pending;             /* workers that have not answered */
	int nslots;
	struct sessions_slot slots[];
};

static void req_free(struct sessions_req *q)
{
	int i;

	for (i = 0; i < q->nslots; i++)
		free(q->slots[i].v);
	pthread_cond_destroy(&q->done);
	pthread_mutex_destroy(&q->lock);
	free(q);
}

void sessions_req_put(struct sessions_req *q)
{
	int last;

	pthread_mutex_lock(&q->lock);
	last = --q->refs == 0;
	pthread_mutex_unlock(&q->lock);
	if (last)
		req_free(q);
}

struct fill_ctx {
	struct session_info *v;
	size_t n, cap;
	int truncated;
	uint64_t now;
	int worker;
};

static void fill_one(struct turn_alloc *a, void *arg)
{
	struct fill_ctx *f = arg;
	struct session_info *s;

	if (a->io == NULL)
		return; /* not set up yet (cannot happen between events) */
	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 64;
		struct session_info *v;

		if (cap > SESSIONS_MAX_PER_WORKER)
			cap = SESSIONS_MAX_PER_WORKER;
		if (f->n == cap || (v = realloc(f->v, cap * sizeof(*v))) == NULL) {
			f->truncated = 1;
			return;
		}
		f->v = v;
		f->cap = cap;
	}
	s = &f->v[f->n++];
	snprintf(s->user, sizeof(s->user), "%s", a->username);
	s->client = a->client;
	s->relay = a->relay;
	s->transport = a->stats_transport;
	s->worker = f->worker;
	s->age = f->now > a->created ? f->now - a->created : 0;
	s->expires_in = a->expires > f->now ? a->expires - f->now : 0;
	s->bytes_to_peer = a->bytes_to_peer;
	s->bytes_to_client = a->bytes_to_client;
	s->packets_to_peer = a->packets_to_peer;
	s->packets_to_client = a->packets_to_client;
}

void sessions_fill(struct worker *w, struct sessions_req *q)
{
	struct fill_ctx f = { NULL, 0, 0, 0, worker_now(), w->id };

	/* Built without the lock: only this worker writes its slot. */
	turn_table_foreach(&w->allocs, fill_one, &f);
	pthread_mutex_lock(&q->lock);
	if (w->id < q->nslots) {
		q->slots[w->id].v = f.v;
		q->slots[w->id].n = f.n;
		q->slots[w->id].truncated = f.truncated;
		f.v = NULL;
	}
	q->pending--;
	pthread_cond_signal(&q->done);
	pthread_mutex_unlock(&q->lock);
	free(f.v);
	sessions_req_put(q);
}

/* Concatenates the slots of a complete request. Lock held. */
static int gather(struct sessions_req *q, struct session_info **out, size_t *n, int *truncated)
{
	size_t total = 0, k = 0;
	int i;

	*truncated = 0;
	for (i = 0; i < q->nslots; i++) {
		total += q->slots[i].n;
		*truncated |= q->slots[i].truncated;
	}
	*out = NULL;
	*n = total;
	if (total == 0)
		return 0;
	if ((*out = malloc(total * sizeof(**out))) == NULL)
		return -1;
	for (i = 0; i < q->nslots; i++) {
		if (q->slots[i].n > 0)
			memcpy(*out + k, q->slots[i].v, q->slots[i].n * sizeof(**out));
		k += q->slots[i].n;
	}
	return 0;
}

int sessions_collect(struct server *srv, int timeout_ms, struct session_info **out, size_t *n, int *truncated)
{
	struct sessions_req *q;
	struct timespec end;
	int i, rc = 0;

	q = calloc(1, sizeof(*q) + (size_t)srv->nworkers * sizeof(q->slots[0]));
	if (q == NULL)
		return -1;
	pthread_mutex_init(&q->lock, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&q->done, &ca);
		pthread_condattr_destroy(&ca);
	}
	q->nslots = srv->nworkers;
	q->refs = 1;
	for (i = 0; i < srv->nworkers; i++) {
		pthread_mutex_lock(&q->lock);
		q->refs++;
		q->pending++;
		pthread_mutex_unlock(&q->lock);
		if (worker_post(&srv->workers[i], WORKER_MSG_SESSIONS, q) < 0) {
			/* Not queued (out of memory) or queued but the wake-up
			 * failed: either way we cannot count on an answer. */
			rc = -1;
			break;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += timeout_ms / 1000;
	end.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (end.tv_nsec >= 1000000000L) {
		end.tv_sec++;
		end.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&q->lock);
	while (rc == 0 && q->pending > 0)
		if (pthread_cond_timedwait(&q->done, &q->lock, &end) == ETIMEDOUT)
			break;
	if (rc == 0 && q->pending == 0)
		rc = gather(q, out, n, truncated);
	else
		rc = -1;
	pthread_mutex_unlock(&q->lock);
	sessions_req_put(q);
	return rc;
}

/* Length of the valid UTF-8 sequence at p (RFC 3629), or 0. */
static int utf8_len(const unsigned char *p)
{
	unsigned char lo = 0x80, hi = 0xbf;
	int n, i;

	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (p[0] == 0xe0)
		lo = 0xa0;
	else if (p[0] == 0xed)
		hi = 0x9f;
	else if (p[0] == 0xf0)
		lo = 0x90;
	else if (p[0] == 0xf4)
		hi = 0x8f;
	for (i = 1; i < n; i++, lo = 0x80, hi = 0xbf)
		if (p[i] < lo || p[i] > hi)
			return 0; /* also stops at the terminating NUL */
	return n;
}

/* Writes s as a JSON string: valid UTF-8 as is, other bytes as \u00XX. */
static void json_str(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	int n;

	fputc('"', f);
	while (*p != '\0') {
		if (*p == '"' || *p == '\\') {
			fprintf(f, "\\%c", *p++);
		} else if (*p < 0x20 || *p == 0x7f) {
			fprintf(f, "\\u%04x", *p++);
		} else if (*p < 0x80) {
			fputc(*p++, f);
		} else if ((n = utf8_len(p)) > 0) {
			fwrite(p, 1, (size_t)n, f);
			p += n;
		} else {
			fprintf(f, "\\u%04x", *p++);
		}
	}
	fputc('"', f);
}

void sessions_json(FILE *f, const struct session_info *v, size_t n)
{
	static const char *const transports[] = { "udp", "tcp", "tls" };
	char cs[NETADDR_STRLEN], rs[NETADDR_STRLEN];
	size_t i;

	fputc('[', f);
	for (i = 0; i < n; i++) {
		const struct session_info *s = &v[i];

		fputs(i ? ",\n{\"user\":" : "\n{\"user\":", f);
		json_str(f, s->user);
		fprintf(f,
			",\"client\":\"%s\",\"relay\":\"%s\",\"transport\":\"%s\",\"worker\":%d,"
			"\"age_seconds\":%llu,\"expires_in_seconds\":%llu,\"bytes_to_peer\":%llu,"
			"\"bytes_to_client\":%llu,\"packets_to_peer\":%llu,\"packets_to_client\":%llu}",
			netaddr_str(&s->client, cs), netaddr_str(&s->relay, rs),
			transports[s->transport >= 0 && s->transport < 3 ? s->transport : 0], s->worker,
			(unsigned long long)s->age, (unsigned long long)s->expires_in,
			(unsigned long long)s->bytes_to_peer, (unsigned long long)s->bytes_to_client,
			(unsigned long long)s->packets_to_peer, (unsigned long long)s->packets_to_client);
	}
	fputs(n ? "\n]\n" : "]\n", f);
}
