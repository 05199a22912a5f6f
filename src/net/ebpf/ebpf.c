/* ebpf.c -- loading the ebpf-offload tc program and keeping its maps (issue 14). */
#include "net/ebpf/ebpf.h"

#include <errno.h>
#include <net/if.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <stdlib.h>

#include "log.h"
#include "net/ebpf/ebpf_entry.h"
#include "net/ebpf/relay.skel.h"
#include "net/worker.h"

/* tcx attach points (Linux 6.6): a bpf_link that goes with the process, so
 * a crashed server leaves no program behind. Debian 12's headers predate them. */
#ifndef BPF_TCX_INGRESS
#define BPF_TCX_INGRESS 46
#endif

struct attached {
	int ifindex;
	int link_fd;         /* tcx link, or -1 when attached through netlink tc */
	int hook_created;    /* netlink: we added the clsact qdisc */
	struct bpf_tc_opts opts;
};

static struct {
	struct ts_relay *skel;
	int chan_fd, c2p_fd;
	size_t n;
	struct attached at[CONFIG_MAX_LISTEN];
	/* ts_bucket, mmapped; free max-bps slots as a stack (any worker) */
	struct ts_ebpf_bucket *buckets;
	pthread_mutex_t slot_lock;
	uint32_t *free_slots;
	size_t nfree;
	/* ts_ctr, mmapped; free counter slots as a ring (any worker, under
	 * slot_lock): first freed, first reused, so a slot rests as long as
	 * possible before it counts for another channel */
	struct ts_ebpf_count *ctr;
	uint32_t *ctr_ring;
	size_t ctr_head, ctr_len;
} g = { .chan_fd = -1, .c2p_fd = -1, .slot_lock = PTHREAD_MUTEX_INITIALIZER };

/* The program's direction indices are the statistics' (net/stats.h). */
_Static_assert(TS_EBPF_TO_PEER == STATS_TO_PEER && TS_EBPF_TO_CLIENT == STATS_TO_CLIENT, "direction indices");

#define BUCKETS_BYTES ((size_t)TS_EBPF_BUCKETS * sizeof(struct ts_ebpf_bucket))
#define CTR_SLOTS (TS_EBPF_COUNTERS - 1) /* 1..TS_EBPF_MAX_CHANNELS */

/* Bytes of the ts_ctr mapping: the array, in whole pages. */
static size_t ctr_bytes(void)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	return ((size_t)TS_EBPF_COUNTERS * sizeof(struct ts_ebpf_count) + page - 1) / page * page;
}

/* libbpf's own messages go to debug level: the warning is our one line. */
static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char buf[512];

	if (level == LIBBPF_DEBUG)
		return 0;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	buf[strcspn(buf, "\n")] = '\0';
	log_debug("libbpf: %s", buf);
	return 0;
}

/* bpf_fib_lookup answers only where IPv4 forwarding is on: say so once. */
static void forwarding_check(const char *ifname)
{
	char path[128];
	FILE *f;
	int on = 1;

	snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/forwarding", ifname);
	if ((f = fopen(path, "r")) != NULL) {
		if (fscanf(f, "%d", &on) != 1)
			on = 1;
		fclose(f);
	}
	if (!on)
		log_warnx("ebpf-offload: net.ipv4.conf.%s.forwarding is 0: the program will leave every "
			  "datagram to the socket path (docs/ebpf.md)", ifname);
}

static int attach_one(const char *ifname, struct attached *at, char *why, size_t whylen)
{
	int prog = bpf_program__fd(g.skel->progs.ts_relay);
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .attach_point = BPF_TC_INGRESS);
	int r;

	memset(at, 0, sizeof(*at));
	at->link_fd = -1;
	if ((at->ifindex = (int)if_nametoindex(ifname)) == 0) {
		snprintf(why, whylen, "no interface '%s'", ifname);
		return -1;
	}
	forwarding_check(ifname);
	if ((at->link_fd = bpf_link_create(prog, at->ifindex, BPF_TCX_INGRESS, NULL)) >= 0)
		return 0;
	/* Older kernel: a clsact qdisc and a direct-action filter. */
	hook.ifindex = at->ifindex;
	r = bpf_tc_hook_create(&hook);
	if (r < 0 && r != -EEXIST) {
		snprintf(why, whylen, "clsact on %s: %s", ifname, strerror(-r));
		return -1;
	}
	at->hook_created = r == 0;
	at->opts.sz = sizeof(at->opts);
	at->opts.prog_fd = prog;
	if ((r = bpf_tc_attach(&hook, &at->opts)) < 0) {
		snprintf(why, whylen, "tc filter on %s: %s", ifname, strerror(-r));
		if (at->hook_created)
			bpf_tc_hook_destroy(&hook);
		return -1;
	}
	return 0;
}

