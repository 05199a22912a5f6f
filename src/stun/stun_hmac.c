/* stun_hmac.c -- HMAC with per-thread keyed OpenSSL contexts (see stun_hmac.h). */
#include "stun/stun_hmac.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#define HMAC_SLOTS   4  /* keyed contexts per digest and thread */
#define HMAC_KEY_MAX 64 /* longer keys (hashed first by HMAC) are not kept */

/* A context holding its key's inner and outer pad states: re-initialised
 * without a key (EVP_MAC_init(ctx, NULL, 0, NULL)) it starts a new message
 * under the same key without hashing the pads again. */
struct hmac_slot {
	EVP_MAC_CTX *ctx;
	int keyed; /* ctx holds key[0..keylen) */
	size_t keylen;
	uint8_t key[HMAC_KEY_MAX];
};

struct hmac_cache {
	struct hmac_slot slot[2][HMAC_SLOTS]; /* [enum stun_hmac_alg] */
	unsigned next[2];                     /* round-robin victim */
};

static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;
static EVP_MAC *hmac_alg; /* fetched once (a locked provider lookup), kept for the process */
static pthread_key_t hmac_key;
static int hmac_key_ok;

static void hmac_cache_free(void *p)
{
	struct hmac_cache *c = p;

	for (int d = 0; d < 2; d++)
		for (int i = 0; i < HMAC_SLOTS; i++)
			EVP_MAC_CTX_free(c->slot[d][i].ctx);
	OPENSSL_cleanse(c, sizeof(*c));
	free(c);
}

static void hmac_init_once(void)
{
	hmac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
	hmac_key_ok = pthread_key_create(&hmac_key, hmac_cache_free) == 0;
}

static struct hmac_cache *hmac_cache_get(void)
{
	struct hmac_cache *c;

	if (!hmac_key_ok)
		return NULL;
	if ((c = pthread_getspecific(hmac_key)) != NULL)
		return c;
	if ((c = calloc(1, sizeof(*c))) != NULL && pthread_setspecific(hmac_key, c) != 0) {
		free(c);
		c = NULL;
	}
	return c;
}

/* A MAC context with its digest set, no key yet. */
static EVP_MAC_CTX *hmac_ctx_new(enum stun_hmac_alg alg)
{
	OSSL_PARAM params[2];
	EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(hmac_alg);

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, alg == STUN_HMAC_SHA1 ? "SHA1" : "SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (ctx != NULL && EVP_MAC_CTX_set_params(ctx, params) != 1) {
		EVP_MAC_CTX_free(ctx);
		ctx = NULL;
	}
	return ctx;
}

/* Keys ctx (key NULL: the key it already holds) and hashes a then b. */
static int hmac_run(EVP_MAC_CTX *ctx, const uint8_t *key, size_t keylen, const uint8_t *a, size_t alen,
		    const uint8_t *b, size_t blen, uint8_t *out, size_t outlen)
{
	size_t got = 0;

	if (EVP_MAC_init(ctx, key, keylen, NULL) != 1 || (alen > 0 && EVP_MAC_update(ctx, a, alen) != 1) ||
	    (blen > 0 && EVP_MAC_update(ctx, b, blen) != 1) || EVP_MAC_final(ctx, out, &got, outlen) != 1 ||
	    got != outlen)
		return -1;
	return 0;
}

int stun_hmac(enum stun_hmac_alg alg, const uint8_t *key, size_t keylen, const uint8_t *a, size_t alen,
	      const uint8_t *b, size_t blen, uint8_t *out, size_t outlen)
{
	/* A NULL key to EVP_MAC_init means "keep the old key"; an empty key is
	 * legal HMAC, so it is passed as a valid pointer. */
	static const uint8_t empty_key[1];
	struct hmac_cache *c;
	struct hmac_slot *s;
	EVP_MAC_CTX *tmp;
	int rc;

	if ((alg != STUN_HMAC_SHA1 && alg != STUN_HMAC_SHA256) || outlen != (alg == STUN_HMAC_SHA1 ? 20u : 32u))
		return -1;
	if (key == NULL)
		key = empty_key;
	pthread_once(&hmac_once, hmac_init_once);
	if (hmac_alg == NULL)
		return -1;
	if ((c = hmac_cache_get()) == NULL) {
		/* no per-thread state: a context for this call only */
		if ((tmp = hmac_ctx_new(alg)) == NULL)
			return -1;
		rc = hmac_run(tmp, key, keylen, a, alen, b, blen, out, outlen);
		EVP_MAC_CTX_free(tmp);
		return rc;
	}
	for (int i = 0; i < HMAC_SLOTS; i++) {
		s = &c->slot[alg][i];
		if (s->keyed && s->keylen == keylen && CRYPTO_memcmp(s->key, key, keylen) == 0) {
			if (hmac_run(s->ctx, NULL, 0, a, alen, b, blen, out, outlen) == 0)
				return 0;
			s->keyed = 0; /* rekey it next time */
			return -1;
		}
	}
	s = &c->slot[alg][c->next[alg]++ % HMAC_SLOTS];
	s->keyed = 0;
	if (s->ctx == NULL && (s->ctx = hmac_ctx_new(alg)) == NULL)
		return -1;
	if (hmac_run(s->ctx, key, keylen, a, alen, b, blen, out, outlen) != 0)
		return -1;
	if (keylen <= HMAC_KEY_MAX) {
		memcpy(s->key, key, keylen);
		s->keylen = keylen;
		s->keyed = 1;
	}
	return 0;
}
