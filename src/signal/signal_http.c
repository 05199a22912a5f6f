/* signal_http.c -- request-head parsing, static file mapping and the
 * WebSocket opening handshake of the signaling endpoint (RFC 9112 §2-§5,
 * RFC 6455 §4.2). */
#include "signal/signal_http.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" /* RFC 6455 §1.3 */

static int is_tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		*--e = '\0';
	return s;
}

/* Splits buf at the next line end (CRLF or LF), NUL-terminating the line.
 * Returns the start of the next line, or NULL at the end of buf. */
static char *next_line(char *line)
{
	char *nl = strchr(line, '\n');

	if (nl == NULL)
		return NULL;
	*nl = '\0';
	if (nl > line && nl[-1] == '\r')
		nl[-1] = '\0';
	return nl + 1;
}

static int parse_request_line(char *line, struct signal_http_req *r)
{
	char *sp1 = strchr(line, ' '), *sp2, *v;
	const char *p;

	if (sp1 == NULL || (sp2 = strchr(sp1 + 1, ' ')) == NULL)
		return 400;
	*sp1 = '\0';
	*sp2 = '\0';
	r->method = line;
	r->target = sp1 + 1;
	v = sp2 + 1;
	for (p = r->method; *p != '\0'; p++)
		if (!is_tchar((unsigned char)*p))
			return 400;
	if (r->method[0] == '\0' || r->target[0] != '/' || strchr(r->target, ' ') != NULL)
		return 400;
	if (strncmp(v, "HTTP/", 5) != 0)
		return 400;
	if (strncmp(v + 5, "1.", 2) != 0 || v[7] < '0' || v[7] > '9' || v[8] != '\0')
		return 505;
	r->version_minor = v[7] - '0';
	return 0;
}

int signal_http_parse(const char *head, size_t len, struct signal_http_req *r)
{
	char *line, *next, *colon;
	int rc;

	memset(r, 0, sizeof(*r));
	if (len > SIGNAL_HTTP_MAX_HEAD)
		return 431;
	if (memchr(head, '\0', len) != NULL)
		return 400;
	memcpy(r->buf, head, len);
	r->buf[len] = '\0';
	line = r->buf;
	next = next_line(line);
	if ((rc = parse_request_line(line, r)) != 0)
		return rc;
	for (line = next; line != NULL && *line != '\0'; line = next) {
		next = next_line(line);
		if (*line == ' ' || *line == '\t')
			return 400; /* obsolete line folding (RFC 9112 §5.2) */
		if ((colon = strchr(line, ':')) == NULL || colon == line)
			return 400;
		*colon = '\0';
		for (const char *p = line; *p != '\0'; p++)
			if (!is_tchar((unsigned char)*p))
				return 400;
		if (r->nhdr == SIGNAL_HTTP_MAX_HEADERS)
			return 431;
		r->hdr[r->nhdr].name = line;
		r->hdr[r->nhdr].value = trim(colon + 1);
		r->nhdr++;
	}
	return 0;
}

const char *signal_http_header(const struct signal_http_req *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->nhdr; i++)
		if (strcasecmp(r->hdr[i].name, name) == 0)
			return r->hdr[i].value;
	return NULL;
}

int signal_http_has_token(const char *value, const char *token)
{
	size_t tlen = strlen(token);
	const char *p = value;

	while (p != NULL && *p != '\0') {
		const char *end = strchr(p, ',');
		size_t n = end != NULL ? (size_t)(end - p) : strlen(p);

		while (n > 0 && (*p == ' ' || *p == '\t'))
			p++, n--;
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == tlen && strncasecmp(p, token, tlen) == 0)
			return 1;
		p = end != NULL ? end + 1 : NULL;
	}
	return 0;
}

int signal_http_wants_ws(const struct signal_http_req *r)
{
	return signal_http_has_token(signal_http_header(r, "Upgrade"), "websocket");
}

/* 1 when key is base64 of exactly 16 bytes (24 characters, "==" at the end). */
static int ws_key_valid(const char *key)
{
	unsigned char out[24];
	size_t i;

	if (strlen(key) != 24 || strcmp(key + 22, "==") != 0)
		return 0;
	for (i = 0; i < 22; i++)
		if (!(key[i] >= 'A' && key[i] <= 'Z') && !(key[i] >= 'a' && key[i] <= 'z') &&
		    !(key[i] >= '0' && key[i] <= '9') && key[i] != '+' && key[i] != '/')
			return 0;
	return EVP_DecodeBlock(out, (const unsigned char *)key, 24) == 18;
}

int signal_http_origin_allowed(const char *origin, char *const *origins, size_t norigins)
{
	size_t i;

	for (i = 0; i < norigins; i++)
		if (strcasecmp(origin, origins[i]) == 0)
			return 1;
	return 0;
}

