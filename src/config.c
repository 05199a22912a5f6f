/* config.c -- turnstone's configuration: a libconfig file plus --key=value
 * command-line options, both read through one table of option descriptors.
 *
 * Order: the command line is split into (option, value) pairs first (so -c
 * and unknown options are found up front), then the file is applied, then
 * the pairs, so the command line wins. A list key given on the command line
 * replaces the file's list; peer ranges are the exception and accumulate,
 * since they are rules added to the built-in policy, not a setting to replace.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "turn/turn_alloc.h"

#ifndef CONFIG_DATADIR
#define CONFIG_DATADIR "/usr/local/share"
#endif

#ifdef PACKAGE_VERSION
#define CONFIG_SOFTWARE "turnstone/" PACKAGE_VERSION
#else
#define CONFIG_SOFTWARE "turnstone"
#endif

enum opt_type {
	OPT_INT,        /* int within [lo, hi] */
	OPT_STR,        /* char *; "" unsets it unless check refuses "" */
	OPT_BOOL,       /* int, 0 or 1 */
	OPT_STR_LIST,   /* char *[CONFIG_MAX_LISTEN] with a size_t count */
	OPT_USER_LIST,  /* "name:password" into users[] / n_users */
	OPT_PEER_RANGE, /* added to c->policy: lo = 1 allow list, 0 deny list */
	/* coturn's keys without a turnstone field of their own (issue 12) */
	OPT_ALIAS,      /* another name of the key named by arg */
	OPT_NOEFFECT,   /* accepted with one warning line; lo = 1 when it takes a value */
	OPT_REFUSED,    /* refused; help names turnstone's way to the same end */
};

struct opt {
	const char *name;
	enum opt_type type;
	size_t off;                  /* offsetof(struct config, field) */
	size_t n_off;                /* lists: offsetof the size_t count */
	int lo, hi;                  /* see enum opt_type */
	int (*check)(const char *);  /* strings: 1 when the value is acceptable */
	const char *arg;             /* placeholder in the usage text */
	const char *help;
};

static int check_ip(const char *s);
static int check_external_ip(const char *s);
static int check_nonempty(const char *s);
static int cmd_value(struct config *c, const struct opt *o, const char *v, char *why, size_t wlen);

#define F(field) offsetof(struct config, field)
#define INT(name, field, lo, hi, arg, help) { name, OPT_INT, F(field), 0, lo, hi, NULL, arg, help }
#define BOOL(name, field, help) { name, OPT_BOOL, F(field), 0, 0, 1, NULL, NULL, help }
#define ALIAS(name, target) { name, OPT_ALIAS, 0, 0, 0, 0, NULL, target, "coturn's name of --" target }
#define NOEFFECT(name, takes_value, why) { name, OPT_NOEFFECT, 0, 0, takes_value, 0, NULL, NULL, why }
#define REFUSED(name, alt) { name, OPT_REFUSED, 0, 0, 1, 0, NULL, NULL, alt }

