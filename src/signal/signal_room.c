/* signal_room.c -- rooms, membership and message forwarding of the
 * signaling protocol (docs/signaling.md), on one server or across a fleet
 * (the Redis side is signal_bus.c; the scheme is in docs/signaling.md,
 * "Rooms across a fleet"). The server never looks inside the forwarded
 * messages (SDP, candidates): it only sets "from". */
#include "signal/signal_room.h"

#include <openssl/rand.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "signal/signal_bus.h"

#define ROOM_BUCKETS 1024
#define JOIN_ATTEMPTS 3          /* peer ids tried when another server has one */
#define MAX_SERVERS_CHECKED 256  /* distinct remote servers checked per tick */
/* After Redis (re)connects, for ttl + this many seconds (the longest
 * reconnect backoff) nothing is removed for its absence from Redis: after a
 * restart the other servers may not have re-registered yet. */
#define FLEET_GRACE_SEC 5

/* A member of a room on another server (what the local peers were told). */
struct remote_peer {
	char id[SIGNAL_PEER_ID_LEN + 1];
	char server[SIGNAL_BUS_ID_LEN + 1];
	double added;                    /* monotonic seconds */
	struct remote_peer *next;
};

struct signal_room {
	char name[SIGNAL_ROOM_NAME_MAX + 1];
	struct signal_peer *members;     /* local, joined */
	size_t n;
	size_t npending;                 /* local joins waiting for Redis */
	struct remote_peer *remote;      /* fleet: members on other servers */
	size_t nremote;
	int subscribed;                  /* fleet: SUBSCRIBE sent on this bus connection */
	int reconciling;                 /* fleet: an HGETALL is out */
	double reconcile_sent;
	struct signal_rooms *rs;         /* the set it belongs to (bus callbacks) */
	struct signal_room *next;        /* hash chain */
};

/* A fleet join waiting for Redis (p->joining). */
struct signal_join {
	struct signal_rooms *rs;
	struct signal_peer *p;
	json_t *reply;
	int attempts;
};

struct signal_rooms {
	struct signal_room *bucket[ROOM_BUCKETS];
	size_t room_size, nrooms, max_rooms;
	signal_room_send_fn *send;
	struct signal_bus *bus;          /* NULL: rooms are local */
	int ttl;
};

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static size_t room_hash(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % ROOM_BUCKETS;
}

static struct signal_room *room_find(struct signal_rooms *rs, const char *name)
{
	struct signal_room *r;

	for (r = rs->bucket[room_hash(name)]; r != NULL; r = r->next)
		if (strcmp(r->name, name) == 0)
			return r;
	return NULL;
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

static void remote_free_all(struct signal_room *r)
{
	struct remote_peer *m, *next;

	for (m = r->remote; m != NULL; m = next) {
		next = m->next;
		free(m);
	}
	r->remote = NULL;
	r->nremote = 0;
}

static void join_free(struct signal_join *j)
{
	j->p->joining = NULL;
	json_decref(j->reply);
	free(j);
}

void signal_rooms_free(struct signal_rooms *rs)
{
	size_t i;

	if (rs == NULL)
		return;
	signal_bus_free(rs->bus); /* first: no callback runs after this */
	for (i = 0; i < ROOM_BUCKETS; i++) {
		struct signal_room *r, *next;

		for (r = rs->bucket[i]; r != NULL; r = next) {
			next = r->next;
			for (struct signal_peer *p = r->members; p != NULL; p = p->room_next)
				p->room = NULL;
			remote_free_all(r);
			free(r);
		}
	}
	free(rs);
}

/* Fills p->id with fresh random hex digits. Returns 0 or -1. */
static int peer_new_id(struct signal_peer *p)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char rnd[SIGNAL_PEER_ID_LEN / 2];
	size_t i;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return -1;
	for (i = 0; i < sizeof(rnd); i++) {
		p->id[2 * i] = hex[rnd[i] >> 4];
		p->id[2 * i + 1] = hex[rnd[i] & 15];
	}
	p->id[SIGNAL_PEER_ID_LEN] = '\0';
	return 0;
}

