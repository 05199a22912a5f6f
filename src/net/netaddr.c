/* netaddr.c -- socket address helpers for the I/O layer. */
#include "net/netaddr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

int netaddr_from_sockaddr(struct stun_addr *out, const struct sockaddr *sa)
{
	memset(out, 0, sizeof(*out));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		out->family = STUN_AF_IPV4;
		out->port = ntohs(in->sin_port);
		memcpy(out->ip, &in->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		out->family = STUN_AF_IPV6;
		out->port = ntohs(in6->sin6_port);
		memcpy(out->ip, &in6->sin6_addr, 16);
		return 0;
	}
	return -1;
}

socklen_t netaddr_to_sockaddr(const struct stun_addr *a, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (a->family == STUN_AF_IPV6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(a->port);
		memcpy(&in6->sin6_addr, a->ip, 16);
		return sizeof(*in6);
	}
	struct sockaddr_in *in = (struct sockaddr_in *)ss;

	in->sin_family = AF_INET;
	in->sin_port = htons(a->port);
	memcpy(&in->sin_addr, a->ip, 4);
	return sizeof(*in);
}

int netaddr_parse_ip(struct stun_addr *out, const char *s, uint16_t port)
{
	memset(out, 0, sizeof(*out));
	out->port = port;
	if (inet_pton(AF_INET, s, out->ip) == 1) {
		out->family = STUN_AF_IPV4;
		return 0;
	}
	if (inet_pton(AF_INET6, s, out->ip) == 1) {
		out->family = STUN_AF_IPV6;
		return 0;
	}
	return -1;
}

/* Writes v in decimal at p; returns the end. */
static char *put_dec(char *p, unsigned v)
{
	char tmp[5];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	while (n > 0)
		*p++ = tmp[--n];
	return p;
}

const char *netaddr_str(const struct stun_addr *a, char *buf)
{
	char ip[INET6_ADDRSTRLEN], *p = buf;

	if (a->family == STUN_AF_IPV6) {
		inet_ntop(AF_INET6, a->ip, ip, sizeof(ip));
		snprintf(buf, NETADDR_STRLEN, "[%s]:%u", ip, a->port);
		return buf;
	}
	/* IPv4 by hand: this runs for every allocation's log line, where
	 * inet_ntop and snprintf cost more than the rest of the line. At most
	 * 21 bytes ("255.255.255.255:65535"), well within NETADDR_STRLEN. */
	for (int i = 0; i < 4; i++) {
		p = put_dec(p, a->ip[i]);
		*p++ = i < 3 ? '.' : ':';
	}
	p = put_dec(p, a->port);
	*p = '\0';
	return buf;
}

int netaddr_is_any(const struct stun_addr *a)
{
	static const uint8_t zero[16];

	return memcmp(a->ip, zero, a->family == STUN_AF_IPV6 ? 16 : 4) == 0;
}
