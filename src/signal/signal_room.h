/* signal_room.h -- rooms of the signaling protocol (docs/signaling.md):
 * membership, peer-joined / peer-left notices, and forwarding a client's
 * JSON message to one peer ("to") or to every other peer of its room with
 * "from" set by the server.
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

struct signal_room;
struct signal_rooms;

/* One client's place in the room set; owned by its connection. */
struct signal_peer {
	char id[SIGNAL_PEER_ID_LEN + 1];
	struct signal_room *room;        /* NULL while in no room */
	struct signal_peer *room_next;   /* next member of the same room */
	void *conn;                      /* passed to the send callback */
};

/* Sends the len bytes of JSON text to the connection conn. Must not call
 * back into this module. */
typedef void signal_room_send_fn(void *conn, const char *text, size_t len);

/* A room set whose rooms hold at most room_size peers, with at most
 * max_rooms rooms at once (0: no limit). NULL on no memory. */
struct signal_rooms *signal_rooms_new(size_t room_size, size_t max_rooms, signal_room_send_fn *send);

/* Frees the rooms (peers stay with their owners; their room becomes NULL). */
void signal_rooms_free(struct signal_rooms *rs);

/* Fills p->id with SIGNAL_PEER_ID_LEN random hex digits (RAND_bytes).
 * Returns 0, or -1 when the random generator fails. */
int signal_peer_init(struct signal_peer *p, void *conn);

/* Puts p (in no room) into the room called name (created on first join),
 * sends {"type":"peer-joined","id":...} to the others and stores a new
 * reference to the array of the other members' ids in *peers.
 * Returns 0, -1 when the room is full, -2 on no memory, -3 when the room
 * does not exist and max_rooms rooms already do. */
int signal_rooms_join(struct signal_rooms *rs, struct signal_peer *p, const char *name, json_t **peers);

/* Takes p out of its room (nothing when it is in none), sends
 * {"type":"peer-left","id":...} to the others and frees the room when empty. */
void signal_rooms_leave(struct signal_rooms *rs, struct signal_peer *p);

/* Forwards msg (a JSON object from p) after setting "from" to p's id:
 * to the member whose id is the string "to" when present, else to every
 * other member. Returns 0, -1 when "to" names no member (or is not a
 * string), -2 when p is in no room, -3 when msg cannot be encoded. */
int signal_rooms_forward(struct signal_rooms *rs, struct signal_peer *p, json_t *msg);

/* Number of rooms that exist (for logs and tests). */
size_t signal_rooms_count(const struct signal_rooms *rs);

#endif
