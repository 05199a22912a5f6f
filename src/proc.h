/* proc.h -- the process around the server: descriptor limit, pidfile,
 * dropping root privileges (issue 11). Called from main() only, before the
 * worker threads start (proc_drop_privileges) or around them. */
#ifndef TURNSTONE_PROC_H
#define TURNSTONE_PROC_H

#include <stddef.h>

struct config;

/* Raises RLIMIT_NOFILE's soft limit to the hard limit and logs the figure;
 * warns when it is below what max-connections, the relay port range and
 * nworkers' own sockets need. Never fails: the server runs with what it has. */
void proc_raise_nofile(const struct config *cfg, int nworkers);

/* Writes our pid to path: opened with O_NOFOLLOW (a symlink planted at path
 * is refused, its target untouched), created 0644, truncated only once
 * opened, and only when it is a regular file. Returns 0, or -1 with a
 * message in err (errlen bytes). */
int proc_write_pidfile(const char *path, char *err, size_t errlen);

/* Drops root privileges to cfg->proc_user / cfg->proc_group, if set:
 * supplementary groups (initgroups, or setgroups to the one group), then
 * setgid, then setuid, then checks that root cannot be regained. Applies to
 * every thread of the process (glibc). Returns 0 (also when neither key is
 * set), or -1 with a message in err: the caller must exit. */
int proc_drop_privileges(const struct config *cfg, char *err, size_t errlen);

#endif
