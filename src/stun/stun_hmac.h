/* stun_hmac.h -- HMAC-SHA1 / HMAC-SHA256 with per-thread cached contexts,
 * for MESSAGE-INTEGRITY(-SHA256) (RFC 8489 §14.5, §14.6) and the nonces.
 *
 * Creating an OpenSSL MAC context and setting its digest and key costs far
 * more than hashing a STUN message (a provider lookup, three digest contexts,
 * two pad blocks), so each thread keeps a few keyed contexts and reuses one
 * when the same key comes again (the same user's request and response, the
 * nonce secret): then only the message itself is hashed. The cached keys and
 * contexts are wiped and freed when the thread exits.
 */
#ifndef TURNSTONE_STUN_HMAC_H
#define TURNSTONE_STUN_HMAC_H

#include <stddef.h>
#include <stdint.h>

enum stun_hmac_alg {
	STUN_HMAC_SHA1 = 0,   /* 20-byte output */
	STUN_HMAC_SHA256 = 1, /* 32-byte output */
};

/* HMAC (alg) under key[0..keylen) of a[0..alen) followed by b[0..blen)
 * into out, whose outlen must be the digest size (20 or 32). key may be
 * NULL only with keylen 0 (an empty key is legal HMAC); a or b may be NULL
 * with a zero length. Thread-safe (state is per thread). Returns 0, or -1
 * on a libcrypto failure or a wrong outlen. */
int stun_hmac(enum stun_hmac_alg alg, const uint8_t *key, size_t keylen, const uint8_t *a, size_t alen,
	      const uint8_t *b, size_t blen, uint8_t *out, size_t outlen);

#endif
