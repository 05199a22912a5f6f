/* signal_room.c -- rooms, membership and message forwarding of the
 * signaling protocol (docs/signaling.md). The server never looks inside
 * the forwarded messages (SDP, candidates): it only sets "from". */
#include "signal/signal_room.h"

#include <openssl/rand.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROOM_BUCKETS 1024

struct signal_room {
	char name[SIGNAL_ROOM_NAME_MAX + 1];
	struct signal_peer *members;
	size_t n;
	struct signal_room *next;        /* hash chain */
};

struct signal_rooms {
	struct signal_room *bucket[ROOM_BUCKETS];
	size_t room_size, nrooms, max_rooms;
	signal_room_send_fn *send;
};

static size_t room_hash(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % ROOM_BUCKETS;
}

struct signal_rooms *signal_rooms_new(size_t room_size, size_t max_rooms, signal_room_send_fn *send)
{
	struct signal_rooms *rs = calloc(1, sizeof(*rs));

	if (rs == NULL)
		return NULL;
	rs->room_size = room_size;
	rs->max_rooms = max_rooms;
	rs->send = send;
	return rs;
}

void signal_rooms_free(struct signal_rooms *rs)
{
	size_t i;

	if (rs == NULL)
		return;
	for (i = 0; i < ROOM_BUCKETS; i++) {
		struct signal_room *r, *next;

		for (r = rs->bucket[i]; r != NULL; r = next) {
			next = r->next;
			for (struct signal_peer *p = r->members; p != NULL; p = p->room_next)
				p->room = NULL;
			free(r);
		}
	}
	free(rs);
}

int signal_peer_init(struct signal_peer *p, void *conn)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char rnd[SIGNAL_PEER_ID_LEN / 2];
	size_t i;

	memset(p, 0, sizeof(*p));
	p->conn = conn;
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return -1;
	for (i = 0; i < sizeof(rnd); i++) {
		p->id[2 * i] = hex[rnd[i] >> 4];
		p->id[2 * i + 1] = hex[rnd[i] & 15];
	}
	return 0;
}

/* Encodes msg once and sends it to every member of r but skip. */
static void room_send_all(struct signal_rooms *rs, struct signal_room *r, const struct signal_peer *skip,
			  json_t *msg)
{
	char *text = json_dumps(msg, JSON_COMPACT);

	if (text == NULL)
		return;
	for (struct signal_peer *m = r->members; m != NULL; m = m->room_next)
		if (m != skip)
			rs->send(m->conn, text, strlen(text));
	free(text);
}

/* Sends {"type":type,"id":p->id} to the other members of p's room. */
static void room_notice(struct signal_rooms *rs, struct signal_peer *p, const char *type)
{
	json_t *msg = json_pack("{s:s, s:s}", "type", type, "id", p->id);

	if (msg == NULL)
		return;
	room_send_all(rs, p->room, p, msg);
	json_decref(msg);
}

int signal_rooms_join(struct signal_rooms *rs, struct signal_peer *p, const char *name, json_t **peers)
{
	size_t h = room_hash(name);
	struct signal_room *r;
	json_t *ids;

	for (r = rs->bucket[h]; r != NULL; r = r->next)
		if (strcmp(r->name, name) == 0)
			break;
	if (r != NULL && r->n >= rs->room_size)
		return -1;
	if (r == NULL && rs->max_rooms > 0 && rs->nrooms >= rs->max_rooms)
		return -3;
	if ((ids = json_array()) == NULL)
		return -2;
	if (r == NULL) {
		if ((r = calloc(1, sizeof(*r))) == NULL) {
			json_decref(ids);
			return -2;
		}
		snprintf(r->name, sizeof(r->name), "%s", name);
		r->next = rs->bucket[h];
		rs->bucket[h] = r;
		rs->nrooms++;
	}
	for (struct signal_peer *m = r->members; m != NULL; m = m->room_next)
		json_array_append_new(ids, json_string(m->id));
	p->room = r;
	p->room_next = r->members;
	r->members = p;
	r->n++;
	room_notice(rs, p, "peer-joined");
	*peers = ids;
	return 0;
}

static void room_unlink(struct signal_rooms *rs, struct signal_room *r)
{
	struct signal_room **pp = &rs->bucket[room_hash(r->name)];

	while (*pp != r)
		pp = &(*pp)->next;
	*pp = r->next;
	rs->nrooms--;
	free(r);
}

void signal_rooms_leave(struct signal_rooms *rs, struct signal_peer *p)
{
	struct signal_room *r = p->room;
	struct signal_peer **pp;

	if (r == NULL)
		return;
	for (pp = &r->members; *pp != NULL; pp = &(*pp)->room_next) {
		if (*pp == p) {
			*pp = p->room_next;
			r->n--;
			break;
		}
	}
	room_notice(rs, p, "peer-left");
	p->room = NULL;
	p->room_next = NULL;
	if (r->n == 0)
		room_unlink(rs, r);
}

int signal_rooms_forward(struct signal_rooms *rs, struct signal_peer *p, json_t *msg)
{
	json_t *to = json_object_get(msg, "to");
	struct signal_peer *m = NULL;
	char *text;

	if (p->room == NULL)
		return -2;
	if (to != NULL) {
		if (!json_is_string(to))
			return -1;
		for (m = p->room->members; m != NULL; m = m->room_next)
			if (m != p && strcmp(m->id, json_string_value(to)) == 0)
				break;
		if (m == NULL)
			return -1;
	}
	if (json_object_set_new(msg, "from", json_string(p->id)) < 0)
		return -3;
	if (m == NULL) {
		room_send_all(rs, p->room, p, msg);
		return 0;
	}
	if ((text = json_dumps(msg, JSON_COMPACT)) == NULL)
		return -3;
	rs->send(m->conn, text, strlen(text));
	free(text);
	return 0;
}

size_t signal_rooms_count(const struct signal_rooms *rs)
{
	return rs->nrooms;
}
