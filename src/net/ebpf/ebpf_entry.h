/* ebpf_entry.h -- what the worker writes into the fast-path channel map
 * (relay_map.h) for one bound channel: pure code, no libbpf, no sockets.
 *
 * Issue 14 / docs/ebpf.md. Only channels the program relays exactly as the
 * socket path would get an entry: a UDP client, IPv4 client, relay and peer,
 * and no max-bps / bps-capacity bucket (the program has none yet), so an
 * allocation that fails any of these is simply left to the socket path.
 */
#ifndef TURNSTONE_EBPF_ENTRY_H
#define TURNSTONE_EBPF_ENTRY_H

#include <stdint.h>

#include "net/ebpf/relay_map.h"
#include "turn/turn_alloc.h"

#define EBPF_NS_PER_S 1000000000ull

/* Fills key and val for channel c of allocation a (RFC 8656 §12): the key
 * is (bound, peer) -- bound is the address the relay socket is bound to
 * (a->relay may be an advertised external-ip) -- the value the client's 5-tuple, the channel
 * number and the expiry times of the channel and of its peer's permission,
 * converted from worker_now() seconds to CLOCK_MONOTONIC nanoseconds (the
 * binding is usable while now < expires, in both clocks). bps_limited is
 * nonzero when a bandwidth limit (max-bps, bps-capacity) is in force.
 * Returns 0, or -1 when the channel
 * must not be offloaded (TCP client, IPv6 anywhere, a bandwidth limit, no live
 * permission at now seconds, channel expired); then nothing is written. */
int ebpf_entry_make(const struct turn_alloc *a, const struct stun_addr *bound, const struct turn_chan *c,
		    uint64_t now, int bps_limited, struct ts_ebpf_key *key, struct ts_ebpf_val *val);

/* Expiry in ns of the permission covering c's peer in a, 0 when none. */
uint64_t ebpf_entry_perm_expiry_ns(const struct turn_alloc *a, const struct turn_chan *c);

#endif
