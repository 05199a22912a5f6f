/* tls.h -- the server's TLS context: certificate, key, protocol floor,
 * ciphers and ALPN (RFC 7443: "stun.turn", "stun.nat-discovery"). */
#ifndef TURNSTONE_TLS_H
#define TURNSTONE_TLS_H

#include <stddef.h>

#include "config.h"

typedef struct ssl_ctx_st SSL_CTX;

/* Builds a server SSL_CTX from cfg's cert, pkey, ca-file, cipher-list and
 * no-tlsv1* keys. Fails when a file cannot be read or the key does not
 * match the certificate. Returns the context (the caller owns one
 * reference), or NULL with a message in err (errlen bytes). */
SSL_CTX *tls_ctx_new(const struct config *cfg, char *err, size_t errlen);

#endif
