/* log.c -- leveled logging to stderr, a file or syslog, one write(2) per
 * line; no line ever carries a control byte (see log_vemit). */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

int log_level = LOG_LVL_INFO;
static int log_fd = 2;          /* set before threads start; log_reopen dup3()s over it */
static char *log_path;          /* what log_open opened, for log_reopen */
static _Atomic int log_syslog;  /* 1: syslog(3) instead of log_fd */

static int log_open_fd(const char *path)
{
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
}

int log_open(const char *path)
{
	int fd;

	if (path == NULL) {
		log_fd = 2;
		return 0;
	}
	if ((fd = log_open_fd(path)) < 0)
		return -1;
	free(log_path);
	log_path = strdup(path);
	log_fd = fd;
	return 0;
}

int log_reopen(void)
{
	int fd;

	if (log_path == NULL || log_syslog)
		return 0;
	if ((fd = log_open_fd(log_path)) < 0)
		return -1;
	/* dup3 swaps the file behind log_fd atomically: a thread writing a line
	 * meanwhile goes to the old file or the new one, never to a closed or
	 * reused descriptor. */
	if (dup3(fd, log_fd, O_CLOEXEC) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	close(fd);
	return 0;
}

void log_use_syslog(const char *ident)
{
	openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	log_syslog = 1;
}

char *log_escape(const char *s, size_t len, char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, n = 0;

	if (outlen == 0)
		return out;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c < 0x7f && c != '\\') {
			if (n + 1 >= outlen)
				break;
			out[n++] = (char)c;
		} else {
			if (n + 4 >= outlen)
				break;
			out[n++] = '\\';
			out[n++] = 'x';
			out[n++] = hex[c >> 4];
			out[n++] = hex[c & 15];
		}
	}
	out[n] = '\0';
	return out;
}

int log_ratelimit(_Atomic int64_t *last, int interval)
{
	int64_t now = (int64_t)time(NULL), prev = atomic_load(last);

	if (prev != 0 && now - prev < interval && now >= prev)
		return 0;
	return atomic_compare_exchange_strong(last, &prev, now);
}

void log_set_level(int level)
{
	log_level = level;
}

/* Copies line[0..n) into out[0..outlen) with every control byte (CR, LF,
 * ESC...) written as \xHH, so that no caller, whatever string it passes,
 * can start a forged line or drive a terminal. Returns the length. */
static size_t log_clean(const char *line, size_t n, char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)line[i];

		if (c >= 0x20 && c != 0x7f) {
			if (o + 1 > outlen)
				break;
			out[o++] = (char)c;
		} else {
			if (o + 4 > outlen)
				break;
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	return o;
}

/* The line's time stamp ("2026-01-02T03:04:05Z ") into out (at least 32
 * bytes); returns its length. Formatted once per second and thread: a
 * server logging every allocation would otherwise spend a good part of a
 * line on gmtime_r and strftime. */
static size_t log_stamp(char *out)
{
	static _Thread_local time_t last = (time_t)-1;
	static _Thread_local char stamp[32];
	static _Thread_local size_t stamplen;
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (ts.tv_sec != last) {
		struct tm tm;

		gmtime_r(&ts.tv_sec, &tm);
		stamplen = strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ ", &tm);
		last = ts.tv_sec;
	}
	memcpy(out, stamp, stamplen);
	return stamplen;
}

static void log_vemit(int level, int with_errno, const char *fmt, va_list ap)
{
	static const char *names[] = { "error: ", "warning: ", "info: ", "debug: " };
	char line[1024], clean[1024];
	size_t n, l;
	int saved = errno, r;

	n = log_stamp(line);
	l = strlen(names[level]);
	memcpy(line + n, names[level], l);
	n += l;
	r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (r > 0)
		n = n + (size_t)r < sizeof(line) ? n + (size_t)r : sizeof(line) - 1;
	if (with_errno && n < sizeof(line) - 1) {
		r = snprintf(line + n, sizeof(line) - n, ": %s", strerror(saved));
		if (r > 0)
			n = n + (size_t)r < sizeof(line) ? n + (size_t)r : sizeof(line) - 1;
	}
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	n = log_clean(line, n, clean, sizeof(clean) - 1);
	if (log_syslog) {
		static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

		clean[n] = '\0';
		/* syslog stamps the time itself: skip ours (up to the first space) */
		syslog(prio[level], "%s", strchr(clean, ' ') + 1);
		errno = saved;
		return;
	}
	clean[n++] = '\n';
	if (write(log_fd, clean, n) < 0) {
		/* nowhere left to report it */
	}
	errno = saved;
}

void log_emit(int level, int with_errno, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(level, with_errno, fmt, ap);
	va_end(ap);
}

void fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(LOG_LVL_ERR, 1, fmt, ap);
	va_end(ap);
	exit(1);
}

void fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(LOG_LVL_ERR, 0, fmt, ap);
	va_end(ap);
	exit(1);
}
