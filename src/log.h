/* log.h -- turnstone's one logging API, OpenBSD style.
 *
 * log_warn() appends strerror(errno); log_warnx() does not. The level is
 * tested before the arguments are evaluated, so log_debug() on a hot path
 * costs one branch when verbose is off. Thread-safe: each line is written
 * with one write(2).
 */
#ifndef TURNSTONE_LOG_H
#define TURNSTONE_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_LVL_ERR = 0, LOG_LVL_WARN = 1, LOG_LVL_INFO = 2, LOG_LVL_DEBUG = 3 };

extern int log_level;

/* Sends log lines to path (appended), or stderr when path is NULL.
 * Returns 0, or -1 when the file cannot be opened (errno set). */
int log_open(const char *path);
void log_set_level(int level);

/* Reopens the file given to log_open (after logrotate renamed it; called on
 * SIGHUP). Lines keep going to the old descriptor until the new one is open.
 * Returns 0 (also when logging to stderr or syslog), or -1 with errno set
 * and the old file still in use. */
int log_reopen(void);

/* Sends every later line to syslog(3) (facility LOG_DAEMON, ident ident,
 * which must stay valid) instead of the file or stderr. */
void log_use_syslog(const char *ident);

/* Copies the client-supplied bytes s[0..len) into out[0..outlen) (always
 * NUL-terminated) so that they cannot forge log lines: printable ASCII other
 * than backslash is kept, everything else (CR, LF, control bytes, bytes >=
 * 0x80, backslash, NUL) becomes \xHH. Truncates to fit.
 * Returns out, so it can be used as a printf argument. */
char *log_escape(const char *s, size_t len, char *out, size_t outlen);
/* Room log_escape needs for len input bytes (4 per byte + NUL). */
#define LOG_ESCAPE_LEN(len) ((len) * 4 + 1)
/* A client-supplied C string (a USERNAME is at most 513 bytes), escaped
 * into a buffer that lives until the end of the enclosing block: for use
 * as an argument of log_info() and friends, e.g.
 *   log_info("user '%s' ...", LOG_ESC(r->username)); (needs <string.h>) */
#define LOG_ESCAPE_BUF LOG_ESCAPE_LEN(514)
#define LOG_ESC(s) log_escape((s), strlen(s), (char[LOG_ESCAPE_BUF]){ 0 }, LOG_ESCAPE_BUF)

/* Rate limiting for lines a flood could repeat: returns 1 at most once per
 * interval seconds per *last (a wall-clock second shared by the threads
 * that log that event), 0 otherwise. */
int log_ratelimit(_Atomic int64_t *last, int interval);

void log_emit(int level, int with_errno, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#define log_warn(...)  do { if (log_level >= LOG_LVL_WARN) log_emit(LOG_LVL_WARN, 1, __VA_ARGS__); } while (0)
#define log_warnx(...) do { if (log_level >= LOG_LVL_WARN) log_emit(LOG_LVL_WARN, 0, __VA_ARGS__); } while (0)
#define log_info(...)  do { if (log_level >= LOG_LVL_INFO) log_emit(LOG_LVL_INFO, 0, __VA_ARGS__); } while (0)
#define log_debug(...) do { if (log_level >= LOG_LVL_DEBUG) log_emit(LOG_LVL_DEBUG, 0, __VA_ARGS__); } while (0)
#define log_err(...)   log_emit(LOG_LVL_ERR, 0, __VA_ARGS__)

#endif
