/* turnstone-admin.c -- command-line administration of turnstone's Redis
 * credential database (coturn's schema, see docs/redis.md) and TURN REST API
 * credentials. Synchronous hiredis: this is a short-lived tool, not a worker.
 *
 * Exit codes: 0 done, 1 failed (Redis unreachable or refused, no such user,
 * no secret...), 2 usage error. Errors go to stderr; --json output to stdout.
 */
#include <errno.h>
#include <getopt.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/admin_client.h"
#include "auth/auth_redis.h"
#include "auth/auth_rest.h"
#include "auth/auth_token.h"
#include "config.h"
#include "stun/stun_msg.h"

#define EXIT_USAGE 2
#define DEFAULT_CRED_TTL 86400
#define DEFAULT_TOKEN_TTL 300 /* a join token only has to last until the page joins */
#define MAX_TTL (10L * 365 * 86400)

/* Options given on the command line; which ones a command accepts is in its
 * table entry. */
enum {
	OPT_PASSWORD = 1 << 0,
	OPT_TTL = 1 << 1,
	OPT_KILL = 1 << 2,
	OPT_HOST = 1 << 3,
	OPT_SECRET = 1 << 4,
	OPT_ADMIN_URL = 1 << 5,
};

struct admin {
	const char *config_file;
	const char *redis_spec;     /* --redis, else the config's redis-userdb */
	const char *realm;          /* --realm, else the config's realm */
	int json;
	unsigned given;             /* OPT_* seen */
	const char *password, *host, *secret;
	long ttl;
	int kill;
	const char *admin_url;      /* --admin-url, else the config's prometheus-ip/port */
	struct config cfg;
	redisContext *rc;
	struct auth_redis_conninfo ci;
};

struct command {
	const char *word1, *word2;  /* "user" "add"; word2 NULL for one-word commands */
	int nargs;                  /* positional arguments after the words */
	unsigned opts;              /* OPT_* accepted */
	int (*run)(struct admin *a, char **args);
	const char *synopsis, *help;
};

static const char *prog = "turnstone-admin";

static void errx_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void errx_msg(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Prints j on one line to stdout and releases it. Returns 0 or 1. */
static int emit_json(json_t *j)
{
	char *s = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	if (s == NULL) {
		errx_msg("out of memory");
		return 1;
	}
	puts(s);
	free(s);
	return 0;
}

/* ---- Redis -------------------------------------------------------------- */

/* Connects, authenticates and selects the database. Returns 0, or 1 with a
 * message on stderr. */
static int admin_connect(struct admin *a)
{
	struct timeval tv;
	redisReply *rep;
	char err[256];

	if (a->redis_spec == NULL) {
		errx_msg("no Redis database: give --redis URL|CONNINFO or set redis-userdb in the configuration");
		return EXIT_USAGE;
	}
	if (auth_redis_parse_conninfo(a->redis_spec, &a->ci, err, sizeof(err)) < 0) {
		errx_msg("%s", err);
		return EXIT_USAGE;
	}
	tv.tv_sec = a->ci.connect_timeout;
	tv.tv_usec = 0;
	a->rc = redisConnectWithTimeout(a->ci.host, a->ci.port, tv);
	if (a->rc == NULL || a->rc->err) {
		errx_msg("cannot connect to Redis at %s:%d: %s", a->ci.host, a->ci.port,
			 a->rc != NULL ? a->rc->errstr : "out of memory");
		return 1;
	}
	redisSetTimeout(a->rc, tv); /* a hung Redis must not hang the tool */
	if (a->ci.password[0] != '\0') {
		if (a->ci.user[0] != '\0')
			rep = redisCommand(a->rc, "AUTH %s %s", a->ci.user, a->ci.password);
		else
			rep = redisCommand(a->rc, "AUTH %s", a->ci.password);
		if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
			errx_msg("Redis at %s:%d: AUTH failed: %s", a->ci.host, a->ci.port,
				 rep != NULL ? rep->str : a->rc->errstr);
			freeReplyObject(rep);
			return 1;
		}
		freeReplyObject(rep);
	}
	rep = redisCommand(a->rc, "SELECT %d", a->ci.db);
	if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
		errx_msg("Redis at %s:%d: SELECT %d failed: %s", a->ci.host, a->ci.port, a->ci.db,
			 rep != NULL ? rep->str : a->rc->errstr);
		freeReplyObject(rep);
		return 1;
	}
	freeReplyObject(rep);
	return 0;
}

/* Runs a command; an error reply or a lost connection is reported and gives
 * NULL. The caller frees the reply. */
