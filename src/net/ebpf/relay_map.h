/* relay_map.h -- the map layout shared by the tc program (relay.bpf.c) and
 * user space (ebpf_entry.c, ebpf.c): one entry per bound UDP channel.
 *
 * Plain fixed-width types only: this header is compiled both by clang
 * -target bpf and by the C compiler of the server. Every address and port is
 * in network byte order, as the program reads them off the packet; times are
 * CLOCK_MONOTONIC nanoseconds (bpf_ktime_get_ns, the clock of worker_now).
 */
#ifndef TURNSTONE_EBPF_RELAY_MAP_H
#define TURNSTONE_EBPF_RELAY_MAP_H

#include <linux/types.h>

#define TS_EBPF_MAX_CHANNELS 65536 /* entries in the channel map */

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
};

/* Counters of one entry (a per-CPU hash with the same key): created with
 * the entry, summed over CPUs and deleted with it by user space. The program
 * forwards nothing it cannot count: no counter entry, no fast path. */
struct ts_ebpf_count {
	__u64 packets;
	__u64 bytes;            /* payload bytes, no ChannelData header */
};

#endif
