/* signal_ice.c -- STUN/TURN URLs and short-lived TURN REST API credentials
 * for pages (RFC 7064, RFC 7065, draft-uberti-behave-turn-rest-00 §2.2). */
#include "signal/signal_ice.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/auth_redis.h"
#include "auth/auth_rest.h"
#include "log.h"

#define REDIS_REFRESH_SEC 60

struct signal_ice {
	const struct config *cfg;
	struct auth_redis *redis;        /* NULL unless the secret comes from Redis */
	struct event *refresh;           /* re-reads the Redis secret */
	char *redis_secret;              /* first sorted secret from Redis, or NULL */
	char external[64];               /* external-ip's public part, bracketed when IPv6, or "" */
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void on_secrets(void *arg, int status, const char *const *secrets, size_t n)
{
	struct signal_ice *ice = arg;
	const char **sorted;
	char *first;

	if (status != 0) {
		log_debug("signaling: Redis secret lookup failed; keeping the cached one");
		return;
	}
	if (n == 0) {
		if (ice->redis_secret != NULL)
			log_info("signaling: no REST API secret in Redis any more: pages get no TURN credentials");
		free(ice->redis_secret);
		ice->redis_secret = NULL;
		return;
	}
	if ((sorted = malloc(n * sizeof(*sorted))) == NULL)
		return;
	memcpy(sorted, secrets, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), cmp_str);
	first = strdup(sorted[0]);
	free(sorted);
	if (first == NULL)
		return;
	if (ice->redis_secret == NULL)
		log_info("signaling: TURN REST secret read from Redis");
	free(ice->redis_secret);
	ice->redis_secret = first;
}

static void on_refresh(evutil_socket_t fd, short what, void *arg)
{
	struct signal_ice *ice = arg;

	if (auth_redis_get_secrets(ice->redis, ice->cfg->realm, on_secrets, ice) < 0)
		log_warnx("signaling: cannot ask Redis for the REST API secret");
}

/* external-ip "PUBLIC" or "PUBLIC/PRIVATE": keep PUBLIC, bracket IPv6. */
static void set_external(struct signal_ice *ice, const char *ext)
{
	size_t n;

	if (ext == NULL)
		return;
	n = strcspn(ext, "/");
	if (n == 0 || n > 45)
		return;
	if (memchr(ext, ':', n) != NULL)
		snprintf(ice->external, sizeof(ice->external), "[%.*s]", (int)n, ext);
	else
		snprintf(ice->external, sizeof(ice->external), "%.*s", (int)n, ext);
}

static int start_redis(struct signal_ice *ice, struct event_base *base, char *err, size_t errlen)
{
	struct auth_redis_params p = {
		.conninfo = ice->cfg->redis_userdb,
		.realm = ice->cfg->realm,
		.cache_ttl = 0,
	};
	struct timeval tv = {REDIS_REFRESH_SEC, 0};

	if ((ice->redis = auth_redis_new(base, &p, err, errlen)) == NULL)
		return -1;
	if ((ice->refresh = event_new(base, -1, EV_PERSIST, on_refresh, ice)) == NULL ||
	    event_add(ice->refresh, &tv) < 0) {
		snprintf(err, errlen, "signaling: cannot schedule the Redis secret refresh");
		return -1;
	}
	on_refresh(-1, 0, ice);
	return 0;
}

struct signal_ice *signal_ice_new(const struct config *cfg, struct event_base *base, char *err, size_t errlen)
{
	struct signal_ice *ice = calloc(1, sizeof(*ice));

