/* relay.bpf.c -- tc (clsact ingress) fast path for bound UDP channels,
 * both directions (issue 14, docs/ebpf.md).
 *
 * Peer -> client: a peer datagram to a relayed address whose (relay, peer)
 * pair has a live entry in ts_chan (channel bound, permission live by the
 * program's own clock) becomes ChannelData to the client: 4-byte header
 * prepended, source = the listening address, destination = the client.
 * Client -> peer: ChannelData to a listening address whose (listening
 * address, client, channel) has a live entry in ts_c2p, with no padding,
 * loses its 4-byte header and goes from the relayed address to the peer.
 * Checksums are updated, max-bps / bps-capacity charged (ts_bucket, shared
 * with the socket path), then bpf_redirect out of the interface the FIB
 * names. Everything else -- IPv6, IP options, fragments, GSO, a map miss, a
 * lapsed permission or channel, a datagram too big for the route, a failed
 * FIB lookup -- returns TC_ACT_OK untouched, so the normal socket path
 * relays it exactly as without us. Over a bandwidth limit the datagram is
 * dropped and counted, as the socket path would drop it.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "relay_map.h"

#ifndef AF_INET
#define AF_INET 2
#endif

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TS_EBPF_MAX_CHANNELS);
	__type(key, struct ts_ebpf_key);
	__type(value, struct ts_ebpf_val);
} ts_chan SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TS_EBPF_COUNTERS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct ts_ebpf_count);
} ts_ctr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TS_EBPF_MAX_CHANNELS);
	__type(key, struct ts_ebpf_ckey);
	__type(value, struct ts_ebpf_cval);
} ts_c2p SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TS_EBPF_BUCKETS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct ts_ebpf_bucket);
} ts_bucket SEC(".maps");

#define L3 ((int)sizeof(struct ethhdr))
#define L4 (L3 + (int)sizeof(struct iphdr))
#define UDP_CSUM (L4 + (int)__builtin_offsetof(struct udphdr, check))
#define IP_CSUM (L3 + (int)__builtin_offsetof(struct iphdr, check))
#define IP_SADDR (L3 + (int)__builtin_offsetof(struct iphdr, saddr))
#define IP_DADDR (L3 + (int)__builtin_offsetof(struct iphdr, daddr))
#define IP_TOTLEN (L3 + (int)__builtin_offsetof(struct iphdr, tot_len))
#define CHAN_HDR 4

/* What both directions need to know of one packet. */
struct pkt {
	__u32 saddr, daddr;
	__u16 sport, dport, ulen, tot, check, udp_len_be, ip_check;
};

