/* turn_policy.c -- peer address allow/deny lists for the relay (RFC 8656 §21).
 *
 * A range is stored as inclusive [lo, hi] byte strings in network order (4
 * bytes for IPv4, 16 for IPv6), so memcmp orders addresses numerically. The
 * lists are short (tens of ranges) and checked once per permission, so a
 * linear scan is enough.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "turn/turn_policy.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

struct policy_range {
	uint8_t family;   /* STUN_AF_IPV4 or STUN_AF_IPV6 */
	uint8_t lo[16];   /* first address, network order */
	uint8_t hi[16];   /* last address, network order */
};

struct range_list {
	struct policy_range *v;
	size_t n, cap;
};

struct turn_policy {
	struct range_list allow;
	struct range_list deny;
};

/* RFC 6890 special-purpose blocks plus multicast, reserved, NAT64 and 6to4;
 * IPv4-translated ::ffff:0:0:0/96 (RFC 2765: never an Internet address, and
 * not converted, so allow-loopback-peers does not open ::ffff:0:127.0.0.1),
 * the IPv6 documentation block 3fff::/20 (RFC 9637) and the deprecated
 * site-local fec0::/10 (RFC 3879). */
static const char *const default_deny[] = {
	"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
	"172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
	"198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
	"::/128", "::1/128", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "2001::/23",
	"2001:db8::/32", "2002::/16", "fc00::/7", "fe80::/10", "ff00::/8",
	"::ffff:0:0:0/96", "3fff::/20", "fec0::/10",
};

static size_t addr_len(uint8_t family)
{
	return family == STUN_AF_IPV4 ? 4 : 16;
}

/* Parses one IP literal into out (network order). Returns the STUN family,
 * or 0 when s is not an address. */
static uint8_t parse_addr(const char *s, uint8_t out[16])
{
	memset(out, 0, 16);
	if (strchr(s, ':') != NULL)
		return inet_pton(AF_INET6, s, out) == 1 ? STUN_AF_IPV6 : 0;
	return inet_pton(AF_INET, s, out) == 1 ? STUN_AF_IPV4 : 0;
}

/* Strict decimal prefix length 0..max. Returns it, or -1. */
static int parse_prefix(const char *s, int max)
{
	int v = 0;

	if (*s == '\0' || strlen(s) > 3)
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s - '0');
	}
	return v <= max ? v : -1;
}

/* Fills r from "ADDR", "ADDR/PREFIX" or "ADDR1-ADDR2". Returns 0 or -1. */
static int parse_range(const char *spec, struct policy_range *r)
{
	char buf[128];
	char *sep;
	size_t len = strlen(spec);

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, spec, len + 1);

	if ((sep = strchr(buf, '-')) != NULL) {
		*sep = '\0';
		r->family = parse_addr(buf, r->lo);
		if (r->family == 0 || parse_addr(sep + 1, r->hi) != r->family)
			return -1;
		return memcmp(r->lo, r->hi, addr_len(r->family)) <= 0 ? 0 : -1;
	}

	int prefix = -1;
	if ((sep = strchr(buf, '/')) != NULL)
		*sep = '\0';
	r->family = parse_addr(buf, r->lo);
	if (r->family == 0)
		return -1;
	int bits = (int)addr_len(r->family) * 8;
	prefix = sep != NULL ? parse_prefix(sep + 1, bits) : bits;
	if (prefix < 0)
		return -1;
	/* Host bits are cleared in lo and set in hi, so "10.1.2.3/8" means 10/8. */
	memcpy(r->hi, r->lo, 16);
	for (int i = 0; i < bits; i++) {
		if (i < prefix)
			continue;
		uint8_t bit = (uint8_t)(0x80u >> (i % 8));
		r->lo[i / 8] &= (uint8_t)~bit;
		r->hi[i / 8] |= bit;
	}
	return 0;
}

static int list_push(struct range_list *l, const struct policy_range *r)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;
		struct policy_range *v = realloc(l->v, cap * sizeof(*v));
		if (v == NULL)
			return -1;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *r;
	return 0;
}

static int list_covers(const struct range_list *l, uint8_t family, const uint8_t *ip)
{
	size_t len = addr_len(family);

	for (size_t i = 0; i < l->n; i++) {
		const struct policy_range *r = &l->v[i];
		if (r->family == family && memcmp(ip, r->lo, len) >= 0 && memcmp(ip, r->hi, len) <= 0)
			return 1;
	}
	return 0;
}

struct turn_policy *turn_policy_new(void)
{
	struct turn_policy *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	for (size_t i = 0; i < sizeof(default_deny) / sizeof(default_deny[0]); i++) {
		if (turn_policy_add(p, default_deny[i], 0) < 0) {
			turn_policy_free(p);
			return NULL;
		}
	}
	return p;
}

void turn_policy_free(struct turn_policy *p)
{
	if (p == NULL)
		return;
	free(p->allow.v);
	free(p->deny.v);
	free(p);
}

int turn_policy_add(struct turn_policy *p, const char *spec, int allow)
{
	struct policy_range r;

	if (p == NULL || spec == NULL || parse_range(spec, &r) < 0)
		return -1;
	return list_push(allow ? &p->allow : &p->deny, &r);
}

void turn_policy_allow_loopback(struct turn_policy *p)
{
	/* Out of memory leaves loopback denied: the safe direction. */
	(void)turn_policy_add(p, "127.0.0.0/8", 1);
	(void)turn_policy_add(p, "::1", 1);
}

int turn_policy_embedded_v4(const uint8_t ip6[16], uint8_t out[4])
{
	static const uint8_t zero[12];
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	static const uint8_t nat64[12] = { 0x00, 0x64, 0xff, 0x9b };

	if (memcmp(ip6, mapped, 12) == 0 || memcmp(ip6, nat64, 12) == 0) {
		memcpy(out, ip6 + 12, 4);
		return 1;
	}
	if (memcmp(ip6, zero, 12) == 0) {
		/* IPv4-compatible, except :: and ::1 which are IPv6 addresses of their own. */
		if (ip6[12] == 0 && ip6[13] == 0 && ip6[14] == 0 && ip6[15] <= 1)
			return 0;
		memcpy(out, ip6 + 12, 4);
		return 1;
	}
	if (ip6[0] == 0x20 && ip6[1] == 0x02) {  /* 6to4: 2002:AABB:CCDD::/48 */
		memcpy(out, ip6 + 2, 4);
		return 1;
	}
	return 0;
}

int turn_policy_permits(const struct turn_policy *p, const struct stun_addr *a)
{
	uint8_t v4[4];
	int has_v4;

	if (p == NULL)
		return 0;
	if (a->family == STUN_AF_IPV4) {
		if (list_covers(&p->allow, STUN_AF_IPV4, a->ip))
			return 1;
		return !list_covers(&p->deny, STUN_AF_IPV4, a->ip);
	}
	if (a->family != STUN_AF_IPV6)
		return 0;

	/* Check both spellings so ::ffff:10.0.0.1 and friends cannot slip past
	 * an IPv4 deny range; an explicit allow of either spelling wins. */
	has_v4 = turn_policy_embedded_v4(a->ip, v4);
	if (list_covers(&p->allow, STUN_AF_IPV6, a->ip) ||
	    (has_v4 && list_covers(&p->allow, STUN_AF_IPV4, v4)))
		return 1;
	if (list_covers(&p->deny, STUN_AF_IPV6, a->ip) ||
	    (has_v4 && list_covers(&p->deny, STUN_AF_IPV4, v4)))
		return 0;
	return 1;
}
