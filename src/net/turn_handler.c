/* turn_handler.c -- STUN Binding and TURN over UDP: RFC 8489 §6.3 and
 * RFC 8656 §7 (Allocate), §7.3 (Refresh), §9 (CreatePermission), §11
 * (Send/Data), §12 (ChannelBind, ChannelData). Credentials: turn_auth.c. */
#include "net/turn_handler.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_rest.h"
#include "log.h"
#include "net/limits.h"
#include "net/netaddr.h"
#include "net/selfaddr.h"
#include "net/ebpf/ebpf.h"
#include "net/tcp_relay.h"
#include "net/statsdb.h"
#include "net/turn_auth.h"
#include "net/turn_req.h"
#include "turn/turn_policy.h"

/* ---- responses --------------------------------------------------------- */

void turn_req_begin(struct req *r, struct stun_builder *b, uint8_t cls)
{
	stun_build_init(b, r->w->tx, sizeof(r->w->tx), r->m.method, cls, r->m.tid);
	if (r->w->srv->cfg->software != NULL)
		stun_build_str(b, STUN_ATTR_SOFTWARE, r->w->srv->cfg->software);
}

/* Adds integrity (when authenticated) and FINGERPRINT (when the request had
 * one, or always with 'fingerprint'), sends, and returns the length sent
 * (0 on overflow). */
size_t turn_req_send(struct req *r, struct stun_builder *b)
{
	size_t n;

	if (r->keylen > 0) {
		if (r->sha256)
			stun_build_integrity_sha256(b, r->key, r->keylen);
		else
			stun_build_integrity(b, r->key, r->keylen);
	}
	if (r->m.fp_off != 0 || r->w->srv->cfg->fingerprint)
		stun_build_fingerprint(b);
	if ((n = stun_build_finish(b)) == 0) {
		log_warnx("response to %s does not fit", "request");
		return 0;
	}
	worker_send_client(r->o, b->buf, n, 0);
	return n;
}

void turn_req_count(struct req *r, int code)
{
	if (r->m.method == TURN_METHOD_ALLOCATE)
		STAT_INC(r->w->stats.allocate[stats_code_index(code)]);
}

void turn_req_error(struct req *r, int code)
{
	struct stun_builder b;

	if (log_level >= LOG_LVL_DEBUG) {
		char cs[NETADDR_STRLEN];

		log_debug("%s: method 0x%03x: error %d", netaddr_str(r->client, cs), r->m.method, code);
	}

	turn_req_count(r, code);
	turn_req_begin(r, &b, STUN_CLASS_ERROR);
	stun_build_error(&b, code, NULL);
	turn_req_send(r, &b);
}

/* 401 or 438: REALM and a fresh NONCE, never MESSAGE-INTEGRITY (§9.2.4). */
void turn_req_challenge(struct req *r, int code)
{
	const struct server *srv = r->w->srv;
	struct stun_builder b;
	char nonce[TURN_NONCE_COOKIE_LEN + AUTH_NONCE_LEN + 1];
	uint8_t algs[8];
	size_t nalgs;

	r->keylen = 0;
	/* unauthorized-rate-per-ip: over it, no answer at all (a 401 costs
	 * an HMAC and reflects bytes to a possibly spoofed source). */
	if (code == 401 && !limits_rate_ok(r->w, r->client, TURN_RATE_UNAUTH))
		return;
	turn_req_count(r, code);
	memcpy(nonce, TURN_NONCE_COOKIE, TURN_NONCE_COOKIE_LEN);
	auth_nonce_make(&srv->nonce, worker_wallclock(), r->client, nonce + TURN_NONCE_COOKIE_LEN);
	turn_req_begin(r, &b, STUN_CLASS_ERROR);
	stun_build_error(&b, code, NULL);
	stun_build_str(&b, STUN_ATTR_REALM, srv->cfg->realm);
	stun_build_str(&b, STUN_ATTR_NONCE, nonce);
	/* The cookie's "Password algorithms" bit promises this list (§9.2.1). */
	nalgs = turn_auth_algorithms(srv->cfg, algs);
	stun_build_attr(&b, STUN_ATTR_PASSWORD_ALGORITHMS, algs, nalgs);
	turn_req_send(r, &b);
}

void turn_req_unknown(struct req *r)
{
	struct stun_builder b;

	turn_req_count(r, 420);
	turn_req_begin(r, &b, STUN_CLASS_ERROR);
	stun_build_error(&b, 420, NULL);
	stun_build_unknown(&b, r->m.unknown, r->m.nunknown);
	turn_req_send(r, &b);
}

/* ---- Binding ----------------------------------------------------------- */

static void handle_binding(struct req *r)
{
	struct stun_builder b;

	if (r->m.nunknown > 0) {
		turn_req_unknown(r);
		return;
	}
	turn_req_begin(r, &b, STUN_CLASS_SUCCESS);
	stun_build_xor_addr(&b, STUN_ATTR_XOR_MAPPED_ADDRESS, r->client);
	turn_req_send(r, &b);
}

/* ---- Allocate ---------------------------------------------------------- */