static __always_inline __u16 fold(__u64 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

/* Checksum arithmetic in the program itself, no helper call: ones'
 * complement sums of 16-bit words as they lie in the packet (RFC 1071: the
 * sum does not depend on byte order), and incremental updates (RFC 1624,
 * eqn. 3: HC' = ~(~HC + ~m + m') for every changed word m). */
static __always_inline __u64 sum32(__u32 v)
{
	return (v & 0xffff) + (v >> 16);
}

/* What replacing the 32-bit word old by new adds to a sum. */
static __always_inline __u64 delta32(__u32 old, __u32 new)
{
	return sum32(~old) + sum32(new);
}

static __always_inline __u64 delta16(__u16 old, __u16 new)
{
	return (__u16)~old + (__u64)new;
}

/* The checksum field check after changes summing to d. */
static __always_inline __u16 csum_apply(__u16 check, __u64 d)
{
	return (__u16)~fold((__u16)~check + d);
}

/* 1 when a nonzero UDP checksum is only the pseudo-header sum
 * (CHECKSUM_PARTIAL: a local sender over veth/tap; the stack would finish
 * it at the old offset). A complete checksum equal to that sum by chance
 * just goes the slow way too. */
static __always_inline int csum_partial_like(const struct pkt *p)
{
	return fold(sum32(p->saddr) + sum32(p->daddr) + bpf_htons(IPPROTO_UDP) + p->udp_len_be) == p->check;
}

/* Route toward dst from src; 0 and fib filled in, or -1 (slow path). The
 * kernel answers only where forwarding is on for the interface
 * (BPF_FIB_LKUP_RET_FWD_DISABLED otherwise: then everything goes the slow
 * way; ebpf.c warns at start). tot_len: the new IP length (MTU check). */
static __always_inline int route(struct __sk_buff *skb, struct bpf_fib_lookup *fib, __u32 src, __u32 dst,
				 __u16 sport, __u16 dport, __u16 tot_len)
{
	fib->family = AF_INET;
	fib->l4_protocol = IPPROTO_UDP;
	fib->tot_len = tot_len;
	fib->ipv4_src = src;
	fib->ipv4_dst = dst;
	fib->sport = sport;
	fib->dport = dport;
	fib->ifindex = skb->ingress_ifindex;
	return bpf_fib_lookup(skb, fib, sizeof(*fib), 0) == BPF_FIB_LKUP_RET_SUCCESS ? 0 : -1;
}

/* max-bps then bps-capacity for len bytes in direction dir: 0 to pass
 * (both charged), else the datagram is dropped and counted in c. A slot
 * that does not exist (cannot happen: the array is fixed) passes. */
static __always_inline int over_limit(__u32 slot, __u64 rate, __u32 cap_slot, __u64 cap_rate, int dir, __u64 len,
				      __u64 now, struct ts_ebpf_dir *c)
{
	struct ts_ebpf_bucket *b = NULL, *cb = NULL;

	if (slot != 0 && rate != 0 && (b = bpf_map_lookup_elem(&ts_bucket, &slot)) != NULL &&
	    !ts_bucket_ok(b->tat[dir & 1], now)) {
		__sync_fetch_and_add(&c->drop_bps, 1);
		return 1;
	}
	if (cap_slot != 0 && cap_rate != 0 && (cb = bpf_map_lookup_elem(&ts_bucket, &cap_slot)) != NULL &&
	    !ts_bucket_ok(cb->tat[dir & 1], now)) {
		__sync_fetch_and_add(&c->drop_cap, 1);
		return 1;
	}
	if (b != NULL)
		ts_bucket_take(&b->tat[dir & 1], now, len, rate);
	if (cb != NULL)
		ts_bucket_take(&cb->tat[dir & 1], now, len, cap_rate);
	return 0;
}

/* The counters of slot (0: none, the slow path). */
static __always_inline struct ts_ebpf_count *counters(__u32 slot)
{
	return slot != 0 ? bpf_map_lookup_elem(&ts_ctr, &slot) : NULL;
}

/* After the last helper that moves bytes: the Ethernet and IP headers of
 * the packet as it leaves (direct writes; the IP checksum by the change of
 * source, destination and total length). 0, or -1 when the headers are not
 * in the linear part (cannot happen: the program read them there). */
static __always_inline int set_l2l3(struct __sk_buff *skb, const struct bpf_fib_lookup *fib, const struct pkt *p,
				    __u32 src, __u32 dst, __u16 tot_new)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + L3;

	if ((void *)(ip + 1) > end)
		return -1;
	__builtin_memcpy(eth->h_dest, fib->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib->smac, ETH_ALEN);
	ip->check = csum_apply(p->ip_check, delta32(p->saddr, src) + delta32(p->daddr, dst) +
					    delta16(bpf_htons(p->tot), tot_new));
	ip->saddr = src;
	ip->daddr = dst;
	ip->tot_len = tot_new;
	return 0;
}