static const struct opt opts[] = {
	{ "listening-ip", OPT_STR_LIST, F(listening_ip), F(n_listening_ip), 0, 0, check_ip, "IP",
	  "address to listen on, repeatable (none: 0.0.0.0 and ::)" },
	INT("listening-port", listening_port, 1, 65535, "PORT", "UDP and TCP port"),
	INT("tls-listening-port", tls_listening_port, 1, 65535, "PORT", "TLS port"),
	{ "relay-ip", OPT_STR_LIST, F(relay_ip), F(n_relay_ip), 0, 0, check_ip, "IP",
	  "address relay sockets bind to, repeatable (none: wildcard)" },
	{ "external-ip", OPT_STR_LIST, F(external_ips), F(n_external_ip), 0, 0, check_external_ip,
	  "PUBLIC[/PRIVATE]", "relay address advertised to clients behind NAT, repeatable (one per relay-ip)" },
	INT("min-port", min_port, 1, 65535, "PORT", "lowest relay port"),
	INT("max-port", max_port, 1, 65535, "PORT", "highest relay port"),
	{ "realm", OPT_STR, F(realm), 0, 0, 0, check_nonempty, "REALM", "authentication realm" },
	{ "user", OPT_USER_LIST, F(users), F(n_users), 0, 0, NULL, "NAME:PASSWORD",
	  "long-term credential, repeatable; PASSWORD may be coturn's 0x<32 hex digits MD5 key>" },
	BOOL("lt-cred-mech", lt_cred_mech, "long-term credentials (implied by 'user')"),
	INT("stale-nonce", stale_nonce, 1, 86400, "SECONDS", "nonce lifetime"),
	INT("max-allocate-lifetime", max_allocate_lifetime, 1, 86400, "SECONDS",
	    "longest allocation lifetime granted"),
	INT("default-allocate-lifetime", default_allocate_lifetime, 1, 86400, "SECONDS",
	    "allocation lifetime when the client asks for none"),
	INT("permission-lifetime", permission_lifetime, 1, 3600, "SECONDS", "permission lifetime"),
	INT("channel-lifetime", channel_lifetime, 1, 3600, "SECONDS", "channel binding lifetime"),
	/* limits against abuse (docs/limits.md) */
	INT("user-quota", user_quota, 0, 1000000, "N", "concurrent allocations per username, 0: no limit (486)"),
	INT("total-quota", total_quota, 0, 10000000, "N", "concurrent allocations on the server, 0: no limit (486)"),
	INT("max-bps", max_bps, 0, 2000000000, "BYTES",
	    "bytes per second per allocation and direction, 0: no limit (excess dropped)"),
	INT("bps-capacity", bps_capacity, 0, 2000000000, "BYTES",
	    "bytes per second of the whole server per direction, 0: no limit (excess dropped)"),
	INT("max-permissions", max_permissions, 1, TURN_MAX_PERMS, "N", "permissions per allocation (more: 508)"),
	INT("max-channels", max_channels, 1, TURN_MAX_CHANNELS, "N", "channels per allocation (more: 508)"),
	INT("allocate-rate-per-ip", allocate_rate_per_ip, 0, 65535, "N",
	    "authenticated Allocates per second per source IP or IPv6 /64, 0: no limit (excess dropped)"),
	INT("unauthorized-rate-per-ip", unauthorized_rate_per_ip, 0, 65535, "N",
	    "401 answers per second per source IP or IPv6 /64, 0: no limit (excess dropped)"),
	INT("reservation-lifetime", reservation_lifetime, 1, 300, "SECONDS",
	    "how long an EVEN-PORT reservation is held"),
	{ "denied-peer-ip", OPT_PEER_RANGE, 0, 0, 0, 0, NULL, "RANGE",
	  "refuse peers in ADDR, ADDR/PREFIX or ADDR1-ADDR2, repeatable" },
	{ "allowed-peer-ip", OPT_PEER_RANGE, 0, 0, 1, 0, NULL, "RANGE",
	  "permit peers in RANGE even if denied, repeatable" },
	BOOL("allow-loopback-peers", allow_loopback_peers, "permit 127.0.0.0/8 and ::1 peers"),
	BOOL("rfc5766-channels", rfc5766_channels,
	     "also bind channel numbers 0x5000-0x7FFF (RFC 5766 clients such as turnutils_uclient)"),
	BOOL("no-udp", no_udp, "do not listen on UDP"),
	BOOL("no-tcp", no_tcp, "do not listen on TCP"),
	BOOL("no-tls", no_tls, "do not listen on TLS"),
	BOOL("no-stun", no_stun, "refuse plain STUN Binding requests"),
	INT("relay-threads", relay_threads, 1, 1024, "N", "worker threads (default: online CPUs)"),
	{ "cert", OPT_STR, F(cert), 0, 0, 0, NULL, "FILE", "TLS certificate chain (PEM)" },
	{ "pkey", OPT_STR, F(pkey), 0, 0, 0, NULL, "FILE", "TLS private key (PEM)" },
	{ "ca-file", OPT_STR, F(ca_file), 0, 0, 0, NULL, "FILE", "CA certificates sent with the chain (PEM)" },
	{ "cipher-list", OPT_STR, F(cipher_list), 0, 0, 0, check_nonempty, "LIST",
	  "OpenSSL cipher list for TLS 1.2" },
	BOOL("no-tlsv1", no_tlsv1, "refuse TLS 1.0 (on by default)"),
	BOOL("no-tlsv1_1", no_tlsv1_1, "refuse TLS 1.1 (on by default)"),
	INT("max-connections", max_connections, 1, 1000000, "N", "concurrent TCP/TLS client connections"),
	INT("idle-timeout", idle_timeout, 1, 86400, "SECONDS", "close connections idle without an allocation"),
	INT("stream-output-limit", stream_output_limit, 4096, 64 << 20, "BYTES",
	    "output queued per connection before relayed data is dropped"),
	/* TCP allocations (RFC 6062, issue 12) */
	BOOL("tcp-relay", tcp_relay, "accept TCP allocations (RFC 6062: Connect, ConnectionBind)"),
	INT("tcp-relay-max-pending", tcp_relay_max_pending, 1, 1024, "N",
	    "peer connections per TCP allocation not yet bound to a client connection"),
	INT("tcp-relay-max-pending-total", tcp_relay_max_pending_total, 1, 1000000, "N",
	    "peer connections not yet bound, whole server"),
	INT("tcp-relay-connect-timeout", tcp_relay_connect_timeout, 30, 300, "SECONDS",
	    "how long a Connect to a peer may take before 447"),
	/* in-kernel fast path for UDP channels (issue 14, docs/ebpf.md) */
	BOOL("ebpf-offload", ebpf_offload, "relay bound UDP channels (IPv4, both directions) in a tc program (needs CAP_BPF)"),
	{ "ebpf-interface", OPT_STR_LIST, F(ebpf_interface), F(n_ebpf_interface), 0, 0, check_nonempty, "IFNAME",
	  "interface the tc program is attached to, repeatable (ebpf-offload needs one)" },
	{ "redis-userdb", OPT_STR, F(redis_userdb), 0, 0, 0, NULL, "CONNINFO",
	  "Redis user database: \"ip=A port=P dbname=N password=S\" or redis://..." },
	BOOL("use-auth-secret", use_auth_secret, "accept TURN REST API time-limited credentials"),
	{ "static-auth-secret", OPT_STR_LIST, F(static_auth_secret), F(n_static_auth_secret), 0, 0,
	  check_nonempty, "SECRET", "REST API shared secret, repeatable" },
	{ "rest-api-separator", OPT_STR, F(rest_api_separator), 0, 0, 0, check_nonempty, "C",
	  "separator between expiry time and user id" },
	INT("auth-cache-ttl", auth_cache_ttl, 0, 60, "SECONDS", "how long a worker caches a Redis key"),
	/* admin HTTP listener and drain (issue 11) */
	BOOL("prometheus", prometheus, "serve /metrics, /healthz, /ready, /sessions and /drain over HTTP"),
	INT("prometheus-port", prometheus_port, 1, 65535, "PORT", "admin HTTP port"),
	{ "prometheus-ip", OPT_STR, F(prometheus_ip), 0, 0, 0, check_ip, "IP",
	  "admin HTTP address (keep it on loopback or a private network)" },
	INT("drain-timeout", drain_timeout, 0, 7 * 86400, "SECONDS",
	    "after SIGUSR1, exit at the latest this long after draining began (0: no limit)"),
	BOOL("no-signaling", no_signaling, "do not serve the WebSocket signaling endpoint and demo page"),
	INT("signaling-port", signaling_port, 1, 65535, "PORT",
	    "HTTP/WebSocket signaling port; setting it turns signaling on (8080 with just 'signaling')"),
	BOOL("signaling-tls", signaling_tls, "serve https:// and wss:// with cert and pkey"),
	{ "signaling-origin", OPT_STR_LIST, F(signaling_origin), F(n_signaling_origin), 0, 0, check_nonempty,
	  "ORIGIN", "Origin allowed to open the WebSocket, repeatable (none: any)" },
	INT("signaling-credential-ttl", signaling_credential_ttl, 10, 7 * 86400, "SECONDS",
	    "lifetime of the TURN credentials the signaling endpoint hands out"),
	INT("signaling-max-message", signaling_max_message, 256, 16 << 20, "BYTES",
	    "largest signaling message accepted"),
	INT("signaling-room-size", signaling_room_size, 2, 1000, "N", "peers per room"),
	INT("signaling-rate", signaling_rate, 1, 100000, "N", "messages per second one client may send"),
	INT("signaling-idle-timeout", signaling_idle_timeout, 5, 86400, "SECONDS",
	    "close a signaling connection silent this long (pings are sent meanwhile)"),
	{ "signaling-root", OPT_STR, F(signaling_root), 0, 0, 0, check_nonempty, "DIR",
	  "directory of the demo page served at /" },
	/* signaling: off unless asked for; who gets TURN credentials; limits (issue 13) */
	BOOL("signaling", signaling, "serve the WebSocket signaling endpoint (implied by signaling-port)"),
	{ "signaling-auth-secret", OPT_STR, F(signaling_auth_secret), 0, 0, 0, check_nonempty, "SECRET",
	  "require join tokens signed with this secret (HMAC-SHA256) for rooms and TURN credentials" },
	BOOL("signaling-open-credentials", signaling_open_credentials,
	     "hand TURN credentials to any signaling client without a token (local demo only)"),
	INT("signaling-max-conns-per-ip", signaling_max_conns_per_ip, 1, 1000000, "N",
	    "signaling connections per IPv4 address or IPv6 /64"),
	INT("signaling-max-rooms", signaling_max_rooms, 1, 10000000, "N", "signaling rooms at once"),
	INT("signaling-output-limit", signaling_output_limit, 65536, 64 << 20, "BYTES",
	    "output queued to one signaling client before it is disconnected"),
	INT("signaling-max-json-depth", signaling_max_json_depth, 2, 1000, "N",
	    "nesting of arrays and objects allowed in a signaling message"),
	/* signaling rooms across a fleet over Redis pub/sub (issue 13) */
	{ "signaling-redis", OPT_STR, F(signaling_redis), 0, 0, 0, check_nonempty, "CONNINFO",
	  "Redis shared by a fleet's signaling rooms (like redis-userdb; default: redis-userdb; \"off\": local)" },
	INT("signaling-redis-ttl", signaling_redis_ttl, 3, 3600, "SECONDS",
	    "a fleet server whose liveness key is this old is dead (refreshed every third of it)"),
	/* socket.io compatibility (issue 13) */
	BOOL("signaling-socketio", signaling_socketio,
	     "serve socket.io clients (Engine.IO 4, Socket.IO 5) at /socket.io/ on the signaling port"),
	{ "log-file", OPT_STR, F(log_file), 0, 0, 0, NULL, "FILE", "log here instead of stderr" },
	BOOL("verbose", verbose, "debug logging"),
	{ "pidfile", OPT_STR, F(pidfile), 0, 0, 0, NULL, "FILE", "write the process id here" },
	{ "software", OPT_STR, F(software), 0, 0, 0, NULL, "TEXT",
	  "SOFTWARE attribute (\"\" omits it)" },
	/* The process (issue 11) */
	{ "proc-user", OPT_STR, F(proc_user), 0, 0, 0, check_nonempty, "USER",
	  "drop root privileges to this user once the ports are bound" },
	{ "proc-group", OPT_STR, F(proc_group), 0, 0, 0, check_nonempty, "GROUP",
	  "group to drop to (default: proc-user's login group)" },
	BOOL("syslog", syslog, "log to syslog (facility daemon) instead of log-file or stderr"),
	/* coturn's turnserver.conf read unchanged (issue 12, docs/migrating-from-coturn.md):
	 * every key of coturn 4.6 is implemented, an alias, accepted without
	 * effect (one warning line) or refused with turnstone's way to do it. */
	BOOL("fingerprint", fingerprint, "add FINGERPRINT to every response (default: when the request has one)"),
	BOOL("no-software-attribute", no_software_attribute, "send no SOFTWARE attribute"),
	BOOL("no-multicast-peers", no_multicast_peers, "refuse multicast peers (always the case; coturn's key)"),
	BOOL("no-udp-relay", no_udp_relay, "refuse UDP relays (442)"),
	BOOL("no-tcp-relay", no_tcp_relay, "refuse RFC 6062 TCP relays (442), whatever tcp-relay says"),
	BOOL("no-tlsv1_2", no_tlsv1_2, "refuse TLS 1.2: TLS 1.3 only"),
	{ "redis-statsdb", OPT_STR, F(redis_statsdb), 0, 0, 0, NULL, "CONNINFO",
	  "Redis for coturn's allocation status keys and traffic messages (as redis-userdb)" },
	ALIAS("CA-file", "ca-file"),
	ALIAS("Verbose", "verbose"),
	ALIAS("prod", "no-software-attribute"),
	ALIAS("prometheus-address", "prometheus-ip"),
	NOEFFECT("listening-device", 1, "addresses are bound by IP: listening-ip"),
	NOEFFECT("relay-device", 1, "relay sockets are bound by IP: relay-ip"),
	NOEFFECT("alt-listening-port", 1, "no RFC 5780 NAT behaviour discovery, so no alternate port"),
	NOEFFECT("alt-tls-listening-port", 1, "no RFC 5780 NAT behaviour discovery, so no alternate port"),
	NOEFFECT("udp-self-balance", 0, "SO_REUSEPORT spreads UDP clients over relay-threads already"),
	NOEFFECT("prometheus-username-labels", 0, "metric labels stay bounded; per-user data is at /sessions"),
	NOEFFECT("no-auth-pings", 0, "the Redis client checks its connection by itself"),
	NOEFFECT("no-dynamic-ip-list", 0, "peer ranges come from the configuration only"),
	NOEFFECT("no-dynamic-realms", 0, "one realm, from the configuration"),
	NOEFFECT("secret-ts-exp-time", 1, "a REST credential's expiry is the time in its user name"),
	NOEFFECT("server-name", 1, "coturn uses it for OAuth only, which turnstone does not implement"),
	NOEFFECT("check-origin-consistency", 0, "the ORIGIN attribute is ignored"),
	NOEFFECT("no-dtls", 0, "turnstone has no DTLS listener"),
	NOEFFECT("max-allocate-timeout", 1, "idle-timeout closes TCP/TLS connections that do not allocate"),
	NOEFFECT("no-stdout-log", 0, "logs go to exactly one place: log-file, syslog or stderr"),
	NOEFFECT("simple-log", 0, "log-file is one file, reopened on SIGHUP for logrotate"),
	NOEFFECT("new-log-timestamp", 0, "the log's timestamp format is fixed"),
	NOEFFECT("new-log-timestamp-format", 1, "the log's timestamp format is fixed"),
	NOEFFECT("syslog-facility", 1, "syslog uses facility daemon"),
	NOEFFECT("dh-file", 1, "key exchange is ECDHE (OpenSSL 3 defaults), no DH parameters"),
	NOEFFECT("dh566", 0, "key exchange is ECDHE (OpenSSL 3 defaults), no DH parameters"),
	NOEFFECT("dh1066", 0, "key exchange is ECDHE (OpenSSL 3 defaults), no DH parameters"),
	NOEFFECT("ec-curve-name", 1, "OpenSSL 3 negotiates the curve (X25519, P-256...)"),
	NOEFFECT("mobility", 0, "no MOBILITY-TICKET (RFC 8016): a moving client allocates anew"),
	NOEFFECT("no-cli", 0, "there is no telnet CLI: turnstone-admin talks to Redis and the admin listener"),
	NOEFFECT("cli-ip", 1, "there is no telnet CLI: use turnstone-admin"),
	NOEFFECT("cli-port", 1, "there is no telnet CLI: use turnstone-admin"),
	NOEFFECT("cli-password", 1, "there is no telnet CLI: use turnstone-admin"),
	NOEFFECT("cli-max-output-sessions", 1, "there is no telnet CLI: use turnstone-admin"),
	NOEFFECT("web-admin", 0, "no web admin page: prometheus serves /metrics and /sessions"),
	NOEFFECT("web-admin-ip", 1, "no web admin page: prometheus-ip"),
	NOEFFECT("web-admin-port", 1, "no web admin page: prometheus-port"),
	NOEFFECT("web-admin-listen-on-workers", 0, "no web admin page"),
	NOEFFECT("acme-redirect", 1, "TURN ports answer no HTTP; serve ACME challenges elsewhere"),
	NOEFFECT("server-relay", 0, "no server-to-server relaying mode"),
	NOEFFECT("ne", 1, "no network engine choice: one event loop per relay thread"),
	NOEFFECT("no-sslv2", 0, "SSLv2 is never offered"),
	NOEFFECT("no-sslv3", 0, "SSLv3 is never offered"),
	NOEFFECT("keep-address-family", 0,
		 "the relay family is the one asked for (REQUESTED-ADDRESS-FAMILY), IPv4 by default"),
	NOEFFECT("allocation-default-address-family", 1,
		 "the relay family is the one asked for (REQUESTED-ADDRESS-FAMILY), IPv4 by default"),
	NOEFFECT("log-binding", 0, "Binding requests are logged with verbose"),
	NOEFFECT("no-rfc5780", 0, "RFC 5780 is never on"),
	NOEFFECT("no-stun-backward-compatibility", 0, "RFC 3489 (classic STUN) is never answered"),
	NOEFFECT("response-origin-only-with-rfc5780", 0, "RESPONSE-ORIGIN is never sent"),
	REFUSED("tcp-proxy-port", "no PROXY protocol listener: run the load balancer in TCP pass-through "
		"mode to listening-port / tls-listening-port"),
	REFUSED("aux-server", "one port per server: add the address to listening-ip, or run a second "
		"turnstone with its own listening-port"),
	REFUSED("userdb", "no SQLite user database: put users in Redis (redis-userdb, turnstone-admin user "
		"add) or in the file (user)"),
	REFUSED("db", "no SQLite user database: put users in Redis (redis-userdb, turnstone-admin user add) "
		"or in the file (user)"),
	REFUSED("psql-userdb", "no PostgreSQL user database: put users in Redis (redis-userdb, "
		"turnstone-admin user add) or in the file (user)"),
	REFUSED("sql-userdb", "no PostgreSQL user database: put users in Redis (redis-userdb, "
		"turnstone-admin user add) or in the file (user)"),
	REFUSED("mysql-userdb", "no MySQL user database: put users in Redis (redis-userdb, "
		"turnstone-admin user add) or in the file (user)"),
	REFUSED("mongo-userdb", "no MongoDB user database: put users in Redis (redis-userdb, "
		"turnstone-admin user add) or in the file (user)"),
	REFUSED("secret-key-file", "no encrypted passwords: keep MD5 keys (user=name:0x<hex>) in the "
		"file or in Redis"),
	REFUSED("no-auth", "turnstone never runs an open relay: set user, redis-userdb or use-auth-secret "
		"with static-auth-secret"),
	REFUSED("oauth", "no OAuth (RFC 7635): use TURN REST API credentials (use-auth-secret, "
		"static-auth-secret)"),
	REFUSED("daemon", "turnstone stays in the foreground: run it under systemd (turnstone.service) "
		"with pidfile and log-file or syslog"),
	REFUSED("alternate-server", "no ALTERNATE-SERVER redirects (300): spread clients with DNS or "
		"several iceServers URLs"),
	REFUSED("tls-alternate-server", "no ALTERNATE-SERVER redirects (300): spread clients with DNS or "
		"several iceServers URLs"),
	REFUSED("stun-only", "TURN cannot be switched off: run coturn's stun-only role with no-tcp and "
		"no-tls, and give no client credentials"),
	REFUSED("secure-stun", "Binding is never authenticated: no-stun refuses plain Binding requests "
		"altogether"),
	REFUSED("pkey-pwd", "the private key must not be encrypted: openssl pkey -in KEY -out KEY "
		"(readable by root only)"),
};

