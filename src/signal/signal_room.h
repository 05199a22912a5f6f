/* signal_room.h -- rooms of the signaling protocol (docs/signaling.md):
 * membership, peer-joined / peer-left notices, and forwarding a client's
 * JSON message to one peer ("to") or to every other peer of its room with
 * "from" set by the server.
 *
 * With signal_rooms_fleet (signaling-redis, or redis-userdb) rooms span
 * every turnstone on the same Redis: membership lives in Redis hashes and
 * joins, leaves and forwarded messages travel over the room's pub/sub
 * channel (signal_bus.c); peers of other servers are kept in a per-room
 * mirror. Joining then completes asynchronously. Every protocol front end
 * (the JSON WebSocket, socket.io) gets fleet mode by going through this API.
 *
 * Lives on the signaling thread only: no locks. Messages leave through the
 * send callback given to signal_rooms_new, so this module knows nothing of
 * sockets or WebSocket framing (jansson objects in, text out).
 */
#ifndef TURNSTONE_SIGNAL_ROOM_H
#define TURNSTONE_SIGNAL_ROOM_H

#include <jansson.h>
#include <stddef.h>

#define SIGNAL_PEER_ID_LEN 16     /* hex characters: 64 random bits */
#define SIGNAL_ROOM_NAME_MAX 128  /* bytes */

/* Sends the len bytes of JSON text to the connection conn. Must not call
 * back into this module. */
typedef void signal_room_send_fn(void *conn, const char *text, size_t len);

struct event_base;
struct signal_join;
struct signal_room;
struct signal_rooms;

/* One client's place in the room set; owned by its connection. */
struct signal_peer {
	char id[SIGNAL_PEER_ID_LEN + 1];
	struct signal_room *room;        /* NULL while in no room */
	struct signal_peer *room_next;   /* next member of the same room */
	void *conn;                      /* passed to the send callback */
	signal_room_send_fn *send;       /* this peer's own (another front end), NULL: the rooms' */
	struct signal_join *joining;     /* fleet: join waiting for Redis; room set, not a member yet */
	int registered;                  /* fleet: listed in the room's Redis hash */
};


/* A room set whose rooms hold at most room_size peers, with at most
 * max_rooms rooms at once (0: no limit). NULL on no memory. */
struct signal_rooms *signal_rooms_new(size_t room_size, size_t max_rooms, signal_room_send_fn *send);

/* Fleet mode: rooms span the servers on the Redis at conninfo (the syntax of
 * redis-userdb), with a liveness key of ttl seconds; runs on base. Call once
 * before any join. Returns 0, or -1 with a message in err (bad conninfo, no
 * memory). Without it rooms are local to this server. */
int signal_rooms_fleet(struct signal_rooms *rs, struct event_base *base, const char *conninfo, int ttl, char *err,
		       size_t errlen);

/* Frees the rooms (peers stay with their owners; their room becomes NULL)
 * and the fleet bus. */
void signal_rooms_free(struct signal_rooms *rs);

/* Clears p, sets its conn and fills p->id with SIGNAL_PEER_ID_LEN random
 * hex digits (RAND_bytes); a front end whose connections need another send
 * callback than the rooms' sets p->send afterwards. Returns 0, or -1 when
 * the random generator fails. */
int signal_peer_init(struct signal_peer *p, void *conn);

/* Puts p (in no room) into the room called name (created on first join)
 * and, once it is in, sends {"type":"peer-joined","id":...} to the others
 * (on every server) and reply to p with "id" (p's id) and "peers" (the
 * other members' ids, on every server) set. reply is the front end's
 * {"type":"joined",...} object; this function takes over the reference.
 * Locally this happens before the call returns; in fleet mode with Redis up
 * it happens when Redis has answered (p->id may change if another server
 * uses it), or p gets {"type":"error","reason":"room full"} then (the room
 * is full fleet-wide) and is in no room. Returns 0 (done or under way), or,
 * with nothing sent and p in no room, -1 when the room is full, -2 on no
 * memory, -3 when the room does not exist and max_rooms rooms already do. */
int signal_rooms_join(struct signal_rooms *rs, struct signal_peer *p, const char *name, json_t *reply);

/* Takes p out of its room (nothing when it is in none; a join still under
 * way is cancelled), sends {"type":"peer-left","id":...} to the others (on
 * every server) and frees the room when empty. Call it before p's
 * connection goes away. */
void signal_rooms_leave(struct signal_rooms *rs, struct signal_peer *p);

/* Forwards msg (a JSON object from p) after setting "from" to p's id:
 * to the member whose id is the string "to" when present, else to every
 * other member (on every server). Returns 0, -1 when "to" names no member
 * (or is not a string), -2 when p is in no room (or its join is under way),
 * -3 when msg cannot be encoded, -4 when the message (or, for a broadcast,
 * part of it) cannot reach a member on another server because Redis is down
 * (local members got it). */
int signal_rooms_forward(struct signal_rooms *rs, struct signal_peer *p, json_t *msg);

/* Number of rooms that exist (for logs and tests). */
size_t signal_rooms_count(const struct signal_rooms *rs);

#endif
