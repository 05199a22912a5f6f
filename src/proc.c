/* proc.c -- descriptor limit, pidfile and privilege drop (see proc.h). */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

/* Descriptors the server holds besides client connections and relay
 * sockets: listeners, eventfds, the log, Redis, per worker and overall. */
#define PROC_FD_PER_WORKER 16
#define PROC_FD_BASE 64

void proc_raise_nofile(const struct config *cfg, int nworkers)
{
	struct rlimit rl;
	unsigned long long need;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		log_warn("getrlimit(RLIMIT_NOFILE)");
		return;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		struct rlimit want = { rl.rlim_max, rl.rlim_max };

		if (setrlimit(RLIMIT_NOFILE, &want) == 0)
			rl = want;
		else
			log_warn("cannot raise RLIMIT_NOFILE from %llu to %llu", (unsigned long long)rl.rlim_cur,
				 (unsigned long long)rl.rlim_max);
	}
	/* Each connection is one descriptor, each allocation one relay socket
	 * (two while an EVEN-PORT reservation holds the next port). */
	need = (unsigned long long)cfg->max_connections + (unsigned long long)(cfg->max_port - cfg->min_port + 1) +
	       PROC_FD_BASE + (unsigned long long)nworkers * PROC_FD_PER_WORKER;
	log_info("descriptors: RLIMIT_NOFILE is %llu", (unsigned long long)rl.rlim_cur);
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need)
		log_warnx("descriptors: RLIMIT_NOFILE %llu is below the %llu that max-connections (%d) and the "
			  "relay port range (%d ports) need; raise the hard limit (ulimit -n, LimitNOFILE=)",
			  (unsigned long long)rl.rlim_cur, need, cfg->max_connections,
			  cfg->max_port - cfg->min_port + 1);
}

int proc_write_pidfile(const char *path, char *err, size_t errlen)
{
	char buf[32];
	struct stat st;
	int fd, n;

	/* No O_TRUNC in open: a FIFO or device planted at path must not be
	 * touched either, so truncate only once fstat says it is a file. */
	fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0644);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open pidfile '%s': %s%s", path, strerror(errno),
			 errno == ELOOP ? " (it is a symbolic link: refused)" : "");
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "pidfile '%s' is not a regular file: refused", path);
		close(fd);
		return -1;
	}
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || write(fd, buf, (size_t)n) != n) {
		snprintf(err, errlen, "cannot write pidfile '%s': %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (close(fd) < 0) {
		snprintf(err, errlen, "cannot write pidfile '%s': %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Resolves proc-user / proc-group into *uid / *gid (-1 when unset). */
static int proc_ids(const struct config *cfg, uid_t *uid, gid_t *gid, char *err, size_t errlen)
{
	*uid = (uid_t)-1;
	*gid = (gid_t)-1;
	if (cfg->proc_user != NULL) {
		struct passwd *pw = getpwnam(cfg->proc_user);

		if (pw == NULL) {
			snprintf(err, errlen, "proc-user '%s': no such user", cfg->proc_user);
			return -1;
		}
		*uid = pw->pw_uid;
		*gid = pw->pw_gid;
	}
	if (cfg->proc_group != NULL) {
		struct group *gr = getgrnam(cfg->proc_group);

		if (gr == NULL) {
			snprintf(err, errlen, "proc-group '%s': no such group", cfg->proc_group);
			return -1;
		}
		*gid = gr->gr_gid;
	}
	return 0;
}

int proc_drop_privileges(const struct config *cfg, char *err, size_t errlen)
{
	uid_t uid;
	gid_t gid;

	if (cfg->proc_user == NULL && cfg->proc_group == NULL)
		return 0;
	if (proc_ids(cfg, &uid, &gid, err, errlen) < 0)
		return -1;
	if (geteuid() != 0) {
		/* Already unprivileged: fine if that is what was asked. */
		if ((uid == (uid_t)-1 || uid == getuid()) && (gid == (gid_t)-1 || gid == getgid()))
			return 0;
		snprintf(err, errlen, "proc-user/proc-group: only root can switch to another user or group");
		return -1;
	}
	/* Supplementary groups first (root's would survive setgid otherwise),
	 * then the group, then the user: after setuid nothing else may change. */
	if ((cfg->proc_user != NULL ? initgroups(cfg->proc_user, gid) : setgroups(1, &gid)) < 0 ||
	    setgid(gid) < 0 || (uid != (uid_t)-1 && setuid(uid) < 0)) {
		snprintf(err, errlen, "cannot drop privileges to %s%s%s: %s",
			 cfg->proc_user != NULL ? cfg->proc_user : "", cfg->proc_group != NULL ? ":" : "",
			 cfg->proc_group != NULL ? cfg->proc_group : "", strerror(errno));
		return -1;
	}
	if (uid != (uid_t)-1 && uid != 0 && (setuid(0) == 0 || geteuid() == 0)) {
		snprintf(err, errlen, "privileges still regainable after setuid(%ld)", (long)uid);
		return -1;
	}
	log_info("running as uid %ld gid %ld", (long)getuid(), (long)getgid());
	return 0;
}