static void detach_one(struct attached *at)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = at->ifindex, .attach_point = BPF_TC_INGRESS);

	if (at->link_fd >= 0) {
		close(at->link_fd);
		return;
	}
	at->opts.prog_fd = 0;
	at->opts.prog_id = 0;
	at->opts.flags = 0;
	if (bpf_tc_detach(&hook, &at->opts) < 0)
		log_warnx("ebpf-offload: cannot detach the tc filter from ifindex %d", at->ifindex);
	if (at->hook_created)
		bpf_tc_hook_destroy(&hook);
}

void ebpf_offload_start(const struct config *cfg)
{
	char why[256];
	size_t i;

	if (!cfg->ebpf_offload)
		return;
	if (cfg->n_ebpf_interface == 0) {
		log_warnx("ebpf-offload: no ebpf-interface configured; running without the fast path");
		return;
	}
	libbpf_set_print(libbpf_log);
	if ((g.skel = ts_relay__open_and_load()) == NULL) {
		log_warn("ebpf-offload: cannot load the tc program (needs CAP_BPF and CAP_NET_ADMIN); "
			 "running without the fast path");
		g.skel = NULL;
		return;
	}
	for (i = 0; i < cfg->n_ebpf_interface; i++) {
		if (attach_one(cfg->ebpf_interface[i], &g.at[g.n], why, sizeof(why)) < 0) {
			log_warnx("ebpf-offload: %s; running without the fast path", why);
			ebpf_offload_stop();
			return;
		}
		g.n++;
	}
	g.buckets = mmap(NULL, BUCKETS_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, bpf_map__fd(g.skel->maps.ts_bucket), 0);
	if (g.buckets == MAP_FAILED)
		g.buckets = NULL;
	/* user space only reads the counters */
	g.ctr = mmap(NULL, ctr_bytes(), PROT_READ, MAP_SHARED, bpf_map__fd(g.skel->maps.ts_ctr), 0);
	if (g.ctr == MAP_FAILED)
		g.ctr = NULL;
	g.free_slots = malloc(TS_EBPF_BUCKETS * sizeof(uint32_t));
	g.ctr_ring = malloc(CTR_SLOTS * sizeof(uint32_t));
	if (g.buckets == NULL || g.ctr == NULL || g.free_slots == NULL || g.ctr_ring == NULL) {
		log_warn("ebpf-offload: cannot map the bucket and counter arrays; running without the fast path");
		ebpf_offload_stop();
		return;
	}
	for (g.nfree = 0; g.nfree < TS_EBPF_BUCKETS - 1 - TS_EBPF_CAP_SLOTS; g.nfree++)
		g.free_slots[g.nfree] = TS_EBPF_BUCKETS - 1 - (uint32_t)g.nfree;
	for (g.ctr_len = 0; g.ctr_len < CTR_SLOTS; g.ctr_len++)
		g.ctr_ring[g.ctr_len] = 1 + (uint32_t)g.ctr_len;
	g.ctr_head = 0;
	g.chan_fd = bpf_map__fd(g.skel->maps.ts_chan);
	g.c2p_fd = bpf_map__fd(g.skel->maps.ts_c2p);
	log_info("ebpf-offload: fast path for UDP channels on %zu interface%s", g.n, g.n == 1 ? "" : "s");
}

