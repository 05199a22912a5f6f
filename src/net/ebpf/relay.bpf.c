/* relay.bpf.c -- tc (clsact ingress) fast path for bound UDP channels,
 * peer -> client direction (issue 14, docs/ebpf.md).
 *
 * A peer datagram to a relayed address whose (relay, peer) pair has a live
 * entry in ts_chan (channel bound, permission live by the program's own
 * clock) becomes ChannelData to the client: 4-byte header prepended, source
 * = the listening address, destination = the client, UDP checksum updated,
 * then bpf_redirect out of the interface the FIB names. Everything else --
 * IPv6, IP options, fragments, a map miss, a lapsed permission or channel,
 * a datagram too big for the route, a failed FIB lookup -- returns TC_ACT_OK
 * untouched, so the normal socket path relays it exactly as without us.
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
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, TS_EBPF_MAX_CHANNELS);
	__type(key, struct ts_ebpf_key);
	__type(value, struct ts_ebpf_count);
} ts_count SEC(".maps");

#define L3 ((int)sizeof(struct ethhdr))
#define L4 (L3 + (int)sizeof(struct iphdr))
#define UDP_CSUM (L4 + (int)__builtin_offsetof(struct udphdr, check))
#define IP_CSUM (L3 + (int)__builtin_offsetof(struct iphdr, check))
#define CHAN_HDR 4

SEC("tc")
int ts_peer_to_client(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + L3;
	struct udphdr *udp = data + L4;
	struct bpf_fib_lookup fib = {};
	struct ts_ebpf_key k = {};
	struct ts_ebpf_val *v;
	struct ts_ebpf_count *c;
	__u16 ulen, plen, tot, tot_old, tot_new, old_len, new_len;
	__u32 old_ports, new_ports, hdr, saddr, daddr;
	struct udphdr nu;
	int udp_csum;
	__u64 now;

	if ((void *)(udp + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (ip->ihl != 5 || ip->protocol != IPPROTO_UDP || (ip->frag_off & bpf_htons(0x3fff)) != 0)
		return TC_ACT_OK;
	tot = bpf_ntohs(ip->tot_len);
	ulen = bpf_ntohs(udp->len);
	if (ulen < sizeof(*udp) || tot != ulen + sizeof(*ip) || tot > 65535 - CHAN_HDR)
		return TC_ACT_OK;
	k.relay_ip = ip->daddr;
	k.relay_port = udp->dest;
	k.peer_ip = ip->saddr;
	k.peer_port = udp->source;
	v = bpf_map_lookup_elem(&ts_chan, &k);
	if (v == NULL)
		return TC_ACT_OK;
	now = bpf_ktime_get_ns();
	if (now >= v->perm_expires_ns || now >= v->chan_expires_ns)
		return TC_ACT_OK; /* lapsed: the socket path drops it, as it would */
	c = bpf_map_lookup_elem(&ts_count, &k);
	if (c == NULL)
		return TC_ACT_OK;
	plen = ulen - sizeof(*udp);

	/* Route to the client first: a miss or a datagram over the MTU goes
	 * the slow way (which may fragment) before anything is changed. */
	fib.family = AF_INET;
	fib.l4_protocol = IPPROTO_UDP;
	fib.tot_len = tot + CHAN_HDR;
	fib.ipv4_src = v->listen_ip;
	fib.ipv4_dst = v->client_ip;
	fib.sport = v->listen_port;
	fib.dport = v->client_port;
	/* The kernel answers only where forwarding is on for the interface
	 * (BPF_FIB_LKUP_RET_FWD_DISABLED otherwise: then everything goes the
	 * slow way; ebpf.c warns at start). */
	fib.ifindex = skb->ingress_ifindex;
	if (bpf_fib_lookup(skb, &fib, sizeof(fib), 0) != BPF_FIB_LKUP_RET_SUCCESS)
		return TC_ACT_OK;

	udp_csum = udp->check != 0;
	/* CHECKSUM_PARTIAL (a local sender over veth/tap): the field holds
	 * only the pseudo-header sum and the stack would finish it at the old
	 * offset, so such a packet goes the slow way. A complete checksum
	 * equal to that sum by chance just goes the slow way too. */
	if (udp_csum) {
		struct { __u32 s, d; __u8 z, proto; __u16 len; } ph = {
			.s = ip->saddr, .d = ip->daddr, .proto = IPPROTO_UDP, .len = udp->len };
		__s64 sum = bpf_csum_diff(0, 0, (__be32 *)&ph, sizeof(ph), 0);
		__u32 f;

		if (sum < 0)
			return TC_ACT_OK;
		f = (__u32)sum;
		f = (f & 0xffff) + (f >> 16);
		f = (f & 0xffff) + (f >> 16);
		if ((__u16)f == udp->check)
			return TC_ACT_OK;
	}
	nu.source = v->listen_port;
	nu.dest = v->client_port;
	nu.len = bpf_htons(ulen + CHAN_HDR);
	nu.check = udp->check;
	old_ports = ((__u32)udp->source) | ((__u32)udp->dest << 16);
	new_ports = ((__u32)nu.source) | ((__u32)nu.dest << 16);
	old_len = udp->len;
	new_len = nu.len;
	hdr = ((__u32)bpf_htons(v->channel)) | ((__u32)bpf_htons(plen) << 16);
	tot_old = ip->tot_len;
	tot_new = bpf_htons(tot + CHAN_HDR);
	saddr = ip->saddr;
	daddr = ip->daddr;

	/* 4 bytes after the IP header; if that fails nothing has changed. */
	if (bpf_skb_adjust_room(skb, CHAN_HDR, BPF_ADJ_ROOM_NET, 0) < 0)
		return TC_ACT_OK;
	/* From here on the packet is ours: a failing helper drops it. */
	if (bpf_skb_store_bytes(skb, L4, &nu, sizeof(nu), 0) < 0 ||
	    bpf_skb_store_bytes(skb, L4 + (int)sizeof(nu), &hdr, 4, 0) < 0)
		return TC_ACT_SHOT;
	/* The UDP checksum covers both addresses and the length (pseudo
	 * header), the ports, the length field and the 4 new bytes; the
	 * payload moved by 4 bytes, so its 16-bit words sum the same. */
	if (udp_csum && (bpf_l4_csum_replace(skb, UDP_CSUM, saddr, v->listen_ip, BPF_F_PSEUDO_HDR | 4) < 0 ||
			 bpf_l4_csum_replace(skb, UDP_CSUM, daddr, v->client_ip, BPF_F_PSEUDO_HDR | 4) < 0 ||
			 bpf_l4_csum_replace(skb, UDP_CSUM, old_len, new_len, BPF_F_PSEUDO_HDR | 2) < 0 ||
			 bpf_l4_csum_replace(skb, UDP_CSUM, old_len, new_len, 2) < 0 ||
			 bpf_l4_csum_replace(skb, UDP_CSUM, old_ports, new_ports, 4) < 0 ||
			 bpf_l4_csum_replace(skb, UDP_CSUM, 0, hdr, 4) < 0))
		return TC_ACT_SHOT;
	if (bpf_l3_csum_replace(skb, IP_CSUM, saddr, v->listen_ip, 4) < 0 ||
	    bpf_l3_csum_replace(skb, IP_CSUM, daddr, v->client_ip, 4) < 0 ||
	    bpf_l3_csum_replace(skb, IP_CSUM, tot_old, tot_new, 2) < 0 ||
	    bpf_skb_store_bytes(skb, L3 + (int)__builtin_offsetof(struct iphdr, saddr), &v->listen_ip, 4, 0) < 0 ||
	    bpf_skb_store_bytes(skb, L3 + (int)__builtin_offsetof(struct iphdr, daddr), &v->client_ip, 4, 0) < 0 ||
	    bpf_skb_store_bytes(skb, L3 + (int)__builtin_offsetof(struct iphdr, tot_len), &tot_new, 2, 0) < 0)
		return TC_ACT_SHOT;
	if (udp_csum) { /* a computed 0 goes out as all ones (RFC 768) */
		__u16 ck;

		if (bpf_skb_load_bytes(skb, UDP_CSUM, &ck, 2) == 0 && ck == 0) {
			ck = 0xffff;
			bpf_skb_store_bytes(skb, UDP_CSUM, &ck, 2, 0);
		}
	}
	/* The checksum is ours now: a CHECKSUM_UNNECESSARY mark from the
	 * peer's side no longer applies, so the receiver verifies it. */
	bpf_csum_level(skb, BPF_CSUM_LEVEL_RESET);
	if (bpf_skb_store_bytes(skb, 0, fib.dmac, ETH_ALEN, 0) < 0 ||
	    bpf_skb_store_bytes(skb, ETH_ALEN, fib.smac, ETH_ALEN, 0) < 0)
		return TC_ACT_SHOT;
	__sync_fetch_and_add(&c->packets, 1);
	__sync_fetch_and_add(&c->bytes, plen);
	return bpf_redirect(fib.ifindex, 0);
}

char LICENSE[] SEC("license") = "GPL";