static uint32_t clamp_lifetime(const struct config *cfg, const struct stun_msg *m, int refresh)
{
	const struct stun_attr *a = stun_msg_find(m, TURN_ATTR_LIFETIME);
	uint32_t want;

	if (a == NULL || stun_attr_u32(a, &want) < 0)
		return (uint32_t)cfg->default_allocate_lifetime;
	if (refresh && want == 0)
		return 0;
	if (want < (uint32_t)cfg->default_allocate_lifetime && !refresh)
		want = (uint32_t)cfg->default_allocate_lifetime;
	if (want > (uint32_t)cfg->max_allocate_lifetime)
		want = (uint32_t)cfg->max_allocate_lifetime;
	return want;
}

/* The private addresses of external-ip mappings of family, into v. */
static size_t ext_private_of(const struct server *srv, uint8_t family, struct stun_addr *v)
{
	size_t n = 0;

	for (size_t i = 0; i < srv->next; i++)
		if (srv->ext[i].priv.family == family)
			v[n++] = srv->ext[i].priv;
	return n;
}

/* Address the relay socket binds to for family, or -1 (440): the relay-ip
 * addresses of that family in turn (coturn spreads allocations over them),
 * else the private sides of external-ip, else the address the client
 * reached or a listening address of that family. */
static int relay_bind_ip(struct req *r, uint8_t family, struct stun_addr *ip)
{
	const struct server *srv = r->w->srv;
	struct stun_addr priv[CONFIG_MAX_LISTEN];
	size_t npriv;

	if (family == STUN_AF_IPV4 && srv->nrelay4 > 0)
		*ip = srv->relay4[r->w->relay_rr++ % srv->nrelay4];
	else if (family == STUN_AF_IPV6 && srv->nrelay6 > 0)
		*ip = srv->relay6[r->w->relay_rr++ % srv->nrelay6];
	else if ((npriv = ext_private_of(srv, family, priv)) > 0)
		*ip = priv[r->w->relay_rr++ % npriv];
	else if (r->local->family == family && !netaddr_is_any(r->local))
		*ip = *r->local;
	else {
		/* A client that came over the other family: a listening
		 * address of the family asked for, if one is configured. */
		size_t i;

		for (i = 0; i < srv->nlisten; i++)
			if (srv->listen[i].family == family && !netaddr_is_any(&srv->listen[i]))
				break;
		if (i == srv->nlisten)
			return -1;
		*ip = srv->listen[i];
	}
	ip->port = 0;
	return 0;
}

/* external-ip: the public address for a relay bound on a (port kept). A
 * PUBLIC/PRIVATE mapping for a's address wins over a bare PUBLIC; a lone
 * mapping of a's family applies whatever its PRIVATE (as before several
 * mappings were possible). */
static void relay_advertised(const struct server *srv, struct stun_addr *a)
{
	const struct server_ext *any = NULL, *lone = NULL;
	size_t nfam = 0;

	for (size_t i = 0; i < srv->next; i++) {
		const struct server_ext *x = &srv->ext[i];

		if (x->pub.family != a->family)
			continue;
		if (nfam++ == 0)
			lone = x;
		if (x->priv.family == 0) {
			if (any == NULL)
				any = x;
		} else if (memcmp(x->priv.ip, a->ip, a->family == STUN_AF_IPV4 ? 4 : 16) == 0) {
			any = x;
			break;
		}
	}
	if (any == NULL && nfam == 1)
		any = lone;
	if (any != NULL)
		memcpy(a->ip, any->pub.ip, sizeof(a->ip));
}

/* redis-statsdb: "new" or "refreshed" status of a (coturn's keys). */
static void statsdb_report(struct req *r, const struct turn_alloc *a, int refresh, uint32_t lifetime)
{
	static const char *const type[] = { [STATS_UDP] = "UDP", [STATS_TCP] = "TCP", [STATS_TLS] = "TLS" };
	const struct relay *rl = a->io;
	char ls[NETADDR_STRLEN], cs[NETADDR_STRLEN];
	struct statsdb_client cl;

	if (r->w->statsdb == NULL || rl == NULL || rl->statsdb_id == 0)
		return;
	cl.type = type[worker_stats_transport(r->o)];
	cl.local = netaddr_str(r->local, ls);
	cl.remote = netaddr_str(r->client, cs);
	statsdb_alloc_status(r->w->statsdb, rl->statsdb_id, a->username, refresh, lifetime, &cl);
}

/* The relayed address clients are told for bound (external-ip, above). */
static struct stun_addr advertised(const struct server *srv, const struct stun_addr *bound)
{
	struct stun_addr a = *bound;

	relay_advertised(srv, &a);
	return a;
}

/* Dual allocation (RFC 8656 §7.2): opens a's IPv6 relayed address next to
 * its IPv4 one. Returns 0 (a->relay2 set), or the code for the answer's
 * ADDRESS-ERROR-CODE: 440 (no IPv6 relay address), 508 (no port or no
 * descriptor). The allocation itself succeeds either way. */