/* A peer datagram to a relayed address: ChannelData to the client. */
static __always_inline int peer_to_client(struct __sk_buff *skb, const struct pkt *p, struct ts_ebpf_val *v)
{
	struct bpf_fib_lookup fib = {};
	struct ts_ebpf_count *c;
	__u16 plen = p->ulen - sizeof(struct udphdr), tot_new, new_len;
	__u32 old_ports, new_ports, hdr;
	struct udphdr nu;
	void *data, *end;
	__u64 now;

	now = bpf_ktime_get_ns();
	if (now >= v->perm_expires_ns || now >= v->chan_expires_ns)
		return TC_ACT_OK; /* lapsed: the socket path drops it, as it would */
	if ((c = counters(v->counter)) == NULL)
		return TC_ACT_OK;
	/* Route to the client first: a miss or a datagram over the MTU goes
	 * the slow way (which may fragment) before anything is changed. */
	if (route(skb, &fib, v->listen_ip, v->client_ip, v->listen_port, v->client_port, p->tot + CHAN_HDR) < 0)
		return TC_ACT_OK;
	if (p->check != 0 && csum_partial_like(p))
		return TC_ACT_OK;
	if (over_limit(v->bucket, v->rate, v->cap_bucket, v->cap_rate, TS_EBPF_TO_CLIENT, plen, now,
		       &c->d[TS_EBPF_TO_CLIENT]))
		return TC_ACT_SHOT; /* as limits_bps_pass in turn_handle_peer */
	nu.source = v->listen_port;
	nu.dest = v->client_port;
	nu.len = new_len = bpf_htons(p->ulen + CHAN_HDR);
	old_ports = ((__u32)p->sport) | ((__u32)p->dport << 16);
	new_ports = ((__u32)nu.source) | ((__u32)nu.dest << 16);
	hdr = ((__u32)bpf_htons(v->channel)) | ((__u32)bpf_htons(plen) << 16);
	tot_new = bpf_htons(p->tot + CHAN_HDR);
	/* A peer checksum of 0 (none, RFC 768) stays none. Otherwise the new
	 * one follows from the old by what changed: both addresses and the
	 * length (pseudo header and field), the ports, and the 4 new bytes;
	 * the payload moves by 4 bytes, so its words sum the same. */
	nu.check = 0;
	if (p->check != 0) {
		nu.check = csum_apply(p->check, delta32(p->saddr, v->listen_ip) + delta32(p->daddr, v->client_ip) +
						2 * delta16(p->udp_len_be, new_len) + delta32(old_ports, new_ports) +
						sum32(hdr));
		if (nu.check == 0)
			nu.check = 0xffff; /* a computed 0 goes out as all ones */
	}

	/* 4 bytes after the IP header; if that fails nothing has changed. */
	if (bpf_skb_adjust_room(skb, CHAN_HDR, BPF_ADJ_ROOM_NET, 0) < 0)
		return TC_ACT_OK;
	/* From here on the packet is ours: a failure drops it. */
	data = (void *)(long)skb->data;
	end = (void *)(long)skb->data_end;
	if (data + L4 + sizeof(nu) + CHAN_HDR > end)
		return TC_ACT_SHOT;
	__builtin_memcpy(data + L4, &nu, sizeof(nu));
	__builtin_memcpy(data + L4 + sizeof(nu), &hdr, CHAN_HDR);
	if (set_l2l3(skb, &fib, p, v->listen_ip, v->client_ip, tot_new) < 0)
		return TC_ACT_SHOT;
	/* The checksum is ours now: a CHECKSUM_UNNECESSARY mark from the
	 * peer's side no longer applies, so the receiver verifies it. */
	bpf_csum_level(skb, BPF_CSUM_LEVEL_RESET);
	__sync_fetch_and_add(&c->d[TS_EBPF_TO_CLIENT].packets, 1);
	__sync_fetch_and_add(&c->d[TS_EBPF_TO_CLIENT].bytes, plen);
	return bpf_redirect(fib.ifindex, 0);
}

