/* admin_client.h -- a small blocking HTTP/1.0 client for turnstone-admin to
 * talk to the server's admin listener (GET /sessions, POST /drain). Plain
 * sockets, no TLS: the listener is meant for loopback or a private network. */
#ifndef TURNSTONE_ADMIN_CLIENT_H
#define TURNSTONE_ADMIN_CLIENT_H

#include <stddef.h>

/* Sends "METHOD path" to base_url ("http://HOST:PORT", HOST an IP, a name,
 * or "[v6]"; a trailing "/" is allowed) and waits at most timeout seconds for
 * each step. On success returns 0 with *status the HTTP status and *body a
 * malloc'd, NUL-terminated body of *len bytes (the caller frees it).
 * Returns -1 with a message in err (errlen bytes) on a bad URL, a connection
 * failure, a timeout or a malformed answer. */
int admin_client_request(const char *base_url, const char *method, const char *path, int timeout, int *status,
			 char **body, size_t *len, char *err, size_t errlen);

#endif