#undef F
#undef INT
#undef BOOL
#undef ALIAS
#undef NOEFFECT
#undef REFUSED

#define N_OPTS (sizeof(opts) / sizeof(opts[0]))

/* Per-call state of config_load. */
struct load {
	struct config *c;
	unsigned char replaced[N_OPTS];  /* list already emptied by the command line */
};

/* One option from the command line; value is NULL for a bare boolean. */
struct cmd_opt {
	const struct opt *o;
	const char *value;
};

/* ---- value checks and setters (shared by file and command line) --------- */

static int check_ip(const char *s)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static int check_external_ip(const char *s)
{
	char buf[128];
	char *slash;

	if (strlen(s) >= sizeof(buf))
		return 0;
	strcpy(buf, s);
	if ((slash = strchr(buf, '/')) == NULL)
		return check_ip(buf);
	*slash = '\0';
	return check_ip(buf) && check_ip(slash + 1);
}

static int check_nonempty(const char *s)
{
	return s[0] != '\0';
}

static void *field(struct config *c, const struct opt *o)
{
	return (char *)c + o->off;
}

static size_t *count(struct config *c, const struct opt *o)
{
	return (size_t *)(void *)((char *)c + o->n_off);
}

/* The option named name[0..len); an alias resolves to its target. */
static const struct opt *opt_find(const char *name, size_t len)
{
	for (size_t i = 0; i < N_OPTS; i++) {
		if (strlen(opts[i].name) != len || strncmp(opts[i].name, name, len) != 0)
			continue;
		if (opts[i].type == OPT_ALIAS)
			return opt_find(opts[i].arg, strlen(opts[i].arg));
		return &opts[i];
	}
	return NULL;
}

