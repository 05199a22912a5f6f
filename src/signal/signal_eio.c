/* signal_eio.c -- Engine.IO protocol v4 framing: the request query, the
 * open packet and polling payloads (see signal_eio.h). */
#include "signal/signal_eio.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "signal/signal_http.h"

int signal_eio_is_path(const char *target)
{
	size_t plen = strcspn(target, "?");

	return (plen == 11 && strncmp(target, "/socket.io/", 11) == 0) ||
	       (plen == 10 && strncmp(target, "/socket.io", 10) == 0);
}

static int is_hex_sid(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return i == SIGNAL_EIO_SID_LEN;
}

int signal_eio_query_parse(const char *target, struct signal_eio_query *q, const char **why)
{
	char v[64];
	int rc;

	memset(q, 0, sizeof(*q));
	if (signal_http_query_param(target, "EIO", v, sizeof(v)) != 1 || strcmp(v, "4") != 0) {
		*why = "unsupported protocol version";
		return -1;
	}
	if (signal_http_query_param(target, "transport", v, sizeof(v)) != 1) {
		*why = "transport unknown";
		return -1;
	}
	if (strcmp(v, "polling") == 0) {
		q->transport = SIGNAL_EIO_POLLING;
	} else if (strcmp(v, "websocket") == 0) {
		q->transport = SIGNAL_EIO_WEBSOCKET;
	} else {
		*why = "transport unknown";
		return -1;
	}
	rc = signal_http_query_param(target, "sid", v, sizeof(v));
	if (rc < 0 || (rc == 1 && !is_hex_sid(v))) {
		*why = "session ID unknown";
		return -1;
	}
	if (rc == 1)
		memcpy(q->sid, v, SIGNAL_EIO_SID_LEN + 1);
	return 0;
}

int signal_eio_open_packet(char *out, size_t outlen, const char *sid, int upgrade, int ping_interval_ms,
			   int ping_timeout_ms, size_t max_payload)
{
	int n = snprintf(out, outlen,
			 "%c{\"sid\":\"%s\",\"upgrades\":[%s],\"pingInterval\":%d,\"pingTimeout\":%d,"
			 "\"maxPayload\":%zu}",
			 SIGNAL_EIO_OPEN, sid, upgrade ? "\"websocket\"" : "", ping_interval_ms, ping_timeout_ms,
			 max_payload);

	return n < 0 || (size_t)n >= outlen ? -1 : n;
}

int signal_eio_payload_next(const char *buf, size_t len, size_t *pos, const char **pkt, size_t *pktlen)
{
	const char *start, *sep;

	if (*pos > len || (*pos == len && (len == 0 || buf[len - 1] != SIGNAL_EIO_SEP)))
		return 0;
	if (*pos == len) {
		/* a trailing separator: one last empty packet */
		*pkt = buf + len;
		*pktlen = 0;
		*pos = len + 1;
		return 1;
	}
	start = buf + *pos;
	sep = memchr(start, SIGNAL_EIO_SEP, len - *pos);
	*pkt = start;
	*pktlen = sep != NULL ? (size_t)(sep - start) : len - *pos;
	*pos += *pktlen + (sep != NULL ? 1 : 0);
	return 1;
}

int signal_eio_sid_new(char sid[SIGNAL_EIO_SID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char r[SIGNAL_EIO_SID_LEN / 2];
	size_t i;

	if (RAND_bytes(r, sizeof(r)) != 1)
		return -1;
	for (i = 0; i < sizeof(r); i++) {
		sid[2 * i] = hex[r[i] >> 4];
		sid[2 * i + 1] = hex[r[i] & 15];
	}
	sid[SIGNAL_EIO_SID_LEN] = '\0';
	return 0;
}

size_t signal_eio_sid_hash(const char *sid, size_t nbuckets)
{
	size_t h = 0;
	int i;

	for (i = 0; i < 8 && sid[i] != '\0'; i++)
		h = (h << 4) | (size_t)(sid[i] <= '9' ? sid[i] - '0' : sid[i] - 'a' + 10);
	return h & (nbuckets - 1);
}
