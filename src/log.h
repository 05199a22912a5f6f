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

enum log_level { LOG_LVL_ERR = 0, LOG_LVL_WARN = 1, LOG_LVL_INFO = 2, LOG_LVL_DEBUG = 3 };

extern int log_level;

/* Sends log lines to path (appended), or stderr when path is NULL.
 * Returns 0, or -1 when the file cannot be opened (errno set). */
int log_open(const char *path);
void log_set_level(int level);

void log_emit(int level, int with_errno, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#define log_warn(...)  do { if (log_level >= LOG_LVL_WARN) log_emit(LOG_LVL_WARN, 1, __VA_ARGS__); } while (0)
#define log_warnx(...) do { if (log_level >= LOG_LVL_WARN) log_emit(LOG_LVL_WARN, 0, __VA_ARGS__); } while (0)
#define log_info(...)  do { if (log_level >= LOG_LVL_INFO) log_emit(LOG_LVL_INFO, 0, __VA_ARGS__); } while (0)
#define log_debug(...) do { if (log_level >= LOG_LVL_DEBUG) log_emit(LOG_LVL_DEBUG, 0, __VA_ARGS__); } while (0)
#define log_err(...)   log_emit(LOG_LVL_ERR, 0, __VA_ARGS__)

#endif