void ebpf_offload_stop(void)
{
	while (g.n > 0)
		detach_one(&g.at[--g.n]);
	if (g.buckets != NULL)
		munmap(g.buckets, BUCKETS_BYTES);
	g.buckets = NULL;
	free(g.free_slots);
	g.free_slots = NULL;
	g.nfree = 0;
	if (g.ctr != NULL)
		munmap(g.ctr, ctr_bytes());
	g.ctr = NULL;
	free(g.ctr_ring);
	g.ctr_ring = NULL;
	g.ctr_head = g.ctr_len = 0;
	if (g.skel != NULL)
		ts_relay__destroy(g.skel);
	g.skel = NULL;
	g.chan_fd = g.c2p_fd = -1;
}

int ebpf_offload_on(void)
{
	return g.chan_fd >= 0;
}

/* The address the relay socket of a is bound to (a->relay may carry an
 * external-ip). Returns 0, or -1 for none / a wildcard. */
static int bound_addr(const struct turn_alloc *a, struct stun_addr *out)
{
	const struct relay *rl = a->io;
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	if (rl == NULL || rl->tcp != NULL || getsockname(rl->fd, (struct sockaddr *)&sin, &len) < 0 ||
	    sin.sin_family != AF_INET || sin.sin_addr.s_addr == htonl(INADDR_ANY))
		return -1;
	memset(out, 0, sizeof(*out));
	out->family = STUN_AF_IPV4;
	memcpy(out->ip, &sin.sin_addr, 4);
	out->port = ntohs(sin.sin_port);
	return 0;
}

/* A counter slot for a new channel: 0 when all are taken. */
static uint32_t ctr_get(void)
{
	uint32_t slot = 0;

	pthread_mutex_lock(&g.slot_lock);
	if (g.ctr_len > 0) {
		slot = g.ctr_ring[g.ctr_head];
		g.ctr_head = (g.ctr_head + 1) % CTR_SLOTS;
		g.ctr_len--;
	}
	pthread_mutex_unlock(&g.slot_lock);
	return slot;
}

static void ctr_put(uint32_t slot)
{
	if (slot == 0)
		return;
	pthread_mutex_lock(&g.slot_lock);
	if (g.ctr_ring != NULL && g.ctr_len < CTR_SLOTS)
		g.ctr_ring[(g.ctr_head + g.ctr_len++) % CTR_SLOTS] = slot;
	pthread_mutex_unlock(&g.slot_lock);
}

/* What slot counts now, read without a system call: the program adds with
 * atomic instructions, and an aligned 64-bit load sees a whole value. */
static void ctr_read(uint32_t slot, uint64_t out[2][4])
{
	const volatile struct ts_ebpf_dir *d = g.ctr[slot].d;
	int i;

	for (i = 0; i < 2; i++) {
		out[i][0] = d[i].packets;
		out[i][1] = d[i].bytes;
		out[i][2] = d[i].drop_bps;
		out[i][3] = d[i].drop_cap;
	}
}

/* Adds what c's counters gained since the last read to w's and a's totals:
 * relayed packets and bytes per direction, and the datagrams the program
 * dropped over max-bps / bps-capacity to the refuse counters. */
static void sync_counters(struct worker *w, struct turn_alloc *a, struct turn_chan *c)
{
	uint64_t now[2][4];
	int d;

	if (c->ebpf_seen == NULL || g.ctr == NULL)
		return;
	ctr_read(c->ebpf_seen->counter, now);
	for (d = 0; d < 2; d++) {
		uint64_t *seen = c->ebpf_seen->seen[d];
		uint64_t dp = now[d][0] - seen[0], db = now[d][1] - seen[1];

		if (dp > 0) {
			STAT_ADD(w->stats.packets[d], dp);
			STAT_ADD(w->stats.bytes[d], db);
			STAT_ADD(w->stats.ebpf_packets[d], dp);
			if (d == TS_EBPF_TO_CLIENT) {
				a->packets_to_client += dp;
				a->bytes_to_client += db;
			} else {
				a->packets_to_peer += dp;
				a->bytes_to_peer += db;
			}
		}
		if (now[d][2] != seen[2])
			STAT_ADD(w->stats.refused[STATS_REFUSE_BPS], now[d][2] - seen[2]);
		if (now[d][3] != seen[3])
			STAT_ADD(w->stats.refused[STATS_REFUSE_BPS_CAPACITY], now[d][3] - seen[3]);
		memcpy(seen, now[d], sizeof(now[d]));
	}
}