int signal_peer_init(struct signal_peer *p, void *conn)
{
	memset(p, 0, sizeof(*p));
	p->conn = conn;
	return peer_new_id(p);
}

/* Sends text to p through its own callback, else the rooms' one. */
static void peer_send(const struct signal_rooms *rs, const struct signal_peer *p, const char *text)
{
	(p->send != NULL ? p->send : rs->send)(p->conn, text, strlen(text));
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
			peer_send(rs, m, text);
	free(text);
}

/* Sends {"type":type,"id":id} to the local members of r but skip. */
static void room_notice_id(struct signal_rooms *rs, struct signal_room *r, const struct signal_peer *skip,
			   const char *type, const char *id)
{
	json_t *msg = json_pack("{s:s, s:s}", "type", type, "id", id);

	if (msg == NULL)
		return;
	room_send_all(rs, r, skip, msg);
	json_decref(msg);
}

static void room_notice(struct signal_rooms *rs, struct signal_peer *p, const char *type)
{
	room_notice_id(rs, p->room, p, type, p->id);
}

static void send_error(struct signal_rooms *rs, struct signal_peer *p, const char *reason)
{
	json_t *msg = json_pack("{s:s, s:s}", "type", "error", "reason", reason);
	char *text = msg != NULL ? json_dumps(msg, JSON_COMPACT) : NULL;

	if (text != NULL)
		peer_send(rs, p, text);
	free(text);
	json_decref(msg);
}

/* ---- fleet: events on the room channel ---------------------------------- */

/* Publishes {"s":server,"k":kind,"p":peer} plus, for messages, "to" and
 * "m" on r's channel. Returns 0, or -1 when the bus is down. */
static int bus_event(struct signal_rooms *rs, struct signal_room *r, const char *kind, const char *peer,
		     const char *to, json_t *m)
{
	json_t *ev = json_pack("{s:s, s:s, s:s}", "s", signal_bus_id(rs->bus), "k", kind, "p", peer);
	char *text;
	int rc = -1;

	if (ev == NULL)
		return -1;
	if (to != NULL)
		json_object_set_new(ev, "to", json_string(to));
	if (m != NULL)
		json_object_set(ev, "m", m);
	if ((text = json_dumps(ev, JSON_COMPACT)) != NULL)
		rc = signal_bus_publish(rs->bus, r->name, text);
	free(text);
	json_decref(ev);
	return rc;
}

static struct signal_peer *local_member(struct signal_room *r, const char *id)
{
	for (struct signal_peer *m = r->members; m != NULL; m = m->room_next)
		if (strcmp(m->id, id) == 0)
			return m;
	return NULL;
}

static struct remote_peer **remote_find(struct signal_room *r, const char *id)
{
	struct remote_peer **pp;

	for (pp = &r->remote; *pp != NULL; pp = &(*pp)->next)
		if (strcmp((*pp)->id, id) == 0)
			return pp;
	return NULL;
}

/* A peer of server appeared in r: mirror it and tell the local members. */
static void remote_add(struct signal_rooms *rs, struct signal_room *r, const char *id, const char *server)
{
	struct remote_peer *m;

	if (strlen(id) != SIGNAL_PEER_ID_LEN || strlen(server) != SIGNAL_BUS_ID_LEN || local_member(r, id) != NULL ||
	    remote_find(r, id) != NULL || (m = calloc(1, sizeof(*m))) == NULL)
		return;
	memcpy(m->id, id, SIGNAL_PEER_ID_LEN + 1);
	memcpy(m->server, server, SIGNAL_BUS_ID_LEN + 1);
	m->added = mono_now();
	m->next = r->remote;
	r->remote = m;
	r->nremote++;
	room_notice_id(rs, r, NULL, "peer-joined", id);
}

