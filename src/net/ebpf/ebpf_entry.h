/* ebpf_entry.h -- what the worker writes into the fast-path channel map
 * (relay_map.h) for one bound channel: pure code, no libbpf, no sockets.
 *
 * Issue 14 / docs/ebpf.md. Only channels the program relays exactly as the
 * socket path would get an entry: a UDP client, IPv4 client, relay and peer,
 * and a bucket slot for every bandwidth limit in force, so an allocation that
 * fails any of these is simply left to the socket path.
 */
#ifndef TURNSTONE_EBPF_ENTRY_H
#define TURNSTONE_EBPF_ENTRY_H

#include <stddef.h>
#include <stdint.h>

#include "net/ebpf/relay_map.h"
#include "turn/turn_alloc.h"

#define EBPF_NS_PER_S 1000000000ull

/* The bandwidth limits of one allocation as the program enforces them: a
 * max-bps bucket slot and the owner worker's bps-capacity slot in ts_bucket
 * (relay_map.h), with their rates in bytes/s. bps_on: a limit is in force
 * (net/worker.h); a limit without a slot (0) means "not offloadable". */
struct ebpf_limits {
	int bps_on;
	uint32_t bucket, cap_bucket;
	uint64_t rate, cap_rate;
};

/* Fills the entries of both directions for channel c of allocation a
 * (RFC 8656 §12): peer -> client, key (bound, peer) -- bound is the
 * address the relay socket is bound to (a->relay may be an advertised
 * external-ip) -- value the client's 5-tuple and the channel number;
 * client -> peer, key (listening address, client, channel number), value
 * (bound, peer). Both carry the expiry times of the channel and of its
 * peer's permission, converted from worker_now() seconds to CLOCK_MONOTONIC
 * nanoseconds (the binding is usable while now < expires, in both clocks),
 * and the buckets of lim. Returns 0, or -1 when the channel must not be
 * offloaded (TCP client, IPv6 anywhere, a bandwidth limit without its
 * bucket, no live permission at now seconds, channel expired); then
 * nothing is written. */
int ebpf_entry_make(const struct turn_alloc *a, const struct stun_addr *bound, const struct turn_chan *c,
		    uint64_t now, const struct ebpf_limits *lim, struct ts_ebpf_key *key, struct ts_ebpf_val *val,
		    struct ts_ebpf_ckey *ckey, struct ts_ebpf_cval *cval);

/* The client -> peer key of channel c of a (no checks). */
void ebpf_entry_ckey(const struct turn_alloc *a, const struct turn_chan *c, struct ts_ebpf_ckey *ckey);

/* Expiry in ns of the permission covering c's peer in a, 0 when none. */
uint64_t ebpf_entry_perm_expiry_ns(const struct turn_alloc *a, const struct turn_chan *c);

/* The allocations of one worker that hold entries in the maps: an intrusive
 * doubly-linked list, so that the once-a-second walk (counters, lapsed
 * entries) costs O(offloaded allocations), not O(allocations). A node is
 * linked exactly while entries > 0. Owner worker only; nothing locks. */
struct ebpf_node {
	struct ebpf_node *prev, *next;
	unsigned entries;          /* channels of its allocation in the maps */
};
struct ebpf_list {
	struct ebpf_node *head;
	size_t len;                /* nodes linked */
};

/* One more entry for n: links n (at the head) on its first. */
void ebpf_list_hold(struct ebpf_list *l, struct ebpf_node *n);
/* One entry fewer for n: unlinks n when that was its last; nothing at 0.
 * A walk may release the node it visits (save ->next first), no other. */
void ebpf_list_release(struct ebpf_list *l, struct ebpf_node *n);
/* Unlinks n whatever its count and sets it to 0 (its allocation ends). */
void ebpf_list_drop(struct ebpf_list *l, struct ebpf_node *n);

#endif