/* Appends "WHERE: key 'NAME' accepted without effect ..." to c->warnings,
 * once per key. Returns 0, or -1 out of memory. */
static int note_noeffect(struct config *c, const struct opt *o, const char *where)
{
	char line[512], tag[96];
	size_t old = c->warnings != NULL ? strlen(c->warnings) : 0;
	char *w;

	snprintf(tag, sizeof(tag), "key '%s' ", o->name);
	if (c->warnings != NULL && strstr(c->warnings, tag) != NULL)
		return 0;
	snprintf(line, sizeof(line), "%s: %saccepted without effect in turnstone: %s\n", where, tag, o->help);
	if ((w = realloc(c->warnings, old + strlen(line) + 1)) == NULL)
		return -1;
	memcpy(w + old, line, strlen(line) + 1);
	c->warnings = w;
	return 0;
}

/* coturn keys turnstone has no field for: a warning (0), or a refusal
 * (-1, the reason in why). 1: not such a key, apply it normally. */
static int coturn_only(struct config *c, const struct opt *o, const char *where, char *why, size_t wlen)
{
	if (o->type == OPT_REFUSED) {
		snprintf(why, wlen, "coturn's key, not supported by turnstone: %s", o->help);
		return -1;
	}
	if (o->type != OPT_NOEFFECT)
		return 1;
	if (note_noeffect(c, o, where) < 0) {
		snprintf(why, wlen, "out of memory");
		return -1;
	}
	return 0;
}

enum config_key_class config_key_class(const char *name, const char **note)
{
	const struct opt *o = NULL;

	for (size_t i = 0; i < N_OPTS && o == NULL; i++)
		if (strcmp(opts[i].name, name) == 0)
			o = &opts[i];
	if (note != NULL)
		*note = o != NULL ? o->help : NULL;
	if (o == NULL)
		return CONFIG_KEY_UNKNOWN;
	return o->type == OPT_NOEFFECT ? CONFIG_KEY_NO_EFFECT
	     : o->type == OPT_REFUSED  ? CONFIG_KEY_REFUSED
				       : CONFIG_KEY_IMPLEMENTED;
}