static redisReply *admin_cmd(struct admin *a, const char *fmt, ...)
{
	va_list ap;
	redisReply *rep;

	va_start(ap, fmt);
	rep = redisvCommand(a->rc, fmt, ap);
	va_end(ap);
	if (rep == NULL) {
		errx_msg("Redis at %s:%d: %s", a->ci.host, a->ci.port, a->rc->errstr);
		return NULL;
	}
	if (rep->type == REDIS_REPLY_ERROR) {
		errx_msg("Redis at %s:%d: %s", a->ci.host, a->ci.port, rep->str);
		freeReplyObject(rep);
		return NULL;
	}
	return rep;
}

/* Copies s into out escaping Redis glob characters. Returns 0 or -1. */
static int glob_escape(const char *s, char *out, size_t cap)
{
	size_t o = 0;

	for (; *s != '\0'; s++) {
		if (o + 3 > cap)
			return -1;
		if (strchr("*?[]\\", *s) != NULL)
			out[o++] = '\\';
		out[o++] = *s;
	}
	out[o] = '\0';
	return 0;
}

/* ---- user --------------------------------------------------------------- */

static int cmd_user_add(struct admin *a, char **args)
{
	const char *user = args[0];
	uint8_t key[32];
	char hex[33];
	redisReply *rep;
	int i, rc;

	if (!(a->given & OPT_PASSWORD) || a->password[0] == '\0') {
		errx_msg("user add: --password is required (and must not be empty)");
		return EXIT_USAGE;
	}
	/* OpaqueString (RFC 8265) refuses control characters and bad UTF-8 */
	if (stun_long_term_key(STUN_PW_ALG_MD5, user, a->realm, a->password, key) < 0) {
		errx_msg("user add: password or realm is not a valid OpaqueString (control characters, bad UTF-8)");
		return EXIT_USAGE;
	}
	if ((rc = admin_connect(a)) != 0)
		return rc;
	for (i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", key[i]);
	if (a->given & OPT_TTL)
		rep = admin_cmd(a, "SET turn/realm/%s/user/%s/key %s EX %ld", a->realm, user, hex, a->ttl);
	else
		rep = admin_cmd(a, "SET turn/realm/%s/user/%s/key %s", a->realm, user, hex);
	if (rep == NULL)
		return 1;
	freeReplyObject(rep);
	if (a->json)
		return emit_json(json_pack("{s:b, s:s, s:s, s:I}", "ok", 1, "user", user, "realm", a->realm, "ttl",
					   (json_int_t)((a->given & OPT_TTL) ? a->ttl : -1)));
	if (a->given & OPT_TTL)
		printf("user '%s' added to realm '%s' (expires in %ld s)\n", user, a->realm, a->ttl);
	else
		printf("user '%s' added to realm '%s'\n", user, a->realm);
	return 0;
}

static int cmd_session_kill(struct admin *a, char **args);

static int cmd_user_del(struct admin *a, char **args)
{
	const char *user = args[0];
	redisReply *rep;
	long long deleted, receivers = -1;
	int rc;

	if ((rc = admin_connect(a)) != 0)
		return rc;
	/* .../password is coturn's plain-text alternative: remove both */
	rep = admin_cmd(a, "DEL turn/realm/%s/user/%s/key turn/realm/%s/user/%s/password", a->realm, user,
			a->realm, user);
	if (rep == NULL)
		return 1;
	deleted = rep->integer;
	freeReplyObject(rep);
	if (a->kill) {
		if ((rep = admin_cmd(a, "PUBLISH turnstone/realm/%s/kill %s", a->realm, user)) == NULL)
			return 1;
		receivers = rep->integer;
		freeReplyObject(rep);
	}
	if (deleted == 0 && !a->kill) {
		errx_msg("no user '%s' in realm '%s'", user, a->realm);
		return 1;
	}
	if (a->json)
		return emit_json(json_pack("{s:b, s:s, s:s, s:b, s:I}", "ok", 1, "user", user, "realm", a->realm,
					   "deleted", deleted > 0, "kill_receivers", (json_int_t)receivers));
	printf("user '%s' %s in realm '%s'", user, deleted > 0 ? "deleted" : "not found", a->realm);
	if (a->kill)
		printf("; kill sent to %lld server worker(s)", receivers);
	printf("\n");
	return 0;
}

/* Adds the user names of keys matching turn/realm/R/user/ * /SUFFIX to arr. */
static int scan_users(struct admin *a, const char *suffix, json_t *arr)
{
	char erealm[1024], prefix[1100];
	unsigned long long cursor = 0;
	size_t plen, slen = strlen(suffix), i;

	if (glob_escape(a->realm, erealm, sizeof(erealm)) < 0) {
		errx_msg("realm too long");
		return 1;
	}
	plen = (size_t)snprintf(prefix, sizeof(prefix), "turn/realm/%s/user/", a->realm);
	do {
		redisReply *rep = admin_cmd(a, "SCAN %llu MATCH turn/realm/%s/user/*/%s COUNT 1000", cursor, erealm,
					    suffix);

		if (rep == NULL)
			return 1;
		if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) {
			errx_msg("unexpected SCAN reply");
			freeReplyObject(rep);
			return 1;
		}
		cursor = strtoull(rep->element[0]->str, NULL, 10);
		for (i = 0; i < rep->element[1]->elements; i++) {
			const redisReply *k = rep->element[1]->element[i];

			if (k->len > plen + slen + 1 && strncmp(k->str, prefix, plen) == 0)
				json_array_append_new(arr, json_stringn(k->str + plen, k->len - plen - slen - 1));
		}
		freeReplyObject(rep);
	} while (cursor != 0);
	return 0;
}