static int allocate_second(struct req *r, struct turn_alloc *a)
{
	struct stun_addr ip, bound;

	if (relay_bind_ip(r, STUN_AF_IPV6, &ip) < 0)
		return 440;
	if (worker_relay_open_second(r->w, a, &ip, &bound) < 0)
		return 508;
	a->relay2 = advertised(r->w->srv, &bound);
	return 0;
}

/* ADDRESS-ERROR-CODE (RFC 8656 §18.10): family, reserved, class, number,
 * reason: why the ADDITIONAL-ADDRESS-FAMILY was not allocated. */
static void build_address_error(struct stun_builder *b, uint8_t family, int code)
{
	const char *reason = stun_error_reason(code);
	uint8_t v[4 + 128];
	size_t n = strlen(reason);

	if (n > sizeof(v) - 4)
		n = sizeof(v) - 4;
	v[0] = family;
	v[1] = 0;
	v[2] = (uint8_t)(code / 100);
	v[3] = (uint8_t)(code % 100);
	memcpy(v + 4, reason, n);
	stun_build_attr(b, TURN_ATTR_ADDRESS_ERROR_CODE, v, 4 + n);
}

static void handle_allocate(struct req *r)
{
	struct worker *w = r->w;
	const struct server *srv = w->srv;
	const struct config *cfg = srv->cfg;
	const struct stun_attr *tr, *fam, *even, *token, *add;
	struct stun_addr bound, relayed;
	struct relay_req rq;
	int rc, add_err = 0;
	struct stun_builder b;
	struct turn_alloc *a;
	uint8_t family = STUN_AF_IPV4;
	uint32_t lifetime;
	char cs[NETADDR_STRLEN], rs[NETADDR_STRLEN], rs2[NETADDR_STRLEN];
	size_t n;

	if (r->alloc != NULL) {
		turn_req_error(r, 437);
		return;
	}
	/* Draining (SIGUSR1, POST /drain): existing allocations keep relaying,
	 * new ones are refused as "insufficient capacity". */
	if (atomic_load_explicit(&srv->draining, memory_order_relaxed)) {
		STAT_INC(w->stats.refused[STATS_REFUSE_DRAINING]);
		turn_req_error(r, 508);
		return;
	}
	/* allocate-rate-per-ip counts authenticated Allocates on a 5-tuple
	 * without allocation, valid or not; over it the request is dropped
	 * unanswered. */
	if (!limits_rate_ok(w, r->client, TURN_RATE_ALLOC))
		return;
	tr = stun_msg_find(&r->m, TURN_ATTR_REQUESTED_TRANSPORT);
	if (tr == NULL || tr->len != 4) {
		turn_req_error(r, 400);
		return;
	}
	if (tr->val[0] == TURN_TRANSPORT_TCP && !cfg->no_tcp_relay) { /* RFC 6062 §5.1 */
		if ((rc = tcp_relay_allocate_check(r)) != 0) {
			turn_req_error(r, rc);
			return;
		}
	} else if (tr->val[0] != TRANSPORT_UDP || cfg->no_udp_relay) {
		turn_req_error(r, 442);
		return;
	}
	fam = stun_msg_find(&r->m, TURN_ATTR_REQUESTED_ADDRESS_FAMILY);
	even = stun_msg_find(&r->m, TURN_ATTR_EVEN_PORT);
	token = stun_msg_find(&r->m, TURN_ATTR_RESERVATION_TOKEN);
	add = stun_msg_find(&r->m, TURN_ATTR_ADDITIONAL_ADDRESS_FAMILY);
	/* A token names an existing reservation: it cannot be combined with
	 * EVEN-PORT or an address family (§7.2). ADDITIONAL-ADDRESS-FAMILY can
	 * only ask for IPv6 (next to the default IPv4). */
	if ((token != NULL && (even != NULL || fam != NULL || add != NULL)) ||
	    (add != NULL && (add->len != 4 || add->val[0] != STUN_AF_IPV6))) {
		turn_req_error(r, 400);
		return;
	}
	if (fam != NULL) {
		if (fam->val[0] != STUN_AF_IPV4 && fam->val[0] != STUN_AF_IPV6) {
			turn_req_error(r, 440);
			return;
		}
		if (stun_msg_find(&r->m, TURN_ATTR_ADDITIONAL_ADDRESS_FAMILY) != NULL) {
			turn_req_error(r, 400);
			return;
		}
		family = fam->val[0];
	}
	memset(&rq, 0, sizeof(rq));
	if (token == NULL && relay_bind_ip(r, family, &rq.bind_ip) < 0) {
		turn_req_error(r, 440);
		return;
	}
	rq.even = even != NULL;
	rq.reserve = even != NULL && (even->val[0] & 0x80);
	rq.token = token != NULL ? token->val : NULL;
	rq.dont_fragment = stun_msg_find(&r->m, TURN_ATTR_DONT_FRAGMENT) != NULL;
	rq.tcp = tr->val[0] == TURN_TRANSPORT_TCP;
	lifetime = clamp_lifetime(cfg, &r->m, 0);
	/* Quotas last, once the request is known to be valid (§7.2: 486). */
	if ((rc = limits_alloc_acquire(w, r->username, &rq.quota_held)) != 0) {
		if (worker_log_ok(w))
			log_info("user %s: allocation quota reached (%s)", r->username, netaddr_str(r->client, cs));
		turn_req_error(r, rc);
		return;
	}
	if ((a = turn_table_add(&w->allocs, r->client, r->local, transport_of(r->o))) == NULL ||
	    turn_alloc_set_user(a, r->username, r->key, (size_t)r->keylen) < 0) {
		if (rq.quota_held)
			limits_alloc_release(srv, r->username);
		if (a != NULL)
			turn_table_remove(&w->allocs, a);
		turn_req_error(r, 508);
		return;
	}
	a->max_perms = (uint8_t)cfg->max_permissions;
	a->max_chans = (uint8_t)cfg->max_channels;
	if ((rc = worker_relay_open(w, r->o, a, &rq, &bound)) < 0) {
		if (rq.quota_held)
			limits_alloc_release(srv, r->username);
		turn_table_remove(&w->allocs, a);
		if (rc != -3) /* -3: out of descriptors, logged rate-limited by worker_relay_open */
			log_warnx("%s for %s", rc == -2 ? "unknown or expired RESERVATION-TOKEN" : "no free relay port",
				  netaddr_str(r->client, cs));
		turn_req_error(r, 508);
		return;
	}
	relayed = advertised(srv, &bound);
	a->relay = relayed;
	if (add != NULL)
		add_err = allocate_second(r, a);
	a->expires = worker_now() + lifetime;
	worker_alloc_arm(w, a);

	turn_req_count(r, 200);
	turn_req_begin(r, &b, STUN_CLASS_SUCCESS);
	stun_build_xor_addr(&b, TURN_ATTR_XOR_RELAYED_ADDRESS, &relayed);
	if (a->relay2.family != 0)
		stun_build_xor_addr(&b, TURN_ATTR_XOR_RELAYED_ADDRESS, &a->relay2);
	else if (add_err != 0)
		build_address_error(&b, STUN_AF_IPV6, add_err);
	stun_build_u32(&b, TURN_ATTR_LIFETIME, lifetime);
	stun_build_xor_addr(&b, STUN_ATTR_XOR_MAPPED_ADDRESS, r->client);
	if (rq.reserve)
		stun_build_attr(&b, TURN_ATTR_RESERVATION_TOKEN, rq.token_out, sizeof(rq.token_out));
	if ((n = turn_req_send(r, &b)) > 0)
		turn_alloc_cache_response(a, r->m.tid, b.buf, n);
	if (w->statsdb != NULL) {
		((struct relay *)a->io)->statsdb_id = ((uint64_t)w->id << 40) | ++w->statsdb_next;
		statsdb_report(r, a, 0, lifetime);
	}
	log_info("allocation: user %s client %s relay %s%s%s lifetime %us", LOG_ESC(a->username),
		 netaddr_str(r->client, cs), netaddr_str(&relayed, rs), a->relay2.family != 0 ? " and " : "",
		 a->relay2.family != 0 ? netaddr_str(&a->relay2, rs2) : "", lifetime);
}