/* Message for an integer that is missing, malformed or out of range. */
static int bad_int(const struct opt *o, char *why, size_t wlen)
{
	snprintf(why, wlen, "must be an integer %d..%d", o->lo, o->hi);
	return -1;
}

static int set_int(struct config *c, const struct opt *o, long long v, char *why, size_t wlen)
{
	if (v < o->lo || v > o->hi)
		return bad_int(o, why, wlen);
	*(int *)field(c, o) = (int)v;
	return 0;
}

/* Splits "name:password" into a new users[] entry. The value is never echoed
 * in a message: it holds a password. */
static int add_user(struct config *c, const char *s, char *why, size_t wlen)
{
	const char *colon = strchr(s, ':');
	struct config_user *u;

	if (colon == NULL || colon == s || colon[1] == '\0') {
		snprintf(why, wlen, "must be \"name:password\" with a non-empty name and password");
		return -1;
	}
	for (size_t i = 0; i < c->n_users; i++) {
		if (strncmp(c->users[i].name, s, (size_t)(colon - s)) == 0 &&
		    c->users[i].name[colon - s] == '\0') {
			snprintf(why, wlen, "duplicate user '%.*s'", (int)(colon - s), s);
			return -1;
		}
	}
	if (c->n_users == CONFIG_MAX_USERS) {
		snprintf(why, wlen, "more than %d users", CONFIG_MAX_USERS);
		return -1;
	}
	u = &c->users[c->n_users];
	u->name = strndup(s, (size_t)(colon - s));
	u->password = strdup(colon + 1);
	if (u->name == NULL || u->password == NULL) {
		free(u->name);
		free(u->password);
		u->name = u->password = NULL;
		snprintf(why, wlen, "out of memory");
		return -1;
	}
	c->n_users++;
	return 0;
}

static int add_string(struct config *c, const struct opt *o, const char *s, char *why, size_t wlen)
{
	char **list = field(c, o);
	size_t *n = count(c, o);

	if (*n == CONFIG_MAX_LISTEN) {
		snprintf(why, wlen, "more than %d addresses", CONFIG_MAX_LISTEN);
		return -1;
	}
	if ((list[*n] = strdup(s)) == NULL) {
		snprintf(why, wlen, "out of memory");
		return -1;
	}
	(*n)++;
	return 0;
}

/* Applies a string value to any non-integer, non-boolean option. */
static int set_str(struct config *c, const struct opt *o, const char *s, char *why, size_t wlen)
{
	if (o->check != NULL && !o->check(s)) {
		if (o->check == check_nonempty)
			snprintf(why, wlen, "must not be empty");
		else if (o->check == check_ip)
			snprintf(why, wlen, "'%s' is not an IP address", s);
		else
			snprintf(why, wlen, "'%s' must be an IP address or PUBLIC/PRIVATE IP addresses", s);
		return -1;
	}
	switch (o->type) {
	case OPT_STR: {
		char **dst = field(c, o);
		char *copy = NULL;
		if (s[0] != '\0' && (copy = strdup(s)) == NULL) {
			snprintf(why, wlen, "out of memory");
			return -1;
		}
		free(*dst);
		*dst = copy;
		return 0;
	}
	case OPT_STR_LIST:
		return add_string(c, o, s, why, wlen);
	case OPT_USER_LIST:
		return add_user(c, s, why, wlen);
	case OPT_PEER_RANGE:
		if (turn_policy_add(c->policy, s, o->lo) < 0) {
			snprintf(why, wlen, "'%s' is not ADDR, ADDR/PREFIX or ADDR1-ADDR2 (or out of memory)", s);
			return -1;
		}
		return 0;
	default:
		snprintf(why, wlen, "internal error: not a string option");
		return -1;
	}
}

/* Empties a list option so the command line's values replace the file's. */
static void list_clear(struct config *c, const struct opt *o)
{
	if (o->type == OPT_STR_LIST) {
		char **list = field(c, o);
		for (size_t i = 0; i < *count(c, o); i++) {
			free(list[i]);
			list[i] = NULL;
		}
		*count(c, o) = 0;
	} else if (o->type == OPT_USER_LIST) {
		for (size_t i = 0; i < c->n_users; i++) {
			free(c->users[i].name);
			if (c->users[i].password != NULL)
				explicit_bzero(c->users[i].password, strlen(c->users[i].password));
			free(c->users[i].password);
			c->users[i].name = c->users[i].password = NULL;
		}
		c->n_users = 0;
	}
}

/* ---- the file ---------------------------------------------------------- */

/* Applies one top-level setting, or returns -1 with the reason in why.
 * Errors name the key's line: libconfig gives a list element the line of the
 * token after it, which is off by one when "]" sits on the next line. */
static int file_value(struct config *c, const struct opt *o, const config_setting_t *s, char *why,
		      size_t wlen)
{
	int type = config_setting_type(s);
	char inner[200];

	switch (o->type) {
	case OPT_INT:
		if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64)
			return bad_int(o, why, wlen);
		return set_int(c, o, config_setting_get_int64(s), why, wlen);
	case OPT_BOOL:
		if (type != CONFIG_TYPE_BOOL) {
			snprintf(why, wlen, "must be true or false");
			return -1;
		}
		*(int *)field(c, o) = config_setting_get_bool(s) ? 1 : 0;
		return 0;
	case OPT_STR:
		if (type != CONFIG_TYPE_STRING) {
			snprintf(why, wlen, "must be a string");
			return -1;
		}
		return set_str(c, o, config_setting_get_string(s), why, wlen);
	default:
		break;
	}
	/* Lists: one string, or a list/array of strings. */
	if (type == CONFIG_TYPE_STRING)
		return set_str(c, o, config_setting_get_string(s), why, wlen);
	if (type != CONFIG_TYPE_LIST && type != CONFIG_TYPE_ARRAY) {
		snprintf(why, wlen, "must be a string or a list of strings");
		return -1;
	}
	for (int i = 0; i < config_setting_length(s); i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			snprintf(why, wlen, "item %d: must be a string", i + 1);
			return -1;
		}
		if (set_str(c, o, config_setting_get_string(e), inner, sizeof(inner)) < 0) {
			snprintf(why, wlen, "item %d: %s", i + 1, inner);
			return -1;
		}
	}
	return 0;
}

