/* stats.h -- per-worker counters for metrics, quotas and readiness.
 *
 * Each worker owns one struct worker_stats and is its only writer; other
 * threads (the metrics thread, an Allocate on another worker summing
 * total-quota) only read. Fields are _Atomic so those reads are defined, but
 * the writer uses a relaxed load + store (STAT_ADD), not a locked
 * read-modify-write: on the relay path a counter costs two plain moves.
 */
#ifndef TURNSTONE_STATS_H
#define TURNSTONE_STATS_H

#include <stdatomic.h>
#include <stdint.h>

/* Client transports and address families, as metric label values. */
enum { STATS_UDP, STATS_TCP, STATS_TLS, STATS_NTRANSPORT };
enum { STATS_V4, STATS_V6, STATS_NFAMILY };

/* Allocate outcomes counted by code (stats_code_index maps code -> slot). */
#define STATS_CODES { 200, 400, 401, 403, 420, 437, 438, 440, 441, 442, 443, 486, 500, 508 }
#define STATS_NCODES 15 /* the codes above + one "other" slot */

/* Why a request failed authentication. */
enum {
	STATS_AUTH_BAD_INTEGRITY,   /* MESSAGE-INTEGRITY does not match the key */
	STATS_AUTH_UNKNOWN_USER,    /* no such user (config or Redis) */
	STATS_AUTH_STALE_NONCE,     /* 438 */
	STATS_AUTH_EXPIRED_REST,    /* REST credential past its expiry time */
	STATS_AUTH_MISSING,         /* no credentials at all: the first 401 challenge */
	STATS_NAUTH
};

/* Refusals by quotas and rate limits (issue 11). */
enum {
	STATS_REFUSE_USER_QUOTA,    /* 486: user-quota */
	STATS_REFUSE_TOTAL_QUOTA,   /* 486: total-quota */
	STATS_REFUSE_MAX_PERMS,     /* 508: max-permissions */
	STATS_REFUSE_MAX_CHANNELS,  /* 508: max-channels */
	STATS_REFUSE_ALLOC_RATE,    /* dropped: allocate-rate-per-ip */
	STATS_REFUSE_UNAUTH_RATE,   /* dropped: unauthorized-rate-per-ip */
	STATS_REFUSE_BPS,           /* datagrams dropped by max-bps */
	STATS_REFUSE_BPS_CAPACITY,  /* datagrams dropped by bps-capacity */
	STATS_REFUSE_NO_FD,         /* 508: EMFILE/ENFILE on a relay socket */
	STATS_REFUSE_DRAINING,      /* 508: draining */
	/* issue 12: protocol corners */
	STATS_REFUSE_TOO_BIG,       /* peer datagram too large for Data/ChannelData to the client */
	STATS_REFUSE_OWN_ADDRESS,   /* Send/ChannelBind to the server's own listening ports */
	STATS_REFUSE_TCP_PENDING,   /* RFC 6062 peer connection refused: tcp-relay-max-pending(-total) */
	STATS_NREFUSE
};

/* Relay directions. */
enum { STATS_TO_PEER, STATS_TO_CLIENT, STATS_NDIR };

struct worker_stats {
	/* gauges: allocations and TCP/TLS connections open now */
	_Atomic int64_t allocs[STATS_NTRANSPORT][STATS_NFAMILY];
	_Atomic int64_t conns[STATS_NTRANSPORT][STATS_NFAMILY];
	/* counters since start */
	_Atomic uint64_t packets[STATS_NDIR];
	_Atomic uint64_t bytes[STATS_NDIR];       /* payload bytes (no TURN framing) */
	_Atomic uint64_t allocate[STATS_NCODES];
	_Atomic uint64_t auth_fail[STATS_NAUTH];
	_Atomic uint64_t refused[STATS_NREFUSE];
	_Atomic uint64_t ebpf_packets[STATS_NDIR]; /* of packets[]: relayed by the
						      ebpf-offload program (net/ebpf/ebpf.h) */
	_Atomic int64_t ebpf_walked;              /* gauge: allocations the last once-a-second
						     ebpf-offload walk visited (those with entries
						     in the maps, net/ebpf/ebpf.h) */
	_Atomic uint64_t requests;                /* STUN/TURN requests handled */
	_Atomic uint64_t loop_ticks;              /* the worker's 1 s timer ran (health) */
	_Atomic uint64_t busy_usec;               /* the worker thread's CPU time, user + system, µs,
						     sampled by its 1 s tick (load) */
};

/* Adds n to a counter the calling worker owns (single writer). */
#define STAT_ADD(field, n) \
	atomic_store_explicit(&(field), atomic_load_explicit(&(field), memory_order_relaxed) + (n), \
			      memory_order_relaxed)
#define STAT_INC(field) STAT_ADD(field, 1)
/* Reads a counter of any worker. */
#define STAT_GET(field) atomic_load_explicit(&(field), memory_order_relaxed)

/* Slot of STUN error/success code in worker_stats.allocate (the last slot
 * for codes not in STATS_CODES). */
static inline int stats_code_index(int code)
{
	static const int codes[] = STATS_CODES;
	int i;

	for (i = 0; i < (int)(sizeof(codes) / sizeof(codes[0])); i++)
		if (codes[i] == code)
			return i;
	return STATS_NCODES - 1;
}

#endif