/* c enters (on) or leaves the maps: a's node in w's list follows. */
static void chan_mark(struct worker *w, struct turn_alloc *a, struct turn_chan *c, int on)
{
	struct relay *r = a->io;

	if (c->ebpf == on)
		return;
	c->ebpf = (uint8_t)on;
	if (!on && c->ebpf_seen != NULL) {
		ctr_put(c->ebpf_seen->counter);
		free(c->ebpf_seen);
		c->ebpf_seen = NULL;
	}
	if (r == NULL)
		return;
	if (on)
		ebpf_list_hold(&w->ebpf_allocs, &r->ebpf_node);
	else
		ebpf_list_release(&w->ebpf_allocs, &r->ebpf_node);
}

/* The key c was installed under. */
static int key_of(const struct turn_alloc *a, const struct turn_chan *c, struct ts_ebpf_key *k)
{
	struct stun_addr bound;

	if (bound_addr(a, &bound) < 0)
		return -1;
	memset(k, 0, sizeof(*k));
	memcpy(&k->relay_ip, bound.ip, 4);
	k->relay_port = htons(bound.port);
	memcpy(&k->peer_ip, c->peer.ip, 4);
	k->peer_port = htons(c->peer.port);
	return 0;
}

void ebpf_channel_clear(struct worker *w, struct turn_alloc *a, struct turn_chan *c)
{
	struct ts_ebpf_ckey ck;
	struct ts_ebpf_key k;

	if (!c->ebpf || !ebpf_offload_on())
		return;
	ebpf_entry_ckey(a, c, &ck);
	bpf_map_delete_elem(g.c2p_fd, &ck);
	if (key_of(a, c, &k) == 0) {
		/* Entries first, so nothing is counted after the last read. */
		bpf_map_delete_elem(g.chan_fd, &k);
	}
	sync_counters(w, a, c);
	chan_mark(w, a, c, 0); /* frees ebpf_seen and its slot: after the last read */
}

/* The buckets the program must charge for a (docs/ebpf.md). */
static void limits_of(struct worker *w, struct turn_alloc *a, struct ebpf_limits *lim)
{
	const struct relay *r = a->io;

	memset(lim, 0, sizeof(*lim));
	lim->bps_on = w->bps_on;
	lim->rate = (uint64_t)w->srv->cfg->max_bps;
	lim->cap_rate = w->cap_rate;
	lim->bucket = r != NULL ? r->ebpf_bucket : 0;
	lim->cap_bucket = ebpf_cap_slot(w);
}

void ebpf_relay_bucket_init(struct worker *w, struct relay *r)
{
	r->ebpf_bucket = 0;
	if (!ebpf_offload_on() || w->srv->cfg->max_bps <= 0)
		return;
	pthread_mutex_lock(&g.slot_lock);
	if (g.nfree > 0)
		r->ebpf_bucket = g.free_slots[--g.nfree];
	pthread_mutex_unlock(&g.slot_lock);
	if (r->ebpf_bucket != 0) /* full, as turn_bucket_init */
		memset(&g.buckets[r->ebpf_bucket], 0, sizeof(g.buckets[0]));
}

static void relay_bucket_free(struct relay *r)
{
	if (r == NULL || r->ebpf_bucket == 0)
		return;
	pthread_mutex_lock(&g.slot_lock);
	if (g.free_slots != NULL)
		g.free_slots[g.nfree++] = r->ebpf_bucket;
	pthread_mutex_unlock(&g.slot_lock);
	r->ebpf_bucket = 0;
}

__u64 *ebpf_bucket_tat(uint32_t slot, int dir)
{
	if (slot == 0 || slot >= TS_EBPF_BUCKETS || g.buckets == NULL)
		return NULL;
	return &g.buckets[slot].tat[dir & 1];
}

uint32_t ebpf_cap_slot(const struct worker *w)
{
	if (g.buckets == NULL || w->cap_rate == 0 || w->id < 0 || w->id >= TS_EBPF_CAP_SLOTS)
		return 0;
	return 1 + (uint32_t)w->id;
}

