/* signal_http.h -- the small HTTP/1.1 side of the signaling endpoint: a
 * bounded request-head parser (RFC 9112 §2-§5: request line and header
 * fields, no bodies), static files from the page directory, and the
 * WebSocket opening handshake checks (RFC 6455 §4.2.1, §4.2.2).
 *
 * libevent 2.1's evhttp cannot hand a connection over to a WebSocket, so the
 * server reads the head itself and calls these. Pure: strings and buffers
 * in, results out; no sockets.
 */
#ifndef TURNSTONE_SIGNAL_HTTP_H
#define TURNSTONE_SIGNAL_HTTP_H

#include <stddef.h>

#define SIGNAL_HTTP_MAX_HEAD 8192   /* bytes of request line + headers, else 431 */
#define SIGNAL_HTTP_MAX_HEADERS 64  /* header fields, else 431 */

struct signal_http_header {
	const char *name;   /* NUL-terminated, points into the request's buf */
	const char *value;  /* leading/trailing blanks removed */
};

/* A parsed request head. Every string points into buf. */
struct signal_http_req {
	char buf[SIGNAL_HTTP_MAX_HEAD + 1];
	const char *method;
	const char *target;              /* origin-form, e.g. "/index.html?x" */
	int version_minor;               /* HTTP/1.<minor> */
	struct signal_http_header hdr[SIGNAL_HTTP_MAX_HEADERS];
	size_t nhdr;
};

/* Parses the len bytes of head (request line, header lines, each ending in
 * CRLF or LF, without the final empty line) into r. Returns 0, or the HTTP
 * status to answer with: 400 (malformed), 431 (longer than
 * SIGNAL_HTTP_MAX_HEAD or more than SIGNAL_HTTP_MAX_HEADERS fields), 505
 * (not HTTP/1.x). */
int signal_http_parse(const char *head, size_t len, struct signal_http_req *r);

/* The value of the first header field called name (case-insensitive), or NULL. */
const char *signal_http_header(const struct signal_http_req *r, const char *name);

/* 1 when the comma-separated list value contains token (case-insensitive),
 * e.g. Connection: keep-alive, Upgrade. 0 otherwise or when value is NULL. */
int signal_http_has_token(const char *value, const char *token);

/* Checks the WebSocket upgrade headers of r (RFC 6455 §4.2.1): GET,
 * HTTP/1.1 or later, Upgrade: websocket, Connection: upgrade, a
 * Sec-WebSocket-Key that is base64 of 16 bytes, Sec-WebSocket-Version 13,
 * and, when norigins > 0, an Origin equal (case-insensitive) to one of
 * origins. On success writes the Sec-WebSocket-Accept value
 * (base64(SHA-1(key GUID)), 28 characters and a NUL) to accept and returns
 * 0; otherwise returns the status to answer with: 400, 403 (origin), 426
 * (version: answer with "Sec-WebSocket-Version: 13"). */
int signal_http_ws_check(const struct signal_http_req *r, char *const *origins, size_t norigins,
			 char accept[29]);

/* 1 when origin equals (case-insensitive) one of origins[0..norigins). */
int signal_http_origin_allowed(const char *origin, char *const *origins, size_t norigins);

/* Finds the query parameter name in target ("/p?a=1&name=v"), decodes it as
 * application/x-www-form-urlencoded ("+" is a space, %XX a byte) into
 * out[0..outlen) with a NUL. Returns 1 when found, 0 when absent, -1 when
 * its value is badly escaped, holds a NUL byte or does not fit. */
int signal_http_query_param(const char *target, const char *name, char *out, size_t outlen);

/* The credentials of an "Authorization: Bearer TOKEN" header (RFC 6750
 * §2.1; the scheme is case-insensitive), pointing into r, or NULL. */
const char *signal_http_bearer(const struct signal_http_req *r);

/* 1 when the JSON text[0..len) nests arrays and objects deeper than max
 * (brackets inside strings do not count), else 0. jansson has no run-time
 * depth limit, so the server checks the text before parsing it; the scan
 * is linear and needs no memory. Malformed text is left to the parser. */
int signal_json_too_deep(const char *text, size_t len, int max);

/* 1 when r asks for a WebSocket upgrade at all (Upgrade: websocket). */
int signal_http_wants_ws(const struct signal_http_req *r);

/* Maps the request target to a file under root: "/" is "/index.html", the
 * query is dropped, and only targets made of [A-Za-z0-9._-/] without a ".."
 * or "." segment and with a known extension (.html .js .css .svg .png .ico
 * .json .txt) are accepted. Writes the path into path[0..pathlen) and
 * returns the Content-Type to send, or NULL (answer 404). Pure: does not
 * look at the file system. */
const char *signal_http_map_file(const char *root, const char *target, char *path, size_t pathlen);

/* The reason phrase of a status code ("Not Found"), "" for unknown ones. */
const char *signal_http_reason(int status);

#endif
