/* selfaddr.h -- the server's own addresses and ports, which the relay must
 * not be pointed at (RFC 8656 §21.3: a relay is no way into the server).
 *
 * A Send indication or ChannelBind aimed at one of the server's own
 * listening ports (TURN, TLS, admin, signaling) on one of its own IPs would
 * make the server a client of itself: a TURN loop that amplifies and hides
 * the real source. Those are refused even with allow-loopback-peers. Without
 * allow-loopback-peers, an own IP is reachable only on the relay port range,
 * so two relay-only clients of one server still reach each other's relayed
 * addresses, while other services on the server's public address are not
 * reachable through it. Filled once at start; read-only afterwards. Pure.
 */
#ifndef TURNSTONE_SELFADDR_H
#define TURNSTONE_SELFADDR_H

#include <stddef.h>
#include <stdint.h>

#include "stun/stun_msg.h"

#define SELFADDR_MAX_IPS 64
#define SELFADDR_MAX_PORTS 8

struct config;

struct selfaddr {
	struct stun_addr ip[SELFADDR_MAX_IPS]; /* own IPs (port unused); loopback is always own */
	size_t nip;
	uint16_t port[SELFADDR_MAX_PORTS];     /* own listening ports, host order */
	size_t nport;
	uint16_t relay_lo, relay_hi;           /* relay port range, host order */
	int loopback_ok;                       /* allow-loopback-peers */
};

/* Empties s and takes cfg's ports (listening, TLS, admin when on, signaling
 * when on), relay port range and allow-loopback-peers. */
void selfaddr_init(struct selfaddr *s, const struct config *cfg);

/* Adds an own IP (port ignored; wildcards and repeats skipped; a full table
 * keeps the first SELFADDR_MAX_IPS). main.c adds the listening, relay and
 * external IPs and the host's interface addresses at start. */
void selfaddr_add_ip(struct selfaddr *s, const struct stun_addr *a);

/* 1 when the relay must not send to peer (IP and peer->port, host order),
 * else 0. IPv4 spelled as IPv6 (mapped,
 * compatible, NAT64, 6to4) counts as that IPv4 address. */
int selfaddr_refuses(const struct selfaddr *s, const struct stun_addr *peer);

#endif