/* ---- Refresh, CreatePermission, ChannelBind ----------------------------- */

static void handle_refresh(struct req *r)
{
	struct stun_builder b;
	const struct stun_attr *fam;
	uint32_t lifetime;
	size_t n;
	int half;

	if (r->alloc == NULL) {
		turn_req_error(r, 437);
		return;
	}
	fam = stun_msg_find(&r->m, TURN_ATTR_REQUESTED_ADDRESS_FAMILY);
	if (fam != NULL && (fam->len != 4 || (fam->val[0] != r->alloc->relay.family &&
					      (r->alloc->relay2.family == 0 || fam->val[0] != r->alloc->relay2.family)))) {
		turn_req_error(r, 443);
		return;
	}
	lifetime = clamp_lifetime(r->w->srv->cfg, &r->m, 1);
	/* Dual allocation: LIFETIME 0 with REQUESTED-ADDRESS-FAMILY deletes
	 * that family's relayed address only (RFC 8656 §7.3); the other one
	 * keeps the allocation's lifetime. The socket is closed before the
	 * answer leaves, so a client that has the answer finds the port free. */
	half = lifetime == 0 && fam != NULL && worker_relay_close_family(r->alloc, fam->val[0]) == 0;
	turn_req_begin(r, &b, STUN_CLASS_SUCCESS);
	stun_build_u32(&b, TURN_ATTR_LIFETIME, lifetime);
	n = turn_req_send(r, &b);
	if (half) {
		if (n > 0)
			turn_alloc_cache_response(r->alloc, r->m.tid, b.buf, n);
		return;
	}
	if (lifetime == 0) {
		worker_alloc_free(r->w, r->alloc);
		r->alloc = NULL;
		return;
	}
	r->alloc->expires = worker_now() + lifetime;
	worker_alloc_arm(r->w, r->alloc);
	if (n > 0)
		turn_alloc_cache_response(r->alloc, r->m.tid, b.buf, n);
	statsdb_report(r, r->alloc, 1, lifetime);
}

