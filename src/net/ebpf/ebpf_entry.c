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

void ebpf_entry_ckey(const struct turn_alloc *a, const struct turn_chan *c, struct ts_ebpf_ckey *ckey)
{
	memset(ckey, 0, sizeof(*ckey));
	ckey->listen_ip = ip4(&a->server);
	ckey->listen_port = port_be(a->server.port);
	ckey->client_ip = ip4(&a->client);
	ckey->client_port = port_be(a->client.port);
	ckey->channel = port_be(c->number);
}

int ebpf_entry_make(const struct turn_alloc *a, const struct stun_addr *bound, const struct turn_chan *c,
		    uint64_t now, const struct ebpf_limits *lim, struct ts_ebpf_key *key, struct ts_ebpf_val *val,
		    struct ts_ebpf_ckey *ckey, struct ts_ebpf_cval *cval)
{
	uint64_t perm;

	if (a->transport != TURN_TRANSPORT_UDP)
		return -1;
	/* Every limit in force needs its bucket in the map (shared with the
	 * socket path), or the program could relay past it. */
	if (lim->bps_on && ((lim->rate > 0 && lim->bucket == 0) || (lim->cap_rate > 0 && lim->cap_bucket == 0)))
		return -1;
	if (a->client.family != STUN_AF_IPV4 || a->server.family != STUN_AF_IPV4 ||
	    bound->family != STUN_AF_IPV4 || c->peer.family != STUN_AF_IPV4)
		return -1;
	perm = ebpf_entry_perm_expiry_ns(a, c);
	if (perm <= now * EBPF_NS_PER_S || c->expires <= now)
		return -1;
	memset(key, 0, sizeof(*key));
	memset(val, 0, sizeof(*val));
	memset(cval, 0, sizeof(*cval));
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
	ebpf_entry_ckey(a, c, ckey);
	cval->relay_ip = key->relay_ip;
	cval->relay_port = key->relay_port;
	cval->peer_ip = key->peer_ip;
	cval->peer_port = key->peer_port;
	cval->perm_expires_ns = val->perm_expires_ns;
	cval->chan_expires_ns = val->chan_expires_ns;
	if (lim->bps_on) {
		val->bucket = cval->bucket = lim->rate > 0 ? lim->bucket : 0;
		val->rate = cval->rate = lim->rate;
		val->cap_bucket = cval->cap_bucket = lim->cap_rate > 0 ? lim->cap_bucket : 0;
		val->cap_rate = cval->cap_rate = lim->cap_rate;
	}
	return 0;
}

void ebpf_list_hold(struct ebpf_list *l, struct ebpf_node *n)
{
	if (n->entries++ > 0)
		return;
	n->prev = NULL;
	n->next = l->head;
	if (l->head != NULL)
		l->head->prev = n;
	l->head = n;
	l->len++;
}

void ebpf_list_drop(struct ebpf_list *l, struct ebpf_node *n)
{
	if (n->entries == 0)
		return;
	n->entries = 0;
	if (n->prev != NULL)
		n->prev->next = n->next;
	else
		l->head = n->next;
	if (n->next != NULL)
		n->next->prev = n->prev;
	n->prev = n->next = NULL;
	l->len--;
}

void ebpf_list_release(struct ebpf_list *l, struct ebpf_node *n)
{
	if (n->entries == 1)
		ebpf_list_drop(l, n);
	else if (n->entries > 1)
		n->entries--;
}
