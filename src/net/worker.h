/* worker.h -- relay worker threads and the sockets they own.
 *
 * Each worker runs its own event_base. It owns one SO_REUSEPORT UDP socket per
 * listening address (the kernel hashes a client's 5-tuple to one of them, so
 * a client always reaches the same worker), every allocation created through
 * those sockets, and each allocation's relay socket. Nothing on the relay path
 * is shared between workers, so nothing on it locks. The main and admin
 * threads talk to a worker only through its message queue and wake-up
 * eventfd (stop, new TLS context, /sessions snapshot), and read its counters
 * (net/stats.h).
 */
#ifndef TURNSTONE_WORKER_H
#define TURNSTONE_WORKER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth_nonce.h"
#include "auth/auth_users.h"
#include "config.h"
#include "net/ebpf/ebpf_entry.h"
#include "net/selfaddr.h"
#include "net/stats.h"
#include "stun/stun_msg.h"
#include "turn/turn_alloc.h"
#include "turn/turn_limit.h"

struct event;
struct event_base;
struct evconnlistener;
struct worker;
struct stream_conn;
struct auth_redis;
struct pending;
struct rxbatch;
struct limits;
struct tcp_relay_alloc;
struct turn_tcp_table;
struct tcp_refusal;
struct statsdb;
typedef struct ssl_ctx_st SSL_CTX;

#define WORKER_HEADROOM 64     /* bytes kept free before received data for TURN headers */
#define WORKER_SLOT (WORKER_HEADROOM + 65536) /* bytes per receive slot: headroom + the largest
						UDP payload (65507) + padding */
#define WORKER_BATCH 32        /* datagrams per recvmmsg */

/* Read-only state shared by all workers, built once at start (but for the
 * connection counter, the one shared mutable: touched on accept and close). */
struct server {
	const struct config *cfg;
	struct auth_users *users;
	struct auth_nonce nonce;
	struct stun_addr listen[CONFIG_MAX_LISTEN];
	size_t nlisten;
	struct stun_addr relay4[CONFIG_MAX_LISTEN]; /* relay-ip, IPv4 ones: allocations spread over them */
	struct stun_addr relay6[CONFIG_MAX_LISTEN]; /* relay-ip, IPv6 ones */
	size_t nrelay4, nrelay6;
	struct server_ext {                    /* one external-ip mapping */
		struct stun_addr pub;          /* advertised in XOR-RELAYED-ADDRESS */
		struct stun_addr priv;         /* relay address it stands for; family 0: any of pub's family */
	} ext[CONFIG_MAX_LISTEN];
	size_t next;
	_Atomic int tcp_pending;               /* RFC 6062 peer connections not yet bound (net/tcp_relay.h) */
	SSL_CTX *tls;                          /* initial TLS context, NULL when TLS is off */
	int nworkers;
	struct worker *workers;
	_Atomic int nconns;                    /* open TCP/TLS client connections */
	_Atomic int draining;                  /* SIGUSR1 / POST /drain: refuse new allocations (508) */
	struct limits *limits;                 /* quotas and per-IP rates (net/limits.h), own locks */
	struct selfaddr self;                  /* own IPs and ports the relay refuses (net/selfaddr.h) */
};

/* One UDP listening socket of a worker. */
struct listener {
	int fd;
	struct event *ev;
	struct stun_addr local;    /* bound address; may be the wildcard */
	int wildcard;              /* use IP_PKTINFO to learn and reuse the local address */
	struct worker *w;
};

/* The client side of a 5-tuple: where a request came from and where its
 * answer and relayed data go. Exactly one of l and conn is set. */
struct origin {
	struct listener *l;        /* UDP listening socket */
	struct stream_conn *conn;  /* TCP or TLS connection */
	struct stun_addr local;    /* server address the client reached */
	struct stun_addr client;   /* client transport address */
};