int signal_http_ws_check(const struct signal_http_req *r, char *const *origins, size_t norigins,
			 char accept[29])
{
	const char *key = signal_http_header(r, "Sec-WebSocket-Key");
	const char *ver = signal_http_header(r, "Sec-WebSocket-Version");
	const char *origin = signal_http_header(r, "Origin");
	unsigned char md[SHA_DIGEST_LENGTH];
	char cat[64 + sizeof(WS_GUID)];

	if (strcmp(r->method, "GET") != 0 || r->version_minor < 1 || !signal_http_wants_ws(r) ||
	    !signal_http_has_token(signal_http_header(r, "Connection"), "upgrade"))
		return 400;
	if (ver == NULL || strcmp(ver, "13") != 0)
		return 426;
	if (key == NULL || !ws_key_valid(key))
		return 400;
	if (norigins > 0 && (origin == NULL || !signal_http_origin_allowed(origin, origins, norigins)))
		return 403;
	snprintf(cat, sizeof(cat), "%s%s", key, WS_GUID);
	SHA1((const unsigned char *)cat, strlen(cat), md);
	EVP_EncodeBlock((unsigned char *)accept, md, sizeof(md));
	return 0;
}

static const struct {
	const char *ext, *type;
} mime_types[] = {
	{".html", "text/html; charset=utf-8"},
	{".js", "text/javascript; charset=utf-8"},
	{".mjs", "text/javascript; charset=utf-8"},
	{".css", "text/css; charset=utf-8"},
	{".json", "application/json"},
	{".svg", "image/svg+xml"},
	{".png", "image/png"},
	{".ico", "image/x-icon"},
	{".txt", "text/plain; charset=utf-8"},
};

const char *signal_http_map_file(const char *root, const char *target, char *path, size_t pathlen)
{
	char rel[512];
	size_t n = strcspn(target, "?#"), i;
	const char *dot, *seg;

	if (n == 0 || target[0] != '/' || n >= sizeof(rel))
		return NULL;
	memcpy(rel, target, n);
	rel[n] = '\0';
	if (strcmp(rel, "/") == 0)
		snprintf(rel, sizeof(rel), "/index.html");
	for (i = 0; rel[i] != '\0'; i++) {
		char c = rel[i];

		if (!(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') && !(c >= '0' && c <= '9') &&
		    c != '.' && c != '_' && c != '-' && c != '/')
			return NULL;
	}
	/* Every segment must be a name: no "", ".", ".." and no hidden files. */
	for (seg = rel; seg != NULL; seg = strchr(seg + 1, '/'))
		if (seg[1] == '/' || seg[1] == '\0' || seg[1] == '.')
			return NULL;
	if ((dot = strrchr(rel, '.')) == NULL || strchr(dot, '/') != NULL)
		return NULL;
	for (i = 0; i < sizeof(mime_types) / sizeof(mime_types[0]); i++) {
		if (strcmp(dot, mime_types[i].ext) == 0) {
			int w = snprintf(path, pathlen, "%s%s", root, rel);

			return w > 0 && (size_t)w < pathlen ? mime_types[i].type : NULL;
		}
	}
	return NULL;
}

const char *signal_http_reason(int status)
{
	switch (status) {
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 426: return "Upgrade Required";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "";
	}
}

static int hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes the form-encoded value s[0..len) ("+" is a space, %XX a byte)
 * into out. Returns 0, or -1 for a bad escape, a NUL byte or no room. */
static int form_decode(const char *s, size_t len, char *out, size_t outlen)
{
	size_t i, o = 0;

	for (i = 0; i < len; i++) {
		int c = (unsigned char)s[i];

		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			int hi, lo;

			if (i + 2 >= len || (hi = hex_val(s[i + 1])) < 0 || (lo = hex_val(s[i + 2])) < 0)
				return -1;
			c = hi * 16 + lo;
			i += 2;
		}
		if (c == 0 || o + 1 >= outlen)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

int signal_http_query_param(const char *target, const char *name, char *out, size_t outlen)
{
	const char *end = target + strcspn(target, "#"), *p;
	const char *q = memchr(target, '?', (size_t)(end - target));
	size_t nlen = strlen(name);

	if (q == NULL)
		return 0;
	for (p = q + 1; p < end;) {
		size_t plen = strcspn(p, "&#");

		if (p + plen > end)
			plen = (size_t)(end - p);
		if (plen > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=')
			return form_decode(p + nlen + 1, plen - nlen - 1, out, outlen) < 0 ? -1 : 1;
		p += plen + 1;
	}
	return 0;
}

const char *signal_http_bearer(const struct signal_http_req *r)
{
	const char *v = signal_http_header(r, "Authorization");

	if (v == NULL || strncasecmp(v, "Bearer ", 7) != 0)
		return NULL;
	for (v += 7; *v == ' '; v++)
		;
	return *v != '\0' ? v : NULL;
}

int signal_json_too_deep(const char *text, size_t len, int max)
{
	size_t i;
	int depth = 0, in_str = 0;

	for (i = 0; i < len; i++) {
		char c = text[i];

		if (in_str) {
			if (c == '\\')
				i++; /* skip the escaped character */
			else if (c == '"')
				in_str = 0;
		} else if (c == '"') {
			in_str = 1;
		} else if (c == '[' || c == '{') {
			if (++depth > max)
				return 1;
		} else if ((c == ']' || c == '}') && depth > 0) {
			depth--;
		}
	}
	return 0;
}