uint64_t ebpf_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void ebpf_channel_update(struct worker *w, struct turn_alloc *a, struct turn_chan *c)
{
	struct stun_addr bound;
	struct ebpf_limits lim;
	struct ts_ebpf_key k;
	struct ts_ebpf_val v;
	struct ts_ebpf_ckey ck;
	struct ts_ebpf_cval cv;
	int fresh = 0;

	if (!ebpf_offload_on() || c == NULL)
		return;
	limits_of(w, a, &lim);
	if (bound_addr(a, &bound) < 0 || ebpf_entry_make(a, &bound, c, worker_now(), &lim, &k, &v, &ck, &cv) < 0) {
		ebpf_channel_clear(w, a, c);
		return;
	}
	if (!c->ebpf) {
		/* A slot of its own; what it counted before is the baseline. */
		free(c->ebpf_seen);
		if ((c->ebpf_seen = calloc(1, sizeof(*c->ebpf_seen))) == NULL ||
		    (c->ebpf_seen->counter = ctr_get()) == 0) {
			free(c->ebpf_seen);
			c->ebpf_seen = NULL;
			return; /* not offloaded: the socket path relays it */
		}
		ctr_read(c->ebpf_seen->counter, c->ebpf_seen->seen);
		fresh = 1;
	}
	v.counter = cv.counter = c->ebpf_seen->counter;
	if (bpf_map_update_elem(g.chan_fd, &k, &v, BPF_ANY) < 0 || bpf_map_update_elem(g.c2p_fd, &ck, &cv, BPF_ANY) < 0) {
		if (worker_log_ok(w))
			log_warn("ebpf-offload: channel map update");
		bpf_map_delete_elem(g.chan_fd, &k);
		bpf_map_delete_elem(g.c2p_fd, &ck);
		sync_counters(w, a, c);
		if (fresh) { /* chan_mark has nothing to undo */
			ctr_put(c->ebpf_seen->counter);
			free(c->ebpf_seen);
			c->ebpf_seen = NULL;
		} else {
			chan_mark(w, a, c, 0);
		}
		return;
	}
	chan_mark(w, a, c, 1);
}

void ebpf_perm_update(struct worker *w, struct turn_alloc *a, const struct stun_addr *peer)
{
	size_t i;

	for (i = 0; i < a->nchans; i++)
		if (turn_addr_same_ip(&a->chans[i].peer, peer))
			ebpf_channel_update(w, a, &a->chans[i]);
}

void ebpf_alloc_tick(struct worker *w, struct turn_alloc *a, uint64_t now)
{
	size_t i;

	if (!ebpf_offload_on())
		return;
	for (i = 0; i < a->nchans; i++) {
		struct turn_chan *c = &a->chans[i];

		if (!c->ebpf)
			continue;
		if (now >= c->expires || !turn_alloc_perm_ok(a, &c->peer, now))
			ebpf_channel_clear(w, a, c);
		else
			sync_counters(w, a, c);
	}
}

void ebpf_alloc_clear(struct worker *w, struct turn_alloc *a)
{
	size_t i;

	for (i = 0; i < a->nchans; i++)
		ebpf_channel_clear(w, a, &a->chans[i]);
	if (a->io != NULL) /* out of the walk whatever its count: the relay is freed next */
		ebpf_list_drop(&w->ebpf_allocs, &((struct relay *)a->io)->ebpf_node);
	relay_bucket_free(a->io); /* after the entries that named it */
}

void ebpf_worker_tick(struct worker *w, uint64_t now)
{
	struct ebpf_node *n, *next;
	int64_t visited = 0;

	if (!ebpf_offload_on())
		return;
	for (n = w->ebpf_allocs.head; n != NULL; n = next) {
		struct relay *r = (struct relay *)((char *)n - offsetof(struct relay, ebpf_node));

		next = n->next; /* ebpf_alloc_tick may unlink n (its last entry lapsed), no other node */
		ebpf_alloc_tick(w, r->alloc, now);
		visited++;
	}
	atomic_store_explicit(&w->stats.ebpf_walked, visited, memory_order_relaxed);
}