/* Decodes one XOR-PEER-ADDRESS and applies family and policy checks.
 * Returns 0 or the error code to send. */
static int check_peer(struct req *r, const struct stun_attr *a, struct stun_addr *peer)
{
	if (stun_attr_xor_addr(&r->m, a, peer) < 0)
		return 400;
	if (peer->family != r->alloc->relay.family &&
	    (r->alloc->relay2.family == 0 || peer->family != r->alloc->relay2.family))
		return 443;
	if (!turn_policy_permits(r->w->srv->cfg->policy, peer)) {
		char ps[NETADDR_STRLEN];

		if (worker_log_ok(r->w))
			log_info("user %s: peer %s refused by policy", LOG_ESC(r->alloc->username), netaddr_str(peer, ps));
		return 403;
	}
	return 0;
}

static void send_success(struct req *r)
{
	struct stun_builder b;
	size_t n;

	turn_req_begin(r, &b, STUN_CLASS_SUCCESS);
	if ((n = turn_req_send(r, &b)) > 0)
		turn_alloc_cache_response(r->alloc, r->m.tid, b.buf, n);
}

static void handle_create_permission(struct req *r)
{
	const struct config *cfg = r->w->srv->cfg;
	struct stun_addr peers[STUN_MAX_ATTRS];
	size_t i, np = 0;
	uint64_t now = worker_now();
	int code;

	if (r->alloc == NULL) {
		turn_req_error(r, 437);
		return;
	}
	for (i = 0; i < r->m.nattrs; i++) {
		if (r->m.attrs[i].type != TURN_ATTR_XOR_PEER_ADDRESS)
			continue;
		if ((code = check_peer(r, &r->m.attrs[i], &peers[np])) != 0) {
			turn_req_error(r, code);
			return;
		}
		np++;
	}
	if (np == 0) {
		turn_req_error(r, 400);
		return;
	}
	/* All or nothing (§9.2): check capacity before installing any. */
	if (!turn_alloc_perm_fits(r->alloc, peers, np, now)) {
		STAT_INC(r->w->stats.refused[STATS_REFUSE_MAX_PERMS]);
		turn_req_error(r, 508);
		return;
	}
	for (i = 0; i < np; i++) {
		if (turn_alloc_perm_add(r->alloc, &peers[i], now, (uint32_t)cfg->permission_lifetime) < 0) {
			turn_req_error(r, 508);
			return;
		}
	}
	for (i = 0; i < np; i++)
		ebpf_perm_update(r->w, r->alloc, &peers[i]); /* the fast path's expiry times */
	send_success(r);
}

static void handle_channel_bind(struct req *r)
{
	const struct config *cfg = r->w->srv->cfg;
	const struct stun_attr *ch, *pa;
	struct stun_addr peer;
	uint16_t number;
	int code;

	if (r->alloc == NULL) {
		turn_req_error(r, 437);
		return;
	}
	if (tcp_relay_is_tcp(r->alloc)) { /* RFC 6062 §4: no channels on a TCP allocation */
		turn_req_error(r, 400);
		return;
	}
	ch = stun_msg_find(&r->m, TURN_ATTR_CHANNEL_NUMBER);
	pa = stun_msg_find(&r->m, TURN_ATTR_XOR_PEER_ADDRESS);
	if (ch == NULL || pa == NULL || ch->len != 4) {
		log_debug("ChannelBind without CHANNEL-NUMBER or XOR-PEER-ADDRESS");
		turn_req_error(r, 400);
		return;
	}
	number = (uint16_t)((ch->val[0] << 8) | ch->val[1]);
	if (number < TURN_CHANNEL_MIN ||
	    number > (cfg->rfc5766_channels ? TURN_CHANNEL_MAX_RFC5766 : TURN_CHANNEL_MAX)) {
		log_debug("channel number 0x%04x out of range", number);
		turn_req_error(r, 400);
		return;
	}
	if ((code = check_peer(r, pa, &peer)) != 0) {
		turn_req_error(r, code);
		return;
	}
	/* A channel names a port: never one of the server's own (selfaddr.h). */
	if (selfaddr_refuses(&r->w->srv->self, &peer)) {
		char ps[NETADDR_STRLEN];

		STAT_INC(r->w->stats.refused[STATS_REFUSE_OWN_ADDRESS]);
		if (worker_log_ok(r->w))
			log_info("user %s: ChannelBind to own address %s refused", LOG_ESC(r->alloc->username),
				 netaddr_str(&peer, ps));
		turn_req_error(r, 403);
		return;
	}
	switch (turn_alloc_chan_bind(r->alloc, number, &peer, worker_now(), (uint32_t)cfg->channel_lifetime,
				     (uint32_t)cfg->permission_lifetime)) {
	case TURN_CHAN_OK:
		ebpf_channel_update(r->w, r->alloc,
				    (struct turn_chan *)turn_alloc_chan_by_number(r->alloc, number, worker_now()));
		worker_alloc_arm(r->w, r->alloc); /* the binding's end may now come first */
		send_success(r);
		break;
	case TURN_CHAN_CONFLICT:
		log_debug("channel 0x%04x: number or peer bound elsewhere", number);
		turn_req_error(r, 400);
		break;
	case TURN_CHAN_FULL:
		STAT_INC(r->w->stats.refused[STATS_REFUSE_MAX_CHANNELS]);
		turn_req_error(r, 508);
		break;
	default:
		STAT_INC(r->w->stats.refused[STATS_REFUSE_MAX_PERMS]);
		turn_req_error(r, 508);
		break;
	}
}