static int load_libconfig(struct config *c, const char *path, FILE *f, char *err, size_t errlen)
{
	config_t cf;
	config_setting_t *root;
	int rc = 0;

	config_init(&cf);
	if (config_read(&cf, f) != CONFIG_TRUE) {
		const char *file = config_error_file(&cf);
		snprintf(err, errlen, "%s:%d: syntax error: %s", file != NULL ? file : path,
			 config_error_line(&cf), config_error_text(&cf));
		rc = -1;
	}
	root = rc == 0 ? config_root_setting(&cf) : NULL;
	for (int i = 0; root != NULL && i < config_setting_length(root); i++) {
		const config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
		const char *name = config_setting_name(s);
		const char *file = config_setting_source_file(s);
		const struct opt *o = opt_find(name, strlen(name));
		unsigned line = config_setting_source_line(s);
		char why[400], where[300];
		int special;

		if (file == NULL)
			file = path;
		if (o == NULL) {
			snprintf(err, errlen, "%s:%u: unknown key '%s' (neither turnstone's nor coturn's)", file,
				 line, name);
			rc = -1;
			break;
		}
		snprintf(where, sizeof(where), "%s:%u", file, line);
		if ((special = coturn_only(c, o, where, why, sizeof(why))) <= 0) {
			if (special == 0)
				continue;
			snprintf(err, errlen, "%s:%u: key '%s': %s", file, line, name, why);
			rc = -1;
			break;
		}
		if (file_value(c, o, s, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "%s:%u: key '%s': %s", file, line, name, why);
			rc = -1;
			break;
		}
	}
	config_destroy(&cf);
	return rc;
}

/* ---- coturn's format ----------------------------------------------------- */

/* 1 when v (after "key =") opens a libconfig list or array: "[" or "("
 * followed by a string, the end of the line, the closing bracket, or only
 * numbers and commas. coturn's "[2001:db8::1]:3478" and "[1|2|3]" are not. */
static int libconfig_list(const char *v)
{
	v += strspn(v, " \t");
	if (*v != '[' && *v != '(')
		return 0;
	v += 1 + strspn(v + 1, " \t");
	if (*v == '"' || *v == '\0' || *v == ']' || *v == ')')
		return 1;
	return v[strspn(v, "0123456789-+., \t")] == ']' || v[strspn(v, "0123456789-+., \t")] == ')';
}

/* 1 when the file uses a construct only libconfig has: a setting ended by
 * ';' or ',', a group or list, "name:" assignment, or C/C++ comments.
 * coturn's reader takes none of these (it warns about a trailing ';'), and
 * a file with none of them reads the same either way. */
static int looks_libconfig(FILE *f)
{
	char line[4096];
	int yes = 0;

	while (!yes && fgets(line, sizeof(line), f) != NULL) {
		char *s = line, *e;
		size_t n;

		while (*s == ' ' || *s == '\t')
			s++;
		n = strlen(s);
		while (n > 0 && isspace((unsigned char)s[n - 1]))
			s[--n] = '\0';
		if (n == 0 || s[0] == '#')
			continue;
		if (strncmp(s, "//", 2) == 0 || strncmp(s, "/*", 2) == 0 || s[n - 1] == ';' ||
		    s[n - 1] == ',' || strpbrk(s, "{}") != NULL || s[0] == ']' || s[0] == ')')
			yes = 1;
		for (e = s; isalnum((unsigned char)*e) || *e == '-' || *e == '_'; e++)
			;
		while (*e == ' ' || *e == '\t')
			e++;
		if (*e == ':')
			yes = 1;
		if ((*e == '=' || *e == ':') && libconfig_list(e + 1))
			yes = 1;
	}
	rewind(f);
	return yes;
}

/* coturn's boolean: empty (a bare key) is true; then 0/n/f false, y/t/1-9
 * true, on/off; anything else is an error. */
static int coturn_bool(const char *v, int *out)
{
	if (v[0] == '\0' || strchr("yYtT123456789", v[0]) != NULL)
		return *out = 1, 0;
	if (strchr("0nNfF", v[0]) != NULL)
		return *out = 0, 0;
	if (strcasecmp(v, "on") == 0)
		return *out = 1, 0;
	if (strcasecmp(v, "off") == 0)
		return *out = 0, 0;
	return -1;
}

/* Applies one "key value" of coturn's format. Where coturn gives a value a
 * meaning turnstone spells otherwise, it is translated here. */
static int coturn_value(struct config *c, const struct opt *o, const char *v, char *why, size_t wlen)
{
	int b;

	if (o->type == OPT_BOOL) {
		if (coturn_bool(v, &b) < 0) {
			snprintf(why, wlen, "must be a boolean: on/off, yes/no, 1/0, true/false (or the bare key)");
			return -1;
		}
		*(int *)field(c, o) = b;
		return 0;
	}
	if (o->type == OPT_INT) {
		/* coturn: relay-threads=0 is "one per CPU" and a bare
		 * stale-nonce its default (600 s): keep turnstone's default. */
		if ((strcmp(o->name, "relay-threads") == 0 && strcmp(v, "0") == 0) ||
		    (strcmp(o->name, "stale-nonce") == 0 && v[0] == '\0'))
			return 0;
		return cmd_value(c, o, v, why, wlen);
	}
	if (strcmp(o->name, "log-file") == 0 && (strcmp(v, "stdout") == 0 || strcmp(v, "-") == 0))
		v = ""; /* coturn's "stdout": turnstone's default, stderr */
	else if (strcmp(o->name, "log-file") == 0 && strcmp(v, "syslog") == 0) {
		c->syslog = 1;
		return 0;
	}
	return set_str(c, o, v, why, wlen);
}

/* Splits a coturn line (blanks trimmed, not a comment) into key and value
 * the way coturn does: the key ends at the first blank or '=', the value
 * starts after the run of blanks and '=' that follows; one pair of double
 * quotes around the value is dropped. */
static void coturn_split(char *s, char **key, char **value)
{
	char *v = s + strcspn(s, " \t=");
	size_t n;

	*key = s;
	if (*v != '\0') {
		*v++ = '\0';
		v += strspn(v, " \t=");
	}
	if (*v == '"') {
		v++;
		n = strlen(v);
		if (n > 0 && v[n - 1] == '"')
			v[n - 1] = '\0';
	}
	*value = v;
}

static int load_coturn(struct config *c, const char *path, FILE *f, char *err, size_t errlen)
{
	char line[4096], why[400], where[300];
	unsigned lineno = 0;

	while (fgets(line, sizeof(line), f) != NULL) {
		char *s = line, *key, *value;
		const struct opt *o;
		size_t n = strlen(line);
		int special;

		lineno++;
		if (n == sizeof(line) - 1 && line[n - 1] != '\n') {
			snprintf(err, errlen, "%s:%u: line longer than %zu bytes", path, lineno, sizeof(line) - 2);
			return -1;
		}
		while (*s == ' ' || *s == '\t')
			s++;
		n = strlen(s);
		while (n > 0 && isspace((unsigned char)s[n - 1]))
			s[--n] = '\0';
		if (n == 0 || s[0] == '#')
			continue;
		coturn_split(s, &key, &value);
		if ((o = opt_find(key, strlen(key))) == NULL) {
			snprintf(err, errlen, "%s:%u: unknown key '%s' (neither turnstone's nor coturn's)", path,
				 lineno, key);
			return -1;
		}
		snprintf(where, sizeof(where), "%s:%u", path, lineno);
		if ((special = coturn_only(c, o, where, why, sizeof(why))) == 0)
			continue;
		if (special < 0 || coturn_value(c, o, value, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "%s:%u: key '%s': %s", path, lineno, key, why);
			return -1;
		}
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Reads path in libconfig's syntax or coturn's, told apart by
 * looks_libconfig. */
static int load_file(struct config *c, const char *path, char *err, size_t errlen)
{
	FILE *f;
	int rc;

	/* Opened here rather than by config_read_file so errno is reliable. */
	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	c->coturn_format = !looks_libconfig(f);
	rc = c->coturn_format ? load_coturn(c, path, f, err, errlen) : load_libconfig(c, path, f, err, errlen);
	fclose(f);
	return rc;
}

/* ---- the command line --------------------------------------------------- */

static int parse_bool(const char *s, int *out)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0)
			return *out = 1, 0;
		if (strcasecmp(s, no[i]) == 0)
			return *out = 0, 0;
	}
	return -1;
}