/* Drops the mirrored peer *pp and tells the local members. */
static void remote_remove(struct signal_rooms *rs, struct signal_room *r, struct remote_peer **pp)
{
	struct remote_peer *m = *pp;

	*pp = m->next;
	r->nremote--;
	room_notice_id(rs, r, NULL, "peer-left", m->id);
	free(m);
}

/* A forwarded message from another server: to one local member or all. */
static void remote_deliver(struct signal_rooms *rs, struct signal_room *r, json_t *ev)
{
	json_t *m = json_object_get(ev, "m"), *to = json_object_get(ev, "to");
	struct signal_peer *dst;
	char *text;

	if (!json_is_object(m))
		return;
	if (to == NULL) {
		room_send_all(rs, r, NULL, m);
		return;
	}
	if (!json_is_string(to) || (dst = local_member(r, json_string_value(to))) == NULL ||
	    (text = json_dumps(m, JSON_COMPACT)) == NULL)
		return;
	peer_send(rs, dst, text);
	free(text);
}

static void on_bus_message(void *arg, const char *room, const char *payload, size_t len)
{
	struct signal_rooms *rs = arg;
	struct signal_room *r = room_find(rs, room);
	json_t *ev, *s, *k, *p;
	struct remote_peer **pp;

	if (r == NULL || (ev = json_loadb(payload, len, 0, NULL)) == NULL)
		return;
	s = json_object_get(ev, "s");
	k = json_object_get(ev, "k");
	p = json_object_get(ev, "p");
	if (!json_is_string(s) || !json_is_string(k) || !json_is_string(p) ||
	    strcmp(json_string_value(s), signal_bus_id(rs->bus)) == 0) {
		json_decref(ev);
		return;
	}
	if (strcmp(json_string_value(k), "join") == 0) {
		remote_add(rs, r, json_string_value(p), json_string_value(s));
	} else if (strcmp(json_string_value(k), "leave") == 0) {
		if ((pp = remote_find(r, json_string_value(p))) != NULL)
			remote_remove(rs, r, pp);
	} else if (strcmp(json_string_value(k), "msg") == 0) {
		remote_deliver(rs, r, ev);
	}
	json_decref(ev);
}

/* ---- fleet: reconciling with the Redis hash, dead servers ---------------- */

static int in_list(const char *const *v, size_t n, const char *s)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return 1;
	return 0;
}

/* The room hash of r as Redis has it: mirror members we missed, drop
 * mirrored ones that are gone (only once every live server has had time to
 * re-register after a Redis restart), re-add our own members if missing
 * and delete our stale entries. */
static void on_reconcile(void *arg, int status, const char *const *peers, const char *const *servers, size_t n)
{
	struct signal_room *r = arg;
	struct signal_rooms *rs = r->rs;
	const char *self = signal_bus_id(rs->bus);
	struct remote_peer **pp;
	size_t i;

	r->reconciling = 0;
	if (status != 0)
		return;
	for (i = 0; i < n; i++) {
		if (strcmp(servers[i], self) != 0)
			remote_add(rs, r, peers[i], servers[i]);
		else if (local_member(r, peers[i]) == NULL && r->npending == 0)
			signal_bus_del_member(rs->bus, r->name, peers[i]); /* left while Redis was away */
	}
	for (struct signal_peer *m = r->members; m != NULL; m = m->room_next)
		if (!in_list(peers, n, m->id))
			signal_bus_set_member(rs->bus, r->name, m->id);
	if (signal_bus_up_for(rs->bus) < rs->ttl + FLEET_GRACE_SEC)
		return; /* after a restart other servers may not have re-registered yet */
	for (pp = &r->remote; *pp != NULL;) {
		if ((*pp)->added < r->reconcile_sent && !in_list(peers, n, (*pp)->id))
			remote_remove(rs, r, pp);
		else
			pp = &(*pp)->next;
	}
}