	if (ice == NULL) {
		snprintf(err, errlen, "signaling: out of memory");
		return NULL;
	}
	ice->cfg = cfg;
	set_external(ice, cfg->external_ip);
	if (cfg->signaling_auth_secret != NULL)
		log_info("signaling: joining and TURN credentials need a token (signaling-auth-secret)%s",
			 cfg->signaling_open_credentials ? "; signaling-open-credentials is ignored" : "");
	else if (cfg->signaling_open_credentials)
		log_info("signaling: signaling-open-credentials: every client gets TURN credentials");
	else
		log_info("signaling: neither signaling-auth-secret nor signaling-open-credentials: pages get STUN only");
	if (!cfg->use_auth_secret) {
		log_info("signaling: use-auth-secret is off: pages get no TURN credentials (STUN only)");
	} else if (cfg->n_static_auth_secret == 0 && cfg->redis_userdb == NULL) {
		log_info("signaling: no static-auth-secret and no redis-userdb: pages get no TURN credentials");
	} else if (cfg->n_static_auth_secret == 0 && start_redis(ice, base, err, errlen) < 0) {
		signal_ice_free(ice);
		return NULL;
	}
	return ice;
}

void signal_ice_free(struct signal_ice *ice)
{
	if (ice == NULL)
		return;
	if (ice->refresh != NULL)
		event_free(ice->refresh);
	if (ice->redis != NULL)
		auth_redis_free(ice->redis);
	free(ice->redis_secret);
	free(ice);
}

static const char *ice_secret(const struct signal_ice *ice)
{
	if (!ice->cfg->use_auth_secret)
		return NULL;
	if (ice->cfg->n_static_auth_secret > 0)
		return ice->cfg->static_auth_secret[0];
	return ice->redis_secret;
}

int signal_ice_has_credentials(const struct signal_ice *ice)
{
	return ice_secret(ice) != NULL;
}

/* Appends {"urls":[...],"username":...,"credential":...} for TURN. */
static int add_turn(const struct signal_ice *ice, json_t *list, const char *host, const char *user_id)
{
	const struct config *cfg = ice->cfg;
	const char *secret = ice_secret(ice);
	char user[256], pass[AUTH_REST_PASSWORD_LEN + 1], url[320];
	uint64_t expiry = (uint64_t)time(NULL) + (uint64_t)cfg->signaling_credential_ttl;
	json_t *urls = json_array();

	if (urls == NULL)
		return -1;
	if (!cfg->no_udp) {
		snprintf(url, sizeof(url), "turn:%s:%d?transport=udp", host, cfg->listening_port);
		json_array_append_new(urls, json_string(url));
	}
	if (!cfg->no_tcp) {
		snprintf(url, sizeof(url), "turn:%s:%d?transport=tcp", host, cfg->listening_port);
		json_array_append_new(urls, json_string(url));
	}
	if (cfg->cert != NULL && cfg->pkey != NULL && !cfg->no_tls) {
		snprintf(url, sizeof(url), "turns:%s:%d?transport=tcp", host, cfg->tls_listening_port);
		json_array_append_new(urls, json_string(url));
	}
	if (json_array_size(urls) == 0) {
		json_decref(urls);
		return 0;
	}
	if (auth_rest_username(expiry, cfg->rest_api_separator, user_id, user, sizeof(user)) < 0 ||
	    auth_rest_password(secret, user, pass) < 0) {
		json_decref(urls);
		return -1;
	}
	return json_array_append_new(list, json_pack("{s:o, s:s, s:s}", "urls", urls, "username", user,
						     "credential", pass));
}

json_t *signal_ice_servers(struct signal_ice *ice, const char *host, const char *user_id)
{
	json_t *list = json_array();
	char url[320];

	if (list == NULL)
		return NULL;
	if (ice->external[0] != '\0')
		host = ice->external;
	if (!ice->cfg->no_udp) {
		snprintf(url, sizeof(url), "stun:%s:%d", host, ice->cfg->listening_port);
		json_array_append_new(list, json_pack("{s:[s]}", "urls", url));
	}
	if (user_id != NULL && ice_secret(ice) != NULL && add_turn(ice, list, host, user_id) < 0)
		log_warnx("signaling: could not build TURN credentials");
	return list;
}
