/* turn_policy.h -- which peer addresses a client may reach through a relay.
 *
 * Pure code. Secure by default: special-purpose ranges (RFC 6890 and friends)
 * are denied unless an allow range opens them. IPv4 written in IPv6 form
 * (::ffff:a.b.c.d, ::a.b.c.d, 64:ff9b::/96 NAT64, 2002::/16 6to4) is converted
 * back to IPv4 before matching, so those spellings cannot bypass the list.
 * Used for CreatePermission, ChannelBind and Send (RFC 8656 §9, §11, §12 and
 * the security considerations of §21).
 */
#ifndef TURNSTONE_TURN_POLICY_H
#define TURNSTONE_TURN_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "stun/stun_msg.h"

struct turn_policy;

/* New policy holding the default deny list. Returns NULL on out of memory. */
struct turn_policy *turn_policy_new(void);
void turn_policy_free(struct turn_policy *p);

/* Adds a range to the deny (allow = 0) or allow (allow = 1) list. spec is
 * "ADDR", "ADDR/PREFIX" (CIDR) or "ADDR1-ADDR2" (inclusive range, same
 * family), IPv4 or IPv6. Returns 0, or -1 when spec does not parse (or out
 * of memory). */
int turn_policy_add(struct turn_policy *p, const char *spec, int allow);

/* Opens 127.0.0.0/8 and ::1 (allow-loopback-peers). Out of memory leaves
 * them denied (the safe direction). */
void turn_policy_allow_loopback(struct turn_policy *p);

/* 1 when the peer IP may be used, 0 when it is refused (403). Allow ranges
 * win over deny ranges. Only a->family and a->ip are read. */
int turn_policy_permits(const struct turn_policy *p, const struct stun_addr *a);

/* Writes the IPv4 address an IPv6 address embeds (mapped, compatible, NAT64,
 * 6to4) into out (network order). Returns 1 when it embeds one, else 0. */
int turn_policy_embedded_v4(const uint8_t ip6[16], uint8_t out[4]);

#endif
