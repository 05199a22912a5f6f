/* test_metrics.c -- unit tests for the Prometheus text rendering (net/metrics.c):
 * sums over workers, label values, HELP/TYPE lines, the Redis histogram. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "net/metrics.h"

static struct worker_stats w0, w1;
static struct auth_redis_stats r0, r1;

/* Renders in and returns the malloc'd text. */
static char *render(const struct metrics_input *in)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	assert_int_equal(metrics_render(f, in), 0);
	assert_int_equal(fclose(f), 0);
	return text;
}

/* 1 when text has the exact line. */
static int has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	const char *p = text;

	while ((p = strstr(p, line)) != NULL) {
		if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
			return 1;
		p += n;
	}
	return 0;
}

static void setup_stats(void)
{
	memset(&w0, 0, sizeof(w0));
	memset(&w1, 0, sizeof(w1));
	STAT_ADD(w0.allocs[STATS_UDP][STATS_V4], 2);
	STAT_ADD(w1.allocs[STATS_UDP][STATS_V4], 3);
	STAT_INC(w1.allocs[STATS_TLS][STATS_V6]);
	STAT_ADD(w0.conns[STATS_TCP][STATS_V4], 4);
	STAT_ADD(w0.bytes[STATS_TO_PEER], 1000);
	STAT_ADD(w1.bytes[STATS_TO_PEER], 234);
	STAT_ADD(w1.packets[STATS_TO_CLIENT], 7);
	STAT_ADD(w0.allocate[stats_code_index(200)], 5);
	STAT_ADD(w1.allocate[stats_code_index(401)], 6);
	STAT_INC(w1.allocate[stats_code_index(599)]);
	STAT_ADD(w0.auth_fail[STATS_AUTH_STALE_NONCE], 2);
	STAT_INC(w1.refused[STATS_REFUSE_DRAINING]);
	STAT_ADD(w0.loop_ticks, 10);
	STAT_ADD(w1.loop_ticks, 11);
	STAT_ADD(w1.busy_usec, 1500000);
}

static void test_sums_and_labels(void **state)
{
	const struct worker_stats *ws[] = { &w0, &w1 };
	struct metrics_input in = { ws, 2, NULL, 0, 1, 12, 1024, 1700000000.0 };
	char *t;

	setup_stats();
	t = render(&in);
	assert_true(has_line(t, "turnstone_allocations{transport=\"udp\",family=\"ipv4\"} 5"));
	assert_true(has_line(t, "turnstone_allocations{transport=\"tls\",family=\"ipv6\"} 1"));
	assert_true(has_line(t, "turnstone_allocations{transport=\"tcp\",family=\"ipv4\"} 0"));
	assert_true(has_line(t, "turnstone_connections{transport=\"tcp\",family=\"ipv4\"} 4"));
	assert_true(has_line(t, "turnstone_relayed_bytes_total{direction=\"client_to_peer\"} 1234"));
	assert_true(has_line(t, "turnstone_relayed_packets_total{direction=\"peer_to_client\"} 7"));
	assert_true(has_line(t, "turnstone_allocate_responses_total{code=\"200\"} 5"));
	assert_true(has_line(t, "turnstone_allocate_responses_total{code=\"401\"} 6"));
	assert_true(has_line(t, "turnstone_allocate_responses_total{code=\"other\"} 1"));
	assert_true(has_line(t, "turnstone_auth_failures_total{reason=\"stale_nonce\"} 2"));
	assert_true(has_line(t, "turnstone_refused_total{reason=\"draining\"} 1"));
	assert_true(has_line(t, "turnstone_worker_loop_ticks_total{worker=\"1\"} 11"));
	assert_true(has_line(t, "turnstone_worker_cpu_seconds_total{worker=\"1\"} 1.500000"));
	assert_true(has_line(t, "turnstone_worker_allocations{worker=\"1\"} 4"));
	assert_true(has_line(t, "turnstone_draining 1"));
	assert_true(has_line(t, "process_open_fds 12"));
	assert_true(has_line(t, "turnstone_redis_clients 0"));
	free(t);
}

/* Every sample's metric family has HELP and TYPE lines before it. */
static void test_help_and_type(void **state)
{
	const struct worker_stats *ws[] = { &w0 };
	struct metrics_input in = { ws, 1, NULL, 0, 0, -1, -1, 0 };
	char *t, *line, *save = NULL, family[128] = "";
	int typed = 0;

	setup_stats();
	t = render(&in);
	assert_false(strstr(t, "process_open_fds") != NULL); /* unknown: not shown */
	for (line = strtok_r(t, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		char name[128];

		if (strncmp(line, "# HELP ", 7) == 0) {
			sscanf(line + 7, "%127s", family);
			typed = 0;
			continue;
		}
		if (strncmp(line, "# TYPE ", 7) == 0) {
			sscanf(line + 7, "%127s", name);
			assert_string_equal(name, family);
			typed = 1;
			continue;
		}
		sscanf(line, "%127[^{ ]", name);
		assert_true(typed);
		assert_true(strncmp(name, family, strlen(family)) == 0);
	}
	free(t);
}

static void test_redis_histogram(void **state)
{
	const struct worker_stats *ws[] = { &w0, &w1 };
	const struct auth_redis_stats *rs[] = { &r0, &r1 };
	struct metrics_input in = { ws, 2, rs, 2, 0, -1, -1, 0 };
	char *t;

	setup_stats();
	memset(&r0, 0, sizeof(r0));
	memset(&r1, 0, sizeof(r1));
	atomic_store(&r0.connected, 1);
	STAT_ADD(r0.requests, 3);
	STAT_ADD(r1.requests, 1);
	STAT_INC(r1.errors);
	STAT_ADD(r0.latency_hist[0], 2);              /* <= 0.5 ms */
	STAT_INC(r1.latency_hist[2]);                 /* <= 2.5 ms */
	STAT_INC(r1.latency_hist[AUTH_REDIS_NBOUNDS]); /* > 1 s */
	STAT_ADD(r0.latency_usec_sum, 2500000);
	t = render(&in);
	assert_true(has_line(t, "turnstone_redis_clients 2"));
	assert_true(has_line(t, "turnstone_redis_connected 1"));
	assert_true(has_line(t, "turnstone_redis_requests_total 4"));
	assert_true(has_line(t, "turnstone_redis_errors_total 1"));
	assert_true(has_line(t, "turnstone_redis_request_duration_seconds_bucket{le=\"0.0005\"} 2"));
	assert_true(has_line(t, "turnstone_redis_request_duration_seconds_bucket{le=\"0.001\"} 2"));
	assert_true(has_line(t, "turnstone_redis_request_duration_seconds_bucket{le=\"0.0025\"} 3"));
	assert_true(has_line(t, "turnstone_redis_request_duration_seconds_bucket{le=\"1\"} 3"));
	assert_true(has_line(t, "turnstone_redis_request_duration_seconds_bucket{le=\"+Inf\"} 4"));
	assert_true(has_line(t, "turnstone_redis_request_duration_seconds_count 4"));
	assert_true(has_line(t, "turnstone_redis_request_duration_seconds_sum 2.500000"));
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sums_and_labels),
		cmocka_unit_test(test_help_and_type),
		cmocka_unit_test(test_redis_histogram),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