static int cmd_value(struct config *c, const struct opt *o, const char *v, char *why, size_t wlen)
{
	char *end;
	long long n;
	int b;

	switch (o->type) {
	case OPT_INT:
		errno = 0;
		n = strtoll(v, &end, 10);
		if (!isdigit((unsigned char)v[0]) && v[0] != '-')
			return bad_int(o, why, wlen);  /* strtoll would skip spaces */
		if (*end != '\0' || errno == ERANGE)
			return bad_int(o, why, wlen);
		return set_int(c, o, n, why, wlen);
	case OPT_BOOL:
		if (v == NULL)
			b = 1;
		else if (parse_bool(v, &b) < 0) {
			snprintf(why, wlen, "must be true or false");
			return -1;
		}
		*(int *)field(c, o) = b;
		return 0;
	default:
		return set_str(c, o, v, why, wlen);
	}
}

/* Splits argv into pairs without applying anything. Fills *file from -c FILE
 * / --config=FILE. Returns the number of pairs, or -1 with err set. */
static int cmd_split(int argc, char **argv, struct cmd_opt *out, const char **file, int *check,
		     char *err, size_t errlen)
{
	int n = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *eq;

		if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
			if (i + 1 >= argc) {
				snprintf(err, errlen, "command line: %s needs a file name", a);
				return -1;
			}
			*file = argv[++i];
			continue;
		}
		if (strncmp(a, "--config=", 9) == 0) {
			*file = a + 9;
			continue;
		}
		if (strcmp(a, "--check-config") == 0) {
			*check = 1;
			continue;
		}
		if (strcmp(a, "-v") == 0) {
			out[n].o = opt_find("verbose", 7);
			out[n++].value = NULL;
			continue;
		}
		if (strncmp(a, "--", 2) != 0) {
			snprintf(err, errlen, "command line: unexpected argument '%s'", a);
			return -1;
		}
		a += 2;
		eq = strchr(a, '=');
		out[n].o = opt_find(a, eq != NULL ? (size_t)(eq - a) : strlen(a));
		if (out[n].o == NULL) {
			snprintf(err, errlen, "command line: unknown option '--%.*s'",
				 eq != NULL ? (int)(eq - a) : (int)strlen(a), a);
			return -1;
		}
		if (eq != NULL)
			out[n].value = eq + 1;
		else if (out[n].o->type == OPT_BOOL || (out[n].o->type == OPT_NOEFFECT && out[n].o->lo == 0))
			out[n].value = NULL;
		else if (i + 1 < argc)
			out[n].value = argv[++i];
		else {
			snprintf(err, errlen, "command line: --%s needs a value", a);
			return -1;
		}
		n++;
	}
	return n;
}

static int cmd_apply(struct load *st, const struct cmd_opt *v, int n, char *err, size_t errlen)
{
	char why[400];

	for (int i = 0; i < n; i++) {
		const struct opt *o = v[i].o;
		size_t idx = (size_t)(o - opts);
		int special = coturn_only(st->c, o, "command line", why, sizeof(why));

		if (special == 0)
			continue;
		if (special < 0) {
			snprintf(err, errlen, "command line: --%s: %s", o->name, why);
			return -1;
		}

		if ((o->type == OPT_STR_LIST || o->type == OPT_USER_LIST) && !st->replaced[idx]) {
			list_clear(st->c, o);
			st->replaced[idx] = 1;
		}
		if (cmd_value(st->c, o, v[i].value, why, sizeof(why)) < 0) {
			if (v[i].value == NULL || o->type == OPT_USER_LIST)
				snprintf(err, errlen, "command line: --%s: %s", o->name, why);
			else
				snprintf(err, errlen, "command line: --%s=%s: %s", o->name, v[i].value, why);
			return -1;
		}
	}
	return 0;
}

/* ---- public API --------------------------------------------------------- */

void config_defaults(struct config *c)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	memset(c, 0, sizeof(*c));
	c->listening_port = 3478;
	c->tls_listening_port = 5349;
	c->min_port = 49152;
	c->max_port = 65535;
	c->stale_nonce = 600;
	c->max_allocate_lifetime = 3600;
	c->default_allocate_lifetime = 600;
	c->permission_lifetime = 300;
	c->channel_lifetime = 600;
	/* limits against abuse: quotas, bandwidth and per-IP rates off (0) */
	c->max_permissions = TURN_MAX_PERMS;
	c->max_channels = TURN_MAX_CHANNELS;
	c->reservation_lifetime = 30;
	c->relay_threads = cpus < 1 ? 1 : cpus > 1024 ? 1024 : (int)cpus;
	c->no_tlsv1 = 1;
	c->no_tlsv1_1 = 1;
	c->max_connections = 10000;
	c->idle_timeout = 30;
	c->stream_output_limit = 256 * 1024;
	/* TCP allocations (RFC 6062, issue 12): off */
	c->tcp_relay_max_pending = 16;
	c->tcp_relay_max_pending_total = 1024;
	c->tcp_relay_connect_timeout = 30; /* RFC 6062 §5.2: at least 30 s */
	c->auth_cache_ttl = 5;
	/* admin HTTP listener and drain (issue 11) */
	c->prometheus_port = 9641;
	c->prometheus_ip = strdup("127.0.0.1");
	c->drain_timeout = 3600;
	c->cipher_list = strdup("DEFAULT");
	c->rest_api_separator = strdup(":");
	c->signaling_port = 0; /* not set: config_load turns signaling on when it is */
	c->signaling_credential_ttl = 3600;
	c->signaling_max_message = 65536;
	c->signaling_room_size = 8;
	c->signaling_rate = 50;
	c->signaling_idle_timeout = 60;
	c->signaling_root = strdup(CONFIG_DATADIR "/turnstone/www");
	/* signaling: off unless asked for; who gets TURN credentials; limits (issue 13) */
	c->signaling_max_conns_per_ip = 50;
	c->signaling_max_rooms = 10000;
	c->signaling_output_limit = 1024 * 1024;
	c->signaling_max_json_depth = 32;
	/* signaling rooms across a fleet (issue 13) */
	c->signaling_redis_ttl = 15;
	/* socket.io compatibility (issue 13) */
	c->signaling_socketio = 1;
	/* Out of memory leaves NULLs, which config_validate reports. */
	c->realm = strdup("turnstone");
	c->software = strdup(CONFIG_SOFTWARE);
	c->policy = turn_policy_new();
}