/* ---- indications and ChannelData --------------------------------------- */

/* Relayed-traffic counters: the worker's totals and the allocation's own. */
static void count_to_peer(struct worker *w, struct turn_alloc *a, size_t len)
{
	STAT_INC(w->stats.packets[STATS_TO_PEER]);
	STAT_ADD(w->stats.bytes[STATS_TO_PEER], len);
	a->packets_to_peer++;
	a->bytes_to_peer += len;
}

static void count_to_client(struct worker *w, struct turn_alloc *a, size_t len)
{
	STAT_INC(w->stats.packets[STATS_TO_CLIENT]);
	STAT_ADD(w->stats.bytes[STATS_TO_CLIENT], len);
	a->packets_to_client++;
	a->bytes_to_client += len;
}

static void handle_send(struct worker *w, struct turn_alloc *a, const struct stun_msg *m)
{
	const struct stun_attr *pa, *data;
	struct stun_addr peer;

	if (a == NULL || tcp_relay_is_tcp(a)) /* RFC 6062: data goes over data connections */
		return;
	pa = stun_msg_find(m, TURN_ATTR_XOR_PEER_ADDRESS);
	data = stun_msg_find(m, TURN_ATTR_DATA);
	if (pa == NULL || data == NULL || stun_attr_xor_addr(m, pa, &peer) < 0)
		return;
	/* No permission, no relay (§11.2); permissions only exist for peers
	 * the policy allowed, so this also enforces the policy for Send. */
	if (!turn_alloc_perm_ok(a, &peer, worker_now()))
		return;
	/* Permissions name IPs only; the port is checked here (selfaddr.h). */
	if (selfaddr_refuses(&w->srv->self, &peer)) {
		STAT_INC(w->stats.refused[STATS_REFUSE_OWN_ADDRESS]);
		return;
	}
	if (!limits_bps_pass(w, a->io, STATS_TO_PEER, data->len))
		return;
	if (worker_relay_send(a, &peer, data->val, data->len) == 0)
		count_to_peer(w, a, data->len);
}

static void handle_channel_data(struct worker *w, struct turn_alloc *a, const uint8_t *buf, size_t len)
{
	const struct turn_chan *c;
	uint16_t number, dlen;

	if (a == NULL || turn_channel_data_parse(buf, len, &number, &dlen) < 0)
		return;
	if ((c = turn_alloc_chan_by_number(a, number, worker_now())) == NULL)
		return;
	/* A binding outlives its peer's permission (600 s against 300 s
	 * unless refreshed): without a live permission nothing is sent
	 * (RFC 8656 §9, §12.4). */
	if (!turn_alloc_perm_ok(a, &c->peer, worker_now()))
		return;
	if (!limits_bps_pass(w, a->io, STATS_TO_PEER, dlen))
		return;
	if (worker_relay_send(a, &c->peer, buf + TURN_CHANNEL_HDR, dlen) == 0)
		count_to_peer(w, a, dlen);
}

/* Largest datagram a client can receive on its transport: a UDP payload
 * over IPv4 (65,535 - 20 - 8) or IPv6 (65,535 - 8), bytes; a stream has no
 * datagram limit, only the 16-bit length fields of the framing. */
static size_t client_max_datagram(const struct relay *rl)
{
	if (rl->o.conn != NULL)
		return SIZE_MAX;
	return rl->o.client.family == STUN_AF_IPV6 ? 65527 : 65507;
}

/* 1 when len payload bytes from peer fit the client's transport as
 * ChannelData (chan) or as a Data indication: the 16-bit length fields and
 * the UDP datagram limit. Else counts the drop and returns 0: a length that
 * wraps would corrupt a TCP stream and never reaches a UDP client. */
static int fits_client(struct worker *w, const struct relay *rl, const struct stun_addr *peer, size_t len,
		       int chan)
{
	size_t body, total;

	if (chan) {
		body = len; /* padding is sent over streams only (§12.5) */
		total = TURN_CHANNEL_HDR + (rl->o.conn != NULL ? (len + 3) & ~(size_t)3 : len);
	} else {
		body = 4 + (peer->family == STUN_AF_IPV6 ? 20 : 8) + 4 + ((len + 3) & ~(size_t)3);
		total = STUN_HEADER_LEN + body;
	}
	if (body <= UINT16_MAX && total <= client_max_datagram(rl))
		return 1;
	STAT_INC(w->stats.refused[STATS_REFUSE_TOO_BIG]);
	return 0;
}

