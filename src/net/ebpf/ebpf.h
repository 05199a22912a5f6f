/* ebpf.h -- the ebpf-offload fast path (issue 14, docs/ebpf.md): loads the
 * tc program (relay.bpf.c), keeps its channel maps (both directions) in step
 * with the allocations of every worker, and holds the bandwidth buckets the
 * program and the socket path share.
 *
 * The maps are an optimisation only: the program checks the permission and
 * channel expiry times itself, so a late update can never relay what the
 * socket path would not. Built only with --enable-ebpf (HAVE_EBPF); without
 * it every call below is an empty inline function.
 */
#ifndef TURNSTONE_EBPF_H
#define TURNSTONE_EBPF_H

#include "config.h"
#include "log.h"
#include "net/ebpf/relay_map.h"
#include "turn/turn_alloc.h"

struct worker;
struct relay;

#ifdef HAVE_EBPF
/* Loads the program and attaches it to the ingress of every ebpf-interface
 * when cfg->ebpf_offload is set; call as root before the privilege drop.
 * Without the capability (CAP_BPF + CAP_NET_ADMIN), kernel support or an
 * interface it logs one line and leaves the fast path off: never an error. */
void ebpf_offload_start(const struct config *cfg);
/* Detaches the program and frees it (after the workers have stopped). */
void ebpf_offload_stop(void);
/* 1 while the program is attached. */
int ebpf_offload_on(void);

/* Installs or refreshes channel c of a (after ChannelBind, RFC 8656 §11.2),
 * or removes it when it may no longer be offloaded; c may be NULL (nothing
 * happens). Owner worker only, like every call below. */
void ebpf_channel_update(struct worker *w, struct turn_alloc *a, struct turn_chan *c);
/* After CreatePermission for peer's IP: refreshes the channels to it. */
void ebpf_perm_update(struct worker *w, struct turn_alloc *a, const struct stun_addr *peer);
/* Adds c's kernel counters to the statistics and removes it from the map. */
void ebpf_channel_clear(struct worker *w, struct turn_alloc *a, struct turn_chan *c);
/* Counters of a into the statistics, lapsed channels and permissions out
 * of the map: from ebpf_worker_tick, and from a's timer before
 * turn_alloc_expire. */
void ebpf_alloc_tick(struct worker *w, struct turn_alloc *a, uint64_t now);
/* Once a second: ebpf_alloc_tick for each allocation of w with entries in
 * the maps (w->ebpf_allocs), not for the others (TCP/TLS, IPv6, without a
 * channel); their number goes to w->stats.ebpf_walked. */
void ebpf_worker_tick(struct worker *w, uint64_t now);
/* Every channel of a out of the map and its bucket slot given back (the
 * allocation ends). */
void ebpf_alloc_clear(struct worker *w, struct turn_alloc *a);

/* Bandwidth buckets shared with the program (relay_map.h, docs/ebpf.md).
 * With the offload on, max-bps of a relay and bps-capacity of a worker are
 * kept in the kernel's ts_bucket array only, so that the socket path and
 * the program draw on one bucket. */
/* Gives r a max-bps bucket slot (full) when the offload is on and max-bps
 * set; leaves r->ebpf_bucket 0 (the local bucket) otherwise or when the
 * array is full. */
void ebpf_relay_bucket_init(struct worker *w, struct relay *r);
/* The bucket of slot in direction dir (STATS_TO_*), NULL for slot 0 or with
 * the offload off. Any thread; the value is updated with ts_bucket_take. */
__u64 *ebpf_bucket_tat(uint32_t slot, int dir);
/* w's bps-capacity slot (1 + w->id), 0 when it has none. */
uint32_t ebpf_cap_slot(const struct worker *w);
/* CLOCK_MONOTONIC in ns, the clock of bpf_ktime_get_ns. */
uint64_t ebpf_now_ns(void);
#else
static inline void ebpf_offload_start(const struct config *cfg)
{
	if (cfg->ebpf_offload)
		log_warnx("ebpf-offload: this turnstone was built without it (configure --enable-ebpf)");
}
static inline void ebpf_offload_stop(void) {}
static inline int ebpf_offload_on(void) { return 0; }
static inline void ebpf_channel_update(struct worker *w, struct turn_alloc *a, struct turn_chan *c) {}
static inline void ebpf_perm_update(struct worker *w, struct turn_alloc *a, const struct stun_addr *peer) {}
static inline void ebpf_channel_clear(struct worker *w, struct turn_alloc *a, struct turn_chan *c) {}
static inline void ebpf_alloc_tick(struct worker *w, struct turn_alloc *a, uint64_t now) {}
static inline void ebpf_worker_tick(struct worker *w, uint64_t now) {}
static inline void ebpf_alloc_clear(struct worker *w, struct turn_alloc *a) {}
static inline void ebpf_relay_bucket_init(struct worker *w, struct relay *r) {}
static inline __u64 *ebpf_bucket_tat(uint32_t slot, int dir) { return NULL; }
static inline uint32_t ebpf_cap_slot(const struct worker *w) { return 0; }
static inline uint64_t ebpf_now_ns(void) { return 0; }
#endif

#endif