/* A server whose liveness key expired is dead: its peers leave every room. */
static void on_alive(void *arg, const char *server, int alive)
{
	struct signal_rooms *rs = arg;
	struct remote_peer **pp;
	size_t i, gone = 0;

	if (alive != 0 || signal_bus_up_for(rs->bus) < rs->ttl + FLEET_GRACE_SEC)
		return;
	for (i = 0; i < ROOM_BUCKETS; i++) {
		for (struct signal_room *r = rs->bucket[i]; r != NULL; r = r->next) {
			for (pp = &r->remote; *pp != NULL;) {
				if (strcmp((*pp)->server, server) == 0) {
					signal_bus_del_member(rs->bus, r->name, (*pp)->id);
					remote_remove(rs, r, pp);
					gone++;
				} else {
					pp = &(*pp)->next;
				}
			}
		}
	}
	if (gone > 0)
		log_info("signaling: fleet server %s is gone (no liveness key): %zu of its peers left", server, gone);
}

/* Every ttl/3 s while Redis is up: reconcile each room, check the servers
 * our rooms' remote peers are on. */
static void on_bus_tick(void *arg)
{
	struct signal_rooms *rs = arg;
	char servers[MAX_SERVERS_CHECKED][SIGNAL_BUS_ID_LEN + 1];
	size_t i, k, ns = 0;

	for (i = 0; i < ROOM_BUCKETS; i++) {
		for (struct signal_room *r = rs->bucket[i]; r != NULL; r = r->next) {
			if (!r->reconciling && signal_bus_members(rs->bus, r->name, on_reconcile, r) == 0) {
				r->reconciling = 1;
				r->reconcile_sent = mono_now();
			}
			for (struct remote_peer *m = r->remote; m != NULL; m = m->next) {
				for (k = 0; k < ns && strcmp(servers[k], m->server) != 0; k++)
					;
				if (k == ns && ns < MAX_SERVERS_CHECKED)
					memcpy(servers[ns++], m->server, SIGNAL_BUS_ID_LEN + 1);
			}
		}
	}
	for (k = 0; k < ns; k++)
		signal_bus_alive(rs->bus, servers[k], on_alive, rs);
}

/* Redis is (back) up: resubscribe every room and re-register its members
 * (a restarted Redis has lost them); the next tick reconciles. */
static void on_bus_up(void *arg)
{
	struct signal_rooms *rs = arg;
	size_t i;

	for (i = 0; i < ROOM_BUCKETS; i++) {
		for (struct signal_room *r = rs->bucket[i]; r != NULL; r = r->next) {
			r->subscribed = signal_bus_subscribe(rs->bus, r->name) == 0;
			for (struct signal_peer *m = r->members; m != NULL; m = m->room_next) {
				m->registered = signal_bus_set_member(rs->bus, r->name, m->id) == 0;
				if (m->registered)
					bus_event(rs, r, "join", m->id, NULL, NULL);
			}
		}
	}
}

static void on_bus_down(void *arg)
{
	struct signal_rooms *rs = arg;
	size_t i;

	for (i = 0; i < ROOM_BUCKETS; i++)
		for (struct signal_room *r = rs->bucket[i]; r != NULL; r = r->next) {
			r->subscribed = 0;
			r->reconciling = 0; /* its callback reports the failure (or was cancelled) */
		}
}

int signal_rooms_fleet(struct signal_rooms *rs, struct event_base *base, const char *conninfo, int ttl, char *err,
		       size_t errlen)
{
	static const struct signal_bus_cbs cbs = {
		.up = on_bus_up, .down = on_bus_down, .tick = on_bus_tick, .message = on_bus_message,
	};

	rs->ttl = ttl;
	rs->bus = signal_bus_new(base, conninfo, ttl, &cbs, rs, err, errlen);
	return rs->bus != NULL ? 0 : -1;
}

/* ---- joining and leaving ------------------------------------------------ */

/* p becomes a member of its room: the others hear of it (on every server
 * when registered), and p gets reply with its id and every member's. */