void turn_handle_peer(struct worker *w, struct turn_alloc *a, const struct stun_addr *peer, uint8_t *buf,
		      size_t len)
{
	struct relay *rl = a->io;
	const struct turn_chan *c;
	uint64_t now = worker_now();
	uint8_t tid[STUN_TID_LEN];
	struct stun_builder b;
	size_t hdr, i, n;
	uint8_t *start;

	/* Permission first, channel or not (RFC 8656 §9, §12.5): a channel
	 * binding can outlive the permission of its peer. */
	if (!turn_alloc_perm_ok(a, peer, now))
		return;
	if ((c = turn_alloc_chan_by_peer(a, peer, now)) != NULL) {
		if (!fits_client(w, rl, peer, len, 1) || !limits_bps_pass(w, rl, STATS_TO_CLIENT, len))
			return;
		/* ChannelData: 4-byte header in the headroom, no copy. Padding
		 * is optional over UDP, so none is sent there; over TCP it is
		 * mandatory (§12.5) and goes in the tail room. */
		start = buf - TURN_CHANNEL_HDR;
		start[0] = (uint8_t)(c->number >> 8);
		start[1] = (uint8_t)c->number;
		start[2] = (uint8_t)(len >> 8);
		start[3] = (uint8_t)len;
		n = len + TURN_CHANNEL_HDR;
		if (rl->o.conn != NULL)
			while (n & 3)
				start[n++] = 0;
		if (worker_send_client(&rl->o, start, n, 1) == 0)
			count_to_client(w, a, len);
		return;
	}
	if (!fits_client(w, rl, peer, len, 0) || !limits_bps_pass(w, rl, STATS_TO_CLIENT, len))
		return;
	/* Data indication: header, XOR-PEER-ADDRESS and the DATA attribute
	 * header go into the headroom, in front of the payload. */
	for (i = 0; i < STUN_TID_LEN; i += 4) {
		uint32_t x = w->rng = w->rng * 1664525u + 1013904223u;

		memcpy(tid + i, &x, 4);
	}
	hdr = STUN_HEADER_LEN + 4 + (peer->family == STUN_AF_IPV6 ? 20 : 8) + 4;
	start = buf - hdr;
	stun_build_init(&b, start, hdr + len + 4, TURN_METHOD_DATA, STUN_CLASS_INDICATION, tid);
	stun_build_xor_addr(&b, TURN_ATTR_XOR_PEER_ADDRESS, peer);
	/* DATA: value already in place; write its header and padding only. */
	start[b.len] = (uint8_t)(TURN_ATTR_DATA >> 8);
	start[b.len + 1] = (uint8_t)TURN_ATTR_DATA;
	start[b.len + 2] = (uint8_t)(len >> 8);
	start[b.len + 3] = (uint8_t)len;
	b.len += 4 + len;
	while (b.len & 3)
		start[b.len++] = 0;
	if (b.err)
		return;
	start[2] = (uint8_t)((b.len - STUN_HEADER_LEN) >> 8);
	start[3] = (uint8_t)(b.len - STUN_HEADER_LEN);
	if (worker_send_client(&rl->o, start, b.len, 1) == 0)
		count_to_client(w, a, len);
}

/* ---- dispatch ---------------------------------------------------------- */

/* Continues a TURN request once it is authenticated. */
void turn_req_authenticated(struct req *r)
{
	/* The same 5-tuple keeps the same user (RFC 8656 §5). */
	if (r->alloc != NULL && strcmp(r->alloc->username, r->username) != 0) {
		turn_req_error(r, 441);
		return;
	}
	if (r->m.nunknown > 0) {
		turn_req_unknown(r);
		return;
	}
	if (r->m.duplicate) {
		log_debug("duplicate attribute");
		turn_req_error(r, 400);
		return;
	}
	switch (r->m.method) {
	case TURN_METHOD_ALLOCATE:
		handle_allocate(r);
		break;
	case TURN_METHOD_REFRESH:
		handle_refresh(r);
		break;
	case TURN_METHOD_CREATE_PERMISSION:
		handle_create_permission(r);
		break;
	case TURN_METHOD_CHANNEL_BIND:
		handle_channel_bind(r);
		break;
	case TURN_METHOD_CONNECT:
		tcp_relay_connect(r);
		break;
	case TURN_METHOD_CONNECTION_BIND:
		tcp_relay_connection_bind(r);
		break;
	}
}

static void handle_request(struct req *r)
{
	STAT_INC(r->w->stats.requests);
	if (r->m.method == STUN_METHOD_BINDING) {
		handle_binding(r);
		return;
	}
	switch (r->m.method) {
	case TURN_METHOD_ALLOCATE:
	case TURN_METHOD_REFRESH:
	case TURN_METHOD_CREATE_PERMISSION:
	case TURN_METHOD_CHANNEL_BIND:
	case TURN_METHOD_CONNECT:
	case TURN_METHOD_CONNECTION_BIND:
		break;
	default:
		turn_req_error(r, 400);
		return;
	}
	/* A retransmission gets the very same answer (RFC 8489 §6.3.1). */
	if (r->alloc != NULL && r->alloc->last_resp != NULL &&
	    memcmp(r->alloc->last_tid, r->m.tid, STUN_TID_LEN) == 0) {
		worker_send_client(r->o, r->alloc->last_resp, r->alloc->last_resp_len, 0);
		return;
	}
	turn_auth_request(r);
}

