/* signal_eio.h -- Engine.IO protocol v4 framing for the socket.io endpoint
 * (docs/signaling.md, "socket.io"): the request query (EIO, transport,
 * sid), the open packet, and HTTP long-polling payloads (packets separated
 * by the record separator 0x1e). Only text packets: binary ones ("b"
 * base64 on polling, binary frames on WebSocket) are not used by the
 * subset we serve.
 *
 * Pure: strings in, results out; no sockets (unit-tested by
 * tests/unit/test_signal_eio.c).
 */
#ifndef TURNSTONE_SIGNAL_EIO_H
#define TURNSTONE_SIGNAL_EIO_H

#include <stddef.h>

#define SIGNAL_EIO_SID_LEN 32   /* hex characters: 128 random bits */
#define SIGNAL_EIO_SEP '\x1e'   /* between packets of a polling payload */

/* Engine.IO packet types, the first character of a packet. */
enum signal_eio_type {
	SIGNAL_EIO_OPEN = '0',
	SIGNAL_EIO_CLOSE = '1',
	SIGNAL_EIO_PING = '2',
	SIGNAL_EIO_PONG = '3',
	SIGNAL_EIO_MESSAGE = '4',
	SIGNAL_EIO_UPGRADE = '5',
	SIGNAL_EIO_NOOP = '6',
};

enum signal_eio_transport { SIGNAL_EIO_POLLING = 1, SIGNAL_EIO_WEBSOCKET };

/* The query parameters of an Engine.IO request. */
struct signal_eio_query {
	enum signal_eio_transport transport;
	char sid[SIGNAL_EIO_SID_LEN + 1];  /* "" when absent */
};

/* 1 when the path of target ("/socket.io/?EIO=4...") is /socket.io/ (or
 * /socket.io without the slash), else 0. */
int signal_eio_is_path(const char *target);

/* Reads EIO, transport and sid from target into q. Returns 0, or -1 with
 * *why set when EIO is not 4 ("unsupported protocol version"), the
 * transport is missing or unknown, or sid is malformed (any of these is an
 * HTTP 400). */
int signal_eio_query_parse(const char *target, struct signal_eio_query *q, const char **why);

/* Writes the open packet '0' and its JSON handshake (sid, upgrades:
 * ["websocket"] when upgrade is set else [], pingInterval and pingTimeout
 * in milliseconds, maxPayload in bytes) into out[0..outlen) with a NUL.
 * Returns its length, or -1 when it does not fit. */
int signal_eio_open_packet(char *out, size_t outlen, const char *sid, int upgrade, int ping_interval_ms,
			   int ping_timeout_ms, size_t max_payload);

/* Iterates over the packets of a polling payload buf[0..len): sets *pkt and
 * *pktlen to the packet at *pos and moves *pos past it and its separator.
 * Returns 1 while there is a packet, 0 at the end. An empty payload has no
 * packets; empty packets between separators are returned (and refused by
 * the caller as malformed). */
int signal_eio_payload_next(const char *buf, size_t len, size_t *pos, const char **pkt, size_t *pktlen);

/* Fills sid with SIGNAL_EIO_SID_LEN random hex digits (RAND_bytes) and a
 * NUL. Returns 0, or -1 when the random generator fails. */
int signal_eio_sid_new(char sid[SIGNAL_EIO_SID_LEN + 1]);

/* The hash bucket of sid among nbuckets (a power of two): its first hex
 * digits, which are random. */
size_t signal_eio_sid_hash(const char *sid, size_t nbuckets);

#endif
