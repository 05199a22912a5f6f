/* auth_users.c -- static user table with precomputed long-term keys. */
#include "auth/auth_users.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stun/stun_msg.h"

struct auth_user {
	char *name;
	size_t namelen;
	uint8_t md5[32];    /* 16 used; sized for stun_long_term_key */
	uint8_t sha256[32];
	uint8_t userhash[32];
	int usable;         /* 0: OpaqueString refused the password or realm */
	int md5_only;       /* configured as coturn's "0x<MD5 key hex>": no SHA-256 key */
};

struct auth_users {
	size_t n;
	struct auth_user *v;
};

int auth_users_hex_key(const char *password, uint8_t key[16])
{
	if (strlen(password) != 34 || password[0] != '0' || (password[1] != 'x' && password[1] != 'X'))
		return 0;
	for (size_t i = 0; i < 16; i++) {
		unsigned v;

		if (!isxdigit((unsigned char)password[2 + 2 * i]) || !isxdigit((unsigned char)password[3 + 2 * i]) ||
		    sscanf(password + 2 + 2 * i, "%2x", &v) != 1)
			return 0;
		key[i] = (uint8_t)v;
	}
	return 1;
}

struct auth_users *auth_users_new(const char *realm, const struct config_user *users, size_t n)
{
	struct auth_users *u;
	size_t i;

	if ((u = calloc(1, sizeof(*u))) == NULL)
		return NULL;
	if (n > 0 && (u->v = calloc(n, sizeof(*u->v))) == NULL) {
		free(u);
		return NULL;
	}
	for (i = 0; i < n; i++) {
		struct auth_user *e = &u->v[i];

		if ((e->name = strdup(users[i].name)) == NULL) {
			u->n = i;
			auth_users_free(u);
			return NULL;
		}
		e->namelen = strlen(e->name);
		if (auth_users_hex_key(users[i].password, e->md5)) {
			e->md5_only = 1; /* coturn's stored key: no password, so no SHA-256 key */
			e->usable = 1;
		} else {
			e->usable = stun_long_term_key(STUN_PW_ALG_MD5, users[i].name, realm, users[i].password,
						       e->md5) > 0 &&
				    stun_long_term_key(STUN_PW_ALG_SHA256, users[i].name, realm, users[i].password,
						       e->sha256) > 0;
		}
		stun_userhash(users[i].name, realm, e->userhash);
	}
	u->n = n;
	return u;
}

void auth_users_free(struct auth_users *u)
{
	size_t i;

	if (u == NULL)
		return;
	for (i = 0; i < u->n; i++) {
		free(u->v[i].name);
		OPENSSL_cleanse(&u->v[i], sizeof(u->v[i]));
	}
	free(u->v);
	free(u);
}

int auth_users_key(const struct auth_users *u, const uint8_t *name, size_t namelen, int alg, uint8_t key[32])
{
	size_t i;

	for (i = 0; i < u->n; i++) {
		const struct auth_user *e = &u->v[i];

		if (e->namelen != namelen || memcmp(e->name, name, namelen) != 0)
			continue;
		if (!e->usable)
			return -1;
		if (alg == STUN_PW_ALG_MD5) {
			memcpy(key, e->md5, 16);
			return 16;
		}
		if (alg == STUN_PW_ALG_SHA256 && !e->md5_only) {
			memcpy(key, e->sha256, 32);
			return 32;
		}
		return -1;
	}
	return -1;
}

const char *auth_users_by_userhash(const struct auth_users *u, const uint8_t hash[32])
{
	size_t i;

	for (i = 0; i < u->n; i++)
		if (CRYPTO_memcmp(u->v[i].userhash, hash, 32) == 0)
			return u->v[i].name;
	return NULL;
}
