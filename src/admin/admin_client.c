/* admin_client.c -- blocking HTTP/1.0 requests to the admin listener. */
#include "admin/admin_client.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define MAX_ANSWER (64 << 20) /* bytes: /sessions of a very busy server */

/* Splits "http://HOST:PORT[/]" into host and port. Returns 0 or -1. */
static int parse_url(const char *url, char *host, size_t hostcap, char *port, size_t portcap)
{
	const char *p, *end, *colon;
	size_t n;

	if (strncmp(url, "http://", 7) != 0)
		return -1;
	p = url + 7;
	if (*p == '[') {
		if ((end = strchr(p, ']')) == NULL || end[1] != ':')
			return -1;
		n = (size_t)(end - p - 1);
		if (n == 0 || n >= hostcap)
			return -1;
		memcpy(host, p + 1, n);
		colon = end + 1;
	} else {
		if ((colon = strchr(p, ':')) == NULL || colon == p || (size_t)(colon - p) >= hostcap)
			return -1;
		n = (size_t)(colon - p);
		memcpy(host, p, n);
	}
	host[n] = '\0';
	p = colon + 1;
	n = strcspn(p, "/");
	if (n == 0 || n >= portcap || strspn(p, "0123456789") != n || (p[n] != '\0' && strcmp(p + n, "/") != 0))
		return -1;
	memcpy(port, p, n);
	port[n] = '\0';
	return 0;
}

static int connect_to(const char *host, const char *port, int timeout, char *err, size_t errlen)
{
	struct addrinfo hints, *res, *ai;
	struct timeval tv = { timeout, 0 };
	int fd = -1, rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
		snprintf(err, errlen, "%s: %s", host, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if ((fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol)) < 0)
			continue;
		/* SO_SNDTIMEO also bounds connect() on Linux. */
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		rc = errno;
		close(fd);
		fd = -1;
		errno = rc;
	}
	if (fd < 0)
		snprintf(err, errlen, "cannot connect to %s port %s: %s", host, port, strerror(errno));
	freeaddrinfo(res);
	return fd;
}

/* Reads until EOF into a malloc'd buffer. Returns its length or -1. */
static ssize_t read_all(int fd, char **out)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap + 1), *nb;
	ssize_t n;

	if (buf == NULL)
		return -1;
	for (;;) {
		if (len == cap) {
			if (cap >= MAX_ANSWER || (nb = realloc(buf, cap * 2 + 1)) == NULL) {
				free(buf);
				return -1;
			}
			buf = nb;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(buf);
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*out = buf;
	return (ssize_t)len;
}

int admin_client_request(const char *base_url, const char *method, const char *path, int timeout, int *status,
			 char **body, size_t *len, char *err, size_t errlen)
{
	char host[256], port[16], req[512], *ans = NULL, *hdr_end;
	ssize_t n;
	int fd, code;

	if (parse_url(base_url, host, sizeof(host), port, sizeof(port)) < 0) {
		snprintf(err, errlen, "admin URL '%s' is not http://HOST:PORT", base_url);
		return -1;
	}
	if ((fd = connect_to(host, port, timeout, err, errlen)) < 0)
		return -1;
	snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\nHost: %s\r\nContent-Length: 0\r\n\r\n", method, path, host);
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
		snprintf(err, errlen, "%s: cannot send the request: %s", base_url, strerror(errno));
		close(fd);
		return -1;
	}
	n = read_all(fd, &ans);
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "%s: no answer: %s", base_url, strerror(errno));
		return -1;
	}
	if (sscanf(ans, "HTTP/1.%*d %d", &code) != 1 || (hdr_end = strstr(ans, "\r\n\r\n")) == NULL) {
		snprintf(err, errlen, "%s: not an HTTP answer", base_url);
		free(ans);
		return -1;
	}
	hdr_end += 4;
	*len = (size_t)(ans + n - hdr_end);
	memmove(ans, hdr_end, *len + 1);
	*status = code;
	*body = ans;
	return 0;
}