static int str_cmp(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* Prints a sorted, de-duplicated list of strings, or JSON {"realm", field: [...]}. */
static int print_list(struct admin *a, json_t *arr, const char *field)
{
	size_t n = json_array_size(arr), i, m = 0;
	const char **v = calloc(n + 1, sizeof(*v));
	json_t *out;

	if (v == NULL) {
		json_decref(arr);
		errx_msg("out of memory");
		return 1;
	}
	for (i = 0; i < n; i++)
		v[i] = json_string_value(json_array_get(arr, i));
	qsort(v, n, sizeof(*v), str_cmp);
	out = json_array();
	for (i = 0; i < n; i++) {
		if (i > 0 && strcmp(v[i], v[i - 1]) == 0)
			continue;
		m++;
		if (a->json)
			json_array_append_new(out, json_string(v[i]));
		else
			printf("%s\n", v[i]);
	}
	free(v);
	json_decref(arr);
	if (a->json)
		return emit_json(json_pack("{s:s, s:o, s:I}", "realm", a->realm, field, out, "count", (json_int_t)m));
	json_decref(out);
	return 0;
}

static int cmd_user_list(struct admin *a, char **args)
{
	json_t *arr = json_array();
	int rc;

	if ((rc = admin_connect(a)) != 0) {
		json_decref(arr);
		return rc;
	}
	if (scan_users(a, "key", arr) != 0 || scan_users(a, "password", arr) != 0) {
		json_decref(arr);
		return 1;
	}
	return print_list(a, arr, "users");
}

/* ---- secret ------------------------------------------------------------- */

static int cmd_secret_add(struct admin *a, char **args)
{
	redisReply *rep;
	int rc;

	if (args[0][0] == '\0') {
		errx_msg("secret add: the secret must not be empty");
		return EXIT_USAGE;
	}
	if ((rc = admin_connect(a)) != 0)
		return rc;
	if ((rep = admin_cmd(a, "SADD turn/realm/%s/secret %s", a->realm, args[0])) == NULL)
		return 1;
	rc = (int)rep->integer;
	freeReplyObject(rep);
	if (a->json)
		return emit_json(json_pack("{s:b, s:s, s:b}", "ok", 1, "realm", a->realm, "added", rc > 0));
	printf(rc > 0 ? "secret added to realm '%s'\n" : "secret already present in realm '%s'\n", a->realm);
	return 0;
}

static int cmd_secret_del(struct admin *a, char **args)
{
	redisReply *rep;
	int rc;

	if ((rc = admin_connect(a)) != 0)
		return rc;
	if ((rep = admin_cmd(a, "SREM turn/realm/%s/secret %s", a->realm, args[0])) == NULL)
		return 1;
	rc = (int)rep->integer;
	freeReplyObject(rep);
	if (rc == 0) {
		errx_msg("no such secret in realm '%s'", a->realm);
		return 1;
	}
	if (a->json)
		return emit_json(json_pack("{s:b, s:s}", "ok", 1, "realm", a->realm));
	printf("secret deleted from realm '%s'\n", a->realm);
	return 0;
}

/* Reads the realm's secrets into arr. Returns 0 or 1. */
static int read_secrets(struct admin *a, json_t *arr)
{
	redisReply *rep;
	size_t i;

	if ((rep = admin_cmd(a, "SMEMBERS turn/realm/%s/secret", a->realm)) == NULL)
		return 1;
	for (i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++)
		if (rep->element[i]->type == REDIS_REPLY_STRING)
			json_array_append_new(arr, json_stringn(rep->element[i]->str, rep->element[i]->len));
	freeReplyObject(rep);
	return 0;
}

static int cmd_secret_list(struct admin *a, char **args)
{
	json_t *arr = json_array();
	int rc;

	if ((rc = admin_connect(a)) != 0 || (rc = read_secrets(a, arr)) != 0) {
		json_decref(arr);
		return rc;
	}
	return print_list(a, arr, "secrets");
}

/* ---- session ------------------------------------------------------------ */

static int cmd_session_kill(struct admin *a, char **args)
{
	redisReply *rep;
	long long n;
	int rc;

	if ((rc = admin_connect(a)) != 0)
		return rc;
	if ((rep = admin_cmd(a, "PUBLISH turnstone/realm/%s/kill %s", a->realm, args[0])) == NULL)
		return 1;
	n = rep->integer;
	freeReplyObject(rep);
	if (a->json)
		return emit_json(json_pack("{s:b, s:s, s:s, s:I}", "ok", 1, "user", args[0], "realm", a->realm,
					   "receivers", (json_int_t)n));
	printf("kill for '%s' in realm '%s' sent to %lld server worker(s)\n", args[0], a->realm, n);
	return 0;
}

/* ---- credential --------------------------------------------------------- */

/* The host clients should use: --host, the public part of external-ip, the
 * first specific listening-ip, else 127.0.0.1. Written into out. */
static void server_host(struct admin *a, char *out, size_t cap)
{
	const char *h = "127.0.0.1";
	size_t i, len;

	if (a->host != NULL) {
		h = a->host;
	} else if (a->cfg.external_ip != NULL) {
		h = a->cfg.external_ip;
	} else {
		for (i = 0; i < a->cfg.n_listening_ip; i++)
			if (strcmp(a->cfg.listening_ip[i], "0.0.0.0") != 0 && strcmp(a->cfg.listening_ip[i], "::") != 0) {
				h = a->cfg.listening_ip[i];
				break;
			}
	}
	len = strcspn(h, "/"); /* external-ip is PUBLIC[/PRIVATE] */
	if (memchr(h, ':', len) != NULL && h[0] != '[')
		snprintf(out, cap, "[%.*s]", (int)len, h);
	else
		snprintf(out, cap, "%.*s", (int)len, h);
}

/* The URLs of the iceServers entry. Without -c every kind is listed; with a
 * configuration only the listeners it enables (TLS needs cert and pkey). */
static json_t *server_urls(struct admin *a)
{
	const struct config *c = &a->cfg;
	int known = a->config_file != NULL;
	char host[300], u[400];
	json_t *urls = json_array();

	server_host(a, host, sizeof(host));
	if (!known || !c->no_stun) {
		snprintf(u, sizeof(u), "stun:%s:%d", host, c->listening_port);
		json_array_append_new(urls, json_string(u));
	}
	if (!known || !c->no_udp) {
		snprintf(u, sizeof(u), "turn:%s:%d", host, c->listening_port);
		json_array_append_new(urls, json_string(u));
	}
	if (!known || !c->no_tcp) {
		snprintf(u, sizeof(u), "turn:%s:%d?transport=tcp", host, c->listening_port);
		json_array_append_new(urls, json_string(u));
	}
	if (!known || (!c->no_tls && c->cert != NULL && c->pkey != NULL)) {
		snprintf(u, sizeof(u), "turns:%s:%d?transport=tcp", host, c->tls_listening_port);
		json_array_append_new(urls, json_string(u));
	}
	return urls;
}

/* Picks the signing secret: the configuration's first static-auth-secret,
 * else the alphabetically first one in Redis. Returns 0 or an exit code. */
static int pick_secret(struct admin *a, char **secret)
{
	json_t *arr;
	size_t i;
	const char *best = NULL;
	int rc;

	if (a->cfg.n_static_auth_secret > 0) {
		*secret = strdup(a->cfg.static_auth_secret[0]);
		return *secret != NULL ? 0 : 1;
	}
	if (a->redis_spec == NULL) {
		errx_msg("no REST API secret: set static-auth-secret in the configuration, or give --redis "
			 "(secrets added with 'secret add')");
		return 1;
	}
	if ((rc = admin_connect(a)) != 0)
		return rc;
	arr = json_array();
	if (read_secrets(a, arr) != 0) {
		json_decref(arr);
		return 1;
	}
	for (i = 0; i < json_array_size(arr); i++) {
		const char *s = json_string_value(json_array_get(arr, i));

		if (best == NULL || strcmp(s, best) < 0)
			best = s;
	}
	if (best == NULL) {
		errx_msg("no REST API secret in realm '%s' (add one with 'secret add')", a->realm);
		json_decref(arr);
		return 1;
	}
	*secret = strdup(best);
	json_decref(arr);
	return *secret != NULL ? 0 : 1;
}

static int cmd_credential(struct admin *a, char **args)
{
	long ttl = (a->given & OPT_TTL) ? a->ttl : DEFAULT_CRED_TTL;
	uint64_t expiry = (uint64_t)time(NULL) + (uint64_t)ttl;
	char username[600], password[AUTH_REST_PASSWORD_LEN + 1], *secret = NULL, *s;
	json_t *ice;
	int rc;

	if ((rc = pick_secret(a, &secret)) != 0)
		return rc;
	if (auth_rest_username(expiry, a->cfg.rest_api_separator, args[0], username, sizeof(username)) < 0 ||
	    auth_rest_password(secret, username, password) < 0) {
		free(secret);
		errx_msg("credential: user id too long");
		return 1;
	}
	free(secret);
	if (a->config_file != NULL && !a->cfg.use_auth_secret)
		errx_msg("warning: use-auth-secret is off in %s: the server will refuse this credential",
			 a->config_file);
	ice = json_pack("[{s:o, s:s, s:s}]", "urls", server_urls(a), "username", username, "credential", password);
	if (a->json)
		return emit_json(json_pack("{s:s, s:s, s:I, s:I, s:s, s:o}", "username", username, "password",
					   password, "ttl", (json_int_t)ttl, "expires", (json_int_t)expiry, "realm",
					   a->realm, "iceServers", ice));
	s = json_dumps(ice, JSON_INDENT(2));
	json_decref(ice);
	if (s == NULL)
		return 1;
	printf("username: %s\npassword: %s\nexpires:  %llu (in %ld s)\n\niceServers:\n%s\n", username, password,
	       (unsigned long long)expiry, ttl, s);
	free(s);
	return 0;
}

/* ---- signaling-token ------------------------------------------------------ */

/* Prints a join token for the signaling endpoint (src/auth/auth_token.h),
 * signed with --secret or the configuration's signaling-auth-secret. */
static int cmd_signaling_token(struct admin *a, char **args)
{
	long ttl = (a->given & OPT_TTL) ? a->ttl : DEFAULT_TOKEN_TTL;
	uint64_t expiry = (uint64_t)time(NULL) + (uint64_t)ttl;
	const char *secret = a->secret != NULL ? a->secret : a->cfg.signaling_auth_secret;
	char token[AUTH_TOKEN_MAX_LEN + 1];

	if (secret == NULL || secret[0] == '\0') {
		errx_msg("signaling-token: no secret: give --secret or -c FILE with signaling-auth-secret");
		return EXIT_USAGE;
	}
	if (!auth_token_user_ok(args[1], strlen(args[1]))) {
		errx_msg("signaling-token: user id '%s' must be 1..%d of [A-Za-z0-9_.@-]", args[1], AUTH_TOKEN_USER_MAX);
		return EXIT_USAGE;
	}
	if (args[0][0] == '\0' || strlen(args[0]) > AUTH_TOKEN_ROOM_MAX) {
		errx_msg("signaling-token: the room must be 1..%d bytes", AUTH_TOKEN_ROOM_MAX);
		return EXIT_USAGE;
	}
	if (auth_token_make(secret, expiry, args[1], args[0], token, sizeof(token)) < 0) {
		errx_msg("signaling-token: cannot make the token");
		return 1;
	}
	if (a->json)
		return emit_json(json_pack("{s:s, s:s, s:s, s:I, s:I}", "token", token, "room", args[0], "user",
					   args[1], "ttl", (json_int_t)ttl, "expires", (json_int_t)expiry));
	puts(token);
	return 0;
}

/* ---- the server's admin listener (issue 11) ------------------------------ */

#define ADMIN_HTTP_TIMEOUT 5 /* seconds per connect/send/receive */

/* The admin listener's URL: --admin-url, else http://prometheus-ip:port
 * from the configuration (a wildcard address becomes loopback). */
static void admin_base_url(struct admin *a, char *out, size_t cap)
{
	const char *ip = a->cfg.prometheus_ip != NULL ? a->cfg.prometheus_ip : "127.0.0.1";

	if (a->admin_url != NULL) {
		snprintf(out, cap, "%s", a->admin_url);
		return;
	}
	if (strcmp(ip, "0.0.0.0") == 0)
		ip = "127.0.0.1";
	else if (strcmp(ip, "::") == 0)
		ip = "::1";
	snprintf(out, cap, strchr(ip, ':') != NULL ? "http://[%s]:%d" : "http://%s:%d", ip, a->cfg.prometheus_port);
}

/* One request to the admin listener. Returns 0 with the body (caller frees)
 * when the status is want, else 1 after a message. */
static int admin_http(struct admin *a, const char *method, const char *path, int want, char **body)
{
	char url[512], err[512];
	size_t len;
	int status;

	admin_base_url(a, url, sizeof(url));
	if (admin_client_request(url, method, path, ADMIN_HTTP_TIMEOUT, &status, body, &len, err, sizeof(err)) < 0) {
		errx_msg("%s (is 'prometheus' on in the server's configuration?)", err);
		return 1;
	}
	if (status != want) {
		errx_msg("%s %s%s: HTTP %d: %s", method, url, path, status, *body);
		free(*body);
		*body = NULL;
		return 1;
	}
	return 0;
}

static const char *json_str_or(json_t *o, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL ? s : dflt;
}

static long long json_int_or(json_t *o, const char *key)
{
	return (long long)json_integer_value(json_object_get(o, key));
}

/* Prints the sessions array as a table. */
static void print_sessions(json_t *arr)
{
	size_t i;
	json_t *o;

	printf("%-24s %-24s %-24s %-5s %8s %14s %14s\n", "USER", "CLIENT", "RELAY", "PROTO", "AGE(s)", "BYTES_TO_PEER",
	       "BYTES_TO_CLIENT");
	json_array_foreach(arr, i, o) {
		printf("%-24s %-24s %-24s %-5s %8lld %14lld %14lld\n", json_str_or(o, "user", "?"),
		       json_str_or(o, "client", "?"), json_str_or(o, "relay", "?"), json_str_or(o, "transport", "?"),
		       json_int_or(o, "age_seconds"), json_int_or(o, "bytes_to_peer"),
		       json_int_or(o, "bytes_to_client"));
	}
}

static int cmd_sessions(struct admin *a, char **args)
{
	json_error_t jerr;
	char *body = NULL;
	json_t *arr;

	if (admin_http(a, "GET", "/sessions", 200, &body) != 0)
		return 1;
	arr = json_loads(body, 0, &jerr);
	free(body);
	if (!json_is_array(arr)) {
		errx_msg("/sessions: not a JSON array: %s", jerr.text);
		json_decref(arr);
		return 1;
	}
	if (a->json)
		return emit_json(arr);
	print_sessions(arr);
	json_decref(arr);
	return 0;
}

static int cmd_drain(struct admin *a, char **args)
{
	char *body = NULL;

	if (admin_http(a, "POST", "/drain", 202, &body) != 0)
		return 1;
	free(body);
	if (a->json)
		return emit_json(json_pack("{s:b}", "draining", 1));
	printf("draining: new allocations are refused; the server exits when the last one ends\n");
	return 0;
}

/* ---- command line ------------------------------------------------------- */

static const struct command commands[] = {
	{ "user", "add", 1, OPT_PASSWORD | OPT_TTL, cmd_user_add, "user add NAME --password P [--ttl SECONDS]",
	  "Stores MD5(NAME:REALM:P) as 32 hex digits under turn/realm/REALM/user/NAME/key\n"
	  "(coturn's schema), replacing any previous key. With --ttl the key expires.\n" },
	{ "user", "del", 1, OPT_KILL, cmd_user_del, "user del NAME [--kill]",
	  "Deletes the user's key (and coturn's plain-text .../password). With --kill\n"
	  "also ends the user's sessions (see 'session kill'). Exit 1 if there was no such user.\n" },
	{ "user", "list", 0, 0, cmd_user_list, "user list",
	  "Lists the users of the realm (SCAN, not KEYS: safe on a busy Redis).\n" },
	{ "secret", "add", 1, 0, cmd_secret_add, "secret add SECRET",
	  "Adds a TURN REST API shared secret to turn/realm/REALM/secret (a set).\n" },
	{ "secret", "del", 1, 0, cmd_secret_del, "secret del SECRET",
	  "Removes a shared secret. Exit 1 if it was not there.\n" },
	{ "secret", "list", 0, 0, cmd_secret_list, "secret list", "Lists the realm's shared secrets.\n" },
	{ "credential", NULL, 1, OPT_TTL | OPT_HOST, cmd_credential,
	  "credential USER [--ttl SECONDS] [--host HOST]",
	  "Prints a TURN REST API credential for USER valid for --ttl seconds (default\n"
	  "86400): username EXPIRY:USER, password base64(HMAC-SHA1(secret, username)),\n"
	  "signed with the configuration's first static-auth-secret or else a secret\n"
	  "from Redis, and an iceServers entry for RTCPeerConnection. HOST: --host, else\n"
	  "external-ip, else the first listening-ip, else 127.0.0.1.\n" },
	{ "signaling-token", NULL, 2, OPT_TTL | OPT_SECRET, cmd_signaling_token,
	  "signaling-token ROOM USER [--ttl SECONDS] [--secret SECRET]",
	  "Prints a join token for the signaling endpoint: USER (1..64 of [A-Za-z0-9_.@-])\n"
	  "may join ROOM (and so get TURN credentials) for --ttl seconds (default 300).\n"
	  "Format EXPIRY:USER:ROOM:base64url(HMAC-SHA256(secret, \"EXPIRY:USER:ROOM\")),\n"
	  "signed with --secret or the configuration's signaling-auth-secret (-c).\n"
	  "Pass it in join as \"token\", or to /ice-servers as ?token= or a Bearer header.\n" },
	{ "session", "kill", 1, 0, cmd_session_kill, "session kill USER",
	  "Publishes USER on turnstone/realm/REALM/kill: every server worker drops the\n"
	  "user's cached key and ends the user's allocations.\n" },
	/* the server's admin listener (issue 11) */
	{ "sessions", NULL, 0, OPT_ADMIN_URL, cmd_sessions, "sessions [--admin-url URL]",
	  "Lists the server's allocations (GET /sessions on the admin listener):\n"
	  "user, client and relayed addresses, transport, age and bytes relayed; a\n"
	  "table, or the JSON array with --json. URL: --admin-url, else\n"
	  "http://prometheus-ip:prometheus-port from the configuration.\n" },
	{ "drain", NULL, 0, OPT_ADMIN_URL, cmd_drain, "drain [--admin-url URL]",
	  "Starts draining the server (POST /drain, as SIGUSR1 does): new allocations\n"
	  "get 508, live ones keep relaying, and the server exits when the last one\n"
	  "ends or after drain-timeout. Accepted from loopback only.\n" },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	size_t i;

	fprintf(f,
		"usage: %s [-c FILE] [--redis URL|CONNINFO] [--realm REALM] [--json] COMMAND ...\n"
		"\n"
		"Manages turnstone's Redis credential database (coturn-compatible), prints\n"
		"TURN REST API credentials, and lists or drains a running server's sessions.\n"
		"\n"
		"Commands:\n",
		prog);
	for (i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %s\n", commands[i].synopsis);
	fprintf(f, "\n"
		   "Options:\n"
		   "  -c, --config FILE   the server's configuration file (redis-userdb, realm,\n"
		   "                      static-auth-secret, rest-api-separator, listeners)\n"
		   "  --redis SPEC        redis://[:PASSWORD@]HOST[:PORT][/DB] or\n"
		   "                      \"ip=HOST port=PORT dbname=DB password=PASSWORD\"\n"
		   "  --realm REALM       realm (default: the configuration's, else \"turnstone\")\n"
		   "  --json              machine-readable output on stdout\n"
		   "  --admin-url URL     the server's admin listener, http://HOST:PORT (default:\n"
		   "                      the configuration's prometheus-ip and prometheus-port)\n"
		   "  -h, --help          this help; 'COMMAND --help' for a command\n"
		   "\n"
		   "Exit status: 0 success, 1 failure (e.g. Redis unreachable), 2 usage error.\n");
}

static void usage_command(FILE *f, const struct command *c)
{
	fprintf(f, "usage: %s [GLOBAL OPTIONS] %s\n\n%s", prog, c->synopsis, c->help);
}

/* Finds the command named by words[0..n). Returns NULL when unknown. */
static const struct command *find_command(char **words, int n)
{
	size_t i;

	for (i = 0; n > 0 && i < NCOMMANDS; i++) {
		if (strcmp(words[0], commands[i].word1) != 0)
			continue;
		if (commands[i].word2 == NULL || (n > 1 && strcmp(words[1], commands[i].word2) == 0))
			return &commands[i];
	}
	return NULL;
}

/* Help for "--help" with whatever words were given. */
static int help(char **words, int n)
{
	const struct command *c = find_command(words, n);
	size_t i;
	int any = 0;

	if (c != NULL) {
		usage_command(stdout, c);
		return 0;
	}
	for (i = 0; n > 0 && i < NCOMMANDS; i++)
		if (strcmp(words[0], commands[i].word1) == 0) {
			usage_command(stdout, &commands[i]);
			any = 1;
		}
	if (!any)
		usage(stdout);
	return 0;
}

static int parse_ttl(const char *s, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v <= 0 || v > MAX_TTL)
		return -1;
	*out = v;
	return 0;
}

/* Parses argv into a. Returns 0, or EXIT_USAGE after a message; sets
 * *want_help for -h/--help. Positional words are left in argv[optind..]. */
static int parse_args(struct admin *a, int argc, char **argv, int *want_help)
{
	enum { O_REDIS = 256, O_REALM, O_JSON, O_PASSWORD, O_TTL, O_KILL, O_HOST, O_SECRET, O_ADMIN_URL };
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' }, { "help", no_argument, NULL, 'h' },
		{ "redis", required_argument, NULL, O_REDIS }, { "realm", required_argument, NULL, O_REALM },
		{ "json", no_argument, NULL, O_JSON }, { "password", required_argument, NULL, O_PASSWORD },
		{ "ttl", required_argument, NULL, O_TTL }, { "kill", no_argument, NULL, O_KILL },
		{ "host", required_argument, NULL, O_HOST }, { "secret", required_argument, NULL, O_SECRET },
		{ "admin-url", required_argument, NULL, O_ADMIN_URL }, { NULL, 0, NULL, 0 },
	};
	int ch;

	opterr = 1;
	while ((ch = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': a->config_file = optarg; break;
		case 'h': *want_help = 1; break;
		case O_REDIS: a->redis_spec = optarg; break;
		case O_REALM:
			if (optarg[0] == '\0') {
				errx_msg("--realm must not be empty");
				return EXIT_USAGE;
			}
			a->realm = optarg;
			break;
		case O_JSON: a->json = 1; break;
		case O_PASSWORD: a->password = optarg; a->given |= OPT_PASSWORD; break;
		case O_TTL:
			if (parse_ttl(optarg, &a->ttl) < 0) {
				errx_msg("--ttl: '%s' is not a number of seconds in 1..%ld", optarg, MAX_TTL);
				return EXIT_USAGE;
			}
			a->given |= OPT_TTL;
			break;
		case O_KILL: a->kill = 1; a->given |= OPT_KILL; break;
		case O_HOST: a->host = optarg; a->given |= OPT_HOST; break;
		case O_SECRET: a->secret = optarg; a->given |= OPT_SECRET; break;
		case O_ADMIN_URL: a->admin_url = optarg; a->given |= OPT_ADMIN_URL; break;
		default: return EXIT_USAGE; /* getopt printed why */
		}
	}
	return 0;
}

