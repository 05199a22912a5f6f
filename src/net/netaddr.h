/* netaddr.h -- conversions between socket addresses and the codec's stun_addr. */
#ifndef TURNSTONE_NETADDR_H
#define TURNSTONE_NETADDR_H

#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

#include "stun/stun_msg.h"

#define NETADDR_STRLEN (INET6_ADDRSTRLEN + 8)

/* sockaddr (AF_INET/AF_INET6, network order) to stun_addr (port host order).
 * IPv4-mapped IPv6 addresses are kept as IPv6. Returns 0, or -1 for another family. */
int netaddr_from_sockaddr(struct stun_addr *out, const struct sockaddr *sa);

/* stun_addr to sockaddr; returns the sockaddr length in bytes. */
socklen_t netaddr_to_sockaddr(const struct stun_addr *a, struct sockaddr_storage *ss);

/* Parses an IP literal (no port) into out with port. Returns 0 or -1. */
int netaddr_parse_ip(struct stun_addr *out, const char *s, uint16_t port);

/* "1.2.3.4:5" or "[::1]:5" into buf (NETADDR_STRLEN bytes); returns buf. */
const char *netaddr_str(const struct stun_addr *a, char *buf);

/* 1 when a is the wildcard address of its family (0.0.0.0 or ::). */
int netaddr_is_any(const struct stun_addr *a);

#endif
