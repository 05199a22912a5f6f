/* config.h -- turnstone's configuration: one libconfig file plus command-line
 * overrides, parsed once at start into a read-only struct config.
 *
 * Key names follow coturn's turnserver.conf where the concept is the same.
 */
#ifndef TURNSTONE_CONFIG_H
#define TURNSTONE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "turn/turn_policy.h"

#define CONFIG_MAX_LISTEN 8
#define CONFIG_SIGNALING_PORT 8080 /* signaling-port when only 'signaling' is set */
#define CONFIG_MAX_USERS 256

struct config_user {
	char *name;
	char *password;
};

struct config {
	char *config_file;              /* path given with -c, or NULL */

	/* Listening: IP literals; none given means 0.0.0.0 and :: */
	char *listening_ip[CONFIG_MAX_LISTEN];
	size_t n_listening_ip;
	int listening_port;              /* default 3478 */
	int tls_listening_port;          /* default 5349 */

	char *relay_ip[CONFIG_MAX_LISTEN];   /* IP literals relay sockets bind to; none: the listening IP family's wildcard */
	size_t n_relay_ip;
	char *external_ip;                /* external_ips[0] (not owned), or NULL */
	int min_port, max_port;           /* relay port range, default 49152..65535 */

	char *realm;                      /* default "turnstone" */
	struct config_user users[CONFIG_MAX_USERS];
	size_t n_users;
	int lt_cred_mech;                 /* boolean */
	int stale_nonce;                  /* nonce lifetime, seconds, default 600 */
	int max_allocate_lifetime;        /* seconds, default 3600 */
	int default_allocate_lifetime;    /* seconds, default 600 */
	int permission_lifetime;          /* seconds, default 300 (RFC 8656 §9) */
	int channel_lifetime;             /* seconds, default 600 (RFC 8656 §12) */

	/* Limits against abuse (docs/limits.md; coturn's names; 0 = unlimited) */
	int user_quota;                   /* concurrent allocations per username (REST: per user id) */
	int total_quota;                  /* concurrent allocations on this server */
	int max_bps;                      /* bytes/s per allocation, each direction apart */
	int bps_capacity;                 /* bytes/s for the whole server, each direction; split over workers */
	int max_permissions;              /* per allocation, 1..64, default 64; more: 508 */
	int max_channels;                 /* per allocation, 1..64, default 64; more: 508 */
	int allocate_rate_per_ip;         /* authenticated Allocates per second per source IP (/64) */
	int unauthorized_rate_per_ip;     /* 401 answers per second per source IP (/64) */
	int reservation_lifetime;         /* seconds an EVEN-PORT reservation is held, default 30 */

	struct turn_policy *policy;       /* peer address policy, owned */
	int allow_loopback_peers;         /* boolean */
	int rfc5766_channels;             /* boolean: accept channels up to 0x7FFF, not 0x4FFF */

	int no_udp, no_tcp, no_tls, no_stun; /* booleans */
	int relay_threads;                /* default: number of CPUs */

	/* TCP and TLS listeners (RFC 8656 §3.1, RFC 7443 ALPN) */
	char *cert, *pkey, *ca_file;      /* PEM file paths; TLS listens only with cert and pkey */
	char *cipher_list;                /* OpenSSL cipher list for TLS <= 1.2, default "DEFAULT" */
	int no_tlsv1, no_tlsv1_1;         /* booleans, default on: TLS 1.2 is the minimum */
	int max_connections;              /* concurrent TCP/TLS client connections, default 10000 */
	int idle_timeout;                 /* seconds a connection without allocation may idle, default 30 */
	int stream_output_limit;          /* bytes queued to one connection before relayed data
					     is dropped and reading paused, default 262144 */

	/* TCP allocations (RFC 6062, issue 12): off unless tcp-relay is set */
	int tcp_relay;                    /* boolean: accept REQUESTED-TRANSPORT=TCP, default off */
	int tcp_relay_max_pending;        /* peer connections per allocation waiting for
					     ConnectionBind (or still connecting), default 16 */
	int tcp_relay_max_pending_total;  /* the same over the whole server, default 1024 */
	int tcp_relay_connect_timeout;    /* seconds a Connect may take before 447, default (and RFC 6062 minimum) 30 */

	/* In-kernel fast path for UDP channels (issue 14, docs/ebpf.md): off by default */
	int ebpf_offload;                 /* boolean: load the tc program, default off */
	char *ebpf_interface[CONFIG_MAX_LISTEN]; /* interfaces peers' datagrams arrive on */
	size_t n_ebpf_interface;

	/* Credentials in Redis and the TURN REST API (coturn's key names) */
	char *redis_userdb;               /* "ip=... port=... dbname=... password=..." or redis:// URL */
	int use_auth_secret;              /* boolean: accept REST API time-limited credentials */
	char *static_auth_secret[CONFIG_MAX_LISTEN]; /* shared secrets; Redis may add more */
	size_t n_static_auth_secret;
	char *rest_api_separator;         /* between expiry time and user id, default ":" */
	int auth_cache_ttl;               /* seconds a worker caches a key looked up in Redis, default 5 */

	/* Admin HTTP listener: /metrics, /healthz, /ready, /sessions, /drain (issue 11, coturn's names) */
	int prometheus;                   /* boolean: serve the admin listener, default off */
	int prometheus_port;              /* TCP port, default 9641 */
	char *prometheus_ip;              /* address to listen on, default "127.0.0.1" */
	int drain_timeout;                /* seconds a drain (SIGUSR1) waits for the last allocation
					     before exiting anyway, 0: no limit; default 3600 */