/* Client ChannelData to a listening address: the payload to the peer. */
static __always_inline int client_to_peer(struct __sk_buff *skb, const struct pkt *p, __u32 chdr)
{
	struct bpf_fib_lookup fib = {};
	struct ts_ebpf_ckey ck = {};
	struct ts_ebpf_cval *v;
	struct ts_ebpf_count *c;
	__u16 plen = p->ulen - sizeof(struct udphdr) - CHAN_HDR, new_len, tot_new;
	__u32 old_ports, new_ports;
	struct udphdr nu;
	void *data, *end;
	__u64 now;

	/* No padding, nothing short: exactly 4 + length (else slow path). */
	if (bpf_ntohs((__u16)(chdr >> 16)) != plen)
		return TC_ACT_OK;
	ck.listen_ip = p->daddr;
	ck.client_ip = p->saddr;
	ck.listen_port = p->dport;
	ck.client_port = p->sport;
	ck.channel = (__u16)chdr;
	if ((v = bpf_map_lookup_elem(&ts_c2p, &ck)) == NULL)
		return TC_ACT_OK;
	now = bpf_ktime_get_ns();
	if (now >= v->perm_expires_ns || now >= v->chan_expires_ns)
		return TC_ACT_OK; /* lapsed: the socket path drops it, as it would */
	if ((c = counters(v->counter)) == NULL)
		return TC_ACT_OK;
	if (route(skb, &fib, v->relay_ip, v->peer_ip, v->relay_port, v->peer_port, p->tot - CHAN_HDR) < 0)
		return TC_ACT_OK;
	if (p->check != 0 && csum_partial_like(p))
		return TC_ACT_OK;
	if (over_limit(v->bucket, v->rate, v->cap_bucket, v->cap_rate, TS_EBPF_TO_PEER, plen, now,
		       &c->d[TS_EBPF_TO_PEER]))
		return TC_ACT_SHOT; /* as limits_bps_pass in handle_channel_data */

	new_len = bpf_htons(p->ulen - CHAN_HDR);
	tot_new = bpf_htons(p->tot - CHAN_HDR);
	nu.source = v->relay_port;
	nu.dest = v->peer_port;
	nu.len = new_len;
	/* A client checksum of 0 (none, RFC 768) stays none. Otherwise the
	 * new one follows from the old by what changed: both addresses, the
	 * ports, the length (pseudo header and field) and the 4 header bytes
	 * that go; the payload moves by 4 bytes, so its words sum the same. */
	nu.check = 0;
	if (p->check != 0) {
		old_ports = ((__u32)p->sport) | ((__u32)p->dport << 16);
		new_ports = ((__u32)nu.source) | ((__u32)nu.dest << 16);
		nu.check = csum_apply(p->check, delta32(p->saddr, v->relay_ip) + delta32(p->daddr, v->peer_ip) +
						2 * delta16(p->udp_len_be, new_len) + delta32(old_ports, new_ports) +
						sum32(~chdr));
		if (nu.check == 0)
			nu.check = 0xffff; /* a computed 0 goes out as all ones */
	}
	/* The new UDP header goes over the last 4 bytes of the old one and the
	 * ChannelData header; then the 4 bytes after the IP header go, which
	 * leaves it right in front of the payload. */
	data = (void *)(long)skb->data;
	end = (void *)(long)skb->data_end;
	if (data + L4 + CHAN_HDR + sizeof(nu) > end)
		return TC_ACT_OK;
	__builtin_memcpy(data + L4 + CHAN_HDR, &nu, sizeof(nu));
	/* From here on the packet is ours: a failure drops it. */
	if (bpf_skb_adjust_room(skb, -CHAN_HDR, BPF_ADJ_ROOM_NET, 0) < 0)
		return TC_ACT_SHOT;
	if (set_l2l3(skb, &fib, p, v->relay_ip, v->peer_ip, tot_new) < 0)
		return TC_ACT_SHOT;
	bpf_csum_level(skb, BPF_CSUM_LEVEL_RESET);
	__sync_fetch_and_add(&c->d[TS_EBPF_TO_PEER].packets, 1);
	__sync_fetch_and_add(&c->d[TS_EBPF_TO_PEER].bytes, plen);
	return bpf_redirect(fib.ifindex, 0);
}

SEC("tc")
int ts_relay(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + L3;
	struct udphdr *udp = data + L4;
	struct ts_ebpf_key k = {};
	struct ts_ebpf_val *v;
	struct pkt p;
	__u32 chdr;

	if ((void *)(udp + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP) || skb->gso_segs > 1)
		return TC_ACT_OK;
	if (ip->ihl != 5 || ip->protocol != IPPROTO_UDP || (ip->frag_off & bpf_htons(0x3fff)) != 0)
		return TC_ACT_OK;
	p.tot = bpf_ntohs(ip->tot_len);
	p.ulen = bpf_ntohs(udp->len);
	if (p.ulen < sizeof(*udp) || p.tot != p.ulen + sizeof(*ip) || p.tot > 65535 - CHAN_HDR)
		return TC_ACT_OK;
	p.saddr = ip->saddr;
	p.daddr = ip->daddr;
	p.sport = udp->source;
	p.dport = udp->dest;
	p.check = udp->check;
	p.udp_len_be = udp->len;
	p.ip_check = ip->check;
	k.relay_ip = p.daddr;
	k.relay_port = p.dport;
	k.peer_ip = p.saddr;
	k.peer_port = p.sport;
	/* A packet matches at most one map (a listening port is never a
	 * relayed one), and ts_c2p holds bound channels only: 0x4000-0x7fff
	 * (rfc5766-channels) at most, so ChannelData starts with 0x40-0x7f.
	 * Media from peers (RTP 0x80-0xbf, DTLS 20-63, STUN 0-3) never does:
	 * nearly every packet costs one hash lookup, not two. */
	if (p.ulen >= sizeof(*udp) + CHAN_HDR && (void *)(udp + 1) + CHAN_HDR <= end) {
		chdr = *(__u32 *)(udp + 1);
		if ((chdr & 0xc0) == 0x40) { /* the first byte, in memory order */
			int rc = client_to_peer(skb, &p, chdr);

			if (rc != TC_ACT_OK) /* relayed or dropped; OK: untouched */
				return rc;
		}
	}
	if ((v = bpf_map_lookup_elem(&ts_chan, &k)) != NULL)
		return peer_to_client(skb, &p, v);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
