/* metrics.c -- Prometheus text format 0.0.4 from the per-worker counters:
 * sums over the workers for the server-wide series, one series per worker
 * for the load figures. */
#include "net/metrics.h"

#include <inttypes.h>
#include <string.h>

static const char *const transport_names[STATS_NTRANSPORT] = { "udp", "tcp", "tls" };
static const char *const family_names[STATS_NFAMILY] = { "ipv4", "ipv6" };
static const char *const direction_names[STATS_NDIR] = { "client_to_peer", "peer_to_client" };
static const char *const auth_names[STATS_NAUTH] = {
	"bad_integrity", "unknown_user", "stale_nonce", "expired_rest_credential", "missing_credentials",
};
static const char *const refuse_names[STATS_NREFUSE] = {
	"user_quota",   "total_quota",   "max_permissions", "max_channels", "allocate_rate",
	"unauthorized_rate", "max_bps", "bps_capacity",    "no_descriptor", "draining",
	"too_big",      "own_address", "tcp_pending",
};

static void head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The server-wide sums of the workers' counters, read once per scrape. */
struct totals {
	int64_t allocs[STATS_NTRANSPORT][STATS_NFAMILY];
	int64_t conns[STATS_NTRANSPORT][STATS_NFAMILY];
	uint64_t packets[STATS_NDIR], bytes[STATS_NDIR];
	uint64_t allocate[STATS_NCODES], auth_fail[STATS_NAUTH], refused[STATS_NREFUSE];
	uint64_t requests;
	uint64_t ebpf_packets[STATS_NDIR];
	int64_t ebpf_walked;
};

static void sum_workers(const struct metrics_input *in, struct totals *t)
{
	size_t w;
	int i, j;

	memset(t, 0, sizeof(*t));
	for (w = 0; w < in->nworkers; w++) {
		const struct worker_stats *st = in->workers[w];

		for (i = 0; i < STATS_NTRANSPORT; i++)
			for (j = 0; j < STATS_NFAMILY; j++) {
				t->allocs[i][j] += STAT_GET(st->allocs[i][j]);
				t->conns[i][j] += STAT_GET(st->conns[i][j]);
			}
		for (i = 0; i < STATS_NDIR; i++) {
			t->packets[i] += STAT_GET(st->packets[i]);
			t->bytes[i] += STAT_GET(st->bytes[i]);
			t->ebpf_packets[i] += STAT_GET(st->ebpf_packets[i]);
		}
		for (i = 0; i < STATS_NCODES; i++)
			t->allocate[i] += STAT_GET(st->allocate[i]);
		for (i = 0; i < STATS_NAUTH; i++)
			t->auth_fail[i] += STAT_GET(st->auth_fail[i]);
		for (i = 0; i < STATS_NREFUSE; i++)
			t->refused[i] += STAT_GET(st->refused[i]);
		t->requests += STAT_GET(st->requests);
		t->ebpf_walked += STAT_GET(st->ebpf_walked);
	}
}

static void render_gauges(FILE *f, const struct metrics_input *in, const struct totals *tt)
{
	int t, fam;

	head(f, "turnstone_allocations", "gauge", "TURN allocations open now, by client transport and family.");
	for (t = 0; t < STATS_NTRANSPORT; t++)
		for (fam = 0; fam < STATS_NFAMILY; fam++)
			fprintf(f, "turnstone_allocations{transport=\"%s\",family=\"%s\"} %" PRId64 "\n",
				transport_names[t], family_names[fam], tt->allocs[t][fam]);
	head(f, "turnstone_connections", "gauge", "TCP and TLS client connections open now.");
	for (t = STATS_TCP; t < STATS_NTRANSPORT; t++)
		for (fam = 0; fam < STATS_NFAMILY; fam++)
			fprintf(f, "turnstone_connections{transport=\"%s\",family=\"%s\"} %" PRId64 "\n",
				transport_names[t], family_names[fam], tt->conns[t][fam]);
	head(f, "turnstone_draining", "gauge", "1 while draining: new allocations are refused.");
	fprintf(f, "turnstone_draining %d\n", in->draining ? 1 : 0);
	if (in->open_fds >= 0) {
		head(f, "process_open_fds", "gauge", "Number of open file descriptors.");
		fprintf(f, "process_open_fds %ld\n", in->open_fds);
	}
	if (in->max_fds >= 0) {
		head(f, "process_max_fds", "gauge", "Maximum number of open file descriptors (soft limit).");
		fprintf(f, "process_max_fds %ld\n", in->max_fds);
	}
	head(f, "process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch in seconds.");
	fprintf(f, "process_start_time_seconds %.3f\n", in->start_time);
}

