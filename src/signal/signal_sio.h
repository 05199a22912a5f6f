/* signal_sio.h -- Socket.IO protocol v5 packets for the socket.io endpoint
 * (docs/signaling.md, "socket.io"): parsing a packet carried in an
 * Engine.IO message, encoding one, and mapping an EVENT's arguments to the
 * room module's message (a JSON object with "type") and back.
 *
 * The mapping: an event whose only argument is an object without "type"
 * and "args" members becomes that object with "type" set to the event name
 * (its fields merged); any other event becomes {"type": name, "args":
 * [arguments]}, with "to" copied from the first argument when that is an
 * object with a string "to" so the room can route it. Back: a message with
 * an "args" array becomes the event [type, ...args] with "from" set in the
 * first argument when it is an object; any other message becomes
 * [type, {the message without "type"}].
 *
 * Pure: jansson in, jansson or text out (tests/unit/test_signal_sio.c).
 */
#ifndef TURNSTONE_SIGNAL_SIO_H
#define TURNSTONE_SIGNAL_SIO_H

#include <jansson.h>
#include <stddef.h>

#define SIGNAL_SIO_NSP_MAX 64     /* bytes of a namespace name */
#define SIGNAL_SIO_EVENT_MAX 64   /* bytes of an event name */

enum signal_sio_type {
	SIGNAL_SIO_CONNECT = 0,
	SIGNAL_SIO_DISCONNECT = 1,
	SIGNAL_SIO_EVENT = 2,
	SIGNAL_SIO_ACK = 3,
	SIGNAL_SIO_CONNECT_ERROR = 4,
	SIGNAL_SIO_BINARY_EVENT = 5,
	SIGNAL_SIO_BINARY_ACK = 6,
};

/* A parsed packet. */
struct signal_sio_pkt {
	enum signal_sio_type type;
	char nsp[SIGNAL_SIO_NSP_MAX + 1];  /* "/" when absent */
	long long ack;                     /* ack id, -1 when absent */
	json_t *data;                      /* owned; NULL when absent */
};

/* Parses the Socket.IO packet text[0..len) (without the Engine.IO '4')
 * into p: type, binary attachment count (skipped), namespace, ack id and
 * JSON data nested at most max_depth deep. Returns 0 (free p->data with
 * json_decref), or -1 with *why set when malformed. Binary packets parse
 * (the caller refuses them); their data is not read. */
int signal_sio_parse(const char *text, size_t len, int max_depth, struct signal_sio_pkt *p, const char **why);

/* Encodes an Engine.IO message packet holding the Socket.IO packet type,
 * namespace nsp (NULL or "/" for the main one), ack id (-1: none) and data
 * (NULL: none): "4<type>[<nsp>,][<ack>][<json>]". Returns a malloc'ed NUL
 * terminated string, or NULL on no memory. */
char *signal_sio_encode(enum signal_sio_type type, const char *nsp, long long ack, const json_t *data);

/* Maps the EVENT arguments args (a JSON array: name, then arguments) to a
 * new room message (see above). Returns a new reference, or NULL with *why
 * set when args is not an array starting with a name of 1 to
 * SIGNAL_SIO_EVENT_MAX bytes, or on no memory. */
json_t *signal_sio_to_room(const json_t *args, const char **why);

/* Maps the room message msg (an object with a string "type") to a new
 * EVENT argument array (see above), or NULL when msg has no type or on no
 * memory. */
json_t *signal_sio_from_room(const json_t *msg);

#endif
