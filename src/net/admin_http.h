/* admin_http.h -- the admin HTTP listener (`prometheus`, issue 11): libevent's
 * evhttp on a thread of its own, serving
 *   GET /metrics   Prometheus text format 0.0.4 (net/metrics.h)
 *   GET /healthz   200 while every worker's event loop ticks, else 503
 *   GET /ready     200, or 503 with the reasons (draining, Redis down,
 *                  descriptors or capacity above 90 %)
 *   GET /sessions  JSON list of the allocations (net/sessions.h)
 *   POST /drain    start draining, as SIGUSR1 does (loopback clients only)
 * It reads the workers' counters (relaxed atomics, net/stats.h) and asks
 * the workers for /sessions through their message queues; it never touches
 * worker-owned state directly. See docs/metrics.md and docs/threads.md.
 */
#ifndef TURNSTONE_ADMIN_HTTP_H
#define TURNSTONE_ADMIN_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "net/worker.h"

struct admin_http;

/* Binds prometheus-ip:prometheus-port and starts the thread. srv and its
 * workers must outlive admin_http_stop. Returns NULL with a message in err
 * (errlen bytes) when the address cannot be bound or memory runs out. */
struct admin_http *admin_http_start(struct server *srv, char *err, size_t errlen);

/* Stops the thread (thread-safe), closes the listener and frees h. */
void admin_http_stop(struct admin_http *h);

#endif
