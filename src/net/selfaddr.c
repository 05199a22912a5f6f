/* selfaddr.c -- the server's own addresses and ports (see selfaddr.h). */
#include "net/selfaddr.h"

#include <string.h>

#include "config.h"
#include "turn/turn_policy.h"

void selfaddr_add_ip(struct selfaddr *s, const struct stun_addr *a)
{
	static const uint8_t zero[16];
	size_t i, n = a->family == STUN_AF_IPV6 ? 16 : 4;

	if (a->family != STUN_AF_IPV4 && a->family != STUN_AF_IPV6)
		return;
	if (memcmp(a->ip, zero, n) == 0) /* wildcard */
		return;
	for (i = 0; i < s->nip; i++)
		if (s->ip[i].family == a->family && memcmp(s->ip[i].ip, a->ip, n) == 0)
			return;
	if (s->nip < SELFADDR_MAX_IPS)
		s->ip[s->nip++] = *a;
}

static void add_port(struct selfaddr *s, int port)
{
	if (port > 0 && port <= 65535 && s->nport < SELFADDR_MAX_PORTS)
		s->port[s->nport++] = (uint16_t)port;
}

void selfaddr_init(struct selfaddr *s, const struct config *cfg)
{
	memset(s, 0, sizeof(*s));
	add_port(s, cfg->listening_port);
	add_port(s, cfg->tls_listening_port);
	if (cfg->prometheus)
		add_port(s, cfg->prometheus_port);
	if (cfg->signaling && !cfg->no_signaling)
		add_port(s, cfg->signaling_port);
	s->relay_lo = (uint16_t)cfg->min_port;
	s->relay_hi = (uint16_t)cfg->max_port;
	s->loopback_ok = cfg->allow_loopback_peers;
}

static int is_own_ip(const struct selfaddr *s, uint8_t family, const uint8_t *ip)
{
	static const uint8_t v6_loopback[16] = { [15] = 1 };
	size_t i, n = family == STUN_AF_IPV6 ? 16 : 4;

	if ((family == STUN_AF_IPV4 && ip[0] == 127) || (family == STUN_AF_IPV6 && memcmp(ip, v6_loopback, 16) == 0))
		return 1;
	for (i = 0; i < s->nip; i++)
		if (s->ip[i].family == family && memcmp(s->ip[i].ip, ip, n) == 0)
			return 1;
	return 0;
}

int selfaddr_refuses(const struct selfaddr *s, const struct stun_addr *peer)
{
	uint8_t v4[4];
	size_t i;
	int own_port = 0;

	for (i = 0; i < s->nport; i++)
		if (s->port[i] == peer->port)
			own_port = 1;
	/* Fast path (every Send indication): a port no own address refuses. */
	if (!own_port && (s->loopback_ok || (peer->port >= s->relay_lo && peer->port <= s->relay_hi)))
		return 0;
	if (is_own_ip(s, peer->family, peer->ip))
		return 1;
	return peer->family == STUN_AF_IPV6 && turn_policy_embedded_v4(peer->ip, v4) &&
	       is_own_ip(s, STUN_AF_IPV4, v4);
}