int config_load(struct config *c, int argc, char **argv, int *want_help, char *err, size_t errlen)
{
	struct load st;
	struct cmd_opt *v;
	const char *file = NULL;
	int n, rc = 0;

	if (want_help != NULL)
		*want_help = 0;
	/* Help wins over everything, even a bad file. */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			if (want_help != NULL)
				*want_help = 1;
			return 0;
		}
	}
	if (c->policy == NULL) {
		snprintf(err, errlen, "out of memory building the peer policy");
		return -1;
	}
	if ((v = calloc((size_t)(argc > 0 ? argc : 1), sizeof(*v))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memset(&st, 0, sizeof(st));
	st.c = c;
	if ((n = cmd_split(argc, argv, v, &file, &c->check_only, err, errlen)) < 0)
		rc = -1;
	if (rc == 0 && file != NULL) {
		free(c->config_file);
		if ((c->config_file = strdup(file)) == NULL) {
			snprintf(err, errlen, "out of memory");
			rc = -1;
		}
	}
	if (rc == 0 && file != NULL)
		rc = load_file(c, file, err, errlen);
	if (rc == 0)
		rc = cmd_apply(&st, v, n, err, errlen);
	free(v);
	if (rc < 0)
		return -1;

	if (c->n_users > 0)
		c->lt_cred_mech = 1;
	c->external_ip = c->n_external_ip > 0 ? c->external_ips[0] : NULL;
	if (c->no_software_attribute) {
		free(c->software);
		c->software = NULL;
	}
	if (c->allow_loopback_peers)
		turn_policy_allow_loopback(c->policy);
	/* The signaling endpoint opens a port only when configured: 'signaling'
	 * or a signaling-port; no-signaling still wins. */
	if (c->signaling_port != 0)
		c->signaling = 1;
	else
		c->signaling_port = CONFIG_SIGNALING_PORT;
	if (!c->signaling)
		c->no_signaling = 1;
	return 0;
}

int config_validate(const struct config *c, char *err, size_t errlen)
{
	if (c->policy == NULL || c->realm == NULL) {
		snprintf(err, errlen, "out of memory while setting defaults");
		return -1;
	}
	if (c->no_udp && c->no_tcp && c->no_tls) {
		snprintf(err, errlen, "nothing to listen on: no-udp, no-tcp and no-tls are all set");
		return -1;
	}
	if (c->min_port > c->max_port) {
		snprintf(err, errlen, "min-port (%d) is greater than max-port (%d)", c->min_port, c->max_port);
		return -1;
	}
	if (c->default_allocate_lifetime > c->max_allocate_lifetime) {
		snprintf(err, errlen, "default-allocate-lifetime (%d) is greater than max-allocate-lifetime (%d)",
			 c->default_allocate_lifetime, c->max_allocate_lifetime);
		return -1;
	}
	if (!c->no_tls && (!c->no_udp || !c->no_tcp) && c->listening_port == c->tls_listening_port) {
		snprintf(err, errlen, "listening-port and tls-listening-port are both %d", c->listening_port);
		return -1;
	}
	if (c->use_auth_secret && c->n_static_auth_secret == 0 && c->redis_userdb == NULL) {
		snprintf(err, errlen, "use-auth-secret needs a secret: set static-auth-secret or redis-userdb");
		return -1;
	}
	/* TURN is always on, so a credential source is mandatory. */
	if (c->n_users == 0 && c->redis_userdb == NULL && !c->use_auth_secret) {
		snprintf(err, errlen,
			 "no credential source: TURN needs long-term credentials (set 'user', e.g. "
			 "user = \"name:password\", or redis-userdb, or use-auth-secret with "
			 "static-auth-secret); turnstone will not run an open relay");
		return -1;
	}
	return 0;
}

void config_free(struct config *c)
{
	for (size_t i = 0; i < N_OPTS; i++) {
		if (opts[i].type == OPT_STR)
			free(*(char **)field(c, &opts[i]));
		else
			list_clear(c, &opts[i]);
	}
	free(c->config_file);
	free(c->warnings);
	turn_policy_free(c->policy);
	memset(c, 0, sizeof(*c));
}

/* Default shown in the usage line, or "" when there is nothing to show. */
static void usage_default(struct config *d, const struct opt *o, char *buf, size_t len)
{
	buf[0] = '\0';
	if (o->type == OPT_INT && *(int *)field(d, o) < o->lo)
		return; /* outside the range: "not set" (signaling-port) */
	if (o->type == OPT_INT)
		snprintf(buf, len, " [%d]", *(int *)field(d, o));
	else if (o->type == OPT_STR && *(char **)field(d, o) != NULL)
		snprintf(buf, len, " [\"%s\"]", *(char **)field(d, o));
}

/* The coturn keys that have no field of their own (docs/migrating-from-coturn.md). */
static void usage_coturn(void)
{
	static const struct {
		enum opt_type type;
		const char *title;
	} sect[] = {
		{ OPT_ALIAS, "coturn's names for the keys above:" },
		{ OPT_NOEFFECT, "coturn keys accepted without effect (one warning line each):" },
		{ OPT_REFUSED, "coturn keys refused, with turnstone's way to the same end:" },
	};

	for (size_t k = 0; k < sizeof(sect) / sizeof(sect[0]); k++) {
		printf("%s\n", sect[k].title);
		for (size_t i = 0; i < N_OPTS; i++)
			if (opts[i].type == sect[k].type)
				printf("    --%-32s %s\n", opts[i].name, opts[i].help);
	}
}

void config_usage(const char *argv0)
{
	struct config d;
	char left[64], def[96];

	config_defaults(&d);
	printf("usage: %s [-c FILE] [--key=value ...]\n"
	       "  %-36s %s\n  %-36s %s\n  %-36s %s\n  %-36s %s\n"
	       "FILE is libconfig (key = value;) or coturn's turnserver.conf (key=value, bare key),\n"
	       "told apart by its syntax.\n"
	       "Every key below can be set in the file (key = value;) or on the command line;\n"
	       "the command line wins. Booleans are bare flags (--no-tls) or --key=true/false.\n",
	       argv0 != NULL ? argv0 : "turnstone",
	       "-c FILE, --config=FILE", "configuration file to read",
	       "-v", "same as --verbose",
	       "--check-config", "read and check the configuration, print warnings, exit",
	       "-h, --help", "this summary");
	for (size_t i = 0; i < N_OPTS; i++) {
		const struct opt *o = &opts[i];
		if (o->type == OPT_ALIAS || o->type == OPT_NOEFFECT || o->type == OPT_REFUSED)
			continue;
		snprintf(left, sizeof(left), "--%s%s%s", o->name, o->arg != NULL ? "=" : "",
			 o->arg != NULL ? o->arg : "");
		usage_default(&d, o, def, sizeof(def));
		printf("  %-36s %s%s\n", left, o->help, def);
	}
	usage_coturn();
	config_free(&d);
}