static void render_counters(FILE *f, const struct totals *tt)
{
	static const int codes[] = STATS_CODES;
	int i;

	head(f, "turnstone_relayed_packets_total", "counter", "Datagrams relayed, by direction.");
	for (i = 0; i < STATS_NDIR; i++)
		fprintf(f, "turnstone_relayed_packets_total{direction=\"%s\"} %" PRIu64 "\n", direction_names[i],
			tt->packets[i]);
	head(f, "turnstone_relayed_bytes_total", "counter",
	     "Payload bytes relayed (without TURN framing), by direction.");
	for (i = 0; i < STATS_NDIR; i++)
		fprintf(f, "turnstone_relayed_bytes_total{direction=\"%s\"} %" PRIu64 "\n", direction_names[i],
			tt->bytes[i]);
	head(f, "turnstone_allocate_responses_total", "counter",
	     "Answers to Allocate requests, by response code (200: success).");
	for (i = 0; i < STATS_NCODES; i++) {
		if (i < (int)(sizeof(codes) / sizeof(codes[0])))
			fprintf(f, "turnstone_allocate_responses_total{code=\"%d\"} %" PRIu64 "\n", codes[i],
				tt->allocate[i]);
		else
			fprintf(f, "turnstone_allocate_responses_total{code=\"other\"} %" PRIu64 "\n",
				tt->allocate[i]);
	}
	head(f, "turnstone_auth_failures_total", "counter", "Requests that failed authentication, by reason.");
	for (i = 0; i < STATS_NAUTH; i++)
		fprintf(f, "turnstone_auth_failures_total{reason=\"%s\"} %" PRIu64 "\n", auth_names[i],
			tt->auth_fail[i]);
	head(f, "turnstone_refused_total", "counter",
	     "Requests or datagrams refused by quotas, rate limits, capacity or draining, by reason.");
	for (i = 0; i < STATS_NREFUSE; i++)
		fprintf(f, "turnstone_refused_total{reason=\"%s\"} %" PRIu64 "\n", refuse_names[i],
			tt->refused[i]);
	head(f, "turnstone_requests_total", "counter", "STUN and TURN requests handled.");
	fprintf(f, "turnstone_requests_total %" PRIu64 "\n", tt->requests);
	head(f, "turnstone_ebpf_relayed_packets_total", "counter",
	     "Of the datagrams relayed, those the ebpf-offload program relayed, by direction (docs/ebpf.md).");
	for (i = 0; i < STATS_NDIR; i++)
		fprintf(f, "turnstone_ebpf_relayed_packets_total{direction=\"%s\"} %" PRIu64 "\n", direction_names[i],
			tt->ebpf_packets[i]);
	head(f, "turnstone_ebpf_walked_allocations", "gauge",
	     "Allocations the last once-a-second ebpf-offload walk visited: those with channels in the maps.");
	fprintf(f, "turnstone_ebpf_walked_allocations %" PRId64 "\n", tt->ebpf_walked);
}