static void join_complete(struct signal_rooms *rs, struct signal_peer *p, json_t *reply)
{
	struct signal_room *r = p->room;
	json_t *ids = json_array();
	char *text;

	for (struct signal_peer *m = r->members; m != NULL; m = m->room_next)
		json_array_append_new(ids, json_string(m->id));
	for (struct remote_peer *m = r->remote; m != NULL; m = m->next)
		json_array_append_new(ids, json_string(m->id));
	p->room_next = r->members;
	r->members = p;
	r->n++;
	room_notice(rs, p, "peer-joined");
	if (rs->bus != NULL && !p->registered && signal_bus_up(rs->bus))
		p->registered = signal_bus_set_member(rs->bus, r->name, p->id) == 0; /* Redis came back meanwhile */
	if (p->registered)
		bus_event(rs, r, "join", p->id, NULL, NULL);
	json_object_set_new(reply, "id", json_string(p->id));
	json_object_set_new(reply, "peers", ids);
	if ((text = json_dumps(reply, JSON_COMPACT)) != NULL)
		peer_send(rs, p, text);
	else
		send_error(rs, p, "server error");
	free(text);
	json_decref(reply);
}

static void room_unlink(struct signal_rooms *rs, struct signal_room *r)
{
	struct signal_room **pp = &rs->bucket[room_hash(r->name)];

	while (*pp != r)
		pp = &(*pp)->next;
	*pp = r->next;
	rs->nrooms--;
	if (rs->bus != NULL) {
		signal_bus_cancel(rs->bus, r);
		if (r->subscribed)
			signal_bus_unsubscribe(rs->bus, r->name);
	}
	remote_free_all(r);
	free(r);
}

static void room_maybe_free(struct signal_rooms *rs, struct signal_room *r)
{
	if (r->n == 0 && r->npending == 0)
		room_unlink(rs, r);
}

static int join_send(struct signal_join *j);

/* Redis answered a fleet join: HSETNX done (status 0) and the room's hash. */
static void on_join(void *arg, int status, const char *const *peers, const char *const *servers, size_t n)
{
	struct signal_join *j = arg;
	struct signal_rooms *rs = j->rs;
	struct signal_peer *p = j->p;
	struct signal_room *r = p->room;
	const char *self = signal_bus_id(rs->bus);
	json_t *reply = j->reply;
	size_t i, others = 0;

	if (status == 1 && ++j->attempts < JOIN_ATTEMPTS && peer_new_id(p) == 0 && join_send(j) == 0)
		return; /* the id is in use on another server: try another */
	j->reply = NULL;
	join_free(j);
	r->npending--;
	if (status == 0) {
		for (i = 0; i < n; i++)
			if (strcmp(peers[i], p->id) != 0 && (strcmp(servers[i], self) != 0 || local_member(r, peers[i])))
				others++;
		if (others + 1 > rs->room_size) {
			signal_bus_del_member(rs->bus, r->name, p->id);
			json_decref(reply);
			p->room = NULL;
			room_maybe_free(rs, r);
			send_error(rs, p, "room full");
			return;
		}
		for (i = 0; i < n; i++)
			if (strcmp(servers[i], self) != 0)
				remote_add(rs, r, peers[i], servers[i]);
		p->registered = 1;
	} else if (status == 1) {
		json_decref(reply);
		p->room = NULL;
		room_maybe_free(rs, r);
		send_error(rs, p, "server error");
		return;
	}
	join_complete(rs, p, reply); /* status -1: Redis away, a local member for now */
}

static int join_send(struct signal_join *j)
{
	return signal_bus_join(j->rs->bus, j->p->room->name, j->p->id, on_join, j);
}

/* Fleet join with Redis up: wait for HSETNX + HGETALL. Returns 0 when
 * under way, -1 when it could not start (then join locally). */