/* Loads -c FILE (the server's parser; its validation is not applied: the
 * tool needs no users) and fills in the realm and the Redis database. */
static int load_config(struct admin *a)
{
	char err[512];
	char *argv[] = { (char *)prog, (char *)"-c", (char *)a->config_file, NULL };

	if (a->config_file != NULL && config_load(&a->cfg, 3, argv, NULL, err, sizeof(err)) < 0) {
		errx_msg("%s", err);
		return EXIT_USAGE;
	}
	if (a->realm == NULL)
		a->realm = a->cfg.realm;
	if (a->redis_spec == NULL)
		a->redis_spec = a->cfg.redis_userdb;
	return 0;
}

int main(int argc, char **argv)
{
	struct admin a;
	const struct command *c;
	char **words;
	int nwords, want_help = 0, rc;

	memset(&a, 0, sizeof(a));
	config_defaults(&a.cfg);
	if ((rc = parse_args(&a, argc, argv, &want_help)) != 0)
		goto out;
	words = argv + optind;
	nwords = argc - optind;
	if (want_help) {
		rc = help(words, nwords);
		goto out;
	}
	if (nwords == 0) {
		usage(stderr);
		rc = EXIT_USAGE;
		goto out;
	}
	if ((c = find_command(words, nwords)) == NULL) {
		errx_msg("unknown command '%s%s%s' (try --help)", words[0], nwords > 1 ? " " : "",
			 nwords > 1 ? words[1] : "");
		rc = EXIT_USAGE;
		goto out;
	}
	words += c->word2 != NULL ? 2 : 1;
	nwords -= c->word2 != NULL ? 2 : 1;
	if (nwords != c->nargs || (a.given & ~c->opts) != 0) {
		errx_msg("%s", nwords != c->nargs ? "wrong number of arguments" : "option not valid for this command");
		usage_command(stderr, c);
		rc = EXIT_USAGE;
		goto out;
	}
	if ((rc = load_config(&a)) == 0)
		rc = c->run(&a, words);
out:
	if (a.rc != NULL)
		redisFree(a.rc);
	config_free(&a.cfg);
	return rc;
}
