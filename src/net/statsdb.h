/* statsdb.h -- coturn's redis-statsdb: allocation status keys and traffic
 * messages in Redis, so that coturn's tooling sees turnstone's sessions.
 *
 * One struct statsdb per worker, on that worker's event_base (hiredis async
 * API): nothing blocks. Keys and channels are coturn 4.6's:
 *   SET     turn/realm/<realm>/user/<user>/allocation/<id>/status
 *           "new lifetime=600, type=UDP, local=IP:PORT, remote=IP:PORT, ssl=NONE, cipher=NONE"
 *           (then "refreshed lifetime=..."), with EX lifetime so a key of a
 *           server that died goes away by itself; PUBLISH of the same on a
 *           channel named like the key;
 *   DEL of the key, PUBLISH "deleted" on it, and PUBLISH
 *           "rcvp=N, rcvb=N, sentp=N, sentb=N" on .../total_traffic (the
 *           client side) and .../total_traffic/peer (the peer side).
 * <id> is 18 decimal digits, unique per process (worker id in the top bits).
 * While the connection is down (reconnect every second) messages are
 * dropped: these are statistics, not state the server depends on.
 */
#ifndef TURNSTONE_STATSDB_H
#define TURNSTONE_STATSDB_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct statsdb;
struct turn_alloc;

/* Starts connecting to conninfo (a redis-userdb style value, see
 * auth_redis_parse_conninfo). Returns NULL with a message in err on a bad
 * conninfo or out of memory. */
struct statsdb *statsdb_new(struct event_base *base, const char *conninfo, const char *realm, char *err,
			    size_t errlen);
/* Closes the connection; queued messages are dropped. From the owning thread. */
void statsdb_free(struct statsdb *s);

/* What a status line says about an allocation's client side. */
struct statsdb_client {
	const char *type;   /* "UDP", "TCP" or "TLS" */
	const char *local;  /* server address the client reached, "IP:PORT" */
	const char *remote; /* client address, "IP:PORT" */
};

/* "new" (refresh 0) or "refreshed" (refresh 1) status of allocation id of
 * user, valid for lifetime seconds. user is copied into the key as given
 * (coturn does the same). */
void statsdb_alloc_status(struct statsdb *s, uint64_t id, const char *user, int refresh, uint32_t lifetime,
			  const struct statsdb_client *cl);
/* The allocation ended: DEL, "deleted", and its total traffic. */
void statsdb_alloc_deleted(struct statsdb *s, uint64_t id, const struct turn_alloc *a);

#endif