static void render_workers(FILE *f, const struct metrics_input *in)
{
	size_t i;
	int t, fam;

	head(f, "turnstone_worker_loop_ticks_total", "counter",
	     "Runs of each worker's 1-second timer (stops moving when its loop is stuck).");
	for (i = 0; i < in->nworkers; i++)
		fprintf(f, "turnstone_worker_loop_ticks_total{worker=\"%zu\"} %" PRIu64 "\n", i,
			(uint64_t)STAT_GET(in->workers[i]->loop_ticks));
	head(f, "turnstone_worker_cpu_seconds_total", "counter",
	     "CPU time (user + system) of each worker thread, sampled every second.");
	for (i = 0; i < in->nworkers; i++)
		fprintf(f, "turnstone_worker_cpu_seconds_total{worker=\"%zu\"} %.6f\n", i,
			(double)STAT_GET(in->workers[i]->busy_usec) / 1e6);
	head(f, "turnstone_worker_allocations", "gauge", "Allocations each worker owns now.");
	for (i = 0; i < in->nworkers; i++) {
		int64_t n = 0;

		for (t = 0; t < STATS_NTRANSPORT; t++)
			for (fam = 0; fam < STATS_NFAMILY; fam++)
				n += STAT_GET(in->workers[i]->allocs[t][fam]);
		fprintf(f, "turnstone_worker_allocations{worker=\"%zu\"} %" PRId64 "\n", i, n);
	}
}

static void render_redis(FILE *f, const struct metrics_input *in)
{
	static const uint64_t bounds[] = AUTH_REDIS_LATENCY_BOUNDS_US;
	uint64_t up = 0, clients = 0, req = 0, err = 0, sum = 0, hist[AUTH_REDIS_NBOUNDS + 1] = { 0 }, cum = 0;
	size_t i;
	int b;

	for (i = 0; i < in->nredis; i++) {
		const struct auth_redis_stats *r = in->redis[i];

		if (r == NULL)
			continue;
		clients++;
		up += atomic_load_explicit(&r->connected, memory_order_relaxed) ? 1 : 0;
		req += STAT_GET(r->requests);
		err += STAT_GET(r->errors);
		sum += STAT_GET(r->latency_usec_sum);
		for (b = 0; b <= AUTH_REDIS_NBOUNDS; b++)
			hist[b] += STAT_GET(r->latency_hist[b]);
	}
	head(f, "turnstone_redis_clients", "gauge", "Redis clients configured (one per worker, 0 without redis-userdb).");
	fprintf(f, "turnstone_redis_clients %" PRIu64 "\n", clients);
	head(f, "turnstone_redis_connected", "gauge", "Redis clients whose lookup connection is up.");
	fprintf(f, "turnstone_redis_connected %" PRIu64 "\n", up);
	head(f, "turnstone_redis_requests_total", "counter", "Commands sent to Redis for credential lookups.");
	fprintf(f, "turnstone_redis_requests_total %" PRIu64 "\n", req);
	head(f, "turnstone_redis_errors_total", "counter",
	     "Credential lookups that failed: Redis down, error reply or timeout.");
	fprintf(f, "turnstone_redis_errors_total %" PRIu64 "\n", err);
	head(f, "turnstone_redis_request_duration_seconds", "histogram", "Time from a Redis command to its reply.");
	for (b = 0; b < AUTH_REDIS_NBOUNDS; b++) {
		cum += hist[b];
		fprintf(f, "turnstone_redis_request_duration_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
			(double)bounds[b] / 1e6, cum);
	}
	cum += hist[AUTH_REDIS_NBOUNDS];
	fprintf(f, "turnstone_redis_request_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", cum);
	fprintf(f, "turnstone_redis_request_duration_seconds_sum %.6f\n", (double)sum / 1e6);
	fprintf(f, "turnstone_redis_request_duration_seconds_count %" PRIu64 "\n", cum);
}

int metrics_render(FILE *f, const struct metrics_input *in)
{
	struct totals t;

	sum_workers(in, &t);
	render_gauges(f, in, &t);
	render_counters(f, &t);
	render_workers(f, in);
	render_redis(f, in);
	return ferror(f) ? -1 : 0;
}