struct kill_ctx {
	struct worker *w;
	const char *user;
	size_t n;
};

static int rest_id_is(const char *id, size_t idlen, const char *user)
{
	return idlen == strlen(user) && memcmp(id, user, idlen) == 0;
}

/* Hex digits of a signaling peer id (SIGNAL_PEER_ID_LEN, signal/signal_room.h,
 * which this file does not include: it pulls in jansson). */
#define KILL_PEER_ID_LEN 16

/* 1 when id is "<user>.<peer id>" (KILL_PEER_ID_LEN hex digits): the REST
 * user id the signaling endpoint gives a page that joined with a token for
 * user (docs/signaling.md), so "session kill alice" ends alice's relays. */
static int signaling_id_of(const char *id, size_t idlen, const char *user)
{
	size_t ulen = strlen(user), i;

	if (idlen != ulen + 1 + KILL_PEER_ID_LEN || memcmp(id, user, ulen) != 0 || id[ulen] != '.')
		return 0;
	for (i = ulen + 1; i < idlen; i++)
		if (!isxdigit((unsigned char)id[i]))
			return 0;
	return 1;
}

static void kill_one(struct turn_alloc *a, void *arg)
{
	struct kill_ctx *k = arg;
	const struct config *cfg = k->w->srv->cfg;
	const char *id;
	size_t idlen;
	uint64_t expiry;

	if (strcmp(a->username, k->user) != 0) {
		if (!cfg->use_auth_secret ||
		    auth_rest_parse(a->username, cfg->rest_api_separator, &expiry, &id, &idlen) < 0 ||
		    !(rest_id_is(id, idlen, k->user) || signaling_id_of(id, idlen, k->user)))
			return;
	}
	worker_alloc_free(k->w, a);
	k->n++;
}

/* Ends every allocation of user in w (a kill message from the Redis
 * channel): plain user names and REST API names with that user id. */
void turn_kill_user(struct worker *w, const char *user)
{
	struct kill_ctx k = { w, user, 0 };

	turn_table_foreach(&w->allocs, kill_one, &k);
	if (k.n > 0)
		log_info("session kill: user '%s': %zu allocation(s) ended", LOG_ESC(user), k.n);
}

/* Fills the header fields of m from a message whose attributes did not
 * parse, so a 400 can still be sent. Returns the message class. */
static int header_of(struct stun_msg *m, const uint8_t *buf)
{
	uint16_t type = (uint16_t)((buf[0] << 8) | buf[1]);

	memset(m, 0, sizeof(*m));
	m->cls = (uint8_t)(((type >> 4) & 1) | ((type >> 7) & 2));
	m->method = (uint16_t)((type & 0xf) | ((type >> 1) & 0x70) | ((type >> 2) & 0xf80));
	memcpy(m->tid, buf + 8, STUN_TID_LEN);
	return m->cls;
}

void turn_handle_client(struct worker *w, const struct origin *o, const uint8_t *buf, size_t len)
{
	struct req r;
	const char *why = NULL;
	int rc;

	if (turn_is_channel_data(buf, len)) {
		handle_channel_data(w, turn_table_find(&w->allocs, &o->client, &o->local, transport_of(o)), buf,
				    len);
		return;
	}
	if (!stun_msg_is_stun(buf, len))
		return;
	r.w = w;
	r.o = o;
	r.client = &o->client;
	r.local = &o->local;
	r.keylen = 0;
	r.sha256 = 0;
	r.username[0] = '\0';
	rc = stun_msg_parse(&r.m, buf, len, &why);
	if (rc != STUN_PARSE_OK) {
		if (log_level >= LOG_LVL_DEBUG) {
			char cs[NETADDR_STRLEN];

			log_debug("bad STUN message from %s: %s", netaddr_str(r.client, cs), why ? why : "?");
		}
		/* A malformed request with a usable header gets 400; a bad
		 * FINGERPRINT means it is not for us: silence (§7.3). */
		if (rc == STUN_PARSE_MALFORMED && header_of(&r.m, buf) == STUN_CLASS_REQUEST)
			turn_req_error(&r, 400);
		return;
	}
	if (w->srv->cfg->no_stun && r.m.method == STUN_METHOD_BINDING)
		return;
	r.alloc = turn_table_find(&w->allocs, r.client, r.local, transport_of(o));
	switch (r.m.cls) {
	case STUN_CLASS_REQUEST:
		handle_request(&r);
		break;
	case STUN_CLASS_INDICATION:
		if (r.m.method == TURN_METHOD_SEND)
			handle_send(w, r.alloc, &r.m);
		break;
	default:
		break; /* responses are not for a server */
	}
}