/* I/O state of one allocation (turn_alloc.io). */
struct relay {
	int fd;
	struct event *ev;
	/* Dual allocation (RFC 8656 §7.2, ADDITIONAL-ADDRESS-FAMILY): the
	 * socket of turn_alloc.relay2; ev2 is NULL when there is none. */
	int fd2;
	struct event *ev2;
	struct origin o;           /* how to reach the client */
	struct turn_alloc *alloc;
	struct worker *w;
	/* limits (net/limits.h) */
	struct turn_bucket bps[STATS_NDIR]; /* max-bps, per direction */
	uint32_t ebpf_bucket;      /* ebpf-offload: its max-bps bucket slot in the kernel map,
				      used instead of bps[] (net/ebpf/ebpf.h); 0: none */
	struct ebpf_node ebpf_node; /* in worker.ebpf_allocs while its channels are in the maps */
	uint8_t quota_held;        /* holds a user-quota/total-quota slot */
	struct tcp_relay_alloc *tcp; /* TCP allocation (RFC 6062, net/tcp_relay.h): fd is then
					its listening socket; NULL for UDP */
	uint64_t statsdb_id;       /* redis-statsdb allocation id, 0: not reported */
};

/* Messages from the main thread to a worker (typed queue + eventfd wake-up). */
enum worker_msg_type { WORKER_MSG_STOP, WORKER_MSG_TLS_CTX, WORKER_MSG_SESSIONS, WORKER_MSG_TCP_BIND };
struct worker_msg {
	enum worker_msg_type type;
	void *ptr;                 /* WORKER_MSG_TLS_CTX: an SSL_CTX reference the worker takes over;
				      WORKER_MSG_SESSIONS: a struct sessions_req reference (net/sessions.h);
				      WORKER_MSG_TCP_BIND: a client data connection to bind (net/tcp_relay.h) */
	struct worker_msg *next;
};

struct worker {
	int id;
	struct server *srv;
	pthread_t thread;
	struct event_base *base;
	struct listener ls[CONFIG_MAX_LISTEN];
	size_t nls;
	struct evconnlistener *tcp[CONFIG_MAX_LISTEN], *tls[CONFIG_MAX_LISTEN];
	size_t ntcp, ntls;
	SSL_CTX *tls_ctx;          /* this worker's reference to the current context */
	struct turn_table allocs;
	struct turn_wheel *wheel;  /* expiry timers of allocs (turn_timer.h, issue 14) */
	struct ebpf_list ebpf_allocs; /* ebpf-offload: the allocations (struct relay.ebpf_node)
					 with entries in the maps, walked once a second */
	struct event *tick_ev, *wake_ev;
	int wake_fd;
	pthread_mutex_t mq_lock;   /* guards mq */
	struct worker_msg *mq;
	struct stream_conn *conns; /* open TCP/TLS connections (list) */
	struct turn_tcp_table *tcp_conns; /* RFC 6062 peer connections of this worker's TCP
					     allocations (net/tcp_relay.h), NULL unless tcp-relay */
	struct tcp_refusal *tcp_refusing; /* refused ConnectionBinds still writing their answer */
	struct auth_redis *redis;  /* this worker's Redis client, or NULL */
	struct pending *pending;   /* requests waiting for Redis (turn_handler.c) */
	size_t npending;
	uint32_t rng;
	unsigned relay_rr;         /* next relay-ip to bind (round robin, turn_handler.c) */
	struct statsdb *statsdb;   /* redis-statsdb client (net/statsdb.h), or NULL */
	uint64_t statsdb_next;     /* allocation ids: worker id in bits 40+, then this counter */
	uint64_t log_sec;          /* worker_log_ok: current second and its count */
	unsigned log_n, log_dropped;
	uint8_t *rx;               /* WORKER_BATCH slots of WORKER_SLOT bytes */
	struct rxbatch *rxb[2];    /* recvmmsg headers over rx: [0] plain, [1] with IP_PKTINFO */
	struct txbatch *txb;       /* datagrams the read callbacks of one loop pass queued, sent
				      after it with one sendmmsg per socket (worker.c) */
	uint8_t tx[2048];          /* response scratch buffer (answers are small) */
	struct worker_stats stats; /* written by this worker only (net/stats.h) */
	/* bandwidth limits (net/limits.h) */
	int bps_on;                /* max-bps or bps-capacity set */
	uint64_t now_ms;           /* worker_now_ms(), read once per receive batch when bps_on */
	uint64_t cap_rate;         /* this worker's share of bps-capacity, bytes/s */
	struct turn_bucket cap[STATS_NDIR];
};

/* 1 when a log line about a client's request may be written now: at most
 * WORKER_LOG_BURST such lines per second per worker, so a flood of bad
 * requests cannot turn into a flood of log lines. The first line after a
 * suppressed stretch says how many were dropped. */
#define WORKER_LOG_BURST 20
int worker_log_ok(struct worker *w);

/* Creates worker id's event_base and binds its listening sockets. Returns 0,
 * or -1 with a message in err (errlen bytes). */