	/* WebSocket signaling endpoint and demo page (RFC 6455) */
	int no_signaling;                 /* boolean */
	int signaling_port;               /* HTTP/WebSocket port; config_load: 8080 when not set */
	int signaling_tls;                /* boolean: https/wss with cert and pkey */
	char *signaling_origin[CONFIG_MAX_LISTEN]; /* allowed Origin values; none: any */
	size_t n_signaling_origin;
	int signaling_credential_ttl;     /* seconds TURN credentials handed out stay valid, default 3600 */
	int signaling_max_message;        /* bytes, default 65536 */
	int signaling_room_size;          /* peers per room, default 8 */
	int signaling_rate;               /* messages per second per client, default 50 */
	int signaling_idle_timeout;       /* seconds without a frame before closing, default 60 */
	char *signaling_root;             /* directory of the static page, default DATADIR/turnstone/www */
	/* signaling: off unless asked for; who gets TURN credentials; limits (issue 13) */
	int signaling;                    /* boolean: serve the endpoint (set signaling-port implies it) */
	char *signaling_auth_secret;      /* HMAC-SHA256 key of join tokens; NULL: no tokens */
	int signaling_open_credentials;   /* boolean: TURN credentials without a token (local demo) */
	int signaling_max_conns_per_ip;   /* connections per IPv4 address / IPv6 /64, default 50 */
	int signaling_max_rooms;          /* rooms at once, default 10000 */
	int signaling_output_limit;       /* bytes queued to one client before it is dropped, default 1 MiB */
	int signaling_max_json_depth;     /* nesting of arrays and objects in a message, default 32 */
	/* signaling rooms across a fleet over Redis pub/sub (issue 13, docs/signaling.md) */
	char *signaling_redis;            /* conninfo like redis-userdb; NULL: redis-userdb; "off": local rooms */
	int signaling_redis_ttl;          /* seconds a server's liveness key lives, refreshed every ttl/3; default 15 */
	/* socket.io compatibility: Engine.IO v4 / Socket.IO v5 at /socket.io/ (issue 13) */
	int signaling_socketio;           /* boolean, default on (with signaling) */

	char *log_file;                   /* NULL: stderr */
	int verbose;                      /* boolean */
	char *pidfile;
	char *software;                   /* SOFTWARE attribute; NULL to omit */

	/* The process (issue 11): privileges, logging to syslog */
	char *proc_user;                  /* setuid to this user after binding; NULL: stay */
	char *proc_group;                 /* setgid to this group; NULL: proc-user's login group */
	int syslog;                       /* boolean: log to syslog (daemon, "turnstone") */

	/* coturn's turnserver.conf read unchanged (issue 12, docs/migrating-from-coturn.md) */
	int coturn_format;                /* the -c file was in coturn's key=value format */
	int check_only;                   /* --check-config: validate the configuration and exit */
	int fingerprint;                  /* boolean: FINGERPRINT in every response, not only when asked */
	int no_software_attribute;        /* boolean: no SOFTWARE attribute (coturn's name; also 'prod') */
	int no_multicast_peers;           /* boolean: multicast peers refused (always so; kept for coturn) */
	int no_udp_relay;                 /* boolean: refuse UDP relays (442) */
	int no_tcp_relay;                 /* boolean: refuse RFC 6062 TCP relays (tcp-relay stays off) */
	int no_tlsv1_2;                   /* boolean: TLS 1.3 only */
	char *external_ips[CONFIG_MAX_LISTEN]; /* external-ip, repeatable: "PUBLIC" or "PUBLIC/PRIVATE",
					     the address advertised for relays on PRIVATE (or on any) */
	size_t n_external_ip;
	char *redis_statsdb;              /* coturn's allocation status keys go here (net/statsdb.h); NULL: off */
	char *warnings;                   /* "FILE:LINE: ..." lines, each ending in \n, about coturn keys
					     accepted without effect; NULL: none. main logs them. */
};

/* Fills c with the built-in defaults. */
void config_defaults(struct config *c);

/* Parses argv (the command line, with -c FILE naming a libconfig file) into
 * c, which must hold defaults. Keys from the file are applied first, then
 * --key=value / --key options, so the command line wins. "-h"/"--help" sets
 * *want_help. On error writes a message naming file, line and key into
 * err[0..errlen) and returns -1 (the server exits with code 2); 0 on success.
 * A list key (listening-ip, relay-ip, user) given on the command line replaces
 * the file's list; denied-peer-ip and allowed-peer-ip from both accumulate.
 * Users imply lt_cred_mech; allow-loopback-peers is applied to c->policy here.
 * With -h/--help anywhere, nothing else is read and 0 is returned. */
int config_load(struct config *c, int argc, char **argv, int *want_help, char *err, size_t errlen);

/* Checks cross-key rules (port range, credentials present when TURN is on...).
 * Returns 0 or -1 with a message in err. */
int config_validate(const struct config *c, char *err, size_t errlen);

/* Frees everything c owns. */
void config_free(struct config *c);

/* How turnstone treats a key of coturn's turnserver.conf (or its own). */
enum config_key_class {
	CONFIG_KEY_UNKNOWN,     /* neither turnstone's nor coturn's: an error */
	CONFIG_KEY_IMPLEMENTED, /* read and acted on (possibly under another name) */
	CONFIG_KEY_NO_EFFECT,   /* coturn's, accepted with one warning line, ignored */
	CONFIG_KEY_REFUSED,     /* coturn's, refused with a message naming turnstone's way */
};

/* Classifies key name (case-sensitive, as coturn is). *note, when not NULL,
 * gets the table's explanation (static storage): the alternative for a
 * refused key, why a key has no effect, the target of an alias, or the
 * help text. Used by the docs check (docs/migrating-from-coturn.md). */
enum config_key_class config_key_class(const char *name, const char **note);

/* Prints the option summary to stdout. */
void config_usage(const char *argv0);

#endif
