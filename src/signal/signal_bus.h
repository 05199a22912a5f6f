/* signal_bus.h -- the Redis bus that lets signaling rooms span a fleet of
 * turnstone servers (docs/signaling.md, "Rooms across a fleet").
 *
 * Two hiredis async connections on the signaling thread's event_base: a
 * command connection (membership hashes, the server's liveness key,
 * PUBLISH) and a subscriber (one channel per room that has local members).
 * Both reconnect with exponential backoff (100 ms doubling to 5 s) like
 * auth_redis. The Redis keys and channels:
 *   turnstone/signal/server/<id>     string, EX ttl, refreshed every ttl/3 s
 *   turnstone/signal/room/<room>     hash peer id -> server id, EX 4*ttl
 *   turnstone/signal/channel/<room>  pub/sub channel of the room's events
 * This module only moves bytes and replies; what they mean (joins,
 * forwarding, dead servers) is signal_room.c's business.
 *
 * Signaling thread only: no locks. Callbacks run from the event loop, never
 * from inside the call that started a request.
 */
#ifndef TURNSTONE_SIGNAL_BUS_H
#define TURNSTONE_SIGNAL_BUS_H

#include <stddef.h>

#define SIGNAL_BUS_ID_LEN 16 /* hex characters of a server id: 64 random bits */

struct event_base;
struct signal_bus;

/* What the bus tells its owner. All may be NULL. */
struct signal_bus_cbs {
	void (*up)(void *arg);     /* both connections ready: re-register and resubscribe */
	void (*down)(void *arg);   /* one of them lost (after up) */
	void (*tick)(void *arg);   /* every ttl/3 s while up, after refreshing the liveness key */
	/* A message on the channel of room (NUL-terminated payload of len bytes). */
	void (*message)(void *arg, const char *room, const char *payload, size_t len);
};

/* status 0: the hash was read (n members, peers[i] on servers[i]); 1
 * (signal_bus_join only): the peer id is taken in that room, n 0; -1 Redis
 * down, error or 2 s timeout, n 0. Strings only valid during the call. */
typedef void signal_bus_members_cb(void *arg, int status, const char *const *peers, const char *const *servers,
				   size_t n);
/* alive 1: the server's liveness key exists, 0: it does not, -1 unknown. */
typedef void signal_bus_alive_cb(void *arg, const char *server, int alive);

/* Parses conninfo with auth_redis_parse_conninfo (same syntax as
 * redis-userdb), picks a random server id and starts connecting. ttl:
 * seconds of the liveness key (>= 3). Returns NULL with a message in err on
 * a bad conninfo or no memory. */
struct signal_bus *signal_bus_new(struct event_base *base, const char *conninfo, int ttl,
				  const struct signal_bus_cbs *cbs, void *arg, char *err, size_t errlen);

/* Deletes the liveness key if it can (best effort, not waited for), closes
 * both connections and frees b. Pending callbacks are not called. */
void signal_bus_free(struct signal_bus *b);

/* This server's id (SIGNAL_BUS_ID_LEN hex digits). */
const char *signal_bus_id(const struct signal_bus *b);

/* 1 when both connections are up. */
int signal_bus_up(const struct signal_bus *b);

/* Seconds (monotonic) since the bus last came up; 0 while down. */
double signal_bus_up_for(const struct signal_bus *b);

/* SUBSCRIBE / UNSUBSCRIBE the channel of room. Return 0, or -1 when down. */
int signal_bus_subscribe(struct signal_bus *b, const char *room);
int signal_bus_unsubscribe(struct signal_bus *b, const char *room);

/* PUBLISH text on room's channel. Returns 0 (queued), or -1 when down. */
int signal_bus_publish(struct signal_bus *b, const char *room, const char *text);

/* HSETNX room peer <our id>, then (when set) HGETALL and EXPIRE of the
 * room hash; cb as above. Returns 0 (cb will be called), or -1 when down or
 * out of memory (cb is not called). */
int signal_bus_join(struct signal_bus *b, const char *room, const char *peer, signal_bus_members_cb *cb, void *arg);

/* HGETALL and EXPIRE of the room hash. Returns like signal_bus_join. */
int signal_bus_members(struct signal_bus *b, const char *room, signal_bus_members_cb *cb, void *arg);

/* HSET (and EXPIRE) / HDEL one member, fire and forget. Return 0 or -1. */
int signal_bus_set_member(struct signal_bus *b, const char *room, const char *peer);
int signal_bus_del_member(struct signal_bus *b, const char *room, const char *peer);

/* EXISTS the liveness key of server. Returns like signal_bus_join. */
int signal_bus_alive(struct signal_bus *b, const char *server, signal_bus_alive_cb *cb, void *arg);

/* Cancels the pending requests whose argument is arg: their callbacks are
 * not called. */
void signal_bus_cancel(struct signal_bus *b, void *arg);

#endif
