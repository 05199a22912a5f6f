/* relay_map.h -- the map layout shared by the tc program (relay.bpf.c) and
 * user space (ebpf_entry.c, ebpf.c): entries per bound UDP channel, one map
 * per direction, and the token buckets of max-bps / bps-capacity.
 *
 * Plain fixed-width types only: this header is compiled both by clang
 * -target bpf and by the C compiler of the server. Every address, port and
 * channel number is in network byte order, as the program reads them off
 * the packet; times are CLOCK_MONOTONIC nanoseconds (bpf_ktime_get_ns, the
 * clock of worker_now).
 */
#ifndef TURNSTONE_EBPF_RELAY_MAP_H
#define TURNSTONE_EBPF_RELAY_MAP_H

#include <linux/types.h>

#define TS_EBPF_MAX_CHANNELS 65536 /* entries in each channel map */

/* Directions, as STATS_TO_PEER / STATS_TO_CLIENT (net/stats.h). */
#define TS_EBPF_TO_PEER 0
#define TS_EBPF_TO_CLIENT 1

/* ---- peer -> client: ts_chan ------------------------------------------ */

/* A peer datagram arriving at a relayed address: (relay ip:port, peer ip:port). */
struct ts_ebpf_key {
	__u32 relay_ip;   /* relayed transport address (the destination of the packet) */
	__u32 peer_ip;    /* the peer (its source) */
	__u16 relay_port;
	__u16 peer_port;
};

/* Where the program sends it, and until when. Written only by user space
 * (whole entries); the program only reads it. */
struct ts_ebpf_val {
	__u32 client_ip;        /* the client's transport address (new destination) */
	__u32 listen_ip;        /* the server address the client reached (new source) */
	__u16 client_port;
	__u16 listen_port;
	__u16 channel;          /* channel number, host order (written as big endian) */
	__u16 pad;
	__u64 perm_expires_ns;  /* the peer's permission is live while now < this */
	__u64 chan_expires_ns;  /* the channel binding is live while now < this */
	__u32 bucket;           /* max-bps bucket slot in ts_bucket, 0: no max-bps */
	__u32 cap_bucket;       /* bps-capacity bucket slot (the owner worker's), 0: none */
	__u64 rate;             /* max-bps, bytes/s (0 when bucket is 0) */
	__u64 cap_rate;         /* the owner worker's share of bps-capacity, bytes/s */
	__u32 counter;          /* the channel's slot in ts_ctr (1..TS_EBPF_MAX_CHANNELS) */
	__u32 pad2;
};

/* ---- client -> peer: ts_c2p ------------------------------------------- */

/* Client ChannelData arriving at a listening address: (listening ip:port,
 * client ip:port, channel number). */
struct ts_ebpf_ckey {
	__u32 listen_ip;
	__u32 client_ip;
	__u16 listen_port;
	__u16 client_port;
	__u16 channel;          /* network order, as in the ChannelData header */
	__u16 pad;
};

/* Where the payload goes: from the relayed address to the peer. */
struct ts_ebpf_cval {
	__u32 relay_ip;         /* the address the relay socket is bound to (new source) */
	__u32 peer_ip;          /* the bound peer (new destination) */
	__u16 relay_port;
	__u16 peer_port;
	__u32 counter;          /* as in ts_ebpf_val: the same slot */
	__u64 perm_expires_ns;
	__u64 chan_expires_ns;
	__u32 bucket;           /* as in ts_ebpf_val */
	__u32 cap_bucket;
	__u64 rate;
	__u64 cap_rate;
};

/* ---- counters: ts_ctr ------------------------------------------------ */

/* Counters of one channel, per direction: an mmap-able array indexed by
 * the counter slot both entries of the channel carry (slot 0 unused).
 * The program only adds (atomic instructions: the two directions, or one
 * flow after an RSS change, may run on different CPUs); user space only
 * reads, with plain 64-bit loads, so a once-a-second read of every
 * offloaded channel costs no system call. A slot starts where its previous
 * channel left it: user space keeps the values it last read as a baseline.
 * One direction per cache line, so the two directions of a channel on two
 * CPUs do not share one. The program forwards nothing it cannot count: no
 * slot, no fast path. */
struct ts_ebpf_dir {
	__u64 packets;
	__u64 bytes;            /* payload bytes, no ChannelData header */
	__u64 drop_bps;         /* datagrams dropped by max-bps */
	__u64 drop_cap;         /* datagrams dropped by bps-capacity */
	__u64 pad[4];
};

struct ts_ebpf_count {
	struct ts_ebpf_dir d[2]; /* TS_EBPF_TO_PEER, TS_EBPF_TO_CLIENT */
};

#define TS_EBPF_COUNTERS (TS_EBPF_MAX_CHANNELS + 1)

/* ---- token buckets: ts_bucket ----------------------------------------- */

/* An mmap-able array shared by the program and the socket path
 * (net/limits.c), so that one bucket holds for both: slot 0 is unused,
 * slots 1..TS_EBPF_CAP_SLOTS are the bps-capacity buckets of the workers
 * (worker i: slot 1 + i), the rest max-bps buckets of allocations. Each
 * slot has one bucket per direction, kept as a "theoretical arrival time"
 * (GCRA): the bucket of burst B = one second's worth of rate holds
 * (now + 1 s - tat) * rate bytes, so
 *   - a datagram passes while tat <= now + 1 s (not in debt), and
 *   - it is then charged in full: tat = max(tat, now) + len / rate,
 * the token bucket of turn/turn_limit.c (turn_bucket_ok/take) written as a
 * single u64 that both sides update with atomic instructions. */
#define TS_EBPF_CAP_SLOTS 256
#define TS_EBPF_BUCKETS 65536
#define TS_EBPF_NS 1000000000ull

struct ts_ebpf_bucket {
	__u64 tat[2];           /* ns, per direction; 0: full */
};

/* 1 when a datagram may pass bucket tat at now ns. */
static inline int ts_bucket_ok(__u64 tat, __u64 now)
{
	return tat <= now + TS_EBPF_NS;
}

/* Charges len bytes at rate bytes/s (> 0) to *tat at now ns: lock-free
 * (used concurrently by the program on any CPU and by a worker). Raising an
 * idle bucket to now is a compare-and-swap that may lose to a concurrent
 * update, which then did it; the charge itself is an atomic add. */
static inline void ts_bucket_take(__u64 *tat, __u64 now, __u64 len, __u64 rate)
{
	__u64 old = *(volatile __u64 *)tat;

	if (old < now)
		__sync_val_compare_and_swap(tat, old, now);
	__sync_fetch_and_add(tat, len * TS_EBPF_NS / rate);
}

#endif
