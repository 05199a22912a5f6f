/* ebpf_entry.c -- channel map entries for the ebpf-offload fast path (issue 14). */
#include "net/ebpf/ebpf_entry.h"

#include <string.h>

static uint32_t ip4(const struct stun_addr *a)
{
	uint32_t x;

	memcpy(&x, a->ip, 4); /* stun_addr.ip holds network order bytes */
	return x;
}

static uint16_t port_be(uint16_t host)
{
	return (uint16_t)(((host & 0xff) << 8) | (host >> 8));
}

uint64_t ebpf_entry_perm_expiry_ns(const struct turn_alloc *a, const struct turn_chan *c)
{
	size_t i;

	for (i = 0; i < a->nperms; i++)
		if (a->perms[i].family == c->peer.family &&
		    memcmp(a->perms[i].ip, c->peer.ip, c->peer.family == STUN_AF_IPV6 ? 16 : 4) == 0)
			return a->perms[i].expires * EBPF_NS_PER_S;
	return 0;
}

int ebpf_entry_make(const struct turn_alloc *a, const struct stun_addr *bound, const struct turn_chan *c,
		    uint64_t now, int bps_limited, struct ts_ebpf_key *key, struct ts_ebpf_val *val)
{
	uint64_t perm;

	if (a->transport != TURN_TRANSPORT_UDP || bps_limited)
		return -1;
	if (a->client.family != STUN_AF_IPV4 || a->server.family != STUN_AF_IPV4 ||
	    bound->family != STUN_AF_IPV4 || c->peer.family != STUN_AF_IPV4)
		return -1;
	perm = ebpf_entry_perm_expiry_ns(a, c);
	if (perm <= now * EBPF_NS_PER_S || c->expires <= now)
		return -1;
	memset(key, 0, sizeof(*key));
	memset(val, 0, sizeof(*val));
	key->relay_ip = ip4(bound);
	key->relay_port = port_be(bound->port);
	key->peer_ip = ip4(&c->peer);
	key->peer_port = port_be(c->peer.port);
	val->client_ip = ip4(&a->client);
	val->client_port = port_be(a->client.port);
	val->listen_ip = ip4(&a->server);
	val->listen_port = port_be(a->server.port);
	val->channel = c->number;
	val->perm_expires_ns = perm;
	val->chan_expires_ns = c->expires * EBPF_NS_PER_S;
	return 0;
}