int worker_init(struct worker *w, int id, struct server *srv, char *err, size_t errlen);
/* Starts the worker thread. Returns 0 or -1 (errno set). */
int worker_start(struct worker *w);
/* Asks the worker to stop (thread-safe) and waits for its thread. */
void worker_stop(struct worker *w);
/* Queues a message for the worker and wakes it (thread-safe). Returns 0 or -1. */
int worker_post(struct worker *w, enum worker_msg_type type, void *ptr);
/* Frees everything the worker owns; its thread must have stopped. */
void worker_free(struct worker *w);

/* STATS_UDP, STATS_TCP or STATS_TLS: o's client transport as a metrics slot. */
int worker_stats_transport(const struct origin *o);

/* Monotonic clock in seconds (allocation and permission lifetimes). */
uint64_t worker_now(void);
/* Monotonic clock in milliseconds (bandwidth buckets; coarse, cheap). */
uint64_t worker_now_ms(void);
/* Wall clock in seconds (nonces). */
uint64_t worker_wallclock(void);

/* Sends len bytes to o's client: a datagram from the address it reached, or
 * a write to its connection. Relayed data (is_data) to a connection whose
 * output queue is over stream-output-limit is dropped. Returns 0 or -1
 * (dropped; a UDP client recovers from loss, a TCP one from nothing less). */
int worker_send_client(const struct origin *o, const void *buf, size_t len, int is_data);

/* What an Allocate asks of its relay socket (RFC 8656 §7.2). */
struct relay_req {
	struct stun_addr bind_ip;        /* address to bind, port ignored */
	int even;                        /* EVEN-PORT: even port number */
	int reserve;                     /* EVEN-PORT R bit: also reserve port + 1 */
	const uint8_t *token;            /* RESERVATION-TOKEN (8 bytes) to claim, or NULL */
	int dont_fragment;               /* DONT-FRAGMENT: set DF on relayed IPv4 packets */
	int quota_held;                  /* the allocation holds a quota slot (net/limits.h):
					    given back when the relay is released */
	int tcp;                         /* REQUESTED-TRANSPORT TCP (RFC 6062): a listening socket */
	uint8_t token_out[8];            /* set when reserve succeeded */
};

/* Opens a relay socket for a: claims rq->token's reserved socket, or binds
 * a port from min-port..max-port on rq->bind_ip (even, and reserving the
 * next one, as asked), registers it with the worker's loop and stores the
 * bound address in *bound. Returns 0; -1 when no port is free (508); -2
 * when the token is unknown or expired (508 as well, logged differently);
 * -3 when out of descriptors (EMFILE/ENFILE: 508, counted in
 * stats.refused[STATS_REFUSE_NO_FD] and logged here, rate-limited). */
int worker_relay_open(struct worker *w, const struct origin *o, struct turn_alloc *a, struct relay_req *rq,
		      struct stun_addr *bound);

/* Dual allocation (RFC 8656 §7.2): binds a second relay socket for a, of
 * bind_ip's family, on a free port of min-port..max-port, and stores the
 * bound address in *bound. a must have its first socket already (and keeps
 * one allocation's quota and gauge). Returns 0, -1 (no port: 508) or -3 (out
 * of descriptors). */
int worker_relay_open_second(struct worker *w, struct turn_alloc *a, const struct stun_addr *bind_ip,
			     struct stun_addr *bound);

/* Closes a's relayed address of family (RFC 8656 §7.3: Refresh with
 * REQUESTED-ADDRESS-FAMILY and LIFETIME 0) when a has both; the other one
 * becomes a->relay. Returns 0, or -1 when a has no second address (the
 * caller frees the whole allocation instead). */
int worker_relay_close_family(struct turn_alloc *a, uint8_t family);

/* Sends len bytes from a's relayed address of peer's family to peer.
 * Returns 0 or -1. */
int worker_relay_send(struct turn_alloc *a, const struct stun_addr *peer, const void *buf, size_t len);

/* (Re-)arms a's timer for its next deadline (turn_alloc_next_deadline):
 * call after setting or changing a->expires. Freeing at expiry and dropping
 * dead permissions and channels then cost O(1) each, when due. */
void worker_alloc_arm(struct worker *w, struct turn_alloc *a);

/* Closes a's relay socket, removes a from the table and frees it. */
void worker_alloc_free(struct worker *w, struct turn_alloc *a);

#endif