static int join_fleet(struct signal_rooms *rs, struct signal_peer *p, json_t *reply)
{
	struct signal_join *j = calloc(1, sizeof(*j));

	if (j == NULL)
		return -1;
	j->rs = rs;
	j->p = p;
	j->reply = reply;
	if (!p->room->subscribed)
		p->room->subscribed = signal_bus_subscribe(rs->bus, p->room->name) == 0;
	if (join_send(j) < 0) {
		free(j);
		return -1;
	}
	p->joining = j;
	p->room->npending++;
	return 0;
}

int signal_rooms_join(struct signal_rooms *rs, struct signal_peer *p, const char *name, json_t *reply)
{
	size_t h = room_hash(name);
	struct signal_room *r = room_find(rs, name);

	if (r != NULL && r->n + r->npending + r->nremote >= rs->room_size) {
		json_decref(reply);
		return -1;
	}
	if (r == NULL && rs->max_rooms > 0 && rs->nrooms >= rs->max_rooms) {
		json_decref(reply);
		return -3;
	}
	if (r == NULL) {
		if ((r = calloc(1, sizeof(*r))) == NULL) {
			json_decref(reply);
			return -2;
		}
		snprintf(r->name, sizeof(r->name), "%s", name);
		r->rs = rs;
		r->next = rs->bucket[h];
		rs->bucket[h] = r;
		rs->nrooms++;
	}
	p->room = r;
	p->registered = 0;
	if (rs->bus != NULL && signal_bus_up(rs->bus) && join_fleet(rs, p, reply) == 0)
		return 0;
	join_complete(rs, p, reply);
	return 0;
}

void signal_rooms_leave(struct signal_rooms *rs, struct signal_peer *p)
{
	struct signal_room *r = p->room;
	struct signal_peer **pp;

	if (r == NULL)
		return;
	if (p->joining != NULL) {
		signal_bus_cancel(rs->bus, p->joining);
		join_free(p->joining);
		r->npending--;
		signal_bus_del_member(rs->bus, r->name, p->id); /* HSETNX may have been done */
	} else {
		for (pp = &r->members; *pp != NULL; pp = &(*pp)->room_next) {
			if (*pp == p) {
				*pp = p->room_next;
				r->n--;
				break;
			}
		}
		room_notice(rs, p, "peer-left");
		if (p->registered && signal_bus_del_member(rs->bus, r->name, p->id) == 0)
			bus_event(rs, r, "leave", p->id, NULL, NULL);
	}
	p->room = NULL;
	p->room_next = NULL;
	p->registered = 0;
	room_maybe_free(rs, r);
}

/* ---- forwarding --------------------------------------------------------- */

int signal_rooms_forward(struct signal_rooms *rs, struct signal_peer *p, json_t *msg)
{
	json_t *to = json_object_get(msg, "to");
	struct signal_peer *m = NULL;
	struct signal_room *r = p->room;
	char *text;

	if (r == NULL || p->joining != NULL)
		return -2;
	if (to != NULL) {
		if (!json_is_string(to))
			return -1;
		for (m = r->members; m != NULL; m = m->room_next)
			if (m != p && strcmp(m->id, json_string_value(to)) == 0)
				break;
		if (m == NULL && remote_find(r, json_string_value(to)) == NULL)
			return -1;
	}
	if (json_object_set_new(msg, "from", json_string(p->id)) < 0)
		return -3;
	if (to != NULL && m == NULL) /* a member on another server */
		return bus_event(rs, r, "msg", p->id, json_string_value(to), msg) == 0 ? 0 : -4;
	if (m == NULL) {
		room_send_all(rs, r, p, msg);
		if (r->nremote > 0 && bus_event(rs, r, "msg", p->id, NULL, msg) < 0)
			return -4;
		return 0;
	}
	if ((text = json_dumps(msg, JSON_COMPACT)) == NULL)
		return -3;
	peer_send(rs, m, text);
	free(text);
	return 0;
}

size_t signal_rooms_count(const struct signal_rooms *rs)
{
	return rs->nrooms;
}
